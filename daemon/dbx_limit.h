/*
 * dbx_limit.h - the connector's own limits on Databricks requests, per
 * workspace: a token bucket for the request rate, a cap on requests in
 * flight, and a first-come, first-served queue of the requests waiting for
 * either. Pure: the caller passes the time (clock_now_ms()'s scale) and
 * starts the requests; nothing here sleeps, allocates per request or logs.
 *
 * Threads: one at a time (in the daemon, the loop thread).
 */
#ifndef FDC_DBX_LIMIT_H
#define FDC_DBX_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct dbx_limit;      /* every workspace seen lately */
struct dbx_limit_host; /* one workspace; owned by the dbx_limit */

struct dbx_limit_settings {
    long rate_limit_rps;          /* every workspace's rate; 0: none */
    long max_concurrent_requests; /* every workspace's cap; 0: none */
    /* Per-instance overrides, borrowed until the next dbx_limit_configure()
     * or dbx_limit_free(); a 0 field there means "the default above". */
    const struct config_instance_limit *limits;
    size_t limits_count;
};

/* The limits in force for one workspace. */
struct dbx_limit_values {
    double rate;         /* requests a second; 0: none */
    double burst;        /* requests that may start at once after a quiet spell */
    long max_concurrent; /* 0: none */
};

/* A request waiting for its workspace's limits; embedded in the caller's
 * request, which stays the caller's (the limiter only links it). */
struct dbx_limit_waiter {
    struct dbx_limit_waiter *next; /* the limiter's while queued */
    int64_t deadline_ms;           /* set by the caller before dbx_limit_admit() */
};

/* Gives a limiter (dbx_limit_free) with `settings` (copied; see above for
 * the overrides), or NULL when out of memory. */
struct dbx_limit *dbx_limit_new(const struct dbx_limit_settings *settings);

/* Frees the limiter and its hosts; waiters still queued are forgotten, not
 * freed (take them first with dbx_limit_take_all()). NULL-safe; returns NULL. */
struct dbx_limit *dbx_limit_free(struct dbx_limit *limit);

/* New limits, for every workspace from now on, known ones included; a
 * bucket keeps its tokens up to the new burst. */
void dbx_limit_configure(struct dbx_limit *limit, const struct dbx_limit_settings *settings);

/*
 * Finds or makes the entry of `instance` (a full bucket when new). Past a
 * few hundred entries, those of idle workspaces (nothing in flight, nothing
 * queued) are dropped, so an "allow any instance" set-up stays bounded.
 * Gives an entry owned by the limiter, valid until the next call of this
 * function, and beyond while a request of it is in flight or queued; NULL
 * when out of memory.
 */
struct dbx_limit_host *dbx_limit_host(struct dbx_limit *limit, const char *instance, int64_t now);

/*
 * True when a request to `host` may start now (it took a token; call
 * dbx_limit_started() when its transfer does); otherwise queues `waiter`
 * behind the ones already waiting and returns false. A request never
 * overtakes one queued before it.
 */
bool dbx_limit_admit(struct dbx_limit *limit, struct dbx_limit_host *host,
                     struct dbx_limit_waiter *waiter, int64_t now);

/* A transfer to `host` started / finished: counts it against the cap. */
void dbx_limit_started(struct dbx_limit_host *host);
void dbx_limit_finished(struct dbx_limit_host *host);

/*
 * The next queued request to act on, dequeued, or NULL. First those whose
 * deadline is less than `min_left_ms` away (*ret_expired true: answer them,
 * the limits used up their time), then those the limits now let start
 * (*ret_expired false; a token was taken). With NULL, *ret_wait_ms says how
 * soon to ask again: INT64_MAX when nothing is queued, otherwise at most
 * 50 ms so that deadlines are noticed (a finishing transfer should make the
 * caller ask sooner).
 */
struct dbx_limit_waiter *dbx_limit_next(struct dbx_limit *limit, int64_t now, int64_t min_left_ms,
                                        bool *ret_expired, int64_t *ret_wait_ms);

/* Dequeues every waiting request, as a list linked through `next`, for an
 * answer at shutdown. */
struct dbx_limit_waiter *dbx_limit_take_all(struct dbx_limit *limit);

/* The limits in force for `host` now. */
struct dbx_limit_values dbx_limit_values(const struct dbx_limit *limit,
                                         const struct dbx_limit_host *host);

/* Number of workspaces the limiter keeps an entry for. */
size_t dbx_limit_hosts_count(const struct dbx_limit *limit);

#endif
