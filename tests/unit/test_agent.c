/*
 * test_agent.c - the task handlers (agent.c) with the token chain, the Databricks client and the
 * gRPC call replaced by this file's own functions through the linker's --wrap (see the
 * Makefile's test_agent rule): no server, no network.
 *
 * The fake creds_request() records each request the handler queues, with the token sources it
 * asked for, and says the source a test chose served it; a test then completes the request with
 * a chosen struct dbx_answer, as the loop thread would. The fake server_call_reply() packs the
 * response, so a test unpacks exactly the bytes propeller (or Flyte 2's executor) would get.
 * Expectations (statuses, phases, messages) are written here as the README documents them.
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

#include "agent.h"
#include "clock.h"
#include "log.h"
#include "requests.h"

#define INSTANCE REQUESTS_INSTANCE
#define META_42 "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"42\"}"

/* server.h leaves the call opaque; the real one lives in server.c, which is not linked. */
struct server_call {
    int answers; /* a handler answers each call exactly once */
    grpc_status_code code;
    char message[2048];
    uint8_t *reply; /* the packed response when code is OK */
    size_t reply_len;
    int64_t deadline_ms;
};

/* One request a handler gave the Databricks client. */
struct sent {
    enum dbx_endpoint endpoint;
    char *instance, *run_id, *body;
    char *token; /* the call's own token; NULL: the client's default */
    char *namespace, *token_secret, *resmeta_token; /* the token sources asked for */
    bool retry_safe;
    int64_t deadline_ms;
    dbx_done_fn done;
    void *user;
};

#define MAX_SENT 8
static struct sent sent[MAX_SENT];
static size_t sent_count;
static int dbx_result; /* what the next creds_request() returns */
/* The source the next creds_request() says served it. */
static struct creds_used next_used = {.source = CREDS_SOURCE_DEFAULT, .name = "env X"};

int __wrap_creds_request(struct creds *creds, const struct config *config,
                         const struct dbx_call *call, const struct creds_ask *ask, char *body,
                         dbx_done_fn done, void *user, struct creds_used *ret_used);
const char *__wrap_creds_source_name(enum creds_source source);
void __wrap_server_call_reply(struct server_call *call, const ProtobufCMessage *response);
void __wrap_server_call_fail(struct server_call *call, grpc_status_code code, const char *message);
int64_t __wrap_server_call_deadline_ms(const struct server_call *call);
const char *__wrap_server_call_method(const struct server_call *call);

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int __wrap_creds_request(struct creds *creds, const struct config *config,
                         const struct dbx_call *call, const struct creds_ask *ask, char *body,
                         dbx_done_fn done, void *user, struct creds_used *ret_used)
{
    struct sent *s = &sent[sent_count];

    (void)creds;
    assert_non_null(config);
    if (dbx_result < 0) {
        free(body); /* creds.h, as dbx.h: on failure the body is freed and done never runs */
        return dbx_result;
    }
    assert_true(sent_count < MAX_SENT);
    *s = (struct sent){
        .endpoint = call->endpoint,
        .instance = strdup(call->instance),
        .run_id = call->run_id ? strdup(call->run_id) : NULL,
        .token = call->token ? strdup(call->token) : NULL,
        .namespace = dup_or_null(ask->namespace),
        .token_secret = dup_or_null(ask->token_secret),
        .resmeta_token = dup_or_null(ask->resmeta_token),
        .body = body,
        .retry_safe = call->retry_safe,
        .deadline_ms = call->deadline_ms,
        .done = done,
        .user = user,
    };
    sent_count++;
    *ret_used = next_used;
    return 0;
}

const char *__wrap_creds_source_name(enum creds_source source)
{
    return source == CREDS_SOURCE_NAMESPACE ? "namespace_secret" : "some_source";
}

void __wrap_server_call_reply(struct server_call *call, const ProtobufCMessage *response)
{
    call->answers++;
    call->code = GRPC_STATUS_OK;
    call->reply = requests_pack(response, &call->reply_len);
}

void __wrap_server_call_fail(struct server_call *call, grpc_status_code code, const char *message)
{
    assert_int_not_equal(code, GRPC_STATUS_OK);
    call->answers++;
    call->code = code;
    snprintf(call->message, sizeof(call->message), "%s", message);
}

int64_t __wrap_server_call_deadline_ms(const struct server_call *call)
{
    return call->deadline_ms;
}

const char *__wrap_server_call_method(const struct server_call *call)
{
    (void)call;
    return "/flyteidl.service.AsyncAgentService/Test";
}

struct fixture {
    struct config *config; /* the fixture's reference to the one in force */
    struct config_current *current;
    struct metrics *metrics;
    struct agent *agent;
};

static int setup_with(void **state, const char *config_text)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char *error = NULL;

    assert_non_null(fx);
    log_set_level(LOG_LEVEL_ERROR);
    fx->config = config_new();
    assert_non_null(fx->config);
    if (config_parse_json(fx->config, config_text, &error) < 0)
        fail_msg("config: %s", error ? error : "?");
    fx->metrics = metrics_new("test");
    assert_non_null(fx->metrics);
    fx->current = config_current_new(fx->config);
    assert_non_null(fx->current);
    fx->agent = agent_new(fx->current, NULL, fx->metrics);
    assert_non_null(fx->agent);
    sent_count = 0;
    dbx_result = 0;
    next_used = (struct creds_used){.source = CREDS_SOURCE_DEFAULT, .name = "env X"};
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "{\"default_instance\": \"" INSTANCE "\","
                             " \"allowed_instances\": [\"other.example.com\"],"
                             " \"request_timeout_ms\": 30000}");
}

static int setup_no_retryable(void **state)
{
    return setup_with(state, "{\"default_instance\": \"" INSTANCE "\","
                             " \"retryable_failed_phase\": false}");
}

static int setup_cached(void **state)
{
    return setup_with(state, "{\"default_instance\": \"" INSTANCE "\","
                             " \"status_cache_ttl_ms\": 600000}");
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    for (size_t i = 0; i < sent_count; i++) {
        free(sent[i].instance);
        free(sent[i].run_id);
        free(sent[i].token);
        free(sent[i].body);
        free(sent[i].namespace);
        free(sent[i].token_secret);
        free(sent[i].resmeta_token);
    }
    agent_free(fx->agent);
    config_current_free(fx->current);
    metrics_free(fx->metrics);
    config_unref(fx->config);
    free(fx);
    return 0;
}

static void call_done(struct server_call *call)
{
    free(call->reply);
    call->reply = NULL;
}

/* Completes sent request i as the Databricks client would. body_json: the answer's JSON (OK). */
static void complete(size_t i, enum dbx_verdict verdict, const char *body_json, const char *message)
{
    cJSON *body = body_json ? cJSON_Parse(body_json) : NULL;
    struct dbx_answer answer = {
        .verdict = verdict,
        .http_status = verdict == DBX_VERDICT_OK ? 200 : 400,
        .body = body,
        .error_code = verdict == DBX_VERDICT_OK ? "" : "SOME_CODE",
        .message = message ? message : "",
        .attempts = 1,
    };

    assert_true(i < sent_count);
    if (body_json)
        assert_non_null(body);
    sent[i].done(sent[i].user, &answer);
    cJSON_Delete(body);
}

static void expect_failed(const struct server_call *call, grpc_status_code code,
                          const char *message)
{
    assert_int_equal(call->answers, 1);
    if (call->code != code)
        fail_msg("status %d, expected %d (%s)", call->code, code, call->message);
    assert_string_equal(call->message, message);
}

/* The metrics text has this line (a whole line). */
static void expect_metric(struct fixture *fx, const char *line)
{
    char *text = metrics_render(fx->metrics);
    char *found;
    size_t n = strlen(line);

    assert_non_null(text);
    for (found = strstr(text, line); found; found = strstr(found + 1, line))
        if ((found == text || found[-1] == '\n') && found[n] == '\n')
            break;
    if (!found)
        fail_msg("no metrics line '%s'", line);
    free(text);
}

static void create(struct fixture *fx, struct server_call *call, const char *template_text,
                   bool with_execution)
{
    size_t len;
    uint8_t *bytes = requests_create(template_text, with_execution, true, &len);

    agent_create_task(agent_service(fx->agent, CONFIG_FLYTE_1), call, bytes, len);
    free(bytes);
}

static void get_or_delete(struct fixture *fx, struct server_call *call, bool delete,
                          const char *category, const char *meta)
{
    size_t len;
    uint8_t *bytes = requests_run(delete, category, NULL, meta, &len);

    if (delete)
        agent_delete_task(agent_service(fx->agent, CONFIG_FLYTE_1), call, bytes, len);
    else
        agent_get_task(agent_service(fx->agent, CONFIG_FLYTE_1), call, bytes, len);
    free(bytes);
}

static void get(struct fixture *fx, struct server_call *call)
{
    get_or_delete(fx, call, false, "spark", META_42);
}

/* ---- CreateTask ---------------------------------------------------------- */

static void test_create_success(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    char token[IDEMPOTENCY_TOKEN_SIZE];
    int64_t before = clock_now_ms();
    Flyteidl__Admin__CreateTaskResponse *resp;
    cJSON *body, *meta;

    requests_token(token);
    create(fx, &call, REQUESTS_SPARK_TEMPLATE, true);
    assert_int_equal(call.answers, 0); /* answered when Databricks is */
    assert_int_equal(sent_count, 1);
    assert_int_equal(sent[0].endpoint, DBX_RUNS_SUBMIT);
    assert_string_equal(sent[0].instance, INSTANCE);
    assert_null(sent[0].run_id);
    assert_null(sent[0].token); /* the client's default token */
    /* With its idempotency_token a submit may be repeated. */
    assert_true(sent[0].retry_safe);
    /* No gRPC deadline: request_timeout_ms bounds the Databricks side. */
    assert_true(sent[0].deadline_ms >= before + 30000);
    assert_true(sent[0].deadline_ms <= clock_now_ms() + 30000);
    body = cJSON_Parse(sent[0].body);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "idempotency_token")->valuestring, token);
    assert_string_equal(cJSON_GetObjectItem(body, "existing_cluster_id")->valuestring, "c-1");
    cJSON_Delete(body);

    complete(0, DBX_VERDICT_OK, "{\"run_id\": 1234}", NULL);
    assert_int_equal(call.answers, 1);
    assert_int_equal(call.code, GRPC_STATUS_OK);
    resp = flyteidl__admin__create_task_response__unpack(NULL, call.reply_len, call.reply);
    assert_non_null(resp);
    meta = cJSON_ParseWithLength((const char *)resp->resource_meta.data, resp->resource_meta.len);
    assert_non_null(meta);
    assert_string_equal(cJSON_GetObjectItem(meta, "databricks_instance")->valuestring, INSTANCE);
    assert_string_equal(cJSON_GetObjectItem(meta, "run_id")->valuestring, "1234");
    assert_null(cJSON_GetObjectItem(meta, "auth_token"));
    cJSON_Delete(meta);
    flyteidl__admin__create_task_response__free_unpacked(resp, NULL);
    call_done(&call);
    expect_metric(fx, "flyte_connector_requests_success_total{task_type=\"spark\","
                      "operation=\"create\"} 1");
}

/* The created run's resource_meta as JSON (cJSON_Delete()). */
static cJSON *created_meta(const struct server_call *call)
{
    Flyteidl__Admin__CreateTaskResponse *resp =
        flyteidl__admin__create_task_response__unpack(NULL, call->reply_len, call->reply);
    cJSON *meta;

    assert_non_null(resp);
    meta = cJSON_ParseWithLength((const char *)resp->resource_meta.data, resp->resource_meta.len);
    assert_non_null(meta);
    flyteidl__admin__create_task_response__free_unpacked(resp, NULL);
    return meta;
}

/* A CreateTask asks the chain for the task's namespace Secret; when that Secret served it, the
 * run's resource_meta names it (never a token) for the run's later calls. */
static void test_create_namespace_secret(void **state)
{
    static const char template_text[] =
        "{\"type\": \"spark\", \"custom\": {\"databricksTokenSecret\": \"team-token\","
        " \"databricksConf\": {\"existing_cluster_id\": \"c\"}}}";
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    size_t len;
    uint8_t *bytes = requests_create_in(template_text, true, false, "team-ns", &len);
    cJSON *meta;

    next_used = (struct creds_used){.source = CREDS_SOURCE_NAMESPACE,
                                    .name = "team-ns/team-token",
                                    .namespace = "team-ns",
                                    .token_secret = "team-token"};
    agent_create_task(agent_service(fx->agent, CONFIG_FLYTE_1), &call, bytes, len);
    free(bytes);
    assert_int_equal(sent_count, 1);
    assert_string_equal(sent[0].namespace, "team-ns");
    assert_string_equal(sent[0].token_secret, "team-token");
    assert_null(sent[0].resmeta_token);
    complete(0, DBX_VERDICT_OK, "{\"run_id\": 77}", NULL);
    assert_int_equal(call.code, GRPC_STATUS_OK);
    meta = created_meta(&call);
    assert_string_equal(cJSON_GetObjectItem(meta, "namespace")->valuestring, "team-ns");
    assert_string_equal(cJSON_GetObjectItem(meta, "token_secret")->valuestring, "team-token");
    assert_string_equal(cJSON_GetObjectItem(meta, "run_id")->valuestring, "77");
    cJSON_Delete(meta);
    call_done(&call);
}

/* Served by another source, the run's resource_meta stays as it always was. */
static void test_create_other_source_meta(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    size_t len;
    uint8_t *bytes = requests_create_in(REQUESTS_SPARK_TEMPLATE, true, false, "team-ns", &len);
    cJSON *meta;

    next_used = (struct creds_used){.source = CREDS_SOURCE_OAUTH, .name = "i c"};
    agent_create_task(agent_service(fx->agent, CONFIG_FLYTE_1), &call, bytes, len);
    free(bytes);
    assert_string_equal(sent[0].namespace, "team-ns");
    assert_null(sent[0].token_secret); /* flytekit's default name, left to the chain */
    complete(0, DBX_VERDICT_OK, "{\"run_id\": 78}", NULL);
    meta = created_meta(&call);
    assert_null(cJSON_GetObjectItem(meta, "namespace"));
    assert_null(cJSON_GetObjectItem(meta, "token_secret"));
    cJSON_Delete(meta);
    call_done(&call);
}

/* GetTask and DeleteTask ask for the Secret resource_meta names, or flytekit's auth_token. */
static void test_run_token_sources(void **state)
{
    struct fixture *fx = *state;

    for (int delete = 0; delete <= 1; delete ++) {
        struct server_call a = {.deadline_ms = INT64_MAX}, b = {.deadline_ms = INT64_MAX};
        size_t first = sent_count;

        get_or_delete(fx, &a, delete, "spark",
                      "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"5\","
                      " \"namespace\": \"team-ns\", \"token_secret\": \"team-token\"}");
        get_or_delete(fx, &b, delete, "spark",
                      "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"6\","
                      " \"auth_token\": \"dapi-from-flytekit\"}");
        assert_int_equal(sent_count, first + 2);
        assert_string_equal(sent[first].namespace, "team-ns");
        assert_string_equal(sent[first].token_secret, "team-token");
        assert_null(sent[first].resmeta_token);
        assert_null(sent[first + 1].namespace);
        assert_string_equal(sent[first + 1].resmeta_token, "dapi-from-flytekit");
        complete(first, DBX_VERDICT_RUN_GONE, NULL, "gone");
        complete(first + 1, DBX_VERDICT_RUN_GONE, NULL, "gone");
        call_done(&a);
        call_done(&b);
    }
}

/* The Databricks side ends before the caller's deadline, by a tenth of it, 50 ms to 1 s. */
static void test_create_deadline(void **state)
{
    struct fixture *fx = *state;
    struct server_call far = {.deadline_ms = clock_now_ms() + 60000};
    struct server_call near = {.deadline_ms = clock_now_ms() + 200};

    create(fx, &far, REQUESTS_SPARK_TEMPLATE, true);
    create(fx, &near, REQUESTS_SPARK_TEMPLATE, true);
    assert_int_equal(sent_count, 2);
    assert_int_equal(sent[0].deadline_ms, far.deadline_ms - 1000);
    assert_int_equal(sent[1].deadline_ms, near.deadline_ms - 50);
    complete(0, DBX_VERDICT_OK, "{\"run_id\": 1}", NULL);
    complete(1, DBX_VERDICT_OK, "{\"run_id\": 2}", NULL);
    call_done(&far);
    call_done(&near);
}

/* Without a task execution id there is no token: the submit must not be repeated. */
static void test_create_without_token(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    cJSON *body;

    create(fx, &call, REQUESTS_SPARK_TEMPLATE, false);
    assert_int_equal(sent_count, 1);
    assert_false(sent[0].retry_safe);
    body = cJSON_Parse(sent[0].body);
    assert_null(cJSON_GetObjectItem(body, "idempotency_token"));
    cJSON_Delete(body);
    complete(0, DBX_VERDICT_OK, "{\"run_id\": 5}", NULL);
    assert_int_equal(call.code, GRPC_STATUS_OK);
    call_done(&call);
}

/* Refused before any network: answered at once, nothing sent. */
static void test_create_refused(void **state)
{
    struct fixture *fx = *state;

    for (size_t i = 0; i < REQUESTS_REFUSED_CREATES; i++) {
        const struct requests_refusal *c = &requests_refused_creates[i];
        struct server_call call = {.deadline_ms = INT64_MAX};

        create(fx, &call, c->template_text, true);
        assert_int_equal(call.answers, 1);
        if (call.code != c->code || !requests_message_is(call.message, c->message))
            fail_msg("case %zu: status %d (%s)", i, call.code, call.message);
    }
    assert_int_equal(sent_count, 0);
    expect_metric(fx, "flyte_connector_requests_failure_total{task_type=\"other\","
                      "operation=\"create\",error_code=\"NOT_FOUND\"} 1");
}

static void test_create_undecodable(void **state)
{
    static const uint8_t garbage[] = {0x12, 0xff, 0x01};
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};

    agent_create_task(agent_service(fx->agent, CONFIG_FLYTE_1), &call, garbage, sizeof(garbage));
    expect_failed(&call, GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl.admin.CreateTaskRequest");
    assert_int_equal(sent_count, 0);
}

/* Each final Databricks verdict on a submit, as the caller hears it. */
static void test_create_verdicts(void **state)
{
    static const struct {
        enum dbx_verdict verdict;
        grpc_status_code code;
    } cases[] = {
        /* "does not exist" on a submit names something in the job spec */
        {DBX_VERDICT_RUN_GONE, GRPC_STATUS_INVALID_ARGUMENT},
        {DBX_VERDICT_UNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED},
        {DBX_VERDICT_PERMISSION_DENIED, GRPC_STATUS_PERMISSION_DENIED},
        {DBX_VERDICT_INVALID, GRPC_STATUS_INVALID_ARGUMENT},
        {DBX_VERDICT_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
        {DBX_VERDICT_RESOURCE_EXHAUSTED, GRPC_STATUS_RESOURCE_EXHAUSTED},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};
        char message[64];

        snprintf(message, sizeof(message), "Databricks said no (%zu)", i);
        create(fx, &call, REQUESTS_SPARK_TEMPLATE, true);
        assert_int_equal(call.answers, 0);
        complete(sent_count - 1, cases[i].verdict, NULL, message);
        expect_failed(&call, cases[i].code, message);
    }
}

/* A 2xx without a usable run id is Databricks-side trouble. */
static void test_create_bad_run_id(void **state)
{
    static const char *const bodies[] = {
        "{}",
        "{\"run_id\": \"12\"}",
        "{\"run_id\": -1}",
        "{\"run_id\": 1.5}",
        "{\"run_id\": 9007199254740992}",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};

        create(fx, &call, REQUESTS_SPARK_TEMPLATE, true);
        complete(sent_count - 1, DBX_VERDICT_OK, bodies[i], NULL);
        expect_failed(&call, GRPC_STATUS_UNAVAILABLE,
                      "Databricks runs/submit answered without a valid run_id");
    }
}

/* The client refuses the request: UNAVAILABLE, saying why. */
static void test_create_not_queued(void **state)
{
    struct fixture *fx = *state;
    struct server_call down = {.deadline_ms = INT64_MAX}, oom = {.deadline_ms = INT64_MAX};

    dbx_result = -ESHUTDOWN;
    create(fx, &down, REQUESTS_SPARK_TEMPLATE, true);
    expect_failed(&down, GRPC_STATUS_UNAVAILABLE, "connector shutting down");
    dbx_result = -ENOMEM;
    create(fx, &oom, REQUESTS_SPARK_TEMPLATE, true);
    expect_failed(&oom, GRPC_STATUS_UNAVAILABLE, "out of memory");
    assert_int_equal(sent_count, 0);
}

/* ---- GetTask ---------------------------------------------------------------- */

static Flyteidl__Admin__GetTaskResponse *get_reply(const struct server_call *call)
{
    Flyteidl__Admin__GetTaskResponse *resp;

    assert_int_equal(call->answers, 1);
    if (call->code != GRPC_STATUS_OK)
        fail_msg("status %d: %s", call->code, call->message);
    resp = flyteidl__admin__get_task_response__unpack(NULL, call->reply_len, call->reply);
    assert_non_null(resp);
    assert_non_null(resp->resource);
    return resp;
}

#define RUNNING_BODY                                                                               \
    "{\"run_id\": 42, \"job_id\": 7, \"state\": {\"life_cycle_state\": \"RUNNING\","               \
    " \"state_message\": \"In run\"}}"

static void test_get_running(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;
    Flyteidl__Admin__Resource *res;

    get(fx, &call);
    assert_int_equal(call.answers, 0);
    assert_int_equal(sent_count, 1);
    assert_int_equal(sent[0].endpoint, DBX_RUNS_GET);
    assert_string_equal(sent[0].instance, INSTANCE);
    assert_string_equal(sent[0].run_id, "42");
    assert_null(sent[0].body);
    assert_true(sent[0].retry_safe);

    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    resp = get_reply(&call);
    res = resp->resource;
    assert_int_equal(res->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
    assert_int_equal(res->state, FLYTEIDL__ADMIN__STATE__RUNNING);
    assert_string_equal(res->message, "In run");
    assert_null(res->agent_error);
    /* No run_page_url: flytekit's link from the job id. */
    assert_int_equal(res->n_log_links, 1);
    assert_string_equal(res->log_links[0]->name, "Databricks Console");
    assert_string_equal(res->log_links[0]->uri, "https://" INSTANCE "/#job/7/run/42");
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&call);
}

/* A run that ended: the phase, the deprecated state and the error details reach the reply. */
static void test_get_finished(void **state)
{
    static const struct {
        const char *body;
        Flyteidl__Core__TaskExecution__Phase phase;
        Flyteidl__Admin__State state;
        const char *error_code; /* NULL: no agent_error */
        Flyteidl__Admin__AgentError__Kind kind;
        Flyteidl__Core__ExecutionError__ErrorKind origin;
    } cases[] = {
        {"{\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"SUCCESS\"},"
         " \"run_page_url\": \"https://x.example.com/run/42\"}",
         FLYTEIDL__CORE__TASK_EXECUTION__PHASE__SUCCEEDED, FLYTEIDL__ADMIN__STATE__SUCCEEDED, NULL,
         0, 0},
        {"{\"status\": {\"state\": \"TERMINATED\", \"termination_details\":"
         " {\"code\": \"RUN_EXECUTION_ERROR\", \"type\": \"CLIENT_ERROR\"}}}",
         FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RETRYABLE_FAILED,
         FLYTEIDL__ADMIN__STATE__RETRYABLE_FAILURE, "RUN_EXECUTION_ERROR",
         FLYTEIDL__ADMIN__AGENT_ERROR__KIND__RECOVERABLE,
         FLYTEIDL__CORE__EXECUTION_ERROR__ERROR_KIND__USER},
        {"{\"status\": {\"state\": \"TERMINATED\", \"termination_details\":"
         " {\"code\": \"INVALID_CLUSTER_REQUEST\"}}}",
         FLYTEIDL__CORE__TASK_EXECUTION__PHASE__FAILED, FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE,
         "INVALID_CLUSTER_REQUEST", FLYTEIDL__ADMIN__AGENT_ERROR__KIND__NON_RECOVERABLE,
         FLYTEIDL__CORE__EXECUTION_ERROR__ERROR_KIND__USER},
        {"{\"state\": {\"life_cycle_state\": \"TERMINATED\", \"result_state\": \"CANCELED\"}}",
         FLYTEIDL__CORE__TASK_EXECUTION__PHASE__ABORTED, FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE,
         NULL, 0, 0},
        {"{\"state\": {\"life_cycle_state\": \"PENDING\"}}",
         FLYTEIDL__CORE__TASK_EXECUTION__PHASE__INITIALIZING, FLYTEIDL__ADMIN__STATE__PENDING, NULL,
         0, 0},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};
        Flyteidl__Admin__GetTaskResponse *resp;
        Flyteidl__Admin__Resource *res;

        get(fx, &call);
        complete(sent_count - 1, DBX_VERDICT_OK, cases[i].body, NULL);
        resp = get_reply(&call);
        res = resp->resource;
        assert_int_equal(res->phase, cases[i].phase);
        assert_int_equal(res->state, cases[i].state);
        if (cases[i].error_code) {
            assert_non_null(res->agent_error);
            assert_string_equal(res->agent_error->code, cases[i].error_code);
            assert_int_equal(res->agent_error->kind, cases[i].kind);
            assert_int_equal(res->agent_error->origin, cases[i].origin);
        } else {
            assert_null(res->agent_error);
        }
        if (i == 0)
            assert_string_equal(res->log_links[0]->uri, "https://x.example.com/run/42");
        else
            assert_int_equal(res->n_log_links, 0); /* neither run_page_url nor job_id */
        flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
        call_done(&call);
    }
}

/* A run that no longer exists will never finish: FAILED, so propeller stops polling. */
static void test_get_run_gone(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;
    Flyteidl__Admin__Resource *res;

    get(fx, &call);
    complete(0, DBX_VERDICT_RUN_GONE, NULL, "Run 42 does not exist.");
    resp = get_reply(&call);
    res = resp->resource;
    assert_int_equal(res->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__FAILED);
    assert_int_equal(res->state, FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE);
    assert_string_equal(res->message, "Databricks run 42 no longer exists on " INSTANCE
                                      " (Run 42 does not exist.)");
    assert_non_null(res->agent_error);
    assert_string_equal(res->agent_error->code, "RUN_NOT_FOUND");
    assert_int_equal(res->agent_error->kind, FLYTEIDL__ADMIN__AGENT_ERROR__KIND__NON_RECOVERABLE);
    assert_int_equal(res->agent_error->origin, FLYTEIDL__CORE__EXECUTION_ERROR__ERROR_KIND__SYSTEM);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&call);
}

/* Trouble with nothing known about the run: an error, never an invented phase. */
static void test_get_trouble_without_last_known(void **state)
{
    static const struct {
        enum dbx_verdict verdict;
        const char *body;
        grpc_status_code code;
        const char *message;
    } cases[] = {
        {DBX_VERDICT_UNAVAILABLE, NULL, GRPC_STATUS_UNAVAILABLE, "HTTP 503: busy"},
        {DBX_VERDICT_RESOURCE_EXHAUSTED, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit"},
        {DBX_VERDICT_UNAUTHENTICATED, NULL, GRPC_STATUS_UNAUTHENTICATED, "bad token"},
        {DBX_VERDICT_PERMISSION_DENIED, NULL, GRPC_STATUS_PERMISSION_DENIED, "not yours"},
        {DBX_VERDICT_INVALID, NULL, GRPC_STATUS_INVALID_ARGUMENT, "bad request"},
        /* An answer we cannot read is trouble, not a verdict. */
        {DBX_VERDICT_OK, "{\"run_id\": 42}", GRPC_STATUS_UNAVAILABLE,
         "Databricks runs/get answer for run 42: runs/get answer has no state"},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};

        get(fx, &call);
        complete(sent_count - 1, cases[i].verdict, cases[i].body, cases[i].message);
        expect_failed(&call, cases[i].code, cases[i].message);
    }
}

static void test_get_refused(void **state)
{
    struct fixture *fx = *state;
    struct server_call wrong_type = {.deadline_ms = INT64_MAX};
    struct server_call not_allowed = {.deadline_ms = INT64_MAX};

    get_or_delete(fx, &wrong_type, false, "python-task", META_42);
    expect_failed(&wrong_type, GRPC_STATUS_NOT_FOUND,
                  "no connector for task type 'python-task'; this one serves 'spark' and "
                  "'databricks'");
    get_or_delete(fx, &not_allowed, false, "spark",
                  "{\"databricks_instance\": \"evil.example.com\", \"run_id\": \"1\"}");
    expect_failed(&not_allowed, GRPC_STATUS_PERMISSION_DENIED,
                  "Databricks instance 'evil.example.com' is not allowed by this connector "
                  "(allowed_instances)");
    assert_int_equal(sent_count, 0);
}

/* Two GetTasks for one run while its status is being read: one runs/get, both answered. */
static void test_get_coalesced(void **state)
{
    struct fixture *fx = *state;
    struct server_call first = {.deadline_ms = INT64_MAX}, second = {.deadline_ms = INT64_MAX};
    struct server_call other = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;

    get(fx, &first);
    get(fx, &second);
    assert_int_equal(sent_count, 1);
    /* Another run is read on its own. */
    get_or_delete(fx, &other, false, "spark",
                  "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"43\"}");
    assert_int_equal(sent_count, 2);
    assert_string_equal(sent[1].run_id, "43");

    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    assert_int_equal(other.answers, 0);
    for (int i = 0; i < 2; i++) {
        resp = get_reply(i ? &second : &first);
        assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
        assert_string_equal(resp->resource->message, "In run");
        flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    }
    complete(1, DBX_VERDICT_UNAVAILABLE, NULL, "HTTP 503");
    expect_failed(&other, GRPC_STATUS_UNAVAILABLE, "HTTP 503");
    /* The fetch is over: the next poll reads again (no status cache configured). */
    call_done(&first);
    first = (struct server_call){.deadline_ms = INT64_MAX};
    get(fx, &first);
    assert_int_equal(sent_count, 3);
    complete(2, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    call_done(&first);
    call_done(&second);
}

/* After a status was read, transient trouble answers that status, saying it is stale. */
static void test_get_last_known(void **state)
{
    struct fixture *fx = *state;
    struct server_call seen = {.deadline_ms = INT64_MAX};
    struct server_call stale = {.deadline_ms = INT64_MAX}, also = {.deadline_ms = INT64_MAX};
    struct server_call refused = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;
    const char *prefix = "status not refreshed: HTTP 503: busy (for ";
    const char *suffix = " s); last known: In run";

    get(fx, &seen);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    get(fx, &stale);
    get(fx, &also);
    assert_int_equal(sent_count, 2);
    complete(1, DBX_VERDICT_UNAVAILABLE, NULL, "HTTP 503: busy");
    for (int i = 0; i < 2; i++) {
        const char *message;

        resp = get_reply(i ? &also : &stale);
        message = resp->resource->message;
        assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
        assert_int_equal(strncmp(message, prefix, strlen(prefix)), 0);
        assert_true(strlen(message) > strlen(prefix) + strlen(suffix));
        assert_string_equal(message + strlen(message) - strlen(suffix), suffix);
        assert_string_equal(resp->resource->log_links[0]->uri,
                            "https://" INSTANCE "/#job/7/run/42");
        flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    }
    expect_metric(fx, "fdc_status_not_refreshed_total 2");

    /* A refused token is not transient: reported as it is. */
    get(fx, &refused);
    complete(2, DBX_VERDICT_UNAUTHENTICATED, NULL, "bad token");
    expect_failed(&refused, GRPC_STATUS_UNAUTHENTICATED, "bad token");
    call_done(&seen);
    call_done(&stale);
    call_done(&also);
}

/* A request the client cannot queue ends the fetch: the last known status if there is one. */
static void test_get_not_queued(void **state)
{
    struct fixture *fx = *state;
    struct server_call seen = {.deadline_ms = INT64_MAX};
    struct server_call stale = {.deadline_ms = INT64_MAX}, unknown = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;

    get(fx, &seen);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    dbx_result = -ESHUTDOWN;
    get(fx, &stale);
    resp = get_reply(&stale);
    assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
    assert_int_equal(
        strncmp(resp->resource->message, "status not refreshed: connector shutting down (for ", 51),
        0);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    get_or_delete(fx, &unknown, false, "spark",
                  "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"99\"}");
    expect_failed(&unknown, GRPC_STATUS_UNAVAILABLE, "connector shutting down");
    call_done(&seen);
    call_done(&stale);
}

/* With status_cache_ttl_ms, a poll soon after a read is answered from memory. */
static void test_get_cached(void **state)
{
    struct fixture *fx = *state;
    struct server_call first = {.deadline_ms = INT64_MAX}, second = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;

    get(fx, &first);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    get(fx, &second);
    assert_int_equal(sent_count, 1);
    resp = get_reply(&second);
    assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
    assert_string_equal(resp->resource->message, "In run");
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&first);
    call_done(&second);
}

#define FAILED_BODY                                                                                \
    "{\"run_id\": 42, \"job_id\": 7, \"state\": {\"life_cycle_state\": \"TERMINATED\","            \
    " \"result_state\": \"FAILED\", \"state_message\": \"Task failed\"}, \"tasks\": [{\"run_id\":" \
    " 4201, \"task_key\": \"t\", \"state\": {\"life_cycle_state\": \"TERMINATED\","                \
    " \"result_state\": \"FAILED\"}}]}"
#define OUTPUT_BODY                                                                                \
    "{\"error\": \"ValueError: boom\", \"error_trace\": \"Traceback:\\n  raise ValueError\\n"      \
    "ValueError: boom\"}"

static const char *info_string(const Flyteidl__Admin__Resource *res, const char *key)
{
    for (size_t i = 0; res->custom_info && i < res->custom_info->n_fields; i++)
        if (strcmp(res->custom_info->fields[i]->key, key) == 0)
            return res->custom_info->fields[i]->value->string_value;
    return NULL;
}

static void expect_message(const struct server_call *call, const char *message)
{
    Flyteidl__Admin__GetTaskResponse *resp = get_reply(call);

    assert_int_equal(resp->resource->phase,
                     FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RETRYABLE_FAILED);
    assert_string_equal(resp->resource->message, message);
    assert_string_equal(info_string(resp->resource, "run_id"), "42");
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
}

/* A failed run: runs/get-output once, for the task run, and the exception in the message of
 * every answer, those that joined while it was asked and later ones. */
static void test_get_failed_run_shows_the_exception(void **state)
{
    struct fixture *fx = *state;
    struct server_call first = {.deadline_ms = INT64_MAX}, joined = {.deadline_ms = INT64_MAX},
                       later = {.deadline_ms = INT64_MAX};
    const char *expected = "Task failed\nValueError: boom\nTraceback:\n  raise ValueError\n"
                           "ValueError: boom";

    get(fx, &first);
    complete(0, DBX_VERDICT_OK, FAILED_BODY, NULL);
    assert_int_equal(first.answers, 0); /* waits for the output */
    assert_int_equal(sent_count, 2);
    assert_int_equal(sent[1].endpoint, DBX_RUNS_GET_OUTPUT);
    assert_string_equal(sent[1].run_id, "4201");
    assert_string_equal(sent[1].instance, INSTANCE);
    assert_true(sent[1].retry_safe);
    get(fx, &joined);
    assert_int_equal(sent_count, 2);
    complete(1, DBX_VERDICT_OK, OUTPUT_BODY, NULL);
    expect_message(&first, expected);
    expect_message(&joined, expected);

    get(fx, &later);
    assert_int_equal(sent_count, 3);
    assert_int_equal(sent[2].endpoint, DBX_RUNS_GET);
    complete(2, DBX_VERDICT_OK, FAILED_BODY, NULL);
    assert_int_equal(sent_count, 3); /* the output was asked about once */
    expect_message(&later, expected);
    call_done(&first);
    call_done(&joined);
    call_done(&later);
}

/* runs/get-output refused or unreachable: the state message alone, never an error, and it is
 * not asked again. */
static void test_get_failed_run_without_output(void **state)
{
    struct fixture *fx = *state;
    struct server_call first = {.deadline_ms = INT64_MAX}, later = {.deadline_ms = INT64_MAX};

    get(fx, &first);
    complete(0, DBX_VERDICT_OK, FAILED_BODY, NULL);
    assert_int_equal(sent[1].endpoint, DBX_RUNS_GET_OUTPUT);
    complete(1, DBX_VERDICT_UNAVAILABLE, NULL, "Databricks runs/get-output answered HTTP 503");
    expect_message(&first, "Task failed");
    get(fx, &later);
    complete(2, DBX_VERDICT_OK, FAILED_BODY, NULL);
    assert_int_equal(sent_count, 3);
    expect_message(&later, "Task failed");
    call_done(&first);
    call_done(&later);
}

/* Every answer carries the run's details in custom_info. */
static void test_get_custom_info(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;

    get(fx, &call);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    assert_int_equal(sent_count, 1); /* a running run needs no output */
    resp = get_reply(&call);
    assert_non_null(resp->resource->custom_info);
    assert_string_equal(info_string(resp->resource, "run_id"), "42");
    assert_string_equal(info_string(resp->resource, "job_id"), "7");
    assert_string_equal(info_string(resp->resource, "state"), "RUNNING");
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&call);
}

/* ---- DeleteTask ------------------------------------------------------------- */

static void test_delete(void **state)
{
    static const struct {
        enum dbx_verdict verdict;
        grpc_status_code code;
    } cases[] = {
        {DBX_VERDICT_OK, GRPC_STATUS_OK},
        /* Propeller may abort twice; cleanup may follow a deleted run: gone is success. */
        {DBX_VERDICT_RUN_GONE, GRPC_STATUS_OK},
        {DBX_VERDICT_UNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED},
        {DBX_VERDICT_PERMISSION_DENIED, GRPC_STATUS_PERMISSION_DENIED},
        {DBX_VERDICT_INVALID, GRPC_STATUS_INVALID_ARGUMENT},
        {DBX_VERDICT_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};
        Flyteidl__Admin__DeleteTaskResponse *resp;

        get_or_delete(fx, &call, true, "databricks", META_42);
        assert_int_equal(call.answers, 0);
        assert_int_equal(sent[sent_count - 1].endpoint, DBX_RUNS_CANCEL);
        assert_string_equal(sent[sent_count - 1].instance, INSTANCE);
        assert_string_equal(sent[sent_count - 1].body, "{\"run_id\":42}");
        assert_true(sent[sent_count - 1].retry_safe);
        complete(sent_count - 1, cases[i].verdict, cases[i].verdict ? NULL : "{}", "cancel said");
        if (cases[i].code != GRPC_STATUS_OK) {
            expect_failed(&call, cases[i].code, "cancel said");
            continue;
        }
        assert_int_equal(call.answers, 1);
        assert_int_equal(call.code, GRPC_STATUS_OK);
        resp = flyteidl__admin__delete_task_response__unpack(NULL, call.reply_len, call.reply);
        assert_non_null(resp);
        flyteidl__admin__delete_task_response__free_unpacked(resp, NULL);
        call_done(&call);
    }
}

static void test_delete_refused(void **state)
{
    static const uint8_t garbage[] = {0x12, 0xff, 0x01};
    struct fixture *fx = *state;
    struct server_call undecodable = {.deadline_ms = INT64_MAX};
    struct server_call bad_meta = {.deadline_ms = INT64_MAX};
    struct server_call down = {.deadline_ms = INT64_MAX};

    agent_delete_task(agent_service(fx->agent, CONFIG_FLYTE_1), &undecodable, garbage,
                      sizeof(garbage));
    expect_failed(&undecodable, GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl.admin.DeleteTaskRequest");
    get_or_delete(fx, &bad_meta, true, "spark", "{\"run_id\": \"1\"}");
    assert_int_equal(bad_meta.code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(bad_meta.answers, 1);
    dbx_result = -ESHUTDOWN;
    get_or_delete(fx, &down, true, "spark", META_42);
    expect_failed(&down, GRPC_STATUS_UNAVAILABLE, "connector shutting down");
    assert_int_equal(sent_count, 0);
}

/* retryable_failed_phase false: Flyte 1 hears FAILED (with the deprecated state to match)
 * where it would hear RETRYABLE_FAILED, with the same message; other phases and Flyte 2 (whose
 * executor knows the phase) are unchanged. */
static void test_retryable_failed_phase_off(void **state)
{
    static const char failed[] = "{\"state\": {\"life_cycle_state\": \"TERMINATED\","
                                 " \"result_state\": \"FAILED\", \"state_message\": \"boom\"}}";
    struct fixture *fx = *state;
    struct server_call one = {.deadline_ms = INT64_MAX}, two = {.deadline_ms = INT64_MAX};
    struct server_call running = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp;
    Flyteidl2__Connector__GetTaskResponse *resp2;
    size_t len;
    uint8_t *bytes = requests_run2(false, "spark", META_42, NULL, &len);

    get(fx, &one);
    agent_get_task(agent_service(fx->agent, CONFIG_FLYTE_2), &two, bytes, len);
    free(bytes);
    complete(0, DBX_VERDICT_OK, failed, NULL);
    resp = get_reply(&one);
    assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__FAILED);
    assert_int_equal(resp->resource->state, FLYTEIDL__ADMIN__STATE__PERMANENT_FAILURE);
    assert_string_equal(resp->resource->message, "boom");
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    resp2 = flyteidl2__connector__get_task_response__unpack(NULL, two.reply_len, two.reply);
    assert_non_null(resp2);
    assert_int_equal(resp2->resource->phase,
                     FLYTEIDL2__CORE__TASK_EXECUTION__PHASE__RETRYABLE_FAILED);
    assert_string_equal(resp2->resource->message, "boom");
    flyteidl2__connector__get_task_response__free_unpacked(resp2, NULL);

    get(fx, &running);
    complete(1, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    resp = get_reply(&running);
    assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&one);
    call_done(&two);
    call_done(&running);
}

/* A reload while a GetTask waits: the call answers with the settings it started under (here
 * Flyte 1's RETRYABLE_FAILED), a call after the reload with the new ones, and the replaced config
 * is released by the last call that held it, not kept until exit. */
static void test_reload_during_call(void **state)
{
    static const char failed[] = "{\"state\": {\"life_cycle_state\": \"TERMINATED\","
                                 " \"result_state\": \"FAILED\", \"state_message\": \"boom\"}}";
    struct fixture *fx = *state;
    struct server_call before = {.deadline_ms = INT64_MAX}, after = {.deadline_ms = INT64_MAX};
    const struct config *old = config_ref(fx->config); /* the test's, to watch the count */
    struct config *fresh = config_new();
    Flyteidl__Admin__GetTaskResponse *resp;
    char *error = NULL;

    assert_non_null(fresh);
    if (config_parse_json(fresh,
                          "{\"default_instance\": \"" INSTANCE "\","
                          " \"retryable_failed_phase\": false}",
                          &error) < 0)
        fail_msg("config: %s", error ? error : "?");
    get(fx, &before);
    assert_int_equal(sent_count, 1);
    /* As daemon.c's reload: the new config in force, main's reference moved to it. */
    config_current_set(fx->current, fresh);
    config_unref(fx->config);
    fx->config = fresh;
    assert_true(atomic_load(&old->references) > 1); /* the waiting call still holds it */

    get_or_delete(fx, &after, false, "spark",
                  "{\"databricks_instance\": \"" INSTANCE "\", \"run_id\": \"43\"}");
    assert_int_equal(sent_count, 2);
    complete(0, DBX_VERDICT_OK, failed, NULL);
    resp = get_reply(&before);
    assert_int_equal(resp->resource->phase,
                     FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RETRYABLE_FAILED);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    assert_int_equal(atomic_load(&old->references), 1); /* the test's alone */
    config_unref(old);

    complete(1, DBX_VERDICT_OK, failed, NULL);
    resp = get_reply(&after);
    assert_int_equal(resp->resource->phase, FLYTEIDL__CORE__TASK_EXECUTION__PHASE__FAILED);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    call_done(&before);
    call_done(&after);
}

/* ---- Flyte 2: the same handlers, the executor's messages --------------------- */

static struct agent_service *flyte2(struct fixture *fx)
{
    return agent_service(fx->agent, CONFIG_FLYTE_2);
}

static void create2(struct fixture *fx, struct server_call *call, const char *token)
{
    size_t len;
    uint8_t *bytes = requests_create2(REQUESTS_SPARK_TEMPLATE, true, true, token, &len);

    agent_create_task(flyte2(fx), call, bytes, len);
    free(bytes);
}

static void run2(struct fixture *fx, struct server_call *call, bool delete, const char *meta,
                 const char *token)
{
    size_t len;
    uint8_t *bytes = requests_run2(delete, "databricks", meta, token, &len);

    if (delete)
        agent_delete_task(flyte2(fx), call, bytes, len);
    else
        agent_get_task(flyte2(fx), call, bytes, len);
    free(bytes);
}

/* Flyte 2's reply: its own message, with nothing beyond what flyteidl2's Resource declares
 * (no state, no agent_error). */
static Flyteidl2__Connector__GetTaskResponse *get_reply2(const struct server_call *call)
{
    Flyteidl2__Connector__GetTaskResponse *resp;

    assert_int_equal(call->answers, 1);
    if (call->code != GRPC_STATUS_OK)
        fail_msg("status %d: %s", call->code, call->message);
    resp = flyteidl2__connector__get_task_response__unpack(NULL, call->reply_len, call->reply);
    assert_non_null(resp);
    assert_non_null(resp->resource);
    assert_int_equal(resp->resource->base.n_unknown_fields, 0);
    return resp;
}

/* Flyte 2's answer carries the same details, as its own Resource's field: nothing the executor
 * would read as an unknown field (get_reply2() checks). */
static void test_flyte2_custom_info(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    Flyteidl2__Connector__GetTaskResponse *resp;
    Google__Protobuf__Struct *info;
    size_t len;
    uint8_t *bytes = requests_run2(false, "databricks", META_42, NULL, &len);
    const char *run_id = NULL;

    agent_get_task(agent_service(fx->agent, CONFIG_FLYTE_2), &call, bytes, len);
    free(bytes);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    resp = get_reply2(&call);
    info = resp->resource->custom_info;
    assert_non_null(info);
    for (size_t i = 0; i < info->n_fields; i++)
        if (strcmp(info->fields[i]->key, "run_id") == 0)
            run_id = info->fields[i]->value->string_value;
    assert_non_null(run_id);
    assert_string_equal(run_id, "42");
    flyteidl2__connector__get_task_response__free_unpacked(resp, NULL);
    call_done(&call);
}

static void test_flyte2_create(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    char token[IDEMPOTENCY_TOKEN_SIZE];
    Flyteidl2__Connector__CreateTaskResponse *resp;
    cJSON *body;

    requests_token(token);
    create2(fx, &call, NULL);
    assert_int_equal(sent_count, 1);
    assert_int_equal(sent[0].endpoint, DBX_RUNS_SUBMIT);
    assert_string_equal(sent[0].instance, INSTANCE);
    assert_true(sent[0].retry_safe);
    body = cJSON_Parse(sent[0].body);
    assert_string_equal(cJSON_GetObjectItem(body, "idempotency_token")->valuestring, token);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spark_python_task"), "python_file")
            ->valuestring,
        "flyteplugins/databricks/entrypoint.py");
    cJSON_Delete(body);

    complete(0, DBX_VERDICT_OK, "{\"run_id\": 77}", NULL);
    assert_int_equal(call.answers, 1);
    assert_int_equal(call.code, GRPC_STATUS_OK);
    resp = flyteidl2__connector__create_task_response__unpack(NULL, call.reply_len, call.reply);
    assert_non_null(resp);
    assert_int_equal(resp->resource_meta.len,
                     strlen("{\"databricks_instance\":\"" INSTANCE "\",\"run_id\":\"77\"}"));
    assert_memory_equal(resp->resource_meta.data,
                        "{\"databricks_instance\":\"" INSTANCE "\",\"run_id\":\"77\"}",
                        resp->resource_meta.len);
    flyteidl2__connector__create_task_response__free_unpacked(resp, NULL);
    call_done(&call);
    expect_metric(fx, "flyte_connector_requests_success_total{task_type=\"spark\","
                      "operation=\"create\"} 1");
}

/* Phase, message and log link as Flyte 1 gets them; the error details Flyte 2 has no field for
 * are left out. */
static void test_flyte2_get(void **state)
{
    static const struct {
        const char *body;
        enum dbx_verdict verdict;
        Flyteidl2__Core__TaskExecution__Phase phase;
        const char *message;
    } cases[] = {
        {RUNNING_BODY, DBX_VERDICT_OK, FLYTEIDL2__CORE__TASK_EXECUTION__PHASE__RUNNING, "In run"},
        {"{\"job_id\": 7, \"state\": {\"life_cycle_state\": \"TERMINATED\","
         " \"result_state\": \"FAILED\", \"state_message\": \"boom\"}}",
         DBX_VERDICT_OK, FLYTEIDL2__CORE__TASK_EXECUTION__PHASE__RETRYABLE_FAILED, "boom"},
        {NULL, DBX_VERDICT_RUN_GONE, FLYTEIDL2__CORE__TASK_EXECUTION__PHASE__FAILED,
         "Databricks run 42 no longer exists on " INSTANCE " (gone)"},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_call call = {.deadline_ms = INT64_MAX};
        Flyteidl2__Connector__GetTaskResponse *resp;

        run2(fx, &call, false, META_42, NULL);
        assert_int_equal(sent[sent_count - 1].endpoint, DBX_RUNS_GET);
        assert_string_equal(sent[sent_count - 1].run_id, "42");
        complete(sent_count - 1, cases[i].verdict, cases[i].body, "gone");
        resp = get_reply2(&call);
        assert_int_equal(resp->resource->phase, cases[i].phase);
        assert_string_equal(resp->resource->message, cases[i].message);
        if (cases[i].body) {
            assert_int_equal(resp->resource->n_log_links, 1);
            assert_string_equal(resp->resource->log_links[0]->name, "Databricks Console");
            assert_string_equal(resp->resource->log_links[0]->uri,
                                "https://" INSTANCE "/#job/7/run/42");
        }
        flyteidl2__connector__get_task_response__free_unpacked(resp, NULL);
        call_done(&call);
    }
}

/* One behaviour for both generations: a Flyte 1 and a Flyte 2 GetTask for one run share one
 * runs/get, and each hears the answer in its own messages. */
static void test_flyte2_shares_runs_with_flyte1(void **state)
{
    struct fixture *fx = *state;
    struct server_call one = {.deadline_ms = INT64_MAX}, two = {.deadline_ms = INT64_MAX};
    Flyteidl__Admin__GetTaskResponse *resp1;
    Flyteidl2__Connector__GetTaskResponse *resp2;

    get(fx, &one);
    run2(fx, &two, false, META_42, NULL);
    assert_int_equal(sent_count, 1);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    resp1 = get_reply(&one);
    assert_int_equal(resp1->resource->state, FLYTEIDL__ADMIN__STATE__RUNNING);
    resp2 = get_reply2(&two);
    assert_int_equal(resp2->resource->phase, FLYTEIDL2__CORE__TASK_EXECUTION__PHASE__RUNNING);
    assert_string_equal(resp2->resource->message, resp1->resource->message);
    flyteidl__admin__get_task_response__free_unpacked(resp1, NULL);
    flyteidl2__connector__get_task_response__free_unpacked(resp2, NULL);
    call_done(&one);
    call_done(&two);
}

static void test_flyte2_delete(void **state)
{
    struct fixture *fx = *state;
    struct server_call call = {.deadline_ms = INT64_MAX};
    Flyteidl2__Connector__DeleteTaskResponse *resp;

    run2(fx, &call, true, META_42, NULL);
    assert_int_equal(sent_count, 1);
    assert_int_equal(sent[0].endpoint, DBX_RUNS_CANCEL);
    assert_string_equal(sent[0].body, "{\"run_id\":42}");
    complete(0, DBX_VERDICT_RUN_GONE, NULL, "gone");
    assert_int_equal(call.answers, 1);
    assert_int_equal(call.code, GRPC_STATUS_OK);
    resp = flyteidl2__connector__delete_task_response__unpack(NULL, call.reply_len, call.reply);
    assert_non_null(resp);
    flyteidl2__connector__delete_task_response__free_unpacked(resp, NULL);
    call_done(&call);
}

/* The connection's token is used for that call alone; without one, the connector's. */
static void test_flyte2_connection_token(void **state)
{
    struct fixture *fx = *state;
    struct server_call create = {.deadline_ms = INT64_MAX}, delete = {.deadline_ms = INT64_MAX};
    struct server_call plain = {.deadline_ms = INT64_MAX};

    create2(fx, &create, "dapi-connection-1");
    run2(fx, &delete, true, META_42, "dapi-connection-2");
    create2(fx, &plain, NULL);
    assert_int_equal(sent_count, 3);
    assert_string_equal(sent[0].token, "dapi-connection-1");
    assert_string_equal(sent[1].token, "dapi-connection-2");
    assert_null(sent[2].token);
    /* resource_meta never carries it. */
    complete(0, DBX_VERDICT_OK, "{\"run_id\": 5}", NULL);
    assert_int_equal(create.code, GRPC_STATUS_OK);
    assert_null(memmem(create.reply, create.reply_len, "dapi-", 5));
    complete(1, DBX_VERDICT_OK, "{}", NULL);
    complete(2, DBX_VERDICT_OK, "{\"run_id\": 6}", NULL);
    call_done(&create);
    call_done(&delete);
    call_done(&plain);
}

/* GetTasks share a runs/get only with calls that read with the same token. */
static void test_flyte2_token_splits_coalescing(void **state)
{
    struct fixture *fx = *state;
    struct server_call a1 = {.deadline_ms = INT64_MAX}, a2 = {.deadline_ms = INT64_MAX};
    struct server_call b = {.deadline_ms = INT64_MAX}, own = {.deadline_ms = INT64_MAX};
    struct server_call v1 = {.deadline_ms = INT64_MAX};

    run2(fx, &a1, false, META_42, "dapi-a");
    run2(fx, &a2, false, META_42, "dapi-a");
    run2(fx, &b, false, META_42, "dapi-b");
    run2(fx, &own, false, META_42, NULL);
    get(fx, &v1); /* Flyte 1, the connector's token: joins `own` */
    assert_int_equal(sent_count, 3);
    assert_string_equal(sent[0].token, "dapi-a");
    assert_string_equal(sent[1].token, "dapi-b");
    assert_null(sent[2].token);

    /* b's token is refused: only b hears it. */
    complete(1, DBX_VERDICT_PERMISSION_DENIED, NULL, "not yours");
    expect_failed(&b, GRPC_STATUS_PERMISSION_DENIED, "not yours");
    assert_int_equal(a1.answers + a2.answers + own.answers + v1.answers, 0);
    complete(0, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    assert_int_equal(a1.answers + a2.answers, 2);
    assert_int_equal(own.answers + v1.answers, 0);
    complete(2, DBX_VERDICT_OK, RUNNING_BODY, NULL);
    assert_int_equal(own.answers + v1.answers, 2);
    assert_int_equal(v1.code, GRPC_STATUS_OK);
    call_done(&a1);
    call_done(&a2);
    call_done(&own);
    call_done(&v1);
}

static void test_flyte2_refused(void **state)
{
    static const uint8_t garbage[] = {0x12, 0xff, 0x01};
    struct fixture *fx = *state;
    struct server_call create = {.deadline_ms = INT64_MAX}, get = {.deadline_ms = INT64_MAX};
    struct server_call delete = {.deadline_ms = INT64_MAX};

    agent_create_task(flyte2(fx), &create, garbage, sizeof(garbage));
    expect_failed(&create, GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl2.connector.CreateTaskRequest");
    agent_get_task(flyte2(fx), &get, garbage, sizeof(garbage));
    expect_failed(&get, GRPC_STATUS_INVALID_ARGUMENT,
                  "request does not decode as flyteidl2.connector.GetTaskRequest");
    run2(fx, &delete, true, "{\"databricks_instance\": \"evil.example.com\", \"run_id\": \"1\"}",
         NULL);
    expect_failed(&delete, GRPC_STATUS_PERMISSION_DENIED,
                  "Databricks instance 'evil.example.com' is not allowed by this connector "
                  "(allowed_instances)");
    assert_int_equal(sent_count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_without_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_namespace_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_other_source_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_token_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_undecodable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_bad_run_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_not_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_run_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_trouble_without_last_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_last_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_not_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_cached, setup_cached, teardown),
        cmocka_unit_test_setup_teardown(test_get_failed_run_shows_the_exception, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_failed_run_without_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_custom_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_custom_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryable_failed_phase_off, setup_no_retryable,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_during_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_shares_runs_with_flyte1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_connection_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_token_splits_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flyte2_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
