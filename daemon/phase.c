/* phase: maps a Databricks runs/get answer to a Flyte phase with tables, not if-chains.
 *
 * Inputs, newest first: status.state + status.termination_details{code,type,message}, then
 * state.life_cycle_state + state.result_state + state.state_message (values from the Jobs API
 * 2.1 reference and databricks-sdk-go service/jobs/model.go). A run that is not over gets a
 * progress phase from its state; a run that is over gets a verdict, looked up in this order:
 *   1. termination code  (most specific: says exactly why the run ended)
 *   2. termination type  (CLIENT_ERROR / INTERNAL_ERROR / CLOUD_FAILURE families)
 *   3. a life cycle state that is itself a verdict (SKIPPED, INTERNAL_ERROR)
 *   4. result state
 *   5. nothing known: RETRYABLE_FAILED, origin SYSTEM, raw values in the message.
 * So RUN_EXECUTION_ERROR (the user's code failed), which Databricks types CLIENT_ERROR, is
 * decided by its code row: RETRYABLE_FAILED origin USER like result FAILED, so Flyte spends the
 * task's own retries on it; the CLIENT_ERROR type row (FAILED, not recoverable) only catches
 * configuration codes we don't know yet.
 *
 * Retryable vs final: propeller counts RETRYABLE_FAILED against the task's retries and ends
 * the attempt, FAILED ends the task (flyteplugins pluginmachinery/core/phase.go). Bad
 * configuration fails the same way every time, so it is FAILED; the user's code failing and
 * platform or quota trouble are worth another attempt.
 *
 * Robustness: a field of the wrong JSON type counts as absent, so a malformed "status" falls
 * back to "state"; only an answer with neither is an error. An unknown state keeps polling
 * (Flyte's own timeouts bound it) rather than failing a run that may be fine.
 *
 * Pure and stateless: any thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "phase.h"

/* Longest raw Databricks value quoted in a message or kept as error_code. */
#define RAW_MAX 64

struct row {
    const char *name;
    enum phase phase;
    enum phase_origin origin; /* meaningful for FAILED and RETRYABLE_FAILED only */
};

/* Tables: every name appears once per table; order is irrelevant (linear search over a few
 * dozen rows). In the two state tables, a non-terminal phase is the answer while the run goes
 * on, PHASE_UNDEFINED means "over: the verdict comes from the outcome tables", and a terminal
 * phase means "over, and the state itself is the verdict (step 3 above)". The outcome tables
 * hold terminal phases only. tests/unit/test_phase.c checks every row. */

static const struct row life_cycle_rows[] = {
    {"QUEUED", PHASE_QUEUED, PHASE_ORIGIN_UNKNOWN},
    {"BLOCKED", PHASE_QUEUED, PHASE_ORIGIN_UNKNOWN},
    {"PENDING", PHASE_INITIALIZING, PHASE_ORIGIN_UNKNOWN},
    {"RUNNING", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    {"TERMINATING", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    /* Databricks retries the task itself; the run is not over for Flyte. */
    {"WAITING_FOR_RETRY", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    {"TERMINATED", PHASE_UNDEFINED, PHASE_ORIGIN_UNKNOWN},
    {"SKIPPED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"INTERNAL_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
};

static const struct row status_state_rows[] = {
    {"QUEUED", PHASE_QUEUED, PHASE_ORIGIN_UNKNOWN},
    {"BLOCKED", PHASE_QUEUED, PHASE_ORIGIN_UNKNOWN},
    {"PENDING", PHASE_INITIALIZING, PHASE_ORIGIN_UNKNOWN},
    {"RUNNING", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    {"TERMINATING", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    {"WAITING", PHASE_RUNNING, PHASE_ORIGIN_UNKNOWN},
    {"TERMINATED", PHASE_UNDEFINED, PHASE_ORIGIN_UNKNOWN},
};

static const struct row code_rows[] = {
    {"SUCCESS", PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN},
    {"SUCCESS_WITH_FAILURES", PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN},
    {"USER_CANCELED", PHASE_ABORTED, PHASE_ORIGIN_UNKNOWN},
    /* Databricks cancelled it, e.g. timeout_seconds reached: still no verdict on the code. */
    {"CANCELED", PHASE_ABORTED, PHASE_ORIGIN_UNKNOWN},
    {"RUN_EXECUTION_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
    /* The user's externally managed cluster went away; a later attempt may find it back. */
    {"CLUSTER_TERMINATED_BY_USER", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
    {"SKIPPED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"DISABLED", PHASE_FAILED, PHASE_ORIGIN_USER},
    /* Configuration: the same submission fails the same way again. */
    {"INVALID_CLUSTER_REQUEST", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"REPOSITORY_CHECKOUT_FAILED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"LIBRARY_INSTALLATION_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"UNAUTHORIZED_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"INVALID_RUN_CONFIGURATION", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"FEATURE_DISABLED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"RESOURCE_NOT_FOUND", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"STORAGE_ACCESS_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
    /* A budget cap does not lift within a task's retry window. */
    {"BUDGET_POLICY_LIMIT_EXCEEDED", PHASE_FAILED, PHASE_ORIGIN_USER},
    /* Platform trouble and quotas: another attempt later may well succeed. */
    {"INTERNAL_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"CLOUD_FAILURE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"DRIVER_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"CLUSTER_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"WORKSPACE_RUN_LIMIT_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"CLUSTER_REQUEST_LIMIT_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"MAX_CONCURRENT_RUNS_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"MAX_JOB_QUEUE_SIZE_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"MAX_SPARK_CONTEXTS_EXCEEDED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    /* Databricks says it retries these itself with a mitigation config. */
    {"BREAKING_CHANGE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
};

static const struct row type_rows[] = {
    {"SUCCESS", PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN},
    {"CLIENT_ERROR", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"INTERNAL_ERROR", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"CLOUD_FAILURE", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
};

static const struct row result_rows[] = {
    {"SUCCESS", PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN},
    {"SUCCESS_WITH_FAILURES", PHASE_SUCCEEDED, PHASE_ORIGIN_UNKNOWN},
    {"FAILED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
    {"TIMEDOUT", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_USER},
    {"CANCELED", PHASE_ABORTED, PHASE_ORIGIN_UNKNOWN},
    {"MAXIMUM_CONCURRENT_RUNS_REACHED", PHASE_RETRYABLE_FAILED, PHASE_ORIGIN_SYSTEM},
    {"EXCLUDED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"UPSTREAM_FAILED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"UPSTREAM_CANCELED", PHASE_FAILED, PHASE_ORIGIN_USER},
    {"DISABLED", PHASE_FAILED, PHASE_ORIGIN_USER},
};

/* Indexed by enum phase. */
static const char *const phase_names[_PHASE_MAX] = {
    [PHASE_UNDEFINED] = "UNDEFINED",
    [PHASE_QUEUED] = "QUEUED",
    [PHASE_RUNNING] = "RUNNING",
    [PHASE_SUCCEEDED] = "SUCCEEDED",
    [PHASE_ABORTED] = "ABORTED",
    [PHASE_FAILED] = "FAILED",
    [PHASE_INITIALIZING] = "INITIALIZING",
    [PHASE_WAITING_FOR_RESOURCES] = "WAITING_FOR_RESOURCES",
    [PHASE_RETRYABLE_FAILED] = "RETRYABLE_FAILED",
};

#define LOOKUP(table, name) lookup((table), sizeof(table) / sizeof((table)[0]), (name))

static const struct row *lookup(const struct row *rows, size_t n, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

const char *phase_name(enum phase p)
{
    if ((unsigned)p >= _PHASE_MAX)
        return "UNDEFINED";
    return phase_names[p];
}

bool phase_is_terminal(enum phase p)
{
    return p == PHASE_SUCCEEDED || p == PHASE_FAILED || p == PHASE_ABORTED ||
           p == PHASE_RETRYABLE_FAILED;
}

void phase_result_done(struct phase_result *r)
{
    if (!r)
        return;
    free(r->message);
    r->message = NULL;
    free(r->run_page_url);
    r->run_page_url = NULL;
    free(r->error_code);
    r->error_code = NULL;
    free(r->custom_info);
    r->custom_info = NULL;
    r->custom_info_len = 0;
}

/* A non-empty string member of obj, else NULL: wrong types count as absent. */
static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *it;

    if (!cJSON_IsObject(obj))
        return NULL;
    it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0])
        return NULL;
    return it->valuestring;
}

static const cJSON *get_obj(const cJSON *obj, const char *key)
{
    const cJSON *it;

    if (!cJSON_IsObject(obj))
        return NULL;
    it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(it) ? it : NULL;
}

/* Fixed-size message builder: appends silently stop at the cap and remember the cut. */
struct msg {
    char buf[PHASE_MESSAGE_MAX + 1];
    size_t len;
    bool cut;
};

static void msg_put(struct msg *m, const char *bytes, size_t n)
{
    if (m->cut || m->len + n > PHASE_MESSAGE_MAX) {
        m->cut = true;
        return;
    }
    memcpy(m->buf + m->len, bytes, n);
    m->len += n;
}

/* Appends free text: invalid UTF-8 becomes '?', control characters other than newline and
 * tab become a space. Stops at the first NUL, so the reads in utf8_len() stay in bounds. */
static void msg_text(struct msg *m, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p && !m->cut) {
        size_t n = errmsg_utf8_len(p);
        if (n == 0) {
            msg_put(m, "?", 1);
            p++;
        } else if (n == 1 && (*p < 0x20 || *p == 0x7F) && *p != '\n' && *p != '\t') {
            msg_put(m, " ", 1);
            p++;
        } else {
            msg_put(m, (const char *)p, n);
            p += n;
        }
    }
}

/* Copies a raw Databricks identifier, cut to RAW_MAX bytes and escaped (ERRMSG_QUOTED): these
 * are enum names, so the escaping only ever touches garbage. */
static void raw_copy(char out[RAW_MAX + 4], const char *s)
{
    errmsg_printable(out, RAW_MAX + 4, s, ERRMSG_QUOTED);
}

static void msg_raw(struct msg *m, const char *label, const char *value)
{
    char raw[RAW_MAX + 4];

    raw_copy(raw, value);
    msg_text(m, label);
    msg_put(m, "'", 1);
    msg_text(m, raw);
    msg_put(m, "'", 1);
}

/* Appends state_message and the termination message; both when they differ. */
static void msg_details(struct msg *m, const char *prefix, const char *state_msg,
                        const char *term_msg)
{
    if (term_msg && state_msg && strcmp(term_msg, state_msg) == 0)
        term_msg = NULL;
    if (!state_msg) {
        state_msg = term_msg;
        term_msg = NULL;
    }
    if (!state_msg)
        return;
    if (prefix)
        msg_text(m, prefix);
    msg_text(m, state_msg);
    if (term_msg) {
        msg_text(m, ": ");
        msg_text(m, term_msg);
    }
}

static char *msg_finish(struct msg *m)
{
    if (m->cut) {
        /* Back off to a character boundary with room for the ellipsis. */
        m->len = PHASE_MESSAGE_MAX - 3;
        while (m->len > 0 && ((unsigned char)m->buf[m->len] & 0xC0) == 0x80)
            m->len--;
        memcpy(m->buf + m->len, "...", 3);
        m->len += 3;
    }
    m->buf[m->len] = '\0';
    return strdup(m->buf);
}

/* Only http(s) URLs become log links: the Flyte console renders them as hrefs. Anything else
 * leaves *ret_url NULL. Returns 0 or -ENOMEM. */
static int url_copy(const char *url, char **ret_url)
{
    size_t n;

    *ret_url = NULL;
    if (!url)
        return 0;
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return 0;
    n = strlen(url);
    if (n > PHASE_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7F)
            return 0;
    *ret_url = strdup(url);
    return *ret_url ? 0 : -ENOMEM;
}

/* The parts of a runs/get answer the phase is decided on. Strings borrow from the answer and
 * are NULL when absent, empty or of the wrong type. */
struct run_values {
    const char *state_name;      /* status.state, else state.life_cycle_state */
    const struct row *state_row; /* its row; NULL: a state we do not know */
    const char *lc_name;         /* state.life_cycle_state */
    const struct row *lc_row;
    const char *code, *type, *term_msg; /* status.termination_details */
    const char *result, *state_msg;     /* state.result_state, state.state_message */
};

/* Fills *v from run; -EINVAL when the answer has neither status.state nor a life cycle. */
static int read_values(const cJSON *run, struct run_values *v)
{
    const cJSON *status = get_obj(run, "status"), *state = get_obj(run, "state");
    const cJSON *details = get_obj(status, "termination_details");

    *v = (struct run_values){
        .lc_name = get_str(state, "life_cycle_state"),
        .result = get_str(state, "result_state"),
        .state_msg = get_str(state, "state_message"),
        .code = get_str(details, "code"),
        .type = get_str(details, "type"),
        .term_msg = get_str(details, "message"),
    };
    v->state_name = get_str(status, "state");
    if (v->state_name) {
        v->state_row = LOOKUP(status_state_rows, v->state_name);
    } else if (v->lc_name) {
        /* Without status, termination details are not trusted either: they belong to it. */
        v->state_name = v->lc_name;
        v->state_row = LOOKUP(life_cycle_rows, v->lc_name);
        v->code = v->type = v->term_msg = NULL;
    } else {
        return -EINVAL;
    }
    if (v->lc_name)
        v->lc_row = LOOKUP(life_cycle_rows, v->lc_name);
    return 0;
}

/* The verdict on a run that is over, in the order explained at the top of this file; NULL
 * when nothing Databricks said is known to us. */
static const struct row *find_verdict(const struct run_values *v)
{
    const struct row *verdict = LOOKUP(code_rows, v->code);

    if (!verdict)
        verdict = LOOKUP(type_rows, v->type);
    if (!verdict && v->lc_row && phase_is_terminal(v->lc_row->phase))
        verdict = v->lc_row;
    if (!verdict && phase_is_terminal(v->state_row->phase))
        verdict = v->state_row;
    if (!verdict)
        verdict = LOOKUP(result_rows, v->result);
    return verdict;
}

/* A run that is over: sets res's phase and origin and writes the message. */
static void describe_outcome(struct msg *m, const struct run_values *v, const struct row *verdict,
                             struct phase_result *res)
{
    char raw[RAW_MAX + 4];

    if (verdict) {
        res->phase = verdict->phase;
        res->error_origin = verdict->origin;
        msg_details(m, NULL, v->state_msg, v->term_msg);
        if (m->len == 0) {
            raw_copy(raw, v->code ? v->code : verdict->name);
            msg_text(m, "Databricks run ");
            msg_text(m, v->state_name);
            msg_text(m, " (");
            msg_text(m, raw);
            msg_text(m, ")");
        }
        return;
    }
    res->phase = PHASE_RETRYABLE_FAILED;
    res->error_origin = PHASE_ORIGIN_SYSTEM;
    msg_text(m, "unknown Databricks outcome:");
    msg_raw(m, " state ", v->state_name);
    if (v->lc_name && v->lc_name != v->state_name)
        msg_raw(m, ", life cycle ", v->lc_name);
    if (v->result)
        msg_raw(m, ", result ", v->result);
    if (v->code)
        msg_raw(m, ", code ", v->code);
    if (v->type)
        msg_raw(m, ", type ", v->type);
    msg_details(m, ": ", v->state_msg, v->term_msg);
}

/* Decides res's phase (and origin) and writes the message; gives the verdict row, if any. */
static const struct row *describe(struct msg *m, const struct run_values *v,
                                  struct phase_result *res)
{
    const struct row *verdict;

    if (!v->state_row) {
        res->phase = PHASE_RUNNING;
        msg_raw(m, "unknown Databricks state ", v->state_name);
        msg_text(m, "; still polling");
        msg_details(m, ": ", v->state_msg, v->term_msg);
        return NULL;
    }
    if (!phase_is_terminal(v->state_row->phase) && v->state_row->phase != PHASE_UNDEFINED) {
        res->phase = v->state_row->phase;
        msg_details(m, NULL, v->state_msg, v->term_msg);
        if (m->len == 0) {
            msg_text(m, "Databricks run is ");
            msg_text(m, v->state_name);
        }
        return NULL;
    }
    verdict = find_verdict(v);
    describe_outcome(m, v, verdict, res);
    return verdict;
}

/* The error details of a failure: the most specific thing Databricks said, its code, else
 * what decided. Returns 0 or -ENOMEM. */
static int set_error(struct phase_result *res, const struct run_values *v,
                     const struct row *verdict)
{
    char raw[RAW_MAX + 4];

    if (res->phase != PHASE_FAILED && res->phase != PHASE_RETRYABLE_FAILED) {
        res->error_origin = PHASE_ORIGIN_UNKNOWN;
        return 0;
    }
    res->has_error = true;
    res->error_recoverable = res->phase == PHASE_RETRYABLE_FAILED;
    raw_copy(raw, v->code     ? v->code
                  : verdict   ? verdict->name
                  : v->result ? v->result
                  : v->type   ? v->type
                              : v->state_name);
    res->error_code = strdup(raw);
    return res->error_code ? 0 : -ENOMEM;
}

int phase_from_run(const cJSON *run, struct phase_result *ret, char **reterr_msg)
{
    struct phase_result res = {0};
    struct run_values v;
    struct msg *m = NULL;
    int r;

    if (read_values(run, &v) < 0) {
        r = -EINVAL;
        if (reterr_msg)
            *reterr_msg = strdup("runs/get answer has no state");
        goto out;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        r = -ENOMEM;
        goto out;
    }
    r = set_error(&res, &v, describe(m, &v, &res));
    if (r < 0)
        goto out;
    res.message = msg_finish(m);
    if (!res.message) {
        r = -ENOMEM;
        goto out;
    }
    r = url_copy(get_str(run, "run_page_url"), &res.run_page_url);
    if (r < 0)
        goto out;

    *ret = res;
    res = (struct phase_result){0};
    r = 0;
out:
    phase_result_done(&res);
    free(m);
    return r;
}
