/*
 * oauth.c - one access token from a workspace's OAuth token endpoint (see oauth.h).
 *
 * The request carries the client secret in its Basic Authorization header: this file's copy is
 * wiped once the request holds its own, which http_request.c wipes when it ends.
 *
 * Owns: a small context per request until its callback. Threads: any, then the loop thread.
 */
#include "oauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

/* A token answer is a few KiB at most. */
#define TOKEN_ANSWER_MAX (64 * 1024)

struct fetch {
    oauth_done_fn done;
    void *user;
    char instance[300];
};

/* What flytekit's connector retries too (databricks_auth.py _post_token). */
static bool retry_status(long status)
{
    return status == 429 || status >= 500;
}

static void on_done(void *user, const struct http_request_result *result)
{
    struct fetch *f = user;
    char *token = NULL, *why = NULL, message[512];
    struct oauth_answer answer = {.outcome = OAUTH_TOKEN_TROUBLE, .message = message};
    int r;

    if (result->status == 0) {
        snprintf(message, sizeof(message),
                 "OAuth token endpoint of %s did not answer: %s (%d attempts)", f->instance,
                 result->failure, result->attempts);
    } else {
        r = oauth_token_judge(result->status, result->body, result->body_len, &token,
                              &answer.expires_in_s, &why);
        if (r < 0) {
            snprintf(message, sizeof(message), "OAuth token of %s: out of memory", f->instance);
        } else {
            answer.outcome = (enum oauth_token_outcome)r;
            answer.token = token;
            snprintf(message, sizeof(message), "OAuth token endpoint of %s: %s", f->instance,
                     why ? why : "token granted");
        }
    }
    f->done(f->user, &answer);
    secret_free(token);
    free(why);
    free(f);
}

int oauth_fetch(struct http_request_client *client, const struct config *config,
                const char *instance, const struct config_oauth_client *client_cfg,
                int64_t deadline_ms, oauth_done_fn done, void *user)
{
    const char *headers[4] = {NULL, OAUTH_TOKEN_CONTENT_TYPE, "Accept: application/json", NULL};
    struct fetch *f = calloc(1, sizeof(*f));
    char *auth = NULL, *url = NULL;
    int r = -ENOMEM;

    if (!f || oauth_token_basic_auth(client_cfg->client_id, client_cfg->client_secret, &auth) < 0)
        goto out;
    if (asprintf(&url, "https://%s" OAUTH_TOKEN_PATH, instance) < 0) {
        url = NULL;
        goto out;
    }
    headers[0] = auth;
    f->done = done;
    f->user = user;
    snprintf(f->instance, sizeof(f->instance), "%s", instance);
    {
        const struct http_request_spec spec = {
            .url = url,
            .body = OAUTH_TOKEN_BODY,
            .headers = headers,
            .ca_file = config->ca_file,
            .connect_timeout_ms = config->connect_timeout_ms,
            .attempt_timeout_ms = config->request_timeout_ms,
            .max_response_bytes = TOKEN_ANSWER_MAX,
            .deadline_ms = deadline_ms,
            .retry_status = retry_status,
        };
        r = http_request_start(client, &spec, on_done, f);
    }
    if (r == 0)
        f = NULL;
out:
    secret_free(auth);
    free(url);
    free(f);
    return r;
}
