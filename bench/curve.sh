#!/bin/sh
# bench/curve.sh — time against peak RSS on the big-buffer workload
# (bench/bigbuf.c, mimalloc-bench's malloc-large) for a few of ebbmalloc's
# retention settings, beside the peers' points.
#
#   sh bench/curve.sh ROUNDS ITERATIONS EBB_LIB RESULTS MDFILE
#
# RESULTS is bench/run.sh's results file (workload alloc round value cpu
# rss_kib status): the peers' and ebbmalloc's bigbuf runs come from there.
# The retention settings run here, interleaved round by round:
#   keep-none   EBB_RETAIN_MAX=0: every freed buffer goes back at once
#   retain-64M  EBB_RETAIN_MAX=64M (the bound of earlier versions)
#   keep-all    EBB_RETAIN_MAX=1024G, EBB_RECLAIM_DELAY_MS=3600000: nothing goes back
# Prints the points (medians) sorted by peak RSS with the time ratio to the
# fastest peer and the RSS ratio to glibc, and writes the same as Markdown.
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -eq 5 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ROUNDS=$1 ITERS=$2 EBB=$3 RESULTS=$4 MDFILE=$5
BIN=build/bench/bigbuf
[ -x "$BIN" ] || { echo "curve.sh: $BIN missing (bench/run.sh builds it)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbcurve.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
POINTS=$TMP/points          # name round wall_s rss_kib
awk '$1 == "bigbuf" && $7 == "ok" { print $2, $3, $4, $6 }' "$RESULTS" >"$POINTS"
for round in $(seq "$ROUNDS"); do
    for v in keep-none retain-64M keep-all; do
        case $v in
            keep-none) E="EBB_RETAIN_MAX=0" ;;
            retain-64M) E="EBB_RETAIN_MAX=64M" ;;
            keep-all) E="EBB_RETAIN_MAX=1024G EBB_RECLAIM_DELAY_MS=3600000" ;;
        esac
        # shellcheck disable=SC2086 # E is a list of assignments
        if /usr/bin/time -f '%e %M' -o "$TMP/time" env LD_PRELOAD="$EBB" $E "$BIN" "$ITERS" >/dev/null 2>&1; then
            echo "$v $round $(cat "$TMP/time")" >>"$POINTS"
        else
            echo "curve.sh: $v failed" >&2
        fi
    done
done
table() {   # $1: text or md
    awk -v MODE="$1" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { n[$1]++; T[$1, n[$1]] = $3; R[$1, n[$1]] = $4 }
        END {
            fastest = 0
            for (k in n) {
                for (i = 1; i <= n[k]; i++) { ta[i] = T[k, i]; ra[i] = R[k, i] }
                t[k] = median(ta, n[k]); r[k] = median(ra, n[k]) / 1024
                peer = k == "glibc" || k == "jemalloc" || k == "tcmalloc" || k == "mimalloc"
                if (peer && (fastest == 0 || t[k] < fastest)) { fastest = t[k]; fname = k }
                keys[++m] = k
            }
            for (i = 2; i <= m; i++) for (j = i; j > 1 && r[keys[j - 1]] > r[keys[j]]; j--) { s = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = s }
            if (MODE == "md") { print "| allocator / setting | time s | peak RSS MiB | time / fastest peer (" fname ") | RSS / glibc |"; print "|---|---:|---:|---:|---:|" }
            else printf "  %-12s %8s %10s %14s %12s\n", "point", "time s", "RSS MiB", "t / " fname, "RSS / glibc"
            for (i = 1; i <= m; i++) {
                k = keys[i]
                rt = fastest > 0 ? sprintf("%.2f", t[k] / fastest) : "-"
                rr = ("glibc" in r) && r["glibc"] > 0 ? sprintf("%.2f", r[k] / r["glibc"]) : "-"
                if (MODE == "md") printf "| %s | %.2f | %.0f | %s | %s |\n", k, t[k], r[k], rt, rr
                else printf "  %-12s %8.2f %10.0f %14s %12s\n", k, t[k], r[k], rt, rr
            }
        }' "$POINTS"
}
table text
{
    echo "\`bigbuf $ITERS\` (20 buffers of 5-25 MiB replaced at random, zero-filled; medians of $ROUNDS rounds):"
    echo "ebbmalloc's defaults and three retention settings beside the peers, sorted by peak RSS."
    echo "\`keep-none\` is \`EBB_RETAIN_MAX=0\`, \`retain-64M\` \`EBB_RETAIN_MAX=64M\`, \`keep-all\`"
    echo "\`EBB_RETAIN_MAX=1024G EBB_RECLAIM_DELAY_MS=3600000\`."
    echo ""
    table md
} >"$MDFILE"
