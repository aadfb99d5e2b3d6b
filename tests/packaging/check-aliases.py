#!/usr/bin/python3
"""Starts the built binary under the names the official Helm charts run it by.

    tests/packaging/check-aliases.py        (BUILD: build dir, default build)

The flyteconnector chart starts its image as `pyflyte serve agent` (Flyte 1.16)
or `c0` (Flyte 2), with the Python servers' flags. For each name this links the
binary into a temporary directory under that name (as `make install` and the
image do), starts it with those flags on free ports, and checks that gRPC health
answers SERVING on --port and /metrics answers on --prometheus_port; that the
ignored flags are logged as such; that the daemon's own flags and config file
still apply beside them; that SIGTERM ends it with 0; and that `pyflyte` with
anything but `serve agent|connector` is refused. Prints "ok NAME" / "FAIL NAME:
reason" and "N passed, N failed"; exits 1 on any failure.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("BUILD") or os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "flyte-databricks-connector")
SCALE = float(os.environ.get("TIMEOUT_SCALE", "1") or 1)
HEALTH = "/grpc.health.v1.Health/Check"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}, field 1 varint 1


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, why=""):
        if ok:
            print("ok %s" % name)
            self.passed += 1
        else:
            print("FAIL %s: %s" % (name, why))
            self.failed += 1


def health(port, service=""):
    """Gives the raw Health/Check answer for `service`, or the error code's name."""
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        call = channel.unary_unary(HEALTH, request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        request = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
        try:
            return call(request, timeout=2 * SCALE)
        except grpc.RpcError as e:
            return e.code().name


def wait_serving(proc, port):
    end = time.monotonic() + 10 * SCALE
    last = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            return "exited with %d" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError as e:
            last = str(e)
            time.sleep(0.05)
            continue
        last = health(port)
        if last == SERVING:
            return None
        time.sleep(0.05)
    return "not SERVING in time (%r)" % last


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5 * SCALE) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def run_one(report, tmp, name, argv, config=None):
    """Starts argv (argv[0] names a link in tmp) with --port/--prometheus_port on free ports
    and checks both answer, then stops it."""
    port, prom = free_port(), free_port()
    cmd = [os.path.join(tmp, argv[0])] + argv[1:] + [
        "--port", str(port), "--prometheus_port=%d" % prom]
    if config is not None:
        path = os.path.join(tmp, "config-%d.json" % port)
        with open(path, "w") as f:
            json.dump(config, f)
        cmd += ["--config", path]
    stderr_path = os.path.join(tmp, "stderr-%d" % port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                env=env, cwd=tmp)
    try:
        why = wait_serving(proc, port)
        report.check("%s: gRPC health SERVING on --port" % name, why is None, why)
        if why is None:
            for service in ("flyteidl.service.AsyncAgentService",
                            "flyteidl2.connector.AsyncConnectorService"):
                got = health(port, service)
                report.check("%s: health of %s" % (name, service), got == SERVING, repr(got))
            try:
                status, text = metrics(prom)
                report.check("%s: /metrics on --prometheus_port" % name,
                             status == 200 and "fdc_build_info" in text, "status %d" % status)
            except OSError as e:
                report.check("%s: /metrics on --prometheus_port" % name, False, str(e))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    report.check("%s: SIGTERM exits 0" % name, proc.returncode == 0,
                 "exit code %s" % proc.returncode)
    with open(stderr_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def main():
    report = Report()
    if not os.access(BINARY, os.X_OK):
        report.check("binary built", False, "%s missing (run make)" % BINARY)
        print("%d passed, %d failed" % (report.passed, report.failed))
        return 1
    with tempfile.TemporaryDirectory(prefix="fdc-aliases.") as tmp:
        for alias in ("pyflyte", "c0"):
            os.symlink(BINARY, os.path.join(tmp, alias))

        # The Flyte 1.16 chart's command, with every flag pyflyte takes.
        log = run_one(report, tmp, "pyflyte serve agent",
                      ["pyflyte", "serve", "agent", "--worker", "2", "--timeout", "60",
                       "--modules", "my.connector", "--modules", "other.connector"])
        unescaped = log.replace('\\"', '"')  # log lines escape the quotes
        for flag in ('--timeout "60" ignored', '--modules "my.connector" ignored',
                     '--modules "other.connector" ignored'):
            report.check("pyflyte serve agent: logs %s" % flag, flag in unescaped, log[-300:])
        # The same server under flytekit's newer name; the daemon's own flags and config
        # file apply beside pyflyte's.
        log = run_one(report, tmp, "pyflyte serve connector",
                      ["pyflyte", "serve", "connector", "--worker=0", "--log-format", "json"],
                      config={"shutdown_grace_ms": 1000})
        lines = [l for l in log.splitlines() if l.strip()]
        report.check("pyflyte serve connector: --log-format json applies",
                     lines and all(l.startswith("{") for l in lines), log[-300:])
        # The Flyte 2 chart's command.
        log = run_one(report, tmp, "c0",
                      ["c0", "--worker", "1", "--timeout", "5", "--modules", "x"],
                      config={"log_format": "json"})
        report.check("c0: config file applies (json log lines)",
                     log.lstrip().startswith("{"), log[:200])

        for argv in (["pyflyte"], ["pyflyte", "serve"], ["pyflyte", "run", "wf.py"],
                     ["pyflyte", "serve", "fast"]):
            r = subprocess.run([os.path.join(tmp, argv[0])] + argv[1:], capture_output=True,
                               text=True, timeout=10 * SCALE)
            report.check("%s: refused with exit 2" % " ".join(argv),
                         r.returncode == 2 and "pyflyte serve agent" in r.stderr,
                         "exit %d: %s" % (r.returncode, r.stderr.strip()[:200]))
    print("%d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
