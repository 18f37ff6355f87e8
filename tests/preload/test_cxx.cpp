// test: cxx              fast
// test: cxx-secure       long EBB_SECURE=1
// test: cxx-zero         long EBB_ZERO_ON_FREE=1
// test: cxx-guard        long EBB_GUARD=1
// test: cxx-guard-before long EBB_GUARD=before
// test: cxx-sample       long EBB_GUARD_SAMPLE=100
// test: cxx-profile      long EBB_PROFILE=1 EBB_PROFILE_RATE=4096
// build: -fsized-deallocation
// Run with LD_PRELOAD=libebbmalloc.so: C++'s new and delete (plain, array,
// sized, aligned) and the standard containers run on ebbmalloc.
// malloc_usable_size is ebbmalloc's, and it aborts on any pointer that is
// not its own, so each check below also proves where the memory came from.
#include <dlfcn.h>
#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "check.h"

struct alignas(64) CacheLine {
    char bytes[64];
};

struct alignas(4096) PageAligned {
    char bytes[100];
};

// Blocks stored here are observable, so no compiler elides them.
void *volatile cxx_sink;

// Destroyed when its thread exits, after the thread's function returned.
static thread_local std::vector<std::string> per_thread;

// Every form of operator new and delete is ebbmalloc's own, not
// libstdc++'s (which would call malloc and drop delete's size).
static const char *const operator_names[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static bool ours(void *p);

static bool from_ebbmalloc(const char *name)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, name);
    return sym != nullptr && dladdr(sym, &info) && std::strstr(info.dli_fname, "libebbmalloc") != nullptr;
}

static int handler_calls;
static void give_up_handler()
{
    handler_calls++;
    std::set_new_handler(nullptr); // the next failure throws
}

static void test_operators()
{
    int foreign = 0;
    for (const char *name : operator_names)
        if (!from_ebbmalloc(name)) {
            std::printf("  %s is not ebbmalloc's\n", name);
            foreign++;
        }
    CHECK(foreign == 0, "%d of the 20 operators new and delete are not ebbmalloc's", foreign);

    volatile size_t impossible = static_cast<size_t>(PTRDIFF_MAX) / 2;
    CHECK(::operator new(impossible, std::nothrow) == nullptr, "nothrow new of an impossible size: nullptr");
    CHECK(::operator new[](impossible, std::nothrow) == nullptr, "nothrow new[] of an impossible size: nullptr");
    CHECK(::operator new(impossible, std::align_val_t(64), std::nothrow) == nullptr, "aligned nothrow new: nullptr");
    bool threw = false;
    try {
        cxx_sink = ::operator new(impossible, std::align_val_t(256));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "aligned new of an impossible size throws std::bad_alloc");

    // The new handler is called on failure, then (gone) std::bad_alloc.
    std::set_new_handler(give_up_handler);
    threw = false;
    try {
        cxx_sink = ::operator new(impossible);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && handler_calls == 1, "new: the handler called once (%d), then std::bad_alloc", handler_calls);

    // Each delete form on a block of the matching new.
    void *a = ::operator new(24, std::nothrow);
    void *b = ::operator new[](3000);
    void *c = ::operator new(100, std::align_val_t(128), std::nothrow);
    void *d = ::operator new[](5000, std::align_val_t(4096));
    CHECK(ours(a) && ours(b) && ours(c) && ours(d) && reinterpret_cast<uintptr_t>(c) % 128 == 0 &&
              reinterpret_cast<uintptr_t>(d) % 4096 == 0,
          "nothrow, array and aligned new");
    ::operator delete(a, std::nothrow);
    ::operator delete[](b, 3000);
    ::operator delete(c, 100, std::align_val_t(128));
    ::operator delete[](d, std::align_val_t(4096), std::nothrow);
    void *e = ::operator new(0);
    void *f = ::operator new[](0);
    CHECK(e != nullptr && f != nullptr && e != f, "new of 0 bytes: distinct pointers");
    ::operator delete(e, static_cast<size_t>(0));
    ::operator delete[](f);
}

static bool ours(void *p)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    return dladdr(sym, &info) && std::strstr(info.dli_fname, "libebbmalloc") && malloc_usable_size(p) > 0;
}

int main()
{
    // With every block a mapping of its own (EBB_GUARD), fewer blocks:
    // the kernel's limit of 65,530 mappings a process holds counts the
    // live ones and the quarantine.
    const char *guard = std::getenv("EBB_GUARD");
    const int n = guard != nullptr && std::strcmp(guard, "0") != 0 ? 4000 : 100000;
    test_operators();
    int *one = new int(42);
    CHECK(ours(one) && *one == 42, "new");
    delete one;

    double *many = new double[1000]();
    CHECK(ours(many) && malloc_usable_size(many) >= 8000 && many[999] == 0.0, "new[]");
    delete[] many;

    CacheLine *lines = new CacheLine[10];
    CHECK(ours(lines) && reinterpret_cast<uintptr_t>(lines) % 64 == 0, "aligned new[] (64)");
    delete[] lines;

    PageAligned *page = new PageAligned;
    CHECK(ours(page) && reinterpret_cast<uintptr_t>(page) % 4096 == 0, "aligned new (4096)");
    delete page;

    void *raw = ::operator new(100000, std::align_val_t(1 << 16));
    CHECK(ours(raw) && reinterpret_cast<uintptr_t>(raw) % (1 << 16) == 0, "operator new(align_val_t)");
    ::operator delete(raw, std::align_val_t(1 << 16));

    std::vector<std::string> words;
    for (int i = 0; i < n; i++)
        words.push_back("word number " + std::to_string(i) + std::string(i % 50, 'x'));
    const std::string last = "word number " + std::to_string(n - 1);
    CHECK(ours(words.data()) && words[n - 1].compare(0, last.size(), last) == 0, "vector<string>");

    std::map<int, std::string> ordered;
    std::unordered_map<std::string, int> hashed;
    for (int i = 0; i < n / 2; i++) {
        ordered[i] = std::to_string(i * 3);
        hashed[words[i]] = i;
    }
    long sum = 0;
    for (auto &kv : ordered)
        sum += std::stol(kv.second);
    CHECK(sum == 3L * (n / 2 - 1) * (n / 2) / 2, "map contents");
    CHECK(hashed[words[1234]] == 1234, "unordered_map contents");

    auto shared = std::make_shared<std::vector<int>>(1000, 7);
    std::unique_ptr<char[]> buffer(new char[1 << 20]);
    CHECK(ours(buffer.get()) && (*shared)[999] == 7);

    // Containers built in threads and destroyed in another.
    std::vector<std::unique_ptr<std::vector<std::string>>> built(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++)
        threads.emplace_back([&built, t, n] {
            auto v = std::make_unique<std::vector<std::string>>();
            for (int i = 0; i < n / 5; i++)
                v->push_back(std::to_string(t * 100000 + i));
            built[t] = std::move(v);
        });
    for (auto &th : threads)
        th.join();
    bool intact = true;
    for (int t = 0; t < 8; t++)
        intact = intact && (*built[t])[n / 5 - 1] == std::to_string(t * 100000 + n / 5 - 1);
    CHECK(intact, "containers built in other threads");
    built.clear();

    // thread_local destructors free at thread exit.
    std::vector<std::thread> exiting;
    for (int t = 0; t < 16; t++)
        exiting.emplace_back([t, n] {
            for (int i = 0; i < n / 100; i++)
                per_thread.push_back(std::string(40, static_cast<char>('a' + t % 26)) + std::to_string(i));
        });
    for (auto &th : exiting)
        th.join();
    CHECK(true, "thread_local containers destroyed at thread exit");

    try {
        std::vector<char> impossible(static_cast<size_t>(PTRDIFF_MAX) / 2);
        cxx_sink = impossible.data(); // observable: the allocation cannot be elided
        CHECK(false, "an impossible vector was allocated");
    } catch (const std::bad_alloc &) {
        CHECK(true);
    }
    return check_summary();
}
