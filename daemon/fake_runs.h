/*
 * fake_runs.h - the Jobs API of the fake workspace (`flyte-databricks-connector fake-workspace`):
 * its run table and the answers to runs/submit, runs/get, runs/cancel and runs/get-output.
 *
 * Shapes follow tests/fake/fake_databricks.py (the Python fake the end-to-end tests use) and
 * the public Jobs API 2.1 documentation. Unlike the Python fake, a run here is not scripted: it
 * advances with TIME, so a demo looks real whatever the polling rate. A run submitted at S is
 * PENDING until S + pending_ms, RUNNING until S + pending_ms + running_ms, then TERMINATED with
 * SUCCESS, or FAILED when the submit body asks for it (run_name containing "fail", or a
 * spark_python_task / notebook_task parameter equal to "--fail"). runs/cancel on an unfinished
 * run makes it TERMINATING for terminating_ms, then TERMINATED/CANCELED.
 *
 * Each task of a run is a task run with its own id (run_id * 100 + 1, + 2, ...) in runs/get's
 * tasks[]. runs/get-output answers for a task run id, or for a run's own id when it has one
 * task (several: 400 INVALID_PARAMETER_VALUE, as Databricks refuses it): a few lines of `logs`
 * once the run runs, and for a failed run the Python exception (FAKE_RUNS_ERROR) with its
 * traceback; a notebook that succeeded gives its exit value. *
 * The table keeps the newest max_runs runs; older ones are dropped (then unknown, as an expired
 * run is on a real workspace) together with their idempotency tokens.
 *
 * OAuth machine-to-machine, as a workspace serves a service principal: POST /oidc/v1/token with
 * the client id and secret as HTTP Basic credentials and the form body
 * grant_type=client_credentials&scope=all-apis gives {"access_token", "token_type": "Bearer",
 * "expires_in", "scope"}; wrong credentials get 401 {"error": "invalid_client", ...}. The Jobs
 * API takes the static token or an issued token until its expires_in has passed (then 401, so
 * a client fetches a new one). The newest max_tokens issued tokens are kept; an older one is
 * unknown (403), as any token never issued.
 *
 * Pure: no clock (every call takes `now_ms`, milliseconds since the epoch), no I/O, no locks.
 * A table is used by one thread at a time; the caller serialises.
 */
#ifndef FDC_FAKE_RUNS_H
#define FDC_FAKE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The first run id handed out; job ids start at FAKE_RUNS_FIRST_JOB_ID and advance with it. */
#define FAKE_RUNS_FIRST_RUN_ID 1000
#define FAKE_RUNS_FIRST_JOB_ID 700000
/* Longest idempotency_token accepted (Databricks' limit). */
#define FAKE_RUNS_TOKEN_MAX 64

/* The OAuth token endpoint (the path the daemon's oauth_token.h asks too). */
#define FAKE_RUNS_OIDC_TOKEN_PATH "/oidc/v1/token"
/* Random bytes a token request brings for the access token it may be given. */
#define FAKE_RUNS_ENTROPY_BYTES 16
/* Longest expires_in an issued token may have, in seconds: a day. */
#define FAKE_RUNS_TOKEN_LIFETIME_MAX_S 86400

/* The state_message of a run that fails on request, as Databricks words it; runs/get-output
 * then says why: FAKE_RUNS_ERROR, which the demo's failing sample shows. */
#define FAKE_RUNS_FAILURE_MESSAGE "Workload failed, see run output for details"
#define FAKE_RUNS_ERROR "ValueError: demo failure"

struct fake_runs;

struct fake_runs_options {
    const char *address;    /* borrows (copied): "HOST:PORT" used in run_page_url */
    const char *token;      /* borrows (copied): the bearer token requests must carry */
    int64_t pending_ms;     /* >= 0 */
    int64_t running_ms;     /* >= 0 */
    int64_t terminating_ms; /* >= 0: how long a cancelled run stays TERMINATING */
    size_t max_runs;        /* >= 1 */
    /* The service principal POST /oidc/v1/token serves; NULL client_id: every client is
     * refused and only `token` opens the Jobs API. */
    const char *client_id;     /* borrows (copied): non-empty, visible ASCII, no ':' */
    const char *client_secret; /* borrows (copied; wiped when freed): non-empty with client_id */
    int64_t token_lifetime_s;  /* with client_id: 1..FAKE_RUNS_TOKEN_LIFETIME_MAX_S */
    size_t max_tokens;         /* with client_id: >= 1, issued tokens kept */
};

/* A run's state at some instant, as fake_runs_state() computes it. Strings are static. */
struct fake_runs_state {
    const char *life_cycle_state;   /* "PENDING", "RUNNING", "TERMINATING", "TERMINATED" */
    const char *result_state;       /* NULL until TERMINATED: "SUCCESS", "FAILED", "CANCELED" */
    const char *state_message;      /* never NULL */
    int user_cancelled_or_timedout; /* 1 for a cancelled run once TERMINATED, else 0 */
    int64_t end_time_ms;            /* 0 until TERMINATED */
};

/* An HTTP request as the fake sees it. Every pointer borrows for the duration of the call. */
struct fake_runs_request {
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* without the query string, e.g. "/api/2.1/jobs/runs/get" */
    const char *query_run_id;    /* the run_id query argument, NULL when absent */
    unsigned query_run_id_count; /* how many run_id query arguments came (> 1 is refused) */
    const char *authorization;   /* the Authorization header, NULL when absent */
    const char *body;            /* need not be NUL-terminated; NULL when empty */
    size_t body_len;
    int64_t now_ms;
    /* FAKE_RUNS_ENTROPY_BYTES random bytes, of which a token request's access token is made;
     * NULL reads as zeros (tokens then differ only by their serial number: tests only). */
    const unsigned char *entropy;
};

/* What to answer. */
struct fake_runs_answer {
    int http_status;
    char *body;     /* owns: JSON text (an access token's, for a token request); release with
                     * fake_runs_answer_done(), which wipes it */
    int64_t run_id; /* the run the request named or created, -1 when none (for logging) */
};

/*
 * Makes an empty table. Returns 0 and gives *ret (free with fake_runs_free()), or -EINVAL when
 * an option is out of range, -ENOMEM; *reterr_msg (free()) names the option.
 */
int fake_runs_new(const struct fake_runs_options *options, struct fake_runs **ret,
                  char **reterr_msg);

/* Frees the table and every run (takes; NULL-safe). Returns NULL. */
struct fake_runs *fake_runs_free(struct fake_runs *t);

/* Number of runs the table holds now (at most max_runs). */
size_t fake_runs_count(const struct fake_runs *t);

/* Number of issued access tokens the table holds now, expired ones included (at most
 * max_tokens). */
size_t fake_runs_token_count(const struct fake_runs *t);

/*
 * Submits a run from `body` (borrows; the parsed runs/submit body) at now_ms. A body whose
 * idempotency_token a kept run already carries gives that run's id and creates nothing.
 * Returns 0 and sets *ret_run_id; or -EINVAL and gives *reterr_msg (free()) with the text of
 * a Databricks INVALID_PARAMETER_VALUE answer; or -ENOMEM (no message).
 */
int fake_runs_submit(struct fake_runs *t, const cJSON *body, int64_t now_ms, int64_t *ret_run_id,
                     char **reterr_msg);

/* Computes run_id's state at now_ms into *ret. Returns 0, or -ENOENT for an unknown run. */
int fake_runs_state(const struct fake_runs *t, int64_t run_id, int64_t now_ms,
                    struct fake_runs_state *ret);

/* Renders run_id's runs/get answer at now_ms. Returns 0 and gives *ret (cJSON_Delete()), or
 * -ENOENT for an unknown run, -ENOMEM. */
int fake_runs_get(const struct fake_runs *t, int64_t run_id, int64_t now_ms, cJSON **ret);

/* Renders runs/get-output for `run_id` (a task run's id, or a run's own when it has one task)
 * at now_ms. Returns 0 and gives *ret (cJSON_Delete()); -ENOENT for an unknown id, -EINVAL for
 * a run with several tasks (its own id is refused), -ENOMEM. */
int fake_runs_get_output(const struct fake_runs *t, int64_t run_id, int64_t now_ms, cJSON **ret);

/* Cancels run_id at now_ms: an unfinished run turns TERMINATING; a finished or already
 * cancelled run is left as it is. Returns 0, or -ENOENT for an unknown run. */
int fake_runs_cancel(struct fake_runs *t, int64_t run_id, int64_t now_ms);

/*
 * The authentication step of fake_runs_handle() alone, for a server that wants to refuse a
 * request before it reads the body (req->body is not read): returns 1 when req->authorization
 * carries what req->path needs (the client's Basic credentials for the token endpoint, else the
 * static token or an unexpired issued one at req->now_ms), else 0 with *ret filled with the
 * 401/403 answer (release with fake_runs_answer_done()), or -ENOMEM.
 */
int fake_runs_authorize(const struct fake_runs *t, const struct fake_runs_request *req,
                        struct fake_runs_answer *ret);

/*
 * Answers one HTTP request: authentication, routing, body and run_id parsing, then the calls
 * above, with Databricks' error shape {"error_code", "message"} on failure (401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 404 ENDPOINT_NOT_FOUND, 405 METHOD_NOT_ALLOWED, 400 MALFORMED_REQUEST /
 * INVALID_PARAMETER_VALUE); the token endpoint answers OAuth's {"error", "error_description"}
 * (401 invalid_client, 400 invalid_request / unsupported_grant_type / invalid_scope) and issues
 * a token at req->now_ms. Fills *ret (release with fake_runs_answer_done()); returns 0 or
 * -ENOMEM (then *ret is untouched).
 */
int fake_runs_handle(struct fake_runs *t, const struct fake_runs_request *req,
                     struct fake_runs_answer *ret);

/* Wipes and frees a's body and NULLs it; NULL-safe and idempotent. */
void fake_runs_answer_done(struct fake_runs_answer *a);

#endif
