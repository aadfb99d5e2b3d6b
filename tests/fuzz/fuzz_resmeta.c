/*
 * fuzz_resmeta - libFuzzer target: resource_meta bytes through resmeta_decode(); whatever
 * decodes must survive an encode/decode round trip unchanged (the Secret's name may become the
 * default one it stood for), and flytekit's auth_token must never be encoded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct resmeta meta = {0}, again = {0};
    uint8_t *encoded = NULL;
    size_t encoded_len = 0;
    char *error = NULL;

    if (resmeta_decode(data, size, &meta, &error) < 0)
        goto out;
    if (resmeta_encode(&meta, &encoded, &encoded_len) < 0)
        abort();
    if (encoded[encoded_len] != '\0')
        abort();
    if (resmeta_decode(encoded, encoded_len, &again, &error) < 0)
        abort();
    if (strcmp(meta.instance, again.instance) != 0 || strcmp(meta.run_id, again.run_id) != 0)
        abort();
    if (!meta.namespace != !again.namespace || again.auth_token ||
        (meta.namespace && strcmp(meta.namespace, again.namespace) != 0) ||
        (meta.token_secret && strcmp(meta.token_secret, again.token_secret) != 0))
        abort();
out:
    free(encoded);
    free(error);
    resmeta_done(&meta);
    resmeta_done(&again);
    return 0;
}
