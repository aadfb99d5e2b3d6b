/*
 * test_dbx_limit.c - the per-workspace limiter: bursts, refill over time,
 * the concurrency cap, per-instance overrides, reloads, deadlines of queued
 * requests and the bound on idle workspaces. Time is passed in, so every
 * case runs on invented milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "dbx_limit.h"

#define FAR_DEADLINE INT64_MAX
#define MIN_LEFT 50

static struct dbx_limit *new_limit(long rps, long max_concurrent)
{
    struct dbx_limit_settings s = {.rate_limit_rps = rps,
                                   .max_concurrent_requests = max_concurrent};
    struct dbx_limit *limit = dbx_limit_new(&s);
    assert_non_null(limit);
    return limit;
}

/* Admits requests at `now` until one is queued; gives how many started. */
static int start_until_queued(struct dbx_limit *limit, struct dbx_limit_host *h, int64_t now,
                              struct dbx_limit_waiter *queued)
{
    int started = 0;

    queued->deadline_ms = FAR_DEADLINE;
    while (dbx_limit_admit(limit, h, queued, now)) {
        started++;
        assert_true(started < 100000);
    }
    return started;
}

static void test_no_limits_never_queue(void **state)
{
    struct dbx_limit *limit = new_limit(0, 0);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter w = {.deadline_ms = FAR_DEADLINE};
    (void)state;

    for (int i = 0; i < 10000; i++) {
        assert_true(dbx_limit_admit(limit, h, &w, 0));
        dbx_limit_started(h);
    }
    dbx_limit_free(limit);
}

static void test_burst_is_the_rate_by_default(void **state)
{
    struct dbx_limit *limit = new_limit(10, 0);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 1000);
    struct dbx_limit_waiter w;
    (void)state;

    /* A fresh workspace may send one second's worth at once, not more. */
    assert_int_equal(start_until_queued(limit, h, 1000, &w), 10);
    assert_ptr_equal(dbx_limit_take_all(limit), &w);
    dbx_limit_free(limit);
}

static void test_configured_burst(void **state)
{
    struct config_instance_limit overrides[] = {
        {.instance = (char *)"a.example", .rate_limit_rps = 100, .burst = 3},
    };
    struct dbx_limit_settings s = {.limits = overrides, .limits_count = 1};
    struct dbx_limit *limit = dbx_limit_new(&s);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter w;
    (void)state;

    assert_int_equal(start_until_queued(limit, h, 0, &w), 3);
    dbx_limit_free(limit);
}

static void test_refill_over_time(void **state)
{
    struct dbx_limit *limit = new_limit(10, 0); /* one token every 100 ms */
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter w, *next;
    bool expired = true;
    int64_t wait = 0;
    (void)state;

    assert_int_equal(start_until_queued(limit, h, 0, &w), 10);
    /* Queued: nothing starts until a token is due, and the wait says when
     * to look again (never later than it takes to notice a deadline). */
    assert_null(dbx_limit_next(limit, 0, MIN_LEFT, &expired, &wait));
    assert_true(wait > 0 && wait <= 50);
    assert_null(dbx_limit_next(limit, 99, MIN_LEFT, &expired, &wait));
    next = dbx_limit_next(limit, 100, MIN_LEFT, &expired, &wait);
    assert_ptr_equal(next, &w);
    assert_false(expired);
    assert_null(dbx_limit_next(limit, 100, MIN_LEFT, &expired, &wait));
    assert_int_equal(wait, INT64_MAX);

    /* A long quiet spell refills the bucket to the burst and no further. */
    assert_int_equal(start_until_queued(limit, h, 60000, &w), 10);
    dbx_limit_free(limit);
}

static void test_queue_is_first_come_first_served(void **state)
{
    struct dbx_limit *limit = new_limit(1, 0);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter first = {.deadline_ms = FAR_DEADLINE},
                            second = {.deadline_ms = FAR_DEADLINE}, *next;
    bool expired;
    int64_t wait;
    (void)state;

    assert_int_equal(start_until_queued(limit, h, 0, &first), 1);
    /* A token comes back, but the queued request has it, not a newcomer. */
    assert_false(dbx_limit_admit(limit, h, &second, 1000));
    next = dbx_limit_next(limit, 1000, MIN_LEFT, &expired, &wait);
    assert_ptr_equal(next, &first);
    assert_null(dbx_limit_next(limit, 1000, MIN_LEFT, &expired, &wait));
    next = dbx_limit_next(limit, 2000, MIN_LEFT, &expired, &wait);
    assert_ptr_equal(next, &second);
    dbx_limit_free(limit);
}

static void test_concurrency_cap(void **state)
{
    struct dbx_limit *limit = new_limit(0, 2);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter w = {.deadline_ms = FAR_DEADLINE}, *next;
    bool expired;
    int64_t wait;
    (void)state;

    for (int i = 0; i < 2; i++) {
        assert_true(dbx_limit_admit(limit, h, &w, 0));
        dbx_limit_started(h);
    }
    assert_false(dbx_limit_admit(limit, h, &w, 0));
    /* Time alone does not help: only a finished transfer frees a place. */
    assert_null(dbx_limit_next(limit, 100000, MIN_LEFT, &expired, &wait));
    assert_true(wait > 0 && wait <= 50);
    dbx_limit_finished(h);
    next = dbx_limit_next(limit, 100000, MIN_LEFT, &expired, &wait);
    assert_ptr_equal(next, &w);
    assert_false(expired);
    dbx_limit_free(limit);
}

static void test_overrides_apply_to_their_instance_only(void **state)
{
    struct config_instance_limit overrides[] = {
        {.instance = (char *)"slow.example", .rate_limit_rps = 2},
        {.instance = (char *)"narrow.example", .max_concurrent_requests = 1},
    };
    struct dbx_limit_settings s = {
        .rate_limit_rps = 5, .max_concurrent_requests = 0, .limits = overrides, .limits_count = 2};
    struct dbx_limit *limit = dbx_limit_new(&s);
    struct dbx_limit_waiter w;
    struct dbx_limit_host *narrow;
    struct dbx_limit_values v;
    (void)state;

    assert_int_equal(start_until_queued(limit, dbx_limit_host(limit, "slow.example", 0), 0, &w), 2);
    assert_int_equal(start_until_queued(limit, dbx_limit_host(limit, "other.example", 0), 0, &w),
                     5);
    /* An override leaving the rate at 0 keeps the default rate. */
    narrow = dbx_limit_host(limit, "narrow.example", 0);
    v = dbx_limit_values(limit, narrow);
    assert_true(v.rate == 5.0);
    assert_int_equal(v.max_concurrent, 1);
    assert_true(dbx_limit_admit(limit, narrow, &w, 0));
    dbx_limit_started(narrow);
    assert_false(dbx_limit_admit(limit, narrow, &w, 0));
    dbx_limit_free(limit);
}

static void test_reload_applies_to_known_workspaces(void **state)
{
    struct dbx_limit *limit = new_limit(1, 0);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_settings faster = {.rate_limit_rps = 100};
    struct dbx_limit_settings capped = {.rate_limit_rps = 0, .max_concurrent_requests = 1};
    struct dbx_limit_waiter w = {.deadline_ms = FAR_DEADLINE};
    (void)state;

    assert_int_equal(start_until_queued(limit, h, 0, &w), 1);
    dbx_limit_take_all(limit);
    /* At 1 request/s nothing would start 10 ms later; at 100/s one does. */
    dbx_limit_configure(limit, &faster);
    assert_ptr_equal(dbx_limit_host(limit, "a.example", 10), h);
    assert_true(dbx_limit_admit(limit, h, &w, 10));
    dbx_limit_started(h);

    dbx_limit_configure(limit, &capped);
    assert_false(dbx_limit_admit(limit, h, &w, 20));
    dbx_limit_free(limit);
}

static void test_queued_request_expires_before_its_deadline(void **state)
{
    struct dbx_limit *limit = new_limit(0, 1);
    struct dbx_limit_host *h = dbx_limit_host(limit, "a.example", 0);
    struct dbx_limit_waiter later = {.deadline_ms = 10000}, sooner = {.deadline_ms = 1000}, *next;
    bool expired = false;
    int64_t wait;
    (void)state;

    assert_true(dbx_limit_admit(limit, h, &later, 0));
    dbx_limit_started(h);
    assert_false(dbx_limit_admit(limit, h, &later, 0));
    assert_false(dbx_limit_admit(limit, h, &sooner, 0));
    assert_null(dbx_limit_next(limit, 1000 - MIN_LEFT, MIN_LEFT, &expired, &wait));
    /* Less than MIN_LEFT before its deadline: given back as expired even
     * though it is not at the head of the queue. */
    next = dbx_limit_next(limit, 1000 - MIN_LEFT + 1, MIN_LEFT, &expired, &wait);
    assert_ptr_equal(next, &sooner);
    assert_true(expired);
    assert_null(dbx_limit_next(limit, 1000, MIN_LEFT, &expired, &wait));
    assert_ptr_equal(dbx_limit_take_all(limit), &later);
    dbx_limit_free(limit);
}

static void test_take_all_empties_every_queue(void **state)
{
    struct dbx_limit *limit = new_limit(1, 0);
    struct dbx_limit_waiter w[4];
    struct dbx_limit_waiter *all;
    bool expired;
    int64_t wait;
    size_t n = 0;
    (void)state;

    for (int i = 0; i < 2; i++) {
        struct dbx_limit_host *h = dbx_limit_host(limit, i ? "b.example" : "a.example", 0);
        assert_int_equal(start_until_queued(limit, h, 0, &w[2 * i]), 1);
        w[2 * i + 1].deadline_ms = FAR_DEADLINE;
        assert_false(dbx_limit_admit(limit, h, &w[2 * i + 1], 0));
    }
    for (all = dbx_limit_take_all(limit); all; all = all->next)
        n++;
    assert_int_equal(n, 4);
    assert_null(dbx_limit_next(limit, 100000, MIN_LEFT, &expired, &wait));
    assert_int_equal(wait, INT64_MAX);
    dbx_limit_free(limit);
}

static void test_idle_workspaces_are_bounded(void **state)
{
    struct dbx_limit *limit = new_limit(1, 0);
    struct dbx_limit_host *busy = dbx_limit_host(limit, "busy.example", 0);
    struct dbx_limit_waiter w = {.deadline_ms = FAR_DEADLINE};
    char name[64];
    (void)state;

    assert_true(dbx_limit_admit(limit, busy, &w, 0));
    dbx_limit_started(busy);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "idle-%d.example", i);
        assert_non_null(dbx_limit_host(limit, name, 0));
    }
    assert_true(dbx_limit_hosts_count(limit) <= 1000);
    /* A workspace with a request in flight keeps its entry and its state:
     * its one token is still spent. */
    assert_ptr_equal(dbx_limit_host(limit, "busy.example", 0), busy);
    assert_false(dbx_limit_admit(limit, busy, &w, 0));
    dbx_limit_take_all(limit);
    dbx_limit_free(limit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_limits_never_queue),
        cmocka_unit_test(test_burst_is_the_rate_by_default),
        cmocka_unit_test(test_configured_burst),
        cmocka_unit_test(test_refill_over_time),
        cmocka_unit_test(test_queue_is_first_come_first_served),
        cmocka_unit_test(test_concurrency_cap),
        cmocka_unit_test(test_overrides_apply_to_their_instance_only),
        cmocka_unit_test(test_reload_applies_to_known_workspaces),
        cmocka_unit_test(test_queued_request_expires_before_its_deadline),
        cmocka_unit_test(test_take_all_empties_every_queue),
        cmocka_unit_test(test_idle_workspaces_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
