#!/bin/bash
# The whole local workflow in one go (`make demo`): a fake Databricks
# workspace, the connector daemon, and a client that submits Databricks
# tasks and follows them, exactly as Flyte's propeller would. Everything
# listens on 127.0.0.1 and stops at the end; no credentials are needed.
#
#   examples/demo.sh [PROGRAM]     (default build/flyte-databricks-connector)
set -euo pipefail
cd "$(dirname "$0")/.."
program=${1:-build/flyte-databricks-connector}
work=$(mktemp -d)
fake_pid=""
daemon_pid=""

cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '    %s\n' "$*"; }
show() { printf '    $ %s\n' "$*"; }

wait_for_line() { # file pattern seconds
	local deadline=$((SECONDS + $3))
	until grep -q "$2" "$1" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || { echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1; }
		sleep 0.1
	done
}

step "1. Start a fake Databricks workspace"
say "It serves the Jobs API 2.1 (runs/submit, runs/get, runs/cancel, runs/get-output) over"
say "HTTPS with a throwaway CA, and moves each run PENDING -> RUNNING -> TERMINATED in a few"
say "seconds."
show "$program fake-workspace --port 0 --dir $work/fake --pending-seconds 2 --running-seconds 3"
mkdir -p "$work/fake"
"$program" fake-workspace --port 0 --dir "$work/fake" --pending-seconds 2 --running-seconds 3 \
	--quiet >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
wait_for_line "$work/fake.out" '^token=' 10
instance=$(sed -n 's/^instance=//p' "$work/fake.out")
ca_file=$(sed -n 's/^ca_file=//p' "$work/fake.out")
token=$(sed -n 's/^token=//p' "$work/fake.out")
say "workspace: $instance   CA to trust: $ca_file"

step "2. Start the connector daemon, pointed at the workspace"
say "The token comes from the environment, as with flytekit's connector; the daemon"
say "never writes it into resource_meta or its logs."
say "Port 0 picks a free port; the daemon logs the one it bound."
show "FLYTE_DATABRICKS_ACCESS_TOKEN=*** $program serve --listen 127.0.0.1:0 \\"
show "    --metrics-listen off --instance $instance --ca-file $ca_file"
FLYTE_DATABRICKS_ACCESS_TOKEN=$token "$program" serve --listen 127.0.0.1:0 \
	--metrics-listen off --instance "$instance" --ca-file "$ca_file" 2>"$work/daemon.log" &
daemon_pid=$!
wait_for_line "$work/daemon.log" 'msg=serving' 10
addr="127.0.0.1:$(sed -n 's/.*msg=serving .* port=\([0-9]*\).*/\1/p' "$work/daemon.log" | head -n 1)"
say "gRPC on $addr"

step "3. Ask the daemon what it serves (propeller's ListAgents)"
show "$program agents --addr $addr"
"$program" agents --addr "$addr"

step "4. Submit the sample task and follow it to the end (CreateTask, then GetTask)"
say "examples/databricks-task.json is a TaskTemplate as flytekit writes it; the daemon"
say "turns it into a runs/submit body, exactly as flytekit's connector would."
show "$program submit examples/databricks-task.json --addr $addr --wait --interval 0.5"
"$program" submit examples/databricks-task.json --addr "$addr" --wait --interval 0.5

step "5. A task that fails: the Python exception comes back to Flyte in the message"
say "Databricks says only \"Workload failed\"; the daemon asks runs/get-output once for the"
say "failed task run and adds the exception and the end of its traceback."
show "$program submit examples/databricks-task-failing.json --addr $addr --wait --interval 0.5"
set +e
"$program" submit examples/databricks-task-failing.json --addr "$addr" --wait --interval 0.5 \
	| tee "$work/failing.out"
rc=${PIPESTATUS[0]}
set -e
if ! grep -q 'ValueError: demo failure' "$work/failing.out"; then
	echo "the Python exception is not in the Flyte message" >&2
	exit 1
fi
if [ "$rc" -ne 3 ]; then
	echo "expected exit status 3 (run did not succeed), got $rc" >&2
	exit 1
fi
say "exit status $rc: the run ended in a phase other than SUCCEEDED (propeller would retry it)"

step "6. The failed run's output (GetTaskLogs): what it printed, then its error"
meta=$(head -n 1 "$work/failing.out")
show "$program logs '$meta' --addr $addr"
"$program" logs "$meta" --addr "$addr" | sed 's/^/    /'

step "7. What the daemon logged: a GetTask line only when its phase changed"
grep -E 'msg="call (done|failed)"' "$work/daemon.log" | tail -n 9 | sed 's/^/    /'
if grep -q "$token" "$work/daemon.log"; then
	echo "the token appeared in the daemon's log" >&2
	exit 1
fi

step "8. Stop both processes"
kill "$daemon_pid"
wait "$daemon_pid"
daemon_pid=""
kill "$fake_pid"
wait "$fake_pid" || true
fake_pid=""
say "done: the daemon exited 0 after a graceful stop."
