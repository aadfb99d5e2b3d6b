/*
 * fuzz_create_request - libFuzzer target: the bytes of a CreateTask call through
 * task_request_create(), everything agent_create_task() does before the network: the nesting
 * bound, unpack, task type, template.custom to JSON, instance and allowlist, the idempotency
 * token, the runs/submit body and its text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "fuzz_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *config = fuzz_request_config(size);
    struct task_request_submit submit;
    cJSON *back = NULL;

    if (task_request_create(config, data, size, &submit) != GRPC_STATUS_OK) {
        if (!submit.message[0] || submit.body) /* every refusal says why */
            abort();
        goto out;
    }
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
    return 0;
}
