/* The ledger: how many bytes are in each state of reclamation, and what
 * the policy (reclaim.c) needs to know about demand.
 *
 * It sits below the layers that hold freed memory (arena.c, heap.c,
 * huge.c): they report here what they take, free and give back, and read
 * the deadline; it calls nothing but the os layer's clock and, as the one
 * way up, ebbi_reclaim_notify (reclaim.c), with an event saying why:
 *
 *   EBBI_EVENT_OVER      the reclaimable total passed the bound: give back
 *                        the oldest now;
 *   EBBI_EVENT_DUE       a slow path found the deadline passed;
 *   EBBI_EVENT_GROWING   a pool is about to take fresh memory under a
 *                        memory limit that it would pass;
 *   EBBI_EVENT_OUT_OF_MEMORY  the kernel refused memory: give back
 *                        everything, then the caller tries once more.
 *
 * Pools are the memory the policy keeps or gives back as one: the arenas'
 * free spans (EBBI_POOL_SPANS) and the huge-block cache (EBBI_POOL_HUGE).
 * For each pool:
 *   live         bytes taken from it and not yet given back to it (the
 *                slices of pages in use; the mappings of live huge blocks);
 *   peak, peak_ns, trough  the highest `live` since the policy last
 *                closed an epoch, when it was reached, and the lowest (the
 *                prediction's input);
 *   last_take_ns when something was last taken from it;
 *   reclaimable  freed bytes it holds resident, waiting to be reused or
 *                reclaimed.
 *
 * Refaults: a pass that gives memory back because nothing predicted its
 * reuse adds what it gave to a credit (the policy halves it every epoch);
 * fresh memory taken from a pool afterwards consumes the credit, and what
 * it consumes counts as refaulted: memory given back, then needed again.
 *
 * The doorbell: the service thread (service.c) sleeps on it until its next
 * deadline; a free that sets an earlier deadline rings it.  It lives here,
 * below both, so that waking the thread is not a call up.
 *
 * Everything else here is an atomic counter, read and written without a lock,
 * from the slow paths of any thread; nothing is on a fast path.
 */
#include <time.h>

#include "internal.h"

typedef struct {
    _Atomic(uint64_t) live;
    _Atomic(uint64_t) peak;
    _Atomic(uint64_t) trough;
    _Atomic(uint64_t) peak_ns;
    _Atomic(uint64_t) last_take_ns;
    _Atomic(int64_t) reclaimable;
} pool_ledger_t;

static struct {
    pool_ledger_t pools[EBBI_POOLS];
    _Atomic(uint64_t) reclaimed_total;
    _Atomic(uint64_t) refault_credit;
    _Atomic(uint64_t) refaulted_total;
    _Atomic(uint64_t) taken_total;     /* bytes taken from the pools since the start */
    _Atomic(uint64_t) bound;           /* the policy's cap on reclaimable bytes */
    _Atomic(uint64_t) generation;      /* counts deadlines set (ebbi_account_freed) */
    _Atomic(uint64_t) last_call_ns;    /* the last slow-path event seen here */
    _Atomic(uint64_t) growth_budget;   /* fresh bytes before the limit must be looked at */
    _Atomic(uint64_t) sparse_due;      /* when abandoned pages next have work (NEVER: none) */
    uint64_t pass_started_ns[EBBI_EPOCH_RING];
} ledger = {.bound = UINT64_MAX, .growth_budget = UINT64_MAX, .sparse_due = UINT64_MAX};

_Atomic(uint64_t) ebbi_due_ns = EBBI_NEVER;
_Atomic(uint64_t) ebbi_pass_epoch;
_Atomic(bool) ebbi_service_wanted;

/* ---- pools ---------------------------------------------------------------- */

void ebbi_account_take(ebbi_pool_t pool, uint64_t bytes, uint64_t fresh)
{
    pool_ledger_t *p = &ledger.pools[pool];
    ebbi_fetch_add_relaxed(&ledger.taken_total, bytes);
    uint64_t live = ebbi_fetch_add_relaxed(&p->live, bytes) + bytes;
    if (live > EBB_SERVICE_AFTER)
        ebbi_account_mapped();
    uint64_t now = ebbi_os_now_ns();
    ebbi_store_relaxed(&p->last_take_ns, now);
    uint64_t peak = ebbi_load_relaxed(&p->peak);
    if (live > peak) {
        while (live > peak && !ebbi_cas_weak_seq_cst(&p->peak, &peak, live))
            ;
        ebbi_store_relaxed(&p->peak_ns, now);
    }
    if (fresh == 0)
        return;
    /* Fresh memory (page faults to come) right after a pass gave some
     * back: a refault, as far as the credit goes. */
    uint64_t credit = ebbi_load_relaxed(&ledger.refault_credit);
    while (credit > 0) {
        uint64_t used = credit < fresh ? credit : fresh;
        if (ebbi_cas_weak_seq_cst(&ledger.refault_credit, &credit, credit - used)) {
            ebbi_fetch_add_relaxed(&ledger.refaulted_total, used);
            break;
        }
    }
    /* Under a memory limit, growth is looked at once the budget the policy
     * left is spent. */
    uint64_t budget = ebbi_load_relaxed(&ledger.growth_budget);
    if (budget != UINT64_MAX) {
        if (budget < fresh || !ebbi_cas_strong_seq_cst(&ledger.growth_budget, &budget, budget - fresh))
            ebbi_reclaim_notify(EBBI_EVENT_GROWING, fresh);
    }
}

void ebbi_account_give(ebbi_pool_t pool, uint64_t bytes)
{
    pool_ledger_t *p = &ledger.pools[pool];
    uint64_t live = ebbi_fetch_sub_relaxed(&p->live, bytes) - bytes;
    uint64_t trough = ebbi_load_relaxed(&p->trough);
    while (live < trough && !ebbi_cas_weak_seq_cst(&p->trough, &trough, live))
        ;
}

uint64_t ebbi_account_last_take_ns(ebbi_pool_t pool)
{
    return ebbi_load_relaxed(&ledger.pools[pool].last_take_ns);
}

uint64_t ebbi_account_live(ebbi_pool_t pool)
{
    int64_t v = (int64_t)ebbi_load_relaxed(&ledger.pools[pool].live);
    return v > 0 ? (uint64_t)v : 0;
}

uint64_t ebbi_account_close_peak(ebbi_pool_t pool, uint64_t now_ns, uint64_t *peak_ns, uint64_t *trough)
{
    pool_ledger_t *p = &ledger.pools[pool];
    *peak_ns = ebbi_load_relaxed(&p->peak_ns);
    uint64_t live = ebbi_account_live(pool);
    uint64_t peak = ebbi_exchange_acq_rel(&p->peak, live);
    *trough = ebbi_exchange_acq_rel(&p->trough, live);
    if (*trough > peak)
        *trough = peak;
    ebbi_store_relaxed(&p->peak_ns, now_ns);
    return peak;
}

void ebbi_account_reclaimable(ebbi_pool_t pool, int64_t delta)
{
    ebbi_fetch_add_relaxed(&ledger.pools[pool].reclaimable, delta);
}

uint64_t ebbi_account_pool_reclaimable(ebbi_pool_t pool)
{
    int64_t v = ebbi_load_relaxed(&ledger.pools[pool].reclaimable);
    return v > 0 ? (uint64_t)v : 0;
}

/* Free memory the allocator could give back now: free spans with touched
 * memory, the huge cache.  (Parked pages, at most one per class and
 * thread, are left out: counting them would cost the loop that parks and
 * unparks a page an atomic add each time.) */
uint64_t ebbi_account_reclaimable_bytes(void)
{
    return ebbi_account_pool_reclaimable(EBBI_POOL_SPANS) + ebbi_account_pool_reclaimable(EBBI_POOL_HUGE);
}

/* ---- reclaimed memory and refaults ------------------------------------------- */

void ebbi_account_reclaimed(size_t bytes)
{
    if (bytes > 0)
        ebbi_fetch_add_relaxed(&ledger.reclaimed_total, bytes);
}

uint64_t ebbi_account_reclaimed_total(void)
{
    return ebbi_load_relaxed(&ledger.reclaimed_total);
}

void ebbi_account_credit(uint64_t bytes)
{
    if (bytes > 0)
        ebbi_fetch_add_relaxed(&ledger.refault_credit, bytes);
}

void ebbi_account_decay_credit(void)
{
    uint64_t credit = ebbi_load_relaxed(&ledger.refault_credit);
    while (credit > 0 && !ebbi_cas_weak_seq_cst(&ledger.refault_credit, &credit, credit / 2))
        ;
}

uint64_t ebbi_account_refaulted_total(void)
{
    return ebbi_load_relaxed(&ledger.refaulted_total);
}

uint64_t ebbi_account_taken_total(void)
{
    return ebbi_load_relaxed(&ledger.taken_total);
}

/* ---- the bound, the growth budget ---------------------------------------- */

void ebbi_account_set_bound(uint64_t bytes)
{
    ebbi_store_relaxed(&ledger.bound, bytes);
}

uint64_t ebbi_account_bound(void)
{
    uint64_t bound = ebbi_load_relaxed(&ledger.bound);
    uint64_t max = (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX);
    return bound < max ? bound : max;
}

void ebbi_account_set_growth_budget(uint64_t bytes)
{
    ebbi_store_relaxed(&ledger.growth_budget, bytes);
}

/* ---- deadlines -------------------------------------------------------------- */

static void due_at_most(uint64_t due)
{
    uint64_t cur = ebbi_load_relaxed(&ebbi_due_ns);
    while (due < cur && !ebbi_cas_weak_seq_cst(&ebbi_due_ns, &cur, due))
        ;
}

void ebbi_account_due_at_most(uint64_t due)
{
    due_at_most(due);
}

/* Abandoned pages (arena.c) hold free memory the sweep has not looked at:
 * a page was abandoned (`sparse_at_most`, from any thread), or a pass
 * found some (`sparse_set`, the pass's own reckoning). */
void ebbi_account_sparse_at_most(uint64_t due)
{
    uint64_t cur = ebbi_load_relaxed(&ledger.sparse_due);
    while (due < cur && !ebbi_cas_weak_seq_cst(&ledger.sparse_due, &cur, due))
        ;
    /* The first such page wakes the service thread, which then looks
     * until the sweep is done; a thread exit each millisecond does not
     * wake it each time. */
    if (cur == EBBI_NEVER && due != EBBI_NEVER)
        ebbi_doorbell_ring();
}

void ebbi_account_sparse_set(uint64_t due)
{
    ebbi_store_relaxed(&ledger.sparse_due, due);
}

uint64_t ebbi_account_sparse_due(void)
{
    return ebbi_load_relaxed(&ledger.sparse_due);
}

uint64_t ebbi_account_generation(void)
{
    return ebbi_load_acquire(&ledger.generation);
}

uint64_t ebbi_account_last_call_ns(void)
{
    return ebbi_load_relaxed(&ledger.last_call_ns);
}

/* The program holds more than EBB_SERVICE_AFTER in pages and freed
 * memory: the service thread may have work one day (config.h). */
static bool held_beyond_floor(void)
{
    uint64_t held = ebbi_account_reclaimable_bytes();
    for (unsigned p = 0; p < EBBI_POOLS; p++)
        held += ebbi_load_relaxed(&ledger.pools[p].live);
    return held > EBB_SERVICE_AFTER;
}

/* Something became reclaimable at `now` (no lock of ours is held). */
void ebbi_account_freed(uint64_t now)
{
    uint64_t due = now + ebbi_delay_ns();
    uint64_t before = ebbi_load_relaxed(&ebbi_due_ns);
    if (due < before)
        due_at_most(due);
    ebbi_fetch_add_relaxed(&ledger.generation, 1);
    ebbi_store_relaxed(&ledger.last_call_ns, now);
    if (held_beyond_floor())
        ebbi_account_mapped(); /* no service thread yet (a forked child): wanted */
    if (due < before)
        ebbi_doorbell_ring();
    if (ebbi_account_reclaimable_bytes() > ebbi_account_bound())
        ebbi_reclaim_notify(EBBI_EVENT_OVER, 0);
}

/* Slow paths call this: the policy runs a pass if a deadline has passed. */
void ebbi_account_tick(void)
{
    uint64_t due = ebbi_load_relaxed(&ebbi_due_ns);
    if (due == EBBI_NEVER)
        return;
    uint64_t now = ebbi_os_now_ns();
    if (now >= due)
        ebbi_reclaim_notify(EBBI_EVENT_DUE, 0);
    ebbi_store_relaxed(&ledger.last_call_ns, now);
}

/* The program holds memory that could one day be reclaimed (pages beyond
 * EBB_SERVICE_AFTER, a huge block): the service thread is wanted, and the next
 * malloc slow path starts it (alloc.c), before the frees come, so that a
 * program that frees and then goes idle is served too. */
void ebbi_account_mapped(void)
{
    if (!ebbi_load_relaxed(&ebbi_service_wanted) && !ebbi_doorbell_listening() &&
        ebbi_option(EBB_OPTION_BACKGROUND) && ebbi_load_acquire(&ebbi_process.started))
        ebbi_store_relaxed(&ebbi_service_wanted, true);
}

/* ---- passes ---------------------------------------------------------------- */

/* Parked pages (heap.c) are stamped with the pass count, not a clock
 * reading (a loop that parks and unparks a page must stay cheap): a page
 * stamped e was parked before pass e+1 began. */
uint64_t ebbi_account_pass_begin(uint64_t now)
{
    uint64_t epoch = ebbi_load_relaxed(&ebbi_pass_epoch) + 1;
    ledger.pass_started_ns[epoch % EBBI_EPOCH_RING] = now;
    ebbi_store_release(&ebbi_pass_epoch, epoch);
    return epoch;
}

/* During a pass: by when a page stamped `epoch` was parked, at the latest
 * (>= 1). */
uint64_t ebbi_account_parked_by(uint64_t epoch, uint64_t now)
{
    uint64_t current = ebbi_load_relaxed(&ebbi_pass_epoch);
    if (epoch >= current)
        return now;
    if (current - epoch >= EBBI_EPOCH_RING)
        return 1;
    return ledger.pass_started_ns[(epoch + 1) % EBBI_EPOCH_RING];
}

/* ---- the doorbell ------------------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;                    /* cond initialized (with CLOCK_MONOTONIC) */
    _Atomic(bool) listening;       /* the service thread waits on it */
    _Atomic(bool) main_gone;       /* the main thread ended with pthread_exit */
    _Atomic(uint64_t) exits;       /* threads that ended since */
} bell = {.lock = PTHREAD_MUTEX_INITIALIZER};

void ebbi_doorbell_listen(void)
{
    pthread_mutex_lock(&bell.lock);
    if (!bell.ready) {
        ebbi_os_cond_init(&bell.cond);
        bell.ready = true;
    }
    pthread_mutex_unlock(&bell.lock);
    ebbi_store_release(&bell.listening, true);
}

bool ebbi_doorbell_listening(void)
{
    return ebbi_load_acquire(&bell.listening);
}

/* The main thread ended with pthread_exit (init.c): from now on the
 * service thread watches for the program's last thread to go, and ends
 * itself then; each thread that exits rings (heap.c). */
void ebbi_doorbell_main_exited(void)
{
    ebbi_store_release(&bell.main_gone, true);
    ebbi_doorbell_ring();
}

bool ebbi_doorbell_main_gone(void)
{
    return ebbi_load_acquire(&bell.main_gone);
}

/* A thread is ending (its heap is given back), after the main thread. */
void ebbi_doorbell_thread_exited(void)
{
    if (!ebbi_load_acquire(&bell.main_gone))
        return;
    ebbi_fetch_add_relaxed(&bell.exits, 1);
    ebbi_doorbell_ring();
}

uint64_t ebbi_doorbell_exits(void)
{
    return ebbi_load_relaxed(&bell.exits);
}

void ebbi_doorbell_ring(void)
{
    if (!ebbi_load_acquire(&bell.listening))
        return;
    pthread_mutex_lock(&bell.lock);
    ebbi_os_cond_signal(&bell.cond);
    pthread_mutex_unlock(&bell.lock);
}

/* The service thread: sleep until `until_ns` (EBBI_NEVER: until rung),
 * read from ebbi_os_now_ns's coarse clock as `now_ns`: the wait lasts
 * until_ns - now_ns on the precise clock, so that it never ends before the
 * coarse clock has reached the deadline.  With `watch_due`, it does not
 * begin if the deadline has moved before `until_ns`: the deadline is read
 * under the bell's lock, and a free rings after it moved the deadline, so
 * no ring is lost between the thread's look and its wait. */
void ebbi_doorbell_wait(uint64_t until_ns, uint64_t now_ns, bool watch_due)
{
    pthread_mutex_lock(&bell.lock);
    if (!watch_due || ebbi_load_relaxed(&ebbi_due_ns) >= until_ns) {
        uint64_t at = EBBI_NEVER;
        if (until_ns != EBBI_NEVER)
            at = ebbi_os_precise_ns() + (until_ns > now_ns ? until_ns - now_ns : 0);
        ebbi_os_cond_wait(&bell.cond, &bell.lock, at);
    }
    pthread_mutex_unlock(&bell.lock);
}

void ebbi_doorbell_fork_prepare(void)
{
    pthread_mutex_lock(&bell.lock);
}

void ebbi_doorbell_fork_parent(void)
{
    pthread_mutex_unlock(&bell.lock);
}

/* The child has no service thread. */
void ebbi_doorbell_fork_child(void)
{
    pthread_mutex_init(&bell.lock, NULL);
    if (bell.ready)
        ebbi_os_cond_init(&bell.cond);
    ebbi_store_relaxed(&bell.listening, false);
    ebbi_store_relaxed(&bell.main_gone, false);
}
