/*
 * secret.c - zero-then-free for strings that held a secret (see secret.h). explicit_bzero()
 * rather than memset(): the compiler may drop a memset() of memory that is freed right after.
 * Pure: no state, any thread.
 */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

char *secret_free(char *s)
{
    if (!s)
        return NULL;
    explicit_bzero(s, strlen(s));
    free(s);
    return NULL;
}
