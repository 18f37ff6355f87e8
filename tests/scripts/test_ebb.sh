#!/bin/sh
# test: ebb              -- "$B"
# The ebb command on a bundled phase program (tests/programs/phases.c).
# Prints "N passed, N failed".  Usage: sh tests/scripts/test_ebb.sh BUILD_DIR
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
B=$1
EBB=$B/ebb
PHASES=$B/tests/phases
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
between() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

# The phases: 64 MiB in use at the peak, given back after the free phase.
"$EBB" run --csv "$WORK/run.csv" --html "$WORK/run.html" -- "$PHASES" 64 > "$WORK/out" 2> "$WORK/err"
check "ebb run succeeds" test $? -eq 0
row=$(awk '$1 ~ /^[0-9]+$/ && $2 == "phases" { print; exit }' "$WORK/err")
peak_used=$(echo "$row" | awk '{ print $3 }')
reclaimed=$(echo "$row" | awk '{ print $8 }')
mallocs=$(echo "$row" | awk '{ print $10 }')
check "the summary's peak in use ($peak_used MiB) is the 64 MiB allocated" between "$peak_used" 64 64.5
check "memory was reclaimed after the free phase ($reclaimed MiB)" between "$reclaimed" 32 100000
check "malloc calls counted ($mallocs)" between "$mallocs" 81920 90000
check "a size-class table" grep -q '^ *4096 *16384 *16384 *0 *0$' "$WORK/err"

# The heap profile (ebb run --profile): the sites named, fill()'s 80 MiB
# (64 MiB, then 16) estimated: 160 samples at the default rate, a spread
# of 8%; the bounds are 30% (almost 4 spreads) either side.
"$EBB" run --profile "$WORK/p.prof" -- "$PHASES" 64 > "$WORK/pout" 2> "$WORK/perr"
check "ebb run --profile succeeds" test $? -eq 0
check "the profile is written" grep -q '^ebbmalloc-profile 1' "$WORK/p.prof"
fill_mib=$(awk '/^allocated:/ { t = 1 } t && $3 == "fill" { print $1; exit }' "$WORK/pout")
check "the allocated table names fill() with about 80 MiB (${fill_mib:-none})" between "${fill_mib:-0}" 56 104
"$EBB" profile --folded "$WORK/p.folded" "$WORK/p.prof" > /dev/null
check "folded stacks: main;...;fill with bytes" grep -qE '(^|;)main;(.*;)?fill [0-9]+$' "$WORK/p.folded"

# ebb stats --profile: a running program's profile, asked for while it
# holds 64 MiB.
"$EBB" run --profile "$WORK/held.prof" --quiet -- "$PHASES" hold 64 "$WORK/held.pid" > /dev/null 2>&1 &
for _ in $(seq 100); do [ -s "$WORK/held.pid" ] && break; sleep 0.1; done
"$EBB" stats --profile "$(cat "$WORK/held.pid")" > "$WORK/held.out" 2>&1
check "ebb stats --profile succeeds" test $? -eq 0
held_mib=$(awk '/^live when written/ { t = 1 } t && $3 == "fill" { print $1; exit }' "$WORK/held.out")
check "the running program's live blocks: fill() with about 64 MiB (${held_mib:-none})" between "${held_mib:-0}" 40 90
wait

# The CSV: a header and well-formed rows, time going forward.
check "CSV header" sh -c "head -n 1 '$WORK/run.csv' | grep -q '^pid,program,t_ms,in_use,freed_retained,.*,kept_predicted,refaulted$'"
check "CSV rows well formed" awk -F, 'NR == 1 { n = NF; next }
    NF != n || $1 !~ /^[0-9]+$/ || $3 !~ /^[0-9.]+$/ { bad = 1 }
    $3 + 0 < last[$1] { bad = 1 } { last[$1] = $3 + 0; rows++ }
    END { exit bad || rows < 10 }' "$WORK/run.csv"
check "CSV peak matches the summary" awk -F, -v p="$peak_used" 'NR > 1 && $4 > m { m = $4 }
    END { exit !(m / 1048576 >= p - 0.1 && m / 1048576 <= p + 0.1) }' "$WORK/run.csv"

# Exit status and death by signal pass through.
"$EBB" run --quiet -- "$PHASES" 2 7
check "the exit status passes through" test $? -eq 7
sh -c "'$EBB' run --quiet -- '$PHASES' signal" 2> "$WORK/sig"
rc=$?
check "a death by signal passes through ($rc)" test "$rc" -eq $((128 + 10))
"$EBB" run -- "$PHASES" signal 2> "$WORK/sig2" > /dev/null
check "the summary names the signal" grep -q 'killed by signal 10' "$WORK/sig2"

# Exec'd children are followed, one series each.
"$EBB" run --csv "$WORK/spawn.csv" -- "$PHASES" spawn > /dev/null 2> "$WORK/spawn.err"
check "spawn runs" test $? -eq 0
procs=$(awk -F, 'NR > 1 { seen[$1 "," $2] = 1 } END { print length(seen) }' "$WORK/spawn.csv")
phases_procs=$(awk -F, 'NR > 1 && $2 == "phases" { seen[$1] = 1 } END { print length(seen) }' "$WORK/spawn.csv")
check "every process of the program has a series ($procs, of which phases: $phases_procs)" test "$phases_procs" -ge 3
peak8=$(awk -F, 'NR > 1 && $2 == "phases" { if ($4 > m[$1]) m[$1] = $4 }
    END { for (p in m) if (m[p] >= 8388608 && m[p] < 8388608 + 524288) n++; print n + 0 }' "$WORK/spawn.csv")
check "the exec'd child's own peak (8 MiB) is in its series" test "$peak8" -ge 1

# ebb stats PID reads a live process.
"$EBB" run --quiet -- "$PHASES" hold 32 "$WORK/pid" &
runner=$!
i=0
while [ ! -s "$WORK/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
pid=$(cat "$WORK/pid")
"$EBB" stats "$pid" > "$WORK/stats" 2>&1
check "ebb stats PID works" test $? -eq 0
in_use=$(awk '$1 == "in_use" { print $2 }' "$WORK/stats")
check "ebb stats sees the 32 MiB in use ($in_use)" between "${in_use:-0}" 33554432 34603008
wait $runner

# The HTML report in a real browser: every series drawn with its points.
if command -v chromium > /dev/null; then
    rows=$(awk -F, 'NR > 1' "$WORK/run.csv" | wc -l)
    rss_rows=$(awk -F, 'NR > 1 && $9 > 0' "$WORK/run.csv" | wc -l)
    CHROME="chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync"
    # shellcheck disable=SC2086
    timeout 120 $CHROME --user-data-dir="$WORK/chrome1" --dump-dom "file://$WORK/run.html" > "$WORK/dom" 2> /dev/null
    check "chromium rendered the report" grep -q 'id="check">svg0' "$WORK/dom"
    for s in in_use freed_retained metadata; do
        line=$(grep -o "svg0 $s points=[0-9]* expected=[0-9]* width=[0-9]* height=[0-9]*" "$WORK/dom")
        pts=$(echo "$line" | sed 's/.*points=\([0-9]*\).*/\1/')
        w=$(echo "$line" | sed 's/.*width=\([0-9]*\).*/\1/')
        check "the $s area has two points a sample ($pts for $rows samples) and a size" \
            sh -c "[ '$pts' = $((2 * rows)) ] && [ '${w:-0}' -gt 100 ]"
    done
    line=$(grep -o "svg0 kept_predicted points=[0-9]*" "$WORK/dom")
    check "the line of memory kept for predicted reuse has a point a sample (${line#*=} for $rows)" \
        test "${line#*=}" = "$rows"
    line=$(grep -o "svg0 proc_rss points=[0-9]*" "$WORK/dom")
    check "the resident line has a point a live sample (${line#*=} for $rss_rows)" test "${line#*=}" = "$rss_rows"
    # The heap profile's flame graph in the report, read back from the DOM.
    "$EBB" run --quiet --profile "$WORK/f.prof" --html "$WORK/flame.html" --csv "$WORK/flame.csv" -- "$PHASES" 64 \
        > /dev/null 2>&1
    # shellcheck disable=SC2086
    timeout 120 $CHROME --user-data-dir="$WORK/chrome3" --dump-dom "file://$WORK/flame.html" > "$WORK/fdom" 2> /dev/null
    check "the flame graph's root frame holds every byte" grep -q 'class="frame" data-name="all" data-bytes="[1-9]' "$WORK/fdom"
    fill_bytes=$(grep -o 'data-name="fill" data-bytes="[0-9]*"' "$WORK/fdom" | head -n 1 | sed 's/.*bytes="\([0-9]*\)"/\1/')
    check "a frame for fill() with about the 80 MiB it allocated (${fill_bytes:-none} bytes)" \
        between "${fill_bytes:-0}" 50000000 130000000
    check "frames under main: phases, then fill" sh -c "grep -q 'data-name=\"main\"' '$WORK/fdom' && grep -q 'data-name=\"phases\"' '$WORK/fdom'"
    # A time range chosen on the timeline (here by the page's address):
    # the flame graph of what was allocated in it.  The run's two halves
    # hold every byte between them; before the program started, nothing.
    all_bytes=$(grep -o 'data-name="all" data-bytes="[0-9]*"' "$WORK/fdom" | sed 's/.*bytes="\([0-9]*\)"/\1/')
    end_s=$(awk -F, 'NR > 1 && $3 > t { t = $3 } END { printf "%.3f", t / 1000 }' "$WORK/flame.csv")
    mid_s=$(awk -v e="$end_s" 'BEGIN { printf "%.3f", e / 2 }')
    range_bytes() { # FROM TO: the root frame's bytes for that range, 0 if none drawn
        # shellcheck disable=SC2086
        timeout 120 $CHROME --user-data-dir="$WORK/chrome4" --dump-dom "file://$WORK/flame.html#range=$1-$2" \
            > "$WORK/rdom" 2> /dev/null
        b=$(grep -o 'data-name="all" data-bytes="[0-9]*"' "$WORK/rdom" | sed 's/.*bytes="\([0-9]*\)"/\1/')
        echo "${b:-0}"
    }
    first=$(range_bytes 0 "$mid_s")
    check "the timeline shows the range chosen" grep -q "class=\"trange\"[^>]*>0.00 s to $(printf %.2f "$mid_s") s<" "$WORK/rdom"
    check "the flame graph says the range" grep -q "id=\"flame-range\">From 0.000 s to $mid_s s: " "$WORK/rdom"
    second=$(range_bytes "$mid_s" 1000000)
    check "the two halves of the run ($first + $second bytes) hold every byte ($all_bytes)" \
        test "$((first + second))" = "${all_bytes:-x}"
    check "each half allocated something, less than the whole" \
        sh -c "[ $first -gt 0 ] && [ $second -gt 0 ] && [ $first -lt ${all_bytes:-0} ]"
    check "nothing before the program started" test "$(range_bytes 0 0.0000001)" = 0
    mkdir -p "$B/screenshots"
    # shellcheck disable=SC2086
    timeout 120 $CHROME --user-data-dir="$WORK/chrome2" --window-size=1000,900 \
        --screenshot="$B/screenshots/ebb-report.png" "file://$WORK/run.html" > /dev/null 2>&1
    check "a screenshot of the report" test -s "$B/screenshots/ebb-report.png"
else
    bad "chromium is not installed (tools/deps.sh test installs it)"
fi
finish
