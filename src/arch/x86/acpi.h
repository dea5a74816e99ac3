/* ACPI tables for the x86 PC board (acpi.c): RSDP, RSDT, XSDT, FADT, MADT
 * and DSDT in the e820-reserved BIOS area 0xe0000..0xfffff, written by
 * x86_boot_setup() for both boot protocols.
 *
 * The FADT declares a hardware-reduced ACPI platform: no SCI, no PM1/GPE
 * blocks, no PM timer.  Poweroff and reset go through two registers the
 * board has to provide:
 * - the sleep control register, I/O port X86_ACPI_SLEEP_CTL_PORT (8-bit):
 *   the guest enters S5 (soft off) by writing
 *   X86_ACPI_SLP_EN | (X86_ACPI_S5_SLP_TYP << 2) = 0x34, after clearing
 *   WAK_STS by writing X86_ACPI_WAK_STS (0x80) to the sleep status register
 *   at X86_ACPI_SLEEP_STS_PORT (8-bit).  If the write does not stop the VM,
 *   Linux polls the status register until WAK_STS reads back as 1.
 * - the reset register: I/O port 0x64 value 0xfe, the i8042 reset.
 */
#ifndef PETREL_X86_ACPI_H
#define PETREL_X86_ACPI_H

#include "core/log.h"
#include "core/memory.h"

#define X86_ACPI_ADDR 0xe0000ull      /* RSDP here, the tables after it */
#define X86_ACPI_END 0x100000ull      /* the area ends where high memory starts */
#define X86_ACPI_RSDP_ADDR X86_ACPI_ADDR

#define X86_ACPI_SLEEP_CTL_PORT 0x604
#define X86_ACPI_SLEEP_STS_PORT 0x605
/* Sleep control register: SLP_TYP in bits 4:2, SLP_EN in bit 5. */
#define X86_ACPI_SLP_TYP_SHIFT 2
#define X86_ACPI_SLP_TYP_MASK 0x1c
#define X86_ACPI_SLP_EN 0x20
#define X86_ACPI_S5_SLP_TYP 5         /* the DSDT's \_S5_ package */
/* Sleep status register: WAK_STS, write 1 to clear. */
#define X86_ACPI_WAK_STS 0x80

/* Writes the tables for ncpus CPUs (APIC IDs 0..ncpus-1, the IOAPIC's ID is
 * ncpus, as in the MP table).  0 or a negative errno with a message. */
int x86_acpi_write(const struct gmem *mem, unsigned ncpus, struct err *e);

#endif
