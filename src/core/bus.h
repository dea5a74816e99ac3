/* MMIO (and port I/O) dispatch: devices register [base, base+size) with
 * read/write ops.  Accesses are 1, 2, 4 or 8 bytes; `off` is relative to the
 * region base.
 *
 * Regions can come and go while the guest runs (PCI BARs that the guest
 * moves or disables).  Each region lives in a stable slot whose index is
 * its id; a separate index array keeps the live regions sorted by base, so
 * a lookup is a binary search and adding, moving or removing a region is
 * O(regions).  Regions never overlap.  A device's read/write callback may
 * add, move or remove regions (a config-space write that moves a BAR): the
 * dispatcher does not touch the region after calling it. */
#ifndef PETREL_BUS_H
#define PETREL_BUS_H

#include <stdint.h>

#include "core/log.h"

struct mmio_ops {
    uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
    void (*write)(void *opaque, uint64_t off, uint64_t val, unsigned size);
};

struct bus_region {
    uint64_t base, size;        /* size 0: free slot */
    const struct mmio_ops *ops;
    void *opaque;
    const char *name;
};

#define BUS_MAX_REGIONS 64

struct bus {
    struct bus_region slot[BUS_MAX_REGIONS];   /* indexed by region id */
    uint8_t order[BUS_MAX_REGIONS];            /* ids of live regions, by base */
    unsigned n;                                /* live regions */
};

/* Returns the new region's id (>= 0), or -ENOSPC, -EINVAL (empty or
 * wrapping range), -EEXIST (overlaps a region) with a message in e. */
int bus_add(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops,
            void *opaque, const char *name, struct err *e);
/* Moves region `id` to new_base.  -EEXIST if it would overlap another
 * region, -EINVAL for a bad id or a wrapping range; the region then stays
 * where it was. */
int bus_move(struct bus *b, int id, uint64_t new_base, struct err *e);
/* Removes region `id` (-EINVAL for a bad id). */
int bus_remove(struct bus *b, int id);
/* The region with this id, or NULL. */
const struct bus_region *bus_region_get(const struct bus *b, int id);

/* Returns 0, or -EFAULT when no device covers [addr, addr+size). */
int bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *val);
int bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t val);

#endif
