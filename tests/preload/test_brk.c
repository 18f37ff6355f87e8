/* test: brk              fast */
/* Run with LD_PRELOAD=libebbmalloc.so: the program break is ebbmalloc's
 * first memory source.  It grows as the heap grows, moves back down when
 * the segments at its top are free, and once the program moves the break
 * itself, ebbmalloc never moves it again — the program's own sbrk memory
 * is never trimmed or reused. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define N 20000

static void *blocks[N];

static void fill_heap(size_t size)
{
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(size);
        memset(blocks[i], i & 0xff, size);
    }
}

static void empty_heap(void)
{
    for (int i = N; i-- > 0;)
        free(blocks[i]);
}

int main(void)
{
    /* Warm up: a huge block makes the reclaimer thread wanted, and the
     * next slow path starts it, whose few long-lived blocks would pin the
     * top of the heap if they were allocated at its top later (as when
     * the heap first passes a segment's worth). */
    void *volatile warm = malloc(8 << 20); /* volatile: not elided */
    free(warm);
    warm = malloc(100000);
    free(warm);
    for (int i = 0; i < 1000; i++)
        blocks[i] = malloc(5000);
    for (int i = 0; i < 1000; i++)
        free(blocks[i]);
    malloc_trim(0);
    uintptr_t start = (uintptr_t)sbrk(0);
    fill_heap(1000); /* 20 MB of small blocks */
    uintptr_t grown = (uintptr_t)sbrk(0);
    CHECK(grown >= start + 16 * 1000 * 1000, "the break grew with the heap: %lu MiB",
          (unsigned long)((grown - start) >> 20));
    empty_heap();
    malloc_trim(0);
    uintptr_t trimmed = (uintptr_t)sbrk(0);
    CHECK(trimmed < grown - 8 * 1000 * 1000, "freed segments at the top went back: %lu MiB left",
          (unsigned long)((trimmed - start) >> 20));

    /* The program takes the break for itself, between ebbmalloc's moves. */
    fill_heap(1000);
    char *mine = sbrk(1 << 20);
    REQUIRE(mine != (void *)-1);
    memset(mine, 0x5a, 1 << 20);
    uintptr_t my_end = (uintptr_t)mine + (1 << 20);
    fill_heap(2000); /* more than before: must not come from the break now */
    empty_heap();
    malloc_trim(0);
    CHECK((uintptr_t)sbrk(0) >= my_end, "the break was not moved below the program's memory");
    int intact = 1;
    for (int i = 0; i < (1 << 20); i++)
        intact &= mine[i] == 0x5a;
    CHECK(intact, "the program's sbrk memory is intact");
    for (int i = 0; i < N; i++) {
        char *p = malloc(3000);
        if ((uintptr_t)p + 3000 > (uintptr_t)mine && (uintptr_t)p < my_end)
            intact = 0;
        blocks[i] = p;
    }
    CHECK(intact, "no block overlaps the program's sbrk memory");
    empty_heap();
    return check_summary();
}
