/* test: early            fast */
/* Run with LD_PRELOAD=libebbmalloc.so: allocations in constructors (before
 * main), destructors, atexit handlers and thread-specific-data destructors
 * (after the thread's function returned) all work, and are ebbmalloc's:
 * its malloc_usable_size aborts on any other pointer. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char *early_first, *early_second;

__attribute__((constructor(101))) static void first_constructor(void)
{
    early_first = malloc(100);
    strcpy(early_first, "constructor 101");
}

__attribute__((constructor)) static void plain_constructor(void)
{
    early_second = calloc(1, 5000);
    early_first = realloc(early_first, 20000);
}

static void fail_late(const char *what)
{
    write(2, what, strlen(what));
    _exit(3);
}

static char *kept_for_destructor;

static void at_exit_handler(void)
{
    char *p = malloc(300);
    if (p == NULL || malloc_usable_size(p) < 300)
        fail_late("atexit: malloc failed\n");
    free(p);
    free(kept_for_destructor);
    kept_for_destructor = malloc(64);
}

__attribute__((destructor)) static void last_destructor(void)
{
    if (kept_for_destructor == NULL || malloc_usable_size(kept_for_destructor) < 64)
        fail_late("destructor: block from atexit lost\n");
    free(kept_for_destructor);
    void *p = malloc(12345);
    if (p == NULL)
        fail_late("destructor: malloc failed\n");
    free(p);
}

static pthread_key_t key;
static int destructor_ran;

static void tsd_destructor(void *value)
{
    /* The thread's function has returned; its heap may already be gone. */
    char *p = value;
    if (strcmp(p, "thread data") != 0)
        fail_late("tsd destructor: data corrupted\n");
    free(p);
    void *q = malloc(777);
    free(q);
    __atomic_add_fetch(&destructor_ran, 1, __ATOMIC_SEQ_CST);
}

static __thread char *thread_local_block;

static void *thread_main(void *arg)
{
    (void)arg;
    char *p = malloc(64);
    strcpy(p, "thread data");
    pthread_setspecific(key, p);
    thread_local_block = malloc(1000);
    free(thread_local_block);
    return NULL;
}

int main(void)
{
    CHECK(early_first != NULL && strcmp(early_first, "constructor 101") == 0,
          "constructor allocation survives realloc");
    CHECK(malloc_usable_size(early_first) >= 20000 && malloc_usable_size(early_second) >= 5000,
          "blocks from before main are ebbmalloc's");
    char zero = 0;
    for (int i = 0; i < 5000; i++)
        zero |= early_second[i];
    CHECK(zero == 0, "calloc before main");
    free(early_first);
    free(early_second);

    CHECK(pthread_key_create(&key, tsd_destructor) == 0);
    for (int round = 0; round < 50; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, thread_main, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    CHECK(__atomic_load_n(&destructor_ran, __ATOMIC_SEQ_CST) == 200, "thread destructors ran and freed");
    atexit(at_exit_handler);
    kept_for_destructor = malloc(10);
    return check_summary();
}
