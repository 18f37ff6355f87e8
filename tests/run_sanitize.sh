#!/bin/sh
# Runs the prefixed-API tests and the stress run (10 s) built with UBSan and
# with TSan.
# Prints "N passed, N failed" as its last line.
B=$1
shift
total_pass=0
total_fail=0
for variant in ubsan tsan; do
    for t in "$@"; do
        args=
        [ "$t" = stress ] && args=${EBB_SANITIZE_STRESS_SECONDS:-10}
        # shellcheck disable=SC2086
        out=$(UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1 \
              "$B/tests/$variant/$t" $args 2>&1)
        rc=$?
        line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
        pass=0
        fail=1
        if [ -n "$line" ]; then
            pass=${line%% passed*}
            fail=${line#*, }
            fail=${fail%% failed*}
            [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
        fi
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        if [ "$fail" -eq 0 ]; then
            printf 'PASS %-6s %-14s %4d checks\n' "$variant" "$t" "$pass"
        else
            printf 'FAIL %-6s %-14s (exit %d)\n' "$variant" "$t" "$rc"
            printf '%s\n' "$out" | tail -n 40 | sed 's/^/    | /'
        fi
    done
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
