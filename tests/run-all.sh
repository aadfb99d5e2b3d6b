#!/bin/bash
# Runs the unit test binaries and/or the end-to-end suite and sums the results.
#
#   tests/run-all.sh [unit|e2e|packaging|all]      (default: all)
#
# Environment: BUILD (build dir, default build), PYTHON (default /usr/bin/python3),
# UNIT_TIMEOUT / E2E_TIMEOUT (seconds, default 120 / 600); the e2e suite also
# reads DAEMON, VALGRIND, TIMEOUT_SCALE (see tests/e2e/README.md).
#
# A unit binary passes iff it exits 0; its cmocka summary lines
# ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s), ...") give the counts
# added to the totals, so the last line, "N passed, N failed", counts single
# tests. Exit status 1 if anything failed or nothing ran.
set -u

mode=${1:-all}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
E2E_TIMEOUT=${E2E_TIMEOUT:-600}
here=$(cd "$(dirname "$0")" && pwd)

case "$mode" in
unit | e2e | packaging | all) ;;
*)
	echo "usage: $0 [unit|e2e|packaging|all]" >&2
	exit 2
	;;
esac

passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Adds the counts of one cmocka binary's output ($out) and exit code ($1).
count_unit() {
	local rc=$1 name=$2 p f
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | tail -n 1)
	# A crash leaves no summary: count the lines cmocka printed per test.
	[ -n "$p" ] || p=$(grep -c '^\[       OK \]' "$out")
	[ -n "$f" ] || f=0
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then p=1; fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -eq 0 ]; then
		echo "ok $name ($p tests)"
	else
		echo "FAIL $name: exit code $rc ($p passed, $f failed)"
	fi
}

# Adds the "N passed, N failed" summary a suite printed last ($out) to the totals.
count_suite() {
	local rc=$1 name=$2 last
	last=$(tail -n 1 "$out")
	if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then failed=$((failed + 1)); fi
	else
		echo "FAIL $name: suite ended without a summary (exit code $rc)"
		failed=$((failed + 1))
	fi
}

if [ "$mode" = unit ] || [ "$mode" = all ]; then
	shopt -s nullglob
	bins=("$BUILD"/tests/test_*)
	shopt -u nullglob
	ran=0
	for bin in "${bins[@]}"; do
		case "$bin" in *.o | *.d) continue ;; esac
		[ -x "$bin" ] || continue
		ran=1
		timeout -k 5 "$UNIT_TIMEOUT" "$bin" >"$out" 2>&1
		rc=$?
		cat "$out"
		count_unit "$rc" "$(basename "$bin")"
	done
	[ "$ran" -eq 1 ] || echo "# no unit test binaries in $BUILD/tests"
fi

if [ "$mode" = e2e ] || [ "$mode" = all ]; then
	BUILD=$BUILD timeout -k 10 "$E2E_TIMEOUT" "$PYTHON" "$here/e2e/run.py" 2>&1 | tee "$out"
	count_suite "${PIPESTATUS[0]}" e2e
fi

if [ "$mode" = packaging ] || [ "$mode" = all ]; then
	BUILD=$BUILD PYTHON=$PYTHON timeout -k 10 600 bash "$here/packaging/run.sh" 2>&1 | tee "$out"
	count_suite "${PIPESTATUS[0]}" packaging
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
