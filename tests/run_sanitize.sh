#!/bin/sh
# Runs the prefixed-API tests and the stress run (10 s) built with UBSan and
# with TSan; the stress run again with the heap profiler on.
# Prints "N passed, N failed" as its last line.
B=$1
shift
total_pass=0
total_fail=0
for variant in ubsan tsan; do
    for t in "$@" stress-profile; do
        args=
        bin=$t
        profile=0
        [ "$t" = stress ] && args=${EBB_SANITIZE_STRESS_SECONDS:-10}
        if [ "$t" = stress-profile ]; then
            bin=stress
            profile=1
            args=${EBB_SANITIZE_STRESS_SECONDS:-10}
        fi
        # shellcheck disable=SC2086
        out=$(UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1 \
              EBB_PROFILE=$profile EBB_PROFILE_RATE=8192 "$B/tests/$variant/$bin" $args 2>&1)
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
