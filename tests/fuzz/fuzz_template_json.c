/*
 * fuzz_template_json - libFuzzer target: bytes as the TaskTemplate JSON a user gives the
 * `submit` command, through template_json_parse(). A parsed template must pack as a protobuf
 * message and unpack again (the client sends it in a CreateTaskRequest).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "template_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Flyteidl__Core__TaskTemplate *t = NULL, *unpacked = NULL;
    uint8_t *packed = NULL;
    char *error = NULL;
    size_t len;

    if (template_json_parse((const char *)data, size, &t, &error) < 0) {
        if (!error)
            abort();
        goto out;
    }
    len = flyteidl__core__task_template__get_packed_size(t);
    packed = malloc(len ? len : 1);
    if (!packed)
        goto out;
    if (flyteidl__core__task_template__pack(t, packed) != len)
        abort();
    unpacked = flyteidl__core__task_template__unpack(NULL, len, packed);
    if (!unpacked)
        abort();
out:
    if (unpacked)
        flyteidl__core__task_template__free_unpacked(unpacked, NULL);
    free(packed);
    free(error);
    template_json_free(t);
    return 0;
}
