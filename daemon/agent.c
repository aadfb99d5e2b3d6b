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
 * This file only turns those decisions into gRPC answers, log lines and
 * metrics; tests/unit/test_agent.c runs it against fakes of creds_request()
 * and the server_call functions.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "creds.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "log.h"
#include "phase.h"
#include "resmeta.h"
#include "runs.h"
#include "task_request.h"

/* Answer this long before the caller's deadline at least, so the caller
 * reads our status rather than its own DEADLINE_EXCEEDED. */
#define DEADLINE_MARGIN_MIN_MS 50
#define DEADLINE_MARGIN_MAX_MS 1000

struct agent {
    const struct config *_Atomic config;
    struct creds *creds;
    struct metrics *metrics;
    struct runs *runs;
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
    [DBX_VERDICT_RESOURCE_EXHAUSTED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
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
    struct runs_waiter waiter; /* GetTask: linked while a runs/get is awaited */
    struct agent *agent;
    const struct config *config; /* the one in force when the call started */
    struct server_call *call;
    enum operation operation;
    char task_type[32];
    char *instance;
    char *run_id;
    int64_t started_ms;
    struct creds_used used; /* where the token came from; source NONE until one did */
};

struct agent *agent_new(const struct config *config, struct creds *creds, struct metrics *metrics)
{
    struct agent *agent = calloc(1, sizeof(*agent));
    struct runs_settings runs_settings = {
        .max_runs = (size_t)config->max_tracked_runs,
        .status_ttl_ms = config->status_cache_ttl_ms,
        .terminal_ttl_ms = config->terminal_cache_ttl_ms,
    };

    if (!agent)
        return NULL;
    atomic_store(&agent->config, config);
    agent->creds = creds;
    agent->metrics = metrics;
    agent->runs = runs_new(&runs_settings);
    if (!agent->runs)
        return agent_free(agent);
    return agent;
}

void agent_set_config(struct agent *agent, const struct config *config)
{
    atomic_store(&agent->config, config);
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
    free(p->instance);
    free(p->run_id);
    free(p);
    return NULL;
}

/* One line per finished call, with the fields operators filter on, and where its token came
 * from (`used`; NULL or source NONE: none was needed or found). */
static void log_call(struct agent *agent, const char *task_type, enum operation operation,
                     const char *instance, const char *run_id, grpc_status_code code,
                     int64_t started_ms, const char *message, const struct creds_used *used)
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
              task_type && task_type[0] ? task_type : NULL, "operation", operation_names[operation],
              "instance", instance, "run_id", run_id, "grpc_code", code_text, "duration_ms",
              duration, "token_source",
              used && used->source != CREDS_SOURCE_NONE ? creds_source_name(used->source) : NULL,
              "token_name", used && used->name[0] ? used->name : NULL, "error", message,
              (const char *)NULL);
}

/* Answers with an error and logs it; for failures found before Databricks. */
static void fail_call(struct agent *agent, struct server_call *call, enum operation operation,
                      const char *task_type, const char *instance, const char *run_id,
                      int64_t started_ms, grpc_status_code code, const char *message)
{
    server_call_fail(call, code, message);
    log_call(agent, task_type, operation, instance, run_id, code, started_ms, message, NULL);
}

static void finish_pending(struct pending *p, grpc_status_code code, const char *message)
{
    log_call(p->agent, p->task_type, p->operation, p->instance, p->run_id, code, p->started_ms,
             message, &p->used);
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

/* The token sources a request names, for creds_request(). */
static struct creds_ask creds_ask_of(const struct task_request_creds *c)
{
    return (struct creds_ask){
        .namespace = c->namespace,
        .token_secret = c->token_secret,
        .resmeta_token = c->auth_token,
    };
}

/* Queues the Databricks request or answers UNAVAILABLE; takes p and body. */
static void send_to_databricks(struct pending *p, enum dbx_endpoint endpoint, char *body,
                               bool retry_safe, const struct task_request_creds *from,
                               dbx_done_fn done)
{
    const struct creds_ask ask = creds_ask_of(from);
    const struct dbx_call dbx_call = {
        .endpoint = endpoint,
        .instance = p->instance,
        .run_id = p->run_id,
        .retry_safe = retry_safe,
        .deadline_ms = databricks_deadline(p->config, p->call),
    };
    int r = creds_request(p->agent->creds, p->config, &dbx_call, &ask, body, done, p, &p->used);
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
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    char digits[DBX_RUN_ID_SIZE];

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
    if (dbx_response_run_id(answer->body, digits) < 0) {
        const char *message = "Databricks runs/submit answered without a valid run_id";
        server_call_fail(p->call, GRPC_STATUS_UNAVAILABLE, message);
        finish_pending(p, GRPC_STATUS_UNAVAILABLE, message);
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

void agent_create_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len)
{
    struct agent *agent = context;
    const struct config *config = atomic_load(&agent->config);
    int64_t started_ms = clock_now_ms();
    struct task_request_submit submit;
    grpc_status_code code;
    struct pending *p;

    code = task_request_create(config, request, request_len, &submit);
    if (agent->metrics && submit.has_inputs)
        metrics_input_bytes(agent->metrics, submit.task_type, submit.input_bytes);
    if (code != GRPC_STATUS_OK) {
        fail_call(agent, call, OPERATION_CREATE, submit.task_type, submit.instance, NULL,
                  started_ms, code, submit.message);
        goto out;
    }
    p = pending_new(agent, config, call, OPERATION_CREATE, submit.task_type, submit.instance, NULL,
                    started_ms);
    if (!p) {
        fail_call(agent, call, OPERATION_CREATE, submit.task_type, submit.instance, NULL,
                  started_ms, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    submit.instance = NULL;
    log_debug("submitting run", "task_type", submit.task_type, "instance", p->instance,
              "idempotency_token",
              submit.idempotency_token[0] ? submit.idempotency_token : "(none)");
    send_to_databricks(p, DBX_RUNS_SUBMIT, submit.body, submit.retry_safe, &submit.creds,
                       on_submitted);
    submit.body = NULL;
out:
    task_request_submit_done(&submit);
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

/* One runs/get on behalf of every GetTask waiting for the same run. */
struct fetch {
    struct agent *agent;
    char *instance;
    char *run_id;
    uint64_t fetch_id;
    struct pending *alone;  /* set when the run could not be tracked */
    struct creds_used used; /* whose token fetched it; every waiter's log line names it */
};

static struct fetch *fetch_free(struct fetch *f)
{
    if (!f)
        return NULL;
    free(f->instance);
    free(f->run_id);
    free(f);
    return NULL;
}

static struct fetch *fetch_new(struct agent *agent, struct pending *p, uint64_t fetch_id)
{
    struct fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->agent = agent;
    f->fetch_id = fetch_id;
    f->alone = fetch_id ? NULL : p;
    f->instance = strdup(p->instance);
    f->run_id = strdup(p->run_id);
    if (!f->instance || !f->run_id)
        return fetch_free(f);
    return f;
}

static struct pending *pending_of(struct runs_waiter *waiter)
{
    return (struct pending *)((char *)waiter - offsetof(struct pending, waiter));
}

static void reply_result(struct pending *p, const struct phase_result *result, const char *message)
{
    reply_resource(p, result->phase, message ? message : result->message, result->run_page_url,
                   result->has_error ? result->error_code : NULL, result->error_recoverable,
                   result->error_origin);
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
        reply_resource(p, PHASE_FAILED, answer.message, NULL, "RUN_NOT_FOUND", false,
                       PHASE_ORIGIN_SYSTEM);
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
        server_call_fail(p->call, error_code, end->trouble);
        finish_pending(p, error_code, end->trouble);
        return;
    }
    finish_pending(p, GRPC_STATUS_OK, NULL);
}

/* Ends fetch `fetch_id` and answers everyone waiting for it, or only `alone` (fetched without
 * a map entry); `used` (may be NULL) is where the fetch's token came from. */
static void end_fetch(struct agent *agent, struct pending *alone, uint64_t fetch_id,
                      struct runs_fetch_end *end, grpc_status_code error_code,
                      const struct creds_used *used)
{
    struct runs_outcome outcome = {0};

    if (alone) {
        if (used)
            alone->used = *used;
        answer_waiter(alone, end, error_code);
        return;
    }
    runs_fetched(agent->runs, end->instance, end->run_id, fetch_id, end->fresh, end->gone,
                 clock_now_ms(), &outcome);
    end->outcome = &outcome;
    for (struct runs_waiter *w = outcome.waiters, *next; w; w = next) {
        next = w->next;
        if (used)
            pending_of(w)->used = *used;
        answer_waiter(pending_of(w), end, error_code);
    }
    phase_result_done(&outcome.last_known);
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
        read_run(f, answer->body, &fresh, trouble, sizeof(trouble)) == 0)
        end.fresh = &fresh;
    end_fetch(f->agent, f->alone, f->fetch_id, &end,
              answer->verdict == DBX_VERDICT_OK ? GRPC_STATUS_UNAVAILABLE
                                                : verdict_status[answer->verdict],
              &f->used);
    phase_result_done(&fresh);
    fetch_free(f);
}

/* Ends fetch `fetch_id` (0: `p` fetched alone) without a Databricks answer. */
static void fail_fetch(struct agent *agent, struct pending *p, uint64_t fetch_id,
                       const char *message)
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
    end_fetch(agent, fetch_id ? NULL : p, fetch_id, &end, GRPC_STATUS_UNAVAILABLE, NULL);
}

void agent_get_task(void *context, struct server_call *call, const uint8_t *request,
                    size_t request_len)
{
    struct agent *agent = context;
    const struct config *config = atomic_load(&agent->config);
    int64_t started_ms = clock_now_ms();
    struct task_request_run run;
    grpc_status_code code;
    struct pending *p;
    struct fetch *f;
    struct phase_result cached = {0};
    uint64_t fetch_id = 0;
    int r;

    code = task_request_get(config, request, request_len, &run);
    if (code != GRPC_STATUS_OK) {
        fail_call(agent, call, OPERATION_GET, run.task_type, NULL, NULL, started_ms, code,
                  run.message);
        goto out;
    }
    p = pending_new(agent, config, call, OPERATION_GET, run.task_type, run.instance, run.run_id,
                    started_ms);
    if (!p) {
        fail_call(agent, call, OPERATION_GET, run.task_type, run.instance, run.run_id, started_ms,
                  GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    run.instance = run.run_id = NULL;

    switch (runs_lookup(agent->runs, p->instance, p->run_id, started_ms, &p->waiter, &cached,
                        &fetch_id)) {
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
    f = fetch_new(agent, p, fetch_id);
    if (f) {
        const struct dbx_call dbx_call = {
            .endpoint = DBX_RUNS_GET,
            .instance = f->instance,
            .run_id = f->run_id,
            .retry_safe = true,
            .deadline_ms = databricks_deadline(config, call),
        };
        const struct creds_ask ask = creds_ask_of(&run.creds);

        r = creds_request(agent->creds, config, &dbx_call, &ask, NULL, on_run, f, &f->used);
    } else {
        r = -ENOMEM;
    }
    if (r < 0) {
        /* Nothing was queued: end the fetch so that every waiter hears. */
        fetch_free(f);
        fail_fetch(agent, p, fetch_id,
                   r == -ESHUTDOWN ? "connector shutting down" : "out of memory");
    }
out:
    task_request_run_done(&run);
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
    struct task_request_run run;
    grpc_status_code code;
    char *body = NULL;
    struct pending *p = NULL;

    code = task_request_delete(config, request, request_len, &run);
    if (code != GRPC_STATUS_OK) {
        fail_call(agent, call, OPERATION_DELETE, run.task_type, NULL, NULL, started_ms, code,
                  run.message);
        goto out;
    }
    /* run_id is validated digits: print it as a JSON number, exactly. */
    if (asprintf(&body, "{\"run_id\":%s}", run.run_id) < 0)
        body = NULL;
    if (body)
        p = pending_new(agent, config, call, OPERATION_DELETE, run.task_type, run.instance,
                        run.run_id, started_ms);
    if (!p) {
        fail_call(agent, call, OPERATION_DELETE, run.task_type, run.instance, run.run_id,
                  started_ms, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        free(body);
        goto out;
    }
    run.instance = run.run_id = NULL;
    send_to_databricks(p, DBX_RUNS_CANCEL, body, true, &run.creds, on_cancelled);
out:
    task_request_run_done(&run);
}
