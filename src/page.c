/* Pages: the free lists of one page.
 *
 * A page keeps three lists of free blocks, each linked through the blocks'
 * first words:
 *   free        what malloc pops (owner only);
 *   local_free  what the owner freed since `free` was last refilled (owner
 *               only) — keeping it apart makes every page run out now and
 *               then, which is when the slow path does its periodic work;
 *   thread_free what other threads freed: an atomic list they push onto
 *               with one compare-and-swap, taken whole by the owner.
 *
 * Blocks are carved lazily from the page's untouched tail, a few KiB at a
 * time, so a page costs RAM only as it is used.
 *
 * thread_free's low two bits hold the delayed-free state, which lets a
 * full page (one the owner moved off its class queue, so that the slow
 * path does not scan it) come back when another thread frees into it:
 *   NORMAL       remote frees push onto the page's list;
 *   USE_DELAYED  the page is full: the next remote free does not push onto
 *                the page but onto the owner heap's delayed list, so the
 *                owner sees it and moves the page back to its class queue;
 *   DELAYING     that remote free is under way (the owner, abandoning the
 *                page, waits until it is done);
 *   NEVER        abandoned: remote frees push onto the page's list only.
 */
#include "internal.h"

#define TF_NORMAL 0u
#define TF_USE_DELAYED 1u
#define TF_DELAYING 2u
#define TF_NEVER 3u
#define TF_STATE_MASK 3u

static inline unsigned tf_state(uintptr_t tf)
{
    return (unsigned)(tf & TF_STATE_MASK);
}

static inline block_t *tf_list(uintptr_t tf)
{
    return (block_t *)(tf & ~(uintptr_t)TF_STATE_MASK);
}

void ebbi_page_init(page_t *page, heap_t *heap, unsigned class_id, bool is_zero)
{
    segment_t *seg = ebbi_segment_of(page);
    uint32_t size = ebbi_classes[class_id].block_size;
    page->start = ebbi_slice_address(seg, page);
    page->block_size = size;
    page->divisor_magic = ebbi_divisor_magic(size);
    size_t span = (size_t)page->slice_count << EBB_SLICE_SHIFT;
    if (ebbi_safety & SAFETY_SECURE) {
        /* A guard page ends every page. */
        span -= ebbi_process.page_size;
        ebbi_os_protect((uint8_t *)page->start + span, ebbi_process.page_size, false);
    }
    page->reserved = (uint32_t)(span / size);
    page->capacity = 0;
    ebbi_store_relaxed(&page->carved, 0);
    page->used = 0;
    page->free = NULL;
    page->local_free = NULL;
    page->class_id = (uint8_t)class_id;
    page->free_flags = (class_id >= EBB_PARK_FIRST_CLASS ? PAGE_PARKABLE : 0) |
                       ((ebbi_safety & (SAFETY_ZERO | SAFETY_SECURE)) ? PAGE_SAFE : 0);
    page->counts = &heap->counts[class_id];
    page->is_zero_at_init = is_zero;
    page->free_is_zero = is_zero;
    ebbi_store_relaxed(&page->thread_free, TF_NORMAL);
    ebbi_store_relaxed(&page->owner, heap);
}

/* Record that the page's memory up to `end` bytes from its start may be
 * resident now (the slices from the one holding `begin`). */
static void page_touch(page_t *page, size_t begin, size_t end)
{
    segment_t *seg = ebbi_segment_of(page);
    unsigned head = (unsigned)(page - seg->slices);
    for (size_t s = begin >> EBB_SLICE_SHIFT; (s << EBB_SLICE_SHIFT) < end; s++) {
        size_t in_slice = end - (s << EBB_SLICE_SHIFT);
        if (in_slice > EBB_SLICE_SIZE)
            in_slice = EBB_SLICE_SIZE;
        uint8_t units = (uint8_t)((in_slice + EBB_TOUCH_UNIT - 1) / EBB_TOUCH_UNIT);
        _Atomic(uint8_t) *t = &seg->touched[head + s];
        uint8_t old = ebbi_load_relaxed(t);
        if ((old & TOUCH_UNITS) < units)
            ebbi_store_relaxed(t, (uint8_t)((old & ~TOUCH_UNITS) | units));
    }
}

/* Carve more blocks from the untouched tail onto the (empty) free list. */
void ebbi_page_extend(page_t *page)
{
    uint32_t size = page->block_size;
    uint32_t capacity = page->capacity;
    uint32_t n = EBB_EXTEND_BYTES / size;
    if (n == 0)
        n = 1;
    if (n > page->reserved - capacity)
        n = page->reserved - capacity;
    uint8_t *first = (uint8_t *)page->start + (size_t)capacity * size;
    if (ebbi_safety & SAFETY_SECURE) {
        /* Secure mode: the new blocks go on the list in a random order. */
        uint32_t order[EBB_EXTEND_BYTES / EBB_MIN_BLOCK];
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        uint64_t x = ebbi_link_secret ^ (uintptr_t)first ^ ((uint64_t)capacity << 32);
        for (uint32_t i = n; i > 1; i--) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint32_t j = (uint32_t)(x % i);
            uint32_t t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        block_t *next = NULL;
        for (uint32_t i = 0; i < n; i++) {
            block_t *b = (block_t *)(first + (size_t)order[i] * size);
            ebbi_block_set_next(b, next);
            next = b;
        }
        page->free = next;
    } else {
        uint8_t *p = first;
        for (uint32_t i = 1; i < n; i++, p += size)
            ((block_t *)p)->next = (block_t *)(p + size);
        ((block_t *)p)->next = NULL;
        page->free = (block_t *)first;
    }
    page->capacity = capacity + n;
    ebbi_store_relaxed(&page->carved, (capacity + n) * size);
    page_touch(page, (size_t)capacity * size, (size_t)(capacity + n) * size);
    /* The carved blocks are as zero as the page was when it was set up. */
    page->free_is_zero = page->is_zero_at_init;
}

/* Owner (or the arena lock, for an abandoned page): move the blocks freed
 * locally and by other threads onto `free`. */
void ebbi_page_collect(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    if (tf_list(tf) != NULL) {
        /* Take the whole list, keeping the state bits. */
        while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (uintptr_t)tf_state(tf)))
            ;
        block_t *list = tf_list(tf);
        block_t *tail = list;
        uint32_t count = 1;
        for (block_t *next; (next = ebbi_block_next(tail)) != NULL; tail = next) {
            if ((ebbi_safety & SAFETY_SECURE) && !ebbi_page_holds_block(page, (uintptr_t)next))
                ebbi_safety_link_corrupted(tail);
            count++;
        }
        page->used -= count;
        ebbi_block_set_next(tail, page->local_free);
        page->local_free = list;
    }
    if (page->local_free != NULL) {
        if (page->free == NULL) {
            page->free = page->local_free;
        } else {
            block_t *tail = page->local_free;
            for (block_t *next; (next = ebbi_block_next(tail)) != NULL;)
                tail = next;
            ebbi_block_set_next(tail, page->free);
            page->free = page->local_free;
        }
        page->local_free = NULL;
        /* Zero-on-free keeps freed blocks zero but for their first words. */
        if (!(ebbi_safety & SAFETY_ZERO))
            page->free_is_zero = false;
    }
}

/* Owner, page full: ask the next remote free to notify us.  Fails (and the
 * caller collects again) if remote frees arrived meanwhile. */
bool ebbi_page_try_mark_full(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    do {
        /* A notification still under way (DELAYING) must finish first: the
         * owner relies on that state to wait for it before abandoning. */
        if (tf_list(tf) != NULL || tf_state(tf) == TF_DELAYING)
            return false;
    } while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (uintptr_t)TF_USE_DELAYED));
    return true;
}

/* Owner, page leaving the full queue: remote frees go to the page again.
 * A remote free in DELAYING state sets NORMAL itself. */
void ebbi_page_clear_full_mark(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    while (tf_state(tf) == TF_USE_DELAYED) {
        if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (tf & ~(uintptr_t)TF_STATE_MASK) | TF_NORMAL))
            break;
    }
}

/* Owner, before abandoning: no remote free may notify us any more. */
void ebbi_page_forbid_delayed(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    for (unsigned spins = 0;; spins++) {
        if (tf_state(tf) == TF_DELAYING) {
            if (spins < 64)
                ebbi_spin_pause();
            else
                ebbi_os_yield(); /* the notifying thread may be descheduled */
            tf = ebbi_load_relaxed(&page->thread_free);
            continue;
        }
        if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (tf & ~(uintptr_t)TF_STATE_MASK) | TF_NEVER))
            return;
    }
}

/* In a forked child: a notification (DELAYING) that a thread of the parent
 * had under way will never end; give the page back its normal state. */
void ebbi_page_after_fork(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    if (tf_state(tf) == TF_DELAYING)
        ebbi_store_relaxed(&page->thread_free, (tf & ~(uintptr_t)TF_STATE_MASK) | TF_NORMAL);
}

/* New owner, after adopting. */
void ebbi_page_allow_delayed(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (tf & ~(uintptr_t)TF_STATE_MASK) | TF_NORMAL))
        ;
}

/* Any thread but the owner: give a block back to its page. */
void ebbi_page_free_remote(page_t *page, block_t *block)
{
    block->free_key = ebbi_free_key(page);
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    uintptr_t desired;
    bool notify;
    do {
        notify = tf_state(tf) == TF_USE_DELAYED;
        if (notify) {
            desired = (tf & ~(uintptr_t)TF_STATE_MASK) | TF_DELAYING;
        } else {
            ebbi_block_set_next(block, tf_list(tf));
            desired = (uintptr_t)block | tf_state(tf);
        }
    } while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, desired));
    if (!notify)
        return;

    /* The owner cannot abandon the page while we are DELAYING, so its heap
     * is still the owner here.  Reset the state before handing the block
     * over: once the owner has the block it may free the page, and we must
     * not touch the page after that. */
    heap_t *heap = ebbi_load_relaxed(&page->owner);
    tf = ebbi_load_relaxed(&page->thread_free);
    while (tf_state(tf) == TF_DELAYING &&
           !ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (tf & ~(uintptr_t)TF_STATE_MASK) | TF_NORMAL))
        ;
    block_t *head = ebbi_load_relaxed(&heap->delayed_free);
    do {
        ebbi_block_set_next(block, head);
    } while (!ebbi_cas_weak_release(&heap->delayed_free, &head, block));
}
