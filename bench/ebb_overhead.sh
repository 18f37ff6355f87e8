#!/bin/sh
# The cost of watching: a program under `ebb run` against the same program
# with libebbmalloc.so merely preloaded, interleaved, medians of ROUNDS.
# Usage: sh bench/ebb_overhead.sh [ROUNDS] [OUT.md]
ROUNDS=${1:-5}
OUT=${2:-bench/results/ebb-overhead.md}
LIB=$(pwd)/build/libebbmalloc.so
EBB=$(pwd)/build/ebb
B=build/bench
mkdir -p "$B" "$(dirname "$OUT")"
cc -O2 -pthread -o "$B/churn" bench/churn.c
cc -O2 -pthread -o "$B/xthread" bench/xthread.c
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
seconds() { # command... -> wall seconds, to the millisecond (time(1) has 10 ms)
    t0=$(date +%s%N)
    "$@" > /dev/null 2>&1
    t1=$(date +%s%N)
    echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) / 1e9 }'
}
{
    echo "# ebb run against a plain preload"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS rounds interleaved, medians of wall time;"
    echo "ebb samples every 50 ms (its default)."
    echo
    echo "| workload | preloaded s | under ebb run s | ratio |"
    echo "| --- | ---: | ---: | ---: |"
} > "$OUT"
for w in "churn 20000000" "xthread 2 8000000" "python"; do
    set -- $w
    name=$1
    : > "$B/.a"
    : > "$B/.b"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        if [ "$name" = python ]; then
            seconds env LD_PRELOAD="$LIB" PYTHONMALLOC=malloc /usr/bin/python3 -S bench/objects.py 2 >> "$B/.a"
            seconds env PYTHONMALLOC=malloc "$EBB" run --quiet -- /usr/bin/python3 -S bench/objects.py 2 >> "$B/.b"
        else
            seconds env LD_PRELOAD="$LIB" "$B/$@" >> "$B/.a"
            seconds "$EBB" run --quiet -- "$B/$@" >> "$B/.b"
        fi
        r=$((r + 1))
    done
    a=$(median < "$B/.a")
    b=$(median < "$B/.b")
    awk -v n="$name" -v a="$a" -v b="$b" 'BEGIN { printf "| %s | %.3f | %.3f | %.3f |\n", n, a, b, b / a }' >> "$OUT"
done
cat "$OUT"
