/*
 * fuzz_get_request - libFuzzer target: the bytes of a GetTask call through
 * task_request_get(), everything agent_get_task() does before the network: unpack, task
 * type, resource_meta, instance allowlist.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *config = fuzz_request_config(size);
    struct task_request_run run;

    /* Both generations: Flyte 2's messages share Flyte 1's field numbers. */
    for (int g = 0; g < _CONFIG_GENERATION_MAX; g++) {
        fuzz_check_run(config, task_request_get(config, g, data, size, &run), &run);
        task_request_run_done(&run);
    }
    return 0;
}
