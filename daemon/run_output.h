/*
 * run_output.h - what GetTask takes from Databricks' runs/get-output: which task run to ask
 * about, and the bounded texts a Flyte user sees (the Python exception of a failed run, a
 * notebook's exit value).
 *
 * Why: propeller shows only the message of a terminal phase ("failed to run the job:
 * <message>"), so the exception has to be in that message or the user opens the Databricks
 * console to find it. runs/get says that a run failed; runs/get-output says why, but only for
 * a *task* run: a multi-task run's own id is refused (400 INVALID_PARAMETER_VALUE), so the id
 * comes from runs/get's tasks[].
 *
 * Pure: no I/O, no globals written; every function may be called from any thread.
 */
#ifndef FDC_RUN_OUTPUT_H
#define FDC_RUN_OUTPUT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "phase.h"

/* Room for a run id's decimal digits and the NUL. */
#define RUN_OUTPUT_ID_SIZE 32
/* Longest error text run_output_error_text() gives, in bytes without the NUL. */
#define RUN_OUTPUT_TEXT_MAX 2048
/* Longest notebook exit value kept, in bytes without the NUL. */
#define RUN_OUTPUT_RESULT_MAX 1024

/* Whether a finished run's output is worth one runs/get-output, and for which task run. */
struct run_output_plan {
    bool fetch;                           /* ask runs/get-output for task_run_id */
    char task_run_id[RUN_OUTPUT_ID_SIZE]; /* decimal digits; "" unless fetch */
    bool notebook;                        /* the task is a notebook: its exit value counts */
};

/*
 * Decides from `run` (borrowed: the parsed runs/get answer) and the phase GetTask answers for
 * it whether runs/get-output is needed: only for a run that is over and either failed
 * (PHASE_FAILED, PHASE_RETRYABLE_FAILED) or ran a notebook. The task asked about is, for a
 * failure, the first task that failed on its own (a task marked UPSTREAM_FAILED, EXCLUDED or
 * SKIPPED has no output of its own), else the first task that failed at all, else the only
 * task; for a notebook, the first notebook task. A run without tasks[] is asked about under
 * its own id. Fills *ret; never fails.
 */
void run_output_plan(const cJSON *run, enum phase phase, struct run_output_plan *ret);

/*
 * The task run whose output GetTaskLogs shows, from `run` (borrowed: runs/get) and its phase:
 * for a failed run the task run_output_plan() would ask about, else the first task run; a run
 * without tasks[] under its own id. Writes its digits to ret_id and returns true, or returns
 * false when the answer names no usable id.
 */
bool run_output_logs_task(const cJSON *run, enum phase phase, char ret_id[RUN_OUTPUT_ID_SIZE]);

/*
 * The text added to a failed run's message from a runs/get-output answer (`output`,
 * borrowed): the first lines of "error", then the last lines of "error_trace" (after a "..."
 * line when the start was left out), RUN_OUTPUT_TEXT_MAX bytes at most, as valid UTF-8: cuts
 * fall on character boundaries, control characters other than newline and tab become spaces,
 * terminal colour codes are dropped. Gives the text (free()), or NULL when the output holds
 * neither field or memory ran out.
 */
char *run_output_error_text(const cJSON *output);

/*
 * The notebook's exit value (notebook_output.result) from a runs/get-output answer, at most
 * RUN_OUTPUT_RESULT_MAX bytes of valid UTF-8 on one line. Gives the text (free()) and sets
 * *ret_truncated when Databricks or this cut cut it; NULL when there is none or memory ran out.
 */
char *run_output_notebook_result(const cJSON *output, bool *ret_truncated);

/*
 * Makes text a task printed fit for a protobuf string, as the error text and GetTaskLogs show
 * it: copies s[0..n) (a region of a NUL-terminated string, which bounds every read) into out
 * (room for n + 1 bytes) with terminal colour codes dropped, CR LF and a lone CR as LF, other
 * control characters but tab as a space, bytes that are not UTF-8 as '?', and a NUL. Gives the
 * length written.
 */
size_t run_output_clean(const char *s, size_t n, char *out);

#endif
