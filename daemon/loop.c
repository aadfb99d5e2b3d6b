/*
 * loop.c - the one thread that serves gRPC and drives the HTTPS transfers.
 *
 * Why one thread. With gRPC worker threads handing each call to a separate
 * curl thread, the profile put the daemon's cost beyond its two libraries
 * in the hand-off: a futex and a curl_multi_wakeup() write per call, and a
 * worker woken again to take each reply's completion (docs/PERFORMANCE.md,
 * fix 4: about a third less CPU a call without it). Here a GetTask is received,
 * its Databricks request goes out in the same round, and the answer is
 * sent and freed on this thread, with no wake-up between. Nothing on it
 * blocks: transfers are asynchronous and handlers never wait, so a slow
 * workspace does not hold up other calls.
 *
 * A round: handle what the source (gRPC) has ready, at most
 * SOURCE_DRAIN_MAX events, so that calls answered on the spot (health
 * checks, refusals) cannot keep the transfers waiting; then one round of
 * the engine (http_run(): work handed over from other threads, the clients'
 * due work, libcurl, finished transfers), which sends what the handlers
 * just queued; then sleep in curl_multi_poll() on the transfers' sockets
 * and the source's fd.
 *
 * Why the timed wake-ups. The source's fd, gRPC's epoll set
 * (server_epoll.c), polls readable only while a socket has an event gRPC
 * has not collected. Two kinds of work do not show there: completions
 * queued by gRPC's own threads (timers, its executor), and I/O events gRPC
 * already collected but handles one per poll (up to 100 from one
 * epoll_wait). So after any activity the loop sleeps at most
 * SOURCE_BUSY_POLL_MS for SOURCE_QUIET_ROUNDS quiet rounds, which empties
 * that buffer, then at most SOURCE_IDLE_POLL_MS, which bounds the wait of
 * the first kind. Without a source it still wakes every LOOP_IDLE_MS, so
 * that loop_last_round_ms() shows the watchdog a live thread.
 *
 * Owns the thread and the source; the engine and the source's object are
 * borrowed. Fields shared with other threads are atomics.
 */
#include "loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define LOOP_IDLE_MS 1000
#define SOURCE_BUSY_POLL_MS 1
#define SOURCE_IDLE_POLL_MS 100
/* Quiet: no event handled and the fd not readable. */
#define SOURCE_QUIET_ROUNDS 128
#define SOURCE_DRAIN_MAX 64

struct loop {
    struct http *http;
    pthread_t thread;
    atomic_bool stopping;
    _Atomic int64_t last_round_ms;

    /* Written once by loop_attach_source(), then published by the flag. */
    struct loop_source attached;
    atomic_bool source_attached;

    /* Loop thread only. */
    struct loop_source source; /* handle_ready NULL: none yet */
    int quiet_rounds;          /* rounds since the source last had work */
};

static void loop_round(struct loop *l)
{
    int handled = 0;
    int64_t wait_ms, cap_ms;

    atomic_store(&l->last_round_ms, clock_now_ms());
    if (!l->source.handle_ready && atomic_load(&l->source_attached))
        l->source = l->attached;
    /* The source first: the handlers of new calls queue requests that
     * http_run() sends in this same round. */
    if (l->source.handle_ready) {
        handled = l->source.handle_ready(l->source.ctx, SOURCE_DRAIN_MAX);
        if (handled > 0)
            l->quiet_rounds = 0;
        else if (l->quiet_rounds < SOURCE_QUIET_ROUNDS)
            l->quiet_rounds++;
    }
    wait_ms = http_run(l->http);
    if (wait_ms > LOOP_IDLE_MS)
        wait_ms = LOOP_IDLE_MS;
    if (!l->source.handle_ready) {
        if (wait_ms > 0)
            http_wait(l->http, -1, (int)wait_ms);
        return;
    }
    if (handled == SOURCE_DRAIN_MAX)
        wait_ms = 0; /* the source may have more ready */
    cap_ms = l->quiet_rounds < SOURCE_QUIET_ROUNDS ? SOURCE_BUSY_POLL_MS : SOURCE_IDLE_POLL_MS;
    if (wait_ms > cap_ms)
        wait_ms = cap_ms;
    /* I/O counts as activity even when it completes nothing (a new
     * connection, a PING): gRPC may have collected more events with it than
     * it handles in one round, and those no longer make the fd readable. */
    if (wait_ms > 0 && http_wait(l->http, l->source.fd, (int)wait_ms))
        l->quiet_rounds = 0;
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;

    while (!atomic_load(&l->stopping))
        loop_round(l);
    http_stop(l->http);
    return NULL;
}

struct loop *loop_new(struct http *http, char **reterr_msg)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (!l) {
        *reterr_msg = strdup("out of memory");
        return NULL;
    }
    l->http = http;
    atomic_store(&l->last_round_ms, clock_now_ms());
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        free(l);
        *reterr_msg = strdup("cannot start the loop thread");
        return NULL;
    }
    /* Named for top -H and perf; 15 characters at most. */
    pthread_setname_np(l->thread, "fdc-loop");
    return l;
}

void loop_attach_source(struct loop *loop, const struct loop_source *source)
{
    loop->attached = *source;
    atomic_store(&loop->source_attached, true);
    http_wakeup(loop->http);
}

int64_t loop_last_round_ms(const struct loop *loop)
{
    return atomic_load(&loop->last_round_ms);
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    atomic_store(&loop->stopping, true);
    http_wakeup(loop->http);
    pthread_join(loop->thread, NULL);
    free(loop);
}
