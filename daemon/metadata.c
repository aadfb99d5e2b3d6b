/*
 * metadata.c - ListAgents / GetAgent (Flyte 1) and ListConnectors /
 * GetConnector (Flyte 2). The answer is static data: flytekit registers two
 * connectors named "Databricks Connector", for task types "spark" (v0) and
 * "databricks" (v0); we serve both as one agent, or one connector. The list
 * is task_request.c's, the one requests are checked against.
 */
#include "metadata.h"

#include <stdio.h>
#include <string.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "flyteidl2/connector/connector.pb-c.h"
#include "task_request.h"

/* Fills *agent with pointers into the caller's arrays (no allocation). */
static void describe_agent(Flyteidl__Admin__Agent *agent,
                           Flyteidl__Admin__TaskCategory categories[TASK_REQUEST_CATEGORIES],
                           Flyteidl__Admin__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES],
                           char *type_names[TASK_REQUEST_CATEGORIES])
{
    flyteidl__admin__agent__init(agent);
    agent->name = (char *)METADATA_AGENT_NAME;
    agent->is_sync = 0;
    for (size_t i = 0; i < TASK_REQUEST_CATEGORIES; i++) {
        flyteidl__admin__task_category__init(&categories[i]);
        categories[i].name = (char *)task_request_categories[i].name;
        categories[i].version = task_request_categories[i].version;
        category_ptrs[i] = &categories[i];
        type_names[i] = (char *)task_request_categories[i].name;
    }
    agent->n_supported_task_categories = TASK_REQUEST_CATEGORIES;
    agent->supported_task_categories = category_ptrs;
    /* Deprecated, but older propellers still read it. */
    agent->n_supported_task_types = TASK_REQUEST_CATEGORIES;
    agent->supported_task_types = type_names;
}

void metadata_list_agents(void *context, struct server_call *call, const uint8_t *request,
                          size_t request_len)
{
    Flyteidl__Admin__ListAgentsRequest *req;
    Flyteidl__Admin__ListAgentsResponse resp = FLYTEIDL__ADMIN__LIST_AGENTS_RESPONSE__INIT;
    Flyteidl__Admin__Agent agent;
    Flyteidl__Admin__Agent *agents[1] = {&agent};
    Flyteidl__Admin__TaskCategory categories[TASK_REQUEST_CATEGORIES];
    Flyteidl__Admin__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES];
    char *type_names[TASK_REQUEST_CATEGORIES];

    (void)context;
    req = flyteidl__admin__list_agents_request__unpack(NULL, request_len, request);
    if (!req) {
        server_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "request does not decode as flyteidl.admin.ListAgentsRequest");
        return;
    }
    flyteidl__admin__list_agents_request__free_unpacked(req, NULL);
    describe_agent(&agent, categories, category_ptrs, type_names);
    resp.n_agents = 1;
    resp.agents = agents;
    server_call_reply(call, &resp.base);
}

/* The refusal of a Get for any other name, naming it. */
static void fail_unknown(struct server_call *call, const char *kind, const char *name)
{
    char message[256];

    snprintf(message, sizeof(message), "no %s named '%.128s'; this connector serves '%s'", kind,
             name, METADATA_AGENT_NAME);
    server_call_fail(call, GRPC_STATUS_NOT_FOUND, message);
}

void metadata_get_agent(void *context, struct server_call *call, const uint8_t *request,
                        size_t request_len)
{
    Flyteidl__Admin__GetAgentRequest *req;
    Flyteidl__Admin__GetAgentResponse resp = FLYTEIDL__ADMIN__GET_AGENT_RESPONSE__INIT;
    Flyteidl__Admin__Agent agent;
    Flyteidl__Admin__TaskCategory categories[TASK_REQUEST_CATEGORIES];
    Flyteidl__Admin__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES];
    char *type_names[TASK_REQUEST_CATEGORIES];

    (void)context;
    req = flyteidl__admin__get_agent_request__unpack(NULL, request_len, request);
    if (!req) {
        server_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "request does not decode as flyteidl.admin.GetAgentRequest");
        return;
    }
    if (strcmp(req->name, METADATA_AGENT_NAME) != 0) {
        fail_unknown(call, "agent", req->name);
        goto out;
    }
    describe_agent(&agent, categories, category_ptrs, type_names);
    resp.agent = &agent;
    server_call_reply(call, &resp.base);
out:
    flyteidl__admin__get_agent_request__free_unpacked(req, NULL);
}

/* Flyte 2's Connector: a name and the categories, nothing deprecated. Fills *connector with
 * pointers into the caller's arrays (no allocation). */
static void
describe_connector(Flyteidl2__Connector__Connector *connector,
                   Flyteidl2__Connector__TaskCategory categories[TASK_REQUEST_CATEGORIES],
                   Flyteidl2__Connector__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES])
{
    flyteidl2__connector__connector__init(connector);
    connector->name = (char *)METADATA_AGENT_NAME;
    for (size_t i = 0; i < TASK_REQUEST_CATEGORIES; i++) {
        flyteidl2__connector__task_category__init(&categories[i]);
        categories[i].name = (char *)task_request_categories[i].name;
        categories[i].version = task_request_categories[i].version;
        category_ptrs[i] = &categories[i];
    }
    connector->n_supported_task_categories = TASK_REQUEST_CATEGORIES;
    connector->supported_task_categories = category_ptrs;
}

void metadata_list_connectors(void *context, struct server_call *call, const uint8_t *request,
                              size_t request_len)
{
    Flyteidl2__Connector__ListConnectorsRequest *req;
    Flyteidl2__Connector__ListConnectorsResponse resp =
        FLYTEIDL2__CONNECTOR__LIST_CONNECTORS_RESPONSE__INIT;
    Flyteidl2__Connector__Connector connector;
    Flyteidl2__Connector__Connector *connectors[1] = {&connector};
    Flyteidl2__Connector__TaskCategory categories[TASK_REQUEST_CATEGORIES];
    Flyteidl2__Connector__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES];

    (void)context;
    req = flyteidl2__connector__list_connectors_request__unpack(NULL, request_len, request);
    if (!req) {
        server_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "request does not decode as flyteidl2.connector.ListConnectorsRequest");
        return;
    }
    flyteidl2__connector__list_connectors_request__free_unpacked(req, NULL);
    describe_connector(&connector, categories, category_ptrs);
    resp.n_connectors = 1;
    resp.connectors = connectors;
    server_call_reply(call, &resp.base);
}

void metadata_get_connector(void *context, struct server_call *call, const uint8_t *request,
                            size_t request_len)
{
    Flyteidl2__Connector__GetConnectorRequest *req;
    Flyteidl2__Connector__GetConnectorResponse resp =
        FLYTEIDL2__CONNECTOR__GET_CONNECTOR_RESPONSE__INIT;
    Flyteidl2__Connector__Connector connector;
    Flyteidl2__Connector__TaskCategory categories[TASK_REQUEST_CATEGORIES];
    Flyteidl2__Connector__TaskCategory *category_ptrs[TASK_REQUEST_CATEGORIES];

    (void)context;
    req = flyteidl2__connector__get_connector_request__unpack(NULL, request_len, request);
    if (!req) {
        server_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "request does not decode as flyteidl2.connector.GetConnectorRequest");
        return;
    }
    if (strcmp(req->name, METADATA_AGENT_NAME) != 0) {
        fail_unknown(call, "connector", req->name);
        goto out;
    }
    describe_connector(&connector, categories, category_ptrs);
    resp.connector = &connector;
    server_call_reply(call, &resp.base);
out:
    flyteidl2__connector__get_connector_request__free_unpacked(req, NULL);
}
