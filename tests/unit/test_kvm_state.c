/* Unit tests for the kvm engine's snapshot sections (src/engine/kvm/
 * state_format.c), which need no /dev/kvm: a vCPU section ("cpu<N>") with an
 * XSAVE area and one with legacy FPU state, "irqchip", "pit" and "kvmclock"
 * written and read back field by field; the section sizes equal what the
 * documented layout adds up to; and every check on load: a short or long
 * section, the vCPU index, RFLAGS bit 1, EFER, the APIC base's BSP bit, the
 * LAPIC ID, more than one interrupt pending in sregs, the FPU kind, the
 * XSAVE size, XCR0, DR6/DR7, MSRs unknown, repeated or out of order, the MP
 * state, the vCPU event flags and booleans, CPUID without leaf 0, the PIC
 * and IOAPIC registers, the PIT channels and flags, the kvmclock flags. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapshot.h"
#include "engine/kvm/state.h"

#include "unit.h"

#include "snap_test_util.h"

#define RFLAGS 0x0000000000250202ull     /* unique 8 bytes to find in the section */
#define APIC_BASE0 0x00000000fee00900ull /* enabled, BSP */
#define EFER 0x0000000000000d01ull
#define MSR_TSC 0x10
#define MSR_LSTAR 0xc0000082
#define MSR_DEADLINE 0x6e0

static struct kvm_cpu_state *sample_cpu(unsigned index, bool xsave)
{
    struct kvm_cpu_state *s = calloc(1, sizeof(*s));
    s->index = index;
    s->tsc_khz = 2596700;
    s->mp.mp_state = KVM_MP_STATE_HALTED;
    s->ncpuid = 3;
    s->cpuid[0] = (struct kvm_cpuid_entry2){ .function = 0x1, .eax = 0x806f8, .ecx = 0x80000001 };
    s->cpuid[1] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd, .ebx = 0x756e6547,
                                             .edx = 0x49656e69, .ecx = 0x6c65746e };
    s->cpuid[2] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 1, .flags = 1, .eax = 0xf };
    __u64 *gpr = &s->regs.rax;
    for (unsigned i = 0; i < 16; i++)
        gpr[i] = 0x1111111111111111ull * (i % 15 + 1) + i;
    s->regs.rip = 0xffffffff81000000ull + index;
    s->regs.rflags = RFLAGS;
    struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
                                .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1 };
    struct kvm_segment data = code;
    data.selector = 0x18;
    data.type = 3;
    data.l = 0;
    data.db = 1;
    s->sregs.cs = code;
    s->sregs.ds = s->sregs.es = s->sregs.ss = data;
    s->sregs.fs = data;
    s->sregs.fs.base = 0x7f0000001000ull;
    s->sregs.gs = data;
    s->sregs.gs.base = 0xffff888000000000ull;
    s->sregs.tr = (struct kvm_segment){ .base = 0xfffffe0000003000ull, .limit = 0x4087,
                                        .selector = 0x40, .type = 11, .present = 1 };
    s->sregs.ldt = (struct kvm_segment){ .unusable = 1 };
    s->sregs.gdt = (struct kvm_dtable){ .base = 0xfffffe0000001000ull, .limit = 0x7f };
    s->sregs.idt = (struct kvm_dtable){ .base = 0xfffffe0000000000ull, .limit = 0xfff };
    s->sregs.cr0 = 0x80050033;
    s->sregs.cr2 = 0x7f1234567000ull;
    s->sregs.cr3 = 0x10a000;
    s->sregs.cr4 = 0x3706f0;
    s->sregs.cr8 = 0;
    s->sregs.efer = EFER;
    s->sregs.apic_base = index == 0 ? APIC_BASE0 : 0xfee00800ull;
    s->sregs.interrupt_bitmap[1] = 1ull << 3;   /* vector 67 being injected */
    s->has_xsave = xsave;
    if (xsave) {
        s->xsave_size = 4096;
        s->xsave = calloc(1, 4096);
        for (unsigned i = 0; i < 1024; i++)
            s->xsave->region[i] = i * 2654435761u;
        s->xcrs.nr_xcrs = 1;
        s->xcrs.xcrs[0] = (struct kvm_xcr){ .xcr = 0, .value = 7 };
    } else {
        for (unsigned i = 0; i < 8; i++)
            memset(s->fpu.fpr[i], (int)(0x30 + i), 16);
        s->fpu.fcw = 0x37f;
        s->fpu.fsw = 0x3800;
        s->fpu.ftwx = 0x80;
        s->fpu.last_opcode = 0x7dd;
        s->fpu.last_ip = 0x401000;
        s->fpu.last_dp = 0x602000;
        for (unsigned i = 0; i < 16; i++)
            memset(s->fpu.xmm[i], (int)(0xa0 + i), 16);
        s->fpu.mxcsr = 0x1fa0;
    }
    s->dbg.db[0] = 0x401234;
    s->dbg.db[3] = 0xdeadbeef;
    s->dbg.dr6 = 0xffff0ff0;
    s->dbg.dr7 = 0x400;
    for (unsigned i = 0; i < sizeof(s->lapic.regs); i++)
        s->lapic.regs[i] = (char)(i * 7);
    uint32_t id = index << 24;
    memcpy(s->lapic.regs + 0x20, &id, 4);
    s->nmsrs = 3;
    s->msrs[0] = (struct kvm_msr_entry){ .index = MSR_TSC, .data = 0x123456789abcull };
    s->msrs[1] = (struct kvm_msr_entry){ .index = MSR_LSTAR, .data = 0xffffffff81e00000ull };
    s->msrs[2] = (struct kvm_msr_entry){ .index = MSR_DEADLINE, .data = 0x123456799999ull };
    s->ev.exception.injected = 1;
    s->ev.exception.nr = 14;
    s->ev.exception.has_error_code = 1;
    s->ev.exception.error_code = 6;
    s->ev.interrupt.injected = 1;
    s->ev.interrupt.nr = 67;
    s->ev.interrupt.shadow = 1;
    s->ev.nmi.masked = 1;
    s->ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
                  KVM_VCPUEVENT_VALID_SMM;
    s->ev.smi.latched_init = 1;
    return s;
}

/* What the documented layout adds up to (state_format.c's comment). */
static size_t cpu_section_size(const struct kvm_cpu_state *s)
{
    size_t n = 3 * 4;                               /* index, tsc_khz, mp_state */
    n += 4 + s->ncpuid * 7 * 4;                     /* cpuid */
    n += 18 * 8;                                    /* regs */
    n += 8 * (8 + 4 + 2 + 9) + 2 * (8 + 2) + 7 * 8 + 4 * 8;    /* sregs */
    n += 1 + (s->has_xsave ? 4 + s->xsave_size : 8 * 16 + 2 + 2 + 1 + 2 + 8 + 8 + 16 * 16 + 4);
    n += 4 + s->xcrs.nr_xcrs * (4 + 8);             /* xcrs */
    n += 6 * 8;                                     /* debug registers */
    n += 1024;                                      /* lapic */
    n += 4 + s->nmsrs * (4 + 8);                    /* msrs */
    n += 4 + 4 + 7 + 4 + 4 + 6 + 8;                 /* events */
    return n;
}

static void write_cpu(const struct kvm_cpu_state *s, struct snap_file *f)
{
    struct snap_writer w;
    struct err e = { "" };
    snapw_init(&w);
    kvm_cpu_write(&w, s);
    CHECK(w.failed == 0 && !w.oom, "writer failed");
    EQ(snap_test_finish(&w, f, &e), 0);
    snapw_free(&w);
}

/* Read f's section `name` as vCPU `index` into a fresh state. */
static int read_cpu(struct snap_file *f, const char *name, unsigned index,
                    struct kvm_cpu_state **out, struct err *e)
{
    struct snap_reader r;
    *out = calloc(1, sizeof(**out));
    int ret = snap_section(f, name, KVM_SNAP_CPU_VERSION, KVM_SNAP_CPU_VERSION, &r, e);
    if (ret == 0)
        ret = kvm_cpu_read(&r, *out, index, e);
    return ret;
}

static void same_cpu(const struct kvm_cpu_state *a, const struct kvm_cpu_state *b)
{
    EQ(b->index, a->index);
    EQ(b->tsc_khz, a->tsc_khz);
    EQ(b->mp.mp_state, a->mp.mp_state);
    EQ(b->ncpuid, a->ncpuid);
    CHECK(!memcmp(b->cpuid, a->cpuid, a->ncpuid * sizeof(a->cpuid[0])), "cpuid differs");
    CHECK(!memcmp(&b->regs, &a->regs, sizeof(a->regs)), "regs differ");
    CHECK(!memcmp(&b->sregs, &a->sregs, sizeof(a->sregs)), "sregs differ");
    EQ(b->has_xsave, a->has_xsave);
    if (a->has_xsave) {
        EQ(b->xsave_size, a->xsave_size);
        CHECK(b->xsave && !memcmp(b->xsave, a->xsave, a->xsave_size), "XSAVE area differs");
    } else {
        CHECK(!memcmp(&b->fpu, &a->fpu, sizeof(a->fpu)), "FPU state differs");
    }
    CHECK(!memcmp(&b->xcrs, &a->xcrs, sizeof(a->xcrs)), "xcrs differ");
    CHECK(!memcmp(&b->dbg, &a->dbg, sizeof(a->dbg)), "debug registers differ");
    CHECK(!memcmp(&b->lapic, &a->lapic, sizeof(a->lapic)), "lapic differs");
    EQ(b->nmsrs, a->nmsrs);
    CHECK(!memcmp(b->msrs, a->msrs, a->nmsrs * sizeof(a->msrs[0])), "msrs differ");
    CHECK(!memcmp(&b->ev, &a->ev, sizeof(a->ev)), "vCPU events differ");
}

static void test_cpu_round_trip(bool xsave)
{
    struct kvm_cpu_state *s = sample_cpu(1, xsave), *back = NULL;
    struct snap_file f;
    struct err e = { "" };
    write_cpu(s, &f);
    EQ(f.nsec, 1);
    CHECK(!strcmp(f.sec[0].name, "cpu1"), "section %s", f.sec[0].name);
    EQ(f.sec[0].version, KVM_SNAP_CPU_VERSION);
    EQ(f.sec[0].len, cpu_section_size(s));
    int ret = read_cpu(&f, "cpu1", 1, &back, &e);
    CHECK(ret == 0, "read: %s", e.msg);
    if (ret == 0)
        same_cpu(s, back);
    kvm_cpu_state_free(back);
    kvm_cpu_state_free(s);
    snap_file_free(&f);
}

static size_t find(const struct snap_section *s, const void *p, size_t n)
{
    const uint8_t *at = memmem(s->data, s->len, p, n);
    CHECK(at != NULL, "pattern not in section %s", s->name);
    return at ? (size_t)(at - s->data) : 0;
}

/* Patch n bytes at off of cpu0's section; loading it as vCPU `index` must
 * fail with a message containing want. */
static void expect_bad(const struct snap_file *f, size_t off, const void *p, size_t n,
                       unsigned index, const char *want)
{
    struct snap_file g;
    struct kvm_cpu_state *s = NULL;
    struct err e = { "" };
    if (snap_test_patch(f, "cpu0", off, p, n, &g) < 0)
        return;
    int ret = read_cpu(&g, "cpu0", index, &s, &e);
    CHECK(ret == -EINVAL && snap_test_msg(&e, want), "want '%s': ret %d", want, ret);
    kvm_cpu_state_free(s);
    snap_file_free(&g);
}

static void test_cpu_checks(void)
{
    struct kvm_cpu_state *s = sample_cpu(0, true), *back = NULL;
    struct snap_file f, g;
    struct err e = { "" };
    write_cpu(s, &f);
    const struct snap_section *sec = &f.sec[0];
    /* as written it loads as vCPU 0, not as vCPU 1 */
    int ret = read_cpu(&f, "cpu0", 0, &back, &e);
    CHECK(ret == 0, "read: %s", e.msg);
    kvm_cpu_state_free(back);
    ret = read_cpu(&f, "cpu0", 1, &back, &e);
    CHECK(ret == -EINVAL && snap_test_msg(&e, "vCPU index differs"), "index: %d", ret);
    kvm_cpu_state_free(back);

    /* short and long sections */
    if (snap_test_edit(&f, "cpu0", sec->len - 1, 0, NULL, 0, &g) == 0) {
        ret = read_cpu(&g, "cpu0", 0, &back, &e);
        CHECK(ret == -EINVAL && snap_test_msg(&e, "shorter than its fields"), "short: %d", ret);
        kvm_cpu_state_free(back);
        snap_file_free(&g);
    }
    {
        struct snap_writer w;
        snapw_init(&w);
        kvm_cpu_write(&w, s);
        snapw_u8(&w, 0);
        EQ(snap_test_finish(&w, &g, &e), 0);
        snapw_free(&w);
        ret = read_cpu(&g, "cpu0", 0, &back, &e);
        CHECK(ret == -EINVAL && snap_test_msg(&e, "unexpected bytes"), "long: %d", ret);
        kvm_cpu_state_free(back);
        snap_file_free(&g);
    }

    uint32_t u32;
    uint64_t u64;
    /* mp_state (offset 8) */
    u32 = 7;
    expect_bad(&f, 8, &u32, 4, 0, "bad MP state");
    /* CPUID: no leaf 0 once its function is changed (entry 1 at 16 + 28) */
    u32 = 0x80000000;
    expect_bad(&f, 16 + 28, &u32, 4, 0, "CPUID without leaf 0");
    u32 = 0;    /* entry count 0 */
    expect_bad(&f, 12, &u32, 4, 0, "bad CPUID entry count");
    u32 = 8;    /* entry flags */
    expect_bad(&f, 16 + 2 * 28 + 8, &u32, 4, 0, "bad CPUID entry flags");
    /* RFLAGS without bit 1 */
    size_t rfl = find(sec, &(uint64_t){ RFLAGS }, 8);
    u64 = RFLAGS & ~2ull;
    expect_bad(&f, rfl, &u64, 8, 0, "bad RFLAGS");
    /* a segment's DPL (cs comes right after the registers: base, limit, selector, type, present, dpl) */
    uint8_t b = 4;
    expect_bad(&f, rfl + 8 + 8 + 4 + 2 + 2, &b, 1, 0, "bad segment type or DPL");
    b = 2;      /* cs.present */
    expect_bad(&f, rfl + 8 + 8 + 4 + 2 + 1, &b, 1, 0, "bad segment flags");
    /* EFER, APIC base */
    const uint64_t efer_apic[2] = { EFER, APIC_BASE0 };
    size_t efer = find(sec, efer_apic, sizeof(efer_apic));
    u64 = EFER | (1ull << 30);
    expect_bad(&f, efer, &u64, 8, 0, "unknown EFER bits");
    u64 = APIC_BASE0 & ~(1ull << 8);    /* vCPU 0 without the BSP flag */
    expect_bad(&f, efer + 8, &u64, 8, 0, "bad APIC base");
    u64 = (APIC_BASE0 & ~(1ull << 11)) | (1ull << 10);   /* x2APIC without enable */
    expect_bad(&f, efer + 8, &u64, 8, 0, "bad APIC base");
    u64 = 3;    /* two interrupts pending */
    expect_bad(&f, efer + 16, &u64, 8, 0, "more than one interrupt pending");
    /* FPU kind and XSAVE size (right after the interrupt bitmap) */
    size_t kind = efer + 16 + 32;
    b = 2;
    expect_bad(&f, kind, &b, 1, 0, "bad FPU state kind");
    u32 = 4095;
    expect_bad(&f, kind + 1, &u32, 4, 0, "bad XSAVE area size");
    u32 = 128u << 10;
    expect_bad(&f, kind + 1, &u32, 4, 0, "bad XSAVE area size");
    /* XCRs: count, then XCR0 without x87 */
    size_t xcr = kind + 1 + 4 + 4096;
    u32 = 17;
    expect_bad(&f, xcr, &u32, 4, 0, "too many XCRs");
    u64 = 6;
    expect_bad(&f, xcr + 8, &u64, 8, 0, "XCR0 without x87 state");
    /* DR7 upper half */
    size_t dbg = xcr + 4 + 12;
    u64 = 1ull << 32 | 0x400;
    expect_bad(&f, dbg + 5 * 8, &u64, 8, 0, "bad DR6 or DR7");
    /* the LAPIC ID */
    size_t lapic = dbg + 6 * 8;
    u32 = 1u << 24;
    expect_bad(&f, lapic + 0x20, &u32, 4, 0, "LAPIC ID differs");
    /* MSRs: unknown, repeated, out of order, too many */
    size_t msrs = lapic + 1024;
    u32 = 0x12345;
    expect_bad(&f, msrs + 4 + 12, &u32, 4, 0, "unknown, repeated or misordered MSR");
    u32 = MSR_TSC;
    expect_bad(&f, msrs + 4 + 12, &u32, 4, 0, "unknown, repeated or misordered MSR");
    u32 = MSR_DEADLINE;     /* deadline before LSTAR */
    expect_bad(&f, msrs + 4 + 12, &u32, 4, 0, "unknown, repeated or misordered MSR");
    u32 = KVM_SNAP_MAX_MSRS + 1;
    expect_bad(&f, msrs, &u32, 4, 0, "too many MSRs");
    /* events: a non-boolean, an exception vector, unknown flags */
    size_t ev = msrs + 4 + 3 * 12;
    b = 2;
    expect_bad(&f, ev, &b, 1, 0, "bad vCPU event flags");
    b = 32;
    expect_bad(&f, ev + 1, &b, 1, 0, "bad vCPU event");
    u32 = 0x40;
    expect_bad(&f, ev + 4 + 4 + 7 + 4, &u32, 4, 0, "unknown vCPU event flags");
    EQ(ev + 4 + 4 + 7 + 4 + 4 + 6 + 8, sec->len);
    kvm_cpu_state_free(s);
    snap_file_free(&f);
}

static void test_vm_sections(void)
{
    struct kvm_irqchip c[3];
    memset(c, 0, sizeof(c));
    c[0].chip.pic = (struct kvm_pic_state){ .last_irr = 0x10, .irr = 0x10, .imr = 0xfa,
                                            .isr = 0x01, .priority_add = 1, .irq_base = 0x20,
                                            .init4 = 1, .elcr = 0x00, .elcr_mask = 0xf8 };
    c[1].chip.pic = (struct kvm_pic_state){ .imr = 0xff, .irq_base = 0x28, .init4 = 1,
                                            .elcr = 0x0c, .elcr_mask = 0xde };
    c[2].chip.ioapic.base_address = 0xfec00000;
    c[2].chip.ioapic.ioregsel = 0x10;
    c[2].chip.ioapic.irr = 1u << 16;
    for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
        c[2].chip.ioapic.redirtbl[i].bits = i == 2 ? 0x30 : 0x10000;
    struct kvm_pit_state2 ps;
    memset(&ps, 0, sizeof(ps));
    ps.channels[0] = (struct kvm_pit_channel_state){ .count = 1193, .rw_mode = 3, .mode = 2,
                                                     .gate = 1, .read_state = 3,
                                                     .write_state = 3,
                                                     .count_load_time = 123456789 };
    ps.channels[2] = (struct kvm_pit_channel_state){ .count = 0x10000, .mode = 3 };
    ps.flags = 0;
    struct kvm_clock_data clk = { .clock = 98765432101ull, .flags = KVM_CLOCK_TSC_STABLE };

    struct snap_writer w;
    struct snap_file f;
    struct err e = { "" };
    snapw_init(&w);
    kvm_irqchip_write(&w, c);
    kvm_pit_write(&w, &ps);
    kvm_clock_write(&w, &clk);
    EQ(snap_test_finish(&w, &f, &e), 0);
    snapw_free(&w);
    EQ(f.nsec, 3);
    EQ(f.sec[0].len, 2 * 16 + 8 + 4 + 4 + 4 + 24 * 8);
    EQ(f.sec[1].len, 3 * (4 + 2 + 10 + 8) + 4);
    EQ(f.sec[2].len, 8 + 4);

    struct snap_reader r;
    struct kvm_irqchip c2[3];
    struct kvm_pit_state2 ps2;
    struct kvm_clock_data clk2;
    for (uint32_t i = 0; i < 3; i++)
        c[i].chip_id = i;
    EQ(snap_section(&f, "irqchip", 1, 1, &r, &e), 0);
    EQ(kvm_irqchip_read(&r, c2, &e), 0);
    CHECK(!memcmp(c, c2, sizeof(c)), "irqchip differs");
    EQ(snap_section(&f, "pit", 1, 1, &r, &e), 0);
    EQ(kvm_pit_read(&r, &ps2, &e), 0);
    CHECK(!memcmp(&ps, &ps2, sizeof(ps)), "PIT differs");
    EQ(snap_section(&f, "kvmclock", 1, 1, &r, &e), 0);
    EQ(kvm_clock_read(&r, &clk2, &e), 0);
    EQ(clk2.clock, clk.clock);
    EQ(clk2.flags, clk.flags);

    /* checks */
    struct { const char *sec; size_t off; uint32_t val; unsigned n; const char *want; } bad[] = {
        { "irqchip", 5, 0x21, 1, "bad master PIC state" },          /* irq_base */
        { "irqchip", 16 + 9, 4, 1, "bad slave PIC state" },          /* init_state */
        { "irqchip", 14, 0x07, 1, "bad master PIC state" },          /* elcr outside its mask */
        { "irqchip", 32, 0xfec01000, 4, "IOAPIC not at 0xfec00000" },
        { "irqchip", 32 + 8 + 4, 16, 4, "bad IOAPIC registers" },   /* id */
        { "irqchip", 32 + 8 + 8, 1u << 24, 4, "bad IOAPIC registers" }, /* irr */
        { "pit", 0, 0x10001, 4, "bad PIT channel state" },
        { "pit", 4 + 2 + 7, 6, 1, "bad PIT channel state" },          /* mode */
        { "pit", 24 + 4 + 2 + 9, 2, 1, "bad PIT channel state" },     /* gate */
        { "pit", 72, 4, 4, "unknown PIT flags" },
        { "kvmclock", 8, 1, 4, "unknown kvmclock flags" },
        { "kvmclock", 4, 0x80000000u, 4, "bad kvmclock value" },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct snap_file g;
        if (snap_test_patch(&f, bad[i].sec, bad[i].off, &bad[i].val, bad[i].n, &g) < 0)
            continue;
        EQ(snap_section(&g, bad[i].sec, 1, 1, &r, &e), 0);
        int ret = !strcmp(bad[i].sec, "irqchip") ? kvm_irqchip_read(&r, c2, &e)
                  : !strcmp(bad[i].sec, "pit") ? kvm_pit_read(&r, &ps2, &e)
                                               : kvm_clock_read(&r, &clk2, &e);
        CHECK(ret == -EINVAL && snap_test_msg(&e, bad[i].want), "case %u: %d", i, ret);
        snap_file_free(&g);
    }
    snap_file_free(&f);
}

static void test_msr_table(void)
{
    /* TSC first, TSC_DEADLINE last, ASYNC_PF_INT before ASYNC_PF_EN, no repeats */
    EQ(kvm_snap_msrs[0].index, MSR_TSC);
    EQ(kvm_snap_msrs[kvm_snap_nmsrs - 1].index, MSR_DEADLINE);
    CHECK(kvm_snap_msr_pos(0x4b564d06) < kvm_snap_msr_pos(0x4b564d02), "async PF order");
    CHECK(kvm_snap_nmsrs <= KVM_SNAP_MAX_MSRS, "table size");
    for (unsigned i = 0; i < kvm_snap_nmsrs; i++)
        EQ(kvm_snap_msr_pos(kvm_snap_msrs[i].index), i);
    EQ(kvm_snap_msr_pos(0xc0000080), -1);   /* EFER is in sregs */
    EQ(kvm_snap_msr_pos(0x1b), -1);         /* APIC_BASE too */
    CHECK(!strcmp(kvm_snap_msr_name(MSR_LSTAR), "LSTAR"), "name");
}

int main(void)
{
    test_cpu_round_trip(true);
    test_cpu_round_trip(false);
    test_cpu_checks();
    test_vm_sections();
    test_msr_table();
    snap_test_cleanup();
    return unit_done("test_kvm_state");
}
