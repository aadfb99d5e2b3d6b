#!/usr/bin/python3
"""A fake Kubernetes API over HTTPS serving Secrets, for the end-to-end tests.

Standard library only. It answers GET /api/v1/namespaces/{ns}/secrets/{name}
as an API server does (a Secret's data base64-encoded; Status objects for
errors), accepts only the service account tokens it was given, and offers an
unauthenticated control API under /fake/ to set Secrets, script answers and
read back every request.

    fake_kubernetes.py --port 0 --cert server.pem --key server.key --sa-token T

prints "PORT=<n>" on stdout once listening (127.0.0.1 only) and runs until
SIGTERM or SIGINT.

Control API (no auth):
  POST /fake/secret  {"namespace": "ns", "name": "databricks-token",
                      "data": {"token": "plain value"}}   set (values encoded here)
                     {"namespace": ..., "name": ..., "delete": true}
  POST /fake/inject  {"path": "/api/v1/namespaces/ns/secrets/s" | "*",
                      "answers": [step, ...], "repeat": bool, "clear": bool}
                     a step answers one request before the real handler:
                     {"status": 403} (a Status object), {"status": 200, "body": ...},
                     {"delay_ms": N} (then the real answer), {"fault": "close"}
                     (the connection closes without an answer)
  POST /fake/config  {"sa_tokens": ["T1", ...]}            accepted bearer tokens
  GET  /fake/requests                                      [{"path", "token", "time"}]
  POST /fake/reset                                         no requests, no injections
"""

import argparse
import base64
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_databricks import (TLSServer, next_injected, queue_injected, serve,  # noqa: E402
                             tls_context)

import http.server  # noqa: E402

PREFIX = "/api/v1/namespaces/"
REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable"}


class State:
    def __init__(self, sa_token):
        self.lock = threading.Lock()
        self.secrets = {}       # (namespace, name) -> {key: plain value}
        self.injected = {}      # path or "*" -> [step, ...]
        self.repeat = set()
        self.requests = []
        self.sa_tokens = {sa_token}


def status(code, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": REASONS.get(code, "Unknown"), "code": code}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKubernetes/1.0"
    timeout = 60

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-k8s: %s %s\n" % (self.address_string(), fmt % args))

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/fake/"):
            self.control("GET", path)
            return
        self.api(path)

    def do_POST(self):
        self.control("POST", urllib.parse.urlsplit(self.path).path)

    def api(self, path):
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        with state.lock:
            state.requests.append({"path": path, "token": token, "time": time.time(),
                                   "accept": self.headers.get("Accept")})
            step = next_injected(state, path)
            if step is None:
                step = next_injected(state, "*")
            authorized = token in state.sa_tokens
        if step is not None:
            if step.get("delay_ms"):
                time.sleep(step["delay_ms"] / 1000.0)
            if step.get("fault") == "close":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if "status" in step:
                self.send(step["status"], step.get("body", status(step["status"], "injected")))
                return
        if not authorized:
            self.send(401, status(401, "Unauthorized"))
            return
        parts = path[len(PREFIX):].split("/") if path.startswith(PREFIX) else []
        if len(parts) != 3 or parts[1] != "secrets":
            self.send(404, status(404, "the server could not find the requested resource"))
            return
        namespace, name = parts[0], parts[2]
        with state.lock:
            data = state.secrets.get((namespace, name))
        if data is None:
            self.send(404, status(404, 'secrets "%s" not found' % name))
            return
        self.send(200, {"kind": "Secret", "apiVersion": "v1",
                        "metadata": {"name": name, "namespace": namespace},
                        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
                        "type": "Opaque"})

    def control(self, method, path):
        state = self.server.state
        body = self.body() if method == "POST" else {}
        with state.lock:
            if (method, path) == ("GET", "/fake/requests"):
                answer = list(state.requests)
            elif (method, path) == ("POST", "/fake/secret"):
                key = (body["namespace"], body["name"])
                if body.get("delete"):
                    state.secrets.pop(key, None)
                else:
                    state.secrets[key] = dict(body.get("data", {}))
                answer = {}
            elif (method, path) == ("POST", "/fake/inject"):
                queue_injected(state, body.get("path", "*"), body)
                answer = {}
            elif (method, path) == ("POST", "/fake/config"):
                if "sa_tokens" in body:
                    state.sa_tokens = set(body["sa_tokens"])
                answer = {}
            elif (method, path) == ("POST", "/fake/reset"):
                state.requests = []
                state.injected = {}
                state.repeat = set()
                answer = {}
            else:
                answer = None
        if answer is None:
            self.send(404, {"error": "no control endpoint %s %s" % (method, path)})
        else:
            self.send(200, answer)


class Server(TLSServer):
    def __init__(self, address, context, sa_token):
        super().__init__(address, context, Handler)
        self.state = State(sa_token)


def main():
    parser = argparse.ArgumentParser(description="fake Kubernetes API (Secrets)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sa-token", required=True)
    args = parser.parse_args()
    serve(Server(("127.0.0.1", args.port), tls_context(args.cert, args.key), args.sa_token))


if __name__ == "__main__":
    main()
