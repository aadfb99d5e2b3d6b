/*
 * idempotency.c - derives the runs/submit idempotency_token from a Flyte task execution id.
 *
 * Encoding (version 1), hashed with SHA-256 and written as 64 lowercase hex digits:
 *   netstring("fdc-idem-v1") netstring(project) netstring(domain) netstring(execution_name)
 *   netstring(node_id) netstring(task_project) netstring(task_domain) netstring(task_name)
 *   netstring(task_version) netstring(org) netstring(decimal retry_attempt)
 * where netstring(s) = decimal byte length of s, ':', s, ','. The length prefix is what keeps
 * ("ab","c") and ("a","bc") apart; the tag lets a later encoding never collide with this one.
 * Pure, no allocation, any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "idempotency.h"
#include "sha256.h"

#define IDEMPOTENCY_VERSION_TAG "fdc-idem-v1"

static void hash_netstring(struct sha256_ctx *ctx, const char *s)
{
    char prefix[32];
    size_t len = s ? strlen(s) : 0;
    int n = snprintf(prefix, sizeof(prefix), "%zu:", len);

    sha256_update(ctx, prefix, (size_t)n);
    sha256_update(ctx, s, len);
    sha256_update(ctx, ",", 1);
}

int idempotency_token(const struct idempotency_task_execution *id,
                      char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char retry[16];

    if (!id || !id->execution_name || !id->execution_name[0] || !id->node_id || !id->node_id[0])
        return -EINVAL;

    /* The order here is the encoding: never reorder, only add a new version. */
    const char *const fields[] = {
        IDEMPOTENCY_VERSION_TAG, id->project,     id->domain,    id->execution_name, id->node_id,
        id->task_project,        id->task_domain, id->task_name, id->task_version,   id->org,
    };
    (void)snprintf(retry, sizeof(retry), "%" PRIu32, id->retry_attempt);

    sha256_init(&ctx);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        hash_netstring(&ctx, fields[i]);
    hash_netstring(&ctx, retry);
    sha256_final(&ctx, digest);

    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
        ret_token[2 * i] = hex[digest[i] >> 4];
        ret_token[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    ret_token[2 * SHA256_DIGEST_SIZE] = '\0';
    return 0;
}

int idempotency_token_from_metadata(const Flyteidl__Admin__TaskExecutionMetadata *metadata,
                                    char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    const Flyteidl__Core__TaskExecutionIdentifier *id =
        metadata ? metadata->task_execution_id : NULL;
    const Flyteidl__Core__NodeExecutionIdentifier *node = id ? id->node_execution_id : NULL;
    const Flyteidl__Core__WorkflowExecutionIdentifier *execution =
        node ? node->execution_id : NULL;
    const Flyteidl__Core__Identifier *task = id ? id->task_id : NULL;
    struct idempotency_task_execution key = {0};

    if (!execution)
        return -EINVAL;
    key.project = execution->project;
    key.domain = execution->domain;
    key.execution_name = execution->name;
    key.org = execution->org;
    key.node_id = node->node_id;
    if (task) {
        key.task_project = task->project;
        key.task_domain = task->domain;
        key.task_name = task->name;
        key.task_version = task->version;
    }
    key.retry_attempt = id->retry_attempt;
    return idempotency_token(&key, ret_token);
}
