/*
 * dbx_response.c - turns a Databricks HTTP answer into a verdict.
 *
 * Databricks errors are JSON {"error_code": "...", "message": "..."}, but a
 * proxy in front of a workspace may answer with HTML, an empty body or the
 * wrong content type; none of that may crash us or become a task verdict.
 */
#include "dbx_response.h"
#include "errmsg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Status codes worth retrying. `any` = also for requests that are not
 * retry_safe (429 and 503 mean the request was not processed). Databricks
 * API docs and the Databricks SDKs retry the same set. */
static const struct {
    long status;
    bool any;
} retry_statuses[] = {
    {429, true}, {500, false}, {502, false}, {503, true}, {504, false},
};

static const char *const verdict_names[_DBX_VERDICT_MAX] = {
    [DBX_VERDICT_OK] = "OK",
    [DBX_VERDICT_RETRY] = "RETRY",
    [DBX_VERDICT_RUN_GONE] = "RUN_GONE",
    [DBX_VERDICT_UNAUTHENTICATED] = "UNAUTHENTICATED",
    [DBX_VERDICT_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [DBX_VERDICT_INVALID] = "INVALID",
    [DBX_VERDICT_UNAVAILABLE] = "UNAVAILABLE",
    [DBX_VERDICT_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
};

const char *dbx_verdict_name(enum dbx_verdict verdict)
{
    if (verdict < 0 || verdict >= _DBX_VERDICT_MAX)
        return "UNKNOWN";
    return verdict_names[verdict];
}

void dbx_classified_done(struct dbx_classified *c)
{
    if (!c)
        return;
    cJSON_Delete(c->body);
    c->body = NULL;
}

static bool status_retryable(long status, bool retry_safe)
{
    for (size_t i = 0; i < sizeof(retry_statuses) / sizeof(retry_statuses[0]); i++)
        if (retry_statuses[i].status == status)
            return retry_statuses[i].any || retry_safe;
    return false;
}

/* Databricks says "run does not exist" as 400 INVALID_PARAMETER_VALUE with
 * a message like "Run 123 does not exist." (jobs 2.1) as well as 404. */
static bool says_run_does_not_exist(const char *message)
{
    return strcasestr(message, "does not exist") != NULL;
}

static bool content_type_is_json(const char *content_type)
{
    return content_type && strncasecmp(content_type, "application/json", 16) == 0;
}

/* Fills error_code/message from a JSON error body, else describes the body. */
static void describe_error_body(const char *body, size_t body_len, const char *content_type,
                                struct dbx_classified *ret)
{
    cJSON *root = NULL;

    if (body && body_len > 0)
        root = cJSON_ParseWithLength(body, body_len);
    if (cJSON_IsObject(root)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "error_code");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (cJSON_IsString(code))
            errmsg_printable(ret->error_code, sizeof(ret->error_code), code->valuestring,
                             ERRMSG_ONE_LINE);
        if (cJSON_IsString(message))
            errmsg_printable(ret->message, sizeof(ret->message), message->valuestring,
                             ERRMSG_ONE_LINE);
    }
    if (ret->message[0] == '\0') {
        if (!body || body_len == 0)
            snprintf(ret->message, sizeof(ret->message), "empty body");
        else if (!content_type_is_json(content_type))
            snprintf(ret->message, sizeof(ret->message), "non-JSON answer (%.64s)",
                     content_type ? content_type : "no content type");
        else
            snprintf(ret->message, sizeof(ret->message), "unreadable JSON error body");
    }
    cJSON_Delete(root);
}

void dbx_response_classify(long http_status, const char *content_type, const char *body,
                           size_t body_len, bool retry_safe, struct dbx_classified *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->http_status = http_status;

    if (http_status >= 200 && http_status < 300) {
        cJSON *root = body && body_len > 0 ? cJSON_ParseWithLength(body, body_len) : NULL;
        if (cJSON_IsObject(root)) {
            ret->verdict = DBX_VERDICT_OK;
            ret->body = root;
            return;
        }
        cJSON_Delete(root);
        /* A 2xx we cannot read: likely a proxy or a cut connection. The
         * content type tells a login page from broken JSON. */
        snprintf(ret->error_code, sizeof(ret->error_code), "BAD_ANSWER");
        snprintf(ret->message, sizeof(ret->message), "HTTP %ld with %s (%.64s)", http_status,
                 !body || body_len == 0 ? "an empty body" : "a body that is not a JSON object",
                 content_type ? content_type : "no content type");
        ret->verdict = retry_safe ? DBX_VERDICT_RETRY : DBX_VERDICT_UNAVAILABLE;
        return;
    }

    describe_error_body(body, body_len, content_type, ret);
    if (ret->error_code[0] == '\0')
        snprintf(ret->error_code, sizeof(ret->error_code), "HTTP_%ld", http_status);

    if (status_retryable(http_status, retry_safe)) {
        ret->verdict = DBX_VERDICT_RETRY;
    } else if (http_status >= 500 || http_status == 429) {
        ret->verdict = DBX_VERDICT_UNAVAILABLE;
    } else if (http_status == 401) {
        ret->verdict = DBX_VERDICT_UNAUTHENTICATED;
    } else if (http_status == 403) {
        ret->verdict = DBX_VERDICT_PERMISSION_DENIED;
    } else if (http_status == 404 && strcmp(ret->error_code, "RESOURCE_DOES_NOT_EXIST") == 0) {
        ret->verdict = DBX_VERDICT_RUN_GONE;
    } else if (http_status == 400 && strcmp(ret->error_code, "INVALID_PARAMETER_VALUE") == 0 &&
               says_run_does_not_exist(ret->message)) {
        ret->verdict = DBX_VERDICT_RUN_GONE;
    } else if (http_status == 400 && strcmp(ret->error_code, "COULD_NOT_ACQUIRE_LOCK") == 0) {
        /* Databricks' own transient 400: nothing was applied. */
        ret->verdict = DBX_VERDICT_RETRY;
    } else if (http_status >= 400 && http_status < 500) {
        ret->verdict = DBX_VERDICT_INVALID;
    } else {
        /* 1xx/3xx: we never follow redirects; a redirect is a misconfigured instance. */
        ret->verdict = DBX_VERDICT_UNAVAILABLE;
    }
}

int dbx_response_run_id(const cJSON *body, char ret_digits[DBX_RUN_ID_SIZE])
{
    const cJSON *run_id = cJSON_GetObjectItemCaseSensitive(body, "run_id");

    /* Run ids are int64; cJSON reads numbers as doubles, exact below 2^53. */
    if (!cJSON_IsNumber(run_id) || run_id->valuedouble < 1 ||
        run_id->valuedouble > 9007199254740991.0 ||
        run_id->valuedouble != (double)(int64_t)run_id->valuedouble)
        return -EINVAL;
    snprintf(ret_digits, DBX_RUN_ID_SIZE, "%" PRId64, (int64_t)run_id->valuedouble);
    return 0;
}

char *dbx_response_job_run_url(const cJSON *body, const char *instance, const char *run_id)
{
    const cJSON *job_id = cJSON_GetObjectItemCaseSensitive(body, "job_id");
    char *url;

    /* flytekit: f"https://{databricks_instance}/#job/{job_id}/run/{run_id}" */
    if (!cJSON_IsNumber(job_id) ||
        asprintf(&url, "https://%s/#job/%.0f/run/%s", instance, job_id->valuedouble, run_id) < 0)
        return NULL;
    return url;
}

/* Indexed by enum dbx_verdict. RETRY never reaches a handler: dbx retries it. */
static const grpc_status_code verdict_statuses[_DBX_VERDICT_MAX] = {
    [DBX_VERDICT_OK] = GRPC_STATUS_OK,
    [DBX_VERDICT_RETRY] = GRPC_STATUS_UNAVAILABLE,
    [DBX_VERDICT_RUN_GONE] = GRPC_STATUS_NOT_FOUND,
    [DBX_VERDICT_UNAUTHENTICATED] = GRPC_STATUS_UNAUTHENTICATED,
    [DBX_VERDICT_PERMISSION_DENIED] = GRPC_STATUS_PERMISSION_DENIED,
    [DBX_VERDICT_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
    [DBX_VERDICT_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
    [DBX_VERDICT_RESOURCE_EXHAUSTED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
};

grpc_status_code dbx_verdict_status(enum dbx_verdict verdict)
{
    if ((unsigned)verdict >= _DBX_VERDICT_MAX)
        return GRPC_STATUS_UNAVAILABLE;
    return verdict_statuses[verdict];
}
