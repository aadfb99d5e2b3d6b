/*
 * fuzz_delete_request - libFuzzer target: the bytes of a DeleteTask call, unpacked, then
 * its resource_meta through fuzz_check_resource_meta().
 */
#include <stddef.h>
#include <stdint.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "fuzz_resource_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Flyteidl__Admin__DeleteTaskRequest *req =
        flyteidl__admin__delete_task_request__unpack(NULL, size, data);

    if (!req)
        return 0;
    fuzz_check_resource_meta(&req->resource_meta);
    flyteidl__admin__delete_task_request__free_unpacked(req, NULL);
    return 0;
}
