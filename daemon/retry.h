/*
 * retry.h - when a failed Databricks request is worth another attempt and
 * how long to wait before it (pure: the time left and the random draw are
 * passed in).
 *
 * Threads: any; nothing is kept.
 */
#ifndef FDC_RETRY_H
#define FDC_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* No attempt starts with less time than this before the deadline: it could
 * only time out, and the caller is better served by an answer now. */
#define RETRY_MIN_ATTEMPT_MS 50

/* True when an attempt starting `time_left_ms` before the deadline is
 * worth making. */
bool retry_attempt_fits(int64_t time_left_ms);

/*
 * The backoff after `attempts` attempts (1 or more): full jitter, uniform in
 * [0, min(4 s, 100 ms * 2^(attempts - 1))], drawn from `random` (any value,
 * e.g. from rand_r()).
 */
int64_t retry_backoff_ms(int attempts, unsigned int random);

/*
 * How long to wait before the next attempt after `attempts` attempts: the
 * backoff, or the answer's Retry-After (seconds; 0: none) when longer.
 * Returns -1 when that attempt would not fit in the `time_left_ms` before
 * the request's deadline.
 */
int64_t retry_wait_ms(int attempts, long retry_after_s, int64_t time_left_ms, unsigned int random);

/*
 * True when a request that failed with `failure` (no HTTP answer) is worth
 * another attempt. `retry_safe`: repeating it cannot do harm; otherwise
 * only failures that prove the request never reached the server retry.
 */
bool retry_transport_failure(enum http_failure failure, bool retry_safe);

/*
 * The deadline of the Databricks side of a gRPC call whose own deadline is
 * `call_deadline_ms` (INT64_MAX: none) at `now_ms`: a tenth of the time left
 * earlier, 50 ms to 1 s, so the caller reads our status rather than its own
 * DEADLINE_EXCEEDED; `request_timeout_ms` from now when the caller set none.
 */
int64_t retry_call_deadline_ms(int64_t now_ms, int64_t call_deadline_ms,
                               int64_t request_timeout_ms);

/* What an operator should check after a TLS failure, or NULL for others. */
const char *retry_tls_hint(enum http_failure failure);

#endif
