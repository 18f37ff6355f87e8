/* EBB_GUARD_SAMPLE=N: one allocation in N, drawn at random, takes the
 * guarded path (guard.c), within a budget of time. */
#include "internal.h"

static uint64_t sample_key; /* seeds the heaps' sampling (its own: samples can be seen) */

void ebbi_sample_init(void)
{
    sample_key = ebbi_os_random_word();
}

/* EBB_GUARD_SAMPLE's budget.  A sample costs two mprotect calls and a
 * fault on its page's first write, and the close at free cannot wait (a
 * use right after the free would go unseen): microseconds, and tens of them
 * when another thread of the program runs on another CPU and the kernel
 * must interrupt it to flush its TLB (bench/protcost.c measures it).  A
 * program that allocates every few nanoseconds would spend most of its
 * time on 1-in-1000 samples.
 * So the time the sampled path takes (measured around it: its system calls
 * and what they wait for; summed in guard_sample_ns) is bounded to
 * EBB_GUARD_SAMPLE_BUDGET percent of the time that passes, for the whole
 * process: a token bucket, filled as time passes (holding 100 ms of fill at
 * most, full at the start), drawn on by each guarded allocation and free.
 * A sample that falls due while the bucket is empty is left out, and
 * counted.  A program whose samples take less than the budget keeps every
 * one; the others are sampled less (bench/results/modes.md has the rates
 * each workload kept). */
static struct {
    _Atomic(int64_t) credit_ns; /* within [-cap, cap]: below zero after a costly sample */
    _Atomic(uint64_t) filled_at_ns;
    _Atomic(uint64_t) taken, skipped, spent_ns;
} budget;

void ebbi_guard_sample_counts(uint64_t *taken, uint64_t *skipped, uint64_t *spent_ns)
{
    *taken = ebbi_load_relaxed(&budget.taken);
    *skipped = ebbi_load_relaxed(&budget.skipped);
    *spent_ns = ebbi_load_relaxed(&budget.spent_ns);
}

/* Adds `delta` to the credit, kept within [-cap, cap]: a full bucket
 * takes no more, and one slow sample stops sampling for 100 ms at most. */
static int64_t budget_add(int64_t delta, int64_t cap)
{
    int64_t old = ebbi_load_relaxed(&budget.credit_ns), credit;
    do {
        credit = old + delta;
        credit = credit > cap ? cap : credit < -cap ? -cap : credit;
    } while (!ebbi_cas_weak_relaxed(&budget.credit_ns, &old, credit));
    return credit;
}

static int64_t budget_cap(void)
{
    return ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET) * 1000000; /* 100 ms at that rate */
}

static bool budget_allows(void)
{
    int64_t percent = ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET);
    if (percent == 0)
        return true;
    int64_t cap = budget_cap();
    uint64_t now = ebbi_os_precise_ns();
    uint64_t then = ebbi_exchange_seq_cst(&budget.filled_at_ns, now);
    uint64_t elapsed = now > then ? now - then : 0;
    int64_t fill = then == 0 || elapsed >= 100000000u ? cap : (int64_t)elapsed * percent / 100;
    return budget_add(fill, cap) > 0;
}

/* Time the sampled path has taken since `start` (0: not measured). */
void ebbi_sample_cost_charge(uint64_t start)
{
    if (start == 0)
        return;
    uint64_t spent = ebbi_os_precise_ns() - start;
    ebbi_fetch_add_relaxed(&budget.spent_ns, spent);
    if (ebbi_option(EBB_OPTION_GUARD_SAMPLE_BUDGET))
        budget_add(-(int64_t)spent, budget_cap());
}

/* Measured with or without a budget (guard_sample_ns tells what it costs). */
uint64_t ebbi_sample_cost_start(void)
{
    return (ebbi_safety & SAFETY_GUARD_SAMPLE) ? ebbi_os_precise_ns() : 0;
}

static _Atomic(uint64_t) sample_seeds;

/* EBB_GUARD_SAMPLE=N: is this allocation (of class `class_id`, or huge with
 * EBB_CLASS_COUNT) one of the sampled?  Allocations since the last look are
 * read from the heap's own counters, so the fast path pays nothing: the
 * sample is drawn on the slow path, one in N on average, within the
 * budget. */
bool ebbi_guard_sample(heap_t *heap, unsigned class_id)
{
    if (heap->sample_suspended)
        return false;
    int64_t done = 1;
    if (class_id < EBB_CLASS_COUNT) {
        uint64_t now = ebbi_load_relaxed(&heap->counts[class_id].allocs);
        done += (int64_t)(now - heap->sample_seen[class_id]);
        heap->sample_seen[class_id] = now + 1;
    }
    heap->sample_countdown -= done;
    bool first = heap->rng == 0;
    if (first) {
        /* This heap's first look: seeded without a system call (a thread
         * may live for a few allocations), and a countdown drawn before any
         * sample, or the first allocation of every thread would be one. */
        uint64_t z = sample_key + (ebbi_fetch_add_relaxed(&sample_seeds, 1) + 1) * 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        heap->rng = (z ^ (z >> 31)) | 1;
    } else if (heap->sample_countdown > 0) {
        return false;
    }
    uint64_t n = (uint64_t)ebbi_option(EBB_OPTION_GUARD_SAMPLE);
    if (n > (UINT64_C(1) << 61))
        n = UINT64_C(1) << 61; /* the countdown stays positive */
    uint64_t x = ebbi_xorshift(&heap->rng);
    heap->sample_countdown = (int64_t)(1 + x % (2 * n)); /* mean n */
    if (first)
        return false;
    if (!budget_allows()) {
        ebbi_fetch_add_relaxed(&budget.skipped, 1);
        return false;
    }
    ebbi_fetch_add_relaxed(&budget.taken, 1);
    return true;
}

/* fork: the child draws other samples than the parent: heaps made from
 * here on, and this thread's, which both processes go on using. */
void ebbi_sample_fork_child(void)
{
    if (ebbi_safety & SAFETY_GUARD_SAMPLE) {
        sample_key = ebbi_os_random_word();
        heap_t *heap = ebbi_thread_heap();
        if (heap != &ebbi_heap_empty && heap->rng != 0)
            heap->rng = (heap->rng ^ sample_key) | 1;
    }
}
