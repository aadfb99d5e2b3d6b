/*
 * creds.c - the token chain of every call (see creds.h for the order and why).
 *
 * Design. A call walks the sources in order (struct call's `stage`). What can be decided at
 * once - its own token, resource_meta's, the default token, a Secret or OAuth token already in
 * the cache - is decided on the calling thread and the request goes to dbx_request() from
 * there, without a hand-off: that is the path of almost every call. Anything else (a Secret or
 * token to fetch or being fetched, a failure to answer) moves the call to the loop thread
 * (http_post()), where it waits in the cache for the fetch and where every fetch ends, so that
 * waiters are always resumed, and every answer without a Databricks request given, on the loop
 * thread. Fetches themselves (k8s.c, oauth.c) are started from the loop thread too.
 *
 * Owns: the two caches (per-namespace Secrets keyed "namespace/name", OAuth tokens keyed
 * "instance client_id"), behind one mutex never held while calling out; a `struct call` per call
 * that needed more than the fast path, until its callback returns; a `struct fetch` per fetch.
 * Tokens are copied out of the cache under the mutex and wiped when the call is done with them.
 * Threads: creds_request from any thread; everything else on the loop thread.
 */
#include "creds.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http.h"
#include "http_request.h"
#include "k8s.h"
#include "log.h"
#include "oauth.h"
#include "retry.h"
#include "secret.h"
#include "tokencache.h"

/* Per-namespace Secrets a cache holds: one per namespace using its own token, typically. */
#define NAMESPACE_ENTRIES_MAX 4096
/* OAuth tokens: one per (instance, client), and instances are allowlisted. */
#define OAUTH_ENTRIES_MAX 256
/* An OAuth token is used until this long before it expires (or a quarter of its life when that
 * is shorter), and fetched anew in the background from twice as long before. */
#define OAUTH_EXPIRY_MARGIN_MS 60000
/* A Secret's answer is read again in the background during the last fifth of its time. */
#define NAMESPACE_REFRESH_DIVISOR 5
/* The cache kind of "the pod has no service account token": like an absent Secret. */
#define KIND_NO_SERVICE_ACCOUNT _K8S_SECRET_OUTCOME_MAX

/* Indexed by enum creds_source; the same words metrics.c's token source table lists. */
static const char *const source_names[_CREDS_SOURCE_MAX] = {
    [CREDS_SOURCE_NONE] = "none",
    [CREDS_SOURCE_CONNECTION] = "connection_secret",
    [CREDS_SOURCE_NAMESPACE] = "namespace_secret",
    [CREDS_SOURCE_RESOURCE_META] = "resource_meta",
    [CREDS_SOURCE_OAUTH] = "oauth",
    [CREDS_SOURCE_DEFAULT] = "default",
};

struct creds {
    struct dbx *dbx;                      /* borrowed */
    struct http *http;                    /* borrowed */
    struct metrics *metrics;              /* borrowed, may be NULL */
    struct http_request_client *requests; /* owned */
    pthread_mutex_t lock;
    struct tokencache *namespaces;  /* guarded by lock */
    struct tokencache *oauth;       /* guarded by lock */
    bool warned_no_service_account; /* guarded by lock */
};

enum stage {
    STAGE_NAMESPACE,
    STAGE_RESOURCE_META,
    STAGE_OAUTH,
    STAGE_DEFAULT,
};

/* A call that needed more than the fast path. */
struct call {
    struct http_job job;             /* the move to the loop thread */
    struct tokencache_waiter waiter; /* waiting for a fetch */
    struct creds *creds;
    const struct config *config; /* a reference to the call's */
    enum dbx_endpoint endpoint;
    char *instance;
    char *run_id;
    bool retry_safe;
    int64_t deadline_ms;
    char *body;      /* owned until sent */
    char *body_copy; /* an OAuth-served POST's body, for its one retry after a 401 */
    dbx_done_fn done;
    void *user;
    struct creds_used *used;
    enum stage stage;
    char *resmeta_token;                                                    /* SECRET */
    char namespace_key[K8S_SECRET_NAMESPACE_MAX + K8S_SECRET_NAME_MAX + 2]; /* "" : no source */
    char namespace[K8S_SECRET_NAMESPACE_MAX + 1];
    const char *secret_name;                        /* in namespace_key */
    const struct config_oauth_client *oauth_client; /* borrowed from config; NULL: none */
    char oauth_key[CREDS_NAME_SIZE];
    char *oauth_token;        /* SECRET: the one sent, to forget it on a 401 */
    bool retried;             /* the one retry after a 401 is spent */
    char namespace_note[512]; /* what the Secret's source said, for a missing token's message */
};

/* One Secret or OAuth token being fetched, for every call that waits for it. */
struct fetch {
    struct http_job job; /* the start, on the loop thread */
    struct creds *creds;
    /* A reference of its own: a background refresh outlives the call that started it. */
    const struct config *config;
    bool is_oauth;
    char key[CREDS_NAME_SIZE];
    char namespace[K8S_SECRET_NAMESPACE_MAX + 1];
    char name[K8S_SECRET_NAME_MAX + 1];
    char instance[CREDS_NAME_SIZE];
    const struct config_oauth_client *client; /* borrowed from config */
    int64_t deadline_ms;
};

const char *creds_source_name(enum creds_source source)
{
    if (source < 0 || source >= _CREDS_SOURCE_MAX)
        return "none";
    return source_names[source];
}

static void call_free(struct call *c)
{
    if (!c)
        return;
    free(c->instance);
    free(c->run_id);
    free(c->body);
    secret_free(c->body_copy);
    secret_free(c->resmeta_token);
    secret_free(c->oauth_token);
    config_unref(c->config);
    free(c);
}

static void set_used(struct creds_used *used, enum creds_source source, const char *name)
{
    used->source = source;
    snprintf(used->name, sizeof(used->name), "%s", name ? name : "");
    used->namespace[0] = used->token_secret[0] = '\0';
}

/* Answers the call without a Databricks request, on the loop thread, and frees it. */
static void answer_now(struct call *c, enum dbx_verdict verdict, const char *error_code,
                       const char *message)
{
    const struct dbx_answer answer = {
        .verdict = verdict,
        .error_code = error_code,
        .message = message,
    };

    c->done(c->user, &answer);
    call_free(c);
}

/* Outcomes of a step of the chain. */
#define STEP_NEXT 1 /* go on with the next source */
#define STEP_DONE 0 /* sent, waiting, or answered */

static int advance(struct call *c, bool on_loop);

static void on_moved(struct http_job *job, bool cancelled)
{
    struct call *c = (struct call *)((char *)job - offsetof(struct call, job));

    if (cancelled) {
        answer_now(c, DBX_VERDICT_UNAVAILABLE, "SHUTDOWN", "connector shutting down");
        return;
    }
    (void)advance(c, true);
}

/* Continues the call on the loop thread. From creds_request(): 0, or -ESHUTDOWN (the call is
 * freed, its body too). */
static int move_to_loop(struct call *c)
{
    int r;

    c->job.run = on_moved;
    r = http_post(c->creds->http, &c->job);
    if (r < 0)
        call_free(c);
    return r;
}

/* Fails the call: on the loop thread at once, else after moving there (the step is then taken
 * again, and fails there). */
static int fail(struct call *c, bool on_loop, enum dbx_verdict verdict, const char *error_code,
                const char *message)
{
    if (!on_loop)
        return move_to_loop(c);
    answer_now(c, verdict, error_code, message);
    return STEP_DONE;
}

static void on_oauth_answer(void *user, const struct dbx_answer *answer);

/* Sends the request with `token` (NULL: the client's default), counting and naming the source
 * in *used. For an OAuth token the answer comes back here first (the one retry after a 401).
 * Returns STEP_DONE, or from creds_request(), -ENOMEM / -ESHUTDOWN (the call freed). */
static int send(struct call *c, bool on_loop, enum creds_source source, const char *token)
{
    struct dbx_call call = {
        .endpoint = c->endpoint,
        .instance = c->instance,
        .run_id = c->run_id,
        .token = token,
        .retry_safe = c->retry_safe,
        .deadline_ms = c->deadline_ms,
    };
    bool wrap = source == CREDS_SOURCE_OAUTH && !c->retried;
    char *body = c->body;
    int r;

    c->used->source = source;
    /* A call counts once, its one retry after a 401 included. */
    if (!c->retried)
        metrics_token_source(c->creds->metrics, source_names[source]);
    if (wrap && body && !c->body_copy) {
        c->body_copy = strdup(body);
        if (!c->body_copy)
            wrap = false; /* no memory for the retry: send it once */
    }
    if (source == CREDS_SOURCE_OAUTH && token) {
        secret_free(c->oauth_token);
        c->oauth_token = strdup(token);
    }
    c->body = NULL;
    if (wrap) {
        r = dbx_request(c->creds->dbx, &call, body, on_oauth_answer, c);
        if (r == 0)
            return STEP_DONE;
    } else {
        r = dbx_request(c->creds->dbx, &call, body, c->done, c->user);
        if (r == 0) {
            call_free(c);
            return STEP_DONE;
        }
    }
    if (!on_loop) {
        call_free(c);
        return r;
    }
    answer_now(c, DBX_VERDICT_UNAVAILABLE, r == -ESHUTDOWN ? "SHUTDOWN" : "NO_MEMORY",
               r == -ESHUTDOWN ? "connector shutting down" : "out of memory");
    return STEP_DONE;
}

/* ---- fetches ------------------------------------------------------------------------------- */

/* The kind a fetch that got no answer passes to its waiters. */
static int trouble_kind(const struct fetch *f)
{
    return f->is_oauth ? OAUTH_TOKEN_TROUBLE : K8S_SECRET_TROUBLE;
}

static void resume_namespace(struct call *c, int kind, const char *token, const char *note);
static void resume_oauth(struct call *c, int kind, const char *token, const char *note);

/* Ends a fetch: keeps the answer (fetched true) or only hands back the waiters, and resumes them
 * with `kind`, `token`, `note`. Loop thread. */
static void end_fetch(struct fetch *f, bool fetched, int kind, const char *token, const char *note,
                      int64_t expires_ms, int64_t refresh_ms)
{
    const struct tokencache_answer answer = {.kind = kind, .value = token, .note = note};
    struct tokencache *cache = f->is_oauth ? f->creds->oauth : f->creds->namespaces;
    struct tokencache_waiter *w, *next;
    int previous = -1;

    pthread_mutex_lock(&f->creds->lock);
    if (fetched)
        (void)tokencache_store(cache, f->key, &answer, expires_ms, refresh_ms, &w, &previous);
    else
        tokencache_failed(cache, f->key, &w);
    pthread_mutex_unlock(&f->creds->lock);
    if (!f->is_oauth && kind == K8S_SECRET_FORBIDDEN && previous != K8S_SECRET_FORBIDDEN)
        log_warning("the Kubernetes API refused to read a token Secret: the connector's service "
                    "account needs RBAC \"get\" on \"secrets\" in that namespace (ClusterRole and "
                    "binding: deploy/components/namespace-tokens); using the next token source",
                    "namespace", f->namespace, "secret", f->name, "detail", note);
    for (; w; w = next) {
        struct call *c = (struct call *)((char *)w - offsetof(struct call, waiter));

        next = w->next;
        if (f->is_oauth)
            resume_oauth(c, kind, token, note);
        else
            resume_namespace(c, kind, token, note);
    }
    config_unref(f->config);
    free(f);
}

static void on_secret(void *user, const struct k8s_answer *answer)
{
    struct fetch *f = user;
    int64_t now = clock_now_ms(), ttl = f->config->namespace_token_ttl_ms;

    log_debug("Kubernetes Secret read", "namespace", f->namespace, "secret", f->name, "outcome",
              k8s_secret_outcome_name(answer->outcome));
    end_fetch(f, answer->outcome != K8S_SECRET_TROUBLE, (int)answer->outcome, answer->token,
              answer->message, now + ttl, now + ttl - ttl / NAMESPACE_REFRESH_DIVISOR);
}

static void on_oauth_token(void *user, const struct oauth_answer *answer)
{
    struct fetch *f = user;
    int64_t now = clock_now_ms(), life = (int64_t)answer->expires_in_s * 1000;
    int64_t margin = life / 4 < OAUTH_EXPIRY_MARGIN_MS ? life / 4 : OAUTH_EXPIRY_MARGIN_MS;
    char lifetime[24];

    snprintf(lifetime, sizeof(lifetime), "%ld", answer->expires_in_s);
    if (answer->outcome == OAUTH_TOKEN_GRANTED)
        log_info("OAuth token fetched", "instance", f->instance, "client_id", f->client->client_id,
                 "expires_in_s", lifetime);
    else
        log_warning("OAuth token not granted", "instance", f->instance, "client_id",
                    f->client->client_id, "error", answer->message);
    /* Only a token is kept: after a refusal or trouble the next call asks again. */
    end_fetch(f, answer->outcome == OAUTH_TOKEN_GRANTED, (int)answer->outcome, answer->token,
              answer->message, now + life - margin, now + life - 2 * margin);
}

/* A Secret that cannot be asked for: the pod has no service account token. Said once. */
static void no_service_account(struct fetch *f)
{
    int64_t now = clock_now_ms(), ttl = f->config->namespace_token_ttl_ms;
    bool warn;

    pthread_mutex_lock(&f->creds->lock);
    warn = !f->creds->warned_no_service_account;
    f->creds->warned_no_service_account = true;
    pthread_mutex_unlock(&f->creds->lock);
    if (warn)
        log_warning("running in Kubernetes without a service account token: per-namespace "
                    "token Secrets are not read (kubernetes_service_account_dir, or "
                    "automountServiceAccountToken)",
                    "dir", f->config->kubernetes_service_account_dir);
    end_fetch(f, true, KIND_NO_SERVICE_ACCOUNT, NULL,
              "no service account token to read Kubernetes Secrets with", now + ttl, now + ttl);
}

/* http_job.run: starts a fetch on the loop thread. */
static void on_fetch_start(struct http_job *job, bool cancelled)
{
    struct fetch *f = (struct fetch *)((char *)job - offsetof(struct fetch, job));
    char *error = NULL, message[768];
    int r;

    if (cancelled) {
        end_fetch(f, false, trouble_kind(f), NULL, "connector shutting down", 0, 0);
        return;
    }
    if (f->is_oauth)
        r = oauth_fetch(f->creds->requests, f->config, f->instance, f->client, f->deadline_ms,
                        on_oauth_token, f);
    else
        r = k8s_get_secret(f->creds->requests, f->config, f->namespace, f->name, f->deadline_ms,
                           on_secret, f, &error);
    if (r == 0)
        return;
    if (r == -ENOENT) {
        no_service_account(f);
        return;
    }
    snprintf(message, sizeof(message), "%s %s: %s",
             f->is_oauth ? "OAuth token of" : "Kubernetes Secret", f->key,
             error             ? error
             : r == -ESHUTDOWN ? "connector shutting down"
                               : strerror(-r));
    free(error);
    end_fetch(f, false, trouble_kind(f), NULL, message, 0, 0);
}

/* Starts fetching (with f, taken) the key a call's stage names, on the loop thread; `deadline_ms`
 * bounds it. The cache already counts the key as being fetched. Any thread. */
static void start_fetch(struct call *c, struct fetch *f, bool is_oauth, int64_t deadline_ms)
{
    f->creds = c->creds;
    f->config = config_ref(c->config);
    f->is_oauth = is_oauth;
    f->deadline_ms = deadline_ms;
    snprintf(f->key, sizeof(f->key), "%s", is_oauth ? c->oauth_key : c->namespace_key);
    if (is_oauth) {
        f->client = c->oauth_client;
        snprintf(f->instance, sizeof(f->instance), "%s", c->instance);
    } else {
        snprintf(f->namespace, sizeof(f->namespace), "%s", c->namespace);
        snprintf(f->name, sizeof(f->name), "%s", c->secret_name);
    }
    f->job.run = on_fetch_start;
    if (http_post(c->creds->http, &f->job) < 0)
        on_fetch_start(&f->job, true);
}

/* The deadline of a fetch a call waits for: half the call's time, so Databricks gets the rest,
 * and no more than a request may take. A background fetch has request_timeout_ms. */
static int64_t fetch_deadline(const struct call *c, bool background)
{
    int64_t now = clock_now_ms(), half = (c->deadline_ms - now) / 2;

    if (background || half > c->config->request_timeout_ms)
        return now + c->config->request_timeout_ms;
    return now + (half > RETRY_MIN_ATTEMPT_MS ? half : RETRY_MIN_ATTEMPT_MS);
}

/* ---- the stages ------------------------------------------------------------------------------ */

/* What a cache lookup or a fetch said of the call's Secret: send with it, go on, or fail. */
static int use_namespace_answer(struct call *c, bool on_loop, int kind, const char *token,
                                const char *note)
{
    char message[1024];

    switch (kind) {
    case K8S_SECRET_FOUND:
        set_used(c->used, CREDS_SOURCE_NAMESPACE, c->namespace_key);
        snprintf(c->used->namespace, sizeof(c->used->namespace), "%s", c->namespace);
        snprintf(c->used->token_secret, sizeof(c->used->token_secret), "%s", c->secret_name);
        return send(c, on_loop, CREDS_SOURCE_NAMESPACE, token);
    case K8S_SECRET_ABSENT:
    case K8S_SECRET_FORBIDDEN:
    case KIND_NO_SERVICE_ACCOUNT:
        snprintf(c->namespace_note, sizeof(c->namespace_note), "%s", note ? note : "");
        c->stage = STAGE_RESOURCE_META;
        return STEP_NEXT;
    case K8S_SECRET_UNUSABLE:
        set_used(c->used, CREDS_SOURCE_NAMESPACE, c->namespace_key);
        snprintf(message, sizeof(message), "%s", note ? note : "unusable Secret");
        return fail(c, on_loop, DBX_VERDICT_UNAUTHENTICATED, "TOKEN_SECRET", message);
    default:
        set_used(c->used, CREDS_SOURCE_NAMESPACE, c->namespace_key);
        snprintf(message, sizeof(message), "%s; the call is not sent with another token instead",
                 note ? note : "trouble");
        return fail(c, on_loop, DBX_VERDICT_UNAVAILABLE, "KUBERNETES", message);
    }
}

static int use_oauth_answer(struct call *c, bool on_loop, int kind, const char *token,
                            const char *note)
{
    set_used(c->used, CREDS_SOURCE_OAUTH, c->oauth_key);
    if (kind == OAUTH_TOKEN_GRANTED)
        return send(c, on_loop, CREDS_SOURCE_OAUTH, token);
    return fail(c, on_loop,
                kind == OAUTH_TOKEN_REFUSED ? DBX_VERDICT_UNAUTHENTICATED : DBX_VERDICT_UNAVAILABLE,
                "OAUTH", note ? note : "no OAuth token");
}

static void resume_namespace(struct call *c, int kind, const char *token, const char *note)
{
    if (use_namespace_answer(c, true, kind, token, note) == STEP_NEXT)
        (void)advance(c, true);
}

static void resume_oauth(struct call *c, int kind, const char *token, const char *note)
{
    (void)use_oauth_answer(c, true, kind, token, note);
}

/*
 * Looks the stage's key up in `cache`: answered from memory (*ret_token a copy to wipe, *kind,
 * *note copied into note_buf), or the call waits (on the loop thread; a fetch started if it is
 * the first), or, off the loop thread, MISS. Starts a background fetch when the entry asks for
 * one.
 */
static enum tokencache_lookup look_up(struct call *c, bool on_loop, bool is_oauth, int *ret_kind,
                                      char **ret_token, char *note_buf, size_t note_size)
{
    struct tokencache *cache = is_oauth ? c->creds->oauth : c->creds->namespaces;
    const char *key = is_oauth ? c->oauth_key : c->namespace_key;
    /* Made before the lookup: once the cache counts a key as being fetched, a fetch must start. */
    struct fetch *f = calloc(1, sizeof(*f));
    struct tokencache_answer answer;
    enum tokencache_lookup found;
    bool copy_failed = false;

    *ret_token = NULL;
    if (!f)
        return TOKENCACHE_FULL;
    pthread_mutex_lock(&c->creds->lock);
    found = on_loop ? tokencache_lookup(cache, key, clock_now_ms(), &c->waiter, &answer)
                    : tokencache_peek(cache, key, clock_now_ms(), &answer);
    if (found == TOKENCACHE_HIT || found == TOKENCACHE_HIT_REFRESH) {
        *ret_kind = answer.kind;
        snprintf(note_buf, note_size, "%s", answer.note ? answer.note : "");
        if (answer.value) {
            *ret_token = strdup(answer.value);
            copy_failed = !*ret_token;
        }
    }
    pthread_mutex_unlock(&c->creds->lock);
    if (found == TOKENCACHE_HIT_REFRESH || found == TOKENCACHE_FETCH)
        start_fetch(c, f, is_oauth, fetch_deadline(c, found == TOKENCACHE_HIT_REFRESH));
    else
        free(f);
    return copy_failed ? TOKENCACHE_FULL : found;
}

/* One cached source's step: the Secret (is_oauth false) or the OAuth token. */
static int cached_source(struct call *c, bool on_loop, bool is_oauth)
{
    char note[512], *token = NULL;
    int kind = 0, r;

    switch (look_up(c, on_loop, is_oauth, &kind, &token, note, sizeof(note))) {
    case TOKENCACHE_HIT:
    case TOKENCACHE_HIT_REFRESH:
        r = is_oauth ? use_oauth_answer(c, on_loop, kind, token, note)
                     : use_namespace_answer(c, on_loop, kind, token, note);
        secret_free(token);
        return r;
    case TOKENCACHE_MISS:
        return move_to_loop(c);
    case TOKENCACHE_JOINED:
    case TOKENCACHE_FETCH:
        return STEP_DONE;
    default:
        set_used(c->used, is_oauth ? CREDS_SOURCE_OAUTH : CREDS_SOURCE_NAMESPACE,
                 is_oauth ? c->oauth_key : c->namespace_key);
        return fail(c, on_loop, DBX_VERDICT_RESOURCE_EXHAUSTED, "TOKEN_CACHE",
                    "too many tokens being fetched at once, or out of memory");
    }
}

/* No source had a token: the message names every place looked at. */
static int no_token(struct call *c, bool on_loop)
{
    char message[2048];

    snprintf(message, sizeof(message),
             "no Databricks token for this call: no connection secret; %s; no auth_token in "
             "resource_meta; no OAuth client for %s (client_id, instance_oauth); no default token "
             "(looked in %s)",
             c->namespace_note[0] ? c->namespace_note
                                  : "no per-namespace Secret (no namespace, or not running in "
                                    "Kubernetes)",
             c->instance, c->config->token_places ? c->config->token_places : "?");
    set_used(c->used, CREDS_SOURCE_NONE, NULL);
    if (on_loop)
        metrics_token_source(c->creds->metrics, source_names[CREDS_SOURCE_NONE]);
    return fail(c, on_loop, DBX_VERDICT_UNAUTHENTICATED, "NO_TOKEN", message);
}

/*
 * Walks the sources from c->stage until the request is sent, the call waits, or it is answered.
 * on_loop: on the loop thread (the call may wait); otherwise from creds_request(), where what
 * cannot be decided at once moves to the loop thread. Returns STEP_DONE, or from
 * creds_request(), -ENOMEM / -ESHUTDOWN (the call freed).
 */
static int advance(struct call *c, bool on_loop)
{
    int r = STEP_NEXT;

    while (r == STEP_NEXT) {
        switch (c->stage) {
        case STAGE_NAMESPACE:
            if (c->namespace_key[0]) {
                r = cached_source(c, on_loop, false);
                break;
            }
            c->stage = STAGE_RESOURCE_META;
            break;
        case STAGE_RESOURCE_META:
            if (c->resmeta_token) {
                set_used(c->used, CREDS_SOURCE_RESOURCE_META, NULL);
                r = send(c, on_loop, CREDS_SOURCE_RESOURCE_META, c->resmeta_token);
                break;
            }
            c->stage = STAGE_OAUTH;
            break;
        case STAGE_OAUTH:
            if (c->oauth_client) {
                r = cached_source(c, on_loop, true);
                break;
            }
            c->stage = STAGE_DEFAULT;
            break;
        case STAGE_DEFAULT:
            if (c->config->token) {
                set_used(c->used, CREDS_SOURCE_DEFAULT, c->config->token_place);
                r = send(c, on_loop, CREDS_SOURCE_DEFAULT, NULL);
            } else {
                r = no_token(c, on_loop);
            }
            break;
        }
    }
    return r;
}

/* dbx_done_fn of an OAuth-served request: a 401 means the token went bad before its time (it was
 * revoked, or the workspace restarted its keys): forget it, get a new one and send once more. */
static void on_oauth_answer(void *user, const struct dbx_answer *answer)
{
    struct call *c = user;

    if (answer->verdict != DBX_VERDICT_UNAUTHENTICATED || c->retried) {
        c->done(c->user, answer);
        call_free(c);
        return;
    }
    log_info("Databricks refused the OAuth token (401): fetching a new one and sending once "
             "more",
             "instance", c->instance, "client_id", c->oauth_client->client_id);
    c->retried = true;
    pthread_mutex_lock(&c->creds->lock);
    tokencache_invalidate(c->creds->oauth, c->oauth_key, c->oauth_token);
    pthread_mutex_unlock(&c->creds->lock);
    c->body = c->body_copy;
    c->body_copy = NULL;
    c->stage = STAGE_OAUTH;
    (void)advance(c, true);
}

/* ---- the call -------------------------------------------------------------------------------- */

static struct call *call_new(struct creds *creds, const struct config *config,
                             const struct dbx_call *dbx_call, const struct creds_ask *ask,
                             char *body, dbx_done_fn done, void *user, struct creds_used *used)
{
    struct call *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->creds = creds;
    c->config = config_ref(config);
    c->endpoint = dbx_call->endpoint;
    c->retry_safe = dbx_call->retry_safe;
    c->deadline_ms = dbx_call->deadline_ms;
    c->done = done;
    c->user = user;
    c->used = used;
    c->instance = strdup(dbx_call->instance);
    c->run_id = dbx_call->run_id ? strdup(dbx_call->run_id) : NULL;
    c->resmeta_token = ask->resmeta_token ? strdup(ask->resmeta_token) : NULL;
    if (!c->instance || (dbx_call->run_id && !c->run_id) ||
        (ask->resmeta_token && !c->resmeta_token)) {
        call_free(c);
        return NULL;
    }
    c->body = body;
    if (config->kubernetes_host && ask->namespace) {
        const char *name = ask->token_secret ? ask->token_secret : K8S_SECRET_DEFAULT_NAME;

        snprintf(c->namespace_key, sizeof(c->namespace_key), "%s/%s", ask->namespace, name);
        c->secret_name = c->namespace_key + strlen(ask->namespace) + 1;
        snprintf(c->namespace, sizeof(c->namespace), "%s", ask->namespace);
    }
    c->oauth_client = config_oauth_client(config, dbx_call->instance);
    if (c->oauth_client)
        snprintf(c->oauth_key, sizeof(c->oauth_key), "%s %s", dbx_call->instance,
                 c->oauth_client->client_id);
    return c;
}

int creds_request(struct creds *creds, const struct config *config, const struct dbx_call *call,
                  const struct creds_ask *ask, char *body, dbx_done_fn done, void *user,
                  struct creds_used *ret_used)
{
    struct call *c;
    int r;

    *ret_used = (struct creds_used){.source = CREDS_SOURCE_NONE};
    /* The call's own token needs nothing else. */
    if (call->token) {
        metrics_token_source(creds->metrics, source_names[CREDS_SOURCE_CONNECTION]);
        ret_used->source = CREDS_SOURCE_CONNECTION;
        return dbx_request(creds->dbx, call, body, done, user);
    }
    /* Nothing but the default token can apply: no copy of the call. */
    if (config->token && !ask->resmeta_token && !(config->kubernetes_host && ask->namespace) &&
        !config_oauth_client(config, call->instance)) {
        set_used(ret_used, CREDS_SOURCE_DEFAULT, config->token_place);
        metrics_token_source(creds->metrics, source_names[CREDS_SOURCE_DEFAULT]);
        return dbx_request(creds->dbx, call, body, done, user);
    }
    c = call_new(creds, config, call, ask, body, done, user, ret_used);
    if (!c) {
        free(body);
        return -ENOMEM;
    }
    r = advance(c, false);
    return r < 0 ? r : 0;
}

struct creds *creds_new(struct dbx *dbx, struct http *http, struct metrics *metrics,
                        char **reterr_msg)
{
    struct creds *creds = calloc(1, sizeof(*creds));

    if (!creds)
        goto fail;
    pthread_mutex_init(&creds->lock, NULL);
    creds->dbx = dbx;
    creds->http = http;
    creds->metrics = metrics;
    creds->namespaces = tokencache_new(NAMESPACE_ENTRIES_MAX);
    creds->oauth = tokencache_new(OAUTH_ENTRIES_MAX);
    if (!creds->namespaces || !creds->oauth)
        goto fail;
    creds->requests = http_request_client_new(http, reterr_msg);
    if (!creds->requests)
        goto fail;
    return creds;
fail:
    if (!*reterr_msg)
        *reterr_msg = strdup("out of memory");
    creds_free(creds);
    return NULL;
}

void creds_free(struct creds *creds)
{
    if (!creds)
        return;
    http_request_client_free(creds->requests);
    tokencache_free(creds->namespaces);
    tokencache_free(creds->oauth);
    pthread_mutex_destroy(&creds->lock);
    free(creds);
}
