// test: fuzz-replay      -- tests/fuzz/regressions/*
/* Differential fuzzer of the allocator (libFuzzer).
 *
 * An input is decoded into sequences of malloc, calloc, realloc, free,
 * memalign and malloc_usable_size calls (the ebb_ API) over 1 to 4
 * threads that share a table of slots, so blocks are freed by other
 * threads too.  Every block is filled with a pattern derived from its id
 * and checked before free and realloc; alignment, usable size and
 * non-overlap (a shadow interval map) are checked at every allocation;
 * at the end the statistics must match the live blocks exactly (in use =
 * the sum of their block sizes), and go back to where they were.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer; the inputs in
 * tests/fuzz/regressions/ are replayed by `make test`. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebbmalloc.h"

#define SLOTS 64
#define MAX_OPS 512

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t id;
} slot_t;

static slot_t slots[SLOTS];
static pthread_mutex_t slot_lock[SLOTS];
static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_id;
static uint64_t ops_run, inputs_run, threads_run;

/* The shadow map: live blocks' [start, start + usable). */
typedef struct {
    uintptr_t start, end;
} interval_t;
static interval_t shadow[SLOTS];
static int shadow_count;

static void fail(const char *what, const void *p)
{
    fprintf(stderr, "fuzz_alloc: %s (%p)\n", what, p);
    abort();
}

/* The pattern loops are not worth coverage feedback: instrumenting them
 * made every run twenty times slower. */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

static inline __attribute__((always_inline)) unsigned char fill_byte(uint64_t id, size_t i)
{
    return (unsigned char)(id * 131 + i * 7 + 1);
}

/* Every byte of small blocks; of big ones, every 61st and the last 64. */
static inline __attribute__((always_inline)) size_t next_index(size_t i, size_t size)
{
    return size <= 65536 || i + 64 >= size ? i + 1 : (i + 61 < size - 64 ? i + 61 : size - 64);
}

static NO_COVERAGE void fill(unsigned char *p, size_t size, uint64_t id, size_t from)
{
    for (size_t i = from; i < size; i = next_index(i, size))
        p[i] = fill_byte(id, i);
}

static NO_COVERAGE void check(const slot_t *s)
{
    for (size_t i = 0; i < s->size; i = next_index(i, s->size))
        if (s->p[i] != fill_byte(s->id, i))
            fail("block contents changed", s->p);
}

static NO_COVERAGE int all_zero(const unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i = next_index(i, size))
        if (p[i] != 0)
            return 0;
    return 1;
}

static NO_COVERAGE int prefix_kept(const unsigned char *q, size_t keep, size_t old, uint64_t id)
{
    /* Only the bytes the old size's sampling wrote. */
    for (size_t i = 0; i < keep; i = next_index(i, old))
        if (q[i] != fill_byte(id, i))
            return 0;
    return 1;
}

static void shadow_add(const unsigned char *p, size_t usable)
{
    pthread_mutex_lock(&shadow_lock);
    uintptr_t a = (uintptr_t)p, b = a + usable;
    for (int i = 0; i < shadow_count; i++)
        if (a < shadow[i].end && shadow[i].start < b)
            fail("two live blocks overlap", p);
    shadow[shadow_count++] = (interval_t){a, b};
    pthread_mutex_unlock(&shadow_lock);
}

static void shadow_remove(const unsigned char *p)
{
    pthread_mutex_lock(&shadow_lock);
    for (int i = 0; i < shadow_count; i++)
        if (shadow[i].start == (uintptr_t)p) {
            shadow[i] = shadow[--shadow_count];
            break;
        }
    pthread_mutex_unlock(&shadow_lock);
}

static uint64_t new_id(void)
{
    return __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
}

static size_t decode_size(const uint8_t *b)
{
    /* Mostly small; now and then up to 4 MiB. */
    unsigned v = b[0] | (unsigned)b[1] << 8;
    switch (b[0] & 3) {
    case 0:
        return v % 64;
    case 1:
        return v % 2048;
    case 2:
        return v % 70000;
    default: /* up to 256 KiB, and one in 32 up to 4 MiB (huge blocks) */
        return (b[1] & 0xf8) == 0 ? (size_t)v * 64 : (size_t)(v % 4096) * 64;
    }
}

static void accept_block(slot_t *s, unsigned char *p, size_t size, size_t align)
{
    if (p == NULL)
        fail("allocation failed", NULL);
    if (((uintptr_t)p & (align - 1)) != 0 || ((uintptr_t)p & 15) != 0)
        fail("misaligned block", p);
    size_t usable = ebb_malloc_usable_size(p);
    if (usable < size)
        fail("usable size below the request", p);
    shadow_add(p, usable);
    s->p = p;
    s->size = size;
}

static void release(slot_t *s)
{
    if (s->p == NULL)
        return;
    check(s);
    shadow_remove(s->p);
    ebb_free(s->p);
    s->p = NULL;
}

typedef struct {
    const uint8_t *ops;
    size_t count;
} stream_t;

static void *run_stream(void *arg)
{
    stream_t *st = arg;
    for (size_t k = 0; k + 4 <= st->count; k += 4) {
        const uint8_t *op = st->ops + k;
        slot_t *s = &slots[op[1] % SLOTS];
        pthread_mutex_t *lock = &slot_lock[op[1] % SLOTS];
        size_t size = decode_size(op + 2);
        pthread_mutex_lock(lock);
        __atomic_add_fetch(&ops_run, 1, __ATOMIC_RELAXED);
        switch (op[0] % 6) {
        case 0: /* malloc */
            release(s);
            s->id = new_id();
            accept_block(s, ebb_malloc(size), size, 16);
            fill(s->p, size, s->id, 0);
            break;
        case 1: { /* calloc */
            release(s);
            s->id = new_id();
            size_t n = 1 + op[3] % 8;
            unsigned char *p = ebb_calloc(n, size / n);
            accept_block(s, p, size / n * n, 16);
            if (!all_zero(p, s->size))
                fail("calloc memory not zero", p);
            fill(s->p, s->size, s->id, 0);
            break;
        }
        case 2: /* realloc */
            if (s->p == NULL)
                break;
            check(s);
            shadow_remove(s->p);
            {
                size_t old = s->size, keep = old < size ? old : size;
                unsigned char *q = ebb_realloc(s->p, size);
                if (size == 0) { /* freed, as glibc does */
                    s->p = NULL;
                    break;
                }
                uint64_t id = s->id;
                s->p = NULL;
                accept_block(s, q, size, 16);
                s->id = id;
                if (!prefix_kept(q, keep, old, id))
                    fail("realloc lost contents", q);
                fill(q, size, id, 0); /* the old size's sampling differs */
            }
            break;
        case 3: /* free */
            release(s);
            break;
        case 4: { /* memalign */
            release(s);
            size_t align = (size_t)1 << (4 + op[3] % 14);
            s->id = new_id();
            accept_block(s, ebb_memalign(align, size), size, align);
            fill(s->p, size, s->id, 0);
            break;
        }
        default: /* malloc_usable_size; now and then malloc_trim (sparse pages) */
            if (s->p != NULL && ebb_malloc_usable_size(s->p) < s->size)
                fail("usable size shrank", s->p);
            if (op[3] % 16 == 0)
                ebb_malloc_trim(0);
            break;
        }
        pthread_mutex_unlock(lock);
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a run did: inputs, threads, operations (docs/TESTING.md). */
static void print_totals(void)
{
    fprintf(stderr, "fuzz_alloc: %llu inputs, %llu threads, %llu operations, every block intact\n",
            (unsigned long long)inputs_run, (unsigned long long)threads_run,
            (unsigned long long)ops_run);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        for (int i = 0; i < SLOTS; i++)
            pthread_mutex_init(&slot_lock[i], NULL);
        atexit(print_totals);
        ready = 1;
    }
    if (size < 1)
        return 0;
    struct ebb_stats before, during, after;
    ebb_stats_get(&before);
    unsigned threads = 1 + data[0] % 4;
    inputs_run++;
    threads_run += threads;
    data++;
    size--;
    if (size > (size_t)MAX_OPS * 4 * threads)
        size = (size_t)MAX_OPS * 4 * threads;
    stream_t streams[4];
    size_t per = size / threads / 4 * 4;
    for (unsigned t = 0; t < threads; t++)
        streams[t] = (stream_t){data + t * per, per};
    if (threads == 1) {
        run_stream(&streams[0]);
    } else {
        pthread_t tid[4];
        for (unsigned t = 0; t < threads; t++)
            pthread_create(&tid[t], NULL, run_stream, &streams[t]);
        for (unsigned t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    /* Quiet now: the books must match the live blocks exactly. */
    ebb_stats_get(&during);
    uint64_t live = 0;
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p != NULL)
            live += ebb_malloc_usable_size(slots[i].p);
    if (during.in_use - before.in_use != live)
        fail("in use differs from the sum of the live blocks", NULL);
    for (int i = 0; i < SLOTS; i++)
        release(&slots[i]);
    ebb_stats_get(&after);
    if (after.in_use != before.in_use || after.malloc_calls - before.malloc_calls != after.free_calls - before.free_calls)
        fail("the statistics do not balance", NULL);
    return 0;
}
