/* litmus (needs 2 harts: qemu -smp 2, petrel --cpus 2): the two harts run
 * at the same time (Petrel: one host thread each) and check what the RISC-V
 * memory model promises between them.
 *
 * 1. IPIs both ways: IPI_ROUNDS round trips through the CLINT's msip, each
 *    side waiting in wfi (the other hart's store must wake it).
 * 2. AMO counter: each hart does amoadd.d +1 COUNT times: exactly 2*COUNT.
 * 3. LR/SC counter: each hart increments with an lr.d/sc.d retry loop
 *    COUNT times: exactly 2*COUNT.
 * 4. Message passing: hart 1 writes data then (fence w,w) flag; hart 0
 *    reads flag then (fence r,r) data, which must be at least as new.
 * 5. Store buffering with fences, in lock-step rounds (up to SB_ROUNDS or
 *    SB_TICKS, at least SB_MIN_ROUNDS): each hart stores to its variable,
 *    runs fence rw,rw, loads the other's; both loads reading 0 is forbidden.
 *    Without the fence that outcome is allowed (and x86 hosts produce it:
 *    an emulator must turn this fence into a host full fence); the count
 *    seen without the fence is printed, not checked.
 * Each phase starts when both harts reached it, and is bounded by mtime. */
#include "rt.h"

#define IPI_ROUNDS 2000
#define COUNT 1000000UL
#define MP_ROUNDS 200000UL
#define SB_ROUNDS 100000UL
#define SB_MIN_ROUNDS 20UL      /* a busy host may slow the lock-step rounds */
#define SB_D0(k) ((k) % 8)      /* hart 0's and hart 1's delays: vary the overlap */
#define SB_D1(k) ((k) / 8 % 8)
#define PHASE_SECONDS 10UL
#define SB_TICKS (TIMEBASE_HZ * 3 / 4) /* the fenced store-buffering run */
#define SB_PLAIN_TICKS (TIMEBASE_HZ / 4)  /* the run without fence (informative) */

static volatile u64 arrived[2];      /* phase each hart has reached */
static volatile u64 amo_counter, lrsc_counter;
static volatile u64 mp_data, mp_flag;
static volatile u64 sb_x, sb_y, sb_r1, sb_go, sb_done, sb_stop;
static volatile u64 ipi_seen1;

/* Both harts reached `phase` (fails after PHASE_SECONDS). */
static void rendezvous(unsigned hart, u64 phase)
{
    __asm__ volatile("fence rw, rw" ::: "memory");
    arrived[hart] = phase;
    u64 end = mtime() + PHASE_SECONDS * TIMEBASE_HZ;
    while (arrived[!hart] < phase)
        if (mtime() > end)
            fail("hart %u: hart %u did not reach phase %lu", hart, !hart, phase);
    __asm__ volatile("fence rw, rw" ::: "memory");
}

static void amo_inc(volatile u64 *p)
{
    __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(p), "r"(1UL) : "memory");
}


/* Wait in wfi for this hart's msip (mie.MSIE set, mstatus.MIE clear: no
 * trap), then clear it.  Returns 0 on timeout. */
static int wait_ipi(unsigned hart, u64 end)
{
    while (!(csr_read(mip) & MIP_MSIP)) {
        if (mtime() > end)
            return 0;
        __asm__ volatile("wfi");
    }
    mmio_w32(CLINT_MSIP(hart), 0);
    return 1;
}

/* Store buffering, one round on this hart: store mine, (fence), load the
 * other's.  Returns what it loaded. */
static u64 sb_fenced(volatile u64 *mine, volatile u64 *other)
{
    u64 r;
    __asm__ volatile("sd %2, 0(%1)\n\t"
                     "fence rw, rw\n\t"
                     "ld %0, 0(%3)"
                     : "=&r"(r) : "r"(mine), "r"(1UL), "r"(other) : "memory");
    return r;
}

static u64 sb_plain(volatile u64 *mine, volatile u64 *other)
{
    u64 r;
    __asm__ volatile("sd %2, 0(%1)\n\t"
                     "ld %0, 0(%3)"
                     : "=&r"(r) : "r"(mine), "r"(1UL), "r"(other) : "memory");
    return r;
}

static void spin(u64 n)
{
    for (u64 i = 0; i < n; i++)
        barrier();
}

/* Hart 1's side of a store-buffering run: rounds until sb_stop. */
static void sb_hart1(int fenced)
{
    for (u64 k = 1;; k++) {
        while (sb_go < k && !sb_stop)
            ;
        if (sb_stop)
            return;
        spin(SB_D1(k));
        sb_r1 = fenced ? sb_fenced(&sb_y, &sb_x) : sb_plain(&sb_y, &sb_x);
        __asm__ volatile("fence rw, rw" ::: "memory");
        sb_done = k;
    }
}

/* Hart 0's side: returns the number of rounds with both loads 0, and the
 * rounds run in *rounds. */
static u64 sb_hart0(int fenced, u64 *rounds)
{
    u64 both0 = 0, end = mtime() + (fenced ? SB_TICKS : SB_PLAIN_TICKS), k;
    for (k = 1; k <= SB_ROUNDS && mtime() < end; k++) {
        sb_x = 0;
        sb_y = 0;
        __asm__ volatile("fence rw, rw" ::: "memory");
        sb_go = k;
        spin(SB_D0(k));
        u64 r0 = fenced ? sb_fenced(&sb_x, &sb_y) : sb_plain(&sb_x, &sb_y);
        u64 wait_end = mtime() + PHASE_SECONDS * TIMEBASE_HZ;
        while (sb_done < k)
            if (mtime() > wait_end)
                fail("store buffering: hart 1 did not finish round %lu", k);
        __asm__ volatile("fence rw, rw" ::: "memory");
        both0 += r0 == 0 && sb_r1 == 0;
    }
    *rounds = k - 1;
    sb_stop = 1;
    return both0;
}

void secondary_main(u64 hartid)
{
    if (hartid != 1)
        return;
    /* 1: IPIs.  Wait for hart 0's, answer with one. */
    csr_write(mie, MIP_MSIP);
    rendezvous(1, 1);
    u64 end = mtime() + PHASE_SECONDS * TIMEBASE_HZ;
    for (int i = 0; i < IPI_ROUNDS; i++) {
        if (!wait_ipi(1, end))
            fail("hart 1: no IPI from hart 0 in round %d", i);
        ipi_seen1 = i + 1;
        mmio_w32(CLINT_MSIP(0), 1);
    }
    csr_write(mie, 0);
    /* 2, 3: counters */
    rendezvous(1, 2);
    for (u64 i = 0; i < COUNT; i++)
        amo_inc(&amo_counter);
    rendezvous(1, 3);
    for (u64 i = 0; i < COUNT; i++)
        lrsc_inc(&lrsc_counter);
    /* 4: message passing, the writer */
    rendezvous(1, 4);
    for (u64 i = 1; i <= MP_ROUNDS; i++) {
        mp_data = i;
        __asm__ volatile("fence w, w" ::: "memory");
        mp_flag = i;
    }
    /* 5: store buffering, with then without the fence */
    rendezvous(1, 5);
    sb_hart1(1);
    rendezvous(1, 6);
    rendezvous(1, 7);       /* hart 0 resets the round counters in between */
    sb_hart1(0);
    rendezvous(1, 8);
}

int main(void)
{
    CHECK_EQ(csr_read(mhartid), 0);
    /* start hart 1 (parked in wfi in start.S) */
    mmio_w32(CLINT_MSIP(1), 1);

    /* 1: IPIs both ways */
    csr_write(mie, MIP_MSIP);
    rendezvous(0, 1);
    u64 t0 = mtime(), end = t0 + PHASE_SECONDS * TIMEBASE_HZ;
    for (int i = 0; i < IPI_ROUNDS; i++) {
        mmio_w32(CLINT_MSIP(1), 1);
        if (!wait_ipi(0, end))
            fail("hart 0: no IPI back from hart 1 in round %d (hart 1 saw %lu)", i, ipi_seen1);
    }
    csr_write(mie, 0);
    CHECK_EQ(ipi_seen1, IPI_ROUNDS);
    CHECK_EQ(mmio_r32(CLINT_MSIP(0)), 0);
    CHECK_EQ(csr_read(mip) & MIP_MSIP, 0);
    kprintf("litmus: %d IPI round trips in %lu us\n", IPI_ROUNDS,
            (mtime() - t0) / (TIMEBASE_HZ / 1000000));

    /* 2: AMO counter */
    rendezvous(0, 2);
    for (u64 i = 0; i < COUNT; i++)
        amo_inc(&amo_counter);
    rendezvous(0, 3);
    CHECK_EQ(amo_counter, 2 * COUNT);

    /* 3: LR/SC counter */
    for (u64 i = 0; i < COUNT; i++)
        lrsc_inc(&lrsc_counter);
    rendezvous(0, 4);
    CHECK_EQ(lrsc_counter, 2 * COUNT);

    /* 4: message passing, the reader */
    u64 seen = 0, bad = 0, last = 0;
    end = mtime() + PHASE_SECONDS * TIMEBASE_HZ;
    while (last < MP_ROUNDS) {
        u64 f = mp_flag;
        __asm__ volatile("fence r, r" ::: "memory");
        u64 d = mp_data;
        if (d < f)
            bad++;
        if (f != last) {
            seen++;
            last = f;
        }
        if (mtime() > end)
            fail("message passing: flag stuck at %lu", last);
    }
    CHECK_EQ(bad, 0);
    CHECK_GT(seen, 0);

    /* 5: store buffering */
    rendezvous(0, 5);
    u64 rounds;
    t0 = mtime();
    u64 both0 = sb_hart0(1, &rounds);
    kprintf("litmus: store buffering with fence rw,rw: %lu rounds in %lu ms, both loads 0 "
            "in %lu\n", rounds, (mtime() - t0) / (TIMEBASE_HZ / 1000), both0);
    CHECK_EQ(both0, 0);
    CHECK_GE(rounds, SB_MIN_ROUNDS);
    rendezvous(0, 6);       /* hart 1 left its rounds */
    sb_go = 0;
    sb_done = 0;
    sb_stop = 0;
    rendezvous(0, 7);
    both0 = sb_hart0(0, &rounds);
    kprintf("litmus: store buffering without fence: %lu rounds, both loads 0 in %lu "
            "(allowed)\n", rounds, both0);
    rendezvous(0, 8);
    return 0;
}
