/*
 * tokencache.c - the credential cache with single flight and background re-validation (see
 * tokencache.h).
 *
 * Entries live in a fixed hash table (chained, a power of two of buckets at least as many as the
 * entries allowed), found by key in O(1) on the hot path: every call looks its key up. When the
 * table is full a new key evicts one entry nobody waits for: an expired one if any, else the one
 * used longest ago; entries being fetched are never evicted, so a fetch always finds its entry
 * when it ends. Values are credentials: wiped before they are freed or replaced.
 *
 * Pure and single-threaded (the caller serializes).
 */
#include "tokencache.h"

#include "secret.h"
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *chain; /* next in the bucket */
    char *key;
    int kind;
    char *value; /* secret; NULL: none */
    char *note;
    bool has_answer;
    bool fetching;
    int64_t expires_ms;
    int64_t refresh_ms;
    int64_t last_used_ms;
    struct tokencache_waiter *waiters, **waiters_tail;
};

struct tokencache {
    struct entry **buckets;
    size_t bucket_mask;
    size_t count, max;
};

/* FNV-1a: keys are short names chosen by task authors, not an attack on the table's shape
 * worth defending against beyond the entry limit. */
static size_t hash_of(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h;
}

static void forget_answer(struct entry *e)
{
    secret_free(e->value);
    free(e->note);
    e->value = e->note = NULL;
    e->has_answer = false;
}

static void entry_free(struct entry *e)
{
    forget_answer(e);
    free(e->key);
    free(e);
}

struct tokencache *tokencache_new(size_t max_entries)
{
    struct tokencache *c = calloc(1, sizeof(*c));
    size_t n = 16;

    if (!c)
        return NULL;
    while (n < max_entries)
        n *= 2;
    c->buckets = calloc(n, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->bucket_mask = n - 1;
    c->max = max_entries ? max_entries : 1;
    return c;
}

void tokencache_free(struct tokencache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->bucket_mask; i++) {
        for (struct entry *e = c->buckets[i], *next; e; e = next) {
            next = e->chain;
            entry_free(e);
        }
    }
    free(c->buckets);
    free(c);
}

static struct entry **slot_of(struct tokencache *c, const char *key)
{
    struct entry **slot = &c->buckets[hash_of(key) & c->bucket_mask];

    while (*slot && strcmp((*slot)->key, key) != 0)
        slot = &(*slot)->chain;
    return slot;
}

static void remove_at(struct tokencache *c, struct entry **slot)
{
    struct entry *e = *slot;

    *slot = e->chain;
    entry_free(e);
    c->count--;
}

/* Makes room for one more key; false when every entry is busy. */
static bool evict_one(struct tokencache *c, int64_t now_ms)
{
    struct entry **victim = NULL;

    for (size_t i = 0; i <= c->bucket_mask; i++) {
        for (struct entry **slot = &c->buckets[i]; *slot; slot = &(*slot)->chain) {
            const struct entry *e = *slot;

            if (e->fetching || e->waiters)
                continue;
            if (!e->has_answer || e->expires_ms <= now_ms) {
                remove_at(c, slot);
                return true;
            }
            if (!victim || e->last_used_ms < (*victim)->last_used_ms)
                victim = slot;
        }
    }
    if (!victim)
        return false;
    remove_at(c, victim);
    return true;
}

static void link_waiter(struct entry *e, struct tokencache_waiter *w)
{
    w->next = NULL;
    *e->waiters_tail = w;
    e->waiters_tail = &w->next;
}

static struct tokencache_waiter *take_waiters(struct entry *e)
{
    struct tokencache_waiter *w = e->waiters;

    e->waiters = NULL;
    e->waiters_tail = &e->waiters;
    return w;
}

/* The entry's answer when it is usable at now_ms: HIT, HIT_REFRESH, or MISS. */
static enum tokencache_lookup answer_of(struct entry *e, int64_t now_ms,
                                        struct tokencache_answer *ret)
{
    if (!e->has_answer || now_ms >= e->expires_ms)
        return TOKENCACHE_MISS;
    *ret = (struct tokencache_answer){e->kind, e->value, e->note};
    if (e->fetching || now_ms < e->refresh_ms)
        return TOKENCACHE_HIT;
    e->fetching = true;
    return TOKENCACHE_HIT_REFRESH;
}

enum tokencache_lookup tokencache_peek(struct tokencache *c, const char *key, int64_t now_ms,
                                       struct tokencache_answer *ret)
{
    struct entry *e = *slot_of(c, key);

    if (!e)
        return TOKENCACHE_MISS;
    e->last_used_ms = now_ms;
    return answer_of(e, now_ms, ret);
}

enum tokencache_lookup tokencache_lookup(struct tokencache *c, const char *key, int64_t now_ms,
                                         struct tokencache_waiter *waiter,
                                         struct tokencache_answer *ret)
{
    struct entry **slot = slot_of(c, key);
    struct entry *e = *slot;
    enum tokencache_lookup found;

    if (e) {
        e->last_used_ms = now_ms;
        found = answer_of(e, now_ms, ret);
        if (found != TOKENCACHE_MISS)
            return found;
        link_waiter(e, waiter);
        if (e->fetching)
            return TOKENCACHE_JOINED;
        e->fetching = true;
        return TOKENCACHE_FETCH;
    }
    if (c->count >= c->max && !evict_one(c, now_ms))
        return TOKENCACHE_FULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return TOKENCACHE_FULL;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return TOKENCACHE_FULL;
    }
    e->fetching = true;
    e->last_used_ms = now_ms;
    e->waiters_tail = &e->waiters;
    link_waiter(e, waiter);
    /* The eviction may have changed the bucket's chain: find the slot again. */
    slot = slot_of(c, key);
    *slot = e;
    c->count++;
    return TOKENCACHE_FETCH;
}

int tokencache_store(struct tokencache *c, const char *key, const struct tokencache_answer *answer,
                     int64_t expires_ms, int64_t refresh_ms, struct tokencache_waiter **ret_waiters,
                     int *ret_previous_kind)
{
    struct entry *e = *slot_of(c, key);

    *ret_waiters = NULL;
    if (ret_previous_kind)
        *ret_previous_kind = e && e->has_answer ? e->kind : -1;
    if (!e)
        return 0;
    *ret_waiters = take_waiters(e);
    e->fetching = false;
    forget_answer(e);
    e->kind = answer->kind;
    e->value = answer->value ? strdup(answer->value) : NULL;
    e->note = answer->note ? strdup(answer->note) : NULL;
    if ((answer->value && !e->value) || (answer->note && !e->note)) {
        forget_answer(e);
        return -ENOMEM;
    }
    e->has_answer = true;
    e->expires_ms = expires_ms;
    e->refresh_ms = refresh_ms < expires_ms ? refresh_ms : expires_ms;
    return 0;
}

void tokencache_failed(struct tokencache *c, const char *key,
                       struct tokencache_waiter **ret_waiters)
{
    struct entry *e = *slot_of(c, key);

    *ret_waiters = NULL;
    if (!e)
        return;
    *ret_waiters = take_waiters(e);
    e->fetching = false;
}

void tokencache_invalidate(struct tokencache *c, const char *key, const char *value)
{
    struct entry *e = *slot_of(c, key);

    if (e && e->has_answer && e->value && value && strcmp(e->value, value) == 0)
        forget_answer(e);
}

size_t tokencache_count(const struct tokencache *c)
{
    return c->count;
}
