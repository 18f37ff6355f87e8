#!/bin/sh
# Installs the Debian packages a make target needs, if any is missing.
# Idempotent: with everything present it only checks and exits.
# Usage: sh tools/deps.sh run|test|bench
set -e
need=""
want() { # command package
    command -v "$1" > /dev/null 2>&1 || need="$need $2"
}
want_file() { # path package
    [ -e "$1" ] || need="$need $2"
}
MA=$(gcc -print-multiarch 2> /dev/null || echo x86_64-linux-gnu)
want cc gcc
want make make
want python3 python3
want_file /usr/bin/python3 python3
case "$1" in
test)
    want c++ g++
    want clang clang
    want git git
    want xz xz-utils
    want zstd zstd
    want sort coreutils
    want pkg-config pkg-config
    want chromium chromium
    want valgrind valgrind
    # `go tool pprof` reads back the profiles ebb writes in pprof's format,
    # and heaptrack records every allocation, against the profiler's estimates
    want go golang-go
    want heaptrack heaptrack
    # CPython's regression tests, run under the allocator (make test-cpython)
    PYVER=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2> /dev/null || echo 3.11)
    # (regrtest.py alone comes with libpython3-stdlib; the modules do not)
    want_file "/usr/lib/python$PYVER/test/test_dict.py" "libpython$PYVER-testsuite"
    # clang's sanitizer runtimes
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.tsan-x86_64.a > /dev/null 2>&1 ||
        [ "$MA" != x86_64-linux-gnu ] || need="$need libclang-rt-dev"
    ;;
bench)
    # the peers and real programs of bench/run.sh (which installs nothing
    # itself), /usr/bin/time for its runs, valgrind for make bench-instr
    want valgrind valgrind
    want_file /usr/bin/time time
    want_file "/usr/lib/$MA/libjemalloc.so.2" libjemalloc2
    want_file "/usr/lib/$MA/libtcmalloc_minimal.so.4" libtcmalloc-minimal4
    want_file "/usr/lib/$MA/libmimalloc.so.2" libmimalloc2.0
    # scudo, beside the safety modes (make bench-modes)
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so > /dev/null 2>&1 ||
        [ "$MA" != x86_64-linux-gnu ] || need="$need libclang-rt-dev"
    # heaptrack, beside the heap profiler (make bench-modes)
    want_file /usr/lib/heaptrack/libheaptrack_preload.so heaptrack
    # real programs driven by bench/run.sh
    want_file /usr/bin/redis-server redis-server
    want_file /usr/bin/redis-benchmark redis-tools
    want_file /usr/bin/redis-cli redis-tools
    want_file /usr/bin/sqlite3 sqlite3
    want timeout coreutils
    ;;
esac
[ -z "$need" ] && exit 0
echo "installing:$need"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$SUDO apt-get install -y -q $need || { $SUDO apt-get update -q && $SUDO apt-get install -y -q $need; }
