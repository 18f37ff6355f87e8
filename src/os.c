/* The os layer: the only file that talks to the kernel.
 *
 * Contract for every function here:
 *  - sizes and addresses are multiples of the OS page size, sizes > 0;
 *  - errno is preserved: failure is reported by the return value alone,
 *    and the caller decides what the program sees (ENOMEM);
 *  - a failure to get memory (mmap, mremap, brk) is survivable; a failure
 *    to give memory back (munmap, madvise) is ignored after counting, since
 *    the memory stays valid and the next attempt may succeed.
 *
 * The system calls, for seccomp users: mmap (PROT_READ|PROT_WRITE,
 * MAP_PRIVATE|MAP_ANONYMOUS[|MAP_NORESERVE]), munmap, madvise
 * (MADV_DONTNEED; MADV_FREE with EBB_PURGE=free; MADV_NOHUGEPAGE with
 * EBB_GUARD_SAMPLE), process_madvise (MADV_DONTNEED on PIDFD_SELF; not
 * with EBB_PURGE=madvise), mremap (0, or MREMAP_MAYMOVE|MREMAP_FIXED), brk (through
 * the C library's sbrk, so its own view of the break stays right),
 * mprotect (safety modes: guard pages), sigaction (SIGSEGV, guard modes),
 * sched_getaffinity, sched_yield, clock_gettime (vDSO), membarrier
 * (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED and PRIVATE_EXPEDITED: taking
 * an idle thread's heap, heap.c), write (fd 2, or its
 * duplicate kept for EBB_STATS), fcntl (F_DUPFD_CLOEXEC), the signal
 * calls of abort, and, to learn the memory limits and pressure the
 * process lives under (limits.c), getrlimit and open/read/close of
 * /proc/self/cgroup, /proc/self/statm, /proc/pressure/memory and the
 * cgroup's memory files.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static ebbi_os_counts_t os_counts;

#define COUNT(field) ebbi_fetch_add_relaxed(&os_counts.field, 1)

/* Fault injection (test builds only, -DEBB_FAULT_INJECTION=1): the
 * EBB_FAULT_<CALL>=N environment variable makes the N-th call of that kind
 * fail, EBB_FAULT_EVERY_<CALL>=K every K-th; CALL is MMAP, MUNMAP, MADVISE,
 * MREMAP or BRK.  A failed call fails as the kernel's would, and does
 * nothing. */
enum { FAULT_MMAP, FAULT_MUNMAP, FAULT_MADVISE, FAULT_MREMAP, FAULT_BRK, FAULT_KINDS };
#if defined(EBB_FAULT_INJECTION) && EBB_FAULT_INJECTION
#include <stdlib.h>
static const char *const fault_names[FAULT_KINDS] = {"MMAP", "MUNMAP", "MADVISE", "MREMAP", "BRK"};
static long fault_nth[FAULT_KINDS], fault_every[FAULT_KINDS];
static _Atomic(long) fault_calls[FAULT_KINDS];
static _Atomic(long) faults_injected;
static _Atomic(int) faults_loaded;

static bool inject(int kind)
{
    if (!ebbi_load_acquire(&faults_loaded)) {
        for (int k = 0; k < FAULT_KINDS; k++) {
            char name[40];
            ebbi_format(name, sizeof name, "EBB_FAULT_%s", fault_names[k]);
            const char *v = getenv(name);
            fault_nth[k] = v != NULL ? atol(v) : 0;
            ebbi_format(name, sizeof name, "EBB_FAULT_EVERY_%s", fault_names[k]);
            v = getenv(name);
            fault_every[k] = v != NULL ? atol(v) : 0;
        }
        ebbi_store_release(&faults_loaded, 1);
    }
    long n = ebbi_fetch_add_relaxed(&fault_calls[kind], 1) + 1;
    bool fail = n == fault_nth[kind] || (fault_every[kind] > 0 && n % fault_every[kind] == 0);
    if (fail)
        ebbi_fetch_add_relaxed(&faults_injected, 1);
    return fail;
}

long ebbi_os_faults_injected(void)
{
    return ebbi_load_relaxed(&faults_injected);
}
#else
#define inject(kind) false
#endif

void ebbi_os_counts_get(ebbi_os_counts_t *out)
{
    ebbi_store_relaxed(&out->mmap, ebbi_load_relaxed(&os_counts.mmap));
    ebbi_store_relaxed(&out->munmap, ebbi_load_relaxed(&os_counts.munmap));
    ebbi_store_relaxed(&out->madvise, ebbi_load_relaxed(&os_counts.madvise));
    ebbi_store_relaxed(&out->mremap, ebbi_load_relaxed(&os_counts.mremap));
    ebbi_store_relaxed(&out->brk, ebbi_load_relaxed(&os_counts.brk));
    ebbi_store_relaxed(&out->mprotect, ebbi_load_relaxed(&os_counts.mprotect));
}

void *ebbi_os_map(size_t size, void *hint)
{
    int saved = errno;
    COUNT(mmap);
    if (inject(FAULT_MMAP))
        return NULL;
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

void ebbi_os_unmap(void *p, size_t size)
{
    int saved = errno;
    COUNT(munmap);
    if (!inject(FAULT_MUNMAP))
        munmap(p, size);
    errno = saved;
}

/* Where the next aligned mapping is asked for.  Asking the kernel for an
 * address that is already aligned and free gets an aligned mapping in one
 * call, instead of over-allocating and trimming (three calls). */
static _Atomic(uintptr_t) aligned_hint;

static void *map_at_hint(size_t size, size_t align, size_t reach)
{
    /* The hint moves on only past mappings that were made there, so that a
     * failed huge request does not use up the range. */
    uintptr_t rounded = (reach + align - 1) & ~(uintptr_t)(align - 1);
    uintptr_t hint = ebbi_load_relaxed(&aligned_hint);
    if (hint == 0 || rounded > ((uintptr_t)1 << 40) ||
        hint + rounded > ((uintptr_t)1 << EBB_ADDRESS_BITS) - ((uintptr_t)1 << 40))
        return NULL;
    void *p = ebbi_os_map(size, (void *)hint);
    if (p == NULL)
        return NULL;
    if (((uintptr_t)p & (align - 1)) == 0) {
        uintptr_t end = (uintptr_t)p + rounded, cur = hint;
        while (cur < end && !ebbi_cas_weak_seq_cst(&aligned_hint, &cur, end))
            ;
        return p;
    }
    ebbi_os_unmap(p, size);
    return NULL;
}

void *ebbi_os_map_aligned(size_t size, size_t align, size_t offset)
{
    if (offset == 0) {
        void *p = map_at_hint(size, align, size);
        if (p != NULL)
            return p;
    }
    /* Over-allocate by `align`, then give back the head and the tail. */
    size_t total = size + align;
    if (total < size)
        return NULL;
    uint8_t *raw = ebbi_os_map(total, NULL);
    if (raw == NULL)
        return NULL;
    uintptr_t target = (((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    size_t head = target - (uintptr_t)raw;
    size_t tail = total - head - size;
    if (head > 0)
        ebbi_os_unmap(raw, head);
    if (tail > 0)
        ebbi_os_unmap((uint8_t *)target + size, tail);
    return (void *)target;
}

/* Like ebbi_os_map_aligned (offset 0), where the address space up to
 * `*reach` bytes from the start is left free, for the mapping to grow into
 * in place (mremap without MREMAP_MAYMOVE, which fails rather than take
 * what is there).  Aligned mappings are asked for at an address range of
 * their own (ebbi_os_init), which the kernel's placement, top-down from
 * below the stack, does not reach.  `*reach` says what was left: `size`
 * if the range could not be used. */
void *ebbi_os_map_reach(size_t size, size_t align, size_t *reach)
{
    void *p = map_at_hint(size, align, *reach);
    if (p != NULL)
        return p;
    *reach = size;
    return ebbi_os_map_aligned(size, align, 0);
}

bool ebbi_os_decommit(void *p, size_t size)
{
    int saved = errno;
    COUNT(madvise);
    /* Fails on locked memory (mlock, mlockall): then it keeps its contents. */
    bool ok = !inject(FAULT_MADVISE) && madvise(p, size, MADV_DONTNEED) == 0;
    errno = saved;
    return ok;
}

/* [p, p + size) reads zero after, and no kernel page it covers whole that
 * was not in memory is brought in: of those, the resident runs are
 * cleared in place (they stay, as the callers' counts of resident memory
 * say), the others discarded (never touched, or swapped out: the swap copy
 * goes).  Where the kernel will not say or not discard, the bytes are
 * cleared.  Callers go through ebbi_clear, which memsets small ranges. */
static void clear_pages(uint8_t *at, uint8_t *end, size_t page)
{
    unsigned char in_memory[1024]; /* a call covers this many pages */
    while (at < end) {
        size_t pages = (size_t)(end - at) / page;
        if (pages > sizeof in_memory)
            pages = sizeof in_memory;
        int saved = errno;
        bool known = mincore(at, pages * page, in_memory) == 0;
        errno = saved;
        for (size_t i = 0; i < pages;) {
            size_t run = 1;
            bool resident = !known || (in_memory[i] & 1);
            while (i + run < pages && (!known || (in_memory[i + run] & 1)) == resident)
                run++;
            uint8_t *from = at + i * page;
            if (resident || !ebbi_os_decommit(from, run * page))
                memset(from, 0, run * page);
            i += run;
        }
        at += pages * page;
    }
}

void ebbi_os_clear(void *p, size_t size)
{
    uint8_t *from = p, *end = from + size;
    size_t page = ebbi_os_page_size();
    uint8_t *lo = (uint8_t *)(((uintptr_t)from + page - 1) & ~(uintptr_t)(page - 1));
    uint8_t *hi = (uint8_t *)((uintptr_t)end & ~(uintptr_t)(page - 1));
    memset(from, 0, (size_t)(lo - from));
    clear_pages(lo, hi, page);
    memset(hi, 0, (size_t)(end - hi));
}

/* Many ranges, one call: process_madvise(2) on the process itself
 * (PIDFD_SELF, Linux 6.15; any advice on oneself since 6.13) enters the
 * kernel and flushes the TLB once for the batch, where madvise does it per
 * range.  A kernel without it, a seccomp filter that refuses it, or
 * EBB_PURGE=madvise: one madvise per range, as before. */
#define PIDFD_SELF_PROCESS (-10001)
static _Atomic(bool) batch_refused;

/* The ranges [from, to) one call each. */
static size_t decommit_each(const ebbi_decommit_t *batch, unsigned from, unsigned to)
{
    size_t given = 0;
    for (unsigned i = from; i < to; i++) {
        if (ebbi_os_decommit(batch->range[i].iov_base, batch->range[i].iov_len))
            given += batch->range[i].iov_len;
        else if (batch->refused != NULL)
            batch->refused(batch->range[i].iov_base, batch->range[i].iov_len);
    }
    return given;
}

static void decommit_send(ebbi_decommit_t *batch)
{
    size_t given = 0;
    unsigned done = 0;
#ifdef SYS_process_madvise
    if (batch->count > 1 && !ebbi_load_relaxed(&batch_refused) && ebbi_option(EBB_OPTION_PURGE) != 2) {
        int saved = errno;
        COUNT(madvise);
        long r = inject(FAULT_MADVISE) ? (errno = ENOMEM, -1)
                                       : syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, batch->range,
                                                 (size_t)batch->count, MADV_DONTNEED, 0u);
        if (r < 0 && errno != ENOMEM) {
            /* Not here (an older kernel: EBADF or EINVAL; seccomp), or the
             * first range refused it (locked memory: EINVAL).  That range
             * alone tells which. */
            given += decommit_each(batch, 0, 1);
            if (given > 0)
                ebbi_store_relaxed(&batch_refused, true);
            done = 1;
        }
        /* The kernel stops at a range it cannot advise: the ranges before
         * it are done, and the rest go one call each. */
        size_t advised = r > 0 ? (size_t)r : 0;
        while (done < batch->count && batch->range[done].iov_len <= advised) {
            advised -= batch->range[done].iov_len;
            given += batch->range[done].iov_len;
            done++;
        }
        errno = saved;
    }
#endif
    given += decommit_each(batch, done, batch->count);
    batch->count = 0;
    batch->given += given;
}

void ebbi_os_decommit_add(ebbi_decommit_t *batch, void *p, size_t size)
{
    if (batch->count > 0) {
        struct iovec *last = &batch->range[batch->count - 1];
        if ((char *)last->iov_base + last->iov_len == (char *)p) {
            last->iov_len += size;
            return;
        }
    }
    if (batch->count == EBB_DECOMMIT_BATCH)
        decommit_send(batch);
    batch->range[batch->count].iov_base = p;
    batch->range[batch->count].iov_len = size;
    batch->count++;
}

size_t ebbi_os_decommit_flush(ebbi_decommit_t *batch)
{
    decommit_send(batch);
    size_t given = batch->given;
    batch->given = 0;
    return given;
}

bool ebbi_os_purge_lazily(void *p, size_t size)
{
    int saved = errno;
    COUNT(madvise);
    bool ok = !inject(FAULT_MADVISE) && madvise(p, size, MADV_FREE) == 0;
    errno = saved;
    return ok;
}

bool ebbi_os_resize_in_place(void *p, size_t old_size, size_t new_size)
{
    int saved = errno;
    COUNT(mremap);
    if (inject(FAULT_MREMAP))
        return false;
    void *r = mremap(p, old_size, new_size, 0);
    errno = saved;
    return r == p;
}

/* Moves the pages of [old, old + old_size) to the start of the mapping at
 * target (at least old_size long), without copying; the rest of the target
 * stays as it was mapped.  Moving only old_size bytes, not growing in the
 * same call, keeps the grown part a plain mapping that tools which track
 * mappings (valgrind) know. */
bool ebbi_os_move(void *old, size_t old_size, void *target)
{
    int saved = errno;
    COUNT(mremap);
    if (inject(FAULT_MREMAP))
        return false;
    void *r = mremap(old, old_size, old_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    errno = saved;
    return r == target;
}

void *ebbi_os_brk_current(void)
{
    int saved = errno;
    void *p = sbrk(0);
    errno = saved;
    return p == (void *)-1 ? NULL : p;
}

void *ebbi_os_brk_move(intptr_t delta)
{
    int saved = errno;
    COUNT(brk);
    if (inject(FAULT_BRK))
        return NULL;
    void *p = sbrk(delta);
    errno = saved;
    return p == (void *)-1 ? NULL : p;
}

size_t ebbi_os_page_size(void)
{
    unsigned long ps = getauxval(AT_PAGESZ);
    return ps != 0 ? ps : 4096;
}

unsigned ebbi_os_cpu_count(void)
{
    int saved = errno;
    cpu_set_t set;
    unsigned n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0)
            n = (unsigned)c;
    }
    errno = saved;
    return n;
}

uintptr_t ebbi_os_random_word(void)
{
    /* The kernel's 16 random bytes for this process (no system call). */
    const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
    uintptr_t w = 0x9e3779b97f4a7c15u;
    if (r != NULL) {
        for (int i = 0; i < 16; i++)
            w = (w ^ r[i]) * 0x100000001b3u;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w ^= (uintptr_t)ts.tv_nsec * 0xff51afd7ed558ccdu;
    w ^= (uintptr_t)&os_counts; /* ASLR */
    w ^= w >> 29;
    return w | 1;
}

uint64_t ebbi_os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* To the nanosecond (the vDSO reads the TSC: tens of ns), for measuring
 * what takes microseconds; ebbi_os_now_ns is cheaper and ticks by ms. */
uint64_t ebbi_os_precise_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ebbi_os_write_stderr(const char *s, size_t n)
{
    ebbi_os_write_fd(2, s, n);
}

int ebbi_os_dup_stderr(void)
{
    int saved = errno;
    int fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
    errno = saved;
    return fd;
}

void ebbi_os_write_fd(int fd, const char *s, size_t n)
{
    int saved = errno;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

void ebbi_os_abort(void)
{
    abort();
}

void ebbi_os_yield(void)
{
    sched_yield();
}

/* The service thread's bell: a condition variable on the monotonic clock,
 * whose waits are the blocking calls of the C library's threads. */
void ebbi_os_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

void ebbi_os_cond_signal(pthread_cond_t *cond)
{
    pthread_cond_signal(cond);
}

/* Wait, `lock` held, until signalled or until the monotonic clock reads
 * `at_ns` (EBBI_NEVER: no deadline); spurious wake-ups are the caller's. */
void ebbi_os_cond_wait(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t at_ns)
{
    int saved = errno;
    if (at_ns == EBBI_NEVER) {
        pthread_cond_wait(cond, lock);
    } else {
        struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000u), .tv_nsec = (long)(at_ns % 1000000000u)};
        pthread_cond_timedwait(cond, lock, &ts);
    }
    errno = saved;
}

/* The commands of membarrier(2) (linux/membarrier.h, spelt out here so the
 * build needs no kernel headers beyond the system call's number). */
#define MEMBARRIER_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_REGISTER_PRIVATE_EXPEDITED (1 << 4)

bool ebbi_os_barrier_all_threads(void)
{
#ifdef SYS_membarrier
    /* 0 untried, 1 registered, -1 not available (old kernel, seccomp, valgrind). */
    static _Atomic(int) state;
    int saved = errno;
    int s = ebbi_load_acquire(&state);
    if (s == 0) {
        s = syscall(SYS_membarrier, MEMBARRIER_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : -1;
        ebbi_store_release(&state, s);
    }
    bool done = s == 1 && syscall(SYS_membarrier, MEMBARRIER_PRIVATE_EXPEDITED, 0, 0) == 0;
    errno = saved;
    return done;
#else
    return false;
#endif
}

bool ebbi_os_protect(void *p, size_t size, ebbi_access_t access)
{
    int saved = errno;
    COUNT(mprotect);
    bool ok = mprotect(p, size, access == EBBI_ACCESS_RW ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
    errno = saved;
    return ok;
}

/* Makes [p, p + size) a mapping of its own, one that never merges with its
 * neighbours: its protection can then change without the kernel splitting
 * and merging mappings (half the cost of an mprotect).  The mark used is
 * VM_NOHUGEPAGE, harmless on a region too small for a huge page. */
bool ebbi_os_isolate(void *p, size_t size)
{
    int saved = errno;
    COUNT(madvise);
    bool ok = madvise(p, size, MADV_NOHUGEPAGE) == 0;
    errno = saved;
    return ok;
}

/* The guard modes' fault handler, installed in front of the program's;
 * the program's (or the default action) gets every fault that is not a
 * guarded block's. */
static struct sigaction previous_segv;

/* A detached thread named `name`, all signals blocked in it (the
 * program's handlers run on its own threads); false if none was made.
 * Creating a thread allocates (its stack, its TLS). */
bool ebbi_os_thread_start(void *(*main)(void *), const char *name)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the thread */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&t, &attr, main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed)
        return false;
    pthread_setname_np(t, name);
    return true;
}

/* The symbol and file of a code address, for a report: "sym (file+0x..)",
 * "file+0x..", or the address. */
const char *ebbi_os_code_name(uintptr_t addr, char *buf, size_t cap)
{
    Dl_info info;
    if (dladdr((void *)addr, &info) != 0 && info.dli_fname != NULL) {
        const char *file = info.dli_fname;
        for (const char *c = file; *c != '\0'; c++)
            if (*c == '/')
                file = c + 1;
        if (info.dli_sname != NULL)
            ebbi_format(buf, cap, "%s (%s+0x%lx)", info.dli_sname, file,
                        (unsigned long)(addr - (uintptr_t)info.dli_fbase));
        else
            ebbi_format(buf, cap, "%s+0x%lx", file, (unsigned long)(addr - (uintptr_t)info.dli_fbase));
    } else {
        ebbi_format(buf, cap, "%p", (void *)addr);
    }
    return buf;
}

/* ---- stacks (the heap profiler's, unwind.c) ----------------------------------- */

/* The C runtime's unwinder (libgcc_s): a walk with a callback per frame.
 * Found already loaded (C++ programs, and any that used pthread_cancel),
 * else loaded; only when profiling is on, so that the library itself
 * depends on nothing but the C library.  And the loader's index of the
 * objects' code (_dl_find_object, glibc 2.35), for the fast walk. */
typedef int (*unwind_trace_fn)(void *context, void *arg);
static int (*unwind_backtrace)(unwind_trace_fn trace, void *arg);
static uintptr_t (*unwind_get_ip)(void *context);
static uintptr_t self_lo, self_hi; /* this library's code */
#ifdef DLFO_STRUCT_HAS_EH_DBASE
static int (*find_object)(void *address, struct dl_find_object *result);
#endif

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t here = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && here >= lo && here < lo + ph->p_memsz) {
            self_lo = lo;
            self_hi = lo + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

bool ebbi_os_unwinder_load(void)
{
    int saved = errno;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)ebbi_os_unwinder_load);
    void *bt = dlsym(RTLD_DEFAULT, "_Unwind_Backtrace");
    void *ip = dlsym(RTLD_DEFAULT, "_Unwind_GetIP");
    if (bt == NULL || ip == NULL) {
        void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
        if (lib != NULL) {
            bt = dlsym(lib, "_Unwind_Backtrace");
            ip = dlsym(lib, "_Unwind_GetIP");
        }
    }
#ifdef DLFO_STRUCT_HAS_EH_DBASE
    void *find = dlsym(RTLD_DEFAULT, "_dl_find_object");
    if (find != NULL)
        memcpy(&find_object, &find, sizeof find);
#endif
    errno = saved;
    if (bt == NULL || ip == NULL)
        return false;
    memcpy(&unwind_backtrace, &bt, sizeof bt);
    memcpy(&unwind_get_ip, &ip, sizeof ip);
    return true;
}

bool ebbi_os_self_code(uintptr_t ip)
{
    return ip >= self_lo && ip < self_hi;
}

typedef struct {
    bool (*add)(void *arg, uintptr_t ip);
    void *arg;
} libgcc_walk_t;

static int libgcc_step(void *context, void *arg)
{
    libgcc_walk_t *w = arg;
    uintptr_t ip = unwind_get_ip(context);
    if (ip == 0)
        return 5; /* _URC_END_OF_STACK */
    return w->add(w->arg, ip) ? 0 : 4; /* _URC_NORMAL_STOP */
}

bool ebbi_os_unwind(bool (*add)(void *arg, uintptr_t ip), void *arg)
{
    if (unwind_backtrace == NULL)
        return false;
    libgcc_walk_t w = {add, arg};
    unwind_backtrace(libgcc_step, &w);
    return true;
}

const void *ebbi_os_code_frame_info(uintptr_t pc)
{
#ifdef DLFO_STRUCT_HAS_EH_DBASE
    struct dl_find_object object;
    if (find_object != NULL && find_object((void *)pc, &object) == 0)
        return object.dlfo_eh_frame;
#else
    (void)pc;
#endif
    return NULL;
}

static int count_unloads(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(unsigned long long *)arg = info->dlpi_subs;
    return 1; /* the count is the same in every entry */
}

unsigned long long ebbi_os_objects_unloaded(void)
{
    unsigned long long subs = 0;
    dl_iterate_phdr(count_unloads, &subs);
    return subs;
}

uint32_t ebbi_os_thread_id(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

int ebbi_os_open_read(const char *path)
{
    int saved = errno;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    errno = saved;
    return fd;
}

/* Up to cap bytes; 0 at the end or on an error. */
size_t ebbi_os_read_some(int fd, char *buf, size_t cap)
{
    int saved = errno;
    ssize_t r;
    do
        r = read(fd, buf, cap);
    while (r < 0 && errno == EINTR);
    errno = saved;
    return r > 0 ? (size_t)r : 0;
}

bool ebbi_os_file_exists(const char *path)
{
    int saved = errno;
    bool there = access(path, F_OK) == 0;
    errno = saved;
    return there;
}

void ebbi_os_remove_file(const char *path)
{
    int saved = errno;
    unlink(path);
    errno = saved;
}

int ebbi_os_create_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

void ebbi_os_close(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

bool ebbi_os_install_fault_handler(void (*handler)(int, void *, void *))
{
    int saved = errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    bool ok = sigaction(SIGSEGV, &sa, &previous_segv) == 0;
    errno = saved;
    return ok;
}

/* Hand a fault on: to the handler that was there before ours, or, if that
 * was the default, restore it and return, so that the faulting instruction
 * runs again and the fault takes its course (the signal is "re-raised"). */
void ebbi_os_fault_chain(int sig, void *info, void *context)
{
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(sig, info, context);
        return;
    }
    if (previous_segv.sa_handler == SIG_DFL || previous_segv.sa_handler == SIG_IGN) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        return;
    }
    previous_segv.sa_handler(sig);
}

void *ebbi_os_map_new_file(const char *path, size_t size)
{
    int saved = errno;
    void *p = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (ftruncate(fd, (off_t)size) == 0) {
            COUNT(mmap);
            p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED)
                p = NULL;
        }
        close(fd);
    }
    errno = saved;
    return p;
}

size_t ebbi_os_self_exe(char *buf, size_t cap)
{
    int saved = errno;
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    errno = saved;
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return (size_t)n;
}

/* The start of a small file (/proc, /sys): up to cap - 1 bytes, then a
 * terminating zero; 0 if it cannot be read. */
size_t ebbi_os_read_file(const char *path, char *buf, size_t cap)
{
    int saved = errno;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        while (n + 1 < cap) {
            ssize_t r = read(fd, buf + n, cap - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        close(fd);
    }
    buf[n] = '\0';
    errno = saved;
    return n;
}

/* The soft limit of RLIMIT_AS (as_limit) or RLIMIT_DATA; UINT64_MAX if
 * there is none. */
uint64_t ebbi_os_rlimit(ebbi_rlimit_t which)
{
    int saved = errno;
    struct rlimit rl;
    uint64_t v = UINT64_MAX;
    if (getrlimit(which == EBBI_RLIMIT_AS ? RLIMIT_AS : RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        v = (uint64_t)rl.rlim_cur;
    errno = saved;
    return v;
}

unsigned ebbi_os_thread_count(void)
{
    char buf[1024];
    if (ebbi_os_read_file("/proc/self/stat", buf, sizeof buf) == 0)
        return 0;
    /* Field 20; the name (field 2) may hold spaces and parentheses. */
    const char *s = strrchr(buf, ')');
    for (int field = 2; s != NULL && field < 20; field++)
        s = strchr(s + 1, ' ');
    if (s == NULL)
        return 0;
    unsigned n = 0;
    for (s++; *s >= '0' && *s <= '9'; s++)
        n = n * 10 + (unsigned)(*s - '0');
    return n;
}

int ebbi_os_pid(void)
{
    return (int)getpid();
}

int ebbi_os_ppid(void)
{
    return (int)getppid();
}

void ebbi_os_init(uintptr_t random)
{
    /* Aligned mappings are asked for from a randomized base above 2 TiB. */
    uintptr_t base = ((uintptr_t)2 << 40) + ((random & 0xffff) << EBB_SEGMENT_SHIFT);
    ebbi_store_relaxed(&aligned_hint, base);
}
