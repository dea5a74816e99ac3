/* The machine object: configuration, guest memory, the MMIO bus, the
 * console, and why the VM stopped.  Engines and boards hang their state off
 * it; nothing is global. */
#ifndef PETREL_VM_H
#define PETREL_VM_H

#include <stdint.h>

#include "block/block.h"
#include "core/bus.h"
#include "core/console.h"
#include "core/memory.h"

/* Process exit statuses of `petrel run` (documented in the README). */
enum {
    PETREL_EXIT_POWEROFF = 0,
    PETREL_EXIT_ERROR = 1,
    PETREL_EXIT_REBOOT = 2,
    PETREL_EXIT_PANIC = 3,
    PETREL_EXIT_TIMEOUT = 4,
    PETREL_EXIT_GUEST_FAIL = 5,
};

enum vm_exit_reason {
    VM_RUNNING = 0,
    VM_EXIT_POWEROFF,
    VM_EXIT_REBOOT,
    VM_EXIT_PANIC,
    VM_EXIT_TIMEOUT,
    VM_EXIT_GUEST_FAIL,   /* guest powered off reporting failure */
    VM_EXIT_QUIT,         /* user typed the console escape */
    VM_EXIT_ERROR,
};

#define VM_MAX_DEVICES 16
#define VM_MAX_DISKS 16

struct vm_config {
    const char *arch;       /* "riscv64" or "x86_64" */
    const char *kernel;
    const char *initrd;     /* NULL: none */
    const char *append;
    const char *firmware;   /* NULL: none */
    uint64_t mem_size;
    unsigned cpus;
    unsigned timeout_s;     /* 0: no watchdog */
    const char *devices[VM_MAX_DEVICES];   /* --device NAME, in order */
    unsigned ndevices;
    struct disk_config disks[VM_MAX_DISKS];  /* --disk, in order: vda, vdb, ... */
    unsigned ndisks;
};

struct evloop;

struct vm {
    struct vm_config cfg;
    struct gmem mem;
    struct bus bus;
    struct console con;
    enum vm_exit_reason exit_reason;
    uint32_t exit_code;     /* guest-provided detail (e.g. failure code) */
    uint64_t deadline_ns;   /* --timeout, 0 if none */
    uint64_t start_ns;      /* when petrel started setting the VM up */
    struct evloop *loop;    /* device event loop (core/evloop.h) */
    void *board;            /* arch board state */
};

static inline void vm_request_exit(struct vm *vm, enum vm_exit_reason r, uint32_t code)
{
    if (vm->exit_reason == VM_RUNNING) {
        vm->exit_reason = r;
        vm->exit_code = code;
    }
}

/* Periodic housekeeping shared by engines, in device context: console I/O,
 * panic detection, escape key, watchdog, and the device event loop's ready
 * handlers.  Waits up to timeout_ns for console input or device events. */
void vm_poll(struct vm *vm, uint64_t timeout_ns);
int vm_exit_status(const struct vm *vm);
const char *vm_exit_name(enum vm_exit_reason r);

#endif
