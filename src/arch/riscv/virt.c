#include "arch/riscv/virt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/riscv/loader.h"
#include "core/board.h"
#include "core/snapshot.h"
#include "core/vm.h"
#include "engine/rv64/rv64.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

#define FDT_SIZE 0x10000ull
#define FW_MAX_SIZE 0x200000ull      /* firmware must end below RAM + 2 MiB */
#define FW_DYNAMIC_MAGIC 0x4942534full /* "OSBI" */
#define FW_DYNAMIC_VERSION 2
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

/* OpenSBI fw_dynamic hand-off structure (see OpenSBI docs/firmware/fw_dynamic.md) */
struct fw_dynamic_info {
    uint64_t magic, version, next_addr, next_mode, options, boot_hart;
};

static uint64_t test_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque; (void)off; (void)size;
    return 0;
}

/* SiFive test device: 0x5555 pass/poweroff, 0x3333 fail (code in bits
 * 31:16), 0x7777 reboot. */
static void test_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct vm *vm = opaque;
    if (off != 0)
        return;
    switch (val & 0xffff) {
    case 0x5555: vm_request_exit(vm, VM_EXIT_POWEROFF, 0); break;
    case 0x3333: vm_request_exit(vm, VM_EXIT_GUEST_FAIL, (uint32_t)(val >> 16) & 0xffff); break;
    case 0x7777: vm_request_exit(vm, VM_EXIT_REBOOT, 0); break;
    default: break;
    }
}

static const struct mmio_ops test_ops = { .read = test_read, .write = test_write };

static void uart_irq(void *opaque, int level)
{
    struct riscv_virt *b = opaque;
    plic_set_irq(&b->plic, VIRT_UART_IRQ, level);
}

/* PCI INTx line -> PLIC source (the FDT's interrupt-map says the same) */
static void pci_intx(void *opaque, unsigned line, bool level)
{
    struct riscv_virt *b = opaque;
    plic_set_irq(&b->plic, VIRT_PCI_IRQ_BASE + line, level);
}

static void uart_input(void *opaque)
{
    struct riscv_virt *b = opaque;
    uart16550_update(&b->uart);
}

static int load_images(struct vm *vm, struct riscv_virt *b, uint64_t *entry, uint64_t *fdt_addr,
                       uint64_t *info_addr, struct err *e)
{
    const struct vm_config *c = &vm->cfg;
    uint64_t ram_end = VIRT_RAM_BASE + c->mem_size;
    struct file_buf kf = { 0 }, ff = { 0 }, inf = { 0 };
    struct loaded_image kernel, fw = { .end = VIRT_RAM_BASE };
    int ret;

    ret = file_read(c->kernel, c->mem_size, "kernel", &kf, e);
    if (ret < 0)
        goto out;
    if (c->firmware) {
        ret = file_read(c->firmware, FW_MAX_SIZE, "firmware", &ff, e);
        if (ret < 0)
            goto out;
        enum image_kind k;
        if (image_probe(&ff, c->firmware, &k, NULL) == 0 && k == IMAGE_ELF) {
            ret = image_load(&vm->mem, &ff, c->firmware, VIRT_RAM_BASE, &fw, e);
            if (ret < 0)
                goto out;
        } else { /* flat binary such as fw_dynamic.bin, entered at RAM base */
            gmem_write(&vm->mem, VIRT_RAM_BASE, ff.data, ff.size);
            fw = (struct loaded_image){ IMAGE_ELF, VIRT_RAM_BASE, VIRT_RAM_BASE,
                                        VIRT_RAM_BASE + ff.size };
        }
    }
    ret = image_load(&vm->mem, &kf, c->kernel, VIRT_RAM_BASE, &kernel, e);
    if (ret < 0) {
        if (ret == -ERANGE)
            ret = err_set(e, -ERANGE, "too little memory: --memory %lluM cannot hold the kernel "
                          "'%s'", (unsigned long long)(c->mem_size >> 20), c->kernel);
        goto out;
    }
    if (c->firmware && kernel.start < fw.end) {
        ret = err_set(e, -EINVAL, "kernel '%s' overlaps the firmware '%s' (kernel at 0x%llx)",
                      c->kernel, c->firmware, (unsigned long long)kernel.start);
        goto out;
    }
    /* 2 MiB aligned, as Linux maps the early FDT with PMD-sized pages */
    *fdt_addr = ALIGN_DOWN(ram_end - FDT_SIZE, 0x200000);
    *info_addr = *fdt_addr - 0x1000;
    if (kernel.end > *info_addr) {
        ret = err_set(e, -ENOMEM, "too little memory: --memory %lluM cannot hold the kernel",
                      (unsigned long long)(c->mem_size >> 20));
        goto out;
    }
    uint64_t initrd_start = 0, initrd_end = 0;
    if (c->initrd) {
        ret = file_read(c->initrd, c->mem_size, "initrd", &inf, e);
        if (ret < 0)
            goto out;
        /* Far enough above the kernel for its early allocations, like QEMU:
         * at 128 MiB, or half of RAM on small machines; lower if needed. */
        uint64_t pref = VIRT_RAM_BASE + (c->mem_size >= (256ull << 20) ? (128ull << 20)
                                                                          : c->mem_size / 2);
        initrd_start = ALIGN_UP(kernel.end, 0x200000);
        if (initrd_start < pref)
            initrd_start = pref;
        if (initrd_start + inf.size > *info_addr)
            initrd_start = ALIGN_DOWN(*info_addr - inf.size, 0x1000);
        if (inf.size > *info_addr - VIRT_RAM_BASE || initrd_start < ALIGN_UP(kernel.end, 0x1000)) {
            ret = err_set(e, -ENOMEM,
                          "too little memory: --memory %lluM cannot hold the kernel and the "
                          "initrd '%s'", (unsigned long long)(c->mem_size >> 20), c->initrd);
            goto out;
        }
        gmem_write(&vm->mem, initrd_start, inf.data, inf.size);
        initrd_end = initrd_start + inf.size;
    }
    struct fdt_params fp = {
        .ram_base = VIRT_RAM_BASE, .ram_size = c->mem_size, .nharts = c->cpus,
        .bootargs = c->append, .initrd_start = initrd_start, .initrd_end = initrd_end,
    };
    ret = riscv_fdt_build(&fp, gmem_ptr(&vm->mem, *fdt_addr, FDT_SIZE), FDT_SIZE, e);
    if (ret < 0)
        goto out;
    struct fw_dynamic_info info = {
        .magic = FW_DYNAMIC_MAGIC, .version = FW_DYNAMIC_VERSION,
        .next_addr = kernel.entry, .next_mode = 1 /* S-mode */, .options = 0,
        .boot_hart = ~0ull, /* any hart may boot */
    };
    gmem_write(&vm->mem, *info_addr, &info, sizeof(info));
    *entry = c->firmware ? fw.entry : kernel.entry;
    b->fdt_addr = *fdt_addr;
    ret = 0;
out:
    file_free(&kf);
    file_free(&ff);
    file_free(&inf);
    return ret;
}

int riscv_virt_create(struct vm *vm, struct err *e)
{
    const struct vm_config *c = &vm->cfg;
    int ret;
    if (c->mem_size < VIRT_MIN_RAM)
        return err_set(e, -EINVAL, "too little memory: --memory must be at least %lluM",
                       VIRT_MIN_RAM >> 20);
    if (c->cpus < 1 || c->cpus > CLINT_MAX_HARTS)
        return err_set(e, -EINVAL, "--cpus must be between 1 and %d", CLINT_MAX_HARTS);
    struct riscv_virt *b = calloc(1, sizeof(*b));
    if (!b)
        return err_set(e, -ENOMEM, "out of memory");
    vm->board = b;
    b->vm = vm;
    ret = vm_ram_add(vm, VIRT_RAM_BASE, c->mem_size, e);
    if (ret < 0)
        goto fail;
    uint64_t entry = 0, fdt_addr = 0, info_addr = 0;
    /* a restored machine's memory already holds firmware, kernel and FDT */
    if (!vm->restore && (ret = load_images(vm, b, &entry, &fdt_addr, &info_addr, e)) < 0)
        goto fail;
    b->cpu = rv64_new(vm, &vm->bus, gmem_ptr(&vm->mem, VIRT_RAM_BASE, c->mem_size), VIRT_RAM_BASE,
                      c->mem_size, c->cpus, e);
    if (!b->cpu) {
        ret = -ENOMEM;
        goto fail;
    }
    clint_init(&b->clint, b->cpu->harts, c->cpus);
    plic_init(&b->plic, b->cpu->harts, c->cpus);
    b->cpu->clint = &b->clint;
    uart16550_init(&b->uart, &vm->con, uart_irq, b);
    vm->con.on_input = uart_input;
    vm->con.opaque = b;
    if ((ret = bus_add(&vm->bus, VIRT_TEST_BASE, 0x1000, &test_ops, vm, "test", e)) < 0 ||
        (ret = bus_add(&vm->bus, CLINT_BASE, CLINT_SIZE, &clint_ops, &b->clint, "clint", e)) < 0 ||
        (ret = bus_add(&vm->bus, PLIC_BASE, PLIC_SIZE, &plic_ops, &b->plic, "plic", e)) < 0 ||
        (ret = bus_add(&vm->bus, VIRT_UART_BASE, 0x100, &uart16550_ops, &b->uart, "uart", e)) < 0)
        goto fail;
    pci_bus_init(&b->pci, &vm->bus, VIRT_PCI_MMIO_BASE, VIRT_PCI_MMIO_SIZE, pci_intx, b);
    b->pci_ready = true;
    if ((ret = bus_add(&vm->bus, VIRT_PCI_ECAM_BASE, VIRT_PCI_ECAM_SIZE, &pci_ecam_ops, &b->pci,
                       "pci-ecam", e)) < 0)
        goto fail;
    struct virtio_host host = { .pb = &b->pci, .mem = &vm->mem, .loop = vm->loop,
                                .keyboard = &b->keyboard, .vm = vm,
                                .display = vm->display };
    for (unsigned i = 0; i < c->ndisks; i++)
        if ((ret = virtio_blk_create(&host, &c->disks[i], e)) < 0)
            goto fail;
    for (unsigned i = 0; i < c->ndevices; i++)
        if ((ret = virtio_pci_create(&host, c->devices[i], e)) < 0)
            goto fail;
    for (unsigned i = 0; i < c->cpus; i++)
        rv64_hart_reset(b->cpu->harts[i], entry, fdt_addr, info_addr);
    return 0;
fail:
    riscv_virt_destroy(vm);
    return ret;
}

static int riscv_virt_start(struct vm *vm, struct err *e)
{
    struct riscv_virt *b = vm->board;
    if (vm->start_paused) {
        b->cpu->pause_req = 1;      /* parks before its first instruction */
        clint_freeze(&b->clint);
    }
    int ret = rv64_start(b->cpu, &vm->pin, e);
    if (ret == 0 && vm->start_paused)
        rv64_pause(b->cpu);         /* returns once parked */
    return ret;
}

/* Snapshots: harts, CLINT, PLIC, UART, then the PCI bus and its devices.
 * The test device and the FDT hold no state (the FDT is in RAM). */
static void riscv_virt_save(struct vm *vm, struct snap_writer *w)
{
    struct riscv_virt *b = vm->board;
    pci_bus_quiesce(&b->pci);
    rv64_save(b->cpu, w);
    clint_save(&b->clint, w);
    plic_save(&b->plic, w);
    uart16550_save(&b->uart, "uart0", w);
    pci_bus_save(&b->pci, w);
}

static int riscv_virt_load(struct vm *vm, struct snap_file *f, struct err *e)
{
    struct riscv_virt *b = vm->board;
    int ret;
    /* the PLIC first: the devices then drive their lines as their loaded
     * state makes them (a level the PLIC remembered from the snapshot but
     * no device holds any more would interrupt forever) */
    if ((ret = rv64_load(b->cpu, f, e)) < 0 || (ret = plic_load(&b->plic, f, e)) < 0 ||
        (ret = uart16550_load(&b->uart, "uart0", f, e)) < 0 ||
        (ret = pci_bus_load(&b->pci, f, e)) < 0 || (ret = clint_load(&b->clint, f, e)) < 0)
        return ret;
    return 0;
}

static void riscv_virt_dirty_reset(struct vm *vm)
{
    struct riscv_virt *b = vm->board;
    rv64_dirty_reset(b->cpu);
}

static void riscv_virt_pause(struct vm *vm)
{
    struct riscv_virt *b = vm->board;
    rv64_pause(b->cpu);
    pthread_mutex_lock(&vm->dev_lock);
    clint_freeze(&b->clint);
    pthread_mutex_unlock(&vm->dev_lock);
}

static void riscv_virt_resume(struct vm *vm)
{
    struct riscv_virt *b = vm->board;
    pthread_mutex_lock(&vm->dev_lock);
    clint_thaw(&b->clint);
    pthread_mutex_unlock(&vm->dev_lock);
    rv64_resume(b->cpu);
}

static void riscv_virt_stop(struct vm *vm)
{
    struct riscv_virt *b = vm->board;
    rv64_stop(b->cpu);
    const struct plic *p = &b->plic;
    log_debug("plic: level=%08x:%08x pending=%08x:%08x claimed=%08x:%08x "
              "enable[0..3]=%08x:%08x %08x:%08x %08x:%08x %08x:%08x "
              "uart: ier=%02x lcr=%02x thr_ipending=%d rx_enabled=%d irq=%d",
              p->level[1], p->level[0], p->pending[1], p->pending[0], p->claimed[1],
              p->claimed[0], p->enable[0][1], p->enable[0][0], p->enable[1][1], p->enable[1][0],
              p->enable[2][1], p->enable[2][0], p->enable[3][1], p->enable[3][0], b->uart.ier,
              b->uart.lcr, b->uart.thr_ipending, b->uart.rx_enabled, b->uart.irq_level);
}

/* The power button is the virtio keyboard's KEY_POWER (device context). */
static int riscv_virt_power_button(struct vm *vm, struct err *e)
{
    struct riscv_virt *b = vm->board;
    return virtio_input_power_button(b->keyboard, e);
}

static void riscv_virt_cpu_stats(struct vm *vm, unsigned i, struct vm_cpu_stats *out)
{
    struct riscv_virt *b = vm->board;
    out->cpu_time_ns = rv64_hart_cpu_ns(b->cpu, i);     /* hart i's own thread */
    out->instructions = __atomic_load_n(&b->cpu->harts[i]->instret, __ATOMIC_RELAXED);
}

void riscv_virt_destroy(struct vm *vm)
{
    struct riscv_virt *b = vm->board;
    if (b) {
        if (b->pci_ready)
            pci_bus_destroy(&b->pci);
        rv64_free(b->cpu);
        free(b);
        vm->board = NULL;
    }
    gmem_free(&vm->mem);
}

const struct board_ops riscv_virt_board = {
    .arch = "riscv64",
    .default_kernel = "Image",
    .default_initrd = "initramfs.cpio.gz",
    .default_firmware = "fw_dynamic.bin",
    .max_cpus = CLINT_MAX_HARTS,
    .create = riscv_virt_create,
    .start = riscv_virt_start,
    .pause = riscv_virt_pause,
    .resume = riscv_virt_resume,
    .stop = riscv_virt_stop,
    .destroy = riscv_virt_destroy,
    .power_button = riscv_virt_power_button,
    .cpu_stats = riscv_virt_cpu_stats,
    .save = riscv_virt_save,
    .load = riscv_virt_load,
    .dirty_reset = riscv_virt_dirty_reset,
};
