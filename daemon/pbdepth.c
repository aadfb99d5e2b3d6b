/*
 * pbdepth.c - a bounded walk over protobuf wire format that measures message nesting.
 *
 * Reads tags and lengths only: varints (wire type 0) and fixed 64/32-bit values (1, 5) are
 * skipped, a length-delimited field (2) is entered when the descriptor says it holds a message
 * and skipped otherwise. protobuf-c refuses groups (3, 4) and invalid wire types, as well as
 * truncated varints or lengths, when it scans the message holding them, before it unpacks any
 * field of that message; so such bytes stop the walk of that message without an error, and
 * this module never has to agree with protobuf-c on what is malformed, only on what it will
 * recurse into. Recursion here is bounded by max_depth.
 *
 * Pure and stateless: any thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

#include "pbdepth.h"

enum wire_type {
    WIRE_VARINT = 0,
    WIRE_FIXED64 = 1,
    WIRE_LENGTH_DELIMITED = 2,
    WIRE_FIXED32 = 5,
};

/* Reads a varint at data[*at..len) (at most 10 bytes); false when it is cut or too long. */
static bool read_varint(const uint8_t *data, size_t len, size_t *at, uint64_t *ret)
{
    uint64_t value = 0;

    for (unsigned i = 0; i < 10 && *at < len; i++) {
        uint8_t byte = data[(*at)++];
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *ret = value;
            return true;
        }
    }
    return false;
}

/* True when data[0..len), a `descriptor` message at nesting level depth, keeps every message
 * it holds within max_depth. */
static bool within(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t len,
                   unsigned depth, unsigned max_depth)
{
    size_t at = 0;

    if (depth > max_depth)
        return false;
    while (at < len) {
        uint64_t tag, skip;
        const ProtobufCFieldDescriptor *field;

        if (!read_varint(data, len, &at, &tag))
            return true;
        switch (tag & 7) {
        case WIRE_VARINT:
            if (!read_varint(data, len, &at, &skip))
                return true;
            break;
        case WIRE_FIXED64:
        case WIRE_FIXED32:
            skip = (tag & 7) == WIRE_FIXED64 ? 8 : 4;
            if (skip > len - at)
                return true;
            at += skip;
            break;
        case WIRE_LENGTH_DELIMITED:
            if (!read_varint(data, len, &at, &skip) || skip > len - at)
                return true;
            field = tag >> 3 <= UINT32_MAX
                        ? protobuf_c_message_descriptor_get_field(descriptor, (unsigned)(tag >> 3))
                        : NULL;
            if (field && field->type == PROTOBUF_C_TYPE_MESSAGE &&
                !within(field->descriptor, data + at, skip, depth + 1, max_depth))
                return false;
            at += skip;
            break;
        default: /* groups, invalid wire types */
            return true;
        }
    }
    return true;
}

int pbdepth_check(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t len,
                  unsigned max_depth, char **reterr_msg)
{
    if (!within(descriptor, data, len, 1, max_depth))
        return errmsg_set(reterr_msg, -EINVAL, "message nests deeper than %u levels", max_depth);
    return 0;
}
