#!/bin/sh
# Runs the whole test suite and prints "N passed, N failed" as its last line.
# Usage: sh tests/run.sh [build-dir]
# EBB_TEST_LONG=0 leaves out the long runs that repeat what the first build's
# suite showed (fault injection, the API and thread tests again in the safety
# modes, the reclamation timings, the real programs in every safety mode,
# CPython's tests): CI sets it for its second, clang-built pass.  The stress run lasts
# EBB_STRESS_SECONDS (default 20; 60 when CI=true).
B=${1:-build}
LIB=$(cd "$B" && pwd)/libebbmalloc.so
T=$B/tests
total_pass=0
total_fail=0
failed_names=""

# run NAME COMMAND...: a test prints "N passed, N failed"; a non-zero exit
# with no failure counted is one failure more.
run() {
    name=$1
    shift
    start=$(date +%s)
    out=$("$@" 2>&1)
    rc=$?
    secs=$(( $(date +%s) - start ))
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    pass=0
    fail=1
    if [ -n "$line" ]; then
        pass=${line%% passed*}
        fail=${line#*, }
        fail=${fail%% failed*}
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1
        fi
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    if [ "$fail" -eq 0 ]; then
        printf 'PASS %-22s %4d checks  %3ds\n' "$name" "$pass" "$secs"
        # The figures some tests print (operations run, faults injected...).
        printf '%s\n' "$out" | grep -E '^(stress|fault injection|cpython [a-z-]+): ' | sed 's/^/     | /'
    else
        printf 'FAIL %-22s %4d passed, %d failed (exit %d)\n' "$name" "$pass" "$fail" "$rc"
        printf '%s\n' "$out" | tail -n 30 | sed 's/^/    | /'
        failed_names="$failed_names $name"
    fi
}

run sizeclass      "$T/test_sizeclass"
run internal       "$T/test_internal"
run api            "$T/test_api"
run threads        "$T/test_threads"
run oom            "$T/test_oom"
STRESS_SECONDS=${EBB_STRESS_SECONDS:-20}
[ "${CI:-}" = true ] && [ -z "${EBB_STRESS_SECONDS:-}" ] && STRESS_SECONDS=60
run stress         "$T/stress" "$STRESS_SECONDS"
run fuzz-replay    sh -c "'$B/fuzz/fuzz_alloc' tests/fuzz/regressions/* > /dev/null 2>&1 && echo '1 passed, 0 failed'"
run sample         "$T/test_sample"
# The debug build: every invariant checked as the tests run (make debug).
run debug          "$T/debug/test_debug"
run api-debug      "$T/debug/test_api"
run threads-debug  "$T/debug/test_threads"
run stress-debug   env EBB_RECLAIM_DELAY_MS=5 "$T/debug/stress" 10
run stress-profile env EBB_PROFILE=1 EBB_PROFILE_RATE=8192 "$T/stress" 10
run override       env LD_PRELOAD="$LIB" "$T/test_override"
run early          env LD_PRELOAD="$LIB" "$T/test_early"
run brk            env LD_PRELOAD="$LIB" "$T/test_brk"
[ "${EBB_TEST_LONG:-1}" != 0 ] && run reclaim sh tests/scripts/test_reclaim.sh "$LIB" "$T"
run limits         sh tests/scripts/test_limits.sh "$LIB" "$T"
run misuse         env EBB_TEST_LIB="$LIB" "$T/test_misuse"
run cxx            env LD_PRELOAD="$LIB" "$T/test_cxx"
run profile        env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 "$T/test_profile" "$B/ebb"
run profile-off    env LD_PRELOAD="$LIB" "$T/test_profile" "$B/ebb" off
run static         "$T/test_static"
run static-dynamic "$T/test_static_dyn"
run install        sh tests/scripts/test_install.sh
run ebb            sh tests/scripts/test_ebb.sh "$B"
# One glibc run of each real program serves as the reference in every mode.
EBB_REFERENCE_DIR=$(mktemp -d)
export EBB_REFERENCE_DIR
trap 'rm -rf "$EBB_REFERENCE_DIR"' EXIT
run programs       sh tests/scripts/test_programs.sh "$LIB"
if [ "${EBB_TEST_LONG:-1}" != 0 ]; then
    run faults          "$T/test_faults"
    # The API and thread tests again in the safety modes that keep pages.
    run api-secure      env EBB_SECURE=1 "$T/test_api"
    run api-zero        env EBB_ZERO_ON_FREE=1 "$T/test_api"
    run api-sample      env EBB_GUARD_SAMPLE=100 "$T/test_api"
    # ...and on guarded pages: every block a mapping of its own, against its
    # guard page after it and before it.
    run api-guard       env EBB_GUARD=1 "$T/test_api"
    run api-guard-before env EBB_GUARD=before "$T/test_api"
    run threads-secure  env EBB_SECURE=1 "$T/test_threads"
    run threads-zero    env EBB_ZERO_ON_FREE=1 "$T/test_threads"
    run threads-sample  env EBB_GUARD_SAMPLE=100 "$T/test_threads"
    # C++ on ebbmalloc's operators new and delete, in every mode.
    run cxx-secure      env LD_PRELOAD="$LIB" EBB_SECURE=1 "$T/test_cxx"
    run cxx-zero        env LD_PRELOAD="$LIB" EBB_ZERO_ON_FREE=1 "$T/test_cxx"
    run cxx-guard       env LD_PRELOAD="$LIB" EBB_GUARD=1 "$T/test_cxx"
    run cxx-guard-before env LD_PRELOAD="$LIB" EBB_GUARD=before "$T/test_cxx"
    run cxx-sample      env LD_PRELOAD="$LIB" EBB_GUARD_SAMPLE=100 "$T/test_cxx"
    # The heap profiler in every safety mode, and under C++ and the threads.
    run profile-secure  env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_SECURE=1 "$T/test_profile" "$B/ebb"
    run profile-zero    env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_ZERO_ON_FREE=1 "$T/test_profile" "$B/ebb"
    run profile-sample  env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_GUARD_SAMPLE=100 "$T/test_profile" "$B/ebb"
    run cxx-profile     env LD_PRELOAD="$LIB" EBB_PROFILE=1 EBB_PROFILE_RATE=4096 "$T/test_cxx"
    run threads-profile env EBB_PROFILE=1 EBB_PROFILE_RATE=4096 "$T/test_threads"
    run api-profile     env EBB_PROFILE=1 EBB_PROFILE_RATE=4096 "$T/test_api"
    # The real programs again in every safety mode.
    run programs-zero   sh tests/scripts/test_programs.sh "$LIB" EBB_ZERO_ON_FREE=1
    run programs-secure sh tests/scripts/test_programs.sh "$LIB" EBB_SECURE=1
    run programs-guard  sh tests/scripts/test_programs.sh "$LIB" EBB_GUARD=1
    run programs-sample sh tests/scripts/test_programs.sh "$LIB" EBB_GUARD_SAMPLE=1000
    run programs-debug  sh tests/scripts/test_programs.sh "$(cd "$B" && pwd)/libebbmalloc-debug.so"
    # CPython's regression tests (a large subset), default and secure mode.
    run cpython         sh tests/scripts/test_cpython.sh "$LIB"
fi

echo
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
