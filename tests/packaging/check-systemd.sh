#!/bin/bash
# Checks systemd/flyte-databricks-connector.service: systemd-analyze verify finds
# nothing to say about it, systemd-analyze security rates its exposure at most
# MAX_EXPOSURE, and the directives the daemon's life cycle depends on are set.
#
#   tests/packaging/check-systemd.sh
#
# Environment: BUILD (build dir, default build), MAX_EXPOSURE (default 2.0).
# verify insists that every Exec*= binary exists, so it runs on a copy of the
# unit whose daemon path points at $BUILD/flyte-databricks-connector, or at
# /bin/true when that is not built. Prints "ok NAME" / "FAIL NAME: reason" and
# "N passed, N failed"; exits 1 on any failure. Skips (exit 0) only when
# systemd-analyze is not installed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
unit_name=flyte-databricks-connector.service
unit="$root/systemd/$unit_name"
env_example="$root/systemd/flyte-databricks-connector.env.example"
installed_bin=/usr/bin/flyte-databricks-connector

passed=0
failed=0
ok() {
	echo "ok $1"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL $1: $2"
	failed=$((failed + 1))
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "# skip systemd checks: systemd-analyze is not installed"
	exit 0
fi
if [ ! -f "$unit" ]; then
	fail unit-exists "$unit is missing"
	finish
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$BUILD" in /*) bin="$BUILD/flyte-databricks-connector" ;; *) bin="$root/$BUILD/flyte-databricks-connector" ;; esac
if [ ! -x "$bin" ]; then
	echo "# $bin is not built: verify runs with /bin/true in its place"
	bin=/bin/true
fi
# The copy keeps the unit's name: verify derives the unit type from it.
sed "s|$installed_bin|$bin|g" "$unit" >"$tmp/$unit_name"

# 1. verify: any message (unknown key, bad value, missing binary) is a failure,
# because verify exits 0 on most of them.
out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/$unit_name" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze-verify"
else
	fail "systemd-analyze-verify" "exit code $rc: $(echo "$out" | tr '\n' ' ')"
fi

# 2. security: the last line reads "→ Overall exposure level for UNIT: 1.1 OK".
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
rc=$?
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' | tail -n 1)
if [ "$rc" -ne 0 ] || [ -z "$score" ]; then
	fail "systemd-analyze-security" "no exposure score (exit code $rc): $(echo "$out" | tail -n 3 | tr '\n' ' ')"
else
	echo "# exposure level: $score (limit $MAX_EXPOSURE)"
	echo "$out" | grep -E ' [0-9]+\.[0-9]+$' | grep -v 'Overall' | sed 's/^/#   /'
	if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
		ok "systemd-analyze-security (exposure $score <= $MAX_EXPOSURE)"
	else
		fail "systemd-analyze-security" "exposure $score is above $MAX_EXPOSURE"
	fi
fi

# 3. Directives the daemon's protocol with systemd relies on, read from the
# unit's own lines (no drop-ins exist at this point).
props=$(grep -E '^[A-Za-z]+=' "$unit")
# "NAME|regular expression a line of the unit must match|why"
checks=(
	"type-notify|^Type=notify$|the daemon signals READY=1 via sd_notify"
	"notify-access|^NotifyAccess=main$|only the main process may send notifications"
	"watchdog|^WatchdogSec=[1-9][0-9]*s?$|the daemon sends WATCHDOG=1"
	"restart|^Restart=on-failure$|a crash must restart the service"
	"restart-sec|^RestartSec=[1-9]|restarts must be spaced"
	"env-file|^EnvironmentFile=-/etc/flyte-databricks-connector/env$|the token comes from the optional env file"
	"exec-start|^ExecStart=$installed_bin --config /etc/flyte-databricks-connector/config.json$|ExecStart passes --config"
	"exec-reload|^ExecReload=/bin/kill -HUP \\\$MAINPID$|SIGHUP reloads the config"
	"dynamic-user|^DynamicUser=yes$|the service must not run as root"
	"no-capabilities|^CapabilityBoundingSet=$|the daemon needs no capability"
	"no-new-privileges|^NoNewPrivileges=yes$|no privilege gain through exec"
	"protect-system|^ProtectSystem=strict$|the file system must be read-only"
	"syscall-filter|^SystemCallFilter=@system-service$|system calls limited to a service's set"
	"address-families|^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$|only IP and local sockets"
	"limit-nofile|^LimitNOFILE=[1-9][0-9]*$|one descriptor per connection: raise the limit"
	"limit-core|^LimitCORE=0$|a core file would hold the token"
)
for c in "${checks[@]}"; do
	IFS='|' read -r name re why <<<"$c"
	if echo "$props" | grep -Eq "$re"; then
		ok "unit-$name"
	else
		fail "unit-$name" "no line matches /$re/ ($why)"
	fi
done

# TimeoutStopSec must outlast the daemon's 10 s graceful stop.
stop=$(echo "$props" | sed -n 's/^TimeoutStopSec=\([0-9][0-9]*\)s\{0,1\}$/\1/p' | tail -n 1)
if [ -n "$stop" ] && [ "$stop" -gt 10 ]; then
	ok "unit-timeout-stop (${stop}s > 10s grace)"
else
	fail "unit-timeout-stop" "TimeoutStopSec=${stop:-unset} must be a number of seconds above the 10 s grace period"
fi

# The env example names the variable the daemon reads and holds no real token.
if [ -f "$env_example" ] &&
	grep -q '^FLYTE_DATABRICKS_ACCESS_TOKEN=REPLACE-WITH-DATABRICKS-TOKEN$' "$env_example" &&
	! grep -Eq '^[^#]*dapi[0-9a-f]{16,}' "$env_example"; then
	ok "env-example"
else
	fail "env-example" "$env_example must set FLYTE_DATABRICKS_ACCESS_TOKEN to the placeholder REPLACE-WITH-DATABRICKS-TOKEN and hold no token"
fi

finish
