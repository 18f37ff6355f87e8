/* ebb: the program run on the library, and the sampling of the statistics
 * pages its processes publish (src/publish.h); the page of a running
 * process for ebb stats.  Resident memory comes from /proc.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ebb.h"

#ifndef EBB_LIBDIR
#define EBB_LIBDIR "/usr/local/lib"
#endif

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the pages ---------------------------------------------------------------- */

bool run_read_page(const ebb_published_t *page, ebb_published_t *out)
{
    const _Atomic uint64_t *seq = (const _Atomic uint64_t *)&page->seq;
    for (int tries = 0; tries < 100; tries++) {
        uint64_t before = atomic_load_explicit(seq, memory_order_acquire);
        if (before & 1)
            continue;
        memcpy(out, page, sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(seq, memory_order_relaxed) == before && out->magic == EBB_PUBLISH_MAGIC)
            /* A page of another version of the library: not ours to read. */
            return out->version == EBB_PUBLISH_VERSION && out->size == sizeof *out;
    }
    return false;
}

const ebb_published_t *run_map_page(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, EBB_PUBLISH_FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/* New pages in the directory become new series. */
static void scan_dir(run_t *r)
{
    DIR *d = opendir(r->dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ebb") != 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        bool known = false;
        for (size_t i = 0; i < r->count && !known; i++)
            known = strcmp(r->series[i].path, path) == 0;
        if (known)
            continue;
        const ebb_published_t *page = run_map_page(path);
        if (page == NULL)
            continue;
        r->series = ebb_grow(r->series, &r->cap, r->count + 1, sizeof *r->series);
        series_t *s = &r->series[r->count++];
        memset(s, 0, sizeof *s);
        snprintf(s->path, sizeof s->path, "%s", path);
        s->page = page;
    }
    closedir(d);
}

uint64_t run_proc_rss(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* One sample of every live series. */
static void sample_all(run_t *r)
{
    double t = (double)(now_ns() - r->t0_ns) / 1e6;
    for (size_t i = 0; i < r->count; i++) {
        series_t *s = &r->series[i];
        if (s->done)
            continue;
        ebb_published_t copy;
        if (!run_read_page(s->page, &copy))
            continue;
        /* An exec replaces the image: its page stops moving, and the pid's
         * next page belongs to the new image.  A newer page of the same pid
         * (or an exited flag) ends this series. */
        bool replaced = false;
        for (size_t j = 0; j < r->count; j++)
            if (j != i && r->series[j].page->pid == copy.pid && r->series[j].page->start_ns > copy.start_ns)
                replaced = true;
        s->last = copy;
        s->have_last = true;
        s->samples = ebb_grow(s->samples, &s->cap, s->count + 1, sizeof *s->samples);
        sample_t *x = &s->samples[s->count++];
        x->t_ms = t;
        x->s = copy.stats;
        x->proc_rss = copy.exited || replaced ? 0 : run_proc_rss(copy.pid);
        if (copy.exited || replaced)
            s->done = true;
    }
}

/* ---- what the samples come to --------------------------------------------------- */

series_t *run_main_series(const run_t *r)
{
    series_t *best = NULL;
    for (size_t i = 0; i < r->count; i++)
        if (r->series[i].have_last && r->series[i].last.pid == r->pid &&
            (best == NULL || r->series[i].last.start_ns < best->last.start_ns))
            best = &r->series[i];
    return best;
}

peaks_t run_peaks(const series_t *s)
{
    peaks_t p = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < s->count; i++) {
        const sample_t *x = &s->samples[i];
        if (x->s.in_use > p.in_use)
            p.in_use = x->s.in_use;
        if (x->s.resident > p.resident)
            p.resident = x->s.resident;
        if (x->s.freed_retained > p.freed)
            p.freed = x->s.freed_retained;
        if (x->proc_rss > p.proc_rss)
            p.proc_rss = x->proc_rss;
        if (x->s.kept_predicted > p.kept)
            p.kept = x->s.kept_predicted;
    }
    return p;
}

static int by_bytes_allocated(const void *a, const void *b)
{
    uint64_t x = ((const class_row_t *)a)->bytes, y = ((const class_row_t *)b)->bytes;
    return x > y ? -1 : x < y;
}

unsigned run_class_rows(const series_t *m, class_row_t rows[EBB_PUBLISH_CLASSES])
{
    unsigned n = 0;
    for (uint32_t c = 0; c < m->last.class_count && c < EBB_PUBLISH_CLASSES; c++) {
        const ebb_published_class_t *k = &m->last.classes[c];
        if (k->allocs != 0)
            rows[n++] = (class_row_t){k->block_size, k->allocs, k->frees, k->allocs * k->block_size};
    }
    qsort(rows, n, sizeof *rows, by_bytes_allocated);
    return n;
}

/* ---- ebb run ---------------------------------------------------------------------- */

static void find_library(char *out, size_t cap)
{
    const char *env = getenv("EBB_LIB");
    if (env != NULL && access(env, R_OK) == 0) {
        snprintf(out, cap, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            const char *candidates[] = {"%s/libebbmalloc.so", "%s/../lib/libebbmalloc.so"};
            for (int i = 0; i < 2; i++) {
                snprintf(out, cap, candidates[i], self);
                if (access(out, R_OK) == 0)
                    return;
            }
        }
    }
    snprintf(out, cap, "%s/libebbmalloc.so", EBB_LIBDIR);
    if (access(out, R_OK) != 0)
        ebb_die("cannot find libebbmalloc.so (beside ebb, in %s, or EBB_LIB)", EBB_LIBDIR);
}

void run_remove_dir(const run_t *r)
{
    DIR *d = opendir(r->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(r->dir);
}

int run_program(run_t *r, char **prog, long interval, const char *profile, bool live)
{
    memset(r, 0, sizeof *r);
    char lib[PATH_MAX];
    find_library(lib, sizeof lib);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(r->dir, sizeof r->dir, "%s/ebb-XXXXXX", base);
    if (mkdtemp(r->dir) == NULL)
        ebb_die("cannot create a directory in %s: %s", base, strerror(errno));

    /* Like time(1): the program gets the terminal's signals; ebb waits. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    /* SIGCHLD is waited for, so that ebb sees the end at once. */
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    r->t0_ns = now_ns();
    pid_t child = fork();
    if (child < 0)
        ebb_die("fork: %s", strerror(errno));
    if (child == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        const char *old = getenv("LD_PRELOAD");
        char preload[PATH_MAX * 2];
        snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? " " : "", old && *old ? old : "");
        char ms[32];
        snprintf(ms, sizeof ms, "%ld", interval);
        setenv("LD_PRELOAD", preload, 1);
        setenv("EBB_PUBLISH", r->dir, 1);
        setenv("EBB_PUBLISH_INTERVAL_MS", ms, 1);
        if (profile != NULL) {
            /* Each process of the program writes its own: FILE.PID. */
            char out[PATH_MAX];
            snprintf(out, sizeof out, "%s.%%p", profile);
            setenv("EBB_PROFILE", "1", 1);
            setenv("EBB_PROFILE_OUT", out, 1);
        }
        execvp(prog[0], prog);
        fprintf(stderr, "ebb: cannot run %s: %s\n", prog[0], strerror(errno));
        _exit(127);
    }
    r->pid = child;

    int status = 0;
    for (;;) {
        scan_dir(r);
        sample_all(r);
        if (live)
            text_status_line(r);
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
        struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
        sigtimedwait(&chld, NULL, &ts);
    }
    /* The last pages, written at exit. */
    scan_dir(r);
    sample_all(r);
    if (live)
        text_status_clear();
    return status;
}

int run_exit_as(int status)
{
    if (WIFSIGNALED(status)) {
        /* Die the same way. */
        signal(WTERMSIG(status), SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        raise(WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* ---- ebb stats PID ---------------------------------------------------------------- */

/* The newest page of `pid` in DIR/ebb-* (and in $EBB_PUBLISH). */
static bool find_page_of(int pid, const char *root, char *best, uint64_t *best_start)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%d-", pid);
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (strncmp(e->d_name, "ebb-", 4) == 0) {
            snprintf(path, sizeof path, "%s/%s", root, e->d_name);
            found |= find_page_of(pid, path, best, best_start);
            continue;
        }
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        uint64_t start = strtoull(e->d_name + strlen(prefix), NULL, 10);
        if (start >= *best_start) {
            snprintf(best, PATH_MAX, "%s/%s", root, e->d_name);
            *best_start = start;
            found = true;
        }
    }
    closedir(d);
    return found;
}

bool run_find_page(int pid, char path[PATH_MAX])
{
    uint64_t start = 0;
    bool found = false;
    const char *roots[] = {getenv("EBB_PUBLISH"), "/dev/shm", "/tmp"};
    for (int i = 0; i < 3; i++)
        if (roots[i] != NULL)
            found |= find_page_of(pid, roots[i], path, &start);
    return found;
}

int run_stats_profile(const char *page_path, int pid)
{
    char request[PATH_MAX + 32], profile[PATH_MAX + 32];
    snprintf(request, sizeof request, "%s.profile-request", page_path);
    snprintf(profile, sizeof profile, "%s.profile", page_path);
    unlink(profile);
    FILE *f = fopen(request, "w");
    if (f == NULL)
        ebb_die("cannot write %s: %s", request, strerror(errno));
    fclose(f);
    /* The service thread looks at each rewrite of the page (50 ms). */
    for (int waited = 0; access(request, F_OK) == 0; waited += 20) {
        if (waited >= 5000) {
            unlink(request);
            fprintf(stderr, "ebb: pid %d wrote no heap profile: is it profiling (ebb run --profile, or "
                            "EBB_PROFILE=1 with EBB_PUBLISH)?\n", pid);
            return 1;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    char *args[] = {"profile", profile, NULL};
    int rc = ebb_profile_main(2, args);
    unlink(profile);
    return rc;
}
