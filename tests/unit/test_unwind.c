/* test: unwind           fast
 * test: test_unwind      valgrind */
/* The profiler's fast stack walk (unwind.c) against libgcc's, frame for
 * frame, on stacks that exercise its rules: a plain chain of calls, deep
 * recursion, frames whose size is known only at run time (alloca, a
 * variable-length array: the CFA follows rbp), another thread's stack,
 * and a stack inside a signal handler (whose frame the fast walk does not
 * follow: it must say so, and the combined walk must still give libgcc's
 * answer).  The fast walk must have done the walking in every case but
 * the signal's. */
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "check.h"
#include "ebbmalloc.h"
#include "internal.h"

#define FRAMES 200

typedef struct {
    uintptr_t fast[FRAMES], slow[FRAMES], any[FRAMES];
    unsigned n_fast, n_slow, n_any;
} walks_t;

static EBBI_NOINLINE void walk_all(walks_t *w)
{
    w->n_fast = ebbi_unwind_stack(w->fast, FRAMES, EBBI_UNWIND_KEEP_SELF | EBBI_UNWIND_FAST);
    w->n_slow = ebbi_unwind_stack(w->slow, FRAMES, EBBI_UNWIND_KEEP_SELF | EBBI_UNWIND_LIBGCC);
    w->n_any = ebbi_unwind_stack(w->any, FRAMES, EBBI_UNWIND_KEEP_SELF);
    __asm__ volatile("" ::: "memory"); /* no tail calls */
}

/* The walks start in different frames of the unwinder, and come from
 * different calls in walk_all: from walk_all's caller on (the fast walk's
 * third frame), libgcc's must be the same, to the end. */
static bool same_stack(const uintptr_t *fast, unsigned n_fast, const uintptr_t *slow, unsigned n_slow,
                       unsigned at_least)
{
    if (n_fast == UINT32_MAX || n_fast < at_least || n_fast < 3)
        return false;
    for (unsigned skip = 0; skip < 6 && skip < n_slow; skip++)
        if (slow[skip] == fast[2] && n_slow - skip == n_fast - 2)
            return memcmp(slow + skip, fast + 2, (n_fast - 2) * sizeof *fast) == 0;
    return false;
}

static void check_walks(const walks_t *w, unsigned at_least, const char *what)
{
    CHECK(w->n_fast != UINT32_MAX, "%s: the fast walk follows it", what);
    CHECK(same_stack(w->fast, w->n_fast, w->slow, w->n_slow, at_least),
          "%s: the fast walk's %u frames are libgcc's (%u)", what, w->n_fast, w->n_slow);
    CHECK(same_stack(w->any, w->n_any, w->slow, w->n_slow, at_least), "%s: the combined walk's too", what);
}

/* ---- the stacks ---------------------------------------------------------------- */

EBBI_NOINLINE void chain_3(walks_t *w);
EBBI_NOINLINE void chain_3(walks_t *w)
{
    walk_all(w);
    __asm__ volatile("" ::: "memory");
}

EBBI_NOINLINE void chain_2(walks_t *w);
EBBI_NOINLINE void chain_2(walks_t *w)
{
    chain_3(w);
    __asm__ volatile("" ::: "memory");
}

EBBI_NOINLINE void chain_1(walks_t *w);
EBBI_NOINLINE void chain_1(walks_t *w)
{
    chain_2(w);
    __asm__ volatile("" ::: "memory");
}

EBBI_NOINLINE void recurse(walks_t *w, int depth);
EBBI_NOINLINE void recurse(walks_t *w, int depth)
{
    if (depth > 0)
        recurse(w, depth - 1);
    else
        walk_all(w);
    __asm__ volatile("" ::: "memory");
}

/* Frames of a size known only at run time: the CFA is rbp's. */
EBBI_NOINLINE void dynamic_frame(walks_t *w, size_t bytes, int depth);
EBBI_NOINLINE void dynamic_frame(walks_t *w, size_t bytes, int depth)
{
    volatile char *scratch = alloca(bytes);
    scratch[0] = 1;
    char vla[bytes + 1];
    vla[bytes] = (char)depth;
    __asm__ volatile("" : : "r"(vla) : "memory");
    if (depth > 0)
        dynamic_frame(w, bytes * 3 + 16, depth - 1);
    else
        walk_all(w);
    __asm__ volatile("" : : "r"(scratch) : "memory");
}

static void *thread_walk(void *arg)
{
    chain_1(arg);
    return NULL;
}

static walks_t in_signal;
static void on_signal(int sig)
{
    (void)sig;
    chain_1(&in_signal);
}

int main(void)
{
    ebb_free(ebb_malloc(1)); /* the library set up: its options read */
    CHECK(ebbi_unwind_load(), "an unwinder is there (libgcc_s)");
    static walks_t w;

    chain_1(&w);
    check_walks(&w, 5, "a chain of calls");
    chain_1(&w); /* again, from the cache */
    check_walks(&w, 5, "the chain again");

    recurse(&w, 150);
    check_walks(&w, 150, "150 frames of recursion");
    recurse(&w, 300);
    CHECK(w.n_fast == FRAMES && w.n_slow == FRAMES, "300 frames: both walks stop at the %d asked for (%u, %u)",
          FRAMES, w.n_fast, w.n_slow);

    for (size_t bytes = 8; bytes <= 4096; bytes *= 8) {
        dynamic_frame(&w, bytes, 4);
        check_walks(&w, 7, "frames of a size known at run time");
    }

    pthread_t t;
    pthread_create(&t, NULL, thread_walk, &w);
    pthread_join(t, NULL);
    check_walks(&w, 5, "another thread");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(in_signal.n_fast == UINT32_MAX, "in a signal handler: the fast walk stops at the signal frame");
    /* Both are libgcc's walk, from a different call in walk_all: one
     * frame near the top differs, the rest are the same. */
    unsigned differ = 0, last_differ = 0;
    for (unsigned i = 0; in_signal.n_any == in_signal.n_slow && i < in_signal.n_any; i++)
        if (in_signal.any[i] != in_signal.slow[i]) {
            differ++;
            last_differ = i;
        }
    CHECK(in_signal.n_slow > 6 && in_signal.n_any == in_signal.n_slow && differ == 1 && last_differ < 6,
          "in a signal handler: the combined walk is libgcc's, through the signal frame (%u, %u frames)",
          in_signal.n_any, in_signal.n_slow);
    return check_summary();
}
