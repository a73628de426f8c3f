# cdrecon — one Makefile. `make` builds build/cdrecon; `make test` runs every
# default test; see `make help` for the longer tiers.
CC      ?= cc
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wno-unused-parameter -pthread $(EXTRA_CFLAGS)
LDFLAGS += -pthread $(EXTRA_LDFLAGS)
LDLIBS  += -lsqlite3 -lcsv -lisal -lnettle -lz -lm
BUILD   ?= build

# The library: src/'s folders in the order of the data path (src/README.md).
# A library file includes another folder's internal header by its name
# ("state.h", "sha256.h"), so every folder is on its include path (LIB_INC)
# and no two library headers may share a name (checked below). A folder
# with no file yet is fine. src/ itself holds the engine's driver,
# engine.c, which runs group/, rate/ and reconcile/.
LIB_DIRS := src src/common src/tariff src/read src/group src/rate src/reconcile src/state \
            src/output src/report src/report/month src/cluster
LIB_INC  := -Iinclude $(LIB_DIRS:%=-I%)
# the engine's stages (src/engine.c runs them), for the weak-hash test below
ENGINE_DIRS := src/group src/rate src/reconcile
# The command line sees the public API only (include/cdrecon/): an internal
# header included from src/cli/ does not compile. INC is chosen by the source
# ($<) in each compile rule (a target-specific variable would be inherited
# by the PGO stamp that the first CLI object depends on, and so by the
# whole instrumented library).
CLI_INC  := -Iinclude
INC       = $(if $(filter src/cli/%,$<),$(CLI_INC),$(LIB_INC))
LIB_HDRS := $(notdir $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.h)))
ifneq ($(words $(LIB_HDRS)),$(words $(sort $(LIB_HDRS))))
$(error two library headers share a name: $(LIB_HDRS))
endif
LIB_SRC  := $(sort $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
HEADERS  := $(wildcard include/cdrecon/*.h include/*.h $(LIB_DIRS:%=%/*.h) src/cli/*.h tests/unit/*.h tools/*.h)

.PHONY: all lib tools test unit cli-test deps example bench clean help asan ubsan tsan valgrind fuzz
all: $(BUILD)/cdrecon tools

lib: $(BUILD)/libcdrecon.a
tools: $(TOOL_BIN)

# Profile-guided optimisation (PGO=1, the default with gcc; docs/building.md).
# The library and the CLI are first compiled instrumented into $(BUILD)/pgo,
# run on a generated training month (tools/pgo-train.sh: seed 7, not the
# bench's 42), then compiled again with the branch and call counts they
# recorded. Code the training did not reach is optimised as without a
# profile (-fprofile-partial-training). PGO=0: one plain compile. The
# sanitizer, tsan and fuzz builds set PGO=0.
PGO ?= $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null | head -n 1)),0,1)
ifeq ($(PGO),1)
PGO_DIR   := $(BUILD)/pgo
PGO_STAMP := $(PGO_DIR)/trained
PGO_USE   := -fprofile-use -fprofile-partial-training -Wno-missing-profile
PGO_GEN   := -fprofile-generate -fprofile-update=atomic

$(PGO_DIR)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) $(PGO_GEN) -c -o $@ $<
$(PGO_DIR)/libcdrecon.a: $(LIB_SRC:%.c=$(PGO_DIR)/%.o)
	@rm -f $@
	ar rcs $@ $^
$(PGO_DIR)/cdrecon: $(CLI_SRC:%.c=$(PGO_DIR)/%.o) $(PGO_DIR)/libcdrecon.a
	$(CC) $(LDFLAGS) $(PGO_GEN) -o $@ $^ $(LDLIBS)
$(PGO_DIR)/cdrgen: tools/cdrgen.c $(PGO_DIR)/libcdrecon.a $(HEADERS)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) $(PGO_GEN) -o $@ $< $(PGO_DIR)/libcdrecon.a $(LDLIBS)
$(PGO_STAMP): $(PGO_DIR)/cdrecon $(PGO_DIR)/cdrgen tools/pgo-train.sh
	@sh tools/pgo-train.sh $(PGO_DIR)
	@touch $@

# The object's profile is copied to where gcc looks for it (beside the
# object). gcc 12 says "Missing counts for called function" for static
# functions it inlined early in the instrumented compile (they have no
# counts of their own; their inlined copies do). The note has no -W option:
# it is filtered out, every other diagnostic is shown.
$(BUILD)/src/%.o: src/%.c $(HEADERS) $(PGO_STAMP)
	@mkdir -p $(dir $@)
	@cp $(PGO_DIR)/src/$*.gcda $(BUILD)/src/$*.gcda 2>/dev/null || rm -f $(BUILD)/src/$*.gcda
	@echo '$(CC) $(CFLAGS) $(INC) $(PGO_USE) -c -o $@ $<'
	@$(CC) $(CFLAGS) $(INC) $(PGO_USE) -c -o $@ $< 2>$@.diag; s=$$?; \
	    awk '/warning: Missing counts for called function/ {skip = 1; next} \
	         skip && /^ / {next} {skip = 0; print}' $@.diag >&2; rm -f $@.diag; exit $$s
endif

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -c -o $@ $<

$(BUILD)/libcdrecon.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cdrecon: $(CLI_OBJ) $(BUILD)/libcdrecon.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcdrecon.a $(LDLIBS)

$(BUILD)/tools/%: tools/%.c $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< $(BUILD)/libcdrecon.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< $(BUILD)/libcdrecon.a -lcmocka $(LDLIBS)

# test_rate once more over an engine whose msisdn hash has 8 values, so that
# numbers sharing a hash are the rule and the code for them runs
# (CDR_TEST_WEAK_HASH in src/group/group_int.h; the real hash makes that 1 in
# 10^12). The engine's files are compiled again with it and linked before
# the library, whose own engine objects are then not used.
ENGINE_SRC := src/engine.c $(sort $(foreach d,$(ENGINE_DIRS),$(wildcard $(d)/*.c)))
WEAK_OBJ   := $(ENGINE_SRC:%.c=$(BUILD)/tests/weak/%.o)
UNIT_BIN += $(BUILD)/tests/test_rate_weak
$(BUILD)/tests/weak/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) -DCDR_TEST_WEAK_HASH -c -o $@ $<
$(BUILD)/tests/test_rate_weak: tests/unit/test_rate.c $(WEAK_OBJ) $(BUILD)/libcdrecon.a $(HEADERS)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< $(WEAK_OBJ) $(BUILD)/libcdrecon.a -lcmocka $(LDLIBS)
# test_state the same way: a segment's group index, whose reader sorts each
# chunk back into key order, then holds runs of msisdns sharing a hash.
UNIT_BIN += $(BUILD)/tests/test_state_weak
$(BUILD)/tests/test_state_weak: tests/unit/test_state.c $(WEAK_OBJ) $(BUILD)/libcdrecon.a $(HEADERS)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< $(WEAK_OBJ) $(BUILD)/libcdrecon.a -lcmocka $(LDLIBS)

# Install the Debian packages the build and the tests use (idempotent: it only
# calls apt-get when something is missing).
deps:
	@sh tools/install-deps.sh

# The whole default test suite: unit tests (cmocka) and golden CLI tests.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@BUILD=$(BUILD) sh tests/run-tests.sh

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) sh tests/run-tests.sh --unit-only

# The README's first command ends here: the nightly job on the bundled month.
example: all
	@sh tools/example.sh $(BUILD)

asan:
	$(MAKE) BUILD=build-asan PGO=0 OPT="-O1 -g -fsanitize=address -fno-omit-frame-pointer" \
	    EXTRA_LDFLAGS="-fsanitize=address" test
ubsan:
	$(MAKE) BUILD=build-ubsan PGO=0 OPT="-O1 -g -fsanitize=undefined -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=undefined" test

# ThreadSanitizer over the threaded commands (tests/reliability/tsan.sh).
tsan:
	$(MAKE) BUILD=build-tsan PGO=0 OPT="-O1 -g -fsanitize=thread" EXTRA_LDFLAGS="-fsanitize=thread" \
	    build-tsan/cdrecon build-tsan/tools/cdrgen
	@sh tests/reliability/tsan.sh build-tsan

bench: all
	@sh tools/bench.sh $(BUILD)

# The night drivers (tools/slurm/: cdrecon-slurm, cdrecon-local) on a real
# private Slurm cluster that the test starts and stops on 127.0.0.1 (needs
# root; installs slurmctld, slurmd, slurm-client, munge when missing). Not part
# of `make test`. docs/cluster.md.
.PHONY: cluster-test
cluster-test: all
	@BUILD=$(BUILD) sh tests/cluster/run.sh

# The bench month as one night over 8 shards on the same private 2-node Slurm
# cluster (root; installs and starts the daemons like cluster-test, so it is
# not part of `make bench`): wall time against one machine's run, routing
# against zcat, bytes routed per record. tools/bench-cluster.sh; docs/cluster.md.
.PHONY: bench-cluster
bench-cluster: all
	@sh tools/bench-cluster.sh $(BUILD)

# cdrecon(1), generated from the binary's own help (one source for both;
# tests/cli/t_man_page.sh fails when docs/cdrecon.1 is stale).
.PHONY: man install
man: all
	python3 tools/gen-man.py $(BUILD)/cdrecon docs/exit-codes.md >docs/cdrecon.1.tmp
	mv docs/cdrecon.1.tmp docs/cdrecon.1

PREFIX ?= /usr/local
install: all
	install -D -m 755 $(BUILD)/cdrecon $(DESTDIR)$(PREFIX)/bin/cdrecon
	install -D -m 644 docs/cdrecon.1 $(DESTDIR)$(PREFIX)/share/man/man1/cdrecon.1

clean:
	rm -rf build build-asan build-ubsan build-tsan build-fuzz

help:
	@echo "make            build build/cdrecon and tools"
	@echo "make test       install missing packages, build, run every default test"
	@echo "make example    run the nightly job on the bundled example month"
	@echo "make man        docs/cdrecon.1 from the binary's help; make install: binary and man page"
	@echo "make bench      fixed-seed benchmarks (ratios against zcat); see docs/performance.md"
	@echo "make bench-cluster  the bench month over 8 shards on a private 2-node Slurm cluster (root)"
	@echo "make asan|ubsan the test suite under AddressSanitizer / UBSan"
	@echo "make tsan       the threaded commands under ThreadSanitizer"
	@echo "make cluster-test  the Slurm night drivers on a private 2-node cluster (root)"

# ====================================================================
# Reliability (issue 6; docs/reliability.md). Fuzz targets fuzz/fuzz_*.c,
# their corpora fuzz/corpus/<target>/ and crashing inputs fuzz/crashes/.
#   make fuzz-replay   build each target with $(CC) + a replay main, replay
#                      corpus and crashes (also run by `make test`)
#   make fuzz          libFuzzer (clang) + ASan/UBSan, FUZZ_SECONDS per target;
#                      new corpus entries and crashes are kept in the tree
#   make valgrind      the whole default suite under valgrind memcheck
#   make reliability   the long tiers: full allocation-failure sweep, I/O
#                      failures on a tiny tmpfs, 60 kill -9 trials, hostile
#                      input, 1,000,000 money cases
# ====================================================================
FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_*.c))))
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
REPLAY_BIN   := $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/%)
LIBFUZZ_BIN  := $(FUZZ_TARGETS:%=build-fuzz/fuzz/%)
.PHONY: fuzz-replay fuzz-bins build-fuzz valgrind reliability rel-tools

$(BUILD)/fuzz-replay/%: fuzz/%.c fuzz/replay_main.c fuzz/fuzz_util.h $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< fuzz/replay_main.c $(BUILD)/libcdrecon.a $(LDLIBS)

# The shim is never built with sanitizers: it must be an ordinary LD_PRELOAD.
$(BUILD)/reliability/failshim.so: tests/reliability/failshim.c
	@mkdir -p $(dir $@)
	cc -shared -fPIC -O1 -g -Wall -Wextra -o $@ $< -ldl
$(BUILD)/reliability/money_driver: tests/reliability/money_driver.c $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(LDFLAGS) -o $@ $< $(BUILD)/libcdrecon.a $(LDLIBS)
rel-tools: $(REPLAY_BIN) $(BUILD)/reliability/failshim.so $(BUILD)/reliability/money_driver

fuzz-bins: $(REPLAY_BIN)
fuzz-replay: $(REPLAY_BIN)
	@for t in $(FUZZ_TARGETS); do \
	    set -- fuzz/corpus/$$t; \
	    for c in fuzz/crashes/$$t-*; do [ -f "$$c" ] && set -- "$$@" "$$c"; done; \
	    $(BUILD)/fuzz-replay/$$t "$$@" || exit 1; \
	done

# libFuzzer builds: the library compiled again with coverage + ASan + UBSan.
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
build-fuzz:
	@CDRECON_EXTRA_PKGS="clang libclang-rt-14-dev" sh tools/install-deps.sh
	$(MAKE) --no-print-directory CC=clang PGO=0 BUILD=build-fuzz OPT="$(FUZZ_FLAGS)" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" build-fuzz/libcdrecon.a $(LIBFUZZ_BIN)
build-fuzz/fuzz/%: fuzz/%.c fuzz/fuzz_util.h build-fuzz/libcdrecon.a
	@mkdir -p $(dir $@)
	clang $(CFLAGS) $(LIB_INC) -fsanitize=fuzzer,address,undefined -o $@ $< build-fuzz/libcdrecon.a $(LDLIBS)

fuzz: build-fuzz
	@mkdir -p fuzz/crashes
	@ls fuzz/crashes >build-fuzz/crashes.before
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p fuzz/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS) \
	        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	        -artifact_prefix=fuzz/crashes/$$t- fuzz/corpus/$$t 2>&1 \
	        | tee build-fuzz/$$t.log | grep -E '^(stat::|==|SUMMARY|#[0-9]+ *DONE)' ; \
	done
	@ls fuzz/crashes | grep -vxF -f build-fuzz/crashes.before | grep . \
	    && { echo "fuzz: new crashing inputs kept in fuzz/crashes (above)"; exit 1; } || echo "fuzz: no new crashes"

valgrind: all $(UNIT_BIN) rel-tools
	@sh tests/reliability/valgrind.sh $(BUILD)

reliability: all rel-tools
	@BUILD=$(BUILD) sh tests/reliability/long.sh
