/* Death tests: each misuse runs in a child process with ebbmalloc
 * preloaded (EBB_TEST_LIB); the child must die of SIGABRT after printing
 * exactly "ebbmalloc: error: <what> (<the pointer>)" — never a segfault,
 * never silence. */
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* The misuse here is deliberate. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

static void announce(void *p)
{
    printf("%p\n", p);
    fflush(stdout);
}

/* Keep the compiler from reasoning about misuse it can see. */
static void *volatile sink;

static int misuse(const char *mode)
{
    if (strcmp(mode, "free-stack") == 0) {
        char local[64];
        sink = local;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-interior") == 0) {
        char *p = malloc(64);
        announce(p + 16);
        free(p + 16);
    } else if (strcmp(mode, "free-interior-huge") == 0) {
        char *p = malloc(10u << 20);
        announce(p + 4096);
        free(p + 4096);
    } else if (strcmp(mode, "free-unaligned") == 0) {
        char *p = malloc(64);
        announce(p + 1);
        free(p + 1);
    } else if (strcmp(mode, "free-own-mmap") == 0) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        announce(p);
        free(p);
    } else if (strcmp(mode, "free-wild") == 0) {
        sink = (void *)(uintptr_t)0x7abc12345670;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-kernel-address") == 0) {
        sink = (void *)(uintptr_t)0xffff880000001000;
        announce(sink);
        free(sink);
    } else if (strcmp(mode, "free-never-allocated") == 0) {
        /* Inside a page, past every block carved so far. */
        char *p = malloc(32);
        announce(p + 32 * 1000);
        free(p + 32 * 1000);
    } else if (strcmp(mode, "double-free-small") == 0) {
        void *p = malloc(24);
        free(p);
        announce(p);
        free(p);
    } else if (strcmp(mode, "double-free-after-others") == 0) {
        void *keep = malloc(100);
        void *p = malloc(100);
        void *q[50];
        for (int i = 0; i < 50; i++)
            q[i] = malloc(100);
        free(p);
        for (int i = 0; i < 50; i++)
            free(q[i]);
        announce(p);
        free(p);
        free(keep);
    } else if (strcmp(mode, "double-free-medium") == 0) {
        void *keep = malloc(100000);
        void *p = malloc(100000);
        free(p);
        announce(p);
        free(p);
        free(keep);
    } else if (strcmp(mode, "double-free-huge") == 0) {
        void *p = malloc(8u << 20);
        free(p);
        announce(p);
        free(p);
    } else if (strcmp(mode, "realloc-invalid") == 0) {
        char *p = malloc(64);
        announce(p + 32);
        sink = realloc(p + 32, 100);
    } else if (strcmp(mode, "realloc-freed") == 0) {
        void *keep = malloc(64);
        void *p = malloc(64);
        free(p);
        announce(p);
        sink = realloc(p, 100);
        free(keep);
    } else if (strcmp(mode, "usable-size-invalid") == 0) {
        char local[32];
        sink = local;
        announce(sink);
        printf("%zu\n", malloc_usable_size(sink));
    } else {
        return 2;
    }
    return 0; /* the misuse went unnoticed */
}

typedef struct {
    const char *mode;
    const char *what;
} expectation_t;

static const expectation_t cases[] = {
    {"free-stack", "free of invalid pointer"},
    {"free-interior", "free of invalid pointer"},
    {"free-interior-huge", "free of invalid pointer"},
    {"free-unaligned", "free of invalid pointer"},
    {"free-own-mmap", "free of invalid pointer"},
    {"free-wild", "free of invalid pointer"},
    {"free-kernel-address", "free of invalid pointer"},
    {"free-never-allocated", "free of invalid pointer"},
    {"double-free-small", "double free"},
    {"double-free-after-others", "double free"},
    {"double-free-medium", "double free"},
    {"double-free-huge", "double free"},
    {"realloc-invalid", "realloc of invalid pointer"},
    {"realloc-freed", "use of a freed block"},
    {"usable-size-invalid", "malloc_usable_size of invalid pointer"},
};

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

static void run_case(const char *self, const char *lib, const expectation_t *c)
{
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        setenv("LD_PRELOAD", lib, 1);
        execl(self, self, c->mode, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    char out_text[256], err_text[4096];
    read_all(out[0], out_text, sizeof out_text);
    read_all(err[0], err_text, sizeof err_text);
    close(out[0]);
    close(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);

    out_text[strcspn(out_text, "\n")] = '\0';
    char expected[512];
    snprintf(expected, sizeof expected, "ebbmalloc: error: %s (%s)\n", c->what, out_text);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: expected SIGABRT, got %s %d",
          c->mode, WIFSIGNALED(status) ? "signal" : "exit",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    CHECK(strstr(err_text, expected) != NULL, "%s: expected \"%.*s\" on stderr, got \"%s\"", c->mode,
          (int)strlen(expected) - 1, expected, err_text);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return misuse(argv[1]);
    const char *lib = getenv("EBB_TEST_LIB");
    REQUIRE(lib != NULL, "EBB_TEST_LIB names libebbmalloc.so");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case("/proc/self/exe", lib, &cases[i]);
    return check_summary();
}
