/* A program in phases, for the ebb tests:
 *   phases MIB [STATUS]   allocate MIB MiB in 4096-byte blocks (an exact
 *                         size class: "in use" is exactly MIB MiB), hold
 *                         them 300 ms, free them, wait 400 ms (memory goes
 *                         back), allocate MIB/4 MiB of 256-byte blocks,
 *                         free them, exit with STATUS;
 *   phases signal         the same, then die of SIGUSR1;
 *   phases spawn          run "phases 8" and "phases 4" through the shell
 *                         (exec'd children), then phases 16 itself;
 *   phases hold MIB FILE  allocate MIB MiB, write the pid to FILE, hold 3 s. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Not inlined: the heap profile's tests (test_ebb.sh) look for its name. */
__attribute__((noinline)) static void **fill(size_t mib, size_t size, size_t *n)
{
    *n = (mib << 20) / size;
    void **p = malloc(*n * sizeof *p);
    for (size_t i = 0; i < *n; i++) {
        p[i] = malloc(size);
        memset(p[i], (int)i, size);
    }
    return p;
}

static void drop(void **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

__attribute__((noinline)) static void phases(size_t mib)
{
    size_t n;
    void **p = fill(mib, 4096, &n);
    sleep_ms(300);
    drop(p, n);
    sleep_ms(400);
    p = fill(mib / 4, 256, &n);
    sleep_ms(150);
    drop(p, n);
    sleep_ms(100);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "signal") == 0) {
        phases(8);
        raise(SIGUSR1);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "spawn") == 0) {
        char cmd[4096 + 64];
        snprintf(cmd, sizeof cmd, "'%s' 8 && '%s' 4", argv[0], argv[0]);
        if (system(cmd) != 0)
            return 1;
        phases(16);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "hold") == 0) {
        size_t n;
        void **p = fill((size_t)atol(argv[2]), 4096, &n);
        FILE *f = fopen(argv[3], "w");
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        sleep_ms(3000);
        drop(p, n);
        return 0;
    }
    if (argc < 2)
        return 2;
    phases((size_t)atol(argv[1]));
    return argc >= 3 ? atoi(argv[2]) : 0;
}
