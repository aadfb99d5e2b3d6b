/*
 * http_request.c - small HTTPS requests with retries on the transfer engine (see
 * http_request.h).
 *
 * A request is posted to the loop thread as a job, runs as one transfer per attempt, and after a
 * transient failure (a status the caller's retry_status() names, or a transport failure retry.c
 * retries for a request that is safe to repeat) waits on the client's list for retry.c's
 * backoff, honouring Retry-After, as long as another attempt fits before its deadline. Every
 * request these clients make is a read or a token grant, so repeating one does no harm.
 *
 * Owns: each request until its callback returns, its copies of the URL, body and headers (the
 * headers carry a bearer token or client credentials and are wiped before they are freed; so is
 * the answer, which carries a Secret or an access token).
 * Threads: the list of waiting requests is the loop thread's; requests arrive from any thread
 * through http_post().
 */
#include "http_request.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http.h"
#include "retry.h"
#include "secret.h"

struct request {
    struct http_job job;           /* the hand-off to the loop thread */
    struct http_transfer transfer; /* the current attempt */
    struct http_request_client *client;
    struct request *next; /* waiting list */
    char *url;
    char *body;
    char *ca_file;
    struct curl_slist *headers;
    long connect_timeout_ms;
    long attempt_timeout_ms;
    size_t max_response_bytes;
    int64_t deadline_ms;
    int64_t not_before_ms;
    bool (*retry_status)(long status);
    int attempts;
    http_request_done_fn done;
    void *user;
};

struct http_request_client {
    struct http *http; /* borrowed */
    /* Loop thread only. */
    struct request *waiting; /* backing off before another attempt */
    unsigned int random_state;
};

static void request_free(struct request *r)
{
    if (!r)
        return;
    http_transfer_release(r->client->http, &r->transfer);
    for (struct curl_slist *h = r->headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(r->headers);
    free(r->url);
    secret_free(r->body);
    free(r->ca_file);
    free(r);
}

static void complete(struct request *r, long status, const char *body, size_t body_len,
                     const char *failure)
{
    struct http_request_result result = {
        .status = status,
        .body = body ? body : "",
        .body_len = body ? body_len : 0,
        .failure = failure ? failure : "",
        .attempts = r->attempts,
    };

    r->done(r->user, &result);
    request_free(r);
}

static void on_transfer_done(struct http_transfer *transfer, const struct http_result *result);

static void start_attempt(struct request *r)
{
    int64_t budget = r->deadline_ms - clock_now_ms();

    if (!retry_attempt_fits(budget)) {
        complete(r, 0, NULL, 0, "no time left for the request before the call's deadline");
        return;
    }
    if (budget > r->attempt_timeout_ms)
        budget = r->attempt_timeout_ms;
    r->transfer.url = r->url;
    r->transfer.body = r->body;
    r->transfer.headers = r->headers;
    r->transfer.ca_file = r->ca_file;
    r->transfer.connect_timeout_ms = r->connect_timeout_ms;
    r->transfer.timeout_ms = (long)budget;
    r->transfer.max_response_bytes = r->max_response_bytes;
    r->transfer.secret_answer = true; /* a Secret, an access token */
    r->transfer.done = on_transfer_done;
    r->attempts++;
    if (http_transfer_start(r->client->http, &r->transfer) < 0)
        complete(r, 0, NULL, 0, "cannot start an HTTP transfer");
}

/* Puts r on the waiting list if another attempt fits; false when it does not. */
static bool schedule_retry(struct request *r, long retry_after_s)
{
    int64_t now = clock_now_ms();
    int64_t wait = retry_wait_ms(r->attempts, retry_after_s, r->deadline_ms - now,
                                 (unsigned int)rand_r(&r->client->random_state));

    if (wait < 0)
        return false;
    r->not_before_ms = now + wait;
    r->next = r->client->waiting;
    r->client->waiting = r;
    return true;
}

static void on_transfer_done(struct http_transfer *transfer, const struct http_result *result)
{
    struct request *r = (struct request *)((char *)transfer - offsetof(struct request, transfer));
    char failure[HTTP_ERROR_SIZE + 128];

    if (result->failure == HTTP_FAILURE_CANCELLED) {
        complete(r, 0, NULL, 0, "connector shutting down");
        return;
    }
    if (result->failure == HTTP_FAILURE_NONE) {
        if (r->retry_status && r->retry_status(result->status) &&
            schedule_retry(r, result->retry_after_s))
            return;
        complete(r, result->status, result->body, result->body_len, NULL);
        return;
    }
    if (retry_transport_failure(result->failure, true) && schedule_retry(r, 0))
        return;
    snprintf(failure, sizeof(failure), "%s%s", result->detail,
             retry_transport_failure(result->failure, true)
                 ? " (gave up: no time for another attempt before the deadline)"
                 : "");
    complete(r, 0, NULL, 0, failure);
}

/* http_client.run_due: requests whose backoff is over. */
static int64_t run_due(void *ctx)
{
    struct http_request_client *client = ctx;
    int64_t now = clock_now_ms(), next_due = INT64_MAX;
    struct request **link = &client->waiting;

    while (*link) {
        struct request *r = *link;

        if (r->not_before_ms <= now) {
            *link = r->next;
            r->next = NULL;
            start_attempt(r);
        } else {
            if (r->not_before_ms - now < next_due)
                next_due = r->not_before_ms - now;
            link = &r->next;
        }
    }
    return next_due;
}

/* http_client.stop: requests backing off; those in a transfer the engine cancels itself. */
static void stop(void *ctx)
{
    struct http_request_client *client = ctx;

    while (client->waiting) {
        struct request *r = client->waiting;

        client->waiting = r->next;
        complete(r, 0, NULL, 0, "connector shutting down");
    }
}

/* http_job.run: a request handed over by http_request_start(). */
static void on_posted(struct http_job *job, bool cancelled)
{
    struct request *r = (struct request *)((char *)job - offsetof(struct request, job));

    if (cancelled)
        complete(r, 0, NULL, 0, "connector shutting down");
    else
        start_attempt(r);
}

struct http_request_client *http_request_client_new(struct http *http, char **reterr_msg)
{
    struct http_request_client *client = calloc(1, sizeof(*client));
    struct http_client engine_client = {.run_due = run_due, .stop = stop};

    if (!client)
        goto fail;
    client->http = http;
    client->random_state = (unsigned int)clock_now_ms() ^ (unsigned int)(uintptr_t)client;
    engine_client.ctx = client;
    if (http_add_client(http, &engine_client) < 0)
        goto fail;
    return client;
fail:
    free(client);
    *reterr_msg = strdup("out of memory");
    return NULL;
}

void http_request_client_free(struct http_request_client *client)
{
    free(client);
}

int http_request_start(struct http_request_client *client, const struct http_request_spec *spec,
                       http_request_done_fn done, void *user)
{
    struct request *r = calloc(1, sizeof(*r));
    int err;

    if (!r)
        return -ENOMEM;
    r->client = client;
    r->url = strdup(spec->url);
    r->body = spec->body ? strdup(spec->body) : NULL;
    r->ca_file = spec->ca_file ? strdup(spec->ca_file) : NULL;
    if (!r->url || (spec->body && !r->body) || (spec->ca_file && !r->ca_file))
        goto oom;
    for (const char *const *h = spec->headers; h && *h; h++) {
        struct curl_slist *appended = curl_slist_append(r->headers, *h);

        if (!appended)
            goto oom;
        r->headers = appended;
    }
    r->connect_timeout_ms = spec->connect_timeout_ms;
    r->attempt_timeout_ms = spec->attempt_timeout_ms;
    r->max_response_bytes = spec->max_response_bytes;
    r->deadline_ms = spec->deadline_ms;
    r->retry_status = spec->retry_status;
    r->done = done;
    r->user = user;
    r->job.run = on_posted;
    err = http_post(client->http, &r->job);
    if (err < 0)
        request_free(r);
    return err;
oom:
    request_free(r);
    return -ENOMEM;
}
