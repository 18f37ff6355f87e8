/* Guarded blocks (EBB_GUARD, EBB_GUARD_SAMPLE): the seeds' second path
 * after free, enforced.  Every guarded allocation has pages of its own
 * against a PROT_NONE guard page; at its free they become PROT_NONE and
 * wait in a quarantine, so a use after free faults at once (fault.c names
 * it).  The mappings are made, marked, counted and unmapped by ownmap.c,
 * as huge blocks' are. */
#include <string.h>

#include "internal.h"

/* A guarded block is a huge segment: its header page at the segment start,
 * its pages from 64 KiB on, beside a PROT_NONE guard page:
 *   after:  [header] ... [data pages: .. block][guard]   (overflows fault)
 *   before: [header] ... [guard][block .. data pages]    (underflows fault)
 * The page entry in slices[1] describes it (kind SLICE_GUARDED, block_size =
 * the size asked for), so free() finds it as it finds any huge block. */
typedef struct {
    uintptr_t data;   /* first data page */
    size_t data_size;
    uintptr_t guard;  /* the guard page */
} guard_layout_t;

static guard_layout_t layout_of(const segment_t *seg)
{
    size_t ps = ebbi_process.page_size;
    guard_layout_t l;
    bool before = ebbi_option(EBB_OPTION_GUARD) == 2;
    l.data_size = seg->map_size - EBB_SLICE_SIZE - ps;
    if (before) {
        l.guard = (uintptr_t)seg + EBB_SLICE_SIZE;
        l.data = l.guard + ps;
    } else {
        l.data = (uintptr_t)seg + EBB_SLICE_SIZE;
        l.guard = l.data + l.data_size;
    }
    return l;
}

/* Freed guarded blocks wait in the quarantine (oldest first out).  Those of
 * one data page that leave it are kept, still inaccessible, for the next
 * guarded block of that size (`spare`), up to GUARD_SPARE_MAX: a guarded
 * allocation then costs one mprotect instead of a map, a protect and, one
 * day, an unmap.  With EBB_GUARD_SAMPLE such a block's page is not
 * decommitted at its free either (inaccessible is enough; zeroed when it
 * serves again), and it is a mapping of its own (closing and opening it
 * split and merge no mappings): a sample costs two mprotect calls. */
#define GUARD_SPARE_MAX 256

static struct {
    pthread_mutex_t lock;
    segment_t *oldest, *newest;
    size_t bytes;
    _Atomic(segment_t *) spare; /* changed under the lock; peeked at without */
    unsigned spare_count;
} quarantine = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void guard_unmap(segment_t *seg);

static size_t small_guard_map_size(void)
{
    return EBB_SLICE_SIZE + 2 * ebbi_process.page_size;
}

/* A new guarded segment of `map_size` bytes, its guard page closed, its
 * data pages open (zero, counted as resident), holding no block yet (free()
 * calls a pointer into it invalid). */
static segment_t *guard_map(size_t map_size)
{
    size_t ps = ebbi_process.page_size, data_size = map_size - EBB_SLICE_SIZE - ps;
    size_t guard_at = ebbi_option(EBB_OPTION_GUARD) == 2 ? EBB_SLICE_SIZE : EBB_SLICE_SIZE + data_size;
    /* Untouched: slice 0 past the header page (and the guard page). */
    segment_t *seg = ebbi_ownmap_map(map_size, EBB_SLICE_SIZE, NULL, guard_at, EBB_SLICE_SIZE - ps);
    if (seg == NULL)
        return NULL;
    seg->slices[1].kind = SLICE_GUARD_FREED;
    guard_layout_t l = layout_of(seg);
    if ((ebbi_safety & SAFETY_GUARD_SAMPLE) && map_size == small_guard_map_size())
        ebbi_os_isolate((void *)l.data, l.data_size); /* it will be closed and opened again */
    ebbi_ownmap_mark(seg, EBBI_MARK_EVERY_REGION);
    return seg;
}

/* A spare's data page opened again and zero. */
static bool spare_open(segment_t *seg)
{
    guard_layout_t l = layout_of(seg);
    if (!ebbi_os_protect((void *)l.data, l.data_size, EBBI_ACCESS_RW))
        return false;
    if (seg->slices[1].free_is_zero)
        ebbi_ownmap_count(0, -(int64_t)l.data_size); /* faulted in as used */
    else
        memset((void *)l.data, 0, l.data_size); /* kept resident since its free */
    seg->slices[1].free_is_zero = false;
    return true;
}

/* A spare guarded segment of map size `map_size`, its data page open and
 * zero, or NULL. */
static segment_t *spare_take(size_t map_size)
{
    if (map_size != small_guard_map_size() || ebbi_load_relaxed(&quarantine.spare) == NULL)
        return NULL;
    pthread_mutex_lock(&quarantine.lock);
    segment_t *seg = ebbi_load_relaxed(&quarantine.spare);
    if (seg != NULL) {
        ebbi_store_relaxed(&quarantine.spare, seg->next);
        quarantine.spare_count--;
    }
    pthread_mutex_unlock(&quarantine.lock);
    if (seg == NULL)
        return NULL;
    if (!spare_open(seg)) {
        guard_unmap(seg);
        return NULL;
    }
    seg->free_site = 0;
    return seg;
}

void *ebbi_guard_alloc(heap_t *heap, size_t size, size_t align, const void *site)
{
    size_t ps = ebbi_process.page_size;
    if (align < EBB_ALIGNMENT)
        align = EBB_ALIGNMENT;
    if (align > EBB_SLICE_SIZE || size > (size_t)PTRDIFF_MAX / 2)
        return NULL; /* the caller takes the unguarded path */
    size_t rounded = size == 0 ? EBB_ALIGNMENT : (size + EBB_ALIGNMENT - 1) & ~(size_t)(EBB_ALIGNMENT - 1);
    size_t room = rounded + (align > EBB_ALIGNMENT ? align : 0);
    size_t data_size = (room + ps - 1) & ~(ps - 1);
    size_t map_size = EBB_SLICE_SIZE + data_size + ps;
    uint64_t start = ebbi_sample_cost_start();
    segment_t *seg = spare_take(map_size);
    if (seg == NULL)
        seg = guard_map(map_size);
    ebbi_sample_cost_charge(start);
    if (seg == NULL)
        return NULL;
    seg->alloc_site = (uintptr_t)site;
    guard_layout_t l = layout_of(seg);
    uintptr_t block;
    if (l.guard > l.data)
        block = (l.data + l.data_size - rounded) & ~(uintptr_t)(align - 1); /* against the guard */
    else
        block = (l.data + align - 1) & ~(uintptr_t)(align - 1); /* right after it, unless aligned beyond a page */
    page_t *page = &seg->slices[1];
    page->start = block;
    page->block_size = (uint32_t)(size < UINT32_MAX ? size : UINT32_MAX);
    page->divisor_magic = 1;
    page->capacity = 1;
    page->used = 1;
    page->kind = SLICE_GUARDED;
    ebbi_store_relaxed(&page->owner, NULL);
    ebbi_store_relaxed(&page->carved, 1);
    unsigned slice = (unsigned)((block - (uintptr_t)seg) >> EBB_SLICE_SHIFT);
    if (slice > 1)
        seg->slices[slice].slice_back = (uint8_t)(slice - 1);
    ebbi_counter_add(&heap->huge_allocs, 1);
    ebbi_counter_add(&heap->huge_bytes_alloc, rounded);
    return (void *)block;
}

size_t ebbi_guard_usable_size(const page_t *page)
{
    size_t size = page->block_size;
    return size == 0 ? EBB_ALIGNMENT : (size + EBB_ALIGNMENT - 1) & ~(size_t)(EBB_ALIGNMENT - 1);
}

static void guard_unmap(segment_t *seg)
{
    /* Untouched: all but the header page, and the data pages if they were
     * decommitted at the free. */
    size_t untouched = EBB_SLICE_SIZE;
    if (seg->slices[1].kind == SLICE_GUARD_FREED && seg->slices[1].free_is_zero)
        untouched += layout_of(seg).data_size;
    ebbi_ownmap_unmap(seg, untouched);
}

/* The guard page of a guarded segment (the fault handler's question). */
uintptr_t ebbi_guard_page(const segment_t *seg)
{
    return layout_of(seg).guard;
}

void ebbi_guard_free(heap_t *heap, segment_t *seg, page_t *page, const void *site)
{
    size_t rounded = ebbi_guard_usable_size(page);
    if (heap != &ebbi_heap_empty) {
        ebbi_counter_add(&heap->huge_frees, 1);
        ebbi_counter_add(&heap->huge_bytes_freed, rounded);
    } else {
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_frees, 1);
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_bytes, rounded);
    }
    /* No longer a block (free() refuses it: "double free"), and its pages
     * inaccessible and given back at once. */
    uint64_t start = ebbi_sample_cost_start();
    seg->free_site = (uintptr_t)site;
    ebbi_store_relaxed(&page->carved, 0);
    page->kind = SLICE_GUARD_FREED;
    guard_layout_t l = layout_of(seg);
    ebbi_os_protect((void *)l.data, l.data_size, EBBI_ACCESS_NONE);
    bool keep = (ebbi_safety & SAFETY_GUARD_SAMPLE) && seg->map_size == small_guard_map_size();
    page->free_is_zero = !keep && ebbi_os_decommit((void *)l.data, l.data_size);
    if (page->free_is_zero) {
        ebbi_ownmap_count(0, (int64_t)l.data_size);
        ebbi_account_reclaimed(l.data_size);
    }

    /* Quarantine: the oldest leave once it holds more than its bound. */
    size_t bound = (size_t)ebbi_option(EBB_OPTION_GUARD_QUARANTINE);
    segment_t *out = NULL;
    pthread_mutex_lock(&quarantine.lock);
    seg->next = NULL;
    if (quarantine.newest != NULL)
        quarantine.newest->next = seg;
    else
        quarantine.oldest = seg;
    quarantine.newest = seg;
    quarantine.bytes += seg->map_size;
    /* The block just freed stays, whatever its size. */
    while (quarantine.bytes > bound && quarantine.oldest != seg) {
        segment_t *old = quarantine.oldest;
        quarantine.oldest = old->next;
        if (quarantine.oldest == NULL)
            quarantine.newest = NULL;
        quarantine.bytes -= old->map_size;
        if (old->map_size == small_guard_map_size() && quarantine.spare_count < GUARD_SPARE_MAX) {
            old->next = ebbi_load_relaxed(&quarantine.spare);
            ebbi_store_relaxed(&quarantine.spare, old);
            quarantine.spare_count++;
        } else {
            old->next = out;
            out = old;
        }
    }
    pthread_mutex_unlock(&quarantine.lock);
    while (out != NULL) {
        segment_t *next = out->next;
        guard_unmap(out);
        out = next;
    }
    ebbi_sample_cost_charge(start);
}

/* fork: the quarantine's lists must be whole in the child. */
void ebbi_guard_fork_prepare(void)
{
    pthread_mutex_lock(&quarantine.lock);
}

void ebbi_guard_fork_parent(void)
{
    pthread_mutex_unlock(&quarantine.lock);
}

void ebbi_guard_fork_child(void)
{
    pthread_mutex_init(&quarantine.lock, NULL);
}
