/*
 * runs.c - bounded map of recent runs: coalescing, status cache and last
 * known phase.
 *
 * Layout: a chained hash table (power-of-two buckets, FNV-1a over
 * "instance\nrun_id\ncredential") plus a doubly linked list in order of last use, so the
 * least recently polled run is evicted first when the map is full. An entry
 * with a fetch under way holds waiters and is never evicted. One mutex
 * guards everything; no function calls out while holding it.
 *
 * runs_decide_answer() holds the policy for what a waiter hears once its fetch
 * ends; it reads only its arguments.
 *
 * Each entry also keeps what runs/get-output said once the run was over (so a
 * terminal run is asked about at most once while it stays in the map) and the
 * phase of the last GetTask answer. Both go with the entry when it is evicted:
 * the map is a cache, and the worst that costs is one more request or log line.
 */
#include "runs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

struct entry {
    struct entry *bucket_next;
    struct entry *lru_prev, *lru_next; /* head = most recently used */
    char *key;                         /* "instance\nrun_id\ncredential" */
    uint64_t hash;
    bool has_status;
    struct phase_result status; /* last status Databricks gave */
    int64_t fetched_ms;         /* when `status` was fetched */
    int64_t trouble_since_ms;   /* first failed refresh since the last success; 0: none */
    bool fetching;
    uint64_t fetch_id;         /* of the fetch under way */
    bool output_known;         /* runs/get-output was asked (whatever it said) */
    struct runs_output output; /* what it said */
    int last_answered;         /* enum phase of the last GetTask answer; -1: none yet */
    struct runs_waiter *waiters_head, *waiters_tail;
};

struct runs {
    pthread_mutex_t lock;
    struct runs_settings settings;
    struct entry **buckets;
    size_t bucket_count; /* power of two */
    size_t count;
    struct entry *lru_head, *lru_tail;
    uint64_t last_fetch_id;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static char *make_key(const char *instance, const char *run_id, const char *credential)
{
    char *key = NULL;

    /* '\n' cannot occur in a validated instance or run id, nor in a credential tag. */
    if (asprintf(&key, "%s\n%s\n%s", instance, run_id, credential ? credential : "") < 0)
        return NULL;
    return key;
}

int runs_copy_result(struct phase_result *dst, const struct phase_result *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->phase = src->phase;
    dst->has_error = src->has_error;
    dst->error_recoverable = src->error_recoverable;
    dst->error_origin = src->error_origin;
    if (src->custom_info) {
        dst->custom_info = malloc(src->custom_info_len ? src->custom_info_len : 1);
        if (dst->custom_info) {
            memcpy(dst->custom_info, src->custom_info, src->custom_info_len);
            dst->custom_info_len = src->custom_info_len;
        }
    }
    if ((src->message && !(dst->message = strdup(src->message))) ||
        (src->run_page_url && !(dst->run_page_url = strdup(src->run_page_url))) ||
        (src->error_code && !(dst->error_code = strdup(src->error_code))) ||
        (src->custom_info && !dst->custom_info)) {
        phase_result_done(dst);
        memset(dst, 0, sizeof(*dst));
        return -ENOMEM;
    }
    return 0;
}

static void lru_unlink(struct runs *runs, struct entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        runs->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        runs->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct runs *runs, struct entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = runs->lru_head;
    if (runs->lru_head)
        runs->lru_head->lru_prev = e;
    runs->lru_head = e;
    if (!runs->lru_tail)
        runs->lru_tail = e;
}

static struct entry **find_link(struct runs *runs, const char *key, uint64_t hash)
{
    struct entry **link = &runs->buckets[hash & (runs->bucket_count - 1)];
    while (*link && ((*link)->hash != hash || strcmp((*link)->key, key) != 0))
        link = &(*link)->bucket_next;
    return link;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    free(e->key);
    phase_result_done(&e->status);
    runs_output_done(&e->output);
    free(e);
}

static void remove_entry(struct runs *runs, struct entry *e)
{
    struct entry **link = find_link(runs, e->key, e->hash);
    if (*link == e)
        *link = e->bucket_next;
    lru_unlink(runs, e);
    runs->count--;
    entry_free(e);
}

/* Makes room for one entry: evicts the least recently used idle one. */
static bool make_room(struct runs *runs)
{
    struct entry *e = runs->lru_tail;

    if (runs->count < runs->settings.max_runs)
        return true;
    while (e && e->fetching)
        e = e->lru_prev;
    if (!e)
        return false;
    remove_entry(runs, e);
    return true;
}

struct runs *runs_new(const struct runs_settings *settings)
{
    struct runs *runs = calloc(1, sizeof(*runs));
    size_t buckets = 64;

    if (!runs)
        return NULL;
    runs->settings = *settings;
    if (runs->settings.max_runs == 0)
        runs->settings.max_runs = 1;
    /* Load factor at most 1 when full. */
    while (buckets < runs->settings.max_runs && buckets < ((size_t)1 << 24))
        buckets *= 2;
    runs->buckets = calloc(buckets, sizeof(*runs->buckets));
    if (!runs->buckets) {
        free(runs);
        return NULL;
    }
    runs->bucket_count = buckets;
    pthread_mutex_init(&runs->lock, NULL);
    return runs;
}

struct runs *runs_free(struct runs *runs)
{
    if (!runs)
        return NULL;
    while (runs->lru_head) {
        struct entry *e = runs->lru_head;
        runs->lru_head = e->lru_next;
        entry_free(e);
    }
    free(runs->buckets);
    pthread_mutex_destroy(&runs->lock);
    free(runs);
    return NULL;
}

size_t runs_count(struct runs *runs)
{
    size_t n;
    pthread_mutex_lock(&runs->lock);
    n = runs->count;
    pthread_mutex_unlock(&runs->lock);
    return n;
}

static void add_waiter(struct entry *e, struct runs_waiter *waiter)
{
    waiter->next = NULL;
    if (e->waiters_tail)
        e->waiters_tail->next = waiter;
    else
        e->waiters_head = waiter;
    e->waiters_tail = waiter;
}

static bool cache_fresh(const struct runs *runs, const struct entry *e, int64_t now_ms)
{
    int64_t ttl;

    if (!e->has_status || e->trouble_since_ms != 0)
        return false;
    ttl = phase_is_terminal(e->status.phase) ? runs->settings.terminal_ttl_ms
                                             : runs->settings.status_ttl_ms;
    return ttl > 0 && now_ms - e->fetched_ms < ttl;
}

enum runs_lookup runs_lookup(struct runs *runs, const char *instance, const char *run_id,
                             const char *credential, int64_t now_ms, struct runs_waiter *waiter,
                             struct phase_result *ret_cached, uint64_t *ret_fetch_id)
{
    char *key = make_key(instance, run_id, credential);
    uint64_t hash;
    struct entry **link, *e;
    enum runs_lookup result = RUNS_FETCH_ALONE;

    if (!key)
        return RUNS_FETCH_ALONE;
    hash = fnv1a(key);
    pthread_mutex_lock(&runs->lock);
    link = find_link(runs, key, hash);
    e = *link;
    if (e) {
        lru_unlink(runs, e);
        lru_push_front(runs, e);
        if (cache_fresh(runs, e, now_ms) && runs_copy_result(ret_cached, &e->status) == 0) {
            result = RUNS_CACHED;
        } else if (e->fetching) {
            add_waiter(e, waiter);
            result = RUNS_JOINED;
        } else {
            e->fetching = true;
            e->fetch_id = ++runs->last_fetch_id;
            *ret_fetch_id = e->fetch_id;
            add_waiter(e, waiter);
            result = RUNS_FETCH;
        }
        goto out;
    }
    if (!make_room(runs))
        goto out; /* every entry is mid-fetch: fetch alone */
    e = calloc(1, sizeof(*e));
    if (!e)
        goto out;
    e->key = key;
    key = NULL;
    e->hash = hash;
    e->last_answered = -1;
    e->fetching = true;
    e->fetch_id = ++runs->last_fetch_id;
    *ret_fetch_id = e->fetch_id;
    add_waiter(e, waiter);
    result = RUNS_FETCH;
    e->bucket_next = NULL;
    *find_link(runs, e->key, hash) = e;
    lru_push_front(runs, e);
    runs->count++;
out:
    pthread_mutex_unlock(&runs->lock);
    free(key);
    return result;
}

void runs_fetched(struct runs *runs, const char *instance, const char *run_id,
                  const char *credential, uint64_t fetch_id, const struct phase_result *fresh,
                  bool forget, int64_t now_ms, struct runs_outcome *ret)
{
    char *key = make_key(instance, run_id, credential);
    struct phase_result copy = {0};
    struct entry *e;

    memset(ret, 0, sizeof(*ret));
    /* Copy outside the lock; a failed copy just leaves the old status. */
    if (fresh && runs_copy_result(&copy, fresh) < 0)
        fresh = NULL;
    if (!key) {
        phase_result_done(&copy);
        return;
    }
    pthread_mutex_lock(&runs->lock);
    e = *find_link(runs, key, fnv1a(key));
    if (!e || !e->fetching || e->fetch_id != fetch_id)
        goto out; /* not the fetch this entry waits for */
    ret->waiters = e->waiters_head;
    e->waiters_head = e->waiters_tail = NULL;
    e->fetching = false;
    if (forget) {
        remove_entry(runs, e);
        goto out;
    }
    if (fresh) {
        phase_result_done(&e->status);
        e->status = copy;
        memset(&copy, 0, sizeof(copy));
        e->has_status = true;
        e->fetched_ms = now_ms;
        e->trouble_since_ms = 0;
        goto out;
    }
    if (e->trouble_since_ms == 0)
        e->trouble_since_ms = now_ms;
    ret->trouble_since_ms = e->trouble_since_ms;
    if (e->has_status && runs_copy_result(&ret->last_known, &e->status) == 0)
        ret->has_last_known = true;
out:
    pthread_mutex_unlock(&runs->lock);
    phase_result_done(&copy);
    free(key);
}

void runs_decide_answer(const struct runs_fetch_end *end, int64_t now_ms, struct runs_answer *ret)
{
    const struct runs_outcome *outcome = end->outcome;

    memset(ret, 0, sizeof(*ret));
    if (end->fresh) {
        ret->kind = RUNS_ANSWER_FRESH;
        ret->status = end->fresh;
        return;
    }
    if (end->gone) {
        /* A run that is gone will never finish: end the task instead of letting propeller
         * poll forever. */
        ret->kind = RUNS_ANSWER_GONE;
        snprintf(ret->message, sizeof(ret->message),
                 "Databricks run %s no longer exists on %s (%s)", end->run_id, end->instance,
                 end->trouble);
        return;
    }
    if (!end->transient || !outcome || !outcome->has_last_known) {
        /* A refused token or request is reported as it is. */
        ret->kind = RUNS_ANSWER_ERROR;
        return;
    }
    /* Propeller counts every failed GetTask against the task for its whole life: answer what
     * Databricks last said, naming the trouble. Only a status Databricks gave is repeated,
     * never an invented one, and a final one needs no caveat. */
    ret->kind = RUNS_ANSWER_LAST_KNOWN;
    ret->status = &outcome->last_known;
    if (!phase_is_terminal(outcome->last_known.phase)) {
        /* Room for the whole text (trouble and last message are bounded), then one cut on a
         * character boundary: a cut UTF-8 sequence would make propeller reject the answer. */
        char full[2 * RUNS_ANSWER_MESSAGE_SIZE + PHASE_MESSAGE_MAX];
        snprintf(full, sizeof(full), "status not refreshed: %s (for %ld s); last known: %s",
                 end->trouble, (long)((now_ms - outcome->trouble_since_ms) / 1000),
                 outcome->last_known.message ? outcome->last_known.message : "");
        errmsg_printable(ret->message, sizeof(ret->message), full, ERRMSG_ONE_LINE);
    }
}

void runs_output_done(struct runs_output *o)
{
    if (!o)
        return;
    free(o->error_text);
    free(o->notebook_result);
    *o = (struct runs_output){0};
}

static int output_copy(struct runs_output *dst, const struct runs_output *src)
{
    *dst = (struct runs_output){.notebook_result_truncated = src->notebook_result_truncated};
    if ((src->error_text && !(dst->error_text = strdup(src->error_text))) ||
        (src->notebook_result && !(dst->notebook_result = strdup(src->notebook_result)))) {
        runs_output_done(dst);
        return -ENOMEM;
    }
    return 0;
}

/* The entry of a run, or NULL; call with the lock held. */
static struct entry *find_entry(struct runs *runs, const char *instance, const char *run_id,
                                const char *credential, char **ret_key)
{
    char *key = make_key(instance, run_id, credential);

    *ret_key = key;
    return key ? *find_link(runs, key, fnv1a(key)) : NULL;
}

bool runs_output_lookup(struct runs *runs, const char *instance, const char *run_id,
                        const char *credential, struct runs_output *ret)
{
    struct entry *e;
    char *key;
    bool known = false;

    *ret = (struct runs_output){0};
    pthread_mutex_lock(&runs->lock);
    e = find_entry(runs, instance, run_id, credential, &key);
    if (e && e->output_known)
        known = output_copy(ret, &e->output) == 0;
    pthread_mutex_unlock(&runs->lock);
    free(key);
    return known;
}

void runs_output_store(struct runs *runs, const char *instance, const char *run_id,
                       const char *credential, const struct runs_output *output)
{
    struct runs_output copy = {0};
    struct entry *e;
    char *key;

    /* Copied outside the lock; without memory the run is simply asked about again. */
    if (output && output_copy(&copy, output) < 0)
        return;
    pthread_mutex_lock(&runs->lock);
    e = find_entry(runs, instance, run_id, credential, &key);
    if (e && !e->output_known) {
        e->output = copy;
        copy = (struct runs_output){0};
        e->output_known = true;
    }
    pthread_mutex_unlock(&runs->lock);
    runs_output_done(&copy);
    free(key);
}

bool runs_note_answer(struct runs *runs, const char *instance, const char *run_id,
                      const char *credential, enum phase phase)
{
    struct entry *e;
    char *key;
    bool news = true;

    pthread_mutex_lock(&runs->lock);
    e = find_entry(runs, instance, run_id, credential, &key);
    if (e) {
        news = e->last_answered != (int)phase;
        e->last_answered = (int)phase;
    }
    pthread_mutex_unlock(&runs->lock);
    free(key);
    return news;
}
