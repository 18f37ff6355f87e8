#!/bin/sh
# Runs the given prefixed tests under valgrind's memcheck; any memcheck
# error fails the test.  Prints "N passed, N failed" as its last line.
# Usage: sh tests/run_valgrind.sh TEST_BUILD_DIR TEST...
T=$1
shift
pass=0
fail=0
for t in "$@"; do
    # A hang fails the test rather than the whole run.
    out=$(timeout 900 valgrind -q --error-exitcode=99 "$T/$t" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qE '^[0-9]+ passed, 0 failed$'; then
        pass=$((pass + 1))
        printf 'PASS valgrind %-14s %s\n' "$t" "$(printf '%s\n' "$out" | tail -n 1)"
    else
        fail=$((fail + 1))
        printf 'FAIL valgrind %-14s (exit %d)\n' "$t" "$rc"
        printf '%s\n' "$out" | grep -A12 '^==[0-9]*== [A-Z]' | head -n 60 | sed 's/^/    | /'
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    | /'
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
