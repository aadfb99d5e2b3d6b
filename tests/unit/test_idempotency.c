/* Unit tests for idempotency.c: golden tokens computed independently (Python hashlib over the
 * encoding documented in idempotency.c, and Python hmac for the keyed tokens), determinism,
 * sensitivity to every field, no ambiguity at field boundaries, and the refusals. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "idempotency.h"

static const struct idempotency_task_execution base = {
    .project = "flytesnacks",
    .domain = "development",
    .execution_name = "f6a1b2c3d4e5f6a7b8c9",
    .node_id = "n0",
    .task_project = "flytesnacks",
    .task_domain = "development",
    .task_name = "workflows.spark.hello",
    .task_version = "v1.2.3",
    .org = NULL,
    .retry_attempt = 0,
};

static void token_of(const struct idempotency_task_execution *id, char out[IDEMPOTENCY_TOKEN_SIZE])
{
    assert_int_equal(idempotency_token(id, NULL, 0, out), 0);
}

/*
 * Expected values from:
 *   ns = lambda s: str(len(s.encode())).encode() + b":" + s.encode() + b","
 *   hashlib.sha256(b"".join(ns(f) for f in ["fdc-idem-v1", *fields, str(retry)])).hexdigest()
 */
static void test_golden(void **state)
{
    static const struct {
        struct idempotency_task_execution id;
        const char *token;
    } cases[] = {
        {{.project = "flytesnacks",
          .domain = "development",
          .execution_name = "f6a1b2c3d4e5f6a7b8c9",
          .node_id = "n0",
          .task_project = "flytesnacks",
          .task_domain = "development",
          .task_name = "workflows.spark.hello",
          .task_version = "v1.2.3"},
         "39a6f5f40b9640a6d175476c4206646fd947b8f94555885874d2a6c405efa2b5"},
        {{.project = "p",
          .domain = "d",
          .execution_name = "e",
          .node_id = "n",
          .retry_attempt = UINT32_MAX},
         "d701ef0be80396c7155c7eb9686ae59ac86da545af378568d904ad05a02d9484"},
        {{.execution_name = "exec", .node_id = "node-1", .org = "my-org", .retry_attempt = 2},
         "fe63f446c804978ef254f353465f2bbcac2516d062e3289177bf341b07fb3194"},
        /* longer than one 64-byte SHA-256 block, with multi-byte UTF-8 */
        {{.project = "proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
          .domain = "d",
          .execution_name = "exec-caf\xc3\xa9",
          .node_id = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
          .retry_attempt = 7},
         "62060b2e2b3b77fd7013ff0d72598a6d87709380ab53f90ed40a67b0f766e14e"},
    };
    char token[IDEMPOTENCY_TOKEN_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        token_of(&cases[i].id, token);
        assert_string_equal(token, cases[i].token);
    }
}

/*
 * With a key: HMAC-SHA256 of the same encoding, expected values from
 *   hmac.new(key, b"".join(ns(f) for f in [...]), hashlib.sha256).hexdigest()
 * The plain token of the first id (39a6f5f4..., test_golden) must not come out.
 */
static void test_golden_hmac(void **state)
{
    static const unsigned char long_key[100] = {
        1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
        61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80,
        81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100,
    };
    static const struct idempotency_task_execution small = {.project = "p",
                                                            .domain = "d",
                                                            .execution_name = "e",
                                                            .node_id = "n",
                                                            .retry_attempt = UINT32_MAX};
    static const struct {
        const struct idempotency_task_execution *id;
        const void *key;
        size_t key_len;
        const char *token;
    } cases[] = {
        {&base, "0123456789abcdef0123456789abcdef", 32,
         "1ec3b01a4bda90e26c10aa1860f3cf0d9d55c2d5caa719d32653ea45b14aa968"},
        {&base, "another-key-of-at-least-32-bytes!!", 34,
         "9717d2fb82e75b6518943bbba0beaa2bd98d8d9299e57e36e34a709bd20f3774"},
        /* a key longer than SHA-256's 64-byte block, which HMAC hashes first */
        {&small, long_key, sizeof(long_key),
         "dd96f41204cc196e414a227043dcdea6662ad90b6fd10fbaf339343169845fd4"},
    };
    char token[IDEMPOTENCY_TOKEN_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(idempotency_token(cases[i].id, cases[i].key, cases[i].key_len, token), 0);
        assert_string_equal(token, cases[i].token);
    }
}

static void test_shape_and_determinism(void **state)
{
    char a[IDEMPOTENCY_TOKEN_SIZE], b[IDEMPOTENCY_TOKEN_SIZE];
    struct idempotency_task_execution copy = base;

    (void)state;
    token_of(&base, a);
    assert_int_equal(strlen(a), 64);
    for (size_t i = 0; i < 64; i++)
        assert_true(isdigit((unsigned char)a[i]) || (a[i] >= 'a' && a[i] <= 'f'));
    token_of(&copy, b);
    assert_string_equal(a, b);
}

/* NULL and "" are the same field value. */
static void test_null_is_empty(void **state)
{
    struct idempotency_task_execution with_null = base, with_empty = base;
    char a[IDEMPOTENCY_TOKEN_SIZE], b[IDEMPOTENCY_TOKEN_SIZE];

    (void)state;
    with_null.org = NULL;
    with_empty.org = "";
    token_of(&with_null, a);
    token_of(&with_empty, b);
    assert_string_equal(a, b);
}

/* Every field, one at a time, must change the token. */
static void test_every_field_matters(void **state)
{
    static const size_t offsets[] = {
        offsetof(struct idempotency_task_execution, project),
        offsetof(struct idempotency_task_execution, domain),
        offsetof(struct idempotency_task_execution, execution_name),
        offsetof(struct idempotency_task_execution, node_id),
        offsetof(struct idempotency_task_execution, task_project),
        offsetof(struct idempotency_task_execution, task_domain),
        offsetof(struct idempotency_task_execution, task_name),
        offsetof(struct idempotency_task_execution, task_version),
        offsetof(struct idempotency_task_execution, org),
    };
    char reference[IDEMPOTENCY_TOKEN_SIZE], token[IDEMPOTENCY_TOKEN_SIZE];
    struct idempotency_task_execution id;

    (void)state;
    token_of(&base, reference);
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        id = base;
        memcpy((char *)&id + offsets[i], &(const char *){"changed"}, sizeof(const char *));
        token_of(&id, token);
        assert_string_not_equal(token, reference);
    }
    id = base;
    id.retry_attempt = 1;
    token_of(&id, token);
    assert_string_not_equal(token, reference);
}

/* The same text placed in a different field, or split at a different place, differs. */
static void test_no_boundary_ambiguity(void **state)
{
    struct idempotency_task_execution a = {.execution_name = "ab", .node_id = "c"};
    struct idempotency_task_execution b = {.execution_name = "a", .node_id = "bc"};
    struct idempotency_task_execution c = {.project = "x", .execution_name = "e", .node_id = "n"};
    struct idempotency_task_execution d = {.domain = "x", .execution_name = "e", .node_id = "n"};
    /* A field that looks like a length-prefixed encoding itself. */
    struct idempotency_task_execution e = {.execution_name = "e", .node_id = "n,1:x"};
    struct idempotency_task_execution f = {
        .execution_name = "e", .node_id = "n", .task_project = "x"};
    char ta[IDEMPOTENCY_TOKEN_SIZE], tb[IDEMPOTENCY_TOKEN_SIZE];

    (void)state;
    token_of(&a, ta);
    token_of(&b, tb);
    assert_string_not_equal(ta, tb);
    token_of(&c, ta);
    token_of(&d, tb);
    assert_string_not_equal(ta, tb);
    token_of(&e, ta);
    token_of(&f, tb);
    assert_string_not_equal(ta, tb);
}

static void test_refusals(void **state)
{
    char token[IDEMPOTENCY_TOKEN_SIZE] = "untouched";
    struct idempotency_task_execution id;

    (void)state;
    assert_int_equal(idempotency_token(NULL, NULL, 0, token), -EINVAL);
    id = base;
    id.execution_name = NULL;
    assert_int_equal(idempotency_token(&id, NULL, 0, token), -EINVAL);
    id.execution_name = "";
    assert_int_equal(idempotency_token(&id, NULL, 0, token), -EINVAL);
    id = base;
    id.node_id = NULL;
    assert_int_equal(idempotency_token(&id, NULL, 0, token), -EINVAL);
    id.node_id = "";
    assert_int_equal(idempotency_token(&id, NULL, 0, token), -EINVAL);
    assert_string_equal(token, "untouched");

    /* Everything else empty is still enough. */
    id = (struct idempotency_task_execution){.execution_name = "e", .node_id = "n"};
    assert_int_equal(idempotency_token(&id, NULL, 0, token), 0);
}

/* The execution the from_metadata tests build as messages: p/d/e, node n0, task tp/td/t/v, org
 * o, attempt 2. */
static const struct idempotency_task_execution metadata_key = {
    .project = "p",
    .domain = "d",
    .execution_name = "e",
    .node_id = "n0",
    .task_project = "tp",
    .task_domain = "td",
    .task_name = "t",
    .task_version = "v",
    .org = "o",
    .retry_attempt = 2,
};

/* The walk from a request's task_execution_metadata picks the same fields. */
static void test_from_metadata(void **state)
{
    Flyteidl__Admin__TaskExecutionMetadata metadata =
        FLYTEIDL__ADMIN__TASK_EXECUTION_METADATA__INIT;
    Flyteidl__Core__TaskExecutionIdentifier id = FLYTEIDL__CORE__TASK_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__NodeExecutionIdentifier node = FLYTEIDL__CORE__NODE_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__WorkflowExecutionIdentifier execution =
        FLYTEIDL__CORE__WORKFLOW_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__Identifier task = FLYTEIDL__CORE__IDENTIFIER__INIT;
    char from_metadata[IDEMPOTENCY_TOKEN_SIZE], direct[IDEMPOTENCY_TOKEN_SIZE];
    (void)state;

    assert_int_equal(idempotency_token_from_metadata(NULL, NULL, 0, from_metadata), -EINVAL);
    assert_int_equal(idempotency_token_from_metadata(&metadata, NULL, 0, from_metadata), -EINVAL);
    execution.project = (char *)"p";
    execution.domain = (char *)"d";
    execution.name = (char *)"e";
    execution.org = (char *)"o";
    node.node_id = (char *)"n0";
    node.execution_id = &execution;
    task.project = (char *)"tp";
    task.domain = (char *)"td";
    task.name = (char *)"t";
    task.version = (char *)"v";
    id.node_execution_id = &node;
    id.task_id = &task;
    id.retry_attempt = 2;
    metadata.task_execution_id = &id;
    assert_int_equal(idempotency_token_from_metadata(&metadata, NULL, 0, from_metadata), 0);
    assert_int_equal(idempotency_token(&metadata_key, NULL, 0, direct), 0);
    assert_string_equal(from_metadata, direct);
    /* The key goes through to the same HMAC. */
    assert_int_equal(idempotency_token_from_metadata(&metadata, "0123456789abcdef0123456789abcdef",
                                                     32, from_metadata),
                     0);
    assert_int_equal(
        idempotency_token(&metadata_key, "0123456789abcdef0123456789abcdef", 32, direct), 0);
    assert_string_equal(from_metadata, direct);
    id.retry_attempt = 3;
    assert_int_equal(idempotency_token_from_metadata(&metadata, NULL, 0, from_metadata), 0);
    assert_string_not_equal(from_metadata, direct);
}

/* Flyte 2's walk picks the same fields from its own messages. */
static void test_from_metadata2(void **state)
{
    Flyteidl2__Connector__TaskExecutionMetadata metadata =
        FLYTEIDL2__CONNECTOR__TASK_EXECUTION_METADATA__INIT;
    Flyteidl2__Core__TaskExecutionIdentifier id = FLYTEIDL2__CORE__TASK_EXECUTION_IDENTIFIER__INIT;
    Flyteidl2__Core__NodeExecutionIdentifier node =
        FLYTEIDL2__CORE__NODE_EXECUTION_IDENTIFIER__INIT;
    Flyteidl2__Core__WorkflowExecutionIdentifier execution =
        FLYTEIDL2__CORE__WORKFLOW_EXECUTION_IDENTIFIER__INIT;
    Flyteidl2__Core__Identifier task = FLYTEIDL2__CORE__IDENTIFIER__INIT;
    char from_metadata[IDEMPOTENCY_TOKEN_SIZE], direct[IDEMPOTENCY_TOKEN_SIZE];
    (void)state;

    assert_int_equal(idempotency_token(&metadata_key, NULL, 0, direct), 0);
    assert_int_equal(idempotency_token_from_metadata2(NULL, NULL, 0, from_metadata), -EINVAL);
    assert_int_equal(idempotency_token_from_metadata2(&metadata, NULL, 0, from_metadata), -EINVAL);
    execution.project = (char *)"p";
    execution.domain = (char *)"d";
    execution.name = (char *)"e";
    execution.org = (char *)"o";
    node.node_id = (char *)"n0";
    node.execution_id = &execution;
    id.node_execution_id = &node;
    metadata.task_execution_id = &id;
    /* Without a task id, its four fields are empty. */
    assert_int_equal(idempotency_token_from_metadata2(&metadata, NULL, 0, from_metadata), 0);
    assert_string_not_equal(from_metadata, direct);
    task.project = (char *)"tp";
    task.domain = (char *)"td";
    task.name = (char *)"t";
    task.version = (char *)"v";
    id.task_id = &task;
    id.retry_attempt = 2;
    assert_int_equal(idempotency_token_from_metadata2(&metadata, NULL, 0, from_metadata), 0);
    assert_string_equal(from_metadata, direct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_golden_hmac),
        cmocka_unit_test(test_shape_and_determinism),
        cmocka_unit_test(test_null_is_empty),
        cmocka_unit_test(test_every_field_matters),
        cmocka_unit_test(test_no_boundary_ambiguity),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_from_metadata),
        cmocka_unit_test(test_from_metadata2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
