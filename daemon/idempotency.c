/*
 * idempotency.c - derives the runs/submit idempotency_token from a Flyte task execution id.
 *
 * Encoding (version 1), hashed with SHA-256 and written as 64 lowercase hex digits:
 *   netstring("fdc-idem-v1") netstring(project) netstring(domain) netstring(execution_name)
 *   netstring(node_id) netstring(task_project) netstring(task_domain) netstring(task_name)
 *   netstring(task_version) netstring(org) netstring(decimal retry_attempt)
 * where netstring(s) = decimal byte length of s, ':', s, ','. The length prefix is what keeps
 * ("ab","c") and ("a","bc") apart; the tag lets a later encoding never collide with this one.
 * With a key the same encoding goes through HMAC-SHA256 under it instead of SHA-256.
 * SHA-256 and HMAC are OpenSSL's (libcrypto is linked for TLS anyway). Pure: one scratch
 * allocation, no global state, any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "idempotency.h"

#define IDEMPOTENCY_VERSION_TAG "fdc-idem-v1"
#define SHA256_DIGEST_SIZE 32
/* Room for a netstring's length prefix and its ':' and ','. */
#define NETSTRING_OVERHEAD 24

/* Appends netstring(s) at out (which has room for it); returns the bytes written. */
static size_t put_netstring(char *out, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    int n = sprintf(out, "%zu:", len);

    if (len > 0)
        memcpy(out + n, s, len);
    out[(size_t)n + len] = ',';
    return (size_t)n + len + 1;
}

int idempotency_token(const struct idempotency_task_execution *id, const void *key, size_t key_len,
                      char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char retry[16], *encoding = NULL;
    size_t size = 0, len = 0;
    int r;

    if (!id || !id->execution_name || !id->execution_name[0] || !id->node_id || !id->node_id[0])
        return -EINVAL;

    /* The order here is the encoding: never reorder, only add a new version. */
    const char *const fields[] = {
        IDEMPOTENCY_VERSION_TAG, id->project,     id->domain,    id->execution_name, id->node_id,
        id->task_project,        id->task_domain, id->task_name, id->task_version,   id->org,
    };
    (void)snprintf(retry, sizeof(retry), "%" PRIu32, id->retry_attempt);

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        size += (fields[i] ? strlen(fields[i]) : 0) + NETSTRING_OVERHEAD;
    size += strlen(retry) + NETSTRING_OVERHEAD;
    encoding = malloc(size);
    if (!encoding) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        len += put_netstring(encoding + len, fields[i]);
    len += put_netstring(encoding + len, retry);

    if (key ? !HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)encoding, len, digest,
                    &digest_len)
            : !EVP_Digest(encoding, len, digest, &digest_len, EVP_sha256(), NULL)) {
        r = -ENOMEM;
        goto out;
    }
    if (digest_len != SHA256_DIGEST_SIZE) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
        ret_token[2 * i] = hex[digest[i] >> 4];
        ret_token[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    ret_token[2 * SHA256_DIGEST_SIZE] = '\0';
    r = 0;
out:
    free(encoding);
    return r;
}

int idempotency_token_from_metadata(const Flyteidl__Admin__TaskExecutionMetadata *metadata,
                                    const void *key, size_t key_len,
                                    char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    const Flyteidl__Core__TaskExecutionIdentifier *id =
        metadata ? metadata->task_execution_id : NULL;
    const Flyteidl__Core__NodeExecutionIdentifier *node = id ? id->node_execution_id : NULL;
    const Flyteidl__Core__WorkflowExecutionIdentifier *execution = node ? node->execution_id : NULL;
    const Flyteidl__Core__Identifier *task = id ? id->task_id : NULL;
    struct idempotency_task_execution attempt = {0};

    if (!execution)
        return -EINVAL;
    attempt.project = execution->project;
    attempt.domain = execution->domain;
    attempt.execution_name = execution->name;
    attempt.org = execution->org;
    attempt.node_id = node->node_id;
    if (task) {
        attempt.task_project = task->project;
        attempt.task_domain = task->domain;
        attempt.task_name = task->name;
        attempt.task_version = task->version;
    }
    attempt.retry_attempt = id->retry_attempt;
    return idempotency_token(&attempt, key, key_len, ret_token);
}

int idempotency_token_from_metadata2(const Flyteidl2__Connector__TaskExecutionMetadata *metadata,
                                     const void *key, size_t key_len,
                                     char ret_token[IDEMPOTENCY_TOKEN_SIZE])
{
    const Flyteidl2__Core__TaskExecutionIdentifier *id =
        metadata ? metadata->task_execution_id : NULL;
    const Flyteidl2__Core__NodeExecutionIdentifier *node = id ? id->node_execution_id : NULL;
    const Flyteidl2__Core__WorkflowExecutionIdentifier *execution =
        node ? node->execution_id : NULL;
    const Flyteidl2__Core__Identifier *task = id ? id->task_id : NULL;

    if (!execution)
        return -EINVAL;
    return idempotency_token(
        &(struct idempotency_task_execution){
            .project = execution->project,
            .domain = execution->domain,
            .execution_name = execution->name,
            .org = execution->org,
            .node_id = node->node_id,
            .task_project = task ? task->project : NULL,
            .task_domain = task ? task->domain : NULL,
            .task_name = task ? task->name : NULL,
            .task_version = task ? task->version : NULL,
            .retry_attempt = id->retry_attempt,
        },
        key, key_len, ret_token);
}
