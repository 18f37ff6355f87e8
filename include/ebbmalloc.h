/* ebbmalloc — a general-purpose memory allocator for Linux.
 *
 * Preload libebbmalloc.so or link libebbmalloc.a and every malloc-family
 * call of the program goes to ebbmalloc.  This header declares the same
 * functions under an `ebb_` prefix, for programs that want to call the
 * allocator explicitly (or alongside another malloc), plus its statistics.
 *
 * Semantics follow glibc's: malloc(0) returns a unique pointer, every
 * result is 16-byte aligned, realloc(p, 0) frees p and returns NULL,
 * failures return NULL with errno = ENOMEM (EINVAL for bad alignments),
 * and a free of a pointer the allocator does not own is reported on
 * stderr ("ebbmalloc: error: ...") and aborts.
 */
#ifndef EBBMALLOC_H
#define EBBMALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EBBMALLOC_VERSION_MAJOR 0
#define EBBMALLOC_VERSION_MINOR 1
#define EBBMALLOC_VERSION_PATCH 0

#if defined(__GNUC__)
#define EBB_API __attribute__((visibility("default")))
#define EBB_ATTR_MALLOC __attribute__((malloc, warn_unused_result))
#define EBB_ATTR_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define EBB_API
#define EBB_ATTR_MALLOC
#define EBB_ATTR_ALLOC_SIZE(...)
#endif

/* The C and POSIX allocation functions. */
EBB_API EBB_ATTR_MALLOC EBB_ATTR_ALLOC_SIZE(1) void *ebb_malloc(size_t size);
EBB_API EBB_ATTR_MALLOC EBB_ATTR_ALLOC_SIZE(1, 2) void *ebb_calloc(size_t count, size_t size);
EBB_API EBB_ATTR_ALLOC_SIZE(2) void *ebb_realloc(void *ptr, size_t size);
EBB_API EBB_ATTR_ALLOC_SIZE(2, 3) void *ebb_reallocarray(void *ptr, size_t count, size_t size);
EBB_API void ebb_free(void *ptr);
/* C23: size (and alignment) must be those the block was allocated with. */
EBB_API void ebb_free_sized(void *ptr, size_t size);
EBB_API void ebb_free_aligned_sized(void *ptr, size_t alignment, size_t size);

EBB_API int ebb_posix_memalign(void **result, size_t alignment, size_t size);
EBB_API EBB_ATTR_MALLOC EBB_ATTR_ALLOC_SIZE(2) void *ebb_aligned_alloc(size_t alignment, size_t size);
EBB_API EBB_ATTR_MALLOC EBB_ATTR_ALLOC_SIZE(2) void *ebb_memalign(size_t alignment, size_t size);
EBB_API EBB_ATTR_MALLOC EBB_ATTR_ALLOC_SIZE(1) void *ebb_valloc(size_t size);
EBB_API EBB_ATTR_MALLOC void *ebb_pvalloc(size_t size);

/* The glibc extensions. */
EBB_API size_t ebb_malloc_usable_size(void *ptr);
EBB_API int ebb_malloc_trim(size_t pad);
EBB_API int ebb_mallopt(int param, int value);
EBB_API void ebb_malloc_stats(void);
EBB_API int ebb_malloc_info(int options, FILE *stream);

/* glibc's struct mallinfo2, reproduced so that this header does not need
 * <malloc.h>.  Fields as glibc documents them; see ebbmalloc(3) for how
 * ebbmalloc fills them. */
struct ebb_mallinfo2 {
    size_t arena;    /* bytes in the allocator's segments (non-huge space) */
    size_t ordblks;  /* number of segments */
    size_t smblks;   /* always 0 */
    size_t hblks;    /* number of huge blocks (own mappings) */
    size_t hblkhd;   /* bytes in huge-block mappings */
    size_t usmblks;  /* always 0 */
    size_t fsmblks;  /* always 0 */
    size_t uordblks; /* bytes in use in segments */
    size_t fordblks; /* bytes in segments not in use */
    size_t keepcost; /* bytes that malloc_trim could give back now */
};
EBB_API struct ebb_mallinfo2 ebb_mallinfo2(void);

/* Statistics, summed on demand over all threads.  Every byte the
 * allocator holds is in one state: in use, freed but not reclaimed (still
 * resident, reused first), reclaimed (given back to the kernel), or
 * metadata; resident = in_use + freed_retained + metadata.  "in use"
 * counts whole blocks (the size class a request was rounded to); huge
 * blocks are counted resident in full.  One list of fields makes the
 * struct, malloc_stats' lines, malloc_info's XML and EBB_STATS' line.
 * Fields are only ever added at the end; until 1.0 a program that calls
 * ebb_stats_get must be built against the header of the library it runs
 * with (the struct grows). */
#define EBB_STATS_FIELDS(X)                                                          \
    X(in_use, "bytes in live blocks")                                                \
    X(in_use_blocks, "live blocks")                                                  \
    X(huge_in_use, "bytes of live blocks in huge blocks (each its own mapping)")     \
    X(freed_retained, "bytes freed, not reclaimed: resident, reused first")          \
    X(reclaimable, "of those, bytes the reclaimer gives back after the delay")       \
    X(resident, "bytes resident: in use + freed, not reclaimed + metadata")          \
    X(reclaimed, "bytes of address space held but not resident")                     \
    X(reclaimed_total, "bytes given back to the kernel since the start")             \
    X(mapped, "bytes of address space mapped from the kernel")                       \
    X(metadata, "bytes of the allocator's own bookkeeping")                          \
    X(segments, "segments (4 MiB each) held")                                        \
    X(huge_blocks, "live huge blocks")                                               \
    X(malloc_calls, "blocks handed out, all entry points")                           \
    X(free_calls, "blocks given back, all entry points")                             \
    X(os_mmap, "mmap calls")                                                         \
    X(os_munmap, "munmap calls")                                                     \
    X(os_madvise, "madvise calls")                                                   \
    X(os_mremap, "mremap calls")                                                     \
    X(os_brk, "calls that moved the program break")                                  \
    X(os_mprotect, "mprotect calls (guard pages)")                                   \
    X(guard_samples, "allocations EBB_GUARD_SAMPLE chose for the guarded path")      \
    X(guard_samples_skipped, "samples left out to keep EBB_GUARD_SAMPLE_BUDGET")     \
    X(guard_sample_ns, "nanoseconds the sampled guarded path took (its budget's measure)") \
    X(kept_predicted, "of freed_retained, bytes kept because recent peaks predict reuse") \
    X(refaulted, "bytes given back, then taken fresh again soon after (refaults)")       \
    X(retain_bound, "the most freed memory that may wait now")                        \
    X(history_ms, "how long the reclamation policy remembers peaks (refaults lengthen it)") \
    X(memory_limit, "the memory limit that binds first (cgroup, rlimit, EBB_MEMORY_LIMIT; 0: none)") \
    X(memory_limit_room, "bytes left under that limit when last read")                 \
    X(limit_passes, "passes that gave everything back for a memory limit or pressure") \
    X(heaps_swept, "idle threads' heaps that another thread took and swept")            \
    X(heaps_swept_busy, "heaps a sweep took but left alone: their thread was in a call")

struct ebb_stats {
#define EBB_STATS_DECLARE_(name, doc) uint64_t name;
    EBB_STATS_FIELDS(EBB_STATS_DECLARE_)
#undef EBB_STATS_DECLARE_
};
EBB_API void ebb_stats_get(struct ebb_stats *stats);

/* The sampling heap profiler (EBB_PROFILE=1): writes the samples so far
 * (call stacks, sizes, estimated bytes, threads, allocation and free
 * times) and the process's mappings to `path`, for `ebb profile` to read.
 * 0, or -1 with errno set (ENOTSUP: profiling is off). */
EBB_API int ebb_profile_dump(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* EBBMALLOC_H */
