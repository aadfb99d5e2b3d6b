/*
 * spec.c - TaskTemplate (custom config + container) -> Databricks runs/submit body.
 *
 * Follows flytekit's _get_databricks_job_spec, _configure_classic_cluster,
 * _configure_serverless and _is_serverless_config (flyteorg/flytekit
 * plugins/flytekit-spark/flytekitplugins/spark/connector.py) rule for rule, including Python's
 * notion of truthiness ("if not new_cluster.get('docker_image')" treats {} and "" as absent)
 * and dict.get() defaults that apply only when the key is missing, not when it is null. Where
 * the Python code would raise on a wrong type, we return -EINVAL naming the key.
 *
 * flyte-sdk's connector (Flyte 2) applies the same classic-cluster rules; what differs is in
 * the entrypoint row the caller passes: its script and commit, no FLYTE_FAIL_ON_ERROR, and no
 * serverless entrypoint. flyte-sdk always overwrites spark_python_task and git_source; here a
 * user's own git_source / python_file win for both generations, as flytekit lets them.
 *
 * spec_input_from_template() reads the container half of the input out of a flyteidl
 * TaskTemplate, so that the handler and the CreateTask fuzz target map it the same way.
 *
 * Works on a duplicate of custom["databricksConf"]; the input is never modified.
 * Pure: no global mutable state, any thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "structjson.h"

/* flytekit constants (connector.py and flytekit/core/constants.py); the entrypoint's are in
 * config.c's table. */
#define FAIL_ON_ERROR_ENV "FLYTE_FAIL_ON_ERROR"
#define DEFAULT_ENVIRONMENT_KEY "default"
#define SERVERLESS_CLIENT "1"
#define PYTHON_TASK_KEY "flyte_task"
#define NOTEBOOK_TASK_KEY "flyte_notebook_task"
#define CREDENTIAL_PROVIDER_ARG "--flyte-credential-provider="
#define NO_COMPUTE_MSG                                                                             \
    "Either existing_cluster_id, new_cluster, environment_key, or environments must be "           \
    "specified in databricksConf"

__attribute__((format(printf, 3, 4))) static int fail(char **reterr_msg, int r, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (!reterr_msg)
        return r;
    va_start(ap, fmt);
    if (vasprintf(reterr_msg, fmt, ap) < 0)
        *reterr_msg = NULL;
    va_end(ap);
    return r;
}

static int fail_oom(char **reterr_msg)
{
    return fail(reterr_msg, -ENOMEM, "out of memory building the runs/submit body");
}

static const cJSON *get(const cJSON *object, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(object, key);
}

/* Python's bool(value); a missing key is None. */
static bool truthy(const cJSON *item)
{
    if (!item)
        return false;
    switch (item->type & 0xff) {
    case cJSON_True:
        return true;
    case cJSON_Number:
        return !(item->valuedouble == 0); /* NaN is truthy in Python too */
    case cJSON_String:
        return item->valuestring && item->valuestring[0];
    case cJSON_Array:
    case cJSON_Object:
        return item->child != NULL;
    default:
        return false;
    }
}

/* object[key] = value, as a Python dict does it: an existing key keeps its place. Takes value
 * (freed on failure, and NULL value means an allocation already failed). */
static int set(cJSON *object, const char *key, cJSON *value)
{
    bool ok;

    if (!value)
        return -ENOMEM;
    if (get(object, key))
        ok = cJSON_ReplaceItemInObjectCaseSensitive(object, key, value);
    else
        ok = cJSON_AddItemToObject(object, key, value);
    if (!ok) {
        cJSON_Delete(value);
        return -ENOMEM;
    }
    return 0;
}

static int set_string(cJSON *object, const char *key, const char *value)
{
    return set(object, key, cJSON_CreateString(value));
}

/* dst.update(src) for two JSON objects. */
static int merge(cJSON *dst, const cJSON *src)
{
    for (const cJSON *c = src->child; c; c = c->next) {
        int r = set(dst, c->string, cJSON_Duplicate(c, true));
        if (r < 0)
            return r;
    }
    return 0;
}

/* flytekit: envs = container.env as a dict, then envs["FLYTE_FAIL_ON_ERROR"] = "true";
 * flyte-sdk: the container env alone. */
static int build_envs(const struct spec_input *in, cJSON **ret)
{
    cJSON *envs = cJSON_CreateObject();
    int r = envs ? 0 : -ENOMEM;

    for (size_t i = 0; r >= 0 && i < in->env_count; i++) {
        const char *name = in->env[i].name ? in->env[i].name : "";
        r = set_string(envs, name, in->env[i].value ? in->env[i].value : "");
    }
    if (r >= 0 && in->entrypoint->fail_on_error_env)
        r = set_string(envs, FAIL_ON_ERROR_ENV, "true");
    if (r < 0) {
        cJSON_Delete(envs);
        return r;
    }
    *ret = envs;
    return 0;
}

static cJSON *build_args(const struct spec_input *in)
{
    cJSON *array = cJSON_CreateArray();

    for (size_t i = 0; array && i < in->args_count; i++) {
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(in->args[i] ? in->args[i] : ""))) {
            cJSON_Delete(array);
            array = NULL;
        }
    }
    return array;
}

static cJSON *default_git_source(const struct config_entrypoint *entrypoint)
{
    cJSON *g = cJSON_CreateObject();

    if (g && (!cJSON_AddStringToObject(g, "git_url", entrypoint->git_url) ||
              !cJSON_AddStringToObject(g, "git_provider", entrypoint->git_provider) ||
              !cJSON_AddStringToObject(g, "git_commit", entrypoint->git_commit))) {
        cJSON_Delete(g);
        g = NULL;
    }
    return g;
}

/* Present and not null, as Python's `job.get(key) is not None`. */
static bool present(const cJSON *job, const char *key)
{
    const cJSON *item = get(job, key);

    return item && !cJSON_IsNull(item);
}

/* is_serverless_config (flytekit's newer form; older ones tested `key in job`): cluster keys
 * count when present and not null, even empty, so {"existing_cluster_id": null,
 * "environment_key": "e"} is serverless; serverless keys count only when truthy. */
static bool is_serverless(const cJSON *job)
{
    bool has_cluster = present(job, "existing_cluster_id") || present(job, "new_cluster");
    bool has_serverless = truthy(get(job, "environment_key")) || truthy(get(job, "environments"));

    return !has_cluster && has_serverless;
}

/* _configure_classic_cluster. */
static int configure_classic(cJSON *job, const struct spec_input *in, const cJSON *envs,
                             char **reterr_msg)
{
    cJSON *cluster = cJSON_GetObjectItemCaseSensitive(job, "new_cluster");
    cJSON *image = NULL, *env_vars;
    const cJSON *spark_conf;
    int r;

    if (present(job, "existing_cluster_id"))
        return 0;
    if (!cluster || cJSON_IsNull(cluster))
        return fail(reterr_msg, -EINVAL, NO_COMPUTE_MSG);
    if (!cJSON_IsObject(cluster))
        return fail(reterr_msg, -EINVAL, "databricksConf.new_cluster must be a JSON object");

    if (!truthy(get(cluster, "docker_image"))) {
        if (!in->image)
            return fail(reterr_msg, -EINVAL,
                        "databricksConf.new_cluster has no docker_image and the task has no "
                        "container image to use");
        image = cJSON_CreateObject();
        if (!image || !cJSON_AddStringToObject(image, "url", in->image)) {
            cJSON_Delete(image);
            return fail_oom(reterr_msg);
        }
        if (set(cluster, "docker_image", image) < 0)
            return fail_oom(reterr_msg);
    }

    if (!truthy(get(cluster, "spark_conf"))) {
        /* custom.get("sparkConf", {}): a present null stays null. */
        spark_conf = get(in->custom, "sparkConf");
        if (set(cluster, "spark_conf",
                spark_conf ? cJSON_Duplicate(spark_conf, true) : cJSON_CreateObject()) < 0)
            return fail_oom(reterr_msg);
    }

    env_vars = cJSON_GetObjectItemCaseSensitive(cluster, "spark_env_vars");
    if (!truthy(env_vars))
        r = set(cluster, "spark_env_vars", cJSON_Duplicate(envs, true));
    else if (!cJSON_IsObject(env_vars))
        return fail(reterr_msg, -EINVAL,
                    "databricksConf.new_cluster.spark_env_vars must be a JSON object");
    else
        r = merge(env_vars, envs);
    if (r < 0)
        return fail_oom(reterr_msg);
    return 0;
}

/* _configure_serverless. Gives the environment key to put in the task as a JSON string in
 * *ret_key (free with cJSON_Delete()). */
static int configure_serverless(cJSON *job, const cJSON *envs, cJSON **ret_key, char **reterr_msg)
{
    const cJSON *key_item = get(job, "environment_key");
    cJSON *environments = cJSON_GetObjectItemCaseSensitive(job, "environments");
    cJSON *found = NULL, *entry = NULL, *spec, *env_vars, *key = NULL;
    const char *name = DEFAULT_ENVIRONMENT_KEY;
    size_t i = 0;
    int r;

    if (key_item) {
        if (!cJSON_IsString(key_item) || !key_item->valuestring) {
            r = fail(reterr_msg, -EINVAL, "databricksConf.environment_key must be a string");
            goto out;
        }
        name = key_item->valuestring;
    }
    if (environments && !cJSON_IsArray(environments)) {
        r = fail(reterr_msg, -EINVAL, "databricksConf.environments must be a JSON array");
        goto out;
    }
    for (cJSON *e = environments ? environments->child : NULL; e; e = e->next, i++) {
        const cJSON *k = get(e, "environment_key");

        if (!cJSON_IsObject(e)) {
            r = fail(reterr_msg, -EINVAL, "databricksConf.environments[%zu] must be a JSON object",
                     i);
            goto out;
        }
        if (!found && cJSON_IsString(k) && k->valuestring && strcmp(k->valuestring, name) == 0)
            found = e;
    }

    key = cJSON_CreateString(name);
    if (!key) {
        r = fail_oom(reterr_msg);
        goto out;
    }

    if (!found) {
        if (!environments) {
            environments = cJSON_CreateArray();
            if (set(job, "environments", environments) < 0) {
                r = fail_oom(reterr_msg);
                goto out;
            }
        }
        entry = cJSON_CreateObject();
        spec = cJSON_AddObjectToObject(entry, "spec");
        if (!entry || !cJSON_AddStringToObject(entry, "environment_key", name) || !spec ||
            !cJSON_AddStringToObject(spec, "client", SERVERLESS_CLIENT) ||
            !cJSON_AddItemToArray(environments, entry)) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        found = entry;
        entry = NULL;
    }

    /* env.setdefault("spec", {}), then environment_vars = {**existing, **envs}. */
    spec = cJSON_GetObjectItemCaseSensitive(found, "spec");
    if (!spec) {
        spec = cJSON_AddObjectToObject(found, "spec");
        if (!spec) {
            r = fail_oom(reterr_msg);
            goto out;
        }
    } else if (!cJSON_IsObject(spec)) {
        r = fail(reterr_msg, -EINVAL,
                 "databricksConf.environments entry '%s': spec must be a JSON object", name);
        goto out;
    }
    env_vars = cJSON_GetObjectItemCaseSensitive(spec, "environment_vars");
    if (!env_vars)
        r = set(spec, "environment_vars", cJSON_Duplicate(envs, true));
    else if (!cJSON_IsObject(env_vars)) {
        r = fail(reterr_msg, -EINVAL,
                 "databricksConf.environments entry '%s': spec.environment_vars must be a JSON "
                 "object",
                 name);
        goto out;
    } else
        r = merge(env_vars, envs);
    if (r < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }

    /* The task carries the key from now on; name may point into the item deleted here, which is
     * why the key was copied above. */
    cJSON_DeleteItemFromObjectCaseSensitive(job, "environment_key");
    *ret_key = key;
    key = NULL;
    r = 0;
out:
    cJSON_Delete(entry);
    cJSON_Delete(key);
    return r;
}

/* {"task_key": task_key, kind: task, "environment_key": key} as the only element of tasks. Takes
 * task and key. */
static int set_single_task(cJSON *job, const char *task_key, const char *kind, cJSON *task,
                           cJSON *key)
{
    cJSON *def = cJSON_CreateObject();
    cJSON *tasks = cJSON_CreateArray();

    if (!def || !tasks || !cJSON_AddStringToObject(def, "task_key", task_key) ||
        !cJSON_AddItemToObject(def, kind, task)) {
        cJSON_Delete(task);
        cJSON_Delete(key);
        goto fail;
    }
    if (!cJSON_AddItemToObject(def, "environment_key", key)) {
        cJSON_Delete(key);
        goto fail;
    }
    if (!cJSON_AddItemToArray(tasks, def))
        goto fail;
    return set(job, "tasks", tasks);
fail:
    cJSON_Delete(def);
    cJSON_Delete(tasks);
    return -ENOMEM;
}

/* custom.get("databricksServiceCredentialProvider", default): a present key wins even when
 * empty. Gives the parameter to append in *ret_arg, or NULL for none. */
static int credential_arg(const struct spec_input *in, char **ret_arg, char **reterr_msg)
{
    const cJSON *item = get(in->custom, "databricksServiceCredentialProvider");
    const char *provider = in->default_credential_provider;

    if (item) {
        if (!truthy(item)) {
            *ret_arg = NULL;
            return 0;
        }
        if (!cJSON_IsString(item))
            return fail(reterr_msg, -EINVAL,
                        "databricksServiceCredentialProvider must be a string");
        provider = item->valuestring;
    }
    if (!provider || !provider[0]) {
        *ret_arg = NULL;
        return 0;
    }
    if (asprintf(ret_arg, "%s%s", CREDENTIAL_PROVIDER_ARG, provider) < 0)
        return fail_oom(reterr_msg);
    return 0;
}

/* Appends the credential provider parameter (credential_arg()) to task.parameters, last:
 * pyflyte-fast-execute must stay the first argument (flytekit). */
static int append_credential(cJSON *task, const struct spec_input *in, char **reterr_msg)
{
    char *credential = NULL;
    int r = credential_arg(in, &credential, reterr_msg);

    if (r < 0 || !credential)
        return r;
    if (!cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(task, "parameters"),
                              cJSON_CreateString(credential)))
        r = fail_oom(reterr_msg);
    free(credential);
    return r;
}

/* Where a branch's task goes in the job: job[kind] on classic compute, or the one element of
 * tasks named task_key on serverless compute. */
struct task_place {
    const char *kind;
    const char *task_key;
    bool credential; /* on serverless, with the credential provider parameter (Python only) */
};

static const struct task_place notebook_place = {"notebook_task", NOTEBOOK_TASK_KEY, false};
static const struct task_place python_place = {"spark_python_task", PYTHON_TASK_KEY, true};

/* Configures the compute mode's part of job and puts task (taken) where `place` says. */
static int place_task(cJSON *job, const struct spec_input *in, const cJSON *envs, bool serverless,
                      const struct task_place *place, cJSON *task, char **reterr_msg)
{
    cJSON *key = NULL;
    int r;

    if (serverless) {
        r = configure_serverless(job, envs, &key, reterr_msg);
        if (r < 0)
            goto out;
        if (place->credential) {
            r = append_credential(task, in, reterr_msg);
            if (r < 0)
                goto out;
        }
        r = set_single_task(job, place->task_key, place->kind, task, key);
        task = key = NULL;
    } else {
        r = configure_classic(job, in, envs, reterr_msg);
        if (r < 0)
            goto out;
        r = set(job, place->kind, task);
        task = NULL;
    }
    if (r < 0)
        r = fail_oom(reterr_msg);
out:
    cJSON_Delete(task);
    cJSON_Delete(key);
    return r;
}

/* The notebook branch of _get_databricks_job_spec. */
static int build_notebook(cJSON *job, const struct spec_input *in, const cJSON *envs,
                          bool serverless, char **reterr_msg)
{
    const cJSON *base_parameters = get(in->custom, "notebookBaseParameters");
    bool from_git = truthy(get(job, "git_source"));
    cJSON *task = NULL;
    int r;

    task = cJSON_CreateObject();
    if (!task ||
        set(task, "notebook_path", cJSON_Duplicate(get(in->custom, "notebookPath"), true)) < 0 ||
        (truthy(base_parameters) &&
         set(task, "base_parameters", cJSON_Duplicate(base_parameters, true)) < 0) ||
        (from_git && set_string(task, "source", "GIT") < 0)) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    r = place_task(job, in, envs, serverless, &notebook_place, task, reterr_msg);
    task = NULL;
    if (r < 0)
        goto out;
    /* flytekit pops git_source and puts it back only when truthy. */
    if (!from_git)
        cJSON_DeleteItemFromObjectCaseSensitive(job, "git_source");
    r = 0;
out:
    cJSON_Delete(task);
    return r;
}

/* Gives the user's python_file when truthy, else the entrypoint's for the compute mode, in
 * *ret_file (cJSON_Delete()). A generation without a serverless entrypoint (flyte-sdk's runs
 * in the task's container image, which serverless compute cannot start) needs the user's. */
static int python_file(const struct spec_input *in, const cJSON *user_file, bool serverless,
                       cJSON **ret_file, char **reterr_msg)
{
    const char *file =
        serverless ? in->entrypoint->serverless_python_file : in->entrypoint->python_file;

    if (truthy(user_file))
        *ret_file = cJSON_Duplicate(user_file, true);
    else if (file)
        *ret_file = cJSON_CreateString(file);
    else
        return fail(reterr_msg, -EINVAL,
                    "databricksConf asks for serverless compute (environment_key or environments "
                    "without existing_cluster_id or new_cluster), and this task's Flyte "
                    "generation has no serverless entrypoint: give existing_cluster_id or "
                    "new_cluster, or a python_file of your own");
    return *ret_file ? 0 : fail_oom(reterr_msg);
}

/* The python-file branch of _get_databricks_job_spec. */
static int build_python(cJSON *job, const struct spec_input *in, const cJSON *envs, bool serverless,
                        char **reterr_msg)
{
    const cJSON *user_git = get(job, "git_source");
    const cJSON *user_file = get(job, "python_file");
    cJSON *git_source = NULL, *task = NULL, *file = NULL;
    int r;

    r = python_file(in, user_file, serverless, &file, reterr_msg);
    if (r < 0)
        goto out;
    git_source =
        truthy(user_git) ? cJSON_Duplicate(user_git, true) : default_git_source(in->entrypoint);
    task = cJSON_CreateObject();
    if (!git_source || !task) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    r = set(task, "python_file", file);
    file = NULL; /* taken by set(), even when it fails */
    if (r < 0 || set_string(task, "source", "GIT") < 0 ||
        set(task, "parameters", build_args(in)) < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    r = place_task(job, in, envs, serverless, &python_place, task, reterr_msg);
    task = NULL;
    if (r < 0)
        goto out;

    /* user_git and user_file die here; they were copied above. */
    cJSON_DeleteItemFromObjectCaseSensitive(job, "python_file");
    r = set(job, "git_source", git_source);
    git_source = NULL;
    if (r < 0)
        r = fail_oom(reterr_msg);
out:
    cJSON_Delete(file);
    cJSON_Delete(git_source);
    cJSON_Delete(task);
    return r;
}

/* flyteidl plugins/spark.proto SparkApplication.Type values of a JVM application, as
 * MessageToDict writes them in custom.applicationType (names), or as numbers. */
static const struct {
    const char *name;
    double number;
} jvm_types[] = {
    {"JAVA", 1},
    {"SCALA", 2},
};

static bool is_jvm(const cJSON *custom)
{
    const cJSON *type = get(custom, "applicationType");

    for (size_t i = 0; type && i < sizeof(jvm_types) / sizeof(jvm_types[0]); i++)
        if ((cJSON_IsString(type) && strcmp(type->valuestring, jvm_types[i].name) == 0) ||
            (cJSON_IsNumber(type) && type->valuedouble == jvm_types[i].number))
            return true;
    return false;
}

/* custom[key] as a non-empty string, else NULL after setting the message. */
static const char *jvm_string(const cJSON *custom, const char *key, char **reterr_msg)
{
    const cJSON *item = get(custom, key);

    if (cJSON_IsString(item) && item->valuestring && item->valuestring[0])
        return item->valuestring;
    fail(reterr_msg, -EINVAL, "%s must be a non-empty string for applicationType JAVA or SCALA",
         key);
    return NULL;
}

/* libraries += {"jar": jar}, unless the user listed that jar already. */
static int add_jar_library(cJSON *job, const char *jar, char **reterr_msg)
{
    cJSON *libraries = cJSON_GetObjectItemCaseSensitive(job, "libraries"), *entry, *lib;

    if (!libraries) {
        libraries = cJSON_CreateArray();
        if (set(job, "libraries", libraries) < 0)
            return fail_oom(reterr_msg);
    } else if (!cJSON_IsArray(libraries)) {
        return fail(reterr_msg, -EINVAL, "databricksConf.libraries must be a JSON array");
    }
    cJSON_ArrayForEach(lib, libraries)
    {
        const cJSON *have = get(lib, "jar");
        if (cJSON_IsString(have) && strcmp(have->valuestring, jar) == 0)
            return 0;
    }
    entry = cJSON_CreateObject();
    if (!entry || !cJSON_AddStringToObject(entry, "jar", jar) ||
        !cJSON_AddItemToArray(libraries, entry)) {
        cJSON_Delete(entry);
        return fail_oom(reterr_msg);
    }
    return 0;
}

/*
 * A JVM Spark application (flytekit's generic Spark task: applicationType JAVA or SCALA,
 * mainClass, mainApplicationFile): a spark_jar_task with the container's args as its
 * parameters and the jar as a library, on classic compute only. Not in flytekit's connector,
 * which submits every task as Python.
 */
static int build_jar(cJSON *job, const struct spec_input *in, const cJSON *envs, bool serverless,
                     char **reterr_msg)
{
    const char *main_class, *jar;
    cJSON *task = NULL;
    int r;

    if (truthy(get(in->custom, "notebookPath")))
        return fail(reterr_msg, -EINVAL,
                    "notebookPath cannot be combined with applicationType JAVA or SCALA");
    if (serverless)
        return fail(reterr_msg, -EINVAL,
                    "applicationType JAVA or SCALA needs classic compute: serverless compute runs "
                    "no JAR tasks (spark_jar_task); give existing_cluster_id or new_cluster in "
                    "databricksConf");
    main_class = jvm_string(in->custom, "mainClass", reterr_msg);
    if (!main_class)
        return -EINVAL;
    jar = jvm_string(in->custom, "mainApplicationFile", reterr_msg);
    if (!jar)
        return -EINVAL;
    if (strncmp(jar, "local://", 8) == 0)
        return fail(reterr_msg, -EINVAL,
                    "mainApplicationFile '%.200s' names a file inside the container image, which "
                    "Databricks cannot read; give the jar's dbfs:/, /Volumes/, /Workspace/ or "
                    "cloud storage URI",
                    jar);
    r = configure_classic(job, in, envs, reterr_msg);
    if (r < 0)
        return r;
    r = add_jar_library(job, jar, reterr_msg);
    if (r < 0)
        return r;
    task = cJSON_CreateObject();
    if (!task || set_string(task, "main_class_name", main_class) < 0 ||
        set(task, "parameters", build_args(in)) < 0) {
        cJSON_Delete(task);
        return fail_oom(reterr_msg);
    }
    /* python_file is this connector's knob for Python tasks; a jar task has no use for it. */
    cJSON_DeleteItemFromObjectCaseSensitive(job, "python_file");
    if (set(job, "spark_jar_task", task) < 0)
        return fail_oom(reterr_msg);
    return 0;
}

int spec_build(const struct spec_input *input, cJSON **ret_body, char **reterr_msg)
{
    const cJSON *conf;
    cJSON *job = NULL, *envs = NULL;
    bool serverless;
    int r;

    if (!input || !ret_body || !input->entrypoint)
        return fail(reterr_msg, -EINVAL, "no task input given");
    conf = cJSON_IsObject(input->custom) ? get(input->custom, "databricksConf") : NULL;
    if (!conf)
        return fail(reterr_msg, -EINVAL, "missing databricksConf in the task's custom config");
    if (!cJSON_IsObject(conf))
        return fail(reterr_msg, -EINVAL, "databricksConf must be a JSON object");

    job = cJSON_Duplicate(conf, true);
    if (!job) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    r = build_envs(input, &envs);
    if (r < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    serverless = is_serverless(job);

    if (is_jvm(input->custom))
        r = build_jar(job, input, envs, serverless, reterr_msg);
    else if (truthy(get(input->custom, "notebookPath")))
        r = build_notebook(job, input, envs, serverless, reterr_msg);
    else
        r = build_python(job, input, envs, serverless, reterr_msg);
    if (r < 0)
        goto out;

    /* Not in flytekit: Databricks returns the first run for a repeated token, which makes a
     * retried CreateTask safe. Ours replaces any token the user wrote. */
    if (input->idempotency_token &&
        set_string(job, "idempotency_token", input->idempotency_token) < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    *ret_body = job;
    job = NULL;
    r = 0;
out:
    cJSON_Delete(envs);
    cJSON_Delete(job);
    return r;
}

int spec_instance(const cJSON *custom, const char **ret_instance, char **reterr_msg)
{
    const cJSON *item = cJSON_IsObject(custom) ? get(custom, "databricksInstance") : NULL;

    /* Present but unusable is refused rather than read as absent: a task that names a
     * workspace must never run on the default one instead. */
    if (item && !cJSON_IsString(item))
        return fail(reterr_msg, -EINVAL,
                    "databricksInstance must be a non-empty string (a workspace host name), got %s",
                    structjson_type_name(item));
    if (item && (!item->valuestring || !item->valuestring[0]))
        return fail(reterr_msg, -EINVAL,
                    "databricksInstance must be a non-empty string (a workspace host name), "
                    "got \"\"; leave it out to use the connector's default instance");
    *ret_instance = item ? item->valuestring : NULL;
    return 0;
}

/* One Container's fields, whichever generation's message carries them: env entries come
 * through env_at(). */
struct container_fields {
    const char *image;
    char **args;
    size_t n_args;
    size_t n_env;
    const void *env; /* the message's env array */
    void (*env_at)(const void *env, size_t i, struct spec_env_var *ret);
};

static int set_container(const struct container_fields *c, struct spec_input *input,
                         struct spec_env_var **ret_env)
{
    struct spec_env_var *env = NULL;

    if (c && c->n_env > 0) {
        env = calloc(c->n_env, sizeof(*env));
        if (!env)
            return -ENOMEM;
        for (size_t i = 0; i < c->n_env; i++)
            c->env_at(c->env, i, &env[i]);
    }
    input->image = c ? c->image : NULL;
    input->args = c ? (const char *const *)c->args : NULL;
    input->args_count = c ? c->n_args : 0;
    input->env = env;
    input->env_count = env ? c->n_env : 0;
    *ret_env = env;
    return 0;
}

static void env_at1(const void *env, size_t i, struct spec_env_var *ret)
{
    const Flyteidl__Core__KeyValuePair *kv = ((Flyteidl__Core__KeyValuePair *const *)env)[i];

    *ret = (struct spec_env_var){kv->key, kv->value};
}

static void env_at2(const void *env, size_t i, struct spec_env_var *ret)
{
    const Flyteidl2__Core__KeyValuePair *kv = ((Flyteidl2__Core__KeyValuePair *const *)env)[i];

    *ret = (struct spec_env_var){kv->key, kv->value};
}

int spec_input_from_template(const Flyteidl__Core__TaskTemplate *template_,
                             struct spec_input *input, struct spec_env_var **ret_env)
{
    const Flyteidl__Core__Container *c = NULL;
    struct container_fields fields;

    if (template_->target_case == FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER)
        c = template_->container;
    if (c)
        fields = (struct container_fields){c->image, c->args, c->n_args, c->n_env, c->env, env_at1};
    return set_container(c ? &fields : NULL, input, ret_env);
}

int spec_input_from_template2(const Flyteidl2__Core__TaskTemplate *template_,
                              struct spec_input *input, struct spec_env_var **ret_env)
{
    const Flyteidl2__Core__Container *c = NULL;
    struct container_fields fields;

    if (template_->target_case == FLYTEIDL2__CORE__TASK_TEMPLATE__TARGET_CONTAINER)
        c = template_->container;
    if (c)
        fields = (struct container_fields){c->image, c->args, c->n_args, c->n_env, c->env, env_at2};
    return set_container(c ? &fields : NULL, input, ret_env);
}
