/*
 * fixture_dir.h - where a unit test finds tests/fixtures/NAME: from the top of
 * the tree (make test runs tests there), or else relative to the test binary,
 * which lives two levels below the tree (build/tests/test_x).
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
