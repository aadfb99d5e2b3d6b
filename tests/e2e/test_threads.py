"""Who serves gRPC: the loop thread that drives the Databricks transfers (workers 0, the
default), worker threads (workers N), and the fall-back to workers when gRPC's poller cannot
be shared."""

import os
import threading
import time

import grpc

from harness import (GET, HEALTH, SERVICE, check, create_request, custom_config, eq,
                     wait_until)

FALLBACK_WARNING = "gRPC's poller cannot be shared"


def thread_names(env):
    """Names of the daemon's threads (pthread_setname_np shows in /proc)."""
    names = []
    task_dir = "/proc/%d/task" % env.daemon.proc.pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "comm")) as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def check_workers(env, expected):
    if env.daemon.valgrind:
        return  # valgrind runs the threads itself; the logs are checked instead
    names = thread_names(env)
    check("fdc-loop" in names, "no fdc-loop thread among %r" % names)
    eq(names.count("fdc-worker"), expected, "fdc-worker threads (all: %r)" % names)


def serve_a_mix(t, env):
    """Create, concurrent GetTasks, an unknown method and a health check, all answered."""
    metas = [env.create(create_request(t.pb, custom=custom_config(), node_id="n%d" % i))
             .resource_meta for i in range(4)]
    results = [reply.code for reply in env.concurrent_gets(metas, 6)]
    eq(results, [grpc.StatusCode.OK] * 24, "GetTask answers")
    env.fails(SERVICE + "Nope", b"", grpc.StatusCode.UNIMPLEMENTED)
    reply = env.call(HEALTH, t.pb.health.HealthCheckRequest(service=""),
                     t.pb.health.HealthCheckResponse)
    eq(reply.code, grpc.StatusCode.OK, "health check")


def test_default_serves_grpc_on_the_databricks_loop(t):
    """workers 0 (the default): no worker thread, every call answered."""
    env = t.start()
    check_workers(env, 0)
    serve_a_mix(t, env)
    check(FALLBACK_WARNING not in env.daemon.stderr_text(), "fell back to worker threads")


def test_slow_databricks_answer_does_not_hold_up_other_calls(t):
    """One thread serves gRPC and Databricks, but nothing on it waits: while one GetTask
    waits seconds for Databricks, health checks and another run's GetTask answer at once."""
    env = t.start()
    slow = env.create(create_request(t.pb, custom=custom_config(), node_id="slow")).resource_meta
    fast = env.create(create_request(t.pb, custom=custom_config(), node_id="fast")).resource_meta
    slow_run_id = env.fake.runs()[0]["run_id"]
    delay_s = min(env.daemon.timeout(4), 20)  # under request_timeout_ms (30 s)
    env.fake.script([{"life_cycle_state": "RUNNING", "delay_ms": int(delay_s * 1000)}],
                    run_id=slow_run_id)
    out = {}

    def slow_call():
        out["reply"] = env.call(GET, env.get_request(slow), t.pb.admin.GetTaskResponse,
                                timeout=3 * delay_s)

    th = threading.Thread(target=slow_call)
    th.start()
    wait_until(lambda: len(env.fake.requests("/runs/get")) >= 1, 5 * env.daemon.factor,
               "the slow runs/get reaching the fake")
    started = time.monotonic()
    for _ in range(5):
        eq(env.call(HEALTH, t.pb.health.HealthCheckRequest(service=""),
                    t.pb.health.HealthCheckResponse).code, grpc.StatusCode.OK, "health")
        eq(env.call(GET, env.get_request(fast), t.pb.admin.GetTaskResponse).code,
           grpc.StatusCode.OK, "the other run's GetTask")
    elapsed = time.monotonic() - started
    check(th.is_alive(), "the slow GetTask finished before the other calls: nothing was tested")
    check(elapsed < delay_s / 2, "other calls took %.2f s behind the slow one" % elapsed)
    th.join(30 * env.daemon.factor)
    eq(out["reply"].code, grpc.StatusCode.OK, "the slow GetTask")


def test_worker_threads_serve_calls(t):
    """workers 2: the threads wait on the queue and hand requests to the loop thread."""
    env = t.start(args=["--workers", "2"])
    check_workers(env, 2)
    serve_a_mix(t, env)


def test_unshareable_poller_falls_back_to_worker_threads(t):
    """gRPC's poll() poller has no epoll set to share: workers 0 starts 2 worker threads
    and says so in one warning. (gRPC 1.51's poll() poller does not answer this server's
    calls with any thread layout, the old default of 2 workers included, so only the
    fall-back itself and a clean stop are checked here; the workers' serving is checked
    by test_worker_threads_serve_calls.)"""
    env = t.start(env={"GRPC_POLL_STRATEGY": "poll"}, wait=False)
    env.daemon.wait_logged("serving", 10)
    lines = [e for e in env.daemon.events() if FALLBACK_WARNING in e.get("msg", "")]
    eq(len(lines), 1, "fall-back warnings")
    check(lines[0].get("level") == "warning" and lines[0].get("workers") == "2",
          "fall-back warning: %r" % lines[0])
    check_workers(env, 2)


def test_second_epoll_on_the_port_falls_back_to_worker_threads(t):
    """libmicrohttpd (the /metrics server) polls its listener with an epoll set of its own.
    On the gRPC port number (another address), two epoll sets watch that port and the daemon
    cannot tell which is gRPC's: it falls back to 2 worker threads, with the warning, and
    serves as usual."""
    env = t.start(args=["--metrics-listen", "127.0.0.2:{port}"])
    lines = [l for l in env.daemon.stderr_text().splitlines() if FALLBACK_WARNING in l]
    eq(len(lines), 1, "fall-back warnings")
    check_workers(env, 2)
    serve_a_mix(t, env)
