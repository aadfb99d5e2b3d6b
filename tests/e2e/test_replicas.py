"""Several replicas behind one client: the daemon keeps no state a run depends on, so
propeller's round_robin balancer can spread calls over replicas and lose one mid-run."""

import json
import signal

import grpc

from harness import (CREATE, GET, SCALE, check, create_request, custom_config, eq,
                     resource_meta_of, wait_until)

RUNS = 12
# Every run: PENDING, then RUNNING for a while, then SUCCEEDED; each runs/get moves one step.
SCRIPT = ([{"life_cycle_state": "PENDING"}] + [{"life_cycle_state": "RUNNING"}] * 6 +
          [{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}])


def round_robin_channel(daemons):
    """One channel over every replica's address, balanced as propeller's defaultServiceConfig
    asks ({"loadBalancingConfig": [{"round_robin": {}}]})."""
    target = "ipv4:" + ",".join(d.address for d in daemons)
    config = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
    return grpc.insecure_channel(target, options=[
        ("grpc.service_config", config), ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 250)])


def calls_answered(daemon):
    return sum(1 for e in daemon.events() if e.get("msg") == "call done")


def test_round_robin_over_three_replicas_survives_losing_one(t):
    env = t.start()
    daemons = [env.daemon, t.start_replica(env), t.start_replica(env)]
    channel = round_robin_channel(daemons)
    create = channel.unary_unary(CREATE, request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=t.pb.admin.CreateTaskResponse.FromString)
    get = channel.unary_unary(GET, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=t.pb.admin.GetTaskResponse.FromString)
    env.fake.script(SCRIPT)
    try:
        # CreateTasks with distinct execution ids: one run each, spread over the replicas.
        metas = []
        for i in range(RUNS):
            req = create_request(t.pb, custom=custom_config(), execution="exec-%d" % i)
            metas.append(create(req, timeout=10 * SCALE))
        eq(len({resource_meta_of(m)["run_id"] for m in metas}), RUNS, "distinct runs created")
        metas = [m.resource_meta for m in metas]

        def poll_all():
            """One GetTask per unfinished run; gives the phases and every failed call."""
            phases, failures = {}, []
            for meta in metas:
                try:
                    reply = get(env.get_request(meta), timeout=10 * SCALE)
                    phases[meta] = env.phase_name(reply.resource.phase)
                except grpc.RpcError as e:
                    failures.append("%s %s" % (e.code(), e.details()))
            return phases, failures

        phases, failures = poll_all()
        eq(failures, [], "GetTask failures with three replicas")
        answered = [calls_answered(d) for d in daemons]
        check(all(n > 0 for n in answered),
              "calls did not reach every replica: %s call lines per replica" % answered)

        # Lose one replica mid-run (a rollout or a node drain): it stops gracefully.
        lost = daemons[1]
        lost.proc.send_signal(signal.SIGTERM)
        eq(lost.proc.wait(15 * lost.factor), 0, "exit code of the stopped replica")
        answered_by_lost = calls_answered(lost)

        rounds = 0
        all_failures = []
        while set(phases.values()) != {"SUCCEEDED"}:
            rounds += 1
            check(rounds <= 3 * len(SCRIPT), "runs did not finish: %s" % sorted(phases.values()))
            phases, failures = poll_all()
            all_failures += failures
        eq(all_failures, [], "GetTask failures after losing a replica")
        eq(calls_answered(lost), answered_by_lost, "calls answered by the stopped replica")
        survivors = [calls_answered(d) for d in (daemons[0], daemons[2])]
        check(all(n > a for n, a in zip(survivors, (answered[0], answered[2]))),
              "both remaining replicas should have answered the lost one's runs: %s" % survivors)
    finally:
        channel.close()
