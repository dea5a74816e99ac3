/* kvm: one vCPU's state for snapshots (section "cpu<N>", layout in
 * state_format.c): read from KVM, and written back.
 *
 * Saving reads KVM_GET_MP_STATE first (it makes KVM accept pending INIT/
 * SIPI events, which changes the rest) and the vCPU events last.  Loading
 * reads and checks the whole section, then what this host must have
 * (XSAVE size, XCRs, the CPU vendor), then applies it in the order KVM
 * needs: CPUID (what MSRs and XSAVE components exist), TSC frequency,
 * sregs (CR0/CR4/EFER, and the APIC base, which sets the LAPIC's mode),
 * regs, XCRs and XSAVE/FPU, debug registers, LAPIC (after the APIC base),
 * MSRs (after the LAPIC: the TSC deadline only sticks in TSC-deadline
 * mode; TSC before TSC_DEADLINE), vCPU events (after regs: KVM_SET_REGS
 * drops a pending exception), MP state last.
 *
 * Not saved: nested virtualization state (a vCPU with VMX or SVM turned on,
 * i.e. a guest running VMs of its own, fails the save), SMM state beyond
 * the events' flags, performance counters, MSRs outside kvm_snap_msrs.
 * The CPUID restored is the snapshot's; only the vendor is compared with
 * this host's (a host without a feature the guest was shown breaks the
 * guest). */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/snapshot.h"
#include "core/vm.h"
#include "engine/kvm/kvm.h"
#include "engine/kvm/state.h"

#define CR4_VMXE (1ull << 13)
#define EFER_SVME (1ull << 12)
#define NMSR kvm_snap_nmsrs

static bool has_cap(struct kvm_machine *k, int cap)
{
    return ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

/* This host's XSAVE area size for this VM, 0 without KVM_CAP_XSAVE. */
static uint32_t host_xsave_size(struct kvm_machine *k)
{
    if (!has_cap(k, KVM_CAP_XSAVE))
        return 0;
    int n = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return n > (int)KVM_SNAP_XSAVE_MIN ? (uint32_t)n : KVM_SNAP_XSAVE_MIN;
}

/* The vCPU state ioctls Petrel needs beyond the basic ones. */
static int check_caps(struct kvm_machine *k, struct err *e)
{
    static const struct { int cap; const char *name; } need[] = {
        { KVM_CAP_MP_STATE, "MP_STATE" }, { KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS" },
        { KVM_CAP_DEBUGREGS, "DEBUGREGS" }, { KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK" },
    };
    for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!has_cap(k, need[i].cap))
            return err_set(e, -ENOTSUP, "this host's KVM lacks KVM_CAP_%s, which snapshots need",
                           need[i].name);
    return 0;
}

/* KVM_GET_MSR_INDEX_LIST, once per machine. */
static int msr_index_list(struct kvm_machine *k, struct err *e)
{
    if (k->msr_index)
        return 0;
    struct kvm_msr_list probe = { .nmsrs = 0 };
    if (ioctl(k->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return err_set(e, -errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
    if (probe.nmsrs > 65536)
        return err_set(e, -EINVAL, "KVM_GET_MSR_INDEX_LIST: %u MSRs", probe.nmsrs);
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
    if (!l)
        return err_set(e, -ENOMEM, "out of memory");
    l->nmsrs = probe.nmsrs;
    if (ioctl(k->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        int ret = err_set(e, -errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        free(l);
        return ret;
    }
    k->msr_index = l;
    return 0;
}

static bool host_lists_msr(const struct kvm_machine *k, uint32_t index)
{
    for (uint32_t i = 0; i < k->msr_index->nmsrs; i++)
        if (k->msr_index->indices[i] == index)
            return true;
    return false;
}

/* KVM_GET_MSRS / KVM_SET_MSRS on n entries; the number done, or -errno. */
static int msrs_ioctl(struct kvm_vcpu *v, unsigned long req, struct kvm_msr_entry *ent, unsigned n)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*ent));
    if (!m)
        return -ENOMEM;
    m->nmsrs = n;
    memcpy(m->entries, ent, n * sizeof(*ent));
    int r = ioctl(v->fd, req, m);
    if (r < 0)
        r = -errno;
    else
        memcpy(ent, m->entries, n * sizeof(*ent));
    free(m);
    return r;
}

static int vcpu_cpuid(struct kvm_vcpu *v, struct kvm_cpuid_entry2 *out, uint32_t *n, struct err *e)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + KVM_SNAP_MAX_CPUID * sizeof(c->entries[0]));
    if (!c)
        return err_set(e, -ENOMEM, "out of memory");
    c->nent = KVM_SNAP_MAX_CPUID;
    int ret = 0;
    if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0)
        ret = err_set(e, -errno, "KVM_GET_CPUID2 on vCPU %u: %s", v->index, strerror(errno));
    else if (c->nent > KVM_SNAP_MAX_CPUID)
        ret = err_set(e, -EINVAL, "KVM_GET_CPUID2 on vCPU %u: %u entries", v->index, c->nent);
    else {
        memcpy(out, c->entries, c->nent * sizeof(c->entries[0]));
        *n = c->nent;
    }
    free(c);
    return ret;
}

/* The vendor string of CPUID leaf 0, printable, for messages. */
static void vendor(const struct kvm_cpuid_entry2 *l0, char out[13])
{
    memset(out, 0, 13);
    if (!l0) {
        strcpy(out, "unknown");
        return;
    }
    const uint32_t v[3] = { l0->ebx, l0->edx, l0->ecx };
    memcpy(out, v, 12);
    for (unsigned i = 0; i < 12; i++)
        if (out[i] < 0x20 || out[i] > 0x7e)
            out[i] = '?';
}

/* --- save --------------------------------------------------------------- */

#define GET(req, arg, what)                                                              \
    do {                                                                                 \
        if (ioctl(v->fd, req, arg) < 0)                                                  \
            return err_set(e, -errno, what " on vCPU %u: %s", v->index, strerror(errno)); \
    } while (0)

static int get_msrs(struct kvm_vcpu *v, struct kvm_cpu_state *s, struct err *e)
{
    int ret = msr_index_list(v->k, e);
    if (ret < 0)
        return ret;
    s->nmsrs = 0;
    for (unsigned i = 0; i < NMSR; i++)
        if (host_lists_msr(v->k, kvm_snap_msrs[i].index))
            s->msrs[s->nmsrs++] = (struct kvm_msr_entry){ .index = kvm_snap_msrs[i].index };
    /* KVM stops at the first MSR it refuses (one it lists but this vCPU
     * does not have, given its CPUID): leave that one out and go on */
    for (;;) {
        int r = msrs_ioctl(v, KVM_GET_MSRS, s->msrs, s->nmsrs);
        if (r < 0)
            return err_set(e, r, "KVM_GET_MSRS on vCPU %u: %s", v->index, strerror(-r));
        if ((unsigned)r >= s->nmsrs)
            return 0;
        log_debug("vCPU %u: MSR %s (0x%x) not readable, not saved", v->index,
                  kvm_snap_msr_name(s->msrs[r].index), s->msrs[r].index);
        memmove(&s->msrs[r], &s->msrs[r + 1], (s->nmsrs - (unsigned)r - 1) * sizeof(s->msrs[0]));
        s->nmsrs--;
    }
}

static int cpu_get(struct kvm_vcpu *v, struct kvm_cpu_state *s, struct err *e)
{
    struct kvm_machine *k = v->k;
    s->index = v->index;
    GET(KVM_GET_MP_STATE, &s->mp, "KVM_GET_MP_STATE");     /* first, see above */
    GET(KVM_GET_REGS, &s->regs, "KVM_GET_REGS");
    GET(KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS");
    if ((s->sregs.cr4 & CR4_VMXE) || (s->sregs.efer & EFER_SVME))
        return err_set(e, -ENOTSUP, "vCPU %u has %s turned on (the guest runs VMs of its own): "
                       "snapshots do not carry nested virtualization state", v->index,
                       (s->sregs.cr4 & CR4_VMXE) ? "VMX" : "SVM");
    uint32_t xs = host_xsave_size(k);
    if (xs) {
        s->has_xsave = true;
        s->xsave_size = xs;
        if (!(s->xsave = calloc(1, xs)))
            return err_set(e, -ENOMEM, "out of memory");
        if (xs > KVM_SNAP_XSAVE_MIN)
            GET(KVM_GET_XSAVE2, s->xsave, "KVM_GET_XSAVE2");
        else
            GET(KVM_GET_XSAVE, s->xsave, "KVM_GET_XSAVE");
    } else {
        GET(KVM_GET_FPU, &s->fpu, "KVM_GET_FPU");
    }
    if (has_cap(k, KVM_CAP_XCRS)) {
        GET(KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS");
        if (s->xcrs.nr_xcrs > KVM_MAX_XCRS)
            return err_set(e, -EINVAL, "KVM_GET_XCRS on vCPU %u: %u XCRs", v->index,
                           s->xcrs.nr_xcrs);
    }
    GET(KVM_GET_DEBUGREGS, &s->dbg, "KVM_GET_DEBUGREGS");
    GET(KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC");
    if (has_cap(k, KVM_CAP_GET_TSC_KHZ)) {
        int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
        s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
    }
    int ret = vcpu_cpuid(v, s->cpuid, &s->ncpuid, e);
    if (ret == 0)
        ret = get_msrs(v, s, e);
    if (ret < 0)
        return ret;
    GET(KVM_GET_VCPU_EVENTS, &s->ev, "KVM_GET_VCPU_EVENTS");   /* last */
    return 0;
}

void kvm_vcpu_save(struct kvm_vcpu *v, struct snap_writer *w)
{
    struct err e;
    struct kvm_cpu_state *s = calloc(1, sizeof(*s));
    int ret = s ? check_caps(v->k, &e) : err_set(&e, -ENOMEM, "out of memory");
    if (ret == 0)
        ret = cpu_get(v, s, &e);
    if (ret < 0)
        snapw_fail(w, ret, "%s", e.msg);
    else
        kvm_cpu_write(w, s);
    kvm_cpu_state_free(s);
}

/* --- load --------------------------------------------------------------- */

/* What the snapshot needs of this host, checked before anything is applied. */
static int cpu_check_host(struct kvm_vcpu *v, const struct kvm_cpu_state *s, const char *name,
                          struct err *e)
{
    struct kvm_machine *k = v->k;
    uint32_t xs = host_xsave_size(k);
    if (s->has_xsave && s->xsave_size > xs)
        return err_set(e, -EINVAL, "%s: the snapshot has an XSAVE area of %u bytes; this host's "
                       "KVM %s", name, s->xsave_size,
                       xs ? "has a smaller one" : "has no XSAVE (KVM_CAP_XSAVE)");
    if (s->xcrs.nr_xcrs && !has_cap(k, KVM_CAP_XCRS))
        return err_set(e, -EINVAL, "%s: the snapshot has XCRs; this host's KVM lacks "
                       "KVM_CAP_XCRS", name);
    /* the guest keeps the CPUID it booted with; it must be the same vendor's CPU */
    struct kvm_cpuid_entry2 *now = calloc(KVM_SNAP_MAX_CPUID, sizeof(*now));
    uint32_t n = 0;
    if (!now)
        return err_set(e, -ENOMEM, "out of memory");
    int ret = vcpu_cpuid(v, now, &n, e);
    const struct kvm_cpuid_entry2 *was = kvm_cpuid_leaf0(s->cpuid, s->ncpuid), *is = kvm_cpuid_leaf0(now, n);
    if (ret == 0 && (!is || was->ebx != is->ebx || was->ecx != is->ecx || was->edx != is->edx)) {
        char a[13], b[13];
        vendor(was, a);
        vendor(is, b);
        ret = err_set(e, -EINVAL, "%s: the snapshot was taken on a %s CPU; this host's is %s",
                      name, a, b);
    }
    free(now);
    return ret;
}

#define SET(req, arg, what)                                                              \
    do {                                                                                 \
        if (ioctl(v->fd, req, arg) < 0)                                                  \
            return err_set(e, -errno, "restoring vCPU %u: " what ": %s", v->index,        \
                           strerror(errno));                                             \
    } while (0)

static int set_cpuid(struct kvm_vcpu *v, const struct kvm_cpu_state *s, struct err *e)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->ncpuid * sizeof(c->entries[0]));
    if (!c)
        return err_set(e, -ENOMEM, "out of memory");
    c->nent = s->ncpuid;
    memcpy(c->entries, s->cpuid, s->ncpuid * sizeof(c->entries[0]));
    int ret = 0;
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
        ret = err_set(e, -errno, "restoring vCPU %u: KVM_SET_CPUID2 (%u entries): %s", v->index,
                      s->ncpuid, strerror(errno));
    free(c);
    return ret;
}

/* The guest's TSC ticks at the snapshot's rate: KVM scales it when this
 * host's differs by more than KVM's own tolerance (250 ppm). */
static int set_tsc_khz(struct kvm_vcpu *v, const struct kvm_cpu_state *s, struct err *e)
{
    struct kvm_machine *k = v->k;
    if (!s->tsc_khz || !has_cap(k, KVM_CAP_GET_TSC_KHZ))
        return 0;
    int now = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    if (now <= 0)
        return err_set(e, now < 0 ? -errno : -EINVAL, "restoring vCPU %u: KVM_GET_TSC_KHZ: %s",
                       v->index, now < 0 ? strerror(errno) : "no frequency");
    uint64_t diff = (uint64_t)now > s->tsc_khz ? (uint64_t)now - s->tsc_khz
                                               : s->tsc_khz - (uint64_t)now;
    if (diff * 4000 <= s->tsc_khz)
        return 0;
    if (!has_cap(k, KVM_CAP_TSC_CONTROL))
        return err_set(e, -EINVAL, "vCPU %u: the snapshot's TSC runs at %u kHz, this host's at "
                       "%d kHz, and its KVM cannot scale it (no KVM_CAP_TSC_CONTROL)", v->index,
                       s->tsc_khz, now);
    SET(KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz, "KVM_SET_TSC_KHZ");
    return 0;
}

/* KVM stops at an MSR it refuses.  One whose value the fresh vCPU already
 * has (e.g. steal time off, on a host that cannot do steal time) is
 * skipped; any other is an error naming it. */
static int set_msrs(struct kvm_vcpu *v, const struct kvm_cpu_state *s, struct err *e)
{
    struct kvm_msr_entry ent[KVM_SNAP_MAX_MSRS];
    unsigned n = s->nmsrs, done = 0;
    memcpy(ent, s->msrs, n * sizeof(ent[0]));
    while (done < n) {
        int r = msrs_ioctl(v, KVM_SET_MSRS, ent + done, n - done);
        if (r < 0)
            return err_set(e, r, "restoring vCPU %u: KVM_SET_MSRS: %s", v->index, strerror(-r));
        done += (unsigned)r;
        if (done == n)
            break;
        struct kvm_msr_entry cur = { .index = ent[done].index };
        if (msrs_ioctl(v, KVM_GET_MSRS, &cur, 1) != 1 || cur.data != ent[done].data)
            return err_set(e, -EINVAL, "restoring vCPU %u: KVM_SET_MSRS refused MSR %s (0x%x) = "
                           "0x%llx", v->index, kvm_snap_msr_name(ent[done].index), ent[done].index,
                           (unsigned long long)ent[done].data);
        log_debug("vCPU %u: MSR %s (0x%x) refused, but already 0x%llx", v->index,
                  kvm_snap_msr_name(ent[done].index), ent[done].index, (unsigned long long)cur.data);
        done++;
    }
    return 0;
}

static int cpu_apply(struct kvm_vcpu *v, struct kvm_cpu_state *s, struct err *e)
{
    struct kvm_machine *k = v->k;
    int ret;
    if ((ret = set_cpuid(v, s, e)) < 0 || (ret = set_tsc_khz(v, s, e)) < 0)
        return ret;
    SET(KVM_SET_SREGS, &s->sregs, "KVM_SET_SREGS");
    SET(KVM_SET_REGS, &s->regs, "KVM_SET_REGS");
    if (s->xcrs.nr_xcrs)
        SET(KVM_SET_XCRS, &s->xcrs, "KVM_SET_XCRS");
    if (s->has_xsave) {
        /* KVM reads its own size: pad a smaller area with zeroes (the
         * XSAVE header says which components it holds) */
        uint32_t xs = host_xsave_size(k);
        struct kvm_xsave *buf = calloc(1, xs);
        if (!buf)
            return err_set(e, -ENOMEM, "out of memory");
        memcpy(buf, s->xsave, s->xsave_size);
        ret = ioctl(v->fd, KVM_SET_XSAVE, buf) < 0 ? -errno : 0;
        free(buf);
        if (ret < 0)
            return err_set(e, ret, "restoring vCPU %u: KVM_SET_XSAVE: %s", v->index,
                           strerror(-ret));
    } else {
        SET(KVM_SET_FPU, &s->fpu, "KVM_SET_FPU");
    }
    SET(KVM_SET_DEBUGREGS, &s->dbg, "KVM_SET_DEBUGREGS");
    SET(KVM_SET_LAPIC, &s->lapic, "KVM_SET_LAPIC");
    if ((ret = set_msrs(v, s, e)) < 0)
        return ret;
    SET(KVM_SET_VCPU_EVENTS, &s->ev, "KVM_SET_VCPU_EVENTS");
    SET(KVM_SET_MP_STATE, &s->mp, "KVM_SET_MP_STATE");
    return 0;
}

int kvm_vcpu_load(struct kvm_vcpu *v, struct snap_file *f, struct err *e)
{
    char name[SNAP_NAME_LEN];
    snprintf(name, sizeof(name), "cpu%u", v->index);
    struct snap_reader r;
    int ret = snap_section(f, name, KVM_SNAP_CPU_VERSION, KVM_SNAP_CPU_VERSION, &r, e);
    if (ret < 0)
        return ret;
    struct kvm_cpu_state *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    if ((ret = check_caps(v->k, e)) == 0 && (ret = kvm_cpu_read(&r, s, v->index, e)) == 0 &&
        (ret = cpu_check_host(v, s, name, e)) == 0)
        ret = cpu_apply(v, s, e);
    kvm_cpu_state_free(s);
    return ret;
}
