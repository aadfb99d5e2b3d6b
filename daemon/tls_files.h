/*
 * tls_files.h - checks and loading of the TLS files the configuration names, so that a file
 * TLS cannot use is reported by check-config, at start-up and on reload, naming the setting,
 * rather than as a TLS error on the first request or handshake that needs it.
 *
 * Threads: any; nothing is kept.
 */
#ifndef FDC_TLS_FILES_H
#define FDC_TLS_FILES_H

#include <stddef.h>

/* Largest certificate, key or CA file read. */
#define TLS_FILES_MAX (1024 * 1024)

/*
 * Checks the extra CA bundle `path` (the ca_file setting): a regular file this process can
 * open, holding at least one PEM certificate. Returns 0, or
 * -errno and gives *reterr_msg naming the setting and the file (free()),
 * NULL when out of memory.
 */
int tls_files_check_ca(const char *path, char **reterr_msg);

/* The files of the gRPC listener's TLS (paths borrowed). */
struct tls_files_server {
    const char *cert_file;      /* tls_cert_file: the certificate chain, leaf first */
    const char *key_file;       /* tls_key_file: its private key, unencrypted */
    const char *client_ca_file; /* tls_client_ca_file: CAs client certificates must chain to;
                                 * NULL when client certificates are not asked for */
};

/* Their contents as gRPC core takes them: NUL-terminated PEM text. */
struct tls_files_pem {
    char *cert_chain;  /* owns */
    char *private_key; /* owns; SECRET: zeroed by tls_files_pem_done() */
    char *client_ca;   /* owns; NULL when files->client_ca_file is NULL */
};

/*
 * Reads the listener's files once each and checks what was read: each a regular file of at most
 * TLS_FILES_MAX bytes; the chain holds PEM certificates, the key a PEM private key that belongs
 * to the chain's first certificate, the CA file at least one PEM certificate. Returns 0 and
 * fills *ret (release with tls_files_pem_done()); or -errno and gives *reterr_msg naming the
 * setting and the file (e.g. `tls_key_file "/x": the private key does not match the
 * certificate of tls_cert_file`; free(), NULL on OOM). Never quotes a key's content.
 */
int tls_files_load_server(const struct tls_files_server *files, struct tls_files_pem *ret,
                          char **reterr_msg);

/* Frees what p owns, zeroing the private key first; NULLs it. NULL-safe, idempotent. */
void tls_files_pem_done(struct tls_files_pem *p);

#endif
