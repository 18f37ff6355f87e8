/* Process start, fork, and the allocator's own metadata.
 *
 * The first allocation may come before main and before any constructor
 * (the dynamic loader allocates), so initialization is lazy: the first
 * slow path calls ebbi_process_init.  It runs in two phases:
 *   1. what needs nothing from the C library that could allocate: page
 *      size, options, the free-key secret, the arenas; then the allocator
 *      is ready and serves any allocation, from any thread;
 *   2. the pthread key whose destructor gives a thread's heap back at its
 *      exit, and the fork handlers — calls that may allocate, which now
 *      simply works.
 *
 * fork: the prepare handler takes every allocator lock, in the order of
 * the table fork_steps, so the child never inherits a lock held by a
 * thread that does not exist in it; the parent releases them, the child
 * re-initializes them.  The forking thread's heap is
 * intact in the child.  The heaps of the other threads stay as they were:
 * their pages are not reused by the child (their blocks were live in the
 * parent anyway), and frees into them from the child land on their
 * remote-free lists.
 */
#include <string.h>

#include "internal.h"

ebbi_process_t ebbi_process;
__thread bool ebbi_initializing_here;

/* ---- metadata: bump-allocated from the os, never freed ------------------- */

#define META_CHUNK (1UL << 20)

static struct {
    pthread_mutex_t lock;
    uint8_t *cursor;
    size_t left;
    _Atomic(uint64_t) bytes;
} meta = {.lock = PTHREAD_MUTEX_INITIALIZER};

void *ebbi_meta_alloc(size_t size)
{
    size = (size + 63) & ~(size_t)63;
    pthread_mutex_lock(&meta.lock);
    while (size > meta.left) {
        size_t chunk = size > META_CHUNK ? size : META_CHUNK;
        pthread_mutex_unlock(&meta.lock);
        uint8_t *fresh = ebbi_os_map(chunk, NULL);
        if (fresh == NULL)
            return NULL;
        pthread_mutex_lock(&meta.lock);
        if (size > meta.left) {
            meta.cursor = fresh;
            meta.left = chunk;
        } else {
            /* Another thread refilled meanwhile: ours goes back. */
            pthread_mutex_unlock(&meta.lock);
            ebbi_os_unmap(fresh, chunk);
            pthread_mutex_lock(&meta.lock);
        }
    }
    void *p = meta.cursor;
    meta.cursor += size;
    meta.left -= size;
    pthread_mutex_unlock(&meta.lock);
    ebbi_fetch_add_relaxed(&meta.bytes, size);
    return p; /* zero: fresh from the kernel, never handed out before */
}

uint64_t ebbi_meta_bytes(void)
{
    return ebbi_load_relaxed(&meta.bytes);
}

/* The main thread ended with pthread_exit: once the program's last thread
 * is gone too, the service thread must not keep the process alive (it
 * would, forever: a detached thread, blocking every signal). */
static pthread_key_t main_key;
static bool main_key_ready;

static void main_thread_exited(void *value)
{
    (void)value;
    ebbi_doorbell_main_exited();
}

static void main_key_mark(void)
{
    if (main_key_ready)
        pthread_setspecific(main_key, (void *)1);
}

/* ---- fork ------------------------------------------------------------------- */

static void meta_fork_prepare(void)
{
    pthread_mutex_lock(&meta.lock);
}

static void meta_fork_parent(void)
{
    pthread_mutex_unlock(&meta.lock);
}

static void meta_fork_child(void)
{
    pthread_mutex_init(&meta.lock, NULL);
}

/* Every module's fork handlers, in lock order: prepare walks the table
 * forward (a lock is taken only after every lock that may be held while
 * taking it), parent and child walk it backward.  A NULL handler has
 * nothing to do.  The child re-initializes the locks, then the threads it
 * lost: the service thread is started again once the publish page wants
 * it, so service comes before publish in the child's walk. */
static const struct {
    void (*prepare)(void);   /* takes the module's locks */
    void (*parent)(void);    /* releases them */
    void (*child)(void);     /* makes them new, and forgets the threads that are gone */
} fork_steps[] = {
    {NULL, NULL, ebbi_publish_fork_child},
    {NULL, NULL, main_key_mark},             /* the forking thread is the child's main thread */
    {NULL, NULL, ebbi_service_fork_child},
    /* First: libgcc's walk may allocate under the walk's lock (unwind.c). */
    {ebbi_unwind_fork_prepare, ebbi_unwind_fork_parent, ebbi_unwind_fork_child},
    {ebbi_reclaim_fork_prepare, ebbi_reclaim_fork_parent, ebbi_reclaim_fork_child},
    {ebbi_doorbell_fork_prepare, ebbi_doorbell_fork_parent, ebbi_doorbell_fork_child},
    {ebbi_heaps_fork_prepare, ebbi_heaps_fork_parent, ebbi_heaps_fork_child},
    {ebbi_arenas_fork_prepare, ebbi_arenas_fork_parent, ebbi_arenas_fork_child},
    {ebbi_huge_fork_prepare, ebbi_huge_fork_parent, ebbi_huge_fork_child},
    {ebbi_source_fork_prepare, ebbi_source_fork_parent, ebbi_source_fork_child},
    {NULL, NULL, ebbi_sample_fork_child},
    {ebbi_guard_fork_prepare, ebbi_guard_fork_parent, ebbi_guard_fork_child},
    {ebbi_zero_fork_prepare, ebbi_zero_fork_parent, ebbi_zero_fork_child},
    {ebbi_profile_fork_prepare, ebbi_profile_fork_parent, ebbi_profile_fork_child},
    {meta_fork_prepare, meta_fork_parent, meta_fork_child},
};

#define FORK_STEPS (sizeof fork_steps / sizeof fork_steps[0])

static void fork_prepare(void)
{
    for (size_t i = 0; i < FORK_STEPS; i++)
        if (fork_steps[i].prepare != NULL)
            fork_steps[i].prepare();
}

static void fork_parent(void)
{
    for (size_t i = FORK_STEPS; i-- > 0;)
        if (fork_steps[i].parent != NULL)
            fork_steps[i].parent();
}

static void fork_child(void)
{
    for (size_t i = FORK_STEPS; i-- > 0;)
        if (fork_steps[i].child != NULL)
            fork_steps[i].child();
}

/* ---- start --------------------------------------------------------------------- */

bool ebbi_process_init(void)
{
    int expected = 0;
    if (!ebbi_cas_strong_seq_cst(&ebbi_process.state, &expected, 1)) {
        /* Another thread is initializing (phase 1 makes no call that could
         * come back here): wait for it. */
        while (ebbi_load_acquire(&ebbi_process.state) != 2)
            ebbi_os_yield();
        return true;
    }
    /* Phase 1. */
    ebbi_process.page_size = ebbi_os_page_size();
    ebbi_options_load();
    ebbi_safety_init();
    ebbi_os_init(ebbi_os_random_word() >> 7);
    unsigned arenas = (unsigned)ebbi_option(EBB_OPTION_ARENAS);
    if (arenas == 0)
        arenas = ebbi_os_cpu_count();
    if (arenas > EBB_MAX_ARENAS)
        arenas = EBB_MAX_ARENAS;
    ebbi_process.arena_count = arenas;
    ebbi_arenas_init(arenas);
    ebbi_store_release(&ebbi_process.state, 2);

    /* Phase 2. */
    ebbi_initializing_here = true;
    if (pthread_key_create(&ebbi_process.thread_key, ebbi_heap_thread_done) == 0) {
        ebbi_store_release(&ebbi_process.thread_key_ready, true);
        /* A heap this thread took meanwhile is given back at its exit too. */
        ebbi_heap_key_made();
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    ebbi_initializing_here = false;
    ebbi_store_release(&ebbi_process.init_done, true);
    return true;
}

/* Before main: make sure the options come from the environment, which an
 * allocation by the dynamic loader may have been too early to see. */
__attribute__((constructor(101))) static void ebbi_constructor(void)
{
    if (!ebbi_process_ready())
        ebbi_process_init();
    else if (!ebbi_options_from_environment())
        ebbi_options_load();
    /* Constructors run in the main thread. */
    main_key_ready = pthread_key_create(&main_key, main_thread_exited) == 0;
    main_key_mark();
    /* From here on the process is far enough along to start a thread. */
    ebbi_store_release(&ebbi_process.started, true);
    ebbi_reclaim_init();
    ebbi_publish_init();
    ebbi_profile_init();
    /* The service thread keeps the statistics page current (the library's
     * constructor is a safe place to start a thread). */
    if (ebbi_publish_interval_ns() != 0)
        ebbi_service_start();
}
