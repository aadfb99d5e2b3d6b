/*
 * noop_server.c - the benchmark's gRPC limit: a gRPC core server that
 * answers every GetTask with one fixed GetTaskResponse (phase RUNNING)
 * without looking at the request.
 *
 * It has the daemon's shape with the work taken out: a registered method
 * (the payload arrives with the call, one batch answers it), one completion
 * queue shared by N worker threads (2 by default, as many as cores), a few
 * requests kept posted. Whatever the daemon achieves below this server, under
 * the same load in the same run, is the daemon's own cost.
 *
 *   noop_server [--listen HOST:PORT] [--threads N] [--delay-ms N] [--minimal-stack]
 *
 * --delay-ms holds every answer that long (one extra thread answers the
 * held calls in arrival order), standing in for the 50 ms backend: the RSS
 * of this server with 5,000 calls held is what gRPC alone costs.
 * Prints "port N" on stdout once it serves; SIGTERM or SIGINT stop it.
 * Threads: main (set-up, signals, shutdown) and the workers, which own a
 * call from its arrival to the completion of its answer.
 */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flyteidl/admin/agent.pb-c.h"

#define GET_TASK_PATH "/flyteidl.service.AsyncAgentService/GetTask"
#define REQUESTS_POSTED 16
#define MAX_THREADS 16

enum call_state {
    CALL_WAITING,
    CALL_REPLYING,
};

struct noop;

struct noop_call {
    enum call_state state;
    struct noop_call *held_next;
    int64_t due_ms;
    struct noop *noop;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_metadata;
    grpc_byte_buffer *request_payload;
    grpc_byte_buffer *response_payload;
    int cancelled;
};

struct noop {
    grpc_server *server;
    grpc_completion_queue *queue;
    grpc_completion_queue *control_queue;
    void *registration;
    grpc_slice response; /* the packed answer, shared by every call */
    atomic_bool stopping;
    atomic_long answered;
    long delay_ms;
    /* Held calls, oldest first; guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct noop_call *held_head, *held_tail;
    bool held_stop;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void call_free(struct noop_call *c)
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
    free(c);
}

static int post_request(struct noop *n)
{
    struct noop_call *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->noop = n;
    c->state = CALL_WAITING;
    grpc_metadata_array_init(&c->request_metadata);
    if (grpc_server_request_registered_call(n->server, n->registration, &c->call, &c->deadline,
                                            &c->request_metadata, &c->request_payload, n->queue,
                                            n->queue, c) != GRPC_CALL_OK) {
        call_free(c);
        return -EIO;
    }
    return 0;
}

/* One batch answers the call; SEND_INITIAL_METADATA is always there (a
 * status-only batch never reaches the client). */
static void reply(struct noop_call *c)
{
    grpc_op ops[4];

    memset(ops, 0, sizeof(ops));
    c->state = CALL_REPLYING;
    /* The byte buffer takes a reference on the shared slice: no copy. */
    c->response_payload = grpc_raw_byte_buffer_create(&c->noop->response, 1);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->response_payload;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
    if (grpc_call_start_batch(c->call, ops, 4, c, NULL) != GRPC_CALL_OK)
        call_free(c);
}

static void *worker_main(void *arg)
{
    struct noop *n = arg;

    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(n->queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        struct noop_call *c;

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        c = ev.tag;
        if (c->state == CALL_REPLYING) {
            atomic_fetch_add(&n->answered, 1);
            call_free(c);
            continue;
        }
        if (!ev.success) { /* a posted request handed back at shutdown */
            call_free(c);
            continue;
        }
        if (!atomic_load(&n->stopping))
            (void)post_request(n);
        if (n->delay_ms > 0) {
            c->due_ms = now_ms() + n->delay_ms;
            pthread_mutex_lock(&n->lock);
            if (n->held_stop) { /* stopping: the holder may be gone */
                pthread_mutex_unlock(&n->lock);
                reply(c);
                continue;
            }
            if (n->held_tail)
                n->held_tail->held_next = c;
            else
                n->held_head = c;
            n->held_tail = c;
            pthread_cond_signal(&n->cond);
            pthread_mutex_unlock(&n->lock);
            continue;
        }
        reply(c);
    }
    return NULL;
}

/* Answers held calls when due; the delay is constant, so arrival order is
 * due order. */
static void *holder_main(void *arg)
{
    struct noop *n = arg;

    pthread_mutex_lock(&n->lock);
    for (;;) {
        struct noop_call *c = n->held_head;
        int64_t wait;

        if (!c) {
            if (n->held_stop)
                break; /* workers answer directly from now on */
            pthread_cond_wait(&n->cond, &n->lock);
            continue;
        }
        wait = c->due_ms - now_ms();
        if (wait > 0 && !n->held_stop) {
            pthread_mutex_unlock(&n->lock);
            usleep((useconds_t)(wait > 5 ? 5000 : wait * 1000));
            pthread_mutex_lock(&n->lock);
            continue;
        }
        n->held_head = c->held_next;
        if (!n->held_head)
            n->held_tail = NULL;
        pthread_mutex_unlock(&n->lock);
        reply(c);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

static grpc_slice pack_response(void)
{
    Flyteidl__Admin__GetTaskResponse resp = FLYTEIDL__ADMIN__GET_TASK_RESPONSE__INIT;
    Flyteidl__Admin__Resource resource = FLYTEIDL__ADMIN__RESOURCE__INIT;
    Flyteidl__Core__TaskLog log_link = FLYTEIDL__CORE__TASK_LOG__INIT;
    Flyteidl__Core__TaskLog *log_links[1] = {&log_link};
    grpc_slice slice;

    /* About the size of the daemon's answer for a running run. */
    resource.phase = FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING;
    resource.state = FLYTEIDL__ADMIN__STATE__RUNNING;
    resource.message = (char *)"In run";
    log_link.uri = (char *)"https://127.0.0.1/#job/1/run/1";
    log_link.name = (char *)"Databricks Console";
    resource.n_log_links = 1;
    resource.log_links = log_links;
    resp.resource = &resource;
    slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(&resp.base));
    protobuf_c_message_pack(&resp.base, GRPC_SLICE_START_PTR(slice));
    return slice;
}

static void usage_exit(void)
{
    fprintf(stderr, "usage: noop_server [--listen HOST:PORT] [--threads N] [--delay-ms N] "
                    "[--minimal-stack]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    int threads = 2, port, signal_number = 0, exit_code = 1;
    pthread_t workers[MAX_THREADS], holder;
    int started = 0;
    bool holder_started = false, minimal_stack = false;
    struct noop n = {0};
    grpc_server_credentials *creds;
    sigset_t signals;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc)
            n.delay_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--minimal-stack") == 0)
            minimal_stack = true;
        else
            usage_exit();
    }
    if (threads < 1 || threads > MAX_THREADS)
        usage_exit();

    /* gRPC's own threads inherit this mask: signals reach sigwait only. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    pthread_mutex_init(&n.lock, NULL);
    pthread_cond_init(&n.cond, NULL);
    grpc_init();
    n.response = pack_response();
    {
        grpc_arg arg = {
            .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MINIMAL_STACK, .value.integer = 1};
        grpc_channel_args args = {.num_args = 1, .args = &arg};
        n.server = grpc_server_create(minimal_stack ? &args : NULL, NULL);
    }
    n.registration = grpc_server_register_method(n.server, GET_TASK_PATH, NULL,
                                                 GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    n.queue = grpc_completion_queue_create_for_next(NULL);
    n.control_queue = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(n.server, n.queue, NULL);
    grpc_server_register_completion_queue(n.server, n.control_queue, NULL);
    creds = grpc_insecure_server_credentials_create();
    port = grpc_server_add_http2_port(n.server, listen, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        fprintf(stderr, "noop_server: cannot listen on %s\n", listen);
        goto out;
    }
    grpc_server_start(n.server);
    for (int i = 0; i < REQUESTS_POSTED; i++)
        if (post_request(&n) < 0) {
            fprintf(stderr, "noop_server: cannot post requests\n");
            goto out;
        }
    for (; started < threads; started++)
        if (pthread_create(&workers[started], NULL, worker_main, &n) != 0)
            goto out;
    if (n.delay_ms > 0) {
        if (pthread_create(&holder, NULL, holder_main, &n) != 0)
            goto out;
        holder_started = true;
    }
    printf("port %d\n", port);
    fflush(stdout);

    (void)sigwait(&signals, &signal_number);
    exit_code = 0;
out:
    atomic_store(&n.stopping, true);
    /* The holder answers what it holds at once, then leaves. */
    pthread_mutex_lock(&n.lock);
    n.held_stop = true;
    pthread_cond_signal(&n.cond);
    pthread_mutex_unlock(&n.lock);
    if (holder_started)
        pthread_join(holder, NULL);
    grpc_server_shutdown_and_notify(n.server, n.control_queue, NULL);
    grpc_server_cancel_all_calls(n.server);
    grpc_completion_queue_next(n.control_queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_shutdown(n.queue);
    if (started == 0) { /* nobody drains the queue: do it here */
        while (grpc_completion_queue_next(n.queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    }
    for (int i = 0; i < started; i++)
        pthread_join(workers[i], NULL);

    grpc_server_destroy(n.server);
    grpc_completion_queue_shutdown(n.control_queue);
    while (grpc_completion_queue_next(n.control_queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(n.queue);
    grpc_completion_queue_destroy(n.control_queue);
    grpc_slice_unref(n.response);
    grpc_shutdown();
    fprintf(stderr, "noop_server: %ld calls answered\n", atomic_load(&n.answered));
    return exit_code;
}
