# bench/bench.mk - `make bench`: the benchmark's three programs and the driver.
# Included from the top-level Makefile; not part of `make test`.
#
#   make bench                      build, run every figure, write docs/PERFORMANCE.md
#   make bench BENCH_ARGS=--quick   one repetition, shorter runs (a smoke run)

BENCH_BINS := $(BUILD)/bench/noop_server $(BUILD)/bench/loadgen $(BUILD)/bench/curl_client
BENCH_GRPC_LIBS = $(shell $(PKG_CONFIG) --libs grpc libprotobuf-c 2>/dev/null)
BENCH_CURL_LIBS = $(shell $(PKG_CONFIG) --libs libcurl libcjson 2>/dev/null)
BENCH_ARGS ?=

.PHONY: bench bench-build
.SECONDARY: $(BENCH_BINS:=.o)

bench: deps deps-bench
	@$(MAKE) --no-print-directory all bench-build
	@BUILD=$(BUILD) PYTHON=$(PYTHON) bench/run.sh $(BENCH_ARGS)

bench-build: $(BENCH_BINS)

$(BUILD)/bench/%.o: bench/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROJECT_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/bench/noop_server: $(BUILD)/bench/noop_server.o $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_GRPC_LIBS) -lpthread

$(BUILD)/bench/loadgen: $(BUILD)/bench/loadgen.o $(BUILD)/daemon/structjson.o $(GEN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_GRPC_LIBS) $(PURE_LIBS) -lpthread

$(BUILD)/bench/curl_client: $(BUILD)/bench/curl_client.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_CURL_LIBS)

-include $(BENCH_BINS:=.d)
