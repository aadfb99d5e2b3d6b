/*
 * test_runs.c - the run map: coalescing, cache freshness, last known phase,
 * eviction and fetch identity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errmsg.h"
#include "runs.h"

static struct phase_result status(enum phase phase, const char *message)
{
    struct phase_result r = {
        .phase = phase,
        .message = (char *)message,
        .run_page_url = (char *)"https://x/run",
    };
    return r;
}

static size_t count_waiters(const struct runs_waiter *w)
{
    size_t n = 0;
    for (; w; w = w->next)
        n++;
    return n;
}

static struct runs *new_runs(size_t max, int64_t ttl, int64_t terminal_ttl)
{
    struct runs_settings s = {
        .max_runs = max, .status_ttl_ms = ttl, .terminal_ttl_ms = terminal_ttl};
    struct runs *runs = runs_new(&s);
    assert_non_null(runs);
    return runs;
}

static void test_first_fetches_others_join(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_waiter w[100], other;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "In run");
    struct runs_outcome outcome;
    uint64_t id = 0, other_id = 0;
    (void)state;

    assert_int_equal(runs_lookup(runs, "h", "1", "", 0, &w[0], &cached, &id), RUNS_FETCH);
    assert_true(id != 0);
    for (int i = 1; i < 100; i++)
        assert_int_equal(runs_lookup(runs, "h", "1", "", 1, &w[i], &cached, &other_id),
                         RUNS_JOINED);
    /* A different run is independent. */
    assert_int_equal(runs_lookup(runs, "h", "2", "", 1, &other, &cached, &other_id), RUNS_FETCH);
    assert_true(other_id != id);

    runs_fetched(runs, "h", "1", "", id, &fresh, false, 5, &outcome);
    assert_int_equal(count_waiters(outcome.waiters), 100);
    assert_ptr_equal(outcome.waiters, &w[0]); /* oldest first */
    assert_false(outcome.has_last_known);
    /* Fetch done: the next poll fetches again (cache off). */
    assert_int_equal(runs_lookup(runs, "h", "1", "", 6, &w[1], &cached, &id), RUNS_FETCH);
    runs_free(runs);
}

static void test_cache_ttl(void **state)
{
    struct runs *runs = new_runs(10, 1000, 60000);
    struct runs_waiter w;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "In run");
    struct runs_outcome outcome;
    uint64_t id = 0;
    (void)state;

    assert_int_equal(runs_lookup(runs, "h", "1", "", 0, &w, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 100, &outcome);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 1099, &w, &cached, &id), RUNS_CACHED);
    assert_int_equal(cached.phase, PHASE_RUNNING);
    assert_string_equal(cached.message, "In run");
    phase_result_done(&cached);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 1100, &w, &cached, &id), RUNS_FETCH);

    /* Terminal results use their own, longer TTL. */
    fresh = status(PHASE_SUCCEEDED, "done");
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 2000, &outcome);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 61999, &w, &cached, &id), RUNS_CACHED);
    assert_int_equal(cached.phase, PHASE_SUCCEEDED);
    phase_result_done(&cached);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 62000, &w, &cached, &id), RUNS_FETCH);
    runs_free(runs);
}

static void test_last_known_after_trouble(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_waiter w1, w2;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "In run");
    struct runs_outcome outcome;
    uint64_t id = 0;
    (void)state;

    /* Never seen: a failed fetch has nothing to fall back on. */
    assert_int_equal(runs_lookup(runs, "h", "1", "", 0, &w1, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, NULL, false, 10, &outcome);
    assert_false(outcome.has_last_known);
    assert_int_equal(count_waiters(outcome.waiters), 1);

    assert_int_equal(runs_lookup(runs, "h", "1", "", 20, &w1, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 30, &outcome);

    /* Trouble twice: the last known status, and since when. */
    assert_int_equal(runs_lookup(runs, "h", "1", "", 40, &w1, &cached, &id), RUNS_FETCH);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 41, &w2, &cached, &id + 0), RUNS_JOINED);
    runs_fetched(runs, "h", "1", "", id, NULL, false, 50, &outcome);
    assert_true(outcome.has_last_known);
    assert_int_equal(outcome.last_known.phase, PHASE_RUNNING);
    assert_string_equal(outcome.last_known.message, "In run");
    assert_int_equal(outcome.trouble_since_ms, 50);
    assert_int_equal(count_waiters(outcome.waiters), 2);
    phase_result_done(&outcome.last_known);

    assert_int_equal(runs_lookup(runs, "h", "1", "", 60, &w1, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, NULL, false, 70, &outcome);
    assert_int_equal(outcome.trouble_since_ms, 50); /* unchanged while trouble lasts */
    phase_result_done(&outcome.last_known);

    /* Recovery clears the trouble. */
    fresh = status(PHASE_SUCCEEDED, "done");
    assert_int_equal(runs_lookup(runs, "h", "1", "", 80, &w1, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 90, &outcome);
    assert_false(outcome.has_last_known);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 100, &w1, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", "1", "", id, NULL, false, 110, &outcome);
    assert_int_equal(outcome.trouble_since_ms, 110);
    assert_int_equal(outcome.last_known.phase, PHASE_SUCCEEDED);
    phase_result_done(&outcome.last_known);
    runs_free(runs);
}

static void test_cache_not_used_during_trouble(void **state)
{
    struct runs *runs = new_runs(10, 100000, 0);
    struct runs_waiter w;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "In run");
    struct runs_outcome outcome;
    uint64_t id = 0;
    (void)state;

    runs_lookup(runs, "h", "1", "", 0, &w, &cached, &id);
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 0, &outcome);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 1, &w, &cached, &id), RUNS_CACHED);
    phase_result_done(&cached);
    /* The cache entry is still young, but a refresh failed since: a poll
     * must try Databricks again rather than repeat a stale answer as fresh. */
    runs_lookup(runs, "h", "1", "", 100001, &w, &cached, &id);
    runs_fetched(runs, "h", "1", "", id, NULL, false, 100002, &outcome);
    phase_result_done(&outcome.last_known);
    assert_int_equal(runs_lookup(runs, "h", "1", "", 100003, &w, &cached, &id), RUNS_FETCH);
    runs_free(runs);
}

static void test_forget(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_waiter w;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "x");
    struct runs_outcome outcome;
    uint64_t id = 0;
    (void)state;

    runs_lookup(runs, "h", "1", "", 0, &w, &cached, &id);
    runs_fetched(runs, "h", "1", "", id, &fresh, false, 1, &outcome);
    assert_int_equal(runs_count(runs), 1);
    runs_lookup(runs, "h", "1", "", 2, &w, &cached, &id);
    runs_fetched(runs, "h", "1", "", id, NULL, true, 3, &outcome);
    assert_int_equal(count_waiters(outcome.waiters), 1);
    assert_false(outcome.has_last_known);
    assert_int_equal(runs_count(runs), 0);
    runs_free(runs);
}

static void test_eviction_is_lru_and_spares_fetches(void **state)
{
    struct runs *runs = new_runs(3, 0, 0);
    struct runs_waiter w[8];
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "x");
    struct runs_outcome outcome;
    uint64_t id[8] = {0};
    char run[8];
    (void)state;

    for (int i = 0; i < 3; i++) {
        snprintf(run, sizeof(run), "%d", i);
        assert_int_equal(runs_lookup(runs, "h", run, "", i, &w[i], &cached, &id[i]), RUNS_FETCH);
    }
    /* All three are mid-fetch: a fourth run cannot be tracked. */
    assert_int_equal(runs_lookup(runs, "h", "3", "", 3, &w[3], &cached, &id[3]), RUNS_FETCH_ALONE);
    assert_int_equal(runs_count(runs), 3);
    for (int i = 0; i < 3; i++) {
        snprintf(run, sizeof(run), "%d", i);
        runs_fetched(runs, "h", run, "", id[i], &fresh, false, 10, &outcome);
    }
    /* Touch run 0 so that run 1 is the least recently used. */
    assert_int_equal(runs_lookup(runs, "h", "0", "", 11, &w[0], &cached, &id[0]), RUNS_FETCH);
    runs_fetched(runs, "h", "0", "", id[0], &fresh, false, 12, &outcome);
    assert_int_equal(runs_lookup(runs, "h", "3", "", 13, &w[3], &cached, &id[3]), RUNS_FETCH);
    runs_fetched(runs, "h", "3", "", id[3], &fresh, false, 14, &outcome);
    assert_int_equal(runs_count(runs), 3);
    /* Run 2 survived and has a last known status; run 1 was evicted, so a
     * failed fetch of it has none. (Looking run 1 up evicts again: last.) */
    runs_lookup(runs, "h", "2", "", 15, &w[2], &cached, &id[2]);
    runs_fetched(runs, "h", "2", "", id[2], NULL, false, 16, &outcome);
    assert_true(outcome.has_last_known);
    phase_result_done(&outcome.last_known);
    runs_lookup(runs, "h", "1", "", 17, &w[1], &cached, &id[1]);
    runs_fetched(runs, "h", "1", "", id[1], NULL, false, 18, &outcome);
    assert_false(outcome.has_last_known);
    runs_free(runs);
}

static void test_stale_fetch_id_takes_nothing(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_waiter w1, w2;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "x");
    struct runs_outcome outcome;
    uint64_t first = 0, second = 0;
    (void)state;

    runs_lookup(runs, "h", "1", "", 0, &w1, &cached, &first);
    runs_fetched(runs, "h", "1", "", first, &fresh, false, 1, &outcome);
    runs_lookup(runs, "h", "1", "", 2, &w2, &cached, &second);
    assert_true(second != first);
    /* A late completion of an older fetch must not answer the new waiters. */
    runs_fetched(runs, "h", "1", "", first, &fresh, false, 3, &outcome);
    assert_null(outcome.waiters);
    runs_fetched(runs, "h", "1", "", second, &fresh, false, 4, &outcome);
    assert_ptr_equal(outcome.waiters, &w2);
    /* An untracked fetch (id 0) takes nothing either. */
    runs_fetched(runs, "h", "1", "", 0, &fresh, false, 5, &outcome);
    assert_null(outcome.waiters);
    runs_free(runs);
}

static void test_keys_do_not_collide(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_waiter w1, w2;
    struct phase_result cached = {0};
    uint64_t a = 0, b = 0;
    (void)state;

    assert_int_equal(runs_lookup(runs, "h1", "23", "", 0, &w1, &cached, &a), RUNS_FETCH);
    assert_int_equal(runs_lookup(runs, "h12", "3", "", 0, &w2, &cached, &b), RUNS_FETCH);
    assert_int_equal(runs_count(runs), 2);
    runs_free(runs);
}

/* Callers reading with different tokens never share a fetch, a cached status or a last known
 * phase; callers with the same one do. */
static void test_credentials_kept_apart(void **state)
{
    struct runs *runs = new_runs(10, 60000, 0);
    struct runs_waiter own, a1, a2, b;
    struct phase_result cached = {0}, fresh = status(PHASE_RUNNING, "In run");
    struct runs_outcome outcome;
    uint64_t id_own = 0, id_a = 0, id_b = 0, ignored = 0;
    (void)state;

    assert_int_equal(runs_lookup(runs, "h", "1", "", 0, &own, &cached, &id_own), RUNS_FETCH);
    assert_int_equal(runs_lookup(runs, "h", "1", "tag-a", 0, &a1, &cached, &id_a), RUNS_FETCH);
    assert_int_equal(runs_lookup(runs, "h", "1", "tag-a", 0, &a2, &cached, &ignored), RUNS_JOINED);
    assert_true(id_a != id_own);

    runs_fetched(runs, "h", "1", "", id_own, &fresh, false, 1, &outcome);
    assert_ptr_equal(outcome.waiters, &own);
    assert_null(own.next);
    runs_fetched(runs, "h", "1", "tag-a", id_a, &fresh, false, 1, &outcome);
    assert_ptr_equal(outcome.waiters, &a1);
    assert_ptr_equal(a1.next, &a2);

    /* The connector's cached status answers only the connector's callers. */
    assert_int_equal(runs_lookup(runs, "h", "1", "", 2, &own, &cached, &ignored), RUNS_CACHED);
    phase_result_done(&cached);
    assert_int_equal(runs_lookup(runs, "h", "1", "tag-b", 2, &b, &cached, &id_b), RUNS_FETCH);
    /* Trouble for tag-b: nothing tag-b was ever told, so no last known phase. */
    runs_fetched(runs, "h", "1", "tag-b", id_b, NULL, false, 3, &outcome);
    assert_ptr_equal(outcome.waiters, &b);
    assert_false(outcome.has_last_known);
    assert_int_equal(runs_count(runs), 3);
    runs_free(runs);
}

/* What a waiter hears once its fetch ends. */
static void test_decide_answer(void **state)
{
    struct phase_result fresh = status(PHASE_SUCCEEDED, "done");
    struct runs_outcome running = {
        .has_last_known = true,
        .last_known = status(PHASE_RUNNING, "In run"),
        .trouble_since_ms = 1000,
    };
    struct runs_outcome finished = {
        .has_last_known = true,
        .last_known = status(PHASE_FAILED, "boom"),
        .trouble_since_ms = 1000,
    };
    struct runs_outcome silent = {.has_last_known = true, .last_known = {.phase = PHASE_QUEUED}};
    struct runs_outcome never_seen = {.trouble_since_ms = 1000};
    struct runs_fetch_end end = {
        .instance = "h.example.com",
        .run_id = "42",
        .transient = true,
        .trouble = "HTTP 503",
    };
    struct runs_answer a;
    (void)state;

    /* A fresh status is answered as it is, whatever else is known. */
    end.fresh = &fresh;
    end.outcome = &running;
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_FRESH);
    assert_ptr_equal(a.status, &fresh);
    assert_string_equal(a.message, "");
    end.fresh = NULL;

    /* Gone: a final answer naming the run, the workspace and Databricks' words. */
    end.gone = true;
    end.transient = false;
    end.trouble = "Run 42 does not exist.";
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_GONE);
    assert_string_equal(
        a.message, "Databricks run 42 no longer exists on h.example.com (Run 42 does not exist.)");
    end.gone = false;
    end.transient = true;
    end.trouble = "HTTP 503";

    /* Transient trouble, a run not over: its last status, saying it is not fresh. */
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_LAST_KNOWN);
    assert_ptr_equal(a.status, &running.last_known);
    assert_string_equal(a.message, "status not refreshed: HTTP 503 (for 12 s); last known: In run");

    /* A final last status needs no caveat. */
    end.outcome = &finished;
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_LAST_KNOWN);
    assert_ptr_equal(a.status, &finished.last_known);
    assert_string_equal(a.message, "");

    /* A last status without a message still says what happened. */
    end.outcome = &silent;
    runs_decide_answer(&end, 999, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_LAST_KNOWN);
    assert_string_equal(a.message, "status not refreshed: HTTP 503 (for 0 s); last known: ");

    /* Nothing known, a run fetched alone, or trouble that is not transient: an error. */
    end.outcome = &never_seen;
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_ERROR);
    assert_null(a.status);
    end.outcome = NULL;
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_ERROR);
    end.outcome = &running;
    end.transient = false;
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_ERROR);
    assert_string_equal(a.message, "");
}

/* A long last message is cut on a character boundary: the answer stays valid UTF-8, which
 * propeller's decoder requires, and says that it was cut. */
static void test_decide_answer_cuts_on_character(void **state)
{
    char long_message[PHASE_MESSAGE_MAX + 1];
    struct runs_outcome running = {.has_last_known = true, .trouble_since_ms = 1000};
    struct runs_fetch_end end = {.transient = true, .trouble = "HTTP 503", .outcome = &running};
    struct runs_answer a;
    size_t len, at;
    (void)state;

    /* "é" is two bytes: whatever the cut, an odd offset falls inside one character. */
    for (at = 0; at + 2 < sizeof(long_message); at += 2)
        memcpy(long_message + at, "\xc3\xa9", 2);
    long_message[at] = '\0';
    running.last_known = status(PHASE_RUNNING, long_message);
    runs_decide_answer(&end, 13500, &a);
    assert_int_equal(a.kind, RUNS_ANSWER_LAST_KNOWN);
    len = strlen(a.message);
    assert_true(len < sizeof(a.message));
    assert_memory_equal(a.message + len - 3, "...", 3);
    for (size_t i = 0; i < len;) {
        size_t n = errmsg_utf8_len((const unsigned char *)a.message + i);
        assert_true(n > 0);
        i += n;
    }
}

/* Tracks run h/1 with one finished fetch, so that per-run memory has an entry to live in. */
static void track(struct runs *runs, const char *run_id)
{
    struct runs_waiter w;
    struct phase_result cached = {0}, fresh = status(PHASE_FAILED, "failed");
    struct runs_outcome outcome;
    uint64_t id = 0;

    assert_int_equal(runs_lookup(runs, "h", run_id, "", 0, &w, &cached, &id), RUNS_FETCH);
    runs_fetched(runs, "h", run_id, "", id, &fresh, false, 1, &outcome);
}

static void test_output_asked_once(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    struct runs_output out, said = {.error_text = (char *)"ValueError: x",
                                    .notebook_result = (char *)"42",
                                    .notebook_result_truncated = true};
    (void)state;

    /* Not tracked: nothing known, nothing stored. */
    assert_false(runs_output_lookup(runs, "h", "1", "", &out));
    runs_output_store(runs, "h", "1", "", &said);
    assert_false(runs_output_lookup(runs, "h", "1", "", &out));

    track(runs, "1");
    assert_false(runs_output_lookup(runs, "h", "1", "", &out));
    assert_null(out.error_text);
    runs_output_store(runs, "h", "1", "", &said);
    assert_true(runs_output_lookup(runs, "h", "1", "", &out));
    assert_string_equal(out.error_text, "ValueError: x");
    assert_string_equal(out.notebook_result, "42");
    assert_true(out.notebook_result_truncated);
    runs_output_done(&out);
    /* The first answer stays: the run is over, its output does not change. */
    said.error_text = (char *)"other";
    runs_output_store(runs, "h", "1", "", &said);
    assert_true(runs_output_lookup(runs, "h", "1", "", &out));
    assert_string_equal(out.error_text, "ValueError: x");
    runs_output_done(&out);

    /* A failed request is remembered too: not asked again. */
    track(runs, "2");
    runs_output_store(runs, "h", "2", "", NULL);
    assert_true(runs_output_lookup(runs, "h", "2", "", &out));
    assert_null(out.error_text);
    assert_null(out.notebook_result);
    runs_output_done(&out);
    runs_free(runs);
}

static void test_note_answer(void **state)
{
    struct runs *runs = new_runs(10, 0, 0);
    (void)state;

    /* Untracked runs are always news. */
    assert_true(runs_note_answer(runs, "h", "1", "", PHASE_RUNNING));
    assert_true(runs_note_answer(runs, "h", "1", "", PHASE_RUNNING));
    track(runs, "1");
    assert_true(runs_note_answer(runs, "h", "1", "", PHASE_RUNNING));
    assert_false(runs_note_answer(runs, "h", "1", "", PHASE_RUNNING));
    assert_false(runs_note_answer(runs, "h", "1", "", PHASE_RUNNING));
    assert_true(runs_note_answer(runs, "h", "1", "", PHASE_FAILED));
    assert_false(runs_note_answer(runs, "h", "1", "", PHASE_FAILED));
    /* Per run. */
    track(runs, "2");
    assert_true(runs_note_answer(runs, "h", "2", "", PHASE_FAILED));
    runs_free(runs);
}

static void test_copy_result_copies_custom_info(void **state)
{
    uint8_t bytes[] = {0x0a, 0x00, 0xff};
    struct phase_result src = status(PHASE_RUNNING, "x"), dst;
    (void)state;

    src.custom_info = bytes;
    src.custom_info_len = sizeof(bytes);
    assert_int_equal(runs_copy_result(&dst, &src), 0);
    assert_non_null(dst.custom_info);
    assert_ptr_not_equal(dst.custom_info, bytes);
    assert_int_equal(dst.custom_info_len, sizeof(bytes));
    assert_memory_equal(dst.custom_info, bytes, sizeof(bytes));
    phase_result_done(&dst);
    assert_null(dst.custom_info);
    assert_int_equal(dst.custom_info_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_fetches_others_join),
        cmocka_unit_test(test_cache_ttl),
        cmocka_unit_test(test_last_known_after_trouble),
        cmocka_unit_test(test_cache_not_used_during_trouble),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_eviction_is_lru_and_spares_fetches),
        cmocka_unit_test(test_stale_fetch_id_takes_nothing),
        cmocka_unit_test(test_keys_do_not_collide),
        cmocka_unit_test(test_credentials_kept_apart),
        cmocka_unit_test(test_decide_answer),
        cmocka_unit_test(test_decide_answer_cuts_on_character),
        cmocka_unit_test(test_output_asked_once),
        cmocka_unit_test(test_note_answer),
        cmocka_unit_test(test_copy_result_copies_custom_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
