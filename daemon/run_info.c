/*
 * run_info.c - runs/get answer (+ runs/get-output's notebook result) -> custom_info object (see
 * run_info.h for the keys).
 *
 * Table-driven: each plain key names where in the answer its value lives and how it is shown
 * (a bounded string, an id as digits, an epoch time as RFC 3339, a duration in seconds). A
 * value of the wrong JSON type counts as absent, as in phase.c. Pure: any thread.
 */
#include "run_info.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errmsg.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Longest run_page_url kept (a longer one is dropped: a cut URL would lead nowhere). */
#define URL_MAX 2048

enum kind {
    KIND_TEXT,     /* a string, bounded to one line */
    KIND_ID,       /* an int64 id (number or digits) as a string of digits */
    KIND_TIME,     /* ms since the epoch -> RFC 3339 UTC */
    KIND_DURATION, /* ms -> seconds, only when > 0 */
    KIND_URL,      /* an http(s) URL, whole or not at all */
};

/* One plain key: `key` in custom_info from answer[object][field] (object NULL: the top). */
struct field {
    const char *key;
    const char *object;
    const char *field;
    enum kind kind;
};

/* Order is the order of the keys in custom_info. state falls back to life_cycle_state below. */
static const struct field fields[] = {
    {"job_id", NULL, "job_id", KIND_ID},
    {"run_id", NULL, "run_id", KIND_ID},
    {"run_name", NULL, "run_name", KIND_TEXT},
    {"run_page_url", NULL, "run_page_url", KIND_URL},
    {"state", "status", "state", KIND_TEXT},
    {"result_state", "state", "result_state", KIND_TEXT},
    {"cluster_id", "cluster_instance", "cluster_id", KIND_TEXT},
    {"spark_context_id", "cluster_instance", "spark_context_id", KIND_TEXT},
    {"start_time", NULL, "start_time", KIND_TIME},
    {"end_time", NULL, "end_time", KIND_TIME},
    {"setup_duration_s", NULL, "setup_duration", KIND_DURATION},
    {"execution_duration_s", NULL, "execution_duration", KIND_DURATION},
    {"cleanup_duration_s", NULL, "cleanup_duration", KIND_DURATION},
    {"run_duration_s", NULL, "run_duration", KIND_DURATION},
};

/* status.termination_details, the newer field; read only when status is there. */
static const struct field termination_fields[] = {
    {"termination_code", NULL, "code", KIND_TEXT},
    {"termination_type", NULL, "type", KIND_TEXT},
    {"termination_message", NULL, "message", KIND_TEXT},
};

/* The keys of one task of a multi-task run. */
static const struct field task_fields[] = {
    {"task_key", NULL, "task_key", KIND_TEXT},
    {"run_id", NULL, "run_id", KIND_ID},
    {"state", "status", "state", KIND_TEXT},
    {"result_state", "state", "result_state", KIND_TEXT},
};

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* A whole number in [lo, 2^53]: the range a double holds exactly. */
static bool whole(const cJSON *v, double lo, int64_t *ret)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= 9007199254740992.0) ||
        (double)(int64_t)v->valuedouble != v->valuedouble)
        return false;
    *ret = (int64_t)v->valuedouble;
    return true;
}

static bool add_string(cJSON *o, const char *key, const char *value)
{
    return cJSON_AddStringToObject(o, key, value) != NULL;
}

/* Adds key from v as `kind` says; an absent or unusable v adds nothing. false on OOM. */
static bool add_value(cJSON *o, const char *key, const cJSON *v, enum kind kind)
{
    char buf[RUN_INFO_VALUE_MAX + 4];
    int64_t n;

    switch (kind) {
    case KIND_TEXT:
        if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0])
            return true;
        return add_string(o, key,
                          errmsg_printable(buf, sizeof(buf), v->valuestring, ERRMSG_ONE_LINE));
    case KIND_ID:
        if (whole(v, 0, &n)) {
            snprintf(buf, sizeof(buf), "%" PRId64, n);
            return add_string(o, key, buf);
        }
        if (cJSON_IsString(v) && v->valuestring && v->valuestring[0] &&
            strlen(v->valuestring) <= 19 &&
            strspn(v->valuestring, "0123456789") == strlen(v->valuestring))
            return add_string(o, key, v->valuestring);
        return true;
    case KIND_TIME: {
        struct tm tm;
        time_t seconds;

        if (!whole(v, 1, &n))
            return true;
        seconds = (time_t)(n / 1000);
        if (!gmtime_r(&seconds, &tm))
            return true;
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(n % 1000));
        return add_string(o, key, buf);
    }
    case KIND_DURATION:
        if (!whole(v, 1, &n))
            return true;
        return cJSON_AddNumberToObject(o, key, (double)n / 1000.0) != NULL;
    case KIND_URL: {
        const char *url = cJSON_IsString(v) ? v->valuestring : NULL;
        size_t len = url ? strlen(url) : 0;

        if (!url || len > URL_MAX ||
            (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
            return true;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7F)
                return true;
        return add_string(o, key, url);
    }
    }
    return true;
}

static bool add_fields(cJSON *o, const cJSON *from, const struct field *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *where = table[i].object ? member(from, table[i].object) : from;

        if (!add_value(o, table[i].key, member(where, table[i].field), table[i].kind))
            return false;
        /* Without the newer status, the life cycle state says where the run is. */
        if (strcmp(table[i].key, "state") == 0 && !cJSON_HasObjectItem(o, "state") &&
            !add_value(o, "state", member(member(from, "state"), "life_cycle_state"), KIND_TEXT))
            return false;
    }
    return true;
}

/* tasks (and tasks_total when cut) for a run with more than one task. */
static bool add_tasks(cJSON *o, const cJSON *run)
{
    const cJSON *tasks = member(run, "tasks"), *task;
    cJSON *list;
    int total = cJSON_IsArray(tasks) ? cJSON_GetArraySize(tasks) : 0, kept = 0;

    if (total < 2)
        return true;
    list = cJSON_AddArrayToObject(o, "tasks");
    if (!list)
        return false;
    cJSON_ArrayForEach(task, tasks)
    {
        cJSON *entry;

        if (!cJSON_IsObject(task))
            continue;
        if (kept == RUN_INFO_TASKS_MAX)
            return cJSON_AddNumberToObject(o, "tasks_total", total) != NULL;
        entry = cJSON_CreateObject();
        if (!entry || !cJSON_AddItemToArray(list, entry)) {
            cJSON_Delete(entry);
            return false;
        }
        if (!add_fields(entry, task, task_fields, ELEMENTSOF(task_fields)))
            return false;
        kept++;
    }
    return true;
}

int run_info_build(const cJSON *run, const struct run_info_output *output, cJSON **ret_info)
{
    cJSON *info = cJSON_CreateObject();
    const cJSON *details = member(member(run, "status"), "termination_details");
    bool ok;

    ok = info && add_fields(info, run, fields, ELEMENTSOF(fields)) &&
         add_fields(info, details, termination_fields, ELEMENTSOF(termination_fields)) &&
         add_tasks(info, run);
    if (ok && output && output->notebook_result)
        ok = add_string(info, "notebook_result", output->notebook_result) &&
             (!output->notebook_result_truncated ||
              cJSON_AddTrueToObject(info, "notebook_result_truncated"));
    if (!ok) {
        cJSON_Delete(info);
        return -ENOMEM;
    }
    *ret_info = info;
    return 0;
}
