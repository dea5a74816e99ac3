/* smp (needs 2 harts: qemu -smp 2, petrel --cpus 2): hart 0 wakes hart 1
 * with an IPI (msip), both hammer shared counters with AMOs and an LR/SC
 * lock, hart 1 wakes hart 0 back with an IPI. */
#include "rt.h"

#define ITERS 20000

static volatile u64 hart1_arg = ~0UL, hart1_mhartid = ~0UL, hart1_mip = 0;
static volatile u64 hart1_state; /* 1 = started, 2 = done */
static volatile u64 go;
static volatile u64 amo_counter;
static volatile u32 amo_counter_w;
static volatile u64 lock;
static volatile u64 locked_counter;
static volatile u64 lrsc_counter;
static volatile u64 mixed[2];

static void spin_lock(volatile u64 *l)
{
    u64 tmp;
    do {
        __asm__ volatile("amoswap.d.aq %0, %2, (%1)" : "=r"(tmp) : "r"(l), "r"(1UL) : "memory");
    } while (tmp);
}

static void spin_unlock(volatile u64 *l)
{
    __asm__ volatile("amoswap.d.rl zero, zero, (%0)" : : "r"(l) : "memory");
}


static void work(unsigned hart)
{
    for (int i = 0; i < ITERS; i++) {
        __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(&amo_counter), "r"(1UL) : "memory");
        __asm__ volatile("amoadd.w zero, %1, (%0)" : : "r"(&amo_counter_w), "r"(1UL) : "memory");
        lrsc_inc(&lrsc_counter);
        spin_lock(&lock);
        locked_counter = locked_counter + 1; /* plain load/store inside the lock */
        spin_unlock(&lock);
        /* each hart owns one word of a shared doubleword */
        mixed[hart] = mixed[hart] + 1;
    }
}

void secondary_main(u64 hartid)
{
    hart1_arg = hartid;
    hart1_mhartid = csr_read(mhartid);
    hart1_mip = csr_read(mip);
    __asm__ volatile("fence rw, rw" ::: "memory");
    hart1_state = 1;
    while (!go)
        ;
    work(1);
    __asm__ volatile("fence rw, rw" ::: "memory");
    hart1_state = 2;
    /* wake hart 0 */
    mmio_w32(CLINT_MSIP(0), 1);
    for (;;)
        __asm__ volatile("wfi");
}

int main(void)
{
    CHECK_EQ(csr_read(mhartid), 0);
    CHECK_EQ(hart1_state, 0);
    /* wake hart 1 (parked in wfi in start.S) */
    mmio_w32(CLINT_MSIP(1), 1);
    u64 end = mtime() + 2 * TIMEBASE_HZ;
    while (hart1_state != 1 && mtime() < end)
        ;
    if (hart1_state != 1)
        fail("hart 1 did not start (run with 2 harts: qemu -smp 2 / petrel --cpus 2)");
    checks_passed++;
    CHECK_EQ(hart1_arg, 1);
    CHECK_EQ(hart1_mhartid, 1);
    CHECK_EQ(mmio_r32(CLINT_MSIP(1)), 0); /* hart 1 cleared its msip */
    CHECK_EQ(hart1_mip & MIP_MSIP, 0);
    /* hart 1's msip doesn't show in hart 0's mip */
    CHECK_EQ(csr_read(mip) & MIP_MSIP, 0);

    go = 1;
    work(0);
    end = mtime() + 10 * TIMEBASE_HZ;
    while (hart1_state != 2 && mtime() < end)
        ;
    if (hart1_state != 2)
        fail("hart 1 did not finish");
    checks_passed++;
    __asm__ volatile("fence rw, rw" ::: "memory");
    CHECK_EQ(amo_counter, 2 * ITERS);
    CHECK_EQ(amo_counter_w, 2 * ITERS);
    CHECK_EQ(lrsc_counter, 2 * ITERS);
    CHECK_EQ(locked_counter, 2 * ITERS);
    CHECK_EQ(mixed[0], ITERS);
    CHECK_EQ(mixed[1], ITERS);
    CHECK_EQ(lock, 0);

    /* hart 1 sent us an IPI: it is pending (or arrives shortly) and wakes wfi */
    csr_write(mie, MIP_MSIP);
    end = mtime() + 2 * TIMEBASE_HZ;
    while (!(csr_read(mip) & MIP_MSIP) && mtime() < end)
        __asm__ volatile("wfi");
    CHECK(csr_read(mip) & MIP_MSIP);
    CHECK_EQ(mmio_r32(CLINT_MSIP(0)), 1);
    mmio_w32(CLINT_MSIP(0), 0);
    CHECK_EQ(csr_read(mip) & MIP_MSIP, 0);
    csr_write(mie, 0);

    /* per-hart mtimecmp: hart 1's comparator doesn't raise hart 0's MTIP */
    set_mtimecmp(0, ~0UL);
    set_mtimecmp(1, 0);
    for (volatile int i = 0; i < 1000; i++)
        ;
    CHECK_EQ(csr_read(mip) & MIP_MTIP, 0);
    set_mtimecmp(1, ~0UL);
    return 0;
}
