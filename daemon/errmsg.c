/*
 * errmsg.c - the one place error messages for callers are formatted.
 */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>

char *errmsg_format(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

int errmsg_set(char **reterr_msg, int error, const char *fmt, ...)
{
    va_list ap;

    if (!reterr_msg)
        return error;
    va_start(ap, fmt);
    if (vasprintf(reterr_msg, fmt, ap) < 0)
        *reterr_msg = NULL;
    va_end(ap);
    return error;
}
