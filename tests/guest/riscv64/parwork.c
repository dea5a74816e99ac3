/* parwork: CPU-bound integer work on every hart at once, for
 * bench/smp-scaling.py.  Hart 0 starts hart 1 (if there is one: it answers
 * within 200 ms), then each hart runs the same fixed amount of work (a
 * xorshift loop, WORK iterations); hart 0 prints how many harts worked and
 * the mtime it took, then PASS.  With 1 hart the work is WORK, with 2 it is
 * 2 * WORK: on two host CPUs the time should stay about the same.
 * A load generator (TOOL_PROGS), not a check. */
#include "rt.h"

#define WORK 200000000UL

static volatile u64 started1, done1, go;
static volatile u64 result[2];

static u64 work(u64 seed)
{
    u64 x = seed;
    for (u64 i = 0; i < WORK; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

void secondary_main(u64 hartid)
{
    if (hartid != 1)
        return;
    started1 = 1;
    while (!go)
        ;
    result[1] = work(2);
    __asm__ volatile("fence rw, rw" ::: "memory");
    done1 = 1;
}

int main(void)
{
    mmio_w32(CLINT_MSIP(1), 1);     /* ignored without a hart 1 */
    u64 end = mtime() + TIMEBASE_HZ / 5;
    while (!started1 && mtime() < end)
        ;
    unsigned harts = started1 ? 2 : 1;
    u64 t0 = mtime();
    go = 1;
    result[0] = work(1);
    while (harts == 2 && !done1)
        ;
    u64 us = (mtime() - t0) / (TIMEBASE_HZ / 1000000);
    CHECK_NE(result[0], 0);
    if (harts == 2)
        CHECK_NE(result[1], result[0]);
    kprintf("parwork: %u harts, %lu M iterations each, %lu us\n", harts, WORK / 1000000, us);
    return 0;
}
