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

/* A statistics counter written by one thread and read by any: a relaxed
 * load and store, not a read-modify-write, so the owner pays a plain add. */
typedef _Atomic(uint64_t) ebbi_counter_t;

static inline void ebbi_counter_add(ebbi_counter_t *c, uint64_t n)
{
    ebbi_store_relaxed(c, ebbi_load_relaxed(c) + n);
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
