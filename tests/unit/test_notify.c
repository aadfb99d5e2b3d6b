/* Unit tests for notify.c. The test plays systemd: it binds an AF_UNIX datagram socket in a temp
 * directory, points NOTIFY_SOCKET (and WATCHDOG_USEC/WATCHDOG_PID) at it, and reads what the
 * module sends: READY=1, STATUS=, STOPPING=1, WATCHDOG=1 at half the interval only while alive()
 * is true, status refreshes, no-ops without a socket, and a prompt stop.
 *
 * Timing: the tests run under sanitizers and on shared machines, so they wait for counts (with
 * deadlines multiplied by TIMEOUT_SCALE, as the end-to-end suite does) instead of asserting
 * rates. The one rate they check is an upper bound (no more pings than the interval allows),
 * which a slow machine can only make easier to meet. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

struct fake_systemd {
    char dir[64];
    char path[96];
    int fd;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadlines in ms, multiplied by TIMEOUT_SCALE (e.g. 3 under make test-asan). */
static int scaled_ms(int ms)
{
    const char *scale = getenv("TIMEOUT_SCALE");
    double factor = scale ? atof(scale) : 1.0;
    return (int)(ms * (factor >= 1.0 ? factor : 1.0));
}

static int setup(void **state)
{
    struct fake_systemd *f = calloc(1, sizeof(*f));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_notify.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->path);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", f->path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fake_systemd *f = *state;

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One datagram within timeout_ms into buf; false on timeout. */
static bool receive(struct fake_systemd *f, int timeout_ms, char *buf, size_t size)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    ssize_t n;

    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    n = recv(f->fd, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    return true;
}

static void drain(struct fake_systemd *f)
{
    char buf[1024];
    while (receive(f, 0, buf, sizeof(buf)))
        ;
}

/* What arrived during `ms`: WATCHDOG=1 times and STATUS= values (one datagram may hold both). */
struct observed {
    int pings;
    int64_t ping_ms[64];
    int statuses;
    char last_status[256];
    int other;
};

/* What arrived until `pings` WATCHDOG=1 and `statuses` STATUS= (one datagram may hold both)
 * had come, or until `timeout_ms` passed; *ret_elapsed_ms is how long it watched. */
static void observe_until(struct fake_systemd *f, int pings, int statuses, int timeout_ms,
                          struct observed *o, int64_t *ret_elapsed_ms)
{
    int64_t started = now_ms(), end = started + timeout_ms;
    char buf[1024];

    memset(o, 0, sizeof(*o));
    while (o->pings < pings || o->statuses < statuses) {
        int64_t left = end - now_ms();
        char *save = NULL;
        if (left <= 0 || !receive(f, (int)left, buf, sizeof(buf)))
            break;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strcmp(line, "WATCHDOG=1") == 0) {
                if (o->pings < 64)
                    o->ping_ms[o->pings] = now_ms();
                o->pings++;
            } else if (strncmp(line, "STATUS=", 7) == 0) {
                o->statuses++;
                snprintf(o->last_status, sizeof(o->last_status), "%s", line + 7);
            } else {
                o->other++;
            }
        }
    }
    *ret_elapsed_ms = now_ms() - started;
}

/* Everything that arrives during `ms`. */
static void observe(struct fake_systemd *f, int ms, struct observed *o)
{
    int64_t elapsed;
    observe_until(f, INT_MAX, INT_MAX, ms, o, &elapsed);
}

static void test_no_socket_is_noop(void **state)
{
    struct fake_systemd *f = *state;
    char buf[256];

    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_status("serving: %d calls", 3), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_false(receive(f, 50, buf, sizeof(buf)));
}

static bool always_alive(void *ctx)
{
    (void)ctx;
    return true;
}

static bool flag_alive(void *ctx)
{
    return atomic_load((atomic_bool *)ctx);
}

struct status_ctx {
    atomic_bool alive;
    atomic_int calls;
};

static bool status_ctx_alive(void *ctx)
{
    struct status_ctx *c = ctx;
    return atomic_load(&c->alive);
}

static void status_summary(void *ctx, char *buf, size_t size)
{
    struct status_ctx *c = ctx;
    snprintf(buf, size, "serving: %d calls served,\n0 in flight", atomic_fetch_add(&c->calls, 1));
}

static void test_no_socket_watchdog_not_started(void **state)
{
    struct status_ctx c = {.alive = true};
    struct notify_watchdog_settings s = {
        .alive = status_ctx_alive, .status = status_summary, .ctx = &c};
    struct notify_watchdog *w = (struct notify_watchdog *)&s;

    (void)state;
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "200000", 1);
    assert_int_equal(notify_watchdog_start(&s, &w), 0);
    assert_null(w);
}

static void test_ready_status_stopping(void **state)
{
    struct fake_systemd *f = *state;
    char buf[1024];

    assert_true(notify_ready() > 0);
    assert_true(receive(f, 1000, buf, sizeof(buf)));
    assert_string_equal(buf, "READY=1");

    assert_true(notify_status("serving: %d calls served, %d in flight", 1234, 3) > 0);
    assert_true(receive(f, 1000, buf, sizeof(buf)));
    assert_string_equal(buf, "STATUS=serving: 1234 calls served, 3 in flight");

    /* A newline in the text must not start a second assignment. */
    assert_true(notify_status("line one\nREADY=1\r") > 0);
    assert_true(receive(f, 1000, buf, sizeof(buf)));
    assert_string_equal(buf, "STATUS=line one READY=1 ");

    assert_true(notify_stopping() > 0);
    assert_true(receive(f, 1000, buf, sizeof(buf)));
    assert_string_equal(buf, "STOPPING=1");
    assert_false(receive(f, 50, buf, sizeof(buf)));
}

static void test_invalid_settings(void **state)
{
    struct notify_watchdog_settings s = {.alive = NULL};
    struct notify_watchdog *w = (struct notify_watchdog *)&s;

    (void)state;
    setenv("WATCHDOG_USEC", "200000", 1);
    assert_int_equal(notify_watchdog_start(NULL, &w), -EINVAL);
    assert_int_equal(notify_watchdog_start(&s, &w), -EINVAL);
    assert_ptr_equal(w, &s); /* untouched on failure */
    assert_null(notify_watchdog_stop(NULL));
}

static void test_watchdog_pings_only_while_alive(void **state)
{
    struct fake_systemd *f = *state;
    struct status_ctx c = {.alive = true};
    struct notify_watchdog_settings s = {
        .alive = status_ctx_alive, .status = status_summary, .ctx = &c, .status_interval_ms = 250};
    struct notify_watchdog *w = NULL;
    struct observed o;
    char buf[1024];
    int64_t gaps, elapsed;

    setenv("WATCHDOG_USEC", "200000", 1);
    assert_int_equal(notify_watchdog_start(&s, &w), 1);
    assert_non_null(w);

    /* 200 ms interval: a ping every ~100 ms, the first at once. Ten pings and three status
     * refreshes must come; a slow machine may take longer, never fewer. */
    observe_until(f, 10, 3, scaled_ms(5000), &o, &elapsed);
    assert_int_equal(o.other, 0);
    if (o.pings < 10 || o.statuses < 3)
        fail_msg("%d pings and %d STATUS= in %lld ms, expected 10 and 3", o.pings, o.statuses,
                 (long long)elapsed);
    /* Not faster than every half interval (a little slack for timer rounding). */
    gaps = (o.ping_ms[o.pings - 1] - o.ping_ms[0]) / (o.pings - 1);
    if (gaps < 70)
        fail_msg("pings every %lld ms on average, expected about 100", (long long)gaps);
    /* The callback's newline became a space. */
    assert_non_null(strstr(o.last_status, "calls served, 0 in flight"));
    assert_null(strchr(o.last_status, '\n'));

    /* Wedged: no ping at all, status continues. */
    atomic_store(&c.alive, false);
    observe(f, 150, &o);
    observe(f, 600, &o);
    assert_int_equal(o.pings, 0);
    assert_true(o.statuses >= 1);

    /* Progress again: pings resume. */
    atomic_store(&c.alive, true);
    observe_until(f, 1, 0, scaled_ms(2000), &o, &elapsed);
    assert_true(o.pings >= 1);

    assert_null(notify_watchdog_stop(w));
    drain(f);
    assert_false(receive(f, 300, buf, sizeof(buf)));
}

static void test_watchdog_alive_false_from_start(void **state)
{
    struct fake_systemd *f = *state;
    atomic_bool alive = false;
    struct notify_watchdog_settings s = {.alive = flag_alive, .ctx = &alive};
    struct notify_watchdog *w = NULL;
    struct observed o;
    int64_t elapsed;

    setenv("WATCHDOG_USEC", "100000", 1);
    assert_int_equal(notify_watchdog_start(&s, &w), 1);
    observe(f, 400, &o);
    assert_int_equal(o.pings, 0);
    assert_int_equal(o.statuses, 0);
    atomic_store(&alive, true);
    observe_until(f, 2, 0, scaled_ms(2000), &o, &elapsed);
    assert_true(o.pings >= 2);
    assert_null(notify_watchdog_stop(w));
}

/* WATCHDOG_PID naming another process: the pings are not ours to send. */
static void test_watchdog_for_other_pid(void **state)
{
    struct fake_systemd *f = *state;
    struct notify_watchdog_settings s = {.alive = always_alive};
    struct status_ctx c = {.alive = true};
    struct notify_watchdog_settings with_status = {
        .alive = status_ctx_alive, .status = status_summary, .ctx = &c, .status_interval_ms = 100};
    struct notify_watchdog *w = (struct notify_watchdog *)&s;
    struct observed o;
    int64_t elapsed;

    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(notify_watchdog_start(&s, &w), 0);
    assert_null(w);

    assert_int_equal(notify_watchdog_start(&with_status, &w), 1);
    observe_until(f, 0, 3, scaled_ms(2000), &o, &elapsed);
    assert_int_equal(o.pings, 0);
    assert_true(o.statuses >= 3);
    assert_null(notify_watchdog_stop(w));
}

/* No WatchdogSec=: only the status refresh runs, and only when there is a callback. */
static void test_status_without_watchdog(void **state)
{
    struct fake_systemd *f = *state;
    struct status_ctx c = {.alive = true};
    struct notify_watchdog_settings s = {
        .alive = status_ctx_alive, .status = status_summary, .ctx = &c, .status_interval_ms = 100};
    struct notify_watchdog_settings bare = {.alive = always_alive};
    struct notify_watchdog *w = NULL;
    struct observed o;
    int64_t elapsed;

    assert_int_equal(notify_watchdog_start(&bare, &w), 0);
    assert_null(w);

    assert_int_equal(notify_watchdog_start(&s, &w), 1);
    observe_until(f, 0, 3, scaled_ms(2000), &o, &elapsed);
    assert_int_equal(o.pings, 0);
    if (o.statuses < 3)
        fail_msg("%d STATUS= in %lld ms at 100 ms, expected 3", o.statuses, (long long)elapsed);
    /* Not faster than the interval: three refreshes, the first at once, take 200 ms. */
    if (elapsed < 150)
        fail_msg("3 STATUS= in %lld ms at a 100 ms interval", (long long)elapsed);
    assert_non_null(strstr(o.last_status, "serving: "));
    assert_null(notify_watchdog_stop(w));
}

/* A long interval must not hold up shutdown: stop wakes the thread. */
static void test_stop_is_prompt(void **state)
{
    struct fake_systemd *f = *state;
    struct notify_watchdog_settings s = {.alive = always_alive};
    struct notify_watchdog *w = NULL;
    char buf[256];
    int64_t started;

    setenv("WATCHDOG_USEC", "60000000", 1);
    assert_int_equal(notify_watchdog_start(&s, &w), 1);
    assert_true(receive(f, 1000, buf, sizeof(buf)));
    assert_string_equal(buf, "WATCHDOG=1");
    started = now_ms();
    assert_null(notify_watchdog_stop(w));
    if (now_ms() - started > scaled_ms(1000))
        fail_msg("stop took %lld ms", (long long)(now_ms() - started));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_socket_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_socket_watchdog_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_status_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_pings_only_while_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_alive_false_from_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_for_other_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_without_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_prompt, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
