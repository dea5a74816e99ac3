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
 * destroy frees what create built.
 *
 * Snapshots (docs/snapshots.md).  When vm->restore is set, create builds the
 * machine for a snapshot: RAM comes from vm_ram_add (mapped from the memory
 * file), no firmware or kernel is loaded and the CPUs are not reset; load
 * then fills every CPU and device from the state file, before start.  save
 * writes every CPU and device (the VM paused, the device lock held; it
 * quiesces the devices first).  dirty_reset makes the CPUs mark the pages
 * they write again after gmem_dirty_reset (paused).  With vm->start_paused
 * set, start leaves the CPUs parked before their first instruction and
 * guest time frozen, as pause would. */
#ifndef PETREL_BOARD_H
#define PETREL_BOARD_H

#include "core/log.h"

struct vm;
struct vm_cpu_stats;
struct snap_writer;
struct snap_file;

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
    void (*save)(struct vm *vm, struct snap_writer *w);         /* NULL: no snapshots */
    int (*load)(struct vm *vm, struct snap_file *f, struct err *e);
    void (*dirty_reset)(struct vm *vm);
};

extern const struct board_ops riscv_virt_board;
extern const struct board_ops x86_pc_board;

#endif
