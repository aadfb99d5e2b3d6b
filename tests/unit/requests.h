/*
 * requests.h - task requests as propeller sends them, packed to bytes, for the tests of the
 * request checks (test_task_request.c) and of the handlers (test_agent.c).
 *
 * A CreateTaskRequest is built from a TaskTemplate written as protobuf JSON (template_json),
 * optionally with a task execution id (REQUESTS_EXECUTION, the fields below); Get and Delete
 * requests from a task type and resource_meta text. The *2 functions build Flyte 2's
 * (flyteidl2.connector) requests, optionally with a connection carrying a call token.
 * requests_refused_creates lists the CreateTasks both layers must refuse, with the messages the
 * README promises. Every function gives a malloc'ed buffer (free()) and fails the running test when
 * it cannot. Include after <cmocka.h>.
 */
#pragma once

#include <grpc/status.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "flyteidl2/connector/connector.pb-c.h"
#include "idempotency.h"
#include "template_json.h"

/* The default_instance of the tests' configs; evil.example.com is never allowed. */
#define REQUESTS_INSTANCE "dbc-1.cloud.databricks.com"

/* The task execution id requests_create() sets when asked to. */
#define REQUESTS_PROJECT "flytesnacks"
#define REQUESTS_DOMAIN "development"
#define REQUESTS_EXECUTION "a1b2c3"
#define REQUESTS_NODE "n0"
#define REQUESTS_RETRY_ATTEMPT 1

/* A spark task whose template names no instance, with a container. */
#define REQUESTS_SPARK_TEMPLATE                                                                    \
    "{\"type\": \"spark\", \"custom\": {\"databricksConf\": {\"run_name\": \"t\","                 \
    " \"existing_cluster_id\": \"c-1\"}},"                                                         \
    " \"container\": {\"image\": \"img:1\", \"args\": [\"pyflyte-execute\", \"--x\"],"             \
    " \"env\": [{\"key\": \"K\", \"value\": \"V\"}]}}"

/* The idempotency token of the task execution requests_create() sets. */
static inline void requests_token(char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    struct idempotency_task_execution id = {
        .project = REQUESTS_PROJECT,
        .domain = REQUESTS_DOMAIN,
        .execution_name = REQUESTS_EXECUTION,
        .node_id = REQUESTS_NODE,
        .retry_attempt = REQUESTS_RETRY_ATTEMPT,
    };

    assert_int_equal(idempotency_token(&id, NULL, 0, ret_token), 0);
}

static inline uint8_t *requests_pack(const ProtobufCMessage *message, size_t *ret_len)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = malloc(len ? len : 1);

    assert_non_null(bytes);
    *ret_len = protobuf_c_message_pack(message, bytes);
    return bytes;
}

/* template_text: a TaskTemplate as JSON, or NULL for a request without one; namespace: the task
 * execution metadata's (NULL: none, or no metadata without an execution). */
static inline uint8_t *requests_create_in(const char *template_text, bool with_execution,
                                          bool with_inputs, const char *namespace, size_t *ret_len)
{
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;
    Flyteidl__Admin__TaskExecutionMetadata meta = FLYTEIDL__ADMIN__TASK_EXECUTION_METADATA__INIT;
    Flyteidl__Core__TaskExecutionIdentifier id = FLYTEIDL__CORE__TASK_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__NodeExecutionIdentifier node = FLYTEIDL__CORE__NODE_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__WorkflowExecutionIdentifier execution =
        FLYTEIDL__CORE__WORKFLOW_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__LiteralMap inputs = FLYTEIDL__CORE__LITERAL_MAP__INIT;
    Flyteidl__Core__TaskTemplate *template_ = NULL;
    char *error = NULL;
    uint8_t *bytes;

    if (template_text &&
        template_json_parse(template_text, strlen(template_text), &template_, &error) < 0)
        fail_msg("template does not parse: %s", error ? error : "?");
    req.template_ = template_;
    if (with_execution) {
        execution.project = (char *)REQUESTS_PROJECT;
        execution.domain = (char *)REQUESTS_DOMAIN;
        execution.name = (char *)REQUESTS_EXECUTION;
        node.node_id = (char *)REQUESTS_NODE;
        node.execution_id = &execution;
        id.node_execution_id = &node;
        id.retry_attempt = REQUESTS_RETRY_ATTEMPT;
        meta.task_execution_id = &id;
        req.task_execution_metadata = &meta;
    }
    if (namespace) {
        meta.namespace_ = (char *)namespace;
        req.task_execution_metadata = &meta;
    }
    if (with_inputs)
        req.inputs = &inputs;
    bytes = requests_pack(&req.base, ret_len);
    template_json_free(template_);
    return bytes;
}

static inline uint8_t *requests_create(const char *template_text, bool with_execution,
                                       bool with_inputs, size_t *ret_len)
{
    return requests_create_in(template_text, with_execution, with_inputs, NULL, ret_len);
}

/* A GetTaskRequest (delete false) or DeleteTaskRequest naming `category` (task_category.name;
 * NULL: none) and `legacy_type` (the deprecated task_type; NULL: none). */
static inline uint8_t *requests_run(bool delete, const char *category, const char *legacy_type,
                                    const char *resource_meta, size_t *ret_len)
{
    Flyteidl__Admin__GetTaskRequest get = FLYTEIDL__ADMIN__GET_TASK_REQUEST__INIT;
    Flyteidl__Admin__DeleteTaskRequest del = FLYTEIDL__ADMIN__DELETE_TASK_REQUEST__INIT;
    Flyteidl__Admin__TaskCategory cat = FLYTEIDL__ADMIN__TASK_CATEGORY__INIT;
    ProtobufCBinaryData meta = {strlen(resource_meta), (uint8_t *)resource_meta};

    cat.name = (char *)category;
    get.task_category = del.task_category = category ? &cat : NULL;
    get.task_type = del.task_type = (char *)(legacy_type ? legacy_type : "");
    get.resource_meta = del.resource_meta = meta;
    return requests_pack(delete ? &del.base : &get.base, ret_len);
}

/* Points *conn (with its one entry and entry pointer) at a connection whose secrets hold
 * "databricks_token": token, next to an unrelated secret that must be ignored. */
struct requests_connection {
    Flyteidl2__Core__Connection conn;
    Flyteidl2__Core__Connection__SecretsEntry entries[2];
    Flyteidl2__Core__Connection__SecretsEntry *ptrs[2];
};

static inline Flyteidl2__Core__Connection *requests_connection(struct requests_connection *c,
                                                               const char *token)
{
    flyteidl2__core__connection__init(&c->conn);
    for (size_t i = 0; i < 2; i++) {
        flyteidl2__core__connection__secrets_entry__init(&c->entries[i]);
        c->ptrs[i] = &c->entries[i];
    }
    c->entries[0].key = (char *)"other_secret";
    c->entries[0].value = (char *)"not-for-databricks";
    c->entries[1].key = (char *)"databricks_token";
    c->entries[1].value = (char *)token;
    c->conn.task_type = (char *)"databricks";
    c->conn.n_secrets = 2;
    c->conn.secrets = c->ptrs;
    return &c->conn;
}

/* Flyte 2's CreateTaskRequest has Flyte 1's field numbers (and Inputs' NamedLiterals are
 * wire-identical to LiteralMap's entries), so it is built as Flyte 1's, decoded as Flyte 2's and
 * given the connection: token NULL, none. */
static inline uint8_t *requests_create2(const char *template_text, bool with_execution,
                                        bool with_inputs, const char *token, size_t *ret_len)
{
    size_t len1;
    uint8_t *bytes1 = requests_create(template_text, with_execution, with_inputs, &len1), *bytes;
    Flyteidl2__Connector__CreateTaskRequest *req =
        flyteidl2__connector__create_task_request__unpack(NULL, len1, bytes1);
    struct requests_connection c;

    assert_non_null(req);
    if (template_text)
        assert_non_null(req->template_);
    if (with_inputs)
        assert_non_null(req->inputs);
    if (with_execution)
        assert_non_null(req->task_execution_metadata);
    req->connection = token ? requests_connection(&c, token) : NULL;
    bytes = requests_pack(&req->base, ret_len);
    req->connection = NULL;
    flyteidl2__connector__create_task_request__free_unpacked(req, NULL);
    free(bytes1);
    return bytes;
}

/* A Flyte 2 GetTaskRequest (delete false) or DeleteTaskRequest naming `category` (NULL: none),
 * with a connection carrying `token` (NULL: no connection). */
static inline uint8_t *requests_run2(bool delete, const char *category, const char *resource_meta,
                                     const char *token, size_t *ret_len)
{
    Flyteidl2__Connector__GetTaskRequest get = FLYTEIDL2__CONNECTOR__GET_TASK_REQUEST__INIT;
    Flyteidl2__Connector__DeleteTaskRequest del = FLYTEIDL2__CONNECTOR__DELETE_TASK_REQUEST__INIT;
    Flyteidl2__Connector__TaskCategory cat = FLYTEIDL2__CONNECTOR__TASK_CATEGORY__INIT;
    ProtobufCBinaryData meta = {strlen(resource_meta), (uint8_t *)resource_meta};
    struct requests_connection c;

    cat.name = (char *)category;
    get.task_category = del.task_category = category ? &cat : NULL;
    get.resource_meta = del.resource_meta = meta;
    get.connection = del.connection = token ? requests_connection(&c, token) : NULL;
    return requests_pack(delete ? &del.base : &get.base, ret_len);
}

/* A CreateTask refused before any network, with what the caller hears and what the handler's
 * log line gets. */
struct requests_refusal {
    const char *template_text; /* NULL: no template */
    grpc_status_code code;
    const char *message;   /* ending in a space: a prefix, another module's words follow */
    const char *task_type; /* NULL: none read yet */
    const char *instance;  /* NULL: not resolved yet */
};

static const struct requests_refusal requests_refused_creates[] = {
    {NULL, GRPC_STATUS_INVALID_ARGUMENT, "CreateTaskRequest has no template", NULL, NULL},
    {"{\"type\": \"python-task\", \"custom\": {}}", GRPC_STATUS_NOT_FOUND,
     "no connector for task type 'python-task'; this one serves 'spark' and 'databricks'",
     "python-task", NULL},
    {"{\"type\": \"spark\"}", GRPC_STATUS_INVALID_ARGUMENT,
     "task template has no custom config: missing databricksConf", "spark", NULL},
    {"{\"type\": \"spark\", \"custom\": {\"databricksInstance\": \"bad host\"}}",
     GRPC_STATUS_INVALID_ARGUMENT, "invalid Databricks instance: 'bad host' ", "spark", NULL},
    {"{\"type\": \"spark\", \"custom\": {\"databricksInstance\": \"evil.example.com\","
     " \"databricksConf\": {\"existing_cluster_id\": \"c\"}}}",
     GRPC_STATUS_PERMISSION_DENIED,
     "Databricks instance 'evil.example.com' is not allowed by this connector "
     "(allowed_instances)",
     "spark", NULL},
    {"{\"type\": \"spark\", \"custom\": {\"sparkConf\": {}}}", GRPC_STATUS_INVALID_ARGUMENT,
     "missing databricksConf in the task's custom config", "spark", REQUESTS_INSTANCE},
    {"{\"type\": \"databricks\", \"custom\": {\"databricksConf\": {}}}",
     GRPC_STATUS_INVALID_ARGUMENT,
     "Either existing_cluster_id, new_cluster, environment_key, or environments must be "
     "specified in databricksConf",
     "databricks", REQUESTS_INSTANCE},
};

#define REQUESTS_REFUSED_CREATES                                                                   \
    (sizeof(requests_refused_creates) / sizeof(requests_refused_creates[0]))

/* True when got is the expected message (or starts with it, for a prefix). */
static inline bool requests_message_is(const char *got, const char *expected)
{
    size_t n = strlen(expected);

    if (n > 0 && expected[n - 1] == ' ')
        return strncmp(got, expected, n) == 0;
    return strcmp(got, expected) == 0;
}
