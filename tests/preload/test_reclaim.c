/* Reclamation, run with LD_PRELOAD=libebbmalloc.so:
 *
 *   test_reclaim PATTERN MODE
 *
 * PATTERN allocates and frees memory in one of the ways programs do;
 * MODE says who must give it back:
 *   background  nobody calls the allocator: within 500 ms resident memory
 *               is back to live data + 4 MiB (the reclaimer thread);
 *   calls       EBB_BACKGROUND=0: after the delay, the next allocator call
 *               that reaches a slow path does it;
 *   trim        malloc_trim(0) brings it to live data + 2 MiB at once.
 * At every check the allocator's own accounting (ebb_stats_get: resident
 * = in use + freed, not reclaimed + metadata) agrees with /proc within 5%
 * + 1 MiB, and calloc of reclaimed memory returns zeros.
 *
 *   test_reclaim steady -
 *
 * A program with a steady footprint makes no madvise or munmap call in
 * its steady phase: memory reused within the delay is never given back.
 *
 *   test_reclaim parked -
 *
 * A thread that frees a block of every class above 1 KiB and then waits,
 * alive and idle: the first page of each class, which its heap keeps for
 * reuse, is given back by the reclaimer thread all the same, and serves
 * the thread again, zeroed, when it wakes.
 *
 *   test_reclaim bigbuffers -
 *
 * Big buffers of 5..25 MiB replaced at random, 20 alive (mimalloc-bench's
 * malloc-large): in the steady phase the allocator reuses their pages and
 * makes almost no munmap or madvise call; once the program stops, resident
 * memory is back to live data + 4 MiB within 100 ms.
 *
 *   test_reclaim phased -
 *
 * A phase of small blocks, freed, then a phase of blocks of other sizes:
 * the second takes the first one's memory again, without page faults.
 *
 *   test_reclaim sparse trim|exited|remote|sleeping|remote-sleeping|trim-other|locked
 *
 * Blocks of 16 bytes to 32 KiB, one in N kept live (N from 2 to 4096), the
 * rest freed in random order: resident memory comes down to the kernel
 * pages the live blocks need + 4 MiB — at once after malloc_trim(0) in the
 * allocating thread (trim), or within two delays with no allocator call
 * when the allocating thread freed them and exited (exited) or exited
 * first and another thread freed them (remote).  The same while the
 * allocating thread lives on, asleep (blocked in read(2)): it freed them
 * (sleeping), another thread freed them (remote-sleeping), or it freed
 * them and another thread calls malloc_trim(0) (trim-other, at once).
 * The live blocks keep their contents; calloc from the reclaimed pages
 * (in the allocating thread, woken) returns zeros.  locked: trim with the
 * blocks' pages locked (mlock), so that every decommit of them fails
 * (whole free segments may still be unmapped): malloc_trim returns, the
 * statistics agree with the kernel, and nothing is lost.
 *
 *   test_reclaim sparseexit -
 *
 * A thread that exits with 96 MiB of 64-byte blocks, all but one in 1024
 * freed: resident memory is back right after its exit (it purges as it
 * leaves, having kept more than EBB_EXIT_PURGE_MIN freed).
 *
 *   test_reclaim sparsesteady -
 *
 * A sparse heap (one live block in 32 left by a thread that exited, purged
 * by the reclaimer), then frees and allocations in balance over it: after
 * half a second, no madvise or munmap for a second.
 *
 *   test_reclaim churn LIVE_MIB
 *
 * Phases of huge, small and medium blocks, LIVE_MIB of each, every phase
 * freed before the next (each kind twice in a row), contents checked:
 * run in a memory cgroup by tests/scripts/test_limits.sh.  Prints its statistics.
 *
 *   test_reclaim softlimit LIVE_MIB
 *
 * The same, resident memory sampled every MiB allocated (the most is
 * printed); under EBB_MEMORY_LIMIT=EBB_TEST_LIMIT_MIB (set by the caller)
 * it must stay under the limit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "steps.h"
#include "ebbmalloc.h"

#define MiB (1024L * 1024)
#define GiB (1024 * MiB)

/* The pointer arrays live outside the allocator, so they are neither live
 * data nor freed memory; they are part of the program's other memory. */
static void **slots;
static size_t slot_count;

/* Resident memory, from /proc without stdio: a check must not call the
 * allocator, or its slow path would do the reclaimer's work. */
static long rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *s = strchr(buf, ' ');
    return s != NULL ? atol(s + 1) * sysconf(_SC_PAGESIZE) : 0;
}

static uint64_t rnd_state = 88172645463325252u;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void shuffle(void **a, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd() % (i + 1);
        void *t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- the patterns: each returns the bytes it leaves allocated ---------- */

/* Allocate `total` bytes in blocks of min..max into slots[], each written
 * with `byte`; returns how many. */
static size_t fill_slots(size_t total, size_t min, size_t max, int byte)
{
    size_t n = 0, bytes = 0;
    while (bytes < total && n < slot_count) {
        size_t size = min + rnd() % (max - min + 1);
        char *p = malloc(size);
        memset(p, byte, size);
        slots[n++] = p;
        bytes += size;
    }
    return n;
}

static size_t fill_and_free(size_t total, size_t min, size_t max, int keep_last)
{
    size_t n = fill_slots(total, min, max, 0x5a);
    size_t live = 0;
    void *last = NULL;
    if (keep_last) {
        /* Allocated last, it sits at the top of the heap. */
        last = malloc(100);
        memset(last, 1, 100);
        live = malloc_usable_size(last);
    }
    shuffle(slots, n);
    for (size_t i = 0; i < n; i++)
        free(slots[i]);
    slots[0] = last;
    return live;
}

static void *thread_256m(void *arg)
{
    (void)arg;
    size_t n = (256 * MiB) / 200;
    void **mine = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < n; i++) {
        mine[i] = malloc(200);
        memset(mine[i], 3, 200);
    }
    for (size_t i = 0; i < n; i++)
        free(mine[i]);
    munmap(mine, n * sizeof(void *));
    return NULL;
}

static size_t run_pattern(const char *name)
{
    if (strcmp(name, "small") == 0)
        return fill_and_free(GiB, 16, 256, 0);
    if (strcmp(name, "small-pinned") == 0)
        return fill_and_free(GiB, 16, 256, 1);
    if (strcmp(name, "medium") == 0)
        return fill_and_free(GiB, 4096, 65536, 0);
    if (strcmp(name, "threads") == 0) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, thread_256m, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    if (strcmp(name, "huge") == 0) {
        for (int i = 0; i < 100; i++) {
            slots[i] = malloc(8 * MiB);
            memset(slots[i], 7, 8 * MiB);
        }
        for (int i = 0; i < 100; i++)
            free(slots[i]);
        slots[0] = NULL;
        return 0;
    }
    if (strcmp(name, "realloc") == 0) {
        char *buf = NULL;
        size_t size = 0;
        for (size_t next = 4096; next <= 512 * MiB; next *= 2) {
            buf = realloc(buf, next);
            memset(buf + size, 9, next - size);
            size = next;
        }
        free(buf);
        return 0;
    }
    return (size_t)-1;
}

/* ---- checks ---------------------------------------------------------------- */

/* The preloaded library's statistics, found at run time (this program is
 * not linked with it). */
static void ebb_stats(struct ebb_stats *s)
{
    static void (*get)(struct ebb_stats *);
    if (get == NULL)
        get = (void (*)(struct ebb_stats *))dlsym(RTLD_DEFAULT, "ebb_stats_get");
    REQUIRE(get != NULL, "ebbmalloc is not preloaded");
    get(s);
}

static void *volatile sink;
static long other_memory; /* the program's resident memory that is not the allocator's */

/* Before a measurement: the statistics in *s0, the resident memory
 * returned, and other_memory set from both. */
static long baseline(struct ebb_stats *s0)
{
    ebb_stats(s0);
    long base = rss_bytes();
    other_memory = base - (long)s0->resident;
    return base;
}

static void check_accounting(const char *when)
{
    /* The reclaimer may be at work meanwhile: /proc is read before and
     * after the statistics, and the accounting must fall between. */
    struct ebb_stats s;
    long rss_before = rss_bytes();
    ebb_stats(&s);
    long rss_after = rss_bytes();
    long lo = rss_before < rss_after ? rss_before : rss_after;
    long hi = rss_before < rss_after ? rss_after : rss_before;
    long ours = (long)s.resident;
    long expect = other_memory + ours;
    CHECK(expect >= lo - lo / 20 - MiB && expect <= hi + hi / 20 + MiB,
          "%s: /proc says %ld..%ld KiB resident, the accounting %ld KiB (+ %ld KiB other)", when, lo >> 10,
          hi >> 10, ours >> 10, other_memory >> 10);
    CHECK(s.resident == s.in_use + s.freed_retained + s.metadata, "%s: the states add up", when);
}

static void check_back(const char *when, long base, size_t live, long margin)
{
    long rss = rss_bytes();
    CHECK(rss <= base + (long)live + margin, "%s: %ld KiB resident, allowed %ld KiB (live %zu KiB)", when,
          rss >> 10, (base + (long)live + margin) >> 10, live >> 10);
    check_accounting(when);
}

static void check_calloc_zero(void)
{
    /* Memory given back and taken again must read as zero through calloc. */
    int dirty = 0;
    size_t sizes[] = {48, 200, 3000, 40000, 9 * MiB};
    for (size_t k = 0; k < 5; k++) {
        void *blocks[400];
        int n = sizes[k] > MiB ? 4 : 400;
        for (int i = 0; i < n; i++) {
            unsigned char *p = calloc(1, sizes[k]);
            for (size_t j = 0; j < sizes[k]; j += 61)
                dirty += p[j] != 0;
            dirty += p[sizes[k] - 1] != 0;
            blocks[i] = p;
        }
        for (int i = 0; i < n; i++)
            free(blocks[i]);
    }
    CHECK(dirty == 0, "calloc after reclamation: %d nonzero bytes", dirty);
}

static int steady(void)
{
    enum { LIVE = 100000 };
    void **live = slots;
    for (int i = 0; i < LIVE; i++)
        live[i] = malloc(16 + rnd() % 2000);
    void *big = NULL, *buffer = NULL;
    struct ebb_stats before, after;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long elapsed = 0;
    int measuring = 0;
    while (elapsed < 2000) {
        for (int k = 0; k < 1000; k++) {
            size_t i = rnd() % LIVE;
            free(live[i]);
            live[i] = malloc(16 + rnd() % 2000);
            memset(live[i], 1, 16);
        }
        free(big);
        big = malloc(8 * MiB); /* a big buffer, freed and taken again */
        memset(big, 2, 4096);
        /* The only block of its class: its page empties and is parked
         * each time, and must never be reclaimed between two uses. */
        free(buffer);
        buffer = malloc(12000);
        memset(buffer, 3, 12000);
        clock_gettime(CLOCK_MONOTONIC, &t);
        elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (!measuring && elapsed >= 500) {
            /* Warm: from here the footprint is steady. */
            ebb_stats(&before);
            measuring = 1;
        }
    }
    ebb_stats(&after);
    CHECK(after.os_madvise == before.os_madvise, "%lu madvise calls in the steady phase",
          (unsigned long)(after.os_madvise - before.os_madvise));
    CHECK(after.os_munmap == before.os_munmap, "%lu munmap calls in the steady phase",
          (unsigned long)(after.os_munmap - before.os_munmap));
    CHECK(after.os_mmap == before.os_mmap, "%lu mmap calls in the steady phase",
          (unsigned long)(after.os_mmap - before.os_mmap));
    return check_summary();
}

/* ---- parked pages ------------------------------------------------------------ */

static size_t parked_sizes[200];
static size_t parked_count;
static long parked_dirty, parked_wrong;

static void *parked_thread(void *arg)
{
    (void)arg;
    /* Of each size, a page's worth of blocks (at least one), touched,
     * freed: the first page of each class empties. */
    for (size_t i = 0; i < parked_count; i++) {
        void *blocks[64];
        size_t n = 65536 / parked_sizes[i] + 1;
        for (size_t k = 0; k < n; k++) {
            blocks[k] = malloc(parked_sizes[i]);
            memset(blocks[k], 0x77, parked_sizes[i]);
        }
        for (size_t k = 0; k < n; k++)
            free(blocks[k]);
    }
    steps_go(1);
    steps_wait(2); /* idle, alive: the main thread watches the reclaimer */
    for (size_t i = 0; i < parked_count; i++) {
        /* Read back through volatile pointers: the compiler may not
         * assume what calloc and memset left there. */
        volatile unsigned char *p = calloc(1, parked_sizes[i]);
        for (size_t j = 0; j < parked_sizes[i]; j += 97)
            parked_dirty += p[j] != 0;
        parked_dirty += p[parked_sizes[i] - 1] != 0;
        volatile unsigned char *q = malloc(parked_sizes[i]);
        memset((void *)q, (int)(i & 0xff), parked_sizes[i]);
        memset((void *)p, 0x11, parked_sizes[i]);
        for (size_t j = 0; j < parked_sizes[i]; j += 89)
            parked_wrong += q[j] != (unsigned char)(i & 0xff);
        free((void *)p);
        free((void *)q);
    }
    steps_go(3);
    steps_wait(4);
    return NULL;
}

static int parked(void)
{
    for (size_t size = 1040; size <= 2 * MiB && parked_count < 200; size += size / 8)
        parked_sizes[parked_count++] = size;
    size_t total = 0;
    for (size_t i = 0; i < parked_count; i++)
        total += parked_sizes[i];
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, parked_thread, NULL) == 0);
    steps_wait(1);
    struct ebb_stats s1, s2;
    ebb_stats(&s1);
    CHECK(s1.freed_retained >= total / 2, "the idle thread's emptied pages are resident: %lu KiB freed, not reclaimed (%zu KiB freed)",
          (unsigned long)(s1.freed_retained >> 10), total >> 10);
    sleep_ms(500);
    ebb_stats(&s2);
    CHECK(s2.freed_retained <= 128 * 1024,
          "500 ms later, with the thread idle, they are given back: %lu KiB freed, not reclaimed (was %lu KiB)",
          (unsigned long)(s2.freed_retained >> 10), (unsigned long)(s1.freed_retained >> 10));
    CHECK(s2.os_madvise > s1.os_madvise || s2.os_munmap > s1.os_munmap, "the reclaimer decommitted them");
    steps_go(2);
    steps_wait(3);
    CHECK(parked_dirty == 0, "calloc from a reclaimed parked page: %ld nonzero bytes", parked_dirty);
    CHECK(parked_wrong == 0, "blocks from a restarted page keep their contents: %ld bytes wrong", parked_wrong);
    /* malloc_trim(0) gives back what another thread parked, at once. */
    malloc_trim(0);
    struct ebb_stats s3;
    ebb_stats(&s3);
    CHECK(s3.freed_retained < s1.freed_retained / 4 + 2 * MiB,
          "malloc_trim(0) takes another thread's parked pages: %lu KiB freed, not reclaimed",
          (unsigned long)(s3.freed_retained >> 10));
    steps_go(4);
    pthread_join(t, NULL);
    return check_summary();
}

/* ---- big buffers, phases, limits ---------------------------------------------- */

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int bigbuffers(void)
{
    enum { ALIVE = 20, WARM = 300, STEADY = 1500 };
    char *buf[ALIVE] = {0};
    size_t size[ALIVE] = {0};
    struct ebb_stats before, after;
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    malloc_trim(0);
    struct ebb_stats s0;
    long base = baseline(&s0);
    long bad = 0;
    /* kept_predicted is what the last pass kept; a pass that ran while the
     * cache was empty (between a take and the next free) keeps nothing, so
     * the check samples the whole steady phase, not one instant. */
    int samples = 0, kept_seen = 0;
    uint64_t kept_max = 0, kept_over = 0;
    for (int i = 0; i < WARM + STEADY; i++) {
        if (i == WARM)
            ebb_stats(&before);
        if (i > WARM && i % 10 == 0) {
            struct ebb_stats s;
            ebb_stats(&s);
            samples++;
            kept_seen += s.kept_predicted > 0;
            kept_over += s.kept_predicted > s.reclaimable;
            if (s.kept_predicted > kept_max)
                kept_max = s.kept_predicted;
        }
        unsigned k = (unsigned)(rnd() % ALIVE);
        size_t n = 5 * MiB + rnd() % (20 * MiB + 1);
        char *p = malloc(n);
        memset(p, (int)(i & 0xff), n);
        if (buf[k] != NULL) {
            for (size_t j = 0; j < size[k]; j += 4096)
                bad += buf[k][j] != buf[k][0];
            free(buf[k]);
        }
        buf[k] = p;
        size[k] = n;
    }
    ebb_stats(&after);
    unsigned long giving = (unsigned long)(after.os_munmap - before.os_munmap + after.os_madvise - before.os_madvise);
    CHECK(bad == 0, "the buffers keep their contents: %ld pages wrong", bad);
    CHECK(giving <= STEADY / 50, "%lu munmap and madvise calls in %d steady replacements", giving, STEADY);
    CHECK(kept_seen * 2 >= samples && kept_max >= 5 * MiB && kept_over == 0,
          "while the program churns, freed memory is kept for predicted reuse: in %d of %d samples, at most %lu MiB",
          kept_seen, samples, (unsigned long)(kept_max / MiB));
    CHECK(after.refaulted - before.refaulted <= (uint64_t)STEADY * MiB / 4,
          "%lu MiB refaulted in the steady phase", (unsigned long)((after.refaulted - before.refaulted) / MiB));
    size_t live = 0;
    for (int k = 0; k < ALIVE; k++)
        live += malloc_usable_size(buf[k]);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long held = rss_bytes();
    sleep_ms(100);
    double waited = ms_since(&t0);
    check_back("100 ms after the last call", base, live, 4 * MiB);
    printf("bigbuffers: %lu munmap+madvise in %d replacements, %lu mmap, %lu mremap; %ld MiB resident at the stop, "
           "%ld MiB %.0f ms later (live %zu MiB, base %ld MiB); kept by prediction in %d of %d samples\n",
           giving, STEADY, (unsigned long)(after.os_mmap - before.os_mmap),
           (unsigned long)(after.os_mremap - before.os_mremap), held / MiB, rss_bytes() / MiB, waited, live / MiB,
           base / MiB, kept_seen, samples);
    for (int k = 0; k < ALIVE; k++)
        free(buf[k]);
    return check_summary();
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* fill_slots, and the page faults it took. */
static long fill(size_t total, size_t min, size_t max, size_t *count)
{
    long f0 = minor_faults();
    *count = fill_slots(total, min, max, 0x3c);
    return minor_faults() - f0;
}

/* ---- sparse pages: one live block in N --------------------------------------- */

/* Distinct kernel pages under the blocks [p, p + size) of `live`: what
 * they need resident, at the least.  Sorted in place with no allocator
 * call (qsort may allocate). */
static long kernel_pages_under(void **live, size_t n, size_t size)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t cap = n * (size / (size_t)ps + 2);
    uintptr_t *pages = mmap(NULL, cap * sizeof *pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        for (uintptr_t a = (uintptr_t)live[i] / (uintptr_t)ps; a <= ((uintptr_t)live[i] + size - 1) / (uintptr_t)ps; a++)
            pages[m++] = a;
    for (size_t gap = m / 2; gap > 0; gap /= 2) /* Shell's sort */
        for (size_t i = gap; i < m; i++)
            for (size_t j = i; j >= gap && pages[j - gap] > pages[j]; j -= gap) {
                uintptr_t t = pages[j];
                pages[j] = pages[j - gap];
                pages[j - gap] = t;
            }
    long distinct = 0;
    for (size_t i = 0; i < m; i++)
        distinct += i == 0 || pages[i] != pages[i - 1];
    munmap(pages, cap * sizeof *pages);
    return distinct * ps;
}

enum { SPARSE_TOTAL = 32 * 1024 * 1024 };

/* mlock the kernel pages under the n blocks (written already, so that the
 * lock adds nothing to what is resident). */
static bool lock_pages_under(void **blocks, size_t n, size_t size, bool lock)
{
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), done = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t lo = (uintptr_t)blocks[i] & ~(ps - 1), hi = ((uintptr_t)blocks[i] + size + ps - 1) & ~(ps - 1);
        if (lo < done)
            lo = done;
        if (lo >= hi)
            continue;
        if ((lock ? mlock((void *)lo, hi - lo) : munlock((void *)lo, hi - lo)) != 0)
            return false;
        done = hi;
    }
    return true;
}

struct sparse_job {
    size_t size, keep_every, n;
    int free_here; /* the allocating thread frees the rest itself */
    int filled[2], wake[2]; /* sleeping modes: pipes to say "filled" and "wake up" */
    long dirty;             /* sleeping modes: nonzero bytes calloc returned after the wake */
};

/* Free all but one block in keep_every of slots[0..n), in random order;
 * the kept ones end up first in slots[].  Returns how many. */
static size_t keep_one_in(size_t n, size_t keep_every)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i += keep_every) {
        void *t = slots[kept];
        slots[kept++] = slots[i];
        slots[i] = t;
    }
    shuffle(slots + kept, n - kept);
    for (size_t i = kept; i < n; i++)
        free(slots[i]);
    return kept;
}

/* Allocate SPARSE_TOTAL bytes of `size`-byte blocks into slots[], each
 * written; with free_here, keep one in keep_every. */
static void *sparse_fill(void *arg)
{
    struct sparse_job *job = arg;
    job->n = fill_slots(SPARSE_TOTAL, job->size, job->size, 0x3c);
    if (job->free_here)
        job->n = keep_one_in(job->n, job->keep_every);
    return NULL;
}

/* Blocks of the size taken again, half as many, by calloc: the holes are
 * carved afresh, zero.  Returns the nonzero bytes seen. */
static long calloc_again(size_t size, void **room)
{
    long dirty = 0;
    size_t again = SPARSE_TOTAL / size / 2;
    for (size_t i = 0; i < again; i++) {
        unsigned char *p = calloc(1, size);
        for (size_t j = 0; j < size; j += 16)
            dirty += p[j] != 0;
        room[i] = p;
    }
    for (size_t i = 0; i < again; i++)
        free(room[i]);
    return dirty;
}

/* sparse_fill, then sleep in read(2) until woken; then calloc_again. */
static void *sparse_sleeper(void *arg)
{
    struct sparse_job *job = arg;
    sparse_fill(job);
    char c = 1;
    if (write(job->filled[1], &c, 1) != 1 || read(job->wake[0], &c, 1) != 1)
        abort();
    job->dirty = calloc_again(job->size, slots + job->n);
    return NULL;
}

/* The same with blocks of 16..512 bytes, 64 MiB of them. */
static void *sparse_fill_mixed(void *arg)
{
    struct sparse_job *job = arg;
    job->n = keep_one_in(fill_slots(64 * MiB, 16, 512, 0x11), job->keep_every);
    return NULL;
}

/* MODE: trim (the allocating thread frees and calls malloc_trim(0)),
 * exited (it frees and exits; nobody calls the allocator for two delays),
 * remote (it allocates and exits; another thread frees, then nobody calls
 * the allocator for two delays); sleeping, remote-sleeping, trim-other:
 * the same, the allocating thread asleep instead of gone. */
static int sparse(const char *mode)
{
    /* locked: trim with every page locked (mlockall), so that no decommit
     * succeeds: nothing is given back, and nothing may be lost. */
    bool locked = strcmp(mode, "locked") == 0;
    if (locked)
        mode = "trim";
    bool trim = strcmp(mode, "trim") == 0 || strcmp(mode, "trim-other") == 0;
    bool asleep = strstr(mode, "sleeping") != NULL || strcmp(mode, "trim-other") == 0;
    bool remote = strncmp(mode, "remote", 6) == 0;
    static const size_t sizes[] = {16, 64, 200, 1024, 4000, 32768};
    static const size_t every[] = {2, 16, 1024, 4096};
    long delay_ms = getenv("EBB_RECLAIM_DELAY_MS") ? atol(getenv("EBB_RECLAIM_DELAY_MS")) : 50;
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
        for (size_t b = 0; b < sizeof every / sizeof every[0]; b++) {
            malloc_trim(0);
            sleep_ms(2 * delay_ms);
            struct ebb_stats s0;
            long base = baseline(&s0);
            struct sparse_job job = {sizes[a], every[b], 0, !remote && !locked, {-1, -1}, {-1, -1}, 0};
            pthread_t t;
            if (locked) {
                sparse_fill(&job);
                if (!lock_pages_under(slots, job.n, job.size, true)) {
                    printf("sparse locked: mlock failed (%s), not run\n", strerror(errno));
                    return check_summary();
                }
            } else if (strcmp(mode, "trim") == 0) {
                sparse_fill(&job);
            } else if (asleep) {
                char c;
                if (pipe(job.filled) != 0 || pipe(job.wake) != 0)
                    abort();
                pthread_create(&t, NULL, sparse_sleeper, &job);
                if (read(job.filled[0], &c, 1) != 1)
                    abort();
            } else {
                pthread_create(&t, NULL, sparse_fill, &job);
                pthread_join(t, NULL);
            }
            if (!job.free_here)
                job.n = keep_one_in(job.n, job.keep_every);
            long live = kernel_pages_under(slots, job.n, job.size);
            long held = rss_bytes();
            char when[96];
            if (trim) {
                malloc_trim(0);
                snprintf(when, sizeof when, "%zu-byte blocks, 1 in %zu kept, malloc_trim(0) at once", job.size, job.keep_every);
            } else {
                sleep_ms(2 * delay_ms);
                snprintf(when, sizeof when, "%zu-byte blocks, 1 in %zu kept, %s, two delays later", job.size,
                         job.keep_every, mode);
            }
            long after = rss_bytes();
            if (locked) {
                check_accounting(when); /* what the kernel refused is counted as resident */
            } else {
                check_back(when, base, (size_t)live, 4 * MiB);
            }
            if (asleep) {
                struct ebb_stats s1;
                ebb_stats(&s1);
                CHECK(s1.heaps_swept > s0.heaps_swept, "%s: the sleeping thread's heap was swept (%lu sweeps)", when,
                      (unsigned long)(s1.heaps_swept - s0.heaps_swept));
            }
            long bad = 0;
            for (size_t i = 0; i < job.n; i++)
                for (size_t j = 0; j < job.size; j += 8)
                    bad += ((unsigned char *)slots[i])[j] != 0x3c;
            CHECK(bad == 0, "%s: the live blocks keep their contents: %ld bytes wrong", when, bad);
            /* Blocks of the size taken again: holes carved afresh, calloc zero. */
            if (strcmp(mode, "trim") == 0) {
                long dirty = calloc_again(job.size, slots + job.n);
                CHECK(dirty == 0, "%s: calloc from the reclaimed pages: %ld nonzero bytes", when, dirty);
            } else if (asleep) {
                char c = 1;
                if (write(job.wake[1], &c, 1) != 1)
                    abort();
                pthread_join(t, NULL);
                for (int k = 0; k < 2; k++) {
                    close(job.filled[k]);
                    close(job.wake[k]);
                }
                CHECK(job.dirty == 0, "%s: calloc from the reclaimed pages, woken: %ld nonzero bytes", when, job.dirty);
            }
            if (job.size == 64 && job.keep_every == 1024)
                printf("sparse %s: %zu-byte blocks, 1 in %zu kept: %ld MiB resident after the frees, %ld MiB after "
                       "(base %ld MiB, live blocks' pages %ld KiB)\n",
                       mode, job.size, job.keep_every, held / MiB, after / MiB, base / MiB, live >> 10);
            if (locked)
                munlockall();
            for (size_t i = 0; i < job.n; i++)
                free(slots[i]);
        }
    }
    return check_summary();
}

/* A thread that frees all but one 64-byte block in 1024 of 96 MiB and
 * exits: it kept more than EBB_EXIT_PURGE_MIN freed among its live
 * blocks, so it gives their free kernel pages back as it leaves.  Right
 * after the join, before any reclamation delay, resident memory is down to
 * the live blocks' kernel pages + 4 MiB, and they keep their contents. */
static void *exit_fill(void *arg)
{
    size_t *n = arg;
    *n = keep_one_in(fill_slots(96 * MiB, 64, 64, 0x3c), 1024);
    return NULL;
}

static int sparse_exit_now(void)
{
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    malloc_trim(0);
    struct ebb_stats s0;
    long base = baseline(&s0);
    size_t n = 0;
    pthread_t t;
    pthread_create(&t, NULL, exit_fill, &n);
    pthread_join(t, NULL);
    long live = kernel_pages_under(slots, n, 64);
    check_back("96 MiB of 64-byte blocks, 1 in 1024 kept, right after the thread's exit", base, (size_t)live,
               4 * MiB);
    long bad = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 64; j += 8)
            bad += ((unsigned char *)slots[i])[j] != 0x3c;
    CHECK(bad == 0, "the live blocks keep their contents: %ld bytes wrong", bad);
    for (size_t i = 0; i < n; i++)
        free(slots[i]);
    return check_summary();
}

/* A sparse heap (one live block in 32) left by a thread that exited and
 * purged by the reclaimer, then frees and allocations in balance over it
 * (the frees into the exited thread's pages, the allocations from them as
 * they are adopted): nothing is given back in the steady phase. */
static int sparse_steady(void)
{
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    /* A thread makes the sparse heap and exits: its pages are abandoned,
     * and swept (purged) while the program sleeps. */
    struct sparse_job job = {0, 32, 0, 1, {-1, -1}, {-1, -1}, 0};
    struct ebb_stats s0, s1;
    ebb_stats(&s0);
    pthread_t t;
    pthread_create(&t, NULL, sparse_fill_mixed, &job);
    pthread_join(t, NULL);
    size_t live = job.n;
    sleep_ms(300);
    ebb_stats(&s1);
    CHECK(s1.reclaimed_total - s0.reclaimed_total >= 8 * MiB, "the sparse pages were purged first: %lu MiB reclaimed",
          (unsigned long)((s1.reclaimed_total - s0.reclaimed_total) / MiB));
    /* Half a second for the live blocks to settle (the emptied sparse
     * pages go back as their last blocks are replaced), then a second
     * measured. */
    struct ebb_stats before, after;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long ops = 0;
    long bad = 0;
    int measuring = 0;
    while (ms_since(&t0) < 1500) {
        if (!measuring && ms_since(&t0) >= 500) {
            measuring = 1;
            ebb_stats(&before);
        }
        for (int k = 0; k < 1000; k++, ops += measuring) {
            size_t i = rnd() % live;
            bad += ((unsigned char *)slots[i])[0] != 0x11;
            free(slots[i]);
            size_t size = 16 + rnd() % 497;
            slots[i] = malloc(size);
            memset(slots[i], 0x11, size);
        }
    }
    ebb_stats(&after);
    unsigned long giving = (unsigned long)(after.os_madvise - before.os_madvise + after.os_munmap - before.os_munmap);
    CHECK(bad == 0, "the live blocks keep their contents: %ld wrong", bad);
    CHECK(giving == 0, "%lu madvise and munmap calls in a steady phase of %lu replacements over a sparse heap", giving,
          ops);
    printf("sparse steady: %zu live blocks, %lu MiB purged before, %lu replacements in 1 s, %lu madvise+munmap\n", live,
           (unsigned long)((s1.reclaimed_total - s0.reclaimed_total) / MiB), ops, giving);
    for (size_t i = 0; i < live; i++)
        free(slots[i]);
    return check_summary();
}

static int phased(void)
{
    size_t n;
    sink = malloc(100000);
    free(sink);
    long first = fill(200 * MiB, 64, 1024, &n);
    shuffle(slots, n);
    for (size_t i = 0; i < n; i++)
        free(slots[i]);
    long second = fill(200 * MiB, 8192, 65536, &n);
    CHECK(second <= first / 10, "the second phase took %ld page faults, the first %ld", second, first);
    for (size_t i = 0; i < n; i++)
        free(slots[i]);
    printf("phased: %ld page faults in the first phase, %ld in the second\n", first, second);
    return check_summary();
}

/* One phase of the churn: `live` bytes of blocks of min..max, each block's
 * words written and checked before it is freed.  With `limit`, resident
 * memory is sampled every MiB allocated; returns the most seen. */
static long churn_phase(size_t live, size_t min, size_t max, long *bad, int sample)
{
    size_t n = 0, bytes = 0, since = 0;
    long most = 0;
    while (n < slot_count) {
        size_t sz = min + rnd() % (max - min + 1);
        if (bytes + sz > live)
            break; /* live means live: the limit test's margin is over it */
        uint64_t *p = malloc(sz);
        for (size_t j = 0; j < sz / 8; j += 512)
            p[j] = (uint64_t)(uintptr_t)p ^ j;
        p[0] = sz;
        slots[n++] = p;
        bytes += sz;
        since += sz;
        if (sample && since >= MiB) {
            long r = rss_bytes();
            most = r > most ? r : most;
            since = 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t *p = slots[i];
        size_t sz = p[0];
        for (size_t j = 512; j < sz / 8; j += 512)
            *bad += p[j] != ((uint64_t)(uintptr_t)p ^ j);
        free(p);
    }
    return most;
}

static int churn(long live_mib, const char *limit_text)
{
    size_t live = (size_t)live_mib * MiB;
    long bad = 0, most = 0;
    struct ebb_stats s;
    size_t allocated = 0;
    for (int round = 0; round < 3; round++) {
        for (int twice = 0; twice < 2; twice++) {
            long r = churn_phase(live, 6 * MiB, 10 * MiB, &bad, limit_text != NULL);
            most = r > most ? r : most;
        }
        for (int twice = 0; twice < 2; twice++) {
            long r = churn_phase(live, 16, 1024, &bad, limit_text != NULL);
            most = r > most ? r : most;
        }
        for (int twice = 0; twice < 2; twice++) {
            long r = churn_phase(live, 16384, 131072, &bad, limit_text != NULL);
            most = r > most ? r : most;
        }
        allocated += 6 * live;
    }
    ebb_stats(&s);
    CHECK(bad == 0, "every block kept its contents: %ld words wrong", bad);
    if (limit_text != NULL && getenv("EBB_MEMORY_LIMIT") != NULL) {
        long limit = atol(limit_text) * MiB;
        CHECK(s.memory_limit == (uint64_t)limit, "the limit is known: %lu MiB", (unsigned long)(s.memory_limit / MiB));
        CHECK(most <= limit, "resident memory stayed under EBB_MEMORY_LIMIT: at most %ld MiB, limit %ld MiB",
              most / MiB, limit / MiB);
    }
    printf("churn: allocated %zu MiB, reclaimed %lu MiB, limit %lu MiB, %lu passes for the limit, most resident "
           "%ld MiB\n",
           allocated / MiB, (unsigned long)(s.reclaimed_total / MiB), (unsigned long)(s.memory_limit / MiB),
           (unsigned long)s.limit_passes, most / MiB);
    return check_summary();
}

/* Whether the process has a thread named ebb-reclaim. */
static bool reclaimer_running(void)
{
    DIR *dir = opendir("/proc/self/task");
    bool found = false;
    struct dirent *e;
    while (dir != NULL && (e = readdir(dir)) != NULL && !found) {
        char path[320], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        found = fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "ebb-reclaim", 11) == 0;
        fclose(f);
    }
    if (dir != NULL)
        closedir(dir);
    return found;
}

/* A program that stays within a segment's worth of pages starts no
 * service thread (it would cost it about 200 KiB); one that goes beyond
 * has it before it frees, and an idle pause gives its memory back. */
static int service_start(void)
{
    malloc_trim(0);
    struct ebb_stats s0;
    long base = baseline(&s0);
    size_t n = fill_slots(2 * MiB, 16, 1024, 0x21);
    for (size_t i = 0; i < n; i += 2)
        free(slots[i]);
    sleep_ms(20);
    CHECK(!reclaimer_running(), "2 MiB of small blocks, half freed: no reclaim thread");
    size_t m = fill_slots(24 * MiB, 16, 4096, 0x22);
    free(malloc(64 * 1024)); /* a slow path: the thread starts, before the frees */
    CHECK(reclaimer_running(), "24 MiB of blocks: the reclaim thread runs");
    for (size_t i = 0; i < m; i++)
        free(slots[i]);
    sleep_ms(500);
    check_back("24 MiB freed, 500 ms idle", base, 0, 4 * MiB);
    return check_summary();
}

/* All memory locked (mlockall) while the empty pages between live ones
 * (1 KiB blocks, one kept in 128: every other 64 KiB page) wait as many
 * separate spans: no purge succeeds, yet malloc_trim and the reclaimer
 * return (they once took the refused spans again and again), and once
 * unlocked the spans go back.  The lock populates the segments' untouched
 * memory too, which the statistics cannot see: they are not compared with
 * /proc here. */
static int locked_all(void)
{
    sink = malloc(100000); /* starts the reclaimer */
    free(sink);
    malloc_trim(0);
    long base = rss_bytes();
    size_t n = fill_slots(64 * MiB, 1024, 1024, 0x5a);
    if (mlockall(MCL_CURRENT) != 0) {
        printf("locked all: mlockall failed (%s), not run\n", strerror(errno));
        return check_summary();
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 128 == 0)
            slots[kept++] = slots[i];
        else
            free(slots[i]);
    }
    alarm(60); /* a trim that never returns fails the test */
    malloc_trim(0);
    sleep_ms(200); /* the reclaimer's passes meet the locked spans too */
    long locked = rss_bytes();
    CHECK(locked > base + 48 * (long)MiB, "locked memory stays: %ld MiB above the baseline", (locked - base) / MiB);
    munlockall();
    malloc_trim(0);
    alarm(0);
    long unlocked = rss_bytes();
    CHECK(unlocked < locked - 24 * (long)MiB, "unlocked, malloc_trim(0): %ld MiB resident, %ld MiB while locked",
          unlocked / MiB, locked / MiB);
    long bad = 0;
    for (size_t i = 0; i < kept; i++)
        for (size_t j = 0; j < 1024; j += 8)
            bad += ((unsigned char *)slots[i])[j] != 0x5a;
    CHECK(bad == 0, "locked all: the live blocks keep their contents: %ld bytes wrong", bad);
    check_calloc_zero();
    for (size_t i = 0; i < kept; i++)
        free(slots[i]);
    return check_summary();
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 3, "usage: test_reclaim PATTERN background|calls|trim");
    slot_count = 64 * MiB / sizeof(void *) * 2;
    slots = mmap(NULL, slot_count * sizeof(void *), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(slots != MAP_FAILED);
    /* The limits' tests count all resident memory: the slots they use only. */
    if (strcmp(argv[1], "churn") == 0)
        return churn(atol(argv[2]), NULL);
    if (strcmp(argv[1], "softlimit") == 0)
        return churn(atol(argv[2]), getenv("EBB_TEST_LIMIT_MIB"));
    memset(slots, 0, slot_count * sizeof(void *)); /* resident before the baseline */
    if (strcmp(argv[1], "steady") == 0)
        return steady();
    if (strcmp(argv[1], "parked") == 0)
        return parked();
    if (strcmp(argv[1], "bigbuffers") == 0)
        return bigbuffers();
    if (strcmp(argv[1], "phased") == 0)
        return phased();
    if (strcmp(argv[1], "sparse") == 0)
        return sparse(argv[2]);
    if (strcmp(argv[1], "sparsesteady") == 0)
        return sparse_steady();
    if (strcmp(argv[1], "sparseexit") == 0)
        return sparse_exit_now();
    if (strcmp(argv[1], "lockedall") == 0)
        return locked_all();
    if (strcmp(argv[1], "service") == 0)
        return service_start();

    const char *mode = argv[2];
    int compare_with_proc = strcmp(mode, "lazy") != 0;
    /* Warm up (starts the reclaimer), then measure the program's own memory. */
    sink = malloc(100000);
    free(sink);
    malloc_trim(0);
    struct ebb_stats s0;
    long base = baseline(&s0);

    size_t live = run_pattern(argv[1]);
    REQUIRE(live != (size_t)-1, "unknown pattern %s", argv[1]);
    long after_free = rss_bytes();
    if (compare_with_proc)
        check_accounting("right after the frees");

    if (strcmp(mode, "background") == 0) {
        sleep_ms(500);
        check_back("500 ms later, no allocator call", base, live, 4 * MiB);
    } else if (strcmp(mode, "calls") == 0) {
        sleep_ms(300);
        /* One allocator call with a slow path (a huge block; through a
         * volatile pointer, or the compiler drops the pair). */
        sink = malloc(3 * MiB);
        free(sink);
        check_back("at the first allocator call after the delay", base, live, 4 * MiB);
    } else if (strcmp(mode, "trim") == 0) {
        malloc_trim(0);
        check_back("malloc_trim(0) at once", base, live, 2 * MiB);
    } else if (strcmp(mode, "delayed") == 0) {
        /* Run with EBB_RECLAIM_DELAY_MS=2000: nothing goes back early... */
        sleep_ms(700);
        long held = rss_bytes();
        CHECK(held > base + (after_free - base) / 2, "with a 2 s delay, %ld MiB still held at 0.7 s",
              (held - base) / MiB);
        check_accounting("0.7 s into a 2 s delay");
        /* ...and all of it soon after the delay. */
        sleep_ms(2000);
        check_back("after a 2 s delay", base, live, 4 * MiB);
    } else if (strcmp(mode, "lazy") == 0) {
        /* EBB_PURGE=free: MADV_FREE leaves the pages resident until the
         * kernel needs them, so /proc cannot be compared; what must hold is
         * that they are given back and that calloc still sees zeros. */
        struct ebb_stats after;
        malloc_trim(0);
        ebb_stats(&after);
        CHECK(after.reclaimed_total >= s0.reclaimed_total + 900 * MiB, "MADV_FREE gave back %lu MiB",
              (unsigned long)((after.reclaimed_total - s0.reclaimed_total) / MiB));
        CHECK(after.os_madvise > s0.os_madvise);
        CHECK(after.reclaimable == 0, "nothing left to give back after malloc_trim");
    } else {
        REQUIRE(0, "unknown mode %s", mode);
    }
    check_calloc_zero();
    free(slots[0]);
    printf("%s/%s: %ld MiB resident after the frees, %ld MiB at the check (base %ld MiB)\n", argv[1], mode,
           after_free / MiB, rss_bytes() / MiB, base / MiB);
    return check_summary();
}
