"""Trust: what a client, a task author or the network can make the daemon do or say.

Every input bounded and clean (status messages and logs stay UTF-8, strings that are not UTF-8
refused, run ids and instance names checked before any connection)."""

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import warnings

import grpc

from harness import (CANARY_MARKER, CREATE, DELETE, DIE_WITH_PARENT, GET, SANITIZED, SCALE, Daemon,
                     Failure, check, create_request, custom_config, eq, generations, raw_call,
                     wait_until, wire_field)

SUBMIT_PATH = "/api/2.1/jobs/runs/submit"


def create_request_name(t):
    """The full name of the CreateTaskRequest of the generation under test, as messages say."""
    return "flyteidl.admin.CreateTaskRequest" if t.generation == 1 else \
        "flyteidl2.connector.CreateTaskRequest"

INVALID = grpc.StatusCode.INVALID_ARGUMENT
REPLACEMENT = "\ufffd".encode()


def log_bytes(daemon):
    with open(daemon.stderr_path, "rb") as f:
        return f.read()


def test_status_and_logs_stay_utf8(t):
    """A Databricks answer holding bytes that are not UTF-8 reaches the caller and the log as
    U+FFFD: the raw status message (not grpcio's decoding, which would hide it) and every log
    line are valid UTF-8."""
    env = t.start()
    env.fake.inject("POST", SUBMIT_PATH, [{"http_status": 400, "body_latin1":
                                           '{"error_code": "INVALID_PARAMETER_VALUE", '
                                           '"message": "bad \xff\xfe value"}'}])
    request = create_request(t.pb, custom=custom_config()).SerializeToString()
    status, message = raw_call(env.daemon.address, CREATE, request)
    eq(status, grpc.StatusCode.INVALID_ARGUMENT.value[0], "grpc-status")
    check(b"\xff" not in message, "raw byte 0xff in the status message: %r" % message)
    message.decode("utf-8")  # raises on anything that is not UTF-8
    check(b"bad " + REPLACEMENT + REPLACEMENT + b" value" in message,
          "U+FFFD expected in place of each bad byte: %r" % message)
    # The call's log line is written just after its answer goes out.
    wait_until(lambda: b"bad " + REPLACEMENT + REPLACEMENT + b" value" in log_bytes(env.daemon),
               5, "the call's log line, with U+FFFD")
    log_bytes(env.daemon).decode("utf-8")


@generations(1, 2)
def test_strings_not_utf8_refused(t):
    """proto3 strings must be UTF-8: one that is not, anywhere in a request, is refused with
    INVALID_ARGUMENT naming the field, before any Databricks call; the answer itself is UTF-8."""
    env = t.start()
    # A request serialized with a placeholder type, then patched: grpcio's protobuf cannot
    # hold a string that is not UTF-8.
    good = create_request(t.pb, custom=custom_config(), task_type="zzzzz").SerializeToString()
    check(good.count(b"zzzzz") == 1, "placeholder not unique")
    status, message = raw_call(env.daemon.address, env.method(CREATE),
                               good.replace(b"zzzzz", b"zz\xffzz"))
    eq(status, INVALID.value[0], "CreateTask grpc-status")
    eq(message.decode("utf-8"), "invalid %s: field template.type is "
       "not valid UTF-8 (proto3 strings must be UTF-8)" % create_request_name(t),
       "CreateTask message")
    # GetTask: task_category (3) { name (1) } not UTF-8.
    meta = b'{"databricks_instance": "%s", "run_id": "1"}' % env.fake.address.encode()
    get = wire_field(2, meta) + wire_field(3, wire_field(1, b"spark\xc3"))
    status, message = raw_call(env.daemon.address, env.method(GET), get)
    eq(status, INVALID.value[0], "GetTask grpc-status")
    check(b"field task_category.name is not valid UTF-8" in message, "GetTask: %r" % message)
    eq(env.fake.requests(), [], "requests to Databricks")
    log_bytes(env.daemon).decode("utf-8")


@generations(1, 2)
def test_instance_with_nul_refused(t):
    """A NUL in databricksInstance would cut the name protobuf-c keeps: the request is refused
    naming the field, so the daemon never acts on a name the task author did not write."""
    env = t.start(args=["--allowed-instance", "evil.example.com"])
    custom = custom_config(instance="evil.example.com\x00." + env.fake.address)
    reply = env.fails(CREATE, create_request(t.pb, custom=custom), INVALID)
    eq(reply.details, 'invalid %s: field '
       'template.custom.fields["databricksInstance"].string_value contains a NUL byte '
       '(proto3 strings must be UTF-8)' % create_request_name(t), "message")
    eq(env.fake.requests(), [], "requests to Databricks")


@generations(1, 2)
def test_run_id_out_of_range_refused(t):
    """run_id outside 1..9223372036854775807 (Databricks' positive int64) answers
    INVALID_ARGUMENT naming it, for GetTask and DeleteTask alike, before any network."""
    env = t.start()
    for run_id in ('"0"', "0", '"9223372036854775808"', '"99999999999999999999"', "-3",
                   '"00000000000000000000001"'):
        meta = '{"databricks_instance": "%s", "run_id": %s}' % (env.fake.address, run_id)
        for request in (env.get_request(meta), env.delete_request(meta)):
            method = GET if request.DESCRIPTOR.name == "GetTaskRequest" else DELETE
            reply = env.fails(method, request, INVALID)
            check("run_id" in reply.details, "%s %s: %r" % (method, run_id, reply.details))
    eq(env.fake.requests(), [], "requests to Databricks")
    # The largest run id is a run id, and leading zeros are dropped.
    env.fake.config(unknown_run={"life_cycle_state": "RUNNING"})
    for run_id in ("9223372036854775807", "00042"):
        meta = '{"databricks_instance": "%s", "run_id": "%s"}' % (env.fake.address, run_id)
        eq(env.phase_name(env.get(meta).phase), "RUNNING", "phase of run %s" % run_id)
    eq([r["query"].get("run_id") for r in env.fake.requests("/runs/get")],
       [["9223372036854775807"], ["42"]], "run ids asked for")


@generations(1, 2)
def test_instance_present_but_not_a_name_refused(t):
    """databricksInstance present but not a non-empty string answers INVALID_ARGUMENT: a task
    that names a workspace never silently runs on the default one."""
    env = t.start()
    for value in (12, None, "", {"host": "x"}, ["x"], True):
        custom = custom_config()
        custom["databricksInstance"] = value
        reply = env.fails(CREATE, create_request(t.pb, custom=custom), INVALID)
        check("databricksInstance must be a non-empty string" in reply.details,
              "%r: %r" % (value, reply.details))
    eq(env.fake.requests(), [], "requests to Databricks")
    # Absent still means the default instance.
    env.create(create_request(t.pb, custom=custom_config()))
    eq(len(env.fake.requests("/runs/submit")), 1, "submits to the default instance")


# Lets OpenSSL speak TLS 1.0/1.1 (security level 0): what a permissive system configuration
# would allow. The daemon must still refuse.
PERMISSIVE_OPENSSL_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""


class OldTlsServer:
    """A TLS 1.1-only HTTPS server on 127.0.0.1 with the suite's certificate; records what each
    handshake gave."""

    def __init__(self, ca):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1
            self.ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        self.ctx.set_ciphers("DEFAULT@SECLEVEL=0")
        self.ctx.load_cert_chain(ca["cert"], ca["key"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.outcomes = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
                self.outcomes.append(tls.version())
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 2\r\n\r\n{}")
                tls.close()
            except (OSError, ssl.SSLError) as e:
                self.outcomes.append("refused: %s" % e)
                conn.close()

    def close(self):
        self.sock.close()


def test_databricks_tls_at_least_1_2(t):
    """TLS to Databricks is 1.2 or later even where OpenSSL's configuration allows older
    versions: curl under the same permissive configuration talks TLS 1.1 to the server (the
    control), the daemon never does."""
    server = OldTlsServer(t.suite.ca)
    try:
        conf = os.path.join(t.dir, "openssl-permissive.cnf")
        with open(conf, "w") as f:
            f.write(PERMISSIVE_OPENSSL_CONF)
        res = subprocess.run(["curl", "-sS", "--cacert", t.suite.ca["ca"], "-o", "/dev/null",
                              "-w", "%{http_code}", "https://%s/" % server.address],
                             capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, OPENSSL_CONF=conf))
        eq((res.stdout, server.outcomes), ("200", ["TLSv1.1"]),
           "control: curl over TLS 1.1 with the permissive configuration (%s)" % res.stderr)
        env = t.start(instance=False, args=["--instance", server.address],
                      env={"OPENSSL_CONF": conf})
        meta = '{"databricks_instance": "%s", "run_id": "7"}' % server.address
        reply = env.call(GET, env.get_request(meta), timeout=2, exact=True)
        check(reply.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
              "GetTask over TLS 1.1 must fail, got %s %r" % (reply.code, reply.details))
        check(len(server.outcomes) > 1, "the daemon never tried")
        check(all(o.startswith("refused") for o in server.outcomes[1:]),
              "the daemon completed a handshake: %s" % server.outcomes)
    finally:
        server.close()


def http_get(port, source, timeout):
    """GET /metrics from source address `source` to 127.0.0.1:port; gives the status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SCALE,
                                  source_address=(source, 0)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


def test_metrics_slow_clients_cannot_block_scrapes(t):
    """80 connections trickling a request head a byte at a time (more than the endpoint's whole
    connection limit) from one address: a scrape from another address is answered meanwhile
    (per-address limit), and every trickling connection is closed although it never stops
    sending (a deadline for the whole head, not only for silence). Loopback has many
    addresses, so the tricklers come from 127.0.0.2 and the scrapes from 127.0.0.3."""
    env = t.start()
    port = env.daemon.metrics_port()
    tricklers = [socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE,
                                          source_address=("127.0.0.2", 0)) for _ in range(80)]
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
    closed, stop = set(), threading.Event()

    def trickle():
        for i in range(len(head)):
            for n, s in enumerate(tricklers):
                if n in closed:
                    continue
                try:
                    s.setblocking(False)
                    if s.recv(1) == b"":
                        closed.add(n)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(n)
                    continue
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    closed.add(n)
            if stop.wait(0.2) or len(closed) == len(tricklers):
                return

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        eq(http_get(port, "127.0.0.3", timeout=5), 200, "scrape from another address")
        wait_until(lambda: len(closed) == len(tricklers), 20,
                   "the server to close every trickling connection")
        eq(http_get(port, "127.0.0.2", timeout=5), 200, "scrape from the tricklers' address after")
    finally:
        stop.set()
        thread.join()
        for s in tricklers:
            s.close()


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise Failure("no VmHWM for %d" % pid)


def fake_workspace_conn(settings, timeout=5):
    host, port = settings["instance"].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=settings["ca_file"])
    raw = socket.create_connection((host, int(port)), timeout=timeout * SCALE)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_status(conn):
    """The HTTP status code of the answer on conn, None if it closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


def test_fake_workspace_authenticates_before_buffering(t):
    """fake-workspace answers a caller without the token before reading its body, refuses an
    announced body over 1 MiB at once, drops a body that grows past it, and serves at most 64
    connections: ten unauthenticated 16 MB uploads no longer grow it by their size."""
    from test_tools import start_fake_workspace
    fake, settings = start_fake_workspace(t)
    try:
        before = vm_hwm_kib(fake.proc.pid)
        chunk = b"x" * 65536
        for token in ("wrong", None) * 5:
            conn = fake_workspace_conn(settings)
            auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
            conn.sendall(b"POST /api/2.1/jobs/runs/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                         b"Content-Type: application/json\r\nContent-Length: 16000000\r\n\r\n")
            try:
                for _ in range(16):  # 1 MB of the announced 16: the answer must not wait for it
                    conn.sendall(chunk)
            except (OSError, ssl.SSLError):
                pass  # closed after the refusal
            check(read_status(conn) in (401, 403), "unauthenticated upload not refused")
            conn.close()
        grown = vm_hwm_kib(fake.proc.pid) - before
        check(grown < 8 * 1024, "peak memory grew %d KiB for refused uploads" % grown)

        auth = b"Authorization: Bearer %s\r\n" % settings["token"].encode()
        conn = fake_workspace_conn(settings)
        conn.sendall(b"POST /api/2.1/jobs/runs/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"Content-Length: 2000000\r\n\r\n")
        eq(read_status(conn), 413, "announced body over the cap")
        conn.close()
        conn = fake_workspace_conn(settings)
        conn.sendall(b"POST /api/2.1/jobs/runs/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(40):
                conn.sendall(b"10000\r\n" + chunk + b"\r\n")
        except (OSError, ssl.SSLError):
            pass
        eq(read_status(conn), None, "a chunked body past the cap: dropped without an answer")
        conn.close()

        host, port = settings["instance"].rsplit(":", 1)
        idle = [socket.create_connection((host, int(port))) for _ in range(64)]
        try:
            conn = fake_workspace_conn(settings, timeout=1)
            check(False, "a 65th connection was served")
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in idle:
                s.close()
        conn = wait_until(lambda: try_conn(settings), 10, "a connection once the others closed")
        conn.sendall(b"GET /api/2.1/jobs/runs/get?run_id=1 HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"\r\n")
        eq(read_status(conn), 400, "runs/get of an unknown run after all that")
        conn.close()
    finally:
        eq(fake.stop(), 0, "fake-workspace exit code")


def try_conn(settings):
    try:
        return fake_workspace_conn(settings, timeout=2)
    except (OSError, ssl.SSLError):
        return None


def expected_token(key=None, retry=0):
    """The idempotency_token for harness.create_request()'s attempt, computed here from the
    encoding idempotency.c documents: SHA-256, or HMAC-SHA256 under key."""
    def ns(s):
        return str(len(s.encode())).encode() + b":" + s.encode() + b","
    fields = ["fdc-idem-v1", "flytesnacks", "development", "f1b2c3d4e5", "n0", "flytesnacks",
              "development", "workflows.spark.hello_spark", "v1", "", str(retry)]
    encoding = b"".join(ns(f) for f in fields)
    if key is None:
        return hashlib.sha256(encoding).hexdigest()
    return hmac.new(key, encoding, hashlib.sha256).hexdigest()


def keyed_config(t, key):
    """A config file naming an idempotency key file (mode 0600) that holds key; gives its path."""
    path = os.path.join(t.dir, "idempotency.key")
    with open(path, "w") as f:
        f.write(key + "\n")
    os.chmod(path, 0o600)
    conf = os.path.join(t.dir, "config.json")
    with open(conf, "w") as f:
        f.write('{"idempotency_key_file": "%s"}' % path)
    return conf


def test_idempotency_token_keyed(t):
    """With idempotency_key_file the runs/submit idempotency_token is an HMAC of the attempt's
    ids under the key (a repeat still finds the first run); without it, the plain hash."""
    key = t.secret("idempotency-key")
    env = t.start(args=["--config", keyed_config(t, key)])
    key = key.encode()
    first = env.create(create_request(t.pb, custom=custom_config()))
    again = env.create(create_request(t.pb, custom=custom_config()))
    eq(again.resource_meta, first.resource_meta, "a repeated CreateTask finds the first run")
    tokens = [r["body"]["idempotency_token"] for r in env.fake.requests("/runs/submit")]
    eq(tokens, [expected_token(key)] * 2, "keyed tokens")
    check(expected_token(key) != expected_token(), "the key changes the token")
    plain = t.start()
    plain.create(create_request(t.pb, custom=custom_config()))
    eq([r["body"]["idempotency_token"] for r in plain.fake.requests("/runs/submit")],
       [expected_token()], "unkeyed token (unchanged)")


NOBODY = 65534


def nobody_with_cores():
    """A launcher (see Daemon): core files allowed (the daemon must lower this itself), and,
    when the runner is root, the unprivileged uid 65534, so that /proc/PID ownership shows
    whether the daemon made itself non-dumpable (a non-dumpable process's /proc files belong to
    root). prlimit and setpriv exec what follows, so the pid is the program's own."""
    unprivileged = (["--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
                    if os.geteuid() == 0 else [])
    return (["prlimit", "--core=unlimited", "--"] + DIE_WITH_PARENT[:-1] + unprivileged
            + ["--"])


def process_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def cores_in(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith("core"))


def test_crash_leaves_no_core_file(t):
    """A daemon started with core files allowed (RLIMIT_CORE unlimited) lowers the limit to 0
    and makes itself non-dumpable before it reads a secret: SIGABRT and SIGSEGV leave no core
    file, where a plain process in the same place leaves one (the control). When this machine
    writes cores elsewhere (core_pattern a pipe or a path), the no-core check cannot see them
    and the test relies on the daemon's own settings, which it checks in every case:
    /proc/PID/limits and /proc/PID ownership (with a root runner)."""
    token = t.secret("dapi-token")
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    local_cores = not pattern.startswith("|") and "/" not in pattern
    # A directory uid 65534 can use: the suite's own is root's, mode 0700.
    place = tempfile.mkdtemp(prefix="fdc-core.", dir="/tmp")
    try:
        os.chmod(place, 0o755)
        if os.geteuid() == 0:
            os.chown(place, NOBODY, NOBODY)
        binary = os.path.join(place, "flyte-databricks-connector")
        shutil.copy2(t.suite.daemon, binary)
        os.chmod(binary, 0o755)
        control = subprocess.Popen(nobody_with_cores() + ["sleep", "60"], cwd=place)
        # Signalled only once it is sleep itself, not a launcher that has yet to exec it.
        wait_until(lambda: process_name(control.pid) == "sleep", 10,
                   "the control process to exec sleep")
        control.send_signal(signal.SIGABRT)
        control.wait(10 * SCALE)
        control_cores = cores_in(place)
        for name in control_cores:
            os.unlink(os.path.join(place, name))
        can_see_cores = local_cores and bool(control_cores)
        t.transcript.append("note: core_pattern %r, the control left %s" % (pattern, control_cores))
        kills = [signal.SIGABRT] + ([] if SANITIZED else [signal.SIGSEGV])
        for sig in kills:
            daemon = Daemon(t.dir, binary, ["--instance", "127.0.0.1:1", "--log-level", "debug"],
                            False, {"FLYTE_DATABRICKS_ACCESS_TOKEN": token},
                            launcher=nobody_with_cores(), cwd=place)
            t.daemons.append(daemon)
            daemon.wait_serving(t.pb.health)
            pid = daemon.proc.pid
            with open("/proc/%d/limits" % pid) as f:
                limit = [line.split()[4:6] for line in f if line.startswith("Max core file size")]
            eq(limit, [["0", "0"]], "the daemon's core file size limit (soft, hard)")
            if os.geteuid() == 0:
                eq(os.stat("/proc/%d/environ" % pid).st_uid, 0,
                   "owner of /proc/PID/environ of a uid-65534 daemon (root: non-dumpable)")
            with open("/proc/%d/environ" % pid, "rb") as f:
                check(token.encode() not in f.read(), "the token is still in /proc/PID/environ")
            daemon.proc.send_signal(sig)
            daemon.proc.wait(10 * SCALE)
            daemon.expected_exit = -sig
            eq(daemon.stop(), -sig, "exit status after %s" % sig.name)
            eq(cores_in(place), [], "core files after %s" % sig.name)
        check(can_see_cores or not local_cores or os.geteuid() != 0,
              "the control left no core although core_pattern %r writes to the working directory"
              % pattern)
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_env_token_scrubbed_and_kept_for_reload(t):
    """A token from FLYTE_DATABRICKS_ACCESS_TOKEN is zeroed in the daemon's environment block
    (/proc/PID/environ), yet still used, and still there after a reload re-reads the
    environment."""
    token = t.secret("dapi-token")
    env = t.start(token=token, token_file=False, env={"FLYTE_DATABRICKS_ACCESS_TOKEN": token})
    # Under valgrind the process is valgrind, whose own environment block keeps the original.
    if not env.daemon.valgrind:
        with open("/proc/%d/environ" % env.daemon.proc.pid, "rb") as f:
            block = f.read()
        check(token.encode() not in block, "the token is in /proc/PID/environ")
        check(b"FLYTE_DATABRICKS_ACCESS_TOKEN=" in block, "the variable's name went too")
    env.create(create_request(t.pb, custom=custom_config()))
    env.daemon.proc.send_signal(signal.SIGHUP)
    env.daemon.wait_logged("configuration reloaded")
    env.create(create_request(t.pb, custom=custom_config(), node_id="n1"))
    eq([r["headers"].get("authorization") for r in env.fake.requests("/runs/submit")],
       ["Bearer " + token] * 2, "Authorization before and after the reload")


def test_canary_check_catches_leaks(t):
    """The harness's own leak check (run after every test, in both log formats, over the
    daemon's output, the answers, tool output, /metrics and /proc/PID/environ) finds a
    registered secret and any canary marker, and nothing in clean text."""
    token = t.secret("token")
    other = t.register_secret("plain-secret-value-123")
    minted = "issued-%s-by-a-fake" % CANARY_MARKER  # never registered
    eq(t.leaks([("a", "clean text"), ("b", "dapi-fdc-other")]), [], "clean text")
    for leak in (token, other, minted, "cut " + token[:len(token) // 2]):
        check(t.leaks([("somewhere", "x %s y" % leak)]), "not caught: %r" % leak)


def test_canaries_never_leak(t):
    """Every secret the daemon holds (the token from a file or the environment, the
    idempotency key, flytekit's auth_token in an old resource_meta) goes through calls that
    succeed, fail, are refused and reload, at debug level; the harness then finds none of them
    in the logs, answers, /metrics, /proc/PID/environ or check-config's output."""
    conf = keyed_config(t, t.secret("idempotency-key"))
    env = t.start(args=["--config", conf])
    resp = env.create(create_request(t.pb, custom=custom_config()))
    env.get(resp.resource_meta)
    flytekit_token = t.secret("flytekit-auth-token")
    old_meta = json.dumps({"databricks_instance": env.fake.address, "run_id": "1000",
                           "auth_token": flytekit_token})
    # flytekit >= 1.16.15's auth_token serves its run's calls: the workspace must take it too.
    env.fake.config(tokens=[env.token, flytekit_token])
    env.get(old_meta)
    env.delete(old_meta)
    env.fails(GET, env.get_request(old_meta.replace('"1000"', '"x"')), INVALID)
    env.fake.inject("POST", SUBMIT_PATH, [{"http_status": 403, "body": {
        "error_code": "PERMISSION_DENIED", "message": "Invalid access token."}}])
    env.fails(CREATE, create_request(t.pb, custom=custom_config(), node_id="n2"),
              grpc.StatusCode.PERMISSION_DENIED)
    env.daemon.proc.send_signal(signal.SIGHUP)
    env.daemon.wait_logged("configuration reloaded")
    # The token from the environment, and check-config on both.
    env_token = t.secret("dapi-token-env")
    from_env = t.start(token=env_token, token_file=False,
                       env={"FLYTE_DATABRICKS_ACCESS_TOKEN": env_token})
    from_env.create(create_request(t.pb, custom=custom_config()))
    token_file = os.path.join(t.dir, "token-1")
    for extra_env, args in (({}, ["--token-file", token_file]),
                            ({"FLYTE_DATABRICKS_ACCESS_TOKEN": env_token}, [])):
        res = subprocess.run([t.suite.daemon, "check-config", conf] + args, capture_output=True,
                             text=True, timeout=30 * SCALE, cwd=t.dir,
                             env=dict({k: v for k, v in os.environ.items()
                                       if not k.startswith("FLYTE_")}, **extra_env))
        t.record("check-config", res.stdout + res.stderr)
        eq(res.returncode, 0, "check-config exit code (%s)" % res.stderr)
        check("token = (set, " in res.stdout and "idempotency_key = (set, " in res.stdout,
              "check-config shows the secrets masked: %r" % res.stdout)
