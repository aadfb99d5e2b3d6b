/*
 * log.c - key=value event lines on stderr.
 *
 * The level is process-wide, like stderr itself, so it lives in one atomic
 * here rather than being threaded through every call; it is the only
 * mutable global outside main.c's signal handling.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static atomic_int minimum_level = LOG_LEVEL_INFO;

static const char *const level_names[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARNING] = "warning",
    [LOG_LEVEL_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
    if (level >= 0 && level < _LOG_LEVEL_MAX)
        atomic_store(&minimum_level, level);
}

int log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&minimum_level);
}

struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
};

static void put_raw(struct line *line, const char *s, size_t n)
{
    size_t room = sizeof(line->buf) - 1 - line->len; /* keep one byte for '\n' */
    if (n > room)
        n = room;
    memcpy(line->buf + line->len, s, n);
    line->len += n;
}

static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' || *s == '\\' || *s == 0x7f)
            return true;
    return false;
}

/* Quotes and escapes so one event stays on one line whatever the value holds. */
static void put_value(struct line *line, const char *value)
{
    if (!needs_quotes(value)) {
        put_raw(line, value, strlen(value));
        return;
    }
    put_raw(line, "\"", 1);
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put_raw(line, esc, 2);
        } else if (c == '\n') {
            put_raw(line, "\\n", 2);
        } else if (c == '\t') {
            put_raw(line, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put_raw(line, esc, 4);
        } else {
            put_raw(line, (const char *)&c, 1);
        }
    }
    put_raw(line, "\"", 1);
}

static void put_field(struct line *line, const char *key, const char *value)
{
    put_raw(line, " ", 1);
    put_raw(line, key, strlen(key));
    put_raw(line, "=", 1);
    put_value(line, value);
}

void log_write(enum log_level level, const char *msg, ...)
{
    int saved_errno = errno;
    struct line line = {.len = 0};
    char timestamp[64];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < 0 || level >= _LOG_LEVEL_MAX || !log_enabled(level))
        goto out;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(timestamp, sizeof(timestamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             now.tv_nsec / 1000000);
    put_raw(&line, "time=", 5);
    put_raw(&line, timestamp, strlen(timestamp));
    put_field(&line, "level", level_names[level]);
    put_field(&line, "msg", msg ? msg : "");

    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        const char *value;
        if (!key)
            break;
        value = va_arg(ap, const char *);
        if (value)
            put_field(&line, key, value);
    }
    va_end(ap);

    line.buf[line.len++] = '\n';
    /* One write per line; a short write to stderr is not worth a retry loop. */
    (void)!write(STDERR_FILENO, line.buf, line.len);
out:
    errno = saved_errno;
}
