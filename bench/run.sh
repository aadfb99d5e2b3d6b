#!/bin/bash
# bench/run.sh - the benchmark driver behind `make bench`.
#
# Starts nginx (TLS, HTTP/1.1 and HTTP/2, canned Databricks answers; a second
# server block adds 50 ms), the no-op gRPC server and the daemon on
# 127.0.0.1, measures every figure at least REPS times with bench/loadgen,
# bench/curl_client and h2load, and hands the raw results to bench/report.py,
# which prints the table and writes docs/PERFORMANCE.md and docs/latency.png.
# Everything it starts is stopped on exit, failure included (trap).
#
#   bench/run.sh [--quick] [--reps N] [--keep]
#     --quick   one repetition, short runs (a smoke run; docs are still written)
#     --keep    keep the work directory (configs, logs, raw results)
#
# Environment: BUILD (build directory), PYTHON (for the statistics),
# BENCH_OUT (where the docs go; default docs/).
set -euo pipefail

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH_OUT=${BENCH_OUT:-docs}
DAEMON=$BUILD/flyte-databricks-connector
LOADGEN=$BUILD/bench/loadgen
NOOP=$BUILD/bench/noop_server
CURLC=$BUILD/bench/curl_client

REPS=3
DURATION=4      # measured seconds per run
WARMUP=1        # seconds before measuring
KEEP=0
QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; REPS=1; DURATION=2 ;;
    --reps) REPS=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--quick] [--reps N] [--keep]" >&2; exit 2 ;;
    esac
    shift
done

for tool in "$DAEMON" "$LOADGEN" "$NOOP" "$CURLC"; do
    [ -x "$tool" ] || { echo "bench: $tool missing; run 'make bench'" >&2; exit 1; }
done
for tool in nginx h2load gnuplot openssl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        { echo "bench: $tool missing; run 'make deps'" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
[ -f "$ECHO_MODULE" ] || { echo "bench: $ECHO_MODULE missing (libnginx-mod-http-echo)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/fdc-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
PIDS=()

# Stops what this script started, by process id, newest first.
cleanup() {
    local rc=$?
    local i pid
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        echo "bench: work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

log() { printf 'bench: %s\n' "$*" >&2; }

# record FIGURE TARGET REP JSON [EXTRA_JSON_FIELDS]
record() {
    printf '{"figure": "%s", "target": "%s", "rep": %s, %s"data": %s}\n' \
        "$1" "$2" "$3" "${5:+$5, }" "$4" >>"$RESULTS"
}

# CPU time (user + system) of a process in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# CPU time of nginx's workers, in clock ticks.
nginx_ticks() {
    local sum=0 pid
    for pid in $(pgrep -P "$NGINX_PID"); do sum=$((sum + $(cpu_ticks "$pid"))); done
    echo "$sum"
}
# timed_run CMD...: runs CMD (a shell function is fine) with its stdout in $TIMED_OUT and
# the user + system CPU seconds of every process it ran in $TIMED_CPU_S: the load
# generator's and the curl client's own cost per call, for the CPU budget in the report.
timed_run() {
    local TIMEFORMAT='%3U %3S'
    { time TIMED_OUT=$("$@"); } 2>"$WORK/timed.out"
    TIMED_CPU_S=$(awk '{print $1 + $2}' "$WORK/timed.out")
}

# How busy the shared machine was when the run began, for the report.
record loadavg machine 1 "{\"one_minute\": $(awk '{print $1}' /proc/loadavg)}"

# ---- certificates -----------------------------------------------------------
log "work directory $WORK"
(
    cd "$WORK"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=fdc bench CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile server.ext
) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; exit 1; }
echo bench-token >"$WORK/token"
chmod 600 "$WORK/token"

# ---- nginx -------------------------------------------------------------------
FAST_PORT=$(free_port)
SLOW_PORT=$(free_port)
while [ "$SLOW_PORT" = "$FAST_PORT" ]; do SLOW_PORT=$(free_port); done
FAST=127.0.0.1:$FAST_PORT
SLOW=127.0.0.1:$SLOW_PORT
mkdir -p "$WORK/nginx"
# About the size of a real runs/get answer for a running one-time run.
RUN_JSON='{"job_id": 11, "run_id": 42, "number_in_job": 42, "creator_user_name": "bench@example.com", "state": {"life_cycle_state": "RUNNING", "state_message": "In run", "user_cancelled_or_timedout": false}, "start_time": 1700000000000, "setup_duration": 0, "execution_duration": 0, "cleanup_duration": 0, "run_page_url": "https://127.0.0.1/#job/11/run/42", "run_type": "SUBMIT_RUN", "run_name": "bench"}'
SUBMIT_JSON='{"run_id": 4242}'
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$WORK/nginx/nginx.conf" <<EOF
$USER_LINE
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
load_module $ECHO_MODULE;
events { worker_connections 16384; }
http {
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    # One line per request with the connection id (per worker pid): distinct
    # (pid, connection) pairs are TLS handshakes.
    log_format conns '\$pid \$connection \$connection_requests \$ssl_session_reused \$server_port \$status "\$http_user_agent"';
    access_log $WORK/nginx/access.log conns buffer=256k flush=1s;
    ssl_certificate $WORK/server.pem;
    ssl_certificate_key $WORK/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    # nginx's default closes a connection after 1,000 requests, which alone
    # would be one handshake per 1,000 calls; a workspace keeps it open.
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    default_type application/json;
    server {
        listen $FAST ssl http2;
        location = /api/2.1/jobs/runs/get { return 200 '$RUN_JSON'; }
        location = /api/2.1/jobs/runs/submit { return 200 '$SUBMIT_JSON'; }
        location = /api/2.1/jobs/runs/cancel { return 200 '{}'; }
    }
    server {
        listen $SLOW ssl http2;
        location = /api/2.1/jobs/runs/get { echo_sleep 0.05; echo '$RUN_JSON'; }
        location = /api/2.1/jobs/runs/submit { echo_sleep 0.05; echo '$SUBMIT_JSON'; }
        location = /api/2.1/jobs/runs/cancel { echo_sleep 0.05; echo '{}'; }
    }
}
EOF
"$NGINX" -t -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -e "$WORK/nginx/error.log"
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -e "$WORK/nginx/error.log" \
    -g 'daemon off;' &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 100); do
    curl -sf --cacert "$WORK/ca.pem" "https://$FAST/api/2.1/jobs/runs/get?run_id=1" >/dev/null &&
        curl -sf --cacert "$WORK/ca.pem" "https://$SLOW/api/2.1/jobs/runs/get?run_id=1" >/dev/null &&
        break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx/error.log" >&2; exit 1; }
    sleep 0.1
done
curl -sf --http2 --cacert "$WORK/ca.pem" -o /dev/null -w '%{http_version}' \
    "https://$FAST/api/2.1/jobs/runs/get?run_id=1" | grep -q '^2' ||
    { log "nginx does not answer HTTP/2"; exit 1; }
log "nginx on $FAST (instant) and $SLOW (+50 ms)"

# ---- daemon ------------------------------------------------------------------
# write_config FILE [EXTRA_JSON_MEMBERS]
write_config() {
    cat >"$1" <<EOF
{
    "default_instance": "$FAST",
    "allowed_instances": ["$SLOW"],
    "ca_file": "$WORK/ca.pem",
    "token_file": "$WORK/token",
    "log_level": "info"${2:+,
    $2}
}
EOF
}
write_config "$WORK/daemon.json"
# 5,000 calls in flight go past the default per-workspace cap of 256.
write_config "$WORK/daemon-5000.json" '"instance_max_concurrent_requests": 10000'

DAEMON_PID=""
DAEMON_PORT=""
METRICS_PORT=""
start_daemon() { # CONFIG LOGNAME
    DAEMON_PORT=$(free_port)
    METRICS_PORT=$(free_port)
    "$DAEMON" serve --config "$1" --listen "127.0.0.1:$DAEMON_PORT" \
        --metrics-listen "127.0.0.1:$METRICS_PORT" 2>"$WORK/$2.log" &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    for _ in $(seq 100); do
        timeout 10 "$LOADGEN" --startup --target "127.0.0.1:$DAEMON_PORT" --idle-ms 0 \
            >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "daemon did not start:"
    tail -5 "$WORK/$2.log" >&2
    exit 1
}

metric() { # NAME: sum of the series of one metric from the running daemon
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $NF} END {printf "%d\n", s}'
}

# loadgen TARGET_PORT ARGS... : one run, output on stdout (one JSON line)
loadgen() {
    local port=$1
    shift
    timeout 120 "$LOADGEN" --target "127.0.0.1:$port" --duration "$DURATION" --warmup "$WARMUP" \
        "$@" 2>>"$WORK/loadgen.err" || true
}

curl_client() { # CONCURRENCY INSTANCE
    timeout 120 "$CURLC" --base "https://$2" --ca-file "$WORK/ca.pem" --concurrency "$1" \
        --duration "$DURATION" --warmup "$WARMUP" 2>>"$WORK/curl_client.err" || true
}

need_json() { # LINE WHAT
    case $1 in
    \{*) ;;
    *) log "$2 gave no result; see $WORK/*.err"; tail -5 "$WORK"/*.err >&2 || true; exit 1 ;;
    esac
}

# ---- 1. start-up time and idle RSS ------------------------------------------
log "start-up time and idle RSS ($REPS runs)"
for rep in $(seq "$REPS"); do
    port=$(free_port)
    line=$(timeout 60 "$LOADGEN" --startup --target "127.0.0.1:$port" --idle-ms 1000 -- \
        "$DAEMON" serve --config "$WORK/daemon.json" --listen "127.0.0.1:$port" \
        --metrics-listen off 2>>"$WORK/startup.err" || true)
    need_json "$line" "start-up run"
    record startup daemon "$rep" "$line"
done

# The dynamic loader's share: exec of `--version` loads the same ~90 shared
# libraries and runs their initializers, then exits.
for rep in $(seq "$REPS"); do
    "$PYTHON" - "$DAEMON" "$rep" >>"$RESULTS" <<'EOF'
import json, subprocess, sys, time
t = time.perf_counter()
subprocess.run([sys.argv[1], "serve", "--version"], stdout=subprocess.DEVNULL, check=True)
print(json.dumps({"figure": "version_exec", "target": "daemon", "rep": int(sys.argv[2]),
                  "data": {"ms": (time.perf_counter() - t) * 1000}}))
EOF
done

# The floor under the idle figure: the no-op gRPC server (gRPC and protobuf-c only), idle
# after a few calls, alone and with every library the daemon links and it does not
# preloaded, so that the loader maps and relocates the same set as for the daemon.
needed_libs() { readelf -d "$1" | awk '$2 == "(NEEDED)" {gsub(/[][]/, "", $5); print $5}' | sort; }
DAEMON_ONLY_LIBS=$(comm -23 <(needed_libs "$DAEMON") <(needed_libs "$NOOP") | tr '\n' ' ')
for rep in $(seq "$REPS"); do
    for target in noop noop_daemon_libs; do
        preload=""
        [ "$target" = noop_daemon_libs ] && preload=$DAEMON_ONLY_LIBS
        : >"$WORK/noop-idle.port"
        env LD_PRELOAD="$preload" "$NOOP" --threads 2 >"$WORK/noop-idle.port" 2>>"$WORK/noop-idle.log" &
        IDLE_PID=$!
        PIDS+=("$IDLE_PID")
        for _ in $(seq 100); do [ -s "$WORK/noop-idle.port" ] && break; sleep 0.05; done
        idle_port=$(awk '{print $2}' "$WORK/noop-idle.port")
        line=$(DURATION=0.05 WARMUP=0 loadgen "$idle_port" --call get --concurrency 1 --threads 1 \
            --instance "$FAST")
        need_json "$line" "loadgen (idle floor)"
        sleep 1
        record idle_floor "$target" "$rep" \
            "{\"rss_idle_kb\": $(status_kb "$IDLE_PID" VmRSS), \"rss_idle_anon_kb\": $(status_kb "$IDLE_PID" RssAnon), \"rss_idle_file_kb\": $(status_kb "$IDLE_PID" RssFile)}" \
            "\"preload\": \"$preload\""
        stop_pid "$IDLE_PID"
    done
done

# ---- long-lived servers --------------------------------------------------------
"$NOOP" --threads 2 >"$WORK/noop.port" 2>"$WORK/noop.log" &
NOOP_PID=$!
PIDS+=("$NOOP_PID")
for _ in $(seq 100); do [ -s "$WORK/noop.port" ] && break; sleep 0.05; done
NOOP_PORT=$(awk '{print $2}' "$WORK/noop.port")
[ -n "$NOOP_PORT" ] || { log "noop_server did not start"; exit 1; }
# The same daemon logging warnings only: what logging costs at all.
sed 's/"log_level": "info"/"log_level": "warning"/' "$WORK/daemon.json" >"$WORK/daemon-quiet.json"
start_daemon "$WORK/daemon-quiet.json" daemon-quiet
QUIET_PID=$DAEMON_PID
QUIET_PORT=$DAEMON_PORT
# The same daemon at log_level debug: a line for every GetTask, as info wrote before issue 14
# (info now writes one only when a run's phase changes; bench/findings.md).
sed 's/"log_level": "info"/"log_level": "debug"/' "$WORK/daemon.json" >"$WORK/daemon-debug.json"
start_daemon "$WORK/daemon-debug.json" daemon-debug
DEBUG_PID=$DAEMON_PID
DEBUG_PORT=$DAEMON_PORT
# The same daemon with 2 gRPC worker threads handing calls to the loop thread,
# the layout before workers 0 served gRPC on the loop thread itself.
write_config "$WORK/daemon-workers.json" '"workers": 2'
start_daemon "$WORK/daemon-workers.json" daemon-workers
WORKERS_PID=$DAEMON_PID
WORKERS_PORT=$DAEMON_PORT
start_daemon "$WORK/daemon.json" daemon
log "daemon pid $DAEMON_PID on port $DAEMON_PORT, no-op server on port $NOOP_PORT"

# ---- 2. GetTask throughput: no-op, daemon, curl-only, side by side ------------
# GetTasks go round robin over GET_RUNS run ids: fewer than max_tracked_runs (20,000), as
# propeller's set of running tasks is, so the run table knows each run's last answer (which
# decides the log level) as it would in production.
GET_RUNS=10000
# variant_run PID PORT TARGET WHAT: GetTask at 64 in flight against a daemon configured
# otherwise (rep from the loop), with the CPU it spent.
variant_run() {
    local t0 line
    t0=$(cpu_ticks "$1")
    line=$(loadgen "$2" --call get --concurrency 64 --threads 2 --instance "$FAST" \
        --runs "$GET_RUNS")
    need_json "$line" "loadgen (daemon, $4)"
    record get64 "$3" "$rep" "$line" "\"cpu_ticks\": $(($(cpu_ticks "$1") - t0))"
}
for rep in $(seq "$REPS"); do
    for c in 16 64 256; do
        log "throughput rep $rep/$REPS, $c in flight"
        # Every run records the CPU its server, the client and nginx spent: the CPU
        # budget of the machine, which all three share.
        t0=$(cpu_ticks "$NOOP_PID")
        timed_run loadgen "$NOOP_PORT" --call get --concurrency "$c" --threads 2 --instance "$FAST"
        need_json "$TIMED_OUT" "loadgen (no-op server)"
        record "get$c" noop "$rep" "$TIMED_OUT" \
            "\"cpu_ticks\": $(($(cpu_ticks "$NOOP_PID") - t0)), \"client_cpu_s\": $TIMED_CPU_S"

        t0=$(cpu_ticks "$DAEMON_PID")
        n0=$(nginx_ticks)
        timed_run loadgen "$DAEMON_PORT" --call get --concurrency "$c" --threads 2 --instance "$FAST" \
            --runs "$GET_RUNS"
        need_json "$TIMED_OUT" "loadgen (daemon)"
        record "get$c" daemon "$rep" "$TIMED_OUT" \
            "\"cpu_ticks\": $(($(cpu_ticks "$DAEMON_PID") - t0)), \"client_cpu_s\": $TIMED_CPU_S, \"nginx_ticks\": $(($(nginx_ticks) - n0))"

        n0=$(nginx_ticks)
        timed_run curl_client "$c" "$FAST"
        need_json "$TIMED_OUT" "curl_client"
        record "get$c" curl "$rep" "$TIMED_OUT" \
            "\"client_cpu_s\": $TIMED_CPU_S, \"nginx_ticks\": $(($(nginx_ticks) - n0))"

        if [ "$c" = 64 ]; then
            variant_run "$QUIET_PID" "$QUIET_PORT" daemon_quiet "log_level warning"
            variant_run "$DEBUG_PID" "$DEBUG_PORT" daemon_debug "log_level debug"
            variant_run "$WORKERS_PID" "$WORKERS_PORT" daemon_workers "workers 2"
        fi
    done
done
stop_pid "$QUIET_PID"
stop_pid "$DEBUG_PID"
stop_pid "$WORKERS_PID"

# ---- 3. CreateTask throughput -------------------------------------------------
for rep in $(seq "$REPS"); do
    log "CreateTask rep $rep/$REPS"
    line=$(loadgen "$DAEMON_PORT" --call create --concurrency 64 --threads 2 --instance "$FAST")
    need_json "$line" "loadgen (CreateTask)"
    record create64 daemon "$rep" "$line"
done

# ---- 4. latency at 1,000 calls/s against the 50 ms backend --------------------
for rep in $(seq "$REPS"); do
    log "fixed rate rep $rep/$REPS"
    line=$(loadgen "$DAEMON_PORT" --call get --rate 1000 --instance "$SLOW")
    need_json "$line" "loadgen (fixed rate)"
    record rate1000 daemon "$rep" "$line"
    # The backend alone at the same load: the curl client at the same fixed rate, its
    # latency also counted from when each request was due.
    line=$(timeout 120 "$CURLC" --base "https://$SLOW" --ca-file "$WORK/ca.pem" --rate 1000 \
        --duration "$DURATION" --warmup "$WARMUP" 2>>"$WORK/curl_client.err" || true)
    need_json "$line" "curl_client (1,000/s, 50 ms)"
    record rate1000 curl "$rep" "$line"
done

# ---- 5. TLS handshakes per 1,000 Databricks calls ----------------------------
sleep 1.5 # nginx flushes its log buffer every second
opened=$(metric fdc_databricks_connections_opened_total)
requests=$(metric fdc_databricks_requests_total)
printf '{"figure": "handshakes", "target": "daemon", "rep": 1, "data": {"metric_connections": %s, "metric_requests": %s}}\n' \
    "$opened" "$requests" >>"$RESULTS"
"$PYTHON" - "$WORK/nginx/access.log" >>"$RESULTS" <<'EOF'
import json, sys
conns, requests, resumed = set(), 0, 0
for line in open(sys.argv[1], errors="replace"):
    f = line.split(" ", 6)
    if len(f) < 7 or "flyte-databricks-connector" not in f[6]:
        continue
    requests += 1
    if (f[0], f[1]) not in conns:
        conns.add((f[0], f[1]))
        resumed += f[3] == "r"
print(json.dumps({"figure": "handshakes", "target": "nginx", "rep": 1,
                  "data": {"connections": len(conns), "requests": requests, "resumed": resumed}}))
EOF

# ---- 6. profile of the daemon at 64 in flight ---------------------------------
if command -v perf >/dev/null && perf record -e cpu-clock -o "$WORK/perf.probe" -- true >/dev/null 2>&1; then
    log "profiling the daemon (perf, cpu-clock) at 64 in flight"
    perf record -e cpu-clock -F 1999 -g -o "$WORK/perf.data" -p "$DAEMON_PID" \
        >/dev/null 2>"$WORK/perf.err" &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
    sleep 0.5
    line=$(loadgen "$DAEMON_PORT" --call get --concurrency 64 --threads 2 --instance "$FAST")
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    forget_pid "$PERF_PID"
    perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none \
        --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 \
        >"$WORK/profile.txt" || true
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -12 >"$WORK/profile-dso.txt" || true
fi
stop_pid "$DAEMON_PID"

# ---- 7. peak RSS with 5,000 calls in flight against the 50 ms backend ----------
# With the default configuration (at most 256 requests a workspace handed to libcurl, the
# rest wait in the daemon's queue), and with that cap raised past 5,000.
for rep in $(seq "$REPS"); do
    for target in daemon daemon_raised_cap; do
        log "5,000 in flight rep $rep/$REPS ($target)"
        config=$WORK/daemon.json
        [ "$target" = daemon_raised_cap ] && config=$WORK/daemon-5000.json
        start_daemon "$config" "$target-5000-$rep"
        rss_before=$(status_kb "$DAEMON_PID" VmRSS)
        line=$(loadgen "$DAEMON_PORT" --call get --concurrency 5000 --threads 2 --instance "$SLOW" \
            --deadline-ms 30000)
        need_json "$line" "loadgen (5,000 in flight)"
        record inflight5000 "$target" "$rep" "$line" \
            "\"rss_before_kb\": $rss_before, \"hwm_kb\": $(status_kb "$DAEMON_PID" VmHWM), \"rss_after_kb\": $(status_kb "$DAEMON_PID" VmRSS)"
        stop_pid "$DAEMON_PID"
    done
done

# The floor: the no-op gRPC server holding every call 50 ms, same load, with the daemon's
# allocator setting (one malloc arena, daemon/daemon.c).
for rep in $(seq "$REPS"); do
    log "5,000 in flight, no-op server holding calls 50 ms, rep $rep/$REPS"
    MALLOC_ARENA_MAX=1 "$NOOP" --threads 2 --delay-ms 50 >"$WORK/noop-held.port" \
        2>>"$WORK/noop-held.log" &
    HELD_PID=$!
    PIDS+=("$HELD_PID")
    for _ in $(seq 100); do [ -s "$WORK/noop-held.port" ] && break; sleep 0.05; done
    held_port=$(awk '{print $2}' "$WORK/noop-held.port")
    line=$(loadgen "$held_port" --call get --concurrency 5000 --threads 2 --instance "$SLOW" \
        --deadline-ms 30000)
    need_json "$line" "loadgen (no-op server holding 5,000)"
    record inflight5000 noop_held "$rep" "$line" "\"hwm_kb\": $(status_kb "$HELD_PID" VmHWM)"
    stop_pid "$HELD_PID"
    : >"$WORK/noop-held.port"
done

# ---- 8. h2load cross-check of the generator (no-op server, 64 in flight) -------
"$PYTHON" - "$WORK/gettask.grpc" "$FAST" <<'EOF'
import sys
def field(number, payload):
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload
meta = ('{"databricks_instance": "%s", "run_id": "1"}' % sys.argv[2]).encode()
msg = field(1, b"spark") + field(2, meta) + field(3, field(1, b"spark"))
# A gRPC message frame: not compressed, 4-byte big-endian length, message.
open(sys.argv[1], "wb").write(b"\0" + len(msg).to_bytes(4, "big") + msg)
EOF
for rep in $(seq "$REPS"); do
    log "h2load cross-check rep $rep/$REPS"
    out=$(timeout 120 h2load -c 2 -m 32 -t 1 -D "$DURATION" --warm-up-time "$WARMUP" \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/gettask.grpc" \
        "http://127.0.0.1:$NOOP_PORT/flyteidl.service.AsyncAgentService/GetTask" 2>&1 || true)
    echo "$out" >>"$WORK/h2load.log"
    "$PYTHON" - "$rep" >>"$RESULTS" <<EOF
import json, re, sys
out = """$out"""
m = re.search(r"finished in ([0-9.]+)s, ([0-9.]+) req/s", out)
ok = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
data = {"throughput": float(m.group(2)) if m else 0.0,
        "errors": (int(ok.group(4)) + int(ok.group(5))) if ok else -1}
print(json.dumps({"figure": "h2load64", "target": "noop", "rep": int(sys.argv[1]), "data": data}))
EOF
done

# ---- 9. latency against load (plot) --------------------------------------------
start_daemon "$WORK/daemon.json" daemon-sweep
SWEEP_RATES="500 1000 2000 3000 4000 6000 8000 10000 13000 16000 20000 25000"
[ "$QUICK" = 1 ] && SWEEP_RATES="1000 4000 10000"
for target in daemon noop; do
    port=$DAEMON_PORT
    [ "$target" = noop ] && port=$NOOP_PORT
    for rate in $SWEEP_RATES; do
        log "latency sweep: $target at $rate calls/s"
        line=$(DURATION=3 loadgen "$port" --call get --rate "$rate" --threads 2 --instance "$FAST" \
            --deadline-ms 5000)
        need_json "$line" "loadgen (sweep)"
        record sweep "$target" 1 "$line"
        # Past saturation the queue only grows: stop there.
        "$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["throughput"] >= 0.9 * d["rate"] and d["errors"] == 0 else 1)' "$line" || break
    done
done
stop_pid "$DAEMON_PID"

# ---- report ----------------------------------------------------------------------
stop_pid "$NOOP_PID"
stop_pid "$NGINX_PID"
mkdir -p "$BENCH_OUT"
"$PYTHON" bench/report.py --results "$RESULTS" --work "$WORK" --out "$BENCH_OUT" \
    --reps "$REPS" --duration "$DURATION" --warmup "$WARMUP" $([ "$QUICK" = 1 ] && echo --quick)
