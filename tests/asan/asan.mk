# tests/asan/asan.mk - the whole suite against AddressSanitizer + UBSan builds; included by the
# top-level Makefile.
#
#   make test-asan    builds the daemon and every unit test into $(ASAN_BUILD)/ with
#                     -fsanitize=address,undefined, then runs the unit and end-to-end suites
#                     against them (packaging checks are skipped: they test the same files as
#                     `make test`). Any sanitizer report, a leak at exit included, fails.
#
# ASAN_CC picks the compiler (default clang; gcc works too). The user's CFLAGS/LDFLAGS are kept.

ASAN_BUILD ?= build-asan
ASAN_CC ?= clang
ASAN_TIMEOUT_SCALE ?= 3
ASAN_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
# exitcode=86 tells a sanitizer's exit from the daemon's own failures; LeakSanitizer runs at
# every exit (detect_leaks=1). UBSan stops at the first report, like ASan. Not
# strict_string_checks: it flags valid strndup(buf, n) of n unterminated bytes (OpenSSL BIO text).
ASAN_OPTIONS_RUN := detect_leaks=1:exitcode=86:check_initialization_order=1
ASAN_OPTIONS_RUN := $(ASAN_OPTIONS_RUN):detect_stack_use_after_return=1
ASAN_RUN_ENV := ASAN_OPTIONS=$(ASAN_OPTIONS_RUN) \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/asan/lsan.supp:print_suppressions=0

.PHONY: test-asan asan-unit-bins clean-asan

# Built by a sub-make with BUILD=$(ASAN_BUILD), so that every path in the Makefile follows.
asan-unit-bins: $(UNIT_BINS)

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=$(ASAN_CC) \
		CFLAGS="$(ASAN_SANITIZE) $(CFLAGS)" LDFLAGS="$(ASAN_SANITIZE) $(LDFLAGS)" \
		all asan-unit-bins
	@rc=0; export $(ASAN_RUN_ENV) SANITIZED=1 TIMEOUT_SCALE=$(ASAN_TIMEOUT_SCALE) \
		E2E_TIMEOUT=1500 BUILD=$(ASAN_BUILD) PYTHON=$(PYTHON); \
	tests/run-all.sh unit || rc=1; \
	tests/run-all.sh e2e || rc=1; \
	if [ $$rc -ne 0 ]; then echo "test-asan: FAILED"; else echo "test-asan: passed"; fi; \
	exit $$rc

clean-asan:
	rm -rf $(ASAN_BUILD)
