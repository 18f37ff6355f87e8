#!/bin/sh
# Runs the test suite: every run the tests declare (their "test:" lines,
# tests/lib.sh) and prints "N passed, N failed" as its last line.
#
# Usage: sh tests/run.sh [--check] [--only NAME,...] [--list] [BUILD_DIR]
#   --check      the fast tier (make check): the runs tagged fast or check
#   --only P,... only the runs whose names match these shell patterns
#                (e.g. --only 'api,misuse,api-*')
#   --list       print the plan, "NAME: COMMAND" a line, and run nothing
#   --targets SUITE  print the programs a suite needs (for tests/tests.mk)
#
# EBB_TEST_LONG=0 leaves out the long runs that repeat what the first build's
# suite showed (fault injection, the API and thread tests again in the safety
# modes, the reclamation timings, the real programs in every safety mode,
# CPython's tests): CI sets it for its second, clang-built pass.  The stress run lasts
# EBB_STRESS_SECONDS (default 20; 60 when CI=true).
#
# The variables set here are read by the tests' lines (tests/lib.sh).
# shellcheck disable=SC2034
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
if [ "${1:-}" = --targets ]; then
    test_registry targets "$2" "${3:-build}"
    exit
fi
runner_args "$@"
T=$B/tests
if ABS=$(cd "$B" 2> /dev/null && pwd); then :; else ABS=$B; fi
LIB=$ABS/libebbmalloc.so
DEBUG_LIB=$ABS/libebbmalloc-debug.so
STRESS_SECONDS=${EBB_STRESS_SECONDS:-20}
[ "${CI:-}" = true ] && [ -z "${EBB_STRESS_SECONDS:-}" ] && STRESS_SECONDS=60
plan=$(test_registry plan "$SUITE") || exit 2
if [ "$RUN" = run ]; then
    # One glibc run of each real program (tests/scripts/test_programs.sh)
    # serves as the reference in every mode.
    EBB_REFERENCE_DIR=$(mktemp -d)
    export EBB_REFERENCE_DIR
    trap 'rm -rf "$EBB_REFERENCE_DIR"' EXIT
fi

run_plan "$plan" -
[ "${EBB_TEST_LONG:-1}" != 0 ] && run_plan "$plan" long
[ "$RUN" = run ] || exit 0
totals
