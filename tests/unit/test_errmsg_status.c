/*
 * test_errmsg_status.c - the shared helpers: error message formatting and
 * gRPC status names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errmsg.h"
#include "status.h"

static void test_errmsg_set_returns_error_and_message(void **state)
{
    char *message = NULL;
    (void)state;
    assert_int_equal(errmsg_set(&message, -EINVAL, "bad %s %d", "value", 7), -EINVAL);
    assert_string_equal(message, "bad value 7");
    free(message);
    /* A caller that does not want the message may pass NULL. */
    assert_int_equal(errmsg_set(NULL, -ENOENT, "ignored"), -ENOENT);
}

static void test_errmsg_format(void **state)
{
    char *s;
    (void)state;
    s = errmsg_format("%s:%d", "host", 443);
    assert_string_equal(s, "host:443");
    free(s);
}

static void test_status_names(void **state)
{
    (void)state;
    /* Written from the gRPC protocol's code list, not from status.c. */
    static const struct {
        int code;
        const char *name;
    } expected[] = {
        {0, "OK"},         {1, "CANCELLED"},          {2, "UNKNOWN"},
        {3, "INVALID_ARGUMENT"}, {4, "DEADLINE_EXCEEDED"}, {5, "NOT_FOUND"},
        {6, "ALREADY_EXISTS"}, {7, "PERMISSION_DENIED"}, {8, "RESOURCE_EXHAUSTED"},
        {9, "FAILED_PRECONDITION"}, {10, "ABORTED"},   {11, "OUT_OF_RANGE"},
        {12, "UNIMPLEMENTED"}, {13, "INTERNAL"},         {14, "UNAVAILABLE"},
        {15, "DATA_LOSS"},  {16, "UNAUTHENTICATED"},
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        assert_string_equal(status_name((grpc_status_code)expected[i].code), expected[i].name);
    assert_int_equal(STATUS_CODES, 17);
    assert_string_equal(status_name((grpc_status_code)17), "UNKNOWN");
    assert_string_equal(status_name((grpc_status_code)-1), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errmsg_set_returns_error_and_message),
        cmocka_unit_test(test_errmsg_format),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
