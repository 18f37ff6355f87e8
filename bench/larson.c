/*
 * larson.c — the server pattern, after the classic "larson" benchmark:
 * worker threads keep replacing random blocks in one SHARED array of
 * blocks, so a block is usually freed by a thread other than the one that
 * allocated it.
 *
 *   usage: larson [THREADS [OPS_PER_THREAD [SLOTS_PER_THREAD [SEED]]]]
 *
 * The array has THREADS * SLOTS_PER_THREAD slots (rounded up to a power of
 * two per region), seen as THREADS regions.  The main thread fills every
 * slot, then starts the workers.  A worker's step: allocate a block
 * (24..512 bytes, uniform, as in larson), fill it, and swap it into a slot
 * of its current region with one atomic exchange; the block that was there
 * comes back, is checked and freed.  A worker spends SLOTS_PER_THREAD steps
 * in a region, visiting its slots in a random order (a random permutation,
 * new for each visit), then waits for the others at a barrier and moves on
 * to the next region: worker t works in region (t + k) mod THREADS during
 * its k-th phase.  So the blocks it frees were put there by the worker that
 * visited the region before it: with two threads or more, all frees but the
 * main thread's are remote (the share is printed as remote=%).  When the
 * workers are done, the main thread frees what is left.
 *
 * Every block carries a header (a 64-bit tag, its size, the allocating
 * thread) and a payload filled with a byte derived from the tag.  Whoever
 * frees a block checks the header and three payload bytes and adds a hash
 * of what it read to its sum.  Every block is allocated by a deterministic
 * PRNG stream and freed exactly once, so the sum over all threads is the
 * same whatever the timing; it is also checked against the sum of the
 * hashes computed when the blocks were made.
 *
 * Output: larson threads=T per_thread=N slots=S seed=X remote=P% ops=N checksum=0x...
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"

#define HDR 16u              /* tag (8), size (4), owner (4) */
#define MIN_SIZE 24u
#define MAX_SIZE 512u

typedef struct {
    pthread_t tid;
    uint32_t id;
    uint64_t rs;                       /* PRNG state */
    uint64_t made, freed, remote;      /* blocks */
    uint64_t sum, expect;
    int bad;
    char pad[64];                      /* keep workers' counters apart */
} worker_t;

static _Atomic(unsigned char *) *slots;
static pthread_barrier_t phase_barrier;
static uint32_t nthreads;
static uint64_t per_region, ops_per_thread;

static inline unsigned char fill_of(uint64_t tag)
{
    return (unsigned char)(tag ^ (tag >> 29) ^ (tag >> 53));
}

static inline uint64_t block_hash(uint64_t tag, uint32_t size, unsigned char b)
{
    return hash64(tag ^ ((uint64_t)size << 40) ^ ((uint64_t)b << 32));
}

static unsigned char *make_block(worker_t *w)
{
    uint64_t r = rng_next(&w->rs);
    uint32_t size = MIN_SIZE + (uint32_t)(r % (MAX_SIZE - MIN_SIZE + 1));
    uint64_t tag = rng_next(&w->rs);
    unsigned char *p = xmalloc(size);
    unsigned char b = fill_of(tag);
    memset(p + HDR, b, size - HDR);
    memcpy(p, &tag, 8);
    memcpy(p + 8, &size, 4);
    memcpy(p + 12, &w->id, 4);
    w->expect += block_hash(tag, size, b);
    w->made++;
    return p;
}

static void take_block(worker_t *w, unsigned char *p)
{
    static _Atomic int reports;
    uint64_t tag;
    uint32_t size, owner;
    memcpy(&tag, p, 8);
    memcpy(&size, p + 8, 4);
    memcpy(&owner, p + 12, 4);
    if (size < MIN_SIZE || size > MAX_SIZE || owner > nthreads) {
        w->bad = 1;
        if (reports++ < 10)
            fprintf(stderr, "larson: CORRUPTION: block %p header size %u owner %u\n",
                    (void *)p, size, owner);
        return; /* leak it */
    }
    unsigned char want = fill_of(tag);
    unsigned char first = p[HDR], mid = p[HDR + (size - HDR) / 2], last = p[size - 1];
    if (first != want || mid != want || last != want) {
        w->bad = 1;
        if (reports++ < 10)
            fprintf(stderr, "larson: CORRUPTION: block %p size %u payload %02x %02x %02x, want %02x\n",
                    (void *)p, size, first, mid, last, want);
    }
    w->sum += block_hash(tag, size, (unsigned char)(first & mid & last));
    w->remote += owner != w->id;
    w->freed++;
    free(p);
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    uint64_t mask = per_region - 1, mul = 1, add = 0, base = 0;
    for (uint64_t i = 0; i < ops_per_thread; i++) {
        uint64_t k = i & mask;
        if (k == 0) { /* a new phase: next region, new permutation */
            if (i != 0)
                pthread_barrier_wait(&phase_barrier);
            base = ((w->id + i / per_region) % nthreads) * per_region;
            mul = rng_next(&w->rs) | 1; /* odd: i -> mul*i+add is a permutation */
            add = rng_next(&w->rs);
        }
        uint64_t idx = base + ((k * mul + add) & mask);
        unsigned char *p = make_block(w);
        unsigned char *old = atomic_exchange_explicit(&slots[idx], p, memory_order_acq_rel);
        if (old != NULL)
            take_block(w, old);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t threads = arg_u64(argc, argv, 1, 2);
    ops_per_thread = arg_u64(argc, argv, 2, 2000000);
    per_region = arg_u64(argc, argv, 3, 4096);
    uint64_t seed = arg_u64(argc, argv, 4, 42);
    if (threads < 1 || threads > 1024 || per_region < 1 || per_region > (1u << 24))
        die("larson: THREADS must be 1..1024 and SLOTS_PER_THREAD 1..2^24");
    while (per_region & (per_region - 1))
        per_region += per_region & -per_region; /* round up to a power of two */
    nthreads = (uint32_t)threads;

    uint64_t nslots = nthreads * per_region;
    slots = xcalloc(nslots, sizeof *slots);
    /* worker nthreads is the main thread: it fills the array and empties it */
    worker_t *w = xcalloc(nthreads + 1, sizeof *w);
    for (uint32_t t = 0; t <= nthreads; t++) {
        w[t].id = t;
        w[t].rs = rng_seed(seed, t);
    }
    worker_t *main_w = &w[nthreads];
    for (uint64_t i = 0; i < nslots; i++)
        atomic_store_explicit(&slots[i], make_block(main_w), memory_order_relaxed);

    if (pthread_barrier_init(&phase_barrier, NULL, nthreads) != 0)
        die("larson: pthread_barrier_init failed");
    for (uint32_t t = 0; t < nthreads; t++)
        if (pthread_create(&w[t].tid, NULL, worker, &w[t]) != 0)
            die("larson: pthread_create failed");
    for (uint32_t t = 0; t < nthreads; t++)
        pthread_join(w[t].tid, NULL);
    pthread_barrier_destroy(&phase_barrier);

    for (uint64_t i = 0; i < nslots; i++) {
        unsigned char *p = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (p != NULL)
            take_block(main_w, p);
    }
    free(slots);

    uint64_t sum = 0, expect = 0, made = 0, freed = 0, remote = 0, worker_frees = 0;
    int bad = 0;
    for (uint32_t t = 0; t <= nthreads; t++) {
        sum += w[t].sum;
        expect += w[t].expect;
        made += w[t].made;
        freed += w[t].freed;
        bad |= w[t].bad;
        if (t < nthreads) {
            remote += w[t].remote;
            worker_frees += w[t].freed;
        }
    }
    free(w);
    printf("larson threads=%u per_thread=%" PRIu64 " slots=%" PRIu64 " seed=%" PRIu64
           " remote=%.0f%% ops=%" PRIu64 " checksum=0x%016" PRIx64 "\n",
           nthreads, ops_per_thread, nslots, seed,
           worker_frees ? 100.0 * (double)remote / (double)worker_frees : 0.0,
           made + freed, sum);
    if (bad || sum != expect || made != freed)
        die("larson: CHECKSUM MISMATCH: read back 0x%016" PRIx64 ", wrote 0x%016" PRIx64
            " (%" PRIu64 " blocks made, %" PRIu64 " freed)", sum, expect, made, freed);
    return 0;
}
