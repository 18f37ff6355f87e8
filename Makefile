# ebbmalloc — a plain Makefile.  Everything it builds goes to build/.
#
#   make               build/libebbmalloc.so, build/libebbmalloc.a
#   make run           build, then run a real program under the allocator
#   make check         the fast tier, under a minute: run it before every commit
#   make test          the whole test suite (prints "N passed, N failed")
#   make test-sanitize the tests built with UBSan and with TSan
#   make debug         build/libebbmalloc-debug.so: internal invariants checked
#   make bench         benchmarks against glibc, jemalloc, tcmalloc, mimalloc
#   make bench-modes   the cost of each safety mode (bench/results/modes.md)
#   make stress, make fuzz, make test-cpython   (see docs/TESTING.md)
#   make install PREFIX=/usr/local DESTDIR=

CC      ?= cc
CXX     ?= c++
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include

# V=1 shows the commands.
Q := $(if $(V),,@)

VERSION      := 0.1.0
SONAME       := libebbmalloc.so.0
BUILD        := build

WARNINGS := -Wall -Wextra -Werror -Wmissing-prototypes -Wundef -Wshadow -Wstrict-prototypes \
            -Wpointer-arith -Wvla
# The allocator must not have its own calls rewritten into malloc-family
# calls (e.g. malloc+memset into calloc), nor call through the PLT; a C++
# exception (operator new's std::bad_alloc) unwinds through its frames.
LIB_CFLAGS := -std=gnu11 -O2 -g -fPIC -pthread -fvisibility=hidden -fno-plt -fasynchronous-unwind-tables \
              -fno-semantic-interposition -ftls-model=initial-exec \
              -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free \
              $(WARNINGS) -Iinclude $(EXTRA_CFLAGS)

SRCS := $(addprefix src/,os.c source.c segment.c account.c arena.c page.c heap.c huge.c limits.c reclaim.c service.c \
          ownmap.c safety.c secure.c guard.c sample.c fault.c profile.c unwind.c publish.c alloc.c sizeclass.c stats.c options.c report.c init.c)
HDRS := $(wildcard src/*.h) include/ebbmalloc.h
OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))

.PHONY: all lib run debug check test test-run tests-build test-sanitize test-sanitize-run test-cpython test-valgrind stress fuzz bench bench-quick bench-modes bench-instr \
        install uninstall clean check-layers

all: lib $(BUILD)/ebb
lib: $(BUILD)/libebbmalloc.so $(BUILD)/libebbmalloc.a

# The ebb command: a plain program (it runs on the C library's malloc).
EBB_SRCS := $(addprefix tools/,ebb.c run.c text.c csv.c html.c profile.c pprof.c)
EBB_HDRS := tools/ebb.h src/publish.h include/ebbmalloc.h
$(BUILD)/ebb: $(EBB_SRCS) $(EBB_HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=gnu11 -O2 -g $(WARNINGS) -Iinclude -DEBB_LIBDIR='"$(LIBDIR)"' $(EBB_SRCS) -o $@

$(BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(LIB_CFLAGS) -DEBB_OVERRIDE=1 -c $< -o $@

$(BUILD)/libebbmalloc.so: $(OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -pthread -Wl,-soname,$(SONAME) -Wl,-z,now -Wl,-z,relro -o $@ $(OBJS)

$(BUILD)/libebbmalloc.a: $(OBJS)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $(OBJS)

# ---- the main job -----------------------------------------------------------
run:
	@sh tools/deps.sh run
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

# ---- tests ----------------------------------------------------------------------
include tests/tests.mk

# ---- benchmarks -------------------------------------------------------------------
bench: lib
	@sh tools/deps.sh bench
	@sh bench/run.sh

bench-quick: lib
	@sh tools/deps.sh bench
	@sh bench/run.sh --quick

# The safety modes' cost, as ratios to the default mode (quick sizes).
bench-modes: lib
	@sh tools/deps.sh bench
	@sh bench/run.sh --modes --quick

# Instructions per small malloc+free pair, counted by callgrind.
bench-instr: lib
	@sh tools/deps.sh bench
	@sh bench/instr.sh

# ---- install ------------------------------------------------------------------------
MANDIR ?= $(PREFIX)/share/man
BINDIR ?= $(PREFIX)/bin

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 755 $(BUILD)/ebb $(DESTDIR)$(BINDIR)/ebb
	install -m 644 docs/ebb.1 $(DESTDIR)$(MANDIR)/man1/ebb.1
	install -m 644 docs/ebbmalloc.3 $(DESTDIR)$(MANDIR)/man3/ebbmalloc.3
	install -m 755 $(BUILD)/libebbmalloc.so $(DESTDIR)$(LIBDIR)/libebbmalloc.so.$(VERSION)
	ln -sf libebbmalloc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libebbmalloc.so
	install -m 644 $(BUILD)/libebbmalloc.a $(DESTDIR)$(LIBDIR)/libebbmalloc.a
	install -m 644 include/ebbmalloc.h $(DESTDIR)$(INCDIR)/ebbmalloc.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' ebbmalloc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ebbmalloc.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ebb $(DESTDIR)$(MANDIR)/man1/ebb.1 $(DESTDIR)$(MANDIR)/man3/ebbmalloc.3
	rm -f $(DESTDIR)$(LIBDIR)/libebbmalloc.so* $(DESTDIR)$(LIBDIR)/libebbmalloc.a \
	      $(DESTDIR)$(INCDIR)/ebbmalloc.h $(DESTDIR)$(LIBDIR)/pkgconfig/ebbmalloc.pc

clean:
	rm -rf $(BUILD)
