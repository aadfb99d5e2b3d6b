/* Unit tests for template_json.c: TaskTemplate protobuf JSON (camelCase and snake_case) into
 * protobuf-c, the "not a TaskTemplate" shape checks, and exact messages for wrong input. The
 * fixtures are in tests/fixtures/template_json/; expected values are written out here by hand. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "template_json.h"

static char fixture_dir[4096];

static Flyteidl__Core__TaskTemplate *parse_ok(const char *text)
{
    Flyteidl__Core__TaskTemplate *t = NULL;
    char *err = NULL;
    int r = template_json_parse(text, strlen(text), &t, &err);

    if (r != 0)
        fail_msg("parse of %s failed: %d %s", text, r, err ? err : "(no message)");
    assert_null(err);
    assert_non_null(t);
    return t;
}

static Flyteidl__Core__TaskTemplate *parse_fixture(const char *name)
{
    size_t len;
    char *text = fixture_read(fixture_dir, name, &len);
    Flyteidl__Core__TaskTemplate *t = NULL;
    char *err = NULL;
    int r = template_json_parse(text, len, &t, &err);

    if (r != 0)
        fail_msg("fixture %s: %d %s", name, r, err ? err : "(no message)");
    free(text);
    return t;
}

static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *s, const char *key)
{
    assert_non_null(s);
    for (size_t i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i]->key, key) == 0)
            return s->fields[i]->value;
    fail_msg("Struct has no key %s", key);
    return NULL;
}

static void assert_string_value(const Google__Protobuf__Value *v, const char *expected)
{
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
    assert_string_equal(v->string_value, expected);
}

static void assert_number_value(const Google__Protobuf__Value *v, double expected)
{
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_true(v->number_value == expected);
}

/* What both flytekit fixtures hold, spelled out independently of the field tables. */
static void assert_flytekit_template(const Flyteidl__Core__TaskTemplate *t)
{
    const Google__Protobuf__Value *conf, *cluster, *libraries;
    const Flyteidl__Core__Container *c;

    assert_non_null(t->id);
    assert_int_equal(t->id->resource_type, 1);
    assert_string_equal(t->id->project, "flytesnacks");
    assert_string_equal(t->id->domain, "development");
    assert_string_equal(t->id->name, "workflows.spark.hello_spark");
    assert_string_equal(t->id->version, "v1");
    assert_string_equal(t->id->org, "");
    assert_string_equal(t->type, "spark");
    assert_int_equal(t->task_type_version, 1);

    assert_int_equal(t->target_case, FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER);
    c = t->container;
    assert_non_null(c);
    assert_string_equal(c->image, "ghcr.io/flyteorg/flytekit:py3.11-1.14.0");
    assert_int_equal(c->n_command, 0);
    assert_int_equal(c->n_args, 3);
    assert_string_equal(c->args[0], "pyflyte-execute");
    assert_string_equal(c->args[1], "--inputs");
    assert_string_equal(c->args[2], "s3://bucket/inputs.pb");
    assert_int_equal(c->n_env, 2);
    assert_string_equal(c->env[0]->key, "GREETING");
    assert_string_equal(c->env[0]->value, "hello world");
    assert_string_equal(c->env[1]->key, "EMPTY");
    assert_string_equal(c->env[1]->value, "");

    assert_int_equal(t->n_config, 2);
    assert_string_equal(t->config[0]->key, "pod_template_name");
    assert_string_equal(t->config[0]->value, "tmpl");
    assert_string_equal(t->config[1]->key, "b");
    assert_string_equal(t->config[1]->value, "");

    assert_non_null(t->custom);
    assert_int_equal(t->custom->n_fields, 3);
    assert_string_value(struct_get(t->custom, "applicationType"), "PYTHON");
    assert_string_value(
        struct_get(struct_get(t->custom, "sparkConf")->struct_value, "spark.driver.memory"),
        "1000M");
    conf = struct_get(t->custom, "databricksConf");
    assert_int_equal(conf->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    assert_string_value(struct_get(conf->struct_value, "run_name"), "example");
    /* Whole numbers become Struct doubles. */
    assert_number_value(struct_get(conf->struct_value, "timeout_seconds"), 3600.0);
    cluster = struct_get(conf->struct_value, "new_cluster");
    assert_number_value(struct_get(cluster->struct_value, "num_workers"), 2.0);
    assert_int_equal(struct_get(cluster->struct_value, "autoscale")->kind_case,
                     GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    libraries = struct_get(conf->struct_value, "libraries");
    assert_int_equal(libraries->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_int_equal(libraries->list_value->n_values, 4);
    assert_int_equal(libraries->list_value->values[0]->kind_case,
                     GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    assert_string_value(
        struct_get(struct_get(libraries->list_value->values[0]->struct_value, "pypi")->struct_value,
                   "package"),
        "numpy");
    assert_string_value(libraries->list_value->values[1], "x");
    assert_int_equal(libraries->list_value->values[2]->kind_case,
                     GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    assert_true(libraries->list_value->values[2]->bool_value);
    assert_number_value(libraries->list_value->values[3], 1.5);
}

static uint8_t *pack(const Flyteidl__Core__TaskTemplate *t, size_t *ret_len)
{
    size_t len = flyteidl__core__task_template__get_packed_size(t);
    uint8_t *buf = malloc(len ? len : 1);

    assert_non_null(buf);
    assert_int_equal(flyteidl__core__task_template__pack(t, buf), len);
    *ret_len = len;
    return buf;
}

static void test_camel_case_fixture(void **state)
{
    Flyteidl__Core__TaskTemplate *t;

    (void)state;
    t = parse_fixture("flytekit_camel.json");
    assert_flytekit_template(t);
    template_json_free(t);
}

static void test_snake_case_fixture(void **state)
{
    Flyteidl__Core__TaskTemplate *t;

    (void)state;
    t = parse_fixture("flytekit_snake.json");
    assert_flytekit_template(t);
    template_json_free(t);
}

/* Both spellings give the same message on the wire, and the wire form reads back. */
static void test_camel_and_snake_pack_identically(void **state)
{
    Flyteidl__Core__TaskTemplate *camel, *snake, *back;
    uint8_t *a, *b;
    size_t a_len, b_len;

    (void)state;
    camel = parse_fixture("flytekit_camel.json");
    snake = parse_fixture("flytekit_snake.json");
    a = pack(camel, &a_len);
    b = pack(snake, &b_len);
    assert_true(a_len > 100);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    back = flyteidl__core__task_template__unpack(NULL, a_len, a);
    assert_non_null(back);
    assert_flytekit_template(back);
    protobuf_c_message_free_unpacked(&back->base, NULL);
    free(a);
    free(b);
    template_json_free(camel);
    template_json_free(snake);
}

static void test_minimal_and_nulls(void **state)
{
    Flyteidl__Core__TaskTemplate *t;

    (void)state;
    t = parse_ok("{\"type\": \"databricks\"}");
    assert_string_equal(t->type, "databricks");
    assert_null(t->id);
    assert_null(t->custom);
    assert_int_equal(t->target_case, FLYTEIDL__CORE__TASK_TEMPLATE__TARGET__NOT_SET);
    assert_int_equal(t->n_config, 0);
    template_json_free(t);

    /* null is "not set", as in protobuf JSON. */
    t = parse_ok("{\"type\": \"spark\", \"id\": null, \"custom\": null, \"container\": null, "
                 "\"taskTypeVersion\": null, \"config\": null, \"metadata\": null}");
    assert_null(t->id);
    assert_null(t->custom);
    assert_int_equal(t->target_case, FLYTEIDL__CORE__TASK_TEMPLATE__TARGET__NOT_SET);
    assert_int_equal(t->task_type_version, 0);
    template_json_free(t);

    t = parse_ok("{\"container\": {\"image\": null, \"env\": [], \"args\": []}, \"custom\": {}}");
    assert_int_equal(t->target_case, FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER);
    assert_string_equal(t->container->image, "");
    assert_int_equal(t->container->n_env, 0);
    assert_non_null(t->custom);
    assert_int_equal(t->custom->n_fields, 0);
    template_json_free(t);
}

static void test_integers_and_resource_types(void **state)
{
    static const struct {
        const char *text;
        int resource_type;
        int task_type_version;
    } cases[] = {
        {"{\"id\": {\"resourceType\": \"WORKFLOW\"}, \"taskTypeVersion\": -3}", 2, -3},
        {"{\"id\": {\"resource_type\": \"LAUNCH_PLAN\"}, \"taskTypeVersion\": 2147483647}", 3,
         2147483647},
        {"{\"id\": {\"resourceType\": \"DATASET\"}, \"taskTypeVersion\": \"-2147483648\"}", 4,
         -2147483647 - 1},
        {"{\"id\": {\"resourceType\": \"UNSPECIFIED\"}, \"taskTypeVersion\": 7.0}", 0, 7},
        {"{\"id\": {\"resourceType\": 1}, \"taskTypeVersion\": 0}", 1, 0},
        /* Enums are open: an unknown number is kept. */
        {"{\"id\": {\"resourceType\": 42}}", 42, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Flyteidl__Core__TaskTemplate *t = parse_ok(cases[i].text);
        assert_non_null(t->id);
        assert_int_equal(t->id->resource_type, cases[i].resource_type);
        assert_int_equal(t->task_type_version, cases[i].task_type_version);
        template_json_free(t);
    }
}

/* The text need not end in a NUL: only len bytes are read. */
static void test_length_bounds_input(void **state)
{
    const char text[] = "{\"type\": \"spark\"}{\"garbage\"";
    Flyteidl__Core__TaskTemplate *t = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(template_json_parse(text, 17, &t, &err), 0);
    assert_string_equal(t->type, "spark");
    template_json_free(t);
    t = NULL;
    assert_int_equal(template_json_parse(text, sizeof(text) - 1, &t, &err), -EINVAL);
    assert_string_equal(err, "invalid JSON at line 1, column 18");
    assert_null(t);
    free(err);
}

struct error_case {
    const char *text;
    const char *message;
};

static void check_errors(const struct error_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Flyteidl__Core__TaskTemplate *t = NULL;
        char *err = NULL;
        int r = template_json_parse(cases[i].text, strlen(cases[i].text), &t, &err);

        if (r != -EINVAL)
            fail_msg("case %zu (%s): expected -EINVAL, got %d", i, cases[i].text, r);
        assert_null(t);
        assert_non_null(err);
        if (strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu (%s):\n  got      '%s'\n  expected '%s'", i, cases[i].text, err,
                     cases[i].message);
        free(err);
    }
}

static void test_not_a_template(void **state)
{
    static const struct error_case cases[] = {
        {"[]", "not a TaskTemplate: the top-level value is an array"},
        {"[{\"type\": \"spark\"}]", "not a TaskTemplate: the top-level value is an array"},
        {"\"spark\"", "not a TaskTemplate: the top-level value is a string"},
        {"12", "not a TaskTemplate: the top-level value is a number"},
        {"true", "not a TaskTemplate: the top-level value is a boolean"},
        {"null", "not a TaskTemplate: the top-level value is null"},
        {"{}", "not a TaskTemplate: the object is empty"},
        {"{\"template\": {\"type\": \"spark\"}, \"outputPrefix\": \"s3://x\"}",
         "not a TaskTemplate: it looks like a CreateTaskRequest; give the value of its "
         "'template'"},
        {"{\"task_execution_metadata\": {}}",
         "not a TaskTemplate: it looks like a CreateTaskRequest; give the value of its "
         "'template'"},
        {"{\"run_id\": \"1\"}",
         "not a TaskTemplate: it looks like a resource_meta; use the status or cancel command"},
        {"{\"a\": 1, \"b\": 2}", "not a TaskTemplate: none of its fields is present (found 'a', "
                                 "'b')"},
        {"{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}",
         "not a TaskTemplate: none of its fields is present (found 'a', 'b', 'c', ...)"},
    };

    (void)state;
    check_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_fixtures_of_other_messages(void **state)
{
    static const struct {
        const char *name;
        const char *message;
    } cases[] = {
        {"create_request.json", "not a TaskTemplate: it looks like a CreateTaskRequest; give the "
                                "value of its 'template'"},
        {"resource_meta.json", "not a TaskTemplate: it looks like a resource_meta; use the status "
                               "or cancel command"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *text = fixture_read(fixture_dir, cases[i].name, &len);
        Flyteidl__Core__TaskTemplate *t = NULL;
        char *err = NULL;

        assert_int_equal(template_json_parse(text, len, &t, &err), -EINVAL);
        assert_null(t);
        assert_string_equal(err, cases[i].message);
        free(err);
        free(text);
    }
}

static void test_invalid_json(void **state)
{
    static const struct error_case cases[] = {
        {"", "invalid JSON: the input is empty"},
        {" \n\t ", "invalid JSON: the input is empty"},
        {"{", "invalid JSON at line 1, column 1"}, /* cJSON points at the last byte on EOF */
        {"{\n  \"type\": \"spark\",\n  \"id\": }\n", "invalid JSON at line 3, column 9"},
        {"{\"type\": \"spark\"} x", "invalid JSON at line 1, column 19"},
    };

    (void)state;
    check_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Wrong types, found at every depth; several leave a half-built message behind, which
 * valgrind checks is freed. */
static void test_wrong_types(void **state)
{
    static const struct error_case cases[] = {
        {"{\"type\": 3}", "type: expected a string, got a number"},
        {"{\"type\": [\"spark\"]}", "type: expected a string, got an array"},
        {"{\"id\": \"x\"}", "id: expected an object, got a string"},
        {"{\"id\": {\"project\": true}}", "id.project: expected a string, got a boolean"},
        {"{\"id\": {\"resourceType\": \"TASKS\"}}",
         "id.resourceType: unknown value 'TASKS' (expected TASK, WORKFLOW, LAUNCH_PLAN, DATASET "
         "or UNSPECIFIED)"},
        {"{\"id\": {\"resource_type\": {}}}", "id.resource_type: expected an integer, got an "
                                              "object"},
        {"{\"custom\": [1]}", "custom: expected an object, got an array"},
        {"{\"custom\": \"{}\"}", "custom: expected an object, got a string"},
        {"{\"container\": []}", "container: expected an object, got an array"},
        {"{\"container\": {\"image\": \"i\", \"args\": [\"a\", \"b\", 3]}}",
         "container.args[2]: expected a string, got a number"},
        {"{\"container\": {\"command\": \"python\"}}",
         "container.command: expected an array of strings, got a string"},
        {"{\"container\": {\"env\": {\"A\": \"1\"}}}",
         "container.env: expected an array of {\"key\", \"value\"} objects, got an object"},
        {"{\"container\": {\"env\": [{\"key\": \"A\", \"value\": \"1\"}, {\"key\": \"B\", "
         "\"value\": 2}]}}",
         "container.env[1].value: expected a string, got a number"},
        {"{\"container\": {\"env\": [{\"key\": \"A\"}, \"B=2\"]}}",
         "container.env[1]: expected an object, got a string"},
        {"{\"container\": {\"env\": [{\"name\": \"A\", \"value\": \"1\"}]}}",
         "unknown field 'container.env[0].name'"},
        {"{\"taskTypeVersion\": 1.5}", "taskTypeVersion: expected a 32-bit integer, got 1.5"},
        {"{\"taskTypeVersion\": 3000000000}",
         "taskTypeVersion: expected a 32-bit integer, got 3e+09"},
        {"{\"task_type_version\": \"1x\"}",
         "task_type_version: expected a 32-bit integer, got '1x'"},
        {"{\"task_type_version\": \"\"}", "task_type_version: expected a 32-bit integer, got ''"},
        {"{\"taskTypeVersion\": true}", "taskTypeVersion: expected an integer, got a boolean"},
        {"{\"config\": [\"a\"]}", "config: expected an object of strings, got an array"},
        {"{\"config\": {\"a\": \"1\", \"b\": 2}}", "config.b: expected a string, got a number"},
        {"{\"config\": {\"a\": null}}", "config.a: expected a string, got null"},
    };

    (void)state;
    check_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_unknown_and_repeated_fields(void **state)
{
    static const struct error_case cases[] = {
        {"{\"type\": \"spark\", \"contianer\": {}}", "unknown field 'contianer'"},
        {"{\"type\": \"spark\", \"container\": {\"image\": \"i\", \"imgae\": \"j\"}}",
         "unknown field 'container.imgae'"},
        {"{\"id\": {\"project\": \"p\", \"Name\": \"n\"}}", "unknown field 'id.Name'"},
        {"{\"type\": \"spark\", \"type\": \"databricks\"}", "field 'type' given twice"},
        {"{\"taskTypeVersion\": 1, \"task_type_version\": 2}",
         "field 'task_type_version' given twice"},
        {"{\"container\": {\"args\": [\"a\"], \"args\": [\"b\"]}}",
         "field 'container.args' given twice"},
    };

    (void)state;
    check_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

/* custom goes through structjson; its messages come back under "custom". */
static void test_custom_errors_are_prefixed(void **state)
{
    Flyteidl__Core__TaskTemplate *t = NULL;
    char *err = NULL;
    char deep[512];
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"custom\": ");
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "1");
    for (int i = 0; i < 81; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}");
    assert_true(n < sizeof(deep));
    assert_int_equal(template_json_parse(deep, n, &t, &err), -EINVAL);
    assert_null(t);
    assert_non_null(err);
    assert_true(strncmp(err, "custom: ", 8) == 0);
    free(err);
}

/* reterr_msg may be NULL. */
static void test_null_error_pointer(void **state)
{
    Flyteidl__Core__TaskTemplate *t = NULL;

    (void)state;
    assert_int_equal(template_json_parse("[]", 2, &t, NULL), -EINVAL);
    assert_null(t);
    assert_null(template_json_free(NULL));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_camel_case_fixture),
        cmocka_unit_test(test_snake_case_fixture),
        cmocka_unit_test(test_camel_and_snake_pack_identically),
        cmocka_unit_test(test_minimal_and_nulls),
        cmocka_unit_test(test_integers_and_resource_types),
        cmocka_unit_test(test_length_bounds_input),
        cmocka_unit_test(test_not_a_template),
        cmocka_unit_test(test_fixtures_of_other_messages),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_and_repeated_fields),
        cmocka_unit_test(test_custom_errors_are_prefixed),
        cmocka_unit_test(test_null_error_pointer),
    };

    (void)argc;
    fixture_dir_find(fixture_dir, sizeof(fixture_dir), argv[0], "template_json");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
