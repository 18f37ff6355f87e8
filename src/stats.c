/* Statistics: counters kept per thread, summed on demand, and the glibc
 * entry points that report them (mallinfo, mallinfo2, malloc_stats,
 * malloc_info) or tune the allocator (mallopt).
 *
 * Each heap counts the blocks it handed out and took back per size class,
 * with plain stores (atomic.h: ebbi_counter_add); a block freed by another
 * thread is counted by the freeing thread's heap, so only the sums over
 * all heaps mean anything, and they are exact once the threads are quiet.
 * Frees by threads without a heap (after their heap was given back at
 * exit) go to the process-wide atomic counters below.
 */
#include <stdio.h>
#include <string.h>

#include "ebbmalloc.h"
#include "internal.h"

ebbi_counter_t ebbi_orphan_frees[EBB_CLASS_COUNT];
ebbi_counter_t ebbi_orphan_huge_frees;
ebbi_counter_t ebbi_orphan_huge_bytes;

/* Every heap's counters (and the orphans'), summed in one walk. */
typedef struct {
    uint64_t allocs[EBB_CLASS_COUNT], frees[EBB_CLASS_COUNT];
    uint64_t huge_allocs, huge_frees, huge_bytes_alloc, huge_bytes_freed;
} counter_sums_t;

static void counter_sums(counter_sums_t *s)
{
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        s->allocs[c] = 0;
        s->frees[c] = ebbi_load_relaxed(&ebbi_orphan_frees[c]);
    }
    s->huge_allocs = 0;
    s->huge_frees = ebbi_load_relaxed(&ebbi_orphan_huge_frees);
    s->huge_bytes_alloc = 0;
    s->huge_bytes_freed = ebbi_load_relaxed(&ebbi_orphan_huge_bytes);
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next) {
        for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
            s->allocs[c] += ebbi_load_relaxed(&h->counts[c].allocs);
            s->frees[c] += ebbi_load_relaxed(&h->counts[c].frees);
        }
        s->huge_allocs += ebbi_load_relaxed(&h->huge_allocs);
        s->huge_frees += ebbi_load_relaxed(&h->huge_frees);
        s->huge_bytes_alloc += ebbi_load_relaxed(&h->huge_bytes_alloc);
        s->huge_bytes_freed += ebbi_load_relaxed(&h->huge_bytes_freed);
    }
}

void ebbi_stats_class_counts(uint64_t *allocs, uint64_t *frees)
{
    counter_sums_t s;
    counter_sums(&s);
    memcpy(allocs, s.allocs, sizeof s.allocs);
    memcpy(frees, s.frees, sizeof s.frees);
}

/* A number that changes whenever the heap's thread allocates or frees:
 * the sum of its counters (for the sweeps of idle threads' heaps). */
uint64_t ebbi_heap_activity(const heap_t *h)
{
    uint64_t sum = ebbi_load_relaxed(&h->huge_allocs) + ebbi_load_relaxed(&h->huge_frees);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        sum += ebbi_load_relaxed(&h->counts[c].allocs) + ebbi_load_relaxed(&h->counts[c].frees);
    return sum;
}

/* The same for the whole program, with the frees of threads without a
 * heap (for the reclaimer's idle pass). */
uint64_t ebbi_stats_activity(void)
{
    uint64_t sum = ebbi_load_relaxed(&ebbi_orphan_huge_frees);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        sum += ebbi_load_relaxed(&ebbi_orphan_frees[c]);
    for (heap_t *h = ebbi_heaps_first(); h != NULL; h = h->all_next)
        sum += ebbi_heap_activity(h);
    return sum + 1; /* never 0 */
}

void ebb_stats_get(struct ebb_stats *out)
{
    memset(out, 0, sizeof *out);
    counter_sums_t s;
    counter_sums(&s);
    uint64_t allocs = s.huge_allocs, frees = s.huge_frees;
    int64_t live[EBB_CLASS_COUNT];
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        live[c] = (int64_t)(s.allocs[c] - s.frees[c]);
        allocs += s.allocs[c];
        frees += s.frees[c];
    }
    int64_t huge_blocks = (int64_t)(s.huge_allocs - s.huge_frees);
    int64_t huge_bytes = (int64_t)(s.huge_bytes_alloc - s.huge_bytes_freed);
    /* Counters read while other threads run can be a moment apart. */
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        if (live[c] > 0) {
            out->in_use_blocks += (uint64_t)live[c];
            out->in_use += (uint64_t)live[c] * ebbi_classes[c].block_size;
        }
    }
    if (huge_blocks > 0)
        out->huge_blocks = (uint64_t)huge_blocks;
    if (huge_bytes > 0)
        out->huge_in_use = (uint64_t)huge_bytes;
    out->in_use_blocks += out->huge_blocks;
    out->in_use += out->huge_in_use;
    out->malloc_calls = allocs;
    out->free_calls = frees;

    ebbi_arena_usage_t usage;
    ebbi_arenas_usage(&usage);
    out->segments = usage.segments;
    out->mapped = ebbi_source_mapped_bytes() + ebbi_ownmap_mapped_bytes() +
                  ebbi_meta_bytes();
    /* Segment headers count as metadata: the part of slice 0 they use. */
    size_t ps = ebbi_process.page_size ? ebbi_process.page_size : 4096;
    size_t header = (sizeof(segment_t) + ps - 1) & ~(ps - 1);
    out->metadata = ebbi_meta_bytes() + usage.segments * header;
    out->resident = usage.touched_bytes + ebbi_ownmap_resident_bytes() + out->metadata;
    if (out->resident < out->in_use + out->metadata)
        out->resident = out->in_use + out->metadata; /* counters read a moment apart */
    out->freed_retained = out->resident - out->in_use - out->metadata;
    out->reclaimable = ebbi_account_reclaimable_bytes();
    out->reclaimed = out->mapped > out->resident ? out->mapped - out->resident : 0;
    out->reclaimed_total = ebbi_account_reclaimed_total();

    ebbi_os_counts_t os;
    ebbi_os_counts_get(&os);
    out->os_mmap = ebbi_load_relaxed(&os.mmap);
    out->os_munmap = ebbi_load_relaxed(&os.munmap);
    out->os_madvise = ebbi_load_relaxed(&os.madvise);
    out->os_mremap = ebbi_load_relaxed(&os.mremap);
    out->os_brk = ebbi_load_relaxed(&os.brk);
    out->os_mprotect = ebbi_load_relaxed(&os.mprotect);
    ebbi_guard_sample_counts(&out->guard_samples, &out->guard_samples_skipped, &out->guard_sample_ns);
    ebbi_reclaim_state_t rs;
    ebbi_reclaim_state(&rs);
    out->kept_predicted = rs.kept_spans + rs.kept_huge;
    if (out->kept_predicted > out->reclaimable)
        out->kept_predicted = out->reclaimable;
    out->refaulted = ebbi_account_refaulted_total();
    out->retain_bound = rs.bound < (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX) ? rs.bound
                                                                                : (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX);
    out->history_ms = rs.history_ms;
    out->memory_limit = rs.limit == UINT64_MAX ? 0 : rs.limit;
    out->memory_limit_room = rs.limit == UINT64_MAX ? 0 : rs.limit_room;
    out->limit_passes = rs.limit_passes;
    ebbi_heaps_sweep_counts(&out->heaps_swept, &out->heaps_swept_busy);
}

struct ebb_mallinfo2 ebb_mallinfo2(void)
{
    struct ebb_stats s;
    ebb_stats_get(&s);
    struct ebb_mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    /* glibc's fields, with ebbmalloc's meaning: arena = resident memory
     * outside huge blocks, uordblks = in use there, fordblks = freed, not
     * reclaimed; hblkhd = huge mappings; keepcost = what malloc_trim or the
     * reclaimer would give back now. */
    uint64_t huge_resident = ebbi_ownmap_resident_bytes();
    uint64_t segment_in_use = s.in_use - s.huge_in_use;
    mi.arena = s.resident > huge_resident ? s.resident - huge_resident : 0;
    mi.ordblks = s.segments;
    mi.hblks = s.huge_blocks;
    mi.hblkhd = ebbi_ownmap_mapped_bytes();
    mi.uordblks = segment_in_use;
    mi.fordblks = s.freed_retained;
    mi.keepcost = s.reclaimable;
    return mi;
}

void ebb_malloc_stats(void)
{
    struct ebb_stats s;
    ebb_stats_get(&s);
    char buf[4096];
    size_t n = ebbi_format(buf, sizeof buf,
                           "ebbmalloc statistics\n"
                           "system bytes     = %20lu\n"
                           "in use bytes     = %20lu\n",
                           (unsigned long)s.mapped, (unsigned long)s.in_use);
#define EBB_STATS_LINE_(name, doc)                                                                  \
    n += ebbi_format(buf + n, sizeof buf - n, "%-16s = %20lu  (%s)\n", #name, (unsigned long)s.name, doc);
    EBB_STATS_FIELDS(EBB_STATS_LINE_)
#undef EBB_STATS_LINE_
    ebbi_os_write_stderr(buf, n);
}

int ebb_malloc_info(int options, FILE *stream)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    struct ebb_stats s;
    ebb_stats_get(&s);
    char buf[4096];
    size_t n = ebbi_format(buf, sizeof buf, "<malloc version=\"ebbmalloc-%d.%d.%d\">\n",
                           EBBMALLOC_VERSION_MAJOR, EBBMALLOC_VERSION_MINOR, EBBMALLOC_VERSION_PATCH);
#define EBB_STATS_XML_(name, doc)                                                                   \
    n += ebbi_format(buf + n, sizeof buf - n, "<stat name=\"%s\" value=\"%lu\"/>\n", #name,      \
                     (unsigned long)s.name);
    EBB_STATS_FIELDS(EBB_STATS_XML_)
#undef EBB_STATS_XML_
    n += ebbi_format(buf + n, sizeof buf - n,
                     "<total type=\"mmap\" count=\"%lu\" size=\"%lu\"/>\n"
                     "<system type=\"current\" size=\"%lu\"/>\n"
                     "</malloc>\n",
                     (unsigned long)s.huge_blocks, (unsigned long)ebbi_ownmap_mapped_bytes(),
                     (unsigned long)s.mapped);
    /* The one stdio call of the allocator: the caller asked for a FILE. No
     * lock of ours is held, so an allocation by stdio is harmless. */
    return fwrite(buf, 1, n, stream) == n ? 0 : -1;
}

/* EBB_STATS=1: one line at exit, for people and for scripts.  Programs
 * often close stderr in an atexit handler (gnulib's close_stdout does),
 * which runs before library destructors: the line goes to a duplicate of
 * stderr taken at start (close-on-exec, so children do not inherit it). */
static int stats_fd = -1;

__attribute__((constructor(102))) static void stats_at_start(void)
{
    if (ebbi_option(EBB_OPTION_STATS))
        stats_fd = ebbi_os_dup_stderr();
}

__attribute__((destructor)) static void stats_at_exit(void)
{
    if (!ebbi_process_ready() || !ebbi_option(EBB_OPTION_STATS))
        return;
    struct ebb_stats s;
    ebb_stats_get(&s);
    char buf[2048];
    size_t n = ebbi_format(buf, sizeof buf, "ebbmalloc: exit:");
#define EBB_STATS_PAIR_(name, doc)                                                                  \
    n += ebbi_format(buf + n, sizeof buf - n, " %s=%lu", #name, (unsigned long)s.name);
    EBB_STATS_FIELDS(EBB_STATS_PAIR_)
#undef EBB_STATS_PAIR_
    n += ebbi_format(buf + n, sizeof buf - n, "\n");
    ebbi_os_write_fd(stats_fd >= 0 ? stats_fd : 2, buf, n);
}

/* glibc's mallopt parameters (malloc.h). */
#define GLIBC_M_MXFAST 1
#define GLIBC_M_TRIM_THRESHOLD (-1)
#define GLIBC_M_TOP_PAD (-2)
#define GLIBC_M_MMAP_THRESHOLD (-3)
#define GLIBC_M_MMAP_MAX (-4)
#define GLIBC_M_CHECK_ACTION (-5)
#define GLIBC_M_PERTURB (-6)
#define GLIBC_M_ARENA_TEST (-7)
#define GLIBC_M_ARENA_MAX (-8)

/* glibc's tunables, mapped onto ebbmalloc's where they mean the same:
 *   M_TRIM_THRESHOLD  free memory kept before it goes back: EBB_RETAIN_MAX;
 *   M_TOP_PAD         free memory kept when giving back: EBB_RETAIN_MIN;
 *   M_MMAP_THRESHOLD  requests this big get their own mapping (up to 2 MiB,
 *                     above which they always do): EBB_MMAP_THRESHOLD.
 * The others are accepted, as glibc accepts them, and change nothing. */
int ebb_mallopt(int param, int value)
{
    if (!ebbi_process_ready())
        ebbi_process_init();
    switch (param) {
    case GLIBC_M_MXFAST:
        /* glibc refuses values above its largest fastbin size. */
        return value >= 0 && value <= 160;
    case GLIBC_M_TRIM_THRESHOLD:
        if (value < 0)
            return 0;
        ebbi_option_set(EBB_OPTION_RETAIN_MAX, value);
        return 1;
    case GLIBC_M_TOP_PAD:
        if (value < 0)
            return 0;
        ebbi_option_set(EBB_OPTION_RETAIN_MIN, value);
        return 1;
    case GLIBC_M_MMAP_THRESHOLD:
        /* glibc refuses values above half its largest heap (32 MiB). */
        if (value < 0 || value > (32 << 20))
            return 0;
        ebbi_option_set(EBB_OPTION_MMAP_THRESHOLD, value > (int)EBB_PAGE_BLOCK_MAX ? 0 : value);
        return 1;
    case GLIBC_M_MMAP_MAX:
    case GLIBC_M_CHECK_ACTION:
    case GLIBC_M_PERTURB:
    case GLIBC_M_ARENA_TEST:
    case GLIBC_M_ARENA_MAX:
        /* Accepted as glibc accepts them; ebbmalloc sizes its own caches
         * and thresholds (see ebbmalloc(3)). */
        return 1;
    default:
        return 0;
    }
}

#if EBB_OVERRIDE
#include <malloc.h>

EBBI_EXPORT struct mallinfo2 mallinfo2(void)
{
    struct ebb_mallinfo2 e = ebb_mallinfo2();
    struct mallinfo2 m;
    _Static_assert(sizeof m == sizeof e, "struct mallinfo2 layout");
    memcpy(&m, &e, sizeof m);
    return m;
}

/* glibc's old interface: int fields, which wrap above 2 GiB (as glibc's do). */
EBBI_EXPORT struct mallinfo mallinfo(void)
{
    struct ebb_mallinfo2 e = ebb_mallinfo2();
    struct mallinfo m;
    m.arena = (int)e.arena;
    m.ordblks = (int)e.ordblks;
    m.smblks = (int)e.smblks;
    m.hblks = (int)e.hblks;
    m.hblkhd = (int)e.hblkhd;
    m.usmblks = (int)e.usmblks;
    m.fsmblks = (int)e.fsmblks;
    m.uordblks = (int)e.uordblks;
    m.fordblks = (int)e.fordblks;
    m.keepcost = (int)e.keepcost;
    return m;
}

#define EBB_ALIAS(target) __attribute__((alias(#target), visibility("default"), used))
void malloc_stats(void) EBB_ALIAS(ebb_malloc_stats);
int malloc_info(int options, FILE *stream) EBB_ALIAS(ebb_malloc_info);
int mallopt(int param, int value) EBB_ALIAS(ebb_mallopt);
#endif
