#!/bin/sh
# Runs the tests' runs tagged sanitize (tests/lib.sh): the prefixed-API
# tests and the stress run (10 s) built with UBSan and with TSan; the
# stress run again with the heap profiler on.
# Prints "N passed, N failed" as its last line.
# Usage: sh tests/run_sanitize.sh [--only NAME,...] [--list] BUILD_DIR
#
# The variables set here are read by the tests' lines (tests/lib.sh).
# shellcheck disable=SC2034
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
runner_args "$@"
SAN_STRESS_SECONDS=${EBB_SANITIZE_STRESS_SECONDS:-10}
plan=$(test_registry plan sanitize) || exit 2
RUN_TAIL=40
for variant in ubsan tsan; do
    run_plan "$plan" - "$variant "
done
[ "$RUN" = run ] || exit 0
totals
