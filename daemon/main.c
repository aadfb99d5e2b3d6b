/*
 * main.c - one binary, several commands.
 *
 * `serve` runs the daemon (daemon.c); it is also what runs when the first
 * argument is an option or absent, so `flyte-databricks-connector --listen
 * ...` keeps working. The client commands live in cli*.c, `check-config` in
 * daemon.c and `fake-workspace` in fake_workspace.c.
 *
 * The binary also answers to the names of the Python connector servers it
 * replaces, so that the official flyteconnector Helm chart runs this image
 * with only image.repository and image.tag changed: Flyte 1.16's starts
 * `pyflyte serve agent`, Flyte 2's `c0`. `make install` and the image link
 * those names to the binary; main dispatches on argv[0]'s basename, and the
 * daemon accepts their flags (config.c).
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fake_workspace.h"
#include "daemon.h"

#define PROGRAM_NAME "flyte-databricks-connector"

static const struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", serve_main, "run the connector daemon (the default)"},
    {"agents", cli_agents_main, "list the agents a daemon serves (ListAgents)"},
    {"submit", cli_submit_main, "create a task from a TaskTemplate, optionally wait for it"},
    {"status", cli_status_main, "show a task's phase from its resource_meta (GetTask)"},
    {"cancel", cli_cancel_main, "cancel a task from its resource_meta (DeleteTask)"},
    {"logs", cli_logs_main, "print a run's output lines (GetTaskLogs), --follow until it ends"},
    {"check-config", check_config_main, "validate a config and print the effective settings"},
    {"fake-workspace", fake_workspace_main, "run a fake Databricks Jobs API for local trials"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: %s [COMMAND] [OPTIONS]\n\nCommands:\n", PROGRAM_NAME);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nWithout a command, options run `serve`. `%s COMMAND --help` explains a\n"
            "command; `%s serve --help` lists the daemon's options. Run as\n"
            "`pyflyte serve agent|connector` or `c0` (links to this binary, as the official\n"
            "Helm charts start it), it is `serve`.\n",
            PROGRAM_NAME, PROGRAM_NAME);
}

/* `pyflyte serve agent|connector [OPTIONS]`: flytekit's server commands, the daemon here. */
static int pyflyte_main(int argc, char **argv)
{
    static const char *const servers[] = {"agent", "connector"};

    if (argc >= 3 && strcmp(argv[1], "serve") == 0)
        for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
            if (strcmp(argv[2], servers[i]) == 0)
                return serve_main(argc - 2, argv + 2); /* argv[0]: "agent" or "connector" */
    fprintf(stderr,
            "pyflyte: this is %s, which answers only to `pyflyte serve agent [OPTIONS]` and "
            "`pyflyte serve connector [OPTIONS]` (see `pyflyte serve agent --help`)\n",
            PROGRAM_NAME);
    return 2;
}

/* Program names (argv[0]'s basename) that are another tool's command. */
static const struct alias {
    const char *name;
    int (*main)(int argc, char **argv);
} aliases[] = {
    {"pyflyte", pyflyte_main},
    {"c0", serve_main}, /* flyte-sdk's `c0 [OPTIONS]`, the connector server */
};

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0]) {
        char program[256];
        snprintf(program, sizeof(program), "%s", argv[0]);
        for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
            if (strcmp(basename(program), aliases[i].name) == 0)
                return aliases[i].main(argc, argv);
    }
    if (argc < 2 || argv[1][0] == '-') {
        /* Historical invocation: options only. Top-level --help shows commands too. */
        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            printf("\n");
        }
        return serve_main(argc, argv);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", PROGRAM_NAME, argv[1]);
    usage(stderr);
    return 2;
}
