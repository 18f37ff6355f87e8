/* Segments and the segment map.
 *
 * A segment is 4 MiB of address space aligned to 4 MiB, taken from a memory
 * source.  Its first slice holds the header (segment_t): the page entries
 * of all 64 slices, so no metadata sits beside user data.  A pointer's
 * segment is its address with the low 22 bits cleared.
 *
 * The segment map says, for any address, whether a segment of ours starts
 * in its 4 MiB region.  It is a byte per region over the 47-bit user
 * address space: 32 MiB of zero-initialized address space in .bss, which
 * costs RAM only where a page of it is written (one page per 16 GiB of
 * address space in use).  free() consults it before touching anything, so
 * a foreign pointer (stack, the program's own mappings, a wild address) is
 * reported rather than followed.
 */
#include <string.h>

#include "internal.h"

_Atomic(uint8_t) ebbi_segmap[EBB_SEGMAP_ENTRIES];

void ebbi_segmap_set(uintptr_t region, uint8_t value)
{
    ebbi_store_relaxed(&ebbi_segmap[region >> EBB_SEGMENT_SHIFT], value);
}

segment_t *ebbi_segment_alloc(arena_t *arena)
{
    bool is_zero = false;
    uint8_t source = 0;
    segment_t *seg = ebbi_source_alloc_segment(&is_zero, &source);
    if (seg == NULL)
        return NULL;
    /* An all-zero page entry means "no block here" (internal.h), so fresh
     * memory needs only the free span written (by the caller). */
    if (ebbi_layout.meta_guard != 0) {
        /* Metadata never beside user data: a guard page ends slice 0 (and
         * the source put one after the segment). */
        size_t guard = ebbi_layout.meta_guard;
        ebbi_os_protect((uint8_t *)seg + EBB_SLICE_SIZE - guard, guard, EBBI_ACCESS_NONE);
    }
    if (!is_zero) {
        memset(seg, 0, sizeof *seg);
        /* Reused memory: all of it may be resident, none of it is zero. */
        for (unsigned i = 1; i < EBB_SLICES_PER_SEGMENT; i++)
            ebbi_store_relaxed(&seg->touched[i], (uint8_t)EBB_TOUCH_UNITS_PER_SLICE);
    }
    seg->kind = SEGMENT_PAGES;
    seg->source = source;
    seg->map_size = EBB_SEGMENT_SIZE;
    seg->arena = arena;
    seg->free_slices = 0;
    seg->next = seg->prev = NULL;
    ebbi_segmap_set((uintptr_t)seg, SEGMAP_SEGMENT);
    return seg;
}

void ebbi_segment_free(segment_t *seg)
{
    ebbi_segmap_set((uintptr_t)seg, SEGMAP_NONE);
    ebbi_source_free_segment(seg, seg->source);
}

/* The slow-path lookup: the segment and page of p if p is the start of a
 * block carved in a page in use or of a huge block (live or cached);
 * NULL otherwise.  Never reads memory that the segment map does not
 * vouch for. */
segment_t *ebbi_segment_lookup(uintptr_t p, page_t **page_out)
{
    if ((p & (EBB_ALIGNMENT - 1)) != 0)
        return NULL;
    unsigned kind = ebbi_segmap_get(p);
    segment_t *seg;
    page_t *page;
    if (kind == SEGMAP_SEGMENT) {
        seg = ebbi_segment_of((void *)p);
        page = ebbi_page_of(seg, p);
    } else if (kind >= SEGMAP_HUGE_BELOW) {
        seg = (segment_t *)((uintptr_t)ebbi_segment_of((void *)p) - (uintptr_t)(kind - 1) * EBB_SEGMENT_SIZE);
        page = &seg->slices[1];
    } else {
        return NULL;
    }
    *page_out = page;
    if (ebbi_slice_freed(page->kind) && page->start == p)
        return seg; /* freed: the caller says "double free" */
    return ebbi_page_holds_block(page, p) ? seg : NULL;
}
