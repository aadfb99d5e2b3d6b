/*
 * test_task_request.c - the checks a task request passes before any network: every refusal
 * with its gRPC status and message (written here, as the handlers answer them), and what an
 * accepted CreateTask, GetTask and DeleteTask give the handler, for Flyte 1's requests and for
 * Flyte 2's (with their connection's call token).
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

#include "config.h"
#include "requests.h"
#include "task_request.h"

#define DEFAULT_INSTANCE REQUESTS_INSTANCE

static struct config *new_config(const char *text)
{
    struct config *config = config_new();
    char *error = NULL;

    assert_non_null(config);
    if (config_parse_json(config, text, &error) < 0)
        fail_msg("config: %s", error ? error : "?");
    return config;
}

static int setup(void **state)
{
    *state = new_config("{\"default_instance\": \"" DEFAULT_INSTANCE "\","
                        " \"allowed_instances\": [\"other.example.com:8443\"],"
                        " \"service_credential_provider\": \"prov\"}");
    return 0;
}

static int teardown(void **state)
{
    config_unref(*state);
    return 0;
}

static grpc_status_code create(void **state, const char *template_text, bool with_execution,
                               bool with_inputs, struct task_request_submit *ret)
{
    size_t len;
    uint8_t *bytes = requests_create(template_text, with_execution, with_inputs, &len);
    grpc_status_code code = task_request_create(*state, CONFIG_FLYTE_1, bytes, len, ret);

    free(bytes);
    return code;
}

static void test_categories(void **state)
{
    (void)state;
    assert_int_equal(TASK_REQUEST_CATEGORIES, 2);
    assert_string_equal(task_request_categories[0].name, "spark");
    assert_int_equal(task_request_categories[0].version, 0);
    assert_string_equal(task_request_categories[1].name, "databricks");
    assert_int_equal(task_request_categories[1].version, 0);
    assert_true(task_request_type_supported("spark"));
    assert_true(task_request_type_supported("databricks"));
    assert_false(task_request_type_supported("Spark"));
    assert_false(task_request_type_supported("python-task"));
    assert_false(task_request_type_supported(""));
}

static void test_create_accepted(void **state)
{
    struct task_request_submit s;
    char token[IDEMPOTENCY_TOKEN_SIZE];
    cJSON *body;
    const cJSON *task;

    requests_token(token);
    assert_int_equal(create(state, REQUESTS_SPARK_TEMPLATE, true, true, &s), GRPC_STATUS_OK);
    assert_string_equal(s.task_type, "spark");
    assert_string_equal(s.instance, DEFAULT_INSTANCE);
    assert_true(s.has_inputs);
    assert_true(s.retry_safe);
    assert_string_equal(s.idempotency_token, token);
    body = cJSON_Parse(s.body);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "idempotency_token")->valuestring, token);
    assert_string_equal(cJSON_GetObjectItem(body, "existing_cluster_id")->valuestring, "c-1");
    /* The container's args end up as the Python task's parameters. */
    task = cJSON_GetObjectItem(body, "spark_python_task");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(task, "parameters"), 1)->valuestring,
                        "--x");
    cJSON_Delete(body);
    task_request_submit_done(&s);
    assert_null(s.body);
    assert_null(s.instance);
    task_request_submit_done(&s);
}

/* No task execution id: no token, and the submit must not be repeated. */
static void test_create_without_execution(void **state)
{
    struct task_request_submit s;
    cJSON *body;

    assert_int_equal(create(state, REQUESTS_SPARK_TEMPLATE, false, false, &s), GRPC_STATUS_OK);
    assert_false(s.has_inputs);
    assert_false(s.retry_safe);
    assert_string_equal(s.idempotency_token, "");
    body = cJSON_Parse(s.body);
    assert_null(cJSON_GetObjectItem(body, "idempotency_token"));
    cJSON_Delete(body);
    task_request_submit_done(&s);
}

/* The task's own databricksInstance wins over the default; the allowlist applies to it. */
static void test_create_instance(void **state)
{
    struct task_request_submit s;

    assert_int_equal(create(state,
                            "{\"type\": \"databricks\", \"custom\": {\"databricksInstance\":"
                            " \"https://Other.Example.com:8443/\", \"databricksConf\":"
                            " {\"existing_cluster_id\": \"c\"}}}",
                            true, false, &s),
                     GRPC_STATUS_OK);
    assert_string_equal(s.instance, "other.example.com:8443");
    assert_string_equal(s.task_type, "databricks");
    task_request_submit_done(&s);
}

static void test_create_refused(void **state)
{
    for (size_t i = 0; i < REQUESTS_REFUSED_CREATES; i++) {
        const struct requests_refusal *c = &requests_refused_creates[i];
        struct task_request_submit s;
        grpc_status_code code = create(state, c->template_text, true, false, &s);

        if (code != c->code || !requests_message_is(s.message, c->message))
            fail_msg("case %zu: %d '%s'", i, code, s.message);
        if (c->task_type)
            assert_string_equal(s.task_type, c->task_type);
        else
            assert_null(s.task_type);
        if (c->instance)
            assert_string_equal(s.instance, c->instance);
        else
            assert_null(s.instance);
        assert_null(s.body);
        assert_false(s.retry_safe);
        assert_string_equal(s.idempotency_token, "");
        task_request_submit_done(&s);
    }
}

static void test_create_no_instance(void **state)
{
    struct config *config = new_config("{}");
    struct task_request_submit s;
    void *no_default = config;

    assert_int_equal(create(&no_default, REQUESTS_SPARK_TEMPLATE, true, false, &s),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(s.message, "no Databricks instance: set databricksInstance in the task "
                                   "config or start the connector with --instance / "
                                   "FLYTE_DATABRICKS_INSTANCE");
    task_request_submit_done(&s);
    config_unref(config);
    (void)state;
}

static void test_create_undecodable(void **state)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    struct task_request_submit s;

    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, garbage, sizeof(garbage), &s),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(s.message, "request does not decode as flyteidl.admin.CreateTaskRequest");
    assert_null(s.task_type);
    task_request_submit_done(&s);
}

/* Packs req and checks CreateTask refuses it with INVALID_ARGUMENT and exactly message,
 * before the template's type is even read. */
static void expect_create_invalid(void **state, const Flyteidl__Admin__CreateTaskRequest *req,
                                  const char *message)
{
    struct task_request_submit s;
    size_t len;
    uint8_t *bytes = requests_pack(&req->base, &len);

    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, bytes, len, &s),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(s.message, message);
    assert_null(s.task_type);
    task_request_submit_done(&s);
    free(bytes);
}

/* template.custom nested past the bound is refused before protobuf-c unpacks it. */
static void test_create_too_deep(void **state)
{
    enum { LISTS = 200 }; /* each list costs two levels (ListValue, Value) */
    static Google__Protobuf__Value values[LISTS + 1];
    static Google__Protobuf__ListValue lists[LISTS];
    static Google__Protobuf__Value *items[LISTS];
    Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    Google__Protobuf__Struct__FieldsEntry *entries[1] = {&entry};
    Google__Protobuf__Struct custom = GOOGLE__PROTOBUF__STRUCT__INIT;
    Flyteidl__Core__TaskTemplate tmpl = FLYTEIDL__CORE__TASK_TEMPLATE__INIT;
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;

    for (size_t i = 0; i <= LISTS; i++)
        google__protobuf__value__init(&values[i]);
    for (size_t i = 0; i < LISTS; i++) {
        google__protobuf__list_value__init(&lists[i]);
        items[i] = &values[i + 1];
        lists[i].n_values = 1;
        lists[i].values = &items[i];
        values[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        values[i].list_value = &lists[i];
    }
    entry.key = (char *)"k";
    entry.value = &values[0];
    custom.n_fields = 1;
    custom.fields = entries;
    tmpl.type = (char *)"spark";
    tmpl.custom = &custom;
    req.template_ = &tmpl;
    expect_create_invalid(state, &req,
                          "request does not decode as "
                          "flyteidl.admin.CreateTaskRequest: message nests deeper "
                          "than 256 levels");
}

/* A string protobuf-c would take as it is, though proto3 forbids it, is refused naming the
 * field, before anything reads it. */
static void test_create_string_not_utf8(void **state)
{
    Flyteidl__Core__TaskTemplate tmpl = FLYTEIDL__CORE__TASK_TEMPLATE__INIT;
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;

    tmpl.type = (char *)"sp\xc3(rk";
    req.template_ = &tmpl;
    expect_create_invalid(state, &req,
                          "invalid flyteidl.admin.CreateTaskRequest: field "
                          "template.type is not valid UTF-8 (proto3 strings must "
                          "be UTF-8)");
}

static grpc_status_code run(void **state, bool delete, const char *category,
                            const char *legacy_type, const char *meta, struct task_request_run *ret)
{
    size_t len;
    uint8_t *bytes = requests_run(delete, category, legacy_type, meta, &len);
    grpc_status_code code = delete ? task_request_delete(*state, CONFIG_FLYTE_1, bytes, len, ret)
                                   : task_request_get(*state, CONFIG_FLYTE_1, bytes, len, ret);

    free(bytes);
    return code;
}

static void test_run_accepted(void **state)
{
    for (int delete = 0; delete <= 1; delete ++) {
        struct task_request_run r;

        assert_int_equal(run(state, delete, "spark", NULL,
                             "{\"databricks_instance\": \"DBC-1.cloud.databricks.com\","
                             " \"run_id\": \"42\", \"auth_token\": \"secret\"}",
                             &r),
                         GRPC_STATUS_OK);
        assert_string_equal(r.task_type, "spark");
        assert_string_equal(r.instance, DEFAULT_INSTANCE);
        assert_string_equal(r.run_id, "42");
        task_request_run_done(&r);
        assert_null(r.run_id);
        task_request_run_done(&r);

        /* Older propellers send only the deprecated task_type. */
        assert_int_equal(run(state, delete, NULL, "databricks",
                             "{\"databricks_instance\": \"other.example.com:8443\","
                             " \"run_id\": 7}",
                             &r),
                         GRPC_STATUS_OK);
        assert_string_equal(r.task_type, "databricks");
        assert_string_equal(r.instance, "other.example.com:8443");
        assert_string_equal(r.run_id, "7");
        task_request_run_done(&r);
    }
}

static void test_run_refused(void **state)
{
    static const struct {
        const char *category;
        const char *meta;
        grpc_status_code code;
        const char *message;
    } cases[] = {
        {"python-task", "{\"databricks_instance\": \"" DEFAULT_INSTANCE "\", \"run_id\": \"1\"}",
         GRPC_STATUS_NOT_FOUND,
         "no connector for task type 'python-task'; this one serves 'spark' and 'databricks'"},
        /* a client's task type is quoted back escaped and cut, like every client string */
        {"a\nb\"c\\d", "{}", GRPC_STATUS_NOT_FOUND,
         "no connector for task type 'a\\x0ab\\\"c\\\\d'; this one serves 'spark' and "
         "'databricks'"},
        {"0123456789012345678901234567890123456789012345678901234567890123456789", "{}",
         GRPC_STATUS_NOT_FOUND,
         "no connector for task type '0123456789012345678901234567890123456789012345678901234567890"
         "123...'; this one serves 'spark' and 'databricks'"},
        /* resmeta's own words follow */
        {"spark", "not json", GRPC_STATUS_INVALID_ARGUMENT, "malformed resource_meta: "},
        {"spark", "{\"databricks_instance\": \"evil.example.com\", \"run_id\": \"1\"}",
         GRPC_STATUS_PERMISSION_DENIED,
         "Databricks instance 'evil.example.com' is not allowed by this connector "
         "(allowed_instances)"},
    };

    for (int delete = 0; delete <= 1; delete ++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct task_request_run r;
            grpc_status_code code = run(state, delete, cases[i].category, NULL, cases[i].meta, &r);

            if (code != cases[i].code || !requests_message_is(r.message, cases[i].message))
                fail_msg("case %zu: %d '%s'", i, code, r.message);
            assert_string_equal(r.task_type, cases[i].category);
            assert_null(r.instance);
            assert_null(r.run_id);
            task_request_run_done(&r);
        }
    }
}

/* The per-namespace Secret flytekit would read: custom.databricksTokenSecret in the task's
 * namespace; a name Kubernetes cannot have is refused, a namespace it cannot have ignored. */
static void test_create_token_secret(void **state)
{
    static const char with_secret[] =
        "{\"type\": \"spark\", \"custom\": {\"databricksTokenSecret\": \"team-token\","
        " \"databricksConf\": {\"existing_cluster_id\": \"c\"}}}";
    static const struct {
        const char *secret;
        const char *message;
    } refused[] = {
        {"\"Team_Token\"", "custom.databricksTokenSecret 'Team_Token' is not a Kubernetes Secret "
                           "name (lowercase letters, digits, '-' and '.', at most 253)"},
        {"\"../x\"", "custom.databricksTokenSecret '../x' is not a Kubernetes Secret name "},
        {"12", "custom.databricksTokenSecret must be a string"},
    };
    struct task_request_submit s;
    size_t len;
    uint8_t *bytes;

    bytes = requests_create_in(with_secret, true, false, "flytesnacks-development", &len);
    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, bytes, len, &s), GRPC_STATUS_OK);
    assert_string_equal(s.creds.namespace, "flytesnacks-development");
    assert_string_equal(s.creds.token_secret, "team-token");
    assert_null(s.creds.auth_token);
    task_request_submit_done(&s);
    assert_null(s.creds.namespace);
    /* Flyte 2's TaskExecutionMetadata has the namespace under the same field number */
    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_2, bytes, len, &s), GRPC_STATUS_OK);
    assert_string_equal(s.creds.namespace, "flytesnacks-development");
    assert_string_equal(s.creds.token_secret, "team-token");
    task_request_submit_done(&s);
    free(bytes);

    /* no name: flytekit's default, left to the token chain */
    bytes = requests_create_in(REQUESTS_SPARK_TEMPLATE, true, false, "ns", &len);
    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, bytes, len, &s), GRPC_STATUS_OK);
    free(bytes);
    assert_string_equal(s.creds.namespace, "ns");
    assert_null(s.creds.token_secret);
    task_request_submit_done(&s);

    /* a namespace Kubernetes cannot have, or none: no per-namespace Secret */
    bytes = requests_create_in(with_secret, true, false, "Not/A/Namespace", &len);
    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, bytes, len, &s), GRPC_STATUS_OK);
    free(bytes);
    assert_null(s.creds.namespace);
    task_request_submit_done(&s);
    assert_int_equal(create(state, with_secret, true, false, &s), GRPC_STATUS_OK);
    assert_null(s.creds.namespace);
    task_request_submit_done(&s);

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char text[512];

        snprintf(text, sizeof(text),
                 "{\"type\": \"spark\", \"custom\": {\"databricksTokenSecret\": %s,"
                 " \"databricksConf\": {\"existing_cluster_id\": \"c\"}}}",
                 refused[i].secret);
        bytes = requests_create_in(text, true, false, "ns", &len);
        assert_int_equal(task_request_create(*state, CONFIG_FLYTE_1, bytes, len, &s),
                         GRPC_STATUS_INVALID_ARGUMENT);
        free(bytes);
        if (!requests_message_is(s.message, refused[i].message))
            fail_msg("case %zu: '%s'", i, s.message);
        assert_null(s.body);
        assert_null(s.creds.namespace);
        assert_null(s.creds.token_secret);
        task_request_submit_done(&s);
    }
}

/* GetTask and DeleteTask carry the run's token sources from resource_meta. */
static void test_run_token_sources(void **state)
{
    for (int delete = 0; delete <= 1; delete ++) {
        struct task_request_run r;

        assert_int_equal(run(state, delete, "spark", NULL,
                             "{\"databricks_instance\": \"" DEFAULT_INSTANCE
                             "\", \"run_id\": \"4\","
                             " \"namespace\": \"ns-a\", \"token_secret\": \"team-token\"}",
                             &r),
                         GRPC_STATUS_OK);
        assert_string_equal(r.creds.namespace, "ns-a");
        assert_string_equal(r.creds.token_secret, "team-token");
        assert_null(r.creds.auth_token);
        task_request_run_done(&r);

        assert_int_equal(run(state, delete, "spark", NULL,
                             "{\"databricks_instance\": \"" DEFAULT_INSTANCE
                             "\", \"run_id\": \"4\","
                             " \"auth_token\": \"dapi-flytekit\"}",
                             &r),
                         GRPC_STATUS_OK);
        assert_null(r.creds.namespace);
        assert_string_equal(r.creds.auth_token, "dapi-flytekit");
        task_request_run_done(&r);
        assert_null(r.creds.auth_token);

        /* the allowlist still applies to a run that brings its own token */
        assert_int_equal(run(state, delete, "spark", NULL,
                             "{\"databricks_instance\": \"evil.example.com\", \"run_id\": \"4\","
                             " \"auth_token\": \"dapi-flytekit\"}",
                             &r),
                         GRPC_STATUS_PERMISSION_DENIED);
        assert_null(r.creds.auth_token);
        task_request_run_done(&r);
    }
}

static void test_run_string_not_utf8(void **state)
{
    static const char *const expected[2] = {
        "invalid flyteidl.admin.GetTaskRequest: field task_category.name is not valid UTF-8 "
        "(proto3 strings must be UTF-8)",
        "invalid flyteidl.admin.DeleteTaskRequest: field task_category.name is not valid UTF-8 "
        "(proto3 strings must be UTF-8)",
    };

    for (int delete = 0; delete <= 1; delete ++) {
        struct task_request_run r;

        assert_int_equal(
            run(state, delete, "spark\xff", NULL,
                "{\"databricks_instance\": \"" DEFAULT_INSTANCE "\", \"run_id\": \"1\"}", &r),
            GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(r.message, expected[delete]);
        assert_null(r.task_type);
        task_request_run_done(&r);
    }
}

static void test_run_undecodable(void **state)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    struct task_request_run r;

    assert_int_equal(task_request_get(*state, CONFIG_FLYTE_1, garbage, sizeof(garbage), &r),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.message, "request does not decode as flyteidl.admin.GetTaskRequest");
    assert_null(r.task_type);
    task_request_run_done(&r);
    assert_int_equal(task_request_delete(*state, CONFIG_FLYTE_1, garbage, sizeof(garbage), &r),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.message, "request does not decode as flyteidl.admin.DeleteTaskRequest");
    assert_null(r.task_type);
    task_request_run_done(&r);
}

/* ---- Flyte 2 ----------------------------------------------------------------- */

/* SHA-256("abc"), FIPS 180-2's first test vector. */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static grpc_status_code create2(void **state, const char *template_text, const char *token,
                                struct task_request_submit *ret)
{
    size_t len;
    uint8_t *bytes = requests_create2(template_text, true, true, token, &len);
    grpc_status_code code = task_request_create(*state, CONFIG_FLYTE_2, bytes, len, ret);

    free(bytes);
    return code;
}

/* The same task as Flyte 1's, with flyte-sdk's entrypoint, the same idempotency token and the
 * connection's token for this call. */
static void test_create2_accepted(void **state)
{
    struct task_request_submit s;
    char token[IDEMPOTENCY_TOKEN_SIZE];
    cJSON *body;
    const cJSON *task;

    requests_token(token);
    assert_int_equal(create2(state, REQUESTS_SPARK_TEMPLATE, " dapi-task-token\n", &s),
                     GRPC_STATUS_OK);
    assert_string_equal(s.task_type, "spark");
    assert_string_equal(s.instance, DEFAULT_INSTANCE);
    assert_true(s.has_inputs);
    assert_true(s.retry_safe);
    assert_string_equal(s.idempotency_token, token);
    /* Surrounding whitespace is trimmed, as from a token file. */
    assert_string_equal(s.call_token, "dapi-task-token");
    body = cJSON_Parse(s.body);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "idempotency_token")->valuestring, token);
    task = cJSON_GetObjectItem(body, "spark_python_task");
    assert_string_equal(cJSON_GetObjectItem(task, "python_file")->valuestring,
                        "flyteplugins/databricks/entrypoint.py");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "git_source"), "git_commit")->valuestring,
        "194364210c47c49ce66c419e8fb68d6f9c06fd7e");
    assert_null(strstr(s.body, "dapi-task-token"));
    cJSON_Delete(body);
    task_request_submit_done(&s);
    assert_null(s.call_token);

    /* No connection: the connector's own token. */
    assert_int_equal(create2(state, REQUESTS_SPARK_TEMPLATE, NULL, &s), GRPC_STATUS_OK);
    assert_null(s.call_token);
    task_request_submit_done(&s);
}

/* Every refusal of Flyte 1's CreateTask holds for Flyte 2's, word for word, and a refused
 * request keeps no call token. */
static void test_create2_refused(void **state)
{
    for (size_t i = 0; i < REQUESTS_REFUSED_CREATES; i++) {
        const struct requests_refusal *c = &requests_refused_creates[i];
        struct task_request_submit s;
        grpc_status_code code = create2(state, c->template_text, "dapi-x", &s);

        if (code != c->code || !requests_message_is(s.message, c->message))
            fail_msg("case %zu: %d '%s'", i, code, s.message);
        assert_null(s.body);
        assert_null(s.call_token);
        assert_string_equal(s.idempotency_token, "");
        task_request_submit_done(&s);
    }
}

/* A token an Authorization header cannot carry is refused, without quoting it. */
static void test_create2_bad_token(void **state)
{
    static const char *const tokens[] = {
        "", "  \n", "dapi-a b", "dapi-a\r\nX-Evil: 1", "dapi-\x7f", "dapi-\xc3\xa9"};
    static const char empty[] = "connection secret 'databricks_token' is empty";
    static const char unusable[] = "connection secret 'databricks_token' contains a space, "
                                   "control or non-ASCII character, which an HTTP header cannot "
                                   "carry";

    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        struct task_request_submit s;

        assert_int_equal(create2(state, REQUESTS_SPARK_TEMPLATE, tokens[i], &s),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(s.message, i < 2 ? empty : unusable);
        assert_null(s.call_token);
        assert_null(s.body);
        task_request_submit_done(&s);
    }
}

static void test_create2_undecodable(void **state)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    struct task_request_submit s;

    assert_int_equal(task_request_create(*state, CONFIG_FLYTE_2, garbage, sizeof(garbage), &s),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(s.message,
                        "request does not decode as flyteidl2.connector.CreateTaskRequest");
    task_request_submit_done(&s);
}

static grpc_status_code run2(void **state, bool delete, const char *category, const char *meta,
                             const char *token, struct task_request_run *ret)
{
    size_t len;
    uint8_t *bytes = requests_run2(delete, category, meta, token, &len);
    grpc_status_code code = delete ? task_request_delete(*state, CONFIG_FLYTE_2, bytes, len, ret)
                                   : task_request_get(*state, CONFIG_FLYTE_2, bytes, len, ret);

    free(bytes);
    return code;
}

static void test_run2_accepted(void **state)
{
    for (int delete = 0; delete <= 1; delete ++) {
        struct task_request_run r;

        assert_int_equal(run2(state, delete, "databricks",
                              "{\"databricks_instance\": \"" DEFAULT_INSTANCE
                              "\", \"run_id\": \"42\"}",
                              "abc", &r),
                         GRPC_STATUS_OK);
        assert_string_equal(r.task_type, "databricks");
        assert_string_equal(r.instance, DEFAULT_INSTANCE);
        assert_string_equal(r.run_id, "42");
        assert_string_equal(r.call_token, "abc");
        assert_string_equal(r.call_token_tag, ABC_SHA256);
        task_request_run_done(&r);
        assert_null(r.call_token);
        assert_string_equal(r.call_token_tag, "");

        /* flyte-sdk's own connector writes json.dumps() of the same two keys, its instance as
         * the task gave it: tasks it started survive the switch. */
        assert_int_equal(run2(state, delete, "spark",
                              "{\"databricks_instance\": \"https://dbc-1.cloud.databricks.com/\","
                              " \"run_id\": \"1000\"}",
                              NULL, &r),
                         GRPC_STATUS_OK);
        assert_string_equal(r.instance, DEFAULT_INSTANCE);
        assert_string_equal(r.run_id, "1000");
        assert_null(r.call_token);
        assert_string_equal(r.call_token_tag, "");
        task_request_run_done(&r);
    }
}

static void test_run2_refused(void **state)
{
    static const char meta[] = "{\"databricks_instance\": \"" DEFAULT_INSTANCE "\", \"run_id\": "
                               "\"1\"}";
    static const struct {
        const char *category;
        const char *meta;
        const char *token;
        grpc_status_code code;
        const char *message;
    } cases[] = {
        /* Flyte 2 has no deprecated task_type to fall back on. */
        {NULL, meta, NULL, GRPC_STATUS_NOT_FOUND,
         "no connector for task type ''; this one serves 'spark' and 'databricks'"},
        {"spark", "{\"run_id\": \"1\"}", "abc", GRPC_STATUS_INVALID_ARGUMENT,
         "resource_meta: missing databricks_instance"},
        {"spark", "{\"databricks_instance\": \"evil.example.com\", \"run_id\": \"1\"}", "abc",
         GRPC_STATUS_PERMISSION_DENIED,
         "Databricks instance 'evil.example.com' is not allowed by this connector "
         "(allowed_instances)"},
        {"spark", meta, "", GRPC_STATUS_INVALID_ARGUMENT,
         "connection secret 'databricks_token' is empty"},
        {"spark", meta, "dapi-a\nb", GRPC_STATUS_INVALID_ARGUMENT,
         "connection secret 'databricks_token' contains a space, control or non-ASCII "
         "character, which an HTTP header cannot carry"},
    };

    for (int delete = 0; delete <= 1; delete ++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct task_request_run r;
            grpc_status_code code =
                run2(state, delete, cases[i].category, cases[i].meta, cases[i].token, &r);

            if (code != cases[i].code || strcmp(r.message, cases[i].message) != 0)
                fail_msg("case %zu: %d '%s'", i, code, r.message);
            assert_null(r.instance);
            assert_null(r.run_id);
            assert_null(r.call_token);
            task_request_run_done(&r);
        }
    }
}

static void test_run2_undecodable(void **state)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    struct task_request_run r;

    assert_int_equal(task_request_get(*state, CONFIG_FLYTE_2, garbage, sizeof(garbage), &r),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.message, "request does not decode as flyteidl2.connector.GetTaskRequest");
    task_request_run_done(&r);
    assert_int_equal(task_request_delete(*state, CONFIG_FLYTE_2, garbage, sizeof(garbage), &r),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.message,
                        "request does not decode as flyteidl2.connector.DeleteTaskRequest");
    task_request_run_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_create_accepted),
        cmocka_unit_test(test_create_without_execution),
        cmocka_unit_test(test_create_instance),
        cmocka_unit_test(test_create_refused),
        cmocka_unit_test(test_create_no_instance),
        cmocka_unit_test(test_create_undecodable),
        cmocka_unit_test(test_create_too_deep),
        cmocka_unit_test(test_create_string_not_utf8),
        cmocka_unit_test(test_run_accepted),
        cmocka_unit_test(test_run_refused),
        cmocka_unit_test(test_run_string_not_utf8),
        cmocka_unit_test(test_run_undecodable),
        cmocka_unit_test(test_create_token_secret),
        cmocka_unit_test(test_run_token_sources),
        cmocka_unit_test(test_create2_accepted),
        cmocka_unit_test(test_create2_refused),
        cmocka_unit_test(test_create2_bad_token),
        cmocka_unit_test(test_create2_undecodable),
        cmocka_unit_test(test_run2_accepted),
        cmocka_unit_test(test_run2_refused),
        cmocka_unit_test(test_run2_undecodable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
