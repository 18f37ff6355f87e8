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
 *
 * This file: main, the arguments, the commands, and the helpers every file
 * of the command uses; ebb.h says which file does the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ebb.h"

void ebb_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ebb: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(125);
}

void *ebb_grow(void *p, size_t *cap, size_t need, size_t each)
{
    if (need <= *cap)
        return p;
    *cap = *cap ? *cap * 2 : 64;
    if (*cap < need)
        *cap = need;
    p = realloc(p, *cap * each);
    if (p == NULL)
        ebb_die("out of memory");
    return p;
}

const char *ebb_base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static int usage(void)
{
    fprintf(stderr, "usage: ebb run [--interval MS] [--html FILE] [--csv FILE] [--profile FILE] [--all-classes] [--quiet] -- PROGRAM ARGS...\n"
                    "       ebb stats [--profile] PID\n"
                    "       ebb profile [--top N] [--folded OUT [--folded-type alloc|peak|inuse|kept]] [--pprof OUT] PROFILE\n");
    return 125;
}

/* ---- ebb run ---------------------------------------------------------------------- */

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
                ebb_die("--interval takes 1..60000 ms");
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

    char command[1024] = "";
    for (char **a = prog; *a != NULL; a++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, "%s%s", a == prog ? "" : " ", *a);
    }

    run_t run;
    int status = run_program(&run, prog, interval, profile, !quiet && isatty(2));

    if (!quiet) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "ebb: %s was killed by signal %d (%s)\n", prog[0], WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        else
            fprintf(stderr, "ebb: %s exited with status %d\n", prog[0], WEXITSTATUS(status));
        text_summary(stderr, &run, all_classes ? UINT32_MAX : 10);
    }
    if (csv != NULL)
        csv_write(csv, &run);
    /* The program's own profile is FILE; its children's stay FILE.PID. */
    bool profiled = false;
    if (profile != NULL) {
        char written[PATH_MAX];
        snprintf(written, sizeof written, "%s.%d", profile, run.pid);
        profiled = rename(written, profile) == 0;
        if (!profiled)
            fprintf(stderr, "ebb: %s wrote no heap profile (%s)\n", prog[0], strerror(errno));
    }
    if (html != NULL) {
        html_write(html, &run, command, profiled ? profile : NULL);
        if (!quiet)
            fprintf(stderr, "\nebb: report written to %s\n", html);
    }
    run_remove_dir(&run);
    if (profiled && !quiet) {
        fflush(stderr);
        char *args[] = {"profile", (char *)profile, NULL};
        ebb_profile_main(2, args);
        fprintf(stderr, "\nebb: heap profile written to %s\n", profile);
    }
    return run_exit_as(status);
}

/* ---- ebb stats PID ---------------------------------------------------------------- */

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
    if (!run_find_page(pid, path))
        ebb_die("no statistics page for pid %d (start it with ebb run, or with EBB_PUBLISH=DIR)", pid);
    if (profile)
        return run_stats_profile(path, pid);
    const ebb_published_t *page = run_map_page(path);
    ebb_published_t copy;
    if (page == NULL || !run_read_page(page, &copy))
        ebb_die("cannot read %s", path);
    text_stats(&copy);
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

/* ---- index tables (ebb.h) ---- */

static uint64_t hash_bytes(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_key(const ebb_index_t *t, size_t i)
{
    return t->str != NULL ? hash_bytes(t->str[i]) : (uint64_t)t->addr[i] * 0x9e3779b97f4a7c15ull;
}

static void index_rehash(ebb_index_t *t)
{
    free(t->slot);
    t->slots = t->slots ? 2 * t->slots : 1024;
    t->slot = calloc(t->slots, sizeof *t->slot);
    if (t->slot == NULL)
        ebb_die("out of memory");
    for (size_t i = 0; i < t->n; i++) {
        size_t s = hash_key(t, i) & (t->slots - 1);
        while (t->slot[s] != 0)
            s = (s + 1) & (t->slots - 1);
        t->slot[s] = (uint32_t)(i + 1);
    }
}

uint64_t ebb_index_of(ebb_index_t *t, const char *s, uintptr_t a, bool is_string)
{
    if (2 * (t->n + 1) > t->slots)
        index_rehash(t);
    uint64_t h = is_string ? hash_bytes(s) : (uint64_t)a * 0x9e3779b97f4a7c15ull;
    size_t at = h & (t->slots - 1);
    for (; t->slot[at] != 0; at = (at + 1) & (t->slots - 1)) {
        size_t i = t->slot[at] - 1;
        if (is_string ? strcmp(t->str[i], s) == 0 : t->addr[i] == a)
            return i;
    }
    if (is_string) {
        t->str = ebb_grow(t->str, &t->cap, t->n + 1, sizeof *t->str);
        t->str[t->n] = s;
    } else {
        t->addr = ebb_grow(t->addr, &t->cap, t->n + 1, sizeof *t->addr);
        t->addr[t->n] = a;
    }
    t->slot[at] = (uint32_t)(t->n + 1);
    return t->n++;
}

void ebb_index_free(ebb_index_t *t)
{
    free(t->str);
    free(t->addr);
    free(t->slot);
    memset(t, 0, sizeof *t);
}
