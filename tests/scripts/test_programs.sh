#!/bin/sh
# test: programs         -- "$LIB"
# test: programs-zero    long -- "$LIB" EBB_ZERO_ON_FREE=1
# test: programs-secure  long -- "$LIB" EBB_SECURE=1
# test: programs-guard   long -- "$LIB" EBB_GUARD=1
# test: programs-sample  long -- "$LIB" EBB_GUARD_SAMPLE=1000
# test: programs-debug   long -- "$DEBUG_LIB"
# Real programs under LD_PRELOAD: each runs once under glibc and once under
# ebbmalloc, and their outputs must be identical.  EBB_STATS=1 makes each
# ebbmalloc process print a summary at exit, which proves the allocator
# really served it.  Prints "N passed, N failed".
# Usage: sh tests/scripts/test_programs.sh path/to/libebbmalloc.so [VAR=VALUE...]
# The optional settings (a safety mode) apply to every ebbmalloc run.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
LIB=$1
shift
MODE="$*"
# EBB_REFERENCE_DIR: where the glibc runs' results are kept, so that the
# runs in every safety mode (tests/run.sh) compare with one glibc run.
REF=${EBB_REFERENCE_DIR:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# compare NAME COMMAND...: same stdout and exit status with and without
# ebbmalloc, and the ebbmalloc run reports that it allocated.
compare() {
    name=$1
    shift
    if [ -n "$REF" ] && [ -f "$REF/$name.rc" ]; then
        cp "$REF/$name.glibc" "$WORK/$name.glibc"
        rc_glibc=$(cat "$REF/$name.rc")
    else
        "$@" > "$WORK/$name.glibc" 2> "$WORK/$name.glibc.err"
        rc_glibc=$?
        if [ -n "$REF" ]; then
            cp "$WORK/$name.glibc" "$REF/$name.glibc" && echo "$rc_glibc" > "$REF/$name.rc"
        fi
    fi
    # shellcheck disable=SC2086
    env LD_PRELOAD="$LIB" EBB_STATS=1 $MODE "$@" > "$WORK/$name.ebb" 2> "$WORK/$name.ebb.err"
    rc_ebb=$?
    if [ "$rc_glibc" -ne "$rc_ebb" ]; then
        bad "$name: exit status $rc_ebb under ebbmalloc, $rc_glibc under glibc"
        tail -n 5 "$WORK/$name.ebb.err"
    elif ! cmp -s "$WORK/$name.glibc" "$WORK/$name.ebb"; then
        bad "$name: output differs from glibc's"
        diff "$WORK/$name.glibc" "$WORK/$name.ebb" | head -n 5
    else
        ok
    fi
    calls=$(grep '^ebbmalloc: exit:' "$WORK/$name.ebb.err" | head -n 1 | grep -o ' malloc_calls=[0-9]*' | sed 's/.*=//')
    if [ -n "$calls" ] && [ "$calls" -gt 0 ]; then
        ok
    else
        bad "$name: no sign that ebbmalloc served it"
        tail -n 5 "$WORK/$name.ebb.err"
    fi
}

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
compare python "$PY" "$HERE/programs/objects.py"

# sort of a generated multi-MiB file
awk 'BEGIN { srand(42); for (i = 0; i < 400000; i++) printf "%08d %s\n", int(rand() * 1e8), i }' > "$WORK/lines.txt"
compare sort sort -S 64M "$WORK/lines.txt"
compare sort-numeric sort -n -k1,1 -k2,2r "$WORK/lines.txt"

# gcc compiling a C file: the same assembly, and a program that runs
compare gcc gcc -O2 -S -o - "$HERE/programs/sample.c"
gcc -O2 -o "$WORK/sample.glibc" "$HERE/programs/sample.c"
env LD_PRELOAD="$LIB" $MODE gcc -O2 -o "$WORK/sample.ebb" "$HERE/programs/sample.c"
if [ "$("$WORK/sample.glibc")" = "$("$WORK/sample.ebb")" ]; then ok; else bad "gcc: compiled programs differ"; fi

# multithreaded compressors: same bytes out, and a correct round trip
head -c 30000000 /dev/zero | tr '\0' 'a' > "$WORK/blob"
cat "$WORK/lines.txt" >> "$WORK/blob"
if command -v xz > /dev/null; then
    compare xz xz -T2 -6 -c "$WORK/blob"
    env LD_PRELOAD="$LIB" $MODE xz -T2 -c "$WORK/blob" | env LD_PRELOAD="$LIB" $MODE xz -T2 -dc | cmp -s - "$WORK/blob" &&
        ok || bad "xz round trip"
fi
if command -v zstd > /dev/null; then
    compare zstd zstd -T2 -q -c "$WORK/blob"
    env LD_PRELOAD="$LIB" $MODE zstd -T2 -q -c "$WORK/blob" | env LD_PRELOAD="$LIB" $MODE zstd -T2 -q -dc | cmp -s - "$WORK/blob" &&
        ok || bad "zstd round trip"
fi

# git: init, add and commit many files, gc; fixed dates make the hashes
# deterministic, so both runs must produce the same commit.
git_run() {
    repo=$WORK/repo-$1
    shift
    rm -rf "$repo"
    mkdir -p "$repo"
    (
        cd "$repo" || exit 1
        export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
        export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
        export GIT_CONFIG_NOSYSTEM=1 HOME="$repo"
        "$@" git init -q -b main . &&
            i=0 &&
            while [ $i -lt 600 ]; do
                mkdir -p "d$((i % 20))"
                printf 'file %d\n%s\n' "$i" "$(seq 1 $((i % 50)))" > "d$((i % 20))/f$i.txt"
                i=$((i + 1))
            done &&
            "$@" git add -A &&
            "$@" git commit -q -m "many files" &&
            "$@" git gc -q &&
            "$@" git fsck --no-progress &&
            "$@" git rev-parse HEAD &&
            "$@" git count-objects -v | grep -E '^(count|in-pack|packs):'
    )
}
if [ -n "$REF" ] && [ -f "$REF/git.glibc" ]; then
    cp "$REF/git.glibc" "$WORK/git.glibc"
else
    git_run glibc env > "$WORK/git.glibc" 2>&1
    [ -z "$REF" ] || cp "$WORK/git.glibc" "$REF/git.glibc"
fi
# shellcheck disable=SC2086
git_run ebb env LD_PRELOAD="$LIB" $MODE > "$WORK/git.ebb" 2>&1
if cmp -s "$WORK/git.glibc" "$WORK/git.ebb" && grep -q '^in-pack: ' "$WORK/git.ebb"; then
    ok
else
    bad "git: results differ"
    diff "$WORK/git.glibc" "$WORK/git.ebb" | head -n 5
fi

finish
