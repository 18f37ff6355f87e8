/* ebbmalloc's internal map and index.
 *
 * The object hierarchy, top down:
 *
 *   heap (one per thread) ──owns──▶ pages, in one queue per size class
 *   arena (a few, locked) ──owns──▶ segments, their free spans, abandoned pages
 *   segment (4 MiB, aligned) ─cut─▶ 64 slices of 64 KiB; slice 0 is metadata
 *   page = a run of slices serving one size class; its blocks are free-listed
 *   huge block = a segment of its own (own mapping), one block
 *
 * Layers, each a file, calls only downward (but for ebbi_reclaim_notify,
 * the one call up from the layers that hold freed memory to the policy):
 *   alloc.c     malloc/free fast paths, the whole API (ebb_*), the C names
 *               and C++'s operators new and delete
 *   service.c   the service thread
 *   publish.c   the page the ebb command reads; stats.c: statistics
 *   reclaim.c   the reclamation policy; limits.c: memory limits and pressure
 *   heap.c      thread heaps: finding pages, thread start and exit, adoption,
 *               the handover of an idle thread's heap to a sweep
 *   huge.c      huge blocks and their cache
 *   guard.c     guarded blocks and their quarantine (EBB_GUARD), sampled
 *               by sample.c (EBB_GUARD_SAMPLE); fault.c names their faults
 *   profile.c   the sampling heap profiler (EBB_PROFILE)
 *   ownmap.c    mappings of their own: huge, guarded and sampled blocks
 *   page.c      a page's free lists, carving, remote frees
 *   secure.c    secure mode's canaries and checks on small blocks
 *   safety.c    the safety modes: the options, and the layout they ask of
 *               the layers below (ebbi_layout)
 *   arena.c     spans of slices, abandoned pages (the only locks on the block path)
 *   account.c   the ledger: bytes of each pool, deadlines, the doorbell
 *   segment.c   segments and the segment map
 *   source.c    memory sources: the program break and mmap
 *   os.c        the only code with system calls, and with C library calls
 *               that may block or allocate (tests/scripts/check_layers.sh)
 *   sizeclass.c, options.c, report.c, init.c (start, fork): support
 *   atomic.h (every atomic operation, named by its memory order),
 *   config.h (the constants), publish.h (the page shared with ebb)
 *
 * Internal symbols shared across files carry the prefix `ebbi_`; the
 * public API is `ebb_` (include/ebbmalloc.h) and the C names.
 */
#ifndef EBB_INTERNAL_H
#define EBB_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "atomic.h"
#include "config.h"

#define EBBI_HIDDEN __attribute__((visibility("hidden")))
#define EBBI_EXPORT __attribute__((visibility("default")))
#define EBBI_NOINLINE __attribute__((noinline))
#define EBBI_COLD __attribute__((cold, noinline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct heap_s;
struct arena_s;

/* ---------------------------------------------------------------------
 * Blocks.  A free block's first word links it into a free list (the
 * seeds' "memory within the block"); its second word holds the free key
 * (ebbi_free_key), so that a second free of the same block is seen at
 * once.  Every block handed out has its key word cleared.
 */
typedef struct block_s {
    struct block_s *next;
    uintptr_t free_key;
} block_t;

/* ---------------------------------------------------------------------
 * Pages.  One page_t describes each slice of a segment; the entry of a
 * page's first slice (its head) describes the page.
 *
 * Invariants:
 *  - carved > 0 iff the slice heads a page in use (or a huge block):
 *    free() relies on this.  A pointer is a block of the page iff
 *    off = ptr - start < carved and off is a multiple of the block size
 *    (ebbi_page_holds_block).  An all-zero entry holds no block.
 *  - slice_back is the distance from this slice to the head of its span,
 *    for every slice of a page in use and the last slice of a free span;
 *    it never reaches outside the segment.
 *  - used = blocks handed out and not yet collected by the owner, so
 *    including blocks sitting in thread_free or the delayed list;
 *    holed = free blocks on no list, their link word in a decommitted
 *    kernel page (page.c, sparse pages).
 *    |free| + |local_free| + used + holed == capacity; |thread_free| <= used.
 *    The page is empty iff used == 0 after collecting.
 *  - free, local_free, used, capacity, free_flags are touched only by the
 *    owner heap; owner is changed only by the owner (to NULL, when it
 *    abandons the page) or, from NULL, by the one heap that adopts it from
 *    its arena's abandoned list under the arena lock.
 *  - thread_free is an atomic list (blocks freed by other threads) whose
 *    low two bits hold the delayed-free state and top 16 bits its length
 *    (page.c).
 */
enum slice_kind {
    SLICE_UNUSED = 0, /* metadata, or a slice inside a huge segment */
    SLICE_FREE,       /* part of a free span */
    SLICE_PAGE,       /* part of a page in use */
    SLICE_HUGE,       /* the block of a huge segment */
    SLICE_HUGE_CACHED,/* a huge segment kept in the cache after its free */
    SLICE_PURGING,    /* a free span being decommitted, outside the bins */
    SLICE_GUARDED,    /* a guarded block (guard.c), beside a PROT_NONE page */
    SLICE_GUARD_FREED,/* a guarded block after its free, PROT_NONE in quarantine */
    SLICE_SAMPLED,    /* a block the heap profiler sampled, in a mapping of its own (profile.c) */
    SLICE_SAMPLED_FREED /* such a mapping after the free, kept for the next sample */
};

/* A huge, guarded or sampled block's entry after its free: a use of its
 * address is a use of a freed block. */
static inline bool ebbi_slice_freed(unsigned kind)
{
    return kind == SLICE_HUGE_CACHED || kind == SLICE_GUARD_FREED || kind == SLICE_SAMPLED_FREED;
}

struct class_counts_s;

/* free_flags: why free() must look closer at a page.  Those in
 * PAGE_ON_EMPTY matter only to the free that empties the page; the others
 * to every free. */
#define PAGE_IN_FULL 1u   /* in the owner's full queue: any free brings it back */
#define PAGE_NOT_FIRST 2u /* not the first page of its class queue: released once empty */
#define PAGE_PARKABLE 4u  /* blocks over EBB_DIRECT_MAX: parked once empty (heap.c) */
#define PAGE_SAFE 8u      /* a safety mode checks or zeroes every free (secure.c) */
#define PAGE_PARKED 16u   /* empty, offered to the reclaimer: no block of it is live */
#define PAGE_SPARSE_DONE 32u /* abandoned: purged as sparse, no block freed into it since */
#define PAGE_HOLED 64u    /* holed > 0: a free must not be of a block in a hole (page.c) */
#define PAGE_SAMPLES 128u /* may hold a sampled block: a free tells the profiler (profile.c) */
#define PAGE_ON_EMPTY (PAGE_NOT_FIRST | PAGE_PARKABLE)

/* The head entry of a free span reuses fields a page in use needs: its
 * `carved` is 0, so no pointer is ever taken for one of its blocks. */
typedef struct page_s {
    /* First cache line: everything malloc and free touch. */
    union {
        struct {
            block_t *free;              /* blocks ready to hand out */
            block_t *local_free;        /* blocks freed by the owner since the last refill */
        };
        struct {                        /* a free span on its arena's reclaim list */
            struct page_s *dirty_next;
            struct page_s *dirty_prev;
        };
    };
    uintptr_t start;                    /* address of block 0; 0 when not a page */
    _Atomic(struct heap_s *) owner;     /* owning heap; NULL when abandoned, free or huge */
    struct class_counts_s *counts;      /* the owner's statistics for this class */
    union {
        uint64_t divisor_magic;         /* ceil(2^64 / block_size); 1 for huge blocks */
        uint64_t freed_at_ns;           /* a free span: when it was freed */
    };
    /* Bytes of blocks carved so far (read by any freeing thread); 64 bits,
     * so that the fast paths compare an offset with it in one instruction. */
    _Atomic(uint64_t) carved;
    union {
        uint32_t used;
        uint32_t span_dirty;            /* a free span: bytes of it that may be resident */
    };
    uint8_t slice_back;
    uint8_t class_id;
    uint8_t free_flags;                 /* PAGE_* above; the owner's */
    uint8_t free_is_zero;               /* blocks on `free` are zero but for their link word */

    /* Second cache line. */
    _Atomic(uintptr_t) thread_free;
    uint32_t block_size;
    uint32_t capacity;                  /* blocks carved so far */
    uint32_t reserved;                  /* blocks the page can hold */
    uint16_t slice_count;               /* slices in the span (head only) */
    uint8_t kind;                       /* enum slice_kind */
    uint8_t is_zero_at_init;            /* the page's memory was zero when it was set up */
    uint8_t listed;                     /* a free span: on its arena's reclaim list */
    _Atomic(uint8_t) purged;            /* parked page taken by the reclaimer: decommitted (heap.c) */
    uint32_t holed;                     /* blocks off every list, in decommitted kernel pages (page.c) */
    _Atomic(uint64_t) quiet_since_ns;   /* abandoned: when a block was last freed into it (arena.c) */
    struct page_s *next;                /* in a heap queue, a free-span bin or an abandoned list */
    struct page_s *prev;
} __attribute__((aligned(64))) page_t;

_Static_assert(sizeof(page_t) == 128, "two cache lines per page entry");
_Static_assert(__builtin_offsetof(page_t, free_is_zero) < 64, "the fast paths read one cache line");

/* ---------------------------------------------------------------------
 * Segments: 4 MiB aligned.  The header (this struct) lives in slice 0, so
 * metadata never sits beside user data in a page.
 */
enum segment_kind { SEGMENT_PAGES = 1, SEGMENT_HUGE = 2 };
enum source_kind { SOURCE_MMAP = 1, SOURCE_BRK = 2 };

typedef struct segment_s {
    /* The fields first, the page entries after: a huge or guarded block's
     * segment then keeps one header page resident, not two. */
    struct arena_s *arena;          /* SEGMENT_PAGES: the arena that owns it */
    size_t map_size;                /* bytes of the mapping that starts at the segment */
    uint8_t kind;                   /* enum segment_kind */
    uint8_t source;                 /* enum source_kind */
    uint8_t guard_untouched;        /* huge, secure mode: its last page is a guard page counted as not resident */
    uint32_t free_slices;           /* slices in free spans */
    struct segment_s *next, *prev;  /* in the arena's segment list */
    uint64_t cached_at_ns;          /* huge cache: when the block was freed */
    size_t reach;                   /* huge shell: address space that is ours from the segment on */
    uint16_t joint_count;           /* huge: entries of joints[] */
    uint16_t joints_lost;           /* huge: joints[] overflowed, some are not known */
    size_t joints[EBB_HUGE_JOINTS]; /* huge: offsets where a new kernel mapping (VMA) may start (huge.c) */
    uintptr_t alloc_site, free_site;/* guarded blocks: who allocated and freed them */
    /* Per slice, how much of it may be resident: the prefix, in 4 KiB
     * units (TOUCH_UNITS), that blocks were carved from since it was last
     * purged; TOUCH_STALE if a lazy purge (MADV_FREE) left it not known to
     * be zero.  A slice reads as zero iff its byte is 0.  Raised by the
     * page's owner, reset by its arena (under the lock) when the slice is
     * free. */
    _Atomic(uint8_t) touched[EBB_SLICES_PER_SEGMENT];
    /* Per slice, the kernel pages of a page in use that were decommitted
     * while the page still held live blocks (a sparse page, page.c): bit k
     * is the k-th kernel page of the slice.  They read as zero and are not
     * resident, though `touched` may cover them.  Set and cleared by the
     * page's owner (or its arena's lock for an abandoned page); cleared by
     * a purge of the slice and when a span is cut into a new page. */
    _Atomic(uint16_t) holes[EBB_SLICES_PER_SEGMENT];
    page_t slices[EBB_SLICES_PER_SEGMENT];
} segment_t;

_Static_assert(__builtin_offsetof(segment_t, slices) + 2 * sizeof(page_t) <= 4096,
               "a huge or guarded block's header fits one page");

/* The segment map: one byte per 4 MiB of address space.
 *   0: not the allocator's;  1: a segment header starts here;
 *   v >= 2: this region belongs to the huge segment v - 1 regions below
 *      (a huge block aligned to 4 MiB or more starts here, or a guarded
 *      block's pages reach here: the fault handler looks them up). */
#define SEGMAP_NONE 0
#define SEGMAP_SEGMENT 1
#define SEGMAP_HUGE_BELOW 2
#define SEGMAP_MAX_BELOW 255
EBBI_HIDDEN extern _Atomic(uint8_t) ebbi_segmap[EBB_SEGMAP_ENTRIES];

static inline segment_t *ebbi_segment_of(const void *p)
{
    return (segment_t *)((uintptr_t)p & ~(uintptr_t)EBB_SEGMENT_MASK);
}

static inline unsigned ebbi_segmap_get(uintptr_t addr)
{
    uintptr_t idx = addr >> EBB_SEGMENT_SHIFT;
    if (unlikely(idx >= EBB_SEGMAP_ENTRIES))
        return SEGMAP_NONE;
    return ebbi_load_relaxed(&ebbi_segmap[idx]);
}

/* The entry of the slice holding address p of a segment.  (The shifts
 * fold "slice index times sizeof(page_t)" into one.)  It describes the
 * page only if it is the page's head: free()'s fast path takes it as it
 * is, since a non-head entry's carved is 0 and fails the block test. */
static inline page_t *ebbi_slice_of(segment_t *seg, uintptr_t p)
{
    uintptr_t entry = (p >> (EBB_SLICE_SHIFT - 7)) & ((uintptr_t)(EBB_SLICES_PER_SEGMENT - 1) << 7);
    return (page_t *)((uintptr_t)seg->slices + entry);
}

/* The page (head slice) holding address p of a segment. */
static inline page_t *ebbi_page_of(segment_t *seg, uintptr_t p)
{
    page_t *slice = ebbi_slice_of(seg, p);
    return slice - slice->slice_back;
}

static inline uintptr_t ebbi_slice_address(segment_t *seg, const page_t *slice)
{
    return (uintptr_t)seg + ((uintptr_t)(slice - seg->slices) << EBB_SLICE_SHIFT);
}

/* Is p the start of a live-or-free block carved in this page?  Below
 * `carved` (< 2^22), off is a multiple of the block size exactly when
 * off * ceil(2^64 / size) wraps to less than that magic number (Lemire,
 * Kaser and Kurz, "Faster remainder by direct computation", 2019): one
 * multiplication, no division. */
static inline bool ebbi_page_holds_block(const page_t *page, uintptr_t p)
{
    uintptr_t off = p - page->start;
    return off < ebbi_load_relaxed(&page->carved) && off * page->divisor_magic < page->divisor_magic;
}

static inline uint64_t ebbi_divisor_magic(uint32_t size)
{
    return UINT64_MAX / size + 1;
}

/* ---------------------------------------------------------------------
 * Size classes (sizeclass.c).
 */
typedef struct {
    uint32_t block_size;
    uint8_t page_slices; /* slices in a page of this class */
} ebbi_class_info_t;

EBBI_HIDDEN extern const ebbi_class_info_t ebbi_classes[];

static inline unsigned ebbi_size_class(size_t size)
{
    if (size <= 128)
        return size <= EBB_MIN_BLOCK ? 0 : (unsigned)((size - 1) >> 4);
    size_t s = size - 1;
    unsigned k = 63u - (unsigned)__builtin_clzl(s); /* 2^k <= s < 2^(k+1) */
    unsigned sub = (unsigned)(s >> (k - 3)) & 7u;
    return 8u + (k - 7u) * 8u + sub;
}

/* ---------------------------------------------------------------------
 * Heaps: one per thread.
 *
 * Invariants:
 *  - direct[i] is the first page of the queue of the class serving sizes
 *    (16i-15 .. 16i), or &ebbi_page_empty when that queue is empty.
 *  - a page is in exactly one of: a class queue, the full queue (PAGE_IN_FULL),
 *    an arena's abandoned list, an arena's free-span bins (as free span).
 */
typedef struct page_queue_s {
    page_t *first;
    page_t *last;
} page_queue_t;

typedef struct class_counts_s {
    ebbi_counter_t allocs;
    ebbi_counter_t frees;
} class_counts_t;

/* Blocks freed into another heap's page, on their way (heap.c). */
typedef struct {
    page_t *page;
    block_t *head, *tail;            /* linked through the blocks, keys set */
    uint32_t count, bytes;
} remote_batch_t;

typedef struct heap_s {
    page_t *direct[EBB_DIRECT_SLOTS];
    page_queue_t queues[EBB_CLASS_COUNT];
    page_queue_t full;
    _Atomic(block_t *) delayed_free; /* blocks freed remotely into full pages */
    /* Empty first pages of the classes above EBB_DIRECT_MAX, offered to the
     * reclaimer (heap.c): whoever empties a slot owns the page's memory. */
    _Atomic(page_t *) parked[EBB_PARK_CLASSES];
    _Atomic(uint64_t) parked_epoch[EBB_PARK_CLASSES]; /* ebbi_reclaim_epoch when parked */
    struct arena_s *arena;
    uint32_t id;
    bool in_use;
    struct heap_s *pool_next;        /* in the pool of unused heaps */
    struct heap_s *all_next;         /* every heap ever made, for statistics */
    class_counts_t counts[EBB_CLASS_COUNT];
    ebbi_counter_t huge_allocs, huge_frees, huge_bytes_alloc, huge_bytes_freed;
    int64_t sample_countdown;        /* EBB_GUARD_SAMPLE: allocations until the next sample */
    int sample_suspended;            /* >0: no sampling (an over-aligned request) */
    uint64_t sample_seen[EBB_CLASS_COUNT];
    uint64_t rng;                    /* safety modes' randomness, this thread's */
    int64_t profile_countdown;       /* EBB_PROFILE: bytes until the next sample (0: not drawn) */
    uint64_t profile_seen[EBB_CLASS_COUNT + 1]; /* bytes of each class (and huge) at the last look */
    uint64_t profile_rng;
    uint32_t validate_ticks;         /* the debug build: slow paths since the last validation */
    uint32_t remote_mask;            /* the batches in use */
    remote_batch_t remote[EBB_REMOTE_SLOTS];
    /* The handover to another thread while the owner is idle (heap.c).
     * The owner thread's words; NULL while the heap has no thread. */
    struct ebbi_thread_s *_Atomic thread;
    _Atomic(uint8_t) taken;          /* another thread took the heap (heap.c: TAKE_*) */
    _Atomic(uint8_t) want_back;      /* its owner waits for it */
    _Atomic(uint8_t) sweeping;       /* taken, and worked on (the debug build's checks) */
    _Atomic(uint8_t) in_batch;       /* a sweep may read its thread's words */
    /* The sweeper's (under its lock): the owner's activity at the last
     * sweep, and when it was last seen to change. */
    uint64_t swept_activity, seen_activity, seen_since_ns;
    struct heap_s *sweep_next;       /* in the sweeper's batch */
    struct ebbi_thread_s *sweep_thread; /* the owner's words, as the sweeper took them */
    bool sweep_retry;                /* malloc_trim's sweep found it busy: once more */
    bool sweep_busy;                 /* the sweep found its thread in a call */
    /* Idle classes (heap.c, purge_idle_firsts): the owner's look at its
     * classes up to EBB_DIRECT_MAX, every so many malloc slow paths. */
    uint32_t idle_ticks;             /* slow paths until the next clock reading */
    uint64_t idle_look_ns;           /* when the classes were last looked at */
    uint64_t idle_allocs[EBB_PARK_FIRST_CLASS]; /* each class's allocations then */
    /* Written by other threads: a block was freed into one of the pages
     * since the last sweep.  A line of its own, away from the owner's. */
    _Atomic(uint8_t) remote_seen __attribute__((aligned(64)));
} heap_t;

EBBI_HIDDEN extern heap_t ebbi_heap_empty;
EBBI_HIDDEN extern page_t ebbi_page_empty;
/* A thread's words (one TLS block, reached with one address load). */
typedef struct ebbi_thread_s {
    /* The heap the thread allocates from: its own, or &ebbi_heap_empty
     * while it has none or while another thread works on it (heap.c). */
    _Atomic(heap_t *) heap;
    /* 1 while the thread is inside an allocator call (alloc.c). */
    _Atomic(uint8_t) busy;
} ebbi_thread_t;
EBBI_HIDDEN extern __thread ebbi_thread_t ebbi_thread __attribute__((tls_model("initial-exec")));

/* An allocator call begins: the thread's heap is in use from here on (the
 * store comes before the load of ebbi_thread.heap; the sweeper's barrier,
 * heap.c, orders them for it). */
static inline void ebbi_call_begin(void)
{
    ebbi_store_relaxed(&ebbi_thread.busy, 1);
    ebbi_compiler_barrier();
}

static inline void ebbi_call_end(void)
{
    ebbi_store_release(&ebbi_thread.busy, 0);
}

static inline heap_t *ebbi_thread_heap(void)
{
    return ebbi_load_acquire(&ebbi_thread.heap);
}

/* ---------------------------------------------------------------------
 * Arenas.
 */
typedef struct arena_s {
    pthread_mutex_t lock;
    uint64_t span_mask;                /* bit n: span_bins[n] non-empty */
    page_t *span_bins[EBB_SLICES_PER_SEGMENT];
    _Atomic(page_t *) abandoned[EBB_CLASS_COUNT]; /* written under the lock, peeked without */
    segment_t *segments;               /* the arena's segments */
    page_t *dirty_first, *dirty_last;  /* free spans to reclaim, oldest first */
    _Atomic(uint64_t) dirty_bytes;     /* their touched bytes (read without the lock) */
    uint32_t validate_ticks;           /* the debug build: changes since the last validation */
} arena_t;

/* ---------------------------------------------------------------------
 * Process-wide state (init.c).
 */
typedef struct ebbi_process_s {
    _Atomic int state;                 /* 0 uninitialized, 1 initializing, 2 ready */
    size_t page_size;
    unsigned arena_count;
    _Atomic(bool) thread_key_ready;
    _Atomic(bool) started;             /* the library's constructor has run */
    _Atomic(bool) init_done;           /* phase 2 of ebbi_process_init is over */
    pthread_key_t thread_key;
} ebbi_process_t;

EBBI_HIDDEN extern ebbi_process_t ebbi_process;
EBBI_HIDDEN extern arena_t ebbi_arenas[EBB_MAX_ARENAS];

/* The free key of the blocks of a page: the address of the page's entry,
 * a value no program can hold legitimately (no pointer into the
 * allocator's metadata is ever handed out), and already in a register on
 * the free path. */
static inline uintptr_t ebbi_free_key(const page_t *page)
{
    return (uintptr_t)page;
}

/* ---- os.c: the only system calls ---------------------------------- */
/* Every function preserves errno; failures are reported by return value. */
EBBI_HIDDEN void *ebbi_os_map(size_t size, void *hint);            /* zeroed RW memory, or NULL */
/* [p, p+size) with p + offset a multiple of align (a power of two). */
EBBI_HIDDEN void *ebbi_os_map_aligned(size_t size, size_t align, size_t offset);
EBBI_HIDDEN void *ebbi_os_map_reach(size_t size, size_t align, size_t *reach);
EBBI_HIDDEN void ebbi_os_unmap(void *p, size_t size);
/* Pages read back as zero, and cost no memory, if true is returned. */
EBBI_HIDDEN bool ebbi_os_decommit(void *p, size_t size);
/* Zeroes a range, leaving the kernel pages it covers that are not in
 * memory out of it. */
EBBI_HIDDEN void ebbi_os_clear(void *p, size_t size);
/* Below this a memset costs less than asking the kernel. */
#define EBBI_CLEAR_BY_PAGES ((size_t)64 << 10)
static inline void ebbi_clear(void *p, size_t size)
{
    if (size < EBBI_CLEAR_BY_PAGES)
        __builtin_memset(p, 0, size);
    else
        ebbi_os_clear(p, size);
}
/* Decommits gathered for one kernel call (process_madvise), for a walk
 * that gives back many ranges: each range is added, then the batch is
 * flushed, before the memory may be used again.  Starts zeroed. */
typedef struct {
    struct iovec range[EBB_DECOMMIT_BATCH];
    unsigned count;
    size_t given; /* by the calls made so far */
    void (*refused)(void *p, size_t size); /* told of a range that failed */
} ebbi_decommit_t;
EBBI_HIDDEN void ebbi_os_decommit_add(ebbi_decommit_t *batch, void *p, size_t size);
/* The last calls; returns the bytes given back since the last flush (a
 * range that fails keeps its data). */
EBBI_HIDDEN size_t ebbi_os_decommit_flush(ebbi_decommit_t *batch);
/* MADV_FREE: the kernel takes the pages when it needs them; until then they
 * keep their contents.  False if the kernel does not support it. */
EBBI_HIDDEN bool ebbi_os_purge_lazily(void *p, size_t size);
EBBI_HIDDEN bool ebbi_os_resize_in_place(void *p, size_t old_size, size_t new_size);
EBBI_HIDDEN bool ebbi_os_move(void *old, size_t old_size, void *target);
EBBI_HIDDEN void *ebbi_os_brk_current(void);
EBBI_HIDDEN void *ebbi_os_brk_move(intptr_t delta);                /* old break, or NULL */
EBBI_HIDDEN size_t ebbi_os_page_size(void);
EBBI_HIDDEN unsigned ebbi_os_cpu_count(void);
EBBI_HIDDEN uintptr_t ebbi_os_random_word(void);
EBBI_HIDDEN uint64_t ebbi_os_now_ns(void);
EBBI_HIDDEN uint64_t ebbi_os_precise_ns(void);
EBBI_HIDDEN void ebbi_os_write_stderr(const char *s, size_t n);
EBBI_HIDDEN void ebbi_os_write_fd(int fd, const char *s, size_t n);
EBBI_HIDDEN int ebbi_os_dup_stderr(void);
EBBI_HIDDEN __attribute__((noreturn)) void ebbi_os_abort(void);
EBBI_HIDDEN void ebbi_os_yield(void);
EBBI_HIDDEN void ebbi_os_cond_init(pthread_cond_t *cond);
EBBI_HIDDEN void ebbi_os_cond_signal(pthread_cond_t *cond);
EBBI_HIDDEN void ebbi_os_cond_wait(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t at_ns);
/* A full memory barrier on every running thread of the process
 * (membarrier(2)), so that a plain store of any of them before it is seen
 * by the caller after it.  False if the kernel cannot. */
EBBI_HIDDEN bool ebbi_os_barrier_all_threads(void);
EBBI_HIDDEN void ebbi_os_init(uintptr_t random);
/* A new file (O_EXCL), `size` bytes, mapped shared; NULL on failure. */
EBBI_HIDDEN void *ebbi_os_map_new_file(const char *path, size_t size);
EBBI_HIDDEN size_t ebbi_os_self_exe(char *buf, size_t cap);
EBBI_HIDDEN size_t ebbi_os_read_file(const char *path, char *buf, size_t cap);
typedef enum { EBBI_RLIMIT_AS, EBBI_RLIMIT_DATA } ebbi_rlimit_t;
EBBI_HIDDEN uint64_t ebbi_os_rlimit(ebbi_rlimit_t which);
EBBI_HIDDEN unsigned ebbi_os_thread_count(void); /* the process's threads; 0 if unknown */
EBBI_HIDDEN int ebbi_os_pid(void);
EBBI_HIDDEN int ebbi_os_ppid(void);
typedef enum { EBBI_ACCESS_NONE, EBBI_ACCESS_RW } ebbi_access_t;
EBBI_HIDDEN bool ebbi_os_protect(void *p, size_t size, ebbi_access_t access);
/* A detached thread, all signals blocked in it; false if none was made. */
EBBI_HIDDEN bool ebbi_os_thread_start(void *(*main)(void *), const char *name);
/* "symbol (file+0xoffset)" for a code address, written into buf. */
EBBI_HIDDEN const char *ebbi_os_code_name(uintptr_t addr, char *buf, size_t cap);
/* The C runtime's unwinder (libgcc_s), found or loaded; false if none. */
EBBI_HIDDEN bool ebbi_os_unwinder_load(void);
/* Is ip in this library's code? */
EBBI_HIDDEN bool ebbi_os_self_code(uintptr_t ip);
/* libgcc's walk of the caller's stack: add() gets each return address,
 * innermost first, until it says stop; false without an unwinder. */
EBBI_HIDDEN bool ebbi_os_unwind(bool (*add)(void *arg, uintptr_t ip), void *arg);
/* The .eh_frame_hdr of the loaded object whose code holds pc, or NULL. */
EBBI_HIDDEN const void *ebbi_os_code_frame_info(uintptr_t pc);
/* How many objects were unloaded (dlclose) since the start. */
EBBI_HIDDEN unsigned long long ebbi_os_objects_unloaded(void);
EBBI_HIDDEN uint32_t ebbi_os_thread_id(void);
/* A new file (truncated if there), or -1 with errno set. */
EBBI_HIDDEN int ebbi_os_create_file(const char *path);
EBBI_HIDDEN bool ebbi_os_file_exists(const char *path);
EBBI_HIDDEN void ebbi_os_remove_file(const char *path);
EBBI_HIDDEN int ebbi_os_open_read(const char *path);
EBBI_HIDDEN size_t ebbi_os_read_some(int fd, char *buf, size_t cap);
EBBI_HIDDEN void ebbi_os_close(int fd);
EBBI_HIDDEN bool ebbi_os_isolate(void *p, size_t size);
EBBI_HIDDEN bool ebbi_os_install_fault_handler(void (*handler)(int, void *, void *));
EBBI_HIDDEN void ebbi_os_fault_chain(int sig, void *info, void *context);

typedef struct ebbi_os_counts_s {
    ebbi_counter_t mmap, munmap, madvise, mremap, brk, mprotect;
} ebbi_os_counts_t;
EBBI_HIDDEN void ebbi_os_counts_get(ebbi_os_counts_t *out);
EBBI_HIDDEN long ebbi_os_faults_injected(void); /* test builds with EBB_FAULT_INJECTION */

/* ---- source.c: memory sources ---------------------------------------- */
EBBI_HIDDEN segment_t *ebbi_source_alloc_segment(bool *is_zero, uint8_t *source);
EBBI_HIDDEN void ebbi_source_free_segment(segment_t *seg, uint8_t source);
EBBI_HIDDEN uint64_t ebbi_source_mapped_bytes(void);
EBBI_HIDDEN void ebbi_source_fork_prepare(void);
EBBI_HIDDEN void ebbi_source_fork_parent(void);
EBBI_HIDDEN void ebbi_source_fork_child(void);

/* ---- segment.c: segments and the segment map ---------------------------- */
EBBI_HIDDEN segment_t *ebbi_segment_alloc(arena_t *arena);
EBBI_HIDDEN void ebbi_segment_free(segment_t *seg);
EBBI_HIDDEN void ebbi_segmap_set(uintptr_t region, uint8_t value);
EBBI_HIDDEN segment_t *ebbi_segment_lookup(uintptr_t p, page_t **page);

/* ---- arena.c: spans and abandoned pages --------------------------------- */
EBBI_HIDDEN void ebbi_arenas_init(unsigned count);
EBBI_HIDDEN page_t *ebbi_arena_alloc_page(arena_t *arena, unsigned class_id, bool *is_zero);
EBBI_HIDDEN void ebbi_arena_free_page(page_t *page);
EBBI_HIDDEN void ebbi_arena_abandon_page(page_t *page);
EBBI_HIDDEN page_t *ebbi_arena_take_abandoned(arena_t *arena, unsigned class_id);
/* Reclaim the spans freed before `freed_before_ns`, and older ones still
 * until `at_least` bytes are given back; stop early (but for whole free
 * segments) once the spans hold no more than `keep` reclaimable bytes.  Returns the
 * touched bytes given. */
EBBI_HIDDEN size_t ebbi_arena_purge(arena_t *arena, uint64_t freed_before_ns, size_t at_least, uint64_t keep);
EBBI_HIDDEN uint64_t ebbi_arena_oldest_dirty_ns(arena_t *arena);
EBBI_HIDDEN size_t ebbi_arena_purge_page(page_t *page, bool *is_zero);
/* Free the abandoned pages emptied since (their spans freed at `freed_at`);
 * decommit the free kernel pages of the others (sparse pages) that have
 * had no block freed into them since `quiet_before`.  Returns the bytes
 * decommitted. */
EBBI_HIDDEN size_t ebbi_arena_sweep_abandoned(arena_t *arena, uint64_t freed_at, uint64_t quiet_before);
/* When the next sweep has work: a delay after the last free into an
 * abandoned page not purged since; EBBI_NEVER if none. */
EBBI_HIDDEN uint64_t ebbi_arena_abandoned_due(arena_t *arena, uint64_t delay);
EBBI_HIDDEN void ebbi_arenas_fork_prepare(void);
EBBI_HIDDEN void ebbi_arenas_fork_parent(void);
EBBI_HIDDEN void ebbi_arenas_fork_child(void);

typedef struct ebbi_arena_usage_s {
    uint64_t segments;
    uint64_t segment_bytes;
    uint64_t free_span_bytes;   /* slices in free spans */
    uint64_t touched_bytes;     /* data slices' memory that may be resident */
    uint64_t dirty_bytes;       /* of that, in free spans: reclaimable */
} ebbi_arena_usage_t;
EBBI_HIDDEN void ebbi_arenas_usage(ebbi_arena_usage_t *out);
EBBI_HIDDEN void ebbi_arenas_class_resident(uint64_t resident[EBB_CLASS_COUNT]);

/* ---- page.c: one page's lists --------------------------------------- */
EBBI_HIDDEN void ebbi_page_init(page_t *page, heap_t *heap, unsigned class_id, bool is_zero);
EBBI_HIDDEN void ebbi_page_extend(page_t *page);
/* Returns whether any block was collected. */
EBBI_HIDDEN bool ebbi_page_collect(page_t *page);
EBBI_HIDDEN void ebbi_page_collect_all(page_t *page);
/* Sparse pages (page.c): decommit the kernel pages of a page in use that
 * hold no live block; take the holed blocks back when the page runs out. */
EBBI_HIDDEN void ebbi_page_purge_sparse(page_t *page, const page_t *next, ebbi_decommit_t *batch);
EBBI_HIDDEN size_t ebbi_page_purge_flush(ebbi_decommit_t *batch);
EBBI_HIDDEN bool ebbi_page_refill_holes(page_t *page);
/* Is the block (of the page) one of its holed blocks, so free already? */
EBBI_HIDDEN bool ebbi_page_block_holed(page_t *page, const void *block);
EBBI_HIDDEN bool ebbi_page_remote_waiting(page_t *page);
EBBI_HIDDEN void ebbi_page_prefetch(page_t *page);
EBBI_HIDDEN bool ebbi_page_try_mark_full(page_t *page);
EBBI_HIDDEN void ebbi_page_clear_full_mark(page_t *page);
EBBI_HIDDEN void ebbi_page_forbid_delayed(page_t *page);
EBBI_HIDDEN void ebbi_page_allow_delayed(page_t *page);
EBBI_HIDDEN void ebbi_page_free_remote(page_t *page, block_t *block);
EBBI_HIDDEN void ebbi_page_free_remote_list(page_t *page, block_t *head, block_t *tail, uint32_t count);
EBBI_HIDDEN void ebbi_page_after_fork(page_t *page);

/* Hand out the first block of page->free (non-empty). */
/* A free-list link that leads outside its page: "corrupted free list" (secure.c). */
EBBI_HIDDEN __attribute__((noreturn)) void ebbi_safety_link_corrupted(const void *where);

/* Is the head of the page's free list one of its carved blocks?  The link
 * that made it the head (the last pop's, or a refill's) is followed only
 * then: one that a write after free or an overflow changed is reported
 * (ebbi_page_pop), never followed.  An empty list (NULL) is no block
 * either, so the fast path's one test covers both.  The owner, the only
 * writer of `carved`, reads it plainly: an atomic load would not fold
 * into the compare. */
static inline bool ebbi_page_head_ok(const page_t *page, const block_t *head)
{
    return (uintptr_t)head - page->start < *(const uint64_t *)(const void *)&page->carved;
}

/* Hand out `block`, the head of the page's free list, checked.  The next
 * head is fetched meanwhile: a block freed by another thread, or long ago,
 * is cold, and its link is the next malloc's first load. */
static inline void *ebbi_page_take(page_t *page, block_t *block, size_t size, bool zero)
{
    block_t *next = block->next;
    page->free = next;
    __builtin_prefetch(next, 1);
    page->used++;
    ebbi_counter_add(&page->counts->allocs, 1);
    block->free_key = 0;
    if (zero) {
        if (page->free_is_zero)
            block->next = NULL; /* the rest is still as the kernel gave it */
        else
            ebbi_clear(block, size); /* the pages never touched stay out */
    }
    return block;
}

/* The page's free list is not empty. */
static inline void *ebbi_page_pop(page_t *page, size_t size, bool zero)
{
    block_t *block = page->free;
    if (unlikely(!ebbi_page_head_ok(page, block)))
        ebbi_safety_link_corrupted(block);
    return ebbi_page_take(page, block, size, zero);
}

/* ---- heap.c: thread heaps ------------------------------------------------ */
EBBI_HIDDEN heap_t *ebbi_heap_for_thread(void);
EBBI_HIDDEN heap_t *ebbi_heap_for_freeing_thread(void);
/* The malloc slow path (size first: the fast path's register); `end`: end
 * the allocator call (ebbi_call_end), so that the fast path reaches it by
 * a tail call. */
/* How an allocation wants its block (ebbi_heap_alloc_generic's `how`). */
#define EBBI_ALLOC_ZERO 1u      /* calloc: the block reads as zero */
#define EBBI_ALLOC_ENDS_CALL 2u /* an entry point's last step: the call ends after it */
EBBI_HIDDEN void *ebbi_heap_alloc_generic(size_t size, heap_t *heap, unsigned how);
/* Ends the allocator call (ebbi_call_end). */
EBBI_HIDDEN void ebbi_heap_free_local(heap_t *heap, page_t *page, block_t *block);
/* free() emptied a page with PAGE_ON_EMPTY set.  Ends the call. */
EBBI_HIDDEN void ebbi_heap_page_emptied(heap_t *heap, page_t *page);
/* A block this heap just handed out, freed within the allocator's call. */
EBBI_HIDDEN void ebbi_heap_take_back(heap_t *heap, page_t *page, block_t *block);
EBBI_HIDDEN void ebbi_heap_thread_done(void *value);
typedef enum { EBBI_COLLECT_TRIM, EBBI_COLLECT_SWEEP, EBBI_COLLECT_ABANDON } ebbi_collect_t;
EBBI_HIDDEN size_t ebbi_heap_collect(heap_t *heap, ebbi_collect_t how);
EBBI_HIDDEN void ebbi_heap_free_remote(heap_t *heap, page_t *page, block_t *block);
EBBI_HIDDEN size_t ebbi_release_reserves(void);
EBBI_HIDDEN void ebbi_heaps_fork_prepare(void);
EBBI_HIDDEN void ebbi_heaps_fork_parent(void);
EBBI_HIDDEN void ebbi_heaps_fork_child(void);
EBBI_HIDDEN heap_t *ebbi_heaps_first(void);
EBBI_HIDDEN size_t ebbi_heaps_purge_parked(uint64_t cutoff_ns, uint64_t now_ns);
EBBI_HIDDEN uint64_t ebbi_heaps_oldest_parked_ns(uint64_t now_ns);
EBBI_HIDDEN void ebbi_heap_direct_update(heap_t *heap, unsigned class_id);
/* The handover (heap.c): take the heaps of threads that are not in an
 * allocator call and give back what they hold free.  ALL: every heap
 * (malloc_trim); CHANGED: those used or freed into since their last sweep
 * (the program is idle); QUIET: of those, the ones whose thread has made no
 * call for `quiet_ns`, and *due says when the next may be. */
typedef enum { EBBI_SWEEP_ALL, EBBI_SWEEP_CHANGED, EBBI_SWEEP_QUIET } ebbi_sweep_t;
EBBI_HIDDEN size_t ebbi_heaps_sweep(ebbi_sweep_t mode, uint64_t quiet_ns, uint64_t *due);
EBBI_HIDDEN void ebbi_heaps_sweep_counts(uint64_t *swept, uint64_t *busy);
/* The owner's heap or the one this thread sweeps (the debug build's checks). */
EBBI_HIDDEN bool ebbi_heap_is_mine(const heap_t *heap);
EBBI_HIDDEN void ebbi_heap_key_made(void);
EBBI_HIDDEN bool ebbi_heap_is_bound(void);
/* A heap changed in a way a sweep may care about: the first change after a
 * sweep sets a deadline. */
EBBI_HIDDEN extern _Atomic(bool) ebbi_heaps_changed;
EBBI_HIDDEN void ebbi_heaps_note_change(void);
static inline void ebbi_heaps_touch(void)
{
    if (unlikely(!ebbi_load_relaxed(&ebbi_heaps_changed)))
        ebbi_heaps_note_change();
}

/* ---- account.c: the ledger of reclamation ------------------------------------ */
typedef enum { EBBI_POOL_SPANS, EBBI_POOL_HUGE, EBBI_POOLS } ebbi_pool_t;
/* Why the layers below call the policy (the one call up: ebbi_reclaim_notify). */
typedef enum {
    EBBI_EVENT_OVER,          /* the reclaimable total passed the bound */
    EBBI_EVENT_DUE,           /* a slow path found the deadline passed */
    EBBI_EVENT_GROWING,       /* a pool takes fresh memory past its room under a limit */
    EBBI_EVENT_OUT_OF_MEMORY  /* the kernel refused memory */
} ebbi_event_t;
#define EBBI_NEVER UINT64_MAX /* ebbi_due_ns: nothing due */
#define EBBI_EPOCH_RING 64
/* The earliest time some freed memory is due to go back; EBBI_NEVER if none. */
EBBI_HIDDEN extern _Atomic(uint64_t) ebbi_due_ns;
/* Passes begun (the stamp of parked pages). */
EBBI_HIDDEN extern _Atomic(uint64_t) ebbi_pass_epoch;
/* The service thread should be started by the next malloc slow path. */
EBBI_HIDDEN extern _Atomic(bool) ebbi_service_wanted;
/* A memory limit leaves no room: nothing freed may wait (reclaim.c), and a
 * heap taking a new page gives back its emptied first pages (heap.c). */
EBBI_HIDDEN extern _Atomic(bool) ebbi_limit_tight;
/* `fresh`: bytes of it that were never touched, or given back since (page
 * faults to come).  No lock may be held (it may call the policy). */
EBBI_HIDDEN void ebbi_account_take(ebbi_pool_t pool, uint64_t bytes, uint64_t fresh);
EBBI_HIDDEN void ebbi_account_give(ebbi_pool_t pool, uint64_t bytes);
EBBI_HIDDEN uint64_t ebbi_account_live(ebbi_pool_t pool);
EBBI_HIDDEN uint64_t ebbi_account_last_take_ns(ebbi_pool_t pool);
/* The peak of `live` since the last call, when it was reached, and the
 * trough; the next epoch starts from `live` now. */
EBBI_HIDDEN uint64_t ebbi_account_close_peak(ebbi_pool_t pool, uint64_t now_ns, uint64_t *peak_ns, uint64_t *trough);
EBBI_HIDDEN void ebbi_account_reclaimable(ebbi_pool_t pool, int64_t delta);
EBBI_HIDDEN uint64_t ebbi_account_pool_reclaimable(ebbi_pool_t pool);
EBBI_HIDDEN uint64_t ebbi_account_reclaimable_bytes(void);
EBBI_HIDDEN void ebbi_account_reclaimed(size_t bytes);
EBBI_HIDDEN uint64_t ebbi_account_reclaimed_total(void);
EBBI_HIDDEN void ebbi_account_credit(uint64_t bytes);
EBBI_HIDDEN void ebbi_account_decay_credit(void);
EBBI_HIDDEN uint64_t ebbi_account_refaulted_total(void);
EBBI_HIDDEN uint64_t ebbi_account_taken_total(void);
EBBI_HIDDEN void ebbi_account_set_bound(uint64_t bytes);
EBBI_HIDDEN uint64_t ebbi_account_bound(void);
EBBI_HIDDEN void ebbi_account_set_growth_budget(uint64_t bytes);
EBBI_HIDDEN void ebbi_account_due_at_most(uint64_t due_ns);
EBBI_HIDDEN void ebbi_account_sparse_at_most(uint64_t due_ns);
EBBI_HIDDEN void ebbi_account_sparse_set(uint64_t due_ns);
EBBI_HIDDEN uint64_t ebbi_account_sparse_due(void);
EBBI_HIDDEN uint64_t ebbi_account_generation(void);
EBBI_HIDDEN uint64_t ebbi_account_last_call_ns(void);
EBBI_HIDDEN void ebbi_account_freed(uint64_t now_ns);
EBBI_HIDDEN void ebbi_account_tick(void);
EBBI_HIDDEN void ebbi_account_mapped(void);
EBBI_HIDDEN uint64_t ebbi_account_pass_begin(uint64_t now_ns);
EBBI_HIDDEN uint64_t ebbi_account_parked_by(uint64_t epoch, uint64_t now_ns);
EBBI_HIDDEN void ebbi_doorbell_listen(void);
EBBI_HIDDEN bool ebbi_doorbell_listening(void);
EBBI_HIDDEN void ebbi_doorbell_ring(void);
EBBI_HIDDEN void ebbi_doorbell_main_exited(void);
EBBI_HIDDEN bool ebbi_doorbell_main_gone(void);
EBBI_HIDDEN void ebbi_doorbell_thread_exited(void);
EBBI_HIDDEN uint64_t ebbi_doorbell_exits(void);
EBBI_HIDDEN void ebbi_doorbell_wait(uint64_t until_ns, uint64_t now_ns, bool watch_due);
EBBI_HIDDEN void ebbi_doorbell_fork_prepare(void);
EBBI_HIDDEN void ebbi_doorbell_fork_parent(void);
EBBI_HIDDEN void ebbi_doorbell_fork_child(void);

/* ---- limits.c: memory limits and pressure --------------------------------------- */
typedef struct {
    bool any;          /* a limit is known */
    bool pressure;     /* tasks stall waiting for memory */
    uint64_t limit;    /* the limit that binds first (UINT64_MAX: none) */
    uint64_t room;     /* its limit - usage */
    uint64_t margin;   /* kept free below it */
} ebbi_limits_t;
EBBI_HIDDEN void ebbi_limits_discover(void);
EBBI_HIDDEN bool ebbi_limits_known(void);
EBBI_HIDDEN void ebbi_limits_read(ebbi_limits_t *out, uint64_t now_ns);

/* ---- reclaim.c: the policy ------------------------------------------------------- */
EBBI_HIDDEN size_t ebbi_reclaim_notify(ebbi_event_t event, uint64_t bytes);
EBBI_HIDDEN size_t ebbi_reclaim_now(bool all);
/* malloc_trim: everything, every thread's heap swept. */
EBBI_HIDDEN size_t ebbi_reclaim_trim(void);
EBBI_HIDDEN uint64_t ebbi_reclaim_look(uint64_t now_ns, bool idle);
EBBI_HIDDEN bool ebbi_reclaim_waiting(void);
EBBI_HIDDEN void ebbi_reclaim_init(void);
typedef struct {
    uint64_t kept_spans, kept_huge; /* freed memory kept because reuse is predicted */
    uint64_t bound;                 /* the most freed memory that may wait */
    uint64_t history_ms;            /* how long peaks are remembered */
    uint64_t limit, limit_room;     /* the binding memory limit and the room under it */
    uint64_t limit_passes;          /* passes forced by a limit or pressure */
} ebbi_reclaim_state_t;
EBBI_HIDDEN void ebbi_reclaim_state(ebbi_reclaim_state_t *out);
EBBI_HIDDEN void ebbi_reclaim_fork_prepare(void);
EBBI_HIDDEN void ebbi_reclaim_fork_parent(void);
EBBI_HIDDEN void ebbi_reclaim_fork_child(void);

/* ---- service.c: the service thread ----------------------------------------------- */
EBBI_HIDDEN void ebbi_service_start(void);
EBBI_HIDDEN void ebbi_service_fork_child(void);

/* ---- ownmap.c: mappings of their own (huge and guarded blocks) ---------------- */
/* A segment-aligned mapping of `map_size` bytes (aligned to `align` from
 * 4 MiB on, its block then at 4 MiB), with the address space up to *reach
 * free where reach is given; a guard page closed at `guard_at` (0: none);
 * `slack` bytes of it never touched. */
EBBI_HIDDEN segment_t *ebbi_ownmap_map(size_t map_size, size_t align, size_t *reach, size_t guard_at, size_t slack);
typedef enum { EBBI_MARK_BLOCK_REGIONS, EBBI_MARK_EVERY_REGION } ebbi_mark_t;
EBBI_HIDDEN void ebbi_ownmap_mark(segment_t *seg, ebbi_mark_t regions);
EBBI_HIDDEN void ebbi_ownmap_unmark(segment_t *seg);
/* Unmap it all; `slack`: its bytes counted as not resident. */
EBBI_HIDDEN void ebbi_ownmap_unmap(segment_t *seg, size_t slack);
/* Bytes mapped and bytes not resident, changed outside the calls above. */
EBBI_HIDDEN void ebbi_ownmap_count(int64_t mapped_delta, int64_t untouched_delta);
EBBI_HIDDEN uint64_t ebbi_ownmap_mapped_bytes(void);
EBBI_HIDDEN uint64_t ebbi_ownmap_resident_bytes(void);
/* Was p one of the last blocks unmapped (the misuse path's names)? */
EBBI_HIDDEN bool ebbi_ownmap_recently_unmapped(uintptr_t p);

/* ---- unwind.c: call stacks ---------------------------------------------------------- */
/* The C runtime's unwinder (libgcc_s), found or loaded, and the cache of
 * the fast walk's rules; false if there is no unwinder. */
EBBI_HIDDEN bool ebbi_unwind_load(void);
/* The caller's return addresses, innermost first, less the allocator's own
 * frames; 0 without an unwinder. */
EBBI_HIDDEN unsigned ebbi_unwind_backtrace(uintptr_t *frames, unsigned max);
/* The same, as `how` asks (tests): */
#define EBBI_UNWIND_KEEP_SELF 1u /* the allocator's frames too */
#define EBBI_UNWIND_FAST 2u      /* the fast walk only: UINT32_MAX where it cannot */
#define EBBI_UNWIND_LIBGCC 4u    /* libgcc's walk only */
EBBI_HIDDEN unsigned ebbi_unwind_stack(uintptr_t *frames, unsigned max, unsigned how);
EBBI_HIDDEN void ebbi_unwind_fork_prepare(void);
EBBI_HIDDEN void ebbi_unwind_fork_parent(void);
EBBI_HIDDEN void ebbi_unwind_fork_child(void);

/* ---- profile.c: the sampling heap profiler --------------------------------------- */
/* Fixed at start (the library's constructor): EBB_PROFILE=1. */
EBBI_HIDDEN extern bool ebbi_profiling;
EBBI_HIDDEN void ebbi_profile_init(void);
/* The malloc slow path handed out p: returns the block for the program,
 * p or, if it is a sample, a block in a mapping of its own (p taken back). */
EBBI_HIDDEN void *ebbi_profile_alloc(void *p, size_t size, bool zero);
/* A huge or guarded block is freed, or a block of a page that may hold
 * samples: its sample, if it is one, too. */
EBBI_HIDDEN void ebbi_profile_free(void *p);
/* The same for a block over EBBI_SAMPLE_MAP_MAX of a page: nothing while
 * no sample is left in a page. */
EBBI_HIDDEN void ebbi_profile_free_in_page(void *p);
/* Samples of blocks bigger than this stay in their page (PAGE_SAMPLES,
 * and REMOTE_FREE_PROFILE); smaller ones move to a sample mapping. */
#define EBBI_SAMPLE_MAP_MAX ((size_t)16 << 10)
/* A sampled block (SLICE_SAMPLED) is freed. */
EBBI_HIDDEN void ebbi_profile_sampled_free(heap_t *heap, segment_t *seg, page_t *page);
EBBI_HIDDEN size_t ebbi_profile_usable_size(const segment_t *seg, const page_t *page);
EBBI_HIDDEN void *ebbi_profile_realloced(void *old, void *p, size_t size, uint64_t growth);
/* realloc is about to move `old` (NULL: it is done). */
EBBI_HIDDEN void ebbi_profile_realloc_begin(void *old);
EBBI_HIDDEN void ebbi_profile_fork_prepare(void);
EBBI_HIDDEN void ebbi_profile_fork_parent(void);
EBBI_HIDDEN void ebbi_profile_fork_child(void);

/* ---- huge.c: huge blocks -------------------------------------------------- */
EBBI_HIDDEN void *ebbi_huge_alloc(heap_t *heap, size_t size, size_t align, bool zero);
EBBI_HIDDEN void ebbi_huge_free(heap_t *heap, segment_t *seg, page_t *page);
EBBI_HIDDEN void *ebbi_huge_realloc(heap_t *heap, segment_t *seg, page_t *page, size_t size);
EBBI_HIDDEN size_t ebbi_huge_usable_size(const segment_t *seg, const page_t *page);
/* Give back cached huge memory cached before `cutoff_ns`, oldest first,
 * while more than `keep` bytes are cached. */
EBBI_HIDDEN size_t ebbi_huge_trim(uint64_t cutoff_ns, uint64_t keep);
EBBI_HIDDEN uint64_t ebbi_huge_oldest_cached_ns(void);
EBBI_HIDDEN void ebbi_huge_fork_prepare(void);
EBBI_HIDDEN void ebbi_huge_fork_parent(void);
EBBI_HIDDEN void ebbi_huge_fork_child(void);

/* ---- meta (in init.c): allocator metadata from the os -------------------- */
EBBI_HIDDEN void *ebbi_meta_alloc(size_t size);
EBBI_HIDDEN uint64_t ebbi_meta_bytes(void);

/* ---- init.c: process start, fork ----------------------------------------- */
EBBI_HIDDEN bool ebbi_process_init(void);
EBBI_HIDDEN extern __thread bool ebbi_initializing_here;
static inline bool ebbi_process_ready(void)
{
    return likely(ebbi_load_acquire(&ebbi_process.state) == 2);
}

/* ---- options.c -------------------------------------------------------------- */
typedef enum {
    EBB_OPTION_BRK,      /* use the program break as a memory source */
    EBB_OPTION_ARENAS,   /* number of arenas; 0 = one per CPU */
    EBB_OPTION_STATS,    /* print a summary to stderr at exit */
    EBB_OPTION_RECLAIM_DELAY_MS, /* freed memory goes back after this long */
    EBB_OPTION_RETAIN_MAX,       /* ...or at once past this many reclaimable bytes */
    EBB_OPTION_BACKGROUND,       /* a thread reclaims for programs that go idle */
    EBB_OPTION_PURGE,            /* 0: MADV_DONTNEED, 1: MADV_FREE, 2: MADV_DONTNEED one range a call */
    EBB_OPTION_RETAIN_MIN,       /* reclaimable bytes kept even after the delay */
    EBB_OPTION_MMAP_THRESHOLD,   /* requests this big get their own mapping (0: 2 MiB up) */
    EBB_OPTION_ZERO_ON_FREE,     /* safety modes (safety.c) */
    EBB_OPTION_SECURE,
    EBB_OPTION_GUARD,            /* 0 off, 1 guard page after, 2 before */
    EBB_OPTION_GUARD_SAMPLE,     /* one allocation in N guarded; 0 off */
    EBB_OPTION_GUARD_QUARANTINE, /* bytes of freed guarded blocks kept inaccessible */
    EBB_OPTION_GUARD_SAMPLE_BUDGET, /* % of the time sampled blocks' system calls may take; 0 no bound */
    EBB_OPTION_ABORT_ON_ERROR,
    EBB_OPTION_PUBLISH_INTERVAL_MS, /* how often the statistics page is rewritten */
    EBB_OPTION_MEMORY_LIMIT,     /* a soft limit on resident memory (0: none) */
    EBB_OPTION_LIMITS,           /* read the cgroup's and rlimits' limits and PSI */
    EBB_OPTION_PROFILE,          /* the sampling heap profiler (profile.c) */
    EBB_OPTION_PROFILE_RATE,     /* bytes allocated per sample, on average */
    EBB_OPTION_PROFILE_FAST_UNWIND, /* stacks walked from cached rules (unwind.c); 0: libgcc's walk only */
    EBB_OPTION_COUNT
} ebbi_option_t;
EBBI_HIDDEN void ebbi_options_load(void);
EBBI_HIDDEN bool ebbi_options_from_environment(void);
/* An option's value: read on slow paths, so inline (a load). */
EBBI_HIDDEN extern _Atomic(long) ebbi_option_values[EBB_OPTION_COUNT];
static inline long ebbi_option(ebbi_option_t option)
{
    return ebbi_load_relaxed(&ebbi_option_values[option]);
}
EBBI_HIDDEN void ebbi_option_set(ebbi_option_t option, long value);
/* Set by the environment or mallopt, not left at its default. */
EBBI_HIDDEN bool ebbi_option_given(ebbi_option_t option);

static inline uint64_t ebbi_delay_ns(void)
{
    return (uint64_t)ebbi_option(EBB_OPTION_RECLAIM_DELAY_MS) * 1000000u;
}

/* How long a thread's heap stays unused, or an exited thread's page gets
 * no free, before its free kernel pages go back (heap.c, arena.c). */
static inline uint64_t ebbi_sweep_quiet_ns(void)
{
    return (uint64_t)EBB_SPARSE_QUIET_DELAYS * ebbi_delay_ns();
}

/* While freed memory is kept, the service thread looks this many times a
 * delay whether the program went idle (reclaim.c, service.c). */
#define LOOKS_PER_DELAY 8

/* ---- safety.c: the safety modes ---------------------------------------------- */
#define SAFETY_ZERO 1u         /* EBB_ZERO_ON_FREE: freed blocks are zeroed */
#define SAFETY_SECURE 2u       /* EBB_SECURE: hardened layout and checks */
#define SAFETY_GUARD_ALL 4u    /* EBB_GUARD: every allocation guarded */
#define SAFETY_GUARD_SAMPLE 8u /* EBB_GUARD_SAMPLE: one in N guarded */
/* Fixed when the allocator starts; 0 in the default mode. */
EBBI_HIDDEN extern uint8_t ebbi_safety;
/* What a free of another thread's block does besides the free, fixed at
 * start: the default mode's path tests one byte. */
#define REMOTE_FREE_CLEAR 1u   /* zero-on-free or secure: the block cleared */
#define REMOTE_FREE_PROFILE 2u /* profiling: a block over 16 KiB may be a sample left in its page */
EBBI_HIDDEN extern uint8_t ebbi_remote_free_work;
EBBI_HIDDEN extern uintptr_t ebbi_link_secret;

/* What the modes ask of the layers below the heap, fixed at start
 * (safety.c): those layers read these, never a mode.  All zero in the
 * default mode. */
typedef struct {
    uint32_t segment_guard; /* PROT_NONE bytes after every segment (source.c) */
    uint32_t meta_guard;    /* ... ending slice 0: metadata never beside data (segment.c) */
    uint32_t page_guard;    /* ... ending every page (page.c, arena.c) */
    uint32_t huge_guard;    /* ... ending every huge mapping; cached ones closed (huge.c) */
    uint8_t page_flags;     /* free_flags every page starts with (page.c) */
    bool free_keeps_zero;   /* a free zeroes the block past its link (page.c) */
    bool huge_free_clears;  /* a freed huge block is cleared before it is cached (huge.c) */
    bool huge_reuse_clears; /* ... or its cached pages as a block takes them (huge.c) */
    bool carve_shuffled;    /* new blocks zero, on the free list in random order (page.c) */
} ebbi_layout_t;
EBBI_HIDDEN extern ebbi_layout_t ebbi_layout;

/* xorshift64: the next of a nonzero state (the safety modes' shuffles and
 * draws, the profiler's gaps: cheap, not for secrets). */
static inline uint64_t ebbi_xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Free-list links: plain, or in secure mode encoded with a secret and the
 * link's own address, so that an overwritten link decodes to garbage that
 * the decoder's checks refuse rather than follow. */
static inline block_t *ebbi_block_next(const block_t *b)
{
    uintptr_t v = (uintptr_t)b->next;
    if (ebbi_safety & SAFETY_SECURE)
        v ^= ebbi_link_secret ^ (uintptr_t)b;
    return (block_t *)v;
}

static inline void ebbi_block_set_next(block_t *b, block_t *next)
{
    uintptr_t v = (uintptr_t)next;
    if (ebbi_safety & SAFETY_SECURE)
        v ^= ebbi_link_secret ^ (uintptr_t)b;
    b->next = (block_t *)v;
}

EBBI_HIDDEN void ebbi_safety_init(void);

/* ---- guard.c, sample.c, fault.c: guarded blocks ------------------------------ */
EBBI_HIDDEN void *ebbi_guard_alloc(heap_t *heap, size_t size, size_t align, const void *site);
EBBI_HIDDEN void ebbi_guard_free(heap_t *heap, segment_t *seg, page_t *page, const void *site);
EBBI_HIDDEN size_t ebbi_guard_usable_size(const page_t *page);
EBBI_HIDDEN uintptr_t ebbi_guard_page(const segment_t *seg);
EBBI_HIDDEN void ebbi_guard_fork_prepare(void);
EBBI_HIDDEN void ebbi_guard_fork_parent(void);
EBBI_HIDDEN void ebbi_guard_fork_child(void);
EBBI_HIDDEN void ebbi_sample_init(void);
EBBI_HIDDEN bool ebbi_guard_sample(heap_t *heap, unsigned class_id);
EBBI_HIDDEN void ebbi_guard_sample_counts(uint64_t *taken, uint64_t *skipped, uint64_t *spent_ns);
/* The sampled path's cost: a start time (0: not measured), then charged
 * to the budget. */
EBBI_HIDDEN uint64_t ebbi_sample_cost_start(void);
EBBI_HIDDEN void ebbi_sample_cost_charge(uint64_t start);
EBBI_HIDDEN void ebbi_sample_fork_child(void);
EBBI_HIDDEN void ebbi_fault_install(void);

/* ---- secure.c: secure mode's checks -------------------------------------------- */
EBBI_HIDDEN void ebbi_secure_init(void);
/* Zero-byte blocks, inaccessible: NULL when none is left (the caller
 * takes a block with a canary); ebbi_zero_free reports a double free. */
EBBI_HIDDEN void *ebbi_zero_alloc(void);
EBBI_HIDDEN bool ebbi_zero_holds(uintptr_t p);
EBBI_HIDDEN bool ebbi_zero_live(uintptr_t p);
EBBI_HIDDEN void ebbi_zero_free(void *p);
EBBI_HIDDEN void ebbi_zero_fork_prepare(void);
EBBI_HIDDEN void ebbi_zero_fork_parent(void);
EBBI_HIDDEN void ebbi_zero_fork_child(void);
/* Secure mode: room after each block for its canary.  Checking it (a
 * broken canary is reported) returns the size the block was asked for. */
#define SECURE_TAIL 8u
EBBI_HIDDEN size_t ebbi_canary_check(const page_t *page, const block_t *block);
/* Hand out `block`, the head of the page's free list, checked, with its
 * canary set (secure.c). */
EBBI_HIDDEN void *ebbi_secure_take(page_t *page, block_t *block, size_t size);
/* Zero or check a block being freed into a PAGE_SAFE page. */
EBBI_HIDDEN void ebbi_safety_on_free(page_t *page, block_t *block);

/* ---- publish.c: the statistics page for the ebb command ---------------------- */
EBBI_HIDDEN void ebbi_publish_init(void);
EBBI_HIDDEN uint64_t ebbi_publish_interval_ns(void);
typedef enum { EBBI_PUBLISH_UPDATE, EBBI_PUBLISH_AT_EXIT } ebbi_publish_t;
EBBI_HIDDEN void ebbi_publish_now(ebbi_publish_t when);
EBBI_HIDDEN void ebbi_publish_fork_child(void);

/* ---- the debug build (make debug: EBB_DEBUG=1) -------------------------------
 * ebbi_assert states an invariant the code relies on; the debug build checks
 * it and ends the process with "ebbmalloc: error: internal check failed: ..."
 * if it does not hold.  The validators walk a whole structure and check
 * every invariant docs/ARCHITECTURE.md states for it; they run on the slow
 * paths of the debug build only (every EBB_DEBUG_VALIDATE_EVERY-th time
 * where a walk is long).  The release build compiles both to nothing. */
#if EBB_DEBUG
#define ebbi_assert(cond) (likely(cond) ? (void)0 : ebbi_assert_failed(#cond, __FILE__, __LINE__))
#else
#define ebbi_assert(cond) ((void)sizeof(!(cond)))
#endif
EBBI_HIDDEN __attribute__((noreturn)) EBBI_COLD void ebbi_assert_failed(const char *what, const char *file,
                                                                        int line);
/* Where a page is, as its validator is told. */
enum ebbi_page_place { EBBI_IN_CLASS_QUEUE, EBBI_IN_FULL_QUEUE, EBBI_ABANDONED, EBBI_RELEASING };
#if EBB_DEBUG
/* The owner of the page (or, for an abandoned page, the arena lock holder). */
EBBI_HIDDEN void ebbi_page_validate(page_t *page, enum ebbi_page_place place);
EBBI_HIDDEN void ebbi_heap_validate(heap_t *heap);   /* the heap's own thread */
EBBI_HIDDEN void ebbi_arena_validate(arena_t *arena); /* the arena lock held */
#else
static inline void ebbi_page_validate(page_t *page, enum ebbi_page_place place)
{
    (void)page;
    (void)place;
}
static inline void ebbi_heap_validate(heap_t *heap)
{
    (void)heap;
}
static inline void ebbi_arena_validate(arena_t *arena)
{
    (void)arena;
}
#endif

/* The slow paths' long walks: true on one call in EBB_DEBUG_VALIDATE_EVERY
 * of the debug build, never in the release build. */
static inline bool ebbi_validate_due(uint32_t *ticks)
{
    if (!EBB_DEBUG || ++*ticks < EBB_DEBUG_VALIDATE_EVERY)
        return false;
    *ticks = 0;
    return true;
}

/* ---- report.c: the one way to say something ------------------------------ */
EBBI_HIDDEN __attribute__((noreturn)) EBBI_COLD void ebbi_fatal(const char *what, const void *addr);
/* Misuse the program survives if the call is ignored (a double free, a free
 * of a pointer that is not ours): an error and abort, or with
 * EBB_ABORT_ON_ERROR=0 a warning, and the caller ignores the call. */
EBBI_HIDDEN EBBI_COLD void ebbi_misuse(const char *what, const void *addr);
EBBI_HIDDEN size_t ebbi_format(char *buf, size_t cap, const char *fmt, ...);
EBBI_HIDDEN void ebbi_message(const char *fmt, ...);

/* ---- stats.c ----------------------------------------------------------------- */
EBBI_HIDDEN extern ebbi_counter_t ebbi_orphan_frees[EBB_CLASS_COUNT];
EBBI_HIDDEN extern ebbi_counter_t ebbi_orphan_huge_frees;
EBBI_HIDDEN extern ebbi_counter_t ebbi_orphan_huge_bytes;
/* Blocks handed out and given back per size class, over all threads. */
EBBI_HIDDEN void ebbi_stats_class_counts(uint64_t *allocs, uint64_t *frees);
EBBI_HIDDEN uint64_t ebbi_stats_activity(void);
EBBI_HIDDEN uint64_t ebbi_heap_activity(const heap_t *h);

#endif
