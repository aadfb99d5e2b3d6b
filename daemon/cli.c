/*
 * cli.c - what the client commands share: option parsing with one set of common options,
 * file reading with one-line errors, the GetTask/DeleteTask requests, and the watch loop behind
 * `submit --wait` and `status --watch`.
 *
 * The watch loop sleeps in sigtimedwait() on a blocked SIGINT, so Ctrl-C is taken in normal
 * context between polls (never in a handler) and a call in flight is never cut: it ends by its
 * own deadline. Main thread of a client process only.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "flyteidl/admin/agent.pb-c.h"
#include "pbdepth.h"
#include "phase.h"
#include "resmeta.h"
#include "secret.h"

#define GET_TASK "/flyteidl.service.AsyncAgentService/GetTask"
#define DELETE_TASK "/flyteidl.service.AsyncAgentService/DeleteTask"

/* Largest CA bundle, certificate or key file read. */
#define MAX_PEM_BYTES (1024 * 1024)
/* Columns assumed when the terminal does not say. */
#define DEFAULT_COLUMNS 80
#define LINE_SIZE 1024

#define CLEAR_LINE "\r\x1b[2K"

enum common_id {
    OPT_ADDRESS = 256,
    OPT_CA_FILE,
    OPT_CERT,
    OPT_KEY,
    OPT_TIMEOUT,
    OPT_HELP,
    /* A command's own options are numbered from here, by index in its table. */
    OPT_OWN = 512,
};

static const struct option common_options[] = {
    {"addr", required_argument, NULL, OPT_ADDRESS},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
};

#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))
#define MAX_OWN 16

/* Status codes worth waiting out in the watch loop; the rest are answers about the run. */
static const grpc_status_code transient_codes[] = {
    GRPC_STATUS_UNAVAILABLE,
    GRPC_STATUS_DEADLINE_EXCEEDED,
    GRPC_STATUS_RESOURCE_EXHAUSTED,
};

void cli_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s %s: ", CLI_PROGRAM, command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_print_common_help(FILE *out)
{
    fprintf(out,
            "  --addr HOST:PORT     the daemon's gRPC address (default " CLI_DEFAULT_ADDRESS ")\n"
            "  --ca-file FILE       use TLS, trusting the CAs in FILE (default: plaintext)\n"
            "  --cert FILE          client certificate for TLS (with --key and --ca-file)\n"
            "  --key FILE           private key of --cert\n"
            "  --timeout SECONDS    deadline of each call (default %d)\n"
            "  --help               show this help\n"
            "\n"
            "Exit status: 0 success, 1 the call or the run failed, 2 usage or bad input,\n"
            "3 the run ended in a phase other than SUCCEEDED, 130 interrupted.\n",
            CLI_DEFAULT_TIMEOUT_MS / 1000);
}

int cli_parse_seconds(const char *text, int64_t *ret_ms)
{
    char *end = NULL;
    double seconds;

    if (!text || !*text || strspn(text, "0123456789.") != strlen(text))
        return -EINVAL;
    errno = 0;
    seconds = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(seconds) || seconds <= 0 || seconds > 86400)
        return -EINVAL;
    *ret_ms = (int64_t)ceil(seconds * 1000);
    return 0;
}

int cli_option_task_type(const char *arg, const char **ret, char **reterr_msg)
{
    if (!*arg)
        return errmsg_set(reterr_msg, -EINVAL, "expected a task type, got ''");
    *ret = arg;
    return 0;
}

int cli_option_interval(const char *arg, int64_t *ret_ms, char **reterr_msg)
{
    if (cli_parse_seconds(arg, ret_ms) < 0)
        return errmsg_set(reterr_msg, -EINVAL, "expected a positive number of seconds, got '%s'",
                          arg);
    return 0;
}

/* HOST:PORT with a non-empty host ("[::1]" allowed) and a port of 1-65535. */
static bool valid_address(const char *address)
{
    const char *colon = strrchr(address, ':');
    char *end = NULL;
    long port;

    if (!colon || colon == address || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port >= 1 && port <= 65535 && strlen(colon + 1) <= 5;
}

/* The option as the user typed it, without any "=value", for messages. */
static void option_text(char out[64], const char *arg)
{
    size_t n = strcspn(arg, "=");

    snprintf(out, 64, "%.*s", (int)(n < 60 ? n : 60), arg);
}

static int common_option(struct cli_common *common, int id, const char *arg)
{
    switch (id) {
    case OPT_ADDRESS:
        if (!valid_address(arg)) {
            cli_error(common->command, "--addr: expected HOST:PORT, got '%s'", arg);
            return CLI_EXIT_USAGE;
        }
        common->address = arg;
        break;
    case OPT_CA_FILE:
        common->ca_file = arg;
        break;
    case OPT_CERT:
        common->cert_file = arg;
        break;
    case OPT_KEY:
        common->key_file = arg;
        break;
    case OPT_TIMEOUT:
        if (cli_parse_seconds(arg, &common->timeout_ms) < 0) {
            cli_error(common->command, "--timeout: expected a positive number of seconds, got '%s'",
                      arg);
            return CLI_EXIT_USAGE;
        }
        break;
    case OPT_HELP:
        common->help = true;
        break;
    }
    return CLI_EXIT_OK;
}

int cli_parse(int argc, char **argv, const struct cli_option *own, size_t n_own, cli_option_fn fn,
              void *context, struct cli_common *common, int *ret_first, int *ret_count)
{
    struct option options[N_COMMON + MAX_OWN + 1];
    char what[64];
    char *error = NULL;
    int opt, r;

    *common = (struct cli_common){
        .command = argc > 0 && argv[0] ? argv[0] : "client",
        .address = CLI_DEFAULT_ADDRESS,
        .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
    };
    if (n_own > MAX_OWN) {
        cli_error(common->command, "too many options");
        return CLI_EXIT_USAGE;
    }
    memcpy(options, common_options, sizeof(common_options));
    for (size_t i = 0; i < n_own; i++)
        options[N_COMMON + i] = (struct option){
            own[i].name, own[i].has_arg ? required_argument : no_argument, NULL, OPT_OWN + (int)i};
    options[N_COMMON + n_own] = (struct option){0};

    /* optind 0 makes glibc start over, so several commands may parse in one process. */
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            common->help = true;
            break;
        case ':':
            option_text(what, argv[optind - 1]);
            cli_error(common->command, "option '%s' needs a value", what);
            return CLI_EXIT_USAGE;
        case '?':
            option_text(what,
                        optopt && optopt < 256 ? (char[]){'-', (char)optopt, 0} : argv[optind - 1]);
            if (optopt >= OPT_ADDRESS)
                cli_error(common->command, "option '%s' takes no value", what);
            else
                cli_error(common->command, "unknown option '%s' (see --help)", what);
            return CLI_EXIT_USAGE;
        default:
            if (opt >= OPT_OWN) {
                r = fn(context, own[opt - OPT_OWN].id, optarg, &error);
                if (r < 0) {
                    cli_error(common->command, "--%s: %s", own[opt - OPT_OWN].name,
                              error ? error : "invalid value");
                    free(error);
                    return CLI_EXIT_USAGE;
                }
            } else if (common_option(common, opt, optarg) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (common->help) {
        *ret_first = optind;
        *ret_count = 0;
        return CLI_EXIT_OK;
    }
    if (!common->cert_file != !common->key_file) {
        cli_error(common->command, "--cert and --key go together");
        return CLI_EXIT_USAGE;
    }
    if (common->cert_file && !common->ca_file) {
        cli_error(common->command, "--cert needs --ca-file (a client certificate means TLS)");
        return CLI_EXIT_USAGE;
    }
    *ret_first = optind;
    *ret_count = argc - optind;
    return CLI_EXIT_OK;
}

int cli_parse_one(int argc, char **argv, const struct cli_option *own, size_t n_own,
                  cli_option_fn fn, void *context, void (*usage)(FILE *out), const char *what,
                  struct cli_common *common, const char **ret_arg)
{
    int first, count, r;

    r = cli_parse(argc, argv, own, n_own, fn, context, common, &first, &count);
    if (r != CLI_EXIT_OK)
        return r;
    if (common->help) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (count != 1) {
        if (count == 0)
            cli_error(common->command, "missing %s (see --help)", what);
        else
            cli_error(common->command, "expected one %s, got %d arguments", what, count);
        return CLI_EXIT_USAGE;
    }
    *ret_arg = argv[first];
    return CLI_EXIT_OK;
}

bool cli_has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);

    return n > m && strcmp(path + n - m, suffix) == 0;
}

int cli_read_file(const char *path, size_t max, uint8_t **ret_data, size_t *ret_len,
                  char **reterr_msg)
{
    int fd = -1;
    uint8_t *data = NULL;
    size_t len = 0, size = 0;
    struct stat st;
    int r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        goto fail;
    }
    for (;;) {
        ssize_t n;

        if (len == size) {
            uint8_t *bigger;

            if (size > max) {
                r = -EFBIG;
                goto fail;
            }
            size = size ? size * 2 : 4096;
            bigger = realloc(data, size + 1);
            if (!bigger) {
                r = -ENOMEM;
                goto fail;
            }
            data = bigger;
        }
        n = read(fd, data + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        r = -EFBIG;
        goto fail;
    }
    if (!data) {
        data = malloc(1);
        if (!data) {
            r = -ENOMEM;
            goto fail;
        }
    }
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    close(fd);
    return 0;
fail:
    if (r == -EFBIG) {
        if (asprintf(reterr_msg, "cannot read '%s': larger than %zu bytes", path, max) < 0)
            *reterr_msg = NULL;
    } else if (asprintf(reterr_msg, "cannot read '%s': %s", path, strerror(-r)) < 0) {
        *reterr_msg = NULL;
    }
    free(data);
    if (fd >= 0)
        close(fd);
    return r;
}

/* Reads a PEM file and checks it holds the expected block ("CERTIFICATE", "PRIVATE KEY"). */
static int read_pem(const struct cli_common *common, const char *path, const char *block,
                    char **ret_pem)
{
    uint8_t *data = NULL;
    size_t len;
    char *error = NULL;

    if (cli_read_file(path, MAX_PEM_BYTES, &data, &len, &error) < 0) {
        cli_error(common->command, "%s", error ? error : "cannot read a file");
        free(error);
        return CLI_EXIT_USAGE;
    }
    if (!strstr((char *)data, "-----BEGIN") || !strstr((char *)data, block)) {
        cli_error(common->command, "'%s' holds no PEM %s", path, block);
        explicit_bzero(data, len);
        free(data);
        return CLI_EXIT_USAGE;
    }
    *ret_pem = (char *)data;
    return CLI_EXIT_OK;
}

int cli_connect(const struct cli_common *common, struct client **ret_client)
{
    char *ca = NULL, *cert = NULL, *key = NULL;
    char *error = NULL;
    struct client_options options = {
        .address = common->address,
        .timeout_ms = common->timeout_ms,
        /* gRPC's own log lines would break the one-line error rule; its env knobs win. */
        .quiet = !getenv("GRPC_VERBOSITY") && !getenv("GRPC_TRACE"),
    };
    int r;

    if (common->ca_file && (r = read_pem(common, common->ca_file, "CERTIFICATE", &ca)))
        goto out;
    if (common->cert_file && (r = read_pem(common, common->cert_file, "CERTIFICATE", &cert)))
        goto out;
    if (common->key_file && (r = read_pem(common, common->key_file, "PRIVATE KEY", &key)))
        goto out;
    options.ca_pem = ca;
    options.cert_pem = cert;
    options.key_pem = key;
    if (client_new(&options, ret_client, &error) < 0) {
        cli_error(common->command, "%s", error ? error : "cannot start the gRPC client");
        r = CLI_EXIT_FAILED;
        goto out;
    }
    r = CLI_EXIT_OK;
out:
    free(error);
    secret_free(ca);
    secret_free(cert);
    secret_free(key);
    return r;
}

char *cli_failure_text(const struct cli_common *common, const char *method, grpc_status_code status,
                       const char *details)
{
    const char *name = strrchr(method, '/') ? strrchr(method, '/') + 1 : method;
    char text[LINE_SIZE], hint[128] = "", *out;

    errmsg_printable(text, sizeof(text), details, ERRMSG_ONE_LINE);
    if (status == GRPC_STATUS_UNAVAILABLE)
        snprintf(hint, sizeof(hint), " (is the daemon listening on %.64s?)", common->address);
    if (asprintf(&out, "%s failed: %s%s%s%s", name, client_status_name(status), *text ? ": " : "",
                 text, hint) < 0)
        return NULL;
    return out;
}

/* One call; a failure comes back as *ret_error ("GetTask failed: CODE: details"; gives,
 * free()), for the caller to print when its screen is ready for it. */
static int call_checked(const struct cli_common *common, struct client *client, const char *method,
                        const uint8_t *request, size_t request_len, struct client_reply *ret_reply,
                        grpc_status_code *ret_status, char **ret_error)
{
    struct client_reply reply = {0};
    const char *name = strrchr(method, '/') ? strrchr(method, '/') + 1 : method;
    char *error = NULL;

    *ret_status = GRPC_STATUS_UNKNOWN;
    if (client_call(client, method, request, request_len, &reply, &error) < 0) {
        if (asprintf(ret_error, "%s: %s", name, error ? error : "cannot call") < 0)
            *ret_error = NULL;
        free(error);
        return CLI_EXIT_FAILED;
    }
    *ret_status = reply.status;
    if (reply.status != GRPC_STATUS_OK) {
        *ret_error = cli_failure_text(common, method, reply.status, reply.details);
        client_reply_done(&reply);
        return CLI_EXIT_FAILED;
    }
    *ret_reply = reply;
    return CLI_EXIT_OK;
}

int cli_call(const struct cli_common *common, struct client *client, const char *method,
             const uint8_t *request, size_t request_len, struct client_reply *ret_reply,
             grpc_status_code *ret_status)
{
    grpc_status_code status;
    char *error = NULL;
    int r;

    r = call_checked(common, client, method, request, request_len, ret_reply, &status, &error);
    if (r != CLI_EXIT_OK)
        cli_error(common->command, "%s", error ? error : "call failed");
    if (ret_status)
        *ret_status = status;
    free(error);
    return r;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int cli_load_resource_meta(const struct cli_common *common, const char *arg, uint8_t **ret_data,
                           size_t *ret_len)
{
    uint8_t *data = NULL;
    size_t len = 0, start = 0;
    char *error = NULL;
    struct resmeta meta = {0};
    bool literal;
    int r;

    while (is_space((uint8_t)arg[start]))
        start++;
    literal = arg[start] == '{';
    if (literal) {
        data = (uint8_t *)strdup(arg + start);
        if (!data) {
            cli_error(common->command, "out of memory");
            r = CLI_EXIT_FAILED;
            goto out;
        }
        len = strlen((char *)data);
    } else if (cli_read_file(arg, RESMETA_MAX_LEN, &data, &len, &error) < 0) {
        cli_error(common->command, "%s", error ? error : "cannot read the resource_meta");
        r = CLI_EXIT_USAGE;
        goto out;
    } else {
        /* A file written by `submit > meta.json` ends in a newline; the daemon gets the JSON. */
        for (start = 0; start < len && is_space(data[start]); start++)
            ;
        memmove(data, data + start, len - start + 1);
        len -= start;
    }
    while (len > 0 && is_space(data[len - 1]))
        data[--len] = '\0';
    if (len == 0) {
        cli_error(common->command, "'%s' is empty: expected a resource_meta JSON object", arg);
        r = CLI_EXIT_USAGE;
        goto out;
    }
    if (resmeta_decode(data, len, &meta, &error) < 0) {
        if (literal)
            cli_error(common->command, "%s", error ? error : "invalid resource_meta");
        else
            cli_error(common->command, "'%s': %s", arg, error ? error : "invalid resource_meta");
        r = CLI_EXIT_USAGE;
        goto out;
    }
    *ret_data = data;
    *ret_len = len;
    data = NULL;
    r = CLI_EXIT_OK;
out:
    resmeta_done(&meta);
    free(error);
    free(data);
    return r;
}

ProtobufCMessage *cli_unpack(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data,
                             size_t len, char **reterr_msg)
{
    *reterr_msg = NULL;
    if (pbdepth_check(descriptor, data, len, PBDEPTH_REQUEST_MAX, reterr_msg) < 0)
        return NULL;
    return protobuf_c_message_unpack(descriptor, NULL, len, data);
}

int cli_pack(const ProtobufCMessage *message, uint8_t **ret_data, size_t *ret_len)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *data = malloc(len + 1); /* + 1: an empty message still gets a buffer */

    if (!data)
        return -ENOMEM;
    *ret_len = protobuf_c_message_pack(message, data);
    *ret_data = data;
    return 0;
}

/* ---- GetTask / DeleteTask ---- */

/* What a GetTaskRequest and a DeleteTaskRequest carry (the same fields, in two C types). */
struct run_request {
    ProtobufCBinaryData resource_meta;
    Flyteidl__Admin__TaskCategory *category;
};

/* A method on a run, and how its request is packed (cli_pack()). */
struct run_method {
    const char *path;
    int (*pack)(const struct run_request *run, uint8_t **ret_data, size_t *ret_len);
};

static int pack_get(const struct run_request *run, uint8_t **ret_data, size_t *ret_len)
{
    Flyteidl__Admin__GetTaskRequest req = FLYTEIDL__ADMIN__GET_TASK_REQUEST__INIT;

    req.task_category = run->category;
    req.resource_meta = run->resource_meta;
    return cli_pack(&req.base, ret_data, ret_len);
}

static int pack_delete(const struct run_request *run, uint8_t **ret_data, size_t *ret_len)
{
    Flyteidl__Admin__DeleteTaskRequest req = FLYTEIDL__ADMIN__DELETE_TASK_REQUEST__INIT;

    req.task_category = run->category;
    req.resource_meta = run->resource_meta;
    return cli_pack(&req.base, ret_data, ret_len);
}

static const struct run_method get_task = {GET_TASK, pack_get};
static const struct run_method delete_task = {DELETE_TASK, pack_delete};

/* Calls `method` on the run resource_meta names, as call_checked() does (a failure, packing
 * included, comes back as *ret_error). */
static int call_run(const struct cli_common *common, struct client *client,
                    const struct run_method *method, const uint8_t *resource_meta,
                    size_t resource_meta_len, const char *task_type, struct client_reply *ret_reply,
                    grpc_status_code *ret_status, char **ret_error)
{
    Flyteidl__Admin__TaskCategory category = FLYTEIDL__ADMIN__TASK_CATEGORY__INIT;
    const struct run_request run = {{resource_meta_len, (uint8_t *)resource_meta}, &category};
    uint8_t *buf = NULL;
    size_t len;
    int r;

    *ret_error = NULL;
    *ret_status = GRPC_STATUS_UNKNOWN;
    category.name = (char *)task_type;
    category.version = 0;
    if (method->pack(&run, &buf, &len) < 0) {
        *ret_error = strdup("out of memory");
        return CLI_EXIT_FAILED;
    }
    r = call_checked(common, client, method->path, buf, len, ret_reply, ret_status, ret_error);
    free(buf);
    return r;
}

int cli_get_task(const struct cli_common *common, struct client *client,
                 const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type,
                 Flyteidl__Admin__GetTaskResponse **ret_response, grpc_status_code *ret_status,
                 char **ret_error)
{
    ProtobufCMessage *resp = NULL;
    struct client_reply reply = {0};
    char *unpack_error = NULL;
    int r;

    r = call_run(common, client, &get_task, resource_meta, resource_meta_len, task_type, &reply,
                 ret_status, ret_error);
    if (r != CLI_EXIT_OK)
        goto out;
    resp = cli_unpack(&flyteidl__admin__get_task_response__descriptor, reply.data, reply.len,
                      &unpack_error);
    if (!resp) {
        if (asprintf(ret_error, "GetTask: the answer %s",
                     unpack_error ? unpack_error : "is not a GetTaskResponse") < 0)
            *ret_error = NULL;
        *ret_status = GRPC_STATUS_INTERNAL;
        r = CLI_EXIT_FAILED;
        goto out;
    }
    *ret_response = (Flyteidl__Admin__GetTaskResponse *)resp;
    r = CLI_EXIT_OK;
out:
    client_reply_done(&reply);
    free(unpack_error);
    return r;
}

int cli_delete_task(const struct cli_common *common, struct client *client,
                    const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type)
{
    struct client_reply reply = {0};
    grpc_status_code status;
    char *error = NULL;
    int r;

    r = call_run(common, client, &delete_task, resource_meta, resource_meta_len, task_type, &reply,
                 &status, &error);
    if (r != CLI_EXIT_OK)
        cli_error(common->command, "%s", error ? error : "call failed");
    client_reply_done(&reply);
    free(error);
    return r;
}

static const char *enum_name(const ProtobufCEnumDescriptor *descriptor, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(descriptor, value);

    return v ? v->name : "?";
}

/* "log: URI (name)" per link, "error: ..." for an agent error. */
static void print_details(FILE *out, const Flyteidl__Admin__Resource *res)
{
    char line[LINE_SIZE], name[128];

    for (size_t i = 0; res && i < res->n_log_links; i++) {
        const Flyteidl__Core__TaskLog *link = res->log_links[i];

        if (!link || !link->uri || !*link->uri)
            continue;
        errmsg_printable(line, sizeof(line), link->uri, ERRMSG_ONE_LINE);
        errmsg_printable(name, sizeof(name), link->name, ERRMSG_ONE_LINE);
        fprintf(out, "log: %s%s%s%s\n", line, *name ? " (" : "", name, *name ? ")" : "");
    }
    if (res && res->agent_error) {
        errmsg_printable(line, sizeof(line), res->agent_error->code, ERRMSG_ONE_LINE);
        fprintf(out, "error: %s (%s, origin %s)\n", *line ? line : "-",
                enum_name(&flyteidl__admin__agent_error__kind__descriptor, res->agent_error->kind),
                enum_name(&flyteidl__core__execution_error__error_kind__descriptor,
                          res->agent_error->origin));
    }
}

/* `prefix` and the message's first line, then each further line indented by two spaces; every
 * line made printable. Nothing for an empty message. */
static void print_message(FILE *out, const char *prefix, const char *message)
{
    char line[LINE_SIZE];

    for (const char *p = message, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        char *piece;

        nl = strchr(p, '\n');
        piece = strndup(p, nl ? (size_t)(nl - p) : strlen(p));
        if (!piece)
            return;
        errmsg_printable(line, sizeof(line), piece, ERRMSG_ONE_LINE);
        free(piece);
        fprintf(out, "%s%s\n", p == message ? prefix : "  ", line);
    }
}

static enum phase resource_phase(const Flyteidl__Admin__Resource *res)
{
    if (!res || (int)res->phase < 0 || (int)res->phase >= (int)_PHASE_MAX)
        return PHASE_UNDEFINED;
    return (enum phase)res->phase;
}

int cli_status_once(const struct cli_common *common, struct client *client,
                    const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type)
{
    Flyteidl__Admin__GetTaskResponse *resp = NULL;
    grpc_status_code status;
    char *error = NULL;
    int r;

    r = cli_get_task(common, client, resource_meta, resource_meta_len, task_type, &resp, &status,
                     &error);
    if (r != CLI_EXIT_OK) {
        cli_error(common->command, "%s", error ? error : "GetTask failed");
        free(error);
        return r;
    }
    printf("phase: %s\n", phase_name(resource_phase(resp->resource)));
    print_message(stdout, "message: ", resp->resource ? resp->resource->message : NULL);
    print_details(stdout, resp->resource);
    flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    return CLI_EXIT_OK;
}

/* ---- the watch loop ---- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_elapsed(char out[32], int64_t ms)
{
    int64_t s = ms / 1000;

    if (ms < 60000)
        snprintf(out, 32, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(out, 32, "%dm%02ds", (int)(s / 60), (int)(s % 60));
    else
        snprintf(out, 32, "%dh%02dm%02ds", (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60));
}

static int terminal_columns(void)
{
    struct winsize ws;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return DEFAULT_COLUMNS;
}

/* Cuts text after max characters (UTF-8 code points), so the line never wraps: a wrapped line
 * cannot be rewritten with \r. */
static void cut_columns(char *text, int max)
{
    int columns = 0;

    for (char *p = text; *p; p++) {
        if (((unsigned char)*p & 0xc0) == 0x80)
            continue;
        if (columns++ == max) {
            *p = '\0';
            return;
        }
    }
}

static const char *first_log_uri(const Flyteidl__Admin__Resource *res)
{
    for (size_t i = 0; res && i < res->n_log_links; i++)
        if (res->log_links[i] && res->log_links[i]->uri && *res->log_links[i]->uri)
            return res->log_links[i]->uri;
    return "";
}

static void show_live(const Flyteidl__Admin__Resource *res, const char *elapsed)
{
    char message[LINE_SIZE], link[LINE_SIZE], line[3 * LINE_SIZE];

    errmsg_printable(message, sizeof(message), res ? res->message : NULL, ERRMSG_ONE_LINE);
    errmsg_printable(link, sizeof(link), first_log_uri(res), ERRMSG_ONE_LINE);
    snprintf(line, sizeof(line), "%s  %s%s%s%s%s", phase_name(resource_phase(res)), elapsed,
             *message ? "  " : "", message, *link ? "  " : "", link);
    cut_columns(line, terminal_columns() - 1);
    printf(CLEAR_LINE "%s", line);
    fflush(stdout);
}

/* One line per phase change; the log link is added when it is new. */
static void show_plain(const Flyteidl__Admin__Resource *res, const char *elapsed, char **last_link)
{
    char message[LINE_SIZE], link[LINE_SIZE];
    bool new_link;

    errmsg_printable(message, sizeof(message), res ? res->message : NULL, ERRMSG_ONE_LINE);
    errmsg_printable(link, sizeof(link), first_log_uri(res), ERRMSG_ONE_LINE);
    new_link = *link && (!*last_link || strcmp(*last_link, link) != 0);
    printf("%8s %s%s%s%s%s\n", elapsed, phase_name(resource_phase(res)), *message ? ": " : "",
           message, new_link ? "  log: " : "", new_link ? link : "");
    if (new_link) {
        free(*last_link);
        *last_link = strdup(link);
    }
    fflush(stdout);
}

static void show_final(const Flyteidl__Admin__Resource *res, const char *elapsed)
{
    char head[96];

    /* A failed run's message holds its exception and traceback, a line each: all of them. */
    snprintf(head, sizeof(head), "%s after %s: ", phase_name(resource_phase(res)), elapsed);
    if (res && res->message && *res->message)
        print_message(stdout, head, res->message);
    else
        printf("%.*s\n", (int)strlen(head) - 2, head);
    print_details(stdout, res);
    fflush(stdout);
}

bool cli_transient(grpc_status_code code)
{
    for (size_t i = 0; i < sizeof(transient_codes) / sizeof(transient_codes[0]); i++)
        if (transient_codes[i] == code)
            return true;
    return false;
}

bool cli_sleep_or_interrupt(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    return sigtimedwait(set, NULL, &ts) == SIGINT;
}

static int interrupted(const struct cli_watch *w, bool live)
{
    if (live)
        printf(CLEAR_LINE);
    if (!w->cancel_on_interrupt) {
        printf("interrupted: stopped watching; the run goes on\n");
        fflush(stdout);
        return CLI_EXIT_INTERRUPTED;
    }
    printf("interrupted: cancelling the run\n");
    fflush(stdout);
    if (cli_delete_task(w->common, w->client, w->resource_meta, w->resource_meta_len,
                        w->task_type) != CLI_EXIT_OK) {
        cli_error(w->common->command,
                  "the run may still be going; cancel it with: %s cancel "
                  "'%.*s'",
                  CLI_PROGRAM, (int)w->resource_meta_len, (const char *)w->resource_meta);
        return CLI_EXIT_FAILED;
    }
    printf("cancelled: DeleteTask acknowledged\n");
    fflush(stdout);
    return CLI_EXIT_INTERRUPTED;
}

int cli_watch_run(const struct cli_watch *w)
{
    const char *term = getenv("TERM");
    bool live = isatty(STDOUT_FILENO) && !(term && strcmp(term, "dumb") == 0);
    Flyteidl__Admin__GetTaskResponse *resp = NULL;
    int64_t started = now_ms();
    int last_phase = -1, failures = 0;
    char *last_link = NULL;
    char elapsed[32];
    int r;

    for (;;) {
        grpc_status_code status = GRPC_STATUS_OK;
        const Flyteidl__Admin__Resource *res;
        enum phase phase;

        char *error = NULL;

        r = cli_get_task(w->common, w->client, w->resource_meta, w->resource_meta_len, w->task_type,
                         &resp, &status, &error);
        if (r != CLI_EXIT_OK) {
            /* Cleared first, so the error line does not land in the middle of the live one. */
            if (live)
                printf(CLEAR_LINE);
            cli_error(w->common->command, "%s", error ? error : "GetTask failed");
            free(error);
            /* Transient trouble (a daemon restarting) is ridden out a few times. */
            if (!cli_transient(status) || ++failures > CLI_MAX_TRANSIENT_FAILURES)
                goto out;
        } else {
            failures = 0;
            res = resp->resource;
            phase = resource_phase(res);
            format_elapsed(elapsed, now_ms() - started);
            if (phase_is_terminal(phase)) {
                if (live)
                    printf(CLEAR_LINE);
                show_final(res, elapsed);
                r = phase == PHASE_SUCCEEDED ? CLI_EXIT_OK : CLI_EXIT_NOT_SUCCEEDED;
                goto out;
            }
            if (live)
                show_live(res, elapsed);
            else if ((int)phase != last_phase)
                show_plain(res, elapsed, &last_link);
            last_phase = (int)phase;
            flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
            resp = NULL;
        }
        if (cli_sleep_or_interrupt(w->interrupt, w->interval_ms)) {
            r = interrupted(w, live);
            goto out;
        }
    }
out:
    if (resp)
        flyteidl__admin__get_task_response__free_unpacked(resp, NULL);
    free(last_link);
    return r;
}

void cli_block_interrupt(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}
