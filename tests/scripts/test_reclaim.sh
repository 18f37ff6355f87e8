#!/bin/sh
# Every reclamation pattern in every mode (tests/preload/test_reclaim.c), the
# steady-state program, parked pages, big buffers replaced in a loop, a
# phased program, and sparse pages (one live block in N).  Prints "N passed, N failed".
LIB=$1
T=$2
pass=0
fail=0
run() { # env... -- args
    out=$("$@" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    p=0
    f=1
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=${line#*, }
        f=${f%% failed*}
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
}
for pattern in small small-pinned medium threads huge realloc; do
    run env LD_PRELOAD="$LIB" "$T/test_reclaim" "$pattern" background
    run env LD_PRELOAD="$LIB" EBB_BACKGROUND=0 "$T/test_reclaim" "$pattern" calls
    run env LD_PRELOAD="$LIB" "$T/test_reclaim" "$pattern" trim
done
run env LD_PRELOAD="$LIB" EBB_RECLAIM_DELAY_MS=2000 "$T/test_reclaim" medium delayed
run env LD_PRELOAD="$LIB" EBB_PURGE=free "$T/test_reclaim" small lazy
run env LD_PRELOAD="$LIB" EBB_PURGE=free "$T/test_reclaim" medium lazy
run env LD_PRELOAD="$LIB" "$T/test_reclaim" steady -
run env LD_PRELOAD="$LIB" "$T/test_reclaim" parked -
run env LD_PRELOAD="$LIB" "$T/test_reclaim" bigbuffers -
run env LD_PRELOAD="$LIB" "$T/test_reclaim" phased -
run env LD_PRELOAD="$LIB" "$T/test_reclaim" sparsesteady -
for mode in trim exited remote sleeping remote-sleeping trim-other; do
    run env LD_PRELOAD="$LIB" "$T/test_reclaim" sparse $mode
done
# One madvise per range, as where process_madvise is missing or filtered;
# and every page locked, so that no decommit succeeds.
run env LD_PRELOAD="$LIB" EBB_PURGE=madvise "$T/test_reclaim" sparse trim
run env LD_PRELOAD="$LIB" "$T/test_reclaim" sparse locked
run env LD_PRELOAD="$LIB" EBB_PURGE=madvise "$T/test_reclaim" sparse locked
run env LD_PRELOAD="$LIB" "$T/test_reclaim" lockedall -
run env LD_PRELOAD="$LIB" "$T/test_reclaim" service -
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
