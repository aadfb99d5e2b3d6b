/*
 * log.c - key=value event lines on stderr.
 *
 * The level is process-wide, like stderr itself, so it lives in one atomic
 * here rather than being threaded through every call; it is the only
 * mutable global outside main.c's signal handling.
 */
#include "log.h"

#include "errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 16384
/* Values are cut at this many bytes of output: a line holds a handful of
 * fields, so it always fits and a JSON line always stays one valid object. */
#define LOG_VALUE_MAX 2048
#define JOURNAL_FIELDS_MAX 24

static atomic_int minimum_level = LOG_LEVEL_INFO;
static atomic_int output_format = LOG_FORMAT_TEXT;

/* syslog priorities, as journald expects them in PRIORITY=. */
static const int journal_priorities[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_DEBUG] = 7,
    [LOG_LEVEL_INFO] = 6,
    [LOG_LEVEL_WARNING] = 4,
    [LOG_LEVEL_ERROR] = 3,
};

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

void log_set_format(enum log_format format)
{
    if (format >= 0 && format < _LOG_FORMAT_MAX)
        atomic_store(&output_format, format);
}

int log_stderr_is_journal(const char *journal_stream)
{
    uintmax_t device, inode;
    struct stat st;

    if (!journal_stream || sscanf(journal_stream, "%ju:%ju", &device, &inode) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (uintmax_t)st.st_dev == device && (uintmax_t)st.st_ino == inode;
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

/* How one value is written: a key=value line quotes it, JSON always does. */
enum escape_style {
    ESCAPE_TEXT, /* \n \t \xNN */
    ESCAPE_JSON, /* \n \t \u00NN */
};

/* Plain values go out as they are: nothing that ends or splits a field, only valid UTF-8, and
 * short enough not to be cut. */
static bool needs_quotes(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (*p == '\0' || strlen(s) > LOG_VALUE_MAX)
        return true;
    while (*p) {
        size_t n = errmsg_utf8_len(p);

        if (n == 0 || *p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
        p += n;
    }
    return false;
}

/* Writes into piece how the character at p is shown (*ret_len bytes) and returns how many bytes
 * of p it stands for. Whatever the caller logged, the line stays one line of valid UTF-8: a byte
 * that does not start a UTF-8 sequence (a client's task type, a Databricks message) becomes
 * U+FFFD, a control character an escape. */
static size_t escape_char(const unsigned char *p, enum escape_style style, char piece[8],
                          size_t *ret_len)
{
    size_t n = errmsg_utf8_len(p);

    if (n == 0) {
        memcpy(piece, ERRMSG_REPLACEMENT, 3);
        *ret_len = 3;
        return 1;
    }
    if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\t') {
        piece[0] = '\\';
        piece[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : (char)*p;
        *ret_len = 2;
        return 1;
    }
    if (*p < 0x20 || *p == 0x7f) {
        *ret_len = (size_t)snprintf(piece, 8, style == ESCAPE_JSON ? "\\u%04x" : "\\x%02x", *p);
        return 1;
    }
    memcpy(piece, p, n);
    *ret_len = n;
    return n;
}

/* Writes s between quotes, escaped; at most LOG_VALUE_MAX bytes of output (escapes can make a
 * value six times longer), cut on a character boundary and marked "...". */
static void put_quoted(struct line *line, const char *s, enum escape_style style)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = line->len;

    put_raw(line, "\"", 1);
    while (*p) {
        char piece[8];
        size_t len, used = escape_char(p, style, piece, &len);

        if (line->len - start + len > LOG_VALUE_MAX) {
            put_raw(line, "...", 3);
            break;
        }
        put_raw(line, piece, len);
        p += used;
    }
    put_raw(line, "\"", 1);
}

/* Quotes and escapes so one event stays on one line whatever the value holds. */
static void put_value(struct line *line, const char *value)
{
    if (needs_quotes(value))
        put_quoted(line, value, ESCAPE_TEXT);
    else
        put_raw(line, value, strlen(value));
}

static void put_field(struct line *line, const char *key, const char *value)
{
    put_raw(line, " ", 1);
    put_raw(line, key, strlen(key));
    put_raw(line, "=", 1);
    put_value(line, value);
}

static void put_json_string(struct line *line, const char *s)
{
    put_quoted(line, s, ESCAPE_JSON);
}

static void put_json_field(struct line *line, const char *key, const char *value)
{
    put_raw(line, ",", 1);
    put_json_string(line, key);
    put_raw(line, ":", 1);
    put_json_string(line, value);
}

/* Journal field names are upper case [A-Z0-9_]; ours are lower case words. */
static void journal_field(char *buf, size_t size, const char *key, const char *value)
{
    size_t n = 0;
    for (; *key && n + 2 < size; key++)
        buf[n++] = isalnum((unsigned char)*key) ? (char)toupper((unsigned char)*key) : '_';
    buf[n++] = '=';
    buf[n] = '\0';
    errmsg_printable(buf + n, size - n, value, ERRMSG_ONE_LINE);
}

/* The next key of a log_write() argument list whose value is set, with that value in
 * *ret_value; NULL at the list's end. */
static const char *next_field(va_list *ap, const char **ret_value)
{
    for (;;) {
        const char *key = va_arg(*ap, const char *);

        if (!key)
            return NULL;
        *ret_value = va_arg(*ap, const char *);
        if (*ret_value)
            return key;
    }
}

static void write_journal(enum log_level level, const char *msg, va_list *ap)
{
    char fields[JOURNAL_FIELDS_MAX][512];
    struct iovec iov[JOURNAL_FIELDS_MAX];
    size_t n = 0;

    snprintf(fields[n], sizeof(fields[n]), "PRIORITY=%d", journal_priorities[level]);
    n++;
    journal_field(fields[n], sizeof(fields[n]), "message", msg ? msg : "");
    n++;
    for (const char *key, *value; n < JOURNAL_FIELDS_MAX && (key = next_field(ap, &value));)
        journal_field(fields[n++], sizeof(fields[0]), key, value);
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = fields[i];
        iov[i].iov_len = strlen(fields[i]);
    }
    (void)sd_journal_sendv(iov, (int)n);
}

void log_write(enum log_level level, const char *msg, ...)
{
    int saved_errno = errno;
    /* Not `= {0}`: that clears the whole 16 KiB buffer on every call, even
     * a filtered-out one (7% of the daemon's instructions per GetTask). */
    struct line line;
    char timestamp[64];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int format = atomic_load(&output_format);

    if (level < 0 || level >= _LOG_LEVEL_MAX || !log_enabled(level))
        goto out;
    line.len = 0;

    if (format == LOG_FORMAT_JOURNAL) {
        va_start(ap, msg);
        write_journal(level, msg, &ap);
        va_end(ap);
        goto out;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(timestamp, sizeof(timestamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             now.tv_nsec / 1000000);
    if (format == LOG_FORMAT_JSON) {
        put_raw(&line, "{\"time\":", 8);
        put_json_string(&line, timestamp);
        put_json_field(&line, "level", level_names[level]);
        put_json_field(&line, "msg", msg ? msg : "");
    } else {
        put_raw(&line, "time=", 5);
        put_raw(&line, timestamp, strlen(timestamp));
        put_field(&line, "level", level_names[level]);
        put_field(&line, "msg", msg ? msg : "");
    }

    va_start(ap, msg);
    for (const char *key, *value; (key = next_field(&ap, &value));) {
        if (format == LOG_FORMAT_JSON)
            put_json_field(&line, key, value);
        else
            put_field(&line, key, value);
    }
    va_end(ap);

    if (format == LOG_FORMAT_JSON) {
        put_raw(&line, "}", 1);
    }
    line.buf[line.len++] = '\n';
    /* One write per line; a short write to stderr is not worth a retry loop. */
    (void)!write(STDERR_FILENO, line.buf, line.len);
out:
    errno = saved_errno;
}
