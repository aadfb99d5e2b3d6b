/*
 * server_tls.c - the gRPC listener's TLS material, replaceable while the server runs.
 *
 * gRPC core (1.51 included) calls a certificate config fetcher in add_handshakers(), before
 * every new server handshake; answering RELOAD_NEW with a fresh config makes it build a new
 * handshaker factory for that handshake and the ones after, while established connections keep
 * the SSL state they have. The fetcher here answers NEW once per successful load (the first
 * one at server start, which gRPC requires) and UNCHANGED otherwise; it never answers FAIL,
 * which would only make gRPC log and keep the old factory anyway.
 *
 * Loads happen on server_tls_reload() (SIGHUP) and, at most once a second, from the fetcher
 * itself when stat(2) of a file shows a new inode, size, mtime or ctime: Kubernetes swaps a
 * Secret volume's files through a symlink (new inode), cert-manager's CSI driver rewrites them
 * (new mtime). A change that cannot be used (a key written before its certificate, say) is
 * logged once per change and the old material stays.
 *
 * Owns the paths, the PEM text of the last good load (the key zeroed when replaced or freed)
 * and the files' last stat. One mutex guards it all; messages are logged after unlocking.
 */
#include "server_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "errmsg.h"
#include "log.h"

/* How often the fetcher looks at the files' metadata (it runs per handshake). */
#define CHECK_INTERVAL_MS 1000
#define FILES 3

/* What stat(2) says of one file; equal signatures: the file has not been replaced. */
struct signature {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
};

struct server_tls {
    pthread_mutex_t lock;
    bool require_client_cert; /* fixed at server_tls_new() */
    char *paths[FILES];       /* cert, key, client CA (NULL without one) */
    struct tls_files_pem pem; /* the last good load */
    unsigned long generation; /* successful loads */
    unsigned long delivered;  /* the generation last given to gRPC */
    struct signature seen[FILES];
    int64_t next_check_ms;
};

static void sign(const char *path, struct signature *ret)
{
    struct stat st;

    *ret = (struct signature){0};
    if (!path || stat(path, &st) < 0)
        return;
    *ret = (struct signature){.present = true,
                              .dev = st.st_dev,
                              .ino = st.st_ino,
                              .size = st.st_size,
                              .mtime = st.st_mtim,
                              .ctime = st.st_ctim};
}

static bool same(const struct signature *a, const struct signature *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static struct tls_files_server files_of(char *const paths[FILES])
{
    return (struct tls_files_server){
        .cert_file = paths[0], .key_file = paths[1], .client_ca_file = paths[2]};
}

/* Loads files into tls: on success the new paths, PEM and signatures replace the old (taken
 * before reading, so a change during the read is seen again next time). Lock held. */
static int load_locked(struct server_tls *tls, const struct tls_files_server *files,
                       char **reterr_msg)
{
    const char *wanted[FILES] = {files->cert_file, files->key_file, files->client_ca_file};
    struct signature sigs[FILES];
    struct tls_files_pem pem = {0};
    char *paths[FILES] = {NULL, NULL, NULL};
    int r;

    for (int i = 0; i < FILES; i++)
        sign(wanted[i], &sigs[i]);
    r = tls_files_load_server(files, &pem, reterr_msg);
    if (r < 0)
        goto out;
    for (int i = 0; i < FILES; i++) {
        if (wanted[i] && !(paths[i] = strdup(wanted[i]))) {
            r = errmsg_set(reterr_msg, -ENOMEM, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < FILES; i++) {
        free(tls->paths[i]);
        tls->paths[i] = paths[i];
        paths[i] = NULL;
        tls->seen[i] = sigs[i];
    }
    tls_files_pem_done(&tls->pem);
    tls->pem = pem;
    pem = (struct tls_files_pem){0};
    tls->generation++;
out:
    for (int i = 0; i < FILES; i++)
        free(paths[i]);
    tls_files_pem_done(&pem);
    return r;
}

/* From the fetcher: when the interval has passed and a file was replaced, loads it again.
 * Gives what to log once unlocked: *ret_error (free()) on a failed load, *ret_reloaded. */
static void check_files_locked(struct server_tls *tls, char **ret_error, bool *ret_reloaded)
{
    struct signature now[FILES];
    bool changed = false;
    int64_t now_ms = clock_now_ms();

    if (now_ms < tls->next_check_ms)
        return;
    tls->next_check_ms = now_ms + CHECK_INTERVAL_MS;
    for (int i = 0; i < FILES; i++) {
        sign(tls->paths[i], &now[i]);
        changed = changed || !same(&now[i], &tls->seen[i]);
    }
    if (!changed)
        return;
    {
        const struct tls_files_server files = files_of(tls->paths);

        if (load_locked(tls, &files, ret_error) == 0) {
            *ret_reloaded = true;
            return;
        }
    }
    /* Keep the old material, and say so once for this state of the files. */
    for (int i = 0; i < FILES; i++)
        tls->seen[i] = now[i];
    if (!*ret_error)
        *ret_error = strdup("out of memory");
}

/* gRPC core's certificate config fetcher; any gRPC thread, before each handshake. */
static grpc_ssl_certificate_config_reload_status fetch(void *user_data,
                                                       grpc_ssl_server_certificate_config **config)
{
    struct server_tls *tls = user_data;
    grpc_ssl_certificate_config_reload_status status = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    char *error = NULL;
    bool reloaded = false;

    pthread_mutex_lock(&tls->lock);
    check_files_locked(tls, &error, &reloaded);
    if (tls->delivered != tls->generation) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->pem.private_key,
                                           .cert_chain = tls->pem.cert_chain};

        /* gRPC copies the PEM text and destroys the config after use. Its fetcher path
         * asserts (GPR_DEBUG_ASSERT, live in Debian's build) that root certificates are given
         * even when no client certificate is asked for; they are then never used, as the
         * server sends no certificate request, so the server's own chain stands in. */
        *config = grpc_ssl_server_certificate_config_create(
            tls->pem.client_ca ? tls->pem.client_ca : tls->pem.cert_chain, &pair, 1);
        if (*config) {
            tls->delivered = tls->generation;
            status = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        }
    }
    pthread_mutex_unlock(&tls->lock);
    if (error)
        log_warning("the gRPC listener's TLS files changed but cannot be used; new connections "
                    "keep getting the previous certificate",
                    "error", error);
    else if (reloaded)
        log_info("gRPC listener's TLS files changed: new connections get the new certificate");
    free(error);
    return status;
}

int server_tls_new(const struct tls_files_server *files, struct server_tls **ret_tls,
                   char **reterr_msg)
{
    struct server_tls *tls = calloc(1, sizeof(*tls));
    int r;

    if (!tls)
        return errmsg_set(reterr_msg, -ENOMEM, "out of memory");
    pthread_mutex_init(&tls->lock, NULL);
    tls->require_client_cert = files->client_ca_file != NULL;
    tls->next_check_ms = clock_now_ms() + CHECK_INTERVAL_MS;
    r = load_locked(tls, files, reterr_msg);
    if (r < 0) {
        server_tls_free(tls);
        return r;
    }
    *ret_tls = tls;
    return 0;
}

grpc_server_credentials *server_tls_credentials(struct server_tls *tls)
{
    grpc_ssl_server_credentials_options *options =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            tls->require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            fetch, tls);

    /* Takes the options. */
    return options ? grpc_ssl_server_credentials_create_with_options(options) : NULL;
}

int server_tls_reload(struct server_tls *tls, const struct tls_files_server *files,
                      char **reterr_msg)
{
    int r;

    if ((files->client_ca_file != NULL) != tls->require_client_cert)
        return errmsg_set(reterr_msg, -EINVAL,
                          "tls_client_ca_file: requiring client certificates or not needs a "
                          "restart");
    pthread_mutex_lock(&tls->lock);
    r = load_locked(tls, files, reterr_msg);
    pthread_mutex_unlock(&tls->lock);
    return r;
}

struct server_tls *server_tls_free(struct server_tls *tls)
{
    if (!tls)
        return NULL;
    tls_files_pem_done(&tls->pem);
    for (int i = 0; i < FILES; i++)
        free(tls->paths[i]);
    pthread_mutex_destroy(&tls->lock);
    free(tls);
    return NULL;
}
