/* Unit tests for daemon/oauth_token.c: the HTTP Basic credentials of a token request (base64
 * values computed independently, with Python's base64 module), and what each answer of the token
 * endpoint means: a grant with its lifetime, a refusal of the client, or trouble worth retrying.
 * No token may appear in a message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oauth_token.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CANARY "dose-CANARY-token"

static void test_basic_auth(void **state)
{
    char *header = NULL;

    (void)state;
    assert_int_equal(oauth_token_basic_auth("id", "s3cr3t", &header), 0);
    assert_string_equal(header, "Authorization: Basic aWQ6czNjcjN0");
    free(header);
    assert_int_equal(oauth_token_basic_auth("7d1f0c1e-aaaa-bbbb-cccc-0123456789ab",
                                            "dose0123CANARYsecret", &header),
                     0);
    assert_string_equal(header,
                        "Authorization: Basic "
                        "N2QxZjBjMWUtYWFhYS1iYmJiLWNjY2MtMDEyMzQ1Njc4OWFiOmRvc2UwMTIzQ0FOQVJ"
                        "Zc2VjcmV0");
    free(header);
    /* the request is Databricks' SDK's: client credentials, all APIs */
    assert_string_equal(OAUTH_TOKEN_BODY, "grant_type=client_credentials&scope=all-apis");
    assert_string_equal(OAUTH_TOKEN_PATH, "/oidc/v1/token");
}

static int judge(long status, const char *body, char **token, long *expires, char **err)
{
    *token = NULL;
    *err = NULL;
    *expires = -1;
    return oauth_token_judge(status, body, strlen(body), token, expires, err);
}

static void test_granted(void **state)
{
    static const struct {
        const char *body;
        long expires;
    } cases[] = {
        {"{\"access_token\":\"" CANARY "\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
         "\"scope\":\"all-apis\"}",
         3600},
        /* lower-case type, lifetime as a string */
        {"{\"access_token\":\"" CANARY "\",\"token_type\":\"bearer\",\"expires_in\":\"120\"}", 120},
        /* no lifetime: Databricks' hour */
        {"{\"access_token\":\"" CANARY "\"}", 3600},
        /* more than a day is believed to be a day */
        {"{\"access_token\":\"" CANARY "\",\"expires_in\":999999}", 86400},
        {"{\"access_token\":\"" CANARY "\",\"expires_in\":1}", 1},
    };
    char *token, *err;
    long expires;

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        assert_int_equal(judge(200, cases[i].body, &token, &expires, &err), OAUTH_TOKEN_GRANTED);
        assert_string_equal(token, CANARY);
        assert_int_equal(expires, cases[i].expires);
        assert_null(err);
        free(token);
    }
}

static void test_not_granted(void **state)
{
    static const struct {
        long status;
        const char *body;
        int outcome;
        const char *message;
    } cases[] = {
        {401,
         "{\"error\":\"invalid_client\",\"error_description\":\"Client authentication failed\"}",
         OAUTH_TOKEN_REFUSED, "HTTP 401 invalid_client: Client authentication failed"},
        {400, "{\"error\":\"invalid_scope\"}", OAUTH_TOKEN_REFUSED, "HTTP 400 invalid_scope"},
        {403, "", OAUTH_TOKEN_REFUSED, "HTTP 403"},
        {429, "{\"error\":\"slow_down\"}", OAUTH_TOKEN_TROUBLE, "HTTP 429 slow_down"},
        {503, "<html>down</html>", OAUTH_TOKEN_TROUBLE, "HTTP 503"},
        {500, "{\"error\":\"server_error\",\"error_description\":\"a\\nb\"}", OAUTH_TOKEN_TROUBLE,
         "HTTP 500 server_error: a b"},
        {200, "not json", OAUTH_TOKEN_TROUBLE, "HTTP 200 without a JSON object"},
        {200, "{\"token_type\":\"Bearer\"}", OAUTH_TOKEN_TROUBLE,
         "the answer has no access_token an HTTP header can carry"},
        {200, "{\"access_token\":\"" CANARY " x\"}", OAUTH_TOKEN_TROUBLE,
         "the answer has no access_token an HTTP header can carry"},
        {200, "{\"access_token\":\"\"}", OAUTH_TOKEN_TROUBLE,
         "the answer has no access_token an HTTP header can carry"},
        {200, "{\"access_token\":\"" CANARY "\",\"token_type\":\"mac\"}", OAUTH_TOKEN_TROUBLE,
         "the answer's token_type is not Bearer"},
        {200, "{\"access_token\":\"" CANARY "\",\"expires_in\":0}", OAUTH_TOKEN_TROUBLE,
         "the answer's expires_in is not a number of seconds"},
        {200, "{\"access_token\":\"" CANARY "\",\"expires_in\":\"soon\"}", OAUTH_TOKEN_TROUBLE,
         "the answer's expires_in is not a number of seconds"},
    };
    char *token, *err;
    long expires;

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        int r = judge(cases[i].status, cases[i].body, &token, &expires, &err);

        if (r != cases[i].outcome || strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu: %d '%s'", i, r, err ? err : "(null)");
        assert_null(token);
        assert_null(strstr(err, "CANARY"));
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_granted),
        cmocka_unit_test(test_not_granted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
