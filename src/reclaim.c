/* Reclamation policy: which freed memory goes back to the kernel, and when.
 *
 * Freed memory is "freed, not reclaimed" in two pools (account.c): the
 * arenas' free spans and the huge-block cache; threads' parked pages
 * (heap.c) besides.  Giving it back costs system calls, and page faults
 * when the program takes it again; keeping it costs the machine.  The
 * model (docs/RECLAIM.md: the reasoning and the measurements behind the
 * constants):
 *
 *  - Prediction.  For each pool the policy remembers the peak of its live
 *    bytes in each epoch (one reclamation delay) of the last `history`
 *    epochs.  The program needed `peak` lately and holds `live` now, so it
 *    may take `peak - live` again soon: that much of the pool's freed
 *    memory is kept, for as long as the program keeps calling the
 *    allocator.  A program that shrinks for good sees its peaks age out,
 *    and the memory goes back `history` epochs later.
 *  - Delay.  Freed memory beyond the prediction and the EBB_RETAIN_MIN
 *    floor goes back once it has stayed free for EBB_RECLAIM_DELAY_MS.
 *  - Bound.  No more than the bound waits, predicted or not; past it the
 *    oldest goes at once.  The bound is what the reclaimer gives back in
 *    RELEASE_BUDGET_MS at each pool's measured rate (so whatever is kept
 *    goes back within the idle promise below), or EBB_RETAIN_MAX when it
 *    is set, and never more than the room left under a memory limit.
 *  - Refaults.  Memory that a pass gave back, taken fresh again soon after
 *    (account.c), doubles `history` (up to HISTORY_MAX): retention lasts
 *    longer for a program that comes back to its peaks.  Epochs without
 *    refaults halve it again (down to HISTORY_MIN).
 *  - Idle.  A program that stops calling the allocator for half a delay
 *    gets everything back, prediction and floor included: the service
 *    thread watches the calls, every eighth of a delay (service.c);
 *    without it, a slow path that comes after half a delay without
 *    slow-path events does the same.
 *  - Limits and pressure (limits.c).  Near a memory limit, or while tasks
 *    stall waiting for memory, nothing is kept: everything reclaimable
 *    goes back now, and again before a pool takes fresh memory past the
 *    room left.  EBB_MEMORY_LIMIT is such a limit, on resident memory; a
 *    program whose live data alone passes it keeps nothing free, and its
 *    allocations still succeed.
 *
 * Passes run one at a time (`busy`): on slow paths once the deadline has
 * passed (account.c), in the service thread, at once when a bound is
 * passed, and for malloc_trim.  A pass calls down into the heaps (parked
 * pages), the huge cache and the arenas, which do the system calls.
 */
#include "internal.h"

#define NEVER EBBI_NEVER

/* Epochs of peaks remembered: from 4 delays (200 ms by default: a
 * program's phases within that keep their memory), doubled by refaults up
 * to 64 (3.2 s). */
#define HISTORY_MIN 4
#define HISTORY_MAX 64
#define PEAK_RING 64
/* Refaults within an epoch that count as the prediction being short: at
 * least 1 MiB, and a sixteenth of what the program took from the pools in
 * the epoch (a program that churns through gigabytes a second pays
 * nothing for a few refaulted MiB). */
#define REFAULT_SIGNIFICANT (1u << 20)
#define REFAULT_SHARE 16
/* Pools held within a quarter above their prediction are not trimmed. */
#define BAND_SHARE 4
/* Whatever is kept must go back within this long at the rates measured:
 * idleness is seen at most 5/8 of a delay (31.25 ms by default) after the
 * program's last call, so everything is back within 100 ms, with 24 ms to
 * spare for the thread to be scheduled and a pass to take longer than
 * its rate says (at 50 ms, a 512 MiB mapping was still being unmapped at
 * 100 ms in two runs of three). */
#define RELEASE_BUDGET_MS 45
/* The rates assumed before they are measured (bytes per ms), from
 * bench/faultcost.c on the build machine: spans go back by madvise of
 * their touched runs, 6.4 GB/s (1 GiB in 64 KiB calls: 150-180 ms); huge
 * mappings by munmap, 10 GB/s (1 GiB: 80-110 ms); and the least bound. */
#define PURGE_RATE_SPANS (6400u << 10)
#define PURGE_RATE_HUGE (10240u << 10)
#define BOUND_MIN (16u << 20)
/* Passes that give back less are not timed. */
#define RATE_SAMPLE_MIN (8u << 20)

/* PASS_TRIM: PASS_ALL, and every thread's heap swept, used lately or not. */
typedef enum { PASS_DUE, PASS_ALL, PASS_TRIM } pass_kind_t;

/* A pool's epoch: its highest `live`, and its widest swing (peak - trough). */
typedef struct {
    uint64_t epoch, peak, swing;
} epoch_peak_t;

static struct {
    _Atomic(int) busy;              /* one pass at a time */
    /* Under busy: */
    epoch_peak_t peaks[EBBI_POOLS][PEAK_RING];
    uint64_t epoch;                 /* the epoch the last pass was in */
    unsigned history, quiet;        /* epochs remembered; epochs without refaults */
    uint64_t refaulted_seen, taken_seen;
    uint64_t rate[EBBI_POOLS];      /* bytes given back per ms, smoothed; 0: none measured */
    ebbi_limits_t limits;
    uint64_t limits_read_ns;
    uint64_t heaps_due;             /* when an idle thread's heap is to be swept */
    /* For the statistics (relaxed): */
    _Atomic(uint64_t) kept[EBBI_POOLS]; /* what the last pass kept by prediction */
    _Atomic(uint64_t) bound;
    _Atomic(uint64_t) limit, limit_room;
    _Atomic(uint32_t) history_now;
    _Atomic(uint64_t) limit_passes;
} rc = {.history = HISTORY_MIN, .bound = UINT64_MAX, .limit = UINT64_MAX, .limit_room = UINT64_MAX,
        .history_now = HISTORY_MIN};

/* A pass that runs out of memory must not wait for itself (OOM retry). */
static __thread bool in_pass;

static uint64_t epoch_ns(void)
{
    uint64_t d = ebbi_delay_ns();
    return d > 0 ? d : 1000000u;
}

/* ---- prediction ------------------------------------------------------------------ */

static void peak_record(ebbi_pool_t pool, uint64_t epoch, uint64_t peak, uint64_t swing)
{
    epoch_peak_t *slot = &rc.peaks[pool][epoch % PEAK_RING];
    if (slot->epoch != epoch && epoch > slot->epoch) {
        slot->epoch = epoch;
        slot->peak = slot->swing = 0;
    }
    if (slot->epoch == epoch) {
        if (peak > slot->peak)
            slot->peak = peak;
        if (swing > slot->swing)
            slot->swing = swing;
    }
}

/* Close the epoch's peaks; once per epoch, let refaults move `history`. */
static void prediction_update(uint64_t now)
{
    uint64_t len = epoch_ns();
    for (unsigned p = 0; p < EBBI_POOLS; p++) {
        uint64_t at, trough;
        uint64_t peak = ebbi_account_close_peak((ebbi_pool_t)p, now, &at, &trough);
        peak_record((ebbi_pool_t)p, (at != 0 ? at : now) / len, peak, peak - trough);
    }
    uint64_t epoch = now / len;
    if (epoch == rc.epoch)
        return;
    uint64_t passed = rc.epoch == 0 || epoch < rc.epoch ? 1 : epoch - rc.epoch;
    rc.epoch = epoch;
    uint64_t refaulted = ebbi_account_refaulted_total(), taken = ebbi_account_taken_total();
    uint64_t fresh = refaulted - rc.refaulted_seen;
    uint64_t demand = taken - rc.taken_seen;
    rc.refaulted_seen = refaulted;
    rc.taken_seen = taken;
    if (fresh >= REFAULT_SIGNIFICANT && fresh * REFAULT_SHARE >= demand) {
        rc.history = rc.history * 2 <= HISTORY_MAX ? rc.history * 2 : HISTORY_MAX;
        rc.quiet = 0;
    } else if ((rc.quiet += (unsigned)(passed < HISTORY_MAX ? passed : HISTORY_MAX)) >= rc.history) {
        rc.history = rc.history / 2 >= HISTORY_MIN ? rc.history / 2 : HISTORY_MIN;
        rc.quiet = 0;
    }
    ebbi_store_relaxed(&rc.history_now, rc.history);
    /* The refault credit halves each epoch: only memory taken again soon
     * after it went back counts. */
    for (uint64_t i = 0; i < passed && i < 64; i++)
        ebbi_account_decay_credit();
}

/* How long a pool may go without being taken from and still keep what
 * its peaks predict: as long as the peaks are remembered (a program that
 * frees for a while between two phases keeps what the next will take). */
static uint64_t hold_ns(void)
{
    return (uint64_t)rc.history * epoch_ns();
}

/* What the pool's recent epochs say the program will take again: back up
 * to its highest peak, and at least its widest swing within an epoch (a
 * program that frees and allocates again takes back what it freed);
 * nothing once the program has taken nothing from it for hold_ns (it
 * stopped growing: a phase that ended, a program gone quiet). */
static uint64_t predicted(ebbi_pool_t pool, uint64_t now)
{
    uint64_t last = ebbi_account_last_take_ns(pool);
    if (last + hold_ns() <= now)
        return 0;
    uint64_t epoch = now / epoch_ns();
    uint64_t peak = 0, swing = 0;
    for (unsigned i = 0; i < PEAK_RING; i++) {
        const epoch_peak_t *slot = &rc.peaks[pool][i];
        if (slot->epoch + rc.history > epoch) {
            if (slot->peak > peak)
                peak = slot->peak;
            if (slot->swing > swing)
                swing = slot->swing;
        }
    }
    uint64_t live = ebbi_account_live(pool);
    uint64_t back = peak > live ? peak - live : 0;
    return back > swing ? back : swing;
}

/* What a pass keeps of a pool, given its prediction: a pool that holds
 * no more than a quarter above the prediction is left alone, so that the
 * noise of a program's footprint does not cost a system call each pass;
 * past that it goes down to the prediction, in one batch. */
static uint64_t within_band(ebbi_pool_t pool, uint64_t keep)
{
    uint64_t held = ebbi_account_pool_reclaimable(pool);
    return held <= keep + keep / BAND_SHARE ? held : keep;
}

/* ---- the bound and the limits ------------------------------------------------------- */

_Atomic(bool) ebbi_limit_tight;

/* A limit leaves no room above its margin (under busy). */
static bool limits_tight(void)
{
    return rc.limits.any && rc.limits.room <= rc.limits.margin;
}

/* Read the limits (under busy), at most once a delay unless `now_please`;
 * `coming`: fresh bytes a pool is taking, not yet in the usage read. */
static void limits_refresh(uint64_t now, bool now_please, uint64_t coming)
{
    if (!now_please && now - rc.limits_read_ns < epoch_ns())
        return;
    rc.limits_read_ns = now;
    ebbi_limits_read(&rc.limits, now);
    if (rc.limits.any)
        rc.limits.room = rc.limits.room > coming ? rc.limits.room - coming : 0;
    ebbi_store_relaxed(&rc.limit, rc.limits.limit);
    ebbi_store_relaxed(&rc.limit_room, rc.limits.room);
    ebbi_store_relaxed(&ebbi_limit_tight, limits_tight());
    /* Fresh memory the pools may take before the limit is looked at again:
     * half the room above the margin, so the readings come closer
     * together as the room shrinks.  The pools' count of fresh memory
     * misses some of what the process's usage gains (a page decommitted
     * where it stays, then touched again; memory not the allocator's),
     * and with the whole room as the budget that undercount could carry
     * the process past the limit before the next reading.  A quarter of
     * the margin at least, so that a program whose live data passes the
     * limit is not looked at on every page. */
    uint64_t budget = UINT64_MAX;
    if (rc.limits.any) {
        uint64_t half = rc.limits.room > rc.limits.margin ? (rc.limits.room - rc.limits.margin) / 2 : 0;
        budget = half > rc.limits.margin / 4 ? half : rc.limits.margin / 4;
    }
    ebbi_account_set_growth_budget(budget);
}

static bool must_keep_nothing(void)
{
    return rc.limits.pressure || limits_tight();
}

static uint64_t pool_rate(ebbi_pool_t pool)
{
    if (rc.rate[pool] != 0)
        return rc.rate[pool];
    return pool == EBBI_POOL_HUGE ? PURGE_RATE_HUGE : PURGE_RATE_SPANS;
}

/* Milliseconds the reclaimer takes to give back `bytes` of a pool. */
static uint64_t release_ms(ebbi_pool_t pool, uint64_t bytes)
{
    return bytes / pool_rate(pool);
}

/* The room under a memory limit for freed memory to wait in (under busy). */
static uint64_t limit_allowance(void)
{
    if (must_keep_nothing())
        return 0;
    if (!rc.limits.any)
        return UINT64_MAX;
    uint64_t allowed = ebbi_account_reclaimable_bytes() + rc.limits.room;
    return allowed > rc.limits.margin ? allowed - rc.limits.margin : 0;
}

/* The most freed memory that may wait (under busy), in bytes: what the
 * reclaimer gives back in RELEASE_BUDGET_MS, at the rates of the pools as
 * they hold memory now (the spans' when they hold none), unless
 * EBB_RETAIN_MAX was set (by the environment or mallopt: then that, as
 * asked, in ebbi_account_bound); and within the room under a limit. */
static uint64_t bound_now(void)
{
    uint64_t bound = UINT64_MAX;
    if (!ebbi_option_given(EBB_OPTION_RETAIN_MAX)) {
        uint64_t spans = ebbi_account_pool_reclaimable(EBBI_POOL_SPANS);
        uint64_t huge = ebbi_account_pool_reclaimable(EBBI_POOL_HUGE);
        uint64_t ms = release_ms(EBBI_POOL_SPANS, spans) + release_ms(EBBI_POOL_HUGE, huge);
        bound = ms > 0 ? (spans + huge) / ms * RELEASE_BUDGET_MS : pool_rate(EBBI_POOL_SPANS) * RELEASE_BUDGET_MS;
        if (bound < BOUND_MIN)
            bound = BOUND_MIN;
    }
    uint64_t allowed = limit_allowance();
    return allowed < bound ? allowed : bound;
}

/* What a pass keeps of each pool, within the release budget (the spans'
 * share first) and the room under a limit. */
static void keep_within_budget(uint64_t *keep_spans, uint64_t *keep_huge)
{
    if (!ebbi_option_given(EBB_OPTION_RETAIN_MAX)) {
        uint64_t spans_ms = release_ms(EBBI_POOL_SPANS, *keep_spans);
        if (spans_ms > RELEASE_BUDGET_MS) {
            *keep_spans = RELEASE_BUDGET_MS * pool_rate(EBBI_POOL_SPANS);
            spans_ms = RELEASE_BUDGET_MS;
        }
        uint64_t huge_max = (RELEASE_BUDGET_MS - spans_ms) * pool_rate(EBBI_POOL_HUGE);
        if (*keep_huge > huge_max)
            *keep_huge = huge_max;
    }
    uint64_t allowed = limit_allowance();
    uint64_t max = (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MAX);
    if (max < allowed)
        allowed = max;
    if (*keep_spans > allowed)
        *keep_spans = allowed;
    if (*keep_huge > allowed - *keep_spans)
        *keep_huge = allowed - *keep_spans;
}

/* A pool gave back `bytes` in `ns`: its rate, smoothed. */
static void rate_sample(ebbi_pool_t pool, size_t bytes, uint64_t ns)
{
    if (bytes < RATE_SAMPLE_MIN)
        return;
    uint64_t rate = bytes / (ns / 1000000u + 1);
    rc.rate[pool] = rc.rate[pool] == 0 ? rate : (3 * rc.rate[pool] + rate) / 4;
}

/* ---- passes ------------------------------------------------------------------------- */

/* When memory freed at `freed_at` is due, after a pass that started at
 * `start` (and took what was freed before start - delay). */
static uint64_t due_of(uint64_t freed_at, uint64_t start, uint64_t delay)
{
    if (freed_at == 0)
        return NEVER;
    /* Due before the pass began, yet still here: the pass kept it (floor,
     * prediction).  Looked at again two delays after the pass began, not at
     * once: else a thread that keeps freeing around what is kept would have
     * the reclaimer purge the pages it is about to reuse, pass after pass. */
    return freed_at + delay > start ? freed_at + delay : start + 2 * delay;
}

/* The earliest deadline after a pass, from what is left.  A free during
 * the pass may have set an earlier one: the generation says so, and then
 * the earlier stays. */
static void recompute_due(uint64_t generation, uint64_t keep, uint64_t start)
{
    uint64_t delay = ebbi_delay_ns();
    uint64_t due = NEVER;
    uint64_t left = ebbi_account_reclaimable_bytes();
    if (left > keep) {
        for (unsigned i = 0; i < ebbi_process.arena_count; i++) {
            uint64_t t = due_of(ebbi_arena_oldest_dirty_ns(&ebbi_arenas[i]), start, delay);
            if (t < due)
                due = t;
        }
        uint64_t t = due_of(ebbi_huge_oldest_cached_ns(), start, delay);
        if (t < due)
            due = t;
    } else if (left > (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MIN)) {
        /* Kept by prediction: looked at again as the peaks age. */
        due = start + 2 * delay;
    }
    /* Abandoned pages (of exited threads): the sweep that frees or
     * decommits what they hold free. */
    uint64_t quiet = ebbi_sweep_quiet_ns();
    uint64_t sparse = NEVER;
    for (unsigned i = 0; i < ebbi_process.arena_count; i++) {
        uint64_t t = ebbi_arena_abandoned_due(&ebbi_arenas[i], quiet);
        if (t < sparse)
            sparse = t;
    }
    if (rc.heaps_due < sparse)
        sparse = rc.heaps_due;
    ebbi_account_sparse_set(sparse);
    /* A heap changed after the sweep looked: its deadline may have been
     * set before ours replaced it (heap.c sets the flag, then the
     * deadline; the fence keeps our store before our look at the flag). */
    ebbi_fence_seq_cst();
    if (ebbi_load_seq_cst(&ebbi_heaps_changed) && start + quiet < sparse) {
        sparse = start + quiet;
        ebbi_account_sparse_at_most(sparse);
    }
    if (sparse < due)
        due = sparse;
    uint64_t cur = ebbi_load_relaxed(&ebbi_due_ns);
    for (;;) {
        uint64_t want = due;
        if (ebbi_account_generation() != generation && cur < want)
            want = cur;
        if (ebbi_cas_weak_seq_cst(&ebbi_due_ns, &cur, want))
            break;
    }
    /* The service thread sleeps until the deadline it last saw: an earlier
     * one (a pass on another thread kept memory) must wake it. */
    if (due < cur)
        ebbi_doorbell_ring();
    /* Parked pages are looked at after the deadline is set: a page parked
     * meanwhile is either seen here or sees the deadline (heap.c, page_park). */
    ebbi_account_due_at_most(due_of(ebbi_heaps_oldest_parked_ns(start), start, delay));
}

/* The spans freed before `cutoff`, while more than `keep` waits. */
static size_t purge_due_spans(uint64_t cutoff, uint64_t keep)
{
    size_t given = 0;
    for (unsigned i = 0; i < ebbi_process.arena_count; i++)
        given += ebbi_arena_purge(&ebbi_arenas[i], cutoff, 0, keep);
    return given;
}

/* The oldest spans, `need` bytes of them. */
static size_t purge_oldest_spans(size_t need)
{
    size_t given = 0;
    for (unsigned i = 0; i < ebbi_process.arena_count && given < need; i++)
        given += ebbi_arena_purge(&ebbi_arenas[i], 0, need - given, 0);
    return given;
}

/* One pass.  PASS_DUE: give back what has waited a delay, but for the
 * floor and what prediction keeps; then the oldest of the rest while more
 * than the bound waits.  PASS_ALL: everything. */
static size_t reclaim_pass(uint64_t now, pass_kind_t kind)
{
    ebbi_account_pass_begin(now);
    uint64_t generation = ebbi_account_generation();
    uint64_t delay = ebbi_delay_ns();
    prediction_update(now);
    limits_refresh(now, false, 0);
    ebbi_account_set_bound(bound_now());
    uint64_t bound = ebbi_account_bound(); /* EBB_RETAIN_MAX (mallopt) too */
    ebbi_store_relaxed(&rc.bound, bound);

    uint64_t cutoff = NEVER, keep_spans = 0, keep_huge = 0;
    if (kind == PASS_DUE && bound > 0) {
        /* What was freed at now - delay or before has waited the delay; the
         * cutoff is exclusive, and one past that (the coarse clock makes
         * frees and passes share ticks). */
        cutoff = now > delay ? now - delay + 1 : 0;
        uint64_t floor = (uint64_t)ebbi_option(EBB_OPTION_RETAIN_MIN);
        keep_spans = within_band(EBBI_POOL_SPANS, predicted(EBBI_POOL_SPANS, now)) + floor;
        keep_huge = within_band(EBBI_POOL_HUGE, predicted(EBBI_POOL_HUGE, now));
        keep_within_budget(&keep_spans, &keep_huge);
    }
    /* Each pool's work timed apart: its rate sets the bound. */
    uint64_t t0 = ebbi_os_precise_ns();
    size_t huge = ebbi_huge_trim(cutoff, keep_huge);
    uint64_t t1 = ebbi_os_precise_ns();
    /* Idle threads' heaps: when the program is idle (or for malloc_trim),
     * every one used since its last sweep; else those unused for `quiet`.
     * What they empty joins the spans, given back below if due. */
    ebbi_sweep_t sweep = kind == PASS_TRIM ? EBBI_SWEEP_ALL : kind == PASS_ALL ? EBBI_SWEEP_CHANGED : EBBI_SWEEP_QUIET;
    uint64_t quiet = ebbi_sweep_quiet_ns();
    size_t swept = ebbi_heaps_sweep(sweep, quiet, &rc.heaps_due);
    /* The sweep's time (its census, membarrier, retries) is not the spans'
     * purge rate. */
    uint64_t t_swept = ebbi_os_precise_ns();
    size_t spans = ebbi_heaps_purge_parked(cutoff, now);
    /* What exited threads' pages freed has waited long enough: their
     * emptied spans go in this pass. */
    uint64_t swept_at = cutoff == NEVER ? now : (cutoff > 0 ? cutoff - 1 : 0);
    /* Their free kernel pages: at once when everything goes, else once
     * nothing was freed into them for EBB_SPARSE_QUIET_DELAYS. */
    uint64_t quiet_before = kind != PASS_DUE ? NEVER : (now > quiet ? now - quiet : 0);
    for (unsigned i = 0; i < ebbi_process.arena_count; i++)
        spans += ebbi_arena_sweep_abandoned(&ebbi_arenas[i], swept_at, quiet_before);
    spans += purge_due_spans(cutoff, keep_spans);
    /* The bound: the oldest first, whatever its age. */
    uint64_t left = ebbi_account_reclaimable_bytes();
    if (left > bound)
        spans += purge_oldest_spans((size_t)(left - bound));
    uint64_t t2 = ebbi_os_precise_ns();
    left = ebbi_account_reclaimable_bytes();
    if (left > bound) {
        uint64_t held = ebbi_account_pool_reclaimable(EBBI_POOL_SPANS);
        huge += ebbi_huge_trim(NEVER, bound > held ? bound - held : 0);
    }
    uint64_t t3 = ebbi_os_precise_ns();
    rate_sample(EBBI_POOL_HUGE, huge, (t1 - t0) + (t3 - t2));
    rate_sample(EBBI_POOL_SPANS, spans, t2 - t_swept);
    spans += swept;
    for (unsigned p = 0; p < EBBI_POOLS; p++) {
        uint64_t held = ebbi_account_pool_reclaimable((ebbi_pool_t)p);
        uint64_t keep = p == EBBI_POOL_SPANS ? keep_spans : keep_huge;
        ebbi_store_relaxed(&rc.kept[p], held < keep ? held : keep);
    }
    recompute_due(generation, keep_spans + keep_huge, now);
    size_t given = spans + huge;
    if (kind == PASS_DUE)
        ebbi_account_credit(given); /* nothing predicted its reuse: a refault if it comes back */
    return given;
}

enum pass_wait { PASS_TRY, PASS_WAIT };

static bool pass_lock(enum pass_wait wait)
{
    int expected = 0;
    if (ebbi_cas_strong_seq_cst(&rc.busy, &expected, 1))
        return true;
    if (wait == PASS_TRY)
        return false; /* someone else is at it */
    for (;;) {
        expected = 0;
        if (ebbi_cas_weak_seq_cst(&rc.busy, &expected, 1))
            return true;
        ebbi_os_yield();
    }
}

static void pass_unlock(void)
{
    ebbi_store_release(&rc.busy, 0);
}

static size_t run_pass(pass_kind_t kind, enum pass_wait wait)
{
    if (!ebbi_process_ready() || in_pass || !pass_lock(wait))
        return 0;
    in_pass = true;
    size_t given = reclaim_pass(ebbi_os_now_ns(), kind);
    in_pass = false;
    pass_unlock();
    return given;
}

/* ---- the entry points ------------------------------------------------------------------ */

/* Freed memory waits for the reclaimer: reclaimable bytes, or abandoned
 * pages whose free kernel pages a pass has not given back yet.  The
 * service thread looks while it does, and an idle program gets it back. */
bool ebbi_reclaim_waiting(void)
{
    return ebbi_account_reclaimable_bytes() > 0 || ebbi_account_sparse_due() != NEVER;
}

size_t ebbi_reclaim_now(bool all)
{
    return run_pass(all ? PASS_ALL : PASS_DUE, all ? PASS_WAIT : PASS_TRY);
}

size_t ebbi_reclaim_trim(void)
{
    return run_pass(PASS_TRIM, PASS_WAIT);
}

/* The one call up from the layers below (account.c lists the events). */
size_t ebbi_reclaim_notify(ebbi_event_t event, uint64_t bytes)
{
    switch (event) {
    case EBBI_EVENT_OVER: {
        /* The bound must hold when the free returns: wait for a pass under
         * way, then run one if it did not do it. */
        if (!ebbi_process_ready() || in_pass || !pass_lock(PASS_WAIT))
            return 0;
        if (ebbi_account_reclaimable_bytes() <= ebbi_account_bound()) {
            pass_unlock();
            return 0;
        }
        in_pass = true;
        size_t given = reclaim_pass(ebbi_os_now_ns(), PASS_DUE);
        in_pass = false;
        pass_unlock();
        return given;
    }
    case EBBI_EVENT_DUE: {
        /* Without the service thread, a slow path after half a delay
         * without slow-path events takes the program for one that paused:
         * everything goes back. */
        uint64_t now = ebbi_os_now_ns();
        bool paused = !ebbi_doorbell_listening() && now - ebbi_account_last_call_ns() >= ebbi_delay_ns() / 2;
        return run_pass(paused ? PASS_ALL : PASS_DUE, PASS_TRY);
    }
    case EBBI_EVENT_GROWING: {
        /* A pool is about to take `bytes` of fresh memory and the room it
         * was given under a limit is spent: read the limits; if the growth
         * would come within the margin, make room first. */
        if (!ebbi_process_ready() || in_pass || !pass_lock(PASS_WAIT))
            return 0;
        in_pass = true;
        uint64_t now = ebbi_os_now_ns();
        limits_refresh(now, true, bytes);
        size_t given = 0;
        if (must_keep_nothing() && ebbi_account_reclaimable_bytes() > 0) {
            ebbi_fetch_add_relaxed(&rc.limit_passes, 1);
            given = reclaim_pass(now, PASS_ALL);
            limits_refresh(now, true, bytes);
        }
        in_pass = false;
        pass_unlock();
        return given;
    }
    case EBBI_EVENT_OUT_OF_MEMORY:
        return run_pass(PASS_ALL, PASS_WAIT);
    }
    return 0;
}

/* The service thread's look, every eighth of a delay while memory is
 * kept: the limits, pressure, and whether the program went idle (no
 * allocator call for half a delay: `idle`).  Returns when to look next. */
uint64_t ebbi_reclaim_look(uint64_t now, bool idle)
{
    if (!pass_lock(PASS_TRY))
        return now + epoch_ns() / LOOKS_PER_DELAY;
    in_pass = true;
    limits_refresh(now, false, 0);
    bool all = must_keep_nothing();
    if (all)
        ebbi_fetch_add_relaxed(&rc.limit_passes, 1);
    if ((all || idle) && ebbi_reclaim_waiting()) {
        reclaim_pass(now, PASS_ALL);
    } else if (ebbi_account_reclaimable_bytes() > ebbi_account_bound()) {
        reclaim_pass(now, PASS_DUE);
    } else {
        /* A pool that went quiet keeps nothing by prediction any more:
         * what is due goes now, not at the next deadline. */
        bool dropped = false;
        for (unsigned p = 0; p < EBBI_POOLS; p++)
            dropped |= ebbi_load_relaxed(&rc.kept[p]) > 0 && predicted((ebbi_pool_t)p, now) == 0;
        if (dropped)
            reclaim_pass(now, PASS_DUE);
    }
    in_pass = false;
    pass_unlock();
    return ebbi_reclaim_waiting() ? now + epoch_ns() / LOOKS_PER_DELAY : NEVER;
}

void ebbi_reclaim_init(void)
{
    ebbi_account_set_bound(bound_now());
    ebbi_limits_discover();
    if (ebbi_limits_known()) {
        pass_lock(PASS_WAIT);
        limits_refresh(ebbi_os_now_ns(), true, 0);
        pass_unlock();
    }
}

void ebbi_reclaim_state(ebbi_reclaim_state_t *out)
{
    out->kept_spans = ebbi_load_relaxed(&rc.kept[EBBI_POOL_SPANS]);
    out->kept_huge = ebbi_load_relaxed(&rc.kept[EBBI_POOL_HUGE]);
    out->bound = ebbi_load_relaxed(&rc.bound);
    out->history_ms = (uint64_t)ebbi_load_relaxed(&rc.history_now) * epoch_ns() / 1000000u;
    out->limit = ebbi_load_relaxed(&rc.limit);
    out->limit_room = ebbi_load_relaxed(&rc.limit_room);
    out->limit_passes = ebbi_load_relaxed(&rc.limit_passes);
}

/* fork: a pass in progress holds spans outside the bins: the fork waits
 * for it to end, so the child has them all. */
void ebbi_reclaim_fork_prepare(void)
{
    pass_lock(PASS_WAIT);
}

void ebbi_reclaim_fork_parent(void)
{
    pass_unlock();
}

void ebbi_reclaim_fork_child(void)
{
    ebbi_store_relaxed(&rc.busy, 0);
    in_pass = false;
}
