#!/bin/bash
# Runs the deployment checks (systemd unit, Dockerfile, Kubernetes manifests and
# propeller snippet, install, the names the Helm charts run the binary by) and sums their "N passed, N failed" lines into one.
#
#   tests/packaging/run.sh
#
# Environment: BUILD (build dir, default build), PYTHON (default /usr/bin/python3).
# Exit status 1 if any check failed, a script ended without a summary, or
# nothing ran.
set -u

here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
export BUILD=${BUILD:-build}

passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() {
	local name=$1 rc last
	shift
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	last=$(tail -n 1 "$out")
	if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then failed=$((failed + 1)); fi
	elif [ "$rc" -eq 0 ] && grep -q '^# skip' "$out"; then
		: # the tool the check needs is absent; it said so
	else
		echo "FAIL $name: ended without a summary (exit code $rc)"
		failed=$((failed + 1))
	fi
}

run check-systemd bash "$here/check-systemd.sh"
run check-dockerfile "$PYTHON" "$here/check-dockerfile.py"
run check-manifests "$PYTHON" "$here/check-manifests.py"
run check-install bash "$here/check-install.sh"
run check-aliases "$PYTHON" "$here/check-aliases.py"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
