# Tests (included by the Makefile).
#
# A test is a file, and adding one is adding a file: the directory it lives
# in says how it is built (below) and its "test:" lines say how it runs
# (tests/lib.sh has the syntax; tests/run.sh finds them, as do the lists
# of programs here).  Four ways a test program meets the allocator:
#   tests/unit/      tests of internal structures (-Isrc), linked with the
#                    allocator built without the C names: build/tests/NAME
#   tests/prefixed/  that allocator (EBB_OVERRIDE=0, libebbmalloc-prefixed.a):
#                    the test calls ebb_* while the C library's malloc serves
#                    everything else, so counts are exact: build/tests/NAME;
#                    also, when its lines ask, build/tests/debug/NAME (the
#                    debug build) and build/tests/{ubsan,tsan}/NAME (the
#                    sanitizers bring their own malloc)
#   tests/preload/   plain programs (C or C++) run with
#                    LD_PRELOAD=build/libebbmalloc.so: build/tests/NAME
#   tests/static/    linked with build/libebbmalloc.a: build/tests/NAME
#                    fully static, build/tests/NAME_dyn a dynamic program
# and the special builds:
#   tests/faults/    the allocator whose system calls can be made to fail
#   tests/debug/     the debug build, internals seen: build/tests/debug/NAME
#   tests/fuzz/      libFuzzer targets (clang): build/fuzz/NAME
#   tests/scripts/   shell tests (not built)
#   tests/programs/  programs the tests run (build/tests/phases), not tests
# A line "build: FLAGS" in a test adds compiler flags to build/tests/NAME.

TBUILD       := $(BUILD)/tests
TEST_CFLAGS  := -std=gnu11 -O1 -g -pthread -Wall -Wextra -Werror -Iinclude -Itests
TEST_CXXFLAGS := -std=c++17 -O1 -g -pthread -Wall -Wextra -Werror -Iinclude -Itests
TEST_DEPS    := tests/check.h tests/steps.h include/ebbmalloc.h
DEBUG_CFLAGS := -O1 -DEBB_DEBUG=1

# The flags of a test's "build:" line.
test_flags = $(shell sed -n -e 's/[[:space:]]*\*\/[[:space:]]*$$//' -e 's/^[[:space:]/*\#]*build:[[:space:]]*//p' $(1))
# The programs a suite needs (full, check, sanitize, valgrind, debug), from
# the tests' own lines; read only when a target needs them (.SECONDEXPANSION).
test_targets = $(shell sh tests/run.sh --targets $(1) $(BUILD))

# ---- the allocator built without the C names ----------------------------------
$(BUILD)/obj-prefixed/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(LIB_CFLAGS) -DEBB_OVERRIDE=0 -c $< -o $@

$(BUILD)/libebbmalloc-prefixed.a: $(patsubst src/%.c,$(BUILD)/obj-prefixed/%.o,$(SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

$(TBUILD)/%: tests/prefixed/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc-prefixed.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $(call test_flags,$<) $< -o $@ $(BUILD)/libebbmalloc-prefixed.a

# Unit tests see the internals.
$(TBUILD)/%: tests/unit/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc-prefixed.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -Isrc $(call test_flags,$<) $< -o $@ $(BUILD)/libebbmalloc-prefixed.a

# Preloaded and C++ programs link nothing of ours.
# They include ebbmalloc.h (struct ebb_stats, read through dlsym).
$(TBUILD)/%: tests/preload/%.c $(TEST_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $(call test_flags,$<) $< -o $@ -ldl

$(TBUILD)/%: tests/preload/%.cpp $(TEST_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $@")
	$(Q)$(CXX) $(TEST_CXXFLAGS) $(call test_flags,$<) $< -o $@ -ldl

# Static linking: fully static, and a dynamic program with the archive.
$(TBUILD)/%_dyn: tests/static/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $(call test_flags,$<) $< -o $@ $(BUILD)/libebbmalloc.a

$(TBUILD)/%: tests/static/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -static $(call test_flags,$<) $< -o $@ $(BUILD)/libebbmalloc.a

# Plain programs the tests run (the ebb tests' phases).
$(TBUILD)/%: tests/programs/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@

.SECONDEXPANSION:
TEST_PROGRAMS = $(call test_targets,full) $(TBUILD)/phases $(BUILD)/libebbmalloc-debug.so

# The packages the tests need are installed first (tools/deps.sh).
test:
	@sh tools/deps.sh test
	@$(MAKE) --no-print-directory test-run

test-run: all $$(TEST_PROGRAMS) check-layers
	@sh tests/run.sh $(BUILD)

# Every program make test runs, built and not run.
tests-build: all $$(TEST_PROGRAMS)

# The fast tier, before every commit: the runs tagged fast or check.
check: all $$(call test_targets,check)
	@sh tests/run.sh --check $(BUILD)

# The system calls stay in the os layer.
check-layers:
	@sh tests/scripts/check_layers.sh

# ---- fault injection: the allocator whose system calls can be made to fail -----------
$(BUILD)/obj-fault/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LIB_CFLAGS) -DEBB_OVERRIDE=0 -DEBB_FAULT_INJECTION=1 -c $< -o $@

$(BUILD)/libebbmalloc-fault.a: $(patsubst src/%.c,$(BUILD)/obj-fault/%.o,$(SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

$(TBUILD)/%: tests/faults/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc-fault.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $(call test_flags,$<) $< -o $@ $(BUILD)/libebbmalloc-fault.a

# ---- the fuzzer (libFuzzer; clang) ------------------------------------------------------
# make fuzz [FUZZ_SECONDS=60]: new crashes land in build/fuzz/ as crash-*; copy
# each into tests/fuzz/regressions/, which make test replays.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
# The fuzzer runs the debug build: every invariant checked (internal.h).
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,undefined -fno-sanitize-recover=undefined

$(BUILD)/obj-fuzz/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(LIB_CFLAGS) -O1 $(FUZZ_FLAGS) -DEBB_DEBUG=1 -DEBB_OVERRIDE=0 -c $< -o $@

# Kept, not intermediate files of the pattern rule below.
.SECONDARY: $(patsubst src/%.c,$(BUILD)/obj-fuzz/%.o,$(SRCS))

$(BUILD)/fuzz/%: tests/fuzz/%.c include/ebbmalloc.h $(patsubst src/%.c,$(BUILD)/obj-fuzz/%.o,$(SRCS))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(FUZZ_CC) -std=gnu11 -O1 -g -pthread -Wall -Wextra -Werror -Iinclude \
	    -fsanitize=fuzzer,undefined -fno-sanitize-recover=undefined $< $(patsubst src/%.c,$(BUILD)/obj-fuzz/%.o,$(SRCS)) -o $@

fuzz: $(BUILD)/fuzz/fuzz_alloc
	@mkdir -p $(BUILD)/fuzz/corpus
	@echo "fuzz: $(FUZZ_SECONDS) s, log in $(BUILD)/fuzz/fuzz.log"
	@$(BUILD)/fuzz/fuzz_alloc -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=20 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus tests/fuzz/regressions \
	    > $(BUILD)/fuzz/fuzz.log 2>&1; rc=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|fuzz_alloc:)' \
	        $(BUILD)/fuzz/fuzz.log; \
	    if [ $$rc -ne 0 ]; then tail -n 60 $(BUILD)/fuzz/fuzz.log; echo "fuzz: FAILED (exit $$rc)"; exit $$rc; fi

# ---- stress -------------------------------------------------------------------------
# make stress [STRESS_SECONDS=60] [STRESS_THREADS=16]; a soak: STRESS_SECONDS=3600.
STRESS_SECONDS ?= 60
STRESS_THREADS ?= 16
stress: $(TBUILD)/stress
	@$(TBUILD)/stress $(STRESS_SECONDS) $(STRESS_THREADS)

# ---- the debug build: invariants checked (EBB_DEBUG, internal.h) ------------------
# make debug: build/libebbmalloc-debug.so (to preload) and the API, thread and
# stress tests linked with the debug build (the runs tagged debug, and
# tests/debug/), which make test runs.

$(BUILD)/obj-debug/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(LIB_CFLAGS) $(DEBUG_CFLAGS) -DEBB_OVERRIDE=0 -c $< -o $@

$(BUILD)/obj-debug-so/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(LIB_CFLAGS) $(DEBUG_CFLAGS) -DEBB_OVERRIDE=1 -c $< -o $@

$(BUILD)/libebbmalloc-debug.a: $(patsubst src/%.c,$(BUILD)/obj-debug/%.o,$(SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libebbmalloc-debug.so: $(patsubst src/%.c,$(BUILD)/obj-debug-so/%.o,$(SRCS))
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -pthread -Wl,-soname,$(SONAME) -Wl,-z,now -o $@ $^

$(TBUILD)/debug/%: tests/prefixed/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc-debug.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-debug.a

# The validators themselves, against structures broken on purpose.
$(TBUILD)/debug/%: tests/debug/%.c $(TEST_DEPS) $(HDRS) $(BUILD)/libebbmalloc-debug.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -Isrc $(DEBUG_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-debug.a

debug: $(BUILD)/libebbmalloc-debug.so $$(call test_targets,debug)

# ---- sanitizer builds ------------------------------------------------------------
# The prefixed tests' runs tagged sanitize.

define san_variant
$(BUILD)/obj-$(1)/%.o: src/%.c $$(HDRS) Makefile
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$@")
	$$(Q)$$(SAN_CC) $$(LIB_CFLAGS) -O1 -fno-omit-frame-pointer $(2) -DEBB_OVERRIDE=0 -c $$< -o $$@

$(BUILD)/libebbmalloc-$(1).a: $$(patsubst src/%.c,$(BUILD)/obj-$(1)/%.o,$$(SRCS))
	@rm -f $$@
	$(Q)ar rcs $$@ $$^

$(TBUILD)/$(1)/%: tests/prefixed/%.c $(TEST_DEPS) $(BUILD)/libebbmalloc-$(1).a
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$@")
	$$(Q)$$(SAN_CC) $$(TEST_CFLAGS) -fno-omit-frame-pointer $(2) $(3) $$< -o $$@ $(BUILD)/libebbmalloc-$(1).a
endef

SAN_CC ?= clang
$(eval $(call san_variant,ubsan,-fsanitize=undefined -fno-sanitize-recover=undefined,))
$(eval $(call san_variant,tsan,-fsanitize=thread,-DEBB_TEST_NO_FORK))

test-sanitize:
	@sh tools/deps.sh test
	@$(MAKE) --no-print-directory test-sanitize-run

test-sanitize-run: $$(call test_targets,sanitize)
	@sh tests/run_sanitize.sh $(BUILD)

# ---- CPython's regression tests under the allocator ---------------------------------
# make test-cpython [CPYTHON_TESTS=all]: a large subset by default (part of make test).
CPYTHON_TESTS ?= subset
test-cpython: lib
	@sh tools/deps.sh test
	@sh tests/scripts/test_cpython.sh $(BUILD)/libebbmalloc.so $(CPYTHON_TESTS)

# ---- valgrind ------------------------------------------------------------------------
# The runs tagged valgrind (prefixed and unit tests) under memcheck: the
# allocator's own reads and writes
# (uninitialised values in its decisions, accesses outside its mappings).
# test_threads is left out: memcheck runs threads one at a time, and its
# thousands of threads take over ten minutes.
test-valgrind: $$(call test_targets,valgrind)
	@sh tools/deps.sh test
	@sh tests/run_valgrind.sh $(BUILD)
