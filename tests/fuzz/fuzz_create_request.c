/*
 * fuzz_create_request - libFuzzer target: the bytes of a CreateTask call, through everything
 * agent_create_task() does before any network: the nesting bound, unpack, template.custom to
 * JSON, the task execution id to an idempotency token, the runs/submit body and its text.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "idempotency.h"
#include "pbdepth.h"
#include "spec.h"
#include "structjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Flyteidl__Admin__CreateTaskRequest *req = NULL;
    struct spec_env_var *env = NULL;
    cJSON *custom = NULL, *body = NULL;
    char *error = NULL, *printed = NULL;
    char token[IDEMPOTENCY_TOKEN_SIZE];
    int has_token;

    if (pbdepth_check(&flyteidl__admin__create_task_request__descriptor, data, size,
                      PBDEPTH_REQUEST_MAX, &error) < 0)
        goto out;
    req = flyteidl__admin__create_task_request__unpack(NULL, size, data);
    if (!req)
        goto out;
    has_token = idempotency_token_from_metadata(req->task_execution_metadata, token) >= 0;
    if (!req->template_ || !req->template_->custom)
        goto out;
    if (structjson_to_cjson(req->template_->custom, &custom, &error) < 0)
        goto out;
    (void)spec_instance(custom);
    {
        struct spec_input input = {
            .custom = custom,
            .default_credential_provider = (size & 1) ? "fuzz-provider" : NULL,
            .idempotency_token = has_token ? token : NULL,
        };
        if (spec_input_from_template(req->template_, &input, &env) < 0)
            goto out;
        if (spec_build(&input, &body, &error) < 0)
            goto out;
    }
    printed = structjson_print(body);
    /* The body goes out as JSON: it must read back. */
    if (printed) {
        cJSON *back = cJSON_Parse(printed);
        if (!back)
            abort();
        cJSON_Delete(back);
    }
out:
    free(printed);
    free(error);
    free(env);
    cJSON_Delete(body);
    cJSON_Delete(custom);
    if (req)
        flyteidl__admin__create_task_request__free_unpacked(req, NULL);
    return 0;
}
