/*
 * server_tls.h - TLS (optionally mutual) for the gRPC listener, with certificates that can be
 * replaced while the server runs.
 *
 * The listener's credentials get their certificate, key and client CA from this object through
 * gRPC core's certificate config fetcher, which gRPC calls before each new handshake. A reload
 * (SIGHUP) or a change of the files on disk (cert-manager and Kubernetes Secret volumes
 * rewrite them in place) makes the next handshake use the new ones; connections already
 * established keep theirs, so nothing is dropped.
 *
 * Threads: server_tls_new(), server_tls_reload() and server_tls_free() from the main thread;
 * gRPC's threads call the fetcher behind the credentials. One mutex, never held while logging.
 */
#ifndef FDC_SERVER_TLS_H
#define FDC_SERVER_TLS_H

#include <grpc/grpc_security.h>

#include "tls_files.h"

struct server_tls;

/*
 * Reads and checks files (borrowed; see tls_files_load_server()) and gives *ret_tls (free with
 * server_tls_free(), after the server using it). With files->client_ca_file set, clients must
 * present a certificate that chains to one of its CAs, for as long as the object lives.
 * Returns 0, or -errno and gives *reterr_msg (free()) naming the setting at fault.
 */
int server_tls_new(const struct tls_files_server *files, struct server_tls **ret_tls,
                   char **reterr_msg);

/* Gives new gRPC server credentials (release with grpc_server_credentials_release() once the
 * port is added) that fetch their certificates from tls (borrowed: it must outlive the
 * server). NULL when gRPC refuses. */
grpc_server_credentials *server_tls_credentials(struct server_tls *tls);

/*
 * Reads files (borrowed; the paths may differ from the last ones) now, and on success has the
 * next handshake use them. Returns 0; or -errno and gives *reterr_msg (free()) naming the
 * setting, and the certificates in use stay. Whether client certificates are required cannot
 * change: a client CA file set here must match one set at server_tls_new(), or -EINVAL.
 */
int server_tls_reload(struct server_tls *tls, const struct tls_files_server *files,
                      char **reterr_msg);

/* Frees tls (takes; NULL-safe), zeroing the private key. Returns NULL. */
struct server_tls *server_tls_free(struct server_tls *tls);

#endif
