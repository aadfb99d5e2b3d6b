/*
 * template_json.h - a flyteidl.core.TaskTemplate written as protobuf JSON, read into protobuf-c.
 *
 * The `submit` command takes the template a user exported with protobuf's MessageToJson (or
 * wrote by hand). Field names are accepted as MessageToJson writes them (camelCase) and as the
 * .proto spells them (snake_case), like protobuf's JSON parsers. Read: id, type, custom, container
 * (image, command, args, env), taskTypeVersion, config. Fields of the full upstream TaskTemplate
 * that the connector never reads (metadata, interface, securityContext, ...) are accepted and
 * dropped; any other key is an error, so a typo does not silently vanish. A JSON null means "not
 * set", as in protobuf JSON.
 *
 * Pure: no I/O, no globals, any thread; the text is only read.
 */
#ifndef FDC_TEMPLATE_JSON_H
#define FDC_TEMPLATE_JSON_H

#include <stddef.h>

#include "flyteidl/core/tasks.pb-c.h"

/*
 * Parses text[0..len) (borrowed; need not be NUL-terminated) and gives *ret_template (free with
 * template_json_free()). Returns 0; -EINVAL with *reterr_msg for input that is not a TaskTemplate:
 *   "invalid JSON at line L, column C"
 *   "not a TaskTemplate: the top-level value is an array" (any non-object)
 *   "not a TaskTemplate: it looks like a CreateTaskRequest; give the value of its 'template'"
 *   "not a TaskTemplate: none of its fields is present (found 'run_id', ...)"
 *   "id.project: expected a string, got a number" (the path uses the names the text used)
 *   "unknown field 'contianer'", "field 'type' given twice", "custom: ..." (from structjson)
 * or -ENOMEM. *reterr_msg (gives; free()) is set only on failure and may be NULL on -ENOMEM;
 * reterr_msg may be NULL.
 */
int template_json_parse(const char *text, size_t len, Flyteidl__Core__TaskTemplate **ret_template,
                        char **reterr_msg);

/* Frees a template given by template_json_parse() (not one from protobuf-c's unpack: free that
 * with protobuf_c_message_free_unpacked()). Accepts NULL; returns NULL. */
Flyteidl__Core__TaskTemplate *template_json_free(Flyteidl__Core__TaskTemplate *t);

#endif
