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
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint8_t ebbi_safety;
uintptr_t ebbi_link_secret;
static uintptr_t canary_secret;
static uint64_t sample_key; /* seeds the heaps' sampling (its own: samples can be seen) */

static _Atomic(uint64_t) guard_mapped, guard_resident;

uint64_t ebbi_guard_mapped_bytes(void)
{
    return ebbi_load_relaxed(&guard_mapped);
}

uint64_t ebbi_guard_resident_bytes(void)
{
    return ebbi_load_relaxed(&guard_resident);
}

static void fault_handler(int sig, void *info, void *context);

/* EBB_GUARD_QUARANTINE's default under EBB_GUARD_SAMPLE: about 14 blocks
 * of one page (then up to GUARD_SPARE_MAX more, still inaccessible, as
 * spares), as many as GWP-ASan's 16 slots.  Every block in it was mapped
 * for itself (about 60 µs here against 20 for a spare): a short run's
 * budget went on filling a larger one. */
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
    sample_key = ebbi_os_random_word();
    /* Its top byte zero, as are a user address's and a block size's: the
     * canary word's last byte is zero, and stops a string that runs off
     * the block. */
    canary_secret = (ebbi_os_random_word() * 0x9e3779b97f4a7c15u) >> 8;
    if (mode & SAFETY_SECURE)
        ebbi_option_set(EBB_OPTION_BRK, 0); /* segments apart, with guard pages */
    if (mode & (SAFETY_SECURE | SAFETY_GUARD_ALL | SAFETY_GUARD_SAMPLE))
        ebbi_os_install_fault_handler(fault_handler);
    /* Sampled blocks are few and far between: a short quarantine (the
     * spares behind it stay inaccessible too) keeps their cost down. */
    if ((mode & SAFETY_GUARD_SAMPLE) && getenv("EBB_GUARD_QUARANTINE") == NULL)
        ebbi_option_set(EBB_OPTION_GUARD_QUARANTINE, GUARD_SAMPLE_QUARANTINE);
    ebbi_safety = mode;
}

/* ---- secure mode: canaries ------------------------------------------------- */

static EBBI_COLD void report_sized(const char *what, size_t size, const char *tail, const void *addr)
{
    char buf[160];
    ebbi_format(buf, sizeof buf, "%s a %zu-byte block%s", what, size, tail);
    ebbi_fatal(buf, addr);
}

/* The block's last word holds its requested size, encoded; the bytes
 * between the request and that word hold a pattern. */
#define SLACK_BYTE 0xab

void ebbi_canary_set(page_t *page, block_t *block, size_t size)
{
    uint8_t *b = (uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    memset(b + size, SLACK_BYTE, tail - size);
    uintptr_t word = canary_secret ^ (uintptr_t)block ^ size;
    memcpy(b + tail, &word, sizeof word);
}

size_t ebbi_canary_check(const page_t *page, const block_t *block)
{
    const uint8_t *b = (const uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    uintptr_t word;
    memcpy(&word, b + tail, sizeof word);
    size_t size = word ^ canary_secret ^ (uintptr_t)block;
    if (size > tail)
        report_sized("heap overflow past", tail, " (its canary is broken)", block);
    for (size_t i = size; i < tail; i++)
        if (b[i] != SLACK_BYTE)
            report_sized("heap overflow past", size, "", block);
    return size;
}

/* Secure mode zeroes a freed block past its link and key words, so that
 * reading it after the free shows nothing, and a write after the free,
 * anywhere in it, is seen when the block is handed out again
 * (ebbi_secure_check_fresh).  Zero-on-free does the same, unchecked. */
void ebbi_safety_on_free(page_t *page, block_t *block)
{
    if (ebbi_safety & SAFETY_SECURE)
        ebbi_canary_check(page, block);
    memset((uint8_t *)block + sizeof(block_t), 0, page->block_size - sizeof(block_t));
}

/* Secure mode: a block about to be handed out is as its free left it:
 * zero past its link, its key word the page's or zero (carved fresh). */
void ebbi_secure_check_fresh(const page_t *page, const block_t *block)
{
    const uint64_t *w = (const uint64_t *)(const void *)block;
    size_t words = page->block_size / sizeof *w;
    uint64_t seen = w[1] == ebbi_free_key(page) ? 0 : w[1];
    for (size_t i = 2; i < words; i++)
        seen |= w[i];
    if (seen != 0)
        report_sized("write after free of", page->block_size - SECURE_TAIL, "", block);
}

void ebbi_safety_link_corrupted(const void *where)
{
    ebbi_fatal("corrupted free list", where);
}


/* ---- guarded blocks ----------------------------------------------------------- */

/* A guarded block is a huge segment: its header page at the segment start,
 * its pages from 64 KiB on, beside a PROT_NONE guard page:
 *   after:  [header] ... [data pages: .. block][guard]   (overflows fault)
 *   before: [header] ... [guard][block .. data pages]    (underflows fault)
 * The page entry in slices[1] describes it (kind SLICE_GUARDED, block_size =
 * the size asked for), so free() finds it as it finds any huge block. */
typedef struct {
    uintptr_t data;   /* first data page */
    size_t data_size;
    uintptr_t guard;  /* the guard page */
} guard_layout_t;

static guard_layout_t layout_of(const segment_t *seg)
{
    size_t ps = ebbi_process.page_size;
    guard_layout_t l;
    bool before = ebbi_option(EBB_OPTION_GUARD) == 2;
    l.data_size = seg->map_size - EBB_SLICE_SIZE - ps;
    if (before) {
        l.guard = (uintptr_t)seg + EBB_SLICE_SIZE;
        l.data = l.guard + ps;
    } else {
        l.data = (uintptr_t)seg + EBB_SLICE_SIZE;
        l.guard = l.data + l.data_size;
    }
    return l;
}

/* EBB_GUARD_SAMPLE's budget.  A sample costs two mprotect calls and a
 * fault on its page's first write, and the close at free cannot wait (a
 * use right after the free would go unseen): 13 µs on this VM, 32 µs when
 * another thread of the program runs on another CPU and the kernel must
 * interrupt it to flush its TLB (bench/protcost.c).  A program that
 * allocates every 26 ns would spend half its time on 1-in-1000 samples.
 * So the time the sampled path takes (measured around it: its system calls
 * and what they wait for; summed in guard_sample_ns) is bounded to
 * EBB_GUARD_SAMPLE_BUDGET percent of the time that passes, for the whole
 * process: a token bucket, filled as time passes (holding 100 ms of fill at
 * most, full at the start), drawn on by each guarded allocation and free.
 * A sample that falls due while the bucket is empty is left out, and
 * counted.  A program whose samples take less than the budget keeps every
 * one; the others are sampled less (bench/results/modes.md: sqlite 1 in
 * 4,013, churn 1 in 89,682 on this VM). */
static struct {
    _Atomic(int64_t) credit_ns; /* within [-cap, cap]: below zero after a costly sample */
    _Atomic(uint64_t) filled_at_ns;
    _Atomic(uint64_t) taken, skipped, spent_ns;
} budget;

void ebbi_guard_sample_counts(uint64_t *taken, uint64_t *skipped, uint64_t *spent_ns)
{
    *taken = ebbi_load_relaxed(&budget.taken);
    *skipped = ebbi_load_relaxed(&budget.skipped);
    *spent_ns = ebbi_load_relaxed(&budget.spent_ns);
}

/* Adds `delta` to the credit, kept within [-cap, cap]: a full bucket
 * takes no more, and one slow sample stops sampling for 100 ms at most. */
static int64_t budget_add(int64_t delta, int64_t cap)
{
    int64_t old = ebbi_load_relaxed(&budget.credit_ns), credit;
    do {
        credit = old + delta;
        credit = credit > cap ? cap : credit < -cap ? -cap : credit;
    } while (!atomic_compare_exchange_weak_explicit(&budget.credit_ns, &old, credit, memory_order_relaxed,
                                                    memory_order_relaxed));
    return credit;
}

static int64_t budget_cap(void)
{
    return ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET) * 1000000; /* 100 ms at that rate */
}

static bool budget_allows(void)
{
    int64_t percent = ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET);
    if (percent == 0)
        return true;
    int64_t cap = budget_cap();
    uint64_t now = ebbi_os_precise_ns();
    uint64_t then = atomic_exchange(&budget.filled_at_ns, now);
    uint64_t elapsed = now > then ? now - then : 0;
    int64_t fill = then == 0 || elapsed >= 100000000u ? cap : (int64_t)elapsed * percent / 100;
    return budget_add(fill, cap) > 0;
}

/* Time the sampled path has taken since `start` (0: not measured). */
static void budget_charge(uint64_t start)
{
    if (start == 0)
        return;
    uint64_t spent = ebbi_os_precise_ns() - start;
    ebbi_fetch_add_relaxed(&budget.spent_ns, spent);
    if (ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET))
        budget_add(-(int64_t)spent, budget_cap());
}

/* Measured with or without a budget (guard_sample_ns tells what it costs). */
static uint64_t budget_start(void)
{
    return (ebbi_safety & SAFETY_GUARD_SAMPLE) ? ebbi_os_precise_ns() : 0;
}

/* Freed guarded blocks wait in the quarantine (oldest first out).  Those of
 * one data page that leave it are kept, still inaccessible, for the next
 * guarded block of that size (`spare`), up to GUARD_SPARE_MAX: a guarded
 * allocation then costs one mprotect instead of a map, a protect and, one
 * day, an unmap.  With EBB_GUARD_SAMPLE such a block's page is not
 * decommitted at its free either (inaccessible is enough; zeroed when it
 * serves again), and it is a mapping of its own (closing and opening it
 * split and merge no mappings): a sample costs two mprotect calls. */
#define GUARD_SPARE_MAX 256

static struct {
    pthread_mutex_t lock;
    segment_t *oldest, *newest;
    size_t bytes;
    _Atomic(segment_t *) spare; /* changed under the lock; peeked at without */
    unsigned spare_count;
} quarantine = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void guard_unmap(segment_t *seg);

static size_t small_guard_map_size(void)
{
    return EBB_SLICE_SIZE + 2 * ebbi_process.page_size;
}

static void mark_regions(segment_t *seg, uint8_t below_start)
{
    /* Regions past the first point back to it (up to 254 of them), so that
     * the fault handler finds the block from any of its pages. */
    uintptr_t end = (uintptr_t)seg + seg->map_size;
    unsigned k = 1;
    for (uintptr_t r = (uintptr_t)seg + EBB_SEGMENT_SIZE; r < end && k < SEGMAP_MAX_BELOW; r += EBB_SEGMENT_SIZE, k++)
        ebbi_segmap_set(r, below_start ? (uint8_t)(k + 1) : SEGMAP_NONE);
    ebbi_segmap_set((uintptr_t)seg, below_start ? SEGMAP_SEGMENT : SEGMAP_NONE);
}

/* A new guarded segment of `map_size` bytes, its guard page closed, its
 * data pages open (zero, counted as resident), holding no block yet (free()
 * calls a pointer into it invalid). */
static segment_t *guard_map(size_t map_size)
{
    size_t ps = ebbi_process.page_size;
    segment_t *seg = ebbi_os_map_aligned(map_size, EBB_SEGMENT_SIZE, 0);
    if (seg == NULL)
        return NULL;
    seg->map_size = map_size;
    seg->kind = SEGMENT_HUGE;
    seg->source = SOURCE_MMAP;
    seg->slices[1].kind = SLICE_GUARD_FREED;
    guard_layout_t l = layout_of(seg);
    ebbi_os_protect((void *)l.guard, ps, false);
    if ((ebbi_safety & SAFETY_GUARD_SAMPLE) && map_size == small_guard_map_size())
        ebbi_os_isolate((void *)l.data, l.data_size); /* it will be closed and opened again */
    mark_regions(seg, 1);
    ebbi_fetch_add_relaxed(&guard_mapped, map_size);
    ebbi_fetch_add_relaxed(&guard_resident, ps + l.data_size);
    return seg;
}

/* A spare's data page opened again and zero. */
static bool spare_open(segment_t *seg)
{
    guard_layout_t l = layout_of(seg);
    if (!ebbi_os_protect((void *)l.data, l.data_size, true))
        return false;
    if (seg->slices[1].free_is_zero)
        ebbi_fetch_add_relaxed(&guard_resident, l.data_size); /* faulted in as used */
    else
        memset((void *)l.data, 0, l.data_size); /* kept resident since its free */
    seg->slices[1].free_is_zero = false;
    return true;
}

/* A spare guarded segment of map size `map_size`, its data page open and
 * zero, or NULL. */
static segment_t *spare_take(size_t map_size)
{
    if (map_size != small_guard_map_size() || ebbi_load_relaxed(&quarantine.spare) == NULL)
        return NULL;
    pthread_mutex_lock(&quarantine.lock);
    segment_t *seg = ebbi_load_relaxed(&quarantine.spare);
    if (seg != NULL) {
        ebbi_store_relaxed(&quarantine.spare, seg->next);
        quarantine.spare_count--;
    }
    pthread_mutex_unlock(&quarantine.lock);
    if (seg == NULL)
        return NULL;
    if (!spare_open(seg)) {
        guard_unmap(seg);
        return NULL;
    }
    seg->free_site = 0;
    return seg;
}

void *ebbi_guard_alloc(heap_t *heap, size_t size, size_t align, const void *site)
{
    size_t ps = ebbi_process.page_size;
    if (align < EBB_ALIGNMENT)
        align = EBB_ALIGNMENT;
    if (align > EBB_SLICE_SIZE || size > (size_t)PTRDIFF_MAX / 2)
        return NULL; /* the caller takes the unguarded path */
    size_t rounded = size == 0 ? EBB_ALIGNMENT : (size + EBB_ALIGNMENT - 1) & ~(size_t)(EBB_ALIGNMENT - 1);
    size_t room = rounded + (align > EBB_ALIGNMENT ? align : 0);
    size_t data_size = (room + ps - 1) & ~(ps - 1);
    size_t map_size = EBB_SLICE_SIZE + data_size + ps;
    uint64_t start = budget_start();
    segment_t *seg = spare_take(map_size);
    if (seg == NULL)
        seg = guard_map(map_size);
    budget_charge(start);
    if (seg == NULL)
        return NULL;
    seg->alloc_site = (uintptr_t)site;
    guard_layout_t l = layout_of(seg);
    uintptr_t block;
    if (l.guard > l.data)
        block = (l.data + l.data_size - rounded) & ~(uintptr_t)(align - 1); /* against the guard */
    else
        block = (l.data + align - 1) & ~(uintptr_t)(align - 1); /* right after it, unless aligned beyond a page */
    page_t *page = &seg->slices[1];
    page->start = block;
    page->block_size = (uint32_t)(size < UINT32_MAX ? size : UINT32_MAX);
    page->divisor_magic = 1;
    page->capacity = 1;
    page->used = 1;
    page->kind = SLICE_GUARDED;
    ebbi_store_relaxed(&page->owner, NULL);
    ebbi_store_relaxed(&page->carved, 1);
    unsigned slice = (unsigned)((block - (uintptr_t)seg) >> EBB_SLICE_SHIFT);
    if (slice > 1)
        seg->slices[slice].slice_back = (uint8_t)(slice - 1);
    ebbi_counter_add(&heap->huge_allocs, 1);
    ebbi_counter_add(&heap->huge_bytes_alloc, rounded);
    return (void *)block;
}

size_t ebbi_guard_usable_size(const page_t *page)
{
    size_t size = page->block_size;
    return size == 0 ? EBB_ALIGNMENT : (size + EBB_ALIGNMENT - 1) & ~(size_t)(EBB_ALIGNMENT - 1);
}

static void guard_unmap(segment_t *seg)
{
    size_t size = seg->map_size;
    /* The header page, and the data pages if they were kept resident. */
    size_t resident = ebbi_process.page_size;
    if (seg->slices[1].kind == SLICE_GUARD_FREED && !seg->slices[1].free_is_zero)
        resident += layout_of(seg).data_size;
    mark_regions(seg, 0);
    ebbi_os_unmap(seg, size);
    ebbi_fetch_sub_relaxed(&guard_mapped, size);
    ebbi_fetch_sub_relaxed(&guard_resident, resident);
}

void ebbi_guard_free(heap_t *heap, segment_t *seg, page_t *page, const void *site)
{
    size_t rounded = ebbi_guard_usable_size(page);
    if (heap != &ebbi_heap_empty) {
        ebbi_counter_add(&heap->huge_frees, 1);
        ebbi_counter_add(&heap->huge_bytes_freed, rounded);
    } else {
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_frees, 1);
        ebbi_fetch_add_relaxed(&ebbi_orphan_huge_bytes, rounded);
    }
    /* No longer a block (free() refuses it: "double free"), and its pages
     * inaccessible and given back at once. */
    uint64_t start = budget_start();
    seg->free_site = (uintptr_t)site;
    ebbi_store_relaxed(&page->carved, 0);
    page->kind = SLICE_GUARD_FREED;
    guard_layout_t l = layout_of(seg);
    ebbi_os_protect((void *)l.data, l.data_size, false);
    bool keep = (ebbi_safety & SAFETY_GUARD_SAMPLE) && seg->map_size == small_guard_map_size();
    page->free_is_zero = !keep && ebbi_os_decommit((void *)l.data, l.data_size);
    if (page->free_is_zero) {
        ebbi_fetch_sub_relaxed(&guard_resident, l.data_size);
        ebbi_account_reclaimed(l.data_size);
    }

    /* Quarantine: the oldest leave once it holds more than its bound. */
    size_t bound = (size_t)ebbi_option(EBB_OPTION_GUARD_QUARANTINE);
    segment_t *out = NULL;
    pthread_mutex_lock(&quarantine.lock);
    seg->next = NULL;
    if (quarantine.newest != NULL)
        quarantine.newest->next = seg;
    else
        quarantine.oldest = seg;
    quarantine.newest = seg;
    quarantine.bytes += seg->map_size;
    /* The block just freed stays, whatever its size. */
    while (quarantine.bytes > bound && quarantine.oldest != seg) {
        segment_t *old = quarantine.oldest;
        quarantine.oldest = old->next;
        if (quarantine.oldest == NULL)
            quarantine.newest = NULL;
        quarantine.bytes -= old->map_size;
        if (old->map_size == small_guard_map_size() && quarantine.spare_count < GUARD_SPARE_MAX) {
            old->next = ebbi_load_relaxed(&quarantine.spare);
            ebbi_store_relaxed(&quarantine.spare, old);
            quarantine.spare_count++;
        } else {
            old->next = out;
            out = old;
        }
    }
    pthread_mutex_unlock(&quarantine.lock);
    while (out != NULL) {
        segment_t *next = out->next;
        guard_unmap(out);
        out = next;
    }
    budget_charge(start);
}

static _Atomic(uint64_t) sample_seeds;

/* EBB_GUARD_SAMPLE=N: is this allocation (of class `class_id`, or huge with
 * EBB_CLASS_COUNT) one of the sampled?  Allocations since the last look are
 * read from the heap's own counters, so the fast path pays nothing: the
 * sample is drawn on the slow path, one in N on average, within the
 * budget. */
bool ebbi_guard_sample(heap_t *heap, unsigned class_id)
{
    if (heap->sample_suspended)
        return false;
    int64_t done = 1;
    if (class_id < EBB_CLASS_COUNT) {
        uint64_t now = ebbi_load_relaxed(&heap->counts[class_id].allocs);
        done += (int64_t)(now - heap->sample_seen[class_id]);
        heap->sample_seen[class_id] = now + 1;
    }
    heap->sample_countdown -= done;
    bool first = heap->rng == 0;
    if (first) {
        /* This heap's first look: seeded without a system call (a thread
         * may live for a few allocations), and a countdown drawn before any
         * sample, or the first allocation of every thread would be one. */
        uint64_t z = sample_key + (ebbi_fetch_add_relaxed(&sample_seeds, 1) + 1) * 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        heap->rng = (z ^ (z >> 31)) | 1;
    } else if (heap->sample_countdown > 0) {
        return false;
    }
    uint64_t n = (uint64_t)ebbi_option(EBB_OPTION_GUARD_SAMPLE);
    if (n > (UINT64_C(1) << 61))
        n = UINT64_C(1) << 61; /* the countdown stays positive */
    uint64_t x = heap->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    heap->rng = x;
    heap->sample_countdown = (int64_t)(1 + x % (2 * n)); /* mean n */
    if (first)
        return false;
    if (!budget_allows()) {
        ebbi_fetch_add_relaxed(&budget.skipped, 1);
        return false;
    }
    ebbi_fetch_add_relaxed(&budget.taken, 1);
    return true;
}

/* ---- the fault handler --------------------------------------------------------- */

static const char *site_name(uintptr_t site, char *buf, size_t cap)
{
    Dl_info info;
    if (site == 0)
        return "an unknown place";
    if (dladdr((void *)site, &info) != 0 && info.dli_fname != NULL) {
        const char *file = info.dli_fname;
        for (const char *c = file; *c != '\0'; c++)
            if (*c == '/')
                file = c + 1;
        if (info.dli_sname != NULL)
            ebbi_format(buf, cap, "%s (%s+0x%lx)", info.dli_sname, file,
                        (unsigned long)(site - (uintptr_t)info.dli_fbase));
        else
            ebbi_format(buf, cap, "%s+0x%lx", file, (unsigned long)(site - (uintptr_t)info.dli_fbase));
    } else {
        ebbi_format(buf, cap, "%p", (void *)site);
    }
    return buf;
}

/* The segment whose 4 MiB regions cover addr, by the segment map. */
static segment_t *segment_covering(uintptr_t addr)
{
    unsigned v = ebbi_segmap_get(addr);
    if (v == SEGMAP_SEGMENT)
        return ebbi_segment_of((void *)addr);
    if (v >= SEGMAP_HUGE_BELOW)
        return (segment_t *)((uintptr_t)ebbi_segment_of((void *)addr) - (uintptr_t)(v - 1) * EBB_SEGMENT_SIZE);
    return NULL;
}

static void fault_handler(int sig, void *info_arg, void *context)
{
    siginfo_t *info = info_arg;
    uintptr_t addr = (uintptr_t)info->si_addr;
    size_t ps = ebbi_process.page_size;
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
    guard_layout_t l = layout_of(seg);
    size_t size = page->block_size;
    char what[256], alloc_at[160], free_at[160];
    const char *kind;
    if (beyond)
        kind = "heap overflow past";
    else if (addr >= l.guard && addr < l.guard + ebbi_process.page_size)
        kind = l.guard > l.data ? "heap overflow past" : "heap underflow before";
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

/* fork: the quarantine's lists must be whole in the child. */
void ebbi_safety_fork_prepare(void)
{
    pthread_mutex_lock(&quarantine.lock);
}

void ebbi_safety_fork_parent(void)
{
    pthread_mutex_unlock(&quarantine.lock);
}

void ebbi_safety_fork_child(void)
{
    pthread_mutex_init(&quarantine.lock, NULL);
    /* The child draws other samples than the parent: heaps made from here
     * on, and this thread's, which both processes go on using. */
    if (ebbi_safety & SAFETY_GUARD_SAMPLE) {
        sample_key = ebbi_os_random_word();
        heap_t *heap = ebbi_thread_heap();
        if (heap != &ebbi_heap_empty && heap->rng != 0)
            heap->rng = (heap->rng ^ sample_key) | 1;
    }
}
