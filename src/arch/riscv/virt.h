/* The riscv64 "virt"-style board: RAM at 0x8000_0000, NS16550A UART,
 * CLINT, PLIC, SiFive test device (syscon poweroff/reboot), an FDT built
 * with libfdt, and OpenSBI fw_dynamic hand-off (or M-mode entry with
 * --firmware none). */
#ifndef PETREL_RISCV_VIRT_H
#define PETREL_RISCV_VIRT_H

#include <stddef.h>
#include <stdint.h>

#include "arch/riscv/clint.h"
#include "arch/riscv/plic.h"
#include "core/log.h"
#include "devices/uart_16550.h"

#define VIRT_RAM_BASE 0x80000000ull
#define VIRT_TEST_BASE 0x00100000ull
#define VIRT_UART_BASE 0x10000000ull
#define VIRT_UART_IRQ 10
#define VIRT_MIN_RAM (16ull << 20)

/* The ISA the rv64 engine implements, as the FDT advertises it. */
#define RV64_ISA_STRING "rv64imafdc_zicntr_zicsr_zifencei_zihintpause"

struct vm;
struct rv64_machine;

struct riscv_virt {
    struct vm *vm;
    struct rv64_machine *cpu;
    struct uart16550 uart;
    struct clint clint;
    struct plic plic;
    uint64_t fdt_addr;
};

int riscv_virt_create(struct vm *vm, struct err *e);
void riscv_virt_run(struct vm *vm);
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
