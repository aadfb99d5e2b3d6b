/* Unit tests for structjson.c: Struct -> cJSON for every Value kind, cJSON -> Struct and back,
 * the depth limit, NaN/Inf refusal, error paths naming the culprit, and the number printer. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "structjson.h"

/* ---- helpers: build protobuf-c Structs by hand (freed with free_struct below) ---- */

static Google__Protobuf__Value *new_value(Google__Protobuf__Value__KindCase kind)
{
    Google__Protobuf__Value *v = calloc(1, sizeof(*v));

    assert_non_null(v);
    google__protobuf__value__init(v);
    v->kind_case = kind;
    return v;
}

static Google__Protobuf__Value *num(double x)
{
    Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    v->number_value = x;
    return v;
}

static Google__Protobuf__Value *str(const char *s)
{
    Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
    v->string_value = strdup(s);
    return v;
}

static Google__Protobuf__Value *boolean(int b)
{
    Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    v->bool_value = b;
    return v;
}

static Google__Protobuf__Struct *new_struct(void)
{
    Google__Protobuf__Struct *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    google__protobuf__struct__init(s);
    return s;
}

static void put(Google__Protobuf__Struct *s, const char *key, Google__Protobuf__Value *v)
{
    Google__Protobuf__Struct__FieldsEntry *e = calloc(1, sizeof(*e));

    assert_non_null(e);
    google__protobuf__struct__fields_entry__init(e);
    e->key = strdup(key);
    e->value = v;
    s->fields = realloc(s->fields, (s->n_fields + 1) * sizeof(*s->fields));
    assert_non_null(s->fields);
    s->fields[s->n_fields++] = e;
}

static Google__Protobuf__Value *struct_value(Google__Protobuf__Struct *s)
{
    Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    v->struct_value = s;
    return v;
}

static Google__Protobuf__Value *list_value(size_t n, Google__Protobuf__Value **items)
{
    Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    Google__Protobuf__ListValue *l = calloc(1, sizeof(*l));

    assert_non_null(l);
    google__protobuf__list_value__init(l);
    l->n_values = n;
    l->values = calloc(n ? n : 1, sizeof(*l->values));
    if (n > 0) /* memcpy's source must not be NULL even for 0 bytes (UBSan) */
        memcpy(l->values, items, n * sizeof(*items));
    v->list_value = l;
    return v;
}

/* Uses protobuf-c's own free, which frees with the default (malloc) allocator: that also
 * proves our hand-built trees are ordinary protobuf-c messages. */
static void free_struct(Google__Protobuf__Struct *s)
{
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    assert_non_null(j);
    return j;
}

static void assert_json_equal(const cJSON *got, const char *expected_text)
{
    cJSON *expected = parse(expected_text);
    char *printed = cJSON_PrintUnformatted(got);

    if (!cJSON_Compare(got, expected, 1))
        fail_msg("got %s, expected %s", printed, expected_text);
    free(printed);
    cJSON_Delete(expected);
}

/* ---- Struct -> cJSON ---- */

static void test_to_cjson_every_kind(void **state)
{
    Google__Protobuf__Struct *s = new_struct(), *inner = new_struct();
    Google__Protobuf__Value *items[4];
    cJSON *j = NULL;
    char *err = NULL;

    (void)state;
    put(inner, "x", num(-1.5));
    items[0] = num(1);
    items[1] = str("two");
    items[2] = new_value(GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    items[3] = boolean(0);
    put(s, "n", num(2));
    put(s, "s", str("hé \"q\""));
    put(s, "t", boolean(1));
    put(s, "f", boolean(0));
    put(s, "z", new_value(GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE));
    put(s, "unset", new_value(GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET));
    put(s, "missing", NULL);
    put(s, "o", struct_value(inner));
    put(s, "l", list_value(4, items));
    put(s, "empty_o", struct_value(new_struct()));
    put(s, "empty_l", list_value(0, NULL));

    assert_int_equal(structjson_to_cjson(s, &j, &err), 0);
    assert_null(err);
    assert_json_equal(j, "{\"n\":2,\"s\":\"hé \\\"q\\\"\",\"t\":true,\"f\":false,\"z\":null,"
                         "\"unset\":null,\"missing\":null,\"o\":{\"x\":-1.5},"
                         "\"l\":[1,\"two\",null,false],\"empty_o\":{},\"empty_l\":[]}");
    cJSON_Delete(j);
    free_struct(s);
}

static void test_to_cjson_duplicate_key_last_wins(void **state)
{
    Google__Protobuf__Struct *s = new_struct();
    cJSON *j = NULL;

    (void)state;
    put(s, "a", num(1));
    put(s, "b", num(2));
    put(s, "a", str("last"));
    assert_int_equal(structjson_to_cjson(s, &j, NULL), 0);
    assert_json_equal(j, "{\"a\":\"last\",\"b\":2}");
    assert_string_equal(j->child->string, "a"); /* first position kept */
    cJSON_Delete(j);
    free_struct(s);
}

static void test_to_cjson_non_finite(void **state)
{
    const double bad[] = {NAN, INFINITY, -INFINITY};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Google__Protobuf__Struct *s = new_struct(), *inner = new_struct();
        Google__Protobuf__Value *items[2] = {num(1), num(bad[i])};
        cJSON *j = (cJSON *)0x1;
        char *err = NULL;

        put(inner, "workers", list_value(2, items));
        put(s, "conf", struct_value(inner));
        assert_int_equal(structjson_to_cjson(s, &j, &err), -EINVAL);
        assert_ptr_equal(j, (cJSON *)0x1);
        assert_non_null(err);
        assert_non_null(strstr(err, "conf.workers[1]"));
        assert_non_null(strstr(err, "NaN or infinite"));
        free(err);
        free_struct(s);
    }
}

/* depth structs nested as {"k":{"k":...{}}}, counting the top one. */
static Google__Protobuf__Struct *nested_structs(int depth)
{
    Google__Protobuf__Struct *top = new_struct(), *cur = top;

    for (int i = 1; i < depth; i++) {
        Google__Protobuf__Struct *next = new_struct();
        put(cur, "k", struct_value(next));
        cur = next;
    }
    return top;
}

static void test_to_cjson_depth_limit(void **state)
{
    Google__Protobuf__Struct *ok = nested_structs(STRUCTJSON_MAX_DEPTH);
    Google__Protobuf__Struct *deep = nested_structs(STRUCTJSON_MAX_DEPTH + 1);
    Google__Protobuf__Struct *deep_list = nested_structs(STRUCTJSON_MAX_DEPTH);
    Google__Protobuf__Struct *leaf = deep_list;
    cJSON *j = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(STRUCTJSON_MAX_DEPTH, 64);
    assert_int_equal(structjson_to_cjson(ok, &j, &err), 0);
    cJSON_Delete(j);
    j = NULL;

    assert_int_equal(structjson_to_cjson(deep, &j, &err), -EINVAL);
    assert_null(j);
    assert_non_null(strstr(err, "deeper than 64 levels"));
    assert_non_null(strstr(err, "k.k.k"));
    free(err);
    err = NULL;

    /* A list counts as a level too. */
    while (leaf->n_fields)
        leaf = leaf->fields[0]->value->struct_value;
    put(leaf, "l", list_value(0, NULL));
    assert_int_equal(structjson_to_cjson(deep_list, &j, &err), -EINVAL);
    assert_non_null(strstr(err, "deeper than 64 levels"));
    free(err);

    free_struct(ok);
    free_struct(deep);
    free_struct(deep_list);
}

static void test_to_cjson_null_input(void **state)
{
    cJSON *j = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(structjson_to_cjson(NULL, &j, &err), -EINVAL);
    assert_non_null(err);
    free(err);
}

/* ---- cJSON -> Struct ---- */

static void test_from_cjson_round_trip(void **state)
{
    static const char *const docs[] = {
        "{}",
        "{\"databricksConf\":{\"new_cluster\":{\"num_workers\":2,\"spark_conf\":{}},"
        "\"libraries\":[{\"pypi\":{\"package\":\"pandas\"}}],\"x\":[[],[1,[2,[3]]]]},"
        "\"b\":true,\"f\":false,\"n\":null,\"s\":\"\",\"d\":-0.25,\"u\":\"\\u00e9\\n\"}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *in = parse(docs[i]), *out = NULL;
        Google__Protobuf__Struct *s = NULL;
        char *err = NULL;

        assert_int_equal(structjson_from_cjson(in, &s, &err), 0);
        assert_null(err);
        assert_non_null(s);
        assert_int_equal(structjson_to_cjson(s, &out, &err), 0);
        assert_true(cJSON_Compare(in, out, 1));
        cJSON_Delete(out);
        cJSON_Delete(in);
        structjson_struct_free(s);
    }
}

static void test_from_cjson_kinds(void **state)
{
    cJSON *in = parse("{\"n\":2,\"s\":\"x\",\"t\":true,\"z\":null,\"o\":{\"a\":1},\"l\":[1]}");
    Google__Protobuf__Struct *s = NULL;
    static const Google__Protobuf__Value__KindCase expected[] = {
        GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
        GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE,   GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE,
        GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE,
    };
    uint8_t *wire;
    size_t len;
    Google__Protobuf__Struct *back;

    (void)state;
    assert_int_equal(structjson_from_cjson(in, &s, NULL), 0);
    assert_int_equal(s->n_fields, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(s->fields[i]->value->kind_case, expected[i]);
    assert_string_equal(s->fields[0]->key, "n");
    assert_true(s->fields[0]->value->number_value == 2.0);
    assert_string_equal(s->fields[1]->value->string_value, "x");
    assert_true(s->fields[2]->value->bool_value);

    /* What we build is a valid message: it packs and unpacks to the same shape. */
    len = google__protobuf__struct__get_packed_size(s);
    wire = malloc(len);
    assert_int_equal(google__protobuf__struct__pack(s, wire), len);
    back = google__protobuf__struct__unpack(NULL, len, wire);
    assert_non_null(back);
    assert_int_equal(back->n_fields, 6);
    assert_string_equal(back->fields[4]->value->struct_value->fields[0]->key, "a");
    google__protobuf__struct__free_unpacked(back, NULL);
    free(wire);

    structjson_struct_free(s);
    cJSON_Delete(in);
}

static void test_from_cjson_refusals(void **state)
{
    static const char *const not_objects[] = {"[]", "1", "\"s\"", "null", "true"};
    cJSON *in, *deep, *cur;
    Google__Protobuf__Struct *s = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(structjson_from_cjson(NULL, &s, &err), -EINVAL);
    assert_non_null(err);
    free(err);
    for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
        err = NULL;
        in = parse(not_objects[i]);
        assert_int_equal(structjson_from_cjson(in, &s, &err), -EINVAL);
        assert_non_null(err);
        assert_null(s);
        free(err);
        cJSON_Delete(in);
    }

    /* Raw items and non-finite numbers, named by path; partial results are freed (valgrind). */
    in = parse("{\"a\":{\"b\":[1,2]},\"c\":1}");
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(in, "a"), "b"),
                         cJSON_CreateRaw("1"));
    err = NULL;
    assert_int_equal(structjson_from_cjson(in, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "'a.b[2]'"));
    free(err);
    cJSON_Delete(in);

    in = parse("{\"a\":1}");
    cJSON_AddItemToObject(in, "bad", cJSON_CreateNumber(NAN));
    err = NULL;
    assert_int_equal(structjson_from_cjson(in, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "'bad'"));
    free(err);
    cJSON_Delete(in);

    /* 64 levels pass, 65 do not. */
    deep = cJSON_CreateObject();
    cur = deep;
    for (int i = 1; i < STRUCTJSON_MAX_DEPTH; i++)
        cur = cJSON_AddObjectToObject(cur, "k");
    assert_int_equal(structjson_from_cjson(deep, &s, NULL), 0);
    s = structjson_struct_free(s);
    assert_null(s);
    cJSON_AddArrayToObject(cur, "one_more");
    err = NULL;
    assert_int_equal(structjson_from_cjson(deep, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "deeper than 64 levels"));
    assert_null(s);
    free(err);
    cJSON_Delete(deep);

    assert_null(structjson_struct_free(NULL));
}

/* ---- printing ---- */

static void test_print_numbers(void **state)
{
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {2.0, "2"},
        {-7.0, "-7"},
        {0.0, "0"},
        {-0.0, "0"},
        {3e9, "3000000000"},
        {1e15, "1000000000000000"},
        {9007199254740991.0, "9007199254740991"}, /* 2^53 - 1 */
        {-9007199254740991.0, "-9007199254740991"},
        {0.5, "0.5"},
        {1e-7, "1e-07"},
        {1e300, "1e+300"},
        {0.1, "0.1"},
        {123.456, "123.456"},
        {9007199254740992.0, "9007199254740992"},         /* 2^53: %.16g, shortest */
        {1152921504606846976.0, "1.152921504606847e+18"}, /* 2^60 */
        {1.0 / 3.0, "0.3333333333333333"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *n = cJSON_CreateNumber(cases[i].value);
        char expected[128];
        char *text;

        cJSON_AddNumberToObject(obj, "num_workers", cases[i].value);
        text = structjson_print(obj);
        snprintf(expected, sizeof(expected), "{\"num_workers\":%s}", cases[i].text);
        assert_string_equal(text, expected);
        free(text);

        /* A bare number prints the same way, and reads back to the same double. */
        text = structjson_print(n);
        assert_string_equal(text, cases[i].text);
        assert_true(strtod(text, NULL) == cases[i].value);
        free(text);
        cJSON_Delete(n);
        cJSON_Delete(obj);
    }
}

static void test_print_tree(void **state)
{
    cJSON *in = parse("{\"a\":[1.0,2.5,{\"b\":3e9,\"c\":\"x\\\"y\"}],\"t\":true,\"n\":null,"
                      "\"e\":{},\"l\":[]}");
    char *before = cJSON_PrintUnformatted(in);
    char *text = structjson_print(in);
    char *after = cJSON_PrintUnformatted(in);
    cJSON *nan_obj = cJSON_CreateObject();

    (void)state;
    assert_string_equal(text, "{\"a\":[1,2.5,{\"b\":3000000000,\"c\":\"x\\\"y\"}],\"t\":true,"
                              "\"n\":null,\"e\":{},\"l\":[]}");
    assert_string_equal(before, after); /* input untouched */
    free(text);
    free(before);
    free(after);
    cJSON_Delete(in);

    cJSON_AddNumberToObject(nan_obj, "x", NAN);
    text = structjson_print(nan_obj);
    assert_string_equal(text, "{\"x\":null}");
    free(text);
    cJSON_Delete(nan_obj);

    assert_null(structjson_print(NULL));
}

/* The whole path a task's custom config takes: Struct (user's 2 is 2.0) -> cJSON -> text. */
static void test_struct_to_text(void **state)
{
    Google__Protobuf__Struct *s = new_struct(), *cluster = new_struct();
    cJSON *j = NULL;
    char *text;

    (void)state;
    put(cluster, "num_workers", num(2));
    put(cluster, "autotermination_minutes", num(1e15));
    put(s, "new_cluster", struct_value(cluster));
    assert_int_equal(structjson_to_cjson(s, &j, NULL), 0);
    text = structjson_print(j);
    assert_string_equal(text, "{\"new_cluster\":{\"num_workers\":2,"
                              "\"autotermination_minutes\":1000000000000000}}");
    free(text);
    cJSON_Delete(j);
    free_struct(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_cjson_every_kind),
        cmocka_unit_test(test_to_cjson_duplicate_key_last_wins),
        cmocka_unit_test(test_to_cjson_non_finite),
        cmocka_unit_test(test_to_cjson_depth_limit),
        cmocka_unit_test(test_to_cjson_null_input),
        cmocka_unit_test(test_from_cjson_round_trip),
        cmocka_unit_test(test_from_cjson_kinds),
        cmocka_unit_test(test_from_cjson_refusals),
        cmocka_unit_test(test_print_numbers),
        cmocka_unit_test(test_print_tree),
        cmocka_unit_test(test_struct_to_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
