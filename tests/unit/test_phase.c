/* Unit tests for daemon/phase.c: every Databricks state, result state, status state,
 * termination code and type, with expectations written here rather than derived from the
 * production tables; plus unknown values, precedence, bad input and message building. */
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

#include "phase.h"

/* A runs/get answer; NULL fields are left out. */
struct run_spec {
    const char *status_state;
    const char *code;
    const char *type;
    const char *term_msg;
    const char *life_cycle;
    const char *result;
    const char *state_msg;
    const char *url;
};

struct expect {
    enum phase phase;
    enum phase_origin origin; /* checked only when the phase is a failure */
    const char *error_code;   /* NULL: no error expected */
};

static cJSON *make_run(const struct run_spec *s)
{
    cJSON *run = cJSON_CreateObject();

    assert_non_null(run);
    cJSON_AddNumberToObject(run, "run_id", 42);
    if (s->status_state || s->code || s->type || s->term_msg) {
        cJSON *status = cJSON_AddObjectToObject(run, "status");
        if (s->status_state)
            cJSON_AddStringToObject(status, "state", s->status_state);
        if (s->code || s->type || s->term_msg) {
            cJSON *d = cJSON_AddObjectToObject(status, "termination_details");
            if (s->code)
                cJSON_AddStringToObject(d, "code", s->code);
            if (s->type)
                cJSON_AddStringToObject(d, "type", s->type);
            if (s->term_msg)
                cJSON_AddStringToObject(d, "message", s->term_msg);
        }
    }
    if (s->life_cycle || s->result || s->state_msg) {
        cJSON *state = cJSON_AddObjectToObject(run, "state");
        if (s->life_cycle)
            cJSON_AddStringToObject(state, "life_cycle_state", s->life_cycle);
        if (s->result)
            cJSON_AddStringToObject(state, "result_state", s->result);
        if (s->state_msg)
            cJSON_AddStringToObject(state, "state_message", s->state_msg);
    }
    if (s->url)
        cJSON_AddStringToObject(run, "run_page_url", s->url);
    return run;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        if (n == 0)
            return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

static void check_result(const struct phase_result *r, const struct expect *e, const char *what)
{
    bool failure = e->phase == PHASE_FAILED || e->phase == PHASE_RETRYABLE_FAILED;

    if (r->phase != e->phase)
        fail_msg("%s: phase %s, expected %s", what, phase_name(r->phase), phase_name(e->phase));
    assert_non_null(r->message);
    assert_true(r->message[0] != '\0');
    assert_true(utf8_valid(r->message));
    assert_int_equal(r->has_error, failure);
    assert_int_equal(r->error_recoverable, e->phase == PHASE_RETRYABLE_FAILED);
    if (failure) {
        if (r->error_origin != e->origin)
            fail_msg("%s: origin %d, expected %d", what, r->error_origin, e->origin);
        assert_non_null(r->error_code);
        if (e->error_code && strcmp(r->error_code, e->error_code) != 0)
            fail_msg("%s: error_code '%s', expected '%s'", what, r->error_code, e->error_code);
    } else {
        assert_null(r->error_code);
        assert_int_equal(r->error_origin, PHASE_ORIGIN_UNKNOWN);
    }
}

/* Runs phase_from_run on s; gives the result for more checks (caller calls done). */
static struct phase_result run_ok(const struct run_spec *s)
{
    struct phase_result r = {0};
    char *err = NULL;
    cJSON *run = make_run(s);
    int rc = phase_from_run(run, &r, &err);

    if (rc != 0)
        fail_msg("phase_from_run: %d %s", rc, err ? err : "");
    assert_null(err);
    cJSON_Delete(run);
    return r;
}

static void expect_run(const struct run_spec *s, const struct expect *e, const char *what)
{
    struct phase_result r = run_ok(s);

    check_result(&r, e, what);
    phase_result_done(&r);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* state.life_cycle_state alone (no status object). */
static void test_life_cycle_states(void **state)
{
    static const struct {
        const char *lc;
        struct expect e;
    } cases[] = {
        {"QUEUED", {PHASE_QUEUED, 0, NULL}},
        {"BLOCKED", {PHASE_QUEUED, 0, NULL}},
        {"PENDING", {PHASE_INITIALIZING, 0, NULL}},
        {"RUNNING", {PHASE_RUNNING, 0, NULL}},
        {"TERMINATING", {PHASE_RUNNING, 0, NULL}},
        {"WAITING_FOR_RETRY", {PHASE_RUNNING, 0, NULL}},
        {"SKIPPED", {PHASE_FAILED, PHASE_ORIGIN_USER, "SKIPPED"}},
        {"INTERNAL_ERROR", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "INTERNAL_ERROR"}},
        /* Over, but with no result at all: an unknown outcome. */
        {"TERMINATED", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "TERMINATED"}},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {.life_cycle = cases[i].lc};
        expect_run(&s, &cases[i].e, cases[i].lc);
    }
}

/* state TERMINATED + state.result_state. */
static void test_result_states(void **state)
{
    static const struct {
        const char *result;
        struct expect e;
    } cases[] = {
        {"SUCCESS", {PHASE_SUCCEEDED, 0, NULL}},
        {"SUCCESS_WITH_FAILURES", {PHASE_SUCCEEDED, 0, NULL}},
        {"FAILED", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER, "FAILED"}},
        {"TIMEDOUT", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER, "TIMEDOUT"}},
        {"CANCELED", {PHASE_ABORTED, 0, NULL}},
        {"MAXIMUM_CONCURRENT_RUNS_REACHED",
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "MAXIMUM_CONCURRENT_RUNS_REACHED"}},
        {"EXCLUDED", {PHASE_FAILED, PHASE_ORIGIN_USER, "EXCLUDED"}},
        {"UPSTREAM_FAILED", {PHASE_FAILED, PHASE_ORIGIN_USER, "UPSTREAM_FAILED"}},
        {"UPSTREAM_CANCELED", {PHASE_FAILED, PHASE_ORIGIN_USER, "UPSTREAM_CANCELED"}},
        {"DISABLED", {PHASE_FAILED, PHASE_ORIGIN_USER, "DISABLED"}},
        {"SOMETHING_NEW", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "SOMETHING_NEW"}},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {.life_cycle = "TERMINATED", .result = cases[i].result};
        expect_run(&s, &cases[i].e, cases[i].result);
    }
}

/* status.state alone (no termination details, no state object). */
static void test_status_states(void **state)
{
    static const struct {
        const char *st;
        struct expect e;
    } cases[] = {
        {"QUEUED", {PHASE_QUEUED, 0, NULL}},
        {"BLOCKED", {PHASE_QUEUED, 0, NULL}},
        {"PENDING", {PHASE_INITIALIZING, 0, NULL}},
        {"RUNNING", {PHASE_RUNNING, 0, NULL}},
        {"TERMINATING", {PHASE_RUNNING, 0, NULL}},
        {"WAITING", {PHASE_RUNNING, 0, NULL}},
        {"TERMINATED", {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "TERMINATED"}},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {.status_state = cases[i].st};
        expect_run(&s, &cases[i].e, cases[i].st);
    }
}

/* status TERMINATED + termination code, no type. */
static void test_termination_codes(void **state)
{
    static const struct {
        const char *code;
        enum phase phase;
        enum phase_origin origin;
    } cases[] = {
        {"SUCCESS", PHASE_SUCCEEDED, 0},
        {"SUCCESS_WITH_FAILURES", PHASE_SUCCEEDED, 0},
        {"USER_CANCELED", PHASE_ABORTED, 0},
        {"CANCELED", PHASE_ABORTED, 0},
        {"RUN_EXECUTION_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
        {"CLUSTER_TERMINATED_BY_USER", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
        {"SKIPPED", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"DISABLED", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"INVALID_CLUSTER_REQUEST", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"REPOSITORY_CHECKOUT_FAILED", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"LIBRARY_INSTALLATION_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"UNAUTHORIZED_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"INVALID_RUN_CONFIGURATION", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"FEATURE_DISABLED", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"RESOURCE_NOT_FOUND", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"STORAGE_ACCESS_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"BUDGET_POLICY_LIMIT_EXCEEDED", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"INTERNAL_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"CLOUD_FAILURE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"DRIVER_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"CLUSTER_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"WORKSPACE_RUN_LIMIT_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"CLUSTER_REQUEST_LIMIT_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"MAX_CONCURRENT_RUNS_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"MAX_JOB_QUEUE_SIZE_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"MAX_SPARK_CONTEXTS_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"BREAKING_CHANGE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        /* Unknown code, nothing else known. */
        {"BRAND_NEW_CODE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {.status_state = "TERMINATED", .code = cases[i].code};
        struct expect e = {cases[i].phase, cases[i].origin, cases[i].code};
        expect_run(&s, &e, cases[i].code);
    }
}

/* status TERMINATED + termination type, with an unknown code (so the type decides) and
 * without a code. */
static void test_termination_types(void **state)
{
    static const struct {
        const char *type;
        enum phase phase;
        enum phase_origin origin;
    } cases[] = {
        {"SUCCESS", PHASE_SUCCEEDED, 0},
        {"CLIENT_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
        {"INTERNAL_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"CLOUD_FAILURE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
        {"NEW_TYPE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {
            .status_state = "TERMINATED", .code = "NOT_A_KNOWN_CODE", .type = cases[i].type};
        struct expect e = {cases[i].phase, cases[i].origin, "NOT_A_KNOWN_CODE"};
        expect_run(&s, &e, cases[i].type);

        struct run_spec s2 = {.status_state = "TERMINATED", .type = cases[i].type};
        struct expect e2 = {cases[i].phase, cases[i].origin, cases[i].type};
        expect_run(&s2, &e2, cases[i].type);
    }
}

static void test_precedence(void **state)
{
    static const struct {
        const char *what;
        struct run_spec s;
        struct expect e;
    } cases[] = {
        {"user code failed: code beats CLIENT_ERROR type",
         {.status_state = "TERMINATED",
          .code = "RUN_EXECUTION_ERROR",
          .type = "CLIENT_ERROR",
          .life_cycle = "TERMINATED",
          .result = "FAILED"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER, "RUN_EXECUTION_ERROR"}},
        {"config code with its type",
         {.status_state = "TERMINATED",
          .code = "INVALID_CLUSTER_REQUEST",
          .type = "CLIENT_ERROR",
          .life_cycle = "TERMINATED",
          .result = "FAILED"},
         {PHASE_FAILED, PHASE_ORIGIN_USER, "INVALID_CLUSTER_REQUEST"}},
        {"platform code beats a CLIENT_ERROR type",
         {.status_state = "TERMINATED", .code = "DRIVER_ERROR", .type = "CLIENT_ERROR"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "DRIVER_ERROR"}},
        {"user cancel code beats result FAILED",
         {.status_state = "TERMINATED",
          .code = "USER_CANCELED",
          .life_cycle = "TERMINATED",
          .result = "FAILED"},
         {PHASE_ABORTED, 0, NULL}},
        {"type beats result",
         {.status_state = "TERMINATED",
          .type = "INTERNAL_ERROR",
          .life_cycle = "TERMINATED",
          .result = "FAILED"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "INTERNAL_ERROR"}},
        {"unknown code falls back to result, error_code keeps the code",
         {.status_state = "TERMINATED",
          .code = "FUTURE_CODE",
          .life_cycle = "TERMINATED",
          .result = "FAILED"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER, "FUTURE_CODE"}},
        {"status without details uses state's result",
         {.status_state = "TERMINATED", .life_cycle = "TERMINATED", .result = "SUCCESS"},
         {PHASE_SUCCEEDED, 0, NULL}},
        {"status without details, life cycle INTERNAL_ERROR",
         {.status_state = "TERMINATED", .life_cycle = "INTERNAL_ERROR"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "INTERNAL_ERROR"}},
        {"life cycle INTERNAL_ERROR beats result FAILED",
         {.life_cycle = "INTERNAL_ERROR", .result = "FAILED"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "INTERNAL_ERROR"}},
        {"life cycle SKIPPED beats result SUCCESS",
         {.life_cycle = "SKIPPED", .result = "SUCCESS"},
         {PHASE_FAILED, PHASE_ORIGIN_USER, "SKIPPED"}},
        {"status RUNNING preferred over state TERMINATED/FAILED",
         {.status_state = "RUNNING", .life_cycle = "TERMINATED", .result = "FAILED"},
         {PHASE_RUNNING, 0, NULL}},
        {"status TERMINATED preferred over state RUNNING",
         {.status_state = "TERMINATED", .code = "SUCCESS", .life_cycle = "RUNNING"},
         {PHASE_SUCCEEDED, 0, NULL}},
        {"status QUEUED preferred over state PENDING",
         {.status_state = "QUEUED", .life_cycle = "PENDING"},
         {PHASE_QUEUED, 0, NULL}},
        {"still terminating: a code is not a verdict yet",
         {.status_state = "TERMINATING", .code = "USER_CANCELED"},
         {PHASE_RUNNING, 0, NULL}},
        {"result set early while RUNNING is not a verdict",
         {.life_cycle = "RUNNING", .result = "FAILED"},
         {PHASE_RUNNING, 0, NULL}},
        {"unknown code and result",
         {.status_state = "TERMINATED", .code = "X1", .life_cycle = "TERMINATED", .result = "X2"},
         {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, "X1"}},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        expect_run(&cases[i].s, &cases[i].e, cases[i].what);
}

static void test_unknown_states(void **state)
{
    struct run_spec s1 = {.life_cycle = "HIBERNATING"};
    struct run_spec s2 = {.status_state = "DREAMING",
                          .life_cycle = "TERMINATED",
                          .result = "SUCCESS",
                          .state_msg = "zzz"};
    struct run_spec s3 = {.life_cycle = "TERMINATED", .result = "WEIRD", .state_msg = "hm"};
    struct run_spec s4 = {.status_state = "TERMINATED",
                          .code = "C9",
                          .type = "T9",
                          .life_cycle = "TERMINATED",
                          .result = "R9"};
    struct expect running = {PHASE_RUNNING, 0, NULL};
    struct phase_result r;
    (void)state;

    r = run_ok(&s1);
    check_result(&r, &running, "unknown life cycle");
    assert_string_equal(r.message, "unknown Databricks state 'HIBERNATING'; still polling");
    phase_result_done(&r);

    r = run_ok(&s2);
    check_result(&r, &running, "unknown status state");
    assert_string_equal(r.message, "unknown Databricks state 'DREAMING'; still polling: zzz");
    phase_result_done(&r);

    r = run_ok(&s3);
    assert_int_equal(r.phase, PHASE_RETRYABLE_FAILED);
    assert_int_equal(r.error_origin, PHASE_ORIGIN_SYSTEM);
    assert_string_equal(r.error_code, "WEIRD");
    assert_non_null(strstr(r.message, "'TERMINATED'"));
    assert_non_null(strstr(r.message, "'WEIRD'"));
    assert_non_null(strstr(r.message, "hm"));
    phase_result_done(&r);

    r = run_ok(&s4);
    assert_int_equal(r.phase, PHASE_RETRYABLE_FAILED);
    assert_non_null(strstr(r.message, "'C9'"));
    assert_non_null(strstr(r.message, "'T9'"));
    assert_non_null(strstr(r.message, "'R9'"));
    phase_result_done(&r);
}

static void expect_einval(const char *json)
{
    struct phase_result r = {.phase = PHASE_WAITING_FOR_RESOURCES, .message = (char *)"keep"};
    char *err = NULL;
    cJSON *run = json ? cJSON_Parse(json) : NULL;

    if (json)
        assert_non_null(run);
    assert_int_equal(phase_from_run(run, &r, &err), -EINVAL);
    assert_non_null(err);
    assert_string_equal(err, "runs/get answer has no state");
    /* ret untouched on failure */
    assert_int_equal(r.phase, PHASE_WAITING_FOR_RESOURCES);
    assert_string_equal(r.message, "keep");
    free(err);
    cJSON_Delete(run);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_einval(NULL);
    expect_einval("[]");
    expect_einval("\"TERMINATED\"");
    expect_einval("{}");
    expect_einval("{\"run_id\": 1}");
    expect_einval("{\"state\": 3}");
    expect_einval("{\"status\": \"TERMINATED\"}");
    expect_einval("{\"state\": \"RUNNING\", \"status\": \"RUNNING\"}");
    expect_einval("{\"state\": {\"life_cycle_state\": 7}}");
    expect_einval("{\"state\": {\"life_cycle_state\": \"\"}}");
    expect_einval("{\"state\": {\"result_state\": \"SUCCESS\"}}");
    expect_einval("{\"status\": {\"state\": null}}");
    expect_einval("{\"status\": {\"termination_details\": {\"code\": \"SUCCESS\"}}}");
    expect_einval("{\"state\": null, \"status\": []}");

    /* NULL reterr_msg is allowed. */
    {
        struct phase_result r = {0};
        cJSON *run = cJSON_Parse("{}");
        assert_int_equal(phase_from_run(run, &r, NULL), -EINVAL);
        cJSON_Delete(run);
    }
}

/* Malformed parts next to a usable part: the usable part is used, the rest ignored. */
static void test_wrong_subtypes(void **state)
{
    static const struct {
        const char *json;
        enum phase phase;
    } cases[] = {
        /* status is a string: fall back to state */
        {"{\"status\": \"X\", \"state\": {\"life_cycle_state\": \"PENDING\"}}", PHASE_INITIALIZING},
        /* status.state a number: fall back to state */
        {"{\"status\": {\"state\": 5}, \"state\": {\"life_cycle_state\": \"QUEUED\"}}",
         PHASE_QUEUED},
        /* termination_details a string: ignored, verdict from result */
        {"{\"status\": {\"state\": \"TERMINATED\", \"termination_details\": \"x\"},"
         " \"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"CANCELED\"}}",
         PHASE_ABORTED},
        /* code a number: ignored */
        {"{\"status\": {\"state\": \"TERMINATED\", \"termination_details\": {\"code\": 1,"
         " \"type\": \"SUCCESS\"}}}",
         PHASE_SUCCEEDED},
        /* result_state an object: ignored, unknown outcome */
        {"{\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": {}}}",
         PHASE_RETRYABLE_FAILED},
        /* state_message and run_page_url numbers: ignored */
        {"{\"state\": {\"life_cycle_state\": \"RUNNING\", \"state_message\": 3},"
         " \"run_page_url\": 4}",
         PHASE_RUNNING},
        /* case matters: Databricks values are upper case */
        {"{\"state\": {\"life_cycle_state\": \"running\"}}", PHASE_RUNNING},
        {"{\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"success\"}}",
         PHASE_RETRYABLE_FAILED},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct phase_result r = {0};
        char *err = NULL;
        cJSON *run = cJSON_Parse(cases[i].json);
        assert_non_null(run);
        assert_int_equal(phase_from_run(run, &r, &err), 0);
        assert_null(err);
        if (r.phase != cases[i].phase)
            fail_msg("%s: got %s", cases[i].json, phase_name(r.phase));
        assert_non_null(r.message);
        assert_null(r.run_page_url);
        phase_result_done(&r);
        cJSON_Delete(run);
    }
}

static void test_messages(void **state)
{
    static const struct {
        struct run_spec s;
        const char *message;
    } cases[] = {
        {{.life_cycle = "RUNNING", .state_msg = "In run"}, "In run"},
        {{.life_cycle = "RUNNING"}, "Databricks run is RUNNING"},
        {{.status_state = "PENDING"}, "Databricks run is PENDING"},
        {{.status_state = "TERMINATED", .code = "RUN_EXECUTION_ERROR", .term_msg = "Task x failed"},
         "Task x failed"},
        {{.status_state = "TERMINATED",
          .code = "RUN_EXECUTION_ERROR",
          .term_msg = "Workload failed",
          .life_cycle = "TERMINATED",
          .result = "FAILED",
          .state_msg = "Task x failed"},
         "Task x failed: Workload failed"},
        {{.status_state = "TERMINATED",
          .code = "SUCCESS",
          .term_msg = "done",
          .life_cycle = "TERMINATED",
          .result = "SUCCESS",
          .state_msg = "done"},
         "done"},
        {{.status_state = "TERMINATED", .code = "CLUSTER_ERROR"},
         "Databricks run TERMINATED (CLUSTER_ERROR)"},
        {{.life_cycle = "TERMINATED", .result = "TIMEDOUT"},
         "Databricks run TERMINATED (TIMEDOUT)"},
        {{.life_cycle = "TERMINATED", .result = "SUCCESS", .state_msg = ""},
         "Databricks run TERMINATED (SUCCESS)"},
        /* termination details are ignored without a status state */
        {{.life_cycle = "RUNNING", .state_msg = "busy"}, "busy"},
        /* control characters become spaces, newline and tab stay */
        {{.life_cycle = "RUNNING",
          .state_msg = "a\rb\x01"
                       "c\nd\te"},
         "a b c\nd\te"},
        /* invalid UTF-8 becomes '?', valid multi-byte text stays */
        {{.life_cycle = "RUNNING", .state_msg = "caf\xc3\xa9 \xff\xfe ok \xed\xa0\x80!"},
         "caf\xc3\xa9 ?? ok ???"
         "!"},
        {{.life_cycle = "RUNNING", .state_msg = "cut \xe2\x82"}, "cut ??"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct phase_result r = run_ok(&cases[i].s);
        assert_string_equal(r.message, cases[i].message);
        phase_result_done(&r);
    }
}

static void test_huge_strings(void **state)
{
    size_t big = 200000;
    char *text = malloc(big + 1), *name = malloc(big + 1);
    struct phase_result r;
    (void)state;

    assert_non_null(text);
    assert_non_null(name);
    /* two-byte characters, so a naive cut would split one */
    for (size_t i = 0; i + 1 < big; i += 2)
        memcpy(text + i, "\xc3\xa9", 2);
    text[big] = '\0';
    memset(name, 'Q', big);
    name[big] = '\0';

    {
        struct run_spec s = {.life_cycle = "RUNNING", .state_msg = text};
        r = run_ok(&s);
        assert_int_equal(r.phase, PHASE_RUNNING);
        assert_true(strlen(r.message) <= PHASE_MESSAGE_MAX);
        assert_true(strlen(r.message) > PHASE_MESSAGE_MAX - 8);
        assert_true(utf8_valid(r.message));
        assert_string_equal(r.message + strlen(r.message) - 3, "...");
        phase_result_done(&r);
    }
    {
        struct run_spec s = {.life_cycle = name, .state_msg = text};
        r = run_ok(&s);
        assert_int_equal(r.phase, PHASE_RUNNING);
        assert_true(strlen(r.message) <= PHASE_MESSAGE_MAX);
        assert_non_null(strstr(r.message, "unknown Databricks state 'QQQQ"));
        assert_non_null(strstr(r.message, "QQQ...'; still polling: "));
        assert_true(utf8_valid(r.message));
        phase_result_done(&r);
    }
    {
        struct run_spec s = {
            .status_state = "TERMINATED", .code = name, .term_msg = text, .url = text};
        r = run_ok(&s);
        assert_int_equal(r.phase, PHASE_RETRYABLE_FAILED);
        assert_true(strlen(r.message) <= PHASE_MESSAGE_MAX);
        assert_true(strlen(r.error_code) <= 64 + 3);
        assert_int_equal(strncmp(r.error_code, "QQQQ", 4), 0);
        assert_null(r.run_page_url);
        phase_result_done(&r);
    }
    free(text);
    free(name);
}

static void test_run_page_url(void **state)
{
    static const struct {
        const char *url;
        const char *expect;
    } cases[] = {
        {"https://dbc-1.cloud.databricks.com/?o=1#job/2/run/3",
         "https://dbc-1.cloud.databricks.com/?o=1#job/2/run/3"},
        {"http://127.0.0.1:8080/run/3", "http://127.0.0.1:8080/run/3"},
        {"javascript:alert(1)", NULL},
        {"https://a b", NULL},
        {"https://a\nb", NULL},
        {"https://caf\xc3\xa9", NULL},
        {"", NULL},
        {NULL, NULL},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct run_spec s = {.life_cycle = "RUNNING", .url = cases[i].url};
        struct phase_result r = run_ok(&s);
        if (cases[i].expect)
            assert_string_equal(r.run_page_url, cases[i].expect);
        else
            assert_null(r.run_page_url);
        phase_result_done(&r);
    }
}

static void test_phase_name_and_terminal(void **state)
{
    static const struct {
        enum phase p;
        const char *name;
        bool terminal;
    } cases[] = {
        {PHASE_UNDEFINED, "UNDEFINED", false},
        {PHASE_QUEUED, "QUEUED", false},
        {PHASE_RUNNING, "RUNNING", false},
        {PHASE_SUCCEEDED, "SUCCEEDED", true},
        {PHASE_ABORTED, "ABORTED", true},
        {PHASE_FAILED, "FAILED", true},
        {PHASE_INITIALIZING, "INITIALIZING", false},
        {PHASE_WAITING_FOR_RESOURCES, "WAITING_FOR_RESOURCES", false},
        {PHASE_RETRYABLE_FAILED, "RETRYABLE_FAILED", true},
    };
    (void)state;
    /* The wire values are flyteidl's; a renumbering would break propeller. */
    assert_int_equal(PHASE_QUEUED, 1);
    assert_int_equal(PHASE_SUCCEEDED, 3);
    assert_int_equal(PHASE_ABORTED, 4);
    assert_int_equal(PHASE_FAILED, 5);
    assert_int_equal(PHASE_RETRYABLE_FAILED, 8);
    assert_int_equal(PHASE_ORIGIN_USER, 1);
    assert_int_equal(PHASE_ORIGIN_SYSTEM, 2);
    for (size_t i = 0; i < N(cases); i++) {
        assert_string_equal(phase_name(cases[i].p), cases[i].name);
        assert_int_equal(phase_is_terminal(cases[i].p), cases[i].terminal);
    }
    assert_string_equal(phase_name((enum phase)9), "UNDEFINED");
    assert_string_equal(phase_name((enum phase) - 1), "UNDEFINED");
    assert_false(phase_is_terminal((enum phase)99));
}

static void test_done(void **state)
{
    struct run_spec s = {
        .status_state = "TERMINATED", .code = "CLUSTER_ERROR", .url = "https://x/y"};
    struct phase_result r = run_ok(&s);
    (void)state;

    assert_non_null(r.error_code);
    assert_non_null(r.run_page_url);
    phase_result_done(&r);
    assert_null(r.message);
    assert_null(r.run_page_url);
    assert_null(r.error_code);
    phase_result_done(&r);
    phase_result_done(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_life_cycle_states),
        cmocka_unit_test(test_result_states),
        cmocka_unit_test(test_status_states),
        cmocka_unit_test(test_termination_codes),
        cmocka_unit_test(test_termination_types),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_unknown_states),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_wrong_subtypes),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_huge_strings),
        cmocka_unit_test(test_run_page_url),
        cmocka_unit_test(test_phase_name_and_terminal),
        cmocka_unit_test(test_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
