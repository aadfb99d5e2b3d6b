/*
 * fuzz_config - libFuzzer target: bytes as a config file's text, through config_parse_json()
 * on the built-in defaults (what config_load() and a SIGHUP reload do with the file), then the
 * readers the daemon uses on a parsed config.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    char *text = NULL, *error = NULL, *described = NULL;

    /* The file reader hands over a NUL-terminated copy; a NUL inside ends the text. */
    text = malloc(size + 1);
    if (!text)
        goto out;
    memcpy(text, data, size);
    text[size] = '\0';
    cfg = config_new();
    if (!cfg)
        goto out;
    if (config_parse_json(cfg, text, &error) < 0) {
        if (!error) /* every refusal says why */
            abort();
        goto out;
    }
    described = config_describe(cfg);
    (void)config_instance_allowed(cfg, "my-workspace.cloud.databricks.com");
    (void)config_instance_allowed(cfg, "127.0.0.1:8443");
    (void)config_instance_allowed(cfg, NULL);
out:
    free(described);
    free(error);
    free(text);
    config_unref(cfg);
    return 0;
}
