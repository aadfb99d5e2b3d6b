/*
 * loop.h - the daemon's event loop: one thread, "fdc-loop", that drives the
 * transfer engine (http.h) and serves one more source of events beside it
 * (the gRPC server with workers 0), so that a call is received, sent on to
 * Databricks, answered and freed without leaving that thread.
 *
 * Threads: loop_new/loop_free from main; the rest from any thread.
 */
#ifndef FDC_LOOP_H
#define FDC_LOOP_H

#include <stdint.h>

#include "http.h"

struct loop;

/*
 * A source of events the loop serves between transfers. It polls `fd` for
 * POLLIN beside the transfers' sockets, and calls handle_ready(ctx, max)
 * every round: handle what is ready, at most `max` events, without
 * blocking, and give how many were handled (`max`: there may be more; the
 * loop comes back without sleeping, after a turn of the transfers). Rounds
 * come every millisecond or so while the source is busy, and at least ten
 * times a second when it is quiet, for work that does not make `fd`
 * readable (loop.c says which).
 */
struct loop_source {
    int fd;
    int (*handle_ready)(void *ctx, int max);
    void *ctx;
};

/* Starts the thread driving `http` (borrowed; must outlive the loop).
 * Gives a loop (loop_free) or NULL and *reterr_msg. */
struct loop *loop_new(struct http *http, char **reterr_msg);

/* Serves `source` (copied) from the next round on; once. The source must
 * stay usable until loop_free() returns. */
void loop_attach_source(struct loop *loop, const struct loop_source *source);

/*
 * When the loop last began a round, on clock_now_ms()'s scale. A round
 * starts at least once a second, so an old value means the thread is
 * wedged.
 */
int64_t loop_last_round_ms(const struct loop *loop);

/*
 * Stops the thread; before it ends it stops the engine (http_stop()), so
 * every request still queued or in flight is answered, on the loop thread,
 * before this returns. NULL-safe.
 */
void loop_free(struct loop *loop);

#endif
