/*
 * k8s_secret.c - Kubernetes name rules and the meaning of a Secret's GET answer (see
 * k8s_secret.h).
 *
 * A Secret's answer holds every key of the Secret, base64-encoded, and any of them may be a
 * credential: the parsed tree and the decoding buffers are wiped before they are freed, and no
 * value is ever quoted into a message.
 *
 * Pure and stateless: any thread.
 */
#include "k8s_secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errmsg.h"

/* Indexed by enum k8s_secret_outcome. */
static const char *const outcome_names[_K8S_SECRET_OUTCOME_MAX] = {
    [K8S_SECRET_FOUND] = "found",         [K8S_SECRET_ABSENT] = "absent",
    [K8S_SECRET_FORBIDDEN] = "forbidden", [K8S_SECRET_UNUSABLE] = "unusable",
    [K8S_SECRET_TROUBLE] = "trouble",
};

const char *k8s_secret_outcome_name(enum k8s_secret_outcome outcome)
{
    if (outcome < 0 || outcome >= _K8S_SECRET_OUTCOME_MAX)
        return "?";
    return outcome_names[outcome];
}

/* The n bytes at s form a DNS-1123 label. */
static bool label_valid(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

bool k8s_secret_namespace_valid(const char *name)
{
    return name && label_valid(name, strlen(name));
}

bool k8s_secret_name_valid(const char *name)
{
    size_t n;

    if (!name)
        return false;
    n = strlen(name);
    if (n == 0 || n > K8S_SECRET_NAME_MAX)
        return false;
    for (const char *p = name;;) {
        size_t len = strcspn(p, ".");

        if (!label_valid(p, len))
            return false;
        if (!p[len])
            return true;
        p += len + 1;
    }
}

/* Value of one base64 character, -1 for one outside the alphabet. */
static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 with padding (Go's encoding/json writes []byte that way) into a
 * NUL-terminated buffer. Gives *ret (wipe before free) and its length, or returns -EINVAL for
 * text that is not base64, -ENOMEM. */
static int base64_decode(const char *in, char **ret, size_t *ret_len)
{
    size_t n = strlen(in), o = 0;
    uint32_t acc = 0;
    char *out;

    if (n % 4 != 0)
        return -EINVAL;
    out = malloc(n / 4 * 3 + 1);
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)in[i]);
        size_t pad = 0;

        if (v < 0) {
            /* '=' only as the last one or two characters of the text. */
            while (i + pad < n && in[i + pad] == '=')
                pad++;
            if (in[i] != '=' || i + pad != n || pad > 2 || (i % 4) < 2)
                goto bad;
            if (pad == 2)
                out[o++] = (char)(acc >> 4);
            else
                out[o++] = (char)(acc >> 10), out[o++] = (char)(acc >> 2);
            break;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (char)(acc >> 16);
            out[o++] = (char)(acc >> 8);
            out[o++] = (char)acc;
            acc = 0;
        }
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;
bad:
    explicit_bzero(out, n / 4 * 3 + 1);
    free(out);
    return -EINVAL;
}

/* Wipes every string in the tree: a Secret's other keys may be credentials too. */
static void wipe_tree(cJSON *node)
{
    for (; node; node = node->next) {
        if (cJSON_IsString(node) && node->valuestring)
            explicit_bzero(node->valuestring, strlen(node->valuestring));
        wipe_tree(node->child);
    }
}

/* The token of a decoded value: trimmed, visible ASCII. Gives a copy or NULL (-EINVAL/-ENOMEM
 * in *ret_error). */
static char *token_of(const char *value, size_t len, int *ret_error)
{
    const char *start = value, *end = value + len;
    char *token;

    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *ret_error = -EINVAL;
    if (start == end)
        return NULL;
    for (const char *p = start; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return NULL;
    token = strndup(start, (size_t)(end - start));
    if (!token)
        *ret_error = -ENOMEM;
    return token;
}

/* A 200's body: the token under data.token, or why not. */
static int judge_found(const char *body, size_t body_len, char **ret_token, char **reterr_msg)
{
    cJSON *root = cJSON_ParseWithLength(body, body_len);
    const cJSON *data, *value;
    char *decoded = NULL;
    size_t decoded_len = 0;
    int r, error;

    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    value = cJSON_GetObjectItemCaseSensitive(data, K8S_SECRET_KEY);
    if (!root || !cJSON_IsObject(root)) {
        r = errmsg_give(reterr_msg, K8S_SECRET_TROUBLE, "the answer is not a JSON object");
        goto out;
    }
    if (!value) {
        r = errmsg_give(reterr_msg, K8S_SECRET_ABSENT,
                        "the Secret has no key \"" K8S_SECRET_KEY "\"");
        goto out;
    }
    if (!cJSON_IsString(value) || !value->valuestring) {
        r = errmsg_give(reterr_msg, K8S_SECRET_UNUSABLE,
                        "data." K8S_SECRET_KEY " of the Secret is not a string");
        goto out;
    }
    r = base64_decode(value->valuestring, &decoded, &decoded_len);
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = errmsg_give(reterr_msg, K8S_SECRET_UNUSABLE,
                        "data." K8S_SECRET_KEY " of the Secret is not base64");
        goto out;
    }
    *ret_token = token_of(decoded, decoded_len, &error);
    if (!*ret_token) {
        r = error == -ENOMEM
                ? -ENOMEM
                : errmsg_give(reterr_msg, K8S_SECRET_UNUSABLE,
                              "the Secret's " K8S_SECRET_KEY
                              " is empty or holds a space, control or non-ASCII character, "
                              "which an HTTP header cannot carry");
        goto out;
    }
    r = K8S_SECRET_FOUND;
out:
    if (decoded) {
        explicit_bzero(decoded, decoded_len);
        free(decoded);
    }
    if (root)
        wipe_tree(root);
    cJSON_Delete(root);
    return r;
}

/* The message of a Kubernetes Status answer, shown on one line, or `otherwise`. */
static const char *status_message(const char *body, size_t body_len, const char *otherwise,
                                  char *buf, size_t size)
{
    cJSON *root = cJSON_ParseWithLength(body, body_len);
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(root, "message");
    const char *text = otherwise;

    if (cJSON_IsString(message) && message->valuestring && message->valuestring[0])
        text = errmsg_printable(buf, size, message->valuestring, ERRMSG_ONE_LINE);
    cJSON_Delete(root);
    return text;
}

int k8s_secret_judge(long status, const char *body, size_t body_len, char **ret_token,
                     char **reterr_msg)
{
    char buf[300];
    const char *text;

    switch (status) {
    case 200:
        return judge_found(body, body_len, ret_token, reterr_msg);
    case 403:
        return errmsg_give(reterr_msg, K8S_SECRET_FORBIDDEN, "HTTP 403: %s",
                           status_message(body, body_len, "forbidden", buf, sizeof(buf)));
    case 404:
        return errmsg_give(reterr_msg, K8S_SECRET_ABSENT, "HTTP 404: %s",
                           status_message(body, body_len, "no such Secret", buf, sizeof(buf)));
    default:
        text = status_message(body, body_len, "", buf, sizeof(buf));
        return errmsg_give(reterr_msg, K8S_SECRET_TROUBLE, "HTTP %ld%s%s", status,
                           text[0] ? ": " : "", text);
    }
}
