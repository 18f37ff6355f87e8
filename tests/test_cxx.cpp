// Run with LD_PRELOAD=libebbmalloc.so: C++'s new and delete (plain, array,
// sized, aligned) and the standard containers run on ebbmalloc.
// malloc_usable_size is ebbmalloc's, and it aborts on any pointer that is
// not its own, so each check below also proves where the memory came from.
#include <dlfcn.h>
#include <malloc.h>

#include <cstdint>
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

static bool ours(void *p)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    return dladdr(sym, &info) && std::strstr(info.dli_fname, "libebbmalloc") && malloc_usable_size(p) > 0;
}

int main()
{
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
    for (int i = 0; i < 100000; i++)
        words.push_back("word number " + std::to_string(i) + std::string(i % 50, 'x'));
    CHECK(ours(words.data()) && words[99999].compare(0, 17, "word number 99999") == 0, "vector<string>");

    std::map<int, std::string> ordered;
    std::unordered_map<std::string, int> hashed;
    for (int i = 0; i < 50000; i++) {
        ordered[i] = std::to_string(i * 3);
        hashed[words[i]] = i;
    }
    long sum = 0;
    for (auto &kv : ordered)
        sum += std::stol(kv.second);
    CHECK(sum == 3L * 49999 * 50000 / 2, "map contents");
    CHECK(hashed[words[1234]] == 1234, "unordered_map contents");

    auto shared = std::make_shared<std::vector<int>>(1000, 7);
    std::unique_ptr<char[]> buffer(new char[1 << 20]);
    CHECK(ours(buffer.get()) && (*shared)[999] == 7);

    // Containers built in threads and destroyed in another.
    std::vector<std::unique_ptr<std::vector<std::string>>> built(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++)
        threads.emplace_back([&built, t] {
            auto v = std::make_unique<std::vector<std::string>>();
            for (int i = 0; i < 20000; i++)
                v->push_back(std::to_string(t * 100000 + i));
            built[t] = std::move(v);
        });
    for (auto &th : threads)
        th.join();
    bool intact = true;
    for (int t = 0; t < 8; t++)
        intact = intact && (*built[t])[19999] == std::to_string(t * 100000 + 19999);
    CHECK(intact, "containers built in other threads");
    built.clear();

    // thread_local destructors free at thread exit.
    std::vector<std::thread> exiting;
    for (int t = 0; t < 16; t++)
        exiting.emplace_back([t] {
            for (int i = 0; i < 1000; i++)
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
