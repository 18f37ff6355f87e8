/* Two threads taking turns: one says how far it has come (steps_go), the
 * other waits until then (steps_wait).  Steps only grow. */
#ifndef EBB_TEST_STEPS_H
#define EBB_TEST_STEPS_H

#include <pthread.h>

static pthread_mutex_t steps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t steps_cond = PTHREAD_COND_INITIALIZER;
static int steps_done;

static inline void steps_go(int step)
{
    pthread_mutex_lock(&steps_lock);
    steps_done = step;
    pthread_cond_broadcast(&steps_cond);
    pthread_mutex_unlock(&steps_lock);
}

static inline void steps_wait(int step)
{
    pthread_mutex_lock(&steps_lock);
    while (steps_done < step)
        pthread_cond_wait(&steps_cond, &steps_lock);
    pthread_mutex_unlock(&steps_lock);
}

#endif
