/* cpumark: the CoreMark-like workload of cpumark_work.h as a bare-metal
 * benchmark (bench/mips.py).  Not a test of the CPU (not in check-*), but it
 * fails (FAIL line, test device 0x3333) if the checksum or a self-check is
 * wrong.
 *
 * cpumark.elf runs it on hart 0; cpumark2.elf (built from this file with
 * -DCM_HARTS=2, needs qemu -smp 2 / petrel --cpus 2) runs one copy per hart
 * at once, each on its own state.  The timed region is measured with the
 * CLINT's mtime (10 MHz) and each hart's minstret, and printed as
 *   cpumark: harts H iterations N instret I ticks T
 * (I summed over the harts; under QEMU without -icount, minstret counts host
 * ticks, not instructions, so bench/mips.py takes the count from Petrel).
 */
#include "rt.h"
#include "cpumark_work.h"

#ifndef CM_HARTS
#define CM_HARTS 1
#endif

/* Each hart's state on pages of its own: no page shared with code (QEMU's
 * TCG would take every store there as self-modifying code and retranslate)
 * and no cache line shared between the harts. */
struct hart_state {
    struct cm_state s;
} __attribute__((aligned(4096)));
static struct hart_state states[CM_HARTS];
static volatile u64 started[CM_HARTS], done[CM_HARTS], instret[CM_HARTS], crc[CM_HARTS];
static volatile u64 go;

static void work(unsigned hart)
{
    u64 i0 = csr_read(minstret);
    crc[hart] = cm_run(&states[hart].s, CM_SEED, CM_ITERS);
    instret[hart] = csr_read(minstret) - i0;
}

void secondary_main(u64 hartid)
{
    if (hartid >= CM_HARTS)
        return;
    started[hartid] = 1;
    while (!go)
        ;
    work((unsigned)hartid);
    __asm__ volatile("fence rw, rw" ::: "memory");
    done[hartid] = 1;
    mmio_w32(CLINT_MSIP(0), 1); /* wake hart 0 from its wfi */
}

int main(void)
{
    kprintf("cpumark: %u harts x %u iterations\n", CM_HARTS, CM_ITERS);
    for (unsigned h = 1; h < CM_HARTS; h++) {
        mmio_w32(CLINT_MSIP(h), 1); /* wake hart h (parked in start.S) */
        u64 end = mtime() + 2 * TIMEBASE_HZ;
        while (!started[h] && mtime() < end)
            ;
        if (!started[h])
            fail("hart %u did not start (run with %u harts: qemu -smp / petrel --cpus)", h,
                 CM_HARTS);
    }
    csr_write(mie, MIP_MSIP); /* wfi wakes on msip; mstatus.MIE stays 0 */
    u64 t0 = mtime();
    go = 1;
    work(0);
    for (unsigned h = 1; h < CM_HARTS; h++) {
        while (!done[h]) {
            __asm__ volatile("wfi");
            mmio_w32(CLINT_MSIP(0), 0);
        }
    }
    u64 t1 = mtime();
    csr_write(mie, 0);
    __asm__ volatile("fence rw, rw" ::: "memory");

    u64 total = 0;
    for (unsigned h = 0; h < CM_HARTS; h++) {
        kprintf("cpumark: hart %u checksum 0x%04lx errors %u instret %lu\n", h, crc[h],
                states[h].s.errors, instret[h]);
        total += instret[h];
    }
    kprintf("cpumark: harts %u iterations %u instret %lu ticks %lu\n", CM_HARTS, CM_ITERS, total,
            t1 - t0);
    for (unsigned h = 0; h < CM_HARTS; h++) {
        CHECK_EQ(states[h].s.errors, 0);
        CHECK_EQ(crc[h], CM_EXPECTED);
    }
    return 0;
}
