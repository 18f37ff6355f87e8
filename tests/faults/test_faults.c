/* test: faults           long */
/* Fault injection: the allocator built with -DEBB_FAULT_INJECTION=1 can be
 * told to fail the N-th (or every K-th) mmap, munmap, madvise, mremap or brk
 * (src/os.c).  For each kind and many N, a child runs a workload of every
 * kind of block; every failure must end in NULL with ENOMEM or in a
 * working fallback, never in a crash or in lost data, and the allocator
 * must recover.  Prints the figures and "N passed, N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

long ebbi_os_faults_injected(void);

#define N 3000

static uint64_t pattern(size_t i, size_t k)
{
    return (uint64_t)i * 0x9e3779b97f4a7c15u + k;
}

/* The workload.  Exit 0: all well; 1: data lost or a wrong failure. */
static int workload(void)
{
    static uint64_t *p[N];
    static size_t sz[N];
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    int bad = 0, refused = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N; i++) {
            size_t size = i % 500 == 0 ? (3u << 20) + i * 512 : i % 50 == 0 ? 70000 + i : 16 + (i * 37) % 3000;
            errno = 0;
            uint64_t *b = i % 7 == 0 ? ebb_calloc(1, size) : i % 11 == 0 ? ebb_memalign(4096, size) : ebb_malloc(size);
            if (b == NULL) {
                bad += errno != ENOMEM;
                refused++;
                p[i] = NULL;
                continue;
            }
            if (i % 7 == 0)
                for (size_t k = 0; k < size / 8; k += 97)
                    bad += b[k] != 0;
            for (size_t k = 0; k < size / 8; k += 3)
                b[k] = pattern(i, k);
            p[i] = b;
            sz[i] = size;
        }
        /* Grow some, through every kind of block. */
        for (size_t i = 0; i < N; i += 13) {
            if (p[i] == NULL)
                continue;
            size_t more = sz[i] * 3 + 100000;
            errno = 0;
            uint64_t *q = ebb_realloc(p[i], more);
            if (q == NULL) {
                bad += errno != ENOMEM;
                refused++;
                continue; /* the old block stays */
            }
            p[i] = q;
        }
        for (size_t i = 0; i < N; i++)
            if (p[i] != NULL && i % 2 == (size_t)round % 2) {
                for (size_t k = 0; k < sz[i] / 8; k += 3)
                    bad += p[i][k] != pattern(i, k);
                ebb_free(p[i]);
                p[i] = NULL;
            }
        ebb_malloc_trim(0);
        for (size_t i = 0; i < N; i++)
            if (p[i] != NULL) {
                for (size_t k = 0; k < sz[i] / 8; k += 3)
                    bad += p[i][k] != pattern(i, k);
                ebb_free(p[i]);
                p[i] = NULL;
            }
    }
    ebb_malloc_trim(0);
    ebb_stats_get(&after);
    bad += after.in_use != before.in_use;
    /* Recovered: with no failure coming, everything works again. */
    void *last = ebb_malloc(5u << 20);
    void *small = ebb_malloc(100);
    ebb_free(last);
    ebb_free(small);
    printf("faults=%ld refused=%d bad=%d\n", ebbi_os_faults_injected(), refused, bad);
    return bad != 0;
}

static const char *const kinds[] = {"MMAP", "MUNMAP", "MADVISE", "MREMAP", "BRK"};

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return workload();
    long total_faults = 0, runs = 0, refused = 0;
    int failures = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int every = 0; every <= 1; every++) {
            for (long n = 1; n <= (every ? 5 : 40); n++) {
                int out[2];
                if (pipe(out) != 0)
                    abort();
                pid_t pid = fork();
                if (pid == 0) {
                    char name[48], value[24];
                    snprintf(name, sizeof name, "EBB_FAULT_%s%s", every ? "EVERY_" : "", kinds[k]);
                    snprintf(value, sizeof value, "%ld", every ? n + 1 : n);
                    setenv(name, value, 1);
                    setenv("EBB_BRK", "1", 1);
                    dup2(out[1], 1);
                    execl("/proc/self/exe", "test_faults", "child", (char *)NULL);
                    _exit(127);
                }
                close(out[1]);
                char text[256] = "";
                ssize_t got = read(out[0], text, sizeof text - 1);
                text[got > 0 ? got : 0] = '\0';
                close(out[0]);
                int status = 0;
                waitpid(pid, &status, 0);
                long faults = 0;
                int refused_here = 0, bad = -1;
                sscanf(text, "faults=%ld refused=%d bad=%d", &faults, &refused_here, &bad);
                runs++;
                total_faults += faults;
                refused += refused_here;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || bad != 0) {
                    failures++;
                    fprintf(stderr, "FAIL: %s %s=%ld: %s (status %d)\n", kinds[k], every ? "every" : "nth",
                            every ? n + 1 : n, text, status);
                }
            }
        }
    }
    printf("fault injection: %ld runs, %ld faults injected, %ld allocations refused with ENOMEM, "
           "%d runs with lost data or a crash\n",
           runs, total_faults, refused, failures);
    CHECK(failures == 0, "%d runs went wrong", failures);
    CHECK(total_faults > runs / 2, "faults were injected (%ld)", total_faults);
    return check_summary();
}
