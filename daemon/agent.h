/*
 * agent.h - CreateTask, GetTask and DeleteTask for Databricks tasks, for both
 * protocol generations: Flyte 1's flyteidl.service.AsyncAgentService and
 * Flyte 2's flyteidl2.connector.AsyncConnectorService.
 *
 * Each handler validates and decodes its request on the thread serving gRPC
 * (the loop thread with workers 0, the default; else a worker), hands one
 * Databricks request to the client (dbx.h, through creds.h for its token)
 * and returns; the answer
 * completes the gRPC call later, on the loop thread. Handlers never block
 * on the network: on the loop thread a blocked handler would stop every
 * call and every transfer.
 */
#ifndef FDC_AGENT_H
#define FDC_AGENT_H

#include "config.h"
#include "config_current.h"
#include "creds.h"
#include "dbx.h"
#include "metrics.h"
#include "server.h"

struct agent;
struct agent_service;

/* Borrows `current` (the configuration in force: each call takes the one in force when it
 * starts, to its end), `creds` (through which requests find their token and reach the Databricks
 * client) and `metrics` (may be NULL): all must outlive the agent. */
struct agent *agent_new(struct config_current *current, struct creds *creds,
                        struct metrics *metrics);
struct agent *agent_free(struct agent *agent);

/*
 * Borrows the context to register the handlers below with for `generation`'s service: the
 * handlers are shared, and the context says whose messages to read and answer. Valid while the
 * agent lives. Any thread.
 */
struct agent_service *agent_service(struct agent *agent, enum config_generation generation);

/* server_handler_fn implementations; context is an agent_service(). The thread serving gRPC. */
void agent_create_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len);
void agent_get_task(void *context, struct server_call *call, const uint8_t *request,
                    size_t request_len);
void agent_delete_task(void *context, struct server_call *call, const uint8_t *request,
                       size_t request_len);

#endif
