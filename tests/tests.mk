# Tests (included by the Makefile).
#
# Four ways a test program meets the allocator:
#   prefixed  links the allocator built without the C names (EBB_OVERRIDE=0):
#             it calls ebb_* while the C library's malloc serves everything
#             else, so counts are exact.  The sanitizer builds are of this
#             kind: UBSan and TSan bring their own malloc.
#   preload   plain programs run with LD_PRELOAD=build/libebbmalloc.so.
#   static    programs linked with build/libebbmalloc.a.
#   unit      tests of internal structures, linked with the objects.
# Each kind has its directory: tests/prefixed/, tests/preload/,
# tests/static/, tests/unit/; and tests/faults/ (the fault-injection build),
# tests/debug/ (the debug build's validators), tests/scripts/ (shell tests).

TBUILD       := $(BUILD)/tests
TEST_CFLAGS  := -std=gnu11 -O1 -g -pthread -Wall -Wextra -Werror -Iinclude -Itests
TEST_CXXFLAGS := -std=c++17 -O1 -g -pthread -Wall -Wextra -Werror -Iinclude -Itests

PREFIXED_TESTS := test_api test_threads test_oom test_sample
PRELOAD_TESTS  := test_override test_early test_misuse test_brk test_reclaim
UNIT_TESTS     := test_sizeclass test_internal
DEBUG_TESTS    := test_api test_threads stress
DEBUG_CFLAGS   := -O1 -DEBB_DEBUG=1

# ---- the allocator built without the C names ----------------------------------
$(BUILD)/obj-prefixed/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(LIB_CFLAGS) -DEBB_OVERRIDE=0 -c $< -o $@

$(BUILD)/libebbmalloc-prefixed.a: $(patsubst src/%.c,$(BUILD)/obj-prefixed/%.o,$(SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

$(TBUILD)/%: tests/prefixed/%.c tests/check.h include/ebbmalloc.h $(BUILD)/libebbmalloc-prefixed.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-prefixed.a

# Preloaded and C++ programs link nothing of ours.
# They include ebbmalloc.h (struct ebb_stats, read through dlsym).
$(addprefix $(TBUILD)/,$(PRELOAD_TESTS)): $(TBUILD)/%: tests/preload/%.c tests/check.h tests/steps.h include/ebbmalloc.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ -ldl

# The profiler's test names its functions with dladdr: -rdynamic.
$(TBUILD)/test_profile: tests/preload/test_profile.c tests/check.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -rdynamic $< -o $@ -ldl

# Sized delete is declared only with -fsized-deallocation under clang.
$(TBUILD)/test_cxx: tests/preload/test_cxx.cpp tests/check.h include/ebbmalloc.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $@")
	$(Q)$(CXX) $(TEST_CXXFLAGS) -fsized-deallocation $< -o $@ -ldl

# Static linking: fully static, and a dynamic program with the archive.
$(TBUILD)/test_static: tests/static/test_static.c tests/check.h $(BUILD)/libebbmalloc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -static $< -o $@ $(BUILD)/libebbmalloc.a

$(TBUILD)/test_static_dyn: tests/static/test_static.c tests/check.h $(BUILD)/libebbmalloc.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc.a

# Unit tests see the internals.
$(addprefix $(TBUILD)/,$(UNIT_TESTS)): $(TBUILD)/%: tests/unit/%.c tests/check.h $(BUILD)/libebbmalloc-prefixed.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -Isrc $< -o $@ $(BUILD)/libebbmalloc-prefixed.a

# A plain program for the ebb tests.
$(TBUILD)/phases: tests/programs/phases.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@

TEST_PROGRAMS := $(addprefix $(TBUILD)/,$(PREFIXED_TESTS) $(PRELOAD_TESTS) $(UNIT_TESTS) \
                   test_cxx test_static test_static_dyn phases test_faults stress test_profile) $(BUILD)/fuzz/fuzz_alloc \
                 $(BUILD)/libebbmalloc-debug.so $(addprefix $(TBUILD)/debug/,$(DEBUG_TESTS) test_debug)

# The packages the tests need are installed first (tools/deps.sh).
test:
	@sh tools/deps.sh test
	@$(MAKE) --no-print-directory test-run

test-run: all $(TEST_PROGRAMS) check-layers
	@sh tests/run.sh $(BUILD)

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

$(TBUILD)/test_faults: tests/faults/test_faults.c tests/check.h include/ebbmalloc.h $(BUILD)/libebbmalloc-fault.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-fault.a

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

$(BUILD)/fuzz/fuzz_alloc: tests/fuzz/fuzz_alloc.c include/ebbmalloc.h $(patsubst src/%.c,$(BUILD)/obj-fuzz/%.o,$(SRCS))
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

$(TBUILD)/stress: tests/prefixed/stress.c tests/check.h include/ebbmalloc.h $(BUILD)/libebbmalloc-prefixed.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) -O2 $< -o $@ $(BUILD)/libebbmalloc-prefixed.a

# ---- the debug build: invariants checked (EBB_DEBUG, internal.h) ------------------
# make debug: build/libebbmalloc-debug.so (to preload) and the API, thread and
# stress tests linked with the debug build, which make test runs.

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

$(TBUILD)/debug/%: tests/prefixed/%.c tests/check.h include/ebbmalloc.h $(BUILD)/libebbmalloc-debug.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-debug.a

# The validators themselves, against structures broken on purpose.
$(TBUILD)/debug/test_debug: tests/debug/test_debug.c tests/check.h $(HDRS) $(BUILD)/libebbmalloc-debug.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -Isrc $(DEBUG_CFLAGS) $< -o $@ $(BUILD)/libebbmalloc-debug.a

debug: $(BUILD)/libebbmalloc-debug.so $(addprefix $(TBUILD)/debug/,$(DEBUG_TESTS) test_debug)

# ---- sanitizer builds ------------------------------------------------------------
SAN_TESTS := test_api test_threads test_sample stress

define san_variant
$(BUILD)/obj-$(1)/%.o: src/%.c $$(HDRS) Makefile
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$@")
	$$(Q)$$(SAN_CC) $$(LIB_CFLAGS) -O1 -fno-omit-frame-pointer $(2) -DEBB_OVERRIDE=0 -c $$< -o $$@

$(BUILD)/libebbmalloc-$(1).a: $$(patsubst src/%.c,$(BUILD)/obj-$(1)/%.o,$$(SRCS))
	@rm -f $$@
	$(Q)ar rcs $$@ $$^

$(TBUILD)/$(1)/%: tests/prefixed/%.c tests/check.h include/ebbmalloc.h $(BUILD)/libebbmalloc-$(1).a
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

test-sanitize-run: $(addprefix $(TBUILD)/ubsan/,$(SAN_TESTS)) $(addprefix $(TBUILD)/tsan/,$(SAN_TESTS))
	@sh tests/run_sanitize.sh $(BUILD) $(SAN_TESTS)

# ---- CPython's regression tests under the allocator ---------------------------------
# make test-cpython [CPYTHON_TESTS=all]: a large subset by default (part of make test).
CPYTHON_TESTS ?= subset
test-cpython: lib
	@sh tools/deps.sh test
	@sh tests/scripts/test_cpython.sh $(BUILD)/libebbmalloc.so $(CPYTHON_TESTS)

# ---- valgrind ------------------------------------------------------------------------
# The prefixed tests under memcheck: the allocator's own reads and writes
# (uninitialised values in its decisions, accesses outside its mappings).
# test_threads is left out: memcheck runs threads one at a time, and its
# thousands of threads take over ten minutes.
VALGRIND_TESTS := test_api test_internal test_sizeclass
test-valgrind: $(addprefix $(TBUILD)/,$(VALGRIND_TESTS))
	@sh tools/deps.sh test
	@sh tests/run_valgrind.sh $(TBUILD) $(VALGRIND_TESTS)
