/*
 * log_page.h - the lines GetTaskLogs answers: a run's output (runs/get-output) as lines, one
 * page of them as `lines` and `token` ask, and how a page is cut into the stream's messages.
 *
 * The output's lines, in order: "logs" (what the task printed), then "error", then
 * "error_trace", each cleaned as run_output_clean() says and cut after LOG_PAGE_LINE_MAX bytes.
 * A page starts at the line its token names and holds `lines` lines (0: as many as a page may
 * hold, LOG_PAGE_MAX_LINES). When lines remain after it, the page's next token names the first
 * of them; otherwise the next token is "" (the proto: "If there are no more results, this value
 * will be empty").
 *
 * Tokens are the decimal index of a line ("" is 0). They are stable while a run's output only
 * grows, which it does until Databricks keeps only its last 5 MB of logs; the CLI's --follow
 * counts lines itself and asks from there (log_page_token()). A token past the end is an empty
 * page, not an error: the output may have been cut since.
 *
 * Pure: no I/O, no globals written; any thread.
 */
#ifndef FDC_LOG_PAGE_H
#define FDC_LOG_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Longest line kept, in bytes; a longer one is cut on a character boundary and ends in "...". */
#define LOG_PAGE_LINE_MAX 8192
/* Most lines in one page, whatever `lines` asks. */
#define LOG_PAGE_MAX_LINES 10000
/* One stream message holds at most this many lines and bytes of them (gRPC's default limit for
 * a received message is 4 MiB). */
#define LOG_PAGE_BATCH_LINES 500
#define LOG_PAGE_BATCH_BYTES (256 * 1024)
/* Room for a token's digits and the NUL. */
#define LOG_PAGE_TOKEN_SIZE 24

struct log_page {
    char **lines; /* owns: `count` NUL-terminated lines of valid UTF-8, without the newline */
    size_t count;
    char next_token[LOG_PAGE_TOKEN_SIZE]; /* "" when no line follows the page */
};

/*
 * Reads a token: "" is 0, else 1-19 decimal digits. Returns 0 and sets *ret_first, or -EINVAL
 * for anything else (a token this connector never gave).
 */
int log_page_parse_token(const char *token, uint64_t *ret_first);

/* Writes the token that names line `first` ("" for 0). */
void log_page_token(uint64_t first, char ret[LOG_PAGE_TOKEN_SIZE]);

/*
 * Fills *ret with the page of `output`'s lines (borrowed: a runs/get-output answer; NULL or
 * without the fields: no lines) that starts at `token` and holds `lines` lines (0: up to
 * LOG_PAGE_MAX_LINES). Returns 0 (free with log_page_done()), -EINVAL for a malformed token
 * (*reterr_msg gives the message, free()), or -ENOMEM.
 */
int log_page_select(const cJSON *output, uint64_t lines, const char *token, struct log_page *ret,
                    char **reterr_msg);

/* Frees what page owns and zeroes it; NULL-safe and idempotent. */
void log_page_done(struct log_page *page);

/* The end (exclusive) of the stream message that starts at line `first` (< page->count): at
 * least one line, at most LOG_PAGE_BATCH_LINES and, past the first, LOG_PAGE_BATCH_BYTES. */
size_t log_page_batch_end(const struct log_page *page, size_t first);

#endif
