/* sstc: the Sstc extension.  stimecmp (CSR 0x14d) gated by menvcfg.STCE and
 * mcounteren.TM below M; mip.STIP = (time >= stimecmp) and read-only while
 * STCE is set; an S-mode timer interrupt through stimecmp alone (no M-mode
 * help); wfi in S woken by stimecmp promptly (the VMM sleeps until that
 * deadline, not until some fallback). */
#include "rt.h"

#define CSR_STIMECMP 0x14d
#define MENVCFG_STCE (1UL << 63)

static volatile int s_irqs;
static volatile u64 s_cause, s_epc, s_time;

/* S handler: record the timer interrupt and disarm it by moving stimecmp */
static int s_irq_hook(struct trap_frame *f)
{
    if (!(f->cause >> 63))
        return 0;
    s_irqs++;
    s_cause = f->cause;
    s_epc = f->epc;
    s_time = csr_read(time);
    csr_write(0x14d, ~0UL);
    return 1;
}

static u64 rd_stimecmp(u64 arg)
{
    (void)arg;
    return csr_read(0x14d);
}

static u64 wr_stimecmp(u64 v)
{
    csr_write(0x14d, v);
    return 0x600d;
}

/* One access from `mode`; returns 1 if it trapped as illegal into M. */
static int illegal_from(int mode, int write)
{
    trap_expect();
    run_lower(mode, write ? (void *)wr_stimecmp : (void *)rd_stimecmp, 0x1234, 0);
    int t = trap_rec.taken;
    if (t) {
        CHECK_EQ(trap_rec.cause, EXC_ILLEGAL);
        CHECK_EQ(trap_rec.level, 'M');
    }
    trap_disarm();
    return t;
}

static void test_access(void)
{
    /* M-mode: always there */
    csr_write(0x30a, 0);
    csr_write(0x14d, 0x1122334455667788UL);
    CHECK_EQ(csr_read(0x14d), 0x1122334455667788UL);
    csr_write(0x30a, MENVCFG_STCE);
    CHECK_EQ(csr_read(0x30a) & MENVCFG_STCE, MENVCFG_STCE);
    csr_write(0x30a, 0);
    CHECK_EQ(csr_read(0x30a) & MENVCFG_STCE, 0);

    /* S: needs STCE and mcounteren.TM */
    for (int stce = 0; stce < 2; stce++)
        for (int tm = 0; tm < 2; tm++) {
            csr_write(0x30a, stce ? MENVCFG_STCE : 0);
            csr_write(mcounteren, tm ? 2 : 0);
            int want = !(stce && tm);
            CHECK_EQ(illegal_from(PRV_S, 0), want);
            CHECK_EQ(illegal_from(PRV_S, 1), want);
            /* U: never (an S-level CSR) */
            csr_write(scounteren, 2);
            CHECK_EQ(illegal_from(PRV_U, 0), 1);
            CHECK_EQ(illegal_from(PRV_U, 1), 1);
            csr_write(scounteren, 0);
        }
    /* with both, S reads and writes it */
    csr_write(0x30a, MENVCFG_STCE);
    csr_write(mcounteren, 2);
    CHECK_EQ(run_lower(PRV_S, wr_stimecmp, 0xabcdef, 0), 0x600d);
    CHECK_EQ(csr_read(0x14d), 0xabcdef);
    csr_write(0x14d, 0x5555);
    CHECK_EQ(run_lower(PRV_S, rd_stimecmp, 0, 0), 0x5555);
    csr_write(0x14d, ~0UL);
    csr_write(mcounteren, 0);
    csr_write(0x30a, 0);
}

static void test_stip(void)
{
    csr_write(mie, 0);
    csr_clear(mip, MIP_STIP);
    csr_write(0x30a, MENVCFG_STCE);
    /* far future: not pending */
    csr_write(0x14d, ~0UL);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);
    /* software can't set it while STCE is on */
    csr_set(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);
    /* past: pending at once, and software can't clear it */
    csr_write(0x14d, 0);
    CHECK_EQ(csr_read(mip) & MIP_STIP, MIP_STIP);
    csr_clear(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, MIP_STIP);
    /* equal to time counts as reached */
    u64 t = csr_read(time);
    csr_write(0x14d, t);
    CHECK_EQ(csr_read(mip) & MIP_STIP, MIP_STIP);
    /* moving it forward clears it */
    csr_write(0x14d, csr_read(time) + TIMEBASE_HZ);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);
    /* becomes pending on its own when time passes stimecmp */
    u64 due = csr_read(time) + TIMEBASE_HZ / 1000;
    csr_write(0x14d, due);
    u64 end = mtime() + TIMEBASE_HZ;
    while (!(csr_read(mip) & MIP_STIP) && mtime() < end)
        ;
    CHECK_EQ(csr_read(mip) & MIP_STIP, MIP_STIP);
    CHECK_GE(csr_read(time), due);
    /* STCE off: STIP is software's again */
    csr_write(0x30a, 0);
    csr_clear(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);
    csr_set(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, MIP_STIP);
    csr_write(0x14d, ~0UL);     /* QEMU 7.2 lets stimecmp clear it anyway */
    CHECK((csr_read(mip) & MIP_STIP) || QEMU_QUIRK(1));
    csr_clear(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);
}

/* S-mode: arm stimecmp, enable SIE, wait for the interrupt */
static u64 s_timer_body(u64 ticks)
{
    u64 due = csr_read(time) + ticks;
    csr_write(0x14d, due);
    csr_set(sstatus, MSTATUS_SIE);
    u64 end = due + TIMEBASE_HZ;
    while (!s_irqs && csr_read(time) < end)
        ;
    csr_clear(sstatus, MSTATUS_SIE);
    return s_irqs && s_time >= due ? 0x600d : 0xbad;
}

/* S-mode: wfi with SIE = 0 until stimecmp; returns the wake-up latency in
 * ticks (time after wfi - stimecmp) */
static u64 s_wfi_body(u64 ticks)
{
    u64 due = csr_read(time) + ticks;
    csr_write(0x14d, due);
    u64 end = due + TIMEBASE_HZ;
    while (!(csr_read(sip) & MIP_STIP) && csr_read(time) < end)
        __asm__ volatile("wfi");
    u64 now = csr_read(time);
    int pending = (csr_read(sip) & MIP_STIP) != 0;
    csr_write(0x14d, ~0UL);
    return pending && now >= due ? now - due : ~0UL;
}

static void test_s_timer(void)
{
    s_hook = s_irq_hook;
    set_mtimecmp(0, ~0UL);
    csr_write(0x30a, MENVCFG_STCE);
    csr_write(mcounteren, 2);
    csr_write(mideleg, MIP_STIP);
    csr_write(mie, MIP_STIP);
    csr_write(0x14d, ~0UL);

    s_irqs = 0;
    CHECK_EQ(run_lower(PRV_S, s_timer_body, TIMEBASE_HZ / 500, 0), 0x600d);
    CHECK_EQ(s_irqs, 1);
    CHECK_EQ(s_cause, CAUSE_IRQ | IRQ_STI);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0); /* the handler moved stimecmp */

    /* wfi: 2 ms ahead, best of 5 wake-ups under 10 ms late (a VMM that
     * ignored the deadline would sleep its fallback 50 ms) */
    u64 best = ~0UL;
    for (int i = 0; i < 5; i++) {
        u64 late = run_lower(PRV_S, s_wfi_body, TIMEBASE_HZ / 500, 0);
        CHECK_NE(late, ~0UL);
        if (late < best)
            best = late;
    }
    kprintf("sstc: best wfi wake-up %lu us after stimecmp\n", best / (TIMEBASE_HZ / 1000000));
    CHECK_LT(best, TIMEBASE_HZ / 100);

    csr_write(mie, 0);
    csr_write(mideleg, 0);
    csr_write(mcounteren, 0);
    csr_write(0x30a, 0);
    s_hook = 0;
}

int main(void)
{
    test_access();
    test_stip();
    test_s_timer();
    return 0;
}
