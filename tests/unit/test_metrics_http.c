/* Unit tests for metrics_http.c: a real server on 127.0.0.1 port 0, spoken to over a plain TCP
 * socket: GET /metrics (status, content type, body), HEAD, 404 for other paths, 405 with Allow
 * for other methods, bad listen addresses, an address already in use, and IPv6 brackets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "metrics_http.h"

/* Sends `request` to 127.0.0.1:port (or ::1) and gives everything read until close (free()). */
static char *http_exchange(int family, int port, const char *request)
{
    struct sockaddr_storage addr = {0};
    socklen_t len;
    struct timeval timeout = {.tv_sec = 5};
    size_t used = 0, cap = 65536;
    char *answer = malloc(cap);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ssize_t n;

    assert_non_null(answer);
    assert_true(fd >= 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    while ((n = read(fd, answer + used, cap - used - 1)) > 0) {
        used += (size_t)n;
        if (used + 1 == cap) {
            cap *= 2;
            answer = realloc(answer, cap);
            assert_non_null(answer);
        }
    }
    answer[used] = '\0';
    close(fd);
    return answer;
}

struct fixture {
    struct metrics *metrics;
    struct metrics_http *server;
    int port;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char *error = NULL;

    assert_non_null(f);
    f->metrics = metrics_new("9.9.9");
    assert_non_null(f->metrics);
    metrics_request_done(f->metrics, "spark", "create", GRPC_STATUS_OK, 0.5);
    assert_int_equal(metrics_http_start(f->metrics, "127.0.0.1:0", &f->server, &f->port, &error),
                     0);
    assert_null(error);
    assert_true(f->port > 0 && f->port < 65536);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_null(metrics_http_stop(f->server));
    metrics_free(f->metrics);
    free(f);
    return 0;
}

static void test_get_metrics(void **state)
{
    struct fixture *f = *state;
    char *answer = http_exchange(AF_INET, f->port,
                                 "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const char *body = strstr(answer, "\r\n\r\n");

    assert_true(strncmp(answer, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(
        strstr(answer, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(body);
    assert_non_null(strstr(body, "\nfdc_build_info{version=\"9.9.9\"} 1\n"));
    assert_non_null(strstr(
        body,
        "\nflyte_connector_requests_success_total{task_type=\"spark\",operation=\"create\"} 1\n"));
    free(answer);

    /* Each scrape renders afresh. */
    metrics_request_done(f->metrics, "spark", "create", GRPC_STATUS_OK, 0.5);
    answer = http_exchange(AF_INET, f->port,
                           "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(
        answer,
        "\nflyte_connector_requests_success_total{task_type=\"spark\",operation=\"create\"} 2\n"));
    free(answer);
}

static void test_head_has_no_body(void **state)
{
    struct fixture *f = *state;
    char *answer = http_exchange(AF_INET, f->port,
                                 "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const char *end = strstr(answer, "\r\n\r\n");

    assert_true(strncmp(answer, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(end);
    assert_string_equal(end, "\r\n\r\n");
    free(answer);
}

static void test_other_paths_404(void **state)
{
    static const char *const paths[] = {"/", "/metrics/", "/metricsx", "/health", "/metrics?x"};
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char request[200];
        char *answer;

        snprintf(request, sizeof(request),
                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        answer = http_exchange(AF_INET, f->port, request);
        /* MHD strips the query string: "/metrics?x" is /metrics. */
        if (strcmp(paths[i], "/metrics?x") == 0)
            assert_true(strncmp(answer, "HTTP/1.1 200 ", 13) == 0);
        else if (strncmp(answer, "HTTP/1.1 404 ", 13) != 0)
            fail_msg("%s answered: %.40s", paths[i], answer);
        free(answer);
    }
}

static void test_other_methods_405(void **state)
{
    static const char *const requests[] = {
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        char *answer = http_exchange(AF_INET, f->port, requests[i]);
        if (strncmp(answer, "HTTP/1.1 405 ", 13) != 0)
            fail_msg("%.10s answered: %.40s", requests[i], answer);
        assert_non_null(strstr(answer, "\r\nAllow: GET, HEAD\r\n"));
        assert_null(strstr(answer, "fdc_build_info"));
        free(answer);
    }
}

static void test_bad_listen_addresses(void **state)
{
    static const char *const bad[] = {
        "",
        "9090",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:x",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "::1:9090",
        "[::1]9090",
        "[::1",
        "127.0.0.1:90 ",
    };
    struct metrics *m = metrics_new("v");

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metrics_http *server = (struct metrics_http *)m;
        int port = -7;
        char *error = NULL;

        if (metrics_http_start(m, bad[i], &server, &port, &error) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(error);
        assert_non_null(strstr(error, bad[i]));
        assert_ptr_equal(server, (struct metrics_http *)m);
        assert_int_equal(port, -7);
        free(error);
    }
    metrics_free(m);
}

static void test_address_in_use(void **state)
{
    struct fixture *f = *state;
    struct metrics_http *server = NULL;
    char listen[64], *error = NULL;
    int port = 0;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->port);
    assert_int_equal(metrics_http_start(f->metrics, listen, &server, &port, &error), -EADDRINUSE);
    assert_null(server);
    assert_non_null(error);
    assert_non_null(strstr(error, listen));
    free(error);

    assert_true(metrics_http_start(f->metrics, "no-such-host.invalid:0", &server, &port, &error) <
                0);
    assert_non_null(strstr(error, "no-such-host.invalid:0"));
    free(error);
}

static void test_ipv6_brackets(void **state)
{
    struct metrics *m = metrics_new("v6");
    struct metrics_http *server = NULL;
    char *error = NULL, *answer;
    int port = 0, fd;

    (void)state;
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        metrics_free(m);
        skip();
    }
    close(fd);
    if (metrics_http_start(m, "[::1]:0", &server, &port, &error) < 0) {
        /* Containers without an IPv6 loopback. */
        free(error);
        metrics_free(m);
        skip();
    }
    answer = http_exchange(AF_INET6, port,
                           "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(answer, "fdc_build_info{version=\"v6\"} 1"));
    free(answer);
    metrics_http_stop(server);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_has_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_paths_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_405, setup, teardown),
        cmocka_unit_test(test_bad_listen_addresses),
        cmocka_unit_test_setup_teardown(test_address_in_use, setup, teardown),
        cmocka_unit_test(test_ipv6_brackets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
