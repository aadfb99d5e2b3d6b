/*
 * fake_workspace.c - the `fake-workspace` subcommand: TLS material, the HTTPS server and the
 * process life around fake_runs (which holds every Jobs API rule).
 *
 * Design: OpenSSL's libcrypto makes a throwaway EC P-256 CA and a server certificate signed by
 * it (so a client verifies the fake exactly as it verifies a real workspace: with a CA file,
 * no "insecure" switch); libmicrohttpd (GnuTLS inside) serves them from memory. The server runs
 * one internal polling thread, which is therefore the only thread that touches the run table:
 * no lock. The main thread only starts, waits for SIGINT/SIGTERM with sigwait() and stops.
 * Standalone tool, not the daemon: it reads TMPDIR itself and logs plain lines to stderr.
 *
 * Secrets: the OAuth client secret (made here unless --client-secret gives one) goes to stdout
 * once, with the other settings a user needs, and never to the log; issued access tokens and
 * request headers are never logged, and every answer body (an access token's included) is
 * wiped when the server frees it.
 */
#include "fake_workspace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "errmsg.h"
#include "fake_runs.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define PROG "fake-workspace"
#define CA_FILE_NAME "ca.pem"
/* Far above any real submit body (a few KiB); what a caller can make the fake hold is at most
 * MAX_BODY per connection, MAX_CONNECTIONS connections, and only after authenticating. */
#define MAX_BODY (1024u * 1024)
#define MAX_CONNECTIONS 64u
#define MAX_SECONDS 86400.0
/* Issued access tokens kept: a daemon asks for one per client per lifetime, so a demo or a
 * test stays far below; past it, the oldest are refused. */
#define MAX_TOKENS 1024u
/* Random bytes in a generated client secret. */
#define SECRET_BYTES 16
#define CERT_VALID_SECONDS 86400L
/* notBefore is set this far back so a client whose clock lags a little still accepts it. */
#define CERT_BACKDATE_SECONDS 3600L

enum {
    OPT_PENDING = 256,
    OPT_RUNNING,
    OPT_TERMINATING,
    OPT_MAX_RUNS,
    OPT_CLIENT_ID,
    OPT_CLIENT_SECRET,
    OPT_OAUTH_EXPIRES,
    OPT_QUIET,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"port", required_argument, NULL, 'p'},
    {"host", required_argument, NULL, 'H'},
    {"dir", required_argument, NULL, 'd'},
    {"token", required_argument, NULL, 't'},
    {"pending-seconds", required_argument, NULL, OPT_PENDING},
    {"running-seconds", required_argument, NULL, OPT_RUNNING},
    {"terminating-seconds", required_argument, NULL, OPT_TERMINATING},
    {"max-runs", required_argument, NULL, OPT_MAX_RUNS},
    {"client-id", required_argument, NULL, OPT_CLIENT_ID},
    {"client-secret", required_argument, NULL, OPT_CLIENT_SECRET},
    {"oauth-expires-seconds", required_argument, NULL, OPT_OAUTH_EXPIRES},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "Usage: flyte-databricks-connector fake-workspace [OPTIONS]\n"
    "\n"
    "Serve a fake Databricks workspace over HTTPS, to try the daemon locally. Its certificate\n"
    "is signed by a throwaway CA written to DIR/ca.pem. Once listening it prints instance=,\n"
    "ca_file=, client_id=, client_secret= and token= lines (token= last) on stdout, how to\n"
    "point the daemon at it on stderr, then a line per request on stderr (never a header, a\n"
    "body or a secret). SIGINT or SIGTERM stops it.\n"
    "\n"
    "What it serves:\n"
    "  POST /api/2.1/jobs/runs/submit\n"
    "        A one-time run: one task (spark_python_task, notebook_task or spark_jar_task in\n"
    "        the body) or a multi-task run (tasks[], each with a task_key). A repeated\n"
    "        idempotency_token gives the first run's id.\n"
    "  GET  /api/2.1/jobs/runs/get?run_id=ID\n"
    "        The run's state and its tasks[], each task run with its own run id\n"
    "        (ID*100+1, ID*100+2, ...).\n"
    "  POST /api/2.1/jobs/runs/cancel\n"
    "        An unfinished run turns TERMINATING, then TERMINATED/CANCELED.\n"
    "  GET  /api/2.1/jobs/runs/get-output?run_id=ID\n"
    "        A task run's output: logs once it runs, the error and its traceback when it\n"
    "        failed, a notebook's exit value. For a run's own id only when it has one task.\n"
    "  POST /oidc/v1/token\n"
    "        OAuth for a service principal: the client id and secret as HTTP Basic\n"
    "        credentials, grant_type=client_credentials, scope=all-apis; answers an access\n"
    "        token valid --oauth-expires-seconds.\n"
    "The Jobs API takes \"Authorization: Bearer\" with the token or an unexpired access token.\n"
    "A run stays PENDING, then RUNNING, then ends TERMINATED/SUCCESS, or FAILED when its\n"
    "run_name contains \"fail\" or a task parameter is \"--fail\".\n"
    "\n"
    "Options (S: seconds, fractions allowed, 0-86400):\n"
    "  --port P                   port to listen on; 0 picks a free one (default 0)\n"
    "  --host ADDR                IPv4 address to listen on (default 127.0.0.1)\n"
    "  --dir DIR                  where ca.pem goes (default: a temporary directory,\n"
    "                             removed on exit)\n"
    "  --token T                  the static bearer token (default fake-token)\n"
    "  --client-id ID             the service principal's client id, without ':'\n"
    "                             (default: a random UUID)\n"
    "  --client-secret SECRET     its client secret (default: random); shown on stdout only\n"
    "  --oauth-expires-seconds N  lifetime of an access token, 1-86400 (default 3600)\n"
    "  --pending-seconds S        time a run stays PENDING (default 1)\n"
    "  --running-seconds S        time a run stays RUNNING (default 2)\n"
    "  --terminating-seconds S    time a cancelled run stays TERMINATING (default 1)\n"
    "  --max-runs N               runs kept, 1-10000000; older ones are forgotten\n"
    "                             (default 10000)\n"
    "  --quiet                    no line per request, nor the one on stopping\n"
    "  --help                     show this help\n";

struct options {
    const char *host;
    unsigned port;
    const char *dir; /* NULL: make a temporary one */
    const char *token;
    const char *client_id;     /* NULL: made at start */
    const char *client_secret; /* NULL: made at start */
    int64_t token_lifetime_s;
    int64_t pending_ms;
    int64_t running_ms;
    int64_t terminating_ms;
    size_t max_runs;
    bool quiet;
};

/* State the MHD thread reads; set up before the server starts and freed after it stops. */
struct workspace {
    struct fake_runs *runs;  /* owns; MHD thread only while serving */
    uint64_t token_requests; /* requests to the token endpoint so far; MHD thread only */
    bool quiet;
};

/* One request being received: its body, gathered across MHD upload calls. */
struct request {
    char *body; /* owns */
    size_t len;
    size_t cap;
    uint64_t token_request; /* its number among the token endpoint's requests; 0: another path */
};

static int64_t wall_clock_ms(void)
{
    struct timespec ts;

    /* Wall time, not monotonic: start_time/end_time in the answers are epoch milliseconds. */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- options ------------------------------------------------------------------------------- */

static int parse_seconds(const char *text, int64_t *ret_ms)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 0 || v > MAX_SECONDS)
        return -EINVAL;
    *ret_ms = llround(v * 1000.0);
    return 0;
}

static int parse_unsigned(const char *text, unsigned long max, unsigned long *ret)
{
    char *end = NULL;
    unsigned long v;

    if (!*text || strspn(text, "0123456789") != strlen(text))
        return -EINVAL;
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* A non-empty text of visible ASCII without any of `forbidden`: safe on a settings line and in
 * an HTTP header. */
static int parse_visible(const char *text, const char *forbidden)
{
    if (!*text)
        return -EINVAL;
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr(forbidden, *p))
            return -EINVAL;
    return 0;
}

/* The option an argument names, without any "=VALUE": getopt's own messages repeat the whole
 * argument, so `--client-secrets=S` (a typo) or `--client=S` (ambiguous) would print S. */
static void option_shown(char out[64], const char *arg)
{
    char name[64];
    size_t n = strcspn(arg, "=");

    snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) - 1 ? n : sizeof(name) - 1), arg);
    errmsg_printable(out, 64, name, ERRMSG_QUOTED);
}

static const char *option_name(int c)
{
    for (size_t i = 0; long_options[i].name; i++)
        if (long_options[i].val == c)
            return long_options[i].name;
    return "?";
}

/* Returns 0 to run, 1 when --help was printed, or -EINVAL after printing a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
    unsigned long n;
    int c;

    *o = (struct options){
        .host = "127.0.0.1",
        .token = "fake-token",
        .token_lifetime_s = 3600,
        .pending_ms = 1000,
        .running_ms = 2000,
        .terminating_ms = 1000,
        .max_runs = 10000,
    };
    optind = 0; /* full getopt reset: main may have parsed its own options already */
    opterr = 0; /* the errors are printed below, without the values */
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        char shown[64];
        int r = 0;

        switch (c) {
        case 'p':
            r = parse_unsigned(optarg, 65535, &n);
            o->port = (unsigned)n;
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'd':
            r = *optarg ? 0 : -EINVAL;
            o->dir = optarg;
            break;
        case 't':
            /* The token goes into an HTTP header: printable ASCII without spaces only. */
            r = *optarg && strspn(optarg, "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`"
                                          "abcdefghijklmnopqrstuvwxyz|~/=") == strlen(optarg)
                    ? 0
                    : -EINVAL;
            o->token = optarg;
            break;
        case OPT_CLIENT_ID:
            /* Basic credentials split the id from the secret at the first ':'. */
            r = parse_visible(optarg, ":");
            o->client_id = optarg;
            break;
        case OPT_CLIENT_SECRET:
            r = parse_visible(optarg, "");
            o->client_secret = optarg;
            break;
        case OPT_OAUTH_EXPIRES:
            r = parse_unsigned(optarg, FAKE_RUNS_TOKEN_LIFETIME_MAX_S, &n);
            o->token_lifetime_s = (int64_t)n;
            r = r == 0 && n == 0 ? -EINVAL : r;
            break;
        case OPT_PENDING:
            r = parse_seconds(optarg, &o->pending_ms);
            break;
        case OPT_RUNNING:
            r = parse_seconds(optarg, &o->running_ms);
            break;
        case OPT_TERMINATING:
            r = parse_seconds(optarg, &o->terminating_ms);
            break;
        case OPT_MAX_RUNS:
            r = parse_unsigned(optarg, 10000000, &n);
            o->max_runs = (size_t)n;
            r = r == 0 && n == 0 ? -EINVAL : r;
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 1;
        case ':':
            option_shown(shown, argv[optind - 1]);
            fprintf(stderr, "%s: option '%s' needs a value\n%s", PROG, shown, usage_text);
            return -EINVAL;
        default:
            /* optopt: a short option's letter (none is known), a long option's value when it
             * was given one it takes none of, or 0 (unknown or ambiguous long option). */
            option_shown(shown, optopt > 0 && optopt < 256 ? (char[]){'-', (char)optopt, 0}
                                                           : argv[optind - 1]);
            if (optopt >= OPT_PENDING)
                fprintf(stderr, "%s: option '%s' takes no value\n%s", PROG, shown, usage_text);
            else
                fprintf(stderr, "%s: unknown or ambiguous option '%s'\n%s", PROG, shown,
                        usage_text);
            return -EINVAL;
        }
        if (r < 0) {
            /* A secret is not repeated, even a malformed one. */
            fprintf(stderr, "%s: invalid value '%s' for --%s\n%s", PROG,
                    c == OPT_CLIENT_SECRET ? "(not shown)" : optarg, option_name(c), usage_text);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n%s", PROG, argv[optind], usage_text);
        return -EINVAL;
    }
    return 0;
}

/* ---- TLS material -------------------------------------------------------------------------- */

struct ext {
    int nid;
    const char *value;
};

/* The CA may sign server certificates only. */
static const struct ext ca_exts[] = {
    {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
    {NID_key_usage, "critical,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
};

/* The server certificate; the subjectAltName entry is filled in at run time. */
static const struct ext server_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "serverAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
};

static char *openssl_error(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "unknown error");
    ERR_clear_error();
    return errmsg_format("generating the TLS certificates: %s: %s", what, buf);
}

static int add_exts(X509 *x, X509 *issuer, const struct ext *exts, size_t n, const char *san)
{
    X509V3_CTX ctx;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    for (size_t i = 0; i <= n; i++) {
        int nid = i < n ? exts[i].nid : NID_subject_alt_name;
        const char *value = i < n ? exts[i].value : san;
        X509_EXTENSION *e;
        int ok;

        if (!value)
            continue;
        e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        ok = e && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        if (!ok)
            return -EINVAL;
    }
    return 0;
}

/* Makes a certificate for key named cn, signed by issuer/issuer_key (NULL: self-signed).
 * Gives *ret (X509_free()). */
static int make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                     const struct ext *exts, size_t n_exts, const char *san, X509 **ret,
                     char **reterr_msg)
{
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    const char *step;
    int r = -EIO;

    step = "certificate";
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3))
        goto out;
    step = "serial number";
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] = (serial[0] & 0x7f) | 0x40; /* positive and full length, as RFC 5280 wants */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    step = "validity";
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -CERT_BACKDATE_SECONDS) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), CERT_VALID_SECONDS))
        goto out;
    step = "names";
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"flyte-databricks-connector fake "
                                                           "workspace",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(x, key))
        goto out;
    step = "extensions";
    if (add_exts(x, issuer ? issuer : x, exts, n_exts, san) < 0)
        goto out;
    step = "signature";
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
        goto out;
    *ret = x;
    x = NULL;
    r = 0;
out:
    if (r < 0)
        *reterr_msg = openssl_error(step);
    BN_free(bn);
    X509_free(x);
    return r;
}

/* Gives the PEM text a BIO holds (free()), or NULL. */
static char *bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);

    return n > 0 ? strndup(data, (size_t)n) : NULL;
}

struct tls {
    char *ca_pem;   /* owns */
    char *cert_pem; /* owns */
    char *key_pem;  /* owns: the server's private key; never written to disk */
};

static void tls_done(struct tls *t)
{
    free(t->ca_pem);
    free(t->cert_pem);
    if (t->key_pem)
        OPENSSL_cleanse(t->key_pem, strlen(t->key_pem));
    free(t->key_pem);
    *t = (struct tls){0};
}

/* Makes the CA and the server certificate for 127.0.0.1, localhost and `extra_ip` (NULL or
 * an IPv4 literal). Fills *ret (tls_done()). */
static int make_tls(const char *extra_ip, struct tls *ret, char **reterr_msg)
{
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    BIO *b_ca = NULL, *b_cert = NULL, *b_key = NULL;
    char *san = NULL;
    struct tls t = {0};
    int r;

    san = extra_ip ? errmsg_format("IP:127.0.0.1,DNS:localhost,IP:%s", extra_ip)
                   : strdup("IP:127.0.0.1,DNS:localhost");
    if (!san) {
        *reterr_msg = strdup("out of memory");
        r = -ENOMEM;
        goto out;
    }
    ca_key = EVP_EC_gen("P-256");
    key = EVP_EC_gen("P-256");
    if (!ca_key || !key) {
        *reterr_msg = openssl_error("EC P-256 key");
        r = -EIO;
        goto out;
    }
    r = make_cert(ca_key, "fake workspace CA", NULL, NULL, ca_exts, ELEMENTSOF(ca_exts), NULL, &ca,
                  reterr_msg);
    if (r < 0)
        goto out;
    r = make_cert(key, "localhost", ca, ca_key, server_exts, ELEMENTSOF(server_exts), san, &cert,
                  reterr_msg);
    if (r < 0)
        goto out;
    b_ca = BIO_new(BIO_s_mem());
    b_cert = BIO_new(BIO_s_mem());
    b_key = BIO_new(BIO_s_mem());
    if (!b_ca || !b_cert || !b_key || !PEM_write_bio_X509(b_ca, ca) ||
        !PEM_write_bio_X509(b_cert, cert) ||
        !PEM_write_bio_PrivateKey(b_key, key, NULL, NULL, 0, NULL, NULL) ||
        !(t.ca_pem = bio_text(b_ca)) || !(t.cert_pem = bio_text(b_cert)) ||
        !(t.key_pem = bio_text(b_key))) {
        *reterr_msg = openssl_error("PEM encoding");
        r = -EIO;
        goto out;
    }
    *ret = t;
    t = (struct tls){0};
    r = 0;
out:
    tls_done(&t);
    BIO_free(b_ca);
    BIO_free(b_cert);
    BIO_free_all(b_key); /* a memory BIO frees its buffer; the key text was copied out */
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    free(san);
    return r;
}

/* ---- files --------------------------------------------------------------------------------- */

static int write_file(const char *path, const char *text, char **reterr_msg)
{
    size_t len = strlen(text), off = 0;
    int fd = -1;
    int r;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        off += (size_t)n;
    }
    r = close(fd) < 0 ? -errno : 0;
    fd = -1;
out:
    if (r < 0)
        *reterr_msg = errmsg_format("cannot write '%s': %s", path, strerror(-r));
    if (fd >= 0)
        close(fd);
    return r;
}

/* Gives *ret_dir (free()): `wanted` (created if missing) or a fresh temporary directory, in
 * which case *ret_made is true and the caller removes it on exit. */
static int make_dir(const char *wanted, char **ret_dir, bool *ret_made, char **reterr_msg)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    int r;

    if (wanted) {
        if (mkdir(wanted, 0755) < 0 && errno != EEXIST) {
            r = -errno;
            *reterr_msg = errmsg_format("cannot create directory '%s': %s", wanted, strerror(-r));
            goto out;
        }
        dir = strdup(wanted);
        *ret_made = false;
    } else {
        dir = errmsg_format("%s/fdc-fake-workspace.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (dir && !mkdtemp(dir)) {
            r = -errno;
            *reterr_msg =
                errmsg_format("cannot create a directory like '%s': %s", dir, strerror(-r));
            goto out;
        }
        *ret_made = true;
    }
    if (!dir) {
        r = -ENOMEM;
        *reterr_msg = strdup("out of memory");
        goto out;
    }
    *ret_dir = dir;
    dir = NULL;
    r = 0;
out:
    free(dir);
    return r;
}

/* ---- network ------------------------------------------------------------------------------- */

/* Binds host:port (IPv4) and listens. Gives *ret_fd and the port bound. */
static int listen_on(const char *host, unsigned port, int *ret_fd, unsigned *ret_port,
                     char **reterr_msg)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd = -1;
    int r;

    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) !=
        1) {
        *reterr_msg = errmsg_format("--host '%s' is not an IPv4 address", host);
        r = -EINVAL;
        goto out;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        r = -errno;
        *reterr_msg = errmsg_format("cannot listen on %s:%u: %s", host, port, strerror(-r));
        goto out;
    }
    *ret_fd = fd;
    *ret_port = ntohs(sa.sin_port);
    fd = -1;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    return r;
}

static enum MHD_Result count_run_id(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct fake_runs_request *req = cls;

    (void)kind;
    if (strcmp(key, "run_id") == 0 && req->query_run_id_count++ == 0)
        req->query_run_id = value ? value : "";
    return MHD_YES;
}

/* Frees an answer body once MHD has sent it: wiped first, as it may be an access token's. */
static void free_body(void *body)
{
    explicit_bzero(body, strlen(body));
    free(body);
}

static enum MHD_Result send_answer(struct MHD_Connection *c, int status, char *body)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_body);
    if (!resp) {
        free_body(body);
        return MHD_NO;
    }
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* One line per answer, unless --quiet: never a header or a body, which may hold the client
 * secret or an access token. token_request: the request's number at the token endpoint, 0 for
 * another path. */
static void log_answer(const struct workspace *ws, const char *method, const char *url, int status,
                       int64_t run_id, uint64_t token_request)
{
    char id[48] = "", path[256];

    if (ws->quiet)
        return;
    if (run_id >= 0)
        snprintf(id, sizeof(id), " run_id=%" PRId64, run_id);
    else if (token_request)
        snprintf(id, sizeof(id), " token_request=%" PRIu64, token_request);
    /* The path is the client's (decoded) text: no control characters reach the terminal. */
    errmsg_printable(path, sizeof(path), url, ERRMSG_QUOTED);
    fprintf(stderr, "%s: %s %s%s -> %d\n", PROG, method, path, id, status);
}

/* Before any body is read: a caller without the credentials the path needs, or one announcing
 * a body over MAX_BODY, is answered at once (MHD then closes the connection without reading
 * the body). Returns MHD_YES to go on reading, else what queuing the refusal gave. */
static enum MHD_Result refuse_early(struct workspace *ws, struct MHD_Connection *c, const char *url,
                                    const char *method, uint64_t token_request, bool *refused)
{
    const char *length =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const struct fake_runs_request req = {
        .method = method,
        .path = url,
        .authorization =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .now_ms = wall_clock_ms(),
    };
    struct fake_runs_answer answer = {0};
    int r;

    *refused = true;
    r = fake_runs_authorize(ws->runs, &req, &answer);
    if (r < 0)
        return MHD_NO;
    if (r == 0) {
        log_answer(ws, method, url, answer.http_status, -1, token_request);
        return send_answer(c, answer.http_status, answer.body);
    }
    if (length && (strspn(length, "0123456789") != strlen(length) || strlen(length) > 9 ||
                   strtoul(length, NULL, 10) > MAX_BODY)) {
        char *body = strdup("{\"error_code\":\"MALFORMED_REQUEST\","
                            "\"message\":\"request too large\"}");

        log_answer(ws, method, url, 413, -1, token_request);
        return body ? send_answer(c, 413, body) : MHD_NO;
    }
    *refused = false;
    return MHD_YES;
}

/* Gathers the body; answers once it is complete. Runs on the MHD thread. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct workspace *ws = cls;
    struct request *rq = *con_cls;
    struct fake_runs_answer answer = {0};

    (void)version;
    if (!rq) {
        /* Every request to the token endpoint counts, refused ones too. */
        uint64_t token_request =
            strcmp(url, FAKE_RUNS_OIDC_TOKEN_PATH) == 0 ? ++ws->token_requests : 0;
        bool refused;
        enum MHD_Result r = refuse_early(ws, c, url, method, token_request, &refused);

        if (refused)
            return r;
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        rq->token_request = token_request;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        /* A body without Content-Length that grows past the cap: drop the connection. */
        if (n > MAX_BODY - rq->len)
            return MHD_NO;
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            char *p;

            while (cap < rq->len + n)
                cap *= 2;
            p = realloc(rq->body, cap);
            if (!p)
                return MHD_NO;
            rq->body = p;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }

    {
        unsigned char entropy[FAKE_RUNS_ENTROPY_BYTES];
        struct fake_runs_request req = {
            .method = method,
            .path = url,
            .authorization =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            .body = rq->body,
            .body_len = rq->len,
            .now_ms = wall_clock_ms(),
            .entropy = rq->token_request ? entropy : NULL,
        };
        int r;

        /* Only a token request may be given a token; without randomness it is dropped. */
        if (rq->token_request && RAND_bytes(entropy, sizeof(entropy)) != 1)
            return MHD_NO;
        (void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_run_id, &req);
        r = fake_runs_handle(ws->runs, &req, &answer);
        explicit_bzero(entropy, sizeof(entropy));
        if (r < 0)
            return MHD_NO;
    }
    log_answer(ws, method, url, answer.http_status, answer.run_id, rq->token_request);
    /* The answer's body passes to MHD (free_body), so it is not released here. */
    return send_answer(c, answer.http_status, answer.body);
}

/* MHD's own errors (a client failing the TLS handshake, ...), prefixed like ours. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strcspn(line, "\n");
    fprintf(stderr, "%s: %.*s\n", PROG, (int)n, line);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* ---- the OAuth client ---------------------------------------------------------------------- */

/* Gives *ret (free()) the hex text of `n` random bytes after `prefix`; for a UUID (uuid true,
 * n 16) the version 4 form 8-4-4-4-12. */
static int random_text(const char *prefix, size_t n, bool uuid, char **ret, char **reterr_msg)
{
    unsigned char bytes[SECRET_BYTES];
    size_t len = strlen(prefix) + 2 * n + 5;
    char *text;

    if (n > sizeof(bytes) || RAND_bytes(bytes, (int)n) != 1)
        return errmsg_set(reterr_msg, -EIO, "cannot draw random bytes for the OAuth client");
    text = malloc(len);
    if (!text) {
        explicit_bzero(bytes, sizeof(bytes));
        return errmsg_set(reterr_msg, -ENOMEM, "out of memory");
    }
    if (uuid) {
        bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);
        bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
    }
    strcpy(text, prefix);
    for (size_t i = 0, at = strlen(prefix); i < n; i++) {
        at += (size_t)snprintf(text + at, len - at, "%02x", bytes[i]);
        if (uuid && (i == 3 || i == 5 || i == 7 || i == 9))
            text[at++] = '-';
    }
    explicit_bzero(bytes, sizeof(bytes));
    *ret = text;
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

/* Everything one run of the command holds; session_done() releases what was set up. */
struct session {
    struct options o;
    struct workspace ws;
    struct tls tls;
    struct MHD_Daemon *mhd;
    int fd;        /* the listening socket until MHD owns it, else -1 */
    char *dir;     /* where the CA file goes */
    bool dir_made; /* made here (no --dir given): removed at the end */
    char *ca_path;
    bool ca_written;
    char *address;            /* HOST:PORT clients dial */
    char *made_client_id;     /* owns: made at start when no --client-id */
    char *made_client_secret; /* owns (wiped): made at start when no --client-secret */
    sigset_t stop_set, old_mask;
    bool mask_set;
};

/* Listening socket, certificates, the CA file and the run table. */
static int session_prepare(struct session *s, char **reterr_msg)
{
    struct fake_runs_options fro;
    const char *shown_host, *extra_ip;
    unsigned port = 0;

    if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
        return errmsg_set(reterr_msg, -ENOTSUP, "this libmicrohttpd was built without TLS support");
    /* The certificate must name the address clients dial; 0.0.0.0 is reached as 127.0.0.1. */
    shown_host = strcmp(s->o.host, "localhost") == 0 || strcmp(s->o.host, "0.0.0.0") == 0
                     ? "127.0.0.1"
                     : s->o.host;
    extra_ip = strcmp(shown_host, "127.0.0.1") != 0 ? shown_host : NULL;
    if (listen_on(s->o.host, s->o.port, &s->fd, &port, reterr_msg) < 0 ||
        make_tls(extra_ip, &s->tls, reterr_msg) < 0 ||
        make_dir(s->o.dir, &s->dir, &s->dir_made, reterr_msg) < 0)
        return -1;
    s->ca_path = errmsg_format("%s/%s", s->dir, CA_FILE_NAME);
    s->address = errmsg_format("%s:%u", shown_host, port);
    if (!s->ca_path || !s->address)
        return errmsg_set(reterr_msg, -ENOMEM, "out of memory");
    if (write_file(s->ca_path, s->tls.ca_pem, reterr_msg) < 0)
        return -1;
    s->ca_written = true;
    /* Like a Databricks service principal: a UUID for an application id, a "dose" secret. */
    if ((!s->o.client_id && random_text("", 16, true, &s->made_client_id, reterr_msg) < 0) ||
        (!s->o.client_secret &&
         random_text("dose", SECRET_BYTES, false, &s->made_client_secret, reterr_msg) < 0))
        return -1;
    if (!s->o.client_id)
        s->o.client_id = s->made_client_id;
    if (!s->o.client_secret)
        s->o.client_secret = s->made_client_secret;

    fro = (struct fake_runs_options){
        .address = s->address,
        .token = s->o.token,
        .pending_ms = s->o.pending_ms,
        .running_ms = s->o.running_ms,
        .terminating_ms = s->o.terminating_ms,
        .max_runs = s->o.max_runs,
        .client_id = s->o.client_id,
        .client_secret = s->o.client_secret,
        .token_lifetime_s = s->o.token_lifetime_s,
        .max_tokens = MAX_TOKENS,
    };
    if (fake_runs_new(&fro, &s->ws.runs, reterr_msg) < 0)
        return -1;
    s->ws.quiet = s->o.quiet;
    return 0;
}

/* Blocks the stop signals, starts the HTTPS server and says where it listens. */
static int session_start(struct session *s, char **reterr_msg)
{
    sigset_t block_set;
    int r;

    /* Blocked before MHD starts its thread, which inherits the mask: signals reach sigwait(). */
    sigemptyset(&s->stop_set);
    sigaddset(&s->stop_set, SIGINT);
    sigaddset(&s->stop_set, SIGTERM);
    block_set = s->stop_set;
    sigaddset(&block_set, SIGPIPE);
    r = pthread_sigmask(SIG_BLOCK, &block_set, &s->old_mask);
    if (r != 0)
        return errmsg_set(reterr_msg, -r, "cannot block signals: %s", strerror(r));
    s->mask_set = true;

    /* The logger goes first: MHD logs through the default one until it has read this option. */
    s->mhd = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, &s->ws, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_HTTPS_MEM_KEY, s->tls.key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, s->tls.cert_pem, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
        MHD_OPTION_END);
    if (!s->mhd)
        return errmsg_set(reterr_msg, -EIO, "cannot start the HTTPS server on %s", s->address);
    s->fd = -1; /* MHD closes the listening socket when it stops */

    /* token= comes last: a reader waiting for it has every line. */
    printf("instance=%s\nca_file=%s\nclient_id=%s\nclient_secret=%s\ntoken=%s\n", s->address,
           s->ca_path, s->o.client_id, s->o.client_secret, s->o.token);
    fflush(stdout);
    /* The client secret is not repeated here: stderr is the log. */
    fprintf(stderr,
            "%s: serving a fake Databricks Jobs API on https://%s (CA %s). Point the daemon at "
            "it with:\n  FLYTE_DATABRICKS_ACCESS_TOKEN=%s flyte-databricks-connector serve "
            "--instance %s --ca-file %s\nor, as a service principal (OAuth, tokens valid "
            "%" PRId64 " s), with DATABRICKS_CLIENT_ID=%s and DATABRICKS_CLIENT_SECRET set to "
            "the client_secret printed on stdout instead of the token.\n",
            PROG, s->address, s->ca_path, s->o.token, s->address, s->ca_path, s->o.token_lifetime_s,
            s->o.client_id);
    return 0;
}

/* Waits for SIGINT or SIGTERM. */
static int session_wait(const struct session *s, char **reterr_msg)
{
    int sig = 0, r;

    do {
        r = sigwait(&s->stop_set, &sig);
    } while (r == EINTR);
    if (r != 0)
        return errmsg_set(reterr_msg, -r, "sigwait: %s", strerror(r));
    if (!s->o.quiet)
        fprintf(stderr, "%s: %s, stopping\n", PROG, strsignal(sig));
    return 0;
}

static void session_done(struct session *s)
{
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    if (s->mask_set)
        (void)pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
    if (s->fd >= 0)
        close(s->fd);
    if (s->dir_made && s->ca_written)
        (void)unlink(s->ca_path);
    if (s->dir_made)
        (void)rmdir(s->dir);
    fake_runs_free(s->ws.runs);
    tls_done(&s->tls);
    free(s->ca_path);
    free(s->address);
    free(s->dir);
    free(s->made_client_id);
    if (s->made_client_secret) {
        explicit_bzero(s->made_client_secret, strlen(s->made_client_secret));
        free(s->made_client_secret);
    }
}

int fake_workspace_main(int argc, char **argv)
{
    struct session s = {.fd = -1};
    char *error = NULL;
    int status = 1;
    int r;

    r = parse_options(argc, argv, &s.o);
    if (r != 0) {
        status = r > 0 ? 0 : 2;
        goto out;
    }
    if (session_prepare(&s, &error) < 0 || session_start(&s, &error) < 0 ||
        session_wait(&s, &error) < 0)
        goto out;
    status = 0;
out:
    session_done(&s);
    if (error) {
        fprintf(stderr, "%s: %s\n", PROG, error);
        free(error);
    }
    return status;
}
