/*
 * cli_status.c - `flyte-databricks-connector status RESOURCE_META` (GetTask once, or --watch
 * until the run ends) and `cancel RESOURCE_META` (DeleteTask). RESOURCE_META is the JSON that
 * submit printed, given as it is or as the path of a file holding it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum status_option {
    STATUS_WATCH,
    STATUS_TASK_TYPE,
    STATUS_INTERVAL,
};

static const struct cli_option status_options[] = {
    {"watch", false, STATUS_WATCH},
    {"task-type", true, STATUS_TASK_TYPE},
    {"interval", true, STATUS_INTERVAL},
};

/* cancel takes the same options but --watch and --interval. */
static const struct cli_option cancel_options[] = {
    {"task-type", true, STATUS_TASK_TYPE},
};

struct status_args {
    const char *task_type; /* borrows argv */
    bool watch;
    int64_t interval_ms;
};

static void status_usage(FILE *out)
{
    fprintf(out,
            "Usage: %s status RESOURCE_META [OPTIONS]\n"
            "\n"
            "Show the state of a task (GetTask): phase, message, log link, error. RESOURCE_META\n"
            "is the JSON that submit printed, or the path of a file holding it.\n"
            "\n"
            "Options:\n"
            "  --watch              follow the run until it ends (Ctrl-C stops watching)\n"
            "  --interval SECONDS   time between GetTask calls with --watch (default %d)\n"
            "  --task-type T        task category sent: spark or databricks "
            "(default " CLI_DEFAULT_TASK_TYPE ")\n",
            CLI_PROGRAM, CLI_DEFAULT_INTERVAL_MS / 1000);
    cli_print_common_help(out);
}

static void cancel_usage(FILE *out)
{
    fprintf(out,
            "Usage: %s cancel RESOURCE_META [OPTIONS]\n"
            "\n"
            "Cancel a task (DeleteTask). RESOURCE_META is the JSON that submit printed, or the\n"
            "path of a file holding it.\n"
            "\n"
            "Options:\n"
            "  --task-type T        task category sent: spark or databricks "
            "(default " CLI_DEFAULT_TASK_TYPE ")\n",
            CLI_PROGRAM);
    cli_print_common_help(out);
}

static int status_option(void *context, int id, const char *arg, char **reterr_msg)
{
    struct status_args *a = context;

    switch (id) {
    case STATUS_WATCH:
        a->watch = true;
        break;
    case STATUS_TASK_TYPE:
        return cli_option_task_type(arg, &a->task_type, reterr_msg);
    case STATUS_INTERVAL:
        return cli_option_interval(arg, &a->interval_ms, reterr_msg);
    }
    return 0;
}

/* Parses argv for status or cancel; on CLI_EXIT_OK with !common->help, *ret_meta is loaded. */
static int parse(int argc, char **argv, const struct cli_option *options, size_t n_options,
                 void (*usage)(FILE *), struct status_args *args, struct cli_common *common,
                 uint8_t **ret_meta, size_t *ret_meta_len)
{
    const char *arg = NULL;
    int r;

    *args = (struct status_args){
        .task_type = CLI_DEFAULT_TASK_TYPE,
        .interval_ms = CLI_DEFAULT_INTERVAL_MS,
    };
    r = cli_parse_one(argc, argv, options, n_options, status_option, args, usage, "RESOURCE_META",
                      common, &arg);
    if (r != CLI_EXIT_OK || common->help)
        return r;
    return cli_load_resource_meta(common, arg, ret_meta, ret_meta_len);
}

int cli_status_main(int argc, char **argv)
{
    struct status_args args;
    struct cli_common common;
    struct client *client = NULL;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    sigset_t interrupt;
    int r;

    r = parse(argc, argv, status_options, sizeof(status_options) / sizeof(status_options[0]),
              status_usage, &args, &common, &meta, &meta_len);
    if (r != CLI_EXIT_OK || common.help)
        goto out;
    /* Before gRPC starts its threads, so that they inherit the mask. */
    if (args.watch)
        cli_block_interrupt(&interrupt);
    r = cli_connect(&common, &client);
    if (r != CLI_EXIT_OK)
        goto out;
    if (args.watch) {
        struct cli_watch w = {
            .common = &common,
            .client = client,
            .resource_meta = meta,
            .resource_meta_len = meta_len,
            .task_type = args.task_type,
            .interval_ms = args.interval_ms,
            .cancel_on_interrupt = false,
            .interrupt = &interrupt,
        };
        r = cli_watch_run(&w);
    } else {
        r = cli_status_once(&common, client, meta, meta_len, args.task_type);
    }
out:
    client_free(client);
    free(meta);
    return r;
}

int cli_cancel_main(int argc, char **argv)
{
    struct status_args args;
    struct cli_common common;
    struct client *client = NULL;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    int r;

    r = parse(argc, argv, cancel_options, sizeof(cancel_options) / sizeof(cancel_options[0]),
              cancel_usage, &args, &common, &meta, &meta_len);
    if (r != CLI_EXIT_OK || common.help)
        goto out;
    r = cli_connect(&common, &client);
    if (r != CLI_EXIT_OK)
        goto out;
    r = cli_delete_task(&common, client, meta, meta_len, args.task_type);
    if (r == CLI_EXIT_OK)
        printf("cancel requested\n");
out:
    client_free(client);
    free(meta);
    return r;
}
