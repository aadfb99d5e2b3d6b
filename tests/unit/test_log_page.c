/*
 * test_log_page.c - daemon/log_page.c: the lines GetTaskLogs answers, their pages (lines and
 * token, as flyteidl's GetTaskLogsRequest defines them) and the stream messages a page is cut
 * into. Outputs are written here in the runs/get-output shape.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "log_page.h"

#define OUTPUT                                                                                     \
    "{\"logs\": \"one\\ntwo\\r\\nthree\\n\", \"error\": \"E: four\", "                             \
    "\"error_trace\": \"five\\nsix\", \"metadata\": {\"run_id\": 1}}"

static void page_of(const char *json, uint64_t lines, const char *token, struct log_page *ret)
{
    cJSON *output = json ? cJSON_Parse(json) : NULL;
    char *error = NULL;

    if (json)
        assert_non_null(output);
    if (log_page_select(output, lines, token, ret, &error) != 0)
        fail_msg("log_page_select: %s", error ? error : "?");
    cJSON_Delete(output);
}

static void expect_lines(const struct log_page *p, const char *const *want, size_t n)
{
    assert_int_equal(p->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->lines[i], want[i]);
}

static void test_all_lines_in_order(void **state)
{
    static const char *const want[] = {"one", "two", "three", "E: four", "five", "six"};
    struct log_page p;
    (void)state;

    page_of(OUTPUT, 0, "", &p);
    expect_lines(&p, want, 6);
    assert_string_equal(p.next_token, "");
    log_page_done(&p);
}

static void test_pages_follow_tokens(void **state)
{
    static const char *const first[] = {"one", "two"};
    static const char *const second[] = {"three", "E: four"};
    static const char *const last[] = {"five", "six"};
    struct log_page p;
    char token[LOG_PAGE_TOKEN_SIZE];
    (void)state;

    page_of(OUTPUT, 2, "", &p);
    expect_lines(&p, first, 2);
    assert_string_equal(p.next_token, "2");
    snprintf(token, sizeof(token), "%s", p.next_token);
    log_page_done(&p);

    page_of(OUTPUT, 2, token, &p);
    expect_lines(&p, second, 2);
    assert_string_equal(p.next_token, "4");
    snprintf(token, sizeof(token), "%s", p.next_token);
    log_page_done(&p);

    /* The last page: nothing remains, the token is empty. */
    page_of(OUTPUT, 2, token, &p);
    expect_lines(&p, last, 2);
    assert_string_equal(p.next_token, "");
    log_page_done(&p);

    /* More asked than remain. */
    page_of(OUTPUT, 100, "5", &p);
    expect_lines(&p, last + 1, 1);
    assert_string_equal(p.next_token, "");
    log_page_done(&p);

    /* Past the end: an empty page, not an error. */
    page_of(OUTPUT, 2, "99", &p);
    assert_int_equal(p.count, 0);
    assert_string_equal(p.next_token, "");
    log_page_done(&p);
}

static void test_no_output_is_an_empty_page(void **state)
{
    struct log_page p;
    (void)state;

    page_of("{\"metadata\": {}}", 0, "", &p);
    assert_int_equal(p.count, 0);
    assert_string_equal(p.next_token, "");
    log_page_done(&p);
    page_of(NULL, 10, "", &p);
    assert_int_equal(p.count, 0);
    log_page_done(&p);
    page_of("{\"logs\": \"\", \"error\": 3, \"error_trace\": null}", 0, "", &p);
    assert_int_equal(p.count, 0);
    log_page_done(&p);
    /* Empty lines inside a field are lines; the final newline is not one. */
    page_of("{\"logs\": \"a\\n\\nb\\n\\n\"}", 0, "", &p);
    assert_int_equal(p.count, 3);
    assert_string_equal(p.lines[1], "");
    log_page_done(&p);
}

static void test_bad_tokens(void **state)
{
    static const char *const bad[] = {"-1", "abc", "1.5", " 3", "12345678901234567890", "0x10"};
    cJSON *output = cJSON_Parse(OUTPUT);
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct log_page p = {0};
        char *error = NULL;
        uint64_t first;

        assert_int_equal(log_page_select(output, 0, bad[i], &p, &error), -EINVAL);
        assert_non_null(error);
        assert_non_null(strstr(error, "is not one this connector gave"));
        free(error);
        assert_int_equal(log_page_parse_token(bad[i], &first), -EINVAL);
    }
    cJSON_Delete(output);
}

static void test_tokens_round_trip(void **state)
{
    char token[LOG_PAGE_TOKEN_SIZE];
    uint64_t first = 1;
    (void)state;

    log_page_token(0, token);
    assert_string_equal(token, "");
    assert_int_equal(log_page_parse_token(token, &first), 0);
    assert_int_equal(first, 0);
    log_page_token(1234567, token);
    assert_string_equal(token, "1234567");
    assert_int_equal(log_page_parse_token(token, &first), 0);
    assert_int_equal(first, 1234567);
    assert_int_equal(log_page_parse_token(NULL, &first), 0);
    assert_int_equal(first, 0);
}

static void test_lines_are_bounded_and_clean(void **state)
{
    char *json, *big = malloc(3 * LOG_PAGE_LINE_MAX);
    struct log_page p;
    (void)state;

    assert_non_null(big);
    for (size_t i = 0; i + 2 < 3 * LOG_PAGE_LINE_MAX; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[3 * LOG_PAGE_LINE_MAX - 2] = '\0';
    assert_true(asprintf(&json, "{\"logs\": \"%s\\n\\u001b[1mbold\\u001b[0m\\tx\\u0007\"}", big) >
                0);
    page_of(json, 0, "", &p);
    assert_int_equal(p.count, 2);
    assert_true(strlen(p.lines[0]) <= LOG_PAGE_LINE_MAX);
    assert_string_equal(p.lines[0] + strlen(p.lines[0]) - 3, "...");
    for (const unsigned char *c = (const unsigned char *)p.lines[0]; *c;) {
        size_t n = errmsg_utf8_len(c);
        assert_true(n > 0);
        c += n;
    }
    assert_string_equal(p.lines[1], "bold\tx ");
    log_page_done(&p);
    free(json);
    free(big);
}

static void test_page_size_is_capped(void **state)
{
    size_t n = LOG_PAGE_MAX_LINES + 5, used = 0;
    char *logs = malloc(n * 8 + 64), *json;
    struct log_page p;
    char token[LOG_PAGE_TOKEN_SIZE];
    (void)state;

    assert_non_null(logs);
    for (size_t i = 0; i < n; i++)
        used += (size_t)sprintf(logs + used, "l%zu\\n", i);
    assert_true(asprintf(&json, "{\"logs\": \"%s\"}", logs) > 0);
    page_of(json, 0, "", &p);
    assert_int_equal(p.count, LOG_PAGE_MAX_LINES);
    snprintf(token, sizeof(token), "%d", LOG_PAGE_MAX_LINES);
    assert_string_equal(p.next_token, token);
    log_page_done(&p);
    page_of(json, (uint64_t)1 << 40, token, &p);
    assert_int_equal(p.count, 5);
    assert_string_equal(p.lines[4], "l10004");
    log_page_done(&p);
    free(json);
    free(logs);
}

static void test_batches(void **state)
{
    struct log_page p = {0};
    char *long_line = malloc(LOG_PAGE_BATCH_BYTES / 2 + 1);
    size_t first, end, total = 0, messages = 0;
    (void)state;

    assert_non_null(long_line);
    memset(long_line, 'x', LOG_PAGE_BATCH_BYTES / 2);
    long_line[LOG_PAGE_BATCH_BYTES / 2] = '\0';
    p.count = 1200;
    p.lines = calloc(p.count, sizeof(*p.lines));
    assert_non_null(p.lines);
    for (size_t i = 0; i < p.count; i++)
        p.lines[i] = strdup(i >= 1100 ? long_line : "short");
    /* Lines by count first, then by bytes; every line goes out once, in order. */
    for (first = 0; first < p.count; first = end) {
        end = log_page_batch_end(&p, first);
        assert_true(end > first);
        assert_true(end - first <= LOG_PAGE_BATCH_LINES);
        if (first >= 1100)
            assert_true(end - first <= 2);
        total += end - first;
        messages++;
    }
    assert_int_equal(total, p.count);
    assert_int_equal(log_page_batch_end(&p, 0), LOG_PAGE_BATCH_LINES);
    assert_true(messages >= 3 + 50);
    log_page_done(&p);
    free(long_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_lines_in_order),
        cmocka_unit_test(test_pages_follow_tokens),
        cmocka_unit_test(test_no_output_is_an_empty_page),
        cmocka_unit_test(test_bad_tokens),
        cmocka_unit_test(test_tokens_round_trip),
        cmocka_unit_test(test_lines_are_bounded_and_clean),
        cmocka_unit_test(test_page_size_is_capped),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
