/* Unit tests for daemon/k8s_secret.c: Kubernetes' name rules (written out from the DNS-1123
 * definitions in Kubernetes' apimachinery validation, not from the code), and what each answer
 * to a Secret's GET means, with Secrets written the way the API server writes them (data values
 * base64 with padding). No value of a Secret may appear in a message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s_secret.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_names(void **state)
{
    static const char *const good_namespaces[] = {
        "a",    "flytesnacks-development",
        "0",    "a-b-c",
        "x123", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123", /* 63 */
    };
    static const char *const bad_namespaces[] = {
        "",
        "-a",
        "a-",
        "A",
        "a_b",
        "a.b",
        "a/b",
        "..",
        "a b",
        "a%2fb",
        "a?b",
        "ä",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234", /* 64 */
    };
    static const char *const good_names[] = {
        "databricks-token", "a.b", "team.token-1", "0.1.2", "x",
    };
    static const char *const bad_names[] = {
        "", ".a", "a.", "a..b", "a/b", "A", "a_b", "-a.b", "a.-b", "a b", "%2e%2e", "a?x=1",
    };
    char long_name[300];

    (void)state;
    for (size_t i = 0; i < N(good_namespaces); i++)
        assert_true(k8s_secret_namespace_valid(good_namespaces[i]));
    for (size_t i = 0; i < N(bad_namespaces); i++)
        if (k8s_secret_namespace_valid(bad_namespaces[i]))
            fail_msg("namespace '%s' accepted", bad_namespaces[i]);
    assert_false(k8s_secret_namespace_valid(NULL));
    for (size_t i = 0; i < N(good_names); i++)
        assert_true(k8s_secret_name_valid(good_names[i]));
    for (size_t i = 0; i < N(bad_names); i++)
        if (k8s_secret_name_valid(bad_names[i]))
            fail_msg("name '%s' accepted", bad_names[i]);
    assert_false(k8s_secret_name_valid(NULL));
    /* 253 characters in labels of 63 at most: fine; 254: too long */
    memset(long_name, 'a', sizeof(long_name));
    for (int i = 63; i < 253; i += 64)
        long_name[i] = '.';
    long_name[253] = '\0';
    assert_true(k8s_secret_name_valid(long_name));
    long_name[253] = 'a';
    long_name[254] = '\0';
    assert_false(k8s_secret_name_valid(long_name));
}

static int judge(long status, const char *body, char **token, char **err)
{
    *token = NULL;
    *err = NULL;
    return k8s_secret_judge(status, body, strlen(body), token, err);
}

/* A Secret as the API server answers it; `data` is the inside of its "data" object. */
static void secret_json(char *out, size_t size, const char *data)
{
    snprintf(
        out, size,
        "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"databricks-token\","
        "\"namespace\":\"ns\"},\"data\":{%s},\"type\":\"Opaque\"}",
        data);
}

static void test_found(void **state)
{
    static const struct {
        const char *data, *token;
    } cases[] = {
        /* "dapi-SECRET" */
        {"\"token\":\"ZGFwaS1TRUNSRVQ=\"", "dapi-SECRET"},
        /* "dapi-SECRET\n", as kubectl create secret --from-file keeps it */
        {"\"token\":\"ZGFwaS1TRUNSRVQK\"", "dapi-SECRET"},
        /* "ab": two padding characters; other keys beside it */
        {"\"other\":\"eA==\",\"token\":\"YWI=\"", "ab"},
        /* "abc": none */
        {"\"token\":\"YWJj\"", "abc"},
        {"\"token\":\"YQ==\"", "a"},
    };
    char body[512], *token, *err;

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        secret_json(body, sizeof(body), cases[i].data);
        assert_int_equal(judge(200, body, &token, &err), K8S_SECRET_FOUND);
        assert_string_equal(token, cases[i].token);
        assert_null(err);
        free(token);
    }
}

static void test_not_found(void **state)
{
    static const struct {
        long status;
        const char *data; /* NULL: the body is the text in message */
        int outcome;
        const char *message;
    } cases[] = {
        {404, NULL, K8S_SECRET_ABSENT, "HTTP 404: no such Secret"},
        {403, NULL, K8S_SECRET_FORBIDDEN, "HTTP 403: forbidden"},
        {200, "\"other\":\"eA==\"", K8S_SECRET_ABSENT, "the Secret has no key \"token\""},
        {200, "", K8S_SECRET_ABSENT, "the Secret has no key \"token\""},
        {200, "\"token\":\"not base64!\"", K8S_SECRET_UNUSABLE,
         "data.token of the Secret is not base64"},
        {200, "\"token\":\"YWJ\"", K8S_SECRET_UNUSABLE, "data.token of the Secret is not base64"},
        {200, "\"token\":\"YQ=a\"", K8S_SECRET_UNUSABLE, "data.token of the Secret is not base64"},
        {200, "\"token\":\"====\"", K8S_SECRET_UNUSABLE, "data.token of the Secret is not base64"},
        {200, "\"token\":12", K8S_SECRET_UNUSABLE, "data.token of the Secret is not a string"},
        /* "a b": a space; "\r\n" only; "" */
        {200, "\"token\":\"YSBi\"", K8S_SECRET_UNUSABLE,
         "the Secret's token is empty or holds a space, control or non-ASCII character, which an "
         "HTTP header cannot carry"},
        {200, "\"token\":\"DQo=\"", K8S_SECRET_UNUSABLE,
         "the Secret's token is empty or holds a space, control or non-ASCII character, which an "
         "HTTP header cannot carry"},
        {200, "\"token\":\"\"", K8S_SECRET_UNUSABLE,
         "the Secret's token is empty or holds a space, control or non-ASCII character, which an "
         "HTTP header cannot carry"},
        {401, NULL, K8S_SECRET_TROUBLE, "HTTP 401"},
        {429, NULL, K8S_SECRET_TROUBLE, "HTTP 429"},
        {500, NULL, K8S_SECRET_TROUBLE, "HTTP 500"},
        {503, NULL, K8S_SECRET_TROUBLE, "HTTP 503"},
        {302, NULL, K8S_SECRET_TROUBLE, "HTTP 302"},
    };
    char body[512], *token, *err;

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        if (cases[i].data)
            secret_json(body, sizeof(body), cases[i].data);
        else
            snprintf(body, sizeof(body), "{\"kind\":\"Status\",\"code\":%ld}", cases[i].status);
        assert_int_equal(judge(cases[i].status, body, &token, &err), cases[i].outcome);
        assert_null(token);
        assert_string_equal(err, cases[i].message);
        free(err);
    }
    /* the API server's own words, when its Status has them */
    assert_int_equal(
        judge(403,
              "{\"kind\":\"Status\",\"message\":\"secrets \\\"t\\\" is forbidden: User "
              "\\\"system:serviceaccount:flyte:fdc\\\" cannot get resource\",\"code\":403}",
              &token, &err),
        K8S_SECRET_FORBIDDEN);
    assert_string_equal(err, "HTTP 403: secrets \"t\" is forbidden: User "
                             "\"system:serviceaccount:flyte:fdc\" cannot get resource");
    free(err);
    assert_int_equal(judge(500, "{\"message\":\"etcd\\nleader changed\"}", &token, &err),
                     K8S_SECRET_TROUBLE);
    assert_string_equal(err, "HTTP 500: etcd leader changed");
    free(err);
    /* a 200 that is not a Secret at all */
    assert_int_equal(judge(200, "<html>proxy</html>", &token, &err), K8S_SECRET_TROUBLE);
    assert_string_equal(err, "the answer is not a JSON object");
    free(err);
    assert_int_equal(judge(200, "[1]", &token, &err), K8S_SECRET_TROUBLE);
    free(err);
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(k8s_secret_outcome_name(K8S_SECRET_FOUND), "found");
    assert_string_equal(k8s_secret_outcome_name(K8S_SECRET_ABSENT), "absent");
    assert_string_equal(k8s_secret_outcome_name(K8S_SECRET_FORBIDDEN), "forbidden");
    assert_string_equal(k8s_secret_outcome_name(K8S_SECRET_UNUSABLE), "unusable");
    assert_string_equal(k8s_secret_outcome_name(K8S_SECRET_TROUBLE), "trouble");
    assert_string_equal(k8s_secret_outcome_name(_K8S_SECRET_OUTCOME_MAX), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_outcome_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
