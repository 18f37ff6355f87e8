/* ebb: the samples as CSV, a row each (ebb run --csv). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ebb.h"

void csv_write(const char *file, const run_t *r)
{
    FILE *f = fopen(file, "w");
    if (f == NULL)
        ebb_die("cannot write %s: %s", file, strerror(errno));
    fprintf(f, "pid,program,t_ms,in_use,freed_retained,reclaimable,metadata,resident,proc_rss,"
               "reclaimed_total,mapped,malloc_calls,free_calls,os_mmap,os_munmap,os_madvise,os_brk,"
               "kept_predicted,refaulted\n");
    for (size_t i = 0; i < r->count; i++) {
        const series_t *s = &r->series[i];
        for (size_t k = 0; k < s->count; k++) {
            const sample_t *x = &s->samples[k];
            fprintf(f, "%d,%s,%.1f,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu\n", s->last.pid,
                    ebb_base_name(s->last.exe), x->t_ms, (unsigned long)x->s.in_use,
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
        ebb_die("cannot write %s", file);
}
