/* config: builds the daemon's immutable settings from defaults < config file < environment < flags.
 *
 * The only code that knows the config file's keys, the FLYTE_DATABRICKS_* variables and the flags.
 * Each layer goes through the same per-key setters, so a value is validated the same way whether it
 * comes from JSON, a variable or a flag; only the origin named in the message differs. Errors are
 * collected, not returned at the first one (OpenBSD httpd's parse.y counts errors the same way), so
 * one run shows every mistake. It reads the config file, the token file and probes ca_file; it
 * never logs and never calls getenv (the environment arrives as an envp array). No static mutable
 * state of its own, but config_load() drives getopt_long(), whose position is global: one thread
 * at a time may call it (the daemon's main thread, at start-up and on SIGHUP); anything else, any
 * thread. The token is never written into a message. */
#include "config.h"
#include "errmsg.h"
#include "resmeta.h"
#include "secret.h"
#include "structjson.h"
#include "tls_files.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define DEFAULT_LISTEN "0.0.0.0:8000"
#define DEFAULT_WORKERS 0
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_REQUEST_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RESPONSE_BYTES 4194304L
#define DEFAULT_METRICS_LISTEN "0.0.0.0:9090"
#define DEFAULT_LOG_FORMAT "text"
#define DEFAULT_SHUTDOWN_GRACE_MS 10000L
#define DEFAULT_MAX_TRACKED_RUNS 20000L
#define DEFAULT_MAX_CALLS_IN_FLIGHT 10000L
#define DEFAULT_INSTANCE_MAX_CONCURRENT_REQUESTS 256L
/* client-go's in-cluster configuration reads the pod's token and CA from here. */
#define DEFAULT_KUBERNETES_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define DEFAULT_NAMESPACE_TOKEN_TTL_MS 60000L

/* A config file is a few hundred bytes; a token a few KiB at most (OAuth JWTs included). Larger
 * input is a wrong path, not a config, and is refused before it is read into memory. */
#define CONFIG_FILE_MAX (1024 * 1024)
#define TOKEN_FILE_MAX (64 * 1024)
/* An HMAC key: `openssl rand -hex 32` writes 64 characters; fewer than 32 is too weak a key. */
#define IDEMPOTENCY_KEY_MIN 32
#define IDEMPOTENCY_KEY_MAX 4096

#define ENV_TOKEN "FLYTE_DATABRICKS_ACCESS_TOKEN"
/* Databricks' own tools (SDKs, CLI, Terraform) name a service principal with these. */
#define ENV_CLIENT_ID "DATABRICKS_CLIENT_ID"
#define ENV_CLIENT_SECRET "DATABRICKS_CLIENT_SECRET"
#define ENV_K8S_HOST "KUBERNETES_SERVICE_HOST"
#define ENV_K8S_PORT "KUBERNETES_SERVICE_PORT"
/* flytekit's secrets manager (flytekit/core/context_manager.py SecretsManager, defaults from
 * flytekit/configuration): a secret without a group is the variable ENV_PREFIX + KEY, else the
 * file DEFAULT_DIR/FILE_PREFIX + key in lower case. */
#define ENV_SECRETS_ENV_PREFIX "FLYTE_SECRETS_ENV_PREFIX"
#define ENV_SECRETS_DEFAULT_DIR "FLYTE_SECRETS_DEFAULT_DIR"
#define ENV_SECRETS_FILE_PREFIX "FLYTE_SECRETS_FILE_PREFIX"
#define FLYTEKIT_ENV_PREFIX "_FSEC_"
#define FLYTEKIT_DEFAULT_DIR "/etc/secrets"
#define FLYTEKIT_TOKEN_FILE "flyte_databricks_access_token"

/* ---- entrypoints ---- */

/* The one place both generations' defaults live (config/README.md, "Entrypoints"). Flyte 1 is
 * flytekit's connector (plugins/flytekit-spark/flytekitplugins/spark/connector.py), Flyte 2
 * flyte-sdk's (plugins/databricks/src/flyteplugins/databricks/connector.py): the same
 * flytetools repository, each pinned to the commit its connector submits. flyte-sdk has no
 * serverless path and its runtime does not read FLYTE_FAIL_ON_ERROR. */
static const struct config_entrypoint entrypoints[_CONFIG_GENERATION_MAX] = {
    [CONFIG_FLYTE_1] =
        {
            .git_url = "https://github.com/flyteorg/flytetools",
            .git_provider = "gitHub",
            .git_commit = "572298df1f971fb58c258398bd70a6372f811c96",
            .python_file = "flytekitplugins/databricks/entrypoint.py",
            .serverless_python_file = "flytekitplugins/databricks/entrypoint_serverless.py",
            .fail_on_error_env = true,
        },
    [CONFIG_FLYTE_2] =
        {
            .git_url = "https://github.com/flyteorg/flytetools",
            .git_provider = "gitHub",
            .git_commit = "194364210c47c49ce66c419e8fb68d6f9c06fd7e",
            .python_file = "flyteplugins/databricks/entrypoint.py",
            .serverless_python_file = NULL,
            .fail_on_error_env = false,
        },
};

const struct config_entrypoint *config_entrypoint(enum config_generation generation)
{
    return &entrypoints[generation];
}

/* ---- message collection ---- */

struct msgs {
    char **v; /* NULL-terminated once non-empty */
    size_t n;
    size_t cap;
    bool oom;
};

static void msgs_add(struct msgs *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void msgs_add(struct msgs *m, const char *fmt, ...)
{
    char *s;
    va_list ap;

    va_start(ap, fmt);
    s = errmsg_vformat(fmt, ap);
    va_end(ap);
    if (!s) {
        m->oom = true;
        return;
    }
    if (m->n + 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        char **v = realloc(m->v, cap * sizeof(*v));

        if (!v) {
            free(s);
            m->oom = true;
            return;
        }
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = s;
    m->v[m->n] = NULL;
}

static void msgs_done(struct msgs *m)
{
    config_strv_free(m->v);
    *m = (struct msgs){0};
}

/* Gives the messages joined by newlines, NULL on OOM. */
static char *msgs_join(const struct msgs *m)
{
    size_t len = 0;
    char *out, *p;

    for (size_t i = 0; i < m->n; i++)
        len += strlen(m->v[i]) + 1;
    out = malloc(len + 1);
    if (!out)
        return NULL;
    p = out;
    for (size_t i = 0; i < m->n; i++) {
        size_t l = strlen(m->v[i]);

        if (i > 0)
            *p++ = '\n';
        memcpy(p, m->v[i], l);
        p += l;
    }
    *p = '\0';
    return out;
}

/* User text goes into messages quoted, escaped and shortened, so a stray newline or a pasted
 * megabyte cannot forge or flood a log line. */
#define QUOTE_MAX 160
static const char *quote(char buf[static QUOTE_MAX], const char *s)
{
    buf[0] = '"';
    errmsg_printable(buf + 1, QUOTE_MAX - 2, s, ERRMSG_QUOTED);
    strcat(buf, "\"");
    return buf;
}

/* ---- value checks (shared by every layer) ---- */

/* A check gives the stored form of a value in *ret_out, or returns -EINVAL with a reason. */
typedef int (*check_fn)(const char *in, char **ret_out, const char **ret_reason);

static bool parse_port(const char *s, long min, long *ret_port)
{
    long v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > 65535)
        return false;
    *ret_port = v;
    return true;
}

static int check_listen(const char *in, char **ret_out, const char **ret_reason)
{
    static const char reason[] = "expected HOST:PORT (an IPv6 host in brackets), port 0-65535";
    const char *colon;
    long port;
    char *out;

    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        char addr[INET6_ADDRSTRLEN + 16];
        struct in6_addr a6;
        size_t len;

        if (!close || close[1] != ':')
            goto bad;
        len = (size_t)(close - in - 1);
        if (len == 0 || len >= sizeof(addr))
            goto bad;
        memcpy(addr, in + 1, len);
        addr[len] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            goto bad;
        colon = close + 1;
    } else {
        colon = strrchr(in, ':');
        if (!colon || colon == in)
            goto bad;
        for (const char *p = in; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
                goto bad;
    }
    if (!parse_port(colon + 1, 0, &port))
        goto bad;
    out = strdup(in);
    if (!out)
        return -ENOMEM;
    *ret_out = out;
    return 0;
bad:
    *ret_reason = reason;
    return -EINVAL;
}

/* Stored form of a Databricks instance: the rule of resmeta_normalize_instance() (lowercase host
 * name plus optional :PORT, "https://" and a trailing "/" removed), so configured instances and the
 * ones tasks name compare equal. */
static int normalize_instance(const char *in, char **ret_out, const char **ret_reason)
{
    static const char reason[] =
        "expected a Databricks host name [a-z0-9.-] with an optional :PORT (1-65535), "
        "optionally prefixed by https://";
    char *error = NULL;
    int r = resmeta_normalize_instance(in, ret_out, &error);

    free(error);
    if (r == -EINVAL)
        *ret_reason = reason;
    return r;
}

static int check_nonempty(const char *in, char **ret_out, const char **ret_reason)
{
    char *out;

    if (in[0] == '\0') {
        *ret_reason = "must not be empty";
        return -EINVAL;
    }
    out = strdup(in);
    if (!out)
        return -ENOMEM;
    *ret_out = out;
    return 0;
}

static int check_log_format(const char *in, char **ret_out, const char **ret_reason)
{
    char *out;

    if (strcmp(in, "text") != 0 && strcmp(in, "json") != 0) {
        *ret_reason = "expected text or json";
        return -EINVAL;
    }
    out = strdup(in);
    if (!out)
        return -ENOMEM;
    *ret_out = out;
    return 0;
}

/* HOST:PORT like listen, or "off" to serve no metrics. */
static int check_metrics_listen(const char *in, char **ret_out, const char **ret_reason)
{
    char *out;

    if (strcmp(in, "off") != 0)
        return check_listen(in, ret_out, ret_reason);
    out = strdup(in);
    if (!out)
        return -ENOMEM;
    *ret_out = out;
    return 0;
}

/* An OAuth client id goes into an HTTP Basic user-id, where a ':' would end it early (RFC 7617). */
static int check_client_id(const char *in, char **ret_out, const char **ret_reason)
{
    size_t n = strlen(in);
    char *out;

    if (n == 0 || n > 256) {
        *ret_reason = "expected 1 to 256 characters";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)in[i] <= 0x20 || (unsigned char)in[i] >= 0x7f || in[i] == ':') {
            *ret_reason = "expected visible ASCII characters other than ':'";
            return -EINVAL;
        }
    }
    out = strdup(in);
    if (!out)
        return -ENOMEM;
    *ret_out = out;
    return 0;
}

/* Indexed by enum config_log_level. */
static const char *const log_level_names[_CONFIG_LOG_MAX] = {
    [CONFIG_LOG_DEBUG] = "debug",
    [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_WARNING] = "warning",
    [CONFIG_LOG_ERROR] = "error",
};

/* ---- the key table ---- */

enum key_kind {
    KIND_STRING,          /* char * at offset, through check */
    KIND_INT,             /* int at offset, min..max */
    KIND_LONG,            /* long at offset, min..max */
    KIND_LOG_LEVEL,       /* enum config_log_level at offset */
    KIND_BOOL,            /* bool at offset: JSON true or false, text "true" or "false" */
    KIND_INSTANCES,       /* allowed_instances + count + allow_any_instance */
    KIND_INSTANCE_LIMITS, /* instance_limits + count; config file only */
    KIND_INSTANCE_OAUTH,  /* instance_oauth + count; config file only */
};

struct key {
    const char *name;
    enum key_kind kind;
    size_t offset;
    bool nullable; /* JSON null resets the setting to "none" */
    long min, max;
    check_fn check;
    const char *zero; /* what 0 means, for --help when it is the default; NULL: nothing special */
};

/* Sorted by name (strcmp order): looked up with bsearch, and test_config checks the order. */
static const struct key keys[] = {
    {.name = "allowed_instances",
     .kind = KIND_INSTANCES,
     .offset = offsetof(struct config, allowed_instances)},
    {.name = "ca_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, ca_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "client_id",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, oauth.client_id),
     .nullable = true,
     .check = check_client_id},
    {.name = "client_secret_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, oauth.client_secret_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "connect_timeout_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, connect_timeout_ms),
     .min = 100,
     .max = 600000},
    {.name = "default_instance",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, default_instance),
     .nullable = true,
     .check = normalize_instance},
    {.name = "idempotency_key_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, idempotency_key_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "instance_limits",
     .kind = KIND_INSTANCE_LIMITS,
     .offset = offsetof(struct config, instance_limits)},
    {.name = "instance_max_concurrent_requests",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, instance_max_concurrent_requests),
     .min = 0,
     .max = 100000},
    {.name = "instance_oauth",
     .kind = KIND_INSTANCE_OAUTH,
     .offset = offsetof(struct config, instance_oauth)},
    {.name = "instance_rate_limit_rps",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, instance_rate_limit_rps),
     .min = 0,
     .max = 100000,
     .zero = "no limit"},
    {.name = "kubernetes_service_account_dir",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, kubernetes_service_account_dir),
     .check = check_nonempty},
    {.name = "listen",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, listen),
     .check = check_listen},
    {.name = "log_format",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, log_format),
     .check = check_log_format},
    {.name = "log_level", .kind = KIND_LOG_LEVEL, .offset = offsetof(struct config, log_level)},
    {.name = "max_calls_in_flight",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, max_calls_in_flight),
     .min = 0,
     .max = 1000000},
    {.name = "max_response_bytes",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, max_response_bytes),
     .min = 1024,
     .max = 268435456},
    {.name = "max_tracked_runs",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, max_tracked_runs),
     .min = 1,
     .max = 10000000},
    {.name = "metrics_listen",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, metrics_listen),
     .check = check_metrics_listen},
    {.name = "namespace_token_ttl_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, namespace_token_ttl_ms),
     .min = 0,
     .max = 86400000,
     .zero = "not cached"},
    {.name = "request_timeout_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, request_timeout_ms),
     .min = 100,
     .max = 600000},
    {.name = "retryable_failed_phase",
     .kind = KIND_BOOL,
     .offset = offsetof(struct config, retryable_failed_phase)},
    {.name = "service_credential_provider",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, service_credential_provider),
     .nullable = true,
     .check = check_nonempty},
    {.name = "shutdown_delay_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, shutdown_delay_ms),
     .min = 0,
     .max = 600000},
    {.name = "shutdown_grace_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, shutdown_grace_ms),
     .min = 0,
     .max = 600000},
    {.name = "status_cache_ttl_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, status_cache_ttl_ms),
     .min = 0,
     .max = 3600000,
     .zero = "off"},
    {.name = "terminal_cache_ttl_ms",
     .kind = KIND_LONG,
     .offset = offsetof(struct config, terminal_cache_ttl_ms),
     .min = 0,
     .max = 86400000,
     .zero = "off"},
    {.name = "tls_cert_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, tls_cert_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "tls_client_ca_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, tls_client_ca_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "tls_key_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, tls_key_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "token_file",
     .kind = KIND_STRING,
     .offset = offsetof(struct config, token_file),
     .nullable = true,
     .check = check_nonempty},
    {.name = "workers",
     .kind = KIND_INT,
     .offset = offsetof(struct config, workers),
     .min = 0,
     .max = 64},
};

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static int key_cmp(const void *name, const void *k)
{
    return strcmp(name, ((const struct key *)k)->name);
}

static const struct key *key_find(const char *name)
{
    return bsearch(name, keys, ELEMENTSOF(keys), sizeof(keys[0]), key_cmp);
}

const char *config_key_name(size_t i)
{
    return i < ELEMENTSOF(keys) ? keys[i].name : NULL;
}

/* ---- setters: one per kind, used by every layer; origin names the source in messages ---- */

static void set_string(struct config *cfg, const struct key *k, const char *value,
                       const char *origin, struct msgs *errs)
{
    char **field = (char **)((char *)cfg + k->offset);
    const char *reason = NULL;
    char *out = NULL;
    char q[QUOTE_MAX];
    int r;

    if (!value) {
        free(*field);
        *field = NULL;
        return;
    }
    r = k->check(value, &out, &reason);
    if (r == -ENOMEM) {
        errs->oom = true;
        return;
    }
    if (r < 0) {
        msgs_add(errs, "%s: invalid value %s: %s", origin, quote(q, value), reason);
        return;
    }
    free(*field);
    *field = out;
}

static void set_log_level(struct config *cfg, const struct key *k, const char *value,
                          const char *origin, struct msgs *errs)
{
    char q[QUOTE_MAX];

    for (size_t i = 0; i < _CONFIG_LOG_MAX; i++) {
        if (strcmp(value, log_level_names[i]) == 0) {
            *(enum config_log_level *)((char *)cfg + k->offset) = (enum config_log_level)i;
            return;
        }
    }
    msgs_add(errs, "%s: invalid value %s: expected one of debug, info, warning, error", origin,
             quote(q, value));
}

/* text is the number as written, for the message. */
static void set_number(struct config *cfg, const struct key *k, double v, const char *text,
                       const char *origin, struct msgs *errs)
{
    if (!(v >= (double)k->min && v <= (double)k->max)) {
        msgs_add(errs, "%s: %s is out of range %ld..%ld", origin, text, k->min, k->max);
        return;
    }
    if ((double)(long)v != v) {
        msgs_add(errs, "%s: expected an integer, got %s", origin, text);
        return;
    }
    if (k->kind == KIND_INT)
        *(int *)((char *)cfg + k->offset) = (int)v;
    else
        *(long *)((char *)cfg + k->offset) = (long)v;
}

/* Replaces the whole list: a layer that sets allowed instances says the complete list. */
static void set_instances(struct config *cfg, const char *const *values, size_t n,
                          const char *const *origins, struct msgs *errs)
{
    char **list = NULL;
    size_t count = 0;
    bool any = false;

    list = calloc(n + 1, sizeof(*list));
    if (!list) {
        errs->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *reason = NULL;
        char q[QUOTE_MAX];
        int r;

        if (strcmp(values[i], "*") == 0) {
            any = true;
            continue;
        }
        r = normalize_instance(values[i], &list[count], &reason);
        if (r == -ENOMEM)
            errs->oom = true;
        else if (r < 0)
            msgs_add(errs, "%s: invalid value %s: %s", origins[i], quote(q, values[i]), reason);
        else
            count++;
    }
    config_strv_free(cfg->allowed_instances);
    cfg->allowed_instances = list;
    cfg->allowed_instances_count = count;
    cfg->allow_any_instance = any;
}

/* Text from a variable or a flag. */
static void set_from_text(struct config *cfg, const struct key *k, const char *text,
                          const char *origin, struct msgs *errs)
{
    char q[QUOTE_MAX];
    char *end;
    long v;

    switch (k->kind) {
    case KIND_STRING:
        set_string(cfg, k, text, origin, errs);
        break;
    case KIND_LOG_LEVEL:
        set_log_level(cfg, k, text, origin, errs);
        break;
    case KIND_INT:
    case KIND_LONG:
        errno = 0;
        v = strtol(text, &end, 10);
        if (!(isdigit((unsigned char)text[0]) || text[0] == '-') || *end != '\0' || errno) {
            msgs_add(errs, "%s: %s is not an integer", origin, quote(q, text));
            break;
        }
        set_number(cfg, k, (double)v, text, origin, errs);
        break;
    case KIND_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            *(bool *)((char *)cfg + k->offset) = text[0] == 't';
        else
            msgs_add(errs, "%s: invalid value %s: expected true or false", origin, quote(q, text));
        break;
    case KIND_INSTANCES:
        set_instances(cfg, &text, 1, &origin, errs);
        break;
    case KIND_INSTANCE_LIMITS:
    case KIND_INSTANCE_OAUTH:
        msgs_add(errs, "%s: only the config file can set this", origin);
        break;
    }
}

/* ---- the config file layer ---- */

static void apply_json_instances(struct config *cfg, const cJSON *item, const char *where,
                                 struct msgs *errs)
{
    const char **values = NULL, **origins = NULL;
    char **owned = NULL;
    size_t n = 0, idx = 0, total;
    const cJSON *e;

    total = (size_t)cJSON_GetArraySize(item);
    values = calloc(total + 1, sizeof(*values));
    origins = calloc(total + 1, sizeof(*origins));
    owned = calloc(total + 1, sizeof(*owned));
    if (!values || !origins || !owned) {
        errs->oom = true;
        goto out;
    }
    cJSON_ArrayForEach(e, item)
    {
        char *origin = NULL;

        if (asprintf(&origin, "%skey \"allowed_instances[%zu]\"", where, idx) < 0) {
            errs->oom = true;
            goto out;
        }
        owned[idx++] = origin;
        if (!cJSON_IsString(e)) {
            msgs_add(errs, "%s: expected a string, got %s", origin, structjson_type_name(e));
            continue;
        }
        values[n] = e->valuestring;
        origins[n] = origin;
        n++;
    }
    set_instances(cfg, values, n, origins, errs);
out:
    config_strv_free(owned);
    free(values);
    free(origins);
}

void config_instance_limits_free(struct config_instance_limit *limits, size_t count)
{
    for (size_t i = 0; limits && i < count; i++)
        free(limits[i].instance);
    free(limits);
}

/* One instance's limits object: {"rate_limit_rps": N, "burst": N, "max_concurrent_requests": N}. */
static void apply_json_one_limit(struct config_instance_limit *limit, const cJSON *object,
                                 const char *origin, struct msgs *errs)
{
    static const struct {
        const char *name;
        size_t offset;
        long max;
    } fields[] = {
        {"burst", offsetof(struct config_instance_limit, burst), 100000},
        {"max_concurrent_requests", offsetof(struct config_instance_limit, max_concurrent_requests),
         100000},
        {"rate_limit_rps", offsetof(struct config_instance_limit, rate_limit_rps), 100000},
    };
    const cJSON *item;

    if (!cJSON_IsObject(object)) {
        msgs_add(errs, "%s: expected an object, got %s", origin, structjson_type_name(object));
        return;
    }
    cJSON_ArrayForEach(item, object)
    {
        size_t i;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (strcmp(fields[i].name, item->string) == 0)
                break;
        if (i == sizeof(fields) / sizeof(fields[0])) {
            msgs_add(errs,
                     "%s: unknown key \"%s\" (expected rate_limit_rps, burst, "
                     "max_concurrent_requests)",
                     origin, item->string);
            continue;
        }
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > fields[i].max ||
            item->valuedouble != (double)(long)item->valuedouble) {
            msgs_add(errs, "%s: \"%s\" must be an integer from 0 to %ld", origin, item->string,
                     fields[i].max);
            continue;
        }
        *(long *)((char *)limit + fields[i].offset) = (long)item->valuedouble;
    }
}

/* Fills `entry` (a zeroed table element) from one "HOST[:PORT]": value member of an
 * instance-keyed object, the instance normalized (taken), `where` naming the member in
 * messages. */
typedef void (*instance_entry_fn)(void *entry, char *instance, const cJSON *value,
                                  const char *where, struct msgs *errs);

/*
 * Reads an instance-keyed object ("instance_limits", "instance_oauth") into a new table of
 * `size`-byte elements, one per member whose instance is valid. Gives the table (free with the
 * table's own function) and its count; false (after an error) when `object` is not an object
 * or memory ran out.
 */
static bool instance_table(const cJSON *object, const char *origin, struct msgs *errs, size_t size,
                           instance_entry_fn fill, void **ret_table, size_t *ret_count)
{
    const cJSON *item;
    size_t n = 0, count = 0;
    char *table;

    if (!cJSON_IsObject(object)) {
        msgs_add(errs, "%s: expected an object, got %s", origin, structjson_type_name(object));
        return false;
    }
    cJSON_ArrayForEach(item, object) n++;
    table = calloc(n + 1, size);
    if (!table) {
        errs->oom = true;
        return false;
    }
    cJSON_ArrayForEach(item, object)
    {
        const char *reason = NULL;
        char *where = NULL, *instance = NULL;
        char q[QUOTE_MAX];
        int r;

        if (asprintf(&where, "%s[\"%s\"]", origin, item->string) < 0) {
            errs->oom = true;
            break;
        }
        r = normalize_instance(item->string, &instance, &reason);
        if (r == -ENOMEM)
            errs->oom = true;
        else if (r < 0)
            msgs_add(errs, "%s: invalid instance %s: %s", origin, quote(q, item->string), reason);
        else
            fill(table + size * count++, instance, item, where, errs);
        free(where);
    }
    *ret_table = table;
    *ret_count = count;
    return true;
}

static void fill_instance_limit(void *entry, char *instance, const cJSON *value, const char *where,
                                struct msgs *errs)
{
    struct config_instance_limit *limit = entry;

    limit->instance = instance;
    apply_json_one_limit(limit, value, where, errs);
}

/* "instance_limits": {"HOST[:PORT]": {...}, ...}; replaces the whole table. */
static void apply_json_instance_limits(struct config *cfg, const cJSON *object, const char *origin,
                                       struct msgs *errs)
{
    void *table;
    size_t count;

    if (!instance_table(object, origin, errs, sizeof(struct config_instance_limit),
                        fill_instance_limit, &table, &count))
        return;
    config_instance_limits_free(cfg->instance_limits, cfg->instance_limits_count);
    cfg->instance_limits = table;
    cfg->instance_limits_count = count;
}

static void oauth_client_done(struct config_oauth_client *c)
{
    free(c->instance);
    free(c->client_id);
    secret_free(c->client_secret);
    free(c->client_secret_file);
    *c = (struct config_oauth_client){0};
}

static void oauth_clients_free(struct config_oauth_client *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        oauth_client_done(&v[i]);
    free(v);
}

/* One instance's client: {"client_id": "...", "client_secret_file": "..."}, both required. */
static void fill_instance_oauth(void *entry, char *instance, const cJSON *value, const char *where,
                                struct msgs *errs)
{
    static const struct {
        const char *name;
        size_t offset;
        check_fn check;
    } fields[] = {
        {"client_id", offsetof(struct config_oauth_client, client_id), check_client_id},
        {"client_secret_file", offsetof(struct config_oauth_client, client_secret_file),
         check_nonempty},
    };
    struct config_oauth_client *c = entry;
    const cJSON *item;
    char q[QUOTE_MAX];

    c->instance = instance;
    if (!cJSON_IsObject(value)) {
        msgs_add(errs, "%s: expected an object, got %s", where, structjson_type_name(value));
        return;
    }
    cJSON_ArrayForEach(item, value)
    {
        size_t i;
        const char *reason = NULL;
        char **field;
        int r;

        for (i = 0; i < ELEMENTSOF(fields); i++)
            if (strcmp(fields[i].name, item->string) == 0)
                break;
        if (i == ELEMENTSOF(fields)) {
            msgs_add(errs, "%s: unknown key %s (expected client_id, client_secret_file)", where,
                     quote(q, item->string));
            continue;
        }
        if (!cJSON_IsString(item)) {
            msgs_add(errs, "%s: \"%s\" must be a string, got %s", where, item->string,
                     structjson_type_name(item));
            continue;
        }
        field = (char **)((char *)c + fields[i].offset);
        free(*field);
        *field = NULL;
        r = fields[i].check(item->valuestring, field, &reason);
        if (r == -ENOMEM)
            errs->oom = true;
        else if (r < 0)
            msgs_add(errs, "%s: \"%s\": invalid value %s: %s", where, item->string,
                     quote(q, item->valuestring), reason);
    }
    if (!c->client_id || !c->client_secret_file)
        msgs_add(errs, "%s: needs both client_id and client_secret_file", where);
}

/* "instance_oauth": {"HOST[:PORT]": {...}, ...}; replaces the whole table. */
static void apply_json_instance_oauth(struct config *cfg, const cJSON *object, const char *origin,
                                      struct msgs *errs)
{
    void *table;
    size_t count;

    if (!instance_table(object, origin, errs, sizeof(struct config_oauth_client),
                        fill_instance_oauth, &table, &count))
        return;
    oauth_clients_free(cfg->instance_oauth, cfg->instance_oauth_count);
    cfg->instance_oauth = table;
    cfg->instance_oauth_count = count;
}

static void apply_json_key(struct config *cfg, const struct key *k, const cJSON *item,
                           const char *where, struct msgs *errs)
{
    char *origin = NULL;
    char num[64];

    if (asprintf(&origin, "%skey \"%s\"", where, k->name) < 0) {
        errs->oom = true;
        return;
    }
    switch (k->kind) {
    case KIND_STRING:
    case KIND_LOG_LEVEL:
        if (cJSON_IsNull(item) && k->nullable)
            set_string(cfg, k, NULL, origin, errs);
        else if (!cJSON_IsString(item))
            msgs_add(errs, "%s: expected a string%s, got %s", origin, k->nullable ? " or null" : "",
                     structjson_type_name(item));
        else if (k->kind == KIND_STRING)
            set_string(cfg, k, item->valuestring, origin, errs);
        else
            set_log_level(cfg, k, item->valuestring, origin, errs);
        break;
    case KIND_INT:
    case KIND_LONG:
        if (!cJSON_IsNumber(item)) {
            msgs_add(errs, "%s: expected an integer, got %s", origin, structjson_type_name(item));
            break;
        }
        snprintf(num, sizeof(num), "%.15g", item->valuedouble);
        set_number(cfg, k, item->valuedouble, num, origin, errs);
        break;
    case KIND_BOOL:
        if (cJSON_IsBool(item))
            *(bool *)((char *)cfg + k->offset) = cJSON_IsTrue(item);
        else
            msgs_add(errs, "%s: expected true or false, got %s", origin,
                     structjson_type_name(item));
        break;
    case KIND_INSTANCES:
        if (!cJSON_IsArray(item)) {
            msgs_add(errs, "%s: expected an array of strings, got %s", origin,
                     structjson_type_name(item));
            break;
        }
        apply_json_instances(cfg, item, where, errs);
        break;
    case KIND_INSTANCE_LIMITS:
        apply_json_instance_limits(cfg, item, origin, errs);
        break;
    case KIND_INSTANCE_OAUTH:
        apply_json_instance_oauth(cfg, item, origin, errs);
        break;
    }
    free(origin);
}

/* path names the file in every message, NULL for none. */
static void apply_json_text(struct config *cfg, const char *text, const char *path,
                            struct msgs *errs)
{
    const char *end = NULL;
    cJSON *root = NULL;
    const cJSON *item;
    char *where = NULL;

    if (asprintf(&where, "%s%s", path ? path : "", path ? ": " : "") < 0) {
        errs->oom = true;
        return;
    }

    /* return_parse_end rather than cJSON_GetErrorPtr(): the latter is a global, and a SIGHUP
     * reload may parse while another thread does. */
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t off = end ? (size_t)(end - text) : 0;
        size_t line = 1, col = 1;

        for (size_t i = 0; i < off && text[i]; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        /* Only the position: the text may be a token file given to --config by mistake. */
        msgs_add(errs, "%s%s%zu:%zu: JSON syntax error", path ? path : "", path ? ":" : "", line,
                 col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        msgs_add(errs, "%sexpected a JSON object at the top level, got %s", where,
                 structjson_type_name(root));
        goto out;
    }
    cJSON_ArrayForEach(item, root)
    {
        const struct key *k = key_find(item->string);
        char q[QUOTE_MAX];
        bool dup = false;

        for (const cJSON *prev = root->child; prev != item; prev = prev->next)
            if (strcmp(prev->string, item->string) == 0)
                dup = true;
        if (dup)
            msgs_add(errs, "%sduplicate key %s", where, quote(q, item->string));
        else if (!k)
            msgs_add(errs, "%sunknown key %s", where, quote(q, item->string));
        else
            apply_json_key(cfg, k, item, where, errs);
    }
out:
    cJSON_Delete(root);
    free(where);
}

static int finish(struct msgs *errs, char **reterr_msg)
{
    char *msg;

    if (errs->oom)
        return -ENOMEM;
    if (errs->n == 0)
        return 0;
    msg = msgs_join(errs);
    if (!msg)
        return -ENOMEM;
    *reterr_msg = msg;
    return -EINVAL;
}

int config_parse_json(struct config *cfg, const char *text, char **reterr_msg)
{
    struct msgs errs = {0};
    int r;

    apply_json_text(cfg, text, NULL, &errs);
    r = finish(&errs, reterr_msg);
    msgs_done(&errs);
    return r;
}

/* ---- environment ---- */

/* Sorted by name; also the --help order. Variables set to "" count as unset: Kubernetes
 * manifests often template empty values. */
static const struct env_var {
    const char *name;
    const char *key;  /* the config key it sets; NULL: the token, read by its own rules */
    const char *help; /* --help text; the key's name is appended */
    bool secret;      /* holds a secret: the daemon scrubs it from its environment once read */
} env_vars[] = {
    {ENV_CLIENT_ID, "client_id", "OAuth client id of a Databricks service principal.", false},
    {ENV_CLIENT_SECRET, NULL,
     "The OAuth client secret itself, for client_id; wins over client_secret_file. Scrubbed from "
     "the daemon's environment once read.",
     true},
    {ENV_TOKEN, NULL,
     "The default Databricks token itself (flytekit's variable). --token-file and flytekit's "
     "secret places (" FLYTEKIT_ENV_PREFIX ENV_TOKEN ", " FLYTEKIT_DEFAULT_DIR
     "/" FLYTEKIT_TOKEN_FILE ") win over it; it wins over the config file's token_file. Scrubbed "
     "from the daemon's environment once read.",
     true},
    {"FLYTE_DATABRICKS_INSTANCE", "default_instance", "Default workspace, as --instance.", false},
    {"FLYTE_DATABRICKS_LOG_LEVEL", "log_level", "As --log-level.", false},
    {"FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER", "service_credential_provider",
     "Databricks service credential serverless tasks use when they name none.", false},
    {ENV_SECRETS_DEFAULT_DIR, NULL,
     "Directory of flytekit's secret files (default " FLYTEKIT_DEFAULT_DIR "), where the default "
     "token may be the file " FLYTEKIT_TOKEN_FILE ".",
     false},
    {ENV_SECRETS_ENV_PREFIX, NULL,
     "Prefix of flytekit's secret variables (default " FLYTEKIT_ENV_PREFIX
     "): the default token may be the variable PREFIX" ENV_TOKEN ".",
     false},
    {ENV_SECRETS_FILE_PREFIX, NULL, "Prefix of flytekit's secret file names (default none).",
     false},
    {ENV_K8S_HOST, NULL,
     "Set by Kubernetes in every pod; with " ENV_K8S_PORT " it makes the daemon read "
     "per-namespace tokens from the Kubernetes API (kubernetes_service_account_dir).",
     false},
    {ENV_K8S_PORT, NULL, "The Kubernetes API's port, with " ENV_K8S_HOST ".", false},
    /* Its name follows ENV_SECRETS_ENV_PREFIX: config_secret_env_names() resolves it. */
    {FLYTEKIT_ENV_PREFIX ENV_TOKEN, NULL,
     "The default Databricks token, where flytekit's secrets manager looks first (the prefix "
     "is " ENV_SECRETS_ENV_PREFIX "'s value). Scrubbed from the daemon's environment once read.",
     true},
};

/* Borrows the value of name in envp, NULL when absent or empty. */
static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

/* ---- files ---- */

/* Reads a whole regular file of at most max bytes, NUL-terminated. On failure adds an error naming
 * what (e.g. "config file \"/x\"") and returns NULL; never quotes the content. */
static char *read_file(const char *path, size_t max, const char *what, struct stat *ret_st,
                       struct msgs *errs)
{
    char q[QUOTE_MAX];
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        msgs_add(errs, "%s %s: %s", what, quote(q, path), strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        msgs_add(errs, "%s %s: %s", what, quote(q, path), strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        msgs_add(errs, "%s %s: not a regular file", what, quote(q, path));
        goto fail;
    }
    buf = malloc(max + 1);
    if (!buf) {
        errs->oom = true;
        goto fail;
    }
    for (;;) {
        ssize_t got = read(fd, buf + len, max + 1 - len);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            msgs_add(errs, "%s %s: %s", what, quote(q, path), strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len > max) {
            msgs_add(errs, "%s %s: larger than %zu bytes", what, quote(q, path), max);
            goto fail;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        msgs_add(errs, "%s %s: contains a NUL byte", what, quote(q, path));
        goto fail;
    }
    close(fd);
    if (ret_st)
        *ret_st = st;
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    /* What was read may be a secret (a token file that is too long, say). */
    if (buf)
        explicit_bzero(buf, len);
    free(buf);
    return NULL;
}

/* Trims surrounding whitespace and checks what is left can go into an Authorization header:
 * visible ASCII only, so a stray CR/LF cannot inject a header. origin names the source and noun
 * the secret ("token", "secret") in messages; the secret itself is never quoted. Gives a copy, or
 * NULL after adding an error. */
static char *take_secret(const char *raw, const char *origin, const char *noun, struct msgs *errs)
{
    const char *start = raw, *end;
    char *secret;

    while (*start && isspace((unsigned char)*start))
        start++;
    end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    if (end == start) {
        msgs_add(errs, "%s: the %s is empty", origin, noun);
        return NULL;
    }
    for (const char *p = start; p < end; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            msgs_add(errs,
                     "%s: the %s contains a space, control or non-ASCII character, which an "
                     "HTTP header cannot carry",
                     origin, noun);
            return NULL;
        }
    }
    secret = strndup(start, (size_t)(end - start));
    if (!secret)
        errs->oom = true;
    return secret;
}

/* True when a secret file is readable or writable by others than the daemon: bits for others,
 * or bits for a group other than the daemon's own. Kubernetes mounts a Secret with fsGroup as
 * root:fsGroup mode 0440 even when defaultMode says 0400: the pod's own group, no exposure. */
static bool exposed(const struct stat *st)
{
    return (st->st_mode & S_IRWXO) || ((st->st_mode & S_IRWXG) && st->st_gid != getegid());
}

/* Reads the secret in file `path`; `what` names the file in messages ("token file"). Gives the
 * secret, or NULL after adding an error; warns when others may read the file. */
static char *load_secret_file(const char *path, const char *what, const char *noun,
                              struct msgs *errs, struct msgs *warns)
{
    char q[QUOTE_MAX], *origin = NULL, *raw, *secret = NULL;
    struct stat st;

    raw = read_file(path, TOKEN_FILE_MAX, what, &st, errs);
    if (!raw)
        return NULL;
    if (asprintf(&origin, "%s %s", what, quote(q, path)) < 0) {
        errs->oom = true;
        goto out;
    }
    secret = take_secret(raw, origin, noun, errs);
    if (secret && warns && exposed(&st))
        msgs_add(warns,
                 "%s is accessible by group or others (mode %04o); "
                 "make it readable by the daemon's user only",
                 origin, (unsigned)(st.st_mode & 07777));
out:
    secret_free(raw); /* the raw content is the secret */
    free(origin);
    return secret;
}

static void watch_file(struct config *cfg, const char *path, struct msgs *errs)
{
    char **grown;

    for (size_t i = 0; i < cfg->watch_files_count; i++)
        if (strcmp(cfg->watch_files[i], path) == 0)
            return;
    grown = realloc(cfg->watch_files, (cfg->watch_files_count + 2) * sizeof(*grown));
    if (!grown) {
        errs->oom = true;
        return;
    }
    cfg->watch_files = grown;
    grown[cfg->watch_files_count] = strdup(path);
    if (!grown[cfg->watch_files_count]) {
        errs->oom = true;
        return;
    }
    grown[++cfg->watch_files_count] = NULL;
}

/* Where flytekit's secrets manager looks for FLYTE_DATABRICKS_ACCESS_TOKEN: the variable
 * prefix + name, and the file dir/prefix + the name in lower case. */
struct flytekit_places {
    char *variable;
    char *file;
};

static int flytekit_places(char **envp, struct flytekit_places *ret)
{
    const char *prefix = env_get(envp, ENV_SECRETS_ENV_PREFIX);
    const char *dir = env_get(envp, ENV_SECRETS_DEFAULT_DIR);
    const char *file_prefix = env_get(envp, ENV_SECRETS_FILE_PREFIX);
    size_t dir_len;

    dir = dir ? dir : FLYTEKIT_DEFAULT_DIR;
    dir_len = strlen(dir);
    /* os.path.join() adds no second '/' after a directory that ends with one. */
    if (asprintf(&ret->variable, "%s" ENV_TOKEN, prefix ? prefix : FLYTEKIT_ENV_PREFIX) < 0)
        ret->variable = NULL;
    if (asprintf(&ret->file, "%s%s%s" FLYTEKIT_TOKEN_FILE, dir,
                 dir_len && dir[dir_len - 1] == '/' ? "" : "/", file_prefix ? file_prefix : "") < 0)
        ret->file = NULL;
    return ret->variable && ret->file ? 0 : -ENOMEM;
}

/* Takes the token from `path` when the file exists: true when it was there to read. */
static bool token_from_file(struct config *cfg, const char *path, struct msgs *errs,
                            struct msgs *warns)
{
    char q[QUOTE_MAX];
    struct stat st;

    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return false;
        msgs_add(errs, "token file %s: %s", quote(q, path), strerror(errno));
        return true;
    }
    cfg->token = load_secret_file(path, "token file", "token", errs, warns);
    return true;
}

/*
 * The default token: a --token-file flag wins, as every flag does; then flytekit's places (its
 * connector reads the token through the secrets manager, so a deployment made for it keeps its
 * Secret), then FLYTE_DATABRICKS_ACCESS_TOKEN, then the config file's token_file. The first place
 * that has a token is the only one read. Sets token, token_file (the file it came from),
 * token_place and token_places, and the files to watch.
 */
static void load_default_token(struct config *cfg, bool flag_given, char **envp, struct msgs *errs,
                               struct msgs *warns)
{
    struct flytekit_places fk = {0};
    const char *value;
    char *config_file = cfg->token_file;
    char q[QUOTE_MAX];
    int n;

    cfg->token_file = NULL;
    if (flag_given) {
        cfg->token_file = config_file;
        config_file = NULL;
        watch_file(cfg, cfg->token_file, errs);
        cfg->token = load_secret_file(cfg->token_file, "token file", "token", errs, warns);
        n = asprintf(&cfg->token_place, "file %s", cfg->token_file);
        goto places;
    }
    if (flytekit_places(envp, &fk) < 0) {
        errs->oom = true;
        goto out;
    }
    watch_file(cfg, fk.file, errs);
    if (config_file)
        watch_file(cfg, config_file, errs);
    if ((value = env_get(envp, fk.variable))) {
        cfg->token = take_secret(value, fk.variable, "token", errs);
        n = asprintf(&cfg->token_place, "env %s", fk.variable);
    } else if (token_from_file(cfg, fk.file, errs, warns)) {
        cfg->token_file = fk.file;
        fk.file = NULL;
        n = asprintf(&cfg->token_place, "file %s", cfg->token_file);
    } else if ((value = env_get(envp, ENV_TOKEN))) {
        cfg->token = take_secret(value, ENV_TOKEN, "token", errs);
        n = asprintf(&cfg->token_place, "env " ENV_TOKEN);
    } else if (config_file) {
        cfg->token_file = config_file;
        config_file = NULL;
        cfg->token = load_secret_file(cfg->token_file, "token file", "token", errs, warns);
        n = asprintf(&cfg->token_place, "file %s", cfg->token_file);
    } else {
        n = 0;
    }
places:
    if (n < 0)
        cfg->token_place = NULL;
    if (flag_given)
        n = asprintf(&cfg->token_places, "--token-file %s", quote(q, cfg->token_file));
    else
        n = asprintf(&cfg->token_places,
                     "environment %s, file %s, environment " ENV_TOKEN ", token_file (%s)",
                     fk.variable, fk.file ? fk.file : cfg->token_file,
                     config_file || cfg->token_file ? "set" : "not set");
    if (n < 0)
        cfg->token_places = NULL;
    if ((cfg->token && !cfg->token_place) || !cfg->token_places)
        errs->oom = true;
    if (!cfg->token && !errs->n && !cfg->oauth.client_id)
        msgs_add(warns,
                 "no Databricks token (looked in %s): calls that no per-namespace Secret, "
                 "connection secret or OAuth client serves fail with UNAUTHENTICATED",
                 cfg->token_places);
out:
    free(config_file);
    free(fk.variable);
    free(fk.file);
}

/* OAuth clients: DATABRICKS_CLIENT_SECRET (the secret itself, as Databricks' tools take it) wins
 * over client_secret_file; a client needs both an id and a secret. */
static void load_oauth(struct config *cfg, char **envp, struct msgs *errs, struct msgs *warns)
{
    struct config_oauth_client *c = &cfg->oauth;
    const char *env_secret = env_get(envp, ENV_CLIENT_SECRET);

    if (env_secret) {
        free(c->client_secret_file);
        c->client_secret_file = NULL;
        c->client_secret = take_secret(env_secret, ENV_CLIENT_SECRET, "secret", errs);
    } else if (c->client_secret_file) {
        watch_file(cfg, c->client_secret_file, errs);
        c->client_secret =
            load_secret_file(c->client_secret_file, "client secret file", "secret", errs, warns);
    }
    if (c->client_id && !env_secret && !c->client_secret_file)
        msgs_add(errs, "client_id is set but no client secret (" ENV_CLIENT_SECRET
                       " or client_secret_file)");
    if (!c->client_id && (env_secret || c->client_secret_file))
        msgs_add(errs, "a client secret is set (" ENV_CLIENT_SECRET
                       " or client_secret_file) but no client_id (" ENV_CLIENT_ID ")");
    for (size_t i = 0; i < cfg->instance_oauth_count; i++) {
        struct config_oauth_client *ic = &cfg->instance_oauth[i];

        if (!ic->client_secret_file)
            continue;
        watch_file(cfg, ic->client_secret_file, errs);
        ic->client_secret =
            load_secret_file(ic->client_secret_file, "client secret file", "secret", errs, warns);
    }
}

/* Running in a cluster, as client-go's rest.InClusterConfig() decides: both variables set. */
static void load_kubernetes(struct config *cfg, char **envp, struct msgs *errs)
{
    const char *host = env_get(envp, ENV_K8S_HOST), *port = env_get(envp, ENV_K8S_PORT);
    struct in6_addr a6;
    char q[QUOTE_MAX];
    long port_number;
    bool host_ok = true;

    if (!host || !port)
        return;
    if (!strchr(host, ':') || inet_pton(AF_INET6, host, &a6) != 1)
        for (const char *p = host; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
                host_ok = false;
    if (!host_ok || strlen(host) > RESMETA_HOST_MAX) {
        msgs_add(errs, ENV_K8S_HOST ": invalid value %s: expected a host name or IP address",
                 quote(q, host));
        return;
    }
    if (!parse_port(port, 1, &port_number)) {
        msgs_add(errs, ENV_K8S_PORT ": invalid value %s: expected a port 1-65535", quote(q, port));
        return;
    }
    cfg->kubernetes_host = strdup(host);
    cfg->kubernetes_port = strdup(port);
    if (!cfg->kubernetes_host || !cfg->kubernetes_port)
        errs->oom = true;
}

/* Reads idempotency_key_file: its content, surrounding whitespace trimmed, is the HMAC key. */
static void load_idempotency_key(struct config *cfg, struct msgs *errs, struct msgs *warns)
{
    char q[QUOTE_MAX], *raw;
    const char *start;
    size_t len;
    struct stat st;

    raw = read_file(cfg->idempotency_key_file, IDEMPOTENCY_KEY_MAX, "idempotency_key_file", &st,
                    errs);
    if (!raw)
        return;
    for (start = raw; *start && isspace((unsigned char)*start); start++)
        ;
    for (len = strlen(start); len > 0 && isspace((unsigned char)start[len - 1]); len--)
        ;
    if (len < IDEMPOTENCY_KEY_MIN) {
        msgs_add(errs,
                 "idempotency_key_file %s: the key is %zu bytes, fewer than %d (make one with "
                 "`openssl rand -hex 32`)",
                 quote(q, cfg->idempotency_key_file), len, IDEMPOTENCY_KEY_MIN);
        goto out;
    }
    cfg->idempotency_key = malloc(len);
    if (!cfg->idempotency_key) {
        errs->oom = true;
        goto out;
    }
    memcpy(cfg->idempotency_key, start, len);
    cfg->idempotency_key_len = len;
    if (exposed(&st))
        msgs_add(warns,
                 "idempotency_key_file %s is accessible by group or others (mode %04o); "
                 "make it readable by the daemon's user only",
                 quote(q, cfg->idempotency_key_file), (unsigned)(st.st_mode & 07777));
out:
    secret_free(raw);
}

static void check_ca_file(const struct config *cfg, struct msgs *errs)
{
    char *error = NULL;

    /* The whole check, so that check-config and a refused reload say what the
     * Databricks client would otherwise find only at its first request. */
    if (tls_files_check_ca(cfg->ca_file, &error) < 0) {
        if (error)
            msgs_add(errs, "%s", error);
        else
            errs->oom = true;
    }
    free(error);
}

/* The listener's TLS files go together and must be usable: checked here so that check-config,
 * start-up and a reload all refuse them by name, before gRPC would fail a handshake. */
static void check_listener_tls(const struct config *cfg, struct msgs *errs)
{
    const struct tls_files_server files = {
        .cert_file = cfg->tls_cert_file,
        .key_file = cfg->tls_key_file,
        .client_ca_file = cfg->tls_client_ca_file,
    };
    struct tls_files_pem pem = {0};
    char *error = NULL;

    if (!cfg->tls_cert_file != !cfg->tls_key_file) {
        msgs_add(errs, "tls_cert_file and tls_key_file go together: set both to serve TLS, or "
                       "neither for plaintext");
        return;
    }
    if (cfg->tls_client_ca_file && !cfg->tls_cert_file) {
        msgs_add(errs, "tls_client_ca_file needs tls_cert_file and tls_key_file: client "
                       "certificates are part of TLS");
        return;
    }
    if (!cfg->tls_cert_file)
        return;
    if (tls_files_load_server(&files, &pem, &error) < 0) {
        if (error)
            msgs_add(errs, "%s", error);
        else
            errs->oom = true;
    }
    free(error);
    tls_files_pem_done(&pem);
}

/* ---- flags ---- */

enum flag_id {
    FLAG_ALLOWED_INSTANCE,
    FLAG_CA_FILE,
    FLAG_CHECK_CONFIG,
    FLAG_CONFIG,
    FLAG_CONNECT_PORT,
    FLAG_HELP,
    FLAG_INSTANCE,
    FLAG_KUBERNETES_SA_DIR,
    FLAG_LISTEN,
    FLAG_LOG_FORMAT,
    FLAG_LOG_LEVEL,
    FLAG_METRICS_LISTEN,
    FLAG_TLS_CERT,
    FLAG_TLS_CLIENT_CA,
    FLAG_TLS_KEY,
    FLAG_MODULES,
    FLAG_PORT,
    FLAG_PROMETHEUS_PORT,
    FLAG_TIMEOUT,
    FLAG_TOKEN_FILE,
    FLAG_VERSION,
    FLAG_WORKER,
    FLAG_WORKERS,
    _FLAG_MAX,
};

/* What a flag's value is. pyflyte's and c0's flags (the official Helm charts start the image as
 * `pyflyte serve agent` or `c0`) map onto the daemon's settings or are accepted and ignored. */
enum flag_value_kind {
    FLAG_VALUE_KEY,     /* the key's value as given (or the flag's own handling) */
    FLAG_VALUE_PORT,    /* a port P: the key's address becomes 0.0.0.0:P, as pyflyte binds */
    FLAG_VALUE_IGNORED, /* accepted, logged as ignored */
};

/* Indexed by enum flag_id; FLAG_VALUE_KEY unless listed. */
static const enum flag_value_kind flag_value_kinds[_FLAG_MAX] = {
    [FLAG_PORT] = FLAG_VALUE_PORT,
    [FLAG_PROMETHEUS_PORT] = FLAG_VALUE_PORT,
    [FLAG_TIMEOUT] = FLAG_VALUE_IGNORED,
    [FLAG_MODULES] = FLAG_VALUE_IGNORED,
    [FLAG_CONNECT_PORT] = FLAG_VALUE_IGNORED,
};

/* In --help order; looked up by name. arg names the value in --help and in "needs a value"
 * errors, NULL for a flag without one. --help shows help, then the default and the name of the
 * key the flag sets, both from the key table. */
static const struct flag {
    const char *name;
    enum flag_id id;
    const char *arg;
    const char *key; /* config key the value sets, NULL otherwise */
    char short_name; /* one-letter alias (flags without a value only), 0 for none */
    const char *help;
} flags[] = {
    {"config", FLAG_CONFIG, "FILE", NULL, 0,
     "JSON config file (keys: see config/README.md). Default: none, built-in defaults only."},
    {"listen", FLAG_LISTEN, "HOST:PORT", "listen", 0,
     "gRPC listen address; IPv6 hosts in brackets, e.g. [::]:8000. Port 0 picks a free port "
     "(logged)."},
    {"workers", FLAG_WORKERS, "N", "workers", 0,
     "gRPC worker threads, 0-64. 0: none, the thread that talks to Databricks serves gRPC too "
     "(the least CPU per call; 2 workers, with a warning, when gRPC's epoll set cannot be "
     "shared)."},
    {"instance", FLAG_INSTANCE, "HOST[:PORT]", "default_instance", 0,
     "Databricks workspace used when a task names none (custom.databricksInstance); always "
     "allowed."},
    {"allowed-instance", FLAG_ALLOWED_INSTANCE, "HOST[:PORT]", "allowed_instances", 0,
     "Another workspace tasks may name; repeat for more. Replaces the config file's list. \"*\" "
     "allows any workspace (the token is then sent to whatever a task names)."},
    {"token-file", FLAG_TOKEN_FILE, "FILE", "token_file", 0,
     "File holding the Databricks default token (surrounding whitespace ignored). Wins over "
     "every other place: flytekit's secret variable and file, then the variable " ENV_TOKEN
     ", then the config file's token_file (see Environment below)."},
    {"ca-file", FLAG_CA_FILE, "FILE", "ca_file", 0,
     "Extra PEM CA bundle to trust for Databricks, besides the system store."},
    {"kubernetes-service-account-dir", FLAG_KUBERNETES_SA_DIR, "DIR",
     "kubernetes_service_account_dir", 0,
     "Directory holding the pod's service account token and ca.crt, for reading per-namespace "
     "Databricks tokens from the Kubernetes API (only when " ENV_K8S_HOST " is set)."},
    {"log-level", FLAG_LOG_LEVEL, "LEVEL", "log_level", 0, "debug, info, warning or error."},
    {"log-format", FLAG_LOG_FORMAT, "FORMAT", "log_format", 0,
     "text (key=value lines) or json (one object per line). Under systemd (JOURNAL_STREAM set) "
     "events go to the journal as structured fields."},
    {"metrics-listen", FLAG_METRICS_LISTEN, "HOST:PORT", "metrics_listen", 0,
     "Prometheus /metrics address; port 0 picks a free port (logged); \"off\" serves no "
     "metrics."},
    {"tls-cert", FLAG_TLS_CERT, "FILE", "tls_cert_file", 0,
     "Serve gRPC over TLS with this PEM certificate chain (with --tls-key). Re-read on SIGHUP "
     "and when the file changes."},
    {"tls-key", FLAG_TLS_KEY, "FILE", "tls_key_file", 0,
     "The PEM private key of --tls-cert (unencrypted)."},
    {"tls-client-ca", FLAG_TLS_CLIENT_CA, "FILE", "tls_client_ca_file", 0,
     "Require a client certificate signed by a CA in this PEM file (mutual TLS; needs "
     "--tls-cert)."},
    {"port", FLAG_PORT, "PORT", "listen", 0,
     "pyflyte's and c0's flag: --port P is --listen 0.0.0.0:P."},
    {"prometheus_port", FLAG_PROMETHEUS_PORT, "PORT", "metrics_listen", 0,
     "pyflyte's and c0's flag: --prometheus_port P is --metrics-listen 0.0.0.0:P."},
    {"worker", FLAG_WORKER, "N", "workers", 0,
     "pyflyte's and c0's flag, as --workers. Their default is 10; this daemon's, 0, costs the "
     "least CPU per call."},
    {"timeout", FLAG_TIMEOUT, "SECONDS", NULL, 0,
     "pyflyte's and c0's flag (there: stop after SECONDS, for tests); accepted and ignored, "
     "with a warning."},
    {"modules", FLAG_MODULES, "MODULE", NULL, 0,
     "pyflyte's and c0's flag (there: more Python connector modules; repeatable); accepted and "
     "ignored, with a warning."},
    {"connect_port", FLAG_CONNECT_PORT, "PORT", NULL, 0,
     "c0's flag (there: a Connect HTTP/1.1 port); accepted and ignored, with a warning."},
    {"check-config", FLAG_CHECK_CONFIG, NULL, NULL, 0,
     "Load and check the configuration, print \"configuration OK\" or every error, and exit."},
    {"help", FLAG_HELP, NULL, NULL, 'h', "Print this help and exit."},
    {"version", FLAG_VERSION, NULL, NULL, 0, "Print the version and exit."},
};

const char *config_flag_name(size_t i)
{
    return i < ELEMENTSOF(flags) ? flags[i].name : NULL;
}

struct flag_value {
    const struct flag *flag;
    const char *value; /* borrows argv */
    char *origin;      /* "--workers" */
};

struct parsed_flags {
    struct flag_value *v;
    size_t n;
    bool help, version, check;
    const char *config_path;
};

/* getopt_long() reports the flag table's entries as FLAG_OPT + index. */
#define FLAG_OPT 256

/* Finds the flag an argument names, "--name" or "--name=value"; abbreviations name none. */
static const struct flag *flag_find(const char *arg)
{
    size_t len = strcspn(arg + 2, "=");

    for (size_t i = 0; i < ELEMENTSOF(flags); i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, arg + 2, len) == 0)
            return &flags[i];
    return NULL;
}

/* Finds the flag a single-dash word names: "-h" and the like. */
static const struct flag *flag_find_short(const char *arg)
{
    for (size_t i = 0; i < ELEMENTSOF(flags); i++)
        if (flags[i].short_name && arg[1] == flags[i].short_name && arg[2] == '\0')
            return &flags[i];
    return NULL;
}

static void flag_unknown(const char *arg, struct msgs *errs)
{
    char name[QUOTE_MAX], q[QUOTE_MAX];

    snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    msgs_add(errs, "unknown flag %s (see --help)", quote(q, name));
}

static void flag_take(struct parsed_flags *pf, const struct flag *f, const char *value,
                      struct msgs *errs)
{
    switch (f->id) {
    case FLAG_HELP:
        pf->help = true;
        break;
    case FLAG_VERSION:
        pf->version = true;
        break;
    case FLAG_CHECK_CONFIG:
        pf->check = true;
        break;
    case FLAG_CONFIG:
        pf->config_path = value;
        break;
    default:
        if (asprintf(&pf->v[pf->n].origin, "--%s", f->name) < 0) {
            errs->oom = true;
            return;
        }
        pf->v[pf->n].flag = f;
        pf->v[pf->n].value = value;
        pf->n++;
        break;
    }
}

/* Collects every flag, and an error for each bad one, in argv order. getopt_long() splits values
 * off ("--x=v" or "--x v") and finds "--"; the rules it does not share are applied here: a flag
 * is named in full (an abbreviation is unknown, so a later flag cannot make one ambiguous), and a
 * single-dash word other than an alias such as -h is one unknown flag, not a group of letters. */
static void parse_flags(int argc, char **argv, struct parsed_flags *pf, struct msgs *errs)
{
    struct option options[ELEMENTSOF(flags) + 1];
    char optstring[2 + ELEMENTSOF(flags) + 1] = "-:";
    size_t n_short = 2;
    int bad_word = -1;
    char q[QUOTE_MAX];

    pf->v = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*pf->v));
    if (!pf->v) {
        errs->oom = true;
        return;
    }
    for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
        options[i] = (struct option){flags[i].name, flags[i].arg ? required_argument : no_argument,
                                     NULL, FLAG_OPT + (int)i};
        if (flags[i].short_name)
            optstring[n_short++] = flags[i].short_name;
    }
    options[ELEMENTSOF(flags)] = (struct option){0};
    optstring[n_short] = '\0';

    /* getopt_long() keeps its place in globals: optind = 0 makes glibc start over (a SIGHUP
     * reload parses the same argv again), opterr = 0 keeps its own messages out of ours. The
     * leading '-' returns other arguments in place, so errors come in argv order and argv is
     * never permuted; ':' tells a missing value from an unknown flag. */
    optind = 0;
    opterr = 0;
    for (;;) {
        int at = optind > 0 ? optind : 1; /* the word getopt_long() reads next */
        int opt = getopt_long(argc, argv, optstring, options, NULL);
        const struct flag *f;

        if (opt == -1)
            break;
        if (opt == 1) {
            msgs_add(errs, "unexpected argument %s", quote(q, optarg));
            continue;
        }
        if (strncmp(argv[at], "--", 2) != 0) {
            f = flag_find_short(argv[at]);
            if (f)
                flag_take(pf, f, NULL, errs);
            else if (at != bad_word)
                msgs_add(errs, "unknown flag %s (see --help)", quote(q, argv[at]));
            bad_word = at;
            continue;
        }
        f = flag_find(argv[at]);
        if (!f) {
            flag_unknown(argv[at], errs);
            /* An abbreviation's value is an argument of its own. */
            if (opt != '?' && opt != ':' && optind == at + 2)
                optind = at + 1;
        } else if (opt == ':') {
            msgs_add(errs, "--%s needs a value (%s)", f->name, f->arg);
        } else if (opt == '?') {
            msgs_add(errs, "--%s takes no value", f->name);
        } else {
            flag_take(pf, f, optarg, errs);
            if (errs->oom)
                return;
        }
    }
    for (int i = optind; i < argc; i++)
        msgs_add(errs, "unexpected argument %s", quote(q, argv[i]));
}

static void parsed_flags_done(struct parsed_flags *pf)
{
    for (size_t i = 0; pf->v && i < pf->n; i++)
        free(pf->v[i].origin);
    free(pf->v);
    *pf = (struct parsed_flags){0};
}

/* --port P and --prometheus_port P: the key's address on every interface, as pyflyte binds. */
static void set_port_flag(struct config *cfg, const struct flag_value *fv, struct msgs *errs)
{
    char q[QUOTE_MAX], address[sizeof("0.0.0.0:65535")];
    long port;

    if (!parse_port(fv->value, 0, &port)) {
        msgs_add(errs, "%s: invalid value %s: expected a port, 0-65535", fv->origin,
                 quote(q, fv->value));
        return;
    }
    snprintf(address, sizeof(address), "0.0.0.0:%ld", port);
    set_from_text(cfg, key_find(fv->flag->key), address, fv->origin, errs);
}

static void apply_flags(struct config *cfg, const struct parsed_flags *pf, struct msgs *errs,
                        struct msgs *warns)
{
    const char **values = NULL, **origins = NULL;
    size_t n_inst = 0;

    values = calloc(pf->n + 1, sizeof(*values));
    origins = calloc(pf->n + 1, sizeof(*origins));
    if (!values || !origins) {
        errs->oom = true;
        goto out;
    }
    for (size_t i = 0; i < pf->n; i++) {
        const struct flag_value *fv = &pf->v[i];

        char q[QUOTE_MAX];

        if (fv->flag->id == FLAG_ALLOWED_INSTANCE) {
            values[n_inst] = fv->value;
            origins[n_inst] = fv->origin;
            n_inst++;
        } else if (flag_value_kinds[fv->flag->id] == FLAG_VALUE_PORT) {
            set_port_flag(cfg, fv, errs);
        } else if (flag_value_kinds[fv->flag->id] == FLAG_VALUE_IGNORED) {
            msgs_add(warns, "%s %s ignored: accepted for pyflyte and c0 compatibility only",
                     fv->origin, quote(q, fv->value));
        } else {
            set_from_text(cfg, key_find(fv->flag->key), fv->value, fv->origin, errs);
        }
    }
    /* Repeated --allowed-instance flags form one list that replaces the file's. */
    if (n_inst > 0)
        set_instances(cfg, values, n_inst, origins, errs);
out:
    free(values);
    free(origins);
}

static bool flags_set(const struct parsed_flags *pf, enum flag_id id)
{
    for (size_t i = 0; i < pf->n; i++)
        if (pf->v[i].flag->id == id)
            return true;
    return false;
}

/* ---- the whole load ---- */

int config_load(int argc, char **argv, char **envp, struct config **ret_config,
                enum config_action *ret_action, char ***ret_warnings, char **reterr_msg)
{
    struct parsed_flags pf = {0};
    struct msgs errs = {0}, warns = {0};
    struct config *cfg = NULL;
    enum config_action action;
    char *text = NULL;
    int r;

    cfg = config_new();
    if (!cfg) {
        r = -ENOMEM;
        goto out;
    }
    parse_flags(argc, argv, &pf, &errs);
    if (errs.oom) {
        r = -ENOMEM;
        goto out;
    }
    /* --help and --version must work whatever else is wrong, like every CLI users know. */
    if (pf.help || pf.version) {
        action = pf.help ? CONFIG_ACTION_HELP : CONFIG_ACTION_VERSION;
        msgs_done(&errs);
        goto success;
    }
    action = pf.check ? CONFIG_ACTION_CHECK : CONFIG_ACTION_RUN;

    if (pf.config_path) {
        cfg->config_file = strdup(pf.config_path);
        if (!cfg->config_file) {
            r = -ENOMEM;
            goto out;
        }
        text = read_file(pf.config_path, CONFIG_FILE_MAX, "config file", NULL, &errs);
        if (text)
            apply_json_text(cfg, text, pf.config_path, &errs);
    }

    for (size_t i = 0; i < ELEMENTSOF(env_vars); i++) {
        const char *v = env_get(envp, env_vars[i].name);

        if (v && env_vars[i].key)
            set_from_text(cfg, key_find(env_vars[i].key), v, env_vars[i].name, &errs);
    }

    apply_flags(cfg, &pf, &errs, &warns);

    load_oauth(cfg, envp, &errs, &warns);
    /* A bad --token-file value is already an error: nothing more to say about the token. */
    load_default_token(cfg, flags_set(&pf, FLAG_TOKEN_FILE) && cfg->token_file, envp, &errs,
                       &warns);
    load_kubernetes(cfg, envp, &errs);

    if (cfg->ca_file)
        check_ca_file(cfg, &errs);
    if (cfg->idempotency_key_file)
        load_idempotency_key(cfg, &errs, &warns);
    check_listener_tls(cfg, &errs);

    if (cfg->allow_any_instance)
        msgs_add(&warns,
                 "allowed_instances contains \"*\": a task may name any Databricks instance and "
                 "the token is sent to it");

success:
    r = finish(&errs, reterr_msg);
    if (r < 0)
        goto out;
    if (warns.oom) {
        r = -ENOMEM;
        goto out;
    }
    *ret_config = cfg;
    cfg = NULL;
    *ret_action = action;
    *ret_warnings = warns.v;
    warns.v = NULL;
    r = 0;
out:
    parsed_flags_done(&pf);
    msgs_done(&errs);
    msgs_done(&warns);
    free(text);
    config_unref(cfg);
    return r;
}

/* ---- the rest of the API ---- */

struct config *config_new(void)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return NULL;
    atomic_init(&cfg->references, 1);
    cfg->listen = strdup(DEFAULT_LISTEN);
    cfg->metrics_listen = strdup(DEFAULT_METRICS_LISTEN);
    cfg->log_format = strdup(DEFAULT_LOG_FORMAT);
    cfg->kubernetes_service_account_dir = strdup(DEFAULT_KUBERNETES_SERVICE_ACCOUNT_DIR);
    if (!cfg->listen || !cfg->metrics_listen || !cfg->log_format ||
        !cfg->kubernetes_service_account_dir)
        return config_unref(cfg);
    cfg->shutdown_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
    cfg->max_tracked_runs = DEFAULT_MAX_TRACKED_RUNS;
    cfg->max_calls_in_flight = DEFAULT_MAX_CALLS_IN_FLIGHT;
    cfg->instance_max_concurrent_requests = DEFAULT_INSTANCE_MAX_CONCURRENT_REQUESTS;
    cfg->workers = DEFAULT_WORKERS;
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    cfg->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    cfg->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
    cfg->namespace_token_ttl_ms = DEFAULT_NAMESPACE_TOKEN_TTL_MS;
    cfg->retryable_failed_phase = true;
    return cfg;
}

const struct config *config_ref(const struct config *cfg)
{
    /* The count is the one field that changes after loading; the object itself was never
     * defined const (config_new() allocates it), so writing through the cast is defined. */
    atomic_fetch_add_explicit(&((struct config *)cfg)->references, 1, memory_order_relaxed);
    return cfg;
}

struct config *config_unref(const struct config *shared)
{
    struct config *cfg = (struct config *)shared;

    if (!cfg)
        return NULL;
    /* Release, then acquire before freeing: every holder's reads happen before the free. */
    if (atomic_fetch_sub_explicit(&cfg->references, 1, memory_order_release) != 1)
        return NULL;
    atomic_thread_fence(memory_order_acquire);
    free(cfg->config_file);
    free(cfg->listen);
    config_instance_limits_free(cfg->instance_limits, cfg->instance_limits_count);
    free(cfg->metrics_listen);
    free(cfg->log_format);
    free(cfg->default_instance);
    config_strv_free(cfg->allowed_instances);
    secret_free(cfg->token);
    free(cfg->token_file);
    free(cfg->token_place);
    free(cfg->token_places);
    config_strv_free(cfg->watch_files);
    if (cfg->idempotency_key) {
        explicit_bzero(cfg->idempotency_key, cfg->idempotency_key_len);
        free(cfg->idempotency_key);
    }
    free(cfg->idempotency_key_file);
    free(cfg->ca_file);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    free(cfg->tls_client_ca_file);
    free(cfg->service_credential_provider);
    free(cfg->kubernetes_host);
    free(cfg->kubernetes_port);
    free(cfg->kubernetes_service_account_dir);
    oauth_client_done(&cfg->oauth);
    oauth_clients_free(cfg->instance_oauth, cfg->instance_oauth_count);
    free(cfg);
    return NULL;
}

const struct config_oauth_client *config_oauth_client(const struct config *cfg,
                                                      const char *normalized_instance)
{
    for (size_t i = 0; normalized_instance && i < cfg->instance_oauth_count; i++)
        if (strcmp(cfg->instance_oauth[i].instance, normalized_instance) == 0)
            return cfg->instance_oauth[i].client_secret ? &cfg->instance_oauth[i] : NULL;
    return cfg->oauth.client_id && cfg->oauth.client_secret ? &cfg->oauth : NULL;
}

void config_stamp_file(const char *path, struct config_stamp *ret)
{
    struct stat st;

    *ret = (struct config_stamp){0};
    if (stat(path, &st) < 0)
        return;
    *ret = (struct config_stamp){
        .exists = true,
        .dev = (unsigned long long)st.st_dev,
        .ino = (unsigned long long)st.st_ino,
        .size = (unsigned long long)st.st_size,
        .mtime_sec = (long long)st.st_mtim.tv_sec,
        .mtime_nsec = (long long)st.st_mtim.tv_nsec,
    };
}

bool config_stamp_equal(const struct config_stamp *a, const struct config_stamp *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

int config_read_secret(const char *path, const char *what, char **ret_secret, char **reterr_msg)
{
    struct msgs errs = {0};
    char *secret = load_secret_file(path, what, "secret", &errs, NULL);
    int r;

    if (secret) {
        *ret_secret = secret;
        r = 0;
    } else {
        r = finish(&errs, reterr_msg);
        if (r == 0)
            r = -ENOMEM;
    }
    msgs_done(&errs);
    return r;
}

char **config_secret_env_names(char **envp)
{
    struct flytekit_places fk = {0};
    size_t n = 0, count = 2; /* the flytekit variable with envp's prefix, and the NULL */
    char **names = NULL;

    for (size_t i = 0; i < ELEMENTSOF(env_vars); i++)
        count += env_vars[i].secret;
    if (flytekit_places(envp, &fk) < 0)
        goto out;
    names = calloc(count, sizeof(*names));
    if (!names)
        goto out;
    for (size_t i = 0; i < ELEMENTSOF(env_vars); i++) {
        if (!env_vars[i].secret)
            continue;
        names[n] = strdup(env_vars[i].name);
        if (!names[n++])
            goto fail;
    }
    names[n++] = fk.variable; /* may repeat the default name: scrubbing twice is harmless */
    fk.variable = NULL;
    goto out;
fail:
    config_strv_free(names);
    names = NULL;
out:
    free(fk.variable);
    free(fk.file);
    return names;
}

bool config_listen_is_loopback(const char *listen)
{
    static const char *const loopback[] = {"localhost:", "[::1]:", "127."};

    for (size_t i = 0; listen && i < ELEMENTSOF(loopback); i++)
        if (strncmp(listen, loopback[i], strlen(loopback[i])) == 0)
            return true;
    return false;
}

bool config_instance_allowed(const struct config *cfg, const char *normalized_instance)
{
    if (!normalized_instance)
        return false;
    if (cfg->allow_any_instance)
        return true;
    if (cfg->default_instance && strcmp(cfg->default_instance, normalized_instance) == 0)
        return true;
    for (size_t i = 0; i < cfg->allowed_instances_count; i++)
        if (strcmp(cfg->allowed_instances[i], normalized_instance) == 0)
            return true;
    return false;
}

/* ---- --help and --check-config, written from the tables ---- */

#define USAGE_WIDTH 80
#define USAGE_HELP_COLUMN 27

/* Writes cfg's value for k as describe and --help show it; none stands for "no value". */
static void put_value(FILE *out, const struct config *cfg, const struct key *k, const char *none)
{
    const void *field = (const char *)cfg + k->offset;
    size_t count;

    switch (k->kind) {
    case KIND_STRING:
        fputs(*(char *const *)field ? *(char *const *)field : none, out);
        break;
    case KIND_INT:
        fprintf(out, "%d", *(const int *)field);
        break;
    case KIND_LONG:
        fprintf(out, "%ld", *(const long *)field);
        break;
    case KIND_LOG_LEVEL:
        fputs(log_level_names[*(const enum config_log_level *)field], out);
        break;
    case KIND_BOOL:
        fputs(*(const bool *)field ? "true" : "false", out);
        break;
    case KIND_INSTANCES:
        for (size_t i = 0; i < cfg->allowed_instances_count; i++)
            fprintf(out, "%s%s", i ? ", " : "", cfg->allowed_instances[i]);
        if (cfg->allow_any_instance)
            fprintf(out, "%s*", cfg->allowed_instances_count ? ", " : "");
        if (!cfg->allowed_instances_count && !cfg->allow_any_instance)
            fputs(none, out);
        break;
    case KIND_INSTANCE_LIMITS:
    case KIND_INSTANCE_OAUTH:
        count = k->kind == KIND_INSTANCE_LIMITS ? cfg->instance_limits_count
                                                : cfg->instance_oauth_count;
        if (count)
            fprintf(out, "%zu instance(s)", count);
        else
            fputs(none, out);
        break;
    }
}

/* Writes the n bytes of word on the line at column *col, or first starts a new line indented by
 * indent when the word would pass USAGE_WIDTH. */
static void put_word(FILE *out, int *col, int indent, const char *word, size_t n)
{
    if (*col > indent && *col + 1 + (int)n > USAGE_WIDTH) {
        fprintf(out, "\n%*s", indent, "");
        *col = indent;
    } else if (*col > indent) {
        fputc(' ', out);
        (*col)++;
    }
    fwrite(word, 1, n, out);
    *col += (int)n;
}

/* Writes text word by word, wrapped as put_word() does; a word ending in ':' stays on the line
 * of the word after it ("Default: 0", "Key: workers") unless the two together are too wide for
 * any line. */
static void put_words(FILE *out, int *col, int indent, const char *text)
{
    for (text += strspn(text, " "); *text; text += strspn(text, " ")) {
        size_t n = strcspn(text, " ");

        while (n > 0 && text[n - 1] == ':' && text[n] == ' ' && text[n + 1] && text[n + 1] != ' ' &&
               indent + (int)(n + 1 + strcspn(text + n + 1, " ")) <= USAGE_WIDTH)
            n += 1 + strcspn(text + n + 1, " ");
        put_word(out, col, indent, text, n);
        text += n;
    }
}

/* A string written with stdio, so put_value() serves strings as well as --help's FILE. Stays
 * where it was declared between text_begin() and text_end() (the stream points into it). */
struct text {
    FILE *f;
    char *s;
    size_t len;
};

static FILE *text_begin(struct text *t)
{
    *t = (struct text){0};
    t->f = open_memstream(&t->s, &t->len);
    return t->f;
}

/* Gives the string (free()), NULL when a write failed (OOM). */
static char *text_end(struct text *t)
{
    bool failed = ferror(t->f);

    if (fclose(t->f) != 0 || failed) {
        free(t->s);
        return NULL;
    }
    return t->s;
}

/* Gives the --help text of a flag or variable (free()): help, then what the key it sets defaults
 * to (when defaults is not NULL) and the key's name. NULL on OOM. */
static char *help_text(const char *help, const char *key_name, const struct config *defaults)
{
    const struct key *k = key_name ? key_find(key_name) : NULL;
    struct text t;
    FILE *f = text_begin(&t);

    if (!f)
        return NULL;
    fputs(help, f);
    if (k && defaults) {
        fputs(" Default: ", f);
        put_value(f, defaults, k, "none");
        fputc('.', f);
    }
    if (k)
        fprintf(f, " Key: %s.", k->name);
    return text_end(&t);
}

static bool key_has_flag(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(flags); i++)
        if (flags[i].key && strcmp(flags[i].key, name) == 0)
            return true;
    return false;
}

static bool key_has_env(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(env_vars); i++)
        if (env_vars[i].key && strcmp(env_vars[i].key, name) == 0)
            return true;
    return false;
}

/* "Usage: PROG [--config FILE] ..." with every flag that takes a value; "..." marks a list. */
static void usage_synopsis(FILE *out, const char *program)
{
    int col = fprintf(out, "Usage: %s", program);

    for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
        const struct key *k = flags[i].key ? key_find(flags[i].key) : NULL;
        char item[64];
        int n;

        if (!flags[i].arg)
            continue;
        n = snprintf(item, sizeof(item), "[--%s %s]%s", flags[i].name, flags[i].arg,
                     k && k->kind == KIND_INSTANCES ? "..." : "");
        put_word(out, &col, 10, item, (size_t)n);
    }
    fprintf(out,
            "\n"
            "       %s --check-config [--config FILE] [OPTIONS]\n"
            "       %s --help | --version\n",
            program, program);
}

static void usage_options(FILE *out, const struct config *defaults)
{
    fputs("Options:\n", out);
    for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
        const struct flag *f = &flags[i];
        char *text = help_text(f->help, f->key, defaults);
        char alias[8] = "";
        int col;

        if (f->short_name)
            snprintf(alias, sizeof(alias), "-%c, ", f->short_name);
        col = fprintf(out, "  %s--%s%s%s", alias, f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        if (col > USAGE_HELP_COLUMN - 2) {
            fprintf(out, "\n");
            col = 0;
        }
        fprintf(out, "%*s", USAGE_HELP_COLUMN - col, "");
        col = USAGE_HELP_COLUMN;
        put_words(out, &col, USAGE_HELP_COLUMN, text ? text : f->help);
        fputc('\n', out);
        free(text);
    }
}

/* Every key no flag or variable sets, with its default (when defaults is not NULL). */
static void usage_file_only_keys(FILE *out, const struct config *defaults)
{
    const struct key *list[ELEMENTSOF(keys)];
    size_t n = 0;
    int col = 0;

    for (size_t i = 0; i < ELEMENTSOF(keys); i++)
        if (!key_has_flag(keys[i].name) && !key_has_env(keys[i].name))
            list[n++] = &keys[i];
    put_words(out, &col, 0, "Config file only:");
    for (size_t i = 0; i < n; i++) {
        const char *end = i + 1 < n ? "," : ".";
        char value[64] = "", item[160];
        FILE *f = defaults ? fmemopen(value, sizeof(value), "w") : NULL;

        if (f) {
            put_value(f, defaults, list[i], "none");
            fclose(f);
        }
        if (list[i]->zero && strcmp(value, "0") == 0)
            snprintf(item, sizeof(item), "%s (default 0: %s)%s", list[i]->name, list[i]->zero, end);
        else if (value[0])
            snprintf(item, sizeof(item), "%s (default %s)%s", list[i]->name, value, end);
        else
            snprintf(item, sizeof(item), "%s%s", list[i]->name, end);
        put_words(out, &col, 0, item);
    }
    fputc('\n', out);
}

static void usage_environment(FILE *out)
{
    fputs("Environment (a variable set to the empty string is ignored):\n", out);
    for (size_t i = 0; i < ELEMENTSOF(env_vars); i++) {
        char *text = help_text(env_vars[i].help, env_vars[i].key, NULL);
        int col = 8;

        fprintf(out, "  %s\n        ", env_vars[i].name);
        put_words(out, &col, 8, text ? text : env_vars[i].help);
        fputc('\n', out);
        free(text);
    }
}

void config_usage(FILE *out, const char *program)
{
    struct config *defaults = config_new(); /* NULL (OOM): --help without the defaults */

    usage_synopsis(out, program);
    fputs("\n"
          "Flyte connector (agent) service for Databricks: Flyte's propeller (Flyte 1)\n"
          "and executor (Flyte 2) call it over gRPC, on one port, to create, poll and\n"
          "cancel Databricks runs (Jobs API runs/submit).\n"
          "\n"
          "Settings come from built-in defaults, then the JSON config file, then the\n"
          "environment, then these options; each later source overrides the earlier.\n"
          "Options take their value as the next argument or after '=' (--workers=4).\n"
          "\n",
          out);
    usage_options(out, defaults);
    fputc('\n', out);
    usage_file_only_keys(out, defaults);
    fputs("\n"
          "Signals: SIGTERM/SIGINT stop gracefully (health turns NOT_SERVING, serving\n"
          "goes on for shutdown_delay_ms, then calls in flight get shutdown_grace_ms to\n"
          "finish); a second one exits at once. SIGHUP\n"
          "re-reads the config file, the token file, the idempotency key and the TLS\n"
          "files; an invalid new config is refused and the old one stays in force.\n"
          "\n",
          out);
    usage_environment(out);
    fputs("\n"
          "Exit status:\n"
          "  0  normal shutdown; --check-config found no error; --help or --version\n"
          "  1  invalid configuration or options, or a fatal start-up error\n",
          out);
    config_unref(defaults);
}

char *config_describe(const struct config *cfg)
{
    struct text t;
    FILE *f = text_begin(&t);

    if (!f)
        return NULL;
    /* What was read first, then every key, in the key table's order. */
    fprintf(f, "config_file = %s\n", cfg->config_file ? cfg->config_file : "(none)");
    if (cfg->token)
        fprintf(f, "token = (set, %zu bytes, %s)\n", strlen(cfg->token), cfg->token_place);
    else
        fputs("token = (unset)\n", f);
    if (cfg->oauth.client_secret)
        fprintf(f, "client_secret = (set, %zu bytes)\n", strlen(cfg->oauth.client_secret));
    else
        fputs("client_secret = (unset)\n", f);
    if (cfg->kubernetes_host)
        fprintf(f, "kubernetes_api = %s:%s\n", cfg->kubernetes_host, cfg->kubernetes_port);
    else
        fputs("kubernetes_api = (not in a cluster)\n", f);
    if (cfg->idempotency_key)
        fprintf(f, "idempotency_key = (set, %zu bytes)\n", cfg->idempotency_key_len);
    else
        fputs("idempotency_key = (unset)\n", f);
    for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
        fprintf(f, "%s = ", keys[i].name);
        put_value(f, cfg, &keys[i], "(none)");
        fputc('\n', f);
    }
    return text_end(&t);
}

void config_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
