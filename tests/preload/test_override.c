/* test: override         fast */
/* Run with LD_PRELOAD=libebbmalloc.so: every malloc-family symbol the
 * program (and the C library inside it) calls resolves into ebbmalloc, and
 * the glibc extras work — with Debian's jemalloc preloaded, mallinfo2 and
 * malloc_trim still went to glibc and crashed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <string.h>

#include "check.h"

static const char *const api[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
    "malloc_trim", "mallinfo", "mallinfo2", "mallopt", "malloc_stats", "malloc_info",
    "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
};

/* Blocks stored here are observable, so no compiler elides them. */
static void *volatile sink;

static int in_ebbmalloc(void *addr)
{
    Dl_info info;
    return addr != NULL && dladdr(addr, &info) != 0 && info.dli_fname != NULL &&
           strstr(info.dli_fname, "libebbmalloc") != NULL;
}

int main(void)
{
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++)
        CHECK(in_ebbmalloc(dlsym(RTLD_DEFAULT, api[i])), "%s does not resolve into ebbmalloc", api[i]);
    /* The program's own references, through its GOT. */
    CHECK(in_ebbmalloc((void *)&malloc) && in_ebbmalloc((void *)&free) &&
          in_ebbmalloc((void *)&mallinfo2) && in_ebbmalloc((void *)&malloc_trim));

    /* The C library's internal allocations come to us too: our
     * malloc_usable_size aborts on a pointer that is not ours. */
    char *s = strdup("ebbmalloc");
    CHECK(malloc_usable_size(s) >= 10, "strdup's block is ebbmalloc's");
    free(s);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "%0*d", 5000, 7);
    fclose(f);
    CHECK(len == 5000 && malloc_usable_size(text) >= 5001, "open_memstream's buffer is ours");
    free(text);

    /* The glibc extras work and report ebbmalloc's numbers. */
    struct mallinfo2 before = mallinfo2();
    void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        blocks[i] = malloc(500);
    char *big = malloc(32u << 20);
    sink = big;
    for (int i = 0; i < 1000; i++)
        sink = blocks[i];
    struct mallinfo2 during = mallinfo2();
    CHECK(during.uordblks >= before.uordblks + 1000 * 500, "mallinfo2 sees small blocks");
    CHECK(during.hblks >= before.hblks + 1 && during.hblkhd >= before.hblkhd + (32u << 20),
          "mallinfo2 sees the huge block");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
    CHECK(old.uordblks > 0 && old.hblks >= 1, "mallinfo");
    for (int i = 0; i < 1000; i++)
        free(blocks[i]);
    free(big);
    CHECK(malloc_trim(0) == 1, "malloc_trim gave memory back (the huge block's mapping)");
    CHECK(malloc_trim(0) == 0, "nothing more to give back");
    CHECK(mallopt(M_ARENA_MAX, 2) == 1 && mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1);
    text = NULL;
    f = open_memstream(&text, &len);
    CHECK(malloc_info(0, f) == 0);
    fclose(f);
    CHECK(text != NULL && strstr(text, "ebbmalloc") != NULL, "malloc_info is ebbmalloc's");
    free(text);
    malloc_stats();
    return check_summary();
}
