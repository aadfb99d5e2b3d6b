/*
 * task_metrics.c - GetTaskMetrics answers UNIMPLEMENTED, naming why (task_metrics.h). Owns
 * nothing; any thread.
 */
#include "task_metrics.h"

#include "log.h"

void task_metrics_get(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len)
{
    (void)context;
    (void)request;
    (void)request_len;
    server_call_fail(call, GRPC_STATUS_UNIMPLEMENTED, TASK_METRICS_REASON);
    log_debug("call failed", "operation", "metrics", "grpc_code", "12", "error",
              "GetTaskMetrics is not implemented");
}
