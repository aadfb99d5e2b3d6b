/*
 * dbx_limit.c - per-workspace request limits: token bucket, concurrency
 * cap and the queue of requests waiting for them.
 *
 * Owns one `struct host` per workspace seen lately, in a list (a daemon
 * talks to a handful of workspaces; the list is bounded below). The limits
 * are looked up at each use rather than stored in a host, so a reload
 * applies to workspaces already known. Pure: time comes from the caller.
 *
 * Threads: none of its own; one caller at a time.
 */
#include "dbx_limit.h"

#include <stdlib.h>
#include <string.h>

/* Entries kept before idle ones are dropped. */
#define HOSTS_SOFT_MAX 256
/* Longest wait dbx_limit_next() suggests while requests are queued: their
 * deadlines must be noticed even when no token is due. */
#define RECHECK_MS 50

struct dbx_limit_host {
    struct dbx_limit_host *next;
    char *instance;
    double tokens;
    int64_t refilled_ms;
    long active;
    struct dbx_limit_waiter *queue_head, *queue_tail;
};

struct dbx_limit {
    struct dbx_limit_settings settings;
    struct dbx_limit_host *hosts;
    size_t hosts_count;
    size_t queued; /* over every host: dbx_limit_next() is a no-op at 0 */
};

struct dbx_limit *dbx_limit_new(const struct dbx_limit_settings *settings)
{
    struct dbx_limit *limit = calloc(1, sizeof(*limit));

    if (limit)
        limit->settings = *settings;
    return limit;
}

static void host_free(struct dbx_limit_host *h)
{
    free(h->instance);
    free(h);
}

struct dbx_limit *dbx_limit_free(struct dbx_limit *limit)
{
    if (!limit)
        return NULL;
    while (limit->hosts) {
        struct dbx_limit_host *next = limit->hosts->next;
        host_free(limit->hosts);
        limit->hosts = next;
    }
    free(limit);
    return NULL;
}

void dbx_limit_configure(struct dbx_limit *limit, const struct dbx_limit_settings *settings)
{
    limit->settings = *settings;
}

struct dbx_limit_values dbx_limit_values(const struct dbx_limit *limit,
                                         const struct dbx_limit_host *host)
{
    const struct dbx_limit_settings *s = &limit->settings;
    struct dbx_limit_values v = {
        .rate = (double)s->rate_limit_rps,
        .max_concurrent = s->max_concurrent_requests,
    };
    long burst = 0;

    for (size_t i = 0; i < s->limits_count; i++) {
        if (strcmp(s->limits[i].instance, host->instance) != 0)
            continue;
        if (s->limits[i].rate_limit_rps > 0)
            v.rate = (double)s->limits[i].rate_limit_rps;
        if (s->limits[i].max_concurrent_requests > 0)
            v.max_concurrent = s->limits[i].max_concurrent_requests;
        burst = s->limits[i].burst;
        break;
    }
    v.burst = burst > 0 ? (double)burst : (v.rate >= 1 ? v.rate : 1);
    return v;
}

static void refill(struct dbx_limit_host *h, const struct dbx_limit_values *v, int64_t now)
{
    if (v->rate <= 0) {
        h->tokens = v->burst;
    } else {
        h->tokens += (double)(now - h->refilled_ms) * v->rate / 1000.0;
        if (h->tokens > v->burst)
            h->tokens = v->burst;
    }
    h->refilled_ms = now;
}

/* True when one more request may start now; takes its token if so. */
static bool take(const struct dbx_limit *limit, struct dbx_limit_host *h, int64_t now)
{
    struct dbx_limit_values v = dbx_limit_values(limit, h);

    if (v.max_concurrent > 0 && h->active >= v.max_concurrent)
        return false;
    if (v.rate <= 0)
        return true;
    refill(h, &v, now);
    if (h->tokens < 1.0)
        return false;
    h->tokens -= 1.0;
    return true;
}

/* Milliseconds until take() could succeed for the rate (not the cap). */
static int64_t next_token_ms(const struct dbx_limit *limit, const struct dbx_limit_host *h)
{
    struct dbx_limit_values v = dbx_limit_values(limit, h);

    if (v.rate <= 0 || h->tokens >= 1.0)
        return 0;
    return (int64_t)((1.0 - h->tokens) * 1000.0 / v.rate) + 1;
}

static void drop_idle_hosts(struct dbx_limit *limit)
{
    struct dbx_limit_host **link = &limit->hosts;

    while (*link) {
        struct dbx_limit_host *h = *link;
        if (h->active == 0 && !h->queue_head) {
            *link = h->next;
            host_free(h);
            limit->hosts_count--;
        } else {
            link = &h->next;
        }
    }
}

struct dbx_limit_host *dbx_limit_host(struct dbx_limit *limit, const char *instance, int64_t now)
{
    struct dbx_limit_host *h;

    for (h = limit->hosts; h; h = h->next)
        if (strcmp(h->instance, instance) == 0)
            return h;
    if (limit->hosts_count >= HOSTS_SOFT_MAX)
        drop_idle_hosts(limit);
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->instance = strdup(instance);
    if (!h->instance) {
        free(h);
        return NULL;
    }
    h->refilled_ms = now;
    h->tokens = dbx_limit_values(limit, h).burst;
    h->next = limit->hosts;
    limit->hosts = h;
    limit->hosts_count++;
    return h;
}

bool dbx_limit_admit(struct dbx_limit *limit, struct dbx_limit_host *host,
                     struct dbx_limit_waiter *waiter, int64_t now)
{
    if (!host->queue_head && take(limit, host, now))
        return true;
    waiter->next = NULL;
    if (host->queue_tail)
        host->queue_tail->next = waiter;
    else
        host->queue_head = waiter;
    host->queue_tail = waiter;
    limit->queued++;
    return false;
}

void dbx_limit_started(struct dbx_limit_host *host)
{
    host->active++;
}

void dbx_limit_finished(struct dbx_limit_host *host)
{
    host->active--;
}

/* Unlinks `w` (after `prev`, NULL for the head) from `h`'s queue. */
static struct dbx_limit_waiter *dequeue(struct dbx_limit *limit, struct dbx_limit_host *h,
                                        struct dbx_limit_waiter *prev, struct dbx_limit_waiter *w)
{
    if (prev)
        prev->next = w->next;
    else
        h->queue_head = w->next;
    if (h->queue_tail == w)
        h->queue_tail = prev;
    w->next = NULL;
    limit->queued--;
    return w;
}

struct dbx_limit_waiter *dbx_limit_next(struct dbx_limit *limit, int64_t now, int64_t min_left_ms,
                                        bool *ret_expired, int64_t *ret_wait_ms)
{
    int64_t wait = INT64_MAX;

    if (limit->queued == 0)
        goto none;
    for (struct dbx_limit_host *h = limit->hosts; h; h = h->next) {
        struct dbx_limit_waiter *prev = NULL;
        int64_t host_wait;

        /* Expired requests first, anywhere in the queue. */
        for (struct dbx_limit_waiter *w = h->queue_head; w; prev = w, w = w->next) {
            if (w->deadline_ms - now < min_left_ms) {
                *ret_expired = true;
                return dequeue(limit, h, prev, w);
            }
        }
        if (!h->queue_head)
            continue;
        if (take(limit, h, now)) {
            *ret_expired = false;
            return dequeue(limit, h, NULL, h->queue_head);
        }
        /* Waiting for the cap: a finishing transfer is the caller's cue. */
        host_wait = next_token_ms(limit, h);
        if (host_wait <= 0 || host_wait > RECHECK_MS)
            host_wait = RECHECK_MS;
        if (host_wait < wait)
            wait = host_wait;
    }
none:
    *ret_wait_ms = wait;
    return NULL;
}

struct dbx_limit_waiter *dbx_limit_take_all(struct dbx_limit *limit)
{
    struct dbx_limit_waiter *all = NULL, **tail = &all;

    for (struct dbx_limit_host *h = limit->hosts; h; h = h->next) {
        *tail = h->queue_head;
        if (h->queue_tail)
            tail = &h->queue_tail->next;
        h->queue_head = h->queue_tail = NULL;
    }
    limit->queued = 0;
    return all;
}

size_t dbx_limit_hosts_count(const struct dbx_limit *limit)
{
    return limit->hosts_count;
}
