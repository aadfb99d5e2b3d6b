#!/bin/bash
# Checks `make install` (PREFIX and DESTDIR honoured, unit paths rewritten, the
# pyflyte and c0 links the Helm charts run) and the man page (lints clean,
# documents every --help option).
#
#   tests/packaging/check-install.sh        (BUILD: build dir, default build)
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
program="$BUILD/flyte-databricks-connector"
passed=0
failed=0
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

check() { # name, then a command that succeeds when the check holds
	local name=$1
	shift
	if "$@"; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		failed=$((failed + 1))
	fi
}

install_to() { # prefix, destdir
	make --no-print-directory -s install BUILD="$BUILD" PREFIX="$1" DESTDIR="$2" \
		UNITDIR="$1/lib/systemd/system" >"$stage/make.log" 2>&1
}

check "install PREFIX=/usr" install_to /usr "$stage/usr-root"
root="$stage/usr-root"
check "binary installed" test -x "$root/usr/bin/flyte-databricks-connector"
check "man page installed" test -f "$root/usr/share/man/man8/flyte-databricks-connector.8"
check "config installed to /etc" test -f "$root/etc/flyte-databricks-connector/config.json"
check "unit installed" test -f "$root/usr/lib/systemd/system/flyte-databricks-connector.service"
check "unit ExecStart under /usr/bin" grep -q '^ExecStart=/usr/bin/flyte-databricks-connector --config /etc/flyte-databricks-connector/config.json' \
	"$root/usr/lib/systemd/system/flyte-databricks-connector.service"
check "no DESTDIR in installed files" bash -c "! grep -rq '$stage' '$root'"
for alias in pyflyte c0; do
	check "$alias links to the binary beside it" \
		test "$(readlink "$root/usr/bin/$alias")" = flyte-databricks-connector
done
check "pyflyte serve agent runs the daemon" "$root/usr/bin/pyflyte" serve agent --version
check "c0 runs the daemon" "$root/usr/bin/c0" --version
# A real pyflyte (flytekit's) already there is left alone, and installing twice is fine.
rm "$root/usr/bin/pyflyte"
printf '#!/bin/sh\n' >"$root/usr/bin/pyflyte"
check "install again over a real pyflyte" install_to /usr "$stage/usr-root"
check "a real pyflyte is left alone" test ! -L "$root/usr/bin/pyflyte"
check "c0 still links to the binary" test "$(readlink "$root/usr/bin/c0")" = flyte-databricks-connector

check "install PREFIX=/opt/fdc" install_to /opt/fdc "$stage/opt-root"
root="$stage/opt-root"
check "binary under PREFIX" test -x "$root/opt/fdc/bin/flyte-databricks-connector"
check "links under PREFIX" test -L "$root/opt/fdc/bin/pyflyte" -a -L "$root/opt/fdc/bin/c0"
check "unit ExecStart follows PREFIX" grep -q '^ExecStart=/opt/fdc/bin/flyte-databricks-connector --config /opt/fdc/etc/flyte-databricks-connector/config.json' \
	"$root/opt/fdc/lib/systemd/system/flyte-databricks-connector.service"
check "installed binary runs" "$root/opt/fdc/bin/flyte-databricks-connector" --version
check "installed config is valid" "$root/opt/fdc/bin/flyte-databricks-connector" \
	--config "$root/opt/fdc/etc/flyte-databricks-connector/config.json" --check-config

lint=$(groff -mdoc -ww -z daemon/flyte-databricks-connector.8 2>&1 | grep -v 'cannot adjust line')
check "man page lints clean (groff -mdoc -ww)" test -z "$lint"
[ -z "$lint" ] || echo "$lint"

# Every option any --help lists (the daemon's and each command's) must be
# documented in the man page, and every command must have its entry.
missing=""
for command in "" agents submit status cancel logs check-config fake-workspace; do
	for option in $("$program" $command --help | grep -o -- '--[a-z][a-z_-]*' | sort -u); do
		grep -q -- "Fl ${option#-}" daemon/flyte-databricks-connector.8 ||
			missing="$missing ${command:+$command }$option"
	done
	[ -z "$command" ] || grep -q "^\.It Cm $command" daemon/flyte-databricks-connector.8 ||
		missing="$missing $command"
done
check "man page documents every --help option${missing:+ (missing:$missing)}" test -z "$missing"

# Each command's SYNOPSIS lines (from ".Cm COMMAND" to the next ".Nm") list the options its
# --help lists ("  --NAME" lines); the client options shared by every client command stand
# as "client-options" there, as "options" stands for the daemon's after check-config.
synopsis=$(sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' daemon/flyte-databricks-connector.8)
missing=""
for command in agents submit status cancel logs check-config fake-workspace; do
	block=$(echo "$synopsis" | sed -n "/^\.Cm $command\$/,/^\.Nm/p")
	[ -n "$block" ] || missing="$missing $command"
	for option in $("$program" $command --help | sed -n 's/^  \(--[a-z][a-z_-]*\).*/\1/p'); do
		case "$option" in --addr | --ca-file | --cert | --key | --timeout | --help) continue ;; esac
		echo "$block" | grep -q -- "Fl ${option#-}\( \|\$\)" || missing="$missing $command:$option"
	done
done
check "man page synopsis lists each command's options${missing:+ (missing:$missing)}" test -z "$missing"

# Every configuration key (as check-config lists them) has its man page entry; the masked
# secrets check-config shows ("token = (unset)", "... = (set, N bytes)") and the Kubernetes API
# it found are not keys.
missing=""
for key in $("$program" check-config config/flyte-databricks-connector.json 2>/dev/null |
	sed -n -e '/ = (unset)$/d' -e '/ = (set, [0-9]* bytes)$/d' -e 's/^\([a-z_]*\) = .*/\1/p'); do
	case "$key" in config_file | kubernetes_api) continue ;; esac
	grep -q "^\.It Cm $key\$" daemon/flyte-databricks-connector.8 || missing="$missing $key"
done
check "man page documents every configuration key${missing:+ (missing:$missing)}" test -z "$missing"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
