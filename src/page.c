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
#include <string.h>

#include "internal.h"

#define TF_NORMAL 0u
#define TF_USE_DELAYED 1u
#define TF_DELAYING 2u
#define TF_NEVER 3u
#define TF_STATE_MASK 3u
/* The word's top 16 bits count the blocks on the list (a page holds at
 * most 4096), so that the owner takes the list in without walking it:
 * blocks live below 2^48 (EBB_ADDRESS_BITS). */
#define TF_COUNT_SHIFT 48
#define TF_LIST_MASK ((((uintptr_t)1 << TF_COUNT_SHIFT) - 1) & ~(uintptr_t)TF_STATE_MASK)
#define TF_ONE ((uintptr_t)1 << TF_COUNT_SHIFT)

static inline unsigned tf_state(uintptr_t tf)
{
    return (unsigned)(tf & TF_STATE_MASK);
}

static inline block_t *tf_list(uintptr_t tf)
{
    return (block_t *)(tf & TF_LIST_MASK);
}

static inline uint32_t tf_count(uintptr_t tf)
{
    return (uint32_t)(tf >> TF_COUNT_SHIFT);
}

/* The word with `state` in place of tf's. */
static inline uintptr_t tf_with_state(uintptr_t tf, unsigned state)
{
    return (tf & ~(uintptr_t)TF_STATE_MASK) | state;
}

/* The word with `count` blocks from `head` on pushed onto tf's list. */
static inline uintptr_t tf_push(uintptr_t tf, const block_t *head, uint32_t count)
{
    return (uintptr_t)head | ((tf & ~TF_LIST_MASK) + (uintptr_t)count * TF_ONE);
}

_Static_assert(EBB_ADDRESS_BITS <= TF_COUNT_SHIFT, "block addresses fit below the count");
_Static_assert(EBB_SLICE_SIZE / EBB_MIN_BLOCK < (1u << (64 - TF_COUNT_SHIFT)), "a page's blocks fit the count");

void ebbi_page_init(page_t *page, heap_t *heap, unsigned class_id, bool is_zero)
{
    segment_t *seg = ebbi_segment_of(page);
    uint32_t size = ebbi_classes[class_id].block_size;
    page->start = ebbi_slice_address(seg, page);
    page->block_size = size;
    page->divisor_magic = ebbi_divisor_magic(size);
    size_t span = (size_t)page->slice_count << EBB_SLICE_SHIFT;
    if (ebbi_layout.page_guard != 0) {
        span -= ebbi_layout.page_guard;
        ebbi_os_protect((uint8_t *)page->start + span, ebbi_layout.page_guard, EBBI_ACCESS_NONE);
    }
    page->reserved = (uint32_t)(span / size);
    page->capacity = 0;
    ebbi_store_relaxed(&page->carved, 0);
    page->used = 0;
    page->holed = 0;
    page->free = NULL;
    page->local_free = NULL;
    page->class_id = (uint8_t)class_id;
    page->free_flags = (class_id >= EBB_PARK_FIRST_CLASS ? PAGE_PARKABLE : 0) | ebbi_layout.page_flags;
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
    if (ebbi_layout.carve_shuffled) {
        /* Secure mode: the new blocks go on the list in a random order,
         * zero (ebbi_secure_take expects a block as a free left it). */
        if (!page->is_zero_at_init)
            ebbi_clear(first, (size_t)n * size);
        uint32_t order[EBB_EXTEND_BYTES / EBB_MIN_BLOCK];
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        uint64_t x = ebbi_link_secret ^ (uintptr_t)first ^ ((uint64_t)capacity << 32);
        for (uint32_t i = n; i > 1; i--) {
            uint32_t j = (uint32_t)(ebbi_xorshift(&x) % i);
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

/* The blocks moved onto `free` are no longer known to be zero. */
static inline void free_not_zero(page_t *page)
{
    if (!ebbi_layout.free_keeps_zero)
        page->free_is_zero = false;
}

/* The last block of a list of the page's blocks.  A slow path, so every
 * link is checked: one that leaves the page (a write after free over it)
 * is reported, never followed. */
static block_t *list_tail(const page_t *page, block_t *b)
{
    uint32_t left = page->capacity;
    for (block_t *next; (next = ebbi_block_next(b)) != NULL; b = next)
        if (left-- == 0 || !ebbi_page_holds_block(page, (uintptr_t)next))
            ebbi_safety_link_corrupted(b);
    return b;
}

/* Owner (or the arena lock, for an abandoned page): take in the blocks
 * other threads freed (`used` is exact after it), and refill an empty
 * `free`.  The remote list comes with its length: it becomes `free`, or
 * `local_free`, whole, without a walk (every link is checked where it is
 * followed: malloc, the walks of trim and purge); `local_free` then waits
 * for the next refill.
 * Returns whether `free` was empty and is not. */
bool ebbi_page_collect(page_t *page)
{
    bool was_empty = page->free == NULL;
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    if (tf_list(tf) != NULL) {
        /* Take the whole list, keeping the state bits. */
        while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, (uintptr_t)tf_state(tf)))
            ;
        block_t *list = tf_list(tf);
        uint32_t count = tf_count(tf);
        ebbi_assert(count >= 1 && count <= page->used);
        page->used -= count;
        if (page->free == NULL) {
            page->free = list;
            free_not_zero(page);
        } else if (page->local_free == NULL) {
            page->local_free = list;
        } else {
            ebbi_block_set_next(list_tail(page, list), page->local_free);
            page->local_free = list;
        }
    }
    if (page->free == NULL && page->local_free != NULL) {
        page->free = page->local_free;
        page->local_free = NULL;
        free_not_zero(page);
    }
    return was_empty && page->free != NULL;
}

/* ebbi_page_collect, and every free block on `free` (for a walk of it). */
void ebbi_page_collect_all(page_t *page)
{
    ebbi_page_collect(page);
    if (page->local_free != NULL) {
        ebbi_block_set_next(list_tail(page, page->local_free), page->free);
        page->free = page->local_free;
        page->local_free = NULL;
        free_not_zero(page);
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
        if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_with_state(tf, TF_NORMAL)))
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
        if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_with_state(tf, TF_NEVER)))
            return;
    }
}

/* In a forked child: a notification (DELAYING) that a thread of the parent
 * had under way will never end; give the page back its normal state. */
void ebbi_page_after_fork(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    if (tf_state(tf) == TF_DELAYING)
        ebbi_store_relaxed(&page->thread_free, tf_with_state(tf, TF_NORMAL));
}

/* New owner, after adopting. */
void ebbi_page_allow_delayed(page_t *page)
{
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_with_state(tf, TF_NORMAL)))
        ;
}

/* Any thread but the owner: give a block back to its page. */
static EBBI_COLD void heap_remote_seen(heap_t *owner)
{
    ebbi_store_relaxed(&owner->remote_seen, 1);
    ebbi_heaps_touch();
}

/* After a push: an owner that stays idle has the block taken in by a sweep
 * (heap.c), which clears the mark before it takes the remote lists, so the
 * mark is read after the push.  (A stale owner, heaps are never unmapped,
 * costs a needless look.) */
static inline void note_remote_free(heap_t *owner)
{
    if (owner != NULL && unlikely(!ebbi_load_seq_cst(&owner->remote_seen)))
        heap_remote_seen(owner);
}

/* A page whose thread exited waits for the reclaimer's sweep, which gives
 * back what has been free long enough: the free is stamped (the coarse
 * clock, a few ns), and a pass asked for if none is due. */
static EBBI_COLD void abandoned_freed_into(page_t *page)
{
    uint64_t now = ebbi_os_now_ns();
    ebbi_store_relaxed(&page->quiet_since_ns, now);
    if (ebbi_load_relaxed(&ebbi_due_ns) == EBBI_NEVER)
        ebbi_account_freed(now);
}

/* The page is full in its owner's heap (USE_DELAYED): the blocks go to
 * the heap's delayed list, which the owner drains on its slow path. */
static EBBI_NOINLINE void free_remote_delayed(page_t *page, block_t *head, block_t *tail, uint32_t count,
                                              uintptr_t tf, heap_t *owner)
{
    for (;;) {
        if (tf_state(tf) == TF_USE_DELAYED) {
            if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_with_state(tf, TF_DELAYING)))
                break;
            continue;
        }
        /* The owner took the page out of the full queue meanwhile. */
        ebbi_block_set_next(tail, tf_list(tf));
        if (ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_push(tf, head, count))) {
            /* (The owner read before the push: once the blocks are
             * pushed, the page may be collected and freed.) */
            note_remote_free(owner);
            return;
        }
    }
    /* The owner cannot abandon the page while we are DELAYING, so its heap
     * is still the owner here.  Reset the state before handing the blocks
     * over: once the owner has them it may free the page, and we must not
     * touch the page after that. */
    heap_t *heap = ebbi_load_relaxed(&page->owner);
    tf = ebbi_load_relaxed(&page->thread_free);
    while (tf_state(tf) == TF_DELAYING &&
           !ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_with_state(tf, TF_NORMAL)))
        ;
    block_t *first = ebbi_load_relaxed(&heap->delayed_free);
    do {
        ebbi_block_set_next(tail, first);
    } while (!ebbi_cas_weak_release(&heap->delayed_free, &first, head));
    note_remote_free(heap);
}

/* Any thread but the owner: give back `count` blocks of the page, linked
 * from head to tail, their key words set: one compare-and-swap. */
void ebbi_page_free_remote_list(page_t *page, block_t *head, block_t *tail, uint32_t count)
{
    heap_t *owner = ebbi_load_relaxed(&page->owner);
    if (unlikely(owner == NULL))
        abandoned_freed_into(page);
    uintptr_t tf = ebbi_load_relaxed(&page->thread_free);
    do {
        if (unlikely(tf_state(tf) == TF_USE_DELAYED)) {
            free_remote_delayed(page, head, tail, count, tf, owner);
            return;
        }
        ebbi_block_set_next(tail, tf_list(tf));
    } while (!ebbi_cas_weak_acq_rel(&page->thread_free, &tf, tf_push(tf, head, count)));
    note_remote_free(owner);
}

void ebbi_page_free_remote(page_t *page, block_t *block)
{
    block->free_key = ebbi_free_key(page);
    ebbi_page_free_remote_list(page, block, block, 1);
}

/* Blocks other threads freed wait on thread_free (any thread may ask). */
bool ebbi_page_remote_waiting(page_t *page)
{
    return tf_list(ebbi_load_relaxed(&page->thread_free)) != NULL;
}

/* The lines that hold a page's links: every line for blocks under 64
 * bytes, else the line of each block's start. */
static inline size_t link_stride(const page_t *page)
{
    return page->block_size < 64 ? 64 : page->block_size;
}

/* Read the lines of the page's carved memory that hold links, in order,
 * so that the hardware streams them into the cache: a free list chased
 * cold waits for memory at every step (about 100 ns), one streamed costs a
 * few microseconds a page (software prefetches, dropped when the miss
 * buffers are full, halve the cost, not more).  The reads race with the
 * program's writes to its live blocks and with other threads' frees; their
 * values are discarded, so TSan is told not to look. */
__attribute__((no_sanitize("thread"))) void ebbi_page_prefetch(page_t *page)
{
    size_t carved = ebbi_load_relaxed(&page->carved), stride = link_stride(page);
    uintptr_t sum = 0;
    for (size_t off = 0; off < carved; off += stride)
        sum += *(const volatile uintptr_t *)(page->start + off);
    (void)sum;
}

/* ---- sparse pages ------------------------------------------------------------ */

/* A page is one or more slices of 64 KiB, sixteen kernel pages or more;
 * a page with one live block keeps its whole span.  Its kernel pages that
 * hold only free blocks (or the untouched tail) can go back to the kernel
 * while the page stays in use: the "holes".  The free lists are linked
 * through the blocks, and decommitted memory reads back as zero, so the
 * blocks that reach into a hole leave the lists first: they are `holed`,
 * on no list, so nothing writes to a hole (and the statistics can count it
 * as not resident) until they come back (ebbi_page_refill_holes) when the
 * page runs out of free blocks, before its tail is carved further.
 *
 * Owner only (or the arena lock holder, for an abandoned page). */

enum { SPARSE_MAX_BLOCKS = 4096 }; /* a 64 KiB page of 16-byte blocks */

/* The hole mask of the slice holding p, and p's kernel page's bit in it. */
static inline _Atomic(uint16_t) *hole_mask(segment_t *seg, uintptr_t p, unsigned *bit)
{
    size_t off = p - (uintptr_t)seg;
    *bit = (unsigned)((off & (EBB_SLICE_SIZE - 1)) / ebbi_process.page_size);
    return &seg->holes[off >> EBB_SLICE_SHIFT];
}

static inline bool in_hole(segment_t *seg, uintptr_t p)
{
    unsigned bit;
    return (ebbi_load_relaxed(hole_mask(seg, p, &bit)) >> bit) & 1u;
}

/* A block that reaches into a hole is on no list: nothing writes to a hole
 * until the page takes its holed blocks back. */
static bool overlaps_hole(segment_t *seg, uintptr_t p, uint32_t size)
{
    uintptr_t mask = ~(uintptr_t)(ebbi_process.page_size - 1);
    for (uintptr_t kp = p & mask; kp <= ((p + size - 1) & mask); kp += ebbi_process.page_size)
        if (in_hole(seg, kp))
            return true;
    return false;
}

static void hole_set(segment_t *seg, uintptr_t p)
{
    unsigned bit;
    _Atomic(uint16_t) *h = hole_mask(seg, p, &bit);
    ebbi_store_relaxed(h, (uint16_t)(ebbi_load_relaxed(h) | (1u << bit)));
}

static void hole_clear(segment_t *seg, uintptr_t p)
{
    unsigned bit;
    _Atomic(uint16_t) *h = hole_mask(seg, p, &bit);
    ebbi_store_relaxed(h, (uint16_t)(ebbi_load_relaxed(h) & ~(1u << bit)));
}

/* A range whose decommit failed (locked memory) still holds its data: its
 * kernel pages are holes no more, and the blocks over it, all holed by the
 * purge that made the range, go back on their page's free list.  A range
 * may run over adjacent pages (the batch joins them). */
static void holes_refused(void *at, size_t size)
{
    uintptr_t p = (uintptr_t)at, end = p + size;
    segment_t *seg = ebbi_segment_of(at);
    while (p < end) {
        page_t *page = ebbi_page_of(seg, p);
        uintptr_t page_end = page->start + ((size_t)page->slice_count << EBB_SLICE_SHIFT);
        uintptr_t stop = end < page_end ? end : page_end;
        for (uintptr_t kp = p; kp < stop; kp += ebbi_process.page_size)
            hole_clear(seg, kp);
        uint32_t size_b = page->block_size;
        for (size_t i = (p - page->start) / size_b; i < page->capacity; i++) {
            uintptr_t b = page->start + i * size_b;
            if (b >= stop)
                break;
            if (overlaps_hole(seg, b, size_b))
                continue;
            ebbi_block_set_next((block_t *)b, page->free);
            page->free = (block_t *)b;
            page->holed--;
        }
        if (page->holed == 0)
            page->free_flags &= (uint8_t)~PAGE_HOLED;
        p = stop;
    }
}

/* Bit i of a block map stands for block i of a page. */
typedef uint64_t block_map_t[SPARSE_MAX_BLOCKS / 64];

static inline bool map_get(const uint64_t *map, size_t i)
{
    return (map[i / 64] >> (i % 64)) & 1;
}

/* Are bits lo..hi (inclusive) all set? */
static bool map_all_set(const uint64_t *map, size_t lo, size_t hi)
{
    for (size_t w = lo / 64; w <= hi / 64; w++) {
        uint64_t want = ~(uint64_t)0;
        if (w == lo / 64)
            want &= ~(uint64_t)0 << (lo % 64);
        if (w == hi / 64 && hi % 64 != 63)
            want &= ((uint64_t)1 << (hi % 64 + 1)) - 1;
        if ((map[w] & want) != want)
            return false;
    }
    return true;
}

/* The link lines of the page a sweep works on next, fetched a line per
 * step of this page's walk: the walk waits on the cache at each step, and
 * the next page streams in meanwhile instead of after. */
typedef struct {
    uintptr_t at, end;
    size_t stride;
} ahead_t;

static ahead_t ahead_of(const page_t *next)
{
    ahead_t a = {0, 0, 64};
    if (next != NULL && next->start != 0) {
        a.at = next->start;
        a.end = next->start + ebbi_load_relaxed(&next->carved);
        a.stride = link_stride(next);
    }
    return a;
}

/* Mark the blocks on `free` in `map`.  One walk; the block's index by the
 * page's multiply-shift division.  A link that is not a block of the page,
 * or a list longer than the page (a cycle), means the program wrote over a
 * free block: reported, never followed. */
static void map_free_blocks(const page_t *page, uint64_t *map, ahead_t *ahead)
{
    uint32_t left = page->capacity;
    for (block_t *b = page->free, *prev = NULL; b != NULL; prev = b, b = ebbi_block_next(b)) {
        if (left-- == 0 || !ebbi_page_holds_block(page, (uintptr_t)b))
            ebbi_safety_link_corrupted(prev != NULL ? (const void *)prev : (const void *)page);
        if (ahead->at < ahead->end) {
            __builtin_prefetch((const void *)ahead->at, 0, 3);
            ahead->at += ahead->stride;
        }
        uint64_t off = (uintptr_t)b - page->start;
        size_t i = (size_t)(((unsigned __int128)off * page->divisor_magic) >> 64);
        map[i / 64] |= (uint64_t)1 << (i % 64);
    }
}

/* Decommit the kernel pages of a page in use that hold no live block.
 * One walk of the free list marks the free blocks in a map; a kernel page
 * goes if the blocks over it are all marked; the list is then rebuilt from
 * the map in address order (which later allocations walk in order), without
 * the blocks that reach into a new hole.  (A block holed earlier is on no
 * list and unmarked: a kernel page it shares with another hole stays,
 * which only costs a little memory.)  `next`, if not NULL, is the page
 * the caller works on next (see ahead_t).  The kernel pages go into
 * `batch`, which the caller flushes with ebbi_page_purge_flush before the
 * page can take its holed blocks back. */
void ebbi_page_purge_sparse(page_t *page, const page_t *next, ebbi_decommit_t *batch)
{
    size_t ps = ebbi_process.page_size;
    if ((page->free_flags & PAGE_PARKED) || page->capacity == 0 || page->capacity > SPARSE_MAX_BLOCKS ||
        ps > EBB_SLICE_SIZE || EBB_SLICE_SIZE / ps > EBB_HOLE_BITS)
        return;
    ebbi_page_collect_all(page);
    if (page->free == NULL)
        return;
    segment_t *seg = ebbi_segment_of(page);
    unsigned shift = (unsigned)__builtin_ctzl(ps);
    uint32_t size = page->block_size, capacity = page->capacity;
    size_t carved = (size_t)capacity * size;
    unsigned pages = (unsigned)((carved + ps - 1) >> shift);
    /* The list runs through the page in the order the blocks were freed:
     * chased cold, each step waits for memory.  Streamed into the cache
     * first, in order, the page costs a few microseconds, not a hundred. */
    ebbi_page_prefetch(page);
    block_map_t map;
    memset(map, 0, ((capacity + 63) / 64) * sizeof map[0]);
    ahead_t ahead = ahead_of(next);
    map_free_blocks(page, map, &ahead);
    /* A kernel page goes if the blocks over it are all free. */
    enum { MAX_PAGES = EBB_SEGMENT_SIZE / 4096 };
    uint64_t fresh[MAX_PAGES / 64] = {0};
    unsigned holes_new = 0;
    for (unsigned k = 0; k < pages; k++) {
        size_t lo = ((size_t)k << shift) / size;
        size_t hi = (((size_t)(k + 1) << shift) - 1) / size;
        if (hi >= capacity)
            hi = capacity - 1;
        if (map_all_set(map, lo, hi) && !in_hole(seg, page->start + ((size_t)k << shift))) {
            fresh[k / 64] |= (uint64_t)1 << (k % 64);
            holes_new++;
        }
    }
    if (holes_new == 0)
        return;
    /* The list again, from the map, but for the blocks that reach into a
     * new hole (before the decommit, which would wipe the links). */
    block_t *first = NULL;
    uint32_t removed = 0;
    for (size_t i = capacity; i-- > 0;) {
        if (!map_get(map, i))
            continue;
        size_t off = i * size;
        bool holed = false;
        for (size_t k = off >> shift; k <= (off + size - 1) >> shift && !holed; k++)
            holed = map_get(fresh, k);
        if (holed) {
            removed++;
            continue;
        }
        block_t *b = (block_t *)(page->start + off);
        ebbi_block_set_next(b, first);
        first = b;
    }
    page->free = first;
    page->holed += removed;
    if (page->holed > 0)
        page->free_flags |= PAGE_HOLED; /* frees of this page are checked against its holes */
    /* Back to the kernel, adjacent pages as one range.  Should a call fail
     * (locked memory), the range is no hole after all. */
    batch->refused = holes_refused;
    for (unsigned k = 0; k < pages;) {
        if (!map_get(fresh, k)) {
            k++;
            continue;
        }
        unsigned run = k;
        while (k < pages && map_get(fresh, k))
            hole_set(seg, page->start + ((size_t)k++ << shift));
        ebbi_os_decommit_add(batch, (void *)(page->start + ((size_t)run << shift)), (size_t)(k - run) << shift);
    }
}

/* The sparse pages' ranges to the kernel; returns the bytes given back,
 * counted in the ledger's reclaimed total here. */
size_t ebbi_page_purge_flush(ebbi_decommit_t *batch)
{
    size_t given = ebbi_os_decommit_flush(batch);
    ebbi_account_reclaimed(given);
    return given;
}

/* The page has no free block left: its holed blocks go back on `free`
 * (their memory, touched again, comes back from the kernel as zero pages;
 * a block that reaches past its hole is not all zero, so none is taken
 * for zero).  Returns whether any came back. */
bool ebbi_page_refill_holes(page_t *page)
{
    if (page->holed == 0)
        return false;
    segment_t *seg = ebbi_segment_of(page);
    uint32_t size = page->block_size;
    block_t *list = page->free;
    uint32_t back = 0;
    for (uint32_t i = page->capacity; i-- > 0;) {
        uintptr_t p = page->start + (size_t)i * size;
        if (!overlaps_hole(seg, p, size))
            continue;
        ebbi_block_set_next((block_t *)p, list);
        list = (block_t *)p;
        back++;
    }
    ebbi_assert(back == page->holed);
    unsigned first = (unsigned)((page->start - (uintptr_t)seg) >> EBB_SLICE_SHIFT);
    for (unsigned s = first; s < first + page->slice_count; s++)
        ebbi_store_relaxed(&seg->holes[s], 0);
    page->free = list;
    page->holed = 0;
    page->free_flags &= (uint8_t)~PAGE_HOLED;
    page->free_is_zero = false;
    return true;
}

bool ebbi_page_block_holed(page_t *page, const void *block)
{
    return overlaps_hole(ebbi_segment_of(page), (uintptr_t)block, page->block_size);
}

/* ---- the debug build's validator --------------------------------------------- */

#if EBB_DEBUG
/* Count a list of the page's free blocks, checking each is a block of it;
 * more blocks than the page has carved is a cycle or a stray link. */
enum list_keys { KEYS_ANY, KEYS_SET };

static uint32_t list_count(const page_t *page, const block_t *b, enum list_keys keys)
{
    uint32_t n = 0;
    for (; b != NULL; b = ebbi_block_next(b)) {
        ebbi_assert(ebbi_page_holds_block(page, (uintptr_t)b));
        ebbi_assert(keys == KEYS_ANY || b->free_key == ebbi_free_key(page));
        n++;
        ebbi_assert(n <= page->capacity);
    }
    return n;
}

void ebbi_page_validate(page_t *page, enum ebbi_page_place place)
{
    segment_t *seg = ebbi_segment_of(page);
    ebbi_assert(page->kind == SLICE_PAGE && page->slice_back == 0);
    ebbi_assert(page->slice_count >= 1 && (unsigned)(page - seg->slices) + page->slice_count <= EBB_SLICES_PER_SEGMENT);
    ebbi_assert(page->start == ebbi_slice_address(seg, page));
    ebbi_assert(page->class_id < EBB_CLASS_COUNT && page->block_size == ebbi_classes[page->class_id].block_size);
    ebbi_assert(page->divisor_magic == ebbi_divisor_magic(page->block_size));
    ebbi_assert(page->capacity <= page->reserved);
    ebbi_assert(ebbi_load_relaxed(&page->carved) == page->capacity * page->block_size);
    ebbi_assert((size_t)page->reserved * page->block_size <= (size_t)page->slice_count << EBB_SLICE_SHIFT);
    for (unsigned i = 1; i < page->slice_count; i++) /* carved 0: free()'s fast path says no */
        ebbi_assert(page[i].kind == SLICE_PAGE && page[i].slice_back == i && ebbi_load_relaxed(&page[i].carved) == 0);
    ebbi_assert(((page->free_flags & PAGE_IN_FULL) != 0) == (place == EBBI_IN_FULL_QUEUE));
    ebbi_assert(((page->free_flags & PAGE_PARKABLE) != 0) == (page->class_id >= EBB_PARK_FIRST_CLASS));
    ebbi_assert(((page->free_flags & PAGE_HOLED) != 0) == (page->holed > 0));

    heap_t *owner = ebbi_load_relaxed(&page->owner);
    unsigned state = tf_state(ebbi_load_relaxed(&page->thread_free));
    if (place == EBBI_ABANDONED) {
        ebbi_assert(owner == NULL && state == TF_NEVER);
    } else {
        ebbi_assert(owner != NULL && ebbi_heap_is_mine(owner));
        ebbi_assert(page->counts == &owner->counts[page->class_id]);
        /* In a class queue, USE_DELAYED (set only as the page goes to the
         * full queue) is gone; DELAYING may linger until its remote free
         * resets it.  NEVER is set only by an abandoning owner. */
        if (place == EBBI_IN_CLASS_QUEUE)
            ebbi_assert(state == TF_NORMAL || state == TF_DELAYING);
        else if (place == EBBI_IN_FULL_QUEUE)
            ebbi_assert(state != TF_NEVER);
    }
    /* The reclaimer may be decommitting a parked page's memory: its lists
     * are not to be read (heap.c). */
    if (page->free_flags & PAGE_PARKED) {
        ebbi_assert(page->used == 0 && place == EBBI_IN_CLASS_QUEUE);
        return;
    }
    /* |free| + |local_free| + used + holed == capacity, where `used` still
     * counts the blocks other threads freed and the owner has not
     * collected, and `holed` the free blocks that reach into a hole. */
    uint32_t on_free = list_count(page, page->free, KEYS_ANY);
    uint32_t on_local = list_count(page, page->local_free, KEYS_SET);
    ebbi_assert(on_free + on_local + page->used + page->holed == page->capacity);
    uint32_t holed = 0;
    for (uint32_t i = 0; i < page->capacity && page->holed > 0; i++)
        holed += overlaps_hole(seg, page->start + (size_t)i * page->block_size, page->block_size);
    ebbi_assert(holed == page->holed);
    /* Other threads push onto thread_free meanwhile, at its head only: the
     * list below the head read here stays as it is. */
    uintptr_t tf = ebbi_load_acquire(&page->thread_free);
    uint32_t remote = list_count(page, tf_list(tf), KEYS_SET);
    ebbi_assert(remote == tf_count(tf) && remote <= page->used);
    if (place == EBBI_RELEASING)
        ebbi_assert(page->used == 0 && remote == 0);
}
#endif
