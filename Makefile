# flyte-databricks-connector: one non-recursive Makefile.
#
#   make            build build/flyte-databricks-connector
#   make deps       install missing Debian packages (apt-get; no-op when present)
#   make test       deps + build + every unit and end-to-end test
#   make test-unit / test-e2e / test-packaging   one part of the suite
#   make demo       fake workspace + daemon + sample tasks, end to end
#   make run        build and run the daemon on 127.0.0.1:8000 (flags in ARGS=...)
#   make install    install (PREFIX, DESTDIR, BINDIR, MANDIR, SYSCONFDIR, UNITDIR)
#   make format     reformat the C sources with the project's .clang-format
#   make format-check  fail on formatting drift (CI runs it)
#   make clean      remove build outputs

PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3
BUILD ?= build
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)

PROGRAM := $(BUILD)/flyte-databricks-connector

# `make V=1` prints full commands.
V ?= 0
ifeq ($(V),0)
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
else
Q :=
msg = @true
endif
VERSION := 0.1.0

# Debian 12 packages the build, the tests and the demo need.
DEB_PACKAGES := build-essential pkg-config libgrpc-dev libprotobuf-c-dev protobuf-c-compiler \
	libprotobuf-dev protobuf-compiler libcurl4-openssl-dev libcjson-dev libsystemd-dev \
	libcmocka-dev libmicrohttpd-dev libssl-dev openssl python3 python3-grpcio python3-protobuf \
	python3-yaml systemd valgrind groff-base clang libclang-rt-14-dev clang-format curl \
	util-linux
# Only `make bench` needs these (nginx would otherwise be installed, and
# started by its package scripts, on every test machine).
BENCH_PACKAGES := nginx libnginx-mod-http-echo nghttp2-client gnuplot-nox

PKG_MODULES := grpc libprotobuf-c libcurl libcjson libsystemd libmicrohttpd libcrypto
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKG_MODULES) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKG_MODULES) 2>/dev/null)
PURE_LIBS = $(shell $(PKG_CONFIG) --libs libprotobuf-c libcjson libcrypto 2>/dev/null) -lm
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
	-Wpointer-arith -Wformat=2
PROJECT_CFLAGS := -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -DFDC_VERSION='"$(VERSION)"' \
	-I$(BUILD)/gen -Idaemon -MMD -MP
# protoc-c output is not ours to fix; it gets plain warnings.
GEN_CFLAGS := -std=gnu11 -O2 -g -Wall -Werror -I$(BUILD)/gen

# Protocol: the project's .proto files (Flyte 1's flyteidl/ and Flyte 2's flyteidl2/, whose C
# names differ by package) plus the well-known types they import, from libprotobuf-dev.
PROTO_SYS_DIR ?= /usr/include
PROTOS := $(shell find proto -name '*.proto' | sort)
PROTO_WELL_KNOWN := struct timestamp duration
PROTO_NAMES := $(patsubst proto/%.proto,%,$(PROTOS)) $(PROTO_WELL_KNOWN:%=google/protobuf/%)
GEN_C := $(patsubst %,$(BUILD)/gen/%.pb-c.c,$(PROTO_NAMES))
GEN_H := $(GEN_C:.c=.h)
GEN_OBJS := $(GEN_C:.c=.o)

# Modules without network, threads or clock: unit tests link only these.
PURE_MODULES := spec phase resmeta structjson dbx_response config idempotency fake_runs \
	task_request \
	errmsg status pbdepth \
	template_json
PURE_MODULES += dbx_limit retry
PURE_MODULES += run_output run_info log_page
PURE_MODULES += k8s_secret tokencache oauth_token
PURE_MODULES += secret config_current
PURE_OBJS := $(patsubst %,$(BUILD)/daemon/%.o,$(PURE_MODULES))
# Modules with threads or local I/O but no Databricks or gRPC traffic; unit
# tests link them too (test_metrics_http and test_notify use local sockets,
# config's validation calls tls_files).
SHARED_MODULES := runs metrics metrics_http notify log tls_files hardening
SHARED_LIBS = $(shell $(PKG_CONFIG) --libs libmicrohttpd libsystemd 2>/dev/null)
UNIT_OBJS := $(PURE_OBJS) $(patsubst %,$(BUILD)/daemon/%.o,$(SHARED_MODULES))

DAEMON_SRCS := $(sort $(wildcard daemon/*.c))
DAEMON_OBJS := $(patsubst daemon/%.c,$(BUILD)/daemon/%.o,$(DAEMON_SRCS))

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))


.PHONY: deps-bench
.PHONY: all deps check-pkg test test-unit test-e2e check clean run install demo test-packaging test-valgrind
.PHONY: format format-check
# Generated sources and test objects are outputs, not temporaries: keep them.
.SECONDARY: $(GEN_C) $(GEN_H) $(UNIT_BINS:=.o)
all: check-pkg $(PROGRAM)

check-pkg:
	@$(PKG_CONFIG) --exists $(PKG_MODULES) || { \
		echo "missing libraries ($(PKG_MODULES)); run 'make deps' first" >&2; exit 1; }

# Installs the Debian packages in $(1) that are missing; a quick no-op otherwise.
define install_packages
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	else echo "deps: all Debian packages present"; fi
endef

deps:
	$(call install_packages,$(DEB_PACKAGES))

deps-bench:
	$(call install_packages,$(BENCH_PACKAGES))

$(BUILD)/gen/google/protobuf/%.pb-c.c: $(PROTO_SYS_DIR)/google/protobuf/%.proto
	@mkdir -p $(BUILD)/gen
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(BUILD)/gen -I$(PROTO_SYS_DIR) google/protobuf/$*.proto

$(BUILD)/gen/%.pb-c.c: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(BUILD)/gen -Iproto -I$(PROTO_SYS_DIR) $<

$(BUILD)/gen/%.pb-c.h: $(BUILD)/gen/%.pb-c.c ;

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c | $(GEN_H)
	$(call msg,CC,$@)
	$(Q)$(CC) $(GEN_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/daemon/%.o: daemon/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROJECT_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(PROGRAM): $(DAEMON_OBJS) $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread -lm

$(BUILD)/tests/%.o: tests/unit/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROJECT_CFLAGS) -Wno-missing-prototypes $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(UNIT_OBJS) $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PURE_LIBS) $(SHARED_LIBS) $(CMOCKA_LIBS) -lpthread

# test_agent links the task handlers without the gRPC server, the token chain or the Databricks
# client: the linker sends agent.o's calls to them to the test's own __wrap_ functions.
AGENT_WRAPS := creds_request creds_source_name server_call_reply server_call_fail \
	server_call_deadline_ms server_call_method
comma := ,
$(BUILD)/tests/test_agent: $(BUILD)/tests/test_agent.o $(BUILD)/daemon/agent.o \
		$(BUILD)/daemon/run_details.o $(UNIT_OBJS) $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(AGENT_WRAPS:%=-Wl$(comma)--wrap=%) -o $@ $^ $(PURE_LIBS) \
		$(SHARED_LIBS) $(CMOCKA_LIBS) -lpthread

# test_secret watches free() to see what a secret's bytes were when they went back.
$(BUILD)/tests/test_secret: $(BUILD)/tests/test_secret.o $(BUILD)/daemon/secret.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -Wl,--wrap=free -o $@ $^ $(CMOCKA_LIBS)

# test_log reads the journal format's fields through its own sd_journal_sendv() (a macro for
# sd_journal_sendv_with_location()).
$(BUILD)/tests/test_log: $(BUILD)/tests/test_log.o $(UNIT_OBJS) $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -Wl,--wrap=sd_journal_sendv_with_location -o $@ $^ $(PURE_LIBS) $(SHARED_LIBS) \
		$(CMOCKA_LIBS) -lpthread

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run-all.sh

test-unit: all $(UNIT_BINS)
	@BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run-all.sh unit

test-e2e: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run-all.sh e2e

test-packaging: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run-all.sh packaging

# The end-to-end suite with every daemon under valgrind memcheck, both log formats one after
# the other (slow: ~16 min).
test-valgrind: all
	@VALGRIND=1 E2E_JOBS=1 BUILD=$(BUILD) PYTHON=$(PYTHON) E2E_TIMEOUT=1800 tests/run-all.sh e2e

check: test

# Names the binary also answers to (daemon/main.c): the commands the official Helm charts start.
# Each is a relative link beside the binary; a file of that name that is not such a link (a
# real flytekit's pyflyte) is left alone. `make install INSTALL_ALIASES=` makes none.
INSTALL_ALIASES ?= pyflyte c0

# DESTDIR stages a package; it never ends up in a compiled-in or installed path.
# The unit file's paths follow BINDIR and SYSCONFDIR; an existing config is kept.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/flyte-databricks-connector
	install -m 0755 $(PROGRAM) $(DESTDIR)$(BINDIR)/flyte-databricks-connector
	@for alias in $(INSTALL_ALIASES); do \
		link=$(DESTDIR)$(BINDIR)/$$alias; \
		if { [ -e "$$link" ] || [ -L "$$link" ]; } && \
			[ "$$(readlink "$$link")" != flyte-databricks-connector ]; then \
			echo "install: $$link exists and is not a link to flyte-databricks-connector; left alone"; \
		else \
			echo "ln -sfn flyte-databricks-connector $$link"; \
			ln -sfn flyte-databricks-connector "$$link"; \
		fi; \
	done
	install -m 0644 daemon/flyte-databricks-connector.8 $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|/usr/bin/flyte-databricks-connector|$(BINDIR)/flyte-databricks-connector|g' \
		-e 's|/etc/flyte-databricks-connector|$(SYSCONFDIR)/flyte-databricks-connector|g' \
		systemd/flyte-databricks-connector.service \
		> $(DESTDIR)$(UNITDIR)/flyte-databricks-connector.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/flyte-databricks-connector.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/flyte-databricks-connector/config.json ] || \
		install -m 0644 config/flyte-databricks-connector.json \
		$(DESTDIR)$(SYSCONFDIR)/flyte-databricks-connector/config.json
	install -m 0600 systemd/flyte-databricks-connector.env.example \
		$(DESTDIR)$(SYSCONFDIR)/flyte-databricks-connector/env.example

# The local workflow end to end: fake workspace, daemon, sample tasks.
demo: all
	@examples/demo.sh $(PROGRAM)

# Every C file the project writes; generated code lives under build*/ and is not ours.
FORMAT_SRCS = $(sort $(wildcard daemon/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch] bench/*.[ch]))

format: deps
	clang-format --style=file -i $(FORMAT_SRCS)

format-check: deps
	@clang-format --style=file --dry-run -Werror $(FORMAT_SRCS) && \
		echo "format-check: $(words $(FORMAT_SRCS)) files match .clang-format"

# Runs the daemon in the foreground on 127.0.0.1:8000; extra flags in ARGS.
run: all
	$(PROGRAM) --listen 127.0.0.1:8000 $(ARGS)

clean:
	rm -rf $(BUILD)

-include $(DAEMON_OBJS:.o=.d) $(UNIT_BINS:=.d)

# Optional parts (-include: the container build copies only what `make` needs).
-include bench/bench.mk
-include tests/asan/asan.mk
-include tests/fuzz/fuzz.mk

# Soak (not in `make test`): 1,000,000 GetTask calls with faults; SOAK_ARGS="--calls 100000".
.PHONY: soak
soak: all
	BUILD=$(BUILD) $(PYTHON) tests/soak/soak.py $(SOAK_ARGS)
