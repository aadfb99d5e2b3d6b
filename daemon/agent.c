/*
 * agent.c - the task handlers: a Flyte Databricks task becomes a one-time
 * Databricks run (runs/submit), its progress a Flyte phase (runs/get), its
 * abort a runs/cancel.
 *
 * Life of a call: the handler decodes and checks everything it can without
 * the network (request shape, task type, instance allowlist, resource_meta),
 * answers bad input at once, and otherwise queues one Databricks request
 * with a `struct pending` as its context. The Databricks client calls back
 * on the curl thread; the callback builds the answer, completes the gRPC
 * call, logs one line and frees the pending state.
 *
 * Error policy (propeller counts every failed GetTask against the task):
 * a verdict on the run is a phase; transient Databricks trouble is retried
 * inside dbx.c and only then becomes UNAVAILABLE, never a terminal phase.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "idempotency.h"
#include "log.h"
#include "metadata.h"
#include "phase.h"
#include "resmeta.h"
#include "spec.h"
#include "structjson.h"

/* Answer this long before the caller's deadline at least, so the caller
 * reads our status rather than its own DEADLINE_EXCEEDED. */
#define DEADLINE_MARGIN_MIN_MS 50
#define DEADLINE_MARGIN_MAX_MS 1000

struct agent {
    const struct config *_Atomic config;
    struct dbx *dbx;
    struct metrics *metrics;
};

enum operation {
    OPERATION_CREATE,
    OPERATION_GET,
    OPERATION_DELETE,
    _OPERATION_MAX,
};

static const char *const operation_names[_OPERATION_MAX] = {
    [OPERATION_CREATE] = "create",
    [OPERATION_GET] = "get",
    [OPERATION_DELETE] = "delete",
};

/* gRPC status for a final Databricks verdict, indexed by enum dbx_verdict.
 * OK and RUN_GONE are decided per operation; RETRY never reaches us. */
static const grpc_status_code verdict_status[_DBX_VERDICT_MAX] = {
    [DBX_VERDICT_OK] = GRPC_STATUS_OK,
    [DBX_VERDICT_RETRY] = GRPC_STATUS_UNAVAILABLE,
    [DBX_VERDICT_RUN_GONE] = GRPC_STATUS_NOT_FOUND,
    [DBX_VERDICT_UNAUTHENTICATED] = GRPC_STATUS_UNAUTHENTICATED,
    [DBX_VERDICT_PERMISSION_DENIED] = GRPC_STATUS_PERMISSION_DENIED,
    [DBX_VERDICT_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
    [DBX_VERDICT_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
};

/* The deprecated Resource.state, for propellers that predate `phase`. */
static const Flyteidl__Admin__State phase_to_state[] = {
    [PHASE_UNDEFINED] = FLYTEIDL__ADMIN__STATE__PENDING,
    [PHASE_QUEUED] = FLYTEIDL__ADMIN__STATE__PENDING,
    [PHASE_RUNNING] = FLYTEIDL__ADMIN__STATE__RUNNING,
    [PHASE_SUCCEEDED] = FLYTEIDL__ADMIN__STATE__SUCCEEDED,
    [PHASE_ABORTED] = FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE,
    [PHASE_FAILED] = FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE,
    [PHASE_INITIALIZING] = FLYTEIDL__ADMIN__STATE__PENDING,
    [PHASE_WAITING_FOR_RESOURCES] = FLYTEIDL__ADMIN__STATE__PENDING,
    [PHASE_RETRYABLE_FAILED] = FLYTEIDL__ADMIN__STATE__RETRYABLE_FAILURE,
};

/* One call waiting for Databricks; owned by the dbx request until done. */
struct pending {
    struct agent *agent;
    const struct config *config; /* the one in force when the call started */
    struct server_call *call;
    enum operation operation;
    char task_type[32];
    char *instance;
    char *run_id;
    int64_t started_ms;
};

struct agent *agent_new(const struct config *config, struct dbx *dbx, struct metrics *metrics)
{
    struct agent *agent = calloc(1, sizeof(*agent));
    if (!agent)
        return NULL;
    atomic_store(&agent->config, config);
    agent->dbx = dbx;
    agent->metrics = metrics;
    return agent;
}

void agent_set_config(struct agent *agent, const struct config *config)
{
    atomic_store(&agent->config, config);
}

struct agent *agent_free(struct agent *agent)
{
    free(agent);
    return NULL;
}

static struct pending *pending_free(struct pending *p)
{
    if (!p)
        return NULL;
    free(p->instance);
    free(p->run_id);
    free(p);
    return NULL;
}

/* One line per finished call, with the fields operators filter on. */
static void log_call(struct agent *agent, const char *task_type, enum operation operation,
                     const char *instance, const char *run_id, grpc_status_code code,
                     int64_t started_ms, const char *message)
{
    char code_text[16], duration[24];
    int64_t elapsed_ms = clock_now_ms() - started_ms;

    if (agent->metrics)
        metrics_request_done(agent->metrics, task_type && task_type[0] ? task_type : "unknown",
                             operation_names[operation], code, (double)elapsed_ms / 1000.0);
    snprintf(code_text, sizeof(code_text), "%d", (int)code);
    snprintf(duration, sizeof(duration), "%" PRId64, elapsed_ms);
    log_write(code == GRPC_STATUS_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
              code == GRPC_STATUS_OK ? "call done" : "call failed", "task_type",
              task_type && task_type[0] ? task_type : NULL, "operation",
              operation_names[operation], "instance", instance, "run_id", run_id, "grpc_code",
              code_text, "duration_ms", duration, "error", message, (const char *)NULL);
}

/* Answers with an error and logs it; for failures found before Databricks. */
static void fail_call(struct agent *agent, struct server_call *call, enum operation operation,
                      const char *task_type, const char *instance, const char *run_id,
                      int64_t started_ms, grpc_status_code code, const char *message)
{
    server_call_fail(call, code, message);
    log_call(agent, task_type, operation, instance, run_id, code, started_ms, message);
}

static void finish_pending(struct pending *p, grpc_status_code code, const char *message)
{
    log_call(p->agent, p->task_type, p->operation, p->instance, p->run_id, code, p->started_ms,
             message);
    pending_free(p);
}

/* The deadline for the Databricks side of a call: the gRPC deadline less a
 * margin, or request_timeout_ms when the caller set none. */
static int64_t databricks_deadline(const struct config *config, const struct server_call *call)
{
    int64_t now = clock_now_ms();
    int64_t deadline = server_call_deadline_ms(call);
    int64_t margin;

    if (deadline == INT64_MAX)
        return now + config->request_timeout_ms;
    margin = (deadline - now) / 10;
    if (margin < DEADLINE_MARGIN_MIN_MS)
        margin = DEADLINE_MARGIN_MIN_MS;
    if (margin > DEADLINE_MARGIN_MAX_MS)
        margin = DEADLINE_MARGIN_MAX_MS;
    return deadline - margin;
}

/*
 * Resolves the instance a request targets: normalizes it and applies the
 * allowlist before any connection is made, so a task author cannot send the
 * connector's token to a host of their choosing.
 */
static grpc_status_code resolve_instance(const struct config *config, const char *requested,
                                         char **ret_instance, char *message, size_t message_size)
{
    char *normalized = NULL;
    char *error = NULL;

    if (!requested || !requested[0]) {
        snprintf(message, message_size,
                 "no Databricks instance: set databricksInstance in the task config or start the "
                 "connector with --instance / FLYTE_DATABRICKS_INSTANCE");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (resmeta_normalize_instance(requested, &normalized, &error) < 0) {
        snprintf(message, message_size, "invalid Databricks instance: %s",
                 error ? error : "malformed");
        free(error);
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (!config_instance_allowed(config, normalized)) {
        snprintf(message, message_size,
                 "Databricks instance '%.200s' is not allowed by this connector (allowed_instances)",
                 normalized);
        free(normalized);
        return GRPC_STATUS_PERMISSION_DENIED;
    }
    *ret_instance = normalized;
    return GRPC_STATUS_OK;
}

/* The task type of a Get/Delete: task_category.name, else the deprecated task_type. */
static const char *requested_task_type(const Flyteidl__Admin__TaskCategory *category,
                                       const char *task_type)
{
    if (category && category->name && category->name[0])
        return category->name;
    return task_type ? task_type : "";
}

static struct pending *pending_new(struct agent *agent, const struct config *config,
                                   struct server_call *call, enum operation operation,
                                   const char *task_type, char *instance, char *run_id,
                                   int64_t started_ms)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->agent = agent;
    p->config = config;
    p->call = call;
    p->operation = operation;
    snprintf(p->task_type, sizeof(p->task_type), "%s", task_type);
    p->instance = instance;
    p->run_id = run_id;
    p->started_ms = started_ms;
    return p;
}

/* Queues the Databricks request or answers UNAVAILABLE; takes p and body. */
static void send_to_databricks(struct pending *p, enum dbx_endpoint endpoint, char *body,
                               bool retry_safe, dbx_done_fn done)
{
    int r = dbx_request(p->agent->dbx, endpoint, p->instance, p->run_id, body, retry_safe,
                        databricks_deadline(p->config, p->call), done, p);
    if (r < 0) {
        const char *message = r == -ESHUTDOWN ? "connector shutting down" : "out of memory";
        server_call_fail(p->call, GRPC_STATUS_UNAVAILABLE, message);
        finish_pending(p, GRPC_STATUS_UNAVAILABLE, message);
    }
}

/* Fails the call with the gRPC status of a Databricks verdict. */
static void fail_from_answer(struct pending *p, const struct dbx_answer *answer)
{
    grpc_status_code code = verdict_status[answer->verdict];
    server_call_fail(p->call, code, answer->message);
    finish_pending(p, code, answer->message);
}

/* ---- CreateTask ---------------------------------------------------------- */

static void on_submitted(void *user, const struct dbx_answer *answer)
{
    struct pending *p = user;
    Flyteidl__Admin__CreateTaskResponse resp = FLYTEIDL__ADMIN__CREATE_TASK_RESPONSE__INIT;
    const cJSON *run_id;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    char digits[32];

    if (answer->verdict != DBX_VERDICT_OK) {
        if (answer->verdict == DBX_VERDICT_RUN_GONE) {
            /* A "does not exist" on submit names something in the job spec. */
            server_call_fail(p->call, GRPC_STATUS_INVALID_ARGUMENT, answer->message);
            finish_pending(p, GRPC_STATUS_INVALID_ARGUMENT, answer->message);
            return;
        }
        fail_from_answer(p, answer);
        return;
    }
    /* Run ids are int64; cJSON reads numbers as doubles, exact below 2^53. */
    run_id = cJSON_GetObjectItemCaseSensitive(answer->body, "run_id");
    if (!cJSON_IsNumber(run_id) || run_id->valuedouble < 0 || run_id->valuedouble > 9007199254740991.0 ||
        run_id->valuedouble != (double)(int64_t)run_id->valuedouble) {
        const char *message = "Databricks runs/submit answered without a valid run_id";
        server_call_fail(p->call, GRPC_STATUS_UNAVAILABLE, message);
        finish_pending(p, GRPC_STATUS_UNAVAILABLE, message);
        return;
    }
    snprintf(digits, sizeof(digits), "%" PRId64, (int64_t)run_id->valuedouble);
    p->run_id = strdup(digits);
    if (!p->run_id || resmeta_encode(p->instance, digits, &meta, &meta_len) < 0) {
        server_call_fail(p->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        finish_pending(p, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    resp.resource_meta.data = meta;
    resp.resource_meta.len = meta_len;
    server_call_reply(p->call, &resp.base);
    free(meta);
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

/* Fills the idempotency key from the task execution id; false when the
 * request carries none (then the submit is not retried). */
static bool task_execution_token(const Flyteidl__Admin__TaskExecutionMetadata *metadata,
                                 char token[IDEMPOTENCY_TOKEN_SIZE])
{
    const Flyteidl__Core__TaskExecutionIdentifier *id =
        metadata ? metadata->task_execution_id : NULL;
    const Flyteidl__Core__NodeExecutionIdentifier *node = id ? id->node_execution_id : NULL;
    const Flyteidl__Core__WorkflowExecutionIdentifier *execution =
        node ? node->execution_id : NULL;
    const Flyteidl__Core__Identifier *task = id ? id->task_id : NULL;
    struct idempotency_task_execution key = {0};

    if (!execution)
        return false;
    key.project = execution->project;
    key.domain = execution->domain;
    key.execution_name = execution->name;
    key.org = execution->org;
    key.node_id = node->node_id;
    if (task) {
        key.task_project = task->project;
        key.task_domain = task->domain;
        key.task_name = task->name;
        key.task_version = task->version;
    }
    key.retry_attempt = id->retry_attempt;
    return idempotency_token(&key, token) >= 0;
}

void agent_create_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len)
{
    struct agent *agent = context;
    const struct config *config = atomic_load(&agent->config);
    int64_t started_ms = clock_now_ms();
    Flyteidl__Admin__CreateTaskRequest *req = NULL;
    const Flyteidl__Core__TaskTemplate *template_;
    const Flyteidl__Core__Container *container = NULL;
    cJSON *custom = NULL, *body = NULL;
    struct spec_env_var *env = NULL;
    char *error = NULL, *instance = NULL, *printed = NULL;
    char token[IDEMPOTENCY_TOKEN_SIZE];
    bool has_token;
    char message[768];
    const char *task_type = "";
    grpc_status_code code;
    struct pending *p;

    req = flyteidl__admin__create_task_request__unpack(NULL, request_len, request);
    if (!req) {
        snprintf(message, sizeof(message),
                 "request does not decode as flyteidl.admin.CreateTaskRequest");
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    template_ = req->template_;
    if (!template_) {
        snprintf(message, sizeof(message), "CreateTaskRequest has no template");
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    task_type = template_->type ? template_->type : "";
    if (agent->metrics && req->inputs)
        metrics_input_bytes(agent->metrics, task_type,
                            protobuf_c_message_get_packed_size(&req->inputs->base));
    if (!metadata_task_type_supported(task_type)) {
        snprintf(message, sizeof(message),
                 "no connector for task type '%.64s'; this one serves 'spark' and 'databricks'",
                 task_type);
        code = GRPC_STATUS_NOT_FOUND;
        goto fail;
    }
    if (!template_->custom) {
        snprintf(message, sizeof(message),
                 "task template has no custom config: missing databricksConf");
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    if (structjson_to_cjson(template_->custom, &custom, &error) < 0) {
        snprintf(message, sizeof(message), "task template custom config: %s",
                 error ? error : "cannot convert to JSON");
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto fail;
    }

    {
        const char *requested = spec_instance(custom);
        code = resolve_instance(config, requested ? requested : config->default_instance,
                                &instance, message, sizeof(message));
        if (code != GRPC_STATUS_OK)
            goto fail;
    }

    if (template_->target_case == FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER)
        container = template_->container;
    if (container && container->n_env > 0) {
        env = calloc(container->n_env, sizeof(*env));
        if (!env) {
            snprintf(message, sizeof(message), "out of memory");
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            goto fail;
        }
        for (size_t i = 0; i < container->n_env; i++) {
            env[i].name = container->env[i]->key;
            env[i].value = container->env[i]->value;
        }
    }
    has_token = task_execution_token(req->task_execution_metadata, token);

    {
        struct spec_input input = {
            .custom = custom,
            .image = container ? container->image : NULL,
            .args = container ? (const char *const *)container->args : NULL,
            .args_count = container ? container->n_args : 0,
            .env = env,
            .env_count = container ? container->n_env : 0,
            .default_credential_provider = config->service_credential_provider,
            .idempotency_token = has_token ? token : NULL,
        };
        free(error);
        error = NULL;
        if (spec_build(&input, &body, &error) < 0) {
            snprintf(message, sizeof(message), "%s", error ? error : "cannot build the job spec");
            code = GRPC_STATUS_INVALID_ARGUMENT;
            goto fail;
        }
    }
    printed = structjson_print(body);
    if (!printed) {
        snprintf(message, sizeof(message), "out of memory");
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        goto fail;
    }

    p = pending_new(agent, config, call, OPERATION_CREATE, task_type, instance, NULL, started_ms);
    if (!p) {
        snprintf(message, sizeof(message), "out of memory");
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        goto fail;
    }
    instance = NULL;
    log_debug("submitting run", "task_type", task_type, "instance", p->instance,
              "idempotency_token", has_token ? token : "(none)");
    /* A submit is safe to repeat only with its idempotency_token. */
    send_to_databricks(p, DBX_RUNS_SUBMIT, printed, has_token, on_submitted);
    printed = NULL;
    goto out;

fail:
    fail_call(agent, call, OPERATION_CREATE, task_type, instance, NULL, started_ms, code, message);
out:
    free(printed);
    free(env);
    free(instance);
    free(error);
    cJSON_Delete(body);
    cJSON_Delete(custom);
    if (req)
        flyteidl__admin__create_task_request__free_unpacked(req, NULL);
}

/* ---- GetTask and DeleteTask: decoding shared by both --------------------- */

/*
 * Checks the task type and decodes resource_meta into an allowed instance
 * and a run id. On failure fills code/message and returns -1.
 */
static int decode_task_reference(const struct config *config, const char *task_type,
                                 ProtobufCBinaryData resource_meta, char **ret_instance,
                                 char **ret_run_id, grpc_status_code *ret_code, char *message,
                                 size_t message_size)
{
    struct resmeta meta = {0};
    char *error = NULL;
    char *instance = NULL;
    grpc_status_code code;
    int r = -1;

    if (!metadata_task_type_supported(task_type)) {
        snprintf(message, message_size,
                 "no connector for task type '%.64s'; this one serves 'spark' and 'databricks'",
                 task_type);
        *ret_code = GRPC_STATUS_NOT_FOUND;
        goto out;
    }
    /* flytekit's resource_meta may carry "auth_token": resmeta ignores it. */
    if (resmeta_decode(resource_meta.data, resource_meta.len, &meta, &error) < 0) {
        snprintf(message, message_size, "%s", error ? error : "malformed resource_meta");
        *ret_code = GRPC_STATUS_INVALID_ARGUMENT;
        goto out;
    }
    code = resolve_instance(config, meta.instance, &instance, message, message_size);
    if (code != GRPC_STATUS_OK) {
        *ret_code = code;
        goto out;
    }
    *ret_instance = instance;
    *ret_run_id = meta.run_id;
    meta.run_id = NULL;
    r = 0;
out:
    free(error);
    resmeta_done(&meta);
    return r;
}

/* ---- GetTask --------------------------------------------------------------- */

static void reply_resource(struct pending *p, enum phase phase, const char *message,
                           const char *log_uri, const char *error_code, bool error_recoverable,
                           enum phase_origin error_origin)
{
    Flyteidl__Admin__GetTaskResponse resp = FLYTEIDL__ADMIN__GET_TASK_RESPONSE__INIT;
    Flyteidl__Admin__Resource resource = FLYTEIDL__ADMIN__RESOURCE__INIT;
    Flyteidl__Core__TaskLog log_link = FLYTEIDL__CORE__TASK_LOG__INIT;
    Flyteidl__Core__TaskLog *log_links[1] = {&log_link};
    Flyteidl__Admin__AgentError agent_error = FLYTEIDL__ADMIN__AGENT_ERROR__INIT;

    resource.phase = (Flyteidl__Core__TaskExecution__Phase)phase;
    resource.state = phase_to_state[phase];
    resource.message = (char *)(message ? message : "");
    if (log_uri) {
        log_link.uri = (char *)log_uri;
        log_link.name = (char *)"Databricks Console";
        resource.n_log_links = 1;
        resource.log_links = log_links;
    }
    if (error_code) {
        agent_error.code = (char *)error_code;
        agent_error.kind = error_recoverable ? FLYTEIDL__ADMIN__AGENT_ERROR__KIND__RECOVERABLE
                                             : FLYTEIDL__ADMIN__AGENT_ERROR__KIND__NON_RECOVERABLE;
        agent_error.origin = (Flyteidl__Core__ExecutionError__ErrorKind)error_origin;
        resource.agent_error = &agent_error;
    }
    resp.resource = &resource;
    server_call_reply(p->call, &resp.base);
}

static void on_run(void *user, const struct dbx_answer *answer)
{
    struct pending *p = user;
    struct phase_result result = {0};
    char *error = NULL;
    char *fallback_uri = NULL;
    char message[768];

    if (answer->verdict == DBX_VERDICT_RUN_GONE) {
        /* A run that is gone will never finish: end the task instead of
         * letting propeller poll forever. */
        snprintf(message, sizeof(message),
                 "Databricks run %s no longer exists on %s (%s)", p->run_id, p->instance,
                 answer->message);
        reply_resource(p, PHASE_FAILED, message, NULL, "RUN_NOT_FOUND", false,
                       PHASE_ORIGIN_SYSTEM);
        finish_pending(p, GRPC_STATUS_OK, NULL);
        return;
    }
    if (answer->verdict != DBX_VERDICT_OK) {
        fail_from_answer(p, answer);
        return;
    }
    if (phase_from_run(answer->body, &result, &error) < 0) {
        /* An answer we cannot read is Databricks-side trouble, not a verdict. */
        snprintf(message, sizeof(message), "Databricks runs/get answer for run %s: %s",
                 p->run_id, error ? error : "unreadable");
        server_call_fail(p->call, GRPC_STATUS_UNAVAILABLE, message);
        finish_pending(p, GRPC_STATUS_UNAVAILABLE, message);
        goto out;
    }
    if (!result.run_page_url) {
        /* flytekit's link form when Databricks gives no run_page_url. */
        const cJSON *job_id = cJSON_GetObjectItemCaseSensitive(answer->body, "job_id");
        if (cJSON_IsNumber(job_id) &&
            asprintf(&fallback_uri, "https://%s/#job/%.0f/run/%s", p->instance,
                     job_id->valuedouble, p->run_id) < 0)
            fallback_uri = NULL;
    }
    reply_resource(p, result.phase, result.message,
                   result.run_page_url ? result.run_page_url : fallback_uri,
                   result.has_error ? result.error_code : NULL, result.error_recoverable,
                   result.error_origin);
    if (log_enabled(LOG_LEVEL_DEBUG))
        log_debug("run state", "run_id", p->run_id, "instance", p->instance, "phase",
                  phase_name(result.phase));
    finish_pending(p, GRPC_STATUS_OK, NULL);
out:
    free(fallback_uri);
    free(error);
    phase_result_done(&result);
}

void agent_get_task(void *context, struct server_call *call, const uint8_t *request,
                    size_t request_len)
{
    struct agent *agent = context;
    const struct config *config = atomic_load(&agent->config);
    int64_t started_ms = clock_now_ms();
    Flyteidl__Admin__GetTaskRequest *req;
    char *instance = NULL, *run_id = NULL;
    grpc_status_code code;
    char message[768];
    const char *task_type;
    struct pending *p;

    req = flyteidl__admin__get_task_request__unpack(NULL, request_len, request);
    if (!req) {
        fail_call(agent, call, OPERATION_GET, NULL, NULL, NULL, started_ms, GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl.admin.GetTaskRequest");
        return;
    }
    task_type = requested_task_type(req->task_category, req->task_type);
    if (decode_task_reference(config, task_type, req->resource_meta, &instance, &run_id, &code,
                              message, sizeof(message)) < 0) {
        fail_call(agent, call, OPERATION_GET, task_type, NULL, NULL, started_ms, code, message);
        goto out;
    }
    p = pending_new(agent, config, call, OPERATION_GET, task_type, instance, run_id, started_ms);
    if (!p) {
        fail_call(agent, call, OPERATION_GET, task_type, instance, run_id, started_ms,
                  GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        free(instance);
        free(run_id);
        goto out;
    }
    send_to_databricks(p, DBX_RUNS_GET, NULL, true, on_run);
out:
    flyteidl__admin__get_task_request__free_unpacked(req, NULL);
}

/* ---- DeleteTask ------------------------------------------------------------ */

static void on_cancelled(void *user, const struct dbx_answer *answer)
{
    struct pending *p = user;
    Flyteidl__Admin__DeleteTaskResponse resp = FLYTEIDL__ADMIN__DELETE_TASK_RESPONSE__INIT;

    /* Propeller may abort a task more than once, and cleanup may follow a
     * run that was already deleted: cancelling a gone run is success. */
    if (answer->verdict != DBX_VERDICT_OK && answer->verdict != DBX_VERDICT_RUN_GONE) {
        fail_from_answer(p, answer);
        return;
    }
    server_call_reply(p->call, &resp.base);
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

void agent_delete_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len)
{
    struct agent *agent = context;
    const struct config *config = atomic_load(&agent->config);
    int64_t started_ms = clock_now_ms();
    Flyteidl__Admin__DeleteTaskRequest *req;
    char *instance = NULL, *run_id = NULL, *body = NULL;
    grpc_status_code code;
    char message[768];
    const char *task_type;
    struct pending *p;

    req = flyteidl__admin__delete_task_request__unpack(NULL, request_len, request);
    if (!req) {
        fail_call(agent, call, OPERATION_DELETE, NULL, NULL, NULL, started_ms,
                  GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl.admin.DeleteTaskRequest");
        return;
    }
    task_type = requested_task_type(req->task_category, req->task_type);
    if (decode_task_reference(config, task_type, req->resource_meta, &instance, &run_id, &code,
                              message, sizeof(message)) < 0) {
        fail_call(agent, call, OPERATION_DELETE, task_type, NULL, NULL, started_ms, code, message);
        goto out;
    }
    /* run_id is validated digits: print it as a JSON number, exactly. */
    if (asprintf(&body, "{\"run_id\":%s}", run_id) < 0)
        body = NULL;
    p = body ? pending_new(agent, config, call, OPERATION_DELETE, task_type, instance, run_id,
                           started_ms)
             : NULL;
    if (!p) {
        fail_call(agent, call, OPERATION_DELETE, task_type, instance, run_id, started_ms,
                  GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        free(body);
        free(instance);
        free(run_id);
        goto out;
    }
    send_to_databricks(p, DBX_RUNS_CANCEL, body, true, on_cancelled);
out:
    flyteidl__admin__delete_task_request__free_unpacked(req, NULL);
}
