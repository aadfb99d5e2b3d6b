/*
 * errmsg.h - formatting the messages that go back to callers through
 * `char **reterr_msg`, and making foreign text safe to put in one (pure; no I/O).
 */
#ifndef FDC_ERRMSG_H
#define FDC_ERRMSG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Gives a malloc'ed formatted string (free()), or NULL when out of memory. */
char *errmsg_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* errmsg_format() for a va_list (which it consumes). */
char *errmsg_vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * Sets *reterr_msg (when reterr_msg is not NULL) to the formatted message,
 * or to NULL when out of memory, and returns `error` (a negative errno), so
 * that `return errmsg_set(reterr_msg, -EINVAL, "...", ...);` fails in one
 * line.
 */
int errmsg_set(char **reterr_msg, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * For a function whose result is an outcome with a message rather than an error: sets
 * *reterr_msg (not NULL) to the formatted message and returns `outcome`, or returns -ENOMEM when
 * the message cannot be made.
 */
int errmsg_give(char **reterr_msg, int outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one (overlongs,
 * surrogates and values above U+10FFFF are invalid). Reads no further than a NUL. Protobuf
 * strings must be valid UTF-8, or propeller's Go decoder rejects the whole message.
 */
size_t errmsg_utf8_len(const unsigned char *s);

/* True when data[0..len) (borrowed; need not be NUL-terminated, may hold NULs, which are
 * valid UTF-8) is valid UTF-8 as errmsg_utf8_len() defines it. */
bool errmsg_utf8_valid(const void *data, size_t len);

/* U+FFFD REPLACEMENT CHARACTER, what a byte that is not UTF-8 becomes in free text. */
#define ERRMSG_REPLACEMENT "\xef\xbf\xbd"

/*
 * Gives a copy of s (borrowed; NULL is the empty string) in which every byte that does not start
 * a valid UTF-8 sequence is replaced by U+FFFD; everything else, control characters included,
 * is kept. For text that must be valid UTF-8 but is not ours to reformat: a gRPC status message
 * (a protobuf string for the client's decoder). NULL when out of memory. Any thread.
 */
char *errmsg_utf8_sanitize(const char *s);

/* How errmsg_printable() shows what one line of valid UTF-8 cannot carry. */
enum errmsg_style {
    /* A value quoted back to whoever sent it, between quotes the caller writes: control
     * characters and bytes that are not UTF-8 as \xNN, '"' and '\' behind a backslash. */
    ERRMSG_QUOTED,
    /* Free text (a message from Databricks or the daemon) shown on one line: control
     * characters as a space, bytes that are not UTF-8 as U+FFFD. */
    ERRMSG_ONE_LINE,
    _ERRMSG_STYLE_MAX,
};

/*
 * Writes s (borrowed; NULL is the empty string) into buf as one line of valid UTF-8, shown as
 * style says: at most size - 4 bytes of it, and when more would follow, the cut falls on a
 * character (or escape) boundary and "..." ends the text. So a caller that wants N bytes of text
 * passes N + 4 (the "..." and the NUL), and size must be at least 4. Returns buf. Any thread.
 */
char *errmsg_printable(char *buf, size_t size, const char *s, enum errmsg_style style);

#endif
