/* test: misuse           fast nopreload EBB_TEST_LIB="$LIB" */
/* Death tests: each misuse runs in a child process with ebbmalloc
 * preloaded (EBB_TEST_LIB); the child must die of SIGABRT after printing
 * exactly "ebbmalloc: error: <what> (<the pointer>)" — never a segfault,
 * never silence.  One table, cases[] below, holds every case: its name,
 * the function that commits the misuse, whether other allocators are
 * compared on it (bench/misuse.sh), and what each mode must do.
 *
 *   test_misuse          every case in every mode it lists (EBB_TEST_LIB)
 *   test_misuse CASE     commits the misuse, in this process: the exit
 *                        status is 0 if it went unnoticed, 2 for an unknown
 *                        case, 4 if it cannot be set up here
 *   test_misuse --list   the names of the compared cases, one a line */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"
#include "steps.h"

/* The misuse here is deliberate. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

static void announce(void *p)
{
    printf("%p\n", p);
    fflush(stdout);
}

/* Keep the compiler from reasoning about misuse it can see. */
static void *volatile sink;

/* A thread frees the only block of its class (its heap parks the emptied
 * page), another thread's malloc_trim has the page decommitted (the
 * block's memory reads zero now), then the thread frees the block again. */
static void *double_free_parked(void *arg)
{
    (void)arg;
    void *p = malloc(5000);
    free(p);
    steps_go(1);
    steps_wait(2);
    announce(p);
    free(p);
    return NULL;
}

static void *free_twice(void *p)
{
    free(p);
    announce(p);
    free(p);
    return NULL;
}

/* n 64-byte blocks, all but one in 1024 freed: pages of 64 KiB with one
 * live block each, whose other kernel pages malloc_trim gives back. */
static void sparse_pages(void **blocks, int n)
{
    for (int i = 0; i < n; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < n; i++)
        if (i % 1024 != 0)
            free(blocks[i]);
}

/* The misuses: each returns 0 if it went unnoticed (or another status
 * that its expectations name); 4: it cannot be set up here. */

/* A stack address: the words before it and at it read zero, so that what
 * an allocator reading a header there does depends on no stack garbage. */
#define STACK_POINTER(frame) (memset(frame, 0, sizeof frame), (void *)(frame + 32))

static int free_stack(const char *name)
{
    (void)name;
    char local[64];
    sink = STACK_POINTER(local);
    announce(sink);
    free(sink);
    return 0;
}

static int free_interior(const char *name)
{
    (void)name;
    char *p = malloc(64);
    announce(p + 16);
    free(p + 16);
    return 0;
}

static int free_interior_huge(const char *name)
{
    (void)name;
    char *p = malloc(10u << 20);
    announce(p + 4096);
    free(p + 4096);
    return 0;
}

static int free_unaligned(const char *name)
{
    (void)name;
    char *p = malloc(64);
    announce(p + 1);
    free(p + 1);
    return 0;
}

static int free_own_mmap(const char *name)
{
    (void)name;
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    announce(p);
    free(p);
    return 0;
}

static int free_wild(const char *name)
{
    (void)name;
    sink = (void *)(uintptr_t)0x7abc12345670;
    announce(sink);
    free(sink);
    return 0;
}

static int free_kernel_address(const char *name)
{
    (void)name;
    sink = (void *)(uintptr_t)0xffff880000001000;
    announce(sink);
    free(sink);
    return 0;
}

static int free_never_allocated(const char *name)
{
    (void)name;
    /* Inside a page, past every block carved so far. */
    char *p = malloc(32);
    announce(p + 32 * 1000);
    free(p + 32 * 1000);
    return 0;
}

static int double_free_small(const char *name)
{
    (void)name;
    void *p = malloc(24);
    free(p);
    announce(p);
    free(p);
    return 0;
}

static int double_free_after_others(const char *name)
{
    (void)name;
    void *keep = malloc(100);
    void *p = malloc(100);
    void *q[50];
    for (int i = 0; i < 50; i++)
        q[i] = malloc(100);
    free(p);
    for (int i = 0; i < 50; i++)
        free(q[i]);
    announce(p);
    free(p);
    free(keep);
    return 0;
}

static int double_free_medium(const char *name)
{
    (void)name;
    void *keep = malloc(100000);
    void *p = malloc(100000);
    free(p);
    announce(p);
    free(p);
    free(keep);
    return 0;
}

static int double_free_huge(const char *name)
{
    (void)name;
    void *p = malloc(8u << 20);
    free(p);
    announce(p);
    free(p);
    return 0;
}

static int double_free_huge_late(const char *name)
{
    (void)name;
    /* Too big for the cache: unmapped at its free. */
    void *p = malloc(200u << 20);
    free(p);
    for (int i = 0; i < 10; i++)
        free(malloc(1000));
    announce(p);
    free(p);
    return 0;
}

static int realloc_invalid(const char *name)
{
    (void)name;
    char *p = malloc(64);
    announce(p + 32);
    sink = realloc(p + 32, 100);
    return 0;
}

static int realloc_freed(const char *name)
{
    (void)name;
    void *keep = malloc(64);
    void *p = malloc(64);
    free(p);
    announce(p);
    sink = realloc(p, 100);
    free(keep);
    return 0;
}

static int usable_size_invalid(const char *name)
{
    (void)name;
    char local[64];
    sink = STACK_POINTER(local);
    announce(sink);
    printf("%zu\n", malloc_usable_size(sink));
    return 0;
}

static int overflow_slack(const char *name)
{
    (void)name;
    char *p = malloc(20);
    memset(p, 'x', 21); /* one byte too many */
    announce(p);
    free(p);
    return 0;
}

/* One bit of the size word after the slack flipped: the size it holds
 * would be 16, and the block's bytes 16..19 the program's.  The report
 * must say the canary is broken, not name an overflow past 16 bytes. */
static int overflow_canary(const char *name)
{
    (void)name;
    char *p = malloc(20); /* a 32-byte block: 20 bytes, 4 of slack, the size word */
    memset(p, 'x', 20);
    announce(p);
    volatile char *size_word = p + 24; /* volatile: the store before free() stays */
    *size_word ^= 4;
    free(p);
    return 0;
}

static int corrupt_link(const char *name)
{
    (void)name;
    void *keep = malloc(32);
    char *p = malloc(32);
    char *q = malloc(32);
    free(q);
    free(p); /* p's link now leads to q */
    announce(p);
    memset(p, 0x41, 8); /* a write after free over the link */
    for (int i = 0; i < 1000; i++) /* until the page hands out p again */
        sink = malloc(32);
    free(keep);
    return 0;
}

/* link-overflow-1, link-overflow-8, link-write-after-free.  The default
 * mode: a free block's link overwritten, by a one- or an eight-byte
 * overflow from the block before it or by a write after free; then blocks
 * of its size taken until the page hands out the block and would follow
 * the link.  Of two neighbours p, q only q is freed: its link, on the
 * page's local list, is NULL until overwritten. */
static int link_overwritten(const char *name)
{
    char *p = malloc(32), *q = malloc(32);
    for (int i = 0; i < 64 && q != p + 32; i++) {
        p = q;
        q = malloc(32);
    }
    if (q != p + 32)
        return 4;
    free(q);
    if (strcmp(name, "link-overflow-1") == 0)
        p[32] = 0x41;
    else if (strcmp(name, "link-overflow-8") == 0)
        memset(p, 0x41, 40);
    else
        memset(q, 0x41, 8); /* link-write-after-free */
    announce(*(void **)q);
    for (int i = 0; i < 100000; i++)
        sink = malloc(32);
    return 0;
}

static int write_after_free_deep(const char *name)
{
    (void)name;
    /* Secure mode: a write after free past the link words, seen when
     * the block is handed out again (blocks come in a random order:
     * taken until it is). */
    unsigned char *p = malloc(64);
    free(p);
    announce(p);
    p[40] = 'x';
    for (int i = 0; i < 100000; i++) {
        sink = malloc(64); /* volatile: a compiler may take a new block for unequal to p */
        if ((uintptr_t)sink == (uintptr_t)p)
            return 0; /* handed out unseen */
    }
    return 0;
}

static int read_after_free(const char *name)
{
    (void)name;
    char *p = malloc(24);
    p[0] = 1;
    free(p);
    announce(p);
    sink = (void *)(uintptr_t)p[3];
    return 0;
}

static int write_after_free_large(const char *name)
{
    (void)name;
    char *p = malloc(100000);
    free(p);
    announce(p);
    p[50000] = 1;
    return 0;
}

static int huge_use_after_free(const char *name)
{
    (void)name;
    /* Secure mode: a freed huge block waits in the cache inaccessible. */
    volatile char *p = malloc(3 << 20);
    p[100] = 1;
    free((void *)p);
    announce((void *)p);
    p[100] = 2;
    return 0; /* not caught */
}

static int huge_overflow(const char *name)
{
    (void)name;
    /* Secure mode: a huge block ends at a guard page. */
    volatile char *p = malloc(3 << 20);
    announce((void *)p);
    p[malloc_usable_size((void *)p)] = 1;
    return 0; /* not caught */
}

static int overflow_guard(const char *name)
{
    (void)name;
    char *p = malloc(4096);
    announce(p);
    p[4096] = 1;
    return 0;
}

static int underflow_guard(const char *name)
{
    (void)name;
    char *p = malloc(100);
    announce(p);
    p[-1] = 1;
    return 0;
}

/* sized-delete-wrong, sized-free-wrong, aligned-delete-wrong.  C++'s sized
 * delete (ebbmalloc's own operator, looked up as a C++ program would call
 * it) and C23's free_sized, naming a size the block was not allocated
 * with; an aligned delete naming an alignment the block does not have. */
static int sized_wrong(const char *name)
{
    void (*sized_delete)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvm");
    void (*sized_free)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*aligned_delete)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvSt11align_val_t");
    if (sized_delete == NULL || sized_free == NULL || aligned_delete == NULL)
        return 4;
    char *p = malloc(40);
    if (name[0] == 'a') {
        /* An alignment the block does not have: a fixed one (4096) is
         * had by chance by a block that starts a page. */
        size_t alignment = ((uintptr_t)p & -(uintptr_t)p) << 1;
        announce(p);
        aligned_delete(p, alignment);
    } else {
        (name[6] == 'd' ? sized_delete : sized_free)(p, 40);
        p = malloc(40); /* the right size passed */
        announce(p);
        (name[6] == 'd' ? sized_delete : sized_free)(p, 24);
    }
    return 0;
}

static int sized_double_delete(const char *name)
{
    (void)name;
    /* A second sized delete of a block: a double free (secure mode
     * looks sized frees up on a path of their own). */
    void (*sized_delete)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvm");
    if (sized_delete == NULL)
        return 4;
    char *p = malloc(40);
    announce(p);
    sized_delete(p, 40);
    sized_delete(p, 40);
    return 0;
}

/* write-zero-size, read-zero-size, write-zero-size-freed.  Secure mode: a
 * block of 0 bytes has no byte to read or write. */
static int zero_size_access(const char *name)
{
    volatile char *p = malloc(0); /* volatile: the access is not dropped */
    if (name[0] == 'r') {
        announce((void *)p);
        sink = (void *)(uintptr_t)p[0];
    } else if (strcmp(name, "write-zero-size") == 0) {
        announce((void *)p);
        p[0] = 'x';
        free((void *)p);
    } else {
        free((void *)p);
        announce((void *)p);
        p[0] = 'x';
    }
    return 0;
}

static int double_free_zero_size(const char *name)
{
    (void)name;
    char *p = malloc(0);
    announce(p);
    free(p);
    free(p);
    return 0;
}

/* huge-overflow-grown, huge-overflow-shrunk.  Secure mode: a huge block
 * moved or grown by realloc ends at a guard page still, wherever its new
 * end is. */
static int huge_overflow_resized(const char *name)
{
    char *p = malloc(3 << 20);
    size_t size = name[14] == 'g' ? 5 << 20 : (3 << 20) - (64 << 10);
    p = realloc(p, size);
    announce(p);
    p[size] = 1;
    return 0;
}

static int usable_size_freed_huge(const char *name)
{
    (void)name;
    /* Unmapped at its free, then asked about. */
    void *p = malloc(200u << 20);
    free(p);
    announce(p);
    sink = (void *)malloc_usable_size(p);
    return 0;
}

static int double_free_remote(const char *name)
{
    (void)name;
    /* Freed twice by a thread that does not own it: the first free
     * leaves it in that thread's batch for its page. */
    void *p = malloc(48);
    pthread_t t;
    pthread_create(&t, NULL, free_twice, p);
    pthread_join(t, NULL);
    return 0;
}

static int double_free_parked_case(const char *name)
{
    (void)name;
    pthread_t t;
    pthread_create(&t, NULL, double_free_parked, NULL);
    steps_wait(1);
    malloc_trim(0);
    steps_go(2);
    pthread_join(t, NULL);
    return 0;
}

static int double_free_holed(const char *name)
{
    (void)name;
    /* A block of a sparse page whose kernel page went back to the
     * kernel: its key word reads zero, and the free must still be
     * seen for what it is. */
    enum { N = 65536 };
    static void *blocks[N];
    sparse_pages(blocks, N);
    malloc_trim(0);
    /* The 100th block of a 64 KiB page: in its second kernel page,
     * which held no live block. */
    announce(blocks[N / 2 + 100]);
    free(blocks[N / 2 + 100]);
    return 0;
}

static int trim_corrupt_link(const char *name)
{
    (void)name;
    /* A write after free over a link of a sparse page: malloc_trim's
     * walks of the page's lists must report it, not follow it. */
    enum { N = 4096 };
    static void *blocks[N];
    sparse_pages(blocks, N);
    announce(blocks[N / 2 + 1]);
    memset(blocks[N / 2 + 1], 0x41, 8);
    malloc_trim(0);
    return 0;
}

static int read_after_free_sampled(const char *name)
{
    (void)name;
    /* Allocate until the sampled guard takes one (its count moves),
     * keeping the others, then use that one after its free. */
    void (*get)(struct ebb_stats *) = (void (*)(struct ebb_stats *))dlsym(RTLD_DEFAULT, "ebb_stats_get");
    if (get == NULL)
        return 4;
    struct ebb_stats before, after;
    for (int i = 0; i < 1000000; i++) {
        get(&before);
        char *p = malloc(24);
        get(&after);
        if (after.guard_samples > before.guard_samples) {
            p[0] = 1;
            free(p);
            announce(p);
            sink = (void *)(uintptr_t)p[3];
            return 0;
        }
        sink = p;
    }
    return 5;
}

static int zeroed_after_free(const char *name)
{
    (void)name;
    unsigned char *p = malloc(200);
    memset(p, 0xff, 200);
    free(p);
    for (int i = 16; i < 200; i++)
        if (p[i] != 0)
            return 1;
    return 3; /* checked: zero */
}

static int string_stops(const char *name)
{
    (void)name;
    /* Secure mode: a string with no terminator, filling its block,
     * ends inside it (the canary's last byte is zero). */
    char *p = malloc(30);
    memset(p, 'x', 30);
    size_t n = strlen(p);
    return n < malloc_usable_size(p) + 16 + 8 ? 3 : 1;
}

static int zero_size_blocks(const char *name)
{
    (void)name;
    /* Secure mode's zero-byte blocks: distinct, aligned, of no usable
     * byte; a realloc of one to a size gives a block of that size. */
    enum { N = 5000 };
    static char *z[N];
    for (int i = 0; i < N; i++) {
        z[i] = malloc(0);
        if (z[i] == NULL || ((uintptr_t)z[i] & 15) != 0 || malloc_usable_size(z[i]) != 0)
            return 1;
        if (i > 0 && z[i] == z[i - 1])
            return 1;
    }
    for (int i = 0; i < N; i += 2)
        free(z[i]);
    char *again = malloc(0); /* not one just freed */
    for (int i = 0; i < N; i += 2)
        if (again == z[i])
            return 1;
    char *grown = realloc(z[1], 100);
    if (grown == NULL)
        return 1;
    memset(grown, 'x', 100);
    free(grown);
    return 3;
}

static int double_free_survived(const char *name)
{
    (void)name;
    void *p = malloc(48);
    free(p);
    announce(p);
    free(p);
    void *q = malloc(48);
    free(q);
    return 3; /* went on */
}

/* What a mode must do with a case: its settings (EVERY_MODE: each of
 * every_mode[] in turn), the report expected (NULL: none), and how the
 * child must end (a signal, or an exit status). */
typedef struct {
    const char *env;
    const char *what;
    int signal;
    int status;
} expectation_t;

typedef struct {
    const char *name;
    int (*misuse)(const char *name);
    bool compared; /* bench/misuse.sh runs it under other allocators too */
    expectation_t expect[4]; /* up to the first with env NULL */
} misuse_case_t;

#define EVERY_MODE "*"
#define ABORTS(env, what) {env, what, SIGABRT, 0}
#define FAULTS(env, what) {env, what, SIGSEGV, 0}
#define EXITS(env, what, status) {env, what, 0, status}
#define COMPARED true
#define OURS false

/* The modes EVERY_MODE stands for. */
static const char *const every_mode[] = {
    "", "EBB_SECURE=1", "EBB_ZERO_ON_FREE=1", "EBB_GUARD=1", "EBB_GUARD_SAMPLE=1000",
};

/* The compared cases come first, in bench/misuse.sh's order. */
static const misuse_case_t cases[] = {
    {"free-stack", free_stack, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-interior", free_interior, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-interior-huge", free_interior_huge, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-unaligned", free_unaligned, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-own-mmap", free_own_mmap, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-wild", free_wild, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    {"free-kernel-address", free_kernel_address, COMPARED, {ABORTS(EVERY_MODE, "free of invalid pointer")}},
    /* Only where blocks come from pages (not in guard mode). */
    {"free-never-allocated", free_never_allocated, COMPARED,
     {ABORTS("", "free of invalid pointer"), ABORTS("EBB_SECURE=1", "free of invalid pointer")}},
    {"double-free-small", double_free_small, COMPARED, {ABORTS(EVERY_MODE, "double free")}},
    {"double-free-after-others", double_free_after_others, COMPARED, {ABORTS(EVERY_MODE, "double free")}},
    /* The guarded block freed last stays in the quarantine, however small. */
    {"double-free-medium", double_free_medium, COMPARED,
     {ABORTS(EVERY_MODE, "double free"), ABORTS("EBB_GUARD=1 EBB_GUARD_QUARANTINE=0", "double free")}},
    {"double-free-huge", double_free_huge, COMPARED, {ABORTS(EVERY_MODE, "double free")}},
    /* Late double frees of huge blocks (unmapped at their free), and a
     * use of one, are named for what they are. */
    {"double-free-huge-late", double_free_huge_late, COMPARED,
     {ABORTS("", "double free"), ABORTS("EBB_SECURE=1", "double free")}},
    {"realloc-invalid", realloc_invalid, COMPARED, {ABORTS(EVERY_MODE, "realloc of invalid pointer")}},
    {"realloc-freed", realloc_freed, COMPARED,
     {ABORTS("", "use of a freed block"), ABORTS("EBB_SECURE=1", "use of a freed block"),
      ABORTS("EBB_GUARD=1", "use of a freed block")}},
    {"usable-size-invalid", usable_size_invalid, COMPARED,
     {ABORTS(EVERY_MODE, "malloc_usable_size of invalid pointer")}},
    /* Secure mode: overflows, links. */
    {"overflow-slack", overflow_slack, COMPARED, {ABORTS("EBB_SECURE=1", "heap overflow past a 20-byte block")}},
    {"corrupt-link", corrupt_link, COMPARED, {ABORTS("EBB_SECURE=1", "corrupted free list")}},
    /* The default mode too: malloc never follows a link out of its page. */
    {"link-overflow-1", link_overwritten, COMPARED, {ABORTS("", "corrupted free list")}},
    {"link-overflow-8", link_overwritten, COMPARED, {ABORTS("", "corrupted free list")}},
    {"link-write-after-free", link_overwritten, COMPARED, {ABORTS("", "corrupted free list")}},
    /* Secure mode: freed blocks checked when handed out again. */
    {"write-after-free-deep", write_after_free_deep, COMPARED,
     {ABORTS("EBB_SECURE=1", "write after free of a 72-byte block")}},
    /* Guard mode (and a sampled guard): the access itself faults, and is
     * named. */
    {"read-after-free", read_after_free, COMPARED,
     {FAULTS("EBB_GUARD=1", "use after free of a 24-byte block"),
      FAULTS("EBB_GUARD_SAMPLE=1", "use after free of a 24-byte block")}},
    {"write-after-free-large", write_after_free_large, COMPARED,
     {FAULTS("EBB_GUARD=1", "use after free of a 100000-byte block")}},
    {"huge-use-after-free", huge_use_after_free, COMPARED,
     {FAULTS("EBB_SECURE=1", "use after free of a 3145728-byte block")}},
    /* With the guard before, a block ends where its mapping does: a write
     * past it is named all the same. */
    {"huge-overflow", huge_overflow, COMPARED,
     {FAULTS("EBB_GUARD=before", "heap overflow past a 3145728-byte block"),
      FAULTS("EBB_SECURE=1", "heap overflow past a 3145728-byte block")}},
    {"overflow-guard", overflow_guard, COMPARED,
     {FAULTS("EBB_GUARD=1", "heap overflow past a 4096-byte block"),
      FAULTS("EBB_GUARD=before", "heap overflow past a 4096-byte block")}},
    {"underflow-guard", underflow_guard, COMPARED,
     {FAULTS("EBB_GUARD=before", "heap underflow before a 100-byte block")}},
    {"sized-delete-wrong", sized_wrong, COMPARED, {ABORTS("EBB_SECURE=1", "sized free with the wrong size")}},
    {"sized-free-wrong", sized_wrong, COMPARED, {ABORTS("EBB_SECURE=1", "sized free with the wrong size")}},
    {"aligned-delete-wrong", sized_wrong, COMPARED,
     {ABORTS("EBB_SECURE=1", "aligned free with the wrong alignment")}},
    {"sized-double-delete", sized_double_delete, COMPARED,
     {ABORTS("", "double free"), ABORTS("EBB_SECURE=1", "double free")}},
    {"write-zero-size", zero_size_access, COMPARED, {FAULTS("EBB_SECURE=1", "heap overflow past a 0-byte block")}},
    {"read-zero-size", zero_size_access, COMPARED, {FAULTS("EBB_SECURE=1", "heap overflow past a 0-byte block")}},
    {"write-zero-size-freed", zero_size_access, COMPARED,
     {FAULTS("EBB_SECURE=1", "use after free of a 0-byte block")}},
    {"double-free-zero-size", double_free_zero_size, COMPARED,
     {ABORTS("EBB_SECURE=1", "double free"), ABORTS("", "double free")}},
    {"huge-overflow-grown", huge_overflow_resized, COMPARED,
     {FAULTS("EBB_SECURE=1", "heap overflow past a 5242880-byte block")}},
    {"usable-size-freed-huge", usable_size_freed_huge, COMPARED,
     {ABORTS("", "use of a freed block"), ABORTS("EBB_GUARD=1", "use of a freed block")}},

    /* Cases of ebbmalloc's own. */
    {"double-free-remote", double_free_remote, OURS, {ABORTS(EVERY_MODE, "double free")}},
    {"double-free-parked", double_free_parked_case, OURS,
     {ABORTS("", "double free"), ABORTS("EBB_SECURE=1", "double free")}},
    {"double-free-holed", double_free_holed, OURS, {ABORTS("", "double free")}},
    /* malloc_trim's walks check each link. */
    {"trim-corrupt-link", trim_corrupt_link, OURS, {ABORTS("", "corrupted free list")}},
    {"overflow-canary", overflow_canary, OURS,
     {ABORTS("EBB_SECURE=1", "heap overflow past a 24-byte block (its canary is broken)")}},
    {"read-after-free-sampled", read_after_free_sampled, OURS,
     {FAULTS("EBB_GUARD_SAMPLE=50", "use after free of a 24-byte block")}},
    /* Zero on free, and secure mode: freed blocks zero; a string that runs
     * off its block stops at its canary. */
    {"zeroed-after-free", zeroed_after_free, OURS,
     {EXITS("EBB_ZERO_ON_FREE=1", NULL, 3), EXITS("EBB_SECURE=1", NULL, 3)}},
    {"string-stops", string_stops, OURS, {EXITS("EBB_SECURE=1", NULL, 3)}},
    {"zero-size-blocks", zero_size_blocks, OURS, {EXITS("EBB_SECURE=1", NULL, 3)}},
    {"huge-overflow-shrunk", huge_overflow_resized, OURS,
     {FAULTS("EBB_SECURE=1", "heap overflow past a 3080192-byte block")}},
    /* EBB_ABORT_ON_ERROR=0: a warning, and the program goes on. */
    {"double-free-survived", double_free_survived, OURS, {EXITS("EBB_ABORT_ON_ERROR=0", "double free", 3)}},
};

#define CASE_COUNT (sizeof cases / sizeof cases[0])

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

/* Runs case c in a child with the settings of e and extra_env, and checks
 * how it ended and what it said. */
static void run_case(const char *self, const char *lib, const misuse_case_t *c, const expectation_t *e,
                     const char *extra_env)
{
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        setenv("LD_PRELOAD", lib, 1);
        char env[256];
        snprintf(env, sizeof env, "%s %s", e->env, extra_env);
        for (char *tok = strtok(env, " "); tok != NULL; tok = strtok(NULL, " ")) {
            char *eq = strchr(tok, '=');
            if (eq != NULL) {
                *eq = '\0';
                setenv(tok, eq + 1, 1);
            }
        }
        execl(self, self, c->name, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    char out_text[256], err_text[4096];
    read_all(out[0], out_text, sizeof out_text);
    read_all(err[0], err_text, sizeof err_text);
    close(out[0]);
    close(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);

    out_text[strcspn(out_text, "\n")] = '\0';
    if (e->signal != 0)
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == e->signal, "%s [%s %s]: expected signal %d, got %s %d",
              c->name, e->env, extra_env, e->signal, WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    else
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == e->status, "%s [%s]: expected exit %d, got %s %d",
              c->name, e->env, e->status, WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    if (e->what != NULL) {
        char expected[512];
        const char *level = e->signal != 0 ? "error" : "warning";
        snprintf(expected, sizeof expected, "ebbmalloc: %s: %s (%s)", level, e->what, out_text);
        CHECK(strstr(err_text, expected) != NULL, "%s [%s %s]: expected \"%s\" on stderr, got \"%s\"",
              c->name, e->env, extra_env, expected, err_text);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < CASE_COUNT; i++)
            if (cases[i].compared)
                printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc > 1) {
        for (size_t i = 0; i < CASE_COUNT; i++)
            if (strcmp(argv[1], cases[i].name) == 0)
                return cases[i].misuse(argv[1]);
        return 2;
    }
    const char *lib = getenv("EBB_TEST_LIB");
    REQUIRE(lib != NULL, "EBB_TEST_LIB names libebbmalloc.so");
    for (size_t i = 0; i < CASE_COUNT; i++) {
        for (const expectation_t *e = cases[i].expect; e->env != NULL; e++) {
            if (strcmp(e->env, EVERY_MODE) != 0) {
                run_case("/proc/self/exe", lib, &cases[i], e, "");
                continue;
            }
            expectation_t in_mode = *e;
            in_mode.env = "";
            for (size_t m = 0; m < sizeof every_mode / sizeof every_mode[0]; m++)
                run_case("/proc/self/exe", lib, &cases[i], &in_mode, every_mode[m]);
        }
    }
    return check_summary();
}
