"""The whole create -> get -> delete flow with the daemon under valgrind.

The runner fails the test if valgrind exits 99 (memory errors, definite or
indirect leaks) or the daemon does not exit 0 after SIGTERM.
"""

import grpc

from harness import (CREATE, HEALTH, LIST_AGENTS, check, create_request, custom_config, eq,
                     resource_meta_of)


def test_valgrind_full_flow(t):
    env = t.start(valgrind=True)
    pb = t.pb
    env.ok(LIST_AGENTS, pb.admin.ListAgentsRequest(), pb.admin.ListAgentsResponse)
    env.fails(HEALTH, pb.health.HealthCheckRequest(service="nope"), grpc.StatusCode.NOT_FOUND)
    env.fails(CREATE, b"\x0a\x64abc", grpc.StatusCode.INVALID_ARGUMENT)
    env.fails(CREATE, create_request(pb, custom=custom_config(instance="evil.example.com")),
              grpc.StatusCode.PERMISSION_DENIED)
    env.fails(CREATE, create_request(pb, template=False), grpc.StatusCode.INVALID_ARGUMENT)
    resp = env.create(create_request(pb, custom=custom_config()))
    meta = resource_meta_of(resp)
    eq(meta["run_id"], "1000", "run_id")
    got = [env.phase_name(env.get(resp.resource_meta).phase) for _ in range(3)]
    eq(got, ["INITIALIZING", "RUNNING", "SUCCEEDED"], "phases")
    env.delete(resp.resource_meta)
    env.get({"databricks_instance": env.fake.address, "run_id": "999"})
    env.delete({"databricks_instance": env.fake.address, "run_id": "999"})
    env.fails("/flyteidl.service.AsyncAgentService/GetTaskMetrics", b"",
              grpc.StatusCode.UNIMPLEMENTED)
    check(len(env.fake.requests("/runs/cancel")) == 2, "runs/cancel requests")
