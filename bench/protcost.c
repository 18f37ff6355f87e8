/*
 * protcost: what one sample of EBB_GUARD_SAMPLE costs on this machine at
 * the least, without the allocator: the page-protection changes a sampled
 * block goes through, timed one by one on a page of its own beside a
 * PROT_NONE page, as the allocator lays it out.
 *
 *   close:  mprotect(PROT_NONE) of a page just written (the free; the
 *           kernel flushes the page from the TLB)
 *   open:   mprotect(PROT_READ|PROT_WRITE) of it again (the next sample)
 *   touch:  the first write after the open (a fault when the kernel or a
 *           hypervisor has to map the page again)
 *
 * then the close again while a second thread of the process runs on
 * another CPU (a threaded program: the flush interrupts that CPU).
 * Prints medians in microseconds.
 *
 *   protcost [rounds]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 64

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

static atomic_int spinning, stop;

static void *spin(void *arg)
{
    (void)arg;
    atomic_store(&spinning, 1);
    while (!atomic_load(&stop))
        ; /* busy on its CPU, this process's page tables loaded */
    return NULL;
}

/* Rounds of close, open, touch over SLOTS pages; the medians of each. */
static void measure(char *base, size_t ps, int rounds, double *close_us, double *open_us, double *touch_us)
{
    double *c = calloc((size_t)rounds, sizeof *c), *o = calloc((size_t)rounds, sizeof *o),
           *t = calloc((size_t)rounds, sizeof *t);
    if (c == NULL || o == NULL || t == NULL) {
        perror("protcost");
        exit(1);
    }
    for (int r = 0; r < rounds; r++) {
        volatile char *p = base + 2 * ps * (size_t)(r % SLOTS);
        p[0] = 1;
        double a = now_us();
        if (mprotect((void *)p, ps, PROT_NONE) != 0)
            perror("mprotect");
        double b = now_us();
        if (mprotect((void *)p, ps, PROT_READ | PROT_WRITE) != 0)
            perror("mprotect");
        double d = now_us();
        p[64] = 2;
        double e = now_us();
        c[r] = b - a;
        o[r] = d - b;
        t[r] = e - d;
    }
    *close_us = median(c, rounds);
    *open_us = median(o, rounds);
    *touch_us = median(t, rounds);
    free(c);
    free(o);
    free(t);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 4000;
    if (rounds < 1)
        rounds = 1;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    /* Data pages at even indexes, PROT_NONE guards at odd ones. */
    char *base = mmap(NULL, 2 * ps * SLOTS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("protcost: mmap");
        return 1;
    }
    for (int i = 0; i < SLOTS; i++) {
        base[2 * ps * (size_t)i] = 1;
        mprotect(base + (2 * (size_t)i + 1) * ps, ps, PROT_NONE);
    }
    double c1, o1, t1, c2, o2, t2;
    measure(base, ps, rounds, &c1, &o1, &t1);
    pthread_t other;
    int threaded = pthread_create(&other, NULL, spin, NULL) == 0;
    if (threaded) {
        while (!atomic_load(&spinning))
            ;
        measure(base, ps, rounds, &c2, &o2, &t2);
        atomic_store(&stop, 1);
        pthread_join(other, NULL);
    }
    printf("one thread: close %.2f us, open %.2f us, first touch %.2f us: %.2f us a sample\n", c1, o1, t1,
           c1 + o1 + t1);
    if (threaded)
        printf("another thread running: close %.2f us, open %.2f us, first touch %.2f us: %.2f us a sample\n", c2,
               o2, t2, c2 + o2 + t2);
    return 0;
}
