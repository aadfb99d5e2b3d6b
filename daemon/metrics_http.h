/*
 * metrics_http.h - the /metrics HTTP endpoint (libmicrohttpd) that serves a
 * metrics registry to Prometheus.
 *
 * Only GET (and HEAD) /metrics is served: other paths answer 404, other
 * methods on /metrics 405. The server runs on libmicrohttpd's own polling
 * thread, which only renders the registry; it inherits the signal mask of the
 * thread that starts it.
 *
 * Threads: metrics_http_start/metrics_http_stop from main.
 */
#ifndef FDC_METRICS_HTTP_H
#define FDC_METRICS_HTTP_H

struct metrics;
struct metrics_http;

/*
 * Binds `listen` ("HOST:PORT", IPv6 host in brackets, port 0 picks a free
 * one; borrowed) and starts serving `metrics` (borrowed: must outlive the
 * server). Returns 0, gives *ret_server (stop with metrics_http_stop()) and
 * sets *ret_port to the port bound; or -errno and gives *reterr_msg (free())
 * naming the address.
 */
int metrics_http_start(struct metrics *metrics, const char *listen,
                       struct metrics_http **ret_server, int *ret_port, char **reterr_msg);

/* Stops the thread, closes the socket and frees the server (takes; NULL-safe). Returns NULL. */
struct metrics_http *metrics_http_stop(struct metrics_http *server);

#endif
