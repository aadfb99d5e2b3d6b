/* resmeta: encodes and decodes resource_meta, and owns the rule for what a Databricks
 * instance name may be.
 *
 * Both values end up in a URL (https://{instance}/api/2.1/jobs/runs/get?run_id={run_id}), and
 * resource_meta comes back to us from outside, so decoding validates strictly: a run_id of
 * digits cannot add query parameters, an instance of host characters cannot add a path, user
 * info or a second host; "namespace" and "token_secret" end up in a Kubernetes API URL and are
 * held to Kubernetes' name rules. flytekit's format carries the Databricks token ("auth_token"):
 * it is copied out for the run's later calls (checked to be something an HTTP header can carry)
 * and wiped from every other buffer, and never quoted, not even into an error message.
 *
 * Pure and stateless: any thread. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "k8s_secret.h"

#include "resmeta.h"
#include "secret.h"

#define KEY_INSTANCE "databricks_instance"
#define KEY_RUN_ID "run_id"
#define KEY_NAMESPACE "namespace"
#define KEY_TOKEN_SECRET "token_secret"
#define KEY_AUTH_TOKEN "auth_token"
/* Room for a bad value quoted back in an error message: 64 bytes, then "..." when cut. */
#define QUOTE_SIZE (64 + 4)
#define LABEL_MAX 63
/* 2^53: above it a JSON number (a double) no longer holds every integer exactly. */
#define RUN_ID_NUMBER_LIMIT 9007199254740992.0

/* Databricks run ids are positive int64 values. */
#define RUN_ID_MAX "9223372036854775807"

/* True for a run id in canonical form: 1 to INT64_MAX in decimal, without leading zeros. */
static bool run_id_valid(const char *s)
{
    size_t n = strspn(s, "0123456789");

    if (n < 1 || n > RESMETA_RUN_ID_MAX_DIGITS || s[n] != '\0' || s[0] == '0')
        return false;
    /* Same length, so digit order is numeric order. */
    return n < RESMETA_RUN_ID_MAX_DIGITS || strcmp(s, RUN_ID_MAX) <= 0;
}

/* Checks host (hostlen bytes, not NUL-terminated) against the label rules of RFC 1123.
 * Gives a static reason on failure (and the offending character in bad), NULL when fine. */
static const char *host_problem(const char *host, size_t hostlen, char bad[8])
{
    size_t label = 0;

    if (hostlen == 0)
        return "empty host name";
    if (hostlen > RESMETA_HOST_MAX)
        return "host name longer than 253 characters";
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c == '.') {
            if (label == 0)
                return "empty label";
            if (host[i - 1] == '-')
                return "label ends with '-'";
            label = 0;
            continue;
        }
        if (!isascii(c) || !(isalnum(c) || c == '-')) {
            if (c >= 0x20 && c < 0x7F)
                snprintf(bad, 8, "'%c'", c);
            else
                snprintf(bad, 8, "0x%02x", c);
            return "character not allowed:";
        }
        if (c == '-' && label == 0)
            return "label starts with '-'";
        if (++label > LABEL_MAX)
            return "label longer than 63 characters";
    }
    if (label == 0)
        return "empty label";
    if (host[hostlen - 1] == '-')
        return "label ends with '-'";
    return NULL;
}

int resmeta_normalize_instance(const char *in, char **ret_instance, char **reterr_msg)
{
    char q[QUOTE_SIZE], bad[8] = "";
    const char *p, *colon, *why;
    char *out = NULL;
    size_t n, hostlen;
    unsigned long port = 0;
    int r;

    if (!in) {
        r = errmsg_set(reterr_msg, -EINVAL, "no instance given");
        goto out;
    }
    errmsg_printable(q, sizeof(q), in, ERRMSG_QUOTED);
    p = in;
    /* flytekit users write the URL they see in the browser; accept its two extra parts. */
    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    n = strlen(p);
    if (n > 0 && p[n - 1] == '/')
        n--;
    if (n == 0) {
        r = errmsg_set(reterr_msg, -EINVAL, "'%s' is not host[:port]: empty host name", q);
        goto out;
    }

    colon = memchr(p, ':', n);
    hostlen = colon ? (size_t)(colon - p) : n;
    why = host_problem(p, hostlen, bad);
    if (why) {
        r = errmsg_set(reterr_msg, -EINVAL, "'%s' is not host[:port]: %s%s%s", q, why,
                       bad[0] ? " " : "", bad);
        goto out;
    }
    if (colon) {
        const char *digits = colon + 1;
        size_t ndigits = n - hostlen - 1;
        if (ndigits == 0 || ndigits > 5 || strspn(digits, "0123456789") < ndigits) {
            r = errmsg_set(reterr_msg, -EINVAL, "'%s' is not host[:port]: port must be 1-65535", q);
            goto out;
        }
        for (size_t i = 0; i < ndigits; i++)
            port = port * 10 + (unsigned long)(digits[i] - '0');
        if (port < 1 || port > 65535) {
            r = errmsg_set(reterr_msg, -EINVAL, "'%s' is not host[:port]: port must be 1-65535", q);
            goto out;
        }
    }

    out = malloc(hostlen + sizeof(":65535"));
    if (!out) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < hostlen; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[hostlen] = '\0';
    if (colon)
        snprintf(out + hostlen, sizeof(":65535"), ":%lu", port);

    *ret_instance = out;
    out = NULL;
    r = 0;
out:
    free(out);
    return r;
}

/* cJSON turns the escape \u0000 into a NUL that silently ends the string ("12\u0000&x" would
 * read as "12"), so such text is refused like a raw NUL byte. An escaped backslash before
 * "u0000" is refused too; no honest resource_meta contains either. */
static bool has_nul_escape(const char *text)
{
    for (const char *p = strstr(text, "\\u"); p; p = strstr(p + 2, "\\u"))
        if (strncmp(p + 2, "0000", 4) == 0)
            return true;
    return false;
}

/* Scrubs top-level string values before the tree is freed: one of them may be flytekit's
 * token, and freed heap memory ends up in core dumps. */
static void wipe_strings(cJSON *root)
{
    cJSON *it;

    cJSON_ArrayForEach(it, root) if (cJSON_IsString(it) && it->valuestring)
        explicit_bzero(it->valuestring, strlen(it->valuestring));
}

/* The keys read; any of them twice is refused (cJSON would take the first, another decoder the
 * last). */
static const char *const known_keys[] = {KEY_INSTANCE, KEY_RUN_ID, KEY_NAMESPACE, KEY_TOKEN_SECRET,
                                         KEY_AUTH_TOKEN};

static const char *duplicate_key(const cJSON *root)
{
    int seen[sizeof(known_keys) / sizeof(known_keys[0])] = {0};
    const cJSON *it;

    cJSON_ArrayForEach(it, root)
    {
        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
            if (strcmp(it->string, known_keys[i]) == 0 && ++seen[i] > 1)
                return known_keys[i];
    }
    return NULL;
}

/* True for what an Authorization header can carry: 1 or more visible ASCII characters. */
static bool token_usable(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* The optional string `key` of root: *ret stays NULL when absent or null. `valid` checks it;
 * `what` says what it must be. A bad value is quoted back unless it is the token. */
static int optional_string(const cJSON *root, const char *key, bool (*valid)(const char *),
                           const char *what, char **ret, char **reterr_msg)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    char q[QUOTE_SIZE];

    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || !item->valuestring)
        return errmsg_set(reterr_msg, -EINVAL, "resource_meta: %s must be a string", key);
    if (!valid(item->valuestring)) {
        if (strcmp(key, KEY_AUTH_TOKEN) == 0)
            return errmsg_set(reterr_msg, -EINVAL, "resource_meta: %s must be %s", key, what);
        errmsg_printable(q, sizeof(q), item->valuestring, ERRMSG_QUOTED);
        return errmsg_set(reterr_msg, -EINVAL, "resource_meta: bad %s '%s': must be %s", key, q,
                          what);
    }
    *ret = strdup(item->valuestring);
    return *ret ? 0 : -ENOMEM;
}

/* namespace, token_secret and auth_token, as far as root has them. */
static int decode_optional(const cJSON *root, struct resmeta *m, char **reterr_msg)
{
    int r;

    r = optional_string(root, KEY_NAMESPACE, k8s_secret_namespace_valid,
                        "a Kubernetes namespace name", &m->namespace, reterr_msg);
    if (r < 0)
        return r;
    r = optional_string(root, KEY_TOKEN_SECRET, k8s_secret_name_valid, "a Kubernetes Secret name",
                        &m->token_secret, reterr_msg);
    if (r < 0)
        return r;
    if (m->token_secret && !m->namespace)
        return errmsg_set(reterr_msg, -EINVAL,
                          "resource_meta: " KEY_TOKEN_SECRET " without " KEY_NAMESPACE);
    return optional_string(root, KEY_AUTH_TOKEN, token_usable,
                           "a token of visible ASCII characters", &m->auth_token, reterr_msg);
}

/* Gives the run_id of item as a digit string (free()), or fails naming the field. */
static int run_id_from_json(const cJSON *item, char **ret_run_id, char **reterr_msg)
{
    char q[QUOTE_SIZE], digits[24];
    char *s;

    if (!item)
        return errmsg_set(reterr_msg, -EINVAL, "resource_meta: missing " KEY_RUN_ID);
    if (cJSON_IsString(item) && item->valuestring) {
        /* Leading zeros are dropped, so one run has one id in the run table and in URLs. */
        const char *significant = item->valuestring + strspn(item->valuestring, "0");

        if (!run_id_valid(significant) || strlen(item->valuestring) > RESMETA_RUN_ID_MAX_DIGITS) {
            errmsg_printable(q, sizeof(q), item->valuestring, ERRMSG_QUOTED);
            return errmsg_set(reterr_msg, -EINVAL,
                              "resource_meta: bad " KEY_RUN_ID
                              " '%s': must be 1-19 decimal digits, "
                              "from 1 to " RUN_ID_MAX,
                              q);
        }
        s = strdup(significant);
    } else if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        /* flytekit wrote run_id as Databricks returned it, a JSON number, in some versions. */
        if (!isfinite(v) || v < 1 || v >= RUN_ID_NUMBER_LIMIT || floor(v) != v)
            return errmsg_set(reterr_msg, -EINVAL,
                              "resource_meta: bad " KEY_RUN_ID
                              " %.17g: must be a whole number from 1 to 2^53",
                              v);
        snprintf(digits, sizeof(digits), "%" PRIu64, (uint64_t)v);
        s = strdup(digits);
    } else {
        return errmsg_set(reterr_msg, -EINVAL,
                          "resource_meta: " KEY_RUN_ID " must be a string of digits or a number");
    }
    if (!s)
        return -ENOMEM;
    *ret_run_id = s;
    return 0;
}

int resmeta_decode(const uint8_t *data, size_t len, struct resmeta *ret, char **reterr_msg)
{
    struct resmeta m = {0};
    char *text = NULL, *why = NULL;
    cJSON *root = NULL;
    const cJSON *item;
    const char *dup;
    int r;

    if (!data || len == 0) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: empty");
        goto out;
    }
    if (len > RESMETA_MAX_LEN) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: %zu bytes, more than %d", len,
                       RESMETA_MAX_LEN);
        goto out;
    }
    if (memchr(data, '\0', len)) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: contains a NUL byte");
        goto out;
    }
    text = malloc(len + 1);
    if (!text) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    if (has_nul_escape(text)) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: contains a NUL byte");
        goto out;
    }

    /* The ParseWithOpts end pointer, unlike cJSON_GetErrorPtr(), is not a global. */
    {
        const char *end = NULL;
        root = cJSON_ParseWithOpts(text, &end, true);
        if (!root) {
            r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: not JSON (at byte %td)",
                           end ? end - text : (ptrdiff_t)0);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: not a JSON object");
        goto out;
    }
    dup = duplicate_key(root);
    if (dup) {
        r = errmsg_set(reterr_msg, -EINVAL, "malformed resource_meta: duplicate key '%s'", dup);
        goto out;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, KEY_INSTANCE);
    if (!item) {
        r = errmsg_set(reterr_msg, -EINVAL, "resource_meta: missing " KEY_INSTANCE);
        goto out;
    }
    if (!cJSON_IsString(item) || !item->valuestring) {
        r = errmsg_set(reterr_msg, -EINVAL, "resource_meta: " KEY_INSTANCE " must be a string");
        goto out;
    }
    r = resmeta_normalize_instance(item->valuestring, &m.instance, &why);
    if (r == -EINVAL) {
        r = errmsg_set(reterr_msg, -EINVAL, "resource_meta: bad " KEY_INSTANCE ": %s",
                       why ? why : "invalid");
        goto out;
    }
    if (r < 0)
        goto out;

    r = run_id_from_json(cJSON_GetObjectItemCaseSensitive(root, KEY_RUN_ID), &m.run_id, reterr_msg);
    if (r < 0)
        goto out;
    r = decode_optional(root, &m, reterr_msg);
    if (r < 0)
        goto out;

    *ret = m;
    m = (struct resmeta){0};
    r = 0;
out:
    resmeta_done(&m);
    free(why);
    if (cJSON_IsObject(root))
        wipe_strings(root);
    cJSON_Delete(root);
    /* The input may hold flytekit's token: don't leave a copy in freed heap memory. */
    if (text)
        explicit_bzero(text, len);
    free(text);
    return r;
}

int resmeta_encode(const struct resmeta *meta, uint8_t **ret_data, size_t *ret_len)
{
    const char *secret = meta->token_secret ? meta->token_secret : K8S_SECRET_DEFAULT_NAME;
    char *norm = NULL, *buf = NULL;
    int n, r;

    if (!meta->run_id || !run_id_valid(meta->run_id) ||
        (meta->namespace &&
         (!k8s_secret_namespace_valid(meta->namespace) || !k8s_secret_name_valid(secret)))) {
        r = -EINVAL;
        goto out;
    }
    r = resmeta_normalize_instance(meta->instance, &norm, NULL);
    if (r < 0)
        goto out;
    /* Every value is from a charset JSON never escapes, so printf gives exact JSON. */
    if (meta->namespace)
        n = asprintf(&buf,
                     "{\"" KEY_INSTANCE "\":\"%s\",\"" KEY_RUN_ID "\":\"%s\",\"" KEY_NAMESPACE
                     "\":\"%s\",\"" KEY_TOKEN_SECRET "\":\"%s\"}",
                     norm, meta->run_id, meta->namespace, secret);
    else
        n = asprintf(&buf, "{\"" KEY_INSTANCE "\":\"%s\",\"" KEY_RUN_ID "\":\"%s\"}", norm,
                     meta->run_id);
    if (n < 0) {
        buf = NULL;
        r = -ENOMEM;
        goto out;
    }

    *ret_data = (uint8_t *)buf;
    *ret_len = (size_t)n;
    buf = NULL;
    r = 0;
out:
    free(buf);
    free(norm);
    return r;
}

void resmeta_done(struct resmeta *m)
{
    if (!m)
        return;
    secret_free(m->auth_token);
    free(m->instance);
    free(m->run_id);
    free(m->namespace);
    free(m->token_secret);
    *m = (struct resmeta){0};
}
