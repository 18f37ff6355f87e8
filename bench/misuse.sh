#!/bin/sh
# Which allocator reports which heap misuse: the misuse cases of
# tests/preload/test_misuse.c run under glibc, jemalloc, tcmalloc, mimalloc, scudo
# and ebbmalloc (default, secure and guard modes).  Each cell says what
# happened: "reported" (the process was stopped with a message on stderr),
# "crash" (killed by a signal without a word), "—" (it went on as if
# nothing happened).
#
#   sh bench/misuse.sh [OUT.md]      (default: bench/results/misuse.md)
#
# Needs build/tests/test_misuse (make test builds it) and the peers (make
# bench installs them).
cd "$(dirname "$0")/.." || exit 1
OUT=${1:-bench/results/misuse.md}
T=build/tests/test_misuse
[ -x "$T" ] || make --no-print-directory "$T" > /dev/null || exit 1
MA=$(gcc -print-multiarch 2> /dev/null || echo x86_64-linux-gnu)
EBB=$(pwd)/build/libebbmalloc.so
SCUDO=
for f in /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so; do
    [ -f "$f" ] && SCUDO=$f
done

# name:library:settings
SPECS="glibc:: jemalloc:/usr/lib/$MA/libjemalloc.so.2: tcmalloc:/usr/lib/$MA/libtcmalloc_minimal.so.4:
mimalloc:/usr/lib/$MA/libmimalloc.so.2:"
[ -n "$SCUDO" ] && SPECS="$SPECS scudo:$SCUDO:"
SPECS="$SPECS ebb-default:$EBB: ebb-secure:$EBB:EBB_SECURE=1 ebb-guard:$EBB:EBB_GUARD=1 ebb-guard-before:$EBB:EBB_GUARD=before"

# The cases comparable across allocators, from the test itself.
CASES=$("$T" --list) || exit 1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
header="| case |"
sep="|---|"
for spec in $SPECS; do
    header="$header ${spec%%:*} |"
    sep="$sep:---:|"
done
{
    echo "# Heap misuse: which allocator reports what"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`sh bench/misuse.sh\`: each case of"
    echo "\`tests/preload/test_misuse.c\` run once under each allocator (\`LD_PRELOAD\`)."
    echo "**reported**: stopped with a message; crash: killed by a signal without"
    echo "a word; —: the program went on (undetected); n/a: the case cannot be"
    echo "set up under that allocator (no C++ runtime to look up, no neighbouring"
    echo "blocks)."
    echo
    echo "$header"
    echo "$sep"
} > "$OUT"
for c in $CASES; do
    row="| $c |"
    for spec in $SPECS; do
        name=${spec%%:*}
        rest=${spec#*:}
        lib=${rest%%:*}
        settings=${rest#*:}
        if [ -n "$lib" ] && [ ! -f "$lib" ]; then
            row="$row n/a |"
            continue
        fi
        # shellcheck disable=SC2086
        timeout 20 env ${lib:+LD_PRELOAD=$lib} $settings "$T" "$c" > /dev/null 2> "$WORK/err"
        rc=$?
        # The shell's own line about a death by signal is not a report.
        grep -v -E '(Segmentation fault|Aborted|Bus error|Illegal instruction|Killed)( +\(core dumped\))?' \
            "$WORK/err" | grep -v -E "^[[:space:]]*$|timeout" > "$WORK/said"
        if [ "$rc" -eq 0 ]; then
            cell="—"
        elif [ "$rc" -eq 4 ]; then
            cell="n/a" # the case cannot be set up there (test_misuse.c)
        elif [ -s "$WORK/said" ]; then
            cell="**reported**"
        else
            cell="crash"
        fi
        row="$row $cell |"
    done
    echo "$row" >> "$OUT"
done
# Totals per allocator.
awk -F'|' '/^\| [a-z]/ && !/^\| case/ { for (i = 3; i < NF; i++) { if ($i !~ /n\/a/) n[i]++; if ($i ~ /reported/) r[i]++ } last = NF }
    END { line = "| **reported** |"; for (i = 3; i < last; i++) line = line " " r[i] + 0 "/" n[i] " |"; print line }' \
    "$OUT" >> "$OUT"
cat "$OUT"
