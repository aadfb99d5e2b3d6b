/* resmeta: the resource_meta bytes propeller stores after CreateTask and hands back on
 * GetTask/DeleteTask.
 *
 * Format (flytekit's keys, so tasks started by flytekit's Python connector keep working after
 * a switch): UTF-8 JSON {"databricks_instance": "host[:port]", "run_id": "123"}. Decoding also
 * accepts flytekit's "auth_token" key (ignored, never copied) and run_id as a JSON number;
 * encoding never writes a token. Pure: no I/O, no globals; any thread. */
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
    char *instance; /* owns; normalized lowercase host[:port] */
    char *run_id;   /* owns; 1..INT64_MAX in decimal without leading zeros, safe in a URL */
};

/* Parses data[0..len) (borrows). On success fills *ret, whose strings the caller owns (free
 * with resmeta_done()). Returns 0, -EINVAL with *reterr_msg naming the field ("malformed
 * resource_meta: ..." for bytes that are not a JSON object), or -ENOMEM. reterr_msg may be
 * NULL. Messages never contain the auth_token. */
int resmeta_decode(const uint8_t *data, size_t len, struct resmeta *ret, char **reterr_msg);

/* Gives *ret_data, a malloc'ed (free()) JSON buffer of *ret_len bytes, NUL-terminated one byte
 * past *ret_len. instance (borrows) is normalized as by resmeta_normalize_instance(); run_id
 * (borrows) must be 1..INT64_MAX in decimal without leading zeros. Returns 0, -EINVAL for a bad
 * argument, -ENOMEM. */
int resmeta_encode(const char *instance, const char *run_id, uint8_t **ret_data, size_t *ret_len);

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
