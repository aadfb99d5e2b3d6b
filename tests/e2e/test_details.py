"""What a Flyte user sees (issue 14): the Python exception of a failed run in the GetTask
message (runs/get-output, asked once per run, for the task run), the run's details in
custom_info, GetTaskLogs, JVM Spark applications, and the operator's log lines.

Expectations are written from the Jobs API shapes (runs/get tasks[], runs/get-output) and the
README, against the real binary and tests/fake/fake_databricks.py.
"""

import json
import os
import re

import grpc

from harness import (CREATE, GET, GET_LOGS, check, create_request, custom_config,
                     databricks_conf, eq, generations, resource_meta_of, wait_until)

# What a user sees is the same in both protocol generations; Flyte 1 only where noted.
GENERATIONS = (1, 2)

OUTPUT_PATH = "/api/2.1/jobs/runs/get-output"
TRACE = ("Traceback (most recent call last):\n"
         "  File \"/databricks/driver/job.py\", line 9, in <module>\n"
         "    main()\n"
         "  File \"/databricks/driver/job.py\", line 6, in main\n"
         "    raise ValueError(\"bad row 17\")\n"
         "ValueError: bad row 17\n")
FAILED_OUTPUT = {"error": "ValueError: bad row 17", "error_trace": TRACE,
                 "logs": "reading s3://b/in\nrow 17\n"}
FAILED_SCRIPT = [{"life_cycle_state": "RUNNING", "state_message": "In run"},
                 {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                  "state_message": "Workload failed, see run output for details"}]


def submit(env, custom=None):
    return env.create(create_request(env.pb, custom=custom or custom_config())).resource_meta


def poll_until_terminal(env, meta):
    terminal = {"SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED"}
    for _ in range(20):
        res = env.get(meta)
        if env.phase_name(res.phase) in terminal:
            return res
    raise AssertionError("run never finished")


def info(res):
    """custom_info as a dict."""
    from google.protobuf import json_format
    return json_format.MessageToDict(res.custom_info)


def output_requests(env):
    return env.fake.requests(OUTPUT_PATH)


# ---- the error where the user looks -----------------------------------------------------

def test_failed_run_message_has_the_exception(t):
    env = t.start()
    env.fake.script(FAILED_SCRIPT)
    env.fake.output(FAILED_OUTPUT)
    meta = submit(env)
    res = poll_until_terminal(env, meta)
    eq(env.phase_name(res.phase), "RETRYABLE_FAILED", "phase")
    lines = res.message.splitlines()
    eq(lines[0], "Workload failed, see run output for details", "state message first")
    eq(lines[1], "ValueError: bad row 17", "then the exception")
    check("    raise ValueError(\"bad row 17\")" in lines, "trace tail in %r" % res.message)
    eq(lines[-1], "ValueError: bad row 17", "innermost line last")
    check("reading s3://b/in" not in res.message, "logs are not in the message")
    if t.generation == 1:  # Flyte 2's Resource has no agent_error
        eq(res.agent_error.code, "RUN_EXECUTION_ERROR", "agent_error code")
    # Asked for the task run, not the run itself.
    run_id = resource_meta_of(env.pb.admin.CreateTaskResponse(resource_meta=meta))["run_id"]
    reqs = output_requests(env)
    eq(len(reqs), 1, "runs/get-output requests")
    eq(reqs[0]["query"]["run_id"], [str(int(run_id) * 100 + 1)], "task run id asked")


def test_get_output_asked_once_across_many_gets(t):
    env = t.start()
    env.fake.script(FAILED_SCRIPT)
    env.fake.output(FAILED_OUTPUT)
    meta = submit(env)
    first = poll_until_terminal(env, meta)
    replies = env.concurrent_gets([meta], 16)
    before = len(env.fake.requests("/runs/get"))
    for _ in range(5):
        replies.append(env.call(GET, env.get_request(meta), env.pb.admin.GetTaskResponse))
    for reply in replies:
        eq(reply.code, grpc.StatusCode.OK, "status")
        eq(reply.msg.resource.message, first.message, "the same message every time")
    eq(len(output_requests(env)), 1, "runs/get-output asked once for a finished run")
    eq(len(env.fake.requests("/runs/get")) - before, 5, "each later GetTask still read runs/get")


def test_get_output_failure_answers_the_state_message_alone(t):
    env = t.start()
    env.fake.script(FAILED_SCRIPT)
    env.fake.inject("GET", OUTPUT_PATH, [{"http_status": 403, "body": {
        "error_code": "PERMISSION_DENIED", "message": "no access to the output"}}])
    meta = submit(env)
    res = poll_until_terminal(env, meta)
    eq(env.phase_name(res.phase), "RETRYABLE_FAILED", "phase")
    eq(res.message, "Workload failed, see run output for details", "message")
    # Not asked again: the outcome is kept.
    res = env.get(meta)
    eq(res.message, "Workload failed, see run output for details", "message again")
    eq(len(output_requests(env)), 1, "runs/get-output requests")
    # Transient trouble that outlasts the retries: the same, never an error.
    env2 = t.start()
    env2.fake.script(FAILED_SCRIPT)
    env2.fake.control("POST", "/fake/inject", {
        "method": "GET", "path": OUTPUT_PATH, "repeat": True,
        "answers": [{"http_status": 503, "body": {"error_code": "TEMPORARILY_UNAVAILABLE",
                                                  "message": "try later"}}]})
    meta2 = submit(env2)
    res = env2.get(meta2)
    reply = env2.call(GET, env2.get_request(meta2), env2.pb.admin.GetTaskResponse, timeout=3)
    eq(reply.code, grpc.StatusCode.OK, "GetTask status when runs/get-output keeps failing")
    eq(reply.msg.resource.message, "Workload failed, see run output for details", "message")


def test_large_output_still_gives_the_exception(t):
    # Databricks returns up to 5 MB of logs with the error; a small max_response_bytes must
    # not lose the exception.
    path = os.path.join(t.dir, "config.json")
    with open(path, "w") as f:
        json.dump({"max_response_bytes": 4096}, f)
    env = t.start(args=["--config", path])
    env.fake.script(FAILED_SCRIPT)
    env.fake.output(dict(FAILED_OUTPUT, logs="x" * 200 + "\n" * 1 + "log line\n" * 20000))
    res = poll_until_terminal(env, submit(env))
    check("ValueError: bad row 17" in res.message, "the exception: %r" % res.message)


def test_succeeded_python_run_asks_no_output(t):
    env = t.start()
    meta = submit(env)
    res = poll_until_terminal(env, meta)
    eq(env.phase_name(res.phase), "SUCCEEDED", "phase")
    eq(output_requests(env), [], "runs/get-output requests for a Python run that succeeded")


# ---- custom_info --------------------------------------------------------------------------

def test_custom_info_fields(t):
    env = t.start()
    env.fake.script([
        {"life_cycle_state": "RUNNING", "state_message": "In run"},
        {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": "",
         "extra": {"start_time": 1700000000000, "end_time": 1700000062500,
                   "setup_duration": 12000, "execution_duration": 50000,
                   "cleanup_duration": 500, "run_duration": 62500}}])
    meta = submit(env)
    run_id = json.loads(meta)["run_id"]
    running = info(env.get(meta))
    eq(running["run_id"], run_id, "run_id")
    eq(running["state"], "RUNNING", "state while running")
    check("end_time" not in running, "no end time while running: %r" % running)
    done = env.get(meta)
    d = info(done)
    expected = {
        "job_id": str(700000 + int(run_id) - 1000), "run_id": run_id,
        "run_name": "flytekit databricks plugin example", "state": "TERMINATED",
        "result_state": "SUCCESS", "termination_code": "SUCCESS", "termination_type": "SUCCESS",
        "cluster_id": "0101-000000-fake%s" % run_id, "spark_context_id": "55500%s" % run_id,
        "start_time": "2023-11-14T22:13:20.000Z", "end_time": "2023-11-14T22:14:22.500Z",
        "setup_duration_s": 12.0, "execution_duration_s": 50.0, "cleanup_duration_s": 0.5,
        "run_duration_s": 62.5,
    }
    for key, value in expected.items():
        eq(d.get(key), value, "custom_info[%s]" % key)
    check(d["run_page_url"].startswith("https://%s/" % env.fake.address), "run_page_url")
    eq(done.log_links[0].uri, d["run_page_url"], "the same link as the log link")


def test_notebook_exit_value_in_custom_info(t):
    env = t.start()
    env.fake.output({"notebook_output": {"result": "42 rows written", "truncated": False}})
    meta = submit(env, custom_config(notebookPath="/Users/a/etl"))
    res = poll_until_terminal(env, meta)
    eq(env.phase_name(res.phase), "SUCCEEDED", "phase")
    eq(info(res).get("notebook_result"), "42 rows written", "notebook_result")
    eq(len(output_requests(env)), 1, "runs/get-output requests")
    # Later answers (from memory for the output) keep it.
    eq(info(env.get(meta)).get("notebook_result"), "42 rows written", "notebook_result again")
    eq(len(output_requests(env)), 1, "runs/get-output requests after another GetTask")


# ---- multi-task runs ----------------------------------------------------------------------

def test_multi_task_run_shows_the_failed_task(t):
    env = t.start()
    conf = databricks_conf(new_cluster=None, existing_cluster_id="0101-abc", tasks=[
        {"task_key": "extract", "spark_python_task": {"python_file": "x.py"},
         "existing_cluster_id": "0101-abc"},
        {"task_key": "load", "notebook_task": {"notebook_path": "/l"},
         "existing_cluster_id": "0101-abc", "depends_on": [{"task_key": "extract"}]}])
    env.fake.script([
        {"life_cycle_state": "RUNNING", "state_message": "In run",
         "tasks": {"extract": {"life_cycle_state": "RUNNING"},
                   "load": {"life_cycle_state": "PENDING"}}},
        {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
         "state_message": "Workload failed",
         "tasks": {"extract": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
                   "load": {"life_cycle_state": "TERMINATED",
                            "result_state": "UPSTREAM_FAILED"}}}])
    meta = submit(env, custom_config(conf=conf))
    run_id = int(json.loads(meta)["run_id"])
    env.fake.output(FAILED_OUTPUT, run_id=run_id, task_key="extract")
    env.fake.output({"error": "load never ran"}, run_id=run_id, task_key="load")
    running = info(env.get(meta))
    eq([(x["task_key"], x["state"]) for x in running["tasks"]],
       [("extract", "RUNNING"), ("load", "PENDING")], "tasks while running")
    res = env.get(meta)
    eq(env.phase_name(res.phase), "RETRYABLE_FAILED", "phase")
    check("ValueError: bad row 17" in res.message, "the failed task's exception: %r" % res.message)
    check("load never ran" not in res.message, "not the upstream-failed task's")
    tasks = info(res)["tasks"]
    eq([(x["task_key"], x["run_id"], x["result_state"]) for x in tasks],
       [("extract", str(run_id * 100 + 1), "FAILED"),
        ("load", str(run_id * 100 + 2), "UPSTREAM_FAILED")], "tasks when over")
    asked = [r["query"]["run_id"][0] for r in output_requests(env)]
    eq(asked, [str(run_id * 100 + 1)], "runs/get-output asked for the failed task only")
    lines = logs_of(env, meta)
    check("ValueError: bad row 17" in lines and "row 17" in lines, "logs of the failed task")


# ---- GetTaskLogs ----------------------------------------------------------------------------

def logs_request(env, meta, lines=0, token=""):
    req = env.pb.admin.GetTaskLogsRequest(resource_meta=meta, lines=lines, token=token)
    req.task_category.name = "spark"
    return req


def logs_call(env, meta, lines=0, token=""):
    reply = env.call_stream(GET_LOGS, logs_request(env, meta, lines, token).SerializeToString())
    if reply.code != grpc.StatusCode.OK:
        return reply.code, reply.details, None, None
    msgs = [env.pb.admin.GetTaskLogsResponse.FromString(m) for m in reply.msg]
    check(msgs and msgs[0].WhichOneof("part") == "header", "header first: %r" % msgs)
    check(all(m.WhichOneof("part") == "body" for m in msgs[1:]), "then bodies")
    lines_out = [line for m in msgs[1:] for line in m.body.results]
    if env.test.generation == 2:
        # Flyte 2's body carries each line again as a structured line, from the task (USER).
        structured = [line for m in msgs[1:] for line in m.body.lines]
        eq([line.message for line in structured], lines_out, "structured lines")
        check(all(line.originator == 1 for line in structured), "originator USER")
    return reply.code, "", msgs[0].header.token, lines_out


def logs_of(env, meta):
    code, details, token, lines = logs_call(env, meta)
    eq(code, grpc.StatusCode.OK, "GetTaskLogs status (%s)" % details)
    eq(token, "", "no more pages")
    return lines


def test_get_task_logs_pages_lines_and_tokens(t):
    env = t.start()
    env.fake.script(FAILED_SCRIPT)
    env.fake.output(FAILED_OUTPUT)
    meta = submit(env)
    poll_until_terminal(env, meta)
    everything = ["reading s3://b/in", "row 17", "ValueError: bad row 17"] + \
        TRACE.rstrip("\n").split("\n")
    eq(logs_of(env, meta), everything, "logs, then error, then error_trace")
    # Pages of 3 lines, each header's token naming the next page.
    got, token, pages = [], "", 0
    while True:
        code, details, token, lines = logs_call(env, meta, lines=3, token=token)
        eq(code, grpc.StatusCode.OK, "status (%s)" % details)
        got += lines
        pages += 1
        check(len(lines) <= 3, "at most `lines` lines")
        if not token:
            break
    eq(got, everything, "every line once, in order, across pages")
    eq(pages, (len(everything) + 2) // 3, "pages")
    # A token from the middle.
    code, _, token, lines = logs_call(env, meta, lines=2, token="4")
    eq(lines, everything[4:6], "lines from token 4")
    eq(token, "6", "next token")
    # Past the end: an empty page.
    code, _, token, lines = logs_call(env, meta, token="1000")
    eq((code, token, lines), (grpc.StatusCode.OK, "", []), "past the end")


def test_get_task_logs_empty_and_refusals(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}])
    meta = submit(env)
    # No output yet: a header, nothing else, not an error.
    code, details, token, lines = logs_call(env, meta)
    eq((code, token, lines), (grpc.StatusCode.OK, "", []), "empty stream (%s)" % details)
    # Databricks refusing the output of a task run that has not started: empty too.
    env.fake.inject("GET", OUTPUT_PATH, [{"http_status": 400, "body": {
        "error_code": "INVALID_STATE", "message": "Run is not yet started"}}])
    code, details, token, lines = logs_call(env, meta)
    eq((code, token, lines), (grpc.StatusCode.OK, "", []), "refused output (%s)" % details)
    # A token we never gave: refused before Databricks hears of it.
    before = len(env.fake.requests())
    code, details, _, _ = logs_call(env, meta, token="abc")
    eq(code, grpc.StatusCode.INVALID_ARGUMENT, "bad token")
    check("token" in details, "message names the token: %r" % details)
    eq(len(env.fake.requests()), before, "no request for a bad token")
    # A run that does not exist.
    gone = json.dumps({"databricks_instance": env.fake.address, "run_id": "424242"}).encode()
    code, details, _, _ = logs_call(env, gone)
    eq(code, grpc.StatusCode.NOT_FOUND, "unknown run")
    check("424242" in details, "message names the run: %r" % details)
    # Garbage and an unserved task type.
    reply = env.call_stream(GET_LOGS, b"\x0a\x64abc")
    eq(reply.code, grpc.StatusCode.INVALID_ARGUMENT, "garbage request")
    req = logs_request(env, meta)
    req.task_category.name = "sagemaker"
    eq(env.call_stream(GET_LOGS, req.SerializeToString()).code, grpc.StatusCode.NOT_FOUND,
       "other task type")


def test_get_task_logs_many_lines_come_in_several_bodies(t):
    env = t.start()
    logs = "".join("line %05d %s\n" % (i, "x" * 200) for i in range(3000))
    env.fake.output({"logs": logs})
    meta = submit(env)
    poll_until_terminal(env, meta)
    reply = env.call_stream(GET_LOGS, logs_request(env, meta).SerializeToString())
    eq(reply.code, grpc.StatusCode.OK, "status")
    msgs = [env.pb.admin.GetTaskLogsResponse.FromString(m) for m in reply.msg]
    bodies = [m.body.results for m in msgs[1:]]
    check(len(bodies) > 1, "several body messages for 3000 lines")
    eq([line[:10] for body in bodies for line in body], ["line %05d" % i for i in range(3000)],
       "every line once, in order")


# ---- JVM Spark applications -----------------------------------------------------------------

def jvm_custom(**conf):
    custom = custom_config(conf=databricks_conf(**conf))
    custom.update(applicationType="SCALA", mainClass="com.acme.Etl",
                  mainApplicationFile="dbfs:/jars/etl.jar")
    return custom


@generations(1)
def test_jvm_application_submits_a_jar_task(t):
    env = t.start()
    meta = submit(env, jvm_custom())
    eq(env.phase_name(env.get(meta).phase), "INITIALIZING", "the run goes")
    body = env.fake.requests("/runs/submit")[0]["body"]
    eq(body["spark_jar_task"]["main_class_name"], "com.acme.Etl", "main class")
    eq(body["spark_jar_task"]["parameters"], list(create_request(env.pb).template.container.args),
       "parameters: the container's args")
    eq(body["libraries"], [{"jar": "dbfs:/jars/etl.jar"}], "the jar as a library")
    check("spark_python_task" not in body and "git_source" not in body, "no Python entrypoint")
    eq(body["new_cluster"]["spark_conf"], custom_config()["sparkConf"], "Spark conf as for Python")
    eq(body["new_cluster"]["spark_env_vars"]["FLYTE_FAIL_ON_ERROR"], "true", "env as for Python")


@generations(1)
def test_jvm_application_on_serverless_is_refused(t):
    env = t.start()
    custom = jvm_custom(new_cluster=None, environment_key="default")
    reply = env.fails(CREATE, create_request(env.pb, custom=custom),
                      grpc.StatusCode.INVALID_ARGUMENT)
    check("serverless compute runs no JAR tasks" in reply.details, "message: %r" % reply.details)
    eq(env.fake.requests("/runs/submit"), [], "nothing submitted")


# ---- the operator's log lines ---------------------------------------------------------------

def call_lines(daemon, operation):
    """The "call done" lines of one operation, in key=value form in both log-format passes."""
    return [line for line in daemon.log_lines()
            if 'msg="call done"' in line and "operation=%s " % operation in line]


@generations(1)
def test_get_task_logs_at_info_only_on_phase_change(t):
    env = t.start(args=["--log-level", "info"])
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"}] * 4 +
                    [{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}])
    meta = submit(env)
    phases = [env.phase_name(env.get(meta).phase) for _ in range(6)]
    eq(phases, ["RUNNING"] * 4 + ["SUCCEEDED"] * 2, "phases answered")
    # A call's line is written just after its answer: wait for the last one (a debug line at
    # debug level; here, a marker call that logs at info).
    env.delete(meta)
    wait_until(lambda: call_lines(env.daemon, "delete"), 10, "the DeleteTask line")
    lines = call_lines(env.daemon, "get")
    eq([re.search(r"phase=(\w+)", line).group(1) for line in lines], ["RUNNING", "SUCCEEDED"],
       "one info line per change, each with its phase")
    check(all("level=info" in line for line in lines), "at info")
    eq(len(call_lines(env.daemon, "create")), 1, "CreateTask logged at info")
    # A failure is always logged.
    env.call(GET, env.get_request({"databricks_instance": "evil.example.com", "run_id": "1"}),
             env.pb.admin.GetTaskResponse)
    check(any('msg="call failed"' in line and "level=warning" in line
              for line in env.daemon.log_lines()), "failure at warning")


@generations(1)
def test_get_task_repeats_are_debug_lines(t):
    env = t.start()  # the harness runs daemons at debug
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"}])
    meta = submit(env)
    for _ in range(3):
        env.get(meta)
    wait_until(lambda: len(call_lines(env.daemon, "get")) >= 3, 10, "three GetTask lines")
    levels = [re.search(r"level=(\w+)", line).group(1) for line in call_lines(env.daemon, "get")]
    eq(levels, ["info", "debug", "debug"], "first answer info, repeats debug")
