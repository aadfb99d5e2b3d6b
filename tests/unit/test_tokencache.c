/* Unit tests for daemon/tokencache.c: one fetch per key however many wait, answers from memory
 * until expiry, a background re-validation from the refresh time on (only one at a time), a
 * failed fetch keeping an earlier answer until it expires, invalidation of a refused credential,
 * and the entry limit (eviction of what nobody waits for, never of a fetch under way). Times
 * are passed in, so nothing here sleeps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokencache.h"

static size_t count_waiters(const struct tokencache_waiter *w)
{
    size_t n = 0;

    for (; w; w = w->next)
        n++;
    return n;
}

static void store(struct tokencache *c, const char *key, const char *value, int64_t expires,
                  int64_t refresh, struct tokencache_waiter **ret)
{
    struct tokencache_answer a = {.kind = 7, .value = value, .note = "from the fake"};

    assert_int_equal(tokencache_store(c, key, &a, expires, refresh, ret, NULL), 0);
}

static void test_single_flight(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w[5], *back;
    struct tokencache_answer a;

    (void)state;
    /* the first asks for a fetch, the others join it */
    assert_int_equal(tokencache_lookup(c, "ns/s", 0, &w[0], &a), TOKENCACHE_FETCH);
    for (int i = 1; i < 5; i++)
        assert_int_equal(tokencache_lookup(c, "ns/s", i, &w[i], &a), TOKENCACHE_JOINED);
    /* another key is another fetch */
    {
        struct tokencache_waiter other;

        assert_int_equal(tokencache_lookup(c, "ns/t", 0, &other, &a), TOKENCACHE_FETCH);
        tokencache_failed(c, "ns/t", &back);
        assert_ptr_equal(back, &other);
    }
    store(c, "ns/s", "tok-1", 1000, 800, &back);
    /* every waiter comes back, in the order they came */
    assert_int_equal(count_waiters(back), 5);
    for (int i = 0; i < 5; i++, back = back->next)
        assert_ptr_equal(back, &w[i]);
    /* later lookups are answered from memory */
    assert_int_equal(tokencache_lookup(c, "ns/s", 10, &w[0], &a), TOKENCACHE_HIT);
    assert_int_equal(a.kind, 7);
    assert_string_equal(a.value, "tok-1");
    assert_string_equal(a.note, "from the fake");
    tokencache_free(c);
}

/* A peek answers from memory like a lookup, and otherwise changes nothing. */
static void test_peek(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w, *back;
    struct tokencache_answer a;

    (void)state;
    assert_int_equal(tokencache_peek(c, "k", 0, &a), TOKENCACHE_MISS);
    assert_int_equal(tokencache_count(c), 0);
    assert_int_equal(tokencache_lookup(c, "k", 0, &w, &a), TOKENCACHE_FETCH);
    /* under way, nothing usable yet: a peek neither joins nor starts anything */
    assert_int_equal(tokencache_peek(c, "k", 1, &a), TOKENCACHE_MISS);
    store(c, "k", "v", 1000, 800, &back);
    assert_ptr_equal(back, &w);
    assert_null(back->next);
    assert_int_equal(tokencache_peek(c, "k", 2, &a), TOKENCACHE_HIT);
    assert_string_equal(a.value, "v");
    assert_int_equal(tokencache_peek(c, "k", 800, &a), TOKENCACHE_HIT_REFRESH);
    assert_int_equal(tokencache_peek(c, "k", 801, &a), TOKENCACHE_HIT);
    store(c, "k", "v2", 2000, 1800, &back);
    assert_null(back);
    assert_int_equal(tokencache_peek(c, "k", 2000, &a), TOKENCACHE_MISS);
    tokencache_free(c);
}

static void test_refresh_and_expiry(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w1, w2, *back;
    struct tokencache_answer a;

    (void)state;
    assert_int_equal(tokencache_lookup(c, "k", 0, &w1, &a), TOKENCACHE_FETCH);
    store(c, "k", "old", 1000, 800, &back);
    assert_int_equal(tokencache_lookup(c, "k", 799, &w1, &a), TOKENCACHE_HIT);
    /* from the refresh time: answered, and one background fetch is asked for */
    assert_int_equal(tokencache_lookup(c, "k", 800, &w1, &a), TOKENCACHE_HIT_REFRESH);
    assert_string_equal(a.value, "old");
    assert_int_equal(tokencache_lookup(c, "k", 850, &w1, &a), TOKENCACHE_HIT);
    assert_string_equal(a.value, "old");
    /* the refresh fails: the old answer lasts until its expiry */
    tokencache_failed(c, "k", &back);
    assert_null(back);
    assert_int_equal(tokencache_lookup(c, "k", 900, &w1, &a), TOKENCACHE_HIT_REFRESH);
    /* expired while that refresh is under way: callers wait for it */
    assert_int_equal(tokencache_lookup(c, "k", 1000, &w1, &a), TOKENCACHE_JOINED);
    assert_int_equal(tokencache_lookup(c, "k", 1001, &w2, &a), TOKENCACHE_JOINED);
    store(c, "k", "new", 3000, 2500, &back);
    assert_int_equal(count_waiters(back), 2);
    assert_int_equal(tokencache_lookup(c, "k", 1002, &w1, &a), TOKENCACHE_HIT);
    assert_string_equal(a.value, "new");
    /* expired with nothing under way: a fetch */
    assert_int_equal(tokencache_lookup(c, "k", 3000, &w1, &a), TOKENCACHE_FETCH);
    tokencache_failed(c, "k", &back);
    assert_ptr_equal(back, &w1);
    assert_null(back->next);
    /* that failure left nothing usable: the next call fetches again */
    assert_int_equal(tokencache_lookup(c, "k", 3001, &w1, &a), TOKENCACHE_FETCH);
    tokencache_failed(c, "k", &back);
    tokencache_free(c);
}

/* A time to live of 0: the waiters get the answer, the next call fetches again. */
static void test_not_cached(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w, *back;
    struct tokencache_answer a;

    (void)state;
    assert_int_equal(tokencache_lookup(c, "k", 100, &w, &a), TOKENCACHE_FETCH);
    store(c, "k", "v", 100, 100, &back);
    assert_ptr_equal(back, &w);
    assert_int_equal(tokencache_lookup(c, "k", 100, &w, &a), TOKENCACHE_FETCH);
    tokencache_failed(c, "k", &back);
    tokencache_free(c);
}

/* Answers without a value (a Secret that is absent) are cached like any other. */
static void test_negative_answers(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w, *back;
    struct tokencache_answer a, absent = {.kind = 3, .value = NULL, .note = "HTTP 404"};

    (void)state;
    int previous;

    assert_int_equal(tokencache_lookup(c, "k", 0, &w, &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_store(c, "k", &absent, 500, 400, &back, &previous), 0);
    assert_int_equal(previous, -1);
    assert_int_equal(tokencache_lookup(c, "k", 1, &w, &a), TOKENCACHE_HIT);
    assert_int_equal(a.kind, 3);
    assert_null(a.value);
    assert_string_equal(a.note, "HTTP 404");
    /* the same answer again says so; another one says what it replaced */
    assert_int_equal(tokencache_lookup(c, "k", 400, &w, &a), TOKENCACHE_HIT_REFRESH);
    assert_int_equal(tokencache_store(c, "k", &absent, 900, 800, &back, &previous), 0);
    assert_int_equal(previous, 3);
    assert_int_equal(tokencache_lookup(c, "k", 800, &w, &a), TOKENCACHE_HIT_REFRESH);
    store(c, "k", "v", 1500, 1400, &back);
    assert_int_equal(tokencache_lookup(c, "k", 1400, &w, &a), TOKENCACHE_HIT_REFRESH);
    assert_int_equal(tokencache_store(c, "k", &absent, 2000, 1900, &back, &previous), 0);
    assert_int_equal(previous, 7);
    tokencache_free(c);
}

static void test_invalidate(void **state)
{
    struct tokencache *c = tokencache_new(8);
    struct tokencache_waiter w, w2, *back;
    struct tokencache_answer a;

    (void)state;
    assert_int_equal(tokencache_lookup(c, "i", 0, &w, &a), TOKENCACHE_FETCH);
    store(c, "i", "tok-1", 1000, 900, &back);
    /* a refusal of another (older) value changes nothing */
    tokencache_invalidate(c, "i", "tok-0");
    assert_int_equal(tokencache_lookup(c, "i", 1, &w, &a), TOKENCACHE_HIT);
    /* of this one: the next call fetches anew, and calls after it wait for that */
    tokencache_invalidate(c, "i", "tok-1");
    assert_int_equal(tokencache_lookup(c, "i", 2, &w, &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "i", 3, &w2, &a), TOKENCACHE_JOINED);
    store(c, "i", "tok-2", 1000, 900, &back);
    assert_int_equal(count_waiters(back), 2);
    tokencache_invalidate(c, "absent-key", "tok-2");
    tokencache_free(c);
}

static void test_limit(void **state)
{
    struct tokencache *c = tokencache_new(3);
    struct tokencache_waiter w[6], *back;
    struct tokencache_answer a;

    (void)state;
    /* three fetches under way fill the cache: a fourth key finds no room */
    assert_int_equal(tokencache_lookup(c, "a", 0, &w[0], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "b", 0, &w[1], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "c", 0, &w[2], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "d", 0, &w[3], &a), TOKENCACHE_FULL);
    assert_int_equal(tokencache_count(c), 3);
    store(c, "a", "va", 1000, 900, &back);
    store(c, "b", "vb", 50, 40, &back);
    store(c, "c", "vc", 1000, 900, &back);
    /* touch a later than c */
    assert_int_equal(tokencache_lookup(c, "c", 10, &w[0], &a), TOKENCACHE_HIT);
    assert_int_equal(tokencache_lookup(c, "a", 20, &w[0], &a), TOKENCACHE_HIT);
    /* full: the expired one (b) goes first */
    assert_int_equal(tokencache_lookup(c, "d", 60, &w[3], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_count(c), 3);
    store(c, "d", "vd", 1000, 900, &back);
    /* then the one used longest ago (c) */
    assert_int_equal(tokencache_lookup(c, "e", 70, &w[4], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "d", 71, &w[0], &a), TOKENCACHE_HIT);
    assert_int_equal(tokencache_lookup(c, "a", 72, &w[0], &a), TOKENCACHE_HIT);
    /* c was evicted: it is fetched again, in place of d, used longest ago now */
    assert_int_equal(tokencache_lookup(c, "c", 73, &w[5], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_count(c), 3);
    assert_int_equal(tokencache_lookup(c, "a", 74, &w[0], &a), TOKENCACHE_HIT);
    /* a nobody waits for goes; e and c, under way, stay */
    assert_int_equal(tokencache_lookup(c, "f", 75, &w[1], &a), TOKENCACHE_FETCH);
    assert_int_equal(tokencache_lookup(c, "g", 76, &w[2], &a), TOKENCACHE_FULL);
    store(c, "e", "ve", 1000, 900, &back);
    assert_ptr_equal(back, &w[4]);
    store(c, "c", "vc", 1000, 900, &back);
    assert_ptr_equal(back, &w[5]);
    store(c, "f", "vf", 1000, 900, &back);
    assert_ptr_equal(back, &w[1]);
    tokencache_free(c);
    tokencache_free(NULL);
}

/* Many keys in a small table: every one is found again. */
static void test_many_keys(void **state)
{
    struct tokencache *c = tokencache_new(500);
    struct tokencache_waiter w, *back;
    struct tokencache_answer a;
    char key[32], value[32];

    (void)state;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "ns-%d/databricks-token", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(tokencache_lookup(c, key, 0, &w, &a), TOKENCACHE_FETCH);
        store(c, key, value, 1000, 900, &back);
    }
    assert_int_equal(tokencache_count(c), 500);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "ns-%d/databricks-token", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(tokencache_lookup(c, key, 1, &w, &a), TOKENCACHE_HIT);
        assert_string_equal(a.value, value);
    }
    tokencache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_flight), cmocka_unit_test(test_refresh_and_expiry),
        cmocka_unit_test(test_not_cached),    cmocka_unit_test(test_negative_answers),
        cmocka_unit_test(test_invalidate),    cmocka_unit_test(test_limit),
        cmocka_unit_test(test_many_keys),     cmocka_unit_test(test_peek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
