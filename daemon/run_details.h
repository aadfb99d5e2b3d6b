/*
 * run_details.h - what a GetTask answer adds to the phase: custom_info on every answer, and,
 * for a run that is over, what runs/get-output says (the exception of a failed run after its
 * state message; a notebook's exit value), asked at most once per run.
 *
 * The decisions and texts are pure (run_output.h, run_info.h); this module does the one
 * Databricks request and keeps its outcome in the run map (runs.h). Nothing here is specific
 * to a protocol generation: Resource.custom_info is field 6 in both, and the status it fills
 * is the one every answer is built from.
 *
 * Threads: run_details_add() on the thread that ran the runs/get callback (the loop thread);
 * its `done` runs there too. The other functions: any thread.
 */
#ifndef FDC_RUN_DETAILS_H
#define FDC_RUN_DETAILS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "creds.h"
#include "dbx.h"
#include "google/protobuf/struct.pb-c.h"
#include "phase.h"
#include "runs.h"

/* Where the output comes from and where its outcome is kept; every pointer borrowed for the
 * call (the strings are copied when the request goes out). */
struct run_details_request {
    struct creds *creds;         /* the request finds its token there, as the runs/get did */
    const struct config *config; /* the call's, for creds_request(); must outlive the request */
    const struct creds_ask *ask; /* the run's token sources besides its own token */
    struct runs *runs;           /* NULL, or the run is not in it: the outcome is not kept */
    const char *instance;
    const char *run_id;     /* the run GetTask asked about (runs/get-output may get a task's id) */
    const char *credential; /* the tag of the token the run was read with (runs.h); "": default */
    const char *token;      /* that token, for runs/get-output (dbx_call.token); NULL: default */
    int64_t deadline_ms;    /* the runs/get-output request answers by then */
};

/* Gets the completed status, borrowed for the call; the callee frees it afterwards. */
typedef void (*run_details_done_fn)(void *user, struct phase_result *status);

/*
 * Completes *status (takes it: the caller's struct is zeroed), which phase_from_run() read from
 * `run` (borrowed: the runs/get answer): custom_info always; for a run that is over and failed
 * or ran a notebook, what runs/get-output said: from the run map when it was asked already,
 * else asked now (once). Calls done(user, status) exactly once, before returning or later on
 * the loop thread. A runs/get-output that fails (or memory that runs out) leaves the state
 * message alone, never an error.
 */
void run_details_add(const struct run_details_request *req, const cJSON *run,
                     struct phase_result *status, run_details_done_fn done, void *user);

/* Resource.custom_info's field number, the same in flyteidl.admin and flyteidl2.connector. */
#define RUN_DETAILS_CUSTOM_INFO_FIELD 6

/*
 * status->custom_info as a field for the Resource being packed, to hang on its
 * ProtobufCMessage.unknown_fields: protobuf-c writes such a field verbatim after the message's
 * own fields (any order is valid protobuf), so the Struct packed once by run_details_add() goes
 * out without being unpacked and packed again for every answer (it was a sixth of a GetTask's
 * instructions). Points *ret_field at status's bytes (borrowed: status must outlive the
 * packing); gives 1, or 0 when status has no custom_info (*ret_field untouched).
 */
size_t run_details_custom_info(const struct phase_result *status,
                               ProtobufCMessageUnknownField *ret_field);

#endif
