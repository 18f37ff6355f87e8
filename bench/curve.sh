#!/bin/sh
# bench/curve.sh — time against peak RSS on the big-buffer workload
# (bench/bigbuf.c, mimalloc-bench's malloc-large) for a few of ebbmalloc's
# retention settings, beside the peers' points.
#
#   sh bench/curve.sh ROUNDS ITERATIONS EBB_LIB ROWS MDFILE
#
# ROWS is bench/run.sh's results file (bench/README.md gives the columns):
# the peers' and ebbmalloc's bigbuf runs come from there (suite "speed"),
# and each run here appends a row to it (suite "curve": wall seconds and
# peak RSS from time(1)).  The retention settings run here, interleaved
# round by round:
#   keep-none   EBB_RETAIN_MAX=0: every freed buffer goes back at once
#   retain-64M  EBB_RETAIN_MAX=64M (the bound of earlier versions)
#   keep-all    EBB_RETAIN_MAX=1024G, EBB_RECLAIM_DELAY_MS=3600000: nothing goes back
# Then bench/report.py prints the points (medians) sorted by peak RSS with
# the time ratio to the fastest peer and the RSS ratio to glibc, and writes
# the same as Markdown to MDFILE ("-": none).
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -eq 5 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ROUNDS=$1 ITERS=$2 EBB=$3 ROWS=$4 MDFILE=$5
BIN=build/bench/bigbuf
[ -x "$BIN" ] || { echo "curve.sh: $BIN missing (bench/run.sh builds it)" >&2; exit 1; }
[ -f "$ROWS" ] || { echo "curve.sh: $ROWS missing" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbcurve.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
printf '# curve_rounds: %s\n# curve_iterations: %s\n' "$ROUNDS" "$ITERS" >>"$ROWS"
FAILED=0
for round in $(seq "$ROUNDS"); do
    for v in keep-none retain-64M keep-all; do
        case $v in
            keep-none) E="EBB_RETAIN_MAX=0" ;;
            retain-64M) E="EBB_RETAIN_MAX=64M" ;;
            keep-all) E="EBB_RETAIN_MAX=1024G EBB_RECLAIM_DELAY_MS=3600000" ;;
        esac
        # shellcheck disable=SC2086 # E is a list of assignments
        if /usr/bin/time -f '%e %M' -o "$TMP/time" env LD_PRELOAD="$EBB" $E "$BIN" "$ITERS" >/dev/null 2>&1; then
            read -r wall rss <"$TMP/time"
            printf 'curve\t%s\tbigbuf\t%s\t%s\t-\t%s\tok\t-\n' "$v" "$round" "$wall" "$rss" >>"$ROWS"
        else
            printf 'curve\t%s\tbigbuf\t%s\t-\t-\t-\tfail\t-\n' "$v" "$round" >>"$ROWS"
            echo "curve.sh: $v failed" >&2
        fi
    done
done
python3 bench/report.py section curve "$ROWS" || FAILED=1
if [ "$MDFILE" != - ]; then
    python3 bench/report.py section curve "$ROWS" --md >"$MDFILE" || FAILED=1
fi
exit "$FAILED"
