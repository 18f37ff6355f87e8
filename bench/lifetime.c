/*
 * lifetime.c — a mix of long- and short-lived blocks with random lifetimes,
 * and periodic bursts, as in a long-running service: most objects die young,
 * some live for a while, a few live for the whole run, and now and then a
 * spike of work allocates a lot at once and drops it.
 *
 *   usage: lifetime [THREADS [STEPS [SEED]]]
 *
 * Each thread runs the same simulation on its own PRNG stream.  At every
 * step it frees the blocks whose time has come and allocates one new block
 * with a random size (32 bytes .. 8 KiB, log-uniform, so as many blocks of
 * 32-64 bytes as of 4-8 KiB) and a random lifetime:
 *     55%  1..16 steps        (temporaries)
 *     30%  16..1024 steps     (request-scoped)
 *     14%  1024..65535 steps  (caches, sessions)
 *      1%  until the end      (configuration, long-lived state)
 * Blocks due at a future step wait in a timing wheel (65536 buckets, a
 * linked list through a header in each block), so freeing is in
 * death-time order, not allocation order.
 *
 * Every 50,000 steps comes a burst: 20,000 extra blocks of 64 bytes..4 KiB
 * are allocated, and freed a third at once, a third in random order, a third
 * (mostly) a little later by the timing wheel — like a spike of requests.
 * Peak RSS shows whether memory freed by one burst serves the next, and
 * whether the long-lived blocks scattered among short-lived ones pin memory.
 *
 * Every block holds a header (next pointer, tag, size) and is filled with a
 * byte derived from its tag; before it is freed the header and three bytes
 * are checked and folded into the thread's checksum (order-dependent within
 * the thread, threads summed), which depends only on the arguments.
 *
 * Output: lifetime threads=T steps=N seed=S ops=N checksum=0x...
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "bench.h"

#define WHEEL 65536u
#define BURST_EVERY 50000u
#define BURST_BLOCKS 20000u

typedef struct block {
    struct block *next;
    uint64_t tag;
    uint32_t size;
    uint32_t pad;
} block_t;                              /* 24 bytes + payload */

typedef struct {
    pthread_t tid;
    uint32_t id;
    uint64_t rs;
    uint64_t sum, ops;
    block_t **wheel;                    /* due blocks, per step mod WHEEL */
    block_t *forever;                   /* freed at the end */
    block_t **burst;
    char pad[64];
} sim_t;

static uint64_t steps, seed;

static inline unsigned char fill_of(uint64_t tag)
{
    return (unsigned char)(tag ^ (tag >> 29) ^ (tag >> 53));
}

static block_t *make(sim_t *s, uint32_t size)
{
    block_t *b = xmalloc(size);
    s->ops++;
    b->next = NULL;
    b->tag = rng_next(&s->rs);
    b->size = size;
    memset((char *)b + sizeof *b, fill_of(b->tag), size - sizeof *b);
    return b;
}

static void drop(sim_t *s, block_t *b)
{
    unsigned char want = fill_of(b->tag);
    const unsigned char *p = (const unsigned char *)b;
    uint32_t size = b->size, off = (uint32_t)sizeof *b;
    if (size < off + 1 || size > (1u << 16) ||
        p[off] != want || p[off + (size - off) / 2] != want || p[size - 1] != want)
        die("lifetime: CORRUPTION: block %p size %u", (void *)b, size);
    s->sum = mix(s->sum, b->tag ^ size);
    free(b);
    s->ops++;
}

static uint32_t pick_size(sim_t *s, uint32_t lo_log, uint32_t hi_log)
{
    uint64_t r = rng_next(&s->rs);
    uint32_t b = lo_log + (uint32_t)(r % (hi_log - lo_log));
    uint32_t size = (1u << b) + (uint32_t)((r >> 16) & ((1u << b) - 1));
    return size < 32 ? 32 : size; /* header + at least a few payload bytes */
}

static void due_at(sim_t *s, block_t *b, uint64_t when)
{
    block_t **slot = &s->wheel[when % WHEEL];
    b->next = *slot;
    *slot = b;
}

static void burst(sim_t *s, uint64_t now)
{
    for (uint32_t i = 0; i < BURST_BLOCKS; i++)
        s->burst[i] = make(s, pick_size(s, 6, 12));
    /* a third freed at once, in allocation order */
    for (uint32_t i = 0; i < BURST_BLOCKS / 3; i++)
        drop(s, s->burst[i]);
    /* a third in random order (Fisher-Yates over the slice) */
    uint32_t lo = BURST_BLOCKS / 3, hi = 2 * (BURST_BLOCKS / 3);
    for (uint32_t i = hi - 1; i > lo; i--) {
        uint32_t j = lo + (uint32_t)rng_below(&s->rs, i - lo + 1);
        block_t *t = s->burst[i];
        s->burst[i] = s->burst[j];
        s->burst[j] = t;
    }
    for (uint32_t i = lo; i < hi; i++)
        drop(s, s->burst[i]);
    /* the last third stays a while: 1..4096 steps */
    for (uint32_t i = hi; i < BURST_BLOCKS; i++)
        due_at(s, s->burst[i], now + 1 + rng_below(&s->rs, 4096));
}

static void *simulate(void *arg)
{
    sim_t *s = arg;
    s->wheel = xcalloc(WHEEL, sizeof *s->wheel);
    s->burst = xcalloc(BURST_BLOCKS, sizeof *s->burst);
    for (uint64_t now = 0; now < steps; now++) {
        block_t *b = s->wheel[now % WHEEL];
        s->wheel[now % WHEEL] = NULL;
        while (b != NULL) {
            block_t *next = b->next;
            drop(s, b);
            b = next;
        }

        block_t *n = make(s, pick_size(s, 5, 13));
        uint64_t r = rng_next(&s->rs) % 100;
        uint64_t life;
        if (r < 55)
            life = 1 + rng_below(&s->rs, 16);
        else if (r < 85)
            life = 16 + rng_below(&s->rs, 1009);
        else if (r < 99)
            life = 1024 + rng_below(&s->rs, WHEEL - 1024);
        else
            life = 0;
        if (life == 0) {
            n->next = s->forever;
            s->forever = n;
        } else {
            due_at(s, n, now + life);
        }

        if (now % BURST_EVERY == BURST_EVERY - 1)
            burst(s, now);
    }
    /* the end: everything still due, in wheel order, then the long-lived */
    for (uint64_t i = 0; i < WHEEL; i++) {
        block_t *b = s->wheel[(steps + i) % WHEEL];
        while (b != NULL) {
            block_t *next = b->next;
            drop(s, b);
            b = next;
        }
    }
    while (s->forever != NULL) {
        block_t *next = s->forever->next;
        drop(s, s->forever);
        s->forever = next;
    }
    free(s->wheel);
    free(s->burst);
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t threads = arg_u64(argc, argv, 1, 2);
    steps = arg_u64(argc, argv, 2, 1000000);
    seed = arg_u64(argc, argv, 3, 42);
    if (threads < 1 || threads > 1024)
        die("lifetime: THREADS must be 1..1024");
    uint32_t n = (uint32_t)threads;

    sim_t *s = xcalloc(n, sizeof *s);
    for (uint32_t t = 0; t < n; t++) {
        s[t].id = t;
        s[t].rs = rng_seed(seed, t);
        s[t].sum = 0xcbf29ce484222325ull;
        if (pthread_create(&s[t].tid, NULL, simulate, &s[t]) != 0)
            die("lifetime: pthread_create failed");
    }
    uint64_t checksum = 0, ops = 0;
    for (uint32_t t = 0; t < n; t++) {
        pthread_join(s[t].tid, NULL);
        checksum += s[t].sum * (2 * (uint64_t)t + 1);
        ops += s[t].ops;
    }
    free(s);
    printf("lifetime threads=%u steps=%" PRIu64 " seed=%" PRIu64 " ops=%" PRIu64
           " checksum=0x%016" PRIx64 "\n", n, steps, seed, ops, checksum);
    return 0;
}
