#!/bin/sh
# bench/reclaim.sh — the reclamation section of the benchmarks: how much
# freed memory each allocator gives back to the kernel, and how soon.
#
#   sh bench/reclaim.sh ROUNDS SCALE_MIB MDFILE "name:lib name:lib ..." [DATAFILE]
#
# Runs build/bench/reclaim (bench/reclaim.c; built here if missing or stale)
# for each pattern under each allocator, interleaved round by round.  A spec
# with an empty lib (glibc:) runs without a preload.  Prints, per pattern,
# the medians of resident memory above the program's baseline at 0, 100 and
# 1000 ms after the last free, the peak before the frees and the time of the
# free phase, then a PASS/MISS line for the target "ebbmalloc's RSS at
# 100 ms is the lowest of all allocators".  Writes the same as Markdown to
# MDFILE and, if given, the raw runs to DATAFILE, one line per run:
#   pattern allocator round peak_kib rss0_kib rss100_kib rss1000_kib free_ms status
# Exit status 1 if a run failed or a checksum differed between allocators.
# Called by bench/run.sh; see bench/README.md.

set -u
cd "$(dirname "$0")/.." || exit 1

[ $# -ge 4 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ROUNDS=$1 SCALE=$2 MDFILE=$3 SPECS=$4 DATAFILE=${5:-}
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
DATA=$TMP/data
: >"$DATA"
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
                echo "$p $name $round $(get peak_kib) $(get rss0_kib) $(get rss100_kib) $(get rss1000_kib) $(get free_ms) ok" >>"$DATA"
                line="$line $name=$(awk -v k="$(get rss100_kib)" 'BEGIN { printf "%.1fMiB", k / 1024 }')"
            else
                echo "$p $name $round - - - - - fail" >>"$DATA"
                line="$line $name=FAIL"
            fi
        done
        echo "$line"
    done
    round=$((round + 1))
done

[ -z "$DATAFILE" ] || cp "$DATA" "$DATAFILE"

DESCS=
for p in $PATTERNS; do DESCS="$DESCS$p|$(describe "$p");"; done

report() {  # $1: text or md
    awk -v MODE="$1" -v PATS="$PATTERNS" -v ALS="$ALLOCS" -v DESCS="$DESCS" \
        -v ROUNDS="$ROUNDS" -v TIE="$TIE_KIB" '
    function median(key, cnt, col,   i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = val[key, i, col] + 0
        for (i = 2; i <= cnt; i++) {
            t = v[i]
            for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
    }
    function mib(k) { return sprintf("%.1f", k / 1024) }
    function row(a, b, c, d, e, f) {
        if (MODE == "md") printf "| %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, f
        else printf "  %-10s %9s %9s %9s %9s %9s\n", a, b, c, d, e, f
    }
    BEGIN {
        np = split(PATS, pat, " "); na = split(ALS, al, " ")
        nd = split(DESCS, d, ";")
        for (i = 1; i <= nd; i++) { split(d[i], f, "|"); desc[f[1]] = f[2] }
    }
    $9 == "ok" {
        k = $1 SUBSEP $2; n[k]++
        val[k, n[k], "peak"] = $4; val[k, n[k], "r0"] = $5
        val[k, n[k], "r100"] = $6; val[k, n[k], "r1000"] = $7; val[k, n[k], "ms"] = $8
    }
    END {
        E = "ebbmalloc"; pass = 0
        if (MODE == "md") {
            printf "Resident memory in MiB above the program'"'"'s baseline (taken before it allocates),\n"
            printf "at 0, 100 and 1000 ms after the last free; medians of %d round(s). \"free ms\" is\n", ROUNDS
            printf "the time of the free phase.  Target: ebbmalloc'"'"'s RSS at 100 ms is the lowest of\n"
            printf "all allocators (a tie within %d KiB counts).\n\n", TIE
        }
        for (i = 1; i <= np; i++) {
            p = pat[i]
            if (MODE == "md") {
                printf "#### %s — %s\n\n", p, desc[p]
                row("allocator", "peak MiB", "@0 ms", "@100 ms", "@1000 ms", "free ms")
                row("---", "---:", "---:", "---:", "---:", "---:")
            } else {
                printf "%s  (%s)\n", p, desc[p]
                row("allocator", "peak MiB", "@0ms", "@100ms", "@1000ms", "free ms")
            }
            best = ""; bestname = ""; ebb = ""
            for (j = 1; j <= na; j++) {
                a = al[j]; k = p SUBSEP a
                if (!(n[k] > 0)) { row(a, "FAIL", "FAIL", "FAIL", "FAIL", "FAIL"); continue }
                r100 = median(k, n[k], "r100")
                row(a, mib(median(k, n[k], "peak")), mib(median(k, n[k], "r0")), mib(r100),
                    mib(median(k, n[k], "r1000")), sprintf("%.1f", median(k, n[k], "ms")))
                if (a == E) ebb = r100
                else if (best == "" || r100 < best) { best = r100; bestname = a }
            }
            if (ebb == "" || best == "") verdict = "MISS (no result)"
            else if (ebb <= best) verdict = "PASS"
            else if (ebb <= best + TIE) verdict = sprintf("PASS (tie: +%.2f MiB)", (ebb - best) / 1024)
            else verdict = "MISS"
            if (verdict ~ /^PASS/) pass++
            line = sprintf("target %s: ebbmalloc @100ms %s MiB, lowest peer %s MiB (%s): %s", p,
                           ebb == "" ? "-" : mib(ebb), best == "" ? "-" : mib(best), bestname, verdict)
            if (MODE == "md") printf "\n%s\n\n", line
            else printf "  %s\n\n", line
        }
        line = sprintf("reclamation target (ebbmalloc lowest RSS at 100 ms on every pattern): %d/%d patterns: %s",
                       pass, np, pass == np ? "PASS" : "MISS")
        if (MODE == "md") printf "**%s**\n", line
        else print line
    }' "$DATA"
}

echo ""
echo "== reclamation: MiB above baseline at 0/100/1000 ms after the frees; medians of $ROUNDS round(s) =="
echo ""
report text
report md >"$MDFILE"
[ "$FAILED" = 0 ] || exit 1
exit 0
