/* ebb: terminal output — the status line while the program runs, the
 * summary at its end (the processes, the main one's size classes), the
 * statistics of ebb stats PID.
 */
#include <stdint.h>
#include <stdio.h>

#include "ebb.h"

void text_status_line(const run_t *r)
{
    const series_t *s = run_main_series(r);
    if (s == NULL || s->count == 0)
        return;
    const sample_t *x = &s->samples[s->count - 1];
    fprintf(stderr,
            "\r\033[K[ebb %.1fs] in use %.1f MiB | freed %.1f MiB (kept for reuse %.1f) | reclaimed %.1f MiB | "
            "resident %.1f MiB",
            x->t_ms / 1000, x->s.in_use / MiB, x->s.freed_retained / MiB, x->s.kept_predicted / MiB,
            x->s.reclaimed_total / MiB, (x->proc_rss ? x->proc_rss : x->s.resident) / MiB);
    fflush(stderr);
}

void text_status_clear(void)
{
    fprintf(stderr, "\r\033[K");
}

void text_summary(FILE *out, const run_t *r, unsigned classes)
{
    fprintf(out, "\nebb: memory of each process (MiB; resident: the allocator's accounting, and /proc)\n");
    fprintf(out, "%-8s %-16s %10s %10s %10s %11s %10s %10s %10s %12s %12s %8s %8s %8s %6s\n", "pid", "program",
            "peak used", "peak res", "peak /proc", "peak freed", "peak kept", "reclaimed", "refaulted", "mallocs",
            "frees", "mmap", "munmap", "madvise", "brk");
    for (size_t i = 0; i < r->count; i++) {
        const series_t *s = &r->series[i];
        if (!s->have_last)
            continue;
        peaks_t p = run_peaks(s);
        const struct ebb_stats *l = &s->last.stats;
        fprintf(out, "%-8d %-16.16s %10.1f %10.1f %10.1f %11.1f %10.1f %10.1f %10.1f %12lu %12lu %8lu %8lu %8lu %6lu\n",
                s->last.pid, ebb_base_name(s->last.exe), p.in_use / MiB, p.resident / MiB, p.proc_rss / MiB,
                p.freed / MiB, p.kept / MiB, l->reclaimed_total / MiB, l->refaulted / MiB,
                (unsigned long)l->malloc_calls,
                (unsigned long)l->free_calls, (unsigned long)l->os_mmap, (unsigned long)l->os_munmap,
                (unsigned long)l->os_madvise, (unsigned long)l->os_brk);
    }
    const series_t *m = run_main_series(r);
    if (m == NULL)
        return;
    fprintf(out, "\nebb: size classes of %s (pid %d)\n", ebb_base_name(m->last.exe), m->last.pid);
    fprintf(out, "%10s %14s %14s %12s %14s\n", "block size", "allocated", "freed", "live", "live bytes");
    class_row_t rows[EBB_PUBLISH_CLASSES];
    unsigned n = run_class_rows(m, rows);
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

void text_stats(const ebb_published_t *page)
{
    printf("pid %d (%s)%s\n", page->pid, page->exe, page->exited ? ", exited" : "");
#define EBB_SHOW_(name, doc) printf("  %-16s %16lu  %s\n", #name, (unsigned long)page->stats.name, doc);
    EBB_STATS_FIELDS(EBB_SHOW_)
#undef EBB_SHOW_
    printf("  %-16s %16lu  bytes resident, from /proc\n", "proc_rss", (unsigned long)run_proc_rss(page->pid));
}
