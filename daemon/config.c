/* config: builds the daemon's immutable settings from defaults < config file < environment < flags.
 *
 * The only code that knows the config file's keys, the FLYTE_DATABRICKS_* variables and the flags.
 * Each layer goes through the same per-key setters, so a value is validated the same way whether it
 * comes from JSON, a variable or a flag; only the origin named in the message differs. Errors are
 * collected, not returned at the first one (OpenBSD httpd's parse.y counts errors the same way), so
 * one run shows every mistake. It reads the config file, the token file and probes ca_file; it
 * never logs and never calls getenv (the environment arrives as an envp array). No static mutable
 * state: any thread may call anything here. The token is never written into a message. */
#include "config.h"
#include "resmeta.h"
#include "structjson.h"
#include "tls_files.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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

/* A config file is a few hundred bytes; a token a few KiB at most (OAuth JWTs included). Larger
 * input is a wrong path, not a config, and is refused before it is read into memory. */
#define CONFIG_FILE_MAX (1024 * 1024)
#define TOKEN_FILE_MAX (64 * 1024)

#define ENV_TOKEN "FLYTE_DATABRICKS_ACCESS_TOKEN"

/* ---- message collection ---- */

struct msgs {
    char **v; /* NULL-terminated once non-empty */
    size_t n;
    size_t cap;
    bool oom;
};

static void msgs_add(struct msgs *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void msgs_add(struct msgs *m, const char *fmt, ...) {
    char *s = NULL;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) {
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

static void msgs_done(struct msgs *m) {
    config_strv_free(m->v);
    *m = (struct msgs){0};
}

/* Gives the messages joined by newlines, NULL on OOM. */
static char *msgs_join(const struct msgs *m) {
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
static const char *quote(char buf[static QUOTE_MAX], const char *s) {
    size_t o = 0;

    buf[o++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (o + 8 >= QUOTE_MAX) {
            memcpy(buf + o, "\"...", 5);
            return buf;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, QUOTE_MAX - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ---- value checks (shared by every layer) ---- */

/* A check gives the stored form of a value in *ret_out, or returns -EINVAL with a reason. */
typedef int (*check_fn)(const char *in, char **ret_out, const char **ret_reason);

static bool parse_port(const char *s, long min, long *ret_port) {
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

static int check_listen(const char *in, char **ret_out, const char **ret_reason) {
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
static int normalize_instance(const char *in, char **ret_out, const char **ret_reason) {
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

static int check_nonempty(const char *in, char **ret_out, const char **ret_reason) {
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

static int check_log_format(const char *in, char **ret_out, const char **ret_reason) {
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
static int check_metrics_listen(const char *in, char **ret_out, const char **ret_reason) {
    char *out;

    if (strcmp(in, "off") != 0)
        return check_listen(in, ret_out, ret_reason);
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
    KIND_STRING,    /* char * at offset, through check */
    KIND_INT,       /* int at offset, min..max */
    KIND_LONG,      /* long at offset, min..max */
    KIND_LOG_LEVEL, /* enum config_log_level at offset */
    KIND_INSTANCES, /* allowed_instances + count + allow_any_instance */
    KIND_INSTANCE_LIMITS, /* instance_limits + count; config file only */
};

struct key {
    const char *name;
    enum key_kind kind;
    size_t offset;
    bool nullable; /* JSON null resets the setting to "none" */
    long min, max;
    check_fn check;
};

/* Sorted by name (strcmp order): looked up with bsearch, and test_config checks the order. */
static const struct key keys[] = {
    {"allowed_instances", KIND_INSTANCES, offsetof(struct config, allowed_instances), false, 0, 0,
     NULL},
    {"ca_file", KIND_STRING, offsetof(struct config, ca_file), true, 0, 0, check_nonempty},
    {"connect_timeout_ms", KIND_LONG, offsetof(struct config, connect_timeout_ms), false, 100,
     600000, NULL},
    {"default_instance", KIND_STRING, offsetof(struct config, default_instance), true, 0, 0,
     normalize_instance},
    {"instance_limits", KIND_INSTANCE_LIMITS, offsetof(struct config, instance_limits), false, 0,
     0, NULL},
    {"instance_max_concurrent_requests", KIND_LONG,
     offsetof(struct config, instance_max_concurrent_requests), false, 0, 100000, NULL},
    {"instance_rate_limit_rps", KIND_LONG, offsetof(struct config, instance_rate_limit_rps), false,
     0, 100000, NULL},
    {"listen", KIND_STRING, offsetof(struct config, listen), false, 0, 0, check_listen},
    {"log_format", KIND_STRING, offsetof(struct config, log_format), false, 0, 0,
     check_log_format},
    {"log_level", KIND_LOG_LEVEL, offsetof(struct config, log_level), false, 0, 0, NULL},
    {"max_calls_in_flight", KIND_LONG, offsetof(struct config, max_calls_in_flight), false, 0,
     1000000, NULL},
    {"max_response_bytes", KIND_LONG, offsetof(struct config, max_response_bytes), false, 1024,
     268435456, NULL},
    {"max_tracked_runs", KIND_LONG, offsetof(struct config, max_tracked_runs), false, 1,
     10000000, NULL},
    {"metrics_listen", KIND_STRING, offsetof(struct config, metrics_listen), false, 0, 0,
     check_metrics_listen},
    {"request_timeout_ms", KIND_LONG, offsetof(struct config, request_timeout_ms), false, 100,
     600000, NULL},
    {"service_credential_provider", KIND_STRING,
     offsetof(struct config, service_credential_provider), true, 0, 0, check_nonempty},
    {"shutdown_grace_ms", KIND_LONG, offsetof(struct config, shutdown_grace_ms), false, 0,
     600000, NULL},
    {"status_cache_ttl_ms", KIND_LONG, offsetof(struct config, status_cache_ttl_ms), false, 0,
     3600000, NULL},
    {"terminal_cache_ttl_ms", KIND_LONG, offsetof(struct config, terminal_cache_ttl_ms), false,
     0, 86400000, NULL},
    {"token_file", KIND_STRING, offsetof(struct config, token_file), true, 0, 0, check_nonempty},
    {"workers", KIND_INT, offsetof(struct config, workers), false, 0, 64, NULL},
};

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static int key_cmp(const void *name, const void *k) {
    return strcmp(name, ((const struct key *)k)->name);
}

static const struct key *key_find(const char *name) {
    return bsearch(name, keys, ELEMENTSOF(keys), sizeof(keys[0]), key_cmp);
}

const char *config_key_name(size_t i) {
    return i < ELEMENTSOF(keys) ? keys[i].name : NULL;
}

/* ---- setters: one per kind, used by every layer; origin names the source in messages ---- */

static void set_string(struct config *cfg, const struct key *k, const char *value,
                       const char *origin, struct msgs *errs) {
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
                          const char *origin, struct msgs *errs) {
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
                       const char *origin, struct msgs *errs) {
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
                          const char *const *origins, struct msgs *errs) {
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
                          const char *origin, struct msgs *errs) {
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
    case KIND_INSTANCES:
        set_instances(cfg, &text, 1, &origin, errs);
        break;
    case KIND_INSTANCE_LIMITS:
        msgs_add(errs, "%s: only the config file can set this", origin);
        break;
    }
}

/* ---- the config file layer ---- */


static void apply_json_instances(struct config *cfg, const cJSON *item, const char *where,
                                 struct msgs *errs) {
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
    cJSON_ArrayForEach(e, item) {
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

void config_instance_limits_free(struct config_instance_limit *limits, size_t count) {
    for (size_t i = 0; limits && i < count; i++)
        free(limits[i].instance);
    free(limits);
}

/* One instance's limits object: {"rate_limit_rps": N, "burst": N, "max_concurrent_requests": N}. */
static void apply_json_one_limit(struct config_instance_limit *limit, const cJSON *object,
                                 const char *origin, struct msgs *errs) {
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
    cJSON_ArrayForEach(item, object) {
        size_t i;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (strcmp(fields[i].name, item->string) == 0)
                break;
        if (i == sizeof(fields) / sizeof(fields[0])) {
            msgs_add(errs, "%s: unknown key \"%s\" (expected rate_limit_rps, burst, "
                           "max_concurrent_requests)", origin, item->string);
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

/* "instance_limits": {"HOST[:PORT]": {...}, ...}; replaces the whole table. */
static void apply_json_instance_limits(struct config *cfg, const cJSON *object,
                                       const char *origin, struct msgs *errs) {
    struct config_instance_limit *limits;
    size_t n = 0, count = 0;
    const cJSON *item;

    if (!cJSON_IsObject(object)) {
        msgs_add(errs, "%s: expected an object, got %s", origin, structjson_type_name(object));
        return;
    }
    cJSON_ArrayForEach(item, object)
        n++;
    limits = calloc(n + 1, sizeof(*limits));
    if (!limits) {
        errs->oom = true;
        return;
    }
    cJSON_ArrayForEach(item, object) {
        const char *reason = NULL;
        char *where = NULL;
        char q[QUOTE_MAX];
        int r;

        if (asprintf(&where, "%s[\"%s\"]", origin, item->string) < 0) {
            errs->oom = true;
            break;
        }
        r = normalize_instance(item->string, &limits[count].instance, &reason);
        if (r == -ENOMEM) {
            errs->oom = true;
        } else if (r < 0) {
            msgs_add(errs, "%s: invalid instance %s: %s", origin, quote(q, item->string), reason);
        } else {
            apply_json_one_limit(&limits[count], item, where, errs);
            count++;
        }
        free(where);
    }
    config_instance_limits_free(cfg->instance_limits, cfg->instance_limits_count);
    cfg->instance_limits = limits;
    cfg->instance_limits_count = count;
}

static void apply_json_key(struct config *cfg, const struct key *k, const cJSON *item,
                           const char *where, struct msgs *errs) {
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
            msgs_add(errs, "%s: expected a string%s, got %s", origin,
                     k->nullable ? " or null" : "", structjson_type_name(item));
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
    }
    free(origin);
}

/* path names the file in every message, NULL for none. */
static void apply_json_text(struct config *cfg, const char *text, const char *path,
                            struct msgs *errs) {
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
        msgs_add(errs, "%s%s%zu:%zu: JSON syntax error", path ? path : "", path ? ":" : "",
                 line, col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        msgs_add(errs, "%sexpected a JSON object at the top level, got %s", where,
                 structjson_type_name(root));
        goto out;
    }
    cJSON_ArrayForEach(item, root) {
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

static int finish(struct msgs *errs, char **reterr_msg) {
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

int config_parse_json(struct config *cfg, const char *text, char **reterr_msg) {
    struct msgs errs = {0};
    int r;

    apply_json_text(cfg, text, NULL, &errs);
    r = finish(&errs, reterr_msg);
    msgs_done(&errs);
    return r;
}

/* ---- files ---- */

/* Reads a whole regular file of at most max bytes, NUL-terminated. On failure adds an error naming
 * what (e.g. "config file \"/x\"") and returns NULL; never quotes the content. */
static char *read_file(const char *path, size_t max, const char *what, struct stat *ret_st,
                       struct msgs *errs) {
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
    free(buf);
    return NULL;
}

/* Trims surrounding whitespace in place and checks what is left can go into an Authorization
 * header: visible ASCII only, so a stray CR/LF cannot inject a header. origin names the source;
 * the token itself is never quoted. Gives a copy, or NULL after adding an error. */
static char *take_token(const char *raw, const char *origin, struct msgs *errs) {
    const char *start = raw, *end;
    char *token;

    while (*start && isspace((unsigned char)*start))
        start++;
    end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    if (end == start) {
        msgs_add(errs, "%s: the token is empty", origin);
        return NULL;
    }
    for (const char *p = start; p < end; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            msgs_add(errs,
                     "%s: the token contains a space, control or non-ASCII character, which an "
                     "HTTP header cannot carry",
                     origin);
            return NULL;
        }
    }
    token = strndup(start, (size_t)(end - start));
    if (!token)
        errs->oom = true;
    return token;
}

static void load_token_file(struct config *cfg, struct msgs *errs, struct msgs *warns) {
    char q[QUOTE_MAX], *origin = NULL, *raw;
    struct stat st;

    raw = read_file(cfg->token_file, TOKEN_FILE_MAX, "token file", &st, errs);
    if (!raw)
        return;
    if (asprintf(&origin, "token file %s", quote(q, cfg->token_file)) < 0) {
        errs->oom = true;
        goto out;
    }
    cfg->token = take_token(raw, origin, errs);
    if (cfg->token && (st.st_mode & (S_IRWXG | S_IRWXO)))
        msgs_add(warns,
                 "%s is accessible by group or others (mode %04o); "
                 "make it readable by the daemon's user only",
                 origin, (unsigned)(st.st_mode & 07777));
out:
    /* The raw content is the token: wipe it before freeing. */
    explicit_bzero(raw, strlen(raw));
    free(raw);
    free(origin);
}

static void check_ca_file(const struct config *cfg, struct msgs *errs) {
    char *error = NULL;

    /* Only that it opens: the Databricks client reads the certificates when it
     * takes the settings (start-up and reload). */
    if (tls_files_check_ca(cfg->ca_file, TLS_FILES_OPEN, &error) < 0) {
        if (error)
            msgs_add(errs, "%s", error);
        else
            errs->oom = true;
    }
    free(error);
}

/* ---- environment ---- */

/* Sorted by name. Variables set to "" count as unset: Kubernetes manifests often template
 * empty values. */
static const struct env_var {
    const char *name;
    const char *key;
} env_vars[] = {
    {"FLYTE_DATABRICKS_INSTANCE", "default_instance"},
    {"FLYTE_DATABRICKS_LOG_LEVEL", "log_level"},
    {"FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER", "service_credential_provider"},
};

/* Borrows the value of name in envp, NULL when absent or empty. */
static const char *env_get(char **envp, const char *name) {
    size_t n = strlen(name);

    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

/* ---- flags ---- */

enum flag_id {
    FLAG_ALLOWED_INSTANCE,
    FLAG_CA_FILE,
    FLAG_CHECK_CONFIG,
    FLAG_CONFIG,
    FLAG_HELP,
    FLAG_INSTANCE,
    FLAG_LISTEN,
    FLAG_LOG_FORMAT,
    FLAG_LOG_LEVEL,
    FLAG_METRICS_LISTEN,
    FLAG_TOKEN_FILE,
    FLAG_VERSION,
    FLAG_WORKERS,
};

/* Sorted by name; the order is also the --help order. arg is NULL for flags without a value. */
static const struct flag {
    const char *name;
    enum flag_id id;
    const char *arg;
    const char *key; /* config key the value sets, NULL otherwise */
} flags[] = {
    {"allowed-instance", FLAG_ALLOWED_INSTANCE, "HOST[:PORT]", "allowed_instances"},
    {"ca-file", FLAG_CA_FILE, "FILE", "ca_file"},
    {"check-config", FLAG_CHECK_CONFIG, NULL, NULL},
    {"config", FLAG_CONFIG, "FILE", NULL},
    {"help", FLAG_HELP, NULL, NULL},
    {"instance", FLAG_INSTANCE, "HOST[:PORT]", "default_instance"},
    {"listen", FLAG_LISTEN, "HOST:PORT", "listen"},
    {"log-format", FLAG_LOG_FORMAT, "FORMAT", "log_format"},
    {"log-level", FLAG_LOG_LEVEL, "LEVEL", "log_level"},
    {"metrics-listen", FLAG_METRICS_LISTEN, "HOST:PORT", "metrics_listen"},
    {"token-file", FLAG_TOKEN_FILE, "FILE", "token_file"},
    {"version", FLAG_VERSION, NULL, NULL},
    {"workers", FLAG_WORKERS, "N", "workers"},
};

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

static const struct flag *flag_find(const char *name, size_t len) {
    for (size_t i = 0; i < ELEMENTSOF(flags); i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static void parse_flags(int argc, char **argv, struct parsed_flags *pf, struct msgs *errs) {
    char q[QUOTE_MAX];
    bool positional = false;

    pf->v = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*pf->v));
    if (!pf->v) {
        errs->oom = true;
        return;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL, *eq;
        const struct flag *f;
        size_t len;

        if (!positional && strcmp(arg, "--") == 0) {
            positional = true;
            continue;
        }
        if (positional || arg[0] != '-' || arg[1] == '\0') {
            msgs_add(errs, "unexpected argument %s", quote(q, arg));
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            pf->help = true;
            continue;
        }
        if (arg[1] != '-') {
            msgs_add(errs, "unknown flag %s (see --help)", quote(q, arg));
            continue;
        }
        eq = strchr(arg + 2, '=');
        len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        f = flag_find(arg + 2, len);
        if (!f) {
            char name[QUOTE_MAX];

            snprintf(name, sizeof(name), "%.*s", (int)(len + 2), arg);
            msgs_add(errs, "unknown flag %s (see --help)", quote(q, name));
            continue;
        }
        if (!f->arg && eq) {
            msgs_add(errs, "--%s takes no value", f->name);
            continue;
        }
        if (f->arg) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                msgs_add(errs, "--%s needs a value (%s)", f->name, f->arg);
                continue;
            }
        }
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
}

static void parsed_flags_done(struct parsed_flags *pf) {
    for (size_t i = 0; pf->v && i < pf->n; i++)
        free(pf->v[i].origin);
    free(pf->v);
    *pf = (struct parsed_flags){0};
}

static void apply_flags(struct config *cfg, const struct parsed_flags *pf, struct msgs *errs) {
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

        if (fv->flag->id == FLAG_ALLOWED_INSTANCE) {
            values[n_inst] = fv->value;
            origins[n_inst] = fv->origin;
            n_inst++;
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

static bool flags_set(const struct parsed_flags *pf, enum flag_id id) {
    for (size_t i = 0; i < pf->n; i++)
        if (pf->v[i].flag->id == id)
            return true;
    return false;
}

/* ---- the whole load ---- */

int config_load(int argc, char **argv, char **envp, struct config **ret_config,
                enum config_action *ret_action, char ***ret_warnings, char **reterr_msg) {
    struct parsed_flags pf = {0};
    struct msgs errs = {0}, warns = {0};
    struct config *cfg = NULL;
    enum config_action action;
    const char *env_token;
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

        if (v)
            set_from_text(cfg, key_find(env_vars[i].key), v, env_vars[i].name, &errs);
    }

    apply_flags(cfg, &pf, &errs);

    /* Token precedence: --token-file > FLYTE_DATABRICKS_ACCESS_TOKEN (flytekit's variable) >
     * the config file's token_file. A token_file the variable overrides is not read at all. */
    env_token = env_get(envp, ENV_TOKEN);
    if (cfg->token_file && (flags_set(&pf, FLAG_TOKEN_FILE) || !env_token)) {
        load_token_file(cfg, &errs, &warns);
    } else if (env_token) {
        free(cfg->token_file);
        cfg->token_file = NULL;
        cfg->token = take_token(env_token, ENV_TOKEN, &errs);
    } else {
        msgs_add(&warns,
                 "no Databricks token (--token-file, " ENV_TOKEN " or token_file): calls to "
                 "Databricks will fail with UNAUTHENTICATED");
    }

    if (cfg->ca_file)
        check_ca_file(cfg, &errs);

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
    config_free(cfg);
    return r;
}

/* ---- the rest of the API ---- */

struct config *config_new(void) {
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return NULL;
    cfg->listen = strdup(DEFAULT_LISTEN);
    cfg->metrics_listen = strdup(DEFAULT_METRICS_LISTEN);
    cfg->log_format = strdup(DEFAULT_LOG_FORMAT);
    if (!cfg->listen || !cfg->metrics_listen || !cfg->log_format)
        return config_free(cfg);
    cfg->shutdown_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
    cfg->max_tracked_runs = DEFAULT_MAX_TRACKED_RUNS;
    cfg->max_calls_in_flight = DEFAULT_MAX_CALLS_IN_FLIGHT;
    cfg->instance_max_concurrent_requests = DEFAULT_INSTANCE_MAX_CONCURRENT_REQUESTS;
    cfg->workers = DEFAULT_WORKERS;
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    cfg->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    cfg->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
    return cfg;
}

struct config *config_free(struct config *cfg) {
    if (!cfg)
        return NULL;
    free(cfg->config_file);
    free(cfg->listen);
    config_instance_limits_free(cfg->instance_limits, cfg->instance_limits_count);
    free(cfg->metrics_listen);
    free(cfg->log_format);
    free(cfg->default_instance);
    config_strv_free(cfg->allowed_instances);
    if (cfg->token) {
        explicit_bzero(cfg->token, strlen(cfg->token));
        free(cfg->token);
    }
    free(cfg->token_file);
    free(cfg->ca_file);
    free(cfg->service_credential_provider);
    free(cfg);
    return NULL;
}

bool config_instance_allowed(const struct config *cfg, const char *normalized_instance) {
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

void config_usage(FILE *out, const char *program) {
    fprintf(out,
            "Usage: %s [--config FILE] [--listen HOST:PORT] [--workers N]\n"
            "          [--instance HOST[:PORT]] [--allowed-instance HOST[:PORT]]...\n"
            "          [--token-file FILE] [--ca-file FILE] [--log-level LEVEL]\n"
            "          [--log-format text|json] [--metrics-listen HOST:PORT|off]\n"
            "       %s --check-config [--config FILE] [OPTIONS]\n"
            "       %s --help | --version\n"
            "\n"
            "Flyte connector (agent) service for Databricks: Flyte propeller calls it\n"
            "over gRPC to create, poll and cancel Databricks runs (Jobs API runs/submit).\n"
            "\n"
            "Settings come from built-in defaults, then the JSON config file, then the\n"
            "environment, then these options; each later source overrides the earlier.\n"
            "Options take their value as the next argument or after '=' (--workers=4).\n"
            "\n"
            "Options:\n"
            "  --config FILE            JSON config file (keys: see config/README.md).\n"
            "                           Default: none, built-in defaults only.\n"
            "  --listen HOST:PORT       gRPC listen address; IPv6 hosts in brackets, e.g.\n"
            "                           [::]:8000. Port 0 picks a free port (logged).\n"
            "                           Default: 0.0.0.0:8000. Key: listen.\n"
            "  --workers N              gRPC worker threads, 0-64. 0: none, the thread\n"
            "                           that talks to Databricks serves gRPC too (the\n"
            "                           least CPU per call; 2 workers, with a warning,\n"
            "                           when gRPC's poller cannot be shared).\n"
            "                           Default: 0. Key: workers.\n"
            "  --instance HOST[:PORT]   Databricks workspace used when a task names none\n"
            "                           (custom.databricksInstance); always allowed.\n"
            "                           Default: none. Key: default_instance.\n"
            "  --allowed-instance HOST[:PORT]\n"
            "                           Another workspace tasks may name; repeat for more.\n"
            "                           Replaces the config file's list. \"*\" allows any\n"
            "                           workspace (the token is then sent to whatever a\n"
            "                           task names). Default: none. Key: allowed_instances.\n"
            "  --token-file FILE        File holding the Databricks token (surrounding\n"
            "                           whitespace ignored). Wins over the variable\n"
            "                           " ENV_TOKEN ", which wins over\n"
            "                           the config file's token_file.\n"
            "                           Default: none. Key: token_file.\n"
            "  --ca-file FILE           Extra PEM CA bundle to trust for Databricks.\n"
            "                           Default: none (system store only). Key: ca_file.\n"
            "  --log-level LEVEL        debug, info, warning or error.\n"
            "                           Default: info. Key: log_level.\n"
            "  --log-format FORMAT      text (key=value lines) or json (one object per\n"
            "                           line). Under systemd (JOURNAL_STREAM set) events\n"
            "                           go to the journal as structured fields.\n"
            "                           Default: text. Key: log_format.\n"
            "  --metrics-listen HOST:PORT\n"
            "                           Prometheus /metrics address; port 0 picks a free\n"
            "                           port (logged); \"off\" serves no metrics.\n"
            "                           Default: 0.0.0.0:9090. Key: metrics_listen.\n"
            "  --check-config           Load and check the configuration, print\n"
            "                           \"configuration OK\" or every error, and exit.\n"
            "  -h, --help               Print this help and exit.\n"
            "  --version                Print the version and exit.\n"
            "\n"
            "Config file only: connect_timeout_ms (default 5000), request_timeout_ms\n"
            "(default 30000), max_response_bytes (default 4194304), shutdown_grace_ms\n"
            "(default 10000), max_calls_in_flight (default 10000), max_tracked_runs\n"
            "(default 20000), instance_rate_limit_rps (default 0: none),\n"
            "instance_max_concurrent_requests (default 256), instance_limits (per\n"
            "instance overrides), status_cache_ttl_ms\n"
            "(default 0: off), terminal_cache_ttl_ms (default 0: off).\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop gracefully (health turns NOT_SERVING, calls in\n"
            "flight get shutdown_grace_ms to finish); a second one exits at once. SIGHUP\n"
            "re-reads the config file and token file; an invalid new config is refused\n"
            "and the old one stays in force.\n"
            "\n"
            "Environment (a variable set to the empty string is ignored):\n"
            "  FLYTE_DATABRICKS_INSTANCE\n"
            "        Default workspace, as --instance.\n"
            "  " ENV_TOKEN "\n"
            "        The Databricks token itself (flytekit's variable). --token-file wins\n"
            "        over it; it wins over the config file's token_file.\n"
            "  FLYTE_DATABRICKS_LOG_LEVEL\n"
            "        As --log-level.\n"
            "  FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER\n"
            "        Databricks service credential serverless tasks use when they name\n"
            "        none. Key: service_credential_provider.\n"
            "\n"
            "Exit status:\n"
            "  0  normal shutdown; --check-config found no error; --help or --version\n"
            "  1  invalid configuration or options, or a fatal start-up error\n",
            program, program, program);
}

char *config_describe(const struct config *cfg) {
    char *list = NULL, *text = NULL;
    char token[64] = "(unset)";
    size_t len = 0;
    FILE *f;

    f = open_memstream(&list, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < cfg->allowed_instances_count; i++)
        fprintf(f, "%s%s", i ? ", " : "", cfg->allowed_instances[i]);
    if (cfg->allow_any_instance)
        fprintf(f, "%s*", cfg->allowed_instances_count ? ", " : "");
    if (fclose(f) != 0) {
        free(list);
        return NULL;
    }
    if (cfg->token)
        snprintf(token, sizeof(token), "(set, %zu bytes)", strlen(cfg->token));

#define OR_NONE(s) ((s) ? (s) : "(none)")
    if (asprintf(&text,
                 "config_file = %s\n"
                 "listen = %s\n"
                 "workers = %d\n"
                 "default_instance = %s\n"
                 "allowed_instances = %s\n"
                 "token = %s\n"
                 "token_file = %s\n"
                 "ca_file = %s\n"
                 "log_level = %s\n"
                 "log_format = %s\n"
                 "metrics_listen = %s\n"
                 "shutdown_grace_ms = %ld\n"
                 "instance_rate_limit_rps = %ld\n"
                 "instance_max_concurrent_requests = %ld\n"
                 "instance_limits = %zu instance(s)\n"
                 "max_calls_in_flight = %ld\n"
                 "max_tracked_runs = %ld\n"
                 "status_cache_ttl_ms = %ld\n"
                 "terminal_cache_ttl_ms = %ld\n"
                 "connect_timeout_ms = %ld\n"
                 "request_timeout_ms = %ld\n"
                 "max_response_bytes = %ld\n"
                 "service_credential_provider = %s\n",
                 OR_NONE(cfg->config_file), cfg->listen, cfg->workers,
                 OR_NONE(cfg->default_instance), list[0] ? list : "(none)",
                 token, OR_NONE(cfg->token_file), OR_NONE(cfg->ca_file),
                 log_level_names[cfg->log_level], cfg->log_format, cfg->metrics_listen,
                 cfg->shutdown_grace_ms, cfg->instance_rate_limit_rps,
                 cfg->instance_max_concurrent_requests, cfg->instance_limits_count,
                 cfg->max_calls_in_flight, cfg->max_tracked_runs, cfg->status_cache_ttl_ms,
                 cfg->terminal_cache_ttl_ms, cfg->connect_timeout_ms,
                 cfg->request_timeout_ms, cfg->max_response_bytes,
                 OR_NONE(cfg->service_credential_provider)) < 0)
        text = NULL;
#undef OR_NONE
    free(list);
    return text;
}

void config_strv_free(char **v) {
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
