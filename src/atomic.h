/* The allocator's atomics: C11 atomics behind names that carry their memory
 * order, so every synchronization point reads as what it is (and TSan sees
 * real atomics). */
#ifndef EBB_ATOMIC_H
#define EBB_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ebbi_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define ebbi_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define ebbi_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define ebbi_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define ebbi_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define ebbi_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define ebbi_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

/* Compare-and-swap; on failure *expected is refreshed. */
#define ebbi_cas_weak_release(p, expected, desired)                                                \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_release,        \
                                          memory_order_relaxed)
#define ebbi_cas_weak_acq_rel(p, expected, desired)                                                \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_acq_rel,        \
                                          memory_order_acquire)
#define ebbi_cas_strong_acq_rel(p, expected, desired)                                              \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel,      \
                                            memory_order_acquire)
#define ebbi_cas_weak_relaxed(p, expected, desired)                                                \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_relaxed,        \
                                          memory_order_relaxed)

/* Sequentially consistent: where a store must be ordered before a later
 * load of another location (the heap handover's flags, heap.c), and where
 * one total order of the updates is simplest to reason about (the
 * reclaimer's deadlines, the peaks, the start-up states). */
#define ebbi_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define ebbi_store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define ebbi_exchange_seq_cst(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define ebbi_cas_weak_seq_cst(p, expected, desired)                                                \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_seq_cst,        \
                                          memory_order_seq_cst)
#define ebbi_cas_strong_seq_cst(p, expected, desired)                                              \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_seq_cst,      \
                                            memory_order_seq_cst)

/* A read of a plain field that its owner writes without a lock, for an
 * estimate (a statistic): the value may be stale, never torn. */
#define ebbi_peek(p) __atomic_load_n((p), __ATOMIC_RELAXED)

#define ebbi_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#define ebbi_fence_release() atomic_thread_fence(memory_order_release)
/* Orders against a signal handler on this thread only: no instruction. */
#define ebbi_compiler_barrier() atomic_signal_fence(memory_order_seq_cst)

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EBBI_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define EBBI_TSAN 1
#endif

/* A statistics counter written by one thread and read by any (relaxed
 * loads).  Its one writer needs no read-modify-write: on x86-64 a plain
 * add to memory is a single-copy-atomic store of the new value, which is
 * what a relaxed load elsewhere can see; other targets (and TSan, which
 * must see the C11 accesses) use a relaxed load and store. */
typedef _Atomic(uint64_t) ebbi_counter_t;

static inline void ebbi_counter_add(ebbi_counter_t *c, uint64_t n)
{
#if defined(__x86_64__) && !defined(EBBI_TSAN)
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(n));
#else
    ebbi_store_relaxed(c, ebbi_load_relaxed(c) + n);
#endif
}

static inline void ebbi_spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
