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

/* flytekit constants (connector.py and flytekit/core/constants.py). */
#define FAIL_ON_ERROR_ENV "FLYTE_FAIL_ON_ERROR"
#define DEFAULT_GIT_URL "https://github.com/flyteorg/flytetools"
#define DEFAULT_GIT_PROVIDER "gitHub"
#define DEFAULT_GIT_COMMIT "572298df1f971fb58c258398bd70a6372f811c96"
#define CLASSIC_PYTHON_FILE "flytekitplugins/databricks/entrypoint.py"
#define SERVERLESS_PYTHON_FILE "flytekitplugins/databricks/entrypoint_serverless.py"
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

/* flytekit: envs = container.env as a dict, then envs["FLYTE_FAIL_ON_ERROR"] = "true". */
static int build_envs(const struct spec_input *in, cJSON **ret)
{
    cJSON *envs = cJSON_CreateObject();
    int r = envs ? 0 : -ENOMEM;

    for (size_t i = 0; r >= 0 && i < in->env_count; i++) {
        const char *name = in->env[i].name ? in->env[i].name : "";
        r = set_string(envs, name, in->env[i].value ? in->env[i].value : "");
    }
    if (r >= 0)
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

static cJSON *default_git_source(void)
{
    cJSON *g = cJSON_CreateObject();

    if (g && (!cJSON_AddStringToObject(g, "git_url", DEFAULT_GIT_URL) ||
              !cJSON_AddStringToObject(g, "git_provider", DEFAULT_GIT_PROVIDER) ||
              !cJSON_AddStringToObject(g, "git_commit", DEFAULT_GIT_COMMIT))) {
        cJSON_Delete(g);
        g = NULL;
    }
    return g;
}

/* _is_serverless_config: cluster keys count when present at all, even empty or null;
 * serverless keys only when truthy. */
static bool is_serverless(const cJSON *job)
{
    bool has_cluster = get(job, "existing_cluster_id") || get(job, "new_cluster");
    bool has_serverless = truthy(get(job, "environment_key")) || truthy(get(job, "environments"));

    return !has_cluster && has_serverless;
}

/* _configure_classic_cluster. */
static int configure_classic(cJSON *job, const struct spec_input *in, const cJSON *envs,
                             char **reterr_msg)
{
    const cJSON *existing = get(job, "existing_cluster_id");
    cJSON *cluster = cJSON_GetObjectItemCaseSensitive(job, "new_cluster");
    cJSON *image = NULL, *env_vars;
    const cJSON *spark_conf;
    int r;

    if (existing && !cJSON_IsNull(existing))
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

/* The notebook branch of _get_databricks_job_spec. */
static int build_notebook(cJSON *job, const struct spec_input *in, const cJSON *envs,
                          bool serverless, char **reterr_msg)
{
    const cJSON *base_parameters = get(in->custom, "notebookBaseParameters");
    bool from_git = truthy(get(job, "git_source"));
    cJSON *task = NULL, *key = NULL;
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

    if (serverless) {
        r = configure_serverless(job, envs, &key, reterr_msg);
        if (r < 0)
            goto out;
        r = set_single_task(job, NOTEBOOK_TASK_KEY, "notebook_task", task, key);
        task = key = NULL;
    } else {
        r = configure_classic(job, in, envs, reterr_msg);
        if (r < 0)
            goto out;
        r = set(job, "notebook_task", task);
        task = NULL;
    }
    if (r < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }
    /* flytekit pops git_source and puts it back only when truthy. */
    if (!from_git)
        cJSON_DeleteItemFromObjectCaseSensitive(job, "git_source");
    r = 0;
out:
    cJSON_Delete(task);
    cJSON_Delete(key);
    return r;
}

/* The user's python_file when truthy, else flytekit's entrypoint for the compute mode. */
static cJSON *python_file(const cJSON *user_file, bool serverless)
{
    if (truthy(user_file))
        return cJSON_Duplicate(user_file, true);
    return cJSON_CreateString(serverless ? SERVERLESS_PYTHON_FILE : CLASSIC_PYTHON_FILE);
}

/* The python-file branch of _get_databricks_job_spec. */
static int build_python(cJSON *job, const struct spec_input *in, const cJSON *envs, bool serverless,
                        char **reterr_msg)
{
    const cJSON *user_git = get(job, "git_source");
    const cJSON *user_file = get(job, "python_file");
    cJSON *git_source = NULL, *task = NULL, *key = NULL;
    char *credential = NULL;
    int r;

    git_source = truthy(user_git) ? cJSON_Duplicate(user_git, true) : default_git_source();
    task = cJSON_CreateObject();
    if (!git_source || !task || set(task, "python_file", python_file(user_file, serverless)) < 0 ||
        set_string(task, "source", "GIT") < 0 || set(task, "parameters", build_args(in)) < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }

    if (serverless) {
        r = configure_serverless(job, envs, &key, reterr_msg);
        if (r < 0)
            goto out;
        /* Appended last: pyflyte-fast-execute must stay the first argument (flytekit). */
        r = credential_arg(in, &credential, reterr_msg);
        if (r < 0)
            goto out;
        if (credential &&
            !cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(task, "parameters"),
                                  cJSON_CreateString(credential))) {
            r = fail_oom(reterr_msg);
            goto out;
        }
        r = set_single_task(job, PYTHON_TASK_KEY, "spark_python_task", task, key);
        task = key = NULL;
    } else {
        r = configure_classic(job, in, envs, reterr_msg);
        if (r < 0)
            goto out;
        r = set(job, "spark_python_task", task);
        task = NULL;
    }
    if (r < 0) {
        r = fail_oom(reterr_msg);
        goto out;
    }

    /* user_git and user_file die here; they were copied above. */
    cJSON_DeleteItemFromObjectCaseSensitive(job, "python_file");
    r = set(job, "git_source", git_source);
    git_source = NULL;
    if (r < 0)
        r = fail_oom(reterr_msg);
out:
    free(credential);
    cJSON_Delete(git_source);
    cJSON_Delete(task);
    cJSON_Delete(key);
    return r;
}

int spec_build(const struct spec_input *input, cJSON **ret_body, char **reterr_msg)
{
    const cJSON *conf;
    cJSON *job = NULL, *envs = NULL;
    bool serverless;
    int r;

    if (!input || !ret_body)
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

    if (truthy(get(input->custom, "notebookPath")))
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

int spec_input_from_template(const Flyteidl__Core__TaskTemplate *template_,
                             struct spec_input *input, struct spec_env_var **ret_env)
{
    const Flyteidl__Core__Container *container = NULL;
    struct spec_env_var *env = NULL;

    if (template_->target_case == FLYTEIDL__CORE__TASK_TEMPLATE__TARGET_CONTAINER)
        container = template_->container;
    if (container && container->n_env > 0) {
        env = calloc(container->n_env, sizeof(*env));
        if (!env)
            return -ENOMEM;
        for (size_t i = 0; i < container->n_env; i++) {
            env[i].name = container->env[i]->key;
            env[i].value = container->env[i]->value;
        }
    }
    input->image = container ? container->image : NULL;
    input->args = container ? (const char *const *)container->args : NULL;
    input->args_count = container ? container->n_args : 0;
    input->env = env;
    input->env_count = env ? container->n_env : 0;
    *ret_env = env;
    return 0;
}
