/*
 * dbx.c - Databricks Jobs API client on one libcurl multi handle.
 *
 * Design. One thread owns the multi handle and every easy handle attached to
 * it. Other threads hand requests over through a mutex-protected list and
 * wake the loop with curl_multi_wakeup() only when the list goes from empty
 * to non-empty; the loop swaps the whole list out under the lock and works
 * outside it. The loop refills before it polls (polling with nothing added
 * sleeps the whole timeout), finds a request through CURLOPT_PRIVATE, and
 * reads all it needs from a finished transfer before removing it.
 *
 * Retries. A transient failure (see dbx_response.c and the transport table
 * below) is retried with exponential backoff and full jitter, honouring
 * Retry-After, as long as another attempt still fits before the request's
 * deadline; otherwise the request completes UNAVAILABLE, naming the trouble.
 * Waiting requests sit on a list the loop checks each round; no thread
 * sleeps.
 *
 * The gRPC server can ride on this loop (workers 0, dbx_attach_source):
 * each round starts by draining it, and the poll also watches its fd, so a
 * call is received, sent, answered and freed on this one thread.
 *
 * All easy handles share the multi handle's connection cache, so TLS
 * connections are reused across requests; with HTTP/2 (PIPEWAIT) requests
 * to one workspace multiplex over few connections.
 *
 * The token lives only in this file, inside the shared header list, and is
 * never logged or put in an error message.
 */
#include "dbx.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dbx_limit.h"
#include "log.h"
#include "tls_files.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 4000
/* Do not start an attempt with less time than this left: it could only
 * time out, and the caller is better served by an answer now. */
#define MIN_ATTEMPT_MS 50
#define LOOP_IDLE_MS 1000
/* With an event source attached (the gRPC server, workers 0): how long the
 * loop may sleep while the source was active in the last SOURCE_QUIET_ROUNDS
 * rounds (quiet: no event handled and its fd not readable), and once it has
 * been quiet that long. The source's fd misses two kinds of work (see
 * server_drain() in server.h): completions queued by gRPC's own threads, and
 * I/O events gRPC collected but handles one per poll, at most 100. After 128
 * quiet rounds the second kind is gone; the first is rare and waits at most
 * SOURCE_IDLE_POLL_MS. */
#define SOURCE_BUSY_POLL_MS 1
#define SOURCE_IDLE_POLL_MS 100
#define SOURCE_QUIET_ROUNDS 128
/* Events the source may handle per round before the transfers get a turn. */
#define SOURCE_DRAIN_MAX 64
/* Finished easy handles kept for the next request: curl_easy_init() per
 * request showed in the profile (allocation and set-up, ~10% of the curl
 * thread), and a reused handle keeps its TLS session for resumption. */
#define IDLE_EASY_MAX 64

static const char *const endpoint_paths[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_SUBMIT] = "/api/2.1/jobs/runs/submit",
    [DBX_RUNS_GET] = "/api/2.1/jobs/runs/get",
    [DBX_RUNS_CANCEL] = "/api/2.1/jobs/runs/cancel",
};

static const char *const endpoint_names[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_SUBMIT] = "runs/submit",
    [DBX_RUNS_GET] = "runs/get",
    [DBX_RUNS_CANCEL] = "runs/cancel",
};

/* Transport failures that are worth another attempt: the request may not
 * have reached Databricks, or its answer was lost on the way. TLS and
 * certificate failures are not here: retrying cannot fix them. */
static const CURLcode retryable_transport_errors[] = {
    CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
    CURLE_SEND_ERROR,           CURLE_RECV_ERROR,      CURLE_GOT_NOTHING,
    CURLE_PARTIAL_FILE,         CURLE_HTTP2,           CURLE_HTTP2_STREAM,
};

/* TLS failures, with what an operator should check: curl's own text
 * ("SSL certificate problem: unable to get local issuer certificate") does
 * not say which setting fixes it. */
static const struct {
    CURLcode code;
    const char *hint;
} tls_failures[] = {
    {CURLE_PEER_FAILED_VERIFICATION,
     "the workspace's TLS certificate is not trusted: check ca_file and the system CA store"},
    {CURLE_SSL_CACERT_BADFILE, "the CA bundle cannot be used: check ca_file"},
    {CURLE_SSL_ISSUER_ERROR, "the TLS certificate's issuer does not match: check ca_file"},
    {CURLE_SSL_CONNECT_ERROR, "the TLS handshake failed (a proxy or a non-TLS port?)"},
};

struct dbx_request {
    struct dbx_request *next; /* incoming list or retry list */
    struct dbx_limit_waiter wait; /* queued by the limiter */
    bool held; /* queued by the limiter since its last attempt started */
    enum dbx_endpoint endpoint;
    char *url;
    char *body; /* POST body, owned */
    bool retry_safe;
    int64_t deadline_ms;
    int64_t not_before_ms; /* retry backoff */
    int64_t attempt_started_ms;
    int attempts;
    dbx_done_fn done;
    void *user;
    CURL *easy;
    char *response; /* grows as data arrives, capped */
    size_t response_len;
    size_t response_cap;
    size_t max_response_bytes;
    bool response_too_large;
    char curl_error[CURL_ERROR_SIZE];
    struct dbx_request *active_prev; /* attached to the multi handle */
    struct dbx_request *active_next;
    char *instance;
    /* The limiter's entry from admission to the end of the attempt; NULL
     * otherwise, or when it could not be made. */
    struct dbx_limit_host *host;
};

/* What a reload may change; built by the reloading thread, applied by the
 * curl thread between transfers. */
struct live_settings {
    struct curl_slist *json_headers; /* holds the token */
    char *ca_file;
    long connect_timeout_ms;
    long request_timeout_ms;
    long max_response_bytes;
    long rate_limit_rps;          /* defaults for every workspace */
    long max_concurrent_requests;
    struct config_instance_limit *limits; /* overrides, limits_count entries */
    size_t limits_count;
    struct live_settings *retired_next;
};

struct dbx {
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    struct metrics *metrics;
    _Atomic int64_t last_loop_ms;

    pthread_mutex_t lock;
    struct dbx_request *incoming; /* guarded by lock; LIFO, reversed when taken */
    bool stopping;                /* guarded by lock */
    struct live_settings *pending_settings; /* guarded by lock */
    struct dbx_event_source pending_source; /* guarded by lock; drain NULL: none */
    /* Settings replaced by a reload: transfers in flight may still point at
     * their header list, so they are kept until dbx_free. Guarded by lock. */
    struct live_settings *retired;

    /* Curl thread only after dbx_new returns. */
    struct dbx_request *waiting; /* backing off before a retry */
    struct dbx_request *active;  /* transfers attached to the multi handle */
    struct live_settings *live;  /* in force */
    struct dbx_limit *limit;     /* per-workspace limits of `live` */
    unsigned int random_state;
    CURL *idle_easy[IDLE_EASY_MAX]; /* detached, ready for reuse */
    size_t idle_easy_count;
    struct dbx_event_source source; /* drain NULL: none attached */
    int source_quiet_rounds;        /* rounds since the source last had work */
};

const char *dbx_endpoint_name(enum dbx_endpoint endpoint)
{
    if (endpoint < 0 || endpoint >= _DBX_ENDPOINT_MAX)
        return "?";
    return endpoint_names[endpoint];
}

static void request_free(struct dbx_request *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->instance);
    free(r->body);
    free(r->response);
    free(r);
}

static void complete(struct dbx_request *r, enum dbx_verdict verdict, long http_status,
                     const cJSON *body, const char *error_code, const char *message)
{
    struct dbx_answer answer = {
        .verdict = verdict,
        .http_status = http_status,
        .body = body,
        .error_code = error_code ? error_code : "",
        .message = message ? message : "",
        .attempts = r->attempts,
    };
    r->done(r->user, &answer);
}

/* Collects the answer, enforcing max_response_bytes as data arrives: a
 * Content-Length check alone would miss chunked answers. */
static size_t on_data(char *data, size_t size, size_t count, void *userdata)
{
    struct dbx_request *r = userdata;
    size_t n = size * count;
    size_t need = r->response_len + n + 1;

    if (r->response_len + n > r->max_response_bytes) {
        r->response_too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (need > r->response_cap) {
        size_t cap = r->response_cap ? r->response_cap * 2 : 4096;
        char *grown;
        while (cap < need)
            cap *= 2;
        grown = realloc(r->response, cap);
        if (!grown)
            return 0;
        r->response = grown;
        r->response_cap = cap;
    }
    memcpy(r->response + r->response_len, data, n);
    r->response_len += n;
    r->response[r->response_len] = '\0';
    return n;
}

static void active_add(struct dbx *dbx, struct dbx_request *r)
{
    r->active_prev = NULL;
    r->active_next = dbx->active;
    if (dbx->active)
        dbx->active->active_prev = r;
    dbx->active = r;
}

static void active_remove(struct dbx *dbx, struct dbx_request *r)
{
    if (r->active_prev)
        r->active_prev->active_next = r->active_next;
    else
        dbx->active = r->active_next;
    if (r->active_next)
        r->active_next->active_prev = r->active_prev;
    r->active_prev = r->active_next = NULL;
}

static int64_t time_left(const struct dbx_request *r, int64_t now)
{
    return r->deadline_ms - now;
}

static void complete_held_back(const struct dbx *dbx, struct dbx_request *r);

/* A fresh-looking easy handle: a reused one is reset to defaults, so every
 * option start_transfer() sets is the whole configuration. */
static CURL *take_easy(struct dbx *dbx)
{
    CURL *easy;

    if (dbx->idle_easy_count == 0)
        return curl_easy_init();
    easy = dbx->idle_easy[--dbx->idle_easy_count];
    curl_easy_reset(easy);
    return easy;
}

/* Takes a handle no longer attached to the multi handle. */
static void release_easy(struct dbx *dbx, CURL *easy)
{
    if (dbx->idle_easy_count < IDLE_EASY_MAX)
        dbx->idle_easy[dbx->idle_easy_count++] = easy;
    else
        curl_easy_cleanup(easy);
}

/* Attaches a transfer for `r`. On failure completes it and returns -1. */
static int start_transfer(struct dbx *dbx, struct dbx_request *r)
{
    int64_t now = clock_now_ms();
    int64_t budget = time_left(r, now);
    CURL *easy;

    if (budget < MIN_ATTEMPT_MS) {
        /* Released by the limiter a moment too late: the limits used up the
         * call's time, so say so rather than blame the deadline. */
        if (r->held && r->host)
            complete_held_back(dbx, r);
        else
            complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "DEADLINE",
                     "no time left for a Databricks request before the call's deadline");
        if (r->easy)
            curl_easy_cleanup(r->easy);
        r->easy = NULL;
        request_free(r);
        return -1;
    }
    r->held = false;
    if (budget > dbx->live->request_timeout_ms)
        budget = dbx->live->request_timeout_ms;

    easy = r->easy ? r->easy : take_easy(dbx);
    if (!easy) {
        complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "NO_MEMORY", "out of memory");
        request_free(r);
        return -1;
    }
    r->easy = easy;
    r->attempts++;
    r->attempt_started_ms = now;
    r->response_len = 0;
    r->response_too_large = false;
    r->max_response_bytes = (size_t)dbx->live->max_response_bytes;
    r->curl_error[0] = '\0';

    curl_easy_setopt(easy, CURLOPT_URL, r->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, dbx->live->json_headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "flyte-databricks-connector/" FDC_VERSION);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->curl_error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, dbx->live->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)budget);
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)dbx->live->max_response_bytes);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (dbx->live->ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, dbx->live->ca_file);
    if (r->body) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }

    if (curl_multi_add_handle(dbx->multi, easy) != CURLM_OK) {
        complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "CURL", "cannot start HTTP transfer");
        curl_easy_cleanup(easy);
        r->easy = NULL;
        request_free(r);
        return -1;
    }
    active_add(dbx, r);
    if (r->host)
        dbx_limit_started(r->host);
    return 0;
}

/* ---- the per-workspace limits (dbx_limit.c) ----------------------------- */

static struct dbx_limit_settings limit_settings(const struct live_settings *live)
{
    struct dbx_limit_settings settings = {
        .rate_limit_rps = live->rate_limit_rps,
        .max_concurrent_requests = live->max_concurrent_requests,
        .limits = live->limits,
        .limits_count = live->limits_count,
    };
    return settings;
}

/* Starts `r` now if its workspace's limits allow, else queues it behind the
 * requests already waiting (first come, first served). */
static void admit(struct dbx *dbx, struct dbx_request *r)
{
    int64_t now = clock_now_ms();

    /* Looked up at every attempt: between attempts the entry may go. */
    r->host = dbx_limit_host(dbx->limit, r->instance, now);
    r->wait.deadline_ms = r->deadline_ms;
    /* No memory for the limiter: do not hold the request. */
    if (!r->host || dbx_limit_admit(dbx->limit, r->host, &r->wait, now)) {
        start_transfer(dbx, r);
        return;
    }
    r->held = true;
}

/* Answers a request the limiter held until its deadline; the caller frees it. */
static void complete_held_back(const struct dbx *dbx, struct dbx_request *r)
{
    char message[512];
    struct dbx_limit_values l = dbx_limit_values(dbx->limit, r->host);

    snprintf(message, sizeof(message),
             "request to %s held back by the connector's limits for this workspace "
             "(%.0f requests/s, %ld at once) until the call's deadline",
             r->instance, l.rate, l.max_concurrent);
    complete(r, DBX_VERDICT_RESOURCE_EXHAUSTED, 0, NULL, "RATE_LIMITED", message);
}

static struct dbx_request *request_of_waiter(struct dbx_limit_waiter *w)
{
    return (struct dbx_request *)((char *)w - offsetof(struct dbx_request, wait));
}

/*
 * Starts the waiting requests the limits now allow and answers those whose
 * deadline leaves no time for an attempt. Returns ms until it is worth
 * looking again (LOOP_IDLE_MS when nothing waits).
 */
static int64_t pump_hosts(struct dbx *dbx)
{
    int64_t now = clock_now_ms(), wait;
    struct dbx_limit_waiter *w;
    bool expired;

    while ((w = dbx_limit_next(dbx->limit, now, MIN_ATTEMPT_MS, &expired, &wait))) {
        struct dbx_request *r = request_of_waiter(w);
        if (!expired) {
            start_transfer(dbx, r);
            continue;
        }
        complete_held_back(dbx, r);
        if (r->easy)
            curl_easy_cleanup(r->easy);
        r->easy = NULL;
        request_free(r);
    }
    return wait < LOOP_IDLE_MS ? wait : LOOP_IDLE_MS;
}

static bool transport_error_retryable(CURLcode code)
{
    for (size_t i = 0; i < sizeof(retryable_transport_errors) / sizeof(retryable_transport_errors[0]);
         i++)
        if (retryable_transport_errors[i] == code)
            return true;
    return false;
}

static const char *tls_hint(CURLcode code)
{
    for (size_t i = 0; i < sizeof(tls_failures) / sizeof(tls_failures[0]); i++)
        if (tls_failures[i].code == code)
            return tls_failures[i].hint;
    return NULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static int64_t backoff_ms(struct dbx *dbx, int attempts)
{
    int64_t ceiling = BACKOFF_BASE_MS;
    for (int i = 1; i < attempts && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return (int64_t)(rand_r(&dbx->random_state) % (ceiling + 1));
}

/*
 * Decides between a retry and a final answer. Returns true when the request
 * went back on the waiting list.
 */
static bool schedule_retry(struct dbx *dbx, struct dbx_request *r, long retry_after_s)
{
    int64_t now = clock_now_ms();
    int64_t wait = backoff_ms(dbx, r->attempts);

    if (retry_after_s > 0 && retry_after_s * 1000 > wait)
        wait = retry_after_s * 1000;
    if (now + wait + MIN_ATTEMPT_MS > r->deadline_ms)
        return false;
    if (dbx->metrics)
        metrics_databricks_retry(dbx->metrics, endpoint_names[r->endpoint]);
    r->not_before_ms = now + wait;
    r->next = dbx->waiting;
    dbx->waiting = r;
    return true;
}

static void finish_transfer(struct dbx *dbx, struct dbx_request *r, CURLcode result)
{
    long http_status = 0;
    curl_off_t retry_after = 0;
    char *content_type = NULL;
    struct dbx_classified classified = {0};
    char message[DBX_MESSAGE_SIZE + 512];
    CURL *easy = r->easy;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http_status);
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
    curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type);
    if (dbx->metrics) {
        long new_connections = 0;
        curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_connections);
        metrics_databricks_request(dbx->metrics, endpoint_names[r->endpoint],
                                   result == CURLE_OK ? http_status : 0,
                                   (double)(clock_now_ms() - r->attempt_started_ms) / 1000.0,
                                   new_connections);
    }

    if (result != CURLE_OK) {
        bool retryable = transport_error_retryable(result) &&
                         (r->retry_safe || result == CURLE_COULDNT_CONNECT ||
                          result == CURLE_COULDNT_RESOLVE_HOST);
        const char *detail = r->curl_error[0] ? r->curl_error : curl_easy_strerror(result);

        if (result == CURLE_FILESIZE_EXCEEDED || r->response_too_large) {
            snprintf(message, sizeof(message),
                     "Databricks %s answer is larger than max_response_bytes (%ld)",
                     endpoint_names[r->endpoint], dbx->live->max_response_bytes);
            retryable = false;
        } else if (tls_hint(result)) {
            snprintf(message, sizeof(message), "Databricks %s request to %s failed: %s (%s)",
                     endpoint_names[r->endpoint], r->instance, detail, tls_hint(result));
        } else {
            snprintf(message, sizeof(message), "Databricks %s request failed: %s",
                     endpoint_names[r->endpoint], detail);
        }
        if (retryable && schedule_retry(dbx, r, 0))
            goto detached;
        if (retryable)
            snprintf(message + strlen(message), sizeof(message) - strlen(message),
                     " (gave up after %d attempts within the deadline)", r->attempts);
        complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, curl_easy_strerror(result), message);
        goto done;
    }

    dbx_response_classify(http_status, content_type, r->response, r->response_len, r->retry_safe,
                          &classified);
    if (classified.verdict == DBX_VERDICT_RETRY) {
        if (schedule_retry(dbx, r, (long)retry_after))
            goto detached;
        snprintf(message, sizeof(message),
                 "Databricks %s answered HTTP %ld %s: %s (gave up after %d attempts within the "
                 "deadline)",
                 endpoint_names[r->endpoint], http_status, classified.error_code,
                 classified.message, r->attempts);
        complete(r, DBX_VERDICT_UNAVAILABLE, http_status, NULL, classified.error_code, message);
        goto done;
    }
    if (classified.verdict == DBX_VERDICT_OK)
        message[0] = '\0';
    else
        snprintf(message, sizeof(message), "Databricks %s answered HTTP %ld %s: %s",
                 endpoint_names[r->endpoint], http_status, classified.error_code,
                 classified.message);
    complete(r, classified.verdict, http_status, classified.body, classified.error_code, message);

done:
    dbx_classified_done(&classified);
    release_easy(dbx, easy);
    r->easy = NULL;
    request_free(r);
    return;
detached:
    /* Keep the easy handle for the next attempt: it holds no connection. */
    dbx_classified_done(&classified);
}

static void fail_everything(struct dbx *dbx, struct dbx_request *list)
{
    while (list) {
        struct dbx_request *next = list->next;
        complete(list, DBX_VERDICT_UNAVAILABLE, 0, NULL, "SHUTDOWN", "connector shutting down");
        if (list->easy) {
            curl_multi_remove_handle(dbx->multi, list->easy);
            curl_easy_cleanup(list->easy);
            list->easy = NULL;
        }
        request_free(list);
        list = next;
    }
}

/* Starts the waiting requests whose backoff is over; returns ms to the next one. */
static int64_t start_due_retries(struct dbx *dbx)
{
    int64_t now = clock_now_ms();
    int64_t next_due = LOOP_IDLE_MS;
    struct dbx_request **link = &dbx->waiting;

    while (*link) {
        struct dbx_request *r = *link;
        if (r->not_before_ms <= now) {
            *link = r->next;
            r->next = NULL;
            admit(dbx, r);
        } else {
            if (r->not_before_ms - now < next_due)
                next_due = r->not_before_ms - now;
            link = &r->next;
        }
    }
    return next_due;
}

static void *curl_thread_main(void *arg)
{
    struct dbx *dbx = arg;

    for (;;) {
        struct dbx_request *taken, *reversed = NULL;
        struct dbx_limit_settings limits;
        bool stopping;
        int running = 0, source_handled;
        int64_t wait_ms;
        CURLMsg *msg;
        int pending;

        atomic_store(&dbx->last_loop_ms, clock_now_ms());
        /* First the source (new gRPC calls, whose handlers queue requests
         * on the list taken next, so they go out in this round's perform),
         * then the transfers. */
        source_handled = 0;
        if (dbx->source.drain) {
            source_handled = dbx->source.drain(dbx->source.ctx, SOURCE_DRAIN_MAX);
            if (source_handled > 0)
                dbx->source_quiet_rounds = 0;
            else if (dbx->source_quiet_rounds < SOURCE_QUIET_ROUNDS)
                dbx->source_quiet_rounds++;
        }
        pthread_mutex_lock(&dbx->lock);
        taken = dbx->incoming;
        dbx->incoming = NULL;
        stopping = dbx->stopping;
        if (dbx->pending_source.drain) {
            dbx->source = dbx->pending_source;
            dbx->pending_source.drain = NULL;
        }
        if (dbx->pending_settings) {
            dbx->live->retired_next = dbx->retired;
            dbx->retired = dbx->live;
            dbx->live = dbx->pending_settings;
            dbx->pending_settings = NULL;
            limits = limit_settings(dbx->live);
            dbx_limit_configure(dbx->limit, &limits);
        }
        pthread_mutex_unlock(&dbx->lock);

        while (taken) { /* oldest first */
            struct dbx_request *next = taken->next;
            taken->next = reversed;
            reversed = taken;
            taken = next;
        }
        if (stopping) {
            fail_everything(dbx, reversed);
            break;
        }
        while (reversed) {
            struct dbx_request *next = reversed->next;
            reversed->next = NULL;
            admit(dbx, reversed);
            reversed = next;
        }
        wait_ms = start_due_retries(dbx);

        curl_multi_perform(dbx->multi, &running);
        while ((msg = curl_multi_info_read(dbx->multi, &pending))) {
            struct dbx_request *r = NULL;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            if (msg->msg != CURLMSG_DONE)
                continue;
            /* msg dies with the removal below: read everything first. */
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(dbx->multi, easy);
            active_remove(dbx, r);
            if (r->host)
                dbx_limit_finished(r->host);
            r->host = NULL;
            finish_transfer(dbx, r, result);
        }

        if (source_handled == SOURCE_DRAIN_MAX)
            wait_ms = 0; /* the source may have more ready */
        pthread_mutex_lock(&dbx->lock);
        if (dbx->incoming || dbx->stopping)
            wait_ms = 0;
        pthread_mutex_unlock(&dbx->lock);
        if (dbx->waiting) {
            int64_t due = start_due_retries(dbx);
            if (due < wait_ms)
                wait_ms = due;
        }
        {
            int64_t due = pump_hosts(dbx);
            if (due < wait_ms)
                wait_ms = due;
        }
        if (wait_ms > 0 && dbx->source.drain) {
            struct curl_waitfd source_fd = {.fd = dbx->source.fd, .events = CURL_WAIT_POLLIN};
            int64_t cap = dbx->source_quiet_rounds < SOURCE_QUIET_ROUNDS ? SOURCE_BUSY_POLL_MS
                                                                         : SOURCE_IDLE_POLL_MS;
            curl_multi_poll(dbx->multi, &source_fd, 1, (int)(wait_ms < cap ? wait_ms : cap),
                            NULL);
            /* I/O counts as activity even when it completes nothing (a new
             * connection, a PING): gRPC may have collected more events with
             * it than it handles in one drain, and those no longer make the
             * fd readable. */
            if (source_fd.revents & CURL_WAIT_POLLIN)
                dbx->source_quiet_rounds = 0;
        } else if (wait_ms > 0) {
            curl_multi_poll(dbx->multi, NULL, 0, (int)wait_ms, NULL);
        }
    }

    /* Transfers still attached, requests held by the limiter, requests backing off. */
    for (struct dbx_limit_waiter *w = dbx_limit_take_all(dbx->limit), *next; w; w = next) {
        struct dbx_request *r = request_of_waiter(w);
        next = w->next;
        r->next = NULL;
        fail_everything(dbx, r);
    }
    while (dbx->active) {
        struct dbx_request *r = dbx->active;
        active_remove(dbx, r);
        r->next = NULL;
        fail_everything(dbx, r);
    }
    fail_everything(dbx, dbx->waiting);
    dbx->waiting = NULL;
    return NULL;
}

static struct live_settings *live_settings_free(struct live_settings *s)
{
    if (!s)
        return NULL;
    curl_slist_free_all(s->json_headers);
    free(s->ca_file);
    config_instance_limits_free(s->limits, s->limits_count);
    free(s);
    return NULL;
}

/* Builds the per-request settings; the token goes into the header list only. */
static struct live_settings *live_settings_new(const struct dbx_settings *settings,
                                               char **reterr_msg)
{
    struct live_settings *s = NULL;
    char *auth = NULL;

    /* A CA file libcurl cannot use would only fail at the first request, as
     * a TLS error on a task: refuse it here so start-up or reload says so. */
    if (settings->ca_file &&
        tls_files_check_ca(settings->ca_file, TLS_FILES_CONTENT, reterr_msg) < 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->connect_timeout_ms = settings->connect_timeout_ms;
    s->request_timeout_ms = settings->request_timeout_ms;
    s->max_response_bytes = settings->max_response_bytes;
    s->rate_limit_rps = settings->rate_limit_rps;
    s->max_concurrent_requests = settings->max_concurrent_requests;
    if (settings->limits_count > 0) {
        s->limits = calloc(settings->limits_count, sizeof(*s->limits));
        if (!s->limits)
            goto fail;
        for (size_t i = 0; i < settings->limits_count; i++) {
            s->limits[i] = settings->limits[i];
            s->limits[i].instance = strdup(settings->limits[i].instance);
            s->limits_count = i + 1;
            if (!s->limits[i].instance)
                goto fail;
        }
    }
    if (settings->ca_file) {
        s->ca_file = strdup(settings->ca_file);
        if (!s->ca_file)
            goto fail;
    }
    s->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!s->json_headers)
        goto fail;
    if (settings->token && settings->token[0]) {
        struct curl_slist *appended;
        if (asprintf(&auth, "Authorization: Bearer %s", settings->token) < 0) {
            auth = NULL;
            goto fail;
        }
        appended = curl_slist_append(s->json_headers, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (!appended)
            goto fail;
    }
    return s;
fail:
    return live_settings_free(s);
}

struct dbx *dbx_new(const struct dbx_settings *settings, char **reterr_msg)
{
    struct dbx *dbx = calloc(1, sizeof(*dbx));
    const char *message = "out of memory";
    struct dbx_limit_settings limits;

    if (!dbx)
        goto fail;
    pthread_mutex_init(&dbx->lock, NULL);
    dbx->metrics = settings->metrics;
    dbx->random_state = (unsigned int)clock_now_ms() ^ (unsigned int)(uintptr_t)dbx;
    atomic_store(&dbx->last_loop_ms, clock_now_ms());
    dbx->live = live_settings_new(settings, reterr_msg);
    if (!dbx->live) {
        if (*reterr_msg)
            goto fail_reported;
        goto fail;
    }
    limits = limit_settings(dbx->live);
    dbx->limit = dbx_limit_new(&limits);
    if (!dbx->limit)
        goto fail;

    dbx->multi = curl_multi_init();
    if (!dbx->multi)
        goto fail;
    curl_multi_setopt(dbx->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* Uncapped, PIPEWAIT still opened dozens of TLS connections under load. */
    curl_multi_setopt(dbx->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      settings->max_host_connections > 0 ? settings->max_host_connections : 16L);

    if (pthread_create(&dbx->thread, NULL, curl_thread_main, dbx) != 0) {
        message = "cannot start the curl thread";
        goto fail;
    }
    dbx->thread_started = true;
    /* Named for top -H and perf; 15 characters at most. */
    pthread_setname_np(dbx->thread, "fdc-curl");
    return dbx;

fail:
    *reterr_msg = strdup(message);
fail_reported:
    dbx_free(dbx);
    return NULL;
}

void dbx_free(struct dbx *dbx)
{
    if (!dbx)
        return;
    if (dbx->thread_started) {
        pthread_mutex_lock(&dbx->lock);
        dbx->stopping = true;
        pthread_mutex_unlock(&dbx->lock);
        curl_multi_wakeup(dbx->multi);
        pthread_join(dbx->thread, NULL);
    }
    while (dbx->idle_easy_count > 0)
        curl_easy_cleanup(dbx->idle_easy[--dbx->idle_easy_count]);
    if (dbx->multi)
        curl_multi_cleanup(dbx->multi);
    live_settings_free(dbx->live);
    live_settings_free(dbx->pending_settings);
    dbx_limit_free(dbx->limit);
    while (dbx->retired) {
        struct live_settings *next = dbx->retired->retired_next;
        live_settings_free(dbx->retired);
        dbx->retired = next;
    }
    pthread_mutex_destroy(&dbx->lock);
    free(dbx);
}

int dbx_reconfigure(struct dbx *dbx, const struct dbx_settings *settings, char **reterr_msg)
{
    struct live_settings *fresh = live_settings_new(settings, reterr_msg);
    struct live_settings *replaced;

    if (!fresh)
        return *reterr_msg ? -EINVAL : -ENOMEM;
    pthread_mutex_lock(&dbx->lock);
    replaced = dbx->pending_settings; /* never applied: no transfer uses it */
    dbx->pending_settings = fresh;
    pthread_mutex_unlock(&dbx->lock);
    live_settings_free(replaced);
    curl_multi_wakeup(dbx->multi);
    return 0;
}

void dbx_attach_source(struct dbx *dbx, const struct dbx_event_source *source)
{
    pthread_mutex_lock(&dbx->lock);
    dbx->pending_source = *source;
    pthread_mutex_unlock(&dbx->lock);
    curl_multi_wakeup(dbx->multi);
}

int64_t dbx_last_loop_ms(const struct dbx *dbx)
{
    return atomic_load(&dbx->last_loop_ms);
}

int dbx_request(struct dbx *dbx, enum dbx_endpoint endpoint, const char *instance,
                const char *run_id, char *body, bool retry_safe, int64_t deadline_ms,
                dbx_done_fn done, void *user)
{
    struct dbx_request *r = calloc(1, sizeof(*r));
    bool was_empty;
    int n;

    if (!r) {
        free(body);
        return -ENOMEM;
    }
    if (endpoint == DBX_RUNS_GET)
        n = asprintf(&r->url, "https://%s%s?run_id=%s", instance, endpoint_paths[endpoint],
                     run_id);
    else
        n = asprintf(&r->url, "https://%s%s", instance, endpoint_paths[endpoint]);
    if (n < 0) {
        r->url = NULL;
        free(body);
        free(r);
        return -ENOMEM;
    }
    r->instance = strdup(instance);
    if (!r->instance) {
        free(body);
        request_free(r);
        return -ENOMEM;
    }
    r->endpoint = endpoint;
    r->body = body;
    r->retry_safe = retry_safe;
    r->deadline_ms = deadline_ms;
    r->done = done;
    r->user = user;

    pthread_mutex_lock(&dbx->lock);
    if (dbx->stopping) {
        pthread_mutex_unlock(&dbx->lock);
        request_free(r);
        return -ESHUTDOWN;
    }
    was_empty = dbx->incoming == NULL;
    r->next = dbx->incoming;
    dbx->incoming = r;
    pthread_mutex_unlock(&dbx->lock);

    /* One wake-up per batch: the loop takes the whole list at once. A
     * handler running on the loop itself (an attached source) needs none:
     * the loop looks at the list before it sleeps. */
    if (was_empty && !pthread_equal(pthread_self(), dbx->thread))
        curl_multi_wakeup(dbx->multi);
    return 0;
}
