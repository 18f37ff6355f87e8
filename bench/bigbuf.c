/*
 * bigbuf.c — big buffers replaced at random, zero-filled (after
 * mimalloc-bench's malloc-large): ALIVE buffers of MIN..MAX MiB; each of
 * ITERATIONS steps allocates a new buffer of a random size, fills it with
 * zeros (as C++'s make_unique<char[]> does), checks and frees the buffer
 * it replaces.  An allocator that gives the freed buffer's pages back to
 * the kernel faults them in again at the next fill; one that keeps every
 * freed buffer shows it in the peak RSS.
 *
 *   usage: bigbuf [ITERATIONS [ALIVE [MIN_MIB [MAX_MIB [SEED]]]]]
 *
 * Output: bigbuf iterations=N alive=A min_mib=.. max_mib=.. seed=S checksum=0x...
 */
#include "bench.h"

/* Zero, but not known to the compiler: malloc followed by a memset with a
 * known zero would be turned into calloc, which C++'s new[] followed by
 * value-initialisation (what malloc-large does) is not. */
static volatile int zero_byte = 0;

int main(int argc, char **argv)
{
    uint64_t iterations = arg_u64(argc, argv, 1, 2000);
    uint64_t alive = arg_u64(argc, argv, 2, 20);
    uint64_t min_mib = arg_u64(argc, argv, 3, 5);
    uint64_t max_mib = arg_u64(argc, argv, 4, 25);
    uint64_t seed = arg_u64(argc, argv, 5, 42);
    if (alive == 0 || alive > 1024 || min_mib == 0 || max_mib < min_mib)
        die("bigbuf: bad arguments");
    uint64_t rng = rng_seed(seed, 0);
    unsigned char **buf = xcalloc(alive, sizeof *buf);
    size_t *size = xcalloc(alive, sizeof *size);
    uint64_t checksum = 0xcbf29ce484222325ull;
    size_t lo = (size_t)min_mib << 20, span = (size_t)(max_mib - min_mib) << 20;
    for (uint64_t i = 0; i < iterations; i++) {
        size_t k = (size_t)rng_below(&rng, alive);
        size_t n = lo + (size_t)rng_below(&rng, span + 1);
        unsigned char *p = xmalloc(n);
        memset(p, zero_byte, n);
        /* A word in the buffer's first and last page: its owner's mark. */
        uint64_t tag = hash64(i + seed);
        memcpy(p, &tag, 8);
        memcpy(p + n - 8, &tag, 8);
        if (buf[k] != NULL) {
            uint64_t a, b;
            memcpy(&a, buf[k], 8);
            memcpy(&b, buf[k] + size[k] - 8, 8);
            if (a != b || buf[k][size[k] / 2] != 0)
                die("bigbuf: CORRUPTION in buffer %zu", k);
            checksum = mix(checksum, a ^ size[k]);
            free(buf[k]);
        }
        buf[k] = p;
        size[k] = n;
    }
    for (size_t k = 0; k < alive; k++)
        free(buf[k]);
    free(buf);
    free(size);
    printf("bigbuf iterations=%" PRIu64 " alive=%" PRIu64 " min_mib=%" PRIu64 " max_mib=%" PRIu64 " seed=%" PRIu64
           " checksum=0x%016" PRIx64 "\n",
           iterations, alive, min_mib, max_mib, seed, checksum);
    return 0;
}
