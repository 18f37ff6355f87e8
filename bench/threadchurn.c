/*
 * threadchurn.c — threads created and destroyed all the time, each
 * allocating, as in a server that starts a thread per connection or a
 * program that uses short-lived worker threads.
 *
 *   usage: threadchurn [THREADS [TOTAL [BLOCKS [SEED]]]]
 *
 * TOTAL threads are created in all, at most THREADS alive at once (thread
 * i is created as soon as thread i - THREADS has been joined).  Thread i,
 * on its own PRNG stream:
 *   1. takes the list of blocks waiting in mailbox i mod THREADS (left
 *      there by an earlier thread, which may be running still or gone)
 *      and frees them;
 *   2. allocates BLOCKS blocks of 16 bytes..2 KiB (log-uniform) and fills
 *      them, keeping them in an array it also allocates;
 *   3. frees a random half of them itself;
 *   4. links the other half into a list and swaps it into mailbox
 *      (i + 1) mod THREADS, for a later thread to free; if a list was
 *      waiting there, it frees that one itself.
 * So every thread allocates and frees on a fresh thread heap, about half of
 * the blocks are freed by another thread, and many by a thread that started
 * after their allocating thread had exited.  At the end the main thread
 * frees what is left in the mailboxes.
 *
 * Each block holds a header (next pointer, tag, size) and is filled with a
 * byte derived from the tag; whoever frees it checks the header and three
 * bytes and adds a hash of them to its sum.  Every block is made by a
 * deterministic stream and freed once, so the total does not depend on
 * timing; it is checked against the hashes computed when the blocks were
 * made.
 *
 * Output: threadchurn threads=T total=N blocks=B seed=S ops=N checksum=0x...
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"

typedef struct block {
    struct block *next;
    uint64_t tag;
    uint32_t size;
    uint32_t pad;
} block_t;

typedef struct {
    pthread_t tid;
    uint64_t index;
    uint64_t sum, expect, ops;
} job_t;

static _Atomic(block_t *) *mailbox;
static uint64_t nthreads, blocks, seed;
static _Atomic int bad;

static inline unsigned char fill_of(uint64_t tag)
{
    return (unsigned char)(tag ^ (tag >> 29) ^ (tag >> 53));
}

static inline uint64_t block_hash(uint64_t tag, uint32_t size, unsigned char b)
{
    return hash64(tag ^ ((uint64_t)size << 40) ^ ((uint64_t)b << 32));
}

static void free_list(job_t *j, block_t *b)
{
    while (b != NULL) {
        block_t *next = b->next;
        const unsigned char *p = (const unsigned char *)b;
        uint32_t size = b->size, off = (uint32_t)sizeof *b;
        unsigned char want = fill_of(b->tag);
        if (size <= off || size > 2047) {
            if (bad++ < 10)
                fprintf(stderr, "threadchurn: CORRUPTION: block %p size %u\n", (void *)b, size);
            return; /* leak the rest of the list */
        }
        unsigned char first = p[off], mid = p[off + (size - off) / 2], last = p[size - 1];
        if (first != want || mid != want || last != want) {
            if (bad++ < 10)
                fprintf(stderr, "threadchurn: CORRUPTION: block %p size %u payload %02x %02x %02x,"
                        " want %02x\n", (void *)b, size, first, mid, last, want);
        }
        j->sum += block_hash(b->tag, size, (unsigned char)(first & mid & last));
        free(b);
        j->ops++;
        b = next;
    }
}

static void *run(void *arg)
{
    job_t *j = arg;
    uint64_t rs = rng_seed(seed, j->index);

    free_list(j, atomic_exchange(&mailbox[j->index % nthreads], NULL));

    block_t **mine = xmalloc(blocks * sizeof *mine);
    j->ops++;
    for (uint64_t i = 0; i < blocks; i++) {
        uint64_t r = rng_next(&rs);
        unsigned lg = 5 + (unsigned)(r % 6);            /* 32 .. 2047 bytes */
        uint32_t size = (1u << lg) + (uint32_t)((r >> 8) & ((1u << lg) - 1));
        block_t *b = xmalloc(size);
        j->ops++;
        b->next = NULL;
        b->tag = rng_next(&rs);
        b->size = size;
        unsigned char f = fill_of(b->tag);
        memset((char *)b + sizeof *b, f, size - sizeof *b);
        j->expect += block_hash(b->tag, size, f);
        mine[i] = b;
    }
    /* shuffle, free the first half here, send the second half on */
    for (uint64_t i = blocks; i > 1; i--) {
        uint64_t k = rng_below(&rs, i);
        block_t *t = mine[i - 1];
        mine[i - 1] = mine[k];
        mine[k] = t;
    }
    for (uint64_t i = 0; i < blocks / 2; i++) {
        mine[i]->next = NULL;
        free_list(j, mine[i]);
    }
    block_t *list = NULL;
    for (uint64_t i = blocks / 2; i < blocks; i++) {
        mine[i]->next = list;
        list = mine[i];
    }
    free(mine);
    j->ops++;
    free_list(j, atomic_exchange(&mailbox[(j->index + 1) % nthreads], list));
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = arg_u64(argc, argv, 1, 2);
    uint64_t total = arg_u64(argc, argv, 2, 10000);
    blocks = arg_u64(argc, argv, 3, 1000);
    seed = arg_u64(argc, argv, 4, 42);
    if (nthreads < 1 || nthreads > 1024 || blocks < 2)
        die("threadchurn: THREADS must be 1..1024 and BLOCKS at least 2");

    mailbox = xcalloc(nthreads, sizeof *mailbox);
    job_t *jobs = xcalloc(nthreads, sizeof *jobs); /* one per running slot */
    uint64_t sum = 0, expect = 0, ops = 0;
    for (uint64_t i = 0; i < total + nthreads; i++) {
        job_t *j = &jobs[i % nthreads];
        if (i >= nthreads) { /* join the thread that used this slot */
            pthread_join(j->tid, NULL);
            sum += j->sum;
            expect += j->expect;
            ops += j->ops;
        }
        if (i >= total)
            continue;
        memset(j, 0, sizeof *j);
        j->index = i;
        if (pthread_create(&j->tid, NULL, run, j) != 0)
            die("threadchurn: pthread_create failed (thread %" PRIu64 ")", i);
    }
    job_t last = {0};
    for (uint64_t m = 0; m < nthreads; m++)
        free_list(&last, atomic_exchange(&mailbox[m], NULL));
    sum += last.sum;
    ops += last.ops;
    free(mailbox);
    free(jobs);

    printf("threadchurn threads=%" PRIu64 " total=%" PRIu64 " blocks=%" PRIu64 " seed=%" PRIu64
           " ops=%" PRIu64 " checksum=0x%016" PRIx64 "\n",
           nthreads, total, blocks, seed, ops, sum);
    if (bad || sum != expect)
        die("threadchurn: CHECKSUM MISMATCH: read back 0x%016" PRIx64 ", wrote 0x%016" PRIx64,
            sum, expect);
    return 0;
}
