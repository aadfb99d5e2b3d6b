/*
 * tls_files.c - checks and loading of the TLS files named by the configuration.
 *
 * Each file is opened once and read whole; every check is then made on those bytes, so
 * "regular file", "holds a certificate" and what is handed on (to gRPC core for the listener)
 * are said of the same content, even while cert-manager rewrites the file. Certificates and
 * keys are parsed with OpenSSL, which is also what libcurl and gRPC core use. A private key's
 * bytes are zeroed before they are freed. Nothing is kept between calls: any thread.
 */
#include "tls_files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "secret.h"

/* Room for a path quoted back in a message. */
#define QUOTED_PATH 256

/* One file's bytes, NUL-terminated, read through one descriptor. */
struct content {
    char *text;
    size_t len;
};

static void content_done(struct content *c, bool secret)
{
    if (c->text && secret)
        explicit_bzero(c->text, c->len);
    free(c->text);
    *c = (struct content){0};
}

/* Reads path whole into *ret; on failure gives a message naming `key` and the file. */
static int read_content(const char *key, const char *path, struct content *ret, char **reterr_msg)
{
    char quoted[QUOTED_PATH];
    struct content c = {0};
    struct stat st;
    int fd, r;

    /* The path is the operator's, but may hold anything: quote it as config.c quotes values. */
    errmsg_printable(quoted, sizeof(quoted), path, ERRMSG_QUOTED);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        errmsg_set(reterr_msg, r, "%s \"%s\": %s", key, quoted, strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = errmsg_set(reterr_msg, -EINVAL, "%s \"%s\": not a regular file", key, quoted);
        goto out;
    }
    c.text = malloc(TLS_FILES_MAX + 1);
    if (!c.text) {
        r = errmsg_set(reterr_msg, -ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, c.text + c.len, TLS_FILES_MAX + 1 - c.len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            errmsg_set(reterr_msg, r, "%s \"%s\": %s", key, quoted, strerror(-r));
            goto out;
        }
        if (n == 0)
            break;
        c.len += (size_t)n;
        if (c.len > TLS_FILES_MAX) {
            r = errmsg_set(reterr_msg, -EFBIG, "%s \"%s\": larger than %d bytes", key, quoted,
                           TLS_FILES_MAX);
            goto out;
        }
    }
    c.text[c.len] = '\0';
    /* gRPC core takes PEM as a C string: a NUL would cut what it reads. */
    if (memchr(c.text, '\0', c.len)) {
        r = errmsg_set(reterr_msg, -EINVAL, "%s \"%s\": contains a NUL byte", key, quoted);
        goto out;
    }
    *ret = c;
    c = (struct content){0};
    r = 0;
out:
    content_done(&c, true);
    if (fd >= 0)
        close(fd);
    return r;
}

/* The first certificate in c (gives; X509_free()), NULL when it holds none. */
static X509 *first_certificate(const struct content *c)
{
    BIO *bio = BIO_new_mem_buf(c->text, (int)c->len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return cert;
}

/* OpenSSL would prompt on the terminal for an encrypted key's passphrase: there is none. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static EVP_PKEY *private_key(const struct content *c)
{
    BIO *bio = BIO_new_mem_buf(c->text, (int)c->len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;

    BIO_free(bio);
    return key;
}

int tls_files_check_ca(const char *path, char **reterr_msg)
{
    struct content c = {0};
    char quoted[QUOTED_PATH];
    X509 *cert = NULL;
    int r;

    r = read_content("ca_file", path, &c, reterr_msg);
    if (r < 0)
        return r;
    cert = first_certificate(&c);
    errmsg_printable(quoted, sizeof(quoted), path, ERRMSG_QUOTED);
    r = cert ? 0
             : errmsg_set(reterr_msg, -EINVAL, "ca_file \"%s\" holds no PEM certificate", quoted);
    X509_free(cert);
    content_done(&c, false);
    /* A failed parse leaves its reasons on this thread's OpenSSL error queue, where a later
     * TLS handshake would find them. */
    ERR_clear_error();
    return r;
}

/* The checks of tls_files_load_server() on what was read. */
static int check_server(const struct tls_files_server *files, const struct content *chain,
                        const struct content *key, const struct content *ca, char **reterr_msg)
{
    char quoted[QUOTED_PATH];
    X509 *cert = first_certificate(chain), *ca_cert = NULL;
    EVP_PKEY *pkey = NULL;
    int r = 0;

    if (!cert) {
        errmsg_printable(quoted, sizeof(quoted), files->cert_file, ERRMSG_QUOTED);
        r = errmsg_set(reterr_msg, -EINVAL, "tls_cert_file \"%s\" holds no PEM certificate",
                       quoted);
        goto out;
    }
    pkey = private_key(key);
    errmsg_printable(quoted, sizeof(quoted), files->key_file, ERRMSG_QUOTED);
    if (!pkey) {
        r = errmsg_set(reterr_msg, -EINVAL,
                       "tls_key_file \"%s\" holds no PEM private key (or an encrypted one)",
                       quoted);
        goto out;
    }
    if (X509_check_private_key(cert, pkey) != 1) {
        r = errmsg_set(reterr_msg, -EINVAL,
                       "tls_key_file \"%s\": the private key does not match the certificate of "
                       "tls_cert_file",
                       quoted);
        goto out;
    }
    if (ca && !(ca_cert = first_certificate(ca))) {
        errmsg_printable(quoted, sizeof(quoted), files->client_ca_file, ERRMSG_QUOTED);
        r = errmsg_set(reterr_msg, -EINVAL, "tls_client_ca_file \"%s\" holds no PEM certificate",
                       quoted);
    }
out:
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return r;
}

int tls_files_load_server(const struct tls_files_server *files, struct tls_files_pem *ret,
                          char **reterr_msg)
{
    struct content chain = {0}, key = {0}, ca = {0};
    int r;

    r = read_content("tls_cert_file", files->cert_file, &chain, reterr_msg);
    if (r < 0)
        goto out;
    r = read_content("tls_key_file", files->key_file, &key, reterr_msg);
    if (r < 0)
        goto out;
    if (files->client_ca_file) {
        r = read_content("tls_client_ca_file", files->client_ca_file, &ca, reterr_msg);
        if (r < 0)
            goto out;
    }
    r = check_server(files, &chain, &key, files->client_ca_file ? &ca : NULL, reterr_msg);
    if (r < 0)
        goto out;
    *ret = (struct tls_files_pem){
        .cert_chain = chain.text, .private_key = key.text, .client_ca = ca.text};
    chain = key = ca = (struct content){0};
out:
    content_done(&chain, false);
    content_done(&key, true);
    content_done(&ca, false);
    return r;
}

void tls_files_pem_done(struct tls_files_pem *p)
{
    if (!p)
        return;
    secret_free(p->private_key);
    free(p->cert_chain);
    free(p->client_ca);
    *p = (struct tls_files_pem){0};
}
