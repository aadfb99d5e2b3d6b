/*
 * log.h - one line per event, key=value fields, written to stderr.
 *
 * Thread-safety: every function may be called from any thread. Each line is
 * formatted into a local buffer and written with a single write(2), so lines
 * from different threads never interleave.
 *
 * Secrets: callers never pass a token or an Authorization header as a field
 * value; dbx.c is the only module that sees the token and it never logs it.
 */
#ifndef FDC_LOG_H
#define FDC_LOG_H

enum log_level {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
    _LOG_LEVEL_MAX,
};

enum log_format {
    LOG_FORMAT_TEXT,    /* key=value line on stderr */
    LOG_FORMAT_JSON,    /* one JSON object per line on stderr */
    LOG_FORMAT_JOURNAL, /* sd_journal_send() with structured fields */
    _LOG_FORMAT_MAX,
};

/* Chooses the output format. Call before other threads log (start-up). */
void log_set_format(enum log_format format);

/*
 * True when `journal_stream` (the JOURNAL_STREAM variable systemd sets,
 * "DEVICE:INODE") names our stderr: then stderr is connected to the journal
 * and structured fields are better sent directly.
 */
int log_stderr_is_journal(const char *journal_stream);

/* Sets the lowest level that is written. Any thread. */
void log_set_level(enum log_level level);

/* True when a line at this level would be written (skip costly formatting). */
int log_enabled(enum log_level level);

/*
 * Writes one line: `level=... msg="..." key=value ...`. The variadic part is
 * pairs of `const char *key, const char *value` ended by a NULL key; a NULL
 * value skips its pair. Values with spaces, quotes or control characters are
 * quoted and escaped, and bytes that are not UTF-8 become U+FFFD, so every
 * line is valid UTF-8 (JSON lines valid JSON) whatever a client sent.
 * Preserves errno.
 */
void log_write(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__, (const char *)NULL)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warning(...) log_write(LOG_LEVEL_WARNING, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__, (const char *)NULL)

#endif
