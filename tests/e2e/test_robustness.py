"""TLS verification, concurrency, dropped connections, shutdown with calls in flight; for
Flyte 1 and Flyte 2 ("_v2")."""

import signal
import threading
import time

import grpc

from harness import (CREATE, GET, below_protocol, check, create_request, custom_config, deep_struct,
                     eq, resource_meta_of, wait_until, wire_field)

GENERATIONS = (1, 2)


def test_untrusted_certificate_refused(t):
    """Without --ca-file the fake's certificate is not trusted: nothing may reach it."""
    env = t.start(ca=False)
    reply = env.call(CREATE, create_request(t.pb, custom=custom_config()), timeout=10)
    check(reply.code != grpc.StatusCode.OK, "CreateTask succeeded against an untrusted server")
    check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.DEADLINE_EXCEEDED),
          "untrusted certificate gave %s %r" % (reply.code, reply.details))
    eq(env.fake.requests(), [], "requests that reached the fake")


def test_localhost_name_verified(t):
    """The certificate names DNS:localhost: an instance spelled localhost:<port> works too."""
    env = t.start(args=lambda fake: ["--allowed-instance", "localhost:%d" % fake.port])
    resp = env.create(create_request(t.pb, custom=custom_config(
        instance="localhost:%d" % env.fake.port)))
    eq(resource_meta_of(resp)["databricks_instance"], "localhost:%d" % env.fake.port, "instance")
    eq(env.fake.requests("/runs/submit")[0]["headers"].get("host"),
       "localhost:%d" % env.fake.port, "Host header")


def test_concurrent_calls(t):
    env = t.start()
    metas = []
    for i in range(8):
        resp = env.create(create_request(t.pb, custom=custom_config(), node_id="n%d" % i))
        metas.append(resp.resource_meta)
    eq(len(env.fake.runs()), 8, "runs")
    results = env.concurrent_gets(metas, 4)
    bad = [r for r in results if r.code != grpc.StatusCode.OK]
    check(not bad, "%d of %d concurrent GetTasks failed, e.g. %s" % (len(bad), len(results),
                                                                     bad[:1]))
    eq(len(results), 32, "answers")


def test_dropped_connection_retried(t):
    env = t.start()
    resp = env.create(create_request(t.pb, custom=custom_config()))
    env.fake.inject("GET", "/api/2.1/jobs/runs/get", [{"close": True, "http_status": 0}])
    reply = env.call(GET, env.get_request(resp.resource_meta), t.pb.admin.GetTaskResponse)
    if reply.code == grpc.StatusCode.OK:
        eq(env.phase_name(reply.msg.resource.phase), "INITIALIZING", "phase after a retry")
        eq(len(env.fake.requests("/runs/get")), 2, "runs/get requests")
    else:
        eq(reply.code, grpc.StatusCode.UNAVAILABLE, "status after a dropped connection")


@below_protocol
def test_sigterm_with_call_in_flight(t):
    """SIGTERM while a GetTask waits on a slow Databricks: the daemon still exits 0, promptly."""
    env = t.start()
    resp = env.create(create_request(t.pb, custom=custom_config()))
    env.fake.script([{"life_cycle_state": "RUNNING", "delay_ms": 3000}], run_id=1000)
    out = {}

    def call():
        out["reply"] = env.call(GET, env.get_request(resp.resource_meta),
                                t.pb.admin.GetTaskResponse, timeout=20)

    th = threading.Thread(target=call)
    th.start()
    wait_until(lambda: env.fake.requests("/runs/get"), 5 * env.daemon.factor,
               "runs/get at the fake")
    started = time.monotonic()
    env.daemon.proc.send_signal(signal.SIGTERM)
    code = env.daemon.proc.wait(15 * env.daemon.factor)
    took = time.monotonic() - started
    th.join(20 * env.daemon.factor)
    eq(code, 0, "exit code after SIGTERM with a call in flight")
    check(took < env.daemon.timeout(12), "shutdown took %.1f s" % took)
    reply = out.get("reply")
    check(reply is not None, "the in-flight call never finished")
    check(reply.code in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE,
                         grpc.StatusCode.CANCELLED),
          "in-flight call ended with %s %r" % (reply.code, reply.details))
    if reply.code == grpc.StatusCode.OK:
        check(env.phase_name(reply.msg.resource.phase) == "RUNNING", "phase %s" % reply.msg)


def _deep_create_request(levels):
    """A CreateTaskRequest whose template.custom holds a list nested `levels` deep."""
    template = wire_field(2, b"spark") + wire_field(5, deep_struct(levels))  # type, custom
    return wire_field(2, template)  # CreateTaskRequest.template


def test_deeply_nested_request_refused(t):
    """protobuf-c recurses once per nesting level: a 150 KB request nested 20,000 deep once
    overflowed a worker's stack. It must be refused, and the daemon must stay up."""
    env = t.start()
    reply = env.call(CREATE, _deep_create_request(20000))
    eq(reply.code, grpc.StatusCode.INVALID_ARGUMENT, "status for a 20,000-level request")
    check("nest" in reply.details, "message does not name the nesting: %r" % reply.details)
    eq(env.fake.requests(), [], "requests that reached the fake")
    resp = env.create(create_request(t.pb, custom=custom_config()))
    check(resp.resource_meta, "the daemon stopped serving after the deep request")
