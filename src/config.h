/* Compile-time configuration: every constant of the layout in one place,
 * checked by static assertions.  Run-time options live in options.c. */
#ifndef EBB_CONFIG_H
#define EBB_CONFIG_H

/* Every block is 16-byte aligned, and no block is smaller (glibc's
 * contract on x86-64; the free-list link and the free key fit in it). */
#define EBB_ALIGNMENT 16
#define EBB_MIN_BLOCK 16

/* A slice is the unit a segment is cut into; a page is a run of slices
 * that serves one size class.  Slices start 64 KiB-aligned, so a block
 * size that is a multiple of an alignment up to 64 KiB keeps every block
 * of the page aligned (the memalign path relies on it). */
#define EBB_SLICE_SHIFT 16
#define EBB_SLICE_SIZE (1UL << EBB_SLICE_SHIFT)

/* A segment is 4 MiB, aligned to 4 MiB: a pointer's segment is found by
 * masking.  Slice 0 holds the segment's header and page metadata. */
#define EBB_SEGMENT_SHIFT 22
#define EBB_SEGMENT_SIZE (1UL << EBB_SEGMENT_SHIFT)
#define EBB_SEGMENT_MASK (EBB_SEGMENT_SIZE - 1)
#define EBB_SLICES_PER_SEGMENT (EBB_SEGMENT_SIZE / EBB_SLICE_SIZE)
#define EBB_SEGMENT_DATA_SLICES (EBB_SLICES_PER_SEGMENT - 1)

/* A sparse page's kernel pages are tracked in a 16-bit mask per slice:
 * kernel pages of 4 KiB or more. */
#define EBB_HOLE_BITS 16
/* The free kernel pages of abandoned pages (arena.c) go back once nothing
 * was freed into them for this many reclamation delays, or at once when
 * the program goes idle: pages of exited threads are adopted by others,
 * and a page quiet for 8 delays (400 ms) rarely is soon.  A live thread's
 * heap is swept by another thread (heap.c) once the thread made no
 * allocator call for as long: a worker that pauses between requests for
 * less keeps its pages warm. */
#define EBB_SPARSE_QUIET_DELAYS 8
/* A thread that exits with this much freed memory among its pages' live
 * blocks purges their free kernel pages itself (heap.c): purging at every
 * exit made the thread-churn workload three times slower, and its threads
 * hold a few MiB; a thread that kept this much is a long-lived one whose
 * memory no new thread takes soon. */
#define EBB_EXIT_PURGE_MIN ((uint64_t)64 << 20)

/* The service thread starts once the program's pages (in use and freed)
 * pass a segment's worth (or at its first huge block).  A program that
 * stays within one segment needs no thread: its frees are given back by
 * its own slow paths, and the thread would cost it about 200 KiB resident
 * (stack, and the C library's code for threads), a fifth of a small
 * program's, and its start. */
#define EBB_SERVICE_AFTER (EBB_SEGMENT_SIZE - EBB_SLICE_SIZE)

/* Ranges given back in one process_madvise call (os.c): a sparse page
 * gives one or two, and a call per 64 amortizes the kernel's entry and
 * its TLB flush; the batch lives on the stack (1 KiB). */
#define EBB_DECOMMIT_BATCH 64

/* The debug build (make debug) checks invariants; the release build does
 * not (internal.h, ebbi_assert).  A validator that walks a whole heap or
 * arena runs on one slow-path call in EBB_DEBUG_VALIDATE_EVERY: every call
 * would make the debug tests quadratic in the heap's size. */
#ifndef EBB_DEBUG
#define EBB_DEBUG 0
#endif
#define EBB_DEBUG_VALIDATE_EVERY 64

/* User address space covered by the segment map (x86-64 and aarch64 with
 * 48-bit virtual addresses: 128 TiB). */
#define EBB_ADDRESS_BITS 47
#define EBB_SEGMAP_ENTRIES (1UL << (EBB_ADDRESS_BITS - EBB_SEGMENT_SHIFT))

/* Size classes: 16-byte steps up to 128, then 8 classes per doubling up to
 * EBB_PAGE_BLOCK_MAX; see sizeclass.c.  Larger requests are huge blocks,
 * each in its own mapping. */
#define EBB_CLASS_COUNT 120
#define EBB_PAGE_BLOCK_MAX (2UL << 20)

/* Requests up to this size index the heap's direct page table. */
#define EBB_DIRECT_MAX 1024
#define EBB_DIRECT_SLOTS (EBB_DIRECT_MAX / EBB_ALIGNMENT + 1)

/* The classes from this one on serve sizes above EBB_DIRECT_MAX (checked
 * by tests/unit/test_sizeclass.c): malloc reaches their pages only through the
 * slow path, so an emptied first page of theirs can be parked for the
 * reclaimer (heap.c). */
#define EBB_PARK_FIRST_CLASS 32
#define EBB_PARK_CLASSES (EBB_CLASS_COUNT - EBB_PARK_FIRST_CLASS)

/* Bytes of blocks carved at a time from a page's untouched tail: pages
 * are touched only as they are used. */
#define EBB_EXTEND_BYTES 4096

/* Touched memory is tracked per slice in these units (reclamation). */
#define EBB_TOUCH_UNIT 4096u
#define EBB_TOUCH_UNITS_PER_SLICE (EBB_SLICE_SIZE / EBB_TOUCH_UNIT)
#define TOUCH_UNITS 0x1fu
#define TOUCH_STALE 0x80u

/* Blocks a thread frees into other threads' pages wait in its heap, one
 * batch per page, and go to their page in one push (heap.c): at most
 * EBB_REMOTE_SLOTS batches at a time, each sent once it holds
 * EBB_REMOTE_BATCH_BLOCKS blocks or EBB_REMOTE_BATCH_BYTES bytes, so a
 * thread holds back at most 32 x 4 KiB (and a block a batch) from their
 * owners.  32 slots: the pages of the classes a thread frees into at once
 * (consecutive slices of a segment) rarely share one. */
#define EBB_REMOTE_SLOTS 32
#define EBB_REMOTE_BATCH_BLOCKS 32
#define EBB_REMOTE_BATCH_BYTES 4096

/* Arenas (each with its own lock) that own segments; threads are spread
 * over them. */
#define EBB_MAX_ARENAS 64

/* Blocks above this size are never aligned inside a page: they go to
 * their own mapping. */
#define EBB_PAGE_ALIGN_MAX EBB_SLICE_SIZE

/* Joints a huge mapping may hold: places where pages moved in from cached
 * mappings begin a new kernel mapping (huge.c).  Each costs a system call
 * when the pages move again, and a VMA of the process. */
#define EBB_HUGE_JOINTS 16

/* Program-break segments tracked by the break source (16 GiB). */
#define EBB_BRK_MAX_SEGMENTS 4096

_Static_assert(EBB_SLICES_PER_SEGMENT == 64, "a segment's free slices fit one 64-bit mask");
_Static_assert((EBB_PAGE_BLOCK_MAX / EBB_SLICE_SIZE) < EBB_SEGMENT_DATA_SLICES,
               "the largest page fits in a segment beside its header");
_Static_assert((EBB_REMOTE_SLOTS & (EBB_REMOTE_SLOTS - 1)) == 0 && EBB_REMOTE_SLOTS <= 32,
               "a page's batch is found by a mask; the batches in use fit a 32-bit mask");
_Static_assert(EBB_DIRECT_MAX % EBB_ALIGNMENT == 0, "direct table covers whole steps");
_Static_assert(EBB_ALIGNMENT >= 2 * sizeof(void *), "a free block holds its link and its key");

#endif
