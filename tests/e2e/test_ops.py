"""Operations: the /metrics endpoint (--metrics-listen) and systemd notifications (NOTIFY_SOCKET).

The daemon takes `--metrics-listen HOST:PORT` (port 0: a free port, logged as
`msg="metrics listening" ... port=N`; "off": no endpoint) and speaks sd_notify
when NOTIFY_SOCKET is set: READY=1 once serving, STATUS= summaries, WATCHDOG=1
at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM.
"""

import os
import re
import socket
import time
import urllib.error
import urllib.request

import grpc

from harness import (CREATE, SCALE, Failure, check, create_request, custom_config, eq,
                     resource_meta_of, wait_until)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def scrape(port, path="/metrics", method="GET"):
    """(status, content type, body) of one HTTP request to the metrics port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5 * SCALE) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(body):
    """{'name{labels}': float} of every sample line."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def scrape_until(port, expect):
    """Samples once every `expect` key has its value. A handler may count its call just after
    answering it, so a scrape right after an answer can be a moment early."""
    last = {}

    def matches():
        nonlocal last
        last = samples(scrape(port)[2])
        return all(last.get(k) == v for k, v in expect.items())

    try:
        wait_until(matches, 5, "metrics")
    except Failure:
        for key, value in expect.items():
            eq(last.get(key), value, key)
    return last


def with_inputs(pb, request):
    """CreateTask inputs of a known size, for flyte_connector_input_literal_bytes."""
    # This tree's Literal is a stub message: the map keys give the size.
    for key in ("n", "x" * 300):
        request.inputs.literals[key].CopyFrom(pb.literals.Literal())
    check(request.inputs.ByteSize() > 300, "inputs too small to measure")
    return request


# These tests let the daemon pick its metrics port (127.0.0.1:0, as the harness does) and read
# it from the log: a port chosen free beforehand can be taken before the daemon binds it.
def test_metrics_endpoint_counts_calls(t):
    env = t.start()
    port = env.daemon.metrics_port()
    pb = t.pb

    status, ctype, body = scrape(port)
    eq(status, 200, "GET /metrics status")
    eq(ctype, CONTENT_TYPE, "Content-Type")
    check(re.search(r'^fdc_build_info\{version="[^"]+"\} 1$', body, re.M),
          "fdc_build_info missing:\n" + body)

    request = with_inputs(pb, create_request(pb, custom=custom_config()))
    resp = env.create(request)
    env.get(resource_meta_of(resp))
    env.fails(CREATE, create_request(pb, custom=custom_config(instance="evil.example.com")),
              grpc.StatusCode.PERMISSION_DENIED)

    expect = {
        'flyte_connector_requests_success_total{task_type="spark",operation="create"}': 1,
        'flyte_connector_requests_success_total{task_type="spark",operation="get"}': 1,
        'flyte_connector_requests_failure_total{task_type="spark",operation="create",'
        'error_code="PERMISSION_DENIED"}': 1,
        'flyte_connector_request_latency_seconds_count{task_type="spark",operation="create"}': 2,
        'flyte_connector_input_literal_bytes_count{task_type="spark"}': 1,
        'flyte_connector_input_literal_bytes_sum{task_type="spark"}': request.inputs.ByteSize(),
        'fdc_databricks_requests_total{endpoint="runs/submit",status="200"}': 1,
        'fdc_databricks_requests_total{endpoint="runs/get",status="200"}': 1,
        'fdc_databricks_request_duration_seconds_count{endpoint="runs/submit"}': 1,
        "fdc_grpc_calls_in_flight": 0,
    }
    got = scrape_until(port, expect)
    check(got.get("fdc_databricks_connections_opened_total", 0) >= 1,
          "fdc_databricks_connections_opened_total should count the TLS connection")
    check(not any(k.startswith("fdc_databricks_retries_total{") for k in got),
          "no retries expected")


def test_metrics_retries_and_statuses(t):
    """A 503 on runs/get (always safe to retry) shows as a 503 attempt, a retry, then a 200."""
    env = t.start()
    port = env.daemon.metrics_port()
    meta = resource_meta_of(env.create(create_request(t.pb, custom=custom_config())))
    env.fake.inject("GET", "/api/2.1/jobs/runs/get", [{"http_status": 503, "body": {
        "error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}}])
    env.get(meta)
    scrape_until(port, {
        'fdc_databricks_requests_total{endpoint="runs/get",status="503"}': 1,
        'fdc_databricks_requests_total{endpoint="runs/get",status="200"}': 1,
        'fdc_databricks_retries_total{endpoint="runs/get"}': 1,
        'fdc_databricks_request_duration_seconds_count{endpoint="runs/get"}': 2,
        'flyte_connector_requests_success_total{task_type="spark",operation="get"}': 1,
    })


def test_metrics_wrong_path_and_method(t):
    port = t.start().daemon.metrics_port()
    eq(scrape(port, "/")[0], 404, "GET /")
    eq(scrape(port, "/metricsx")[0], 404, "GET /metricsx")
    eq(scrape(port, method="POST")[0], 405, "POST /metrics")


def test_metrics_port_zero_is_logged(t):
    env = t.start(args=["--metrics-listen", "127.0.0.1:0"])
    port = env.daemon.metrics_port()
    check(port > 0, "port 0 must be replaced by the bound port")
    eq(scrape(port)[0], 200, "GET /metrics on the logged port")


def test_metrics_off(t):
    env = t.start(args=["--metrics-listen", "off"])
    check(not env.daemon.logged("metrics listening"), "metrics must be off")


def test_metrics_port_taken_fails_start(t):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            t.start(args=["--metrics-listen", "127.0.0.1:%d" % port])
        except Failure as e:
            check("exited" in str(e) and "127.0.0.1:%d" % port in str(e),
                  "start should fail naming the address: %s" % e)
            t.daemons[-1].stop()
            t.daemons.pop()
            return
    raise Failure("daemon started although the metrics port was taken")


# ---- systemd ------------------------------------------------------------------

class NotifySocket:
    """Plays systemd's notification socket; collects assignments with arrival times."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.seen = []

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return self.seen
            now = time.monotonic()
            self.seen += [(now, line) for line in data.decode().split("\n") if line]

    def lines(self, prefix):
        return [(ts, line) for ts, line in self.poll() if line.startswith(prefix)]

    def close(self):
        self.sock.close()


def start_under_systemd(t, watchdog_usec):
    notify = NotifySocket(t.dir)
    saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    os.environ["NOTIFY_SOCKET"] = notify.path
    os.environ["WATCHDOG_USEC"] = str(watchdog_usec)
    os.environ.pop("WATCHDOG_PID", None)
    try:
        # The default 0.0.0.0:9090 may be taken by another daemon on this machine.
        env = t.start(args=["--metrics-listen", "off"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return env, notify


def test_systemd_ready_watchdog_stopping(t):
    env, notify = start_under_systemd(t, 1000000)
    try:
        wait_until(lambda: notify.lines("READY=1"), 5, "READY=1")
        # 1 s watchdog: a ping every ~0.5 s.
        pings = wait_until(lambda: len(notify.lines("WATCHDOG=1")) >= 4 and notify.lines("WATCHDOG=1"),
                           5, "four WATCHDOG=1")
        span = pings[-1][0] - pings[0][0]
        check(span / (len(pings) - 1) < 0.9 * SCALE * env.daemon.factor,
              "pings too far apart: %d in %.2f s" % (len(pings), span))
        check(notify.lines("STATUS="), "no STATUS= line")
        eq(env.daemon.stop(), 0, "exit code")
        check(notify.lines("STOPPING=1"), "no STOPPING=1 on SIGTERM")
    finally:
        notify.close()
