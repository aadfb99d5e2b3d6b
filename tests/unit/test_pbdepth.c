/* Unit tests for daemon/pbdepth.c: the request that overflowed the stack (found by
 * tests/fuzz/fuzz_create_request; seed tests/fuzz/corpus/create_request/regress-deep-custom-list),
 * the exact boundary, what is entered and what is skipped, and the assumption the module rests
 * on: bytes it stops at are bytes protobuf-c refuses. Wire bytes are written by hand here, so
 * the expectations do not depend on protobuf-c's packer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "pbdepth.h"
#include "structjson.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Field keys (field number << 3 | wire type 2) of the messages the tests nest. */
#define CREATE_TEMPLATE 0x12 /* CreateTaskRequest.template = 2 */
#define TEMPLATE_TYPE 0x12   /* TaskTemplate.type = 2 (a string) */
#define TEMPLATE_CUSTOM 0x2a /* TaskTemplate.custom = 5 */
#define STRUCT_FIELDS 0x0a   /* Struct.fields = 1 (map entries) */
#define ENTRY_KEY 0x0a       /* Struct.FieldsEntry.key = 1 */
#define ENTRY_VALUE 0x12     /* Struct.FieldsEntry.value = 2 */
#define VALUE_LIST 0x32      /* Value.list_value = 6 */
#define LIST_VALUES 0x0a     /* ListValue.values = 1 */

/* Bytes built back to front: every wrap puts a key and a length before what is there. */
struct wire {
    uint8_t *buf;
    size_t cap;
    size_t start; /* the message is buf[start..cap) */
};

static void wire_init(struct wire *w, size_t cap)
{
    w->buf = malloc(cap);
    assert_non_null(w->buf);
    w->cap = cap;
    w->start = cap;
}

static void prepend(struct wire *w, const void *data, size_t len)
{
    assert_true(len <= w->start);
    w->start -= len;
    memcpy(w->buf + w->start, data, len);
}

static size_t wire_len(const struct wire *w)
{
    return w->cap - w->start;
}

/* Makes the whole message so far field `key` (length-delimited) of a new outer message. */
static void wrap(struct wire *w, uint8_t key)
{
    uint8_t varint[10];
    size_t n = 0, len = wire_len(w);

    do {
        varint[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        len >>= 7;
    } while (len);
    prepend(w, varint, n);
    prepend(w, &key, 1);
}

/* A Value nesting `lists` ListValues: 1 + 2 * lists message levels. */
static void value_chain(struct wire *w, size_t lists)
{
    for (size_t i = 0; i < lists; i++) {
        wrap(w, LIST_VALUES);
        wrap(w, VALUE_LIST);
    }
}

/* Wraps a Value into {"k": value}, a Struct, as the custom of a spark CreateTaskRequest's
 * template: 4 more levels above the Value (entry, Struct, template, request). */
static void create_request_around_value(struct wire *w)
{
    static const uint8_t key[] = {ENTRY_KEY, 1, 'k'};
    static const uint8_t type[] = {TEMPLATE_TYPE, 5, 's', 'p', 'a', 'r', 'k'};

    wrap(w, ENTRY_VALUE);
    prepend(w, key, sizeof(key));
    wrap(w, STRUCT_FIELDS);
    wrap(w, TEMPLATE_CUSTOM);
    prepend(w, type, sizeof(type));
    wrap(w, CREATE_TEMPLATE);
}

/* The crash: 20000 nested lists in custom, 154 KB. Unpacking it overflowed the stack. */
static void test_deep_custom_refused(void **state)
{
    struct wire w;
    char *err = NULL;

    (void)state;
    wire_init(&w, 256 * 1024);
    value_chain(&w, 20000);
    create_request_around_value(&w);
    assert_in_range(wire_len(&w), 150000, 160000);
    assert_int_equal(pbdepth_check(&flyteidl__admin__create_task_request__descriptor,
                                   w.buf + w.start, wire_len(&w), PBDEPTH_REQUEST_MAX, &err),
                     -EINVAL);
    assert_non_null(err);
    assert_string_equal(err, "message nests deeper than 256 levels");
    free(err);
    /* reterr_msg may be NULL. */
    assert_int_equal(pbdepth_check(&flyteidl__admin__create_task_request__descriptor,
                                   w.buf + w.start, wire_len(&w), PBDEPTH_REQUEST_MAX, NULL),
                     -EINVAL);
    /* The string walk refuses it too: the bound also caps its recursion. */
    assert_int_equal(pbdepth_check_strings(&flyteidl__admin__create_task_request__descriptor,
                                           w.buf + w.start, wire_len(&w), PBDEPTH_REQUEST_MAX,
                                           &err),
                     -EINVAL);
    assert_non_null(strstr(err, "nests too deeply"));
    free(err);
    free(w.buf);
}

/* Levels counted by hand: request 1, template 2, Struct 3, entry 4, Value 5, then 2 per list. */
static void test_boundary(void **state)
{
    static const struct {
        size_t lists;
        unsigned max_depth;
        int expected;
    } cases[] = {
        {0, 5, 0},
        {0, 4, -EINVAL},
        {1, 7, 0},
        {1, 6, -EINVAL},
        {3, 11, 0},
        {3, 10, -EINVAL},
        {125, 255, 0},
        {125, 254, -EINVAL},
        {125, PBDEPTH_REQUEST_MAX, 0},
        {126, PBDEPTH_REQUEST_MAX, -EINVAL},
        {126, PBDEPTH_REQUEST_MAX + 1, 0},
    };

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct wire w;
        char *err = NULL;
        int r;

        wire_init(&w, 4096);
        value_chain(&w, cases[i].lists);
        create_request_around_value(&w);
        r = pbdepth_check(&flyteidl__admin__create_task_request__descriptor, w.buf + w.start,
                          wire_len(&w), cases[i].max_depth, &err);
        if (r != cases[i].expected)
            fail_msg("case %zu (%zu lists, max %u): %d", i, cases[i].lists, cases[i].max_depth, r);
        if (r == 0) {
            /* What passes unpacks (the bytes are a valid request). */
            Flyteidl__Admin__CreateTaskRequest *req =
                flyteidl__admin__create_task_request__unpack(NULL, wire_len(&w), w.buf + w.start);
            assert_null(err);
            assert_non_null(req);
            assert_non_null(req->template_);
            assert_non_null(req->template_->custom);
            assert_int_equal(req->template_->custom->n_fields, 1);
            flyteidl__admin__create_task_request__free_unpacked(req, NULL);
        } else {
            assert_non_null(err);
        }
        free(err);
        free(w.buf);
    }
}

/* {"k": {"k": ... {}}} nested `depth` Structs, the top one counting. */
static cJSON *nested_objects(int depth)
{
    cJSON *top = cJSON_CreateObject(), *at = top;

    assert_non_null(top);
    for (int i = 1; i < depth; i++) {
        cJSON *inner = cJSON_CreateObject();
        assert_non_null(inner);
        assert_true(cJSON_AddItemToObject(at, "k", inner));
        at = inner;
    }
    return top;
}

/* The limit stays above what structjson accepts: the deepest custom it converts passes. */
static void test_deepest_struct_structjson_accepts_passes(void **state)
{
    cJSON *json = nested_objects(STRUCTJSON_MAX_DEPTH), *back = NULL;
    Google__Protobuf__Struct *custom = NULL;
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;
    Flyteidl__Core__TaskTemplate template_ = FLYTEIDL__CORE__TASK_TEMPLATE__INIT;
    Flyteidl__Admin__CreateTaskRequest *unpacked;
    uint8_t *packed;
    size_t len;

    (void)state;
    assert_int_equal(structjson_from_cjson(json, &custom, NULL), 0);
    template_.type = "spark";
    template_.custom = custom;
    req.template_ = &template_;
    len = flyteidl__admin__create_task_request__get_packed_size(&req);
    packed = malloc(len);
    assert_non_null(packed);
    assert_int_equal(flyteidl__admin__create_task_request__pack(&req, packed), len);
    assert_int_equal(pbdepth_check(&flyteidl__admin__create_task_request__descriptor, packed, len,
                                   PBDEPTH_REQUEST_MAX, NULL),
                     0);
    unpacked = flyteidl__admin__create_task_request__unpack(NULL, len, packed);
    assert_non_null(unpacked);
    assert_int_equal(structjson_to_cjson(unpacked->template_->custom, &back, NULL), 0);
    cJSON_Delete(back);
    flyteidl__admin__create_task_request__free_unpacked(unpacked, NULL);
    free(packed);
    structjson_struct_free(custom);
    cJSON_Delete(json);
}

/* Length-delimited fields that are not messages to protobuf-c are skipped, not entered. */
static void test_non_message_fields_skipped(void **state)
{
    struct wire w;

    (void)state;
    /* A deep list chain as the bytes of TaskTemplate.type (a string). */
    wire_init(&w, 4096);
    value_chain(&w, 100);
    wrap(&w, TEMPLATE_TYPE);
    assert_int_equal(pbdepth_check(&flyteidl__core__task_template__descriptor, w.buf + w.start,
                                   wire_len(&w), 2, NULL),
                     0);
    free(w.buf);

    /* The same as unknown field 15 of a Struct: protobuf-c keeps it unparsed. */
    wire_init(&w, 4096);
    value_chain(&w, 100);
    wrap(&w, 15 << 3 | 2);
    assert_int_equal(pbdepth_check(&google__protobuf__struct__descriptor, w.buf + w.start,
                                   wire_len(&w), 1, NULL),
                     0);
    {
        Google__Protobuf__Struct *s =
            google__protobuf__struct__unpack(NULL, wire_len(&w), w.buf + w.start);
        assert_non_null(s);
        assert_int_equal(s->n_fields, 0);
        google__protobuf__struct__free_unpacked(s, NULL);
    }
    free(w.buf);
}

/* Where the walk stops without an error, protobuf-c refuses the bytes, and before it unpacks
 * anything of that message: the assumption pbdepth.c rests on. */
static void test_stops_only_where_protobuf_c_refuses(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[4];
        size_t len;
        bool cut; /* a truncation: only a flaw at the very end */
    } flaws[] = {
        {"varint value cut", {0x10, 0x80}, 2, true},
        {"key cut", {0x80}, 1, true},
        {"fixed64 cut", {0x09, 0x01, 0x02}, 3, true},
        {"fixed32 cut", {0x0d, 0x01}, 2, true},
        {"length past the end", {0x12, 0x7f}, 2, true},
        {"start group", {0x0b}, 1, false},
        {"end group", {0x0c}, 1, false},
        {"wire type 6", {0x0e}, 1, false},
        {"wire type 7", {0x0f}, 1, false},
    };

    (void)state;
    for (size_t i = 0; i < N(flaws); i++) {
        struct wire w;
        Google__Protobuf__ListValue *l;

        /* [too-deep value][flaw]: what comes before a flaw is still checked. */
        wire_init(&w, 4096);
        prepend(&w, flaws[i].bytes, flaws[i].len);
        {
            struct wire deep;
            wire_init(&deep, 4096);
            value_chain(&deep, 10);
            wrap(&deep, LIST_VALUES);
            prepend(&w, deep.buf + deep.start, wire_len(&deep));
            free(deep.buf);
        }
        if (pbdepth_check(&google__protobuf__list_value__descriptor, w.buf + w.start, wire_len(&w),
                          8, NULL) != -EINVAL)
            fail_msg("%s: a too-deep value before the flaw passed", flaws[i].name);
        free(w.buf);

        /* A flaw, then (unless it is a truncation) 20000 nested lists the walk never sees:
         * protobuf-c must refuse without recursing into them (it would overflow the stack). */
        wire_init(&w, 256 * 1024);
        if (!flaws[i].cut) {
            value_chain(&w, 20000);
            wrap(&w, LIST_VALUES);
        }
        prepend(&w, flaws[i].bytes, flaws[i].len);
        if (pbdepth_check(&google__protobuf__list_value__descriptor, w.buf + w.start, wire_len(&w),
                          8, NULL) != 0)
            fail_msg("%s: refused", flaws[i].name);
        l = google__protobuf__list_value__unpack(NULL, wire_len(&w), w.buf + w.start);
        if (l) {
            google__protobuf__list_value__free_unpacked(l, NULL);
            fail_msg("%s: protobuf-c accepted bytes pbdepth stops at", flaws[i].name);
        }
        free(w.buf);
    }
}

static void test_empty_and_flat(void **state)
{
    static const uint8_t flat[] = {0x12, 0x05, 's', 'p', 'a', 'r', 'k', 0x38, 0x01};

    (void)state;
    assert_int_equal(
        pbdepth_check(&flyteidl__admin__create_task_request__descriptor, NULL, 0, 1, NULL), 0);
    assert_int_equal(
        pbdepth_check(&flyteidl__core__task_template__descriptor, flat, sizeof(flat), 1, NULL), 0);
    assert_int_equal(
        pbdepth_check(&flyteidl__core__task_template__descriptor, flat, sizeof(flat), 0, NULL),
        -EINVAL);
}

/* ---- pbdepth_check_strings ---- */

/* A field (key, then a one-byte length) holding len bytes of s. */
static size_t field(uint8_t *out, uint8_t key, const void *s, size_t len)
{
    assert_true(len < 0x80);
    out[0] = key;
    out[1] = (uint8_t)len;
    memcpy(out + 2, s, len);
    return len + 2;
}

/* A CreateTaskRequest {template {type: type, custom {fields {key: key, value {string_value:
 * value}}}, container {args: "ok", args: arg}}}, written by hand with explicit lengths so that
 * NULs and bytes that are not UTF-8 go through as they are. */
static size_t create_with(uint8_t *out, const char *type, size_t type_len, const char *key,
                          size_t key_len, const char *value, size_t value_len, const char *arg,
                          size_t arg_len)
{
    uint8_t value_msg[128], entry[128], custom[128], container[128], template_[512];
    size_t n, e, c, k, t;

    n = field(value_msg, 0x1a, value, value_len); /* Value.string_value = 3 */
    e = field(entry, ENTRY_KEY, key, key_len);
    e += field(entry + e, ENTRY_VALUE, value_msg, n);
    c = field(custom, STRUCT_FIELDS, entry, e);
    k = field(container, 0x1a, "ok", 2); /* Container.args = 3 */
    k += field(container + k, 0x1a, arg, arg_len);
    t = field(template_, TEMPLATE_TYPE, type, type_len);
    t += field(template_ + t, TEMPLATE_CUSTOM, custom, c);
    t += field(template_ + t, 0x32, container, k); /* TaskTemplate.container = 6 */
    return field(out, CREATE_TEMPLATE, template_, t);
}

#define S(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Each string fault is named by the path a user can find in their task, map key included. */
static void test_strings_named(void **state)
{
    struct bytes {
        const char *s;
        size_t len;
    };
    static const struct {
        struct bytes type, key, value, arg;
        const char *expected; /* NULL: accepted */
    } cases[] = {
        {S("spark"), S("databricksInstance"), S("dbc-1.cloud.databricks.com"),
         S("caf\xc3\xa9 \xf0\x9f\x98\x80"), NULL},
        {S("sp\xff"
           "rk"),
         S("k"), S("v"), S("a"),
         "field template.type is not valid UTF-8 (proto3 strings must be UTF-8)"},
        {S("spark"), S("databricksInstance"), S("evil.example.com\0.cloud.databricks.com"), S("a"),
         "field template.custom.fields[\"databricksInstance\"].string_value contains a NUL byte "
         "(proto3 strings must be UTF-8)"},
        {S("spark"), S("k\xc3"), S("v"), S("a"),
         "field template.custom.fields[\"k\\xc3\"].key is not valid UTF-8 (proto3 strings must be "
         "UTF-8)"},
        {S("spark"), S("k"), S("v"), S("\xed\xa0\x80"),
         "field template.container.args[1] is not valid UTF-8 (proto3 strings must be UTF-8)"},
        /* a sequence cut by the end of the string, not read past it */
        {S("spark"), S("k"), S("v"), S("\xe2\x82"),
         "field template.container.args[1] is not valid UTF-8 (proto3 strings must be UTF-8)"},
    };

    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        uint8_t buf[1024];
        size_t len =
            create_with(buf, cases[i].type.s, cases[i].type.len, cases[i].key.s, cases[i].key.len,
                        cases[i].value.s, cases[i].value.len, cases[i].arg.s, cases[i].arg.len);
        /* An exact-size copy: ASan catches a read past the last string. */
        uint8_t *exact = malloc(len);
        char *err = NULL;
        int r;

        assert_non_null(exact);
        memcpy(exact, buf, len);
        r = pbdepth_check_strings(&flyteidl__admin__create_task_request__descriptor, exact, len,
                                  PBDEPTH_REQUEST_MAX, &err);
        if (!cases[i].expected) {
            Flyteidl__Admin__CreateTaskRequest *req =
                flyteidl__admin__create_task_request__unpack(NULL, len, exact);
            assert_int_equal(r, 0);
            assert_null(err);
            assert_non_null(req); /* the hand-written bytes are a real request */
            assert_string_equal(req->template_->container->args[1], cases[i].arg.s);
            flyteidl__admin__create_task_request__free_unpacked(req, NULL);
        } else {
            if (r != -EINVAL || !err || strcmp(err, cases[i].expected) != 0)
                fail_msg("case %zu: %d '%s'", i, r, err ? err : "(null)");
        }
        free(err);
        free(exact);
    }
}

/* Only `string` fields are checked: bytes fields (resource_meta) and unknown fields may hold
 * anything, and protobuf-c never hands unknown ones to the daemon. */
static void test_strings_only_string_fields(void **state)
{
    uint8_t buf[64];
    size_t n = 0;
    char *err = NULL;

    (void)state;
    n += field(buf + n, 0x12, "\xff\x00\xfe", 3); /* GetTaskRequest.resource_meta = 2, bytes */
    n += field(buf + n, 0x7a, "\xff", 1);         /* field 15: unknown */
    assert_int_equal(pbdepth_check_strings(&flyteidl__admin__get_task_request__descriptor, buf, n,
                                           PBDEPTH_REQUEST_MAX, &err),
                     0);
    n += field(buf + n, 0x0a, "sp\x00rk", 5); /* task_type = 1, a string */
    assert_int_equal(pbdepth_check_strings(&flyteidl__admin__get_task_request__descriptor, buf, n,
                                           PBDEPTH_REQUEST_MAX, &err),
                     -EINVAL);
    assert_string_equal(err, "field task_type contains a NUL byte (proto3 strings must be UTF-8)");
    free(err);
    /* An empty message and the deep one are handled as pbdepth_check() handles them. */
    assert_int_equal(pbdepth_check_strings(&flyteidl__admin__get_task_request__descriptor, buf, 0,
                                           PBDEPTH_REQUEST_MAX, NULL),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_custom_refused),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_deepest_struct_structjson_accepts_passes),
        cmocka_unit_test(test_non_message_fields_skipped),
        cmocka_unit_test(test_stops_only_where_protobuf_c_refuses),
        cmocka_unit_test(test_empty_and_flat),
        cmocka_unit_test(test_strings_named),
        cmocka_unit_test(test_strings_only_string_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
