/*
 * bench.h — small helpers shared by the benchmark programs in bench/:
 * a seeded PRNG, hashing, a checksum accumulator, and allocation wrappers
 * that exit loudly on failure.  Header-only (every function is static), so
 * each program in bench/ stays a single file.
 *
 * Every program prints "checksum=0x..." computed from memory it read back.
 * The checksum depends only on the program's arguments, never on addresses
 * or thread timing, so bench/run.sh can compare it across allocators.
 */
#ifndef EBB_BENCH_H
#define EBB_BENCH_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_UNUSED __attribute__((unused))

/* splitmix64: turns (seed, stream) into a well-mixed, never-zero state. */
static BENCH_UNUSED uint64_t rng_seed(uint64_t seed, uint64_t stream)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + stream * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 1;
}

/* xorshift64*: fast, deterministic, good enough for picking sizes. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) (n > 0; the bias is irrelevant here). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

/* murmur3's finalizer: a 64-bit mix. */
static inline uint64_t hash64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* An order-dependent checksum for single-threaded programs. */
static inline uint64_t mix(uint64_t acc, uint64_t v)
{
    acc ^= v;
    acc *= 0x100000001b3ull;
    acc ^= acc >> 29;
    return acc;
}

static BENCH_UNUSED __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(3);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "bench: malloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "bench: realloc(%zu) failed\n", n);
        exit(2);
    }
    return q;
}

static inline void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count, n);
    if (p == NULL) {
        fprintf(stderr, "bench: calloc(%zu, %zu) failed\n", count, n);
        exit(2);
    }
    return p;
}

/* Argument i as an unsigned number, or def when absent. */
static BENCH_UNUSED uint64_t arg_u64(int argc, char **argv, int i, uint64_t def)
{
    if (argc <= i)
        return def;
    char *end;
    uint64_t v = strtoull(argv[i], &end, 0);
    if (*argv[i] == '\0' || *end != '\0')
        die("bad numeric argument '%s'", argv[i]);
    return v;
}

#endif
