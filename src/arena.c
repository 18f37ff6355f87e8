/* Arenas: spans of slices, and abandoned pages.
 *
 * An arena owns segments.  Their free slices form free spans, kept in bins
 * by length (1..63 slices) with a bit mask of the non-empty bins, so the
 * smallest span that fits is found in O(1).  A freed page coalesces with
 * free neighbours of its segment; a segment whose 63 data slices are all
 * free is kept as the arena's one spare segment (hysteresis: a program
 * that frees its last page and allocates again does not go to the kernel
 * and back), and any other fully free segment goes back to its source.
 *
 * Pages whose thread exited with live blocks in them wait here, by size
 * class, for another thread to adopt them.
 *
 * The arena lock is taken only on the slow paths (a thread needs a new
 * page, or returns an empty one), never across a system call.
 */
#include <string.h>

#include "internal.h"

arena_t ebbi_arenas[EBB_MAX_ARENAS];

void ebbi_arenas_init(unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        pthread_mutex_init(&ebbi_arenas[i].lock, NULL);
        ebbi_arenas[i].index = i;
    }
}

/* ---- free spans (lock held) ---------------------------------------- */

static void span_insert(arena_t *arena, page_t *head, unsigned count, bool is_zero)
{
    head->kind = SLICE_FREE;
    head->slice_count = (uint16_t)count;
    head->slice_back = 0;
    head->free_flags = 0;
    head->span_is_zero = is_zero;
    ebbi_store_relaxed(&head->carved, 0);
    head->capacity = 0;
    head->block_size = 0;
    head->start = 0;
    page_t *last = head + count - 1;
    last->kind = SLICE_FREE;
    last->slice_back = (uint8_t)(count - 1);
    head->prev = NULL;
    head->next = arena->span_bins[count];
    if (head->next != NULL)
        head->next->prev = head;
    arena->span_bins[count] = head;
    arena->span_mask |= (uint64_t)1 << count;
}

static void span_remove(arena_t *arena, page_t *head)
{
    unsigned count = head->slice_count;
    if (head->prev != NULL)
        head->prev->next = head->next;
    else
        arena->span_bins[count] = head->next;
    if (head->next != NULL)
        head->next->prev = head->prev;
    if (arena->span_bins[count] == NULL)
        arena->span_mask &= ~((uint64_t)1 << count);
    head->next = head->prev = NULL;
}

static void segment_link(arena_t *arena, segment_t *seg)
{
    seg->prev = NULL;
    seg->next = arena->segments;
    if (seg->next != NULL)
        seg->next->prev = seg;
    arena->segments = seg;
}

static void segment_unlink(arena_t *arena, segment_t *seg)
{
    if (seg->prev != NULL)
        seg->prev->next = seg->next;
    else
        arena->segments = seg->next;
    if (seg->next != NULL)
        seg->next->prev = seg->prev;
    seg->next = seg->prev = NULL;
}

/* Lock held: make a whole segment's data slices one free span. */
static void segment_add_span(arena_t *arena, segment_t *seg)
{
    segment_link(arena, seg);
    seg->free_slices = EBB_SEGMENT_DATA_SLICES;
    span_insert(arena, &seg->slices[1], EBB_SEGMENT_DATA_SLICES, seg->slices[1].span_is_zero);
}

/* Lock held: cut a page of `count` slices from the smallest span that
 * fits, or return NULL. */
static page_t *span_take(arena_t *arena, unsigned count, bool *is_zero)
{
    uint64_t fits = arena->span_mask & ~(((uint64_t)1 << count) - 1);
    if (fits == 0)
        return NULL;
    unsigned bin = (unsigned)__builtin_ctzll(fits);
    page_t *head = arena->span_bins[bin];
    span_remove(arena, head);
    *is_zero = head->span_is_zero;
    if (bin > count)
        span_insert(arena, head + count, bin - count, head->span_is_zero);
    for (unsigned i = 0; i < count; i++) {
        head[i].slice_back = (uint8_t)i;
        head[i].kind = SLICE_PAGE;
    }
    head->slice_count = (uint16_t)count;
    ebbi_segment_of(head)->free_slices -= count;
    return head;
}

page_t *ebbi_arena_alloc_page(arena_t *arena, unsigned class_id, bool *is_zero)
{
    unsigned count = ebbi_classes[class_id].page_slices;
    pthread_mutex_lock(&arena->lock);
    for (;;) {
        page_t *page = span_take(arena, count, is_zero);
        if (page != NULL) {
            pthread_mutex_unlock(&arena->lock);
            return page;
        }
        segment_t *seg = arena->empty_segment;
        if (seg != NULL) {
            arena->empty_segment = NULL;
        } else {
            /* Go to the kernel without the lock. */
            pthread_mutex_unlock(&arena->lock);
            seg = ebbi_segment_alloc(arena);
            if (seg == NULL)
                return NULL;
            pthread_mutex_lock(&arena->lock);
        }
        segment_add_span(arena, seg);
    }
}

/* Lock held: return a page's slices to the free spans, coalescing.
 * Returns the segment if it became entirely free and must be released
 * (after unlocking), else NULL. */
static segment_t *span_free_locked(arena_t *arena, page_t *page)
{
    segment_t *seg = ebbi_segment_of(page);
    unsigned count = page->slice_count;
    page_t *head = page;
    unsigned total = count;
    bool is_zero = false; /* the page was used */

    page_t *right = head + count;
    if (right < seg->slices + EBB_SLICES_PER_SEGMENT && right->kind == SLICE_FREE) {
        span_remove(arena, right);
        total += right->slice_count;
    }
    page_t *left = head - 1; /* slices[0] is never SLICE_FREE */
    if (left->kind == SLICE_FREE) {
        page_t *left_head = left - left->slice_back;
        span_remove(arena, left_head);
        total += left_head->slice_count;
        head = left_head;
    }
    seg->free_slices += count;
    if (seg->free_slices < EBB_SEGMENT_DATA_SLICES) {
        span_insert(arena, head, total, is_zero);
        return NULL;
    }
    /* The whole segment is free. */
    segment_unlink(arena, seg);
    head->span_is_zero = is_zero;
    head->kind = SLICE_FREE;
    if (arena->empty_segment == NULL) {
        arena->empty_segment = seg;
        return NULL;
    }
    return seg;
}

static void page_reset(page_t *page)
{
    ebbi_store_relaxed(&page->carved, 0);
    page->capacity = 0;
    page->block_size = 0;
    page->start = 0;
    page->divisor_magic = 0;
    page->free = NULL;
    page->local_free = NULL;
    page->used = 0;
    page->free_flags = 0;
    page->counts = NULL;
    ebbi_store_relaxed(&page->thread_free, 0);
    ebbi_store_relaxed(&page->owner, NULL);
}

void ebbi_arena_free_page(page_t *page)
{
    arena_t *arena = ebbi_segment_of(page)->arena;
    page_reset(page);
    pthread_mutex_lock(&arena->lock);
    segment_t *release = span_free_locked(arena, page);
    pthread_mutex_unlock(&arena->lock);
    if (release != NULL)
        ebbi_segment_free(release);
}

/* ---- abandoned pages ---------------------------------------------------- */

void ebbi_arena_abandon_page(page_t *page)
{
    arena_t *arena = ebbi_segment_of(page)->arena;
    pthread_mutex_lock(&arena->lock);
    page->prev = NULL;
    page->next = ebbi_load_relaxed(&arena->abandoned[page->class_id]);
    ebbi_store_relaxed(&arena->abandoned[page->class_id], page);
    pthread_mutex_unlock(&arena->lock);
}

page_t *ebbi_arena_take_abandoned(arena_t *arena, unsigned class_id)
{
    /* Peek first: most calls find nothing and need no lock. */
    if (ebbi_load_relaxed(&arena->abandoned[class_id]) == NULL)
        return NULL;
    pthread_mutex_lock(&arena->lock);
    page_t *page = ebbi_load_relaxed(&arena->abandoned[class_id]);
    if (page != NULL) {
        ebbi_store_relaxed(&arena->abandoned[class_id], page->next);
        page->next = NULL;
    }
    pthread_mutex_unlock(&arena->lock);
    return page;
}

/* Give back what the arena holds that nobody uses: abandoned pages whose
 * blocks have all been freed since, and the spare segment.  Returns the
 * bytes given back to the kernel. */
size_t ebbi_arena_trim(arena_t *arena)
{
    segment_t *release = NULL;
    size_t released = 0;
    pthread_mutex_lock(&arena->lock);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_t *keep = NULL;
        page_t *page = ebbi_load_relaxed(&arena->abandoned[c]);
        while (page != NULL) {
            page_t *next = page->next;
            /* Abandoned pages belong to the arena lock: collecting the
             * blocks other threads freed into them is safe here. */
            ebbi_page_collect(page);
            if (page->used != 0) {
                page->next = keep;
                keep = page;
            } else {
                page_reset(page);
                segment_t *seg = span_free_locked(arena, page);
                if (seg != NULL) {
                    seg->next = release;
                    release = seg;
                }
            }
            page = next;
        }
        ebbi_store_relaxed(&arena->abandoned[c], keep);
    }
    if (arena->empty_segment != NULL) {
        arena->empty_segment->next = release;
        release = arena->empty_segment;
        arena->empty_segment = NULL;
    }
    pthread_mutex_unlock(&arena->lock);
    while (release != NULL) {
        segment_t *next = release->next;
        ebbi_segment_free(release);
        released += EBB_SEGMENT_SIZE;
        release = next;
    }
    return released;
}

void ebbi_arenas_usage(ebbi_arena_usage_t *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < ebbi_process.arena_count; i++) {
        arena_t *arena = &ebbi_arenas[i];
        pthread_mutex_lock(&arena->lock);
        for (segment_t *seg = arena->segments; seg != NULL; seg = seg->next) {
            out->segments++;
            out->free_span_bytes += (uint64_t)seg->free_slices << EBB_SLICE_SHIFT;
        }
        if (arena->empty_segment != NULL) {
            out->segments++;
            out->empty_segment_bytes += EBB_SEGMENT_SIZE;
        }
        pthread_mutex_unlock(&arena->lock);
    }
    out->segment_bytes = out->segments * EBB_SEGMENT_SIZE;
}

void ebbi_arenas_fork_prepare(void)
{
    for (unsigned i = 0; i < ebbi_process.arena_count; i++)
        pthread_mutex_lock(&ebbi_arenas[i].lock);
}

void ebbi_arenas_fork_parent(void)
{
    for (unsigned i = ebbi_process.arena_count; i-- > 0;)
        pthread_mutex_unlock(&ebbi_arenas[i].lock);
}

void ebbi_arenas_fork_child(void)
{
    for (unsigned i = 0; i < ebbi_process.arena_count; i++)
        pthread_mutex_init(&ebbi_arenas[i].lock, NULL);
}
