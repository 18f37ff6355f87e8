/* The statistics page for the ebb command (publish.h has the format).
 *
 * Only with EBB_PUBLISH=DIR: the page is created when the library starts
 * (and again in a forked child, which is a process of its own), the
 * service thread (service.c) rewrites it every EBB_PUBLISH_INTERVAL_MS,
 * and the library's destructor writes the last one.  The program itself
 * does nothing for it.
 *
 * With the heap profiler on, `ebb stats --profile PID` asks for a profile
 * by creating PAGE.profile-request; the service thread, at its next
 * rewrite, writes PAGE.profile and removes the request.
 */
#include <stdlib.h>
#include <string.h>

#include "ebbmalloc.h"
#include "internal.h"
#include "publish.h"

static ebb_published_t *page;
static uint64_t start_ns;
static char page_path[480];

static void page_create(void)
{
    const char *dir = getenv("EBB_PUBLISH");
    if (dir == NULL || dir[0] == '\0')
        return;
    char path[512];
    start_ns = ebbi_os_now_ns();
    ebbi_format(path, sizeof path, "%s/%d-%lu.ebb", dir, ebbi_os_pid(), (unsigned long)start_ns);
    ebb_published_t *p = ebbi_os_map_new_file(path, EBB_PUBLISH_FILE_SIZE);
    if (p == NULL)
        return;
    ebbi_format(page_path, sizeof page_path, "%s", path);
    p->version = EBB_PUBLISH_VERSION;
    p->size = sizeof *p;
    p->pid = ebbi_os_pid();
    p->ppid = ebbi_os_ppid();
    p->start_ns = start_ns;
    p->class_count = EBB_CLASS_COUNT;
    ebbi_os_self_exe(p->exe, sizeof p->exe);
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++)
        p->classes[c].block_size = ebbi_classes[c].block_size;
    ebbi_store_release((_Atomic(uint64_t) *)&p->magic, EBB_PUBLISH_MAGIC);
    page = p;
}

void ebbi_publish_init(void)
{
    page_create();
    if (page == NULL)
        return;
    ebbi_publish_now(EBBI_PUBLISH_UPDATE);
}

uint64_t ebbi_publish_interval_ns(void)
{
    return page != NULL ? (uint64_t)ebbi_option(EBB_OPTION_PUBLISH_INTERVAL_MS) * 1000000u : 0;
}

void ebbi_publish_now(ebbi_publish_t when)
{
    bool exiting = when == EBBI_PUBLISH_AT_EXIT;
    ebb_published_t *p = page;
    if (p == NULL)
        return;
    /* Computed first, written under the sequence lock in one go. */
    struct ebb_stats s;
    ebb_stats_get(&s);
    uint64_t allocs[EBB_CLASS_COUNT], frees[EBB_CLASS_COUNT];
    ebbi_stats_class_counts(allocs, frees);
    _Atomic(uint64_t) *seq = (_Atomic(uint64_t) *)&p->seq;
    uint64_t v = ebbi_load_relaxed(seq);
    ebbi_store_relaxed(seq, v + 1);
    ebbi_fence_release();
    p->stats = s;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        p->classes[c].allocs = allocs[c];
        p->classes[c].frees = frees[c];
    }
    p->sample_ns = ebbi_os_now_ns();
    p->exited = exiting;
    ebbi_store_release(seq, v + 2);
    if (!exiting && ebbi_profiling) {
        char request[512], out[512];
        ebbi_format(request, sizeof request, "%s.profile-request", page_path);
        if (ebbi_os_file_exists(request)) {
            ebbi_format(out, sizeof out, "%s.profile", page_path);
            ebb_profile_dump(out);
            ebbi_os_remove_file(request); /* last: the profile is whole */
        }
    }
}

/* A forked child has the parent's page mapped: it gets a page of its own,
 * and the service thread (which did not survive the fork) again. */
void ebbi_publish_fork_child(void)
{
    if (page == NULL)
        return;
    page = NULL;
    page_create();
    if (page != NULL)
        ebbi_store_relaxed(&ebbi_service_wanted, true);
}

__attribute__((destructor)) static void publish_at_exit(void)
{
    ebbi_publish_now(EBBI_PUBLISH_AT_EXIT);
}
