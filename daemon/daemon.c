/*
 * daemon.c - the daemon (`serve`): start-up, signals, reload and shutdown, and
 * `check-config`, which loads a configuration the way serve does.
 *
 * Start-up order: block signals (so every thread gRPC, libcurl and
 * libmicrohttpd start inherits the mask), turn core dumps off and keep a
 * private copy of the environment (hardening.c), read the configuration,
 * scrub the variables it read secrets from out of the environment block, start the
 * metrics endpoint, the transfer engine with the Databricks client and the
 * loop thread, then the gRPC server (handed to the loop with workers 0),
 * then report SERVING (and READY=1 to systemd). Signals are taken synchronously with
 * sigwait() in this thread; no work runs in an async signal handler.
 *
 * SIGHUP re-reads the configuration and the token file; a valid new config
 * replaces the old one for calls that start from then on (calls in flight
 * keep theirs, so replaced configs stay allocated until exit), an invalid
 * one is refused and the old one stays in force. A change of a token or
 * client secret file (config_load() names them) does the same: Kubernetes
 * updates a mounted Secret in place, and nobody sends a signal then. This
 * thread looks at the files' stamps between signals, every second.
 *
 * SIGTERM/SIGINT: health turns NOT_SERVING at once; after shutdown_delay_ms
 * (default 0) the server stops accepting calls and gives the ones in flight
 * shutdown_grace_ms, the loop thread stops (pending Databricks requests
 * answer UNAVAILABLE), everything is freed, exit 0. A second such signal
 * during that exits at once.
 */
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#include "agent.h"
#include "clock.h"
#include "config.h"
#include "creds.h"
#include "dbx.h"
#include "hardening.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metadata.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "server.h"
#include "task_logs.h"
#include "task_metrics.h"
#include "server_tls.h"

#define PROGRAM_NAME "flyte-databricks-connector"
/* The loop starts a round at least once a second and handlers never block:
 * a loop or worker stuck this long is wedged, and systemd should restart us. */
#define WEDGED_AFTER_MS 10000
#define MAX_HOST_CONNECTIONS 16
/* How often the token and secret files are looked at for a change. */
#define WATCH_INTERVAL_MS 1000

extern char **environ;

/* The services Health/Check reports on; "" (the whole server) is implied. */
static const char *const served_services[] = {
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.AgentMetadataService",
    "flyteidl2.connector.AsyncConnectorService",
    "flyteidl2.connector.ConnectorMetadataService",
    "grpc.health.v1.Health",
    NULL,
};

static const enum log_level config_to_log_level[_CONFIG_LOG_MAX] = {
    [CONFIG_LOG_DEBUG] = LOG_LEVEL_DEBUG,
    [CONFIG_LOG_INFO] = LOG_LEVEL_INFO,
    [CONFIG_LOG_WARNING] = LOG_LEVEL_WARNING,
    [CONFIG_LOG_ERROR] = LOG_LEVEL_ERROR,
};

/* Everything the daemon runs, for the watchdog and reload. */
struct daemon {
    int argc;
    char **argv;
    char **envp;           /* the environment as it was at start, secrets included, for reloads */
    struct config *config; /* in force: main's own reference */
    struct config_current *current; /* the same, for the handlers; reloads replace it */
    struct config_stamp *stamps;    /* of config->watch_files, as last loaded */
    struct metrics *metrics;
    struct metrics_http *metrics_http;
    struct http *http;
    struct dbx *dbx;
    struct creds *creds;
    struct loop *loop;
    struct agent *agent;
    struct task_logs *task_logs;
    struct health *health;
    struct server_tls *tls; /* NULL: plaintext gRPC */
    struct server *server;
    struct notify_watchdog *watchdog;
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

/* gRPC core logs to stderr in its own format; its messages are internal
 * detail (the daemon reports what matters itself), so they become debug
 * lines in ours. */
static void grpc_log_bridge(gpr_log_func_args *args)
{
    char line[16];
    snprintf(line, sizeof(line), "%d", args->line);
    log_debug("grpc", "file", args->file, "line", line, "detail", args->message);
}

static struct dbx_settings dbx_settings_from(const struct config *config, struct metrics *metrics)
{
    struct dbx_settings settings = {
        .token = config->token,
        .ca_file = config->ca_file,
        .connect_timeout_ms = config->connect_timeout_ms,
        .request_timeout_ms = config->request_timeout_ms,
        .max_response_bytes = config->max_response_bytes,
        .metrics = metrics,
        .rate_limit_rps = config->instance_rate_limit_rps,
        .max_concurrent_requests = config->instance_max_concurrent_requests,
        .limits = config->instance_limits,
        .limits_count = config->instance_limits_count,
    };
    return settings;
}

static void apply_log_settings(const struct config *config)
{
    log_set_level(config_to_log_level[config->log_level]);
    /* Under systemd, stderr is the journal: send structured fields instead. */
    if (log_stderr_is_journal(getenv("JOURNAL_STREAM")))
        log_set_format(LOG_FORMAT_JOURNAL);
    else
        log_set_format(strcmp(config->log_format, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
}

/* Names the settings a reload cannot change in the running process. */
static void warn_restart_only(const struct config *old, const struct config *fresh)
{
    static const struct {
        const char *key;
        size_t offset;
    } strings[] = {
        {"listen", offsetof(struct config, listen)},
        {"metrics_listen", offsetof(struct config, metrics_listen)},
        {"log_format", offsetof(struct config, log_format)},
    };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        const char *a = *(char *const *)((const char *)old + strings[i].offset);
        const char *b = *(char *const *)((const char *)fresh + strings[i].offset);
        if (strcmp(a, b) != 0)
            log_warning("changed setting needs a restart to take effect, keeping the old value",
                        "key", strings[i].key, "value", a);
    }
    if (old->workers != fresh->workers)
        log_warning("changed setting needs a restart to take effect, keeping the old value", "key",
                    "workers");
}

static struct tls_files_server tls_files_of(const struct config *config)
{
    return (struct tls_files_server){.cert_file = config->tls_cert_file,
                                     .key_file = config->tls_key_file,
                                     .client_ca_file = config->tls_client_ca_file};
}

/* Turning TLS or client certificates on or off changes the listener's credentials, which gRPC
 * fixes when the port is added: restart-only. The files themselves are reloaded. */
static bool tls_mode_changed(const struct config *old, const struct config *fresh)
{
    if (!old->tls_cert_file != !fresh->tls_cert_file) {
        log_warning("changed setting needs a restart to take effect, keeping the old value", "key",
                    "tls_cert_file");
        return true;
    }
    if (!old->tls_client_ca_file != !fresh->tls_client_ca_file) {
        log_warning("changed setting needs a restart to take effect, keeping the old value", "key",
                    "tls_client_ca_file");
        return true;
    }
    return false;
}

static void reload(struct daemon *d)
{
    struct config *fresh = NULL;
    enum config_action action;
    char **warnings = NULL;
    char *error = NULL;
    struct dbx_settings settings;

    if (config_load(d->argc, d->argv, d->envp, &fresh, &action, &warnings, &error) < 0) {
        log_error("reload refused: invalid configuration, the old one stays in force", "error",
                  error ? error : "unknown");
        goto out;
    }
    if (!tls_mode_changed(d->config, fresh) && d->tls) {
        const struct tls_files_server files = tls_files_of(fresh);

        /* config_load() checked the files; this reads them again for the listener. */
        if (server_tls_reload(d->tls, &files, &error) < 0) {
            log_error("reload refused, the old configuration stays in force", "error",
                      error ? error : "out of memory");
            goto out;
        }
    }
    settings = dbx_settings_from(fresh, d->metrics);
    if (dbx_reconfigure(d->dbx, &settings, &error) < 0) {
        log_error("reload refused, the old configuration stays in force", "error",
                  error ? error : "out of memory");
        goto out;
    }
    for (size_t i = 0; warnings && warnings[i]; i++)
        log_warning(warnings[i]);
    warn_restart_only(d->config, fresh);
    /* log_format is restart-only; the level is not. */
    log_set_level(config_to_log_level[fresh->log_level]);
    /* Calls in flight keep the old config; it is freed when the last of them ends. */
    config_current_set(d->current, fresh);
    config_unref(d->config);
    d->config = fresh;
    fresh = NULL;
    log_info("configuration reloaded", "config", d->config->config_file);
out:
    config_unref(fresh);
    config_strv_free(warnings);
    free(error);
}

/* After the first stop signal: a second one means "now". */
static void *second_signal_main(void *arg)
{
    sigset_t set;
    int signal_number;

    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigwait(&set, &signal_number) == 0) {
        log_warning("second stop signal: exiting at once", "signal", strsignal(signal_number));
        _exit(EXIT_FAILURE);
    }
    return NULL;
}

/*
 * shutdown_delay_ms: everything keeps running (health already says
 * NOT_SERVING) so that whatever watches health moves away before the
 * listener closes. The second-signal thread can still end it.
 */
static void serve_on_while_not_serving(long delay_ms)
{
    struct timespec left = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L};

    if (delay_ms <= 0)
        return;
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}

/* Gives the stamps of config's watched files (free()), NULL when out of memory. */
static struct config_stamp *stamps_of(const struct config *config)
{
    struct config_stamp *stamps = calloc(config->watch_files_count + 1, sizeof(*stamps));

    for (size_t i = 0; stamps && i < config->watch_files_count; i++)
        config_stamp_file(config->watch_files[i], &stamps[i]);
    return stamps;
}

static bool same_watch_files(const struct config *a, const struct config *b)
{
    if (a->watch_files_count != b->watch_files_count)
        return false;
    for (size_t i = 0; i < a->watch_files_count; i++)
        if (strcmp(a->watch_files[i], b->watch_files[i]) != 0)
            return false;
    return true;
}

/*
 * Reloads, then keeps the stamps taken before the files were read: a file replaced while the
 * reload read it then still counts as changed. Out of memory, the files are not watched until
 * the next reload.
 */
static void reload_and_stamp(struct daemon *d)
{
    /* A reference of our own: a successful reload drops main's. */
    const struct config *old = config_ref(d->config);
    struct config_stamp *before = stamps_of(old);

    reload(d);
    if (d->config != old && !same_watch_files(old, d->config)) {
        free(before);
        before = stamps_of(d->config);
    }
    free(d->stamps);
    d->stamps = before;
    config_unref(old);
}

/* The first watched file whose content changed since the last stamps, or NULL. */
static const char *changed_watched(const struct daemon *d)
{
    struct config_stamp now;

    for (size_t i = 0; d->stamps && i < d->config->watch_files_count; i++) {
        config_stamp_file(d->config->watch_files[i], &now);
        if (!config_stamp_equal(&now, &d->stamps[i]))
            return d->config->watch_files[i];
    }
    return NULL;
}

static int wait_for_stop_signal(struct daemon *d, const sigset_t *set)
{
    const struct timespec interval = {.tv_sec = WATCH_INTERVAL_MS / 1000,
                                      .tv_nsec = (WATCH_INTERVAL_MS % 1000) * 1000000L};
    const char *changed;

    d->stamps = stamps_of(d->config);
    for (;;) {
        int signal_number = sigtimedwait(set, NULL, &interval);

        if (signal_number < 0) {
            if (errno == EAGAIN && (changed = changed_watched(d))) {
                log_info("file changed, reloading the configuration", "file", changed);
                reload_and_stamp(d);
            }
            continue;
        }
        if (signal_number == SIGHUP) {
            reload_and_stamp(d);
            continue;
        }
        return signal_number;
    }
}

static int handle_ready(void *server, int max)
{
    return server_handle_ready(server, max);
}

/* Watchdog: alive while neither a worker nor the loop (which also serves
 * gRPC with workers 0) is wedged. */
static bool daemon_alive(void *context)
{
    struct daemon *d = context;
    return server_stalled_ms(d->server) < WEDGED_AFTER_MS &&
           clock_now_ms() - loop_last_round_ms(d->loop) < WEDGED_AFTER_MS;
}

static void daemon_status(void *context, char *buf, size_t size)
{
    struct daemon *d = context;
    snprintf(buf, size, "serving: %ld calls answered, %ld in flight",
             server_calls_served(d->server), server_calls_in_flight(d->server));
}

static long read_calls_in_flight(const void *context)
{
    const struct daemon *d = context;
    return d->server ? server_calls_in_flight(d->server) : 0;
}

/* The listener's TLS material, or one warning when plaintext reaches beyond this machine.
 * Returns 0, or -errno with *reterr_msg. */
static int start_tls(struct daemon *d, char **reterr_msg)
{
    const struct tls_files_server files = tls_files_of(d->config);

    if (d->config->tls_cert_file)
        return server_tls_new(&files, &d->tls, reterr_msg);
    if (!config_listen_is_loopback(d->config->listen))
        log_warning("serving gRPC in plaintext on a non-loopback address: whoever can reach it can "
                    "create and cancel Databricks runs with this connector's token, and read the "
                    "traffic; set tls_cert_file and tls_key_file (--tls-cert, --tls-key) for TLS "
                    "and tls_client_ca_file (--tls-client-ca) to require client certificates",
                    "listen", d->config->listen);
    return 0;
}

/* Starts everything; on failure prints one line naming the cause. */
static int start(struct daemon *d)
{
    char *error = NULL;
    char port[16];
    int metrics_port = 0;
    int r = -1;

    d->metrics = metrics_new(FDC_VERSION);
    if (!d->metrics) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM_NAME);
        goto out;
    }
    if (strcmp(d->config->metrics_listen, "off") != 0) {
        if (metrics_http_start(d->metrics, d->config->metrics_listen, &d->metrics_http,
                               &metrics_port, &error) < 0) {
            fprintf(stderr, "%s: metrics: %s\n", PROGRAM_NAME, error ? error : "cannot start");
            goto out;
        }
    }

    d->http = http_new(MAX_HOST_CONNECTIONS, &error);
    if (d->http) {
        struct dbx_settings settings = dbx_settings_from(d->config, d->metrics);
        d->dbx = dbx_new(&settings, d->http, &error);
    }
    if (d->dbx)
        d->creds = creds_new(d->dbx, d->http, d->metrics, &error);
    /* Before the server: no handler may queue a request no thread serves. */
    if (d->creds)
        d->loop = loop_new(d->http, &error);
    if (!d->loop) {
        fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "cannot start");
        goto out;
    }
    d->current = config_current_new(d->config);
    if (d->current) {
        d->agent = agent_new(d->current, d->creds, d->metrics);
        d->task_logs = task_logs_new(d->current, d->creds, d->metrics);
    }
    d->health = health_new(served_services);
    if (!d->agent || !d->task_logs || !d->health) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM_NAME);
        goto out;
    }

    if (start_tls(d, &error) < 0) {
        fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "out of memory");
        goto out;
    }
    {
        /* Both generations' task services share the handlers; the context says whose. */
        struct agent_service *flyte1 = agent_service(d->agent, CONFIG_FLYTE_1);
        struct agent_service *flyte2 = agent_service(d->agent, CONFIG_FLYTE_2);
        const struct server_method methods[] = {
            {"/flyteidl.service.AsyncAgentService/CreateTask", agent_create_task, flyte1, false},
            {"/flyteidl.service.AsyncAgentService/GetTask", agent_get_task, flyte1, false},
            {"/flyteidl.service.AsyncAgentService/DeleteTask", agent_delete_task, flyte1, false},
            {"/flyteidl2.connector.AsyncConnectorService/CreateTask", agent_create_task, flyte2,
             false},
            {"/flyteidl2.connector.AsyncConnectorService/GetTask", agent_get_task, flyte2, false},
            {"/flyteidl2.connector.AsyncConnectorService/DeleteTask", agent_delete_task, flyte2,
             false},
            {"/flyteidl2.connector.AsyncConnectorService/GetTaskMetrics", task_metrics_get, NULL,
             false},
            {"/flyteidl2.connector.AsyncConnectorService/GetTaskLogs", task_logs_get_v2,
             d->task_logs, false},
            {"/flyteidl.service.AsyncAgentService/GetTaskLogs", task_logs_get_v1, d->task_logs,
             false},
            {"/flyteidl.service.AsyncAgentService/GetTaskMetrics", task_metrics_get, NULL, false},
            {"/flyteidl.service.AgentMetadataService/ListAgents", metadata_list_agents, NULL, true},
            {"/flyteidl.service.AgentMetadataService/GetAgent", metadata_get_agent, NULL, true},
            {"/flyteidl2.connector.ConnectorMetadataService/ListConnectors",
             metadata_list_connectors, NULL, true},
            {"/flyteidl2.connector.ConnectorMetadataService/GetConnector", metadata_get_connector,
             NULL, true},
            {"/grpc.health.v1.Health/Check", health_check, d->health, true},
        };
        d->server = server_new(d->config->listen, d->tls, d->config->workers,
                               d->config->max_calls_in_flight, methods,
                               sizeof(methods) / sizeof(methods[0]), &error);
        if (!d->server) {
            fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "cannot start server");
            goto out;
        }
    }
    if (server_poll_fd(d->server) >= 0) {
        /* workers 0: the loop serves gRPC too (loop.c says why). */
        const struct loop_source source = {
            .fd = server_poll_fd(d->server),
            .handle_ready = handle_ready,
            .ctx = d->server,
        };
        loop_attach_source(d->loop, &source);
    }
    metrics_calls_in_flight_reader(d->metrics, read_calls_in_flight, d);

    health_set_serving(d->health, true);
    snprintf(port, sizeof(port), "%d", server_port(d->server));
    if (d->metrics_http) {
        char metrics_port_text[16];
        snprintf(metrics_port_text, sizeof(metrics_port_text), "%d", metrics_port);
        log_info("metrics listening", "listen", d->config->metrics_listen, "port",
                 metrics_port_text);
    }
    log_info("serving", "listen", d->config->listen, "port", port, "version", FDC_VERSION,
             "default_instance", d->config->default_instance, "tls",
             !d->tls                         ? "off"
             : d->config->tls_client_ca_file ? "client certificates required"
                                             : "on");

    (void)notify_ready();
    {
        struct notify_watchdog_settings settings = {
            .alive = daemon_alive,
            .status = daemon_status,
            .ctx = d,
        };
        if (notify_watchdog_start(&settings, &d->watchdog) < 0)
            log_warning("cannot start the systemd watchdog thread");
    }
    r = 0;
out:
    free(error);
    return r;
}

static void stop(struct daemon *d)
{
    (void)notify_stopping();
    if (d->health)
        health_set_serving(d->health, false);
    if (d->server)
        server_shutdown(d->server, d->config->shutdown_grace_ms);
    d->watchdog = notify_watchdog_stop(d->watchdog);
    /* Stops the loop thread: requests still pending answer UNAVAILABLE. */
    loop_free(d->loop);
    creds_free(d->creds);
    dbx_free(d->dbx);
    http_free(d->http);
    server_free(d->server);
    d->tls = server_tls_free(d->tls);
    d->metrics_http = metrics_http_stop(d->metrics_http);
    agent_free(d->agent);
    task_logs_free(d->task_logs);
    d->current = config_current_free(d->current);
    health_free(d->health);
    d->metrics = metrics_free(d->metrics);
}

/* glibc gives each thread that allocates its own malloc arena, up to eight
 * per core. gRPC allocates a call's memory on one thread and frees it on
 * another, so every arena keeps its own high-water mark: with 5,000 calls in
 * flight the daemon peaked at 117 MB with the default and 98 MB with one
 * arena, and the no-op gRPC server of bench/ at 195 MB against 75 MB, with no
 * throughput change measurable at 64 calls in flight (docs/PERFORMANCE.md).
 * MALLOC_ARENA_MAX in the environment still wins, for operators who measure
 * otherwise. Called before any thread starts. */
static void limit_malloc_arenas(void)
{
    if (getenv("MALLOC_ARENA_MAX"))
        return;
    if (mallopt(M_ARENA_MAX, 1) != 1)
        log_debug("mallopt(M_ARENA_MAX) refused; keeping glibc's arenas");
}

/* Scrubs the environment variables config may read a secret from out of the process's
 * environment block: d->envp keeps them for reloads. */
static void scrub_environment(void)
{
    char **names = config_secret_env_names(environ);
    size_t n = 0;

    if (!names) {
        log_warning("out of memory: the environment keeps its secret variables");
        return;
    }
    while (names[n])
        n++;
    (void)hardening_env_scrub(environ, (const char *const *)names, n);
    config_strv_free(names);
}

int serve_main(int argc, char **argv)
{
    sigset_t signals;
    struct daemon d = {.argc = argc, .argv = argv};
    enum config_action action = CONFIG_ACTION_RUN;
    char **warnings = NULL;
    char *error = NULL, *hardening_error = NULL;
    int exit_code = EXIT_FAILURE;
    int signal_number;
    pthread_t second_signal;

    block_signals(&signals);
    /* Before any secret is read: a crash must not write one to a core file. */
    (void)hardening_no_core_dumps(&hardening_error);
    d.envp = hardening_env_copy(environ);
    if (!d.envp) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM_NAME);
        goto out;
    }

    if (config_load(argc, argv, d.envp, &d.config, &action, &warnings, &error) < 0) {
        /* One line per problem, each naming its cause; config_load says
         * "(see --help)" where the command line is at fault. */
        fprintf(stderr, "%s: %s\n", PROGRAM_NAME, error ? error : "invalid configuration");
        goto out;
    }
    switch (action) {
    case CONFIG_ACTION_HELP:
        config_usage(stdout, PROGRAM_NAME " serve");
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

    apply_log_settings(d.config);
    for (size_t i = 0; warnings && warnings[i]; i++)
        log_warning(warnings[i]);
    if (hardening_error)
        log_warning("cannot turn off core dumps; a crash could write secrets to a core file",
                    "error", hardening_error);
    scrub_environment();

    limit_malloc_arenas();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", PROGRAM_NAME);
        goto out;
    }
    gpr_set_log_function(grpc_log_bridge);
    grpc_init();

    if (start(&d) == 0) {
        signal_number = wait_for_stop_signal(&d, &signals);
        /* First of all, so probes and balancers stop sending work. */
        health_set_serving(d.health, false);
        log_info("stopping", "signal", strsignal(signal_number));
        if (pthread_create(&second_signal, NULL, second_signal_main, NULL) == 0)
            pthread_detach(second_signal);
        serve_on_while_not_serving(d.config->shutdown_delay_ms);
        exit_code = EXIT_SUCCESS;
    }
    stop(&d);
    grpc_shutdown();
    curl_global_cleanup();
    if (exit_code == EXIT_SUCCESS)
        log_info("stopped");
out:
    free(error);
    free(hardening_error);
    config_strv_free(warnings);
    free(d.stamps);
    config_unref(d.config);
    d.envp = hardening_env_free(d.envp);
    return exit_code;
}

/*
 * `check-config FILE [OPTIONS]`: loads FILE as `serve --config FILE` would,
 * with the environment and options, and prints the effective settings with
 * the secrets masked.
 */
int check_config_main(int argc, char **argv)
{
    struct config *config = NULL;
    enum config_action action;
    char **warnings = NULL, **args = NULL;
    char *error = NULL, *described = NULL;
    int exit_code = 2;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("Usage: %s check-config FILE [OPTIONS]\n\n"
                   "Loads FILE (and the environment and serve OPTIONS, as serve would),\n"
                   "prints the effective settings with the secrets masked, and exits 0 when\n"
                   "the configuration is valid, 1 when it is not, 2 on a usage error.\n",
                   PROGRAM_NAME);
            return 0;
        }
        fprintf(stderr, "%s check-config: missing FILE (see --help)\n", PROGRAM_NAME);
        return 2;
    }
    /* It reads the token as serve does. */
    (void)hardening_no_core_dumps(NULL);
    args = calloc((size_t)argc + 2, sizeof(*args));
    if (!args) {
        fprintf(stderr, "%s check-config: out of memory\n", PROGRAM_NAME);
        return 1;
    }
    args[0] = argv[0];
    args[1] = (char *)"--config";
    args[2] = argv[1];
    for (int i = 2; i < argc; i++)
        args[i + 1] = argv[i];
    if (config_load(argc + 1, args, environ, &config, &action, &warnings, &error) < 0) {
        fprintf(stderr, "%s check-config: %s\n", PROGRAM_NAME, error ? error : "invalid");
        exit_code = 1;
        goto out;
    }
    for (size_t i = 0; warnings && warnings[i]; i++)
        fprintf(stderr, "%s check-config: warning: %s\n", PROGRAM_NAME, warnings[i]);
    described = config_describe(config);
    if (described)
        fputs(described, stdout);
    printf("configuration OK\n");
    exit_code = 0;
out:
    free(described);
    free(error);
    free(args);
    config_strv_free(warnings);
    config_unref(config);
    return exit_code;
}
