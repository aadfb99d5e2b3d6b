/*
 * cli_logs.c - `flyte-databricks-connector logs RESOURCE_META [--follow]`: the lines of a run's
 * output (GetTaskLogs, a server stream: a header with the next page's token, then bodies),
 * every page of them; with --follow, new lines as they come until the run ends (GetTask says
 * when), then the last ones.
 *
 * The daemon's tokens are line numbers (log_page.h): following, the command counts the lines it
 * printed and asks from there, so nothing is printed twice and nothing is skipped while the
 * output grows. SIGINT is taken with sigtimedwait() between calls, as the watch loop does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log_page.h"
#include "phase.h"

#define GET_TASK_LOGS "/flyteidl.service.AsyncAgentService/GetTaskLogs"

enum logs_option {
    LOGS_FOLLOW,
    LOGS_LINES,
    LOGS_TASK_TYPE,
    LOGS_INTERVAL,
};

static const struct cli_option logs_options[] = {
    {"follow", false, LOGS_FOLLOW},
    {"lines", true, LOGS_LINES},
    {"task-type", true, LOGS_TASK_TYPE},
    {"interval", true, LOGS_INTERVAL},
};

struct logs_args {
    const char *task_type; /* borrows argv */
    bool follow;
    uint64_t lines; /* per GetTaskLogs call; 0: the daemon's page */
    int64_t interval_ms;
};

/* Where one command is in the output, and what the page being read said. */
struct reader {
    const struct cli_common *common;
    struct client *client;
    const uint8_t *meta;
    size_t meta_len;
    const struct logs_args *args;
    uint64_t position;                   /* lines printed so far */
    char token[LOG_PAGE_TOKEN_SIZE + 1]; /* the page's header token */
    bool bad_answer;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s logs RESOURCE_META [OPTIONS]\n"
            "\n"
            "Print the lines of a run's output (GetTaskLogs): what the task printed, then its\n"
            "error and traceback. RESOURCE_META is the JSON that submit printed, or the path of a\n"
            "file holding it.\n"
            "\n"
            "Options:\n"
            "  --follow             keep printing new lines until the run ends (Ctrl-C stops)\n"
            "  --lines N            lines asked per GetTaskLogs call (default: the daemon's page)\n"
            "  --interval SECONDS   time between calls with --follow (default %d)\n"
            "  --task-type T        task category sent: spark or databricks "
            "(default " CLI_DEFAULT_TASK_TYPE ")\n",
            CLI_PROGRAM, CLI_DEFAULT_INTERVAL_MS / 1000);
    cli_print_common_help(out);
}

static int option(void *context, int id, const char *arg, char **reterr_msg)
{
    struct logs_args *a = context;
    char *end = NULL;

    switch (id) {
    case LOGS_FOLLOW:
        a->follow = true;
        break;
    case LOGS_LINES:
        errno = 0;
        a->lines = strtoull(arg, &end, 10);
        if (!*arg || *end || errno || a->lines == 0 || strspn(arg, "0123456789") != strlen(arg)) {
            if (asprintf(reterr_msg, "expected a positive number of lines, got '%s'", arg) < 0)
                *reterr_msg = NULL;
            return -EINVAL;
        }
        break;
    case LOGS_TASK_TYPE:
        return cli_option_task_type(arg, &a->task_type, reterr_msg);
    case LOGS_INTERVAL:
        return cli_option_interval(arg, &a->interval_ms, reterr_msg);
    }
    return 0;
}

/* Prints a line as the daemon sent it, control characters but tab shown as a space. */
static void print_line(const char *line)
{
    for (const char *p = line; *p; p++)
        putchar((unsigned char)*p < 0x20 && *p != '\t' ? ' ' : *p);
    putchar('\n');
}

/* client_message_fn: one message of the stream. */
static int on_message(void *user, const uint8_t *data, size_t len)
{
    struct reader *r = user;
    Flyteidl__Admin__GetTaskLogsResponse *resp;
    char *error = NULL;

    resp = (Flyteidl__Admin__GetTaskLogsResponse *)cli_unpack(
        &flyteidl__admin__get_task_logs_response__descriptor, data, len, &error);
    free(error);
    if (!resp) {
        r->bad_answer = true;
        return 1;
    }
    if (resp->part_case == FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__PART_HEADER && resp->header)
        snprintf(r->token, sizeof(r->token), "%s", resp->header->token ? resp->header->token : "");
    if (resp->part_case == FLYTEIDL__ADMIN__GET_TASK_LOGS_RESPONSE__PART_BODY && resp->body) {
        for (size_t i = 0; i < resp->body->n_results; i++)
            print_line(resp->body->results[i]);
        r->position += resp->body->n_results;
    }
    flyteidl__admin__get_task_logs_response__free_unpacked(resp, NULL);
    fflush(stdout);
    return 0;
}

/* One GetTaskLogs from r->position. *ret_status: the call's; *ret_error (gives) on failure. */
static int read_page(struct reader *r, grpc_status_code *ret_status, char **ret_error)
{
    Flyteidl__Admin__GetTaskLogsRequest req = FLYTEIDL__ADMIN__GET_TASK_LOGS_REQUEST__INIT;
    Flyteidl__Admin__TaskCategory category = FLYTEIDL__ADMIN__TASK_CATEGORY__INIT;
    struct client_reply reply = {0};
    char token[LOG_PAGE_TOKEN_SIZE];
    uint8_t *buf = NULL;
    char *error = NULL;
    size_t len;
    int rc;

    *ret_status = GRPC_STATUS_UNKNOWN;
    category.name = (char *)r->args->task_type;
    req.task_category = &category;
    req.resource_meta.data = (uint8_t *)r->meta;
    req.resource_meta.len = r->meta_len;
    req.lines = r->args->lines;
    log_page_token(r->position, token);
    req.token = token;
    r->token[0] = '\0';
    if (cli_pack(&req.base, &buf, &len) < 0) {
        *ret_error = strdup("out of memory");
        return CLI_EXIT_FAILED;
    }
    rc = client_stream(r->client, GET_TASK_LOGS, buf, len, on_message, r, &reply, &error);
    free(buf);
    if (rc < 0) {
        if (asprintf(ret_error, "GetTaskLogs: %s", error ? error : "cannot call") < 0)
            *ret_error = NULL;
        free(error);
        return CLI_EXIT_FAILED;
    }
    *ret_status = reply.status;
    if (r->bad_answer)
        *ret_error = strdup("GetTaskLogs: the answer is not a GetTaskLogsResponse");
    else if (reply.status != GRPC_STATUS_OK)
        *ret_error = cli_failure_text(r->common, GET_TASK_LOGS, reply.status, reply.details);
    client_reply_done(&reply);
    return r->bad_answer || *ret_status != GRPC_STATUS_OK ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* Every page from r->position on, until a header's token says nothing remains. */
static int read_all(struct reader *r, grpc_status_code *ret_status, char **ret_error)
{
    int rc;

    do
        rc = read_page(r, ret_status, ret_error);
    while (rc == CLI_EXIT_OK && r->token[0]);
    return rc;
}

/* The run's phase now: *ret_phase, or CLI_EXIT_FAILED with *ret_status and *ret_error. */
static int run_phase(struct reader *r, enum phase *ret_phase, grpc_status_code *ret_status,
                     char **ret_error)
{
    Flyteidl__Admin__GetTaskResponse *resp = NULL;
    int rc = cli_get_task(r->common, r->client, r->meta, r->meta_len, r->args->task_type, &resp,
                          ret_status, ret_error);

    if (rc != CLI_EXIT_OK)
        return rc;
    *ret_phase = PHASE_UNDEFINED;
    if (resp->resource && (int)resp->resource->phase > 0 &&
        (int)resp->resource->phase < (int)_PHASE_MAX)
        *ret_phase = (enum phase)resp->resource->phase;
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    return CLI_EXIT_OK;
}

/* --follow: new lines until the run is over, then the last ones. Transient trouble is ridden
 * out a few times in a row. */
static int follow(struct reader *r, const sigset_t *interrupt)
{
    enum phase phase = PHASE_UNDEFINED;
    bool over = false;
    int failures = 0;

    for (;;) {
        grpc_status_code status = GRPC_STATUS_OK;
        char *error = NULL;
        int rc = read_all(r, &status, &error);

        if (rc == CLI_EXIT_OK && !over)
            rc = run_phase(r, &phase, &status, &error);
        if (rc != CLI_EXIT_OK) {
            cli_error(r->common->command, "%s", error ? error : "call failed");
            free(error);
            if (!cli_transient(status) || ++failures > CLI_MAX_TRANSIENT_FAILURES)
                return CLI_EXIT_FAILED;
        } else if (over) {
            return phase == PHASE_SUCCEEDED ? CLI_EXIT_OK : CLI_EXIT_NOT_SUCCEEDED;
        } else {
            failures = 0;
            /* Over: one more read takes the lines written at the end, without a pause. */
            over = phase_is_terminal(phase);
            if (over)
                continue;
        }
        if (cli_sleep_or_interrupt(interrupt, r->args->interval_ms)) {
            fflush(stdout);
            fprintf(stderr, "interrupted: stopped following; the run goes on\n");
            return CLI_EXIT_INTERRUPTED;
        }
    }
}

int cli_logs_main(int argc, char **argv)
{
    struct logs_args args = {.task_type = CLI_DEFAULT_TASK_TYPE,
                             .interval_ms = CLI_DEFAULT_INTERVAL_MS};
    struct cli_common common;
    struct client *client = NULL;
    struct reader reader;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    const char *arg = NULL;
    sigset_t interrupt;
    int r;

    r = cli_parse_one(argc, argv, logs_options, sizeof(logs_options) / sizeof(logs_options[0]),
                      option, &args, usage, "RESOURCE_META", &common, &arg);
    if (r != CLI_EXIT_OK || common.help)
        goto out;
    r = cli_load_resource_meta(&common, arg, &meta, &meta_len);
    if (r != CLI_EXIT_OK)
        goto out;
    /* Before gRPC starts its threads, so that they inherit the mask. */
    if (args.follow)
        cli_block_interrupt(&interrupt);
    r = cli_connect(&common, &client);
    if (r != CLI_EXIT_OK)
        goto out;
    reader = (struct reader){
        .common = &common, .client = client, .meta = meta, .meta_len = meta_len, .args = &args};
    if (args.follow) {
        r = follow(&reader, &interrupt);
    } else {
        grpc_status_code status;
        char *error = NULL;

        r = read_all(&reader, &status, &error);
        if (r != CLI_EXIT_OK)
            cli_error(common.command, "%s", error ? error : "GetTaskLogs failed");
        free(error);
    }
out:
    client_free(client);
    free(meta);
    return r;
}
