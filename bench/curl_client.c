/*
 * curl_client.c - the benchmark's Databricks-side limit: one thread, one
 * libcurl multi handle, no gRPC. It keeps N runs/get requests in flight to
 * the same nginx the daemon talks to, each for a distinct run id, parses
 * every answer with cJSON and checks the run's state, and reports
 * throughput, latency percentiles and errors as one JSON line on stdout.
 *
 *   curl_client --base https://HOST:PORT --ca-file FILE --concurrency N
 *               [--duration S] [--warmup S] [--http 1.1|2]
 *               [--max-host-connections N] [--runs N]
 *
 * Every GetTask costs the daemon one runs/get, so what this client reaches
 * at the same concurrency is what the machine allows on the Databricks side.
 * It uses the settings the shared notes measured fastest: HTTP/2 over one
 * connection (CURLPIPE_MULTIPLEX, PIPEWAIT, max host connections 1), easy
 * handles reused for the next request.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ERRORS_SHOWN 5
#define BODY_MAX 65536

struct transfer {
    CURL *easy;
    long run;
    int64_t started_ns;
    char body[BODY_MAX];
    size_t body_len;
    bool too_large;
    char error[CURL_ERROR_SIZE];
};

struct client {
    CURLM *multi;
    struct curl_slist *headers;
    const char *base;
    const char *ca_file;
    long http_version;
    long runs;
    long run_cursor;
    unsigned char *run_busy;
    uint32_t *latencies_us;
    size_t latencies_len, latencies_cap;
    long measured, total, errors, connections;
    int64_t window_start_ns, window_end_ns;
    int errors_shown;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t on_data(char *data, size_t size, size_t count, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * count;

    if (t->body_len + n >= BODY_MAX) {
        t->too_large = true;
        return 0;
    }
    memcpy(t->body + t->body_len, data, n);
    t->body_len += n;
    t->body[t->body_len] = '\0';
    return n;
}

static long take_run(struct client *c)
{
    for (long tries = 0; tries < c->runs; tries++) {
        long i = c->run_cursor;
        c->run_cursor = (c->run_cursor + 1) % c->runs;
        if (!c->run_busy[i]) {
            c->run_busy[i] = 1;
            return i;
        }
    }
    return -1;
}

static int start(struct client *c, struct transfer *t)
{
    char url[512];

    t->run = take_run(c);
    if (t->run < 0)
        return -1;
    snprintf(url, sizeof(url), "%s/api/2.1/jobs/runs/get?run_id=%ld", c->base, t->run + 1);
    t->body_len = 0;
    t->too_large = false;
    t->error[0] = '\0';
    t->started_ns = now_ns();
    /* Options stay set on a reused handle; only the URL changes. */
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK)
        return -1;
    return 0;
}

static bool answer_ok(const struct transfer *t, CURLcode result, long status, char *why,
                      size_t size)
{
    cJSON *run;
    const cJSON *state, *life;
    bool ok;

    if (result != CURLE_OK) {
        snprintf(why, size, "curl: %s", t->error[0] ? t->error : curl_easy_strerror(result));
        return false;
    }
    if (status != 200) {
        snprintf(why, size, "HTTP %ld", status);
        return false;
    }
    run = cJSON_ParseWithLength(t->body, t->body_len);
    state = cJSON_GetObjectItemCaseSensitive(run, "state");
    life = cJSON_GetObjectItemCaseSensitive(state, "life_cycle_state");
    ok = cJSON_IsString(life) && strcmp(life->valuestring, "RUNNING") == 0;
    if (!ok)
        snprintf(why, size, "runs/get answer without life_cycle_state RUNNING");
    cJSON_Delete(run);
    return ok;
}

static void finish(struct client *c, struct transfer *t, CURLcode result)
{
    int64_t done = now_ns();
    long status = 0, connects = 0;
    char why[CURL_ERROR_SIZE + 64];
    bool ok;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    c->connections += connects;
    ok = answer_ok(t, result, status, why, sizeof(why));
    c->total++;
    if (!ok) {
        c->errors++;
        if (c->errors_shown++ < MAX_ERRORS_SHOWN)
            fprintf(stderr, "curl_client: bad answer: %s\n", why);
    }
    if (ok && done >= c->window_start_ns && done < c->window_end_ns) {
        if (c->latencies_len == c->latencies_cap) {
            size_t cap = c->latencies_cap ? c->latencies_cap * 2 : 65536;
            uint32_t *grown = realloc(c->latencies_us, cap * sizeof(*grown));
            if (!grown) {
                fprintf(stderr, "curl_client: out of memory\n");
                exit(1);
            }
            c->latencies_us = grown;
            c->latencies_cap = cap;
        }
        c->latencies_us[c->latencies_len++] = (uint32_t)((done - t->started_ns) / 1000);
        c->measured++;
    }
    c->run_busy[t->run] = 0;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    return (double)sorted[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}

static void usage_exit(void)
{
    fprintf(stderr, "usage: curl_client --base https://HOST:PORT --ca-file FILE --concurrency N\n"
                    "                   [--duration S] [--warmup S] [--http 1.1|2]\n"
                    "                   [--max-host-connections N] [--runs N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct client c = {.http_version = CURL_HTTP_VERSION_2TLS, .runs = 100000};
    struct transfer *transfers;
    long concurrency = 0, max_host_connections = 1, in_flight = 0;
    double duration_s = 5, warmup_s = 1;
    int64_t begin;

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--base") == 0)
            c.base = v;
        else if (strcmp(a, "--ca-file") == 0)
            c.ca_file = v;
        else if (strcmp(a, "--concurrency") == 0)
            concurrency = atol(v);
        else if (strcmp(a, "--duration") == 0)
            duration_s = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup_s = atof(v);
        else if (strcmp(a, "--http") == 0)
            c.http_version = strcmp(v, "1.1") == 0 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS;
        else if (strcmp(a, "--max-host-connections") == 0)
            max_host_connections = atol(v);
        else if (strcmp(a, "--runs") == 0)
            c.runs = atol(v);
        else
            usage_exit();
    }
    if (argc % 2 != 1 || !c.base || concurrency <= 0 || c.runs <= concurrency || duration_s <= 0)
        usage_exit();

    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.multi = curl_multi_init();
    curl_multi_setopt(c.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c.multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    curl_multi_setopt(c.multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
    c.headers = curl_slist_append(NULL, "Content-Type: application/json");
    c.headers = curl_slist_append(c.headers, "Authorization: Bearer bench-token");
    c.run_busy = calloc((size_t)c.runs, 1);
    transfers = calloc((size_t)concurrency, sizeof(*transfers));
    if (!c.multi || !c.headers || !c.run_busy || !transfers) {
        fprintf(stderr, "curl_client: out of memory\n");
        return 1;
    }
    for (long i = 0; i < concurrency; i++) {
        struct transfer *t = &transfers[i];
        t->easy = curl_easy_init();
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
        curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, c.headers);
        curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "bench-curl-client");
        curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error);
        curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, c.http_version);
        curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, 10000L);
        if (c.ca_file)
            curl_easy_setopt(t->easy, CURLOPT_CAINFO, c.ca_file);
    }

    begin = now_ns();
    c.window_start_ns = begin + (int64_t)(warmup_s * 1e9);
    c.window_end_ns = c.window_start_ns + (int64_t)(duration_s * 1e9);
    for (long i = 0; i < concurrency; i++)
        if (start(&c, &transfers[i]) == 0)
            in_flight++;
    while (in_flight > 0) {
        int running = 0, pending = 0;
        CURLMsg *msg;

        curl_multi_perform(c.multi, &running);
        while ((msg = curl_multi_info_read(c.multi, &pending))) {
            struct transfer *t = NULL;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
            curl_multi_remove_handle(c.multi, easy);
            finish(&c, t, result);
            in_flight--;
            /* Refill before polling: an idle poll sleeps its whole timeout. */
            if (now_ns() < c.window_end_ns && start(&c, t) == 0)
                in_flight++;
        }
        if (in_flight > 0)
            curl_multi_poll(c.multi, NULL, 0, 100, NULL);
    }

    qsort(c.latencies_us, c.latencies_len, sizeof(uint32_t), compare_u32);
    printf("{\"tool\": \"curl_client\", \"concurrency\": %ld, \"http\": \"%s\", "
           "\"seconds\": %.3f, \"calls\": %ld, \"throughput\": %.1f, \"p50_ms\": %.3f, "
           "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"errors\": %ld, "
           "\"connections\": %ld, \"total_calls\": %ld}\n",
           concurrency, c.http_version == CURL_HTTP_VERSION_1_1 ? "1.1" : "2", duration_s,
           c.measured, (double)c.measured / duration_s,
           percentile(c.latencies_us, c.latencies_len, 0.50),
           percentile(c.latencies_us, c.latencies_len, 0.90),
           percentile(c.latencies_us, c.latencies_len, 0.99),
           percentile(c.latencies_us, c.latencies_len, 0.999), c.errors, c.connections, c.total);

    for (long i = 0; i < concurrency; i++)
        curl_easy_cleanup(transfers[i].easy);
    curl_multi_cleanup(c.multi);
    curl_slist_free_all(c.headers);
    curl_global_cleanup();
    free(transfers);
    free(c.run_busy);
    free(c.latencies_us);
    return c.errors ? 3 : 0;
}
