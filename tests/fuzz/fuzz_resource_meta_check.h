/*
 * fuzz_resource_meta_check.h - what agent.c does with the resource_meta of a
 * GetTask or DeleteTask call before any network: decode it, and the
 * instance rule the allowlist check applies to the decoded instance. Shared
 * by fuzz_get_request and fuzz_delete_request, which differ only in the
 * message they unpack.
 */
#pragma once

#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "resmeta.h"

static inline void fuzz_check_resource_meta(const ProtobufCBinaryData *resource_meta)
{
    struct resmeta meta = {0};
    char *error = NULL, *normalized = NULL;

    if (resmeta_decode(resource_meta->data, resource_meta->len, &meta, &error) < 0)
        goto out;
    /* A decoded instance is already normalized: normalizing again must keep it. */
    if (resmeta_normalize_instance(meta.instance, &normalized, &error) < 0)
        abort();
    if (strcmp(normalized, meta.instance) != 0)
        abort();
out:
    free(normalized);
    free(error);
    resmeta_done(&meta);
}
