/*
 * health.h - grpc.health.v1.Health/Check, as Kubernetes' gRPC probes and the
 * Flyte Helm chart's readiness probe call it.
 *
 * Check("") and Check(<each served service>) answer SERVING while the daemon
 * serves and NOT_SERVING once shutdown has begun; any other name is
 * NOT_FOUND, as the health protocol specifies.
 */
#ifndef FDC_HEALTH_H
#define FDC_HEALTH_H

#include <stdbool.h>

#include "server.h"

struct health;

/* `services` is a NULL-terminated list of full service names, copied. */
struct health *health_new(const char *const *services);
struct health *health_free(struct health *health);

/* Any thread. */
void health_set_serving(struct health *health, bool serving);

/* server_handler_fn for /grpc.health.v1.Health/Check; context is the health. */
void health_check(void *context, struct server_call *call, const uint8_t *request,
                  size_t request_len);

#endif
