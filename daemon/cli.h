/*
 * cli.h - the client commands of flyte-databricks-connector (agents, submit, status, cancel,
 * logs),
 * and what they share: option parsing, reading files, GetTask/DeleteTask, the watch loop.
 *
 * Entry points: main() calls cli_<command>_main(argc, argv) with argv[0] the command name
 * ("submit"), and exits with what it returns. Exit codes (enum cli_exit):
 *   0   success
 *   1   a call failed (the daemon answered an error or could not be reached), or a cancel
 *       after Ctrl-C failed
 *   2   usage error or bad input (unknown option, unreadable or invalid file)
 *   3   the run ended in a phase other than SUCCEEDED (submit --wait, status --watch,
 *       logs --follow)
 *   130 interrupted by SIGINT (submit --wait cancels the run first)
 * Errors are one line on stderr: "flyte-databricks-connector submit: cannot read 'x.json': No
 * such file or directory". Results go to stdout.
 *
 * Threads: every function runs on the main thread of a client process; the watch loop takes
 * SIGINT with sigtimedwait(), so the commands that watch block it before gRPC starts threads.
 */
#ifndef FDC_CLI_H
#define FDC_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "client.h"
#include "flyteidl/admin/agent.pb-c.h"

#define CLI_PROGRAM "flyte-databricks-connector"
#define CLI_DEFAULT_ADDRESS "127.0.0.1:8000"
#define CLI_DEFAULT_TIMEOUT_MS 10000
#define CLI_DEFAULT_TASK_TYPE "spark"
#define CLI_DEFAULT_INTERVAL_MS 2000
/* Largest template, inputs or resource_meta file read. */
#define CLI_MAX_FILE_BYTES (16 * 1024 * 1024)

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_NOT_SUCCEEDED = 3,
    CLI_EXIT_INTERRUPTED = 130,
};

/* The commands. argv (borrowed) holds argc strings, argv[0] the command name; getopt state is
 * reset on entry. Each returns an enum cli_exit value. */
int cli_agents_main(int argc, char **argv);
int cli_submit_main(int argc, char **argv);
int cli_status_main(int argc, char **argv);
int cli_cancel_main(int argc, char **argv);
int cli_logs_main(int argc, char **argv);

/* ---- shared by the commands (cli.c) ---- */

/* The options every command takes. Strings borrow from argv. */
struct cli_common {
    const char *command; /* argv[0], for messages */
    const char *address;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int64_t timeout_ms;
    bool help; /* --help given: print usage, exit 0 */
};

/* A command's own option: "--name" with or without a value; id is passed to the handler. */
struct cli_option {
    const char *name;
    bool has_arg;
    int id;
};

/* Handles one of the command's own options (arg borrowed from argv; NULL without a value).
 * Returns 0, or -EINVAL with *reterr_msg (gives; free()) for a bad value. */
typedef int (*cli_option_fn)(void *context, int id, const char *arg, char **reterr_msg);

/*
 * Parses argv: common options into *common, the command's own (own[0..n_own), borrowed)
 * through fn(context, ...), the rest as positionals: *ret_first is the argv index of the first,
 * *ret_count how many (getopt moves them to the end). Returns CLI_EXIT_OK, or CLI_EXIT_USAGE
 * after printing one error line. With --help, returns CLI_EXIT_OK and sets common->help.
 */
int cli_parse(int argc, char **argv, const struct cli_option *own, size_t n_own, cli_option_fn fn,
              void *context, struct cli_common *common, int *ret_first, int *ret_count);

/*
 * cli_parse() for a command that takes exactly one positional argument, named `what` in its
 * messages ("TEMPLATE"): with --help prints usage(stdout) and returns CLI_EXIT_OK with
 * common->help set; otherwise sets *ret_arg (borrows argv) or prints one error line and returns
 * CLI_EXIT_USAGE.
 */
int cli_parse_one(int argc, char **argv, const struct cli_option *own, size_t n_own,
                  cli_option_fn fn, void *context, void (*usage)(FILE *out), const char *what,
                  struct cli_common *common, const char **ret_arg);

/* Prints the help lines of the common options (for a command's --help). */
void cli_print_common_help(FILE *out);

/* Prints "flyte-databricks-connector <command>: <message>\n" on stderr. */
__attribute__((format(printf, 2, 3))) void cli_error(const char *command, const char *fmt, ...);

/* Parses a positive number of seconds ("10", "0.2") up to a day into milliseconds (rounded
 * up, at least 1). Returns 0 or -EINVAL. */
int cli_parse_seconds(const char *text, int64_t *ret_ms);

/* The values of the options several commands share, for their cli_option_fn: --task-type T
 * (non-empty; *ret borrows arg) and --interval SECONDS. Return 0, or -EINVAL with *reterr_msg
 * (gives; free()) naming what was expected. */
int cli_option_task_type(const char *arg, const char **ret, char **reterr_msg);
int cli_option_interval(const char *arg, int64_t *ret_ms, char **reterr_msg);

/* Reads a whole file of at most max bytes. Gives *ret_data (free(); NUL-terminated one byte past
 * *ret_len). Returns 0, or a -errno with *reterr_msg "cannot read 'PATH': <strerror>" (gives;
 * free()). */
int cli_read_file(const char *path, size_t max, uint8_t **ret_data, size_t *ret_len,
                  char **reterr_msg);

/* Unpacks `len` bytes (borrowed) as a `descriptor` message once pbdepth has checked that they
 * nest no deeper than PBDEPTH_REQUEST_MAX levels: protobuf-c recurses once per level, so a
 * deeply nested answer or file would overflow the stack. Gives the message (free with
 * protobuf_c_message_free_unpacked()), or NULL with *reterr_msg "message nests deeper than N
 * levels" (gives; free()) or NULL *reterr_msg when the bytes are not such a message. */
ProtobufCMessage *cli_unpack(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data,
                             size_t len, char **reterr_msg);

/* Packs `message` into a new buffer: gives *ret_data (free()) and *ret_len. 0 or -ENOMEM. */
int cli_pack(const ProtobufCMessage *message, uint8_t **ret_data, size_t *ret_len);

/* Whether path ends in suffix (".pb"). */
bool cli_has_suffix(const char *path, const char *suffix);

/* Connects as the common options say (reads the TLS files). Gives *ret_client (free with
 * client_free()). Returns CLI_EXIT_OK, or CLI_EXIT_USAGE / CLI_EXIT_FAILED after printing one
 * error line. */
int cli_connect(const struct cli_common *common, struct client **ret_client);

/* Calls method with request (borrowed); on OK gives the answer bytes in *ret_reply (free with
 * client_reply_done()). Returns CLI_EXIT_OK, or CLI_EXIT_FAILED after printing "<Method>
 * failed: CODE: details". *ret_status (may be NULL) gets the call's status either way. */
int cli_call(const struct cli_common *common, struct client *client, const char *method,
             const uint8_t *request, size_t request_len, struct client_reply *ret_reply,
             grpc_status_code *ret_status);

/* Reads RESOURCE_META as given on the command line: the JSON itself when it starts with '{',
 * else the path of a file holding it (surrounding whitespace dropped). Checks it is a
 * resource_meta the daemon reads. Gives *ret_data (free()). Returns CLI_EXIT_OK or
 * CLI_EXIT_USAGE after printing one error line. */
int cli_load_resource_meta(const struct cli_common *common, const char *arg, uint8_t **ret_data,
                           size_t *ret_len);

/* GetTask once, printing the state as "phase: ...", "message: ...", "log: ...", "error: ..."
 * lines. Returns CLI_EXIT_OK or CLI_EXIT_FAILED. */
int cli_status_once(const struct cli_common *common, struct client *client,
                    const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type);

/* GetTask failures in a row a following command rides out (daemon restarting, network blip)
 * when they are of a transient kind; propeller tolerates a few too. */
#define CLI_MAX_TRANSIENT_FAILURES 3

/* GetTask once; on CLI_EXIT_OK gives *ret_response (free with
 * flyteidl__admin__get_task_response__free_unpacked()), else *ret_status says why and
 * *ret_error (gives, free(); may be NULL on OOM) what to print. */
int cli_get_task(const struct cli_common *common, struct client *client,
                 const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type,
                 Flyteidl__Admin__GetTaskResponse **ret_response, grpc_status_code *ret_status,
                 char **ret_error);

/* "<Method> failed: CODE: details" (and a hint for UNAVAILABLE), for a call that ended with
 * `status`. Gives the text (free()), NULL on OOM. */
char *cli_failure_text(const struct cli_common *common, const char *method, grpc_status_code status,
                       const char *details);

/* True for statuses worth riding out (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED). */
bool cli_transient(grpc_status_code code);

/* Sleeps up to ms in sigtimedwait() on `set` (a blocked SIGINT); true when SIGINT came. */
bool cli_sleep_or_interrupt(const sigset_t *set, int64_t ms);

/* DeleteTask once. Returns CLI_EXIT_OK or CLI_EXIT_FAILED (error printed). */
int cli_delete_task(const struct cli_common *common, struct client *client,
                    const uint8_t *resource_meta, size_t resource_meta_len, const char *task_type);

struct cli_watch {
    const struct cli_common *common; /* borrows */
    struct client *client;           /* borrows */
    const uint8_t *resource_meta;    /* borrows */
    size_t resource_meta_len;
    const char *task_type; /* borrows */
    int64_t interval_ms;
    bool cancel_on_interrupt;  /* SIGINT sends DeleteTask (submit --wait) or just stops */
    const sigset_t *interrupt; /* borrows: the blocked set holding SIGINT */
};

/* Polls GetTask every interval until a terminal phase or SIGINT. On a terminal (isatty(stdout),
 * TERM not "dumb") one status line is rewritten in place; otherwise one plain line per phase
 * change. Ends with the final phase, message, log links and agent error. Returns CLI_EXIT_OK
 * (SUCCEEDED), CLI_EXIT_NOT_SUCCEEDED, CLI_EXIT_FAILED (GetTask kept failing, or the cancel
 * failed) or CLI_EXIT_INTERRUPTED. */
int cli_watch_run(const struct cli_watch *w);

/* Blocks SIGINT in the calling thread (and the threads it starts later) and fills *set with
 * it, for cli_watch.interrupt. Call before cli_connect(). */
void cli_block_interrupt(sigset_t *set);

#endif
