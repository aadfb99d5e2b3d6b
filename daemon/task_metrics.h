/*
 * task_metrics.h - GetTaskMetrics, which this connector does not implement, and why.
 *
 * flyteidl's GetTaskMetricsResponse holds ExecutionMetricResult values: a metric name such as
 * EXECUTION_METRIC_USED_CPU_AVG and its data as a Prometheus range-query result (a matrix of
 * time series sampled every `step` between the request's start and end times). Databricks'
 * Jobs API gives a run's timings as single durations (setup, execution, cleanup), not samples
 * of a quantity over time, and no resource usage at all; a series made of them would draw a
 * line that measures nothing. The timings are in every GetTask answer's custom_info instead
 * (run_info.h). So the method answers UNIMPLEMENTED with TASK_METRICS_REASON, which says so,
 * rather than the catch-all's bare "not implemented".
 */
#ifndef FDC_TASK_METRICS_H
#define FDC_TASK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define TASK_METRICS_REASON                                                                        \
    "GetTaskMetrics is not implemented by the Databricks connector: its results are Prometheus "   \
    "time series of resource usage (ExecutionMetricResult), and Databricks' Jobs API gives a "     \
    "run's setup, execution and cleanup durations, not samples over time; those timings are in "   \
    "GetTask's custom_info"

/* server_handler_fn for GetTaskMetrics (any generation): answers UNIMPLEMENTED with the
 * reason. context is unused. The thread serving gRPC. */
void task_metrics_get(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len);

#endif
