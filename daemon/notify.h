/*
 * notify.h - systemd service notifications (sd_notify(3)): READY=1,
 * STATUS=..., STOPPING=1, and a watchdog thread that sends WATCHDOG=1 only
 * while the daemon proves it is making progress.
 *
 * Everything is a no-op when the service manager gave no NOTIFY_SOCKET
 * (foreground runs, Kubernetes): the functions then return 0.
 *
 * Threads: notify_ready/notify_status/notify_stopping from any thread;
 * notify_watchdog_start/notify_watchdog_stop from main. The callbacks run on
 * the watchdog's own thread.
 */
#ifndef FDC_NOTIFY_H
#define FDC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

struct notify_watchdog;

/* True when the daemon's loops have made progress recently. Must not block. */
typedef bool (*notify_alive_fn)(void *ctx);

/* Writes a one-line summary ("serving: 1234 calls, 3 in flight") into buf. Must not block. */
typedef void (*notify_status_fn)(void *ctx, char *buf, size_t size);

struct notify_watchdog_settings {
    notify_alive_fn alive;   /* required */
    notify_status_fn status; /* NULL: no periodic STATUS= */
    void *ctx;               /* borrowed by both callbacks until notify_watchdog_stop() returns */
    long status_interval_ms; /* how often STATUS= is refreshed; 0: every 5 s */
};

/* Sends READY=1. Returns > 0 when sent, 0 without NOTIFY_SOCKET, -errno on failure. */
int notify_ready(void);

/* Sends STOPPING=1. Returns as notify_ready(). */
int notify_stopping(void);

/*
 * Sends STATUS=<formatted text>; newlines become spaces, as one STATUS=
 * assignment is one line. Returns as notify_ready().
 */
int notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*
 * Starts the watchdog thread when the service manager asked for pings
 * (WatchdogSec=, read with sd_watchdog_enabled()) or when `status` is set and
 * a NOTIFY_SOCKET exists. Every half watchdog interval it sends WATCHDOG=1 if
 * alive(ctx) is true, and skips the ping otherwise, so a wedged loop gets the
 * process restarted; every status_interval_ms it sends STATUS=<status()>.
 * `settings` is borrowed and copied.
 * Returns 1 and gives *ret_watchdog (stop with notify_watchdog_stop()) when a
 * thread runs, 0 and sets *ret_watchdog to NULL when nothing is to be done,
 * -EINVAL (no alive callback) or -errno (thread creation) on failure.
 */
int notify_watchdog_start(const struct notify_watchdog_settings *settings,
                          struct notify_watchdog **ret_watchdog);

/* Wakes the thread, joins it and frees the watchdog (takes; NULL-safe). Returns NULL. */
struct notify_watchdog *notify_watchdog_stop(struct notify_watchdog *watchdog);

#endif
