/*
 * falseshare.c — false sharing, after the classic "cache-scratch" and
 * "cache-thrash" benchmarks: threads allocate small objects and write them
 * over and over.  If the allocator hands two threads blocks in the same
 * 64-byte cache line, every write of one thread invalidates the other's
 * copy of the line and both slow down many times over.
 *
 *   usage: falseshare [THREADS [OBJECTS [WRITES [SEED]]]]
 *
 * Two phases, THREADS threads each, OBJECTS objects per thread, WRITES
 * writes per object:
 *
 *   scratch (passive false sharing): the main thread allocates THREADS
 *     8-byte objects one after the other (an allocator puts them side by
 *     side) and hands one to each thread.  A thread frees the object it was
 *     given, then OBJECTS times allocates an 8-byte object, writes it WRITES
 *     times, reads it back and frees it.  An allocator that gives the thread
 *     back the block it just freed (which shares a line with the other
 *     threads' blocks) makes every thread write into one cache line.
 *   thrash (active false sharing): all threads at once, OBJECTS times each,
 *     allocate an 8-byte object, write it WRITES times, read it back, free
 *     it.  An allocator that serves threads from a shared pool interleaves
 *     their objects in the same lines.
 *
 * A write is a read-modify-write of one of the object's 8 bytes through a
 * volatile pointer (the compiler can neither merge nor drop it).  What is
 * read back before each free is folded into a per-thread sum; the sums only
 * depend on the arguments.
 *
 * Output: falseshare threads=T objects=N writes=W seed=S ops=N checksum=0x...
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "bench.h"

#define OBJ_SIZE 8u

typedef struct {
    pthread_t tid;
    uint32_t id;
    unsigned char *given;     /* scratch: the object from the main thread */
    uint64_t sum, ops;
    char pad[64];
} worker_t;

static uint64_t objects, writes, seed;
static pthread_barrier_t start_barrier;

/* Allocate an object, write it `writes` times, read it back, free it. */
static uint64_t hammer(worker_t *w, uint64_t obj)
{
    volatile unsigned char *p = xmalloc(OBJ_SIZE);
    w->ops++;
    uint64_t init = rng_seed(seed, (uint64_t)w->id << 32 | obj);
    for (unsigned i = 0; i < OBJ_SIZE; i++)
        p[i] = (unsigned char)(init >> (8 * i));
    for (uint64_t k = 0; k < writes; k++)
        p[k & (OBJ_SIZE - 1)] += (unsigned char)(k | 1);
    uint64_t v = 0;
    for (unsigned i = 0; i < OBJ_SIZE; i++)
        v |= (uint64_t)p[i] << (8 * i);
    free((void *)p);
    w->ops++;
    return hash64(v ^ obj);
}

static void *scratch(void *arg)
{
    worker_t *w = arg;
    pthread_barrier_wait(&start_barrier);
    free(w->given); /* a remote free: the main thread allocated it */
    w->ops++;
    for (uint64_t i = 0; i < objects; i++)
        w->sum += hammer(w, i);
    return NULL;
}

static void *thrash(void *arg)
{
    worker_t *w = arg;
    pthread_barrier_wait(&start_barrier);
    for (uint64_t i = 0; i < objects; i++)
        w->sum += hammer(w, objects + i);
    return NULL;
}

static void run_phase(worker_t *w, uint32_t n, void *(*fn)(void *))
{
    if (pthread_barrier_init(&start_barrier, NULL, n) != 0)
        die("falseshare: pthread_barrier_init failed");
    for (uint32_t t = 0; t < n; t++)
        if (pthread_create(&w[t].tid, NULL, fn, &w[t]) != 0)
            die("falseshare: pthread_create failed");
    for (uint32_t t = 0; t < n; t++)
        pthread_join(w[t].tid, NULL);
    pthread_barrier_destroy(&start_barrier);
}

int main(int argc, char **argv)
{
    uint64_t threads = arg_u64(argc, argv, 1, 2);
    objects = arg_u64(argc, argv, 2, 10000);
    writes = arg_u64(argc, argv, 3, 10000);
    seed = arg_u64(argc, argv, 4, 42);
    if (threads < 1 || threads > 1024)
        die("falseshare: THREADS must be 1..1024");
    uint32_t n = (uint32_t)threads;

    worker_t *w = xcalloc(n, sizeof *w);
    for (uint32_t t = 0; t < n; t++) {
        w[t].id = t;
        w[t].given = xmalloc(OBJ_SIZE); /* side by side, most likely */
        memset(w[t].given, 0, OBJ_SIZE);
    }
    uint64_t ops = n;
    run_phase(w, n, scratch);
    run_phase(w, n, thrash);

    uint64_t checksum = 0;
    for (uint32_t t = 0; t < n; t++) {
        checksum += w[t].sum * (2 * (uint64_t)t + 1);
        ops += w[t].ops;
    }
    free(w);
    printf("falseshare threads=%u objects=%" PRIu64 " writes=%" PRIu64 " seed=%" PRIu64
           " ops=%" PRIu64 " checksum=0x%016" PRIx64 "\n",
           n, objects, writes, seed, ops, checksum);
    return 0;
}
