/* test: sample           fast
 * test: test_sample      sanitize */
/* EBB_GUARD_SAMPLE: how many allocations the sampled guard takes, its
 * budget (EBB_GUARD_SAMPLE_BUDGET), and what sampling must not change.
 * Options are read once, at the allocator's start: each case runs in a
 * child (this program again) with its own environment, and the child's
 * checks count in its closing line, which the parent adds to its own. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

extern char **environ;

static struct ebb_stats stats(void)
{
    struct ebb_stats s;
    ebb_stats_get(&s);
    return s;
}

/* For the loops: a failed allocation ends the case (REQUIRE would count a
 * check per block). */
static void *must(void *p)
{
    if (p == NULL)
        REQUIRE(0, "allocation failed");
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1 in 1000, no budget: about a thousandth of the allocations are guarded,
 * and each guarded block is closed (an mprotect) when freed. */
static void case_rate(void)
{
    enum { COUNT = 400000 };
    static void *blocks[COUNT];
    struct ebb_stats before = stats();
    for (unsigned i = 0; i < COUNT; i++) {
        size_t size = 64 + (i * 37) % 960;
        blocks[i] = must(ebb_malloc(size));
        memset(blocks[i], (int)i, size);
    }
    struct ebb_stats allocated = stats();
    for (unsigned i = 0; i < COUNT; i++)
        ebb_free(blocks[i]);
    struct ebb_stats after = stats();
    uint64_t taken = after.guard_samples - before.guard_samples;
    CHECK(taken >= COUNT / 1000 * 6 / 10 && taken <= COUNT / 1000 * 14 / 10, "%lu samples in %d allocations",
          (unsigned long)taken, COUNT);
    CHECK(after.guard_samples_skipped == before.guard_samples_skipped, "no budget, yet %lu skipped",
          (unsigned long)(after.guard_samples_skipped - before.guard_samples_skipped));
    CHECK(after.os_mprotect - allocated.os_mprotect >= taken, "%lu mprotect calls freeing %lu sampled blocks",
          (unsigned long)(after.os_mprotect - allocated.os_mprotect), (unsigned long)taken);
}

/* Allocates and frees `batches` batches of 64-byte blocks (each batch takes
 * the slow path, where samples are drawn); returns the samples due. */
static uint64_t churn_batches(unsigned batches)
{
    enum { BATCH = 256 };
    void *batch[BATCH];
    struct ebb_stats before = stats();
    for (unsigned b = 0; b < batches; b++) {
        for (unsigned i = 0; i < BATCH; i++) {
            batch[i] = must(ebb_malloc(64));
            *(volatile char *)batch[i] = 1;
        }
        for (unsigned i = 0; i < BATCH; i++)
            ebb_free(batch[i]);
    }
    struct ebb_stats after = stats();
    return after.guard_samples + after.guard_samples_skipped - before.guard_samples - before.guard_samples_skipped;
}

/* 1 in 10 over 20,000 batches, with the default budget (1%: 1 ms to start
 * with, then 1% of the time passing).  Taking every sample due would cost
 * far more than 1% of the run (two mprotect calls each, against a few
 * nanoseconds per allocation), so some are left out, and what is taken
 * stays a small part of what fell due. */
static void case_budget(void)
{
    struct ebb_stats before = stats();
    double start = now_s();
    uint64_t due = churn_batches(20000);
    double seconds = now_s() - start;
    struct ebb_stats after = stats();
    uint64_t taken = after.guard_samples - before.guard_samples;
    uint64_t skipped = after.guard_samples_skipped - before.guard_samples_skipped;
    CHECK(due > 10000, "%lu samples due", (unsigned long)due);
    CHECK(skipped > 0, "%lu samples due in %.3f s, %lu taken, none left out", (unsigned long)due, seconds,
          (unsigned long)taken);
    CHECK(taken < due / 2, "%lu of %lu samples taken within a 1%% budget (%.3f s)", (unsigned long)taken,
          (unsigned long)due, seconds);
    /* What the sampled path took (guard_sample_ns, the budget's measure)
     * stays within the budget: 1% of the time passed, plus the 1 ms it
     * starts with and the 1 ms of debt one dear sample may leave; 2% and
     * 5 ms leave room for a sample descheduled half-way. */
    uint64_t spent = after.guard_sample_ns - before.guard_sample_ns;
    CHECK(spent > 0, "%lu samples taken in no time", (unsigned long)taken);
    CHECK(spent <= (uint64_t)(seconds * 1e9 * 0.02) + 5000000u, "%.3f ms spent on samples in %.3f s",
          spent / 1e6, seconds);
}

/* The same with the budget off: every sample due is taken. */
static void case_no_budget(void)
{
    struct ebb_stats before = stats();
    uint64_t due = churn_batches(2000);
    struct ebb_stats after = stats();
    CHECK(due > 100, "%lu samples due", (unsigned long)due);
    CHECK(after.guard_samples - before.guard_samples == due, "%lu of %lu taken",
          (unsigned long)(after.guard_samples - before.guard_samples), (unsigned long)due);
    /* Measured without a budget too: two system calls a sample at least. */
    CHECK(after.guard_sample_ns - before.guard_sample_ns >= due * 200, "%lu samples in %lu ns", (unsigned long)due,
          (unsigned long)(after.guard_sample_ns - before.guard_sample_ns));
}

static pthread_barrier_t all_allocated;

static void *one_block(void *arg)
{
    (void)arg;
    void *p = ebb_malloc(64);
    if (p != NULL)
        *(volatile char *)p = 1;
    pthread_barrier_wait(&all_allocated); /* alive together: a heap each */
    ebb_free(p);
    return NULL;
}

/* A new thread's first allocation is not a sample (it was, before each
 * heap's countdown was drawn at its first look): with N = 10^9, 64 threads
 * alive at once, each allocating once, take none. */
static void case_threads(void)
{
    enum { THREADS = 64 };
    pthread_t t[THREADS];
    REQUIRE(pthread_barrier_init(&all_allocated, NULL, THREADS) == 0);
    for (int i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, one_block, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    struct ebb_stats s = stats();
    CHECK(s.malloc_calls >= THREADS);
    CHECK(s.guard_samples == 0 && s.guard_samples_skipped == 0, "%lu samples, %lu skipped",
          (unsigned long)s.guard_samples, (unsigned long)s.guard_samples_skipped);
}

/* Which of `count` allocations of 64 bytes the sampled guard took, as a
 * bit per allocation (the blocks are kept: each draw is a new one). */
static void sampled_set(unsigned char *bits, unsigned count)
{
    memset(bits, 0, (count + 7) / 8);
    for (unsigned i = 0; i < count; i++) {
        uint64_t before = stats().guard_samples;
        *(volatile char *)must(ebb_malloc(64)) = 1;
        if (stats().guard_samples != before)
            bits[i / 8] |= (unsigned char)(1u << (i % 8));
    }
}

/* After fork, parent and child sample different allocations: the child's
 * heaps (the forking thread's included) draw from a new key. */
static void case_fork(void)
{
    enum { COUNT = 4000 };
    static unsigned char mine[COUNT / 8], theirs[COUNT / 8];
    for (int i = 0; i < 300; i++) /* the heap has looked before the fork */
        *(volatile char *)must(ebb_malloc(64)) = 1;
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sampled_set(theirs, COUNT);
        ssize_t w = write(fds[1], theirs, sizeof theirs);
        _exit(w == (ssize_t)sizeof theirs ? 0 : 1);
    }
    sampled_set(mine, COUNT);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof theirs && (r = read(fds[0], theirs + got, sizeof theirs - got)) > 0)
        got += (size_t)r;
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(got == sizeof theirs && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's samples");
    unsigned mine_count = 0, theirs_count = 0;
    for (unsigned i = 0; i < COUNT; i++) {
        mine_count += (mine[i / 8] >> (i % 8)) & 1;
        theirs_count += (theirs[i / 8] >> (i % 8)) & 1;
    }
    CHECK(mine_count > 10 && theirs_count > 10, "%u and %u samples", mine_count, theirs_count);
    CHECK(memcmp(mine, theirs, sizeof mine) != 0, "parent and child sampled the same %u allocations", mine_count);
}

/* A 1000-byte block, filled, shrunk to 900 bytes by realloc: whether it
 * moved, and the block (its bytes checked). */
static char *shrink(bool *moved)
{
    char *p = ebb_malloc(1000);
    REQUIRE(p != NULL);
    memset(p, 7, 1000);
    char *q = ebb_realloc(p, 900);
    REQUIRE(q != NULL);
    CHECK(q[0] == 7 && q[899] == 7);
    *moved = q != p;
    return q;
}

/* Sampling does not change what realloc does with an unsampled block: a
 * block that still fits stays where it is, as in the default mode. */
static void case_realloc(void)
{
    bool moved;
    ebb_free(shrink(&moved));
    CHECK(!moved, "realloc to a smaller size moved an unsampled block");
}

/* A guarded block (every block, at N = 1) moves, so that its end stays
 * against its guard page: an overflow of the new size still faults. */
static void case_realloc_guarded(void)
{
    bool moved;
    char *q = shrink(&moved);
    CHECK(moved, "a guarded block kept its place when it shrank");
    CHECK(((uintptr_t)q + 912) % (uintptr_t)sysconf(_SC_PAGESIZE) == 0, "%p does not end against a page", (void *)q);
    ebb_free(q);
}

/* Secure mode moves a block that shrinks: its canary follows the size
 * asked for, so an overflow past the new size is still caught. */
static void case_realloc_secure(void)
{
    bool moved;
    ebb_free(shrink(&moved));
    CHECK(moved, "secure mode kept a shrunk block in place");
}

static const struct {
    const char *name;
    const char *env;
    void (*run)(void);
} cases[] = {
    {"rate", "EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET=0", case_rate},
    {"budget", "EBB_GUARD_SAMPLE=10", case_budget},
    {"no-budget", "EBB_GUARD_SAMPLE=10 EBB_GUARD_SAMPLE_BUDGET=0", case_no_budget},
    {"threads", "EBB_GUARD_SAMPLE=1000000000", case_threads},
    {"fork", "EBB_GUARD_SAMPLE=50 EBB_GUARD_SAMPLE_BUDGET=0", case_fork},
    {"realloc", "EBB_GUARD_SAMPLE=1000000000", case_realloc},
    {"realloc-guarded", "EBB_GUARD_SAMPLE=1", case_realloc_guarded},
    {"realloc-secure", "EBB_SECURE=1", case_realloc_secure},
};

/* Runs a case in a child with its environment; adds up its line. */
static void run_case(const char *self, unsigned index)
{
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        /* Only the case's own settings. */
        for (int again = 1; again;) {
            again = 0;
            for (char **e = environ; *e != NULL; e++)
                if (strncmp(*e, "EBB_", 4) == 0) {
                    char name[128];
                    snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                    unsetenv(name);
                    again = 1;
                    break;
                }
        }
        char env[256];
        snprintf(env, sizeof env, "%s", cases[index].env);
        for (char *tok = strtok(env, " "); tok != NULL; tok = strtok(NULL, " ")) {
            char *eq = strchr(tok, '=');
            *eq = '\0';
            setenv(tok, eq + 1, 1);
        }
        execl(self, self, cases[index].name, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char text[512];
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof text && (r = read(out[0], text + n, sizeof text - 1 - n)) > 0)
        n += (size_t)r;
    text[n] = '\0';
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int passed = 0, failed = 0;
    const char *line = strstr(text, " passed, ");
    while (line != NULL && line > text && line[-1] >= '0' && line[-1] <= '9')
        line--;
    CHECK(line != NULL && sscanf(line, "%d passed, %d failed", &passed, &failed) == 2 && WIFEXITED(status),
          "case %s [%s]: no closing line (status %d): %s", cases[index].name, cases[index].env, status, text);
    check_passed_count += passed;
    check_failed_count += failed;
    if (failed > 0)
        fprintf(stderr, "  (in case %s [%s])\n", cases[index].name, cases[index].env);
}

int main(int argc, char **argv)
{
    unsigned count = sizeof cases / sizeof cases[0];
    if (argc > 1) {
        for (unsigned i = 0; i < count; i++)
            if (strcmp(argv[1], cases[i].name) == 0)
                cases[i].run();
        return check_summary();
    }
    for (unsigned i = 0; i < count; i++)
        run_case(argv[0], i);
    return check_summary();
}
