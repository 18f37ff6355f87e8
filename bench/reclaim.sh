#!/bin/sh
# bench/reclaim.sh — the reclamation section of the benchmarks: how much
# freed memory each allocator gives back to the kernel, and how soon.
#
#   sh bench/reclaim.sh ROUNDS SCALE_MIB MDFILE "name:lib name:lib ..." [ROWS]
#
# Runs build/bench/reclaim (bench/reclaim.c; built here if missing or stale)
# for each pattern under each allocator, interleaved round by round.  A spec
# with an empty lib (glibc:) runs without a preload.  Each run appends one
# row to the results file ROWS (suite "reclaim"; a temporary file when
# ROWS is not given; bench/README.md gives the columns).  Then
# bench/report.py prints, per pattern, the medians of resident memory above
# the program's baseline at 0, 100 and 1000 ms after the last free, the peak
# before the frees and the time of the free phase, then a PASS/MISS line for
# the target "ebbmalloc's RSS at 100 ms is the lowest of all allocators",
# and writes the same as Markdown to MDFILE ("-": none).
# Exit status 1 if a run failed or a checksum differed between allocators.
# Called by bench/run.sh; see bench/README.md.

set -u
cd "$(dirname "$0")/.." || exit 1

[ $# -ge 4 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ROUNDS=$1 SCALE=$2 MDFILE=$3 SPECS=$4 ROWS=${5:-}
case $ROUNDS in ''|*[!0-9]*|0) echo "reclaim.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
case $SCALE in ''|*[!0-9]*) echo "reclaim.sh: SCALE_MIB must be an integer" >&2; exit 2 ;; esac
[ "$SCALE" -ge 16 ] || { echo "reclaim.sh: SCALE_MIB must be at least 16" >&2; exit 2; }

PATTERNS=${RECLAIM_PATTERNS:-"small pinned threads big8m realloc medium sparse sparse-exited sparse-trim sparse-remote"}
# A tie within this many KiB counts as the lowest (page tables, stacks and
# start-up metadata differ by up to ~100 KiB between allocators).
TIE_KIB=256

BIN=build/bench/reclaim
CC=${CC:-cc}
if [ ! -x "$BIN" ] || [ bench/reclaim.c -nt "$BIN" ] || [ bench/bench.h -nt "$BIN" ]; then
    mkdir -p build/bench || exit 1
    "$CC" -std=c11 -O2 -g -pthread -Wall -Wextra -o "$BIN" bench/reclaim.c ||
        { echo "reclaim.sh: building $BIN failed" >&2; exit 1; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbreclaim.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
if [ -z "$ROWS" ]; then
    ROWS=$TMP/rows.tsv
    printf 'suite\talloc\tworkload\tround\tvalue\tcpu_s\trss_kib\tstatus\tmetrics\n' >"$ROWS"
fi
meta() {    # key value: a "# key: value" line of the results file
    printf '# %s: %s\n' "$1" "$2" >>"$ROWS"
}
FAILED=0
TIMEOUT=
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout --foreground -k 10 120"

describe() {
    if [ $((SCALE % 1024)) = 0 ]; then gib="$((SCALE / 1024)) GiB"; else gib="$SCALE MiB"; fi
    case $1 in
        small) echo "$gib of 16..256-byte blocks, freed in random order" ;;
        pinned) echo "$gib of 16..256-byte blocks, one 64-byte block allocated last stays live" ;;
        threads) echo "4 threads x $((SCALE / 4)) MiB of 200-byte blocks, freed, threads exit" ;;
        big8m) echo "$((SCALE * 100 / 1024)) blocks of 8 MiB, freed in random order" ;;
        realloc) echo "one buffer realloc'd (doubling) up to $((SCALE / 2)) MiB, then freed" ;;
        medium) echo "$gib of 4..64 KiB blocks, freed in random order" ;;
        sparse) echo "$((SCALE / 2)) MiB of 64-byte blocks, all but one in 1024 freed in random order" ;;
        sparse-exited) echo "the same in a thread that then exits" ;;
        sparse-trim) echo "the same, then malloc_trim(0) (part of the free phase)" ;;
        sparse-remote) echo "the same, allocated by a thread that then sleeps, freed by another" ;;
    esac
}

fail() {
    FAILED=1
    printf '!!! FAILURE: %s\n' "$*" >&2
}

ALLOCS=
for spec in $SPECS; do ALLOCS="$ALLOCS ${spec%%:*}"; done
echo "reclaim: $ROUNDS round(s), scale $SCALE MiB, allocators:$ALLOCS"
meta reclaim_rounds "$ROUNDS"
meta reclaim_scale_mib "$SCALE"
meta reclaim_tie_kib "$TIE_KIB"
meta reclaim_allocators "$ALLOCS"
meta reclaim_patterns "$PATTERNS"
for p in $PATTERNS; do meta reclaim_pattern "$(printf '%s\t%s' "$p" "$(describe "$p")")"; done

round=1
while [ "$round" -le "$ROUNDS" ]; do
    for p in $PATTERNS; do
        line="round $round/$ROUNDS $p:"
        for spec in $SPECS; do
            name=${spec%%:*} lib=${spec#*:}
            # shellcheck disable=SC2086
            if [ -n "$lib" ]; then
                $TIMEOUT env LD_PRELOAD="$lib" "$BIN" "$p" "$SCALE" >"$TMP/out" 2>"$TMP/err"
            else
                $TIMEOUT "$BIN" "$p" "$SCALE" >"$TMP/out" 2>"$TMP/err"
            fi
            rc=$?
            out=$(cat "$TMP/out")
            get() { printf '%s\n' "$out" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
            sum=$(get checksum)
            status=ok
            if [ "$rc" != 0 ] || [ -z "$sum" ]; then
                status=fail
                fail "reclaim $p under $name (round $round): exit status $rc $(head -n 3 "$TMP/err" | tr '\n' ' ')"
            elif grep -q 'cannot be preloaded\|ebbmalloc: warning' "$TMP/err"; then
                status=fail
                fail "reclaim $p under $name (round $round): $(head -n 1 "$TMP/err")"
            elif [ ! -f "$TMP/ref.$p" ]; then
                echo "$sum $name" >"$TMP/ref.$p"
            elif [ "$sum" != "$(cut -d' ' -f1 "$TMP/ref.$p")" ]; then
                status=fail
                fail "reclaim $p checksum under $name (round $round) is $sum, but $(cat "$TMP/ref.$p")"
            fi
            if [ "$status" = ok ]; then
                printf 'reclaim\t%s\t%s\t%s\t-\t-\t-\tok\tpeak_kib=%s,rss0_kib=%s,rss100_kib=%s,rss1000_kib=%s,free_ms=%s\n' \
                    "$name" "$p" "$round" "$(get peak_kib)" "$(get rss0_kib)" "$(get rss100_kib)" \
                    "$(get rss1000_kib)" "$(get free_ms)" >>"$ROWS"
                line="$line $name=$(awk -v k="$(get rss100_kib)" 'BEGIN { printf "%.1fMiB", k / 1024 }')"
            else
                printf 'reclaim\t%s\t%s\t%s\t-\t-\t-\tfail\t-\n' "$name" "$p" "$round" >>"$ROWS"
                line="$line $name=FAIL"
            fi
        done
        echo "$line"
    done
    round=$((round + 1))
done

echo ""
echo "== reclamation: MiB above baseline at 0/100/1000 ms after the frees; medians of $ROUNDS round(s) =="
echo ""
python3 bench/report.py section reclaim "$ROWS" || FAILED=1
if [ "$MDFILE" != - ]; then
    python3 bench/report.py section reclaim "$ROWS" --md >"$MDFILE" || FAILED=1
fi
[ "$FAILED" = 0 ] || exit 1
exit 0
