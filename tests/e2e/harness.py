"""End-to-end test harness: test CA, the fake Databricks, the daemon, gRPC calls.

A test is a function `test_<name>(t)` in a tests/e2e/test_*.py module. `t` is a
`Test`: `t.start(...)` brings up a fake Databricks and a daemon pointed at it
and gives an `Env` with gRPC helpers; everything started is stopped by the
runner afterwards, which also checks the daemon's exit status (0; 99 under
valgrind means memory errors or leaks) and that no secret (the canary token)
appears in the daemon's stderr or in any gRPC answer.

Protocol generations: a test runs as Flyte 1 (flyteidl.service.AsyncAgentService),
and also as Flyte 2 (flyteidl2.connector.AsyncConnectorService, name suffixed
"_v2") when its module sets GENERATIONS = (1, 2) or the test is decorated
@generations(1, 2). `t.generation` says which; `t.pb.admin` is that generation's
connector messages (flyteidl.admin or flyteidl2.connector, same names for the
task messages), and Env.call() sends Flyte 1's task method paths (CREATE, GET,
...) to the generation's service, so one test body serves both.

Environment: DAEMON (default build/flyte-databricks-connector), BUILD (build),
VALGRIND=1 (run every daemon under valgrind), TIMEOUT_SCALE (multiplies every
timeout), KEEP=1 (keep temp dirs), SANITIZED=1 (DAEMON is an ASan/UBSan build: no
valgrind; sanitizer reports fail the test).
"""

import importlib.util
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# BUILD from the environment is relative to the caller's directory (as make passes it).
BUILD = os.path.abspath(os.environ["BUILD"]) if os.environ.get("BUILD") else os.path.join(ROOT, "build")
DAEMON = os.path.abspath(os.environ.get("DAEMON", os.path.join(BUILD, "flyte-databricks-connector")))
FAKE = os.path.join(ROOT, "tests", "fake", "fake_databricks.py")
FAKE_KUBE = os.path.join(ROOT, "tests", "fake", "fake_kubernetes.py")
SCALE = float(os.environ.get("TIMEOUT_SCALE", "1") or 1)
VALGRIND_ALL = os.environ.get("VALGRIND", "") == "1"
VALGRIND_CMD = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=99", "--num-callers=30"]
VALGRIND_FACTOR = 10.0  # timeouts grow this much under valgrind
# SANITIZED=1 (make test-asan): DAEMON is built with ASan/UBSan, which valgrind cannot run;
# the sanitizers check instead, and a report of theirs in a daemon's stderr fails the test.
SANITIZED = os.environ.get("SANITIZED", "") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ")

# Canaries: every secret a test uses is a distinctive value (Test.secret() makes one) that
# must never appear in what the daemon says. A value holding CANARY_MARKER fails the test
# wherever it shows up, registered or not (a token a fake issues, say); other secrets are
# registered with Test.register_secret(). Never put the marker in anything that is not a
# secret.
CANARY_MARKER = "fdcCANARY"
# Environment variables whose values are secrets: a value given to a daemon under one of these
# names is registered as a secret by Test.start(). Add the names your feature reads.
SECRET_ENV_VARS = {"FLYTE_DATABRICKS_ACCESS_TOKEN"}
# Every daemon logs at debug level in this format unless a test chooses its own; run.py runs
# the suite once per format (E2E_LOG_FORMAT).
LOG_FORMAT = os.environ.get("E2E_LOG_FORMAT", "text")

SERVICE = "/flyteidl.service.AsyncAgentService/"
METADATA = "/flyteidl.service.AgentMetadataService/"
SERVICE2 = "/flyteidl2.connector.AsyncConnectorService/"
METADATA2 = "/flyteidl2.connector.ConnectorMetadataService/"
LIST_CONNECTORS = METADATA2 + "ListConnectors"
GET_CONNECTOR = METADATA2 + "GetConnector"
CREATE = SERVICE + "CreateTask"
GET = SERVICE + "GetTask"
DELETE = SERVICE + "DeleteTask"
GET_METRICS = SERVICE + "GetTaskMetrics"
GET_LOGS = SERVICE + "GetTaskLogs"
GET_AGENT = METADATA + "GetAgent"
LIST_AGENTS = METADATA + "ListAgents"
HEALTH = "/grpc.health.v1.Health/Check"

# grpcio's fork support makes every fork (each Popen of a fake or a daemon) wait until its
# thread pool is idle; a channel still reconnecting to a daemon a test stopped (or refusing a
# handshake) keeps it busy, and the next test hung there. The harness only forks to exec, which
# needs none of it.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
import grpc  # noqa: E402  (python3-grpcio, a regular package: wins over the generated grpc/ dir)


# Every child the harness starts is SIGKILLed if the runner dies (even by SIGKILL). util-linux's
# setpriv sets that and execs, so the child keeps its pid. Not a preexec_fn: that makes Python
# fork() instead of vfork(), and in a child forked while grpcio's threads hold an abseil mutex
# the at-fork handlers abort ("Mutex::Fer with pending CondVar queueing") before exec.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"]


class Failure(Exception):
    """A test expectation that did not hold."""


def generations(*numbers):
    """Decorator: run this test under these protocol generations (overrides the module's
    GENERATIONS), e.g. @generations(1) for a test of Flyte 1's messages only."""
    def mark(fn):
        fn.generations = numbers
        return fn
    return mark


# Slow tests (seconds each: backoff, deadlines, rate limits, shutdown) of Databricks trouble that
# is handled below the protocol (dbx.c, retry.c, loop.c, the limits): they run once, as Flyte 1,
# to keep the suite's time reasonable; Flyte 2's path into the same code is covered by the
# cheaper tests beside them.
below_protocol = generations(1)


def check(cond, message):
    if not cond:
        raise Failure(message)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until true; bounded by timeout seconds (scaled)."""
    end = time.monotonic() + timeout * SCALE
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise Failure("timed out waiting for %s" % what)
        time.sleep(interval)


# ---- protobuf modules, generated at test time -------------------------------

class Protos:
    """Python protobuf modules generated from proto/ into $BUILD/py."""

    def __init__(self):
        out = os.path.join(BUILD, "py")
        os.makedirs(out, exist_ok=True)
        files = []
        for dirpath, _, names in os.walk(os.path.join(ROOT, "proto")):
            files += [os.path.relpath(os.path.join(dirpath, n), os.path.join(ROOT, "proto"))
                      for n in names if n.endswith(".proto")]
        # run.py's parallel passes generate once, before they start (two protocs writing
        # while the other pass imports would break it).
        if os.environ.get("E2E_PROTOS_READY") != "1":
            res = subprocess.run(["protoc", "--python_out=" + out, "-Iproto", "-I/usr/include"]
                                 + sorted(files), cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
            if res.returncode != 0:
                raise RuntimeError("protoc failed: " + res.stderr)
        if out not in sys.path:
            sys.path.insert(0, out)
        from flyteidl.admin import agent_pb2
        from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2, tasks_pb2
        from google.protobuf import struct_pb2
        self.admin = agent_pb2
        self.execution = execution_pb2
        self.identifier = identifier_pb2
        self.literals = literals_pb2
        self.tasks = tasks_pb2
        self.struct = struct_pb2
        # "grpc" is grpcio's package name, so the generated grpc/health/v1
        # module cannot be imported by its package path: load it by file.
        path = os.path.join(out, "grpc", "health", "v1", "health_pb2.py")
        spec = importlib.util.spec_from_file_location("fdc_health_pb2", path)
        self.health = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.health)
        self.Phase = execution_pb2.TaskExecution
        self.generation = 1
        # Flyte 2's modules under the same names, for tests run as Flyte 2.
        from flyteidl2.connector import connector_pb2
        from flyteidl2.core import execution_pb2 as execution2, identifier_pb2 as identifier2
        from flyteidl2.core import literals_pb2 as literals2, tasks_pb2 as tasks2
        self.v2 = types.SimpleNamespace(
            admin=connector_pb2, execution=execution2, identifier=identifier2,
            literals=literals2, tasks=tasks2, struct=struct_pb2, health=self.health,
            Phase=execution2.TaskExecution, generation=2, v2=None)

    def of(self, generation):
        """The message modules of `generation` (1 or 2)."""
        return self if generation == 1 else self.v2


# ---- test CA ----------------------------------------------------------------

def make_ca(directory):
    """A CA and a server certificate for 127.0.0.1/localhost; returns the paths."""
    def openssl(*args):
        res = subprocess.run(["openssl"] + list(args), cwd=directory, capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], res.stderr))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=fdc e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return {k: os.path.join(directory, v) for k, v in
            (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


class Pki:
    """Certificates for TLS tests, made with openssl in `directory` on first use and kept by
    name: CAs, server certificates (127.0.0.1, localhost) and client certificates, EC P-256."""

    def __init__(self, directory):
        self.dir = directory
        self.made = {}

    def _openssl(self, *args):
        res = subprocess.run(["openssl"] + list(args), cwd=self.dir, capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], res.stderr))

    def ca(self, name):
        """A CA: {"cert": path, "key": path}."""
        if name not in self.made:
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                          "-out", name + ".pem", "-days", "2", "-subj", "/CN=fdc test CA " + name,
                          "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            self.made[name] = {"cert": os.path.join(self.dir, name + ".pem"),
                               "key": os.path.join(self.dir, name + ".key")}
        return self.made[name]

    def leaf(self, name, ca_name, server=True):
        """A certificate `name` signed by CA `ca_name`, for a server (SAN 127.0.0.1 and
        localhost) or a client: {"cert", "key", "ca": the CA's certificate, "cn"}."""
        if name not in self.made:
            ca = self.ca(ca_name)
            ext = os.path.join(self.dir, name + ".ext")
            with open(ext, "w") as f:
                f.write("basicConstraints=CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyEncipherment\n")
                f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                        if server else "extendedKeyUsage=clientAuth\n")
            self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                          "-subj", "/CN=" + name)
            self._openssl("x509", "-req", "-in", name + ".csr", "-CA", ca["cert"], "-CAkey",
                          ca["key"], "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                          "-extfile", ext)
            self.made[name] = {"cert": os.path.join(self.dir, name + ".pem"),
                               "key": os.path.join(self.dir, name + ".key"),
                               "ca": ca["cert"], "cn": name}
        return self.made[name]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the fake Databricks ----------------------------------------------------

class Fake:
    """One fake_databricks.py process and a client for its control API."""

    def __init__(self, directory, ca, token, script=FAKE, name="fake", args=None):
        self.log_path = os.path.join(directory, name + ".log")
        self.log = open(self.log_path, "wb")
        args = args if args is not None else ["--token", token]
        self.proc = subprocess.Popen(
            DIE_WITH_PARENT
            + [sys.executable, script, "--port", "0", "--cert", ca["cert"], "--key", ca["key"]]
            + args, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        try:
            self.port = self._read_port(10 * SCALE)
        except BaseException:
            self.proc.kill()
            self.proc.wait(5)
            self.log.close()
            raise
        self.address = "127.0.0.1:%d" % self.port
        self.ssl = ssl.create_default_context(cafile=ca["ca"])

    def _read_port(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise Failure("fake Databricks did not print PORT= in time")
            chunk = os.read(self.proc.stdout.fileno(), 256)
            if not chunk:
                raise Failure("fake Databricks exited: " + open(self.log_path).read()[-500:])
            line += chunk
        sel.close()
        text = line.decode().strip()
        check(text.startswith("PORT="), "fake printed %r" % text)
        return int(text[5:])

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("https://%s%s" % (self.address, path), data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ssl, timeout=10 * SCALE) as resp:
            return json.loads(resp.read() or b"null")

    def script(self, steps, run_id=None):
        body = {"steps": steps}
        if run_id is not None:
            body["run_id"] = run_id
        self.control("POST", "/fake/script", body)

    def inject(self, method, path, answers):
        self.control("POST", "/fake/inject", {"method": method, "path": path, "answers": answers})

    def output(self, output, run_id=None, task_key=None):
        """runs/get-output fields for the tasks of next runs, or of run_id (one task_key)."""
        body = {"output": output}
        if run_id is not None:
            body["run_id"] = run_id
        if task_key is not None:
            body["task_key"] = task_key
        self.control("POST", "/fake/output", body)

    def forget(self, run_id, style):
        self.control("POST", "/fake/forget", {"run_id": run_id, "style": style})

    def config(self, **settings):
        self.control("POST", "/fake/config", settings)

    def requests(self, path_suffix=None):
        reqs = self.control("GET", "/fake/requests")
        if path_suffix is not None:
            reqs = [r for r in reqs if r["path"].endswith(path_suffix)]
        return reqs

    def runs(self):
        return self.control("GET", "/fake/runs")["runs"]

    def run(self, run_id):
        for r in self.runs():
            if r["run_id"] == run_id:
                return r
        raise Failure("fake has no run %s" % run_id)

    def bearer_tokens(self):
        """Every bearer token the fake was sent, to hunt for in the daemon's output."""
        return {r["headers"]["authorization"][len("Bearer "):] for r in self.requests()
                if r["headers"].get("authorization", "").startswith("Bearer ")}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.log.close()


class FakeKube(Fake):
    """One fake_kubernetes.py process, the service account directory a pod would have (its
    token, a canary, and the test CA as ca.crt), and a client for the fake's control API."""

    def __init__(self, directory, ca):
        self.sa_token = "k8s-sa-CANARY-" + secrets.token_hex(8)
        super().__init__(directory, ca, None, script=FAKE_KUBE, name="fake-k8s",
                         args=["--sa-token", self.sa_token])
        self.sa_dir = os.path.join(directory, "serviceaccount")
        os.makedirs(self.sa_dir, exist_ok=True)
        shutil.copy(ca["ca"], os.path.join(self.sa_dir, "ca.crt"))
        self.write_sa_token(self.sa_token)

    def write_sa_token(self, token):
        """Replaces the token file as the kubelet does: a new file renamed over the old name."""
        path = os.path.join(self.sa_dir, "token")
        with open(path + ".new", "w") as f:
            f.write(token)
        os.rename(path + ".new", path)

    def env(self):
        """The variables Kubernetes sets in a pod, pointing at this fake."""
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}

    def args(self):
        return ["--kubernetes-service-account-dir", self.sa_dir]

    def secret(self, namespace, name, token=None, data=None, delete=False):
        body = {"namespace": namespace, "name": name, "delete": delete,
                "data": data if data is not None else {"token": token}}
        self.control("POST", "/fake/secret", body)

    def inject(self, path, answers, repeat=False):
        self.control("POST", "/fake/inject", {"path": path, "answers": answers, "repeat": repeat,
                                              "clear": True})

    def requests(self, path_suffix=None):
        reqs = self.control("GET", "/fake/requests")
        return [r for r in reqs if path_suffix is None or r["path"].endswith(path_suffix)]


# ---- the daemon -------------------------------------------------------------

class Daemon:
    """One daemon process; stderr goes to a file."""

    def __init__(self, directory, binary, args, valgrind, extra_env=None, tls_client=None,
                 launcher=None, cwd=None):
        """tls_client: None for plaintext gRPC, else {"ca": path, "cert": path, "key": path}
        ("cert"/"key" optional) for the channels the harness opens. launcher: a command prefix
        that sets the child up and execs the rest (default DIE_WITH_PARENT; a launcher of
        its own ends with that too); cwd: its working directory (default
        `directory`, where its stderr goes in any case). A test that ends the daemon itself sets
        expected_exit to what the runner should then accept."""
        self.tls_client = tls_client
        self.expected_exit = 0
        self.valgrind = valgrind
        self.factor = VALGRIND_FACTOR if valgrind else 1.0
        self.directory = directory
        self.binary = binary
        self.launcher = launcher or DIE_WITH_PARENT
        self.cwd = cwd
        self.stderr_path = os.path.join(directory, "daemon.stderr")
        self.args = list(args)  # as given, for a replica started like this daemon
        self.extra_env = extra_env
        self.spawns = 0
        self.spawn()

    def spawn(self):
        """Starts the process on a free port (again, after a port taken meanwhile)."""
        self.spawns += 1
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.stderr = open(self.stderr_path, "wb")
        # "{port}" in an argument stands for the daemon's own gRPC port.
        args = [a.replace("{port}", str(self.port)) for a in self.args]
        # Every daemon gets its own metrics port unless a test chooses one:
        # the default 0.0.0.0:9090 would collide between tests and with the host.
        if not any(a == "--metrics-listen" or a.startswith("--metrics-listen=") for a in args):
            args = ["--metrics-listen", "127.0.0.1:0"] + list(args)
        # The pass's log format, before the test's own flags (a later flag wins).
        args = ["--log-format", LOG_FORMAT] + list(args)
        cmd = [self.binary, "--listen", self.address] + args
        if self.valgrind:
            if shutil.which("valgrind") is None:
                raise Failure("valgrind is not installed (make deps installs it)")
            cmd = VALGRIND_CMD + ["--log-file=" + os.path.join(self.directory, "valgrind.log")] + cmd
        check(self.binary is not None, "daemon binary %s missing (run make)" % DAEMON)
        # The daemon reads FLYTE_* (its settings, flytekit's secret places), _FSEC_* (flytekit's
        # secret variables), DATABRICKS_CLIENT_* (OAuth) and KUBERNETES_SERVICE_* (a runner in a
        # pod would otherwise make it ask the real cluster): start from a clean environment.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FLYTE_", "_FSEC_", "DATABRICKS_", "KUBERNETES_SERVICE_"))}
        env.update(self.extra_env or {})
        self.cmd = cmd
        self.proc = subprocess.Popen(self.launcher + cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr, env=env,
                                     cwd=self.cwd or self.directory)
        self.exit_code = None
        self.channel = self.new_channel()

    def new_channel(self, tls_client=None):
        """A channel to the daemon; tls_client overrides the daemon's own client settings."""
        return channel_to(self.address, tls_client or self.tls_client)

    def timeout(self, seconds):
        return seconds * SCALE * self.factor

    def wait_serving(self, health_pb2):
        """Polls Health/Check until SERVING. Each attempt uses a fresh channel: a channel
        that failed to connect before the daemon listened sits in reconnect backoff."""
        end = time.monotonic() + self.timeout(10)
        last = "no answer"
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                # free_port() cannot reserve its port: another socket may take it before the
                # daemon binds (an outgoing connection's local port, another run on the box).
                taken = "cannot listen on %s: Address already in use" % self.address
                if taken in self.stderr_text() and self.spawns < 3:
                    self.channel.close()
                    self.stderr.close()
                    self.spawn()
                    continue
                raise Failure("daemon exited with %d before serving: %s"
                              % (self.proc.returncode, self.stderr_tail(5)))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError as e:
                last = "connect: %s" % e
                time.sleep(0.02)
                continue
            channel = self.new_channel()
            call = channel.unary_unary(HEALTH, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=health_pb2.HealthCheckResponse.FromString)
            try:
                resp = call(health_pb2.HealthCheckRequest(service=""), timeout=0.5 * self.factor)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    self.channel.close()
                    self.channel = channel
                    return
                last = "status %d" % resp.status
            except grpc.RpcError as e:
                last = "%s %s" % (e.code(), e.details())
            channel.close()
            time.sleep(0.05)
        raise Failure("daemon not SERVING in time (%s)" % last)

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def events(self):
        """The daemon's log lines as dicts (text and JSON formats alike); other lines skipped."""
        return [e for e in (parse_log_line(line) for line in self.stderr_text().splitlines())
                if e is not None]

    def log_lines(self):
        """The daemon's log lines in key=value form whatever its log format: each event
        rendered as the text format writes it (values quoted where the daemon would quote
        them), so a test can match a line with one pattern in both log-format passes."""
        return [render_log_event(e) for e in self.events()]

    def logged(self, msg, **fields):
        """The first event with this msg whose fields include `fields`, else None."""
        for e in self.events():
            if e.get("msg") == msg and all(e.get(k) == v for k, v in fields.items()):
                return e
        return None

    def wait_logged(self, msg, timeout=5, **fields):
        """Waits (bounded) for an event as logged() finds it and gives it."""
        return wait_until(lambda: self.logged(msg, **fields), timeout * self.factor,
                          "log line %r %s" % (msg, fields or ""))

    def metrics_port(self):
        """The /metrics port the daemon logged at start."""
        return int(self.wait_logged("metrics listening")["port"])

    def stderr_tail(self, n):
        return " | ".join(self.stderr_text().strip().splitlines()[-n:])

    def exposures(self):
        """What a live daemon shows beyond its log and answers, for the canary check:
        [(where, text)] with its /metrics and its environment block (not under valgrind,
        whose own environment block holds what the daemon scrubs from its copy)."""
        out = []
        if self.proc.poll() is not None:
            return out
        metrics = self.logged("metrics listening")
        if metrics and metrics.get("port"):
            host = metrics.get("listen", "127.0.0.1:0").rsplit(":", 1)[0]
            host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
            try:
                with urllib.request.urlopen("http://%s:%s/metrics" % (host, metrics["port"]),
                                            timeout=5 * SCALE) as resp:
                    out.append(("/metrics", resp.read().decode("utf-8", "replace")))
            except Exception as e:  # a test may have broken the endpoint on purpose
                out.append(("note", "no /metrics scrape: %s" % e))
        if not self.valgrind:
            try:
                with open("/proc/%d/environ" % self.proc.pid, "rb") as f:
                    out.append(("/proc/PID/environ", f.read().decode("utf-8", "replace")))
            except OSError:
                pass
        return out

    def stop(self):
        """SIGTERM, bounded wait; returns the exit code (kills on timeout)."""
        if self.exit_code is not None:
            return self.exit_code
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.timeout(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.exit_code = "killed after SIGTERM timeout"
        if self.exit_code is None:
            self.exit_code = self.proc.returncode
        self.stderr.close()
        return self.exit_code


_TEXT_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def render_log_event(event):
    """An event (parse_log_line()) as one key=value line, quoted as the daemon's text format
    quotes: a value that is empty or holds a space, '"', '=', '\\' or a control character."""
    out = []
    for key, value in event.items():
        value = str(value)
        if value == "" or any(c in value for c in ' "=\\') or any(ord(c) < 32 or ord(c) == 127
                                                               for c in value):
            value = '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        out.append("%s=%s" % (key, value))
    return " ".join(out)


def parse_log_line(line):
    """One daemon log line (key=value text or a JSON object) as a dict, None otherwise."""
    line = line.strip()
    if line.startswith("{"):
        try:
            event = json.loads(line)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None
    if not line.startswith("time="):
        return None
    event, i, n = {}, 0, len(line)
    while i < n:
        eq_at = line.find("=", i)
        if eq_at < 0:
            return None
        key, i = line[i:eq_at], eq_at + 1
        if i < n and line[i] == '"':
            value, i = [], i + 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    if line[i + 1] == "x" and i + 3 < n:
                        value.append(chr(int(line[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    value.append(_TEXT_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 2
                    continue
                value.append(line[i])
                i += 1
            i += 1  # the closing quote
            event[key] = "".join(value)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            event[key] = line[i:end]
            i = end
        while i < n and line[i] == " ":
            i += 1
    return event


def channel_to(address, tls_client=None):
    """A gRPC channel: plaintext, or TLS with tls_client's CA (and client certificate)."""
    options = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 250),
               ("grpc.enable_retries", 0)]
    if not tls_client:
        return grpc.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=read_bytes(tls_client["ca"]),
        private_key=read_bytes(tls_client["key"]) if tls_client.get("key") else None,
        certificate_chain=read_bytes(tls_client["cert"]) if tls_client.get("cert") else None)
    return grpc.secure_channel(address, creds, options=options)


# ---- gRPC calls --------------------------------------------------------------

class Reply:
    """The outcome of one call: code (grpc.StatusCode), details, msg (None on error)."""

    def __init__(self, code, details, msg):
        self.code = code
        self.details = details or ""
        self.msg = msg

    def __repr__(self):
        return "Reply(%s, %r, %s)" % (self.code, self.details, self.msg)


class Env:
    """A fake Databricks plus a daemon using it, and gRPC helpers."""

    def __init__(self, test, fake, daemon, token):
        self.test = test
        self.fake = fake
        self.daemon = daemon
        self.token = token
        self.pb = test.pb

    def method(self, path):
        """The path of a task method, named by Flyte 1's path (CREATE, GET, ...), in the
        generation under test; other paths as they are."""
        if self.test.generation == 2 and path.startswith(SERVICE):
            return SERVICE2 + path[len(SERVICE):]
        return path

    # Raw call: request is a message or bytes; response_cls None gives bytes back.
    def call(self, method, request, response_cls=None, timeout=10, exact=False):
        """exact: the deadline is `timeout` (times TIMEOUT_SCALE) even under valgrind, for
        tests about what the daemon does with the deadline itself."""
        method = self.method(method)
        deadline = timeout * SCALE if exact else self.daemon.timeout(timeout)
        ser = (lambda b: b) if isinstance(request, (bytes, bytearray)) else \
            (lambda m: m.SerializeToString())
        des = response_cls.FromString if response_cls is not None else (lambda b: b)
        stub = self.daemon.channel.unary_unary(method, request_serializer=ser,
                                               response_deserializer=des)
        try:
            msg = stub(request, timeout=deadline)
            reply = Reply(grpc.StatusCode.OK, "", msg)
        except grpc.RpcError as e:
            reply = Reply(e.code(), e.details(), None)
        self.test.transcript.append("%s -> %s %s %s" % (method, reply.code, reply.details,
                                                        reply.msg))
        if reply.msg is not None and hasattr(reply.msg, "SerializeToString"):
            self.test.transcript.append(reply.msg.SerializeToString().decode("latin-1"))
        return reply

    def call_stream(self, method, request_bytes, timeout=10):
        method = self.method(method)
        stub = self.daemon.channel.unary_stream(method, request_serializer=lambda b: b,
                                                response_deserializer=lambda b: b)
        try:
            items = list(stub(request_bytes, timeout=self.daemon.timeout(timeout)))
            reply = Reply(grpc.StatusCode.OK, "", items)
        except grpc.RpcError as e:
            reply = Reply(e.code(), e.details(), None)
        self.test.transcript.append("%s -> %s %s %s" % (method, reply.code, reply.details,
                                                        reply.msg))
        return reply

    def ok(self, method, request, response_cls, timeout=10):
        reply = self.call(method, request, response_cls, timeout)
        if reply.code != grpc.StatusCode.OK:
            raise Failure("%s: expected OK, got %s %r" % (method.rsplit("/", 1)[1], reply.code,
                                                          reply.details))
        return reply.msg

    def fails(self, method, request, code, timeout=10, response_cls=None):
        reply = self.call(method, request, response_cls, timeout)
        if reply.code != code:
            raise Failure("%s: expected %s, got %s %r" % (method.rsplit("/", 1)[1], code,
                                                          reply.code, reply.details))
        return reply

    # Typed helpers.
    def create(self, request):
        return self.ok(CREATE, request, self.pb.admin.CreateTaskResponse)

    def get(self, resource_meta, category="spark", version=0, task_type=None, token=None):
        return self.ok(GET, self.get_request(resource_meta, category, version, task_type, token),
                       self.pb.admin.GetTaskResponse).resource

    def get_request(self, resource_meta, category="spark", version=0, task_type=None,
                    token=None):
        """token: Flyte 2's connection.secrets["databricks_token"] (None: no connection)."""
        req = self.pb.admin.GetTaskRequest(resource_meta=as_bytes(resource_meta))
        if task_type is not None:
            check(self.test.generation == 1, "Flyte 2 has no deprecated task_type")
            req.task_type = task_type
        if category is not None:
            req.task_category.name = category
            req.task_category.version = version
        return with_token(req, token)

    def delete(self, resource_meta, category="spark", token=None):
        return self.ok(DELETE, self.delete_request(resource_meta, category, token),
                       self.pb.admin.DeleteTaskResponse)

    def delete_request(self, resource_meta, category="spark", token=None):
        req = self.pb.admin.DeleteTaskRequest(resource_meta=as_bytes(resource_meta))
        if category is not None:
            req.task_category.name = category
        return with_token(req, token)

    def phase_name(self, phase):
        return self.pb.Phase.Phase.Name(phase)

    def concurrent_gets(self, metas, each):
        """GetTask `each` times for every resource_meta, all at once from threads; gives the
        replies once every call has answered (a hung call fails the test)."""
        replies, lock = [], threading.Lock()

        def poll(meta):
            reply = self.call(GET, self.get_request(meta), self.pb.admin.GetTaskResponse)
            with lock:
                replies.append(reply)

        threads = [threading.Thread(target=poll, args=(m,)) for m in metas for _ in range(each)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30 * self.daemon.factor)
        check(not any(th.is_alive() for th in threads), "GetTask calls hung")
        return replies


def with_token(req, token):
    """Gives Flyte 2's request `req` with connection.secrets["databricks_token"] = token, as the
    executor sends it; token None leaves the request without a connection."""
    if token is not None:
        req.connection.task_type = "databricks"
        req.connection.secrets["databricks_token"] = token
    return req


def raw_call(address, method, payload, timeout=10):
    """Calls method with request bytes `payload` through curl over plaintext HTTP/2 and gives
    (grpc-status as int, grpc-message as the raw bytes the server sent, percent-decoded).
    grpcio decodes a status message with errors="replace", which hides whether the server sent
    valid UTF-8; this shows the bytes themselves."""
    frame = b"\x00" + len(payload).to_bytes(4, "big") + payload
    res = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time",
                          str(timeout * SCALE), "-X", "POST", "-H", "content-type: application/grpc",
                          "-H", "te: trailers", "--data-binary", "@-", "-D", "-", "-o", "/dev/null",
                          "http://%s%s" % (address, method)], input=frame, capture_output=True,
                         timeout=timeout * SCALE + 10)
    check(res.returncode == 0, "curl failed: %s" % res.stderr.decode("utf-8", "replace"))
    status, message = None, b""
    for line in res.stdout.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"grpc-status":
            status = int(value.strip())
        elif name.strip().lower() == b"grpc-message":
            message = urllib.parse.unquote_to_bytes(value.strip())
    check(status is not None, "no grpc-status in %r" % res.stdout)
    return status, message


def as_bytes(value):
    if isinstance(value, dict):
        return json.dumps(value).encode()
    if isinstance(value, str):
        return value.encode()
    return value


# ---- one test -----------------------------------------------------------------

class Test:
    """Per-test state: temp dir, started processes, transcript, secrets to hunt for; the
    protocol generation it runs as (1 or 2) and that generation's messages (pb)."""

    def __init__(self, suite, name, generation=1):
        self.suite = suite
        self.generation = generation
        self.pb = suite.pb.of(generation)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=suite.dir)
        self.fakes = []
        self.daemons = []
        self.transcript = []
        self.secrets = []

    def kube(self):
        """Starts a fake Kubernetes API; give its env() and args() to start()."""
        kube = FakeKube(self.dir, self.suite.ca)
        self.fakes.append(kube)
        self.secrets.append(kube.sa_token)
        return kube

    def secret(self, kind="secret"):
        """A fresh canary for a secret of this kind (token, namespace-token, client-secret...),
        registered: "<kind>-fdcCANARY-<hex>", visible ASCII, safe in an HTTP header."""
        value = "%s-%s-%s" % (kind, CANARY_MARKER, secrets.token_hex(12))
        self.secrets.append(value)
        return value

    def register_secret(self, value):
        """Registers a secret the test did not make with secret(); gives it back."""
        self.secrets.append(value)
        return value

    def record(self, where, text):
        """Adds output a test got from the binary (a tool's stdout/stderr, check-config) to
        what the canary check reads."""
        self.transcript.append("%s: %s" % (where, text))

    def start(self, instance=True, token=None, fake_token=None, args=(), valgrind=None,
              wait=True, ca=True, env=None, tls_server=None, tls_client=None, token_file=True):
        """Starts a fake and a daemon. token: what the daemon's token file holds (default a
        fresh canary, which the fake also accepts unless fake_token differs). env: variables
        added to the daemon's environment. tls_server: {"cert", "key"[, "client_ca"]} paths
        the daemon serves gRPC TLS with; tls_client: what the harness's channels use then
        (see Daemon). token_file False: no --token-file (the token file is still written, for a
        test to put where it likes)."""
        token = token if token is not None else self.secret("dapi-token")
        self.secrets.append(token)
        for name, value in (env or {}).items():
            if name in SECRET_ENV_VARS:
                self.register_secret(value)
        fake_token = fake_token if fake_token is not None else token
        fake = Fake(self.dir, self.suite.ca, fake_token)
        self.fakes.append(fake)
        token_path = os.path.join(self.dir, "token-%d" % len(self.fakes))
        with open(token_path, "w") as f:
            f.write(token + "\n")
        os.chmod(token_path, 0o600)
        daemon_args = []
        if instance:
            daemon_args += ["--instance", fake.address]
        self.token_path = token_path
        daemon_args += (["--token-file", token_path] if token_file else []) + (
            ["--ca-file", self.suite.ca["ca"]] if ca else []) + ["--log-level", "debug"] + list(args(fake) if callable(args) else args)
        if tls_server:
            daemon_args += ["--tls-cert", tls_server["cert"], "--tls-key", tls_server["key"]]
            if tls_server.get("client_ca"):
                daemon_args += ["--tls-client-ca", tls_server["client_ca"]]
        use_valgrind = VALGRIND_ALL if valgrind is None else valgrind
        use_valgrind = use_valgrind and not SANITIZED
        daemon = Daemon(self.dir, self.suite.daemon, daemon_args, use_valgrind, env, tls_client)
        self.daemons.append(daemon)
        if wait:
            daemon.wait_serving(self.pb.health)
        return Env(self, fake, daemon, token)

    def start_replica(self, env):
        """Another daemon started like env's, against the same fake, in a directory of its
        own (each daemon writes its own daemon.stderr). Gives the Daemon once it serves."""
        directory = os.path.join(self.dir, "replica-%d" % len(self.daemons))
        os.mkdir(directory)
        daemon = Daemon(directory, self.suite.daemon, env.daemon.args, env.daemon.valgrind,
                        env.daemon.extra_env, env.daemon.tls_client)
        self.daemons.append(daemon)
        daemon.wait_serving(self.pb.health)
        return daemon

    def write_config(self, settings):
        """Writes a JSON config file holding `settings` (a dict) into the test's directory;
        gives its path, for --config."""
        path = os.path.join(self.dir, "config-%d.json" % len(os.listdir(self.dir)))
        with open(path, "w") as f:
            json.dump(settings, f)
        return path

    def finish(self, failed):
        """Stops everything; raises Failure for a bad exit or a leaked secret."""
        problems = []
        exposed = []
        for daemon in self.daemons:
            exposed += daemon.exposures()
        for daemon in self.daemons:
            code = daemon.stop()
            if code == 99 and daemon.valgrind:
                problems.append("valgrind found errors or leaks (see %s)"
                                % os.path.join(self.dir, "valgrind.log"))
                self.suite.keep = True
            elif code != daemon.expected_exit:
                problems.append("daemon exit code %s after SIGTERM" % code)
            # Sanitizer reports fail the test even when the exit code hides them.
            report = [m for m in SANITIZER_MARKERS if m in daemon.stderr_text()]
            if report:
                problems.append("sanitizer report (%s) in %s" % (report[0].strip(" :"),
                                                                 daemon.stderr_path))
                self.suite.keep = True
        for fake in self.fakes:
            fake.stop()
        problems += self.leaks(
            [("daemon output", d.stderr_text()) for d in self.daemons] +
            [("answers and tool output", text) for text in self.transcript] + exposed)
        if problems and not failed:
            raise Failure("; ".join(problems))
        return problems

    def leaks(self, texts):
        """Problems for every registered secret, and every canary marker, found in texts
        [(where, text)]."""
        problems = []
        for needle in list(dict.fromkeys(self.secrets)) + [CANARY_MARKER]:
            for where, text in texts:
                if where != "note" and needle and needle in text:
                    problems.append("secret %r leaked in %s: ...%s..." % (
                        needle[:16], where, excerpt(text, needle)))
                    break
        return problems

    def context(self, lines=12):
        """Daemon stderr tails, for a failure report."""
        out = []
        for d in self.daemons:
            tail = d.stderr_text().strip().splitlines()[-lines:]
            out += ["    daemon: " + line for line in tail]
        return out


def excerpt(text, needle):
    i = text.find(needle)
    return text[max(0, i - 60):i + len(needle) + 20].replace("\n", "\\n")


class Suite:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fdc-e2e.")
        self.keep = os.environ.get("KEEP", "") == "1"
        self.pb = Protos()
        self.ca = make_ca(self.dir)
        self.pki = Pki(self.dir)
        # A private copy: a concurrent `make` relinking the binary must not disturb the run.
        self.daemon = None
        if os.access(DAEMON, os.X_OK):
            self.daemon = os.path.join(self.dir, "flyte-databricks-connector")
            shutil.copy2(DAEMON, self.daemon)

    def close(self):
        if self.keep:
            print("# temp files kept in %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- Flyte requests ------------------------------------------------------------

IMAGE = "ghcr.io/flyteorg/flytekit:py3.11-1.14.0"
ARGS = ["pyflyte-fast-execute", "--additional-distribution", "s3://bucket/fast/abc.tar.gz", "--",
        "pyflyte-execute", "--inputs", "s3://bucket/metadata/inputs.pb", "--output-prefix",
        "s3://bucket/data/n0/0", "--resolver", "flytekit.core.python_auto_container.default_task_resolver",
        "--", "task-module", "workflows.spark", "task-name", "hello_spark"]
ENV = [("FLYTE_INTERNAL_EXECUTION_ID", "f1b2c3d4e5"), ("GREETING", "hello world")]
SPARK_CONF = {"spark.driver.memory": "1000M", "spark.executor.instances": "2"}


def databricks_conf(**override):
    """A user's databricksConf in Jobs API shape (classic new_cluster)."""
    conf = {"run_name": "flytekit databricks plugin example",
            "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge",
                            "num_workers": 2},
            "timeout_seconds": 3600, "max_retries": 1}
    conf.update(override)
    return {k: v for k, v in conf.items() if v is not None}


def custom_config(conf=None, instance=None, **extra):
    """The task's `custom` as flytekit's Databricks task writes it."""
    custom = {"sparkConf": SPARK_CONF, "mainApplicationFile": "local:///usr/local/bin/entrypoint.py",
              "executorPath": "/usr/bin/python3", "applicationType": "PYTHON",
              "databricksConf": databricks_conf() if conf is None else conf}
    if instance is not None:
        custom["databricksInstance"] = instance
    custom.update(extra)
    return {k: v for k, v in custom.items() if v is not None}


def wire_varint(n):
    """A protobuf varint."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def wire_field(number, payload):
    """One length-delimited protobuf field (wire type 2), written by hand."""
    return wire_varint(number << 3 | 2) + wire_varint(len(payload)) + payload


def deep_struct(levels):
    """A google.protobuf.Struct {"k": [[[...]]]} nesting two messages per level (Value,
    ListValue): far deeper than any task, small on the wire. Python's protobuf cannot build
    it (recursion limit), so it is written by hand, from the inside out in linear time
    (Value.list_value = 6, ListValue.values = 1)."""
    prefixes, length = [], 0
    for _ in range(levels):
        inner = b"\x0a" + wire_varint(length)
        length += len(inner)
        outer = b"\x32" + wire_varint(length)
        length += len(outer)
        prefixes.append(outer + inner)
    value = b"".join(reversed(prefixes))
    return wire_field(1, wire_field(1, b"k") + wire_field(2, value))  # Struct.fields entry


def create_request(pb, custom=None, retry_attempt=0, node_id="n0", execution="f1b2c3d4e5",
                   template=True, task_type="spark", metadata=True, image=IMAGE, token=None):
    """A CreateTaskRequest of pb's generation; token: Flyte 2's connection secret."""
    req = pb.admin.CreateTaskRequest(output_prefix="s3://bucket/data/n0/0")
    if template:
        tpl = req.template
        tpl.type = task_type
        tpl.id.resource_type = pb.identifier.TASK
        tpl.id.project, tpl.id.domain = "flytesnacks", "development"
        tpl.id.name, tpl.id.version = "workflows.spark.hello_spark", "v1"
        tpl.container.image = image
        tpl.container.args.extend(ARGS)
        for key, value in ENV:
            tpl.container.env.add(key=key, value=value)
        if custom is not None:
            tpl.custom.update(custom)
    if metadata:
        md = req.task_execution_metadata
        tid = md.task_execution_id
        tid.task_id.resource_type = pb.identifier.TASK
        tid.task_id.project, tid.task_id.domain = "flytesnacks", "development"
        tid.task_id.name, tid.task_id.version = "workflows.spark.hello_spark", "v1"
        tid.node_execution_id.node_id = node_id
        ex = tid.node_execution_id.execution_id
        ex.project, ex.domain, ex.name = "flytesnacks", "development", execution
        tid.retry_attempt = retry_attempt
        md.namespace = "flytesnacks-development"
        md.k8s_service_account = "default"
        md.labels["team"] = "data"
    return with_token(req, token)


def resource_meta_of(reply_msg):
    """Parses CreateTaskResponse.resource_meta (must be UTF-8 JSON)."""
    try:
        return json.loads(reply_msg.resource_meta.decode("utf-8"))
    except ValueError as e:
        raise Failure("resource_meta is not JSON (%s): %r" % (e, reply_msg.resource_meta))
