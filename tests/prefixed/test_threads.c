/* test: threads          fast
 * test: threads-debug    debug
 * test: threads-secure   long EBB_SECURE=1
 * test: threads-zero     long EBB_ZERO_ON_FREE=1
 * test: threads-sample   long EBB_GUARD_SAMPLE=100
 * test: threads-profile  long EBB_PROFILE=1 EBB_PROFILE_RATE=4096
 * test: threads-profile-libgcc  long EBB_PROFILE=1 EBB_PROFILE_RATE=4096 EBB_PROFILE_FAST_UNWIND=0 EBB_TEST_REGISTER_FRAMES=1
 * test: test_threads     sanitize */
/* Threads: blocks handed between 8+ threads (most frees are cross-thread),
 * thousands of short-lived threads whose last blocks are freed by another
 * thread after they exit, threads that exit while malloc_trim sweeps their
 * heaps, and fork from a process whose other threads are allocating.  Every block's contents are checked before it is freed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ebbmalloc.h"

/* EBB_TEST_REGISTER_FRAMES=1: the program's own .eh_frame registered with
 * libgcc, as JIT code registers its frames, so that libgcc's stack walk
 * (the profiler's, with EBB_PROFILE_FAST_UNWIND=0) takes libgcc's lock of
 * registered frames at every walk, and a fork may come while another
 * thread holds it. */
#include <link.h>
#include <stdlib.h>
extern void __register_frame_info(const void *begin, void *object);

static int find_eh_frame(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_GNU_EH_FRAME)
            continue;
        const uint8_t *hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        if (hdr[0] == 1 && hdr[1] == 0x1b) { /* version 1; eh_frame_ptr pc-relative, 4 bytes signed */
            int32_t rel;
            memcpy(&rel, hdr + 4, sizeof rel);
            *(const void **)arg = hdr + 4 + rel;
        }
    }
    return 1; /* the first object is the program */
}

static void register_own_frames(void)
{
    static uintptr_t object[32]; /* libgcc's struct object, opaque */
    const void *eh_frame = NULL;
    if (getenv("EBB_TEST_REGISTER_FRAMES") == NULL)
        return;
    dl_iterate_phdr(find_eh_frame, &eh_frame);
    CHECK(eh_frame != NULL, "the program's .eh_frame found, to register");
    if (eh_frame != NULL)
        __register_frame_info(eh_frame, object);
}

typedef struct {
    uint32_t tag;  /* who made it, and a sequence number */
    uint32_t size;
} header_t;

static void stamp(void *p, uint32_t size, uint32_t tag)
{
    header_t *h = p;
    h->tag = tag;
    h->size = size;
    unsigned char *c = p;
    for (uint32_t i = sizeof *h; i < size; i++)
        c[i] = (unsigned char)(tag * 31 + i);
}

static int intact(const void *p)
{
    const header_t *h = p;
    const unsigned char *c = p;
    for (uint32_t i = sizeof *h; i < h->size; i++)
        if (c[i] != (unsigned char)(h->tag * 31 + i))
            return 0;
    return 1;
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint32_t random_size(uint32_t *seed)
{
    uint32_t r = rnd(seed);
    if (r % 1000 == 0)
        return 3u << 20; /* a huge block now and then */
    if (r % 50 == 0)
        return 8 + rnd(seed) % 200000;
    return 8 + rnd(seed) % 600;
}

/* ---- blocks handed between threads --------------------------------------- */

#define HANDOFF_THREADS 8
#define MAILBOX 256
#define HANDOFF_OPS 40000

typedef struct {
    pthread_mutex_t lock;
    void *slots[MAILBOX];
    int count;
} mailbox_t;

static mailbox_t mailboxes[HANDOFF_THREADS];
static atomic_int handoff_corrupt;
static atomic_int handoff_done;

static void drain(mailbox_t *box)
{
    void *taken[MAILBOX];
    pthread_mutex_lock(&box->lock);
    int n = box->count;
    memcpy(taken, box->slots, (size_t)n * sizeof(void *));
    box->count = 0;
    pthread_mutex_unlock(&box->lock);
    for (int i = 0; i < n; i++) {
        if (!intact(taken[i]))
            atomic_fetch_add(&handoff_corrupt, 1);
        ebb_free(taken[i]);
    }
}

static void *handoff_thread(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint32_t seed = 0x9e3779b9u * (uint32_t)(self + 1);
    for (int op = 0; op < HANDOFF_OPS; op++) {
        uint32_t size = random_size(&seed);
        void *p = ebb_malloc(size);
        if (p == NULL) {
            atomic_fetch_add(&handoff_corrupt, 1000000);
            break;
        }
        stamp(p, size, (uint32_t)(self << 24 | op));
        int to = (int)(rnd(&seed) % HANDOFF_THREADS);
        mailbox_t *box = &mailboxes[to];
        for (;;) {
            pthread_mutex_lock(&box->lock);
            if (box->count < MAILBOX) {
                box->slots[box->count++] = p;
                pthread_mutex_unlock(&box->lock);
                break;
            }
            pthread_mutex_unlock(&box->lock);
            drain(&mailboxes[self]);
        }
        if (op % 16 == 0)
            drain(&mailboxes[self]);
    }
    atomic_fetch_add(&handoff_done, 1);
    while (atomic_load(&handoff_done) < HANDOFF_THREADS)
        drain(&mailboxes[self]);
    drain(&mailboxes[self]);
    return NULL;
}

static void test_handoff(void)
{
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    pthread_t t[HANDOFF_THREADS];
    for (int i = 0; i < HANDOFF_THREADS; i++)
        pthread_mutex_init(&mailboxes[i].lock, NULL);
    for (int i = 0; i < HANDOFF_THREADS; i++)
        pthread_create(&t[i], NULL, handoff_thread, (void *)(intptr_t)i);
    for (int i = 0; i < HANDOFF_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < HANDOFF_THREADS; i++)
        drain(&mailboxes[i]);
    CHECK(atomic_load(&handoff_corrupt) == 0, "%d blocks corrupted in cross-thread handoff",
          atomic_load(&handoff_corrupt));
    ebb_stats_get(&after);
    CHECK(after.in_use == before.in_use, "every handed-off block was freed: in_use %lu -> %lu",
          (unsigned long)before.in_use, (unsigned long)after.in_use);
    CHECK(after.malloc_calls - before.malloc_calls == (uint64_t)HANDOFF_THREADS * HANDOFF_OPS,
          "malloc calls counted exactly across threads");
    CHECK(after.free_calls - before.free_calls == (uint64_t)HANDOFF_THREADS * HANDOFF_OPS,
          "free calls counted exactly across threads");
}

/* ---- short-lived threads --------------------------------------------------- */

#define SHORT_THREADS 3008 /* a multiple of SHORT_BATCH */
#define SHORT_BATCH 16

static void *short_results[SHORT_THREADS][3];

static void *short_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint32_t seed = (uint32_t)id * 2654435761u + 1;
    /* Churn that the thread cleans up itself (its pages go back at exit)... */
    void *own[64];
    for (int i = 0; i < 64; i++) {
        own[i] = ebb_malloc(16 + rnd(&seed) % 3000);
        memset(own[i], 0x5a, 16);
    }
    for (int i = 0; i < 64; i++)
        ebb_free(own[i]);
    /* ...and blocks it leaves behind, for the main thread to free. */
    for (int k = 0; k < 3; k++) {
        uint32_t size = k == 2 && id % 100 == 0 ? (3u << 20) : 16 + rnd(&seed) % (k ? 70000 : 256);
        void *p = ebb_malloc(size);
        stamp(p, size, (uint32_t)id * 4 + (uint32_t)k);
        short_results[id][k] = p;
    }
    return NULL;
}

static void test_short_lived_threads(void)
{
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    int corrupt = 0;
    for (int base = 0; base < SHORT_THREADS; base += SHORT_BATCH) {
        pthread_t t[SHORT_BATCH];
        for (int i = 0; i < SHORT_BATCH; i++)
            pthread_create(&t[i], NULL, short_thread, (void *)(intptr_t)(base + i));
        for (int i = 0; i < SHORT_BATCH; i++)
            pthread_join(t[i], NULL);
        /* The threads have exited: free what they left. */
        for (int i = 0; i < SHORT_BATCH; i++) {
            for (int k = 0; k < 3; k++) {
                void *p = short_results[base + i][k];
                if (!intact(p))
                    corrupt++;
                ebb_free(p);
            }
        }
    }
    CHECK(corrupt == 0, "%d blocks of exited threads corrupted", corrupt);
    ebb_stats_get(&after);
    CHECK(after.in_use == before.in_use, "all blocks of exited threads freed");
    /* Pages abandoned by exited threads are adopted and reused: thousands
     * of threads must not grow the heap without bound. */
    CHECK(after.mapped < before.mapped + (256u << 20), "mapped grew by %lu MiB over %d threads",
          (unsigned long)((after.mapped - before.mapped) >> 20), SHORT_THREADS);
}

/* ---- threads that only free --------------------------------------------------- */

/* A consumer that never allocates frees what others made: it is given a
 * heap at its first such free (its frees are counted in it), which goes
 * back to the pool at its exit, so thousands of them reuse a few heaps. */
#define FREER_THREADS 512
#define FREER_BATCH 8
#define FREER_BLOCKS 64

static void *freer_blocks[FREER_BATCH][FREER_BLOCKS];
static atomic_int freer_corrupt;

static void *freer_thread(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < FREER_BLOCKS; i++) {
        if (!intact(blocks[i]))
            atomic_fetch_add(&freer_corrupt, 1);
        ebb_free(blocks[i]);
    }
    return NULL;
}

static void test_free_only_threads(void)
{
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    uint32_t seed = 99;
    for (int base = 0; base < FREER_THREADS; base += FREER_BATCH) {
        pthread_t t[FREER_BATCH];
        for (int i = 0; i < FREER_BATCH; i++) {
            for (int k = 0; k < FREER_BLOCKS; k++) {
                uint32_t size = random_size(&seed);
                freer_blocks[i][k] = ebb_malloc(size);
                stamp(freer_blocks[i][k], size, (uint32_t)(base + i) * FREER_BLOCKS + (uint32_t)k);
            }
        }
        for (int i = 0; i < FREER_BATCH; i++)
            pthread_create(&t[i], NULL, freer_thread, freer_blocks[i]);
        for (int i = 0; i < FREER_BATCH; i++)
            pthread_join(t[i], NULL);
    }
    ebb_stats_get(&after);
    CHECK(atomic_load(&freer_corrupt) == 0, "%d blocks corrupted on their way to a freeing thread",
          atomic_load(&freer_corrupt));
    CHECK(after.in_use == before.in_use, "every block freed by the free-only threads");
    CHECK(after.free_calls - before.free_calls == (uint64_t)FREER_THREADS * FREER_BLOCKS,
          "their frees counted exactly: %lu", (unsigned long)(after.free_calls - before.free_calls));
    /* A heap is about 7 KiB: 512 threads keeping theirs would be 3.5 MiB. */
    CHECK(after.metadata < before.metadata + (512u << 10), "metadata grew by %lu KiB over %d free-only threads",
          (unsigned long)((after.metadata - before.metadata) >> 10), FREER_THREADS);
    /* Their frees reached the pages (batches are sent at a thread's exit):
     * once trimmed, nothing of the 32768 blocks stays resident. */
    ebb_malloc_trim(0);
    ebb_stats_get(&after);
    CHECK(after.resident < before.resident + (1u << 20), "resident grew by %lu KiB over %d free-only threads",
          (unsigned long)((after.resident - before.resident) >> 10), FREER_THREADS);
}

/* ---- threads that exit while their heaps are swept ---------------------------- */

/* malloc_trim in a loop sweeps every thread's heap (the handover, heap.c)
 * while threads come and go.  Their stacks are large enough that the C
 * library unmaps each at the thread's exit, so a sweep that read a thread's
 * words after its exit would fault. */
#define EXIT_ROUNDS 1000
#define EXIT_BATCH 4

static atomic_int trimming;

static void *trimmer_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&trimming))
        ebb_malloc_trim(0);
    return NULL;
}

static void *exiting_thread(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 7;
    void *p[32];
    for (int i = 0; i < 32; i++)
        p[i] = ebb_malloc(16 + rnd(&seed) % 2000);
    for (int i = 0; i < 32; i++)
        ebb_free(p[i]);
    /* Idle a moment (a sweep may take the heap), then a last call (which
     * may find it taken) just before the exit. */
    struct timespec pause = {0, (long)(rnd(&seed) % 200) * 1000};
    nanosleep(&pause, NULL);
    ebb_free(ebb_malloc(100));
    return NULL;
}

static void test_exits_during_sweeps(void)
{
    struct ebb_stats before, after;
    ebb_stats_get(&before);
    atomic_store(&trimming, 1);
    pthread_t trimmer;
    pthread_create(&trimmer, NULL, trimmer_thread, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64u << 20);
    int created = 0;
    for (int r = 0; r < EXIT_ROUNDS; r++) {
        pthread_t t[EXIT_BATCH];
        int n = 0;
        for (int i = 0; i < EXIT_BATCH; i++)
            n += pthread_create(&t[n], &attr, exiting_thread, (void *)(uintptr_t)(r * EXIT_BATCH + i)) == 0;
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        created += n;
    }
    pthread_attr_destroy(&attr);
    atomic_store(&trimming, 0);
    pthread_join(trimmer, NULL);
    ebb_stats_get(&after);
    CHECK(created == EXIT_ROUNDS * EXIT_BATCH, "%d of %d threads created", created, EXIT_ROUNDS * EXIT_BATCH);
    CHECK(after.in_use == before.in_use, "every block of the exiting threads freed");
    /* The sweeps ran meanwhile (unless the kernel has no membarrier). */
    CHECK(after.heaps_swept + after.heaps_swept_busy > before.heaps_swept + before.heaps_swept_busy,
          "heaps were swept while threads exited: %lu", (unsigned long)(after.heaps_swept - before.heaps_swept));
}

/* ---- fork while other threads allocate ---------------------------------------- */
#ifndef EBB_TEST_NO_FORK /* TSan does not follow a fork in a threaded program */

static atomic_int fork_stop;

static void *busy_thread(void *arg)
{
    uint32_t seed = (uint32_t)(intptr_t)arg + 7;
    void *slots[128] = {0};
    while (!atomic_load(&fork_stop)) {
        int i = (int)(rnd(&seed) % 128);
        ebb_free(slots[i]);
        slots[i] = ebb_malloc(random_size(&seed) % 5000 + 1);
    }
    for (int i = 0; i < 128; i++)
        ebb_free(slots[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    uint32_t seed = (uint32_t)(intptr_t)arg + 99;
    for (int i = 0; i < 2000; i++) {
        uint32_t size = random_size(&seed);
        void *p = ebb_malloc(size);
        if (p == NULL)
            return (void *)1;
        stamp(p, size, (uint32_t)i);
        if (!intact(p))
            return (void *)1;
        ebb_free(p);
    }
    return NULL;
}

static int child_work(void)
{
    alarm(20); /* a deadlock in the child fails the test instead of hanging it */
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = ebb_malloc((size_t)(i % 300) + 8);
        if (p[i] == NULL)
            return 1;
        stamp(p[i], (uint32_t)(i % 300) + 8, (uint32_t)i);
    }
    for (int i = 0; i < 1000; i++) {
        if (!intact(p[i]))
            return 1;
        ebb_free(p[i]);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, child_thread, (void *)(intptr_t)i) != 0)
            return 1;
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    return bad;
}

static void test_fork_with_threads(void)
{
    pthread_t t[4];
    atomic_store(&fork_stop, 0);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, busy_thread, (void *)(intptr_t)i);
    int failures = 0, last_status = 0;
    for (int round = 0; round < 30; round++) {
        usleep(2000);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_work());
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failures++;
            last_status = status;
        }
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(failures == 0, "%d of 30 forked children failed or hung (last: %s %d)", failures,
          WIFSIGNALED(last_status) ? "signal" : "exit status",
          WIFSIGNALED(last_status) ? WTERMSIG(last_status) : WEXITSTATUS(last_status));
}

/* ---- the program's last thread ends with pthread_exit ------------------------- */

/* The child wakes the allocator's service thread (a big block, then a
 * slow path), and its threads end with pthread_exit, the main thread
 * first: the process must end with them, status 0 (the service thread
 * must not keep it alive, where no signal but SIGKILL could end it). */
static void *last_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        ebb_free(ebb_malloc(1000));
    usleep(50000);
    return NULL;
}

static void wake_service(void)
{
    void *big = ebb_malloc(5u << 20);
    memset(big, 1, 4096);
    ebb_free(big);
    ebb_free(ebb_malloc(100000));
}

static void *forking_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        /* The child's only thread, and so its main thread: it returns. */
        wake_service();
        return NULL;
    }
    return (void *)(intptr_t)pid;
}

/* Waits up to 10 s for the child; true if it exited with status 0. */
static int ended_well(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

/* A thread's batches of remote frees go to their pages when it exits:
 * in a fresh process, blocks freed by a thread that then exits come back
 * to their owner's malloc once its page's other blocks are used up. */
#define BATCHED_BLOCKS 20 /* fewer than a batch sends at once */

static void *free_some(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < BATCHED_BLOCKS; i++)
        ebb_free(blocks[i]);
    return NULL;
}

static void test_batches_sent_at_exit(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        void *blocks[BATCHED_BLOCKS];
        for (int i = 0; i < BATCHED_BLOCKS; i++)
            blocks[i] = ebb_malloc(64);
        pthread_t t;
        pthread_create(&t, NULL, free_some, blocks);
        pthread_join(t, NULL);
        for (int n = 0; n < 2048; n++) {
            void *p = ebb_malloc(64);
            for (int i = 0; i < BATCHED_BLOCKS; i++)
                if (p == blocks[i])
                    _exit(0);
        }
        _exit(1);
    }
    CHECK(ended_well(pid), "blocks freed by a thread that exited came back to their owner");
}

static void test_last_thread_exits(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        wake_service();
        pthread_t t;
        pthread_create(&t, NULL, last_thread, NULL);
        pthread_exit(NULL);
    }
    CHECK(ended_well(pid), "a process whose main thread ends with pthread_exit ends with its last thread");
    pthread_t t;
    void *child = NULL;
    pthread_create(&t, NULL, forking_thread, NULL);
    pthread_join(t, &child);
    CHECK(child != NULL && ended_well((pid_t)(intptr_t)child),
          "a child forked by a thread ends when that thread returns");
}
#endif

int main(void)
{
    register_own_frames();
    test_handoff();
    test_short_lived_threads();
    test_free_only_threads();
    test_exits_during_sweeps();
#ifndef EBB_TEST_NO_FORK
    test_fork_with_threads();
    test_last_thread_exits();
    test_batches_sent_at_exit();
#endif
    return check_summary();
}
