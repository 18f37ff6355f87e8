/* ebb profile: reads a heap profile written by ebbmalloc (EBB_PROFILE=1 with
 * EBB_PROFILE_OUT=FILE, or ebb_profile_dump), symbolizes its stacks with
 * addr2line, and prints the top sites by live bytes at the peak, by live
 * bytes at the end (leaks, when written at exit) and by bytes allocated;
 * --folded writes one line per stack (outermost frame first, ';' between
 * frames, then the bytes allocated), the input of flame graph tools.
 * A plain program: it runs on the C library's malloc.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb.h"

typedef struct {
    uint32_t stack;
    uint32_t class_size;                      /* 0: a huge block, or not known */
    uint64_t size, weight, alloc_ns, free_ns; /* free_ns: UINT64_MAX while live */
} psample_t;

/* A size class when the profile was written: its live bytes, and the
 * resident bytes of its pages that hold live blocks. */
typedef struct {
    uint32_t block_size;
    uint64_t live, resident;
} pclass_t;

typedef struct {
    uintptr_t *frames;
    unsigned count;
    const char *site;                 /* the innermost frame's name */
    uint64_t alloc, live_end, live_peak;
    uint64_t kept;                    /* freed bytes its live blocks' pages keep resident */
} pstack_t;

typedef struct {
    uintptr_t start, end, offset;
    char *path;
} pmap_t;

typedef struct {
    uintptr_t addr;
    char *name;
} psym_t;

static struct {
    uint64_t rate, now;
    psample_t *samples;
    size_t nsamples;
    pstack_t *stacks;
    size_t nstacks;
    pmap_t *maps;
    size_t nmaps;
    psym_t *syms; /* every frame address, named */
    size_t nsyms;
    pclass_t *classes;
    size_t nclasses;
} P;

/* What a load left, gone (a run loads a profile for its report and for
 * its flame graph). */
static void unload(void)
{
    for (size_t s = 0; s < P.nstacks; s++)
        free(P.stacks[s].frames);
    for (size_t m = 0; m < P.nmaps; m++)
        free(P.maps[m].path);
    for (size_t i = 0; i < P.nsyms; i++)
        free(P.syms[i].name);
    free(P.samples);
    free(P.stacks);
    free(P.maps);
    free(P.syms);
    free(P.classes);
    memset(&P, 0, sizeof P);
}

static bool load(const char *file)
{
    unload();
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        return false;
    }
    char *line = NULL;
    size_t linecap = 0, scap = 0, kcap = 0, mcap = 0, ccap = 0;
    bool ok = false;
    while (getline(&line, &linecap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "ebbmalloc-profile ", 18) == 0) {
            ok = true;
        } else if (sscanf(line, "rate %" SCNu64, &P.rate) == 1 || sscanf(line, "now %" SCNu64, &P.now) == 1) {
        } else if (strncmp(line, "stack ", 6) == 0) {
            char *s = line + 6;
            unsigned long id = strtoul(s, &s, 10);
            P.stacks = ebb_grow(P.stacks, &kcap, id + 1, sizeof *P.stacks);
            while (P.nstacks <= id)
                memset(&P.stacks[P.nstacks++], 0, sizeof *P.stacks);
            pstack_t *st = &P.stacks[id];
            size_t fcap = 0;
            for (char *end; (end = NULL, strtoull(s, &end, 16), end != s);) {
                st->frames = ebb_grow(st->frames, &fcap, st->count + 1, sizeof *st->frames);
                st->frames[st->count++] = (uintptr_t)strtoull(s, NULL, 16);
                s = end;
            }
        } else if (strncmp(line, "sample ", 7) == 0) {
            psample_t x = {0};
            char freed[32];
            int got = sscanf(line + 7, "%" SCNu32 " %" SCNu64 " %" SCNu64 " %*u %" SCNu64 " %31s %" SCNu32, &x.stack,
                             &x.size, &x.weight, &x.alloc_ns, freed, &x.class_size);
            if (got < 5)
                continue;
            x.free_ns = strcmp(freed, "-") == 0 ? UINT64_MAX : strtoull(freed, NULL, 10);
            P.samples = ebb_grow(P.samples, &scap, P.nsamples + 1, sizeof *P.samples);
            P.samples[P.nsamples++] = x;
        } else if (strncmp(line, "class ", 6) == 0) {
            pclass_t c;
            if (sscanf(line + 6, "%" SCNu32 " %" SCNu64 " %" SCNu64, &c.block_size, &c.live, &c.resident) != 3)
                continue;
            P.classes = ebb_grow(P.classes, &ccap, P.nclasses + 1, sizeof *P.classes);
            P.classes[P.nclasses++] = c;
        } else if (strncmp(line, "map ", 4) == 0) {
            unsigned long lo, hi, off;
            int at = 0;
            if (sscanf(line + 4, "%lx-%lx %*s %lx %*s %*s %n", &lo, &hi, &off, &at) < 3 || at == 0)
                continue;
            P.maps = ebb_grow(P.maps, &mcap, P.nmaps + 1, sizeof *P.maps);
            P.maps[P.nmaps++] = (pmap_t){lo, hi, off, strdup(line + 4 + at)};
        }
    }
    free(line);
    fclose(f);
    if (!ok)
        fprintf(stderr, "ebb: %s is not an ebbmalloc heap profile\n", file);
    return ok;
}

static int by_addr(const void *a, const void *b)
{
    uintptr_t x = ((const psym_t *)a)->addr, y = ((const psym_t *)b)->addr;
    return x < y ? -1 : x > y;
}

static const char *name_of(uintptr_t addr)
{
    psym_t key = {addr, NULL};
    psym_t *s = bsearch(&key, P.syms, P.nsyms, sizeof *P.syms, by_addr);
    return s != NULL ? s->name : "?";
}

/* A stripped file's exported functions (nm -D), sorted by address: the
 * one at or before `off`, which holds it if `off` is below its end
 * (Debian's programs keep no other symbols, and addr2line names a static
 * function's address after the exported one before it).  NULL if none. */
typedef struct {
    unsigned long addr, size;
    char *name;
} dynsym_t;

/* The symbol tools run without the allocator a preload may have put
 * under `ebb` (the profiled program's environment, or a test's): they
 * read files, and a broken or profiling build under them would only slow
 * them down or stop them. */
#define TOOL_ENV "env -u LD_PRELOAD "

static int by_dyn_addr(const void *a, const void *b)
{
    unsigned long x = ((const dynsym_t *)a)->addr, y = ((const dynsym_t *)b)->addr;
    return x < y ? -1 : x > y;
}

static const dynsym_t *dyn_before(const char *path, unsigned long off, dynsym_t **syms, size_t *n, bool *loaded)
{
    if (!*loaded) {
        *loaded = true;
        char cmd[4200];
        snprintf(cmd, sizeof cmd, TOOL_ENV "nm -D -S --defined-only '%s' 2>/dev/null", path);
        FILE *p = popen(cmd, "r");
        char line[1024];
        size_t cap = 0;
        while (p != NULL && fgets(line, sizeof line, p) != NULL) {
            unsigned long a, size = 0;
            char type, name[900];
            /* "ADDR SIZE TYPE NAME", or "ADDR TYPE NAME" when it has no size. */
            if (sscanf(line, "%lx %lx %c %899s", &a, &size, &type, name) != 4 &&
                (size = 0, sscanf(line, "%lx %c %899s", &a, &type, name) != 3))
                continue;
            if (type != 'T' && type != 't' && type != 'W' && type != 'i')
                continue;
            *syms = ebb_grow(*syms, &cap, *n + 1, sizeof **syms);
            (*syms)[(*n)++] = (dynsym_t){a, size, strdup(name)};
        }
        if (p != NULL)
            pclose(p);
        qsort(*syms, *n, sizeof **syms, by_dyn_addr);
    }
    const dynsym_t *best = NULL;
    for (size_t lo = 0, hi = *n; lo < hi;) {
        size_t mid = (lo + hi) / 2;
        if ((*syms)[mid].addr <= off) {
            best = &(*syms)[mid];
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return best;
}

/* The difference between a file's virtual addresses (what addr2line and
 * nm speak) and its file offsets, for the loadable segment holding file
 * offset `off`: 0 in most shared objects and PIE programs, the load
 * address in a non-PIE program (Debian's python3). */
static long vaddr_shift(const char *path, unsigned long off)
{
    FILE *f = fopen(path, "rb");
    Elf64_Ehdr eh;
    long shift = 0;
    if (f != NULL && fread(&eh, sizeof eh, 1, f) == 1 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
        eh.e_ident[EI_CLASS] == ELFCLASS64 && fseek(f, (long)eh.e_phoff, SEEK_SET) == 0) {
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            if (fread(&ph, sizeof ph, 1, f) != 1)
                break;
            if (ph.p_type == PT_LOAD && off >= ph.p_offset && off < ph.p_offset + ph.p_filesz) {
                shift = (long)(ph.p_vaddr - ph.p_offset);
                break;
            }
        }
    }
    if (f != NULL)
        fclose(f);
    return shift;
}

/* Every frame named: addr2line, one run per file, on the addresses in it
 * (a return address less one: the call, not what follows it); where it
 * cannot, the exported function before the address. */
static void symbolize(void)
{
    size_t cap = 0;
    for (size_t s = 0; s < P.nstacks; s++)
        for (unsigned f = 0; f < P.stacks[s].count; f++) {
            P.syms = ebb_grow(P.syms, &cap, P.nsyms + 1, sizeof *P.syms);
            P.syms[P.nsyms++] = (psym_t){P.stacks[s].frames[f], NULL};
        }
    qsort(P.syms, P.nsyms, sizeof *P.syms, by_addr);
    size_t n = 0;
    for (size_t i = 0; i < P.nsyms; i++)
        if (n == 0 || P.syms[n - 1].addr != P.syms[i].addr)
            P.syms[n++] = P.syms[i];
    P.nsyms = n;
    char tmp[] = "/tmp/ebb-profile-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return;
    close(fd);
    for (size_t m = 0; m < P.nmaps; m++) {
        long shift = vaddr_shift(P.maps[m].path, P.maps[m].offset);
        FILE *f = fopen(tmp, "w");
        size_t count = 0;
        for (size_t i = 0; f != NULL && i < P.nsyms; i++)
            if (P.syms[i].name == NULL && P.syms[i].addr >= P.maps[m].start && P.syms[i].addr < P.maps[m].end) {
                fprintf(f, "%lx\n", (unsigned long)(P.syms[i].addr - 1 - P.maps[m].start + P.maps[m].offset) + shift);
                count++;
            }
        if (f != NULL)
            fclose(f);
        if (count == 0)
            continue;
        char cmd[4200];
        snprintf(cmd, sizeof cmd, TOOL_ENV "addr2line -f -C -e '%s' < '%s' 2>/dev/null", P.maps[m].path, tmp);
        FILE *p = popen(cmd, "r");
        char fn[1024], where[1024];
        dynsym_t *dyn = NULL;
        size_t ndyn = 0;
        bool dyn_loaded = false;
        for (size_t i = 0; i < P.nsyms; i++) {
            if (P.syms[i].name != NULL || P.syms[i].addr < P.maps[m].start || P.syms[i].addr >= P.maps[m].end)
                continue;
            char name[2200];
            if (p != NULL && fgets(fn, sizeof fn, p) != NULL && fgets(where, sizeof where, p) != NULL) {
                fn[strcspn(fn, "\n")] = '\0';
                where[strcspn(where, "\n")] = '\0';
                unsigned long off = (unsigned long)(P.syms[i].addr - 1 - P.maps[m].start + P.maps[m].offset) + shift;
                const dynsym_t *exported = dyn_before(P.maps[m].path, off, &dyn, &ndyn, &dyn_loaded);
                bool inside = exported != NULL && off < exported->addr + exported->size;
                /* addr2line's name, unless it is only the exported function
                 * before a static one (past its end); then the file and
                 * the offset say where, as heaptrack's address does. */
                if (strcmp(fn, "??") != 0 && (inside || exported == NULL || strcmp(fn, exported->name) != 0))
                    snprintf(name, sizeof name, "%s", fn);
                else if (inside)
                    snprintf(name, sizeof name, "%s", exported->name);
                else
                    snprintf(name, sizeof name, "%s+0x%lx", ebb_base_name(P.maps[m].path), off + 1);
            } else {
                snprintf(name, sizeof name, "%s+0x%lx", ebb_base_name(P.maps[m].path),
                         (unsigned long)(P.syms[i].addr - P.maps[m].start + P.maps[m].offset));
            }
            P.syms[i].name = strdup(name);
        }
        if (p != NULL)
            pclose(p);
        for (size_t k = 0; k < ndyn; k++)
            free(dyn[k].name);
        free(dyn);
    }
    unlink(tmp);
    for (size_t i = 0; i < P.nsyms; i++)
        if (P.syms[i].name == NULL) {
            char name[32];
            snprintf(name, sizeof name, "0x%lx", (unsigned long)P.syms[i].addr);
            P.syms[i].name = strdup(name);
        }
}

typedef struct {
    uint64_t t;
    int64_t delta;
} event_t;

static int by_time(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t ? 1 : (x->delta < y->delta) - (x->delta > y->delta); /* allocations first */
}

/* Per stack: bytes allocated, live at the end, live at the peak of the
 * estimated live total. */
static uint64_t tally(uint64_t *peak_ns)
{
    event_t *ev = malloc((2 * P.nsamples + 1) * sizeof *ev);
    size_t n = 0;
    for (size_t i = 0; i < P.nsamples; i++) {
        ev[n++] = (event_t){P.samples[i].alloc_ns, (int64_t)P.samples[i].weight};
        if (P.samples[i].free_ns != UINT64_MAX)
            ev[n++] = (event_t){P.samples[i].free_ns, -(int64_t)P.samples[i].weight};
    }
    qsort(ev, n, sizeof *ev, by_time);
    int64_t live = 0, peak = 0;
    *peak_ns = 0;
    for (size_t i = 0; i < n; i++) {
        live += ev[i].delta;
        if (live > peak) {
            peak = live;
            *peak_ns = ev[i].t;
        }
    }
    free(ev);
    for (size_t i = 0; i < P.nsamples; i++) {
        const psample_t *x = &P.samples[i];
        if (x->stack >= P.nstacks)
            continue;
        pstack_t *st = &P.stacks[x->stack];
        st->alloc += x->weight;
        if (x->free_ns == UINT64_MAX)
            st->live_end += x->weight;
        if (x->alloc_ns <= *peak_ns && x->free_ns > *peak_ns)
            st->live_peak += x->weight;
    }
    return (uint64_t)peak;
}

static bool counts_for_kept(const psample_t *x, uint32_t block_size, bool live_only)
{
    return x->class_size == block_size && (!live_only || x->free_ns == UINT64_MAX);
}

/* The freed memory each class's live blocks keep resident (its pages'
 * resident bytes less its live bytes), shared among the stacks by their
 * sampled live bytes in the class: a site whose blocks outlive their
 * neighbours keeps the pages they share.  A few live blocks can keep
 * many pages, and may have drawn no sample: then the class's memory is
 * shared by the bytes each stack allocated in it.  Returns the total. */
static uint64_t attribute_kept(void)
{
    uint64_t total = 0;
    for (size_t c = 0; c < P.nclasses; c++) {
        const pclass_t *k = &P.classes[c];
        if (k->resident <= k->live)
            continue;
        uint64_t kept = k->resident - k->live, sampled = 0;
        bool live_only = true;
        for (size_t i = 0; i < P.nsamples; i++)
            if (counts_for_kept(&P.samples[i], k->block_size, true))
                sampled += P.samples[i].weight;
        if (sampled == 0) {
            live_only = false;
            for (size_t i = 0; i < P.nsamples; i++)
                if (counts_for_kept(&P.samples[i], k->block_size, false))
                    sampled += P.samples[i].weight;
        }
        if (sampled == 0)
            continue; /* kept by blocks no sample stands for */
        total += kept;
        for (size_t i = 0; i < P.nsamples; i++) {
            const psample_t *x = &P.samples[i];
            if (counts_for_kept(x, k->block_size, live_only) && x->stack < P.nstacks)
                P.stacks[x->stack].kept += (uint64_t)((double)kept * (double)x->weight / (double)sampled);
        }
    }
    return total;
}

typedef struct {
    const char *site;
    uint64_t bytes;
} site_t;

static int by_bytes(const void *a, const void *b)
{
    uint64_t x = ((const site_t *)a)->bytes, y = ((const site_t *)b)->bytes;
    return x > y ? -1 : x < y;
}

static void top(const char *title, size_t field, unsigned limit)
{
    site_t *sites = calloc(P.nstacks + 1, sizeof *sites);
    size_t n = 0;
    uint64_t total = 0;
    for (size_t s = 0; s < P.nstacks; s++) {
        uint64_t v = *(const uint64_t *)((const char *)&P.stacks[s] + field);
        total += v;
        size_t k = 0;
        while (k < n && strcmp(sites[k].site, P.stacks[s].site) != 0)
            k++;
        if (k == n)
            sites[n++] = (site_t){P.stacks[s].site, 0};
        sites[k].bytes += v;
    }
    qsort(sites, n, sizeof *sites, by_bytes);
    printf("\n%s: %.1f MiB\n%10s %6s  %s\n", title, total / MiB, "MiB", "%", "site");
    for (size_t k = 0; k < n && k < limit && sites[k].bytes > 0; k++)
        printf("%10.1f %5.1f%%  %s\n", sites[k].bytes / MiB,
               total ? 100.0 * (double)sites[k].bytes / (double)total : 0.0, sites[k].site);
    free(sites);
}

/* The folded stacks' values: bytes allocated (the default), live at the
 * peak (heaptrack's --flamegraph-cost-type peak), live when written, or
 * kept resident. */
static const struct {
    const char *name;
    size_t field;
} folded_types[] = {{"alloc", offsetof(pstack_t, alloc)},
                    {"peak", offsetof(pstack_t, live_peak)},
                    {"inuse", offsetof(pstack_t, live_end)},
                    {"kept", offsetof(pstack_t, kept)}};

static void folded(const char *file, size_t field)
{
    FILE *f = fopen(file, "w");
    if (f == NULL) {
        perror(file);
        return;
    }
    for (size_t s = 0; s < P.nstacks; s++) {
        uint64_t v = *(const uint64_t *)((const char *)&P.stacks[s] + field);
        if (v == 0)
            continue;
        for (unsigned i = P.stacks[s].count; i-- > 0;)
            fprintf(f, "%s%s", name_of(P.stacks[s].frames[i]), i ? ";" : "");
        if (P.stacks[s].count == 0)
            fprintf(f, "?");
        fprintf(f, " %" PRIu64 "\n", v);
    }
    fclose(f);
}

/* ---- the flame graph ------------------------------------------------------------ */

#define FLAME_W 1200.0
#define FLAME_ROW 17

/* The samples as data for the page's script, which draws the flame graph
 * of the bytes allocated in the time range chosen on a timeline (all of
 * it at first): names, stacks (name indexes, outermost first) and samples
 * (stack, bytes, allocated and freed in seconds since `t0_ns`, the
 * timelines' origin; -1: never freed). */
static void flame_data(FILE *f, uint64_t t0_ns)
{
    ebb_index_t names = {0};
    uint64_t **stacks = calloc(P.nstacks + 1, sizeof *stacks);
    if (stacks == NULL)
        ebb_die("out of memory");
    for (size_t s = 0; s < P.nstacks; s++) {
        stacks[s] = calloc(P.stacks[s].count + 1, sizeof **stacks);
        if (stacks[s] == NULL)
            ebb_die("out of memory");
        for (unsigned i = 0; i < P.stacks[s].count; i++)
            stacks[s][i] = ebb_index_of(&names, name_of(P.stacks[s].frames[P.stacks[s].count - 1 - i]), 0, true);
    }
    fprintf(f, "<script type=\"application/json\" id=\"flame-data\">{\"names\":[");
    for (size_t i = 0; i < names.n; i++) {
        fputs(i ? "," : "", f);
        html_json_string(f, names.str[i]);
    }
    fprintf(f, "],\n\"stacks\":[");
    for (size_t s = 0; s < P.nstacks; s++) {
        fprintf(f, "%s[", s ? "," : "");
        for (unsigned i = 0; i < P.stacks[s].count; i++)
            fprintf(f, "%s%" PRIu64, i ? "," : "", stacks[s][i]);
        fprintf(f, "]");
        free(stacks[s]);
    }
    free(stacks);
    fprintf(f, "],\n\"samples\":[");
    for (size_t i = 0; i < P.nsamples; i++) {
        const psample_t *x = &P.samples[i];
        double alloc = ((double)x->alloc_ns - (double)t0_ns) / 1e9;
        double freed = x->free_ns == UINT64_MAX ? -1 : ((double)x->free_ns - (double)t0_ns) / 1e9;
        fprintf(f, "%s[%" PRIu32 ",%" PRIu64 ",%.6f,%.6f]", i ? "," : "", x->stack, x->weight, alloc, freed);
    }
    fprintf(f, "]}</script>\n");
    ebb_index_free(&names);
}

int ebb_profile_flame_html(FILE *f, const char *file, uint64_t t0_ns)
{
    if (!load(file))
        return 1;
    symbolize();
    fprintf(f, "<h2>Heap profile: bytes allocated by call stack</h2>\n"
               "<p>%zu samples, one per %" PRIu64 " bytes allocated on average.  The outermost frame on top; "
               "click a frame to zoom into it, the top bar to zoom out.  Drag across a timeline to see "
               "the bytes allocated in that time; double-click it to see all again.</p>\n"
               "<p id=\"flame-range\"></p>\n"
               "<svg id=\"flame\" width=\"%.0f\" height=\"%d\" font-family=\"monospace\" style=\"cursor:pointer\"></svg>\n",
            P.nsamples, P.rate, FLAME_W, FLAME_ROW);
    flame_data(f, t0_ns);
    /* Draw: the tree of the samples allocated in [a, b], merged by name,
     * as an icicle; each frame a <g class="frame"> with its name, bytes
     * and place in data attributes and a title shown on hover. */
    fprintf(f, "<script>\n(function(){var D=JSON.parse(document.getElementById('flame-data').textContent);"
               "var svg=document.getElementById('flame'),label=document.getElementById('flame-range'),"
               "NS='http://www.w3.org/2000/svg',W=%.0f,ROW=%d;\n"
               "function tree(a,b){var root={n:'all',b:0,c:{}};D.samples.forEach(function(s){"
               "if(s[2]<a||s[2]>b)return;var node=root,st=D.stacks[s[0]]||[];root.b+=s[1];"
               "for(var i=0;i<st.length;i++){var k=st[i];node=node.c[k]||(node.c[k]={n:D.names[k],b:0,c:{}});"
               "node.b+=s[1];}});return root;}\n"
               "function depth(n){var d=0;for(var k in n.c)d=Math.max(d,depth(n.c[k]));return d+1;}\n"
               "function draw(n,x,scale,d,total){var w=n.b*scale;if(w<0.5)return;var h=0;"
               "for(var i=0;i<n.n.length;i++)h=(h*31+n.n.charCodeAt(i))>>>0;"
               "var g=document.createElementNS(NS,'g');g.setAttribute('class','frame');g.dataset.name=n.n;"
               "g.dataset.bytes=n.b;g.dataset.x=x.toFixed(1);g.dataset.w=w.toFixed(1);"
               "var t=document.createElementNS(NS,'title');t.textContent=n.n+': '+(n.b/1048576).toFixed(2)+' MiB, '+"
               "(total?100*n.b/total:0).toFixed(1)+'%%';g.appendChild(t);"
               "var r=document.createElementNS(NS,'rect');r.setAttribute('x',x.toFixed(1));r.setAttribute('y',d*ROW);"
               "r.setAttribute('width',(w>1?w-1:w).toFixed(1));r.setAttribute('height',ROW-1);r.setAttribute('rx',2);"
               "r.setAttribute('fill','hsl('+(20+h%%40)+',70%%,'+(60+h%%20)+'%%)');g.appendChild(r);"
               "if(w>40){var tx=document.createElementNS(NS,'text');tx.setAttribute('x',(x+3).toFixed(1));"
               "tx.setAttribute('y',d*ROW+12);tx.setAttribute('font-size',11);tx.textContent=n.n.substr(0,Math.floor(w/7));"
               "g.appendChild(tx);}svg.appendChild(g);"
               "var kids=Object.keys(n.c).map(function(k){return n.c[k];}).sort(function(p,q){return q.b-p.b;}),cx=x;"
               "kids.forEach(function(c){draw(c,cx,scale,d+1,total);cx+=c.b*scale;});}\n"
               "window.ebbFlameRange=function(a,b){while(svg.firstChild)svg.removeChild(svg.firstChild);"
               "var root=tree(a,b),h=depth(root)*ROW;svg.setAttribute('height',h);"
               "svg.setAttribute('viewBox','0 0 '+W+' '+h);svg.removeAttribute('preserveAspectRatio');"
               "if(root.b>0)draw(root,0,W/root.b,0,root.b);"
               "label.textContent=(a<=-1e300&&b>=1e300?'The whole run':'From '+a.toFixed(3)+' s to '+b.toFixed(3)+' s')+"
               "': '+(root.b/1048576).toFixed(1)+' MiB allocated.';};\n"
               "svg.addEventListener('click',function(e){var g=e.target.closest('.frame');if(!g)return;"
               "var x=+g.dataset.x,w=+g.dataset.w;svg.setAttribute('viewBox',x+' 0 '+w+' '+svg.viewBox.baseVal.height);"
               "svg.setAttribute('preserveAspectRatio','none');});\n"
               "window.ebbFlameRange(-1e308,1e308);})();\n</script>\n",
            FLAME_W, FLAME_ROW);
    return 0;
}

/* Every stack, named, with its bytes, for pprof; `profile`'s time is
 * when it was written. */
static int pprof(const char *file, const char *profile)
{
    size_t frames = 0;
    for (size_t s = 0; s < P.nstacks; s++)
        frames += P.stacks[s].count;
    ebb_pprof_stack_t *out = calloc(P.nstacks + 1, sizeof *out);
    const char **names = calloc(frames + 1, sizeof *names);
    if (out == NULL || names == NULL)
        ebb_die("out of memory");
    for (size_t s = 0, at = 0; s < P.nstacks; s++) {
        const pstack_t *st = &P.stacks[s];
        out[s] = (ebb_pprof_stack_t){.addr = st->frames, .name = &names[at], .count = st->count};
        for (unsigned i = 0; i < st->count; i++)
            names[at++] = name_of(st->frames[i]);
        out[s].value[EBB_PPROF_ALLOC] = st->alloc;
        out[s].value[EBB_PPROF_INUSE] = st->live_end;
        out[s].value[EBB_PPROF_PEAK] = st->live_peak;
        out[s].value[EBB_PPROF_KEPT] = st->kept;
    }
    ebb_pprof_map_t *maps = calloc(P.nmaps + 1, sizeof *maps);
    if (maps == NULL)
        ebb_die("out of memory");
    for (size_t m = 0; m < P.nmaps; m++)
        maps[m] = (ebb_pprof_map_t){P.maps[m].start, P.maps[m].end, P.maps[m].offset, P.maps[m].path};
    struct stat st;
    uint64_t written = stat(profile, &st) == 0 ? (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec : 0;
    int rc = ebb_pprof_write(file, out, P.nstacks, maps, P.nmaps, P.rate, written);
    free(maps);
    free(names);
    free(out);
    return rc;
}

int ebb_profile_main(int argc, char **argv)
{
    const char *file = NULL, *fold = NULL, *pprof_out = NULL;
    unsigned limit = 10;
    size_t fold_field = folded_types[0].field;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--folded") == 0 && i + 1 < argc)
            fold = argv[++i];
        else if (strcmp(argv[i], "--pprof") == 0 && i + 1 < argc)
            pprof_out = argv[++i];
        else if (strcmp(argv[i], "--folded-type") == 0 && i + 1 < argc) {
            const char *type = argv[++i];
            size_t k = 0, n = sizeof folded_types / sizeof folded_types[0];
            while (k < n && strcmp(folded_types[k].name, type) != 0)
                k++;
            if (k == n) {
                fprintf(stderr, "ebb: --folded-type: alloc, peak, inuse or kept, not %s\n", type);
                return 2;
            }
            fold_field = folded_types[k].field;
        }
        else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc)
            limit = (unsigned)atoi(argv[++i]);
        else if (argv[i][0] != '-' && file == NULL)
            file = argv[i];
        else
            file = NULL, i = argc;
    }
    if (file == NULL) {
        fprintf(stderr, "usage: ebb profile [--top N] [--folded OUT [--folded-type alloc|peak|inuse|kept]] "
                        "[--pprof OUT] PROFILE\n");
        return 2;
    }
    if (!load(file))
        return 1;
    symbolize();
    for (size_t s = 0; s < P.nstacks; s++)
        P.stacks[s].site = P.stacks[s].count > 0 ? name_of(P.stacks[s].frames[0]) : "(no stack)";
    uint64_t peak_ns;
    uint64_t peak = tally(&peak_ns);
    uint64_t first = P.nsamples ? P.samples[0].alloc_ns : 0;
    printf("ebbmalloc heap profile: %zu samples, one per %" PRIu64 " bytes allocated on average\n", P.nsamples,
           P.rate);
    printf("live at the peak: %.1f MiB, %.3f s after the first sample\n", peak / MiB,
           peak_ns > first ? (double)(peak_ns - first) / 1e9 : 0.0);
    top("live at the peak", offsetof(pstack_t, live_peak), limit);
    top("live when written (at exit: leaks)", offsetof(pstack_t, live_end), limit);
    top("allocated", offsetof(pstack_t, alloc), limit);
    if (attribute_kept() > 0)
        top("freed, kept resident by the live blocks in its pages", offsetof(pstack_t, kept), limit);
    if (fold != NULL)
        folded(fold, fold_field);
    if (pprof_out != NULL && pprof(pprof_out, file) != 0)
        return 1;
    return 0;
}
