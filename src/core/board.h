/* A machine model ("board") for one guest architecture on its engine.
 *
 * create builds the machine from vm->cfg (memory, devices, firmware and
 * kernel, CPUs in their reset state) on the event-loop thread; on failure it
 * has undone everything itself.  start launches the guest-CPU threads.
 * pause returns once every CPU is parked at an instruction boundary and
 * guest time is frozen; resume undoes it without a time jump.  stop ends
 * and joins the CPU threads (from running or paused).  pause, resume and
 * stop are called without the device lock (a CPU may need it to finish an
 * exit); power_button is called with it held (device context).
 * destroy frees what create built. */
#ifndef PETREL_BOARD_H
#define PETREL_BOARD_H

#include "core/log.h"

struct vm;
struct vm_cpu_stats;

struct board_ops {
    const char *arch;
    /* default guest files, in <guest dir>/<arch>/; NULL when not used */
    const char *default_kernel, *default_initrd, *default_firmware;
    unsigned max_cpus;
    int (*create)(struct vm *vm, struct err *e);
    int (*start)(struct vm *vm, struct err *e);
    void (*pause)(struct vm *vm);
    void (*resume)(struct vm *vm);
    void (*stop)(struct vm *vm);
    void (*destroy)(struct vm *vm);
    int (*power_button)(struct vm *vm, struct err *e);  /* NULL: none */
    void (*cpu_stats)(struct vm *vm, unsigned i, struct vm_cpu_stats *out);
};

extern const struct board_ops riscv_virt_board;
extern const struct board_ops x86_pc_board;

#endif
