/* Safety modes, chosen at run time.  The seeds weigh two paths after free:
 * zero the memory (nothing leaks, at a cost) or make it inaccessible
 * (cheap, page by page, with the kernel's help).  ebbmalloc offers both,
 * and a hardened layout:
 *
 *   EBB_ZERO_ON_FREE=1  path 1: a freed block is zeroed, all but its first
 *                       16 bytes (the free-list link and the double-free
 *                       key), so calloc needs no memset on reuse.
 *   EBB_SECURE=1        free-list links encoded with a secret (a corrupted
 *                       link is reported, never followed); guard pages
 *                       between segments, between metadata and data, and
 *                       at the end of every page; blocks handed out in a
 *                       random order within a page; a canary after every
 *                       small block, checked on free; double frees of huge
 *                       blocks remembered after their unmapping.
 *   EBB_GUARD=1|before  path 2, enforced: every allocation has pages of its
 *                       own, against a PROT_NONE guard page (after it, or
 *                       before it); a freed block's pages become PROT_NONE
 *                       and wait in a quarantine (EBB_GUARD_QUARANTINE
 *                       bytes), so a use after free faults at once, and the
 *                       fault handler says what happened.
 *   EBB_GUARD_SAMPLE=N  one allocation in N (at random) takes the guarded
 *                       path: use-after-free detection in production,
 *                       within a budget of time (EBB_GUARD_SAMPLE_BUDGET).
 *
 * In the default mode none of this costs anything on the fast paths: the
 * modes put PAGE_SAFE on every page (free then takes the slow path) and,
 * for secure and guard, empty the heaps' direct tables (malloc then takes
 * the generic path).  Every report goes through report.c.
 *
 * This file reads the options and fixes, once, what the modes ask of the
 * layers below (ebbi_layout): those layers read sizes and switches, never
 * a mode.  The jobs themselves: secure.c (canaries, zeroing and checks),
 * guard.c (guarded blocks, their quarantine), sample.c (EBB_GUARD_SAMPLE's
 * draw and budget), fault.c (the fault handler).
 */
#include <stdlib.h>

#include "internal.h"

uint8_t ebbi_safety;
uint8_t ebbi_remote_free_work;
uintptr_t ebbi_link_secret;
ebbi_layout_t ebbi_layout;

/* EBB_GUARD_QUARANTINE's default under EBB_GUARD_SAMPLE: about 14 blocks
 * of one page (then up to GUARD_SPARE_MAX more, still inaccessible, as
 * spares), as many as GWP-ASan's 16 slots.  Every block in it was mapped
 * for itself (several times a spare's cost): a short run's budget went
 * on filling a larger one. */
#define GUARD_SAMPLE_QUARANTINE (1L << 20)

void ebbi_safety_init(void)
{
    uint8_t mode = 0;
    if (ebbi_option(EBB_OPTION_ZERO_ON_FREE))
        mode |= SAFETY_ZERO;
    if (ebbi_option(EBB_OPTION_SECURE))
        mode |= SAFETY_SECURE;
    if (ebbi_option(EBB_OPTION_GUARD))
        mode |= SAFETY_GUARD_ALL;
    long sample = ebbi_option(EBB_OPTION_GUARD_SAMPLE);
    if (sample == 1)
        mode |= SAFETY_GUARD_ALL;
    else if (sample > 1 && !(mode & SAFETY_GUARD_ALL)) /* EBB_GUARD=1 guards them all anyway */
        mode |= SAFETY_GUARD_SAMPLE;
    ebbi_link_secret = ebbi_os_random_word();
    ebbi_sample_init();
    ebbi_secure_init();

    ebbi_layout_t l = {0};
    if (mode & SAFETY_SECURE) {
        uint32_t ps = (uint32_t)ebbi_process.page_size;
        l.segment_guard = l.meta_guard = l.page_guard = l.huge_guard = ps;
        l.carve_shuffled = true;
        ebbi_option_set(EBB_OPTION_BRK, 0); /* segments apart, with guard pages */
    }
    if (mode & (SAFETY_ZERO | SAFETY_SECURE))
        l.page_flags = PAGE_SAFE;
    /* Zero-on-free keeps freed blocks zero but for their first words;
     * secure mode leaves its free key in the second. */
    l.free_keeps_zero = (mode & SAFETY_ZERO) != 0;
    /* Both modes promise that a freed block's bytes are gone, and a huge
     * one waits in the cache for reuse.  Zero-on-free clears it as it goes
     * there.  Secure mode closes it there (no access can see them), so it
     * clears only the pages a block takes again: a cached block that goes
     * back to the kernel costs no clearing. */
    l.huge_free_clears = (mode & SAFETY_ZERO) != 0;
    l.huge_reuse_clears = (mode & SAFETY_SECURE) && !l.huge_free_clears;
    ebbi_layout = l;

    if (mode & (SAFETY_SECURE | SAFETY_GUARD_ALL | SAFETY_GUARD_SAMPLE))
        ebbi_fault_install();
    /* Sampled blocks are few and far between: a short quarantine (the
     * spares behind it stay inaccessible too) keeps their cost down. */
    if ((mode & SAFETY_GUARD_SAMPLE) && getenv("EBB_GUARD_QUARANTINE") == NULL)
        ebbi_option_set(EBB_OPTION_GUARD_QUARANTINE, GUARD_SAMPLE_QUARANTINE);
    if (mode & (SAFETY_ZERO | SAFETY_SECURE))
        ebbi_remote_free_work |= REMOTE_FREE_CLEAR;
    ebbi_safety = mode;
}
