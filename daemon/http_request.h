/*
 * http_request.h - one HTTPS request of the daemon's small clients (the Kubernetes API for
 * per-namespace tokens, k8s.c; Databricks' OAuth token endpoint, oauth.c) on the transfer engine
 * (http.h), with transient failures retried within the request's deadline.
 *
 * The Databricks Jobs API has its own client (dbx.c), with per-workspace limits; these requests
 * are few (one per Secret or token, cached by the caller), so they only share the engine's multi
 * handle and loop thread, and retry.c's backoff.
 *
 * Threads: http_request_client_new/free from main; http_request_start from any thread; the
 * completion callback runs on the loop thread and must not block.
 */
#ifndef FDC_HTTP_REQUEST_H
#define FDC_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http;
struct http_request_client;

/* What one request asks for; every pointer is borrowed during http_request_start(), which
 * copies what it keeps. Headers may hold a secret: the copies are wiped when the request ends. */
struct http_request_spec {
    const char *url;            /* https:// only */
    const char *body;           /* POST body; NULL: GET */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; NULL: none */
    const char *ca_file;        /* CA bundle to verify the server with; NULL: the system store */
    long connect_timeout_ms;    /* per attempt */
    long attempt_timeout_ms;    /* per attempt; the deadline can shorten it */
    size_t max_response_bytes;  /* larger answers fail (and are not retried) */
    int64_t deadline_ms; /* clock_now_ms() scale: the request ends by then, retries included */
    bool (*retry_status)(long status); /* true: an answer with this status is worth another try */
};

/* How a request ended; valid during the callback only. */
struct http_request_result {
    long status;      /* the last answer's HTTP status; 0 when none came */
    const char *body; /* that answer, NUL-terminated ("" when none) */
    size_t body_len;
    const char *failure; /* without an answer: what went wrong, naming the cause; else "" */
    int attempts;
};

typedef void (*http_request_done_fn)(void *user, const struct http_request_result *result);

/* Makes the client and registers it with `http` (borrowed; must outlive it). Main thread, before
 * the loop starts. Gives a client (http_request_client_free) or NULL and *reterr_msg. */
struct http_request_client *http_request_client_new(struct http *http, char **reterr_msg);

/* Frees the client after http_stop(), which ended every request. NULL-safe. */
void http_request_client_free(struct http_request_client *client);

/*
 * Starts the request `spec` says. Returns 0: `done` runs exactly once, on the loop thread, when
 * an answer came that is not worth retrying, or retries no longer fit before the deadline, or
 * the engine stops ("connector shutting down"). Or returns -ENOMEM / -ESHUTDOWN: `done` never
 * runs. Any thread.
 */
int http_request_start(struct http_request_client *client, const struct http_request_spec *spec,
                       http_request_done_fn done, void *user);

#endif
