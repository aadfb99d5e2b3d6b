#!/usr/bin/python3
"""Writes the fuzzers' seed corpora: tests/fuzz/corpus/<target>/<name>.

    /usr/bin/python3 tests/fuzz/make_seeds.py [--out DIR]

Each target gets a handful of small valid inputs and near-valid ones (a wrong type, a missing
key, a truncated message), so libFuzzer starts inside the parsers instead of at their first
check. Protobuf seeds are serialized with Python modules that protoc generates from proto/ into
a temp dir (Debian's python3-protobuf and protoc). Output is deterministic: run this again after
changing it and commit the result. Reproducers of fixed crashes are named regress-*: those this
script can build it writes; others, committed by hand, it leaves alone.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = "ghcr.io/flyteorg/flytekit:py3.11-1.14.0"
ARGS = ["pyflyte-execute", "--inputs", "s3://bucket/inputs.pb", "--output-prefix",
        "s3://bucket/out/n0/0", "--resolver", "default_task_resolver", "--", "task-module",
        "workflows.spark", "task-name", "hello_spark"]


def load_protos(tmp):
    files = []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "proto")):
        files += [os.path.relpath(os.path.join(dirpath, n), os.path.join(ROOT, "proto"))
                  for n in names if n.endswith(".proto")]
    subprocess.run(["protoc", "--python_out=" + tmp, "-Iproto", "-I/usr/include"] + sorted(files),
                   cwd=ROOT, check=True, timeout=60)
    sys.path.insert(0, tmp)
    from flyteidl.admin import agent_pb2
    from flyteidl.core import identifier_pb2
    from google.protobuf import struct_pb2
    return agent_pb2, identifier_pb2, struct_pb2


def spec_customs():
    """The `custom` of every tests/fixtures/spec/*.in.json (hand-checked task configs)."""
    out = {}
    spec = os.path.join(ROOT, "tests", "fixtures", "spec")
    for name in sorted(os.listdir(spec)):
        if name.endswith(".in.json"):
            with open(os.path.join(spec, name)) as f:
                out[name[:-len(".in.json")]] = json.load(f)["custom"]
    return out


def classic_custom():
    return {"sparkConf": {"spark.driver.memory": "1000M"}, "applicationType": "PYTHON",
            "mainApplicationFile": "local:///usr/local/bin/entrypoint.py",
            "databricksConf": {"run_name": "example", "timeout_seconds": 3600,
                               "new_cluster": {"spark_version": "13.3.x-scala2.12",
                                               "node_type_id": "m5.xlarge", "num_workers": 2}}}


def create_requests(admin, ident):
    def request(custom, metadata=True, container=True, task_type="spark"):
        req = admin.CreateTaskRequest(output_prefix="s3://bucket/out/n0/0")
        tpl = req.template
        tpl.type = task_type
        tpl.id.resource_type = ident.TASK
        tpl.id.project, tpl.id.domain, tpl.id.name, tpl.id.version = (
            "flytesnacks", "development", "workflows.spark.hello_spark", "v1")
        if container:
            tpl.container.image = IMAGE
            tpl.container.args.extend(ARGS)
            tpl.container.env.add(key="GREETING", value="hello world")
            tpl.container.env.add(key="GREETING", value="later wins")
        if custom is not None:
            tpl.custom.update(custom)
        if metadata:
            tid = req.task_execution_metadata.task_execution_id
            tid.task_id.project, tid.task_id.domain = "flytesnacks", "development"
            tid.task_id.name, tid.task_id.version = "workflows.spark.hello_spark", "v1"
            tid.node_execution_id.node_id = "n0"
            ex = tid.node_execution_id.execution_id
            ex.project, ex.domain, ex.name = "flytesnacks", "development", "f1b2c3d4e5"
            tid.retry_attempt = 1
            req.task_execution_metadata.namespace = "flytesnacks-development"
        return req.SerializeToString(deterministic=True)

    seeds = {"classic": request(classic_custom()),
             "no-metadata": request(classic_custom(), metadata=False),
             "no-container": request(classic_custom(), container=False),
             "no-custom": request(None),
             "no-databricks-conf": request({"sparkConf": {}}),
             "num-workers-string": request(dict(classic_custom(), databricksConf={
                 "new_cluster": {"spark_version": "13.3", "num_workers": "two"}})),
             "instance": request(dict(classic_custom(),
                                      databricksInstance="Other.Example.COM:443"))}
    for name, custom in spec_customs().items():
        seeds["spec-" + name] = request(custom)
    seeds["truncated"] = seeds["classic"][:len(seeds["classic"]) // 2]
    seeds["regress-deep-custom-list"] = deep_custom_request(5000)
    # Flyte 2: the same request with the executor's connection (the targets try both unpackers).
    seeds["flyte2-connection"] = seeds["classic"] + connection(b"dapi-fuzz-seed")
    seeds["flyte2-token-newline"] = seeds["classic"] + connection(b"dapi-fuzz\r\nX-Evil: 1")
    return seeds


def varint(n):
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def field(number, payload):
    """A length-delimited field, on the wire."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def connection(token):
    """Flyte 2's `connection = 5` field carrying secrets["databricks_token"] = token, to append
    to a request (Create, Get and Delete all number it 5)."""
    entry = field(1, b"databricks_token") + field(2, token)  # map entry: key, value
    return field(5, field(1, b"databricks") + field(2, entry))  # Connection.task_type, .secrets


def deep_custom_request(lists):
    """A spark CreateTaskRequest whose custom is {"k": [[[...]]]}, `lists` lists deep, written
    by hand (Python's protobuf refuses to build it). 5000 lists (34 KB) overflowed the stack of
    protobuf-c's unpack under ASan before daemon/pbdepth.c bounded the nesting; 20000 did without
    ASan (tests/unit/test_pbdepth.c)."""
    value = b""
    for _ in range(lists):
        value = field(6, field(1, value))  # Value.list_value { ListValue.values: value }
    custom = field(1, field(1, b"k") + field(2, value))  # Struct.fields: {key, value}
    template = field(2, b"spark") + field(5, custom)  # TaskTemplate.type, .custom
    return field(2, template)  # CreateTaskRequest.template


def resource_metas():
    return {
        "plain": b'{"databricks_instance": "example.cloud.databricks.com", "run_id": "1000"}',
        "flytekit-token": b'{"databricks_instance": "https://Example.cloud.databricks.com/", '
                          b'"run_id": 123456789012, "auth_token": "dapi-not-a-secret"}',
        "port": b'{"databricks_instance": "127.0.0.1:08443", "run_id": "7"}',
        "run-id-letters": b'{"databricks_instance": "example.com", "run_id": "12a"}',
        "bad-host": b'{"databricks_instance": "-bad-.example.com", "run_id": "1"}',
        "not-object": b'["example.com", "1"]',
        "escaped": b'{"databricks_instance": "ex\\u0061mple.com", "run_id": "1", "x": [1, {}]}',
        "too-long-run-id": b'{"databricks_instance": "e.com", "run_id": "12345678901234567890"}',
        "namespace-secret": b'{"databricks_instance": "e.com", "run_id": "1", '
                            b'"namespace": "flytesnacks-development", "token_secret": "team.token"}',
        "namespace-bad": b'{"databricks_instance": "e.com", "run_id": "1", "namespace": "../x"}',
        "auth-token-null": b'{"databricks_instance": "e.com", "run_id": "1", "auth_token": null}',
    }


def credential_answers():
    """Bodies of a Kubernetes Secret's GET and of an OAuth token endpoint's answer."""
    secret = {"kind": "Secret", "apiVersion": "v1",
              "metadata": {"name": "databricks-token", "namespace": "ns"},
              "data": {"token": "ZGFwaS1ub3QtYS1zZWNyZXQK"}, "type": "Opaque"}
    return {
        "secret": json.dumps(secret).encode(),
        "secret-no-key": json.dumps(dict(secret, data={"other": "eA=="})).encode(),
        "secret-bad-base64": json.dumps(dict(secret, data={"token": "YQ=a"})).encode(),
        "status-403": b'{"kind": "Status", "message": "secrets \\"t\\" is forbidden", "code": 403}',
        "token": b'{"access_token": "dose-not-a-secret", "token_type": "Bearer", '
                 b'"expires_in": 3600, "scope": "all-apis"}',
        "token-string-expiry": b'{"access_token": "x", "expires_in": "120"}',
        "invalid-client": b'{"error": "invalid_client", "error_description": "Client '
                          b'authentication failed"}',
    }


def task_references(admin, which):
    cls = admin.GetTaskRequest if which == "get" else admin.DeleteTaskRequest
    seeds = {}
    for name, meta in resource_metas().items():
        req = cls(resource_meta=meta)
        req.task_category.name = "spark"
        seeds[name] = req.SerializeToString(deterministic=True)
    legacy = cls(resource_meta=resource_metas()["plain"], task_type="spark")
    seeds["legacy-task-type"] = legacy.SerializeToString(deterministic=True)
    seeds["flyte2-connection"] = seeds["plain"] + connection(b"dapi-fuzz-seed")
    seeds["empty"] = b""
    return seeds


def structs(struct_pb2):
    def packed(value):
        s = struct_pb2.Struct()
        s.update(value)
        return s.SerializeToString(deterministic=True)

    nested = {"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}}
    seeds = {"classic": packed(classic_custom()),
             "numbers": packed({"int": 2, "big": 3000000000, "frac": 0.1, "neg": -0.0,
                                "huge": 1e300, "tiny": 5e-324, "limit": 9007199254740993.0}),
             "kinds": packed({"s": "h\u00e9llo \u2603 \"q\" \\", "t": True, "f": False,
                              "n": None, "l": [], "o": {}}),
             "nested": packed(nested)}
    # A key twice: protobuf map semantics (last value wins).
    seeds["repeated-key"] = packed({"k": 1}) + packed({"k": "two"})
    # A Value with no kind set, and one whose kind is an empty struct.
    entry_no_kind = b"\x0a\x05\x0a\x01k\x12\x00"
    seeds["value-without-kind"] = entry_no_kind
    seeds["truncated"] = seeds["classic"][:len(seeds["classic"]) // 2]
    return seeds


def run_bodies():
    def body(value):
        return json.dumps(value, separators=(",", ":")).encode()

    url = "https://example.cloud.databricks.com/#job/1/run/1000"
    return {
        "pending": body({"run_id": 1000, "state": {"life_cycle_state": "PENDING"},
                         "run_page_url": url}),
        "running-status": body({"run_id": 1000, "status": {"state": "RUNNING"},
                                "run_page_url": url}),
        "succeeded": body({"state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS",
                                     "state_message": ""}}),
        "failed-status": body({"status": {"state": "TERMINATED", "termination_details": {
            "code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR",
            "message": "Task failed with error: \u00e9 boom"}}}),
        "internal-error": body({"state": {"life_cycle_state": "INTERNAL_ERROR",
                                          "state_message": "x" * 300}}),
        "skipped": body({"state": {"life_cycle_state": "SKIPPED"}}),
        "unknown-state": body({"state": {"life_cycle_state": "BRAND_NEW"}}),
        "error-body": body({"error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": "Run 1000 does not exist."}),
        "lock": body({"error_code": "COULD_NOT_ACQUIRE_LOCK", "message": "retry"}),
        "no-state": body({"run_id": 1000}),
        "wrong-types": body({"state": {"life_cycle_state": 3}, "status": [],
                             "run_page_url": "javascript:1"}),
        "not-json": b"<html>502 Bad Gateway</html>",
        "array": b"[1,2,3]",
        # runs/get with task runs, and runs/get-output answers (issue 14).
        "multi-task-failed": body({"run_id": 7, "job_id": 1, "start_time": 1700000000000,
                                   "setup_duration": 1200, "state": {
                                       "life_cycle_state": "TERMINATED", "result_state": "FAILED"},
                                   "cluster_instance": {"cluster_id": "c", "spark_context_id": "1"},
                                   "tasks": [
                                       {"run_id": 71, "task_key": "a", "notebook_task": {},
                                        "state": {"life_cycle_state": "TERMINATED",
                                                  "result_state": "FAILED"}},
                                       {"run_id": 72, "task_key": "b",
                                        "state": {"life_cycle_state": "TERMINATED",
                                                  "result_state": "UPSTREAM_FAILED"}}]}),
        "output-failed": body({"error": "ValueError: boom", "error_trace":
                               "Traceback:\n  raise ValueError\n\u001b[0;31mValueError\u001b[0m",
                               "logs": "one\r\ntwo\n", "metadata": {"run_id": 71}}),
        "output-notebook": body({"notebook_output": {"result": "42", "truncated": True}}),
    }


def configs():
    with open(os.path.join(ROOT, "config", "flyte-databricks-connector.json"), "rb") as f:
        example = f.read()
    return {
        "example": example,
        "empty-object": b"{}",
        "small": b'{"default_instance": "e.cloud.databricks.com", "workers": 4, '
                 b'"log_level": "debug", "allowed_instances": ["*"]}',
        "limits": b'{"instance_limits": {"a.example.com": {"rate_limit_rps": 5, "burst": 0}}, '
                  b'"instance_rate_limit_rps": 10, "status_cache_ttl_ms": 500}',
        "errors": b'{"workers": "two", "unknown": 1, "listen": 5, "workers": 3}',
        "not-object": b'[1]',
        "syntax": b'{"workers": 2,\n "log_level": }',
    }


def templates():
    out = {}
    fixtures = os.path.join(ROOT, "tests", "fixtures", "template_json")
    for name in sorted(os.listdir(fixtures)):
        if name.endswith(".json"):
            with open(os.path.join(fixtures, name), "rb") as f:
                out[name[:-len(".json")]] = f.read()
    out["minimal"] = b'{"type": "spark", "custom": {"databricksConf": {}}}'
    out["null-fields"] = b'{"type": null, "container": {"image": null, "args": ["a", null]}}'
    out["typo"] = b'{"type": "spark", "contianer": {}}'
    return out


def write(out, target, seeds):
    directory = os.path.join(out, target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if not name.startswith("regress-"):
            os.remove(os.path.join(directory, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "fuzz", "corpus"))
    opts = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="fdc-seeds.")
    try:
        admin, ident, struct_pb2 = load_protos(tmp)
        write(opts.out, "create_request", create_requests(admin, ident))
        write(opts.out, "get_request", task_references(admin, "get"))
        write(opts.out, "delete_request", task_references(admin, "delete"))
        write(opts.out, "struct_json", structs(struct_pb2))
        write(opts.out, "run_phase", run_bodies())
        write(opts.out, "resmeta", resource_metas())
        write(opts.out, "config", configs())
        write(opts.out, "template_json", templates())
        write(opts.out, "credential_answers", credential_answers())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
