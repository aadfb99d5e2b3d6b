/*
 * run_output.c - choosing the task run to ask runs/get-output about, and cutting its answer
 * into the bounded texts GetTask shows (see run_output.h).
 *
 * The error text: Databricks' "error" is the exception line ("ValueError: boom"), its
 * "error_trace" the whole traceback, which may be megabytes with notebook colour codes. A
 * Flyte user wants the exception first and the innermost frames, which are the trace's last
 * lines; the middle is cut. Only the first and last SCAN_BYTES of each field are read, so a
 * 5 MB trace costs no more than a small one.
 *
 * A task's own state is read with phase_from_run(), which accepts a tasks[] entry as it
 * accepts a run (both carry "state" and, newer, "status"): "failed" means what it means for
 * the run's phase.
 *
 * Pure: no I/O, no globals written; any thread.
 */
#include "run_output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* The error's first lines: at most this many, in at most this many bytes. */
#define ERROR_HEAD_LINES 8
#define ERROR_HEAD_BYTES 768
/* The trace's last lines: at most this many; bytes: what the head left of RUN_OUTPUT_TEXT_MAX. */
#define TRACE_TAIL_LINES 24
/* A longer line is cut and ends in "...". */
#define LINE_MAX_BYTES 400
/* Bytes read from the start (error) or the end (trace) of a field: more than the lines kept can
 * use, even after colour codes are dropped. */
#define SCAN_BYTES 16384

/* Task results that say "not run because of another task": such a task has no output of its
 * own, so another failed task is the one to ask about. */
static const char *const secondary_results[] = {
    "UPSTREAM_FAILED",
    "UPSTREAM_CANCELED",
    "EXCLUDED",
    "SKIPPED",
};

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

    return cJSON_IsString(it) && it->valuestring ? it->valuestring : NULL;
}

/* The run id of a runs/get object as digits: a whole JSON number in 1 .. 2^53, or a string of
 * 1-19 digits (Databricks sends numbers; ids are int64). false when missing or malformed. */
static bool id_digits(const cJSON *obj, char out[RUN_OUTPUT_ID_SIZE])
{
    const cJSON *id = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "run_id") : NULL;

    if (cJSON_IsNumber(id)) {
        double v = id->valuedouble;
        if (!(v >= 1 && v <= 9007199254740992.0) || (double)(int64_t)v != v)
            return false;
        snprintf(out, RUN_OUTPUT_ID_SIZE, "%" PRId64, (int64_t)v);
        return true;
    }
    if (cJSON_IsString(id) && id->valuestring) {
        size_t n = strlen(id->valuestring);
        if (n == 0 || n > 19 || strspn(id->valuestring, "0123456789") != n)
            return false;
        memcpy(out, id->valuestring, n + 1);
        return true;
    }
    return false;
}

static bool is_failure(enum phase p)
{
    return p == PHASE_FAILED || p == PHASE_RETRYABLE_FAILED;
}

/* How a task ended, for the choice: 2 failed on its own, 1 failed because of another task,
 * 0 not failed (or unreadable). */
static int task_failure(const cJSON *task)
{
    struct phase_result r = {0};
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(task, "state");
    const char *result = get_str(state, "result_state");
    const char *life = get_str(state, "life_cycle_state");
    int rank = 0;

    if (phase_from_run(task, &r, NULL) < 0)
        return 0;
    if (is_failure(r.phase)) {
        rank = 2;
        for (size_t i = 0; i < ELEMENTSOF(secondary_results); i++)
            if ((result && strcmp(result, secondary_results[i]) == 0) ||
                (life && strcmp(life, secondary_results[i]) == 0))
                rank = 1;
    }
    phase_result_done(&r);
    return rank;
}

static bool is_notebook(const cJSON *task)
{
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(task, "notebook_task"));
}

/* The task to ask about: the best failure for a failed run, the first notebook otherwise;
 * with one task, that one. NULL when none qualifies. */
static const cJSON *pick_task(const cJSON *tasks, bool failed)
{
    const cJSON *task, *best = NULL;
    int best_rank = 0, count = 0;
    char digits[RUN_OUTPUT_ID_SIZE];

    cJSON_ArrayForEach(task, tasks)
    {
        int rank;

        if (!id_digits(task, digits))
            continue;
        count++;
        rank = failed ? task_failure(task) : is_notebook(task) ? 2 : 0;
        if (rank > best_rank) {
            best = task;
            best_rank = rank;
        }
    }
    if (best || count != 1)
        return best;
    cJSON_ArrayForEach(task, tasks)
    {
        if (id_digits(task, digits))
            return task;
    }
    return NULL;
}

void run_output_plan(const cJSON *run, enum phase phase, struct run_output_plan *ret)
{
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(run, "tasks");
    const cJSON *task;
    bool failed = is_failure(phase);

    *ret = (struct run_output_plan){0};
    if (!phase_is_terminal(phase) || !cJSON_IsObject(run))
        return;
    if (!cJSON_IsArray(tasks) || !tasks->child) {
        /* A run without task runs (an older answer): its own id is its only task's. */
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(run, "task");

        ret->notebook = is_notebook(single);
        ret->fetch = (failed || ret->notebook) && id_digits(run, ret->task_run_id);
    } else {
        task = pick_task(tasks, failed);
        if (!task)
            return;
        ret->notebook = is_notebook(task);
        ret->fetch = (failed || ret->notebook) && id_digits(task, ret->task_run_id);
    }
    if (!ret->fetch)
        ret->task_run_id[0] = '\0';
}

bool run_output_logs_task(const cJSON *run, enum phase phase, char ret_id[RUN_OUTPUT_ID_SIZE])
{
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(run, "tasks");
    const cJSON *task = NULL;

    if (!cJSON_IsObject(run))
        return false;
    if (!cJSON_IsArray(tasks) || !tasks->child)
        return id_digits(run, ret_id);
    if (is_failure(phase))
        task = pick_task(tasks, true);
    if (!task) {
        cJSON_ArrayForEach(task, tasks)
        {
            if (id_digits(task, ret_id))
                return true;
        }
        return false;
    }
    return id_digits(task, ret_id);
}

/* ---- text ------------------------------------------------------------------------------- */

struct span {
    size_t start, len;
};

/* Lines of a field, cleaned: `buf` holds them separated by '\n'. */
struct lines {
    char *buf;
    struct span *spans;
    size_t count;
    bool cut_before; /* lines before the first span were left out */
    bool cut_after;  /* lines after the last span were left out */
};

static void lines_done(struct lines *l)
{
    free(l->buf);
    free(l->spans);
    *l = (struct lines){0};
}

/* Length of an ANSI escape sequence at p (ESC already seen): CSI "ESC [ params final" or a
 * two-byte escape; never past the NUL. */
static size_t escape_len(const unsigned char *p)
{
    size_t n = 1;

    if (p[1] != '[')
        return p[1] ? 2 : 1;
    for (n = 2; p[n] && !(p[n] >= 0x40 && p[n] <= 0x7E); n++)
        ;
    return p[n] ? n + 1 : n;
}

size_t run_output_clean(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t len = 0;

    while (p < end) {
        size_t k;

        if (*p == 0x1B) {
            k = escape_len(p);
            p += k;
            continue;
        }
        if (*p == '\r') {
            out[len++] = '\n';
            p += p + 1 < end && p[1] == '\n' ? 2 : 1;
            continue;
        }
        k = errmsg_utf8_len(p);
        if (k == 0 || p + k > end) {
            out[len++] = '?';
            p++;
        } else if (k == 1 && (*p < 0x20 || *p == 0x7F) && *p != '\n' && *p != '\t') {
            out[len++] = ' ';
            p++;
        } else {
            memcpy(out + len, p, k);
            len += k;
            p += k;
        }
    }
    out[len] = '\0';
    return len;
}

/* Cuts a line longer than LINE_MAX_BYTES on a character boundary, with "..." in the bytes
 * freed: buf has room for it since the cut drops more than 3 bytes. */
static size_t cut_line(char *line, size_t len)
{
    if (len <= LINE_MAX_BYTES)
        return len;
    len = LINE_MAX_BYTES - 3;
    while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80)
        len--;
    memcpy(line + len, "...", 3);
    return len + 3;
}

/*
 * Splits field text into at most `max` lines, the first ones (from_end false) or the last ones,
 * reading SCAN_BYTES at most. Trailing empty lines are dropped. Returns 0 or -ENOMEM; an absent
 * or empty text gives no lines.
 */
static int lines_of(const char *text, size_t max, bool from_end, struct lines *ret)
{
    struct lines l = {0};
    size_t n = text ? strlen(text) : 0, begin = 0, len, first = 0, total = 0;
    char *p;

    *ret = l;
    if (n == 0)
        return 0;
    if (from_end && n > SCAN_BYTES) {
        begin = n - SCAN_BYTES;
        l.cut_before = true;
    } else if (!from_end && n > SCAN_BYTES) {
        n = SCAN_BYTES;
        l.cut_after = true;
    }
    l.buf = malloc(n - begin + 1);
    l.spans = calloc(max, sizeof(*l.spans));
    if (!l.buf || !l.spans) {
        lines_done(&l);
        return -ENOMEM;
    }
    len = run_output_clean(text + begin, n - begin, l.buf);
    /* A region that starts or ends mid-line loses that partial line. */
    p = l.buf;
    if (l.cut_before) {
        char *nl = memchr(p, '\n', len);
        first = nl ? (size_t)(nl - p) + 1 : len;
    }
    if (l.cut_after) {
        char *nl = memrchr(p, '\n', len);
        len = nl ? (size_t)(nl - p) : 0;
    }
    while (len > first && p[len - 1] == '\n')
        len--;
    for (size_t at = first; at < len;) {
        char *nl = memchr(p + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - p) : len;
        struct span s = {at, cut_line(p + at, end - at)};

        if (total < max || from_end) {
            if (total >= max)
                memmove(l.spans, l.spans + 1, (max - 1) * sizeof(*l.spans));
            l.spans[total < max ? total : max - 1] = s;
        }
        total++;
        at = end + 1;
        if (!from_end && total == max && at < len) {
            l.cut_after = true;
            break;
        }
    }
    l.count = total < max ? total : max;
    if (from_end && total > max)
        l.cut_before = true;
    *ret = l;
    return 0;
}

/* Appends `len` bytes and a newline to out (room checked by the caller). */
static void put_line(char *out, size_t *used, const char *s, size_t len)
{
    if (*used)
        out[(*used)++] = '\n';
    memcpy(out + *used, s, len);
    *used += len;
}

char *run_output_error_text(const cJSON *output)
{
    struct lines head = {0}, tail = {0};
    char *out = NULL;
    size_t used = 0, budget, keep, need;
    bool omitted;

    if (lines_of(get_str(output, "error"), ERROR_HEAD_LINES, false, &head) < 0 ||
        lines_of(get_str(output, "error_trace"), TRACE_TAIL_LINES, true, &tail) < 0)
        goto out;
    if (head.count == 0 && tail.count == 0)
        goto out;
    out = malloc(RUN_OUTPUT_TEXT_MAX + 1);
    if (!out)
        goto out;
    for (size_t i = 0; i < head.count; i++) {
        need = head.spans[i].len + (used ? 1 : 0);
        if (used + need > ERROR_HEAD_BYTES)
            break;
        put_line(out, &used, head.buf + head.spans[i].start, head.spans[i].len);
    }
    /* The trace's last lines that fit in what is left, "..." first when any were left out. */
    budget = RUN_OUTPUT_TEXT_MAX - used;
    keep = 0;
    need = 0;
    for (size_t i = tail.count; i > 0; i--) {
        size_t line = tail.spans[i - 1].len + 1;
        size_t marker = (i - 1 > 0 || tail.cut_before) ? 4 : 0; /* "...\n" */

        if (need + line + marker > budget)
            break;
        need += line;
        keep++;
    }
    omitted = keep < tail.count || tail.cut_before;
    if (keep > 0 && omitted)
        put_line(out, &used, "...", 3);
    for (size_t i = tail.count - keep; i < tail.count; i++)
        put_line(out, &used, tail.buf + tail.spans[i].start, tail.spans[i].len);
    out[used] = '\0';
out:
    lines_done(&head);
    lines_done(&tail);
    return out;
}

char *run_output_notebook_result(const cJSON *output, bool *ret_truncated)
{
    const cJSON *notebook = cJSON_GetObjectItemCaseSensitive(output, "notebook_output");
    const cJSON *truncated = cJSON_GetObjectItemCaseSensitive(notebook, "truncated");
    const char *result = get_str(notebook, "result");
    char *out;

    if (!result)
        return NULL;
    out = malloc(RUN_OUTPUT_RESULT_MAX + 1);
    if (!out)
        return NULL;
    /* At most RUN_OUTPUT_RESULT_MAX - 3 bytes and "...". One line of UTF-8 replaces byte for
     * byte, so the text is cut exactly when it is longer than that. */
    errmsg_printable(out, RUN_OUTPUT_RESULT_MAX + 1, result, ERRMSG_ONE_LINE);
    *ret_truncated = cJSON_IsTrue(truncated) || strlen(result) > RUN_OUTPUT_RESULT_MAX - 3;
    return out;
}
