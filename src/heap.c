/* Thread heaps.
 *
 * Each thread allocates from its own heap: a queue of pages per size class
 * (the first page of each queue is what malloc pops from, reached in one
 * load through `direct` for sizes up to 1 KiB), and a queue of full pages.
 * Nothing here takes a lock except to get or return a page (arena.c) and
 * to get a heap for a new thread.
 *
 * A thread's first allocation gives it a heap from the pool (or a new
 * one), as does its first free into another thread's page; its exit (a pthread key destructor) returns its empty pages to the
 * arenas, leaves pages that still hold live blocks in their arena for
 * another thread to adopt, and puts the heap back in the pool.  Heaps are
 * never unmapped, so a stale pointer to one is always safe to follow.
 */
#include <string.h>

#include "internal.h"

page_t ebbi_page_empty;

heap_t ebbi_heap_empty = {
    .direct = {[0 ... EBB_DIRECT_SLOTS - 1] = &ebbi_page_empty},
};

__thread ebbi_thread_t ebbi_thread __attribute__((tls_model("initial-exec"))) = {.heap = &ebbi_heap_empty};
/* The thread's heap, also while another thread works on it. */
static __thread heap_t *tls_home __attribute__((tls_model("initial-exec")));
/* The heap this thread works on for its idle owner (the debug build's checks). */
static __thread heap_t *tls_sweeping __attribute__((tls_model("initial-exec")));
/* The thread's key destructor ran: a heap it takes after is never bound. */
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));

/* The handover's lock: one sweep at a time, none across a fork. */
static pthread_mutex_t handover_lock = PTHREAD_MUTEX_INITIALIZER;
/* -1: the kernel has no membarrier, no heap is ever taken. */
static _Atomic(int) handover_state;
/* Sweeps of idle threads' heaps, and heaps left alone for a call in progress. */
static _Atomic(uint64_t) heaps_swept, heaps_swept_busy;
/* Some heap changed since the last sweep looked (reclaim.c keeps a deadline). */
_Atomic(bool) ebbi_heaps_changed;

static struct {
    pthread_mutex_t lock;
    heap_t *pool;      /* heaps without a thread */
    _Atomic(heap_t *) all; /* every heap ever made (read without the lock) */
    uint32_t next_id;
} heaps = {.lock = PTHREAD_MUTEX_INITIALIZER};

heap_t *ebbi_heaps_first(void)
{
    return ebbi_load_acquire(&heaps.all);
}

/* ---- page queues ----------------------------------------------------------- */

static void queue_push_front(page_queue_t *q, page_t *page)
{
    page->prev = NULL;
    page->next = q->first;
    if (q->first != NULL)
        q->first->prev = page;
    else
        q->last = page;
    q->first = page;
}

static void queue_push_back(page_queue_t *q, page_t *page)
{
    page->next = NULL;
    page->prev = q->last;
    if (q->last != NULL)
        q->last->next = page;
    else
        q->first = page;
    q->last = page;
}

static void queue_remove(page_queue_t *q, page_t *page)
{
    ebbi_assert((page->prev == NULL) == (q->first == page) && (page->next == NULL) == (q->last == page));
    if (page->prev != NULL)
        page->prev->next = page->next;
    else
        q->first = page->next;
    if (page->next != NULL)
        page->next->prev = page->prev;
    else
        q->last = page->prev;
    page->next = page->prev = NULL;
}

/* The direct slots of a class follow the first page of its queue. */
void ebbi_heap_direct_update(heap_t *heap, unsigned class_id)
{
    uint32_t size = ebbi_classes[class_id].block_size;
    if (size > EBB_DIRECT_MAX)
        return;
    page_t *page = heap->queues[class_id].first;
    /* Secure and guard modes take every allocation through the generic
     * path (encoded links, canaries, guarded blocks). */
    if (page == NULL || (ebbi_safety & (SAFETY_SECURE | SAFETY_GUARD_ALL)))
        page = &ebbi_page_empty;
    unsigned lo = class_id == 0 ? 0 : ebbi_classes[class_id - 1].block_size / EBB_ALIGNMENT + 1;
    unsigned hi = size / EBB_ALIGNMENT;
    for (unsigned i = lo; i <= hi; i++)
        heap->direct[i] = page;
}

/* Class queues.  Besides the links, they keep PAGE_NOT_FIRST exact (free()
 * releases an emptied page only if it is not the first of its queue) and
 * the direct slots pointing at the first page. */
static void class_first_changed(heap_t *heap, unsigned c)
{
    page_t *first = heap->queues[c].first;
    if (first != NULL)
        first->free_flags &= (uint8_t)~PAGE_NOT_FIRST;
    ebbi_heap_direct_update(heap, c);
}

static void class_push_front(heap_t *heap, page_t *page)
{
    page_queue_t *q = &heap->queues[page->class_id];
    if (q->first != NULL)
        q->first->free_flags |= PAGE_NOT_FIRST;
    queue_push_front(q, page);
    class_first_changed(heap, page->class_id);
}

static void class_push_back(heap_t *heap, page_t *page)
{
    page_queue_t *q = &heap->queues[page->class_id];
    queue_push_back(q, page);
    if (q->first == page)
        class_first_changed(heap, page->class_id);
    else
        page->free_flags |= PAGE_NOT_FIRST;
}

static void class_remove(heap_t *heap, page_t *page)
{
    page_queue_t *q = &heap->queues[page->class_id];
    bool was_first = q->first == page;
    queue_remove(q, page);
    page->free_flags &= (uint8_t)~PAGE_NOT_FIRST;
    if (was_first)
        class_first_changed(heap, page->class_id);
}

static void heap_reset_queues(heap_t *heap)
{
    for (unsigned i = 0; i < EBB_DIRECT_SLOTS; i++)
        heap->direct[i] = &ebbi_page_empty;
    memset(heap->queues, 0, sizeof heap->queues);
    memset(&heap->full, 0, sizeof heap->full);
}

/* ---- freeing into our own pages -------------------------------------------- */

static void page_to_full(heap_t *heap, page_t *page)
{
    ebbi_assert(!(page->free_flags & PAGE_IN_FULL) && page->free == NULL);
    class_remove(heap, page);
    page->free_flags |= PAGE_IN_FULL;
    queue_push_back(&heap->full, page);
}

static void page_unfull(heap_t *heap, page_t *page)
{
    ebbi_assert(page->free_flags & PAGE_IN_FULL);
    ebbi_page_clear_full_mark(page);
    queue_remove(&heap->full, page);
    page->free_flags &= (uint8_t)~PAGE_IN_FULL;
    class_push_back(heap, page);
}

static void page_release(heap_t *heap, page_t *page)
{
    ebbi_page_validate(page, EBBI_RELEASING);
    class_remove(heap, page);
    ebbi_arena_free_page(page);
}

/* Wait, spinning a little then yielding, until another thread stores
 * `value` into the flag (sequentially consistent: the handover's flags
 * need it, the parked page's `purged` is content with less). */
static void wait_until(_Atomic(uint8_t) *flag, uint8_t value)
{
    for (unsigned spins = 0; ebbi_load_seq_cst(flag) != value; spins++) {
        if (spins < 64)
            ebbi_spin_pause();
        else
            ebbi_os_yield();
    }
}

/* ---- parked pages -------------------------------------------------------------- */

/* The first page of a class stays in its queue when it empties, so that a
 * loop allocating and freeing one block does not give a page back and take
 * it again each time.  For the classes above EBB_DIRECT_MAX (which malloc
 * reaches only through the slow path) the emptied first page is also
 * parked: offered to the reclaimer in the heap's slot for its class, so
 * that a thread that frees everything and goes idle does not keep a page
 * per class resident.  The slot is the handover: whoever empties it owns
 * the page's memory.  The reclaimer that takes a page decommits it and
 * sets `purged`; the page stays in its owner's queue, and the owner, when
 * it unparks the page, finds its slot empty, waits for `purged`, and starts
 * the page afresh.  A parked page holds no live block, so only the
 * allocation path and the heap's collection look at it. */

/* An empty page whose memory was decommitted starts afresh: no block
 * carved, its tail zero if `free_is_zero` says so.  A block another thread
 * freed into it meanwhile can only be a misuse (the page held no live
 * block): dropped. */
static void page_restart(page_t *page)
{
    ebbi_store_relaxed(&page->thread_free, 0);
    page->free = NULL;
    page->local_free = NULL;
    page->capacity = 0;
    page->holed = 0; /* the purge cleared the holes */
    page->free_flags &= (uint8_t)~PAGE_HOLED;
    ebbi_store_relaxed(&page->carved, 0);
    page->is_zero_at_init = page->free_is_zero;
}

/* Decommit an empty page's touched memory, counted as reclaimed; its
 * `free_is_zero` says whether it now reads as zero.  Returns the bytes. */
static size_t page_decommit(page_t *page)
{
    bool is_zero = false;
    size_t bytes = ebbi_arena_purge_page(page, &is_zero);
    ebbi_account_reclaimed(bytes);
    page->free_is_zero = is_zero;
    return bytes;
}

/* A loop that allocates and frees one block parks and unparks its page
 * each time: both stay a few instructions — no clock reading (the page is
 * stamped with the reclaimer's pass count), no counter, and the reclaimer
 * is told only when it has no deadline. */
static void page_park(heap_t *heap, page_t *page)
{
    unsigned slot = page->class_id - EBB_PARK_FIRST_CLASS;
    /* Its free blocks on `free` now (a few: these classes have few blocks
     * a page), so that unparking it is all malloc needs. */
    ebbi_page_collect(page);
    page->free_flags |= PAGE_PARKED;
    ebbi_store_relaxed(&heap->parked_epoch[slot], ebbi_load_relaxed(&ebbi_pass_epoch));
    /* Sequentially consistent, against the reclaimer's pass: either its
     * scan after setting its next deadline sees this page, or this load
     * sees that deadline (reclaim.c, recompute_due). */
    ebbi_store_seq_cst(&heap->parked[slot], page);
    if (unlikely(ebbi_load_seq_cst(&ebbi_due_ns) == EBBI_NEVER))
        ebbi_account_freed(ebbi_os_now_ns());
}

/* Owner: take a parked page back, whole or as the reclaimer left it. */
static void page_unpark(heap_t *heap, page_t *page)
{
    unsigned slot = page->class_id - EBB_PARK_FIRST_CLASS;
    page->free_flags &= (uint8_t)~PAGE_PARKED;
    if (ebbi_exchange_acq_rel(&heap->parked[slot], NULL) == page)
        return;
    /* Taken: its memory is being decommitted, the lists in it are gone. */
    wait_until(&page->purged, 1);
    ebbi_store_relaxed(&page->purged, 0);
    /* The reclaimer set free_is_zero before `purged`. */
    page_restart(page);
}

/* A pass that began at `now`: decommit the pages parked before `cutoff_ns`. */
size_t ebbi_heaps_purge_parked(uint64_t cutoff_ns, uint64_t now)
{
    size_t given = 0;
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next) {
        for (unsigned i = 0; i < EBB_PARK_CLASSES; i++) {
            if (ebbi_load_relaxed(&h->parked[i]) == NULL ||
                ebbi_account_parked_by(ebbi_load_relaxed(&h->parked_epoch[i]), now) >= cutoff_ns)
                continue;
            page_t *page = ebbi_exchange_acq_rel(&h->parked[i], NULL);
            if (page == NULL)
                continue; /* its owner took it back */
            given += page_decommit(page);
            ebbi_store_release(&page->purged, 1);
        }
    }
    return given;
}

/* A pass that began at `now`: by when the oldest parked page was parked
 * (0: none is).  Every slot is read, sequentially consistent: see page_park. */
uint64_t ebbi_heaps_oldest_parked_ns(uint64_t now)
{
    uint64_t oldest = 0;
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next) {
        for (unsigned i = 0; i < EBB_PARK_CLASSES; i++) {
            if (ebbi_load_seq_cst(&h->parked[i]) == NULL)
                continue;
            uint64_t since = ebbi_account_parked_by(ebbi_load_relaxed(&h->parked_epoch[i]), now);
            if (oldest == 0 || since < oldest)
                oldest = since;
        }
    }
    return oldest;
}

/* After a local free into a page that was full, or that may now be empty
 * (PAGE_ON_EMPTY).  An emptied page goes back to its arena, unless it is the
 * first of its class (parked, if its class is one of those). */
static void after_local_free(heap_t *heap, page_t *page)
{
    if (page->free_flags & PAGE_IN_FULL)
        page_unfull(heap, page);
    if (page->used != 0)
        return;
    if (page->free_flags & PAGE_NOT_FIRST) {
        page_release(heap, page);
        ebbi_account_tick();
    } else if (page->free_flags & PAGE_PARKABLE) {
        page_park(heap, page);
    }
}

/* Push a block on its page's local list (the free was counted already). */
static void free_local(heap_t *heap, page_t *page, block_t *block)
{
    ebbi_assert(page->used > 0 && ebbi_load_relaxed(&page->owner) == heap);
    ebbi_block_set_next(block, page->local_free);
    block->free_key = ebbi_free_key(page);
    page->local_free = block;
    page->used--;
    if (page->free_flags & (PAGE_IN_FULL | PAGE_ON_EMPTY))
        after_local_free(heap, page);
}

/* A block just handed out by this heap taken back (the profiler moved
 * its sample elsewhere): freed as the program would, but within the call,
 * and its allocation uncounted (the statistics count the sample's). */
void ebbi_heap_take_back(heap_t *heap, page_t *page, block_t *block)
{
    if (page->free_flags & PAGE_SAFE)
        ebbi_safety_on_free(page, block);
    ebbi_counter_add(&page->counts->allocs, UINT64_MAX); /* minus one, modulo 2^64 */
    free_local(heap, page, block);
}

/* free() of a block of one of our pages whose free_flags are set: a safety
 * mode's check or zeroing, then the push and what follows it.  The free
 * is the last act of an allocator call: this ends the call (alloc.c). */
void ebbi_heap_free_local(heap_t *heap, page_t *page, block_t *block)
{
    /* No block of a parked page is live; a holed block's key word went
     * with its kernel page: the hole says it. */
    if (unlikely(page->free_flags & (PAGE_PARKED | PAGE_HOLED)) &&
        ((page->free_flags & PAGE_PARKED) || ebbi_page_block_holed(page, block))) {
        ebbi_misuse("double free", block);
        ebbi_call_end();
        return;
    }
    if (page->free_flags & PAGE_SAMPLES)
        ebbi_profile_free_in_page(block);
    if (page->free_flags & PAGE_SAFE)
        ebbi_safety_on_free(page, block);
    ebbi_counter_add(&page->counts->frees, 1);
    free_local(heap, page, block);
    ebbi_call_end();
    ebbi_heaps_touch();
}

void ebbi_heap_page_emptied(heap_t *heap, page_t *page)
{
    ebbi_assert(page->used == 0 && !(page->free_flags & PAGE_IN_FULL));
    after_local_free(heap, page);
    ebbi_call_end();
    ebbi_heaps_touch();
}

/* Take the blocks other threads freed into our full pages.  A block whose
 * page is not ours (it reached a heap that was abandoned, see page.c) is
 * sent on to its page. */
static void heap_drain_delayed(heap_t *heap)
{
    block_t *block = ebbi_exchange_acq_rel(&heap->delayed_free, NULL);
    while (block != NULL) {
        block_t *next = ebbi_block_next(block);
        if (next != NULL && (ebbi_safety & SAFETY_SECURE)) {
            page_t *owner_page;
            if (ebbi_segment_lookup((uintptr_t)next, &owner_page) == NULL)
                ebbi_safety_link_corrupted(block);
        }
        segment_t *seg = ebbi_segment_of(block);
        page_t *page = ebbi_page_of(seg, (uintptr_t)block);
        if (ebbi_load_relaxed(&page->owner) == heap)
            free_local(heap, page, block);
        else
            ebbi_page_free_remote(page, block);
        block = next;
    }
}

/* ---- frees into other threads' pages, in batches -------------------------------- */

/* A block freed into another heap's page waits in this heap's batch for
 * that page, and the batch goes to the page in one compare-and-swap, its
 * count in the page's word (page.c), once it is big enough
 * (EBB_REMOTE_BATCH_*), when another page needs its slot, and whenever
 * the heap is collected (malloc_trim, thread exit, a sweep of an idle
 * thread's heap).  A block in a batch still counts as used in its page, so
 * the page stays until the batch reaches it; its key word is set, so a
 * second free of it is seen.  The heap's holder only (the handover). */

/* The page's slice in its segment (page entries are 128 bytes apart):
 * the pages a thread frees into at once are mostly of one segment. */
static inline unsigned remote_slot(const page_t *page)
{
    return (unsigned)((uintptr_t)page >> 7) & (EBB_REMOTE_SLOTS - 1);
}

static EBBI_NOINLINE void remote_send(heap_t *heap, unsigned i)
{
    remote_batch_t *b = &heap->remote[i];
    ebbi_page_free_remote_list(b->page, b->head, b->tail, b->count);
    b->page = NULL;
    heap->remote_mask &= ~(1u << i);
}

static void remote_send_all(heap_t *heap)
{
    for (uint32_t m = heap->remote_mask; m != 0; m &= m - 1)
        remote_send(heap, (unsigned)__builtin_ctz(m));
}

/* The slot holds another page's batch (sent first), or none: a new batch. */
static EBBI_NOINLINE void remote_start(heap_t *heap, unsigned i, page_t *page, block_t *block)
{
    remote_batch_t *b = &heap->remote[i];
    if (b->page != NULL)
        remote_send(heap, i);
    ebbi_block_set_next(block, NULL);
    b->page = page;
    b->head = b->tail = block;
    b->count = 1;
    b->bytes = ebbi_classes[page->class_id].block_size;
    heap->remote_mask |= 1u << i;
    if (b->bytes >= EBB_REMOTE_BATCH_BYTES)
        remote_send(heap, i);
}

/* Its key word already set.  A leaf but for the tail calls. */
void ebbi_heap_free_remote(heap_t *heap, page_t *page, block_t *block)
{
    unsigned i = remote_slot(page);
    remote_batch_t *b = &heap->remote[i];
    if (unlikely(b->page != page)) {
        remote_start(heap, i, page, block);
        return;
    }
    /* The batch's words first: C says the block might alias them. */
    block_t *head = b->head;
    /* The class's size, not the page's: that is on the entry's second
     * line, which a remote free does not otherwise touch. */
    uint32_t count = b->count + 1, bytes = b->bytes + ebbi_classes[page->class_id].block_size;
    b->head = block;
    b->count = count;
    b->bytes = bytes;
    ebbi_block_set_next(block, head);
    if (unlikely(count >= EBB_REMOTE_BATCH_BLOCKS || bytes >= EBB_REMOTE_BATCH_BYTES))
        remote_send(heap, i);
}

/* ---- finding a page with free blocks ------------------------------------------ */

static bool page_has_room(page_t *page)
{
    if (page->free != NULL)
        return true;
    /* A sparse page's holed blocks first, before more of its tail. */
    if (ebbi_page_refill_holes(page))
        return true;
    if (page->capacity < page->reserved) {
        ebbi_page_extend(page);
        return true;
    }
    return false;
}

static void heap_adopt(heap_t *heap, page_t *page)
{
    ebbi_store_relaxed(&page->owner, heap);
    page->counts = &heap->counts[page->class_id];
    /* As ebbi_page_init set them, its holes, and its samples. */
    page->free_flags &= PAGE_PARKABLE | PAGE_SAFE | PAGE_HOLED | PAGE_SAMPLES;
    ebbi_page_allow_delayed(page);
    ebbi_page_collect(page);
}

/* The emptied first page of a class up to EBB_DIRECT_MAX stays in its
 * queue (the fast paths serve these classes, and free() does not look at
 * it).  So that a program whose sizes move on (a phase of 16-byte blocks,
 * then one of 64-byte blocks) does not keep the memory of each class it
 * no longer uses, the owner looks at these classes on its malloc slow
 * path, once a delay at most: a class that made no allocation since the
 * last look and whose first page is empty has that page's memory
 * decommitted, as the reclaimer does to a parked page, and the page starts
 * afresh where it is (moving it to the arena would scatter the classes
 * that come back over other spans).  The class's count of allocations not
 * moving is what proves the page stayed empty since the last look, with
 * nothing on the fast paths.  Idle threads' heaps are the sweep's (the
 * handover). */
#define IDLE_LOOK_TICKS 64 /* slow paths between two readings of the clock */

static EBBI_NOINLINE void purge_idle_firsts(heap_t *heap)
{
    heap->idle_ticks = IDLE_LOOK_TICKS;
    uint64_t now = ebbi_os_now_ns();
    if (now - heap->idle_look_ns < ebbi_delay_ns())
        return;
    bool looked_before = heap->idle_look_ns != 0;
    heap->idle_look_ns = now;
    for (unsigned c = 0; c < EBB_PARK_FIRST_CLASS; c++) {
        uint64_t allocs = ebbi_load_relaxed(&heap->counts[c].allocs);
        page_t *page = heap->queues[c].first;
        if (looked_before && page != NULL && page->used == 0 && page->capacity != 0 &&
            allocs == heap->idle_allocs[c]) {
            page_decommit(page);
            page_restart(page);
        }
        heap->idle_allocs[c] = allocs;
    }
}

/* A memory limit leaves no room: the emptied first pages of every class,
 * kept for reuse in their class (parked ones too, which the reclaimer
 * decommits only once their delay has passed), go back to the arena before
 * the heap takes a new page, which may then be one of them rather than
 * fresh memory.  Only first pages can be empty: a page behind them goes
 * back as it empties. */
static EBBI_NOINLINE void release_empty_firsts(heap_t *heap)
{
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_t *page = heap->queues[c].first;
        if (page == NULL)
            continue;
        if (page->free_flags & PAGE_PARKED)
            page_unpark(heap, page);
        ebbi_page_collect(page);
        if (page->used == 0)
            page_release(heap, page);
    }
}

static page_t *heap_find_page(heap_t *heap, unsigned c)
{
    ebbi_account_tick();
    if (unlikely(heap->idle_ticks-- == 0))
        purge_idle_firsts(heap);
    if (ebbi_validate_due(&heap->validate_ticks))
        ebbi_heap_validate(heap);
    page_queue_t *q = &heap->queues[c];
    page_t *page = q->first;
    while (page != NULL) {
        ebbi_page_collect(page);
        ebbi_page_validate(page, EBBI_IN_CLASS_QUEUE);
        if (page_has_room(page))
            goto found;
        page_t *next = page->next;
        if (!ebbi_page_try_mark_full(page))
            continue; /* remote frees arrived: collect them */
        page_to_full(heap, page);
        page = next;
    }
    while ((page = ebbi_arena_take_abandoned(heap->arena, c)) != NULL) {
        heap_adopt(heap, page);
        class_push_front(heap, page);
        for (;;) {
            if (page_has_room(page))
                return page;
            if (ebbi_page_try_mark_full(page)) {
                page_to_full(heap, page);
                break;
            }
            ebbi_page_collect(page);
        }
    }
    if (unlikely(ebbi_load_relaxed(&ebbi_limit_tight)))
        release_empty_firsts(heap);
    bool is_zero = false;
    page = ebbi_arena_alloc_page(heap->arena, c, &is_zero);
    if (page == NULL)
        return NULL;
    ebbi_page_init(page, heap, c, is_zero);
    ebbi_page_extend(page);
    class_push_front(heap, page);
    return page;
found:
    if (q->first != page) {
        class_remove(heap, page);
        class_push_front(heap, page);
    }
    return page;
}

/* Find a page of class c with a free block, giving back reserves once if
 * memory runs out. */
static page_t *page_for_class(heap_t *heap, unsigned c)
{
    page_t *page = heap->queues[c].first;
    if (page != NULL && unlikely(page->free_flags & PAGE_PARKED))
        page_unpark(heap, page);
    if (page == NULL || page->free == NULL) {
        page = heap_find_page(heap, c);
        if (page == NULL && ebbi_release_reserves() > 0)
            page = heap_find_page(heap, c);
    }
    return page;
}

/* The generic path of the secure and guard modes. */
static EBBI_NOINLINE void *heap_alloc_safe(heap_t *heap, size_t size, bool zero, const void *site)
{
    if ((ebbi_safety & SAFETY_GUARD_ALL) ||
        ((ebbi_safety & SAFETY_GUARD_SAMPLE) &&
         ebbi_guard_sample(heap, size > EBB_PAGE_BLOCK_MAX ? EBB_CLASS_COUNT : ebbi_size_class(size)))) {
        void *p = ebbi_guard_alloc(heap, size, EBB_ALIGNMENT, site);
        if (p != NULL || size > (size_t)PTRDIFF_MAX / 2) {
            if (p == NULL)
                errno = ENOMEM;
            return p; /* fresh pages: zero already */
        }
        if (ebbi_safety & SAFETY_GUARD_ALL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    if (size == 0 && (ebbi_safety & SAFETY_SECURE)) {
        void *p = ebbi_zero_alloc(); /* no byte of it accessible */
        if (p != NULL)
            return p;
    }
    size_t need = size;
    if ((ebbi_safety & SAFETY_SECURE) && __builtin_add_overflow(size, SECURE_TAIL, &need)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t own_mapping = (size_t)ebbi_option(EBB_OPTION_MMAP_THRESHOLD);
    if (need > EBB_PAGE_BLOCK_MAX || (own_mapping != 0 && size >= own_mapping))
        return ebbi_huge_alloc(heap, size, 0, zero);
    page_t *page = page_for_class(heap, ebbi_size_class(need));
    if (page == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (!(ebbi_safety & SAFETY_SECURE))
        return ebbi_page_pop(page, size, zero);
    /* malloc(0): no byte of it may be written (the slack says so at its
     * free). */
    return ebbi_secure_take(page, page->free, size);
}

/* Secure mode's common case, without the generic path: a small block
 * from the first page of its class, which has one ready.  NULL otherwise
 * (the generic path then does all it must, zero-byte blocks included). */
static inline void *secure_alloc_small(heap_t *heap, size_t size)
{
    if (size - 1 >= EBB_DIRECT_MAX - SECURE_TAIL) /* size 0 too */
        return NULL;
    page_t *page = heap->queues[ebbi_size_class(size + SECURE_TAIL)].first;
    if (page == NULL || (page->free_flags & PAGE_PARKED) || !ebbi_page_head_ok(page, page->free))
        return NULL;
    return ebbi_secure_take(page, page->free, size);
}

static inline __attribute__((always_inline)) void *heap_alloc_generic(heap_t *heap, size_t size, bool zero)
{
    if (unlikely(ebbi_load_relaxed(&ebbi_service_wanted))) {
        /* Creating a thread allocates: calls of their own, which end this
         * one.  It begins again, and the heap is read again (it may have
         * been taken meanwhile). */
        ebbi_service_start();
        ebbi_call_begin();
        heap = ebbi_thread_heap();
    }
    if (unlikely(heap == &ebbi_heap_empty)) {
        heap = ebbi_heap_for_thread();
        if (heap == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    if (ebbi_load_relaxed(&heap->delayed_free) != NULL)
        heap_drain_delayed(heap);
    ebbi_heaps_touch();
    if (unlikely(ebbi_safety & (SAFETY_SECURE | SAFETY_GUARD_ALL | SAFETY_GUARD_SAMPLE)))
        return heap_alloc_safe(heap, size, zero, __builtin_return_address(0));
    size_t own_mapping = (size_t)ebbi_option(EBB_OPTION_MMAP_THRESHOLD);
    if (size > EBB_PAGE_BLOCK_MAX || (own_mapping != 0 && size >= own_mapping)) {
        void *p = ebbi_huge_alloc(heap, size, 0, zero);
        if (p == NULL && size <= (size_t)PTRDIFF_MAX && ebbi_release_reserves() > 0)
            p = ebbi_huge_alloc(heap, size, 0, zero);
        return p;
    }
    page_t *page = page_for_class(heap, ebbi_size_class(size));
    if (page == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return ebbi_page_pop(page, size, zero);
}

/* The profiler's draw (profile.c, ebbi_profile_alloc), its common case
 * here: a block of a class in the default mode whose bytes do not end the
 * gap only counts down, without the call (the slow paths of a busy
 * program are many).  False: the profiler must look. */
static inline bool profile_gap_goes_on(heap_t *heap, size_t size)
{
    if (ebbi_safety != 0 || size - 1 >= EBB_PAGE_BLOCK_MAX || heap->profile_countdown == 0 ||
        ebbi_option(EBB_OPTION_MMAP_THRESHOLD) != 0)
        return false;
    unsigned c = ebbi_size_class(size);
    uint64_t bytes = ebbi_load_relaxed(&heap->counts[c].allocs) * ebbi_classes[c].block_size;
    int64_t left = heap->profile_countdown - (int64_t)(bytes - heap->profile_seen[c]);
    if (left <= 0)
        return false;
    heap->profile_countdown = left;
    heap->profile_seen[c] = bytes;
    return true;
}

static EBBI_NOINLINE void *alloc_generic(size_t size, heap_t *heap, unsigned how)
{
    bool zero = how & EBBI_ALLOC_ZERO;
    void *p = heap_alloc_generic(heap, size, zero);
    if (unlikely(ebbi_profiling) && p != NULL && !profile_gap_goes_on(ebbi_thread_heap(), size))
        p = ebbi_profile_alloc(p, size, zero);
    if (how & EBBI_ALLOC_ENDS_CALL)
        ebbi_call_end();
    return p;
}

void *ebbi_heap_alloc_generic(size_t size, heap_t *heap, unsigned how)
{
    /* Secure mode without guards or the profiler takes its common case
     * here, in a function of its own (a lighter call).  Its blocks read
     * as zero: calloc's too. */
    if ((ebbi_safety & ~SAFETY_ZERO) == SAFETY_SECURE && likely(!ebbi_profiling)) {
        void *p = secure_alloc_small(heap, size);
        if (p != NULL) {
            if (how & EBBI_ALLOC_ENDS_CALL)
                ebbi_call_end();
            return p;
        }
    }
    return alloc_generic(size, heap, how);
}

/* Out of memory: give back what is held for reuse (the arenas' spare
 * segments, their abandoned empty pages, the huge-block cache), so that a
 * retry can map afresh.  Returns the bytes given back. */
size_t ebbi_release_reserves(void)
{
    return ebbi_reclaim_notify(EBBI_EVENT_OUT_OF_MEMORY, 0);
}

/* ---- collecting, abandoning ------------------------------------------------------ */

/* Give back every empty page of this heap (malloc_trim, thread exit).  With
 * EBBI_COLLECT_ABANDON, also leave the pages that still hold live blocks to
 * the arenas, for other threads to adopt.  Else (malloc_trim, a sweep)
 * decommit the free kernel pages of the pages that still hold live blocks
 * (sparse pages), each right after its collection, while it is in the
 * cache; a sweep stops that when the owner wants its heap back, and leaves
 * parked pages parked: the reclaimer decommits them in place, and a late
 * double free into one is still seen.  Returns the bytes the sparse pages
 * gave back. */
/* The bytes of the freed blocks in the heap's pages that still hold live
 * blocks (counted from `used`, which the owner keeps; remote frees not
 * yet taken in count as live). */
static uint64_t heap_freed_in_live_pages(const heap_t *heap)
{
    uint64_t bytes = 0;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        for (const page_t *p = heap->queues[c].first; p != NULL; p = p->next)
            if (p->used > 0)
                bytes += (uint64_t)(p->capacity - p->used) * p->block_size;
    return bytes;
}

size_t ebbi_heap_collect(heap_t *heap, ebbi_collect_t how)
{
    ebbi_decommit_t batch = {0};
    bool abandon_all = how == EBBI_COLLECT_ABANDON;
    ebbi_heap_validate(heap);
    remote_send_all(heap);
    if (abandon_all) {
        /* From here on no remote free notifies this heap... */
        for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
            for (page_t *p = heap->queues[c].first; p != NULL; p = p->next)
                ebbi_page_forbid_delayed(p);
        for (page_t *p = heap->full.first; p != NULL; p = p->next)
            ebbi_page_forbid_delayed(p);
    }
    /* ...so after this drain nothing more arrives on the delayed list. */
    heap_drain_delayed(heap);

    for (page_t *p = heap->full.first, *next; p != NULL; p = next) {
        next = p->next;
        ebbi_page_collect(p);
        if (p->free != NULL || abandon_all)
            page_unfull(heap, p);
    }
    /* A thread that exits holding much freed memory among its live blocks
     * (not a short-lived worker: it kept EBB_EXIT_PURGE_MIN and more)
     * gives back their free kernel pages itself, as it leaves, rather
     * than leaving them to the reclaimer's quiet rule.  Before any page is
     * abandoned: once another thread may adopt one, its holes may be
     * refilled under the batch. */
    if (abandon_all && heap_freed_in_live_pages(heap) >= EBB_EXIT_PURGE_MIN) {
        for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
            for (page_t *p = heap->queues[c].first; p != NULL; p = p->next)
                if (p->used > 0) /* a parked page the purge leaves alone itself */
                    ebbi_page_purge_sparse(p, p->next, &batch);
        ebbi_page_purge_flush(&batch);
    }
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_queue_t *q = &heap->queues[c];
        for (page_t *p = q->first, *next; p != NULL; p = next) {
            next = p->next;
            /* Parked now, not only before: the drain above may have
             * emptied the first page of a class, which parks it. */
            if (p->free_flags & PAGE_PARKED) {
                if (how == EBBI_COLLECT_SWEEP)
                    continue;
                page_unpark(heap, p);
            }
            /* A long list of remote frees, chased cold, costs 100 ns a
             * block; streamed in first, the page costs microseconds. */
            if (how != EBBI_COLLECT_ABANDON && ebbi_page_remote_waiting(p))
                ebbi_page_prefetch(p);
            ebbi_page_collect(p);
            if (p->used == 0) {
                page_release(heap, p);
            } else if (abandon_all) {
                class_remove(heap, p);
                ebbi_store_relaxed(&p->owner, NULL);
                ebbi_arena_abandon_page(p);
            } else if (!ebbi_load_relaxed(&heap->want_back)) {
                ebbi_page_purge_sparse(p, next, &batch);
            }
        }
    }
    /* While the heap is still ours: its pages' holes cannot be refilled. */
    size_t given = ebbi_page_purge_flush(&batch);
    ebbi_heap_validate(heap);
    return given;
}

/* ---- the handover: an idle thread's heap, worked on by another ---------------------- */

/* A thread that stops calling the allocator (it sleeps, blocks, or works
 * elsewhere) would keep what its heap holds free: its sparse pages, its
 * emptied first pages, the blocks other threads freed into its pages.  The
 * reclaimer (or malloc_trim in another thread) takes such a heap, does what
 * the owner's malloc_trim would do, and gives it back.  The owner's fast
 * paths stay two plain stores dearer (ebbi_call_begin/end); the cost of the
 * exclusion is on the taker, a membarrier(2) per batch of heaps.
 *
 * The protocol (an asymmetric Dekker; docs/ARCHITECTURE.md has the proof):
 *   owner, each call:  busy = 1;  heap = tls_heap;  ...;  busy = 0 (release)
 *   taker:             taken = PENDING;  tls_heap = &ebbi_heap_empty;
 *                      membarrier();  if busy == 0 and the claim
 *                      PENDING -> CLAIMED succeeds, the heap is the
 *                      taker's until it stores tls_heap = heap, then NONE.
 * The membarrier runs a full barrier on every running thread of the
 * process: an owner whose `busy = 1` came before it is seen as busy; one
 * whose `busy = 1` came after it reads &ebbi_heap_empty, and its call goes
 * to the slow path, where it undoes a take not yet claimed, or waits for a
 * claimed one to end (asking for the heap back with `want_back`, which the
 * taker reads between pages).  A free meanwhile goes to the page as a
 * remote free.  Without membarrier (old kernels, seccomp, valgrind) no
 * heap is ever taken. */

/* heap->taken: NONE; PENDING (the thread's word holds &ebbi_heap_empty,
 * the sweep has not claimed it: its owner may undo it); CLAIMED (the
 * sweeper works on it or gives it back, and sets NONE when done). */
enum { TAKE_NONE, TAKE_PENDING, TAKE_CLAIMED };

/* Owner, inside a call, its heap taken: a take not claimed yet is undone
 * here (PENDING -> NONE, and the thread's word put back); a claimed one is
 * waited out, asking for the heap back between pages. */
static heap_t *heap_take_back(heap_t *heap)
{
    uint8_t expected = TAKE_PENDING;
    if (ebbi_cas_strong_seq_cst(&heap->taken, &expected, TAKE_NONE)) {
        ebbi_store_release(&ebbi_thread.heap, heap);
        return heap;
    }
    ebbi_store_relaxed(&heap->want_back, 1);
    wait_until(&heap->taken, TAKE_NONE);
    ebbi_store_relaxed(&heap->want_back, 0);
    return heap;
}

/* Bind the heap to this thread's words, so that it may be taken while the
 * thread is idle, or unbind it (NULL).  Only a thread whose exit unbinds
 * (its key destructor runs) or that never exits (the initial thread) is
 * bound: the sweeper reads and writes the thread's TLS.  Unbinding waits
 * out a sweep that read the binding before it went: the sweeper marks the
 * heap in its batch and taken, then reads the binding again; the owner
 * clears the binding, then waits for both marks to clear (sequentially
 * consistent, all).  `in_batch` outlasts `taken`: an owner may undo a
 * take while the sweeper has still to read its `busy`. */
static void heap_bind(heap_t *heap, heap_t *home)
{
    ebbi_store_seq_cst(&heap->thread, home != NULL ? &ebbi_thread : NULL);
    if (home == NULL) {
        wait_until(&heap->taken, TAKE_NONE);
        wait_until(&heap->in_batch, 0);
    }
    tls_home = home;
}

/* The owner's, unless a sweep works on it; or the one this thread sweeps.
 * (The owner may see &ebbi_heap_empty for a moment inside a call: a sweep
 * that took the heap and found the owner busy gives it back untouched.) */
bool ebbi_heap_is_mine(const heap_t *heap)
{
    if (heap == tls_sweeping)
        return true;
    return heap == tls_home ? !ebbi_load_relaxed(&heap->sweeping) : heap == ebbi_thread_heap();
}

void ebbi_heaps_note_change(void)
{
    if (!ebbi_exchange_seq_cst(&ebbi_heaps_changed, true))
        ebbi_account_sparse_at_most(ebbi_os_now_ns() + ebbi_sweep_quiet_ns());
}

/* Work on a taken heap as its owner's malloc_trim would: take in what
 * other threads freed, give back the emptied pages (first pages too), and
 * decommit the free kernel pages of the others.  Stops between pages when
 * the owner wants the heap back. */
static size_t sweep_heap(heap_t *h, bool *sent)
{
    *sent |= h->remote_mask != 0;
    tls_sweeping = h;
    ebbi_store_relaxed(&h->sweeping, 1);
    /* Cleared before the pages' remote lists are read, and a remote free
     * reads it after its push (page.c): one of the two sees the other. */
    ebbi_store_seq_cst(&h->remote_seen, 0);
    ebbi_fence_seq_cst();
    h->swept_activity = h->seen_activity;
    size_t given = ebbi_heap_collect(h, EBBI_COLLECT_SWEEP);
    ebbi_store_relaxed(&h->sweeping, 0);
    tls_sweeping = NULL;
    return given;
}

/* Heaps found busy by malloc_trim's sweep are tried again, after a yield,
 * this many times in all: a call in progress ends in microseconds. */
#define SWEEP_ALL_TRIES 4

/* Choose (the census: each heap's activity since the last look), and take:
 * each chosen owner reads &ebbi_heap_empty from its next call on.  Returns
 * the batch, linked through sweep_next. */
static heap_t *sweep_choose(ebbi_sweep_t mode, bool retry, uint64_t now, uint64_t quiet_ns, uint64_t *due)
{
    heap_t *batch = NULL, **tail = &batch;
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next) {
        ebbi_thread_t *thread = ebbi_load_relaxed(&h->thread);
        if (thread == NULL || h == tls_home)
            continue;
        bool take = h->sweep_retry;
        h->sweep_retry = false;
        if (!retry) {
            uint64_t a = ebbi_heap_activity(h);
            bool steady = a == h->seen_activity && h->seen_since_ns != 0;
            if (!steady) {
                h->seen_activity = a;
                h->seen_since_ns = now;
            }
            bool changed = a != h->swept_activity || ebbi_load_relaxed(&h->remote_seen);
            take = mode == EBBI_SWEEP_ALL || (mode == EBBI_SWEEP_CHANGED && changed);
            if (mode == EBBI_SWEEP_QUIET && changed) {
                if (steady && now - h->seen_since_ns >= quiet_ns)
                    take = true;
                else if (h->seen_since_ns + quiet_ns < *due)
                    *due = h->seen_since_ns + quiet_ns;
            }
        }
        if (!take)
            continue;
        /* In the batch: the thread's words are read (its `busy`) even if
         * its owner undoes the take, so its exit waits for this to clear. */
        ebbi_store_seq_cst(&h->in_batch, 1);
        ebbi_store_seq_cst(&h->taken, TAKE_PENDING);
        if (ebbi_load_seq_cst(&h->thread) != thread) { /* its thread is leaving */
            ebbi_store_seq_cst(&h->taken, TAKE_NONE);
            ebbi_store_seq_cst(&h->in_batch, 0);
            continue;
        }
        /* Release: an owner that reads it sees `taken` set. */
        ebbi_store_release(&thread->heap, &ebbi_heap_empty);
        h->sweep_thread = thread;
        h->sweep_next = NULL;
        *tail = h;
        tail = &h->sweep_next;
    }
    return batch;
}

/* One round: choose, take, give back the busy, sweep the others (see
 * above); malloc_trim's mode tries the busy ones again.  Sets *sent if a
 * swept heap sent batches of remote frees. */
static size_t sweep_round(ebbi_sweep_t mode, uint64_t now, uint64_t quiet_ns, uint64_t *due, bool *sent)
{
    size_t given = 0;
    unsigned tries = mode == EBBI_SWEEP_ALL ? SWEEP_ALL_TRIES : 1;
    for (unsigned try = 0; try < tries; try++) {
        heap_t *batch = sweep_choose(mode, try > 0, now, quiet_ns, due);
        if (batch == NULL)
            break;
        bool barrier = ebbi_os_barrier_all_threads();
        if (!barrier)
            ebbi_store_relaxed(&handover_state, -1);
        bool again = false;
        /* First give back the heaps whose thread is in a call (it may have
         * read the heap before it was taken), so that none waits for the
         * sweeps of the others; then sweep the rest one by one (an owner
         * that comes back meanwhile undoes the take of its heap if it was
         * not begun yet). */
        for (int pass = 0; pass < 2; pass++) {
            for (heap_t *h = batch; h != NULL; h = h->sweep_next) {
                /* Read once, after the barrier: idle then, the owner's
                 * next call sees the heap taken. */
                if (pass == 0)
                    h->sweep_busy = !barrier || ebbi_load_acquire(&h->sweep_thread->busy);
                bool busy = h->sweep_busy;
                if (busy != (pass == 0))
                    continue;
                uint8_t expected = TAKE_PENDING;
                if (!ebbi_cas_strong_seq_cst(&h->taken, &expected, TAKE_CLAIMED)) {
                    ebbi_store_seq_cst(&h->in_batch, 0); /* its owner undid the take */
                    continue;
                }
                if (busy) {
                    ebbi_fetch_add_relaxed(&heaps_swept_busy, barrier);
                    h->sweep_retry = barrier && try + 1 < tries;
                    again |= h->sweep_retry;
                    if (now + quiet_ns < *due)
                        *due = now + quiet_ns;
                } else {
                    given += sweep_heap(h, sent);
                    ebbi_fetch_add_relaxed(&heaps_swept, 1);
                }
                ebbi_store_release(&h->sweep_thread->heap, h);
                ebbi_store_seq_cst(&h->taken, TAKE_NONE);
                ebbi_store_seq_cst(&h->in_batch, 0); /* its words are not read again */
            }
        }
        if (!again)
            break;
        ebbi_os_yield();
    }
    return given;
}

size_t ebbi_heaps_sweep(ebbi_sweep_t mode, uint64_t quiet_ns, uint64_t *due)
{
    *due = EBBI_NEVER;
    if (ebbi_load_relaxed(&handover_state) < 0)
        return 0;
    uint64_t now = ebbi_os_now_ns();
    pthread_mutex_lock(&handover_lock);
    ebbi_store_seq_cst(&ebbi_heaps_changed, false); /* what changes from here on says so again */
    bool sent = false;
    size_t given = sweep_round(mode, now, quiet_ns, due, &sent);
    /* The batches a swept heap sent (its frees into other heaps' pages)
     * may have reached heaps swept before it: those are swept once more. */
    if (sent && mode != EBBI_SWEEP_QUIET)
        given += sweep_round(EBBI_SWEEP_CHANGED, now, quiet_ns, due, &sent);
    pthread_mutex_unlock(&handover_lock);
    return given;
}

void ebbi_heaps_sweep_counts(uint64_t *swept, uint64_t *busy)
{
    *swept = ebbi_load_relaxed(&heaps_swept);
    *busy = ebbi_load_relaxed(&heaps_swept_busy);
}

/* ---- thread start and exit ---------------------------------------------------------- */

/* Inside an allocator call.  Calls the C library makes from here may
 * allocate (the start's key and fork handlers, pthread_setspecific): calls
 * of their own, which end this one; it begins again after them. */
heap_t *ebbi_heap_for_thread(void)
{
    if (tls_home != NULL)
        return heap_take_back(tls_home);
    if (!ebbi_process_ready()) {
        bool ready = ebbi_process_init();
        ebbi_call_begin();
        if (!ready)
            return NULL;
        /* An allocation of the start's own made this thread a heap. */
        if (tls_home != NULL)
            return heap_take_back(tls_home);
        if (ebbi_thread_heap() != &ebbi_heap_empty)
            return ebbi_thread_heap();
    }
    /* Another thread may be in phase 2 of the start: wait for the thread
     * key, or this heap would never be given back at the thread's exit. */
    while (!ebbi_load_acquire(&ebbi_process.init_done) && !ebbi_initializing_here)
        ebbi_os_yield();
    pthread_mutex_lock(&heaps.lock);
    heap_t *heap = heaps.pool;
    if (heap != NULL)
        heaps.pool = heap->pool_next;
    pthread_mutex_unlock(&heaps.lock);
    if (heap == NULL) {
        heap = ebbi_meta_alloc(sizeof(heap_t));
        if (heap == NULL)
            return NULL;
        pthread_mutex_lock(&heaps.lock);
        heap->id = heaps.next_id++;
        heap->all_next = ebbi_load_relaxed(&heaps.all);
        ebbi_store_release(&heaps.all, heap);
        pthread_mutex_unlock(&heaps.lock);
    }
    heap_reset_queues(heap);
    heap->arena = &ebbi_arenas[heap->id % ebbi_process.arena_count];
    heap->in_use = true;
    /* Blocks that reached this heap after its last owner abandoned it. */
    heap_drain_delayed(heap);
    ebbi_store_release(&ebbi_thread.heap, heap);
    /* A thread past its key destructor (another destructor allocates) is
     * not bound again: it may exit without unbinding. */
    if (tls_exited)
        return heap;
    /* May allocate (keys past the first 32): the heap is already in place,
     * not yet bound, so no sweep can take it meanwhile. */
    if (ebbi_load_acquire(&ebbi_process.thread_key_ready)) {
        bool keyed = pthread_setspecific(ebbi_process.thread_key, heap) == 0;
        ebbi_call_begin();
        if (keyed)
            heap_bind(heap, heap);
    } else if (ebbi_initializing_here) {
        /* The initializing thread: unbound again if its key cannot be set
         * (ebbi_heap_key_made). */
        heap_bind(heap, heap);
    }
    return heap;
}

/* A thread that frees into other threads' pages and has no heap (it never
 * allocated: a consumer of what others make) gets one, so that its frees
 * are counted in counters of its own rather than in the shared atomic ones
 * of ebbi_orphan_frees.  &ebbi_heap_empty where it is not to have one:
 * before the start is done, past its key's destructor, or while a sweep
 * has its heap (the free then waits for nothing). */
heap_t *ebbi_heap_for_freeing_thread(void)
{
    if (tls_home != NULL || tls_exited || !ebbi_load_acquire(&ebbi_process.init_done))
        return &ebbi_heap_empty;
    heap_t *heap = ebbi_heap_for_thread();
    return heap != NULL && heap == ebbi_thread_heap() ? heap : &ebbi_heap_empty;
}

/* The thread has a heap, whether or not a sweep has taken it. */
bool ebbi_heap_is_bound(void)
{
    return tls_home != NULL;
}

/* The thread key exists now (init.c): the initializing thread's heap gets
 * its destructor, or is unbound if it cannot. */
void ebbi_heap_key_made(void)
{
    heap_t *heap = tls_home;
    if (heap == NULL)
        return;
    if (pthread_setspecific(ebbi_process.thread_key, heap) != 0)
        heap_bind(heap, NULL);
}

void ebbi_heap_thread_done(void *value)
{
    heap_t *heap = value;
    if (heap == NULL || heap == &ebbi_heap_empty || heap != tls_home)
        return;
    ebbi_call_begin();
    if (ebbi_thread_heap() != heap)
        heap_take_back(heap);
    heap_bind(heap, NULL);
    tls_exited = true;
    ebbi_heap_collect(heap, EBBI_COLLECT_ABANDON);
    heap->in_use = false;
    ebbi_store_release(&ebbi_thread.heap, &ebbi_heap_empty);
    ebbi_call_end();
    pthread_mutex_lock(&heaps.lock);
    heap->pool_next = heaps.pool;
    heaps.pool = heap;
    pthread_mutex_unlock(&heaps.lock);
    /* After the main thread: the service thread looks whether this was the
     * program's last one. */
    ebbi_doorbell_thread_exited();
}

void ebbi_heaps_fork_prepare(void)
{
    pthread_mutex_lock(&handover_lock);
    pthread_mutex_lock(&heaps.lock);
}

void ebbi_heaps_fork_parent(void)
{
    pthread_mutex_unlock(&heaps.lock);
    pthread_mutex_unlock(&handover_lock);
}

void ebbi_heaps_fork_child(void)
{
    pthread_mutex_init(&heaps.lock, NULL);
    pthread_mutex_init(&handover_lock, NULL);
    /* The other threads are gone, and the C library may give their stacks
     * (and TLS) to new threads: their heaps are bound no more. */
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next) {
        if (h != tls_home) {
            ebbi_store_relaxed(&h->thread, NULL);
            /* Its batches may be half made: their blocks stay used. */
            memset(h->remote, 0, sizeof h->remote);
            h->remote_mask = 0;
        }
    }
    /* A thread that was freeing into one of our pages at the fork exists
     * no more: its notification never ends (see ebbi_page_after_fork). */
    heap_t *heap = ebbi_thread_heap();
    if (heap == &ebbi_heap_empty)
        return;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        for (page_t *p = heap->queues[c].first; p != NULL; p = p->next)
            ebbi_page_after_fork(p);
    for (page_t *p = heap->full.first; p != NULL; p = p->next)
        ebbi_page_after_fork(p);
}

/* ---- the debug build's validator --------------------------------------------- */

#if EBB_DEBUG
/* A queue's links agree both ways; every page in it passes `check`.
 * Since a page has one pair of links, links that agree put it in one
 * queue at most. */
static unsigned queue_validate(heap_t *heap, page_queue_t *q, enum ebbi_page_place place, unsigned class_id)
{
    unsigned n = 0;
    page_t *prev = NULL;
    for (page_t *p = q->first; p != NULL; prev = p, p = p->next) {
        ebbi_assert(p->prev == prev);
        ebbi_assert(ebbi_load_relaxed(&p->owner) == heap);
        if (place == EBBI_IN_CLASS_QUEUE) {
            ebbi_assert(p->class_id == class_id);
            ebbi_assert(((p->free_flags & PAGE_NOT_FIRST) != 0) == (p != q->first));
            ebbi_assert(!(p->free_flags & PAGE_PARKED) || p == q->first);
        }
        ebbi_page_validate(p, place);
        n++;
    }
    ebbi_assert(q->last == prev);
    return n;
}

void ebbi_heap_validate(heap_t *heap)
{
    ebbi_assert(ebbi_heap_is_mine(heap) && heap->in_use);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        page_queue_t *q = &heap->queues[c];
        queue_validate(heap, q, EBBI_IN_CLASS_QUEUE, c);
        /* direct[] follows the first page of the classes up to EBB_DIRECT_MAX. */
        uint32_t size = ebbi_classes[c].block_size;
        if (size <= EBB_DIRECT_MAX) {
            page_t *expect = q->first;
            if (expect == NULL || (ebbi_safety & (SAFETY_SECURE | SAFETY_GUARD_ALL)))
                expect = &ebbi_page_empty;
            ebbi_assert(heap->direct[size / EBB_ALIGNMENT] == expect);
        }
        /* A parked slot holds its class's first page, marked parked; a
         * parked page whose slot is empty was taken by the reclaimer. */
        if (c >= EBB_PARK_FIRST_CLASS) {
            page_t *parked = ebbi_load_acquire(&heap->parked[c - EBB_PARK_FIRST_CLASS]);
            ebbi_assert(parked == NULL || (parked == q->first && (parked->free_flags & PAGE_PARKED)));
        }
    }
    queue_validate(heap, &heap->full, EBBI_IN_FULL_QUEUE, 0);
    /* The batches of remote frees: each in its page's slot, its chain as
     * long as its count (under the limits), every block of the page and
     * keyed as freed. */
    for (unsigned i = 0; i < EBB_REMOTE_SLOTS; i++) {
        remote_batch_t *b = &heap->remote[i];
        ebbi_assert(((heap->remote_mask >> i) & 1) == (b->page != NULL));
        if (b->page == NULL)
            continue;
        ebbi_assert(remote_slot(b->page) == i && b->count >= 1 && b->count < EBB_REMOTE_BATCH_BLOCKS);
        ebbi_assert(b->bytes == b->count * b->page->block_size && b->bytes < EBB_REMOTE_BATCH_BYTES);
        uint32_t n = 0;
        block_t *x = b->head;
        for (;;) {
            ebbi_assert(x != NULL && n < b->count && ebbi_page_holds_block(b->page, (uintptr_t)x));
            ebbi_assert(x->free_key == ebbi_free_key(b->page));
            n++;
            if (x == b->tail)
                break;
            x = ebbi_block_next(x);
        }
        ebbi_assert(n == b->count);
    }
}
#endif
