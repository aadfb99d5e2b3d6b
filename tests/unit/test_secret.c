/*
 * test_secret.c - secret_free(): the bytes are zero when the memory goes back to the allocator,
 * and NULL is accepted.
 *
 * The Makefile links this test with --wrap=free, so the test's __wrap_free() sees each block
 * secret.o frees before the real free() takes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "secret.h"

void __real_free(void *p);
void __wrap_free(void *p);

/* The block the test expects freed, how many bytes it checks, and what it saw. */
static const char *watched;
static size_t watched_len;
static bool watched_freed, watched_zero;

void __wrap_free(void *p)
{
    if (p && p == watched) {
        watched_freed = true;
        watched_zero = true;
        for (size_t i = 0; i < watched_len; i++)
            if (watched[i] != '\0')
                watched_zero = false;
    }
    __real_free(p);
}

static void test_zeroed_before_free(void **state)
{
    static const char token[] = "dapi0123456789abcdef";
    char *s = strdup(token);

    (void)state;
    assert_non_null(s);
    watched = s;
    watched_len = sizeof(token);
    watched_freed = watched_zero = false;
    assert_null(secret_free(s));
    assert_true(watched_freed);
    assert_true(watched_zero);
    watched = NULL;
}

static void test_empty_and_null(void **state)
{
    char *s = strdup("");

    (void)state;
    assert_non_null(s);
    watched = s;
    watched_len = 1;
    watched_freed = false;
    assert_null(secret_free(s));
    assert_true(watched_freed);
    watched = NULL;
    assert_null(secret_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_before_free),
        cmocka_unit_test(test_empty_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
