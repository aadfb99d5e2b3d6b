/*
 * task_request.h - what a task request asks for, checked, without the network.
 *
 * Everything the task handlers (agent.c) do with a CreateTask, GetTask or DeleteTask before
 * Databricks is involved: decode the bytes, check the task type, resolve the Databricks
 * instance and apply the allowlist, and for a create build the runs/submit body. The fuzz
 * targets call these same functions, so what they fuzz is what the daemon runs.
 *
 * Each request has a thin part that unpacks its protocol generation's message (flyteidl.admin,
 * v1) into plain values, and checks that take only those values: a second generation adds an
 * unpacker and reuses the checks.
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

/* Room for any message the checks write (longer ones are cut). */
#define TASK_REQUEST_MESSAGE_SIZE 768

/* A CreateTask, checked and turned into a runs/submit. */
struct task_request_submit {
    /* Filled as far as the checks got, on failure too, for the handler's log line: */
    char *task_type;    /* owns; the template's type; NULL until the template is found */
    bool has_inputs;    /* the request carries inputs, of */
    size_t input_bytes; /* this packed size */
    char *instance;     /* owns; normalized and allowed; NULL until resolved */
    /* Set on success only: */
    char *body;      /* owns; the runs/submit body, JSON text */
    bool retry_safe; /* the body carries an idempotency_token: a repeat starts no second run */
    char idempotency_token[IDEMPOTENCY_TOKEN_SIZE]; /* "" when the request names no execution */
    /* Set on failure only: */
    char message[TASK_REQUEST_MESSAGE_SIZE]; /* for the caller: what is wrong, naming it */
};

/*
 * Checks the bytes of a flyteidl.admin.CreateTaskRequest (borrowed) against `config`
 * (borrowed) and fills *ret (free its strings with task_request_submit_done(), on failure
 * too). Returns GRPC_STATUS_OK, or the status to answer: INVALID_ARGUMENT (undecodable, a
 * string field that is not UTF-8 or holds a NUL (the message names the field), no
 * template or custom config, no or malformed instance, a job spec spec_build() refuses),
 * NOT_FOUND (a task type this connector does not serve), PERMISSION_DENIED (an instance the
 * allowlist does not name), RESOURCE_EXHAUSTED (out of memory).
 */
grpc_status_code task_request_create(const struct config *config, const uint8_t *request,
                                     size_t request_len, struct task_request_submit *ret);

/* Frees what *s owns and NULLs it; NULL-safe and idempotent. */
void task_request_submit_done(struct task_request_submit *s);

/* A GetTask or DeleteTask, checked: the run it names. */
struct task_request_run {
    char *task_type; /* owns; task_category.name, else the deprecated task_type; NULL when the
                      * request does not decode */
    char *instance;  /* owns; normalized and allowed; set on success only */
    char *run_id;    /* owns; 1-19 decimal digits; set on success only */
    char message[TASK_REQUEST_MESSAGE_SIZE]; /* set on failure only */
};

/*
 * Check the bytes of a flyteidl.admin.GetTaskRequest or DeleteTaskRequest (borrowed) against
 * `config` (borrowed): the task type, then its resource_meta and the instance allowlist. Fill
 * *ret (free with task_request_run_done(), on failure too). Return GRPC_STATUS_OK, or the
 * status to answer: INVALID_ARGUMENT (undecodable request or resource_meta, a string field that
 * is not UTF-8 or holds a NUL), NOT_FOUND (task
 * type), PERMISSION_DENIED (instance not allowed), RESOURCE_EXHAUSTED (out of memory).
 */
grpc_status_code task_request_get(const struct config *config, const uint8_t *request,
                                  size_t request_len, struct task_request_run *ret);
grpc_status_code task_request_delete(const struct config *config, const uint8_t *request,
                                     size_t request_len, struct task_request_run *ret);

/* Frees what *r owns and NULLs it; NULL-safe and idempotent. */
void task_request_run_done(struct task_request_run *r);

#endif
