/* A VM's configuration: what `petrel run`'s flags, a Firecracker
 * configuration file or the API's PUT requests describe, before the machine
 * is built.  It owns its strings: every setter copies, replaces and frees,
 * so a configuration edited many times (API clients) never leaks. */
#ifndef PETREL_VM_CONFIG_H
#define PETREL_VM_CONFIG_H

#include <stdint.h>

#include "block/block.h"
#include "core/log.h"

#define VM_MAX_DEVICES 16
#define VM_MAX_DISKS 16

/* --cpu-mode: AUTO is the JIT where it is built (x86-64 hosts), else the
 * interpreter */
enum cpu_mode { CPU_MODE_AUTO = 0, CPU_MODE_INTERP, CPU_MODE_JIT };

struct vm_config {
    char *arch;             /* "riscv64" or "x86_64" */
    char *kernel;
    char *initrd;           /* NULL: none */
    char *append;
    char *firmware;         /* NULL: none */
    uint64_t mem_size;
    unsigned cpus;
    enum cpu_mode cpu_mode; /* riscv64 guests: how the rv64 engine runs guest code */
    unsigned timeout_s;     /* 0: no watchdog */
    char *devices[VM_MAX_DEVICES];   /* --device NAME[,OPTS], in order */
    unsigned ndevices;
    struct disk_config disks[VM_MAX_DISKS];  /* --disk, in order: vda, vdb, ... */
    char *disk_specs[VM_MAX_DISKS];          /* what disks[i]'s strings point into */
    char *disk_args[VM_MAX_DISKS];           /* the --disk argument as given */
    unsigned ndisks;
};

/* Copy s (NULL clears) into *field, freeing what was there.  0 or -ENOMEM. */
int vm_config_set(char **field, const char *s);
/* Append a device spec (validated by the caller). */
int vm_config_add_device(struct vm_config *c, const char *spec, struct err *e);
/* Remove device index i, keeping the order of the rest. */
void vm_config_del_device(struct vm_config *c, unsigned i);
/* Parse a --disk spec and append it (index -1) or replace disk index. */
int vm_config_set_disk(struct vm_config *c, int index, const char *spec, struct err *e);
/* Deep copy; dst must be empty (zeroed or freed). */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src, struct err *e);
/* Free every string and zero the configuration. */
void vm_config_free(struct vm_config *c);

#endif
