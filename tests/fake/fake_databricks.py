#!/usr/bin/python3
"""A fake Databricks Jobs API (2.1) over HTTPS, for the end-to-end tests.

Standard library only. It answers runs/submit, runs/get, runs/cancel and
runs/get-output the way a real workspace does (shapes, error codes,
idempotency tokens, task runs with their own ids), and
offers an unauthenticated control API under /fake/ so a test can script each
run's life, inject error answers and read back every request it received.

    fake_databricks.py --port 0 --cert server.pem --key server.key --token T

prints "PORT=<n>" on stdout once listening (127.0.0.1 only) and runs until
SIGTERM or SIGINT.

State (all of it in `State`, guarded by one lock):
  runs          run_id -> Run. A Run owns its submit body and a SCRIPT: a
                list of steps. Each runs/get answers the current step and
                moves to the next; the last step repeats forever.
  next_script   steps given to every run submitted from now on
                (default: PENDING -> RUNNING -> TERMINATED/SUCCESS).
  tokens        idempotency_token -> run_id.
  injected      (METHOD, path) -> queue of steps answered before the real
                handler, one per request (fault injection on any endpoint).
  forgotten     run_id -> "400" | "404": runs removed with /fake/forget,
                answered as missing in that style.
  requests      every API request received, in order (each with "time",
                seconds since the epoch, when it arrived).
  unknown_run   null, or a step: runs/get of a run id never submitted
                creates the run on the spot with that one-step script
                (many distinct run ids without a submit each).
  random_faults null, or {"rate": 0.01, "kinds": ["503", "429", "reset"],
                "seed": N, "steps": {kind: step}}: that share of runs/get
                answers is a fault of a kind picked at random (a run's
                script does not advance); "steps" overrides the built-in
                step of a kind.
  record        false: keep no request record (a long soak), only counts.
  next_output   runs/get-output fields ("error", "error_trace", "logs",
                "logs_truncated", "notebook_output") every task of runs
                submitted from now on answers; a run keeps its own per task
                key (set with /fake/output).

Task runs: runs/get lists each task of a run in tasks[] with its own run_id
(run_id * 100 + 1, + 2, ...), its task_key, its task kind (e.g.
"notebook_task": {...} from the submit body) and its state, the run's state
unless the step says otherwise with "tasks": {task_key: {life_cycle_state,
result_state, state_message}}. runs/get-output takes a task run id, or a
run's own id when it has one task; a run with several tasks is refused
under its own id with 400 INVALID_PARAMETER_VALUE, as Databricks does.

A step is either a run state
  {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
   "state_message": "boom", "status": {...} | null, "delay_ms": 0,
   "content_type": "text/plain"}
("status" absent: derived from the state; null: left out of the answer;
an object: sent as given; "content_type" overrides application/json; "extra":
members merged into the answer, e.g. durations), or an
injected HTTP answer
  {"http_status": 503, "body": {...} | "text", "headers": {...}, "delay_ms": 0,
   "content_type": "..."}
("body_latin1": "text" instead of "body" sends each character as the byte of
that value, application/json: bytes that are not UTF-8, for instance)
or a fault, which breaks the transport rather than answering:
  {"fault": "reset"}     headers and half the body, then a TCP RST (SO_LINGER 0)
  {"fault": "truncate"}  the whole body under a Content-Length 64 bytes larger,
                         then the connection closes
  {"fault": "hang", "hang_ms": N}  no answer until POST /fake/release, the
                         fake's exit or N ms (default 600000); then a drop
  {"fault": "empty"}     200, application/json, no body at all
  {"fault": "drop_after_create"}  runs/submit only: the run is created (and
                         its idempotency token remembered), then the
                         connection closes without an answer
  {"close": true}        the connection closes without an answer
For runs/get, a reset or truncate without "body" carries a TERMINATED/SUCCESS
answer for the run: a connector that used the broken answer would end the
task.

OAuth machine-to-machine: POST /oidc/v1/token answers as a workspace does for
a service principal once /fake/config sets "oauth" ({"client_id", "client_secret",
"expires_in"}): HTTP Basic client credentials and the form grant_type=
client_credentials&scope=all-apis give {"access_token", "token_type": "Bearer",
"expires_in"}; a wrong client gets 401 invalid_client. The Jobs API then takes
only tokens it issued and that are neither expired nor revoked (401 otherwise),
plus any static tokens /fake/config "tokens" lists.

Tokens: the Jobs API takes a bearer token from "tokens" (at first --token; no
token: 401, an unknown one: 403) or, with OAuth set, an issued token.

Control API (no auth):
  POST /fake/script  {"steps": [...]}               script for next runs
                     {"run_id": N, "steps": [...]}  replace a run's script
  POST /fake/inject  {"method": "POST", "path": "/api/2.1/jobs/runs/submit",
                      "answers": [step, ...]}       queue injected answers
                     ..."repeat": true              the last one answers forever
                     ..."clear": true               empty the queue first
  POST /fake/release                                end every hanging request
  POST /fake/forget  {"run_id": N, "style": "404"}  drop a run (expired)
  POST /fake/output  {"output": {...}}                 output of next runs' tasks
                     {"run_id": N, "output": {...}} a run's tasks' output
                     ..."task_key": K               only that task's
  POST /fake/config  {"missing_style": "400"|"404", "include_status": bool,
                      "unknown_run": step|null, "random_faults": {...}|null,
                      "record": bool, "tokens": [static tokens taken],
                      "oauth": {"client_id", "client_secret", "expires_in",
                      "delay_ms" (before each grant)}|null
                      (setting "oauth" drops the static tokens unless the same
                      call lists "tokens")}
  POST /fake/oauth/revoke                           every issued token is refused from now on
  POST /fake/reset                                  back to the start state
  GET  /fake/requests                               the request record
  GET  /fake/stats                                  {"counts": {path: requests,
                                                     "random_faults": n}, "runs": n}
  GET  /fake/runs                                   runs, scripts, positions
"""

import argparse
import base64
import copy
import http.server
import json
import os
import random
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

API = "/api/2.1/jobs/runs/"
OIDC_TOKEN = "/oidc/v1/token"
FIRST_RUN_ID = 1000
FIRST_JOB_ID = 700000
MAX_BODY = 16 * 1024 * 1024

DEFAULT_SCRIPT = [
    {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"},
    {"life_cycle_state": "RUNNING", "state_message": "In run"},
    {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
]

CANCEL_SCRIPT = [
    {"life_cycle_state": "TERMINATING", "state_message": "Run cancelled."},
    {"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
     "state_message": "Run cancelled.", "user_cancelled_or_timedout": True},
]

TERMINAL_LIFE_CYCLES = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}

# life_cycle_state -> status.state (the newer field has fewer values).
STATUS_STATE = {
    "QUEUED": "QUEUED", "PENDING": "PENDING", "RUNNING": "RUNNING",
    "TERMINATING": "TERMINATING", "TERMINATED": "TERMINATED", "SKIPPED": "TERMINATED",
    "INTERNAL_ERROR": "TERMINATED", "BLOCKED": "BLOCKED", "WAITING_FOR_RETRY": "WAITING",
}

# result_state -> (termination_details.code, termination_details.type).
TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("CANCELED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
    "EXCLUDED": ("SKIPPED", "SUCCESS"),
    "DISABLED": ("DISABLED", "CLIENT_ERROR"),
}

# What a broken runs/get answer would have said: a connector that trusted a
# cut or reset answer would end the task as a success.
SUCCESS_STEP = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}

FAULTS = ("reset", "truncate", "hang", "empty", "drop_after_create")
HANG_MS = 600000

# random_faults kind -> the step answered.
RANDOM_FAULT_STEPS = {
    "503": {"http_status": 503, "body": {"error_code": "TEMPORARILY_UNAVAILABLE",
                                         "message": "injected 503"}},
    "429": {"http_status": 429, "body": {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                         "message": "injected 429"}},
    "reset": {"fault": "reset"},
}

TASK_KINDS = ("spark_python_task", "notebook_task", "spark_jar_task", "spark_submit_task",
              "python_wheel_task", "sql_task", "dbt_task", "pipeline_task", "run_job_task")


class ApiError(Exception):
    """An error answer in Databricks' shape."""

    def __init__(self, http_status, error_code, message):
        super().__init__(message)
        self.http_status = http_status
        self.body = {"error_code": error_code, "message": message}


MULTI_TASK_OUTPUT_REFUSAL = ("Retrieving the output of runs with multiple tasks is not "
                             "supported. Please retrieve the output of each individual task run "
                             "instead.")


def task_units(body):
    """The task definitions of a submit body: its tasks[], or the body itself."""
    tasks = body.get("tasks")
    return [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) and tasks \
        else [body]


class Run:
    def __init__(self, run_id, job_id, body, script, address, output=None):
        self.run_id = run_id
        self.job_id = job_id
        self.body = body
        units = task_units(body)
        self.task_keys = [u.get("task_key", body.get("run_name", "task")) if u is not body
                          else body.get("run_name", "task") for u in units]
        self.task_kinds = [{k: u[k] for k in TASK_KINDS if k in u} for u in units]
        # task_key -> runs/get-output fields
        self.outputs = {key: copy.deepcopy(output or {}) for key in self.task_keys}
        self.script = copy.deepcopy(script)
        self.position = 0          # index of the step the next runs/get answers
        self.last = None           # last run-state step answered (None: never polled)
        self.polls = 0
        self.cancels = 0
        self.start_time = int(time.time() * 1000)
        self.end_time = 0
        self.run_page_url = "https://%s/?o=0#job/%d/run/%d" % (address, job_id, run_id)

    def next_step(self):
        step = self.script[self.position]
        if self.position < len(self.script) - 1:
            self.position += 1
        return step

    def terminal(self):
        return self.last is not None and self.last.get("life_cycle_state") in TERMINAL_LIFE_CYCLES

    def describe(self):
        return {"run_id": self.run_id, "job_id": self.job_id, "body": self.body,
                "script": self.script, "position": self.position, "polls": self.polls,
                "cancels": self.cancels, "run_page_url": self.run_page_url,
                "last_state": self.last, "outputs": self.outputs,
                "task_run_ids": [self.task_run_id(i) for i in range(len(self.task_keys))]}

    def task_run_id(self, index):
        return self.run_id * 100 + index + 1


class State:
    def __init__(self, address, token):
        self.lock = threading.Lock()
        self.address = address
        self.token = token
        self.reset()

    def reset(self):
        self.runs = {}
        self.next_run_id = FIRST_RUN_ID
        self.next_job_id = FIRST_JOB_ID
        self.next_script = copy.deepcopy(DEFAULT_SCRIPT)
        self.tokens = {}
        self.injected = {}
        self.forgotten = {}
        self.missing_style = "400"
        self.include_status = True
        self.requests = []
        self.repeat = set()        # injected keys whose last answer repeats
        self.unknown_run = None
        self.random_faults = None
        self.random = random.Random(0)
        self.record = True
        self.next_output = {}
        self.counts = {}           # path -> requests received
        self.bearer_tokens = {self.token}  # static bearer tokens taken
        self.oauth = None          # {"client_id", "client_secret", "expires_in"}: OAuth on
        self.issued = {}           # issued access token -> expiry (time.time() scale)
        self.revoked = set()
        # Hanging requests wait on this; /fake/release sets it and puts a
        # fresh one in place for later hangs. Not reset with the rest.
        if not hasattr(self, "release"):
            self.release = threading.Event()


def queue_injected(state, key, body):
    """/fake/inject: queues body["answers"] for `key`; "clear" empties the queue first, "repeat"
    makes its last answer answer forever. Needs state.lock held; fake_kubernetes.py shares it."""
    if body.get("clear"):
        state.injected.pop(key, None)
        state.repeat.discard(key)
    state.injected.setdefault(key, []).extend(body.get("answers", []))
    if body.get("repeat"):
        state.repeat.add(key)


def next_injected(state, key):
    """The injected answer due for `key`, or None. Needs state.lock held."""
    queue = state.injected.get(key)
    if not queue:
        return None
    return queue[0] if len(queue) == 1 and key in state.repeat else queue.pop(0)


def injected_step(step):
    """True for a step that is an HTTP answer or a fault rather than a run state."""
    return "http_status" in step or "fault" in step or step.get("close")


def missing_run(style, run_id):
    message = "Run %s does not exist." % run_id
    if style == "404":
        return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def parse_run_id(value, where):
    """Databricks takes int64 run ids as JSON numbers or numeric strings."""
    if value is None:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "Missing required field: run_id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApiError(400, "MALFORMED_REQUEST",
                       "Could not parse request object: Expected an int64 for run_id in %s" % where)
    text = str(value)
    if not text.isdigit() or int(text) > 2**63 - 1:
        raise ApiError(400, "INVALID_PARAMETER_VALUE",
                       "Invalid value for run_id: '%s' is not a valid int64" % text)
    return int(text)


def query_run_id(url):
    """The run_id query argument of a GET, as Databricks reads it."""
    values = urllib.parse.parse_qs(url.query, keep_blank_values=True).get("run_id")
    if values is not None and len(values) != 1:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "run_id given more than once")
    return parse_run_id(values[0] if values else None, "query")


def validate_submit(body):
    """The checks a real workspace makes that a connector can get wrong."""
    token = body.get("idempotency_token")
    if token is not None and (not isinstance(token, str) or len(token) > 64):
        raise ApiError(400, "INVALID_PARAMETER_VALUE",
                       "idempotency_token must be a string of at most 64 characters")
    tasks = body.get("tasks")
    units = tasks if isinstance(tasks, list) and tasks else [body]
    for unit in units:
        if not any(kind in unit for kind in TASK_KINDS):
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "One of the task types must be provided: %s" % ", ".join(TASK_KINDS[:3]))
        cluster = unit.get("new_cluster")
        if cluster is not None:
            if not isinstance(cluster, dict) or not cluster.get("spark_version"):
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               "Missing required field: new_cluster.spark_version")
        if cluster is not None and "existing_cluster_id" in unit:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "Only one of existing_cluster_id and new_cluster may be set")


def status_of(step):
    """The newer `status` object for a run-state step."""
    life = step.get("life_cycle_state", "PENDING")
    status = {"state": STATUS_STATE.get(life, life)}
    if life in TERMINAL_LIFE_CYCLES:
        result = step.get("result_state")
        if life == "INTERNAL_ERROR":
            code, kind = "INTERNAL_ERROR", "INTERNAL_ERROR"
        else:
            code, kind = TERMINATION.get(result, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
        status["termination_details"] = {"code": code, "type": kind,
                                         "message": step.get("state_message", "")}
    return status


def run_body(run, step, include_status):
    """The runs/get answer for `run` in the state `step`."""
    life = step.get("life_cycle_state", "PENDING")
    state = {"life_cycle_state": life,
             "state_message": step.get("state_message", ""),
             "user_cancelled_or_timedout": step.get("user_cancelled_or_timedout", False)}
    if "result_state" in step:
        state["result_state"] = step["result_state"]
    if life in TERMINAL_LIFE_CYCLES and not run.end_time:
        run.end_time = int(time.time() * 1000)
    body = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "creator_user_name": "fake@example.com",
        "original_attempt_run_id": run.run_id,
        "run_name": run.body.get("run_name", "Untitled"),
        "run_page_url": run.run_page_url,
        "run_type": "SUBMIT_RUN",
        "state": state,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "format": "SINGLE_TASK" if "tasks" not in run.body else "MULTI_TASK",
        "tasks": task_runs(run, state, step, include_status),
    }
    if life in ("RUNNING", "TERMINATING") or life in TERMINAL_LIFE_CYCLES:
        body["cluster_instance"] = {"cluster_id": "0101-000000-fake%d" % run.run_id,
                                    "spark_context_id": "55500%d" % run.run_id}
    if "status" in step:
        if step["status"] is not None:
            body["status"] = step["status"]
    elif include_status:
        body["status"] = status_of(step)
    body.update(copy.deepcopy(step.get("extra") or {}))
    return body


def success_body(run, include_status):
    """A finished-with-success answer for `run`, leaving the run untouched."""
    end_time = run.end_time
    body = run_body(run, SUCCESS_STEP, include_status)
    run.end_time = end_time
    return body


def task_state(state, override):
    """A task's `state`: the run's, or the step's override for that task."""
    if not override:
        return dict(state)
    out = {"life_cycle_state": override.get("life_cycle_state", state["life_cycle_state"]),
           "state_message": override.get("state_message", ""),
           "user_cancelled_or_timedout": False}
    if "result_state" in override:
        out["result_state"] = override["result_state"]
    return out


def task_runs(run, state, step, include_status):
    overrides = step.get("tasks") or {}
    tasks = []
    for i, key in enumerate(run.task_keys):
        override = overrides.get(key)
        task = {"run_id": run.task_run_id(i), "task_key": key,
                "state": task_state(state, override), "run_page_url": run.run_page_url,
                "attempt_number": 0}
        task.update(copy.deepcopy(run.task_kinds[i]))
        if include_status and override:
            task["status"] = status_of(dict(override, life_cycle_state=task["state"][
                "life_cycle_state"]))
        elif include_status and "status" not in step:
            task["status"] = status_of(step)
        tasks.append(task)
    return tasks


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as curl expects
    server_version = "FakeDatabricks/1.0"
    timeout = 60

    # ---- plumbing -------------------------------------------------------

    def log_message(self, fmt, *args):
        sys.stderr.write("fake: %s %s\n" % (self.address_string(), fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise ApiError(400, "MALFORMED_REQUEST", "request too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(400, "MALFORMED_REQUEST", "request too large")
        return self.rfile.read(length) if length else b""

    def encode(self, body):
        """(bytes, content type) for an answer body."""
        if isinstance(body, (dict, list)):
            return json.dumps(body).encode(), "application/json"
        data = (body or "").encode() if isinstance(body, str) else (body or b"")
        return data, "text/html; charset=utf-8"

    def send(self, status, body, headers=None, content_type=None, extra_length=0):
        """extra_length: claim that many bytes more than are sent (a cut answer)."""
        data, ctype = self.encode(body)
        self.send_head(status, content_type or ctype, len(data) + extra_length, headers)
        self.wfile.write(data)

    def send_head(self, status, content_type, length, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()

    def drop(self, reset=False):
        """Ends the connection without (the rest of) an answer. reset: a TCP RST
        rather than a FIN. The descriptor is closed here, not when the handler's
        file objects go, so the peer sees it at once."""
        self.close_connection = True
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
            os.close(sock.detach())
        except OSError:
            pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        state = self.server.state
        try:
            raw = self.read_body()
        except (ValueError, ApiError) as e:
            self.send(400, {"error_code": "MALFORMED_REQUEST", "message": str(e)})
            return
        if url.path.startswith("/fake/"):
            self.control(method, url.path, raw)
            return
        try:
            body_json = json.loads(raw) if raw else None
        except ValueError:
            body_json = None
        arrived = time.time()
        with state.lock:
            state.counts[url.path] = state.counts.get(url.path, 0) + 1
            if state.record:
                state.requests.append({
                    "method": method, "path": url.path,
                    "query": urllib.parse.parse_qs(url.query, keep_blank_values=True),
                    "raw_query": url.query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body_json if body_json is not None else raw.decode("utf-8", "replace"),
                    "time": arrived})
        try:
            if url.path != OIDC_TOKEN:
                self.check_auth()
            with state.lock:
                step = next_injected(state, (method, url.path))
            if step is not None and step.get("fault") == "drop_after_create":
                # The workspace does the work; only the answer is lost.
                self.api(method, url, raw)
                self.drop()
                return
            if step is not None:
                self.answer_injected(step)
                return
            status, answer, delay = self.api(method, url, raw)
        except ApiError as e:
            self.send(e.http_status, e.body)
            return
        if delay:
            time.sleep(delay / 1000.0)
        if isinstance(answer, dict) and injected_step(answer):
            self.answer_injected(answer, slept=True)
            return
        self.send(status, answer)

    def answer_injected(self, step, slept=False):
        if step.get("delay_ms") and not slept:
            time.sleep(step["delay_ms"] / 1000.0)
        fault = step.get("fault")
        if step.get("close"):  # drop the connection without an answer
            self.drop()
            return
        if fault == "hang":
            # Waits on an event, not the socket: other connections, the
            # control API and SIGTERM carry on (handler threads are daemons).
            self.server.state.release.wait(step.get("hang_ms", HANG_MS) / 1000.0)
            self.drop()
            return
        if fault == "drop_after_create":  # outside runs/submit: just the drop
            self.drop()
            return
        if fault == "empty":
            self.send_head(200, step.get("content_type", "application/json"), 0)
            return
        status = int(step.get("http_status", 200))
        if "body_latin1" in step:  # any bytes, e.g. ones that are not UTF-8
            data, ctype = step["body_latin1"].encode("latin-1"), "application/json"
        else:
            data, ctype = self.encode(step.get("body", ""))
        ctype = step.get("content_type", ctype)
        if fault == "reset":
            self.send_head(status, ctype, len(data), step.get("headers"))
            self.wfile.write(data[:len(data) // 2])
            self.drop(reset=True)
            return
        if fault == "truncate":
            self.send(status, data, step.get("headers"), ctype, extra_length=64)
            self.drop()
            return
        if fault is not None:
            raise ApiError(500, "FAKE_ERROR", "unknown fault %r (known: %s)"
                           % (fault, ", ".join(FAULTS)))
        self.send(status, data, step.get("headers"), ctype)

    def check_auth(self):
        value = self.headers.get("Authorization")
        if not value or not value.startswith("Bearer "):
            raise ApiError(401, "UNAUTHENTICATED",
                           "Credential was not sent or was of an unsupported type for this API.")
        token = value[len("Bearer "):]
        state = self.server.state
        with state.lock:
            if token in state.bearer_tokens:
                return
            expiry = state.issued.get(token)
            if expiry is not None and (token in state.revoked or expiry <= time.time()):
                raise ApiError(401, "UNAUTHENTICATED", "Token is expired or revoked.")
            if expiry is None:
                raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    def oauth_token(self, raw):
        """The token endpoint of a workspace for a service principal (client credentials)."""
        state = self.server.state
        with state.lock:
            oauth = dict(state.oauth) if state.oauth else None
        value = self.headers.get("Authorization", "")
        try:
            user, _, password = base64.b64decode(value[len("Basic "):]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = None
        if (not oauth or not value.startswith("Basic ") or user != oauth["client_id"]
                or password != oauth["client_secret"]):
            return 401, {"error": "invalid_client",
                         "error_description": "Client authentication failed"}, 0
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
        if form.get("grant_type") != ["client_credentials"] or form.get("scope") != ["all-apis"]:
            return 400, {"error": "invalid_request",
                         "error_description": "expected grant_type=client_credentials and "
                                              "scope=all-apis"}, 0
        expires_in = int(oauth.get("expires_in", 3600))
        if oauth.get("delay_ms"):
            time.sleep(oauth["delay_ms"] / 1000.0)
        with state.lock:
            token = "fake-oauth-%d-%s" % (len(state.issued) + 1, secrets.token_hex(8))
            state.issued[token] = time.time() + expires_in
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                     "scope": "all-apis"}, 0

    # ---- the Jobs API ---------------------------------------------------

    def api(self, method, url, raw):
        """Returns (http status, answer, delay_ms); raises ApiError."""
        if url.path == OIDC_TOKEN and method == "POST":
            return self.oauth_token(raw)
        routes = {API + "submit": ("POST", self.submit),
                  API + "get": ("GET", self.get_run),
                  API + "cancel": ("POST", self.cancel),
                  API + "get-output": ("GET", self.get_output)}
        route = routes.get(url.path)
        if route is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'" % (method, url.path))
        if route[0] != method:
            raise ApiError(405, "METHOD_NOT_ALLOWED",
                           "Method %s is not allowed for %s" % (method, url.path))
        body = None
        if method == "POST":
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "MALFORMED_REQUEST",
                               "Could not parse request object: malformed JSON")
            if not isinstance(body, dict):
                raise ApiError(400, "MALFORMED_REQUEST",
                               "Could not parse request object: expected a JSON object")
        return route[1](url, body)

    def submit(self, url, body):
        state = self.server.state
        validate_submit(body)
        with state.lock:
            token = body.get("idempotency_token")
            if token is not None and token in state.tokens:
                return 200, {"run_id": state.tokens[token]}, 0
            run = Run(state.next_run_id, state.next_job_id, body, state.next_script, state.address,
                      state.next_output)
            state.next_run_id += 1
            state.next_job_id += 1
            state.runs[run.run_id] = run
            if token is not None:
                state.tokens[token] = run.run_id
            return 200, {"run_id": run.run_id}, 0

    def get_run(self, url, body):
        state = self.server.state
        run_id = query_run_id(url)
        with state.lock:
            run = state.runs.get(run_id)
            if run is None and state.unknown_run is not None and run_id not in state.forgotten:
                run = Run(run_id, state.next_job_id, {"run_name": "unknown %d" % run_id},
                          [state.unknown_run], state.address)
                state.next_job_id += 1
                state.runs[run_id] = run
            if run is None:
                raise missing_run(state.forgotten.get(run_id, state.missing_style), run_id)
            run.polls += 1
            faults = state.random_faults
            if faults and state.random.random() < float(faults.get("rate", 0)):
                kind = state.random.choice(faults.get("kinds") or sorted(RANDOM_FAULT_STEPS))
                step = copy.deepcopy((faults.get("steps") or {}).get(kind)
                                     or RANDOM_FAULT_STEPS[kind])
                state.counts["random_faults"] = state.counts.get("random_faults", 0) + 1
            else:
                step = run.next_step()
            if injected_step(step):
                if step.get("fault") in ("reset", "truncate") and "body" not in step:
                    step = dict(step, body=success_body(run, state.include_status))
                return step.get("http_status", 200), step, step.get("delay_ms", 0)
            run.last = step
            body = run_body(run, step, state.include_status)
            if "content_type" in step:
                return 200, {"http_status": 200, "body": json.dumps(body),
                             "content_type": step["content_type"]}, step.get("delay_ms", 0)
            return 200, body, step.get("delay_ms", 0)

    def get_output(self, url, body):
        state = self.server.state
        run_id = query_run_id(url)
        with state.lock:
            run, index = state.runs.get(run_id), 0
            if run is not None and len(run.task_keys) > 1:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", MULTI_TASK_OUTPUT_REFUSAL)
            if run is None:
                run, index = state.runs.get(run_id // 100), run_id % 100 - 1
                if run is None or not 0 <= index < len(run.task_keys):
                    raise missing_run(state.forgotten.get(run_id, state.missing_style), run_id)
            key = run.task_keys[index]
            step = run.last or run.script[0]
            answer = copy.deepcopy(run.outputs.get(key, {}))
            metadata = run_body(run, step, state.include_status)
            metadata.update({"run_id": run.task_run_id(index), "task_key": key})
            metadata.pop("tasks", None)
            answer["metadata"] = metadata
            return 200, answer, 0

    def cancel(self, url, body):
        state = self.server.state
        run_id = parse_run_id(body.get("run_id"), "body")
        with state.lock:
            run = state.runs.get(run_id)
            if run is None:
                raise missing_run(state.forgotten.get(run_id, state.missing_style), run_id)
            run.cancels += 1
            if not run.terminal() and run.cancels == 1:
                run.script = copy.deepcopy(CANCEL_SCRIPT)
                run.position = 0
        return 200, {}, 0

    # ---- the control API ------------------------------------------------

    def control_run(self, body):
        """The run body["run_id"] names (state locked), or None after answering 404."""
        run = self.server.state.runs.get(int(body["run_id"]))
        if run is None:
            self.send(404, {"error": "no such run"})
        return run

    def control(self, method, path, raw):
        state = self.server.state
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.send(400, {"error": "control body is not JSON"})
            return
        with state.lock:
            if (method, path) == ("GET", "/fake/requests"):
                answer = state.requests
            elif (method, path) == ("GET", "/fake/runs"):
                answer = {"runs": [r.describe() for r in state.runs.values()],
                          "next_script": state.next_script, "tokens": state.tokens}
            elif (method, path) == ("POST", "/fake/reset"):
                state.release.set()
                state.release = threading.Event()
                state.reset()
                answer = {}
            elif (method, path) == ("POST", "/fake/script"):
                steps = body.get("steps")
                if not isinstance(steps, list) or not steps:
                    self.send(400, {"error": "steps must be a non-empty list"})
                    return
                if "run_id" in body:
                    run = self.control_run(body)
                    if run is None:
                        return
                    run.script, run.position = copy.deepcopy(steps), 0
                else:
                    state.next_script = copy.deepcopy(steps)
                answer = {}
            elif (method, path) == ("POST", "/fake/inject"):
                queue_injected(state, (body.get("method", "GET"), body.get("path", "")), body)
                answer = {}
            elif (method, path) == ("POST", "/fake/release"):
                state.release.set()
                state.release = threading.Event()
                answer = {}
            elif (method, path) == ("GET", "/fake/stats"):
                answer = {"counts": state.counts, "runs": len(state.runs)}
            elif (method, path) == ("POST", "/fake/output"):
                output = body.get("output")
                if not isinstance(output, dict):
                    self.send(400, {"error": "output must be an object"})
                    return
                if "run_id" in body:
                    run = self.control_run(body)
                    if run is None:
                        return
                    for key in run.task_keys:
                        if body.get("task_key", key) == key:
                            run.outputs[key] = copy.deepcopy(output)
                else:
                    state.next_output = copy.deepcopy(output)
                answer = {}
            elif (method, path) == ("POST", "/fake/forget"):
                run_id = int(body["run_id"])
                state.runs.pop(run_id, None)
                state.forgotten[run_id] = str(body.get("style", state.missing_style))
                answer = {}
            elif (method, path) == ("POST", "/fake/config"):
                if "missing_style" in body:
                    state.missing_style = str(body["missing_style"])
                if "include_status" in body:
                    state.include_status = bool(body["include_status"])
                if "unknown_run" in body:
                    state.unknown_run = body["unknown_run"]
                if "random_faults" in body:
                    state.random_faults = body["random_faults"]
                    seed = (body["random_faults"] or {}).get("seed")
                    state.random = random.Random(seed if seed is not None else 0)
                if "record" in body:
                    state.record = bool(body["record"])
                if "oauth" in body:
                    state.oauth = body["oauth"]
                    if "tokens" not in body and body["oauth"]:
                        state.bearer_tokens = set()
                if "tokens" in body:
                    state.bearer_tokens = set(body["tokens"])
                answer = {}
            elif (method, path) == ("POST", "/fake/oauth/revoke"):
                state.revoked.update(state.issued)
                answer = {}
            else:
                self.send(404, {"error": "no control endpoint %s %s" % (method, path)})
                return
            data = json.loads(json.dumps(answer))  # snapshot while locked
        self.send(200, data)


class TLSServer(http.server.ThreadingHTTPServer):
    """A threading HTTPS server on 127.0.0.1; fake_kubernetes.py serves through it too."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, context, handler):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        # TLS handshake here, on the connection's own thread, so one slow or
        # broken client cannot stall accept().
        request.settimeout(self.RequestHandlerClass.timeout)
        # Headers and body leave in separate writes: without this, Nagle plus the client's
        # delayed ACK add 40 ms to every answer.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("fake: TLS handshake with %s failed: %s\n" % (client_address, e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def serve(server):
    """Prints PORT=, then serves until SIGTERM or SIGINT."""
    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("PORT=%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class Server(TLSServer):
    def __init__(self, address, context, token):
        super().__init__(address, context, Handler)
        self.state = State("%s:%d" % self.server_address[:2], token)


def main():
    parser = argparse.ArgumentParser(description="fake Databricks Jobs API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost"):
        parser.error("the fake listens on 127.0.0.1 only")

    server = Server(("127.0.0.1", args.port), tls_context(args.cert, args.key), args.token)
    serve(server)


if __name__ == "__main__":
    main()
