/*
 * server.h - the gRPC server: listener, completion queue, the threads that
 * serve it and the life cycle of each call, unary or server-streaming.
 *
 * A handler receives the request bytes of one call and must answer it exactly
 * once, with server_call_reply() or server_call_fail(), either before it
 * returns or later from any thread (for instance from a completion callback
 * of the Databricks client). After answering, the call belongs to the server
 * again and the handler must not touch it.
 *
 * A server-streaming call (the client sends one message, the server any
 * number) is answered the same way at its end, with server_call_finish() or
 * server_call_fail(); before that the handler sends its messages one at a
 * time with server_call_send(), each after the previous one was taken.
 */
#ifndef FDC_SERVER_H
#define FDC_SERVER_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct server_call;

/* Runs on the thread serving the queue (a worker, or the one calling
 * server_handle_ready()). `request` is valid until the handler returns. */
typedef void (*server_handler_fn)(void *context, struct server_call *call, const uint8_t *request,
                                  size_t request_len);

struct server_method {
    const char *path; /* "/package.Service/Method" */
    server_handler_fn handler;
    void *context;
    bool unlimited; /* exempt from max_calls_in_flight (health checks must answer under load) */
};

struct server_tls;

/*
 * Creates and starts a server listening on `listen` ("HOST:PORT", port 0
 * picks a free one), over TLS with `tls`'s certificates (borrowed: it must
 * outlive the server; NULL: plaintext), with `workers` threads. `workers` 0 starts none: the
 * caller serves the queue with server_handle_ready() whenever server_poll_fd()
 * polls readable; when gRPC's poller cannot be shared that way
 * (server_poll_fd() gives -1) two worker threads start instead, with a
 * warning. `methods` is copied. Beyond
 * `max_calls_in_flight` calls (0: no limit) a new call of a limited method
 * answers RESOURCE_EXHAUSTED at once instead of queueing without bound.
 * Returns NULL and gives *reterr_msg on failure (port in use, bad address).
 */
struct server *server_new(const char *listen, struct server_tls *tls, int workers,
                          long max_calls_in_flight, const struct server_method *methods,
                          size_t methods_count, char **reterr_msg);

/* The port actually bound. */
int server_port(const struct server *server);

/*
 * With workers 0: a file descriptor that polls readable (POLLIN) when gRPC
 * has I/O to do for the server; -1 when worker threads serve the queue.
 * Borrowed: do not read or close it.
 */
int server_poll_fd(const struct server *server);

/*
 * With workers 0: handles the completions and I/O events that are ready, at
 * most `max` completions, without blocking, running handlers on the calling
 * thread; gives how many completions it handled (`max`: there may be more,
 * call again soon). One thread only. gRPC's own threads can queue a
 * completion without making server_poll_fd() readable, and gRPC keeps up to
 * 100 collected I/O events that it handles one per poll, so the caller must
 * also call this every few milliseconds after activity, and now and then
 * when idle.
 */
int server_handle_ready(struct server *server, int max);

/*
 * First half of shutdown: stops accepting calls, gives calls in flight until
 * `grace_ms` to be answered, then cancels the rest. Whatever serves the queue
 * (the workers, or the thread calling server_handle_ready()) must keep
 * running meanwhile, so that late answers still complete. Main thread only.
 */
void server_shutdown(struct server *server, int64_t grace_ms);

/*
 * Second half: shuts the completion queue down, joins the workers (or, with
 * none, drains the queue on the calling thread) and frees everything. Call
 * after server_shutdown() and after every other thread that may answer
 * calls or call server_handle_ready() has stopped. NULL-safe.
 */
void server_free(struct server *server);

/* Number of calls accepted and not yet finished. Any thread. */
long server_calls_in_flight(const struct server *server);

/* Number of calls answered since start. Any thread. */
long server_calls_served(const struct server *server);

/*
 * How long the longest-running worker has been inside one event, in ms (0
 * when all wait for work, and always 0 with workers 0: then the liveness of
 * the thread calling server_handle_ready() covers it). Handlers never
 * block, so seconds mean a wedged worker. Any thread.
 */
int64_t server_stalled_ms(const struct server *server);

/* Deadline of the call on clock_now_ms()'s scale (INT64_MAX if none). */
int64_t server_call_deadline_ms(const struct server_call *call);

/* Method path of the call, for logs. Borrowed: valid until the call is answered. */
const char *server_call_method(const struct server_call *call);

/* Answers OK with `response` packed. Any thread; exactly once per call. */
void server_call_reply(struct server_call *call, const ProtobufCMessage *response);

/* Answers with a non-OK status and message (copied; bytes that are not UTF-8 become U+FFFD).
 * Any thread; exactly once per call. */
void server_call_fail(struct server_call *call, grpc_status_code code, const char *message);

/*
 * Runs once a message given to server_call_send() has left (ok), or the call
 * is over without it (!ok: the client cancelled, the deadline passed, the
 * server is shutting down); then the handler may send the next message or
 * must end the call (server_call_finish()/server_call_fail()). Runs on the
 * thread serving the queue; must not block.
 */
typedef void (*server_sent_fn)(void *user, struct server_call *call, bool ok);

/*
 * Sends one message of a server-streaming call (packed before this returns;
 * `message` is borrowed for the call), with the initial metadata on the
 * first. At most one message is in flight per call: the next waits for
 * `sent`. Any thread.
 */
void server_call_send(struct server_call *call, const ProtobufCMessage *message,
                      server_sent_fn sent, void *user);

/* Ends a server-streaming call with `code` (OK too) and message (copied; NULL:
 * none), after its last message was sent. Any thread; exactly once per call. */
void server_call_finish(struct server_call *call, grpc_status_code code, const char *message);

#endif
