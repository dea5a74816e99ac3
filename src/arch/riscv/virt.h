/* The riscv64 "virt"-style board: RAM at 0x8000_0000, NS16550A UART,
 * CLINT, PLIC, SiFive test device (syscon poweroff/reboot), a PCIe ECAM
 * host bridge (pci-host-ecam-generic) with INTx on PLIC sources 32..35, an
 * FDT built with libfdt, and OpenSBI fw_dynamic hand-off (or M-mode entry
 * with --firmware none).  The memory map follows QEMU's virt machine. */
#ifndef PETREL_RISCV_VIRT_H
#define PETREL_RISCV_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/riscv/clint.h"
#include "arch/riscv/plic.h"
#include "core/log.h"
#include "devices/uart_16550.h"
#include "pci/pci.h"

#define VIRT_RAM_BASE 0x80000000ull
#define VIRT_TEST_BASE 0x00100000ull
#define VIRT_UART_BASE 0x10000000ull
#define VIRT_UART_IRQ 10
#define VIRT_MIN_RAM (16ull << 20)
/* PCI: ECAM for buses 0..255, a 32-bit memory window, no I/O space */
#define VIRT_PCI_ECAM_BASE 0x30000000ull
#define VIRT_PCI_ECAM_SIZE 0x10000000ull
#define VIRT_PCI_MMIO_BASE 0x40000000ull
#define VIRT_PCI_MMIO_SIZE 0x40000000ull
#define VIRT_PCI_IRQ_BASE 32    /* INTx lines 0..3 -> PLIC sources 32..35 */

/* The ISA the rv64 engine implements, as the FDT advertises it. */
#define RV64_ISA_STRING "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_zba_zbb_sstc"

struct vm;
struct rv64_machine;
struct virtio_input;

struct riscv_virt {
    struct vm *vm;
    struct rv64_machine *cpu;
    struct uart16550 uart;
    struct clint clint;
    struct plic plic;
    struct pci_bus pci;
    bool pci_ready;             /* pci initialised: destroy must tear it down */
    struct virtio_input *keyboard;  /* the first virtio keyboard: the power button */
    uint64_t fdt_addr;
};

int riscv_virt_create(struct vm *vm, struct err *e);
void riscv_virt_destroy(struct vm *vm);

/* fdt.c */
struct fdt_params {
    uint64_t ram_base, ram_size;
    unsigned nharts;
    const char *bootargs;
    uint64_t initrd_start, initrd_end;  /* 0, 0: none */
};
/* Build the device tree into buf (size bytes). */
int riscv_fdt_build(const struct fdt_params *p, void *buf, size_t size, struct err *e);

#endif
