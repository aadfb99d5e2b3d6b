/*
 * dbx.c - the Databricks Jobs API client: request URLs, the Authorization
 * header, the per-workspace limits, retries, and the verdict on each
 * answer. The transfers themselves run on the transfer engine (http.c).
 *
 * Life of a request. dbx_request() (any thread) fills a `struct
 * dbx_request` and posts it to the engine; on the loop thread it is
 * admitted through its workspace's limits (dbx_limit.c), which start it or
 * hold it, and its transfer runs. When the transfer ends, the answer is
 * classified (dbx_response.c), a transport failure judged (retry.c); a
 * transient failure is retried after retry.c's backoff as long as another
 * attempt still fits before the request's deadline; otherwise the request
 * completes, naming the trouble. Requests backing off sit on a list the
 * engine's rounds check (dbx_run_due); nothing sleeps.
 *
 * Reload. dbx_reconfigure() builds new settings on its own thread; the
 * loop thread takes them between transfers. Transfers in flight keep
 * pointing at the settings they started with, so replaced ones are kept
 * until dbx_free().
 *
 * The token lives only in this file, inside the settings' header list, and
 * is never logged or put in an error message.
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
#include "http.h"
#include "retry.h"
#include "secret.h"
#include "tls_files.h"

static const char *const endpoint_paths[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_SUBMIT] = "/api/2.1/jobs/runs/submit",
    [DBX_RUNS_GET] = "/api/2.1/jobs/runs/get",
    [DBX_RUNS_CANCEL] = "/api/2.1/jobs/runs/cancel",
    [DBX_RUNS_GET_OUTPUT] = "/api/2.1/jobs/runs/get-output",
};

/* GET endpoints name the run in the query; the others take a JSON body. */
static const bool endpoint_is_get[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_GET] = true,
    [DBX_RUNS_GET_OUTPUT] = true,
};

/* The least an answer may be whatever max_response_bytes says: runs/get-output carries up to
 * the last 5 MB of a task's logs (Databricks' cap) beside its error and trace, and cutting it
 * would lose the exception a failed run's message shows. */
static const long endpoint_min_response_bytes[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_GET_OUTPUT] = 16L * 1024 * 1024,
};

static const char *const endpoint_names[_DBX_ENDPOINT_MAX] = {
    [DBX_RUNS_SUBMIT] = "runs/submit",
    [DBX_RUNS_GET] = "runs/get",
    [DBX_RUNS_CANCEL] = "runs/cancel",
    [DBX_RUNS_GET_OUTPUT] = "runs/get-output",
};

struct dbx_request {
    struct http_job job;           /* the hand-off to the loop thread */
    struct http_transfer transfer; /* the current attempt */
    struct dbx_limit_waiter wait;  /* queued by the limiter */
    struct dbx_request *next;      /* retry list */
    struct dbx *dbx;
    bool held; /* queued by the limiter since its last attempt started */
    enum dbx_endpoint endpoint;
    struct curl_slist *own_headers; /* with the call's own token; NULL: the default's */
    char *url;
    char *body; /* POST body, owned */
    bool retry_safe;
    int64_t deadline_ms;
    int64_t not_before_ms; /* retry backoff */
    int64_t attempt_started_ms;
    int attempts;
    dbx_done_fn done;
    void *user;
    char *instance;
    /* The limiter's entry from admission to the end of the attempt; NULL
     * otherwise, or when it could not be made. */
    struct dbx_limit_host *host;
};

/* What a reload may change; built by the reloading thread, applied by the
 * loop thread between transfers. */
struct live_settings {
    struct curl_slist *json_headers; /* holds the token */
    char *ca_file;
    long connect_timeout_ms;
    long request_timeout_ms;
    long max_response_bytes;
    long rate_limit_rps; /* defaults for every workspace */
    long max_concurrent_requests;
    struct config_instance_limit *limits; /* overrides, limits_count entries */
    size_t limits_count;
    struct live_settings *retired_next;
};

struct dbx {
    struct http *http;       /* borrowed */
    struct metrics *metrics; /* borrowed, may be NULL */

    pthread_mutex_t lock;
    struct live_settings *pending_settings; /* guarded by lock */
    atomic_bool settings_pending;           /* pending_settings is set: check under lock */
    /* Settings replaced by a reload: transfers in flight may still point at
     * their header list, so they are kept until dbx_free. Guarded by lock. */
    struct live_settings *retired;

    /* Loop thread only after dbx_new returns. */
    struct dbx_request *waiting; /* backing off before a retry */
    struct live_settings *live;  /* in force */
    struct dbx_limit *limit;     /* per-workspace limits of `live` */
    unsigned int random_state;
};

const char *dbx_endpoint_name(enum dbx_endpoint endpoint)
{
    if (endpoint < 0 || endpoint >= _DBX_ENDPOINT_MAX)
        return "?";
    return endpoint_names[endpoint];
}

/* Zeroes the token in the Authorization header before the list is freed, so
 * that freed memory (and so a core file) does not keep it. NULL-safe. */
static void headers_free(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

/* The JSON headers, with "Authorization: Bearer <token>" unless the token is
 * NULL or empty. Gives a list (headers_free()) or NULL when out of memory. */
static struct curl_slist *headers_new(const char *token)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *appended;
    char *auth = NULL;

    if (!headers || !token || !token[0])
        return headers;
    if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
        headers_free(headers);
        return NULL;
    }
    appended = curl_slist_append(headers, auth);
    secret_free(auth);
    if (!appended) {
        headers_free(headers);
        return NULL;
    }
    return headers;
}

/* Frees a request that is in no list and no transfer. */
static void request_free(struct dbx_request *r)
{
    if (!r)
        return;
    http_transfer_release(r->dbx->http, &r->transfer);
    headers_free(r->own_headers);
    free(r->url);
    free(r->instance);
    free(r->body);
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

static void complete_shutdown(struct dbx_request *r)
{
    complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "SHUTDOWN", "connector shutting down");
    request_free(r);
}

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

/* Answers a request the limiter held until its deadline. */
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

static void on_transfer_done(struct http_transfer *transfer, const struct http_result *result);

static long response_cap(const struct live_settings *live, enum dbx_endpoint endpoint)
{
    long floor = endpoint_min_response_bytes[endpoint];

    return live->max_response_bytes > floor ? live->max_response_bytes : floor;
}

/* Starts an attempt of `r`. On failure completes and frees it. */
static void start_transfer(struct dbx *dbx, struct dbx_request *r)
{
    const struct live_settings *live = dbx->live;
    int64_t now = clock_now_ms();
    int64_t budget = r->deadline_ms - now;
    int err;

    if (!retry_attempt_fits(budget)) {
        /* Released by the limiter a moment too late: the limits used up the
         * call's time, so say so rather than blame the deadline. */
        if (r->held && r->host)
            complete_held_back(dbx, r);
        else
            complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "DEADLINE",
                     "no time left for a Databricks request before the call's deadline");
        request_free(r);
        return;
    }
    r->held = false;
    if (budget > live->request_timeout_ms)
        budget = live->request_timeout_ms;
    r->transfer.url = r->url;
    r->transfer.body = r->body;
    r->transfer.headers = r->own_headers ? r->own_headers : live->json_headers;
    r->transfer.ca_file = live->ca_file;
    r->transfer.connect_timeout_ms = live->connect_timeout_ms;
    r->transfer.timeout_ms = (long)budget;
    r->transfer.max_response_bytes = (size_t)response_cap(live, r->endpoint);
    r->transfer.done = on_transfer_done;
    r->attempts++;
    r->attempt_started_ms = now;
    err = http_transfer_start(dbx->http, &r->transfer);
    if (err < 0) {
        if (err == -ENOMEM)
            complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "NO_MEMORY", "out of memory");
        else
            complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, "CURL", "cannot start HTTP transfer");
        request_free(r);
        return;
    }
    if (r->host)
        dbx_limit_started(r->host);
}

/* Starts `r` now if its workspace's limits allow, else leaves it queued
 * behind the requests already waiting (first come, first served). */
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

static struct dbx_request *request_of_waiter(struct dbx_limit_waiter *w)
{
    return (struct dbx_request *)((char *)w - offsetof(struct dbx_request, wait));
}

/*
 * Starts the waiting requests the limits now allow and answers those whose
 * deadline leaves no time for an attempt. Returns ms until it is worth
 * looking again (INT64_MAX when nothing waits).
 */
static int64_t pump_hosts(struct dbx *dbx)
{
    int64_t now = clock_now_ms(), wait;
    struct dbx_limit_waiter *w;
    bool expired;

    while ((w = dbx_limit_next(dbx->limit, now, RETRY_MIN_ATTEMPT_MS, &expired, &wait))) {
        struct dbx_request *r = request_of_waiter(w);
        if (!expired) {
            start_transfer(dbx, r);
            continue;
        }
        complete_held_back(dbx, r);
        request_free(r);
    }
    return wait;
}

/*
 * Decides between a retry and a final answer. Returns true when the request
 * went back on the waiting list.
 */
static bool schedule_retry(struct dbx *dbx, struct dbx_request *r, long retry_after_s)
{
    int64_t now = clock_now_ms();
    int64_t wait = retry_wait_ms(r->attempts, retry_after_s, r->deadline_ms - now,
                                 (unsigned int)rand_r(&dbx->random_state));

    if (wait < 0)
        return false;
    if (dbx->metrics)
        metrics_databricks_retry(dbx->metrics, endpoint_names[r->endpoint]);
    r->not_before_ms = now + wait;
    r->next = dbx->waiting;
    dbx->waiting = r;
    return true;
}

/* A transfer that got no HTTP answer: retry, or answer UNAVAILABLE. */
static void finish_transport_failure(struct dbx *dbx, struct dbx_request *r,
                                     const struct http_result *result)
{
    char message[DBX_MESSAGE_SIZE + 512];
    const char *endpoint = endpoint_names[r->endpoint];
    const char *hint = retry_tls_hint(result->failure);
    bool retryable = retry_transport_failure(result->failure, r->retry_safe);

    if (result->failure == HTTP_FAILURE_TOO_LARGE)
        snprintf(message, sizeof(message),
                 "Databricks %s answer is larger than max_response_bytes (%ld)", endpoint,
                 response_cap(dbx->live, r->endpoint));
    else if (hint)
        snprintf(message, sizeof(message), "Databricks %s request to %s failed: %s (%s)", endpoint,
                 r->instance, result->detail, hint);
    else
        snprintf(message, sizeof(message), "Databricks %s request failed: %s", endpoint,
                 result->detail);
    if (retryable && schedule_retry(dbx, r, 0))
        return;
    if (retryable)
        snprintf(message + strlen(message), sizeof(message) - strlen(message),
                 " (gave up after %d attempts within the deadline)", r->attempts);
    complete(r, DBX_VERDICT_UNAVAILABLE, 0, NULL, result->failure_name, message);
    request_free(r);
}

/* A transfer that got an HTTP answer: its verdict, a retry, or UNAVAILABLE. */
static void finish_answer(struct dbx *dbx, struct dbx_request *r, const struct http_result *result)
{
    struct dbx_classified classified = {0};
    char message[DBX_MESSAGE_SIZE + 512];
    const char *endpoint = endpoint_names[r->endpoint];

    dbx_response_classify(result->status, result->content_type, result->body, result->body_len,
                          r->retry_safe, &classified);
    if (classified.verdict == DBX_VERDICT_RETRY) {
        if (schedule_retry(dbx, r, result->retry_after_s))
            goto out; /* the request waits, keeping its easy handle: it holds no connection */
        snprintf(message, sizeof(message),
                 "Databricks %s answered HTTP %ld %s: %s (gave up after %d attempts within the "
                 "deadline)",
                 endpoint, result->status, classified.error_code, classified.message, r->attempts);
        complete(r, DBX_VERDICT_UNAVAILABLE, result->status, NULL, classified.error_code, message);
    } else {
        if (classified.verdict == DBX_VERDICT_OK)
            message[0] = '\0';
        else
            snprintf(message, sizeof(message), "Databricks %s answered HTTP %ld %s: %s", endpoint,
                     result->status, classified.error_code, classified.message);
        complete(r, classified.verdict, result->status, classified.body, classified.error_code,
                 message);
    }
    request_free(r);
out:
    dbx_classified_done(&classified);
}

static void on_transfer_done(struct http_transfer *transfer, const struct http_result *result)
{
    struct dbx_request *r =
        (struct dbx_request *)((char *)transfer - offsetof(struct dbx_request, transfer));
    struct dbx *dbx = r->dbx;

    if (r->host)
        dbx_limit_finished(r->host);
    r->host = NULL;
    if (result->failure == HTTP_FAILURE_CANCELLED) {
        complete_shutdown(r);
        return;
    }
    if (dbx->metrics)
        metrics_databricks_request(dbx->metrics, endpoint_names[r->endpoint],
                                   result->failure == HTTP_FAILURE_NONE ? result->status : 0,
                                   (double)(clock_now_ms() - r->attempt_started_ms) / 1000.0,
                                   result->new_connections);
    if (result->failure == HTTP_FAILURE_NONE)
        finish_answer(dbx, r, result);
    else
        finish_transport_failure(dbx, r, result);
}

/* Starts the waiting requests whose backoff is over; returns ms to the next one. */
static int64_t start_due_retries(struct dbx *dbx)
{
    int64_t now = clock_now_ms();
    int64_t next_due = INT64_MAX;
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

static void apply_pending_settings(struct dbx *dbx)
{
    struct dbx_limit_settings limits;

    if (!atomic_load(&dbx->settings_pending))
        return;
    pthread_mutex_lock(&dbx->lock);
    if (dbx->pending_settings) {
        dbx->live->retired_next = dbx->retired;
        dbx->retired = dbx->live;
        dbx->live = dbx->pending_settings;
        dbx->pending_settings = NULL;
    }
    atomic_store(&dbx->settings_pending, false);
    pthread_mutex_unlock(&dbx->lock);
    limits = limit_settings(dbx->live);
    dbx_limit_configure(dbx->limit, &limits);
}

/* http_client.run_due: a reload, retries whose backoff is over, requests
 * the limits now release. */
static int64_t dbx_run_due(void *ctx)
{
    struct dbx *dbx = ctx;
    int64_t retry_due, limit_due;

    apply_pending_settings(dbx);
    retry_due = dbx->waiting ? start_due_retries(dbx) : INT64_MAX;
    limit_due = pump_hosts(dbx);
    return retry_due < limit_due ? retry_due : limit_due;
}

/* http_client.stop: requests held by the limiter or backing off. */
static void dbx_stop(void *ctx)
{
    struct dbx *dbx = ctx;
    struct dbx_limit_waiter *w, *next;

    for (w = dbx_limit_take_all(dbx->limit); w; w = next) {
        next = w->next;
        complete_shutdown(request_of_waiter(w));
    }
    while (dbx->waiting) {
        struct dbx_request *r = dbx->waiting;
        dbx->waiting = r->next;
        complete_shutdown(r);
    }
}

/* http_job.run: a request handed over by dbx_request(). */
static void on_posted(struct http_job *job, bool cancelled)
{
    struct dbx_request *r = (struct dbx_request *)((char *)job - offsetof(struct dbx_request, job));

    if (cancelled) {
        complete_shutdown(r);
        return;
    }
    /* The engine runs posted jobs before the clients' due work: a request made after
     * dbx_reconfigure() returned must not start with the settings it replaced (a rotated
     * token would be refused). */
    apply_pending_settings(r->dbx);
    admit(r->dbx, r);
}

static struct live_settings *live_settings_free(struct live_settings *s)
{
    if (!s)
        return NULL;
    headers_free(s->json_headers);
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

    /* A CA file libcurl cannot use would only fail at the first request, as
     * a TLS error on a task: refuse it here so start-up or reload says so. */
    if (settings->ca_file && tls_files_check_ca(settings->ca_file, reterr_msg) < 0)
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
    s->json_headers = headers_new(settings->token);
    if (!s->json_headers)
        goto fail;
    return s;
fail:
    return live_settings_free(s);
}

struct dbx *dbx_new(const struct dbx_settings *settings, struct http *http, char **reterr_msg)
{
    struct dbx *dbx = calloc(1, sizeof(*dbx));
    struct dbx_limit_settings limits;
    struct http_client client = {.run_due = dbx_run_due, .stop = dbx_stop};

    if (!dbx)
        goto fail;
    pthread_mutex_init(&dbx->lock, NULL);
    dbx->http = http;
    dbx->metrics = settings->metrics;
    dbx->random_state = (unsigned int)clock_now_ms() ^ (unsigned int)(uintptr_t)dbx;
    dbx->live = live_settings_new(settings, reterr_msg);
    if (!dbx->live)
        goto fail;
    limits = limit_settings(dbx->live);
    dbx->limit = dbx_limit_new(&limits);
    if (!dbx->limit)
        goto fail;
    client.ctx = dbx;
    if (http_add_client(http, &client) < 0)
        goto fail;
    return dbx;

fail:
    if (!*reterr_msg)
        *reterr_msg = strdup("out of memory");
    dbx_free(dbx);
    return NULL;
}

void dbx_free(struct dbx *dbx)
{
    if (!dbx)
        return;
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
    atomic_store(&dbx->settings_pending, true);
    pthread_mutex_unlock(&dbx->lock);
    live_settings_free(replaced);
    http_wakeup(dbx->http);
    return 0;
}

int dbx_request(struct dbx *dbx, const struct dbx_call *call, char *body, dbx_done_fn done,
                void *user)
{
    struct dbx_request *r = calloc(1, sizeof(*r));
    const char *path = endpoint_paths[call->endpoint];
    int n, err;

    if (!r) {
        free(body);
        return -ENOMEM;
    }
    r->dbx = dbx;
    r->body = body;
    if (endpoint_is_get[call->endpoint])
        n = asprintf(&r->url, "https://%s%s?run_id=%s", call->instance, path, call->run_id);
    else
        n = asprintf(&r->url, "https://%s%s", call->instance, path);
    if (n < 0)
        r->url = NULL;
    r->instance = strdup(call->instance);
    if (call->token)
        r->own_headers = headers_new(call->token);
    if (!r->url || !r->instance || (call->token && !r->own_headers)) {
        request_free(r);
        return -ENOMEM;
    }
    r->endpoint = call->endpoint;
    r->retry_safe = call->retry_safe;
    r->deadline_ms = call->deadline_ms;
    r->done = done;
    r->user = user;
    r->job.run = on_posted;
    err = http_post(dbx->http, &r->job);
    if (err < 0)
        request_free(r);
    return err;
}
