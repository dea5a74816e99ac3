/* A machine model ("board") for one guest architecture: it builds the VM
 * (memory, devices, firmware/kernel, CPUs on its engine), runs it until
 * vm->exit_reason is set, and tears it down. */
#ifndef PETREL_BOARD_H
#define PETREL_BOARD_H

#include "core/log.h"

struct vm;

struct board_ops {
    const char *arch;
    /* default guest files, in <guest dir>/<arch>/; NULL when not used */
    const char *default_kernel, *default_initrd, *default_firmware;
    unsigned max_cpus;
    int (*create)(struct vm *vm, struct err *e);
    void (*run)(struct vm *vm);
    void (*destroy)(struct vm *vm);
};

extern const struct board_ops riscv_virt_board;
extern const struct board_ops x86_pc_board;

#endif
