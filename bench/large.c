/*
 * large.c — large blocks: buffers grown by realloc to hundreds of MiB, and
 * a loop that allocates and frees blocks of 64 KiB..8 MiB.
 *
 *   usage: large [MAX_MIB [ITERATIONS [SEED]]]
 *
 * Phase 1, realloc growth (like a string builder, a vector, a file read
 * into memory), three times, each time with a small and a 100 KiB block
 * allocated between two reallocs and kept (so the buffer is not always
 * the last thing allocated):
 *   - doubling from 4 KiB to MAX_MIB;
 *   - growing by half each time, from 4 KiB to MAX_MIB;
 *   - growing by a fixed 4 MiB step, to MAX_MIB / 2.
 * After each realloc the new part of the buffer is written (one word in
 * every 4 KiB page, so each page is touched), and the words of the old part
 * are checked in a sample of pages: realloc must have kept them.  At the
 * end of each growth every page's word is read back into the checksum.
 * The peak is MAX_MIB plus what the allocator holds while copying (up to
 * 1.5 * MAX_MIB when realloc cannot grow in place).
 *
 * Phase 2, large alloc/free loop: a window of 8 live blocks; each of
 * ITERATIONS steps frees a random one (after reading back a word from each
 * of its pages) and allocates a new one of 64 KiB..8 MiB (log-uniform),
 * writing a word into each of its pages.  An allocator that gives every
 * freed block back to the kernel pays a page fault for each page again;
 * one that keeps freed memory forever shows it in the peak RSS.
 *
 * Output: large max_mib=M iterations=N seed=S ops=N checksum=0x...
 */
#include "bench.h"

#define PAGE 4096u
#define WINDOW 8u

static uint64_t checksum = 0xcbf29ce484222325ull;
static uint64_t ops;

static inline uint64_t page_word(uint64_t tag, uint64_t page)
{
    return hash64(tag + page * 0x9E3779B97F4A7C15ull);
}

/* Write the word of every page in [from, to) bytes. */
static void fill_pages(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    for (size_t off = (from + PAGE - 1) / PAGE * PAGE; off + 8 <= to; off += PAGE) {
        uint64_t v = page_word(tag, off / PAGE);
        memcpy(p + off, &v, 8);
    }
}

/* Check (and fold into the checksum when `fold`) the words of pages in
 * [from, to), every `stride`-th page. */
static void check_pages(const unsigned char *p, size_t from, size_t to, uint64_t tag,
                        size_t stride, int fold, const char *what)
{
    for (size_t off = (from + PAGE - 1) / PAGE * PAGE; off + 8 <= to; off += PAGE * stride) {
        uint64_t v;
        memcpy(&v, p + off, 8);
        if (v != page_word(tag, off / PAGE))
            die("large: CORRUPTION in %s: page %zu of block %p", what, off / PAGE, (void *)p);
        if (fold)
            checksum = mix(checksum, v);
    }
}

/* Grow one buffer from 4 KiB to `max` bytes; next size from `grow`. */
static void grow(size_t max, int kind, uint64_t tag)
{
    void *keep[64];
    unsigned nkeep = 0;
    size_t size = PAGE;
    unsigned char *p = xmalloc(size);
    ops++;
    fill_pages(p, 0, size, tag);
    for (;;) {
        size_t next = kind == 0 ? size * 2
                    : kind == 1 ? size + size / 2
                    : size + ((size_t)4 << 20);
        if (next > max)
            break;
        if (nkeep < 64) { /* something allocated after the buffer */
            keep[nkeep] = xmalloc(nkeep % 2 ? (size_t)100 << 10 : 64);
            memset(keep[nkeep], (int)nkeep, 64);
            nkeep++;
            ops++;
        }
        p = xrealloc(p, next);
        ops++;
        check_pages(p, 0, size, tag, 61, 0, "realloc");
        fill_pages(p, size, next, tag);
        size = next;
    }
    check_pages(p, 0, size, tag, 1, 1, "grown buffer");
    checksum = mix(checksum, size);
    free(p);
    ops++;
    for (unsigned i = 0; i < nkeep; i++) {
        free(keep[i]);
        ops++;
    }
}

int main(int argc, char **argv)
{
    uint64_t max_mib = arg_u64(argc, argv, 1, 256);
    uint64_t iterations = arg_u64(argc, argv, 2, 2000);
    uint64_t seed = arg_u64(argc, argv, 3, 42);
    if (max_mib < 8 || max_mib > 1024)
        die("large: MAX_MIB must be 8..1024");
    uint64_t rs = rng_seed(seed, 0);

    size_t max = (size_t)max_mib << 20;
    grow(max, 0, rng_next(&rs));
    grow(max, 1, rng_next(&rs));
    grow(max / 2, 2, rng_next(&rs));

    struct { unsigned char *p; size_t size; uint64_t tag; } win[WINDOW] = {{0}};
    for (uint64_t i = 0; i < iterations + WINDOW; i++) {
        unsigned w = i < WINDOW ? (unsigned)i : (unsigned)rng_below(&rs, WINDOW);
        if (win[w].p != NULL) {
            check_pages(win[w].p, 0, win[w].size, win[w].tag, 1, 1, "large block");
            free(win[w].p);
            ops++;
            win[w].p = NULL;
        }
        if (i >= iterations)
            continue; /* the last WINDOW steps only free */
        /* log-uniform in [64 KiB, 8 MiB] */
        uint64_t r = rng_next(&rs);
        unsigned b = 16 + (unsigned)(r % 7);
        size_t size = ((size_t)1 << b) + (size_t)((r >> 8) & (((size_t)1 << b) - 1));
        win[w].size = size;
        win[w].tag = rng_next(&rs);
        win[w].p = xmalloc(size);
        ops++;
        fill_pages(win[w].p, 0, size, win[w].tag);
    }

    printf("large max_mib=%" PRIu64 " iterations=%" PRIu64 " seed=%" PRIu64
           " ops=%" PRIu64 " checksum=0x%016" PRIx64 "\n",
           max_mib, iterations, seed, ops, checksum);
    return 0;
}
