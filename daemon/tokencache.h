/*
 * tokencache.h - a bounded cache of credentials by key (a namespace's Secret, an instance's
 * OAuth token) that fetches each key once however many calls wait for it ("single flight"),
 * and has an entry re-validated in the background before it expires so that calls keep being
 * answered from memory.
 *
 * The caller does the fetching: a lookup says whether to answer from the entry, to wait for a
 * fetch under way, or to start one (and, once the entry nears its end, to start one in the
 * background); the caller ends every fetch it started with tokencache_store() or
 * tokencache_failed(), which hand back the calls that waited.
 *
 * Pure: no clock (times are passed in), no threads, no I/O; not thread-safe: the caller
 * serializes every call on one cache (creds.c holds a mutex).
 */
#ifndef FDC_TOKENCACHE_H
#define FDC_TOKENCACHE_H

#include <stddef.h>
#include <stdint.h>

struct tokencache;

/* Embedded in a waiting call's own object; linked from a lookup until a fetch's end hands it
 * back. */
struct tokencache_waiter {
    struct tokencache_waiter *next;
};

/* An answer for a key: kind is the caller's (e.g. enum k8s_secret_outcome); value is a secret
 * (may be NULL), note a text that is not (may be NULL). */
struct tokencache_answer {
    int kind;
    const char *value;
    const char *note;
};

enum tokencache_lookup {
    TOKENCACHE_HIT,         /* *ret is the entry */
    TOKENCACHE_HIT_REFRESH, /* *ret is the entry, and it is due for re-validation: start a fetch
                             * now, in the background */
    TOKENCACHE_JOINED,      /* a fetch is under way; waiter will come back from its end */
    TOKENCACHE_FETCH,       /* nothing usable: start a fetch; waiter will come back from its end */
    TOKENCACHE_FULL,        /* no room for another key (every entry is being fetched), or no
                             * memory: nothing was linked */
    TOKENCACHE_MISS,        /* tokencache_peek() only: nothing usable; nothing changed */
    _TOKENCACHE_LOOKUP_MAX,
};

/* Gives a cache of at most max_entries keys (tokencache_free()), NULL on OOM. */
struct tokencache *tokencache_new(size_t max_entries);

/* Wipes every value and frees the cache; waiters still linked are forgotten. NULL-safe. */
void tokencache_free(struct tokencache *cache);

/*
 * Looks up key (borrowed) at now_ms. For HIT and HIT_REFRESH fills *ret with the entry's answer,
 * borrowed until the next call on the cache. For JOINED and FETCH links waiter (borrowed until
 * handed back). After HIT_REFRESH and FETCH the key counts as being fetched: further lookups
 * join that fetch instead of starting another, until tokencache_store() or tokencache_failed().
 */
enum tokencache_lookup tokencache_lookup(struct tokencache *cache, const char *key, int64_t now_ms,
                                         struct tokencache_waiter *waiter,
                                         struct tokencache_answer *ret);

/* tokencache_lookup() for a caller that cannot wait where it is: HIT and HIT_REFRESH as there;
 * otherwise TOKENCACHE_MISS, with nothing linked or changed (the caller then looks up again
 * where it can wait). */
enum tokencache_lookup tokencache_peek(struct tokencache *cache, const char *key, int64_t now_ms,
                                       struct tokencache_answer *ret);

/*
 * Ends the fetch of key with `answer` (borrowed; copied): lookups are answered from it until
 * expires_ms, and from refresh_ms on (refresh_ms <= expires_ms) the next lookup asks for a
 * background fetch. Gives the waiters to answer (linked through next, in the order they came;
 * NULL: none), and in *ret_previous_kind (when not NULL) the kind of the answer it replaces, -1
 * when there was none (so a caller can say something once per change, not once per fetch).
 * Returns 0, or -ENOMEM when the answer could not be kept: the waiters still come back and the
 * next lookup fetches again.
 */
int tokencache_store(struct tokencache *cache, const char *key,
                     const struct tokencache_answer *answer, int64_t expires_ms, int64_t refresh_ms,
                     struct tokencache_waiter **ret_waiters, int *ret_previous_kind);

/* Ends the fetch of key without an answer: gives the waiters back. An earlier answer stays in
 * use until its own expiry (a failed re-validation costs nothing while it lasts). */
void tokencache_failed(struct tokencache *cache, const char *key,
                       struct tokencache_waiter **ret_waiters);

/* Forgets key's answer when it still holds `value` (borrowed): the credential was refused (a
 * 401), so the next lookup fetches a new one. */
void tokencache_invalidate(struct tokencache *cache, const char *key, const char *value);

/* Keys held, for tests and metrics. */
size_t tokencache_count(const struct tokencache *cache);

#endif
