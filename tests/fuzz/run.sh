#!/bin/bash
# Runs libFuzzer targets built by tests/fuzz/fuzz.mk.
#
#   tests/fuzz/run.sh smoke|long SECONDS TARGET...
#
# smoke: each target fuzzes a throw-away copy of its seeds (tests/fuzz/corpus/<target>/), so
#        the committed corpus never grows.
# long:  each target fuzzes $FUZZ_BUILD/corpus/<target>/, topped up from the seeds and kept.
# Every target runs SECONDS (libFuzzer -max_total_time), FUZZ_JOBS at a time; its output goes
# to $FUZZ_BUILD/logs/<target>.log and a crash input to $FUZZ_BUILD/artifacts/<target>/.
# Prints one line per target and ends with "N passed, N failed"; exit status 1 on any crash.
set -u

mode=${1:?usage: $0 smoke|long SECONDS TARGET...}
seconds=${2:?usage: $0 smoke|long SECONDS TARGET...}
shift 2
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_ARGS=${FUZZ_ARGS:-}
seeds=$(cd "$(dirname "$0")" && pwd)/corpus
case "$mode" in smoke | long) ;; *) echo "usage: $0 smoke|long SECONDS TARGET..." >&2; exit 2 ;; esac
[ $# -gt 0 ] || { echo "$0: no targets" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$FUZZ_BUILD/logs"

# Fuzzes one target; leaves its exit code in $tmp/<target>.rc.
run_one() {
	local target=$1 bin="$FUZZ_BUILD/fuzz_$1" corpus log="$FUZZ_BUILD/logs/$1.log" rc
	if [ "$mode" = smoke ]; then
		corpus="$tmp/corpus-$target"
	else
		corpus="$FUZZ_BUILD/corpus/$target"
	fi
	mkdir -p "$corpus" "$FUZZ_BUILD/artifacts/$target"
	cp -n "$seeds/$target"/* "$corpus"/ 2>/dev/null
	# -timeout: one input taking 10 s is a hang; leaks fail too (ASan's LeakSanitizer).
	# shellcheck disable=SC2086
	timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$FUZZ_BUILD/artifacts/$target/" $FUZZ_ARGS "$corpus" >"$log" 2>&1
	rc=$?
	echo "$rc" >"$tmp/$target.rc"
}

running=0
for target in "$@"; do
	if [ ! -x "$FUZZ_BUILD/fuzz_$target" ]; then
		echo "FAIL fuzz_$target: $FUZZ_BUILD/fuzz_$target not built"
		echo 1 >"$tmp/$target.rc"
		continue
	fi
	echo "# fuzz_$target: $mode, ${seconds} s"
	run_one "$target" &
	running=$((running + 1))
	if [ "$running" -ge "$FUZZ_JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

passed=0
failed=0
for target in "$@"; do
	rc=$(cat "$tmp/$target.rc" 2>/dev/null || echo 1)
	log="$FUZZ_BUILD/logs/$target.log"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok fuzz_$target (${runs:-?} runs)"
	else
		failed=$((failed + 1))
		echo "FAIL fuzz_$target: exit code $rc (log $log; inputs in $FUZZ_BUILD/artifacts/$target/)"
		grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written|deadly signal' "$log" 2>/dev/null |
			head -n 8 | sed 's/^/    /'
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
