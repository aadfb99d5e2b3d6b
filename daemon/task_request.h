/*
 * task_request.h - what a task request asks for, checked, without the network.
 *
 * Everything the task handlers (agent.c) do with a CreateTask, GetTask or DeleteTask before
 * Databricks is involved: decode the bytes, check the task type, resolve the Databricks
 * instance and apply the allowlist, and for a create build the runs/submit body. The fuzz
 * targets call these same functions, so what they fuzz is what the daemon runs.
 *
 * Each request has a thin part that unpacks its protocol generation's message (flyteidl.admin
 * for Flyte 1, flyteidl2.connector for Flyte 2) into plain values, and checks that take only
 * those values, whatever the generation.
 *
 * Flyte 2's requests carry the executor-resolved connection; its secret "databricks_token" (the
 * name flyte-sdk's Databricks task gives it in custom.secrets) is the Databricks token for that
 * one call, handed back as call_token.
 *
 * A refusal comes back as the gRPC status and message the handler answers with. Pure: no I/O,
 * no global state written; any thread.
 */
#ifndef FDC_TASK_REQUEST_H
#define FDC_TASK_REQUEST_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "idempotency.h"

/* A task type this connector serves; ListAgents lists task_request_categories in order. */
struct task_request_category {
    const char *name;
    int version;
};

#define TASK_REQUEST_CATEGORIES 2
extern const struct task_request_category task_request_categories[TASK_REQUEST_CATEGORIES];

/* True for the task types in task_request_categories ("spark", "databricks"). */
bool task_request_type_supported(const char *name);

/* Where the token for a call may come from besides the call itself and the connector's own
 * (creds.h), as the request says. */
struct task_request_creds {
    char *namespace;    /* owns; the task's namespace (CreateTask) or resource_meta's; NULL: none */
    char *token_secret; /* owns; custom.databricksTokenSecret or resource_meta's; NULL: flytekit's
                         * default name */
    char *auth_token;   /* owns, SECRET: flytekit's auth_token from resource_meta; NULL: none */
};

/* Room for any message the checks write (longer ones are cut). */
#define TASK_REQUEST_MESSAGE_SIZE 768

/* The connection secret that carries a Flyte 2 call's Databricks token. */
#define TASK_REQUEST_TOKEN_SECRET "databricks_token"

/* A call token's tag: 64 lowercase hex digits of its SHA-256, and the NUL. */
#define TASK_REQUEST_TOKEN_TAG_SIZE 65

/* A CreateTask, checked and turned into a runs/submit. */
struct task_request_submit {
    /* Filled as far as the checks got, on failure too, for the handler's log line: */
    char *task_type;    /* owns; the template's type; NULL until the template is found */
    bool has_inputs;    /* the request carries inputs, of */
    size_t input_bytes; /* this packed size */
    char *instance;     /* owns; normalized and allowed; NULL until resolved */
    /* Set on success only: */
    struct task_request_creds creds; /* namespace (a valid one, else none) and token_secret */
    char *body;                      /* owns; the runs/submit body, JSON text */
    bool retry_safe; /* the body carries an idempotency_token: a repeat starts no second run */
    char idempotency_token[IDEMPOTENCY_TOKEN_SIZE]; /* "" when the request names no execution */
    char *call_token; /* owns; SECRET, never log it: the Databricks token the request brings for
                       * this call alone (Flyte 2's connection secret); NULL: none, use the
                       * connector's. Zeroed by task_request_submit_done(). */
    /* Set on failure only: */
    char message[TASK_REQUEST_MESSAGE_SIZE]; /* for the caller: what is wrong, naming it */
};

/*
 * Checks the bytes of a CreateTaskRequest of `generation` (flyteidl.admin or
 * flyteidl2.connector; borrowed) against `config` (borrowed) and fills *ret (free its strings with
 * task_request_submit_done(), on failure too). Returns GRPC_STATUS_OK, or the status to answer:
 * INVALID_ARGUMENT (undecodable, a string field that is not UTF-8 or holds a NUL (the message
 * names the field), no template or custom config, no or malformed instance, a
 * databricksTokenSecret that is no Kubernetes Secret name, a job spec spec_build() refuses, a
 * connection secret an HTTP header cannot carry), NOT_FOUND (a task type this connector does not
 * serve), PERMISSION_DENIED (an instance the allowlist does not name), RESOURCE_EXHAUSTED (out
 * of memory).
 */
grpc_status_code task_request_create(const struct config *config, enum config_generation generation,
                                     const uint8_t *request, size_t request_len,
                                     struct task_request_submit *ret);

/* Frees what *s owns (zeroing call_token first) and NULLs it; NULL-safe and idempotent. */
void task_request_submit_done(struct task_request_submit *s);

/* A GetTask or DeleteTask, checked: the run it names. */
struct task_request_run {
    char *task_type;  /* owns; task_category.name, else the deprecated task_type; NULL when the
                       * request does not decode */
    char *instance;   /* owns; normalized and allowed; set on success only */
    char *run_id;     /* owns; 1-19 decimal digits; set on success only */
    char *call_token; /* owns; SECRET, as in task_request_submit; set on success only */
    /* The hex SHA-256 of call_token, "" without one: calls may share a status read only when
     * their tags are equal, and the tag can be kept where the token must not be. */
    char call_token_tag[TASK_REQUEST_TOKEN_TAG_SIZE];
    struct task_request_creds creds;         /* from resource_meta; set on success only */
    char message[TASK_REQUEST_MESSAGE_SIZE]; /* set on failure only */
};

/*
 * Check the bytes of a GetTaskRequest or DeleteTaskRequest of `generation` (borrowed) against
 * `config` (borrowed): the task type, then its resource_meta and the instance allowlist, then
 * the connection's token. Fill *ret (free with task_request_run_done(), on failure too). Return
 * GRPC_STATUS_OK, or the status to answer: INVALID_ARGUMENT (undecodable request or
 * resource_meta, a string field that is not UTF-8 or holds a NUL, a connection secret an HTTP
 * header cannot carry), NOT_FOUND (task type), PERMISSION_DENIED (instance not allowed),
 * RESOURCE_EXHAUSTED (out of memory).
 */
grpc_status_code task_request_get(const struct config *config, enum config_generation generation,
                                  const uint8_t *request, size_t request_len,
                                  struct task_request_run *ret);
grpc_status_code task_request_delete(const struct config *config, enum config_generation generation,
                                     const uint8_t *request, size_t request_len,
                                     struct task_request_run *ret);

/* Frees what *r owns (zeroing call_token first) and NULLs it; NULL-safe and idempotent. */
void task_request_run_done(struct task_request_run *r);

/* A GetTaskLogs, checked: the run it names and the page it asks for (log_page.h). */
struct task_request_logs {
    struct task_request_run run; /* as for a GetTask */
    uint64_t lines;              /* 0: as many as a page holds */
    char *token;                 /* owns; "" for the first page; set on success only */
};

/*
 * Checks the bytes of a GetTaskLogsRequest of `generation` (flyteidl.admin or
 * flyteidl2.connector; borrowed) as task_request_get() checks a GetTaskRequest, then its token
 * (a line number, log_page.h: INVALID_ARGUMENT otherwise). Neither generation's request carries
 * a connection: logs are read with the connector's token. Fills *ret (free with
 * task_request_logs_done(), on failure too; the message is ret->run.message).
 */
grpc_status_code task_request_logs(const struct config *config, enum config_generation generation,
                                   const uint8_t *request, size_t request_len,
                                   struct task_request_logs *ret);

/* Frees what *l owns and NULLs it; NULL-safe and idempotent. */
void task_request_logs_done(struct task_request_logs *l);

#endif
