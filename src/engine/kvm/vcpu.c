/* kvm: one vCPU: CPUID, initial registers, and the KVM_RUN loop. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/vm.h"
#include "engine/kvm/kvm.h"
#include "core/thread.h"

#define CPUID_MAX_ENTRIES 256
#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_AM 0x40000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int set_cpuid(struct kvm_vcpu *v, struct err *e)
{
    struct kvm_machine *k = v->k;
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, sz);
    if (!c)
        return err_set(e, -ENOMEM, "out of memory");
    c->nent = CPUID_MAX_ENTRIES;
    int ret = 0;
    if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        ret = err_set(e, -errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        goto out;
    }
    uint32_t apic_id = v->index;
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *en = &c->entries[i];
        switch (en->function) {
        case 1:
            /* initial APIC ID and logical processor count; hypervisor bit */
            en->ebx = (en->ebx & 0x0000ffffu) | (apic_id << 24) | ((k->nvcpus & 0xff) << 16);
            en->ecx |= 1u << 31;
            break;
        case 0xb:
        case 0x1f:
            /* x2APIC topology: one thread per core, all cores in one package */
            en->edx = apic_id;
            if (en->index == 0) {
                en->eax = 0;
                en->ebx = 1;
                en->ecx = (en->ecx & ~0xffu) | 0 | (1u << 8);
            } else if (en->index == 1) {
                unsigned shift = 0;
                while ((1u << shift) < k->nvcpus)
                    shift++;
                en->eax = shift;
                en->ebx = k->nvcpus;
                en->ecx = 1 | (2u << 8);
            } else {
                en->eax = en->ebx = 0;
                en->ecx = en->index;
            }
            break;
        default:
            break;
        }
    }
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
        ret = err_set(e, -errno, "KVM_SET_CPUID2 on vCPU %u: %s", v->index, strerror(errno));
out:
    free(c);
    return ret;
}

/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as on a PC. */
static int set_lint(struct kvm_vcpu *v, struct err *e)
{
    struct kvm_lapic_state lapic;
    if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
        return err_set(e, -errno, "KVM_GET_LAPIC: %s", strerror(errno));
    uint32_t lint0, lint1;
    memcpy(&lint0, lapic.regs + APIC_LVT_LINT0, 4);
    memcpy(&lint1, lapic.regs + APIC_LVT_LINT1, 4);
    lint0 = (lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    lint1 = (lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(lapic.regs + APIC_LVT_LINT0, &lint0, 4);
    memcpy(lapic.regs + APIC_LVT_LINT1, &lint1, 4);
    if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
        return err_set(e, -errno, "KVM_SET_LAPIC: %s", strerror(errno));
    return 0;
}

static struct kvm_segment flat_segment(uint16_t sel, uint8_t type, int l, int db)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                                 .present = 1, .dpl = 0, .db = (uint8_t)db, .s = 1,
                                 .l = (uint8_t)l, .g = 1 };
}

static int set_entry_state(struct kvm_vcpu *v, const struct x86_entry *en, struct err *e)
{
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return err_set(e, -errno, "KVM_GET_SREGS: %s", strerror(errno));
    struct kvm_segment data = flat_segment(0x10, 3, 0, 1);
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = en->gdt_base;
    s.gdt.limit = en->gdt_limit;
    if (en->mode == X86_ENTRY_LONG64) {
        s.cs = flat_segment(0x08, 11, 1, 0);
        s.cr3 = en->cr3;
        s.cr4 = CR4_PAE;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        s.efer = EFER_LME | EFER_LMA;
    } else {
        s.cs = flat_segment(0x18, 11, 0, 1);
        s.cr0 = CR0_PE | CR0_ET;
        s.cr4 = 0;
        s.efer = 0;
    }
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
        return err_set(e, -errno, "KVM_SET_SREGS: %s", strerror(errno));
    struct kvm_regs r = { .rip = en->rip, .rsi = en->rsi, .rbx = en->rbx, .rflags = 2 };
    if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
        return err_set(e, -errno, "KVM_SET_REGS: %s", strerror(errno));
    struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        return err_set(e, -errno, "KVM_SET_FPU: %s", strerror(errno));
    return 0;
}

int kvm_vcpu_setup(struct kvm_vcpu *v, const struct x86_entry *entry, struct err *e)
{
    int ret = set_cpuid(v, e);
    if (ret == 0)
        ret = set_lint(v, e);
    if (ret == 0 && entry)
        ret = set_entry_state(v, entry, e);
    return ret;
}

/* --- exits ------------------------------------------------------------ */

static void end_run(struct kvm_machine *k, enum vm_exit_reason r)
{
    pthread_mutex_lock(k->dev_lock);
    vm_request_exit(k->vm, r, 0);
    pthread_mutex_unlock(k->dev_lock);
}

static void handle_io(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    struct kvm_machine *k = v->k;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    pthread_mutex_lock(k->dev_lock);
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        uint64_t val = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, data, size);
            bus_write(k->pio, run->io.port, size, val); /* unassigned: ignored */
        } else {
            if (bus_read(k->pio, run->io.port, size, &val) < 0)
                val = ~0ull; /* unassigned ports float high */
            memcpy(data, &val, size);
        }
    }
    pthread_mutex_unlock(k->dev_lock);
}

static void handle_mmio(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    struct kvm_machine *k = v->k;
    unsigned len = run->mmio.len;
    if (len == 0 || len > 8)
        return;
    uint64_t val = 0;
    pthread_mutex_lock(k->dev_lock);
    if (run->mmio.is_write) {
        memcpy(&val, run->mmio.data, len);
        bus_write(k->mmio, run->mmio.phys_addr, len, val);
    } else {
        if (bus_read(k->mmio, run->mmio.phys_addr, len, &val) < 0)
            val = ~0ull;
        memcpy(run->mmio.data, &val, len);
    }
    pthread_mutex_unlock(k->dev_lock);
}

/* Instruction bytes at the guest's RIP (through its page tables). */
static int read_insn(struct kvm_vcpu *v, uint64_t rip, uint8_t *buf, unsigned len)
{
    struct kvm_translation t = { .linear_address = rip };
    if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
        return -1;
    /* stay within the page; the bytes after it are not needed here */
    unsigned in_page = 4096 - (unsigned)(t.physical_address & 4095);
    if (len > in_page)
        len = in_page;
    const uint8_t *p = gmem_ptr(&v->k->vm->mem, t.physical_address, len);
    if (!p)
        return -1;
    memcpy(buf, p, len);
    return (int)len;
}

/* Guest-linear access through the vCPU's page tables, within one page. */
static int access_linear(struct kvm_vcpu *v, uint64_t la, void *buf, unsigned len, bool write)
{
    struct kvm_translation t = { .linear_address = la };
    if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid ||
        (t.physical_address & 4095) + len > 4096 || (write && !t.writeable))
        return -1;
    uint8_t *p = gmem_ptr(&v->k->vm->mem, t.physical_address, len);
    if (!p)
        return -1;
    if (write) {
        memcpy(p, buf, len);
        gmem_mark_dirty(&v->k->vm->mem, t.physical_address, len);  /* diff snapshots */
    } else
        memcpy(buf, p, len);
    return 0;
}

/* Effective address of a ModRM memory operand in 64-bit mode.  p points at
 * the ModRM byte; returns the operand's length in bytes (ModRM, SIB,
 * displacement), or 0 for a register operand or truncated input. */
static unsigned modrm_address(const struct kvm_regs *r, uint8_t rex, const uint8_t *p,
                              unsigned avail, uint64_t next_rip_base, uint64_t *addr)
{
    const uint64_t gpr[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
                               r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
    if (avail < 1)
        return 0;
    unsigned mod = p[0] >> 6, rm = p[0] & 7, len = 1;
    if (mod == 3)
        return 0;
    uint64_t a = 0;
    bool rip_rel = false;
    if (rm == 4) {
        if (avail < 2)
            return 0;
        uint8_t sib = p[1];
        unsigned idx = ((sib >> 3) & 7) | ((rex & 2) ? 8 : 0);
        unsigned base = (sib & 7) | ((rex & 1) ? 8 : 0);
        len = 2;
        if (idx != 4)
            a += gpr[idx] << (sib >> 6);
        if ((sib & 7) == 5 && mod == 0)
            mod = 2; /* disp32, no base */
        else
            a += gpr[base];
    } else if (rm == 5 && mod == 0) {
        rip_rel = true;
        mod = 2;
    } else {
        a = gpr[rm | ((rex & 1) ? 8 : 0)];
    }
    unsigned dsize = mod == 1 ? 1 : mod == 2 ? 4 : 0;
    if (avail < len + dsize)
        return 0;
    int64_t disp = dsize == 1 ? (int8_t)p[len] : 0;
    if (dsize == 4) {
        int32_t d32;
        memcpy(&d32, p + len, 4);
        disp = d32;
    }
    len += dsize;
    a += (uint64_t)disp;
    if (rip_rel)
        a += next_rip_base + len; /* relative to the end of the instruction */
    *addr = a;
    return len;
}

/* `ldmxcsr m32` / `stmxcsr m32` (0F AE /2, /3): PVM cannot emulate them
 * in guest kernel mode, and Linux issues ldmxcsr in kernel_fpu_begin(), so
 * do them here.  Anything unusual (reserved MXCSR bits, an operand that
 * crosses a page or isn't mapped) is left to the failure path. */
static bool emulate_mxcsr(struct kvm_vcpu *v, struct kvm_regs *r, const uint8_t *insn,
                          unsigned n)
{
    unsigned i = 0;
    uint8_t rex = 0;
    if (i < n && insn[i] >= 0x40 && insn[i] <= 0x4f)
        rex = insn[i++];
    if (i + 3 > n || insn[i] != 0x0f || insn[i + 1] != 0xae)
        return false;
    unsigned op = (insn[i + 2] >> 3) & 7;
    if (op != 2 && op != 3)
        return false;
    i += 2;
    uint64_t addr;
    unsigned oplen = modrm_address(r, rex, insn + i, n - i, r->rip + i, &addr);
    if (!oplen)
        return false;
    /* MXCSR lives at byte 24 of the XSAVE legacy region (region[6]) */
    struct kvm_xsave xs;
    if (ioctl(v->fd, KVM_GET_XSAVE, &xs) < 0)
        return false;
    if (op == 2) {
        uint32_t mxcsr;
        if (access_linear(v, addr, &mxcsr, 4, false) < 0 || (mxcsr & 0xffff0000u))
            return false;
        xs.region[6] = mxcsr;
        /* XSTATE_BV (header at byte 512): mark the SSE state present, or a
         * guest still in the init state would get the default MXCSR back */
        xs.region[128] |= 2;
        if (ioctl(v->fd, KVM_SET_XSAVE, &xs) < 0)
            return false;
    } else if (access_linear(v, addr, &xs.region[6], 4, true) < 0) {
        return false;
    }
    r->rip += i + oplen;
    return ioctl(v->fd, KVM_SET_REGS, r) == 0;
}

/* PVM's instruction emulator lacks some instructions (HOST-NOTES.md).
 * Returns true if the vCPU can go on. */
static bool handle_emulation_failure(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    struct kvm_regs r;
    uint8_t insn[16];
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
        return false;
    int n = read_insn(v, r.rip, insn, sizeof(insn));
    if (k->pvm && n >= 1 && insn[0] == 0xcc) { /* int3: deliver the #BP ourselves */
        struct kvm_vcpu_events ev;
        if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
            r.rip += 1;
            ev.exception.injected = 1;
            ev.exception.nr = 3;
            ev.exception.has_error_code = 0;
            ev.flags = 0;
            if (ioctl(v->fd, KVM_SET_REGS, &r) == 0 && ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) == 0)
                return true;
        }
    }
    if (k->pvm && n >= 1 && insn[0] == 0x9b) { /* fwait: nothing to wait for */
        r.rip += 1;
        return ioctl(v->fd, KVM_SET_REGS, &r) == 0;
    }
    if (k->pvm && n >= 3 && emulate_mxcsr(v, &r, insn, (unsigned)n))
        return true;
    char bytes[3 * sizeof(insn) + 1] = "";
    for (int i = 0; i < n; i++)
        snprintf(bytes + 3 * i, 4, " %02x", insn[i]);
    pthread_mutex_lock(k->dev_lock);
    console_flush(&k->vm->con);
    log_error("vCPU %u: KVM could not emulate the instruction at RIP 0x%llx:%s%s", v->index,
              (unsigned long long)r.rip, n > 0 ? bytes : " (unreadable)",
              k->pvm ? " (this host's /dev/kvm is PVM, see HOST-NOTES)" : "");
    vm_request_exit(k->vm, VM_EXIT_ERROR, 0);
    pthread_mutex_unlock(k->dev_lock);
    return false;
}

static bool should_stop(struct kvm_vcpu *v)
{
    return __atomic_load_n(&v->k->stop_req, __ATOMIC_SEQ_CST) != 0;
}

static void run_failed(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    int err = errno;
    pthread_mutex_lock(k->dev_lock);
    log_error("vCPU %u: KVM_RUN: %s", v->index, strerror(err));
    vm_request_exit(k->vm, VM_EXIT_ERROR, 0);
    pthread_mutex_unlock(k->dev_lock);
}

/* Handle the exit KVM_RUN returned.  false: the thread ends. */
static bool handle_exit(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(v);
        v->io_pending = true;
        return true;
    case KVM_EXIT_MMIO:
        handle_mmio(v);
        v->io_pending = true;
        return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT:
        return true;
    case KVM_EXIT_SHUTDOWN: /* triple fault: a PC resets */
        log_info("vCPU %u: triple fault, resetting", v->index);
        end_run(k, VM_EXIT_REBOOT);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: end_run(k, VM_EXIT_POWEROFF); break;
        case KVM_SYSTEM_EVENT_RESET: end_run(k, VM_EXIT_REBOOT); break;
        default: end_run(k, VM_EXIT_PANIC); break;
        }
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
            handle_emulation_failure(v))
            return true;
        if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
            pthread_mutex_lock(k->dev_lock);
            log_error("vCPU %u: KVM internal error, suberror %u", v->index,
                      run->internal.suberror);
            vm_request_exit(k->vm, VM_EXIT_ERROR, 0);
            pthread_mutex_unlock(k->dev_lock);
        }
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        pthread_mutex_lock(k->dev_lock);
        log_error("vCPU %u: KVM entry failed, hardware reason 0x%llx", v->index,
                  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vm_request_exit(k->vm, VM_EXIT_ERROR, 0);
        pthread_mutex_unlock(k->dev_lock);
        return false;
    default:
        pthread_mutex_lock(k->dev_lock);
        log_error("vCPU %u: unexpected KVM exit reason %u", v->index, run->exit_reason);
        vm_request_exit(k->vm, VM_EXIT_ERROR, 0);
        pthread_mutex_unlock(k->dev_lock);
        return false;
    }
}

/* Before parking.  A port I/O or MMIO exit is finished (the IN's or the
 * load's value in the guest's register, RIP past the instruction) only
 * when KVM_RUN is entered again, and KVM keeps that pending work where
 * KVM_GET_REGS and friends cannot see it.  Entering with immediate_exit set
 * makes KVM finish it and return EINTR without running guest code, so a
 * parked vCPU's registers are consistent (snapshots) and no device access
 * is repeated.  A string instruction may exit again: bounded loop.
 * false: the thread ends. */
static bool complete_io(struct kvm_vcpu *v)
{
    for (unsigned n = 0; v->io_pending; n++) {
        if (n == 4096) {
            log_warn("vCPU %u: a port or MMIO access still pending after %u completions; "
                     "parking anyway", v->index, n);
            break;
        }
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        int r = ioctl(v->fd, KVM_RUN, 0);
        v->io_pending = false;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return true;
            run_failed(v);
            return false;
        }
        v->exits++;
        if (!handle_exit(v))
            return false;
    }
    return true;
}

static void *vcpu_loop(struct kvm_vcpu *v);

void *kvm_vcpu_thread(void *arg)
{
    struct kvm_vcpu *v = arg;
    thread_ready(THREAD_VCPU, v->index);
    vcpu_loop(v);
    kvm_vcpu_ended(v);
    return NULL;
}

static void *vcpu_loop(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    bool first = v->index == 0;
    while (!should_stop(v)) {
        if (__atomic_load_n(&k->pause_req, __ATOMIC_SEQ_CST)) {
            if (!complete_io(v))
                return NULL;
            kvm_vcpu_park(v);
            continue;
        }
        int r = ioctl(v->fd, KVM_RUN, 0);
        v->io_pending = false;
        v->exits++;
        if (first) {
            first = false;
            log_info("vCPU 0: first exit to the VMM %.3f ms after start",
                     (double)(time_now_ns() - k->vm->start_ns) / 1e6);
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            run_failed(v);
            break;
        }
        if (!handle_exit(v))
            return NULL;
    }
    return NULL;
}
