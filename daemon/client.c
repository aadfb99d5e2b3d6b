/*
 * client.c - gRPC calls for the command-line tools, on the gRPC core C API.
 *
 * A unary call is one grpc_call with one batch (send metadata, message, close; receive
 * metadata, message, status) on the client's completion queue, which then carries exactly one
 * event per call. A server-streaming call runs its batches one after the other (send and
 * receive metadata, then one message per batch, then the status), so the queue never holds
 * more than one event either. The call's deadline bounds the wait, so a daemon that never answers
 * costs --timeout, not a hang. Owns its channel and queue; used by one thread (see client.h).
 */
#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "errmsg.h"
#include "status.h"

#define USER_AGENT "flyte-databricks-connector-cli/" FDC_VERSION

struct client {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    int64_t timeout_ms;
};

/* Indexed by grpc_status_code, whose values are fixed by the gRPC protocol. */
const char *client_status_name(grpc_status_code code)
{
    return status_name(code);
}

/* gRPC core logs connection trouble itself; the tools report the call's status instead. */
static void log_nothing(gpr_log_func_args *args)
{
    (void)args;
}

int client_new(const struct client_options *options, struct client **ret_client, char **reterr_msg)
{
    struct client *c = NULL;
    grpc_channel_credentials *credentials = NULL;
    grpc_ssl_pem_key_cert_pair pair;
    grpc_arg args[1];
    grpc_channel_args channel_args = {.num_args = 1, .args = args};
    bool initialised = false;
    int r;

    if (!options->address || !*options->address || options->timeout_ms <= 0 ||
        (!options->cert_pem != !options->key_pem)) {
        r = errmsg_set(reterr_msg, -EINVAL, "invalid client options");
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        r = errmsg_set(reterr_msg, -ENOMEM, "out of memory");
        goto out;
    }
    c->timeout_ms = options->timeout_ms;
    if (options->quiet)
        gpr_set_log_function(log_nothing);
    grpc_init();
    initialised = true;

    if (options->ca_pem) {
        pair.private_key = options->key_pem;
        pair.cert_chain = options->cert_pem;
        credentials = grpc_ssl_credentials_create(options->ca_pem, options->cert_pem ? &pair : NULL,
                                                  NULL, NULL);
    } else {
        credentials = grpc_insecure_credentials_create();
    }
    if (!credentials) {
        r = errmsg_set(reterr_msg, -EINVAL, "cannot set up %s credentials",
                       options->ca_pem ? "TLS" : "plaintext");
        goto out;
    }
    args[0].type = GRPC_ARG_STRING;
    args[0].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[0].value.string = (char *)USER_AGENT;
    c->channel = grpc_channel_create(options->address, credentials, &channel_args);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (!c->channel || !c->cq) {
        r = errmsg_set(reterr_msg, -EINVAL, "cannot create a channel to '%s'", options->address);
        goto out;
    }
    *ret_client = c;
    c = NULL;
    initialised = false;
    r = 0;
out:
    if (credentials)
        grpc_channel_credentials_release(credentials);
    if (c) {
        if (c->channel)
            grpc_channel_destroy(c->channel);
        if (c->cq)
            grpc_completion_queue_destroy(c->cq);
        free(c);
    }
    if (initialised)
        grpc_shutdown();
    return r;
}

/* Copies a byte buffer into one malloc'ed block (NULL on OOM). */
static uint8_t *buffer_copy(grpc_byte_buffer *bb, size_t *ret_len)
{
    grpc_byte_buffer_reader reader;
    grpc_slice slice;
    uint8_t *data;
    size_t len;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    len = GRPC_SLICE_LENGTH(slice);
    /* One spare byte: an empty message is a valid answer and must not look like OOM. */
    data = malloc(len + 1);
    if (data) {
        memcpy(data, GRPC_SLICE_START_PTR(slice), len);
        *ret_len = len;
    }
    grpc_slice_unref(slice);
    return data;
}

/* One call's gRPC resources, from rpc_open() to rpc_close(). */
struct rpc {
    struct client *client;
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
};

/* Creates the call with the client's deadline and the request as its message. Returns 0, or
 * -EIO with *reterr_msg; rpc_close() either way. */
static int rpc_open(struct client *client, struct rpc *rpc, const char *method,
                    const uint8_t *request, size_t request_len, char **reterr_msg)
{
    grpc_slice request_slice;

    *rpc = (struct rpc){.client = client, .status = GRPC_STATUS_UNKNOWN};
    rpc->details = grpc_empty_slice();
    grpc_metadata_array_init(&rpc->initial);
    grpc_metadata_array_init(&rpc->trailing);
    rpc->call = grpc_channel_create_call(
        client->channel, NULL, GRPC_PROPAGATE_DEFAULTS, client->cq,
        grpc_slice_from_static_string(method), NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(client->timeout_ms, GPR_TIMESPAN)),
        NULL);
    if (!rpc->call)
        return errmsg_set(reterr_msg, -EIO, "cannot create a call to %s", method);
    request_slice = grpc_slice_from_copied_buffer((const char *)request, request_len);
    rpc->send = grpc_raw_byte_buffer_create(&request_slice, 1);
    grpc_slice_unref(request_slice);
    return 0;
}

static void rpc_close(struct rpc *rpc)
{
    if (rpc->call)
        grpc_call_unref(rpc->call);
    if (rpc->send)
        grpc_byte_buffer_destroy(rpc->send);
    if (rpc->recv)
        grpc_byte_buffer_destroy(rpc->recv);
    grpc_slice_unref(rpc->details);
    grpc_metadata_array_destroy(&rpc->initial);
    grpc_metadata_array_destroy(&rpc->trailing);
}

/* Starts ops on the call and waits for that batch (the call's deadline ends it, so the wait is
 * bounded; the queue holds no other work). true when it ran. */
static bool rpc_batch(struct rpc *rpc, const grpc_op *ops, size_t n)
{
    grpc_event event;

    if (grpc_call_start_batch(rpc->call, ops, n, rpc->call, NULL) != GRPC_CALL_OK)
        return false;
    do
        event =
            grpc_completion_queue_next(rpc->client->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    while (event.type != GRPC_OP_COMPLETE || event.tag != rpc->call);
    return true;
}

/* The ops that send the request and read the initial metadata, into ops[0..4). */
static size_t rpc_send_ops(struct rpc *rpc, grpc_op *ops)
{
    memset(ops, 0, 4 * sizeof(*ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = rpc->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &rpc->initial;
    return 4;
}

static void rpc_status_op(struct rpc *rpc, grpc_op *op)
{
    memset(op, 0, sizeof(*op));
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &rpc->trailing;
    op->data.recv_status_on_client.status = &rpc->status;
    op->data.recv_status_on_client.status_details = &rpc->details;
}

/* *ret gets the call's status and details. 0 or -ENOMEM with *reterr_msg. */
static int rpc_reply(const struct rpc *rpc, struct client_reply *ret, char **reterr_msg)
{
    *ret = (struct client_reply){.status = rpc->status};
    ret->details =
        strndup((const char *)GRPC_SLICE_START_PTR(rpc->details), GRPC_SLICE_LENGTH(rpc->details));
    return ret->details ? 0 : errmsg_set(reterr_msg, -ENOMEM, "out of memory");
}

int client_call(struct client *client, const char *method, const uint8_t *request,
                size_t request_len, struct client_reply *ret_reply, char **reterr_msg)
{
    struct rpc rpc;
    grpc_op ops[6];
    size_t n;
    struct client_reply reply = {0};
    int r;

    r = rpc_open(client, &rpc, method, request, request_len, reterr_msg);
    if (r < 0)
        goto out;
    n = rpc_send_ops(&rpc, ops);
    memset(&ops[n], 0, sizeof(ops[n]));
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &rpc.recv;
    rpc_status_op(&rpc, &ops[n++]);
    if (!rpc_batch(&rpc, ops, n)) {
        r = errmsg_set(reterr_msg, -EIO, "cannot start a call to %s", method);
        goto out;
    }
    r = rpc_reply(&rpc, &reply, reterr_msg);
    if (r < 0)
        goto out;
    if (rpc.status == GRPC_STATUS_OK && !rpc.recv) {
        reply.status = GRPC_STATUS_INTERNAL;
        free(reply.details);
        reply.details = strdup("the server answered OK without a message");
    } else if (rpc.status == GRPC_STATUS_OK) {
        reply.data = buffer_copy(rpc.recv, &reply.len);
    }
    if (!reply.details || (reply.status == GRPC_STATUS_OK && !reply.data)) {
        r = errmsg_set(reterr_msg, -ENOMEM, "out of memory");
        goto out;
    }
    *ret_reply = reply;
    reply = (struct client_reply){0};
    r = 0;
out:
    client_reply_done(&reply);
    rpc_close(&rpc);
    return r;
}

int client_stream(struct client *client, const char *method, const uint8_t *request,
                  size_t request_len, client_message_fn on_message, void *user,
                  struct client_reply *ret_reply, char **reterr_msg)
{
    struct rpc rpc;
    grpc_op ops[4];
    int r;

    r = rpc_open(client, &rpc, method, request, request_len, reterr_msg);
    if (r < 0)
        goto out;
    if (!rpc_batch(&rpc, ops, rpc_send_ops(&rpc, ops))) {
        r = errmsg_set(reterr_msg, -EIO, "cannot start a call to %s", method);
        goto out;
    }
    /* One message per batch until the stream ends (no message) or the caller stops. */
    for (;;) {
        uint8_t *data;
        size_t len = 0;
        int stop;

        memset(ops, 0, sizeof(ops[0]));
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &rpc.recv;
        if (!rpc_batch(&rpc, ops, 1) || !rpc.recv)
            break;
        data = buffer_copy(rpc.recv, &len);
        grpc_byte_buffer_destroy(rpc.recv);
        rpc.recv = NULL;
        if (!data) {
            r = errmsg_set(reterr_msg, -ENOMEM, "out of memory");
            goto out;
        }
        stop = on_message(user, data, len);
        free(data);
        if (stop) {
            grpc_call_cancel(rpc.call, NULL);
            break;
        }
    }
    rpc_status_op(&rpc, &ops[0]);
    if (!rpc_batch(&rpc, ops, 1)) {
        r = errmsg_set(reterr_msg, -EIO, "cannot read the status of a call to %s", method);
        goto out;
    }
    r = rpc_reply(&rpc, ret_reply, reterr_msg);
out:
    rpc_close(&rpc);
    return r;
}

void client_reply_done(struct client_reply *r)
{
    if (!r)
        return;
    free(r->details);
    r->details = NULL;
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

struct client *client_free(struct client *client)
{
    grpc_event event;

    if (!client)
        return NULL;
    grpc_channel_destroy(client->channel);
    grpc_completion_queue_shutdown(client->cq);
    do
        event = grpc_completion_queue_next(client->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    while (event.type != GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(client->cq);
    free(client);
    grpc_shutdown();
    return NULL;
}
