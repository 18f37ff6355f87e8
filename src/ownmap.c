/* Mappings of their own: one block each, huge blocks (huge.c) and guarded
 * blocks (guard.c).  Both are segments of kind SEGMENT_HUGE, their header
 * at the mapping's start, their block's page entry in slices[1]; this
 * layer maps them, closes their guard page, marks them in the segment map,
 * counts them, and unmaps them, so that the two kinds do all of it alike.
 *
 * Counting.  `mapped` is every byte of these mappings; `untouched` the
 * bytes among them that are not resident: the slack between a header page
 * and its block (never written), guard pages, and a guarded block's pages
 * decommitted at its free.  Resident = mapped - untouched, with huge
 * blocks taken to be resident (the program writes them).
 */
#include "internal.h"

static _Atomic(uint64_t) mapped, untouched;

uint64_t ebbi_ownmap_mapped_bytes(void)
{
    return ebbi_load_relaxed(&mapped);
}

uint64_t ebbi_ownmap_resident_bytes(void)
{
    return ebbi_load_relaxed(&mapped) - ebbi_load_relaxed(&untouched);
}

void ebbi_ownmap_count(int64_t mapped_delta, int64_t untouched_delta)
{
    if (mapped_delta != 0)
        ebbi_fetch_add_relaxed(&mapped, (uint64_t)mapped_delta);
    if (untouched_delta != 0)
        ebbi_fetch_add_relaxed(&untouched, (uint64_t)untouched_delta);
}

segment_t *ebbi_ownmap_map(size_t map_size, size_t align, size_t *reach, size_t guard_at, size_t slack)
{
    size_t ps = ebbi_process.page_size;
    segment_t *seg = reach != NULL              ? ebbi_os_map_reach(map_size, EBB_SEGMENT_SIZE, reach)
                     : align < EBB_SEGMENT_SIZE ? ebbi_os_map_aligned(map_size, EBB_SEGMENT_SIZE, 0)
                                                : ebbi_os_map_aligned(map_size, align, EBB_SEGMENT_SIZE);
    if (seg == NULL)
        return NULL;
    seg->map_size = map_size;
    seg->reach = reach != NULL ? *reach : map_size;
    seg->kind = SEGMENT_HUGE;
    seg->source = SOURCE_MMAP;
    if (guard_at != 0) {
        ebbi_os_protect((uint8_t *)seg + guard_at, ps, EBBI_ACCESS_NONE);
        slack += ps;
    }
    ebbi_ownmap_count((int64_t)map_size, (int64_t)slack);
    return seg;
}

/* The segment's region, and the block's (a huge block aligned to 4 MiB or
 * more starts in the next one), or every region the mapping covers (up to
 * SEGMAP_MAX_BELOW - 1 of them: a guarded block, whose pages the fault
 * handler looks up from any address). */
void ebbi_ownmap_mark(segment_t *seg, ebbi_mark_t regions)
{
    bool every_region = regions == EBBI_MARK_EVERY_REGION;
    uintptr_t base = (uintptr_t)seg, block = seg->slices[1].start;
    uintptr_t end = every_region ? base + seg->map_size : block + 1;
    unsigned k = 1;
    for (uintptr_t r = base + EBB_SEGMENT_SIZE; r < end && k < SEGMAP_MAX_BELOW; r += EBB_SEGMENT_SIZE, k++)
        if (every_region || r + EBB_SEGMENT_SIZE > block)
            ebbi_segmap_set(r, (uint8_t)(SEGMAP_HUGE_BELOW + k - 1));
    ebbi_segmap_set(base, SEGMAP_SEGMENT);
}

/* Before the mapping goes or moves: another thread may map a segment at
 * any of its regions the moment they are free. */
void ebbi_ownmap_unmark(segment_t *seg)
{
    uintptr_t base = (uintptr_t)seg;
    for (uintptr_t r = base + EBB_SEGMENT_SIZE; r < base + seg->map_size; r += EBB_SEGMENT_SIZE)
        ebbi_segmap_set(r, SEGMAP_NONE);
    ebbi_segmap_set(base, SEGMAP_NONE);
}

/* The last blocks unmapped, so that a late second free of one (or a use by
 * realloc) is named for what it is, not as a pointer never ours.  Written
 * as a block is unmapped, read only on the misuse path. */
#define UNMAPPED_RING 64
static _Atomic(uintptr_t) unmapped_ring[UNMAPPED_RING];
static _Atomic(unsigned) unmapped_next;

bool ebbi_ownmap_recently_unmapped(uintptr_t p)
{
    for (unsigned i = 0; i < UNMAPPED_RING; i++)
        if (ebbi_load_relaxed(&unmapped_ring[i]) == p)
            return true;
    return false;
}

void ebbi_ownmap_unmap(segment_t *seg, size_t slack)
{
    ebbi_ownmap_unmark(seg);
    unsigned i = ebbi_fetch_add_relaxed(&unmapped_next, 1) % UNMAPPED_RING;
    ebbi_store_relaxed(&unmapped_ring[i], seg->slices[1].start);
    size_t size = seg->map_size;
    ebbi_os_unmap(seg, size);
    ebbi_ownmap_count(-(int64_t)size, -(int64_t)slack);
    ebbi_account_reclaimed(size - slack);
}
