#!/bin/sh
# make run: a real program under ebbmalloc, and what the allocator did.
set -e
LIB=$(pwd)/build/libebbmalloc.so
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
echo "Running python3 with LD_PRELOAD=$LIB"
echo
# PYTHONMALLOC=malloc: every Python object comes from malloc, not from
# pymalloc's own arenas, so the allocator sees the whole program.
env LD_PRELOAD="$LIB" EBB_STATS=1 PYTHONMALLOC=malloc "$PY" tools/demo.py
echo
echo "The last line is EBB_STATS=1's summary, printed by the allocator at exit."
