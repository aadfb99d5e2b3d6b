/*
 * k8s_secret.h - what the daemon knows of Kubernetes Secrets without the network: which
 * namespace and Secret names are valid (so a name from a task or resource_meta can never add a
 * path or a query to the API URL), the API path of a Secret, and what an answer of
 * GET /api/v1/namespaces/{namespace}/secrets/{name} means for the token it may hold.
 *
 * Pure: no I/O, no global state; any thread.
 */
#ifndef FDC_K8S_SECRET_H
#define FDC_K8S_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* flytekit's names: the Secret custom.databricksTokenSecret names, else this one, key "token". */
#define K8S_SECRET_DEFAULT_NAME "databricks-token"
#define K8S_SECRET_KEY "token"

/* Longest namespace (a DNS-1123 label) and Secret name (a DNS-1123 subdomain). */
#define K8S_SECRET_NAMESPACE_MAX 63
#define K8S_SECRET_NAME_MAX 253

/* True for a DNS-1123 label: 1-63 of [a-z0-9-], starting and ending with [a-z0-9]. NULL: false. */
bool k8s_secret_namespace_valid(const char *name);

/* True for a DNS-1123 subdomain: at most 253 characters, dot-separated labels as above.
 * NULL: false. */
bool k8s_secret_name_valid(const char *name);

/* What an answer to a Secret's GET means. */
enum k8s_secret_outcome {
    K8S_SECRET_FOUND,     /* 200 with data.token: *ret_token is set */
    K8S_SECRET_ABSENT,    /* 404, or a Secret without the key: fall back, as flytekit does */
    K8S_SECRET_FORBIDDEN, /* 403: the service account may not read it; fall back */
    K8S_SECRET_UNUSABLE,  /* data.token is not base64 of a token an HTTP header can carry */
    K8S_SECRET_TROUBLE,   /* anything else (401, 429, 5xx, an unreadable 200): worth retrying */
    _K8S_SECRET_OUTCOME_MAX,
};

/*
 * Judges the answer `body` (body_len bytes, borrowed) with HTTP `status` to a Secret's GET. For
 * K8S_SECRET_FOUND gives *ret_token: the decoded value with surrounding whitespace removed
 * (kubectl create secret --from-file keeps a file's newline), visible ASCII only (free after
 * explicit_bzero()). For the others gives *reterr_msg (free()) saying what was wrong, never
 * quoting the value. Returns the outcome, or -ENOMEM.
 */
int k8s_secret_judge(long status, const char *body, size_t body_len, char **ret_token,
                     char **reterr_msg);

/* "found", "absent", ... for logs. */
const char *k8s_secret_outcome_name(enum k8s_secret_outcome outcome);

#endif
