/* cpumark natively on the host: the physical limit for bench/mips.py.
 *
 *   gcc -O2 -o build/bench/cpumark-native bench/cpumark-native.c
 *   build/bench/cpumark-native [RUNS]      (default 1)
 *
 * Runs the same workload as the riscv64 guest program (CM_ITERS iterations
 * from CM_SEED, tests/guest/riscv64/cpumark_work.h) RUNS times and prints,
 * per run, the line the guest prints, with ns instead of 10 MHz ticks:
 *   cpumark: harts 1 iterations N checksum 0xC errors 0 ns T
 * Exit status 1 if a checksum is not CM_EXPECTED or a self-check failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../tests/guest/riscv64/cpumark_work.h"

static struct cm_state state;

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    char *end;
    long runs = argc > 1 ? strtol(argv[1], &end, 10) : 1;
    if (argc > 2 || runs < 1 || runs > 1000 || (argc > 1 && *end)) {
        fprintf(stderr, "usage: %s [RUNS (1..1000)]\n", argv[0]);
        return 2;
    }
    int bad = 0;
    for (long r = 0; r < runs; r++) {
        unsigned long long t0 = now_ns();
        unsigned crc = cm_run(&state, CM_SEED, CM_ITERS);
        unsigned long long t1 = now_ns();
        printf("cpumark: harts 1 iterations %u checksum 0x%04x errors %u ns %llu\n", CM_ITERS, crc,
               state.errors, t1 - t0);
        if (crc != CM_EXPECTED || state.errors) {
            printf("FAIL cpumark: checksum 0x%04x (expected 0x%04x), %u self-check errors\n", crc,
                   CM_EXPECTED, state.errors);
            bad = 1;
        }
    }
    return bad;
}
