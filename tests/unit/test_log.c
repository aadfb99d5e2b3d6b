/*
 * test_log.c - the log line formats: key=value quoting, JSON escaping, level
 * filtering, long values, and recognising stderr as the journal.
 *
 * Each test points stderr at a temporary file, logs, and reads the file back; the journal
 * format's fields are read through the test's own sd_journal_sendv() (the Makefile links
 * test_log with --wrap=sd_journal_sendv_with_location, which sd-journal.h's sd_journal_sendv()
 * stands for).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "log.h"

struct capture {
    int saved_stderr;
    FILE *file;
};

static void capture_start(struct capture *c)
{
    c->file = tmpfile();
    assert_non_null(c->file);
    fflush(stderr);
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Gives what was written since capture_start(). */
static char *capture_end(struct capture *c)
{
    long size;
    char *text;

    dup2(c->saved_stderr, STDERR_FILENO);
    close(c->saved_stderr);
    size = ftell(c->file);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(c->file);
    assert_int_equal(fread(text, 1, (size_t)size, c->file), (size_t)size);
    fclose(c->file);
    return text;
}

static void test_text_quotes_and_escapes(void **state)
{
    struct capture c;
    char *text;
    (void)state;
    log_set_format(LOG_FORMAT_TEXT);
    log_set_level(LOG_LEVEL_DEBUG);
    capture_start(&c);
    log_info("call done", "plain", "abc", "spaced", "a b", "quoted", "say \"hi\"", "newline",
             "x\ny", "empty", "", "skipped", (const char *)NULL);
    text = capture_end(&c);
    assert_non_null(strstr(text, " level=info msg=\"call done\" plain=abc spaced=\"a b\" "
                                 "quoted=\"say \\\"hi\\\"\" newline=\"x\\ny\" empty=\"\"\n"));
    assert_null(strstr(text, "skipped"));
    assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text)); /* one line */
    free(text);
}

static void test_json_is_one_valid_object(void **state)
{
    struct capture c;
    char *text;
    cJSON *root;
    (void)state;
    log_set_format(LOG_FORMAT_JSON);
    log_set_level(LOG_LEVEL_INFO);
    capture_start(&c);
    log_warning("odd \"value\"", "control",
                "a\x01"
                "b\tc",
                "backslash", "C:\\x");
    text = capture_end(&c);
    assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text));
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "level")->valuestring, "warning");
    assert_string_equal(cJSON_GetObjectItem(root, "msg")->valuestring, "odd \"value\"");
    assert_string_equal(cJSON_GetObjectItem(root, "control")->valuestring, "a\x01"
                                                                           "b\tc");
    assert_string_equal(cJSON_GetObjectItem(root, "backslash")->valuestring, "C:\\x");
    assert_non_null(cJSON_GetObjectItem(root, "time"));
    cJSON_Delete(root);
    free(text);
    log_set_format(LOG_FORMAT_TEXT);
}

static void test_long_values_are_cut_and_line_stays_valid(void **state)
{
    struct capture c;
    char *big = malloc(20000), *text;
    cJSON *root;
    (void)state;
    memset(big, '"', 19999);
    memset(big + 10000, '\x01', 9999); /* escapes to six bytes each */
    big[19999] = '\0';
    log_set_format(LOG_FORMAT_JSON);
    capture_start(&c);
    log_error("big", "a", big, "b", big + 10000, "c", big + 10000, "d", big + 10000, "e",
              big + 10000);
    text = capture_end(&c);
    root = cJSON_Parse(text);
    assert_non_null(root); /* still one complete object */
    assert_true(strlen(cJSON_GetObjectItem(root, "a")->valuestring) < 19999);
    cJSON_Delete(root);
    free(text);
    free(big);
    log_set_format(LOG_FORMAT_TEXT);
}

/* Bytes that are not UTF-8 become U+FFFD in both formats, and a cut never splits a character:
 * a log collector that insists on UTF-8 (most do) keeps every line. */
static void test_invalid_utf8_becomes_replacement(void **state)
{
    struct capture c;
    char *text, *big;
    cJSON *root;
    const char *cut;
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(LOG_FORMAT_TEXT);
    capture_start(&c);
    log_info("bad", "task_type",
             "sp\xff"
             "ark",
             "ok", "caf\xc3\xa9");
    text = capture_end(&c);
    assert_non_null(strstr(text, " task_type=\"sp\xef\xbf\xbd"
                                 "ark\" ok=caf\xc3\xa9\n"));
    free(text);

    log_set_format(LOG_FORMAT_JSON);
    capture_start(&c);
    log_info("bad \xc3", "task_type", "\xed\xa0\x80x");
    text = capture_end(&c);
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "msg")->valuestring, "bad \xef\xbf\xbd");
    assert_string_equal(cJSON_GetObjectItem(root, "task_type")->valuestring,
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
    cJSON_Delete(root);
    free(text);

    /* A long value of 3-byte characters is cut between two of them, then "...". */
    big = malloc(3 * 3000 + 1);
    assert_non_null(big);
    for (size_t i = 0; i < 3000; i++)
        memcpy(big + 3 * i, "\xe2\x82\xac", 3);
    big[3 * 3000] = '\0';
    capture_start(&c);
    log_info("long", "v", big);
    text = capture_end(&c);
    root = cJSON_Parse(text);
    assert_non_null(root);
    cut = cJSON_GetObjectItem(root, "v")->valuestring;
    assert_true(strlen(cut) > 3 && strlen(cut) < 3 * 3000);
    assert_string_equal(cut + strlen(cut) - 3, "...");
    assert_int_equal((strlen(cut) - 3) % 3, 0);
    cJSON_Delete(root);
    free(text);
    log_set_format(LOG_FORMAT_TEXT);
    capture_start(&c);
    log_info("long", "v", big);
    text = capture_end(&c);
    cut = strstr(text, " v=\"");
    assert_non_null(cut);
    assert_int_equal((strlen(cut) - strlen(" v=\"") - strlen("...\"\n")) % 3, 0);
    assert_non_null(strstr(cut, "...\"\n"));
    free(text);
    free(big);
}

static void test_level_filter(void **state)
{
    struct capture c;
    char *text;
    (void)state;
    log_set_level(LOG_LEVEL_WARNING);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    capture_start(&c);
    log_debug("hidden");
    log_info("hidden");
    log_warning("shown");
    text = capture_end(&c);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "msg=shown"));
    free(text);
    log_set_level(LOG_LEVEL_INFO);
}

static void test_errno_preserved(void **state)
{
    struct capture c;
    (void)state;
    capture_start(&c);
    errno = EPIPE;
    log_info("x");
    assert_int_equal(errno, EPIPE);
    free(capture_end(&c));
}

static void test_journal_stream_detection(void **state)
{
    struct capture c;
    struct stat st;
    char value[64];
    (void)state;
    capture_start(&c);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(value, sizeof(value), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    assert_true(log_stderr_is_journal(value));
    snprintf(value, sizeof(value), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + 1);
    assert_false(log_stderr_is_journal(value));
    assert_false(log_stderr_is_journal(NULL));
    assert_false(log_stderr_is_journal("garbage"));
    free(capture_end(&c));
}

/* The fields of the last journal entry log.c sent. */
static char journal_fields[32][128];
static int journal_count;

int __wrap_sd_journal_sendv_with_location(const char *file, const char *line, const char *func,
                                          const struct iovec *iov, int n);
int __wrap_sd_journal_sendv_with_location(const char *file, const char *line, const char *func,
                                          const struct iovec *iov, int n)
{
    (void)file;
    (void)line;
    (void)func;
    journal_count = n;
    for (int i = 0; i < n && i < 32; i++)
        snprintf(journal_fields[i], sizeof(journal_fields[i]), "%.*s", (int)iov[i].iov_len,
                 (const char *)iov[i].iov_base);
    return 0;
}

static void test_journal_fields(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_JOURNAL);
    log_set_level(LOG_LEVEL_INFO);
    journal_count = -1;
    log_debug("filtered out", "a", "b");
    assert_int_equal(journal_count, -1);
    /* A field without a value is left out, and those after it still come. */
    log_warning("call failed", "task_type", "spark", "instance", (const char *)NULL, "grpc_code",
                "14", "error", "line one\nline two");
    assert_int_equal(journal_count, 5);
    assert_string_equal(journal_fields[0], "PRIORITY=4");
    assert_string_equal(journal_fields[1], "MESSAGE=call failed");
    assert_string_equal(journal_fields[2], "TASK_TYPE=spark");
    assert_string_equal(journal_fields[3], "GRPC_CODE=14");
    assert_string_equal(journal_fields[4], "ERROR=line one line two"); /* one line */
    log_set_format(LOG_FORMAT_TEXT);
}

/* An entry holds 24 fields at most, PRIORITY and MESSAGE included: later ones are dropped. */
static void test_journal_field_limit(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_JOURNAL);
    log_set_level(LOG_LEVEL_INFO);
    log_info("many", "k01", "1", "k02", "2", "k03", "3", "k04", "4", "k05", "5", "k06", "6", "k07",
             "7", "k08", "8", "k09", "9", "k10", "10", "k11", "11", "k12", "12", "k13", "13", "k14",
             "14", "k15", "15", "k16", "16", "k17", "17", "k18", "18", "k19", "19", "k20", "20",
             "k21", "21", "k22", "22", "k23", "23", "k24", "24");
    assert_int_equal(journal_count, 24);
    assert_string_equal(journal_fields[0], "PRIORITY=6");
    assert_string_equal(journal_fields[2], "K01=1");
    assert_string_equal(journal_fields[23], "K22=22");
    log_set_format(LOG_FORMAT_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_quotes_and_escapes),
        cmocka_unit_test(test_json_is_one_valid_object),
        cmocka_unit_test(test_long_values_are_cut_and_line_stays_valid),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_journal_stream_detection),
        cmocka_unit_test(test_journal_fields),
        cmocka_unit_test(test_journal_field_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
