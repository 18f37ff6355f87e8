/* Instructions per small malloc+free pair, for callgrind.
 *   instr same N     N pairs of free/malloc(32) on one thread
 *   instr cross N    a producer thread mallocs N blocks in batches of 64,
 *                    a consumer frees them (cross-thread frees)
 * Run it twice with different N under callgrind and divide the difference
 * of the totals by the difference of N: startup costs cancel out. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

/* A ring of live blocks: each step frees the oldest and allocates anew, so
 * the page never empties (the steady state of a real program, rather than
 * a page emptied and refilled at every step). */
#define RING 100
static void same_thread(long n)
{
    void *ring[RING];
    for (int i = 0; i < RING; i++)
        ring[i] = malloc(32);
    for (long i = 0; i < n; i++) {
        free(ring[i % RING]);
        ring[i % RING] = malloc(32);
        sink = ring[i % RING];
    }
    for (int i = 0; i < RING; i++)
        free(ring[i]);
}

#define BATCH 64
static void *slots[BATCH];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int full; /* 1: slots hold a batch for the consumer */
static long batches;

static void *consumer(void *arg)
{
    (void)arg;
    for (long b = 0; b < batches; b++) {
        pthread_mutex_lock(&lock);
        while (!full)
            pthread_cond_wait(&cond, &lock);
        for (int i = 0; i < BATCH; i++)
            free(slots[i]);
        full = 0;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void cross_thread(long n)
{
    batches = n / BATCH;
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    for (long b = 0; b < batches; b++) {
        void *fresh[BATCH];
        for (int i = 0; i < BATCH; i++)
            fresh[i] = malloc(32);
        pthread_mutex_lock(&lock);
        while (full)
            pthread_cond_wait(&cond, &lock);
        memcpy(slots, fresh, sizeof fresh);
        full = 1;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = atol(argv[2]);
    if (strcmp(argv[1], "same") == 0)
        same_thread(n);
    else
        cross_thread(n);
    return 0;
}
