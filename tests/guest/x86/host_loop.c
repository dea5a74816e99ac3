/* Host reference for the compute test: the same LCG loop, natively.
 * Prints "host: iterations=N cycles=C result=0xX"; run-qemu.sh and
 * run-petrel.sh divide the guest's cycles by these. */
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>

#include "common/lcg.h"

int main(void) {
    volatile uint64_t seed = LCG_SEED, iters = LCG_ITERS;
    uint64_t best = UINT64_MAX, x = 0;
    for (int r = 0; r < 3; r++) { /* best of 3: the machine may be busy */
        uint64_t t0 = __rdtsc();
        x = lcg_run(seed, iters);
        uint64_t t1 = __rdtsc();
        if (t1 - t0 < best) best = t1 - t0;
    }
    printf("host: iterations=%llu cycles=%llu result=0x%016llx\n", (unsigned long long)LCG_ITERS,
           (unsigned long long)best, (unsigned long long)x);
    return x == lcg_jump(LCG_SEED, LCG_ITERS) ? 0 : 1;
}
