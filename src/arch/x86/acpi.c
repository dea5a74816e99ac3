/* ACPI tables (ACPI 6.x specification, chapter 5 for the tables, chapter 20
 * for AML, chapter 6.4 for resource descriptors) in the e820-reserved BIOS
 * area, for kernels that use ACPI rather than the MP table (Linux without
 * CONFIG_X86_MPPARSE finds its CPUs only in the MADT) and to power off
 * through S5.  Layout, from X86_ACPI_ADDR (0xe0000), each table 16-byte
 * aligned:
 *   RSDP (revision 2): where the legacy scan of 0xe0000..0xfffff finds it;
 *        also handed over as boot_params.acpi_rsdp_addr and
 *        hvm_start_info.rsdp_paddr
 *   XSDT, RSDT: FADT, MADT
 *   FADT (revision 6): hardware-reduced ACPI, reset register, sleep
 *        control/status registers, X_DSDT (see acpi.h)
 *   MADT: one local APIC per vCPU, the IOAPIC, IRQ0 -> GSI 2, LINT1 = NMI
 *   DSDT: \_S5_, the legacy ISA devices (COM1, CMOS RTC, i8042) and the
 *        PCI root bridge.
 *
 * The PCI root bridge (\_SB.PCI0, PNP0A03): _CRS gives bus numbers 0-255,
 * the configuration mechanism #1 ports 0xcf8-0xcff and the memory window
 * X86_PCI_MMIO_BASE..+X86_PCI_MMIO_SIZE for BARs; _PRT maps INTA-INTD of
 * every slot straight to GSIs (no link devices): slot s pin p (0 = INTA)
 * to X86_PCI_GSI_BASE + (s + p) % 4, the PCI bus's swizzle (pci/pci.h).
 * Linux takes such GSI entries as level-triggered, active low, as PCI
 * interrupts are, so the MADT needs no interrupt source override for them
 * (overrides describe ISA IRQs only); the MP table says the same.  There
 * is no I/O window: the board's devices have memory BARs only.
 *
 * Why the DSDT describes the ISA devices: on a hardware-reduced platform
 * Linux/x86 drops the legacy PIC (acpi_generic_reduced_hw_init() sets
 * legacy_pic = &null_legacy_pic), so ISA IRQs 0-15 get no identity
 * mapping and request_irq(4) for a ttyS0 found by probing fails.  Devices
 * with _HID and _CRS are enumerated by PnP ACPI instead (8250_pnp, rtc_cmos,
 * i8042 PnP), which maps their IRQs through the IOAPIC.
 */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/boot_priv.h"
#include "pci/pci.h"

#define HDR_SIZE 36
#define RSDP_SIZE 36
#define RSDP_V1_SIZE 20         /* what the first checksum covers */
#define FADT_SIZE 276           /* revision 6 (ACPI 6.0 to 6.5) */
#define MADT_HDR_SIZE 44
#define MADT_LAPIC_SIZE 8
#define MADT_IOAPIC_SIZE 12
#define MADT_ISO_SIZE 10
#define MADT_LAPIC_NMI_SIZE 6
#define MADT_MAX_SIZE (MADT_HDR_SIZE + MADT_LAPIC_SIZE * X86_MAX_CPUS + MADT_IOAPIC_SIZE + \
                       MADT_ISO_SIZE + MADT_LAPIC_NMI_SIZE)
#define DSDT_MAX_SIZE 4096      /* the AML is fixed and about 2 KiB */

#define RSDP_REV 2
#define RSDT_REV 1
#define XSDT_REV 1
#define FADT_REV 6
#define MADT_REV 5
#define DSDT_REV 2              /* 64-bit AML integers */

#define OEM_ID "PETREL"         /* 6 bytes */
#define OEM_TABLE_ID "PETRELVM" /* 8 bytes */
#define OEM_REV 1
#define CREATOR_ID "PTRL"
#define CREATOR_REV 1
#define HYPERVISOR_ID "PETRELVM"

/* FADT fields (byte offsets). */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
#define FADT_CENTURY 108
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_HYPERVISOR_ID 268

#define IAPC_8042 (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define FADT_F_PWR_BUTTON (1u << 4)         /* no fixed-feature power button */
#define FADT_F_SLP_BUTTON (1u << 5)         /* no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)

#define CMOS_CENTURY_REG 0x32   /* devices/cmos_rtc.c implements it */
#define I8042_CMD_PORT 0x64
#define I8042_RESET_VALUE 0xfe

/* Generic Address Structure: system I/O space, byte access. */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT. */
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC_ENABLED 1u
enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_LAPIC_NMI = 4 };
#define MADT_ALL_PROCESSORS 0xff
#define MPS_INTI_CONFORMING 0   /* polarity and trigger of the bus (ISA: high, edge) */

/* AML opcodes. */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_OP 0x5b
#define AML_DEVICE_OP 0x82      /* after AML_EXT_OP */

/* Small resource descriptors. */
#define RES_IRQ_NOFLAGS 0x22    /* IRQ, 2 bytes: mask (edge, active high) */
#define RES_IO 0x47             /* I/O port, 7 bytes */
#define RES_IO_DECODE16 0x01
#define RES_END 0x79            /* end tag, 1 byte: checksum (0: none) */

/* Large resource descriptors: address space descriptors. */
#define RES_DWORD_ADDR 0x87     /* 23 bytes of body */
#define RES_WORD_ADDR 0x88      /* 13 bytes of body */
#define RES_ADDR_MEMORY 0
#define RES_ADDR_BUS 2
/* general flags: producer, positive decode, min and max fixed */
#define RES_ADDR_FIXED 0x0c
#define RES_MEM_RW 0x01         /* type-specific: read/write, non-cacheable */

/* The PC board's ISA devices (arch/x86/pc.c). */
#define COM1_PORT 0x3f8
#define COM1_PORTS 8
#define COM1_IRQ 4
#define RTC_PORT 0x70
#define RTC_PORTS 2
#define RTC_IRQ 8
#define KBD_DATA_PORT 0x60
#define KBD_IRQ 1

_Static_assert(X86_ACPI_ADDR >= X86_MPTABLE_ADDR && X86_ACPI_END <= X86_HIGH_MEM_START,
               "ACPI tables in the reserved BIOS area");
_Static_assert(X86_ACPI_ADDR % 16 == 0, "RSDP on a 16-byte boundary");

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static size_t align16(size_t v) { return (v + 15) & ~(size_t)15; }

/* The byte that makes p[0..len) sum to 0 when stored in one of its bytes
 * that is 0 now. */
static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

/* The standard header; the checksum is set by finish_table(). */
static void put_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    wr32(t + 4, len);
    t[8] = rev;
    t[9] = 0;
    memcpy(t + 10, OEM_ID, 6);
    memcpy(t + 16, OEM_TABLE_ID, 8);
    wr32(t + 24, OEM_REV);
    memcpy(t + 28, CREATOR_ID, 4);
    wr32(t + 32, CREATOR_REV);
}

static void finish_table(uint8_t *t, uint32_t len)
{
    t[9] = acpi_checksum(t, len);
}

static void put_gas_io8(uint8_t *p, uint16_t port)
{
    p[0] = GAS_SYSTEM_IO;
    p[1] = 8;                   /* register bit width */
    p[2] = 0;                   /* bit offset */
    p[3] = GAS_ACCESS_BYTE;
    wr64(p + 4, port);
}

/* ------------------------------------------------------------------ */
/* AML                                                                  */

struct aml {
    uint8_t *p;
    size_t len, cap;
    int overflow;
};

static void aml_bytes(struct aml *a, const void *src, size_t n)
{
    if (a->overflow || n > a->cap - a->len) {
        a->overflow = 1;
        return;
    }
    memcpy(a->p + a->len, src, n);
    a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void aml_seg(struct aml *a, const char seg[4])
{
    aml_bytes(a, seg, 4);
}

/* Integer constants the way iasl encodes them. */
static void aml_integer(struct aml *a, uint32_t v)
{
    uint8_t b[5];
    if (v <= 1) {
        aml_byte(a, v ? AML_ONE_OP : AML_ZERO_OP);
    } else if (v <= 0xff) {
        b[0] = AML_BYTE_PREFIX;
        b[1] = (uint8_t)v;
        aml_bytes(a, b, 2);
    } else if (v <= 0xffff) {
        b[0] = AML_WORD_PREFIX;
        wr16(b + 1, (uint16_t)v);
        aml_bytes(a, b, 3);
    } else {
        b[0] = AML_DWORD_PREFIX;
        wr32(b + 1, v);
        aml_bytes(a, b, 5);
    }
}

/* A PkgLength-prefixed body starts here: aml_open() returns its start,
 * aml_close() inserts the PkgLength in front of what was written since. */
static size_t aml_open(const struct aml *a)
{
    return a->len;
}

static void aml_close(struct aml *a, size_t start)
{
    if (a->overflow)
        return;
    size_t body = a->len - start, n;
    /* PkgLength counts its own bytes: 1 byte up to 63, then 2 bytes (12
     * bits) and 3 bytes (20 bits), the low nibble in the lead byte. */
    if (body + 1 <= 0x3f)
        n = 1;
    else if (body + 2 <= 0xfff)
        n = 2;
    else
        n = 3;
    size_t total = body + n;
    if (total > 0xfffff || n > a->cap - a->len) {
        a->overflow = 1;
        return;
    }
    memmove(a->p + start + n, a->p + start, body);
    if (n == 1) {
        a->p[start] = (uint8_t)total;
    } else {
        a->p[start] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
        a->p[start + 1] = (uint8_t)(total >> 4);
        if (n == 3)
            a->p[start + 2] = (uint8_t)(total >> 12);
    }
    a->len += n;
}

static unsigned hex_digit(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

/* EisaId ("PNPxxxx"): three letters of 5 bits, four hex digits, stored as
 * the bytes of the big-endian 32-bit value (DWordConst). */
static void aml_eisaid(struct aml *a, const char id[7])
{
    uint16_t vendor = (uint16_t)(((id[0] - '@') << 10) | ((id[1] - '@') << 5) | (id[2] - '@'));
    uint8_t b[5] = {
        AML_DWORD_PREFIX, (uint8_t)(vendor >> 8), (uint8_t)vendor,
        (uint8_t)(hex_digit(id[3]) << 4 | hex_digit(id[4])),
        (uint8_t)(hex_digit(id[5]) << 4 | hex_digit(id[6])),
    };
    aml_bytes(a, b, sizeof(b));
}

static size_t res_io(uint8_t *p, uint16_t port, uint8_t len)
{
    p[0] = RES_IO;
    p[1] = RES_IO_DECODE16;
    wr16(p + 2, port);          /* minimum */
    wr16(p + 4, port);          /* maximum */
    p[6] = 1;                   /* alignment */
    p[7] = len;
    return 8;
}

static size_t res_irq(uint8_t *p, unsigned irq)
{
    p[0] = RES_IRQ_NOFLAGS;
    wr16(p + 1, (uint16_t)(1u << irq));
    return 3;
}

static size_t res_end(uint8_t *p)
{
    p[0] = RES_END;
    p[1] = 0;
    return 2;
}

/* Device (seg) { Name (_HID, EisaId (hid)) Name (_CRS, ResourceTemplate ()
 * { IO (Decode16, port, port, 1, nports) [IO for port2] IRQNoFlags () {irq} }) } */
static void aml_isa_device(struct aml *a, const char seg[4], const char hid[7],
                           uint16_t port, uint8_t nports, uint16_t port2, unsigned irq)
{
    uint8_t crs[8 + 8 + 3 + 2];
    size_t n = res_io(crs, port, nports);
    if (port2)
        n += res_io(crs + n, port2, 1);
    n += res_irq(crs + n, irq);
    n += res_end(crs + n);

    aml_byte(a, AML_EXT_OP);
    aml_byte(a, AML_DEVICE_OP);
    size_t dev = aml_open(a);
    aml_seg(a, seg);
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_HID");
    aml_eisaid(a, hid);
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_CRS");
    aml_byte(a, AML_BUFFER_OP);
    size_t buf = aml_open(a);
    aml_integer(a, (uint32_t)n);     /* BufferSize */
    aml_bytes(a, crs, n);
    aml_close(a, buf);
    aml_close(a, dev);
}

static size_t res_word_bus(uint8_t *p, uint16_t min, uint16_t max)
{
    p[0] = RES_WORD_ADDR;
    wr16(p + 1, 13);
    p[3] = RES_ADDR_BUS;
    p[4] = RES_ADDR_FIXED;
    p[5] = 0;
    wr16(p + 6, 0);                     /* granularity */
    wr16(p + 8, min);
    wr16(p + 10, max);
    wr16(p + 12, 0);                    /* translation */
    wr16(p + 14, (uint16_t)(max - min + 1));
    return 16;
}

static size_t res_dword_mem(uint8_t *p, uint32_t min, uint32_t len)
{
    p[0] = RES_DWORD_ADDR;
    wr16(p + 1, 23);
    p[3] = RES_ADDR_MEMORY;
    p[4] = RES_ADDR_FIXED;
    p[5] = RES_MEM_RW;
    wr32(p + 6, 0);                     /* granularity */
    wr32(p + 10, min);
    wr32(p + 14, min + len - 1);
    wr32(p + 18, 0);                    /* translation */
    wr32(p + 22, len);
    return 26;
}

/* Name (name, Buffer () { bytes }) */
static void aml_name_buffer(struct aml *a, const char name[4], const uint8_t *bytes, size_t n)
{
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, name);
    aml_byte(a, AML_BUFFER_OP);
    size_t buf = aml_open(a);
    aml_integer(a, (uint32_t)n);     /* BufferSize */
    aml_bytes(a, bytes, n);
    aml_close(a, buf);
}

_Static_assert(X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE <= 0x100000000ull,
               "the PCI window fits a DWordMemory descriptor");

/* Device (PCI0) {
 *     Name (_HID, EisaId ("PNP0A03"))
 *     Name (_UID, Zero)
 *     Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                        0, 0, 0xff, 0, 0x100)
 *         IO (Decode16, 0xcf8, 0xcf8, 1, 8)
 *         DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 *                      NonCacheable, ReadWrite, 0, 0xc0000000, 0xfebfffff, 0,
 *                      0x3ec00000)
 *     })
 *     Name (_PRT, Package (128) {
 *         Package () { 0xffff, 0, 0, 16 }, ...        slot 0 INTA -> GSI 16
 *         Package () { 0x1fffff, 3, 0, 18 }           slot 31 INTD
 *     })
 * } */
static void aml_pci_root(struct aml *a)
{
    uint8_t crs[16 + 8 + 26 + 2];
    size_t n = res_word_bus(crs, 0, 0xff);
    n += res_io(crs + n, PCI_CONF1_PORT, PCI_CONF1_SIZE);
    n += res_dword_mem(crs + n, (uint32_t)X86_PCI_MMIO_BASE, (uint32_t)X86_PCI_MMIO_SIZE);
    n += res_end(crs + n);

    aml_byte(a, AML_EXT_OP);
    aml_byte(a, AML_DEVICE_OP);
    size_t dev = aml_open(a);
    aml_seg(a, "PCI0");
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_HID");
    aml_eisaid(a, "PNP0A03");
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_UID");
    aml_integer(a, 0);
    aml_name_buffer(a, "_CRS", crs, n);

    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_PRT");
    aml_byte(a, AML_PACKAGE_OP);
    size_t prt = aml_open(a);
    aml_byte(a, PCI_MAX_SLOTS * PCI_INTX_LINES);     /* NumElements */
    for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++)
        for (unsigned pin = 0; pin < PCI_INTX_LINES; pin++) {
            aml_byte(a, AML_PACKAGE_OP);
            size_t ent = aml_open(a);
            aml_byte(a, 4);
            aml_integer(a, slot << 16 | 0xffff);    /* Address: device, any function */
            aml_integer(a, pin);                    /* Pin: 0 = INTA */
            aml_integer(a, 0);                      /* Source: none, a GSI */
            aml_integer(a, X86_PCI_GSI_BASE + pci_intx_line(slot, pin + 1));
            aml_close(a, ent);
        }
    aml_close(a, prt);
    aml_close(a, dev);
}

/* The DSDT's definition block.  Its ASL:
 *   Name (_S5, Package () { 5, 0 })
 *   Scope (\_SB) {
 *       Device (COM1) { _HID PNP0501, _CRS: I/O 0x3f8-0x3ff, IRQ 4 }
 *       Device (RTC)  { _HID PNP0B00, _CRS: I/O 0x70-0x71, IRQ 8 }
 *       Device (PS2K) { _HID PNP0303, _CRS: I/O 0x60, I/O 0x64, IRQ 1 }
 *       Device (PCI0) { see aml_pci_root() }
 *   }
 * \_S5_ encodes as 08 '_S5_' 12 05 02 0a 05 00: NameOp, NameSeg,
 * PackageOp, PkgLength 5, NumElements 2, BytePrefix 5, ZeroOp.  SLP_TYP 5
 * is what the guest writes into bits 4:2 of the sleep control register; the
 * second value (the PM1b SLP_TYP of non-reduced hardware) is unused.
 * Checked by dumping the generated table and running `iasl -d` on it
 * (acpica-tools 20200925): it disassembles without errors or warnings to
 * the ASL above, and recompiling that ASL with iasl gives the same AML
 * bytes; acpiexec evaluates \_S5_ to Package { 5, 0 }. */
static void build_dsdt_aml(struct aml *a)
{
    aml_byte(a, AML_NAME_OP);
    aml_seg(a, "_S5_");
    aml_byte(a, AML_PACKAGE_OP);
    size_t pkg = aml_open(a);
    aml_byte(a, 2);                             /* NumElements */
    aml_integer(a, X86_ACPI_S5_SLP_TYP);        /* 0x0a 0x05 */
    aml_integer(a, 0);                          /* ZeroOp */
    aml_close(a, pkg);

    aml_byte(a, AML_SCOPE_OP);
    size_t sb = aml_open(a);
    aml_seg(a, "_SB_");         /* in the root scope: \_SB_, as iasl encodes it */
    aml_isa_device(a, "COM1", "PNP0501", COM1_PORT, COM1_PORTS, 0, COM1_IRQ);
    aml_isa_device(a, "RTC_", "PNP0B00", RTC_PORT, RTC_PORTS, 0, RTC_IRQ);
    aml_isa_device(a, "PS2K", "PNP0303", KBD_DATA_PORT, 1, I8042_CMD_PORT, KBD_IRQ);
    aml_pci_root(a);
    aml_close(a, sb);
}

/* ------------------------------------------------------------------ */
/* Tables                                                               */

static size_t build_dsdt(uint8_t *t)
{
    struct aml a = { .p = t + HDR_SIZE, .len = 0, .cap = DSDT_MAX_SIZE - HDR_SIZE };
    build_dsdt_aml(&a);
    if (a.overflow)
        return 0;
    uint32_t len = (uint32_t)(HDR_SIZE + a.len);
    put_header(t, "DSDT", len, DSDT_REV);
    finish_table(t, len);
    return len;
}

static size_t build_fadt(uint8_t *t, uint64_t dsdt)
{
    put_header(t, "FACP", FADT_SIZE, FADT_REV);
    wr32(t + FADT_FIRMWARE_CTRL, 0);            /* no FACS: hardware-reduced */
    wr32(t + FADT_DSDT, (uint32_t)dsdt);        /* below 1 MiB: both fields agree */
    t[FADT_CENTURY] = CMOS_CENTURY_REG;
    /* An 8042 exists, VGA does not; "CMOS RTC not present" (bit 5) stays
     * clear, and the legacy-devices bit too (no LPC/ISA devices beyond
     * what the DSDT lists). */
    wr16(t + FADT_IAPC_BOOT_ARCH, IAPC_8042 | IAPC_VGA_NOT_PRESENT);
    wr32(t + FADT_FLAGS, FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP |
                         FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON);
    put_gas_io8(t + FADT_RESET_REG, I8042_CMD_PORT);
    t[FADT_RESET_VALUE] = I8042_RESET_VALUE;
    t[FADT_MINOR_VERSION] = 0;
    wr64(t + FADT_X_DSDT, dsdt);
    put_gas_io8(t + FADT_SLEEP_CONTROL_REG, X86_ACPI_SLEEP_CTL_PORT);
    put_gas_io8(t + FADT_SLEEP_STATUS_REG, X86_ACPI_SLEEP_STS_PORT);
    memcpy(t + FADT_HYPERVISOR_ID, HYPERVISOR_ID, 8);
    finish_table(t, FADT_SIZE);
    return FADT_SIZE;
}

static size_t build_madt(uint8_t *t, unsigned ncpus)
{
    uint8_t *p = t + MADT_HDR_SIZE;
    uint8_t ioapic_id = (uint8_t)ncpus;

    wr32(t + 36, (uint32_t)X86_LAPIC_BASE);
    wr32(t + 40, MADT_PCAT_COMPAT);             /* there is an 8259 pair */

    for (unsigned i = 0; i < ncpus; i++) {
        p[0] = MADT_LAPIC;
        p[1] = MADT_LAPIC_SIZE;
        p[2] = (uint8_t)i;                      /* ACPI processor UID */
        p[3] = (uint8_t)i;                      /* APIC ID */
        wr32(p + 4, MADT_LAPIC_ENABLED);
        p += MADT_LAPIC_SIZE;
    }

    p[0] = MADT_IOAPIC;
    p[1] = MADT_IOAPIC_SIZE;
    p[2] = ioapic_id;
    p[3] = 0;
    wr32(p + 4, (uint32_t)X86_IOAPIC_BASE);
    wr32(p + 8, 0);                             /* GSI base */
    p += MADT_IOAPIC_SIZE;

    /* ISA IRQ0 (the PIT) is on IOAPIC pin 2, as on every PC; the other ISA
     * IRQs are identity-mapped, which needs no entry. */
    p[0] = MADT_ISO;
    p[1] = MADT_ISO_SIZE;
    p[2] = 0;                                   /* bus: ISA */
    p[3] = 0;                                   /* source IRQ */
    wr32(p + 4, 2);                             /* GSI */
    wr16(p + 8, MPS_INTI_CONFORMING);
    p += MADT_ISO_SIZE;

    p[0] = MADT_LAPIC_NMI;
    p[1] = MADT_LAPIC_NMI_SIZE;
    p[2] = MADT_ALL_PROCESSORS;
    wr16(p + 3, MPS_INTI_CONFORMING);
    p[5] = 1;                                   /* LINT1 */
    p += MADT_LAPIC_NMI_SIZE;

    uint32_t len = (uint32_t)(p - t);
    put_header(t, "APIC", len, MADT_REV);
    finish_table(t, len);
    return len;
}

/* RSDT (32-bit entries) or XSDT (64-bit entries). */
static size_t build_sdt(uint8_t *t, const char *sig, uint8_t rev, const uint64_t *entries,
                        unsigned n, unsigned width)
{
    uint32_t len = HDR_SIZE + n * width;
    put_header(t, sig, len, rev);
    for (unsigned i = 0; i < n; i++) {
        if (width == 8)
            wr64(t + HDR_SIZE + 8 * i, entries[i]);
        else
            wr32(t + HDR_SIZE + 4 * i, (uint32_t)entries[i]);
    }
    finish_table(t, len);
    return len;
}

static void build_rsdp(uint8_t *r, uint64_t rsdt, uint64_t xsdt)
{
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, OEM_ID, 6);
    r[15] = RSDP_REV;
    wr32(r + 16, (uint32_t)rsdt);
    wr32(r + 20, RSDP_SIZE);
    wr64(r + 24, xsdt);
    r[8] = acpi_checksum(r, RSDP_V1_SIZE);
    r[32] = acpi_checksum(r, RSDP_SIZE);        /* covers the first checksum too */
}

int x86_acpi_write(const struct gmem *mem, unsigned ncpus, struct err *e)
{
    if (ncpus < 1 || ncpus > X86_MAX_CPUS)
        return err_set(e, -EINVAL, "ACPI MADT: %u CPUs (1 to %u)", ncpus, X86_MAX_CPUS);
    uint64_t area_size = X86_ACPI_END - X86_ACPI_ADDR;
    uint8_t *area = gmem_ptr(mem, X86_ACPI_ADDR, area_size);
    if (!area)
        return err_set(e, -EFAULT, "no guest RAM for the ACPI tables");
    /* The whole scanned area: no stale "RSD PTR " from an earlier boot. */
    memset(area, 0, area_size);

    size_t off = align16(RSDP_SIZE);
    size_t xsdt_off = off;
    off = align16(off + HDR_SIZE + 2 * 8);
    size_t rsdt_off = off;
    off = align16(off + HDR_SIZE + 2 * 4);
    size_t fadt_off = off;
    off = align16(off + FADT_SIZE);
    size_t madt_off = off;
    off = align16(off + MADT_MAX_SIZE);
    size_t dsdt_off = off;
    _Static_assert(128 + FADT_SIZE + MADT_MAX_SIZE + DSDT_MAX_SIZE + 64 <=
                   X86_ACPI_END - X86_ACPI_ADDR, "ACPI tables fit the BIOS area");

    if (!build_dsdt(area + dsdt_off))
        return err_set(e, -ENOSPC, "ACPI DSDT larger than %u bytes", DSDT_MAX_SIZE);
    build_fadt(area + fadt_off, X86_ACPI_ADDR + dsdt_off);
    build_madt(area + madt_off, ncpus);
    const uint64_t entries[2] = { X86_ACPI_ADDR + fadt_off, X86_ACPI_ADDR + madt_off };
    build_sdt(area + xsdt_off, "XSDT", XSDT_REV, entries, 2, 8);
    build_sdt(area + rsdt_off, "RSDT", RSDT_REV, entries, 2, 4);
    build_rsdp(area, X86_ACPI_ADDR + rsdt_off, X86_ACPI_ADDR + xsdt_off);
    return 0;
}
