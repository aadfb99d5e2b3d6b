/*
 * sha256.h - SHA-256 (FIPS 180-4), one-shot and incremental.
 *
 * Pure: no allocation, no global state. A struct sha256_ctx belongs to its caller; different
 * contexts may be used from different threads at once, one context from one thread at a time.
 */
#ifndef FDC_SHA256_H
#define FDC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64

/* Public so callers can keep it on the stack; treat the fields as private. */
struct sha256_ctx {
    uint32_t state[8];
    uint64_t length;                  /* bytes hashed so far */
    uint8_t block[SHA256_BLOCK_SIZE]; /* bytes waiting for a full block */
    size_t block_used;
};

/* Starts a new hash in ctx (borrows ctx, which may be uninitialized). */
void sha256_init(struct sha256_ctx *ctx);

/* Adds len bytes of data (borrowed for the call; may be NULL when len is 0). */
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);

/* Writes the digest to out and wipes ctx; call sha256_init() again to reuse it. */
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_SIZE]);

/* One-shot digest of data[0..len). */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);

#endif
