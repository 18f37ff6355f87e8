/* Huge blocks: requests above EBB_PAGE_BLOCK_MAX (2 MiB), and aligned
 * requests that a page cannot serve, each in a mapping of its own.
 *
 * The mapping is a segment: 4 MiB-aligned, its header in the first OS page
 * (only slices[0..1] and, for large alignments, the slice holding the block
 * are written), the block at
 *   seg + 64 KiB              (alignment up to 64 KiB),
 *   seg + alignment           (alignment up to 2 MiB),
 *   seg + 4 MiB, aligned      (alignment of 4 MiB and more: the block's
 *                              region is marked SEGMAP_HUGE_BELOW).
 * The block's page entry is always slices[1]: carved 1, magic 1, so the
 * free path's exact-division check accepts the block's start and nothing
 * else.  The slack between the header and the block is never touched.
 *
 * A freed huge block goes to a small cache (a few entries, within the
 * retention bound, given back after the reclamation delay: reclaim.c), so
 * a loop that allocates and frees a big buffer does not map and unmap it
 * each time; otherwise it is unmapped at once.  realloc grows and moves
 * huge blocks with mremap: no copy.
 */
#include <string.h>

#include "internal.h"

#define HUGE_CACHE_ENTRIES 8

static struct {
    pthread_mutex_t lock;
    segment_t *entries[HUGE_CACHE_ENTRIES];
    unsigned count;
    size_t bytes;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic(uint64_t) huge_mapped;
static _Atomic(uint64_t) huge_cached;
/* The never-touched bytes between each header page and its block. */
static _Atomic(uint64_t) huge_slack;

uint64_t ebbi_huge_mapped_bytes(void)
{
    return ebbi_load_relaxed(&huge_mapped);
}

/* Huge mappings' memory that may be resident: all of it but the slack. */
uint64_t ebbi_huge_resident_bytes(void)
{
    return ebbi_load_relaxed(&huge_mapped) - ebbi_load_relaxed(&huge_slack);
}

/* Secure mode: a guard page ends every huge mapping. */
static size_t tail_guard(void)
{
    return (ebbi_safety & SAFETY_SECURE) ? ebbi_process.page_size : 0;
}

/* The header's pages (segment_t spans a few), then never-touched slack. */
static size_t segment_slack(const segment_t *seg)
{
    size_t ps = ebbi_process.page_size;
    size_t header = (sizeof(segment_t) + ps - 1) & ~(ps - 1);
    return seg->slices[1].start - (uintptr_t)seg - header;
}

uint64_t ebbi_huge_cached_bytes(void)
{
    return ebbi_load_relaxed(&huge_cached);
}

static size_t page_round(size_t n)
{
    size_t ps = ebbi_process.page_size;
    return (n + ps - 1) & ~(ps - 1);
}

/* Where the block starts in its segment, for an alignment. */
static size_t block_offset(size_t align)
{
    if (align <= EBB_SLICE_SIZE)
        return EBB_SLICE_SIZE;
    if (align < EBB_SEGMENT_SIZE)
        return align;
    return EBB_SEGMENT_SIZE;
}

/* Give a huge segment back to the kernel; its memory counts as reclaimed
 * (huge blocks are taken to be resident: they are written by the program). */
static void huge_unmap(segment_t *seg)
{
    page_t *page = &seg->slices[1];
    if (page->start - (uintptr_t)seg >= EBB_SEGMENT_SIZE)
        ebbi_segmap_set(page->start, SEGMAP_NONE);
    ebbi_segmap_set((uintptr_t)seg, SEGMAP_NONE);
    /* Counted resident until it is gone. */
    if (ebbi_safety & SAFETY_SECURE)
        ebbi_secure_note_unmapped(page->start);
    size_t size = seg->map_size, slack = segment_slack(seg) + tail_guard();
    ebbi_os_unmap(seg, size);
    ebbi_fetch_sub_relaxed(&huge_mapped, size);
    ebbi_fetch_sub_relaxed(&huge_slack, slack);
    ebbi_reclaimed_add(size - slack);
}

static void cache_bytes_changed(int64_t delta)
{
    ebbi_store_relaxed(&huge_cached, cache.bytes);
    ebbi_reclaimable_add(delta);
}

/* Lock held: take out the entries cached before `cutoff_ns`, onto a list
 * (linked through next) to unmap after unlocking. */
static segment_t *cache_expire_locked(uint64_t cutoff_ns)
{
    segment_t *out = NULL;
    for (unsigned i = 0; i < cache.count;) {
        segment_t *seg = cache.entries[i];
        if (seg->cached_at_ns < cutoff_ns) {
            cache.entries[i] = cache.entries[--cache.count];
            cache.bytes -= seg->map_size;
            cache_bytes_changed(-(int64_t)seg->map_size);
            seg->next = out;
            out = seg;
        } else {
            i++;
        }
    }
    return out;
}

static size_t unmap_list(segment_t *list)
{
    size_t bytes = 0;
    while (list != NULL) {
        segment_t *next = list->next;
        bytes += list->map_size;
        huge_unmap(list);
        list = next;
    }
    return bytes;
}

size_t ebbi_huge_expire(uint64_t cached_before_ns)
{
    if (ebbi_load_relaxed(&huge_cached) == 0)
        return 0;
    pthread_mutex_lock(&cache.lock);
    segment_t *out = cache_expire_locked(cached_before_ns);
    pthread_mutex_unlock(&cache.lock);
    return unmap_list(out);
}

uint64_t ebbi_huge_oldest_cached_ns(void)
{
    uint64_t oldest = 0;
    pthread_mutex_lock(&cache.lock);
    for (unsigned i = 0; i < cache.count; i++)
        if (oldest == 0 || cache.entries[i]->cached_at_ns < oldest)
            oldest = cache.entries[i]->cached_at_ns;
    pthread_mutex_unlock(&cache.lock);
    return oldest;
}

/* A cached mapping that fits `map_size` without wasting more than a
 * quarter of itself. */
static segment_t *cache_pick(size_t map_size, bool any_size)
{
    segment_t *found = NULL;
    unsigned at = 0;
    pthread_mutex_lock(&cache.lock);
    for (unsigned i = 0; i < cache.count; i++) {
        segment_t *seg = cache.entries[i];
        bool fits = seg->map_size >= map_size && seg->map_size - map_size <= seg->map_size / 2;
        /* Otherwise, the closest in size: its pages are resident already. */
        bool closer = any_size && (found == NULL || (seg->map_size >= map_size
                                                         ? seg->map_size < found->map_size || found->map_size < map_size
                                                         : found->map_size < map_size && seg->map_size > found->map_size));
        if (fits) {
            found = seg, at = i;
            break;
        }
        if (closer)
            found = seg, at = i;
    }
    if (found != NULL) {
        cache.entries[at] = cache.entries[--cache.count];
        cache.bytes -= found->map_size;
        cache_bytes_changed(-(int64_t)found->map_size);
    }
    pthread_mutex_unlock(&cache.lock);
    return found;
}

/* A cached mapping for `map_size` bytes: one that fits, or the closest,
 * cut down or grown (in place, or moved by mremap without copying) so
 * that a loop of big blocks of varying sizes reuses resident pages
 * instead of faulting in fresh ones. */
static segment_t *cache_take(size_t map_size)
{
    bool resize = tail_guard() == 0;
    segment_t *seg = cache_pick(map_size, resize);
    if (seg == NULL || seg->map_size == map_size ||
        (seg->map_size > map_size && seg->map_size - map_size <= seg->map_size / 2))
        return seg;
    size_t old = seg->map_size;
    if (old > map_size) {
        ebbi_os_unmap((uint8_t *)seg + map_size, old - map_size);
        seg->map_size = map_size;
        ebbi_fetch_sub_relaxed(&huge_mapped, old - map_size);
        ebbi_reclaimed_add(old - map_size);
        return seg;
    }
    if (ebbi_os_resize_in_place(seg, old, map_size)) {
        seg->map_size = map_size;
        ebbi_fetch_add_relaxed(&huge_mapped, map_size - old);
        return seg;
    }
    segment_t *target = ebbi_os_map_aligned(map_size, EBB_SEGMENT_SIZE, 0);
    if (target != NULL) {
        ebbi_segmap_set((uintptr_t)seg, SEGMAP_NONE);
        if (ebbi_os_move(seg, old, target)) {
            target->map_size = map_size;
            ebbi_segmap_set((uintptr_t)target, SEGMAP_SEGMENT);
            ebbi_fetch_add_relaxed(&huge_mapped, map_size - old);
            return target;
        }
        ebbi_segmap_set((uintptr_t)seg, SEGMAP_SEGMENT);
        ebbi_os_unmap(target, map_size);
    }
    huge_unmap(seg);
    return NULL;
}

void *ebbi_huge_alloc(heap_t *heap, size_t size, size_t align, bool zero)
{
    if (align < EBB_ALIGNMENT)
        align = EBB_ALIGNMENT;
    if (size < EBB_MIN_BLOCK)
        size = EBB_MIN_BLOCK; /* a block, even of size 0, is mapped memory */
    size_t offset = block_offset(align);
    if (size > (size_t)PTRDIFF_MAX - offset - align) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = page_round(offset + size) + tail_guard();
    segment_t *seg = NULL;
    bool is_zero = false;
    ebbi_reclaim_tick();
    if (offset == EBB_SLICE_SIZE)
        seg = cache_take(map_size);
    if (seg == NULL) {
        if (offset < EBB_SEGMENT_SIZE)
            seg = ebbi_os_map_aligned(map_size, EBB_SEGMENT_SIZE, 0);
        else
            seg = ebbi_os_map_aligned(map_size, align, EBB_SEGMENT_SIZE);
        if (seg == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        seg->map_size = map_size;
        seg->kind = SEGMENT_HUGE;
        seg->source = SOURCE_MMAP;
        ebbi_fetch_add_relaxed(&huge_mapped, map_size);
        ebbi_reclaim_wish_thread();
        is_zero = true;
    }
    uintptr_t block = (uintptr_t)seg + offset;
    page_t *page = &seg->slices[1];
    page->start = block;
    page->block_size = 0;
    page->divisor_magic = 1; /* with carved 1: the start is the only block */
    page->capacity = 1;
    ebbi_store_relaxed(&page->carved, 1);
    page->used = 1;
    page->kind = SLICE_HUGE;
    ebbi_store_relaxed(&page->owner, NULL);
    if (offset > EBB_SLICE_SIZE && offset < EBB_SEGMENT_SIZE)
        seg->slices[offset >> EBB_SLICE_SHIFT].slice_back = (uint8_t)((offset >> EBB_SLICE_SHIFT) - 1);
    if (offset >= EBB_SEGMENT_SIZE)
        ebbi_segmap_set(block, SEGMAP_HUGE_BELOW);
    if (is_zero) {
        ebbi_fetch_add_relaxed(&huge_slack, segment_slack(seg) + tail_guard());
        if (tail_guard() != 0)
            ebbi_os_protect((uint8_t *)seg + map_size - tail_guard(), tail_guard(), false);
    }
    ebbi_segmap_set((uintptr_t)seg, SEGMAP_SEGMENT);

    ebbi_counter_add(&heap->huge_allocs, 1);
    ebbi_counter_add(&heap->huge_bytes_alloc, ebbi_huge_usable_size(seg, page));
    if (zero && !is_zero)
        memset((void *)block, 0, size);
    return (void *)block;
}

size_t ebbi_huge_usable_size(const segment_t *seg, const page_t *page)
{
    return (uintptr_t)seg + seg->map_size - tail_guard() - page->start;
}

void ebbi_huge_free(heap_t *heap, segment_t *seg, page_t *page)
{
    size_t usable = ebbi_huge_usable_size(seg, page);
    if (heap != &ebbi_heap_empty) {
        ebbi_counter_add(&heap->huge_frees, 1);
        ebbi_counter_add(&heap->huge_bytes_freed, usable);
    } else {
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_frees, 1);
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_bytes, usable);
    }
    /* Keep the mapping a while (reclaim.c), within the retention bound, so
     * that a loop freeing and allocating a big buffer does not go to the
     * kernel each time. */
    uint64_t now = ebbi_os_now_ns();
    size_t max = (size_t)ebbi_option(EBB_OPTION_RETAIN_MAX);
    bool cached = false;
    if (page->start == (uintptr_t)seg + EBB_SLICE_SIZE && seg->map_size <= max / 2) {
        pthread_mutex_lock(&cache.lock);
        if (cache.count < HUGE_CACHE_ENTRIES && cache.bytes + seg->map_size <= max) {
            /* Still ours, but no longer a block: carved 0 makes free()
             * refuse it, and the kind lets it say "double free". */
            page->kind = SLICE_HUGE_CACHED;
            ebbi_store_relaxed(&page->carved, 0);
            seg->cached_at_ns = now;
            cache.entries[cache.count++] = seg;
            cache.bytes += seg->map_size;
            cache_bytes_changed((int64_t)seg->map_size);
            cached = true;
        }
        pthread_mutex_unlock(&cache.lock);
    }
    if (cached)
        ebbi_reclaim_notify(now);
    else
        huge_unmap(seg);
    ebbi_reclaim_tick();
}

void *ebbi_huge_realloc(heap_t *heap, segment_t *seg, page_t *page, size_t size)
{
    size_t offset = page->start - (uintptr_t)seg;
    if (offset >= EBB_SEGMENT_SIZE || size > (size_t)PTRDIFF_MAX - offset || tail_guard() != 0)
        return NULL; /* the caller copies */
    size_t old_map = seg->map_size;
    size_t new_map = page_round(offset + size);
    if (new_map <= old_map) {
        /* Shrinking: give back the tail when it is worth a system call. */
        if (old_map - new_map >= old_map / 4) {
            ebbi_os_unmap((uint8_t *)seg + new_map, old_map - new_map);
            seg->map_size = new_map;
            ebbi_fetch_sub_relaxed(&huge_mapped, old_map - new_map);
        }
    } else if (ebbi_os_resize_in_place(seg, old_map, new_map)) {
        seg->map_size = new_map;
        ebbi_fetch_add_relaxed(&huge_mapped, new_map - old_map);
    } else {
        /* Move the pages to a fresh aligned place: no copy. */
        segment_t *target = ebbi_os_map_aligned(new_map, EBB_SEGMENT_SIZE, 0);
        if (target == NULL)
            return NULL;
        /* Unmark the old place before the move frees it: another thread may
         * map a segment there the moment it is free. */
        ebbi_segmap_set((uintptr_t)seg, SEGMAP_NONE);
        if (!ebbi_os_move(seg, old_map, target)) {
            ebbi_segmap_set((uintptr_t)seg, SEGMAP_SEGMENT);
            ebbi_os_unmap(target, new_map);
            return NULL;
        }
        seg = target;
        seg->map_size = new_map;
        page = &seg->slices[1];
        page->start = (uintptr_t)seg + offset;
        ebbi_segmap_set((uintptr_t)seg, SEGMAP_SEGMENT);
        ebbi_fetch_add_relaxed(&huge_mapped, new_map - old_map);
    }
    int64_t delta = (int64_t)seg->map_size - (int64_t)old_map;
    if (delta >= 0)
        ebbi_counter_add(&heap->huge_bytes_alloc, (uint64_t)delta);
    else
        ebbi_counter_add(&heap->huge_bytes_freed, (uint64_t)-delta);
    return (void *)page->start;
}

void ebbi_huge_fork_prepare(void)
{
    pthread_mutex_lock(&cache.lock);
}

void ebbi_huge_fork_parent(void)
{
    pthread_mutex_unlock(&cache.lock);
}

void ebbi_huge_fork_child(void)
{
    pthread_mutex_init(&cache.lock, NULL);
}
