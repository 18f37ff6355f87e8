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
 * The cache.  A freed huge block (at 64 KiB, the common case) keeps its
 * mapping and its resident pages in the cache, oldest first, for as long
 * as the policy (reclaim.c) predicts reuse; there is no fixed count, only
 * the bound on freed memory.  A request takes:
 *   - the smallest cached mapping that holds it, whole, when the excess is
 *     small (an eighth of the request, at least 1 MiB);
 *   - else a fresh mapping whose data is filled with resident pages moved
 *     (mremap, no copy, no fault) from up to HUGE_SOURCES cached mappings:
 *     the smallest ones whole, then the tail of the smallest one that
 *     covers the rest (so the cache does not crumble into small pieces);
 *     what they cannot cover is fresh memory.
 * So a program that replaces big buffers of varying sizes reuses its pages
 * instead of faulting in new ones (mimalloc-bench's malloc-large), and the
 * cache holds about what the program's peaks say, not a multiple of it.
 *
 * Shells.  A cached mapping whose pages all moved away leaves its header
 * page, and after it the address space its pages held: a shell.  The next
 * target grows a shell in place (mremap) rather than mapping afresh, so a
 * program that keeps replacing big buffers makes no munmap and no mmap
 * call, only the moves.
 *
 * Joints.  mremap moves a range within one kernel mapping (VMA) only
 * (before Linux 6.17), and a moved range does not merge with its new
 * neighbours; so each segment remembers the offsets where its pages may
 * start a new VMA (`joints`), and every move goes extent by extent.  A
 * segment never takes more than EBB_HUGE_JOINTS; a move that fails leaves the
 * target's part fresh (an allocation), or is done by copying (realloc).
 */
#include <string.h>

#include "internal.h"

/* Cached mappings a request's pages may come from.  A move costs a system
 * call (tens of microseconds); the page faults it saves cost about a
 * millisecond per MiB. */
#define HUGE_SOURCES 8
/* A cached mapping serves a request whole when it exceeds it by no more
 * than this (or an eighth of the request): the excess stays in the block. */
#define WHOLE_SLACK ((size_t)1 << 20)

/* Mappings up to this size leave room to double in place. */
#define HUGE_REACH_MAX ((size_t)1 << 30)
/* Shells kept for reuse as targets (each costs its header page). */
#define HUGE_SHELLS 32

static struct {
    pthread_mutex_t lock;
    segment_t *oldest, *newest;  /* cached mappings, linked by next/prev */
    size_t bytes;                /* their map sizes */
    segment_t *shells;           /* linked by next */
    unsigned shell_count;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Secure mode: a guard page ends every huge mapping. */
static size_t tail_guard(void)
{
    return ebbi_layout.huge_guard;
}

/* The header's pages (segment_t spans a few), then never-touched slack
 * up to the block at `offset`. */
static size_t slack_before(size_t offset)
{
    size_t ps = ebbi_process.page_size;
    size_t header = (sizeof(segment_t) + ps - 1) & ~(ps - 1);
    return offset - header;
}

static size_t segment_slack(const segment_t *seg)
{
    return slack_before(seg->slices[1].start - (uintptr_t)seg);
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

/* ---- joints ------------------------------------------------------------------ */

/* Joints are kept sorted; one that does not fit is dropped and the
 * segment marked (a move across it then needs a kernel that moves several
 * VMAs at once, else it fails and the pages are given back instead; the
 * segment no longer grows in place). */
static void joint_add(segment_t *seg, size_t offset)
{
    if (offset == 0 || offset >= seg->map_size)
        return;
    if (seg->joint_count >= EBB_HUGE_JOINTS) {
        seg->joints_lost = 1;
        return;
    }
    unsigned i = seg->joint_count;
    while (i > 0 && seg->joints[i - 1] > offset)
        i--;
    if (i > 0 && seg->joints[i - 1] == offset)
        return;
    memmove(&seg->joints[i + 1], &seg->joints[i], (seg->joint_count - i) * sizeof seg->joints[0]);
    seg->joints[i] = offset;
    seg->joint_count++;
}

/* The mapping now ends at seg->map_size: joints past it go. */
static void joints_cut(segment_t *seg)
{
    while (seg->joint_count > 0 && seg->joints[seg->joint_count - 1] >= seg->map_size)
        seg->joint_count--;
}

/* The last VMA of the mapping starts here (realloc grows it in place). */
static size_t last_extent(const segment_t *seg)
{
    return seg->joint_count > 0 ? seg->joints[seg->joint_count - 1] : 0;
}

/* Move [from, from+len) of `src` to dst + at (mremap): in one call (Linux
 * 6.17 and later move several VMAs at once), else extent by extent.  `dst`
 * gets the joints, as far as it has room.  Returns the bytes moved before
 * a failure. */
static size_t move_extents(segment_t *src, size_t from, size_t len, segment_t *dst, size_t at)
{
    joint_add(dst, at);
    if (src->joints_lost)
        dst->joints_lost = 1; /* the pages bring VMA boundaries nobody knows */
    for (unsigned i = 0; i < src->joint_count; i++)
        if (src->joints[i] > from && src->joints[i] < from + len)
            joint_add(dst, at + src->joints[i] - from);
    if (ebbi_os_move((uint8_t *)src + from, len, (uint8_t *)dst + at))
        return len;
    size_t done = 0;
    while (done < len) {
        size_t a = from + done, b = from + len;
        for (unsigned i = 0; i < src->joint_count; i++)
            if (src->joints[i] > a && src->joints[i] < b) {
                b = src->joints[i];
                break;
            }
        if (b == from + len && done == 0)
            break; /* one extent, and it would not move */
        if (!ebbi_os_move((uint8_t *)src + a, b - a, (uint8_t *)dst + at + done))
            break;
        done += b - a;
    }
    return done;
}

/* ---- the cache (its lock held) ----------------------------------------------- */

static void cache_link(segment_t *seg)
{
    /* Ordered by cached_at_ns, oldest first (a piece put back keeps its age). */
    segment_t *after = cache.newest;
    while (after != NULL && after->cached_at_ns > seg->cached_at_ns)
        after = after->prev;
    seg->prev = after;
    seg->next = after != NULL ? after->next : cache.oldest;
    if (seg->next != NULL)
        seg->next->prev = seg;
    else
        cache.newest = seg;
    if (after != NULL)
        after->next = seg;
    else
        cache.oldest = seg;
    cache.bytes += seg->map_size;
    ebbi_account_reclaimable(EBBI_POOL_HUGE, (int64_t)seg->map_size);
}

static void cache_unlink(segment_t *seg)
{
    if (seg->prev != NULL)
        seg->prev->next = seg->next;
    else
        cache.oldest = seg->next;
    if (seg->next != NULL)
        seg->next->prev = seg->prev;
    else
        cache.newest = seg->prev;
    seg->next = seg->prev = NULL;
    cache.bytes -= seg->map_size;
    ebbi_account_reclaimable(EBBI_POOL_HUGE, -(int64_t)seg->map_size);
}

/* ---- mappings ---------------------------------------------------------------------- */

/* Give a huge segment back to the kernel; its memory counts as reclaimed
 * (huge blocks are taken to be resident: they are written by the program). */
static void huge_unmap(segment_t *seg)
{
    ebbi_ownmap_unmap(seg, segment_slack(seg) + (seg->guard_untouched ? tail_guard() : 0));
}

/* Secure mode: the mapping's guard page, counted as not resident, has
 * moved among data pages (which count as resident) or left: it counts no
 * more.  The mapping's last page stays a guard, counted as resident. */
static void guard_uncount(segment_t *seg)
{
    if (seg->guard_untouched) {
        ebbi_ownmap_count(0, -(int64_t)tail_guard());
        seg->guard_untouched = 0;
    }
}

/* Secure mode: the mapping's last page closed as its guard, whichever
 * page ended up there (fresh, or moved in from the cache).  False if the
 * kernel refused (the map count). */
static bool guard_close(segment_t *seg)
{
    size_t guard = tail_guard();
    return guard == 0 || ebbi_os_protect((uint8_t *)seg + seg->map_size - guard, guard, EBBI_ACCESS_NONE);
}

/* Unmap the last `cut` bytes of a cached mapping (outside the lock). */
static void huge_shrink(segment_t *seg, size_t cut)
{
    ebbi_os_unmap((uint8_t *)seg + seg->map_size - cut, cut);
    seg->map_size -= cut;
    joints_cut(seg);
    ebbi_ownmap_count(-(int64_t)cut, 0);
    ebbi_account_reclaimed(cut);
}

static segment_t *huge_map(size_t map_size, size_t align)
{
    /* A block at 64 KiB may come back to the cache: room to grow in place
     * to twice its size, for the next request it serves (cache_take). */
    size_t offset = block_offset(align);
    bool at_64k = offset == EBB_SLICE_SIZE;
    size_t reach = at_64k && map_size <= HUGE_REACH_MAX ? 2 * map_size : map_size;
    size_t guard_at = tail_guard() != 0 ? map_size - tail_guard() : 0;
    segment_t *seg = ebbi_ownmap_map(map_size, align, at_64k ? &reach : NULL, guard_at, slack_before(offset));
    if (seg != NULL) {
        seg->guard_untouched = guard_at != 0; /* ebbi_ownmap_map counted it so */
        ebbi_account_mapped();
    }
    return seg;
}

/* Unmap a shell: its header page (outside the lock). */
static void shell_unmap(segment_t *shell)
{
    ebbi_os_unmap(shell, EBB_SLICE_SIZE);
    ebbi_ownmap_count(-(int64_t)EBB_SLICE_SIZE, -(int64_t)slack_before(EBB_SLICE_SIZE));
    ebbi_account_reclaimed(EBB_SLICE_SIZE - slack_before(EBB_SLICE_SIZE));
}

/* A mapping whose data all moved away: its header stays as a shell, the
 * address space up to `reach` is free. */
static void shell_put(segment_t *seg, size_t reach)
{
    ebbi_ownmap_unmark(seg);
    seg->map_size = EBB_SLICE_SIZE;
    seg->reach = reach;
    pthread_mutex_lock(&cache.lock);
    bool kept = cache.shell_count < HUGE_SHELLS;
    if (kept) {
        seg->next = cache.shells;
        cache.shells = seg;
        cache.shell_count++;
    }
    pthread_mutex_unlock(&cache.lock);
    if (!kept)
        shell_unmap(seg);
}

/* A shell grown in place to `map_size` bytes, or NULL. */
static segment_t *shell_take(size_t map_size)
{
    for (;;) {
        pthread_mutex_lock(&cache.lock);
        segment_t **at = &cache.shells;
        while (*at != NULL && (*at)->reach < map_size)
            at = &(*at)->next;
        segment_t *seg = *at;
        if (seg != NULL) {
            *at = seg->next;
            cache.shell_count--;
        }
        pthread_mutex_unlock(&cache.lock);
        if (seg == NULL)
            return NULL;
        if (ebbi_os_resize_in_place(seg, EBB_SLICE_SIZE, map_size)) {
            ebbi_ownmap_count((int64_t)(map_size - EBB_SLICE_SIZE), 0);
            seg->map_size = map_size;
            seg->joint_count = 0; /* its header page and the grown part: one VMA */
            seg->joints_lost = 0;
            seg->next = seg->prev = NULL;
            return seg;
        }
        shell_unmap(seg); /* something else took its address space */
    }
}

size_t ebbi_huge_trim(uint64_t cutoff_ns, uint64_t keep)
{
    if (keep == 0 && cutoff_ns == EBBI_NEVER) {
        /* Everything goes: the shells too. */
        pthread_mutex_lock(&cache.lock);
        segment_t *shells = cache.shells;
        cache.shells = NULL;
        cache.shell_count = 0;
        pthread_mutex_unlock(&cache.lock);
        while (shells != NULL) {
            segment_t *next = shells->next;
            shell_unmap(shells);
            shells = next;
        }
    }
    if (ebbi_account_pool_reclaimable(EBBI_POOL_HUGE) <= keep)
        return 0;
    segment_t *gone = NULL, *shrink = NULL;
    size_t cut = 0, given = 0;
    pthread_mutex_lock(&cache.lock);
    while (cache.bytes > keep && cache.oldest != NULL && cache.oldest->cached_at_ns < cutoff_ns) {
        segment_t *seg = cache.oldest;
        size_t over = cache.bytes - keep;
        cache_unlink(seg);
        if (over >= seg->map_size || tail_guard() != 0) {
            seg->next = gone;
            gone = seg;
            continue;
        }
        /* Part of it: its tail, in whole pages; the rest stays cached. */
        cut = over & ~(ebbi_process.page_size - 1);
        if (seg->map_size - cut < EBB_SLICE_SIZE + ebbi_process.page_size)
            cut = seg->map_size - EBB_SLICE_SIZE - ebbi_process.page_size;
        shrink = seg;
        break;
    }
    pthread_mutex_unlock(&cache.lock);
    while (gone != NULL) {
        segment_t *next = gone->next;
        given += gone->map_size;
        huge_unmap(gone);
        gone = next;
    }
    if (shrink != NULL) {
        if (cut > 0) {
            huge_shrink(shrink, cut);
            given += cut;
        }
        pthread_mutex_lock(&cache.lock);
        cache_link(shrink);
        pthread_mutex_unlock(&cache.lock);
    }
    return given;
}

uint64_t ebbi_huge_oldest_cached_ns(void)
{
    pthread_mutex_lock(&cache.lock);
    uint64_t oldest = cache.oldest != NULL ? cache.oldest->cached_at_ns : 0;
    pthread_mutex_unlock(&cache.lock);
    return oldest;
}

/* Grow a segment's mapping in place to `map_size` (its last VMA, into
 * the free address space after it).  Nothing else may be at that address:
 * mremap without MREMAP_MAYMOVE fails rather than take it. */
static bool grow_in_place(segment_t *seg, size_t map_size)
{
    size_t last = last_extent(seg);
    if (!ebbi_os_resize_in_place((uint8_t *)seg + last, seg->map_size - last, map_size - last))
        return false;
    ebbi_ownmap_count((int64_t)(map_size - seg->map_size), 0);
    seg->map_size = map_size;
    if (seg->reach < map_size)
        seg->reach = map_size;
    return true;
}

/* Fill [at, at + len) of `target` (mapped, fresh there) with resident
 * pages moved from cached mappings: the smallest ones whole, as long as
 * they leave some of the request to cover (so that the cache does not
 * crumble into small pieces), then the tail of the smallest one that
 * covers the rest, or else the largest ones; up to HUGE_SOURCES.  Returns
 * the bytes filled, from `at` on (the rest stays fresh). */
static size_t fill_from_cache(segment_t *target, size_t at, size_t len)
{
    segment_t *sources[HUGE_SOURCES];
    size_t parts[HUGE_SOURCES];
    unsigned n = 0;
    size_t covered = 0;
    pthread_mutex_lock(&cache.lock);
    while (n < HUGE_SOURCES && covered < len) {
        segment_t *smallest = NULL, *cover = NULL, *largest = NULL;
        for (segment_t *s = cache.oldest; s != NULL; s = s->next) {
            bool taken = false;
            for (unsigned i = 0; i < n; i++)
                taken |= sources[i] == s;
            if (taken)
                continue;
            size_t have = s->map_size - EBB_SLICE_SIZE;
            if (smallest == NULL || s->map_size < smallest->map_size)
                smallest = s;
            if (have >= len - covered && (cover == NULL || s->map_size < cover->map_size))
                cover = s;
            if (largest == NULL || s->map_size > largest->map_size)
                largest = s;
        }
        if (smallest == NULL)
            break;
        segment_t *pick = smallest->map_size - EBB_SLICE_SIZE < len - covered && n + 1 < HUGE_SOURCES ? smallest
                          : cover != NULL                                                             ? cover
                                                                                                       : largest;
        size_t have = pick->map_size - EBB_SLICE_SIZE;
        sources[n] = pick;
        parts[n++] = have < len - covered ? have : len - covered;
        covered += parts[n - 1];
    }
    for (unsigned i = 0; i < n; i++)
        cache_unlink(sources[i]);
    pthread_mutex_unlock(&cache.lock);

    size_t filled = 0;
    for (unsigned i = 0; i < n; i++) {
        segment_t *s = sources[i];
        size_t reach = s->reach > s->map_size ? s->reach : s->map_size;
        size_t from = s->map_size - parts[i]; /* its tail */
        /* Secure mode: cached pages are inaccessible; they are opened where
         * they lie and arrive open.  Refused (the map count), the part goes
         * back to the kernel, as a failed move's rest does. */
        size_t moved = 0;
        if (tail_guard() == 0 || ebbi_os_protect((uint8_t *)s + from, parts[i], EBBI_ACCESS_RW))
            moved = move_extents(s, from, parts[i], target, at + filled);
        filled += moved;
        guard_uncount(s); /* its tail, the guard page with it, moved or is cut below */
        if (moved < parts[i]) /* a move failed: the rest of the part goes back to the kernel */
            huge_shrink(s, s->map_size - from - moved);
        if (moved > 0) {
            s->map_size = from; /* the pages moved are the target's now */
            joints_cut(s);
            ebbi_ownmap_count(-(int64_t)moved, 0);
        }
        if (s->map_size <= EBB_SLICE_SIZE) {
            shell_put(s, reach); /* all its pages went */
            continue;
        }
        pthread_mutex_lock(&cache.lock);
        cache_link(s);
        pthread_mutex_unlock(&cache.lock);
    }
    if (filled > 0 && filled < len)
        joint_add(target, at + filled); /* the fresh rest */
    return filled;
}

/* A mapping of `map_size` bytes, its block at 64 KiB, from the cache:
 * whole, or a cached mapping (else a shell, else a fresh mapping) grown in
 * place and filled with cached pages (see the top of the file).
 * `reused`: bytes at the start of the block that hold another block's old
 * contents (the rest is fresh, zero).  NULL: nothing cached serves. */
static segment_t *cache_take(size_t map_size, size_t *reused)
{
    size_t data = map_size - EBB_SLICE_SIZE;
    size_t slack = map_size / 8 > WHOLE_SLACK ? map_size / 8 : WHOLE_SLACK;
    pthread_mutex_lock(&cache.lock);
    segment_t *best = NULL, *host = NULL;
    for (segment_t *s = cache.oldest; s != NULL; s = s->next) {
        if (s->map_size >= map_size && (best == NULL || s->map_size < best->map_size))
            best = s;
        /* A smaller one that can grow in place, the largest. */
        if (s->map_size < map_size && s->reach >= map_size && !s->joints_lost &&
            (host == NULL || s->map_size > host->map_size))
            host = s;
    }
    if (best != NULL && (best->map_size - map_size <= slack ||
                         (tail_guard() != 0 && best->map_size - map_size <= best->map_size / 2))) {
        cache_unlink(best);
        pthread_mutex_unlock(&cache.lock);
        if (tail_guard() != 0 &&
            !ebbi_os_protect((uint8_t *)best + EBB_SLICE_SIZE, best->map_size - EBB_SLICE_SIZE - tail_guard(), EBBI_ACCESS_RW)) {
            huge_unmap(best); /* the kernel refused (too many mappings): a fresh one, or ENOMEM */
            return NULL;
        }
        *reused = best->map_size - EBB_SLICE_SIZE;
        return best;
    }
    if (cache.oldest == NULL) {
        pthread_mutex_unlock(&cache.lock);
        return NULL;
    }
    if (best != NULL || tail_guard() != 0)
        host = NULL; /* the tail of that one covers it all; secure mode's are closed */
    if (host != NULL)
        cache_unlink(host);
    pthread_mutex_unlock(&cache.lock);

    segment_t *target = NULL;
    size_t filled = 0;
    if (host != NULL) {
        size_t had = host->map_size - EBB_SLICE_SIZE;
        if (grow_in_place(host, map_size)) {
            target = host;
            filled = had;
        } else {
            host->reach = host->map_size; /* its address space is taken */
            pthread_mutex_lock(&cache.lock);
            cache_link(host);
            pthread_mutex_unlock(&cache.lock);
        }
    }
    if (target == NULL)
        target = shell_take(map_size);
    if (target == NULL) {
        target = huge_map(map_size, EBB_SLICE_SIZE);
        if (target == NULL)
            return NULL;
    }
    filled += fill_from_cache(target, EBB_SLICE_SIZE + filled, data - filled);
    /* Secure mode: a moved page may have taken the guard page's place (a
     * shell has none). */
    if (tail_guard() != 0) {
        if (filled == data)
            guard_uncount(target);
        if (!target->guard_untouched && !guard_close(target)) {
            target->slices[1].start = (uintptr_t)target + EBB_SLICE_SIZE; /* for its slack */
            huge_unmap(target);
            return NULL;
        }
    }
    *reused = filled;
    return target;
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
    size_t reused = 0;
    ebbi_account_tick();
    if (offset == EBB_SLICE_SIZE)
        seg = cache_take(map_size, &reused);
    if (seg == NULL) {
        seg = huge_map(map_size, align);
        if (seg == NULL) {
            errno = ENOMEM;
            return NULL;
        }
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
    ebbi_ownmap_mark(seg, EBBI_MARK_BLOCK_REGIONS);

    size_t usable = ebbi_huge_usable_size(seg, page);
    ebbi_counter_add(&heap->huge_allocs, 1);
    ebbi_counter_add(&heap->huge_bytes_alloc, usable);
    ebbi_account_take(EBBI_POOL_HUGE, seg->map_size, seg->map_size - offset > reused ? seg->map_size - offset - reused : 0);
    /* Of the reused bytes (the rest is fresh, zero), those a calloc
     * promises, or all the block can reach where the mode clears them.
     * Cleared without bringing in a page the old block never touched. */
    size_t clear = 0;
    if (ebbi_layout.huge_reuse_clears)
        clear = reused < usable ? reused : usable;
    else if (zero && !ebbi_layout.huge_free_clears)
        clear = size < reused ? page_round(size) : reused;
    if (clear > 0)
        ebbi_clear((void *)block, clear);
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
    ebbi_account_give(EBBI_POOL_HUGE, seg->map_size);
    /* Keep the mapping while the policy predicts reuse (reclaim.c), so that
     * a program that frees and allocates big buffers does not go to the
     * kernel each time; the policy's bound (its time to give back, which
     * depends on what is cached) decides at once what may stay. */
    uint64_t now = ebbi_os_now_ns();
    if (page->start == (uintptr_t)seg + EBB_SLICE_SIZE && seg->map_size <= (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX)) {
        /* Still ours, but no longer a block: carved 0 makes free()
         * refuse it, and the kind lets it say "double free". */
        page->kind = SLICE_HUGE_CACHED;
        ebbi_store_relaxed(&page->carved, 0);
        seg->cached_at_ns = now;
        if (ebbi_layout.huge_free_clears)
            ebbi_clear((void *)page->start, usable);
        /* Secure mode: inaccessible while cached, so that a use after
         * free faults (and is named, fault.c); open again when taken. */
        if (tail_guard() != 0)
            ebbi_os_protect((void *)page->start, usable, EBBI_ACCESS_NONE);
        pthread_mutex_lock(&cache.lock);
        cache_link(seg);
        pthread_mutex_unlock(&cache.lock);
        ebbi_account_freed(now);
    } else {
        /* Bigger than all that may ever wait: at once, and a refault if it
         * is needed again. */
        ebbi_account_credit(seg->map_size);
        huge_unmap(seg);
    }
    ebbi_account_tick();
}

/* realloc's move of a huge block to `target` (mapped, new_map bytes): the
 * pages move in one call, or extent by extent; an extent the kernel will
 * not move is copied.  The old mapping is gone after. */
static void move_or_copy(segment_t *seg, size_t old_map, segment_t *target)
{
    if (ebbi_os_move(seg, old_map, target))
        return;
    size_t at = 0;
    while (at < old_map) {
        size_t end = old_map;
        for (unsigned i = 0; i < seg->joint_count; i++)
            if (seg->joints[i] > at && seg->joints[i] < end) {
                end = seg->joints[i];
                break;
            }
        if (!ebbi_os_move((uint8_t *)seg + at, end - at, (uint8_t *)target + at)) {
            memcpy((uint8_t *)target + at, (uint8_t *)seg + at, end - at);
            ebbi_os_unmap((uint8_t *)seg + at, end - at);
        }
        at = end;
    }
}

void *ebbi_huge_realloc(heap_t *heap, segment_t *seg, page_t *page, size_t size)
{
    size_t offset = page->start - (uintptr_t)seg, guard = tail_guard();
    if (offset >= EBB_SEGMENT_SIZE || size > (size_t)PTRDIFF_MAX - offset - guard)
        return NULL; /* the caller copies */
    size_t old_map = seg->map_size;
    size_t new_map = page_round(offset + size) + guard;
    /* Shrinking by too little to be worth a system call (but for a guard
     * page, which must follow the size asked for). */
    if (new_map == old_map || (new_map < old_map && guard == 0 && old_map - new_map < old_map / 4))
        return (void *)page->start;
    /* A guard page ends the mapping (secure mode): the old one opened, so
     * that the pages move or grow as one range, and one closed at the new
     * end. */
    if (guard != 0) {
        uint8_t *old_guard = (uint8_t *)seg + old_map - guard;
        ebbi_os_protect(old_guard, guard, EBBI_ACCESS_RW);
        /* A guard page that came from the cache holds another block's
         * bytes, which the growth would show. */
        if (ebbi_layout.huge_reuse_clears && !seg->guard_untouched && new_map > old_map)
            memset(old_guard, 0, guard);
    }
    if (new_map <= old_map) {
        guard_uncount(seg); /* cut off; the new guard was a data page */
        if (guard != 0)
            ebbi_os_protect((uint8_t *)seg + new_map - guard, guard, EBBI_ACCESS_NONE);
        ebbi_os_unmap((uint8_t *)seg + new_map, old_map - new_map);
        seg->map_size = new_map;
        joints_cut(seg);
        ebbi_ownmap_count(-(int64_t)(old_map - new_map), 0);
    } else if (!seg->joints_lost &&
               ebbi_os_resize_in_place((uint8_t *)seg + last_extent(seg), old_map - last_extent(seg),
                                       new_map - last_extent(seg))) {
        seg->map_size = new_map;
        if (seg->reach < new_map)
            seg->reach = new_map;
    } else {
        /* Move the pages to a fresh aligned place: no copy. */
        segment_t *target = ebbi_os_map_aligned(new_map, EBB_SEGMENT_SIZE, 0);
        if (target == NULL) {
            if (guard != 0)
                ebbi_os_protect((uint8_t *)seg + old_map - guard, guard, EBBI_ACCESS_NONE);
            return NULL;
        }
        /* Unmark the old place before the move frees it: another thread may
         * map a segment there the moment it is free. */
        ebbi_ownmap_unmark(seg);
        move_or_copy(seg, old_map, target);
        seg = target;
        seg->map_size = new_map;
        seg->reach = new_map;
        joint_add(seg, old_map); /* the grown part, from the target's own mapping */
        page = &seg->slices[1];
        page->start = (uintptr_t)seg + offset;
        ebbi_ownmap_mark(seg, EBBI_MARK_BLOCK_REGIONS);
    }
    int64_t delta = (int64_t)seg->map_size - (int64_t)old_map;
    if (delta > 0) {
        ebbi_ownmap_count(delta, 0);
        ebbi_counter_add(&heap->huge_bytes_alloc, (uint64_t)delta);
        /* The grown part from cached pages (open), as a new block's would
         * be.  Secure mode: then the guard page at the new end; refused
         * (the map count), the block goes on without one. */
        size_t filled = fill_from_cache(seg, old_map, (size_t)delta);
        if (ebbi_layout.huge_reuse_clears && filled > 0)
            ebbi_clear((uint8_t *)seg + old_map, filled);
        /* The old guard page is a data page now; a fresh page at the new
         * end, untouched, takes its place in the count, unless the cache
         * filled that far. */
        if (filled == (size_t)delta)
            guard_uncount(seg);
        ebbi_account_take(EBBI_POOL_HUGE, (uint64_t)delta, (uint64_t)delta - filled);
        (void)guard_close(seg);
    } else if (delta < 0) {
        ebbi_counter_add(&heap->huge_bytes_freed, (uint64_t)-delta);
        ebbi_account_give(EBBI_POOL_HUGE, (uint64_t)-delta);
    }
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
