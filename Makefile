# cdrecon — one Makefile. `make` builds build/cdrecon; `make test` runs every
# default test; see `make help` for the longer tiers.
CC      ?= cc
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wno-unused-parameter -Iinclude -Isrc -pthread $(EXTRA_CFLAGS)
LDFLAGS += -pthread $(EXTRA_LDFLAGS)
LDLIBS  += -lsqlite3 -lcsv -lz -lm
BUILD   ?= build

LIB_SRC  := $(sort $(wildcard src/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
HEADERS  := $(wildcard include/cdrecon/*.h include/*.h src/*.h src/cli/*.h tests/unit/*.h)

.PHONY: all lib tools test unit cli-test deps example bench clean help asan ubsan valgrind fuzz
all: $(BUILD)/cdrecon tools

lib: $(BUILD)/libcdrecon.a
tools: $(TOOL_BIN)

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libcdrecon.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cdrecon: $(CLI_OBJ) $(BUILD)/libcdrecon.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcdrecon.a $(LDLIBS)

$(BUILD)/tools/%: tools/%.c $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcdrecon.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcdrecon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcdrecon.a -lcmocka $(LDLIBS)

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
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address -fno-omit-frame-pointer" \
	    EXTRA_LDFLAGS="-fsanitize=address" test
ubsan:
	$(MAKE) BUILD=build-ubsan OPT="-O1 -g -fsanitize=undefined -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=undefined" test

bench: all
	@sh tools/bench.sh $(BUILD)

clean:
	rm -rf build build-asan build-ubsan build-fuzz

help:
	@echo "make            build build/cdrecon and tools"
	@echo "make test       install missing packages, build, run every default test"
	@echo "make example    run the nightly job on the bundled example month"
	@echo "make bench      fixed-seed benchmarks (ratios against zcat); see docs/performance.md"
	@echo "make asan|ubsan the test suite under AddressSanitizer / UBSan"
