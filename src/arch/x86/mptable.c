/* Intel MultiProcessor Specification 1.4 tables: the MP floating pointer at
 * 0x9fc00 (the last KiB of base memory, which Linux scans) followed by the
 * MP configuration table: one processor entry per vCPU, the buses (PCI bus
 * 0 as MP bus 0, since Linux matches PCI bus numbers with MP bus ids, and
 * ISA as MP bus 1), the IOAPIC, ISA IRQ routing (IRQ0 on pin 2), PCI INTx
 * routing (every slot and pin of bus 0, source IRQ = slot << 2 | pin, onto
 * IOAPIC pins X86_PCI_GSI_BASE + the bus's swizzle, level-triggered, active
 * low), and the local interrupts. */
#include "arch/x86/boot_priv.h"

#include <errno.h>
#include <string.h>

#include "pci/pci.h"

#define MPF_SIZE 16
#define MPC_HDR_SIZE 44
#define MP_SPEC_REV 4

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_SIGNATURE 0x600        /* family 6 */
#define MP_CPU_FEATURES 0x201         /* FPU, APIC */
#define MP_ISA_IRQS 16
#define MP_ALL_LAPICS 0xff
#define MP_PCI_BUS 0
#define MP_ISA_BUS 1
#define MP_PCI_INTS (PCI_MAX_SLOTS * PCI_INTX_LINES)
/* interrupt flags: polarity in bits 1:0, trigger in bits 3:2 */
#define MP_IRQ_CONFORMING 0x0
#define MP_IRQ_ACTIVE_LOW 0x3
#define MP_IRQ_LEVEL 0xc

/* Largest table: 255 processors, two buses, one IOAPIC, 15 ISA interrupts
 * (IRQ 2, the cascade, has none), the PCI interrupts, two local
 * interrupts. */
#define MP_MAX_SIZE (MPF_SIZE + MPC_HDR_SIZE + 20 * X86_MAX_CPUS + 8 * 2 + 8 + \
                     8 * (MP_ISA_IRQS - 1) + 8 * MP_PCI_INTS + 8 * 2)
_Static_assert(X86_MPTABLE_ADDR + MP_MAX_SIZE <= X86_HIGH_MEM_START,
               "MP table in the reserved area below 1 MiB");

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The byte that makes p[0..len) sum to 0 when stored in one of its bytes
 * that is 0 now. */
static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

static uint8_t *put_intsrc(uint8_t *p, uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq,
                           uint8_t apic, uint8_t pin)
{
    p[0] = MP_INTSRC;
    p[1] = type;
    wr16(p + 2, flags);
    p[4] = bus;
    p[5] = irq;
    p[6] = apic;
    p[7] = pin;
    return p + 8;
}

static uint8_t *put_lintsrc(uint8_t *p, uint8_t type, uint8_t lint)
{
    p[0] = MP_LINTSRC;
    p[1] = type;
    wr16(p + 2, 0);
    p[4] = 0;
    p[5] = 0;
    p[6] = MP_ALL_LAPICS;
    p[7] = lint;
    return p + 8;
}

int x86_mptable_write(const struct gmem *mem, unsigned ncpus, struct err *e)
{
    if (ncpus < 1 || ncpus > X86_MAX_CPUS)
        return err_set(e, -EINVAL, "MP table: %u CPUs (1 to %u)", ncpus, X86_MAX_CPUS);
    uint8_t *base = gmem_ptr(mem, X86_MPTABLE_ADDR, MP_MAX_SIZE);
    if (!base)
        return err_set(e, -EFAULT, "no guest RAM for the MP table");
    memset(base, 0, MP_MAX_SIZE);

    uint8_t ioapic_id = (uint8_t)ncpus;
    uint8_t *mpc = base + MPF_SIZE;
    uint8_t *p = mpc + MPC_HDR_SIZE;
    unsigned entries = 0;

    for (unsigned i = 0; i < ncpus; i++, entries++) {
        p[0] = MP_PROCESSOR;
        p[1] = (uint8_t)i;                      /* local APIC ID */
        p[2] = MP_LAPIC_VERSION;
        p[3] = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
        wr32(p + 4, MP_CPU_SIGNATURE);
        wr32(p + 8, MP_CPU_FEATURES);
        p += 20;                                /* 8 reserved bytes stay 0 */
    }

    p[0] = MP_BUS;
    p[1] = MP_PCI_BUS;
    memcpy(p + 2, "PCI   ", 6);
    p += 8;
    p[0] = MP_BUS;
    p[1] = MP_ISA_BUS;
    memcpy(p + 2, "ISA   ", 6);
    p += 8;
    entries += 2;

    p[0] = MP_IOAPIC;
    p[1] = ioapic_id;
    p[2] = MP_IOAPIC_VERSION;
    p[3] = 1;                                   /* enabled */
    wr32(p + 4, (uint32_t)X86_IOAPIC_BASE);
    p += 8;
    entries++;

    /* ISA IRQ n on IOAPIC pin n, but the timer (IRQ0) on pin 2, where the
     * PC's IOAPIC (and KVM's in-kernel one) has it; IRQ2, the PIC cascade,
     * is no interrupt source. */
    for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
        if (irq == 2)
            continue;
        /* polarity and trigger conform to the bus (ISA: edge, active high) */
        p = put_intsrc(p, MP_INT, MP_IRQ_CONFORMING, MP_ISA_BUS, (uint8_t)irq, ioapic_id,
                       irq == 0 ? 2 : (uint8_t)irq);
        entries++;
    }
    for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++)
        for (unsigned pin = 1; pin <= PCI_INTX_LINES; pin++) {
            p = put_intsrc(p, MP_INT, MP_IRQ_LEVEL | MP_IRQ_ACTIVE_LOW, MP_PCI_BUS,
                           (uint8_t)(slot << 2 | (pin - 1)), ioapic_id,
                           (uint8_t)(X86_PCI_GSI_BASE + pci_intx_line(slot, pin)));
            entries++;
        }

    p = put_lintsrc(p, MP_EXTINT, 0);
    p = put_lintsrc(p, MP_NMI, 1);
    entries += 2;

    size_t mpc_len = (size_t)(p - mpc);
    memcpy(mpc, "PCMP", 4);
    wr16(mpc + 4, (uint16_t)mpc_len);
    mpc[6] = MP_SPEC_REV;
    memcpy(mpc + 8, "PETREL  ", 8);             /* OEM ID */
    memcpy(mpc + 16, "PETREL VM   ", 12);       /* product ID */
    wr16(mpc + 34, (uint16_t)entries);
    wr32(mpc + 36, (uint32_t)X86_LAPIC_BASE);
    mpc[7] = mp_checksum(mpc, mpc_len);

    memcpy(base, "_MP_", 4);
    wr32(base + 4, (uint32_t)(X86_MPTABLE_ADDR + MPF_SIZE));
    base[8] = 1;                                /* length in 16-byte units */
    base[9] = MP_SPEC_REV;
    base[11] = 0;                               /* feature 1: a table follows */
    base[12] = 0;                               /* feature 2: virtual wire mode */
    base[10] = mp_checksum(base, MPF_SIZE);
    return 0;
}
