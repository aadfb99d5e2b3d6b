/*
 * http.c - the transfer engine: one libcurl multi handle and every easy
 * handle attached to it, owned by the loop thread.
 *
 * Hand-off. Other threads push jobs on a mutex-protected list and wake the
 * loop with curl_multi_wakeup() only when the list goes from empty to
 * non-empty; a job posted from the loop thread itself (a handler served
 * there) needs no wake-up, as the loop looks at the list before it sleeps.
 * The loop swaps the whole list out under the lock and runs it outside.
 *
 * Transfers. The loop refills before it polls (polling with nothing added
 * sleeps the whole timeout), finds a transfer through CURLOPT_PRIVATE, and
 * reads all it needs from a finished one before removing it. All easy
 * handles share the multi handle's connection cache, so TLS connections are
 * reused across requests, and with HTTP/2 (PIPEWAIT) the requests to one
 * host multiplex over few connections. Finished easy handles are kept for
 * the next transfer: curl_easy_init() per request showed in the profile
 * (allocation and set-up, ~10% of the thread), and a reused handle keeps
 * its TLS session for resumption. Every transfer is HTTPS with TLS 1.2 or later.
 */
#include "http.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static_assert(HTTP_ERROR_SIZE == CURL_ERROR_SIZE, "the transfer's error buffer is libcurl's");

#define IDLE_EASY_MAX 64
#define CLIENTS_MAX 4
#define DEFAULT_MAX_HOST_CONNECTIONS 16L

/* CURLcodes with a failure of their own; any other is HTTP_FAILURE_OTHER. */
static const struct {
    CURLcode code;
    enum http_failure failure;
} failures[] = {
    {CURLE_COULDNT_RESOLVE_HOST, HTTP_FAILURE_RESOLVE},
    {CURLE_COULDNT_CONNECT, HTTP_FAILURE_CONNECT},
    {CURLE_OPERATION_TIMEDOUT, HTTP_FAILURE_TIMEOUT},
    {CURLE_SEND_ERROR, HTTP_FAILURE_SEND},
    {CURLE_RECV_ERROR, HTTP_FAILURE_RECV},
    {CURLE_GOT_NOTHING, HTTP_FAILURE_GOT_NOTHING},
    {CURLE_PARTIAL_FILE, HTTP_FAILURE_PARTIAL},
    {CURLE_HTTP2, HTTP_FAILURE_HTTP2},
    {CURLE_HTTP2_STREAM, HTTP_FAILURE_HTTP2},
    {CURLE_PEER_FAILED_VERIFICATION, HTTP_FAILURE_TLS_UNTRUSTED},
    {CURLE_SSL_CACERT_BADFILE, HTTP_FAILURE_TLS_CA_FILE},
    {CURLE_SSL_ISSUER_ERROR, HTTP_FAILURE_TLS_ISSUER},
    {CURLE_SSL_CONNECT_ERROR, HTTP_FAILURE_TLS_HANDSHAKE},
    {CURLE_FILESIZE_EXCEEDED, HTTP_FAILURE_TOO_LARGE},
};

struct http {
    CURLM *multi;

    pthread_mutex_t lock;
    struct http_job *jobs; /* guarded by lock; LIFO, reversed when taken */
    bool stopped;          /* guarded by lock */
    pthread_t runner;      /* guarded by lock: the thread calling http_run() */
    bool runner_known;     /* guarded by lock */

    /* Main thread before the loop starts, then loop thread only. */
    struct http_client clients[CLIENTS_MAX];
    size_t clients_count;
    struct http_transfer *active;   /* attached to the multi handle */
    CURL *idle_easy[IDLE_EASY_MAX]; /* detached, ready for reuse */
    size_t idle_easy_count;
};

static enum http_failure failure_of(CURLcode code, const struct http_transfer *t)
{
    if (code == CURLE_OK)
        return HTTP_FAILURE_NONE;
    /* on_data() refused the data: the cap, not a local write problem. */
    if (t->engine.too_large)
        return HTTP_FAILURE_TOO_LARGE;
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
        if (failures[i].code == code)
            return failures[i].failure;
    return HTTP_FAILURE_OTHER;
}

struct http *http_new(long max_host_connections, char **reterr_msg)
{
    struct http *http = calloc(1, sizeof(*http));

    if (!http)
        goto fail;
    pthread_mutex_init(&http->lock, NULL);
    http->multi = curl_multi_init();
    if (!http->multi)
        goto fail;
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* Uncapped, PIPEWAIT still opened dozens of TLS connections under load. */
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      max_host_connections > 0 ? max_host_connections
                                               : DEFAULT_MAX_HOST_CONNECTIONS);
    return http;
fail:
    http_free(http);
    *reterr_msg = strdup("out of memory");
    return NULL;
}

void http_free(struct http *http)
{
    if (!http)
        return;
    while (http->idle_easy_count > 0)
        curl_easy_cleanup(http->idle_easy[--http->idle_easy_count]);
    if (http->multi)
        curl_multi_cleanup(http->multi);
    pthread_mutex_destroy(&http->lock);
    free(http);
}

int http_add_client(struct http *http, const struct http_client *client)
{
    if (http->clients_count == CLIENTS_MAX)
        return -ENOSPC;
    http->clients[http->clients_count++] = *client;
    return 0;
}

void http_wakeup(struct http *http)
{
    curl_multi_wakeup(http->multi);
}

int http_post(struct http *http, struct http_job *job)
{
    bool wake;

    pthread_mutex_lock(&http->lock);
    if (http->stopped) {
        pthread_mutex_unlock(&http->lock);
        return -ESHUTDOWN;
    }
    /* One wake-up per batch: the loop takes the whole list at once. */
    wake = !http->jobs && !(http->runner_known && pthread_equal(http->runner, pthread_self()));
    job->next = http->jobs;
    http->jobs = job;
    pthread_mutex_unlock(&http->lock);
    if (wake)
        curl_multi_wakeup(http->multi);
    return 0;
}

/* Takes the posted jobs, oldest first. */
static struct http_job *take_jobs(struct http *http)
{
    struct http_job *taken, *reversed = NULL;

    pthread_mutex_lock(&http->lock);
    http->runner = pthread_self();
    http->runner_known = true;
    taken = http->jobs;
    http->jobs = NULL;
    pthread_mutex_unlock(&http->lock);
    while (taken) {
        struct http_job *next = taken->next;
        taken->next = reversed;
        reversed = taken;
        taken = next;
    }
    return reversed;
}

static void run_jobs(struct http_job *jobs, bool cancelled)
{
    while (jobs) {
        struct http_job *next = jobs->next;
        jobs->next = NULL;
        jobs->run(jobs, cancelled);
        jobs = next;
    }
}

/* Gives ms until the first client has work due. */
static int64_t run_clients(struct http *http)
{
    int64_t wait = INT64_MAX;

    for (size_t i = 0; i < http->clients_count; i++) {
        int64_t due = http->clients[i].run_due(http->clients[i].ctx);
        if (due < wait)
            wait = due;
    }
    return wait;
}

static void active_add(struct http *http, struct http_transfer *t)
{
    t->engine.prev = NULL;
    t->engine.next = http->active;
    if (http->active)
        http->active->engine.prev = t;
    http->active = t;
}

static void active_remove(struct http *http, struct http_transfer *t)
{
    if (t->engine.prev)
        t->engine.prev->engine.next = t->engine.next;
    else
        http->active = t->engine.next;
    if (t->engine.next)
        t->engine.next->engine.prev = t->engine.prev;
    t->engine.prev = t->engine.next = NULL;
}

/* Collects the answer, enforcing max_response_bytes as data arrives: a
 * Content-Length check alone would miss chunked answers. */
static size_t on_data(char *data, size_t size, size_t count, void *userdata)
{
    struct http_transfer *t = userdata;
    size_t n = size * count;
    size_t need = t->engine.response_len + n + 1;

    if (t->engine.response_len + n > t->max_response_bytes) {
        t->engine.too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (need > t->engine.response_cap) {
        size_t cap = t->engine.response_cap ? t->engine.response_cap * 2 : 4096;
        char *grown;
        while (cap < need)
            cap *= 2;
        if (t->secret_answer) {
            /* realloc() could leave a copy of the credential behind in freed memory. */
            grown = malloc(cap);
            if (grown && t->engine.response) {
                memcpy(grown, t->engine.response, t->engine.response_len);
                explicit_bzero(t->engine.response, t->engine.response_cap);
                free(t->engine.response);
            }
        } else {
            grown = realloc(t->engine.response, cap);
        }
        if (!grown)
            return 0;
        t->engine.response = grown;
        t->engine.response_cap = cap;
    }
    memcpy(t->engine.response + t->engine.response_len, data, n);
    t->engine.response_len += n;
    t->engine.response[t->engine.response_len] = '\0';
    return n;
}

/* A fresh-looking easy handle: a reused one is reset to defaults, so every
 * option http_transfer_start() sets is the whole configuration. */
static CURL *take_easy(struct http *http)
{
    CURL *easy;

    if (http->idle_easy_count == 0)
        return curl_easy_init();
    easy = http->idle_easy[--http->idle_easy_count];
    curl_easy_reset(easy);
    return easy;
}

int http_transfer_start(struct http *http, struct http_transfer *t)
{
    CURL *easy = t->engine.easy ? t->engine.easy : take_easy(http);

    if (!easy)
        return -ENOMEM;
    t->engine.easy = easy;
    t->engine.response_len = 0;
    t->engine.too_large = false;
    t->engine.error[0] = '\0';

    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https");
    /* TLS 1.2 at least: every transfer carries a bearer token, so never TLS 1.0/1.1, even where
     * the system's OpenSSL configuration (OPENSSL_CONF, a lowered security level) would allow
     * them. Databricks and the Kubernetes API both speak TLS 1.2 or later. */
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "flyte-databricks-connector/" FDC_VERSION);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->engine.error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_response_bytes);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (t->ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, t->ca_file);
    if (t->body) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }

    if (curl_multi_add_handle(http->multi, easy) != CURLM_OK)
        return -EIO;
    active_add(http, t);
    return 0;
}

void http_transfer_release(struct http *http, struct http_transfer *t)
{
    if (t->engine.easy) {
        if (http->idle_easy_count < IDLE_EASY_MAX)
            http->idle_easy[http->idle_easy_count++] = t->engine.easy;
        else
            curl_easy_cleanup(t->engine.easy);
        t->engine.easy = NULL;
    }
    if (t->secret_answer && t->engine.response)
        explicit_bzero(t->engine.response, t->engine.response_cap);
    free(t->engine.response);
    t->engine.response = NULL;
    t->engine.response_len = t->engine.response_cap = 0;
}

/* Detaches a finished (or cancelled) transfer and runs its `done`. */
static void finish(struct http *http, struct http_transfer *t, CURLcode code, bool cancelled)
{
    CURL *easy = t->engine.easy;
    struct http_result result = {
        .failure = cancelled ? HTTP_FAILURE_CANCELLED : failure_of(code, t),
        .failure_name = code == CURLE_OK ? "" : curl_easy_strerror(code),
        .body = t->engine.response_len ? t->engine.response : "",
        .body_len = t->engine.response_len,
    };
    curl_off_t retry_after = 0;
    char *content_type = NULL;

    curl_multi_remove_handle(http->multi, easy);
    active_remove(http, t);
    result.detail = t->engine.error[0] ? t->engine.error : result.failure_name;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &result.status);
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
    curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &result.new_connections);
    result.retry_after_s = (long)retry_after;
    result.content_type = content_type;
    t->done(t, &result);
}

int64_t http_run(struct http *http)
{
    int64_t wait;
    int running = 0, pending;
    CURLMsg *msg;
    bool jobs_waiting;

    run_jobs(take_jobs(http), false);
    run_clients(http);
    curl_multi_perform(http->multi, &running);
    while ((msg = curl_multi_info_read(http->multi, &pending))) {
        struct http_transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg dies with the removal in finish(): read everything first. */
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        finish(http, t, msg->data.result, false);
    }
    wait = run_clients(http);
    pthread_mutex_lock(&http->lock);
    jobs_waiting = http->jobs != NULL;
    pthread_mutex_unlock(&http->lock);
    return jobs_waiting ? 0 : wait;
}

bool http_wait(struct http *http, int extra_fd, int timeout_ms)
{
    struct curl_waitfd fd = {.fd = extra_fd, .events = CURL_WAIT_POLLIN};

    if (extra_fd < 0) {
        curl_multi_poll(http->multi, NULL, 0, timeout_ms, NULL);
        return false;
    }
    curl_multi_poll(http->multi, &fd, 1, timeout_ms, NULL);
    return fd.revents & CURL_WAIT_POLLIN;
}

void http_stop(struct http *http)
{
    struct http_job *jobs;

    pthread_mutex_lock(&http->lock);
    http->stopped = true;
    pthread_mutex_unlock(&http->lock);
    /* Taken after `stopped` is set, so a job posted meanwhile is not lost. */
    jobs = take_jobs(http);
    run_jobs(jobs, true);
    for (size_t i = 0; i < http->clients_count; i++)
        http->clients[i].stop(http->clients[i].ctx);
    while (http->active)
        finish(http, http->active, CURLE_OK, true);
}
