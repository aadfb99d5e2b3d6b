/*
 * runs.h - what the daemon knows about recent runs: a bounded map keyed by
 * (instance, run_id, credential) that coalesces concurrent status reads, can
 * answer repeated polls from memory, and remembers each run's last known
 * phase.
 *
 * The credential is a tag of the token a caller reads the run with (""
 * for the connector's own token; a hash for a token the call brought, as
 * Flyte 2's connection does): callers with different tokens never share a
 * fetch, a cached status or a last known phase, so a call is never answered
 * with what another identity was allowed to read. The map keeps the tag,
 * never the token.
 *
 * Why: propeller polls every running task, several propellers may poll the
 * same run, and every failed GetTask counts against the task (see
 * agent.c). Sharing one runs/get between concurrent callers keeps us under
 * the workspace's rate limits; the last known phase lets a poll that meets
 * Databricks trouble answer "still RUNNING, status not refreshed" instead of
 * an error.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the map and is never held while calling out.
 */
#ifndef FDC_RUNS_H
#define FDC_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phase.h"

struct runs;

/* Intrusive link: a caller embeds it in whatever represents its call. */
struct runs_waiter {
    struct runs_waiter *next;
};

struct runs_settings {
    size_t max_runs;         /* entries kept; least recently polled go first */
    int64_t status_ttl_ms;   /* answer a running run's poll from memory; 0: never */
    int64_t terminal_ttl_ms; /* same for a finished run's result; 0: never */
};

enum runs_lookup {
    RUNS_CACHED,      /* *ret_cached holds a fresh status: answer with it */
    RUNS_JOINED,      /* a fetch is under way: the waiter comes back from runs_fetched() */
    RUNS_FETCH,       /* the caller fetches now, then calls runs_fetched() with the id */
    RUNS_FETCH_ALONE, /* no memory to track the run: fetch and answer the waiter directly */
};

/* Gives a map (runs_free) or NULL on OOM. */
struct runs *runs_new(const struct runs_settings *settings);
struct runs *runs_free(struct runs *runs);

/*
 * Looks `instance`/`run_id` as read with `credential` (a tag without '\n'; "" for the
 * connector's own token) up at time `now_ms`. For RUNS_JOINED and
 * RUNS_FETCH the waiter is registered (borrowed until runs_fetched() hands
 * it back); RUNS_FETCH also sets *ret_fetch_id, which the fetcher passes to
 * runs_fetched(). For RUNS_CACHED, *ret_cached gets a copy (free with
 * phase_result_done()). For RUNS_CACHED and RUNS_FETCH_ALONE the waiter is
 * not registered.
 */
enum runs_lookup runs_lookup(struct runs *runs, const char *instance, const char *run_id,
                             const char *credential, int64_t now_ms, struct runs_waiter *waiter,
                             struct phase_result *ret_cached, uint64_t *ret_fetch_id);

struct runs_outcome {
    struct runs_waiter *waiters;    /* every caller waiting for this fetch, oldest first */
    bool has_last_known;            /* a failed fetch: *last_known holds the run's last phase */
    struct phase_result last_known; /* owned by the caller: phase_result_done() */
    int64_t trouble_since_ms;       /* a failed fetch: when refreshes started failing */
};

/*
 * Ends a fetch (of the key runs_lookup() was given). `fresh` is the new status (copied), or NULL
 * when the fetch failed with transient trouble. `forget` drops the entry (the run no longer
 * exists). Fills *ret with the waiters to answer and, after a failure, the
 * last status seen for the run, if any, with the time refreshes started
 * failing. A last status is something Databricks said, never invented; a
 * terminal one is final and may be answered as it is.
 */
void runs_fetched(struct runs *runs, const char *instance, const char *run_id,
                  const char *credential, uint64_t fetch_id, const struct phase_result *fresh,
                  bool forget, int64_t now_ms, struct runs_outcome *ret);

/* How one waiting GetTask is answered once its fetch ends: runs_decide_answer(). */
enum runs_answer_kind {
    RUNS_ANSWER_FRESH,      /* the status just fetched */
    RUNS_ANSWER_GONE,       /* the run no longer exists: FAILED (RUN_NOT_FOUND), not recoverable */
    RUNS_ANSWER_LAST_KNOWN, /* the fetch failed: the last status Databricks gave for the run */
    RUNS_ANSWER_ERROR,      /* nothing Databricks said applies: an error naming the trouble */
    _RUNS_ANSWER_MAX,
};

/* How a fetch ended; every pointer borrows for the runs_decide_answer() call. */
struct runs_fetch_end {
    const char *instance;
    const char *run_id;
    const struct phase_result *fresh;   /* the new status; NULL when the fetch failed */
    bool gone;                          /* Databricks says the run does not exist */
    bool transient;                     /* trouble that may pass, not a refused token or request */
    const char *trouble;                /* what went wrong (Databricks' words when gone) */
    const struct runs_outcome *outcome; /* from runs_fetched(); NULL: fetched alone */
};

#define RUNS_ANSWER_MESSAGE_SIZE 1536

struct runs_answer {
    enum runs_answer_kind kind;
    const struct phase_result *status;      /* FRESH, LAST_KNOWN: what to answer, borrowed from the
                                             * fetch end (fresh, or outcome->last_known) */
    char message[RUNS_ANSWER_MESSAGE_SIZE]; /* not "": answer it instead of status's message
                                             * (GONE, and LAST_KNOWN for a run not over) */
};

/*
 * Decides what a GetTask waiting for the fetch `end` answers, at time `now_ms`: the fresh
 * status; FAILED for a run that is gone; after transient trouble the run's last known status,
 * a phase that is not final saying "status not refreshed: <trouble> (for N s); last known:
 * <message>"; else an error. Fills *ret. Pure: touches no map.
 */
void runs_decide_answer(const struct runs_fetch_end *end, int64_t now_ms, struct runs_answer *ret);

/* What runs/get-output said about a finished run, as GetTask shows it (run_output.h). */
struct runs_output {
    char *error_text;      /* owns; NULL: none */
    char *notebook_result; /* owns; NULL: none */
    bool notebook_result_truncated;
};

/* Frees o's strings and NULLs them; NULL-safe and idempotent. */
void runs_output_done(struct runs_output *o);

/*
 * True when runs/get-output was already asked about this tracked run: *ret gets a copy of
 * what it said (free with runs_output_done(); empty when the request failed, which is not
 * repeated either). False when it was not asked yet, the run is not tracked, or memory ran out
 * (then *ret is empty and the caller asks; one more request is the only cost).
 */
bool runs_output_lookup(struct runs *runs, const char *instance, const char *run_id,
                        const char *credential, struct runs_output *ret);

/* Remembers what runs/get-output said about a tracked run (copied); `output` NULL: the request
 * failed. A run not tracked is left alone. */
void runs_output_store(struct runs *runs, const char *instance, const char *run_id,
                       const char *credential, const struct runs_output *output);

/*
 * Records that a GetTask for the run answered `phase`. Returns true when that differs from the
 * previous answer for the run, or there was none, or the run is not tracked: the answer is
 * news (an info log line); false when it repeats the last one (debug).
 */
bool runs_note_answer(struct runs *runs, const char *instance, const char *run_id,
                      const char *credential, enum phase phase);

/* Number of runs tracked (tests, metrics). */
size_t runs_count(struct runs *runs);

/* Deep copy of a phase result. Returns 0 or -ENOMEM (then *dst is zeroed). */
int runs_copy_result(struct phase_result *dst, const struct phase_result *src);

#endif
