#!/bin/sh
# bench/run.sh — benchmark ebbmalloc against glibc, jemalloc, tcmalloc and
# mimalloc.  Run from anywhere:
#
#   sh bench/run.sh [--quick] [--runs N] [--threads N] [--modes]
#
#   --quick      3 rounds and smaller workloads (about 2-3 minutes on 2 cores)
#   --modes      the cost of ebbmalloc's safety modes instead: the workloads
#                under ebbmalloc's default, zero-on-free, secure, sampled-guard
#                (1 in 1000, with its default budget and without one) and
#                guard modes, and under scudo when Debian's libclang-rt has
#                it; writes bench/results/modes.md
#   --runs N     rounds per allocator and workload (default 5; 3 with --quick)
#   --threads N  threads for the multi-threaded workloads (default: nproc)
#
# Thirteen workloads (bench/README.md says what each does and stresses): ten
# C programs of bench/, and redis-server, sqlite3 and python3 from Debian.
# Every workload runs under every allocator, interleaved round by round
# (glibc jemalloc tcmalloc mimalloc ebbmalloc ebb-off, then again), each C
# program and sqlite3/python3 under /usr/bin/time (wall, CPU, peak RSS),
# redis-server through bench/redis.sh (requests/s, server CPU and peak RSS).
# "ebb-off" is ebbmalloc with reclamation switched off; it only feeds the
# reclamation-cost section.  Then bench/reclaim.sh measures how fast freed
# memory goes back to the kernel, and bench/curve.sh puts ebbmalloc's
# retention settings beside the peers on the big-buffer workload.
#
# Prints the tables of medians, the ebbmalloc/peer ratios, the ratio to the
# best peer, the targets (PASS/MISS), and writes the same to
# bench/results/latest.md and a chart to bench/results/latest.svg.  Exit
# status 1 if any run failed or any checksum differed between allocators.

set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

ARGS="$*"
QUICK=0
MODES=0
RUNS=
THREADS=
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --modes) MODES=1 ;;
        --runs) [ $# -ge 2 ] || { echo "run.sh: --runs needs a value" >&2; exit 2; }
                RUNS=$2; shift ;;
        --runs=*) RUNS=${1#--runs=} ;;
        --threads) [ $# -ge 2 ] || { echo "run.sh: --threads needs a value" >&2; exit 2; }
                   THREADS=$2; shift ;;
        --threads=*) THREADS=${1#--threads=} ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

is_count() {
    case $1 in ''|*[!0-9]*) return 1 ;; esac
    [ "$1" -ge 1 ]
}

NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ -z "$RUNS" ]; then
    if [ "$QUICK" = 1 ]; then RUNS=3; else RUNS=5; fi
fi
[ -n "$THREADS" ] || THREADS=$NPROC
is_count "$RUNS" || { echo "run.sh: --runs wants a positive integer, got '$RUNS'" >&2; exit 2; }
is_count "$THREADS" || { echo "run.sh: --threads wants a positive integer, got '$THREADS'" >&2; exit 2; }

# One benchmark at a time on this machine: timings taken while another run
# (or a reclaim test) loads the CPUs mean nothing.  The whole run holds
# /tmp/ebbmalloc-bench.lock; bench/reclaim.sh and other timing runs take it too.
if [ -z "${EBB_BENCH_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    EBB_BENCH_LOCKED=1
    export EBB_BENCH_LOCKED
    if ! flock -n /tmp/ebbmalloc-bench.lock true 2>/dev/null; then
        echo "bench: waiting for another benchmark run to finish (/tmp/ebbmalloc-bench.lock)"
    fi
    # shellcheck disable=SC2086 # ARGS holds simple words only (options, numbers)
    exec flock /tmp/ebbmalloc-bench.lock sh "$ROOT/bench/run.sh" $ARGS
fi
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- workload sizes ---------------------------------------------------------
# Full: each run takes about 0.5-2 s under the faster allocators.  Quick: a
# quarter of that, so every workload still appears.
if [ "$QUICK" = 1 ]; then
    CHURN_ITERS=8000000
    BIGNUM_STEPS=15000
    LARSON_OPS=2500000          # per thread
    XTHREAD_ITEMS=4000000       # per producer
    FS_OBJECTS=10000 FS_WRITES=10000
    LIFETIME_STEPS=750000       # per thread
    LARGE_MIB=64 LARGE_ITERS=800
    BIGBUF_ITERS=300
    TC_TOTAL=2000 TC_BLOCKS=1000
    FRAG_MIB=48
    REDIS_REQUESTS=25000        # per test, 9 tests
    SQLITE_ROWS=40000
    PY_SCALE=2
    RECLAIM_ROUNDS=1 RECLAIM_MIB=256
else
    CHURN_ITERS=20000000
    BIGNUM_STEPS=60000
    LARSON_OPS=6000000
    XTHREAD_ITEMS=10000000
    FS_OBJECTS=20000 FS_WRITES=20000
    LIFETIME_STEPS=3000000
    LARGE_MIB=256 LARGE_ITERS=2000
    BIGBUF_ITERS=1000
    TC_TOTAL=5000 TC_BLOCKS=1000
    FRAG_MIB=128
    REDIS_REQUESTS=100000
    SQLITE_ROWS=160000
    PY_SCALE=8
    RECLAIM_ROUNDS=3 RECLAIM_MIB=1024
fi

# ---- 1. build ---------------------------------------------------------------
BIN=$ROOT/build/bench
mkdir -p "$BIN" || exit 1
CC=${CC:-cc}
PROGS="churn bignum larson xthread falseshare lifetime large bigbuf threadchurn frag protcost"
for prog in $PROGS; do
    echo "build: $CC -std=c11 -O2 -g -pthread -o build/bench/$prog bench/$prog.c"
    "$CC" -std=c11 -O2 -g -pthread -Wall -Wextra -o "$BIN/$prog" "bench/$prog.c" \
        || { echo "run.sh: building $prog failed" >&2; exit 1; }
done

EBB=$ROOT/build/libebbmalloc.so
if [ ! -f "$EBB" ]; then
    echo "build: $EBB missing, running 'make lib'"
    make lib || { echo "run.sh: 'make lib' failed" >&2; exit 1; }
fi
# Others may rebuild build/libebbmalloc.so while a run goes on (a run takes
# minutes): every run here uses a copy taken now, so one report measures one
# library.  The git state is taken now too.
SNAP=$(mktemp -d "${TMPDIR:-/tmp}/ebbsnap.XXXXXX") || exit 1
trap 'rm -rf "$SNAP"' EXIT
cp "$EBB" "$SNAP/libebbmalloc.so" || { echo "run.sh: cannot copy $EBB" >&2; exit 1; }
EBB_SRC=$EBB
EBB=$SNAP/libebbmalloc.so
EBB_BUILT=$(date -u -r "$EBB_SRC" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null)
EBB_SHA=$(sha256sum "$EBB" 2>/dev/null | cut -c1-16)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [ -n "$(git status --porcelain -- src include 2>/dev/null)" ]; then REV="$REV (modified)"; fi
echo "bench: ebbmalloc = copy of $EBB_SRC (built $EBB_BUILT, sha256 $EBB_SHA..., git $REV)"

# ---- 2. peers and real programs ---------------------------------------------
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null) \
    || MULTIARCH=$(gcc -print-multiarch 2>/dev/null) \
    || MULTIARCH=
if [ -n "$MULTIARCH" ] && [ -d "/usr/lib/$MULTIARCH" ]; then
    LIBDIR=/usr/lib/$MULTIARCH
else
    LIBDIR=/usr/lib
fi
JEMALLOC=$LIBDIR/libjemalloc.so.2
TCMALLOC=$LIBDIR/libtcmalloc_minimal.so.4
MIMALLOC=$LIBDIR/libmimalloc.so.2
PEER_PKGS="libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0"
REAL_PKGS="redis-server redis-tools sqlite3"

missing=
[ -f "$JEMALLOC" ] || missing="$missing libjemalloc2"
[ -f "$TCMALLOC" ] || missing="$missing libtcmalloc-minimal4"
[ -f "$MIMALLOC" ] || missing="$missing libmimalloc2.0"
[ -x /usr/bin/time ] || missing="$missing time"
[ -x /usr/bin/redis-server ] || missing="$missing redis-server"
[ -x /usr/bin/redis-benchmark ] || missing="$missing redis-tools"
[ -x /usr/bin/sqlite3 ] || missing="$missing sqlite3"
[ -x /usr/bin/python3 ] || missing="$missing python3"
if [ -n "$missing" ]; then
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            if [ -t 0 ]; then SUDO=sudo; else SUDO="sudo -n"; fi
        else
            SUDO=none
        fi
    fi
    if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: missing$missing, and cannot install (not root, no sudo, or no apt-get)"
    else
        echo "install:$missing"
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 \
            || { $SUDO apt-get update -qq >/dev/null 2>&1
                 $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1; } \
            || echo "note: apt-get install$missing failed"
    fi
fi
if [ ! -x /usr/bin/time ]; then
    echo "run.sh: /usr/bin/time is missing (Debian package 'time'); cannot measure" >&2
    exit 1
fi

# glibc is preloaded too (its own libc.so.6): Debian's redis-server links
# libjemalloc.so.2, which would otherwise provide its malloc.  For programs
# that only link libc the preload changes nothing.
LIBC=$LIBDIR/libc.so.6
[ -f "$LIBC" ] || LIBC=$(ldd /bin/sh 2>/dev/null | awk '$1 == "libc.so.6" { print $3 }')
[ -f "$LIBC" ] || { echo "run.sh: cannot find libc.so.6" >&2; exit 1; }

# name:library pairs, in the order of each round.
ALLOCS="glibc"
SPECS="glibc:$LIBC"
for spec in "jemalloc:$JEMALLOC" "tcmalloc:$TCMALLOC" "mimalloc:$MIMALLOC"; do
    name=${spec%%:*}
    lib=${spec#*:}
    if [ -f "$lib" ]; then
        ALLOCS="$ALLOCS $name"
        SPECS="$SPECS $spec"
    else
        echo "note: $lib not found, skipping $name"
    fi
done
ALLOCS="$ALLOCS ebbmalloc"
SPECS="$SPECS ebbmalloc:$EBB"
MAIN_SPECS=$SPECS
# ebbmalloc with reclamation off: for the reclamation-cost section only.
SPECS="$SPECS ebb-off:$EBB"
OFF_ENV="EBB_RECLAIM_DELAY_MS=3600000 EBB_BACKGROUND=0 EBB_RETAIN_MAX=1099511627776"
EXTRA_NAMES=ebb-off
if [ "$MODES" = 1 ]; then
    # The safety modes: one library, chosen by environment variable.  scudo
    # (LLVM's hardened allocator) runs beside them for comparison.
    ALLOCS="ebbmalloc zero secure sample strict guard profile profile10"
    SPECS="ebbmalloc:$EBB zero:$EBB secure:$EBB sample:$EBB strict:$EBB guard:$EBB profile:$EBB profile10:$EBB"
    for SCUDO in /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so; do :; done
    if [ -f "$SCUDO" ]; then
        ALLOCS="$ALLOCS scudo"
        SPECS="$SPECS scudo:$SCUDO"
    else
        echo "note: scudo not found (Debian package libclang-rt-dev), skipping it"
    fi
    # heaptrack records every allocation (on glibc's malloc); its record
    # goes to /dev/null here, so its interpretation is not counted.
    HEAPTRACK=/usr/lib/heaptrack/libheaptrack_preload.so
    if [ -f "$HEAPTRACK" ]; then
        ALLOCS="$ALLOCS heaptrack"
        SPECS="$SPECS heaptrack:$HEAPTRACK"
    else
        echo "note: heaptrack not found (Debian package heaptrack), skipping it"
    fi
    EXTRA_NAMES=
fi
# The environment of a run under allocator $1.
alloc_env() {
    case $1 in
        ebb-off) echo "$OFF_ENV" ;;
        zero) echo "EBB_ZERO_ON_FREE=1" ;;
        secure) echo "EBB_SECURE=1" ;;
        sample) echo "EBB_GUARD_SAMPLE=1000" ;;
        strict) echo "EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET=0" ;;
        guard) echo "EBB_GUARD=1" ;;
        profile) echo "EBB_PROFILE=1" ;;
        profile10) echo "EBB_PROFILE=1 EBB_PROFILE_RATE=52429" ;;
        heaptrack) echo "DUMP_HEAPTRACK_OUTPUT=/dev/null" ;;
    esac
}

WORKLOADS="churn bignum larson xthread falseshare lifetime large bigbuf threadchurn frag"
[ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-benchmark ] && [ -x /usr/bin/redis-cli ] \
    && WORKLOADS="$WORKLOADS redis" || echo "note: redis-server/redis-tools missing, skipping redis"
[ -x /usr/bin/sqlite3 ] && WORKLOADS="$WORKLOADS sqlite" || echo "note: sqlite3 missing, skipping sqlite"
[ -x /usr/bin/python3 ] && WORKLOADS="$WORKLOADS python" || echo "note: /usr/bin/python3 missing, skipping python"

# The command of a workload, for the reports.
workload_cmd() {
    case $1 in
        churn) echo "churn $CHURN_ITERS" ;;
        bignum) echo "bignum $BIGNUM_STEPS" ;;
        larson) echo "larson $THREADS $LARSON_OPS" ;;
        xthread) echo "xthread $THREADS $XTHREAD_ITEMS" ;;
        falseshare) echo "falseshare $THREADS $FS_OBJECTS $FS_WRITES" ;;
        lifetime) echo "lifetime $THREADS $LIFETIME_STEPS" ;;
        large) echo "large $LARGE_MIB $LARGE_ITERS" ;;
        bigbuf) echo "bigbuf $BIGBUF_ITERS" ;;
        threadchurn) echo "threadchurn $THREADS $TC_TOTAL $TC_BLOCKS" ;;
        frag) echo "frag $FRAG_MIB" ;;
        redis) echo "sh bench/redis.sh LIB $REDIS_REQUESTS (redis-benchmark, 9 tests x $REDIS_REQUESTS requests)" ;;
        sqlite) echo "sqlite3 -batch :memory: '.parameter set @rows $SQLITE_ROWS' '.read bench/sqlite.sql'" ;;
        python) echo "PYTHONMALLOC=malloc /usr/bin/python3 -S bench/objects.py $PY_SCALE" ;;
    esac
}
workload_desc() {
    case $1 in
        churn) echo "single-thread small-object churn" ;;
        bignum) echo "symbolic computation: polynomials of big integers, realloc growth" ;;
        larson) echo "server pattern: threads replace blocks of a shared array (remote frees)" ;;
        xthread) echo "producer/consumer: blocks freed by another thread" ;;
        falseshare) echo "false sharing: threads write small objects (cache-scratch/thrash)" ;;
        lifetime) echo "long- and short-lived blocks, random lifetimes, bursts" ;;
        large) echo "large blocks: realloc growth to $LARGE_MIB MiB, 64 KiB-8 MiB alloc/free" ;;
        bigbuf) echo "20 big buffers of 5-25 MiB replaced at random, zero-filled (malloc-large)" ;;
        threadchurn) echo "threads created and destroyed continuously" ;;
        frag) echo "footprint under fragmentation (peak RSS is the figure)" ;;
        redis) echo "redis-server (Debian) driven by redis-benchmark" ;;
        sqlite) echo "sqlite3 (Debian): inserts, indexes, queries in memory" ;;
        python) echo "python3 (Debian): object-heavy script, PYTHONMALLOC=malloc" ;;
    esac
}

# Run workload $1; the rest of the arguments are the command prefix
# (/usr/bin/time ..., timeout ..., env LD_PRELOAD=... ...).
exec_workload() {
    w=$1
    shift
    case $w in
        churn) "$@" "$BIN/churn" "$CHURN_ITERS" ;;
        bignum) "$@" "$BIN/bignum" "$BIGNUM_STEPS" ;;
        larson) "$@" "$BIN/larson" "$THREADS" "$LARSON_OPS" ;;
        xthread) "$@" "$BIN/xthread" "$THREADS" "$XTHREAD_ITEMS" ;;
        falseshare) "$@" "$BIN/falseshare" "$THREADS" "$FS_OBJECTS" "$FS_WRITES" ;;
        lifetime) "$@" "$BIN/lifetime" "$THREADS" "$LIFETIME_STEPS" ;;
        large) "$@" "$BIN/large" "$LARGE_MIB" "$LARGE_ITERS" ;;
        bigbuf) "$@" "$BIN/bigbuf" "$BIGBUF_ITERS" ;;
        threadchurn) "$@" "$BIN/threadchurn" "$THREADS" "$TC_TOTAL" "$TC_BLOCKS" ;;
        frag) "$@" "$BIN/frag" "$FRAG_MIB" ;;
        sqlite) "$@" /usr/bin/sqlite3 -batch :memory: ".parameter set @rows $SQLITE_ROWS" \
                    ".read bench/sqlite.sql" </dev/null ;;
        python) "$@" PYTHONMALLOC=malloc PYTHONHASHSEED=0 /usr/bin/python3 -S bench/objects.py "$PY_SCALE" ;;
    esac
}

# ---- 3. run, interleaved ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbbench.XXXXXX") || exit 1
trap 'rm -rf "$TMP" "$SNAP"' EXIT
trap 'exit 130' INT TERM
RESULTS=$TMP/results        # workload alloc round value cpu rss_kib status
: >"$RESULTS"
FAILED=0

fail() {
    if [ "$MODES" = 1 ] && [ "$name" = guard ]; then
        # Guard mode is measured for information: a workload it cannot run
        # (too many mappings for vm.max_map_count, or too slow) is noted in
        # the report and not run again; it does not fail the benchmark.
        printf '%s\n' "$*" | head -n 3 >>"$TMP/guard-failures"
        : >"$TMP/skip.$w.$name"
        return
    fi
    FAILED=1
    printf '%s\n' "$*" >>"$TMP/failures"
    {
        echo ""
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! FAILURE: $*"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    } >&2
}

# The failures, for the end of a Markdown report.
md_failures() {
    if [ "$FAILED" = 1 ]; then
        echo ""
        echo "**FAILED: at least one run crashed or produced a wrong checksum:**"
        echo ""
        sed 's/^/    /' "$TMP/failures"
    fi
}

# A run that hangs (say, a deadlocked allocator) is killed and counted as failed.
RUN_LIMIT=120
TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout --foreground -k 10 $RUN_LIMIT"
fi
BASE_TIMEOUT=$TIMEOUT BASE_LIMIT=$RUN_LIMIT

# One run of workload $1 under allocator $2 (library $3); sets
# value cpu rss rc sum, and leaves the output in $TMP/out, $TMP/err.
measure() {
    w=$1 name=$2 lib=$3
    extra=$(alloc_env "$name")
    value=x cpu=x rss=x
    # Guard mode makes system calls for every allocation: a minute is enough
    # to show what it costs.
    TIMEOUT=$BASE_TIMEOUT RUN_LIMIT=$BASE_LIMIT
    if [ "$name" = guard ] && [ -n "$TIMEOUT" ]; then
        RUN_LIMIT=60
        TIMEOUT="timeout --foreground -k 10 $RUN_LIMIT"
    fi
    if [ "$w" = redis ]; then
        # shellcheck disable=SC2086 # TIMEOUT and extra are lists of words
        $TIMEOUT env $extra sh bench/redis.sh "$lib" "$REDIS_REQUESTS" >"$TMP/out" 2>"$TMP/err"
        rc=$?
        value=$(sed -n 's/.*us_per_req=\([0-9.]*\).*/\1/p' "$TMP/out")
        cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' "$TMP/out")
        rss=$(sed -n 's/.*rss_kib=\([0-9]*\).*/\1/p' "$TMP/out")
    else
        # Wall time to 0.1 ms from the shell's clock (GNU date; time(1)
        # rounds to 10 ms: 4% of a quick run); CPU and peak RSS from time(1).
        start_ns=$(date +%s%N)
        # shellcheck disable=SC2086
        exec_workload "$w" /usr/bin/time -f '%e %U %S %M' -o "$TMP/time" \
            $TIMEOUT env LD_PRELOAD="$lib" $extra >"$TMP/out" 2>"$TMP/err"
        rc=$?
        end_ns=$(date +%s%N)
        # The last line of the time file holds the numbers; a line before
        # it may say "Command exited with non-zero status" or "terminated".
        # shellcheck disable=SC2046
        set -- $(tail -n 1 "$TMP/time" 2>/dev/null) x x x x
        value=$1 rss=$4
        case $value in
            x|'') ;;
            *) value=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') ;;
        esac
        cpu=$(echo "$2 $3" | awk '{ printf "%.2f", $1 + $2 }')
    fi
    [ -n "$value" ] || value=x
    # All checksum= values the program printed, on one line; for a program
    # that prints none (sqlite3), a CRC of its whole output.
    sum=$(sed -n 's/.*checksum=\(0x[0-9a-f]*\).*/\1/p' "$TMP/out" | tr '\n' ' ' | sed 's/ $//')
    if [ -z "$sum" ] && [ "$w" = sqlite ] && [ -s "$TMP/out" ]; then
        sum=$(cksum <"$TMP/out" | awk '{ printf "0x%08x-%d", $1, $2 }')
    fi
}

echo "bench: $RUNS rounds; allocators: $ALLOCS $EXTRA_NAMES; threads: $THREADS (nproc $NPROC)"
case ${LOAD_BEFORE%% *} in
    0.[0-4]*|'') ;;
    *) echo "note: load average $LOAD_BEFORE before the run: other processes use the CPUs, timings (above all the multi-threaded ones) will be noisy" ;;
esac
echo "bench: workloads: $WORKLOADS"
round=1
while [ "$round" -le "$RUNS" ]; do
    for w in $WORKLOADS; do
        line="round $round/$RUNS $w:"
        for spec in $SPECS; do
            name=${spec%%:*}
            lib=${spec#*:}
            if [ -f "$TMP/skip.$w.$name" ]; then
                line="$line $name=skipped"
                continue
            fi
            measure "$w" "$name" "$lib"
            status=ok
            if [ "$rc" != 0 ] || [ -z "$sum" ] || [ "$value" = x ]; then
                status=fail
                line="$line $name=FAIL"
                msg="$w under $name (round $round): exit status $rc"
                [ -f "$TMP/time" ] && [ "$w" != redis ] && msg="$msg, $(head -n 1 "$TMP/time" 2>/dev/null)"
                [ "$rc" = 124 ] && [ -n "$TIMEOUT" ] && msg="$msg (killed after $RUN_LIMIT s)"
                if [ -s "$TMP/err" ]; then
                    msg="$msg
$(head -n 5 "$TMP/err")"
                fi
                fail "$msg"
            elif grep -q 'cannot be preloaded' "$TMP/err"; then
                # ld.so ignores a preload it cannot load and runs on glibc.
                status=fail
                line="$line $name=NOTLOADED"
                fail "$w under $name (round $round): $(grep 'cannot be preloaded' "$TMP/err" | head -n 1)"
            elif grep -q 'ebbmalloc: warning' "$TMP/err"; then
                # An EBB_* value the library rejected: it ran with a default.
                status=fail
                line="$line $name=WARNING"
                fail "$w under $name (round $round): $(grep 'ebbmalloc: warning' "$TMP/err" | head -n 1)"
            elif [ ! -f "$TMP/ref.$w" ]; then
                # The first good run of a workload (glibc's, normally) sets
                # the reference checksum.
                echo "$sum" >"$TMP/ref.$w"
                echo "$name" >"$TMP/refname.$w"
                sed -n 's/.*ops=\([0-9]*\).*/\1/p' "$TMP/out" >"$TMP/ops.$w"
                line="$line $name=$value"
            elif [ "$sum" != "$(cat "$TMP/ref.$w")" ]; then
                status=fail
                line="$line $name=BADSUM"
                fail "$w checksum under $name (round $round) is $sum, but $(cat "$TMP/ref.$w") under $(cat "$TMP/refname.$w")"
            else
                line="$line $name=$value"
            fi
            echo "$w $name $round $value $cpu $rss $status" >>"$RESULTS"
        done
        echo "$line"
    done
    round=$((round + 1))
done
MAIN_END=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- 4m. the safety modes' report (--modes) ----------------------------------
if [ "$MODES" = 1 ]; then
    # How many of the samples due the sampled guard took within its budget:
    # one more run of each workload (not redis: its server's exit line is
    # not kept) with EBB_STATS=1.
    SAMPLES=$TMP/samples
    : >"$SAMPLES"
    # Each workload twice: with the default budget, and with none (what a
    # sample costs when all are taken: guard_sample_ns over guard_samples).
    sample_counts() {   # $1: workload, $2: budget
        # shellcheck disable=SC2086 # BASE_TIMEOUT is a list of words
        exec_workload "$1" $BASE_TIMEOUT env LD_PRELOAD="$EBB" EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET="$2" \
            EBB_STATS=1 >/dev/null 2>"$TMP/err" \
            || echo "note: $1 under the sampled guard exited with status $?; its row may be missing" >&2
        sed -n 's/.*ebbmalloc: exit:.* malloc_calls=\([0-9]*\).* guard_samples=\([0-9]*\) guard_samples_skipped=\([0-9]*\) guard_sample_ns=\([0-9]*\).*/\1 \2 \3 \4/p' \
            "$TMP/err" | awk '{ m += $1; t += $2; s += $3; ns += $4 } END { if (NR) print m, t, s, ns; else print "0 0 0 0" }'
    }
    for w in $WORKLOADS; do
        [ "$w" = redis ] && continue
        echo "$w $(sample_counts "$w" 1) $(sample_counts "$w" 0)" >>"$SAMPLES"
    done
    # The floor of a sample's cost on this machine, without the allocator.
    PROTCOST=$("$BIN/protcost" 2>&1)
    # "floor": what taking one allocation in 1000 costs a workload at the
    # least on this machine, from its allocation rate in the default mode
    # and protcost's figure for a sample (the threaded one for the
    # workloads that run threads): 1 + mallocs / 1000 * µs / median time.
    FLOOR_US=$(echo "$PROTCOST" | sed -n 's/^one thread:.*: \([0-9.]*\) us a sample$/\1/p')
    FLOOR_MT_US=$(echo "$PROTCOST" | sed -n 's/^another thread running:.*: \([0-9.]*\) us a sample$/\1/p')
    samples_report() {   # $1: text or md
        awk -v MODE="$1" -v US1="${FLOOR_US:-0}" -v USMT="${FLOOR_MT_US:-0}" '
            function us(ns, n) { return n > 0 ? sprintf("%.1f", ns / n / 1000) : "—" }
            function median(w,   n, i, j, t, v) {
                n = split(times[w], v, " ")
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
                return n ? v[int((n + 1) / 2)] : 0 }
            FNR == NR { if ($2 == "ebbmalloc" && $7 == "ok") times[$1] = times[$1] " " $4; next }
            FNR == 1 { if (MODE == "md") { print "| workload | mallocs | samples due | taken | skipped | one in | µs each | no budget: taken | one in | µs each | floor |"; print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" }
                       else print "  workload      mallocs   due  taken  skipped  one-in  us-each | no budget: taken  one-in  us-each | floor" }
            { due = $3 + $4; one = $3 > 0 ? sprintf("%.0f", $2 / $3) : "—"; one0 = $7 > 0 ? sprintf("%.0f", $6 / $7) : "—"
              threaded = $1 ~ /^(larson|xthread|falseshare|lifetime|threadchurn)$/
              m = median($1); floor = "—"
              if (m > 0 && US1 > 0) { f = 1 + $2 / 1000 * (threaded ? USMT : US1) / 1e6 / m; floor = sprintf("%.2f", f); lf += log(f); nf++ }
              if (MODE == "md") printf "| %s | %d | %d | %d | %d | %s | %s | %d | %s | %s | %s |\n", $1, $2, due, $3, $4, one, us($5, $3), $7, one0, us($9, $7), floor
              else printf "  %-12s %9d %5d %6d %8d %7s %8s | %6d %7s %8s | %s\n", $1, $2, due, $3, $4, one, us($5, $3), $7, one0, us($9, $7), floor }
            END { if (nf) printf "%sfloor of one in 1000 on this machine, geometric mean over %d workloads: %.3f\n", MODE == "md" ? "\n" : "  ", nf, exp(lf / nf) }' "$RESULTS" "$SAMPLES"
    }
    modes_report() {   # $1: text or md
        awk -v MODE="$1" -v WLS="$WORKLOADS" -v VARS="$ALLOCS" \
            -f bench/stats.awk -f bench/modes.awk "$RESULTS"
    }
    echo ""
    echo "== safety modes: medians over $RUNS rounds, ratios to the default mode =="
    echo ""
    modes_report text
    echo ""
    echo "sampled guard (EBB_GUARD_SAMPLE=1000, default budget and none): samples taken, one run each"
    samples_report text
    echo ""
    echo "page protection on this machine (bench/protcost.c, medians):"
    echo "$PROTCOST" | sed 's/^/  /'
    mkdir -p bench/results || exit 1
    OUT=bench/results/modes.md
    if [ "$QUICK" = 1 ]; then SIZES=quick; else SIZES=full; fi
    {
        echo "# ebbmalloc safety modes: cost on the benchmark suite"
        echo ""
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); \`sh bench/run.sh $ARGS\`"
        echo "- $SIZES workload sizes, $RUNS rounds, variants interleaved ($ALLOCS); values are medians"
        echo "- nproc: $NPROC; threads: $THREADS; CPU: $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)"
        echo "- ebbmalloc: git $REV; run time $(($(date +%s) - START)) s; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
        [ -n "${SCUDO:-}" ] && [ -f "$SCUDO" ] && echo "- scudo: $SCUDO (LLVM's hardened allocator, its default options)"
        echo ""
        echo "Variants: \`default\` (no setting), \`zero\` (\`EBB_ZERO_ON_FREE=1\`), \`secure\`"
        echo "(\`EBB_SECURE=1\`), \`sample\` (\`EBB_GUARD_SAMPLE=1000\`, its default budget: 1% of the time),"
        echo "\`strict\` (\`EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET=0\`: every sample due taken), \`profile\`"
        echo "(\`EBB_PROFILE=1\`: the heap profiler at its default rate, one sample per 512 KiB), \`profile10\` (ten times"
        echo "that rate), \`heaptrack\` (Debian's heaptrack recording every allocation, on glibc's malloc, its record"
        echo "written to /dev/null: its interpretation not counted), \`guard\` (\`EBB_GUARD=1\`, for"
        echo "information: a run limited to $BASE_LIMIT s, 60 s in guard mode; a workload it cannot run is"
        echo "shown as —).  Ratios are variant/default: above 1 costs more.  For redis the figure"
        echo "is the time per request."
        modes_report md
        echo ""
        echo "### The sampled guard's budget: samples taken under \`EBB_GUARD_SAMPLE=1000\`"
        echo ""
        echo "Two more runs of each workload with \`EBB_STATS=1\` (redis not: its server's exit line is not kept),"
        echo "with the default budget and with none.  Samples fall due on the slow path, one in 1000 allocations"
        echo "on average; \"skipped\" were due while the budget was spent; \"one in\" is mallocs per sample taken;"
        echo "\"µs each\" is the time the sampled path took (\`guard_sample_ns\`, its system calls and first"
        echo "touch, at allocation and free) per sample taken.  \"floor\" is what one in 1000 costs the workload"
        echo "at the least here, whatever the allocator: its mallocs / 1000 × the page-protection cost of a sample"
        echo "measured below (the threaded figure for threaded workloads), over its default-mode time."
        echo ""
        samples_report md
        echo ""
        echo "What a sample costs at the least on this machine, without the allocator (\`bench/protcost.c\`:"
        echo "a page closed after a write, opened again, written again; medians of 4000):"
        echo ""
        echo "$PROTCOST" | sed 's/^/    /'
        if [ -s "$TMP/guard-failures" ]; then
            echo ""
            echo "Guard mode did not complete:"
            echo ""
            sed 's/^/    /' "$TMP/guard-failures"
        fi
        md_failures
    } >"$OUT"
    {
        echo "# bench/run.sh --modes run: workload variant round value cpu_s rss_kib status"
        cat "$RESULTS"
    } >bench/results/modes-runs.txt
    echo ""
    echo "wrote $OUT and bench/results/modes-runs.txt ($(($(date +%s) - START)) s)"
    [ "$FAILED" = 1 ] && exit 1
    exit 0
fi

# ---- 4. reports ------------------------------------------------------------
INFO=$TMP/info              # name, command, calls, unit, description (tabs)
: >"$INFO"
for w in $WORKLOADS; do
    ops=$(cat "$TMP/ops.$w" 2>/dev/null)
    unit=s
    [ "$w" = redis ] && unit=us/req
    printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$(workload_cmd "$w")" "${ops:-?}" "$unit" "$(workload_desc "$w")" >>"$INFO"
done

report() {   # $1: text or md
    awk -v MODE="$1" -v WLS="$WORKLOADS" -v ALS="$ALLOCS" -v INFO="$INFO" \
        -f bench/stats.awk -f bench/report.awk "$RESULTS"
}

echo ""
echo "== medians over $RUNS rounds; ratios are ebbmalloc/peer (below 1: ebbmalloc faster/smaller) =="
echo ""
report text

echo "== reclamation cost: ebbmalloc with reclamation on (defaults) vs off (ebb-off) =="
echo ""
awk -v MODE=text -f bench/onoff.awk "$RESULTS"
echo ""

# ---- 5. reclamation speed (bench/reclaim.sh) ---------------------------------
echo "== reclamation speed: bench/reclaim.sh $RECLAIM_ROUNDS $RECLAIM_MIB =="
echo ""
sh bench/reclaim.sh "$RECLAIM_ROUNDS" "$RECLAIM_MIB" "$TMP/reclaim.md" "$MAIN_SPECS" "$TMP/reclaim.data"
rc=$?
if [ "$rc" != 0 ]; then
    fail "bench/reclaim.sh exited with status $rc"
fi

# ---- 6. retention against footprint on big buffers (bench/curve.sh) ----------
echo ""
echo "== big buffers: time against peak RSS, retention settings and peers: bench/curve.sh =="
echo ""
sh bench/curve.sh "$RUNS" "$BIGBUF_ITERS" "$EBB" "$RESULTS" "$TMP/curve.md" || fail "bench/curve.sh failed"
END=$(date +%s)

# ---- 7. Markdown and SVG -----------------------------------------------------
mkdir -p bench/results || exit 1
OUT=bench/results/latest.md
SVG=bench/results/latest.svg
RAW=bench/results/latest-runs.txt
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
# shellcheck disable=SC2086 # PEER_PKGS and REAL_PKGS are lists of words
VERSIONS=$(dpkg-query -W -f='${Package} ${Version}\n' $PEER_PKGS $REAL_PKGS python3.11 libc6 2>/dev/null)
if [ "$QUICK" = 1 ]; then MODE=quick; else MODE=full; fi
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
{
    echo "# ebbmalloc benchmark results"
    echo ""
    echo "- date: $DATE"
    echo "- mode: $MODE, $RUNS rounds, allocators interleaved ($ALLOCS ebb-off); values are medians"
    echo "- nproc: $NPROC; threads for the multi-threaded workloads: $THREADS"
    echo "- CPU: ${CPU:-unknown}"
    echo "- kernel: $(uname -sr)"
    echo "- ebbmalloc: git $REV at the start; $EBB_SRC built $EBB_BUILT, sha256 $EBB_SHA...;"
    echo "  every run used a copy taken at the start"
    echo "- compiler: $("$CC" --version 2>/dev/null | head -n 1)"
    echo "- run time: $((MAIN_END - START)) s for the workloads, $((END - MAIN_END)) s for reclaim.sh"
    echo "- load average (1, 5, 15 min) before the run: $LOAD_BEFORE (other processes only: above"
    echo "  about 0.5 they competed with the benchmarks for the CPUs); after: $LOAD_AFTER"
    echo "- packages (dpkg-query -W):"
    echo "$VERSIONS" | sed '/^$/d; s/^/  - /'
    echo ""
    echo "Ratios are ebbmalloc/peer: below 1 means ebbmalloc is faster (wall time) or"
    echo "smaller (peak RSS) than that peer.  RSS is the process's peak resident set"
    echo "(for redis, the server's).  For redis the figure is requests per second, and"
    echo "its time ratio is peer req/s ÷ ebbmalloc req/s, so below 1 still means"
    echo "ebbmalloc is better.  \"Best peer\" is, per workload, the peer with the lowest"
    echo "median.  Chart: [latest.svg](latest.svg)."
    echo ""
    report md
    echo "## Reclamation cost: ebbmalloc with reclamation on (defaults) vs off"
    echo ""
    echo "\`ebb-off\` is ebbmalloc run with \`$OFF_ENV\`, in the same interleaved rounds."
    echo ""
    awk -v MODE=md -f bench/onoff.awk "$RESULTS"
    echo ""
    echo "## Reclamation speed (bench/reclaim.sh $RECLAIM_ROUNDS $RECLAIM_MIB)"
    echo ""
    cat "$TMP/reclaim.md" 2>/dev/null
    echo ""
    echo "## Big buffers: time against peak RSS (bench/curve.sh)"
    echo ""
    cat "$TMP/curve.md" 2>/dev/null
    md_failures
} >"$OUT"
{
    echo "# bench/run.sh $MODE run, $DATE: one line per run:"
    echo "# workload allocator round value cpu_s rss_kib status"
    echo "# (value: wall seconds; for redis, microseconds per request)"
    cat "$RESULTS"
} >"$RAW"
awk -v WLS="$WORKLOADS" -v ALS="$ALLOCS" -v INFO="$INFO" \
    -v TITLE="ebbmalloc / peer — $MODE run, $RUNS rounds, $THREADS threads, $DATE" \
    -f bench/stats.awk -f bench/svg.awk "$RESULTS" >"$SVG"
echo ""
echo "wrote $OUT, $SVG and $RAW ($((END - START)) s)"

if [ "$FAILED" = 1 ]; then
    {
        echo ""
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! bench FAILED: a run crashed or a checksum differed between allocators:"
        sed 's/^/!!!   /' "$TMP/failures"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    } >&2
    exit 1
fi
exit 0
