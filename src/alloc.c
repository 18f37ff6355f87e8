/* The API: malloc and free fast paths, and every entry point of the
 * malloc family under its ebb_ name.  The unprefixed names that replace
 * the C library's are aliases of these, at the end of this file (an alias
 * must sit in the same translation unit as its target), as are C++'s
 * operators new and delete.
 *
 * Fast paths, same thread, small block: malloc is a load of the thread's
 * heap, a table load, a check that the head of the page's free list is
 * one of its blocks, and the pop; free is a load
 * of the segment map, the page entry, an exact-division check that the
 * pointer is a block, a double-free check, and a push on the page's local
 * list.  No lock, no atomic read-modify-write.
 *
 * Every entry point marks the call (ebbi_call_begin/end: two plain stores),
 * so that another thread may take the heap of a thread that is not in one
 * (heap.c, the handover).  Inside, the internal forms (heap_malloc,
 * free_block) are called, never the marked entry points.
 */
#include <string.h>

#include "ebbmalloc.h"
#include "internal.h"

/* ---- malloc ------------------------------------------------------------- */

static inline void *heap_malloc(heap_t *heap, size_t size, unsigned how)
{
    bool zero = how & EBBI_ALLOC_ZERO;
    if (likely(size <= EBB_DIRECT_MAX)) {
        page_t *page = heap->direct[(size + EBB_ALIGNMENT - 1) / EBB_ALIGNMENT];
        block_t *block = page->free;
        /* An empty list, or a corrupted link: the slow path tells which. */
        if (likely(ebbi_page_head_ok(page, block))) {
            void *p = ebbi_page_take(page, block, size, zero);
            if (how & EBBI_ALLOC_ENDS_CALL)
                ebbi_call_end();
            return p;
        }
    }
    return ebbi_heap_alloc_generic(size, heap, how); /* size stays in its register */
}

/* Inside a call. */
static inline void *malloc_block(size_t size)
{
    return heap_malloc(ebbi_thread_heap(), size, 0);
}

void *ebb_malloc(size_t size)
{
    ebbi_call_begin();
    return heap_malloc(ebbi_thread_heap(), size, EBBI_ALLOC_ENDS_CALL);
}

void *ebb_calloc(size_t count, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    ebbi_call_begin();
    return heap_malloc(ebbi_thread_heap(), total, EBBI_ALLOC_ZERO | EBBI_ALLOC_ENDS_CALL);
}

static heap_t *heap_ready(void)
{
    heap_t *heap = ebbi_thread_heap();
    if (unlikely(heap == &ebbi_heap_empty))
        heap = ebbi_heap_for_thread();
    return heap;
}

/* ---- free --------------------------------------------------------------- */

/* What a bad pointer is: a block freed already (a second free when
 * `freeing`, else a use by realloc or malloc_usable_size), or not one of
 * ours (`op` says what was tried).  Reported (ebbi_misuse); if the program
 * goes on, the call is ignored. */
static EBBI_COLD void free_bad(const char *op, bool freeing, void *p, const page_t *page)
{
    bool freed = false;
    if (page != NULL && page->start == (uintptr_t)p &&
        ebbi_slice_freed(page->kind))
        freed = true;
    if (ebbi_ownmap_recently_unmapped((uintptr_t)p))
        freed = true;
    ebbi_misuse(!freed ? op : freeing ? "double free" : "use of a freed block", p);
}

/* The free paths below end the call (ebbi_call_end) once they are done
 * with this thread's heap: a free is the last thing any call does. */

static EBBI_NOINLINE void free_huge_or_guarded(heap_t *heap, segment_t *seg, page_t *page, const void *site)
{
    if (page->kind == SLICE_SAMPLED) {
        ebbi_profile_sampled_free(heap, seg, page);
        return;
    }
    if (unlikely(ebbi_profiling))
        ebbi_profile_free((void *)page->start);
    if (page->kind == SLICE_HUGE)
        ebbi_huge_free(heap, seg, page);
    else
        ebbi_guard_free(heap, seg, page, site);
}

/* Another thread's page, an abandoned page, a huge or a guarded block. */
static EBBI_NOINLINE void free_nonlocal(heap_t *heap, segment_t *seg, page_t *page, block_t *block,
                                        const void *site)
{
    if (unlikely(page->kind != SLICE_PAGE)) {
        free_huge_or_guarded(heap, seg, page, site);
        ebbi_call_end();
        return;
    }
    if (unlikely(ebbi_remote_free_work)) {
        /* free_flags are the owner's: the page's block size says instead.
         * The profiler hears of the free before another thread may reuse
         * the block. */
        if ((ebbi_remote_free_work & REMOTE_FREE_PROFILE) && page->block_size > EBBI_SAMPLE_MAP_MAX)
            ebbi_profile_free_in_page(block);
        if (ebbi_remote_free_work & REMOTE_FREE_CLEAR)
            ebbi_safety_on_free(page, block);
    }
    if (unlikely(heap == &ebbi_heap_empty))
        heap = ebbi_heap_for_freeing_thread();
    if (likely(heap != &ebbi_heap_empty)) {
        ebbi_counter_add(&heap->counts[page->class_id].frees, 1);
        block->free_key = ebbi_free_key(page);
        ebbi_heap_free_remote(heap, page, block); /* in a batch (heap.c) */
        ebbi_call_end();
        return;
    }
    ebbi_fetch_add_relaxed(&ebbi_orphan_frees[page->class_id], 1);
    ebbi_call_end();
    ebbi_page_free_remote(page, block);
}

/* Inlined into the entry points, so that the caller's address (for the
 * guard modes' reports) is taken on the slow paths only. */
#define FREE_SITE __builtin_return_address(0)

static inline __attribute__((always_inline)) void free_live(segment_t *seg, page_t *page, block_t *block,
                                                             uintptr_t key);

/* What the fast path does not handle: NULL, huge blocks aligned to 4 MiB
 * or more, a block past the first slice of a page of several (blocks of
 * 11 KiB and more: the fast path read its own slice's entry, whose carved
 * is 0), and every misuse (reported here, so the fast path stays a leaf
 * function).  True if it freed a live block, which ends the call. */
static bool free_special_block(void *p, const void *site)
{
    if (p == NULL)
        return false;
    if (unlikely(ebbi_safety & SAFETY_SECURE) && ebbi_zero_holds((uintptr_t)p)) {
        ebbi_zero_free(p);
        return false;
    }
    page_t *page = NULL;
    segment_t *seg = ebbi_segment_lookup((uintptr_t)p, &page);
    if (seg == NULL || ebbi_slice_freed(page->kind)) {
        free_bad("free of invalid pointer", true, p, page);
        return false;
    }
    if (page->kind == SLICE_HUGE || page->kind == SLICE_GUARDED || page->kind == SLICE_SAMPLED) {
        free_huge_or_guarded(ebbi_thread_heap(), seg, page, site);
        return false;
    }
    uintptr_t key = ebbi_free_key(page);
    if (((block_t *)p)->free_key == key) {
        ebbi_misuse("double free", p);
    } else if (page->kind == SLICE_PAGE && page != ebbi_slice_of(seg, (uintptr_t)p)) {
        free_live(seg, page, p, key);
        return true;
    } else {
        ebbi_misuse("free of invalid pointer", p);
    }
    return false;
}

/* Ends the call. */
static EBBI_NOINLINE void free_special(void *p, const void *site)
{
    if (!free_special_block(p, site))
        ebbi_call_end();
}

/* A live block of `page` freed.  Ends the call. */
static inline __attribute__((always_inline)) void free_live(segment_t *seg, page_t *page, block_t *block,
                                                             uintptr_t key)
{
    heap_t *heap = ebbi_thread_heap();
    if (likely(ebbi_load_relaxed(&page->owner) == heap)) {
        if (unlikely(page->free_flags & (uint8_t)~PAGE_ON_EMPTY)) {
            ebbi_heap_free_local(heap, page, block); /* ends the call */
            return;
        }
        ebbi_counter_add(&page->counts->frees, 1);
        block->next = page->local_free;
        block->free_key = key;
        page->local_free = block;
        if (unlikely(--page->used == 0) && (page->free_flags & PAGE_ON_EMPTY)) {
            ebbi_heap_page_emptied(heap, page); /* ends the call */
            return;
        }
        ebbi_call_end();
        return;
    }
    free_nonlocal(heap, seg, page, block, FREE_SITE);
}

/* Ends the call. */
static inline __attribute__((always_inline)) void free_block(void *p)
{
    uintptr_t addr = (uintptr_t)p;
    if (unlikely(ebbi_segmap_get(addr) != SEGMAP_SEGMENT)) {
        free_special(p, FREE_SITE);
        return;
    }
    segment_t *seg = ebbi_segment_of(p);
    page_t *page = ebbi_slice_of(seg, addr); /* the head, or free_special finds it */
    block_t *block = p;
    uintptr_t key = ebbi_free_key(page);
    if (unlikely(!ebbi_page_holds_block(page, addr) || block->free_key == key)) {
        free_special(p, FREE_SITE);
        return;
    }
    free_live(seg, page, block, key);
}

void ebb_free(void *p)
{
    ebbi_call_begin();
    free_block(p);
}

static segment_t *live_block(const char *op, bool freeing, void *p, page_t **page);
static size_t block_usable(const segment_t *seg, const page_t *page, const void *p);

static bool is_power_of_two(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Secure mode: a sized free (C23's free_sized, C++'s sized delete) must
 * name the size asked for (known from the canary's place; a huge or
 * guarded block's usable size is rounded up to the page), and an aligned
 * one an alignment the block has; 0 is not named.  False if reported. */
static bool sized_free_ok(segment_t *seg, page_t *page, void *p, size_t size, size_t alignment)
{
    size_t usable = block_usable(seg, page, p);
    /* An aligned block's canary follows its size rounded up to the
     * alignment (malloc_aligned_block). */
    size_t slack = page->kind != SLICE_PAGE ? usable : alignment > EBB_ALIGNMENT ? alignment - 1 : 0;
    if (size != 0 && (size > usable || usable - size > slack)) {
        ebbi_misuse("sized free with the wrong size", p);
        return false;
    }
    if (alignment != 0 && (!is_power_of_two(alignment) || ((uintptr_t)p & (alignment - 1)) != 0)) {
        ebbi_misuse("aligned free with the wrong alignment", p);
        return false;
    }
    return true;
}

/* Secure mode's sized free: the block looked up once, checked, freed.
 * Ends the call. */
static EBBI_NOINLINE EBBI_COLD void free_sized_checked(void *p, size_t size, size_t alignment, const void *site)
{
    if (ebbi_zero_holds((uintptr_t)p)) {
        if (size != 0 && ebbi_zero_live((uintptr_t)p))
            ebbi_misuse("sized free with the wrong size", p);
        else
            ebbi_zero_free(p);
        ebbi_call_end();
        return;
    }
    page_t *page;
    segment_t *seg = live_block("free of invalid pointer", true, p, &page);
    if (seg == NULL || !sized_free_ok(seg, page, p, size, alignment)) {
        ebbi_call_end();
    } else if (page->kind != SLICE_PAGE) {
        free_huge_or_guarded(ebbi_thread_heap(), seg, page, site); /* named at the caller's site */
        ebbi_call_end();
    } else {
        free_live(seg, page, p, ebbi_free_key(page));
    }
}

void ebb_free_sized(void *p, size_t size)
{
    ebbi_call_begin();
    if (unlikely(ebbi_safety & SAFETY_SECURE) && p != NULL)
        free_sized_checked(p, size, 0, FREE_SITE);
    else
        free_block(p);
}

void ebb_free_aligned_sized(void *p, size_t alignment, size_t size)
{
    ebbi_call_begin();
    if (unlikely(ebbi_safety & SAFETY_SECURE) && p != NULL)
        free_sized_checked(p, size, alignment, FREE_SITE);
    else
        free_block(p);
}

/* ---- looking up a live block ---------------------------------------------- */

/* The segment and page of a live block; NULL after a report naming `op`
 * (if the program is to go on, EBB_ABORT_ON_ERROR=0). */
/* Secure mode's zero-byte blocks are not in segments: a use of a freed
 * one, or false (a live one: the caller's own path). */
static bool zero_block_freed(void *p)
{
    if (!ebbi_zero_live((uintptr_t)p)) {
        ebbi_misuse("use of a freed block", p);
        return true;
    }
    return false;
}

static segment_t *live_block(const char *op, bool freeing, void *p, page_t **page)
{
    *page = NULL;
    segment_t *seg = ebbi_segment_lookup((uintptr_t)p, page);
    if (seg == NULL || ebbi_slice_freed((*page)->kind)) {
        free_bad(op, freeing, p, *page);
        return NULL;
    }
    if ((*page)->kind == SLICE_PAGE &&
        ((block_t *)p)->free_key == ebbi_free_key(*page)) {
        ebbi_misuse(freeing ? "double free" : "use of a freed block", p);
        return NULL;
    }
    return seg;
}

/* Bytes the program may use: the class (or mapping) size, or what was
 * asked for where a safety mode watches the rest. */
static size_t block_usable(const segment_t *seg, const page_t *page, const void *p)
{
    if (page->kind == SLICE_HUGE)
        return ebbi_huge_usable_size(seg, page);
    if (page->kind == SLICE_GUARDED)
        return ebbi_guard_usable_size(page);
    if (page->kind == SLICE_SAMPLED)
        return ebbi_profile_usable_size(seg, page);
    if (ebbi_safety & SAFETY_SECURE)
        return ebbi_canary_check(page, p);
    return page->block_size;
}

size_t ebb_malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (unlikely(ebbi_safety & SAFETY_SECURE) && ebbi_zero_holds((uintptr_t)p)) {
        (void)zero_block_freed(p);
        return 0;
    }
    ebbi_call_begin();
    page_t *page;
    segment_t *seg = live_block("malloc_usable_size of invalid pointer", false, p, &page);
    size_t usable = seg != NULL ? block_usable(seg, page, p) : 0;
    ebbi_call_end();
    return usable;
}

/* ---- realloc -------------------------------------------------------------------- */

/* A free ends the call (free_block): it comes last.  The entry points end
 * it again, for the paths without one. */
static void *realloc_block(void *p, size_t size)
{
    if (p == NULL)
        return malloc_block(size);
    if (size == 0) {
        /* glibc: realloc(p, 0) frees p and returns NULL. */
        free_block(p);
        return NULL;
    }
    if (unlikely(ebbi_safety & SAFETY_SECURE) && ebbi_zero_holds((uintptr_t)p)) {
        if (zero_block_freed(p)) {
            errno = EINVAL;
            return NULL;
        }
        void *q = malloc_block(size); /* nothing to copy */
        if (q != NULL)
            free_block(p);
        return q;
    }
    page_t *page;
    segment_t *seg = live_block("realloc of invalid pointer", false, p, &page);
    if (seg == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t usable = block_usable(seg, page, p);
    if (page->kind == SLICE_HUGE && size > EBB_PAGE_BLOCK_MAX) {
        heap_t *heap = heap_ready();
        if (heap != NULL) {
            uint64_t before = ebbi_load_relaxed(&heap->huge_bytes_alloc);
            void *q = ebbi_huge_realloc(heap, seg, page, size);
            if (unlikely(ebbi_profiling) && q != NULL)
                q = ebbi_profile_realloced(p, q, size, ebbi_load_relaxed(&heap->huge_bytes_alloc) - before);
            if (q != NULL)
                return q;
        }
    } else if (size <= usable && size >= usable / 2 && !(ebbi_safety & SAFETY_SECURE) && page->kind != SLICE_GUARDED) {
        /* Fits, and not so much smaller that a move pays.  A guarded block
         * moves (its end must stay against the guard page), and so does a
         * secure one (its canary follows the size asked for). */
        return p;
    }
    if (unlikely(ebbi_profiling))
        ebbi_profile_realloc_begin(p);
    void *q = malloc_block(size);
    if (q != NULL) {
        memcpy(q, p, size < usable ? size : usable);
        free_block(p);
    }
    if (unlikely(ebbi_profiling))
        ebbi_profile_realloc_begin(NULL);
    return q; /* NULL: errno is ENOMEM, and p is untouched */
}

void *ebb_realloc(void *p, size_t size)
{
    ebbi_call_begin();
    void *q = realloc_block(p, size);
    ebbi_call_end();
    return q;
}

void *ebb_reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    ebbi_call_begin();
    void *q = realloc_block(p, total);
    ebbi_call_end();
    return q;
}

/* ---- aligned allocation -------------------------------------------------------- */

/* `align` is a power of two. */
static void *malloc_aligned_block(size_t align, size_t size)
{
    if (align <= EBB_ALIGNMENT)
        return malloc_block(size);
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    heap_t *heap = heap_ready();
    if (heap == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    void *p;
    if ((ebbi_safety & SAFETY_GUARD_ALL) && (p = ebbi_guard_alloc(heap, size, align, __builtin_return_address(0))))
        return p;
    if (align <= EBB_PAGE_ALIGN_MAX) {
        /* A class whose size is a multiple of `align` has every block
         * aligned: pages start on 64 KiB boundaries (sizeclass.c).  In
         * secure mode the canary's room counts in that size. */
        size_t tail = (ebbi_safety & SAFETY_SECURE) ? SECURE_TAIL : 0;
        size_t n = ((size == 0 ? 1 : size) + tail + align - 1) & ~(align - 1);
        if (n <= EBB_PAGE_BLOCK_MAX) {
            /* Sampled guarded blocks are aligned to the page, no more. */
            bool suspend = align > ebbi_process.page_size && (ebbi_safety & SAFETY_GUARD_SAMPLE);
            heap->sample_suspended += suspend;
            p = malloc_block(n - tail);
            heap->sample_suspended -= suspend;
            return p;
        }
    }
    p = ebbi_huge_alloc(heap, size, align, false);
    if (p == NULL && ebbi_release_reserves() > 0)
        p = ebbi_huge_alloc(heap, size, align, false);
    if (unlikely(ebbi_profiling) && p != NULL)
        p = ebbi_profile_alloc(p, size, false);
    return p;
}

static void *malloc_aligned(size_t align, size_t size)
{
    ebbi_call_begin();
    void *p = malloc_aligned_block(align, size);
    ebbi_call_end();
    return p;
}

int ebb_posix_memalign(void **result, size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = malloc_aligned(alignment, size);
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *result = p;
    return 0;
}

void *ebb_aligned_alloc(size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return malloc_aligned(alignment, size);
}

void *ebb_memalign(size_t alignment, size_t size)
{
    /* glibc: any alignment is rounded up to a power of two; only one too
     * large to round is refused. */
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = EBB_ALIGNMENT;
    while (a < alignment)
        a <<= 1;
    return malloc_aligned(a, size);
}

static size_t os_page_size(void)
{
    if (!ebbi_process_ready())
        ebbi_process_init();
    return ebbi_process.page_size;
}

void *ebb_valloc(size_t size)
{
    return malloc_aligned(os_page_size(), size);
}

void *ebb_pvalloc(size_t size)
{
    size_t ps = os_page_size();
    size_t rounded = (size + ps - 1) & ~(ps - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc_aligned(ps, rounded == 0 ? ps : rounded);
}

/* ---- trimming ------------------------------------------------------------------ */

int ebb_malloc_trim(size_t pad)
{
    (void)pad;
    if (!ebbi_process_ready())
        return 0;
    ebbi_call_begin();
    /* Its own heap, taken back if a sweep has it (heap_ready). */
    heap_t *heap = ebbi_thread_heap() != &ebbi_heap_empty || ebbi_heap_is_bound() ? heap_ready() : NULL;
    size_t sparse = 0;
    if (heap != NULL) {
        /* Cleared before the pages' remote lists are read (heap.c,
         * sweep_heap): set again below if frees arrived after. */
        ebbi_store_seq_cst(&heap->remote_seen, 0);
        ebbi_fence_seq_cst();
        sparse = ebbi_heap_collect(heap, EBBI_COLLECT_TRIM);
    }
    /* Every other thread's heap is swept too, as its thread would; the
     * batches of frees they send may reach this one's pages. */
    int given = ebbi_reclaim_trim() > 0 || sparse > 0;
    if (heap != NULL && ebbi_load_seq_cst(&heap->remote_seen))
        given |= ebbi_heap_collect(heap, EBBI_COLLECT_TRIM) > 0;
    ebbi_call_end();
    return given;
}

/* ---- the C library's names --------------------------------------------------------- */
#if EBB_OVERRIDE
#include <malloc.h>

/* The aliases need not repeat the targets' malloc/alloc_size attributes. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wmissing-attributes"

#define EBB_ALIAS(target) __attribute__((alias(#target), visibility("default"), used))

void *malloc(size_t size) EBB_ALIAS(ebb_malloc);
void *calloc(size_t count, size_t size) EBB_ALIAS(ebb_calloc);
void *realloc(void *p, size_t size) EBB_ALIAS(ebb_realloc);
void *reallocarray(void *p, size_t count, size_t size) EBB_ALIAS(ebb_reallocarray);
void free(void *p) EBB_ALIAS(ebb_free);
void free_sized(void *p, size_t size) EBB_ALIAS(ebb_free_sized);
void free_aligned_sized(void *p, size_t alignment, size_t size) EBB_ALIAS(ebb_free_aligned_sized);
int posix_memalign(void **result, size_t alignment, size_t size) EBB_ALIAS(ebb_posix_memalign);
void *aligned_alloc(size_t alignment, size_t size) EBB_ALIAS(ebb_aligned_alloc);
void *memalign(size_t alignment, size_t size) EBB_ALIAS(ebb_memalign);
void *valloc(size_t size) EBB_ALIAS(ebb_valloc);
void *pvalloc(size_t size) EBB_ALIAS(ebb_pvalloc);
size_t malloc_usable_size(void *p) EBB_ALIAS(ebb_malloc_usable_size);
int malloc_trim(size_t pad) EBB_ALIAS(ebb_malloc_trim);

/* glibc's internal names, which some programs and libraries call. */
void *__libc_malloc(size_t size) EBB_ALIAS(ebb_malloc);
void *__libc_calloc(size_t count, size_t size) EBB_ALIAS(ebb_calloc);
void *__libc_realloc(void *p, size_t size) EBB_ALIAS(ebb_realloc);
void __libc_free(void *p) EBB_ALIAS(ebb_free);
void *__libc_memalign(size_t alignment, size_t size) EBB_ALIAS(ebb_memalign);
void *__libc_valloc(size_t size) EBB_ALIAS(ebb_valloc);
void *__libc_pvalloc(size_t size) EBB_ALIAS(ebb_pvalloc);

/* ---- C++'s operators new and delete ----------------------------------------------- */

/* By their Itanium C++ ABI names, written in C so that the library needs
 * no C++ runtime: a C++ program calls them instead of libstdc++'s, which
 * would call malloc and free, and sized delete can be checked.  On
 * failure, operator new calls the program's new handler (std::
 * get_new_handler) until it returns memory, and with none left throws
 * std::bad_alloc (std::__throw_bad_alloc); both are libstdc++'s, loaded in
 * any program that can call operator new, and looked up weakly.  The
 * exception passes through these C frames by their unwind tables.  The
 * nothrow forms return NULL without calling the handler (a handler's throw
 * could not be caught here). */
typedef void (*cxx_new_handler_t)(void);
extern cxx_new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

#define EBB_CXX __attribute__((visibility("default"), used))
EBB_CXX void *_Znwm(size_t size);
EBB_CXX void *_Znam(size_t size);
EBB_CXX void *_ZnwmRKSt9nothrow_t(size_t size, const void *nothrow);
EBB_CXX void *_ZnamRKSt9nothrow_t(size_t size, const void *nothrow);
EBB_CXX void *_ZnwmSt11align_val_t(size_t size, size_t align);
EBB_CXX void *_ZnamSt11align_val_t(size_t size, size_t align);
EBB_CXX void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nothrow);
EBB_CXX void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nothrow);
EBB_CXX void _ZdlPv(void *p);
EBB_CXX void _ZdaPv(void *p);
EBB_CXX void _ZdlPvm(void *p, size_t size);
EBB_CXX void _ZdaPvm(void *p, size_t size);
EBB_CXX void _ZdlPvRKSt9nothrow_t(void *p, const void *nothrow);
EBB_CXX void _ZdaPvRKSt9nothrow_t(void *p, const void *nothrow);
EBB_CXX void _ZdlPvSt11align_val_t(void *p, size_t align);
EBB_CXX void _ZdaPvSt11align_val_t(void *p, size_t align);
EBB_CXX void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align);
EBB_CXX void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align);
EBB_CXX void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nothrow);
EBB_CXX void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nothrow);

/* `align` 0: plain new.  An alignment that is no power of two is the
 * program's error (undefined in C++): refused, as aligned_alloc does. */
static void *cxx_alloc(size_t size, size_t align)
{
    if (align == 0)
        return ebb_malloc(size);
    return is_power_of_two(align) ? malloc_aligned(align, size) : NULL;
}

static EBBI_NOINLINE EBBI_COLD void *cxx_new_failed(size_t size, size_t align)
{
    for (;;) {
        cxx_new_handler_t handler = _ZSt15get_new_handlerv != NULL ? _ZSt15get_new_handlerv() : NULL;
        if (handler == NULL)
            break;
        handler(); /* frees memory, throws, or ends the program */
        void *p = cxx_alloc(size, align);
        if (p != NULL)
            return p;
    }
    if (_ZSt17__throw_bad_allocv != NULL)
        _ZSt17__throw_bad_allocv();
    ebbi_fatal("operator new: out of memory, and no C++ runtime to throw std::bad_alloc", NULL);
}

void *_Znwm(size_t size)
{
    void *p = ebb_malloc(size);
    return likely(p != NULL) ? p : cxx_new_failed(size, 0);
}

void *_Znam(size_t size) EBB_ALIAS(_Znwm);

void *_ZnwmRKSt9nothrow_t(size_t size, const void *nothrow)
{
    (void)nothrow;
    return ebb_malloc(size);
}

void *_ZnamRKSt9nothrow_t(size_t size, const void *nothrow) EBB_ALIAS(_ZnwmRKSt9nothrow_t);

void *_ZnwmSt11align_val_t(size_t size, size_t align)
{
    void *p = cxx_alloc(size, align);
    return likely(p != NULL) ? p : cxx_new_failed(size, align);
}

void *_ZnamSt11align_val_t(size_t size, size_t align) EBB_ALIAS(_ZnwmSt11align_val_t);

void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nothrow)
{
    (void)nothrow;
    return cxx_alloc(size, align);
}

void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nothrow)
    EBB_ALIAS(_ZnwmSt11align_val_tRKSt9nothrow_t);

void _ZdlPv(void *p) EBB_ALIAS(ebb_free);
void _ZdaPv(void *p) EBB_ALIAS(ebb_free);
void _ZdlPvm(void *p, size_t size) EBB_ALIAS(ebb_free_sized);
void _ZdaPvm(void *p, size_t size) EBB_ALIAS(ebb_free_sized);

void _ZdlPvRKSt9nothrow_t(void *p, const void *nothrow)
{
    (void)nothrow;
    ebb_free(p);
}

void _ZdaPvRKSt9nothrow_t(void *p, const void *nothrow) EBB_ALIAS(_ZdlPvRKSt9nothrow_t);

void _ZdlPvSt11align_val_t(void *p, size_t align)
{
    ebb_free_aligned_sized(p, align, 0);
}

void _ZdaPvSt11align_val_t(void *p, size_t align) EBB_ALIAS(_ZdlPvSt11align_val_t);

void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align)
{
    ebb_free_aligned_sized(p, align, size);
}

void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align) EBB_ALIAS(_ZdlPvmSt11align_val_t);

void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nothrow)
{
    (void)nothrow;
    ebb_free_aligned_sized(p, align, 0);
}

void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nothrow)
    EBB_ALIAS(_ZdlPvSt11align_val_tRKSt9nothrow_t);
#endif
