/* Unit tests for tls_files.c: the listener's certificate, key and client CA files, loaded and
 * checked with messages naming the setting; ca_file's check. The certificates are made here
 * with OpenSSL (self-signed EC P-256), written to temporary files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_files.h"

struct pair {
    char cert[4096];
    char key[4096];
};

/* A self-signed certificate and its key, as PEM text. */
static void make_pair(struct pair *p, const char *cn, const char *password)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIO *bio;
    long n;
    char *data;

    assert_non_null(key);
    assert_non_null(cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);

    bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(bio, cert));
    n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0 && (size_t)n < sizeof(p->cert));
    memcpy(p->cert, data, (size_t)n);
    p->cert[n] = '\0';
    BIO_free(bio);
    bio = BIO_new(BIO_s_mem());
    if (password)
        assert_true(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), password,
                                                  (int)strlen(password), NULL, NULL));
    else
        assert_true(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL));
    n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0 && (size_t)n < sizeof(p->key));
    memcpy(p->key, data, (size_t)n);
    p->key[n] = '\0';
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Writes len bytes of text to a new temporary file; gives its path in path. */
static void write_tmp(char path[64], const char *text, size_t len)
{
    int fd;

    strcpy(path, "/tmp/fdc-tls-files-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void write_str(char path[64], const char *text)
{
    write_tmp(path, text, strlen(text));
}

/* Loads and checks the error, exactly. */
static void expect_error(const struct tls_files_server *files, const char *want)
{
    struct tls_files_pem pem = {0};
    char *err = NULL;

    assert_true(tls_files_load_server(files, &pem, &err) < 0);
    assert_non_null(err);
    if (strcmp(err, want) != 0)
        fail_msg("got:  %s\nwant: %s", err, want);
    assert_null(pem.private_key);
    free(err);
}

static void test_good_pair_and_client_ca(void **state)
{
    struct pair a, ca;
    char cert[64], key[64], ca_path[64];
    struct tls_files_pem pem = {0};
    char *err = NULL;

    (void)state;
    make_pair(&a, "server", NULL);
    make_pair(&ca, "clients", NULL);
    write_str(cert, a.cert);
    write_str(key, a.key);
    write_str(ca_path, ca.cert);
    {
        const struct tls_files_server files = {.cert_file = cert, .key_file = key};
        assert_int_equal(tls_files_load_server(&files, &pem, &err), 0);
        assert_string_equal(pem.cert_chain, a.cert);
        assert_string_equal(pem.private_key, a.key);
        assert_null(pem.client_ca);
        tls_files_pem_done(&pem);
        assert_null(pem.private_key);
    }
    {
        const struct tls_files_server files = {
            .cert_file = cert, .key_file = key, .client_ca_file = ca_path};
        assert_int_equal(tls_files_load_server(&files, &pem, &err), 0);
        assert_string_equal(pem.client_ca, ca.cert);
        tls_files_pem_done(&pem);
    }
    tls_files_pem_done(NULL);
    unlink(cert);
    unlink(key);
    unlink(ca_path);
}

static void test_refusals_name_the_setting(void **state)
{
    struct pair a, b, enc;
    char cert[64], key[64], other_key[64], enc_key[64], not_pem[64], nul[64], want[512];

    (void)state;
    make_pair(&a, "a", NULL);
    make_pair(&b, "b", NULL);
    make_pair(&enc, "enc", "secret");
    write_str(cert, a.cert);
    write_str(key, a.key);
    write_str(other_key, b.key);
    write_str(enc_key, enc.key);
    write_str(not_pem, "hello\n");
    write_tmp(nul, "-----BEGIN\0", 11);

    snprintf(want, sizeof(want),
             "tls_key_file \"%s\": the private key does not match the certificate of "
             "tls_cert_file",
             other_key);
    expect_error(&(struct tls_files_server){.cert_file = cert, .key_file = other_key}, want);
    snprintf(want, sizeof(want), "tls_cert_file \"%s\" holds no PEM certificate", not_pem);
    expect_error(&(struct tls_files_server){.cert_file = not_pem, .key_file = key}, want);
    snprintf(want, sizeof(want),
             "tls_key_file \"%s\" holds no PEM private key (or an encrypted one)", cert);
    expect_error(&(struct tls_files_server){.cert_file = cert, .key_file = cert}, want);
    /* An encrypted key is refused, never prompted for (that would hang the daemon). */
    snprintf(want, sizeof(want),
             "tls_key_file \"%s\" holds no PEM private key (or an encrypted one)", enc_key);
    expect_error(&(struct tls_files_server){.cert_file = cert, .key_file = enc_key}, want);
    snprintf(want, sizeof(want), "tls_client_ca_file \"%s\" holds no PEM certificate", not_pem);
    expect_error(
        &(struct tls_files_server){.cert_file = cert, .key_file = key, .client_ca_file = not_pem},
        want);
    snprintf(want, sizeof(want), "tls_cert_file \"%s\": contains a NUL byte", nul);
    expect_error(&(struct tls_files_server){.cert_file = nul, .key_file = key}, want);
    expect_error(&(struct tls_files_server){.cert_file = cert, .key_file = "/nonexistent/k"},
                 "tls_key_file \"/nonexistent/k\": No such file or directory");
    expect_error(&(struct tls_files_server){.cert_file = "/tmp", .key_file = key},
                 "tls_cert_file \"/tmp\": not a regular file");
    unlink(cert);
    unlink(key);
    unlink(other_key);
    unlink(enc_key);
    unlink(not_pem);
    unlink(nul);
}

static void test_size_limit(void **state)
{
    char *big = malloc(TLS_FILES_MAX + 1), path[64], want[256];

    (void)state;
    assert_non_null(big);
    memset(big, 'A', TLS_FILES_MAX + 1);
    write_tmp(path, big, TLS_FILES_MAX + 1);
    snprintf(want, sizeof(want), "tls_cert_file \"%s\": larger than %d bytes", path, TLS_FILES_MAX);
    expect_error(&(struct tls_files_server){.cert_file = path, .key_file = path}, want);
    unlink(path);
    free(big);
}

static void test_check_ca(void **state)
{
    struct pair a;
    char cert[64], not_pem[64], want[256];
    char *err = NULL;

    (void)state;
    make_pair(&a, "a", NULL);
    write_str(cert, a.cert);
    write_str(not_pem, "hello\n");
    assert_int_equal(tls_files_check_ca(cert, &err), 0);
    assert_int_equal(tls_files_check_ca(not_pem, &err), -EINVAL);
    snprintf(want, sizeof(want), "ca_file \"%s\" holds no PEM certificate", not_pem);
    assert_string_equal(err, want);
    free(err);
    unlink(cert);
    unlink(not_pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_pair_and_client_ca),
        cmocka_unit_test(test_refusals_name_the_setting),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_check_ca),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
