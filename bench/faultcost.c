/*
 * faultcost.c — what giving memory back and taking it again costs on this
 * machine, without any allocator (the reasoning is in docs/RECLAIM.md).
 *
 *   usage: faultcost [MIB [ROUNDS]]      (default 1024 MiB, 3 rounds)
 *
 * Each round maps MIB MiB and prints, in ms: the first write (page faults),
 * MADV_DONTNEED of all of it in one call, the write again (page faults
 * again), munmap, MADV_DONTNEED in 64 KiB calls, and a write of a quarter
 * that is resident (no faults).  The first round includes whatever the
 * machine does the first time memory is touched (a VM's host faults).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *map(size_t size)
{
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("faultcost: mmap");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    size_t size = mib << 20;
    printf("%zu MiB: first write | DONTNEED, 1 call | write again | munmap | DONTNEED, 64 KiB calls | "
           "write of a resident quarter (ms)\n", mib);
    for (int r = 0; r < rounds; r++) {
        char *p = map(size);
        double t0 = now_ms();
        memset(p, 1, size);
        double t1 = now_ms();
        madvise(p, size, MADV_DONTNEED);
        double t2 = now_ms();
        memset(p, 2, size);
        double t3 = now_ms();
        munmap(p, size);
        double t4 = now_ms();
        p = map(size);
        memset(p, 3, size);
        double t5 = now_ms();
        for (size_t o = 0; o < size; o += 64 << 10)
            madvise(p + o, 64 << 10, MADV_DONTNEED);
        double t6 = now_ms();
        memset(p, 4, size / 4); /* faults again: not timed */
        double t7 = now_ms();
        memset(p, 5, size / 4);
        double t8 = now_ms();
        munmap(p, size);
        printf("%.0f | %.0f | %.0f | %.0f | %.0f | %.0f\n", t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5,
               t8 - t7);
    }
    return 0;
}
