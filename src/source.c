/* Memory sources: where segments come from.
 *
 * The program break is the seeds' classic heap: it grows upward, and when
 * the segments at its top are free it is moved back down (the memory goes
 * back to the kernel).  A free segment below the top cannot be given back
 * that way; it is decommitted (its pages read back as zero) and reused
 * before the break grows again.
 *
 * Another user of sbrk in the process may move the break.  We own exactly
 * [base, top); before growing or shrinking we check that the break is
 * still at top, and every growth checks where sbrk found the break.  Once
 * someone else has moved it, we never move it again: we grow by mmap
 * instead, and free segments in our part are only decommitted, so nobody
 * else's memory is ever trimmed.  No system call moves the break only if it
 * is where we think, so a foreign sbrk in another thread at the very
 * moment we shrink cannot be excluded: the break is used only when
 * ebbmalloc is the process's malloc (the C library's would be such a user),
 * and can be turned off with EBB_BRK=0.
 *
 * mmap is the other source, and the fallback whenever the break cannot
 * grow (disabled with EBB_BRK=0, foreign break moves, RLIMIT_DATA, another
 * mapping in the way).
 */
#include <string.h>

#include "internal.h"

static struct {
    pthread_mutex_t lock;
    uintptr_t start;       /* the break when we first moved it */
    uintptr_t base;        /* first segment (start rounded up to a segment) */
    uintptr_t top;         /* our end of the break */
    bool disabled;         /* off, or someone else moved the break */
    uint64_t free_bits[EBB_BRK_MAX_SEGMENTS / 64]; /* free segments below top */
    uint64_t zero_bits[EBB_BRK_MAX_SEGMENTS / 64]; /* ...of those, decommitted */
    uint32_t free_count;
} brk_src = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic(uint64_t) mapped_bytes;

uint64_t ebbi_source_mapped_bytes(void)
{
    return ebbi_load_relaxed(&mapped_bytes);
}

static size_t brk_index(uintptr_t seg)
{
    return (seg - brk_src.base) >> EBB_SEGMENT_SHIFT;
}

static bool bit_get(const uint64_t *bits, size_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

static void bit_put(uint64_t *bits, size_t i, bool value)
{
    if (value)
        bits[i / 64] |= (uint64_t)1 << (i % 64);
    else
        bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* A segment of the break: in use, free, or free and known to be zero. */
enum brk_state { BRK_IN_USE, BRK_FREE, BRK_FREE_ZERO };

static void brk_mark(size_t i, enum brk_state state)
{
    bool is_free = state != BRK_IN_USE, is_zero = state == BRK_FREE_ZERO;
    if (bit_get(brk_src.free_bits, i) != is_free)
        brk_src.free_count += is_free ? 1 : -1;
    bit_put(brk_src.free_bits, i, is_free);
    bit_put(brk_src.zero_bits, i, is_free && is_zero);
}

/* Is the break still where we left it?  If not, never move it again. */
static bool brk_still_ours(void)
{
    if (!brk_src.disabled && (uintptr_t)ebbi_os_brk_current() == brk_src.top)
        return true;
    brk_src.disabled = true;
    return false;
}

/* With the lock held: give back the free segments at the top of the break. */
static void brk_trim_top(void)
{
    size_t n = brk_index(brk_src.top);
    size_t k = n;
    while (k > 0 && bit_get(brk_src.free_bits, k - 1))
        k--;
    if (k == n || !brk_still_ours())
        return;
    /* When every segment goes, the alignment padding goes too. */
    uintptr_t new_top = k == 0 ? brk_src.start : brk_src.base + (k << EBB_SEGMENT_SHIFT);
    if (ebbi_os_brk_move(-(intptr_t)(brk_src.top - new_top)) == NULL)
        return;
    for (size_t i = k; i < n; i++)
        brk_mark(i, BRK_IN_USE);
    ebbi_fetch_sub_relaxed(&mapped_bytes, (n - k) << EBB_SEGMENT_SHIFT);
    brk_src.top = new_top;
    if (k == 0)
        brk_src.base = 0; /* the next growth aligns the break again */
}

/* With the lock held: move the break by `delta`, which must find it at
 * `expected`.  sbrk returns where the break was, so a move by someone else
 * between our look and our move is seen here: we then stop using the break,
 * and leave alone what the call added (it may sit beside foreign memory). */
static bool brk_move_from(uintptr_t expected, intptr_t delta)
{
    void *old = ebbi_os_brk_move(delta);
    if (old == NULL)
        return false;
    if ((uintptr_t)old != expected) {
        brk_src.disabled = true;
        return false;
    }
    return true;
}

/* With the lock held: move the break up by one segment. */
static segment_t *brk_grow(void)
{
    if (brk_src.base == 0) {
        /* First growth, or the first after a full trim: align the break. */
        uintptr_t cur = (uintptr_t)ebbi_os_brk_current();
        if (cur == 0 || (brk_src.top != 0 && cur != brk_src.top)) {
            brk_src.disabled = true;
            return NULL;
        }
        uintptr_t base = (cur + EBB_SEGMENT_MASK) & ~(uintptr_t)EBB_SEGMENT_MASK;
        if (base != cur && !brk_move_from(cur, (intptr_t)(base - cur)))
            return NULL;
        brk_src.start = cur;
        brk_src.base = base;
        brk_src.top = base;
    }
    if (brk_index(brk_src.top) >= EBB_BRK_MAX_SEGMENTS || !brk_still_ours())
        return NULL;
    /* On failure (RLIMIT_DATA, a mapping in the way) the caller falls back
     * to mmap for this segment; the break is tried again next time. */
    if (!brk_move_from(brk_src.top, (intptr_t)EBB_SEGMENT_SIZE))
        return NULL;
    segment_t *seg = (segment_t *)brk_src.top;
    brk_src.top += EBB_SEGMENT_SIZE;
    ebbi_fetch_add_relaxed(&mapped_bytes, EBB_SEGMENT_SIZE);
    return seg;
}

static segment_t *brk_alloc_segment(bool *is_zero)
{
    segment_t *seg = NULL;
    pthread_mutex_lock(&brk_src.lock);
    if (brk_src.free_count > 0) {
        /* A free segment below the top, already mapped: lowest first. */
        for (size_t w = 0; seg == NULL; w++) {
            if (brk_src.free_bits[w] != 0) {
                size_t i = w * 64 + (size_t)__builtin_ctzll(brk_src.free_bits[w]);
                *is_zero = bit_get(brk_src.zero_bits, i);
                brk_mark(i, BRK_IN_USE);
                seg = (segment_t *)(brk_src.base + (i << EBB_SEGMENT_SHIFT));
            }
        }
    } else if (!brk_src.disabled) {
        seg = brk_grow();
        *is_zero = true;
    }
    pthread_mutex_unlock(&brk_src.lock);
    return seg;
}

static void brk_free_segment(segment_t *seg)
{
    size_t i = brk_index((uintptr_t)seg);
    pthread_mutex_lock(&brk_src.lock);
    if ((uintptr_t)seg + EBB_SEGMENT_SIZE == brk_src.top && !brk_src.disabled) {
        brk_mark(i, BRK_FREE);
        brk_trim_top();
        if (!bit_get(brk_src.free_bits, i)) {
            pthread_mutex_unlock(&brk_src.lock);
            return; /* given back with the break */
        }
        brk_mark(i, BRK_IN_USE); /* the trim failed: decommit instead */
    }
    pthread_mutex_unlock(&brk_src.lock);
    /* Below the top the memory can only be decommitted; do it unlocked,
     * before the segment is visible as free.  (Locked memory keeps its
     * contents: then the segment is not known to be zero.) */
    bool zero = ebbi_os_decommit(seg, EBB_SEGMENT_SIZE);
    pthread_mutex_lock(&brk_src.lock);
    brk_mark(i, zero ? BRK_FREE_ZERO : BRK_FREE);
    brk_trim_top();
    pthread_mutex_unlock(&brk_src.lock);
}

segment_t *ebbi_source_alloc_segment(bool *is_zero, uint8_t *source)
{
    if (ebbi_option(EBB_OPTION_BRK)) {
        segment_t *seg = brk_alloc_segment(is_zero);
        if (seg != NULL) {
            *source = SOURCE_BRK;
            return seg;
        }
    }
    /* Secure mode: a guard page after every segment, so no two are adjacent. */
    size_t guard = ebbi_layout.segment_guard;
    segment_t *seg = ebbi_os_map_aligned(EBB_SEGMENT_SIZE + guard, EBB_SEGMENT_SIZE, 0);
    if (seg == NULL)
        return NULL;
    if (guard != 0)
        ebbi_os_protect((uint8_t *)seg + EBB_SEGMENT_SIZE, guard, EBBI_ACCESS_NONE);
    ebbi_fetch_add_relaxed(&mapped_bytes, EBB_SEGMENT_SIZE);
    *is_zero = true;
    *source = SOURCE_MMAP;
    return seg;
}

void ebbi_source_free_segment(segment_t *seg, uint8_t source)
{
    if (source == SOURCE_BRK) {
        brk_free_segment(seg);
        return;
    }
    size_t guard = ebbi_layout.segment_guard;
    ebbi_os_unmap(seg, EBB_SEGMENT_SIZE + guard);
    ebbi_fetch_sub_relaxed(&mapped_bytes, EBB_SEGMENT_SIZE);
}

void ebbi_source_fork_prepare(void)
{
    pthread_mutex_lock(&brk_src.lock);
}

void ebbi_source_fork_parent(void)
{
    pthread_mutex_unlock(&brk_src.lock);
}

void ebbi_source_fork_child(void)
{
    pthread_mutex_init(&brk_src.lock, NULL);
}
