/* The fault handler (secure and guard modes): a fault in a guarded
 * block's pages, or a secure huge block's guard page or cached pages, is
 * named (what, which block, where it was allocated and freed) before the
 * fault takes its course. */
#include <signal.h>

#include "internal.h"

static const char *site_name(uintptr_t site, char *buf, size_t cap)
{
    return site == 0 ? "an unknown place" : ebbi_os_code_name(site, buf, cap);
}

/* Regions looked down through for a huge mapping's start (4 GiB). */
#define COVER_SCAN 1024

/* The segment whose mapping may cover addr (the caller checks its end),
 * by the segment map: its region's entry, or else (a huge block marks
 * only its first regions) the nearest segment below: mappings do not
 * overlap, so no other can reach addr. */
static segment_t *segment_covering(uintptr_t addr)
{
    unsigned v = ebbi_segmap_get(addr);
    uintptr_t region = addr & ~(uintptr_t)(EBB_SEGMENT_SIZE - 1);
    if (v == SEGMAP_SEGMENT)
        return (segment_t *)region;
    if (v >= SEGMAP_HUGE_BELOW)
        return (segment_t *)(region - (uintptr_t)(v - 1) * EBB_SEGMENT_SIZE);
    for (unsigned k = 1; k <= COVER_SCAN && region >= (uintptr_t)k * EBB_SEGMENT_SIZE; k++) {
        uintptr_t below = region - (uintptr_t)k * EBB_SEGMENT_SIZE;
        v = ebbi_segmap_get(below);
        if (v == SEGMAP_SEGMENT)
            return (segment_t *)below;
        if (v >= SEGMAP_HUGE_BELOW)
            return (segment_t *)(below - (uintptr_t)(v - 1) * EBB_SEGMENT_SIZE);
    }
    return NULL;
}

static void fault_handler(int sig, void *info_arg, void *context)
{
    siginfo_t *info = info_arg;
    uintptr_t addr = (uintptr_t)info->si_addr;
    size_t ps = ebbi_process.page_size;
    if ((ebbi_safety & SAFETY_SECURE) && ebbi_zero_holds(addr)) {
        /* A zero-byte block (secure.c) has no byte to touch. */
        uintptr_t block = addr & ~(uintptr_t)15;
        ebbi_message("ebbmalloc: error: %s a 0-byte block (%p)\n",
                     ebbi_zero_live(block) ? "heap overflow past" : "use after free of", (void *)block);
        ebbi_message("ebbmalloc:   the access was at %p\n", (void *)addr);
        ebbi_os_fault_chain(sig, info_arg, context);
        return;
    }
    segment_t *seg = segment_covering(addr);
    /* Just past a mapping (a block against its end, EBB_GUARD=before): the
     * block's own mapping, whatever follows it. */
    if ((seg == NULL || addr >= (uintptr_t)seg + seg->map_size) && addr >= ps) {
        segment_t *before = segment_covering(addr - ps);
        if (before != NULL && addr >= (uintptr_t)before + before->map_size &&
            addr < (uintptr_t)before + before->map_size + ps)
            seg = before;
    }
    bool beyond = seg != NULL && addr >= (uintptr_t)seg + seg->map_size;
    page_t *page = seg != NULL ? &seg->slices[1] : NULL;
    if (seg == NULL || seg->kind != SEGMENT_HUGE || addr < (uintptr_t)seg ||
        addr >= (uintptr_t)seg + seg->map_size + (beyond ? ps : 0) ||
        (page->kind != SLICE_GUARDED && page->kind != SLICE_GUARD_FREED && page->kind != SLICE_HUGE &&
         page->kind != SLICE_HUGE_CACHED)) {
        ebbi_os_fault_chain(sig, info_arg, context);
        return;
    }
    if (page->kind == SLICE_HUGE || page->kind == SLICE_HUGE_CACHED) {
        /* Secure mode: a huge block ends at a guard page, and a freed one
         * waits in the cache inaccessible (huge.c). */
        size_t usable = ebbi_huge_usable_size(seg, page);
        bool past = beyond || addr >= page->start + usable;
        ebbi_message("ebbmalloc: error: %s a %zu-byte block (%p)\n",
                     past ? "heap overflow past" : "use after free of", usable, (void *)page->start);
        ebbi_message("ebbmalloc:   the access was at %p\n", (void *)addr);
        ebbi_os_fault_chain(sig, info_arg, context);
        return;
    }
    uintptr_t guard = ebbi_guard_page(seg);
    size_t size = page->block_size;
    char what[256], alloc_at[160], free_at[160];
    const char *kind;
    if (beyond)
        kind = "heap overflow past";
    else if (addr >= guard && addr < guard + ps)
        kind = guard > page->start ? "heap overflow past" : "heap underflow before";
    else
        kind = "use after";
    if (page->kind == SLICE_GUARD_FREED && kind[0] == 'u')
        ebbi_format(what, sizeof what, "use after free of a %zu-byte block", size);
    else if (page->kind == SLICE_GUARD_FREED)
        ebbi_format(what, sizeof what, "%s a freed %zu-byte block", kind, size);
    else
        ebbi_format(what, sizeof what, "%s a %zu-byte block", kind, size);
    ebbi_message("ebbmalloc: error: %s (%p)\n", what, (void *)page->start);
    ebbi_message("ebbmalloc:   the access was at %p; the block was allocated from %s", (void *)addr,
                 site_name(seg->alloc_site, alloc_at, sizeof alloc_at));
    if (page->kind == SLICE_GUARD_FREED)
        ebbi_message(" and freed from %s", site_name(seg->free_site, free_at, sizeof free_at));
    ebbi_message("\n");
    /* Let the fault take its course. */
    ebbi_os_fault_chain(sig, info_arg, context);
}

void ebbi_fault_install(void)
{
    ebbi_os_install_fault_handler(fault_handler);
}
