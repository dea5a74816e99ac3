#include "core/bus.h"

#include <errno.h>
#include <stddef.h>

int bus_add(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops,
            void *opaque, const char *name, struct err *e)
{
    if (b->n >= BUS_MAX_REGIONS)
        return err_set(e, -ENOSPC, "too many MMIO regions (adding %s)", name);
    for (unsigned i = 0; i < b->n; i++) {
        const struct bus_region *r = &b->r[i];
        if (base < r->base + r->size && r->base < base + size)
            return err_set(e, -EEXIST, "MMIO region %s overlaps %s", name, r->name);
    }
    b->r[b->n++] = (struct bus_region){ base, size, ops, opaque, name };
    return 0;
}

static struct bus_region *bus_find(struct bus *b, uint64_t addr, unsigned size)
{
    for (unsigned i = 0; i < b->n; i++) {
        struct bus_region *r = &b->r[i];
        if (addr >= r->base && addr - r->base < r->size && size <= r->size - (addr - r->base))
            return r;
    }
    return NULL;
}

int bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *val)
{
    struct bus_region *r = bus_find(b, addr, size);
    if (!r)
        return -EFAULT;
    *val = r->ops->read(r->opaque, addr - r->base, size);
    return 0;
}

int bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t val)
{
    struct bus_region *r = bus_find(b, addr, size);
    if (!r)
        return -EFAULT;
    r->ops->write(r->opaque, addr - r->base, val, size);
    return 0;
}
