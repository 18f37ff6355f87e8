/*
 * reclaim.c — how fast does freed memory go back to the operating system?
 *
 *   usage: reclaim PATTERN [SCALE_MIB [SEED]]
 *
 * The program takes a baseline of its resident set (after one warm-up
 * malloc/free, so the allocator's own start-up memory is part of the
 * baseline), allocates a lot following PATTERN, touches every byte of it,
 * then frees it all and samples its resident set 0, 100 and 1000 ms after
 * the last free returned.  Between the frees and the last sample it makes no
 * allocator call at all: it only reads /proc/self/statm with open/read/close
 * into a stack buffer and sleeps with clock_nanosleep.  Whatever memory
 * comes back in that time was returned by the allocator on its own (during
 * free, or from a background thread).
 *
 * Patterns (SCALE_MIB defaults to 1024; the sizes below are for 1024):
 *   small    1 GiB of small blocks (16..256 bytes), freed in random order
 *   pinned   the same, plus one 64-byte block allocated last that stays
 *            allocated until after the samples (it pins the top of a heap)
 *   threads  4 threads each allocate 256 MiB of 200-byte blocks, then (all
 *            at once) free them in random order and exit; the free phase
 *            ends when all four have been joined
 *   big8m    100 blocks of 8 MiB, freed in random order
 *   realloc  one buffer grown by realloc, doubling from 4 KiB to 512 MiB,
 *            then freed
 *   medium   1 GiB of 4..64 KiB blocks, freed in random order
 *   sparse   512 MiB of 64-byte blocks; all but one in 1024 freed, in
 *            random order (one live block every 64 KiB); the live ones
 *            are checked and freed after the samples
 *   sparse-exited  the same in a thread that then exits
 *   sparse-trim    the same, and malloc_trim(0) right after the frees
 *            (part of the free phase)
 *   sparse-remote  a thread allocates them and sleeps (in read(2), alive
 *            until the samples are taken); the main thread frees them
 *
 * The tables of pointers live in memory mapped directly with mmap (not
 * malloc), so they do not disturb the allocator; they are unmapped right
 * after the free phase, before the first sample.
 *
 * Every block carries a header (its index and size, and a hash of them)
 * and is filled with a byte derived from its index.  Before each free the
 * header and the last byte are read back and checked, and the hash is
 * summed into a checksum that depends only on PATTERN, SCALE_MIB and SEED.
 *
 * Output (one line; *_kib are KiB above the baseline, free_ms is the time
 * from the first free to the return of the last one):
 *   reclaim pattern=P scale_mib=S base_kib=B peak_kib=K rss0_kib=A
 *           rss100_kib=B rss1000_kib=C free_ms=F checksum=0x...
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static uint64_t g_seed;
static void *g_pin;             /* "pinned": freed only after the samples */
static void **g_kept;           /* "sparse": the live blocks, freed after the samples */
static size_t g_kept_n, g_kept_cap;

/* ---- measuring, without the allocator ------------------------------------- */

static long rss_kib(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *s = buf;
    while (*s != ' ' && *s != '\0') /* skip size */
        s++;
    long pages = 0;
    for (s++; *s >= '0' && *s <= '9'; s++)
        pages = pages * 10 + (*s - '0');
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct timespec now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static double ms_between(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static void sleep_until(struct timespec start, long ms)
{
    struct timespec t = start;
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0)
        ;
}

static void *map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("reclaim: mmap(%zu) failed", bytes);
    return p;
}

/* ---- blocks ------------------------------------------------------------------ */

typedef struct {
    uint32_t idx, size;
    uint64_t hash;
} hdr_t;                        /* 16 bytes: the smallest block holds it */

static inline uint64_t block_hash(uint64_t stream, uint32_t idx, uint32_t size)
{
    return hash64(g_seed ^ (stream << 40) ^ ((uint64_t)idx << 1) ^ ((uint64_t)size << 32));
}

static inline unsigned char fill_byte(uint32_t idx)
{
    return (unsigned char)(idx * 0x9Du + 1u);
}

static void *new_block(uint64_t stream, uint32_t idx, uint32_t size)
{
    unsigned char *p = xmalloc(size);
    hdr_t h = {idx, size, block_hash(stream, idx, size)};
    memcpy(p, &h, sizeof h);
    memset(p + sizeof h, fill_byte(idx), size - sizeof h);
    return p;
}

/* Check a block, free it, return its hash. */
static uint64_t free_block(uint64_t stream, void *v)
{
    unsigned char *p = v;
    hdr_t h;
    memcpy(&h, p, sizeof h);
    if (h.size < sizeof h || h.hash != block_hash(stream, h.idx, h.size) ||
        p[h.size - 1] != (h.size > sizeof h ? fill_byte(h.idx) : p[h.size - 1]))
        die("reclaim: CORRUPTION in block %p (idx %" PRIu32 ", size %" PRIu32 ")", v, h.idx, h.size);
    free(p);
    return h.hash;
}

static void shuffle(void **a, size_t n, uint64_t *rs)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(rs, i);
        void *t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- the patterns ------------------------------------------------------------ */

typedef struct {
    long peak_kib;              /* resident, just before the frees */
    struct timespec t0, t1;     /* first free, return of the last */
    uint64_t sum;
} phase_t;

/* Blocks of lo..hi bytes until `bytes` have been asked for; freed at random. */
static void random_blocks(phase_t *ph, uint64_t bytes, uint32_t lo, uint32_t hi, int pinned)
{
    uint64_t rs = rng_seed(g_seed, 1);
    size_t cap = (size_t)(bytes / lo + 1);
    void **a = map(cap * sizeof *a);
    size_t n = 0;
    for (uint64_t asked = 0; asked < bytes; n++) {
        uint32_t size = lo + (uint32_t)rng_below(&rs, hi - lo + 1);
        a[n] = new_block(1, (uint32_t)n, size);
        asked += size;
    }
    void *pin = pinned ? new_block(2, 0, 64) : NULL;
    shuffle(a, n, &rs);
    ph->peak_kib = rss_kib();
    ph->t0 = now();
    for (size_t i = 0; i < n; i++)
        ph->sum += free_block(1, a[i]);
    ph->t1 = now();
    munmap(a, cap * sizeof *a);
    g_pin = pin;
}

typedef struct {
    pthread_barrier_t *allocated, *go;
    uint64_t bytes;
    uint32_t id;
    uint64_t sum;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    uint64_t rs = rng_seed(g_seed, 100 + w->id);
    size_t n = (size_t)(w->bytes / 200);
    void **a = map(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = new_block(100 + w->id, (uint32_t)i, 200);
    shuffle(a, n, &rs);
    pthread_barrier_wait(w->allocated);
    pthread_barrier_wait(w->go);
    for (size_t i = 0; i < n; i++)
        w->sum += free_block(100 + w->id, a[i]);
    munmap(a, n * sizeof *a);
    return NULL;
}

static void threads(phase_t *ph, uint64_t bytes)
{
    enum { T = 4 };
    pthread_barrier_t allocated, go;
    pthread_barrier_init(&allocated, NULL, T + 1);
    pthread_barrier_init(&go, NULL, T + 1);
    pthread_t tid[T];
    worker_t w[T];
    for (uint32_t i = 0; i < T; i++) {
        w[i] = (worker_t){&allocated, &go, bytes / T, i, 0};
        if (pthread_create(&tid[i], NULL, worker, &w[i]) != 0)
            die("reclaim: pthread_create failed");
    }
    pthread_barrier_wait(&allocated);
    ph->peak_kib = rss_kib();
    ph->t0 = now();
    pthread_barrier_wait(&go);
    for (uint32_t i = 0; i < T; i++) {
        pthread_join(tid[i], NULL);
        ph->sum += w[i].sum;
    }
    ph->t1 = now();
    pthread_barrier_destroy(&allocated);
    pthread_barrier_destroy(&go);
}

static void big_blocks(phase_t *ph, uint32_t count, uint32_t size)
{
    uint64_t rs = rng_seed(g_seed, 3);
    void **a = map(count * sizeof *a);
    for (uint32_t i = 0; i < count; i++)
        a[i] = new_block(3, i, size);
    shuffle(a, count, &rs);
    ph->peak_kib = rss_kib();
    ph->t0 = now();
    for (uint32_t i = 0; i < count; i++)
        ph->sum += free_block(3, a[i]);
    ph->t1 = now();
    munmap(a, count * sizeof *a);
}

static void grow(phase_t *ph, uint64_t max)
{
    size_t size = 4096;
    unsigned char *p = new_block(4, 0, (uint32_t)size);
    uint64_t sum = 0;
    while (size < max) {
        size_t n = size * 2;
        p = xrealloc(p, n);
        /* the old part must have moved intact: check a byte per page */
        for (size_t i = 4096; i < size; i += 4096)
            if (p[i] != (unsigned char)(i >> 12))
                die("reclaim: CORRUPTION after realloc to %zu at offset %zu", n, i);
        for (size_t i = size; i < n; i += 4096) {
            memset(p + i, (int)(unsigned char)(i >> 12), 4096);
            sum += (uint64_t)(i >> 12) * 0x9E3779B97F4A7C15ull;
        }
        size = n;
    }
    ph->sum = sum;
    /* the header still says 4096 bytes: check it and the first page */
    ph->peak_kib = rss_kib();
    ph->t0 = now();
    ph->sum += free_block(4, p);
    ph->t1 = now();
}

typedef struct {
    phase_t *ph;
    uint64_t bytes;
    int trim;
    int remote;               /* the blocks are freed by another thread */
    int ready[2], wake[2];    /* sparse-remote: "allocated", and "wake up" */
    void **a;
    size_t n, m;
} sparse_t;

static void sparse_free(sparse_t *sp)
{
    phase_t *ph = sp->ph;
    ph->peak_kib = rss_kib();
    ph->t0 = now();
    for (size_t i = 0; i < sp->m; i++)
        ph->sum += free_block(5, sp->a[i]);
    if (sp->trim)
        malloc_trim(0);
    ph->t1 = now();
    munmap(sp->a, sp->n * sizeof *sp->a);
}

/* 64-byte blocks; all but one in 1024 freed at random, the rest kept. */
static void *sparse_blocks(void *arg)
{
    sparse_t *sp = arg;
    uint64_t rs = rng_seed(g_seed, 5);
    size_t n = (size_t)(sp->bytes / 64);
    void **a = map(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = new_block(5, (uint32_t)i, 64);
    g_kept_cap = n / 1024 + 1;
    g_kept = map(g_kept_cap * sizeof *g_kept);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 1024 == 0)
            g_kept[g_kept_n++] = a[i];
        else
            a[m++] = a[i];
    }
    shuffle(a, m, &rs);
    sp->a = a;
    sp->n = n;
    sp->m = m;
    if (!sp->remote) {
        sparse_free(sp);
        return NULL;
    }
    char c = 1;
    if (write(sp->ready[1], &c, 1) != 1 || read(sp->wake[0], &c, 1) != 1)
        die("reclaim: pipe failed");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: reclaim small|pinned|threads|big8m|realloc|medium|sparse|sparse-exited|sparse-trim|"
                        "sparse-remote"
                        " [SCALE_MIB [SEED]]\n");
        return 2;
    }
    const char *pattern = argv[1];
    uint64_t scale = arg_u64(argc, argv, 2, 1024);
    g_seed = arg_u64(argc, argv, 3, 42);
    if (scale < 16)
        die("reclaim: SCALE_MIB must be at least 16");
    uint64_t bytes = scale << 20;

    free(xmalloc(64));          /* the allocator's start-up is baseline */
    long base = rss_kib();

    phase_t ph = {0};
    sparse_t sp = {&ph, bytes / 2, strcmp(pattern, "sparse-trim") == 0, strcmp(pattern, "sparse-remote") == 0,
                   {-1, -1}, {-1, -1}, NULL, 0, 0};
    pthread_t sleeper;
    if (strcmp(pattern, "small") == 0) {
        random_blocks(&ph, bytes, 16, 256, 0);
    } else if (strcmp(pattern, "pinned") == 0) {
        random_blocks(&ph, bytes, 16, 256, 1);
    } else if (strcmp(pattern, "threads") == 0) {
        threads(&ph, bytes);
    } else if (strcmp(pattern, "big8m") == 0) {
        big_blocks(&ph, (uint32_t)(scale * 100 / 1024), 8u << 20);
    } else if (strcmp(pattern, "realloc") == 0) {
        grow(&ph, bytes / 2);
    } else if (strcmp(pattern, "medium") == 0) {
        random_blocks(&ph, bytes, 4096, 65536, 0);
    } else if (strcmp(pattern, "sparse") == 0 || strcmp(pattern, "sparse-trim") == 0) {
        sparse_blocks(&sp);
    } else if (strcmp(pattern, "sparse-remote") == 0) {
        char c;
        if (pipe(sp.ready) != 0 || pipe(sp.wake) != 0)
            die("reclaim: pipe failed");
        if (pthread_create(&sleeper, NULL, sparse_blocks, &sp) != 0)
            die("reclaim: pthread_create failed");
        if (read(sp.ready[0], &c, 1) != 1)
            die("reclaim: pipe failed");
        sparse_free(&sp);
    } else if (strcmp(pattern, "sparse-exited") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, sparse_blocks, &sp) != 0)
            die("reclaim: pthread_create failed");
        pthread_join(t, NULL);
        ph.t1 = now(); /* the thread's exit is part of the free phase */
    } else {
        die("reclaim: unknown pattern '%s'", pattern);
    }
    long r0 = rss_kib();
    sleep_until(ph.t1, 100);
    long r100 = rss_kib();
    sleep_until(ph.t1, 1000);
    long r1000 = rss_kib();
    if (g_pin != NULL)
        ph.sum += free_block(2, g_pin);
    for (size_t i = 0; i < g_kept_n; i++)
        ph.sum += free_block(5, g_kept[i]);
    if (g_kept != NULL)
        munmap(g_kept, g_kept_cap * sizeof *g_kept);
    if (sp.remote) {
        char c = 1;
        if (write(sp.wake[1], &c, 1) != 1)
            die("reclaim: pipe failed");
        pthread_join(sleeper, NULL);
    }

    printf("reclaim pattern=%s scale_mib=%" PRIu64 " base_kib=%ld peak_kib=%ld rss0_kib=%ld"
           " rss100_kib=%ld rss1000_kib=%ld free_ms=%.1f checksum=0x%016" PRIx64 "\n",
           pattern, scale, base, ph.peak_kib - base, r0 - base, r100 - base, r1000 - base,
           ms_between(ph.t0, ph.t1), ph.sum);
    return 0;
}
