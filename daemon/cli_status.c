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

/* status or cancel, with what they work on once parsed and connected. */
struct run {
    struct cli_common *common;
    struct status_args *args;
    struct client *client; /* owns */
    uint8_t *meta;         /* owns: the resource_meta */
    size_t meta_len;
    sigset_t interrupt; /* blocked with --watch */
};

struct command {
    const struct cli_option *options;
    size_t n_options;
    void (*usage)(FILE *out);
    int (*act)(const struct run *run);
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
static int parse(int argc, char **argv, const struct command *command, struct status_args *args,
                 struct cli_common *common, uint8_t **ret_meta, size_t *ret_meta_len)
{
    const char *arg = NULL;
    int r;

    *args = (struct status_args){
        .task_type = CLI_DEFAULT_TASK_TYPE,
        .interval_ms = CLI_DEFAULT_INTERVAL_MS,
    };
    r = cli_parse_one(argc, argv, command->options, command->n_options, status_option, args,
                      command->usage, "RESOURCE_META", common, &arg);
    if (r != CLI_EXIT_OK || common->help)
        return r;
    return cli_load_resource_meta(common, arg, ret_meta, ret_meta_len);
}

/* Parses, connects and runs the command on the run RESOURCE_META names. */
static int run_command(int argc, char **argv, const struct command *command)
{
    struct status_args args;
    struct cli_common common;
    struct run run = {.common = &common, .args = &args};
    int r;

    r = parse(argc, argv, command, &args, &common, &run.meta, &run.meta_len);
    if (r != CLI_EXIT_OK || common.help)
        goto out;
    /* Before gRPC starts its threads, so that they inherit the mask. */
    if (args.watch)
        cli_block_interrupt(&run.interrupt);
    r = cli_connect(&common, &run.client);
    if (r != CLI_EXIT_OK)
        goto out;
    r = command->act(&run);
out:
    client_free(run.client);
    free(run.meta);
    return r;
}

static int status_act(const struct run *run)
{
    struct cli_watch w = {
        .common = run->common,
        .client = run->client,
        .resource_meta = run->meta,
        .resource_meta_len = run->meta_len,
        .task_type = run->args->task_type,
        .interval_ms = run->args->interval_ms,
        .cancel_on_interrupt = false,
        .interrupt = &run->interrupt,
    };

    if (!run->args->watch)
        return cli_status_once(run->common, run->client, run->meta, run->meta_len,
                               run->args->task_type);
    return cli_watch_run(&w);
}

static int cancel_act(const struct run *run)
{
    int r =
        cli_delete_task(run->common, run->client, run->meta, run->meta_len, run->args->task_type);

    if (r == CLI_EXIT_OK)
        printf("cancel requested\n");
    return r;
}

#define N_OPTIONS(table) (sizeof(table) / sizeof((table)[0]))

static const struct command status_command = {status_options, N_OPTIONS(status_options),
                                              status_usage, status_act};
static const struct command cancel_command = {cancel_options, N_OPTIONS(cancel_options),
                                              cancel_usage, cancel_act};

int cli_status_main(int argc, char **argv)
{
    return run_command(argc, argv, &status_command);
}

int cli_cancel_main(int argc, char **argv)
{
    return run_command(argc, argv, &cancel_command);
}
