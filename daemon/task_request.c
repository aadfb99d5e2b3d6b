/*
 * task_request.c - decodes and checks task requests before any network (see task_request.h).
 *
 * Two layers: unpack_* functions know one protocol generation's messages (flyteidl.admin for
 * Flyte 1, flyteidl2.connector for Flyte 2; the tables create_unpackers and run_unpackers pick
 * them) and reduce a request to plain values (struct create_ask, or struct run_fields);
 * check_* functions know only those values, the configuration and the Databricks side. The
 * checks run in the order the handlers have always used, so a request with several faults gets
 * the same message as before.
 *
 * A Flyte 2 connection carries secrets: take_call_token() copies the Databricks one out, and
 * every secret in the unpacked message is zeroed before protobuf-c frees it.
 *
 * Owns nothing between calls; every result is handed to the caller. Pure: any thread.
 */
#include "task_request.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "errmsg.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "k8s_secret.h"
#include "flyteidl2/connector/connector.pb-c.h"
#include "log_page.h"
#include "pbdepth.h"
#include "resmeta.h"
#include "secret.h"
#include "spec.h"
#include "structjson.h"

const struct task_request_category task_request_categories[TASK_REQUEST_CATEGORIES] = {
    /* flytekit registers its Databricks connector under both names, version 0. */
    {"spark", 0},
    {"databricks", 0},
};

/* What a CreateTask asks for, whatever the protocol generation. Borrows from the unpacked
 * request, except env, which it owns. */
struct create_ask {
    enum config_generation generation;
    const char *task_type;
    const char *namespace;                  /* task_execution_metadata.namespace; NULL: none */
    const Google__Protobuf__Struct *custom; /* NULL: the template has none */
    struct spec_input container;            /* image, args and env only */
    struct spec_env_var *env;               /* owns: what container.env points to */
    bool has_token;                         /* ret->idempotency_token holds the token */
};

bool task_request_type_supported(const char *name)
{
    for (size_t i = 0; i < TASK_REQUEST_CATEGORIES; i++)
        if (strcmp(task_request_categories[i].name, name) == 0)
            return true;
    return false;
}

/* Writes the message for the caller and returns `code`, so a refusal is one line. */
__attribute__((format(printf, 3, 4))) static grpc_status_code
refuse(char message[TASK_REQUEST_MESSAGE_SIZE], grpc_status_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, TASK_REQUEST_MESSAGE_SIZE, fmt, ap);
    va_end(ap);
    return code;
}

static grpc_status_code refuse_oom(char message[TASK_REQUEST_MESSAGE_SIZE])
{
    return refuse(message, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

static grpc_status_code check_task_type(const char *task_type,
                                        char message[TASK_REQUEST_MESSAGE_SIZE])
{
    char quoted[64 + 4];

    if (task_request_type_supported(task_type))
        return GRPC_STATUS_OK;
    /* The client's text, quoted back like every other client string: escaped, cut short. */
    errmsg_printable(quoted, sizeof(quoted), task_type, ERRMSG_QUOTED);
    return refuse(message, GRPC_STATUS_NOT_FOUND,
                  "no connector for task type '%s'; this one serves 'spark' and 'databricks'",
                  quoted);
}

/*
 * Resolves the instance a request targets: normalizes it and applies the allowlist before any
 * connection is made, so a task author cannot send the connector's token to a host of their
 * choosing. Gives *ret_instance (free()) on success.
 */
static grpc_status_code check_instance(const struct config *config, const char *requested,
                                       char **ret_instance, char message[TASK_REQUEST_MESSAGE_SIZE])
{
    char *normalized = NULL, *error = NULL;
    grpc_status_code code = GRPC_STATUS_OK;

    if (!requested || !requested[0]) {
        code = refuse(message, GRPC_STATUS_INVALID_ARGUMENT,
                      "no Databricks instance: set databricksInstance in the task config or "
                      "start the connector with --instance / FLYTE_DATABRICKS_INSTANCE");
        goto out;
    }
    if (resmeta_normalize_instance(requested, &normalized, &error) < 0) {
        code = refuse(message, GRPC_STATUS_INVALID_ARGUMENT, "invalid Databricks instance: %s",
                      error ? error : "malformed");
        goto out;
    }
    if (!config_instance_allowed(config, normalized)) {
        code = refuse(message, GRPC_STATUS_PERMISSION_DENIED,
                      "Databricks instance '%.200s' is not allowed by this connector "
                      "(allowed_instances)",
                      normalized);
        goto out;
    }
    *ret_instance = normalized;
    normalized = NULL;
out:
    free(normalized);
    free(error);
    return code;
}

static void creds_done(struct task_request_creds *c)
{
    secret_free(c->auth_token);
    free(c->namespace);
    free(c->token_secret);
    *c = (struct task_request_creds){0};
}

/* ---- Flyte 2's connection ----------------------------------------------------- */

/* Zeroes every secret value in `connection` (may be NULL) in place, before it is freed: freed
 * heap memory ends up in core dumps. */
static void wipe_connection(Flyteidl2__Core__Connection *connection)
{
    for (size_t i = 0; connection && i < connection->n_secrets; i++)
        if (connection->secrets[i]->value)
            explicit_bzero(connection->secrets[i]->value, strlen(connection->secrets[i]->value));
}

/* Writes the lowercase hex SHA-256 of token into tag. Returns 0 or -ENOMEM. */
static int token_tag(const char *token, char tag[TASK_REQUEST_TOKEN_TAG_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!EVP_Digest(token, strlen(token), digest, &len, EVP_sha256(), NULL) || len != 32)
        return -ENOMEM;
    for (unsigned i = 0; i < len; i++) {
        tag[2 * i] = hex[digest[i] >> 4];
        tag[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    tag[2 * len] = '\0';
    explicit_bzero(digest, sizeof(digest));
    return 0;
}

/*
 * Copies connection.secrets["databricks_token"] (connection may be NULL) into *ret_token, with
 * surrounding whitespace trimmed as a token file's is, and its tag into `tag` when tag is not
 * NULL; *ret_token stays NULL when there is no such secret. The token goes into an
 * Authorization header: an empty one, or one with a space, control or non-ASCII character
 * (a header injection), is refused without quoting it.
 */
static grpc_status_code take_call_token(const Flyteidl2__Core__Connection *connection,
                                        char **ret_token, char tag[TASK_REQUEST_TOKEN_TAG_SIZE],
                                        char message[TASK_REQUEST_MESSAGE_SIZE])
{
    const char *value = NULL, *end;
    char *token;

    for (size_t i = 0; connection && i < connection->n_secrets; i++)
        if (strcmp(connection->secrets[i]->key, TASK_REQUEST_TOKEN_SECRET) == 0)
            value = connection->secrets[i]->value;
    if (!value)
        return GRPC_STATUS_OK;
    while (isspace((unsigned char)*value))
        value++;
    end = value + strlen(value);
    while (end > value && isspace((unsigned char)end[-1]))
        end--;
    if (end == value)
        return refuse(message, GRPC_STATUS_INVALID_ARGUMENT,
                      "connection secret '" TASK_REQUEST_TOKEN_SECRET "' is empty");
    for (const char *p = value; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return refuse(message, GRPC_STATUS_INVALID_ARGUMENT,
                          "connection secret '" TASK_REQUEST_TOKEN_SECRET
                          "' contains a space, control or non-ASCII character, which an HTTP "
                          "header cannot carry");
    token = strndup(value, (size_t)(end - value));
    if (!token || (tag && token_tag(token, tag) < 0)) {
        secret_free(token);
        return refuse_oom(message);
    }
    *ret_token = token;
    return GRPC_STATUS_OK;
}

/* ---- CreateTask ------------------------------------------------------------ */

/*
 * The per-namespace Secret flytekit would read for this task: custom.databricksTokenSecret in
 * the task's namespace. A name Kubernetes cannot have is refused (a typo would otherwise run the
 * task under the connector's own identity); a namespace it cannot have, which propeller never
 * sends, is treated as none.
 */
static grpc_status_code check_token_secret(const cJSON *custom, const char *namespace,
                                           struct task_request_creds *ret,
                                           char message[TASK_REQUEST_MESSAGE_SIZE])
{
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(custom, "databricksTokenSecret");
    char q[64 + 4];

    if (secret && !cJSON_IsNull(secret)) {
        if (!cJSON_IsString(secret))
            return refuse(message, GRPC_STATUS_INVALID_ARGUMENT,
                          "custom.databricksTokenSecret must be a string");
        if (!k8s_secret_name_valid(secret->valuestring)) {
            errmsg_printable(q, sizeof(q), secret->valuestring, ERRMSG_QUOTED);
            return refuse(message, GRPC_STATUS_INVALID_ARGUMENT,
                          "custom.databricksTokenSecret '%s' is not a Kubernetes Secret name "
                          "(lowercase letters, digits, '-' and '.', at most 253)",
                          q);
        }
        ret->token_secret = strdup(secret->valuestring);
        if (!ret->token_secret)
            return refuse_oom(message);
    }
    if (k8s_secret_namespace_valid(namespace)) {
        ret->namespace = strdup(namespace);
        if (!ret->namespace)
            return refuse_oom(message);
    }
    return GRPC_STATUS_OK;
}

/* The checks and the body, from plain values; fills ret's instance, body and retry_safe. */
static grpc_status_code check_create(const struct config *config, const struct create_ask *ask,
                                     struct task_request_submit *ret)
{
    cJSON *custom = NULL, *body = NULL;
    char *error = NULL;
    const char *requested = NULL;
    grpc_status_code code;

    code = check_task_type(ask->task_type, ret->message);
    if (code != GRPC_STATUS_OK)
        goto out;
    if (!ask->custom) {
        code = refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT,
                      "task template has no custom config: missing databricksConf");
        goto out;
    }
    if (structjson_to_cjson(ask->custom, &custom, &error) < 0) {
        code = refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "task template custom config: %s",
                      error ? error : "cannot convert to JSON");
        goto out;
    }
    if (spec_instance(custom, &requested, &error) < 0) {
        code = error ? refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "%s", error)
                     : refuse_oom(ret->message);
        goto out;
    }
    code = check_instance(config, requested ? requested : config->default_instance, &ret->instance,
                          ret->message);
    if (code != GRPC_STATUS_OK)
        goto out;
    code = check_token_secret(custom, ask->namespace, &ret->creds, ret->message);
    if (code != GRPC_STATUS_OK)
        goto out;
    {
        struct spec_input input = ask->container;
        input.custom = custom;
        input.default_credential_provider = config->service_credential_provider;
        input.idempotency_token = ask->has_token ? ret->idempotency_token : NULL;
        input.entrypoint = config_entrypoint(ask->generation);
        free(error);
        error = NULL;
        if (spec_build(&input, &body, &error) < 0) {
            code = refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "%s",
                          error ? error : "cannot build the job spec");
            goto out;
        }
    }
    ret->body = structjson_print(body);
    if (!ret->body) {
        code = refuse_oom(ret->message);
        goto out;
    }
    /* A submit is safe to repeat only with its idempotency_token. */
    ret->retry_safe = ask->has_token;
out:
    free(error);
    cJSON_Delete(body);
    cJSON_Delete(custom);
    return code;
}

/* Refuses a request whose strings protobuf-c would take as they are although they are not
 * UTF-8, or would cut at a NUL (see pbdepth_check_strings()). */
static grpc_status_code check_strings(const ProtobufCMessageDescriptor *descriptor,
                                      const uint8_t *request, size_t request_len,
                                      char message[TASK_REQUEST_MESSAGE_SIZE])
{
    char *error = NULL;
    grpc_status_code code = GRPC_STATUS_OK;

    if (pbdepth_check_strings(descriptor, request, request_len, PBDEPTH_REQUEST_MAX, &error) < 0)
        code = error ? refuse(message, GRPC_STATUS_INVALID_ARGUMENT, "invalid %s: %s",
                              descriptor->name, error)
                     : refuse_oom(message);
    free(error);
    return code;
}

/* Bounds the nesting of a `descriptor` message, checks its strings, then unpacks it into
 * *ret_req (gives; protobuf_c_message_free_unpacked()). */
static grpc_status_code decode(const ProtobufCMessageDescriptor *descriptor, const uint8_t *request,
                               size_t request_len, ProtobufCMessage **ret_req,
                               char message[TASK_REQUEST_MESSAGE_SIZE])
{
    char *error = NULL;
    grpc_status_code code;

    /* template.custom, a Struct, nests without bound and protobuf-c's unpack recurses once per
     * level: bound the nesting before unpacking, or one request overflows the stack. */
    if (pbdepth_check(descriptor, request, request_len, PBDEPTH_REQUEST_MAX, &error) < 0) {
        code = refuse(message, GRPC_STATUS_INVALID_ARGUMENT, "request does not decode as %s: %s",
                      descriptor->name, error ? error : "nested too deeply");
        free(error);
        return code;
    }
    code = check_strings(descriptor, request, request_len, message);
    if (code != GRPC_STATUS_OK)
        return code;
    *ret_req = protobuf_c_message_unpack(descriptor, NULL, request_len, request);
    if (!*ret_req)
        return refuse(message, GRPC_STATUS_INVALID_ARGUMENT, "request does not decode as %s",
                      descriptor->name);
    return GRPC_STATUS_OK;
}

/* What both generations' CreateTaskRequests hold in the same shape: the template's presence,
 * type and custom config, and the inputs (NULL: none), whose size feeds the input-size metric.
 * The type is copied for the answer's log line as well as the checks. */
static grpc_status_code read_template(bool has_template, const char *type,
                                      const Google__Protobuf__Struct *custom,
                                      const ProtobufCMessage *inputs, struct create_ask *ask,
                                      struct task_request_submit *ret)
{
    if (!has_template)
        return refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT,
                      "CreateTaskRequest has no template");
    ask->task_type = type ? type : "";
    ret->task_type = strdup(ask->task_type);
    if (!ret->task_type)
        return refuse_oom(ret->message);
    if (inputs) {
        ret->has_inputs = true;
        ret->input_bytes = protobuf_c_message_get_packed_size(inputs);
    }
    ask->custom = custom;
    return GRPC_STATUS_OK;
}

/* The task's namespace, where its per-namespace Secret lives (NULL or "": none). */
static void read_namespace(const char *namespace, struct create_ask *ask)
{
    ask->namespace = namespace && namespace[0] ? namespace : NULL;
}

/* Without a task execution id there is no token, and the submit is not retried; out of memory
 * must not quietly turn a retry-safe submit into one that is not. r: what
 * idempotency_token_from_metadata*() returned. */
static grpc_status_code read_token(int r, struct create_ask *ask, struct task_request_submit *ret)
{
    if (r == -ENOMEM)
        return refuse_oom(ret->message);
    ask->has_token = r >= 0;
    return GRPC_STATUS_OK;
}

typedef grpc_status_code (*unpack_create_fn)(const struct config *config, ProtobufCMessage *request,
                                             struct create_ask *ask,
                                             struct task_request_submit *ret);

/* flyteidl.admin (Flyte 1): reduces a decoded CreateTaskRequest to *ask. */
static grpc_status_code unpack_create1(const struct config *config, ProtobufCMessage *request,
                                       struct create_ask *ask, struct task_request_submit *ret)
{
    const Flyteidl__Admin__CreateTaskRequest *req = (Flyteidl__Admin__CreateTaskRequest *)request;
    const Flyteidl__Core__TaskTemplate *t = req->template_;
    grpc_status_code code;

    code = read_template(t, t ? t->type : NULL, t ? t->custom : NULL,
                         req->inputs ? &req->inputs->base : NULL, ask, ret);
    if (code != GRPC_STATUS_OK)
        return code;
    if (spec_input_from_template(t, &ask->container, &ask->env) < 0)
        return refuse_oom(ret->message);
    read_namespace(req->task_execution_metadata ? req->task_execution_metadata->namespace_ : NULL,
                   ask);
    return read_token(
        idempotency_token_from_metadata(req->task_execution_metadata, config->idempotency_key,
                                        config->idempotency_key_len, ret->idempotency_token),
        ask, ret);
}

/* flyteidl2.connector (Flyte 2): the same, plus the connection's token. */
static grpc_status_code unpack_create2(const struct config *config, ProtobufCMessage *request,
                                       struct create_ask *ask, struct task_request_submit *ret)
{
    const Flyteidl2__Connector__CreateTaskRequest *req =
        (Flyteidl2__Connector__CreateTaskRequest *)request;
    const Flyteidl2__Core__TaskTemplate *t = req->template_;
    grpc_status_code code;

    code = read_template(t, t ? t->type : NULL, t ? t->custom : NULL,
                         req->inputs ? &req->inputs->base : NULL, ask, ret);
    if (code == GRPC_STATUS_OK)
        code = take_call_token(req->connection, &ret->call_token, NULL, ret->message);
    if (code != GRPC_STATUS_OK)
        return code;
    if (spec_input_from_template2(t, &ask->container, &ask->env) < 0)
        return refuse_oom(ret->message);
    read_namespace(req->task_execution_metadata ? req->task_execution_metadata->namespace_ : NULL,
                   ask);
    return read_token(
        idempotency_token_from_metadata2(req->task_execution_metadata, config->idempotency_key,
                                         config->idempotency_key_len, ret->idempotency_token),
        ask, ret);
}

static const struct {
    const ProtobufCMessageDescriptor *descriptor;
    unpack_create_fn unpack;
} create_unpackers[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] = {&flyteidl__admin__create_task_request__descriptor, unpack_create1},
    [CONFIG_FLYTE_2] = {&flyteidl2__connector__create_task_request__descriptor, unpack_create2},
};

/* Zeroes the secrets a decoded request carries (Flyte 2's Create, Get and Delete all carry the
 * connection as field 5; Flyte 1's have none), then frees it; NULL-safe. */
static void free_request(ProtobufCMessage *req)
{
    const ProtobufCFieldDescriptor *field;

    if (!req)
        return;
    field = protobuf_c_message_descriptor_get_field(req->descriptor, 5);
    if (field && field->type == PROTOBUF_C_TYPE_MESSAGE &&
        field->descriptor == &flyteidl2__core__connection__descriptor)
        wipe_connection(*(Flyteidl2__Core__Connection **)((char *)req + field->offset));
    protobuf_c_message_free_unpacked(req, NULL);
}

grpc_status_code task_request_create(const struct config *config, enum config_generation generation,
                                     const uint8_t *request, size_t request_len,
                                     struct task_request_submit *ret)
{
    ProtobufCMessage *req = NULL;
    struct create_ask ask = {.generation = generation};
    grpc_status_code code;

    memset(ret, 0, sizeof(*ret));
    code =
        decode(create_unpackers[generation].descriptor, request, request_len, &req, ret->message);
    if (code == GRPC_STATUS_OK)
        code = create_unpackers[generation].unpack(config, req, &ask, ret);
    if (code == GRPC_STATUS_OK)
        code = check_create(config, &ask, ret);
    if (code != GRPC_STATUS_OK) {
        ret->idempotency_token[0] = '\0';
        creds_done(&ret->creds);
        secret_free(ret->call_token);
        ret->call_token = NULL;
    }
    free(ask.env);
    free_request(req);
    return code;
}

void task_request_submit_done(struct task_request_submit *s)
{
    if (!s)
        return;
    free(s->task_type);
    s->task_type = NULL;
    free(s->instance);
    s->instance = NULL;
    free(s->body);
    s->body = NULL;
    creds_done(&s->creds);
    secret_free(s->call_token);
    s->call_token = NULL;
}

/* ---- GetTask and DeleteTask -------------------------------------------------- */

/* The task type, then resource_meta into an allowed instance and a run id. */
static grpc_status_code check_run(const struct config *config, const char *task_type,
                                  const uint8_t *resource_meta, size_t resource_meta_len,
                                  struct task_request_run *ret)
{
    struct resmeta meta = {0};
    char *error = NULL;
    grpc_status_code code;

    ret->task_type = strdup(task_type);
    if (!ret->task_type) {
        code = refuse_oom(ret->message);
        goto out;
    }
    code = check_task_type(task_type, ret->message);
    if (code != GRPC_STATUS_OK)
        goto out;
    if (resmeta_decode(resource_meta, resource_meta_len, &meta, &error) < 0) {
        code = refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "%s",
                      error ? error : "malformed resource_meta");
        goto out;
    }
    code = check_instance(config, meta.instance, &ret->instance, ret->message);
    if (code != GRPC_STATUS_OK)
        goto out;
    ret->run_id = meta.run_id;
    meta.run_id = NULL;
    /* The run's token sources: the Secret CreateTask used, or flytekit's own token. */
    ret->creds.namespace = meta.namespace;
    ret->creds.token_secret = meta.token_secret;
    ret->creds.auth_token = meta.auth_token;
    meta.namespace = meta.token_secret = meta.auth_token = NULL;
out:
    free(error);
    resmeta_done(&meta);
    return code;
}

/* flyteidl.admin (Flyte 1): task_category.name, else the deprecated task_type. */
static const char *requested_task_type(const Flyteidl__Admin__TaskCategory *category,
                                       const char *task_type)
{
    if (category && category->name && category->name[0])
        return category->name;
    return task_type ? task_type : "";
}

/* What the checks read from a GetTaskRequest or DeleteTaskRequest, which carry the same
 * fields within a generation. */
struct run_fields {
    const char *task_type;
    ProtobufCBinaryData resource_meta;
    const Flyteidl2__Core__Connection *connection; /* Flyte 2 only; may be NULL */
};

typedef struct run_fields (*run_fields_fn)(const ProtobufCMessage *request);

static struct run_fields get_fields1(const ProtobufCMessage *request)
{
    const Flyteidl__Admin__GetTaskRequest *req = (const Flyteidl__Admin__GetTaskRequest *)request;

    return (struct run_fields){requested_task_type(req->task_category, req->task_type),
                               req->resource_meta, NULL};
}

static struct run_fields delete_fields1(const ProtobufCMessage *request)
{
    const Flyteidl__Admin__DeleteTaskRequest *req =
        (const Flyteidl__Admin__DeleteTaskRequest *)request;

    return (struct run_fields){requested_task_type(req->task_category, req->task_type),
                               req->resource_meta, NULL};
}

/* flyteidl2.connector (Flyte 2): no deprecated task_type, a connection. */
static const char *category_name2(const Flyteidl2__Connector__TaskCategory *category)
{
    return category && category->name ? category->name : "";
}

static struct run_fields get_fields2(const ProtobufCMessage *request)
{
    const Flyteidl2__Connector__GetTaskRequest *req =
        (const Flyteidl2__Connector__GetTaskRequest *)request;

    return (struct run_fields){category_name2(req->task_category), req->resource_meta,
                               req->connection};
}

static struct run_fields delete_fields2(const ProtobufCMessage *request)
{
    const Flyteidl2__Connector__DeleteTaskRequest *req =
        (const Flyteidl2__Connector__DeleteTaskRequest *)request;

    return (struct run_fields){category_name2(req->task_category), req->resource_meta,
                               req->connection};
}

struct run_unpacker {
    const ProtobufCMessageDescriptor *descriptor;
    run_fields_fn read_fields;
};

static const struct run_unpacker get_unpackers[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] = {&flyteidl__admin__get_task_request__descriptor, get_fields1},
    [CONFIG_FLYTE_2] = {&flyteidl2__connector__get_task_request__descriptor, get_fields2},
};

static const struct run_unpacker delete_unpackers[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] = {&flyteidl__admin__delete_task_request__descriptor, delete_fields1},
    [CONFIG_FLYTE_2] = {&flyteidl2__connector__delete_task_request__descriptor, delete_fields2},
};

static grpc_status_code unpack_run(const struct run_unpacker *unpacker, const struct config *config,
                                   const uint8_t *request, size_t request_len,
                                   struct task_request_run *ret)
{
    ProtobufCMessage *req = NULL;
    struct run_fields fields;
    grpc_status_code code;

    memset(ret, 0, sizeof(*ret));
    code = check_strings(unpacker->descriptor, request, request_len, ret->message);
    if (code != GRPC_STATUS_OK)
        return code;
    req = protobuf_c_message_unpack(unpacker->descriptor, NULL, request_len, request);
    if (!req)
        return refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "request does not decode as %s",
                      unpacker->descriptor->name);
    fields = unpacker->read_fields(req);
    code = check_run(config, fields.task_type, fields.resource_meta.data, fields.resource_meta.len,
                     ret);
    if (code == GRPC_STATUS_OK)
        code =
            take_call_token(fields.connection, &ret->call_token, ret->call_token_tag, ret->message);
    if (code != GRPC_STATUS_OK) {
        free(ret->instance);
        ret->instance = NULL;
        free(ret->run_id);
        ret->run_id = NULL;
    }
    free_request(req);
    return code;
}

grpc_status_code task_request_get(const struct config *config, enum config_generation generation,
                                  const uint8_t *request, size_t request_len,
                                  struct task_request_run *ret)
{
    return unpack_run(&get_unpackers[generation], config, request, request_len, ret);
}

grpc_status_code task_request_delete(const struct config *config, enum config_generation generation,
                                     const uint8_t *request, size_t request_len,
                                     struct task_request_run *ret)
{
    return unpack_run(&delete_unpackers[generation], config, request, request_len, ret);
}

void task_request_run_done(struct task_request_run *r)
{
    if (!r)
        return;
    free(r->task_type);
    r->task_type = NULL;
    free(r->instance);
    r->instance = NULL;
    free(r->run_id);
    r->run_id = NULL;
    creds_done(&r->creds);
    secret_free(r->call_token);
    r->call_token = NULL;
    r->call_token_tag[0] = '\0';
}

/* ---- GetTaskLogs ----------------------------------------------------------------- */

/* What the checks read from a GetTaskLogsRequest; both generations carry the same fields
 * (Flyte 2's has no deprecated task_type and no connection). */
struct logs_fields {
    const char *task_type;
    ProtobufCBinaryData resource_meta;
    uint64_t lines;
    const char *token;
};

static struct logs_fields logs_fields1(const ProtobufCMessage *request)
{
    const Flyteidl__Admin__GetTaskLogsRequest *req =
        (const Flyteidl__Admin__GetTaskLogsRequest *)request;

    return (struct logs_fields){requested_task_type(req->task_category, req->task_type),
                                req->resource_meta, req->lines, req->token};
}

static struct logs_fields logs_fields2(const ProtobufCMessage *request)
{
    const Flyteidl2__Connector__GetTaskLogsRequest *req =
        (const Flyteidl2__Connector__GetTaskLogsRequest *)request;

    return (struct logs_fields){category_name2(req->task_category), req->resource_meta, req->lines,
                                req->token};
}

static const struct {
    const ProtobufCMessageDescriptor *descriptor;
    struct logs_fields (*read_fields)(const ProtobufCMessage *request);
} logs_unpackers[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] = {&flyteidl__admin__get_task_logs_request__descriptor, logs_fields1},
    [CONFIG_FLYTE_2] = {&flyteidl2__connector__get_task_logs_request__descriptor, logs_fields2},
};

grpc_status_code task_request_logs(const struct config *config, enum config_generation generation,
                                   const uint8_t *request, size_t request_len,
                                   struct task_request_logs *ret)
{
    ProtobufCMessage *req;
    struct logs_fields fields;
    grpc_status_code code;
    uint64_t first;

    memset(ret, 0, sizeof(*ret));
    req = protobuf_c_message_unpack(logs_unpackers[generation].descriptor, NULL, request_len,
                                    request);
    if (!req)
        return refuse(ret->run.message, GRPC_STATUS_INVALID_ARGUMENT,
                      "request does not decode as %s", logs_unpackers[generation].descriptor->name);
    fields = logs_unpackers[generation].read_fields(req);
    code = check_run(config, fields.task_type, fields.resource_meta.data, fields.resource_meta.len,
                     &ret->run);
    if (code == GRPC_STATUS_OK && log_page_parse_token(fields.token, &first) < 0)
        code = refuse(ret->run.message, GRPC_STATUS_INVALID_ARGUMENT,
                      "token '%.32s' is not one this connector gave (a line number)", fields.token);
    if (code == GRPC_STATUS_OK) {
        ret->lines = fields.lines;
        ret->token = strdup(fields.token ? fields.token : "");
        if (!ret->token)
            code = refuse_oom(ret->run.message);
    }
    free_request(req);
    return code;
}

void task_request_logs_done(struct task_request_logs *l)
{
    if (!l)
        return;
    task_request_run_done(&l->run);
    free(l->token);
    l->token = NULL;
}
