/* kvm: a snapshot's VM-wide kvm state (the in-kernel irqchip, the PIT,
 * kvmclock; layouts in state_format.c) and the order in which kvm saves and
 * loads everything.
 *
 * Save (VM paused): every vCPU ("cpu0".."cpuN-1", state.c), "irqchip"
 * (KVM_GET_IRQCHIP: master PIC, slave PIC, IOAPIC), "pit" (KVM_GET_PIT2),
 * "kvmclock" (the value kvm_pause read with KVM_GET_CLOCK).
 *
 * Load: every vCPU, then the irqchip (an IOAPIC interrupt it delivers
 * again lands in a LAPIC already restored), then the PIT (its first tick
 * reaches a restored irqchip), then kvmclock: set now, and again by
 * kvm_start (or by kvm_resume, for a VM restored paused) just before the
 * vCPUs run.  Each section is read and checked whole before its ioctls.
 *
 * What the guest sees: kvmclock (its clocksource) goes on from the value
 * it had when the VM was paused for the snapshot, without a jump; the TSC
 * (an MSR in the vCPU sections) goes on from its value when saved; the
 * CMOS RTC reads the host's current time. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/snapshot.h"
#include "engine/kvm/kvm.h"
#include "engine/kvm/state.h"

static const char *const chip_name[3] = { "master PIC", "slave PIC", "IOAPIC" };

static int irqchip_save(struct kvm_machine *k, struct snap_writer *w, struct err *e)
{
    struct kvm_irqchip c[3];
    memset(c, 0, sizeof(c));
    for (uint32_t i = 0; i < 3; i++) {
        c[i].chip_id = i;
        if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &c[i]) < 0)
            return err_set(e, -errno, "KVM_GET_IRQCHIP (%s): %s", chip_name[i], strerror(errno));
    }
    kvm_irqchip_write(w, c);
    return 0;
}

static int irqchip_load(struct kvm_machine *k, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    struct kvm_irqchip c[3];
    int ret = snap_section(f, "irqchip", KVM_SNAP_IRQCHIP_VERSION, KVM_SNAP_IRQCHIP_VERSION, &r, e);
    if (ret < 0 || (ret = kvm_irqchip_read(&r, c, e)) < 0)
        return ret;
    for (unsigned i = 0; i < 3; i++)
        if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &c[i]) < 0)
            return err_set(e, -errno, "restoring the irqchip: KVM_SET_IRQCHIP (%s): %s",
                           chip_name[i], strerror(errno));
    return 0;
}

static int pit_save(struct kvm_machine *k, struct snap_writer *w, struct err *e)
{
    struct kvm_pit_state2 ps;
    memset(&ps, 0, sizeof(ps));
    if (ioctl(k->vm_fd, KVM_GET_PIT2, &ps) < 0)
        return err_set(e, -errno, "KVM_GET_PIT2: %s", strerror(errno));
    kvm_pit_write(w, &ps);
    return 0;
}

static int pit_load(struct kvm_machine *k, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    struct kvm_pit_state2 ps;
    int ret = snap_section(f, "pit", KVM_SNAP_PIT_VERSION, KVM_SNAP_PIT_VERSION, &r, e);
    if (ret < 0 || (ret = kvm_pit_read(&r, &ps, e)) < 0)
        return ret;
    if (ioctl(k->vm_fd, KVM_SET_PIT2, &ps) < 0)
        return err_set(e, -errno, "restoring the PIT: KVM_SET_PIT2: %s", strerror(errno));
    return 0;
}

/* The VM is paused: kvm_pause read the clock then, and that frozen value
 * is what the guest goes on from (kvm_resume would set it back too). */
static int clock_save(struct kvm_machine *k, struct snap_writer *w, struct err *e)
{
    if (!k->clock_saved)
        return err_set(e, -EIO, "kvmclock: KVM_GET_CLOCK failed when the VM was paused");
    kvm_clock_write(w, &k->clock);
    return 0;
}

static int clock_load(struct kvm_machine *k, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    struct kvm_clock_data c;
    int ret = snap_section(f, "kvmclock", KVM_SNAP_CLOCK_VERSION, KVM_SNAP_CLOCK_VERSION, &r, e);
    if (ret < 0 || (ret = kvm_clock_read(&r, &c, e)) < 0)
        return ret;
    struct kvm_clock_data set = { .clock = c.clock };
    if (ioctl(k->vm_fd, KVM_SET_CLOCK, &set) < 0)
        return err_set(e, -errno, "restoring kvmclock: KVM_SET_CLOCK: %s", strerror(errno));
    k->clock = c;
    k->clock_restored = true;
    return 0;
}

void kvm_save(struct kvm_machine *k, struct snap_writer *w)
{
    for (unsigned i = 0; i < k->nvcpus && !w->failed; i++)
        kvm_vcpu_save(&k->vcpus[i], w);
    if (w->failed)
        return;
    struct err e;
    int ret;
    if ((ret = irqchip_save(k, w, &e)) < 0 || (ret = pit_save(k, w, &e)) < 0 ||
        (ret = clock_save(k, w, &e)) < 0)
        snapw_fail(w, ret, "%s", e.msg);
}

int kvm_load(struct kvm_machine *k, struct snap_file *f, struct err *e)
{
    int ret;
    for (unsigned i = 0; i < k->nvcpus; i++)
        if ((ret = kvm_vcpu_load(&k->vcpus[i], f, e)) < 0)
            return ret;
    if ((ret = irqchip_load(k, f, e)) < 0 || (ret = pit_load(k, f, e)) < 0 ||
        (ret = clock_load(k, f, e)) < 0)
        return ret;
    return 0;
}
