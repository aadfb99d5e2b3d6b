/*
 * task_logs.h - GetTaskLogs: the lines of a run's output (log_page.h), streamed as a header
 * (the next page's token, empty when nothing remains) and then body messages.
 *
 * A call reads the run (runs/get) to find the task run whose output to show (run_output.h),
 * then that task run's runs/get-output, picks the page its `lines` and `token` ask for and
 * streams it one message at a time (server.h). A run with no output yet gives a header with
 * an empty token and nothing else, not an error.
 *
 * The protocol generation is a codec: which request it decodes (task_request_logs()) and how a
 * header and a body are packed. Flyte 1 (flyteidl.service.AsyncAgentService) and Flyte 2
 * (flyteidl2.connector.AsyncConnectorService, whose body also has structured lines with an
 * originator) share everything else.
 *
 * Threads: the handler runs on the thread serving gRPC; the rest on the loop thread (Databricks
 * callbacks) or the serving thread (stream callbacks); nothing blocks.
 */
#ifndef FDC_TASK_LOGS_H
#define FDC_TASK_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "config_current.h"
#include "creds.h"
#include "dbx.h"
#include "metrics.h"
#include "server.h"
#include "task_request.h"

struct task_logs;

/* One protocol generation's GetTaskLogs messages. */
struct task_logs_codec {
    enum config_generation generation; /* whose request task_request_logs() decodes */
    /* Send a header with `token` ("" when nothing remains), and a body with lines[0..n). */
    void (*send_header)(struct server_call *call, const char *token, server_sent_fn sent,
                        void *user);
    void (*send_body)(struct server_call *call, char *const *lines, size_t n, server_sent_fn sent,
                      void *user);
};

extern const struct task_logs_codec task_logs_codec_v1;
extern const struct task_logs_codec task_logs_codec_v2;

/* Borrows current (the configuration in force: each call keeps the one in force when it
 * started), creds (through which requests find their token and reach the Databricks client) and
 * metrics (may be NULL); all must outlive it. Gives NULL on OOM. */
struct task_logs *task_logs_new(struct config_current *current, struct creds *creds,
                                struct metrics *metrics);
struct task_logs *task_logs_free(struct task_logs *logs);

/* server_handler_fn for /flyteidl.service.AsyncAgentService/GetTaskLogs; context: the
 * struct task_logs. */
void task_logs_get_v1(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len);

/* The same for /flyteidl2.connector.AsyncConnectorService/GetTaskLogs. */
void task_logs_get_v2(void *context, struct server_call *call, const uint8_t *request,
                      size_t request_len);

/* The same for any codec. */
void task_logs_get(struct task_logs *logs, const struct task_logs_codec *codec,
                   struct server_call *call, const uint8_t *request, size_t request_len);

#endif
