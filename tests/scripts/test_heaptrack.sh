#!/bin/sh
# test: heaptrack        long -- "$LIB" "$B/ebb"
# The heap profiler against heaptrack, which records every allocation:
# python3, sqlite3 and git, each run under heaptrack and under ebbmalloc
# with the profiler on (EBB_PROFILE_RATE=4096, so that a site of 5 % of
# the heap has hundreds of samples).  Per program, the sites by bytes live
# at the peak (heaptrack_print --flamegraph-cost-type peak; ebb profile
# --folded-type peak), a stack's site being its innermost named frame
# (tests/scripts/sites.awk):
#   - every site above 5 % of the heap in either is within 15 % of
#     heaptrack's bytes;
#   - the top 10 match: of heaptrack's top 10 sites (those of 0.1 % of the
#     heap or more), 8 or more are among ebb's top 15, and each of ebb's
#     top 10 of 1 % or more is among heaptrack's top 15.  (The dynamic
#     loader's allocations before the library's constructor are not
#     sampled: heaptrack's `call_init`.)
# Usage: sh tests/scripts/test_heaptrack.sh LIB EBB
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
LIB=$1
EBB=$2
if ! command -v heaptrack > /dev/null || ! command -v heaptrack_print > /dev/null; then
    bad "heaptrack is not installed (tools/deps.sh test installs it)"
    finish
    exit
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

# compare NAME COMMAND...
compare() {
    name=$1
    shift
    heaptrack -o "$WORK/$name" "$@" > "$WORK/$name.ht-out" 2>&1
    heaptrack_print -f "$WORK/$name.zst" -p 0 -a 0 -T 0 --flamegraph-cost-type peak \
        -F "$WORK/$name.ht-folded" > /dev/null 2>&1
    check "$name: heaptrack recorded it" test -s "$WORK/$name.ht-folded"
    "$@" > "$WORK/$name.glibc-out" 2>&1
    env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_PROFILE_OUT="$WORK/$name.prof" "$@" \
        > "$WORK/$name.ebb-out" 2>&1
    check "$name: its output under ebbmalloc is its output under glibc" cmp -s "$WORK/$name.glibc-out" "$WORK/$name.ebb-out"
    "$EBB" profile --folded "$WORK/$name.ebb-folded" --folded-type peak "$WORK/$name.prof" > /dev/null 2>&1
    check "$name: ebb profile wrote the folded stacks" test -s "$WORK/$name.ebb-folded"
    awk -f "$HERE/sites.awk" "$WORK/$name.ht-folded" | sort -rn > "$WORK/$name.ht-sites"
    awk -f "$HERE/sites.awk" "$WORK/$name.ebb-folded" | sort -rn > "$WORK/$name.ebb-sites"
    # One line per finding, FAIL or ok, from the two site lists.
    awk -v name="$name" '
        FNR == 1 { file++ }
        $2 == "TOTAL" { total[file] = $1; next }
        {
            site = $0; sub(/^[0-9]+ /, "", site)
            bytes[file, site] = $1
            rank[file, site] = ++n[file]
            order[file, n[file]] = site
        }
        END {
            for (f = 1; f <= 2; f++)
                for (i = 1; i <= n[f]; i++) {
                    s = order[f, i]
                    if (bytes[f, s] < 0.05 * total[f] || seen[s]++)
                        continue
                    h = bytes[1, s] + 0; e = bytes[2, s] + 0
                    ok = (h > 0 && e >= 0.85 * h && e <= 1.15 * h)
                    printf "%s %s: %s, %.2f MiB under heaptrack, %.2f MiB estimated\n", ok ? "ok" : "FAIL",
                        name, s, h / 1048576, e / 1048576
                }
            found = 0; listed = 0
            for (i = 1; i <= 10 && i <= n[1]; i++) {
                s = order[1, i]
                if (bytes[1, s] < 0.001 * total[1])
                    break
                listed++
                if (rank[2, s] && rank[2, s] <= 15)
                    found++
                else
                    missing = missing " " s
            }
            printf "%s %s: %d of heaptrack'"'"'s top %d sites among ebb'"'"'s top 15 (missing:%s)\n",
                (found >= listed - 2) ? "ok" : "FAIL", name, found, listed, missing
            for (i = 1; i <= 10 && i <= n[2]; i++) {
                s = order[2, i]
                if (bytes[2, s] < 0.01 * total[2])
                    break
                ok = (rank[1, s] && rank[1, s] <= 15)
                printf "%s %s: ebb'"'"'s site %s among heaptrack'"'"'s top 15\n", ok ? "ok" : "FAIL", name, s
            }
        }' "$WORK/$name.ht-sites" "$WORK/$name.ebb-sites" > "$WORK/$name.findings"
    while IFS= read -r line; do
        case $line in
        ok*) ok ;;
        *) bad "${line#FAIL }" ;;
        esac
    done < "$WORK/$name.findings"
    # The figures, for the log.
    grep -E '^(ok|FAIL) [a-z0-9]+: .* MiB under heaptrack' "$WORK/$name.findings" | sed 's/^[a-zA-Z]* /heaptrack: /'
}

compare python3 /usr/bin/python3 "$REPO/tests/programs/heap_sites.py"
compare sqlite3 /usr/bin/sqlite3 :memory: ".read $REPO/tests/programs/heap_sites.sql"
compare git git -C "$REPO" log -p -n 400
finish
