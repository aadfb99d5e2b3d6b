/*
 * test_dbx_response.c - every HTTP status / body shape the Databricks client
 * may meet, and the verdict it must reach. Expectations are written here
 * from the Databricks API rules, not derived from the production tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbx_response.h"

struct verdict_case {
    const char *name;
    long status;
    const char *content_type;
    const char *body;
    bool retry_safe;
    enum dbx_verdict expected;
    const char *expected_code; /* NULL: don't care */
};

static const struct verdict_case cases[] = {
    {"200 object", 200, "application/json", "{\"run_id\": 5}", false, DBX_VERDICT_OK, ""},
    {"200 empty safe", 200, "application/json", "", true, DBX_VERDICT_RETRY, "BAD_ANSWER"},
    {"200 empty unsafe", 200, "application/json", "", false, DBX_VERDICT_UNAVAILABLE, "BAD_ANSWER"},
    {"200 truncated", 200, "application/json", "{\"run_id\": 5", true, DBX_VERDICT_RETRY,
     "BAD_ANSWER"},
    {"200 html", 200, "text/html", "<html>proxy</html>", true, DBX_VERDICT_RETRY, "BAD_ANSWER"},
    {"200 array", 200, "application/json", "[1,2]", true, DBX_VERDICT_RETRY, "BAD_ANSWER"},
    {"429 unsafe", 429, "application/json",
     "{\"error_code\":\"REQUEST_LIMIT_EXCEEDED\",\"message\":\"slow down\"}", false,
     DBX_VERDICT_RETRY, "REQUEST_LIMIT_EXCEEDED"},
    {"503 unsafe", 503, "application/json",
     "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\",\"message\":\"later\"}", false, DBX_VERDICT_RETRY,
     "TEMPORARILY_UNAVAILABLE"},
    {"500 safe", 500, "application/json", "{\"error_code\":\"INTERNAL_ERROR\",\"message\":\"x\"}",
     true, DBX_VERDICT_RETRY, "INTERNAL_ERROR"},
    {"500 unsafe", 500, "application/json", "{\"error_code\":\"INTERNAL_ERROR\",\"message\":\"x\"}",
     false, DBX_VERDICT_UNAVAILABLE, "INTERNAL_ERROR"},
    {"502 html safe", 502, "text/html", "<html>bad gateway</html>", true, DBX_VERDICT_RETRY,
     "HTTP_502"},
    {"502 unsafe", 502, "text/html", "<html>bad gateway</html>", false, DBX_VERDICT_UNAVAILABLE,
     "HTTP_502"},
    {"504 empty safe", 504, NULL, "", true, DBX_VERDICT_RETRY, "HTTP_504"},
    {"504 unsafe", 504, NULL, "", false, DBX_VERDICT_UNAVAILABLE, "HTTP_504"},
    {"501", 501, NULL, "", true, DBX_VERDICT_UNAVAILABLE, "HTTP_501"},
    {"401", 401, "application/json",
     "{\"error_code\":\"UNAUTHENTICATED\",\"message\":\"bad token\"}", true,
     DBX_VERDICT_UNAUTHENTICATED, "UNAUTHENTICATED"},
    {"403", 403, "application/json", "{\"error_code\":\"PERMISSION_DENIED\",\"message\":\"no\"}",
     true, DBX_VERDICT_PERMISSION_DENIED, "PERMISSION_DENIED"},
    {"404 run", 404, "application/json",
     "{\"error_code\":\"RESOURCE_DOES_NOT_EXIST\",\"message\":\"Run 5 does not exist.\"}", true,
     DBX_VERDICT_RUN_GONE, "RESOURCE_DOES_NOT_EXIST"},
    {"404 endpoint", 404, "application/json",
     "{\"error_code\":\"ENDPOINT_NOT_FOUND\",\"message\":\"No API found\"}", true,
     DBX_VERDICT_INVALID, "ENDPOINT_NOT_FOUND"},
    {"400 run gone", 400, "application/json",
     "{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"Run 5 does not exist.\"}", true,
     DBX_VERDICT_RUN_GONE, "INVALID_PARAMETER_VALUE"},
    {"400 other param", 400, "application/json",
     "{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"num_workers must be >= 0\"}", true,
     DBX_VERDICT_INVALID, "INVALID_PARAMETER_VALUE"},
    {"400 malformed", 400, "application/json",
     "{\"error_code\":\"MALFORMED_REQUEST\",\"message\":\"bad json\"}", false, DBX_VERDICT_INVALID,
     "MALFORMED_REQUEST"},
    {"400 lock", 400, "application/json",
     "{\"error_code\":\"COULD_NOT_ACQUIRE_LOCK\",\"message\":\"busy\"}", false, DBX_VERDICT_RETRY,
     "COULD_NOT_ACQUIRE_LOCK"},
    {"400 html", 400, "text/html", "<html>nope</html>", true, DBX_VERDICT_INVALID, "HTTP_400"},
    {"302", 302, "text/html", "", true, DBX_VERDICT_UNAVAILABLE, "HTTP_302"},
};

static void test_verdicts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct verdict_case *c = &cases[i];
        struct dbx_classified out;

        dbx_response_classify(c->status, c->content_type, c->body, strlen(c->body), c->retry_safe,
                              &out);
        if (out.verdict != c->expected)
            fail_msg("%s: verdict %s, expected %s", c->name, dbx_verdict_name(out.verdict),
                     dbx_verdict_name(c->expected));
        if (c->expected_code && strcmp(out.error_code, c->expected_code) != 0)
            fail_msg("%s: error_code '%s', expected '%s'", c->name, out.error_code,
                     c->expected_code);
        assert_int_equal(out.http_status, c->status);
        if (c->expected == DBX_VERDICT_OK)
            assert_non_null(out.body);
        else
            assert_null(out.body);
        dbx_classified_done(&out);
        assert_null(out.body);
    }
}

static void test_message_is_databricks_message(void **state)
{
    struct dbx_classified out;
    const char *body =
        "{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"bad spark_version\"}";
    (void)state;
    dbx_response_classify(400, "application/json", body, strlen(body), false, &out);
    assert_string_equal(out.message, "bad spark_version");
    dbx_classified_done(&out);
}

static void test_message_is_printable(void **state)
{
    struct dbx_classified out;
    const char body[] = "{\"error_code\":\"X\",\"message\":\"line1\\nline2\\u0001\xc3\xa9\xff\"}";
    (void)state;
    dbx_response_classify(400, "application/json", body, strlen(body), false, &out);
    /* control characters become spaces; valid UTF-8 stays, a stray byte becomes U+FFFD */
    assert_string_equal(out.message, "line1 line2 \xc3\xa9\xef\xbf\xbd");
    dbx_classified_done(&out);
}

static void test_long_message_truncated(void **state)
{
    static char body[8192];
    struct dbx_classified out;
    size_t n;
    (void)state;
    n = (size_t)snprintf(body, sizeof(body), "{\"error_code\":\"X\",\"message\":\"");
    memset(body + n, 'a', 6000);
    n += 6000;
    snprintf(body + n, sizeof(body) - n, "\"}");
    dbx_response_classify(400, "application/json", body, strlen(body), false, &out);
    assert_int_equal(strlen(out.message), DBX_MESSAGE_SIZE - 1);
    dbx_classified_done(&out);
}

static void test_non_json_error_described(void **state)
{
    struct dbx_classified out;
    const char *body = "<html>gateway</html>";
    (void)state;
    dbx_response_classify(503, "text/html; charset=utf-8", body, strlen(body), false, &out);
    assert_non_null(strstr(out.message, "non-JSON"));
    assert_non_null(strstr(out.message, "text/html"));
    dbx_classified_done(&out);

    dbx_response_classify(503, NULL, NULL, 0, false, &out);
    assert_string_equal(out.message, "empty body");
    dbx_classified_done(&out);
}

static void test_wrong_types_in_error_body(void **state)
{
    struct dbx_classified out;
    const char *body = "{\"error_code\": 7, \"message\": [\"x\"]}";
    (void)state;
    dbx_response_classify(400, "application/json", body, strlen(body), false, &out);
    assert_int_equal(out.verdict, DBX_VERDICT_INVALID);
    assert_string_equal(out.error_code, "HTTP_400");
    dbx_classified_done(&out);
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(dbx_verdict_name(DBX_VERDICT_OK), "OK");
    assert_string_equal(dbx_verdict_name(DBX_VERDICT_RUN_GONE), "RUN_GONE");
    assert_string_equal(dbx_verdict_name((enum dbx_verdict)99), "UNKNOWN");
}

static void test_run_id(void **state)
{
    static const struct {
        const char *body;
        const char *digits; /* NULL: refused */
    } run_ids[] = {
        {"{\"run_id\": 1234}", "1234"},
        {"{\"run_id\": 1}", "1"},
        {"{\"run_id\": 0}", NULL}, /* run ids are positive */
        {"{\"run_id\": 1.0e3}", "1000"},
        {"{\"run_id\": 9007199254740991}", "9007199254740991"}, /* 2^53 - 1 */
        {"{\"run_id\": 9007199254740992}", NULL},               /* 2^53: no longer exact */
        {"{\"run_id\": 1e300}", NULL},
        {"{\"run_id\": -1}", NULL},
        {"{\"run_id\": 12.5}", NULL},
        {"{\"run_id\": \"1234\"}", NULL},
        {"{\"run_id\": null}", NULL},
        {"{\"run_id\": [1]}", NULL},
        {"{\"job_id\": 5}", NULL},
        {"{\"RUN_ID\": 5}", NULL},
        {"[1234]", NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(run_ids) / sizeof(run_ids[0]); i++) {
        cJSON *body = cJSON_Parse(run_ids[i].body);
        char digits[DBX_RUN_ID_SIZE] = "untouched";

        assert_non_null(body);
        if (run_ids[i].digits) {
            assert_int_equal(dbx_response_run_id(body, digits), 0);
            assert_string_equal(digits, run_ids[i].digits);
        } else {
            assert_int_equal(dbx_response_run_id(body, digits), -EINVAL);
            assert_string_equal(digits, "untouched");
        }
        cJSON_Delete(body);
    }
    assert_int_equal(dbx_response_run_id(NULL, (char[DBX_RUN_ID_SIZE]){0}), -EINVAL);
}

static void test_job_run_url(void **state)
{
    static const struct {
        const char *body;
        const char *url; /* NULL: none */
    } urls[] = {
        {"{\"job_id\": 77, \"run_id\": 42}", "https://h.example.com:8443/#job/77/run/42"},
        {"{\"job_id\": 1099511627776}", "https://h.example.com:8443/#job/1099511627776/run/42"},
        {"{\"job_id\": \"77\"}", NULL},
        {"{\"job_id\": null}", NULL},
        {"{\"run_id\": 42}", NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        cJSON *body = cJSON_Parse(urls[i].body);
        char *url = dbx_response_job_run_url(body, "h.example.com:8443", "42");

        if (urls[i].url)
            assert_string_equal(url, urls[i].url);
        else
            assert_null(url);
        free(url);
        cJSON_Delete(body);
    }
}

/* The status each final verdict answers (README: errors). */
static void test_verdict_status(void **state)
{
    (void)state;
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_OK), GRPC_STATUS_OK);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_RUN_GONE), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_UNAUTHENTICATED), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_PERMISSION_DENIED),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_INVALID), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_UNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_RESOURCE_EXHAUSTED),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(dbx_verdict_status(DBX_VERDICT_RETRY), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(dbx_verdict_status((enum dbx_verdict)99), GRPC_STATUS_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_status),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_message_is_databricks_message),
        cmocka_unit_test(test_message_is_printable),
        cmocka_unit_test(test_long_message_truncated),
        cmocka_unit_test(test_non_json_error_described),
        cmocka_unit_test(test_wrong_types_in_error_body),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_run_id),
        cmocka_unit_test(test_job_run_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
