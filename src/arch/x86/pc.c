#include "arch/x86/pc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "core/board.h"
#include "core/file.h"
#include "core/snapshot.h"
#include "core/vm.h"
#include "engine/kvm/kvm.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

/* Called with the device lock held (from vCPU threads or the event loop). */
static void com1_irq(void *opaque, int level)
{
    struct x86_pc *pc = opaque;
    kvm_irq_line(pc->kvm, PC_COM1_IRQ, level);
}

static void uart_input(void *opaque)
{
    struct x86_pc *pc = opaque;
    uart16550_update(&pc->uart);
}

static void kbc_reset(void *opaque)
{
    struct x86_pc *pc = opaque;
    vm_request_exit(pc->vm, VM_EXIT_REBOOT, 0);
}

static uint64_t sink_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque; (void)off; (void)size;
    return 0;
}

static void sink_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)opaque; (void)off; (void)val; (void)size;
}

static const struct mmio_ops post_ops = { .read = sink_read, .write = sink_write };

static void debug_exit_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)off;
    struct x86_pc *pc = opaque;
    uint32_t v = (uint32_t)(val & (size >= 4 ? 0xffffffffull : (1ull << (8 * size)) - 1));
    if (v == 0)
        vm_request_exit(pc->vm, VM_EXIT_POWEROFF, 0);
    else
        vm_request_exit(pc->vm, VM_EXIT_GUEST_FAIL, v);
}

static const struct mmio_ops debug_exit_ops = { .read = sink_read, .write = debug_exit_write };

/* ACPI sleep control/status registers (hardware-reduced ACPI, see the
 * FADT): a write of SLP_EN with SLP_TYP = S5 is Linux's poweroff. */
static void acpi_sleep_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct x86_pc *pc = opaque;
    if (off == 0 && (val & X86_ACPI_SLP_EN) &&
        ((val & X86_ACPI_SLP_TYP_MASK) >> X86_ACPI_SLP_TYP_SHIFT) == X86_ACPI_S5_SLP_TYP)
        vm_request_exit(pc->vm, VM_EXIT_POWEROFF, 0);
}

static const struct mmio_ops acpi_sleep_ops = { .read = sink_read, .write = acpi_sleep_write };

static int add_devices(struct x86_pc *pc, struct err *e)
{
    struct vm *vm = pc->vm;
    int ret;
    uart16550_init(&pc->uart, &vm->con, com1_irq, pc);
    i8042_init(&pc->kbc, kbc_reset, pc);
    cmos_rtc_init(&pc->rtc);
    vm->con.on_input = uart_input;
    vm->con.opaque = pc;
    if ((ret = bus_add(&pc->pio, PC_COM1_PORT, 8, &uart16550_ops, &pc->uart, "com1", e)) < 0 ||
        (ret = bus_add(&pc->pio, I8042_DATA_PORT, 5, &i8042_ops, &pc->kbc, "i8042", e)) < 0 ||
        (ret = bus_add(&pc->pio, CMOS_PORT, 2, &cmos_rtc_ops, &pc->rtc, "cmos", e)) < 0 ||
        (ret = bus_add(&pc->pio, PC_DEBUG_EXIT_PORT, 2, &debug_exit_ops, pc, "debug-exit", e)) < 0 ||
        (ret = bus_add(&pc->pio, PC_POST_PORT, 1, &post_ops, pc, "post", e)) < 0 ||
        (ret = bus_add(&pc->pio, X86_ACPI_SLEEP_CTL_PORT, 2, &acpi_sleep_ops, pc, "acpi-sleep",
                       e)) < 0)
        return ret;
    return 0;
}

/* --- PCI ------------------------------------------------------------------ */

/* INTx line -> GSI 16 + line, level (the _PRT and MP table say the same). */
static void pci_intx(void *opaque, unsigned line, bool level)
{
    struct x86_pc *pc = opaque;
    kvm_irq_line(pc->kvm, X86_PCI_GSI_BASE + line, level);
}

static int msi_route_new(void *opaque, struct err *e)
{
    struct x86_pc *pc = opaque;
    return kvm_msi_route_new(pc->kvm, e);
}

/* Only messages to the LAPIC window are interrupts; on real hardware any
 * other address is a DMA write, which Petrel does not do for MSIs. */
static int msi_route_set(void *opaque, int route, uint64_t addr, uint32_t data)
{
    struct x86_pc *pc = opaque;
    if (addr < X86_MSI_ADDR_BASE || addr - X86_MSI_ADDR_BASE >= X86_MSI_ADDR_SIZE)
        return -EINVAL;
    return kvm_msi_route_set(pc->kvm, route, addr, data);
}

static void msi_fire(void *opaque, int route)
{
    struct x86_pc *pc = opaque;
    kvm_msi_fire(pc->kvm, route);
}

static int pci_ioeventfd(void *opaque, uint64_t addr, unsigned len, int fd, bool assign,
                         struct err *e)
{
    struct x86_pc *pc = opaque;
    return kvm_ioeventfd(pc->kvm, addr, len, fd, assign, e);
}

static int add_pci(struct x86_pc *pc, struct err *e)
{
    struct vm *vm = pc->vm;
    const struct vm_config *c = &vm->cfg;
    int ret;
    pci_bus_init(&pc->pci, &vm->bus, X86_PCI_MMIO_BASE, X86_PCI_MMIO_SIZE, pci_intx, pc);
    pc->pci_ready = true;
    pc->pci_plat = (struct pci_platform){ .opaque = pc, .loop = vm->loop };
    if (pc->kvm->msi_mode != KVM_MSI_NONE) {
        pc->pci_plat.msi_route_new = msi_route_new;
        pc->pci_plat.msi_route_set = msi_route_set;
        pc->pci_plat.msi_fire = msi_fire;
    }
    if (pc->kvm->has_ioeventfd && vm->loop)
        pc->pci_plat.ioeventfd = pci_ioeventfd;
    pci_bus_set_platform(&pc->pci, &pc->pci_plat);
    pci_host_bridge_init(&pc->host_bridge);
    if ((ret = pci_bus_plug_slot(&pc->pci, &pc->host_bridge, 0, e)) < 0 ||
        (ret = bus_add(&pc->pio, PCI_CONF1_PORT, PCI_CONF1_SIZE, &pci_conf1_ops, &pc->pci,
                       "pci-conf1", e)) < 0)
        return ret;
    struct virtio_host host = { .pb = &pc->pci, .mem = &vm->mem, .loop = vm->loop, .vm = vm,
                                .keyboard = &pc->keyboard , .display = vm->display };
    for (unsigned i = 0; i < c->ndisks; i++)
        if ((ret = virtio_blk_create(&host, &c->disks[i], e)) < 0)
            return ret;
    for (unsigned i = 0; i < c->ndevices; i++)
        if ((ret = virtio_pci_create(&host, c->devices[i], e)) < 0)
            return ret;
    /* what firmware leaves in Interrupt Line: the GSI of the device's pin */
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pc->pci.dev[s];
        if (d && d->cfg[PCI_INTERRUPT_PIN])
            d->cfg[PCI_INTERRUPT_LINE] =
                (uint8_t)(X86_PCI_GSI_BASE + pci_intx_line(s, d->cfg[PCI_INTERRUPT_PIN]));
    }
    return 0;
}

static int load_and_boot(struct x86_pc *pc, struct err *e)
{
    struct vm *vm = pc->vm;
    const struct vm_config *c = &vm->cfg;
    struct file_buf kf = { 0 }, inf = { 0 };
    char *cmdline = NULL;
    int ret = file_read(c->kernel, c->mem_size, "kernel", &kf, e);
    if (ret < 0)
        goto out;
    int is_pvh;
    if ((ret = x86_kernel_probe(kf.data, kf.size, c->kernel, &is_pvh, e)) < 0)
        goto out;
    if (c->initrd && (ret = file_read(c->initrd, c->mem_size, "initrd", &inf, e)) < 0)
        goto out;
    const char *append = c->append ? c->append : "";
    if (pc->kvm->pvm && x86_kernel_is_linux(kf.data, kf.size)) {
        if (asprintf(&cmdline, "%s%s%s", append, *append ? " " : "", PC_PVM_CMDLINE) < 0) {
            cmdline = NULL;
            ret = err_set(e, -ENOMEM, "out of memory");
            goto out;
        }
        log_warn("/dev/kvm is PVM (software virtualization): guest kernel code is "
                  "emulated slowly; adding '%s' to the command line", PC_PVM_CMDLINE);
    }
    struct x86_boot_config bc = {
        .kernel = kf.data, .kernel_size = kf.size, .kernel_name = c->kernel,
        .initrd = inf.data, .initrd_size = inf.size,
        .cmdline = cmdline ? cmdline : append, .mem_size = c->mem_size, .ncpus = c->cpus,
    };
    struct x86_entry entry;
    if ((ret = x86_boot_setup(&vm->mem, &bc, &entry, e)) < 0)
        goto out;
    ret = kvm_create_vcpus(pc->kvm, c->cpus, &entry, e);
out:
    free(cmdline);
    file_free(&kf);
    file_free(&inf);
    return ret;
}

static void pc_destroy(struct vm *vm);

static int pc_create(struct vm *vm, struct err *e)
{
    const struct vm_config *c = &vm->cfg;
    if (c->firmware)
        return err_set(e, -EINVAL, "x86_64 guests boot their kernel directly: --firmware must "
                       "be 'none' or left out");
    if (!c->kernel)
        return err_set(e, -EINVAL, "x86_64 needs --kernel");
    struct x86_pc *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return err_set(e, -ENOMEM, "out of memory");
    vm->board = pc;
    pc->vm = vm;
    int ret;
    pc->kvm = kvm_new(vm, &vm->bus, &pc->pio, e);
    if (!pc->kvm) {
        ret = -ENODEV;
        goto fail;
    }
    uint64_t base[2], size[2];
    unsigned n = x86_ram_layout(c->mem_size, base, size);
    for (unsigned i = 0; i < n; i++) {
        if ((ret = vm_ram_add(vm, base[i], size[i], e)) < 0 ||
            (ret = kvm_add_ram(pc->kvm, base[i], size[i], gmem_ptr(&vm->mem, base[i], size[i]),
                               e)) < 0)
            goto fail;
    }
    if ((ret = add_devices(pc, e)) < 0 || (ret = add_pci(pc, e)) < 0)
        goto fail;
    /* a restored machine's RAM already holds the kernel, boot parameters
     * and ACPI tables, and pc_load gives the vCPUs their state */
    if (vm->restore)
        ret = kvm_create_vcpus(pc->kvm, c->cpus, NULL, e);
    else
        ret = load_and_boot(pc, e);
    if (ret < 0)
        goto fail;
    return 0;
fail:
    pc_destroy(vm);
    return ret;
}

static int pc_start(struct vm *vm, struct err *e)
{
    struct x86_pc *pc = vm->board;
    return kvm_start(pc->kvm, vm->start_paused, e);
}

/* --- snapshots (core/board.h) --------------------------------------------
 * Sections: the kvm state ("cpu0".., "irqchip", "pit", "kvmclock": see
 * engine/kvm/vmstate.c), "uart0" (COM1), "i8042", "cmos", then the PCI bus
 * and its devices ("pci", "pci-SS").  The debug-exit, POST and ACPI sleep
 * ports hold no state; the ACPI tables, MP table and boot parameters are
 * in RAM. */
static void pc_save(struct vm *vm, struct snap_writer *w)
{
    struct x86_pc *pc = vm->board;
    pci_bus_quiesce(&pc->pci);
    /* the pages the guest (and KVM for it) wrote since the last snapshot,
     * for a diff snapshot; devices mark their own writes in vm->mem.
     * Without KVM's log (it could not be turned on), every page counts. */
    if (pc->kvm->dirty_log) {
        struct err e;
        int ret = kvm_dirty_log_sync(pc->kvm, &vm->mem, &e);
        if (ret < 0) {
            snapw_fail(w, ret, "%s", e.msg);
            return;
        }
    } else {
        for (unsigned i = 0; i < vm->mem.n; i++)
            gmem_mark_dirty(&vm->mem, vm->mem.r[i].gpa, vm->mem.r[i].size);
    }
    kvm_save(pc->kvm, w);
    uart16550_save(&pc->uart, "uart0", w);
    i8042_save(&pc->kbc, w);
    cmos_rtc_save(&pc->rtc, w);
    pci_bus_save(&pc->pci, w);
}

static int pc_load(struct vm *vm, struct snap_file *f, struct err *e)
{
    struct x86_pc *pc = vm->board;
    int ret;
    /* the vCPUs and the irqchip before the devices, which drive their
     * interrupt lines as they load (KVM keeps each line's level outside
     * KVM_GET_IRQCHIP: uart16550_load sets COM1's again) */
    if ((ret = kvm_load(pc->kvm, f, e)) < 0 || (ret = pci_bus_load(&pc->pci, f, e)) < 0 ||
        (ret = uart16550_load(&pc->uart, "uart0", f, e)) < 0 ||
        (ret = i8042_load(&pc->kbc, f, e)) < 0 || (ret = cmos_rtc_load(&pc->rtc, f, e)) < 0)
        return ret;
    /* snapshots of this VM may be diffs against the one it came from */
    struct err le;
    if (kvm_dirty_log_start(pc->kvm, &le) < 0)
        log_warn("%s: diff snapshots of this VM will hold all of its memory", le.msg);
    return 0;
}

/* After a snapshot was written (paused): KVM's log starts again from here. */
static void pc_dirty_reset(struct vm *vm)
{
    struct x86_pc *pc = vm->board;
    struct err e;
    if (pc->kvm->dirty_log) {
        if (kvm_dirty_log_sync(pc->kvm, NULL, &e) < 0)
            log_warn("%s: the next diff snapshot may hold pages that did not change", e.msg);
    } else if (kvm_dirty_log_start(pc->kvm, &e) < 0) {
        log_warn("%s: diff snapshots of this VM will hold all of its memory", e.msg);
    }
}

static void pc_pause(struct vm *vm)
{
    struct x86_pc *pc = vm->board;
    kvm_pause(pc->kvm);
}

static void pc_resume(struct vm *vm)
{
    struct x86_pc *pc = vm->board;
    kvm_resume(pc->kvm);
}

static void pc_stop(struct vm *vm)
{
    struct x86_pc *pc = vm->board;
    kvm_stop(pc->kvm);
}

/* The power button is the virtio keyboard's KEY_POWER (device context). */
static int pc_power_button(struct vm *vm, struct err *e)
{
    struct x86_pc *pc = vm->board;
    return virtio_input_power_button(pc->keyboard, e);
}

static void pc_cpu_stats(struct vm *vm, unsigned i, struct vm_cpu_stats *out)
{
    struct x86_pc *pc = vm->board;
    out->cpu_time_ns = kvm_vcpu_cpu_ns(&pc->kvm->vcpus[i]);
    out->exits = __atomic_load_n(&pc->kvm->vcpus[i].exits, __ATOMIC_RELAXED);
}

static void pc_destroy(struct vm *vm)
{
    struct x86_pc *pc = vm->board;
    if (pc) {
        if (pc->pci_ready)
            pci_bus_destroy(&pc->pci);    /* before the VM: it unbinds ioeventfds */
        kvm_free(pc->kvm);
        free(pc);
        vm->board = NULL;
    }
    gmem_free(&vm->mem);
}

const struct board_ops x86_pc_board = {
    .arch = "x86_64",
    .default_kernel = "vmlinuz",
    .default_initrd = "initramfs.cpio.gz",
    .default_firmware = NULL,
    .max_cpus = KVM_MAX_VCPUS,
    .create = pc_create,
    .start = pc_start,
    .pause = pc_pause,
    .resume = pc_resume,
    .stop = pc_stop,
    .destroy = pc_destroy,
    .power_button = pc_power_button,
    .cpu_stats = pc_cpu_stats,
    .save = pc_save,
    .load = pc_load,
    .dirty_reset = pc_dirty_reset,
};
