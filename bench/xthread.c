/*
 * xthread.c — cross-thread free: producer/consumer pairs.
 *
 *   usage: xthread [THREADS [ITEMS_PER_PRODUCER [SEED]]]
 *
 * THREADS (default 2) is rounded down to an even number (at least 2) and split
 * into THREADS/2 independent producer/consumer pairs.  Each producer allocates
 * ITEMS_PER_PRODUCER small blocks (16..256 bytes, skewed towards small) and
 * fills them.  One block in eight it reads back and frees itself (a local
 * free); the rest go, 256 at a time, into a batch that is handed to its
 * consumer through a bounded mutex/condvar queue.  The consumer checks each
 * block's content and frees it, then frees the batch, which the producer also
 * malloc'ed.  So most frees happen on a thread other than the allocating one.
 *
 * Each block holds a header (a 64-bit tag and its size) and is filled with a
 * byte derived from the tag.  Whoever frees a block reads back the header and
 * three payload bytes, checks them, and adds a hash of what it read to a
 * checksum.  The checksum is a sum, so it does not depend on thread timing,
 * only on THREADS, ITEMS_PER_PRODUCER and SEED; it must be identical under
 * every allocator.
 *
 * Output (one line):
 *   xthread threads=T pairs=P items=N seed=S ops=N checksum=0x...
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BATCH 256u              /* blocks per hand-off */
#define HDR 12u                 /* tag (8 bytes) + size (4 bytes) */
#define QUEUE_CAP 16u           /* batches in flight per pair, at most */
#define DEFAULT_ITEMS 10000000ull
#define DEFAULT_SEED 42ull

typedef struct batch {
    struct batch *next;
    uint32_t n;
    void *items[BATCH];
} batch_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    batch_t *head, *tail;
    unsigned count;
    int done;

    uint64_t items;
    uint64_t seed;

    /* results, each written by one thread only */
    uint64_t prod_sum, prod_ops, expect_sum;
    uint64_t cons_sum, cons_ops;
    int bad;
} pair_t;

/* 16..256 bytes: 60% 16..64, 30% 65..128, 10% 129..256. */
static inline uint32_t pick_size(uint64_t r)
{
    uint32_t bucket = (uint32_t)(r % 10u);
    uint32_t v = (uint32_t)(r >> 32);
    if (bucket < 6)
        return 16u + v % 49u;
    if (bucket < 9)
        return 65u + v % 64u;
    return 129u + v % 128u;
}

static inline unsigned char fill_byte(uint64_t tag)
{
    return (unsigned char)(tag ^ (tag >> 32));
}

static inline uint64_t hash3(uint64_t tag, uint32_t size, unsigned char b)
{
    uint64_t h = tag ^ ((uint64_t)size << 48) ^ ((uint64_t)b << 40);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Check a block, hash what was read back, free it.  Returns the hash; on a
 * mismatch sets *bad and reports (the first few times).  A block is at least
 * 16 bytes: the tag at offset 0, the size at offset 8, payload from HDR on. */
static uint64_t consume_block(unsigned char *p, int *bad)
{
    static _Atomic int reports;
    uint64_t tag;
    uint32_t size;
    memcpy(&tag, p, sizeof tag);
    memcpy(&size, p + 8, sizeof size);
    unsigned char want = fill_byte(tag);
    if (size < 16 || size > 256) {
        *bad = 1;
        if (reports++ < 10)
            fprintf(stderr, "xthread: CORRUPTION: block %p has size field %" PRIu32 "\n",
                    (void *)p, size);
        return 0; /* leak it: freeing a block we cannot trust helps nobody */
    }
    unsigned char first = p[HDR], mid = p[HDR + (size - HDR) / 2], last = p[size - 1];
    if (first != want || mid != want || last != want) {
        *bad = 1;
        if (reports++ < 10)
            fprintf(stderr, "xthread: CORRUPTION: block %p size %" PRIu32
                    " payload %02x %02x %02x, want %02x\n",
                    (void *)p, size, first, mid, last, want);
    }
    free(p);
    return hash3(tag, size, (unsigned char)(first ^ mid ^ last));
}

static void push(pair_t *q, batch_t *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->count >= QUEUE_CAP)
        pthread_cond_wait(&q->not_full, &q->mu);
    b->next = NULL;
    if (q->tail != NULL)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Returns NULL once the producer is done and the queue is empty. */
static batch_t *pop(pair_t *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->head == NULL && !q->done)
        pthread_cond_wait(&q->not_empty, &q->mu);
    batch_t *b = q->head;
    if (b != NULL) {
        q->head = b->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

static batch_t *new_batch(pair_t *q)
{
    batch_t *b = malloc(sizeof *b);
    if (b == NULL) {
        fprintf(stderr, "xthread: malloc(batch) failed\n");
        exit(2);
    }
    q->prod_ops++;
    b->n = 0;
    return b;
}

static void *producer(void *arg)
{
    pair_t *q = arg;
    uint64_t s = q->seed;
    batch_t *b = new_batch(q);
    for (uint64_t i = 0; i < q->items; i++) {
        uint64_t r = rng_next(&s);
        uint32_t size = pick_size(r);
        uint64_t tag = rng_next(&s);
        unsigned char *p = malloc(size);
        if (p == NULL) {
            fprintf(stderr, "xthread: malloc(%" PRIu32 ") failed\n", size);
            exit(2);
        }
        q->prod_ops++;
        unsigned char want = fill_byte(tag);
        memset(p, want, size);
        memcpy(p, &tag, sizeof tag);
        memcpy(p + 8, &size, sizeof size);
        q->expect_sum += hash3(tag, size, (unsigned char)(want ^ want ^ want));
        if (((r >> 8) & 7u) == 0) {     /* 1 in 8: freed by its own thread */
            q->prod_sum += consume_block(p, &q->bad);
            q->prod_ops++;
            continue;
        }
        b->items[b->n++] = p;
        if (b->n == BATCH) {
            push(q, b);
            b = new_batch(q);
        }
    }
    push(q, b); /* possibly partial, possibly empty */
    pthread_mutex_lock(&q->mu);
    q->done = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void *consumer(void *arg)
{
    pair_t *q = arg;
    batch_t *b;
    while ((b = pop(q)) != NULL) {
        for (uint32_t i = 0; i < b->n; i++) {
            q->cons_sum += consume_block(b->items[i], &q->bad);
            q->cons_ops++;
        }
        free(b);
        q->cons_ops++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = 2;
    uint64_t items = DEFAULT_ITEMS;
    uint64_t seed = DEFAULT_SEED;
    if (argc > 1)
        threads = strtol(argv[1], NULL, 10);
    if (argc > 2)
        items = strtoull(argv[2], NULL, 0);
    if (argc > 3)
        seed = strtoull(argv[3], NULL, 0);
    if (threads < 2)
        threads = 2;
    if (threads > 1024)
        threads = 1024;
    long npairs = threads / 2;

    pair_t *pairs = calloc((size_t)npairs, sizeof *pairs);
    pthread_t *tids = calloc((size_t)npairs * 2, sizeof *tids);
    if (pairs == NULL || tids == NULL) {
        fprintf(stderr, "xthread: cannot allocate pair tables\n");
        return 2;
    }
    for (long i = 0; i < npairs; i++) {
        pair_t *q = &pairs[i];
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->not_empty, NULL);
        pthread_cond_init(&q->not_full, NULL);
        q->items = items;
        q->seed = (seed + (uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
        if (q->seed == 0)
            q->seed = 1;
    }
    for (long i = 0; i < npairs; i++) {
        if (pthread_create(&tids[2 * i], NULL, consumer, &pairs[i]) != 0 ||
            pthread_create(&tids[2 * i + 1], NULL, producer, &pairs[i]) != 0) {
            fprintf(stderr, "xthread: pthread_create failed\n");
            return 2;
        }
    }
    for (long i = 0; i < 2 * npairs; i++)
        pthread_join(tids[i], NULL);

    uint64_t checksum = 0, expect = 0, ops = 0;
    int bad = 0;
    for (long i = 0; i < npairs; i++) {
        pair_t *q = &pairs[i];
        checksum += q->prod_sum + q->cons_sum;
        expect += q->expect_sum;
        ops += q->prod_ops + q->cons_ops;
        bad |= q->bad;
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->not_empty);
        pthread_cond_destroy(&q->not_full);
    }
    free(pairs);
    free(tids);

    printf("xthread threads=%ld pairs=%ld items=%" PRIu64 " seed=%" PRIu64
           " ops=%" PRIu64 " checksum=0x%016" PRIx64 "\n",
           npairs * 2, npairs, items, seed, ops, checksum);
    if (bad || checksum != expect) {
        fprintf(stderr, "xthread: CHECKSUM MISMATCH: read back 0x%016" PRIx64
                ", wrote 0x%016" PRIx64 "\n", checksum, expect);
        return 3;
    }
    return 0;
}
