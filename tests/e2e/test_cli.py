"""The client commands of the one binary: agents, submit, status, cancel, logs.

Each test runs `$DAEMON <command> ...` as a subprocess (bounded by a timeout) against a real
daemon and the fake Databricks, or against a small Python gRPC server (`Capture`) that records
the raw requests, where the bytes the client sends matter (inputs pass-through, task category,
TLS with a client certificate).
"""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from concurrent import futures

import grpc
from google.protobuf import json_format

import harness
from harness import (DAEMON, IMAGE, SCALE, Failure, check, create_request, custom_config, eq,
                     wait_until)

PROGRAM = "flyte-databricks-connector"
SUBMIT, RUNS_GET, CANCEL = "/runs/submit", "/runs/get", "/runs/cancel"
RUN_TIMEOUT = 30  # seconds, scaled: bound on any one client invocation
PHASE_LINE = re.compile(r"^\s*\d+(?:\.\d+)?s ([A-Z_]+)(?::|\s|$)")
ERROR_LINE = re.compile(r"^%s [a-z]+: \S" % PROGRAM)


# ---- helpers ------------------------------------------------------------------

# VALGRIND=1 runs the clients under valgrind too (exit 99: memory errors or leaks).
CLIENT_VALGRIND = harness.VALGRIND_ALL
CLIENT_FACTOR = harness.VALGRIND_FACTOR if CLIENT_VALGRIND else 1.0


def client_cmd(t, *args):
    cmd = [t.suite.daemon or DAEMON] + [str(a) for a in args]
    if CLIENT_VALGRIND:
        log = os.path.join(t.dir, "valgrind-client-%d.log" % len(t.transcript))
        cmd = harness.VALGRIND_CMD + ["--log-file=" + log] + cmd
    t.transcript.append("note: run " + " ".join(cmd))
    return cmd


def check_valgrind(code, what):
    if CLIENT_VALGRIND and code == 99:
        raise Failure("valgrind found errors or leaks in the client (%s)" % what)


def client_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}


def cli(t, *args, timeout=RUN_TIMEOUT, stdout_path=None):
    """Runs `$DAEMON args...`; returns (exit code, stdout, stderr). stdout goes through a file
    when stdout_path is given (so it is surely not a terminal)."""
    cmd = client_cmd(t, *args)
    out_file = open(stdout_path, "w+b") if stdout_path else None
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                             stdout=out_file if out_file else subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=timeout * SCALE * CLIENT_FACTOR,
                             env=client_env(), cwd=t.dir)
    except subprocess.TimeoutExpired:
        raise Failure("%s did not finish within %ss" % (" ".join(args[:1]),
                                                       timeout * SCALE * CLIENT_FACTOR))
    finally:
        if out_file:
            out_file.close()
    if stdout_path:
        with open(stdout_path, "rb") as f:
            out = f.read()
    else:
        out = res.stdout
    out, err = out.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")
    t.transcript.append("note: exit %d\n%s\n%s" % (res.returncode, out, err))
    check_valgrind(res.returncode, " ".join(str(a) for a in args[:1]))
    return res.returncode, out, err


def one_error_line(err, command, *words):
    lines = err.strip().splitlines()
    eq(len(lines), 1, "stderr lines (%r)" % err)
    check(lines[0].startswith("%s %s: " % (PROGRAM, command)), "error line prefix: %r" % lines[0])
    for w in words:
        check(w in lines[0], "error line should contain %r: %r" % (w, lines[0]))


def write(t, name, data):
    path = os.path.join(t.dir, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def template_json(t, **kw):
    """A flytekit-shaped TaskTemplate as MessageToJson writes it (camelCase)."""
    kw.setdefault("custom", custom_config())
    req = create_request(t.pb, **kw)
    return json_format.MessageToJson(req.template)


def template_file(t, name="template.json", **kw):
    return write(t, name, template_json(t, **kw))


def phase_lines(out):
    return [m.group(1) for m in (PHASE_LINE.match(line) for line in out.splitlines()) if m]


def addr(env):
    return ["--addr", env.daemon.address]


class Capture:
    """A gRPC server (a child process: this file run as a script, so gRPC's own log lines about
    refused handshakes go to a file) answering some methods with fixed bytes and recording every
    raw request, optionally over TLS with a required client certificate."""

    def __init__(self, t, answers, tls=None):
        self.record = os.path.join(t.dir, "capture-%d.jsonl" % len(os.listdir(t.dir)))
        config = write(t, os.path.basename(self.record) + ".config", json.dumps({
            "answers": {m: a.hex() for m, a in answers.items()}, "tls": tls,
            "record": self.record}))
        self.log = open(self.record + ".log", "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--capture",
                                      config], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log)
        line = b""
        end = time.monotonic() + 20 * SCALE
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if time.monotonic() > end or (not ready and self.proc.poll() is not None):
                self.stop()
                raise Failure("capture server did not start")
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk:
                    self.stop()
                    raise Failure("capture server exited")
                line += chunk
        self.address = "127.0.0.1:%d" % int(line.decode().strip()[len("PORT="):])

    @property
    def requests(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [(r["method"], bytes.fromhex(r["request"]))
                    for r in map(json.loads, f.read().splitlines())]

    def of(self, method):
        return [r for m, r in self.requests if m == method]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def capture_main(config_path):
    """The capture server process (see Capture)."""
    import threading
    with open(config_path) as f:
        config = json.load(f)
    answers = {m: bytes.fromhex(a) for m, a in config["answers"].items()}
    lock = threading.Lock()

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            method = details.method
            if method not in answers:
                return None

            def handle(request, context):
                with lock, open(config["record"], "a") as f:
                    f.write(json.dumps({"method": method, "request": request.hex()}) + "\n")
                return answers[method]
            return grpc.unary_unary_rpc_method_handler(handle)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([Handler()])
    tls = config["tls"]
    if tls:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_server_credentials([(read(tls["key"]), read(tls["cert"]))],
                                            root_certificates=read(tls["ca"]),
                                            require_client_auth=True)
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("PORT=%d" % port, flush=True)
    stop.wait()
    server.stop(0)


def client_certificate(t):
    """A client certificate signed by the suite's test CA; returns (cert, key) paths."""
    ca_dir = os.path.dirname(t.suite.ca["ca"])
    cert, key = os.path.join(t.dir, "client.pem"), os.path.join(t.dir, "client.key")
    csr = os.path.join(t.dir, "client.csr")
    ext = write(t, "client.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for cmd in (["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=fdc cli"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", t.suite.ca["ca"], "-CAkey",
                 os.path.join(ca_dir, "ca.key"), "-CAcreateserial", "-out", cert, "-days", "2",
                 "-extfile", ext]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise Failure("openssl failed: " + res.stderr)
    return cert, key


def inputs_bytes():
    """A LiteralMap {"x": 42} written by hand (our Literal subset has no fields to set)."""
    primitive = b"\x08\x2a"                                   # Primitive.integer = 42
    scalar = b"\x0a" + bytes([len(primitive)]) + primitive   # Scalar.primitive
    literal = b"\x0a" + bytes([len(scalar)]) + scalar        # Literal.scalar
    entry = b"\x0a\x01x\x12" + bytes([len(literal)]) + literal
    return b"\x0a" + bytes([len(entry)]) + entry


# ---- agents ---------------------------------------------------------------------

def test_cli_agents_table(t):
    env = t.start()
    code, out, err = cli(t, "agents", *addr(env))
    eq((code, err), (0, ""), "agents exit code and stderr")
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]
    eq(rows[0], ["NAME", "TASK TYPE", "VERSION", "SYNC"], "table header")
    eq(sorted(rows[1:]), [["Databricks Connector", "databricks", "0", "no"],
                          ["Databricks Connector", "spark", "0", "no"]], "table rows")
    # Columns line up: every row starts its second column where the header does.
    col = out.splitlines()[0].index("TASK TYPE")
    for line in out.splitlines()[1:]:
        check(line[col - 2:col] == "  " and line[col] != " ", "column misaligned: %r" % line)


def test_cli_agents_daemon_down(t):
    port = harness.free_port()
    code, out, err = cli(t, "agents", "--addr", "127.0.0.1:%d" % port, "--timeout", "2")
    eq(code, 1, "exit code with no daemon")
    one_error_line(err, "agents", "ListAgents failed: UNAVAILABLE", "127.0.0.1:%d" % port)
    eq(out, "", "stdout")


# ---- submit -----------------------------------------------------------------------

def test_cli_submit_prints_resource_meta(t):
    env = t.start()
    code, out, err = cli(t, "submit", template_file(t), *addr(env), "--namespace", "ns1")
    eq((code, err), (0, ""), "submit exit code and stderr")
    lines = out.splitlines()
    eq(len(lines), 1, "stdout lines")
    eq(json.loads(lines[0]), {"databricks_instance": env.fake.address, "run_id": "1000"},
       "resource_meta")
    body = env.fake.requests(SUBMIT)[0]["body"]
    eq(body["new_cluster"]["docker_image"]["url"], IMAGE, "docker image from the template")
    eq(body["new_cluster"]["num_workers"], 2, "num_workers from custom (Struct number)")
    token = body.get("idempotency_token")
    check(isinstance(token, str) and len(token) == 64, "idempotency token: %r" % token)
    # A second submit is a new execution name, hence a new token and a new run.
    code, out2, _ = cli(t, "submit", template_file(t), *addr(env))
    eq(code, 0, "second submit")
    eq(json.loads(out2)["run_id"], "1001", "second run")
    check(env.fake.requests(SUBMIT)[1]["body"]["idempotency_token"] != token,
          "second submit reused the idempotency token")


def test_cli_submit_wait_succeeds_plain_output(t):
    env = t.start()
    env.fake.script([
        {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"},
        {"life_cycle_state": "PENDING", "state_message": "Still waiting"},
        {"life_cycle_state": "RUNNING", "state_message": "In run"},
        {"life_cycle_state": "RUNNING", "state_message": "In run"},
        {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
    ])
    out_path = os.path.join(t.dir, "stdout.txt")
    code, out, err = cli(t, "submit", template_file(t), *addr(env), "--wait", "--interval",
                         "0.2", stdout_path=out_path)
    eq((code, err), (0, ""), "submit --wait exit code and stderr")
    check("\x1b" not in out and "\r" not in out, "escape codes in redirected output: %r" % out)
    lines = out.splitlines()
    eq(json.loads(lines[0])["run_id"], "1000", "first line: resource_meta")
    eq(phase_lines(out), ["INITIALIZING", "RUNNING"], "one line per phase change")
    finals = [line for line in lines if line.startswith("SUCCEEDED after ")]
    eq(len(finals), 1, "final SUCCEEDED line in %r" % out)
    url = env.fake.run(1000)["run_page_url"]
    check(any(line == "log: %s (Databricks Console)" % url for line in lines),
          "log link line in %r" % out)
    eq(len(env.fake.requests(RUNS_GET)), 5, "runs/get polls")


def test_cli_submit_wait_failed_run(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"},
                     {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": "boom: division by zero"}])
    code, out, err = cli(t, "submit", template_file(t), *addr(env), "--wait", "--interval", "0.2")
    eq(code, 3, "exit code of a failed run")
    eq(err, "", "stderr")
    final = [line for line in out.splitlines() if " after " in line]
    eq(len(final), 1, "final line in %r" % out)
    check(re.match(r"^(RETRYABLE_FAILED|FAILED) after \d", final[0]), "final line %r" % final[0])
    check("boom: division by zero" in final[0], "message in the final line: %r" % final[0])
    check(any(line.startswith("error: ") for line in out.splitlines()),
          "agent error line in %r" % out)


def test_cli_submit_wait_live_line_on_terminal(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"},
                     {"life_cycle_state": "RUNNING", "state_message": "In run"},
                     {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}])
    master, slave = pty.openpty()
    proc = subprocess.Popen(client_cmd(t, "submit", template_file(t), *addr(env), "--wait",
                                       "--interval", "0.2"), stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=client_env(), cwd=t.dir)
    os.close(slave)
    data = b""
    end = time.monotonic() + RUN_TIMEOUT * SCALE * CLIENT_FACTOR
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
        proc.wait(5 * SCALE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        proc.stderr.close()
    text = data.decode("utf-8", "replace")
    t.transcript.append("note: terminal output %r" % text)
    check_valgrind(proc.returncode, "submit on a terminal")
    eq(proc.returncode, 0, "exit code on a terminal")
    check("\r\x1b[2K" in text, "live line is rewritten with \\r and clear-line: %r" % text)
    check(re.search(r"\x1b\[2KINITIALIZING  \d", text), "live INITIALIZING line: %r" % text)
    check("SUCCEEDED after " in text, "final line: %r" % text)
    eq(phase_lines(text.replace("\r", "\n")), [], "no plain per-phase lines on a terminal")


def test_cli_submit_sigint_cancels(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"}])
    out_path = os.path.join(t.dir, "stdout.txt")
    with open(out_path, "wb") as out_file:
        proc = subprocess.Popen(client_cmd(t, "submit", template_file(t), *addr(env), "--wait",
                                           "--interval", "0.2"), stdin=subprocess.DEVNULL,
                                stdout=out_file,
                                stderr=subprocess.PIPE, env=client_env(), cwd=t.dir)
        try:
            wait_until(lambda: len(env.fake.requests(RUNS_GET)) >= 2, 20 * CLIENT_FACTOR,
                       "the client polling")
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=20 * SCALE * CLIENT_FACTOR)
            except subprocess.TimeoutExpired:
                raise Failure("client did not exit within 20 s of SIGINT")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    out = open(out_path).read()
    t.transcript.append("note: stdout %r stderr %r" % (out, err))
    check_valgrind(proc.returncode, "submit --wait, SIGINT")
    eq(proc.returncode, 130, "exit code after SIGINT")
    cancels = env.fake.requests(CANCEL)
    eq(len(cancels), 1, "runs/cancel requests")
    eq(str(cancels[0]["body"]["run_id"]), "1000", "cancelled run")
    check("cancelled" in out.splitlines()[-1], "last line says it cancelled: %r" % out)
    eq(err, b"", "stderr")


def test_cli_submit_bad_inputs(t):
    missing = os.path.join(t.dir, "nope.json")
    cases = [
        ([missing], "cannot read '%s': No such file or directory" % missing),
        ([write(t, "bad.json", '{"type": "spark",\n "id": }')], "invalid JSON at line 2"),
        ([write(t, "array.json", "[1, 2]")], "not a TaskTemplate: the top-level value is an "
                                             "array"),
        ([write(t, "request.json", json_format.MessageToJson(
            create_request(t.pb, custom=custom_config())))], "not a TaskTemplate: it looks like "
                                                             "a CreateTaskRequest"),
        ([write(t, "meta.json", '{"databricks_instance": "x.cloud.databricks.com", '
                                '"run_id": "5"}')], "not a TaskTemplate"),
        ([write(t, "types.json", '{"type": "spark", "container": {"args": ["a", 1]}}')],
         "container.args[1]: expected a string, got a number"),
        ([write(t, "t.pb", b"\xff\xff\xff")], "is not a binary flyteidl.core.TaskTemplate"),
        ([template_file(t), "--inputs", write(t, "in.json", "{}")], "only binary .pb inputs"),
        ([template_file(t), "--inputs", os.path.join(t.dir, "no.pb")], "cannot read"),
        ([template_file(t), "--interval", "0"], "--interval"),
        ([], "missing TEMPLATE"),
        (["a.json", "b.json"], "expected one TEMPLATE"),
        (["--frobnicate", "a.json"], "unknown option '--frobnicate'"),
        ([template_file(t), "--cert", "c.pem"], "--cert and --key go together"),
    ]
    port = harness.free_port()  # nothing listens: none of these may get as far as a call
    for args, words in cases:
        code, out, err = cli(t, "submit", *args, "--addr", "127.0.0.1:%d" % port)
        eq(code, 2, "exit code for %r" % args)
        eq(out, "", "stdout for %r" % args)
        one_error_line(err, "submit", words)


# ---- status and cancel --------------------------------------------------------------

def test_cli_status_and_cancel_string_and_file(t):
    env = t.start()
    code, meta, _ = cli(t, "submit", template_file(t), *addr(env))
    eq(code, 0, "submit")
    meta = meta.strip()
    meta_file = write(t, "meta.json", meta + "\n")
    url = env.fake.run(1000)["run_page_url"]

    code, out, err = cli(t, "status", meta, *addr(env))
    eq((code, err), (0, ""), "status with a string")
    lines = out.splitlines()
    eq(lines[0], "phase: INITIALIZING", "phase line")
    eq(lines[1], "message: Waiting for cluster", "message line")
    eq(lines[2], "log: %s (Databricks Console)" % url, "log line")

    code, out, err = cli(t, "status", meta_file, *addr(env))
    eq((code, err), (0, ""), "status with a file")
    eq(out.splitlines()[0], "phase: RUNNING", "phase line")

    code, out, err = cli(t, "status", meta_file, *addr(env), "--watch", "--interval", "0.2")
    eq((code, err), (0, ""), "status --watch")
    check(out.splitlines()[-2].startswith("SUCCEEDED after "), "final line in %r" % out)

    code, out, err = cli(t, "cancel", meta, *addr(env))
    eq((code, err, out), (0, "", "cancel requested\n"), "cancel with a string")
    code, out, err = cli(t, "cancel", meta_file, *addr(env), "--task-type", "databricks")
    eq((code, err, out), (0, "", "cancel requested\n"), "cancel with a file")
    eq([str(r["body"]["run_id"]) for r in env.fake.requests(CANCEL)], ["1000", "1000"],
       "runs/cancel requests")


def test_cli_status_watch_failed_and_interrupted(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
                      "state_message": "Run cancelled."}])
    code, meta, _ = cli(t, "submit", template_file(t), *addr(env))
    eq(code, 0, "submit")
    code, out, err = cli(t, "status", meta.strip(), *addr(env), "--watch", "--interval", "0.2")
    eq(code, 3, "status --watch of a cancelled run")
    check(out.startswith("ABORTED after "), "final line %r" % out)

    # SIGINT while watching only stops watching: no cancel.
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"}])
    code, meta, _ = cli(t, "submit", template_file(t), *addr(env))
    proc = subprocess.Popen(client_cmd(t, "status", meta.strip(), *addr(env), "--watch",
                                       "--interval", "0.2"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client_env())
    try:
        wait_until(lambda: len([r for r in env.fake.requests(RUNS_GET)
                                if "1001" in r["raw_query"]]) >= 2,
                   20 * CLIENT_FACTOR, "the client polling")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20 * SCALE * CLIENT_FACTOR)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    check_valgrind(proc.returncode, "status --watch, SIGINT")
    eq(proc.returncode, 130, "exit code after SIGINT")
    eq(env.fake.requests(CANCEL), [], "runs/cancel requests")
    check(b"the run goes on" in out, "message: %r" % out)


def test_cli_status_cancel_bad_inputs(t):
    missing = os.path.join(t.dir, "nope.json")
    port = harness.free_port()
    for command in ("status", "cancel"):
        cases = [
            ([missing], "cannot read '%s': No such file or directory" % missing),
            (['{"databricks_instance": '], "resource_meta"),
            ([write(t, "bad.json", "{nope")], "bad.json"),
            (['{"run_id": "1"}'], "databricks_instance"),
            ([write(t, "empty.json", "\n")], "is empty"),
            ([], "missing RESOURCE_META"),
            (['{"databricks_instance": "h.example.com", "run_id": "1"}', "--timeout", "-1"],
             "--timeout"),
            (['{"databricks_instance": "h.example.com", "run_id": "1"}', "--addr", "nohost"],
             "--addr"),
        ]
        for args, words in cases:
            code, out, err = cli(t, command, *args, "--addr", "127.0.0.1:%d" % port)
            if "--addr" in args[1:]:
                code, out, err = cli(t, command, *args)
            eq(code, 2, "%s exit code for %r" % (command, args))
            eq(out, "", "%s stdout for %r" % (command, args))
            one_error_line(err, command, words)


def test_cli_status_cancel_call_fails(t):
    env = t.start()
    meta = json.dumps({"databricks_instance": env.fake.address, "run_id": "1000"})
    for command in ("status", "cancel"):
        code, out, err = cli(t, command, meta, *addr(env), "--task-type", "nosuch")
        eq((code, out), (1, ""), "%s with a task type the daemon does not serve" % command)
        one_error_line(err, command, "%s failed: " % ("GetTask" if command == "status"
                                                       else "DeleteTask"))


# ---- exact bytes, against a capturing server ------------------------------------------

def test_cli_requests_on_the_wire(t):
    pb = t.pb
    answers = {
        harness.CREATE: pb.admin.CreateTaskResponse(
            resource_meta=b'{"databricks_instance":"h.example.com","run_id":"7"}')
        .SerializeToString(),
        harness.GET: pb.admin.GetTaskResponse(resource=pb.admin.Resource(
            phase=pb.Phase.Phase.Value("RUNNING"), message="m")).SerializeToString(),
        harness.DELETE: b"",
    }
    cap = Capture(t, answers)
    try:
        inputs = inputs_bytes()
        pb.literals.LiteralMap.FromString(inputs)  # well-formed
        tpl = create_request(pb, custom=custom_config()).template
        tpl_pb = write(t, "template.pb", tpl.SerializeToString())
        code, out, err = cli(t, "submit", tpl_pb, "--addr", cap.address, "--inputs",
                             write(t, "inputs.pb", inputs), "--namespace", "ns-a",
                             "--task-type", "databricks")
        eq((code, err), (0, ""), "submit to the capture server")
        eq(out, '{"databricks_instance":"h.example.com","run_id":"7"}\n', "resource_meta")
        raw = cap.of(harness.CREATE)[0]
        check(raw.endswith(b"\x0a" + bytes([len(inputs)]) + inputs),
              "inputs not passed through byte for byte")
        req = pb.admin.CreateTaskRequest.FromString(raw)
        expected = pb.tasks.TaskTemplate()
        expected.CopyFrom(tpl)
        expected.type = "databricks"
        eq(req.template, expected, "template (binary, type from --task-type)")
        md = req.task_execution_metadata
        eq(md.namespace, "ns-a", "namespace")
        eq(md.task_execution_id.task_id, tpl.id, "task_id is the template id")
        ex = md.task_execution_id.node_execution_id
        eq(ex.node_id, "n0", "node id")
        check(re.match(r"^cli-\d+-\d+$", ex.execution_id.name), "execution name %r"
              % ex.execution_id.name)
        eq((ex.execution_id.project, ex.execution_id.domain), ("flytesnacks", "development"),
           "execution project/domain")

        meta = '{"databricks_instance":"h.example.com","run_id":"7"}'
        code, out, err = cli(t, "status", meta, "--addr", cap.address, "--task-type",
                             "databricks")
        eq((code, out), (0, "phase: RUNNING\nmessage: m\n"), "status output")
        get = pb.admin.GetTaskRequest.FromString(cap.of(harness.GET)[0])
        eq((get.task_category.name, get.task_category.version), ("databricks", 0), "category")
        eq(get.resource_meta, meta.encode(), "resource_meta sent as given")
        code, out, err = cli(t, "cancel", meta, "--addr", cap.address)
        eq((code, out), (0, "cancel requested\n"), "cancel output")
        delete = pb.admin.DeleteTaskRequest.FromString(cap.of(harness.DELETE)[0])
        eq((delete.task_category.name, delete.task_category.version), ("spark", 0),
           "default category")

        # JSON in snake_case gives the same template as the binary form.
        snake = json_format.MessageToJson(tpl, preserving_proto_field_name=True)
        code, _, err = cli(t, "submit", write(t, "snake.json", snake), "--addr", cap.address)
        eq((code, err), (0, ""), "submit snake_case JSON")
        eq(pb.admin.CreateTaskRequest.FromString(cap.of(harness.CREATE)[1]).template, tpl,
           "template from snake_case JSON")
        check(not pb.admin.CreateTaskRequest.FromString(cap.of(harness.CREATE)[1])
              .HasField("inputs"), "inputs sent without --inputs")
    finally:
        cap.stop()


def test_cli_deeply_nested_messages_refused(t):
    """protobuf-c unpacks recursively: 20,000 nested levels in a GetTask answer or a template
    file would overflow the CLI's stack. Each is refused with one error line naming the
    depth. (The other answers and the inputs file have no recursive field in our subset.)"""
    deep = harness.deep_struct(20000)
    cap = Capture(t, {harness.GET: harness.wire_field(1, harness.wire_field(6, deep))})
    try:  # GetTaskResponse.resource.custom_info
        meta = '{"databricks_instance":"h.example.com","run_id":"7"}'
        code, out, err = cli(t, "status", meta, "--addr", cap.address)
        eq((code, out), (1, ""), "status of a deeply nested answer: exit code, stdout")
        one_error_line(err, "status", "GetTask", "nests deeper than")
        tpl = write(t, "deep.pb", harness.wire_field(5, deep))  # TaskTemplate.custom
        code, out, err = cli(t, "submit", tpl, "--addr", cap.address)
        eq((code, out), (2, ""), "submit of a deeply nested template: exit code, stdout")
        one_error_line(err, "submit", "deep.pb", "nests deeper than")
        eq(cap.of(harness.CREATE), [], "CreateTask calls after a refused template")
    finally:
        cap.stop()


def test_cli_tls_client_certificate(t):
    ca = t.suite.ca
    list_agents = t.pb.admin.ListAgentsResponse(agents=[t.pb.admin.Agent(
        name="Captured", is_sync=True,
        supported_task_categories=[t.pb.admin.TaskCategory(name="spark", version=3)])])
    cap = Capture(t, {harness.LIST_AGENTS: list_agents.SerializeToString()}, tls=ca)
    try:
        cert, key = client_certificate(t)
        code, out, err = cli(t, "agents", "--addr", cap.address, "--ca-file", ca["ca"],
                             "--cert", cert, "--key", key)
        eq((code, err), (0, ""), "agents over TLS with a client certificate")
        eq([re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()],
           [["NAME", "TASK TYPE", "VERSION", "SYNC"], ["Captured", "spark", "3", "yes"]],
           "table")
        # The server requires a client certificate.
        code, out, err = cli(t, "agents", "--addr", cap.address, "--ca-file", ca["ca"],
                             "--timeout", "3")
        eq(code, 1, "agents over TLS without a client certificate")
        one_error_line(err, "agents", "ListAgents failed: ")
        # Plaintext to a TLS port fails too.
        code, out, err = cli(t, "agents", "--addr", cap.address, "--timeout", "3")
        eq(code, 1, "plaintext to a TLS server")
        one_error_line(err, "agents", "ListAgents failed: ")
        eq(len(cap.requests), 1, "calls that reached the server")
        # Files that are not PEM are refused before any connection.
        code, out, err = cli(t, "agents", "--addr", cap.address, "--ca-file",
                             write(t, "not.pem", "hello"))
        eq(code, 2, "exit code for a non-PEM CA file")
        one_error_line(err, "agents", "holds no PEM CERTIFICATE")
        code, out, err = cli(t, "agents", "--addr", cap.address, "--ca-file", ca["ca"],
                             "--cert", cert, "--key", cert)
        eq(code, 2, "exit code for a key file without a key")
        one_error_line(err, "agents", "holds no PEM PRIVATE KEY")
    finally:
        cap.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--capture":
        capture_main(sys.argv[2])


# ---- issue 14: the failure's lines, and `logs` ----------------------------------------------

TRACE = ("Traceback (most recent call last):\n  File \"job.py\", line 6, in main\n"
         "    raise ValueError(\"bad row 17\")\nValueError: bad row 17\n")


def test_cli_submit_wait_prints_the_error_lines(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"},
                     {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": "Workload failed, see run output for details"}])
    env.fake.output({"error": "ValueError: bad row 17", "error_trace": TRACE})
    code, out, err = cli(t, "submit", template_file(t), *addr(env), "--wait", "--interval", "0.2")
    eq(code, 3, "exit code of a failed run")
    lines = out.splitlines()
    final = [i for i, line in enumerate(lines) if " after " in line]
    eq(len(final), 1, "final line in %r" % out)
    check(lines[final[0]].endswith(": Workload failed, see run output for details"),
          "state message on the final line: %r" % lines[final[0]])
    eq(lines[final[0] + 1:final[0] + 6],
       ["  ValueError: bad row 17", "  Traceback (most recent call last):",
        "    File \"job.py\", line 6, in main", "      raise ValueError(\"bad row 17\")",
        "  ValueError: bad row 17"], "the exception and the trace, indented")


def test_cli_logs_pages(t):
    env = t.start()
    env.fake.output({"logs": "one\ntwo\nthree\n", "error": "E", "error_trace": "T1\nT2"})
    _, meta, _ = cli(t, "submit", template_file(t), *addr(env))
    code, out, err = cli(t, "logs", meta.strip(), *addr(env), "--lines", "2")
    eq((code, err), (0, ""), "exit code and stderr")
    eq(out.splitlines(), ["one", "two", "three", "E", "T1", "T2"], "every line, every page")
    eq(len(env.fake.requests("/runs/get-output")), 3, "three pages of two lines")
    code, out, err = cli(t, "logs", meta.strip(), *addr(env), "--lines", "0")
    eq(code, 2, "exit code for --lines 0")
    check("positive number of lines" in err, "message: %r" % err)


def test_cli_logs_follow_until_the_run_ends(t):
    env = t.start()
    env.fake.script([{"life_cycle_state": "RUNNING", "state_message": "In run"}])
    env.fake.output({"logs": "line 1\nline 2\n"})
    _, meta, _ = cli(t, "submit", template_file(t), *addr(env))
    run_id = int(json.loads(meta)["run_id"])
    out_path = os.path.join(t.dir, "follow.out")
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(client_cmd(t, "logs", meta.strip(), *addr(env), "--follow",
                                           "--interval", "0.2"),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                                env=client_env(), cwd=t.dir)
    try:
        read = lambda: open(out_path).read()  # noqa: E731
        wait_until(lambda: "line 2" in read(), 10, "the first lines")
        env.fake.output({"logs": "line 1\nline 2\nline 3\n"}, run_id=run_id)
        wait_until(lambda: "line 3" in read(), 10, "a new line while following")
        env.fake.output({"logs": "line 1\nline 2\nline 3\nline 4\n", "error": "ValueError: x"},
                        run_id=run_id)
        env.fake.script([{"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                         "state_message": "failed"}], run_id=run_id)
        code = proc.wait(RUN_TIMEOUT * SCALE * CLIENT_FACTOR)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_valgrind(code, "logs --follow")
    eq(code, 3, "exit code: the run failed")
    eq(read().splitlines(), ["line 1", "line 2", "line 3", "line 4", "ValueError: x"],
       "each line once, the last ones after the end")
    eq(proc.stderr.read(), b"", "stderr")
