/*
 * test_run_output.c - daemon/run_output.c: which task run runs/get-output is asked about, and
 * the bounded error text and notebook result a GetTask shows. The runs/get and runs/get-output
 * answers are written here in the Jobs API 2.1 shapes (docs.databricks.com, jobs getrun and
 * getrunoutput), not derived from the module.
 */
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
#include "run_output.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static void plan(const char *run_json, enum phase phase, struct run_output_plan *ret)
{
    cJSON *run = parse(run_json);
    run_output_plan(run, phase, ret);
    cJSON_Delete(run);
}

/* Every byte is valid UTF-8 (what protobuf strings need). */
static void assert_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = errmsg_utf8_len(p);
        assert_true(n > 0);
        p += n;
    }
}

#define SINGLE_FAILED                                                                              \
    "{\"run_id\": 1000, \"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": "      \
    "\"FAILED\"}, \"tasks\": [{\"run_id\": 100001, \"task_key\": \"t\", \"spark_python_task\": "   \
    "{}, "                                                                                         \
    "\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"FAILED\"}}]}"

static void test_plan_single_task_failed_asks_the_task_run(void **state)
{
    struct run_output_plan p;
    (void)state;

    plan(SINGLE_FAILED, PHASE_RETRYABLE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "100001");
    assert_false(p.notebook);
}

static void test_plan_not_terminal_or_success_asks_nothing(void **state)
{
    struct run_output_plan p;
    (void)state;

    plan(SINGLE_FAILED, PHASE_RUNNING, &p);
    assert_false(p.fetch);
    assert_string_equal(p.task_run_id, "");
    plan(SINGLE_FAILED, PHASE_SUCCEEDED, &p);
    assert_false(p.fetch);
    plan(SINGLE_FAILED, PHASE_ABORTED, &p);
    assert_false(p.fetch);
}

static void test_plan_multi_task_picks_the_task_that_failed_itself(void **state)
{
    struct run_output_plan p;
    (void)state;

    /* b is UPSTREAM_FAILED because a failed; c succeeded. a is the one with an exception. */
    plan("{\"run_id\": 7, \"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": "
         "\"FAILED\"}, \"tasks\": ["
         "{\"run_id\": 71, \"task_key\": \"c\", \"state\": {\"life_cycle_state\": \"TERMINATED\", "
         "\"result_state\": \"SUCCESS\"}},"
         "{\"run_id\": 72, \"task_key\": \"b\", \"state\": {\"life_cycle_state\": \"TERMINATED\", "
         "\"result_state\": \"UPSTREAM_FAILED\"}},"
         "{\"run_id\": 73, \"task_key\": \"a\", \"state\": {\"life_cycle_state\": \"TERMINATED\", "
         "\"result_state\": \"FAILED\"}}]}",
         PHASE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "73");

    /* Only upstream failures: one of them is still better than nothing. */
    plan("{\"run_id\": 7, \"tasks\": ["
         "{\"run_id\": 71, \"state\": {\"life_cycle_state\": \"TERMINATED\", "
         "\"result_state\": \"SUCCESS\"}},"
         "{\"run_id\": 72, \"state\": {\"life_cycle_state\": \"TERMINATED\", "
         "\"result_state\": \"UPSTREAM_FAILED\"}}]}",
         PHASE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "72");

    /* The newer status decides too: TIMEDOUT-like code on a task, the other fine. */
    plan("{\"run_id\": 7, \"tasks\": ["
         "{\"run_id\": 71, \"status\": {\"state\": \"TERMINATED\", \"termination_details\": "
         "{\"code\": \"SUCCESS\", \"type\": \"SUCCESS\"}}},"
         "{\"run_id\": \"72\", \"status\": {\"state\": \"TERMINATED\", \"termination_details\": "
         "{\"code\": \"RUN_EXECUTION_ERROR\", \"type\": \"CLIENT_ERROR\"}}}]}",
         PHASE_RETRYABLE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "72");
}

static void test_plan_multi_task_without_a_failed_task_asks_nothing(void **state)
{
    struct run_output_plan p;
    (void)state;

    /* The run failed (e.g. INTERNAL_ERROR) but no task says so: no task to ask about, and the
     * run's own id would be refused. */
    plan("{\"run_id\": 7, \"state\": {\"life_cycle_state\": \"INTERNAL_ERROR\"}, \"tasks\": ["
         "{\"run_id\": 71, \"state\": {\"life_cycle_state\": \"RUNNING\"}},"
         "{\"run_id\": 72, \"state\": {\"life_cycle_state\": \"PENDING\"}}]}",
         PHASE_RETRYABLE_FAILED, &p);
    assert_false(p.fetch);
}

static void test_plan_single_task_that_did_not_fail_itself_is_still_asked(void **state)
{
    struct run_output_plan p;
    (void)state;

    /* A run-level INTERNAL_ERROR with its one task never terminated: the only task is it. */
    plan("{\"run_id\": 7, \"state\": {\"life_cycle_state\": \"INTERNAL_ERROR\"}, \"tasks\": ["
         "{\"run_id\": 71, \"state\": {\"life_cycle_state\": \"INTERNAL_ERROR\"}}]}",
         PHASE_RETRYABLE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "71");
}

static void test_plan_notebook_success_asks_for_the_exit_value(void **state)
{
    struct run_output_plan p;
    (void)state;

    plan("{\"run_id\": 9, \"tasks\": [{\"run_id\": 91, \"notebook_task\": {\"notebook_path\": "
         "\"/n\"}, \"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": "
         "\"SUCCESS\"}}]}",
         PHASE_SUCCEEDED, &p);
    assert_true(p.fetch);
    assert_true(p.notebook);
    assert_string_equal(p.task_run_id, "91");
}

static void test_plan_without_tasks_uses_the_run_id(void **state)
{
    struct run_output_plan p;
    (void)state;

    plan("{\"run_id\": 1234, \"state\": {\"life_cycle_state\": \"TERMINATED\"}}", PHASE_FAILED, &p);
    assert_true(p.fetch);
    assert_string_equal(p.task_run_id, "1234");
    /* Malformed ids are never asked about. */
    plan("{\"run_id\": -3}", PHASE_FAILED, &p);
    assert_false(p.fetch);
    plan("{\"run_id\": 1.5}", PHASE_FAILED, &p);
    assert_false(p.fetch);
    plan("{\"run_id\": \"12x\"}", PHASE_FAILED, &p);
    assert_false(p.fetch);
    plan("{\"tasks\": [{\"run_id\": true}]}", PHASE_FAILED, &p);
    assert_false(p.fetch);
    plan("[]", PHASE_FAILED, &p);
    assert_false(p.fetch);
}

static char *error_text(const char *output_json)
{
    cJSON *output = parse(output_json);
    char *text = run_output_error_text(output);
    cJSON_Delete(output);
    return text;
}

static void test_error_text_exception_then_trace_tail(void **state)
{
    char *text;
    (void)state;

    text = error_text("{\"error\": \"ValueError: boom\", \"error_trace\": \"Traceback (most "
                      "recent call last):\\n  File \\\"x.py\\\", line 3, in <module>\\n    "
                      "raise ValueError('boom')\\nValueError: boom\\n\"}");
    assert_non_null(text);
    assert_string_equal(text, "ValueError: boom\n"
                              "Traceback (most recent call last):\n"
                              "  File \"x.py\", line 3, in <module>\n"
                              "    raise ValueError('boom')\n"
                              "ValueError: boom");
    free(text);

    text = error_text("{\"error_trace\": \"only a trace\"}");
    assert_string_equal(text, "only a trace");
    free(text);
    text = error_text("{\"error\": \"only an error\\r\\nsecond line\"}");
    assert_string_equal(text, "only an error\nsecond line");
    free(text);
}

static void test_error_text_nothing_to_say(void **state)
{
    (void)state;
    assert_null(error_text("{}"));
    assert_null(error_text("{\"error\": \"\", \"error_trace\": \"\\n\\n\", \"logs\": \"x\"}"));
    assert_null(error_text("{\"error\": 5, \"error_trace\": [\"x\"]}"));
}

static void test_error_text_long_trace_keeps_the_last_lines(void **state)
{
    char *trace = malloc(1 << 20), *json, *text;
    size_t used = 0;
    (void)state;

    assert_non_null(trace);
    for (int i = 0; i < 20000; i++)
        used += (size_t)snprintf(trace + used, 64, "frame %05d\\n", i);
    assert_true(asprintf(&json, "{\"error\": \"E: last\", \"error_trace\": \"%s\"}", trace) > 0);
    text = error_text(json);
    assert_non_null(text);
    assert_true(strlen(text) <= RUN_OUTPUT_TEXT_MAX);
    assert_true(strncmp(text, "E: last\n...\n", 12) == 0);
    /* The innermost frames, in order, end the text. */
    assert_non_null(strstr(text, "frame 19998\nframe 19999"));
    assert_true(strcmp(text + strlen(text) - 11, "frame 19999") == 0);
    assert_null(strstr(text, "frame 00000"));
    free(text);
    free(json);
    free(trace);
}

static void test_error_text_is_bounded_and_valid_utf8(void **state)
{
    char *line = malloc(5000), *json, *text;
    (void)state;

    /* Lines of 2-byte characters far longer than a line may be, plus broken bytes. */
    assert_non_null(line);
    line[0] = '\0';
    for (int i = 0; i < 1200; i++)
        strcat(line, "\xc3\xa9");
    assert_true(asprintf(&json,
                         "{\"error\": \"%s\\n%s\\n%s\", \"error_trace\": \"%s\\n%s\\n%s\\n%s\\n%s"
                         "\\n%s\\n%s\"}",
                         line, line, line, line, line, line, line, line, line, line) > 0);
    text = error_text(json);
    assert_non_null(text);
    assert_true(strlen(text) <= RUN_OUTPUT_TEXT_MAX);
    assert_utf8(text);
    assert_non_null(strstr(text, "...")); /* lines were cut and marked */
    free(text);
    free(json);

    /* Control characters and colour codes: a notebook's trace. */
    text = error_text("{\"error\": \"\\u001b[0;31mKeyError\\u001b[0m: 'x'\\u0007\", "
                      "\"error_trace\": \"a\\tb\\u0001c\"}");
    assert_string_equal(text, "KeyError: 'x' \na\tb c");
    free(text);
    free(line);
}

static void test_error_text_head_is_bounded_in_lines(void **state)
{
    char *text;
    (void)state;

    text = error_text("{\"error\": \"1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\"}");
    /* The first lines of the error only. */
    assert_string_equal(text, "1\n2\n3\n4\n5\n6\n7\n8");
    free(text);
}

static void test_notebook_result(void **state)
{
    cJSON *out;
    char *r, *big, *json;
    bool truncated = false;
    (void)state;

    out = parse("{\"notebook_output\": {\"result\": \"42 rows\\nwritten\", \"truncated\": false}}");
    r = run_output_notebook_result(out, &truncated);
    assert_string_equal(r, "42 rows written");
    assert_false(truncated);
    free(r);
    cJSON_Delete(out);

    out = parse("{\"notebook_output\": {\"result\": \"x\", \"truncated\": true}}");
    r = run_output_notebook_result(out, &truncated);
    assert_true(truncated);
    free(r);
    cJSON_Delete(out);

    big = malloc(5000);
    assert_non_null(big);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    assert_true(asprintf(&json, "{\"notebook_output\": {\"result\": \"%s\"}}", big) > 0);
    out = parse(json);
    truncated = false;
    r = run_output_notebook_result(out, &truncated);
    assert_true(truncated);
    assert_true(strlen(r) <= RUN_OUTPUT_RESULT_MAX);
    free(r);
    cJSON_Delete(out);
    free(json);
    free(big);

    out = parse("{\"notebook_output\": {}}");
    assert_null(run_output_notebook_result(out, &truncated));
    cJSON_Delete(out);
}

static void test_logs_task(void **state)
{
    char id[RUN_OUTPUT_ID_SIZE];
    cJSON *run;
    (void)state;

    /* Running: the first task run, even before any failed. */
    run = parse(SINGLE_FAILED);
    assert_true(run_output_logs_task(run, PHASE_RUNNING, id));
    assert_string_equal(id, "100001");
    cJSON_Delete(run);
    /* Failed multi-task run: the task that failed itself. */
    run = parse("{\"run_id\": 7, \"tasks\": ["
                "{\"run_id\": 71, \"state\": {\"life_cycle_state\": \"TERMINATED\", "
                "\"result_state\": \"SUCCESS\"}},"
                "{\"run_id\": 72, \"state\": {\"life_cycle_state\": \"TERMINATED\", "
                "\"result_state\": \"FAILED\"}}]}");
    assert_true(run_output_logs_task(run, PHASE_RETRYABLE_FAILED, id));
    assert_string_equal(id, "72");
    assert_true(run_output_logs_task(run, PHASE_RUNNING, id));
    assert_string_equal(id, "71");
    cJSON_Delete(run);
    run = parse("{\"run_id\": 5}");
    assert_true(run_output_logs_task(run, PHASE_QUEUED, id));
    assert_string_equal(id, "5");
    cJSON_Delete(run);
    run = parse("{\"tasks\": [{\"task_key\": \"no id yet\"}]}");
    assert_false(run_output_logs_task(run, PHASE_QUEUED, id));
    cJSON_Delete(run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_single_task_failed_asks_the_task_run),
        cmocka_unit_test(test_plan_not_terminal_or_success_asks_nothing),
        cmocka_unit_test(test_plan_multi_task_picks_the_task_that_failed_itself),
        cmocka_unit_test(test_plan_multi_task_without_a_failed_task_asks_nothing),
        cmocka_unit_test(test_plan_single_task_that_did_not_fail_itself_is_still_asked),
        cmocka_unit_test(test_plan_notebook_success_asks_for_the_exit_value),
        cmocka_unit_test(test_plan_without_tasks_uses_the_run_id),
        cmocka_unit_test(test_error_text_exception_then_trace_tail),
        cmocka_unit_test(test_error_text_nothing_to_say),
        cmocka_unit_test(test_error_text_long_trace_keeps_the_last_lines),
        cmocka_unit_test(test_error_text_is_bounded_and_valid_utf8),
        cmocka_unit_test(test_error_text_head_is_bounded_in_lines),
        cmocka_unit_test(test_notebook_result),
        cmocka_unit_test(test_logs_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
