/* The ebb command: what its files share, grouped by the file that owns it.
 *
 *   ebb.c      main, the arguments, the commands; the helpers all use
 *   run.c      the program run on the library, its pages sampled; the
 *              page of a process for ebb stats
 *   text.c     terminal output: the status line, the summary, ebb stats
 *   csv.c      the samples as CSV
 *   html.c     the report page: HTML, CSS, SVG, script
 *   profile.c  heap profiles: read, symbolized, summarized; the flame graph
 *
 * A plain program: it runs on the C library's malloc.
 */
#ifndef EBB_TOOLS_EBB_H
#define EBB_TOOLS_EBB_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../src/publish.h"

/* Paths are bounded by PATH_MAX; a truncated one fails to open, loudly. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MiB (1024.0 * 1024.0)

/* ---- ebb.c ------------------------------------------------------------------ */

/* "ebb: " and the message on stderr; exits 125 (ebb itself failed). */
_Noreturn void ebb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* `p` (of *cap elements of `each` bytes) with room for `need`: the
 * capacity doubled (64 at first) or more; dies out of memory. */
void *ebb_grow(void *p, size_t *cap, size_t need, size_t each);
/* What follows the last '/'. */
const char *ebb_base_name(const char *path);

/* An index table: each key's index (0, 1, ...) in first-seen order,
 * through an open-addressing hash.  Keys are strings (not copied) or
 * addresses, one kind a table; zero-initialized is empty. */
typedef struct {
    const char **str;  /* string keys, by index */
    uintptr_t *addr;   /* or address keys */
    size_t n, cap;
    uint32_t *slot;    /* index + 1; 0: empty */
    size_t slots;
} ebb_index_t;
/* The index of string `s` (is_string) or address `a`, added if new. */
uint64_t ebb_index_of(ebb_index_t *t, const char *s, uintptr_t a, bool is_string);
void ebb_index_free(ebb_index_t *t);

/* ---- run.c: the samples ------------------------------------------------------ */

typedef struct {
    double t_ms;             /* since ebb started the program */
    struct ebb_stats s;
    uint64_t proc_rss;       /* from /proc/PID/statm; 0 once the process is gone */
} sample_t;

/* One process's series. */
typedef struct {
    char path[PATH_MAX];
    const ebb_published_t *page;
    ebb_published_t last;    /* the last good copy */
    bool have_last;
    bool done;               /* exited (or exec'd away: no newer snapshot comes) */
    sample_t *samples;
    size_t count, cap;
} series_t;

/* A run: the program and a series for each of its processes' pages, in
 * the order they appeared. */
typedef struct {
    char dir[PATH_MAX];      /* where the processes publish their pages */
    uint64_t t0_ns;          /* when ebb started the program */
    int pid;                 /* the program */
    series_t *series;
    size_t count, cap;
} run_t;

typedef struct {
    uint64_t in_use, resident, freed, proc_rss, kept;
} peaks_t;

typedef struct {
    uint32_t block_size;
    uint64_t allocs, frees, bytes;
} class_row_t;

/* Starts PROGRAM (prog[0]) with the library preloaded, publishing into a
 * fresh directory (and writing FILE.PID heap profiles if `profile`), and
 * samples every `interval` ms (the status line on stderr if `live`) until
 * it ends; returns its wait status. */
int run_program(run_t *r, char **prog, long interval, const char *profile, bool live);
/* The publishing directory, gone. */
void run_remove_dir(const run_t *r);
/* ebb's end: the program's exit status, or death by its signal. */
int run_exit_as(int status);
/* The series of the program itself (its first image); NULL if none. */
series_t *run_main_series(const run_t *r);
peaks_t run_peaks(const series_t *s);
/* The classes a series' last page shows in use, the most bytes allocated
 * first; returns how many. */
unsigned run_class_rows(const series_t *m, class_row_t rows[EBB_PUBLISH_CLASSES]);

/* The newest page of `pid` (in $EBB_PUBLISH, /dev/shm/ebb-*, /tmp/ebb-*):
 * its path in `path`; false if none. */
bool run_find_page(int pid, char path[PATH_MAX]);
const ebb_published_t *run_map_page(const char *path);
/* A consistent copy of a published page (the sequence lock). */
bool run_read_page(const ebb_published_t *page, ebb_published_t *out);
/* Bytes resident, from /proc; 0 if the process is gone. */
uint64_t run_proc_rss(int pid);
/* ebb stats --profile: the process's heap profile, asked for and
 * reported; 1 if it did not answer. */
int run_stats_profile(const char *page_path, int pid);

/* ---- text.c: terminal output ------------------------------------------------- */

/* The program's latest sample, over the line before (stderr). */
void text_status_line(const run_t *r);
/* The status line, gone. */
void text_status_clear(void);
/* `classes`: how many size classes to show, the most bytes allocated first. */
void text_summary(FILE *out, const run_t *r, unsigned classes);
/* ebb stats PID: a page's statistics, and resident memory from /proc. */
void text_stats(const ebb_published_t *page);

/* ---- csv.c ------------------------------------------------------------------- */

/* Every sample of every series, a row each. */
void csv_write(const char *file, const run_t *r);

/* ---- html.c: the report page -------------------------------------------------- */

/* The report: a timeline per process, the summary's tables, and the flame
 * graph of `profile` (if not NULL). */
void html_write(const char *file, const run_t *r, const char *command, const char *profile);
/* Text for HTML, in an element or an attribute's quotes. */
void html_escape(FILE *f, const char *s);
/* A JSON string, quoted, safe inside a <script> element. */
void html_json_string(FILE *f, const char *s);

/* ---- pprof.c: pprof's format ---------------------------------------------------- */

/* The values of a pprof sample, in this order. */
enum { EBB_PPROF_ALLOC, EBB_PPROF_INUSE, EBB_PPROF_PEAK, EBB_PPROF_KEPT, EBB_PPROF_VALUES };

/* A call stack, leaf first, and its bytes. */
typedef struct {
    const uintptr_t *addr;
    const char *const *name;
    unsigned count;
    uint64_t value[EBB_PPROF_VALUES];
} ebb_pprof_stack_t;

/* A mapping of a file of the program, as /proc/PID/maps has it. */
typedef struct {
    uintptr_t start, end, offset;
    const char *path;
} ebb_pprof_map_t;

/* Writes `count` stacks to `file` as an uncompressed pprof profile
 * (sample types alloc_space, inuse_space, peak_space, kept_space; period
 * `rate` bytes; `time_ns`: since the epoch).  Returns 0, or 1 after a
 * message. */
int ebb_pprof_write(const char *file, const ebb_pprof_stack_t *stacks, size_t count, const ebb_pprof_map_t *maps,
                    size_t nmaps, uint64_t rate, uint64_t time_ns);

/* ---- profile.c: heap profiles -------------------------------------------------- */

/* ebb profile [--top N] [--folded OUT] [--pprof OUT] PROFILE (argv[0]: "profile"). */
int ebb_profile_main(int argc, char **argv);
/* The profile's flame graph (bytes allocated by call stack) as an HTML
 * section: an SVG drawn by the page's script from the samples, for the
 * time range chosen on a timeline whose origin is `t0_ns`
 * (CLOCK_MONOTONIC), zoomed by a click.  Loads the profile. */
int ebb_profile_flame_html(FILE *out, const char *profile, uint64_t t0_ns);

#endif
