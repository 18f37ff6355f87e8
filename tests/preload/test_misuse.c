/* test: misuse           fast nopreload EBB_TEST_LIB="$LIB" */
/* Death tests: each misuse runs in a child process with ebbmalloc
 * preloaded (EBB_TEST_LIB); the child must die of SIGABRT after printing
 * exactly "ebbmalloc: error: <what> (<the pointer>)" — never a segfault,
 * never silence. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
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

static int misuse(const char *mode)
{
    if (strcmp(mode, "free-stack") == 0) {
        char local[64];
        sink = local;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-interior") == 0) {
        char *p = malloc(64);
        announce(p + 16);
        free(p + 16);
    } else if (strcmp(mode, "free-interior-huge") == 0) {
        char *p = malloc(10u << 20);
        announce(p + 4096);
        free(p + 4096);
    } else if (strcmp(mode, "free-unaligned") == 0) {
        char *p = malloc(64);
        announce(p + 1);
        free(p + 1);
    } else if (strcmp(mode, "free-own-mmap") == 0) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        announce(p);
        free(p);
    } else if (strcmp(mode, "free-wild") == 0) {
        sink = (void *)(uintptr_t)0x7abc12345670;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-kernel-address") == 0) {
        sink = (void *)(uintptr_t)0xffff880000001000;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-never-allocated") == 0) {
        /* Inside a page, past every block carved so far. */
        char *p = malloc(32);
        announce(p + 32 * 1000);
        free(p + 32 * 1000);
    } else if (strcmp(mode, "double-free-small") == 0) {
        void *p = malloc(24);
        free(p);
        announce(p);
        free(p);
    } else if (strcmp(mode, "double-free-after-others") == 0) {
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
    } else if (strcmp(mode, "double-free-medium") == 0) {
        void *keep = malloc(100000);
        void *p = malloc(100000);
        free(p);
        announce(p);
        free(p);
        free(keep);
    } else if (strcmp(mode, "double-free-parked") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, double_free_parked, NULL);
        steps_wait(1);
        malloc_trim(0);
        steps_go(2);
        pthread_join(t, NULL);
    } else if (strcmp(mode, "double-free-holed") == 0) {
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
    } else if (strcmp(mode, "double-free-huge") == 0) {
        void *p = malloc(8u << 20);
        free(p);
        announce(p);
        free(p);
    } else if (strcmp(mode, "realloc-invalid") == 0) {
        char *p = malloc(64);
        announce(p + 32);
        sink = realloc(p + 32, 100);
    } else if (strcmp(mode, "realloc-freed") == 0) {
        void *keep = malloc(64);
        void *p = malloc(64);
        free(p);
        announce(p);
        sink = realloc(p, 100);
        free(keep);
    } else if (strcmp(mode, "double-free-huge-late") == 0) {
        /* Too big for the cache: unmapped at its free. */
        void *p = malloc(200u << 20);
        free(p);
        for (int i = 0; i < 10; i++)
            free(malloc(1000));
        announce(p);
        free(p);
    } else if (strcmp(mode, "usable-size-freed-huge") == 0) {
        /* Unmapped at its free, then asked about. */
        void *p = malloc(200u << 20);
        free(p);
        announce(p);
        sink = (void *)malloc_usable_size(p);
    } else if (strcmp(mode, "read-after-free") == 0) {
        char *p = malloc(24);
        p[0] = 1;
        free(p);
        announce(p);
        sink = (void *)(uintptr_t)p[3];
    } else if (strcmp(mode, "read-after-free-sampled") == 0) {
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
    } else if (strcmp(mode, "write-after-free-large") == 0) {
        char *p = malloc(100000);
        free(p);
        announce(p);
        p[50000] = 1;
    } else if (strcmp(mode, "overflow-guard") == 0) {
        char *p = malloc(4096);
        announce(p);
        p[4096] = 1;
    } else if (strcmp(mode, "underflow-guard") == 0) {
        char *p = malloc(100);
        announce(p);
        p[-1] = 1;
    } else if (strcmp(mode, "overflow-slack") == 0) {
        char *p = malloc(20);
        memset(p, 'x', 21); /* one byte too many */
        announce(p);
        free(p);
    } else if (strcmp(mode, "corrupt-link") == 0) {
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
    } else if (strncmp(mode, "link-", 5) == 0) {
        /* The default mode: a free block's link overwritten, by a one- or
         * an eight-byte overflow from the block before it or by a write
         * after free; then blocks of its size taken until the page hands
         * out the block and would follow the link.  Of two neighbours p, q
         * only q is freed: its link, on the page's local list, is NULL
         * until overwritten. */
        char *p = malloc(32), *q = malloc(32);
        for (int i = 0; i < 64 && q != p + 32; i++) {
            p = q;
            q = malloc(32);
        }
        if (q != p + 32)
            return 4;
        free(q);
        if (strcmp(mode, "link-overflow-1") == 0)
            p[32] = 0x41;
        else if (strcmp(mode, "link-overflow-8") == 0)
            memset(p, 0x41, 40);
        else
            memset(q, 0x41, 8); /* link-write-after-free */
        announce(*(void **)q);
        for (int i = 0; i < 100000; i++)
            sink = malloc(32);
    } else if (strcmp(mode, "double-free-remote") == 0) {
        /* Freed twice by a thread that does not own it: the first free
         * leaves it in that thread's batch for its page. */
        void *p = malloc(48);
        pthread_t t;
        pthread_create(&t, NULL, free_twice, p);
        pthread_join(t, NULL);
    } else if (strcmp(mode, "trim-corrupt-link") == 0) {
        /* A write after free over a link of a sparse page: malloc_trim's
         * walks of the page's lists must report it, not follow it. */
        enum { N = 4096 };
        static void *blocks[N];
        sparse_pages(blocks, N);
        announce(blocks[N / 2 + 1]);
        memset(blocks[N / 2 + 1], 0x41, 8);
        malloc_trim(0);
    } else if (strcmp(mode, "sized-delete-wrong") == 0 || strcmp(mode, "sized-free-wrong") == 0 ||
               strcmp(mode, "aligned-delete-wrong") == 0) {
        /* C++'s sized delete (ebbmalloc's own operator, looked up as a C++
         * program would call it) and C23's free_sized, naming a size the
         * block was not allocated with; an aligned delete naming an
         * alignment the block does not have. */
        void (*sized_delete)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvm");
        void (*sized_free)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
        void (*aligned_delete)(void *, size_t) =
            (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvSt11align_val_t");
        if (sized_delete == NULL || sized_free == NULL || aligned_delete == NULL)
            return 4;
        char *p = malloc(40);
        if (mode[0] == 'a') {
            announce(p);
            aligned_delete(p, 4096);
        } else {
            (mode[6] == 'd' ? sized_delete : sized_free)(p, 40);
            p = malloc(40); /* the right size passed */
            announce(p);
            (mode[6] == 'd' ? sized_delete : sized_free)(p, 24);
        }
    } else if (strcmp(mode, "huge-overflow-grown") == 0 || strcmp(mode, "huge-overflow-shrunk") == 0) {
        /* Secure mode: a huge block moved or grown by realloc ends at a
         * guard page still, wherever its new end is. */
        char *p = malloc(3 << 20);
        size_t size = mode[14] == 'g' ? 5 << 20 : (3 << 20) - (64 << 10);
        p = realloc(p, size);
        announce(p);
        p[size] = 1;
    } else if (strcmp(mode, "sized-double-delete") == 0) {
        /* A second sized delete of a block: a double free (secure mode
         * looks sized frees up on a path of their own). */
        void (*sized_delete)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "_ZdlPvm");
        if (sized_delete == NULL)
            return 4;
        char *p = malloc(40);
        announce(p);
        sized_delete(p, 40);
        sized_delete(p, 40);
    } else if (strcmp(mode, "zeroed-after-free") == 0) {
        unsigned char *p = malloc(200);
        memset(p, 0xff, 200);
        free(p);
        for (int i = 16; i < 200; i++)
            if (p[i] != 0)
                return 1;
        return 3; /* checked: zero */
    } else if (strcmp(mode, "write-after-free-deep") == 0) {
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
    } else if (strcmp(mode, "huge-use-after-free") == 0) {
        /* Secure mode: a freed huge block waits in the cache inaccessible. */
        volatile char *p = malloc(3 << 20);
        p[100] = 1;
        free((void *)p);
        announce((void *)p);
        p[100] = 2;
        return 0; /* not caught */
    } else if (strcmp(mode, "huge-overflow") == 0) {
        /* Secure mode: a huge block ends at a guard page. */
        volatile char *p = malloc(3 << 20);
        announce((void *)p);
        p[malloc_usable_size((void *)p)] = 1;
        return 0; /* not caught */
    } else if (strcmp(mode, "write-zero-size") == 0 || strcmp(mode, "read-zero-size") == 0 ||
               strcmp(mode, "write-zero-size-freed") == 0) {
        /* Secure mode: a block of 0 bytes has no byte to read or write. */
        volatile char *p = malloc(0); /* volatile: the access is not dropped */
        if (mode[0] == 'r') {
            announce((void *)p);
            sink = (void *)(uintptr_t)p[0];
        } else if (strcmp(mode, "write-zero-size") == 0) {
            announce((void *)p);
            p[0] = 'x';
            free((void *)p);
        } else {
            free((void *)p);
            announce((void *)p);
            p[0] = 'x';
        }
    } else if (strcmp(mode, "zero-size-blocks") == 0) {
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
    } else if (strcmp(mode, "double-free-zero-size") == 0) {
        char *p = malloc(0);
        announce(p);
        free(p);
        free(p);
    } else if (strcmp(mode, "string-stops") == 0) {
        /* Secure mode: a string with no terminator, filling its block,
         * ends inside it (the canary's last byte is zero). */
        char *p = malloc(30);
        memset(p, 'x', 30);
        size_t n = strlen(p);
        return n < malloc_usable_size(p) + 16 + 8 ? 3 : 1;
    } else if (strcmp(mode, "double-free-survived") == 0) {
        void *p = malloc(48);
        free(p);
        announce(p);
        free(p);
        void *q = malloc(48);
        free(q);
        return 3; /* went on */
    } else if (strcmp(mode, "usable-size-invalid") == 0) {
        char local[32];
        sink = local;
        announce(sink);
        printf("%zu\n", malloc_usable_size(sink));
    } else {
        return 2;
    }
    return 0; /* the misuse went unnoticed */
}

/* A case: the misuse, the environment it runs in, the report expected
 * (NULL: none), and how the child must end (a signal, or an exit status). */
typedef struct {
    const char *mode;
    const char *env;
    const char *what;
    int signal;
    int status;
} expectation_t;

#define ABORTS(mode, env, what) {mode, env, what, SIGABRT, 0}
#define FAULTS(mode, env, what) {mode, env, what, SIGSEGV, 0}

/* The misuse cases of the default mode are run again in every mode. */
static const char *const every_mode[] = {
    "", "EBB_SECURE=1", "EBB_ZERO_ON_FREE=1", "EBB_GUARD=1", "EBB_GUARD_SAMPLE=1000",
};

static const expectation_t default_cases[] = {
    ABORTS("free-stack", "", "free of invalid pointer"),
    ABORTS("free-interior", "", "free of invalid pointer"),
    ABORTS("free-interior-huge", "", "free of invalid pointer"),
    ABORTS("free-unaligned", "", "free of invalid pointer"),
    ABORTS("free-own-mmap", "", "free of invalid pointer"),
    ABORTS("free-wild", "", "free of invalid pointer"),
    ABORTS("free-kernel-address", "", "free of invalid pointer"),
    ABORTS("double-free-small", "", "double free"),
    ABORTS("double-free-after-others", "", "double free"),
    ABORTS("double-free-medium", "", "double free"),
    ABORTS("double-free-huge", "", "double free"),
    ABORTS("double-free-remote", "", "double free"),
    ABORTS("realloc-invalid", "", "realloc of invalid pointer"),
    ABORTS("usable-size-invalid", "", "malloc_usable_size of invalid pointer"),
};

static const expectation_t mode_cases[] = {
    /* Only where blocks come from pages (not in guard mode). */
    ABORTS("free-never-allocated", "", "free of invalid pointer"),
    ABORTS("free-never-allocated", "EBB_SECURE=1", "free of invalid pointer"),
    ABORTS("realloc-freed", "", "use of a freed block"),
    ABORTS("realloc-freed", "EBB_SECURE=1", "use of a freed block"),
    ABORTS("realloc-freed", "EBB_GUARD=1", "use of a freed block"),
    /* The guarded block freed last stays in the quarantine, however small. */
    ABORTS("double-free-medium", "EBB_GUARD=1 EBB_GUARD_QUARANTINE=0", "double free"),
    ABORTS("double-free-parked", "", "double free"),
    ABORTS("double-free-holed", "", "double free"),
    ABORTS("double-free-parked", "EBB_SECURE=1", "double free"),
    /* Late double frees of huge blocks (unmapped at their free), and a
     * use of one, are named for what they are. */
    ABORTS("double-free-huge-late", "", "double free"),
    ABORTS("usable-size-freed-huge", "", "use of a freed block"),
    ABORTS("usable-size-freed-huge", "EBB_GUARD=1", "use of a freed block"),
    /* Secure mode: late double frees of every size, overflows, links. */
    ABORTS("double-free-huge-late", "EBB_SECURE=1", "double free"),
    ABORTS("overflow-slack", "EBB_SECURE=1", "heap overflow past a 20-byte block"),
    ABORTS("corrupt-link", "EBB_SECURE=1", "corrupted free list"),
    ABORTS("sized-delete-wrong", "EBB_SECURE=1", "sized free with the wrong size"),
    ABORTS("sized-free-wrong", "EBB_SECURE=1", "sized free with the wrong size"),
    ABORTS("aligned-delete-wrong", "EBB_SECURE=1", "aligned free with the wrong alignment"),
    ABORTS("sized-double-delete", "", "double free"),
    ABORTS("sized-double-delete", "EBB_SECURE=1", "double free"),
    /* The default mode too: malloc never follows a link out of its page,
     * and malloc_trim's walks check each link. */
    ABORTS("link-overflow-1", "", "corrupted free list"),
    ABORTS("link-overflow-8", "", "corrupted free list"),
    ABORTS("link-write-after-free", "", "corrupted free list"),
    ABORTS("trim-corrupt-link", "", "corrupted free list"),
    /* Guard mode: the access itself faults, and is named. */
    FAULTS("read-after-free", "EBB_GUARD=1", "use after free of a 24-byte block"),
    FAULTS("write-after-free-large", "EBB_GUARD=1", "use after free of a 100000-byte block"),
    FAULTS("overflow-guard", "EBB_GUARD=1", "heap overflow past a 4096-byte block"),
    FAULTS("underflow-guard", "EBB_GUARD=before", "heap underflow before a 100-byte block"),
    /* With the guard before, a block ends where its mapping does: a write
     * past it is named all the same. */
    FAULTS("overflow-guard", "EBB_GUARD=before", "heap overflow past a 4096-byte block"),
    FAULTS("huge-overflow", "EBB_GUARD=before", "heap overflow past a 3145728-byte block"),
    FAULTS("read-after-free", "EBB_GUARD_SAMPLE=1", "use after free of a 24-byte block"),
    FAULTS("read-after-free-sampled", "EBB_GUARD_SAMPLE=50", "use after free of a 24-byte block"),
    /* Zero on free. */
    {"zeroed-after-free", "EBB_ZERO_ON_FREE=1", NULL, 0, 3},
    /* Secure mode: freed blocks zero, and checked when handed out again;
     * a string that runs off its block stops at its canary. */
    {"zeroed-after-free", "EBB_SECURE=1", NULL, 0, 3},
    ABORTS("write-after-free-deep", "EBB_SECURE=1", "write after free of a 72-byte block"),
    {"string-stops", "EBB_SECURE=1", NULL, 0, 3},
    FAULTS("write-zero-size", "EBB_SECURE=1", "heap overflow past a 0-byte block"),
    FAULTS("read-zero-size", "EBB_SECURE=1", "heap overflow past a 0-byte block"),
    FAULTS("write-zero-size-freed", "EBB_SECURE=1", "use after free of a 0-byte block"),
    {"zero-size-blocks", "EBB_SECURE=1", NULL, 0, 3},
    ABORTS("double-free-zero-size", "EBB_SECURE=1", "double free"),
    ABORTS("double-free-zero-size", "", "double free"),
    FAULTS("huge-use-after-free", "EBB_SECURE=1", "use after free of a 3145728-byte block"),
    FAULTS("huge-overflow", "EBB_SECURE=1", "heap overflow past a 3145728-byte block"),
    FAULTS("huge-overflow-grown", "EBB_SECURE=1", "heap overflow past a 5242880-byte block"),
    FAULTS("huge-overflow-shrunk", "EBB_SECURE=1", "heap overflow past a 3080192-byte block"),
    /* EBB_ABORT_ON_ERROR=0: a warning, and the program goes on. */
    {"double-free-survived", "EBB_ABORT_ON_ERROR=0", "double free", 0, 3},
};

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

static void run_case(const char *self, const char *lib, const expectation_t *c, const char *extra_env)
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
        snprintf(env, sizeof env, "%s %s", c->env, extra_env);
        for (char *tok = strtok(env, " "); tok != NULL; tok = strtok(NULL, " ")) {
            char *eq = strchr(tok, '=');
            if (eq != NULL) {
                *eq = '\0';
                setenv(tok, eq + 1, 1);
            }
        }
        execl(self, self, c->mode, (char *)NULL);
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
    if (c->signal != 0)
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == c->signal, "%s [%s %s]: expected signal %d, got %s %d",
              c->mode, c->env, extra_env, c->signal, WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    else
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == c->status, "%s [%s]: expected exit %d, got %s %d",
              c->mode, c->env, c->status, WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    if (c->what != NULL) {
        char expected[512];
        const char *level = c->signal != 0 ? "error" : "warning";
        snprintf(expected, sizeof expected, "ebbmalloc: %s: %s (%s)", level, c->what, out_text);
        CHECK(strstr(err_text, expected) != NULL, "%s [%s %s]: expected \"%s\" on stderr, got \"%s\"",
              c->mode, c->env, extra_env, expected, err_text);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return misuse(argv[1]);
    const char *lib = getenv("EBB_TEST_LIB");
    REQUIRE(lib != NULL, "EBB_TEST_LIB names libebbmalloc.so");
    for (size_t m = 0; m < sizeof every_mode / sizeof every_mode[0]; m++)
        for (size_t i = 0; i < sizeof default_cases / sizeof default_cases[0]; i++)
            run_case("/proc/self/exe", lib, &default_cases[i], every_mode[m]);
    for (size_t i = 0; i < sizeof mode_cases / sizeof mode_cases[0]; i++)
        run_case("/proc/self/exe", lib, &mode_cases[i], "");
    return check_summary();
}
