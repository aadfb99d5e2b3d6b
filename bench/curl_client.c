/*
 * curl_client.c - the benchmark's Databricks-side limit: one thread, one
 * libcurl multi handle, no gRPC. It keeps N runs/get requests in flight to
 * the same nginx the daemon talks to (closed loop) or starts them at a fixed
 * rate (open loop), each for a distinct run id, parses every answer with
 * cJSON and checks the run's state, and reports throughput, latency
 * percentiles and errors as one JSON line on stdout.
 *
 *   curl_client --base https://HOST:PORT --ca-file FILE
 *               (--concurrency N | --rate CALLS_PER_S)
 *               [--duration S] [--warmup S] [--http 1.1|2]
 *               [--max-host-connections N] [--runs N]
 *
 * Every GetTask costs the daemon one runs/get, so what this client reaches
 * at the same concurrency is what the machine allows on the Databricks side.
 * It uses the settings measured fastest on these machines: HTTP/2 over one
 * connection (CURLPIPE_MULTIPLEX, PIPEWAIT, max host connections 1), easy
 * handles reused for the next request.
 *
 * In rate mode a request is due every 1/rate seconds from the start, and
 * every request whose due time has passed is started, so a client that fell
 * behind catches up. Its latency runs from the moment it was due, not the
 * moment it left: a generator that falls behind shows it in the tail instead
 * of hiding it (coordinated omission). Easy handles come from a pool that
 * grows as needed up to MAX_IN_FLIGHT; a request that comes due with that
 * many in flight counts as an error. The JSON line gives "concurrency" 0 in
 * rate mode and "rate" 0 in closed-loop mode.
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
/* Rate mode: a bound on memory (one struct transfer each) and on the load a
 * stalled server can pile up; beyond it a due request is an error. */
#define MAX_IN_FLIGHT 10000
/* The longest poll: a bound on how late a lost wake-up can make us. */
#define POLL_MAX_MS 100

struct transfer {
    CURL *easy;
    long run;
    int64_t due_ns; /* latency starts here */
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
    /* Every transfer made so far (at most transfers_cap), and the ones not
     * in flight, ready for the next request. */
    struct transfer **transfers, **idle;
    long transfers_len, transfers_cap, idle_len;
    long in_flight;
    double rate;      /* open loop when > 0 */
    int64_t begin_ns; /* the first request is due here */
    long long dues;   /* due times dealt with so far */
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

static void count_error(struct client *c, const char *what, const char *why)
{
    c->errors++;
    if (c->errors_shown++ < MAX_ERRORS_SHOWN)
        fprintf(stderr, "curl_client: %s: %s\n", what, why);
}

/* Every option but the URL is set here once, so that reusing the handle for
 * the next request costs only a new URL. */
static struct transfer *new_transfer(struct client *c)
{
    struct transfer *t;

    if (c->transfers_len == c->transfers_cap)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return NULL;
    }
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "bench-curl-client");
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, c->http_version);
    curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, 10000L);
    if (c->ca_file)
        curl_easy_setopt(t->easy, CURLOPT_CAINFO, c->ca_file);
    c->transfers[c->transfers_len++] = t;
    return t;
}

/* Returns NULL once the request is in flight, else why it is not. */
static const char *start(struct client *c, struct transfer *t, int64_t due_ns)
{
    char url[512];

    t->run = take_run(c);
    if (t->run < 0)
        return "every run id is in flight";
    snprintf(url, sizeof(url), "%s/api/2.1/jobs/runs/get?run_id=%ld", c->base, t->run + 1);
    t->body_len = 0;
    t->too_large = false;
    t->error[0] = '\0';
    t->due_ns = due_ns;
    /* Options stay set on a reused handle; only the URL changes. */
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        c->run_busy[t->run] = 0;
        return "curl_multi_add_handle failed";
    }
    c->in_flight++;
    return NULL;
}

/* Rate mode: request number n is due n/rate seconds after the start, computed
 * from the start each time so that rounding does not add up. */
static int64_t due_ns(const struct client *c, long long n)
{
    return c->begin_ns + (int64_t)((double)n * 1e9 / c->rate);
}

/* Rate mode: starts every request whose due time has passed, however many,
 * so a client that fell behind catches up instead of quietly lowering the
 * rate; a request that cannot start counts as a failed call. The last one is
 * due before the window ends, so that every run makes the same number of
 * calls however late its final wake-up. */
static void start_due(struct client *c, int64_t now)
{
    int64_t due;

    while ((due = due_ns(c, c->dues)) <= now && due < c->window_end_ns) {
        struct transfer *t = NULL;
        const char *why;
        char full[64];

        c->dues++;
        if (c->in_flight >= MAX_IN_FLIGHT) {
            snprintf(full, sizeof(full), "%d requests already in flight", MAX_IN_FLIGHT);
            why = full;
        } else if (!(t = c->idle_len ? c->idle[--c->idle_len] : new_transfer(c)))
            why = "no easy handle (out of memory)";
        else if (!(why = start(c, t, due)))
            continue;
        if (t)
            c->idle[c->idle_len++] = t;
        c->total++;
        count_error(c, "could not start a request", why);
    }
}

/* Rate mode: how long to poll, in whole milliseconds rounded up: rounding
 * down would wake up just before the next due time and spin with timeout 0
 * until it came. */
static int poll_timeout_ms(const struct client *c, int64_t now)
{
    int64_t until = due_ns(c, c->dues), wait_ms;

    if (until >= c->window_end_ns) {
        /* Nothing more is due: wake up at the end of the window, when the
         * loop may stop, and after that only for answers. */
        if (now >= c->window_end_ns)
            return POLL_MAX_MS;
        until = c->window_end_ns;
    }
    if (until <= now)
        return 0;
    wait_ms = (until - now + 999999) / 1000000;
    return wait_ms < POLL_MAX_MS ? (int)wait_ms : POLL_MAX_MS;
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
    if (!ok)
        count_error(c, "bad answer", why);
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
        c->latencies_us[c->latencies_len++] = (uint32_t)((done - t->due_ns) / 1000);
        c->measured++;
    }
    c->run_busy[t->run] = 0;
    c->in_flight--;
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
    fprintf(stderr, "usage: curl_client --base https://HOST:PORT --ca-file FILE\n"
                    "                   (--concurrency N | --rate CALLS_PER_S)\n"
                    "                   [--duration S] [--warmup S] [--http 1.1|2]\n"
                    "                   [--max-host-connections N] [--runs N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct client c = {.http_version = CURL_HTTP_VERSION_2TLS, .runs = 100000};
    long concurrency = 0, max_host_connections = 1;
    bool concurrency_given = false, rate_given = false;
    double duration_s = 5, warmup_s = 1;

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--base") == 0)
            c.base = v;
        else if (strcmp(a, "--ca-file") == 0)
            c.ca_file = v;
        else if (strcmp(a, "--concurrency") == 0) {
            concurrency = atol(v);
            concurrency_given = true;
        } else if (strcmp(a, "--rate") == 0) {
            c.rate = atof(v);
            rate_given = true;
        } else if (strcmp(a, "--duration") == 0)
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
    if (concurrency_given == rate_given) {
        fprintf(stderr, "curl_client: give exactly one of --concurrency and --rate\n");
        usage_exit();
    }
    /* A rate beyond anything one thread can start is a typo, and one that is
     * infinite would make every request due at once, forever; the negated
     * comparison also turns away a rate that is not a number. */
    if (argc % 2 != 1 || !c.base || duration_s <= 0 || c.runs <= 0 ||
        (concurrency_given && (concurrency <= 0 || c.runs <= concurrency)) ||
        (rate_given && !(c.rate > 0 && c.rate <= 1e7)))
        usage_exit();

    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.multi = curl_multi_init();
    curl_multi_setopt(c.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c.multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    curl_multi_setopt(c.multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
    c.headers = curl_slist_append(NULL, "Content-Type: application/json");
    c.headers = curl_slist_append(c.headers, "Authorization: Bearer bench-token");
    c.run_busy = calloc((size_t)c.runs, 1);
    /* The closed loop makes all its transfers now; rate mode makes them as
     * the in-flight count grows, and keeps reusing the finished ones. */
    c.transfers_cap = concurrency_given ? concurrency : MAX_IN_FLIGHT;
    c.transfers = calloc((size_t)c.transfers_cap, sizeof(*c.transfers));
    c.idle = calloc((size_t)c.transfers_cap, sizeof(*c.idle));
    if (!c.multi || !c.headers || !c.run_busy || !c.transfers || !c.idle) {
        fprintf(stderr, "curl_client: out of memory\n");
        return 1;
    }
    for (long i = 0; i < concurrency; i++)
        if (!new_transfer(&c)) {
            fprintf(stderr, "curl_client: out of memory\n");
            return 1;
        }

    c.begin_ns = now_ns();
    c.window_start_ns = c.begin_ns + (int64_t)(warmup_s * 1e9);
    c.window_end_ns = c.window_start_ns + (int64_t)(duration_s * 1e9);
    for (long i = 0; i < concurrency; i++)
        (void)start(&c, c.transfers[i], now_ns());
    for (;;) {
        int running = 0, pending = 0;
        CURLMsg *msg;
        int64_t now = now_ns();

        if (c.rate > 0)
            start_due(&c, now);
        /* Rate mode waits for the next due time even with nothing in flight. */
        if (c.in_flight == 0 && (c.rate <= 0 || now >= c.window_end_ns))
            break;
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
            if (c.rate > 0)
                c.idle[c.idle_len++] = t;
            /* Refill before polling: an idle poll sleeps its whole timeout. */
            else if (now_ns() < c.window_end_ns)
                (void)start(&c, t, now_ns());
        }
        if (c.rate > 0)
            curl_multi_poll(c.multi, NULL, 0, poll_timeout_ms(&c, now_ns()), NULL);
        else if (c.in_flight > 0)
            curl_multi_poll(c.multi, NULL, 0, POLL_MAX_MS, NULL);
    }

    qsort(c.latencies_us, c.latencies_len, sizeof(uint32_t), compare_u32);
    printf("{\"tool\": \"curl_client\", \"concurrency\": %ld, \"rate\": %.10g, \"http\": \"%s\", "
           "\"seconds\": %.3f, \"calls\": %ld, \"throughput\": %.1f, \"p50_ms\": %.3f, "
           "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"errors\": %ld, "
           "\"connections\": %ld, \"total_calls\": %ld}\n",
           concurrency, c.rate, c.http_version == CURL_HTTP_VERSION_1_1 ? "1.1" : "2", duration_s,
           c.measured, (double)c.measured / duration_s,
           percentile(c.latencies_us, c.latencies_len, 0.50),
           percentile(c.latencies_us, c.latencies_len, 0.90),
           percentile(c.latencies_us, c.latencies_len, 0.99),
           percentile(c.latencies_us, c.latencies_len, 0.999), c.errors, c.connections, c.total);

    for (long i = 0; i < c.transfers_len; i++) {
        curl_easy_cleanup(c.transfers[i]->easy);
        free(c.transfers[i]);
    }
    curl_multi_cleanup(c.multi);
    curl_slist_free_all(c.headers);
    curl_global_cleanup();
    free(c.transfers);
    free(c.idle);
    free(c.run_busy);
    free(c.latencies_us);
    return c.errors ? 3 : 0;
}
