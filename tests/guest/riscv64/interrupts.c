/* interrupts: CLINT timer/software interrupts, wfi, masking, priorities,
 * vectored mtvec, delegated S-mode interrupts and the UART via the PLIC. */
#include "rt.h"

extern char irq_after_enable[], wfi_after[], vec_table[];
void irq_enable_window(void);
void wfi_wait(volatile int *cnt, int old);
extern volatile u64 vec_hits[16];

#define CLEAR_STIP_MAGIC 0x53544950UL /* a7 of an S-mode ecall asking M to clear mip.STIP */
#define UART_IER (UART_BASE + 1)
#define UART_IIR (UART_BASE + 2)
#define UART_LSR (UART_BASE + 5)

/* what the M handler saw */
static volatile int m_irqs;
static volatile u64 m_log[16];
static volatile u64 m_epc, m_mip, m_status, m_time;
static volatile u32 m_claim, m_iir;
static volatile int stip_on_mti;
/* what the S handler saw */
static volatile int s_irqs;
static volatile u64 s_log[16];
static volatile u64 s_epc, s_sip, s_sip_after, s_status, s_scause;
static volatile u32 s_claim, s_iir;

static int m_irq_hook(struct trap_frame *f)
{
    if (f->cause == EXC_ECALL_S && f->x[17] == CLEAR_STIP_MAGIC) {
        csr_clear(mip, MIP_STIP);
        f->epc += 4;
        return 1;
    }
    if (!(f->cause >> 63))
        return 0;
    int n = m_irqs;
    if (n < 16)
        m_log[n] = f->cause;
    m_epc = f->epc;
    m_mip = csr_read(mip);
    m_status = f->status;
    switch (f->cause & 63) {
    case IRQ_MTI:
        m_time = mtime();
        set_mtimecmp(0, ~0UL);
        if (stip_on_mti)
            csr_set(mip, MIP_STIP);
        break;
    case IRQ_MSI:
        mmio_w32(CLINT_MSIP(0), 0);
        break;
    case IRQ_MEI: {
        u32 c = mmio_r32(PLIC_CLAIM(0));
        m_claim = c;
        if (c == UART_IRQ) {
            m_iir = mmio_r8(UART_IIR);
            mmio_w8(UART_IER, 0);
        }
        if (c)
            mmio_w32(PLIC_CLAIM(0), c);
        break;
    }
    default:
        return 0;
    }
    m_irqs = n + 1;
    return 1;
}

static int s_irq_hook(struct trap_frame *f)
{
    if (!(f->cause >> 63))
        return 0;
    int n = s_irqs;
    if (n < 16)
        s_log[n] = f->cause;
    s_epc = f->epc;
    s_sip = csr_read(sip);
    s_status = f->status;
    s_scause = csr_read(scause);
    switch (f->cause & 63) {
    case IRQ_STI: {
        register u64 a7 __asm__("a7") = CLEAR_STIP_MAGIC;
        __asm__ volatile("ecall" : : "r"(a7) : "memory");
        s_sip_after = csr_read(sip);
        break;
    }
    case IRQ_SSI:
        csr_clear(sip, MIP_SSIP);
        s_sip_after = csr_read(sip);
        break;
    case IRQ_SEI: {
        u32 c = mmio_r32(PLIC_CLAIM(1));
        s_claim = c;
        if (c == UART_IRQ) {
            s_iir = mmio_r8(UART_IIR);
            mmio_w8(UART_IER, 0);
        }
        if (c)
            mmio_w32(PLIC_CLAIM(1), c);
        s_sip_after = csr_read(sip);
        break;
    }
    default:
        return 0;
    }
    s_irqs = n + 1;
    return 1;
}

static void reset_state(void)
{
    csr_clear(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    csr_write(mie, 0);
    set_mtimecmp(0, ~0UL);
    mmio_w32(CLINT_MSIP(0), 0);
    csr_clear(mip, MIP_SSIP | MIP_STIP | MIP_SEIP);
    stip_on_mti = 0;
    m_irqs = 0;
    s_irqs = 0;
    for (int i = 0; i < 16; i++)
        m_log[i] = s_log[i] = 0;
}

/* spin until *cnt >= target or `ticks` of mtime pass; returns *cnt */
static int wait_count(volatile int *cnt, int target, u64 ticks)
{
    u64 end = mtime() + ticks;
    while (*cnt < target && mtime() < end)
        ;
    return *cnt;
}

static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

/* ------------------------------------------------------------------ timer */
static void test_timer(void)
{
    reset_state();
    CHECK_EQ(csr_read(mip) & MIP_MTIP, 0);
    u64 t0 = mtime();
    spin(1000);
    CHECK_GT(mtime(), t0);

    u64 cmp = mtime() + TIMEBASE_HZ / 20; /* 50 ms: long enough to see it not pending yet */
    set_mtimecmp(0, cmp);
    CHECK_EQ(mmio_r64(CLINT_MTIMECMP(0)), cmp);
    CHECK_EQ(csr_read(mip) & MIP_MTIP, 0); /* not yet */
    csr_write(mie, MIP_MTIP);
    CHECK_EQ(csr_read(mie), MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    wait_count(&m_irqs, 1, TIMEBASE_HZ);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MTI);
    CHECK_EQ(csr_read(mcause), CAUSE_IRQ | IRQ_MTI);
    CHECK_GE(m_time, cmp);
    CHECK(m_mip & MIP_MTIP);
    CHECK_EQ(m_status & MSTATUS_MPIE, MSTATUS_MPIE);
    CHECK_EQ((m_status >> 11) & 3, PRV_M);
    CHECK_EQ(csr_read(mip) & MIP_MTIP, 0); /* cleared by raising mtimecmp */
    CHECK_EQ(csr_read(mtval), 0);
}

/* ------------------------------------------------------------------ masking */
/* how long the lower-mode wait bodies wait: long when an interrupt is
 * expected, short when checking that none arrives */
static volatile u64 wait_ticks = TIMEBASE_HZ;

static u64 s_wait_body(u64 target)
{
    /* S-mode, sstatus.SIE = 0: M-mode interrupts are still taken here */
    wait_count(&m_irqs, (int)target, wait_ticks);
    return m_irqs;
}

static void test_masking(void)
{
    reset_state();
    set_mtimecmp(0, 0); /* pending right away */
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while (!(csr_read(mip) & MIP_MTIP) && mtime() < end)
        ;
    CHECK(csr_read(mip) & MIP_MTIP);
    /* enabled in mie but mstatus.MIE = 0: not taken */
    csr_write(mie, MIP_MTIP);
    spin(20000);
    CHECK_EQ(m_irqs, 0);
    /* mstatus.MIE = 1 but not enabled in mie: not taken */
    csr_write(mie, 0);
    csr_set(mstatus, MSTATUS_MIE);
    spin(20000);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(m_irqs, 0);
    /* both: taken right after the csrsi that sets MIE */
    csr_write(mie, MIP_MTIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MTI);
    CHECK_EQ(m_epc, (u64)irq_after_enable);
    CHECK_EQ(csr_read(mepc), (u64)irq_after_enable);
    CHECK_EQ(csr_read(mstatus) & MSTATUS_MIE, 0);

    /* in S-mode, M interrupts are enabled regardless of mstatus.MIE */
    set_mtimecmp(0, mtime() + TIMEBASE_HZ / 1000);
    CHECK_EQ(run_lower(PRV_S, s_wait_body, 2, 0), 2);
    CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MTI);
    CHECK_EQ((m_status >> 11) & 3, PRV_S);
    CHECK_EQ(m_status & MSTATUS_MPIE, 0);
    /* ... and in U-mode */
    set_mtimecmp(0, mtime() + TIMEBASE_HZ / 1000);
    CHECK_EQ(run_lower(PRV_U, s_wait_body, 3, 0), 3);
    CHECK_EQ(m_log[2], CAUSE_IRQ | IRQ_MTI);
    CHECK_EQ((m_status >> 11) & 3, PRV_U);
    /* ... unless disabled in mie */
    csr_write(mie, 0);
    set_mtimecmp(0, 0);
    wait_ticks = TIMEBASE_HZ / 20;
    CHECK_EQ(run_lower(PRV_S, s_wait_body, 4, 0), 3);
    wait_ticks = TIMEBASE_HZ;
    set_mtimecmp(0, ~0UL);
}

/* ------------------------------------------------------------------ wfi */
static void test_wfi(void)
{
    reset_state();
    /* mstatus.MIE = 0: wfi still wakes up on a pending enabled interrupt */
    csr_write(mie, MIP_MTIP);
    u64 cmp = mtime() + TIMEBASE_HZ / 20;
    set_mtimecmp(0, cmp);
    u64 end = mtime() + TIMEBASE_HZ;
    int wakeups = 0;
    while (!(csr_read(mip) & MIP_MTIP) && mtime() < end) {
        __asm__ volatile("wfi");
        wakeups++;
    }
    u64 now = mtime();
    CHECK(csr_read(mip) & MIP_MTIP);
    CHECK_GE(now, cmp);
    CHECK_GE(wakeups, 1);
    CHECK_EQ(m_irqs, 0);
    irq_enable_window();
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_epc, (u64)irq_after_enable);

    /* mstatus.MIE = 1: the interrupt is taken with mepc after the wfi */
    cmp = mtime() + TIMEBASE_HZ / 20;
    set_mtimecmp(0, cmp);
    csr_set(mstatus, MSTATUS_MIE);
    wfi_wait(&m_irqs, 1);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(m_irqs, 2);
    CHECK_EQ(m_epc, (u64)wfi_after);
    CHECK_GE(m_time, cmp);
    CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MTI);
}

/* ------------------------------------------------------------------ msip */
static void test_msip(void)
{
    reset_state();
    CHECK_EQ(mmio_r32(CLINT_MSIP(0)), 0);
    CHECK_EQ(csr_read(mip) & MIP_MSIP, 0);
    mmio_w32(CLINT_MSIP(0), 1);
    CHECK_EQ(mmio_r32(CLINT_MSIP(0)), 1);
    CHECK(csr_read(mip) & MIP_MSIP);
    /* msip is not writable through the mip CSR */
    csr_clear(mip, MIP_MSIP);
    CHECK(csr_read(mip) & MIP_MSIP);
    spin(1000);
    CHECK_EQ(m_irqs, 0);
    csr_write(mie, MIP_MSIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MSI);
    CHECK_EQ(m_epc, (u64)irq_after_enable);
    CHECK(m_mip & MIP_MSIP);
    CHECK_EQ(csr_read(mip) & MIP_MSIP, 0);
    CHECK_EQ(mmio_r32(CLINT_MSIP(0)), 0);

    /* wfi (MIE = 0) returns at once when an enabled interrupt is pending */
    mmio_w32(CLINT_MSIP(0), 1);
    __asm__ volatile("wfi");
    CHECK(csr_read(mip) & MIP_MSIP);
    CHECK_EQ(m_irqs, 1);
    irq_enable_window();
    CHECK_EQ(m_irqs, 2);
    CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MSI);
}

/* ------------------------------------------------------------------ priority */
static void test_priority(void)
{
    reset_state();
    /* MSI and MTI pending together: MSI first (MEI > MSI > MTI > SEI > SSI > STI) */
    mmio_w32(CLINT_MSIP(0), 1);
    set_mtimecmp(0, 0);
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while ((csr_read(mip) & (MIP_MTIP | MIP_MSIP)) != (MIP_MTIP | MIP_MSIP) && mtime() < end)
        ;
    csr_write(mie, MIP_MTIP | MIP_MSIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 2);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MSI);
    CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MTI);
}

/* ------------------------------------------------------------------ vectored */
static void test_vectored(void)
{
    reset_state();
    u64 old = csr_read(mtvec);
    for (int i = 0; i < 16; i++)
        vec_hits[i] = 0;
    csr_write(mtvec, (u64)vec_table | 1);
    CHECK_EQ(csr_read(mtvec), (u64)vec_table | 1);
    set_mtimecmp(0, 0);
    csr_write(mie, MIP_MTIP);
    spin(100);
    irq_enable_window();
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(vec_hits[IRQ_MTI], 1);
    mmio_w32(CLINT_MSIP(0), 1);
    csr_write(mie, MIP_MSIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 2);
    CHECK_EQ(vec_hits[IRQ_MSI], 1);
    CHECK_EQ(vec_hits[IRQ_MTI], 1);
    /* exceptions use the base address */
    trap_expect();
    __asm__ volatile(".option push\n.option norvc\nebreak\n.option pop" ::: "memory");
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_BREAKPOINT);
    u64 sum = 0;
    for (int i = 0; i < 16; i++)
        sum += vec_hits[i];
    CHECK_EQ(sum, 2);
    csr_write(mtvec, old);
}

/* ------------------------------------------------------------------ S-mode interrupts */
static u64 s_timer_body(u64 arg)
{
    (void)arg;
    csr_set(sie, MIP_STIP);
    CHECK_EQ(csr_read(sie) & MIP_STIP, MIP_STIP);
    CHECK_EQ(csr_read(sie) & MIP_MTIP, 0); /* M bits are invisible in sie */
    csr_set(sstatus, MSTATUS_SIE);
    u64 end = csr_read(time) + TIMEBASE_HZ;
    while (s_irqs < 1 && csr_read(time) < end)
        ;
    csr_clear(sstatus, MSTATUS_SIE);
    CHECK_EQ(s_irqs, 1);
    CHECK_EQ(s_log[0], CAUSE_IRQ | IRQ_STI);
    CHECK_EQ(s_scause, CAUSE_IRQ | IRQ_STI);
    CHECK_EQ(csr_read(scause), CAUSE_IRQ | IRQ_STI);
    CHECK(s_sip & MIP_STIP);
    CHECK_EQ(s_sip_after & MIP_STIP, 0);
    CHECK_EQ(csr_read(sip) & MIP_STIP, 0);
    CHECK_EQ(s_status & MSTATUS_SPP, MSTATUS_SPP);
    CHECK_EQ(s_status & MSTATUS_SPIE, MSTATUS_SPIE);
    /* sip.STIP is read-only in S */
    csr_set(sip, MIP_STIP);
    CHECK_EQ(csr_read(sip) & MIP_STIP, 0);
    return 0x600d;
}

static u64 s_ssi_body(u64 arg)
{
    (void)arg;
    csr_set(sie, MIP_SSIP);
    /* SIE = 0: pending but not taken */
    csr_set(sip, MIP_SSIP);
    CHECK(csr_read(sip) & MIP_SSIP);
    spin(10000);
    CHECK_EQ(s_irqs, 0);
    /* taken as soon as SIE is set */
    csr_set(sstatus, MSTATUS_SIE);
    __asm__ volatile("nop");
    csr_clear(sstatus, MSTATUS_SIE);
    CHECK_EQ(s_irqs, 1);
    CHECK_EQ(s_log[0], CAUSE_IRQ | IRQ_SSI);
    CHECK_EQ(s_sip_after & MIP_SSIP, 0);
    CHECK_EQ(csr_read(sip) & MIP_SSIP, 0);
    return 0x600d;
}

static u64 u_wait_body(u64 target)
{
    wait_count(&s_irqs, (int)target, wait_ticks);
    return s_irqs;
}

static void test_s_interrupts(void)
{
    reset_state();
    s_hook = s_irq_hook;
    u64 deleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
    csr_write(mideleg, deleg);
    CHECK_EQ(csr_read(mideleg) & deleg, deleg);
    csr_write(mcounteren, 2); /* S may read time */

    /* supervisor timer: M's timer handler raises mip.STIP, S takes cause 5 */
    stip_on_mti = 1;
    csr_write(mie, MIP_MTIP | MIP_STIP);
    set_mtimecmp(0, mtime() + TIMEBASE_HZ / 500);
    CHECK_EQ(run_lower(PRV_S, s_timer_body, 0, 0), 0x600d);
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MTI);
    CHECK_EQ((m_status >> 11) & 3, PRV_S);
    stip_on_mti = 0;

    /* a delegated interrupt pending in M-mode never traps to M */
    csr_set(mip, MIP_STIP);
    CHECK(csr_read(mip) & MIP_STIP);
    CHECK(csr_read(sip) & MIP_STIP);
    csr_set(mstatus, MSTATUS_MIE);
    spin(10000);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(s_irqs, 1);
    csr_clear(mip, MIP_STIP);
    CHECK_EQ(csr_read(mip) & MIP_STIP, 0);

    /* supervisor software interrupt raised by S itself */
    reset_state();
    csr_write(mie, 0);
    CHECK_EQ(run_lower(PRV_S, s_ssi_body, 0, 0), 0x600d);

    /* in U-mode, S interrupts are taken even with sstatus.SIE = 0 */
    reset_state();
    csr_write(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    CHECK_EQ(run_lower(PRV_U, u_wait_body, 1, 0), 1);
    CHECK_EQ(s_log[0], CAUSE_IRQ | IRQ_SSI);
    CHECK_EQ(s_status & MSTATUS_SPP, 0);
    CHECK_EQ(s_status & MSTATUS_SPIE, 0);
    CHECK_EQ(csr_read(mip) & MIP_SSIP, 0);

    /* but not in S-mode with SIE = 0 */
    reset_state();
    csr_write(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    wait_ticks = TIMEBASE_HZ / 20;
    CHECK_EQ(run_lower(PRV_S, u_wait_body, 1, 0), 0);
    wait_ticks = TIMEBASE_HZ;
    csr_clear(mip, MIP_SSIP);

    csr_write(mideleg, 0);
    csr_write(mcounteren, 0);
    s_hook = 0;
    reset_state();
}

/* ------------------------------------------------------------------ PLIC + UART */
static void uart_drain(void)
{
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while (!(mmio_r8(UART_LSR) & 0x40) && mtime() < end)
        ;
}

static int plic_pending(unsigned irq)
{
    return (mmio_r32(PLIC_PENDING(irq)) >> (irq % 32)) & 1;
}

static void test_plic_uart_m(void)
{
    reset_state();
    uart_drain();
    mmio_w8(UART_IER, 0);
    mmio_w32(PLIC_PRIORITY(UART_IRQ), 1);
    CHECK_EQ(mmio_r32(PLIC_PRIORITY(UART_IRQ)), 1);
    mmio_w32(PLIC_ENABLE(0, UART_IRQ), 1u << UART_IRQ);
    CHECK_EQ(mmio_r32(PLIC_ENABLE(0, UART_IRQ)) & (1u << UART_IRQ), 1u << UART_IRQ);
    mmio_w32(PLIC_ENABLE(1, UART_IRQ), 0);
    mmio_w32(PLIC_THRESHOLD(0), 0);
    mmio_w32(PLIC_THRESHOLD(1), 0);
    CHECK_EQ(mmio_r32(PLIC_THRESHOLD(0)), 0);
    CHECK_EQ(plic_pending(UART_IRQ), 0);
    CHECK_EQ(csr_read(mip) & MIP_MEIP, 0);
    CHECK_EQ(mmio_r32(PLIC_CLAIM(0)), 0); /* nothing to claim */

    /* THR-empty interrupt: the transmitter is idle, so it asserts at once */
    mmio_w8(UART_IER, 0x02);
    int pend = plic_pending(UART_IRQ);
    u64 mip1 = csr_read(mip);
    /* priority must exceed the threshold */
    mmio_w32(PLIC_THRESHOLD(0), 1);
    u64 mip2 = csr_read(mip);
    mmio_w32(PLIC_THRESHOLD(0), 0);
    u64 mip3 = csr_read(mip);
    CHECK_EQ(pend, 1);
    CHECK(mip1 & MIP_MEIP);
    CHECK_EQ(mip2 & MIP_MEIP, 0);
    CHECK(mip3 & MIP_MEIP);
    CHECK_EQ(m_irqs, 0);

    csr_write(mie, MIP_MEIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 1);
    CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MEI);
    CHECK_EQ(m_epc, (u64)irq_after_enable);
    CHECK_EQ(m_claim, UART_IRQ);
    CHECK_EQ(m_iir & 0x0f, 0x02); /* THR empty */
    CHECK(m_mip & MIP_MEIP);
    CHECK_EQ(csr_read(mip) & MIP_MEIP, 0);
    CHECK_EQ(plic_pending(UART_IRQ), 0);
    CHECK_EQ(mmio_r32(PLIC_CLAIM(0)), 0);
    CHECK_EQ(mmio_r8(UART_IIR) & 0x0f, 0x01); /* no interrupt pending */

    /* MEI before MSI before MTI when all three are pending */
    m_irqs = 0;
    mmio_w32(CLINT_MSIP(0), 1);
    set_mtimecmp(0, 0);
    mmio_w8(UART_IER, 0x02);
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while ((csr_read(mip) & (MIP_MEIP | MIP_MSIP | MIP_MTIP)) != (MIP_MEIP | MIP_MSIP | MIP_MTIP) &&
           mtime() < end)
        ;
    CHECK_EQ(csr_read(mip) & (MIP_MEIP | MIP_MSIP | MIP_MTIP), MIP_MEIP | MIP_MSIP | MIP_MTIP);
    csr_write(mie, MIP_MEIP | MIP_MSIP | MIP_MTIP);
    irq_enable_window();
    CHECK_EQ(m_irqs, 3);
    /* QEMU 7.2 without AIA takes the lowest-numbered pending interrupt first */
    if (QEMU_QUIRK(m_log[0] == (CAUSE_IRQ | IRQ_MSI))) {
        CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MTI);
        CHECK_EQ(m_log[2], CAUSE_IRQ | IRQ_MEI);
    } else {
        CHECK_EQ(m_log[0], CAUSE_IRQ | IRQ_MEI);
        CHECK_EQ(m_log[1], CAUSE_IRQ | IRQ_MSI);
        CHECK_EQ(m_log[2], CAUSE_IRQ | IRQ_MTI);
    }
    CHECK_EQ(m_claim, UART_IRQ);
    csr_write(mie, MIP_MEIP);

    /* a disabled source doesn't interrupt the context */
    mmio_w32(PLIC_ENABLE(0, UART_IRQ), 0);
    mmio_w8(UART_IER, 0x02);
    CHECK_EQ(plic_pending(UART_IRQ), 1);
    CHECK_EQ(csr_read(mip) & MIP_MEIP, 0);
    mmio_w8(UART_IER, 0);
    (void)mmio_r8(UART_IIR);
    csr_write(mie, 0);
    reset_state();
}

static u64 s_plic_body(u64 arg)
{
    (void)arg;
    csr_set(sie, MIP_SEIP);
    mmio_w8(UART_IER, 0x02);
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while (!(csr_read(sip) & MIP_SEIP) && mtime() < end)
        ;
    CHECK(csr_read(sip) & MIP_SEIP);
    CHECK_EQ(s_irqs, 0);
    csr_set(sstatus, MSTATUS_SIE);
    __asm__ volatile("nop");
    csr_clear(sstatus, MSTATUS_SIE);
    CHECK_EQ(s_irqs, 1);
    CHECK_EQ(s_log[0], CAUSE_IRQ | IRQ_SEI);
    CHECK_EQ(s_claim, UART_IRQ);
    CHECK_EQ(s_iir & 0x0f, 0x02);
    CHECK(s_sip & MIP_SEIP);
    CHECK_EQ(s_sip_after & MIP_SEIP, 0);
    CHECK_EQ(mmio_r32(PLIC_CLAIM(1)), 0);
    return 0x600d;
}

static u64 s_prio_body(u64 arg)
{
    (void)arg;
    u64 all = MIP_SEIP | MIP_SSIP | MIP_STIP;
    csr_set(sie, all);
    csr_set(sip, MIP_SSIP);
    mmio_w8(UART_IER, 0x02);
    u64 end = mtime() + TIMEBASE_HZ / 10;
    while ((csr_read(sip) & all) != all && mtime() < end)
        ;
    CHECK_EQ(csr_read(sip) & all, all);
    csr_set(sstatus, MSTATUS_SIE);
    __asm__ volatile("nop");
    csr_clear(sstatus, MSTATUS_SIE);
    CHECK_EQ(s_irqs, 3);
    /* SEI > SSI > STI; QEMU 7.2 takes the lowest-numbered one first */
    if (QEMU_QUIRK(s_log[0] == (CAUSE_IRQ | IRQ_SSI))) {
        CHECK_EQ(s_log[1], CAUSE_IRQ | IRQ_STI);
        CHECK_EQ(s_log[2], CAUSE_IRQ | IRQ_SEI);
    } else {
        CHECK_EQ(s_log[0], CAUSE_IRQ | IRQ_SEI);
        CHECK_EQ(s_log[1], CAUSE_IRQ | IRQ_SSI);
        CHECK_EQ(s_log[2], CAUSE_IRQ | IRQ_STI);
    }
    CHECK_EQ(csr_read(sip) & all, 0);
    return 0x600d;
}

static void test_plic_uart_s(void)
{
    reset_state();
    uart_drain();
    mmio_w8(UART_IER, 0);
    mmio_w32(PLIC_PRIORITY(UART_IRQ), 1);
    mmio_w32(PLIC_ENABLE(0, UART_IRQ), 0);
    mmio_w32(PLIC_ENABLE(1, UART_IRQ), 1u << UART_IRQ);
    mmio_w32(PLIC_THRESHOLD(1), 0);
    csr_write(mideleg, MIP_SEIP);
    csr_write(mie, MIP_SEIP);
    s_hook = s_irq_hook;
    CHECK_EQ(run_lower(PRV_S, s_plic_body, 0, 0), 0x600d);
    CHECK_EQ(m_irqs, 0);
    CHECK_EQ(csr_read(mip) & MIP_SEIP, 0);

    /* priorities among S interrupts */
    s_irqs = 0;
    csr_write(mideleg, MIP_SEIP | MIP_SSIP | MIP_STIP);
    csr_write(mie, MIP_SEIP | MIP_SSIP | MIP_STIP);
    csr_set(mip, MIP_STIP);
    CHECK_EQ(run_lower(PRV_S, s_prio_body, 0, 0), 0x600d);
    CHECK_EQ(m_irqs, 0);
    mmio_w32(PLIC_ENABLE(1, UART_IRQ), 0);
    mmio_w32(PLIC_PRIORITY(UART_IRQ), 0);
    csr_write(mideleg, 0);
    s_hook = 0;
    reset_state();
}

int main(void)
{
    m_hook = m_irq_hook;
    kprintf("interrupts: machine timer\n");
    test_timer();
    kprintf("interrupts: masking\n");
    test_masking();
    kprintf("interrupts: wfi\n");
    test_wfi();
    kprintf("interrupts: software (msip)\n");
    test_msip();
    kprintf("interrupts: priority\n");
    test_priority();
    kprintf("interrupts: vectored mtvec\n");
    test_vectored();
    kprintf("interrupts: S-mode timer/software\n");
    test_s_interrupts();
    kprintf("interrupts: PLIC/UART to M\n");
    test_plic_uart_m();
    kprintf("interrupts: PLIC/UART to S\n");
    test_plic_uart_s();
    m_hook = 0;
    return 0;
}
