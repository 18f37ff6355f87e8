/* test: oom              fast */
/* Out of memory under a capped address space (RLIMIT_AS): small, medium
 * and huge requests get NULL with errno ENOMEM (never an abort or a
 * crash), in threads too, and the allocator recovers once memory is
 * freed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Blocks are chained through their first word: no other memory needed. */
typedef struct {
    void *chain;
    size_t count;
    int err;
} fill_result_t;

/* Allocate blocks of `size` until the allocator says no; touch each. */
static fill_result_t fill_until_null(size_t size)
{
    fill_result_t r = {NULL, 0, 0};
    for (;;) {
        errno = 0;
        void **p = ebb_malloc(size);
        if (p == NULL) {
            r.err = errno;
            break;
        }
        memset(p, 1, size < 4096 ? size : 4096);
        *p = r.chain;
        r.chain = p;
        r.count++;
    }
    return r;
}

static void release(fill_result_t *r)
{
    while (r->chain != NULL) {
        void *next = *(void **)r->chain;
        ebb_free(r->chain);
        r->chain = next;
    }
}

static void *thread_fill(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    fill_result_t r = fill_until_null(size);
    int ok = r.err == ENOMEM;
    release(&r);
    return (void *)(uintptr_t)ok;
}

int main(void)
{
    /* Threads first need their stacks: make them before the cap bites. */
    struct rlimit lim = {vm_size() + (320u << 20), RLIM_INFINITY};
    lim.rlim_max = lim.rlim_cur;
    REQUIRE(setrlimit(RLIMIT_AS, &lim) == 0);

    size_t sizes[] = {48, 3000, 100000, 1u << 20, 24u << 20};
    size_t first_counts[5];
    for (int i = 0; i < 5; i++) {
        fill_result_t r = fill_until_null(sizes[i]);
        first_counts[i] = r.count;
        CHECK(r.err == ENOMEM, "size %zu: errno %d after %zu blocks", sizes[i], r.err, r.count);
        CHECK(r.count > 0, "size %zu: nothing allocated before the cap", sizes[i]);
        /* Other requests fail cleanly too while memory is exhausted. */
        errno = 0;
        void *c = ebb_calloc(1000, 1000);
        CHECK(c == NULL ? errno == ENOMEM : errno == 0, "calloc at the cap");
        ebb_free(c);
        errno = 0;
        void *big = ebb_malloc(256u << 20);
        CHECK(big == NULL && errno == ENOMEM, "a huge block past the cap");
        release(&r);
    }
    /* Recovery: after the frees, the same amount can be had again. */
    ebb_malloc_trim(0);
    for (int i = 0; i < 5; i++) {
        fill_result_t r = fill_until_null(sizes[i]);
        CHECK(r.count * 10 >= first_counts[i] * 9, "size %zu: %zu blocks after recovery, %zu before",
              sizes[i], r.count, first_counts[i]);
        release(&r);
        ebb_malloc_trim(0);
    }
    /* In threads. */
    pthread_t t[4];
    size_t tsizes[4] = {64, 5000, 300000, 5u << 20};
    int created = 0;
    for (int i = 0; i < 4; i++)
        created += pthread_create(&t[i], NULL, thread_fill, (void *)(uintptr_t)tsizes[i]) == 0;
    CHECK(created == 4, "threads created under the cap");
    int ok = 0;
    for (int i = 0; i < created; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(uintptr_t)r;
    }
    CHECK(ok == created, "%d of %d threads saw ENOMEM cleanly", ok, created);
    void *p = ebb_malloc(1000);
    CHECK(p != NULL, "allocating works after threads exhausted memory");
    ebb_free(p);
    return check_summary();
}
