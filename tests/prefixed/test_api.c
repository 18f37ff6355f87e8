/* test: api              fast
 * test: api-debug        fast debug
 * test: api-secure       long EBB_SECURE=1
 * test: api-zero         long EBB_ZERO_ON_FREE=1
 * test: api-sample       long EBB_GUARD_SAMPLE=100
 * test: api-guard        long EBB_GUARD=1
 * test: api-guard-before long EBB_GUARD=before
 * test: api-profile      long EBB_PROFILE=1 EBB_PROFILE_RATE=4096
 * test: test_api         sanitize
 * test: test_api         valgrind */
/* API semantics, edge by edge, through the prefixed API (the C names are
 * aliases of the same functions: test_override checks that).  Built
 * against the library and, for make test-sanitize, with UBSan and TSan. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

/* Impossible sizes are passed on purpose. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(seed + i * 7);
}

static int verify(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != 0)
            return 0;
    return 1;
}

/* A mode's variable set, and not to 0. */
static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "0") != 0;
}

static void test_malloc_zero(void)
{
    void *a = ebb_malloc(0), *b = ebb_malloc(0), *c = ebb_malloc(0);
    CHECK(a != NULL && b != NULL && c != NULL, "malloc(0) must not return NULL");
    CHECK(a != b && b != c && a != c, "malloc(0) results must be distinct");
    /* In secure mode the usable size is the size asked for, here none
     * (a byte written is reported at the free). */
    if (env_on("EBB_SECURE"))
        CHECK(ebb_malloc_usable_size(a) == 0, "secure mode: malloc(0) has no usable byte");
    else
        CHECK(ebb_malloc_usable_size(a) >= 1, "malloc(0) block is usable");
    ebb_free(a);
    ebb_free(b);
    ebb_free(c);
    ebb_free(NULL);
    CHECK(ebb_malloc_usable_size(NULL) == 0);
}

/* Every size from 1 to 64 KiB: aligned, usable >= size, all of it
 * writable without touching a neighbour. */
static void test_alignment_and_usable(void)
{
    int misaligned = 0, short_usable = 0, clobbered = 0;
    for (size_t n = 1; n <= 65536; n++) {
        unsigned char *a = ebb_malloc(n);
        unsigned char *b = ebb_malloc(n);
        if (a == NULL || b == NULL) {
            misaligned++;
            break;
        }
        if (((uintptr_t)a & 15) || ((uintptr_t)b & 15))
            misaligned++;
        size_t ua = ebb_malloc_usable_size(a), ub = ebb_malloc_usable_size(b);
        if (ua < n || ub < n)
            short_usable++;
        if (n < 4096 || n % 61 == 0) {
            fill(b, ub, 3);
            memset(a, 0xA5, ua);
            if (!verify(b, ub, 3))
                clobbered++;
        }
        ebb_free(a);
        ebb_free(b);
    }
    CHECK(misaligned == 0, "%d sizes misaligned", misaligned);
    CHECK(short_usable == 0, "%d sizes with usable < request", short_usable);
    CHECK(clobbered == 0, "%d sizes where writing the usable size hit a neighbour", clobbered);

    /* Larger sizes, into huge blocks. */
    int bad = 0;
    for (size_t n = 65536; n <= (64u << 20); n = n * 3 / 2 + 4093) {
        unsigned char *p = ebb_malloc(n);
        if (p == NULL || ((uintptr_t)p & 15) || ebb_malloc_usable_size(p) < n) {
            bad++;
            ebb_free(p);
            continue;
        }
        size_t u = ebb_malloc_usable_size(p);
        p[0] = 1;
        p[n - 1] = 2;
        p[u - 1] = 3;
        ebb_free(p);
    }
    CHECK(bad == 0, "%d large sizes bad", bad);
}

static void test_calloc(void)
{
    /* Dirty memory first, then calloc must hand back zeros.  Eight blocks
     * of the huge sizes are enough to reuse the huge-block cache; 64 of
     * 40 MiB dirtied 2.5 GiB, most of this test's time. */
    size_t sizes[] = {1, 16, 24, 100, 1000, 4096, 5000, 70000, 300000, 3u << 20, 40u << 20};
    int nonzero = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        void *blocks[64];
        int n = sizes[s] >= (1u << 20) ? 8 : 64;
        for (int i = 0; i < n; i++) {
            blocks[i] = ebb_malloc(sizes[s]);
            memset(blocks[i], 0xCD, ebb_malloc_usable_size(blocks[i]));
        }
        for (int i = 0; i < n; i++)
            ebb_free(blocks[i]);
        for (int i = 0; i < n; i++) {
            blocks[i] = ebb_calloc(1, sizes[s]);
            if (blocks[i] == NULL || !all_zero(blocks[i], sizes[s]))
                nonzero++;
        }
        for (int i = 0; i < n; i++)
            ebb_free(blocks[i]);
    }
    CHECK(nonzero == 0, "%d calloc blocks not zero after reuse", nonzero);

    /* Fresh memory too (the allocator may skip the memset there). */
    void *fresh = ebb_calloc(1000, 1000);
    CHECK(fresh != NULL && all_zero(fresh, 1000000));
    ebb_free(fresh);

    errno = 0;
    CHECK(ebb_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow");
    errno = 0;
    CHECK(ebb_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM, "calloc overflow");
    void *z = ebb_calloc(0, 10);
    CHECK(z != NULL, "calloc(0, n) returns a unique pointer");
    ebb_free(z);
}

static void test_impossible_sizes(void)
{
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
                      (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        CHECK(ebb_malloc(sizes[i]) == NULL && errno == ENOMEM, "malloc(%zu)", sizes[i]);
        errno = 0;
        CHECK(ebb_memalign(64, sizes[i]) == NULL && errno == ENOMEM, "memalign(64, %zu)", sizes[i]);
        errno = 0;
        CHECK(ebb_memalign(1 << 20, sizes[i]) == NULL && errno == ENOMEM);
        void *r = (void *)1;
        CHECK(ebb_posix_memalign(&r, 64, sizes[i]) == ENOMEM && r == (void *)1);
    }
    errno = 0;
    CHECK(ebb_pvalloc(SIZE_MAX) == NULL && errno == ENOMEM, "pvalloc overflow");
}

static void test_realloc(void)
{
    /* Grow from 1 byte to 64 MiB, through every kind of block. */
    size_t n = 1;
    unsigned char *p = ebb_malloc(n);
    fill(p, n, 11);
    int lost = 0;
    while (n < (64u << 20)) {
        size_t m = n * 3 / 2 + 1;
        unsigned char *q = ebb_realloc(p, m);
        if (q == NULL || !verify(q, n, 11)) {
            lost++;
            break;
        }
        fill(q, m, 11);
        p = q;
        n = m;
    }
    CHECK(lost == 0, "realloc growth lost data at %zu bytes", n);
    /* And back down. */
    while (n > 1) {
        size_t m = n / 3;
        unsigned char *q = ebb_realloc(p, m ? m : 1);
        if (q == NULL || !verify(q, m ? m : 1, 11)) {
            lost++;
            break;
        }
        p = q;
        n = m ? m : 1;
    }
    CHECK(lost == 0, "realloc shrink lost data at %zu bytes", n);
    ebb_free(p);

    /* A failed realloc keeps the old block. */
    p = ebb_malloc(1000);
    fill(p, 1000, 5);
    errno = 0;
    CHECK(ebb_realloc(p, (size_t)PTRDIFF_MAX + 1) == NULL && errno == ENOMEM);
    CHECK(ebb_realloc(p, SIZE_MAX) == NULL);
    CHECK(verify(p, 1000, 5), "failed realloc kept the contents");
    errno = 0;
    CHECK(ebb_reallocarray(p, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM, "reallocarray overflow");
    CHECK(verify(p, 1000, 5));
    unsigned char *q = ebb_reallocarray(p, 10, 200);
    CHECK(q != NULL && verify(q, 1000, 5));
    ebb_free(q);

    /* realloc(NULL, n) is malloc; realloc(p, 0) frees (glibc). */
    p = ebb_realloc(NULL, 77);
    CHECK(p != NULL && ebb_malloc_usable_size(p) >= 77);
    CHECK(ebb_realloc(p, 0) == NULL);

    /* Huge to huge: grow in place or by moving pages; content kept. */
    p = ebb_malloc(8u << 20);
    fill(p, 8u << 20, 9);
    q = ebb_realloc(p, 200u << 20);
    CHECK(q != NULL && verify(q, 8u << 20, 9), "huge realloc grow");
    p = ebb_realloc(q, 3u << 20);
    CHECK(p != NULL && verify(p, 3u << 20, 9), "huge realloc shrink");
    ebb_free(p);
}

/* Huge blocks made of the pages of freed ones (huge.c: moved, not copied,
 * from several cached mappings), and a huge block grown into them: every
 * usable byte writable and kept.  In secure mode the cached pages are
 * inaccessible until a block takes them. */
static void test_huge_from_pieces(void)
{
    size_t pieces[] = {3u << 20, (4u << 20) + 12288, 5u << 20};
    void *freed[3];
    for (int i = 0; i < 3; i++) {
        freed[i] = ebb_malloc(pieces[i]);
        fill(freed[i], pieces[i], 11);
    }
    for (int i = 0; i < 3; i++)
        ebb_free(freed[i]);
    size_t big = 11u << 20;
    char *p = ebb_malloc(big);
    size_t usable = p != NULL ? ebb_malloc_usable_size(p) : 0;
    if (p != NULL)
        fill(p, usable, 12);
    CHECK(p != NULL && usable >= big && verify(p, usable, 12), "a huge block from freed ones' pages, all usable");
    ebb_free(p);

    void *more[2] = {ebb_malloc(6u << 20), ebb_malloc(7u << 20)};
    char *q = ebb_malloc(3u << 20);
    CHECK(more[0] != NULL && more[1] != NULL && q != NULL);
    if (more[0] == NULL || more[1] == NULL || q == NULL)
        return;
    fill(q, 3u << 20, 13);
    ebb_free(more[0]);
    ebb_free(more[1]);
    q = ebb_realloc(q, 15u << 20);
    usable = q != NULL ? ebb_malloc_usable_size(q) : 0;
    CHECK(q != NULL && verify(q, 3u << 20, 13), "a huge block grown into freed ones' pages keeps its bytes");
    if (q != NULL) {
        fill(q + (3u << 20), usable - (3u << 20), 14);
        CHECK(verify(q + (3u << 20), usable - (3u << 20), 14), "the grown part all usable");
    }
    ebb_free(q);
}

/* Under ThreadSanitizer and valgrind resident memory holds their shadow of
 * the memory touched too: the tests of what the allocator keeps resident
 * leave them alone.  (valgrind preloads its vgpreload libraries.) */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static bool rss_is_ours(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return !UNDER_TSAN && (preload == NULL || strstr(preload, "vgpreload") == NULL);
}

static long resident_kib(void)
{
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Zero-on-free and secure mode: a freed huge block's bytes are gone, so a
 * block that takes its cached pages, by malloc, calloc or realloc's
 * growth, reads zero throughout. */
static void test_huge_reuse_cleared(void)
{
    if (!env_on("EBB_ZERO_ON_FREE") && !env_on("EBB_SECURE"))
        return;
    size_t sizes[] = {3u << 20, (5u << 20) + 4096};
    int dirty = 0;
    for (int round = 0; round < 8; round++) {
        size_t n = sizes[round % 2];
        unsigned char *p = ebb_malloc(n);
        CHECK(p != NULL);
        if (p == NULL)
            return;
        memset(p, 0xA5, n);
        ebb_free(p);
        unsigned char *q = round % 4 < 2 ? ebb_malloc(n) : ebb_calloc(1, n);
        CHECK(q != NULL);
        if (q == NULL)
            return;
        for (size_t i = 0; i < n; i++)
            if (q[i] != 0) {
                dirty++;
                break;
            }
        ebb_free(q);
    }
    CHECK(dirty == 0, "%d of 8 huge blocks showed a freed block's bytes", dirty);

    unsigned char *freed = ebb_malloc(6u << 20), *grown = ebb_malloc(2u << 20);
    CHECK(freed != NULL && grown != NULL);
    if (freed == NULL || grown == NULL)
        return;
    memset(freed, 0x3C, 6u << 20);
    memset(grown, 0x11, 2u << 20);
    ebb_free(freed);
    grown = ebb_realloc(grown, 8u << 20);
    CHECK(grown != NULL);
    if (grown == NULL)
        return;
    size_t shown = 0;
    for (size_t i = 2u << 20; i < (8u << 20); i++)
        shown += grown[i] == 0x3C;
    CHECK(shown == 0, "realloc's growth showed %zu bytes of a freed block", shown);
    ebb_free(grown);

    /* Secure mode: a block made of cached pieces leaves the rest of one
     * cached, its last page now one of its data pages; a block that takes
     * that rest whole closes the page as its guard, and its growth opens
     * it: none of the pieces' bytes may show. */
    size_t pieces[] = {3u << 20, (4u << 20) + 12288, 5u << 20};
    unsigned char *piece[3];
    for (int i = 0; i < 3; i++) {
        piece[i] = ebb_malloc(pieces[i]);
        CHECK(piece[i] != NULL);
        if (piece[i] == NULL)
            return;
        memset(piece[i], 0x5D, pieces[i]);
    }
    for (int i = 0; i < 3; i++)
        ebb_free(piece[i]);
    unsigned char *most = ebb_malloc(9u << 20), *rest = ebb_malloc((2u << 20) + (512u << 10));
    CHECK(most != NULL && rest != NULL);
    if (most == NULL || rest == NULL)
        return;
    unsigned char *more = ebb_realloc(rest, 4u << 20);
    CHECK(more != NULL);
    if (more == NULL) {
        ebb_free(rest);
        return;
    }
    shown = 0;
    for (size_t i = 0; i < (4u << 20); i++)
        shown += more[i] == 0x5D;
    for (size_t i = 0; i < (9u << 20); i++)
        shown += most[i] == 0x5D;
    CHECK(shown == 0, "blocks made of freed pieces, one grown, showed %zu of their bytes", shown);
    ebb_free(more);
    ebb_free(most);
}

/* Clearing a freed huge block (zero-on-free), or its reused pages (secure
 * mode, and calloc in every mode), brings in none of the pages its
 * program never touched; nor does clearing a freed page block of 1.8 MiB
 * (zero-on-free and secure mode). */
static void test_huge_clear_stays_lean(void)
{
    enum { BLOCKS = 8 };
    size_t n = 1800u << 10;
    unsigned char *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = ebb_malloc(n);
        CHECK(blocks[i] != NULL);
        if (blocks[i] == NULL)
            return;
        memset(blocks[i], 0x77, 4096);
    }
    long used = resident_kib();
    for (int i = 0; i < BLOCKS; i++)
        ebb_free(blocks[i]);
    long freed_kib = resident_kib();
    if (rss_is_ours())
        CHECK(used > 0 && freed_kib <= used + 1024,
              "freeing 8 blocks of 1.8 MiB, 4 KiB of each touched: %ld KiB resident, then %ld", used, freed_kib);
    size_t dirty = 0;
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = ebb_calloc(1, n);
        CHECK(blocks[i] != NULL);
        if (blocks[i] == NULL)
            return;
        for (size_t k = 0; k < 8192; k++)
            dirty += blocks[i][k] != 0;
    }
    long taken_kib = resident_kib();
    CHECK(dirty == 0, "calloc'ing them again: %zu nonzero bytes", dirty);
    if (rss_is_ours())
        CHECK(taken_kib <= freed_kib + 2048, "calloc'ing them again: %ld KiB resident, then %ld", freed_kib, taken_kib);
    for (int i = 0; i < BLOCKS; i++)
        ebb_free(blocks[i]);

    size_t big = 64u << 20;
    unsigned char *p = ebb_malloc(big);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    memset(p, 0x5A, 1u << 20); /* the first MiB only */
    long before = resident_kib();
    ebb_free(p);
    long after = resident_kib();
    if (rss_is_ours())
        CHECK(before > 0 && after <= before + 512,
              "freeing a huge block, 1 MiB of it touched: %ld KiB resident, then %ld", before, after);
    unsigned char *q = ebb_calloc(1, big);
    long taken = resident_kib();
    CHECK(q != NULL);
    if (rss_is_ours())
        CHECK(q == NULL || taken <= after + 2048, "calloc of 64 MiB after it: %ld KiB resident, then %ld", after, taken);
    size_t nonzero = 0;
    for (size_t i = 0; q != NULL && i < (2u << 20); i++)
        nonzero += q[i] != 0;
    CHECK(nonzero == 0, "calloc's block holds %zu nonzero bytes", nonzero);
    ebb_free(q);
}

/* Secure mode: realloc moves a huge block's guard page (the old one opened
 * or cut off, a new one closed at the new end); the count of resident
 * memory follows /proc through it. */
static void test_secure_huge_realloc_counted(void)
{
    if (!env_on("EBB_SECURE"))
        return;
    enum { BLOCKS = 64 };
    unsigned char *b[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        b[i] = ebb_malloc(3u << 20);
        CHECK(b[i] != NULL);
        if (b[i] == NULL)
            return;
        memset(b[i], 0x42, 3u << 20);
    }
    /* Nothing cached for the reclaim thread to give back meanwhile: the
     * count holds a cached block resident in full, /proc only its pages in
     * memory. */
    ebb_malloc_trim(0);
    struct ebb_stats s0, s1;
    ebb_stats_get(&s0);
    long r0 = resident_kib();
    for (int i = 0; i < BLOCKS; i++) {
        unsigned char *q = ebb_realloc(b[i], (2u << 20) + (256u << 10));
        CHECK(q != NULL);
        if (q != NULL)
            b[i] = q;
    }
    ebb_stats_get(&s1);
    long r1 = resident_kib();
    long ours = ((long)s1.resident - (long)s0.resident) / 1024, kernel = r1 - r0;
    if (rss_is_ours())
        CHECK(labs(ours - kernel) < 128, "shrinking 64 secure huge blocks: resident %+ld KiB by the count, %+ld KiB by /proc",
              ours, kernel);
    for (int i = 0; i < BLOCKS; i++)
        ebb_free(b[i]);
}

static void test_aligned(void)
{
    int bad = 0;
    for (size_t align = 1; align <= (8u << 20); align *= 2) {
        size_t sizes[] = {0, 1, align > 1 ? align - 1 : 1, align, align + 1, 3 * align + 5};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t size = sizes[i];
            void *p = NULL;
            if (align >= sizeof(void *)) {
                int rc = ebb_posix_memalign(&p, align, size);
                if (rc != 0 || ((uintptr_t)p & (align - 1)) || ebb_malloc_usable_size(p) < size)
                    bad++;
                if (p != NULL && size > 0)
                    memset(p, 1, size);
                ebb_free(p);
            }
            p = ebb_aligned_alloc(align, size);
            if (p == NULL || ((uintptr_t)p & (align - 1)) || ebb_malloc_usable_size(p) < size)
                bad++;
            if (p != NULL && size > 0)
                memset(p, 2, size);
            ebb_free(p);
            p = ebb_memalign(align, size);
            if (p == NULL || ((uintptr_t)p & (align - 1)) || ebb_malloc_usable_size(p) < size)
                bad++;
            ebb_free(p);
        }
    }
    CHECK(bad == 0, "%d aligned allocations bad", bad);

    /* Keep many aligned blocks alive at once: no overlap. */
    void *live[200];
    for (int i = 0; i < 200; i++) {
        live[i] = ebb_memalign((size_t)64 << (i % 8), 100 + i);
        fill(live[i], 100 + i, (unsigned)i);
    }
    int corrupt = 0;
    for (int i = 0; i < 200; i++) {
        if (!verify(live[i], 100 + i, (unsigned)i))
            corrupt++;
        ebb_free(live[i]);
    }
    CHECK(corrupt == 0, "aligned blocks overlapped");

    void *p = (void *)1;
    CHECK(ebb_posix_memalign(&p, 3, 10) == EINVAL && p == (void *)1, "not a power of two");
    CHECK(ebb_posix_memalign(&p, 0, 10) == EINVAL);
    CHECK(ebb_posix_memalign(&p, 4, 10) == EINVAL, "not a multiple of sizeof(void *)");
    CHECK(ebb_posix_memalign(&p, 24, 10) == EINVAL);
    errno = 0;
    CHECK(ebb_aligned_alloc(3, 10) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ebb_aligned_alloc(0, 10) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ebb_memalign(SIZE_MAX, 10) == NULL && errno == EINVAL);
    /* memalign rounds a non-power-of-two alignment up (glibc). */
    p = ebb_memalign(24, 10);
    CHECK(p != NULL && ((uintptr_t)p & 31) == 0);
    ebb_free(p);

    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    p = ebb_valloc(10);
    CHECK(p != NULL && ((uintptr_t)p & (ps - 1)) == 0);
    ebb_free(p);
    p = ebb_pvalloc(0);
    CHECK(p != NULL && ((uintptr_t)p & (ps - 1)) == 0 && ebb_malloc_usable_size(p) >= ps);
    ebb_free(p);
    p = ebb_pvalloc(ps + 1);
    CHECK(p != NULL && ebb_malloc_usable_size(p) >= 2 * ps);
    ebb_free(p);
}

static void test_errno_preserved(void)
{
    errno = 1234;
    void *p = ebb_malloc(100), *q = ebb_malloc(10u << 20);
    ebb_free(p);
    ebb_free(q);
    CHECK(errno == 1234, "successful calls leave errno alone");
}

static void test_sized_frees(void)
{
    void *p = ebb_malloc(48);
    ebb_free_sized(p, 48);
    p = ebb_aligned_alloc(256, 1000);
    ebb_free_aligned_sized(p, 256, 1000);
    CHECK(1, "free_sized and free_aligned_sized accept their blocks");
}

static void test_stats_and_glibc_extras(void)
{
    /* Guarded blocks (EBB_GUARD, EBB_GUARD_SAMPLE) and the profiler's samples
     * (EBB_PROFILE) are mappings of their own. */
    const char *sample = getenv("EBB_GUARD_SAMPLE");
    bool guard_all = env_on("EBB_GUARD") || (sample != NULL && atol(sample) == 1);
    /* The heap profiler moves its samples to mappings of their own too. */
    const char *profile = getenv("EBB_PROFILE");
    bool guard_sampled = (!guard_all && sample != NULL && atol(sample) > 1) || (profile != NULL && atol(profile) == 1);
    struct ebb_stats before, during, after;
    ebb_stats_get(&before);
    void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        blocks[i] = ebb_malloc(1000);
    void *big = ebb_malloc(16u << 20);
    ebb_stats_get(&during);
    CHECK(during.in_use >= before.in_use + 1000 * 1000 + (16u << 20), "in_use counts live blocks");
    CHECK(during.malloc_calls >= before.malloc_calls + 1001);
    CHECK(during.huge_blocks >= before.huge_blocks + 1);
    CHECK(during.mapped >= during.in_use, "mapped >= in use");
    struct ebb_mallinfo2 mi = ebb_mallinfo2();
    /* Blocks on guarded pages (EBB_GUARD, EBB_GUARD_SAMPLE) are mappings
     * of their own, counted in hblkhd as glibc counts its mmapped chunks. */
    if (guard_all || guard_sampled)
        CHECK(mi.uordblks + mi.hblkhd >= 1000 * 1000 + (16u << 20), "mallinfo2 reports use (guarded blocks mapped)");
    else
        CHECK(mi.uordblks >= 1000 * 1000 && mi.hblkhd >= (16u << 20), "mallinfo2 reports use");
    for (int i = 0; i < 1000; i++)
        ebb_free(blocks[i]);
    ebb_free(big);
    ebb_stats_get(&after);
    CHECK(after.in_use == before.in_use, "in_use back to its level: %lu vs %lu",
          (unsigned long)after.in_use, (unsigned long)before.in_use);
    CHECK(after.free_calls >= before.free_calls + 1001);

    CHECK(ebb_mallopt(12345, 1) == 0, "unknown parameters are refused");
    CHECK(ebb_mallopt(-3 /* M_MMAP_THRESHOLD */, -1) == 0 && ebb_mallopt(-1 /* M_TRIM_THRESHOLD */, -5) == 0,
          "negative thresholds are refused");

    /* M_MMAP_THRESHOLD: requests this big get their own mapping. */
    CHECK(ebb_mallopt(-3, 100000) == 1);
    struct ebb_stats m0, m1;
    ebb_stats_get(&m0);
    void *own = ebb_malloc(150000);
    ebb_stats_get(&m1);
    CHECK(m1.huge_blocks == m0.huge_blocks + 1, "M_MMAP_THRESHOLD sends 150000 bytes to a mapping");
    ebb_free(own);
    CHECK(ebb_mallopt(-3, 32 << 20) == 1);
    ebb_stats_get(&m0);
    own = ebb_malloc(150000);
    ebb_stats_get(&m1);
    if (guard_all) /* every block has a mapping of its own */
        CHECK(m1.huge_blocks == m0.huge_blocks + 1, "guard mode: 150000 bytes on pages of their own");
    else if (guard_sampled) /* unless this one was sampled */
        CHECK(m1.huge_blocks <= m0.huge_blocks + 1, "above 2 MiB the threshold changes nothing");
    else
        CHECK(m1.huge_blocks == m0.huge_blocks, "above 2 MiB the threshold changes nothing");
    ebb_free(own);

    /* M_TRIM_THRESHOLD: freed memory past it goes back at once. */
    CHECK(ebb_mallopt(-1, 1 << 20) == 1);
    void *many[20000];
    for (int i = 0; i < 20000; i++)
        memset(many[i] = ebb_malloc(1000), 1, 1000);
    for (int i = 0; i < 20000; i++)
        ebb_free(many[i]);
    ebb_stats_get(&m1);
    CHECK(m1.reclaimable <= (2u << 20), "M_TRIM_THRESHOLD bounds what stays: %lu KiB",
          (unsigned long)(m1.reclaimable >> 10));
    CHECK(ebb_mallopt(-1, 64 << 20) == 1);
    CHECK(ebb_mallopt(-2 /* M_TOP_PAD */, 0) == 1);
    CHECK(ebb_malloc_trim(0) >= 0);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(ebb_malloc_info(0, f) == 0);
    fclose(f);
    CHECK(text != NULL && strstr(text, "<malloc version=\"ebbmalloc") != NULL &&
          strstr(text, "</malloc>") != NULL, "malloc_info writes XML");
    free(text);
    errno = 0;
    CHECK(ebb_malloc_info(1, stdout) == -1 && errno == EINVAL);
}

/* Many blocks of many sizes alive together: nothing overlaps. */
static void test_no_overlap(void)
{
    enum { N = 20000 };
    static void *p[N];
    static size_t sz[N];
    unsigned x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245 + 12345;
        sz[i] = 1 + (x >> 8) % ((i % 50 == 0) ? 200000 : 2000);
        p[i] = ebb_malloc(sz[i]);
        fill(p[i], sz[i], (unsigned)i);
    }
    for (int i = 0; i < N; i += 2) {
        ebb_free(p[i]);
        p[i] = ebb_malloc(sz[i] / 2 + 1);
        sz[i] = sz[i] / 2 + 1;
        fill(p[i], sz[i], (unsigned)i);
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (!verify(p[i], sz[i], (unsigned)i))
            bad++;
        ebb_free(p[i]);
    }
    CHECK(bad == 0, "%d blocks corrupted by others", bad);
}

/* CPU time, in clock ticks, of the thread named `name`; -1 if none. */
static long thread_cpu_ticks(const char *name)
{
    char want[64];
    snprintf(want, sizeof want, "(%s)", name);
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return -1;
    long ticks = -1;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[320], stat[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = '\0';
        char *end = strrchr(stat, ')');
        if (strstr(stat, want) == NULL || end == NULL)
            continue;
        /* After the name: state (field 3) ... utime (14), stime (15). */
        unsigned long utime, stime;
        if (sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
            ticks = (long)(utime + stime);
    }
    closedir(dir);
    return ticks;
}

/* The background reclaimer sleeps between deadlines: it once spun on a
 * pass deadline while another thread's pass held the pass lock, which went
 * unseen natively (passes are short) and took nearly all of the process's
 * CPU time under valgrind, where passes are slow.  Run last, after the huge blocks above started it. */
static void test_reclaim_thread_sleeps(void)
{
    long ticks = thread_cpu_ticks("ebb-reclaim");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long hz = sysconf(_SC_CLK_TCK);
    long process = (long)((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * hz +
                          (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * hz / 1000000);
    if (getenv("EBB_GUARD") == NULL && getenv("EBB_BACKGROUND") == NULL)
        CHECK(ticks >= 0, "the reclaim thread was started");
    CHECK(ticks <= 5 + process / 10, "the reclaim thread used %ld of the process's %ld ticks", ticks, process);
}

int main(void)
{
    test_malloc_zero();
    test_alignment_and_usable();
    test_calloc();
    test_impossible_sizes();
    test_realloc();
    test_huge_from_pieces();
    test_huge_reuse_cleared();
    test_huge_clear_stays_lean();
    test_secure_huge_realloc_counted();
    test_aligned();
    test_errno_preserved();
    test_sized_frees();
    test_stats_and_glibc_extras();
    test_no_overlap();
    test_reclaim_thread_sleeps();
    return check_summary();
}
