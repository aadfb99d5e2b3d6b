/*
 * test_run_info.c - daemon/run_info.c: the custom_info object a GetTask answer carries, from
 * runs/get answers written here in the Jobs API 2.1 shape. Expectations follow run_info.h's
 * list of keys (ids as digits, times in RFC 3339 UTC, durations in seconds).
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

#include "run_info.h"

static cJSON *build(const char *run_json, const struct run_info_output *output)
{
    cJSON *run = cJSON_Parse(run_json), *info = NULL;

    assert_non_null(run);
    assert_int_equal(run_info_build(run, output, &info), 0);
    cJSON_Delete(run);
    assert_true(cJSON_IsObject(info));
    return info;
}

static const char *str(const cJSON *info, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(info, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *info, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(info, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

#define FINISHED_RUN                                                                               \
    "{\"job_id\": 700000, \"run_id\": 1000, \"run_name\": \"nightly\", "                           \
    "\"run_page_url\": \"https://dbc.example.com/?o=1#job/700000/run/1000\", "                     \
    "\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"FAILED\", "             \
    "\"state_message\": \"Task failed\"}, "                                                        \
    "\"status\": {\"state\": \"TERMINATED\", \"termination_details\": {\"code\": "                 \
    "\"RUN_EXECUTION_ERROR\", \"type\": \"CLIENT_ERROR\", \"message\": \"Task failed\"}}, "        \
    "\"cluster_instance\": {\"cluster_id\": \"0101-abc\", \"spark_context_id\": \"5550\"}, "       \
    "\"start_time\": 1700000000000, \"end_time\": 1700000062500, \"setup_duration\": 12000, "      \
    "\"execution_duration\": 50000, \"cleanup_duration\": 500, \"run_duration\": 62500, "          \
    "\"tasks\": [{\"run_id\": 100001, \"task_key\": \"t\"}]}"

static void test_finished_run(void **state)
{
    cJSON *info = build(FINISHED_RUN, NULL);
    (void)state;

    assert_string_equal(str(info, "job_id"), "700000");
    assert_string_equal(str(info, "run_id"), "1000");
    assert_string_equal(str(info, "run_name"), "nightly");
    assert_string_equal(str(info, "run_page_url"),
                        "https://dbc.example.com/?o=1#job/700000/run/1000");
    assert_string_equal(str(info, "state"), "TERMINATED");
    assert_string_equal(str(info, "result_state"), "FAILED");
    assert_string_equal(str(info, "termination_code"), "RUN_EXECUTION_ERROR");
    assert_string_equal(str(info, "termination_type"), "CLIENT_ERROR");
    assert_string_equal(str(info, "termination_message"), "Task failed");
    assert_string_equal(str(info, "cluster_id"), "0101-abc");
    assert_string_equal(str(info, "spark_context_id"), "5550");
    /* 1700000000000 ms is 2023-11-14T22:13:20Z. */
    assert_string_equal(str(info, "start_time"), "2023-11-14T22:13:20.000Z");
    assert_string_equal(str(info, "end_time"), "2023-11-14T22:14:22.500Z");
    assert_true(num(info, "setup_duration_s") == 12.0);
    assert_true(num(info, "execution_duration_s") == 50.0);
    assert_true(num(info, "cleanup_duration_s") == 0.5);
    assert_true(num(info, "run_duration_s") == 62.5);
    /* One task: no task list. */
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "tasks"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "notebook_result"));
    cJSON_Delete(info);
}

static void test_running_run_leaves_out_what_is_not_known(void **state)
{
    cJSON *info = build("{\"job_id\": 1, \"run_id\": \"2\", \"state\": {\"life_cycle_state\": "
                        "\"PENDING\"}, \"start_time\": 1700000000000, \"end_time\": 0, "
                        "\"setup_duration\": 0, \"execution_duration\": 0}",
                        NULL);
    (void)state;

    assert_string_equal(str(info, "run_id"), "2");
    /* Without status, the life cycle state. */
    assert_string_equal(str(info, "state"), "PENDING");
    assert_non_null(str(info, "start_time"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "end_time"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "setup_duration_s"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "cluster_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "termination_code"));
    cJSON_Delete(info);
}

static void test_multi_task_lists_tasks(void **state)
{
    cJSON *info = build("{\"run_id\": 7, \"tasks\": ["
                        "{\"run_id\": 71, \"task_key\": \"extract\", \"state\": "
                        "{\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"SUCCESS\"}},"
                        "{\"run_id\": 72, \"task_key\": \"load\", \"status\": {\"state\": "
                        "\"RUNNING\"}, \"state\": {\"life_cycle_state\": \"RUNNING\"}}]}",
                        NULL);
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(info, "tasks");
    (void)state;

    assert_true(cJSON_IsArray(tasks));
    assert_int_equal(cJSON_GetArraySize(tasks), 2);
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 0), "task_key"), "extract");
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 0), "run_id"), "71");
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 0), "state"), "TERMINATED");
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 0), "result_state"), "SUCCESS");
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 1), "task_key"), "load");
    assert_string_equal(str(cJSON_GetArrayItem(tasks, 1), "state"), "RUNNING");
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "tasks_total"));
    cJSON_Delete(info);
}

static void test_many_tasks_are_cut(void **state)
{
    char *json = malloc(100000);
    size_t used;
    cJSON *info;
    (void)state;

    assert_non_null(json);
    used = (size_t)sprintf(json, "{\"tasks\": [");
    for (int i = 0; i < 200; i++)
        used += (size_t)sprintf(json + used, "%s{\"run_id\": %d, \"task_key\": \"k%d\"}",
                                i ? "," : "", i + 1, i);
    strcpy(json + used, "]}");
    info = build(json, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(info, "tasks")),
                     RUN_INFO_TASKS_MAX);
    assert_true(num(info, "tasks_total") == 200);
    cJSON_Delete(info);
    free(json);
}

static void test_notebook_result(void **state)
{
    struct run_info_output out = {.notebook_result = "42", .notebook_result_truncated = true};
    cJSON *info = build("{\"run_id\": 1}", &out);
    (void)state;

    assert_string_equal(str(info, "notebook_result"), "42");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "notebook_result_truncated")));
    cJSON_Delete(info);
    out.notebook_result_truncated = false;
    info = build("{\"run_id\": 1}", &out);
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "notebook_result_truncated"));
    cJSON_Delete(info);
}

static void test_hostile_values(void **state)
{
    char *long_name = malloc(10000), *json;
    cJSON *info;
    (void)state;

    assert_non_null(long_name);
    memset(long_name, 'n', 9999);
    long_name[9999] = '\0';
    assert_true(asprintf(&json,
                         "{\"run_name\": \"%s\", \"run_page_url\": \"javascript:alert(1)\", "
                         "\"job_id\": 1e300, \"run_id\": -1, \"start_time\": \"yesterday\", "
                         "\"setup_duration\": -5, \"cluster_instance\": \"x\", \"status\": 3, "
                         "\"tasks\": {}}",
                         long_name) > 0);
    info = build(json, NULL);
    assert_true(strlen(str(info, "run_name")) <= RUN_INFO_VALUE_MAX + 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "run_page_url"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "job_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "run_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "start_time"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "setup_duration_s"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "cluster_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "state"));
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "tasks"));
    cJSON_Delete(info);
    free(json);
    free(long_name);

    /* Not even an object: an empty custom_info, not a failure. */
    info = build("[1, 2]", NULL);
    assert_null(info->child);
    cJSON_Delete(info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_run),
        cmocka_unit_test(test_running_run_leaves_out_what_is_not_known),
        cmocka_unit_test(test_multi_task_lists_tasks),
        cmocka_unit_test(test_many_tasks_are_cut),
        cmocka_unit_test(test_notebook_result),
        cmocka_unit_test(test_hostile_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
