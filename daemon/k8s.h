/*
 * k8s.h - the Kubernetes API client: reads one Secret with the pod's service account, the way
 * client-go's in-cluster configuration reaches the API (https://KUBERNETES_SERVICE_HOST:
 * KUBERNETES_SERVICE_PORT, the service account's token as a bearer token, its ca.crt as the only
 * CA), for the per-namespace Databricks tokens flytekit reads.
 *
 * Threads: k8s_get_secret from any thread; the callback runs on the loop thread.
 */
#ifndef FDC_K8S_H
#define FDC_K8S_H

#include <stdint.h>

#include "config.h"
#include "http_request.h"
#include "k8s_secret.h"

/* What a Secret's read gave; valid during the callback only. */
struct k8s_answer {
    enum k8s_secret_outcome outcome;
    const char *token;   /* K8S_SECRET_FOUND: the token; NULL otherwise */
    const char *message; /* otherwise: what happened, naming the Secret; never a value */
};

typedef void (*k8s_done_fn)(void *user, const struct k8s_answer *answer);

/*
 * Reads Secret `name` in `namespace` (both borrowed, checked against Kubernetes' name rules)
 * through `client`, with config's Kubernetes settings (borrowed; must outlive the request). The
 * service account token is read from its file now, since the kubelet rotates it. Failures other
 * than 403 and 404 are retried until `deadline_ms`. Returns 0: `done` runs exactly once, on the
 * loop thread. Or returns without calling `done`: -ENOTCONN (not in a cluster), -ENOENT (the pod
 * has no service account token file: its mount is turned off), -EINVAL (a bad name), -EIO (the
 * token file cannot be used; *reterr_msg says why, free()), -ENOMEM, -ESHUTDOWN. Any thread.
 */
int k8s_get_secret(struct http_request_client *client, const struct config *config,
                   const char *namespace, const char *name, int64_t deadline_ms, k8s_done_fn done,
                   void *user, char **reterr_msg);

#endif
