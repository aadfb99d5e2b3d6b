/*
 * metrics.c - the Prometheus registry and its text exposition.
 *
 * Design: every family is a fixed array indexed by small label indices
 * (tables below), so an update is a table lookup plus an increment and the
 * registry never grows. The four flyte_connector_* families are updated
 * together at the end of a call, so one mutex (calls_lock) guards them; the
 * Databricks families have theirs (dbx_lock). Plain counters without labels
 * are atomics. Rendering takes one lock at a time and only formats text
 * under it; nothing calls out while holding a lock.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Task types served (the same two metadata.c registers); index ELEMENTSOF = "other". */
static const char *const task_type_names[] = {"spark", "databricks"};
#define TASK_TYPES (ELEMENTSOF(task_type_names) + 1)

/* flytekit's operation label values; index ELEMENTSOF = "other". */
static const char *const operation_names[] = {"create", "get", "delete", "logs"};
#define OPERATIONS (ELEMENTSOF(operation_names) + 1)

#define GRPC_CODES STATUS_CODES

/* Databricks endpoints as dbx_endpoint_name() spells them; index ELEMENTSOF = "other". */
static const char *const endpoint_names[] = {"runs/submit", "runs/get", "runs/cancel",
                                             "runs/get-output"};
#define ENDPOINTS (ELEMENTSOF(endpoint_names) + 1)

/* Where a call's token came from (creds.c's sources); index ELEMENTSOF = "other". */
static const char *const token_source_names[] = {
    "connection_secret", "namespace_secret", "resource_meta", "oauth", "default", "none",
};
#define TOKEN_SOURCES (ELEMENTSOF(token_source_names) + 1)

/* HTTP status label slots: 0 is "error" (no answer), the last is "other" (table full or
 * not a status), the ones between are taken first come. Databricks answers with a handful
 * of distinct codes, so 16 is plenty. */
#define STATUS_SLOTS 18
#define STATUS_ERROR 0
#define STATUS_OTHER (STATUS_SLOTS - 1)

/* Bucket upper bounds, ascending; +Inf is implied. Prometheus' default latency buckets. */
static const double seconds_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
/* CreateTask inputs: 256 B to 16 MiB in steps of 4 (gRPC's default message limit is 4 MiB). */
static const double bytes_bounds[] = {256,    1024,    4096,    16384,   65536,
                                      262144, 1048576, 4194304, 16777216};
#define MAX_BOUNDS 11

struct histogram {
    uint64_t buckets[MAX_BOUNDS + 1]; /* per bucket, not cumulative; [bounds count] is +Inf */
    uint64_t count;
    double sum;
};

struct metrics {
    char *version;

    pthread_mutex_t calls_lock;
    uint64_t success[TASK_TYPES][OPERATIONS];             /* guarded by calls_lock */
    uint64_t failure[TASK_TYPES][OPERATIONS][GRPC_CODES]; /* guarded by calls_lock */
    struct histogram latency[TASK_TYPES][OPERATIONS];     /* guarded by calls_lock */
    struct histogram input_bytes[TASK_TYPES];             /* guarded by calls_lock */

    pthread_mutex_t dbx_lock;
    char status_names[STATUS_SLOTS][8];             /* guarded by dbx_lock */
    size_t status_used;                             /* slots named so far, guarded by dbx_lock */
    uint64_t dbx_requests[ENDPOINTS][STATUS_SLOTS]; /* guarded by dbx_lock */
    uint64_t dbx_retries[ENDPOINTS];                /* guarded by dbx_lock */
    struct histogram dbx_duration[ENDPOINTS];       /* guarded by dbx_lock */

    atomic_uint_fast64_t token_sources[TOKEN_SOURCES];
    atomic_long calls_in_flight;
    atomic_uint_fast64_t connections_opened;
    atomic_uint_fast64_t status_not_refreshed;
    metrics_read_fn in_flight_read; /* set by main before other threads render */
    const void *in_flight_ctx;
};

/* Index of `value` in `names`, or `count` ("other") when absent. */
static size_t label_index(const char *const *names, size_t count, const char *value)
{
    if (!value)
        return count;
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], value) == 0)
            return i;
    return count;
}

static const char *label_name(const char *const *names, size_t count, size_t index)
{
    return index < count ? names[index] : "other";
}

static void histogram_observe(struct histogram *h, const double *bounds, size_t n_bounds,
                              double value)
{
    size_t i = 0;

    /* A clock step or a NaN must not poison _sum for the life of the process. */
    if (!(value >= 0))
        value = 0;
    while (i < n_bounds && value > bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += value;
}

struct metrics *metrics_new(const char *version)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->version = strdup(version ? version : "");
    if (!m->version) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->calls_lock, NULL);
    pthread_mutex_init(&m->dbx_lock, NULL);
    snprintf(m->status_names[STATUS_ERROR], sizeof(m->status_names[0]), "error");
    snprintf(m->status_names[STATUS_OTHER], sizeof(m->status_names[0]), "other");
    m->status_used = 1;
    atomic_init(&m->calls_in_flight, 0);
    atomic_init(&m->connections_opened, 0);
    atomic_init(&m->status_not_refreshed, 0);
    for (size_t i = 0; i < TOKEN_SOURCES; i++)
        atomic_init(&m->token_sources[i], 0);
    return m;
}

struct metrics *metrics_free(struct metrics *metrics)
{
    if (!metrics)
        return NULL;
    pthread_mutex_destroy(&metrics->calls_lock);
    pthread_mutex_destroy(&metrics->dbx_lock);
    free(metrics->version);
    free(metrics);
    return NULL;
}

void metrics_request_done(struct metrics *metrics, const char *task_type, const char *operation,
                          grpc_status_code code, double seconds)
{
    size_t t, o, c;

    if (!metrics)
        return;
    t = label_index(task_type_names, ELEMENTSOF(task_type_names), task_type);
    o = label_index(operation_names, ELEMENTSOF(operation_names), operation);
    c = (code >= 0 && (size_t)code < GRPC_CODES) ? (size_t)code : GRPC_STATUS_UNKNOWN;

    pthread_mutex_lock(&metrics->calls_lock);
    if (code == GRPC_STATUS_OK)
        metrics->success[t][o]++;
    else
        metrics->failure[t][o][c]++;
    histogram_observe(&metrics->latency[t][o], seconds_bounds, ELEMENTSOF(seconds_bounds), seconds);
    pthread_mutex_unlock(&metrics->calls_lock);
}

void metrics_input_bytes(struct metrics *metrics, const char *task_type, size_t bytes)
{
    size_t t;

    if (!metrics)
        return;
    t = label_index(task_type_names, ELEMENTSOF(task_type_names), task_type);
    pthread_mutex_lock(&metrics->calls_lock);
    histogram_observe(&metrics->input_bytes[t], bytes_bounds, ELEMENTSOF(bytes_bounds),
                      (double)bytes);
    pthread_mutex_unlock(&metrics->calls_lock);
}

/* The slot of an HTTP status, naming a free one on first sight. dbx_lock held. */
static size_t status_slot(struct metrics *m, long http_status)
{
    char name[8];

    if (http_status == 0)
        return STATUS_ERROR;
    if (http_status < 100 || http_status > 599)
        return STATUS_OTHER;
    snprintf(name, sizeof(name), "%ld", http_status);
    for (size_t i = 1; i < m->status_used; i++)
        if (strcmp(m->status_names[i], name) == 0)
            return i;
    if (m->status_used == STATUS_OTHER)
        return STATUS_OTHER;
    memcpy(m->status_names[m->status_used], name, sizeof(name));
    return m->status_used++;
}

void metrics_databricks_request(struct metrics *metrics, const char *endpoint, long http_status,
                                double seconds, long new_connections)
{
    size_t e;

    if (!metrics)
        return;
    e = label_index(endpoint_names, ELEMENTSOF(endpoint_names), endpoint);
    pthread_mutex_lock(&metrics->dbx_lock);
    metrics->dbx_requests[e][status_slot(metrics, http_status)]++;
    histogram_observe(&metrics->dbx_duration[e], seconds_bounds, ELEMENTSOF(seconds_bounds),
                      seconds);
    pthread_mutex_unlock(&metrics->dbx_lock);
    if (new_connections > 0)
        atomic_fetch_add(&metrics->connections_opened, (uint_fast64_t)new_connections);
}

void metrics_databricks_retry(struct metrics *metrics, const char *endpoint)
{
    size_t e;

    if (!metrics)
        return;
    e = label_index(endpoint_names, ELEMENTSOF(endpoint_names), endpoint);
    pthread_mutex_lock(&metrics->dbx_lock);
    metrics->dbx_retries[e]++;
    pthread_mutex_unlock(&metrics->dbx_lock);
}

void metrics_token_source(struct metrics *metrics, const char *source)
{
    if (!metrics)
        return;
    atomic_fetch_add(&metrics->token_sources[label_index(token_source_names,
                                                         ELEMENTSOF(token_source_names), source)],
                     1);
}

void metrics_status_not_refreshed(struct metrics *metrics)
{
    atomic_fetch_add(&metrics->status_not_refreshed, 1);
}

void metrics_calls_in_flight_set(struct metrics *metrics, long value)
{
    if (metrics)
        atomic_store(&metrics->calls_in_flight, value);
}

void metrics_calls_in_flight_add(struct metrics *metrics, long delta)
{
    if (metrics)
        atomic_fetch_add(&metrics->calls_in_flight, delta);
}

void metrics_calls_in_flight_reader(struct metrics *metrics, metrics_read_fn read, const void *ctx)
{
    if (!metrics)
        return;
    metrics->in_flight_read = read;
    metrics->in_flight_ctx = ctx;
}

/* ---- text exposition ----------------------------------------------------- */

struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; the text is incomplete */
};

static void buf_reserve(struct buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->failed || b->len + more + 1 <= b->cap)
        return;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->data = p;
    b->cap = cap;
}

static __attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_putc(struct buf *b, char c)
{
    buf_reserve(b, 1);
    if (b->failed)
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* A label value as the exposition format wants it: \, " and newline escaped. */
static void buf_label_value(struct buf *b, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            buf_printf(b, "\\\\");
        else if (*p == '"')
            buf_printf(b, "\\\"");
        else if (*p == '\n')
            buf_printf(b, "\\n");
        else
            buf_putc(b, *p);
    }
}

/*
 * Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' own clients
 * print with: the fewest digits that read back the same value, exponent form
 * when the exponent is below -4 or at least 6 ("0.005", "262144",
 * "1.048576e+06"), "+Inf", "NaN".
 */
static void format_double(char out[32], double v)
{
    int digits, exponent;
    const char *e;

    if (isnan(v)) {
        snprintf(out, 32, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (digits = 1; digits < 17; digits++) {
        snprintf(out, 32, "%.*e", digits - 1, v);
        if (strtod(out, NULL) == v)
            break;
    }
    snprintf(out, 32, "%.*e", digits - 1, v);
    e = strchr(out, 'e');
    exponent = e ? atoi(e + 1) : 0;
    if (exponent < -4 || exponent >= 6)
        return;
    snprintf(out, 32, "%.*f", digits - 1 - exponent > 0 ? digits - 1 - exponent : 0, v);
}

struct label {
    const char *name;
    const char *value;
};

/* `name{a="x",b="y"} value`; `le` (may be NULL) is appended last, as histograms want. */
static void series(struct buf *b, const char *name, const char *suffix, const struct label *labels,
                   size_t n_labels, const char *le, const char *value)
{
    bool any = n_labels > 0 || le;

    buf_printf(b, "%s%s", name, suffix);
    if (any)
        buf_putc(b, '{');
    for (size_t i = 0; i < n_labels; i++) {
        buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
        buf_label_value(b, labels[i].value);
        buf_putc(b, '"');
    }
    if (le)
        buf_printf(b, "%sle=\"%s\"", n_labels ? "," : "", le);
    if (any)
        buf_putc(b, '}');
    buf_printf(b, " %s\n", value);
}

static void series_u64(struct buf *b, const char *name, const struct label *labels, size_t n_labels,
                       uint64_t value)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRIu64, value);
    series(b, name, "", labels, n_labels, NULL, text);
}

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* _bucket lines (cumulative), _sum and _count of one labelled histogram. */
static void series_histogram(struct buf *b, const char *name, const struct label *labels,
                             size_t n_labels, const struct histogram *h, const double *bounds,
                             size_t n_bounds)
{
    uint64_t cumulative = 0;
    char le[32], text[32];

    for (size_t i = 0; i <= n_bounds; i++) {
        cumulative += h->buckets[i];
        if (i < n_bounds)
            format_double(le, bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(text, sizeof(text), "%" PRIu64, cumulative);
        series(b, name, "_bucket", labels, n_labels, le, text);
    }
    format_double(text, h->sum);
    series(b, name, "_sum", labels, n_labels, NULL, text);
    snprintf(text, sizeof(text), "%" PRIu64, h->count);
    series(b, name, "_count", labels, n_labels, NULL, text);
}

static const char *task_label(size_t t)
{
    return label_name(task_type_names, ELEMENTSOF(task_type_names), t);
}

static const char *operation_label(size_t o)
{
    return label_name(operation_names, ELEMENTSOF(operation_names), o);
}

static const char *endpoint_label(size_t e)
{
    return label_name(endpoint_names, ELEMENTSOF(endpoint_names), e);
}

static void render_calls(struct buf *b, const struct metrics *m)
{
    static const char success[] = "flyte_connector_requests_success_total";
    static const char failure[] = "flyte_connector_requests_failure_total";
    static const char latency[] = "flyte_connector_request_latency_seconds";
    static const char input[] = "flyte_connector_input_literal_bytes";

    header(b, success, "counter", "Total number of successful requests");
    for (size_t t = 0; t < TASK_TYPES; t++)
        for (size_t o = 0; o < OPERATIONS; o++) {
            struct label l[] = {{"task_type", task_label(t)}, {"operation", operation_label(o)}};
            if (m->success[t][o])
                series_u64(b, success, l, ELEMENTSOF(l), m->success[t][o]);
        }

    header(b, failure, "counter", "Total number of failed requests");
    for (size_t t = 0; t < TASK_TYPES; t++)
        for (size_t o = 0; o < OPERATIONS; o++)
            for (size_t c = 0; c < GRPC_CODES; c++) {
                struct label l[] = {{"task_type", task_label(t)},
                                    {"operation", operation_label(o)},
                                    {"error_code", status_name((grpc_status_code)c)}};
                if (m->failure[t][o][c])
                    series_u64(b, failure, l, ELEMENTSOF(l), m->failure[t][o][c]);
            }

    header(b, latency, "histogram", "Time spent processing connector requests");
    for (size_t t = 0; t < TASK_TYPES; t++)
        for (size_t o = 0; o < OPERATIONS; o++) {
            struct label l[] = {{"task_type", task_label(t)}, {"operation", operation_label(o)}};
            if (m->latency[t][o].count)
                series_histogram(b, latency, l, ELEMENTSOF(l), &m->latency[t][o], seconds_bounds,
                                 ELEMENTSOF(seconds_bounds));
        }

    header(b, input, "histogram", "Size of input literals of CreateTask requests in bytes");
    for (size_t t = 0; t < TASK_TYPES; t++) {
        struct label l[] = {{"task_type", task_label(t)}};
        if (m->input_bytes[t].count)
            series_histogram(b, input, l, ELEMENTSOF(l), &m->input_bytes[t], bytes_bounds,
                             ELEMENTSOF(bytes_bounds));
    }
}

static void render_databricks(struct buf *b, const struct metrics *m)
{
    static const char requests[] = "fdc_databricks_requests_total";
    static const char retries[] = "fdc_databricks_retries_total";
    static const char duration[] = "fdc_databricks_request_duration_seconds";

    header(b, requests, "counter", "HTTP attempts to the Databricks Jobs API by answer status");
    for (size_t e = 0; e < ENDPOINTS; e++)
        for (size_t s = 0; s < STATUS_SLOTS; s++) {
            struct label l[] = {{"endpoint", endpoint_label(e)}, {"status", m->status_names[s]}};
            if (m->dbx_requests[e][s])
                series_u64(b, requests, l, ELEMENTSOF(l), m->dbx_requests[e][s]);
        }

    header(b, retries, "counter", "Databricks requests retried after a transient failure");
    for (size_t e = 0; e < ENDPOINTS; e++) {
        struct label l[] = {{"endpoint", endpoint_label(e)}};
        if (m->dbx_retries[e])
            series_u64(b, retries, l, ELEMENTSOF(l), m->dbx_retries[e]);
    }

    header(b, duration, "histogram", "Duration of one HTTP attempt to Databricks");
    for (size_t e = 0; e < ENDPOINTS; e++) {
        struct label l[] = {{"endpoint", endpoint_label(e)}};
        if (m->dbx_duration[e].count)
            series_histogram(b, duration, l, ELEMENTSOF(l), &m->dbx_duration[e], seconds_bounds,
                             ELEMENTSOF(seconds_bounds));
    }
}

char *metrics_render(struct metrics *metrics)
{
    struct buf b = {0};
    long in_flight;
    struct label version[1];

    if (!metrics)
        return NULL;

    pthread_mutex_lock(&metrics->calls_lock);
    render_calls(&b, metrics);
    pthread_mutex_unlock(&metrics->calls_lock);

    pthread_mutex_lock(&metrics->dbx_lock);
    render_databricks(&b, metrics);
    pthread_mutex_unlock(&metrics->dbx_lock);

    header(&b, "fdc_token_source_total", "counter",
           "Calls to Databricks by where their token came from");
    for (size_t i = 0; i < TOKEN_SOURCES; i++) {
        struct label l[] = {
            {"source", label_name(token_source_names, ELEMENTSOF(token_source_names), i)}};
        uint64_t n = atomic_load(&metrics->token_sources[i]);

        if (n)
            series_u64(&b, "fdc_token_source_total", l, ELEMENTSOF(l), n);
    }
    header(&b, "fdc_status_not_refreshed_total", "counter",
           "GetTask answered with the last known phase because Databricks trouble outlasted the "
           "retries");
    series_u64(&b, "fdc_status_not_refreshed_total", NULL, 0,
               atomic_load(&metrics->status_not_refreshed));
    header(&b, "fdc_databricks_connections_opened_total", "counter",
           "New connections (TCP and TLS handshakes) opened to Databricks");
    series_u64(&b, "fdc_databricks_connections_opened_total", NULL, 0,
               atomic_load(&metrics->connections_opened));

    in_flight = metrics->in_flight_read ? metrics->in_flight_read(metrics->in_flight_ctx)
                                        : atomic_load(&metrics->calls_in_flight);
    header(&b, "fdc_grpc_calls_in_flight", "gauge", "gRPC calls accepted and not yet answered");
    buf_printf(&b, "fdc_grpc_calls_in_flight %ld\n", in_flight);

    version[0] = (struct label){"version", metrics->version};
    header(&b, "fdc_build_info", "gauge", "Version of the running connector; always 1");
    series(&b, "fdc_build_info", "", version, 1, NULL, "1");

    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
