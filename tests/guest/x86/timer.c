/* timer: interrupts through the in-kernel irqchip, against a TSC time base
 * calibrated on the PIT.  Margins are generous (the host may be loaded);
 * a window that misses is retried up to 3 times.
 * - LAPIC (BSP APIC ID 0, version) and IOAPIC (24 pins) registers;
 * - PIT channel 0 at 1 kHz -> IOAPIC pin 2 -> LAPIC vector 0x30, with
 *   sti;hlt between interrupts: >= 50 in 100 ms and not absurdly many,
 *   none after masking the pin (whether the handler sees its vector in
 *   the LAPIC ISR is only printed: PVM doesn't track ISR);
 * - LAPIC timer: rate measured, one-shot fires exactly once and CCR ends
 *   at 0, periodic at 1 kHz: >= 50 in 100 ms, none after masking.
 * While one source is counted with sti;hlt, the other runs at 100 Hz on a
 * separate vector so that hlt always wakes up: a source that stops
 * interrupting fails the test instead of hanging it. */
#include "rt.h"

#define VEC_PIT 0x30
#define VEC_LAPIC 0x40
#define VEC_WAKE 0x41 /* the 100 Hz safety net */

static volatile unsigned pit_count, lapic_count, wake_count, isr_seen;

static void pit_irq(struct trapframe *tf) {
    (void)tf;
    pit_count++;
    if (lapic_isr_bit(VEC_PIT)) isr_seen++;
    lapic_eoi();
}
static void lapic_irq(struct trapframe *tf) {
    (void)tf;
    lapic_count++;
    if (lapic_isr_bit(VEC_LAPIC)) isr_seen++;
    lapic_eoi();
}
static void wake_irq(struct trapframe *tf) {
    (void)tf;
    wake_count++;
    lapic_eoi();
}

/* sti;hlt for `us` of TSC time; returns how many interrupts counted */
static unsigned count_for(volatile unsigned *ctr, uint64_t us, uint64_t *elapsed_us) {
    unsigned c0 = *ctr;
    uint64_t t0 = rdtsc(), end = t0 + us_to_tsc(us);
    while (rdtsc() < end) {
        sti_hlt();
        cli();
    }
    *elapsed_us = tsc_to_us(rdtsc() - t0);
    return *ctr - c0;
}

/* busy-wait with interrupts on; returns how many interrupts counted */
static unsigned spin_sti(volatile unsigned *ctr, uint64_t us) {
    unsigned c0 = ctr ? *ctr : 0;
    sti();
    udelay(us);
    cli();
    return ctr ? *ctr - c0 : 0;
}

/* >= 50 in ~100 ms, <= 4 per ms + 20; up to 3 windows */
static void check_rate(const char *what, volatile unsigned *ctr) {
    unsigned n = 0;
    uint64_t el = 0;
    for (int attempt = 1; attempt <= 3; attempt++) {
        n = count_for(ctr, 100000, &el);
        printf("  %s: %u interrupts in %lu us (window %d)\n", what, n, el, attempt);
        if (n >= 50 + 100000 * BREAK_ADJ && n <= 4 * el / 1000 + 20) break;
    }
    CHECK_GE(n, 50 + 100000 * BREAK_ADJ);
    CHECK_LE(n, 4 * el / 1000 + 20);
}

void test_main(void) {
    tsc_calibrate();
    printf("timer: TSC %lu kHz\n", tsc_hz / 1000);
    CHECK_RANGE(tsc_hz, 100000000ull, 10000000000ull);

    /* ---- APIC registers ---- */
    uint64_t apicbase = rdmsr(MSR_APIC_BASE);
    CHECK_EQ(apicbase & 0xfffff000ull, LAPIC_BASE);
    CHECK_MSG(apicbase & (1u << 8), "APIC_BASE 0x%lx: not the BSP", apicbase);
    lapic_enable();
    uint32_t ver = lapic_read(LAPIC_VER);
    printf("  lapic: id %u version 0x%x svr 0x%x\n", lapic_id(), ver, lapic_read(LAPIC_SVR));
    CHECK_EQ(lapic_id(), 0);
    CHECK_RANGE(ver & 0xff, 0x10, 0x15); /* integrated APIC */
    CHECK_GE((ver >> 16) & 0xff, 4);     /* max LVT entry */
    uint32_t iover = ioapic_read(1);
    printf("  ioapic: id 0x%x version 0x%x\n", ioapic_read(0), iover);
    CHECK_EQ((iover >> 16) & 0xff, 23); /* 24 pins */
    CHECK_RANGE(iover & 0xff, 0x11, 0x20);

    set_handler(VEC_PIT, pit_irq);
    set_handler(VEC_LAPIC, lapic_irq);
    set_handler(VEC_WAKE, wake_irq);

    /* ---- LAPIC timer rate (no interrupts) ---- */
    lapic_write(LAPIC_TIMER_DCR, 0x3); /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | VEC_LAPIC);
    lapic_write(LAPIC_TIMER_ICR, 0xffffffffu);
    uint64_t t0 = rdtsc();
    udelay(10000);
    uint32_t ccr = lapic_read(LAPIC_TIMER_CCR);
    uint64_t dt = rdtsc() - t0;
    uint64_t rate = (uint64_t)(0xffffffffu - ccr) * tsc_hz / dt; /* ticks per second */
    printf("  lapic timer: %lu kHz after divide-by-16\n", rate / 1000);
    CHECK_RANGE(rate, 100000, 1000000000ull);
    lapic_write(LAPIC_TIMER_ICR, 0);

    /* ---- PIT -> IOAPIC pin 2 -> LAPIC, LAPIC timer as safety net ---- */
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | VEC_WAKE);
    lapic_write(LAPIC_TIMER_ICR, (uint32_t)(rate / 100));
    ioapic_route(2, VEC_PIT, lapic_id(), false);
    CHECK_EQ(ioapic_read(0x10 + 2 * 2), VEC_PIT);
    pit_set_periodic(PIT_HZ / 1000);
    if (spin_sti(&pit_count, 20000) == 0) {
        /* diagnose: KVM's default GSI routing puts the PIT on pin 0 */
        ioapic_mask(2, true);
        ioapic_route(0, VEC_PIT, lapic_id(), false);
        unsigned n0 = spin_sti(&pit_count, 50000);
        ioapic_mask(0, true);
        fail("no PIT interrupt on IOAPIC pin 2 in 20 ms; on pin 0: %u in 50 ms%s", n0,
             n0 ? " (GSI 0 must be routed to IOAPIC pin 2, as QEMU does)" : "");
    }
    check_rate("PIT 1 kHz via IOAPIC pin 2", &pit_count);
    /* Not a check: PVM's LAPIC never shows the vector in ISR (and doesn't
     * hold back interrupts until EOI); hardware and VMX/SVM KVM do. */
    printf("  ISR bit set in the handler: %u of %u times\n", isr_seen, pit_count);
    ioapic_mask(2, true);
    spin_sti(0, 5000); /* let one in flight land */
    unsigned n = spin_sti(&pit_count, 30000);
    CHECK_MSG(n == 0, "%u PIT interrupts after masking IOAPIC pin 2", n);
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | VEC_WAKE);
    lapic_write(LAPIC_TIMER_ICR, 0);
    pit_stop();

    /* ---- LAPIC timer one-shot, 2 ms ---- */
    lapic_write(LAPIC_LVT_TIMER, VEC_LAPIC);
    lapic_write(LAPIC_TIMER_ICR, (uint32_t)(rate / 500));
    n = spin_sti(&lapic_count, 50000);
    printf("  lapic timer one-shot: %u interrupt(s)\n", n);
    CHECK_EQ(n, 1);
    CHECK_EQ(lapic_read(LAPIC_TIMER_CCR), 0);

    /* ---- LAPIC timer periodic 1 kHz, the PIT at 100 Hz as safety net ---- */
    ioapic_route(2, VEC_WAKE, lapic_id(), false);
    pit_set_periodic(PIT_HZ / 100);
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | VEC_LAPIC);
    lapic_write(LAPIC_TIMER_ICR, (uint32_t)(rate / 1000));
    CHECK_MSG(spin_sti(&lapic_count, 20000) > 0, "no periodic LAPIC timer interrupt in 20 ms");
    check_rate("LAPIC timer periodic 1 kHz", &lapic_count);
    CHECK_NE(lapic_read(LAPIC_TIMER_CCR), 0);
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | (1u << 17) | VEC_LAPIC);
    spin_sti(0, 5000);
    n = spin_sti(&lapic_count, 30000);
    CHECK_MSG(n == 0, "%u LAPIC timer interrupts after masking", n);
    lapic_write(LAPIC_TIMER_ICR, 0);
    ioapic_mask(2, true);
    pit_stop();
    printf("  (safety-net interrupts: %u)\n", wake_count);
    pass();
}
