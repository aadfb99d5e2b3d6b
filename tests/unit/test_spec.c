/* Unit tests for spec.c: golden runs/submit bodies (tests/fixtures/spec/<case>.in.json ->
 * <case>.expected.json, derived by hand from flytekit's connector.py rules, and for the
 * flyte2_* cases with "generation": 2 from flyte-sdk's) compared as parsed trees, the same cases
 * through a protobuf Struct, error cases with their messages, no mutation of the input,
 * whole-number printing and spec_instance(). */
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
#include "spec.h"
#include "structjson.h"

#define FLYTE_1 config_entrypoint(CONFIG_FLYTE_1)

static char fixture_dir[4096];

/* Every fixture pair in tests/fixtures/spec; test_fixture_list_complete keeps this in step. */
static const char *const fixture_cases[] = {
    "cluster_wins_over_serverless",
    "existing_cluster",
    "existing_cluster_null_uses_new_cluster",
    "flyte2_existing_cluster",
    "flyte2_new_cluster",
    "flyte2_new_cluster_merge",
    "flyte2_serverless_own_python_file",
    "flyte2_user_git_source",
    "idempotency_token",
    "jar_existing_cluster_libraries",
    "jar_new_cluster",
    "new_cluster_merge",
    "new_cluster_minimal",
    "notebook_classic",
    "notebook_empty_params_empty_git",
    "notebook_serverless_git",
    "serverless_default_credential",
    "serverless_empty_credential_no_spec",
    "serverless_environment_key",
    "serverless_existing_environment",
    "serverless_null_cluster_keys",
    "spark_conf_from_custom",
    "user_git_source",
};
#define N_FIXTURES (sizeof(fixture_cases) / sizeof(fixture_cases[0]))

static cJSON *load_json(const char *name, const char *suffix)
{
    char file[512];
    char *text;
    size_t len;
    cJSON *j;

    snprintf(file, sizeof(file), "%s%s", name, suffix);
    text = fixture_read(fixture_dir, file, &len);
    j = cJSON_Parse(text);
    if (!j)
        fail_msg("%s/%s is not valid JSON", fixture_dir, file);
    free(text);
    return j;
}

/* A struct spec_input pointing into a parsed <case>.in.json, plus the arrays it needs. */
struct loaded_input {
    cJSON *doc;
    struct spec_input in;
    const char **args;
    struct spec_env_var *env;
};

static const char *optional_string(const cJSON *doc, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void load_input(const char *name, struct loaded_input *li)
{
    const cJSON *args, *env, *item;
    size_t i;

    memset(li, 0, sizeof(*li));
    li->doc = load_json(name, ".in.json");
    args = cJSON_GetObjectItemCaseSensitive(li->doc, "args");
    env = cJSON_GetObjectItemCaseSensitive(li->doc, "env");
    li->args = calloc((size_t)cJSON_GetArraySize(args) + 1, sizeof(*li->args));
    li->env = calloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(*li->env));
    assert_non_null(li->args);
    assert_non_null(li->env);
    i = 0;
    cJSON_ArrayForEach(item, args) li->args[i++] = item->valuestring;
    li->in.args = li->args;
    li->in.args_count = i;
    i = 0;
    cJSON_ArrayForEach(item, env)
    {
        li->env[i].name = optional_string(item, "name");
        li->env[i].value = optional_string(item, "value");
        i++;
    }
    li->in.env = li->env;
    li->in.env_count = i;
    li->in.custom = cJSON_GetObjectItemCaseSensitive(li->doc, "custom");
    li->in.image = optional_string(li->doc, "image");
    li->in.default_credential_provider = optional_string(li->doc, "default_credential_provider");
    li->in.idempotency_token = optional_string(li->doc, "idempotency_token");
    /* "generation": 2 is a Flyte 2 (flyte-sdk) task; absent, Flyte 1 (flytekit). */
    item = cJSON_GetObjectItemCaseSensitive(li->doc, "generation");
    li->in.entrypoint = config_entrypoint(
        cJSON_IsNumber(item) && item->valueint == 2 ? CONFIG_FLYTE_2 : CONFIG_FLYTE_1);
}

static void free_input(struct loaded_input *li)
{
    cJSON_Delete(li->doc);
    free(li->args);
    free(li->env);
}

static void assert_tree_equal(const char *name, const cJSON *got, const cJSON *expected)
{
    if (!cJSON_Compare(got, expected, 1)) {
        char *g = cJSON_Print(got), *e = cJSON_Print(expected);
        print_error("case %s\n--- got:\n%s\n--- expected:\n%s\n", name, g, e);
        free(g);
        free(e);
        fail_msg("case %s: body differs from the expected fixture", name);
    }
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        struct loaded_input li;
        cJSON *expected = load_json(fixture_cases[i], ".expected.json");
        cJSON *body = NULL;
        char *custom_before, *custom_after, *err = NULL;

        load_input(fixture_cases[i], &li);
        custom_before = cJSON_PrintUnformatted(li.in.custom);
        assert_int_equal(spec_build(&li.in, &body, &err), 0);
        assert_null(err);
        assert_tree_equal(fixture_cases[i], body, expected);
        custom_after = cJSON_PrintUnformatted(li.in.custom);
        assert_string_equal(custom_before, custom_after);

        free(custom_before);
        free(custom_after);
        cJSON_Delete(body);
        cJSON_Delete(expected);
        free_input(&li);
    }
}

/* The daemon's real path: custom arrives as a protobuf Struct and goes through structjson. */
static void test_fixtures_through_struct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        struct loaded_input li;
        cJSON *expected = load_json(fixture_cases[i], ".expected.json");
        cJSON *custom = NULL, *body = NULL;
        Google__Protobuf__Struct *s = NULL;

        load_input(fixture_cases[i], &li);
        assert_int_equal(structjson_from_cjson(li.in.custom, &s, NULL), 0);
        assert_int_equal(structjson_to_cjson(s, &custom, NULL), 0);
        li.in.custom = custom;
        assert_int_equal(spec_build(&li.in, &body, NULL), 0);
        assert_tree_equal(fixture_cases[i], body, expected);

        cJSON_Delete(body);
        cJSON_Delete(custom);
        structjson_struct_free(s);
        cJSON_Delete(expected);
        free_input(&li);
    }
}

/* Every *.in.json on disk is in fixture_cases, so a new fixture cannot be silently skipped. */
static void test_fixture_list_complete(void **state)
{
    DIR *d = opendir(fixture_dir);
    struct dirent *e;
    size_t inputs = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        int listed = 0;

        if (len < 8 || strcmp(e->d_name + len - 8, ".in.json") != 0)
            continue;
        inputs++;
        for (size_t i = 0; i < N_FIXTURES; i++)
            if (strlen(fixture_cases[i]) == len - 8 &&
                strncmp(fixture_cases[i], e->d_name, len - 8) == 0)
                listed = 1;
        if (!listed)
            fail_msg("fixture %s is not listed in fixture_cases", e->d_name);
    }
    closedir(d);
    assert_int_equal(inputs, N_FIXTURES);
}

/* Struct numbers are doubles: the user's num_workers 2 must be sent as 2, not 2.0. */
static void test_whole_numbers_print_as_integers(void **state)
{
    cJSON *custom = cJSON_Parse("{\"databricksConf\":{\"timeout_seconds\":3000000000,"
                                "\"new_cluster\":{\"num_workers\":2,\"spark_version\":\"x\"}}}");
    Google__Protobuf__Struct *s = NULL;
    cJSON *from_struct = NULL, *body = NULL;
    const char *const args[] = {"a"};
    struct spec_input in = {.image = "img", .args = args, .args_count = 1, .entrypoint = FLYTE_1};
    char *text;

    (void)state;
    assert_int_equal(structjson_from_cjson(custom, &s, NULL), 0);
    assert_int_equal(structjson_to_cjson(s, &from_struct, NULL), 0);
    in.custom = from_struct;
    assert_int_equal(spec_build(&in, &body, NULL), 0);
    text = structjson_print(body);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"num_workers\":2,"));
    assert_non_null(strstr(text, "\"timeout_seconds\":3000000000"));
    assert_null(strstr(text, "2.0"));
    assert_null(strstr(text, "e+"));
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(from_struct);
    structjson_struct_free(s);
    cJSON_Delete(custom);
}

static void test_errors(void **state)
{
    static const struct {
        const char *custom; /* NULL: no custom at all */
        const char *image;
        const char *message_part;
    } cases[] = {
        {NULL, "img", "missing databricksConf"},
        {"{}", "img", "missing databricksConf"},
        {"{\"databricksConf\":\"x\"}", "img", "databricksConf must be a JSON object"},
        {"{\"databricksConf\":null}", "img", "databricksConf must be a JSON object"},
        {"{\"databricksConf\":{}}", "img",
         "Either existing_cluster_id, new_cluster, environment_key, or environments must be "
         "specified"},
        /* Falsy serverless keys are not serverless; a null new_cluster is no cluster. */
        {"{\"databricksConf\":{\"environment_key\":\"\",\"environments\":[]}}", "img",
         "Either existing_cluster_id, new_cluster"},
        {"{\"databricksConf\":{\"new_cluster\":null}}", "img", "Either existing_cluster_id"},
        {"{\"databricksConf\":{\"existing_cluster_id\":null}}", "img",
         "Either existing_cluster_id"},
        {"{\"databricksConf\":{\"existing_cluster_id\":null,\"new_cluster\":null,"
         "\"environments\":[]}}",
         "img", "Either existing_cluster_id"},
        {"{\"notebookPath\":\"/nb\",\"databricksConf\":{\"run_name\":\"x\"}}", "img",
         "Either existing_cluster_id"},
        {"{\"databricksConf\":{\"new_cluster\":\"big\"}}", "img",
         "databricksConf.new_cluster must be a JSON object"},
        {"{\"databricksConf\":{\"new_cluster\":[1]}}", "img", "new_cluster must be a JSON object"},
        {"{\"databricksConf\":{\"new_cluster\":{\"spark_env_vars\":\"A=1\"}}}", "img",
         "new_cluster.spark_env_vars must be a JSON object"},
        {"{\"databricksConf\":{\"new_cluster\":{}}}", NULL, "no container image"},
        {"{\"databricksConf\":{\"environment_key\":\"e\",\"environments\":{\"e\":1}}}", "img",
         "databricksConf.environments must be a JSON array"},
        {"{\"databricksConf\":{\"environments\":[1]}}", "img",
         "databricksConf.environments[0] must be a JSON object"},
        {"{\"databricksConf\":{\"environment_key\":5}}", "img",
         "databricksConf.environment_key must be a string"},
        {"{\"databricksConf\":{\"environments\":[{\"environment_key\":\"default\",\"spec\":\"x\"}]}"
         "}",
         "img", "spec must be a JSON object"},
        {"{\"databricksConf\":{\"environments\":[{\"environment_key\":\"default\",\"spec\":"
         "{\"environment_vars\":[]}}]}}",
         "img", "spec.environment_vars must be a JSON object"},
        {"{\"databricksServiceCredentialProvider\":7,\"databricksConf\":{\"environment_key\":\"e\"}"
         "}",
         "img", "databricksServiceCredentialProvider must be a string"},
        {"{\"notebookPath\":\"/nb\",\"databricksConf\":{\"environment_key\":\"e\","
         "\"environments\":\"all\"}}",
         "img", "environments must be a JSON array"},
        /* JVM applications (spark_jar_task). */
        {"{\"applicationType\":\"SCALA\",\"mainClass\":\"M\",\"mainApplicationFile\":\"dbfs:/"
         "a.jar\","
         "\"databricksConf\":{\"environment_key\":\"e\"}}",
         "img", "serverless compute runs no JAR tasks"},
        {"{\"applicationType\":\"JAVA\",\"mainApplicationFile\":\"dbfs:/a.jar\","
         "\"databricksConf\":{\"existing_cluster_id\":\"c\"}}",
         "img", "mainClass must be a non-empty string for applicationType JAVA or SCALA"},
        {"{\"applicationType\":1,\"mainClass\":\"M\",\"mainApplicationFile\":\"\","
         "\"databricksConf\":{\"existing_cluster_id\":\"c\"}}",
         "img", "mainApplicationFile must be a non-empty string"},
        {"{\"applicationType\":\"JAVA\",\"mainClass\":\"M\","
         "\"mainApplicationFile\":\"local:///opt/"
         "app.jar\",\"databricksConf\":{\"existing_cluster_id\":"
         "\"c\"}}",
         "img", "names a file inside the container image"},
        {"{\"applicationType\":\"JAVA\",\"mainClass\":\"M\",\"mainApplicationFile\":\"dbfs:/"
         "a.jar\","
         "\"notebookPath\":\"/nb\",\"databricksConf\":{\"existing_cluster_id\":\"c\"}}",
         "img", "notebookPath cannot be combined with applicationType JAVA or SCALA"},
        {"{\"applicationType\":\"JAVA\",\"mainClass\":\"M\",\"mainApplicationFile\":\"dbfs:/"
         "a.jar\","
         "\"databricksConf\":{\"existing_cluster_id\":\"c\",\"libraries\":{}}}",
         "img", "databricksConf.libraries must be a JSON array"},
        {"{\"applicationType\":\"JAVA\",\"mainClass\":\"M\",\"mainApplicationFile\":\"dbfs:/"
         "a.jar\","
         "\"databricksConf\":{}}",
         "img", "Either existing_cluster_id, new_cluster"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *custom = cases[i].custom ? cJSON_Parse(cases[i].custom) : NULL;
        struct spec_input in = {.custom = custom, .image = cases[i].image, .entrypoint = FLYTE_1};
        cJSON *body = (cJSON *)0x1;
        char *err = NULL, *before = custom ? cJSON_PrintUnformatted(custom) : NULL;

        assert_true(!cases[i].custom || custom);
        assert_int_equal(spec_build(&in, &body, &err), -EINVAL);
        assert_ptr_equal(body, (cJSON *)0x1);
        if (!err || !strstr(err, cases[i].message_part))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err ? err : "(null)",
                     cases[i].message_part);
        /* reterr_msg is optional. */
        assert_int_equal(spec_build(&in, &body, NULL), -EINVAL);
        if (custom) {
            char *after = cJSON_PrintUnformatted(custom);
            assert_string_equal(before, after);
            free(after);
        }
        free(before);
        free(err);
        cJSON_Delete(custom);
    }
}

/* flyte-sdk's entrypoint runs in the task's container image, which serverless compute cannot
 * start: a Flyte 2 serverless task needs a python_file of its own. */
static void test_flyte2_serverless_needs_python_file(void **state)
{
    cJSON *custom = cJSON_Parse("{\"databricksConf\":{\"environment_key\":\"e\"}}");
    struct spec_input in = {
        .custom = custom, .image = "img", .entrypoint = config_entrypoint(CONFIG_FLYTE_2)};
    cJSON *body = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(spec_build(&in, &body, &err), -EINVAL);
    assert_null(body);
    assert_non_null(err);
    assert_non_null(strstr(err, "serverless compute"));
    assert_non_null(strstr(err, "python_file of your own"));
    free(err);
    cJSON_Delete(custom);
}

static void test_bad_arguments(void **state)
{
    cJSON *body = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(spec_build(NULL, &body, &err), -EINVAL);
    assert_non_null(err);
    free(err);
}

/* No container image is fine when flytekit would not use it. */
static void test_no_image_needed(void **state)
{
    cJSON *custom = cJSON_Parse("{\"databricksConf\":{\"existing_cluster_id\":\"c\"}}");
    cJSON *body = NULL, *got;
    struct spec_input in = {.custom = custom, .entrypoint = FLYTE_1};

    (void)state;
    assert_int_equal(spec_build(&in, &body, NULL), 0);
    got = cJSON_GetObjectItemCaseSensitive(body, "spark_python_task");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "parameters")), 0);
    cJSON_Delete(body);
    cJSON_Delete(custom);
}

static void test_instance(void **state)
{
    static const struct {
        const char *custom;
        int r;
        const char *instance; /* NULL: none */
        const char *error;    /* on -EINVAL */
    } cases[] = {
        {"{\"databricksInstance\":\"dbc-1.cloud.databricks.com\"}", 0, "dbc-1.cloud.databricks.com",
         NULL},
        {"{\"DatabricksInstance\":\"wrong-case\"}", 0, NULL, NULL},
        {"{}", 0, NULL, NULL},
        {"[\"databricksInstance\"]", 0, NULL, NULL},
        /* present but not a workspace: refused, never read as "use the default" */
        {"{\"databricksInstance\":\"\"}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got \"\"; leave "
         "it out to use the connector's default instance"},
        {"{\"databricksInstance\":null}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got null"},
        {"{\"databricksInstance\":12}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got a number"},
        {"{\"databricksInstance\":{\"host\":\"x\"}}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got an object"},
        {"{\"databricksInstance\":[\"x\"]}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got an array"},
        {"{\"databricksInstance\":true}", -EINVAL, NULL,
         "databricksInstance must be a non-empty string (a workspace host name), got a boolean"},
    };
    const char *got = "untouched";

    (void)state;
    assert_int_equal(spec_instance(NULL, &got, NULL), 0);
    assert_null(got);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *custom = cJSON_Parse(cases[i].custom);
        char *error = NULL;
        int r;

        assert_non_null(custom);
        got = "untouched";
        r = spec_instance(custom, &got, &error);
        if (r != cases[i].r)
            fail_msg("case %zu: %d", i, r);
        if (r == 0 && cases[i].instance)
            assert_string_equal(got, cases[i].instance);
        else if (r == 0)
            assert_null(got);
        else
            assert_string_equal(error, cases[i].error);
        free(error);
        cJSON_Delete(custom);
    }
}

/* The container half of a TaskTemplate: image, args and env in order, borrowed from it. */
static void test_input_from_template(void **state)
{
    Flyteidl__Core__KeyValuePair kv[2] = {FLYTEIDL__CORE__KEY_VALUE_PAIR__INIT,
                                          FLYTEIDL__CORE__KEY_VALUE_PAIR__INIT};
    Flyteidl__Core__KeyValuePair *kvs[2] = {&kv[0], &kv[1]};
    char *args[3] = {(char *)"pyflyte-execute", (char *)"--inputs", (char *)"s3://x"};
    Flyteidl__Core__Container container = FLYTEIDL__CORE__CONTAINER__INIT;
    Flyteidl__Core__TaskTemplate tmpl = FLYTEIDL__CORE__TASK_TEMPLATE__INIT;
    struct spec_input in = {.idempotency_token = "kept"};
    struct spec_env_var *env = (struct spec_env_var *)&in; /* must be overwritten */

    (void)state;
    kv[0].key = (char *)"A";
    kv[0].value = (char *)"1";
    kv[1].key = (char *)"B";
    kv[1].value = (char *)"2";
    container.image = (char *)"repo/image:tag";
    container.n_args = 3;
    container.args = args;
    container.n_env = 2;
    container.env = kvs;
    tmpl.target_case = FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER;
    tmpl.container = &container;

    assert_int_equal(spec_input_from_template(&tmpl, &in, &env), 0);
    assert_ptr_equal(in.image, container.image);
    assert_int_equal(in.args_count, 3);
    assert_string_equal(in.args[0], "pyflyte-execute");
    assert_string_equal(in.args[2], "s3://x");
    assert_int_equal(in.env_count, 2);
    assert_ptr_equal(in.env, env);
    assert_string_equal(env[0].name, "A");
    assert_string_equal(env[0].value, "1");
    assert_string_equal(env[1].name, "B");
    assert_string_equal(env[1].value, "2");
    assert_string_equal(in.idempotency_token, "kept");
    free(env);

    /* A container without env allocates nothing. */
    container.n_env = 0;
    container.env = NULL;
    assert_int_equal(spec_input_from_template(&tmpl, &in, &env), 0);
    assert_null(env);
    assert_null(in.env);
    assert_int_equal(in.env_count, 0);
    assert_int_equal(in.args_count, 3);

    /* A template whose target is not a container has none of the three. */
    tmpl.target_case = FLYTEIDL__CORE__TASK_TEMPLATE__TARGET__NOT_SET;
    tmpl.container = NULL;
    assert_int_equal(spec_input_from_template(&tmpl, &in, &env), 0);
    assert_null(in.image);
    assert_null(in.args);
    assert_int_equal(in.args_count, 0);
    assert_null(in.env);
    assert_int_equal(in.env_count, 0);
    assert_null(env);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_fixtures_through_struct),
        cmocka_unit_test(test_fixture_list_complete),
        cmocka_unit_test(test_whole_numbers_print_as_integers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_flyte2_serverless_needs_python_file),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_no_image_needed),
        cmocka_unit_test(test_instance),
        cmocka_unit_test(test_input_from_template),
    };

    (void)argc;
    fixture_dir_find(fixture_dir, sizeof(fixture_dir), argv[0], "spec");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
