/* phase: what a Databricks run's state means for Flyte.
 *
 * Turns the body of GET /api/2.1/jobs/runs/get into a flyteidl TaskExecution phase plus the
 * error details propeller wants (code, origin, recoverable). Pure: no I/O, no globals written;
 * every function may be called from any thread. */
#ifndef FDC_PHASE_H
#define FDC_PHASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Numbering equals flyteidl.core.TaskExecution.Phase: values go on the wire as they are. */
enum phase {
    PHASE_UNDEFINED = 0,
    PHASE_QUEUED = 1,
    PHASE_RUNNING = 2,
    PHASE_SUCCEEDED = 3,
    PHASE_ABORTED = 4,
    PHASE_FAILED = 5,
    PHASE_INITIALIZING = 6,
    PHASE_WAITING_FOR_RESOURCES = 7,
    PHASE_RETRYABLE_FAILED = 8,
    _PHASE_MAX,
};

/* Numbering equals flyteidl.core.ExecutionError.ErrorKind. */
enum phase_origin {
    PHASE_ORIGIN_UNKNOWN = 0,
    PHASE_ORIGIN_USER = 1,
    PHASE_ORIGIN_SYSTEM = 2,
    _PHASE_ORIGIN_MAX,
};

/* Longest message phase_from_run() gives, in bytes without the NUL; longer Databricks texts
 * are cut on a UTF-8 boundary and end in "...". */
#define PHASE_MESSAGE_MAX 2048
/* Longest run_page_url kept; a longer one is dropped (a cut URL would be wrong). */
#define PHASE_URL_MAX 2048

struct phase_result {
    enum phase phase;
    char *message;          /* owns; never NULL after success; valid UTF-8 */
    char *run_page_url;     /* owns; NULL when absent or not an http(s) URL */
    bool has_error;         /* true only for PHASE_FAILED and PHASE_RETRYABLE_FAILED */
    char *error_code;       /* owns; set iff has_error: the termination code, else the value that
                             * decided (type, life cycle or result state); at most 67 bytes */
    bool error_recoverable; /* true iff phase is PHASE_RETRYABLE_FAILED */
    enum phase_origin error_origin; /* PHASE_ORIGIN_UNKNOWN unless has_error */
    /* owns: Resource.custom_info as it goes on the wire after its tag: the length (a varint),
     * then the packed google.protobuf.Struct (run_info.h says what it holds); custom_info_len
     * bytes in all, NULL when none. phase_from_run() leaves it NULL: run_details.h adds it. */
    uint8_t *custom_info;
    size_t custom_info_len;
};

/* Reads `run` (borrows; the parsed runs/get answer) and fills *ret (whose strings the caller
 * then owns; free with phase_result_done()). Prefers the newer "status" object, falls back to
 * "state". Unknown states keep polling (PHASE_RUNNING); unknown outcomes of a finished run are
 * PHASE_RETRYABLE_FAILED. Returns 0, or -EINVAL when the answer carries no usable state
 * (*reterr_msg gives "runs/get answer has no state"), -ENOMEM. reterr_msg may be NULL. */
int phase_from_run(const cJSON *run, struct phase_result *ret, char **reterr_msg);

/* Frees r's strings and NULLs them; NULL-safe and idempotent. */
void phase_result_done(struct phase_result *r);

/* Static name of p ("QUEUED", ...); "UNDEFINED" for out-of-range values. */
const char *phase_name(enum phase p);

/* True for phases after which propeller stops polling this attempt: SUCCEEDED, FAILED,
 * ABORTED, RETRYABLE_FAILED. */
bool phase_is_terminal(enum phase p);

#endif
