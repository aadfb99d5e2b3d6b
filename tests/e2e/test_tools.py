"""The tool commands of the one binary: fake-workspace (the workspace `make demo` uses)
and check-config, each end to end and with bad input."""

import json
import os
import signal
import subprocess
import time

import harness
from harness import DAEMON, ROOT, SCALE, check, eq, parse_log_line, wait_until

PROGRAM = "flyte-databricks-connector"


def env_without_flyte(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    env.update(extra)
    return env


def run(t, *args, env=None, timeout=30):
    proc = subprocess.run([t.suite.daemon or DAEMON] + list(args), capture_output=True, text=True,
                          timeout=timeout * SCALE, env=env or env_without_flyte(), cwd=t.dir)
    t.transcript.append(proc.stdout + proc.stderr)
    return proc


class Process:
    """A long-running command with stdout and stderr in files."""

    def __init__(self, t, name, args, env=None):
        self.out_path = os.path.join(t.dir, name + ".out")
        self.err_path = os.path.join(t.dir, name + ".err")
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([t.suite.daemon or DAEMON] + list(args), stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, env=env or env_without_flyte(),
                                     cwd=t.dir)

    def text(self, which="out"):
        with open(self.out_path if which == "out" else self.err_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()
        self.err.close()
        return self.proc.returncode


def serving_port(daemon):
    """The port of the daemon's "serving" line, None before it (text and JSON logs alike)."""
    for line in daemon.text("err").splitlines():
        event = parse_log_line(line)
        if event and event.get("msg") == "serving":
            return event["port"]
    return None


def start_fake_workspace(t, *extra, own_dir=True):
    """own_dir: pass --dir (kept afterwards); else the fake makes and removes a temp dir."""
    where = ["--dir", os.path.join(t.dir, "fake")] if own_dir else []
    fake = Process(t, "fake", ["fake-workspace", "--port", "0"] + where +
                   ["--pending-seconds", "0.3", "--running-seconds", "0.6"] + list(extra))
    wait_until(lambda: "token=" in fake.text(), 10 * SCALE, "the fake workspace's settings")
    settings = dict(line.split("=", 1) for line in fake.text().splitlines() if "=" in line)
    return fake, settings


def test_fake_workspace_end_to_end(t):
    """fake-workspace prints what to point the daemon at; the daemon trusts its CA, and a
    submitted task runs to SUCCEEDED through both."""
    fake, settings = start_fake_workspace(t, own_dir=False)
    daemon = None
    try:
        check(os.path.isfile(settings.get("ca_file", "")), "ca_file %r missing" % settings)
        check(settings["instance"].startswith("127.0.0.1:"), "instance %r" % settings["instance"])
        check("serve --instance" in fake.text("err"), "no how-to line on stderr")
        daemon = Process(t, "daemon", ["serve", "--listen", "127.0.0.1:0", "--metrics-listen",
                                       "off", "--log-format", harness.LOG_FORMAT, "--log-level",
                                       "debug",
                                       "--instance", settings["instance"], "--ca-file",
                                       settings["ca_file"]],
                         env=env_without_flyte(FLYTE_DATABRICKS_ACCESS_TOKEN=settings["token"]))
        port = wait_until(lambda: serving_port(daemon), 10 * SCALE, "the daemon")
        proc = run(t, "submit", os.path.join(ROOT, "examples", "databricks-task.json"), "--addr",
                   "127.0.0.1:" + port, "--wait", "--interval", "0.2")
        eq(proc.returncode, 0, "submit --wait exit code (stderr %r)" % proc.stderr)
        check("SUCCEEDED" in proc.stdout, "no SUCCEEDED in %r" % proc.stdout)
        meta = json.loads(proc.stdout.splitlines()[0])
        eq(meta["databricks_instance"], settings["instance"], "resource_meta instance")
        check(settings["token"] not in proc.stdout + daemon.text("err"), "token leaked")
    finally:
        if daemon:
            eq(daemon.stop(), 0, "daemon exit code")
        code = fake.stop()
    eq(code, 0, "fake-workspace exit code after SIGTERM")
    check(not os.path.exists(os.path.dirname(settings["ca_file"])),
          "the fake's temp dir %s was left behind" % os.path.dirname(settings["ca_file"]))


def daemon_events(daemon, msg):
    """The daemon's log events with this msg (text and JSON logs alike)."""
    events = (parse_log_line(line) for line in daemon.text("err").splitlines())
    return [e for e in events if e and e.get("msg") == msg]


def start_oauth_daemon(t, name, settings, client_secret):
    """A daemon with no token, only the fake's client id and this secret (env, as Databricks'
    own tools take them)."""
    daemon = Process(t, name, ["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "off",
                               "--log-format", harness.LOG_FORMAT, "--log-level", "debug",
                               "--instance", settings["instance"], "--ca-file",
                               settings["ca_file"]],
                     env=env_without_flyte(DATABRICKS_CLIENT_ID=settings["client_id"],
                                           DATABRICKS_CLIENT_SECRET=client_secret))
    port = wait_until(lambda: serving_port(daemon), 10 * SCALE, "the daemon " + name)
    return daemon, "127.0.0.1:" + port


def test_fake_workspace_oauth(t):
    """fake-workspace's client id and secret work as a service principal's: a daemon with no
    token gets access tokens from the fake's /oidc/v1/token, CreateTask and GetTask succeed
    with them, and one that expires during the run is replaced. A wrong secret is refused.
    Neither the secret nor an access token appears in either program's log."""
    # The run (0.3 s pending + 3 s running) outlasts a 2 s token fetched before it starts, so
    # the GetTask that sees it end needs a second token, however slow the machine.
    fake, settings = start_fake_workspace(t, "--oauth-expires-seconds", "2",
                                          "--running-seconds", "3")
    t.register_secret(settings["client_secret"])
    daemon = bad = None
    try:
        check(settings.get("client_id") and settings.get("client_secret"),
              "no client_id= / client_secret= lines: %r" % sorted(settings))
        daemon, addr = start_oauth_daemon(t, "daemon", settings, settings["client_secret"])
        proc = run(t, "submit", os.path.join(ROOT, "examples", "databricks-task.json"), "--addr",
                   addr, "--wait", "--interval", "0.2")
        eq(proc.returncode, 0, "submit --wait exit code (stderr %r)" % proc.stderr)
        check("SUCCEEDED" in proc.stdout, "no SUCCEEDED in %r" % proc.stdout)
        fetched = daemon_events(daemon, "OAuth token fetched")
        check(len(fetched) >= 2, "the daemon fetched %d OAuth tokens, want a refresh: %r"
              % (len(fetched), fetched))
        eq(fetched[0].get("client_id"), settings["client_id"], "client_id logged")

        # A wrong secret: refused by the endpoint, and nothing reaches the Jobs API.
        bad, bad_addr = start_oauth_daemon(t, "bad", settings, t.secret("dose-wrong"))
        submits_before = fake.text("err").count("POST /api/2.1/jobs/runs/submit")
        proc = run(t, "submit", os.path.join(ROOT, "examples", "databricks-task.json"), "--addr",
                   bad_addr)
        check(proc.returncode != 0, "a wrong client secret was accepted")
        check("invalid_client" in proc.stderr, "the refusal is not named: %r" % proc.stderr)
        eq(fake.text("err").count("POST /api/2.1/jobs/runs/submit"), submits_before,
           "runs/submit requests after the refusal")
    finally:
        for d in (bad, daemon):
            if d:
                eq(d.stop(), 0, "daemon exit code")
        code = fake.stop()
    eq(code, 0, "fake-workspace exit code after SIGTERM")
    log = fake.text("err")
    granted = [l for l in log.splitlines() if "POST /oidc/v1/token" in l and l.endswith("-> 200")]
    check(len(granted) >= 2, "the fake logged %d granted token requests:\n%s" % (len(granted), log))
    check("token_request=1 " in log, "token requests are not counted:\n%s" % log)
    check(log.count("POST /oidc/v1/token") == int(log.rsplit("token_request=", 1)[1].split()[0]),
          "a token request was not counted:\n%s" % log)
    for who, text in (("daemon", daemon.text("err")), ("bad daemon", bad.text("err")),
                      ("fake-workspace", log)):
        t.record(who + " stderr", text)
        check("fake-oauth-" not in text, "an issued access token is in the %s's log" % who)


def test_fake_workspace_failing_sample(t):
    fake, settings = start_fake_workspace(t)
    daemon = None
    try:
        daemon = Process(t, "daemon", ["serve", "--listen", "127.0.0.1:0", "--metrics-listen",
                                       "off", "--log-format", harness.LOG_FORMAT, "--log-level",
                                       "debug",
                                       "--instance", settings["instance"], "--ca-file",
                                       settings["ca_file"]],
                         env=env_without_flyte(FLYTE_DATABRICKS_ACCESS_TOKEN=settings["token"]))
        port = wait_until(lambda: serving_port(daemon), 10 * SCALE, "the daemon")
        proc = run(t, "submit", os.path.join(ROOT, "examples", "databricks-task-failing.json"),
                   "--addr", "127.0.0.1:" + port, "--wait", "--interval", "0.2")
        eq(proc.returncode, 3, "exit code of a failed run")
        check("RETRYABLE_FAILED" in proc.stdout and "demo failure" in proc.stdout,
              "failure not shown: %r" % proc.stdout)
        check("log: https://" in proc.stdout, "no log link: %r" % proc.stdout)
    finally:
        if daemon:
            daemon.stop()
        fake.stop()


def test_fake_workspace_bad_input(t):
    for args in (["--port", "notaport"], ["--port", "70000"], ["--pending-seconds", "-1"],
                 ["--bogus"], ["--oauth-expires-seconds", "0"],
                 ["--oauth-expires-seconds", "86401"], ["--client-id", "a:b"],
                 ["--client-id", ""], ["--client-secret", "two words"]):
        proc = run(t, "fake-workspace", *args)
        check(proc.returncode != 0, "fake-workspace %s: exit 0" % args)
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        check(len(lines) >= 1 and "fake-workspace" in lines[0],
              "fake-workspace %s: %r" % (args, proc.stderr))
    # A malformed secret is still a secret: not repeated in the error.
    check("two words" not in proc.stderr, "the client secret was printed: %r" % proc.stderr)
    # Nor one given to a mistyped or ambiguous option name: getopt's own messages would
    # repeat the whole argument.
    for arg in ("--client-secrets=dose-CANARY", "--client=dose-CANARY", "--quiet=dose-CANARY"):
        proc = run(t, "fake-workspace", arg)
        eq(proc.returncode, 2, "fake-workspace %s: exit code" % arg)
        check("dose-CANARY" not in proc.stdout + proc.stderr,
              "fake-workspace %s: the value was printed: %r" % (arg, proc.stderr))
        check(arg.split("=")[0] in proc.stderr,
              "fake-workspace %s: the option is not named: %r" % (arg, proc.stderr))
    proc = run(t, "fake-workspace", "--help")
    eq(proc.returncode, 0, "fake-workspace --help exit code")
    for option in ("--port", "--client-id", "--client-secret", "--oauth-expires-seconds"):
        check(option in proc.stdout, "help lacks " + option)


def test_check_config_prints_settings_masked(t):
    token_file = os.path.join(t.dir, "token")
    with open(token_file, "w") as f:
        f.write("dapi-CANARY-check-config\n")
    os.chmod(token_file, 0o600)
    t.secrets.append("dapi-CANARY-check-config")
    config = os.path.join(t.dir, "c.json")
    with open(config, "w") as f:
        json.dump({"default_instance": "https://Example.cloud.databricks.com/",
                   "token_file": token_file, "workers": 3}, f)
    proc = run(t, "check-config", config)
    eq(proc.returncode, 0, "exit code (stderr %r)" % proc.stderr)
    check("default_instance = example.cloud.databricks.com" in proc.stdout,
          "normalized instance not shown: %r" % proc.stdout)
    check("workers = 3" in proc.stdout, "workers not shown")
    # The place it came from is shown too, since several places may hold the token.
    check("token = (set, 24 bytes, file %s)" % token_file in proc.stdout,
          "token not masked as expected: %r" % proc.stdout)
    check("dapi-CANARY" not in proc.stdout + proc.stderr, "token printed")
    check(proc.stdout.rstrip().endswith("configuration OK"), "no OK line")


def test_check_config_bad_input(t):
    proc = run(t, "check-config", os.path.join(t.dir, "missing.json"))
    eq(proc.returncode, 1, "missing file: exit code")
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    eq(len(lines), 1, "missing file: stderr lines %r" % lines)
    check("missing.json" in lines[0], "missing file: " + lines[0])

    bad = os.path.join(t.dir, "bad.json")
    with open(bad, "w") as f:
        f.write('{"workers": 65, "listne": "x",}')
    proc = run(t, "check-config", bad)
    eq(proc.returncode, 1, "invalid JSON: exit code")
    check("bad.json" in proc.stderr and "syntax" in proc.stderr.lower(),
          "invalid JSON: %r" % proc.stderr)

    with open(bad, "w") as f:
        f.write('{"workers": 65, "listne": "x"}')
    proc = run(t, "check-config", bad)
    eq(proc.returncode, 1, "invalid keys: exit code")
    check('"listne"' in proc.stderr and "workers" in proc.stderr,
          "every error must be named: %r" % proc.stderr)

    proc = run(t, "check-config")
    eq(proc.returncode, 2, "no file: exit code")
    proc = run(t, "check-config", "--help")
    eq(proc.returncode, 0, "--help exit code")


def test_version_and_unknown_command(t):
    proc = run(t, "--version")
    eq(proc.returncode, 0, "--version exit code")
    check(proc.stdout.startswith(PROGRAM + " "), "--version: %r" % proc.stdout)
    proc = run(t, "frobnicate")
    eq(proc.returncode, 2, "unknown command exit code")
    check("unknown command 'frobnicate'" in proc.stderr, "unknown command: %r" % proc.stderr)
    proc = run(t, "--help")
    eq(proc.returncode, 0, "--help exit code")
    for command in ("serve", "agents", "submit", "status", "cancel", "check-config",
                    "fake-workspace"):
        check(command in proc.stdout, "--help does not list %s" % command)
