/*
 * pbdepth.c - bounded walks over protobuf wire format, before protobuf-c unpacks it: how deeply
 * messages nest, and whether every string is one protobuf-c and the rest of the daemon can keep.
 *
 * Reads tags and lengths only: varints (wire type 0) and fixed 64/32-bit values (1, 5) are
 * skipped, a length-delimited field (2) is entered when the descriptor says it holds a message
 * and skipped otherwise. protobuf-c refuses groups (3, 4) and invalid wire types, as well as
 * truncated varints or lengths, when it scans the message holding them, before it unpacks any
 * field of that message; so such bytes stop the walk of that message without an error, and
 * this module never has to agree with protobuf-c on what is malformed, only on what it will
 * recurse into. Recursion here is bounded by max_depth.
 *
 * The string walk reads the same way and looks at the payload of every field the descriptor
 * declares `string`: protobuf-c copies it as it is (no UTF-8 check) into a C string (a NUL
 * ends it early), so this is the only place that sees the bytes the client sent. The path of a
 * bad string is built only once one is found, as the walk unwinds.
 *
 * Pure and stateless: any thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* The length-delimited fields of one message, in wire order. */
struct fields {
    const uint8_t *data;
    size_t len;
    size_t at;
};

/* Gives the next length-delimited field (its number and payload), skipping the others; false at
 * the end of the message and at bytes that are not wire format (see the top of the file). */
static bool next_delimited(struct fields *it, uint64_t *ret_number, const uint8_t **ret_payload,
                           size_t *ret_len)
{
    while (it->at < it->len) {
        uint64_t tag, skip;

        if (!read_varint(it->data, it->len, &it->at, &tag))
            return false;
        switch (tag & 7) {
        case WIRE_VARINT:
            if (!read_varint(it->data, it->len, &it->at, &skip))
                return false;
            break;
        case WIRE_FIXED64:
        case WIRE_FIXED32:
            skip = (tag & 7) == WIRE_FIXED64 ? 8 : 4;
            if (skip > it->len - it->at)
                return false;
            it->at += skip;
            break;
        case WIRE_LENGTH_DELIMITED:
            if (!read_varint(it->data, it->len, &it->at, &skip) || skip > it->len - it->at)
                return false;
            *ret_number = tag >> 3;
            *ret_payload = it->data + it->at;
            *ret_len = (size_t)skip;
            it->at += skip;
            return true;
        default: /* groups, invalid wire types */
            return false;
        }
    }
    return false;
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *descriptor,
                                                uint64_t number)
{
    return number <= UINT32_MAX
               ? protobuf_c_message_descriptor_get_field(descriptor, (unsigned)number)
               : NULL;
}

/* True when data[0..len), a `descriptor` message at nesting level depth, keeps every message
 * it holds within max_depth. */
static bool within(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t len,
                   unsigned depth, unsigned max_depth)
{
    struct fields it = {data, len, 0};
    const uint8_t *payload;
    uint64_t number;
    size_t n;

    if (depth > max_depth)
        return false;
    while (next_delimited(&it, &number, &payload, &n)) {
        const ProtobufCFieldDescriptor *field = field_of(descriptor, number);

        if (field && field->type == PROTOBUF_C_TYPE_MESSAGE &&
            !within(field->descriptor, payload, n, depth + 1, max_depth))
            return false;
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

/* ---- strings ---- */

/* The field path of a bad string, written back to front as the walk unwinds. */
#define PATH_SIZE 320
#define KEY_SHOWN (48 + 4)

struct string_walk {
    unsigned max_depth;
    const char *problem; /* NULL while every string is fine */
    char path[PATH_SIZE];
    size_t start; /* the path is path[start..PATH_SIZE - 1) */
};

/* Puts text before the path so far; "..." once it no longer fits. */
static void path_prepend(struct string_walk *w, const char *text)
{
    size_t n = strlen(text);

    if (w->start < 3 || strncmp(w->path + w->start, "...", 3) == 0)
        return;
    if (n > w->start - 3) {
        w->start -= 3;
        memcpy(w->path + w->start, "...", 3);
        return;
    }
    w->start -= n;
    memcpy(w->path + w->start, text, n);
}

/* protobuf-c describes a map<K, V> field as repeated messages of two fields, key and value. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
    return d->n_fields == 2 && d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
           d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

/* The path segment of the field whose payload is payload[0..payload_len) in the message
 * data[0..len): its name, then [i] when it repeats, or ["key"] for a map entry. Only on the
 * error path. */
static void path_segment(struct string_walk *w, const uint8_t *data, size_t len,
                         const ProtobufCFieldDescriptor *field, const uint8_t *payload,
                         size_t payload_len, bool parent_is_entry)
{
    char segment[128 + 2 * KEY_SHOWN];
    struct fields it = {data, len, 0};
    const uint8_t *p, *key = NULL;
    size_t index = 0, n, key_len = 0;
    uint64_t number;

    /* Inside a map entry the key is already shown in the parent's segment. */
    if (parent_is_entry && field->id == 2)
        return;
    while (next_delimited(&it, &number, &p, &n) && p < payload)
        index += number == field->id;
    if (field->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(field->descriptor)) {
        struct fields entry = {payload, payload_len, 0};

        while (next_delimited(&entry, &number, &p, &n))
            if (number == 1) {
                key = p;
                key_len = n;
            }
    }
    if (key) {
        char shown[KEY_SHOWN], raw[KEY_SHOWN];

        snprintf(raw, sizeof(raw), "%.*s", (int)(key_len < KEY_SHOWN - 1 ? key_len : KEY_SHOWN - 1),
                 (const char *)key);
        errmsg_printable(shown, sizeof(shown), raw, ERRMSG_QUOTED);
        snprintf(segment, sizeof(segment), ".%.64s[\"%s\"]", field->name, shown);
    } else if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        snprintf(segment, sizeof(segment), ".%.64s[%zu]", field->name, index);
    } else {
        snprintf(segment, sizeof(segment), ".%.64s", field->name);
    }
    path_prepend(w, segment);
}

/* True when every string in data[0..len), a `descriptor` message at level depth, is valid UTF-8
 * without a NUL; otherwise w says which and why. */
static bool strings_ok(struct string_walk *w, const ProtobufCMessageDescriptor *descriptor,
                       const uint8_t *data, size_t len, unsigned depth, bool is_entry)
{
    struct fields it = {data, len, 0};
    const uint8_t *payload;
    uint64_t number;
    size_t n;

    if (depth > w->max_depth) {
        w->problem = "nests too deeply";
        return false;
    }
    while (next_delimited(&it, &number, &payload, &n)) {
        const ProtobufCFieldDescriptor *field = field_of(descriptor, number);

        if (!field)
            continue;
        if (field->type == PROTOBUF_C_TYPE_STRING) {
            /* protobuf-c keeps a string as a C string: a NUL would silently cut it short. */
            if (!errmsg_utf8_valid(payload, n))
                w->problem = "is not valid UTF-8";
            else if (memchr(payload, '\0', n))
                w->problem = "contains a NUL byte";
        } else if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            strings_ok(w, field->descriptor, payload, n, depth + 1,
                       is_map_entry(field->descriptor));
        }
        if (w->problem) {
            path_segment(w, data, len, field, payload, n, is_entry);
            return false;
        }
    }
    return true;
}

int pbdepth_check_strings(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data,
                          size_t len, unsigned max_depth, char **reterr_msg)
{
    struct string_walk w = {.max_depth = max_depth, .start = PATH_SIZE - 1};

    w.path[PATH_SIZE - 1] = '\0';
    if (strings_ok(&w, descriptor, data, len, 1, false))
        return 0;
    /* Every segment starts with '.': the path shown starts after the first. */
    return errmsg_set(reterr_msg, -EINVAL, "field %s %s (proto3 strings must be UTF-8)",
                      w.path + w.start + (w.path[w.start] == '.'), w.problem);
}
