/* test: static           fast
 * test: static-dynamic   fast dyn */
/* Linked with libebbmalloc.a (fully static, and into a dynamic program):
 * the program's malloc is ebbmalloc's, including the C library's own
 * calls to it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "ebbmalloc.h"

static void *worker(void *arg)
{
    char **out = arg;
    *out = strdup("from a thread");
    for (int i = 0; i < 10000; i++)
        free(malloc((size_t)(i % 1000) + 1));
    return NULL;
}

int main(void)
{
    /* The C names are aliases of the ebb_ functions (read through volatile
     * pointers: a compiler may assume two functions have two addresses). */
    void *volatile c_names[] = {(void *)&malloc, (void *)&free, (void *)&realloc, (void *)&calloc,
                                (void *)&posix_memalign};
    void *volatile ebb_names[] = {(void *)&ebb_malloc, (void *)&ebb_free, (void *)&ebb_realloc,
                                  (void *)&ebb_calloc, (void *)&ebb_posix_memalign};
    int same = 0;
    for (int i = 0; i < 5; i++)
        same += c_names[i] == ebb_names[i];
    CHECK(same == 5, "malloc, free, realloc, calloc, posix_memalign are ebbmalloc's (%d of 5)", same);

    struct ebb_stats before, after;
    ebb_stats_get(&before);
    char *s = strdup("the C library allocates through us");
    ebb_stats_get(&after);
    CHECK(after.malloc_calls > before.malloc_calls, "strdup allocated through ebbmalloc");
    CHECK(ebb_malloc_usable_size(s) >= strlen(s) + 1);
    free(s);

    pthread_t t;
    char *from_thread = NULL;
    CHECK(pthread_create(&t, NULL, worker, &from_thread) == 0);
    pthread_join(t, NULL);
    CHECK(from_thread != NULL && strcmp(from_thread, "from a thread") == 0 &&
          ebb_malloc_usable_size(from_thread) >= 14);
    free(from_thread);

    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.arena > 0, "mallinfo2 is ebbmalloc's");
    CHECK(malloc_trim(0) >= 0);
    return check_summary();
}
