/* resmeta: the resource_meta bytes propeller stores after CreateTask and hands back on
 * GetTask/DeleteTask.
 *
 * Format (flytekit's keys, so tasks started by flytekit's Python connector keep working after
 * a switch): UTF-8 JSON {"databricks_instance": "host[:port]", "run_id": "123"}, plus
 * "namespace" and "token_secret" (names, never a token) when a per-namespace Kubernetes Secret
 * gave CreateTask its token, so that GetTask and DeleteTask, which carry no namespace in Flyte 1,
 * use the same Secret. Decoding also accepts run_id as a JSON number, and flytekit's
 * "auth_token" (flytekit >= 1.16.15 stores the token the run was started with): it is read so
 * that the run's later calls can use it, and never written. Pure: no I/O, no globals; any
 * thread. */
#ifndef FDC_RESMETA_H
#define FDC_RESMETA_H

#include <stddef.h>
#include <stdint.h>

/* Largest resource_meta accepted, in bytes. */
#define RESMETA_MAX_LEN 65536
/* run_id: 1 to this many decimal digits, a value from 1 to INT64_MAX (Databricks' run ids are
 * positive int64s); anything else is refused before it reaches a URL or the network. */
#define RESMETA_RUN_ID_MAX_DIGITS 19
/* Longest host name (DNS limit), port not counted. */
#define RESMETA_HOST_MAX 253

struct resmeta {
    char *instance;     /* owns; normalized lowercase host[:port] */
    char *run_id;       /* owns; 1..INT64_MAX in decimal without leading zeros, safe in a URL */
    char *namespace;    /* owns; a DNS-1123 label, or NULL */
    char *token_secret; /* owns; a DNS-1123 subdomain, or NULL (set only with namespace) */
    char *auth_token;   /* owns, SECRET: flytekit's token (visible ASCII), or NULL; never
                         * encoded, wiped by resmeta_done() */
};

/* Parses data[0..len) (borrows). On success fills *ret, whose strings the caller owns (free
 * with resmeta_done()). Returns 0, -EINVAL with *reterr_msg naming the field ("malformed
 * resource_meta: ..." for bytes that are not a JSON object), or -ENOMEM. reterr_msg may be
 * NULL. A JSON null counts as an absent key for the optional ones. Messages never contain the
 * auth_token. */
int resmeta_decode(const uint8_t *data, size_t len, struct resmeta *ret, char **reterr_msg);

/* Gives *ret_data, a malloc'ed (free()) JSON buffer of *ret_len bytes, NUL-terminated one byte
 * past *ret_len, from meta (borrows): instance, normalized as by resmeta_normalize_instance();
 * run_id, 1..INT64_MAX in decimal without leading zeros; namespace and token_secret when
 * namespace is set. auth_token is never written. Returns 0, -EINVAL for a bad value, -ENOMEM. */
int resmeta_encode(const struct resmeta *meta, uint8_t **ret_data, size_t *ret_len);

/* Frees m's strings and NULLs them; NULL-safe and idempotent. */
void resmeta_done(struct resmeta *m);

/* The one rule for a Databricks instance, shared by config, request handling and decoding:
 * host[:port], host of [A-Za-z0-9.-] in dot-separated labels of 1-63 characters not starting or
 * ending with '-', at most 253 characters; port 1-65535. A leading "https://" and one trailing
 * "/" are stripped. Gives *ret_instance (free()), lowercase, port without leading zeros.
 * Returns 0, -EINVAL with *reterr_msg quoting the value (cut to 64 characters, without a field
 * name: callers prefix theirs), -ENOMEM. reterr_msg may be NULL. */
int resmeta_normalize_instance(const char *in, char **ret_instance, char **reterr_msg);

#endif
