/* Unit tests for fake_runs.c: time-based states, the failure trigger, idempotency, cancel
 * transitions, unknown runs, the bound on the table, the runs/get rendering, the HTTP-level
 * answers (auth, routing, parsing, error shapes) and the OAuth token endpoint (client
 * credentials, grants, expiry, the bound on issued tokens). Times are passed explicitly;
 * expectations are written from the Jobs API documentation, RFC 6749 and the Python fake, not
 * from fake_runs.c's tables (the Basic credentials below were encoded with Python's base64). */
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

#include "fake_runs.h"
#include "phase.h"
#include "run_output.h"

#define T0 1700000000000LL /* submit time used throughout (epoch ms) */
#define PENDING 1000
#define RUNNING 2000
#define TERMINATING 500

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const simple_body = "{\"run_name\":\"hello\",\"existing_cluster_id\":\"c-1\","
                                       "\"spark_python_task\":{\"python_file\":\"dbfs:/x.py\"}}";

/* The OAuth client of the tables made with max_tokens, and its tokens' lifetime. */
#define CLIENT_ID "fdc-client"
#define CLIENT_SECRET "s3cret"
#define LIFETIME_S 60

/* A table keeping max_runs runs; with max_tokens > 0, also the OAuth client above, keeping
 * that many issued tokens. */
static struct fake_runs *make_table(size_t max_runs, size_t max_tokens)
{
    struct fake_runs_options o = {
        .address = "127.0.0.1:8443",
        .token = "tok",
        .pending_ms = PENDING,
        .running_ms = RUNNING,
        .terminating_ms = TERMINATING,
        .max_runs = max_runs,
        .client_id = max_tokens ? CLIENT_ID : NULL,
        .client_secret = max_tokens ? CLIENT_SECRET : NULL,
        .token_lifetime_s = LIFETIME_S,
        .max_tokens = max_tokens,
    };
    struct fake_runs *t = NULL;
    char *err = NULL;

    assert_int_equal(fake_runs_new(&o, &t, &err), 0);
    assert_null(err);
    assert_non_null(t);
    return t;
}

static struct fake_runs *new_table(size_t max_runs)
{
    return make_table(max_runs, 0);
}

static int64_t submit_text(struct fake_runs *t, const char *json, int64_t now)
{
    cJSON *body = cJSON_Parse(json);
    int64_t id = -1;
    char *err = NULL;

    assert_non_null(body);
    assert_int_equal(fake_runs_submit(t, body, now, &id, &err), 0);
    assert_null(err);
    cJSON_Delete(body);
    return id;
}

static void expect_state(struct fake_runs *t, int64_t id, int64_t now, const char *life,
                         const char *result)
{
    struct fake_runs_state s;

    assert_int_equal(fake_runs_state(t, id, now, &s), 0);
    assert_string_equal(s.life_cycle_state, life);
    if (result)
        assert_string_equal(s.result_state, result);
    else
        assert_null(s.result_state);
}

static void test_new_rejects_bad_options(void **state)
{
    static const struct {
        struct fake_runs_options o;
        const char *culprit;
    } cases[] = {
        {{.address = NULL, .token = "t", .max_runs = 1}, "address"},
        {{.address = "", .token = "t", .max_runs = 1}, "address"},
        {{.address = "a:1", .token = NULL, .max_runs = 1}, "token"},
        {{.address = "a:1", .token = "t", .pending_ms = -1, .max_runs = 1}, "pending_ms"},
        {{.address = "a:1", .token = "t", .running_ms = -5, .max_runs = 1}, "running_ms"},
        {{.address = "a:1", .token = "t", .terminating_ms = -1, .max_runs = 1}, "terminating_ms"},
        {{.address = "a:1", .token = "t", .max_runs = 0}, "max_runs"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs *t = NULL;
        char *err = NULL;

        assert_int_equal(fake_runs_new(&cases[i].o, &t, &err), -EINVAL);
        assert_null(t);
        assert_non_null(err);
        assert_non_null(strstr(err, cases[i].culprit));
        free(err);
    }
    assert_null(fake_runs_free(NULL));
}

static void test_state_over_time(void **state)
{
    static const struct {
        int64_t at;
        const char *life;
        const char *result;
        const char *message;
    } cases[] = {
        {0, "PENDING", NULL, "Waiting for cluster"}, {999, "PENDING", NULL, "Waiting for cluster"},
        {1000, "RUNNING", NULL, "In run"},           {2999, "RUNNING", NULL, "In run"},
        {3000, "TERMINATED", "SUCCESS", ""},         {86400000, "TERMINATED", "SUCCESS", ""},
    };
    struct fake_runs *t = new_table(10);
    int64_t id = submit_text(t, simple_body, T0);

    (void)state;
    assert_int_equal(id, 1000);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs_state s;

        assert_int_equal(fake_runs_state(t, id, T0 + cases[i].at, &s), 0);
        assert_string_equal(s.life_cycle_state, cases[i].life);
        if (cases[i].result)
            assert_string_equal(s.result_state, cases[i].result);
        else
            assert_null(s.result_state);
        assert_string_equal(s.state_message, cases[i].message);
        assert_int_equal(s.user_cancelled_or_timedout, 0);
        assert_int_equal(s.end_time_ms, cases[i].result ? T0 + 3000 : 0);
    }
    fake_runs_free(t);
}

static void test_zero_durations_end_at_once(void **state)
{
    struct fake_runs_options o = {.address = "h:1", .token = "t", .max_runs = 2};
    struct fake_runs *t = NULL;
    char *err = NULL;
    int64_t id;

    (void)state;
    assert_int_equal(fake_runs_new(&o, &t, &err), 0);
    id = submit_text(t, simple_body, T0);
    expect_state(t, id, T0, "TERMINATED", "SUCCESS");
    fake_runs_free(t);
}

static void test_failure_trigger(void **state)
{
    static const struct {
        const char *body;
        int fails;
    } cases[] = {
        {"{\"run_name\":\"demo-fail\",\"spark_python_task\":{}}", 1},
        {"{\"run_name\":\"FAILING sample\",\"notebook_task\":{}}", 1},
        {"{\"run_name\":\"ok\",\"spark_python_task\":{\"parameters\":[\"a\",\"--fail\"]}}", 1},
        {"{\"run_name\":\"ok\",\"notebook_task\":{\"base_parameters\":{\"mode\":\"--fail\"}}}", 1},
        {"{\"run_name\":\"ok\",\"tasks\":[{\"task_key\":\"a\",\"notebook_task\":{}},"
         "{\"task_key\":\"b\",\"spark_python_task\":{\"parameters\":[\"--fail\"]}}]}",
         1},
        {"{\"run_name\":\"hello\",\"spark_python_task\":{}}", 0},
        {"{\"spark_python_task\":{\"parameters\":[\"--failure\",\"fail\"]}}", 0},
        {"{\"run_name\":\"ok\",\"notebook_task\":{\"base_parameters\":{\"--fail\":\"x\"}}}", 0},
        {"{\"run_name\":\"ok\",\"spark_python_task\":{\"parameters\":\"--fail\"}}", 0},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs *t = new_table(4);
        int64_t id = submit_text(t, cases[i].body, T0);
        struct fake_runs_state s;

        assert_int_equal(fake_runs_state(t, id, T0 + 2999, &s), 0);
        assert_string_equal(s.life_cycle_state, "RUNNING");
        assert_int_equal(fake_runs_state(t, id, T0 + 3000, &s), 0);
        assert_string_equal(s.life_cycle_state, "TERMINATED");
        if (cases[i].fails) {
            assert_string_equal(s.result_state, "FAILED");
            /* Databricks' wording: the exception itself is in runs/get-output. */
            assert_string_equal(s.state_message, "Workload failed, see run output for details");
        } else {
            assert_string_equal(s.result_state, "SUCCESS");
        }
        fake_runs_free(t);
    }
}

static void test_idempotency(void **state)
{
    struct fake_runs *t = new_table(10);
    const char *with_a = "{\"idempotency_token\":\"a\",\"spark_python_task\":{}}";
    const char *with_b = "{\"idempotency_token\":\"b\",\"spark_python_task\":{}}";
    const char *none = "{\"spark_python_task\":{}}";

    (void)state;
    assert_int_equal(submit_text(t, with_a, T0), 1000);
    assert_int_equal(submit_text(t, with_a, T0 + 5000), 1000);
    assert_int_equal(fake_runs_count(t), 1);
    /* The repeat did not restart the run's clock. */
    expect_state(t, 1000, T0 + 3000, "TERMINATED", "SUCCESS");
    assert_int_equal(submit_text(t, with_b, T0), 1001);
    assert_int_equal(submit_text(t, none, T0), 1002);
    assert_int_equal(submit_text(t, none, T0), 1003);
    assert_int_equal(submit_text(t, with_a, T0), 1000);
    assert_int_equal(fake_runs_count(t), 4);
    fake_runs_free(t);
}

static void test_submit_refusals(void **state)
{
    static const struct {
        const char *body;
        const char *message;
    } cases[] = {
        {"{\"existing_cluster_id\":\"c\"}", "One of the task types must be provided"},
        {"{\"spark_python_task\":{},\"new_cluster\":{}}",
         "Missing required field: new_cluster.spark_version"},
        {"{\"spark_python_task\":{},\"new_cluster\":{\"spark_version\":\"13.3\"},"
         "\"existing_cluster_id\":\"c\"}",
         "Only one of existing_cluster_id and new_cluster may be set"},
        {"{\"tasks\":[{\"task_key\":\"a\"}]}", "One of the task types must be provided"},
        {"{\"tasks\":[1]}", "tasks must be a list of objects"},
        {"{\"spark_python_task\":{},\"idempotency_token\":7}", "idempotency_token must be"},
        {"{\"spark_python_task\":{},\"idempotency_token\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
         "idempotency_token must be"},
        {"[1]", "expected a JSON object"},
    };
    struct fake_runs *t = new_table(4);

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        cJSON *body = cJSON_Parse(cases[i].body);
        int64_t id = -7;
        char *err = NULL;

        assert_non_null(body);
        assert_int_equal(fake_runs_submit(t, body, T0, &id, &err), -EINVAL);
        assert_int_equal(id, -7);
        assert_non_null(err);
        assert_non_null(strstr(err, cases[i].message));
        free(err);
        cJSON_Delete(body);
    }
    assert_int_equal(fake_runs_count(t), 0);
    /* A 64-character token is within the limit. */
    assert_int_equal(
        submit_text(t,
                    "{\"spark_python_task\":{},\"idempotency_token\":"
                    "\"0123456789012345678901234567890123456789012345678901234567890123\"}",
                    T0),
        1000);
    fake_runs_free(t);
}

static void test_cancel_while_pending(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t id = submit_text(t, simple_body, T0);
    struct fake_runs_state s;

    (void)state;
    assert_int_equal(fake_runs_cancel(t, id, T0 + 200), 0);
    expect_state(t, id, T0 + 199, "PENDING", NULL);
    expect_state(t, id, T0 + 200, "TERMINATING", NULL);
    expect_state(t, id, T0 + 699, "TERMINATING", NULL);
    assert_int_equal(fake_runs_state(t, id, T0 + 700, &s), 0);
    assert_string_equal(s.life_cycle_state, "TERMINATED");
    assert_string_equal(s.result_state, "CANCELED");
    assert_int_equal(s.user_cancelled_or_timedout, 1);
    assert_int_equal(s.end_time_ms, T0 + 700);
    /* Never resumes: long after the natural end it is still cancelled. */
    expect_state(t, id, T0 + 100000, "TERMINATED", "CANCELED");
    /* A second cancel keeps the first one's timing. */
    assert_int_equal(fake_runs_cancel(t, id, T0 + 650), 0);
    expect_state(t, id, T0 + 700, "TERMINATED", "CANCELED");
    fake_runs_free(t);
}

static void test_cancel_while_running(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t id = submit_text(t, simple_body, T0);

    (void)state;
    assert_int_equal(fake_runs_cancel(t, id, T0 + 1500), 0);
    expect_state(t, id, T0 + 1499, "RUNNING", NULL);
    expect_state(t, id, T0 + 1500, "TERMINATING", NULL);
    expect_state(t, id, T0 + 2000, "TERMINATED", "CANCELED");
    fake_runs_free(t);
}

static void test_cancel_after_end_changes_nothing(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t ok = submit_text(t, simple_body, T0);
    int64_t bad = submit_text(t, "{\"run_name\":\"fail\",\"spark_python_task\":{}}", T0);

    (void)state;
    assert_int_equal(fake_runs_cancel(t, ok, T0 + 3000), 0);
    assert_int_equal(fake_runs_cancel(t, bad, T0 + 5000), 0);
    expect_state(t, ok, T0 + 3000, "TERMINATED", "SUCCESS");
    expect_state(t, ok, T0 + 9000, "TERMINATED", "SUCCESS");
    expect_state(t, bad, T0 + 9000, "TERMINATED", "FAILED");
    fake_runs_free(t);
}

static void test_unknown_runs(void **state)
{
    static const int64_t ids[] = {0, 5, 999, 1001, -1, INT64_MAX};
    struct fake_runs *t = new_table(4);

    (void)state;
    assert_int_equal(submit_text(t, simple_body, T0), 1000);
    for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
        struct fake_runs_state s;
        cJSON *j = NULL;

        assert_int_equal(fake_runs_state(t, ids[i], T0, &s), -ENOENT);
        assert_int_equal(fake_runs_get(t, ids[i], T0, &j), -ENOENT);
        assert_null(j);
        assert_int_equal(fake_runs_cancel(t, ids[i], T0), -ENOENT);
    }
    fake_runs_free(t);
}

static void test_bound_drops_oldest(void **state)
{
    struct fake_runs *t = new_table(3);
    char body[128];
    struct fake_runs_state s;

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof(body), "{\"idempotency_token\":\"t%d\",\"spark_python_task\":{}}", i);
        assert_int_equal(submit_text(t, body, T0 + i), 1000 + i);
        assert_int_equal(fake_runs_count(t), i < 3 ? (size_t)i + 1 : 3);
    }
    assert_int_equal(fake_runs_state(t, 1000, T0, &s), -ENOENT);
    assert_int_equal(fake_runs_state(t, 1001, T0, &s), -ENOENT);
    for (int64_t id = 1002; id <= 1004; id++)
        assert_int_equal(fake_runs_state(t, id, T0, &s), 0);
    /* The dropped run's token went with it; kept runs still answer theirs. */
    assert_int_equal(submit_text(t, "{\"idempotency_token\":\"t0\",\"spark_python_task\":{}}", T0),
                     1005);
    assert_int_equal(submit_text(t, "{\"idempotency_token\":\"t4\",\"spark_python_task\":{}}", T0),
                     1004);
    assert_int_equal(fake_runs_state(t, 1002, T0, &s), -ENOENT);
    assert_int_equal(fake_runs_count(t), 3);
    fake_runs_free(t);
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_get_rendering(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t id = submit_text(t, simple_body, T0);
    cJSON *j = NULL;
    const cJSON *tasks;

    (void)state;
    assert_int_equal(fake_runs_get(t, id, T0 + 10, &j), 0);
    assert_int_equal(num_at(j, "run_id"), 1000);
    assert_int_equal(num_at(j, "job_id"), 700000);
    assert_string_equal(str_at(j, "run_name", NULL), "hello");
    assert_string_equal(str_at(j, "run_page_url", NULL),
                        "https://127.0.0.1:8443/?o=0#job/700000/run/1000");
    assert_string_equal(str_at(j, "state", "life_cycle_state"), "PENDING");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "result_state"));
    assert_string_equal(str_at(j, "status", "state"), "PENDING");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "termination_details"));
    assert_true(cJSON_IsFalse(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "user_cancelled_or_timedout")));
    assert_true(num_at(j, "start_time") == (double)T0);
    assert_int_equal(num_at(j, "end_time"), 0);
    assert_null(cJSON_GetObjectItem(j, "cluster_instance"));
    tasks = cJSON_GetObjectItem(j, "tasks");
    assert_int_equal(cJSON_GetArraySize(tasks), 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(tasks, 0), "task_key", NULL), "hello");
    cJSON_Delete(j);

    assert_int_equal(fake_runs_get(t, id, T0 + 1500, &j), 0);
    assert_string_equal(str_at(j, "state", "life_cycle_state"), "RUNNING");
    assert_string_equal(str_at(j, "cluster_instance", "cluster_id"), "0101-000000-fake1000");
    cJSON_Delete(j);

    assert_int_equal(fake_runs_get(t, id, T0 + 4000, &j), 0);
    assert_string_equal(str_at(j, "state", "result_state"), "SUCCESS");
    assert_string_equal(str_at(j, "status", "state"), "TERMINATED");
    assert_true(num_at(j, "end_time") == (double)(T0 + 3000));
    assert_int_equal(num_at(j, "setup_duration"), 1000);
    assert_int_equal(num_at(j, "execution_duration"), 2000);
    assert_int_equal(num_at(j, "run_duration"), 3000);
    {
        const cJSON *d =
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "termination_details");

        assert_string_equal(str_at(d, "code", NULL), "SUCCESS");
        assert_string_equal(str_at(d, "type", NULL), "SUCCESS");
    }
    cJSON_Delete(j);
    fake_runs_free(t);
}

static void test_get_rendering_failed_and_cancelled(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t bad = submit_text(t,
                              "{\"run_name\":\"x\",\"tasks\":[{\"task_key\":\"one\",\"notebook_"
                              "task\":{\"base_parameters\":{\"a\":\"--fail\"}}},{\"task_key\":"
                              "\"two\",\"notebook_task\":{}}]}",
                              T0);
    int64_t gone = submit_text(t, simple_body, T0);
    cJSON *j = NULL;
    const cJSON *d;

    (void)state;
    assert_int_equal(fake_runs_get(t, bad, T0 + 3000, &j), 0);
    assert_string_equal(str_at(j, "format", NULL), "MULTI_TASK");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tasks")), 2);
    assert_string_equal(
        str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tasks"), 1), "task_key", NULL), "two");
    assert_string_equal(str_at(j, "state", "result_state"), "FAILED");
    d = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "termination_details");
    assert_string_equal(str_at(d, "code", NULL), "RUN_EXECUTION_ERROR");
    assert_string_equal(str_at(d, "type", NULL), "CLIENT_ERROR");
    assert_string_equal(str_at(d, "message", NULL), FAKE_RUNS_FAILURE_MESSAGE);
    cJSON_Delete(j);

    assert_int_equal(fake_runs_cancel(t, gone, T0 + 100), 0);
    assert_int_equal(fake_runs_get(t, gone, T0 + 300, &j), 0);
    assert_string_equal(str_at(j, "state", "life_cycle_state"), "TERMINATING");
    assert_string_equal(str_at(j, "status", "state"), "TERMINATING");
    cJSON_Delete(j);
    assert_int_equal(fake_runs_get(t, gone, T0 + 5000, &j), 0);
    assert_string_equal(str_at(j, "state", "result_state"), "CANCELED");
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "user_cancelled_or_timedout")));
    assert_true(num_at(j, "end_time") == (double)(T0 + 100 + TERMINATING));
    assert_null(cJSON_GetObjectItem(j, "cluster_instance")); /* cancelled before a cluster */
    d = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "termination_details");
    assert_string_equal(str_at(d, "code", NULL), "USER_CANCELED");
    cJSON_Delete(j);
    fake_runs_free(t);
}

/* The daemon's own reading (phase.c) of what the fake answers: the point of the fake. */
static void test_daemon_reads_answers(void **state)
{
    static const struct {
        const char *body;
        int cancel_at; /* -1: never */
        int64_t at;
        enum phase phase;
    } cases[] = {
        {"{\"run_name\":\"ok\",\"spark_python_task\":{}}", -1, 0, PHASE_QUEUED},
        {"{\"run_name\":\"ok\",\"spark_python_task\":{}}", -1, 1500, PHASE_RUNNING},
        {"{\"run_name\":\"ok\",\"spark_python_task\":{}}", -1, 3000, PHASE_SUCCEEDED},
        {"{\"run_name\":\"fail\",\"spark_python_task\":{}}", -1, 3000, PHASE_FAILED},
        {"{\"run_name\":\"ok\",\"spark_python_task\":{}}", 1200, 9000, PHASE_ABORTED},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs *t = new_table(2);
        int64_t id = submit_text(t, cases[i].body, T0);
        struct phase_result pr = {0};
        cJSON *j = NULL;

        if (cases[i].cancel_at >= 0)
            assert_int_equal(fake_runs_cancel(t, id, T0 + cases[i].cancel_at), 0);
        assert_int_equal(fake_runs_get(t, id, T0 + cases[i].at, &j), 0);
        assert_int_equal(phase_from_run(j, &pr, NULL), 0);
        /* Which flavour of "not started" or "failed" is phase.c's policy, not the fake's. */
        if (cases[i].phase == PHASE_QUEUED)
            assert_true(pr.phase == PHASE_QUEUED || pr.phase == PHASE_INITIALIZING ||
                        pr.phase == PHASE_WAITING_FOR_RESOURCES);
        else if (cases[i].phase == PHASE_FAILED)
            assert_true(pr.phase == PHASE_FAILED || pr.phase == PHASE_RETRYABLE_FAILED);
        else
            assert_int_equal(pr.phase, cases[i].phase);
        if (cases[i].phase == PHASE_FAILED)
            assert_true(pr.has_error);
        assert_string_equal(pr.run_page_url, "https://127.0.0.1:8443/?o=0#job/700000/run/1000");
        phase_result_done(&pr);
        cJSON_Delete(j);
        fake_runs_free(t);
    }
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* runs/get-output: task run ids, what a task says as it goes, and the daemon's reading. */
static void test_get_output(void **state)
{
    struct fake_runs *t = new_table(4);
    int64_t ok = submit_text(t, simple_body, T0);
    int64_t failing = submit_text(t, "{\"run_name\":\"fail\",\"spark_python_task\":{}}", T0);
    int64_t notebook = submit_text(t, "{\"run_name\":\"n\",\"notebook_task\":{}}", T0);
    int64_t multi = submit_text(t,
                                "{\"tasks\":[{\"task_key\":\"a\",\"notebook_task\":{}},"
                                "{\"task_key\":\"b\",\"spark_python_task\":{}}]}",
                                T0);
    cJSON *o = NULL, *run = NULL;
    struct run_output_plan plan;
    char *text, *digits;
    bool cut;

    (void)state;
    /* Pending: nothing printed yet. */
    assert_int_equal(fake_runs_get_output(t, ok, T0, &o), 0);
    assert_null(cJSON_GetObjectItem(o, "logs"));
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "run_id")->valuedouble ==
                (double)(ok * 100 + 1));
    cJSON_Delete(o);
    /* Running, by the task run id as well as the run's own (one task). */
    assert_int_equal(fake_runs_get_output(t, ok * 100 + 1, T0 + 1500, &o), 0);
    assert_non_null(strstr(str_of(o, "logs"), "Starting"));
    assert_null(strstr(str_of(o, "logs"), "Writing"));
    cJSON_Delete(o);
    assert_int_equal(fake_runs_get_output(t, ok, T0 + 3000, &o), 0);
    assert_non_null(strstr(str_of(o, "logs"), "Writing"));
    assert_null(cJSON_GetObjectItem(o, "error"));
    cJSON_Delete(o);

    /* Failed: the task the daemon picks from runs/get gives the exception. */
    assert_int_equal(fake_runs_get(t, failing, T0 + 3000, &run), 0);
    run_output_plan(run, PHASE_RETRYABLE_FAILED, &plan);
    assert_true(plan.fetch);
    assert_true(asprintf(&digits, "%lld", (long long)(failing * 100 + 1)) > 0);
    assert_string_equal(plan.task_run_id, digits);
    free(digits);
    assert_int_equal(fake_runs_get_output(t, failing * 100 + 1, T0 + 3000, &o), 0);
    assert_string_equal(str_of(o, "error"), FAKE_RUNS_ERROR);
    text = run_output_error_text(o);
    assert_non_null(strstr(text, "ValueError: demo failure\n"));
    assert_non_null(strstr(text, "raise ValueError(\"demo failure\")"));
    free(text);
    cJSON_Delete(o);
    cJSON_Delete(run);

    /* A notebook that succeeded: its exit value; runs/get says it is a notebook task. */
    assert_int_equal(fake_runs_get(t, notebook, T0 + 3000, &run), 0);
    run_output_plan(run, PHASE_SUCCEEDED, &plan);
    assert_true(plan.fetch && plan.notebook);
    cJSON_Delete(run);
    assert_int_equal(fake_runs_get_output(t, notebook, T0 + 3000, &o), 0);
    text = run_output_notebook_result(o, &cut);
    assert_string_equal(text, "demo notebook finished");
    free(text);
    cJSON_Delete(o);

    /* Several tasks: the run's own id is refused, each task answers under its own. */
    assert_int_equal(fake_runs_get_output(t, multi, T0 + 3000, &o), -EINVAL);
    assert_int_equal(fake_runs_get_output(t, multi * 100 + 2, T0 + 3000, &o), 0);
    assert_string_equal(str_of(cJSON_GetObjectItem(o, "metadata"), "task_key"), "b");
    cJSON_Delete(o);
    assert_int_equal(fake_runs_get_output(t, multi * 100 + 3, T0 + 3000, &o), -ENOENT);
    assert_int_equal(fake_runs_get_output(t, 77, T0, &o), -ENOENT);
    fake_runs_free(t);
}

/* ---- fake_runs_handle ---------------------------------------------------------------------- */

struct http_case {
    const char *method;
    const char *path;
    const char *query_run_id;
    unsigned query_count;
    const char *authorization;
    const char *body;
    int status;
    const char *error_code; /* NULL: success expected */
    const char *message;    /* exact message, or for success a substring of the body */
};

static void run_http_cases(struct fake_runs *t, const struct http_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct http_case *c = &cases[i];
        struct fake_runs_request req = {
            .method = c->method,
            .path = c->path,
            .query_run_id = c->query_run_id,
            .query_run_id_count = c->query_count ? c->query_count : (c->query_run_id ? 1 : 0),
            .authorization = c->authorization,
            .body = c->body,
            .body_len = c->body ? strlen(c->body) : 0,
            .now_ms = T0,
        };
        struct fake_runs_answer a = {0};
        cJSON *j;

        assert_int_equal(fake_runs_handle(t, &req, &a), 0);
        if (a.http_status != c->status)
            fail_msg("case %zu (%s %s): status %d, want %d: %s", i, c->method, c->path,
                     a.http_status, c->status, a.body);
        j = cJSON_Parse(a.body);
        assert_non_null(j);
        if (c->error_code) {
            assert_string_equal(str_at(j, "error_code", NULL), c->error_code);
            assert_string_equal(str_at(j, "message", NULL), c->message);
        } else if (c->message) {
            assert_non_null(strstr(a.body, c->message));
        }
        cJSON_Delete(j);
        fake_runs_answer_done(&a);
        assert_null(a.body);
        fake_runs_answer_done(&a);
    }
}

#define AUTH "Bearer tok"
#define SUBMIT "/api/2.1/jobs/runs/submit"
#define GET "/api/2.1/jobs/runs/get"
#define CANCEL "/api/2.1/jobs/runs/cancel"
#define OUTPUT "/api/2.1/jobs/runs/get-output"

static void test_http(void **state)
{
    static const struct http_case cases[] = {
        /* authentication comes first, whatever the route */
        {"GET", GET, "1000", 0, NULL, NULL, 401, "UNAUTHENTICATED",
         "Credential was not sent or was of an unsupported type for this API."},
        {"GET", "/nowhere", NULL, 0, "Basic dG9r", NULL, 401, "UNAUTHENTICATED",
         "Credential was not sent or was of an unsupported type for this API."},
        {"GET", GET, "1000", 0, "Bearer nope", NULL, 403, "PERMISSION_DENIED",
         "Invalid access token."},
        {"GET", GET, "1000", 0, "Bearer tok2", NULL, 403, "PERMISSION_DENIED",
         "Invalid access token."},
        /* routing */
        {"GET", "/api/2.1/jobs/list", NULL, 0, AUTH, NULL, 404, "ENDPOINT_NOT_FOUND",
         "No API found for 'GET /api/2.1/jobs/list'"},
        {"GET", SUBMIT, NULL, 0, AUTH, NULL, 405, "METHOD_NOT_ALLOWED",
         "Method GET is not allowed for /api/2.1/jobs/runs/submit"},
        {"POST", GET, "1000", 0, AUTH, "{}", 405, "METHOD_NOT_ALLOWED",
         "Method POST is not allowed for /api/2.1/jobs/runs/get"},
        /* bodies */
        {"POST", SUBMIT, NULL, 0, AUTH, NULL, 400, "MALFORMED_REQUEST",
         "Could not parse request object: malformed JSON"},
        {"POST", SUBMIT, NULL, 0, AUTH, "{\"run_name\":", 400, "MALFORMED_REQUEST",
         "Could not parse request object: malformed JSON"},
        {"POST", SUBMIT, NULL, 0, AUTH, "[]", 400, "MALFORMED_REQUEST",
         "Could not parse request object: expected a JSON object"},
        {"POST", SUBMIT, NULL, 0, AUTH, "{\"run_name\":\"x\"}", 400, "INVALID_PARAMETER_VALUE",
         "One of the task types must be provided: spark_python_task, notebook_task, "
         "spark_jar_task"},
        /* a run is made */
        {"POST", SUBMIT, NULL, 0, AUTH,
         "{\"run_name\":\"x\",\"spark_python_task\":{},\"idempotency_token\":\"k\"}", 200, NULL,
         "{\"run_id\":1000}"},
        {"POST", SUBMIT, NULL, 0, AUTH,
         "{\"run_name\":\"y\",\"spark_python_task\":{},\"idempotency_token\":\"k\"}", 200, NULL,
         "{\"run_id\":1000}"},
        /* runs/get */
        {"GET", GET, "1000", 0, AUTH, NULL, 200, NULL, "\"life_cycle_state\":\"PENDING\""},
        {"GET", GET, "77", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE", "Run 77 does not exist."},
        {"GET", GET, NULL, 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Missing required field: run_id"},
        {"GET", GET, "abc", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: 'abc' is not a valid int64"},
        {"GET", GET, "-3", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: '-3' is not a valid int64"},
        {"GET", GET, "", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: '' is not a valid int64"},
        {"GET", GET, "1234567890123456789", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: '1234567890123456789' is not a valid int64"},
        {"GET", GET, "1000", 2, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "run_id given more than once"},
        /* runs/cancel */
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":77}", 400, "INVALID_PARAMETER_VALUE",
         "Run 77 does not exist."},
        {"POST", CANCEL, NULL, 0, AUTH, "{}", 400, "INVALID_PARAMETER_VALUE",
         "Missing required field: run_id"},
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":true}", 400, "MALFORMED_REQUEST",
         "Could not parse request object: Expected an int64 for run_id in body"},
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":1.5}", 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: '1.5' is not a valid int64"},
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":\"x1\"}", 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: 'x1' is not a valid int64"},
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":\"1000\"}", 200, NULL, "{}"},
        {"GET", GET, "1000", 0, AUTH, NULL, 200, NULL, "\"life_cycle_state\":\"TERMINATING\""},
        {"POST", CANCEL, NULL, 0, AUTH, "{\"run_id\":1000}", 200, NULL, "{}"},
        /* runs/get-output */
        {"GET", OUTPUT, "100001", 0, AUTH, NULL, 200, NULL, "\"task_key\":\"x\""},
        {"GET", OUTPUT, "1000", 0, AUTH, NULL, 200, NULL, "\"metadata\""},
        {"GET", OUTPUT, "100002", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Run 100002 does not exist."},
        {"GET", OUTPUT, "x", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value for run_id: 'x' is not a valid int64"},
        {"POST", SUBMIT, NULL, 0, AUTH,
         "{\"tasks\":[{\"task_key\":\"a\",\"notebook_task\":{}},{\"task_key\":\"b\","
         "\"notebook_task\":{}}]}",
         200, NULL, "{\"run_id\":1001}"},
        {"GET", OUTPUT, "1001", 0, AUTH, NULL, 400, "INVALID_PARAMETER_VALUE",
         "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the "
         "output of each individual task run instead."},
    };
    struct fake_runs *t = new_table(4);

    (void)state;
    run_http_cases(t, cases, ELEMENTSOF(cases));
    assert_int_equal(fake_runs_count(t), 2);
    fake_runs_free(t);
}

static void test_http_reports_run_id(void **state)
{
    struct fake_runs *t = new_table(4);
    const char *body = "{\"spark_python_task\":{}}";
    struct fake_runs_request req = {.method = "POST",
                                    .path = SUBMIT,
                                    .authorization = AUTH,
                                    .body = body,
                                    .body_len = strlen(body),
                                    .now_ms = T0};
    struct fake_runs_answer a = {0};

    (void)state;
    assert_int_equal(fake_runs_handle(t, &req, &a), 0);
    assert_int_equal(a.run_id, 1000);
    fake_runs_answer_done(&a);
    req = (struct fake_runs_request){.method = "GET", .path = "/x", .authorization = AUTH};
    assert_int_equal(fake_runs_handle(t, &req, &a), 0);
    assert_int_equal(a.http_status, 404);
    assert_int_equal(a.run_id, -1);
    fake_runs_answer_done(&a);
    /* A body without a terminating NUL is read only up to body_len. */
    req = (struct fake_runs_request){.method = "POST",
                                     .path = CANCEL,
                                     .authorization = AUTH,
                                     .body = "{\"run_id\":1000}garbage",
                                     .body_len = 15,
                                     .now_ms = T0};
    assert_int_equal(fake_runs_handle(t, &req, &a), 0);
    assert_int_equal(a.http_status, 200);
    assert_int_equal(a.run_id, 1000);
    fake_runs_answer_done(&a);
    fake_runs_answer_done(NULL);
    fake_runs_free(t);
}

/* The check fake-workspace runs before it reads a body: the same verdicts as a whole request. */
static void test_authorize_alone(void **state)
{
    static const struct {
        const char *authorization;
        int r;
        int status;
        const char *code;
    } cases[] = {
        {AUTH, 1, 0, NULL},
        {NULL, 0, 401, "UNAUTHENTICATED"},
        {"Basic dG9r", 0, 401, "UNAUTHENTICATED"},
        {"Bearer nope", 0, 403, "PERMISSION_DENIED"},
        {"Bearer tok2", 0, 403, "PERMISSION_DENIED"},
    };
    struct fake_runs *t = new_table(4);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fake_runs_request req = {
            .method = "GET", .path = GET, .authorization = cases[i].authorization, .now_ms = T0};
        struct fake_runs_answer a = {.http_status = -7};

        assert_int_equal(fake_runs_authorize(t, &req, &a), cases[i].r);
        if (cases[i].r == 1) {
            assert_int_equal(a.http_status, -7); /* untouched */
            continue;
        }
        assert_int_equal(a.http_status, cases[i].status);
        assert_non_null(strstr(a.body, cases[i].code));
        fake_runs_answer_done(&a);
    }
    fake_runs_free(t);
}

/* ---- OAuth machine-to-machine ------------------------------------------------------------- */

#define TOKEN_PATH "/oidc/v1/token"
#define FORM "grant_type=client_credentials&scope=all-apis"
/* base64 of "fdc-client:s3cret", "fdc-client:wrong", "other:s3cret", "fdc-client" (no
 * colon) and "fdc-client:s3cret:x". */
#define BASIC_RIGHT "Basic ZmRjLWNsaWVudDpzM2NyZXQ="
#define BASIC_WRONG_SECRET "Basic ZmRjLWNsaWVudDp3cm9uZw=="
#define BASIC_WRONG_ID "Basic b3RoZXI6czNjcmV0"
#define BASIC_NO_COLON "Basic ZmRjLWNsaWVudA=="
#define BASIC_LONGER "Basic ZmRjLWNsaWVudDpzM2NyZXQ6eA=="

static struct fake_runs *new_oauth_table(size_t max_tokens)
{
    return make_table(4, max_tokens);
}

/* One request; gives the answer (fake_runs_answer_done()). */
static struct fake_runs_answer request(struct fake_runs *t, const char *method, const char *path,
                                       const char *authorization, const char *body, int64_t now,
                                       const unsigned char *entropy)
{
    struct fake_runs_request req = {
        .method = method,
        .path = path,
        .query_run_id = strcmp(path, GET) == 0 ? "77" : NULL,
        .query_run_id_count = strcmp(path, GET) == 0 ? 1 : 0,
        .authorization = authorization,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .now_ms = now,
        .entropy = entropy,
    };
    struct fake_runs_answer a = {0};

    assert_int_equal(fake_runs_handle(t, &req, &a), 0);
    assert_non_null(a.body);
    return a;
}

/* Asks for a token at now; gives the access token (free()) after checking the answer's shape. */
static char *issue(struct fake_runs *t, int64_t now, const unsigned char *entropy)
{
    struct fake_runs_answer a = request(t, "POST", TOKEN_PATH, BASIC_RIGHT, FORM, now, entropy);
    cJSON *j = cJSON_Parse(a.body);
    char *token;

    if (a.http_status != 200)
        fail_msg("token request: %d %s", a.http_status, a.body);
    assert_non_null(j);
    assert_string_equal(str_at(j, "token_type", NULL), "Bearer");
    assert_int_equal(cJSON_GetObjectItem(j, "expires_in")->valuedouble, LIFETIME_S);
    token = strdup(str_at(j, "access_token", NULL));
    assert_non_null(token);
    cJSON_Delete(j);
    fake_runs_answer_done(&a);
    return token;
}

/* The Jobs API's verdict on `authorization` at now: the HTTP status of a runs/get for an
 * unknown run (400 once the caller is let in). */
static int jobs_status(struct fake_runs *t, const char *authorization, int64_t now)
{
    struct fake_runs_answer a = request(t, "GET", GET, authorization, NULL, now, NULL);
    int status = a.http_status;

    fake_runs_answer_done(&a);
    return status;
}

static char *bearer(const char *token)
{
    char *h = malloc(strlen(token) + 8);

    assert_non_null(h);
    sprintf(h, "Bearer %s", token);
    return h;
}

static void test_oauth_rejects_bad_options(void **state)
{
    static const struct {
        const char *id, *secret;
        int64_t lifetime_s;
        size_t max_tokens;
        const char *culprit;
    } cases[] = {
        {"", "s", 60, 1, "client_id"},        {"a:b", "s", 60, 1, "client_id"},
        {"a b", "s", 60, 1, "client_id"},     {"a\x7f", "s", 60, 1, "client_id"},
        {"a", NULL, 60, 1, "client_secret"},  {"a", "", 60, 1, "client_secret"},
        {"a", "s", 0, 1, "token_lifetime_s"}, {"a", "s", 86401, 1, "token_lifetime_s"},
        {"a", "s", 60, 0, "max_tokens"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs_options o = {.address = "a:1",
                                      .token = "t",
                                      .max_runs = 1,
                                      .client_id = cases[i].id,
                                      .client_secret = cases[i].secret,
                                      .token_lifetime_s = cases[i].lifetime_s,
                                      .max_tokens = cases[i].max_tokens};
        struct fake_runs *t = NULL;
        char *err = NULL;

        assert_int_equal(fake_runs_new(&o, &t, &err), -EINVAL);
        assert_null(t);
        assert_non_null(strstr(err, cases[i].culprit));
        free(err);
    }
}

/* Who gets a token, and for which request (RFC 6749 4.4 and 5.2). */
static void test_oauth_client_credentials(void **state)
{
    static const struct {
        const char *method, *authorization, *body;
        int status;
        const char *error; /* NULL: a token is granted */
    } cases[] = {
        {"POST", BASIC_RIGHT, FORM, 200, NULL},
        /* the scheme's name is case-insensitive; parameters may come in any order, encoded */
        {"POST", "basic ZmRjLWNsaWVudDpzM2NyZXQ=", FORM, 200, NULL},
        {"POST", BASIC_RIGHT, "scope=all-apis&grant_type=client_credentials", 200, NULL},
        {"POST", BASIC_RIGHT, "grant_type=client%5Fcredentials&scope=all%2Dapis", 200, NULL},
        /* wrong or malformed credentials */
        {"POST", BASIC_WRONG_SECRET, FORM, 401, "invalid_client"},
        {"POST", BASIC_WRONG_ID, FORM, 401, "invalid_client"},
        {"POST", BASIC_NO_COLON, FORM, 401, "invalid_client"},
        {"POST", BASIC_LONGER, FORM, 401, "invalid_client"},
        {"POST", "Basic ZmRjLWNsaWVudDpzM2NyZXQ", FORM, 401, "invalid_client"},
        {"POST", "Basic !!!!", FORM, 401, "invalid_client"},
        {"POST", "Basic ", FORM, 401, "invalid_client"},
        {"POST", "Basic", FORM, 401, "invalid_client"},
        {"POST", "BasicZmRjLWNsaWVudDpzM2NyZXQ=", FORM, 401, "invalid_client"},
        {"POST", "Bearer tok", FORM, 401, "invalid_client"},
        {"POST", NULL, FORM, 401, "invalid_client"},
        /* authentication comes before the method and the body */
        {"GET", NULL, NULL, 401, "invalid_client"},
        {"POST", BASIC_WRONG_SECRET, "grant_type=password", 401, "invalid_client"},
        /* the grant */
        {"POST", BASIC_RIGHT, NULL, 400, "invalid_request"},
        {"POST", BASIC_RIGHT, "scope=all-apis", 400, "invalid_request"},
        {"POST", BASIC_RIGHT, FORM "&grant_type=client_credentials", 400, "invalid_request"},
        {"POST", BASIC_RIGHT, FORM "&scope=all-apis", 400, "invalid_request"},
        {"POST", BASIC_RIGHT, "grant_type=password&scope=all-apis", 400, "unsupported_grant_type"},
        {"POST", BASIC_RIGHT, "grant_type=client_credentials%zz&scope=all-apis", 400,
         "unsupported_grant_type"},
        {"POST", BASIC_RIGHT, "grant_type=client_credentials", 400, "invalid_scope"},
        {"POST", BASIC_RIGHT, "grant_type=client_credentials&scope=sql", 400, "invalid_scope"},
        {"POST", BASIC_RIGHT, "grant_type=client_credentials&scope=all-apis%00", 400,
         "invalid_scope"},
    };
    struct fake_runs *t = new_oauth_table(16);

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct fake_runs_answer a = request(t, cases[i].method, TOKEN_PATH, cases[i].authorization,
                                            cases[i].body, T0, NULL);
        cJSON *j = cJSON_Parse(a.body);

        if (a.http_status != cases[i].status)
            fail_msg("case %zu: status %d, want %d: %s", i, a.http_status, cases[i].status, a.body);
        assert_non_null(j);
        if (cases[i].error) {
            assert_string_equal(str_at(j, "error", NULL), cases[i].error);
            assert_non_null(str_at(j, "error_description", NULL));
            assert_null(cJSON_GetObjectItem(j, "access_token"));
        } else {
            assert_non_null(strstr(str_at(j, "access_token", NULL), "fake-oauth-"));
            assert_string_equal(str_at(j, "token_type", NULL), "Bearer");
            assert_string_equal(str_at(j, "scope", NULL), "all-apis");
            assert_int_equal(cJSON_GetObjectItem(j, "expires_in")->valuedouble, LIFETIME_S);
        }
        cJSON_Delete(j);
        fake_runs_answer_done(&a);
    }
    /* a granted request with the right credentials but GET: the route's method */
    {
        struct fake_runs_answer a = request(t, "GET", TOKEN_PATH, BASIC_RIGHT, NULL, T0, NULL);

        assert_int_equal(a.http_status, 405);
        fake_runs_answer_done(&a);
    }
    assert_int_equal(fake_runs_token_count(t), 4);
    fake_runs_free(t);

    /* Without a client, nobody gets a token. */
    t = new_table(4);
    {
        struct fake_runs_answer a = request(t, "POST", TOKEN_PATH, BASIC_RIGHT, FORM, T0, NULL);

        assert_int_equal(a.http_status, 401);
        assert_non_null(strstr(a.body, "invalid_client"));
        fake_runs_answer_done(&a);
    }
    assert_int_equal(fake_runs_token_count(t), 0);
    fake_runs_free(t);
}

/* An issued token opens the Jobs API until expires_in has passed; then 401 (fetch a new one). */
static void test_oauth_token_expiry(void **state)
{
    static const unsigned char entropy[16] = {0xde, 0xad, 0xbe, 0xef};
    struct fake_runs *t = new_oauth_table(16);
    char *token = issue(t, T0, entropy);
    char *auth = bearer(token);
    char *forged;

    (void)state;
    /* the entropy is in the token, after its serial number */
    assert_string_equal(token, "fake-oauth-1-deadbeef000000000000000000000000");
    assert_int_equal(jobs_status(t, auth, T0), 400);
    assert_int_equal(jobs_status(t, auth, T0 + LIFETIME_S * 1000 - 1), 400);
    assert_int_equal(jobs_status(t, auth, T0 + LIFETIME_S * 1000), 401);
    assert_int_equal(jobs_status(t, auth, T0 + 86400000), 401);
    /* the static token stays good */
    assert_int_equal(jobs_status(t, AUTH, T0 + 86400000), 400);
    /* a token issued later lives its own lifetime */
    {
        char *later = issue(t, T0 + LIFETIME_S * 1000, entropy);
        char *later_auth = bearer(later);

        assert_string_not_equal(later, token);
        assert_int_equal(jobs_status(t, later_auth, T0 + LIFETIME_S * 1000 + 1), 400);
        free(later_auth);
        free(later);
    }
    /* a token that was never issued, however close to one, is refused for good (403) */
    forged = strdup(auth);
    forged[strlen(forged) - 1] = '1';
    assert_int_equal(jobs_status(t, forged, T0), 403);
    assert_int_equal(jobs_status(t, "Bearer fake-oauth-3-deadbeef000000000000000000000000", T0),
                     403);
    assert_int_equal(jobs_status(t, "Bearer fake-oauth-0-", T0), 403);
    assert_int_equal(jobs_status(t, "Bearer fake-oauth-99999999999999999999999-x", T0), 403);
    assert_int_equal(jobs_status(t, "Bearer fake-oauth-", T0), 403);
    /* the client credentials do not open the Jobs API */
    assert_int_equal(jobs_status(t, BASIC_RIGHT, T0), 401);

    /* The check before the body gives the same verdicts. */
    {
        struct fake_runs_request req = {.method = "POST", .path = SUBMIT, .authorization = auth};
        struct fake_runs_answer a = {.http_status = -7};

        req.now_ms = T0 + 1;
        assert_int_equal(fake_runs_authorize(t, &req, &a), 1);
        req.now_ms = T0 + LIFETIME_S * 1000;
        assert_int_equal(fake_runs_authorize(t, &req, &a), 0);
        assert_int_equal(a.http_status, 401);
        assert_non_null(strstr(a.body, "UNAUTHENTICATED"));
        fake_runs_answer_done(&a);
        req = (struct fake_runs_request){
            .method = "POST", .path = TOKEN_PATH, .authorization = BASIC_RIGHT};
        assert_int_equal(fake_runs_authorize(t, &req, &a), 1);
        req.authorization = auth;
        assert_int_equal(fake_runs_authorize(t, &req, &a), 0);
        assert_int_equal(a.http_status, 401);
        assert_non_null(strstr(a.body, "invalid_client"));
        fake_runs_answer_done(&a);
    }
    free(forged);
    free(auth);
    free(token);
    fake_runs_free(t);
}

/* The table keeps the newest max_tokens tokens; an older one is unknown. */
static void test_oauth_token_bound(void **state)
{
    struct fake_runs *t = new_oauth_table(3);
    char *tokens[5], *auth;

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(tokens); i++) {
        tokens[i] = issue(t, T0, NULL);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(tokens[i], tokens[j]);
        assert_int_equal(fake_runs_token_count(t), i + 1 < 3 ? i + 1 : 3);
    }
    for (size_t i = 0; i < ELEMENTSOF(tokens); i++) {
        auth = bearer(tokens[i]);
        assert_int_equal(jobs_status(t, auth, T0 + 1), i < 2 ? 403 : 400);
        free(auth);
        free(tokens[i]);
    }
    fake_runs_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_options),
        cmocka_unit_test(test_state_over_time),
        cmocka_unit_test(test_zero_durations_end_at_once),
        cmocka_unit_test(test_failure_trigger),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_submit_refusals),
        cmocka_unit_test(test_cancel_while_pending),
        cmocka_unit_test(test_cancel_while_running),
        cmocka_unit_test(test_cancel_after_end_changes_nothing),
        cmocka_unit_test(test_unknown_runs),
        cmocka_unit_test(test_bound_drops_oldest),
        cmocka_unit_test(test_get_rendering),
        cmocka_unit_test(test_get_rendering_failed_and_cancelled),
        cmocka_unit_test(test_daemon_reads_answers),
        cmocka_unit_test(test_get_output),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_reports_run_id),
        cmocka_unit_test(test_authorize_alone),
        cmocka_unit_test(test_oauth_rejects_bad_options),
        cmocka_unit_test(test_oauth_client_credentials),
        cmocka_unit_test(test_oauth_token_expiry),
        cmocka_unit_test(test_oauth_token_bound),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
