/*
 * tls_files.c - checks of the TLS files named by the configuration.
 *
 * The check opens the file once and reads what it needs from that open
 * file, so "regular file" and "holds a certificate" are said of the same
 * file. The certificate is read with OpenSSL, which is also what reads the
 * bundle for libcurl.
 */
#include "tls_files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"

int tls_files_check_ca(const char *path, char **reterr_msg)
{
    struct stat st;
    FILE *f = NULL;
    X509 *cert = NULL;
    char quoted[256];
    int fd, r;

    /* The path is the operator's, but may hold anything: quote it as config.c quotes values. */
    errmsg_printable(quoted, sizeof(quoted), path, ERRMSG_QUOTED);

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        errmsg_set(reterr_msg, r, "ca_file \"%s\": %s", quoted, strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = errmsg_set(reterr_msg, -EINVAL, "ca_file \"%s\": not a regular file", quoted);
        goto out;
    }
    f = fdopen(fd, "r");
    if (!f) {
        r = -errno;
        errmsg_set(reterr_msg, r, "ca_file \"%s\": %s", quoted, strerror(-r));
        goto out;
    }
    fd = -1; /* f owns it */
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    /* A failed read leaves its reasons on this thread's OpenSSL error
     * queue, where a later TLS handshake would find them. */
    ERR_clear_error();
    r = cert ? 0
             : errmsg_set(reterr_msg, -EINVAL, "ca_file \"%s\" holds no PEM certificate", quoted);
out:
    X509_free(cert);
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    return r;
}
