/*
 * http.h - the transfer engine: HTTPS requests on one libcurl multi handle,
 * shared by every client of the daemon (the Databricks client, dbx.c; the
 * Kubernetes and OAuth requests, http_request.c), with connection reuse, HTTP/2 multiplexing where
 * offered, a pool of easy handles, and answers collected under a size cap. Work is handed to the
 * thread that drives the engine (the loop thread, loop.c) from any thread; transfers finish there.
 *
 * Threads: http_new/http_free from main; http_post and http_wakeup from any
 * thread; everything else, and every callback, on the loop thread (the one
 * calling http_run()).
 */
#ifndef FDC_HTTP_H
#define FDC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http;
struct curl_slist;

/* How a transfer failed; translated from libcurl's CURLcode by a table in
 * http.c, so no CURLcode reaches a client. */
enum http_failure {
    HTTP_FAILURE_NONE,          /* an HTTP answer came, whatever its status */
    HTTP_FAILURE_RESOLVE,       /* the host name did not resolve */
    HTTP_FAILURE_CONNECT,       /* no connection could be made */
    HTTP_FAILURE_TIMEOUT,       /* the connect or attempt timeout passed */
    HTTP_FAILURE_SEND,          /* the request could not be sent */
    HTTP_FAILURE_RECV,          /* receiving the answer failed */
    HTTP_FAILURE_GOT_NOTHING,   /* the server closed without answering */
    HTTP_FAILURE_PARTIAL,       /* the answer ended early */
    HTTP_FAILURE_HTTP2,         /* an HTTP/2 framing or stream error */
    HTTP_FAILURE_TLS_UNTRUSTED, /* the server's certificate is not trusted */
    HTTP_FAILURE_TLS_CA_FILE,   /* the CA bundle cannot be used */
    HTTP_FAILURE_TLS_ISSUER,    /* the certificate's issuer does not match */
    HTTP_FAILURE_TLS_HANDSHAKE, /* the TLS handshake failed */
    HTTP_FAILURE_TOO_LARGE,     /* the answer is larger than max_response_bytes */
    HTTP_FAILURE_CANCELLED,     /* the engine stopped before the transfer ended */
    HTTP_FAILURE_OTHER,
    _HTTP_FAILURE_MAX,
};

/* How a transfer ended; given to its `done` callback, valid during it only. */
struct http_result {
    enum http_failure failure;
    const char *failure_name; /* libcurl's short text ("Couldn't connect to server"); "" if NONE */
    const char *detail;       /* libcurl's longer message when it gave one, else failure_name */
    long status;              /* HTTP status; 0 without an answer */
    const char *content_type; /* NULL when the answer had none */
    long retry_after_s;       /* the answer's Retry-After in seconds; 0 when none */
    const char *body;         /* the answer, NUL-terminated ("" when none) */
    size_t body_len;
    long new_connections; /* connections this transfer had to open */
};

struct http_transfer;

/* Runs once per started transfer, on the loop thread. The engine no longer
 * touches `transfer` afterwards: the client may restart, release or free it. */
typedef void (*http_done_fn)(struct http_transfer *transfer, const struct http_result *result);

/* Size of libcurl's error buffer (CURL_ERROR_SIZE; http.c checks). */
#define HTTP_ERROR_SIZE 256

/*
 * One HTTPS request, embedded in the client's own request so that starting
 * it allocates nothing. Zero it before first use. The client fills the
 * first part before each http_transfer_start(); those pointers are
 * borrowed until `done` runs. The rest is the engine's.
 */
struct http_transfer {
    const char *url;
    const char *body;                 /* POST body; NULL: GET */
    const struct curl_slist *headers; /* NULL: none */
    const char *ca_file;              /* extra CA bundle; NULL: the system store only */
    long connect_timeout_ms;
    long timeout_ms; /* the whole attempt */
    size_t max_response_bytes;
    bool secret_answer; /* the answer may hold a credential: wiped, not just freed */
    http_done_fn done;

    struct {
        void *easy; /* libcurl easy handle, kept between attempts */
        char *response;
        size_t response_len;
        size_t response_cap;
        bool too_large;
        char error[HTTP_ERROR_SIZE];
        struct http_transfer *prev, *next; /* attached to the multi handle */
    } engine;
};

/*
 * Work handed to the loop thread, embedded in the client's object: `run`
 * runs there once, with `cancelled` false, in posting order; or with
 * `cancelled` true when the engine stops first, when it must only answer
 * and free.
 */
struct http_job {
    struct http_job *next; /* the engine's */
    void (*run)(struct http_job *job, bool cancelled);
};

/*
 * A client of the engine with work of its own between transfers (retries
 * backing off, requests held by limits). Both callbacks run on the loop
 * thread.
 */
struct http_client {
    /* Starts what is due; gives ms until it next has something due
     * (INT64_MAX: nothing). Every round. */
    int64_t (*run_due)(void *ctx);
    /* The engine stops: answer everything held outside transfers and
     * jobs, which the engine cancels itself. Once. */
    void (*stop)(void *ctx);
    void *ctx;
};

/*
 * Gives an engine (http_free) whose multi handle opens at most
 * `max_host_connections` connections per host (0: 16), or NULL and
 * *reterr_msg.
 */
struct http *http_new(long max_host_connections, char **reterr_msg);

/* Frees the engine after http_stop(), or when nothing was ever posted or
 * started; the clients may be gone. NULL-safe. */
void http_free(struct http *http);

/* Adds a client (copied; its ctx must stay usable until http_stop()
 * returns). Main thread, before the loop starts. Returns 0 or -ENOSPC. */
int http_add_client(struct http *http, const struct http_client *client);

/* Queues `job` for the loop thread. Any thread. Returns 0, or -ESHUTDOWN
 * once the engine stopped (then `run` never runs). */
int http_post(struct http *http, struct http_job *job);

/*
 * Starts `transfer`, or restarts it for another attempt (the easy handle
 * kept from the last one is reused). Returns 0: `done` runs exactly once,
 * later; or -ENOMEM / -EIO: it never runs.
 */
int http_transfer_start(struct http *http, struct http_transfer *transfer);

/* Gives back what a transfer keeps between attempts (its easy handle and
 * answer buffer) once it is over for good; never while it runs. Loop thread,
 * or any thread for a transfer never started. */
void http_transfer_release(struct http *http, struct http_transfer *transfer);

/*
 * One round of the engine: runs the posted jobs, the clients' due work,
 * libcurl's transfers, and the `done` of each finished one. Gives ms until
 * a client has work due, 0 when jobs were posted meanwhile.
 */
int64_t http_run(struct http *http);

/*
 * Sleeps until a transfer's socket is ready, `extra_fd` (-1: none) polls
 * readable, http_wakeup() is called, or `timeout_ms` passes (libcurl's own
 * timers can shorten it). True when extra_fd polled readable.
 */
bool http_wait(struct http *http, int extra_fd, int timeout_ms);

/* Makes a current or the next http_wait() return at once. Any thread. */
void http_wakeup(struct http *http);

/*
 * Stops the engine: later posts fail with -ESHUTDOWN, posted jobs run
 * cancelled, the clients stop, and running transfers end with
 * HTTP_FAILURE_CANCELLED. Once, on the loop thread as it ends.
 */
void http_stop(struct http *http);

#endif
