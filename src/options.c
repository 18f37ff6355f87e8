/* Run-time options: one table, read from EBB_* environment variables
 * without allocating (getenv only reads the environment).
 *
 * Options are read when the allocator initializes; an allocation before
 * the environment is set up (from the dynamic loader) uses the defaults,
 * and the library's constructor reads them again.  Values are integers
 * with an optional K, M or G suffix (powers of 1024).
 */
#include <stdlib.h>

#include "internal.h"

typedef struct {
    const char *name;
    long default_value;
    long min, max;
    const char *const *words; /* accepted words, valued 0, 1, ... (or NULL) */
} option_desc_t;

static const char *const purge_words[] = {"dontneed", "free", "madvise", NULL};
static const char *const guard_words[] = {"0", "after", "before", NULL};

static const option_desc_t option_descs[EBB_OPTION_COUNT] = {
    /* The break only when we are the process's malloc (source.c). */
    [EBB_OPTION_BRK] = {"EBB_BRK", EBB_OVERRIDE, 0, 1, NULL},
    [EBB_OPTION_ARENAS] = {"EBB_ARENAS", 0, 0, EBB_MAX_ARENAS, NULL},
    [EBB_OPTION_STATS] = {"EBB_STATS", 0, 0, 1, NULL},
    /* Reclamation (reclaim.c); docs/RECLAIM.md says how the defaults were chosen. */
    [EBB_OPTION_RECLAIM_DELAY_MS] = {"EBB_RECLAIM_DELAY_MS", 50, 0, 3600 * 1000, NULL},
    [EBB_OPTION_RETAIN_MAX] = {"EBB_RETAIN_MAX", 1L << 30, 0, __LONG_MAX__, NULL},
    [EBB_OPTION_BACKGROUND] = {"EBB_BACKGROUND", 1, 0, 1, NULL},
    [EBB_OPTION_PURGE] = {"EBB_PURGE", 0, 0, 2, purge_words},
    [EBB_OPTION_RETAIN_MIN] = {"EBB_RETAIN_MIN", 1L << 20, 0, __LONG_MAX__, NULL},
    [EBB_OPTION_MMAP_THRESHOLD] = {"EBB_MMAP_THRESHOLD", 0, 0, EBB_PAGE_BLOCK_MAX, NULL},
    /* Safety modes (safety.c), fixed when the allocator starts. */
    [EBB_OPTION_ZERO_ON_FREE] = {"EBB_ZERO_ON_FREE", 0, 0, 1, NULL},
    [EBB_OPTION_SECURE] = {"EBB_SECURE", 0, 0, 1, NULL},
    [EBB_OPTION_GUARD] = {"EBB_GUARD", 0, 0, 2, guard_words},
    [EBB_OPTION_GUARD_SAMPLE] = {"EBB_GUARD_SAMPLE", 0, 0, __LONG_MAX__, NULL},
    [EBB_OPTION_GUARD_QUARANTINE] = {"EBB_GUARD_QUARANTINE", 64L << 20, 0, __LONG_MAX__, NULL},
    [EBB_OPTION_GUARD_SAMPLE_BUDGET] = {"EBB_GUARD_SAMPLE_BUDGET", 1, 0, 100, NULL},
    [EBB_OPTION_ABORT_ON_ERROR] = {"EBB_ABORT_ON_ERROR", 1, 0, 1, NULL},
    [EBB_OPTION_PUBLISH_INTERVAL_MS] = {"EBB_PUBLISH_INTERVAL_MS", 50, 1, 60000, NULL},
    /* Memory limits (limits.c). */
    [EBB_OPTION_MEMORY_LIMIT] = {"EBB_MEMORY_LIMIT", 0, 0, __LONG_MAX__, NULL},
    [EBB_OPTION_LIMITS] = {"EBB_LIMITS", 1, 0, 1, NULL},
    /* The heap profiler (profile.c). */
    [EBB_OPTION_PROFILE] = {"EBB_PROFILE", 0, 0, 1, NULL},
    [EBB_OPTION_PROFILE_RATE] = {"EBB_PROFILE_RATE", 512L << 10, 1, 1L << 40, NULL},
    [EBB_OPTION_PROFILE_FAST_UNWIND] = {"EBB_PROFILE_FAST_UNWIND", 1, 0, 1, NULL},
};

static bool word_value(const option_desc_t *d, const char *s, long *out)
{
    for (long i = 0; d->words != NULL && d->words[i] != NULL; i++) {
        const char *w = d->words[i];
        size_t k = 0;
        while (w[k] != '\0' && w[k] == s[k])
            k++;
        if (w[k] == '\0' && s[k] == '\0') {
            *out = i;
            return true;
        }
    }
    return false;
}

_Atomic(long) ebbi_option_values[EBB_OPTION_COUNT];
static _Atomic(bool) option_given[EBB_OPTION_COUNT]; /* by the environment or mallopt */
static _Atomic(bool) options_loaded;

extern char **environ;

/* "123", "64K", "2M", "1G"; false if malformed. */
static bool parse_value(const char *s, long *out)
{
    if (*s == '\0')
        return false;
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (__LONG_MAX__ - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    int shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    default: break;
    }
    if (*s != '\0' || v > (__LONG_MAX__ >> shift))
        return false;
    *out = v << shift;
    return true;
}

void ebbi_options_load(void)
{
    bool have_env = environ != NULL;
    for (int i = 0; i < EBB_OPTION_COUNT; i++) {
        const option_desc_t *d = &option_descs[i];
        long v = d->default_value;
        const char *s = have_env ? getenv(d->name) : NULL;
        long parsed;
        bool given = false;
        if (s != NULL && (word_value(d, s, &parsed) || parse_value(s, &parsed))) {
            if (parsed < d->min)
                parsed = d->min;
            if (parsed > d->max)
                parsed = d->max;
            v = parsed;
            given = true;
        } else if (s != NULL) {
            ebbi_message("ebbmalloc: warning: %s=%s is not a valid value; using %ld\n", d->name, s, v);
        }
        ebbi_store_relaxed(&ebbi_option_values[i], v);
        ebbi_store_relaxed(&option_given[i], given);
    }
    ebbi_store_relaxed(&options_loaded, have_env);
}

bool ebbi_options_from_environment(void)
{
    return ebbi_load_relaxed(&options_loaded);
}

void ebbi_option_set(ebbi_option_t option, long value)
{
    ebbi_store_relaxed(&ebbi_option_values[option], value);
    ebbi_store_relaxed(&option_given[option], true);
}

bool ebbi_option_given(ebbi_option_t option)
{
    return ebbi_load_relaxed(&option_given[option]);
}
