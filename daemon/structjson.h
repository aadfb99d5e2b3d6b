/*
 * structjson.h - google.protobuf.Struct <-> cJSON, and a JSON printer for Struct numbers.
 *
 * The task's `custom` config reaches us as a Struct; the job-spec builder works on cJSON, and
 * the submit body goes out as text. Struct numbers are doubles, so a user's `2` arrives as 2.0:
 * structjson_print() writes it back as `2`.
 *
 * Pure: no global state, any thread; inputs are only read.
 * Errors: -EINVAL for input that cannot be converted (the message names the path, e.g.
 * 'databricksConf.new_cluster.num_workers', and never contains a value), -ENOMEM.
 * *reterr_msg is set only on failure (gives a string, free with free()); it may be set to NULL
 * when even the message could not be allocated. reterr_msg may be NULL.
 */
#ifndef FDC_STRUCTJSON_H
#define FDC_STRUCTJSON_H

#include <cjson/cJSON.h>

#include "google/protobuf/struct.pb-c.h"

/* Deepest nesting accepted, counting the top-level object as 1: deeper input is refused rather
 * than recursed into, so a hostile Struct cannot exhaust the stack. */
#define STRUCTJSON_MAX_DEPTH 64

/*
 * Converts s (borrowed for the call) to a JSON object and gives it in *ret_object (free with
 * cJSON_Delete()). Like protobuf's Python json_format (which flytekit uses), a Value with no
 * kind set, or a missing Value, becomes null. NaN and infinite numbers are refused: JSON cannot
 * carry them. A key repeated in s keeps its first position and its last value (protobuf map
 * semantics).
 */
int structjson_to_cjson(const Google__Protobuf__Struct *s, cJSON **ret_object, char **reterr_msg);

/*
 * Converts a JSON object (borrowed for the call) to a Struct and gives it in *ret_struct (free
 * with structjson_struct_free(), not protobuf_c_message_free_unpacked()). Refuses anything that
 * is not an object at the top, raw or invalid cJSON items, NaN/infinite numbers and nesting
 * deeper than STRUCTJSON_MAX_DEPTH. Repeated keys are kept as repeated map entries.
 */
int structjson_from_cjson(const cJSON *object, Google__Protobuf__Struct **ret_struct,
                          char **reterr_msg);

/* Frees a Struct given by structjson_from_cjson(). Accepts NULL; returns NULL. */
Google__Protobuf__Struct *structjson_struct_free(Google__Protobuf__Struct *s);

/*
 * Prints item (borrowed) as compact JSON. Gives a NUL-terminated string (free with free()), or
 * NULL when item is NULL or memory ran out. Numbers: whole values with |x| < 2^53 as integers
 * ("2", "3000000000", never "2.0" or "1e+15"); other finite values in the shortest %g form that
 * reads back to the same double; NaN and infinities as null (as cJSON does).
 * Assumes the C locale's decimal point, which the daemon never changes.
 */
char *structjson_print(const cJSON *item);

/* "a string", "a number", ... "an object": the JSON type of item, for messages. */
const char *structjson_type_name(const cJSON *item);

#endif
