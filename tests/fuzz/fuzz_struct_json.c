/*
 * fuzz_struct_json - libFuzzer target: google.protobuf.Struct bytes (a task's `custom`) through
 * structjson: Struct -> cJSON -> text, back to a Struct, and from the text again. What converts
 * once must convert again and print the same text, so a submit body never depends on how often
 * it was converted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "google/protobuf/struct.pb-c.h"
#include "structjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Struct -> cJSON -> text; NULL when the conversion refuses s (or on OOM). */
static char *struct_text(const Google__Protobuf__Struct *s)
{
    cJSON *json = NULL;
    char *text;

    if (structjson_to_cjson(s, &json, NULL) < 0)
        return NULL;
    text = structjson_print(json);
    cJSON_Delete(json);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Google__Protobuf__Struct *in = NULL, *back = NULL, *reparsed_struct = NULL;
    cJSON *json = NULL, *reparsed = NULL;
    char *text = NULL, *text_back = NULL, *text_reparsed = NULL, *error = NULL;

    in = google__protobuf__struct__unpack(NULL, size, data);
    if (!in)
        goto out;
    if (structjson_to_cjson(in, &json, &error) < 0) {
        if (!error) /* every refusal names its culprit */
            abort();
        goto out;
    }
    text = structjson_print(json);
    if (!text)
        abort();
    /* What came from a Struct goes back to one: same depth limit, no NaN, no raw items. */
    if (structjson_from_cjson(json, &back, &error) < 0)
        abort();
    text_back = struct_text(back);
    if (!text_back || strcmp(text, text_back) != 0)
        abort();
    /* The printed text reads back to the same value (numbers included). */
    reparsed = cJSON_Parse(text);
    if (!reparsed)
        abort();
    if (structjson_from_cjson(reparsed, &reparsed_struct, &error) < 0)
        abort();
    text_reparsed = struct_text(reparsed_struct);
    if (!text_reparsed || strcmp(text, text_reparsed) != 0)
        abort();
out:
    free(text);
    free(text_back);
    free(text_reparsed);
    free(error);
    cJSON_Delete(json);
    cJSON_Delete(reparsed);
    structjson_struct_free(back);
    structjson_struct_free(reparsed_struct);
    if (in)
        google__protobuf__struct__free_unpacked(in, NULL);
    return 0;
}
