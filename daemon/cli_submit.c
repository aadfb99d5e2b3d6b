/*
 * cli_submit.c - `flyte-databricks-connector submit TEMPLATE`: CreateTask with a TaskTemplate
 * read from a file, as propeller would send it, printing the resource_meta; with --wait, the
 * watch loop follows the run to its end and Ctrl-C cancels it.
 *
 * The request carries a task_execution_id made of the template id and a fresh execution name,
 * so the daemon derives an idempotency token as it does for propeller's attempts. Inputs, when
 * given, are binary LiteralMap bytes passed through untouched (the daemon never reads them).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "template_json.h"

#define CREATE_TASK "/flyteidl.service.AsyncAgentService/CreateTask"
/* The node a one-task "workflow" run from the command line is said to be. */
#define CLI_NODE_ID "n0"
/* CreateTaskRequest.inputs is field 1, length-delimited: tag (1 << 3) | 2. */
#define INPUTS_TAG 0x0a

enum submit_option {
    SUBMIT_INPUTS,
    SUBMIT_NAMESPACE,
    SUBMIT_WAIT,
    SUBMIT_TASK_TYPE,
    SUBMIT_INTERVAL,
};

static const struct cli_option submit_options[] = {
    {"inputs", true, SUBMIT_INPUTS},       /* FILE.pb */
    {"namespace", true, SUBMIT_NAMESPACE}, /* NS */
    {"wait", false, SUBMIT_WAIT},          /* follow the run */
    {"task-type", true, SUBMIT_TASK_TYPE}, /* T */
    {"interval", true, SUBMIT_INTERVAL},   /* SECONDS */
};

struct submit_args {
    const char *inputs; /* borrows argv */
    const char *namespace_;
    const char *task_type;
    bool wait;
    int64_t interval_ms;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s submit TEMPLATE [OPTIONS]\n"
            "\n"
            "Start a task (CreateTask) from TEMPLATE, a flyteidl.core.TaskTemplate as protobuf\n"
            "JSON (camelCase or snake_case names), or binary protobuf if the name ends in .pb.\n"
            "Prints the resource_meta (one line of JSON) for the status and cancel commands.\n"
            "\n"
            "Options:\n"
            "  --inputs FILE        binary flyteidl.core.LiteralMap (.pb) sent as the inputs\n"
            "  --namespace NS       task_execution_metadata.namespace\n"
            "  --task-type T        the template's type (default: the template's, "
            "else " CLI_DEFAULT_TASK_TYPE ")\n"
            "  --wait               follow the run (GetTask) until it ends; Ctrl-C cancels it\n"
            "  --interval SECONDS   time between GetTask calls with --wait (default %d)\n",
            CLI_PROGRAM, CLI_DEFAULT_INTERVAL_MS / 1000);
    cli_print_common_help(out);
}

static int submit_option(void *context, int id, const char *arg, char **reterr_msg)
{
    struct submit_args *a = context;

    switch (id) {
    case SUBMIT_INPUTS:
        a->inputs = arg;
        break;
    case SUBMIT_NAMESPACE:
        a->namespace_ = arg;
        break;
    case SUBMIT_WAIT:
        a->wait = true;
        break;
    case SUBMIT_TASK_TYPE:
        return cli_option_task_type(arg, &a->task_type, reterr_msg);
    case SUBMIT_INTERVAL:
        return cli_option_interval(arg, &a->interval_ms, reterr_msg);
    }
    return 0;
}

/* The template from a file: binary if it ends in .pb, protobuf JSON otherwise. Sets *ret_binary
 * to say which destructor the result needs. */
static int load_template(const char *command, const char *path,
                         Flyteidl__Core__TaskTemplate **ret_template, bool *ret_binary)
{
    uint8_t *data = NULL;
    size_t len;
    char *error = NULL;
    int r;

    if (cli_read_file(path, CLI_MAX_FILE_BYTES, &data, &len, &error) < 0) {
        cli_error(command, "%s", error ? error : "cannot read the template");
        r = CLI_EXIT_USAGE;
        goto out;
    }
    *ret_binary = cli_has_suffix(path, ".pb");
    if (*ret_binary) {
        *ret_template = (Flyteidl__Core__TaskTemplate *)cli_unpack(
            &flyteidl__core__task_template__descriptor, data, len, &error);
        if (!*ret_template) {
            if (error)
                cli_error(command, "'%s': %s", path, error);
            else
                cli_error(command, "'%s' is not a binary flyteidl.core.TaskTemplate", path);
            r = CLI_EXIT_USAGE;
            goto out;
        }
    } else if (template_json_parse((const char *)data, len, ret_template, &error) < 0) {
        cli_error(command, "'%s': %s", path, error ? error : "cannot read the template");
        r = CLI_EXIT_USAGE;
        goto out;
    }
    r = CLI_EXIT_OK;
out:
    free(error);
    free(data);
    return r;
}

static void template_free(Flyteidl__Core__TaskTemplate *t, bool binary)
{
    if (t && binary)
        protobuf_c_message_free_unpacked(&t->base, NULL);
    else
        template_json_free(t);
}

/* Reads and checks the inputs file; gives its bytes unchanged. */
static int load_inputs(const char *command, const char *path, uint8_t **ret_data, size_t *ret_len)
{
    Flyteidl__Core__LiteralMap *map;
    char *error = NULL;

    if (!cli_has_suffix(path, ".pb")) {
        cli_error(command,
                  "--inputs '%s': only binary .pb inputs (a flyteidl.core.LiteralMap) "
                  "are supported",
                  path);
        return CLI_EXIT_USAGE;
    }
    if (cli_read_file(path, CLI_MAX_FILE_BYTES, ret_data, ret_len, &error) < 0) {
        cli_error(command, "%s", error ? error : "cannot read the inputs");
        free(error);
        return CLI_EXIT_USAGE;
    }
    map = (Flyteidl__Core__LiteralMap *)cli_unpack(&flyteidl__core__literal_map__descriptor,
                                                   *ret_data, *ret_len, &error);
    if (!map) {
        if (error)
            cli_error(command, "--inputs '%s': %s", path, error);
        else
            cli_error(command, "--inputs '%s' is not a binary flyteidl.core.LiteralMap", path);
        free(error);
        free(*ret_data);
        *ret_data = NULL;
        return CLI_EXIT_USAGE;
    }
    flyteidl__core__literal_map__free_unpacked(map, NULL);
    return CLI_EXIT_OK;
}

static size_t put_varint(uint8_t *out, size_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/*
 * Packs the CreateTaskRequest. The inputs are appended as field 1 after the packed rest:
 * protobuf fields may come in any order, and this way the LiteralMap bytes reach the daemon
 * exactly as the file holds them (our Literal subset would only round-trip them as unknown
 * fields). Gives *ret_buf (free()).
 */
static int pack_request(Flyteidl__Core__TaskTemplate *template_, const char *namespace_,
                        const uint8_t *inputs, size_t inputs_len, uint8_t **ret_buf,
                        size_t *ret_len)
{
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;
    Flyteidl__Admin__TaskExecutionMetadata meta = FLYTEIDL__ADMIN__TASK_EXECUTION_METADATA__INIT;
    Flyteidl__Core__TaskExecutionIdentifier id = FLYTEIDL__CORE__TASK_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__NodeExecutionIdentifier node = FLYTEIDL__CORE__NODE_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__WorkflowExecutionIdentifier execution =
        FLYTEIDL__CORE__WORKFLOW_EXECUTION_IDENTIFIER__INIT;
    char execution_name[64];
    uint8_t *buf;
    size_t len, head;

    /* Fresh per invocation: a second submit of the same template is a new run, while the
     * daemon's retries of this one share a token. */
    snprintf(execution_name, sizeof(execution_name), "cli-%lld-%ld", (long long)time(NULL),
             (long)getpid());
    if (template_->id) {
        execution.project = template_->id->project;
        execution.domain = template_->id->domain;
        execution.org = template_->id->org;
        id.task_id = template_->id;
    }
    execution.name = execution_name;
    node.node_id = (char *)CLI_NODE_ID;
    node.execution_id = &execution;
    id.node_execution_id = &node;
    id.retry_attempt = 0;
    meta.task_execution_id = &id;
    if (namespace_)
        meta.namespace_ = (char *)namespace_;
    req.template_ = template_;
    req.task_execution_metadata = &meta;

    head = flyteidl__admin__create_task_request__get_packed_size(&req);
    len = head + (inputs ? 1 + 10 + inputs_len : 0);
    buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    flyteidl__admin__create_task_request__pack(&req, buf);
    len = head;
    if (inputs) {
        buf[len++] = INPUTS_TAG;
        len += put_varint(buf + len, inputs_len);
        memcpy(buf + len, inputs, inputs_len);
        len += inputs_len;
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

int cli_submit_main(int argc, char **argv)
{
    struct submit_args args = {.interval_ms = CLI_DEFAULT_INTERVAL_MS};
    struct cli_common common;
    Flyteidl__Core__TaskTemplate *template_ = NULL;
    Flyteidl__Admin__CreateTaskResponse *resp = NULL;
    struct client *client = NULL;
    struct client_reply reply = {0};
    uint8_t *inputs = NULL, *request = NULL;
    size_t inputs_len = 0, request_len = 0;
    char *type = NULL, *error = NULL;
    bool binary = false;
    const char *path = NULL;
    sigset_t interrupt;
    int r;

    r = cli_parse_one(argc, argv, submit_options,
                      sizeof(submit_options) / sizeof(submit_options[0]), submit_option, &args,
                      usage, "TEMPLATE", &common, &path);
    if (r != CLI_EXIT_OK || common.help)
        goto out;
    r = load_template(common.command, path, &template_, &binary);
    if (r != CLI_EXIT_OK)
        goto out;
    if (args.inputs && (r = load_inputs(common.command, args.inputs, &inputs, &inputs_len)))
        goto out;
    /* --task-type wins; a template without a type is taken as the default task type. */
    if (args.task_type || !template_->type || !*template_->type) {
        type = strdup(args.task_type ? args.task_type : CLI_DEFAULT_TASK_TYPE);
        if (!type) {
            cli_error(common.command, "out of memory");
            r = CLI_EXIT_FAILED;
            goto out;
        }
        if (template_->type && template_->type != protobuf_c_empty_string)
            free(template_->type);
        template_->type = type;
        type = NULL;
    }
    if (pack_request(template_, args.namespace_, inputs, inputs_len, &request, &request_len) < 0) {
        cli_error(common.command, "out of memory");
        r = CLI_EXIT_FAILED;
        goto out;
    }

    /* Before gRPC starts its threads, so that they inherit the mask. */
    if (args.wait)
        cli_block_interrupt(&interrupt);
    r = cli_connect(&common, &client);
    if (r != CLI_EXIT_OK)
        goto out;
    r = cli_call(&common, client, CREATE_TASK, request, request_len, &reply, NULL);
    if (r != CLI_EXIT_OK)
        goto out;
    resp = (Flyteidl__Admin__CreateTaskResponse *)cli_unpack(
        &flyteidl__admin__create_task_response__descriptor, reply.data, reply.len, &error);
    if (!resp || resp->resource_meta.len == 0) {
        cli_error(common.command, "CreateTask: the answer %s",
                  error ? error : "holds no resource_meta");
        r = CLI_EXIT_FAILED;
        goto out;
    }
    fwrite(resp->resource_meta.data, 1, resp->resource_meta.len, stdout);
    putchar('\n');
    fflush(stdout);
    if (args.wait) {
        struct cli_watch w = {
            .common = &common,
            .client = client,
            .resource_meta = resp->resource_meta.data,
            .resource_meta_len = resp->resource_meta.len,
            .task_type = template_->type,
            .interval_ms = args.interval_ms,
            .cancel_on_interrupt = true,
            .interrupt = &interrupt,
        };
        r = cli_watch_run(&w);
    }
out:
    free(error);
    if (resp)
        flyteidl__admin__create_task_response__free_unpacked(resp, NULL);
    client_reply_done(&reply);
    client_free(client);
    free(request);
    free(inputs);
    free(type);
    template_free(template_, binary);
    return r;
}
