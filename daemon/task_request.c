/*
 * task_request.c - decodes and checks task requests before any network (see task_request.h).
 *
 * Two layers: unpack_* functions know flyteidl.admin v1 and reduce a request to plain values
 * (struct create_ask, or a task type and resource_meta bytes); check_* functions know only
 * those values, the configuration and the Databricks side. The checks run in the order the
 * handlers have always used, so a request with several faults gets the same message as before.
 *
 * Owns nothing between calls; every result is handed to the caller. Pure: any thread.
 */
#include "task_request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "pbdepth.h"
#include "resmeta.h"
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
    const char *task_type;
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

/* ---- CreateTask ------------------------------------------------------------ */

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
    {
        struct spec_input input = ask->container;
        input.custom = custom;
        input.default_credential_provider = config->service_credential_provider;
        input.idempotency_token = ask->has_token ? ret->idempotency_token : NULL;
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

/* flyteidl.admin v1: bounds the nesting, checks the strings, unpacks, and reduces the request to
 * *ask. Gives *ret_req (free_unpacked) once it decodes. */
static grpc_status_code unpack_create(const struct config *config, const uint8_t *request,
                                      size_t request_len,
                                      Flyteidl__Admin__CreateTaskRequest **ret_req,
                                      struct create_ask *ask, struct task_request_submit *ret)
{
    Flyteidl__Admin__CreateTaskRequest *req;
    const Flyteidl__Core__TaskTemplate *template_;
    char *error = NULL;
    grpc_status_code code;
    int r;

    /* template.custom, a Struct, nests without bound and protobuf-c's unpack recurses once per
     * level: bound the nesting before unpacking, or one request overflows the stack. */
    if (pbdepth_check(&flyteidl__admin__create_task_request__descriptor, request, request_len,
                      PBDEPTH_REQUEST_MAX, &error) < 0) {
        code = refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT,
                      "request does not decode as flyteidl.admin.CreateTaskRequest: %s",
                      error ? error : "nested too deeply");
        free(error);
        return code;
    }
    code = check_strings(&flyteidl__admin__create_task_request__descriptor, request, request_len,
                         ret->message);
    if (code != GRPC_STATUS_OK)
        return code;
    req = flyteidl__admin__create_task_request__unpack(NULL, request_len, request);
    if (!req)
        return refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT,
                      "request does not decode as flyteidl.admin.CreateTaskRequest");
    *ret_req = req;
    template_ = req->template_;
    if (!template_)
        return refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT,
                      "CreateTaskRequest has no template");
    ask->task_type = template_->type ? template_->type : "";
    ret->task_type = strdup(ask->task_type);
    if (!ret->task_type)
        return refuse_oom(ret->message);
    if (req->inputs) {
        ret->has_inputs = true;
        ret->input_bytes = protobuf_c_message_get_packed_size(&req->inputs->base);
    }
    ask->custom = template_->custom;
    if (spec_input_from_template(template_, &ask->container, &ask->env) < 0)
        return refuse_oom(ret->message);
    /* Without a task execution id there is no token, and the submit is not retried; out of
     * memory must not quietly turn a retry-safe submit into one that is not. */
    r = idempotency_token_from_metadata(req->task_execution_metadata, config->idempotency_key,
                                        config->idempotency_key_len, ret->idempotency_token);
    if (r == -ENOMEM)
        return refuse_oom(ret->message);
    ask->has_token = r >= 0;
    return GRPC_STATUS_OK;
}

grpc_status_code task_request_create(const struct config *config, const uint8_t *request,
                                     size_t request_len, struct task_request_submit *ret)
{
    Flyteidl__Admin__CreateTaskRequest *req = NULL;
    struct create_ask ask = {0};
    grpc_status_code code;

    memset(ret, 0, sizeof(*ret));
    code = unpack_create(config, request, request_len, &req, &ask, ret);
    if (code == GRPC_STATUS_OK)
        code = check_create(config, &ask, ret);
    if (code != GRPC_STATUS_OK)
        ret->idempotency_token[0] = '\0';
    free(ask.env);
    if (req)
        flyteidl__admin__create_task_request__free_unpacked(req, NULL);
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
    /* flytekit's resource_meta may carry "auth_token": resmeta ignores it. */
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
out:
    free(error);
    resmeta_done(&meta);
    return code;
}

/* flyteidl.admin v1: task_category.name, else the deprecated task_type. */
static const char *requested_task_type(const Flyteidl__Admin__TaskCategory *category,
                                       const char *task_type)
{
    if (category && category->name && category->name[0])
        return category->name;
    return task_type ? task_type : "";
}

/* What check_run() reads from a flyteidl.admin v1 GetTaskRequest or DeleteTaskRequest, which
 * carry the same fields. */
struct run_fields {
    const char *task_type;
    ProtobufCBinaryData resource_meta;
};

typedef struct run_fields (*run_fields_fn)(const ProtobufCMessage *request);

static struct run_fields get_fields(const ProtobufCMessage *request)
{
    const Flyteidl__Admin__GetTaskRequest *req = (const Flyteidl__Admin__GetTaskRequest *)request;

    return (struct run_fields){requested_task_type(req->task_category, req->task_type),
                               req->resource_meta};
}

static struct run_fields delete_fields(const ProtobufCMessage *request)
{
    const Flyteidl__Admin__DeleteTaskRequest *req =
        (const Flyteidl__Admin__DeleteTaskRequest *)request;

    return (struct run_fields){requested_task_type(req->task_category, req->task_type),
                               req->resource_meta};
}

static grpc_status_code unpack_run(const ProtobufCMessageDescriptor *descriptor,
                                   run_fields_fn read_fields, const struct config *config,
                                   const uint8_t *request, size_t request_len,
                                   struct task_request_run *ret)
{
    ProtobufCMessage *req = NULL;
    struct run_fields fields;
    grpc_status_code code;

    memset(ret, 0, sizeof(*ret));
    code = check_strings(descriptor, request, request_len, ret->message);
    if (code != GRPC_STATUS_OK)
        return code;
    req = protobuf_c_message_unpack(descriptor, NULL, request_len, request);
    if (!req)
        return refuse(ret->message, GRPC_STATUS_INVALID_ARGUMENT, "request does not decode as %s",
                      descriptor->name);
    fields = read_fields(req);
    code = check_run(config, fields.task_type, fields.resource_meta.data, fields.resource_meta.len,
                     ret);
    protobuf_c_message_free_unpacked(req, NULL);
    return code;
}

grpc_status_code task_request_get(const struct config *config, const uint8_t *request,
                                  size_t request_len, struct task_request_run *ret)
{
    return unpack_run(&flyteidl__admin__get_task_request__descriptor, get_fields, config, request,
                      request_len, ret);
}

grpc_status_code task_request_delete(const struct config *config, const uint8_t *request,
                                     size_t request_len, struct task_request_run *ret)
{
    return unpack_run(&flyteidl__admin__delete_task_request__descriptor, delete_fields, config,
                      request, request_len, ret);
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
}
