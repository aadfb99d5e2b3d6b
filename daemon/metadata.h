/*
 * metadata.h - what this connector serves: Flyte 1's
 * flyteidl.service.AgentMetadataService (ListAgents, GetAgent) and Flyte 2's
 * flyteidl2.connector.ConnectorMetadataService (ListConnectors,
 * GetConnector). Propeller calls ListAgents every poll interval and routes
 * task types by the supported_task_categories it reads.
 */
#ifndef FDC_METADATA_H
#define FDC_METADATA_H

#include "server.h"

/* The agent name flytekit's connector registers; kept for drop-in dashboards. */
#define METADATA_AGENT_NAME "Databricks Connector"

/* server_handler_fn for ListAgents and GetAgent; context unused. */
void metadata_list_agents(void *context, struct server_call *call, const uint8_t *request,
                          size_t request_len);
void metadata_get_agent(void *context, struct server_call *call, const uint8_t *request,
                        size_t request_len);

/* server_handler_fn for Flyte 2's ListConnectors and GetConnector; context unused. */
void metadata_list_connectors(void *context, struct server_call *call, const uint8_t *request,
                              size_t request_len);
void metadata_get_connector(void *context, struct server_call *call, const uint8_t *request,
                            size_t request_len);

#endif
