/*
 * fuzz_credential_answers - libFuzzer target: bytes as the body of the two answers that bring
 * a credential from outside, a Kubernetes Secret's GET (k8s_secret_judge()) and an OAuth token
 * endpoint's (oauth_token_judge()), each with a few HTTP statuses: what a misbehaving API server
 * or workspace could send us. A token comes out exactly for a grant, and must be one an HTTP
 * header can carry (and a lifetime within bounds); otherwise a message comes out, one line of
 * valid UTF-8.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "k8s_secret.h"
#include "oauth_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *message)
{
    if (!message)
        abort();
    fuzz_text_one_line(message);
}

static void check_token(const char *token)
{
    if (!token || !token[0])
        abort();
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort();
}

/* What a judge gave: outcome r of `max`, a token exactly when r is `found` (then no message and
 * `found_ok`), a message otherwise. */
static void check_judged(int r, int max, int found, char *token, char *message, bool found_ok)
{
    if (r < 0 || r >= max)
        abort();
    if (r == found) {
        check_token(token);
        if (message || !found_ok)
            abort();
    } else {
        if (token)
            abort();
        check_message(message);
    }
    free(token);
    free(message);
}

static void secret(long status, const char *body, size_t len)
{
    char *token = NULL, *message = NULL;
    int r = k8s_secret_judge(status, body, len, &token, &message);

    check_judged(r, _K8S_SECRET_OUTCOME_MAX, K8S_SECRET_FOUND, token, message, true);
}

static void oauth(long status, const char *body, size_t len)
{
    char *token = NULL, *message = NULL;
    long expires_in = -1;
    int r = oauth_token_judge(status, body, len, &token, &expires_in, &message);

    check_judged(r, _OAUTH_TOKEN_OUTCOME_MAX, OAUTH_TOKEN_GRANTED, token, message,
                 expires_in >= 1 && expires_in <= OAUTH_TOKEN_MAX_EXPIRES_S);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long secret_statuses[] = {200, 403, 404, 500};
    static const long oauth_statuses[] = {200, 401, 503};
    /* The answers arrive NUL-terminated from the transfer engine; keep that. */
    char *body = malloc(size + 1);

    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    for (size_t i = 0; i < sizeof(secret_statuses) / sizeof(secret_statuses[0]); i++)
        secret(secret_statuses[i], body, size);
    for (size_t i = 0; i < sizeof(oauth_statuses) / sizeof(oauth_statuses[0]); i++)
        oauth(oauth_statuses[i], body, size);
    free(body);
    return 0;
}
