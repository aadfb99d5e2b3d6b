/*
 * clock.h - the one time scale for deadlines: CLOCK_MONOTONIC milliseconds.
 * gRPC deadlines are converted to it (server.c) and the Databricks client
 * schedules retries on it (dbx.c).
 */
#ifndef FDC_CLOCK_H
#define FDC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
