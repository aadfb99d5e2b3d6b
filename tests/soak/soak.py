#!/usr/bin/python3
"""Soak: many GetTask calls against the fake Databricks with faults, checking every answer
and that the daemon's memory stays flat.

    /usr/bin/python3 tests/soak/soak.py [--calls N] [--concurrency N] [--fault-rate R]
    make soak                      # 1,000,000 calls (not part of `make test`)

Starts the fake (tests/fake/fake_databricks.py) and the daemon through the e2e harness,
makes RUNS runs with fixed scripts (running, pending, succeeded, failed), then sends
--calls GetTask calls from --concurrency coroutines (grpc.aio), round robin over the runs.
The fake answers a --fault-rate share of runs/get with a fault picked at random: 503
(retried), a connection reset (retried) or 429 with Retry-After beyond the call's deadline
(not retried: the call answers the run's last known phase, "status not refreshed").

Every answer must be OK with the phase of the run's script; a "status not refreshed"
answer must carry a non-terminal phase. The daemon's RSS (VmRSS) is sampled after the
first 100,000 calls (a tenth of the calls for shorter runs) and at the end; the soak fails
when the end exceeds the first sample by more than 10 %. Prints progress, then one
verdict line; exit status 0 on success.

Environment: as the e2e harness (DAEMON, BUILD, KEEP=1, TIMEOUT_SCALE).
"""

import argparse
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402
from harness import create_request, custom_config, resource_meta_of  # noqa: E402

import grpc  # noqa: E402

# (fake script step, expected Flyte phase); PENDING maps to INITIALIZING, FAILED is read
# from the warm-up answer (it depends on the failure's kind).
SCRIPTS = [
    ({"life_cycle_state": "RUNNING", "state_message": "In run"}, "RUNNING"),
    ({"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}, "INITIALIZING"),
    ({"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
     "SUCCEEDED"),
    ({"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "boom"}, None),
]
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"}
DEADLINE_S = 5.0
# The 429s carry a Retry-After beyond the call's deadline: the daemon answers from memory.
FAULT_STEPS = {
    "503": {"http_status": 503, "body": {"error_code": "TEMPORARILY_UNAVAILABLE",
                                         "message": "soak 503"}},
    "429": {"http_status": 429, "body": {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                         "message": "soak 429"},
            "headers": {"Retry-After": "30"}},
    "reset": {"fault": "reset"},
}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


class Soak:
    def __init__(self, opts, env):
        self.opts = opts
        self.env = env
        self.pb = env.pb
        self.next_call = 0
        self.done = 0
        self.ok = 0
        self.stale = 0
        self.errors = {}
        self.examples = []
        self.rss_first = None
        self.first_at = min(100000, max(1, opts.calls // 10))
        self.started = time.monotonic()
        self.last_report = self.started

    def setup_runs(self):
        """RUNS runs, scripts in rotation; returns [(request bytes, expected phase)]."""
        env, fake = self.env, self.env.fake
        runs = []
        for i in range(self.opts.runs):
            step, expected = SCRIPTS[i % len(SCRIPTS)]
            fake.script([step])
            resp = env.create(create_request(self.pb, custom=custom_config(), node_id="s%d" % i))
            raw = resp.resource_meta
            warm = env.get(raw)
            phase = env.phase_name(warm.phase)
            if expected is not None and phase != expected:
                raise harness.Failure("run %s: warm-up phase %s, expected %s"
                                      % (resource_meta_of(resp)["run_id"], phase, expected))
            if expected is None and phase not in TERMINAL:
                raise harness.Failure("failed run answered %s" % phase)
            runs.append((env.get_request(raw).SerializeToString(), phase))
        return runs

    def record_error(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1
        if len(self.examples) < 10:
            self.examples.append(what)

    def check(self, phase_expected, code, resource):
        if code != grpc.StatusCode.OK:
            return
        phase = self.pb.Phase.Phase.Name(resource.phase)
        if phase != phase_expected:
            self.record_error("phase %s, expected %s (%r)" % (phase, phase_expected,
                                                              resource.message[:120]))
            return
        if "status not refreshed" in resource.message:
            if phase in TERMINAL:
                self.record_error("terminal phase %s marked stale" % phase)
                return
            self.stale += 1
        self.ok += 1

    def report(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_report < 10:
            return
        self.last_report = now
        took = now - self.started
        stats = self.env.fake.control("GET", "/fake/stats")["counts"]
        print("# %d/%d calls, %.0f/s, ok %d (stale %d), errors %d; runs/get %d, faults %d; "
              "RSS %d KiB" % (self.done, self.opts.calls, self.done / took if took else 0,
                              self.ok, self.stale, sum(self.errors.values()),
                              stats.get("/api/2.1/jobs/runs/get", 0),
                              stats.get("random_faults", 0), rss_kib(self.env.daemon.proc.pid)),
              flush=True)

    async def worker(self, stub, runs):
        while self.next_call < self.opts.calls:
            i = self.next_call
            self.next_call += 1
            request, expected = runs[i % len(runs)]
            try:
                resp = await stub(request, timeout=DEADLINE_S * harness.SCALE)
                self.check(expected, grpc.StatusCode.OK, resp.resource)
            except grpc.aio.AioRpcError as e:
                self.record_error("%s %s" % (e.code(), (e.details() or "")[:160]))
            self.done += 1
            if self.done == self.first_at:
                self.rss_first = rss_kib(self.env.daemon.proc.pid)
                print("# RSS after %d calls: %d KiB" % (self.done, self.rss_first), flush=True)
            if self.done % 1000 == 0:
                self.report()

    async def run(self, runs):
        options = [("grpc.enable_retries", 0)]
        async with grpc.aio.insecure_channel(self.env.daemon.address, options=options) as ch:
            stub = ch.unary_unary(harness.GET, request_serializer=lambda b: b,
                                  response_deserializer=self.pb.admin.GetTaskResponse.FromString)
            await asyncio.gather(*(self.worker(stub, runs)
                                   for _ in range(self.opts.concurrency)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--fault-rate", type=float, default=0.01)
    opts = parser.parse_args()

    suite = harness.Suite()
    t = harness.Test(suite, "soak")
    failed = True
    try:
        env = t.start(args=["--log-level", "warning"])
        soak = Soak(opts, env)
        runs = soak.setup_runs()
        env.fake.config(record=False, random_faults={
            "rate": opts.fault_rate, "kinds": sorted(FAULT_STEPS), "seed": 1,
            "steps": FAULT_STEPS})
        print("# %d runs, %d calls, %d concurrent, faults in %.1f%% of runs/get"
              % (len(runs), opts.calls, opts.concurrency, opts.fault_rate * 100), flush=True)
        soak.started = time.monotonic()
        asyncio.run(soak.run(runs))
        rss_end = rss_kib(env.daemon.proc.pid)
        soak.report(force=True)
        took = time.monotonic() - soak.started
        ratio = rss_end / soak.rss_first if soak.rss_first else 0
        print("# RSS first %d KiB, end %d KiB, ratio %.3f" % (soak.rss_first or 0, rss_end,
                                                               ratio))
        print("# %d calls in %.0f s (%.0f/s): %d ok (%d last known), %d errors"
              % (soak.done, took, soak.done / took, soak.ok, soak.stale,
                 sum(soak.errors.values())))
        for what, n in sorted(soak.errors.items(), key=lambda kv: -kv[1])[:10]:
            print("#   %6d  %s" % (n, what))
        problems = []
        if soak.errors:
            problems.append("%d wrong answers" % sum(soak.errors.values()))
        if soak.done != opts.calls:
            problems.append("%d of %d calls done" % (soak.done, opts.calls))
        if ratio > 1.10:
            problems.append("RSS grew %.1f%% after the first sample" % ((ratio - 1) * 100))
        stats = env.fake.control("GET", "/fake/stats")["counts"]
        if opts.fault_rate > 0 and not stats.get("random_faults"):
            problems.append("no fault was injected")
        failed = bool(problems)
        print("soak %s%s" % ("FAILED: " if failed else "passed",
                             "; ".join(problems)), flush=True)
    except harness.Failure as e:
        print("soak FAILED: %s" % e)
    finally:
        problems = t.finish(failed=True)
        if problems:
            print("soak FAILED at shutdown: %s" % "; ".join(problems))
            failed = True
        suite.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
