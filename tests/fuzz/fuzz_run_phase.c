/*
 * fuzz_run_phase - libFuzzer target: bytes as the body of a runs/get answer, through
 * dbx_response_classify() (as a 200 and as a few other statuses) and, when it is an OK
 * object, phase_from_run() and the run_id / job_id readers, and what GetTask and GetTaskLogs
 * read from runs/get and runs/get-output answers (run_output, run_info, log_page): what a
 * misbehaving workspace could send us.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dbx_response.h"
#include "errmsg.h"
#include "fuzz_text.h"
#include "log_page.h"
#include "phase.h"
#include "run_info.h"
#include "run_output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One line of valid UTF-8 within its buffer, as dbx_response.h promises for the message. */
static void check_printable(const char *s, size_t size)
{
    if (strnlen(s, size) == size)
        abort();
    fuzz_text_one_line(s);
}

static void classify(long status, const char *content_type, const char *body, size_t len,
                     bool retry_safe)
{
    struct dbx_classified c;
    struct phase_result r = {0};
    char *error = NULL;

    dbx_response_classify(status, content_type, body, len, retry_safe, &c);
    if (c.verdict >= _DBX_VERDICT_MAX || (c.verdict == DBX_VERDICT_OK) != (c.body != NULL))
        abort();
    check_printable(c.error_code, sizeof(c.error_code));
    check_printable(c.message, sizeof(c.message));
    (void)dbx_verdict_name(c.verdict);
    if (c.body) {
        char digits[DBX_RUN_ID_SIZE];
        char *url = dbx_response_job_run_url(c.body, "example.com", "1");

        /* A run id goes into resource_meta, which takes 1-19 digits. */
        if (dbx_response_run_id(c.body, digits) == 0 &&
            (!digits[0] || strlen(digits) > 19 || strspn(digits, "0123456789") != strlen(digits)))
            abort();
        free(url);
        if (phase_from_run(c.body, &r, &error) == 0) {
            if (!r.message || r.phase >= _PHASE_MAX || r.has_error != !!r.error_code)
                abort();
            if (strlen(r.message) > PHASE_MESSAGE_MAX)
                abort();
            (void)phase_name(r.phase);
            (void)phase_is_terminal(r.phase);
        }
    }
    phase_result_done(&r);
    free(error);
    dbx_classified_done(&c);
}

/* Every string is valid UTF-8 (a protobuf string): what runs/get-output gives GetTask. */
static void check_utf8(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;

    if (strlen(s) > max)
        abort();
    while (*p) {
        size_t len = errmsg_utf8_len(p);
        if (len == 0)
            abort();
        p += len;
    }
}

/* The object as a runs/get and as a runs/get-output answer. */
static void details(const cJSON *body)
{
    static const enum phase phases[] = {PHASE_RUNNING, PHASE_SUCCEEDED, PHASE_RETRYABLE_FAILED};
    struct run_output_plan plan;
    struct log_page page = {0};
    char id[RUN_OUTPUT_ID_SIZE], *text, *error = NULL;
    cJSON *info = NULL;
    bool cut;

    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        run_output_plan(body, phases[i], &plan);
        if (plan.fetch && strspn(plan.task_run_id, "0123456789") != strlen(plan.task_run_id))
            abort();
        if (run_output_logs_task(body, phases[i], id) && !id[0])
            abort();
    }
    text = run_output_error_text(body);
    if (text)
        check_utf8(text, RUN_OUTPUT_TEXT_MAX);
    free(text);
    text = run_output_notebook_result(body, &cut);
    if (text)
        check_utf8(text, RUN_OUTPUT_RESULT_MAX);
    free(text);
    if (run_info_build(body, NULL, &info) == 0) {
        char *printed = cJSON_PrintUnformatted(info);
        if (printed)
            check_utf8(printed, (size_t)-1);
        free(printed);
    }
    cJSON_Delete(info);
    if (log_page_select(body, 3, "1", &page, &error) == 0)
        for (size_t i = 0; i < page.count; i++)
            check_utf8(page.lines[i], LOG_PAGE_LINE_MAX);
    log_page_done(&page);
    free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long other_statuses[] = {400, 404, 429, 500, 503};
    /* The body as curl hands it over: a buffer with a NUL past the end. */
    char *body = malloc(size + 1);

    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    {
        cJSON *parsed = cJSON_ParseWithLength(body, size);
        if (cJSON_IsObject(parsed))
            details(parsed);
        cJSON_Delete(parsed);
    }
    classify(200, "application/json", body, size, true);
    classify(200, "application/json; charset=utf-8", body, size, false);
    classify(200, "text/html", body, size, true);
    classify(200, NULL, body, size, true);
    for (size_t i = 0; i < sizeof(other_statuses) / sizeof(other_statuses[0]); i++)
        classify(other_statuses[i], "application/json", body, size, i & 1);
    free(body);
    return 0;
}
