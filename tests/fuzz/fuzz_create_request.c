/*
 * fuzz_create_request - libFuzzer target: the bytes of a CreateTask call through
 * task_request_create(), everything agent_create_task() does before the network: the nesting
 * bound, unpack, task type, template.custom to JSON, instance and allowlist, the idempotency
 * token, the runs/submit body and its text. Every input goes through both generations' unpackers
 * (Flyte 2's messages share Flyte 1's field numbers, so the seeds reach both).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "fuzz_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_create(const struct config *config, enum config_generation generation,
                         const uint8_t *data, size_t size)
{
    struct task_request_submit submit;
    cJSON *back = NULL;

    if (task_request_create(config, generation, data, size, &submit) != GRPC_STATUS_OK) {
        if (!submit.message[0] || submit.body || submit.call_token) /* every refusal says why */
            abort();
        goto out;
    }
    /* A call token goes into an HTTP header: visible ASCII only. */
    for (const char *p = submit.call_token; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort();
    if (!task_request_type_supported(submit.task_type) ||
        !config_instance_allowed(config, submit.instance))
        abort();
    /* Only a body with an idempotency_token may be sent twice. */
    if (submit.retry_safe != (submit.idempotency_token[0] != '\0'))
        abort();
    /* The body goes out as JSON: it must read back. */
    back = cJSON_Parse(submit.body);
    if (!back)
        abort();
out:
    cJSON_Delete(back);
    task_request_submit_done(&submit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *config = fuzz_request_config(size);

    check_create(config, CONFIG_FLYTE_1, data, size);
    check_create(config, CONFIG_FLYTE_2, data, size);
    return 0;
}
