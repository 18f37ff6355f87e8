#!/bin/sh
# make run: a real program (python3) under ebb, and what the allocator did.
set -e
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
echo "Running: build/ebb run --html build/report.html -- python3 tools/demo.py"
echo "(PYTHONMALLOC=malloc: every Python object comes from malloc, not from"
echo " pymalloc's own arenas, so the allocator sees the whole program)"
echo
env PYTHONMALLOC=malloc build/ebb run --html build/report.html -- "$PY" tools/demo.py
echo
echo "Open build/report.html in a browser for the timeline: in use, freed but"
echo "not reclaimed, metadata, resident memory, and where memory went back."
