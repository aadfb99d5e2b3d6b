/*
 * task_logs.c - GetTaskLogs (see task_logs.h).
 *
 * Life of a call: the codec decodes and checks the request (bad input is answered at once);
 * a `struct stream` then asks runs/get, then runs/get-output for the task run whose output
 * shows, and keeps the page of lines. It sends the header, and from each message's `sent`
 * callback the next body, so one message at most is in flight and the serving thread never
 * waits for a slow client; after the last one the call ends OK. A client that cancels or a
 * deadline that passes ends the call at the next callback.
 *
 * Both requests find their token through creds.c as the run's other calls do (the Secret
 * resource_meta names, flytekit's auth_token, OAuth, the default): a run started under a team's
 * identity may be readable by that identity alone.
 *
 * Errors: the run does not exist: NOT_FOUND; a refused token or request: as GetTask answers
 * them; Databricks trouble: UNAVAILABLE. A runs/get-output that Databricks refuses (a task run
 * that has not started, for one) means no output yet: an empty stream. Nothing here answers
 * with a phase, so propeller's failure count is not concerned.
 *
 * Owns each stream from the handler to the end of its call. Threads as task_logs.h says.
 */
#include "task_logs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "flyteidl2/connector/connector.pb-c.h"
#include "log.h"
#include "log_page.h"
#include "phase.h"
#include "retry.h"
#include "run_output.h"

struct task_logs {
    struct config_current *current; /* borrowed */
    struct creds *creds;
    struct metrics *metrics;
};

/* One GetTaskLogs call, from its request to its status. */
struct stream {
    struct task_logs *logs;
    const struct task_logs_codec *codec;
    struct server_call *call;
    struct task_request_logs request;
    const struct config *config; /* a reference to the one in force when the call started */
    struct creds_used used;      /* where the last request's token came from */
    int64_t started_ms;
    int64_t deadline_ms; /* of the Databricks requests */
    struct log_page page;
    size_t next; /* the next line to send */
};

struct task_logs *task_logs_new(struct config_current *current, struct creds *creds,
                                struct metrics *metrics)
{
    struct task_logs *logs = calloc(1, sizeof(*logs));

    if (!logs)
        return NULL;
    logs->current = current;
    logs->creds = creds;
    logs->metrics = metrics;
    return logs;
}

struct task_logs *task_logs_free(struct task_logs *logs)
{
    free(logs);
    return NULL;
}

static const char *task_type_of(const struct task_request_logs *r)
{
    return r->run.task_type && r->run.task_type[0] ? r->run.task_type : "unknown";
}

/* Ends the call with `code`, logs one line and frees the stream. */
static void stream_end(struct stream *s, grpc_status_code code, const char *message)
{
    char code_text[16], duration[24], sent[24];
    int64_t elapsed_ms = clock_now_ms() - s->started_ms;

    if (code == GRPC_STATUS_OK)
        server_call_finish(s->call, GRPC_STATUS_OK, NULL);
    else
        server_call_fail(s->call, code, message);
    if (s->logs->metrics)
        metrics_request_done(s->logs->metrics, task_type_of(&s->request), "logs", code,
                             (double)elapsed_ms / 1000.0);
    snprintf(code_text, sizeof(code_text), "%d", (int)code);
    snprintf(duration, sizeof(duration), "%" PRId64, elapsed_ms);
    snprintf(sent, sizeof(sent), "%zu", s->next);
    log_write(code == GRPC_STATUS_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
              code == GRPC_STATUS_OK ? "call done" : "call failed", "task_type",
              task_type_of(&s->request), "operation", "logs", "instance", s->request.run.instance,
              "run_id", s->request.run.run_id, "lines", sent, "grpc_code", code_text, "duration_ms",
              duration, "error", message, (const char *)NULL);
    task_request_logs_done(&s->request);
    log_page_done(&s->page);
    config_unref(s->config);
    free(s);
}

/* Sends the next body, or ends the call once every line went. */
static void on_sent(void *user, struct server_call *call, bool ok)
{
    struct stream *s = user;
    size_t end;

    (void)call;
    if (!ok) {
        stream_end(s, GRPC_STATUS_CANCELLED, "the client went away or the deadline passed");
        return;
    }
    if (s->next >= s->page.count) {
        stream_end(s, GRPC_STATUS_OK, NULL);
        return;
    }
    end = log_page_batch_end(&s->page, s->next);
    s->codec->send_body(s->call, s->page.lines + s->next, end - s->next, on_sent, s);
    s->next = end;
}

/* Starts streaming s->page: the header first. */
static void stream_page(struct stream *s)
{
    s->codec->send_header(s->call, s->page.next_token, on_sent, s);
}

static void on_output(void *user, const struct dbx_answer *answer)
{
    struct stream *s = user;
    char *error = NULL;
    int r;

    if (answer->verdict != DBX_VERDICT_OK && answer->verdict != DBX_VERDICT_INVALID) {
        stream_end(s, dbx_verdict_status(answer->verdict), answer->message);
        return;
    }
    /* Refused (400): the task run has no output to give yet. */
    r = log_page_select(answer->verdict == DBX_VERDICT_OK ? answer->body : NULL, s->request.lines,
                        s->request.token, &s->page, &error);
    if (r < 0) {
        stream_end(s, r == -EINVAL ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_RESOURCE_EXHAUSTED,
                   error ? error : "out of memory");
        free(error);
        return;
    }
    stream_page(s);
}

/* Queues a Databricks GET for the stream; on failure ends the call. */
static void ask(struct stream *s, enum dbx_endpoint endpoint, const char *run_id, dbx_done_fn done)
{
    const struct dbx_call call = {
        .endpoint = endpoint,
        .instance = s->request.run.instance,
        .run_id = run_id,
        .retry_safe = true,
        .deadline_ms = s->deadline_ms,
    };
    const struct creds_ask sources = {
        .namespace = s->request.run.creds.namespace,
        .token_secret = s->request.run.creds.token_secret,
        .resmeta_token = s->request.run.creds.auth_token,
    };
    int r = creds_request(s->logs->creds, s->config, &call, &sources, NULL, done, s, &s->used);

    if (r < 0)
        stream_end(s, GRPC_STATUS_UNAVAILABLE,
                   r == -ESHUTDOWN ? "connector shutting down" : "out of memory");
}

static void on_run(void *user, const struct dbx_answer *answer)
{
    struct stream *s = user;
    struct phase_result status = {0};
    char task_run_id[RUN_OUTPUT_ID_SIZE];
    char message[DBX_MESSAGE_SIZE + 128];

    if (answer->verdict == DBX_VERDICT_RUN_GONE) {
        snprintf(message, sizeof(message), "Databricks run %s no longer exists on %s (%s)",
                 s->request.run.run_id, s->request.run.instance, answer->message);
        stream_end(s, GRPC_STATUS_NOT_FOUND, message);
        return;
    }
    if (answer->verdict != DBX_VERDICT_OK) {
        stream_end(s, dbx_verdict_status(answer->verdict), answer->message);
        return;
    }
    /* An unreadable state is no reason to refuse the logs: read them as of a running run. */
    if (phase_from_run(answer->body, &status, NULL) < 0)
        status.phase = PHASE_RUNNING;
    if (!run_output_logs_task(answer->body, status.phase, task_run_id)) {
        phase_result_done(&status);
        stream_page(s); /* no task run yet: no output yet */
        return;
    }
    phase_result_done(&status);
    ask(s, DBX_RUNS_GET_OUTPUT, task_run_id, on_output);
}

void task_logs_get(struct task_logs *logs, const struct task_logs_codec *codec,
                   struct server_call *call, const uint8_t *request, size_t request_len)
{
    struct stream *s = calloc(1, sizeof(*s));
    const struct config *config;
    grpc_status_code code;

    if (!s) {
        server_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    config = s->config = config_current_get(logs->current);
    s->logs = logs;
    s->codec = codec;
    s->call = call;
    s->started_ms = clock_now_ms();
    s->deadline_ms = retry_call_deadline_ms(s->started_ms, server_call_deadline_ms(call),
                                            config->request_timeout_ms);
    code = task_request_logs(config, codec->generation, request, request_len, &s->request);
    if (code != GRPC_STATUS_OK) {
        stream_end(s, code, s->request.run.message);
        return;
    }
    ask(s, DBX_RUNS_GET, s->request.run.run_id, on_run);
}

/* ---- Flyte 1: flyteidl.admin ------------------------------------------------------------ */

static void send_header_v1(struct server_call *call, const char *token, server_sent_fn sent,
                           void *user)
{
    Flyteidl__Admin__GetTaskLogsResponse resp = FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__INIT;
    Flyteidl__Admin__GetTaskLogsResponseHeader header =
        FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE_HEADER__INIT;

    header.token = (char *)token;
    resp.part_case = FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__PART_HEADER;
    resp.header = &header;
    server_call_send(call, &resp.base, sent, user);
}

static void send_body_v1(struct server_call *call, char *const *lines, size_t n,
                         server_sent_fn sent, void *user)
{
    Flyteidl__Admin__GetTaskLogsResponse resp = FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__INIT;
    Flyteidl__Admin__GetTaskLogsResponseBody body =
        FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE_BODY__INIT;

    body.n_results = n;
    body.results = (char **)lines;
    resp.part_case = FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__PART_BODY;
    resp.body = &body;
    server_call_send(call, &resp.base, sent, user);
}

const struct task_logs_codec task_logs_codec_v1 = {
    .generation = CONFIG_FLYTE_1,
    .send_header = send_header_v1,
    .send_body = send_body_v1,
};

void task_logs_get_v1(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len)
{
    task_logs_get(context, &task_logs_codec_v1, call, request, request_len);
}

/* ---- Flyte 2: flyteidl2.connector ------------------------------------------------------- */

static void send_header_v2(struct server_call *call, const char *token, server_sent_fn sent,
                           void *user)
{
    Flyteidl2__Connector__GetTaskLogsResponse resp =
        FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE__INIT;
    Flyteidl2__Connector__GetTaskLogsResponseHeader header =
        FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE_HEADER__INIT;

    header.token = (char *)token;
    resp.part_case = FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE__PART_HEADER;
    resp.header = &header;
    server_call_send(call, &resp.base, sent, user);
}

/* Both the structured lines the executor's dataproxy prefers and the deprecated plain
 * `results` that older executors read. Databricks gives no time per line, so the lines carry
 * none; all of it is the task's own output (originator USER). */
static void send_body_v2(struct server_call *call, char *const *lines, size_t n,
                         server_sent_fn sent, void *user)
{
    Flyteidl2__Connector__GetTaskLogsResponse resp =
        FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE__INIT;
    Flyteidl2__Connector__GetTaskLogsResponseBody body =
        FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE_BODY__INIT;
    Flyteidl2__Logs__Dataplane__LogLine *structured = NULL, **pointers = NULL;

    body.n_results = n;
    body.results = (char **)lines;
    if (n > 0) {
        structured = calloc(n, sizeof(*structured));
        pointers = calloc(n, sizeof(*pointers));
    }
    /* Without memory for the structured lines the plain ones still go. */
    if (structured && pointers) {
        for (size_t i = 0; i < n; i++) {
            flyteidl2__logs__dataplane__log_line__init(&structured[i]);
            structured[i].message = lines[i];
            structured[i].originator = FLYTEIDL2__LOGS__DATAPLANE__LOG_LINE_ORIGINATOR__USER;
            pointers[i] = &structured[i];
        }
        body.n_lines = n;
        body.lines = pointers;
    }
    resp.part_case = FLYTEIDL2__CONNECTOR__GET_TASK_LOGS_RESPONSE__PART_BODY;
    resp.body = &body;
    server_call_send(call, &resp.base, sent, user);
    free(structured);
    free(pointers);
}

const struct task_logs_codec task_logs_codec_v2 = {
    .generation = CONFIG_FLYTE_2,
    .send_header = send_header_v2,
    .send_body = send_body_v2,
};

void task_logs_get_v2(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len)
{
    task_logs_get(context, &task_logs_codec_v2, call, request, request_len);
}
