/*
 * dbx_response.h - what a Databricks HTTP answer means (pure: no I/O).
 *
 * The Databricks client (dbx.c) hands every finished HTTP answer here and
 * gets back one verdict: use the body, retry, or a final error with the
 * Databricks error_code and message. Keeping this pure lets the tests cover
 * every status/body combination without a network.
 */
#ifndef FDC_DBX_RESPONSE_H
#define FDC_DBX_RESPONSE_H

#include <cjson/cJSON.h>
#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>

enum dbx_verdict {
    DBX_VERDICT_OK,                 /* 2xx with a JSON object */
    DBX_VERDICT_RETRY,              /* transient: worth another attempt within the deadline */
    DBX_VERDICT_RUN_GONE,           /* the run does not exist (404, or 400 "does not exist") */
    DBX_VERDICT_UNAUTHENTICATED,    /* 401 */
    DBX_VERDICT_PERMISSION_DENIED,  /* 403 */
    DBX_VERDICT_INVALID,            /* 4xx verdict on the request itself */
    DBX_VERDICT_UNAVAILABLE,        /* transient trouble that is not retried (or retries ran out) */
    DBX_VERDICT_RESOURCE_EXHAUSTED, /* our own per-workspace limit held the request past its
                                       deadline */
    _DBX_VERDICT_MAX,
};

#define DBX_ERROR_CODE_SIZE 64
#define DBX_MESSAGE_SIZE 512

struct dbx_classified {
    enum dbx_verdict verdict;
    cJSON *body; /* owns: the parsed object when verdict is OK, else NULL */
    long http_status;
    char error_code[DBX_ERROR_CODE_SIZE]; /* Databricks error_code, or ours ("BAD_ANSWER") */
    char message[DBX_MESSAGE_SIZE];       /* human text naming the trouble; one line, UTF-8 */
};

/*
 * Classifies one HTTP answer. `retry_safe` says whether repeating the request
 * cannot do harm (reads, cancels, a submit carrying an idempotency_token):
 * only then do 500/502/504 and unreadable 2xx answers become RETRY. Fills
 * *ret completely; free its body with dbx_classified_done().
 */
void dbx_response_classify(long http_status, const char *content_type, const char *body,
                           size_t body_len, bool retry_safe, struct dbx_classified *ret);

/* Frees what *c owns; NULL-safe and idempotent. */
void dbx_classified_done(struct dbx_classified *c);

/* "OK", "RETRY", ... for logs and tests. */
const char *dbx_verdict_name(enum dbx_verdict verdict);

/* The gRPC status a handler answers for a final verdict: OK, NOT_FOUND (RUN_GONE; handlers
 * that have a better answer for a vanished run give it instead), UNAUTHENTICATED,
 * PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, else UNAVAILABLE. */
grpc_status_code dbx_verdict_status(enum dbx_verdict verdict);

/* Room for the digits dbx_response_run_id() writes, and the NUL. */
#define DBX_RUN_ID_SIZE 32

/*
 * Reads the "run_id" of a runs/submit answer (body borrowed): a JSON number, whole, 1 to
 * 2^53 - 1 (run ids are positive). Writes its decimal digits to ret_digits. Returns 0, or -EINVAL
 * (ret_digits untouched) when it is missing or not such a number.
 */
int dbx_response_run_id(const cJSON *body, char ret_digits[DBX_RUN_ID_SIZE]);

/*
 * The run page link flytekit's connector builds when a runs/get answer (body, borrowed) has no
 * run_page_url: "https://<instance>/#job/<job_id>/run/<run_id>", with the answer's numeric
 * "job_id". Gives the URL (free()), or NULL when there is no numeric job_id or memory ran out.
 */
char *dbx_response_job_run_url(const cJSON *body, const char *instance, const char *run_id);

#endif
