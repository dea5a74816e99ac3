/* The compute test's loop, shared by the guest (compute.c, run at CPL3)
 * and the host reference (host_loop.c). */
#ifndef X86_LCG_H
#define X86_LCG_H

#include <stdint.h>

#define LCG_A 6364136223846793005ull /* Knuth's MMIX LCG */
#define LCG_C 1442695040888963407ull
#define LCG_SEED 0x0123456789abcdefull
#define LCG_ITERS 200000000ull

static inline __attribute__((always_inline)) uint64_t lcg_run(uint64_t x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) x = x * LCG_A + LCG_C;
    return x;
}

/* x after n steps in O(log n) (jump-ahead), to check lcg_run's result */
static inline uint64_t lcg_jump(uint64_t x, uint64_t n) {
    uint64_t am = 1, ac = 0, m = LCG_A, c = LCG_C;
    while (n) {
        if (n & 1) {
            am *= m;
            ac = ac * m + c;
        }
        c = (m + 1) * c;
        m *= m;
        n >>= 1;
    }
    return am * x + ac;
}

#endif
