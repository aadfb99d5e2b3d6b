"""Life cycle of the daemon process: graceful stop, second signal, SIGHUP reload,
start-up errors, JSON logs."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import grpc

from harness import (CREATE, GET, HEALTH, SCALE, Failure, check, create_request, custom_config,
                     eq, resource_meta_of, wait_until)


def write_config(t, name, settings):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        f.write(settings if isinstance(settings, str) else json.dumps(settings))
    return path


def health_status(env):
    """Health/Check("") over a fresh channel: a status name or the RPC error code."""
    channel = env.daemon.new_channel()
    try:
        call = channel.unary_unary(HEALTH, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=env.pb.health.HealthCheckResponse.FromString)
        resp = call(env.pb.health.HealthCheckRequest(service=""), timeout=2)
        return env.pb.health.HealthCheckResponse.ServingStatus.Name(resp.status)
    except grpc.RpcError as e:
        return str(e.code())
    finally:
        channel.close()


def call_in_background(env, meta, timeout):
    out = {}

    def run():
        out["reply"] = env.call(GET, env.get_request(meta), env.pb.admin.GetTaskResponse,
                                timeout=timeout)

    th = threading.Thread(target=run)
    th.start()
    return th, out


def slow_run(t, env, delay_ms):
    resp = env.create(create_request(t.pb, custom=custom_config()))
    env.fake.script([{"life_cycle_state": "RUNNING", "delay_ms": delay_ms}], run_id=1000)
    return resp.resource_meta


def test_sigterm_stops_serving_and_finishes_calls(t):
    """SIGTERM: new calls are refused at once (the listener closes), the call in flight still
    gets its answer within the grace period, and the daemon exits 0."""
    config = write_config(t, "c.json", {"shutdown_grace_ms": 8000})
    env = t.start(args=["--config", config])
    meta = slow_run(t, env, 2000)
    th, out = call_in_background(env, meta, 20)
    wait_until(lambda: env.fake.requests("/runs/get"), 5 * env.daemon.factor, "runs/get at the fake")
    env.daemon.proc.send_signal(signal.SIGTERM)
    env.daemon.wait_logged("stopping")
    # A new call while the one in flight is still waiting: refused, not served.
    status = wait_until(lambda: (lambda s: s if s != "SERVING" else None)(health_status(env)),
                        2 * env.daemon.factor, "new calls to be refused")
    check(status in ("StatusCode.UNAVAILABLE", "StatusCode.CANCELLED"),
          "a new call after SIGTERM: %s" % status)
    check(th.is_alive(), "the call in flight ended before the refusal was checked")
    code = env.daemon.proc.wait(15 * env.daemon.factor)
    th.join(20 * env.daemon.factor)
    eq(code, 0, "exit code")
    reply = out.get("reply")
    check(reply is not None, "the call in flight got no answer")
    eq(reply.code, grpc.StatusCode.OK, "the call in flight (it fits in the grace period)")
    eq(env.phase_name(reply.msg.resource.phase), "RUNNING", "its phase")
    check(env.daemon.logged("stopping") and env.daemon.logged("stopped"),
          "stop not logged: " + env.daemon.stderr_tail(3))


def test_shutdown_delay_answers_not_serving(t):
    """With shutdown_delay_ms, SIGTERM turns health NOT_SERVING while the daemon keeps serving
    every call for the delay; then new calls are refused and the daemon exits 0."""
    config = write_config(t, "c.json", {"shutdown_delay_ms": 3000, "shutdown_grace_ms": 5000})
    env = t.start(args=["--config", config])
    resp = env.create(create_request(t.pb, custom=custom_config()))
    eq(health_status(env), "SERVING", "health before the signal")
    started = time.monotonic()
    env.daemon.proc.send_signal(signal.SIGTERM)
    env.daemon.wait_logged("stopping")
    eq(health_status(env), "NOT_SERVING", "health during shutdown_delay_ms")
    reply = env.call(GET, env.get_request(resp.resource_meta), t.pb.admin.GetTaskResponse,
                     timeout=5)
    eq(reply.code, grpc.StatusCode.OK, "a GetTask during shutdown_delay_ms")
    check(time.monotonic() - started < 3, "the checks above took longer than the delay; "
          "they proved nothing about it")
    status = wait_until(lambda: (lambda s: s if s != "NOT_SERVING" else None)(health_status(env)),
                        6 * env.daemon.factor, "new calls to be refused after the delay")
    # UNAVAILABLE once the listener is closed; CANCELLED for a call that met the closing.
    check(status in ("StatusCode.UNAVAILABLE", "StatusCode.CANCELLED"),
          "a new call after shutdown_delay_ms: %s" % status)
    check(time.monotonic() - started >= 2.9, "calls refused %.1f s after SIGTERM, before the "
          "3 s delay was over" % (time.monotonic() - started))
    eq(env.daemon.proc.wait(15 * env.daemon.factor), 0, "exit code")


def test_grace_period_cancels_leftovers(t):
    """A call that outlasts shutdown_grace_ms is cancelled and the daemon still exits 0, soon
    after the grace period."""
    config = write_config(t, "c.json", {"shutdown_grace_ms": 1000})
    env = t.start(args=["--config", config])
    meta = slow_run(t, env, 8000)
    th, out = call_in_background(env, meta, 30)
    wait_until(lambda: env.fake.requests("/runs/get"), 5 * env.daemon.factor, "runs/get at the fake")
    started = time.monotonic()
    env.daemon.proc.send_signal(signal.SIGTERM)
    code = env.daemon.proc.wait(15 * env.daemon.factor)
    took = time.monotonic() - started
    th.join(20 * env.daemon.factor)
    eq(code, 0, "exit code")
    check(took < env.daemon.timeout(6), "exit took %.1f s with a 1 s grace period" % took)
    reply = out.get("reply")
    check(reply is not None, "the call in flight got no answer")
    check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED),
          "leftover call ended with %s %r" % (reply.code, reply.details))


def test_second_signal_exits_at_once(t):
    config = write_config(t, "c.json", {"shutdown_grace_ms": 60000})
    env = t.start(args=["--config", config])
    meta = slow_run(t, env, 20000)
    th, out = call_in_background(env, meta, 40)
    wait_until(lambda: env.fake.requests("/runs/get"), 5 * env.daemon.factor, "runs/get at the fake")
    env.daemon.proc.send_signal(signal.SIGTERM)
    env.daemon.wait_logged("stopping")
    started = time.monotonic()
    env.daemon.proc.send_signal(signal.SIGINT)
    code = env.daemon.proc.wait(10 * env.daemon.factor)
    took = time.monotonic() - started
    env.daemon.exit_code = 0  # expected non-zero here; the harness would object
    th.join(10 * env.daemon.factor)
    check(code != 0, "second signal: exit code %s, want non-zero" % code)
    check(took < env.daemon.timeout(3), "second signal took %.1f s to exit" % took)
    check("second stop signal" in env.daemon.stderr_text(), "second signal not logged")


def test_sighup_rotates_token(t):
    """The token file changes and SIGHUP makes the daemon use the new token, without a
    restart and without dropping its connection to the client."""
    new_token = t.secret("dapi-token-rotated")
    env = t.start(fake_token=new_token)
    reply = env.call(CREATE, create_request(t.pb, custom=custom_config()))
    eq(reply.code, grpc.StatusCode.PERMISSION_DENIED, "CreateTask with the old token")
    token_file = os.path.join(t.dir, "token-1")
    with open(token_file, "w") as f:
        f.write(new_token + "\n")
    pid_before = env.daemon.proc.pid
    env.daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in env.daemon.stderr_text(),
               5 * env.daemon.factor, "the reload")
    resp = env.create(create_request(t.pb, custom=custom_config(), node_id="n1"))
    eq(resource_meta_of(resp)["run_id"], "1000", "run id after rotation")
    eq(env.fake.requests("/runs/submit")[-1]["headers"].get("authorization"),
       "Bearer " + new_token, "Authorization after the reload")
    eq(env.daemon.proc.pid, pid_before, "same process")
    eq(env.daemon.proc.poll(), None, "still running")


def test_sighup_invalid_config_keeps_old(t):
    config = write_config(t, "c.json", {"log_level": "debug", "shutdown_grace_ms": 2000})
    env = t.start(args=["--config", config])
    write_config(t, "c.json", '{"log_level": "debug", "shutdown_grace_ms": "soon"}')
    env.daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in env.daemon.stderr_text(), 5 * env.daemon.factor,
               "the refusal")
    check("shutdown_grace_ms" in env.daemon.stderr_text().split("reload refused", 1)[1],
          "the refusal does not name the bad key")
    resp = env.create(create_request(t.pb, custom=custom_config()))
    eq(resource_meta_of(resp)["run_id"], "1000", "calls still served after a refused reload")
    # A valid reload that changes a restart-only key warns and keeps the old value.
    write_config(t, "c.json", {"log_level": "info", "workers": 3})
    env.daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in env.daemon.stderr_text(),
               5 * env.daemon.factor, "the second reload")
    check(env.daemon.logged("changed setting needs a restart to take effect, keeping the old "
                            "value", key="workers"),
          "restart-only change not named: " + env.daemon.stderr_tail(4))



def test_sighup_applies_new_allowlist(t):
    """allowed_instances is not restart-only: a reload lets a task reach a new instance."""
    config = write_config(t, "c.json", {"allowed_instances": []})
    env = t.start(args=["--config", config])
    other = "localhost:%d" % env.fake.port  # the fake's certificate names localhost too
    request = create_request(t.pb, custom=custom_config(instance=other))
    reply = env.call(CREATE, request)
    eq(reply.code, grpc.StatusCode.PERMISSION_DENIED, "before the reload")
    eq(env.fake.requests(), [], "requests at the fake before the reload")
    write_config(t, "c.json", {"allowed_instances": [other]})
    env.daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in env.daemon.stderr_text(),
               5 * env.daemon.factor, "the reload")
    resp = env.create(request)
    eq(resource_meta_of(resp)["databricks_instance"], other, "instance after the reload")


def run_daemon(t, args, timeout=10):
    """Runs the binary to completion (start-up failures); returns (code, stderr lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    env["FLYTE_DATABRICKS_ACCESS_TOKEN"] = "dapi-test"
    proc = subprocess.run([t.suite.daemon, "--metrics-listen", "off"] + args, env=env,
                          capture_output=True, text=True, timeout=timeout * SCALE, cwd=t.dir)
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


def test_startup_errors_name_their_cause(t):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        code, lines = run_daemon(t, ["--listen", "127.0.0.1:%d" % port])
    finally:
        busy.close()
    check(code != 0, "port in use: exit code 0")
    eq(len(lines), 1, "port in use: stderr lines %r" % lines)
    check("127.0.0.1:%d" % port in lines[0] and "in use" in lines[0], "port in use: " + lines[0])

    code, lines = run_daemon(t, ["--listen", "127.0.0.1:0", "--config", "/nonexistent/c.json"])
    check(code != 0, "missing config: exit code 0")
    eq(len(lines), 1, "missing config: stderr lines %r" % lines)
    check("/nonexistent/c.json" in lines[0], "missing config: " + lines[0])

    bad_ca = write_config(t, "bad-ca.pem", "not a certificate\n")
    code, lines = run_daemon(t, ["--listen", "127.0.0.1:0", "--ca-file", bad_ca])
    check(code != 0, "bad CA file: exit code 0")
    eq(len(lines), 1, "bad CA file: stderr lines %r" % lines)
    check(bad_ca in lines[0] and "certificate" in lines[0], "bad CA file: " + lines[0])

    code, lines = run_daemon(t, ["--listen", "127.0.0.1:0", "--workers", "65"])
    check(code != 0, "bad option: exit code 0")
    check(lines and "workers" in lines[0], "bad option: %r" % lines)


def test_json_log_format(t):
    env = t.start(args=["--log-format", "json"])
    env.create(create_request(t.pb, custom=custom_config()))
    # The call's line is written just after its answer goes out.
    wait_until(lambda: '"call done"' in env.daemon.stderr_text(), 5 * env.daemon.factor,
               "the call's log line")
    lines = [l for l in env.daemon.stderr_text().splitlines() if l.strip()]
    check(lines, "no log lines")
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            raise Failure("log line is not JSON: %r" % line)
    for e in events:
        check("time" in e and "level" in e and "msg" in e, "event lacks time/level/msg: %r" % e)
    done = [e for e in events if e.get("msg") == "call done" and e.get("operation") == "create"]
    check(done, "no 'call done' event for the CreateTask")
    for key in ("task_type", "instance", "run_id", "grpc_code", "duration_ms"):
        check(key in done[0], "call event lacks %s: %r" % (key, done[0]))
    eq(done[0]["run_id"], "1000", "run_id field")
