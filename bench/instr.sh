#!/bin/sh
# make bench-instr: instructions per small malloc+free pair, counted by
# callgrind (repeatable, unlike time), for ebbmalloc and mimalloc (and the
# others for reference).  The figure is (I(2N) - I(N)) / N.
set -e
B=build/bench
mkdir -p "$B"
cc -O2 -g -pthread -o "$B/instr" bench/instr.c
MA=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
count() { # lib mode n
    out=$(mktemp)
    if [ -n "$1" ]; then pre="LD_PRELOAD=$1"; else pre=""; fi
    env $pre valgrind --tool=callgrind --callgrind-out-file=/dev/null "$B/instr" "$2" "$3" 2> "$out" || true
    grep -o 'Collected : [0-9]*' "$out" | awk '{print $3}'
    rm -f "$out"
}
N=200000
printf '%-10s %12s %12s\n' allocator same-thread cross-thread
for pair in "glibc:" "ebbmalloc:$(pwd)/build/libebbmalloc.so" "mimalloc:/usr/lib/$MA/libmimalloc.so.2" \
            "jemalloc:/usr/lib/$MA/libjemalloc.so.2" "tcmalloc:/usr/lib/$MA/libtcmalloc_minimal.so.4"; do
    name=${pair%%:*}
    lib=${pair#*:}
    [ -z "$lib" ] || [ -f "$lib" ] || continue
    line="$name"
    for mode in same cross; do
        a=$(count "$lib" $mode $N)
        b=$(count "$lib" $mode $((2 * N)))
        line="$line $(awk -v a="$a" -v b="$b" -v n=$N 'BEGIN { printf "%.1f", (b - a) / n }')"
    done
    printf '%-10s %12s %12s\n' $line
done
