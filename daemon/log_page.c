/*
 * log_page.c - a run's output as numbered lines, one page of them, and the page cut into stream
 * messages (see log_page.h).
 *
 * Each field is cleaned whole (run_output_clean(): a field of 5 MB costs one copy) and walked
 * line by line; only the lines of the page are copied out. Lines are numbered across the
 * fields in their order (logs, error, error_trace), so a token is one number.
 *
 * Pure: any thread.
 */
#include "log_page.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "run_output.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* The fields of a runs/get-output answer whose lines GetTaskLogs shows, in this order. */
static const char *const fields[] = {"logs", "error", "error_trace"};

int log_page_parse_token(const char *token, uint64_t *ret_first)
{
    size_t n = token ? strlen(token) : 0;

    if (n == 0) {
        *ret_first = 0;
        return 0;
    }
    if (n > 19 || strspn(token, "0123456789") != n)
        return -EINVAL;
    *ret_first = (uint64_t)strtoull(token, NULL, 10);
    return 0;
}

void log_page_token(uint64_t first, char ret[LOG_PAGE_TOKEN_SIZE])
{
    if (first == 0)
        ret[0] = '\0';
    else
        snprintf(ret, LOG_PAGE_TOKEN_SIZE, "%" PRIu64, first);
}

void log_page_done(struct log_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; i < page->count; i++)
        free(page->lines[i]);
    free(page->lines);
    *page = (struct log_page){0};
}

/* A copy of one line, cut after LOG_PAGE_LINE_MAX bytes on a character boundary. */
static char *line_copy(const char *s, size_t len)
{
    char *copy;

    if (len > LOG_PAGE_LINE_MAX) {
        len = LOG_PAGE_LINE_MAX - 3;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
        copy = malloc(len + 4);
        if (copy) {
            memcpy(copy, s, len);
            memcpy(copy + len, "...", 4);
        }
        return copy;
    }
    copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* The walk over every line: where the page starts, how many it takes, what it holds. */
struct walk {
    uint64_t first; /* index of the page's first line */
    size_t want;    /* lines the page takes */
    uint64_t index; /* index of the next line met */
    struct log_page *page;
};

/* Numbers the lines of one cleaned field, copying those of the page. -ENOMEM or 0. */
static int walk_field(struct walk *w, const char *text, size_t len)
{
    /* A field ends its last line: a final newline is no empty line after it. */
    while (len > 0 && text[len - 1] == '\n')
        len--;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;

        if (w->index >= w->first && w->page->count < w->want) {
            char *line = line_copy(text + at, end - at);
            if (!line)
                return -ENOMEM;
            w->page->lines[w->page->count++] = line;
        }
        w->index++;
        at = end + 1;
    }
    return 0;
}

int log_page_select(const cJSON *output, uint64_t lines, const char *token, struct log_page *ret,
                    char **reterr_msg)
{
    struct log_page page = {0};
    struct walk w = {.page = &page};
    char *clean = NULL;
    int r;

    if (log_page_parse_token(token, &w.first) < 0)
        return errmsg_set(reterr_msg, -EINVAL,
                          "token '%.32s' is not one this connector gave (a line number)", token);
    w.want = lines == 0 || lines > LOG_PAGE_MAX_LINES ? LOG_PAGE_MAX_LINES : (size_t)lines;
    page.lines = calloc(w.want, sizeof(*page.lines));
    if (!page.lines)
        return -ENOMEM;
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        const cJSON *f =
            cJSON_IsObject(output) ? cJSON_GetObjectItemCaseSensitive(output, fields[i]) : NULL;
        size_t n, len;

        if (!cJSON_IsString(f) || !f->valuestring || !f->valuestring[0])
            continue;
        n = strlen(f->valuestring);
        clean = malloc(n + 1);
        if (!clean) {
            r = -ENOMEM;
            goto out;
        }
        len = run_output_clean(f->valuestring, n, clean);
        r = walk_field(&w, clean, len);
        free(clean);
        clean = NULL;
        if (r < 0)
            goto out;
    }
    /* w.index counted every line: some follow the page when it is past the page's end. */
    if (w.index > w.first + page.count)
        log_page_token(w.first + page.count, page.next_token);
    *ret = page;
    page = (struct log_page){0};
    r = 0;
out:
    log_page_done(&page);
    return r;
}

size_t log_page_batch_end(const struct log_page *page, size_t first)
{
    size_t end = first, bytes = 0;

    while (end < page->count && end - first < LOG_PAGE_BATCH_LINES) {
        size_t len = strlen(page->lines[end]);

        if (end > first && bytes + len > LOG_PAGE_BATCH_BYTES)
            break;
        bytes += len;
        end++;
    }
    return end;
}
