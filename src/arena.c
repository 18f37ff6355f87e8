/* Arenas: spans of slices, their reclamation, and abandoned pages.
 *
 * An arena owns segments.  Their free slices form free spans, kept in bins
 * by length (1..63 slices) with a bit mask of the non-empty bins, so the
 * smallest span that fits is found in O(1).  A freed page coalesces with
 * the free spans beside it.
 *
 * Reclamation: each segment knows, per slice, how much of it may be
 * resident (`touched`: the prefix, in 4 KiB units, that blocks were carved
 * from since the slice was last decommitted).  A free span with touched
 * memory is dirty — freed, not reclaimed — and waits on the arena's dirty
 * list, oldest first, with the time it was freed.  ebbi_arena_purge gives
 * back the spans that have waited long enough (reclaim.c decides what
 * "long enough" is): a segment that is entirely free goes back to its
 * source (munmap, or the break moved down), other spans are decommitted
 * (madvise), the touched runs only, adjacent ones in one call.  Memory
 * reused before its time is never given back: the steady state pays
 * nothing.
 *
 * Pages whose thread exited with live blocks in them wait here, by size
 * class, for another thread to adopt them.
 *
 * The arena lock is taken only on the slow paths, never across a system
 * call: spans being decommitted are taken out of the bins and marked
 * SLICE_PURGING so that no neighbour coalesces with them meanwhile.
 */
#include <string.h>

#include "internal.h"

arena_t ebbi_arenas[EBB_MAX_ARENAS];

/* Touched bytes of segments on their way back to the kernel. */
static _Atomic(uint64_t) releasing_bytes;

void ebbi_arenas_init(unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        pthread_mutex_init(&ebbi_arenas[i].lock, NULL);
}

/* ---- touched memory --------------------------------------------------- */

/* What of a slice may be resident: its touched prefix, less the holes of
 * a sparse page (page.c), which are decommitted. */
static size_t slice_resident(const segment_t *seg, unsigned i)
{
    size_t touched = (size_t)(ebbi_load_relaxed(&seg->touched[i]) & TOUCH_UNITS) * EBB_TOUCH_UNIT;
    size_t holes = (size_t)__builtin_popcount(ebbi_load_relaxed(&seg->holes[i])) * ebbi_process.page_size;
    return touched > holes ? touched - holes : 0;
}

static size_t touched_bytes(const segment_t *seg, unsigned first, unsigned count)
{
    size_t bytes = 0;
    for (unsigned i = first; i < first + count; i++)
        bytes += slice_resident(seg, i);
    return bytes;
}

static bool slices_zero(const segment_t *seg, unsigned first, unsigned count)
{
    for (unsigned i = first; i < first + count; i++)
        if (ebbi_load_relaxed(&seg->touched[i]) != 0)
            return false;
    return true;
}

static unsigned slice_index(const page_t *slice)
{
    return (unsigned)(slice - ebbi_segment_of(slice)->slices);
}

/* ---- the dirty list (lock held) ----------------------------------------- */

static void dirty_append(arena_t *arena, page_t *head)
{
    head->dirty_next = NULL;
    head->dirty_prev = arena->dirty_last;
    if (arena->dirty_last != NULL)
        arena->dirty_last->dirty_next = head;
    else
        arena->dirty_first = head;
    arena->dirty_last = head;
}

static void dirty_unlink(arena_t *arena, page_t *head)
{
    if (head->dirty_prev != NULL)
        head->dirty_prev->dirty_next = head->dirty_next;
    else
        arena->dirty_first = head->dirty_next;
    if (head->dirty_next != NULL)
        head->dirty_next->dirty_prev = head->dirty_prev;
    else
        arena->dirty_last = head->dirty_prev;
    head->dirty_next = head->dirty_prev = NULL;
}

/* Insert `head` before `next` (a split remainder keeps its age's place). */
static void dirty_insert_before(arena_t *arena, page_t *next, page_t *head)
{
    head->dirty_next = next;
    head->dirty_prev = next->dirty_prev;
    if (head->dirty_prev != NULL)
        head->dirty_prev->dirty_next = head;
    else
        arena->dirty_first = head;
    next->dirty_prev = head;
}

static void dirty_bytes_add(arena_t *arena, int64_t delta)
{
    if (delta == 0)
        return;
    ebbi_store_relaxed(&arena->dirty_bytes, ebbi_load_relaxed(&arena->dirty_bytes) + (uint64_t)delta);
    ebbi_account_reclaimable(EBBI_POOL_SPANS, delta);
}

/* ---- free spans (lock held) ---------------------------------------------- */

/* Where span_insert puts a span that holds touched memory: at the end of
 * the dirty list (the newest), or nowhere yet (the caller places it). */
enum dirty_place { DIRTY_APPEND, DIRTY_CALLER_PLACES };

/* Put a free span in its bin (and, if it holds touched memory, on the
 * dirty list, freed `freed_at`).  dirty_bytes of the span is computed. */
static void span_insert(arena_t *arena, page_t *head, unsigned count, uint64_t freed_at, enum dirty_place place)
{
    segment_t *seg = ebbi_segment_of(head);
    head->kind = SLICE_FREE;
    head->slice_count = (uint16_t)count;
    head->slice_back = 0;
    head->free_flags = 0;
    ebbi_store_relaxed(&head->carved, 0);
    head->capacity = 0;
    head->block_size = 0;
    head->start = 0;
    page_t *last = head + count - 1;
    last->kind = SLICE_FREE;
    last->slice_back = (uint8_t)(count - 1);
    /* Lower addresses to the front, roughly (spans are taken from the
     * front): new pages gather low, and the segments at the top of the
     * heap empty out and can go back. */
    page_t *front = arena->span_bins[count];
    if (front == NULL || head < front) {
        head->prev = NULL;
        head->next = front;
        if (front != NULL)
            front->prev = head;
        arena->span_bins[count] = head;
    } else {
        head->prev = front;
        head->next = front->next;
        if (front->next != NULL)
            front->next->prev = head;
        front->next = head;
    }
    arena->span_mask |= (uint64_t)1 << count;
    seg->free_slices += count;

    /* Listed for reclamation: spans with touched memory, and whole free
     * segments (to be given back even when nothing in them is resident). */
    head->span_dirty = (uint32_t)touched_bytes(seg, slice_index(head), count);
    head->freed_at_ns = freed_at;
    head->dirty_next = head->dirty_prev = NULL;
    head->listed = head->span_dirty > 0 || count == EBB_SEGMENT_DATA_SLICES;
    dirty_bytes_add(arena, (int64_t)head->span_dirty);
    if (head->listed && place == DIRTY_APPEND)
        dirty_append(arena, head);
}

/* Take a free span out of its bin and off the dirty list. */
static void span_remove(arena_t *arena, page_t *head)
{
    ebbi_assert(head->kind == SLICE_FREE && head->slice_back == 0);
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
    if (head->listed)
        dirty_unlink(arena, head);
    head->listed = 0;
    dirty_bytes_add(arena, -(int64_t)head->span_dirty);
    ebbi_segment_of(head)->free_slices -= count;
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

/* Free `count` slices from `head`, coalescing with the free spans beside
 * them.  A merged span counts as freed now. */
static void span_free(arena_t *arena, page_t *head, unsigned count, uint64_t now)
{
    segment_t *seg = ebbi_segment_of(head);
    page_t *right = head + count;
    if (right < seg->slices + EBB_SLICES_PER_SEGMENT && right->kind == SLICE_FREE) {
        span_remove(arena, right);
        count += right->slice_count;
    }
    page_t *left = head - 1; /* slices[0] is never SLICE_FREE */
    if (left->kind == SLICE_FREE) {
        page_t *left_head = left - left->slice_back;
        span_remove(arena, left_head);
        count += left_head->slice_count;
        head = left_head;
    }
    span_insert(arena, head, count, now, DIRTY_APPEND);
}

/* Cut a page of `count` slices from the smallest span that fits.
 * `fresh`: the bytes of its slices that were never touched, or decommitted
 * since (the ledger's refaults and growth). */
static page_t *span_take(arena_t *arena, unsigned count, bool *is_zero, uint64_t *fresh)
{
    uint64_t fits = arena->span_mask & ~(((uint64_t)1 << count) - 1);
    if (fits == 0)
        return NULL;
    unsigned bin = (unsigned)__builtin_ctzll(fits);
    page_t *head = arena->span_bins[bin];
    uint64_t freed_at = head->freed_at_ns;
    page_t *dirty_next = head->dirty_next;
    bool was_listed = head->listed;
    span_remove(arena, head);
    if (bin > count) {
        page_t *rest = head + count;
        span_insert(arena, rest, bin - count, freed_at, DIRTY_CALLER_PLACES);
        if (rest->listed) {
            /* Keep the remainder's place (its age) in the reclaim list. */
            if (was_listed && dirty_next != NULL)
                dirty_insert_before(arena, dirty_next, rest);
            else
                dirty_append(arena, rest);
        }
    }
    segment_t *seg = ebbi_segment_of(head);
    for (unsigned i = 0; i < count; i++) {
        head[i].slice_back = (uint8_t)i;
        head[i].kind = SLICE_PAGE;
        /* A new page may write anywhere: a hole left by the last page here
         * counts as touched (may be resident) from now on. */
        ebbi_store_relaxed(&seg->holes[slice_index(head) + i], 0);
    }
    head->slice_count = (uint16_t)count;
    /* Untouched memory is as the kernel gave it: zero. */
    unsigned first = slice_index(head), untouched = 0;
    for (unsigned i = first; i < first + count; i++)
        untouched += ebbi_load_relaxed(&seg->touched[i]) == 0;
    *is_zero = untouched == count;
    *fresh = (uint64_t)untouched << EBB_SLICE_SHIFT;
    return head;
}

page_t *ebbi_arena_alloc_page(arena_t *arena, unsigned class_id, bool *is_zero)
{
    unsigned count = ebbi_classes[class_id].page_slices;
    /* Room for a block beside the guard page that may end the page. */
    size_t size = ebbi_classes[class_id].block_size;
    while (((size_t)count << EBB_SLICE_SHIFT) - ebbi_layout.page_guard < size)
        count++;
    pthread_mutex_lock(&arena->lock);
    for (;;) {
        uint64_t fresh = 0;
        page_t *page = span_take(arena, count, is_zero, &fresh);
        if (page != NULL) {
            if (ebbi_validate_due(&arena->validate_ticks))
                ebbi_arena_validate(arena);
            pthread_mutex_unlock(&arena->lock);
            ebbi_account_take(EBBI_POOL_SPANS, (uint64_t)count << EBB_SLICE_SHIFT, fresh);
            return page;
        }
        /* Go to the kernel without the lock. */
        pthread_mutex_unlock(&arena->lock);
        segment_t *seg = ebbi_segment_alloc(arena);
        if (seg == NULL)
            return NULL;
        pthread_mutex_lock(&arena->lock);
        segment_link(arena, seg);
        span_insert(arena, &seg->slices[1], EBB_SEGMENT_DATA_SLICES, ebbi_os_now_ns(), DIRTY_APPEND);
    }
}

/* The guard page that ends a page in use becomes memory again. */
static void page_unguard(page_t *page)
{
    size_t guard = ebbi_layout.page_guard;
    if (guard != 0) {
        segment_t *seg = ebbi_segment_of(page);
        uintptr_t end = ebbi_slice_address(seg, page) + ((uintptr_t)page->slice_count << EBB_SLICE_SHIFT);
        ebbi_os_protect((void *)(end - guard), guard, EBBI_ACCESS_RW);
    }
}

static void page_reset(page_t *page)
{
    page_unguard(page);
    ebbi_store_relaxed(&page->carved, 0);
    page->capacity = 0;
    page->block_size = 0;
    page->start = 0;
    page->divisor_magic = 0;
    page->free = NULL;
    page->local_free = NULL;
    page->used = 0;
    page->holed = 0;
    page->free_flags = 0;
    page->counts = NULL;
    ebbi_store_relaxed(&page->thread_free, 0);
    ebbi_store_relaxed(&page->owner, NULL);
}

void ebbi_arena_free_page(page_t *page)
{
    arena_t *arena = ebbi_segment_of(page)->arena;
    unsigned count = page->slice_count;
    uint64_t now = ebbi_os_now_ns();
    page_reset(page);
    pthread_mutex_lock(&arena->lock);
    span_free(arena, page, count, now);
    if (ebbi_validate_due(&arena->validate_ticks))
        ebbi_arena_validate(arena);
    pthread_mutex_unlock(&arena->lock);
    ebbi_account_give(EBBI_POOL_SPANS, (uint64_t)count << EBB_SLICE_SHIFT);
    ebbi_account_freed(now);
}

/* ---- reclamation ---------------------------------------------------------- */

/* Purge the touched runs of slices [first, first+count) of a segment,
 * adjacent runs in one call (MADV_DONTNEED, or MADV_FREE with
 * EBB_PURGE=free).  Returns the bytes that were touched; `*refused` is
 * set if a call failed (locked memory), which leaves that run touched. */
static size_t purge_touched(segment_t *seg, unsigned first, unsigned count, bool *refused)
{
    bool lazy = ebbi_option(EBB_OPTION_PURGE) == 1;
    size_t given = 0;
    unsigned i = first, end = first + count;
    while (i < end) {
        if ((ebbi_load_relaxed(&seg->touched[i]) & TOUCH_UNITS) == 0) {
            i++;
            continue;
        }
        unsigned run = i;
        size_t run_given = 0;
        while (i < end && (ebbi_load_relaxed(&seg->touched[i]) & TOUCH_UNITS) != 0) {
            run_given += slice_resident(seg, i);
            i++;
        }
        /* Whole slices, but for the run's last one, purged as far as it was
         * touched (all of it if an earlier lazy purge left it stale). */
        uint8_t last = ebbi_load_relaxed(&seg->touched[i - 1]);
        size_t last_bytes = (last & TOUCH_STALE) ? EBB_SLICE_SIZE : (size_t)(last & TOUCH_UNITS) * EBB_TOUCH_UNIT;
        size_t run_bytes = ((size_t)(i - 1 - run) << EBB_SLICE_SHIFT) + last_bytes;
        void *at = (uint8_t *)seg + ((size_t)run << EBB_SLICE_SHIFT);
        uint8_t after = 0;
        if (lazy && ebbi_os_purge_lazily(at, run_bytes)) {
            after = TOUCH_STALE;
        } else if (!ebbi_os_decommit(at, run_bytes)) {
            *refused = true;
            continue; /* locked memory: still resident, still holding its data */
        }
        given += run_given;
        for (unsigned k = run; k < i; k++) {
            ebbi_store_relaxed(&seg->touched[k], after);
            ebbi_store_relaxed(&seg->holes[k], 0);
        }
    }
    return given;
}

/* The reclaimer, holding a parked page (heap.c): decommit what blocks were
 * carved from.  The page stays its owner's; `is_zero` says whether its
 * memory now reads as zero (not after a lazy purge).  Returns the bytes. */
size_t ebbi_arena_purge_page(page_t *page, bool *is_zero)
{
    segment_t *seg = ebbi_segment_of(page);
    unsigned first = slice_index(page);
    bool refused = false;
    size_t given = purge_touched(seg, first, page->slice_count, &refused);
    *is_zero = slices_zero(seg, first, page->slice_count);
    return given;
}

size_t ebbi_arena_purge(arena_t *arena, uint64_t freed_before_ns, size_t at_least, uint64_t keep)
{
    enum { BATCH = 32 };
    size_t given = 0;
    for (;;) {
        page_t *spans[BATCH];
        unsigned n = 0;
        segment_t *release = NULL;
        pthread_mutex_lock(&arena->lock);
        while (n < BATCH && arena->dirty_first != NULL) {
            page_t *head = arena->dirty_first;
            if (given >= at_least && (head->freed_at_ns >= freed_before_ns ||
                                      (head->span_dirty > 0 && keep > 0 &&
                                       ebbi_account_pool_reclaimable(EBBI_POOL_SPANS) <= keep)))
                break;
            unsigned count = head->slice_count;
            given += head->span_dirty;
            span_remove(arena, head);
            segment_t *seg = ebbi_segment_of(head);
            if (count == EBB_SEGMENT_DATA_SLICES) {
                /* The whole segment is free: back to its source.  Until it
                 * is, its memory still counts as resident. */
                segment_unlink(arena, seg);
                seg->next = release;
                release = seg;
                ebbi_fetch_add_relaxed(&releasing_bytes, touched_bytes(seg, 1, EBB_SEGMENT_DATA_SLICES));
                spans[n++] = NULL;
                continue;
            }
            /* Out of the bins while we decommit: no neighbour may merge. */
            head->kind = SLICE_PURGING;
            head[count - 1].kind = SLICE_PURGING;
            spans[n++] = head;
        }
        bool more = arena->dirty_first != NULL;
        pthread_mutex_unlock(&arena->lock);

        unsigned purging = 0;
        bool refused = false;
        for (unsigned i = 0; i < n; i++) {
            if (spans[i] == NULL)
                continue;
            segment_t *seg = ebbi_segment_of(spans[i]);
            size_t purged = purge_touched(seg, slice_index(spans[i]), spans[i]->slice_count, &refused);
            ebbi_account_reclaimed(purged);
            if (purged < spans[i]->span_dirty)
                given -= spans[i]->span_dirty - purged;
            purging++;
        }
        while (release != NULL) {
            segment_t *next = release->next;
            size_t touched = touched_bytes(release, 1, EBB_SEGMENT_DATA_SLICES);
            ebbi_segment_free(release);
            ebbi_account_reclaimed(touched);
            ebbi_fetch_sub_relaxed(&releasing_bytes, touched);
            release = next;
        }
        if (purging > 0) {
            /* Back in the bins, clean; a span that now makes a whole free
             * segment waits one more delay before the segment goes. */
            uint64_t now = ebbi_os_now_ns();
            pthread_mutex_lock(&arena->lock);
            for (unsigned i = 0; i < n; i++) {
                page_t *head = spans[i];
                if (head == NULL)
                    continue;
                unsigned count = head->slice_count;
                head->span_dirty = 0;
                head->kind = SLICE_FREE;
                head[count - 1].kind = SLICE_FREE;
                span_free(arena, head, count, now);
            }
            if (ebbi_validate_due(&arena->validate_ticks))
                ebbi_arena_validate(arena);
            pthread_mutex_unlock(&arena->lock);
        }
        /* Memory the kernel would not take (locked) is back in the dirty
         * list, where this loop would meet it again: the next pass tries. */
        if (!more || n < BATCH || refused)
            return given;
    }
}

uint64_t ebbi_arena_oldest_dirty_ns(arena_t *arena)
{
    pthread_mutex_lock(&arena->lock);
    uint64_t t = arena->dirty_first != NULL ? arena->dirty_first->freed_at_ns : 0;
    pthread_mutex_unlock(&arena->lock);
    return t;
}

/* ---- abandoned pages ---------------------------------------------------- */

void ebbi_arena_abandon_page(page_t *page)
{
    arena_t *arena = ebbi_segment_of(page)->arena;
    uint64_t now = ebbi_os_now_ns();
    ebbi_store_relaxed(&page->quiet_since_ns, now);
    ebbi_account_sparse_at_most(now);
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

/* An abandoned page with free blocks that no sweep has purged since. */
static bool sparse_unswept(const page_t *page)
{
    return !(page->free_flags & PAGE_SPARSE_DONE) && page->free != NULL;
}

/* Free the abandoned pages whose blocks have all been freed since their
 * thread exited (they wait for nobody), and decommit the free kernel pages
 * of the others.  The pages are taken off their lists for the work, done
 * without the lock: nobody can adopt them meanwhile, and remote frees only
 * push onto their thread_free.  The spans of the freed pages count as
 * freed at `freed_at` (the pass's cutoff: they go in the same pass). */
size_t ebbi_arena_sweep_abandoned(arena_t *arena, uint64_t freed_at, uint64_t quiet_before)
{
    page_t *all = NULL;
    pthread_mutex_lock(&arena->lock);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_t *page = ebbi_load_relaxed(&arena->abandoned[c]);
        while (page != NULL) {
            page_t *next = page->next;
            page->next = all;
            all = page;
            page = next;
        }
        ebbi_store_relaxed(&arena->abandoned[c], NULL);
    }
    pthread_mutex_unlock(&arena->lock);
    if (all == NULL)
        return 0;

    ebbi_decommit_t batch = {0};
    for (page_t *page = all; page != NULL; page = page->next) {
        if (ebbi_page_remote_waiting(page)) {
            /* Collecting walks the list the other threads pushed, in the
             * order they freed: the page is streamed into the cache first
             * (see ebbi_page_purge_sparse). */
            ebbi_page_prefetch(page);
            ebbi_page_collect(page);
            page->free_flags &= (uint8_t)~PAGE_SPARSE_DONE;
        }
        /* Memory freed within the delay may be taken again (the pages are
         * adopted when their class runs short): it waits, as spans do. */
        if (page->used != 0 && sparse_unswept(page) && ebbi_load_relaxed(&page->quiet_since_ns) < quiet_before) {
            ebbi_page_purge_sparse(page, page->next, &batch);
            page->free_flags |= PAGE_SPARSE_DONE;
        }
    }
    /* Before the pages can be adopted (and their holes refilled). */
    size_t given = ebbi_page_purge_flush(&batch);

    uint64_t freed = 0;
    pthread_mutex_lock(&arena->lock);
    while (all != NULL) {
        page_t *page = all;
        all = page->next;
        if (page->used == 0) {
            unsigned count = page->slice_count;
            page_reset(page);
            span_free(arena, page, count, freed_at);
            freed += (uint64_t)count << EBB_SLICE_SHIFT;
        } else {
            ebbi_page_validate(page, EBBI_ABANDONED);
            page->next = ebbi_load_relaxed(&arena->abandoned[page->class_id]);
            ebbi_store_relaxed(&arena->abandoned[page->class_id], page);
        }
    }
    ebbi_arena_validate(arena);
    pthread_mutex_unlock(&arena->lock);
    if (freed > 0)
        ebbi_account_give(EBBI_POOL_SPANS, freed);
    return given;
}

uint64_t ebbi_arena_abandoned_due(arena_t *arena, uint64_t delay)
{
    uint64_t due = EBBI_NEVER;
    pthread_mutex_lock(&arena->lock);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        for (page_t *p = ebbi_load_relaxed(&arena->abandoned[c]); p != NULL; p = p->next) {
            uint64_t t = EBBI_NEVER;
            if (ebbi_page_remote_waiting(p) || sparse_unswept(p))
                t = ebbi_load_relaxed(&p->quiet_since_ns) + delay;
            if (t < due)
                due = t;
        }
    }
    pthread_mutex_unlock(&arena->lock);
    return due;
}

/* Per size class, the resident bytes (touched, less holes) of the pages
 * in use that hold live blocks: set against the class's live bytes, what
 * freed memory the live blocks keep resident (the heap profiler's dump).
 * A page's class and count are its owner's, peeked: an estimate. */
void ebbi_arenas_class_resident(uint64_t resident[EBB_CLASS_COUNT])
{
    memset(resident, 0, EBB_CLASS_COUNT * sizeof resident[0]);
    for (unsigned a = 0; a < ebbi_process.arena_count; a++) {
        arena_t *arena = &ebbi_arenas[a];
        pthread_mutex_lock(&arena->lock);
        for (segment_t *seg = arena->segments; seg != NULL; seg = seg->next) {
            for (unsigned i = 1; i < EBB_SLICES_PER_SEGMENT;) {
                const page_t *head = &seg->slices[i];
                unsigned count = head->slice_count > 0 ? head->slice_count : 1;
                if (head->kind == SLICE_PAGE && head->slice_back == 0) {
                    unsigned c = ebbi_peek(&head->class_id);
                    if (c < EBB_CLASS_COUNT && ebbi_peek(&head->used) > 0)
                        resident[c] += touched_bytes(seg, i, count);
                }
                i += count;
            }
        }
        pthread_mutex_unlock(&arena->lock);
    }
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
            out->touched_bytes += touched_bytes(seg, 1, EBB_SEGMENT_DATA_SLICES);
        }
        out->dirty_bytes += ebbi_load_relaxed(&arena->dirty_bytes);
        pthread_mutex_unlock(&arena->lock);
    }
    out->touched_bytes += ebbi_load_relaxed(&releasing_bytes);
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

/* ---- the debug build's validator --------------------------------------------- */

#if EBB_DEBUG
/* Lock held.  The bins, the mask, the dirty list and its byte count, each
 * segment's free slices, and the abandoned pages agree. */
void ebbi_arena_validate(arena_t *arena)
{
    uint64_t dirty = 0;
    unsigned listed = 0;
    for (unsigned n = 1; n < EBB_SLICES_PER_SEGMENT; n++) {
        ebbi_assert(((arena->span_mask >> n) & 1) == (arena->span_bins[n] != NULL));
        page_t *prev = NULL;
        for (page_t *h = arena->span_bins[n]; h != NULL; prev = h, h = h->next) {
            segment_t *seg = ebbi_segment_of(h);
            ebbi_assert(h->prev == prev && seg->arena == arena);
            ebbi_assert(h->kind == SLICE_FREE && h->slice_back == 0 && h->slice_count == n);
            ebbi_assert(slice_index(h) >= 1 && slice_index(h) + n <= EBB_SLICES_PER_SEGMENT);
            ebbi_assert(h[n - 1].kind == SLICE_FREE && h[n - 1].slice_back == n - 1);
            ebbi_assert(ebbi_load_relaxed(&h->carved) == 0);
            ebbi_assert(h->span_dirty == touched_bytes(seg, slice_index(h), n));
            ebbi_assert(h->listed == (h->span_dirty > 0 || n == EBB_SEGMENT_DATA_SLICES));
            dirty += h->span_dirty;
            listed += h->listed;
        }
    }
    ebbi_assert(dirty == ebbi_load_relaxed(&arena->dirty_bytes));
    unsigned on_list = 0;
    page_t *prev = NULL;
    for (page_t *h = arena->dirty_first; h != NULL; prev = h, h = h->dirty_next) {
        ebbi_assert(h->dirty_prev == prev && h->listed && h->kind == SLICE_FREE);
        on_list++;
        ebbi_assert(on_list <= listed);
    }
    ebbi_assert(arena->dirty_last == prev && on_list == listed);
    /* Each segment: free spans never touch (they would have merged), and
     * their slices add up to free_slices. */
    for (segment_t *seg = arena->segments; seg != NULL; seg = seg->next) {
        ebbi_assert(seg->arena == arena && seg->kind == SEGMENT_PAGES);
        ebbi_assert(seg->next == NULL || seg->next->prev == seg);
        unsigned free_slices = 0;
        bool free_before = false;
        for (unsigned i = 1; i < EBB_SLICES_PER_SEGMENT;) {
            page_t *h = &seg->slices[i];
            unsigned n = h->slice_count;
            ebbi_assert(h->slice_back == 0 && n >= 1 && i + n <= EBB_SLICES_PER_SEGMENT);
            ebbi_assert(h->kind == SLICE_FREE || h->kind == SLICE_PAGE || h->kind == SLICE_PURGING);
            bool is_free = h->kind == SLICE_FREE;
            ebbi_assert(!(is_free && free_before));
            if (is_free)
                free_slices += n;
            free_before = is_free;
            i += n;
        }
        ebbi_assert(free_slices == seg->free_slices);
    }
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        unsigned n = 0;
        for (page_t *p = ebbi_load_relaxed(&arena->abandoned[c]); p != NULL; p = p->next) {
            ebbi_assert(p->class_id == c && ebbi_segment_of(p)->arena == arena);
            ebbi_page_validate(p, EBBI_ABANDONED);
            ebbi_assert(++n < (1u << 24));
        }
    }
}
#endif
