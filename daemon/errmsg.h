/*
 * errmsg.h - formatting the messages that go back to callers through
 * `char **reterr_msg` (pure; no I/O).
 */
#ifndef FDC_ERRMSG_H
#define FDC_ERRMSG_H

/* Gives a malloc'ed formatted string (free()), or NULL when out of memory. */
char *errmsg_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Sets *reterr_msg (when reterr_msg is not NULL) to the formatted message,
 * or to NULL when out of memory, and returns `error` (a negative errno), so
 * that `return errmsg_set(reterr_msg, -EINVAL, "...", ...);` fails in one
 * line.
 */
int errmsg_set(char **reterr_msg, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
