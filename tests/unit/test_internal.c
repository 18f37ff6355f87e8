/* test: internal         fast
 * test: test_internal    valgrind */
/* Unit tests of internal structures: the exact-division block check, the
 * segment map, the span allocator's coalescing, what a free that empties
 * a page does with it, and an idle class's first page decommitted. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "ebbmalloc.h"
#include "internal.h"

/* For every class: each block start is accepted, every other aligned
 * address in the page (and just outside it) is refused. */
static void test_block_check(void)
{
    int wrong = 0;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_t page;
        memset(&page, 0, sizeof page);
        uint32_t size = ebbi_classes[c].block_size;
        size_t span = (size_t)ebbi_classes[c].page_slices << EBB_SLICE_SHIFT;
        page.start = (uintptr_t)1 << 40;
        page.block_size = size;
        page.divisor_magic = ebbi_divisor_magic(size);
        uint32_t capacity = (uint32_t)(span / size);
        ebbi_store_relaxed(&page.carved, capacity * size);
        for (uintptr_t off = 0; off < span + 4096; off += EBB_ALIGNMENT) {
            bool expect = off % size == 0 && off / size < capacity;
            if (ebbi_page_holds_block(&page, page.start + off) != expect)
                wrong++;
        }
        if (ebbi_page_holds_block(&page, page.start - 16) || ebbi_page_holds_block(&page, page.start - size))
            wrong++;
    }
    CHECK(wrong == 0, "%d addresses judged wrongly", wrong);

    page_t zero;
    memset(&zero, 0, sizeof zero);
    CHECK(!ebbi_page_holds_block(&zero, 0x10000) && !ebbi_page_holds_block(&zero, 0),
          "an all-zero entry holds no block");
}

static void test_segment_map(void)
{
    void *p = ebb_malloc(100);
    CHECK(ebbi_segmap_get((uintptr_t)p) == SEGMAP_SEGMENT, "a block's region is marked");
    int local;
    CHECK(ebbi_segmap_get((uintptr_t)&local) == SEGMAP_NONE, "the stack is not");
    CHECK(ebbi_segmap_get((uintptr_t)1 << 62) == SEGMAP_NONE, "beyond the map is not");
    page_t *page;
    CHECK(ebbi_segment_lookup((uintptr_t)p, &page) == ebbi_segment_of(p));
    CHECK(ebbi_segment_lookup((uintptr_t)p + 16, &page) == NULL, "interior pointers are refused");
    ebb_free(p);

    void *huge = ebb_aligned_alloc(8u << 20, 5u << 20);
    CHECK(((uintptr_t)huge & ((8u << 20) - 1)) == 0);
    CHECK(ebbi_segmap_get((uintptr_t)huge) == SEGMAP_HUGE_BELOW, "a 4 MiB+ aligned block's region");
    CHECK(ebbi_segment_lookup((uintptr_t)huge, &page) != NULL && page->start == (uintptr_t)huge);
    ebb_free(huge);
    CHECK(ebbi_segmap_get((uintptr_t)huge) == SEGMAP_NONE, "unmapped, unmarked");
}

/* Fill a segment with pages of mixed sizes, free them in a scrambled
 * order: the spans must coalesce until the segment is whole again. */
static void test_span_coalescing(void)
{
    /* An arena no heap uses, so the segment holds only our pages. */
    arena_t *arena = &ebbi_arenas[EBB_MAX_ARENAS - 1];
    pthread_mutex_init(&arena->lock, NULL);
    unsigned classes[] = {0, 70, 100, 85, 3, 110, 95, 60};
    page_t *pages[64];
    int n = 0;
    segment_t *seg = NULL;
    bool zero;
    for (int round = 0; n < 64; round++) {
        page_t *pg = ebbi_arena_alloc_page(arena, classes[round % 8], &zero);
        REQUIRE(pg != NULL);
        if (seg == NULL)
            seg = ebbi_segment_of(pg);
        if (ebbi_segment_of(pg) != seg) {
            ebbi_arena_free_page(pg);
            break;
        }
        pages[n++] = pg;
    }
    CHECK(seg->free_slices < 8, "the segment was filled (%u slices left)", seg->free_slices);
    for (int step = 0; step < n; step++) {
        int i = (step * 37) % n;
        while (pages[i] == NULL)
            i = (i + 1) % n;
        ebbi_arena_free_page(pages[i]);
        pages[i] = NULL;
    }
    /* Whole again (unless the reclaimer already gave it back). */
    CHECK(ebbi_segmap_get((uintptr_t)seg) == SEGMAP_NONE ||
              (seg->free_slices == EBB_SEGMENT_DATA_SLICES && seg->slices[1].kind == SLICE_FREE &&
               seg->slices[1].slice_count == EBB_SEGMENT_DATA_SLICES),
          "the segment coalesced back into one free span");
}

/* A thread exits with a live block in a page: the page is abandoned to its
 * arena, and the next thread that needs that class adopts it. */
static void *leave_one_block(void *arg)
{
    *(void **)arg = ebb_malloc(4000);
    return NULL;
}

static void test_abandon_and_adopt(void)
{
    void *left = NULL;
    pthread_t t;
    pthread_create(&t, NULL, leave_one_block, &left);
    pthread_join(t, NULL);
    REQUIRE(left != NULL);
    page_t *page;
    segment_t *seg = ebbi_segment_lookup((uintptr_t)left, &page);
    REQUIRE(seg != NULL);
    CHECK(ebbi_load_relaxed(&page->owner) == NULL, "the exited thread's page was abandoned");
    CHECK(ebbi_load_relaxed(&seg->arena->abandoned[page->class_id]) != NULL, "it waits in its arena");
    /* This thread needs that class now: it takes the abandoned page (from
     * the arena it looks in, which we point at the page's). */
    ebb_free(ebb_malloc(1));
    heap_t *self = ebbi_thread_heap();
    REQUIRE(self != &ebbi_heap_empty);
    self->arena = seg->arena;
    void *mine[64];
    int n = 0;
    while (n < 64 && ebbi_load_relaxed(&page->owner) != self)
        mine[n++] = ebb_malloc(4000);
    CHECK(ebbi_load_relaxed(&page->owner) == self, "a thread that needs the class adopts the page");
    while (n > 0)
        ebb_free(mine[--n]);
    ebb_free(left);
}

/* Not a check per block (thousands): a failure stops the test. */
static page_t *page_of_block(void *p)
{
    page_t *page = NULL;
    if (p == NULL || ebbi_segment_lookup((uintptr_t)p, &page) == NULL)
        REQUIRE(false, "a block of one of our pages: %p", p);
    return page;
}

/* Blocks of `size` until a third page is taken: the first two are then
 * full, and not first in their class queue once a free brings them back.  A free that empties one of them
 * (the free fast path checks PAGE_ON_EMPTY when `used` reaches 0) gives
 * it back to its arena; the queue's first page stays with the heap,
 * parked if its class is parkable. */
static void check_release_on_empty(size_t size)
{
    enum { MAX = 8192 };
    static void *blocks[MAX];
    page_t *pages[3];
    int first_block[4];
    int npages = 0, n = 0;
    while (n < MAX && npages < 3) {
        void *p = ebb_malloc(size);
        page_t *page = page_of_block(p);
        if (npages == 0 || page != pages[npages - 1]) {
            pages[npages] = page;
            first_block[npages++] = n;
        }
        blocks[n++] = p;
    }
    REQUIRE(npages == 3);
    first_block[3] = n;
    heap_t *self = ebbi_thread_heap();
    for (int k = 0; k < 3; k++)
        CHECK(ebbi_load_relaxed(&pages[k]->owner) == self && pages[k]->kind == SLICE_PAGE,
              "%zu-byte blocks: page %d is the heap's", size, k);
    /* Page 1 first, so that page 0's emptying is not its class's last. */
    for (int k = 1; k >= 0; k--) {
        for (int i = first_block[k]; i < first_block[k + 1]; i++)
            ebb_free(blocks[i]);
        CHECK(pages[k]->kind != SLICE_PAGE || ebbi_load_relaxed(&pages[k]->owner) != self,
              "%zu-byte blocks: emptied page %d (not first) went back to its arena", size, k);
    }
    for (int i = first_block[2]; i < first_block[3]; i++)
        ebb_free(blocks[i]);
    CHECK(pages[2]->kind == SLICE_PAGE && ebbi_load_relaxed(&pages[2]->owner) == self,
          "%zu-byte blocks: the emptied first page stays with the heap", size);
    bool parkable = ebbi_size_class(size) >= EBB_PARK_FIRST_CLASS;
    CHECK(((pages[2]->free_flags & PAGE_PARKED) != 0) == parkable,
          "%zu-byte blocks: the emptied first page is parked iff its class is parkable", size);
}

static void test_release_on_empty(void)
{
    check_release_on_empty(48);
    check_release_on_empty(4000);
    check_release_on_empty(11000); /* pages of two slices: free() finds the head of blocks in the second */
}

/* A class up to EBB_DIRECT_MAX that the program stopped using has its
 * emptied first page decommitted, once its owner's malloc slow paths have
 * looked twice a delay apart and seen no allocation of it; the page stays
 * first, started afresh.  A class in use keeps its page's memory, though
 * the page empties again and again. */
static bool resident(const void *p)
{
    unsigned char vec = 0;
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)4095;
    return mincore((void *)page, 4096, &vec) == 0 && (vec & 1);
}

static void test_idle_class_purge(void)
{
    enum { IDLE_SIZE = 208, BUSY_SIZE = 96, BATCH = 2000 };
    void *kept[100];
    for (int i = 0; i < 100; i++) {
        kept[i] = ebb_malloc(IDLE_SIZE);
        memset(kept[i], 0x5a, IDLE_SIZE);
    }
    page_t *idle = page_of_block(kept[0]);
    void *first_block = kept[0];
    for (int i = 0; i < 100; i++)
        ebb_free(kept[i]);
    heap_t *self = ebbi_thread_heap();
    unsigned idle_class = ebbi_size_class(IDLE_SIZE), busy_class = ebbi_size_class(BUSY_SIZE);
    REQUIRE(idle_class != busy_class && ebbi_classes[idle_class].block_size <= EBB_DIRECT_MAX);
    CHECK(self->queues[idle_class].first == idle && idle->used == 0 && resident(first_block),
          "the emptied first page stays at first, resident");
    /* Batches of another class: each runs its pages dry (slow paths). */
    static void *batch[BATCH];
    uint64_t until = ebbi_os_now_ns() + 4 * ebbi_delay_ns();
    while (ebbi_os_now_ns() < until) {
        for (int i = 0; i < BATCH; i++)
            batch[i] = ebb_malloc(BUSY_SIZE);
        for (int i = 0; i < BATCH; i++)
            ebb_free(batch[i]);
    }
    CHECK(self->queues[idle_class].first == idle && ebbi_load_relaxed(&idle->owner) == self,
          "the idle class's first page stays the heap's");
    CHECK(idle->capacity == 0 && ebbi_load_relaxed(&idle->carved) == 0 && idle->free == NULL,
          "its page starts afresh (%u blocks carved)", idle->capacity);
    CHECK(!resident(first_block), "its memory went back to the kernel");
    page_t *busy = self->queues[busy_class].first;
    CHECK(busy != NULL && busy->capacity != 0 && resident((void *)busy->start), "the busy class keeps its memory");
    uint8_t *again = ebb_calloc(1, IDLE_SIZE);
    bool zero = again != NULL;
    for (int i = 0; zero && i < IDLE_SIZE; i++)
        zero = again[i] == 0;
    CHECK(again != NULL && page_of_block(again) == idle && zero, "the class allocates from its page again, zeroed");
    ebb_free(again);
}

int main(void)
{
    test_release_on_empty();
    test_idle_class_purge();
    test_abandon_and_adopt();
    test_block_check();
    test_segment_map();
    test_span_coalescing();
    return check_summary();
}
