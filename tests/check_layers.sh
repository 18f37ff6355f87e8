#!/bin/sh
# The os layer is the only code that makes system calls (docs/ARCHITECTURE.md).
leaks=$(grep -nE '\b(mmap|munmap|madvise|mprotect|mremap|sbrk|brk|syscall)[[:space:]]*\(' src/*.c src/*.h |
        grep -v '^src/os\.c:')
if [ -n "$leaks" ]; then
    echo "system calls outside src/os.c:"
    echo "$leaks"
    exit 1
fi
