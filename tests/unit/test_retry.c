/*
 * test_retry.c - retry decisions: the backoff's bounds per attempt and its
 * cap, Retry-After, the deadline, and which transport failures retry for
 * which requests. The expected values are written out here from the
 * documented policy (base 100 ms doubling per attempt, cap 4 s, 50 ms
 * minimum attempt), not read from the module.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "retry.h"

/* Draws spread over the range rand_r() gives, and beyond. */
static const unsigned int draws[] = {0,        1,       99,           100,     101,
                                     399,      4000,    4001,         65535,   1u << 20,
                                     1u << 30, INT_MAX, UINT_MAX - 1, UINT_MAX};

static void test_backoff_bounds_per_attempt(void **state)
{
    static const int64_t ceilings[] = {100, 200, 400, 800, 1600, 3200, 4000, 4000, 4000};
    (void)state;

    for (int attempts = 1; attempts <= 9; attempts++) {
        int64_t ceiling = ceilings[attempts - 1];
        for (size_t i = 0; i < sizeof(draws) / sizeof(draws[0]); i++) {
            int64_t b = retry_backoff_ms(attempts, draws[i]);
            assert_in_range(b, 0, ceiling);
        }
        /* The whole interval is used: 0 and the ceiling itself come up. */
        assert_int_equal(retry_backoff_ms(attempts, 0), 0);
        assert_int_equal(retry_backoff_ms(attempts, (unsigned int)ceiling), ceiling);
    }
}

static void test_backoff_cap_holds_for_many_attempts(void **state)
{
    (void)state;
    for (int attempts = 7; attempts < 10000; attempts += 7)
        for (size_t i = 0; i < sizeof(draws) / sizeof(draws[0]); i++)
            assert_in_range(retry_backoff_ms(attempts, draws[i]), 0, 4000);
    assert_int_equal(retry_backoff_ms(INT_MAX, 4000), 4000);
}

static void test_retry_after_longer_than_backoff_wins(void **state)
{
    (void)state;
    /* First retry: backoff at most 100 ms, the server asks for 3 s. */
    for (size_t i = 0; i < sizeof(draws) / sizeof(draws[0]); i++)
        assert_int_equal(retry_wait_ms(1, 3, 60000, draws[i]), 3000);
    /* A Retry-After shorter than the backoff drawn does not shorten it. */
    assert_int_equal(retry_wait_ms(5, 1, 60000, 1600), 1600);
    /* No Retry-After: the backoff. */
    assert_int_equal(retry_wait_ms(3, 0, 60000, 250), 250);
}

static void test_attempt_that_cannot_fit_is_refused(void **state)
{
    (void)state;
    /* A wait of 1 s needs 1 s + 50 ms before the deadline. */
    assert_int_equal(retry_wait_ms(1, 1, 1049, 0), -1);
    assert_int_equal(retry_wait_ms(1, 1, 1050, 0), 1000);
    /* Same for the backoff alone. */
    assert_int_equal(retry_wait_ms(2, 0, 249, 200), -1);
    assert_int_equal(retry_wait_ms(2, 0, 250, 200), 200);
    /* A deadline already passed refuses even a zero wait. */
    assert_int_equal(retry_wait_ms(1, 0, -5, 0), -1);

    assert_false(retry_attempt_fits(49));
    assert_true(retry_attempt_fits(50));
    assert_false(retry_attempt_fits(-1000));
}

static void test_transport_failures_that_retry(void **state)
{
    /* Either the request never left, or its answer was lost on the way. */
    static const enum http_failure lost[] = {
        HTTP_FAILURE_TIMEOUT,     HTTP_FAILURE_SEND,    HTTP_FAILURE_RECV,
        HTTP_FAILURE_GOT_NOTHING, HTTP_FAILURE_PARTIAL, HTTP_FAILURE_HTTP2,
    };
    static const enum http_failure never_sent[] = {HTTP_FAILURE_RESOLVE, HTTP_FAILURE_CONNECT};
    (void)state;

    for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++) {
        assert_true(retry_transport_failure(lost[i], true));
        /* It may have reached Databricks: only a safe request repeats. */
        assert_false(retry_transport_failure(lost[i], false));
    }
    for (size_t i = 0; i < sizeof(never_sent) / sizeof(never_sent[0]); i++) {
        assert_true(retry_transport_failure(never_sent[i], true));
        assert_true(retry_transport_failure(never_sent[i], false));
    }
}

static void test_transport_failures_that_do_not_retry(void **state)
{
    static const enum http_failure final[] = {
        HTTP_FAILURE_NONE,       HTTP_FAILURE_TLS_UNTRUSTED, HTTP_FAILURE_TLS_CA_FILE,
        HTTP_FAILURE_TLS_ISSUER, HTTP_FAILURE_TLS_HANDSHAKE, HTTP_FAILURE_TOO_LARGE,
        HTTP_FAILURE_CANCELLED,  HTTP_FAILURE_OTHER,
    };
    (void)state;

    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        assert_false(retry_transport_failure(final[i], true));
        assert_false(retry_transport_failure(final[i], false));
    }
}

static void test_tls_hints_name_the_setting(void **state)
{
    (void)state;
    assert_non_null(strstr(retry_tls_hint(HTTP_FAILURE_TLS_UNTRUSTED), "ca_file"));
    assert_non_null(strstr(retry_tls_hint(HTTP_FAILURE_TLS_CA_FILE), "ca_file"));
    assert_non_null(strstr(retry_tls_hint(HTTP_FAILURE_TLS_ISSUER), "ca_file"));
    assert_non_null(retry_tls_hint(HTTP_FAILURE_TLS_HANDSHAKE));
    assert_null(retry_tls_hint(HTTP_FAILURE_CONNECT));
    assert_null(retry_tls_hint(HTTP_FAILURE_NONE));
    assert_null(retry_tls_hint(HTTP_FAILURE_OTHER));
}

/* A tenth of the time left, 50 ms to 1 s, before the caller's deadline. */
static void test_call_deadline(void **state)
{
    (void)state;
    assert_int_equal(retry_call_deadline_ms(1000, INT64_MAX, 30000), 31000);
    assert_int_equal(retry_call_deadline_ms(0, 60000, 30000), 59000);
    assert_int_equal(retry_call_deadline_ms(0, 5000, 30000), 4500);
    assert_int_equal(retry_call_deadline_ms(0, 200, 30000), 150);
    assert_int_equal(retry_call_deadline_ms(100, 90, 30000), 40); /* already past */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_deadline),
        cmocka_unit_test(test_backoff_bounds_per_attempt),
        cmocka_unit_test(test_backoff_cap_holds_for_many_attempts),
        cmocka_unit_test(test_retry_after_longer_than_backoff_wins),
        cmocka_unit_test(test_attempt_that_cannot_fit_is_refused),
        cmocka_unit_test(test_transport_failures_that_retry),
        cmocka_unit_test(test_transport_failures_that_do_not_retry),
        cmocka_unit_test(test_tls_hints_name_the_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
