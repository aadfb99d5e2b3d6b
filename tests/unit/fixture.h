/*
 * fixture.h - the unit tests' fixture files (tests/fixtures/NAME/...).
 *
 * fixture_dir_find() finds the folder from the top of the tree (make test runs
 * tests there), or else relative to the test binary, which lives two levels
 * below the tree (build/tests/test_x). fixture_read() returns a file's whole
 * text, NUL-terminated, to be freed by the caller; a missing or unreadable
 * file fails the running test. Include after <cmocka.h>.
 */
#pragma once

#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void fixture_dir_find(char *out, size_t size, const char *argv0, const char *name)
{
    char *copy = strdup(argv0);
    DIR *d;

    snprintf(out, size, "tests/fixtures/%s", name);
    if ((d = opendir(out)))
        closedir(d);
    else if (copy)
        snprintf(out, size, "%s/../../tests/fixtures/%s", dirname(copy), name);
    free(copy);
}

static inline char *fixture_read(const char *dir, const char *name, size_t *ret_len)
{
    char path[4200];
    FILE *f;
    char *text;
    long size;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        fail_msg("fixture path too long: %s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *ret_len = (size_t)size;
    return text;
}
