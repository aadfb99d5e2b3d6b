/*
 * run_details.c - custom_info and the runs/get-output text of a GetTask answer (see
 * run_details.h).
 *
 * A runs/get answer that needs runs/get-output keeps its waiters waiting: the caller's fetch
 * (agent.c) stays open, so GetTasks that arrive meanwhile join it and hear the completed
 * status too, and the output is asked about once however many calls wait. Its outcome, a
 * failure included, goes into the run map, so later runs/get answers for the same finished run
 * are completed from memory. The runs/get answer itself is kept (a copy) until the output
 * comes, because custom_info is built from both.
 *
 * Owns only the in-flight `struct asking`; threads as run_details.h says.
 */
#include "run_details.h"

#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "log.h"
#include "run_info.h"
#include "run_output.h"
#include "structjson.h"

/* A runs/get-output request under way; owned by the dbx request until its callback. */
struct asking {
    struct runs *runs;
    char *instance;
    char *run_id;
    char *credential; /* the token's tag, to keep the outcome under the run's key */
    cJSON *run;       /* copy of the runs/get answer */
    struct phase_result status;
    run_details_done_fn done;
    void *user;
    struct creds_used used; /* where the request's token came from */
};

static void asking_free(struct asking *a)
{
    if (!a)
        return;
    free(a->instance);
    free(a->run_id);
    free(a->credential);
    cJSON_Delete(a->run);
    phase_result_done(&a->status);
    free(a);
}

/* Writes value as a protobuf varint at out (room for 10 bytes); gives the bytes written. */
static size_t put_varint(uint64_t value, uint8_t *out)
{
    size_t n = 0;

    while (value >= 0x80) {
        out[n++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t)value;
    return n;
}

/* Packs custom_info into status, length first (phase.h); without memory the answer simply has
 * none. */
static void set_custom_info(struct phase_result *status, const cJSON *run,
                            const struct runs_output *output)
{
    struct run_info_output info_output = {0};
    Google__Protobuf__Struct *s = NULL;
    cJSON *info = NULL;
    uint8_t *bytes = NULL, prefix[10];
    size_t len, prefix_len;

    if (output) {
        info_output.notebook_result = output->notebook_result;
        info_output.notebook_result_truncated = output->notebook_result_truncated;
    }
    if (run_info_build(run, output ? &info_output : NULL, &info) < 0 ||
        structjson_from_cjson(info, &s, NULL) < 0)
        goto out;
    len = google__protobuf__struct__get_packed_size(s);
    prefix_len = put_varint(len, prefix);
    bytes = malloc(prefix_len + len);
    if (!bytes)
        goto out;
    memcpy(bytes, prefix, prefix_len);
    google__protobuf__struct__pack(s, bytes + prefix_len);
    free(status->custom_info);
    status->custom_info = bytes;
    status->custom_info_len = prefix_len + len;
out:
    structjson_struct_free(s);
    cJSON_Delete(info);
}

/* The failed run's message gets the exception after the state message. */
static void add_error_text(struct phase_result *status, const struct runs_output *output)
{
    char *message;

    if (!output || !output->error_text || !phase_is_terminal(status->phase) ||
        (status->phase != PHASE_FAILED && status->phase != PHASE_RETRYABLE_FAILED))
        return;
    message = errmsg_format("%s%s%s", status->message ? status->message : "",
                            status->message && status->message[0] ? "\n" : "", output->error_text);
    if (!message)
        return;
    free(status->message);
    status->message = message;
}

/* Completes status with `output` (NULL: none), hands it to done, then frees it. */
static void finish(struct phase_result *status, const cJSON *run, const struct runs_output *output,
                   run_details_done_fn done, void *user)
{
    add_error_text(status, output);
    set_custom_info(status, run, output);
    done(user, status);
    phase_result_done(status);
}

/* What runs/get-output said, as GetTask shows it; an empty outcome for a failed request. */
static void read_output(const struct dbx_answer *answer, struct runs_output *ret)
{
    *ret = (struct runs_output){0};
    if (answer->verdict != DBX_VERDICT_OK)
        return;
    ret->error_text = run_output_error_text(answer->body);
    ret->notebook_result =
        run_output_notebook_result(answer->body, &ret->notebook_result_truncated);
}

static void on_output(void *user, const struct dbx_answer *answer)
{
    struct asking *a = user;
    struct runs_output output;

    read_output(answer, &output);
    if (answer->verdict != DBX_VERDICT_OK)
        log_warning("no runs/get-output for a finished run; answering its state message alone",
                    "run_id", a->run_id, "instance", a->instance, "error", answer->message);
    if (a->runs)
        runs_output_store(a->runs, a->instance, a->run_id, a->credential,
                          answer->verdict == DBX_VERDICT_OK ? &output : NULL);
    finish(&a->status, a->run, &output, a->done, a->user);
    runs_output_done(&output);
    asking_free(a);
}

/* Sends the runs/get-output request; on failure gives the status back in *status. */
static int ask(const struct run_details_request *req, const cJSON *run, const char *task_run_id,
               struct phase_result *status, run_details_done_fn done, void *user)
{
    struct asking *a = calloc(1, sizeof(*a));
    int r;

    if (!a)
        return -1;
    a->runs = req->runs;
    a->instance = strdup(req->instance);
    a->run_id = strdup(req->run_id);
    a->credential = strdup(req->credential ? req->credential : "");
    a->run = cJSON_Duplicate(run, true);
    a->done = done;
    a->user = user;
    if (!a->instance || !a->run_id || !a->credential || !a->run) {
        asking_free(a);
        return -1;
    }
    a->status = *status;
    *status = (struct phase_result){0};
    r = creds_request(req->creds, req->config,
                      &(const struct dbx_call){
                          .endpoint = DBX_RUNS_GET_OUTPUT,
                          .instance = req->instance,
                          .run_id = task_run_id,
                          .token = req->token,
                          .retry_safe = true,
                          .deadline_ms = req->deadline_ms,
                      },
                      req->ask, NULL, on_output, a, &a->used);
    if (r < 0) {
        *status = a->status;
        a->status = (struct phase_result){0};
        asking_free(a);
        return -1;
    }
    return 0;
}

void run_details_add(const struct run_details_request *req, const cJSON *run,
                     struct phase_result *status, run_details_done_fn done, void *user)
{
    struct phase_result taken = *status;
    struct run_output_plan plan;
    struct runs_output known = {0};

    *status = (struct phase_result){0};
    run_output_plan(run, taken.phase, &plan);
    if (!plan.fetch) {
        finish(&taken, run, NULL, done, user);
        return;
    }
    if (req->runs &&
        runs_output_lookup(req->runs, req->instance, req->run_id, req->credential, &known)) {
        finish(&taken, run, &known, done, user);
        runs_output_done(&known);
        return;
    }
    if (ask(req, run, plan.task_run_id, &taken, done, user) == 0)
        return;
    /* Nothing went out (out of memory, shutting down): the state message alone. */
    finish(&taken, run, NULL, done, user);
}

size_t run_details_custom_info(const struct phase_result *status,
                               ProtobufCMessageUnknownField *ret_field)
{
    if (!status || !status->custom_info)
        return 0;
    *ret_field = (ProtobufCMessageUnknownField){
        .tag = RUN_DETAILS_CUSTOM_INFO_FIELD,
        .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
        .len = status->custom_info_len,
        .data = status->custom_info,
    };
    return 1;
}
