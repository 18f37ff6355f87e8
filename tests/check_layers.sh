#!/bin/sh
# The os layer is the only code that makes system calls (docs/ARCHITECTURE.md).
leaks=$(grep -nE '\b(mmap|munmap|madvise|mprotect|mremap|sbrk|brk|syscall)[[:space:]]*\(' src/*.c src/*.h |
        grep -v '^src/os\.c:')
if [ -n "$leaks" ]; then
    echo "system calls outside src/os.c:"
    echo "$leaks"
    exit 1
fi
# The layers below the heap read the layout the modes ask for (ebbi_layout),
# never a mode (docs/ARCHITECTURE.md, "Safety modes").
modes=$(grep -nE '\bebbi_safety\b|\bSAFETY_[A-Z_]+' src/source.c src/segment.c src/arena.c src/page.c \
        src/huge.c src/ownmap.c)
if [ -n "$modes" ]; then
    echo "safety modes read below the heap:"
    echo "$modes"
    exit 1
fi
