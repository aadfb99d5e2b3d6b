/*
 * spec.h - builds the Databricks runs/submit body for a Flyte Databricks task.
 *
 * The body is exactly what the task's own connector submits for the same task: flytekit's for
 * Flyte 1 (_get_databricks_job_spec in flyteorg/flytekit
 * plugins/flytekit-spark/flytekitplugins/spark/connector.py), flyte-sdk's for Flyte 2 (the same
 * function in flyteorg/flyte-sdk plugins/databricks/src/flyteplugins/databricks/connector.py),
 * which differ only in the entrypoint the run executes (config_entrypoint()); plus an
 * idempotency_token when the caller gives one. One addition: a JVM Spark application
 * (custom.applicationType JAVA or SCALA, as flytekit's generic Spark task and flyteidl's
 * plugins/spark.proto SparkJob write it) becomes a spark_jar_task (main_class_name from
 * custom.mainClass, parameters from the container's args) with the jar of
 * custom.mainApplicationFile in `libraries`, on the same classic compute; serverless runs no JAR
 * tasks and is refused. Input the Python code would crash on comes back as an error naming the
 * key instead.
 *
 * Pure: no global state, any thread; inputs are only read.
 */
#ifndef FDC_SPEC_H
#define FDC_SPEC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "flyteidl/core/tasks.pb-c.h"
#include "flyteidl2/core/tasks.pb-c.h"

/* One container environment variable. Both strings borrowed; NULL reads as "". */
struct spec_env_var {
    const char *name;
    const char *value;
};

/* Everything the body is built from. Every pointer borrows from the caller for the duration of
 * spec_build(); nothing is kept. */
struct spec_input {
    const cJSON *custom;     /* TaskTemplate.custom as JSON (structjson_to_cjson()) */
    const char *image;       /* container.image; NULL when the task has no container */
    const char *const *args; /* container.args, args_count entries (NULL entries read "") */
    size_t args_count;
    const struct spec_env_var *env; /* container.env in order; a later name wins */
    size_t env_count;
    const char *default_credential_provider; /* used when custom has no
                                                databricksServiceCredentialProvider; NULL: none */
    const char *idempotency_token;           /* added as top-level idempotency_token; NULL: none */
    const struct config_entrypoint *entrypoint; /* the task's generation's defaults; required */
};

/*
 * Builds the runs/submit body from custom["databricksConf"], the container and the
 * entrypoint. Gives the body in
 * *ret_body (free with cJSON_Delete()); print it with structjson_print() so whole numbers stay
 * integers. On failure returns -EINVAL (bad task config) or -ENOMEM and gives *reterr_msg (free
 * with free(); may be left NULL when even that allocation fails; reterr_msg may be NULL).
 * Messages: "missing databricksConf ...", "Either existing_cluster_id, new_cluster,
 * environment_key, or environments must be specified ...", "... no serverless entrypoint ..."
 * (serverless compute for a generation without one, when the task names no python_file),
 * "applicationType JAVA or SCALA needs classic compute ...", or "<key> must be ..." naming the
 * key. A task with no container (image NULL) fails only where flytekit needs the image (a
 * new_cluster without docker_image).
 */
int spec_build(const struct spec_input *input, cJSON **ret_body, char **reterr_msg);

/*
 * Sets the container fields of *input (image, args, env) from template_'s container, or to "no
 * container" when the template's target is something else; the other fields are left alone. The
 * strings borrow from template_ (valid while it lives). The env array is allocated: gives
 * *ret_env (free(); NULL when there is no env), which input->env then points to. Returns 0, or
 * -ENOMEM (then *input and *ret_env are untouched).
 */
int spec_input_from_template(const Flyteidl__Core__TaskTemplate *template_,
                             struct spec_input *input, struct spec_env_var **ret_env);

/* The same for a Flyte 2 (flyteidl2.core) TaskTemplate, whose Container has the same fields. */
int spec_input_from_template2(const Flyteidl2__Core__TaskTemplate *template_,
                              struct spec_input *input, struct spec_env_var **ret_env);

/* The workspace a task names: sets *ret_instance to custom["databricksInstance"] (borrows;
 * valid while custom lives) when it is a non-empty string, to NULL when it is absent (custom
 * NULL or not an object included), and returns 0. Returns -EINVAL and gives *reterr_msg
 * (free(); NULL on OOM) when it is present but not a non-empty string: null, a number, "",
 * an object... */
int spec_instance(const cJSON *custom, const char **ret_instance, char **reterr_msg);

#endif
