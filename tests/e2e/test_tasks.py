"""The task life cycle: CreateTask -> GetTask... -> DeleteTask against the fake.

Every test runs as Flyte 1 and as Flyte 2 ("_v2") unless it says otherwise: the two
protocols share the behaviour, and differ in the entrypoint a run executes and in what
Flyte 2's Resource carries (no agent_error)."""

import grpc

from harness import (ARGS, ENV, GET, IMAGE, SPARK_CONF, Failure, check, create_request,
                     custom_config, eq, generations, resource_meta_of)

GENERATIONS = (1, 2)
SUBMIT, RUNS_GET, CANCEL = "/runs/submit", "/runs/get", "/runs/cancel"
FLYTETOOLS = "github.com/flyteorg/flytetools"
# What each generation's own connector submits (flytekit's, flyte-sdk's): the entrypoint, its
# pinned commit, and whether FLYTE_FAIL_ON_ERROR=true is added to the run's environment.
ENTRYPOINTS = {
    1: ("flytekitplugins/databricks/entrypoint.py", "572298df1f971fb58c258398bd70a6372f811c96",
        True),
    2: ("flyteplugins/databricks/entrypoint.py", "194364210c47c49ce66c419e8fb68d6f9c06fd7e",
        False),
}


def create(t, env, **kw):
    """CreateTask with the default flytekit-shaped task; returns (resource_meta dict, bytes)."""
    kw.setdefault("custom", custom_config())
    resp = env.create(create_request(t.pb, **kw))
    return resource_meta_of(resp), resp.resource_meta


def phases(t, env, meta, n, **kw):
    out = []
    for _ in range(n):
        out.append(env.get(meta, **kw))
    return out


def names(t, env, resources):
    return [env.phase_name(r.phase) for r in resources]


def test_create_submits_flytekit_job(t):
    env = t.start()
    meta, raw = create(t, env)
    eq(meta, {"databricks_instance": env.fake.address, "run_id": "1000"}, "resource_meta")
    check(b"auth_token" not in raw and b"CANARY" not in raw, "resource_meta carries a token")
    submits = env.fake.requests(SUBMIT)
    eq(len(submits), 1, "runs/submit requests")
    req = submits[0]
    eq(req["method"], "POST", "submit method")
    eq(req["headers"].get("authorization"), "Bearer " + env.token, "Authorization header")
    body = req["body"]
    check(isinstance(body, dict), "submit body is not JSON: %r" % body)
    cluster = body.get("new_cluster") or {}
    eq(cluster.get("docker_image", {}).get("url"), IMAGE, "new_cluster.docker_image.url")
    eq(cluster.get("spark_version"), "13.3.x-scala2.12", "new_cluster.spark_version")
    eq(cluster.get("num_workers"), 2, "new_cluster.num_workers")
    eq(cluster.get("spark_conf"), SPARK_CONF, "new_cluster.spark_conf (from sparkConf)")
    python_file, commit, fail_on_error = ENTRYPOINTS[t.generation]
    env_vars = cluster.get("spark_env_vars") or {}
    eq(env_vars.get("FLYTE_FAIL_ON_ERROR"), "true" if fail_on_error else None,
       "spark_env_vars.FLYTE_FAIL_ON_ERROR")
    for key, value in ENV:
        eq(env_vars.get(key), value, "spark_env_vars.%s" % key)
    eq(len(env_vars), len(ENV) + fail_on_error, "spark_env_vars: %r" % env_vars)
    task = body.get("spark_python_task") or {}
    eq(task.get("python_file"), python_file, "python_file")
    eq(task.get("source"), "GIT", "spark_python_task.source")
    eq(task.get("parameters"), ARGS, "spark_python_task.parameters")
    git = body.get("git_source") or {}
    check(FLYTETOOLS in git.get("git_url", ""), "git_source.git_url: %r" % git)
    eq(git.get("git_provider"), "gitHub", "git_source.git_provider")
    eq(git.get("git_commit"), commit, "git_source.git_commit")
    eq(body.get("run_name"), "flytekit databricks plugin example", "run_name")
    eq(body.get("timeout_seconds"), 3600, "timeout_seconds")
    token = body.get("idempotency_token")
    check(isinstance(token, str) and 0 < len(token) <= 64,
          "idempotency_token must be 1..64 chars: %r" % token)
    for key in ("databricksInstance", "sparkConf", "databricksConf", "auth_token"):
        check(key not in body, "submit body leaks the custom key %s" % key)
    eq(len(env.fake.runs()), 1, "runs on the fake")


def test_get_task_phases_and_log_link(t):
    env = t.start()
    meta, raw = create(t, env)
    got = phases(t, env, raw, 3)
    eq(names(t, env, got), ["INITIALIZING", "RUNNING", "SUCCEEDED"], "phases")
    url = env.fake.run(1000)["run_page_url"]
    for r in got:
        check(len(r.log_links) >= 1, "no log links in %s" % r)
        eq((r.log_links[0].name, r.log_links[0].uri), ("Databricks Console", url), "log link")
    gets = env.fake.requests(RUNS_GET)
    eq(len(gets), 3, "runs/get requests")
    for g in gets:
        eq(g["query"].get("run_id"), ["1000"], "runs/get run_id")
        eq(g["headers"].get("authorization"), "Bearer " + env.token, "Authorization on get")
    # A terminal answer stays terminal.
    eq(env.phase_name(env.get(raw).phase), "SUCCEEDED", "phase after success")


@generations(1)  # Flyte 2 dropped the deprecated task_type
def test_get_task_deprecated_task_type(t):
    env = t.start()
    _, raw = create(t, env, task_type="databricks")
    r = env.get(raw, category=None, task_type="databricks")
    eq(env.phase_name(r.phase), "INITIALIZING", "phase via task_type databricks")
    r = env.get(raw, category=None, task_type="spark")
    eq(env.phase_name(r.phase), "RUNNING", "phase via task_type spark")
    r = env.get(raw, category="databricks")
    eq(env.phase_name(r.phase), "SUCCEEDED", "phase via category databricks")


def test_get_task_unknown_category(t):
    env = t.start()
    _, raw = create(t, env)
    reply = env.fails(GET, env.get_request(raw, category="nope"), grpc.StatusCode.NOT_FOUND)
    check("nope" in reply.details, "NOT_FOUND should name the category: %r" % reply.details)
    if t.generation == 1:
        env.fails(GET, env.get_request(raw, category=None, task_type="nope"),
                  grpc.StatusCode.NOT_FOUND)
    env.fails(GET, env.get_request(raw, category=None), grpc.StatusCode.NOT_FOUND)
    eq(env.fake.requests(RUNS_GET), [], "runs/get for an unknown category")


def test_failed_run_is_retryable_user_error(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": "boom: division by zero"}])
    _, raw = create(t, env)
    r = env.get(raw)
    eq(env.phase_name(r.phase), "RETRYABLE_FAILED", "phase of a FAILED run")
    check("boom: division by zero" in r.message, "message lacks the state message: %r" % r.message)
    if t.generation == 1:  # Flyte 2's Resource has no agent_error
        check(r.HasField("agent_error"), "no agent_error")
        eq(t.pb.execution.ExecutionError.ErrorKind.Name(r.agent_error.origin), "USER",
           "agent_error.origin")


def test_retryable_failed_phase_off_answers_failed(t):
    """Propellers before Flyte 1.16.0 do not know RETRYABLE_FAILED: the setting answers FAILED,
    with the same message, from a config file (so a reload can change it). Flyte 2's executor
    knows the phase: its answer is unchanged."""
    config = t.write_config({"retryable_failed_phase": False})
    env = t.start(args=["--config", config])
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": "boom: division by zero"}])
    _, raw = create(t, env)
    r = env.get(raw)
    eq(env.phase_name(r.phase), "FAILED" if t.generation == 1 else "RETRYABLE_FAILED",
       "phase of a FAILED run")
    check("boom: division by zero" in r.message, "message lacks the state message: %r" % r.message)


def test_failed_run_without_status_field(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": "old API boom", "status": None}])
    _, raw = create(t, env)
    r = env.get(raw)
    check(env.phase_name(r.phase) in ("RETRYABLE_FAILED", "FAILED"), "phase %s" % r.phase)
    check("old API boom" in r.message, "message: %r" % r.message)


def test_canceled_run_is_aborted(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
                      "state_message": "Run cancelled.", "user_cancelled_or_timedout": True}])
    _, raw = create(t, env)
    eq(env.phase_name(env.get(raw).phase), "ABORTED", "phase of a CANCELED run")
    # Databricks' docs give USER_CANCELED for a cancel by a user (the fake says CANCELED).
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
                      "state_message": "Run cancelled.",
                      "status": {"state": "TERMINATED", "termination_details": {
                          "code": "USER_CANCELED", "type": "SUCCESS",
                          "message": "Run cancelled."}}}], run_id=1000)
    eq(env.phase_name(env.get(raw).phase), "ABORTED", "phase with code USER_CANCELED")


def test_delete_cancels_run(t):
    env = t.start()
    _, raw = create(t, env)
    env.delete(raw)
    cancels = env.fake.requests(CANCEL)
    eq(len(cancels), 1, "runs/cancel requests")
    run_id = cancels[0]["body"].get("run_id") if isinstance(cancels[0]["body"], dict) else None
    check(run_id in (1000, "1000"), "runs/cancel body: %r" % cancels[0]["body"])
    t.transcript.append("note: runs/cancel run_id sent as %s" % type(run_id).__name__)
    eq(cancels[0]["headers"].get("authorization"), "Bearer " + env.token, "Authorization")
    eq(env.fake.run(1000)["cancels"], 1, "fake's cancel count")
    # The run then goes TERMINATING -> TERMINATED/CANCELED.
    got = names(t, env, phases(t, env, raw, 2))
    check(got[-1] == "ABORTED" and got[0] != "SUCCEEDED", "phases after cancel: %s" % got)


def test_delete_finished_run_ok(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}])
    _, raw = create(t, env)
    eq(env.phase_name(env.get(raw).phase), "SUCCEEDED", "phase")
    env.delete(raw)
    env.delete(raw)  # idempotent
    eq(env.phase_name(env.get(raw).phase), "SUCCEEDED", "phase after deleting a finished run")


def unknown_run(t, style):
    env = t.start()
    env.fake.config(missing_style=style)
    meta = {"databricks_instance": env.fake.address, "run_id": "4242"}
    r = env.get(meta)
    eq(env.phase_name(r.phase), "FAILED", "phase of a run Databricks does not know")
    check("4242" in r.message or "exist" in r.message.lower(),
          "message should say the run no longer exists: %r" % r.message)
    env.delete(meta)
    eq(len(env.fake.requests(RUNS_GET)), 1, "runs/get requests (a 4xx is not retried)")
    check(len(env.fake.requests(CANCEL)) <= 1, "runs/cancel retried on a 4xx")


def test_unknown_run_400(t):
    unknown_run(t, "400")


def test_unknown_run_404(t):
    unknown_run(t, "404")


def test_expired_run_404(t):
    env = t.start()
    _, raw = create(t, env)
    eq(env.phase_name(env.get(raw).phase), "INITIALIZING", "phase")
    env.fake.forget(1000, "404")
    r = env.get(raw)
    eq(env.phase_name(r.phase), "FAILED", "phase of an expired run")
    env.delete(raw)


def test_create_idempotent_same_attempt(t):
    env = t.start()
    meta1, _ = create(t, env)
    meta2, _ = create(t, env)
    eq(meta2, meta1, "resource_meta of a repeated CreateTask")
    eq(len(env.fake.runs()), 1, "runs on the fake")
    tokens = [r["body"].get("idempotency_token") for r in env.fake.requests(SUBMIT)]
    eq(len(tokens), 2, "submits")
    check(tokens[0] and tokens[0] == tokens[1], "idempotency tokens differ: %s" % tokens)


def test_create_new_attempt_new_run(t):
    env = t.start()
    meta1, _ = create(t, env, retry_attempt=0)
    meta2, _ = create(t, env, retry_attempt=1)
    meta3, _ = create(t, env, retry_attempt=0, node_id="n1")
    eq(len({meta1["run_id"], meta2["run_id"], meta3["run_id"]}), 3, "distinct runs")
    eq(len(env.fake.runs()), 3, "runs on the fake")
    tokens = [r["body"].get("idempotency_token") for r in env.fake.requests(SUBMIT)]
    eq(len(set(tokens)), 3, "distinct idempotency tokens")


def test_flytekit_resource_meta_with_auth_token(t):
    """flytekit >= 1.16.15 stores the run's token in resource_meta: the run's later calls use
    it (issue 12), so runs it started survive the switch under their own identity."""
    env = t.start()
    _, _ = create(t, env)
    t.secrets.append("dapi-flytekit-run-token")
    env.fake.config(tokens=[env.token, "dapi-flytekit-run-token"])
    meta = {"databricks_instance": env.fake.address, "run_id": "1000",
            "auth_token": "dapi-flytekit-run-token"}
    r = env.get(meta)
    eq(env.phase_name(r.phase), "INITIALIZING", "phase with a flytekit resource_meta")
    env.delete(meta)
    for req in env.fake.requests(RUNS_GET) + env.fake.requests(CANCEL):
        eq(req["headers"].get("authorization"), "Bearer dapi-flytekit-run-token", "token used")


def test_custom_instance_same_as_default(t):
    env = t.start()
    meta, _ = create(t, env, custom=custom_config(instance=env.fake.address))
    eq(meta["databricks_instance"], env.fake.address, "instance")
    eq(len(env.fake.requests(SUBMIT)), 1, "submits")


def test_existing_cluster(t):
    env = t.start()
    conf = {"run_name": "on existing", "existing_cluster_id": "0101-123456-abcdef"}
    create(t, env, custom=custom_config(conf=conf))
    body = env.fake.requests(SUBMIT)[0]["body"]
    eq(body.get("existing_cluster_id"), "0101-123456-abcdef", "existing_cluster_id")
    check("new_cluster" not in body, "new_cluster added to an existing-cluster job")
    eq((body.get("spark_python_task") or {}).get("parameters"), ARGS, "parameters")


@generations(1)  # Flyte 2 serverless: test_flyte2.py
def test_serverless(t):
    env = t.start()
    conf = {"run_name": "serverless", "environment_key": "default"}
    create(t, env, custom=custom_config(conf=conf))
    body = env.fake.requests(SUBMIT)[0]["body"]
    tasks = body.get("tasks")
    check(isinstance(tasks, list) and len(tasks) == 1, "tasks: %r" % tasks)
    eq(tasks[0].get("environment_key"), "default", "tasks[0].environment_key")
    check("spark_python_task" in tasks[0], "tasks[0] has no spark_python_task")
    envs = body.get("environments") or []
    check(any(e.get("environment_key") == "default" for e in envs), "environments: %r" % envs)
    spec_env = [e for e in envs if e.get("environment_key") == "default"][0].get("spec", {})
    eq(spec_env.get("environment_vars", {}).get("FLYTE_FAIL_ON_ERROR"), "true",
       "environment_vars.FLYTE_FAIL_ON_ERROR")
    check("new_cluster" not in body and "environment_key" not in body,
          "serverless body keeps classic or top-level keys: %s" % sorted(body))


def test_non_terminal_states_keep_polling(t):
    env = t.start()
    steps = [{"life_cycle_state": s} for s in ("QUEUED", "BLOCKED", "WAITING_FOR_RETRY",
                                                "TERMINATING")]
    env.fake.script(steps + [{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}])
    _, raw = create(t, env)
    got = names(t, env, phases(t, env, raw, len(steps) + 1))
    terminal = {"SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"}
    for state, phase in zip(steps, got):
        if phase in terminal:
            raise Failure("%s answered the terminal phase %s" % (state["life_cycle_state"], phase))
    eq(got[-1], "SUCCEEDED", "final phase")


def test_unknown_state_is_safe(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "SOMETHING_NEW", "state_message": "?",
                      "status": {"state": "SOMETHING_NEWER"}}])
    _, raw = create(t, env)
    r = env.get(raw)
    check(env.phase_name(r.phase) not in ("SUCCEEDED", "ABORTED"),
          "unknown state answered %s" % env.phase_name(r.phase))
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "SOMETHING_NEW"}],
                    run_id=1000)
    r = env.get(raw)
    check(env.phase_name(r.phase) not in ("SUCCEEDED", "ABORTED"),
          "unknown result answered %s" % env.phase_name(r.phase))


def test_allowed_instance_without_default(t):
    """No --instance: a task naming an --allowed-instance workspace runs there."""
    env = t.start(instance=False, args=lambda fake: ["--allowed-instance", "other.example.com",
                                                     "--allowed-instance", fake.address])
    meta, _ = create(t, env, custom=custom_config(instance=env.fake.address))
    eq(meta["databricks_instance"], env.fake.address, "instance")
    eq(env.phase_name(env.get(meta).phase), "INITIALIZING", "phase")
