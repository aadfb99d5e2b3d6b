/* Unit tests for daemon/resmeta.c: round trips, flytekit's format (its token is read for the
 * run's calls but must never come back out), the per-namespace Secret's names, numeric run_ids,
 * malformed input with exact messages, and injection attempts on the values that end up in a
 * URL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resmeta.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CANARY "dapiCANARYc0ffee"

static int decode_str(const char *s, struct resmeta *m, char **err)
{
    return resmeta_decode((const uint8_t *)s, strlen(s), m, err);
}

static void expect_decode(const char *json, const char *instance, const char *run_id)
{
    struct resmeta m = {0};
    char *err = NULL;
    int r = decode_str(json, &m, &err);

    if (r != 0)
        fail_msg("decode %s: %d %s", json, r, err ? err : "");
    assert_null(err);
    assert_string_equal(m.instance, instance);
    assert_string_equal(m.run_id, run_id);
    assert_null(strstr(m.instance, "CANARY"));
    assert_null(strstr(m.run_id, "CANARY"));
    resmeta_done(&m);
}

static void expect_decode_error(const uint8_t *data, size_t len, const char *message)
{
    struct resmeta m = {.instance = (char *)"keep", .run_id = (char *)"keep"};
    char *err = NULL;

    assert_int_equal(resmeta_decode(data, len, &m, &err), -EINVAL);
    assert_non_null(err);
    if (strcmp(err, message) != 0)
        fail_msg("message '%s', expected '%s'", err, message);
    assert_null(strstr(err, "CANARY"));
    assert_string_equal(m.instance, "keep");
    assert_string_equal(m.run_id, "keep");
    free(err);
}

static void expect_decode_error_str(const char *json, const char *message)
{
    expect_decode_error((const uint8_t *)json, strlen(json), message);
}

static void test_round_trip(void **state)
{
    static const struct {
        const char *instance, *run_id, *bytes, *decoded_instance;
    } cases[] = {
        {"dbc-1.cloud.databricks.com", "123",
         "{\"databricks_instance\":\"dbc-1.cloud.databricks.com\",\"run_id\":\"123\"}",
         "dbc-1.cloud.databricks.com"},
        {"127.0.0.1:8443", "9223372036854775807",
         "{\"databricks_instance\":\"127.0.0.1:8443\",\"run_id\":\"9223372036854775807\"}",
         "127.0.0.1:8443"},
        {"https://ADB-12.azuredatabricks.net/", "1",
         "{\"databricks_instance\":\"adb-12.azuredatabricks.net\",\"run_id\":\"1\"}",
         "adb-12.azuredatabricks.net"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        struct resmeta m = {0};
        char *err = NULL;

        assert_int_equal(resmeta_encode(&(struct resmeta){.instance = (char *)cases[i].instance,
                                                          .run_id = (char *)cases[i].run_id},
                                        &data, &len),
                         0);
        assert_int_equal(len, strlen(cases[i].bytes));
        assert_memory_equal(data, cases[i].bytes, len);
        assert_int_equal(data[len], '\0');
        assert_int_equal(resmeta_decode(data, len, &m, &err), 0);
        assert_string_equal(m.instance, cases[i].decoded_instance);
        assert_string_equal(m.run_id, cases[i].run_id);
        resmeta_done(&m);
        free(data);
    }
}

static void test_encode_rejects(void **state)
{
    static const struct {
        const char *instance, *run_id;
    } cases[] = {
        {"a.com", NULL},    {"a.com", ""},    {"a.com", "12a"},
        {"a.com", "1&x=2"}, {"a.com", "-1"},  {"a.com", "12345678901234567890"},
        {"a.com", "0"},     {"a.com", "007"}, {"a.com", "9223372036854775808"},
        {NULL, "1"},        {"", "1"},        {"evil.com/path", "1"},
        {"a@b", "1"},       {"a.com:0", "1"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint8_t *data = (uint8_t *)"untouched";
        size_t len = 77;
        assert_int_equal(resmeta_encode(&(struct resmeta){.instance = (char *)cases[i].instance,
                                                          .run_id = (char *)cases[i].run_id},
                                        &data, &len),
                         -EINVAL);
        assert_string_equal((char *)data, "untouched");
        assert_int_equal(len, 77);
    }
}

static void test_flytekit_format(void **state)
{
    (void)state;
    /* as flytekit's json.dumps(asdict(metadata)) writes it */
    expect_decode(
        "{\"databricks_instance\": \"dbc-a1b2.cloud.databricks.com\", \"run_id\": \"4242\", "
        "\"auth_token\": \"" CANARY "\"}",
        "dbc-a1b2.cloud.databricks.com", "4242");
    expect_decode("{\"auth_token\": \"" CANARY "\", \"run_id\": 4242, "
                  "\"databricks_instance\": \"https://DBC-A1B2.cloud.databricks.com/\"}",
                  "dbc-a1b2.cloud.databricks.com", "4242");
    /* token of another type, unknown keys: ignored */
    expect_decode("{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": null, "
                  "\"future\": {\"x\": [1, 2]}}",
                  "h.io", "1");
    expect_decode(" \n{ \"run_id\" : \"5\" ,\n \"databricks_instance\" : \"h.io:443\" }\n ",
                  "h.io:443", "5");

    /* errors next to a token never quote it */
    expect_decode_error_str(
        "{\"databricks_instance\": \"h.io\", \"run_id\": \"x1\", \"auth_token\": \"" CANARY "\"}",
        "resource_meta: bad run_id 'x1': must be 1-19 decimal digits, from 1 to "
        "9223372036854775807");
    expect_decode_error_str(
        "{\"databricks_instance\": \"h io\", \"run_id\": \"1\", \"auth_token\": \"" CANARY "\"}",
        "resource_meta: bad databricks_instance: 'h io' is not host[:port]: "
        "character not allowed: ' '");
    expect_decode_error_str("{\"run_id\": \"1\", \"auth_token\": \"" CANARY "\"}",
                            "resource_meta: missing databricks_instance");
    expect_decode_error_str("{\"databricks_instance\": \"h.io\", \"auth_token\": \"" CANARY "\"}",
                            "resource_meta: missing run_id");
    expect_decode_error_str(
        "{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": \"" CANARY "\"",
        "malformed resource_meta: not JSON (at byte 79)");
    expect_decode_error_str(
        "{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"run_id\": \"2\", "
        "\"auth_token\": \"" CANARY "\"}",
        "malformed resource_meta: duplicate key 'run_id'");
    expect_decode_error_str("{\"auth_token\": \"" CANARY
                            "\", \"databricks_instance\": 5, \"run_id\": \"1\"}",
                            "resource_meta: databricks_instance must be a string");
}

static void test_numeric_run_id(void **state)
{
    static const struct {
        const char *number, *run_id;
    } ok[] = {
        {"123", "123"},
        {"1", "1"},
        {"1e3", "1000"},
        {"12.0", "12"},
        {"9007199254740991", "9007199254740991"},
        {"987654321012345", "987654321012345"},
    };
    static const struct {
        const char *number, *message;
    } bad[] = {
        {"1.5", "resource_meta: bad run_id 1.5: must be a whole number from 1 to 2^53"},
        {"0", "resource_meta: bad run_id 0: must be a whole number from 1 to 2^53"},
        {"-0", "resource_meta: bad run_id -0: must be a whole number from 1 to 2^53"},
        {"0.5", "resource_meta: bad run_id 0.5: must be a whole number from 1 to 2^53"},
        {"-1", "resource_meta: bad run_id -1: must be a whole number from 1 to 2^53"},
        {"9007199254740992",
         "resource_meta: bad run_id 9007199254740992: must be a whole number from 1 to 2^53"},
        {"1e400", "resource_meta: bad run_id inf: must be a whole number from 1 to 2^53"},
        {"true", "resource_meta: run_id must be a string of digits or a number"},
        {"null", "resource_meta: run_id must be a string of digits or a number"},
        {"[1]", "resource_meta: run_id must be a string of digits or a number"},
        {"{}", "resource_meta: run_id must be a string of digits or a number"},
    };
    char json[256];
    (void)state;

    for (size_t i = 0; i < N(ok); i++) {
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": %s}",
                 ok[i].number);
        expect_decode(json, "h.io", ok[i].run_id);
    }
    for (size_t i = 0; i < N(bad); i++) {
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": %s}",
                 bad[i].number);
        expect_decode_error_str(json, bad[i].message);
    }
}

/* run_id as a string: 1 to INT64_MAX, leading zeros dropped; nothing else reaches a URL. */
static void test_string_run_id_range(void **state)
{
    static const struct {
        const char *text, *run_id;
    } ok[] = {
        {"1", "1"},
        {"9223372036854775807", "9223372036854775807"}, /* INT64_MAX */
        {"0009", "9"},
        {"0000000000000000001", "1"}, /* 19 digits */
    };
    static const char *const bad[] = {
        "0",
        "00",
        "0000000000000000000",
        "9223372036854775808",
        "9999999999999999999",
        "18446744073709551616",
        "00000000000000000001", /* 20 digits */
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1e3",
        "0x10",
    };
    char json[256], message[256];
    (void)state;

    for (size_t i = 0; i < N(ok); i++) {
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": \"%s\"}",
                 ok[i].text);
        expect_decode(json, "h.io", ok[i].run_id);
    }
    for (size_t i = 0; i < N(bad); i++) {
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": \"%s\"}",
                 bad[i]);
        snprintf(message, sizeof(message),
                 "resource_meta: bad run_id '%s': must be 1-19 decimal digits, from 1 to "
                 "9223372036854775807",
                 bad[i]);
        expect_decode_error_str(json, message);
    }
}

static void test_malformed(void **state)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"", "malformed resource_meta: empty"},
        {"{", "malformed resource_meta: not JSON (at byte 1)"},
        {"not json", "malformed resource_meta: not JSON (at byte 0)"},
        {"{} x", "malformed resource_meta: not JSON (at byte 3)"},
        {"[]", "malformed resource_meta: not a JSON object"},
        {"\"h.io\"", "malformed resource_meta: not a JSON object"},
        {"123", "malformed resource_meta: not a JSON object"},
        {"null", "malformed resource_meta: not a JSON object"},
        {"{\"databricks_instance\": \"a.io\", \"databricks_instance\": \"b.io\", \"run_id\": "
         "\"1\"}",
         "malformed resource_meta: duplicate key 'databricks_instance'"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"12\\u0000&x=1\"}",
         "malformed resource_meta: contains a NUL byte"},
        {"{}", "resource_meta: missing databricks_instance"},
        {"{\"databricks_instance\": \"h.io\"}", "resource_meta: missing run_id"},
        {"{\"databricks_instance\": null, \"run_id\": \"1\"}",
         "resource_meta: databricks_instance must be a string"},
        {"{\"DATABRICKS_INSTANCE\": \"h.io\", \"run_id\": \"1\"}",
         "resource_meta: missing databricks_instance"},
        {"{\"databricks_instance\": \"\", \"run_id\": \"1\"}",
         "resource_meta: bad databricks_instance: '' is not host[:port]: empty host name"},
    };
    static const char nul[] = "{\"databricks_instance\": \"h.io\",\0 \"run_id\": \"1\"}";
    uint8_t *big;
    (void)state;

    for (size_t i = 0; i < N(cases); i++)
        expect_decode_error_str(cases[i].json, cases[i].message);
    expect_decode_error(NULL, 0, "malformed resource_meta: empty");
    expect_decode_error((const uint8_t *)"{}", 0, "malformed resource_meta: empty");
    expect_decode_error(NULL, 5, "malformed resource_meta: empty");
    expect_decode_error((const uint8_t *)nul, sizeof(nul) - 1,
                        "malformed resource_meta: contains a NUL byte");

    /* exactly the limit parses; one byte more is refused before parsing */
    big = malloc(RESMETA_MAX_LEN + 1);
    assert_non_null(big);
    memset(big, ' ', RESMETA_MAX_LEN + 1);
    {
        const char *j = "{\"databricks_instance\": \"h.io\", \"run_id\": \"1\"}";
        struct resmeta m = {0};
        char *err = NULL;
        memcpy(big, j, strlen(j));
        assert_int_equal(resmeta_decode(big, RESMETA_MAX_LEN, &m, &err), 0);
        assert_string_equal(m.run_id, "1");
        resmeta_done(&m);
    }
    expect_decode_error(big, RESMETA_MAX_LEN + 1,
                        "malformed resource_meta: 65537 bytes, more than 65536");
    free(big);

    /* NULL reterr_msg is allowed */
    {
        struct resmeta m = {0};
        assert_int_equal(decode_str("[]", &m, NULL), -EINVAL);
        assert_int_equal(
            decode_str("{\"databricks_instance\": \"a b\", \"run_id\": \"1\"}", &m, NULL), -EINVAL);
    }
}

static void test_run_id_injection(void **state)
{
    static const char *const bad[] = {
        "1&x=2",
        "12 ",
        " 12",
        "+12",
        "-12",
        "1.0",
        "",
        "12345678901234567890",
        "0x1f",
        "1%26x",
        "\xd9\xa1\xd9\xa2",
        /* Arabic-Indic digits */ "1\n2",
        "1/../2",
    };
    char json[256], expected[256];
    (void)state;

    for (size_t i = 0; i < N(bad); i++) {
        char quoted[128];
        size_t k = 0;
        /* the expected quote: text kept (these are valid UTF-8), control bytes as \xNN */
        for (const char *p = bad[i]; *p; p++) {
            if ((unsigned char)*p < 0x20)
                k += (size_t)sprintf(quoted + k, "\\x%02x", (unsigned char)*p);
            else
                quoted[k++] = *p;
        }
        quoted[k] = '\0';
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": \"%s\"}",
                 strcmp(bad[i], "1\n2") == 0 ? "1\\n2" : bad[i]);
        snprintf(expected, sizeof(expected),
                 "resource_meta: bad run_id '%s': must be 1-19 decimal digits, from 1 to "
                 "9223372036854775807",
                 quoted);
        expect_decode_error_str(json, expected);
    }

    /* a long bad value is quoted cut to 64 characters */
    {
        char longid[200];
        memset(longid, '9', sizeof(longid) - 2);
        longid[sizeof(longid) - 2] = 'x';
        longid[sizeof(longid) - 1] = '\0';
        snprintf(json, sizeof(json), "{\"databricks_instance\": \"h.io\", \"run_id\": \"%s\"}",
                 longid);
        snprintf(expected, sizeof(expected),
                 "resource_meta: bad run_id '%.64s...': must be 1-19 decimal digits, from 1 to "
                 "9223372036854775807",
                 longid);
        expect_decode_error_str(json, expected);
    }
    expect_decode("{\"databricks_instance\": \"h.io\", \"run_id\": \"1234567890123456789\"}",
                  "h.io", "1234567890123456789");
    /* leading zeros are dropped: one run, one id */
    expect_decode("{\"databricks_instance\": \"h.io\", \"run_id\": \"007\"}", "h.io", "7");
}

static void test_normalize_ok(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"dbc-1.cloud.databricks.com", "dbc-1.cloud.databricks.com"},
        {"DBC-1.Cloud.Databricks.COM", "dbc-1.cloud.databricks.com"},
        {"https://dbc-1.cloud.databricks.com", "dbc-1.cloud.databricks.com"},
        {"https://dbc-1.cloud.databricks.com/", "dbc-1.cloud.databricks.com"},
        {"HTTPS://dbc-1.cloud.databricks.com/", "dbc-1.cloud.databricks.com"},
        {"dbc-1.cloud.databricks.com/", "dbc-1.cloud.databricks.com"},
        {"localhost:8080", "localhost:8080"},
        {"127.0.0.1:1", "127.0.0.1:1"},
        {"h.io:65535", "h.io:65535"},
        {"h.io:0443", "h.io:443"},
        {"https://127.0.0.1:9443/", "127.0.0.1:9443"},
        {"x", "x"},
        {"1-2.a-b.c", "1-2.a-b.c"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        char *out = NULL, *err = NULL;
        if (resmeta_normalize_instance(cases[i].in, &out, &err) != 0)
            fail_msg("'%s': %s", cases[i].in, err ? err : "");
        assert_null(err);
        assert_string_equal(out, cases[i].out);
        free(out);
    }
}

static void test_normalize_bad(void **state)
{
    static const struct {
        const char *in, *message;
    } cases[] = {
        {"evil.com/path", "'evil.com/path' is not host[:port]: character not allowed: '/'"},
        {"a@b", "'a@b' is not host[:port]: character not allowed: '@'"},
        {"user:pw@h.io", "'user:pw@h.io' is not host[:port]: port must be 1-65535"},
        {"a b", "'a b' is not host[:port]: character not allowed: ' '"},
        {"caf\xc3\xa9.com", "'caf\xc3\xa9.com' is not host[:port]: character not allowed: 0xc3"},
        {"caf\xe9.com", "'caf\\xe9.com' is not host[:port]: character not allowed: 0xe9"},
        {"h.io?x=1", "'h.io?x=1' is not host[:port]: character not allowed: '?'"},
        {"h.io#x", "'h.io#x' is not host[:port]: character not allowed: '#'"},
        {"h.io\r\nHost: x",
         "'h.io\\x0d\\x0aHost: x' is not host[:port]: character not allowed: 0x0d"},
        {"a_b.com", "'a_b.com' is not host[:port]: character not allowed: '_'"},
        {"[::1]", "'[::1]' is not host[:port]: character not allowed: '['"},
        {"h.io%2fx", "'h.io%2fx' is not host[:port]: character not allowed: '%'"},
        {"http://h.io", "'http://h.io' is not host[:port]: port must be 1-65535"},
        {"ftp://h.io", "'ftp://h.io' is not host[:port]: port must be 1-65535"},
        {"", "'' is not host[:port]: empty host name"},
        {"/", "'/' is not host[:port]: empty host name"},
        {"https://", "'https://' is not host[:port]: empty host name"},
        {"https:///", "'https:///' is not host[:port]: empty host name"},
        {"h.io//", "'h.io//' is not host[:port]: character not allowed: '/'"},
        {":443", "':443' is not host[:port]: empty host name"},
        {"h.io:", "'h.io:' is not host[:port]: port must be 1-65535"},
        {"h.io:0", "'h.io:0' is not host[:port]: port must be 1-65535"},
        {"h.io:65536", "'h.io:65536' is not host[:port]: port must be 1-65535"},
        {"h.io:123456", "'h.io:123456' is not host[:port]: port must be 1-65535"},
        {"h.io:+80", "'h.io:+80' is not host[:port]: port must be 1-65535"},
        {"h.io:80:90", "'h.io:80:90' is not host[:port]: port must be 1-65535"},
        {"h.io:8a", "'h.io:8a' is not host[:port]: port must be 1-65535"},
        {"-a.com", "'-a.com' is not host[:port]: label starts with '-'"},
        {"a-.com", "'a-.com' is not host[:port]: label ends with '-'"},
        {"a.com-", "'a.com-' is not host[:port]: label ends with '-'"},
        {"a..com", "'a..com' is not host[:port]: empty label"},
        {".a.com", "'.a.com' is not host[:port]: empty label"},
        {"a.com.", "'a.com.' is not host[:port]: empty label"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        char *out = (char *)"untouched", *err = NULL;
        assert_int_equal(resmeta_normalize_instance(cases[i].in, &out, &err), -EINVAL);
        assert_string_equal(out, "untouched");
        assert_non_null(err);
        if (cases[i].message && strcmp(err, cases[i].message) != 0)
            fail_msg("'%s': message '%s', expected '%s'", cases[i].in, err, cases[i].message);
        free(err);
    }
    {
        char *out = NULL, *err = NULL;
        assert_int_equal(resmeta_normalize_instance(NULL, &out, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        assert_int_equal(resmeta_normalize_instance("a b", &out, NULL), -EINVAL);
        assert_null(out);
    }
}

/* Length limits: 63-character labels and 253-character hosts pass, one more fails; a long bad
 * value is quoted cut to 64 characters. */
static void test_normalize_lengths(void **state)
{
    char host[400], expected[300], *out = NULL, *err = NULL;
    (void)state;

    memset(host, 'a', 63);
    strcpy(host + 63, ".io");
    assert_int_equal(resmeta_normalize_instance(host, &out, &err), 0);
    assert_string_equal(out, host);
    free(out);

    memset(host, 'a', 64);
    strcpy(host + 64, ".io");
    assert_int_equal(resmeta_normalize_instance(host, &out, &err), -EINVAL);
    snprintf(expected, sizeof(expected),
             "'%.64s...' is not host[:port]: label longer than 63 characters", host);
    assert_string_equal(err, expected);
    free(err);
    err = NULL;

    /* 4 labels of 63 + 3 dots = 255 > 253; 3 labels of 63 + "a" label of 59 = 253 */
    for (int i = 0; i < 4; i++) {
        memset(host + i * 64, 'b', 63);
        host[i * 64 + 63] = '.';
    }
    host[4 * 64 - 1] = '\0';
    assert_int_equal(strlen(host), 255);
    assert_int_equal(resmeta_normalize_instance(host, &out, &err), -EINVAL);
    assert_non_null(strstr(err, "host name longer than 253 characters"));
    assert_true(strlen(err) < 200);
    free(err);
    err = NULL;

    host[253] = '\0';
    assert_int_equal(resmeta_normalize_instance(host, &out, &err), 0);
    assert_int_equal(strlen(out), 253);
    free(out);
    strcpy(host + 253, ":443");
    assert_int_equal(resmeta_normalize_instance(host, &out, &err), 0);
    assert_int_equal(strlen(out), 257);
    free(out);
}

/* The names of a per-namespace Secret round trip; flytekit's auth_token is read, never written. */
static void test_namespace_and_auth_token(void **state)
{
    static const char want[] = "{\"databricks_instance\":\"h.io\",\"run_id\":\"7\","
                               "\"namespace\":\"flytesnacks-development\","
                               "\"token_secret\":\"team.token-1\"}";
    struct resmeta m = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    char *err = NULL;

    (void)state;
    assert_int_equal(
        resmeta_encode(&(struct resmeta){.instance = (char *)"H.io",
                                         .run_id = (char *)"7",
                                         .namespace = (char *)"flytesnacks-development",
                                         .token_secret = (char *)"team.token-1",
                                         .auth_token = (char *)CANARY},
                       &data, &len),
        0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    assert_int_equal(decode_str((char *)data, &m, &err), 0);
    assert_string_equal(m.namespace, "flytesnacks-development");
    assert_string_equal(m.token_secret, "team.token-1");
    assert_null(m.auth_token);
    resmeta_done(&m);
    free(data);

    /* a namespace alone stands for flytekit's default Secret, and is written as such */
    assert_int_equal(resmeta_encode(&(struct resmeta){.instance = (char *)"h.io",
                                                      .run_id = (char *)"7",
                                                      .namespace = (char *)"ns"},
                                    &data, &len),
                     0);
    assert_non_null(
        strstr((char *)data, "\"namespace\":\"ns\",\"token_secret\":\"databricks-token\""));
    free(data);
    assert_int_equal(
        decode_str("{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": \"ns\"}",
                   &m, &err),
        0);
    assert_string_equal(m.namespace, "ns");
    assert_null(m.token_secret);
    resmeta_done(&m);

    /* flytekit's token comes out for the run's calls */
    assert_int_equal(decode_str("{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", "
                                "\"auth_token\": \"" CANARY "\"}",
                                &m, &err),
                     0);
    assert_string_equal(m.auth_token, CANARY);
    assert_null(m.namespace);
    /* and never goes back in */
    assert_int_equal(resmeta_encode(&m, &data, &len), 0);
    assert_null(strstr((char *)data, CANARY));
    assert_null(strstr((char *)data, "auth_token"));
    free(data);
    resmeta_done(&m);
    assert_null(m.auth_token);
    assert_null(m.instance);

    /* names a Kubernetes API URL cannot take are refused on the way out too */
    data = (uint8_t *)"untouched";
    assert_int_equal(resmeta_encode(&(struct resmeta){.instance = (char *)"h.io",
                                                      .run_id = (char *)"7",
                                                      .namespace = (char *)"a/b"},
                                    &data, &len),
                     -EINVAL);
    assert_int_equal(resmeta_encode(&(struct resmeta){.instance = (char *)"h.io",
                                                      .run_id = (char *)"7",
                                                      .namespace = (char *)"ns",
                                                      .token_secret = (char *)"x?y"},
                                    &data, &len),
                     -EINVAL);
    assert_string_equal((char *)data, "untouched");
}

static void test_namespace_and_auth_token_refused(void **state)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": \"Team_A\"}",
         "resource_meta: bad namespace 'Team_A': must be a Kubernetes namespace name"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": "
         "\"../kube-system\"}",
         "resource_meta: bad namespace '../kube-system': must be a Kubernetes namespace name"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": \"ns\", "
         "\"token_secret\": \"a/b?c\"}",
         "resource_meta: bad token_secret 'a/b?c': must be a Kubernetes Secret name"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"token_secret\": \"s\"}",
         "resource_meta: token_secret without namespace"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": 3}",
         "resource_meta: namespace must be a string"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"namespace\": \"a\", "
         "\"namespace\": \"b\"}",
         "malformed resource_meta: duplicate key 'namespace'"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": \"" CANARY
         "\\r\\nX-Evil: 1\"}",
         "resource_meta: auth_token must be a token of visible ASCII characters"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": \"\"}",
         "resource_meta: auth_token must be a token of visible ASCII characters"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": 5}",
         "resource_meta: auth_token must be a string"},
        {"{\"databricks_instance\": \"h.io\", \"run_id\": \"1\", \"auth_token\": \"a\", "
         "\"auth_token\": \"b\"}",
         "malformed resource_meta: duplicate key 'auth_token'"},
    };

    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        expect_decode_error_str(cases[i].json, cases[i].message);
}

static void test_done(void **state)
{
    struct resmeta m = {0};
    (void)state;

    assert_int_equal(decode_str("{\"databricks_instance\": \"h.io\", \"run_id\": \"3\"}", &m, NULL),
                     0);
    resmeta_done(&m);
    assert_null(m.instance);
    assert_null(m.run_id);
    resmeta_done(&m);
    resmeta_done(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_flytekit_format),
        cmocka_unit_test(test_numeric_run_id),
        cmocka_unit_test(test_string_run_id_range),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_run_id_injection),
        cmocka_unit_test(test_normalize_ok),
        cmocka_unit_test(test_normalize_bad),
        cmocka_unit_test(test_normalize_lengths),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_namespace_and_auth_token),
        cmocka_unit_test(test_namespace_and_auth_token_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
