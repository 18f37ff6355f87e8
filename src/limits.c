/* Memory limits and pressure: what the process lives under, for the
 * reclamation policy (reclaim.c), which keeps nothing free near a limit
 * or while the kernel is short of memory.
 *
 * Limits, each with the usage it is measured against:
 *   - the memory cgroup: v2 memory.max and memory.high, the tightest of
 *     the process's cgroup and its ancestors, against memory.current; v1
 *     memory.stat's hierarchical_memory_limit (ancestors included) against
 *     memory.usage_in_bytes.  The cgroup comes from /proc/self/cgroup, its
 *     files from the usual mount points (/sys/fs/cgroup, its unified/ for
 *     v2 in hybrid setups, its memory/ for v1);
 *   - RLIMIT_AS against the process's size, RLIMIT_DATA against its data
 *     (/proc/self/statm);
 *   - EBB_MEMORY_LIMIT, a soft limit of ebbmalloc's own, against the
 *     process's resident size (/proc/self/statm).
 * Pressure: the kernel's pressure stall information, /proc/pressure/memory
 * (and the v2 cgroup's memory.pressure): the share of time some task
 * waited for memory since the last reading.
 *
 * The files are found once at start (ebbi_limits_discover) and read when
 * the policy asks (ebbi_limits_read): a few open/read/close calls, never
 * on a fast path, never an allocation (fixed buffers on the stack).
 * EBB_LIMITS=0 leaves out all but EBB_MEMORY_LIMIT.
 */
#include <string.h>

#include "internal.h"

#define PATH_CAP 512
#define V1_UNLIMITED ((uint64_t)1 << 60) /* v1 writes 2^63 - 4096 for "none" */
/* Under pressure: some task stalled on memory more than a twentieth of
 * the time between two readings, taken at least 20 ms apart. */
#define PRESSURE_SHARE 20
#define PRESSURE_MIN_INTERVAL_NS 20000000u

static struct {
    bool discovered;
    int cgroup_version;          /* 0 none, 1, 2 */
    char cgroup_dir[PATH_CAP];   /* the process's memory cgroup */
    unsigned v2_levels;          /* its ancestors with memory files (v2), itself included */
    char pressure_file[PATH_CAP];
    uint64_t pressure_total_us;  /* last "some" reading */
    uint64_t pressure_read_ns;
    bool under_pressure;         /* the last verdict */
} lim;

/* ---- small parsers (no allocation, no stdio) --------------------------------- */

static uint64_t parse_u64(const char *s, bool *ok)
{
    uint64_t v = 0;
    *ok = *s >= '0' && *s <= '9';
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    return v;
}

/* The number after `key` at the start of a line of `text`; UINT64_MAX if
 * absent (or "max"). */
static uint64_t find_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, key, klen) == 0) {
            bool ok;
            uint64_t v = parse_u64(line + klen, &ok);
            return ok ? v : UINT64_MAX;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return UINT64_MAX;
}

static uint64_t read_number(const char *path)
{
    char buf[64];
    if (ebbi_os_read_file(path, buf, sizeof buf) == 0)
        return UINT64_MAX;
    bool ok;
    uint64_t v = parse_u64(buf, &ok);
    return ok ? v : UINT64_MAX; /* "max" */
}

static bool file_exists(const char *path)
{
    char buf[8];
    return ebbi_os_read_file(path, buf, sizeof buf) > 0;
}

static void join(char *out, const char *a, const char *b, const char *c)
{
    ebbi_format(out, PATH_CAP, "%s%s%s", a, b, c);
}

/* ---- discovery -------------------------------------------------------------------- */

/* The cgroup path of the line of /proc/self/cgroup for v2 ("0::PATH") or
 * for v1's memory controller ("N:...memory...:PATH"). */
static bool cgroup_path(const char *text, int version, char *out)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *c1 = strchr(line, ':');
        const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        const char *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if (c2 != NULL && c2 < end) {
            bool match = false;
            if (version == 2) {
                match = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
            } else {
                for (const char *t = c1 + 1; t < c2;) { /* a controller list: "cpu,memory" */
                    const char *comma = memchr(t, ',', (size_t)(c2 - t));
                    const char *tend = comma != NULL ? comma : c2;
                    if (tend - t == 6 && strncmp(t, "memory", 6) == 0)
                        match = true;
                    t = tend + 1;
                }
            }
            size_t len = (size_t)(end - (c2 + 1));
            if (match && len + 1 < PATH_CAP / 2) {
                memcpy(out, c2 + 1, len);
                out[len] = '\0';
                if (len == 1 && out[0] == '/')
                    out[0] = '\0'; /* the root: "" so that joins give "mount/file" */
                return true;
            }
        }
        line = *end != '\0' ? end + 1 : NULL;
    }
    return false;
}

void ebbi_limits_discover(void)
{
    if (lim.discovered)
        return;
    lim.discovered = true;
    if (!ebbi_option(EBB_OPTION_LIMITS))
        return; /* EBB_MEMORY_LIMIT alone */
    char text[2048], path[PATH_CAP], rel[PATH_CAP];
    ebbi_os_read_file("/proc/self/cgroup", text, sizeof text);
    static const char *const v2_roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    if (cgroup_path(text, 2, rel)) {
        for (unsigned r = 0; r < 2 && lim.cgroup_version == 0; r++) {
            join(path, v2_roots[r], rel, "/memory.current");
            if (!file_exists(path))
                continue;
            lim.cgroup_version = 2;
            join(lim.cgroup_dir, v2_roots[r], rel, "");
            join(lim.pressure_file, lim.cgroup_dir, "/memory.pressure", "");
            /* Levels up to the mount point that have memory files. */
            size_t root_len = strlen(v2_roots[r]);
            strcpy(path, lim.cgroup_dir);
            for (;;) {
                size_t len = strlen(path);
                char file[PATH_CAP];
                join(file, path, "/memory.max", "");
                if (len <= root_len || !file_exists(file))
                    break;
                lim.v2_levels++;
                while (len > root_len && path[len - 1] != '/')
                    len--;
                path[len > root_len ? len - 1 : root_len] = '\0';
            }
        }
    }
    if (lim.cgroup_version == 0 && cgroup_path(text, 1, rel)) {
        join(path, "/sys/fs/cgroup/memory", rel, "/memory.usage_in_bytes");
        if (file_exists(path)) {
            lim.cgroup_version = 1;
            join(lim.cgroup_dir, "/sys/fs/cgroup/memory", rel, "");
        }
    }
    if (lim.pressure_file[0] == '\0' || !file_exists(lim.pressure_file))
        strcpy(lim.pressure_file, "/proc/pressure/memory");
    if (!file_exists(lim.pressure_file))
        lim.pressure_file[0] = '\0';
}

/* ---- reading ---------------------------------------------------------------------- */

/* One limit against its usage: the room left, and the margin kept below it
 * (a sixteenth of the limit, at least 2 MiB: the kernel acts at the limit,
 * usage moves between two readings, and a page or a huge block taken
 * counts only once it is touched). */
static void consider(ebbi_limits_t *out, uint64_t limit, uint64_t usage)
{
    if (limit == UINT64_MAX || usage == UINT64_MAX)
        return;
    uint64_t margin = limit / 16 > (2u << 20) ? limit / 16 : (2u << 20);
    uint64_t room = limit > usage ? limit - usage : 0;
    /* The limit that binds first: the least room above its margin. */
    if (!out->any || (int64_t)(room - margin) < (int64_t)(out->room - out->margin)) {
        out->room = room;
        out->margin = margin;
        out->limit = limit;
    }
    out->any = true;
}

static uint64_t cgroup_v2_limit(void)
{
    char path[PATH_CAP], file[PATH_CAP];
    strcpy(path, lim.cgroup_dir);
    uint64_t limit = UINT64_MAX;
    for (unsigned level = 0; level < lim.v2_levels; level++) {
        static const char *const names[] = {"/memory.max", "/memory.high"};
        for (unsigned i = 0; i < 2; i++) {
            join(file, path, names[i], "");
            uint64_t v = read_number(file);
            if (v < limit)
                limit = v;
        }
        char *slash = strrchr(path, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
    }
    return limit;
}

void ebbi_limits_read(ebbi_limits_t *out, uint64_t now)
{
    out->any = false;
    out->pressure = false;
    out->room = UINT64_MAX;
    out->margin = 0;
    out->limit = UINT64_MAX;
    if (!lim.discovered)
        return;
    char buf[2048], file[PATH_CAP];
    if (lim.cgroup_version == 2) {
        join(file, lim.cgroup_dir, "/memory.current", "");
        consider(out, cgroup_v2_limit(), read_number(file));
    } else if (lim.cgroup_version == 1) {
        join(file, lim.cgroup_dir, "/memory.stat", "");
        ebbi_os_read_file(file, buf, sizeof buf);
        uint64_t limit = find_value(buf, "hierarchical_memory_limit ");
        join(file, lim.cgroup_dir, "/memory.usage_in_bytes", "");
        if (limit < V1_UNLIMITED)
            consider(out, limit, read_number(file));
    }
    bool rlimits = ebbi_option(EBB_OPTION_LIMITS) != 0;
    uint64_t as = rlimits ? ebbi_os_rlimit(EBBI_RLIMIT_AS) : UINT64_MAX, data = rlimits ? ebbi_os_rlimit(EBBI_RLIMIT_DATA) : UINT64_MAX;
    uint64_t soft = (uint64_t)ebbi_option(EBB_OPTION_MEMORY_LIMIT);
    if (as != UINT64_MAX || data != UINT64_MAX || soft != 0) {
        /* statm: size resident shared text lib data dt, in pages. */
        uint64_t f[6] = {0};
        if (ebbi_os_read_file("/proc/self/statm", buf, sizeof buf) > 0) {
            const char *s = buf;
            for (unsigned i = 0; i < 6 && *s != '\0'; i++) {
                bool ok;
                f[i] = parse_u64(s, &ok) * ebbi_process.page_size;
                while (*s != '\0' && *s != ' ')
                    s++;
                while (*s == ' ')
                    s++;
            }
            consider(out, as, f[0]);
            consider(out, data, f[5]);
            if (soft != 0)
                consider(out, soft, f[1]);
        }
    }
    /* Pressure: the share of the time since the last reading that some
     * task stalled waiting for memory ("some ... total=MICROSECONDS"). */
    if (lim.pressure_file[0] != '\0' && now - lim.pressure_read_ns >= PRESSURE_MIN_INTERVAL_NS &&
        ebbi_os_read_file(lim.pressure_file, buf, sizeof buf) > 0) {
        const char *t = strstr(buf, "total=");
        bool ok = false;
        uint64_t total = t != NULL ? parse_u64(t + 6, &ok) : 0;
        if (ok) {
            if (lim.pressure_read_ns != 0 && total >= lim.pressure_total_us) {
                uint64_t stalled_ns = (total - lim.pressure_total_us) * 1000u;
                lim.under_pressure = stalled_ns * PRESSURE_SHARE > now - lim.pressure_read_ns;
            }
            lim.pressure_total_us = total;
            lim.pressure_read_ns = now;
        }
    }
    out->pressure = lim.under_pressure;
}

bool ebbi_limits_known(void)
{
    if (ebbi_option(EBB_OPTION_MEMORY_LIMIT) != 0 || lim.cgroup_version != 0)
        return true;
    return ebbi_option(EBB_OPTION_LIMITS) && (ebbi_os_rlimit(EBBI_RLIMIT_AS) != UINT64_MAX || ebbi_os_rlimit(EBBI_RLIMIT_DATA) != UINT64_MAX);
}
