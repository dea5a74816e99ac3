/* memtouch: writes one word in every 4 KiB page of RAM above the program's
 * first 2 MiB, up to the end of RAM (the first store that faults), so the
 * host has to back all of guest RAM; then PASS.  Not a check of the CPU:
 * tests/integration/test_cgroup.py uses it to push the VMM past a memory
 * limit (--memory-max). */
#include "rt.h"

#define PAGE 4096UL
#define START (RAM_BASE + (2UL << 20))

int main(void)
{
    u64 a = START, pages = 0;
    for (;; a += PAGE) {
        trap_expect_ret();
        st64(a, a);
        if (trap_rec.taken)
            break;
        if (++pages % 4096 == 0)        /* every 16 MiB */
            kprintf("memtouch: %lu MiB\n", (pages * PAGE) >> 20);
    }
    trap_disarm();
    CHECK_GT(pages, 0);
    /* read back a sample: the pages kept what was written */
    for (u64 p = START; p < a; p += 257 * PAGE)
        CHECK_EQ(ld64(p), p);
    kprintf("memtouch: touched %lu MiB above the first 2 MiB\n", (pages * PAGE) >> 20);
    return 0;
}
