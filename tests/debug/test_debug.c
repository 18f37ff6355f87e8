/* test: debug            fast */
/* The debug build's validators (EBB_DEBUG): they pass on a heap that a
 * real workload left, local and cross-thread frees included, and each
 * catches a structure broken on purpose, in a child process, with the
 * report "ebbmalloc: error: internal check failed: ...". */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"
#include "internal.h"

#if !EBB_DEBUG
#error "test_debug is built with EBB_DEBUG=1"
#endif

enum { SLOTS = 20000 };
static void *slots[SLOTS];

static void *free_half(void *arg)
{
    (void)arg;
    for (int i = 0; i < SLOTS; i += 2)
        ebb_free(slots[i]);
    return NULL;
}

/* Blocks of many sizes, half of them freed by another thread. */
static void workload(void)
{
    for (int i = 0; i < SLOTS; i++)
        slots[i] = ebb_malloc((size_t)(16 + (i * 37) % 3000));
    pthread_t t;
    pthread_create(&t, NULL, free_half, NULL);
    pthread_join(t, NULL);
    for (int i = 1; i < SLOTS; i += 4)
        ebb_free(slots[i]);
}

static page_t *page_of(void *p)
{
    return ebbi_page_of(ebbi_segment_of(p), (uintptr_t)p);
}

static void validate_all(void)
{
    ebbi_heap_validate(ebbi_thread_heap());
    arena_t *arena = ebbi_thread_heap()->arena;
    pthread_mutex_lock(&arena->lock);
    ebbi_arena_validate(arena);
    pthread_mutex_unlock(&arena->lock);
}

/* Runs `breakage` (if any) in a child, then the validators; returns the
 * child's wait status, its report in `out`. */
static int validate_in_child(void (*breakage)(void), char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        if (breakage != NULL)
            breakage();
        validate_all();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status = -1;
    waitpid(pid, &status, 0);
    return status;
}

/* The validators pass on the structures as they are. */
static void expect_sound(const char *when)
{
    char out[1024];
    int status = validate_in_child(NULL, out, sizeof out);
    CHECK(status == 0, "%s: the validators pass (status %#x): %s", when, status, out);
}

/* The child must end on SIGABRT with the internal-check report naming
 * `expect`. */
static void expect_caught(const char *what, void (*breakage)(void), const char *expect)
{
    char out[1024];
    int status = validate_in_child(breakage, out, sizeof out);
    CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
          "%s: the validator aborts (status %#x)", what, status);
    CHECK(strstr(out, "ebbmalloc: error: internal check failed: ") != NULL && strstr(out, expect) != NULL,
          "%s: reported as a failed check of '%s': %s", what, expect, out);
}

static void *live_block(void)
{
    return slots[3]; /* 3 mod 4: never freed */
}

static void break_used(void)
{
    page_of(live_block())->used++;
}

static void break_free_list(void)
{
    /* A freed block of the page whose link points at itself: a cycle. */
    page_t *page = page_of(slots[5]);
    ebbi_page_collect(page);
    block_t *b = page->free;
    if (b == NULL) {
        void *p = ebb_malloc(page->block_size);
        ebb_free(p);
        b = page->local_free;
    }
    ebbi_block_set_next(b, b);
}

static void break_stray_link(void)
{
    page_t *page = page_of(slots[5]);
    ebbi_page_collect(page);
    block_t *b = page->free != NULL ? page->free : page->local_free;
    if (b == NULL) {
        void *p = ebb_malloc(page->block_size);
        ebb_free(p);
        b = page->local_free;
    }
    /* Points into the middle of a block. */
    ebbi_block_set_next(b, (block_t *)((uintptr_t)live_block() + 8));
}

static void break_queue_links(void)
{
    page_t *page = page_of(live_block());
    page->prev = page;
}

static void break_span_mask(void)
{
    arena_t *arena = ebbi_thread_heap()->arena;
    pthread_mutex_lock(&arena->lock);
    for (unsigned n = 1; n < EBB_SLICES_PER_SEGMENT; n++) {
        if (arena->span_bins[n] == NULL) {
            arena->span_mask |= (uint64_t)1 << n;
            break;
        }
    }
    pthread_mutex_unlock(&arena->lock);
}

static void break_free_slices(void)
{
    segment_t *seg = ebbi_segment_of(live_block());
    arena_t *arena = seg->arena;
    pthread_mutex_lock(&arena->lock);
    seg->free_slices++;
    pthread_mutex_unlock(&arena->lock);
}

static void break_direct(void)
{
    ebbi_thread_heap()->direct[2] = &ebbi_page_empty == ebbi_thread_heap()->direct[2] ? page_of(live_block())
                                                                              : &ebbi_page_empty;
}

/* Blocks of this thread's pages that sit in holes of sparse pages. */
static unsigned long heap_holed(void)
{
    unsigned long holed = 0;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        for (page_t *p = ebbi_thread_heap()->queues[c].first; p != NULL; p = p->next)
            holed += p->holed;
    return holed;
}

int main(void)
{
    workload();
    expect_sound("the heap and arena a workload left");

    expect_caught("a page's used count off by one", break_used,
                  "on_free + on_local + page->used + page->holed == page->capacity");
    expect_caught("a cycle in a free list", break_free_list, "n <= page->capacity");
    expect_caught("a link into the middle of a block", break_stray_link, "ebbi_page_holds_block");
    expect_caught("a queue link that does not agree", break_queue_links, "prev");
    expect_caught("a span bin marked non-empty", break_span_mask, "span_mask");
    expect_caught("a segment's free slices miscounted", break_free_slices, "free_slices == seg->free_slices");
    expect_caught("a direct slot off its queue", break_direct, "direct");

    /* Sparse pages: malloc_trim decommits the free kernel pages of pages
     * that keep live blocks (holes); the validators count the holed
     * blocks, and they come back as the pages are used again. */
    for (int i = 3; i < SLOTS; i += 4)
        if (i % 64 != 3)
            ebb_free(slots[i]);
    ebb_malloc_trim(0);
    expect_sound("sparse pages after malloc_trim");
    unsigned long holed = heap_holed();
    CHECK(holed > 0, "malloc_trim made holes in sparse pages: %lu blocks holed", holed);
    for (int i = 3; i < SLOTS; i += 4)
        if (i % 64 != 3)
            slots[i] = ebb_malloc((size_t)(16 + (i * 37) % 3000));
    expect_sound("once the holes are taken again");
    unsigned long holed_after = heap_holed();
    CHECK(holed_after < holed, "the pages took their holed blocks back: %lu holed, %lu before", holed_after, holed);
    for (int i = 3; i < SLOTS; i += 4)
        ebb_free(slots[i]);
    ebb_malloc_trim(0);
    expect_sound("after everything is freed and trimmed");
    return check_summary();
}
