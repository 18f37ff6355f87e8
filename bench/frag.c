/*
 * frag.c — footprint under fragmentation: allocate many blocks, free most
 * of them at random, then allocate blocks of other sizes.  The figure that
 * matters is the peak resident set, not the time.
 *
 *   usage: frag [SCALE_MIB [SEED]]
 *
 * Five rounds, each with its own band of sizes:
 *     16..128 B, 128 B..1 KiB, 1..8 KiB, 8..64 KiB, 32..512 B
 * A round allocates blocks of its band (log-uniform within it) until
 * SCALE_MIB bytes have been requested, writing every byte of each block;
 * then it frees 90% of ALL live blocks — this round's and the survivors of
 * earlier rounds — in a random order, so 10% survive, scattered.
 *
 * The program never holds much more than SCALE_MIB * 1.11 bytes, but the
 * survivors are spread over all the pages the round used.  An allocator
 * that can only reuse a page for the size class it was cut for must find
 * fresh memory for the next band while the old pages stay resident, pinned
 * by a few survivors; one that gives whole empty pages back to the kernel,
 * or reuses them for other sizes, stays near the live size.
 *
 * Every block holds a header (tag, size) and is filled with a byte derived
 * from its tag; before it is freed the header and three bytes are checked
 * and folded into an order-dependent checksum.
 *
 * Output: frag scale_mib=M seed=S blocks=N ops=N checksum=0x...
 */
#include "bench.h"

#define HDR 12u

static const uint32_t band_lo[] = {16, 128, 1024, 8192, 32};
static const uint32_t band_hi[] = {128, 1024, 8192, 65536, 512};
#define ROUNDS (sizeof band_lo / sizeof band_lo[0])

static uint64_t rs, checksum = 0xcbf29ce484222325ull, ops;

static inline unsigned char fill_of(uint64_t tag)
{
    return (unsigned char)(tag ^ (tag >> 29) ^ (tag >> 53));
}

static unsigned char *make(uint32_t lo, uint32_t hi, uint32_t *size_out)
{
    /* log-uniform in [lo, hi) */
    uint64_t r = rng_next(&rs);
    unsigned lg_lo = 31u - (unsigned)__builtin_clz(lo);
    unsigned lg_hi = 31u - (unsigned)__builtin_clz(hi);
    unsigned lg = lg_lo + (unsigned)(r % (lg_hi - lg_lo));
    uint32_t size = (1u << lg) + (uint32_t)((r >> 8) & ((1u << lg) - 1));
    if (size < HDR + 1)
        size = HDR + 1;
    uint64_t tag = rng_next(&rs);
    unsigned char *p = xmalloc(size);
    ops++;
    memcpy(p, &tag, 8);
    memcpy(p + 8, &size, 4);
    memset(p + HDR, fill_of(tag), size - HDR);
    *size_out = size;
    return p;
}

static void drop(unsigned char *p)
{
    uint64_t tag;
    uint32_t size;
    memcpy(&tag, p, 8);
    memcpy(&size, p + 8, 4);
    unsigned char want = fill_of(tag);
    if (size <= HDR || size > 65536 || p[HDR] != want ||
        p[HDR + (size - HDR) / 2] != want || p[size - 1] != want)
        die("frag: CORRUPTION: block %p size %u", (void *)p, size);
    checksum = mix(checksum, tag ^ size);
    free(p);
    ops++;
}

int main(int argc, char **argv)
{
    uint64_t scale_mib = arg_u64(argc, argv, 1, 128);
    uint64_t seed = arg_u64(argc, argv, 2, 42);
    if (scale_mib < 1 || scale_mib > 4096)
        die("frag: SCALE_MIB must be 1..4096");
    rs = rng_seed(seed, 0);
    uint64_t scale = scale_mib << 20;

    unsigned char **live = NULL;
    size_t nlive = 0, cap = 0, made = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        for (uint64_t bytes = 0; bytes < scale;) {
            if (nlive == cap) {
                cap = cap ? cap * 2 : 65536;
                live = xrealloc(live, cap * sizeof *live);
            }
            uint32_t size;
            live[nlive++] = make(band_lo[round], band_hi[round], &size);
            bytes += size;
            made++;
        }
        /* free 90% of everything, in a random order */
        for (size_t i = nlive; i > 1; i--) {
            size_t k = (size_t)rng_below(&rs, i);
            unsigned char *t = live[i - 1];
            live[i - 1] = live[k];
            live[k] = t;
        }
        size_t keep = nlive / 10;
        for (size_t i = keep; i < nlive; i++)
            drop(live[i]);
        nlive = keep;
    }
    for (size_t i = 0; i < nlive; i++)
        drop(live[i]);
    free(live);

    printf("frag scale_mib=%" PRIu64 " seed=%" PRIu64 " blocks=%zu ops=%" PRIu64
           " checksum=0x%016" PRIx64 "\n", scale_mib, seed, made, ops, checksum);
    return 0;
}
