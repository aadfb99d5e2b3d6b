/*
 * main.c - start-up, signals and shutdown of flyte-databricks-connector.
 *
 * Start-up order: block signals (so every thread gRPC and libcurl start
 * inherits the mask), read the configuration, start the Databricks client,
 * then the gRPC server, then report SERVING. Signals are taken synchronously
 * with sigwait() in this thread; no work runs in an async signal handler.
 * Shutdown runs in reverse: NOT_SERVING, stop accepting calls and give the
 * ones in flight a grace period, stop the curl thread (its pending requests
 * answer UNAVAILABLE), join the workers, free everything.
 */
#include <curl/curl.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "dbx.h"
#include "health.h"
#include "log.h"
#include "metadata.h"
#include "server.h"

#define PROGRAM_NAME "flyte-databricks-connector"
#define SHUTDOWN_GRACE_MS 10000

extern char **environ;

/* The services Health/Check reports on; "" (the whole server) is implied. */
static const char *const served_services[] = {
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.AgentMetadataService",
    "grpc.health.v1.Health",
    NULL,
};

static const enum log_level config_to_log_level[_CONFIG_LOG_MAX] = {
    [CONFIG_LOG_DEBUG] = LOG_LEVEL_DEBUG,
    [CONFIG_LOG_INFO] = LOG_LEVEL_INFO,
    [CONFIG_LOG_WARNING] = LOG_LEVEL_WARNING,
    [CONFIG_LOG_ERROR] = LOG_LEVEL_ERROR,
};

/* Blocks the signals main waits for, in this thread and all it starts. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    /* A peer closing a connection must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
}

static int wait_for_stop_signal(const sigset_t *set)
{
    for (;;) {
        int signal_number = 0;
        if (sigwait(set, &signal_number) != 0)
            continue;
        if (signal_number == SIGHUP) {
            log_warning("SIGHUP ignored: configuration reload needs a restart in this version");
            continue;
        }
        return signal_number;
    }
}

int main(int argc, char **argv)
{
    sigset_t signals;
    struct config *config = NULL;
    enum config_action action = CONFIG_ACTION_RUN;
    char **warnings = NULL;
    char *error = NULL;
    struct dbx *dbx = NULL;
    struct agent *agent = NULL;
    struct health *health = NULL;
    struct server *server = NULL;
    int exit_code = EXIT_FAILURE;
    int signal_number;
    char port[16];

    block_signals(&signals);

    if (config_load(argc, argv, environ, &config, &action, &warnings, &error) < 0) {
        fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "invalid configuration");
        fprintf(stderr, "Try '%s --help'.\n", PROGRAM_NAME);
        goto out;
    }
    switch (action) {
    case CONFIG_ACTION_HELP:
        config_usage(stdout, PROGRAM_NAME);
        exit_code = EXIT_SUCCESS;
        goto out;
    case CONFIG_ACTION_VERSION:
        printf("%s %s\n", PROGRAM_NAME, FDC_VERSION);
        exit_code = EXIT_SUCCESS;
        goto out;
    case CONFIG_ACTION_CHECK:
        for (size_t i = 0; warnings && warnings[i]; i++)
            fprintf(stderr, "%s: warning: %s\n", PROGRAM_NAME, warnings[i]);
        printf("configuration OK\n");
        exit_code = EXIT_SUCCESS;
        goto out;
    default:
        break;
    }

    log_set_level(config_to_log_level[config->log_level]);
    for (size_t i = 0; warnings && warnings[i]; i++)
        log_warning(warnings[i]);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", PROGRAM_NAME);
        goto out;
    }
    grpc_init();

    {
        struct dbx_settings settings = {
            .token = config->token,
            .ca_file = config->ca_file,
            .connect_timeout_ms = config->connect_timeout_ms,
            .request_timeout_ms = config->request_timeout_ms,
            .max_response_bytes = config->max_response_bytes,
            .max_host_connections = 16,
        };
        dbx = dbx_new(&settings, &error);
        if (!dbx) {
            fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "cannot start");
            goto shutdown;
        }
    }
    agent = agent_new(config, dbx);
    health = health_new(served_services);
    if (!agent || !health) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM_NAME);
        goto shutdown;
    }

    {
        const struct server_method methods[] = {
            {"/flyteidl.service.AsyncAgentService/CreateTask", agent_create_task, agent},
            {"/flyteidl.service.AsyncAgentService/GetTask", agent_get_task, agent},
            {"/flyteidl.service.AsyncAgentService/DeleteTask", agent_delete_task, agent},
            {"/flyteidl.service.AgentMetadataService/ListAgents", metadata_list_agents, NULL},
            {"/flyteidl.service.AgentMetadataService/GetAgent", metadata_get_agent, NULL},
            {"/grpc.health.v1.Health/Check", health_check, health},
        };
        server = server_new(config->listen, config->workers, methods,
                            sizeof(methods) / sizeof(methods[0]), &error);
        if (!server) {
            fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "cannot start server");
            goto shutdown;
        }
    }

    health_set_serving(health, true);
    snprintf(port, sizeof(port), "%d", server_port(server));
    log_info("serving", "listen", config->listen, "port", port, "version", FDC_VERSION,
             "default_instance", config->default_instance);

    signal_number = wait_for_stop_signal(&signals);
    log_info("stopping", "signal", strsignal(signal_number));
    exit_code = EXIT_SUCCESS;

shutdown:
    if (health)
        health_set_serving(health, false);
    if (server)
        server_shutdown(server, SHUTDOWN_GRACE_MS);
    /* Stops the curl thread: requests still pending answer UNAVAILABLE. */
    dbx_free(dbx);
    server_free(server);
    agent_free(agent);
    health_free(health);
    grpc_shutdown();
    curl_global_cleanup();
    if (exit_code == EXIT_SUCCESS)
        log_info("stopped");
out:
    free(error);
    config_strv_free(warnings);
    config_free(config);
    return exit_code;
}
