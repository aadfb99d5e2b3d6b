/*
 * fuzz_text.h - what every fuzz target checks of a message it is given: one line of valid
 * UTF-8 (what errmsg.h promises, so it can go into a log line and a protobuf string).
 */
#pragma once

#include <stdlib.h>

#include "errmsg.h"

/* Aborts unless s (NUL-terminated) is one line of valid UTF-8 without control characters. */
static inline void fuzz_text_one_line(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t len = errmsg_utf8_len(p);

        if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f)))
            abort();
        p += len;
    }
}
