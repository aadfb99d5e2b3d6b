/* Unit tests for daemon/phase.c: every Databricks state, result state, status state,
 * termination code and type, with expectations from Databricks' documentation and the README's
 * mapping table (not from phase.c's tables); plus unknown values, precedence, bad input and
 * message building. */
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

/*
 * The mapping, as documentation states it. Every value Databricks documents for runs/get
 * (Jobs API 2.1 reference; its order), each with what the README's mapping table says it means
 * for Flyte. Written from those documents, not from phase.c's tables: a value phase.c
 * forgets, or maps against the table, fails here.
 */

/* One meaning per row of the README's "Databricks | Flyte phase" table. */
enum meaning {
    STILL_QUEUED,     /* QUEUED, BLOCKED -> QUEUED */
    STARTING,         /* PENDING -> INITIALIZING */
    STILL_RUNNING,    /* RUNNING, TERMINATING, WAITING_FOR_RETRY, WAITING -> RUNNING */
    SUCCEEDED,        /* TERMINATED + SUCCESS / SUCCESS_WITH_FAILURES -> SUCCEEDED */
    USER_RETRYABLE,   /* TERMINATED + FAILED / TIMEDOUT -> RETRYABLE_FAILED (origin USER) */
    ABORTED,          /* TERMINATED + CANCELED, code USER_CANCELED -> ABORTED */
    USER_FINAL,       /* EXCLUDED, UPSTREAM_FAILED, UPSTREAM_CANCELED, DISABLED, SKIPPED; type
                       * CLIENT_ERROR -> FAILED */
    SYSTEM_RETRYABLE, /* INTERNAL_ERROR, MAXIMUM_CONCURRENT_RUNS_REACHED, types CLOUD_FAILURE /
                       * INTERNAL_ERROR, limit codes -> RETRYABLE_FAILED (origin SYSTEM) */
    UNKNOWN_STATE,    /* unknown state still running -> RUNNING, message names it */
    UNKNOWN_OUTCOME,  /* unknown outcome -> RETRYABLE_FAILED, the raw values in the message */
};

/* What each meaning is on the wire. A final failure is the user's (their configuration); the
 * connector cannot blame the user for an outcome it does not know. */
static const struct expect meanings[] = {
    [STILL_QUEUED] = {PHASE_QUEUED, PHASE_ORIGIN_UNKNOWN, NULL},
    [STARTING] = {PHASE_INITIALIZING, PHASE_ORIGIN_UNKNOWN, NULL},
    [STILL_RUNNING] = {PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN, NULL},
    [SUCCEEDED] = {PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN, NULL},
    [USER_RETRYABLE] = {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER, NULL},
    [ABORTED] = {PHASE_ABORTED, PHASE_ORIGIN_UNKNOWN, NULL},
    [USER_FINAL] = {PHASE_FAILED, PHASE_ORIGIN_USER, NULL},
    [SYSTEM_RETRYABLE] = {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, NULL},
    [UNKNOWN_STATE] = {PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN, NULL},
    [UNKNOWN_OUTCOME] = {PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM, NULL},
};

struct documented {
    const char *value;
    enum meaning meaning;
};

/* Checks one answer against a meaning; error_code: the value that must be reported. */
static void expect_meaning(const struct run_spec *s, enum meaning meaning, const char *error_code,
                           const char *what)
{
    struct expect e = meanings[meaning];
    struct phase_result r = run_ok(s);
    char quoted[128];

    if (e.phase == PHASE_FAILED || e.phase == PHASE_RETRYABLE_FAILED)
        e.error_code = error_code;
    check_result(&r, &e, what);
    /* Only what Databricks has not documented is called unknown, and then named. */
    snprintf(quoted, sizeof(quoted), "'%s'", meaning == UNKNOWN_STATE ? what : error_code);
    if ((meaning == UNKNOWN_STATE || meaning == UNKNOWN_OUTCOME) != !!strstr(r.message, "unknown"))
        fail_msg("%s: message '%s'", what, r.message);
    if ((meaning == UNKNOWN_STATE || meaning == UNKNOWN_OUTCOME) && !strstr(r.message, quoted))
        fail_msg("%s: message '%s' does not carry %s", what, r.message, quoted);
    phase_result_done(&r);
}

/* state.life_cycle_state, the only state (older answers have no status object). */
static void test_life_cycle_states(void **state)
{
    static const struct documented documented[] = {
        {"QUEUED", STILL_QUEUED},
        {"PENDING", STARTING},
        {"RUNNING", STILL_RUNNING},
        {"TERMINATING", STILL_RUNNING},
        /* over, and nothing says how */
        {"TERMINATED", UNKNOWN_OUTCOME},
        {"SKIPPED", USER_FINAL},
        {"INTERNAL_ERROR", SYSTEM_RETRYABLE},
        {"BLOCKED", STILL_QUEUED},
        {"WAITING_FOR_RETRY", STILL_RUNNING},
        /* not documented (yet) */
        {"HIBERNATING", UNKNOWN_STATE},
    };
    (void)state;
    for (size_t i = 0; i < N(documented); i++) {
        struct run_spec s = {.life_cycle = documented[i].value};
        expect_meaning(&s, documented[i].meaning, documented[i].value, documented[i].value);
    }
}

/* state.result_state of a TERMINATED run. */
static void test_result_states(void **state)
{
    static const struct documented documented[] = {
        {"SUCCESS", SUCCEEDED},
        {"FAILED", USER_RETRYABLE},
        {"TIMEDOUT", USER_RETRYABLE},
        {"CANCELED", ABORTED},
        {"MAXIMUM_CONCURRENT_RUNS_REACHED", SYSTEM_RETRYABLE},
        {"EXCLUDED", USER_FINAL},
        {"SUCCESS_WITH_FAILURES", SUCCEEDED},
        {"UPSTREAM_FAILED", USER_FINAL},
        {"UPSTREAM_CANCELED", USER_FINAL},
        {"DISABLED", USER_FINAL},
        {"SOMETHING_NEW", UNKNOWN_OUTCOME},
    };
    (void)state;
    for (size_t i = 0; i < N(documented); i++) {
        struct run_spec s = {.life_cycle = "TERMINATED", .result = documented[i].value};
        expect_meaning(&s, documented[i].meaning, documented[i].value, documented[i].value);
    }
}

/* The newer status.state alone. */
static void test_status_states(void **state)
{
    static const struct documented documented[] = {
        {"BLOCKED", STILL_QUEUED},
        {"PENDING", STARTING},
        {"QUEUED", STILL_QUEUED},
        {"RUNNING", STILL_RUNNING},
        {"TERMINATING", STILL_RUNNING},
        /* over, and nothing says how */
        {"TERMINATED", UNKNOWN_OUTCOME},
        {"WAITING", STILL_RUNNING},
        /* not documented (yet) */
        {"DREAMING", UNKNOWN_STATE},
    };
    (void)state;
    for (size_t i = 0; i < N(documented); i++) {
        struct run_spec s = {.status_state = documented[i].value};
        expect_meaning(&s, documented[i].meaning, documented[i].value, documented[i].value);
    }
}

/*
 * status.termination_details.code of a TERMINATED run, with Databricks' description of each
 * (TerminationCodeCode in the Jobs API reference) deciding its row: the user's own code failing
 * is like result FAILED; a request or configuration Databricks refuses is the user's and fails
 * the same way again (type CLIENT_ERROR); platform trouble and quotas that lift are SYSTEM and
 * worth another attempt ("limit codes").
 */
static void test_termination_codes(void **state)
{
    static const struct documented documented[] = {
        {"SUCCESS", SUCCEEDED},
        /* "completed successfully but some child runs failed" */
        {"SUCCESS_WITH_FAILURES", SUCCEEDED},
        /* "canceled during execution by a user" */
        {"USER_CANCELED", ABORTED},
        /* "canceled by the Databricks platform; e.g. the maximum run duration was exceeded" */
        {"CANCELED", ABORTED},
        /* "never executed" */
        {"SKIPPED", USER_FINAL},
        /* "an unexpected error" */
        {"INTERNAL_ERROR", SYSTEM_RETRYABLE},
        /* "an error while communicating with the Spark Driver" */
        {"DRIVER_ERROR", SYSTEM_RETRYABLE},
        /* "a cluster error" */
        {"CLUSTER_ERROR", SYSTEM_RETRYABLE},
        /* the checkout of the user's git source */
        {"REPOSITORY_CHECKOUT_FAILED", USER_FINAL},
        /* "an invalid request to start the cluster" */
        {"INVALID_CLUSTER_REQUEST", USER_FINAL},
        /* a quota: "consider scheduling the runs over a larger time frame" */
        {"WORKSPACE_RUN_LIMIT_EXCEEDED", SYSTEM_RETRYABLE},
        /* "a feature unavailable for the workspace" */
        {"FEATURE_DISABLED", USER_FINAL},
        /* a rate limit */
        {"CLUSTER_REQUEST_LIMIT_EXCEEDED", SYSTEM_RETRYABLE},
        /* "accessing the customer blob storage" */
        {"STORAGE_ACCESS_ERROR", USER_FINAL},
        /* "completed with task failures": the user's code */
        {"RUN_EXECUTION_ERROR", USER_RETRYABLE},
        /* "a permission issue while accessing a resource" */
        {"UNAUTHORIZED_ERROR", USER_FINAL},
        /* "the user-requested library" */
        {"LIBRARY_INSTALLATION_ERROR", USER_FINAL},
        /* limits */
        {"MAX_CONCURRENT_RUNS_EXCEEDED", SYSTEM_RETRYABLE},
        {"MAX_SPARK_CONTEXTS_EXCEEDED", SYSTEM_RETRYABLE},
        /* "a resource necessary for run execution does not exist" */
        {"RESOURCE_NOT_FOUND", USER_FINAL},
        /* "an invalid configuration" */
        {"INVALID_RUN_CONFIGURATION", USER_FINAL},
        /* "a cloud provider issue" */
        {"CLOUD_FAILURE", SYSTEM_RETRYABLE},
        /* a limit: "the job level queue size" */
        {"MAX_JOB_QUEUE_SIZE_EXCEEDED", SYSTEM_RETRYABLE},
        /* "disabled explicitly by the user" */
        {"DISABLED", USER_FINAL},
        /* "will be retried with a mitigation config" */
        {"BREAKING_CHANGE", SYSTEM_RETRYABLE},
        /* A budget policy is the account's configuration, not a quota that lifts within the
         * task's retries. */
        {"BUDGET_POLICY_LIMIT_EXCEEDED", USER_FINAL},
        /* "the externally managed cluster entered an unusable state, likely due to the user":
         * the user's doing, and the cluster may be back for the next attempt. */
        {"CLUSTER_TERMINATED_BY_USER", USER_RETRYABLE},
        {"BRAND_NEW_CODE", UNKNOWN_OUTCOME},
    };
    (void)state;
    for (size_t i = 0; i < N(documented); i++) {
        struct run_spec s = {.status_state = "TERMINATED", .code = documented[i].value};
        expect_meaning(&s, documented[i].meaning, documented[i].value, documented[i].value);
    }
}

/* status.termination_details.type alone, and beside a code Databricks has not documented. */
static void test_termination_types(void **state)
{
    static const struct documented documented[] = {
        {"SUCCESS", SUCCEEDED},
        {"INTERNAL_ERROR", SYSTEM_RETRYABLE}, /* "platform" */
        {"CLIENT_ERROR", USER_FINAL},         /* "user input or job configuration" */
        {"CLOUD_FAILURE", SYSTEM_RETRYABLE},  /* "cloud provider" */
        {"NEW_TYPE", UNKNOWN_OUTCOME},
    };
    (void)state;
    for (size_t i = 0; i < N(documented); i++) {
        struct run_spec alone = {.status_state = "TERMINATED", .type = documented[i].value};
        struct run_spec with_code = {
            .status_state = "TERMINATED", .code = "NOT_A_KNOWN_CODE", .type = documented[i].value};

        expect_meaning(&alone, documented[i].meaning, documented[i].value, documented[i].value);
        /* The type decides; the code, the most specific word, is still the one reported. */
        expect_meaning(&with_code, documented[i].meaning, "NOT_A_KNOWN_CODE", documented[i].value);
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
