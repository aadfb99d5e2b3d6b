/*
 * oauth_token.h - Databricks' OAuth machine-to-machine token request, without the network: the
 * request a service principal sends to https://{instance}/oidc/v1/token, as Databricks' SDKs send
 * it (databricks-sdk-py's oauth_service_principal: grant_type=client_credentials, scope all-apis,
 * the client id and secret as HTTP Basic credentials), and what the answer means.
 *
 * Pure: no I/O, no global state; any thread.
 */
#ifndef FDC_OAUTH_TOKEN_H
#define FDC_OAUTH_TOKEN_H

#include <stddef.h>

#define OAUTH_TOKEN_PATH "/oidc/v1/token"
#define OAUTH_TOKEN_BODY "grant_type=client_credentials&scope=all-apis"
#define OAUTH_TOKEN_CONTENT_TYPE "Content-Type: application/x-www-form-urlencoded"

/* What Databricks gives when an answer says nothing of the lifetime: its tokens last an hour. */
#define OAUTH_TOKEN_DEFAULT_EXPIRES_S 3600L
/* Longest lifetime believed: a day. */
#define OAUTH_TOKEN_MAX_EXPIRES_S 86400L

/*
 * Gives *ret_header, "Authorization: Basic " and base64 of "client_id:client_secret" (both
 * borrowed), to wipe before free(). Returns 0 or -ENOMEM.
 */
int oauth_token_basic_auth(const char *client_id, const char *client_secret, char **ret_header);

enum oauth_token_outcome {
    OAUTH_TOKEN_GRANTED, /* *ret_token and *ret_expires_in_s are set */
    OAUTH_TOKEN_REFUSED, /* 400, 401, 403: the client id or secret is wrong; retrying won't help */
    OAUTH_TOKEN_TROUBLE, /* anything else (429, 5xx, an unreadable 200): worth retrying */
    _OAUTH_TOKEN_OUTCOME_MAX,
};

/*
 * Judges the token endpoint's answer `body` (body_len bytes, borrowed) with HTTP `status`. For
 * GRANTED gives *ret_token (access_token, visible ASCII; wipe before free()) and
 * *ret_expires_in_s (expires_in, 1 to OAUTH_TOKEN_MAX_EXPIRES_S, OAUTH_TOKEN_DEFAULT_EXPIRES_S
 * when absent). Otherwise gives *reterr_msg (free()) with the error and error_description the
 * endpoint sent, never a token. Returns the outcome, or -ENOMEM.
 */
int oauth_token_judge(long status, const char *body, size_t body_len, char **ret_token,
                      long *ret_expires_in_s, char **reterr_msg);

#endif
