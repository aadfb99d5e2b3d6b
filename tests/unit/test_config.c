/* Unit tests for config.c: defaults, every key's valid and invalid values, error collection,
 * layering (defaults < file < environment < flags), the token rules and that the token never
 * leaks into a description, an error or a warning. Expectations are written out here, not
 * derived from config.c's tables. Temp files live in /tmp and are removed by each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_current.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define CANARY "dapiCANARY0123456789abcdef"

/* ---- helpers ---- */

struct tmpfile {
    char path[64];
};

static void tmp_write(struct tmpfile *t, const char *content, mode_t mode)
{
    int fd;

    strcpy(t->path, "/tmp/test_config.XXXXXX");
    fd = mkstemp(t->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void tmp_remove(struct tmpfile *t)
{
    unlink(t->path);
}

struct result {
    int r;
    struct config *cfg;
    enum config_action action;
    char **warnings;
    char *err;
};

static void result_done(struct result *res)
{
    config_unref(res->cfg);
    config_strv_free(res->warnings);
    free(res->err);
    *res = (struct result){0};
}

/* argv and envp are NULL-terminated lists; "prog" is prepended to argv. */
static struct result load(const char *const *args, const char *const *env)
{
    char *argv[32] = {"flyte-databricks-connector"};
    int argc = 1;
    struct result res = {.r = 1};

    for (; args && *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    res.r = config_load(argc, argv, (char **)env, &res.cfg, &res.action, &res.warnings, &res.err);
    if (res.r == 0)
        assert_null(res.err);
    else
        assert_null(res.cfg);
    return res;
}

static bool warnings_contain(char **w, const char *needle)
{
    for (; w && *w; w++)
        if (strstr(*w, needle))
            return true;
    return false;
}

/* Parses text onto defaults and checks config_describe() has the line expected. */
static void expect_describe_line(const char *text, const char *line)
{
    struct config *cfg = config_new();
    char *err = NULL, *desc;
    char want[512];

    assert_non_null(cfg);
    if (config_parse_json(cfg, text, &err) != 0)
        fail_msg("parse of %s failed: %s", text, err);
    desc = config_describe(cfg);
    assert_non_null(desc);
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(desc, want) && strncmp(desc, want + 1, strlen(want + 1)) != 0)
        fail_msg("describe of %s lacks \"%s\":\n%s", text, line, desc);
    free(desc);
    config_unref(cfg);
}

/* Parses text onto defaults and checks the error message is exactly want. */
static void expect_error(const char *text, const char *want)
{
    struct config *cfg = config_new();
    char *err = NULL;
    int r;

    r = config_parse_json(cfg, text, &err);
    if (r != -EINVAL)
        fail_msg("parse of %s gave %d, want -EINVAL", text, r);
    assert_non_null(err);
    if (strcmp(err, want) != 0)
        fail_msg("parse of %s:\n got: %s\nwant: %s", text, err, want);
    free(err);
    config_unref(cfg);
}

/* ---- the key table ---- */

static void test_keys_sorted_and_complete(void **state)
{
    static const char *const want[] = {
        "allowed_instances",
        "ca_file",
        "client_id",
        "client_secret_file",
        "connect_timeout_ms",
        "default_instance",
        "idempotency_key_file",
        "instance_limits",
        "instance_max_concurrent_requests",
        "instance_oauth",
        "instance_rate_limit_rps",
        "kubernetes_service_account_dir",
        "listen",
        "log_format",
        "log_level",
        "max_calls_in_flight",
        "max_response_bytes",
        "max_tracked_runs",
        "metrics_listen",
        "namespace_token_ttl_ms",
        "request_timeout_ms",
        "retryable_failed_phase",
        "service_credential_provider",
        "shutdown_delay_ms",
        "shutdown_grace_ms",
        "status_cache_ttl_ms",
        "terminal_cache_ttl_ms",
        "tls_cert_file",
        "tls_client_ca_file",
        "tls_key_file",
        "token_file",
        "workers",
    };
    size_t n = 0;

    (void)state;
    for (; config_key_name(n); n++) {
        if (n > 0)
            assert_true(strcmp(config_key_name(n - 1), config_key_name(n)) < 0);
    }
    assert_int_equal(n, ELEMENTSOF(want));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(config_key_name(i), want[i]);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    struct config *cfg = config_new();
    char *desc;

    (void)state;
    assert_non_null(cfg);
    assert_null(cfg->config_file);
    assert_string_equal(cfg->listen, "0.0.0.0:8000");
    assert_int_equal(cfg->workers, 0);
    assert_null(cfg->default_instance);
    assert_int_equal(cfg->allowed_instances_count, 0);
    assert_false(cfg->allow_any_instance);
    assert_null(cfg->token);
    assert_null(cfg->token_file);
    assert_null(cfg->ca_file);
    assert_int_equal(cfg->log_level, CONFIG_LOG_INFO);
    assert_int_equal(cfg->connect_timeout_ms, 5000);
    assert_int_equal(cfg->request_timeout_ms, 30000);
    assert_int_equal(cfg->max_response_bytes, 4194304);
    assert_null(cfg->service_credential_provider);
    assert_true(cfg->retryable_failed_phase);
    assert_false(config_instance_allowed(cfg, "x.cloud.databricks.com"));

    desc = config_describe(cfg);
    /* config_file and the secrets, masked, then the keys by name */
    assert_string_equal(desc, "config_file = (none)\n"
                              "token = (unset)\n"
                              "client_secret = (unset)\n"
                              "kubernetes_api = (not in a cluster)\n"
                              "idempotency_key = (unset)\n"
                              "allowed_instances = (none)\n"
                              "ca_file = (none)\n"
                              "client_id = (none)\n"
                              "client_secret_file = (none)\n"
                              "connect_timeout_ms = 5000\n"
                              "default_instance = (none)\n"
                              "idempotency_key_file = (none)\n"
                              "instance_limits = (none)\n"
                              "instance_max_concurrent_requests = 256\n"
                              "instance_oauth = (none)\n"
                              "instance_rate_limit_rps = 0\n"
                              "kubernetes_service_account_dir = "
                              "/var/run/secrets/kubernetes.io/serviceaccount\n"
                              "listen = 0.0.0.0:8000\n"
                              "log_format = text\n"
                              "log_level = info\n"
                              "max_calls_in_flight = 10000\n"
                              "max_response_bytes = 4194304\n"
                              "max_tracked_runs = 20000\n"
                              "metrics_listen = 0.0.0.0:9090\n"
                              "namespace_token_ttl_ms = 60000\n"
                              "request_timeout_ms = 30000\n"
                              "retryable_failed_phase = true\n"
                              "service_credential_provider = (none)\n"
                              "shutdown_delay_ms = 0\n"
                              "shutdown_grace_ms = 10000\n"
                              "status_cache_ttl_ms = 0\n"
                              "terminal_cache_ttl_ms = 0\n"
                              "tls_cert_file = (none)\n"
                              "tls_client_ca_file = (none)\n"
                              "tls_key_file = (none)\n"
                              "token_file = (none)\n"
                              "workers = 0\n");
    free(desc);
    assert_null(config_unref(cfg));
    assert_null(config_unref(NULL));
    config_strv_free(NULL);
}

/* The config in force is shared by reference: a holder and each reader keep their own, and a
 * replaced config lives exactly as long as its last reader. */
static void test_config_current_references(void **state)
{
    struct config *first = config_new(), *second = config_new();
    struct config_current *current;
    const struct config *read;

    (void)state;
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(atomic_load(&first->references), 1); /* config_new()'s, the caller's */
    current = config_current_new(first);
    assert_non_null(current);
    assert_int_equal(atomic_load(&first->references), 2);
    read = config_current_get(current);
    assert_ptr_equal(read, first);
    assert_int_equal(atomic_load(&first->references), 3);

    config_current_set(current, second);
    assert_int_equal(atomic_load(&first->references), 2); /* the holder let go */
    assert_int_equal(atomic_load(&second->references), 2);
    assert_ptr_equal(config_current_get(current), second);
    config_unref(second); /* that reader's */
    config_unref(first);  /* the creator's; the reader still has it, readable */
    assert_int_equal(atomic_load(&read->references), 1);
    assert_non_null(read->listen);
    config_unref(read); /* the last: freed (ASan and valgrind see a leak or a double free) */

    assert_int_equal(atomic_load(&second->references), 2);
    config_unref(second);                      /* the creator's */
    assert_null(config_current_free(current)); /* drops the holder's, the last */
    assert_null(config_current_free(NULL));
}

static void test_empty_load_gives_defaults(void **state)
{
    struct result res = load(NULL, NULL);

    (void)state;
    assert_int_equal(res.r, 0);
    assert_int_equal(res.action, CONFIG_ACTION_RUN);
    assert_string_equal(res.cfg->listen, "0.0.0.0:8000");
    assert_int_equal(res.cfg->workers, 0);
    assert_null(res.cfg->token);
    assert_true(warnings_contain(res.warnings, "no Databricks token"));
    result_done(&res);
}

/* ---- valid values, key by key ---- */

static void test_valid_values(void **state)
{
    static const struct {
        const char *json;
        const char *line;
    } cases[] = {
        {"{\"listen\": \"127.0.0.1:9000\"}", "listen = 127.0.0.1:9000"},
        {"{\"listen\": \"localhost:1\"}", "listen = localhost:1"},
        {"{\"listen\": \"[::]:8000\"}", "listen = [::]:8000"},
        {"{\"listen\": \"[::1]:65535\"}", "listen = [::1]:65535"},
        {"{\"listen\": \"0.0.0.0:0\"}", "listen = 0.0.0.0:0"},
        {"{\"workers\": 0}", "workers = 0"},
        {"{\"workers\": 1}", "workers = 1"},
        {"{\"workers\": 64}", "workers = 64"},
        {"{\"workers\": 8.0}", "workers = 8"},
        {"{\"default_instance\": \"dbc-1.cloud.databricks.com\"}",
         "default_instance = dbc-1.cloud.databricks.com"},
        {"{\"default_instance\": \"HTTPS://Dbc-1.Cloud.Databricks.com/\"}",
         "default_instance = dbc-1.cloud.databricks.com"},
        {"{\"default_instance\": \"https://h.example:8443/\"}",
         "default_instance = h.example:8443"},
        {"{\"default_instance\": \"h:1\"}", "default_instance = h:1"},
        {"{\"default_instance\": null}", "default_instance = (none)"},
        {"{\"allowed_instances\": []}", "allowed_instances = (none)"},
        {"{\"allowed_instances\": [\"A.example\", \"https://b.example:444/\"]}",
         "allowed_instances = a.example, b.example:444"},
        {"{\"allowed_instances\": [\"*\"]}", "allowed_instances = *"},
        {"{\"token_file\": \"/run/secrets/t\"}", "token_file = /run/secrets/t"},
        {"{\"token_file\": null}", "token_file = (none)"},
        {"{\"ca_file\": \"/etc/ssl/extra.pem\"}", "ca_file = /etc/ssl/extra.pem"},
        {"{\"ca_file\": null}", "ca_file = (none)"},
        {"{\"log_level\": \"debug\"}", "log_level = debug"},
        {"{\"log_level\": \"info\"}", "log_level = info"},
        {"{\"log_level\": \"warning\"}", "log_level = warning"},
        {"{\"log_level\": \"error\"}", "log_level = error"},
        {"{\"log_format\": \"json\"}", "log_format = json"},
        {"{\"instance_rate_limit_rps\": 20}", "instance_rate_limit_rps = 20"},
        {"{\"instance_limits\": {\"a.example\": {\"rate_limit_rps\": 5}, \"b.example:8443\": {}}}",
         "instance_limits = 2 instance(s)"},
        {"{\"metrics_listen\": \"off\"}", "metrics_listen = off"},
        {"{\"metrics_listen\": \"127.0.0.1:0\"}", "metrics_listen = 127.0.0.1:0"},
        {"{\"shutdown_grace_ms\": 0}", "shutdown_grace_ms = 0"},
        {"{\"connect_timeout_ms\": 100}", "connect_timeout_ms = 100"},
        {"{\"connect_timeout_ms\": 600000}", "connect_timeout_ms = 600000"},
        {"{\"request_timeout_ms\": 100}", "request_timeout_ms = 100"},
        {"{\"request_timeout_ms\": 600000}", "request_timeout_ms = 600000"},
        {"{\"max_response_bytes\": 1024}", "max_response_bytes = 1024"},
        {"{\"max_response_bytes\": 268435456}", "max_response_bytes = 268435456"},
        {"{\"service_credential_provider\": \"aws-creds\"}",
         "service_credential_provider = aws-creds"},
        {"{\"service_credential_provider\": null}", "service_credential_provider = (none)"},
        {"{\"retryable_failed_phase\": false}", "retryable_failed_phase = false"},
        {"{\"retryable_failed_phase\": true}", "retryable_failed_phase = true"},
        {"{}", "workers = 0"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++)
        expect_describe_line(cases[i].json, cases[i].line);
}

static void test_typed_fields(void **state)
{
    struct config *cfg = config_new();
    char *err = NULL;

    (void)state;
    assert_int_equal(config_parse_json(cfg,
                                       "{\"workers\": 7, \"log_level\": \"warning\","
                                       " \"connect_timeout_ms\": 1234,"
                                       " \"request_timeout_ms\": 4321,"
                                       " \"max_response_bytes\": 2048}",
                                       &err),
                     0);
    assert_int_equal(cfg->workers, 7);
    assert_int_equal(cfg->log_level, CONFIG_LOG_WARNING);
    assert_int_equal(cfg->connect_timeout_ms, 1234);
    assert_int_equal(cfg->request_timeout_ms, 4321);
    assert_int_equal(cfg->max_response_bytes, 2048);
    config_unref(cfg);
}

/* ---- invalid values, key by key ---- */

static void test_invalid_values(void **state)
{
    static const char inst_reason[] =
        ": expected a Databricks host name [a-z0-9.-] with an optional :PORT (1-65535), "
        "optionally prefixed by https://";
    static const char listen_reason[] =
        ": expected HOST:PORT (an IPv6 host in brackets), port 0-65535";
    static const struct {
        const char *json;
        const char *prefix; /* the message is prefix + reason */
        const char *reason;
    } cases[] = {
        {"{\"listen\": \"8000\"}", "key \"listen\": invalid value \"8000\"", listen_reason},
        {"{\"listen\": \":8000\"}", "key \"listen\": invalid value \":8000\"", listen_reason},
        {"{\"listen\": \"host:\"}", "key \"listen\": invalid value \"host:\"", listen_reason},
        {"{\"listen\": \"host:65536\"}", "key \"listen\": invalid value \"host:65536\"",
         listen_reason},
        {"{\"listen\": \"host:-1\"}", "key \"listen\": invalid value \"host:-1\"", listen_reason},
        {"{\"listen\": \"::1:8000\"}", "key \"listen\": invalid value \"::1:8000\"", listen_reason},
        {"{\"listen\": \"[zz]:8000\"}", "key \"listen\": invalid value \"[zz]:8000\"",
         listen_reason},
        {"{\"listen\": \"[::1]8000\"}", "key \"listen\": invalid value \"[::1]8000\"",
         listen_reason},
        {"{\"listen\": \"ho st:80\"}", "key \"listen\": invalid value \"ho st:80\"", listen_reason},
        {"{\"listen\": \"\"}", "key \"listen\": invalid value \"\"", listen_reason},
        {"{\"workers\": -1}", "key \"workers\": -1 is out of range 0..64", ""},
        {"{\"retryable_failed_phase\": \"false\"}",
         "key \"retryable_failed_phase\": expected true or false, got a string", ""},
        {"{\"retryable_failed_phase\": 0}",
         "key \"retryable_failed_phase\": expected true or false, got a number", ""},
        {"{\"workers\": 65}", "key \"workers\": 65 is out of range 0..64", ""},
        {"{\"workers\": 2.5}", "key \"workers\": expected an integer, got 2.5", ""},
        {"{\"workers\": 1e300}", "key \"workers\": 1e+300 is out of range 0..64", ""},
        {"{\"connect_timeout_ms\": 99}",
         "key \"connect_timeout_ms\": 99 is out of range "
         "100..600000",
         ""},
        {"{\"connect_timeout_ms\": 600001}",
         "key \"connect_timeout_ms\": 600001 is out of "
         "range 100..600000",
         ""},
        {"{\"request_timeout_ms\": 99}",
         "key \"request_timeout_ms\": 99 is out of range "
         "100..600000",
         ""},
        {"{\"request_timeout_ms\": 600001}",
         "key \"request_timeout_ms\": 600001 is out of "
         "range 100..600000",
         ""},
        {"{\"max_response_bytes\": 1023}",
         "key \"max_response_bytes\": 1023 is out of range "
         "1024..268435456",
         ""},
        {"{\"max_response_bytes\": 268435457}",
         "key \"max_response_bytes\": 268435457 is out "
         "of range 1024..268435456",
         ""},
        {"{\"log_level\": \"warn\"}",
         "key \"log_level\": invalid value \"warn\": expected one "
         "of debug, info, warning, error",
         ""},
        {"{\"log_level\": \"INFO\"}",
         "key \"log_level\": invalid value \"INFO\": expected one "
         "of debug, info, warning, error",
         ""},
        {"{\"default_instance\": \"http://x.example\"}",
         "key \"default_instance\": invalid value \"http://x.example\"", inst_reason},
        {"{\"default_instance\": \"x_y.example\"}",
         "key \"default_instance\": invalid value \"x_y.example\"", inst_reason},
        {"{\"default_instance\": \"x.example:0\"}",
         "key \"default_instance\": invalid value \"x.example:0\"", inst_reason},
        {"{\"default_instance\": \"x.example:65536\"}",
         "key \"default_instance\": invalid value \"x.example:65536\"", inst_reason},
        {"{\"default_instance\": \"x..example\"}",
         "key \"default_instance\": invalid value \"x..example\"", inst_reason},
        {"{\"default_instance\": \"x.example/api\"}",
         "key \"default_instance\": invalid value \"x.example/api\"", inst_reason},
        {"{\"default_instance\": \"https://\"}",
         "key \"default_instance\": invalid value \"https://\"", inst_reason},
        {"{\"default_instance\": \"\"}", "key \"default_instance\": invalid value \"\"",
         inst_reason},
        {"{\"default_instance\": \"a\\nb\"}", "key \"default_instance\": invalid value \"a\\x0ab\"",
         inst_reason},
        {"{\"allowed_instances\": [\"ok.example\", \"bad host\"]}",
         "key \"allowed_instances[1]\": invalid value \"bad host\"", inst_reason},
        {"{\"instance_limits\": {\"a.example\": {\"rps\": 5}}}",
         "key \"instance_limits\"[\"a.example\"]: unknown key \"rps\" (expected rate_limit_rps, "
         "burst, max_concurrent_requests)",
         ""},
        {"{\"instance_limits\": {\"a.example\": {\"burst\": -1}}}",
         "key \"instance_limits\"[\"a.example\"]: \"burst\" must be an integer from 0 to 100000",
         ""},
        {"{\"instance_limits\": {\"a.example\": 5}}",
         "key \"instance_limits\"[\"a.example\"]: expected an object, got a number", ""},
        {"{\"instance_limits\": [1]}", "key \"instance_limits\": expected an object, got an array",
         ""},
        {"{\"token_file\": \"\"}", "key \"token_file\": invalid value \"\": must not be empty", ""},
        {"{\"ca_file\": \"\"}", "key \"ca_file\": invalid value \"\": must not be empty", ""},
        {"{\"service_credential_provider\": \"\"}",
         "key \"service_credential_provider\": invalid value \"\": must not be empty", ""},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char want[512];

        snprintf(want, sizeof(want), "%s%s", cases[i].prefix, cases[i].reason);
        expect_error(cases[i].json, want);
    }
}

static void test_wrong_types(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"workers\": \"4\"}", "key \"workers\": expected an integer, got a string"},
        {"{\"workers\": true}", "key \"workers\": expected an integer, got a boolean"},
        {"{\"workers\": null}", "key \"workers\": expected an integer, got null"},
        {"{\"listen\": 8000}", "key \"listen\": expected a string, got a number"},
        {"{\"listen\": null}", "key \"listen\": expected a string, got null"},
        {"{\"log_level\": [\"info\"]}", "key \"log_level\": expected a string, got an array"},
        {"{\"token_file\": {}}", "key \"token_file\": expected a string or null, got an object"},
        {"{\"ca_file\": false}", "key \"ca_file\": expected a string or null, got a boolean"},
        {"{\"default_instance\": 1}",
         "key \"default_instance\": expected a string or null, got a number"},
        {"{\"allowed_instances\": \"a.example\"}",
         "key \"allowed_instances\": expected an array of strings, got a string"},
        {"{\"allowed_instances\": [\"a.example\", 3]}",
         "key \"allowed_instances[1]\": expected a string, got a number"},
        {"{\"max_response_bytes\": \"1M\"}",
         "key \"max_response_bytes\": expected an integer, got a string"},
        {"[]", "expected a JSON object at the top level, got an array"},
        {"\"x\"", "expected a JSON object at the top level, got a string"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++)
        expect_error(cases[i].json, cases[i].want);
}

static void test_unknown_and_duplicate_keys(void **state)
{
    (void)state;
    expect_error("{\"listne\": \"0.0.0.0:1\"}", "unknown key \"listne\"");
    expect_error("{\"Listen\": \"0.0.0.0:1\"}", "unknown key \"Listen\"");
    expect_error("{\"token\": \"" CANARY "\"}", "unknown key \"token\"");
    expect_error("{\"workers\": 3, \"workers\": 4}", "duplicate key \"workers\"");
}

static void test_all_errors_collected(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"listne\": \"x\",\n"
                 "  \"workers\": -1,\n"
                 "  \"log_level\": \"loud\",\n"
                 "  \"listen\": \"nope\",\n"
                 "  \"allowed_instances\": [1, \"b@d\"],\n"
                 "  \"ca_file\": 5\n"
                 "}",
                 "unknown key \"listne\"\n"
                 "key \"workers\": -1 is out of range 0..64\n"
                 "key \"log_level\": invalid value \"loud\": expected one of debug, info, "
                 "warning, error\n"
                 "key \"listen\": invalid value \"nope\": expected HOST:PORT (an IPv6 host in "
                 "brackets), port 0-65535\n"
                 "key \"allowed_instances[0]\": expected a string, got a number\n"
                 "key \"allowed_instances[1]\": invalid value \"b@d\": expected a Databricks "
                 "host name [a-z0-9.-] with an optional :PORT (1-65535), optionally prefixed "
                 "by https://\n"
                 "key \"ca_file\": expected a string or null, got a number");
}

static void test_syntax_errors(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\n  \"workers\": 2,\n  \"listen\" \"x\"\n}", "3:12: JSON syntax error"},
        /* cJSON points just past a bad token */
        {"{\"workers\": 2,}", "1:16: JSON syntax error"},
        {"", "1:1: JSON syntax error"},
        {"{} trailing", "1:4: JSON syntax error"},
        {"{\n\"a\": tru\n}", "2:6: JSON syntax error"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++)
        expect_error(cases[i].json, cases[i].want);
}

static void test_example_config_parses(void **state)
{
    struct config *cfg = config_new();
    char *text = NULL, *err = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    (void)state;
    f = fopen("config/flyte-databricks-connector.json", "re");
    assert_non_null(f);
    assert_int_equal(getdelim(&text, &len, '\0', f) > 0, 1);
    fclose(f);
    r = config_parse_json(cfg, text, &err);
    if (r != 0)
        fail_msg("example config: %s", err);
    /* Every key is present: each must appear as a quoted name in the file. */
    for (size_t i = 0; config_key_name(i); i++) {
        char quoted[128];

        snprintf(quoted, sizeof(quoted), "\"%s\"", config_key_name(i));
        if (!strstr(text, quoted))
            fail_msg("example config lacks key %s", quoted);
    }
    free(text);
    config_unref(cfg);
}

static void test_readme_documents_every_key(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    f = fopen("config/README.md", "re");
    assert_non_null(f);
    assert_int_equal(getdelim(&text, &len, '\0', f) > 0, 1);
    fclose(f);
    for (size_t i = 0; config_key_name(i); i++) {
        char heading[128];

        snprintf(heading, sizeof(heading), "### `%s`\n", config_key_name(i));
        if (!strstr(text, heading))
            fail_msg("config/README.md lacks a section %s", heading);
    }
    free(text);
}

/* ---- instances ---- */

static void test_instance_allowed(void **state)
{
    struct config *cfg = config_new();
    char *err = NULL;

    (void)state;
    assert_int_equal(config_parse_json(cfg,
                                       "{\"default_instance\": \"Main.example\","
                                       " \"allowed_instances\": [\"other.example:8443\"]}",
                                       &err),
                     0);
    assert_true(config_instance_allowed(cfg, "main.example"));
    assert_true(config_instance_allowed(cfg, "other.example:8443"));
    assert_false(config_instance_allowed(cfg, "other.example"));
    assert_false(config_instance_allowed(cfg, "evil.example"));
    assert_false(config_instance_allowed(cfg, NULL));
    assert_false(cfg->allow_any_instance);

    assert_int_equal(
        config_parse_json(cfg, "{\"allowed_instances\": [\"*\", \"x.example\"]}", &err), 0);
    assert_true(cfg->allow_any_instance);
    assert_int_equal(cfg->allowed_instances_count, 1);
    assert_string_equal(cfg->allowed_instances[0], "x.example");
    assert_true(config_instance_allowed(cfg, "evil.example"));
    config_unref(cfg);
}

static void test_star_warns(void **state)
{
    const char *args[] = {"--allowed-instance", "*", NULL};
    struct result res = load(args, NULL);

    (void)state;
    assert_int_equal(res.r, 0);
    assert_true(res.cfg->allow_any_instance);
    assert_true(warnings_contain(res.warnings, "allowed_instances contains \"*\""));
    result_done(&res);
}

/* ---- layering ---- */

/* A self-signed certificate: ca_file must hold at least one. */
#define TEST_CA_PEM                                                                                \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIIBijCCAS+gAwIBAgIUKaWNN3ftj/hmZXnPSgWgLP3Py2cwCgYIKoZIzj0EAwIw\n"                           \
    "GTEXMBUGA1UEAwwOdGVzdC1jb25maWctY2EwIBcNMjYxMjA1MjA0NDU0WhgPMjEy\n"                           \
    "NjExMTEyMDQ0NTRaMBkxFzAVBgNVBAMMDnRlc3QtY29uZmlnLWNhMFkwEwYHKoZI\n"                           \
    "zj0CAQYIKoZIzj0DAQcDQgAEb8Jy7dTiia8sqXKSetyZdkx1NSTbhGPifL9roH2Z\n"                           \
    "UMiHu9eg6pKykX+lHGHMM5Zc17YCyLz1XL0kBA0QYkiqQaNTMFEwHQYDVR0OBBYE\n"                           \
    "FKoq3awiJWlqJQW5Cw9mALFaBEryMB8GA1UdIwQYMBaAFKoq3awiJWlqJQW5Cw9m\n"                           \
    "ALFaBEryMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAP4s2pFz\n"                           \
    "HJKyg/ZJGldYX/TzzYhPFBTxZXSfqg7NlPrzAiEAxeMnf/SyZ7r4iWXA88KCvvu2\n"                           \
    "jhjZy1FerGlfCchNv8c=\n"                                                                       \
    "-----END CERTIFICATE-----\n"

static void test_precedence(void **state)
{
    struct tmpfile conf, ca_file, ca_flag;
    char conf_text[1024];

    (void)state;
    tmp_write(&ca_file, TEST_CA_PEM, 0644);
    tmp_write(&ca_flag, TEST_CA_PEM, 0644);
    snprintf(conf_text, sizeof(conf_text),
             "{\"listen\": \"file.example:1\", \"workers\": 3,"
             " \"default_instance\": \"file.example\","
             " \"allowed_instances\": [\"file-a.example\", \"file-b.example\"],"
             " \"ca_file\": \"%s\", \"log_level\": \"error\","
             " \"service_credential_provider\": \"file-provider\"}",
             ca_file.path);
    tmp_write(&conf, conf_text, 0644);

    /* file alone */
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->config_file, conf.path);
        assert_string_equal(res.cfg->listen, "file.example:1");
        assert_int_equal(res.cfg->workers, 3);
        assert_string_equal(res.cfg->default_instance, "file.example");
        assert_int_equal(res.cfg->allowed_instances_count, 2);
        assert_string_equal(res.cfg->allowed_instances[1], "file-b.example");
        assert_string_equal(res.cfg->ca_file, ca_file.path);
        assert_int_equal(res.cfg->log_level, CONFIG_LOG_ERROR);
        assert_string_equal(res.cfg->service_credential_provider, "file-provider");
        result_done(&res);
    }
    /* environment over file */
    {
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {"PATH=/bin", "FLYTE_DATABRICKS_INSTANCE=https://ENV.example/",
                             "FLYTE_DATABRICKS_LOG_LEVEL=debug",
                             "FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER=env-provider", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->default_instance, "env.example");
        assert_int_equal(res.cfg->log_level, CONFIG_LOG_DEBUG);
        assert_string_equal(res.cfg->service_credential_provider, "env-provider");
        assert_string_equal(res.cfg->listen, "file.example:1");
        result_done(&res);
    }
    /* empty variables are ignored */
    {
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {"FLYTE_DATABRICKS_INSTANCE=", "FLYTE_DATABRICKS_LOG_LEVEL=", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->default_instance, "file.example");
        assert_int_equal(res.cfg->log_level, CONFIG_LOG_ERROR);
        result_done(&res);
    }
    /* flags over environment over file */
    {
        const char *args[] = {"--config",    conf.path,     "--listen",         "[::1]:0",
                              "--workers=9", "--instance",  "flag.example:443", "--ca-file",
                              ca_flag.path,  "--log-level", "warning",          NULL};
        const char *env[] = {"FLYTE_DATABRICKS_INSTANCE=env.example",
                             "FLYTE_DATABRICKS_LOG_LEVEL=debug", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->listen, "[::1]:0");
        assert_int_equal(res.cfg->workers, 9);
        assert_string_equal(res.cfg->default_instance, "flag.example:443");
        assert_string_equal(res.cfg->ca_file, ca_flag.path);
        assert_int_equal(res.cfg->log_level, CONFIG_LOG_WARNING);
        /* allowed_instances untouched by flags here */
        assert_int_equal(res.cfg->allowed_instances_count, 2);
        result_done(&res);
    }
    /* environment over defaults without a file */
    {
        const char *env[] = {"FLYTE_DATABRICKS_LOG_LEVEL=error", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_int_equal(res.cfg->log_level, CONFIG_LOG_ERROR);
        result_done(&res);
    }
    tmp_remove(&conf);
    tmp_remove(&ca_file);
    tmp_remove(&ca_flag);
}

static void test_allowed_instance_flags_replace_list(void **state)
{
    struct tmpfile conf;
    const char *args[] = {"--config",
                          NULL,
                          "--allowed-instance",
                          "One.example",
                          "--allowed-instance=https://two.example:8443/",
                          NULL};
    struct result res;

    (void)state;
    tmp_write(&conf, "{\"allowed_instances\": [\"*\", \"file.example\"]}", 0644);
    args[1] = conf.path;
    res = load(args, NULL);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.cfg->allowed_instances_count, 2);
    assert_string_equal(res.cfg->allowed_instances[0], "one.example");
    assert_string_equal(res.cfg->allowed_instances[1], "two.example:8443");
    assert_false(res.cfg->allow_any_instance);
    assert_false(config_instance_allowed(res.cfg, "file.example"));
    assert_false(warnings_contain(res.warnings, "\"*\""));
    result_done(&res);
    tmp_remove(&conf);
}

/* pyflyte's and c0's flags, as the official Helm charts' commands may pass them: ports bind every
 * interface, --worker is --workers, --timeout, --modules and --connect_port are logged and
 * ignored. A later flag wins, whichever spelling. */
static void test_pyflyte_flags(void **state)
{
    const char *args[] = {"--port",    "8001",      "--prometheus_port=9091",
                          "--worker",  "3",         "--timeout",
                          "30",        "--modules", "a.b",
                          "--modules", "c",         "--connect_port",
                          "8090",      NULL};
    const char *later[] = {"--port", "8001",     "--listen", "127.0.0.1:7", "--workers",
                           "1",      "--worker", "2",        NULL};
    struct result res = load(args, NULL);

    (void)state;
    assert_int_equal(res.r, 0);
    assert_string_equal(res.cfg->listen, "0.0.0.0:8001");
    assert_string_equal(res.cfg->metrics_listen, "0.0.0.0:9091");
    assert_int_equal(res.cfg->workers, 3);
    assert_true(warnings_contain(res.warnings, "--timeout \"30\" ignored"));
    assert_true(warnings_contain(res.warnings, "--modules \"a.b\" ignored"));
    assert_true(warnings_contain(res.warnings, "--modules \"c\" ignored"));
    assert_true(warnings_contain(res.warnings, "--connect_port \"8090\" ignored"));
    result_done(&res);

    res = load(later, NULL);
    assert_int_equal(res.r, 0);
    assert_string_equal(res.cfg->listen, "127.0.0.1:7");
    assert_int_equal(res.cfg->workers, 2);
    result_done(&res);
}

static void test_pyflyte_flag_errors(void **state)
{
    const char *args[] = {"--port",   "http", "--prometheus_port", "65536",
                          "--worker", "99",   "--timeout",         NULL};
    struct result res = load(args, NULL);

    (void)state;
    assert_int_equal(res.r, -EINVAL);
    assert_string_equal(res.err, "--timeout needs a value (SECONDS)\n"
                                 "--port: invalid value \"http\": expected a port, 0-65535\n"
                                 "--prometheus_port: invalid value \"65536\": expected a port, "
                                 "0-65535\n"
                                 "--worker: 99 is out of range 0..64");
    result_done(&res);
}

static void test_env_and_flag_errors(void **state)
{
    const char *args[] = {"--workers",        "many",         "--instance",
                          "bad host",         "--listen",     "x",
                          "--log-level=loud", "--workers=65", NULL};
    const char *env[] = {"FLYTE_DATABRICKS_LOG_LEVEL=verbose", "FLYTE_DATABRICKS_INSTANCE=http://x",
                         NULL};
    struct result res = load(args, env);

    (void)state;
    assert_int_equal(res.r, -EINVAL);
    assert_string_equal(
        res.err,
        "FLYTE_DATABRICKS_INSTANCE: invalid value \"http://x\": expected a Databricks host name "
        "[a-z0-9.-] with an optional :PORT (1-65535), optionally prefixed by https://\n"
        "FLYTE_DATABRICKS_LOG_LEVEL: invalid value \"verbose\": expected one of debug, info, "
        "warning, error\n"
        "--workers: \"many\" is not an integer\n"
        "--instance: invalid value \"bad host\": expected a Databricks host name [a-z0-9.-] "
        "with an optional :PORT (1-65535), optionally prefixed by https://\n"
        "--listen: invalid value \"x\": expected HOST:PORT (an IPv6 host in brackets), port "
        "0-65535\n"
        "--log-level: invalid value \"loud\": expected one of debug, info, warning, error\n"
        "--workers: 65 is out of range 0..64");
    result_done(&res);
}

static void test_config_file_errors_name_the_file(void **state)
{
    struct tmpfile conf;
    char want[256];

    (void)state;
    tmp_write(&conf, "{\"workers\": 100,\n\"bogus\": 1}", 0644);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        snprintf(want, sizeof(want),
                 "%s: key \"workers\": 100 is out of range 0..64\n%s: unknown key \"bogus\"",
                 conf.path, conf.path);
        assert_string_equal(res.err, want);
        result_done(&res);
    }
    tmp_remove(&conf);
    tmp_write(&conf, "{\n  \"workers\": 2\n  \"listen\": \"a:1\"\n}", 0644);
    {
        const char *args[] = {"--config", conf.path, "--bogus", NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        snprintf(want, sizeof(want),
                 "unknown flag \"--bogus\" (see --help)\n%s:3:3: JSON syntax error", conf.path);
        assert_string_equal(res.err, want);
        result_done(&res);
    }
    tmp_remove(&conf);
    {
        const char *args[] = {"--config", "/nonexistent/fdc.json", NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err,
                            "config file \"/nonexistent/fdc.json\": No such file or directory");
        result_done(&res);
    }
    {
        const char *args[] = {"--config", "/tmp", NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err, "config file \"/tmp\": not a regular file");
        result_done(&res);
    }
}

static void test_ca_file_checked(void **state)
{
    const char *args[] = {"--ca-file", "/nonexistent/ca.pem", NULL};
    struct result res = load(args, NULL);
    struct tmpfile not_pem;
    char text[128];

    (void)state;
    assert_int_equal(res.r, -EINVAL);
    assert_string_equal(res.err, "ca_file \"/nonexistent/ca.pem\": No such file or directory");
    result_done(&res);

    /* A file with no certificate would only fail at the first request, as a TLS error. */
    tmp_write(&not_pem, "not a certificate\n", 0644);
    {
        const char *bad[] = {"--ca-file", not_pem.path, NULL};
        res = load(bad, NULL);
        snprintf(text, sizeof(text), "ca_file \"%s\" holds no PEM certificate", not_pem.path);
        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err, text);
        result_done(&res);
    }
    {
        const char *dir[] = {"--ca-file", "/tmp", NULL};
        res = load(dir, NULL);
        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err, "ca_file \"/tmp\": not a regular file");
        result_done(&res);
    }
    tmp_remove(&not_pem);
}

/* idempotency_key_file: the content, trimmed, is the key; short keys and unreadable files are
 * errors naming the key, a readable-by-others file a warning; describe masks it. */
static void test_idempotency_key_file(void **state)
{
    static const char key[] = "0123456789abcdef0123456789abcdef-CANARY";
    struct tmpfile good, open_mode, short_key, conf;
    char text[512], *desc;

    (void)state;
    snprintf(text, sizeof(text), "\n  %s \n", key);
    tmp_write(&good, text, 0600);
    tmp_write(&open_mode, key, 0644);
    tmp_write(&short_key, "0123456789abcdef0123456789abcde\n", 0600); /* 31 bytes */
    snprintf(text, sizeof(text), "{\"idempotency_key_file\": \"%s\"}", good.path);
    tmp_write(&conf, text, 0600);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        assert_int_equal(res.cfg->idempotency_key_len, strlen(key));
        assert_memory_equal(res.cfg->idempotency_key, key, strlen(key));
        for (size_t i = 0; res.warnings && res.warnings[i]; i++)
            assert_null(strstr(res.warnings[i], "idempotency_key_file"));
        desc = config_describe(res.cfg);
        snprintf(text, sizeof(text), "\nidempotency_key = (set, %zu bytes)\n", strlen(key));
        assert_non_null(strstr(desc, text));
        assert_null(strstr(desc, "CANARY"));
        free(desc);
        result_done(&res);
    }
    tmp_remove(&conf);
    snprintf(text, sizeof(text), "{\"idempotency_key_file\": \"%s\"}", open_mode.path);
    tmp_write(&conf, text, 0600);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        const char *warning = NULL;

        assert_int_equal(res.r, 0);
        for (size_t i = 0; res.warnings && res.warnings[i]; i++)
            if (strstr(res.warnings[i], "idempotency_key_file"))
                warning = res.warnings[i];
        assert_non_null(warning);
        assert_non_null(strstr(warning, "mode 0644"));
        result_done(&res);
    }
    tmp_remove(&conf);
    snprintf(text, sizeof(text), "{\"idempotency_key_file\": \"%s\"}", short_key.path);
    tmp_write(&conf, text, 0600);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        snprintf(text, sizeof(text),
                 "idempotency_key_file \"%s\": the key is 31 bytes, fewer than 32 (make one with "
                 "`openssl rand -hex 32`)",
                 short_key.path);
        assert_string_equal(res.err, text);
        result_done(&res);
    }
    tmp_remove(&conf);
    tmp_write(&conf, "{\"idempotency_key_file\": \"/nonexistent/key\"}", 0600);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err,
                            "idempotency_key_file \"/nonexistent/key\": No such file or directory");
        result_done(&res);
    }
    tmp_remove(&conf);
    tmp_remove(&good);
    tmp_remove(&open_mode);
    tmp_remove(&short_key);
}

/* The listener's TLS keys go together, and only a usable set passes (tls_files does the file
 * checks; test_tls_files has them all): an error names the key. */
static void test_listener_tls_keys(void **state)
{
    static const struct {
        const char *args[7];
        const char *want;
    } cases[] = {
        {{"--tls-cert", "/x/cert.pem", NULL},
         "tls_cert_file and tls_key_file go together: set both to serve TLS, or neither for "
         "plaintext"},
        {{"--tls-key", "/x/key.pem", NULL},
         "tls_cert_file and tls_key_file go together: set both to serve TLS, or neither for "
         "plaintext"},
        {{"--tls-client-ca", "/x/ca.pem", NULL},
         "tls_client_ca_file needs tls_cert_file and tls_key_file: client certificates are part "
         "of TLS"},
        {{"--tls-cert", "/x/cert.pem", "--tls-key", "/x/key.pem", NULL},
         "tls_cert_file \"/x/cert.pem\": No such file or directory"},
        /* every error at once, as always */
        {{"--tls-cert", "", "--tls-key", "/x/key.pem", NULL},
         "--tls-cert: invalid value \"\": must not be empty\n"
         "tls_cert_file and tls_key_file go together: set both to serve TLS, or neither for "
         "plaintext"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct result res = load(cases[i].args, NULL);

        assert_int_equal(res.r, -EINVAL);
        if (strcmp(res.err, cases[i].want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, res.err, cases[i].want);
        result_done(&res);
    }
}

static void test_listen_is_loopback(void **state)
{
    (void)state;
    assert_true(config_listen_is_loopback("127.0.0.1:8000"));
    assert_true(config_listen_is_loopback("127.1.2.3:0"));
    assert_true(config_listen_is_loopback("[::1]:8000"));
    assert_true(config_listen_is_loopback("localhost:8000"));
    assert_false(config_listen_is_loopback("0.0.0.0:8000"));
    assert_false(config_listen_is_loopback("[::]:8000"));
    assert_false(config_listen_is_loopback("10.0.0.1:8000"));
    assert_false(config_listen_is_loopback("localhost.example.com:8000"));
    assert_false(config_listen_is_loopback("1127.0.0.1:8000"));
    assert_false(config_listen_is_loopback(NULL));
}

/* ---- the token ---- */

static void test_token_sources(void **state)
{
    struct tmpfile flag_tok, file_tok, conf;
    char conf_text[256];

    (void)state;
    tmp_write(&flag_tok, "  \n\tflag-token\r\n\n", 0600);
    tmp_write(&file_tok, "file-token\n", 0600);
    snprintf(conf_text, sizeof(conf_text), "{\"token_file\": \"%s\"}", file_tok.path);
    tmp_write(&conf, conf_text, 0600);

    /* config file's token_file alone */
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "file-token");
        assert_string_equal(res.cfg->token_file, file_tok.path);
        assert_null(res.warnings);
        result_done(&res);
    }
    /* the variable beats the config file's token_file, trimmed */
    {
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN= env-token\n", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "env-token");
        assert_null(res.cfg->token_file);
        result_done(&res);
    }
    /* --token-file beats the variable */
    {
        const char *args[] = {"--config", conf.path, "--token-file", flag_tok.path, NULL};
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN=env-token", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "flag-token");
        assert_string_equal(res.cfg->token_file, flag_tok.path);
        result_done(&res);
    }
    /* the variable is used when the config file's token_file is missing: that file is not read */
    {
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN=env-token", NULL};
        struct tmpfile c2;
        const char *args[] = {"--config", NULL, NULL};
        struct result res;

        tmp_write(&c2, "{\"token_file\": \"/nonexistent/token\"}", 0600);
        args[1] = c2.path;
        res = load(args, env);
        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "env-token");
        result_done(&res);
        tmp_remove(&c2);
    }
    tmp_remove(&flag_tok);
    tmp_remove(&file_tok);
    tmp_remove(&conf);
}

static void test_token_file_errors_and_warnings(void **state)
{
    struct tmpfile empty, spaces, world;

    (void)state;
    tmp_write(&empty, "", 0600);
    tmp_write(&spaces, " \n\t\n", 0600);
    tmp_write(&world, "t0k3n\n", 0644);
    {
        const char *args[] = {"--token-file", empty.path, NULL};
        struct result res = load(args, NULL);
        char want[256];

        assert_int_equal(res.r, -EINVAL);
        snprintf(want, sizeof(want), "token file \"%s\": the token is empty", empty.path);
        assert_string_equal(res.err, want);
        result_done(&res);
    }
    {
        const char *args[] = {"--token-file", spaces.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_non_null(strstr(res.err, "the token is empty"));
        result_done(&res);
    }
    {
        const char *args[] = {"--token-file", "/nonexistent/token", NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err,
                            "token file \"/nonexistent/token\": No such file or directory");
        result_done(&res);
    }
    {
        const char *args[] = {"--token-file", world.path, NULL};
        struct result res = load(args, NULL);
        char want[256];

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "t0k3n");
        assert_non_null(res.warnings);
        assert_null(res.warnings[1]);
        snprintf(want, sizeof(want),
                 "token file \"%s\" is accessible by group or others (mode 0644)", world.path);
        assert_true(warnings_contain(res.warnings, want));
        result_done(&res);
    }
    {
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN= \t ", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err, "FLYTE_DATABRICKS_ACCESS_TOKEN: the token is empty");
        result_done(&res);
    }
    /* Group-readable by the daemon's own group (Kubernetes' fsGroup: root:fsGroup 0440) is
     * not exposure; group-readable by another group is. */
    assert_int_equal(chmod(world.path, 0440), 0);
    assert_int_equal(chown(world.path, (uid_t)-1, getegid()), 0);
    {
        const char *args[] = {"--token-file", world.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        assert_false(warnings_contain(res.warnings, "accessible by group or others"));
        result_done(&res);
    }
    if (geteuid() == 0) { /* only root may give the file to another group */
        const char *args[] = {"--token-file", world.path, NULL};
        struct result res;
        char want[256];

        assert_int_equal(chown(world.path, (uid_t)-1, getegid() + 1), 0);
        res = load(args, NULL);
        snprintf(want, sizeof(want),
                 "token file \"%s\" is accessible by group or others (mode 0440)", world.path);
        assert_true(warnings_contain(res.warnings, want));
        result_done(&res);
    }
    tmp_remove(&empty);
    tmp_remove(&spaces);
    tmp_remove(&world);
}

static void assert_no_canary(const struct result *res)
{
    char *desc;

    if (res->err && strstr(res->err, CANARY))
        fail_msg("token leaked into error: %s", res->err);
    for (char **w = res->warnings; w && *w; w++)
        if (strstr(*w, CANARY))
            fail_msg("token leaked into warning: %s", *w);
    if (res->cfg) {
        desc = config_describe(res->cfg);
        assert_non_null(desc);
        if (strstr(desc, CANARY))
            fail_msg("token leaked into describe: %s", desc);
        free(desc);
    }
}

static void test_token_never_leaks(void **state)
{
    struct tmpfile good, bad, world;

    (void)state;
    tmp_write(&good, CANARY "\n", 0600);
    tmp_write(&bad, CANARY "\nsecond-line\n", 0600);
    tmp_write(&world, CANARY, 0666);
    {
        const char *args[] = {"--token-file", good.path, NULL};
        struct result res = load(args, NULL);
        char *desc;

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, CANARY);
        desc = config_describe(res.cfg);
        assert_non_null(strstr(desc, "\ntoken = (set, 26 bytes, file "));
        free(desc);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        /* a valid token beside other errors */
        const char *args[] = {"--token-file", good.path, "--workers", "x", "--nope", NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        const char *args[] = {"--token-file", bad.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_non_null(strstr(res.err, "HTTP header"));
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        const char *args[] = {"--token-file", world.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        assert_non_null(res.warnings);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        /* the token file given as the config file by mistake */
        const char *args[] = {"--config", good.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, -EINVAL);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN=" CANARY " x", NULL};
        const char *args[] = {"--check-config", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, -EINVAL);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        const char *env[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN=" CANARY, NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, CANARY);
        assert_no_canary(&res);
        result_done(&res);
    }
    tmp_remove(&good);
    tmp_remove(&bad);
    tmp_remove(&world);
}

/* ---- flytekit's places, OAuth clients, Kubernetes ---- */

/* A directory standing for /etc/secrets, removed with its files by tmpdir_remove(). */
struct tmpdir {
    char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
    strcpy(d->path, "/tmp/test_config_dir.XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

static void tmpdir_put(const struct tmpdir *d, const char *name, const char *content)
{
    char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", d->path, name);
    f = fopen(path, "we");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static void tmpdir_remove(struct tmpdir *d, const char *const *names)
{
    char path[160];

    for (; names && *names; names++) {
        snprintf(path, sizeof(path), "%s/%s", d->path, *names);
        unlink(path);
    }
    rmdir(d->path);
}

static bool strv_contains(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* flytekit's SecretsManager looks for FLYTE_DATABRICKS_ACCESS_TOKEN as the variable
 * _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN, then the file /etc/secrets/flyte_databricks_access_token;
 * the connector's own variable and token_file come after, a --token-file flag before. */
static void test_flytekit_places(void **state)
{
    struct tmpdir dir;
    struct tmpfile conf_tok, flag_tok, conf;
    char env_dir[128], conf_text[160], want[256];
    static const char *const files[] = {"flyte_databricks_access_token",
                                        "pre_flyte_databricks_access_token", NULL};

    (void)state;
    tmpdir_make(&dir);
    snprintf(env_dir, sizeof(env_dir), "FLYTE_SECRETS_DEFAULT_DIR=%s", dir.path);
    tmp_write(&conf_tok, "config-token\n", 0600);
    tmp_write(&flag_tok, "flag-token\n", 0600);
    snprintf(conf_text, sizeof(conf_text), "{\"token_file\": \"%s\"}", conf_tok.path);
    tmp_write(&conf, conf_text, 0600);
    {
        /* no file in the directory: the variable, then token_file */
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {env_dir, NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "config-token");
        snprintf(want, sizeof(want), "file %s", conf_tok.path);
        assert_string_equal(res.cfg->token_place, want);
        result_done(&res);
    }
    tmpdir_put(&dir, "flyte_databricks_access_token", " file-token\n");
    {
        /* the file beats FLYTE_DATABRICKS_ACCESS_TOKEN and token_file, and is watched */
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {env_dir, "FLYTE_DATABRICKS_ACCESS_TOKEN=env-token", NULL};
        struct result res = load(args, env);
        char path[160];

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "file-token");
        snprintf(path, sizeof(path), "%s/flyte_databricks_access_token", dir.path);
        assert_string_equal(res.cfg->token_file, path);
        snprintf(want, sizeof(want), "file %s", path);
        assert_string_equal(res.cfg->token_place, want);
        assert_true(strv_contains(res.cfg->watch_files, res.cfg->watch_files_count, path));
        result_done(&res);
    }
    {
        /* _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN beats the file */
        const char *env[] = {env_dir, "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN=fsec-token", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "fsec-token");
        assert_string_equal(res.cfg->token_place, "env _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN");
        assert_null(res.cfg->token_file);
        result_done(&res);
    }
    {
        /* FLYTE_SECRETS_ENV_PREFIX renames the variable: the old name means nothing */
        const char *env[] = {env_dir, "FLYTE_SECRETS_ENV_PREFIX=MINE_",
                             "MINE_FLYTE_DATABRICKS_ACCESS_TOKEN=mine-token",
                             "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN=fsec-token", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "mine-token");
        result_done(&res);
    }
    {
        /* FLYTE_SECRETS_FILE_PREFIX goes before the file name */
        const char *env[] = {env_dir, "FLYTE_SECRETS_FILE_PREFIX=pre_",
                             "FLYTE_DATABRICKS_ACCESS_TOKEN=env-token", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "env-token");
        result_done(&res);
        tmpdir_put(&dir, "pre_flyte_databricks_access_token", "prefixed-token");
        res = load(NULL, env);
        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "prefixed-token");
        result_done(&res);
    }
    {
        /* an explicit --token-file flag wins over every place */
        const char *args[] = {"--token-file", flag_tok.path, NULL};
        const char *env[] = {env_dir, "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN=fsec-token", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        assert_string_equal(res.cfg->token, "flag-token");
        result_done(&res);
    }
    {
        /* an empty file is an error naming it */
        tmpdir_put(&dir, "flyte_databricks_access_token", "\n");
        const char *env[] = {env_dir, NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, -EINVAL);
        assert_non_null(strstr(res.err, "flyte_databricks_access_token\": the token is empty"));
        result_done(&res);
    }
    tmpdir_remove(&dir, files);
    {
        /* nothing anywhere: the warning names every place, in order */
        const char *env[] = {"FLYTE_SECRETS_DEFAULT_DIR=/nonexistent/secrets", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, 0);
        assert_null(res.cfg->token);
        assert_true(warnings_contain(
            res.warnings, "no Databricks token (looked in environment "
                          "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN, file "
                          "/nonexistent/secrets/flyte_databricks_access_token, environment "
                          "FLYTE_DATABRICKS_ACCESS_TOKEN, token_file (not set))"));
        result_done(&res);
    }
    tmp_remove(&conf_tok);
    tmp_remove(&flag_tok);
    tmp_remove(&conf);
}

static void test_oauth_clients(void **state)
{
    struct tmpfile secret, other, conf;
    char conf_text[512];
    const struct config_oauth_client *c;

    (void)state;
    tmp_write(&secret, CANARY "-global\n", 0600);
    tmp_write(&other, CANARY "-other\n", 0600);
    snprintf(conf_text, sizeof(conf_text),
             "{\"client_id\": \"global-id\", \"client_secret_file\": \"%s\", "
             "\"instance_oauth\": {\"https://Other.example.com/\": {\"client_id\": \"other-id\", "
             "\"client_secret_file\": \"%s\"}}}",
             secret.path, other.path);
    tmp_write(&conf, conf_text, 0600);
    {
        const char *args[] = {"--config", conf.path, NULL};
        struct result res = load(args, NULL);

        assert_int_equal(res.r, 0);
        c = config_oauth_client(res.cfg, "other.example.com");
        assert_non_null(c);
        assert_string_equal(c->client_id, "other-id");
        assert_string_equal(c->client_secret, CANARY "-other");
        c = config_oauth_client(res.cfg, "x.example.com");
        assert_non_null(c);
        assert_string_equal(c->client_id, "global-id");
        assert_string_equal(c->client_secret, CANARY "-global");
        assert_true(strv_contains(res.cfg->watch_files, res.cfg->watch_files_count, secret.path));
        assert_true(strv_contains(res.cfg->watch_files, res.cfg->watch_files_count, other.path));
        /* with an OAuth client, a missing default token is no cause for a warning */
        assert_false(warnings_contain(res.warnings, "no Databricks token"));
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        /* the variables: DATABRICKS_CLIENT_SECRET wins over the file */
        const char *args[] = {"--config", conf.path, NULL};
        const char *env[] = {"DATABRICKS_CLIENT_ID=env-id",
                             "DATABRICKS_CLIENT_SECRET=" CANARY "-env", NULL};
        struct result res = load(args, env);

        assert_int_equal(res.r, 0);
        c = config_oauth_client(res.cfg, "x.example.com");
        assert_string_equal(c->client_id, "env-id");
        assert_string_equal(c->client_secret, CANARY "-env");
        assert_null(c->client_secret_file);
        assert_no_canary(&res);
        result_done(&res);
    }
    {
        /* no client at all */
        struct result res = load(NULL, NULL);

        assert_int_equal(res.r, 0);
        assert_null(config_oauth_client(res.cfg, "x.example.com"));
        result_done(&res);
    }
    {
        const char *env[] = {"DATABRICKS_CLIENT_ID=lonely", NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, -EINVAL);
        assert_string_equal(res.err, "client_id is set but no client secret "
                                     "(DATABRICKS_CLIENT_SECRET or client_secret_file)");
        result_done(&res);
    }
    {
        const char *env[] = {"DATABRICKS_CLIENT_SECRET=" CANARY, NULL};
        struct result res = load(NULL, env);

        assert_int_equal(res.r, -EINVAL);
        assert_non_null(strstr(res.err, "but no client_id"));
        assert_no_canary(&res);
        result_done(&res);
    }
    expect_error("{\"client_id\": \"a:b\"}",
                 "key \"client_id\": invalid value \"a:b\": expected visible ASCII characters "
                 "other than ':'");
    expect_error("{\"instance_oauth\": {\"x.example.com\": {\"client_id\": \"a\"}}}",
                 "key \"instance_oauth\"[\"x.example.com\"]: needs both client_id and "
                 "client_secret_file");
    expect_error("{\"instance_oauth\": {\"x.example.com\": {\"client_id\": \"a\", "
                 "\"client_secret_file\": \"/f\", \"secret\": \"s\"}}}",
                 "key \"instance_oauth\"[\"x.example.com\"]: unknown key \"secret\" (expected "
                 "client_id, client_secret_file)");
    expect_error("{\"instance_oauth\": []}",
                 "key \"instance_oauth\": expected an object, got an array");
    tmp_remove(&secret);
    tmp_remove(&other);
    tmp_remove(&conf);
}

/* In a cluster exactly when client-go's InClusterConfig() would say so: both variables set. */
static void test_kubernetes_environment(void **state)
{
    static const struct {
        const char *host, *port;
        const char *want_host; /* NULL: not in a cluster */
        const char *want_error;
    } cases[] = {
        {"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "10.96.0.1", NULL},
        {"KUBERNETES_SERVICE_HOST=fd00::1", "KUBERNETES_SERVICE_PORT=6443", "fd00::1", NULL},
        {"KUBERNETES_SERVICE_HOST=kubernetes.default.svc", "KUBERNETES_SERVICE_PORT=443",
         "kubernetes.default.svc", NULL},
        {"KUBERNETES_SERVICE_HOST=10.96.0.1", "X=1", NULL, NULL},
        {"X=1", "KUBERNETES_SERVICE_PORT=443", NULL, NULL},
        {"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=0", NULL,
         "KUBERNETES_SERVICE_PORT: invalid value \"0\": expected a port 1-65535"},
        {"KUBERNETES_SERVICE_HOST=a/b", "KUBERNETES_SERVICE_PORT=443", NULL,
         "KUBERNETES_SERVICE_HOST: invalid value \"a/b\": expected a host name or IP address"},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const char *env[] = {cases[i].host, cases[i].port, NULL};
        struct result res = load(NULL, env);

        if (cases[i].want_error) {
            assert_int_equal(res.r, -EINVAL);
            assert_string_equal(res.err, cases[i].want_error);
        } else if (cases[i].want_host) {
            assert_int_equal(res.r, 0);
            assert_string_equal(res.cfg->kubernetes_host, cases[i].want_host);
        } else {
            assert_int_equal(res.r, 0);
            assert_null(res.cfg->kubernetes_host);
        }
        result_done(&res);
    }
}

static void test_read_secret_and_stamps(void **state)
{
    struct tmpfile f;
    struct config_stamp a, b, gone;
    char *secret = NULL, *err = NULL;

    (void)state;
    tmp_write(&f, "\n" CANARY "\n", 0600);
    assert_int_equal(config_read_secret(f.path, "service account token", &secret, &err), 0);
    assert_string_equal(secret, CANARY);
    free(secret);
    config_stamp_file(f.path, &a);
    assert_true(a.exists);
    config_stamp_file(f.path, &b);
    assert_true(config_stamp_equal(&a, &b));
    /* replaced the way Kubernetes does: a new file renamed over the old name */
    {
        struct tmpfile g;

        tmp_write(&g, CANARY "\n", 0600);
        assert_int_equal(rename(g.path, f.path), 0);
    }
    config_stamp_file(f.path, &b);
    assert_false(config_stamp_equal(&a, &b));
    tmp_remove(&f);
    config_stamp_file(f.path, &gone);
    assert_false(gone.exists);
    assert_false(config_stamp_equal(&b, &gone));

    assert_int_equal(
        config_read_secret("/nonexistent/token", "service account token", &secret, &err), -EINVAL);
    assert_string_equal(err,
                        "service account token \"/nonexistent/token\": No such file or directory");
    free(err);
    err = NULL;
    tmp_write(&f, CANARY " x\n", 0600);
    assert_true(config_read_secret(f.path, "service account token", &secret, &err) < 0);
    assert_null(strstr(err, CANARY));
    free(err);
    tmp_remove(&f);
}

/* ---- actions and flag syntax ---- */

static void test_actions(void **state)
{
    static const struct {
        const char *args[4];
        enum config_action want;
    } cases[] = {
        {{NULL}, CONFIG_ACTION_RUN},
        {{"--help", NULL}, CONFIG_ACTION_HELP},
        {{"-h", NULL}, CONFIG_ACTION_HELP},
        {{"--version", NULL}, CONFIG_ACTION_VERSION},
        {{"--check-config", NULL}, CONFIG_ACTION_CHECK},
        /* --help and --version work whatever else is wrong */
        {{"--bogus", "--help", NULL}, CONFIG_ACTION_HELP},
        {{"--config", "/nonexistent", "--version", NULL}, CONFIG_ACTION_VERSION},
        {{"--workers", "0", "--help", NULL}, CONFIG_ACTION_HELP},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct result res = load(cases[i].args, NULL);

        assert_int_equal(res.r, 0);
        assert_int_equal(res.action, cases[i].want);
        assert_non_null(res.cfg);
        result_done(&res);
    }
}

static void test_bad_flags(void **state)
{
    static const struct {
        const char *args[4];
        const char *want;
    } cases[] = {
        {{"--listne", "x", NULL},
         "unknown flag \"--listne\" (see --help)\n"
         "unexpected argument \"x\""},
        {{"--token=abc", NULL}, "unknown flag \"--token\" (see --help)"},
        {{"-v", NULL}, "unknown flag \"-v\" (see --help)"},
        {{"serve", NULL}, "unexpected argument \"serve\""},
        {{"--", "--help", NULL}, "unexpected argument \"--help\""},
        {{"--workers", NULL}, "--workers needs a value (N)"},
        {{"--check-config=yes", NULL}, "--check-config takes no value"},
        {{"--token-file=", NULL}, "--token-file: invalid value \"\": must not be empty"},
        /* errors come in argv order */
        {{"x", "--bogus", NULL},
         "unexpected argument \"x\"\nunknown flag \"--bogus\" (see --help)"},
        /* a flag is named in full; an abbreviation's value is an argument of its own */
        {{"--work", "3", NULL}, "unknown flag \"--work\" (see --help)\nunexpected argument \"3\""},
        {{"--check", NULL}, "unknown flag \"--check\" (see --help)"},
        /* a single-dash word is one flag, not a group of letters */
        {{"-hv", NULL}, "unknown flag \"-hv\" (see --help)"},
        {{"-listen", "x", NULL},
         "unknown flag \"-listen\" (see --help)\nunexpected argument \"x\""},
        {{"-", NULL}, "unexpected argument \"-\""},
    };

    (void)state;
    /* Twice over: a SIGHUP reload parses the same argv again. */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
            struct result res = load(cases[i].args, NULL);

            assert_int_equal(res.r, -EINVAL);
            assert_string_equal(res.err, cases[i].want);
            result_done(&res);
        }
    }
}

static void test_check_config_with_errors_fails(void **state)
{
    const char *args[] = {"--check-config", "--workers", "65", NULL};
    struct result res = load(args, NULL);

    (void)state;
    assert_int_equal(res.r, -EINVAL);
    assert_string_equal(res.err, "--workers: 65 is out of range 0..64");
    result_done(&res);
}

/* Gives the usage text with every run of whitespace made one space, so a phrase is found
 * wherever the line breaks fall. */
static char *usage_text(void)
{
    char *text = NULL, *out;
    size_t len = 0, o = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    config_usage(f, "prog");
    fclose(f);
    /* no line wider than 80 columns */
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1)
        assert_true(nl - line <= 80);
    out = malloc(len + 1);
    assert_non_null(out);
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == '\n') {
            if (o > 0 && out[o - 1] != ' ')
                out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    free(text);
    return out;
}

static void test_usage_mentions_every_flag(void **state)
{
    static const char *const want[] = {
        "--config FILE",
        "--listen HOST:PORT",
        "--workers N",
        "--instance HOST[:PORT]",
        "--allowed-instance HOST[:PORT]",
        "--token-file FILE",
        "--ca-file FILE",
        "--log-level LEVEL",
        "--log-format FORMAT",
        "--metrics-listen HOST:PORT",
        "--port PORT",
        "--prometheus_port PORT",
        "--worker N",
        "--timeout SECONDS",
        "--modules MODULE",
        "--connect_port PORT",
        "--check-config",
        "-h, --help",
        "--version",
        "Default: 0.0.0.0:8000. Key: listen.",
        "Default: 0. Key: workers.",
        "Default: info. Key: log_level.",
        "Default: 0.0.0.0:9090. Key: metrics_listen.",
        "Key: default_instance.",
        "Key: allowed_instances.",
        "Key: token_file.",
        "Key: ca_file.",
        "connect_timeout_ms (default 5000)",
        "request_timeout_ms (default 30000)",
        "status_cache_ttl_ms (default 0: off)",
        "retryable_failed_phase (default true)",
        "FLYTE_DATABRICKS_INSTANCE",
        "FLYTE_DATABRICKS_ACCESS_TOKEN",
        "FLYTE_DATABRICKS_LOG_LEVEL",
        "FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER",
        "Exit status:",
        "Usage: prog ",
    };
    char *text = usage_text();

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(want); i++)
        if (!strstr(text, want[i]))
            fail_msg("usage lacks %s", want[i]);
    /* every flag of the table has its entry, and every key is named */
    for (size_t i = 0; config_flag_name(i); i++) {
        char entry[64];

        snprintf(entry, sizeof(entry), " --%s ", config_flag_name(i));
        if (!strstr(text, entry))
            fail_msg("usage lacks an entry for --%s", config_flag_name(i));
    }
    for (size_t i = 0; config_key_name(i); i++)
        if (!strstr(text, config_key_name(i)))
            fail_msg("usage does not name the key %s", config_key_name(i));
    free(text);
}

/* check-config's description has one line for every key, and only keys besides config_file, the
 * secrets and the Kubernetes API. */
static void test_describe_lists_every_key(void **state)
{
    struct config *cfg = config_new();
    char *desc, *line, *next;
    size_t n = 0;

    (void)state;
    assert_non_null(cfg);
    desc = config_describe(cfg);
    assert_non_null(desc);
    for (line = desc; *line; line = next + 1, n++) {
        next = strchr(line, '\n');
        assert_non_null(next);
        *strstr(line, " = ") = '\0';
        if (n == 0)
            assert_string_equal(line, "config_file");
        else if (n == 1)
            assert_string_equal(line, "token");
        else if (n == 2)
            assert_string_equal(line, "client_secret");
        else if (n == 3)
            assert_string_equal(line, "kubernetes_api");
        else if (n == 4)
            assert_string_equal(line, "idempotency_key");
        else
            assert_string_equal(line, config_key_name(n - 5));
    }
    assert_null(config_key_name(n - 5));
    free(desc);
    config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_sorted_and_complete),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_config_current_references),
        cmocka_unit_test(test_empty_load_gives_defaults),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_typed_fields),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_and_duplicate_keys),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_example_config_parses),
        cmocka_unit_test(test_readme_documents_every_key),
        cmocka_unit_test(test_instance_allowed),
        cmocka_unit_test(test_star_warns),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_allowed_instance_flags_replace_list),
        cmocka_unit_test(test_pyflyte_flags),
        cmocka_unit_test(test_pyflyte_flag_errors),
        cmocka_unit_test(test_env_and_flag_errors),
        cmocka_unit_test(test_config_file_errors_name_the_file),
        cmocka_unit_test(test_ca_file_checked),
        cmocka_unit_test(test_token_sources),
        cmocka_unit_test(test_token_file_errors_and_warnings),
        cmocka_unit_test(test_token_never_leaks),
        cmocka_unit_test(test_flytekit_places),
        cmocka_unit_test(test_oauth_clients),
        cmocka_unit_test(test_kubernetes_environment),
        cmocka_unit_test(test_read_secret_and_stamps),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_check_config_with_errors_fails),
        cmocka_unit_test(test_usage_mentions_every_flag),
        cmocka_unit_test(test_describe_lists_every_key),
        cmocka_unit_test(test_idempotency_key_file),
        cmocka_unit_test(test_listener_tls_keys),
        cmocka_unit_test(test_listen_is_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
