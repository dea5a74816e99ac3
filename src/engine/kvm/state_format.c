/* kvm: the snapshot sections of the kvm engine, written and read (with
 * every field checked) without touching KVM, so that unit tests can check
 * them on any host.  state.c and vmstate.c get and set the state.
 *
 * Layouts (core/snapshot.h: integers little endian):
 *
 * "cpu<N>" v1, one per vCPU:
 *   u32 index                  N, the vCPU's index (= its APIC ID)
 *   u32 tsc_khz                KVM_GET_TSC_KHZ (0: unknown)
 *   u32 mp_state               KVM_GET_MP_STATE: 0..4 (runnable, uninitialized,
 *                              INIT received, halted, SIPI received)
 *   cpuid   u32 n (1..256), n x { u32 function, index, flags, eax, ebx, ecx, edx }
 *           (KVM_GET_CPUID2: what the guest was shown; leaf 0 among them)
 *   regs    u64 rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
 *   sregs   8 segments (cs ds es fs gs ss tr ldt), each u64 base, u32 limit,
 *           u16 selector, u8 type present dpl db s l g avl unusable; gdt
 *           and idt, each u64 base, u16 limit; u64 cr0 cr2 cr3 cr4 cr8 efer
 *           apic_base; u64 interrupt_bitmap[4]
 *   fpu     u8 kind.  1: u32 size (4096..65536, a multiple of 4) and the
 *           XSAVE area (KVM_GET_XSAVE / KVM_GET_XSAVE2).  0 (hosts without
 *           KVM_CAP_XSAVE): KVM_GET_FPU's 8 x 16 bytes fpr, u16 fcw, u16
 *           fsw, u8 ftwx, u16 last_opcode, u64 last_ip, u64 last_dp, 16 x 16
 *           bytes xmm, u32 mxcsr
 *   xcrs    u32 n (0..16; 0: host without KVM_CAP_XCRS), n x { u32 xcr, u64 value }
 *   debug   u64 db0 db1 db2 db3 dr6 dr7 (KVM_GET_DEBUGREGS)
 *   lapic   1024 bytes (KVM_GET_LAPIC's register page; APIC ID in bits
 *           31:24 of the word at 0x20, in x2APIC mode too)
 *   msrs    u32 n, n x { u32 index, u64 value }: those of kvm_snap_msrs
 *           below that this host's KVM lists and reads, in that table's
 *           order (EFER and APIC_BASE are in sregs)
 *   events  (KVM_GET_VCPU_EVENTS) u8 exception injected, nr, has_error_code,
 *           pending, u32 error_code; u8 interrupt injected, nr, soft, shadow;
 *           u8 nmi injected, pending, masked; u32 sipi_vector; u32 flags;
 *           u8 smi smm, pending, smm_inside_nmi, latched_init; u8
 *           triple_fault_pending; u8 exception_has_payload; u64
 *           exception_payload
 *
 * "irqchip" v1: the two 8259s, master then slave, each 16 u8: last_irr irr
 *   imr isr priority_add irq_base read_reg_select poll special_mask
 *   init_state auto_eoi rotate_on_auto_eoi special_fully_nested_mode init4
 *   elcr elcr_mask; then the IOAPIC: u64 base_address, u32 ioregsel, u32
 *   id, u32 irr, 24 x u64 redirection table entries
 *
 * "pit" v1: 3 channels, each u32 count (0..0x10000), u16 latched_count, u8
 *   count_latched status_latched status read_state write_state write_latch
 *   rw_mode mode bcd gate, u64 count_load_time (host time: KVM_SET_PIT2
 *   restarts each count from now); then u32 flags
 *
 * "kvmclock" v1: u64 clock (ns: the guest's kvmclock when the VM was
 *   paused), u32 flags (KVM_GET_CLOCK's, for information)
 *
 * Checks on load: every count and size against its limit, flags and
 * enumerations against the values KVM defines, the vCPU index and LAPIC ID
 * against the section's vCPU, the APIC base's BSP bit (vCPU 0 only), RFLAGS
 * bit 1, MSRs only from the table (each once, in order), the IOAPIC at
 * 0xfec00000.  What only KVM can judge (a CR0/CR4 combination, an XSAVE
 * header) is left to its ioctls, whose errors name them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapshot.h"
#include "engine/kvm/state.h"

#ifndef KVM_PIT_FLAGS_SPEAKER_DATA_ON
#define KVM_PIT_FLAGS_SPEAKER_DATA_ON 0x00000002
#endif

#define LAPIC_ID_REG 0x20
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN (1ull << 11)
/* EFER bits KVM may hold: SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE, AUTOIBRS */
#define EFER_KNOWN 0x20fd01ull
#define EVENT_FLAGS_KNOWN (KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | \
                           KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |             \
                           KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define IOAPIC_BASE 0xfec00000ull
#define PIC_BYTES 16

/* The MSRs a snapshot carries, in the order they are written back. */
const struct kvm_snap_msr kvm_snap_msrs[] = {
    { 0x00000010, "TSC" },              /* first: TSC_DEADLINE is relative to it */
    { 0x0000003b, "TSC_ADJUST" },
    { 0x0000003a, "FEATURE_CONTROL" },
    { 0x00000048, "SPEC_CTRL" },
    { 0x00000174, "SYSENTER_CS" },
    { 0x00000175, "SYSENTER_ESP" },
    { 0x00000176, "SYSENTER_EIP" },
    { 0x000001a0, "MISC_ENABLE" },
    { 0x00000200, "MTRR_PHYSBASE0" }, { 0x00000201, "MTRR_PHYSMASK0" },
    { 0x00000202, "MTRR_PHYSBASE1" }, { 0x00000203, "MTRR_PHYSMASK1" },
    { 0x00000204, "MTRR_PHYSBASE2" }, { 0x00000205, "MTRR_PHYSMASK2" },
    { 0x00000206, "MTRR_PHYSBASE3" }, { 0x00000207, "MTRR_PHYSMASK3" },
    { 0x00000208, "MTRR_PHYSBASE4" }, { 0x00000209, "MTRR_PHYSMASK4" },
    { 0x0000020a, "MTRR_PHYSBASE5" }, { 0x0000020b, "MTRR_PHYSMASK5" },
    { 0x0000020c, "MTRR_PHYSBASE6" }, { 0x0000020d, "MTRR_PHYSMASK6" },
    { 0x0000020e, "MTRR_PHYSBASE7" }, { 0x0000020f, "MTRR_PHYSMASK7" },
    { 0x00000250, "MTRR_FIX64K_00000" },
    { 0x00000258, "MTRR_FIX16K_80000" }, { 0x00000259, "MTRR_FIX16K_A0000" },
    { 0x00000268, "MTRR_FIX4K_C0000" }, { 0x00000269, "MTRR_FIX4K_C8000" },
    { 0x0000026a, "MTRR_FIX4K_D0000" }, { 0x0000026b, "MTRR_FIX4K_D8000" },
    { 0x0000026c, "MTRR_FIX4K_E0000" }, { 0x0000026d, "MTRR_FIX4K_E8000" },
    { 0x0000026e, "MTRR_FIX4K_F0000" }, { 0x0000026f, "MTRR_FIX4K_F8000" },
    { 0x00000277, "PAT" },
    { 0x000002ff, "MTRR_DEF_TYPE" },
    { 0x00000da0, "XSS" },
    { 0xc0000081, "STAR" },
    { 0xc0000082, "LSTAR" },
    { 0xc0000083, "CSTAR" },
    { 0xc0000084, "SYSCALL_MASK" },
    { 0xc0000102, "KERNEL_GS_BASE" },
    { 0xc0000103, "TSC_AUX" },
    { 0x4b564d00, "KVM_WALL_CLOCK_NEW" },
    { 0x4b564d01, "KVM_SYSTEM_TIME_NEW" },
    { 0x4b564d06, "KVM_ASYNC_PF_INT" },  /* before ASYNC_PF_EN, which may enable it */
    { 0x4b564d02, "KVM_ASYNC_PF_EN" },
    { 0x4b564d03, "KVM_STEAL_TIME" },
    { 0x4b564d04, "KVM_PV_EOI_EN" },
    { 0x4b564d05, "KVM_POLL_CONTROL" },
    { 0x000006e0, "TSC_DEADLINE" },      /* last: after TSC (and after the LAPIC) */
};
#define NMSR (sizeof(kvm_snap_msrs) / sizeof(kvm_snap_msrs[0]))
const unsigned kvm_snap_nmsrs = NMSR;
_Static_assert(NMSR <= KVM_SNAP_MAX_MSRS, "KVM_SNAP_MAX_MSRS is too small");

int kvm_snap_msr_pos(uint32_t index)
{
    for (unsigned i = 0; i < NMSR; i++)
        if (kvm_snap_msrs[i].index == index)
            return (int)i;
    return -1;
}

const char *kvm_snap_msr_name(uint32_t index)
{
    int i = kvm_snap_msr_pos(index);
    return i < 0 ? "?" : kvm_snap_msrs[i].name;
}

const struct kvm_cpuid_entry2 *kvm_cpuid_leaf0(const struct kvm_cpuid_entry2 *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (c[i].function == 0 && c[i].index == 0)
            return &c[i];
    return NULL;
}

void kvm_cpu_state_free(struct kvm_cpu_state *s)
{
    if (s)
        free(s->xsave);
    free(s);
}

/* --- "cpu<N>" ------------------------------------------------------------ */

static void put_segment(struct snap_writer *w, const struct kvm_segment *g)
{
    snapw_u64(w, g->base);
    snapw_u32(w, g->limit);
    snapw_u16(w, g->selector);
    const uint8_t b[] = { g->type, g->present, g->dpl, g->db, g->s, g->l, g->g, g->avl,
                          g->unusable };
    snapw_bytes(w, b, sizeof(b));
}

static void put_dtable(struct snap_writer *w, const struct kvm_dtable *d)
{
    snapw_u64(w, d->base);
    snapw_u16(w, d->limit);
}

void kvm_cpu_write(struct snap_writer *w, const struct kvm_cpu_state *s)
{
    char name[SNAP_NAME_LEN];
    snprintf(name, sizeof(name), "cpu%u", s->index);
    snapw_section(w, name, KVM_SNAP_CPU_VERSION);
    snapw_u32(w, s->index);
    snapw_u32(w, s->tsc_khz);
    snapw_u32(w, s->mp.mp_state);
    snapw_u32(w, s->ncpuid);
    for (uint32_t i = 0; i < s->ncpuid; i++) {
        const struct kvm_cpuid_entry2 *c = &s->cpuid[i];
        const uint32_t f[] = { c->function, c->index, c->flags, c->eax, c->ebx, c->ecx, c->edx };
        for (unsigned j = 0; j < 7; j++)
            snapw_u32(w, f[j]);
    }
    const struct kvm_regs *r = &s->regs;
    const uint64_t gpr[] = { r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
                             r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
                             r->rip, r->rflags };
    for (unsigned i = 0; i < 18; i++)
        snapw_u64(w, gpr[i]);
    const struct kvm_sregs *sr = &s->sregs;
    const struct kvm_segment *seg[] = { &sr->cs, &sr->ds, &sr->es, &sr->fs, &sr->gs, &sr->ss,
                                        &sr->tr, &sr->ldt };
    for (unsigned i = 0; i < 8; i++)
        put_segment(w, seg[i]);
    put_dtable(w, &sr->gdt);
    put_dtable(w, &sr->idt);
    const uint64_t cr[] = { sr->cr0, sr->cr2, sr->cr3, sr->cr4, sr->cr8, sr->efer,
                            sr->apic_base };
    for (unsigned i = 0; i < 7; i++)
        snapw_u64(w, cr[i]);
    for (unsigned i = 0; i < 4; i++)
        snapw_u64(w, sr->interrupt_bitmap[i]);
    snapw_u8(w, s->has_xsave);
    if (s->has_xsave) {
        snapw_u32(w, s->xsave_size);
        snapw_bytes(w, s->xsave, s->xsave_size);
    } else {
        const struct kvm_fpu *f = &s->fpu;
        snapw_bytes(w, f->fpr, sizeof(f->fpr));
        snapw_u16(w, f->fcw);
        snapw_u16(w, f->fsw);
        snapw_u8(w, f->ftwx);
        snapw_u16(w, f->last_opcode);
        snapw_u64(w, f->last_ip);
        snapw_u64(w, f->last_dp);
        snapw_bytes(w, f->xmm, sizeof(f->xmm));
        snapw_u32(w, f->mxcsr);
    }
    snapw_u32(w, s->xcrs.nr_xcrs);
    for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
        snapw_u32(w, s->xcrs.xcrs[i].xcr);
        snapw_u64(w, s->xcrs.xcrs[i].value);
    }
    for (unsigned i = 0; i < 4; i++)
        snapw_u64(w, s->dbg.db[i]);
    snapw_u64(w, s->dbg.dr6);
    snapw_u64(w, s->dbg.dr7);
    snapw_bytes(w, s->lapic.regs, sizeof(s->lapic.regs));
    snapw_u32(w, s->nmsrs);
    for (uint32_t i = 0; i < s->nmsrs; i++) {
        snapw_u32(w, s->msrs[i].index);
        snapw_u64(w, s->msrs[i].data);
    }
    const struct kvm_vcpu_events *ev = &s->ev;
    const uint8_t b1[] = { ev->exception.injected, ev->exception.nr,
                           ev->exception.has_error_code, ev->exception.pending };
    snapw_bytes(w, b1, sizeof(b1));
    snapw_u32(w, ev->exception.error_code);
    const uint8_t b2[] = { ev->interrupt.injected, ev->interrupt.nr, ev->interrupt.soft,
                           ev->interrupt.shadow, ev->nmi.injected, ev->nmi.pending,
                           ev->nmi.masked };
    snapw_bytes(w, b2, sizeof(b2));
    snapw_u32(w, ev->sipi_vector);
    snapw_u32(w, ev->flags);
    const uint8_t b3[] = { ev->smi.smm, ev->smi.pending, ev->smi.smm_inside_nmi,
                           ev->smi.latched_init, ev->triple_fault.pending,
                           ev->exception_has_payload };
    snapw_bytes(w, b3, sizeof(b3));
    snapw_u64(w, ev->exception_payload);
}

static bool is_bool(uint8_t b) { return b <= 1; }

static void get_segment(struct snap_reader *r, struct kvm_segment *g)
{
    g->base = snapr_u64(r);
    g->limit = snapr_u32(r);
    g->selector = snapr_u16(r);
    uint8_t b[9];
    snapr_bytes(r, b, sizeof(b));
    g->type = b[0];
    g->present = b[1];
    g->dpl = b[2];
    g->db = b[3];
    g->s = b[4];
    g->l = b[5];
    g->g = b[6];
    g->avl = b[7];
    g->unusable = b[8];
    snapr_check(r, g->type <= 15 && g->dpl <= 3, "bad segment type or DPL");
    bool flags_ok = true;
    for (unsigned i = 1; i < 9; i++)
        flags_ok &= i == 2 || is_bool(b[i]);
    snapr_check(r, flags_ok, "bad segment flags");
}

static void get_dtable(struct snap_reader *r, struct kvm_dtable *d)
{
    d->base = snapr_u64(r);
    d->limit = snapr_u16(r);
}

int kvm_cpu_read(struct snap_reader *r, struct kvm_cpu_state *s, unsigned index, struct err *e)
{
    s->index = snapr_u32(r);
    snapr_check(r, s->index == index, "vCPU index differs from the section's name");
    s->tsc_khz = snapr_u32(r);
    s->mp.mp_state = snapr_u32(r);
    snapr_check(r, s->mp.mp_state <= KVM_MP_STATE_SIPI_RECEIVED, "bad MP state");
    s->ncpuid = snapr_u32(r);
    if (snapr_check(r, s->ncpuid >= 1 && s->ncpuid <= KVM_SNAP_MAX_CPUID, "bad CPUID entry count"))
        for (uint32_t i = 0; i < s->ncpuid && !r->fail; i++) {
            struct kvm_cpuid_entry2 *c = &s->cpuid[i];
            c->function = snapr_u32(r);
            c->index = snapr_u32(r);
            c->flags = snapr_u32(r);
            c->eax = snapr_u32(r);
            c->ebx = snapr_u32(r);
            c->ecx = snapr_u32(r);
            c->edx = snapr_u32(r);
            snapr_check(r, c->flags <= 7, "bad CPUID entry flags");
        }
    snapr_check(r, kvm_cpuid_leaf0(s->cpuid, s->ncpuid) != NULL, "CPUID without leaf 0");
    struct kvm_regs *g = &s->regs;
    __u64 *gpr[] = { &g->rax, &g->rbx, &g->rcx, &g->rdx, &g->rsi, &g->rdi, &g->rsp, &g->rbp,
                     &g->r8, &g->r9, &g->r10, &g->r11, &g->r12, &g->r13, &g->r14, &g->r15,
                     &g->rip, &g->rflags };
    for (unsigned i = 0; i < 18; i++)
        *gpr[i] = snapr_u64(r);
    snapr_check(r, (g->rflags & 2) && !(g->rflags >> 32), "bad RFLAGS");
    struct kvm_sregs *sr = &s->sregs;
    struct kvm_segment *seg[] = { &sr->cs, &sr->ds, &sr->es, &sr->fs, &sr->gs, &sr->ss,
                                  &sr->tr, &sr->ldt };
    for (unsigned i = 0; i < 8; i++)
        get_segment(r, seg[i]);
    get_dtable(r, &sr->gdt);
    get_dtable(r, &sr->idt);
    __u64 *cr[] = { &sr->cr0, &sr->cr2, &sr->cr3, &sr->cr4, &sr->cr8, &sr->efer,
                    &sr->apic_base };
    for (unsigned i = 0; i < 7; i++)
        *cr[i] = snapr_u64(r);
    unsigned pending = 0;
    for (unsigned i = 0; i < 4; i++) {
        sr->interrupt_bitmap[i] = snapr_u64(r);
        pending += (unsigned)__builtin_popcountll(sr->interrupt_bitmap[i]);
    }
    snapr_check(r, !(sr->cr0 >> 32) && sr->cr8 <= 15, "bad CR0 or CR8");
    snapr_check(r, !(sr->efer & ~EFER_KNOWN), "unknown EFER bits");
    snapr_check(r, !(sr->apic_base & 0x6ffull) &&
                   !!(sr->apic_base & APIC_BASE_BSP) == (index == 0) &&
                   (!(sr->apic_base & APIC_BASE_EXTD) || (sr->apic_base & APIC_BASE_EN)),
                "bad APIC base");
    snapr_check(r, pending <= 1, "more than one interrupt pending in sregs");
    uint8_t kind = snapr_u8(r);
    s->has_xsave = kind == 1;
    if (snapr_check(r, kind <= 1, "bad FPU state kind") && s->has_xsave) {
        s->xsave_size = snapr_u32(r);
        if (snapr_check(r, s->xsave_size >= KVM_SNAP_XSAVE_MIN && s->xsave_size <= KVM_SNAP_XSAVE_MAX &&
                           s->xsave_size % 4 == 0, "bad XSAVE area size") &&
            snapr_check(r, (s->xsave = calloc(1, s->xsave_size)) != NULL, "out of memory"))
            snapr_bytes(r, s->xsave, s->xsave_size);
    } else if (!r->fail && !r->bad[0]) {
        struct kvm_fpu *f = &s->fpu;
        snapr_bytes(r, f->fpr, sizeof(f->fpr));
        f->fcw = snapr_u16(r);
        f->fsw = snapr_u16(r);
        f->ftwx = snapr_u8(r);
        f->last_opcode = snapr_u16(r);
        f->last_ip = snapr_u64(r);
        f->last_dp = snapr_u64(r);
        snapr_bytes(r, f->xmm, sizeof(f->xmm));
        f->mxcsr = snapr_u32(r);
    }
    s->xcrs.nr_xcrs = snapr_u32(r);
    if (snapr_check(r, s->xcrs.nr_xcrs <= KVM_MAX_XCRS, "too many XCRs"))
        for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
            s->xcrs.xcrs[i].xcr = snapr_u32(r);
            s->xcrs.xcrs[i].value = snapr_u64(r);
            snapr_check(r, s->xcrs.xcrs[i].xcr != 0 || (s->xcrs.xcrs[i].value & 1),
                        "XCR0 without x87 state");
        }
    for (unsigned i = 0; i < 4; i++)
        s->dbg.db[i] = snapr_u64(r);
    s->dbg.dr6 = snapr_u64(r);
    s->dbg.dr7 = snapr_u64(r);
    snapr_check(r, !(s->dbg.dr6 >> 32) && !(s->dbg.dr7 >> 32), "bad DR6 or DR7");
    snapr_bytes(r, s->lapic.regs, sizeof(s->lapic.regs));
    uint32_t id;
    memcpy(&id, s->lapic.regs + LAPIC_ID_REG, 4);
    snapr_check(r, id >> 24 == index, "LAPIC ID differs from the vCPU's");
    s->nmsrs = snapr_u32(r);
    if (snapr_check(r, s->nmsrs <= NMSR, "too many MSRs")) {
        int last = -1;
        for (uint32_t i = 0; i < s->nmsrs; i++) {
            s->msrs[i] = (struct kvm_msr_entry){ .index = snapr_u32(r), .data = snapr_u64(r) };
            int pos = kvm_snap_msr_pos(s->msrs[i].index);
            /* known ones only, each once, in kvm_snap_msrs' order */
            if (!snapr_check(r, pos > last, "unknown, repeated or misordered MSR"))
                break;
            last = pos;
        }
    }
    struct kvm_vcpu_events *ev = &s->ev;
    uint8_t b1[4], b2[7], b3[6];
    snapr_bytes(r, b1, sizeof(b1));
    ev->exception.error_code = snapr_u32(r);
    snapr_bytes(r, b2, sizeof(b2));
    ev->sipi_vector = snapr_u32(r);
    ev->flags = snapr_u32(r);
    snapr_bytes(r, b3, sizeof(b3));
    ev->exception_payload = snapr_u64(r);
    ev->exception.injected = b1[0];
    ev->exception.nr = b1[1];
    ev->exception.has_error_code = b1[2];
    ev->exception.pending = b1[3];
    ev->interrupt.injected = b2[0];
    ev->interrupt.nr = b2[1];
    ev->interrupt.soft = b2[2];
    ev->interrupt.shadow = b2[3];
    ev->nmi.injected = b2[4];
    ev->nmi.pending = b2[5];
    ev->nmi.masked = b2[6];
    ev->smi.smm = b3[0];
    ev->smi.pending = b3[1];
    ev->smi.smm_inside_nmi = b3[2];
    ev->smi.latched_init = b3[3];
    ev->triple_fault.pending = b3[4];
    ev->exception_has_payload = b3[5];
    bool bools = is_bool(b1[0]) && is_bool(b1[2]) && is_bool(b1[3]) && is_bool(b2[0]) &&
                 is_bool(b2[2]) && is_bool(b2[4]) && is_bool(b2[5]) && is_bool(b2[6]);
    for (unsigned i = 0; i < sizeof(b3); i++)
        bools &= is_bool(b3[i]);
    snapr_check(r, bools, "bad vCPU event flags");
    snapr_check(r, !(ev->flags & ~EVENT_FLAGS_KNOWN), "unknown vCPU event flags");
    snapr_check(r, ev->exception.nr < 32 && ev->interrupt.shadow <= 3 && ev->sipi_vector <= 255,
                "bad vCPU event");
    return snapr_end(r, e);
}

/* --- "irqchip" ----------------------------------------------------------- */

static void pic_to_bytes(const struct kvm_pic_state *p, uint8_t b[PIC_BYTES])
{
    const uint8_t v[PIC_BYTES] = {
        p->last_irr, p->irr, p->imr, p->isr, p->priority_add, p->irq_base, p->read_reg_select,
        p->poll, p->special_mask, p->init_state, p->auto_eoi, p->rotate_on_auto_eoi,
        p->special_fully_nested_mode, p->init4, p->elcr, p->elcr_mask,
    };
    memcpy(b, v, PIC_BYTES);
}

static void pic_from_bytes(struct kvm_pic_state *p, const uint8_t b[PIC_BYTES])
{
    p->last_irr = b[0];
    p->irr = b[1];
    p->imr = b[2];
    p->isr = b[3];
    p->priority_add = b[4];
    p->irq_base = b[5];
    p->read_reg_select = b[6];
    p->poll = b[7];
    p->special_mask = b[8];
    p->init_state = b[9];
    p->auto_eoi = b[10];
    p->rotate_on_auto_eoi = b[11];
    p->special_fully_nested_mode = b[12];
    p->init4 = b[13];
    p->elcr = b[14];
    p->elcr_mask = b[15];
}

static bool pic_ok(const struct kvm_pic_state *p)
{
    const uint8_t flags[] = { p->read_reg_select, p->poll, p->special_mask, p->auto_eoi,
                              p->rotate_on_auto_eoi, p->special_fully_nested_mode, p->init4 };
    for (unsigned i = 0; i < sizeof(flags); i++)
        if (flags[i] > 1)
            return false;
    return (p->irq_base & 7) == 0 && p->priority_add <= 7 && p->init_state <= 3 &&
           !(p->elcr & ~p->elcr_mask);
}

void kvm_irqchip_write(struct snap_writer *w, const struct kvm_irqchip c[3])
{
    snapw_section(w, "irqchip", KVM_SNAP_IRQCHIP_VERSION);
    for (unsigned i = 0; i < 2; i++) {
        uint8_t b[PIC_BYTES];
        pic_to_bytes(&c[i].chip.pic, b);
        snapw_bytes(w, b, sizeof(b));
    }
    const struct kvm_ioapic_state *io = &c[2].chip.ioapic;
    snapw_u64(w, io->base_address);
    snapw_u32(w, io->ioregsel);
    snapw_u32(w, io->id);
    snapw_u32(w, io->irr);
    for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
        snapw_u64(w, io->redirtbl[i].bits);
}

int kvm_irqchip_read(struct snap_reader *r, struct kvm_irqchip c[3], struct err *e)
{
    memset(c, 0, 3 * sizeof(c[0]));
    for (uint32_t i = 0; i < 3; i++)
        c[i].chip_id = i;
    for (unsigned i = 0; i < 2; i++) {
        uint8_t b[PIC_BYTES];
        snapr_bytes(r, b, sizeof(b));
        pic_from_bytes(&c[i].chip.pic, b);
        snapr_check(r, pic_ok(&c[i].chip.pic), i ? "bad slave PIC state" : "bad master PIC state");
    }
    struct kvm_ioapic_state *io = &c[2].chip.ioapic;
    io->base_address = snapr_u64(r);
    io->ioregsel = snapr_u32(r);
    io->id = snapr_u32(r);
    io->irr = snapr_u32(r);
    for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
        io->redirtbl[i].bits = snapr_u64(r);
    snapr_check(r, io->base_address == IOAPIC_BASE, "IOAPIC not at 0xfec00000");
    snapr_check(r, io->ioregsel <= 0xff && io->id <= 0xf && !(io->irr >> KVM_IOAPIC_NUM_PINS),
                "bad IOAPIC registers");
    return snapr_end(r, e);
}

/* --- "pit" --------------------------------------------------------------- */

void kvm_pit_write(struct snap_writer *w, const struct kvm_pit_state2 *ps)
{
    snapw_section(w, "pit", KVM_SNAP_PIT_VERSION);
    for (unsigned i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *c = &ps->channels[i];
        snapw_u32(w, c->count);
        snapw_u16(w, c->latched_count);
        const uint8_t b[] = { c->count_latched, c->status_latched, c->status, c->read_state,
                              c->write_state, c->write_latch, c->rw_mode, c->mode, c->bcd,
                              c->gate };
        snapw_bytes(w, b, sizeof(b));
        snapw_u64(w, (uint64_t)c->count_load_time);
    }
    snapw_u32(w, ps->flags);
}

int kvm_pit_read(struct snap_reader *r, struct kvm_pit_state2 *ps, struct err *e)
{
    memset(ps, 0, sizeof(*ps));
    for (unsigned i = 0; i < 3; i++) {
        struct kvm_pit_channel_state *c = &ps->channels[i];
        c->count = snapr_u32(r);
        c->latched_count = snapr_u16(r);
        uint8_t b[10];
        snapr_bytes(r, b, sizeof(b));
        c->count_latched = b[0];
        c->status_latched = b[1];
        c->status = b[2];
        c->read_state = b[3];
        c->write_state = b[4];
        c->write_latch = b[5];
        c->rw_mode = b[6];
        c->mode = b[7];
        c->bcd = b[8];
        c->gate = b[9];
        c->count_load_time = (int64_t)snapr_u64(r);
        snapr_check(r, c->count <= 0x10000 && c->mode <= 5 && c->rw_mode <= 3 &&
                       c->count_latched <= 3 && c->read_state <= 4 && c->write_state <= 4 &&
                       c->status_latched <= 1 && c->bcd <= 1 && c->gate <= 1,
                    "bad PIT channel state");
    }
    ps->flags = snapr_u32(r);
    snapr_check(r, !(ps->flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY |
                                              KVM_PIT_FLAGS_SPEAKER_DATA_ON)),
                "unknown PIT flags");
    return snapr_end(r, e);
}

/* --- "kvmclock" ---------------------------------------------------------- */

void kvm_clock_write(struct snap_writer *w, const struct kvm_clock_data *c)
{
    snapw_section(w, "kvmclock", KVM_SNAP_CLOCK_VERSION);
    snapw_u64(w, c->clock);
    snapw_u32(w, c->flags);
}

int kvm_clock_read(struct snap_reader *r, struct kvm_clock_data *c, struct err *e)
{
    memset(c, 0, sizeof(*c));
    c->clock = snapr_u64(r);
    c->flags = snapr_u32(r);
    snapr_check(r, !(c->flags & ~(uint32_t)(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME |
                                             KVM_CLOCK_HOST_TSC)),
                "unknown kvmclock flags");
    snapr_check(r, c->clock < (1ull << 63), "bad kvmclock value");
    return snapr_end(r, e);
}
