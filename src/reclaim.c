/* Reclamation policy: when freed memory goes back to the kernel.
 *
 * Memory that is freed becomes "freed, not reclaimed": free spans in the
 * arenas, threads' parked pages, the huge-block cache.  It is reclaimed —
 * decommitted, unmapped, or the program break moved down — once it has
 * stayed free for EBB_RECLAIM_DELAY_MS, or at once (oldest first) when the
 * reclaimable total passes EBB_RETAIN_MAX.  Memory reused within the delay
 * is never given back, so a program with a steady footprint pays nothing.
 *
 * Who reclaims: the allocator's slow paths, when the earliest deadline has
 * passed (ebbi_reclaim_tick), and, for a program that goes idle, a
 * background thread started the first time there is something to reclaim
 * (EBB_BACKGROUND=0 turns it off).  EBB_RETAIN_MIN stays for a program that
 * keeps allocating; the background thread gives it back too once the
 * program has made no allocator call for half a delay.  malloc_trim(0)
 * reclaims everything at once.
 *
 * Mechanisms live below: arena.c (spans), huge.c (the cache), heap.c (the
 * parked pages), source.c (the break).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "internal.h"

#define NEVER EBBI_RECLAIM_NEVER
#define EPOCH_RING 64

/* The earliest time something becomes due; NEVER if none. */
_Atomic(uint64_t) ebbi_reclaim_due_ns = NEVER;
/* Passes begun (the stamp of parked pages). */
_Atomic(uint64_t) ebbi_reclaim_epoch;

static struct {
    _Atomic(uint64_t) reclaimed_total;
    _Atomic(int64_t) reclaimable;    /* free spans' touched bytes, huge cache (not parked pages) */
    _Atomic(int) busy;               /* one reclaimer at a time (the others skip) */
    _Atomic(uint64_t) generation;    /* counts notifies (recompute_due) */
    /* The background thread. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic(int) thread_state;       /* 0 none, 1 starting, 2 running */
    bool cond_ready;
    /* The idle pass (background thread only): when a pass has left the
     * EBB_RETAIN_MIN floor, the thread looks again half a delay later, and
     * if the program made no allocator call in between it gives the floor
     * back too.  The floor is for a program that keeps allocating. */
    uint64_t idle_due_ns;
    uint64_t activity_mark;
    /* Parked pages (heap.c) are stamped with the pass count, not a clock
     * reading (a loop that parks and unparks a page must stay cheap): a
     * page stamped e was parked before pass e+1 began, at epoch_start. */
    uint64_t epoch_start_ns[EPOCH_RING];
} rc = {.lock = PTHREAD_MUTEX_INITIALIZER, .idle_due_ns = NEVER};

uint64_t ebbi_reclaim_delay_ns(void)
{
    return (uint64_t)ebbi_option(EBB_OPTION_RECLAIM_DELAY_MS) * 1000000u;
}

void ebbi_reclaimed_add(size_t bytes)
{
    if (bytes > 0)
        ebbi_fetch_add_relaxed(&rc.reclaimed_total, bytes);
}

uint64_t ebbi_reclaimed_total(void)
{
    return ebbi_load_relaxed(&rc.reclaimed_total);
}

/* Free memory the allocator could give back now: free spans with touched
 * memory, the huge cache.  (Parked pages, at most one per class and
 * thread, are left out: counting them would cost the loop that parks and
 * unparks a page an atomic add each time.) */
uint64_t ebbi_reclaimable_bytes(void)
{
    int64_t v = ebbi_load_relaxed(&rc.reclaimable);
    return v > 0 ? (uint64_t)v : 0;
}

void ebbi_reclaimable_add(int64_t delta)
{
    ebbi_fetch_add_relaxed(&rc.reclaimable, delta);
}

static void due_at_most(uint64_t due)
{
    uint64_t cur = ebbi_load_relaxed(&ebbi_reclaim_due_ns);
    while (due < cur && !atomic_compare_exchange_weak(&ebbi_reclaim_due_ns, &cur, due))
        ;
}

/* When memory freed at `freed_at` is due, after a pass that started at
 * `start` (and took what was freed before start - delay). */
static uint64_t due_of(uint64_t freed_at, uint64_t start, uint64_t delay)
{
    if (freed_at == 0)
        return NEVER;
    /* Due before the pass began, yet still here: the pass kept it as the
     * EBB_RETAIN_MIN floor, and frees since have raised the total above it.
     * Two delays after the pass began, not at once: else a thread that keeps freeing
     * around the floor would have the reclaimer purge the pages it is
     * about to reuse, pass after pass.  (What became due during the pass
     * is due now.) */
    return freed_at + delay > start ? freed_at + delay : start + 2 * delay;
}

/* The earliest deadline after a pass, from what is left.  A notify during
 * the scan may have set an earlier one: the generation says so, and then
 * the earlier stays. */
static void recompute_due(uint64_t generation, uint64_t keep, uint64_t start)
{
    uint64_t delay = ebbi_reclaim_delay_ns();
    uint64_t due = NEVER;
    if (ebbi_reclaimable_bytes() > keep) {
        for (unsigned i = 0; i < ebbi_process.arena_count; i++) {
            uint64_t t = due_of(ebbi_arena_oldest_dirty_ns(&ebbi_arenas[i]), start, delay);
            if (t < due)
                due = t;
        }
        uint64_t t = due_of(ebbi_huge_oldest_cached_ns(), start, delay);
        if (t < due)
            due = t;
    }
    uint64_t cur = ebbi_load_relaxed(&ebbi_reclaim_due_ns);
    for (;;) {
        uint64_t want = due;
        if (ebbi_load_acquire(&rc.generation) != generation && cur < want)
            want = cur;
        if (atomic_compare_exchange_weak(&ebbi_reclaim_due_ns, &cur, want))
            break;
    }
    /* Parked pages are looked at after the deadline is set: a page parked
     * meanwhile is either seen here or sees the deadline (heap.c, page_park). */
    due_at_most(due_of(ebbi_heaps_oldest_parked_ns(start), start, delay));
}

/* One pass: give back what has waited `delay` (everything with `all`), and
 * the oldest of the rest while the reclaimable total is over its bound.
 * `floor`: EBB_RETAIN_MIN may stay. */
static size_t reclaim_pass(uint64_t now, bool all, bool floor)
{
    uint64_t epoch = ebbi_load_relaxed(&ebbi_reclaim_epoch) + 1;
    rc.epoch_start_ns[epoch % EPOCH_RING] = now;
    ebbi_store_release(&ebbi_reclaim_epoch, epoch);
    uint64_t generation = ebbi_load_acquire(&rc.generation);
    uint64_t delay = ebbi_reclaim_delay_ns();
    /* What was freed at now - delay or before has waited the delay.  The
     * cutoff is exclusive, and one past that: what stays was freed later,
     * so its deadline is after this pass (due_of tells it from the floor;
     * the coarse clock makes frees and passes share ticks). */
    uint64_t cutoff = all ? NEVER : (now > delay ? now - delay + 1 : 0);
    /* EBB_RETAIN_MIN (mallopt's M_TOP_PAD): that much may stay. */
    uint64_t keep = (all || !floor) ? 0 : (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MIN);
    /* Parked pages, whatever the floor: a thread's page per class. */
    size_t given = ebbi_heaps_purge_parked(cutoff, now);
    if (ebbi_reclaimable_bytes() > keep)
        given += ebbi_huge_expire(cutoff);
    for (unsigned i = 0; i < ebbi_process.arena_count; i++) {
        ebbi_arena_sweep_abandoned(&ebbi_arenas[i]);
        given += ebbi_arena_purge(&ebbi_arenas[i], cutoff, 0, keep);
    }
    uint64_t retained = ebbi_reclaimable_bytes();
    uint64_t max = (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX);
    for (unsigned i = 0; retained > max && i < ebbi_process.arena_count; i++) {
        given += ebbi_arena_purge(&ebbi_arenas[i], 0, (size_t)(retained - max), 0);
        retained = ebbi_reclaimable_bytes();
    }
    if (retained > max)
        given += ebbi_huge_expire(NEVER);
    recompute_due(generation, keep, now);
    return given;
}

/* A pass that runs out of memory must not wait for itself (OOM retry). */
static __thread bool in_pass;

/* `wait`: wait for a pass under way to end rather than skip (malloc_trim,
 * and the EBB_RETAIN_MAX bound, which must hold when the free returns). */
static size_t reclaim_now(bool all, bool floor, bool wait)
{
    if (!ebbi_process_ready() || in_pass)
        return 0;
    int expected = 0;
    if (!wait && !atomic_compare_exchange_strong(&rc.busy, &expected, 1))
        return 0; /* someone else is at it */
    if (wait) {
        while (!atomic_compare_exchange_weak(&rc.busy, &expected, 1)) {
            expected = 0;
            ebbi_os_yield();
        }
        if (!all && ebbi_reclaimable_bytes() <= (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX)) {
            ebbi_store_release(&rc.busy, 0); /* the pass we waited for did it */
            return 0;
        }
    }
    in_pass = true;
    size_t given = reclaim_pass(ebbi_os_now_ns(), all, floor);
    in_pass = false;
    ebbi_store_release(&rc.busy, 0);
    return given;
}

size_t ebbi_reclaim_now(bool all)
{
    return reclaim_now(all, true, all);
}

/* ---- the background thread ------------------------------------------------ */

static void *reclaim_thread(void *arg)
{
    (void)arg;
    /* It takes no signal meant for the program. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    uint64_t next_publish = 0;
    /* After a pass that left a deadline in the past (another reclaimer held
     * the pass, or what is due could not be taken yet), not again before
     * this: the thread must never spin. */
    uint64_t not_before = 0;
    pthread_mutex_lock(&rc.lock);
    for (;;) {
        /* Also the publisher of the statistics page, when there is one. */
        uint64_t now = ebbi_os_now_ns();
        uint64_t publish = ebbi_publish_interval_ns();
        if (publish != 0 && now >= next_publish) {
            pthread_mutex_unlock(&rc.lock);
            ebbi_publish_now(false);
            pthread_mutex_lock(&rc.lock);
            next_publish = now + publish;
        }
        uint64_t due = ebbi_option(EBB_OPTION_BACKGROUND) ? ebbi_load_relaxed(&ebbi_reclaim_due_ns) : NEVER;
        if (rc.idle_due_ns < due)
            due = rc.idle_due_ns;
        /* Last: a past idle deadline must not undercut it, or the thread
         * spins on the pass deadline while another thread's pass holds
         * `busy` (seen under valgrind, where a pass lasts long). */
        if (due < not_before)
            due = not_before;
        if (publish != 0 && next_publish < due && now < due)
            due = next_publish;
        if (due == NEVER) {
            pthread_cond_wait(&rc.wake, &rc.lock);
            continue;
        }
        if (now < due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = due - now;
            ts.tv_sec += (time_t)(wait / 1000000000u);
            ts.tv_nsec += (long)(wait % 1000000000u);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&rc.wake, &rc.lock, &ts);
            continue;
        }
        if (ebbi_load_relaxed(&ebbi_reclaim_due_ns) <= now) {
            pthread_mutex_unlock(&rc.lock);
            ebbi_reclaim_now(false);
            uint64_t mark = ebbi_reclaimable_bytes() > 0 ? ebbi_stats_activity() : 0;
            uint64_t after = ebbi_os_now_ns();
            not_before = ebbi_load_relaxed(&ebbi_reclaim_due_ns) <= after ? after + ebbi_reclaim_delay_ns() / 16 + 1000000u : 0;
            pthread_mutex_lock(&rc.lock);
            if (mark != 0) {
                /* The floor stayed: look again in half a delay. */
                rc.activity_mark = mark;
                rc.idle_due_ns = now + ebbi_reclaim_delay_ns() / 2 + 1;
            }
        } else if (rc.idle_due_ns <= now) {
            rc.idle_due_ns = NEVER;
            pthread_mutex_unlock(&rc.lock);
            if (ebbi_reclaimable_bytes() > 0 && ebbi_stats_activity() == rc.activity_mark)
                reclaim_now(false, false, false);
            pthread_mutex_lock(&rc.lock);
        }
    }
    return NULL;
}

enum { THREAD_NONE, THREAD_STARTING, THREAD_RUNNING, THREAD_FAILED };

/* Wanted by ebbi_reclaim_notify, started by the next malloc slow path
 * (never from inside free, collection or a reclamation pass, where the C
 * library may hold locks that creating a thread takes). */
_Atomic(bool) ebbi_reclaim_thread_wanted;
static __thread bool starting_here;

void ebbi_reclaim_start_thread(void)
{
    ebbi_store_relaxed(&ebbi_reclaim_thread_wanted, false);
    int expected = THREAD_NONE;
    if (starting_here || in_pass || !atomic_compare_exchange_strong(&rc.thread_state, &expected, THREAD_STARTING))
        return;
    starting_here = true; /* creating a thread allocates: no second try from in there */
    if (!rc.cond_ready) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&rc.wake, &attr);
        pthread_condattr_destroy(&attr);
        rc.cond_ready = true;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&t, &attr, reclaim_thread, NULL);
    pthread_attr_destroy(&attr);
    starting_here = false;
    if (failed) {
        /* For good: the slow paths reclaim instead. */
        ebbi_store_release(&rc.thread_state, THREAD_FAILED);
        return;
    }
    pthread_setname_np(t, "ebb-reclaim");
    ebbi_store_release(&rc.thread_state, THREAD_RUNNING);
}

/* The program holds memory that could one day be reclaimed (a second
 * segment, a huge block): have the service thread started by the next
 * malloc slow path, before the frees come, so that a program that frees
 * and then goes idle is served too. */
void ebbi_reclaim_wish_thread(void)
{
    if (ebbi_load_relaxed(&rc.thread_state) == THREAD_NONE && ebbi_option(EBB_OPTION_BACKGROUND) &&
        ebbi_load_acquire(&ebbi_process.started))
        ebbi_store_relaxed(&ebbi_reclaim_thread_wanted, true);
}

/* Something became reclaimable at `now` (no lock of ours is held). */
void ebbi_reclaim_notify(uint64_t now)
{
    uint64_t due = now + ebbi_reclaim_delay_ns();
    uint64_t before = ebbi_load_relaxed(&ebbi_reclaim_due_ns);
    if (due < before)
        due_at_most(due);
    ebbi_fetch_add_relaxed(&rc.generation, 1);
    if (ebbi_reclaimable_bytes() > (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX)) {
        reclaim_now(false, true, true);
        return;
    }
    if (!ebbi_option(EBB_OPTION_BACKGROUND) || !ebbi_load_acquire(&ebbi_process.started))
        return;
    int state = ebbi_load_acquire(&rc.thread_state);
    if (state == THREAD_NONE)
        ebbi_store_relaxed(&ebbi_reclaim_thread_wanted, true);
    else if (state == THREAD_RUNNING && due < before) {
        /* The thread sleeps without a deadline, or a later one: wake it. */
        pthread_mutex_lock(&rc.lock);
        pthread_cond_signal(&rc.wake);
        pthread_mutex_unlock(&rc.lock);
    }
}

/* A pass (busy held): by when a page stamped `epoch` was parked, at the
 * latest (≥ 1). */
uint64_t ebbi_reclaim_parked_by(uint64_t epoch, uint64_t now)
{
    uint64_t current = ebbi_load_relaxed(&ebbi_reclaim_epoch);
    if (epoch >= current)
        return now;
    if (current - epoch >= EPOCH_RING)
        return 1;
    return rc.epoch_start_ns[(epoch + 1) % EPOCH_RING];
}

/* Slow paths call this: reclaim if a deadline has passed. */
void ebbi_reclaim_tick(void)
{
    uint64_t due = ebbi_load_relaxed(&ebbi_reclaim_due_ns);
    if (due != NEVER && ebbi_os_now_ns() >= due)
        ebbi_reclaim_now(false);
}

/* fork: the child has no background thread; the first notify starts one. */
/* A pass in progress holds spans outside the bins: the fork waits for it
 * to end, so the child has them all. */
void ebbi_reclaim_fork_prepare(void)
{
    int expected = 0;
    while (!atomic_compare_exchange_weak(&rc.busy, &expected, 1)) {
        expected = 0;
        ebbi_os_yield();
    }
    pthread_mutex_lock(&rc.lock);
}

void ebbi_reclaim_fork_parent(void)
{
    pthread_mutex_unlock(&rc.lock);
    ebbi_store_release(&rc.busy, 0);
}

void ebbi_reclaim_fork_child(void)
{
    pthread_mutex_init(&rc.lock, NULL);
    if (rc.cond_ready) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&rc.wake, &attr);
        pthread_condattr_destroy(&attr);
    }
    ebbi_store_relaxed(&rc.thread_state, THREAD_NONE);
    ebbi_store_relaxed(&rc.busy, 0);
    rc.idle_due_ns = NEVER;
    in_pass = false;
    starting_here = false;
}
