/*
 * oauth_token.c - the OAuth client-credentials request and the meaning of its answer (see
 * oauth_token.h).
 *
 * The answer carries an access token: the parsed tree is wiped before it is freed, and no token
 * ever goes into a message.
 *
 * Pure and stateless: any thread.
 */
#include "oauth_token.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "errmsg.h"
#include "secret.h"

#define BASIC_PREFIX "Authorization: Basic "

int oauth_token_basic_auth(const char *client_id, const char *client_secret, char **ret_header)
{
    char *pair = NULL, *header = NULL;
    size_t pair_len, prefix_len = strlen(BASIC_PREFIX);
    int r = -ENOMEM;

    if (asprintf(&pair, "%s:%s", client_id, client_secret) < 0) {
        pair = NULL;
        goto out;
    }
    pair_len = strlen(pair);
    header = malloc(prefix_len + 4 * ((pair_len + 2) / 3) + 1);
    if (!header)
        goto out;
    memcpy(header, BASIC_PREFIX, prefix_len);
    EVP_EncodeBlock((unsigned char *)header + prefix_len, (const unsigned char *)pair,
                    (int)pair_len);
    *ret_header = header;
    header = NULL;
    r = 0;
out:
    secret_free(pair);
    free(header);
    return r;
}

static void wipe_tree(cJSON *node)
{
    for (; node; node = node->next) {
        if (cJSON_IsString(node) && node->valuestring)
            explicit_bzero(node->valuestring, strlen(node->valuestring));
        wipe_tree(node->child);
    }
}

static bool header_safe(const char *s)
{
    if (!s || !s[0])
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* The string member `key` of an error answer, shown safely, or "". */
static const char *error_text(const cJSON *root, const char *key, char *buf, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);

    buf[0] = '\0';
    if (!cJSON_IsString(item) || !item->valuestring)
        return buf;
    return errmsg_printable(buf, size, item->valuestring, ERRMSG_ONE_LINE);
}

/* A 200: the token and its lifetime. */
static int judge_granted(const cJSON *root, char **ret_token, long *ret_expires_in_s,
                         char **reterr_msg)
{
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    long expires_in = OAUTH_TOKEN_DEFAULT_EXPIRES_S;

    if (!cJSON_IsString(token) || !header_safe(token->valuestring))
        return errmsg_give(reterr_msg, OAUTH_TOKEN_TROUBLE,
                           "the answer has no access_token an HTTP header can carry");
    if (type && (!cJSON_IsString(type) || strcasecmp(type->valuestring, "Bearer") != 0))
        return errmsg_give(reterr_msg, OAUTH_TOKEN_TROUBLE,
                           "the answer's token_type is not Bearer");
    if (expires) {
        /* Some servers send the number as a string. */
        double v = cJSON_IsNumber(expires) ? expires->valuedouble
                   : cJSON_IsString(expires) && expires->valuestring[0]
                       ? strtod(expires->valuestring, NULL)
                       : NAN;

        if (!(v >= 1))
            return errmsg_give(reterr_msg, OAUTH_TOKEN_TROUBLE,
                               "the answer's expires_in is not a number "
                               "of seconds");
        expires_in = v > OAUTH_TOKEN_MAX_EXPIRES_S ? OAUTH_TOKEN_MAX_EXPIRES_S : (long)v;
    }
    *ret_token = strdup(token->valuestring);
    if (!*ret_token)
        return -ENOMEM;
    *ret_expires_in_s = expires_in;
    return OAUTH_TOKEN_GRANTED;
}

int oauth_token_judge(long status, const char *body, size_t body_len, char **ret_token,
                      long *ret_expires_in_s, char **reterr_msg)
{
    cJSON *root = cJSON_ParseWithLength(body, body_len);
    char error[128], description[256];
    int r;

    if (status == 200) {
        r = cJSON_IsObject(root)
                ? judge_granted(root, ret_token, ret_expires_in_s, reterr_msg)
                : errmsg_give(reterr_msg, OAUTH_TOKEN_TROUBLE, "HTTP 200 without a JSON object");
    } else {
        error_text(root, "error", error, sizeof(error));
        error_text(root, "error_description", description, sizeof(description));
        /* RFC 6749 5.2: a bad client or grant is 400 or 401; a 403 says the same here. */
        r = errmsg_give(reterr_msg,
                        status == 400 || status == 401 || status == 403 ? OAUTH_TOKEN_REFUSED
                                                                        : OAUTH_TOKEN_TROUBLE,
                        "HTTP %ld%s%s%s%s", status, error[0] ? " " : "", error,
                        description[0] ? ": " : "", description);
    }
    if (root)
        wipe_tree(root);
    cJSON_Delete(root);
    return r;
}
