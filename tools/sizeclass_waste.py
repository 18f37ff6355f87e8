#!/usr/bin/env python3
"""Print the worst-case waste of ebbmalloc's size classes (src/sizeclass.c).

Rounding waste: the largest share of a class that a request of n bytes
(n > 128) leaves unused.  Tail waste: the share of a page that no block
of its class can use.  docs/ARCHITECTURE.md quotes these figures.
"""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "src/sizeclass.c"
rows = [tuple(map(int, m)) for m in re.findall(r"\{(\d+), (\d+)\}", open(path).read())]
slice_size = 64 * 1024
worst_round = (0.0, 0)
worst_tail = (0.0, 0)
prev = 0
for size, slices in rows:
    if size > 128:
        n = prev + 1  # the smallest request of this class
        waste = (size - n) / size
        if waste > worst_round[0]:
            worst_round = (waste, n)
    page = slices * slice_size
    tail = (page % size) / page
    if tail > worst_tail[0]:
        worst_tail = (tail, size)
    prev = size
print("classes: %d, largest %d bytes" % (len(rows), rows[-1][0]))
print("worst rounding waste above 128 bytes: %.2f%% (a request of %d bytes)" % (100 * worst_round[0], worst_round[1]))
print("worst page tail waste: %.2f%% (class %d)" % (100 * worst_tail[0], worst_tail[1]))
both = 1 - (1 - worst_round[0]) * (1 - worst_tail[0])
print("both at once, at most: %.2f%%" % (100 * both))
