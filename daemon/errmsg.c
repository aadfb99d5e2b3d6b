/*
 * errmsg.c - the one place error messages for callers are formatted, and the one place text from
 * outside (a flag's value, a Databricks answer, a resource_meta field) is made fit to quote in
 * them: so a stray newline cannot forge a log line, a pasted megabyte cannot flood one, and a
 * protobuf string (which must be valid UTF-8) never carries a broken byte. Pure: any thread.
 */
#include "errmsg.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *errmsg_vformat(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    return s;
}

char *errmsg_format(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = errmsg_vformat(fmt, ap);
    va_end(ap);
    return s;
}

int errmsg_set(char **reterr_msg, int error, const char *fmt, ...)
{
    va_list ap;

    if (!reterr_msg)
        return error;
    va_start(ap, fmt);
    *reterr_msg = errmsg_vformat(fmt, ap);
    va_end(ap);
    return error;
}

int errmsg_give(char **reterr_msg, int outcome, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    *reterr_msg = errmsg_vformat(fmt, ap);
    va_end(ap);
    return *reterr_msg ? outcome : -ENOMEM;
}

size_t errmsg_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        unsigned char lo = s[0] == 0xE0 ? 0xA0 : 0x80, hi = s[0] == 0xED ? 0x9F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        unsigned char lo = s[0] == 0xF0 ? 0x90 : 0x80, hi = s[0] == 0xF4 ? 0x8F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

bool errmsg_utf8_valid(const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t at = 0; at < len;) {
        unsigned char c[5] = {0};

        if (p[at] < 0x80) {
            at++;
            continue;
        }
        /* A zero-padded copy: errmsg_utf8_len() stops at the padding, never past the end. */
        memcpy(c, p + at, len - at < 4 ? len - at : 4);
        if (errmsg_utf8_len(c) == 0)
            return false;
        at += errmsg_utf8_len(c);
    }
    return true;
}

char *errmsg_utf8_sanitize(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = 0;
    char *out, *o;

    /* Each bad byte grows by two at most: size the copy in one pass, fill it in the next. */
    for (const unsigned char *q = p; *q;) {
        size_t n = errmsg_utf8_len(q);

        len += n ? n : 3;
        q += n ? n : 1;
    }
    out = malloc(len + 1);
    if (!out)
        return NULL;
    for (o = out; *p;) {
        size_t n = errmsg_utf8_len(p);

        memcpy(o, n ? (const char *)p : ERRMSG_REPLACEMENT, n ? n : 3);
        o += n ? n : 3;
        p += n ? n : 1;
    }
    *o = '\0';
    return out;
}

/* Writes into piece how the character at p is shown (*ret_len bytes, at most 4) and returns how
 * many bytes of p it stands for. */
static size_t show(const unsigned char *p, enum errmsg_style style, char piece[4], size_t *ret_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = errmsg_utf8_len(p);
    bool control = n == 1 && (*p < 0x20 || *p == 0x7F);

    if ((n == 0 || control) && style == ERRMSG_QUOTED) {
        memcpy(piece, (char[]){'\\', 'x', hex[*p >> 4], hex[*p & 0x0F]}, 4);
        *ret_len = 4;
        return 1;
    }
    if (control) {
        piece[0] = ' ';
        *ret_len = 1;
        return 1;
    }
    if (n == 0) {
        memcpy(piece, ERRMSG_REPLACEMENT, 3);
        *ret_len = 3;
        return 1;
    }
    if (style == ERRMSG_QUOTED && (*p == '"' || *p == '\\')) {
        piece[0] = '\\';
        piece[1] = (char)*p;
        *ret_len = 2;
        return 1;
    }
    memcpy(piece, p, n);
    *ret_len = n;
    return n;
}

char *errmsg_printable(char *buf, size_t size, const char *s, enum errmsg_style style)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t used = 0;

    assert(size >= 4 && style >= 0 && style < _ERRMSG_STYLE_MAX);
    while (*p) {
        char piece[4];
        size_t len;

        p += show(p, style, piece, &len);
        if (used + len > size - 4) {
            memcpy(buf + used, "...", 4);
            return buf;
        }
        memcpy(buf + used, piece, len);
        used += len;
    }
    buf[used] = '\0';
    return buf;
}
