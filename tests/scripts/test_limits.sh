#!/bin/sh
# test: limits           -- "$LIB" "$T"
# Memory limits (tests/preload/test_reclaim.c's churn and softlimit patterns):
#
#   - in a memory cgroup this script makes (cgroup v2 or v1, whichever the
#     machine has; as root), limited to 1.25 x the program's live data, a
#     program that churns through phases of huge, small and medium blocks
#     runs to the end, is not OOM-killed, and still reuses memory across
#     phases (retention below the limit); the same program with the limits
#     ignored (EBB_LIMITS=0) needs more than the limit, so the limit is what
#     the allocator kept;
#   - under EBB_MEMORY_LIMIT, resident memory stays under it, where without
#     it the same program goes above.
#
# Usage: sh tests/scripts/test_limits.sh LIB TESTDIR.  Prints "N passed, N failed";
# where no memory cgroup can be made, says why and skips that part.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
LIB=$1
T=$2
LIVE=96                        # MiB of live data in each phase
LIMIT=$((LIVE * 5 / 4))        # MiB
# The figure after `word` in the churn line of output $1.
figure() { printf '%s\n' "$1" | sed -n "s/.*[ ,]$2 \([0-9]*\) MiB.*/\1/p" | tail -n 1; }
counts() { summary_line "$1"; }

# ---- EBB_MEMORY_LIMIT ------------------------------------------------------
SOFT=96
out=$(env LD_PRELOAD="$LIB" EBB_MEMORY_LIMIT=${SOFT}M EBB_TEST_LIMIT_MIB=$SOFT "$T/test_reclaim" softlimit 64 2>&1)
most=$(figure "$out" resident)
if [ "$(counts "$out")" = "$(counts "$out" | sed 's/[0-9]* failed/0 failed/')" ] && [ -n "$most" ]; then
    ok
    echo "EBB_MEMORY_LIMIT=${SOFT}M, 64 MiB live: at most $most MiB resident"
else
    bad "EBB_MEMORY_LIMIT=${SOFT}M: $out"
fi
out=$(env LD_PRELOAD="$LIB" EBB_TEST_LIMIT_MIB=$SOFT "$T/test_reclaim" softlimit 64 2>&1)
free_most=$(figure "$out" resident)
if [ -n "$free_most" ] && [ "$free_most" -gt "$SOFT" ]; then
    ok
    echo "without EBB_MEMORY_LIMIT the same program reaches $free_most MiB"
else
    bad "without EBB_MEMORY_LIMIT the program stays under $SOFT MiB anyway ($free_most): the test shows nothing"
fi

# ---- a memory cgroup ---------------------------------------------------------
skip() {
    echo "limits: cgroup part skipped: $*"
    finish
    exit
}
[ "$(id -u)" -eq 0 ] || skip "not root"
VERSION=
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    VERSION=2
    grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
    PARENT=/sys/fs/cgroup
else
    REL=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
    if [ -n "$REL" ] && [ -f "/sys/fs/cgroup/memory$REL/memory.limit_in_bytes" ]; then
        VERSION=1
        PARENT=/sys/fs/cgroup/memory$REL
    fi
fi
[ -n "$VERSION" ] || skip "no cgroup v2 memory controller and no cgroup v1 memory hierarchy"
CG=$PARENT/ebbtest.$$
mkdir "$CG" 2>/dev/null || skip "cannot make $CG"
trap 'rmdir "$CG" 2>/dev/null' EXIT

# limit MiB (0: none); oom_kills; peak_usage MiB (empty if not known)
set_limit() {
    if [ "$VERSION" = 2 ]; then
        if [ "$1" = 0 ]; then echo max > "$CG/memory.max"; else echo $(($1 << 20)) > "$CG/memory.max"; fi
        [ -f "$CG/memory.swap.max" ] && echo 0 > "$CG/memory.swap.max"
    else
        if [ "$1" = 0 ]; then v=-1; else v=$(($1 << 20)); fi
        echo "$v" > "$CG/memory.limit_in_bytes"
        [ -f "$CG/memory.memsw.limit_in_bytes" ] && echo "$v" > "$CG/memory.memsw.limit_in_bytes" 2>/dev/null
        echo 0 > "$CG/memory.max_usage_in_bytes" 2>/dev/null
    fi
}
oom_kills() {
    if [ "$VERSION" = 2 ]; then f=$CG/memory.events; else f=$CG/memory.oom_control; fi
    awk '$1 == "oom_kill" { print $2 }' "$f" 2>/dev/null | grep . || echo 0
}
peak_usage() {
    if [ "$VERSION" = 2 ]; then f=$CG/memory.peak; else f=$CG/memory.max_usage_in_bytes; fi
    [ -f "$f" ] && echo $(($(cat "$f") >> 20))
}
# Run the churn in the cgroup, with extra environment $1.
run_churn() {
    sh -c "echo \$\$ > '$CG/cgroup.procs' && exec env $1 LD_PRELOAD='$LIB' '$T/test_reclaim' churn $LIVE" 2>&1
}

# The limits ignored, no limit: what the program takes on its own.
set_limit 0
kills0=$(oom_kills)
out=$(run_churn EBB_LIMITS=0)
alone=$(peak_usage)
alone_reclaimed=$(figure "$out" reclaimed)
if [ -n "$alone" ]; then
    if [ "$alone" -gt "$LIMIT" ]; then
        ok
        echo "cgroup v$VERSION, no limit, limits ignored: $alone MiB at the most (reclaimed $alone_reclaimed MiB)"
    else
        bad "without a limit the churn peaks at $alone MiB, under $LIMIT MiB: the test shows nothing"
    fi
fi

# Under the limit.
set_limit $LIMIT
kills0=$(oom_kills)
out=$(run_churn "")
rc=$?
kills=$(($(oom_kills) - kills0))
peak=$(peak_usage)
allocated=$(figure "$out" allocated)
reclaimed=$(figure "$out" reclaimed)
known=$(figure "$out" limit)
if [ "$rc" -eq 0 ] && [ "$kills" -eq 0 ] && [ "$(counts "$out")" = "$(counts "$out" | sed 's/[0-9]* failed/0 failed/')" ]; then
    ok
    echo "cgroup v$VERSION limited to $LIMIT MiB ($LIVE MiB live): ran to the end, no OOM kill, at most ${peak:-?} MiB"
else
    bad "under a $LIMIT MiB limit: exit $rc, $kills OOM kills: $out"
fi
if [ "$known" = "$LIMIT" ]; then ok; else bad "the allocator saw a limit of '$known' MiB, not $LIMIT"; fi
# Retention below the limit: a phase after one of its own kind takes the
# memory back, so much less than everything allocated went back.
if [ -n "$allocated" ] && [ -n "$reclaimed" ] && [ $((reclaimed * 10)) -le $((allocated * 6)) ]; then
    ok
    echo "retention under the limit: $reclaimed of $allocated MiB allocated went back to the kernel"
else
    bad "retention under the limit: $reclaimed of $allocated MiB went back"
fi
finish
