/*
 * fuzz_delete_request - libFuzzer target: the bytes of a DeleteTask call, through what
 * agent.c does before any network: unpack, decode resource_meta, and the instance rule the
 * allowlist check applies to the decoded instance.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "resmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Flyteidl__Admin__DeleteTaskRequest *req = NULL;
    struct resmeta meta = {0};
    char *error = NULL, *normalized = NULL;

    req = flyteidl__admin__delete_task_request__unpack(NULL, size, data);
    if (!req)
        goto out;
    if (resmeta_decode(req->resource_meta.data, req->resource_meta.len, &meta, &error) < 0)
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
    if (req)
        flyteidl__admin__delete_task_request__free_unpacked(req, NULL);
    return 0;
}
