/*
 * churn.c — single-thread small-object churn, in the style of a compiler or
 * an interpreter: lots of short-lived blocks of mixed small sizes.
 *
 *   usage: churn [ITERATIONS [SEED]]
 *
 * Each iteration does three things, driven by a deterministic xorshift PRNG:
 *   - replaces one random slot of the SHORT working set (a few thousand live
 *     blocks): the old block is read back, checked and freed, and a new block
 *     of a random size (8..512 bytes, skewed towards small) takes its place;
 *   - with probability 1/4, allocates a scratch block, fills it, reads it back
 *     and frees it at once (LIFO temporaries);
 *   - with probability 1/64, replaces one random slot of the LONG pool, whose
 *     blocks therefore live about 64 times longer than the short ones.
 *
 * Every block gets a few bytes written into it (an 8-byte tag at the start,
 * one byte at the end).  Before a block is freed those bytes are read back,
 * compared with what was written, and folded into a checksum, so that an
 * allocator which hands out overlapping or corrupted memory cannot look fast.
 * The checksum depends only on ITERATIONS and SEED, never on addresses, and
 * must be identical under every allocator.
 *
 * Output (one line): churn iterations=N seed=S ops=N checksum=0x...
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SHORT_SLOTS 4096u   /* the main working set */
#define LONG_SLOTS  4096u   /* longer-lived blocks, touched 1/64 of the time */
#define DEFAULT_ITERATIONS 20000000ull
#define DEFAULT_SEED 42ull

typedef struct {
    unsigned char *p;
    uint64_t tag;
    uint32_t size;
} slot_t;

/* bench.h's xorshift64*, one stream for the whole program. */
static uint64_t rng_state;

static inline uint64_t rng(void)
{
    return rng_next(&rng_state);
}

/* 8..512 bytes, skewed towards small: 50% 8..32, 30% 33..128,
 * 15% 129..256, 5% 257..512. */
static inline uint32_t pick_size(uint64_t r)
{
    uint32_t bucket = (uint32_t)(r % 20u);
    uint32_t v = (uint32_t)(r >> 32);
    if (bucket < 10)
        return 8u + v % 25u;
    if (bucket < 16)
        return 33u + v % 96u;
    if (bucket < 19)
        return 129u + v % 128u;
    return 257u + v % 256u;
}

static uint64_t checksum = 0xcbf29ce484222325ull;
static uint64_t ops;

static inline void fold(uint64_t v)
{
    checksum = mix(checksum, v);
}

static inline unsigned char tail_byte(uint64_t tag)
{
    return (unsigned char)((tag >> 56) ^ 0x5a);
}

static unsigned char *alloc_block(uint32_t size, uint64_t tag)
{
    unsigned char *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "churn: malloc(%" PRIu32 ") failed\n", size);
        exit(2);
    }
    ops++;
    memcpy(p, &tag, sizeof tag);
    if (size > sizeof tag)
        p[size - 1] = tail_byte(tag);
    return p;
}

/* Read back what alloc_block wrote, check it, fold it into the checksum,
 * then free the block. */
static void release_block(unsigned char *p, uint32_t size, uint64_t tag)
{
    uint64_t got;
    memcpy(&got, p, sizeof got);
    unsigned char tail = size > sizeof got ? p[size - 1] : 0;
    if (got != tag || (size > sizeof got && tail != tail_byte(tag))) {
        fprintf(stderr, "churn: CORRUPTION: block %p size %" PRIu32
                " tag %016" PRIx64 " read %016" PRIx64 "\n",
                (void *)p, size, tag, got);
        exit(3);
    }
    fold(got);
    fold(((uint64_t)size << 8) | tail);
    free(p);
    ops++;
}

static void replace(slot_t *s)
{
    if (s->p != NULL)
        release_block(s->p, s->size, s->tag);
    s->size = pick_size(rng());
    s->tag = rng();
    s->p = alloc_block(s->size, s->tag);
}

int main(int argc, char **argv)
{
    uint64_t iterations = DEFAULT_ITERATIONS;
    uint64_t seed = DEFAULT_SEED;
    if (argc > 1)
        iterations = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        seed = strtoull(argv[2], NULL, 0);
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1; /* never zero for small seeds */
    if (rng_state == 0)
        rng_state = 1;

    slot_t *shorts = calloc(SHORT_SLOTS, sizeof *shorts);
    slot_t *longs = calloc(LONG_SLOTS, sizeof *longs);
    if (shorts == NULL || longs == NULL) {
        fprintf(stderr, "churn: cannot allocate slot tables\n");
        return 2;
    }

    /* Warm up: fill both pools so the steady state starts at once. */
    for (uint32_t i = 0; i < SHORT_SLOTS; i++)
        replace(&shorts[i]);
    for (uint32_t i = 0; i < LONG_SLOTS; i++)
        replace(&longs[i]);

    for (uint64_t it = 0; it < iterations; it++) {
        uint64_t r = rng();
        replace(&shorts[(r >> 20) % SHORT_SLOTS]);
        if ((r & 3u) == 0) {
            uint32_t size = pick_size(rng());
            uint64_t tag = rng();
            release_block(alloc_block(size, tag), size, tag);
        }
        if (((r >> 2) & 63u) == 0)
            replace(&longs[(r >> 40) % LONG_SLOTS]);
    }

    for (uint32_t i = 0; i < SHORT_SLOTS; i++)
        release_block(shorts[i].p, shorts[i].size, shorts[i].tag);
    for (uint32_t i = 0; i < LONG_SLOTS; i++)
        release_block(longs[i].p, longs[i].size, longs[i].tag);
    free(shorts);
    free(longs);

    printf("churn iterations=%" PRIu64 " seed=%" PRIu64 " ops=%" PRIu64
           " checksum=0x%016" PRIx64 "\n", iterations, seed, ops, checksum);
    return 0;
}
