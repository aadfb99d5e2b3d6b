/*
 * creds.h - the Databricks token of each call, from the first source that has one:
 *
 *   1. the call's own token (dbx_call.token: Flyte 2's connection secret "databricks_token");
 *   2. the task's per-namespace Kubernetes Secret, as flytekit reads it
 * (custom.databricksTokenSecret, default "databricks-token", key "token", in the task's namespace,
 * or in the namespace resource_meta recorded), when running in a cluster; absent (404) or not
 * readable (403): the next source, as in flytekit; any other trouble: the call fails UNAVAILABLE
 * rather than run under another identity;
 *   3. flytekit's "auth_token" in resource_meta (runs it started);
 *   4. an OAuth access token of the workspace's service principal, when one is configured;
 *   5. the connector's default token (config.c's places).
 *
 * Secrets and OAuth tokens are cached (tokencache.c): one request per Secret or token however
 * many calls wait, re-validated in the background before expiry. A 401 from Databricks on an
 * OAuth token makes creds fetch a new token and send the request once more, never in a loop.
 * Which source served a call (kind and name, never the value) is given to the caller for its log
 * line and counted in /metrics.
 *
 * Threads: creds_new/creds_free from main; creds_request from any thread; its callback runs on
 * the loop thread.
 */
#ifndef FDC_CREDS_H
#define FDC_CREDS_H

#include "config.h"
#include "dbx.h"
#include "k8s_secret.h"
#include "metrics.h"

struct creds;
struct http;

enum creds_source {
    CREDS_SOURCE_NONE,          /* no token was found (or none was needed yet) */
    CREDS_SOURCE_CONNECTION,    /* the call's own token */
    CREDS_SOURCE_NAMESPACE,     /* the task's per-namespace Kubernetes Secret */
    CREDS_SOURCE_RESOURCE_META, /* flytekit's auth_token in resource_meta */
    CREDS_SOURCE_OAUTH,         /* an OAuth token of the workspace's service principal */
    CREDS_SOURCE_DEFAULT,       /* the connector's own token */
    _CREDS_SOURCE_MAX,
};

/* What a call asks of the sources besides its own token; borrowed during creds_request(). */
struct creds_ask {
    const char *namespace;     /* the task's, or resource_meta's; NULL: none */
    const char *token_secret;  /* the Secret's name; NULL: flytekit's default */
    const char *resmeta_token; /* SECRET: flytekit's auth_token; NULL: none */
};

#define CREDS_NAME_SIZE 512

/* Which source served a call: names only. */
struct creds_used {
    enum creds_source source;
    char name[CREDS_NAME_SIZE]; /* "namespace/secret", the OAuth client id and instance, the
                                 * default token's place; "" for the call's own token */
    /* CREDS_SOURCE_NAMESPACE: the Secret, for resource_meta; "" otherwise. */
    char namespace[K8S_SECRET_NAMESPACE_MAX + 1];
    char token_secret[K8S_SECRET_NAME_MAX + 1];
};

/* "connection_secret", "namespace_secret", "resource_meta", "oauth", "default"; "none". */
const char *creds_source_name(enum creds_source source);

/*
 * Makes the chain, sending through `dbx` and fetching Secrets and OAuth tokens on `http` (both
 * borrowed; they must outlive it), counting sources in `metrics` (borrowed, may be NULL). Main
 * thread, before the loop starts. Gives a chain (creds_free) or NULL and *reterr_msg.
 */
struct creds *creds_new(struct dbx *dbx, struct http *http, struct metrics *metrics,
                        char **reterr_msg);

/* Frees the chain after http_stop() (loop_free() does it), which ended every request. NULL-safe. */
void creds_free(struct creds *creds);

/*
 * dbx_request() with the call's token found as above: the same contract (`body` taken; `done`
 * exactly once on the loop thread when 0 is returned; -ENOMEM / -ESHUTDOWN otherwise, `done`
 * never runs). `config` (borrowed) is the configuration the call started with and must outlive
 * it. call->token is the call's own token; call->instance the normalized, allowed instance.
 * *ret_used (borrowed until `done` runs) says which source served it, set before `done` runs.
 * When no source gives a token, or a source fails in a way that must not fall through to
 * another identity, `done` gets an answer without a Databricks request: UNAUTHENTICATED naming
 * every place looked at, or UNAVAILABLE naming the trouble. Any thread.
 */
int creds_request(struct creds *creds, const struct config *config, const struct dbx_call *call,
                  const struct creds_ask *ask, char *body, dbx_done_fn done, void *user,
                  struct creds_used *ret_used);

#endif
