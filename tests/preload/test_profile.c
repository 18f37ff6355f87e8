/* test: profile          fast EBB_PROFILE=1 EBB_PROFILE_RATE=4096 -- "$B/ebb"
 * test: profile-off      fast -- "$B/ebb" off
 * test: profile-secure   long EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_SECURE=1 -- "$B/ebb"
 * test: profile-zero     long EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_ZERO_ON_FREE=1 -- "$B/ebb"
 * test: profile-sample   long EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_GUARD_SAMPLE=100 -- "$B/ebb"
 * test: profile-default  fast EBB_PROFILE=1 -- "$B/ebb" default
 * build: -rdynamic */
/* The heap profiler (EBB_PROFILE=1), run under LD_PRELOAD with a small rate
 * (the test: lines above: EBB_PROFILE_RATE=4096, so that each site below gets
 * four thousand samples or more and the estimates' spread is under 2%:
 * the 10% bounds are six spreads):
 *   - sites with known amounts (a constructor's, a leak, a peak freed
 *     before the end, a churn, a thread's, a huge block's, blocks over
 *     16 KiB freed by another thread and by realloc): the dump names
 *     each function (dladdr on its frames) with its bytes allocated, live
 *     at the peak and live at the end within 10% of the truth;
 *   - `ebb profile` on the same dump lists them, in its three tables, and
 *     names the site whose few live blocks keep their pages resident (one
 *     block in 64 kept: every kernel page holds one) with the freed bytes
 *     they keep;
 *   - `ebb profile --pprof` writes the same in pprof's format, which
 *     `go tool pprof -top` reads back (golang-go: tools/deps.sh test);
 *   - a forked child goes on sampling and writes a profile of its own;
 *   - with profiling off, ebb_profile_dump says ENOTSUP.
 * At the default rate (`default`: one sample per 512 KiB), the leak, the
 * peak and the churn alone, each big enough for 10% to be five spreads or
 * more: 1 GiB of 256 KiB blocks (each sampled with odds 1 - e^-1/2, about
 * 1600 samples: a spread of 2%; the blocks' untouched bytes cost no
 * memory) for the leak and the peak, 2 GiB of 64-byte blocks (4096
 * samples: 1.6%) for the churn.
 * Usage: test_profile EBB [off|default]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MiB (1024 * 1024)
/* Block sizes that are class sizes: the profile counts block bytes. */
#define CTOR_SIZE 512
#define CHURN_SIZE 64
#define THREAD_SIZE 256
#define SPARSE_SIZE 48
#define SPARSE_KEEP_ONE_IN 64
#define HUGE_SIZE (3 * MiB)
#define HANDOFF_SIZE (48 * 1024)
#define HANDOFF_BATCH 40
#define HANDOFF_ROUNDS 16

#define CTOR_BYTES (16 * MiB)
#define THREAD_BYTES (32 * MiB)
#define SPARSE_BYTES (8 * MiB) /* under the peak below: ctor, leak and peak_site */
#define HUGE_COUNT 40

/* The sites' amounts (main changes them for the default rate). */
static size_t leak_size = 1024, leak_bytes = 32 * MiB;
static size_t peak_size = 2048, peak_bytes = 48 * MiB;
static size_t churn_bytes = 256 * MiB;

/* Global, so that the compiler keeps every store (and every malloc). */
void *volatile sink;
void **kept_ctor, **kept_leak, **kept_thread, **kept_child, **kept_sparse;

static void keep(void ***list, size_t count, size_t size)
{
    *list = calloc(count, sizeof **list); /* a small site of its own */
    for (size_t i = 0; i < count; i++) {
        (*list)[i] = malloc(size);
        memset((*list)[i], 1, 8);
    }
}

__attribute__((noinline)) void ctor_site(void)
{
    keep(&kept_ctor, CTOR_BYTES / CTOR_SIZE, CTOR_SIZE);
}

__attribute__((constructor)) static void early(void)
{
    ctor_site();
}

__attribute__((noinline)) void leak_site(void)
{
    size_t n = leak_bytes / leak_size;
    kept_leak = calloc(n, sizeof *kept_leak);
    for (size_t i = 0; i < n; i++)
        kept_leak[i] = malloc(leak_size);
}

__attribute__((noinline)) void peak_site(void)
{
    size_t n = peak_bytes / peak_size;
    void **held = calloc(n, sizeof *held);
    for (size_t i = 0; i < n; i++)
        held[i] = malloc(peak_size);
    for (size_t i = 0; i < n; i++)
        free(held[i]);
    free(held);
}

__attribute__((noinline)) void churn_site(void)
{
    enum { RING = 1000 };
    static void *ring[RING];
    for (size_t i = 0; i < churn_bytes / CHURN_SIZE; i++) {
        free(ring[i % RING]);
        ring[i % RING] = malloc(CHURN_SIZE);
    }
    for (size_t i = 0; i < RING; i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
}

/* One block in SPARSE_KEEP_ONE_IN stays: 3 KiB apart, so every kernel
 * page of the class's pages keeps one, and the freed rest stays resident. */
__attribute__((noinline)) void sparse_site(void)
{
    size_t n = SPARSE_BYTES / SPARSE_SIZE;
    void **all = calloc(n, sizeof *all);
    kept_sparse = calloc(n / SPARSE_KEEP_ONE_IN + 1, sizeof *kept_sparse);
    for (size_t i = 0; i < n; i++) {
        all[i] = malloc(SPARSE_SIZE);
        memset(all[i], 3, SPARSE_SIZE);
    }
    for (size_t i = 0; i < n; i++) {
        if (i % SPARSE_KEEP_ONE_IN == 0)
            kept_sparse[i / SPARSE_KEEP_ONE_IN] = all[i];
        else
            free(all[i]);
    }
    free(all);
}

__attribute__((noinline)) void huge_site(void)
{
    for (int i = 0; i < HUGE_COUNT; i++) {
        char *p = malloc(HUGE_SIZE);
        p[0] = 1;
        sink = p;
        free(p);
    }
}

void *thread_main(void *arg);
void *thread_main(void *arg)
{
    (void)arg;
    keep(&kept_thread, THREAD_BYTES / THREAD_SIZE, THREAD_SIZE);
    return NULL;
}

__attribute__((noinline)) void thread_site(void)
{
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
}

/* Many call stacks (61 depths times 16 leaves): the profiler's stack
 * index, which starts small, grows without losing one. */
#define LEAF(k)                                                                                    \
    __attribute__((noinline)) void leaf_##k(void);                                                 \
    __attribute__((noinline)) void leaf_##k(void)                                                  \
    {                                                                                              \
        sink = malloc(16384 + k);                                                                  \
        free(sink);                                                                                \
    }
LEAF(0) LEAF(1) LEAF(2) LEAF(3) LEAF(4) LEAF(5) LEAF(6) LEAF(7)
LEAF(8) LEAF(9) LEAF(10) LEAF(11) LEAF(12) LEAF(13) LEAF(14) LEAF(15)
static void (*const leaves[16])(void) = {leaf_0, leaf_1, leaf_2,  leaf_3,  leaf_4,  leaf_5,  leaf_6,  leaf_7,
                                         leaf_8, leaf_9, leaf_10, leaf_11, leaf_12, leaf_13, leaf_14, leaf_15};
#define MANY_DEPTHS 61

__attribute__((noinline)) void deep(int depth, int leaf);
__attribute__((noinline)) void deep(int depth, int leaf)
{
    if (depth > 0)
        deep(depth - 1, leaf);
    else
        leaves[leaf]();
    __asm__ volatile("" ::: "memory"); /* no tail call: each depth its own frame */
}

__attribute__((noinline)) void many_stacks_site(void)
{
    for (int round = 0; round < 8; round++) /* 8 tries a stack: each sampled with odds 1 - e^-4 */
        for (int d = 0; d < MANY_DEPTHS; d++)
            for (int k = 0; k < 16; k++)
                deep(d, k);
}

/* Sampled blocks move to mappings of their own, kept when freed for the
 * next sample: a calloc that lands in one a malloc wrote must read zero. */
__attribute__((noinline)) void calloc_site(void)
{
    enum { SIZE = 4000, ROUNDS = 400 };
    int dirty = 0;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char *p = malloc(SIZE);
        memset(p, 0xab, SIZE);
        free(p);
        unsigned char *z = calloc(1, SIZE);
        for (int k = 0; k < SIZE; k++)
            dirty += z[k] != 0;
        memset(z, 0xcd, SIZE);
        free(z);
    }
    CHECK(dirty == 0, "calloc returns zeros among sampled blocks (%d bytes not)", dirty);
}

/* Blocks over 16 KiB are sampled in their pages: their frees reach the
 * profiler from another thread, and through realloc, as well as from the
 * owner.  A batch at a time (2 MiB), so that the peak stays peak_site's. */
static void *free_batch(void *arg)
{
    void **batch = arg;
    for (int i = 0; i < HANDOFF_BATCH; i++)
        free(batch[i]);
    return NULL;
}

__attribute__((noinline)) void handoff_site(void)
{
    void *batch[HANDOFF_BATCH];
    for (int round = 0; round < HANDOFF_ROUNDS; round++) {
        for (int i = 0; i < HANDOFF_BATCH; i++) {
            batch[i] = malloc(HANDOFF_SIZE);
            memset(batch[i], 5, 64);
        }
        pthread_t t;
        pthread_create(&t, NULL, free_batch, batch);
        pthread_join(t, NULL);
    }
    for (int round = 0; round < HANDOFF_ROUNDS; round++) {
        char *p = malloc(20 * 1024);
        for (size_t size = 40 * 1024; size <= 640 * 1024; size *= 2)
            p = realloc(p, size);
        sink = p;
        free(p);
    }
    /* The other thread's frees wait in this thread's pages until it
     * takes them in: now, so that no page of the class stays resident
     * (the kept table is sparse_site's). */
    malloc_trim(0);
}

__attribute__((noinline)) void child_site(void)
{
    keep(&kept_child, 8 * MiB / 4096, 4096);
}

/* ---- reading a dump ------------------------------------------------------------ */

enum { S_CTOR, S_LEAK, S_PEAK, S_CHURN, S_THREAD, S_HUGE, S_CHILD, S_HANDOFF, S_COUNT };
static const char *site_names[S_COUNT] = {"ctor_site",   "leak_site", "peak_site",  "churn_site",
                                          "thread_site", "huge_site", "child_site", "handoff_site"};
/* keep() and thread_main stand for the site that called them. */
static int site_of_name(const char *name, int pending)
{
    for (int s = 0; s < S_COUNT; s++)
        if (strcmp(name, site_names[s]) == 0)
            return s;
    if (strcmp(name, "thread_main") == 0)
        return S_THREAD;
    return pending;
}

typedef struct {
    double alloc, live_end, live_peak;
} est_t;

#define MAX_STACKS 4096
static int stack_site[MAX_STACKS];

typedef struct {
    int stack;
    double weight;
    unsigned long alloc_ns, free_ns;
} rec_t;

typedef struct {
    unsigned long t;
    double weight;
} free_t;

static int by_time(const void *a, const void *b)
{
    unsigned long x = ((const free_t *)a)->t, y = ((const free_t *)b)->t;
    return x < y ? -1 : x > y;
}

static bool read_dump(const char *path, est_t est[S_COUNT])
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    memset(est, 0, sizeof(est_t) * S_COUNT);
    for (int i = 0; i < MAX_STACKS; i++)
        stack_site[i] = -1;
    static rec_t recs[1 << 20];
    size_t nrec = 0;
    char *line = NULL;
    size_t cap = 0;
    bool header = false;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "ebbmalloc-profile 1", 19) == 0)
            header = true;
        if (strncmp(line, "stack ", 6) == 0) {
            char *s = line + 6;
            long id = strtol(s, &s, 10);
            int site = -1;
            /* The innermost frame that is a site (or keep, which
             * stands for its caller: the next one that is). */
            for (char *end; id >= 0 && id < MAX_STACKS; s = end) {
                unsigned long a = strtoul(s, &end, 16);
                if (end == s)
                    break;
                Dl_info info;
                if (dladdr((void *)(a - 1), &info) != 0 && info.dli_sname != NULL) {
                    site = site_of_name(info.dli_sname, -1);
                    if (site >= 0)
                        break;
                }
            }
            if (id >= 0 && id < MAX_STACKS)
                stack_site[id] = site;
        } else if (strncmp(line, "sample ", 7) == 0 && nrec < sizeof recs / sizeof *recs) {
            int stack;
            unsigned long size, weight, alloc_ns;
            char freed[32];
            if (sscanf(line + 7, "%d %lu %lu %*u %lu %31s", &stack, &size, &weight, &alloc_ns, freed) == 5)
                recs[nrec++] = (rec_t){stack, (double)weight, alloc_ns,
                                       strcmp(freed, "-") == 0 ? ~0UL : strtoul(freed, NULL, 10)};
        }
    }
    free(line);
    fclose(f);
    /* The peak of the estimated live total, at some allocation: the
     * allocations come in time order (one lock), the frees merged in. */
    unsigned long peak_ns = 0;
    double peak = -1;
    size_t nfree = 0;
    static free_t frees[1 << 20];
    for (size_t i = 0; i < nrec; i++)
        if (recs[i].free_ns != ~0UL)
            frees[nfree++] = (free_t){recs[i].free_ns, recs[i].weight};
    qsort(frees, nfree, sizeof *frees, by_time);
    double live = 0;
    size_t fi = 0;
    for (size_t i = 0; i < nrec; i++) {
        while (fi < nfree && frees[fi].t <= recs[i].alloc_ns)
            live -= frees[fi++].weight;
        live += recs[i].weight;
        if (live > peak) {
            peak = live;
            peak_ns = recs[i].alloc_ns;
        }
    }
    for (size_t i = 0; i < nrec; i++) {
        int site = recs[i].stack >= 0 && recs[i].stack < MAX_STACKS ? stack_site[recs[i].stack] : -1;
        if (site < 0)
            continue;
        est[site].alloc += recs[i].weight;
        if (recs[i].free_ns == ~0UL)
            est[site].live_end += recs[i].weight;
        if (recs[i].alloc_ns <= peak_ns && recs[i].free_ns > peak_ns)
            est[site].live_peak += recs[i].weight;
    }
    return header;
}

static bool near(double estimate, double truth, double tolerance)
{
    return estimate >= truth * (1 - tolerance) && estimate <= truth * (1 + tolerance);
}

#define CHECK_NEAR(est, truth, what)                                                               \
    CHECK(near((est), (double)(truth), 0.10), "%s: estimate %.2f MiB, truth %.2f MiB", (what),     \
          (est) / MiB, (double)(truth) / MiB)

/* The dump keeps every stack of many_stacks_site, and dropped no sample. */
static void check_many_stacks(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    unsigned long stacks = 0, dropped = ~0UL;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        stacks += strncmp(line, "stack ", 6) == 0;
        sscanf(line, "dropped %lu", &dropped);
    }
    if (f != NULL)
        fclose(f);
    CHECK(stacks >= 0.95 * MANY_DEPTHS * 16, "%lu stacks kept (%d made)", stacks, MANY_DEPTHS * 16);
    CHECK(dropped == 0, "no sample dropped (%lu)", dropped);
}

/* `ebb profile` on the dump: each table lists the site expected. */
static void check_report(const char *ebb, const char *dump)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' profile --top 20 '%s' 2>&1", ebb, dump);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen");
    if (p == NULL)
        return;
    char line[1024], table[128] = "";
    bool leak_in_end = false, peak_in_peak = false, churn_in_alloc = false;
    double leak_mib = 0, kept_total = 0, sparse_kept = -1;
    char kept_first[512] = "";
    while (fgets(line, sizeof line, p) != NULL) {
        double mib, pct;
        char site[512];
        if (strstr(line, "MiB") != NULL && strchr(line, ':') != NULL && line[0] != ' ') {
            snprintf(table, sizeof table, "%.*s", (int)(strchr(line, ':') - line), line);
            if (strncmp(table, "freed, kept", 11) == 0)
                sscanf(strchr(line, ':') + 1, "%lf", &kept_total);
        } else if (sscanf(line, "%lf %lf%% %511s", &mib, &pct, site) == 3) {
            if (strncmp(table, "freed, kept", 11) == 0) {
                if (kept_first[0] == '\0')
                    snprintf(kept_first, sizeof kept_first, "%s", site);
                if (strcmp(site, "sparse_site") == 0)
                    sparse_kept = mib;
            }
            if (strncmp(table, "live when", 9) == 0 && strcmp(site, "leak_site") == 0) {
                leak_in_end = true;
                leak_mib = mib;
            }
            if (strcmp(table, "live at the peak") == 0 && strcmp(site, "peak_site") == 0)
                peak_in_peak = true;
            if (strcmp(table, "allocated") == 0 && strcmp(site, "churn_site") == 0)
                churn_in_alloc = true;
        }
    }
    CHECK(pclose(p) == 0, "ebb profile exits 0");
    CHECK(leak_in_end, "ebb profile: leak_site among the live at the end");
    CHECK(near(leak_mib * MiB, (double)leak_bytes, 0.10), "ebb profile: leak_site %.1f MiB", leak_mib);
    CHECK(peak_in_peak, "ebb profile: peak_site among the live at the peak");
    CHECK(churn_in_alloc, "ebb profile: churn_site among the allocated");
    /* The freed bytes among the kept blocks, in the sizes asked for; a
     * safety mode's class may be bigger (secure mode's canary). */
    double freed = (double)SPARSE_BYTES * (SPARSE_KEEP_ONE_IN - 1) / SPARSE_KEEP_ONE_IN;
    bool bigger_blocks = getenv("EBB_SECURE") != NULL;
    CHECK(strcmp(kept_first, "sparse_site") == 0, "ebb profile: sparse_site first of the kept (%s)", kept_first);
    CHECK(bigger_blocks ? sparse_kept * MiB >= 0.9 * freed && sparse_kept * MiB <= 1.6 * freed
                        : near(sparse_kept * MiB, freed, 0.10),
          "ebb profile: sparse_site keeps %.1f MiB freed resident (%.1f MiB freed)", sparse_kept, freed / MiB);
    CHECK(sparse_kept >= 0.9 * kept_total, "ebb profile: sparse_site keeps most of the %.1f MiB", kept_total);
}

/* A value of `go tool pprof -top`'s flat column ("31.50MB", "8148kB"):
 * its units are powers of 1024. */
static double pprof_bytes(const char *s)
{
    char *unit;
    double v = strtod(s, &unit);
    if (strncmp(unit, "kB", 2) == 0)
        v *= 1024;
    else if (strncmp(unit, "MB", 2) == 0)
        v *= MiB;
    else if (strncmp(unit, "GB", 2) == 0)
        v *= 1024.0 * MiB;
    return v;
}

/* The bytes `go tool pprof -top` gives `site` in `sample_index`, -1 if it
 * is not listed; `first`: the first site listed. */
static double pprof_top(const char *pb, const char *sample_index, const char *site, char *first, size_t first_size)
{
    char cmd[1024], line[1024];
    snprintf(cmd, sizeof cmd, "go tool pprof -top -sample_index=%s '%s' 2>&1", sample_index, pb);
    FILE *p = popen(cmd, "r");
    double bytes = -1;
    first[0] = '\0';
    bool table = false;
    while (p != NULL && fgets(line, sizeof line, p) != NULL) {
        char flat[64], name[512];
        if (strstr(line, "flat%") != NULL) {
            table = true;
        } else if (table && sscanf(line, "%63s %*s %*s %*s %*s %511s", flat, name) == 2) {
            if (first[0] == '\0')
                snprintf(first, first_size, "%s", name);
            if (strcmp(name, site) == 0)
                bytes = pprof_bytes(flat);
        }
    }
    CHECK(p != NULL && pclose(p) == 0, "go tool pprof -top -sample_index=%s reads it", sample_index);
    return bytes;
}

/* `ebb profile --pprof` on the dump, read back by pprof itself; `sparse`:
 * sparse_site ran. */
static void check_pprof(const char *ebb, const char *dump, bool sparse)
{
    char pb[256], cmd[1024], first[512];
    snprintf(pb, sizeof pb, "%s.pb", dump);
    snprintf(cmd, sizeof cmd, "'%s' profile --pprof '%s' '%s' > /dev/null 2>&1", ebb, pb, dump);
    CHECK(system(cmd) == 0, "ebb profile --pprof writes %s", pb);
    CHECK(system("command -v go > /dev/null") == 0, "go is installed (golang-go; tools/deps.sh test)");
    double leak = pprof_top(pb, "inuse_space", "leak_site", first, sizeof first);
    CHECK_NEAR(leak, leak_bytes, "pprof: leak_site, in use");
    double churn = pprof_top(pb, "alloc_space", "churn_site", first, sizeof first);
    CHECK(strcmp(first, "churn_site") == 0, "pprof: churn_site first of alloc_space (%s)", first);
    CHECK_NEAR(churn, churn_bytes, "pprof: churn_site, allocated");
    double peak = pprof_top(pb, "peak_space", "peak_site", first, sizeof first);
    CHECK_NEAR(peak, peak_bytes, "pprof: peak_site, live at the peak");
    if (sparse) {
        pprof_top(pb, "kept_space", "sparse_site", first, sizeof first);
        CHECK(strcmp(first, "sparse_site") == 0, "pprof: sparse_site first of kept_space (%s)", first);
    }
    unlink(pb);
}

/* The leak, the peak and the churn, from a dump. */
static void check_sites(const est_t est[S_COUNT])
{
    CHECK_NEAR(est[S_LEAK].alloc, leak_bytes, "leak_site, allocated");
    CHECK_NEAR(est[S_LEAK].live_end, leak_bytes, "leak_site, live at the end");
    CHECK_NEAR(est[S_PEAK].alloc, peak_bytes, "peak_site, allocated");
    CHECK_NEAR(est[S_PEAK].live_peak, peak_bytes, "peak_site, live at the peak");
    CHECK(est[S_PEAK].live_end < 0.01 * peak_bytes, "peak_site, nothing live at the end (%.2f MiB)",
          est[S_PEAK].live_end / MiB);
    CHECK_NEAR(est[S_CHURN].alloc, churn_bytes, "churn_site, allocated");
    CHECK(est[S_CHURN].live_end < 0.01 * churn_bytes, "churn_site, little live at the end (%.2f MiB)",
          est[S_CHURN].live_end / MiB);
}

/* The profile dumped to a file of this process's name, in `path`. */
static void dump_to(int (*dump)(const char *), char *path, size_t size)
{
    snprintf(path, size, "/tmp/ebb-profile-test-%d", (int)getpid());
    CHECK(dump(path) == 0, "dump written");
}

/* At the default rate: the three sites, with amounts that bring the
 * spreads under 2% (see the top of the file). */
static int default_rate(const char *ebb, int (*dump)(const char *))
{
    CHECK(getenv("EBB_PROFILE_RATE") == NULL, "EBB_PROFILE_RATE unset: the default rate");
    leak_size = peak_size = 256 * 1024;
    leak_bytes = peak_bytes = 1024 * (size_t)MiB;
    churn_bytes = 2048 * (size_t)MiB;
    leak_site();
    peak_site();
    churn_site();
    char path[64];
    dump_to(dump, path, sizeof path);
    est_t est[S_COUNT];
    CHECK(read_dump(path, est), "dump read back");
    check_sites(est);
    check_pprof(ebb, path, false);
    unlink(path);
    return check_summary();
}

int main(int argc, char **argv)
{
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "ebb_profile_dump");
    CHECK(dump != NULL, "ebb_profile_dump is exported");
    if (dump == NULL)
        return check_summary();
    if (argc > 2 && strcmp(argv[2], "off") == 0) {
        errno = 0;
        CHECK(dump("/dev/null") == -1 && errno == ENOTSUP, "profiling off: ENOTSUP");
        return check_summary();
    }
    if (argc > 2 && strcmp(argv[2], "default") == 0)
        return default_rate(argv[1], dump);
    leak_site();
    peak_site();
    churn_site();
    thread_site();
    huge_site();
    handoff_site();
    sparse_site();
    many_stacks_site();
    calloc_site();
    char path[64];
    dump_to(dump, path, sizeof path);
    check_many_stacks(path);
    est_t est[S_COUNT];
    CHECK(read_dump(path, est), "dump read back");
    CHECK_NEAR(est[S_CTOR].live_end, CTOR_BYTES, "constructor's blocks, live");
    check_sites(est);
    CHECK_NEAR(est[S_THREAD].live_end, THREAD_BYTES, "a thread's blocks, live");
    /* Huge blocks are sampled with odds of size / rate: every one here. */
    CHECK(near(est[S_HUGE].alloc, (double)HUGE_COUNT * HUGE_SIZE, 0.10), "huge_site, allocated: %.1f MiB",
          est[S_HUGE].alloc / MiB);
    CHECK(est[S_HANDOFF].alloc > HANDOFF_ROUNDS * HANDOFF_BATCH * HANDOFF_SIZE * 0.9,
          "handoff_site, allocated: %.1f MiB", est[S_HANDOFF].alloc / MiB);
    CHECK(est[S_HANDOFF].live_end < 0.01 * est[S_HANDOFF].alloc,
          "handoff_site, freed by another thread and by realloc: %.2f MiB live", est[S_HANDOFF].live_end / MiB);
    check_report(argv[1], path);
    check_pprof(argv[1], path, true);
    unlink(path);

    /* A forked child samples on, into its own profile. */
    pid_t pid = fork();
    if (pid == 0) {
        child_site();
        char child_path[80];
        snprintf(child_path, sizeof child_path, "%s.child", path);
        _exit(dump(child_path) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child wrote its profile");
    char child_path[80];
    snprintf(child_path, sizeof child_path, "%s.child", path);
    CHECK(read_dump(child_path, est), "the child's profile read back");
    CHECK(est[S_CHILD].live_end > 0.5 * 8 * MiB && est[S_CHILD].live_end < 1.5 * 8 * MiB,
          "the child's site in its profile: %.1f MiB", est[S_CHILD].live_end / MiB);
    CHECK_NEAR(est[S_LEAK].live_end, leak_bytes, "the parent's samples in the child's profile");
    unlink(child_path);
    return check_summary();
}
