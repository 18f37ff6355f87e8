#!/bin/sh
# Runs the tests' runs tagged valgrind (tests/lib.sh) under valgrind's
# memcheck; any memcheck error fails the test.  Prints "N passed, N failed"
# as its last line.
# Usage: sh tests/run_valgrind.sh [--only NAME,...] [--list] BUILD_DIR
#
# The variables set here are read by the tests' lines (tests/lib.sh).
# shellcheck disable=SC2034
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
runner_args "$@"
T=$B/tests
plan=$(test_registry plan valgrind) || exit 2
# A failure shows memcheck's reports, then the end of the output.
run_show() {
    printf '%s\n' "$1" | grep -A12 '^==[0-9]*== [A-Z]' | head -n 60 | sed 's/^/    | /'
    printf '%s\n' "$1" | tail -n 5 | sed 's/^/    | /'
}
# A hang (timeout 900) fails the test rather than the whole run.
run_plan "$plan" - "valgrind "
[ "$RUN" = run ] || exit 0
totals
