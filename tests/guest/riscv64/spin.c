/* spin: a CPU-bound loop for SPIN_SECONDS of guest time (mtime), then PASS.
 * tests/integration/test_cgroup.py measures the VMM's CPU use under
 * --cpu-quota with it. */
#include "rt.h"

#define SPIN_SECONDS 30UL

int main(void)
{
    u64 end = mtime() + SPIN_SECONDS * TIMEBASE_HZ, n = 0;
    kprintf("spin: running for %lu s\n", SPIN_SECONDS);
    while (mtime() < end)
        n++;
    CHECK_GT(n, 0);
    return 0;
}
