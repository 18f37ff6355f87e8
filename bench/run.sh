#!/bin/sh
# bench/run.sh — benchmark ebbmalloc against glibc, jemalloc, tcmalloc and
# mimalloc.  Run from the repository root:
#
#   sh bench/run.sh [--quick] [--runs N] [--threads N]
#
#   --quick      fewer rounds (3) and half-size workloads; about a minute at most
#   --runs N     rounds per allocator and workload (default 5, or 3 with --quick)
#   --threads N  threads for the xthread workload (default: nproc)
#
# Every workload runs under every allocator, interleaved round by round
# (glibc jemalloc tcmalloc mimalloc ebbmalloc, then again), under
# /usr/bin/time.  The table of medians goes to stdout and, as Markdown, to
# bench/results/latest.md.  Exit status 1 if any run failed or any checksum
# differed between allocators.  See bench/README.md.

set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

QUICK=0
RUNS=
THREADS=
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
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

# Workload sizes: each full-size run takes roughly 0.5-1 s under glibc.
if [ "$QUICK" = 1 ]; then
    CHURN_ITERS=10000000
    XTHREAD_ITEMS=5000000
else
    CHURN_ITERS=20000000
    XTHREAD_ITEMS=10000000
fi

# ---- 1. build ---------------------------------------------------------------
BIN=$ROOT/build/bench
mkdir -p "$BIN" || exit 1
CC=${CC:-cc}
for prog in churn xthread; do
    echo "build: $CC -O2 -g -pthread -o build/bench/$prog bench/$prog.c"
    "$CC" -std=c11 -O2 -g -pthread -Wall -Wextra -o "$BIN/$prog" "bench/$prog.c" \
        || { echo "run.sh: building $prog failed" >&2; exit 1; }
done

EBB=$ROOT/build/libebbmalloc.so
if [ ! -f "$EBB" ]; then
    echo "build: $EBB missing, running 'make lib'"
    make lib || { echo "run.sh: 'make lib' failed" >&2; exit 1; }
fi

# ---- 2. peer allocators -----------------------------------------------------
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

missing=
[ -f "$JEMALLOC" ] || missing="$missing libjemalloc2"
[ -f "$TCMALLOC" ] || missing="$missing libtcmalloc-minimal4"
[ -f "$MIMALLOC" ] || missing="$missing libmimalloc2.0"
[ -x /usr/bin/time ] || missing="$missing time"
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

# name:library pairs; glibc has no library (no preload).
ALLOCS="glibc"
SPECS="glibc:"
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

WORKLOADS="churn xthread"
workload_cmd() {
    case $1 in
        churn) echo "$BIN/churn $CHURN_ITERS" ;;
        xthread) echo "$BIN/xthread $THREADS $XTHREAD_ITEMS" ;;
    esac
}

# ---- 3. run, interleaved ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbbench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
RESULTS=$TMP/results        # workload alloc round wall cpu rss_kib status
: >"$RESULTS"
FAILED=0

fail() {
    FAILED=1
    printf '%s\n' "$*" >>"$TMP/failures"
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

echo "bench: $RUNS rounds, allocators: $ALLOCS; xthread threads: $THREADS"
round=1
while [ "$round" -le "$RUNS" ]; do
    for w in $WORKLOADS; do
        cmd=$(workload_cmd "$w")
        line="round $round/$RUNS $w:"
        for spec in $SPECS; do
            name=${spec%%:*}
            lib=${spec#*:}
            # shellcheck disable=SC2086
            if [ -n "$lib" ]; then
                /usr/bin/time -f '%e %U %S %M' -o "$TMP/time" \
                    $TIMEOUT env LD_PRELOAD="$lib" $cmd >"$TMP/out" 2>"$TMP/err"
            else
                /usr/bin/time -f '%e %U %S %M' -o "$TMP/time" \
                    $TIMEOUT $cmd >"$TMP/out" 2>"$TMP/err"
            fi
            rc=$?
            # The last line of the time file holds the numbers; a line before
            # it may say "Command exited with non-zero status" or "terminated".
            # shellcheck disable=SC2046
            set -- $(tail -n 1 "$TMP/time" 2>/dev/null) x x x x
            wall=$1 rss=$4
            cpu=$(echo "$2 $3" | awk '{ printf "%.2f", $1 + $2 }')
            # All checksum= values the program printed, on one line.
            sum=$(sed -n 's/.*checksum=\(0x[0-9a-f]*\).*/\1/p' "$TMP/out" | tr '\n' ' ' | sed 's/ $//')
            status=ok
            if [ "$rc" != 0 ] || [ -z "$sum" ]; then
                status=fail
                line="$line $name=FAIL"
                msg="$w under $name (round $round): exit status $rc, $(head -n 1 "$TMP/time" 2>/dev/null)"
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
            elif [ ! -f "$TMP/ref.$w" ]; then
                # The first good run of a workload sets the reference checksum.
                echo "$sum" >"$TMP/ref.$w"
                echo "$name" >"$TMP/refname.$w"
                sed -n 's/.*ops=\([0-9]*\).*/\1/p' "$TMP/out" >"$TMP/ops.$w"
                line="$line $name=${wall}s"
            elif [ "$sum" != "$(cat "$TMP/ref.$w")" ]; then
                status=fail
                line="$line $name=BADSUM"
                fail "$w checksum under $name (round $round) is $sum, but $(cat "$TMP/ref.$w") under $(cat "$TMP/refname.$w")"
            else
                line="$line $name=${wall}s"
            fi
            echo "$w $name $round $wall $cpu $rss $status" >>"$RESULTS"
        done
        echo "$line"
    done
    round=$((round + 1))
done

# ---- 4. table ---------------------------------------------------------------
# Medians over the successful runs; ratios are ebbmalloc/peer, so below 1
# means ebbmalloc is faster or smaller.
WL_INFO=
for w in $WORKLOADS; do
    ops=$(cat "$TMP/ops.$w" 2>/dev/null)
    WL_INFO="$WL_INFO $w|$(workload_cmd "$w" | sed "s|^$BIN/||; s/ /_/g")|${ops:-?}"
done

table() {   # $1: text or md
    awk -v MODE="$1" -v WLS="$WORKLOADS" -v ALS="$ALLOCS" -v INFO="$WL_INFO" '
    function median(key, cnt, col,   i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = val[key, i, col] + 0
        for (i = 2; i <= cnt; i++) {
            t = v[i]
            for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        if (cnt % 2) return v[(cnt + 1) / 2]
        return (v[cnt / 2] + v[cnt / 2 + 1]) / 2
    }
    function ratio(a, b) { return (b > 0 && a != "") ? a / b : "" }
    function fmt_ratio(r) { return r == "" ? "-" : sprintf("%.2f", r) }
    function row(c1, c2, c3, c4, c5, c6, c7) {
        if (MODE == "md")
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", c1, c2, c3, c4, c5, c6, c7
        else
            printf "  %-10s %8s %8s %9s %5s %12s %12s\n", c1, c2, c3, c4, c5, c6, c7
    }
    BEGIN {
        nw = split(WLS, wl, " ")
        na = split(ALS, al, " ")
        ni = split(INFO, info, " ")
        for (i = 1; i <= ni; i++) {
            split(info[i], f, "|")
            cmdline[f[1]] = f[2]; gsub(/_/, " ", cmdline[f[1]])
            opcount[f[1]] = f[3]
        }
    }
    $7 == "ok" {
        k = $1 SUBSEP $2
        n[k]++
        val[k, n[k], "wall"] = $4; val[k, n[k], "cpu"] = $5; val[k, n[k], "rss"] = $6
    }
    END {
        E = "ebbmalloc"
        for (i = 1; i <= nw; i++) {
            w = wl[i]
            if (MODE == "md") {
                printf "### %s\n\n`%s` — %s allocator calls per run\n\n", w, cmdline[w], opcount[w]
                row("allocator", "wall s", "cpu s", "peak RSS MiB", "runs", "ebb/peer time", "ebb/peer RSS")
                row("---", "---:", "---:", "---:", "---:", "---:", "---:")
            } else {
                printf "%s  (%s; %s allocator calls per run)\n", w, cmdline[w], opcount[w]
                row("allocator", "wall s", "cpu s", "RSS MiB", "runs", "ebb/peer t", "ebb/peer RSS")
            }
            for (j = 1; j <= na; j++) {
                a = al[j]; k = w SUBSEP a
                if (n[k] > 0) {
                    mw[k] = median(k, n[k], "wall")
                    mc[k] = median(k, n[k], "cpu")
                    mr[k] = median(k, n[k], "rss")
                }
            }
            ke = w SUBSEP E
            for (j = 1; j <= na; j++) {
                a = al[j]; k = w SUBSEP a
                if (!(n[k] > 0)) { row(a, "FAIL", "FAIL", "FAIL", 0, "-", "-"); continue }
                rt = rr = ""
                if (a != E && n[ke] > 0) {
                    rt = ratio(mw[ke], mw[k]); rr = ratio(mr[ke], mr[k])
                    if (rt != "") { lt[a] += log(rt); ct[a]++ }
                    if (rr != "") { lr[a] += log(rr); cr[a]++ }
                }
                row(a, sprintf("%.2f", mw[k]), sprintf("%.2f", mc[k]),
                    sprintf("%.1f", mr[k] / 1024), n[k], fmt_ratio(rt), fmt_ratio(rr))
            }
            printf "\n"
        }
        if (MODE == "md") {
            printf "### geometric mean of ebbmalloc/peer over the workloads\n\n"
            printf "| peer | time | peak RSS |\n| --- | ---: | ---: |\n"
        } else {
            printf "geometric mean of ebbmalloc/peer over the workloads\n"
            printf "  %-10s %8s %9s\n", "peer", "time", "peak RSS"
        }
        for (j = 1; j <= na; j++) {
            a = al[j]
            if (a == E) continue
            gt = ct[a] > 0 ? sprintf("%.2f", exp(lt[a] / ct[a])) : "-"
            gr = cr[a] > 0 ? sprintf("%.2f", exp(lr[a] / cr[a])) : "-"
            if (MODE == "md") printf "| %s | %s | %s |\n", a, gt, gr
            else printf "  %-10s %8s %9s\n", a, gt, gr
        }
    }' "$RESULTS"
}

echo ""
echo "== medians over $RUNS rounds; ratios are ebbmalloc/peer (below 1: ebbmalloc faster/smaller) =="
echo ""
table text

# ---- Markdown report --------------------------------------------------------
mkdir -p bench/results || exit 1
OUT=bench/results/latest.md
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
# shellcheck disable=SC2086 # PEER_PKGS is a list of words
VERSIONS=$(dpkg-query -W -f='${Package} ${Version}\n' $PEER_PKGS libc6 2>/dev/null)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [ -n "$(git status --porcelain -- src include 2>/dev/null)" ]; then REV="$REV (modified)"; fi
if [ "$QUICK" = 1 ]; then MODE=quick; else MODE=full; fi
{
    echo "# ebbmalloc benchmark results"
    echo ""
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- mode: $MODE, $RUNS rounds, allocators interleaved; values are medians"
    echo "- nproc: $NPROC; xthread threads: $THREADS"
    echo "- CPU: ${CPU:-unknown}"
    echo "- kernel: $(uname -sr)"
    echo "- ebbmalloc: $REV, $EBB"
    echo "- compiler: $("$CC" --version 2>/dev/null | head -n 1)"
    echo "- peer packages (dpkg-query -W):"
    echo "$VERSIONS" | sed '/^$/d; s/^/  - /'
    echo ""
    echo "Ratios are ebbmalloc/peer: below 1 means ebbmalloc is faster (wall time) or"
    echo "smaller (peak RSS) than that peer.  RSS is the process's peak resident set."
    echo ""
    table md
    if [ "$FAILED" = 1 ]; then
        echo ""
        echo "**FAILED: at least one run crashed or produced a wrong checksum; see the console output.**"
    fi
} >"$OUT"
echo ""
echo "wrote $OUT"

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
