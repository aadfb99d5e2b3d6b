#!/usr/bin/python3
"""bench/report.py - turns bench/run.sh's raw results into the figures table
(printed), docs/PERFORMANCE.md and docs/latency.png.

Every figure is the median of the repetitions with the range (min-max).
Ratios are taken per repetition, between runs made back to back in the same
bench (daemon against the no-op gRPC server, daemon against the curl-only
client), then their median and range are reported: on a shared machine the
absolute numbers move from run to run, the same-run ratios much less.

The hand-written part of PERFORMANCE.md (what the profile showed, what was
changed, before and after) lives in bench/findings.md and is copied in.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
BACKEND_DELAY_MS = 50.0


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def pick(rows, figure, target):
    return sorted((r for r in rows if r["figure"] == figure and r["target"] == target),
                  key=lambda r: r["rep"])


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values)


def spread(values, fmt="{:.0f}", unit=""):
    """median [min-max] as text."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    m = fmt.format(statistics.median(values)) + unit
    if len(values) == 1:
        return m
    return "%s [%s-%s]" % (m, fmt.format(min(values)), fmt.format(max(values)))


def per_rep_ratio(a_rows, b_rows, key="throughput"):
    by_rep = {r["rep"]: r for r in b_rows}
    out = []
    for r in a_rows:
        other = by_rep.get(r["rep"])
        if other and other["data"].get(key):
            out.append(r["data"][key] / other["data"][key])
    return out


def cpu_ms_per_1000(rows):
    out = []
    for r in rows:
        calls = r["data"].get("total_calls") or 0
        if calls and "cpu_ticks" in r:
            out.append(r["cpu_ticks"] * 1000.0 / CLK_TCK / calls * 1000.0)
    return out


def verdict(ok):
    if ok is None:
        return ""
    return "met" if ok else "**missed**"


def machine():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cores"] = os.cpu_count()
    info["kernel"] = platform.release()
    try:
        with open("/proc/meminfo") as f:
            info["memory"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass

    def version(cmd):
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (res.stdout + res.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    info["grpc"] = "libgrpc core ABI " + version(["pkg-config", "--modversion", "grpc"])
    info["curl"] = version(["curl", "--version"])
    info["nginx"] = version(["nginx", "-v"])
    info["h2load"] = version(["h2load", "--version"])
    return info


def plot(rows, work, out_png):
    """Latency against offered load, daemon and no-op server; log scale."""
    data = os.path.join(work, "sweep.dat")
    series = {}
    for target in ("daemon", "noop"):
        pts = []
        for r in pick(rows, "sweep", target):
            d = r["data"]
            saturated = d["throughput"] < 0.9 * d["rate"] or d["errors"] or d["overflow"]
            if not saturated:
                pts.append((d["rate"], d["p50_ms"], d["p99_ms"], d["p999_ms"]))
        series[target] = sorted(pts)
    with open(data, "w") as f:
        for target in ("daemon", "noop"):
            f.write("# %s: rate p50 p99 p999\n" % target)
            for p in series[target]:
                f.write("%g %g %g %g\n" % p)
            f.write("\n\n")
    if not series["daemon"] and not series["noop"]:
        return False
    script = """
set terminal pngcairo size 900,560 font 'sans,10'
set output '%s'
set title 'GetTask latency against load (instant backend; open-loop rate, 2 generator threads)'
set ylabel 'latency (ms, log scale)'
set xlabel 'offered GetTask calls/s (log scale)'
set logscale xy
set grid
set key left top
plot '%s' index 0 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'daemon p50', \\
     '' index 0 using 1:3 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'daemon p99', \\
     '' index 1 using 1:2 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title 'no-op gRPC server p50', \\
     '' index 1 using 1:3 with linespoints dt 2 pt 4 lc rgb '#d62728' title 'no-op gRPC server p99'
""" % (out_png, data)
    res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, timeout=60)
    if res.returncode != 0:
        sys.stderr.write("gnuplot: %s\n" % res.stderr)
        return False
    return True


def read_text(path, limit=None):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f]
    except OSError:
        return []
    lines = [" ".join(l.split()) for l in lines if l.strip()]
    # perf's empty sort columns and a binary rebuilt while it ran.
    lines = [l.replace(" - -", "").replace(" (deleted)", "") for l in lines]
    return lines[:limit] if limit else lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    rows = load(a.results)

    figures = []  # (name, daemon, reference, ratio/derived, target, verdict)
    errors_total = 0
    error_notes = []

    def count_errors(label, rs, fields=("errors", "overflow", "unfinished")):
        nonlocal errors_total
        for r in rs:
            n = sum(int(r["data"].get(k, 0) or 0) for k in fields)
            if n:
                error_notes.append("%s rep %d: %d" % (label, r["rep"], n))
            errors_total += n

    # GetTask throughput.
    ratio64 = None
    for c in (16, 64, 256):
        d, n, cu = (pick(rows, "get%d" % c, t) for t in ("daemon", "noop", "curl"))
        for label, rs in (("daemon", d), ("no-op", n), ("curl", cu)):
            count_errors("GetTask %d in flight (%s)" % (c, label), rs)
        r_noop = per_rep_ratio(d, n)
        r_curl = per_rep_ratio(d, cu)
        target, ok = "", None
        if c == 64:
            ratio64 = med(r_curl)
            target = ">= 50% of curl-only"
            ok = ratio64 is not None and ratio64 >= 0.5
        figures.append((
            "GetTask calls/s, %d in flight, instant backend" % c,
            spread([r["data"]["throughput"] for r in d]),
            "no-op %s; curl-only %s" % (spread([r["data"]["throughput"] for r in n]),
                                         spread([r["data"]["throughput"] for r in cu])),
            "%s of no-op; %s of curl-only" % (spread([x * 100 for x in r_noop], unit="%"),
                                               spread([x * 100 for x in r_curl], unit="%")),
            target, verdict(ok)))
    # The same load on daemons configured otherwise: what one setting costs.
    curl64 = pick(rows, "get64", "curl")

    def variant_row(target, setting, reference):
        rs = pick(rows, "get64", target)
        count_errors("GetTask 64 in flight (daemon, %s)" % setting, rs)
        if rs:
            figures.append((
                "GetTask calls/s, 64 in flight, %s" % setting,
                spread([r["data"]["throughput"] for r in rs]),
                reference,
                "%s of curl-only; CPU per 1,000 calls %s" % (
                    spread([x * 100 for x in per_rep_ratio(rs, curl64)], unit="%"),
                    spread(cpu_ms_per_1000(rs), unit=" ms")),
                "", ""))
        return rs

    quiet = variant_row("daemon_quiet", "log_level warning", "curl-only as above")
    debug = variant_row("daemon_debug",
                        "log_level debug (a line per GetTask, as info wrote before issue 14)",
                        "curl-only as above; log_level info (a line only when a run's phase "
                        "changes) %s" % spread([r["data"]["throughput"]
                                                 for r in pick(rows, "get64", "daemon")]))
    variant_row("daemon_workers", "workers 2 (gRPC worker threads)",
                "curl-only as above; default (workers 0) %s"
                % spread([r["data"]["throughput"] for r in pick(rows, "get64", "daemon")]))

    # Latency at 1,000/s against the 50 ms backend.
    rd = pick(rows, "rate1000", "daemon")
    rc = pick(rows, "rate1000", "curl")
    count_errors("1,000/s against 50 ms (daemon)", rd)
    count_errors("50 ms backend alone (curl)", rc, ("errors",))
    added_p50 = [r["data"]["p50_ms"] - BACKEND_DELAY_MS for r in rd]
    added_p99 = [r["data"]["p99_ms"] - BACKEND_DELAY_MS for r in rd]
    base_p99 = [r["data"]["p99_ms"] - BACKEND_DELAY_MS for r in rc]
    over_backend = []
    by_rep = {r["rep"]: r for r in rc}
    for r in rd:
        if r["rep"] in by_rep:
            over_backend.append(r["data"]["p99_ms"] - by_rep[r["rep"]]["data"]["p99_ms"])
    ok = med(added_p99) is not None and med(added_p99) <= 2.0
    figures.append((
        "Added latency at 1,000 GetTask/s, 50 ms backend (measured - 50 ms)",
        "p50 %s, p99 %s" % (spread(added_p50, "{:.2f}", " ms"), spread(added_p99, "{:.2f}", " ms")),
        "backend alone (curl client, 1,000/s): p99 - 50 ms = %s" % spread(base_p99, "{:.2f}", " ms"),
        "daemon p99 - backend p99 = %s" % spread(over_backend, "{:.2f}", " ms"),
        "p99 <= 2 ms", verdict(ok)))

    # The same rate against the instant backend (sweep): what the gRPC round
    # trip, the daemon and nginx cost without the 50 ms timer's jitter.
    def sweep_at(target, rate):
        for r in pick(rows, "sweep", target):
            if r["data"]["rate"] == rate:
                return r["data"]
        return None
    sd, sn = sweep_at("daemon", 1000), sweep_at("noop", 1000)
    if sd or sn:
        figures.append((
            "Latency at 1,000 GetTask/s, instant backend (one run)",
            "p50 %.2f ms, p99 %.2f ms" % (sd["p50_ms"], sd["p99_ms"]) if sd else "n/a",
            "no-op gRPC server at 1,000/s: p50 %.2f ms, p99 %.2f ms" % (sn["p50_ms"], sn["p99_ms"]) if sn else "",
            "", "", ""))

    # CreateTask.
    cr = pick(rows, "create64", "daemon")
    count_errors("CreateTask 64 in flight", cr)
    figures.append(("CreateTask calls/s, 64 in flight, instant backend",
                    spread([r["data"]["throughput"] for r in cr]), "", "", "", ""))

    # CPU per 1,000 calls.
    figures.append((
        "CPU time per 1,000 GetTask (64 in flight)",
        spread(cpu_ms_per_1000(pick(rows, "get64", "daemon")), unit=" ms"),
        "no-op gRPC server %s" % spread(cpu_ms_per_1000(pick(rows, "get64", "noop")), unit=" ms"),
        "; ".join(x for x in (
            "log_level warning: %s" % spread(cpu_ms_per_1000(quiet), unit=" ms") if quiet else "",
            "log_level debug (a line per call): %s" % spread(cpu_ms_per_1000(debug), unit=" ms")
            if debug else "") if x),
        "", ""))

    # The CPU budget at 64 in flight: daemon, load generator and nginx share two cores, so
    # the throughput ratio to curl-only is about the ratio of CPU per call of the two runs.
    def per_call_us(rows_, key, ticks):
        out = []
        for r in rows_:
            calls = r["data"].get("total_calls") or 0
            if calls and key in r:
                out.append(r[key] * (1.0 / CLK_TCK if ticks else 1.0) / calls * 1e6)
        return out
    d64, n64, c64 = (pick(rows, "get64", t) for t in ("daemon", "noop", "curl"))
    budget = {
        "daemon": per_call_us(d64, "cpu_ticks", True),
        "loadgen": per_call_us(d64, "client_cpu_s", False),
        "nginx (daemon run)": per_call_us(d64, "nginx_ticks", True),
        "curl-only client": per_call_us(c64, "client_cpu_s", False),
        "nginx (curl-only run)": per_call_us(c64, "nginx_ticks", True),
        "no-op server": per_call_us(n64, "cpu_ticks", True),
    }
    if all(budget.values()):
        m = {k: med(v) for k, v in budget.items()}
        daemon_run = m["daemon"] + m["loadgen"] + m["nginx (daemon run)"]
        curl_run = m["curl-only client"] + m["nginx (curl-only run)"]
        # What the daemon may cost for the daemon run to take at most twice the CPU of
        # the curl-only run, i.e. for 50% of its throughput on a CPU-bound machine.
        allowed = 2 * curl_run - m["loadgen"] - m["nginx (daemon run)"]
        halves = m["no-op server"] + m["curl-only client"]
        figures.append((
            "CPU per GetTask, 64 in flight, by process (us)",
            "daemon %s" % spread(budget["daemon"], "{:.0f}"),
            "loadgen %s, nginx %s; curl-only run: client %s, nginx %s; no-op server %s" % (
                spread(budget["loadgen"], "{:.0f}"), spread(budget["nginx (daemon run)"], "{:.0f}"),
                spread(budget["curl-only client"], "{:.0f}"),
                spread(budget["nginx (curl-only run)"], "{:.0f}"),
                spread(budget["no-op server"], "{:.0f}")),
            "daemon run %.0f us a call in all, curl-only run %.0f: 50%% needs the daemon at "
            "<= %.0f us; its two halves alone (no-op + curl-only) cost %.0f" % (
                daemon_run, curl_run, allowed, halves),
            "", ""))

    # RSS idle.
    st = pick(rows, "startup", "daemon")
    idle = [r["data"]["rss_idle_kb"] / 1024.0 for r in st]
    anon = [r["data"].get("rss_idle_anon_kb", 0) / 1024.0 for r in st]
    filed = [r["data"].get("rss_idle_file_kb", 0) / 1024.0 for r in st]
    ok = med(idle) is not None and med(idle) <= 16.0
    floor = [r["data"]["rss_idle_kb"] / 1024.0 for r in pick(rows, "idle_floor", "noop")]
    floor_libs = [r["data"]["rss_idle_kb"] / 1024.0
                  for r in pick(rows, "idle_floor", "noop_daemon_libs")]
    figures.append(("RSS idle (1 s after the first health check)",
                    spread(idle, "{:.1f}", " MB"),
                    "of which anonymous %s, file-backed (shared libraries) %s" % (
                        spread(anon, "{:.1f}", " MB"), spread(filed, "{:.1f}", " MB")),
                    "floor: no-op gRPC server idle %s; the same with the daemon's other "
                    "libraries loaded (LD_PRELOAD) %s" % (
                        spread(floor, "{:.1f}", " MB"), spread(floor_libs, "{:.1f}", " MB")),
                    "<= 16 MB", verdict(ok)))

    # Peak RSS at 5,000 in flight.
    p5 = pick(rows, "inflight5000", "daemon")
    r5 = pick(rows, "inflight5000", "daemon_raised_cap")
    h5 = pick(rows, "inflight5000", "noop_held")
    count_errors("5,000 in flight (daemon)", p5)
    count_errors("5,000 in flight (daemon, cap raised)", r5)
    count_errors("5,000 in flight (no-op holding)", h5)
    hwm = [r["hwm_kb"] / 1024.0 for r in p5]
    ok = med(hwm) is not None and med(hwm) <= 64.0
    figures.append((
        "Peak RSS, 5,000 GetTask in flight, 50 ms backend",
        spread(hwm, "{:.0f}", " MB"),
        "floor: no-op gRPC server holding 5,000 calls 50 ms (one malloc arena, as the "
        "daemon): %s" % spread([r["hwm_kb"] / 1024.0 for r in h5], "{:.0f}", " MB"),
        "daemon throughput there %s calls/s" % spread([r["data"]["throughput"] for r in p5]),
        "<= 64 MB", verdict(ok)))
    if r5:
        figures.append((
            "Peak RSS, 5,000 in flight, instance_max_concurrent_requests 10,000",
            spread([r["hwm_kb"] / 1024.0 for r in r5], "{:.0f}", " MB"),
            "every request handed to libcurl at once",
            "daemon throughput there %s calls/s" % spread([r["data"]["throughput"] for r in r5]),
            "", ""))

    # Handshakes.
    hs = pick(rows, "handshakes", "nginx")
    hm = pick(rows, "handshakes", "daemon")
    per1000 = None
    if hs and hs[0]["data"]["requests"]:
        per1000 = hs[0]["data"]["connections"] * 1000.0 / hs[0]["data"]["requests"]
    figures.append((
        "TLS handshakes per 1,000 Databricks calls",
        "%.3f" % per1000 if per1000 is not None else "n/a",
        "nginx log: %d connections for %d requests; daemon metric: %s connections opened for %s requests" % (
            hs[0]["data"]["connections"] if hs else 0, hs[0]["data"]["requests"] if hs else 0,
            hm[0]["data"]["metric_connections"] if hm else "?", hm[0]["data"]["metric_requests"] if hm else "?"),
        "", "<= 1", verdict(per1000 is not None and per1000 <= 1.0)))

    # Start-up.
    startup = [r["data"]["startup_ms"] for r in st]
    listen = [r["data"].get("listen_ms") for r in st]
    vexec = [r["data"]["ms"] for r in pick(rows, "version_exec", "daemon")]
    ok = med(startup) is not None and med(startup) <= 100.0
    figures.append(("Exec to first answered health check",
                    spread(startup, "{:.0f}", " ms"),
                    "port listening after %s; `serve --version` exec-to-exit (loader + library init) %s" % (
                        spread(listen, "{:.0f}", " ms"), spread(vexec, "{:.0f}", " ms")),
                    "", "<= 100 ms", verdict(ok)))

    # h2load cross-check.
    h2 = pick(rows, "h2load64", "noop")
    count_errors("h2load cross-check", h2, ("errors",))
    ln = pick(rows, "get64", "noop")
    figures.append((
        "Generator cross-check: no-op server, 64 in flight",
        "loadgen %s" % spread([r["data"]["throughput"] for r in ln]),
        "h2load (2 connections x 32 streams) %s" % spread([r["data"]["throughput"] for r in h2]),
        "daemon at 64 in flight is %s of what loadgen drives through the no-op server" % (
            spread([x * 100 for x in per_rep_ratio(pick(rows, "get64", "daemon"), ln)], unit="%")),
        "", ""))

    figures.append(("Errors (bad status, wrong phase, overflow, unfinished) in all runs",
                    str(errors_total), "; ".join(error_notes[:8]), "", "0",
                    verdict(errors_total == 0)))

    # ---- print ----
    print()
    print("%-62s %-26s %s" % ("figure", "daemon (median [range])", "target"))
    for name, value, ref, ratio, target, v in figures:
        print("%-62s %-26s %s %s" % (name[:62], value, target, v))
        for extra in (ref, ratio):
            if extra:
                print("%-62s   %s" % ("", extra))

    # ---- PERFORMANCE.md ----
    plotted = plot(rows, a.work, os.path.join(a.out, "latency.png"))
    m = machine()
    md = []
    md.append("# Performance\n")
    md.append("Written by `make bench` (bench/run.sh, bench/report.py) on %s%s. Do not edit the "
              "figures by hand; the findings section comes from bench/findings.md.\n" % (
                  datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  " (**--quick run: one repetition, short runs**)" if a.quick else ""))
    loadavg = pick(rows, "loadavg", "machine")
    md.append("These machines are shared, so other work on the same two cores can move "
              "absolute figures from run to run, sometimes by a factor of two%s. Read the "
              "same-run ratios (the daemon against the no-op gRPC server and against the "
              "curl-only client, measured back to back in the same repetition) rather than the "
              "absolute numbers.\n" % (
                  " (load average over the minute before this run: %s)" % loadavg[0]["data"]["one_minute"]
                  if loadavg else ""))
    md.append("## Figures\n")
    md.append("Median of %d repetitions [min-max]; each run %.0f s measured after %.0f s of "
              "warm-up.\n" % (a.reps, a.duration, a.warmup))
    md.append("| Figure | Daemon | Reference (same run) | Ratio / derived | Target | |")
    md.append("|---|---|---|---|---|---|")
    for name, value, ref, ratio, target, v in figures:
        md.append("| %s | %s | %s | %s | %s | %s |" % (name, value, ref, ratio, target, v))
    md.append("")
    if plotted:
        md.append("![GetTask latency against load](latency.png)\n")
        md.append("`latency.png`: open-loop GetTask rates against the instant backend, daemon "
                  "and no-op gRPC server; points past saturation (throughput under 90% of the "
                  "offered rate, or any error) are left out. Latency counts from the moment a "
                  "call was due, so a generator that falls behind shows it.\n")
    md.append("## Method\n")
    md.append("""- **Backend**: nginx from Debian on 127.0.0.1, TLS with a CA generated at bench time,
  HTTP/1.1 and HTTP/2 (ALPN), canned answers for `runs/get` (a RUNNING run, 330 bytes),
  `runs/submit` and `runs/cancel`. A second server block adds 50 ms to every answer
  (`echo_sleep 0.05` from libnginx-mod-http-echo). `keepalive_requests` is raised so that nginx,
  like a workspace, does not close a connection after its default 1,000 requests. The access log
  records `$pid $connection` for every request: distinct pairs are TLS handshakes.
- **Load**: `bench/loadgen` (gRPC core C API) keeps N calls in flight (closed loop) or starts
  them at a fixed rate (open loop), 2 threads with one channel (one HTTP/2 connection) each.
  GetTask calls go round robin over 100,000 run ids, skipping ids still in flight, so no two
  calls in flight ask about the same run and no figure comes from coalescing; the status cache
  is off (the default). Every answer is checked: status OK and phase RUNNING (GetTask), a
  resource_meta with a run_id (CreateTask), SERVING (health).
- **Limits measured in the same run**: `bench/noop_server` (gRPC core, registered method, 2
  threads on one shared completion queue, a fixed GetTaskResponse, no work) under the same
  load; `bench/curl_client` (one thread, one multi handle, HTTP/2 over one connection, reused
  easy handles, cJSON parse and state check of every answer) sending runs/get for distinct
  runs to the same nginx at the same concurrency: every GetTask costs one runs/get, so this is
  the Databricks-side ceiling.
- **Generator cross-check**: h2load (nghttp2-client) against the no-op server at 64 in flight
  (2 connections x 32 streams, the same GetTask frame). h2load checks only the HTTP status, so
  it runs against the no-op server, not the daemon, whose answers it could not check and whose
  one repeated run id would be coalesced.
- **CPU** from `/proc/PID/stat` (utime + stime) around each run, divided by the calls answered.
  **RSS** from `/proc/PID/status`: VmRSS 1 s after the first health check (idle), VmHWM of a
  fresh daemon after the 5,000-in-flight run (peak), with the default configuration (at most
  256 requests a workspace in libcurl, the rest wait in the daemon's queue) and once more with
  `instance_max_concurrent_requests` raised to 10,000. The idle floor is the no-op server's
  VmRSS after a few calls, alone and with the daemon's other libraries preloaded.
  **CPU budget**: the CPU seconds of loadgen and of the curl client (bash `time`) and of
  nginx's workers (`/proc`) around each 64-in-flight run, per call.
  **Start-up**: loadgen forks and execs the daemon, polls the port, then sends one health check
  (wait-for-ready): the figure runs from fork to the answer.
- The daemon runs with its defaults (log_level info: a GetTask line only when a run's phase
  changes, so none once each run has answered once) except where a row says otherwise;
  `workers` 0 (the default: the one loop thread, `fdc-loop`, serves gRPC and the transfers), and once with `workers` 2 for
  comparison; log_level debug writes a line for every GetTask, as info did before issue 14.
  The GetTask throughput runs go round robin over 10,000 run ids (fewer than
  `max_tracked_runs`, as propeller's running tasks are), the other figures over 100,000.
""")
    md.append("## Machine\n")
    for k in ("cpu", "cores", "memory", "kernel", "grpc", "curl", "nginx", "h2load"):
        if k in m:
            md.append("- %s: %s" % (k, m[k]))
    md.append("")
    prof = read_text(os.path.join(a.work, "profile.txt"), 25)
    dso = read_text(os.path.join(a.work, "profile-dso.txt"), 12)
    if prof or dso:
        md.append("## Profile of this run\n")
        md.append("`perf record -e cpu-clock` of the daemon during one GetTask run at 64 in flight "
                  "(hardware counters are not available in this VM). By shared object:\n")
        md.append("```")
        md.extend(dso)
        md.append("```\n")
        md.append("Top symbols:\n")
        md.append("```")
        md.extend(prof)
        md.append("```\n")
    try:
        with open(os.path.join(HERE, "findings.md")) as f:
            md.append(f.read().rstrip() + "\n")
    except OSError:
        pass
    with open(os.path.join(a.out, "PERFORMANCE.md"), "w") as f:
        f.write("\n".join(md))
    print("\nwrote %s%s" % (os.path.join(a.out, "PERFORMANCE.md"),
                           " and latency.png" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
