/*
 * client.h - a small gRPC client on the gRPC core C API, for the command-line tools: unary
 * calls and server-streaming ones.
 *
 * One channel to HOST:PORT, plaintext or TLS (server verified against a given CA bundle,
 * optionally with a client certificate), and one completion queue. Each client_call() sends one
 * request and waits for its answer or its deadline; client_stream() reads a stream's messages
 * one by one. The wire bytes go in and come out as they are, so callers pack and unpack their
 * own protobuf-c messages.
 *
 * Threads: a client belongs to the thread that made it; calls are sequential. client_new()
 * calls grpc_init() and client_free() grpc_shutdown(): a process that blocks signals for
 * sigwait() must do so before client_new(), so gRPC's threads inherit the mask.
 */
#ifndef FDC_CLIENT_H
#define FDC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

struct client;

struct client_options {
    const char *address;  /* borrows for the call to client_new(): "HOST:PORT" */
    const char *ca_pem;   /* borrows: PEM CA bundle; NULL for plaintext */
    const char *cert_pem; /* borrows: PEM client certificate chain; NULL for none */
    const char *key_pem;  /* borrows: PEM private key of cert_pem; set iff cert_pem is */
    int64_t timeout_ms;   /* deadline of each call, > 0 */
    bool quiet;           /* silence gRPC core's own log lines (process-wide setting) */
};

struct client_reply {
    grpc_status_code status; /* GRPC_STATUS_OK or the call's failure */
    char *details;           /* owns; the status message, "" when none; never NULL */
    uint8_t *data;           /* owns; the response message when status is OK, else NULL */
    size_t len;              /* bytes in data */
};

/* Gives *ret_client (free with client_free()). Connecting happens on the first call, so a
 * daemon that is down shows as UNAVAILABLE there, not here. Returns 0, -EINVAL with
 * *reterr_msg for options gRPC refuses, -ENOMEM. *reterr_msg (gives; free()) only on failure. */
int client_new(const struct client_options *options, struct client **ret_client, char **reterr_msg);

/* Calls method ("/package.Service/Method"; borrows) with request[0..request_len) (borrows) and
 * waits for the answer or the deadline. Returns 0 with *ret_reply filled (free with
 * client_reply_done()) whatever the gRPC status, or -EIO/-ENOMEM with *reterr_msg when the call
 * could not even start. */
int client_call(struct client *client, const char *method, const uint8_t *request,
                size_t request_len, struct client_reply *ret_reply, char **reterr_msg);

/* Takes one message of a server-streaming answer (data borrowed for the call). Returns 0 to
 * read on, or non-zero to stop: the call is then cancelled. */
typedef int (*client_message_fn)(void *user, const uint8_t *data, size_t len);

/* Calls a server-streaming method ("/package.Service/Method"; borrows) with request (borrows):
 * hands each message of the answer to on_message as it arrives, then fills *ret_reply with the
 * call's status (free with client_reply_done(); data stays NULL). The deadline bounds the whole
 * stream. Returns 0 whatever the status, or -EIO/-ENOMEM with *reterr_msg when the call could
 * not run. */
int client_stream(struct client *client, const char *method, const uint8_t *request,
                  size_t request_len, client_message_fn on_message, void *user,
                  struct client_reply *ret_reply, char **reterr_msg);

/* Frees r's buffers and NULLs them; NULL-safe and idempotent. */
void client_reply_done(struct client_reply *r);

/* Closes the channel, shuts gRPC down. Accepts NULL; returns NULL. */
struct client *client_free(struct client *client);

/* Static name of a status code ("UNAVAILABLE"); "UNKNOWN_STATUS" outside the known range. */
const char *client_status_name(grpc_status_code code);

#endif
