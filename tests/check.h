/* A tiny test harness: CHECK counts a passed or failed assertion, and
 * check_summary() prints the closing line the runner reads:
 * "N passed, N failed". */
#ifndef EBB_TEST_CHECK_H
#define EBB_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_passed_count;
static int check_failed_count;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (cond) {                                                                              \
            check_passed_count++;                                                                \
        } else {                                                                                 \
            check_failed_count++;                                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, " " __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                                 \
        }                                                                                        \
    } while (0)

/* For conditions that must hold before the test can go on (evaluated
 * once: the condition may be the call that sets things up). */
#define REQUIRE(cond, ...)                                                                       \
    do {                                                                                         \
        int require_ok_ = 0;                                                                     \
        CHECK((require_ok_ = !!(cond)), __VA_ARGS__);                                            \
        if (!require_ok_) {                                                                      \
            printf("%d passed, %d failed\n", check_passed_count, check_failed_count);            \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
    fflush(stdout);
    return check_failed_count == 0 ? 0 : 1;
}

#endif
