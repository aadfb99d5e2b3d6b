/*
 * idempotency.h - the Databricks runs/submit idempotency_token for one Flyte task attempt.
 *
 * Databricks answers a second runs/submit carrying the same token with the first run's id, so a
 * CreateTask that propeller retries after losing our answer cannot start a second run. The
 * token is derived only from the task execution id (and, when configured, a secret key), hence
 * equal across retries of the same call and different for every other attempt (a new
 * retry_attempt is a new run).
 *
 * Without a key the token is a plain hash of ids that other users of the workspace may know or
 * guess (project, domain, execution name), so one of them could submit a run with a token of a
 * Flyte attempt to come, which that attempt would then silently adopt. With a key (the
 * idempotency_key_file setting) it is an HMAC under that key, which only the connector can
 * compute.
 *
 * Pure: no global state, any thread.
 */
#ifndef FDC_IDEMPOTENCY_H
#define FDC_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "flyteidl2/connector/connector.pb-c.h"

/* 64 lowercase hex characters (Databricks' limit is 64) plus the terminating NUL. */
#define IDEMPOTENCY_TOKEN_SIZE 65

/* flyteidl.core.TaskExecutionIdentifier, flattened. Every string borrows from the caller for
 * the duration of the call; NULL is the same as "". */
struct idempotency_task_execution {
    const char *project;        /* node_execution_id.execution_id.project */
    const char *domain;         /* node_execution_id.execution_id.domain */
    const char *execution_name; /* node_execution_id.execution_id.name */
    const char *node_id;        /* node_execution_id.node_id */
    const char *task_project;   /* task_id.project */
    const char *task_domain;    /* task_id.domain */
    const char *task_name;      /* task_id.name */
    const char *task_version;   /* task_id.version */
    const char *org;            /* node_execution_id.execution_id.org */
    uint32_t retry_attempt;
};

/*
 * Writes the token for id into ret_token: the lowercase hex SHA-256 of the encoding described
 * in idempotency.c (version tag "fdc-idem-v1", then every field length-prefixed, so no two
 * different ids share an encoding) when key is NULL; the lowercase hex HMAC-SHA256 of the same
 * encoding under key[0..key_len) (borrowed; a secret) otherwise. The value is part of the wire
 * contract with running tasks: changing the encoding, or the key, changes every token.
 * Returns 0, or (ret_token untouched) -EINVAL when id is NULL or execution_name or node_id is
 * empty: without them there is nothing that tells two attempts apart; -ENOMEM when the scratch
 * copy of the encoding or the digest cannot be allocated.
 */
int idempotency_token(const struct idempotency_task_execution *id, const void *key, size_t key_len,
                      char ret_token[IDEMPOTENCY_TOKEN_SIZE]);

/*
 * The token for a CreateTaskRequest's task_execution_metadata (borrowed; may
 * be NULL): its task_execution_id's execution, node, task and retry attempt,
 * under key as idempotency_token() takes it.
 * Returns 0, -EINVAL when the request names no execution and node, or -ENOMEM.
 */
int idempotency_token_from_metadata(const Flyteidl__Admin__TaskExecutionMetadata *metadata,
                                    const void *key, size_t key_len,
                                    char ret_token[IDEMPOTENCY_TOKEN_SIZE]);

/* The same for Flyte 2's task_execution_metadata, whose task execution id has Flyte 1's
 * fields: the same id gives the same token in either generation. */
int idempotency_token_from_metadata2(const Flyteidl2__Connector__TaskExecutionMetadata *metadata,
                                     const void *key, size_t key_len,
                                     char ret_token[IDEMPOTENCY_TOKEN_SIZE]);

#endif
