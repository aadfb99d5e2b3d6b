/*
 * oauth.h - Databricks' OAuth token endpoint client: one access token for a service principal
 * from https://{instance}/oidc/v1/token (OAuth machine-to-machine), through the small-request
 * client (http_request.h), with 429 and 5xx answers and transport failures retried within the
 * deadline. Caching and refreshing the tokens is creds.c's.
 *
 * Threads: oauth_fetch from any thread; the callback runs on the loop thread.
 */
#ifndef FDC_OAUTH_H
#define FDC_OAUTH_H

#include <stdint.h>

#include "config.h"
#include "http_request.h"
#include "oauth_token.h"

/* What a token request gave; valid during the callback only. */
struct oauth_answer {
    enum oauth_token_outcome outcome;
    const char *token;   /* OAUTH_TOKEN_GRANTED: the access token; NULL otherwise */
    long expires_in_s;   /* OAUTH_TOKEN_GRANTED: its lifetime */
    const char *message; /* otherwise: what happened, naming the instance; never a secret */
};

typedef void (*oauth_done_fn)(void *user, const struct oauth_answer *answer);

/*
 * Asks `instance` (borrowed, normalized and allowed) for an access token for `client_cfg`
 * (borrowed), verifying the workspace's certificate as Databricks requests do (config's
 * ca_file), within `deadline_ms`. config and client_cfg must outlive the request. Returns 0:
 * `done` runs exactly once, on the loop thread; or -ENOMEM / -ESHUTDOWN: it never runs. Any
 * thread.
 */
int oauth_fetch(struct http_request_client *client, const struct config *config,
                const char *instance, const struct config_oauth_client *client_cfg,
                int64_t deadline_ms, oauth_done_fn done, void *user);

#endif
