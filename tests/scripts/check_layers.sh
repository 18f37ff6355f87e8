#!/bin/sh
# test: layers           check
# The os layer is the only code that makes system calls, or C library calls
# that may block, allocate or take a lock of the C library's
# (docs/ARCHITECTURE.md), and none calls malloc and its family.  Allowed
# elsewhere: getenv (reads the
# environment in place), pthread mutexes and keys, pthread_atfork (init.c,
# at start) and malloc_info's fwrite (stats.c: the caller asked for a FILE).
CALLS='mmap|munmap|madvise|process_madvise|mprotect|mremap|sbrk|brk|syscall|open|openat|read|pread|write|close|
clock_gettime|nanosleep|usleep|sched_yield|sched_getaffinity|sysconf|getauxval|getrlimit|prctl|getpid|getppid|
sigaction|sigprocmask|pthread_sigmask|raise|abort|kill|pthread_create|pthread_setname_np|dladdr|dlsym|dlopen|
fopen|fprintf|printf|snprintf|fwrite|fputs|perror|strerror|getrandom|pidfd_open|readlink|backtrace|
pthread_cond_[a-z]+|pthread_condattr_[a-z]+|pthread_join|pthread_detach|pthread_kill|gettimeofday|poll|select|ioctl|
fstat|stat|ftruncate|unlink|fork|waitpid|dup|dup2|fcntl|lseek|setrlimit|sigaltstack|signal|exit|_exit|
malloc|calloc|realloc|free|strdup|qsort|fflush|fclose|dl_iterate_phdr|_Unwind_Backtrace|pthread_getattr_np|membarrier'
CALLS=$(printf '%s' "$CALLS" | tr -d '\n')
# Comments are cut first; the C names' definitions (EBB_ALIAS) are no calls.
leaks=$(grep -nE "(^|[^_.>a-zA-Z0-9])($CALLS)[[:space:]]*\(" src/*.c src/*.h |
        grep -v '^src/os\.c:' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' |
        sed -E 's#/\*.*##; s#//.*##' | grep -E "(^|[^_.>a-zA-Z0-9])($CALLS)[[:space:]]*\(" |
        grep -v 'EBB_ALIAS(' | grep -v '^src/stats\.c:.*fwrite(buf, 1, n, stream)')
if [ -n "$leaks" ]; then
    echo "system or blocking C library calls outside src/os.c:"
    echo "$leaks"
    echo "0 passed, 1 failed"
    exit 1
fi
# The layers below the heap read the layout the modes ask for (ebbi_layout),
# never a mode (docs/ARCHITECTURE.md, "Safety modes").
modes=$(grep -nE '\bebbi_safety\b|\bSAFETY_[A-Z_]+' src/source.c src/segment.c src/arena.c src/page.c \
        src/huge.c src/ownmap.c)
if [ -n "$modes" ]; then
    echo "safety modes read below the heap:"
    echo "$modes"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "1 passed, 0 failed"
