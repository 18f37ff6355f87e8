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
# This script only runs things: every run appends one row to a results file
# (tab-separated; bench/README.md gives the columns), and bench/report.py
# computes the medians, ratios and geometric means from the rows, prints the
# tables and the targets (PASS/MISS), and writes bench/results/latest.md,
# the chart bench/results/latest.svg and, after a full run, the summary
# block of README.md; the rows are kept in bench/results/latest-runs.txt.
# EBB_BENCH_RESULTS=DIR writes the reports and rows to DIR instead (and
# leaves README.md alone); EBB_BENCH_WORKLOADS="churn bigbuf" runs only
# those workloads (to check the scripts); with --modes,
# EBB_BENCH_MODES="ebbmalloc profile" only those modes.  The peers come from
# tools/deps.sh bench (make bench runs it).  Exit status 1 if any run
# failed or any checksum differed between allocators.

set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

usage() {
    sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
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
# Where the reports and the rows go (relative to the repository root).
RESDIR=${EBB_BENCH_RESULTS:-bench/results}
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
# The packages whose versions latest.md records.  tools/deps.sh bench
# installs them (make bench runs it first); this script installs nothing.
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
    echo "note: missing$missing: 'sh tools/deps.sh bench' installs them (make bench runs it)"
fi
if [ ! -x /usr/bin/time ]; then
    echo "run.sh: /usr/bin/time is missing (Debian package 'time'); cannot measure" >&2
    exit 1
fi
command -v python3 >/dev/null 2>&1 \
    || { echo "run.sh: python3 is missing; bench/report.py needs it" >&2; exit 1; }

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
    # EBB_BENCH_MODES="ebbmalloc profile": only these (more rounds of a few).
    if [ -n "${EBB_BENCH_MODES:-}" ]; then
        only= only_specs=
        for s in $SPECS; do
            case " $EBB_BENCH_MODES " in *" ${s%%:*} "*) only="$only ${s%%:*}"; only_specs="$only_specs $s" ;; esac
        done
        ALLOCS=${only# } SPECS=${only_specs# }
    fi
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
# EBB_BENCH_WORKLOADS="churn bigbuf ...": only these (a check of the scripts,
# not a benchmark: the report then covers only them).
if [ -n "${EBB_BENCH_WORKLOADS:-}" ]; then
    only=
    for w in $WORKLOADS; do
        case " $EBB_BENCH_WORKLOADS " in *" $w "*) only="$only $w" ;; esac
    done
    WORKLOADS=${only# }
fi

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
# The results file: one row per run (bench/README.md, "The results file"),
# "# key: value" lines for what the reports say about the run.
ROWS=$TMP/rows.tsv
printf 'suite\talloc\tworkload\tround\tvalue\tcpu_s\trss_kib\tstatus\tmetrics\n' >"$ROWS"
meta() {    # key value...: one "# key: value" line per line of the value
    key=$1
    shift
    printf '%s\n' "$*" | sed "s/^/# $key: /" >>"$ROWS"
}
row() {     # suite alloc workload round value cpu_s rss_kib status [metrics]
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "${9:--}" >>"$ROWS"
}
report() {  # the arguments of bench/report.py
    python3 bench/report.py "$@"
}
FAILED=0

fail() {
    if [ "$MODES" = 1 ] && [ "$name" = guard ]; then
        # Guard mode is measured for information: a workload it cannot run
        # (too many mappings for vm.max_map_count, or too slow) is noted in
        # the report and not run again; it does not fail the benchmark.
        meta guard-failure "$(printf '%s\n' "$*" | head -n 3)"
        : >"$TMP/skip.$w.$name"
        return
    fi
    FAILED=1
    printf '%s\n' "$*" >>"$TMP/failures"
    meta failure "$*"
    {
        echo ""
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! FAILURE: $*"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    } >&2
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
            row speed "$name" "$w" "$round" "$value" "$cpu" "$rss" "$status"
        done
        echo "$line"
    done
    round=$((round + 1))
done
MAIN_END=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# The run's description, for the reports.
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
CORES=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)
if [ "$QUICK" = 1 ]; then MODE=quick; else MODE=full; fi
meta args "$ARGS"
meta mode "$MODE"
meta runs "$RUNS"
meta allocators "$ALLOCS"
meta extra_allocators "$EXTRA_NAMES"
meta workloads "$WORKLOADS"
meta nproc "$NPROC"
meta threads "$THREADS"
meta cpu "$CPU"
meta cores "$CORES"
meta rev "$REV"
meta start "$START"
meta main_end "$MAIN_END"
meta load_before "$LOAD_BEFORE"
meta load_after "$LOAD_AFTER"
meta run_limit "$BASE_LIMIT"
for w in $WORKLOADS; do
    ops=$(cat "$TMP/ops.$w" 2>/dev/null)
    unit=s
    [ "$w" = redis ] && unit=us/req
    meta workload "$(printf '%s\t%s\t%s\t%s\t%s' "$w" "$(workload_cmd "$w")" "${ops:-?}" "$unit" "$(workload_desc "$w")")"
done

# ---- 4m. the safety modes' report (--modes) ----------------------------------
if [ "$MODES" = 1 ]; then
    # How many of the samples due the sampled guard took within its budget:
    # two more runs of each workload (not redis: its server's exit line is
    # not kept) with EBB_STATS=1: with the default budget (rows "sample")
    # and with none (rows "strict": what a sample costs when all are taken,
    # guard_sample_ns over guard_samples).
    sample_counts() {   # $1: workload, $2: budget
        # shellcheck disable=SC2086 # BASE_TIMEOUT is a list of words
        exec_workload "$1" $BASE_TIMEOUT env LD_PRELOAD="$EBB" EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET="$2" \
            EBB_STATS=1 >/dev/null 2>"$TMP/err" \
            || echo "note: $1 under the sampled guard exited with status $?; its row may be missing" >&2
        sed -n 's/.*ebbmalloc: exit:.* malloc_calls=\([0-9]*\).* guard_samples=\([0-9]*\) guard_samples_skipped=\([0-9]*\) guard_sample_ns=\([0-9]*\).*/\1 \2 \3 \4/p' \
            "$TMP/err" | awk '{ m += $1; t += $2; s += $3; ns += $4 }
                END { printf "mallocs=%.0f,taken=%.0f,skipped=%.0f,ns=%.0f\n", m, t, s, ns }'
    }
    for w in $WORKLOADS; do
        [ "$w" = redis ] && continue
        row samples sample "$w" 1 - - - ok "$(sample_counts "$w" 1)"
        row samples strict "$w" 1 - - - ok "$(sample_counts "$w" 0)"
    done
    # The floor of a sample's cost on this machine, without the allocator.
    PROTCOST=$("$BIN/protcost" 2>&1)
    meta protcost "$PROTCOST"
    [ -n "${SCUDO:-}" ] && [ -f "$SCUDO" ] && meta scudo "$SCUDO"
    echo ""
    echo "== safety modes: medians over $RUNS rounds, ratios to the default mode =="
    echo ""
    report section modes "$ROWS"
    echo ""
    echo "sampled guard (EBB_GUARD_SAMPLE=1000, default budget and none): samples taken, one run each"
    report section samples "$ROWS"
    echo ""
    echo "page protection on this machine (bench/protcost.c, medians):"
    echo "$PROTCOST" | sed 's/^/  /'
    mkdir -p "$RESDIR" || exit 1
    meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    meta end "$(date +%s)"
    meta load_after "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
    report modes "$ROWS" "$RESDIR/modes.md" || fail "bench/report.py failed"
    cp "$ROWS" "$RESDIR/modes-runs.txt" || exit 1
    echo ""
    echo "wrote $RESDIR/modes.md and $RESDIR/modes-runs.txt ($(($(date +%s) - START)) s)"
    [ "$FAILED" = 1 ] && exit 1
    exit 0
fi

# ---- 4. the workloads' tables -------------------------------------------------
echo ""
echo "== medians over $RUNS rounds; ratios are ebbmalloc/peer (below 1: ebbmalloc faster/smaller) =="
echo ""
report section speed "$ROWS"

echo "== reclamation cost: ebbmalloc with reclamation on (defaults) vs off (ebb-off) =="
echo ""
report section onoff "$ROWS"
echo ""
meta off_env "$OFF_ENV"

# ---- 5. reclamation speed (bench/reclaim.sh) ---------------------------------
echo "== reclamation speed: bench/reclaim.sh $RECLAIM_ROUNDS $RECLAIM_MIB =="
echo ""
meta reclaim_mib "$RECLAIM_MIB"
sh bench/reclaim.sh "$RECLAIM_ROUNDS" "$RECLAIM_MIB" - "$MAIN_SPECS" "$ROWS"
rc=$?
if [ "$rc" != 0 ]; then
    fail "bench/reclaim.sh exited with status $rc"
fi

# ---- 6. retention against footprint on big buffers (bench/curve.sh) ----------
echo ""
echo "== big buffers: time against peak RSS, retention settings and peers: bench/curve.sh =="
echo ""
sh bench/curve.sh "$RUNS" "$BIGBUF_ITERS" "$EBB" "$ROWS" - || fail "bench/curve.sh failed"
END=$(date +%s)

# ---- 7. Markdown and SVG -----------------------------------------------------
mkdir -p "$RESDIR" || exit 1
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta end "$END"
meta kernel "$(uname -sr)"
meta ebb_src "$EBB_SRC"
meta ebb_built "$EBB_BUILT"
meta ebb_sha "$EBB_SHA"
meta compiler "$("$CC" --version 2>/dev/null | head -n 1)"
# shellcheck disable=SC2086 # PEER_PKGS and REAL_PKGS are lists of words
meta package "$(dpkg-query -W -f='${Package} ${Version}\n' $PEER_PKGS $REAL_PKGS python3.11 libc6 2>/dev/null)"
# The README's summary block only after a full run into bench/results.
README_ARG=
if [ "$QUICK" = 0 ] && [ -z "${EBB_BENCH_RESULTS:-}" ]; then README_ARG="--readme README.md"; fi
# shellcheck disable=SC2086 # README_ARG is empty or two words
report latest "$ROWS" "$RESDIR" $README_ARG || fail "bench/report.py failed"
cp "$ROWS" "$RESDIR/latest-runs.txt" || exit 1
echo ""
echo "wrote $RESDIR/latest.md, $RESDIR/latest.svg and $RESDIR/latest-runs.txt ($((END - START)) s)"
[ -n "$README_ARG" ] && echo "rewrote the summary block of README.md"

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
