/*
 * agent.c - the task handlers: a Flyte Databricks task becomes a one-time
 * Databricks run (runs/submit), its progress a Flyte phase (runs/get), its
 * abort a runs/cancel.
 *
 * Life of a call: task_request.c decodes and checks everything it can
 * without the network (request shape, task type, instance allowlist,
 * resource_meta, the runs/submit body); the handler answers bad input at
 * once, and otherwise queues one Databricks request with a `struct pending`
 * as its context, through creds.c, which finds the call's token (and says
 * where it came from, for the log line and resource_meta). The Databricks client calls back on its
 * own thread; the callback builds the answer, completes the gRPC call, logs one line and frees the
 * pending state. GetTasks for one run share one runs/get through runs.c, which also decides what
 * each waiter hears (runs_decide_answer()).
 *
 * Error policy (propeller counts every failed GetTask against the task):
 * a verdict on the run is a phase; transient Databricks trouble is retried
 * inside dbx.c and only then becomes UNAVAILABLE, never a terminal phase.
 *
 * Both protocol generations share these handlers: Flyte 1's
 * flyteidl.service.AsyncAgentService and Flyte 2's
 * flyteidl2.connector.AsyncConnectorService differ only in their messages.
 * task_request.c unpacks either into plain values, and the table
 * `generations` packs the answers (struct resource) into the caller's
 * generation's messages; a handler's context says which (agent_service()).
 *
 * This file only turns those decisions into gRPC answers, log lines and
 * metrics; tests/unit/test_agent.c runs it against fakes of creds_request()
 * and the server_call functions.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "creds.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "flyteidl2/connector/connector.pb-c.h"
#include "log.h"
#include "phase.h"
#include "resmeta.h"
#include "retry.h"
#include "run_details.h"
#include "runs.h"
#include "secret.h"
#include "task_request.h"

/* What a GetTask answers, whatever the generation. Strings borrowed for the reply. */
struct resource {
    enum phase phase;
    const char *message;    /* NULL: "" */
    const char *log_uri;    /* the run page, as a "Databricks Console" log link; NULL: none */
    const char *error_code; /* a failed run's error details (Flyte 1 only); NULL: none */
    bool error_recoverable;
    enum phase_origin error_origin;
    const struct phase_result *details; /* the run's custom_info (run_details.h); NULL: none */
};

/* How one protocol generation's answers are packed; the handlers are shared. */
struct generation {
    void (*reply_created)(struct server_call *call, const uint8_t *meta, size_t meta_len);
    void (*reply_resource)(struct server_call *call, const struct config *config,
                           const struct resource *resource);
    void (*reply_deleted)(struct server_call *call);
};

struct agent_service {
    struct agent *agent;
    enum config_generation id;
    const struct generation *generation;
};

struct agent {
    struct config_current *current; /* borrowed: the configuration in force */
    struct creds *creds;
    struct metrics *metrics;
    struct runs *runs;
    struct agent_service services[_CONFIG_GENERATION_MAX];
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

/* ---- Each generation's messages -------------------------------------------- */

static void reply_created1(struct server_call *call, const uint8_t *meta, size_t meta_len)
{
    Flyteidl__Admin__CreateTaskResponse resp = FLYTEIDL__ADMIN__CREATE_TASK_RESPONSE__INIT;

    resp.resource_meta = (ProtobufCBinaryData){meta_len, (uint8_t *)meta};
    server_call_reply(call, &resp.base);
}

static void reply_created2(struct server_call *call, const uint8_t *meta, size_t meta_len)
{
    Flyteidl2__Connector__CreateTaskResponse resp =
        FLYTEIDL2__CONNECTOR__CREATE_TASK_RESPONSE__INIT;

    resp.resource_meta = (ProtobufCBinaryData){meta_len, (uint8_t *)meta};
    server_call_reply(call, &resp.base);
}

/* The run's page, as the one log link either generation's Resource carries: gives how many
 * links (0 or 1) and points the link's fields at borrowed strings. */
static size_t console_link(const struct resource *r, char **ret_uri, char **ret_name)
{
    if (!r->log_uri)
        return 0;
    *ret_uri = (char *)r->log_uri;
    *ret_name = (char *)"Databricks Console";
    return 1;
}

/* Flyte 1: the phase with the deprecated state beside it, and agent_error on failures.
 * RETRYABLE_FAILED (enum 8) exists from Flyte 1.16.0 on: an older propeller reports an unknown
 * phase, so retryable_failed_phase false answers FAILED instead, with the same message. */
static void reply_resource1(struct server_call *call, const struct config *config,
                            const struct resource *r)
{
    Flyteidl__Admin__GetTaskResponse resp = FLYTEIDL__ADMIN__GET_TASK_RESPONSE__INIT;
    Flyteidl__Admin__Resource resource = FLYTEIDL__ADMIN__RESOURCE__INIT;
    Flyteidl__Core__TaskLog log_link = FLYTEIDL__CORE__TASK_LOG__INIT;
    Flyteidl__Core__TaskLog *log_links[1] = {&log_link};
    Flyteidl__Admin__AgentError agent_error = FLYTEIDL__ADMIN__AGENT_ERROR__INIT;
    ProtobufCMessageUnknownField custom_info;
    enum phase phase = r->phase;

    if (phase == PHASE_RETRYABLE_FAILED && !config->retryable_failed_phase)
        phase = PHASE_FAILED;
    resource.phase = (Flyteidl__Core__TaskExecution__Phase)phase;
    resource.state = phase_to_state[phase];
    resource.message = (char *)(r->message ? r->message : "");
    resource.n_log_links = console_link(r, &log_link.uri, &log_link.name);
    resource.log_links = log_links;
    if (r->error_code) {
        agent_error.code = (char *)r->error_code;
        agent_error.kind = r->error_recoverable
                               ? FLYTEIDL__ADMIN__AGENT_ERROR__KIND__RECOVERABLE
                               : FLYTEIDL__ADMIN__AGENT_ERROR__KIND__NON_RECOVERABLE;
        agent_error.origin = (Flyteidl__Core__ExecutionError__ErrorKind)r->error_origin;
        resource.agent_error = &agent_error;
    }
    resource.base.n_unknown_fields = run_details_custom_info(r->details, &custom_info);
    resource.base.unknown_fields = &custom_info;
    resp.resource = &resource;
    server_call_reply(call, &resp.base);
}

/* Flyte 2's Resource has neither state nor agent_error: the phase, message and link say it.
 * Its executor knows RETRYABLE_FAILED, so retryable_failed_phase does not apply. */
static void reply_resource2(struct server_call *call, const struct config *config,
                            const struct resource *r)
{
    Flyteidl2__Connector__GetTaskResponse resp = FLYTEIDL2__CONNECTOR__GET_TASK_RESPONSE__INIT;
    Flyteidl2__Connector__Resource resource = FLYTEIDL2__CONNECTOR__RESOURCE__INIT;
    Flyteidl2__Core__TaskLog log_link = FLYTEIDL2__CORE__TASK_LOG__INIT;
    Flyteidl2__Core__TaskLog *log_links[1] = {&log_link};
    ProtobufCMessageUnknownField custom_info;

    (void)config;
    resource.phase = (Flyteidl2__Core__TaskExecution__Phase)r->phase;
    resource.message = (char *)(r->message ? r->message : "");
    resource.n_log_links = console_link(r, &log_link.uri, &log_link.name);
    resource.log_links = log_links;
    resource.base.n_unknown_fields = run_details_custom_info(r->details, &custom_info);
    resource.base.unknown_fields = &custom_info;
    resp.resource = &resource;
    server_call_reply(call, &resp.base);
}

static void reply_deleted1(struct server_call *call)
{
    Flyteidl__Admin__DeleteTaskResponse resp = FLYTEIDL__ADMIN__DELETE_TASK_RESPONSE__INIT;

    server_call_reply(call, &resp.base);
}

static void reply_deleted2(struct server_call *call)
{
    Flyteidl2__Connector__DeleteTaskResponse resp =
        FLYTEIDL2__CONNECTOR__DELETE_TASK_RESPONSE__INIT;

    server_call_reply(call, &resp.base);
}

static const struct generation generations[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] = {reply_created1, reply_resource1, reply_deleted1},
    [CONFIG_FLYTE_2] = {reply_created2, reply_resource2, reply_deleted2},
};

/* One call waiting for Databricks; owned by the dbx request until done. */
struct pending {
    struct runs_waiter waiter; /* GetTask: linked while a runs/get is awaited */
    struct agent *agent;
    const struct generation *generation; /* the caller's: how to pack the answer */
    const struct config *config;         /* a reference to the one in force when the call started */
    struct server_call *call;
    enum operation operation;
    char task_type[32];
    char *instance;
    char *run_id;
    char credential[TASK_REQUEST_TOKEN_TAG_SIZE]; /* GetTask: the token's tag ("": default) */
    int answered_phase; /* GetTask: the phase answered (enum phase); -1: none */
    int64_t started_ms;
    struct creds_used used; /* where the token came from; source NONE until one did */
};

/* A call as its handler begins it, before anything is read from the request. */
struct call_start {
    struct agent_service *service;
    const struct config *config; /* a reference to the one in force when the call arrived */
    struct server_call *call;
    enum operation operation;
    int64_t started_ms;
};

static struct call_start call_start(void *context, struct server_call *call,
                                    enum operation operation)
{
    struct agent_service *service = context;

    return (struct call_start){
        .service = service,
        .config = config_current_get(service->agent->current),
        .call = call,
        .operation = operation,
        .started_ms = clock_now_ms(),
    };
}

struct agent *agent_new(struct config_current *current, struct creds *creds,
                        struct metrics *metrics)
{
    struct agent *agent = calloc(1, sizeof(*agent));
    const struct config *config = config_current_get(current);
    /* Restart-only settings: the table is sized once. */
    struct runs_settings runs_settings = {
        .max_runs = (size_t)config->max_tracked_runs,
        .status_ttl_ms = config->status_cache_ttl_ms,
        .terminal_ttl_ms = config->terminal_cache_ttl_ms,
    };

    config_unref(config);
    if (!agent)
        return NULL;
    agent->current = current;
    agent->creds = creds;
    agent->metrics = metrics;
    for (int g = 0; g < _CONFIG_GENERATION_MAX; g++)
        agent->services[g] = (struct agent_service){agent, g, &generations[g]};
    agent->runs = runs_new(&runs_settings);
    if (!agent->runs)
        return agent_free(agent);
    return agent;
}

struct agent_service *agent_service(struct agent *agent, enum config_generation generation)
{
    return &agent->services[generation];
}

struct agent *agent_free(struct agent *agent)
{
    if (!agent)
        return NULL;
    runs_free(agent->runs);
    free(agent);
    return NULL;
}

static struct pending *pending_free(struct pending *p)
{
    if (!p)
        return NULL;
    config_unref(p->config);
    free(p->instance);
    free(p->run_id);
    free(p);
    return NULL;
}

/*
 * One line per finished call, with the fields operators filter on, and where its token came
 * from (`used`; NULL or source NONE: none was needed or found). `phase`: the phase a
 * GetTask answered, -1 for none. Failures are warnings; a GetTask that repeats the phase it
 * answered last time for the run (`repeated`) is debug (propeller polls every running task,
 * and a line per poll buried the changes); any other success is info.
 */
static void log_call(struct agent *agent, const char *task_type, enum operation operation,
                     const char *instance, const char *run_id, grpc_status_code code,
                     int64_t started_ms, const char *message, int phase, bool repeated,
                     const struct creds_used *used)
{
    char code_text[16], duration[24];
    int64_t elapsed_ms = clock_now_ms() - started_ms;
    enum log_level level = code != GRPC_STATUS_OK ? LOG_LEVEL_WARNING
                           : repeated             ? LOG_LEVEL_DEBUG
                                                  : LOG_LEVEL_INFO;

    if (agent->metrics)
        metrics_request_done(agent->metrics, task_type && task_type[0] ? task_type : "unknown",
                             operation_names[operation], code, (double)elapsed_ms / 1000.0);
    if (!log_enabled(level))
        return;
    snprintf(code_text, sizeof(code_text), "%d", (int)code);
    snprintf(duration, sizeof(duration), "%" PRId64, elapsed_ms);
    log_write(level, code == GRPC_STATUS_OK ? "call done" : "call failed", "task_type",
              task_type && task_type[0] ? task_type : NULL, "operation", operation_names[operation],
              "instance", instance, "run_id", run_id, "phase",
              phase >= 0 ? phase_name((enum phase)phase) : NULL, "grpc_code", code_text,
              "duration_ms", duration, "token_source",
              used && used->source != CREDS_SOURCE_NONE ? creds_source_name(used->source) : NULL,
              "token_name", used && used->name[0] ? used->name : NULL, "error", message,
              (const char *)NULL);
}

/* Answers with an error and logs it; for failures found before a call has its pending state. */
static void fail_call(const struct call_start *s, const char *task_type, const char *instance,
                      const char *run_id, grpc_status_code code, const char *message)
{
    server_call_fail(s->call, code, message);
    log_call(s->service->agent, task_type, s->operation, instance, run_id, code, s->started_ms,
             message, -1, false, NULL);
}

static void finish_pending(struct pending *p, grpc_status_code code, const char *message)
{
    int phase = code == GRPC_STATUS_OK ? p->answered_phase : -1;
    bool repeated = phase >= 0 && !runs_note_answer(p->agent->runs, p->instance, p->run_id,
                                                    p->credential, (enum phase)phase);

    log_call(p->agent, p->task_type, p->operation, p->instance, p->run_id, code, p->started_ms,
             message, phase, repeated, &p->used);
    pending_free(p);
}

/* Answers a pending call with an error, logs it and frees it. */
static void fail_pending(struct pending *p, grpc_status_code code, const char *message)
{
    server_call_fail(p->call, code, message);
    finish_pending(p, code, message);
}

/* The deadline for the Databricks side of a call (retry.h). */
static int64_t databricks_deadline(const struct config *config, const struct server_call *call)
{
    return retry_call_deadline_ms(clock_now_ms(), server_call_deadline_ms(call),
                                  config->request_timeout_ms);
}

/* Gives the call's pending state, which takes instance and run_id (either may be NULL), or
 * answers RESOURCE_EXHAUSTED and gives NULL; the caller still owns them then. */
static struct pending *pending_new(const struct call_start *s, const char *task_type,
                                   char *instance, char *run_id)
{
    struct pending *p = calloc(1, sizeof(*p));

    if (!p) {
        fail_call(s, task_type, instance, run_id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    p->agent = s->service->agent;
    p->generation = s->service->generation;
    p->config = config_ref(s->config);
    p->call = s->call;
    p->operation = s->operation;
    snprintf(p->task_type, sizeof(p->task_type), "%s", task_type);
    p->instance = instance;
    p->run_id = run_id;
    p->started_ms = s->started_ms;
    p->answered_phase = -1;
    return p;
}

/* The token sources a request names, for creds_request(). */
static struct creds_ask creds_ask_of(const struct task_request_creds *c)
{
    return (struct creds_ask){
        .namespace = c->namespace,
        .token_secret = c->token_secret,
        .resmeta_token = c->auth_token,
    };
}

/* Queues the Databricks request or answers UNAVAILABLE; takes p and body. token: the call's own
 * (borrowed; dbx copies it), NULL for the others creds.c finds from `from`. */
static void send_to_databricks(struct pending *p, enum dbx_endpoint endpoint, char *body,
                               bool retry_safe, const char *token,
                               const struct task_request_creds *from, dbx_done_fn done)
{
    const struct creds_ask ask = creds_ask_of(from);
    const struct dbx_call dbx_call = {
        .endpoint = endpoint,
        .instance = p->instance,
        .run_id = p->run_id,
        .token = token,
        .retry_safe = retry_safe,
        .deadline_ms = databricks_deadline(p->config, p->call),
    };
    int r = creds_request(p->agent->creds, p->config, &dbx_call, &ask, body, done, p, &p->used);
    if (r < 0)
        fail_pending(p, GRPC_STATUS_UNAVAILABLE,
                     r == -ESHUTDOWN ? "connector shutting down" : "out of memory");
}

/* Fails the call with the gRPC status of a Databricks verdict. */
static void fail_from_answer(struct pending *p, const struct dbx_answer *answer)
{
    fail_pending(p, dbx_verdict_status(answer->verdict), answer->message);
}

/* ---- CreateTask ---------------------------------------------------------- */

static void on_submitted(void *user, const struct dbx_answer *answer)
{
    struct pending *p = user;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    char digits[DBX_RUN_ID_SIZE];

    if (answer->verdict != DBX_VERDICT_OK) {
        if (answer->verdict == DBX_VERDICT_RUN_GONE) {
            /* A "does not exist" on submit names something in the job spec. */
            fail_pending(p, GRPC_STATUS_INVALID_ARGUMENT, answer->message);
            return;
        }
        fail_from_answer(p, answer);
        return;
    }
    if (dbx_response_run_id(answer->body, digits) < 0) {
        fail_pending(p, GRPC_STATUS_UNAVAILABLE,
                     "Databricks runs/submit answered without a valid run_id");
        return;
    }
    p->run_id = strdup(digits);
    /* A namespace Secret served the submit: the run's later calls use the same one. */
    if (!p->run_id ||
        resmeta_encode(&(struct resmeta){.instance = p->instance,
                                         .run_id = digits,
                                         .namespace = p->used.source == CREDS_SOURCE_NAMESPACE
                                                          ? p->used.namespace
                                                          : NULL,
                                         .token_secret = p->used.token_secret},
                       &meta, &meta_len) < 0) {
        fail_pending(p, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    p->generation->reply_created(p->call, meta, meta_len);
    free(meta);
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

void agent_create_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len)
{
    const struct call_start s = call_start(context, call, OPERATION_CREATE);
    struct metrics *metrics = s.service->agent->metrics;
    struct task_request_submit submit;
    grpc_status_code code;
    struct pending *p;

    code = task_request_create(s.config, s.service->id, request, request_len, &submit);
    if (metrics && submit.has_inputs)
        metrics_input_bytes(metrics, submit.task_type, submit.input_bytes);
    if (code != GRPC_STATUS_OK) {
        fail_call(&s, submit.task_type, submit.instance, NULL, code, submit.message);
        goto out;
    }
    p = pending_new(&s, submit.task_type, submit.instance, NULL);
    if (!p)
        goto out;
    submit.instance = NULL;
    log_debug("submitting run", "task_type", submit.task_type, "instance", p->instance,
              "idempotency_token",
              submit.idempotency_token[0] ? submit.idempotency_token : "(none)");
    /* A Flyte 2 call's own token (its connection's) is used for this submit alone. */
    send_to_databricks(p, DBX_RUNS_SUBMIT, submit.body, submit.retry_safe, submit.call_token,
                       &submit.creds, on_submitted);
    submit.body = NULL;
out:
    task_request_submit_done(&submit);
    config_unref(s.config);
}

/* ---- GetTask --------------------------------------------------------------- */

/* One runs/get on behalf of every GetTask waiting for the same run, read with the same
 * token. */
struct fetch {
    struct agent *agent;
    const struct config *config; /* a reference to the first caller's */
    char *instance;
    char *run_id;
    char credential[TASK_REQUEST_TOKEN_TAG_SIZE]; /* the token's tag */
    char *token; /* owns a copy of the call's own token, for runs/get-output; NULL: default */
    struct task_request_creds creds; /* owns copies of the run's other token sources */
    struct creds_used used;          /* whose token read it; every waiter's log line names it */
    int64_t deadline_ms;             /* of the Databricks requests made for it */
    uint64_t fetch_id;
    struct pending *alone; /* set when the run could not be tracked */
};

static struct fetch *fetch_free(struct fetch *f)
{
    if (!f)
        return NULL;
    config_unref(f->config);
    free(f->instance);
    free(f->run_id);
    secret_free(f->token);
    secret_free(f->creds.auth_token);
    free(f->creds.namespace);
    free(f->creds.token_secret);
    free(f);
    return NULL;
}

static char *dup_or_null(const char *s, bool *ret_failed)
{
    char *copy = s ? strdup(s) : NULL;

    if (s && !copy)
        *ret_failed = true;
    return copy;
}

static struct fetch *fetch_new(struct agent *agent, struct pending *p, const char *credential,
                               const char *token, const struct task_request_creds *creds,
                               int64_t deadline_ms, uint64_t fetch_id)
{
    struct fetch *f = calloc(1, sizeof(*f));
    bool failed = false;

    if (!f)
        return NULL;
    f->agent = agent;
    f->config = config_ref(p->config);
    f->creds.namespace = dup_or_null(creds->namespace, &failed);
    f->creds.token_secret = dup_or_null(creds->token_secret, &failed);
    f->creds.auth_token = dup_or_null(creds->auth_token, &failed);
    snprintf(f->credential, sizeof(f->credential), "%s", credential);
    f->deadline_ms = deadline_ms;
    f->fetch_id = fetch_id;
    f->alone = fetch_id ? NULL : p;
    f->instance = strdup(p->instance);
    f->run_id = strdup(p->run_id);
    f->token = dup_or_null(token, &failed);
    if (!f->instance || !f->run_id || failed)
        return fetch_free(f);
    return f;
}

static struct pending *pending_of(struct runs_waiter *waiter)
{
    return (struct pending *)((char *)waiter - offsetof(struct pending, waiter));
}

/* Answers a GetTask in its generation's messages, remembering the phase for its log line. */
static void reply_resource(struct pending *p, const struct resource *resource)
{
    p->answered_phase = (int)resource->phase;
    p->generation->reply_resource(p->call, p->config, resource);
}

static void reply_result(struct pending *p, const struct phase_result *result, const char *message)
{
    const struct resource resource = {
        .phase = result->phase,
        .message = message ? message : result->message,
        .log_uri = result->run_page_url,
        .error_code = result->has_error ? result->error_code : NULL,
        .error_recoverable = result->error_recoverable,
        .error_origin = result->error_origin,
        .details = result,
    };

    reply_resource(p, &resource);
}

/* Reads a runs/get answer into *ret; the log link falls back to flytekit's
 * form when Databricks gives no run_page_url. */
static int read_run(const struct fetch *f, const cJSON *body, struct phase_result *ret,
                    char *message, size_t message_size)
{
    char *error = NULL;

    if (phase_from_run(body, ret, &error) < 0) {
        snprintf(message, message_size, "Databricks runs/get answer for run %s: %s", f->run_id,
                 error ? error : "unreadable");
        free(error);
        return -EINVAL;
    }
    if (!ret->run_page_url)
        ret->run_page_url = dbx_response_job_run_url(body, f->instance, f->run_id);
    return 0;
}

/* Answers one waiting GetTask as runs_decide_answer() says; `error_code`: the status of an
 * answer that carries no phase. */
static void answer_waiter(struct pending *p, const struct runs_fetch_end *end,
                          grpc_status_code error_code)
{
    struct runs_answer answer;

    runs_decide_answer(end, clock_now_ms(), &answer);
    switch (answer.kind) {
    case RUNS_ANSWER_FRESH:
        reply_result(p, answer.status, NULL);
        break;
    case RUNS_ANSWER_GONE:
        reply_resource(p, &(struct resource){
                              .phase = PHASE_FAILED,
                              .message = answer.message,
                              .error_code = "RUN_NOT_FOUND",
                              .error_origin = PHASE_ORIGIN_SYSTEM,
                          });
        break;
    case RUNS_ANSWER_LAST_KNOWN:
        reply_result(p, answer.status, answer.message[0] ? answer.message : NULL);
        if (p->agent->metrics)
            metrics_status_not_refreshed(p->agent->metrics);
        log_warning("answered last known phase", "run_id", p->run_id, "instance", p->instance,
                    "phase", phase_name(answer.status->phase), "trouble", end->trouble);
        break;
    case RUNS_ANSWER_ERROR:
    case _RUNS_ANSWER_MAX:
        fail_pending(p, error_code, end->trouble);
        return;
    }
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

/* Ends fetch `fetch_id` of the run read with `credential` and answers everyone waiting for it,
 * or only `alone` (fetched without a map entry); `used` (may be NULL) is where the fetch's token
 * came from. */
static void end_fetch(struct agent *agent, struct pending *alone, const char *credential,
                      uint64_t fetch_id, struct runs_fetch_end *end, grpc_status_code error_code,
                      const struct creds_used *used)
{
    struct runs_outcome outcome = {0};

    if (alone) {
        if (used)
            alone->used = *used;
        answer_waiter(alone, end, error_code);
        return;
    }
    runs_fetched(agent->runs, end->instance, end->run_id, credential, fetch_id, end->fresh,
                 end->gone, clock_now_ms(), &outcome);
    end->outcome = &outcome;
    for (struct runs_waiter *w = outcome.waiters, *next; w; w = next) {
        next = w->next;
        if (used)
            pending_of(w)->used = *used;
        answer_waiter(pending_of(w), end, error_code);
    }
    phase_result_done(&outcome.last_known);
}

/* The fetch's status, completed by run_details_add(): every waiter hears it. */
static void on_details(void *user, struct phase_result *fresh)
{
    struct fetch *f = user;
    struct runs_fetch_end end = {
        .instance = f->instance,
        .run_id = f->run_id,
        .fresh = fresh,
        .transient = true,
        .trouble = "",
    };

    end_fetch(f->agent, f->alone, f->credential, f->fetch_id, &end, GRPC_STATUS_UNAVAILABLE,
              &f->used);
    fetch_free(f);
}

static void on_run(void *user, const struct dbx_answer *answer)
{
    struct fetch *f = user;
    struct phase_result fresh = {0};
    char trouble[1024];
    struct runs_fetch_end end = {
        .instance = f->instance,
        .run_id = f->run_id,
        .gone = answer->verdict == DBX_VERDICT_RUN_GONE,
        /* Only transient trouble earns the last known phase. */
        .transient = answer->verdict == DBX_VERDICT_UNAVAILABLE ||
                     answer->verdict == DBX_VERDICT_RESOURCE_EXHAUSTED ||
                     answer->verdict == DBX_VERDICT_OK,
        .trouble = trouble,
    };

    snprintf(trouble, sizeof(trouble), "%s", answer->message);
    /* An answer we cannot read is Databricks-side trouble, not a verdict. */
    if (answer->verdict == DBX_VERDICT_OK &&
        read_run(f, answer->body, &fresh, trouble, sizeof(trouble)) == 0) {
        /* custom_info, and for a finished run what runs/get-output says (asked once per run,
         * with the token the run was read with); the fetch ends in on_details(), now or after
         * that request. */
        const struct creds_ask ask = creds_ask_of(&f->creds);
        const struct run_details_request details = {
            .creds = f->agent->creds,
            .config = f->config,
            .ask = &ask,
            .runs = f->alone ? NULL : f->agent->runs,
            .instance = f->instance,
            .run_id = f->run_id,
            .credential = f->credential,
            .token = f->token,
            .deadline_ms = f->deadline_ms,
        };
        run_details_add(&details, answer->body, &fresh, on_details, f);
        return;
    }
    end_fetch(f->agent, f->alone, f->credential, f->fetch_id, &end,
              answer->verdict == DBX_VERDICT_OK ? GRPC_STATUS_UNAVAILABLE
                                                : dbx_verdict_status(answer->verdict),
              &f->used);
    phase_result_done(&fresh);
    fetch_free(f);
}

/* Ends fetch `fetch_id` (0: `p` fetched alone) of the run read with `credential` without a
 * Databricks answer. */
static void fail_fetch(struct agent *agent, struct pending *p, const char *credential,
                       uint64_t fetch_id, const char *message)
{
    char instance[RESMETA_HOST_MAX + 8], run_id[RESMETA_RUN_ID_MAX_DIGITS + 1];
    struct runs_fetch_end end = {
        .instance = instance,
        .run_id = run_id,
        .transient = true,
        .trouble = message,
    };

    /* p is one of the waiters and is freed once answered: copy the key. */
    snprintf(instance, sizeof(instance), "%s", p->instance);
    snprintf(run_id, sizeof(run_id), "%s", p->run_id);
    end_fetch(agent, fetch_id ? NULL : p, credential, fetch_id, &end, GRPC_STATUS_UNAVAILABLE,
              NULL);
}

/* Begins a GetTask or DeleteTask: decodes its request into *run (task_request_run_done() it in
 * any case) and gives its pending state, which takes the run's instance and run_id; NULL when
 * the call has been answered (bad input, out of memory). */
static struct pending *start_run_call(const struct call_start *s, const uint8_t *request,
                                      size_t request_len, struct task_request_run *run)
{
    grpc_status_code code =
        s->operation == OPERATION_GET
            ? task_request_get(s->config, s->service->id, request, request_len, run)
            : task_request_delete(s->config, s->service->id, request, request_len, run);
    struct pending *p;

    if (code != GRPC_STATUS_OK) {
        fail_call(s, run->task_type, NULL, NULL, code, run->message);
        return NULL;
    }
    p = pending_new(s, run->task_type, run->instance, run->run_id);
    if (p)
        run->instance = run->run_id = NULL;
    return p;
}

void agent_get_task(void *context, struct server_call *call, const uint8_t *request,
                    size_t request_len)
{
    const struct call_start s = call_start(context, call, OPERATION_GET);
    struct agent *agent = s.service->agent;
    struct task_request_run run;
    struct pending *p;
    struct fetch *f;
    struct phase_result cached = {0};
    uint64_t fetch_id = 0;
    int r;

    p = start_run_call(&s, request, request_len, &run);
    if (!p)
        goto out;
    snprintf(p->credential, sizeof(p->credential), "%s", run.call_token_tag);

    /* A call that brings its own token shares a runs/get, or an answer, only with calls that
     * bring the same one: the run is keyed by the token's tag as well. */
    switch (runs_lookup(agent->runs, p->instance, p->run_id, run.call_token_tag, s.started_ms,
                        &p->waiter, &cached, &fetch_id)) {
    case RUNS_CACHED:
        reply_result(p, &cached, NULL);
        finish_pending(p, GRPC_STATUS_OK, NULL);
        phase_result_done(&cached);
        goto out;
    case RUNS_JOINED: /* the fetch under way answers this call too */
        goto out;
    case RUNS_FETCH:
    case RUNS_FETCH_ALONE:
        break;
    }
    f = fetch_new(agent, p, run.call_token_tag, run.call_token, &run.creds,
                  databricks_deadline(s.config, call), fetch_id);
    if (f) {
        const struct dbx_call dbx_call = {
            .endpoint = DBX_RUNS_GET,
            .instance = f->instance,
            .run_id = f->run_id,
            .token = f->token,
            .retry_safe = true,
            .deadline_ms = f->deadline_ms,
        };
        const struct creds_ask ask = creds_ask_of(&f->creds);

        r = creds_request(agent->creds, s.config, &dbx_call, &ask, NULL, on_run, f, &f->used);
    } else {
        r = -ENOMEM;
    }
    if (r < 0) {
        /* Nothing was queued: end the fetch so that every waiter hears. */
        fetch_free(f);
        fail_fetch(agent, p, run.call_token_tag, fetch_id,
                   r == -ESHUTDOWN ? "connector shutting down" : "out of memory");
    }
out:
    task_request_run_done(&run);
    config_unref(s.config);
}

/* ---- DeleteTask ------------------------------------------------------------ */

static void on_cancelled(void *user, const struct dbx_answer *answer)
{
    struct pending *p = user;

    /* Propeller may abort a task more than once, and cleanup may follow a
     * run that was already deleted: cancelling a gone run is success. */
    if (answer->verdict != DBX_VERDICT_OK && answer->verdict != DBX_VERDICT_RUN_GONE) {
        fail_from_answer(p, answer);
        return;
    }
    p->generation->reply_deleted(p->call);
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

void agent_delete_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len)
{
    const struct call_start s = call_start(context, call, OPERATION_DELETE);
    struct task_request_run run;
    struct pending *p;
    char *body = NULL;

    p = start_run_call(&s, request, request_len, &run);
    if (!p)
        goto out;
    /* run_id is validated digits: print it as a JSON number, exactly. */
    if (asprintf(&body, "{\"run_id\":%s}", p->run_id) < 0) {
        fail_pending(p, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    send_to_databricks(p, DBX_RUNS_CANCEL, body, true, run.call_token, &run.creds, on_cancelled);
out:
    task_request_run_done(&run);
    config_unref(s.config);
}
