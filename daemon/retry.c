/*
 * retry.c - retry decisions for the Databricks client: which transport
 * failures retry, the backoff, and whether an attempt still fits before
 * the deadline.
 *
 * Backoff is exponential with full jitter (the whole interval is drawn at
 * random, so clients that failed together do not retry together), and a
 * server's Retry-After wins when it asks for longer.
 */
#include "retry.h"

#include <stddef.h>

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 4000

/* Transport failures that are worth another attempt: the request may not
 * have reached Databricks, or its answer was lost on the way. TLS and
 * certificate failures are not here: retrying cannot fix them. */
static const struct {
    enum http_failure failure;
    bool never_sent; /* proves the request did not reach the server */
} retryable[] = {
    {HTTP_FAILURE_RESOLVE, true},  {HTTP_FAILURE_CONNECT, true}, {HTTP_FAILURE_TIMEOUT, false},
    {HTTP_FAILURE_SEND, false},    {HTTP_FAILURE_RECV, false},   {HTTP_FAILURE_GOT_NOTHING, false},
    {HTTP_FAILURE_PARTIAL, false}, {HTTP_FAILURE_HTTP2, false},
};

/* TLS failures, with what an operator should check: curl's own text
 * ("SSL certificate problem: unable to get local issuer certificate") does
 * not say which setting fixes it. */
static const struct {
    enum http_failure failure;
    const char *hint;
} tls_failures[] = {
    {HTTP_FAILURE_TLS_UNTRUSTED,
     "the workspace's TLS certificate is not trusted: check ca_file and the system CA store"},
    {HTTP_FAILURE_TLS_CA_FILE, "the CA bundle cannot be used: check ca_file"},
    {HTTP_FAILURE_TLS_ISSUER, "the TLS certificate's issuer does not match: check ca_file"},
    {HTTP_FAILURE_TLS_HANDSHAKE, "the TLS handshake failed (a proxy or a non-TLS port?)"},
};

bool retry_attempt_fits(int64_t time_left_ms)
{
    return time_left_ms >= RETRY_MIN_ATTEMPT_MS;
}

int64_t retry_backoff_ms(int attempts, unsigned int random)
{
    int64_t ceiling = BACKOFF_BASE_MS;

    for (int i = 1; i < attempts && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return (int64_t)(random % (unsigned int)(ceiling + 1));
}

int64_t retry_wait_ms(int attempts, long retry_after_s, int64_t time_left_ms, unsigned int random)
{
    int64_t wait = retry_backoff_ms(attempts, random);

    if (retry_after_s > 0 && (int64_t)retry_after_s * 1000 > wait)
        wait = (int64_t)retry_after_s * 1000;
    return retry_attempt_fits(time_left_ms - wait) ? wait : -1;
}

bool retry_transport_failure(enum http_failure failure, bool retry_safe)
{
    for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++)
        if (retryable[i].failure == failure)
            return retry_safe || retryable[i].never_sent;
    return false;
}

const char *retry_tls_hint(enum http_failure failure)
{
    for (size_t i = 0; i < sizeof(tls_failures) / sizeof(tls_failures[0]); i++)
        if (tls_failures[i].failure == failure)
            return tls_failures[i].hint;
    return NULL;
}

/* Answer this long before the caller's deadline at least, and at most. */
#define DEADLINE_MARGIN_MIN_MS 50
#define DEADLINE_MARGIN_MAX_MS 1000

int64_t retry_call_deadline_ms(int64_t now_ms, int64_t call_deadline_ms, int64_t request_timeout_ms)
{
    int64_t margin;

    if (call_deadline_ms == INT64_MAX)
        return now_ms + request_timeout_ms;
    margin = (call_deadline_ms - now_ms) / 10;
    if (margin < DEADLINE_MARGIN_MIN_MS)
        margin = DEADLINE_MARGIN_MIN_MS;
    if (margin > DEADLINE_MARGIN_MAX_MS)
        margin = DEADLINE_MARGIN_MAX_MS;
    return call_deadline_ms - margin;
}
