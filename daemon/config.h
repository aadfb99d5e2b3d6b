/* config: the daemon's settings, from built-in defaults, the JSON config file, the environment
 * (FLYTE_DATABRICKS_*, flytekit's secret variables, DATABRICKS_CLIENT_*, KUBERNETES_SERVICE_*) and
 * the command-line flags, in that order of precedence.
 *
 * This module is the only code that reads the config file, the token and secret files, the
 * environment and the flags; other modules read secret files through config_read_secret(). The
 * environment comes in as an envp array (never getenv), so tests feed everything. It never logs:
 * problems come back as error text (all of them, newline-separated) and warnings for the caller to
 * log. No function here keeps state between calls; a struct config is immutable once config_load()
 * gives it, so any thread may read it. config_load() parses the flags with getopt_long(), whose
 * globals (optind, opterr) it resets: one thread at a time may call it. */
#ifndef FDC_CONFIG_H
#define FDC_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Indexed the same way as the level-name table in config.c. */
enum config_log_level {
    CONFIG_LOG_DEBUG,
    CONFIG_LOG_INFO,
    CONFIG_LOG_WARNING,
    CONFIG_LOG_ERROR,
    _CONFIG_LOG_MAX,
};

/* A Databricks service principal's credentials ("client_id" and "client_secret_file", globally
 * or in "instance_oauth"). */
struct config_oauth_client {
    char *instance;           /* normalized host[:port]; NULL for the global client */
    char *client_id;          /* NULL: no client */
    char *client_secret;      /* SECRET: never print or log it */
    char *client_secret_file; /* where client_secret came from; NULL: DATABRICKS_CLIENT_SECRET */
};

/* The two generations of Flyte's connector protocol, both served on the one gRPC port. */
enum config_generation {
    CONFIG_FLYTE_1, /* flyteidl.service.AsyncAgentService: flytepropeller, flytekit's tasks */
    CONFIG_FLYTE_2, /* flyteidl2.connector.AsyncConnectorService: the executor, flyte-sdk's tasks */
    _CONFIG_GENERATION_MAX,
};

/* What a Databricks run executes when its task names no git_source / python_file of its own:
 * the Flyte runtime's entrypoint script, from a public repository pinned to a commit. One row
 * per generation, in config.c (documented in config/README.md, "Entrypoints"). */
struct config_entrypoint {
    const char *git_url;
    const char *git_provider;
    const char *git_commit;
    const char *python_file;            /* classic compute: an existing or a new cluster */
    const char *serverless_python_file; /* NULL: the generation has no serverless entrypoint */
    bool fail_on_error_env;             /* the run's env gets FLYTE_FAIL_ON_ERROR=true */
};

/* Borrows the static row of `generation` (valid forever). Any thread. */
const struct config_entrypoint *config_entrypoint(enum config_generation generation);

/* Every string and array below is owned by the struct and freed with it (config_unref()). Instances
 * are stored normalized: lowercased, "https://" and trailing "/" removed, host [a-z0-9.-] with an
 * optional :port 1-65535 (the rule of resmeta's normalizer). */
struct config {
    char *config_file;        /* --config path, NULL when none was given */
    char *listen;             /* "HOST:PORT", IPv6 host in brackets; port 0 = any */
    int workers;              /* gRPC worker threads, 0..64; 0: the loop thread serves gRPC */
    char *default_instance;   /* NULL: every task must name its databricksInstance */
    char **allowed_instances; /* allowed_instances_count entries, "*" never stored */
    size_t allowed_instances_count;
    bool allow_any_instance; /* "*" was listed */
    char *token;             /* SECRET: never print or log it. NULL: no token */
    char *token_file;        /* the file the token came from; NULL if none or from env */
    char *
        token_place; /* where the token came from, for logs ("env NAME", "file PATH"); NULL: none */
    char *token_places; /* every place looked at for the token, in order, for a missing token */
    char **watch_files; /* files whose change reloads the configuration (token and client secret
                         * files, present or not); watch_files_count entries */
    size_t watch_files_count;
    char *ca_file; /* extra PEM bundle to trust for Databricks, NULL: none */
    enum config_log_level log_level;
    long connect_timeout_ms; /* 100..600000 */
    long request_timeout_ms; /* 100..600000, upper bound for one Databricks request */
    long max_response_bytes; /* 1024..268435456 */
    char *service_credential_provider;
    char *log_format;             /* "text" or "json" */
    char *metrics_listen;         /* "HOST:PORT" for /metrics, or "off" */
    long shutdown_delay_ms;       /* 0..600000: serving on, health NOT_SERVING, after SIGTERM */
    long shutdown_grace_ms;       /* 0..600000: time calls in flight get on SIGTERM */
    long instance_rate_limit_rps; /* default per-instance rate; 0: no limit */
    long instance_max_concurrent_requests; /* default per-instance concurrency; 0: no limit */
    struct config_instance_limit *instance_limits; /* instance_limits_count entries */
    size_t instance_limits_count;
    long max_calls_in_flight;   /* beyond: RESOURCE_EXHAUSTED at once; 0: no limit (restart-only) */
    long max_tracked_runs;      /* runs whose last status is remembered (restart-only) */
    long status_cache_ttl_ms;   /* answer polls of a running run from memory; 0: off */
    long terminal_cache_ttl_ms; /* same for finished runs; 0: off */
    /* Per-namespace tokens from the Kubernetes API (creds.c). */
    char *kubernetes_host; /* KUBERNETES_SERVICE_HOST; NULL: not running in a cluster */
    char *kubernetes_port; /* KUBERNETES_SERVICE_PORT, 1-65535; set when kubernetes_host is */
    char *kubernetes_service_account_dir; /* holds the pod's `token` and `ca.crt` */
    long namespace_token_ttl_ms;          /* how long a Secret read stays cached; 0: not cached */
    /* OAuth machine-to-machine: every instance without its own entry in instance_oauth. */
    struct config_oauth_client oauth;           /* client_id NULL: none */
    struct config_oauth_client *instance_oauth; /* instance_oauth_count entries */
    size_t instance_oauth_count;
    /* Flyte 1 answers: a failed run that Flyte may retry is RETRYABLE_FAILED (propeller 1.16.0
     * and later know it); false answers FAILED instead, for older propellers. */
    bool retryable_failed_phase;
    char *tls_cert_file;        /* gRPC listener's certificate chain; NULL: plaintext */
    char *tls_key_file;         /* its private key; set iff tls_cert_file is */
    char *tls_client_ca_file;   /* require client certificates from these CAs; NULL: not asked */
    char *idempotency_key_file; /* NULL: idempotency tokens are plain hashes */
    unsigned char *idempotency_key; /* SECRET: never print or log it. NULL: none */
    size_t idempotency_key_len;     /* bytes in idempotency_key, at least 32 when set */
    atomic_long references;         /* not a setting: see config_ref() */
};

/* Per-instance Databricks request limits ("instance_limits" in the file). */
struct config_instance_limit {
    char *instance;               /* normalized host[:port] */
    long rate_limit_rps;          /* requests a second; 0: the default (instance_rate_limit_rps) */
    long burst;                   /* bucket size; 0: as rate_limit_rps */
    long max_concurrent_requests; /* 0: the default (instance_max_concurrent_requests) */
};

enum config_action {
    CONFIG_ACTION_RUN,     /* start the daemon */
    CONFIG_ACTION_CHECK,   /* --check-config: the caller prints "configuration OK", exits 0 */
    CONFIG_ACTION_HELP,    /* --help: the caller prints config_usage() to stdout, exits 0 */
    CONFIG_ACTION_VERSION, /* --version: the caller prints the version, exits 0 */
    _CONFIG_ACTION_MAX,
};

/* Builds the effective configuration: defaults < config file (--config) < environment < flags,
 * then reads the default token from the first place that has one (a --token-file flag, then
 * flytekit's places: the variable _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN, the file
 * /etc/secrets/flyte_databricks_access_token, with FLYTE_SECRETS_ENV_PREFIX,
 * FLYTE_SECRETS_DEFAULT_DIR and FLYTE_SECRETS_FILE_PREFIX honoured; then
 * FLYTE_DATABRICKS_ACCESS_TOKEN, then the config file's token_file), the OAuth client secrets and
 * the idempotency key, and checks that ca_file and the listener's TLS files are usable
 * (tls_files_load_server()). argv borrows (argv[0] is the program name); envp borrows a
 * NULL-terminated "NAME=value" array (may be NULL). --help and --version win over everything else
 * and skip loading. On success returns 0 and gives *ret_config (free with config_unref()), sets
 * *ret_action and *ret_warnings (gives a NULL-terminated array, free with config_strv_free(), or
 * NULL when there are none). On failure returns -EINVAL (bad configuration) or -ENOMEM and gives
 * *reterr_msg (free()): every error found, one per line, naming the key, variable, flag or file.
 * Neither the messages nor the warnings ever contain the token. Main thread (or one thread at a
 * time): it uses getopt_long()'s global state. */
int config_load(int argc, char **argv, char **envp, struct config **ret_config,
                enum config_action *ret_action, char ***ret_warnings, char **reterr_msg);

/* Applies the text of a config file (a JSON object) onto cfg (borrows): keys present override
 * cfg's values, keys absent keep them. Unknown keys, wrong types, bad values and duplicate keys
 * are errors, all collected. Returns 0, or -EINVAL / -ENOMEM and gives *reterr_msg (free()); cfg
 * may then be partially updated and should be discarded. Reads no file (token_file and ca_file
 * are checked by config_load()). */
int config_parse_json(struct config *cfg, const char *text, char **reterr_msg);

/* True when listen ("HOST:PORT"; borrowed) names a loopback host (127.0.0.0/8, [::1],
 * localhost), which only this machine reaches. NULL gives false. */
bool config_listen_is_loopback(const char *listen);

/* Gives a config holding the built-in defaults, with one reference (the caller's: drop it with
 * config_unref()), NULL on OOM. */
struct config *config_new(void);

/*
 * A config is immutable once loaded and shared by reference count, so that a reload can replace
 * the one in force while calls that started under the old one finish with it: the old config is
 * freed when the last of them ends, not kept until exit. config_new() and config_load() give one
 * reference; whoever keeps a config beyond the call that lent it takes its own with config_ref()
 * (which returns cfg) and drops it with config_unref(). Any thread.
 */
const struct config *config_ref(const struct config *cfg);

/* Drops one reference to cfg (NULL is fine); the last one frees cfg and everything it owns.
 * Returns NULL. Any thread. */
struct config *config_unref(const struct config *cfg);

/* True when normalized_instance (borrows; lowercase host[:port], e.g. what resmeta normalizes) may
 * be used: it is the default instance, is listed, or "*" was listed. NULL gives false. */
bool config_instance_allowed(const struct config *cfg, const char *normalized_instance);

/* Writes the --help text to out: synopsis, every flag with the default and name of the key it
 * sets, the keys only the config file sets with their defaults, environment variables, exit
 * status; all of it from the flag, key and variable tables. program borrows, usually argv[0]. */
void config_usage(FILE *out, const char *program);

/* Gives "key = value" lines (free()) describing cfg's effective settings, for the check-config
 * command: config_file and token, then every key in the key table's (name) order. The token is
 * shown only as "(set, N bytes)" or "(unset)". NULL on OOM. */
char *config_describe(const struct config *cfg);

/* Borrows the name of the i-th config file key; the table is sorted by name. NULL past the end.
 * Lets tests and tools enumerate the keys without a copy of the table. */
const char *config_key_name(size_t i);

/* Borrows the name of the i-th command-line flag, without its "--", in --help order. NULL past
 * the end. Lets tests enumerate the flags without a copy of the table. */
const char *config_flag_name(size_t i);

/* The names of the environment variables config_load() may read a secret from
 * (FLYTE_DATABRICKS_ACCESS_TOKEN, DATABRICKS_CLIENT_SECRET, flytekit's variable with the prefix
 * envp (borrowed) sets): what the daemon scrubs from its environment once the configuration is
 * loaded (hardening_env_scrub()). Gives a NULL-terminated array (config_strv_free()), or NULL when
 * out of memory. */
char **config_secret_env_names(char **envp);

/* Frees a NULL-terminated string array (takes; NULL is fine). */
void config_strv_free(char **v);

/* Frees a limits table (NULL-safe). */
void config_instance_limits_free(struct config_instance_limit *limits, size_t count);

/* The OAuth client for normalized_instance (borrows): its instance_oauth entry, else the global
 * client; NULL when neither is configured. Borrowed from cfg. */
const struct config_oauth_client *config_oauth_client(const struct config *cfg,
                                                      const char *normalized_instance);

/* What identifies a file's content without reading it: Kubernetes replaces a mounted Secret by
 * swapping a symbolic link, so the inode changes even when the size and time do not. */
struct config_stamp {
    bool exists;
    unsigned long long dev, ino, size;
    long long mtime_sec, mtime_nsec;
};

/* Stamps path (borrows), following symbolic links; a path that cannot be stat()ed stamps as
 * absent. Any thread. */
void config_stamp_file(const char *path, struct config_stamp *ret);

/* True when both stamps describe the same file content. */
bool config_stamp_equal(const struct config_stamp *a, const struct config_stamp *b);

/* Reads a secret from the regular file path (borrows; at most 64 KiB), trimmed of surrounding
 * whitespace and checked to be visible ASCII an HTTP header can carry. `what` names the file in
 * messages ("service account token"). Gives *ret_secret (zero with explicit_bzero before free())
 * or returns -errno and gives *reterr_msg (free(); never containing the secret). Any thread. */
int config_read_secret(const char *path, const char *what, char **ret_secret, char **reterr_msg);

#endif /* FDC_CONFIG_H */
