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

/* An outcome, not an error, comes back with its message. */
static void test_errmsg_give_returns_outcome_and_message(void **state)
{
    char *message = NULL;
    (void)state;
    assert_int_equal(errmsg_give(&message, 3, "HTTP %d", 404), 3);
    assert_string_equal(message, "HTTP 404");
    free(message);
}

static void test_errmsg_format(void **state)
{
    char *s;
    (void)state;
    s = errmsg_format("%s:%d", "host", 443);
    assert_string_equal(s, "host:443");
    free(s);
}

static void test_errmsg_format_empty(void **state)
{
    char *s;
    (void)state;
    /* errmsg_format() and errmsg_set() share errmsg_vformat(); an empty result is not NULL. */
    s = errmsg_format("%s", "");
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

/* Expected texts written by hand from the rules in errmsg.h. */
static void test_printable_quoted(void **state)
{
    static const struct {
        const char *in;
        size_t size;
        const char *want;
    } cases[] = {
        {"plain text", 64, "plain text"},
        {NULL, 64, ""},
        {"", 64, ""},
        /* control characters and DEL escaped, newline included */
        {"a\nb\tc\rd\x01\x1f\x7f", 64, "a\\x0ab\\x09c\\x0dd\\x01\\x1f\\x7f"},
        /* quotes and backslashes behind a backslash; the single quote stays */
        {"say \"hi\" \\ it's", 64, "say \\\"hi\\\" \\\\ it's"},
        /* valid UTF-8 kept: 2, 3 and 4 bytes */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 64,
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        /* invalid UTF-8 escaped byte by byte: stray, overlong, surrogate, cut short */
        {"\xff\xc0\xaf", 64, "\\xff\\xc0\\xaf"},
        {"\xed\xa0\x80", 64, "\\xed\\xa0\\x80"},
        {"end \xe2\x82", 64, "end \\xe2\\x82"},
        /* size - 4 bytes of text fit whole; one more and the text is cut with "..." */
        {"abcdef", 10, "abcdef"},
        {"abcdefg", 10, "abcdef..."},
        {"abc", 4, "..."},
        {"", 4, ""},
        /* the cut never splits a character or an escape */
        {"abcde\xc3\xa9", 10, "abcde..."},
        {"abcd\xc3\xa9", 10, "abcd\xc3\xa9"},
        {"abc\n", 10, "abc..."},
        {"ab\n", 10, "ab\\x0a"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];

        memset(buf, '#', sizeof(buf));
        assert_ptr_equal(errmsg_printable(buf, cases[i].size, cases[i].in, ERRMSG_QUOTED), buf);
        assert_string_equal(buf, cases[i].want);
        /* nothing written past the size given */
        for (size_t j = cases[i].size; j < sizeof(buf); j++)
            assert_int_equal(buf[j], '#');
    }
}

static void test_printable_one_line(void **state)
{
    static const struct {
        const char *in;
        size_t size;
        const char *want;
    } cases[] = {
        {NULL, 32, ""},
        /* every control character becomes a space: the text stays on one line */
        {"line1\nline2\r\n\tx\x01\x7f", 32, "line1 line2   x  "},
        /* quotes are text here, not escaped */
        {"say \"hi\" \\", 32, "say \"hi\" \\"},
        /* valid UTF-8 kept, every other byte U+FFFD */
        {"caf\xc3\xa9 \xff\xfe \xed\xa0\x80!", 40,
         "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!"},
        /* a replacement that does not fit is left out whole */
        {"abcd\xff", 9, "abcd..."},
        /* a 4-byte character that does not fit is left out whole */
        {"abcd\xf0\x9f\x98\x80", 10, "abcd..."},
        {"abc\xf0\x9f\x98\x80", 11, "abc\xf0\x9f\x98\x80"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[40];

        errmsg_printable(buf, cases[i].size, cases[i].in, ERRMSG_ONE_LINE);
        assert_string_equal(buf, cases[i].want);
    }
}

static void test_utf8_len(void **state)
{
    static const struct {
        const char *in;
        size_t want;
    } cases[] = {
        {"a", 1},
        {"\x7f", 1},
        {"\xc3\xa9", 2},
        {"\xe2\x82\xac", 3},
        {"\xf0\x9f\x98\x80", 4},
        {"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF */
        {"\x80", 0},
        {"\xc1\xbf", 0},
        /* overlong */ {"\xe0\x9f\xbf", 0},
        {"\xed\xa0\x80", 0},
        /* surrogate */ {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"\xc3", 0},
        /* cut short by the NUL */ {"\xf0\x9f\x98", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(errmsg_utf8_len((const unsigned char *)cases[i].in), cases[i].want);
}

/* Every byte that is not UTF-8 becomes U+FFFD; valid text, control characters included, stays. */
static void test_utf8_sanitize(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {NULL, ""},
        {"", ""},
        {"plain\nline", "plain\nline"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"\xff", "\xef\xbf\xbd"},
        {"a\xc3", "a\xef\xbf\xbd"},                               /* cut short */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xc0\xaf/", "\xef\xbf\xbd\xef\xbf\xbd/"},               /* overlong '/' */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = errmsg_utf8_sanitize(cases[i].in);

        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void test_status_names(void **state)
{
    (void)state;
    /* Written from the gRPC protocol's code list, not from status.c. */
    static const struct {
        int code;
        const char *name;
    } expected[] = {
        {0, "OK"},
        {1, "CANCELLED"},
        {2, "UNKNOWN"},
        {3, "INVALID_ARGUMENT"},
        {4, "DEADLINE_EXCEEDED"},
        {5, "NOT_FOUND"},
        {6, "ALREADY_EXISTS"},
        {7, "PERMISSION_DENIED"},
        {8, "RESOURCE_EXHAUSTED"},
        {9, "FAILED_PRECONDITION"},
        {10, "ABORTED"},
        {11, "OUT_OF_RANGE"},
        {12, "UNIMPLEMENTED"},
        {13, "INTERNAL"},
        {14, "UNAVAILABLE"},
        {15, "DATA_LOSS"},
        {16, "UNAUTHENTICATED"},
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
        cmocka_unit_test(test_errmsg_give_returns_outcome_and_message),
        cmocka_unit_test(test_errmsg_format),
        cmocka_unit_test(test_errmsg_format_empty),
        cmocka_unit_test(test_printable_quoted),
        cmocka_unit_test(test_printable_one_line),
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test(test_utf8_sanitize),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
