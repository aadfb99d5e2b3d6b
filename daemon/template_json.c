/*
 * template_json.c - reads a TaskTemplate from protobuf JSON (MessageToJson's camelCase or the
 * .proto's snake_case names) into the protobuf-c message the CLI sends in CreateTask.
 *
 * Each message is described by a table of its fields (both spellings, a kind, where it goes);
 * one reader walks an object's members against its table, so unknown and repeated keys are found
 * the same way at every level. Everything the result holds is malloc'ed piece by piece, which is
 * what protobuf_c_message_free_unpacked() frees with its default allocator; only the custom
 * Struct (built by structjson) has its own destructor. Pure: no I/O, no globals, any thread.
 */
#include "template_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "structjson.h"

/* Room for the longest path a message names ("container.env[12345].value" and the like); a
 * longer one, only possible with absurd keys, is cut. */
#define PATH_SIZE 256

enum kind {
    KIND_IGNORED,       /* a real TaskTemplate field the connector never reads: dropped */
    KIND_STRING,        /* char * at offset */
    KIND_INT32,         /* int32_t at offset */
    KIND_RESOURCE_TYPE, /* Flyteidl__Core__ResourceType at offset */
    KIND_STRINGS,       /* repeated string: char ** at offset, size_t count at count_offset */
    KIND_ENV,           /* repeated KeyValuePair at offset / count_offset */
    KIND_CONFIG,        /* map<string, string> at offset / count_offset */
    KIND_STRUCT,        /* google.protobuf.Struct * at offset */
    KIND_ID,            /* Identifier * at offset */
    KIND_CONTAINER,     /* the TaskTemplate's container, which also sets target_case */
};

struct field {
    const char *json_name;  /* lowerCamelCase, as MessageToJson writes it */
    const char *proto_name; /* as in the .proto */
    enum kind kind;
    size_t offset;
    size_t count_offset;
};

/* Fields of upstream flyteidl core/tasks.proto TaskTemplate; the ignored ones are those our
 * subset .proto leaves out, so a full template exported by flytekit still reads. */
static const struct field template_fields[] = {
    {"id", "id", KIND_ID, offsetof(Flyteidl__Core__TaskTemplate, id), 0},
    {"type", "type", KIND_STRING, offsetof(Flyteidl__Core__TaskTemplate, type), 0},
    {"metadata", "metadata", KIND_IGNORED, 0, 0},
    {"interface", "interface", KIND_IGNORED, 0, 0},
    {"custom", "custom", KIND_STRUCT, offsetof(Flyteidl__Core__TaskTemplate, custom), 0},
    {"container", "container", KIND_CONTAINER, offsetof(Flyteidl__Core__TaskTemplate, container),
     0},
    {"taskTypeVersion", "task_type_version", KIND_INT32,
     offsetof(Flyteidl__Core__TaskTemplate, task_type_version), 0},
    {"securityContext", "security_context", KIND_IGNORED, 0, 0},
    {"extendedResources", "extended_resources", KIND_IGNORED, 0, 0},
    {"config", "config", KIND_CONFIG, offsetof(Flyteidl__Core__TaskTemplate, config),
     offsetof(Flyteidl__Core__TaskTemplate, n_config)},
    {"k8sPod", "k8s_pod", KIND_IGNORED, 0, 0},
    {"sql", "sql", KIND_IGNORED, 0, 0},
};

static const struct field identifier_fields[] = {
    {"resourceType", "resource_type", KIND_RESOURCE_TYPE,
     offsetof(Flyteidl__Core__Identifier, resource_type), 0},
    {"project", "project", KIND_STRING, offsetof(Flyteidl__Core__Identifier, project), 0},
    {"domain", "domain", KIND_STRING, offsetof(Flyteidl__Core__Identifier, domain), 0},
    {"name", "name", KIND_STRING, offsetof(Flyteidl__Core__Identifier, name), 0},
    {"version", "version", KIND_STRING, offsetof(Flyteidl__Core__Identifier, version), 0},
    {"org", "org", KIND_STRING, offsetof(Flyteidl__Core__Identifier, org), 0},
};

/* Upstream core/tasks.proto Container; resources and the rest are not read. */
static const struct field container_fields[] = {
    {"image", "image", KIND_STRING, offsetof(Flyteidl__Core__Container, image), 0},
    {"command", "command", KIND_STRINGS, offsetof(Flyteidl__Core__Container, command),
     offsetof(Flyteidl__Core__Container, n_command)},
    {"args", "args", KIND_STRINGS, offsetof(Flyteidl__Core__Container, args),
     offsetof(Flyteidl__Core__Container, n_args)},
    {"resources", "resources", KIND_IGNORED, 0, 0},
    {"env", "env", KIND_ENV, offsetof(Flyteidl__Core__Container, env),
     offsetof(Flyteidl__Core__Container, n_env)},
    {"config", "config", KIND_IGNORED, 0, 0},
    {"ports", "ports", KIND_IGNORED, 0, 0},
    {"dataConfig", "data_config", KIND_IGNORED, 0, 0},
    {"architecture", "architecture", KIND_IGNORED, 0, 0},
};

static const struct field key_value_fields[] = {
    {"key", "key", KIND_STRING, offsetof(Flyteidl__Core__KeyValuePair, key), 0},
    {"value", "value", KIND_STRING, offsetof(Flyteidl__Core__KeyValuePair, value), 0},
};

#define N_FIELDS(table) (sizeof(table) / sizeof((table)[0]))

/* ResourceType by its protobuf JSON name; the value equals the wire number. */
static const struct {
    const char *name;
    Flyteidl__Core__ResourceType value;
} resource_types[] = {
    {"UNSPECIFIED", FLYTEIDL__CORE__RESOURCE_TYPE__UNSPECIFIED},
    {"TASK", FLYTEIDL__CORE__RESOURCE_TYPE__TASK},
    {"WORKFLOW", FLYTEIDL__CORE__RESOURCE_TYPE__WORKFLOW},
    {"LAUNCH_PLAN", FLYTEIDL__CORE__RESOURCE_TYPE__LAUNCH_PLAN},
    {"DATASET", FLYTEIDL__CORE__RESOURCE_TYPE__DATASET},
};

/* Top-level keys of messages a user may hand us by mistake, and what to tell them. */
static const struct {
    const char *key;
    const char *hint;
} wrong_messages[] = {
    {"template", "it looks like a CreateTaskRequest; give the value of its 'template'"},
    {"taskExecutionMetadata", "it looks like a CreateTaskRequest; give the value of its "
                              "'template'"},
    {"task_execution_metadata", "it looks like a CreateTaskRequest; give the value of its "
                                "'template'"},
    {"run_id", "it looks like a resource_meta; use the status or cancel command"},
    {"databricks_instance", "it looks like a resource_meta; use the status or cancel command"},
};

/* Every member of an object is checked against a table of at most this many fields. */
#define MAX_FIELDS 32

static int fail_oom(char **reterr_msg)
{
    if (reterr_msg)
        *reterr_msg = NULL;
    return -ENOMEM;
}

/* A path too long for the buffer is cut: it only ever appears in a message. */
static void path_join(char out[PATH_SIZE], const char *path, const char *key)
{
    if (snprintf(out, PATH_SIZE, "%s%s%s", path, *path ? "." : "", key) >= PATH_SIZE)
        out[PATH_SIZE - 1] = '\0';
}

static void path_index(char out[PATH_SIZE], const char *path, size_t index)
{
    if (snprintf(out, PATH_SIZE, "%s[%zu]", path, index) >= PATH_SIZE)
        out[PATH_SIZE - 1] = '\0';
}

static int copy_string(const cJSON *item, const char *path, char **ret, char **reterr_msg)
{
    char *s;

    if (!cJSON_IsString(item))
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected a string, got %s", path,
                          structjson_type_name(item));
    s = strdup(item->valuestring);
    if (!s)
        return fail_oom(reterr_msg);
    *ret = s;
    return 0;
}

/* protobuf JSON takes an int32 as a number or as a string of digits. */
static int read_int32(const cJSON *item, const char *path, int32_t *ret, char **reterr_msg)
{
    double v;

    if (cJSON_IsString(item)) {
        const char *s = item->valuestring;
        char *end = NULL;
        long long n;

        errno = 0;
        n = strtoll(s, &end, 10);
        if (*s == '\0' || *end != '\0' || errno != 0 || n < INT32_MIN || n > INT32_MAX ||
            strspn(s, "-0123456789") != strlen(s))
            return errmsg_set(reterr_msg, -EINVAL, "%s: expected a 32-bit integer, got '%.32s'",
                              path, s);
        *ret = (int32_t)n;
        return 0;
    }
    if (!cJSON_IsNumber(item))
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected an integer, got %s", path,
                          structjson_type_name(item));
    v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < INT32_MIN || v > INT32_MAX)
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected a 32-bit integer, got %g", path, v);
    *ret = (int32_t)v;
    return 0;
}

static int read_resource_type(const cJSON *item, const char *path,
                              Flyteidl__Core__ResourceType *ret, char **reterr_msg)
{
    int32_t n;
    int r;

    if (cJSON_IsString(item)) {
        for (size_t i = 0; i < N_FIELDS(resource_types); i++)
            if (strcmp(item->valuestring, resource_types[i].name) == 0) {
                *ret = resource_types[i].value;
                return 0;
            }
        return errmsg_set(
            reterr_msg, -EINVAL,
            "%s: unknown value '%.32s' (expected TASK, WORKFLOW, LAUNCH_PLAN, DATASET or "
            "UNSPECIFIED)",
            path, item->valuestring);
    }
    /* Protobuf enums are open: a number outside the known names is kept as it is. */
    r = read_int32(item, path, &n, reterr_msg);
    if (r < 0)
        return r;
    *ret = (Flyteidl__Core__ResourceType)n;
    return 0;
}

static int read_object(const cJSON *object, const char *path, const struct field *fields,
                       size_t n_fields, void *message, char **reterr_msg);

/* Allocates an empty sub-message, attaches it at *slot, then fills it from item. */
static int read_message(const cJSON *item, const char *path, const struct field *fields,
                        size_t n_fields, const ProtobufCMessageDescriptor *descriptor, void **slot,
                        char **reterr_msg)
{
    ProtobufCMessage *m;

    if (!cJSON_IsObject(item))
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected an object, got %s", path,
                          structjson_type_name(item));
    m = malloc(descriptor->sizeof_message);
    if (!m)
        return fail_oom(reterr_msg);
    descriptor->message_init(m);
    *slot = m;
    return read_object(item, path, fields, n_fields, m, reterr_msg);
}

/* Reads one member (c, at `at`) of a repeated field into its slot, which it sets only once it
 * holds something the destructor must free. */
typedef int (*read_element_fn)(const cJSON *c, const char *at, void **slot, char **reterr_msg);

/* A repeated field's JSON form and how each member is read. */
struct repeated {
    bool keyed;           /* a map, written as an object: its members' paths are keys */
    const char *expected; /* what the field must be, for the message when it is not */
    read_element_fn read_element;
};

static int read_string_element(const cJSON *c, const char *at, void **slot, char **reterr_msg)
{
    return copy_string(c, at, (char **)slot, reterr_msg);
}

static int read_env_element(const cJSON *c, const char *at, void **slot, char **reterr_msg)
{
    return read_message(c, at, key_value_fields, N_FIELDS(key_value_fields),
                        &flyteidl__core__key_value_pair__descriptor, slot, reterr_msg);
}

static int read_config_element(const cJSON *c, const char *at, void **slot, char **reterr_msg)
{
    Flyteidl__Core__TaskTemplate__ConfigEntry *entry = malloc(sizeof(*entry));

    if (!entry)
        return fail_oom(reterr_msg);
    flyteidl__core__task_template__config_entry__init(entry);
    *slot = entry;
    entry->key = strdup(c->string);
    if (!entry->key) {
        entry->key = (char *)protobuf_c_empty_string;
        return fail_oom(reterr_msg);
    }
    return copy_string(c, at, &entry->value, reterr_msg);
}

static const struct repeated strings_field = {false, "an array of strings", read_string_element};
static const struct repeated env_field = {false, "an array of {\"key\", \"value\"} objects",
                                          read_env_element};
static const struct repeated config_field = {true, "an object of strings", read_config_element};

static int read_repeated(const cJSON *item, const char *path, const struct repeated *how,
                         void ***ret_array, size_t *ret_count, char **reterr_msg)
{
    size_t n;
    void **array;
    size_t i = 0;
    char at[PATH_SIZE];
    int r;

    if (how->keyed ? !cJSON_IsObject(item) : !cJSON_IsArray(item))
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected %s, got %s", path, how->expected,
                          structjson_type_name(item));
    n = (size_t)cJSON_GetArraySize(item);
    if (n == 0)
        return 0;
    array = calloc(n, sizeof(*array));
    if (!array)
        return fail_oom(reterr_msg);
    /* The array is attached first and counted as it fills, so the destructor undoes a part. */
    *ret_array = array;
    for (const cJSON *c = item->child; c; c = c->next, i++) {
        if (how->keyed)
            path_join(at, path, c->string);
        else
            path_index(at, path, i);
        r = how->read_element(c, at, &array[i], reterr_msg);
        if (array[i])
            *ret_count = i + 1;
        if (r < 0)
            return r;
    }
    return 0;
}

static int read_struct(const cJSON *item, const char *path, Google__Protobuf__Struct **ret,
                       char **reterr_msg)
{
    char *why = NULL;
    int r;

    if (!cJSON_IsObject(item))
        return errmsg_set(reterr_msg, -EINVAL, "%s: expected an object, got %s", path,
                          structjson_type_name(item));
    r = structjson_from_cjson(item, ret, &why);
    if (r == -ENOMEM) {
        free(why);
        return fail_oom(reterr_msg);
    }
    if (r < 0) {
        r = errmsg_set(reterr_msg, -EINVAL, "%s: %s", path, why ? why : "cannot convert");
        free(why);
    }
    return r;
}

static int read_field(const cJSON *item, const char *path, const struct field *f, void *message,
                      char **reterr_msg)
{
    char *base = message;
    void *at = base + f->offset;
    size_t *count = (size_t *)(base + f->count_offset);

    switch (f->kind) {
    case KIND_IGNORED:
        return 0;
    case KIND_STRING:
        return copy_string(item, path, (char **)at, reterr_msg);
    case KIND_INT32:
        return read_int32(item, path, (int32_t *)at, reterr_msg);
    case KIND_RESOURCE_TYPE:
        return read_resource_type(item, path, (Flyteidl__Core__ResourceType *)at, reterr_msg);
    case KIND_STRINGS:
        return read_repeated(item, path, &strings_field, (void ***)at, count, reterr_msg);
    case KIND_ENV:
        return read_repeated(item, path, &env_field, (void ***)at, count, reterr_msg);
    case KIND_CONFIG:
        return read_repeated(item, path, &config_field, (void ***)at, count, reterr_msg);
    case KIND_STRUCT:
        return read_struct(item, path, (Google__Protobuf__Struct **)at, reterr_msg);
    case KIND_ID:
        return read_message(item, path, identifier_fields, N_FIELDS(identifier_fields),
                            &flyteidl__core__identifier__descriptor, (void **)at, reterr_msg);
    case KIND_CONTAINER: {
        Flyteidl__Core__TaskTemplate *t = message;
        /* Set together: protobuf-c's destructor frees a oneof member only under its case. */
        t->target_case = FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER;
        return read_message(item, path, container_fields, N_FIELDS(container_fields),
                            &flyteidl__core__container__descriptor, (void **)&t->container,
                            reterr_msg);
    }
    }
    return errmsg_set(reterr_msg, -EINVAL, "%s: unsupported field kind", path);
}

static const struct field *find_field(const struct field *fields, size_t n_fields, const char *key)
{
    for (size_t i = 0; i < n_fields; i++)
        if (strcmp(fields[i].json_name, key) == 0 || strcmp(fields[i].proto_name, key) == 0)
            return &fields[i];
    return NULL;
}

static int read_object(const cJSON *object, const char *path, const struct field *fields,
                       size_t n_fields, void *message, char **reterr_msg)
{
    bool seen[MAX_FIELDS] = {false};
    char at[PATH_SIZE];
    int r;

    if (n_fields > MAX_FIELDS)
        return errmsg_set(reterr_msg, -EINVAL, "%s: too many fields in table", path);
    for (const cJSON *c = object->child; c; c = c->next) {
        const struct field *f = find_field(fields, n_fields, c->string);
        size_t index;

        path_join(at, path, c->string);
        if (!f)
            return errmsg_set(reterr_msg, -EINVAL, "unknown field '%s'", at);
        index = (size_t)(f - fields);
        /* camelCase and snake_case name the same field: either one counts as the field. */
        if (seen[index])
            return errmsg_set(reterr_msg, -EINVAL, "field '%s' given twice", at);
        seen[index] = true;
        if (cJSON_IsNull(c))
            continue;
        r = read_field(c, at, f, message, reterr_msg);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The top level must be an object naming at least one TaskTemplate field. */
static int check_shape(const cJSON *root, char **reterr_msg)
{
    char found[160] = "";
    size_t used = 0, listed = 0;

    if (!cJSON_IsObject(root))
        return errmsg_set(reterr_msg, -EINVAL, "not a TaskTemplate: the top-level value is %s",
                          structjson_type_name(root));
    if (!root->child)
        return errmsg_set(reterr_msg, -EINVAL, "not a TaskTemplate: the object is empty");
    for (const cJSON *c = root->child; c; c = c->next)
        if (find_field(template_fields, N_FIELDS(template_fields), c->string))
            return 0;
    for (size_t i = 0; i < N_FIELDS(wrong_messages); i++)
        if (cJSON_GetObjectItemCaseSensitive(root, wrong_messages[i].key))
            return errmsg_set(reterr_msg, -EINVAL, "not a TaskTemplate: %s",
                              wrong_messages[i].hint);
    for (const cJSON *c = root->child; c && listed < 3; c = c->next, listed++) {
        int n = snprintf(found + used, sizeof(found) - used, "%s'%.32s'", listed ? ", " : "",
                         c->string);
        if (n < 0 || (size_t)n >= sizeof(found) - used)
            break;
        used += (size_t)n;
    }
    return errmsg_set(reterr_msg, -EINVAL,
                      "not a TaskTemplate: none of its fields is present (found %s%s)", found,
                      root->child && cJSON_GetArraySize(root) > 3 ? ", ..." : "");
}

/* JSON's whitespace; gives the first other byte in [p, end), or end. */
static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static int json_error(const char *text, size_t len, const char *where, char **reterr_msg)
{
    size_t line = 1, column = 1;
    size_t end = where && where >= text && where <= text + len ? (size_t)(where - text) : 0;

    for (size_t i = 0; i < end; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    return errmsg_set(reterr_msg, -EINVAL, "invalid JSON at line %zu, column %zu", line, column);
}

int template_json_parse(const char *text, size_t len, Flyteidl__Core__TaskTemplate **ret_template,
                        char **reterr_msg)
{
    cJSON *root = NULL;
    Flyteidl__Core__TaskTemplate *t = NULL;
    const char *end = NULL;
    int r;

    if (skip_space(text, text + len) == text + len) {
        r = errmsg_set(reterr_msg, -EINVAL, "invalid JSON: the input is empty");
        goto out;
    }
    root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        r = json_error(text, len, end, reterr_msg);
        goto out;
    }
    end = skip_space(end, text + len);
    if (end < text + len) {
        r = json_error(text, len, end, reterr_msg);
        goto out;
    }
    r = check_shape(root, reterr_msg);
    if (r < 0)
        goto out;
    t = malloc(sizeof(*t));
    if (!t) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    flyteidl__core__task_template__init(t);
    r = read_object(root, "", template_fields, N_FIELDS(template_fields), t, reterr_msg);
    if (r < 0)
        goto out;
    *ret_template = t;
    t = NULL;
out:
    template_json_free(t);
    cJSON_Delete(root);
    return r;
}

Flyteidl__Core__TaskTemplate *template_json_free(Flyteidl__Core__TaskTemplate *t)
{
    if (!t)
        return NULL;
    /* structjson allocates its Struct its own way: detach it before protobuf-c frees the rest. */
    t->custom = structjson_struct_free(t->custom);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    return NULL;
}
