#!/bin/sh
# test: install
# make install into a staging directory: the files land where PREFIX and
# DESTDIR say, pkg-config finds the library, and a program built with its
# flags runs on ebbmalloc.  Prints "N passed, N failed".
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
make --no-print-directory install PREFIX=/opt/ebb DESTDIR="$STAGE" > "$STAGE/log" 2>&1
check "make install succeeds" test $? -eq 0
for f in lib/libebbmalloc.so lib/libebbmalloc.so.0 lib/libebbmalloc.a include/ebbmalloc.h \
         lib/pkgconfig/ebbmalloc.pc bin/ebb share/man/man1/ebb.1 share/man/man3/ebbmalloc.3; do
    check "installed $f" test -e "$STAGE/opt/ebb/$f"
done
check "the soname is libebbmalloc.so.0" sh -c "objdump -p '$STAGE/opt/ebb/lib/libebbmalloc.so' | grep -q 'SONAME *libebbmalloc.so.0'"
export PKG_CONFIG_PATH="$STAGE/opt/ebb/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$STAGE"
flags=$(pkg-config --cflags --libs ebbmalloc)
check "pkg-config knows ebbmalloc" test -n "$flags"
cat > "$STAGE/prog.c" <<'PROG'
#include <stdio.h>
#include <stdlib.h>
#include <ebbmalloc.h>
int main(void)
{
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    char *p = malloc(100);
    ebb_stats_get(&after);
    printf("%d\n", p != NULL && after.malloc_calls == before.malloc_calls + 1);
    free(p);
    return 0;
}
PROG
# shellcheck disable=SC2086
cc "$STAGE/prog.c" -o "$STAGE/prog" $flags
check "a program builds with pkg-config's flags" test -x "$STAGE/prog"
out=$(LD_LIBRARY_PATH="$STAGE/opt/ebb/lib" "$STAGE/prog")
check "the linked program's malloc is ebbmalloc's" test "$out" = 1
# The installed ebb finds the installed library (../lib beside it).
out=$("$STAGE/opt/ebb/bin/ebb" run --quiet --csv "$STAGE/run.csv" -- true; echo $?)
check "the installed ebb runs a program on the installed library" test "$out" = 0
check "...and collects its statistics" test "$(wc -l < "$STAGE/run.csv")" -ge 2
check "man pages are valid roff" sh -c "man -l '$STAGE/opt/ebb/share/man/man1/ebb.1' > /dev/null 2>&1 || groff -man -Tutf8 '$STAGE/opt/ebb/share/man/man1/ebb.1' > /dev/null"
finish
