/* Device tree for the riscv64 virt board, built with libfdt's sequential
 * writer.  The buffer is left with free space for OpenSBI's fix-ups. */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "arch/riscv/virt.h"

#define PH_PLIC 0x100
#define PH_TEST 0x101
#define PH_INTC(i) (1 + (i))

#define CHECK(x)                                       \
    do {                                               \
        int r_ = (x);                                  \
        if (r_ < 0)                                    \
            return err_set(e, -EINVAL, "building device tree: %s", fdt_strerror(r_)); \
    } while (0)

static int prop_reg(void *fdt, uint64_t base, uint64_t size)
{
    fdt32_t reg[4] = { cpu_to_fdt32(base >> 32), cpu_to_fdt32((uint32_t)base),
                       cpu_to_fdt32(size >> 32), cpu_to_fdt32((uint32_t)size) };
    return fdt_property(fdt, "reg", reg, sizeof(reg));
}

/* "interrupts-extended" with two interrupt numbers per hart */
static int prop_irqs_ext(void *fdt, unsigned nharts, uint32_t a, uint32_t b)
{
    fdt32_t v[4 * CLINT_MAX_HARTS];
    for (unsigned i = 0; i < nharts; i++) {
        v[4 * i + 0] = cpu_to_fdt32(PH_INTC(i));
        v[4 * i + 1] = cpu_to_fdt32(a);
        v[4 * i + 2] = cpu_to_fdt32(PH_INTC(i));
        v[4 * i + 3] = cpu_to_fdt32(b);
    }
    return fdt_property(fdt, "interrupts-extended", v, (int)(16 * nharts));
}

static int begin_node_at(void *fdt, const char *name, uint64_t addr)
{
    char n[64];
    snprintf(n, sizeof(n), "%s@%llx", name, (unsigned long long)addr);
    return fdt_begin_node(fdt, n);
}

/* The PCIe host bridge: ECAM, one 32-bit memory window, INTx swizzled onto
 * PLIC sources VIRT_PCI_IRQ_BASE + (slot + pin - 1) % 4 like pci_intx_line(). */
static int add_pci_node(void *fdt, struct err *e)
{
    CHECK(begin_node_at(fdt, "pci", VIRT_PCI_ECAM_BASE));
    CHECK(fdt_property_string(fdt, "compatible", "pci-host-ecam-generic"));
    CHECK(fdt_property_string(fdt, "device_type", "pci"));
    CHECK(fdt_property_u32(fdt, "#address-cells", 3));
    CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
    CHECK(fdt_property_u32(fdt, "linux,pci-domain", 0));
    fdt32_t bus_range[2] = { cpu_to_fdt32(0), cpu_to_fdt32(VIRT_PCI_ECAM_SIZE / (1u << 20) - 1) };
    CHECK(fdt_property(fdt, "bus-range", bus_range, sizeof(bus_range)));
    CHECK(prop_reg(fdt, VIRT_PCI_ECAM_BASE, VIRT_PCI_ECAM_SIZE));
    /* (pci space: 32-bit memory, pci address) (cpu address) (size) */
    fdt32_t ranges[7] = {
        cpu_to_fdt32(0x02000000), cpu_to_fdt32(VIRT_PCI_MMIO_BASE >> 32),
        cpu_to_fdt32((uint32_t)VIRT_PCI_MMIO_BASE),
        cpu_to_fdt32(VIRT_PCI_MMIO_BASE >> 32), cpu_to_fdt32((uint32_t)VIRT_PCI_MMIO_BASE),
        cpu_to_fdt32(VIRT_PCI_MMIO_SIZE >> 32), cpu_to_fdt32((uint32_t)VIRT_PCI_MMIO_SIZE),
    };
    CHECK(fdt_property(fdt, "ranges", ranges, sizeof(ranges)));
    CHECK(fdt_property(fdt, "dma-coherent", NULL, 0));
    fdt32_t mask[4] = { cpu_to_fdt32(0x1800), 0, 0, cpu_to_fdt32(7) };
    CHECK(fdt_property(fdt, "interrupt-map-mask", mask, sizeof(mask)));
    /* per entry: child unit address (3), child pin (1), PLIC phandle, source */
    fdt32_t map[PCI_INTX_LINES * 4 * 6];
    unsigned n = 0;
    for (unsigned slot = 0; slot < PCI_INTX_LINES; slot++)
        for (unsigned pin = 1; pin <= 4; pin++) {
            map[n++] = cpu_to_fdt32(slot << 11);
            map[n++] = 0;
            map[n++] = 0;
            map[n++] = cpu_to_fdt32(pin);
            map[n++] = cpu_to_fdt32(PH_PLIC);
            map[n++] = cpu_to_fdt32(VIRT_PCI_IRQ_BASE + pci_intx_line(slot, pin));
        }
    CHECK(fdt_property(fdt, "interrupt-map", map, sizeof(map)));
    CHECK(fdt_end_node(fdt));
    return 0;
}

int riscv_fdt_build(const struct fdt_params *p, void *buf, size_t size, struct err *e)
{
    void *fdt = buf;
    CHECK(fdt_create(fdt, (int)size));
    CHECK(fdt_finish_reservemap(fdt));
    CHECK(fdt_begin_node(fdt, ""));
    CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    CHECK(fdt_property_string(fdt, "compatible", "petrel,riscv-virt"));
    CHECK(fdt_property_string(fdt, "model", "Petrel riscv64 virt"));

    CHECK(fdt_begin_node(fdt, "chosen"));
    CHECK(fdt_property_string(fdt, "bootargs", p->bootargs ? p->bootargs : ""));
    CHECK(fdt_property_string(fdt, "stdout-path", "/soc/serial@10000000"));
    if (p->initrd_end > p->initrd_start) {
        CHECK(fdt_property_u64(fdt, "linux,initrd-start", p->initrd_start));
        CHECK(fdt_property_u64(fdt, "linux,initrd-end", p->initrd_end));
    }
    uint8_t seed[32];
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        CHECK(fdt_property(fdt, "rng-seed", seed, sizeof(seed)));
    CHECK(fdt_end_node(fdt));

    CHECK(begin_node_at(fdt, "memory", p->ram_base));
    CHECK(fdt_property_string(fdt, "device_type", "memory"));
    CHECK(prop_reg(fdt, p->ram_base, p->ram_size));
    CHECK(fdt_end_node(fdt));

    CHECK(fdt_begin_node(fdt, "cpus"));
    CHECK(fdt_property_u32(fdt, "#address-cells", 1));
    CHECK(fdt_property_u32(fdt, "#size-cells", 0));
    CHECK(fdt_property_u32(fdt, "timebase-frequency", (uint32_t)CLINT_FREQ));
    static const char exts[] = "i\0m\0a\0f\0d\0c\0zicntr\0zicsr\0zifencei\0zihintpause\0zba\0zbb\0sstc";
    for (unsigned i = 0; i < p->nharts; i++) {
        CHECK(begin_node_at(fdt, "cpu", i));
        CHECK(fdt_property_string(fdt, "device_type", "cpu"));
        CHECK(fdt_property_u32(fdt, "reg", i));
        CHECK(fdt_property_string(fdt, "status", "okay"));
        CHECK(fdt_property_string(fdt, "compatible", "riscv"));
        CHECK(fdt_property_string(fdt, "riscv,isa", RV64_ISA_STRING));
        CHECK(fdt_property_string(fdt, "riscv,isa-base", "rv64i"));
        CHECK(fdt_property(fdt, "riscv,isa-extensions", exts, sizeof(exts)));
        CHECK(fdt_property_string(fdt, "mmu-type", "riscv,sv48"));
        CHECK(fdt_begin_node(fdt, "interrupt-controller"));
        CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
        CHECK(fdt_property(fdt, "interrupt-controller", NULL, 0));
        CHECK(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
        CHECK(fdt_property_u32(fdt, "phandle", PH_INTC(i)));
        CHECK(fdt_end_node(fdt));
        CHECK(fdt_end_node(fdt));
    }
    CHECK(fdt_end_node(fdt)); /* cpus */

    CHECK(fdt_begin_node(fdt, "soc"));
    CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    CHECK(fdt_property_string(fdt, "compatible", "simple-bus"));
    CHECK(fdt_property(fdt, "ranges", NULL, 0));

    CHECK(begin_node_at(fdt, "clint", CLINT_BASE));
    static const char clint_compat[] = "sifive,clint0\0riscv,clint0";
    CHECK(fdt_property(fdt, "compatible", clint_compat, sizeof(clint_compat)));
    CHECK(prop_reg(fdt, CLINT_BASE, CLINT_SIZE));
    CHECK(prop_irqs_ext(fdt, p->nharts, 3, 7));
    CHECK(fdt_end_node(fdt));

    CHECK(begin_node_at(fdt, "plic", PLIC_BASE));
    static const char plic_compat[] = "sifive,plic-1.0.0\0riscv,plic0";
    CHECK(fdt_property(fdt, "compatible", plic_compat, sizeof(plic_compat)));
    CHECK(prop_reg(fdt, PLIC_BASE, PLIC_SIZE));
    CHECK(fdt_property_u32(fdt, "#address-cells", 0));
    CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
    CHECK(fdt_property(fdt, "interrupt-controller", NULL, 0));
    CHECK(prop_irqs_ext(fdt, p->nharts, 11, 9));
    CHECK(fdt_property_u32(fdt, "riscv,ndev", PLIC_NSRC - 1));
    CHECK(fdt_property_u32(fdt, "phandle", PH_PLIC));
    CHECK(fdt_end_node(fdt));

    CHECK(begin_node_at(fdt, "serial", VIRT_UART_BASE));
    CHECK(fdt_property_string(fdt, "compatible", "ns16550a"));
    CHECK(prop_reg(fdt, VIRT_UART_BASE, 0x100));
    CHECK(fdt_property_u32(fdt, "clock-frequency", 3686400));
    CHECK(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC));
    CHECK(fdt_property_u32(fdt, "interrupts", VIRT_UART_IRQ));
    CHECK(fdt_end_node(fdt));

    CHECK(begin_node_at(fdt, "test", VIRT_TEST_BASE));
    static const char test_compat[] = "sifive,test1\0sifive,test0\0syscon";
    CHECK(fdt_property(fdt, "compatible", test_compat, sizeof(test_compat)));
    CHECK(prop_reg(fdt, VIRT_TEST_BASE, 0x1000));
    CHECK(fdt_property_u32(fdt, "phandle", PH_TEST));
    CHECK(fdt_end_node(fdt));

    CHECK(fdt_begin_node(fdt, "poweroff"));
    CHECK(fdt_property_string(fdt, "compatible", "syscon-poweroff"));
    CHECK(fdt_property_u32(fdt, "regmap", PH_TEST));
    CHECK(fdt_property_u32(fdt, "offset", 0));
    CHECK(fdt_property_u32(fdt, "value", 0x5555));
    CHECK(fdt_end_node(fdt));

    CHECK(fdt_begin_node(fdt, "reboot"));
    CHECK(fdt_property_string(fdt, "compatible", "syscon-reboot"));
    CHECK(fdt_property_u32(fdt, "regmap", PH_TEST));
    CHECK(fdt_property_u32(fdt, "offset", 0));
    CHECK(fdt_property_u32(fdt, "value", 0x7777));
    CHECK(fdt_end_node(fdt));

    int ret = add_pci_node(fdt, e);
    if (ret < 0)
        return ret;

    CHECK(fdt_end_node(fdt)); /* soc */
    CHECK(fdt_end_node(fdt)); /* root */
    CHECK(fdt_finish(fdt));
    /* totalsize = the whole buffer: room for OpenSBI's fix-ups */
    CHECK(fdt_open_into(fdt, fdt, (int)size));
    return 0;
}
