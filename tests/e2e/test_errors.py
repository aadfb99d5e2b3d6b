"""Bad input, the instance allowlist, and Databricks' error answers: the same for Flyte 1 and
Flyte 2 ("_v2"), whose requests go through the same checks."""

import time

import grpc

from harness import (CREATE, DELETE, Failure, GET, SCALE, below_protocol, check, create_request,
                     custom_config, databricks_conf, eq, resource_meta_of)

GENERATIONS = (1, 2)
SUBMIT_PATH = "/api/2.1/jobs/runs/submit"
GET_PATH = "/api/2.1/jobs/runs/get"
CANCEL_PATH = "/api/2.1/jobs/runs/cancel"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"}


def invalid_create(env, request, *words):
    """CreateTask must fail INVALID_ARGUMENT naming one of `words`, without calling Databricks."""
    reply = env.fails(CREATE, request, INVALID)
    check(any(w.lower() in reply.details.lower() for w in words),
          "message should name %s: %r" % (" or ".join(words), reply.details))
    eq(env.fake.requests(), [], "requests to Databricks")
    return reply


def test_create_without_template(t):
    env = t.start()
    invalid_create(env, create_request(t.pb, template=False), "template")


def test_create_without_custom(t):
    env = t.start()
    invalid_create(env, create_request(t.pb, custom=None), "custom", "databricksConf")


def test_create_without_databricks_conf(t):
    env = t.start()
    invalid_create(env, create_request(t.pb, custom=custom_config(conf=None, databricksConf=None)),
                   "databricksConf")


def test_create_databricks_conf_not_object(t):
    env = t.start()
    custom = custom_config()
    custom["databricksConf"] = "new_cluster please"
    invalid_create(env, create_request(t.pb, custom=custom), "databricksConf")


def test_create_without_compute(t):
    env = t.start()
    conf = databricks_conf(new_cluster=None)
    invalid_create(env, create_request(t.pb, custom=custom_config(conf=conf)),
                   "existing_cluster_id", "new_cluster", "compute", "cluster")


def test_create_without_instance(t):
    env = t.start(instance=False)
    invalid_create(env, create_request(t.pb, custom=custom_config()), "instance")


def test_create_instance_not_allowed(t):
    env = t.start()
    for instance in ("evil.example.com", "evil.example.com:443", "127.0.0.1:1",
                     env.fake.address + "@evil.example.com", env.fake.address + "/x"):
        reply = env.call(CREATE, create_request(t.pb, custom=custom_config(instance=instance)))
        check(reply.code in (grpc.StatusCode.PERMISSION_DENIED, INVALID),
              "instance %r: expected PERMISSION_DENIED, got %s %r" % (instance, reply.code,
                                                                      reply.details))
    reply = env.fails(CREATE, create_request(t.pb, custom=custom_config(
        instance="evil.example.com")), grpc.StatusCode.PERMISSION_DENIED)
    check("evil.example.com" in reply.details, "message should name the instance: %r"
          % reply.details)
    eq(env.fake.requests(), [], "requests to Databricks")


def test_resource_meta_instance_not_allowed(t):
    """A resource_meta pointing elsewhere must not receive the daemon's token."""
    env = t.start()
    meta = {"databricks_instance": "evil.example.com", "run_id": "1000"}
    for method, req in ((GET, env.get_request(meta)), (DELETE, env.delete_request(meta))):
        reply = env.call(method, req)
        eq(reply.code, grpc.StatusCode.PERMISSION_DENIED, "%s status" % method)


BAD_META = [
    (b"not json", ("resource_meta", "json")),
    (b"", ("resource_meta",)),
    (b'{"databricks_instance": "%s"}', ("run_id",)),
    (b'{"databricks_instance": "%s", "run_id": "1&x=2"}', ("run_id",)),
    (b'{"databricks_instance": "%s", "run_id": ""}', ("run_id",)),
    (b'{"databricks_instance": "%s", "run_id": "-5"}', ("run_id",)),
    (b'["%s", "1000"]', ("resource_meta", "object")),
    (b'{"databricks_instance": "%s", "run_id": "1000"', ("resource_meta", "json")),
]


def test_malformed_resource_meta(t):
    env = t.start()
    addr = env.fake.address.encode()
    for template, words in BAD_META:
        meta = template.replace(b"%s", addr)
        for method, req in ((GET, env.get_request(meta)), (DELETE, env.delete_request(meta))):
            reply = env.fails(method, req, INVALID)
            check(any(w.lower() in reply.details.lower() for w in words),
                  "%s %r: message should name %s: %r" % (method.rsplit("/", 1)[1], meta,
                                                         "/".join(words), reply.details))
    eq(env.fake.requests(), [], "requests to Databricks")


def test_wrong_token(t):
    """The fake answers 403 PERMISSION_DENIED to a wrong token (as Databricks does)."""
    env = t.start(fake_token="dapi-the-right-one")
    reply = env.call(CREATE, create_request(t.pb, custom=custom_config()))
    check(reply.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED),
          "expected UNAUTHENTICATED or PERMISSION_DENIED, got %s %r" % (reply.code, reply.details))
    eq(len(env.fake.requests("/runs/submit")), 1, "submits (a 403 is not retried)")
    check("dapi-the-right-one" not in reply.details, "details leak the fake's token")


def test_databricks_401(t):
    env = t.start()
    env.fake.inject("POST", SUBMIT_PATH, [{"http_status": 401, "body": {
        "error_code": "UNAUTHENTICATED", "message": "Token expired"}}])
    reply = env.fails(CREATE, create_request(t.pb, custom=custom_config()),
                      grpc.StatusCode.UNAUTHENTICATED)
    eq(len(env.fake.requests("/runs/submit")), 1, "submits (a 401 is not retried)")
    check("Token expired" in reply.details or "UNAUTHENTICATED" in reply.details,
          "details should carry Databricks' answer: %r" % reply.details)


def test_databricks_400_on_submit(t):
    env = t.start()
    env.fake.inject("POST", SUBMIT_PATH, [{"http_status": 400, "body": {
        "error_code": "INVALID_PARAMETER_VALUE", "message": "Cluster size 9999 too big"}}])
    reply = env.fails(CREATE, create_request(t.pb, custom=custom_config()), INVALID)
    check("INVALID_PARAMETER_VALUE" in reply.details, "no error_code in %r" % reply.details)
    check("Cluster size 9999 too big" in reply.details, "no message in %r" % reply.details)
    eq(len(env.fake.requests("/runs/submit")), 1, "submits (a 400 is not retried)")


def test_databricks_refuses_body(t):
    env = t.start()
    conf = databricks_conf(new_cluster={"node_type_id": "m5.xlarge", "num_workers": 1})
    reply = env.fails(CREATE, create_request(t.pb, custom=custom_config(conf=conf)), INVALID)
    check("spark_version" in reply.details, "Databricks' message lost: %r" % reply.details)


def test_submit_retried_on_503(t):
    """A 503 on submit is retried (safe thanks to the idempotency token)."""
    env = t.start()
    env.fake.inject("POST", SUBMIT_PATH, [{"http_status": 503, "body": {
        "error_code": "TEMPORARILY_UNAVAILABLE", "message": "try later"}}])
    reply = env.call(CREATE, create_request(t.pb, custom=custom_config()),
                     t.pb.admin.CreateTaskResponse)
    submits = env.fake.requests("/runs/submit")
    if reply.code == grpc.StatusCode.OK:
        eq(resource_meta_of(reply.msg)["run_id"], "1000", "run_id after a retried submit")
        eq(len(submits), 2, "submits")
        check(submits[0]["body"].get("idempotency_token") == submits[1]["body"].get(
            "idempotency_token"), "retried submit changed its idempotency token")
    else:
        eq(reply.code, grpc.StatusCode.UNAVAILABLE, "status of a failed submit")


@below_protocol
def test_get_503_never_terminal(t):
    """503 forever on runs/get: UNAVAILABLE (or DEADLINE_EXCEEDED), or a non-terminal phase."""
    env = t.start()
    _, raw = create_ok(t, env)
    env.fake.script([{"http_status": 503, "body": {"error_code": "TEMPORARILY_UNAVAILABLE",
                                                   "message": "down"}}], run_id=1000)
    started = time.monotonic()
    reply = env.call(GET, env.get_request(raw), t.pb.admin.GetTaskResponse, timeout=5,
                     exact=True)
    took = time.monotonic() - started
    if reply.code == grpc.StatusCode.OK:
        phase = env.phase_name(reply.msg.resource.phase)
        check(phase not in TERMINAL, "503 gave the terminal phase %s" % phase)
        t.transcript.append("note: 503 forever -> OK %s" % phase)
    else:
        check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
              "503 forever gave %s %r" % (reply.code, reply.details))
    check(took < 7 * SCALE, "GetTask took %.1fs with a 5s deadline" % took)
    check(len(env.fake.requests("/runs/get")) >= 1, "no runs/get")


def test_get_503_then_recovers(t):
    env = t.start()
    _, raw = create_ok(t, env)
    env.fake.script([{"http_status": 503, "body": {"error_code": "TEMPORARILY_UNAVAILABLE",
                                                   "message": "down"},
                      "headers": {"Retry-After": "0"}},
                     {"life_cycle_state": "RUNNING"}], run_id=1000)
    reply = env.call(GET, env.get_request(raw), t.pb.admin.GetTaskResponse)
    if reply.code == grpc.StatusCode.OK:
        phase = env.phase_name(reply.msg.resource.phase)
        check(phase in ("RUNNING", "INITIALIZING", "QUEUED", "WAITING_FOR_RESOURCES",
                        "UNDEFINED"), "phase %s" % phase)
    else:
        eq(reply.code, grpc.StatusCode.UNAVAILABLE, "status")
        eq(env.phase_name(env.get(raw).phase), "RUNNING", "phase on the next call")


def test_get_429_retry_after(t):
    env = t.start()
    _, raw = create_ok(t, env)
    env.fake.script([{"http_status": 429, "body": {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                                   "message": "slow down"},
                      "headers": {"Retry-After": "1"}},
                     {"life_cycle_state": "RUNNING"}], run_id=1000)
    reply = env.call(GET, env.get_request(raw), t.pb.admin.GetTaskResponse)
    if reply.code == grpc.StatusCode.OK:
        eq(env.phase_name(reply.msg.resource.phase), "RUNNING", "phase after a 429")
        gets = env.fake.requests("/runs/get")
        eq(len(gets), 2, "runs/get requests")
        check(gets[1]["time"] - gets[0]["time"] >= 0.9, "Retry-After: 1 not honoured (%.2fs)"
              % (gets[1]["time"] - gets[0]["time"]))
    else:
        check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED),
              "429 gave %s" % reply.code)


@below_protocol
def test_get_html_500_not_terminal(t):
    env = t.start()
    _, raw = create_ok(t, env)
    env.fake.script([{"http_status": 502, "body": "<html><body>Bad gateway</body></html>"}],
                    run_id=1000)
    reply = env.call(GET, env.get_request(raw), t.pb.admin.GetTaskResponse, timeout=5,
                     exact=True)
    if reply.code == grpc.StatusCode.OK:
        check(env.phase_name(reply.msg.resource.phase) not in TERMINAL, "terminal on a 502")
    else:
        check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
              "502 gave %s %r" % (reply.code, reply.details))


@below_protocol
def test_get_garbage_json_body(t):
    env = t.start()
    _, raw = create_ok(t, env)
    for body in ("{not json", "[]", '{"state": 5}', '{"state": {"life_cycle_state": 7}}', ""):
        env.fake.script([{"http_status": 200, "body": body}], run_id=1000)
        reply = env.call(GET, env.get_request(raw), t.pb.admin.GetTaskResponse, timeout=3,
                         exact=True)
        if reply.code == grpc.StatusCode.OK:
            phase = env.phase_name(reply.msg.resource.phase)
            check(phase not in ("SUCCEEDED", "ABORTED"), "body %r gave %s" % (body, phase))
    env.fake.script([{"life_cycle_state": "RUNNING"}], run_id=1000)
    eq(env.phase_name(env.get(raw).phase), "RUNNING", "phase once Databricks is sane again")


def create_ok(t, env):
    resp = env.create(create_request(t.pb, custom=custom_config()))
    return resource_meta_of(resp), resp.resource_meta


def test_delete_unknown_run_ok(t):
    env = t.start()
    meta = {"databricks_instance": env.fake.address, "run_id": "777"}
    env.delete(meta)
    env.fake.config(missing_style="404")
    env.delete(meta)
    cancels = env.fake.requests("/runs/cancel")
    if len(cancels) != 2:
        raise Failure("runs/cancel requests: %d" % len(cancels))
