/* Unit tests for metrics.c: exact exposition lines after updates, histogram buckets (cumulative,
 * inclusive upper bounds, _sum, _count), gRPC code names, label escaping, the bounded HTTP status
 * table, "other" buckets, the in-flight gauge, NULL registries, and concurrent updates. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* True when `text` has `line` as one whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* Number of lines starting with `prefix`. */
static int count_prefixed(const char *text, const char *prefix)
{
    int count = 0;
    size_t n = strlen(prefix);

    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            count++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return count;
}

#define assert_line(text, line)                                                                    \
    do {                                                                                           \
        if (!has_line((text), (line)))                                                             \
            fail_msg("missing line: %s\n--- rendered ---\n%s", (line), (text));                    \
    } while (0)

#define assert_no_line(text, line)                                                                 \
    do {                                                                                           \
        if (has_line((text), (line)))                                                              \
            fail_msg("unexpected line: %s", (line));                                               \
    } while (0)

static void test_empty_registry_exact(void **state)
{
    (void)state;
    const char *expected =
        "# HELP flyte_connector_requests_success_total Total number of successful requests\n"
        "# TYPE flyte_connector_requests_success_total counter\n"
        "# HELP flyte_connector_requests_failure_total Total number of failed requests\n"
        "# TYPE flyte_connector_requests_failure_total counter\n"
        "# HELP flyte_connector_request_latency_seconds Time spent processing connector "
        "requests\n"
        "# TYPE flyte_connector_request_latency_seconds histogram\n"
        "# HELP flyte_connector_input_literal_bytes Size of input literals of CreateTask "
        "requests in bytes\n"
        "# TYPE flyte_connector_input_literal_bytes histogram\n"
        "# HELP fdc_databricks_requests_total HTTP attempts to the Databricks Jobs API by "
        "answer status\n"
        "# TYPE fdc_databricks_requests_total counter\n"
        "# HELP fdc_databricks_retries_total Databricks requests retried after a transient "
        "failure\n"
        "# TYPE fdc_databricks_retries_total counter\n"
        "# HELP fdc_databricks_request_duration_seconds Duration of one HTTP attempt to "
        "Databricks\n"
        "# TYPE fdc_databricks_request_duration_seconds histogram\n"
        "# HELP fdc_token_source_total Calls to Databricks by where their token came from\n"
        "# TYPE fdc_token_source_total counter\n"
        "# HELP fdc_status_not_refreshed_total GetTask answered with the last known phase "
        "because Databricks trouble outlasted the retries\n"
        "# TYPE fdc_status_not_refreshed_total counter\n"
        "fdc_status_not_refreshed_total 0\n"
        "# HELP fdc_databricks_connections_opened_total New connections (TCP and TLS "
        "handshakes) opened to Databricks\n"
        "# TYPE fdc_databricks_connections_opened_total counter\n"
        "fdc_databricks_connections_opened_total 0\n"
        "# HELP fdc_grpc_calls_in_flight gRPC calls accepted and not yet answered\n"
        "# TYPE fdc_grpc_calls_in_flight gauge\n"
        "fdc_grpc_calls_in_flight 0\n"
        "# HELP fdc_build_info Version of the running connector; always 1\n"
        "# TYPE fdc_build_info gauge\n"
        "fdc_build_info{version=\"0.1.0\"} 1\n";
    struct metrics *m = metrics_new("0.1.0");
    char *text;

    assert_non_null(m);
    text = metrics_render(m);
    assert_non_null(text);
    assert_string_equal(text, expected);
    free(text);
    metrics_free(m);
}

static void test_request_counters(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char *text;

    metrics_request_done(m, "spark", "create", GRPC_STATUS_OK, 0.01);
    metrics_request_done(m, "spark", "create", GRPC_STATUS_OK, 0.02);
    metrics_request_done(m, "databricks", "get", GRPC_STATUS_OK, 0.02);
    metrics_request_done(m, "databricks", "get", GRPC_STATUS_UNAVAILABLE, 1);
    metrics_request_done(m, "databricks", "get", GRPC_STATUS_UNAVAILABLE, 1);
    metrics_request_done(m, "spark", "delete", GRPC_STATUS_PERMISSION_DENIED, 0);
    metrics_request_done(m, "sparkling", "create", GRPC_STATUS_INVALID_ARGUMENT, 0);
    metrics_request_done(m, "", "get", GRPC_STATUS_INVALID_ARGUMENT, 0);
    metrics_request_done(m, NULL, "bogus", GRPC_STATUS_INTERNAL, 0);
    text = metrics_render(m);

    assert_line(
        text, "flyte_connector_requests_success_total{task_type=\"spark\",operation=\"create\"} 2");
    assert_line(
        text,
        "flyte_connector_requests_success_total{task_type=\"databricks\",operation=\"get\"} 1");
    assert_int_equal(count_prefixed(text, "flyte_connector_requests_success_total{"), 2);
    assert_line(text, "flyte_connector_requests_failure_total{task_type=\"databricks\",operation="
                      "\"get\",error_code=\"UNAVAILABLE\"} 2");
    assert_line(text, "flyte_connector_requests_failure_total{task_type=\"spark\",operation="
                      "\"delete\",error_code=\"PERMISSION_DENIED\"} 1");
    /* An unknown task type, an empty one and none at all share "other". */
    assert_line(text, "flyte_connector_requests_failure_total{task_type=\"other\",operation="
                      "\"create\",error_code=\"INVALID_ARGUMENT\"} 1");
    assert_line(text, "flyte_connector_requests_failure_total{task_type=\"other\",operation="
                      "\"get\",error_code=\"INVALID_ARGUMENT\"} 1");
    assert_line(text, "flyte_connector_requests_failure_total{task_type=\"other\",operation="
                      "\"other\",error_code=\"INTERNAL\"} 1");
    assert_int_equal(count_prefixed(text, "flyte_connector_requests_failure_total{"), 5);
    /* Failures count in the latency histogram too. */
    assert_line(text, "flyte_connector_request_latency_seconds_count{task_type=\"databricks\","
                      "operation=\"get\"} 3");
    assert_line(text, "flyte_connector_request_latency_seconds_count{task_type=\"spark\","
                      "operation=\"create\"} 2");
    assert_no_line(text, "sparkling");
    free(text);
    metrics_free(m);
}

/* Every gRPC code by its number, written from the gRPC spec (doc/statuscodes.md). */
static void test_grpc_code_names(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *name;
    } cases[] = {
        {1, "CANCELLED"},
        {2, "UNKNOWN"},
        {3, "INVALID_ARGUMENT"},
        {4, "DEADLINE_EXCEEDED"},
        {5, "NOT_FOUND"},
        {6, "ALREADY_EXISTS"},
        {7, "PERMISSION_DENIED"},
        {8, "RESOURCE_EXHAUSTED"},
        {9, "FAILED_PRECONDITION"},
        {10, "ABORTED"},
        {11, "OUT_OF_RANGE"},
        {12, "UNIMPLEMENTED"},
        {13, "INTERNAL"},
        {14, "UNAVAILABLE"},
        {15, "DATA_LOSS"},
        {16, "UNAUTHENTICATED"},
        {17, "UNKNOWN"},
        {-1, "UNKNOWN"},
        {1000, "UNKNOWN"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct metrics *m = metrics_new("v");
        char line[200];
        char *text;

        metrics_request_done(m, "spark", "get", (grpc_status_code)cases[i].code, 0);
        text = metrics_render(m);
        snprintf(line, sizeof(line),
                 "flyte_connector_requests_failure_total{task_type=\"spark\",operation=\"get\","
                 "error_code=\"%s\"} 1",
                 cases[i].name);
        assert_line(text, line);
        assert_int_equal(count_prefixed(text, "flyte_connector_requests_failure_total{"), 1);
        assert_int_equal(count_prefixed(text, "flyte_connector_requests_success_total{"), 0);
        free(text);
        metrics_free(m);
    }
}

static void test_latency_histogram(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.005\"} 3",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.01\"} 4",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.025\"} 4",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.05\"} 4",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.1\"} 4",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.25\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"0.5\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"1\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"2.5\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"5\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"10\"} 5",
        "_bucket{task_type=\"spark\",operation=\"get\",le=\"+Inf\"} 6",
        "_sum{task_type=\"spark\",operation=\"get\"} 16.26171875",
        "_count{task_type=\"spark\",operation=\"get\"} 6",
    };
    struct metrics *m = metrics_new("v");
    char line[200];
    char *text;

    /* Binary fractions keep _sum exact. 0.25 sits on a bound: buckets are "<= le". A negative
     * duration (clock step) and NaN count as 0 so _sum stays usable. */
    metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, 0.00390625);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, -3);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, NAN);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, 0.0078125);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_NOT_FOUND, 0.25);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, 16);
    text = metrics_render(m);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        snprintf(line, sizeof(line), "flyte_connector_request_latency_seconds%s", expected[i]);
        assert_line(text, line);
    }
    assert_int_equal(count_prefixed(text, "flyte_connector_request_latency_seconds_bucket{"), 12);
    free(text);
    metrics_free(m);
}

static void test_histogram_exact_bound(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char *text;

    metrics_request_done(m, "spark", "create", GRPC_STATUS_OK, 0.005);
    metrics_request_done(m, "spark", "create", GRPC_STATUS_OK, 10);
    text = metrics_render(m);
    assert_line(text, "flyte_connector_request_latency_seconds_bucket{task_type=\"spark\","
                      "operation=\"create\",le=\"0.005\"} 1");
    assert_line(text, "flyte_connector_request_latency_seconds_bucket{task_type=\"spark\","
                      "operation=\"create\",le=\"5\"} 1");
    assert_line(text, "flyte_connector_request_latency_seconds_bucket{task_type=\"spark\","
                      "operation=\"create\",le=\"10\"} 2");
    assert_line(text, "flyte_connector_request_latency_seconds_sum{task_type=\"spark\","
                      "operation=\"create\"} 10.005");
    free(text);
    metrics_free(m);
}

static void test_input_bytes_histogram(void **state)
{
    (void)state;
    static const struct {
        const char *le;
        int cumulative;
    } expected[] = {
        {"256", 2},    {"1024", 3},         {"4096", 3},         {"16384", 3},         {"65536", 3},
        {"262144", 3}, {"1.048576e+06", 4}, {"4.194304e+06", 4}, {"1.6777216e+07", 5}, {"+Inf", 6},
    };
    struct metrics *m = metrics_new("v");
    char line[200];
    char *text;

    metrics_input_bytes(m, "databricks", 0);
    metrics_input_bytes(m, "databricks", 256);
    metrics_input_bytes(m, "databricks", 257);
    metrics_input_bytes(m, "databricks", 1048576);
    metrics_input_bytes(m, "databricks", 16000000);
    metrics_input_bytes(m, "databricks", 40000000);
    metrics_input_bytes(m, "hive", 10);
    text = metrics_render(m);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        snprintf(
            line, sizeof(line),
            "flyte_connector_input_literal_bytes_bucket{task_type=\"databricks\",le=\"%s\"} %d",
            expected[i].le, expected[i].cumulative);
        assert_line(text, line);
    }
    assert_line(text,
                "flyte_connector_input_literal_bytes_sum{task_type=\"databricks\"} 5.7049089e+07");
    assert_line(text, "flyte_connector_input_literal_bytes_count{task_type=\"databricks\"} 6");
    assert_line(text, "flyte_connector_input_literal_bytes_count{task_type=\"other\"} 1");
    assert_int_equal(count_prefixed(text, "flyte_connector_input_literal_bytes_count{"), 2);
    free(text);
    metrics_free(m);
}

static void test_databricks_families(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char *text;

    metrics_databricks_request(m, "runs/submit", 200, 0.125, 1);
    metrics_databricks_request(m, "runs/submit", 200, 0.5, 0);
    metrics_databricks_request(m, "runs/get", 429, 0.03125, 2);
    metrics_databricks_request(m, "runs/get", 0, 30, 1);
    metrics_databricks_request(m, "runs/cancel", 503, 0, -4);
    metrics_databricks_request(m, "jobs/list", 404, 0, 0);
    metrics_databricks_request(m, "runs/get-output", 400, 0.01, 0);
    metrics_databricks_retry(m, "runs/get");
    metrics_databricks_retry(m, "runs/get");
    metrics_databricks_retry(m, "runs/cancel");
    metrics_databricks_retry(m, NULL);
    text = metrics_render(m);

    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/submit\",status=\"200\"} 2");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"429\"} 1");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"error\"} 1");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/cancel\",status=\"503\"} 1");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"other\",status=\"404\"} 1");
    assert_line(text,
                "fdc_databricks_requests_total{endpoint=\"runs/get-output\",status=\"400\"} 1");
    assert_int_equal(count_prefixed(text, "fdc_databricks_requests_total{"), 6);
    assert_line(text, "fdc_databricks_retries_total{endpoint=\"runs/get\"} 2");
    assert_line(text, "fdc_databricks_retries_total{endpoint=\"runs/cancel\"} 1");
    assert_line(text, "fdc_databricks_retries_total{endpoint=\"other\"} 1");
    assert_int_equal(count_prefixed(text, "fdc_databricks_retries_total{"), 3);
    assert_line(text, "fdc_databricks_request_duration_seconds_bucket{endpoint=\"runs/submit\","
                      "le=\"0.1\"} 0");
    assert_line(text, "fdc_databricks_request_duration_seconds_bucket{endpoint=\"runs/submit\","
                      "le=\"0.25\"} 1");
    assert_line(text, "fdc_databricks_request_duration_seconds_bucket{endpoint=\"runs/submit\","
                      "le=\"0.5\"} 2");
    assert_line(text, "fdc_databricks_request_duration_seconds_sum{endpoint=\"runs/submit\"} "
                      "0.625");
    assert_line(text, "fdc_databricks_request_duration_seconds_bucket{endpoint=\"runs/get\","
                      "le=\"10\"} 1");
    assert_line(text, "fdc_databricks_request_duration_seconds_bucket{endpoint=\"runs/get\","
                      "le=\"+Inf\"} 2");
    assert_line(text, "fdc_databricks_request_duration_seconds_sum{endpoint=\"runs/get\"} "
                      "30.03125");
    /* Negative connection counts (curl never gives them) add nothing. */
    assert_line(text, "fdc_databricks_connections_opened_total 4");
    metrics_status_not_refreshed(m);
    metrics_status_not_refreshed(m);
    free(text);
    text = metrics_render(m);
    assert_line(text, "fdc_status_not_refreshed_total 2");
    free(text);
    metrics_free(m);
}

/* Token sources from a fixed list; anything else is "other". */
static void test_token_sources(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char *text;

    metrics_token_source(m, "namespace_secret");
    metrics_token_source(m, "namespace_secret");
    metrics_token_source(m, "default");
    metrics_token_source(m, "oauth");
    metrics_token_source(m, "connection_secret");
    metrics_token_source(m, "resource_meta");
    metrics_token_source(m, "none");
    metrics_token_source(m, "dapi-something-else");
    metrics_token_source(m, NULL);
    metrics_token_source(NULL, "default");
    text = metrics_render(m);
    assert_line(text, "fdc_token_source_total{source=\"namespace_secret\"} 2");
    assert_line(text, "fdc_token_source_total{source=\"default\"} 1");
    assert_line(text, "fdc_token_source_total{source=\"oauth\"} 1");
    assert_line(text, "fdc_token_source_total{source=\"connection_secret\"} 1");
    assert_line(text, "fdc_token_source_total{source=\"resource_meta\"} 1");
    assert_line(text, "fdc_token_source_total{source=\"none\"} 1");
    assert_line(text, "fdc_token_source_total{source=\"other\"} 2");
    assert_null(strstr(text, "dapi-"));
    free(text);
    metrics_free(m);
}

/* 16 distinct statuses get their own series; later ones and non-statuses share "other". */
static void test_status_table_bounded(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char line[120];
    char *text;

    for (int round = 0; round < 2; round++)
        for (long status = 200; status < 230; status++)
            metrics_databricks_request(m, "runs/get", status, 0, 0);
    metrics_databricks_request(m, "runs/get", 99, 0, 0);
    metrics_databricks_request(m, "runs/get", 600, 0, 0);
    metrics_databricks_request(m, "runs/get", -1, 0, 0);
    /* Status names are shared across endpoints: a known one still has its own series. */
    metrics_databricks_request(m, "runs/submit", 205, 0, 0);
    metrics_databricks_request(m, "runs/submit", 404, 0, 0);
    metrics_databricks_request(m, "runs/get", 0, 0, 0);
    text = metrics_render(m);

    for (long status = 200; status < 216; status++) {
        snprintf(line, sizeof(line),
                 "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"%ld\"} 2", status);
        assert_line(text, line);
    }
    assert_no_line(text, "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"216\"} 2");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"other\"} 31");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"error\"} 1");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/submit\",status=\"205\"} 1");
    assert_line(text, "fdc_databricks_requests_total{endpoint=\"runs/submit\",status=\"other\"} 1");
    assert_int_equal(count_prefixed(text, "fdc_databricks_requests_total{"), 16 + 2 + 2);
    free(text);
    metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("1.0 \"beta\"\\x\nnext");
    char *text = metrics_render(m);

    assert_line(text, "fdc_build_info{version=\"1.0 \\\"beta\\\"\\\\x\\nnext\"} 1");
    free(text);
    metrics_free(m);

    m = metrics_new(NULL);
    text = metrics_render(m);
    assert_line(text, "fdc_build_info{version=\"\"} 1");
    free(text);
    metrics_free(m);
}

static long fake_reader(const void *ctx)
{
    return *(const long *)ctx;
}

static void test_calls_in_flight(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    long external = 42;
    char *text;

    metrics_calls_in_flight_set(m, 5);
    metrics_calls_in_flight_add(m, -2);
    text = metrics_render(m);
    assert_line(text, "fdc_grpc_calls_in_flight 3");
    free(text);

    metrics_calls_in_flight_reader(m, fake_reader, &external);
    text = metrics_render(m);
    assert_line(text, "fdc_grpc_calls_in_flight 42");
    free(text);
    external = 7;
    text = metrics_render(m);
    assert_line(text, "fdc_grpc_calls_in_flight 7");
    free(text);

    metrics_calls_in_flight_reader(m, NULL, NULL);
    text = metrics_render(m);
    assert_line(text, "fdc_grpc_calls_in_flight 3");
    free(text);
    metrics_free(m);
}

static void test_null_registry(void **state)
{
    (void)state;
    metrics_request_done(NULL, "spark", "get", GRPC_STATUS_OK, 1);
    metrics_input_bytes(NULL, "spark", 1);
    metrics_databricks_request(NULL, "runs/get", 200, 1, 1);
    metrics_databricks_retry(NULL, "runs/get");
    metrics_calls_in_flight_set(NULL, 1);
    metrics_calls_in_flight_add(NULL, 1);
    metrics_calls_in_flight_reader(NULL, fake_reader, NULL);
    assert_null(metrics_render(NULL));
    assert_null(metrics_free(NULL));
}

/* Every line is a comment or `name[{labels}] value`, and each family's TYPE comes before its
 * series: what a Prometheus scraper insists on. */
static void test_exposition_well_formed(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    char *text, *copy, *save = NULL;
    char typed[16][64];
    size_t n_typed = 0;

    metrics_request_done(m, "spark", "create", GRPC_STATUS_OK, 0.2);
    metrics_request_done(m, "spark", "get", GRPC_STATUS_UNAVAILABLE, 0.2);
    metrics_input_bytes(m, "spark", 1000);
    metrics_databricks_request(m, "runs/get", 200, 0.1, 1);
    metrics_databricks_retry(m, "runs/get");
    text = metrics_render(m);
    assert_int_equal(text[strlen(text) - 1], '\n');
    copy = strdup(text);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64], type[16];
        size_t len;
        int known = 0;

        if (sscanf(line, "# TYPE %63s %15s", name, type) == 2) {
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "histogram") == 0 ||
                        strcmp(type, "gauge") == 0);
            assert_true(n_typed < 16);
            snprintf(typed[n_typed++], sizeof(typed[0]), "%s", name);
            continue;
        }
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        len = strcspn(line, "{ ");
        assert_true(len > 0 && len < sizeof(name));
        for (size_t i = 0; i < n_typed; i++) {
            size_t tl = strlen(typed[i]);
            if (strncmp(line, typed[i], tl) == 0 &&
                (tl == len || strncmp(line + tl, "_bucket", 7) == 0 ||
                 strncmp(line + tl, "_sum", 4) == 0 || strncmp(line + tl, "_count", 6) == 0))
                known = 1;
        }
        if (!known)
            fail_msg("series before its TYPE line: %s", line);
        if (line[len] == '{')
            assert_non_null(strstr(line, "} "));
        assert_true(strchr(line, ' ') != NULL);
    }
    assert_int_equal(n_typed, 12); /* the families, fdc_token_source_total included */
    free(copy);
    free(text);
    metrics_free(m);
}

#define THREADS 8
#define ROUNDS 20000

static void *hammer(void *arg)
{
    struct metrics *m = arg;

    for (int i = 0; i < ROUNDS; i++) {
        metrics_calls_in_flight_add(m, 1);
        metrics_request_done(m, "spark", "get", GRPC_STATUS_OK, 0.001);
        metrics_input_bytes(m, "spark", 100);
        metrics_databricks_request(m, "runs/get", 200 + (i % 20), 0.001, 1);
        metrics_databricks_retry(m, "runs/get");
        metrics_calls_in_flight_add(m, -1);
        if (i % 5000 == 0)
            free(metrics_render(m));
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct metrics *m = metrics_new("v");
    pthread_t threads[THREADS];
    char line[160];
    char *text;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    text = metrics_render(m);
    snprintf(line, sizeof(line),
             "flyte_connector_requests_success_total{task_type=\"spark\",operation=\"get\"} %d",
             THREADS * ROUNDS);
    assert_line(text, line);
    snprintf(line, sizeof(line),
             "flyte_connector_request_latency_seconds_count{task_type=\"spark\",operation=\"get\"} "
             "%d",
             THREADS * ROUNDS);
    assert_line(text, line);
    snprintf(line, sizeof(line),
             "flyte_connector_input_literal_bytes_count{task_type=\"spark\"} %d", THREADS * ROUNDS);
    assert_line(text, line);
    snprintf(line, sizeof(line), "fdc_databricks_retries_total{endpoint=\"runs/get\"} %d",
             THREADS * ROUNDS);
    assert_line(text, line);
    snprintf(line, sizeof(line), "fdc_databricks_connections_opened_total %d", THREADS * ROUNDS);
    assert_line(text, line);
    /* 20 statuses: 16 named, each seen THREADS * ROUNDS / 20 times, 4 in "other". */
    snprintf(line, sizeof(line),
             "fdc_databricks_requests_total{endpoint=\"runs/get\",status=\"other\"} %d",
             THREADS * ROUNDS / 20 * 4);
    assert_line(text, line);
    assert_int_equal(count_prefixed(text, "fdc_databricks_requests_total{"), 17);
    assert_line(text, "fdc_grpc_calls_in_flight 0");
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry_exact),   cmocka_unit_test(test_request_counters),
        cmocka_unit_test(test_grpc_code_names),        cmocka_unit_test(test_latency_histogram),
        cmocka_unit_test(test_histogram_exact_bound),  cmocka_unit_test(test_input_bytes_histogram),
        cmocka_unit_test(test_databricks_families),    cmocka_unit_test(test_status_table_bounded),
        cmocka_unit_test(test_token_sources),          cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_calls_in_flight),        cmocka_unit_test(test_null_registry),
        cmocka_unit_test(test_exposition_well_formed), cmocka_unit_test(test_concurrent_updates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
