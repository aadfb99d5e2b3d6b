/*
 * structjson.c - converts google.protobuf.Struct to and from cJSON trees, and prints cJSON with
 * integer-looking numbers for Struct doubles.
 *
 * Both conversions recurse once per nesting level, bounded by STRUCTJSON_MAX_DEPTH. Each level
 * passes down a frame naming where it is, so an error can name the full path of the culprit
 * without building strings on the success path. Pure: no global mutable state, any thread.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "structjson.h"

/* One step of the path from the top-level object: a key when key != NULL, else an index. */
struct path {
    const struct path *up;
    const char *key;
    size_t index;
};

/* 2^53: below it every whole double is an exact integer and prints as one. */
#define EXACT_INTEGER_LIMIT 9007199254740992.0

/* Longest number text: "-" + 17 digits + "." + "e-308" and NUL fit easily. */
#define NUMBER_TEXT_SIZE 40

/* Renders the path as "a.b[2].c"; "top level" for the root. Gives a string or NULL (OOM). */
static char *path_format(const struct path *at)
{
    const struct path *frames[STRUCTJSON_MAX_DEPTH + 2];
    size_t n = 0;
    char *buf = NULL;
    size_t size = 0;
    FILE *f;

    for (const struct path *p = at; p && n < sizeof(frames) / sizeof(frames[0]); p = p->up)
        frames[n++] = p;
    if (n == 0)
        return strdup("top level");

    f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    for (size_t i = n; i-- > 0;) {
        if (frames[i]->key)
            fprintf(f, "%s%s", i + 1 == n ? "" : ".", frames[i]->key);
        else
            fprintf(f, "[%zu]", frames[i]->index);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Sets *reterr_msg to "'<path>': <reason>" and returns r. */
__attribute__((format(printf, 4, 5))) static int
fail_at(char **reterr_msg, int r, const struct path *at, const char *fmt, ...)
{
    char *where = NULL, *reason = NULL;
    va_list ap;

    if (!reterr_msg)
        return r;
    *reterr_msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&reason, fmt, ap) < 0)
        reason = NULL;
    va_end(ap);
    where = path_format(at);
    if (reason && where && asprintf(reterr_msg, "'%s': %s", where, reason) < 0)
        *reterr_msg = NULL;
    free(reason);
    free(where);
    return r;
}

static int fail_oom(char **reterr_msg)
{
    if (reterr_msg)
        *reterr_msg = strdup("out of memory");
    return -ENOMEM;
}

/* ---- Struct -> cJSON ---- */

static int struct_to_cjson(const Google__Protobuf__Struct *s, const struct path *at, int depth,
                           cJSON **ret, char **reterr_msg);
static int list_to_cjson(const Google__Protobuf__ListValue *l, const struct path *at, int depth,
                         cJSON **ret, char **reterr_msg);

/* depth is the level of the container holding v. */
static int value_to_cjson(const Google__Protobuf__Value *v, const struct path *at, int depth,
                          cJSON **ret, char **reterr_msg)
{
    static const Google__Protobuf__Struct empty_struct = GOOGLE__PROTOBUF__STRUCT__INIT;
    static const Google__Protobuf__ListValue empty_list = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    cJSON *item = NULL;

    switch (v ? v->kind_case : GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        if (!isfinite(v->number_value))
            return fail_at(reterr_msg, -EINVAL, at,
                           "number is NaN or infinite, JSON cannot carry it");
        item = cJSON_CreateNumber(v->number_value);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        item = cJSON_CreateString(v->string_value ? v->string_value : "");
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        item = cJSON_CreateBool(v->bool_value);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        /* A NULL submessage is the default (empty) message in protobuf terms. */
        return struct_to_cjson(v->struct_value ? v->struct_value : &empty_struct, at, depth + 1,
                               ret, reterr_msg);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        return list_to_cjson(v->list_value ? v->list_value : &empty_list, at, depth + 1, ret,
                             reterr_msg);
    default:
        /* NULL_VALUE, NOT_SET and kinds newer than this code: null, as json_format does. */
        item = cJSON_CreateNull();
        break;
    }
    if (!item)
        return fail_oom(reterr_msg);
    *ret = item;
    return 0;
}

static int struct_to_cjson(const Google__Protobuf__Struct *s, const struct path *at, int depth,
                           cJSON **ret, char **reterr_msg)
{
    cJSON *object = NULL, *item = NULL;
    int r;

    if (depth > STRUCTJSON_MAX_DEPTH)
        return fail_at(reterr_msg, -EINVAL, at, "nested deeper than %d levels",
                       STRUCTJSON_MAX_DEPTH);
    object = cJSON_CreateObject();
    if (!object) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        const Google__Protobuf__Struct__FieldsEntry *e = s->fields[i];
        const char *key = e && e->key ? e->key : "";
        struct path here = {.up = at, .key = key};
        cJSON *old;

        r = value_to_cjson(e ? e->value : NULL, &here, depth, &item, reterr_msg);
        if (r < 0)
            goto out;
        old = cJSON_GetObjectItemCaseSensitive(object, key);
        if (old ? !cJSON_ReplaceItemInObjectCaseSensitive(object, key, item)
                : !cJSON_AddItemToObject(object, key, item)) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        item = NULL;
    }
    *ret = object;
    object = NULL;
    r = 0;
out:
    cJSON_Delete(item);
    cJSON_Delete(object);
    return r;
}

static int list_to_cjson(const Google__Protobuf__ListValue *l, const struct path *at, int depth,
                         cJSON **ret, char **reterr_msg)
{
    cJSON *array = NULL, *item = NULL;
    int r;

    if (depth > STRUCTJSON_MAX_DEPTH)
        return fail_at(reterr_msg, -EINVAL, at, "nested deeper than %d levels",
                       STRUCTJSON_MAX_DEPTH);
    array = cJSON_CreateArray();
    if (!array) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    for (size_t i = 0; i < l->n_values; i++) {
        struct path here = {.up = at, .index = i};

        r = value_to_cjson(l->values[i], &here, depth, &item, reterr_msg);
        if (r < 0)
            goto out;
        if (!cJSON_AddItemToArray(array, item)) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        item = NULL;
    }
    *ret = array;
    array = NULL;
    r = 0;
out:
    cJSON_Delete(item);
    cJSON_Delete(array);
    return r;
}

int structjson_to_cjson(const Google__Protobuf__Struct *s, cJSON **ret_object, char **reterr_msg)
{
    if (!s || !ret_object)
        return fail_at(reterr_msg, -EINVAL, NULL, "no Struct given");
    return struct_to_cjson(s, NULL, 1, ret_object, reterr_msg);
}

/* ---- cJSON -> Struct ---- */

static void value_free(Google__Protobuf__Value *v);

static void list_free(Google__Protobuf__ListValue *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_values; i++)
        value_free(l->values[i]);
    free(l->values);
    free(l);
}

static void value_free(Google__Protobuf__Value *v)
{
    if (!v)
        return;
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        free(v->string_value);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        structjson_struct_free(v->struct_value);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        list_free(v->list_value);
        break;
    default:
        break;
    }
    free(v);
}

Google__Protobuf__Struct *structjson_struct_free(Google__Protobuf__Struct *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_fields; i++) {
        if (!s->fields[i])
            continue;
        free(s->fields[i]->key);
        value_free(s->fields[i]->value);
        free(s->fields[i]);
    }
    free(s->fields);
    free(s);
    return NULL;
}

static int struct_from_cjson(const cJSON *object, const struct path *at, int depth,
                             Google__Protobuf__Struct **ret, char **reterr_msg);
static int list_from_cjson(const cJSON *array, const struct path *at, int depth,
                           Google__Protobuf__ListValue **ret, char **reterr_msg);

static size_t count_children(const cJSON *item)
{
    size_t n = 0;

    for (const cJSON *c = item->child; c; c = c->next)
        n++;
    return n;
}

/* depth is the level of the container holding item. */
static int value_from_cjson(const cJSON *item, const struct path *at, int depth,
                            Google__Protobuf__Value **ret, char **reterr_msg)
{
    Google__Protobuf__Value *v = NULL;
    int r;

    v = malloc(sizeof(*v));
    if (!v) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    google__protobuf__value__init(v);

    switch (item->type & 0xff) {
    case cJSON_NULL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        break;
    case cJSON_False:
    case cJSON_True:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = (item->type & 0xff) == cJSON_True;
        break;
    case cJSON_Number:
        if (!isfinite(item->valuedouble)) {
            r = fail_at(reterr_msg, -EINVAL, at, "number is NaN or infinite");
            goto out;
        }
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        v->number_value = item->valuedouble;
        break;
    case cJSON_String:
        v->string_value = strdup(item->valuestring ? item->valuestring : "");
        if (!v->string_value) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        break;
    case cJSON_Object:
        r = struct_from_cjson(item, at, depth + 1, &v->struct_value, reterr_msg);
        if (r < 0)
            goto out;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        break;
    case cJSON_Array:
        r = list_from_cjson(item, at, depth + 1, &v->list_value, reterr_msg);
        if (r < 0)
            goto out;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        break;
    default:
        r = fail_at(reterr_msg, -EINVAL, at, "not a JSON value (raw or invalid cJSON item)");
        goto out;
    }
    *ret = v;
    v = NULL;
    r = 0;
out:
    value_free(v);
    return r;
}

static int struct_from_cjson(const cJSON *object, const struct path *at, int depth,
                             Google__Protobuf__Struct **ret, char **reterr_msg)
{
    Google__Protobuf__Struct *s = NULL;
    size_t n;
    int r;

    if (depth > STRUCTJSON_MAX_DEPTH)
        return fail_at(reterr_msg, -EINVAL, at, "nested deeper than %d levels",
                       STRUCTJSON_MAX_DEPTH);
    s = malloc(sizeof(*s));
    if (!s) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    google__protobuf__struct__init(s);
    n = count_children(object);
    if (n > 0) {
        s->fields = calloc(n, sizeof(*s->fields));
        if (!s->fields) {
            r = fail_oom(reterr_msg);
            goto out;
        }
    }
    /* n_fields counts only finished entries, so structjson_struct_free() can undo a partial
     * struct. */
    for (const cJSON *c = object->child; c; c = c->next) {
        Google__Protobuf__Struct__FieldsEntry *e;
        struct path here = {.up = at, .key = c->string ? c->string : ""};

        e = malloc(sizeof(*e));
        if (!e) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        google__protobuf__struct__fields_entry__init(e);
        e->key = strdup(here.key);
        e->value = NULL;
        s->fields[s->n_fields++] = e;
        if (!e->key) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        r = value_from_cjson(c, &here, depth, &e->value, reterr_msg);
        if (r < 0)
            goto out;
    }
    *ret = s;
    s = NULL;
    r = 0;
out:
    structjson_struct_free(s);
    return r;
}

static int list_from_cjson(const cJSON *array, const struct path *at, int depth,
                           Google__Protobuf__ListValue **ret, char **reterr_msg)
{
    Google__Protobuf__ListValue *l = NULL;
    size_t n, i = 0;
    int r;

    if (depth > STRUCTJSON_MAX_DEPTH)
        return fail_at(reterr_msg, -EINVAL, at, "nested deeper than %d levels",
                       STRUCTJSON_MAX_DEPTH);
    l = malloc(sizeof(*l));
    if (!l) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    google__protobuf__list_value__init(l);
    n = count_children(array);
    if (n > 0) {
        l->values = calloc(n, sizeof(*l->values));
        if (!l->values) {
            r = fail_oom(reterr_msg);
            goto out;
        }
    }
    for (const cJSON *c = array->child; c; c = c->next, i++) {
        struct path here = {.up = at, .index = i};

        r = value_from_cjson(c, &here, depth, &l->values[i], reterr_msg);
        if (r < 0)
            goto out;
        l->n_values = i + 1;
    }
    *ret = l;
    l = NULL;
    r = 0;
out:
    list_free(l);
    return r;
}

int structjson_from_cjson(const cJSON *object, Google__Protobuf__Struct **ret_struct,
                          char **reterr_msg)
{
    if (!ret_struct || !cJSON_IsObject(object))
        return fail_at(reterr_msg, -EINVAL, NULL, "not a JSON object");
    return struct_from_cjson(object, NULL, 1, ret_struct, reterr_msg);
}

/* ---- printing ---- */

static void format_number(double x, char buf[NUMBER_TEXT_SIZE])
{
    if (!isfinite(x)) {
        strcpy(buf, "null");
        return;
    }
    if (x == trunc(x) && fabs(x) < EXACT_INTEGER_LIMIT) {
        snprintf(buf, NUMBER_TEXT_SIZE, "%lld", (long long)x);
        return;
    }
    /* %.17g always reads back exactly; stop at the first shorter precision that does too. */
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, NUMBER_TEXT_SIZE, "%.*g", precision, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* Swaps every number below node for a raw item holding our text; cJSON prints raw verbatim. */
static int replace_numbers(cJSON *node)
{
    cJSON *next;

    for (cJSON *c = node->child; c; c = next) {
        next = c->next;
        if (cJSON_IsNumber(c)) {
            char text[NUMBER_TEXT_SIZE];
            cJSON *raw;

            format_number(c->valuedouble, text);
            raw = cJSON_CreateRaw(text);
            if (!raw)
                return -ENOMEM;
            /* ReplaceItemViaPointer keeps the replacement's own name: hand the key over. */
            raw->string = c->string;
            raw->type |= c->type & cJSON_StringIsConst;
            c->string = NULL;
            cJSON_ReplaceItemViaPointer(node, c, raw);
        } else if (cJSON_IsArray(c) || cJSON_IsObject(c)) {
            if (replace_numbers(c) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

char *structjson_print(const cJSON *item)
{
    char text[NUMBER_TEXT_SIZE];
    cJSON *copy = NULL;
    char *s = NULL;

    if (!item)
        return NULL;
    if (cJSON_IsNumber(item)) {
        format_number(item->valuedouble, text);
        return strdup(text);
    }
    copy = cJSON_Duplicate(item, true);
    if (!copy)
        goto out;
    if (replace_numbers(copy) < 0)
        goto out;
    s = cJSON_PrintUnformatted(copy);
out:
    cJSON_Delete(copy);
    return s;
}

const char *structjson_type_name(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an invalid value";
}
