#!/bin/sh
# test: cpython          long -- "$LIB"
# CPython's own regression tests (Debian's libpython3.11-testsuite) under
# ebbmalloc.  Every run sets PYTHONMALLOC=malloc, so every object the interpreter creates
# comes from malloc (not from pymalloc's arenas) and the allocator sees the
# interpreter's whole load.  The selection runs with libebbmalloc.so
# preloaded, in the default and in the secure mode; a module that fails
# there is run again under glibc, and counts against ebbmalloc unless it
# fails under glibc too (this machine lacks a resource it wants).
#
# Usage: sh tests/scripts/test_cpython.sh path/to/libebbmalloc.so [subset|all|MODULE...]
#   subset (default): the modules listed below, about 5 minutes on 2 cores;
#   all: every module of the test suite; or the modules named.
# Prints "N passed, N failed" (one check per mode: the run was served by
# ebbmalloc and no module failed that passed under glibc).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
LIB=$1
shift
SET=${*:-subset}
[ -f "$LIB" ] || { echo "test_cpython: no library '$LIB'"; echo "0 passed, 1 failed"; exit 1; }
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
PY=/usr/bin/python3
VER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Debian's libpython3-stdlib ships test.libregrtest without the test modules.
if ! "$PY" -c 'import test.libregrtest, test.test_dict' 2> /dev/null; then
    echo "test_cpython: CPython's test suite is missing (Debian: libpython$VER-testsuite)"
    echo "0 passed, 1 failed"
    exit 1
fi
JOBS=$(($(nproc 2> /dev/null || echo 1) + 1))
[ "$JOBS" -ge 2 ] || JOBS=2

# The subset: the modules that work the allocator hardest (containers,
# strings, numbers, pickling, compression, the compiler, threads, fork and
# exec, ctypes, sqlite, XML, asyncio) and a broad sample of the rest;
# test_asyncio, the longest, first, so that the others run beside it.
# Left out: modules that need the network or a display, and the slowest
# (test_concurrent_futures, test_multiprocessing_*, test_io, which take
# minutes each and run in "all").
SUBSET="test_asyncio test_array test_ast test_augassign test_base64 test_bigmem test_binascii
test_bisect test_bool test_builtin test_bytes test_bz2 test_call test_capi
test_class test_codecs test_collections test_compile test_complex test_configparser
test_contains test_context test_contextlib test_copy test_csv test_ctypes
test_dataclasses test_datetime test_decimal test_defaultdict test_deque
test_descr test_dict test_dictviews test_difflib test_enum test_enumerate
test_exceptions test_float test_format test_fractions test_frozen test_fstring
test_functools test_gc test_generators test_genexps test_grammar test_hash
test_hashlib test_heapq test_hmac test_html test_index test_inspect test_int
test_iter test_itertools test_json test_keywordonlyarg test_list test_long
test_lzma test_marshal test_math test_memoryview test_mmap test_operator
test_ordered_dict test_os test_pickle test_pow test_queue test_random test_range
test_re test_scope test_set test_shutil test_signal test_slice test_sort
test_sqlite3 test_statistics test_string test_string_literals test_struct
test_subprocess test_sys test_tarfile test_tempfile test_textwrap test_thread
test_threading test_threading_local test_tokenize test_traceback test_tuple
test_typing test_unicode test_unicodedata test_userdict test_userlist
test_userstring test_uuid test_weakref test_weakset test_with test_xml_etree
test_zipfile test_zlib"
if [ "$SET" = all ]; then
    SELECT=""
elif [ "$SET" != subset ]; then
    SELECT=$SET
else
    # Only the modules this Python has.
    SELECT=""
    for m in $SUBSET; do
        if [ -e "/usr/lib/python$VER/test/$m.py" ] || [ -d "/usr/lib/python$VER/test/$m" ]; then
            SELECT="$SELECT $m"
        fi
    done
fi

# A partial test suite would make a pass that tests nothing.
SELECTED=$(echo $SELECT | wc -w)
if [ "$SET" = subset ] && [ "$SELECTED" -lt 100 ]; then
    echo "test_cpython: only $SELECTED of the subset's modules are installed"
    echo "0 passed, 1 failed"
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# regrtest NAME MODULES [VAR=VALUE...]: runs the modules (all of the test
# suite when MODULES is empty); leaves the names of the modules that failed
# (after one re-run, so a test that failed once by timing does not count)
# in $WORK/NAME.failed, the log in $WORK/NAME.log.
regrtest() {
    name=$1
    modules=$2
    shift 2
    start=$(date +%s)
    # shellcheck disable=SC2086
    (cd "$WORK" && env PYTHONMALLOC=malloc "$@" "$PY" -m test -j"$JOBS" --timeout 600 -w \
        --tempdir "$WORK/tmp.$name" $modules) > "$WORK/$name.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    # regrtest's summary names the failures (after the re-run) under
    # "N tests failed again:", or "N tests failed:" when nothing was re-run;
    # a re-run that passed them all ends "FAILURE then SUCCESS".
    awk '/tests? failed again:$/ { again = 1; list = ""; grab = 1; next }
         /tests? failed:$/ && !again { list = ""; grab = 1; next }
         /Tests result: .* then SUCCESS/ { rerun_ok = 1 }
         grab && /^    / { list = list " " $0; next }
         { grab = 0 }
         END { if (rerun_ok) list = ""
               n = split(list, a, " "); for (i = 1; i <= n; i++) print a[i] }' \
        "$WORK/$name.log" > "$WORK/$name.failed"
    # Those that passed only when re-run are named, with what the first run
    # said of them, so that a flaky failure stays in sight.
    rerun=$(awk '/re-run tests?:$/ { grab = 1; next } grab && /^    / { print; next } { grab = 0 }' \
        "$WORK/$name.log" | tr -s ' \n' '  ')
    if grep -q 'Tests result: .* then SUCCESS' "$WORK/$name.log" && [ -n "$rerun" ]; then
        echo "cpython $name: failed once, passed when re-run (not counted):$rerun"
        for m in $rerun; do
            grep -E "[] ]$m (failed|crashed)|^(FAIL|ERROR): .*\\.$m\\." "$WORK/$name.log" | head -n 5 | sed 's/^/    | /'
        done
    fi
    # A crash, a deadlock or a timeout leaves no summary: count it.
    if ! grep -q '^Tests result:\|^== Tests result:' "$WORK/$name.log"; then
        echo "(no result)" >> "$WORK/$name.failed"
    fi
    sort -u -o "$WORK/$name.failed" "$WORK/$name.failed"
    ran=$(sed -n 's/^\(All \)\{0,1\}\([0-9][0-9]*\) tests\{0,1\} OK\.$/\2/p' "$WORK/$name.log" | tail -n 1)
    echo "cpython $name: ${ran:-0} modules OK, $(wc -l < "$WORK/$name.failed") failed, exit status $rc, $secs s"
}

for mode in default secure; do
    case $mode in
        default) settings="" ;;
        secure) settings="EBB_SECURE=1" ;;
    esac
    # The allocator must really serve the interpreter: the library is
    # mapped in it.
    # shellcheck disable=SC2086
    if ! env LD_PRELOAD="$LIB" $settings PYTHONMALLOC=malloc "$PY" -c \
        'import sys; sys.exit(0 if "libebbmalloc" in open("/proc/self/maps").read() else 1)'; then
        bad "cpython $mode: libebbmalloc.so is not loaded in the interpreter"
        continue
    fi
    # shellcheck disable=SC2086
    regrtest "$mode" "$SELECT" LD_PRELOAD="$LIB" $settings
    new=
    if [ -s "$WORK/$mode.failed" ]; then
        # The same modules under glibc: what fails there too does not count.
        # A run that left no summary is compared with the whole selection.
        again=$(grep -v '^(no result)$' "$WORK/$mode.failed" | tr '\n' ' ')
        grep -q '^(no result)$' "$WORK/$mode.failed" && again=$SELECT
        [ -n "$again" ] || again=$SELECT
        regrtest "glibc-$mode" "$again"
        new=$(comm -23 "$WORK/$mode.failed" "$WORK/glibc-$mode.failed")
        known=$(comm -12 "$WORK/$mode.failed" "$WORK/glibc-$mode.failed" | tr '\n' ' ')
        [ -n "$known" ] && echo "cpython $mode: failing under glibc too (not counted): $known"
    fi
    if [ -n "$new" ]; then
        bad "cpython $mode: failed under ebbmalloc, passed under glibc: $(echo "$new" | tr '\n' ' ')"
        grep -B2 -A25 '^\(FAIL\|ERROR\):\|Fatal Python error\|ebbmalloc: error' "$WORK/$mode.log" | head -n 60
        tail -n 20 "$WORK/$mode.log"
    else
        ok
    fi
done
finish
