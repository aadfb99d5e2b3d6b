/*
 * notify.c - systemd notifications and the watchdog thread.
 *
 * The watchdog thread owns nothing but its timers: it sleeps on a condition
 * variable (CLOCK_MONOTONIC, so wall-clock steps do not bunch or starve the
 * pings) until the next ping or status refresh is due or stop is asked for.
 * It pings at half the interval systemd gave, as sd_watchdog_enabled(3)
 * recommends, and asks alive() before each ping: a loop that stopped making
 * progress must let systemd's timer run out rather than be covered for.
 * Callbacks run without the lock held.
 */
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "clock.h"

#define DEFAULT_STATUS_INTERVAL_MS 5000
#define STATUS_SIZE 512

struct notify_watchdog {
    struct notify_watchdog_settings settings;
    int64_t ping_every_ms; /* 0: watchdog disabled, status refresh only */
    pthread_t thread;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    bool stopping;       /* guarded by lock */
};

/* One STATUS= line: a newline would start a new assignment. */
static void one_line(char *text)
{
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int notify_ready(void)
{
    return sd_notify(0, "READY=1");
}

int notify_stopping(void)
{
    return sd_notify(0, "STOPPING=1");
}

int notify_status(const char *format, ...)
{
    char line[STATUS_SIZE + 8] = "STATUS=";
    va_list ap;

    va_start(ap, format);
    vsnprintf(line + 7, sizeof(line) - 7, format, ap);
    va_end(ap);
    one_line(line);
    return sd_notify(0, line);
}

/* Appends "STATUS=<summary>" from the callback to `out` (which has room for it). */
static void append_status(const struct notify_watchdog_settings *s, char *out, size_t size)
{
    char summary[STATUS_SIZE] = "";
    size_t len = strlen(out);

    s->status(s->ctx, summary, sizeof(summary));
    summary[sizeof(summary) - 1] = '\0';
    one_line(summary);
    snprintf(out + len, size - len, "%sSTATUS=%s", len ? "\n" : "", summary);
}

static struct timespec monotonic_at(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    return ts;
}

static void *watchdog_main(void *arg)
{
    struct notify_watchdog *w = arg;
    const struct notify_watchdog_settings *s = &w->settings;
    int64_t now = clock_now_ms();
    /* The start sent the first ping and status already. */
    int64_t next_ping = w->ping_every_ms ? now + w->ping_every_ms : INT64_MAX;
    int64_t next_status = s->status ? now + s->status_interval_ms : INT64_MAX;

    for (;;) {
        char message[STATUS_SIZE + 32] = "";
        int64_t due = next_ping < next_status ? next_ping : next_status;
        bool stopping;

        pthread_mutex_lock(&w->lock);
        while (!w->stopping && clock_now_ms() < due) {
            struct timespec until = monotonic_at(due);
            if (pthread_cond_timedwait(&w->wake, &w->lock, &until) == ETIMEDOUT)
                break;
        }
        stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stopping)
            break;

        now = clock_now_ms();
        if (now >= next_ping) {
            if (s->alive(s->ctx))
                snprintf(message, sizeof(message), "WATCHDOG=1");
            next_ping += w->ping_every_ms;
            /* After a stall (suspend, overload) keep the rhythm rather than burst. */
            if (next_ping <= now)
                next_ping = now + w->ping_every_ms;
        }
        if (now >= next_status) {
            append_status(s, message, sizeof(message));
            next_status = now + s->status_interval_ms;
        }
        if (message[0])
            (void)sd_notify(0, message);
    }
    return NULL;
}

int notify_watchdog_start(const struct notify_watchdog_settings *settings,
                          struct notify_watchdog **ret_watchdog)
{
    struct notify_watchdog *w = NULL;
    pthread_condattr_t attr;
    char first[STATUS_SIZE + 32] = "";
    uint64_t usec = 0;
    int r;

    if (!settings || !settings->alive)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->settings = *settings;
    if (w->settings.status_interval_ms <= 0)
        w->settings.status_interval_ms = DEFAULT_STATUS_INTERVAL_MS;
    /* WATCHDOG_PID naming another process (we were forked) also means "not for us". */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        w->ping_every_ms = (int64_t)(usec / 2000);
        if (w->ping_every_ms < 1)
            w->ping_every_ms = 1;
    }
    if (!w->ping_every_ms && !w->settings.status) {
        r = 0;
        goto out;
    }

    /* The first message also tells whether a service manager listens at all:
     * sd_notify() returns 0 when NOTIFY_SOCKET is unset. */
    if (w->ping_every_ms && w->settings.alive(w->settings.ctx))
        snprintf(first, sizeof(first), "WATCHDOG=1");
    if (w->settings.status)
        append_status(&w->settings, first, sizeof(first));
    if (first[0] && sd_notify(0, first) == 0) {
        r = 0;
        goto out;
    }

    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    r = -pthread_create(&w->thread, NULL, watchdog_main, w);
    if (r < 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        goto out;
    }
    pthread_setname_np(w->thread, "fdc-watchdog");
    *ret_watchdog = w;
    w = NULL;
    r = 1;
out:
    free(w);
    if (r == 0)
        *ret_watchdog = NULL;
    return r;
}

struct notify_watchdog *notify_watchdog_stop(struct notify_watchdog *watchdog)
{
    if (!watchdog)
        return NULL;
    pthread_mutex_lock(&watchdog->lock);
    watchdog->stopping = true;
    pthread_cond_signal(&watchdog->wake);
    pthread_mutex_unlock(&watchdog->lock);
    pthread_join(watchdog->thread, NULL);
    pthread_cond_destroy(&watchdog->wake);
    pthread_mutex_destroy(&watchdog->lock);
    free(watchdog);
    return NULL;
}
