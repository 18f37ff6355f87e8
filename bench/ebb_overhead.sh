#!/bin/sh
# The cost of watching: a program under `ebb run` against the same program
# with libebbmalloc.so merely preloaded, interleaved, medians of ROUNDS.
# Usage: sh bench/ebb_overhead.sh [ROUNDS] [OUT.md]
# Each run appends a row to a results file (suite "overhead", alloc
# "preload" or "ebb-run"; bench/README.md gives the columns), kept beside
# OUT as OUT with -runs.txt for .md; bench/report.py writes OUT from it.
ROUNDS=${1:-5}
OUT=${2:-bench/results/ebb-overhead.md}
LIB=$(pwd)/build/libebbmalloc.so
EBB=$(pwd)/build/ebb
B=build/bench
REPORT=$(dirname "$0")/report.py
mkdir -p "$B" "$(dirname "$OUT")"
cc -O2 -pthread -o "$B/churn" bench/churn.c
cc -O2 -pthread -o "$B/xthread" bench/xthread.c
ROWS=$(mktemp) || exit 1
trap 'rm -f "$ROWS"' EXIT
printf 'suite\talloc\tworkload\tround\tvalue\tcpu_s\trss_kib\tstatus\tmetrics\n' > "$ROWS"
printf '# date: %s\n# rounds: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$ROUNDS" >> "$ROWS"
run() { # alloc workload round command...: one row, wall seconds to the millisecond
    alloc=$1 name=$2 round=$3
    shift 3
    t0=$(date +%s%N)
    if "$@" > /dev/null 2>&1; then status=ok; else status=fail; fi
    t1=$(date +%s%N)
    printf 'overhead\t%s\t%s\t%s\t%s\t-\t-\t%s\t-\n' "$alloc" "$name" "$round" \
        "$(echo "$t0 $t1" | awk '{ printf "%.3f", ($2 - $1) / 1e9 }')" "$status" >> "$ROWS"
}
for w in "churn 20000000" "xthread 2 8000000" "python"; do
    # shellcheck disable=SC2086 # w is a command and its arguments
    set -- $w
    name=$1
    shift
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        if [ "$name" = python ]; then
            run preload "$name" $((r + 1)) env LD_PRELOAD="$LIB" PYTHONMALLOC=malloc /usr/bin/python3 -S bench/objects.py 2
            run ebb-run "$name" $((r + 1)) env PYTHONMALLOC=malloc "$EBB" run --quiet -- /usr/bin/python3 -S bench/objects.py 2
        else
            run preload "$name" $((r + 1)) env LD_PRELOAD="$LIB" "$B/$name" "$@"
            run ebb-run "$name" $((r + 1)) "$EBB" run --quiet -- "$B/$name" "$@"
        fi
        r=$((r + 1))
    done
done
python3 "$REPORT" overhead "$ROWS" "$OUT" || exit 1
cp "$ROWS" "${OUT%.md}-runs.txt"
cat "$OUT"
