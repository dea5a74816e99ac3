/* x86-64 direct kernel boot: everything written into guest memory before the
 * first instruction, and the register state the boot vCPU starts with.
 *
 * Two kernel formats:
 * - bzImage, through Linux's 64-bit boot protocol (Documentation/arch/x86/
 *   boot.rst): the protected-mode kernel is loaded at 1 MiB, boot_params
 *   (the "zero page") gets the setup header, e820 map, command line and
 *   initrd; the vCPU starts in 64-bit mode at load address + 0x200 with
 *   RSI = boot_params, identity-mapped page tables, a flat GDT.
 * - ELF vmlinux (or any ELF64/ELF32 x86 image) with a PVH entry
 *   (XEN_ELFNOTE_PHYS32_ENTRY): segments at their physical addresses, the
 *   vCPU starts in 32-bit protected mode, paging off, at the PVH entry with
 *   EBX = hvm_start_info (magic 0x336ec578, version 1: command line,
 *   modules (the initrd), memory map).
 *
 * Guest physical layout (fixed, below 1 MiB unless noted):
 *   0x0500  GDT (null, code64 0x08, data 0x10, code32 0x18)
 *   0x1000  PML4, 0x2000 PDPT, 0x3000..0x6fff four page directories:
 *           identity map of the first 4 GiB with 2 MiB pages (PVM hosts
 *           do not support 1 GiB pages)
 *   0x7000  boot_params (bzImage) or hvm_start_info + memory map (PVH)
 *   0x8000  PVH module list
 *   0x20000 kernel command line (up to X86_CMDLINE_MAX bytes)
 *   0x9fc00 MP floating pointer + MP configuration table (SMP), in an
 *           e820-reserved range 0x9fc00..0x100000
 *   0xe0000 ACPI: RSDP (found by the legacy scan of 0xe0000..0xfffff and
 *           passed in boot_params.acpi_rsdp_addr / hvm_start_info
 *           .rsdp_paddr), then XSDT, RSDT, FADT, MADT, DSDT (acpi.h)
 *   0x100000 bzImage protected-mode kernel
 *   initrd: page-aligned, as high as possible below min(RAM end,
 *           initrd_addr_max, 0xc0000000)
 * RAM is [0, min(mem, 3 GiB)) and, for larger guests, [4 GiB, 4 GiB +
 * rest): the hole below 4 GiB is for devices, never RAM in the e820 map:
 *   0xc0000000..0xfebfffff  the PCI memory window (BARs), X86_PCI_MMIO_*
 *   0xfec00000  IOAPIC
 *   0xfee00000  local APIC; also the MSI address window (0xfee00000..
 *               0xfeefffff), where an MSI-X message must point
 *   0xfffbc000  KVM's identity map and TSS pages (kvm.c)
 * x86_ram_layout() says where the RAM is.
 *
 * Interrupts: the IOAPIC's 24 pins are GSIs 0-23; ISA IRQs are identity
 * mapped except IRQ 0 on pin 2.  PCI INTx line l (0..3, the bus's swizzle:
 * slot s pin INTx maps to (s + pin - 1) % 4) is GSI X86_PCI_GSI_BASE + l,
 * level-triggered, active low as PCI defines it (the ACPI _PRT and the MP
 * table say so; KVM's IOAPIC does not look at the polarity).
 *
 * Inputs are untrusted files: every header field is checked against the
 * file size and guest RAM before anything is copied.
 */
#ifndef PETREL_X86_BOOT_H
#define PETREL_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/memory.h"

#define X86_CMDLINE_MAX 65536
#define X86_LOW_RAM_MAX (3ull << 30)
#define X86_HIGH_RAM_BASE (4ull << 30)
#define X86_IOAPIC_BASE 0xfec00000ull
#define X86_LAPIC_BASE 0xfee00000ull
#define X86_PCI_MMIO_BASE 0xc0000000ull
#define X86_PCI_MMIO_SIZE (X86_IOAPIC_BASE - X86_PCI_MMIO_BASE)
#define X86_PCI_GSI_BASE 16         /* INTx lines 0-3: IOAPIC pins 16-19 */
#define X86_MSI_ADDR_BASE 0xfee00000ull
#define X86_MSI_ADDR_SIZE 0x100000ull

/* RAM regions for a guest of mem_size bytes: fills up to 2 regions. */
unsigned x86_ram_layout(uint64_t mem_size, uint64_t base[2], uint64_t size[2]);

enum x86_entry_mode {
    X86_ENTRY_LONG64,   /* 64-bit mode, paging on: bzImage */
    X86_ENTRY_PROT32,   /* 32-bit protected mode, paging off: PVH */
};

/* How the boot vCPU (and only it) starts. */
struct x86_entry {
    enum x86_entry_mode mode;
    uint64_t rip;
    uint64_t rsi;       /* LONG64: boot_params */
    uint64_t rbx;       /* PROT32: hvm_start_info */
    uint64_t cr3;       /* LONG64: PML4 */
    uint64_t gdt_base;
    uint16_t gdt_limit;
};

struct x86_boot_config {
    const uint8_t *kernel;      /* whole kernel file */
    size_t kernel_size;
    const char *kernel_name;    /* for error messages */
    const uint8_t *initrd;      /* NULL: none */
    size_t initrd_size;
    const char *cmdline;
    uint64_t mem_size;
    unsigned ncpus;             /* MP table and MADT entries, APIC IDs 0..ncpus-1 */
};

/* Load the kernel (and initrd), write boot_params or hvm_start_info, e820,
 * page tables, GDT, MP table and ACPI tables.  Returns 0 or a negative
 * errno with a message in e (e.g. "not an x86 kernel", "kernel too old for
 * the 64-bit boot protocol", "initrd does not fit below ..."). */
int x86_boot_setup(const struct gmem *mem, const struct x86_boot_config *cfg,
                   struct x86_entry *out, struct err *e);

/* Identify the format without loading: 0 and *is_pvh set, or -ENOEXEC. */
int x86_kernel_probe(const uint8_t *k, size_t size, const char *name, int *is_pvh,
                     struct err *e);

/* 1 if the kernel is Linux (a bzImage with a kernel_version string, or an
 * ELF holding "Linux version "), 0 otherwise (e.g. bare test guests). */
int x86_kernel_is_linux(const uint8_t *k, size_t size);

#endif
