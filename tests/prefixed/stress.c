/* test: stress           -- "$STRESS_SECONDS"
 * test: stress-short     check -- 3
 * test: stress-debug     debug EBB_RECLAIM_DELAY_MS=5 -- 10
 * test: stress-profile   EBB_PROFILE=1 EBB_PROFILE_RATE=8192 -- 10
 * test: stress           sanitize -- "$SAN_STRESS_SECONDS"
 * test: stress-profile   sanitize EBB_PROFILE=1 -- "$SAN_STRESS_SECONDS"
 * build: -O2 */
/* Stress: many threads, random size mixes, most frees cross-thread, thread
 * churn, fork storms — every block's contents checked before it is freed,
 * the statistics checked when all is quiet.  Bounded by time; prints its
 * figures (operations, threads, forks, data lost: must be 0) and
 * "N passed, N failed".
 *
 *   stress SECONDS [MAX_THREADS]
 *
 * Built with the prefixed API (ebb_*), so that the C library's malloc
 * serves the harness and the counts are exact. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

#define SLOTS 65536

/* TSan does not support fork in a threaded program: its build leaves the
 * fork storms out. */
#ifdef EBB_TEST_NO_FORK
#define FORKS_PER_GENERATION 0
#else
#define FORKS_PER_GENERATION 3
#endif

typedef struct {
    _Atomic(uint64_t *) p; /* block: word 0 = tag, word 1 = size, then a pattern */
} slot_t;

static slot_t slots[SLOTS];
static atomic_ulong ops, corrupt, failed_allocs, forks_done, threads_started;
static atomic_int stop;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t random_size(uint64_t *s)
{
    uint64_t r = rnd(s) % 1000;
    if (r < 700)
        return 16 + rnd(s) % 240;          /* small */
    if (r < 950)
        return 256 + rnd(s) % 8000;        /* medium */
    if (r < 995)
        return 8192 + rnd(s) % 500000;     /* large, in pages */
    return (2u << 20) + rnd(s) % (6u << 20); /* huge */
}

static uint64_t pattern(uint64_t tag, size_t i)
{
    return tag * 0x9e3779b97f4a7c15u + i;
}

static uint64_t *make_block(uint64_t *s)
{
    size_t size = random_size(s);
    uint64_t *p;
    uint64_t kind = rnd(s) % 10;
    if (kind == 0)
        p = ebb_calloc(1, size);
    else if (kind == 1)
        p = ebb_memalign((size_t)16 << (rnd(s) % 10), size);
    else
        p = ebb_malloc(size);
    if (p == NULL) {
        atomic_fetch_add(&failed_allocs, 1);
        return NULL;
    }
    if (kind == 0)
        for (size_t i = 0; i < size / 8; i += 61)
            if (p[i] != 0)
                atomic_fetch_add(&corrupt, 1);
    uint64_t tag = rnd(s);
    size_t words = size / 8;
    p[0] = tag;
    p[1] = size;
    /* The whole block for small ones; a sample of pages for big ones. */
    size_t step = words > 4096 ? 509 : 1;
    for (size_t i = 2; i < words; i += step)
        p[i] = pattern(tag, i);
    if (words > 2)
        p[words - 1] = pattern(tag, words - 1);
    return p;
}

static void check_and_free(uint64_t *p)
{
    uint64_t tag = p[0];
    size_t size = p[1];
    size_t words = size / 8;
    size_t step = words > 4096 ? 509 : 1;
    bool ok = size >= 16 && ebb_malloc_usable_size(p) >= size;
    for (size_t i = 2; ok && i < words; i += step)
        ok = p[i] == pattern(tag, i);
    if (ok && words > 2)
        ok = p[words - 1] == pattern(tag, words - 1);
    if (!ok)
        atomic_fetch_add(&corrupt, 1);
    if (ebb_realloc(p, 0) != NULL) /* realloc(p, 0) frees p, as free would */
        atomic_fetch_add(&corrupt, 1);
}

/* Replace random slots: the old block was most likely made by another
 * thread.  Now and then grow one with realloc. */
static void *worker(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x2545F4914F6CDD1Du + 1;
    unsigned long n = 0;
    atomic_fetch_add(&threads_started, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && n < 200000) {
        slot_t *slot = &slots[rnd(&s) % SLOTS];
        uint64_t *fresh = make_block(&s);
        if (fresh != NULL && rnd(&s) % 50 == 0) {
            size_t size = fresh[1], more = size + rnd(&s) % 5000;
            uint64_t tag = fresh[0];
            uint64_t *q = ebb_realloc(fresh, more);
            if (q != NULL) {
                for (size_t i = 2; i < size / 8 && i < 512; i++)
                    if (q[i] != pattern(tag, i) && size / 8 <= 4096)
                        atomic_fetch_add(&corrupt, 1);
                fresh = q; /* keeps its old size stamp: the checked prefix */
            }
        }
        uint64_t *old = atomic_exchange(&slot->p, fresh);
        if (old != NULL)
            check_and_free(old);
        /* Now and then the thread trims: its sparse pages are decommitted
         * while other threads free into them. */
        if (rnd(&s) % 4096 == 0)
            ebb_malloc_trim(0);
        n++;
    }
    atomic_fetch_add(&ops, n);
    return NULL;
}

/* A fork in the middle of it all: the child allocates, frees, starts
 * threads, and must end well. */
static int fork_child(void)
{
    alarm(30);
    uint64_t s = (uint64_t)getpid();
    uint64_t *mine[256];
    for (int i = 0; i < 256; i++)
        mine[i] = make_block(&s);
    for (int i = 0; i < 256; i++)
        if (mine[i] != NULL)
            check_and_free(mine[i]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1000));
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return atomic_load(&corrupt) != 0;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 60;
    int max_threads = argc > 2 ? atoi(argv[2]) : 16;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = (int)(2 * cpus) > max_threads ? max_threads : (int)(2 * cpus);
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    time_t start = time(NULL);
    int fork_failures = 0;
    unsigned long generations = 0;
    /* Generations of threads (churn): from 2 x nproc up to MAX_THREADS. */
    while (time(NULL) - start < seconds) {
        atomic_store(&stop, 0);
        int n = threads + (int)(generations % (unsigned long)(max_threads - threads + 1));
        pthread_t t[64];
        for (int i = 0; i < n; i++)
            pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(generations * 64 + (unsigned long)i + 1));
        /* A fork storm while they run. */
        usleep(100000);
        for (int k = 0; k < FORKS_PER_GENERATION; k++) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(fork_child());
            int status = 0;
            waitpid(pid, &status, 0);
            fork_failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
            atomic_fetch_add(&forks_done, 1);
        }
        usleep(200000);
        atomic_store(&stop, 1);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        generations++;
    }
    /* Quiet: free everything, the books must balance. */
    for (int i = 0; i < SLOTS; i++) {
        uint64_t *p = atomic_exchange(&slots[i].p, NULL);
        if (p != NULL)
            check_and_free(p);
    }
    ebb_stats_get(&after);
    printf("stress: %lu operations, %lu threads in %lu generations (2 x %ld CPUs up to %d), %lu forks, "
           "%lu allocations refused, %lu blocks corrupted (data lost)\n",
           atomic_load(&ops), atomic_load(&threads_started), generations, cpus, max_threads,
           atomic_load(&forks_done), atomic_load(&failed_allocs), atomic_load(&corrupt));
    CHECK(atomic_load(&corrupt) == 0, "%lu blocks lost their contents", atomic_load(&corrupt));
    CHECK(fork_failures == 0, "%d forked children failed", fork_failures);
    CHECK(atomic_load(&failed_allocs) == 0, "allocations refused without memory pressure");
    CHECK(after.in_use == before.in_use, "every block freed: in use %lu -> %lu", (unsigned long)before.in_use,
          (unsigned long)after.in_use);
    CHECK(after.malloc_calls - before.malloc_calls == after.free_calls - before.free_calls,
          "as many frees as allocations");
    return check_summary();
}
