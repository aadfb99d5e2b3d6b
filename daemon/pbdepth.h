/*
 * pbdepth.h - how deeply protobuf bytes nest messages, and whether their strings are valid
 * UTF-8, checked before protobuf-c unpacks them.
 *
 * protobuf-c's unpack recurses once per nested message and has no limit. A CreateTaskRequest
 * whose template.custom (google.protobuf.Struct: Value -> ListValue -> Value ...) nests 20000
 * levels is 150 KB, far under gRPC's 4 MB message limit, and overflowed the worker's stack:
 * one call killed the daemon. pbdepth walks the wire format with the message's descriptors,
 * recursing at most max_depth deep and allocating nothing, so the caller can refuse such bytes
 * before unpacking them.
 *
 * Pure: no global state, any thread; the bytes and descriptors are only read.
 */
#ifndef FDC_PBDEPTH_H
#define FDC_PBDEPTH_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * The nesting the daemon accepts in a request, the request itself counting as level 1. Above
 * any real task: structjson accepts custom nested STRUCTJSON_MAX_DEPTH (64) levels, which costs
 * 3 message levels each (Struct, map entry, Value) plus 2 for the request and its template,
 * 194 in all.
 */
#define PBDEPTH_REQUEST_MAX 256

/*
 * Returns 0 when no message in data[0..len) (borrowed; a `descriptor` message in wire format)
 * nests deeper than max_depth levels, counting the top one as 1; -EINVAL with *reterr_msg
 * ("message nests deeper than N levels"; gives, free()) when one does. Only length-delimited
 * fields that the descriptor declares as messages (map entries included) are entered; unknown
 * fields are skipped as protobuf-c keeps them, unparsed. Bytes that are not valid wire format
 * end the walk of the message they are in with 0: protobuf-c refuses them before it recurses
 * into that message. reterr_msg may be NULL; *reterr_msg may be set to NULL on OOM.
 */
int pbdepth_check(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t len,
                  unsigned max_depth, char **reterr_msg);

/*
 * Returns 0 when every field of data[0..len) (borrowed; a `descriptor` message in wire format)
 * that the descriptors declare `string` (nested messages and map keys included) is valid UTF-8
 * without a NUL byte; -EINVAL with *reterr_msg naming the field and the fault when one is not,
 * e.g. `field template.custom.fields["databricksInstance"].string_value contains a NUL byte
 * (proto3 strings must be UTF-8)` (the map key quoted, cut to 48 bytes; repeated fields show an
 * index). proto3 requires UTF-8 in strings but protobuf-c does not check it, and keeps each as a
 * C string, which a NUL would silently cut: so a request name could mean one thing to the client
 * and another here. Nesting beyond max_depth is refused too; unknown fields and bytes that are
 * not wire format are treated as by pbdepth_check(). reterr_msg may be NULL; *reterr_msg may be
 * set to NULL on OOM.
 */
int pbdepth_check_strings(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data,
                          size_t len, unsigned max_depth, char **reterr_msg);

#endif
