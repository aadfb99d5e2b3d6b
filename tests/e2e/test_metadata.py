"""Health checks, agent metadata, methods the daemon does not serve."""

import grpc

from harness import (GET_AGENT, GET_LOGS, GET_METRICS, HEALTH, LIST_AGENTS, SERVICE, check, eq)

SERVED = ["", "flyteidl.service.AsyncAgentService", "grpc.health.v1.Health",
          "flyteidl.service.AgentMetadataService", "flyteidl2.connector.AsyncConnectorService",
          "flyteidl2.connector.ConnectorMetadataService"]


def test_health_serving(t):
    env = t.start()
    h = t.pb.health
    for service in SERVED:
        resp = env.ok(HEALTH, h.HealthCheckRequest(service=service), h.HealthCheckResponse)
        eq(resp.status, h.HealthCheckResponse.SERVING, "health of %r" % service)
    env.fails(HEALTH, h.HealthCheckRequest(service="nope"), grpc.StatusCode.NOT_FOUND)
    eq(env.fake.requests(), [], "requests to Databricks for health checks")


def expected_agent(t):
    return ("Databricks Connector", {("spark", 0), ("databricks", 0)}, {"spark", "databricks"})


def agent_shape(agent):
    return (agent.name, {(c.name, c.version) for c in agent.supported_task_categories},
            set(agent.supported_task_types))


def test_list_agents(t):
    env = t.start()
    resp = env.ok(LIST_AGENTS, t.pb.admin.ListAgentsRequest(), t.pb.admin.ListAgentsResponse)
    eq(len(resp.agents), 1, "number of agents")
    agent = resp.agents[0]
    eq(agent_shape(agent), expected_agent(t), "agent")
    eq(len(agent.supported_task_categories), 2, "category count (no duplicates)")
    eq(len(agent.supported_task_types), 2, "task type count (no duplicates)")
    eq(agent.is_sync, False, "is_sync")
    eq(env.fake.requests(), [], "requests to Databricks")


def test_get_agent(t):
    env = t.start()
    a = t.pb.admin
    resp = env.ok(GET_AGENT, a.GetAgentRequest(name="Databricks Connector"), a.GetAgentResponse)
    eq(agent_shape(resp.agent), expected_agent(t), "agent")
    reply = env.fails(GET_AGENT, a.GetAgentRequest(name="x"), grpc.StatusCode.NOT_FOUND)
    check("x" in reply.details, "NOT_FOUND details should name the agent: %r" % reply.details)
    env.fails(GET_AGENT, a.GetAgentRequest(name=""), grpc.StatusCode.NOT_FOUND)
    eq(env.fake.requests(), [], "requests to Databricks")


def test_unknown_methods_unimplemented(t):
    env = t.start()
    for method in (SERVICE + "Nope", "/flyteidl.service.SyncAgentService/ExecuteTaskSync",
                   "/no.such.Service/Method"):
        env.fails(method, b"", grpc.StatusCode.UNIMPLEMENTED)
    # GetTaskMetrics is not implemented on purpose, and says why (README, issue 14).
    reply = env.fails(GET_METRICS, b"", grpc.StatusCode.UNIMPLEMENTED)
    check("Prometheus" in reply.details and "custom_info" in reply.details,
          "GetTaskMetrics should say why it is not implemented: %r" % reply.details)
    # GetTaskLogs is served (server-streaming): an empty request names no task type.
    reply = env.call_stream(GET_LOGS, b"")
    eq(reply.code, grpc.StatusCode.NOT_FOUND, "GetTaskLogs status for an empty request")
    # The daemon still serves after those.
    env.ok(LIST_AGENTS, t.pb.admin.ListAgentsRequest(), t.pb.admin.ListAgentsResponse)


# Field 1, length-delimited, claims 100 bytes and carries 3: undecodable as any message.
GARBAGE = [b"\x0a\x64abc", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0b"]


def test_garbage_requests_invalid_argument(t):
    env = t.start()
    methods = [SERVICE + "CreateTask", SERVICE + "GetTask", SERVICE + "DeleteTask", GET_AGENT,
               LIST_AGENTS, HEALTH]
    for method in methods:
        for garbage in GARBAGE:
            reply = env.fails(method, garbage, grpc.StatusCode.INVALID_ARGUMENT)
            words = (method.rsplit("/", 1)[1] + "Request", "decode", "parse", "malformed")
            check(any(w.lower() in reply.details.lower() for w in words),
                  "%s: message should say the request does not decode: %r"
                  % (method, reply.details))
    eq(env.fake.requests(), [], "requests to Databricks for undecodable calls")
    # Still alive and well.
    h = t.pb.health
    resp = env.ok(HEALTH, h.HealthCheckRequest(service=""), h.HealthCheckResponse)
    eq(resp.status, h.HealthCheckResponse.SERVING, "health after garbage")
