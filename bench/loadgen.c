/*
 * loadgen.c - the benchmark's load: a gRPC core client that keeps a fixed
 * number of calls in flight (closed loop) or starts them at a fixed rate
 * (open loop), checks every answer and reports throughput, latency
 * percentiles and errors as one JSON line on stdout.
 *
 *   loadgen --target HOST:PORT --call get|create|health
 *           (--concurrency N | --rate CALLS_PER_S) [--duration S] [--warmup S]
 *           [--threads N] [--runs N] [--instance HOST:PORT] [--expect-phase N]
 *           [--deadline-ms N]
 *   loadgen --startup --target HOST:PORT [--idle-ms N] [-- COMMAND [ARGS...]]
 *
 * GetTask calls go round robin over --runs distinct run ids (100,000 by
 * default), and an id still in flight is skipped: no two calls in flight ask
 * about the same run, so a figure can never come from the daemon coalescing
 * polls of one run. A GetTask answer counts as good only with status OK and
 * the expected phase; a CreateTask answer only with status OK and a
 * resource_meta naming a run; a health check only with SERVING.
 *
 * In rate mode a call's latency runs from the moment it was due, not the
 * moment it left: a generator that falls behind shows it in the tail
 * instead of hiding it (coordinated omission).
 *
 * --startup runs COMMAND, waits until its port accepts connections, sends
 * one health check (wait-for-ready) and reports the time from exec to that
 * answer and the process's RSS, then stops it with SIGTERM. Without
 * COMMAND it only waits for the health answer (a readiness probe).
 *
 * Threads: each load thread owns one channel (one HTTP/2 connection), one
 * completion queue and its share of the calls and run ids; main merges.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flyteidl/admin/agent.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "structjson.h"

#define MAX_THREADS 8
#define MAX_ERRORS_SHOWN 5

enum call_kind {
    KIND_GET,
    KIND_CREATE,
    KIND_HEALTH,
    _KIND_MAX,
};

static const char *const kind_names[_KIND_MAX] = {
    [KIND_GET] = "get",
    [KIND_CREATE] = "create",
    [KIND_HEALTH] = "health",
};

static const char *const kind_paths[_KIND_MAX] = {
    [KIND_GET] = "/flyteidl.service.AsyncAgentService/GetTask",
    [KIND_CREATE] = "/flyteidl.service.AsyncAgentService/CreateTask",
    [KIND_HEALTH] = "/grpc.health.v1.Health/Check",
};

struct options {
    const char *target;
    enum call_kind kind;
    long concurrency; /* closed loop when > 0 */
    double rate;      /* open loop when > 0 */
    double duration_s;
    double warmup_s;
    int threads;
    long runs;
    const char *instance;
    int expect_phase;
    long deadline_ms;
};

/* One call slot; its address is the tag of its one batch. */
struct slot {
    grpc_call *call;
    int64_t due_ns; /* latency starts here */
    long run;       /* index into the thread's run ids, -1 when none */
    grpc_byte_buffer *request;
    grpc_byte_buffer *response;
    grpc_metadata_array initial_metadata;
    grpc_metadata_array trailing_metadata;
    grpc_status_code status;
    grpc_slice details;
    struct slot *next_free;
};

struct load_thread {
    const struct options *o;
    int index;
    pthread_t thread;
    grpc_channel *channel;
    grpc_completion_queue *queue;
    void *registered;
    struct slot *slots;
    long slots_count;
    struct slot *free_slots;
    long in_flight;
    /* Run ids index*1 .. : this thread asks about runs index, index+threads, ... */
    long runs_count;
    long run_cursor;
    unsigned char *run_busy;
    long create_counter;
    /* Results. */
    uint32_t *latencies_us; /* calls finished inside the window */
    size_t latencies_len, latencies_cap;
    long measured;
    long total;
    long errors;
    long overflow; /* rate mode: a call came due with every slot busy */
    int64_t window_start_ns, window_end_ns;
};

static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static int errors_shown;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gpr_timespec ns_to_deadline(int64_t ns_from_now)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_nanos(ns_from_now > 0 ? ns_from_now : 0, GPR_TIMESPAN));
}

static void show_error(const char *what)
{
    pthread_mutex_lock(&error_lock);
    if (errors_shown++ < MAX_ERRORS_SHOWN)
        fprintf(stderr, "loadgen: bad answer: %s\n", what);
    pthread_mutex_unlock(&error_lock);
}

/* ---- requests ------------------------------------------------------------ */

static grpc_byte_buffer *buffer_of(const ProtobufCMessage *m)
{
    grpc_slice slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(m));
    grpc_byte_buffer *b;

    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(slice));
    b = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return b;
}

static grpc_byte_buffer *get_request(const struct options *o, long run_id)
{
    Flyteidl__Admin__GetTaskRequest req = FLYTEIDL__ADMIN__GET_TASK_REQUEST__INIT;
    Flyteidl__Admin__TaskCategory category = FLYTEIDL__ADMIN__TASK_CATEGORY__INIT;
    char meta[256];
    int n;

    n = snprintf(meta, sizeof(meta), "{\"databricks_instance\": \"%s\", \"run_id\": \"%ld\"}",
                 o->instance, run_id);
    category.name = (char *)"spark";
    req.task_category = &category;
    req.task_type = (char *)"spark";
    req.resource_meta.data = (uint8_t *)meta;
    req.resource_meta.len = (size_t)n;
    return buffer_of(&req.base);
}

static grpc_byte_buffer *health_request(void)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)"";
    return buffer_of(&req.base);
}

/* A CreateTaskRequest like propeller's for a flytekit Databricks task; the
 * node id changes per call so every call is a distinct task execution. */
static grpc_byte_buffer *create_request(const struct options *o, long counter)
{
    static const char custom_json_format[] =
        "{\"sparkConf\": {\"spark.driver.memory\": \"1000M\"},"
        " \"mainApplicationFile\": \"local:///usr/local/bin/entrypoint.py\","
        " \"applicationType\": \"PYTHON\", \"databricksInstance\": \"%s\","
        " \"databricksConf\": {\"run_name\": \"flytekit databricks plugin example\","
        " \"new_cluster\": {\"spark_version\": \"13.3.x-scala2.12\","
        " \"node_type_id\": \"m5.xlarge\", \"num_workers\": 2},"
        " \"timeout_seconds\": 3600, \"max_retries\": 1}}";
    static char *args[] = {"pyflyte-execute",
                           "--inputs",
                           "s3://bucket/inputs.pb",
                           "--output-prefix",
                           "s3://bucket/data/n0/0",
                           "--resolver",
                           "flytekit.core.python_auto_container.default_task_resolver",
                           "--",
                           "task-module",
                           "workflows.spark",
                           "task-name",
                           "hello_spark"};
    Flyteidl__Admin__CreateTaskRequest req = FLYTEIDL__ADMIN__CREATE_TASK_REQUEST__INIT;
    Flyteidl__Core__TaskTemplate tpl = FLYTEIDL__CORE__TASK_TEMPLATE__INIT;
    Flyteidl__Core__Identifier task_id = FLYTEIDL__CORE__IDENTIFIER__INIT;
    Flyteidl__Core__Container container = FLYTEIDL__CORE__CONTAINER__INIT;
    Flyteidl__Core__KeyValuePair env = FLYTEIDL__CORE__KEY_VALUE_PAIR__INIT;
    Flyteidl__Core__KeyValuePair *envs[1] = {&env};
    Flyteidl__Admin__TaskExecutionMetadata md = FLYTEIDL__ADMIN__TASK_EXECUTION_METADATA__INIT;
    Flyteidl__Core__TaskExecutionIdentifier tid = FLYTEIDL__CORE__TASK_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__NodeExecutionIdentifier nid = FLYTEIDL__CORE__NODE_EXECUTION_IDENTIFIER__INIT;
    Flyteidl__Core__WorkflowExecutionIdentifier wid =
        FLYTEIDL__CORE__WORKFLOW_EXECUTION_IDENTIFIER__INIT;
    Google__Protobuf__Struct *custom = NULL;
    grpc_byte_buffer *b = NULL;
    char json[1024], node_id[32];
    cJSON *parsed;

    snprintf(json, sizeof(json), custom_json_format, o->instance);
    snprintf(node_id, sizeof(node_id), "n%ld", counter);
    parsed = cJSON_Parse(json);
    if (!parsed || structjson_from_cjson(parsed, &custom, NULL) < 0)
        goto out;
    task_id.resource_type = FLYTEIDL__CORE__RESOURCE_TYPE__TASK;
    task_id.project = (char *)"flytesnacks";
    task_id.domain = (char *)"development";
    task_id.name = (char *)"workflows.spark.hello_spark";
    task_id.version = (char *)"v1";
    tpl.id = &task_id;
    tpl.type = (char *)"spark";
    container.image = (char *)"ghcr.io/flyteorg/flytekit:py3.11-latest";
    container.n_args = sizeof(args) / sizeof(args[0]);
    container.args = args;
    env.key = (char *)"GREETING";
    env.value = (char *)"hello world";
    container.n_env = 1;
    container.env = envs;
    tpl.target_case = FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER;
    tpl.container = &container;
    tpl.custom = custom;
    wid.project = (char *)"flytesnacks";
    wid.domain = (char *)"development";
    wid.name = (char *)"benchexec";
    nid.node_id = node_id;
    nid.execution_id = &wid;
    tid.task_id = &task_id;
    tid.node_execution_id = &nid;
    md.task_execution_id = &tid;
    md.namespace_ = (char *)"flytesnacks-development";
    req.template_ = &tpl;
    req.task_execution_metadata = &md;
    req.output_prefix = (char *)"s3://bucket/data/n0/0";
    b = buffer_of(&req.base);
out:
    structjson_struct_free(custom);
    cJSON_Delete(parsed);
    return b;
}

/* ---- answers ------------------------------------------------------------- */

static grpc_slice read_all(grpc_byte_buffer *b)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;

    if (!b || !grpc_byte_buffer_reader_init(&reader, b))
        return grpc_empty_slice();
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return s;
}

/* True when the answer is what a healthy daemon gives; otherwise fills why. */
static bool answer_ok(const struct options *o, const struct slot *s, char *why, size_t size)
{
    grpc_slice body;
    const uint8_t *data;
    size_t len;
    bool ok = false;

    if (s->status != GRPC_STATUS_OK) {
        char *details = grpc_slice_to_c_string(s->details);
        snprintf(why, size, "status %d: %s", (int)s->status, details ? details : "");
        gpr_free(details);
        return false;
    }
    body = read_all(s->response);
    data = GRPC_SLICE_START_PTR(body);
    len = GRPC_SLICE_LENGTH(body);
    switch (o->kind) {
    case KIND_GET: {
        Flyteidl__Admin__GetTaskResponse *r =
            flyteidl__admin__get_task_response__unpack(NULL, len, data);
        ok = r && r->resource && (int)r->resource->phase == o->expect_phase;
        snprintf(why, size, "GetTask phase %d, expected %d",
                 r && r->resource ? (int)r->resource->phase : -1, o->expect_phase);
        if (r)
            flyteidl__admin__get_task_response__free_unpacked(r, NULL);
        break;
    }
    case KIND_CREATE: {
        Flyteidl__Admin__CreateTaskResponse *r =
            flyteidl__admin__create_task_response__unpack(NULL, len, data);
        ok = r && r->resource_meta.len > 0 &&
             memmem(r->resource_meta.data, r->resource_meta.len, "\"run_id\"", 8) != NULL;
        snprintf(why, size, "CreateTask answer without a run_id in resource_meta");
        if (r)
            flyteidl__admin__create_task_response__free_unpacked(r, NULL);
        break;
    }
    case KIND_HEALTH: {
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, len, data);
        ok = r && r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        snprintf(why, size, "health status not SERVING");
        if (r)
            grpc__health__v1__health_check_response__free_unpacked(r, NULL);
        break;
    }
    default:
        break;
    }
    grpc_slice_unref(body);
    return ok;
}

/* ---- one load thread ----------------------------------------------------- */

/* Next run id not in flight; the thread's ids are index, index+threads, ... */
static long take_run(struct load_thread *t)
{
    for (long tries = 0; tries < t->runs_count; tries++) {
        long i = t->run_cursor;
        t->run_cursor = (t->run_cursor + 1) % t->runs_count;
        if (!t->run_busy[i]) {
            t->run_busy[i] = 1;
            return i;
        }
    }
    return -1;
}

static int start_call(struct load_thread *t, int64_t due_ns)
{
    const struct options *o = t->o;
    struct slot *s = t->free_slots;
    grpc_op ops[6];
    uint32_t flags = 0;

    if (!s)
        return -EBUSY;
    t->free_slots = s->next_free;
    memset(s, 0, sizeof(*s));
    s->run = -1;
    s->due_ns = due_ns;
    switch (o->kind) {
    case KIND_GET:
        s->run = take_run(t);
        if (s->run < 0)
            goto busy;
        /* Run ids from 1: Databricks has no run 0. */
        s->request = get_request(o, 1 + s->run * o->threads + t->index);
        break;
    case KIND_CREATE:
        s->request = create_request(o, t->create_counter++ * o->threads + t->index);
        break;
    case KIND_HEALTH:
        s->request = health_request();
        flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
        break;
    default:
        break;
    }
    if (!s->request)
        goto busy;
    grpc_metadata_array_init(&s->initial_metadata);
    grpc_metadata_array_init(&s->trailing_metadata);
    s->call = grpc_channel_create_registered_call(t->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                                  t->queue, t->registered,
                                                  ns_to_deadline(o->deadline_ms * 1000000), NULL);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = flags;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_metadata;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing_metadata;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "loadgen: cannot start a call\n");
        exit(1);
    }
    t->in_flight++;
    return 0;
busy:
    if (s->run >= 0)
        t->run_busy[s->run] = 0;
    s->next_free = t->free_slots;
    t->free_slots = s;
    return -EBUSY;
}

static void finish_call(struct load_thread *t, struct slot *s)
{
    int64_t done = now_ns();
    char why[512];
    bool ok = answer_ok(t->o, s, why, sizeof(why));

    t->total++;
    if (!ok) {
        t->errors++;
        show_error(why);
    }
    if (done >= t->window_start_ns && done < t->window_end_ns && ok) {
        if (t->latencies_len == t->latencies_cap) {
            size_t cap = t->latencies_cap ? t->latencies_cap * 2 : 65536;
            uint32_t *grown = realloc(t->latencies_us, cap * sizeof(*grown));
            if (!grown) {
                fprintf(stderr, "loadgen: out of memory\n");
                exit(1);
            }
            t->latencies_us = grown;
            t->latencies_cap = cap;
        }
        t->latencies_us[t->latencies_len++] = (uint32_t)((done - s->due_ns) / 1000);
        t->measured++;
    }
    if (s->run >= 0)
        t->run_busy[s->run] = 0;
    grpc_call_unref(s->call);
    grpc_byte_buffer_destroy(s->request);
    if (s->response)
        grpc_byte_buffer_destroy(s->response);
    grpc_metadata_array_destroy(&s->initial_metadata);
    grpc_metadata_array_destroy(&s->trailing_metadata);
    grpc_slice_unref(s->details);
    s->next_free = t->free_slots;
    t->free_slots = s;
    t->in_flight--;
}

static void *load_main(void *arg)
{
    struct load_thread *t = arg;
    const struct options *o = t->o;
    int64_t start = now_ns();
    int64_t end = t->window_end_ns;
    /* Open loop: this thread's share of the rate. */
    int64_t interval_ns = o->rate > 0 ? (int64_t)(1e9 * o->threads / o->rate) : 0;
    int64_t next_due = start;
    long share = o->concurrency / o->threads + (t->index < o->concurrency % o->threads ? 1 : 0);

    if (o->rate <= 0)
        for (long i = 0; i < share; i++)
            (void)start_call(t, now_ns());
    for (;;) {
        int64_t now = now_ns();
        gpr_timespec wait;
        grpc_event ev;

        if (now >= end && t->in_flight == 0)
            break;
        if (o->rate > 0) {
            while (next_due <= now && next_due < end) {
                if (start_call(t, next_due) < 0)
                    t->overflow++;
                next_due += interval_ns;
            }
            wait = ns_to_deadline((next_due < end ? next_due : end) - now);
        } else {
            wait = ns_to_deadline(now < end ? end - now : 1000000000);
        }
        if (now >= end) /* draining: wait for the deadline at most */
            wait = ns_to_deadline((int64_t)o->deadline_ms * 1000000 + 1000000000);
        ev = grpc_completion_queue_next(t->queue, wait, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            if (now >= end)
                break; /* calls stuck beyond their deadline: leave them */
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        finish_call(t, ev.tag);
        if (o->rate <= 0 && now_ns() < end)
            (void)start_call(t, now_ns());
    }
    return NULL;
}

static grpc_channel *channel_new(const char *target, int index)
{
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    /* Distinct channel args give each thread its own connection. */
    grpc_arg args[2] = {
        {.type = GRPC_ARG_INTEGER, .key = (char *)"loadgen.thread", .value.integer = index},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
         .value.integer = 1},
    };
    grpc_channel_args channel_args = {.num_args = 2, .args = args};
    grpc_channel *c = grpc_channel_create(target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    return c;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const uint32_t *sorted, size_t n, double p)
{
    size_t i;
    if (n == 0)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1000.0;
}

static int run_load(struct options *o)
{
    struct load_thread threads[MAX_THREADS];
    long slots_per_thread;
    int64_t start;
    uint32_t *all = NULL;
    size_t all_len = 0;
    long measured = 0, total = 0, errors = 0, overflow = 0, in_flight_left = 0;
    double seconds = o->duration_s;

    if (o->rate > 0)
        /* Room for a second of calls beyond the rate before counting overflow. */
        slots_per_thread = (long)(o->rate / o->threads) + 1000;
    else
        slots_per_thread = o->concurrency / o->threads + 1;
    start = now_ns();
    memset(threads, 0, sizeof(threads));
    for (int i = 0; i < o->threads; i++) {
        struct load_thread *t = &threads[i];
        t->o = o;
        t->index = i;
        t->channel = channel_new(o->target, i);
        t->queue = grpc_completion_queue_create_for_next(NULL);
        t->registered = grpc_channel_register_call(t->channel, kind_paths[o->kind], NULL, NULL);
        t->slots_count = slots_per_thread;
        t->slots = calloc((size_t)slots_per_thread, sizeof(*t->slots));
        t->runs_count = o->runs / o->threads;
        t->run_busy = calloc((size_t)t->runs_count, 1);
        if (!t->slots || !t->run_busy) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
        for (long k = slots_per_thread - 1; k >= 0; k--) {
            t->slots[k].next_free = t->free_slots;
            t->free_slots = &t->slots[k];
        }
        t->window_start_ns = start + (int64_t)(o->warmup_s * 1e9);
        t->window_end_ns = t->window_start_ns + (int64_t)(o->duration_s * 1e9);
    }
    for (int i = 0; i < o->threads; i++)
        if (pthread_create(&threads[i].thread, NULL, load_main, &threads[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start threads\n");
            return 1;
        }
    for (int i = 0; i < o->threads; i++) {
        struct load_thread *t = &threads[i];
        pthread_join(t->thread, NULL);
        measured += t->measured;
        total += t->total;
        errors += t->errors;
        overflow += t->overflow;
        in_flight_left += t->in_flight;
        all_len += t->latencies_len;
    }
    all = malloc((all_len ? all_len : 1) * sizeof(*all));
    if (!all) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    all_len = 0;
    for (int i = 0; i < o->threads; i++) {
        memcpy(all + all_len, threads[i].latencies_us, threads[i].latencies_len * sizeof(*all));
        all_len += threads[i].latencies_len;
    }
    qsort(all, all_len, sizeof(*all), compare_u32);
    printf("{\"tool\": \"loadgen\", \"call\": \"%s\", \"concurrency\": %ld, \"rate\": %.0f, "
           "\"threads\": %d, \"seconds\": %.3f, \"calls\": %ld, \"throughput\": %.1f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"max_ms\": %.3f, \"errors\": %ld, \"overflow\": %ld, \"unfinished\": %ld, "
           "\"total_calls\": %ld}\n",
           kind_names[o->kind], o->concurrency, o->rate, o->threads, seconds, measured,
           (double)measured / seconds, percentile(all, all_len, 0.50),
           percentile(all, all_len, 0.90), percentile(all, all_len, 0.99),
           percentile(all, all_len, 0.999), all_len ? (double)all[all_len - 1] / 1000.0 : 0.0,
           errors, overflow, in_flight_left, total);
    fflush(stdout);
    /* Calls left unfinished past their deadline belong to gRPC: exit
     * without tearing the channels down under them. */
    free(all);
    return errors || overflow || in_flight_left ? 3 : 0;
}

/* ---- start-up time ------------------------------------------------------- */

struct rss {
    long total_kb, anon_kb, file_kb;
};

/* The process's resident set from /proc: total, anonymous (its own heap
 * and stacks) and file-backed (mapped libraries, shared with others). */
static struct rss rss_of(pid_t pid)
{
    struct rss r = {-1, -1, -1};
    char path[64], line[256];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return r;
    while (fgets(line, sizeof(line), f)) {
        (void)(sscanf(line, "VmRSS: %ld kB", &r.total_kb) == 1 ||
               sscanf(line, "RssAnon: %ld kB", &r.anon_kb) == 1 ||
               sscanf(line, "RssFile: %ld kB", &r.file_kb) == 1);
    }
    fclose(f);
    return r;
}

static bool port_open(const char *target)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(target, ':');
    int fd;
    bool ok;

    if (!colon || (size_t)(colon - target) >= sizeof(host))
        return false;
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return false;
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int run_startup(struct options *o, char **command, long idle_ms)
{
    struct load_thread t = {.o = o, .index = 0};
    struct slot slot;
    int64_t t0, t1, t_listen, limit;
    pid_t pid;
    struct rss rss_first = {-1, -1, -1}, rss_idle = {-1, -1, -1};
    int status = 0, r = 1;
    char why[256];
    grpc_event ev;

    o->kind = KIND_HEALTH;
    o->threads = 1;
    t0 = now_ns();
    /* Without a command: probe a server that is already starting. */
    pid = command ? fork() : 0;
    if (pid < 0) {
        perror("loadgen: fork");
        return 1;
    }
    if (command && pid == 0) {
        execvp(command[0], command);
        _exit(127);
    }
    limit = t0 + 10 * 1000000000LL;
    while (!port_open(o->target)) {
        if (now_ns() > limit || (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)) {
            fprintf(stderr, "loadgen: nothing listens on %s\n", o->target);
            pid = 0;
            goto out;
        }
        usleep(200);
    }
    t_listen = now_ns();
    t.channel = channel_new(o->target, 0);
    t.queue = grpc_completion_queue_create_for_next(NULL);
    t.registered = grpc_channel_register_call(t.channel, kind_paths[KIND_HEALTH], NULL, NULL);
    t.slots = &slot;
    t.slots_count = 1;
    t.free_slots = &slot;
    slot.next_free = NULL;
    t.window_end_ns = INT64_MAX;
    if (start_call(&t, t0) < 0)
        goto out;
    ev = grpc_completion_queue_next(t.queue, ns_to_deadline(o->deadline_ms * 1000000), NULL);
    t1 = now_ns();
    if (ev.type != GRPC_OP_COMPLETE) {
        fprintf(stderr, "loadgen: no health answer\n");
        goto out;
    }
    if (!answer_ok(o, &slot, why, sizeof(why))) {
        fprintf(stderr, "loadgen: health check: %s\n", why);
        finish_call(&t, &slot);
        goto out;
    }
    finish_call(&t, &slot);
    if (pid > 0)
        rss_first = rss_of(pid);
    usleep((useconds_t)idle_ms * 1000);
    if (pid > 0)
        rss_idle = rss_of(pid);
    printf("{\"tool\": \"loadgen\", \"call\": \"startup\", \"startup_ms\": %.3f, "
           "\"listen_ms\": %.3f, \"rss_first_kb\": %ld, \"rss_idle_kb\": %ld, "
           "\"rss_idle_anon_kb\": %ld, \"rss_idle_file_kb\": %ld, \"idle_ms\": %ld}\n",
           (double)(t1 - t0) / 1e6, (double)(t_listen - t0) / 1e6, rss_first.total_kb,
           rss_idle.total_kb, rss_idle.anon_kb, rss_idle.file_kb, idle_ms);
    fflush(stdout);
    r = 0;
out:
    if (t.channel)
        grpc_channel_destroy(t.channel);
    if (t.queue) {
        grpc_completion_queue_shutdown(t.queue);
        while (grpc_completion_queue_next(t.queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(t.queue);
    }
    free(t.latencies_us);
    if (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(pid, &status, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }
    return r;
}

/* ---- command line -------------------------------------------------------- */

static void usage_exit(void)
{
    fprintf(stderr,
            "usage: loadgen --target HOST:PORT --call get|create|health\n"
            "               (--concurrency N | --rate CALLS_PER_S) [--duration S] [--warmup S]\n"
            "               [--threads N] [--runs N] [--instance HOST:PORT] [--expect-phase N]\n"
            "               [--deadline-ms N]\n"
            "       loadgen --startup --target HOST:PORT [--idle-ms N] [-- COMMAND [ARGS...]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct options o = {
        .duration_s = 5,
        .warmup_s = 1,
        .threads = 1,
        .runs = 100000,
        .instance = "127.0.0.1:443",
        .expect_phase = FLYTEIDL__CORE__TASK_EXECUTION__PHASE__RUNNING,
        .deadline_ms = 10000,
        .kind = _KIND_MAX,
    };
    bool startup = false;
    long idle_ms = 1000;
    char **command = NULL;
    int r;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            command = &argv[i + 1];
            break;
        }
        if (strcmp(a, "--startup") == 0) {
            startup = true;
            continue;
        }
        if (!v)
            usage_exit();
        i++;
        if (strcmp(a, "--target") == 0)
            o.target = v;
        else if (strcmp(a, "--call") == 0) {
            for (int k = 0; k < _KIND_MAX; k++)
                if (strcmp(v, kind_names[k]) == 0)
                    o.kind = (enum call_kind)k;
        } else if (strcmp(a, "--concurrency") == 0)
            o.concurrency = atol(v);
        else if (strcmp(a, "--rate") == 0)
            o.rate = atof(v);
        else if (strcmp(a, "--duration") == 0)
            o.duration_s = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup_s = atof(v);
        else if (strcmp(a, "--threads") == 0)
            o.threads = atoi(v);
        else if (strcmp(a, "--runs") == 0)
            o.runs = atol(v);
        else if (strcmp(a, "--instance") == 0)
            o.instance = v;
        else if (strcmp(a, "--expect-phase") == 0)
            o.expect_phase = atoi(v);
        else if (strcmp(a, "--deadline-ms") == 0)
            o.deadline_ms = atol(v);
        else if (strcmp(a, "--idle-ms") == 0)
            idle_ms = atol(v);
        else
            usage_exit();
    }
    if (!o.target)
        usage_exit();
    if (startup) {
        if (command && !command[0])
            usage_exit();
    } else if (o.kind == _KIND_MAX || (o.concurrency <= 0) == (o.rate <= 0) || o.threads < 1 ||
               o.threads > MAX_THREADS || o.duration_s <= 0 || o.warmup_s < 0 ||
               o.runs / o.threads < o.concurrency / o.threads + 1) {
        usage_exit();
    }
    /* A closed signal pipe must not kill us mid-report. */
    signal(SIGPIPE, SIG_IGN);
    grpc_init();
    r = startup ? run_startup(&o, command, idle_ms) : run_load(&o);
    /* Exit without grpc_shutdown(): channels of a finished load may still
     * hold calls past their deadline, and the process ends here anyway. */
    return r;
}
