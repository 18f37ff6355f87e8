/* ebb — run a program on ebbmalloc and see its memory: in use, freed but
 * not reclaimed, reclaimed, as it runs.
 *
 *   ebb run [--interval MS] [--html FILE] [--csv FILE] [--quiet] -- PROGRAM ARGS...
 *   ebb stats PID
 *
 * `ebb run` starts the program with libebbmalloc.so preloaded and
 * EBB_PUBLISH pointing at a fresh directory: every process of the program
 * (exec'd children too) publishes a statistics page there (src/publish.h),
 * which ebb maps and copies every interval — the program does nothing for
 * it.  Resident memory comes from /proc.  At the end: a summary, a table
 * per size class, and on request the raw series (CSV) and a self-contained
 * HTML report with an SVG timeline.  The program's exit status (or the
 * signal that killed it) is ebb's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/publish.h"
#include "profile.h"

/* Paths are bounded by PATH_MAX; a truncated one fails to open, loudly. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wformat-truncation"

#ifndef EBB_LIBDIR
#define EBB_LIBDIR "/usr/local/lib"
#endif

#define MiB (1024.0 * 1024.0)

/* ---- one process's series ---------------------------------------------- */

typedef struct {
    double t_ms;             /* since ebb started the program */
    struct ebb_stats s;
    uint64_t proc_rss;       /* from /proc/PID/statm; 0 once the process is gone */
} sample_t;

typedef struct {
    char path[PATH_MAX];
    const ebb_published_t *page;
    ebb_published_t last;    /* the last good copy */
    bool have_last;
    bool done;               /* exited (or exec'd away: no newer snapshot comes) */
    sample_t *samples;
    size_t count, cap;
} series_t;

static series_t *series;
static size_t series_count, series_cap;
static char publish_dir[PATH_MAX];
static uint64_t t0_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ebb: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(125);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* A consistent copy of a published page (the sequence lock). */
static bool read_page(const ebb_published_t *page, ebb_published_t *out)
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

static const ebb_published_t *map_page(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, EBB_PUBLISH_FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/* New pages in the directory become new series. */
static void scan_dir(void)
{
    DIR *d = opendir(publish_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ebb") != 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", publish_dir, e->d_name);
        bool known = false;
        for (size_t i = 0; i < series_count && !known; i++)
            known = strcmp(series[i].path, path) == 0;
        if (known)
            continue;
        const ebb_published_t *page = map_page(path);
        if (page == NULL)
            continue;
        if (series_count == series_cap) {
            series_cap = series_cap ? 2 * series_cap : 8;
            series = xrealloc(series, series_cap * sizeof *series);
        }
        series_t *s = &series[series_count++];
        memset(s, 0, sizeof *s);
        snprintf(s->path, sizeof s->path, "%s", path);
        s->page = page;
    }
    closedir(d);
}

static uint64_t proc_rss(int pid)
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
static void sample_all(void)
{
    double t = (double)(now_ns() - t0_ns) / 1e6;
    for (size_t i = 0; i < series_count; i++) {
        series_t *s = &series[i];
        if (s->done)
            continue;
        ebb_published_t copy;
        if (!read_page(s->page, &copy))
            continue;
        /* An exec replaces the image: its page stops moving, and the pid's
         * next page belongs to the new image.  A newer page of the same pid
         * (or an exited flag) ends this series. */
        bool replaced = false;
        for (size_t j = 0; j < series_count; j++)
            if (j != i && series[j].page->pid == copy.pid && series[j].page->start_ns > copy.start_ns)
                replaced = true;
        s->last = copy;
        s->have_last = true;
        if (s->count == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 256;
            s->samples = xrealloc(s->samples, s->cap * sizeof *s->samples);
        }
        sample_t *x = &s->samples[s->count++];
        x->t_ms = t;
        x->s = copy.stats;
        x->proc_rss = copy.exited || replaced ? 0 : proc_rss(copy.pid);
        if (copy.exited || replaced)
            s->done = true;
    }
}

/* ---- the status line, the summary ------------------------------------------ */

static series_t *main_series(int pid)
{
    series_t *best = NULL;
    for (size_t i = 0; i < series_count; i++)
        if (series[i].have_last && series[i].last.pid == pid &&
            (best == NULL || series[i].last.start_ns < best->last.start_ns))
            best = &series[i];
    return best;
}

static void status_line(int pid)
{
    series_t *s = main_series(pid);
    if (s == NULL || s->count == 0)
        return;
    sample_t *x = &s->samples[s->count - 1];
    fprintf(stderr,
            "\r\033[K[ebb %.1fs] in use %.1f MiB | freed %.1f MiB (kept for reuse %.1f) | reclaimed %.1f MiB | "
            "resident %.1f MiB",
            x->t_ms / 1000, x->s.in_use / MiB, x->s.freed_retained / MiB, x->s.kept_predicted / MiB,
            x->s.reclaimed_total / MiB, (x->proc_rss ? x->proc_rss : x->s.resident) / MiB);
    fflush(stderr);
}

typedef struct {
    uint64_t in_use, resident, freed, proc_rss, kept;
} peaks_t;

static peaks_t peaks_of(const series_t *s)
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

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

typedef struct {
    uint32_t block_size;
    uint64_t allocs, frees, bytes;
} class_row_t;

static int by_bytes_allocated(const void *a, const void *b)
{
    uint64_t x = ((const class_row_t *)a)->bytes, y = ((const class_row_t *)b)->bytes;
    return x > y ? -1 : x < y;
}

/* The classes a series' last page shows in use, the most bytes allocated
 * first; returns how many. */
static unsigned class_rows(const series_t *m, class_row_t rows[EBB_PUBLISH_CLASSES])
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

/* `classes`: how many size classes to show, the most bytes allocated first. */
static void summary(FILE *out, int pid, unsigned classes)
{
    fprintf(out, "\nebb: memory of each process (MiB; resident: the allocator's accounting, and /proc)\n");
    fprintf(out, "%-8s %-16s %10s %10s %10s %11s %10s %10s %10s %12s %12s %8s %8s %8s %6s\n", "pid", "program",
            "peak used", "peak res", "peak /proc", "peak freed", "peak kept", "reclaimed", "refaulted", "mallocs",
            "frees", "mmap", "munmap", "madvise", "brk");
    for (size_t i = 0; i < series_count; i++) {
        series_t *s = &series[i];
        if (!s->have_last)
            continue;
        peaks_t p = peaks_of(s);
        const struct ebb_stats *l = &s->last.stats;
        fprintf(out, "%-8d %-16.16s %10.1f %10.1f %10.1f %11.1f %10.1f %10.1f %10.1f %12lu %12lu %8lu %8lu %8lu %6lu\n",
                s->last.pid, base_name(s->last.exe), p.in_use / MiB, p.resident / MiB, p.proc_rss / MiB,
                p.freed / MiB, p.kept / MiB, l->reclaimed_total / MiB, l->refaulted / MiB,
                (unsigned long)l->malloc_calls,
                (unsigned long)l->free_calls, (unsigned long)l->os_mmap, (unsigned long)l->os_munmap,
                (unsigned long)l->os_madvise, (unsigned long)l->os_brk);
    }
    series_t *m = main_series(pid);
    if (m == NULL)
        return;
    fprintf(out, "\nebb: size classes of %s (pid %d)\n", base_name(m->last.exe), m->last.pid);
    fprintf(out, "%10s %14s %14s %12s %14s\n", "block size", "allocated", "freed", "live", "live bytes");
    class_row_t rows[EBB_PUBLISH_CLASSES];
    unsigned n = class_rows(m, rows);
    for (unsigned i = 0; i < n && i < classes; i++) {
        uint64_t live = rows[i].allocs > rows[i].frees ? rows[i].allocs - rows[i].frees : 0;
        fprintf(out, "%10u %14lu %14lu %12lu %14lu\n", rows[i].block_size, (unsigned long)rows[i].allocs,
                (unsigned long)rows[i].frees, (unsigned long)live, (unsigned long)(live * rows[i].block_size));
    }
    if (n > classes)
        fprintf(out, "%10s (%u more classes, fewer bytes: --all-classes shows them)\n", "...", n - classes);
    const struct ebb_stats *l = &m->last.stats;
    fprintf(out, "%10s %14s %14s %12lu %14lu\n", "huge", "", "", (unsigned long)l->huge_blocks,
            (unsigned long)l->huge_in_use);
}

/* ---- CSV ---------------------------------------------------------------------- */

static void write_csv(const char *file)
{
    FILE *f = fopen(file, "w");
    if (f == NULL)
        die("cannot write %s: %s", file, strerror(errno));
    fprintf(f, "pid,program,t_ms,in_use,freed_retained,reclaimable,metadata,resident,proc_rss,"
               "reclaimed_total,mapped,malloc_calls,free_calls,os_mmap,os_munmap,os_madvise,os_brk,"
               "kept_predicted,refaulted\n");
    for (size_t i = 0; i < series_count; i++) {
        series_t *s = &series[i];
        for (size_t k = 0; k < s->count; k++) {
            const sample_t *x = &s->samples[k];
            fprintf(f, "%d,%s,%.1f,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu\n", s->last.pid,
                    base_name(s->last.exe), x->t_ms, (unsigned long)x->s.in_use,
                    (unsigned long)x->s.freed_retained, (unsigned long)x->s.reclaimable,
                    (unsigned long)x->s.metadata, (unsigned long)x->s.resident, (unsigned long)x->proc_rss,
                    (unsigned long)x->s.reclaimed_total, (unsigned long)x->s.mapped,
                    (unsigned long)x->s.malloc_calls, (unsigned long)x->s.free_calls,
                    (unsigned long)x->s.os_mmap, (unsigned long)x->s.os_munmap,
                    (unsigned long)x->s.os_madvise, (unsigned long)x->s.os_brk,
                    (unsigned long)x->s.kept_predicted, (unsigned long)x->s.refaulted);
        }
    }
    if (fclose(f) != 0)
        die("cannot write %s", file);
}

/* ---- HTML ----------------------------------------------------------------------- */


enum { W = 900, H = 320, ML = 60, MR = 20, MT = 20, MB = 40 };

/* An area from `lower` to `upper` (functions of a sample), as an SVG
 * polygon: the upper edge left to right, the lower edge back. */
typedef double (*level_fn)(const sample_t *);
static double lvl_zero(const sample_t *x) { (void)x; return 0; }
static double lvl_used(const sample_t *x) { return (double)x->s.in_use; }
static double lvl_freed(const sample_t *x) { return (double)(x->s.in_use + x->s.freed_retained); }
static double lvl_meta(const sample_t *x) { return (double)(x->s.in_use + x->s.freed_retained + x->s.metadata); }

static void svg_area(FILE *f, const series_t *s, level_fn lower, level_fn upper, double tmax, double ymax,
                     const char *name, const char *color)
{
    /* Two vertices a sample: the upper edge, then the lower one back. */
    fprintf(f, "<polygon class=\"series\" data-series=\"%s\" data-points=\"%zu\" fill=\"%s\" fill-opacity=\"0.8\" points=\"",
            name, 2 * s->count, color);
    for (size_t i = 0; i < s->count; i++)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - upper(&s->samples[i]) / ymax));
    for (size_t i = s->count; i-- > 0;)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - lower(&s->samples[i]) / ymax));
    fprintf(f, "\"/>\n");
}

/* A mark (8 pixels from y) at each sample where the counter at `field` of
 * struct ebb_stats grew, its growth in the title. */
static void svg_marks(FILE *f, const series_t *s, size_t field, const char *cls, const char *color, int y,
                      const char *what, double tmax)
{
    for (size_t i = 1; i < s->count; i++) {
        uint64_t now, before;
        memcpy(&now, (const char *)&s->samples[i].s + field, sizeof now);
        memcpy(&before, (const char *)&s->samples[i - 1].s + field, sizeof before);
        if (now <= before)
            continue;
        double x = ML + (W - ML - MR) * s->samples[i].t_ms / tmax;
        fprintf(f, "<line class=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\">"
                   "<title>%.1f MiB %s</title></line>\n",
                cls, x, x, y, y + 8, color, (now - before) / MiB, what);
    }
}

static void html_series(FILE *f, const series_t *s)
{
    if (s->count == 0)
        return;
    double tmax = s->samples[s->count - 1].t_ms;
    if (tmax <= 0)
        tmax = 1;
    double ymax = 1;
    for (size_t i = 0; i < s->count; i++) {
        double a = lvl_meta(&s->samples[i]), b = (double)s->samples[i].proc_rss;
        if (a > ymax)
            ymax = a;
        if (b > ymax)
            ymax = b;
    }
    ymax *= 1.08;
    fprintf(f, "<h2>pid %d: ", s->last.pid);
    ebb_html_escape(f, s->last.exe);
    fprintf(f, "</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 %d %d\" "
               "style=\"width:100%%;max-width:1600px;height:auto\" data-samples=\"%zu\">\n",
            W, H, s->count);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n", ML, MT,
            W - ML - MR, H - MT - MB);
    for (int k = 0; k <= 4; k++) {
        double y = MT + (H - MT - MB) * k / 4.0;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.0f MiB</text>\n",
                ML, W - MR, y, y, ML - 4, y + 4, ymax * (4 - k) / 4 / MiB);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.2f s</text>\n", W - MR, H - 12,
            tmax / 1000);
    svg_area(f, s, lvl_zero, lvl_used, tmax, ymax, "in_use", "#2b6cb0");
    svg_area(f, s, lvl_used, lvl_freed, tmax, ymax, "freed_retained", "#ed8936");
    svg_area(f, s, lvl_freed, lvl_meta, tmax, ymax, "metadata", "#a0aec0");
    /* Resident memory from /proc, while the process lived. */
    size_t live = 0;
    for (size_t i = 0; i < s->count; i++)
        live += s->samples[i].proc_rss != 0;
    fprintf(f, "<polyline class=\"series\" data-series=\"proc_rss\" data-points=\"%zu\" fill=\"none\" stroke=\"#c53030\" stroke-width=\"2\" points=\"",
            live);
    for (size_t i = 0; i < s->count; i++)
        if (s->samples[i].proc_rss != 0)
            fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                    MT + (H - MT - MB) * (1 - (double)s->samples[i].proc_rss / ymax));
    fprintf(f, "\"/>\n");
    /* Of the freed memory, what the policy keeps because it predicts the
     * program will take it again: a dashed line inside the freed area. */
    fprintf(f, "<polyline class=\"series\" data-series=\"kept_predicted\" data-points=\"%zu\" fill=\"none\" "
               "stroke=\"#9c4221\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\"",
            s->count);
    for (size_t i = 0; i < s->count; i++)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - (double)(s->samples[i].s.in_use + s->samples[i].s.kept_predicted) / ymax));
    fprintf(f, "\"/>\n");
    /* Refaults (memory given back, then taken fresh again soon after) at
     * the top; memory given back to the kernel at the bottom. */
    svg_marks(f, s, offsetof(struct ebb_stats, refaulted), "refault", "#dd6b20", MT - 8, "refaulted", tmax);
    svg_marks(f, s, offsetof(struct ebb_stats, reclaimed_total), "reclaim", "#38a169", H - MB, "reclaimed", tmax);
    /* The hover: a cursor line, and the samples' values for the script. */
    fprintf(f, "<line class=\"cursor\" x1=\"-10\" x2=\"-10\" y1=\"%d\" y2=\"%d\" stroke=\"#444\" "
               "stroke-width=\"1\" pointer-events=\"none\"/>\n</svg>\n<div class=\"hover\">&nbsp;</div>\n"
               "<script type=\"application/json\" class=\"values\">{\"tmax\":%.3f,\"x0\":%d,\"x1\":%d,\"v\":[",
            MT, H - MB, tmax / 1000, ML, W - MR);
    for (size_t i = 0; i < s->count; i++) {
        const sample_t *x = &s->samples[i];
        fprintf(f, "%s[%.3f,%.2f,%.2f,%.2f,%.2f,%.2f]", i ? "," : "", x->t_ms / 1000, x->s.in_use / MiB,
                x->s.freed_retained / MiB, x->s.metadata / MiB, x->s.kept_predicted / MiB,
                (double)x->proc_rss / MiB);
    }
    fprintf(f, "]}</script>\n");
}

/* The summary as tables: the processes, then the main one's size
 * classes, the ten with the most bytes allocated first, the rest folded. */
static void html_summary(FILE *f, int pid)
{
    fprintf(f, "<h2>Memory of each process</h2>\n<table id=\"processes\"><tr><th>pid</th><th>program</th>"
               "<th>peak used MiB</th><th>peak resident MiB</th><th>peak /proc MiB</th><th>peak freed MiB</th>"
               "<th>peak kept MiB</th><th>reclaimed MiB</th><th>refaulted MiB</th><th>mallocs</th><th>frees</th>"
               "<th>mmap</th><th>munmap</th><th>madvise</th><th>brk</th></tr>\n");
    for (size_t i = 0; i < series_count; i++) {
        series_t *s = &series[i];
        if (!s->have_last)
            continue;
        peaks_t p = peaks_of(s);
        const struct ebb_stats *l = &s->last.stats;
        fprintf(f, "<tr><td>%d</td><td style=\"text-align:left\">", s->last.pid);
        ebb_html_escape(f, base_name(s->last.exe));
        fprintf(f, "</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                   "<td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td></tr>\n",
                p.in_use / MiB, p.resident / MiB, p.proc_rss / MiB, p.freed / MiB, p.kept / MiB,
                l->reclaimed_total / MiB, l->refaulted / MiB, (unsigned long)l->malloc_calls,
                (unsigned long)l->free_calls, (unsigned long)l->os_mmap, (unsigned long)l->os_munmap,
                (unsigned long)l->os_madvise, (unsigned long)l->os_brk);
    }
    fprintf(f, "</table>\n");
    series_t *m = main_series(pid);
    if (m == NULL)
        return;
    class_row_t rows[EBB_PUBLISH_CLASSES];
    unsigned n = class_rows(m, rows);
    fprintf(f, "<h2>Size classes of ");
    ebb_html_escape(f, base_name(m->last.exe));
    fprintf(f, " (pid %d)</h2>\n", m->last.pid);
    const char *head = "<tr><th>block size</th><th>allocated</th><th>freed</th><th>live</th><th>live bytes</th>"
                       "<th>bytes allocated</th></tr>\n";
    fprintf(f, "<table class=\"classes\">%s", head);
    for (unsigned i = 0; i < n; i++) {
        if (i == 10)
            fprintf(f, "</table>\n<details><summary>%u more classes</summary><table class=\"classes\">%s", n - 10,
                    head);
        uint64_t live = rows[i].allocs > rows[i].frees ? rows[i].allocs - rows[i].frees : 0;
        fprintf(f, "<tr><td>%u</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td></tr>\n",
                rows[i].block_size, (unsigned long)rows[i].allocs, (unsigned long)rows[i].frees,
                (unsigned long)live, (unsigned long)(live * rows[i].block_size), (unsigned long)rows[i].bytes);
    }
    fprintf(f, "</table>%s\n", n > 10 ? "</details>" : "");
    const struct ebb_stats *l = &m->last.stats;
    fprintf(f, "<p>Huge blocks live at the end: %lu, %.1f MiB.</p>\n", (unsigned long)l->huge_blocks,
            l->huge_in_use / MiB);
}

static void write_html(const char *file, int pid, const char *command, const char *profile)
{
    FILE *f = fopen(file, "w");
    if (f == NULL)
        die("cannot write %s: %s", file, strerror(errno));
    char shown[120];
    snprintf(shown, sizeof shown, strlen(command) > 100 ? "%.100s..." : "%s", command);
    command = shown;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ebb: ");
    ebb_html_escape(f, command);
    fprintf(f, "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
               "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px;text-align:right}"
               "th{border-bottom:1px solid #999}.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px}"
               "pre{font-size:12px}.hover{font-size:13px;color:#333;min-height:1.2em}"
               "details{margin:6px 0}summary{cursor:pointer;font-size:13px}</style></head><body>\n<h1>ebb run ");
    ebb_html_escape(f, command);
    fprintf(f, "</h1>\n<p class=\"key\"><span style=\"background:#2b6cb0\"></span>in use"
               "<span style=\"background:#ed8936\"></span>freed, not reclaimed"
               "<span style=\"background:#a0aec0\"></span>metadata"
               "<span style=\"background:#c53030\"></span>resident (/proc)"
               "<span style=\"background:#38a169\"></span>reclaimed here"
               "<span style=\"background:#9c4221\"></span>kept for predicted reuse (dashed)"
               "<span style=\"background:#dd6b20\"></span>refaulted here (top)</p>\n");
    for (size_t i = 0; i < series_count; i++)
        html_series(f, &series[i]);
    html_summary(f, pid);
    if (profile != NULL)
        ebb_profile_flame_html(f, profile);
    /* Hovering a timeline shows the values at that time. */
    fprintf(f, "<script>\ndocument.querySelectorAll('svg.timeline').forEach(function(svg){"
               "var data=JSON.parse(svg.nextElementSibling.nextElementSibling.textContent);"
               "var tip=svg.nextElementSibling,cur=svg.querySelector('.cursor');"
               "svg.addEventListener('mousemove',function(e){var p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;"
               "var q=p.matrixTransform(svg.getScreenCTM().inverse());"
               "var t=(q.x-data.x0)/(data.x1-data.x0)*data.tmax,best=0;"
               "data.v.forEach(function(r,i){if(Math.abs(r[0]-t)<Math.abs(data.v[best][0]-t))best=i;});"
               "var r=data.v[best],x=data.x0+(data.x1-data.x0)*r[0]/data.tmax;"
               "cur.setAttribute('x1',x);cur.setAttribute('x2',x);"
               "tip.textContent=r[0].toFixed(2)+' s: in use '+r[1]+' MiB, freed not reclaimed '+r[2]+"
               "' MiB (kept for reuse '+r[4]+'), metadata '+r[3]+' MiB, resident (/proc) '+r[5]+' MiB';});});\n"
               "</script>\n");
    /* In a browser, count what the SVG drew (the tests read this back). */
    fprintf(f, "<pre id=\"check\"></pre>\n<script>\n"
               "var out=[];document.querySelectorAll('svg').forEach(function(svg,i){"
               "svg.querySelectorAll('.series').forEach(function(el){var b=el.getBBox();"
               "out.push('svg'+i+' '+el.dataset.series+' points='+el.points.numberOfItems+"
               "' expected='+el.dataset.points+' width='+Math.round(b.width)+' height='+Math.round(b.height));});});"
               "document.getElementById('check').textContent=out.join('\\n');\n</script>\n</body></html>\n");
    if (fclose(f) != 0)
        die("cannot write %s", file);
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
        die("cannot find libebbmalloc.so (beside ebb, in %s, or EBB_LIB)", EBB_LIBDIR);
}

static void remove_dir(void)
{
    DIR *d = opendir(publish_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", publish_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(publish_dir);
}

static int usage(void)
{
    fprintf(stderr, "usage: ebb run [--interval MS] [--html FILE] [--csv FILE] [--profile FILE] [--all-classes] [--quiet] -- PROGRAM ARGS...\n"
                    "       ebb stats [--profile] PID\n"
                    "       ebb profile [--top N] [--folded OUT] PROFILE\n");
    return 125;
}

static int cmd_run(int argc, char **argv)
{
    long interval = 50;
    const char *html = NULL, *csv = NULL, *profile = NULL;
    bool quiet = false, all_classes = false;
    int i = 0;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = strtol(argv[++i], NULL, 10);
            if (interval < 1 || interval > 60000)
                die("--interval takes 1..60000 ms");
        } else if (strcmp(argv[i], "--html") == 0 && i + 1 < argc) {
            html = argv[++i];
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            csv = argv[++i];
        } else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
            profile = argv[++i];
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--all-classes") == 0) {
            all_classes = true;
        } else if (argv[i][0] == '-') {
            return usage();
        } else {
            break; /* PROGRAM without "--" */
        }
    }
    if (i >= argc)
        return usage();
    char **prog = argv + i;

    char lib[PATH_MAX];
    find_library(lib, sizeof lib);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(publish_dir, sizeof publish_dir, "%s/ebb-XXXXXX", base);
    if (mkdtemp(publish_dir) == NULL)
        die("cannot create a directory in %s: %s", base, strerror(errno));

    char command[1024] = "";
    for (char **a = prog; *a != NULL; a++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, "%s%s", a == prog ? "" : " ", *a);
    }

    /* Like time(1): the program gets the terminal's signals; ebb waits. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    /* SIGCHLD is waited for, so that ebb sees the end at once. */
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    t0_ns = now_ns();
    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
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
        setenv("EBB_PUBLISH", publish_dir, 1);
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

    bool live = !quiet && isatty(2);
    int status = 0;
    for (;;) {
        scan_dir();
        sample_all();
        if (live)
            status_line(child);
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child)
            break;
        struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
        sigtimedwait(&chld, NULL, &ts);
    }
    /* The last pages, written at exit. */
    scan_dir();
    sample_all();
    if (live)
        fprintf(stderr, "\r\033[K");

    if (!quiet) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "ebb: %s was killed by signal %d (%s)\n", prog[0], WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        else
            fprintf(stderr, "ebb: %s exited with status %d\n", prog[0], WEXITSTATUS(status));
        summary(stderr, child, all_classes ? UINT32_MAX : 10);
    }
    if (csv != NULL)
        write_csv(csv);
    /* The program's own profile is FILE; its children's stay FILE.PID. */
    bool profiled = false;
    if (profile != NULL) {
        char written[PATH_MAX];
        snprintf(written, sizeof written, "%s.%d", profile, (int)child);
        profiled = rename(written, profile) == 0;
        if (!profiled)
            fprintf(stderr, "ebb: %s wrote no heap profile (%s)\n", prog[0], strerror(errno));
    }
    if (html != NULL) {
        write_html(html, child, command, profiled ? profile : NULL);
        if (!quiet)
            fprintf(stderr, "\nebb: report written to %s\n", html);
    }
    remove_dir();
    if (profiled && !quiet) {
        fflush(stderr);
        char *args[] = {"profile", (char *)profile, NULL};
        ebb_profile_main(2, args);
        fprintf(stderr, "\nebb: heap profile written to %s\n", profile);
    }

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

/* ebb stats --profile: ask the process for its heap profile (publish.c)
 * and report it; 1 if it did not answer. */
static int stats_profile(const char *page_path, int pid)
{
    char request[PATH_MAX + 32], profile[PATH_MAX + 32];
    snprintf(request, sizeof request, "%s.profile-request", page_path);
    snprintf(profile, sizeof profile, "%s.profile", page_path);
    unlink(profile);
    FILE *f = fopen(request, "w");
    if (f == NULL)
        die("cannot write %s: %s", request, strerror(errno));
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

static int cmd_stats(int argc, char **argv)
{
    bool profile = argc == 2 && strcmp(argv[0], "--profile") == 0;
    if (profile) {
        argc--;
        argv++;
    }
    if (argc != 1)
        return usage();
    int pid = atoi(argv[0]);
    char path[PATH_MAX];
    uint64_t start = 0;
    bool found = false;
    const char *roots[] = {getenv("EBB_PUBLISH"), "/dev/shm", "/tmp"};
    for (int i = 0; i < 3; i++)
        if (roots[i] != NULL)
            found |= find_page_of(pid, roots[i], path, &start);
    if (!found)
        die("no statistics page for pid %d (start it with ebb run, or with EBB_PUBLISH=DIR)", pid);
    if (profile)
        return stats_profile(path, pid);
    const ebb_published_t *page = map_page(path);
    ebb_published_t copy;
    if (page == NULL || !read_page(page, &copy))
        die("cannot read %s", path);
    series_count = 0;
    printf("pid %d (%s)%s\n", copy.pid, copy.exe, copy.exited ? ", exited" : "");
#define EBB_SHOW_(name, doc) printf("  %-16s %16lu  %s\n", #name, (unsigned long)copy.stats.name, doc);
    EBB_STATS_FIELDS(EBB_SHOW_)
#undef EBB_SHOW_
    printf("  %-16s %16lu  bytes resident, from /proc\n", "proc_rss", (unsigned long)proc_rss(copy.pid));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "stats") == 0)
        return cmd_stats(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "profile") == 0)
        return ebb_profile_main(argc - 1, argv + 1);
    return usage();
}
