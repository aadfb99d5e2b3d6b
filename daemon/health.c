/*
 * health.c - the gRPC health service. The serving flag is an atomic: main
 * flips it at start-up and shutdown while the thread serving gRPC reads it.
 */
#include "health.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

struct health {
    atomic_bool serving;
    char **services; /* NULL-terminated */
};

struct health *health_new(const char *const *services)
{
    struct health *h = calloc(1, sizeof(*h));
    size_t n = 0;

    if (!h)
        return NULL;
    while (services[n])
        n++;
    h->services = calloc(n + 1, sizeof(*h->services));
    if (!h->services)
        return health_free(h);
    for (size_t i = 0; i < n; i++) {
        h->services[i] = strdup(services[i]);
        if (!h->services[i])
            return health_free(h);
    }
    return h;
}

struct health *health_free(struct health *h)
{
    if (!h)
        return NULL;
    for (size_t i = 0; h->services && h->services[i]; i++)
        free(h->services[i]);
    free(h->services);
    free(h);
    return NULL;
}

void health_set_serving(struct health *h, bool serving)
{
    atomic_store(&h->serving, serving);
}

static bool known_service(const struct health *h, const char *name)
{
    if (name[0] == '\0') /* "" means the server as a whole */
        return true;
    for (size_t i = 0; h->services[i]; i++)
        if (strcmp(h->services[i], name) == 0)
            return true;
    return false;
}

void health_check(void *context, struct server_call *call, const uint8_t *request,
                  size_t request_len)
{
    struct health *h = context;
    Grpc__Health__V1__HealthCheckRequest *req;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    req = grpc__health__v1__health_check_request__unpack(NULL, request_len, request);
    if (!req) {
        server_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "request does not decode as grpc.health.v1.HealthCheckRequest");
        return;
    }
    if (!known_service(h, req->service)) {
        server_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service");
        goto out;
    }
    resp.status = atomic_load(&h->serving)
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    server_call_reply(call, &resp.base);
out:
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}
