/* The service thread ("ebb-reclaim"): reclamation for a program that does
 * not call the allocator, and the statistics page of the ebb command.
 *
 * It sleeps on the ledger's doorbell (account.c) until the earliest of:
 *   - the reclamation deadline: a pass (reclaim.c) gives back what is due;
 *   - its next look, every eighth of a delay while freed memory is kept:
 *     the policy reads the limits and pressure, and whether the program
 *     made an allocator call in the last half delay (the sum of the
 *     threads' counters, stats.c): if not, the program went idle and gets
 *     everything back;
 *   - the next rewrite of the statistics page (publish.c), with EBB_PUBLISH.
 * It never spins: a deadline still past after a pass (another thread's
 * pass held the lock) is not looked at again for a sixteenth of a delay.
 * It never keeps the process alive: once the main thread has ended with
 * pthread_exit, it ends itself when it is the last thread left.
 *
 * Started by the first malloc slow path after something was mapped that
 * may one day be reclaimed (ebbi_service_wanted, account.c), never from
 * inside free or a pass, where the C library may hold locks that creating
 * a thread takes; by the library's constructor when it publishes; again in
 * a forked child when wanted.  It blocks every signal.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>

#include "internal.h"

#define NEVER EBBI_NEVER

enum { THREAD_NONE, THREAD_STARTING, THREAD_RUNNING, THREAD_FAILED };

static _Atomic(int) thread_state;
static __thread bool starting_here;

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void *service_main(void *arg)
{
    (void)arg;
    ebbi_doorbell_listen();
    uint64_t next_publish = 0, next_look = NEVER, not_before = 0;
    /* The program's calls: the counters' sum, and since when it has not
     * moved; one idle pass per idle stretch. */
    uint64_t activity = 0, activity_since = 0;
    bool idle_served = false;
    /* After the main thread's pthread_exit: how soon to look again whether
     * the program has a thread left (from 1 ms after a thread ended, backing
     * off to about 100 ms: a thread that never allocated does not ring). */
    uint64_t alone_step = 0, exits_seen = 0;
    for (;;) {
        uint64_t now = ebbi_os_now_ns();
        if (ebbi_doorbell_main_gone()) {
            /* The program's last thread gone, the process would live on for
             * this thread alone (and no signal could end it: it blocks them
             * all).  Ending it ends the process, as it would have ended.
             * The count holds the main thread, a zombie until the last
             * thread ends, and this one. */
            if (ebbi_os_thread_count() <= 2)
                return NULL;
            uint64_t exits = ebbi_doorbell_exits();
            if (alone_step == 0 || exits != exits_seen)
                alone_step = 1000000u; /* it may take a moment to be gone */
            else if (alone_step < 100000000u)
                alone_step *= 2;
            exits_seen = exits;
        }
        uint64_t delay = ebbi_delay_ns();
        uint64_t publish = ebbi_publish_interval_ns();
        if (publish != 0 && now >= next_publish) {
            ebbi_publish_now(EBBI_PUBLISH_UPDATE);
            next_publish = now + publish;
        }
        bool background = ebbi_option(EBB_OPTION_BACKGROUND) != 0;
        uint64_t due = background ? ebbi_load_relaxed(&ebbi_due_ns) : NEVER;
        if (due <= now && now >= not_before) {
            ebbi_reclaim_now(false);
            uint64_t after = ebbi_os_now_ns();
            not_before = ebbi_load_relaxed(&ebbi_due_ns) <= after ? after + delay / 16 + 1000000u : 0;
            continue;
        }
        if (background && next_look == NEVER && ebbi_reclaim_waiting())
            next_look = now + delay / LOOKS_PER_DELAY;
        if (next_look != NEVER && now >= next_look) {
            uint64_t a = ebbi_stats_activity();
            if (a != activity) {
                activity = a;
                activity_since = now;
                idle_served = false;
            }
            bool idle = !idle_served && now - activity_since >= delay / 2;
            if (idle)
                idle_served = true;
            next_look = ebbi_reclaim_look(now, idle);
            continue;
        }
        uint64_t wake = earliest(due < not_before ? not_before : due, next_look);
        if (publish != 0)
            wake = earliest(wake, next_publish);
        if (alone_step != 0)
            wake = earliest(wake, now + alone_step);
        ebbi_doorbell_wait(wake, now, background && now >= not_before);
    }
    return NULL;
}

void ebbi_service_start(void)
{
    ebbi_store_relaxed(&ebbi_service_wanted, false);
    int expected = THREAD_NONE;
    if (starting_here || !ebbi_cas_strong_seq_cst(&thread_state, &expected, THREAD_STARTING))
        return;
    starting_here = true; /* creating a thread allocates: no second try from in there */
    bool started = ebbi_os_thread_start(service_main, "ebb-reclaim");
    starting_here = false;
    if (!started) {
        /* For good: the slow paths reclaim instead. */
        ebbi_store_release(&thread_state, THREAD_FAILED);
        return;
    }
    ebbi_store_release(&thread_state, THREAD_RUNNING);
}

/* fork: the child has no service thread; the first wish starts one. */
void ebbi_service_fork_child(void)
{
    ebbi_store_relaxed(&thread_state, THREAD_NONE);
    starting_here = false;
}
