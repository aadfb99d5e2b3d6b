/*
 * fuzz_request.h - what the request fuzz targets share: the configurations requests are
 * checked against, and the properties every accepted GetTask or DeleteTask must have.
 *
 * The configurations are built as the daemon builds its own (config_new(), then a config
 * file's text through config_parse_json()), once per process. The first names a default
 * instance and allows two more, so that seeds reach the job-spec builder and both sides of
 * the allowlist; the second has no default instance.
 */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "resmeta.h"
#include "task_request.h"

static inline const struct config *fuzz_request_config(size_t which)
{
    static const char *const texts[2] = {
        "{\"default_instance\": \"example.cloud.databricks.com\","
        " \"allowed_instances\": [\"other.example.com:443\", \"127.0.0.1:8443\"],"
        " \"service_credential_provider\": \"fuzz-provider\"}",
        "{\"allowed_instances\": [\"example.com\"]}",
    };
    static struct config *configs[2];
    char *error = NULL;

    which %= 2;
    if (!configs[which]) {
        configs[which] = config_new();
        if (!configs[which] || config_parse_json(configs[which], texts[which], &error) < 0)
            abort();
    }
    return configs[which];
}

/* Aborts unless a checked GetTask or DeleteTask is as the handlers rely on: a refusal says
 * why; an accepted one names an allowed, normalized instance and a run id of digits. */
static inline void fuzz_check_run(const struct config *config, grpc_status_code code,
                                  const struct task_request_run *run)
{
    char *normalized = NULL;

    if (code != GRPC_STATUS_OK) {
        if (!run->message[0] || run->instance || run->run_id || run->call_token)
            abort();
        return;
    }
    /* A call token goes into an HTTP header, and its tag is its SHA-256. */
    if (run->call_token ? strlen(run->call_token_tag) != 64 : run->call_token_tag[0] != '\0')
        abort();
    for (const char *p = run->call_token; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort();
    if (!run->task_type || !task_request_type_supported(run->task_type))
        abort();
    if (!config_instance_allowed(config, run->instance))
        abort();
    /* An instance is normalized once: normalizing again keeps it. */
    if (resmeta_normalize_instance(run->instance, &normalized, NULL) < 0 ||
        strcmp(normalized, run->instance) != 0)
        abort();
    if (!run->run_id[0] || strspn(run->run_id, "0123456789") != strlen(run->run_id))
        abort();
    free(normalized);
}
