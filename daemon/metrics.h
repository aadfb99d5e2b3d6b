/*
 * metrics.h - the Prometheus registry: counters, histograms and gauges of the
 * connector, and their text exposition (format 0.0.4).
 *
 * Names and labels of the flyte_connector_* families follow flytekit's
 * connector server (flytekit/extend/backend/connector_service.py), so
 * dashboards built for the Python connector keep working; fdc_* are ours.
 *
 * Memory is bounded: every label takes its value from a fixed table (task
 * types, operations, gRPC codes, endpoints, token sources), or, for HTTP statuses, from a
 * small first-come table; values outside them are counted as "other".
 *
 * Threads: every function may be called from any thread (the loop thread,
 * gRPC workers, the /metrics server thread) except metrics_new(),
 * metrics_free() and metrics_calls_in_flight_reader(), which belong to main.
 * Every update function accepts a NULL registry and then does nothing, so
 * modules can run without metrics (tests).
 */
#ifndef FDC_METRICS_H
#define FDC_METRICS_H

#include <grpc/status.h>
#include <stddef.h>

struct metrics;

/* Reads a gauge's current value at render time; must not block. */
typedef long (*metrics_read_fn)(const void *ctx);

/*
 * Gives an empty registry (free with metrics_free()), NULL on OOM. `version`
 * is borrowed and copied; it becomes fdc_build_info{version="..."}.
 */
struct metrics *metrics_new(const char *version);

/* Takes the registry; NULL-safe; returns NULL. No other thread may use it any more. */
struct metrics *metrics_free(struct metrics *metrics);

/*
 * One finished gRPC call of the agent service. `task_type` ("spark",
 * "databricks"; anything else, NULL or "" counts as "other") and `operation`
 * ("create", "get", "delete") are borrowed. code == GRPC_STATUS_OK counts in
 * flyte_connector_requests_success_total, any other code in
 * flyte_connector_requests_failure_total{error_code="<STATUS_NAME>"}; the
 * latency goes to flyte_connector_request_latency_seconds either way.
 */
void metrics_request_done(struct metrics *metrics, const char *task_type, const char *operation,
                          grpc_status_code code, double seconds);

/* Size of a CreateTask's inputs (flyte_connector_input_literal_bytes). */
void metrics_input_bytes(struct metrics *metrics, const char *task_type, size_t bytes);

/*
 * One finished HTTP attempt to Databricks. `endpoint` is "runs/submit",
 * "runs/get" or "runs/cancel" (borrowed; others count as "other").
 * `http_status` 0 means no HTTP answer (transport error, status "error").
 * `new_connections` is CURLINFO_NUM_CONNECTS of the transfer.
 */
void metrics_databricks_request(struct metrics *metrics, const char *endpoint, long http_status,
                                double seconds, long new_connections);

/* One retry scheduled for a Databricks request. */
void metrics_databricks_retry(struct metrics *metrics, const char *endpoint);

/*
 * One call's Databricks token came from `source` (borrowed): "connection_secret",
 * "namespace_secret", "resource_meta", "oauth", "default", or "none" when no place had one;
 * anything else counts as "other" (fdc_token_source_total{source}).
 */
void metrics_token_source(struct metrics *metrics, const char *source);

/* A GetTask answered with the run's last known phase (Databricks trouble). Any thread. */
void metrics_status_not_refreshed(struct metrics *metrics);

/* fdc_grpc_calls_in_flight, when no reader is set. */
void metrics_calls_in_flight_set(struct metrics *metrics, long value);
void metrics_calls_in_flight_add(struct metrics *metrics, long delta);

/*
 * Makes fdc_grpc_calls_in_flight call read(ctx) at each render instead of
 * using the stored value (read NULL: back to the stored value). Main thread,
 * before the registry is rendered from other threads; ctx is borrowed until
 * metrics_free() or the next call.
 */
void metrics_calls_in_flight_reader(struct metrics *metrics, metrics_read_fn read, const void *ctx);

/*
 * Gives the text exposition of every family (free()), NULL on OOM. Families
 * always show their HELP and TYPE lines; a labelled series shows once it has
 * been counted at least once.
 */
char *metrics_render(struct metrics *metrics);

/* The content type of metrics_render()'s text, for the HTTP answer. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
