/*
 * fake_runs.c - run table and Jobs API answers of the fake workspace (see fake_runs.h).
 *
 * The table is a ring of max_runs slots indexed by (run_id - FAKE_RUNS_FIRST_RUN_ID) % max_runs:
 * run ids are handed out in order, so the slot a new run takes holds the oldest run, which is
 * dropped with its idempotency token. A slot whose run_id differs from the one asked for means
 * the run was dropped (or never existed). A run keeps only what its answers need (name, task
 * keys, whether it fails), not its submit body, so memory stays bounded by max_runs.
 *
 * A run's state is never stored: it is computed from its submit time, its cancel time and the
 * `now` of each call. Pure: no clock, no I/O; one thread at a time per table.
 *
 * Issued access tokens live in a second ring, of max_tokens slots indexed by the token's serial
 * number, which the token's text carries ("fake-oauth-SERIAL-HEX"): a Bearer token is found in
 * one slot, without a scan. Every lifetime is the same, so the slot a new token takes holds the
 * one that expires first. The client secret, its Basic header and the tokens are wiped when
 * the table is freed; secrets are compared in constant time.
 */
#include "fake_runs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "errmsg.h"
#include "oauth_token.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define API_PREFIX "/api/2.1/jobs/runs/"
/* run ids as Databricks accepts them in text: 1 to 18 decimal digits (always fits int64). */
#define RUN_ID_DIGITS_MAX 18

#define ISSUED_PREFIX "fake-oauth-"
/* ISSUED_PREFIX, a serial number (up to 20 digits), '-', the entropy in hex, NUL. */
#define ISSUED_TOKEN_SIZE (sizeof(ISSUED_PREFIX) + 20 + 1 + 2 * FAKE_RUNS_ENTROPY_BYTES)
/* What the token endpoint grants, and the only scope it grants. */
#define GRANT_TYPE "client_credentials"
#define SCOPE "all-apis"
/* Longest form parameter (name or value) read; longer ones never match. */
#define FORM_VALUE_MAX 64

struct run {
    int64_t run_id; /* 0: empty slot */
    int64_t job_id;
    int64_t submit_ms;
    int64_t cancel_ms; /* -1: never cancelled while unfinished */
    bool fail;
    bool multi_task;
    char *run_name;    /* owns */
    char *token;       /* owns; NULL when submitted without idempotency_token */
    cJSON *task_keys;  /* owns: array of strings, one per task run */
    cJSON *task_kinds; /* owns: array of strings, each task's kind ("notebook_task", ...) */
};

/* An access token the token endpoint gave. */
struct issued {
    uint64_t serial; /* 0: empty slot */
    int64_t expires_ms;
    char token[ISSUED_TOKEN_SIZE];
};

struct fake_runs {
    char *address; /* owns */
    char *token;   /* owns */
    int64_t pending_ms;
    int64_t running_ms;
    int64_t terminating_ms;
    size_t max_runs;
    struct run *slots; /* owns: max_runs entries */
    int64_t next_run_id;
    char *basic; /* owns (wiped): "Basic BASE64(id:secret)"; NULL: OAuth off */
    int64_t token_lifetime_s;
    size_t max_tokens;
    struct issued *issued; /* owns (wiped): max_tokens entries */
    uint64_t issued_count; /* tokens issued so far; the last one's serial */
};

/* Task kinds of a submit body, as the Python fake's TASK_KINDS; one is required per task. */
static const char *const task_kinds[] = {
    "spark_python_task", "notebook_task",     "spark_jar_task",
    "spark_submit_task", "python_wheel_task", "sql_task",
    "dbt_task",          "pipeline_task",     "run_job_task",
};

/* Where a task's user parameters live; any string value "--fail" there makes the run fail. */
static const struct {
    const char *kind;
    const char *field;
} parameter_fields[] = {
    {"spark_python_task", "parameters"}, {"notebook_task", "base_parameters"},
    {"python_wheel_task", "parameters"}, {"spark_jar_task", "parameters"},
    {"spark_submit_task", "parameters"},
};

/* life_cycle_state -> status.state; every state this fake produces is listed. */
static const struct {
    const char *life_cycle_state;
    const char *status_state;
} status_states[] = {
    {"PENDING", "PENDING"},
    {"RUNNING", "RUNNING"},
    {"TERMINATING", "TERMINATING"},
    {"TERMINATED", "TERMINATED"},
};

/* result_state -> status.termination_details {code, type}, as a workspace reports them. */
static const struct {
    const char *result_state;
    const char *code;
    const char *type;
} terminations[] = {
    {"SUCCESS", "SUCCESS", "SUCCESS"},
    {"FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"},
    {"CANCELED", "USER_CANCELED", "SUCCESS"},
};

static void run_clear(struct run *r)
{
    free(r->run_name);
    free(r->token);
    cJSON_Delete(r->task_keys);
    cJSON_Delete(r->task_kinds);
    memset(r, 0, sizeof(*r));
}

/* A client id Basic credentials can carry: visible ASCII, no ':' (the separator). */
static bool client_id_valid(const char *id)
{
    if (!*id)
        return false;
    for (; *id; id++)
        if ((unsigned char)*id <= 0x20 || (unsigned char)*id >= 0x7f || *id == ':')
            return false;
    return true;
}

/* The first option out of range (a static name), NULL when all are fine. */
static const char *bad_option(const struct fake_runs_options *o)
{
    if (!o->address || !*o->address)
        return "address";
    if (!o->token || !*o->token)
        return "token";
    if (o->pending_ms < 0)
        return "pending_ms";
    if (o->running_ms < 0)
        return "running_ms";
    if (o->terminating_ms < 0)
        return "terminating_ms";
    if (o->max_runs < 1 || o->max_runs > SIZE_MAX / sizeof(struct run))
        return "max_runs";
    if (!o->client_id)
        return NULL;
    if (!client_id_valid(o->client_id))
        return "client_id";
    if (!o->client_secret || !*o->client_secret)
        return "client_secret";
    if (o->token_lifetime_s < 1 || o->token_lifetime_s > FAKE_RUNS_TOKEN_LIFETIME_MAX_S)
        return "token_lifetime_s";
    if (o->max_tokens < 1 || o->max_tokens > SIZE_MAX / sizeof(struct issued))
        return "max_tokens";
    return NULL;
}

/* Sets up the token endpoint's client; 0 or -ENOMEM. */
static int oauth_init(struct fake_runs *t, const struct fake_runs_options *o)
{
    static const char header_name[] = "Authorization: ";
    char *header = NULL;

    /* The header as the daemon's client sends it, without its name. */
    if (oauth_token_basic_auth(o->client_id, o->client_secret, &header) < 0)
        return -ENOMEM;
    t->basic = strdup(header + sizeof(header_name) - 1);
    explicit_bzero(header, strlen(header));
    free(header);
    t->issued = calloc(o->max_tokens, sizeof(*t->issued));
    if (!t->basic || !t->issued)
        return -ENOMEM;
    t->token_lifetime_s = o->token_lifetime_s;
    t->max_tokens = o->max_tokens;
    return 0;
}

int fake_runs_new(const struct fake_runs_options *options, struct fake_runs **ret,
                  char **reterr_msg)
{
    struct fake_runs *t = NULL;
    const char *bad = bad_option(options);
    int r;

    if (bad) {
        *reterr_msg = errmsg_format("fake workspace option %s is out of range", bad);
        r = -EINVAL;
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        r = -ENOMEM;
        goto out;
    }
    t->address = strdup(options->address);
    t->token = strdup(options->token);
    t->slots = calloc(options->max_runs, sizeof(*t->slots));
    if (!t->address || !t->token || !t->slots) {
        r = -ENOMEM;
        goto out;
    }
    t->pending_ms = options->pending_ms;
    t->running_ms = options->running_ms;
    t->terminating_ms = options->terminating_ms;
    t->max_runs = options->max_runs;
    t->next_run_id = FAKE_RUNS_FIRST_RUN_ID;
    if (options->client_id && oauth_init(t, options) < 0) {
        r = -ENOMEM;
        goto out;
    }
    *ret = t;
    t = NULL;
    r = 0;
out:
    if (r == -ENOMEM)
        *reterr_msg = errmsg_format("out of memory creating the fake workspace run table");
    fake_runs_free(t);
    return r;
}

struct fake_runs *fake_runs_free(struct fake_runs *t)
{
    if (!t)
        return NULL;
    if (t->slots)
        for (size_t i = 0; i < t->max_runs; i++)
            run_clear(&t->slots[i]);
    free(t->slots);
    free(t->address);
    free(t->token);
    if (t->basic) {
        explicit_bzero(t->basic, strlen(t->basic));
        free(t->basic);
    }
    if (t->issued) {
        explicit_bzero(t->issued, t->max_tokens * sizeof(*t->issued));
        free(t->issued);
    }
    free(t);
    return NULL;
}

size_t fake_runs_count(const struct fake_runs *t)
{
    uint64_t made = (uint64_t)(t->next_run_id - FAKE_RUNS_FIRST_RUN_ID);
    return made < t->max_runs ? (size_t)made : t->max_runs;
}

size_t fake_runs_token_count(const struct fake_runs *t)
{
    return t->issued_count < t->max_tokens ? (size_t)t->issued_count : t->max_tokens;
}

/* a equals b, in a time that does not depend on where they differ. */
static bool same_secret(const char *a, const char *b)
{
    size_t n = strlen(a);

    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- OAuth tokens -------------------------------------------------------------------------- */

/* Issues a token at now from `entropy` (FAKE_RUNS_ENTROPY_BYTES, NULL: zeros) into out
 * (ISSUED_TOKEN_SIZE bytes); the slot it takes drops the token issued max_tokens before. */
static void token_issue(struct fake_runs *t, const unsigned char *entropy, int64_t now, char *out)
{
    uint64_t serial = ++t->issued_count;
    struct issued *slot = &t->issued[(serial - 1) % t->max_tokens];
    int n = snprintf(out, ISSUED_TOKEN_SIZE, ISSUED_PREFIX "%" PRIu64 "-", serial);

    for (size_t i = 0; i < FAKE_RUNS_ENTROPY_BYTES; i++)
        n += snprintf(out + n, ISSUED_TOKEN_SIZE - (size_t)n, "%02x", entropy ? entropy[i] : 0);
    explicit_bzero(slot, sizeof(*slot));
    slot->serial = serial;
    slot->expires_ms = now + t->token_lifetime_s * 1000;
    memcpy(slot->token, out, ISSUED_TOKEN_SIZE);
}

/* The kept token `bearer` names (by the serial number in its text), NULL when it was never
 * issued or is no longer kept. */
static const struct issued *token_find(const struct fake_runs *t, const char *bearer)
{
    const char *digits = bearer + sizeof(ISSUED_PREFIX) - 1;
    const struct issued *slot;
    size_t n;
    uint64_t serial;

    if (!t->issued || strncmp(bearer, ISSUED_PREFIX, sizeof(ISSUED_PREFIX) - 1) != 0)
        return NULL;
    n = strspn(digits, "0123456789");
    if (n == 0 || n > 19 || digits[n] != '-')
        return NULL;
    serial = strtoull(digits, NULL, 10);
    if (serial == 0 || serial > t->issued_count)
        return NULL;
    slot = &t->issued[(serial - 1) % t->max_tokens];
    return slot->serial == serial && same_secret(slot->token, bearer) ? slot : NULL;
}

static struct run *find_run(const struct fake_runs *t, int64_t run_id)
{
    struct run *r;

    if (run_id < FAKE_RUNS_FIRST_RUN_ID || run_id >= t->next_run_id)
        return NULL;
    r = &t->slots[(uint64_t)(run_id - FAKE_RUNS_FIRST_RUN_ID) % t->max_runs];
    return r->run_id == run_id ? r : NULL;
}

/* The task kind of a unit (a static name), NULL when it has none. */
static const char *task_kind(const cJSON *unit)
{
    for (size_t i = 0; i < ELEMENTSOF(task_kinds); i++)
        if (cJSON_HasObjectItem(unit, task_kinds[i]))
            return task_kinds[i];
    return NULL;
}

/* Records one task of a new run: its key and its kind. */
static bool add_task(struct run *r, const char *key, const cJSON *unit)
{
    cJSON *k = cJSON_CreateString(key), *kind = cJSON_CreateString(task_kind(unit));

    if (!k || !kind || !cJSON_AddItemToArray(r->task_keys, k)) {
        cJSON_Delete(k);
        cJSON_Delete(kind);
        return false;
    }
    if (!cJSON_AddItemToArray(r->task_kinds, kind)) {
        cJSON_Delete(kind);
        return false;
    }
    return true;
}

/* The checks a real workspace makes that a connector can get wrong (as the Python fake's
 * validate_submit()). Returns NULL when fine, else a static message. */
static const char *invalid_unit(const cJSON *unit)
{
    const cJSON *cluster = cJSON_GetObjectItemCaseSensitive(unit, "new_cluster");
    const cJSON *version;

    if (!task_kind(unit))
        return "One of the task types must be provided: spark_python_task, notebook_task, "
               "spark_jar_task";
    if (!cluster)
        return NULL;
    version = cJSON_GetObjectItemCaseSensitive(cluster, "spark_version");
    if (!cJSON_IsObject(cluster) || !cJSON_IsString(version) || !*version->valuestring)
        return "Missing required field: new_cluster.spark_version";
    if (cJSON_HasObjectItem(unit, "existing_cluster_id"))
        return "Only one of existing_cluster_id and new_cluster may be set";
    return NULL;
}

static bool unit_wants_failure(const cJSON *unit)
{
    for (size_t i = 0; i < ELEMENTSOF(parameter_fields); i++) {
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(unit, parameter_fields[i].kind);
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(task, parameter_fields[i].field);
        const cJSON *p;

        /* Arrays (parameters) and objects (base_parameters) both keep values as children. */
        if (!cJSON_IsArray(params) && !cJSON_IsObject(params))
            continue;
        cJSON_ArrayForEach(p, params)
        {
            if (cJSON_IsString(p) && strcmp(p->valuestring, "--fail") == 0)
                return true;
        }
    }
    return false;
}

static int64_t idempotent_match(const struct fake_runs *t, const char *token)
{
    for (size_t i = 0; i < t->max_runs; i++)
        if (t->slots[i].run_id && t->slots[i].token && strcmp(t->slots[i].token, token) == 0)
            return t->slots[i].run_id;
    return 0;
}

int fake_runs_submit(struct fake_runs *t, const cJSON *body, int64_t now_ms, int64_t *ret_run_id,
                     char **reterr_msg)
{
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(body, "idempotency_token");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(body, "tasks");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "run_name");
    const cJSON *unit;
    const char *invalid = NULL;
    struct run fresh = {0};
    bool multi = cJSON_IsArray(tasks) && cJSON_GetArraySize(tasks) > 0;
    int64_t existing;
    int r;

    if (!cJSON_IsObject(body)) {
        invalid = "Could not parse request object: expected a JSON object";
    } else if (token &&
               (!cJSON_IsString(token) || strlen(token->valuestring) > FAKE_RUNS_TOKEN_MAX)) {
        invalid = "idempotency_token must be a string of at most 64 characters";
    } else if (multi) {
        cJSON_ArrayForEach(unit, tasks)
        {
            if (!cJSON_IsObject(unit)) {
                invalid = "tasks must be a list of objects";
                break;
            }
            if ((invalid = invalid_unit(unit)))
                break;
        }
    } else {
        invalid = invalid_unit(body);
    }
    if (invalid) {
        *reterr_msg = strdup(invalid);
        r = -EINVAL;
        goto out;
    }
    if (token && (existing = idempotent_match(t, token->valuestring)) > 0) {
        *ret_run_id = existing;
        r = 0;
        goto out;
    }

    fresh.run_id = t->next_run_id;
    fresh.job_id = FAKE_RUNS_FIRST_JOB_ID + (t->next_run_id - FAKE_RUNS_FIRST_RUN_ID);
    fresh.submit_ms = now_ms;
    fresh.cancel_ms = -1;
    fresh.multi_task = multi;
    fresh.run_name = strdup(cJSON_IsString(name) ? name->valuestring : "Untitled");
    fresh.token = token ? strdup(token->valuestring) : NULL;
    fresh.task_keys = cJSON_CreateArray();
    fresh.task_kinds = cJSON_CreateArray();
    if (!fresh.run_name || (token && !fresh.token) || !fresh.task_keys || !fresh.task_kinds) {
        r = -ENOMEM;
        goto out;
    }
    fresh.fail = strcasestr(fresh.run_name, "fail") != NULL;
    if (multi) {
        cJSON_ArrayForEach(unit, tasks)
        {
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(unit, "task_key");

            if (!add_task(&fresh, cJSON_IsString(key) ? key->valuestring : "task", unit)) {
                r = -ENOMEM;
                goto out;
            }
            fresh.fail = fresh.fail || unit_wants_failure(unit);
        }
    } else {
        if (!add_task(&fresh, fresh.run_name, body)) {
            r = -ENOMEM;
            goto out;
        }
        fresh.fail = fresh.fail || unit_wants_failure(body);
    }

    {
        struct run *slot =
            &t->slots[(uint64_t)(t->next_run_id - FAKE_RUNS_FIRST_RUN_ID) % t->max_runs];

        run_clear(slot); /* the oldest run goes, with its idempotency token */
        *slot = fresh;
        memset(&fresh, 0, sizeof(fresh));
    }
    *ret_run_id = t->next_run_id++;
    r = 0;
out:
    run_clear(&fresh);
    return r;
}

/* The state of r at now, before any cancellation. */
static void natural_state(const struct fake_runs *t, const struct run *r, int64_t now,
                          struct fake_runs_state *s)
{
    int64_t running_from = r->submit_ms + t->pending_ms;
    int64_t end = running_from + t->running_ms;

    *s = (struct fake_runs_state){.state_message = ""};
    if (now < running_from) {
        s->life_cycle_state = "PENDING";
        s->state_message = "Waiting for cluster";
    } else if (now < end) {
        s->life_cycle_state = "RUNNING";
        s->state_message = "In run";
    } else {
        s->life_cycle_state = "TERMINATED";
        s->result_state = r->fail ? "FAILED" : "SUCCESS";
        s->state_message = r->fail ? FAKE_RUNS_FAILURE_MESSAGE : "";
        s->end_time_ms = end;
    }
}

static void run_state(const struct fake_runs *t, const struct run *r, int64_t now,
                      struct fake_runs_state *s)
{
    if (r->cancel_ms < 0 || now < r->cancel_ms) {
        natural_state(t, r, now, s);
        return;
    }
    *s = (struct fake_runs_state){.state_message = "Run cancelled."};
    if (now < r->cancel_ms + t->terminating_ms) {
        s->life_cycle_state = "TERMINATING";
        return;
    }
    s->life_cycle_state = "TERMINATED";
    s->result_state = "CANCELED";
    s->user_cancelled_or_timedout = 1;
    s->end_time_ms = r->cancel_ms + t->terminating_ms;
}

int fake_runs_state(const struct fake_runs *t, int64_t run_id, int64_t now_ms,
                    struct fake_runs_state *ret)
{
    const struct run *r = find_run(t, run_id);

    if (!r)
        return -ENOENT;
    run_state(t, r, now_ms, ret);
    return 0;
}

int fake_runs_cancel(struct fake_runs *t, int64_t run_id, int64_t now_ms)
{
    struct run *r = find_run(t, run_id);
    struct fake_runs_state s;

    if (!r)
        return -ENOENT;
    run_state(t, r, now_ms, &s);
    /* A finished run stays as it ended; a second cancel keeps the first one's timing. */
    if (r->cancel_ms < 0 && !s.result_state)
        r->cancel_ms = now_ms;
    return 0;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static cJSON *state_json(const struct fake_runs_state *s)
{
    cJSON *o = cJSON_CreateObject();

    if (!o || !cJSON_AddStringToObject(o, "life_cycle_state", s->life_cycle_state) ||
        (s->result_state && !cJSON_AddStringToObject(o, "result_state", s->result_state)) ||
        !cJSON_AddStringToObject(o, "state_message", s->state_message) ||
        !cJSON_AddBoolToObject(o, "user_cancelled_or_timedout", s->user_cancelled_or_timedout)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *status_json(const struct fake_runs_state *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *details = NULL;
    const char *state = s->life_cycle_state;

    for (size_t i = 0; i < ELEMENTSOF(status_states); i++)
        if (strcmp(status_states[i].life_cycle_state, s->life_cycle_state) == 0)
            state = status_states[i].status_state;
    if (!o || !cJSON_AddStringToObject(o, "state", state))
        goto fail;
    if (!s->result_state)
        return o;
    for (size_t i = 0; i < ELEMENTSOF(terminations); i++) {
        if (strcmp(terminations[i].result_state, s->result_state) != 0)
            continue;
        details = cJSON_AddObjectToObject(o, "termination_details");
        if (!details || !cJSON_AddStringToObject(details, "code", terminations[i].code) ||
            !cJSON_AddStringToObject(details, "type", terminations[i].type) ||
            !cJSON_AddStringToObject(details, "message", s->state_message))
            goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* Adds a number; cJSON keeps doubles, exact for every integer below 2^53 (ids, epoch ms). */
static bool add_int(cJSON *o, const char *key, int64_t v)
{
    return cJSON_AddNumberToObject(o, key, (double)v) != NULL;
}

static bool add_item(cJSON *o, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(o, key, item))
        return true;
    cJSON_Delete(item);
    return false;
}

static cJSON *task_runs_json(const struct run *r, const struct fake_runs_state *s, const char *url)
{
    cJSON *tasks = cJSON_CreateArray();
    const cJSON *key;
    int64_t i = 0;

    if (!tasks)
        return NULL;
    cJSON_ArrayForEach(key, r->task_keys)
    {
        cJSON *task = cJSON_CreateObject();
        const cJSON *kind = cJSON_GetArrayItem(r->task_kinds, (int)i);

        if (!task || !cJSON_AddItemToArray(tasks, task)) {
            cJSON_Delete(task);
            goto fail;
        }
        /* The task's kind, as runs/get echoes a task's settings (only its name is kept). */
        if (!add_int(task, "run_id", r->run_id * 100 + ++i) ||
            !cJSON_AddStringToObject(task, "task_key", key->valuestring) ||
            (cJSON_IsString(kind) && !cJSON_AddObjectToObject(task, kind->valuestring)) ||
            !add_item(task, "state", state_json(s)) ||
            !cJSON_AddStringToObject(task, "run_page_url", url) ||
            !add_int(task, "attempt_number", 0))
            goto fail;
    }
    return tasks;
fail:
    cJSON_Delete(tasks);
    return NULL;
}

int fake_runs_get(const struct fake_runs *t, int64_t run_id, int64_t now_ms, cJSON **ret)
{
    const struct run *r = find_run(t, run_id);
    struct fake_runs_state s;
    cJSON *o = NULL;
    char *url = NULL;
    char *cluster_id = NULL;
    int64_t setup = 0, execution = 0, cleanup = 0;
    int rc;

    if (!r) {
        rc = -ENOENT;
        goto out;
    }
    run_state(t, r, now_ms, &s);
    if (s.end_time_ms) {
        /* Durations are reported once a run is over, from the phases it went through. */
        int64_t until = r->cancel_ms >= 0 ? r->cancel_ms : s.end_time_ms;

        setup = clamp(until - r->submit_ms, 0, t->pending_ms);
        execution = clamp(until - r->submit_ms - t->pending_ms, 0, t->running_ms);
        cleanup = r->cancel_ms >= 0 ? t->terminating_ms : 0;
    }
    url = errmsg_format("https://%s/?o=0#job/%" PRId64 "/run/%" PRId64, t->address, r->job_id,
                        r->run_id);
    cluster_id = errmsg_format("0101-000000-fake%" PRId64, r->run_id);
    o = cJSON_CreateObject();
    if (!url || !cluster_id || !o || !add_int(o, "job_id", r->job_id) ||
        !add_int(o, "run_id", r->run_id) ||
        !cJSON_AddStringToObject(o, "creator_user_name", "fake@example.com") ||
        !add_int(o, "number_in_job", r->run_id) ||
        !add_int(o, "original_attempt_run_id", r->run_id) ||
        !add_item(o, "state", state_json(&s)) || !add_item(o, "status", status_json(&s)) ||
        !add_int(o, "start_time", r->submit_ms) || !add_int(o, "setup_duration", setup) ||
        !add_int(o, "execution_duration", execution) || !add_int(o, "cleanup_duration", cleanup) ||
        !add_int(o, "end_time", s.end_time_ms) ||
        !add_int(o, "run_duration", s.end_time_ms ? s.end_time_ms - r->submit_ms : 0) ||
        !cJSON_AddStringToObject(o, "run_name", r->run_name) ||
        !cJSON_AddStringToObject(o, "run_page_url", url) ||
        !cJSON_AddStringToObject(o, "run_type", "SUBMIT_RUN") ||
        !cJSON_AddStringToObject(o, "format", r->multi_task ? "MULTI_TASK" : "SINGLE_TASK") ||
        !add_item(o, "tasks", task_runs_json(r, &s, url))) {
        rc = -ENOMEM;
        goto out;
    }
    /* A cluster exists once the run leaves PENDING (a run cancelled while pending has none). */
    if (strcmp(s.life_cycle_state, "PENDING") != 0 && now_ms >= r->submit_ms + t->pending_ms &&
        (r->cancel_ms < 0 || r->cancel_ms >= r->submit_ms + t->pending_ms)) {
        cJSON *ci = cJSON_AddObjectToObject(o, "cluster_instance");
        char spark_context[32];

        snprintf(spark_context, sizeof(spark_context), "55500%" PRId64, r->run_id);
        if (!ci || !cJSON_AddStringToObject(ci, "cluster_id", cluster_id) ||
            !cJSON_AddStringToObject(ci, "spark_context_id", spark_context)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    *ret = o;
    o = NULL;
    rc = 0;
out:
    cJSON_Delete(o);
    free(url);
    free(cluster_id);
    return rc;
}

/* What the fake's tasks print once they run, and once they are over. */
#define LOGS_RUNNING "Starting the Flyte task on the fake workspace\nReading the task's inputs\n"
#define LOGS_DONE "Writing the task's outputs\n"
/* A failed task's traceback, innermost frame last, as Python prints it. */
#define ERROR_TRACE                                                                                \
    "Traceback (most recent call last):\n"                                                         \
    "  File \"/databricks/driver/flyte_entrypoint.py\", line 31, in main\n"                        \
    "    run_task()\n"                                                                             \
    "  File \"workflows/spark.py\", line 14, in hello_spark\n"                                     \
    "    raise ValueError(\"demo failure\")\n" FAKE_RUNS_ERROR
#define NOTEBOOK_RESULT "demo notebook finished"
#define MULTI_TASK_REFUSAL                                                                         \
    "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the "     \
    "output of each individual task run instead."

/* The run and task index runs/get-output means by run_id; -ENOENT, or -EINVAL for the own id of
 * a run with several tasks. */
static int output_target(const struct fake_runs *t, int64_t run_id, const struct run **ret_run,
                         int *ret_index)
{
    const struct run *r = find_run(t, run_id);
    int64_t index = 0;

    if (r && cJSON_GetArraySize(r->task_keys) > 1)
        return -EINVAL;
    if (!r) {
        r = find_run(t, run_id / 100);
        index = run_id % 100 - 1;
        if (!r || index < 0 || index >= cJSON_GetArraySize(r->task_keys))
            return -ENOENT;
    }
    *ret_run = r;
    *ret_index = (int)index;
    return 0;
}

/* Adds what a task with this state printed and said; false on OOM. */
static bool add_output(cJSON *o, const struct fake_runs_state *s, const char *kind)
{
    bool over = s->result_state != NULL;
    cJSON *notebook;

    if (strcmp(s->life_cycle_state, "PENDING") == 0)
        return true;
    if (!cJSON_AddStringToObject(o, "logs", over ? LOGS_RUNNING LOGS_DONE : LOGS_RUNNING) ||
        !cJSON_AddFalseToObject(o, "logs_truncated"))
        return false;
    if (over && strcmp(s->result_state, "FAILED") == 0)
        return cJSON_AddStringToObject(o, "error", FAKE_RUNS_ERROR) &&
               cJSON_AddStringToObject(o, "error_trace", ERROR_TRACE);
    if (over && strcmp(s->result_state, "SUCCESS") == 0 && strcmp(kind, "notebook_task") == 0) {
        notebook = cJSON_AddObjectToObject(o, "notebook_output");
        return notebook && cJSON_AddStringToObject(notebook, "result", NOTEBOOK_RESULT) &&
               cJSON_AddFalseToObject(notebook, "truncated");
    }
    return true;
}

int fake_runs_get_output(const struct fake_runs *t, int64_t run_id, int64_t now_ms, cJSON **ret)
{
    const struct run *r = NULL;
    const cJSON *key, *kind;
    struct fake_runs_state s;
    cJSON *o = NULL, *metadata;
    int index = 0, rc;

    rc = output_target(t, run_id, &r, &index);
    if (rc < 0)
        return rc;
    run_state(t, r, now_ms, &s);
    key = cJSON_GetArrayItem(r->task_keys, index);
    kind = cJSON_GetArrayItem(r->task_kinds, index);
    o = cJSON_CreateObject();
    metadata = o ? cJSON_AddObjectToObject(o, "metadata") : NULL;
    if (!metadata || !add_int(metadata, "job_id", r->job_id) ||
        !add_int(metadata, "run_id", r->run_id * 100 + index + 1) ||
        !cJSON_AddStringToObject(metadata, "task_key", key->valuestring) ||
        !add_item(metadata, "state", state_json(&s)) || !add_output(o, &s, kind->valuestring)) {
        cJSON_Delete(o);
        return -ENOMEM;
    }
    *ret = o;
    return 0;
}

/* ---- HTTP level ---------------------------------------------------------------------------- */

/* An answer under construction: status plus a JSON tree (owned), or the finished text. */
struct reply {
    int status;
    cJSON *json;
    char *text; /* owns: the body when set (an access token's answer, kept out of cJSON) */
    int64_t run_id;
    bool oom;
};

static void reply_error(struct reply *rep, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(struct reply *rep, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    char *message;

    va_start(ap, fmt);
    message = errmsg_vformat(fmt, ap);
    va_end(ap);
    cJSON_Delete(rep->json);
    rep->status = status;
    rep->json = cJSON_CreateObject();
    if (!message || !rep->json || !cJSON_AddStringToObject(rep->json, "error_code", code) ||
        !cJSON_AddStringToObject(rep->json, "message", message))
        rep->oom = true;
    free(message);
}

/* An OAuth token endpoint error (RFC 6749 5.2): {"error", "error_description"}. */
static void reply_oauth_error(struct reply *rep, int status, const char *error,
                              const char *description)
{
    cJSON_Delete(rep->json);
    rep->status = status;
    rep->json = cJSON_CreateObject();
    if (!rep->json || !cJSON_AddStringToObject(rep->json, "error", error) ||
        !cJSON_AddStringToObject(rep->json, "error_description", description))
        rep->oom = true;
}

static void reply_missing_run(struct reply *rep, int64_t run_id)
{
    reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "Run %" PRId64 " does not exist.", run_id);
}

/* Parses a run_id given as text (query string or JSON string). */
static int parse_run_id_text(const char *text, int64_t *ret)
{
    size_t n = strlen(text);

    if (n == 0 || n > RUN_ID_DIGITS_MAX || strspn(text, "0123456789") != n)
        return -EINVAL;
    *ret = (int64_t)strtoll(text, NULL, 10);
    return 0;
}

/* Reads run_id from a JSON value (number or numeric string), replying with the Databricks error
 * when it is missing or malformed. Returns 0 or -EINVAL (reply filled). */
static int json_run_id(struct reply *rep, const cJSON *v, int64_t *ret)
{
    char text[64];

    if (!v) {
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "Missing required field: run_id");
        return -EINVAL;
    }
    if (cJSON_IsString(v)) {
        if (parse_run_id_text(v->valuestring, ret) == 0)
            return 0;
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE",
                    "Invalid value for run_id: '%s' is not a valid int64", v->valuestring);
        return -EINVAL;
    }
    if (!cJSON_IsNumber(v)) {
        reply_error(rep, 400, "MALFORMED_REQUEST",
                    "Could not parse request object: Expected an int64 for run_id in body");
        return -EINVAL;
    }
    if (v->valuedouble >= 0 && v->valuedouble < 1e18 && floor(v->valuedouble) == v->valuedouble) {
        *ret = (int64_t)v->valuedouble;
        return 0;
    }
    snprintf(text, sizeof(text), "%.17g", v->valuedouble);
    reply_error(rep, 400, "INVALID_PARAMETER_VALUE",
                "Invalid value for run_id: '%s' is not a valid int64", text);
    return -EINVAL;
}

static void api_submit(struct fake_runs *t, const struct fake_runs_request *req, const cJSON *body,
                       struct reply *rep)
{
    char *error = NULL;
    int64_t run_id;
    int r = fake_runs_submit(t, body, req->now_ms, &run_id, &error);

    if (r == -EINVAL) {
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "%s", error ? error : "invalid request");
    } else if (r < 0) {
        rep->oom = true;
    } else {
        rep->run_id = run_id;
        rep->json = cJSON_CreateObject();
        if (!rep->json || !add_int(rep->json, "run_id", run_id))
            rep->oom = true;
    }
    free(error);
}

/* Reads the run_id query argument of a GET, replying with the Databricks error when it is
 * missing, repeated or malformed. Returns 0 or -EINVAL (reply filled). */
static int query_run_id(const struct fake_runs_request *req, struct reply *rep, int64_t *ret)
{
    if (req->query_run_id_count > 1) {
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "run_id given more than once");
        return -EINVAL;
    }
    if (!req->query_run_id) {
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "Missing required field: run_id");
        return -EINVAL;
    }
    if (parse_run_id_text(req->query_run_id, ret) < 0) {
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE",
                    "Invalid value for run_id: '%s' is not a valid int64", req->query_run_id);
        return -EINVAL;
    }
    rep->run_id = *ret;
    return 0;
}

static void api_get(struct fake_runs *t, const struct fake_runs_request *req, const cJSON *body,
                    struct reply *rep)
{
    int64_t run_id;
    int r;

    (void)body;
    if (query_run_id(req, rep, &run_id) < 0)
        return;
    r = fake_runs_get(t, run_id, req->now_ms, &rep->json);
    if (r == -ENOENT)
        reply_missing_run(rep, run_id);
    else if (r < 0)
        rep->oom = true;
}

static void api_get_output(struct fake_runs *t, const struct fake_runs_request *req,
                           const cJSON *body, struct reply *rep)
{
    int64_t run_id;
    int r;

    (void)body;
    if (query_run_id(req, rep, &run_id) < 0)
        return;
    r = fake_runs_get_output(t, run_id, req->now_ms, &rep->json);
    if (r == -ENOENT)
        reply_missing_run(rep, run_id);
    else if (r == -EINVAL)
        reply_error(rep, 400, "INVALID_PARAMETER_VALUE", "%s", MULTI_TASK_REFUSAL);
    else if (r < 0)
        rep->oom = true;
}

static void api_cancel(struct fake_runs *t, const struct fake_runs_request *req, const cJSON *body,
                       struct reply *rep)
{
    int64_t run_id;

    if (json_run_id(rep, cJSON_GetObjectItemCaseSensitive(body, "run_id"), &run_id) < 0)
        return;
    rep->run_id = run_id;
    if (fake_runs_cancel(t, run_id, req->now_ms) == -ENOENT) {
        reply_missing_run(rep, run_id);
        return;
    }
    rep->json = cJSON_CreateObject();
    if (!rep->json)
        rep->oom = true;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes n bytes of form text ('+' is a space, %XX a byte) into out (size bytes, NUL added).
 * False for a bad escape, a NUL, or a text that does not fit. */
static bool form_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= size)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* How many times the form body (len bytes, application/x-www-form-urlencoded) gives `key`;
 * the first value, decoded, goes into out (FORM_VALUE_MAX bytes), "" when it cannot be read. */
static unsigned form_value(const char *body, size_t len, const char *key, char *out)
{
    const char *end = body ? body + len : NULL;
    unsigned count = 0;

    out[0] = '\0';
    for (const char *p = body; p && p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *value = eq ? eq + 1 : stop;
        char name[FORM_VALUE_MAX];

        if (form_decode(p, (size_t)((eq ? eq : stop) - p), name, sizeof(name)) &&
            strcmp(name, key) == 0 && count++ == 0 &&
            !form_decode(value, (size_t)(stop - value), out, FORM_VALUE_MAX))
            out[0] = '\0';
        p = amp ? amp + 1 : end;
    }
    return count;
}

/* POST /oidc/v1/token, the client already authenticated: checks the grant and issues a token. */
static void api_token(struct fake_runs *t, const struct fake_runs_request *req, const cJSON *body,
                      struct reply *rep)
{
    char grant[FORM_VALUE_MAX], scope[FORM_VALUE_MAX], token[ISSUED_TOKEN_SIZE];
    unsigned grants = form_value(req->body, req->body_len, "grant_type", grant);
    unsigned scopes = form_value(req->body, req->body_len, "scope", scope);

    (void)body;
    /* RFC 6749 3.2 and 5.2: each parameter at most once, then the grant, then the scope. */
    if (grants != 1 || scopes > 1) {
        reply_oauth_error(rep, 400, "invalid_request",
                          "grant_type is required and no parameter may be repeated");
        return;
    }
    if (strcmp(grant, GRANT_TYPE) != 0) {
        reply_oauth_error(rep, 400, "unsupported_grant_type",
                          "only grant_type=" GRANT_TYPE " is supported");
        return;
    }
    if (scopes != 1 || strcmp(scope, SCOPE) != 0) {
        reply_oauth_error(rep, 400, "invalid_scope", "the scope must be " SCOPE);
        return;
    }
    token_issue(t, req->entropy, req->now_ms, token);
    /* Written here, not with cJSON, so that every copy of the token is one this code wipes.
     * The token is letters, digits and '-': nothing to escape. */
    rep->text = errmsg_format("{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
                              "\"expires_in\":%" PRId64 ",\"scope\":\"" SCOPE "\"}",
                              token, t->token_lifetime_s);
    explicit_bzero(token, sizeof(token));
    if (!rep->text)
        rep->oom = true;
}

/* The routes served; paths are unique. */
static const struct {
    const char *path;
    const char *method;
    bool json_body; /* a JSON object body is required */
    void (*handler)(struct fake_runs *t, const struct fake_runs_request *req, const cJSON *body,
                    struct reply *rep);
} routes[] = {
    {API_PREFIX "submit", "POST", true, api_submit},
    {API_PREFIX "get", "GET", false, api_get},
    {API_PREFIX "cancel", "POST", true, api_cancel},
    {API_PREFIX "get-output", "GET", false, api_get_output},
    {FAKE_RUNS_OIDC_TOKEN_PATH, "POST", false, api_token},
};

/* The token endpoint's check: the client's id and secret as HTTP Basic credentials. */
static bool client_authorized(const struct fake_runs *t, const struct fake_runs_request *req,
                              struct reply *rep)
{
    static const char basic[] = "Basic ";
    const char *value = req->authorization;

    /* The scheme name is case-insensitive (RFC 7235 2.1); the credentials are not. */
    if (t->basic && value && strncasecmp(value, basic, sizeof(basic) - 1) == 0 &&
        same_secret(value + sizeof(basic) - 1, t->basic + sizeof(basic) - 1))
        return true;
    reply_oauth_error(rep, 401, "invalid_client", "Client authentication failed");
    return false;
}

/* The Jobs API's check: the static token, or an issued token not yet expired. */
static bool bearer_authorized(const struct fake_runs *t, const struct fake_runs_request *req,
                              struct reply *rep)
{
    static const char bearer[] = "Bearer ";
    const char *value = req->authorization;
    const struct issued *issued;

    if (!value || strncmp(value, bearer, sizeof(bearer) - 1) != 0) {
        reply_error(rep, 401, "UNAUTHENTICATED",
                    "Credential was not sent or was of an unsupported type for this API.");
        return false;
    }
    value += sizeof(bearer) - 1;
    if (same_secret(value, t->token))
        return true;
    issued = token_find(t, value);
    if (issued && req->now_ms < issued->expires_ms)
        return true;
    /* An expired token is a 401, which tells a client to fetch a new one; an unknown one is
     * refused for good. */
    if (issued)
        reply_error(rep, 401, "UNAUTHENTICATED", "Token is expired.");
    else
        reply_error(rep, 403, "PERMISSION_DENIED", "Invalid access token.");
    return false;
}

static bool authorized(const struct fake_runs *t, const struct fake_runs_request *req,
                       struct reply *rep)
{
    if (req->path && strcmp(req->path, FAKE_RUNS_OIDC_TOKEN_PATH) == 0)
        return client_authorized(t, req, rep);
    return bearer_authorized(t, req, rep);
}

/* Turns rep into *ret; frees rep's JSON either way. Returns 0 or -ENOMEM. */
static int render(struct reply *rep, struct fake_runs_answer *ret)
{
    char *text = rep->text;

    rep->text = NULL;
    if (!text && !rep->oom)
        text = rep->json ? cJSON_PrintUnformatted(rep->json) : strdup("{}");
    cJSON_Delete(rep->json);
    rep->json = NULL;
    if (rep->oom && text) {
        explicit_bzero(text, strlen(text));
        free(text);
        text = NULL;
    }
    if (!text)
        return -ENOMEM;
    *ret =
        (struct fake_runs_answer){.http_status = rep->status, .body = text, .run_id = rep->run_id};
    return 0;
}

int fake_runs_authorize(const struct fake_runs *t, const struct fake_runs_request *req,
                        struct fake_runs_answer *ret)
{
    struct reply rep = {.status = 200, .run_id = -1};

    if (authorized(t, req, &rep))
        return 1;
    return render(&rep, ret) < 0 ? -ENOMEM : 0;
}

int fake_runs_handle(struct fake_runs *t, const struct fake_runs_request *req,
                     struct fake_runs_answer *ret)
{
    struct reply rep = {.status = 200, .run_id = -1};
    cJSON *body = NULL;
    size_t i;
    int r;

    if (!authorized(t, req, &rep))
        goto render;
    for (i = 0; i < ELEMENTSOF(routes); i++)
        if (strcmp(routes[i].path, req->path) == 0)
            break;
    if (i == ELEMENTSOF(routes)) {
        reply_error(&rep, 404, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'", req->method,
                    req->path);
        goto render;
    }
    if (strcmp(routes[i].method, req->method) != 0) {
        reply_error(&rep, 405, "METHOD_NOT_ALLOWED", "Method %s is not allowed for %s", req->method,
                    req->path);
        goto render;
    }
    if (routes[i].json_body) {
        body = req->body && req->body_len ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
        if (!body) {
            reply_error(&rep, 400, "MALFORMED_REQUEST",
                        "Could not parse request object: malformed JSON");
            goto render;
        }
        if (!cJSON_IsObject(body)) {
            reply_error(&rep, 400, "MALFORMED_REQUEST",
                        "Could not parse request object: expected a JSON object");
            goto render;
        }
    }
    routes[i].handler(t, req, body, &rep);
render:
    r = render(&rep, ret);
    cJSON_Delete(body);
    return r;
}

void fake_runs_answer_done(struct fake_runs_answer *a)
{
    if (!a || !a->body)
        return;
    explicit_bzero(a->body, strlen(a->body));
    free(a->body);
    a->body = NULL;
}
