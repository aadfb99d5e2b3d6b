/* Unit tests for hardening.c: the environment scrub (bytes zeroed where they lie, entries
 * removed, the rest kept in order), the private copy, and core dumps turned off. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "config.h"
#include "hardening.h"

static void test_scrub_zeroes_in_place_and_removes(void **state)
{
    /* One block, as the kernel lays out the environment, so "in place" can be checked. */
    char block[] = "PATH=/bin\0FLYTE_DATABRICKS_ACCESS_TOKEN=dapi-secret\0HOME=/root\0"
                   "FLYTE_DATABRICKS_ACCESS_TOKEN_X=kept\0SECOND=s3cret\0";
    char *envp[] = {block, block + 10, block + 52, block + 63, block + 100, NULL};
    const char *names[] = {"FLYTE_DATABRICKS_ACCESS_TOKEN", "SECOND", "ABSENT"};

    (void)state;
    assert_string_equal(envp[1], "FLYTE_DATABRICKS_ACCESS_TOKEN=dapi-secret");
    assert_string_equal(envp[3], "FLYTE_DATABRICKS_ACCESS_TOKEN_X=kept");
    assert_string_equal(envp[4], "SECOND=s3cret");
    assert_int_equal(hardening_env_scrub(envp, names, 3), 2);
    assert_string_equal(envp[0], "PATH=/bin");
    assert_string_equal(envp[1], "HOME=/root");
    assert_string_equal(envp[2], "FLYTE_DATABRICKS_ACCESS_TOKEN_X=kept");
    assert_null(envp[3]);
    /* The values' bytes are gone from the block itself, not only from the array. */
    assert_null(memmem(block, sizeof(block), "dapi-secret", 11));
    assert_null(memmem(block, sizeof(block), "s3cret", 6));
    assert_memory_equal(block + 10, "FLYTE_DATABRICKS_ACCESS_TOKEN=\0\0\0", 33);
    assert_int_equal(hardening_env_scrub(NULL, names, 3), 0);
}

/* The names config reads secrets from: every token variable, flytekit's with the prefix the
 * environment sets, the OAuth client secret, and nothing that is not a secret. */
static void test_config_secret_names(void **state)
{
    char *plain[] = {NULL};
    char *prefixed[] = {(char *)"FLYTE_SECRETS_ENV_PREFIX=MY_", NULL};
    static const char *const want[] = {"DATABRICKS_CLIENT_SECRET", "FLYTE_DATABRICKS_ACCESS_TOKEN",
                                       "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN"};
    char **names;
    size_t n = 0;

    (void)state;
    names = config_secret_env_names(plain);
    assert_non_null(names);
    for (; names[n]; n++) {
        bool known = false;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            known = known || strcmp(names[n], want[i]) == 0;
        if (!known)
            fail_msg("%s is not a secret variable", names[n]);
    }
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool listed = false;
        for (size_t k = 0; k < n; k++)
            listed = listed || strcmp(names[k], want[i]) == 0;
        if (!listed)
            fail_msg("%s is missing", want[i]);
    }
    config_strv_free(names);

    names = config_secret_env_names(prefixed);
    assert_non_null(names);
    n = 0;
    for (size_t k = 0; names[k]; k++)
        n += strcmp(names[k], "MY_FLYTE_DATABRICKS_ACCESS_TOKEN") == 0;
    assert_int_equal(n, 1);
    config_strv_free(names);
}

static void test_copy(void **state)
{
    char *envp[] = {(char *)"A=1", (char *)"TOKEN=x", NULL};
    char **copy = hardening_env_copy(envp);

    (void)state;
    assert_non_null(copy);
    assert_ptr_not_equal(copy[0], envp[0]);
    assert_string_equal(copy[0], "A=1");
    assert_string_equal(copy[1], "TOKEN=x");
    assert_null(copy[2]);
    assert_null(hardening_env_free(copy));
    copy = hardening_env_copy(NULL);
    assert_non_null(copy);
    assert_null(copy[0]);
    assert_null(hardening_env_free(copy));
    assert_null(hardening_env_free(NULL));
}

static void test_no_core_dumps(void **state)
{
    struct rlimit limit;
    char *err = NULL;

    (void)state;
    assert_int_equal(hardening_no_core_dumps(&err), 0);
    assert_null(err);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &limit), 0);
    assert_int_equal(limit.rlim_cur, 0);
    assert_int_equal(limit.rlim_max, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_zeroes_in_place_and_removes),
        cmocka_unit_test(test_config_secret_names),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_no_core_dumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
