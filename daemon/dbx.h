/*
 * dbx.h - the Databricks Jobs API client: runs/submit, runs/get, runs/cancel
 * and runs/get-output on the transfer engine (http.h), within the connector's
 * per-workspace limits, with retries of transient failures within each
 * request's deadline.
 *
 * Threads: dbx_new/dbx_free from main; dbx_request and dbx_reconfigure from
 * any thread, the loop thread included; the completion callback runs on the
 * loop thread and must not block.
 */
#ifndef FDC_DBX_H
#define FDC_DBX_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dbx_response.h"
#include "metrics.h"

struct dbx;
struct http;

enum dbx_endpoint {
    DBX_RUNS_SUBMIT, /* POST /api/2.1/jobs/runs/submit */
    DBX_RUNS_GET,    /* GET  /api/2.1/jobs/runs/get?run_id= */
    DBX_RUNS_CANCEL, /* POST /api/2.1/jobs/runs/cancel */
    /* GET  /api/2.1/jobs/runs/get-output?run_id= (a task run's id: a multi-task run's own id
     * is refused) */
    DBX_RUNS_GET_OUTPUT,
    _DBX_ENDPOINT_MAX,
};

struct dbx_settings {
    const char *token;   /* borrowed, copied; NULL: no Authorization header */
    const char *ca_file; /* borrowed, copied; extra CA bundle, NULL: system store only */
    long connect_timeout_ms;
    long request_timeout_ms; /* one attempt's ceiling; the request deadline can shorten it */
    long max_response_bytes;
    struct metrics *metrics; /* borrowed, may be NULL; must outlive the client */
    /* Per-workspace limits: defaults, then overrides (borrowed, copied). */
    long rate_limit_rps;          /* 0: none */
    long max_concurrent_requests; /* 0: none */
    const struct config_instance_limit *limits;
    size_t limits_count;
};

/* What a finished request gives its callback; valid during the callback only. */
struct dbx_answer {
    enum dbx_verdict verdict; /* never RETRY: retries happen inside dbx */
    long http_status;         /* 0 when no HTTP answer came */
    const cJSON *body;        /* the JSON object when verdict is OK */
    const char *error_code;   /* Databricks error_code or ours; "" when OK */
    const char *message;      /* names the trouble; never contains the token */
    int attempts;
};

typedef void (*dbx_done_fn)(void *user, const struct dbx_answer *answer);

/*
 * Makes a client of `http` (borrowed; must outlive the client), before the
 * loop thread starts. Gives a client (dbx_free) or NULL and *reterr_msg
 * (e.g. a CA file that holds no PEM certificate).
 */
struct dbx *dbx_new(const struct dbx_settings *settings, struct http *http, char **reterr_msg);

/*
 * Frees the client. Call after http_stop() (loop_free() does it), which
 * completes every request still queued or in flight with UNAVAILABLE
 * ("connector shutting down"). NULL-safe.
 */
void dbx_free(struct dbx *dbx);

/* One request to Databricks. Every pointer is borrowed for the duration of
 * dbx_request(), which copies what it keeps. */
struct dbx_call {
    enum dbx_endpoint endpoint;
    const char *instance; /* a validated host[:port] */
    const char *run_id;   /* GET endpoints (runs/get, runs/get-output): decimal digits; ignored by
                           * the others */
    /* The token for this request alone; NULL: the client's default token
     * (dbx_settings). Copied into the request's own header, never logged,
     * and zeroed when the request ends. */
    const char *token;
    /* Repeating the request cannot do harm: always for reads and cancels;
     * for a submit only with an idempotency_token. */
    bool retry_safe;
    int64_t deadline_ms; /* clock_now_ms() scale: the request answers by then, retries included */
};

/*
 * Queues `call`; `body` (POST only; NULL for GET) is taken. On success
 * `done` runs exactly once, on the loop thread. Returns 0, or -ENOMEM /
 * -ESHUTDOWN (then `done` never runs and the body is freed). Any thread.
 */
int dbx_request(struct dbx *dbx, const struct dbx_call *call, char *body, dbx_done_fn done,
                void *user);

/*
 * Applies new settings (token, CA file, timeouts, size cap, limits) to
 * requests that start from now on; transfers in flight finish with the old
 * ones. Any thread. Returns 0, or -errno and gives *reterr_msg when the CA
 * file is unusable, or -ENOMEM; then nothing changed. metrics is not
 * changed (restart-only).
 */
int dbx_reconfigure(struct dbx *dbx, const struct dbx_settings *settings, char **reterr_msg);

/* "runs/submit", ... */
const char *dbx_endpoint_name(enum dbx_endpoint endpoint);

#endif
