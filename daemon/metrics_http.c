/*
 * metrics_http.c - serves GET /metrics from a metrics registry with
 * libmicrohttpd on its internal polling thread.
 *
 * We bind the listening socket ourselves and hand it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): that gives a precise errno for a taken or
 * forbidden address, and getsockname() tells the port picked for port 0.
 * The polling thread renders the registry, which takes the registry's locks
 * only briefly.
 *
 * Slow clients. Scrapes are few and small, so connections are capped, in
 * all and per client address, and a client gets HEADER_TIMEOUT_MS from
 * connecting (or from its last answer, on a kept-alive connection) to send
 * a whole request head. libmicrohttpd's own timeout only measures silence,
 * so a client trickling a byte a second would keep its connection for
 * ever: with 40 of them every scrape waited. A reaper thread therefore
 * shuts down (shutdown(2), never close(2)) the socket of a connection whose
 * head is late; libmicrohttpd then sees the end of the stream and closes
 * the connection itself. The table of connections is guarded by one mutex
 * that libmicrohttpd's connection-closed notification also takes, and that
 * notification comes before libmicrohttpd closes the descriptor, so the
 * reaper never touches a descriptor number that was reused.
 */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "metrics.h"

#define METRICS_PATH "/metrics"
#define MAX_CONNECTIONS 64
/* Prometheus keeps one connection per target; a few more leave room for a person with curl. */
#define MAX_CONNECTIONS_PER_ADDRESS 4
/* Silence allowed on a connection (libmicrohttpd's timeout). */
#define CONNECTION_TIMEOUT_S 5
/* From connect (or the last answer) to a complete request head, however it trickles in. */
#define HEADER_TIMEOUT_MS 3000
#define REAPER_INTERVAL_MS 250
#define LISTEN_BACKLOG 64

/* One open connection, for the reaper. */
struct connection {
    bool used;
    int fd;
    /* clock_now_ms() when it began waiting for a request head; 0 while a request is served
     * or once the reaper has shut it down. */
    int64_t waiting_since_ms;
};

struct metrics_http {
    struct MHD_Daemon *daemon;
    struct metrics *metrics; /* borrowed */
    pthread_mutex_t lock;    /* guards connections and stopping */
    pthread_cond_t wake;
    bool stopping;
    bool reaper_started;
    pthread_t reaper;
    struct connection connections[MAX_CONNECTIONS];
};

static const char not_found[] = "not found: only GET /metrics is served\n";
static const char not_allowed[] = "method not allowed: use GET\n";
static const char render_failed[] = "out of memory rendering metrics\n";

static enum MHD_Result answer_text(struct MHD_Connection *connection, unsigned int status,
                                   const char *text)
{
    struct MHD_Response *response;
    enum MHD_Result r;

    response = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        (void)MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    r = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return r;
}

/* The connection's table entry (NULL if it has none). Polling thread. */
static struct connection *connection_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info ? info->socket_context : NULL;
}

/* Marks the connection as serving a request (waiting 0) or waiting for the next head. */
static void set_waiting(struct metrics_http *server, struct MHD_Connection *connection,
                        bool waiting)
{
    struct connection *c = connection_of(connection);

    if (!c)
        return;
    pthread_mutex_lock(&server->lock);
    c->waiting_since_ms = waiting ? clock_now_ms() : 0;
    pthread_mutex_unlock(&server->lock);
}

/* libmicrohttpd: a connection opened or closed. Polling thread. */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct metrics_http *server = cls;
    struct connection *c = *socket_context;

    pthread_mutex_lock(&server->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);

        /* The table holds MAX_CONNECTIONS, the most libmicrohttpd admits. */
        for (size_t i = 0; info && i < MAX_CONNECTIONS && !*socket_context; i++) {
            if (server->connections[i].used)
                continue;
            server->connections[i] = (struct connection){
                .used = true, .fd = info->connect_fd, .waiting_since_ms = clock_now_ms()};
            *socket_context = &server->connections[i];
        }
    } else if (c) {
        *c = (struct connection){0};
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&server->lock);
}

/* libmicrohttpd: a request was answered; a kept-alive connection waits for the next head. */
static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)req_cls;
    (void)code;
    set_waiting(cls, connection, true);
}

/* Shuts down connections whose request head is late; see the top of the file. */
static void *reaper_main(void *arg)
{
    struct metrics_http *server = arg;

    pthread_mutex_lock(&server->lock);
    while (!server->stopping) {
        struct timespec until;
        int64_t now = clock_now_ms();

        for (size_t i = 0; i < MAX_CONNECTIONS; i++) {
            struct connection *c = &server->connections[i];

            if (c->used && c->waiting_since_ms && now - c->waiting_since_ms > HEADER_TIMEOUT_MS) {
                (void)shutdown(c->fd, SHUT_RDWR);
                c->waiting_since_ms = 0;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REAPER_INTERVAL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&server->wake, &server->lock, &until);
    }
    pthread_mutex_unlock(&server->lock);
    return NULL;
}

/* libmicrohttpd's access handler; runs on its polling thread. A request body
 * (non-GET) is never read: the answer is queued on the first call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct metrics_http *server = cls;
    struct MHD_Response *response;
    enum MHD_Result r;
    char *text;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    /* The head is complete: the reaper's clock stops until this request is answered. */
    set_waiting(server, connection, false);
    if (strcmp(url, METRICS_PATH) != 0)
        return answer_text(connection, MHD_HTTP_NOT_FOUND, not_found);
    /* HEAD is GET without the body; libmicrohttpd drops the body itself. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed);

    text = metrics_render(server->metrics);
    if (!text)
        return answer_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, render_failed);
    response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(text);
        return MHD_NO;
    }
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
    r = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return r;
}

/* Splits "HOST:PORT" / "[V6]:PORT" into malloc'ed host ("" = any) and port. */
static int split_listen(const char *listen, char **ret_host, char **ret_port)
{
    const char *colon, *host_start = listen, *host_end;
    char *host = NULL, *port = NULL, *end = NULL;
    long number;

    if (listen[0] == '[') {
        host_start = listen + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            return -EINVAL;
        colon = host_end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return -EINVAL;
        host_end = colon;
    }
    errno = 0;
    number = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || number < 0 || number > 65535)
        return -EINVAL;
    host = strndup(host_start, (size_t)(host_end - host_start));
    port = strdup(colon + 1);
    if (!host || !port) {
        free(host);
        free(port);
        return -ENOMEM;
    }
    *ret_host = host;
    *ret_port = port;
    return 0;
}

/* A bound, listening, non-blocking socket for host:port; -errno on failure. */
static int open_listener(const char *host, const char *port, int *ret_fd, char **reterr_detail)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *list = NULL;
    int fd = -1, r, gai;

    gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &list);
    if (gai != 0) {
        r = -EADDRNOTAVAIL;
        *reterr_detail = strdup(gai_strerror(gai));
        goto out;
    }
    r = -EADDRNOTAVAIL;
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        int one = 1;

        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        /* A restart must not wait for the old connections' TIME_WAIT. */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0) {
            *ret_fd = fd;
            r = 0;
            goto out;
        }
        r = -errno;
        close(fd);
        fd = -1;
    }
    *reterr_detail = strdup(strerror(-r));
out:
    if (list)
        freeaddrinfo(list);
    return r;
}

static int bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

int metrics_http_start(struct metrics *metrics, const char *listen,
                       struct metrics_http **ret_server, int *ret_port, char **reterr_msg)
{
    struct metrics_http *server = NULL;
    char *host = NULL, *port = NULL, *detail = NULL;
    int fd = -1, r, bound;

    r = split_listen(listen ? listen : "", &host, &port);
    if (r < 0) {
        if (asprintf(reterr_msg, "invalid metrics listen address '%s': expected HOST:PORT",
                     listen ? listen : "") < 0)
            *reterr_msg = NULL;
        goto out;
    }
    r = open_listener(host, port, &fd, &detail);
    if (r < 0) {
        if (asprintf(reterr_msg, "cannot listen for /metrics on '%s': %s", listen,
                     detail ? detail : strerror(-r)) < 0)
            *reterr_msg = NULL;
        goto out;
    }
    bound = bound_port(fd);
    server = calloc(1, sizeof(*server));
    if (!server) {
        r = -ENOMEM;
        *reterr_msg = strdup("out of memory starting the /metrics server");
        goto out;
    }
    server->metrics = metrics;
    pthread_mutex_init(&server->lock, NULL);
    {
        pthread_condattr_t attr;

        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&server->wake, &attr);
        pthread_condattr_destroy(&attr);
    }
    server->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, server,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)MAX_CONNECTIONS_PER_ADDRESS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_NOTIFY_CONNECTION, on_connection, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_END);
    if (!server->daemon) {
        /* Whether libmicrohttpd closed the socket on this path differs between
         * versions; leaking one descriptor on a fatal start-up error beats
         * closing a number another thread may own by now. */
        fd = -1;
        r = -EIO;
        if (asprintf(reterr_msg, "cannot start the /metrics server on '%s'", listen) < 0)
            *reterr_msg = NULL;
        goto out;
    }
    fd = -1; /* libmicrohttpd closes it in MHD_stop_daemon() */
    if (pthread_create(&server->reaper, NULL, reaper_main, server) != 0) {
        r = -EAGAIN;
        *reterr_msg = strdup("cannot start the /metrics connection reaper thread");
        goto out;
    }
    server->reaper_started = true;
    pthread_setname_np(server->reaper, "fdc-metrics");
    *ret_server = server;
    *ret_port = bound;
    server = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    metrics_http_stop(server);
    free(host);
    free(port);
    free(detail);
    return r;
}

struct metrics_http *metrics_http_stop(struct metrics_http *server)
{
    if (!server)
        return NULL;
    if (server->reaper_started) {
        pthread_mutex_lock(&server->lock);
        server->stopping = true;
        pthread_cond_signal(&server->wake);
        pthread_mutex_unlock(&server->lock);
        pthread_join(server->reaper, NULL);
    }
    /* After the reaper: no shutdown() can then race libmicrohttpd closing sockets. */
    if (server->daemon)
        MHD_stop_daemon(server->daemon);
    pthread_cond_destroy(&server->wake);
    pthread_mutex_destroy(&server->lock);
    free(server);
    return NULL;
}
