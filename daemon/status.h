/*
 * status.h - names of the gRPC status codes (pure), for metrics labels and
 * client messages.
 */
#ifndef FDC_STATUS_H
#define FDC_STATUS_H

#include <grpc/status.h>

/* OK (0) through UNAUTHENTICATED (16): the codes the gRPC protocol fixes. */
#define STATUS_CODES 17

/* "OK", "UNAVAILABLE", ...; "UNKNOWN" for a value outside the protocol's codes. */
const char *status_name(grpc_status_code code);

#endif
