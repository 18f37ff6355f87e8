/* The statistics page a process publishes for the ebb command.
 *
 * With EBB_PUBLISH=DIR in its environment, a process on ebbmalloc creates
 * DIR/PID-START.ebb (START: nanoseconds, so an exec'd image in the same
 * process gets a file of its own), maps it shared, and its service thread
 * rewrites it every EBB_PUBLISH_INTERVAL_MS.  A reader maps the file and
 * copies it under the sequence lock: `seq` is odd while the page is being
 * written; a copy is good if `seq` was even and the same before and after.
 * Nothing is asked of the program: reading costs it nothing.
 *
 * Shared by src/publish.c (the writer) and tools/run.c (the reader).
 */
#ifndef EBB_PUBLISH_H
#define EBB_PUBLISH_H

#include <stdint.h>

#include "ebbmalloc.h"

#define EBB_PUBLISH_MAGIC 0x3162626521626265ull /* "ebb!ebb1" */
#define EBB_PUBLISH_VERSION 3 /* 2, 3: struct ebb_stats gained fields */
#define EBB_PUBLISH_CLASSES 120
#define EBB_PUBLISH_FILE_SIZE 16384

typedef struct {
    uint32_t block_size;
    uint32_t pad;
    uint64_t allocs;
    uint64_t frees;
} ebb_published_class_t;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t size;                 /* of this struct */
    uint64_t seq;                  /* the sequence lock (atomic) */
    int32_t pid;
    int32_t ppid;
    uint64_t start_ns;             /* CLOCK_MONOTONIC at the library's start */
    uint64_t sample_ns;            /* CLOCK_MONOTONIC of this snapshot */
    uint32_t exited;               /* 1: the last snapshot, written at exit */
    uint32_t class_count;
    char exe[256];                 /* the program's path */
    struct ebb_stats stats;
    ebb_published_class_t classes[EBB_PUBLISH_CLASSES];
} ebb_published_t;

_Static_assert(sizeof(ebb_published_t) <= EBB_PUBLISH_FILE_SIZE, "the page holds the snapshot");

#endif
