#!/bin/sh
# test: reclaim          long -- "$LIB" "$T"
# Every reclamation pattern in every mode (tests/preload/test_reclaim.c), the
# steady-state program, parked pages, big buffers replaced in a loop, a
# phased program, and sparse pages (one live block in N).  Prints "N passed, N failed".
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
LIB=$1
T=$2
for pattern in small small-pinned medium threads huge realloc; do
    tally env LD_PRELOAD="$LIB" "$T/test_reclaim" "$pattern" background
    tally env LD_PRELOAD="$LIB" EBB_BACKGROUND=0 "$T/test_reclaim" "$pattern" calls
    tally env LD_PRELOAD="$LIB" "$T/test_reclaim" "$pattern" trim
done
tally env LD_PRELOAD="$LIB" EBB_RECLAIM_DELAY_MS=2000 "$T/test_reclaim" medium delayed
tally env LD_PRELOAD="$LIB" EBB_PURGE=free "$T/test_reclaim" small lazy
tally env LD_PRELOAD="$LIB" EBB_PURGE=free "$T/test_reclaim" medium lazy
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" steady -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" parked -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" bigbuffers -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" phased -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" sparsesteady -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" sparseexit -
for mode in trim exited remote sleeping remote-sleeping trim-other; do
    tally env LD_PRELOAD="$LIB" "$T/test_reclaim" sparse $mode
done
# One madvise per range, as where process_madvise is missing or filtered;
# and every page locked, so that no decommit succeeds.
tally env LD_PRELOAD="$LIB" EBB_PURGE=madvise "$T/test_reclaim" sparse trim
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" sparse locked
tally env LD_PRELOAD="$LIB" EBB_PURGE=madvise "$T/test_reclaim" sparse locked
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" lockedall -
tally env LD_PRELOAD="$LIB" "$T/test_reclaim" service -
finish
