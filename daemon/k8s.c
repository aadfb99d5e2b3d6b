/*
 * k8s.c - reads a Secret from the Kubernetes API (see k8s.h).
 *
 * One GET /api/v1/namespaces/{namespace}/secrets/{name} per read, through http_request.c, which
 * retries what k8s_secret.c calls trouble (anything but 200, 403 and 404, and transport
 * failures) within the deadline: a task must never run under another identity because the API
 * server blinked. The service account token travels in the request's own header copy, wiped
 * when the request ends; this file's copy is wiped as soon as the request holds its own.
 *
 * Owns: a small context per read until its callback. Threads: any, then the loop thread.
 */
#include "k8s.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

#define SERVICE_ACCOUNT_TOKEN "token"
#define SERVICE_ACCOUNT_CA "ca.crt"
/* A Secret holds at most 1 MiB of data; its answer, base64 and JSON around it, a bit more. */
#define SECRET_ANSWER_MAX (2 * 1024 * 1024)

struct read {
    k8s_done_fn done;
    void *user;
    char where[K8S_SECRET_NAMESPACE_MAX + K8S_SECRET_NAME_MAX + 2]; /* "namespace/name" */
};

/* Everything but a definite answer (the Secret, or its absence, or a refusal) is worth another
 * attempt. */
static bool retry_status(long status)
{
    return status != 200 && status != 403 && status != 404;
}

static void on_done(void *user, const struct http_request_result *result)
{
    struct read *read = user;
    char *token = NULL, *why = NULL, message[512];
    struct k8s_answer answer = {.outcome = K8S_SECRET_TROUBLE, .message = message};
    int r;

    if (result->status == 0) {
        snprintf(message, sizeof(message),
                 "Kubernetes Secret %s: the API did not answer: %s (%d attempts)", read->where,
                 result->failure, result->attempts);
    } else {
        r = k8s_secret_judge(result->status, result->body, result->body_len, &token, &why);
        if (r < 0) {
            snprintf(message, sizeof(message), "Kubernetes Secret %s: out of memory", read->where);
        } else {
            answer.outcome = (enum k8s_secret_outcome)r;
            answer.token = token;
            if (why)
                snprintf(message, sizeof(message), "Kubernetes Secret %s: %s%s", read->where, why,
                         r == K8S_SECRET_TROUBLE && result->attempts > 1
                             ? " (retried until the deadline)"
                             : "");
            else
                snprintf(message, sizeof(message), "Kubernetes Secret %s", read->where);
        }
    }
    read->done(read->user, &answer);
    secret_free(token);
    free(why);
    free(read);
}

/* Joins the service account directory and a file in it. Gives a path (free()) or NULL. */
static char *service_account_file(const struct config *config, const char *file)
{
    char *path = NULL;

    if (asprintf(&path, "%s/%s", config->kubernetes_service_account_dir, file) < 0)
        return NULL;
    return path;
}

int k8s_get_secret(struct http_request_client *client, const struct config *config,
                   const char *namespace, const char *name, int64_t deadline_ms, k8s_done_fn done,
                   void *user, char **reterr_msg)
{
    char *token_path = NULL, *ca_path = NULL, *url = NULL, *sa_token = NULL, *auth = NULL;
    const char *headers[3] = {NULL, "Accept: application/json", NULL};
    struct read *read = NULL;
    struct config_stamp stamp;
    bool ipv6;
    int r;

    if (!config->kubernetes_host)
        return -ENOTCONN;
    if (!k8s_secret_namespace_valid(namespace) || !k8s_secret_name_valid(name))
        return -EINVAL;
    token_path = service_account_file(config, SERVICE_ACCOUNT_TOKEN);
    ca_path = service_account_file(config, SERVICE_ACCOUNT_CA);
    read = calloc(1, sizeof(*read));
    if (!token_path || !ca_path || !read) {
        r = -ENOMEM;
        goto out;
    }
    config_stamp_file(token_path, &stamp);
    if (!stamp.exists) {
        r = -ENOENT;
        goto out;
    }
    r = config_read_secret(token_path, "service account token", &sa_token, reterr_msg);
    if (r < 0) {
        r = r == -ENOMEM ? -ENOMEM : -EIO;
        goto out;
    }
    ipv6 = strchr(config->kubernetes_host, ':') != NULL;
    if (asprintf(&url, "https://%s%s%s:%s/api/v1/namespaces/%s/secrets/%s", ipv6 ? "[" : "",
                 config->kubernetes_host, ipv6 ? "]" : "", config->kubernetes_port, namespace,
                 name) < 0)
        url = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", sa_token) < 0)
        auth = NULL;
    if (!url || !auth) {
        r = -ENOMEM;
        goto out;
    }
    headers[0] = auth;
    read->done = done;
    read->user = user;
    snprintf(read->where, sizeof(read->where), "%s/%s", namespace, name);
    {
        const struct http_request_spec spec = {
            .url = url,
            .headers = headers,
            .ca_file = ca_path,
            .connect_timeout_ms = config->connect_timeout_ms,
            .attempt_timeout_ms = config->request_timeout_ms,
            .max_response_bytes = SECRET_ANSWER_MAX,
            .deadline_ms = deadline_ms,
            .retry_status = retry_status,
        };
        r = http_request_start(client, &spec, on_done, read);
    }
    if (r == 0)
        read = NULL;
out:
    secret_free(sa_token);
    secret_free(auth);
    free(read);
    free(url);
    free(token_path);
    free(ca_path);
    return r;
}
