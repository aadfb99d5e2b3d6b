/*
 * metrics_http.c - serves GET /metrics from a metrics registry with
 * libmicrohttpd on its internal polling thread.
 *
 * We bind the listening socket ourselves and hand it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): that gives a precise errno for a taken or
 * forbidden address, and getsockname() tells the port picked for port 0.
 * Scrapes are few and small, so connections are capped and time out quickly;
 * the polling thread renders the registry, which takes the registry's locks
 * only briefly.
 */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"

#define METRICS_PATH "/metrics"
#define MAX_CONNECTIONS 32
#define CONNECTION_TIMEOUT_S 10
#define LISTEN_BACKLOG 64

struct metrics_http {
    struct MHD_Daemon *daemon;
    struct metrics *metrics; /* borrowed */
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
    server->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                                      on_request, server, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
                                      MHD_OPTION_CONNECTION_TIMEOUT,
                                      (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
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
    *ret_server = server;
    *ret_port = bound;
    server = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(server);
    free(host);
    free(port);
    free(detail);
    return r;
}

struct metrics_http *metrics_http_stop(struct metrics_http *server)
{
    if (!server)
        return NULL;
    MHD_stop_daemon(server->daemon);
    free(server);
    return NULL;
}
