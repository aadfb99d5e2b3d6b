/*
 * run_info.h - the run details a GetTask answer carries in Resource.custom_info (field 6 in
 * both protocol generations), built from Databricks' runs/get answer and, once fetched, what
 * runs/get-output said.
 *
 * Propeller copies custom_info into the task's metadata, and the Flyte UI shows it: the job
 * and run ids, the cluster and Spark context, when the run started and ended, how long setup,
 * execution and cleanup took, why it terminated, a multi-task run's tasks with their states,
 * a notebook's exit value. So a user does not need the Databricks console for those.
 *
 * Keys (every one optional; present when Databricks gave the value):
 *   job_id, run_id                  strings of digits (ids are int64; a Struct number is a double)
 *   run_name, run_page_url          strings (the URL only when http(s))
 *   state, result_state             status.state (else state.life_cycle_state), state.result_state
 *   termination_code, termination_type, termination_message   status.termination_details
 *   cluster_id, spark_context_id    cluster_instance
 *   start_time, end_time            RFC 3339 UTC with milliseconds, e.g. "2023-11-14T22:13:20.000Z"
 *   setup_duration_s, execution_duration_s, cleanup_duration_s, run_duration_s   seconds (> 0)
 *   tasks                           runs with more than one task: [{task_key, run_id, state,
 *                                   result_state}], at most RUN_INFO_TASKS_MAX entries
 *   tasks_total                     the number of tasks, when tasks was cut
 *   notebook_result                 the notebook's exit value (runs/get-output), one line
 *   notebook_result_truncated       true when that was cut
 * Every string is valid UTF-8 on one line, cut after RUN_INFO_VALUE_MAX bytes (then ending in
 * "...") but the URL, whole or absent, and the notebook result (run_output.h bounds it), so the
 * object stays small whatever Databricks sends.
 *
 * Pure: no I/O, no globals written; any thread.
 */
#ifndef FDC_RUN_INFO_H
#define FDC_RUN_INFO_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#define RUN_INFO_VALUE_MAX 512
#define RUN_INFO_TASKS_MAX 64

/* What runs/get-output added; every pointer borrowed for the call. */
struct run_info_output {
    const char *notebook_result; /* NULL: none */
    bool notebook_result_truncated;
};

/*
 * Builds custom_info from `run` (borrowed: the parsed runs/get answer) and `output` (NULL
 * when runs/get-output was not asked or said nothing). Gives the object in *ret_info (free with
 * cJSON_Delete()). Returns 0, or -ENOMEM.
 */
int run_info_build(const cJSON *run, const struct run_info_output *output, cJSON **ret_info);

#endif
