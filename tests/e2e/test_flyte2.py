"""What only Flyte 2 has: the connection's token, the connector metadata service, the methods
not implemented yet, flyte-sdk's task shapes. The behaviour both generations share is tested
as both by test_tasks.py, test_errors.py, test_faults.py and test_robustness.py ("_v2")."""

import json
import threading

import grpc

from harness import (CREATE, GET, GET_CONNECTOR, GET_LOGS, GET_METRICS, LIST_CONNECTORS, check,
                     create_request, custom_config, databricks_conf, eq, resource_meta_of)

GENERATIONS = (2,)
SUBMIT, RUNS_GET, CANCEL = "/runs/submit", "/runs/get", "/runs/cancel"
CONNECTOR = ("Databricks Connector", [("spark", 0), ("databricks", 0)])


def authorizations(env, path):
    return [r["headers"].get("authorization") for r in env.fake.requests(path)]


def test_flyte2_connection_token_authorizes_its_call(t):
    """The executor's connection.secrets["databricks_token"] is the Authorization of the call
    that brings it, on create, get and delete; a call without one uses the connector's token.
    The fake accepts only the connection's token here, so the default one is refused."""
    own = "dapi-CONNECTION-" + "7f3a9c"
    t.secrets.append(own)
    env = t.start(fake_token=own)
    # flyte-sdk's task names the secret in custom.secrets; it must not reach the body.
    custom = custom_config(secrets={"databricks_token": "my-databricks-token"})
    resp = env.create(create_request(t.pb, custom=custom, task_type="databricks", token=own))
    meta = resource_meta_of(resp)
    eq(sorted(meta), ["databricks_instance", "run_id"], "resource_meta keys")
    check(own.encode() not in resp.resource_meta, "resource_meta carries the token")
    body = env.fake.requests(SUBMIT)[0]["body"]
    check("secrets" not in body and own not in json.dumps(body), "submit body: %r" % body)
    eq(authorizations(env, SUBMIT), ["Bearer " + own], "Authorization of runs/submit")

    r = env.get(resp.resource_meta, category="databricks", token=own)
    eq(env.phase_name(r.phase), "INITIALIZING", "phase read with the connection's token")
    env.delete(resp.resource_meta, category="databricks", token=own)
    eq(authorizations(env, RUNS_GET), ["Bearer " + own], "Authorization of runs/get")
    eq(authorizations(env, CANCEL), ["Bearer " + own], "Authorization of runs/cancel")

    # Without a connection: the connector's own token, which this workspace refuses.
    reply = env.fails(GET, env.get_request(resp.resource_meta), grpc.StatusCode.PERMISSION_DENIED)
    check("Invalid access token" in reply.details, "details: %r" % reply.details)
    eq(authorizations(env, RUNS_GET)[-1], "Bearer " + env.token, "Authorization without one")


def test_flyte2_unusable_connection_token_refused(t):
    """A token an Authorization header cannot carry is refused before any request, without
    being quoted back."""
    bad = "dapi-BAD\r\nX-Injected: 1"
    t.secrets.append("dapi-BAD")
    env = t.start()
    for token in (bad, "", " \n"):
        reply = env.fails(GET, env.get_request({"databricks_instance": env.fake.address,
                                                "run_id": "1"}, token=token),
                          grpc.StatusCode.INVALID_ARGUMENT)
        check("databricks_token" in reply.details and "dapi" not in reply.details,
              "details: %r" % reply.details)
    env.fails(CREATE,
              create_request(t.pb, custom=custom_config(), token=bad),
              grpc.StatusCode.INVALID_ARGUMENT)
    eq(env.fake.requests(), [], "requests that reached the fake")


def test_flyte2_polls_with_other_tokens_never_share_a_read(t):
    """Concurrent GetTasks of one run share a runs/get only when they bring the same token: a
    read made with one identity never answers another."""
    own = "dapi-CONNECTION-a1"
    t.secrets += [own, "dapi-OTHER-b2"]
    env = t.start(fake_token=own)
    resp = env.create(create_request(t.pb, custom=custom_config(), token=own))
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run",
                      "delay_ms": 600}], run_id=1000)
    replies = {}

    def poll(key, token):
        replies[key] = env.call(GET, env.get_request(resp.resource_meta, token=token),
                                t.pb.admin.GetTaskResponse)

    threads = [threading.Thread(target=poll, args=(k, tok)) for k, tok in
               (("own1", own), ("own2", own), ("other", "dapi-OTHER-b2"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20 * env.daemon.factor)
    eq(replies["own1"].code, grpc.StatusCode.OK, "first poll with the accepted token")
    eq(replies["own2"].code, grpc.StatusCode.OK, "second poll with the accepted token")
    eq(replies["other"].code, grpc.StatusCode.PERMISSION_DENIED, "poll with the refused token")
    got = sorted(authorizations(env, RUNS_GET))
    eq(got.count("Bearer dapi-OTHER-b2"), 1, "runs/get with the other token")
    check(1 <= got.count("Bearer " + own) <= 2, "runs/get with the accepted token: %r" % got)


def test_flyte2_connector_metadata(t):
    env = t.start()
    a = t.pb.admin
    resp = env.ok(LIST_CONNECTORS, a.ListConnectorsRequest(), a.ListConnectorsResponse)
    eq([(c.name, [(k.name, k.version) for k in c.supported_task_categories])
        for c in resp.connectors], [CONNECTOR], "ListConnectors")
    resp = env.ok(GET_CONNECTOR, a.GetConnectorRequest(name="Databricks Connector"),
                  a.GetConnectorResponse)
    eq((resp.connector.name, [(k.name, k.version) for k in resp.connector.supported_task_categories]),
       CONNECTOR, "GetConnector")
    reply = env.fails(GET_CONNECTOR, a.GetConnectorRequest(name="Snowflake Connector"),
                      grpc.StatusCode.NOT_FOUND)
    check("Snowflake Connector" in reply.details, "NOT_FOUND should name it: %r" % reply.details)
    eq(env.fake.requests(), [], "requests to Databricks")


def test_flyte2_metrics_not_implemented_and_why(t):
    """GetTaskMetrics is not implemented on purpose, in both generations, and says why;
    Flyte 2's GetTaskLogs is served (test_details.py runs its tests as both generations)."""
    env = t.start()
    meta = {"databricks_instance": env.fake.address, "run_id": "1"}
    req = t.pb.admin.GetTaskMetricsRequest(resource_meta=json.dumps(meta).encode())
    reply = env.fails(GET_METRICS, req, grpc.StatusCode.UNIMPLEMENTED)
    check("Prometheus" in reply.details and "custom_info" in reply.details,
          "GetTaskMetrics should say why it is not implemented: %r" % reply.details)
    eq(env.fake.requests(), [], "requests to Databricks")


def test_flyte2_serverless_needs_its_own_python_file(t):
    """flyte-sdk has no serverless entrypoint: without a python_file of its own, a serverless
    Flyte 2 task is refused; with one, it gets flytekit's serverless shape."""
    env = t.start()
    conf = databricks_conf(new_cluster=None, environment_key="default")
    reply = env.fails(CREATE,
                      create_request(t.pb, custom=custom_config(conf=conf)),
                      grpc.StatusCode.INVALID_ARGUMENT)
    check("serverless" in reply.details and "python_file" in reply.details,
          "details: %r" % reply.details)
    eq(env.fake.requests(), [], "requests to Databricks")
    conf["python_file"] = "acme/serverless_entry.py"
    env.create(create_request(t.pb, custom=custom_config(conf=conf)))
    body = env.fake.requests(SUBMIT)[0]["body"]
    tasks = body.get("tasks") or [{}]
    eq(tasks[0].get("spark_python_task", {}).get("python_file"), "acme/serverless_entry.py",
       "tasks[0].spark_python_task.python_file")
    eq(tasks[0].get("environment_key"), "default", "tasks[0].environment_key")


def test_flyte2_resource_meta_of_flyte_sdk(t):
    """flyte-sdk's own connector writes json.dumps() of its dataclass, the instance as the task
    gave it: runs it started keep being followed after the switch."""
    env = t.start()
    env.create(create_request(t.pb, custom=custom_config()))
    meta = json.dumps({"databricks_instance": "https://%s/" % env.fake.address,
                       "run_id": "1000"}).encode()
    eq(env.phase_name(env.get(meta, category="databricks").phase), "INITIALIZING", "phase")
    env.delete(meta, category="databricks")
    eq(len(env.fake.requests(CANCEL)), 1, "runs/cancel")
