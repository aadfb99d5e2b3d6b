# tests/fuzz/fuzz.mk - libFuzzer targets; included by the top-level Makefile.
#
#   make fuzz-build   build every target into $(FUZZ_BUILD)/ (clang, libFuzzer + ASan + UBSan)
#   make fuzz-smoke   run each target FUZZ_SMOKE_SECONDS (default 30) on a throw-away copy of its
#                     seeds (tests/fuzz/corpus/<target>/ is never written); fails on any crash
#   make fuzz         run each target FUZZ_SECONDS (default 600) on $(FUZZ_BUILD)/corpus/<target>/,
#                     which starts from the seeds and keeps growing between runs
#
# FUZZ_TARGETS=name... picks targets, FUZZ_JOBS runs that many at once (default: one per CPU),
# FUZZ_ARGS adds libFuzzer flags. Crashes land in $(FUZZ_BUILD)/artifacts/<target>/; reproduce
# one with `$(FUZZ_BUILD)/fuzz_<target> <file>`. Everything builds with its own flags into
# $(FUZZ_BUILD)/, apart from $(BUILD)/.

FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_ARGS ?=

FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
# Code under test gets coverage instrumentation only; -fsanitize=fuzzer (libFuzzer's main) is
# for the link.
FUZZ_CFLAGS := -std=gnu11 -O1 -g $(WARN) -D_GNU_SOURCE -DFDC_VERSION='"$(VERSION)"' \
	-I$(FUZZ_BUILD)/gen -Idaemon -MMD -MP $(FUZZ_SANITIZE) -fsanitize=fuzzer-no-link
FUZZ_GEN_CFLAGS := -std=gnu11 -O1 -g -Wall -Werror -I$(FUZZ_BUILD)/gen $(FUZZ_SANITIZE) \
	-fsanitize=fuzzer-no-link

# Each target links only the pure modules it exercises (and what they call). The request targets
# go through task_request, the handlers' own checks, with a real config.
FUZZ_MODULES_task_request := task_request pbdepth structjson spec idempotency resmeta \
	k8s_secret config errmsg tls_files log_page run_output phase secret
FUZZ_MODULES_create_request := $(FUZZ_MODULES_task_request)
FUZZ_MODULES_get_request := $(FUZZ_MODULES_task_request)
FUZZ_MODULES_delete_request := $(FUZZ_MODULES_task_request)
FUZZ_MODULES_struct_json := structjson
FUZZ_MODULES_run_phase := dbx_response phase errmsg run_output run_info log_page
FUZZ_MODULES_resmeta := resmeta k8s_secret errmsg secret
FUZZ_MODULES_config := config resmeta k8s_secret structjson errmsg tls_files secret
FUZZ_MODULES_template_json := template_json structjson errmsg
FUZZ_MODULES_credential_answers := k8s_secret oauth_token errmsg secret
FUZZ_MODULES_pb_strings := pbdepth errmsg
FUZZ_ALL := create_request get_request delete_request struct_json run_phase resmeta config \
	template_json credential_answers pb_strings
FUZZ_TARGETS ?= $(FUZZ_ALL)

FUZZ_GEN_C := $(patsubst %,$(FUZZ_BUILD)/gen/%.pb-c.c,$(PROTO_NAMES))
FUZZ_GEN_H := $(FUZZ_GEN_C:.c=.h)
FUZZ_GEN_OBJS := $(FUZZ_GEN_C:.c=.o)
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_DEPS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%.d,$(FUZZ_ALL)) \
	$(patsubst %,$(FUZZ_BUILD)/daemon/%.d,$(sort $(foreach t,$(FUZZ_ALL),$(FUZZ_MODULES_$(t)))))

.PHONY: fuzz-build fuzz-smoke fuzz clean-fuzz
.SECONDARY: $(FUZZ_GEN_C) $(FUZZ_GEN_H)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/gen/google/protobuf/%.pb-c.c: $(PROTO_SYS_DIR)/google/protobuf/%.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(FUZZ_BUILD)/gen -I$(PROTO_SYS_DIR) google/protobuf/$*.proto

$(FUZZ_BUILD)/gen/%.pb-c.c: proto/%.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(FUZZ_BUILD)/gen -Iproto -I$(PROTO_SYS_DIR) $<

$(FUZZ_BUILD)/gen/%.pb-c.h: $(FUZZ_BUILD)/gen/%.pb-c.c ;

$(FUZZ_BUILD)/gen/%.pb-c.o: $(FUZZ_BUILD)/gen/%.pb-c.c | $(FUZZ_GEN_H)
	$(call msg,CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_GEN_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/daemon/%.o: daemon/%.c | $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%.o: tests/fuzz/fuzz_%.c | $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# One link rule per target, each with its own module list.
define fuzz_link_rule
$(FUZZ_BUILD)/fuzz_$(1): $(FUZZ_BUILD)/fuzz_$(1).o \
		$(patsubst %,$(FUZZ_BUILD)/daemon/%.o,$(FUZZ_MODULES_$(1))) $(FUZZ_GEN_OBJS)
	$$(call msg,LINK,$$@)
	$$(Q)$$(FUZZ_CC) $$(FUZZ_SANITIZE) -fsanitize=fuzzer -o $$@ $$^ $$(PURE_LIBS)
endef
$(foreach t,$(FUZZ_ALL),$(eval $(call fuzz_link_rule,$(t))))

fuzz-smoke: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_ARGS="$(FUZZ_ARGS)" \
		tests/fuzz/run.sh smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_ARGS="$(FUZZ_ARGS)" \
		tests/fuzz/run.sh long $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean-fuzz:
	rm -rf $(FUZZ_BUILD)

-include $(FUZZ_DEPS)
