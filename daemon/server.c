/*
 * server.c - gRPC core server: one listener, one completion queue, and the
 * life cycle of every call, unary or server-streaming.
 *
 * Design. Every call is a `struct server_call` whose address is the tag of
 * the one operation in flight on it (one batch per call at a time). A call
 * is born as a posted request (CALL_WAITING); when gRPC completes that tag
 * the serving thread posts a replacement request, reads the payload and runs
 * the handler (CALL_ACTIVE). The handler answers, before it returns or
 * later from any thread, with one batch (CALL_REPLYING); when that batch
 * completes the call is freed.
 *
 * A server-streaming handler first sends its messages, one batch each
 * (CALL_SENDING; the first also sends the initial metadata); when a batch
 * completes the call is CALL_ACTIVE again and the handler's `sent` callback
 * runs on the serving thread, which sends the next one or ends the call with
 * the status batch. So a stream never has more than one message in flight
 * and nothing waits: a slow client holds its own call, not a thread. A
 * client that cancels, or a deadline that passes, fails the batch in flight
 * (success 0), and the callback ends the call.
 *
 * Who serves the queue. With workers 0 (the default) no thread of ours
 * blocks on it: server_poll_fd() gives out gRPC's epoll set
 * (server_epoll.c), and the thread that polls it beside its own work calls
 * server_handle_ready(), which takes what is ready without blocking; in the
 * daemon that is the loop thread (loop.c says why). When the epoll set
 * cannot be found, FALLBACK_WORKERS worker threads start instead. With
 * workers N, N threads block on the queue, as in gRPC's own examples: one
 * queue shared by as many workers as cores beat a queue per thread, about
 * 130,000 against 119,000 calls/s for a no-op server on these 2-core
 * machines.
 *
 * A server with only registered methods never answers an unknown method (the
 * call waits for a generic request that never comes), so a few generic
 * requests stay posted as a catch-all that answers UNIMPLEMENTED.
 *
 * Threads: main creates and destroys; the serving thread owns calls while a
 * handler runs; any thread may answer a call. Shared fields are atomics.
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "errmsg.h"
#include "log.h"
#include "server_epoll.h"
#include "server_tls.h"

/* Requests kept posted per method: enough to absorb bursts without the
 * memory cost measured for large backlogs (512 was ~30% slower than 8-64). */
#define REQUESTS_PER_METHOD 16
#define GENERIC_REQUESTS 4
/* Worker threads when `workers` 0 was asked for but gRPC's poller cannot be
 * shared: one per core of the machines measured. */
#define FALLBACK_WORKERS 2

enum call_state {
    CALL_WAITING,  /* request posted, nothing received yet */
    CALL_ACTIVE,   /* received; its handler owns it until it answers */
    CALL_SENDING,  /* one message of a stream in flight; then CALL_ACTIVE again */
    CALL_REPLYING, /* answer batch in flight */
};

struct method_slot {
    struct server_method method;
    void *registration; /* from grpc_server_register_method; NULL for the catch-all */
};

struct server_call {
    enum call_state state;
    struct server *server;
    const struct method_slot *slot; /* NULL: generic catch-all */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_call_details details; /* generic calls only */
    grpc_metadata_array request_metadata;
    grpc_byte_buffer *request_payload;
    grpc_byte_buffer *response_payload;
    int cancelled;
    int64_t deadline_ms;
    char *method_path;          /* generic calls: copy of details.method */
    bool initial_metadata_sent; /* a stream's first message carried it */
    server_sent_fn sent;        /* CALL_SENDING: runs when the batch completes */
    void *sent_user;
};

struct worker {
    pthread_t thread;
    struct server *server;
    /* When the event being handled started (clock_now_ms), 0 while waiting
     * for one. Handlers never block, so a large age means a wedged worker. */
    _Atomic int64_t busy_since_ms;
};

struct server {
    grpc_server *grpc;
    grpc_completion_queue *queue;
    grpc_completion_queue *control_queue; /* shutdown notification only */
    struct method_slot *slots;
    size_t slots_count;
    struct worker *workers;
    int workers_count;
    int port;
    atomic_bool stopping;
    atomic_long in_flight;
    atomic_long calls_served;
    long max_calls_in_flight; /* 0: no limit */
    bool started;             /* grpc_server_start() was called */
    bool shut_down;           /* server_shutdown() was called */
    int poll_fd;              /* gRPC's epoll set when no worker threads run, else -1 */
};

static void call_free(struct server_call *c)
{
    if (!c)
        return;
    if (c->call)
        grpc_call_unref(c->call);
    if (c->request_payload)
        grpc_byte_buffer_destroy(c->request_payload);
    if (c->response_payload)
        grpc_byte_buffer_destroy(c->response_payload);
    grpc_metadata_array_destroy(&c->request_metadata);
    if (!c->slot)
        grpc_call_details_destroy(&c->details);
    free(c->method_path);
    free(c);
}

/* Posts one request for `slot` (NULL: generic). Returns 0 or -ENOMEM/-EIO. */
static int post_request(struct server *s, const struct method_slot *slot)
{
    struct server_call *c = calloc(1, sizeof(*c));
    grpc_call_error err;

    if (!c)
        return -ENOMEM;
    c->state = CALL_WAITING;
    c->server = s;
    c->slot = slot;
    grpc_metadata_array_init(&c->request_metadata);
    if (slot) {
        err = grpc_server_request_registered_call(s->grpc, slot->registration, &c->call,
                                                  &c->deadline, &c->request_metadata,
                                                  &c->request_payload, s->queue, s->queue, c);
    } else {
        grpc_call_details_init(&c->details);
        err = grpc_server_request_call(s->grpc, &c->call, &c->details, &c->request_metadata,
                                       s->queue, s->queue, c);
    }
    if (err != GRPC_CALL_OK) {
        call_free(c);
        return -EIO;
    }
    return 0;
}

static int64_t deadline_to_ms(gpr_timespec deadline)
{
    gpr_timespec now, remaining;

    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
        return INT64_MAX;
    /* gRPC's monotonic clock has its own epoch: convert through "time left". */
    deadline = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
    now = gpr_now(GPR_CLOCK_MONOTONIC);
    remaining = gpr_time_sub(deadline, now);
    return clock_now_ms() + gpr_time_to_millis(remaining);
}

int64_t server_call_deadline_ms(const struct server_call *call)
{
    return call->deadline_ms;
}

const char *server_call_method(const struct server_call *call)
{
    if (call->slot)
        return call->slot->method.path;
    return call->method_path ? call->method_path : "";
}

long server_calls_in_flight(const struct server *server)
{
    return atomic_load(&server->in_flight);
}

long server_calls_served(const struct server *server)
{
    return atomic_load(&server->calls_served);
}

int64_t server_stalled_ms(const struct server *server)
{
    int64_t now = clock_now_ms(), longest = 0;

    for (int i = 0; i < server->workers_count; i++) {
        int64_t since = atomic_load(&server->workers[i].busy_since_ms);
        if (since != 0 && now - since > longest)
            longest = now - since;
    }
    return longest;
}

int server_port(const struct server *server)
{
    return server->port;
}

/* Starts the answer batch. Always includes SEND_INITIAL_METADATA: a
 * status-only batch never reaches the client (it sees DEADLINE_EXCEEDED). */
static void start_reply(struct server_call *c, grpc_status_code code, const char *message,
                        grpc_byte_buffer *payload)
{
    grpc_op ops[4];
    grpc_op *op = ops;
    grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
    grpc_call_error err;

    memset(ops, 0, sizeof(ops));
    c->state = CALL_REPLYING;
    c->response_payload = payload;

    if (!c->initial_metadata_sent) {
        op->op = GRPC_OP_SEND_INITIAL_METADATA;
        op++;
    }
    if (payload) {
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = payload;
        op++;
    }
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = code;
    op->data.send_status_from_server.status_details = &details;
    op++;
    op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op->data.recv_close_on_server.cancelled = &c->cancelled;
    op++;

    err = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), c, NULL);
    grpc_slice_unref(details);
    if (err != GRPC_CALL_OK) {
        /* No completion will come for this tag: finish the call here. */
        log_error("cannot answer call", "method", server_call_method(c), "grpc_error",
                  grpc_call_error_to_string(err));
        atomic_fetch_sub(&c->server->in_flight, 1);
        call_free(c);
    }
}

static grpc_byte_buffer *pack(const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    grpc_slice slice = grpc_slice_malloc(size);
    grpc_byte_buffer *payload;

    protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    payload = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return payload;
}

void server_call_reply(struct server_call *call, const ProtobufCMessage *response)
{
    start_reply(call, GRPC_STATUS_OK, NULL, pack(response));
}

void server_call_fail(struct server_call *call, grpc_status_code code, const char *message)
{
    /* Clients decode the message as a protobuf string (Go refuses invalid UTF-8), and it may
     * quote what a client sent: whatever it holds, it leaves as valid UTF-8. */
    char *valid = errmsg_utf8_sanitize(message);

    start_reply(call, code, valid ? valid : "out of memory", NULL);
    free(valid);
}

void server_call_finish(struct server_call *call, grpc_status_code code, const char *message)
{
    start_reply(call, code, message, NULL);
}

void server_call_send(struct server_call *c, const ProtobufCMessage *message, server_sent_fn sent,
                      void *user)
{
    grpc_op ops[2];
    grpc_op *op = ops;
    grpc_call_error err;

    memset(ops, 0, sizeof(ops));
    c->state = CALL_SENDING;
    c->sent = sent;
    c->sent_user = user;
    c->response_payload = pack(message);
    if (!c->initial_metadata_sent) {
        op->op = GRPC_OP_SEND_INITIAL_METADATA;
        op++;
    }
    op->op = GRPC_OP_SEND_MESSAGE;
    op->data.send_message.send_message = c->response_payload;
    op++;
    err = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), c, NULL);
    if (err != GRPC_CALL_OK) {
        /* No completion will come: the stream is over, and the handler hears it at once. */
        log_error("cannot send a message of a stream", "method", server_call_method(c),
                  "grpc_error", grpc_call_error_to_string(err));
        c->state = CALL_ACTIVE;
        grpc_byte_buffer_destroy(c->response_payload);
        c->response_payload = NULL;
        sent(user, c, false);
        return;
    }
    c->initial_metadata_sent = true;
}

static void dispatch(struct server *s, struct server_call *c)
{
    grpc_byte_buffer_reader reader;
    grpc_slice request;

    c->deadline_ms = deadline_to_ms(c->slot ? c->deadline : c->details.deadline);
    if (!c->slot) {
        char *path = grpc_slice_to_c_string(c->details.method);
        c->method_path = strdup(path ? path : "");
        gpr_free(path);
        char message[512];
        snprintf(message, sizeof(message),
                 "method %s is not implemented by the Databricks connector",
                 c->method_path ? c->method_path : "?");
        server_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, message);
        return;
    }
    if (!c->request_payload || !grpc_byte_buffer_reader_init(&reader, c->request_payload)) {
        server_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request has no message");
        return;
    }
    request = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    c->slot->method.handler(c->slot->method.context, c, GRPC_SLICE_START_PTR(request),
                            GRPC_SLICE_LENGTH(request));
    grpc_slice_unref(request);
    (void)s;
}

static void handle_event(struct server *s, grpc_event ev)
{
    struct server_call *c = ev.tag;

    switch (c->state) {
    case CALL_WAITING:
        if (!ev.success) { /* posted request returned at shutdown */
            call_free(c);
            break;
        }
        if (!atomic_load(&s->stopping) && post_request(s, c->slot) < 0)
            log_error("cannot post a request for new calls", "method",
                      c->slot ? c->slot->method.path : "(generic)");
        c->state = CALL_ACTIVE;
        if (atomic_fetch_add(&s->in_flight, 1) >= s->max_calls_in_flight &&
            s->max_calls_in_flight > 0 && c->slot && !c->slot->method.unlimited) {
            char message[160];
            snprintf(message, sizeof(message),
                     "connector busy: %ld calls in flight (max_calls_in_flight); try again",
                     s->max_calls_in_flight);
            server_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
            break;
        }
        dispatch(s, c);
        break;
    case CALL_SENDING:
        c->state = CALL_ACTIVE;
        grpc_byte_buffer_destroy(c->response_payload);
        c->response_payload = NULL;
        c->sent(c->sent_user, c, ev.success != 0);
        break;
    case CALL_REPLYING:
        atomic_fetch_sub(&s->in_flight, 1);
        atomic_fetch_add(&s->calls_served, 1);
        call_free(c);
        break;
    case CALL_ACTIVE:
        /* No operation is ever started on an active call. */
        log_error("completion for a call with no operation in flight");
        break;
    }
}

int server_handle_ready(struct server *s, int max)
{
    int handled = 0;

    /* Bounded: calls answered right here (health checks, refusals) could
     * otherwise keep the caller's other work, the Databricks transfers,
     * waiting for as long as clients keep sending. */
    while (handled < max) {
        grpc_event ev =
            grpc_completion_queue_next(s->queue, gpr_inf_past(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        handle_event(s, ev);
        handled++;
    }
    return handled;
}

int server_poll_fd(const struct server *server)
{
    return server->poll_fd;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct server *s = w->server;

    for (;;) {
        grpc_event ev;

        atomic_store(&w->busy_since_ms, 0);
        ev = grpc_completion_queue_next(s->queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        atomic_store(&w->busy_since_ms, clock_now_ms());
        handle_event(s, ev);
    }
    return NULL;
}

/*
 * gRPC says only that no address could be added. Binding the address
 * ourselves tells why (in use, not local, malformed) so the start-up error
 * names the cause.
 */
static void explain_listen_failure(const char *listen, char *message, size_t size)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *addresses = NULL;
    int error = 0, fd, rc;
    size_t host_len;

    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(message, size, "cannot listen on %s: malformed address (HOST:PORT)", listen);
        return;
    }
    host_len = (size_t)(colon - listen);
    memcpy(host, listen, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &addresses);
    if (rc != 0) {
        snprintf(message, size, "cannot listen on %s: %s", listen, gai_strerror(rc));
        return;
    }
    fd = socket(addresses->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, addresses->ai_addr, addresses->ai_addrlen) < 0)
        error = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(addresses);
    snprintf(message, size, "cannot listen on %s: %s", listen,
             error ? strerror(error) : "gRPC refused the address");
}

/*
 * Creates the gRPC server with its queues and methods, listening on
 * `listen`; not started. Returns 0, or -1 with `message` filled; what was
 * made stays in `s` for server_free().
 */
static int create_grpc(struct server *s, const char *listen, struct server_tls *tls,
                       const struct server_method *methods, size_t methods_count, char *message,
                       size_t size)
{
    grpc_server_credentials *credentials;
    /* gRPC sets SO_REUSEPORT by default, which would let a second daemon
     * bind a port already in use without an error. */
    grpc_arg args[] = {{
        .type = GRPC_ARG_INTEGER,
        .key = (char *)GRPC_ARG_ALLOW_REUSEPORT,
        .value.integer = 0,
    }};
    grpc_channel_args channel_args = {.num_args = 1, .args = args};

    s->grpc = grpc_server_create(&channel_args, NULL);
    s->queue = grpc_completion_queue_create_for_next(NULL);
    s->control_queue = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->grpc, s->queue, NULL);
    grpc_server_register_completion_queue(s->grpc, s->control_queue, NULL);

    for (size_t i = 0; i < methods_count; i++) {
        s->slots[i].method = methods[i];
        s->slots[i].registration = grpc_server_register_method(
            s->grpc, methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->slots[i].registration) {
            snprintf(message, size, "cannot register method %s", methods[i].path);
            return -1;
        }
    }
    s->slots_count = methods_count;

    credentials = tls ? server_tls_credentials(tls) : grpc_insecure_server_credentials_create();
    if (!credentials) {
        snprintf(message, size, "gRPC refused the TLS credentials for %s", listen);
        return -1;
    }
    s->port = grpc_server_add_http2_port(s->grpc, listen, credentials);
    grpc_server_credentials_release(credentials);
    if (s->port <= 0) {
        explain_listen_failure(listen, message, size);
        return -1;
    }
    return 0;
}

/* Keeps requests posted for every method and for the catch-all. */
static int post_requests(struct server *s)
{
    for (size_t i = 0; i < s->slots_count; i++)
        for (int k = 0; k < REQUESTS_PER_METHOD; k++)
            if (post_request(s, &s->slots[i]) < 0)
                return -ENOMEM;
    for (int k = 0; k < GENERIC_REQUESTS; k++)
        if (post_request(s, NULL) < 0)
            return -ENOMEM;
    return 0;
}

/*
 * Decides who serves the queue: with `workers` 0 the caller, through
 * server_poll_fd(), when gRPC's epoll set is found, else FALLBACK_WORKERS
 * threads; otherwise `workers` threads. Returns 0, or -1 with `message`.
 */
static int start_serving(struct server *s, int workers, char *message, size_t size)
{
    if (workers == 0) {
        char count[16];

        s->poll_fd = server_epoll_find(s->port);
        if (s->poll_fd >= 0)
            return 0;
        workers = FALLBACK_WORKERS;
        snprintf(count, sizeof(count), "%d", workers);
        log_warning("gRPC's poller cannot be shared with the Databricks loop (its epoll set "
                    "was not found, or another one watches the same port); serving with "
                    "worker threads",
                    "workers", count);
    }
    for (; s->workers_count < workers; s->workers_count++) {
        struct worker *w = &s->workers[s->workers_count];
        w->server = s;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(message, size, "cannot start gRPC worker thread");
            return -1;
        }
        pthread_setname_np(w->thread, "fdc-worker");
    }
    return 0;
}

struct server *server_new(const char *listen, struct server_tls *tls, int workers,
                          long max_calls_in_flight, const struct server_method *methods,
                          size_t methods_count, char **reterr_msg)
{
    struct server *s = calloc(1, sizeof(*s));
    char message[512] = "out of memory creating the gRPC server";

    if (!s)
        goto fail;
    s->max_calls_in_flight = max_calls_in_flight;
    s->poll_fd = -1;
    s->slots = calloc(methods_count, sizeof(*s->slots));
    /* With workers 0 the fall-back may start threads after all. */
    s->workers = calloc((size_t)(workers > 0 ? workers : FALLBACK_WORKERS), sizeof(*s->workers));
    if (!s->slots || !s->workers)
        goto fail;
    if (create_grpc(s, listen, tls, methods, methods_count, message, sizeof(message)) < 0)
        goto fail;
    grpc_server_start(s->grpc);
    s->started = true;
    if (post_requests(s) < 0) {
        snprintf(message, sizeof(message), "out of memory posting gRPC requests");
        goto fail;
    }
    if (start_serving(s, workers, message, sizeof(message)) < 0)
        goto fail;
    return s;
fail:
    server_free(s);
    *reterr_msg = strdup(message);
    return NULL;
}

void server_shutdown(struct server *s, int64_t grace_ms)
{
    static int shutdown_tag;
    grpc_event ev;

    if (!s || s->shut_down)
        return;
    s->shut_down = true;
    atomic_store(&s->stopping, true);
    grpc_server_shutdown_and_notify(s->grpc, s->control_queue, &shutdown_tag);
    /* The notification fires once every call has finished: wait up to the
     * grace period for in-flight calls, then cancel what is left. */
    ev = grpc_completion_queue_next(
        s->control_queue,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(grace_ms, GPR_TIMESPAN)),
        NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        char count[32];
        snprintf(count, sizeof(count), "%ld", atomic_load(&s->in_flight));
        log_warning("grace period over, cancelling calls still in flight", "calls", count);
        grpc_server_cancel_all_calls(s->grpc);
        grpc_completion_queue_next(s->control_queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
}

/* Stops a server that never started: no call can be in flight. */
static void stop_unstarted(struct server *s)
{
    grpc_server_shutdown_and_notify(s->grpc, s->control_queue, NULL);
    grpc_completion_queue_next(s->control_queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

/* With no workers (the loop served the queue and has stopped, or start-up
 * failed before any ran): takes what is left on the queue after its
 * shutdown. Posted requests come back with success 0; answers started last
 * complete. */
static void drain_after_shutdown(struct server *s)
{
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(s->queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        struct server_call *c = ev.tag;

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (c->state == CALL_WAITING && ev.success) {
            /* A call that arrived as everything stopped: no handler may run
             * now (what it would call on has been freed). */
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                         "connector shutting down", NULL);
            call_free(c);
            continue;
        }
        handle_event(s, ev);
    }
}

static void destroy_queue(grpc_completion_queue *queue)
{
    grpc_completion_queue_shutdown(queue);
    while (grpc_completion_queue_next(queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(queue);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->grpc) {
        if (s->started)
            server_shutdown(s, 0);
        else
            stop_unstarted(s);
        /* Workers drain until the queue reports shutdown; posted requests
         * come back with success 0 and are freed there. */
        grpc_completion_queue_shutdown(s->queue);
        for (int i = 0; i < s->workers_count; i++)
            pthread_join(s->workers[i].thread, NULL);
        if (s->workers_count == 0)
            drain_after_shutdown(s);
        grpc_server_destroy(s->grpc);
        grpc_completion_queue_destroy(s->queue);
        destroy_queue(s->control_queue);
    }
    free(s->slots);
    free(s->workers);
    free(s);
}
