/* The sampling heap profiler (EBB_PROFILE=1): which code holds the memory.
 *
 * Sampling.  One sample per EBB_PROFILE_RATE bytes allocated, on average,
 * drawn as a Poisson process over the bytes (exponential gaps), so that a
 * sample's weight (the rate, times the draws that fell on it) gives an
 * unbiased estimate of the bytes allocated where it was taken.  The fast
 * paths pay nothing, on or off: a heap's per-class allocation counters say
 * how many bytes each class handed out since the profiler last looked, and
 * it looks on the slow path (a page's free list ran dry, a huge block), so
 * the gap is drawn there and the block being handed out is the sample.  A
 * class's slow paths come about as often as its bytes do, so a gap ends in
 * a class with the odds of its share of the bytes, and within a class at a
 * random one of its allocations.
 *
 * The sample's free.  A sampled block of a page of small blocks (up to
 * EBBI_SAMPLE_MAP_MAX) is moved to a mapping of its own (SLICE_SAMPLED,
 * made by ownmap.c, the block at 64 KiB, its pages after it), the block
 * the page gave taken back: its free then takes the huge blocks' path, and
 * no other free pays anything.  A bigger block stays in its page, which
 * is marked PAGE_SAMPLES: the owner's frees of that page, and every other
 * thread's free of a block that big, look it up in the live samples (a
 * lookup is little beside the use of 16 KiB; moving it cost a mapping's
 * pages, and huge blocks of those sizes crumbled the huge cache).
 * Freed, the mapping waits for a next sample that it fits, with the
 * spares of its size (up to SPARES_MAX in all), else it is unmapped: an
 * unmap in a threaded program stops every CPU it ran on.  It is zeroed
 * then only in the modes that clear freed memory; a calloc that draws a
 * sample clears its own bytes (clearing every freed sample's pages was
 * a fifth of the profiler's instructions on a busy workload).
 * Huge and guarded blocks are freed on that path already, and stay where
 * they are.  A live sample costs a kernel page or two of memory, under 2%
 * of the live heap at the default rate.
 *
 * A sample records the call stack (up to EBB_PROFILE_FRAMES return
 * addresses, from the C runtime's unwinder, loaded at start only when
 * profiling is on), the size asked for, its weight, the thread, and the
 * times of its allocation and free.  All of it lives in mappings of its
 * own, never in malloc's blocks; a thread that is inside the profiler (the
 * unwinder, or a signal handler that allocates while this thread holds
 * the lock) is not sampled again, and a free there leaves its record
 * alone.  ebb_profile_dump writes it all out, with the process's mappings,
 * for the ebb command to symbolize; EBB_PROFILE_OUT=FILE writes it at exit.
 */
#define _GNU_SOURCE /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP */
#include <stdlib.h>
#include <string.h>

#include "ebbmalloc.h"
#include "internal.h"

#define EBB_PROFILE_FRAMES 64
#define MAX_SAMPLES (1u << 20)   /* then new samples are counted, not kept */
#define MAX_STACKS (1u << 16)
#define LIVE_SLOTS (1u << 17)    /* the live samples' index at most: a power of two, four times MAX_LIVE */
#define MAX_LIVE (LIVE_SLOTS / 4)
/* The hash tables start this small and double: their slots are touched
 * at random, so a table sized for the most would keep megabytes resident
 * in a small program. */
#define TABLE_SLOTS_MIN 1024u
#define NO_TIME UINT64_MAX
#define SPARES_MAX 512
/* Spares are kept by their data pages: a sample mapping has at most
 * EBBI_SAMPLE_MAP_MAX and a page of room for its colour. */
#define SPARE_PAGES_MAX 8

typedef struct {
    uintptr_t addr;
    uint64_t size;        /* asked for */
    uint64_t weight;      /* bytes of allocations it stands for */
    uint64_t alloc_ns, free_ns;
    uint32_t stack;
    uint32_t thread;
    uint32_t class_size;  /* the block size of the class it was drawn from; 0: a huge block */
    uint32_t in_page;     /* a block over EBBI_SAMPLE_MAP_MAX left in its page */
} sample_t;

typedef struct {
    uint64_t hash;
    uint32_t frames;
    uint32_t first; /* index into stack_frames */
} stack_t_;

bool ebbi_profiling;

static struct {
    pthread_mutex_t lock;
    uint64_t rate;
    sample_t *samples;
    uint32_t count;
    uint64_t dropped;
    stack_t_ *stacks;
    uint32_t stack_count;
    uintptr_t *frames;     /* MAX_STACKS * EBB_PROFILE_FRAMES */
    uint32_t frame_count;
    uint32_t *stack_index; /* open addressing by hash: stack + 1, 0 empty */
    uint32_t stack_slots;  /* a power of two, at least twice stack_count, at most 2 * MAX_STACKS */
    /* Live samples by address (open addressing; LIVE_GONE marks a slot
     * freed, its chain kept whole). */
    uintptr_t *live_addr;
    uint32_t *live_sample;
    uint32_t live_slots;   /* a power of two, at most LIVE_SLOTS */
    uint32_t live_count, live_gone;
    segment_t *spares[SPARE_PAGES_MAX + 1]; /* freed sample mappings by data pages, newest first */
    unsigned spare_count;
    unsigned colour;       /* the next sample mapping's cache colour */
    char out[256];         /* EBB_PROFILE_OUT */
} prof = {.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP};

static __thread bool in_profiler;
/* Live samples left in their pages (PAGE_SAMPLES): while none is, the
 * frees of big blocks skip the profiler. */
static _Atomic(uint64_t) in_page_live;

/* The thread's id, asked of the kernel once per thread (and again in a
 * forked child: fork_count moves). */
static uint32_t fork_count;
static __thread uint32_t tid, tid_fork;

static uint32_t thread_id(void)
{
    if (tid == 0 || tid_fork != fork_count) {
        tid = ebbi_os_thread_id();
        tid_fork = fork_count;
    }
    return tid;
}

/* ---- start -------------------------------------------------------------------- */

static size_t table_bytes(size_t bytes)
{
    return (bytes + ebbi_process.page_size - 1) & ~(ebbi_process.page_size - 1);
}

static void *map_table(size_t bytes)
{
    return ebbi_os_map(table_bytes(bytes), NULL);
}

static void unmap_table(void *table, size_t bytes)
{
    ebbi_os_unmap(table, table_bytes(bytes));
}

/* From the library's constructor (a safe place to load the unwinder). */
void ebbi_profile_init(void)
{
    if (!ebbi_option(EBB_OPTION_PROFILE))
        return;
    prof.rate = (uint64_t)ebbi_option(EBB_OPTION_PROFILE_RATE);
    prof.samples = map_table((size_t)MAX_SAMPLES * sizeof(sample_t));
    prof.stacks = map_table((size_t)MAX_STACKS * sizeof(stack_t_));
    prof.frames = map_table((size_t)MAX_STACKS * EBB_PROFILE_FRAMES * sizeof(uintptr_t));
    prof.stack_slots = TABLE_SLOTS_MIN;
    prof.stack_index = map_table(prof.stack_slots * sizeof(uint32_t));
    prof.live_slots = TABLE_SLOTS_MIN;
    prof.live_addr = map_table(prof.live_slots * sizeof(uintptr_t));
    prof.live_sample = map_table(prof.live_slots * sizeof(uint32_t));
    if (prof.samples == NULL || prof.stacks == NULL || prof.frames == NULL || prof.stack_index == NULL ||
        prof.live_addr == NULL || prof.live_sample == NULL) {
        ebbi_message("ebbmalloc: warning: EBB_PROFILE: no memory for the profile; profiling is off\n");
        return;
    }
    if (!ebbi_unwind_load())
        ebbi_message("ebbmalloc: warning: EBB_PROFILE: no unwinder (libgcc_s); samples have no stacks\n");
    const char *out = getenv("EBB_PROFILE_OUT");
    if (out != NULL && strlen(out) < sizeof prof.out)
        memcpy(prof.out, out, strlen(out) + 1);
    ebbi_remote_free_work |= REMOTE_FREE_PROFILE;
    ebbi_profiling = true; /* before the program's threads: read plainly */
}

/* ---- sampling ------------------------------------------------------------------- */

/* ln(x) for x in (0, 1], without libm: x = m 2^e, and ln(m) by the series
 * of atanh((m-1)/(m+1)) (error below 1e-6: enough for a draw). */
static double log_unit(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1023) << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double t = (m - 1) / (m + 1), t2 = t * t;
    double ln_m = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
    return ln_m + e * 0.6931471805599453;
}

/* The next gap, in bytes: exponential, of mean the rate. */
static int64_t draw_gap(heap_t *heap)
{
    if (heap->profile_rng == 0)
        heap->profile_rng = (ebbi_os_random_word() | 1) ^ (uintptr_t)heap;
    uint64_t x = ebbi_xorshift(&heap->profile_rng);
    double u = ((double)(x >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double gap = -log_unit(u) * (double)prof.rate;
    return gap < 1 ? 1 : gap > 0x1p62 ? (int64_t)1 << 62 : (int64_t)gap;
}

static uint64_t hash_frames(const uintptr_t *f, unsigned n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
    }
    return h;
}

/* Under the lock: the stack index doubled, its stacks put back (false if
 * there is no memory for it: the old one stays). */
static bool stack_index_grow(void)
{
    uint32_t slots = 2 * prof.stack_slots;
    uint32_t *index = map_table(slots * sizeof(uint32_t));
    if (index == NULL)
        return false;
    for (uint32_t s = 0; s < prof.stack_count; s++) {
        uint32_t i = (uint32_t)prof.stacks[s].hash & (slots - 1);
        while (index[i] != 0)
            i = (i + 1) & (slots - 1);
        index[i] = s + 1;
    }
    unmap_table(prof.stack_index, prof.stack_slots * sizeof(uint32_t));
    prof.stack_index = index;
    prof.stack_slots = slots;
    return true;
}

/* Under the lock: the stack's index, kept once; UINT32_MAX when full. */
static uint32_t stack_intern(const uintptr_t *f, unsigned n)
{
    uint64_t h = hash_frames(f, n);
    if (2 * (prof.stack_count + 1) > prof.stack_slots && prof.stack_slots < 2 * MAX_STACKS)
        stack_index_grow();
    uint32_t mask = prof.stack_slots - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = prof.stack_index[i];
        if (s == 0) {
            if (prof.stack_count == MAX_STACKS || 2 * (prof.stack_count + 1) > prof.stack_slots)
                return UINT32_MAX;
            uint32_t id = prof.stack_count++;
            prof.stacks[id] = (stack_t_){.hash = h, .frames = n, .first = prof.frame_count};
            memcpy(&prof.frames[prof.frame_count], f, n * sizeof *f);
            prof.frame_count += n;
            prof.stack_index[i] = id + 1;
            return id;
        }
        const stack_t_ *st = &prof.stacks[s - 1];
        if (st->hash == h && st->frames == n && memcmp(&prof.frames[st->first], f, n * sizeof *f) == 0)
            return s - 1;
    }
}

static uint32_t live_slot(uintptr_t addr, uint32_t slots)
{
    uint64_t h = addr * 0x9e3779b97f4a7c15u;
    return (uint32_t)(h >> 40) & (slots - 1);
}

#define LIVE_GONE ((uintptr_t)1)

/* Under the lock: the live index made anew, with room for the live
 * samples and as many more (the slots freed are gone; the old table goes
 * back, its pages too).  False if there is no memory for it. */
static bool live_rebuild(void)
{
    uint32_t slots = TABLE_SLOTS_MIN;
    while (slots < 4 * (prof.live_count + 1) && slots < LIVE_SLOTS)
        slots *= 2;
    uintptr_t *addr = map_table(slots * sizeof(uintptr_t));
    uint32_t *sample = map_table(slots * sizeof(uint32_t));
    if (addr == NULL || sample == NULL) {
        if (addr != NULL)
            unmap_table(addr, slots * sizeof(uintptr_t));
        if (sample != NULL)
            unmap_table(sample, slots * sizeof(uint32_t));
        return false;
    }
    for (uint32_t k = 0; k < prof.live_slots; k++) {
        if (prof.live_addr[k] <= LIVE_GONE)
            continue;
        uint32_t i = live_slot(prof.live_addr[k], slots);
        while (addr[i] != 0)
            i = (i + 1) & (slots - 1);
        addr[i] = prof.live_addr[k];
        sample[i] = prof.live_sample[k];
    }
    unmap_table(prof.live_addr, prof.live_slots * sizeof(uintptr_t));
    unmap_table(prof.live_sample, prof.live_slots * sizeof(uint32_t));
    prof.live_addr = addr;
    prof.live_sample = sample;
    prof.live_slots = slots;
    prof.live_gone = 0;
    return true;
}

/* Under the lock (so are the two below).  False if the index is full. */
static bool live_insert(uintptr_t addr, uint32_t id)
{
    if (2 * (prof.live_count + prof.live_gone + 1) > prof.live_slots && !live_rebuild() &&
        2 * (prof.live_count + prof.live_gone + 1) > prof.live_slots)
        return false;
    uint32_t i = live_slot(addr, prof.live_slots);
    while (prof.live_addr[i] > LIVE_GONE)
        i = (i + 1) & (prof.live_slots - 1);
    prof.live_gone -= prof.live_addr[i] == LIVE_GONE;
    prof.live_sample[i] = id;
    prof.live_addr[i] = addr;
    prof.live_count++;
    return true;
}

static uint32_t live_find(uintptr_t addr)
{
    uint32_t i = live_slot(addr, prof.live_slots);
    for (uint32_t probes = 0; probes < prof.live_slots && prof.live_addr[i] != 0;
         probes++, i = (i + 1) & (prof.live_slots - 1))
        if (prof.live_addr[i] == addr)
            return i;
    return UINT32_MAX;
}

static void live_remove(uint32_t i)
{
    prof.live_addr[i] = LIVE_GONE;
    prof.live_count--;
    prof.live_gone++;
}

/* ---- the samples' own mappings ------------------------------------------------------- */

size_t ebbi_profile_usable_size(const segment_t *seg, const page_t *page)
{
    return (uintptr_t)seg + seg->map_size - page->start;
}

static size_t data_bytes(size_t size)
{
    size_t ps = ebbi_process.page_size;
    return size == 0 ? ps : (size + ps - 1) & ~(ps - 1);
}

/* A mapping for a block of `size` bytes, in slice 1 at a cache colour of
 * its own (mappings are 4 MiB-aligned: at one offset, every sample would
 * fall in the same cache sets), keeping the alignment the page gave the
 * block.  Its usable bytes in *usable.  Zero where `zero` asks: a spare
 * holds the last sample's bytes but in the modes that clear freed memory
 * (the block's requested bytes are all calloc needs). */
static void *sample_map(heap_t *heap, size_t size, size_t align, bool zero, size_t *usable)
{
    size_t ps = ebbi_process.page_size, step = align > 64 ? align : 64;
    size_t need = data_bytes(size);
    segment_t *seg = NULL;
    pthread_mutex_lock(&prof.lock);
    /* A spare whose pages hold it, not twice as many as it needs. */
    for (size_t k = need / ps; k <= 2 * (need / ps) && k <= SPARE_PAGES_MAX; k++)
        if (prof.spares[k] != NULL) {
            seg = prof.spares[k];
            prof.spares[k] = seg->next;
            prof.spare_count--;
            break;
        }
    /* A new one has a page of room for the colour. */
    size_t pages = seg != NULL ? seg->map_size - EBB_SLICE_SIZE : data_bytes(size + (step < ps ? ps - step : 0));
    size_t colours = (pages - size) / step + 1;
    if (colours > ps / step)
        colours = ps / step > 0 ? ps / step : 1;
    size_t colour = (size_t)(prof.colour++ % colours) * step;
    pthread_mutex_unlock(&prof.lock);
    if (seg == NULL) {
        /* Untouched: slice 0 past the header page. */
        seg = ebbi_ownmap_map(EBB_SLICE_SIZE + pages, EBB_SLICE_SIZE, NULL, 0, EBB_SLICE_SIZE - ps);
        if (seg == NULL)
            return NULL;
    }
    page_t *page = &seg->slices[1];
    /* A fresh mapping is zero; a spare, as its last free left it. */
    bool is_zero = page->kind != SLICE_SAMPLED_FREED || page->free_is_zero;
    page->start = (uintptr_t)seg + EBB_SLICE_SIZE + colour;
    *usable = ebbi_profile_usable_size(seg, page);
    page->block_size = (uint32_t)(size < UINT32_MAX ? size : UINT32_MAX);
    page->divisor_magic = 1;
    page->capacity = 1;
    page->used = 1;
    page->kind = SLICE_SAMPLED;
    ebbi_store_relaxed(&page->owner, NULL);
    ebbi_store_relaxed(&page->carved, 1);
    ebbi_ownmap_mark(seg, EBBI_MARK_BLOCK_REGIONS);
    ebbi_counter_add(&heap->huge_allocs, 1);
    ebbi_counter_add(&heap->huge_bytes_alloc, *usable);
    if (zero && !is_zero)
        memset((void *)page->start, 0, size);
    return (void *)page->start;
}

void ebbi_profile_sampled_free(heap_t *heap, segment_t *seg, page_t *page)
{
    size_t data = ebbi_profile_usable_size(seg, page);
    if (heap != &ebbi_heap_empty) {
        ebbi_counter_add(&heap->huge_frees, 1);
        ebbi_counter_add(&heap->huge_bytes_freed, data);
    } else {
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_frees, 1);
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_bytes, data);
    }
    ebbi_profile_free((void *)page->start);
    /* No longer a block: free() calls another free of it a double free. */
    ebbi_store_relaxed(&page->carved, 0);
    page->kind = SLICE_SAMPLED_FREED;
    bool kept = false;
    size_t pages = seg->map_size - EBB_SLICE_SIZE, k = pages / ebbi_process.page_size;
    if (k <= SPARE_PAGES_MAX) {
        /* Where freed memory must not keep its bytes, as every freed block
         * of the mode; else the next sample clears what calloc needs. */
        page->free_is_zero = (ebbi_safety & (SAFETY_ZERO | SAFETY_SECURE)) != 0;
        if (page->free_is_zero)
            memset((uint8_t *)seg + EBB_SLICE_SIZE, 0, pages);
        pthread_mutex_lock(&prof.lock);
        if (prof.spare_count < SPARES_MAX) {
            seg->next = prof.spares[k];
            prof.spares[k] = seg;
            prof.spare_count++;
            kept = true;
        }
        pthread_mutex_unlock(&prof.lock);
    }
    if (!kept)
        ebbi_ownmap_unmap(seg, EBB_SLICE_SIZE - ebbi_process.page_size);
}

/* ---- samples -------------------------------------------------------------------- */

static void take_sample(void *p, size_t size, uint64_t weight, uint32_t class_size, bool in_page)
{
    uintptr_t frames[EBB_PROFILE_FRAMES];
    in_profiler = true;
    unsigned n = ebbi_unwind_backtrace(frames, EBB_PROFILE_FRAMES);
    uint64_t now = ebbi_os_precise_ns();
    uint32_t thread = thread_id();
    pthread_mutex_lock(&prof.lock);
    uint32_t stack = stack_intern(frames, n);
    if (stack == UINT32_MAX || prof.count == MAX_SAMPLES || prof.live_count == MAX_LIVE) {
        prof.dropped++;
    } else {
        uint32_t id = prof.count;
        prof.samples[id] = (sample_t){.addr = (uintptr_t)p, .size = size, .weight = weight, .alloc_ns = now,
                                      .free_ns = NO_TIME, .stack = stack, .thread = thread,
                                      .class_size = class_size, .in_page = in_page};
        if (live_insert((uintptr_t)p, id)) {
            prof.count++;
            if (in_page) /* before p reaches the program */
                ebbi_fetch_add_relaxed(&in_page_live, 1);
        } else
            prof.dropped++; /* its free could not be found */
    }
    pthread_mutex_unlock(&prof.lock);
    in_profiler = false;
}

/* The malloc slow path handed out p (size bytes asked for): the bytes of
 * its class since the last look counted down, and p sampled if a gap ends
 * among them. */
void *ebbi_profile_alloc(void *p, size_t size, bool zero)
{
    heap_t *heap = ebbi_thread_heap();
    if (heap == &ebbi_heap_empty || in_profiler || size == 0)
        return p; /* a zero-byte block holds no memory */
    /* The class the block came from: the size's in the default mode (a
     * page's block below EBB_PAGE_BLOCK_MAX, or an own mapping), else its
     * page's (a safety mode may have chosen a bigger one). */
    page_t *page = NULL;
    unsigned c = EBB_CLASS_COUNT;
    if (ebbi_safety == 0 && ebbi_option(EBB_OPTION_MMAP_THRESHOLD) == 0) {
        if (size <= EBB_PAGE_BLOCK_MAX)
            c = ebbi_size_class(size);
    } else {
        segment_t *seg = ebbi_segment_lookup((uintptr_t)p, &page);
        if (seg != NULL && page->kind == SLICE_PAGE)
            c = page->class_id;
    }
    uint64_t now = c < EBB_CLASS_COUNT ? ebbi_load_relaxed(&heap->counts[c].allocs) * ebbi_classes[c].block_size
                                       : ebbi_load_relaxed(&heap->huge_bytes_alloc);
    if (heap->profile_countdown == 0)
        heap->profile_countdown = draw_gap(heap); /* a heap's first look */
    heap->profile_countdown -= (int64_t)(now - heap->profile_seen[c]);
    heap->profile_seen[c] = now;
    if (heap->profile_countdown > 0)
        return p;
    uint64_t draws = 0;
    bool in_page = false;
    while (heap->profile_countdown <= 0) {
        heap->profile_countdown += draw_gap(heap);
        draws++;
    }
    /* The gaps run over block bytes; the estimate is of bytes asked for
     * (a class's blocks are a little bigger than most requests). */
    uint64_t weight = draws * prof.rate;
    if (c < EBB_CLASS_COUNT && size < ebbi_classes[c].block_size)
        weight = (uint64_t)((double)weight * (double)size / (double)ebbi_classes[c].block_size);
    if (c < EBB_CLASS_COUNT && page == NULL)
        (void)ebbi_segment_lookup((uintptr_t)p, &page);
    if (c < EBB_CLASS_COUNT && page != NULL && page->kind == SLICE_PAGE) {
        if (ebbi_load_relaxed(&page->owner) != heap)
            return p; /* not this heap's page after all: left unsampled */
        if (page->block_size > EBBI_SAMPLE_MAP_MAX) {
            /* A big block stays: its page sends every free of its own to
             * the profiler from now on, and other threads' frees of its
             * class always go there (REMOTE_FREE_PROFILE), while any such
             * sample is live. */
            page->free_flags |= PAGE_SAMPLES;
            in_page = true;
        } else {
            /* A small one moves to a sample mapping (zero where a calloc
             * wants it), and the block goes back to its page. */
            size_t usable;
            /* p's alignment, which an aligned request may count on. */
            size_t align = (uintptr_t)p & (~(uintptr_t)p + 1);
            void *q = sample_map(heap, size, align < EBB_SLICE_SIZE ? align : EBB_SLICE_SIZE, zero, &usable);
            if (q == NULL)
                return p;
            heap->profile_seen[EBB_CLASS_COUNT] += usable; /* not a huge allocation */
            ebbi_heap_take_back(heap, page, p);
            heap->profile_seen[c] -= ebbi_classes[c].block_size; /* its allocation uncounted */
            p = q;
        }
    }
    take_sample(p, size, weight, c < EBB_CLASS_COUNT ? ebbi_classes[c].block_size : 0, in_page);
    return p;
}

/* A huge, guarded or sampled block is freed: if it is a live sample, the
 * free is recorded. */
/* A realloc that moves a block allocates the new one before it frees the
 * old: the old one's free is dated when the realloc began, so that the
 * two never count as live together (as heaptrack counts a realloc). */
static __thread struct {
    uintptr_t addr;
    uint64_t at_ns;
} realloc_from;

void ebbi_profile_realloc_begin(void *old)
{
    realloc_from.addr = (uintptr_t)old;
    realloc_from.at_ns = old != NULL ? ebbi_os_precise_ns() : 0;
}

void ebbi_profile_free(void *p)
{
    if (in_profiler)
        return;
    uint64_t now = ebbi_os_precise_ns();
    if ((uintptr_t)p == realloc_from.addr && p != NULL)
        now = realloc_from.at_ns;
    in_profiler = true;
    pthread_mutex_lock(&prof.lock);
    uint32_t i = live_find((uintptr_t)p);
    if (i != UINT32_MAX) {
        sample_t *sm = &prof.samples[prof.live_sample[i]];
        sm->free_ns = now;
        if (sm->in_page)
            ebbi_fetch_add_relaxed(&in_page_live, UINT64_MAX); /* minus one */
        live_remove(i);
    }
    pthread_mutex_unlock(&prof.lock);
    in_profiler = false;
}

void ebbi_profile_free_in_page(void *p)
{
    /* Most frees of big blocks, when no sample was left in a page: no
     * lock, no clock.  A live one was counted before its block reached the
     * program, so before any free of it. */
    if (ebbi_load_relaxed(&in_page_live) != 0)
        ebbi_profile_free(p);
}

/* A huge block `old` was reallocated to `p` (`size` bytes; the heap's
 * huge-byte counter grew by `growth`).  As heaptrack and jemalloc count
 * it: a free of the old block and an allocation of the new one, at the
 * realloc's site.  (Keeping the old sample, moved, left the growth's
 * bytes to the next allocation's draw: counted twice, the second time at
 * another site.) */
void *ebbi_profile_realloced(void *old, void *p, size_t size, uint64_t growth)
{
    heap_t *heap = ebbi_thread_heap();
    if (in_profiler || heap == &ebbi_heap_empty)
        return p;
    ebbi_profile_free(old);
    /* The draw counts the whole block, not its growth alone. */
    heap->profile_seen[EBB_CLASS_COUNT] -= size > growth ? size - growth : 0;
    return ebbi_profile_alloc(p, size, false);
}

/* ---- the dump ----------------------------------------------------------------- */

/* The text format (one record a line, fields split by spaces):
 *   ebbmalloc-profile 1
 *   rate BYTES, samples N, dropped N, now NS  (one a line)
 *   stack ID ADDR ADDR ...            (return addresses in hex, innermost first)
 *   sample STACK SIZE WEIGHT THREAD ALLOC_NS FREE_NS CLASS   (FREE_NS - while
 *                                      live; CLASS: the block size of its
 *                                      size class, 0 for a huge block)
 *   class BLOCK_SIZE LIVE RESIDENT    (a size class: bytes of its live blocks,
 *                                      and resident bytes of its pages that
 *                                      hold live blocks; the difference is
 *                                      freed memory they keep resident)
 *   map LINE                          (an executable line of /proc/self/maps)
 */
typedef struct {
    int fd;
    char *buf;
    size_t n, cap;
} out_t;

static void out_text(out_t *o, const char *s, size_t len)
{
    if (o->cap - o->n < len) {
        ebbi_os_write_fd(o->fd, o->buf, o->n);
        o->n = 0;
    }
    if (len > o->cap) {
        ebbi_os_write_fd(o->fd, s, len);
        return;
    }
    memcpy(o->buf + o->n, s, len);
    o->n += len;
}

#define OUT(o, ...)                                                                                \
    do {                                                                                           \
        char line_[160];                                                                           \
        size_t len_ = ebbi_format(line_, sizeof line_, __VA_ARGS__);                               \
        out_text((o), line_, len_);                                                                \
    } while (0)

#define DUMP_BUFFER ((size_t)1 << 20)

int ebb_profile_dump(const char *path)
{
    if (!ebbi_profiling) {
        errno = ENOTSUP;
        return -1;
    }
    if (path == NULL) {
        errno = EINVAL;
        return -1;
    }
    int fd = ebbi_os_create_file(path);
    if (fd < 0)
        return -1;
    out_t o = {.fd = fd, .buf = ebbi_os_map(DUMP_BUFFER, NULL), .cap = DUMP_BUFFER};
    if (o.buf == NULL) {
        ebbi_os_close(fd);
        errno = ENOMEM;
        return -1;
    }
    in_profiler = true;
    pthread_mutex_lock(&prof.lock);
    OUT(&o, "ebbmalloc-profile 1\nrate %lu\nsamples %u\n", (unsigned long)prof.rate, prof.count);
    OUT(&o, "dropped %lu\nnow %lu\n", (unsigned long)prof.dropped, (unsigned long)ebbi_os_precise_ns());
    for (uint32_t s = 0; s < prof.stack_count; s++) {
        const stack_t_ *st = &prof.stacks[s];
        OUT(&o, "stack %u", s);
        for (uint32_t f = 0; f < st->frames; f++)
            OUT(&o, " %lx", (unsigned long)prof.frames[st->first + f]);
        out_text(&o, "\n", 1);
    }
    for (uint32_t i = 0; i < prof.count; i++) {
        const sample_t *sm = &prof.samples[i];
        OUT(&o, "sample %u %lu %lu %u %lu ", sm->stack, (unsigned long)sm->size, (unsigned long)sm->weight,
            sm->thread, (unsigned long)sm->alloc_ns);
        if (sm->free_ns == NO_TIME)
            out_text(&o, "-", 1);
        else
            OUT(&o, "%lu", (unsigned long)sm->free_ns);
        OUT(&o, " %u\n", sm->class_size);
    }
    pthread_mutex_unlock(&prof.lock);
    in_profiler = false;
    uint64_t allocs[EBB_CLASS_COUNT], frees[EBB_CLASS_COUNT], resident[EBB_CLASS_COUNT];
    ebbi_stats_class_counts(allocs, frees);
    ebbi_arenas_class_resident(resident);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        uint64_t live = allocs[c] > frees[c] ? allocs[c] - frees[c] : 0;
        if (resident[c] > 0)
            OUT(&o, "class %u %lu %lu\n", ebbi_classes[c].block_size,
                (unsigned long)(live * ebbi_classes[c].block_size), (unsigned long)resident[c]);
    }
    ebbi_os_write_fd(fd, o.buf, o.n);
    /* The executable mappings of files, for the symbols: /proc/self/maps
     * read a buffer at a time (secure mode's guard pages make it long),
     * a line cut by the buffer's end carried to the next read. */
    int maps = ebbi_os_open_read("/proc/self/maps");
    size_t have = 0;
    for (;;) {
        size_t got = maps >= 0 ? ebbi_os_read_some(maps, o.buf + have, o.cap - have) : 0;
        have += got;
        size_t at = 0;
        for (;;) {
            char *nl = memchr(o.buf + at, '\n', have - at);
            if (nl == NULL)
                break;
            size_t end = (size_t)(nl - o.buf);
            /* START-END PERMS ...: "r-xp" */
            size_t sp = at;
            while (sp < end && o.buf[sp] != ' ')
                sp++;
            bool exec = sp + 3 < end && o.buf[sp + 3] == 'x';
            if (exec && memchr(o.buf + at, '/', end - at) != NULL) {
                ebbi_os_write_fd(fd, "map ", 4);
                ebbi_os_write_fd(fd, o.buf + at, end - at + 1);
            }
            at = end + 1;
        }
        memmove(o.buf, o.buf + at, have - at);
        have -= at;
        if (got == 0 || have == o.cap)
            break;
    }
    if (maps >= 0)
        ebbi_os_close(maps);
    ebbi_os_unmap(o.buf, o.cap);
    ebbi_os_close(fd);
    return 0;
}

/* EBB_PROFILE_OUT=FILE at exit; "%p" in FILE stands for the process id
 * (children inherit the setting, and each writes its own). */
__attribute__((destructor)) static void profile_at_exit(void)
{
    if (!ebbi_profiling || prof.out[0] == '\0')
        return;
    char path[sizeof prof.out + 16];
    size_t n = 0;
    for (const char *c = prof.out; *c != '\0' && n + 12 < sizeof path; c++) {
        if (c[0] == '%' && c[1] == 'p') {
            n += ebbi_format(path + n, sizeof path - n, "%d", ebbi_os_pid());
            c++;
        } else {
            path[n++] = *c;
        }
    }
    path[n] = '\0';
    if (ebb_profile_dump(path) != 0)
        ebbi_message("ebbmalloc: warning: EBB_PROFILE_OUT: cannot write %s\n", path);
}

/* fork: the tables whole in the child, which goes on sampling. */
void ebbi_profile_fork_prepare(void)
{
    pthread_mutex_lock(&prof.lock);
}

void ebbi_profile_fork_parent(void)
{
    pthread_mutex_unlock(&prof.lock);
}

void ebbi_profile_fork_child(void)
{
    prof.lock = (pthread_mutex_t)PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
    fork_count++;
}
