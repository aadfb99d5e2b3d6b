/*
 * secret.h - freeing memory that held a secret (a token, a client secret, a private key, an
 * Authorization header, a file read for one): its bytes are zeroed first, so that neither freed
 * memory nor a later allocation that reuses it keeps a copy.
 *
 * Pure: any thread.
 */
#ifndef FDC_SECRET_H
#define FDC_SECRET_H

/* Zeroes s up to its terminating NUL, then frees it (takes; NULL-safe). Returns NULL. */
char *secret_free(char *s);

#endif
