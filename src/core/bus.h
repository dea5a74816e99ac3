/* MMIO dispatch: devices register [base, base+size) with read/write ops.
 * Accesses are 1, 2, 4 or 8 bytes; `off` is relative to the region base. */
#ifndef PETREL_BUS_H
#define PETREL_BUS_H

#include <stdint.h>

#include "core/log.h"

struct mmio_ops {
    uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
    void (*write)(void *opaque, uint64_t off, uint64_t val, unsigned size);
};

struct bus_region {
    uint64_t base, size;
    const struct mmio_ops *ops;
    void *opaque;
    const char *name;
};

#define BUS_MAX_REGIONS 32

struct bus {
    struct bus_region r[BUS_MAX_REGIONS];
    unsigned n;
};

int bus_add(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops,
            void *opaque, const char *name, struct err *e);
/* Returns 0, or -EFAULT when no device covers [addr, addr+size). */
int bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *val);
int bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t val);

#endif
