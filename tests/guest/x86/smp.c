/* smp: start every CPU listed in the MP table the way Linux does it:
 * INIT-SIPI-SIPI to each AP, a real-mode trampoline below 1 MiB, then
 * 32-bit protected mode and long mode with the BSP's GDT and page tables.
 * - MP table: floating pointer (EBDA, 0x9fc00, BIOS ROM), checksums,
 *   LAPIC at 0xfee00000, an IOAPIC at 0xfec00000, enabled processors with
 *   distinct APIC IDs, the BSP flagged and matching our APIC ID;
 * - every AP starts (lock xadd ticket), reports a LAPIC ID that is in the
 *   MP table, equals its CPUID.1 initial APIC ID and is reported once; the
 *   number of started APs = processor entries - 1;
 * - QEMU's microvm has an empty MP table (qboot): then (in non-STRICT
 *   builds) the CPUs come from the ACPI MADT, and the output says so;
 * - all CPUs then race 20000 lock-xadd increments each on one counter:
 *   the total is exact;
 * - a fixed IPI from the BSP to each AP (vector 0x50) is handled there.
 * Prints "smp: N CPUs" (the runner checks N against --cpus / -smp). */
#include "rt.h"

#define TRAMP_BASE 0x10000ul
#define VEC_IPI 0x50
#define MAX_APS 31
#define RACE_ITERS 20000

extern char tramp_start[], tramp_end[], tramp_reached[];
extern volatile uint32_t ap_ticket;
void idt_load(void);

static volatile uint32_t ap_apic[MAX_APS], ap_cpuid_apic[MAX_APS];
static volatile uint32_t ap_ipis[MAX_APS];
static volatile uint32_t race_go, race_done, ipi_ready;
static volatile uint32_t counter;

static void atomic_inc(volatile uint32_t *p) {
    uint32_t one = 1;
    __asm__ volatile("lock xaddl %0, %1" : "+r"(one), "+m"(*p) : : "memory");
}

static void race(void) {
    for (int i = 0; i < RACE_ITERS; i++) atomic_inc(&counter);
}

static volatile uint32_t ipi_index[256]; /* APIC ID -> AP index */
static void ipi_handler(struct trapframe *tf) {
    (void)tf;
    ap_ipis[ipi_index[lapic_id() & 0xff]]++;
    lapic_eoi();
}

void ap_entry_c(unsigned idx) {
    idt_load();
    uint32_t r[4];
    cpuid(1, 0, r);
    ap_cpuid_apic[idx] = r[1] >> 24;
    ap_apic[idx] = lapic_id();
    ipi_index[lapic_id() & 0xff] = idx;
    lapic_enable();
    while (!race_go) pause();
    race();
    atomic_inc(&race_done);
    atomic_inc(&ipi_ready);
    for (;;) sti_hlt(); /* IPIs from here on */
}

static bool wait_until(volatile uint32_t *v, uint32_t want, uint64_t us) {
    uint64_t end = rdtsc() + us_to_tsc(us);
    while (*v < want)
        if (rdtsc() > end) return false;
    return true;
}

void test_main(void) {
    tsc_calibrate();
    lapic_enable();
    unsigned bsp = lapic_id();

    /* ---- MP table ---- */
    struct mp_info mp;
    bool have_mp = mp_find(&mp);
    if (have_mp)
        printf("smp: MP floating pointer at 0x%lx, table at 0x%lx, %u entries, LAPIC 0x%x\n",
               mp.fp_addr, mp.table_addr, mp.nentries, mp.lapic_addr);
#ifndef STRICT_PLATFORM
    if (!have_mp || !mp.ncpus) {
        /* QEMU's microvm: qboot's MP table is empty, CPUs are in the MADT */
        CHECK_MSG(madt_find(&mp, bsp), "no usable MP table and no ACPI MADT");
        printf("smp: using the ACPI MADT at 0x%lx (RSDP 0x%lx): %u entries, LAPIC 0x%x\n",
               mp.table_addr, mp.fp_addr, mp.nentries, mp.lapic_addr);
        have_mp = true;
    }
#endif
    CHECK_MSG(have_mp, "no MP floating pointer structure");
    CHECK_NE(mp.table_addr, 0);
    CHECK(!mp.bad_checksum);
    CHECK_EQ(mp.lapic_addr, LAPIC_BASE);
    CHECK_GE(mp.nioapics, 1);
    CHECK_EQ(mp.ioapic_addr[0], IOAPIC_BASE);
    CHECK_RANGE(mp.ncpus, 1, MAX_APS + 1);
    for (unsigned i = 0; i < mp.ncpus; i++) {
        printf("  cpu %u: APIC ID %u%s\n", i, mp.apic_ids[i], (int)i == mp.bsp_index ? " (BSP)" : "");
        for (unsigned j = 0; j < i; j++)
            CHECK_MSG(mp.apic_ids[i] != mp.apic_ids[j], "APIC ID %u listed twice", mp.apic_ids[i]);
    }
    CHECK_MSG(mp.bsp_index >= 0, "no processor entry flagged BSP");
    CHECK_EQ(mp.apic_ids[mp.bsp_index], bsp);
    uint32_t r[4];
    cpuid(1, 0, r);
    CHECK_EQ(r[1] >> 24, bsp); /* CPUID.1 initial APIC ID */
    printf("smp: %u CPUs (from the %s)\n", mp.ncpus, mp.from_acpi ? "ACPI MADT" : "MP table");

    /* ---- start the APs ---- */
    set_handler(VEC_IPI, ipi_handler);
    memcpy(phys(TRAMP_BASE), tramp_start, tramp_end - tramp_start);
    volatile uint32_t *reached = phys(TRAMP_BASE + (tramp_reached - tramp_start));
    unsigned naps = 0;
    uint64_t t_all = rdtsc();
    for (unsigned i = 0; i < mp.ncpus; i++) {
        unsigned id = mp.apic_ids[i];
        if (id == bsp) continue;
        *reached = 0;
        uint64_t t0 = rdtsc();
        lapic_write(LAPIC_ESR, 0);
        CHECK_MSG(lapic_send_ipi(id, 0x4500), "INIT to %u stuck", id); /* INIT, assert */
        udelay(10000);
        for (int s = 0; s < 2; s++) {
            CHECK_MSG(lapic_send_ipi(id, 0x4600 | (TRAMP_BASE >> 12)), "SIPI to %u stuck", id);
            udelay(200);
        }
        naps++;
        bool up = wait_until(&ap_ticket, naps, 2000000);
        if (!up) {
            lapic_write(LAPIC_ESR, 0);
            fail("AP with APIC ID %u did not reach long mode within 2 s of INIT-SIPI-SIPI "
                 "(real-mode trampoline at 0x%lx %s; ESR 0x%x)",
                 id, TRAMP_BASE, *reached ? "ran" : "never ran", lapic_read(LAPIC_ESR));
        }
        printf("  AP %u up in %lu us\n", id, tsc_to_us(rdtsc() - t0));
        CHECK_EQ(*reached, 1);
    }
    printf("smp: %u APs started in %lu ms\n", naps, tsc_to_us(rdtsc() - t_all) / 1000);
    CHECK_EQ(ap_ticket + BREAK_ADJ, mp.ncpus - 1);

    /* ---- who came up ---- */
    for (unsigned i = 0; i < naps; i++) {
        printf("  AP index %u: APIC ID %u, CPUID.1 initial APIC ID %u\n", i, ap_apic[i],
               ap_cpuid_apic[i]);
        /* CPUID at CPL0 comes from KVM (KVM_SET_CPUID2) even on PVM hosts */
        CHECK_EQ(ap_apic[i], ap_cpuid_apic[i]);
        CHECK_NE(ap_apic[i], bsp);
        bool listed = false;
        for (unsigned j = 0; j < mp.ncpus; j++) listed |= mp.apic_ids[j] == ap_apic[i];
        CHECK_MSG(listed, "AP reports APIC ID %u, not in the MP table", ap_apic[i]);
        for (unsigned j = 0; j < i; j++)
            CHECK_MSG(ap_apic[i] != ap_apic[j], "APIC ID %u reported twice", ap_apic[i]);
    }

    /* ---- locked increments from all CPUs at once ---- */
    uint64_t t0 = rdtsc();
    race_go = 1;
    race();
    CHECK_MSG(wait_until(&race_done, naps, 10000000), "only %u of %u APs finished the race",
              race_done, naps);
    printf("smp: %u lock xadd increments on %u CPUs in %lu ms\n", counter, mp.ncpus,
           tsc_to_us(rdtsc() - t0) / 1000);
    CHECK_EQ(counter, RACE_ITERS * mp.ncpus);

    /* ---- IPIs ---- */
    CHECK(wait_until(&ipi_ready, naps, 2000000));
    udelay(1000); /* let them reach hlt */
    for (unsigned i = 0; i < naps; i++) {
        CHECK_MSG(lapic_send_ipi(ap_apic[i], VEC_IPI), "IPI to %u stuck", ap_apic[i]);
        uint64_t end = rdtsc() + us_to_tsc(1000000);
        while (!ap_ipis[i] && rdtsc() < end) pause();
        CHECK_MSG(ap_ipis[i] == 1, "AP %u handled %u IPIs, want 1", ap_apic[i], ap_ipis[i]);
    }
    pass();
}
