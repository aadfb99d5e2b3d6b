/*
 * fuzz_pb_strings - libFuzzer target: CreateTaskRequest bytes through pbdepth_check_strings().
 * Whatever it accepts and protobuf-c then unpacks must hold only valid UTF-8 in every string
 * field, found by walking the unpacked message with its descriptors (the walk is bounded: the
 * depth check runs first, as in the daemon).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "pbdepth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const ProtobufCMessage *message);

/* One value of field f at member (a pointer to the string or message pointer). */
static void check_value(const ProtobufCFieldDescriptor *f, const void *member)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)member;

        if (s && !errmsg_utf8_valid(s, strlen(s)))
            abort(); /* accepted, yet a string is not UTF-8 */
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;

        if (sub)
            walk(sub);
    }
}

static void walk(const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *d = message->descriptor;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)message + f->offset;

        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)message + f->quantifier_offset);
            void *const *values = *(void *const *const *)member;

            for (size_t k = 0; k < n; k++)
                check_value(f, &values[k]);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)message + f->quantifier_offset) != f->id)
            continue;
        check_value(f, member);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *d = &flyteidl__admin__create_task_request__descriptor;
    Flyteidl__Admin__CreateTaskRequest *req;

    if (pbdepth_check(d, data, size, PBDEPTH_REQUEST_MAX, NULL) < 0 ||
        pbdepth_check_strings(d, data, size, PBDEPTH_REQUEST_MAX, NULL) < 0)
        return 0;
    req = flyteidl__admin__create_task_request__unpack(NULL, size, data);
    if (req) {
        walk(&req->base);
        flyteidl__admin__create_task_request__free_unpacked(req, NULL);
    }
    return 0;
}
