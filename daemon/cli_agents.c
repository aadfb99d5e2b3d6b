/*
 * cli_agents.c - `flyte-databricks-connector agents`: ListAgents, printed as a table with one
 * row per agent and task type (NAME, TASK TYPE, VERSION, SYNC), as propeller's registry sees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flyteidl/admin/agent.pb-c.h"

#define LIST_AGENTS "/flyteidl.service.AgentMetadataService/ListAgents"

static const char *const headers[] = {"NAME", "TASK TYPE", "VERSION", "SYNC"};
#define N_COLUMNS (sizeof(headers) / sizeof(headers[0]))

struct row {
    const char *cells[N_COLUMNS]; /* borrow from the response or from version text */
    char version[16];
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s agents [OPTIONS]\n"
            "\n"
            "List the agents the daemon serves (ListAgents) as a table.\n"
            "\n"
            "Options:\n",
            CLI_PROGRAM);
    cli_print_common_help(out);
}

static int no_own_option(void *context, int id, const char *arg, char **reterr_msg)
{
    (void)context;
    (void)id;
    (void)arg;
    (void)reterr_msg;
    return 0;
}

/* Rows for one agent: its task categories, else the deprecated type names, else one "-" row. */
static size_t agent_rows(const Flyteidl__Admin__Agent *agent, struct row *rows)
{
    const char *name = agent->name && *agent->name ? agent->name : "-";
    const char *sync = agent->is_sync ? "yes" : "no";
    size_t n = 0;

    for (size_t i = 0; i < agent->n_supported_task_categories; i++, n++) {
        const Flyteidl__Admin__TaskCategory *c = agent->supported_task_categories[i];

        snprintf(rows[n].version, sizeof(rows[n].version), "%d", c ? (int)c->version : 0);
        rows[n].cells[0] = name;
        rows[n].cells[1] = c && c->name && *c->name ? c->name : "-";
        rows[n].cells[2] = rows[n].version;
        rows[n].cells[3] = sync;
    }
    if (n > 0)
        return n;
    for (size_t i = 0; i < agent->n_supported_task_types; i++, n++) {
        rows[n].cells[0] = name;
        rows[n].cells[1] = agent->supported_task_types[i];
        rows[n].cells[2] = "-";
        rows[n].cells[3] = sync;
    }
    if (n > 0)
        return n;
    rows[0].cells[0] = name;
    rows[0].cells[1] = "-";
    rows[0].cells[2] = "-";
    rows[0].cells[3] = sync;
    return 1;
}

static void print_cells(const char *const *cells, const int *width)
{
    for (size_t c = 0; c + 1 < N_COLUMNS; c++)
        printf("%-*s  ", width[c], cells[c]);
    printf("%s\n", cells[N_COLUMNS - 1]);
}

static void print_table(const struct row *rows, size_t n)
{
    int width[N_COLUMNS];

    for (size_t c = 0; c < N_COLUMNS; c++) {
        width[c] = (int)strlen(headers[c]);
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(rows[i].cells[c]) > width[c])
                width[c] = (int)strlen(rows[i].cells[c]);
    }
    print_cells(headers, width);
    for (size_t i = 0; i < n; i++)
        print_cells(rows[i].cells, width);
}

int cli_agents_main(int argc, char **argv)
{
    Flyteidl__Admin__ListAgentsRequest req = FLYTEIDL__ADMIN__LIST_AGENTS_REQUEST__INIT;
    Flyteidl__Admin__ListAgentsResponse *resp = NULL;
    struct cli_common common;
    struct client *client = NULL;
    struct client_reply reply = {0};
    struct row *rows = NULL;
    uint8_t buf[16];
    char *error = NULL;
    size_t len, n_rows = 0, capacity = 0;
    int first, count, r;

    r = cli_parse(argc, argv, NULL, 0, no_own_option, NULL, &common, &first, &count);
    if (r != CLI_EXIT_OK)
        goto out;
    if (common.help) {
        usage(stdout);
        goto out;
    }
    if (count > 0) {
        cli_error(common.command, "unexpected argument '%s' (see --help)", argv[first]);
        r = CLI_EXIT_USAGE;
        goto out;
    }
    r = cli_connect(&common, &client);
    if (r != CLI_EXIT_OK)
        goto out;
    len = flyteidl__admin__list_agents_request__pack(&req, buf);
    r = cli_call(&common, client, LIST_AGENTS, buf, len, &reply, NULL);
    if (r != CLI_EXIT_OK)
        goto out;
    resp = (Flyteidl__Admin__ListAgentsResponse *)cli_unpack(
        &flyteidl__admin__list_agents_response__descriptor, reply.data, reply.len, &error);
    if (!resp) {
        cli_error(common.command, "ListAgents: the answer %s",
                  error ? error : "is not a ListAgentsResponse");
        r = CLI_EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < resp->n_agents; i++) {
        const Flyteidl__Admin__Agent *a = resp->agents[i];

        capacity += 1 + a->n_supported_task_categories + a->n_supported_task_types;
    }
    rows = calloc(capacity ? capacity : 1, sizeof(*rows));
    if (!rows) {
        cli_error(common.command, "out of memory");
        r = CLI_EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < resp->n_agents; i++)
        n_rows += agent_rows(resp->agents[i], rows + n_rows);
    print_table(rows, n_rows);
    r = CLI_EXIT_OK;
out:
    free(error);
    free(rows);
    if (resp)
        flyteidl__admin__list_agents_response__free_unpacked(resp, NULL);
    client_reply_done(&reply);
    client_free(client);
    return r;
}
