# The test suite's shell library, sourced (never run) by the runners
# (tests/run.sh, run_sanitize.sh, run_valgrind.sh) and by the shell tests
# (tests/scripts/).  It holds, once each: the reading of a test's closing
# line "N passed, N failed", the runner's run(), the shell tests' check
# helpers, and the registry of tests.
#
# ---- the registry ----------------------------------------------------------
# A test is a file.  The directory it lives in says how it is built
# (tests/tests.mk) and how it is started:
#
#   tests/unit/NAME.c       build/tests/NAME (sees src/'s internals)
#   tests/prefixed/NAME.c   build/tests/NAME (ebb_* API); also
#                           build/tests/{debug,ubsan,tsan}/NAME if asked
#   tests/faults/NAME.c     build/tests/NAME (fault-injection build)
#   tests/debug/NAME.c      build/tests/debug/NAME (debug build, internals)
#   tests/preload/NAME.c    build/tests/NAME, run as env LD_PRELOAD="$LIB" ...
#   tests/preload/NAME.cpp  the same, in C++
#   tests/static/NAME.c     build/tests/NAME (static), build/tests/NAME_dyn
#   tests/scripts/NAME.sh   sh tests/scripts/NAME.sh
#   tests/fuzz/NAME.c       build/fuzz/NAME, its inputs replayed
#
# Each run of it is one line of its comments:
#
#   test: NAME [TAG...] [VAR=VALUE...] [-- ARG...]
#
# NAME is what the PASS/FAIL line says; VAR=VALUE the environment of the
# run, ARG its arguments (both may name the runner's variables, "$LIB" the
# library, "$DEBUG_LIB" the debug one, "$B" the build directory, "$T" its
# tests/, "$STRESS_SECONDS", "$SAN_STRESS_SECONDS"; no spaces inside a
# word).  The TAGs say which suite runs it (none: make test's):
#
#   long       make test, unless EBB_TEST_LONG=0 (after the others)
#   fast       make test and make check (the fast tier)
#   check      make check only
#   sanitize   make test-sanitize only, in the UBSan and the TSan build
#   valgrind   make test-valgrind only, under memcheck
#
# and which program it runs (none: the file's own):
#
#   debug      build/tests/debug/NAME: linked with the debug build
#   dyn        build/tests/NAME_dyn (tests/static/)
#   nopreload  a tests/preload/ program started without LD_PRELOAD
#
# A line "build: FLAGS" adds compiler flags to build/tests/NAME.
# `sh tests/run.sh --list` prints the plan.

TEST_KINDS="unit prefixed faults debug preload static scripts fuzz"
SUMMARY_RE='^[0-9]+ passed, [0-9]+ failed$'

# The test files, kind by kind.
test_files() {
    for k in $TEST_KINDS; do
        for f in "tests/$k"/*; do
            case $f in
                *.c | *.cpp | *.sh) [ -f "$f" ] && echo "$f" ;;
            esac
        done
    done
}

# test_registry MODE SUITE [BUILD]: MODE plan prints the suite's runs, one
# "TIER NAME COMMAND" a line (TIER: - or long; COMMAND is shell text, with
# the variables above unexpanded); MODE targets prints the programs the
# suite needs, under BUILD (for make).  SUITE: full (make test), check,
# sanitize, valgrind, or debug (targets only: every debug-build program).
test_registry() {
    # shellcheck disable=SC2046
    awk -v mode="$1" -v suite="$2" -v build="${3:-build}" '
    function has(t) { return index(tags, " " t " ") > 0 }
    function target(path) { if (!(path in seen)) { seen[path] = 1; targets[++ntargets] = path } }
    FNR == 1 {
        n = split(FILENAME, part, "/")
        kind = part[n - 1]
        file = part[n]
        prog = file
        sub(/\.(c|cpp|sh)$/, "", prog)
        if (suite == "full" && kind != "scripts") {
            if (kind == "debug") target(build "/tests/debug/" prog)
            else if (kind == "fuzz") target(build "/fuzz/" prog)
            else target(build "/tests/" prog)
            if (kind == "static") target(build "/tests/" prog "_dyn")
        }
        if (suite == "debug" && kind == "debug") target(build "/tests/debug/" prog)
    }
    /^[ \t]*(\/\*|\*|#|\/\/)?[ \t]*test:[ \t]/ {
        line = $0
        sub(/^[ \t]*(\/\*|\*|#|\/\/)?[ \t]*test:[ \t]+/, "", line)
        sub(/[ \t]*\*\/[ \t]*$/, "", line)
        nt = split(line, tok, /[ \t]+/)
        name = tok[1]
        tags = " "
        envs = ""
        args = ""
        for (i = 2; i <= nt; i++) {
            if (tok[i] == "--") {
                for (i++; i <= nt; i++) args = args " " tok[i]
                break
            }
            if (tok[i] ~ /^[A-Za-z_][A-Za-z0-9_]*=/) envs = envs " " tok[i]
            else if (tok[i] ~ /^(fast|check|long|sanitize|valgrind|debug|dyn|nopreload)$/) tags = tags tok[i] " "
            else {
                printf "%s:%d: unknown tag \"%s\" (tests/lib.sh)\n", FILENAME, FNR, tok[i] > "/dev/stderr"
                bad = 1
            }
        }
        s = has("sanitize") ? "sanitize" : has("valgrind") ? "valgrind" : has("check") ? "check" : "full"
        if (name == "" || name ~ /=/ || (s ":" name) in named || (has("fast") && ("check:" name) in named)) {
            printf "%s:%d: a test line needs a name of its own (\"%s\")\n", FILENAME, FNR, name > "/dev/stderr"
            bad = 1
        }
        named[s ":" name] = 1
        if (has("fast")) named["check:" name] = 1
        if (has("debug") || kind == "debug") target_debug = build "/tests/debug/" prog
        else target_debug = ""
        if (suite == "debug" && target_debug != "") target(target_debug)
        if (s != suite && !(suite == "check" && has("fast"))) next
        tier = has("long") ? "long" : "-"

        if (kind == "scripts") {
            cmd = "sh tests/scripts/" file
        } else if (kind == "fuzz") {
            cmd = "sh -c \"'\''$B/fuzz/" prog "'\''" args " > /dev/null 2>&1 && echo '\''1 passed, 0 failed'\''\""
            args = ""
            target(build "/fuzz/" prog)
        } else {
            bin = "$T/" prog
            path = build "/tests/" prog
            if (target_debug != "") { bin = "$T/debug/" prog; path = target_debug }
            if (has("dyn")) { bin = "$T/" prog "_dyn"; path = build "/tests/" prog "_dyn" }
            cmd = "\"" bin "\""
            if (s == "sanitize") {
                cmd = "\"$B/tests/$variant/" prog "\""
                # The sanitizer settings, and the profiler settings unless the
                # line sets them.
                nd = split("UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1" \
                           " EBB_PROFILE=0 EBB_PROFILE_RATE=8192", dflt, " ")
                pre = ""
                for (d = 1; d <= nd; d++) {
                    key = substr(dflt[d], 1, index(dflt[d], "="))
                    if ((at = index(envs " ", " " key)) > 0) {
                        rest = substr(envs, at + 1)
                        word = substr(rest, 1, index(rest " ", " ") - 1)
                        pre = pre " " word
                        envs = substr(envs, 1, at - 1) substr(rest, length(word) + 1)
                    } else {
                        pre = pre " " dflt[d]
                    }
                }
                envs = pre envs
                target(build "/tests/ubsan/" prog)
                target(build "/tests/tsan/" prog)
            } else {
                target(path)
            }
            if (s == "valgrind") cmd = "timeout 900 valgrind -q --error-exitcode=99 " cmd
            if (kind == "preload" && !has("nopreload")) envs = " LD_PRELOAD=\"$LIB\"" envs
            if (envs != "") cmd = "env" envs " " cmd
        }
        runs[++nruns] = tier " " name " " cmd args
    }
    END {
        if (bad) exit 1
        if (mode == "plan") for (i = 1; i <= nruns; i++) print runs[i]
        else for (i = 1; i <= ntargets; i++) print targets[i]
    }' $(test_files)
}

# ---- the closing line ------------------------------------------------------
# summary OUTPUT STATUS: s_pass and s_fail from OUTPUT's last "N passed,
# N failed" line; without one, 0 passed and 1 failed; a non-zero STATUS
# with no failure counted is one failure more.
summary() {
    s_line=$(printf '%s\n' "$1" | grep -E "$SUMMARY_RE" | tail -n 1)
    s_pass=0
    s_fail=1
    if [ -n "$s_line" ]; then
        s_pass=${s_line%% passed*}
        s_fail=${s_line#*, }
        s_fail=${s_fail%% failed*}
        if [ "$2" -ne 0 ] && [ "$s_fail" -eq 0 ]; then
            s_fail=1
        fi
    fi
}

# summary_line OUTPUT: its last "N passed, N failed" line, if any.
summary_line() { printf '%s\n' "$1" | grep -E "$SUMMARY_RE" | tail -n 1; }

# ---- the runners -------------------------------------------------------------
total_pass=0
total_fail=0
failed_names=""

# What a failed run shows of its output (a runner may redefine it).
RUN_TAIL=30
run_show() { printf '%s\n' "$1" | tail -n "$RUN_TAIL" | sed 's/^/    | /'; }

# run NAME COMMAND...: runs a test, reads its closing line, prints PASS or
# FAIL, and adds its counts to the totals.  A test that runs past
# EBB_TEST_TIMEOUT seconds (default 1200, ten times the longest test) fails;
# timeout(1) kills its whole process group, so no child it started (a tool
# under a broken preload, say) goes on loading the machine.
run() {
    name=$1
    shift
    start=$(date +%s)
    out=$(timeout -k 10 "${EBB_TEST_TIMEOUT:-1200}" "$@" 2>&1)
    rc=$?
    secs=$(($(date +%s) - start))
    summary "$out" "$rc"
    total_pass=$((total_pass + s_pass))
    total_fail=$((total_fail + s_fail))
    if [ "$s_fail" -eq 0 ]; then
        printf 'PASS %-22s %4d checks  %3ds\n' "$name" "$s_pass" "$secs"
        # The figures some tests print (operations run, faults injected...).
        printf '%s\n' "$out" | grep -E '^(stress|fault injection|cpython [a-z-]+): ' | sed 's/^/     | /'
    else
        printf 'FAIL %-22s %4d passed, %d failed (exit %d)\n' "$name" "$s_pass" "$s_fail" "$rc"
        run_show "$out"
        failed_names="$failed_names $name"
    fi
}

# list_run NAME COMMAND...: what --list prints instead of running.
list_run() {
    printf '%s:' "$1"
    shift
    printf ' %s' "$@"
    printf '\n'
}

# runner_args ARG...: the runners' arguments: --list (RUN=list_run),
# --only P,... (ONLY), --check (SUITE=check: the fast tier) and the build
# directory (B, default build).  Another option prints the runner's usage
# (the "Usage" line of its header and the lines after it) and exits 2.
runner_args() {
    B=
    SUITE=full
    while [ $# -gt 0 ]; do
        case $1 in
            --check) SUITE=check ;;
            --list) RUN=list_run ;;
            --only) ONLY=$2 && shift ;;
            --only=*) ONLY=${1#--only=} ;;
            -*)
                sed -n '/^# Usage/,/^#$/s/^# \{0,1\}//p' "$0" >&2
                exit 2
                ;;
            *) B=$1 ;;
        esac
        shift
    done
    B=${B:-build}
}

# run_plan PLAN TIER [PREFIX]: runs (or, with RUN=list_run, lists) the
# plan's runs of that tier whose names ONLY selects (comma-separated
# patterns; empty: all), their names led by PREFIX.
RUN=run
ONLY=
selected() {
    [ -z "$ONLY" ] && return 0
    _sifs=$IFS
    IFS=,
    for _pattern in $ONLY; do
        # shellcheck disable=SC2254
        case $1 in
            $_pattern)
                IFS=$_sifs
                return 0
                ;;
        esac
    done
    IFS=$_sifs
    return 1
}
run_plan() {
    _ifs=$IFS
    set -f
    IFS='
'
    for _entry in $1; do
        IFS=$_ifs
        _rest=${_entry#* }
        if [ "${_entry%% *}" = "$2" ] && selected "${_rest%% *}"; then
            set +f
            eval "$RUN '${3:-}'$_rest"
            set -f
        fi
    done
    IFS=$_ifs
    set +f
}

# The runner's closing lines.
totals() {
    echo
    [ -n "$failed_names" ] && echo "failed:$failed_names"
    echo "$total_pass passed, $total_fail failed"
    [ "$total_fail" -eq 0 ]
}

# ---- the shell tests' checks ----------------------------------------------------
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*"
}
# check DESCRIPTION COMMAND...: passes if the command succeeds.
check() {
    _d=$1
    shift
    if "$@"; then ok; else bad "$_d"; fi
}
# tally COMMAND...: runs a test program, adds its closing line's counts to
# pass and fail, and prints the rest of its output.
tally() {
    _out=$("$@" 2>&1)
    summary "$_out" $?
    pass=$((pass + s_pass))
    fail=$((fail + s_fail))
    printf '%s\n' "$_out" | grep -v -E "$SUMMARY_RE"
}
# finish: the closing line; the status says whether all passed.
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
