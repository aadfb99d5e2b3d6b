/* Unit tests for sha256.c: the NIST FIPS 180-4 example vectors (one-shot and incremental with
 * every split point), the padding edge lengths, and a million-byte message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char out[65])
{
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
}

static void assert_digest(const void *data, size_t len, const char *expected_hex)
{
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[65];

    sha256(data, len, digest);
    to_hex(digest, hex);
    assert_string_equal(hex, expected_hex);
}

/* Published vectors: NIST CSRC "SHA256.pdf" examples and the FIPS 180-2 appendix. */
static const struct {
    const char *message;
    const char *digest;
} vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
     "qrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"The quick brown fox jumps over the lazy dog",
     "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"},
};

static void test_vectors_one_shot(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        assert_digest(vectors[i].message, strlen(vectors[i].message), vectors[i].digest);
}

/* Splitting the input anywhere, even into single bytes, must not change the digest. */
static void test_vectors_incremental(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *m = vectors[i].message;
        size_t len = strlen(m);

        for (size_t split = 0; split <= len; split++) {
            struct sha256_ctx ctx;
            uint8_t digest[SHA256_DIGEST_SIZE];
            char hex[65];

            sha256_init(&ctx);
            sha256_update(&ctx, m, split);
            sha256_update(&ctx, NULL, 0);
            for (size_t j = split; j < len; j++)
                sha256_update(&ctx, m + j, 1);
            sha256_final(&ctx, digest);
            to_hex(digest, hex);
            assert_string_equal(hex, vectors[i].digest);
        }
    }
}

static void test_million_a(void **state)
{
    char *a = malloc(1000000);
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[65];
    static const char expected[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

    (void)state;
    assert_non_null(a);
    memset(a, 'a', 1000000);
    assert_digest(a, 1000000, expected);

    /* Odd-sized chunks cross block boundaries at every offset. */
    sha256_init(&ctx);
    for (size_t off = 0; off < 1000000; off += 997)
        sha256_update(&ctx, a + off, off + 997 <= 1000000 ? 997 : 1000000 - off);
    sha256_final(&ctx, digest);
    to_hex(digest, hex);
    assert_string_equal(hex, expected);
    free(a);
}

/* Lengths around the padding boundary (55, 56, 63, 64, 65 bytes), checked against digests from
 * Python's hashlib.sha256(b"a" * n). */
static void test_padding_edges(void **state)
{
    static const struct {
        size_t len;
        const char *digest;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
    };
    char buf[65];

    (void)state;
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_digest(buf, cases[i].len, cases[i].digest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_one_shot),
        cmocka_unit_test(test_vectors_incremental),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_padding_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
