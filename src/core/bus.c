#include "core/bus.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static int region_valid(uint64_t base, uint64_t size)
{
    return size != 0 && base + size - 1 >= base;   /* non-empty, no wrap */
}

/* The live region (other than `skip`) that overlaps [base, base+size). */
static const struct bus_region *find_overlap(const struct bus *b, uint64_t base, uint64_t size,
                                             int skip)
{
    uint64_t last = base + size - 1;
    for (unsigned i = 0; i < b->n; i++) {
        int id = b->order[i];
        const struct bus_region *r = &b->slot[id];
        if (id != skip && base <= r->base + r->size - 1 && r->base <= last)
            return r;
    }
    return NULL;
}

/* Position in order[] of the first live region whose base is >= base. */
static unsigned lower_bound(const struct bus *b, uint64_t base)
{
    unsigned lo = 0, hi = b->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (b->slot[b->order[mid]].base < base)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void order_insert(struct bus *b, int id)
{
    unsigned pos = lower_bound(b, b->slot[id].base);
    memmove(&b->order[pos + 1], &b->order[pos], b->n - pos);
    b->order[pos] = (uint8_t)id;
    b->n++;
}

static void order_delete(struct bus *b, int id)
{
    for (unsigned i = 0; i < b->n; i++)
        if (b->order[i] == id) {
            memmove(&b->order[i], &b->order[i + 1], b->n - i - 1);
            b->n--;
            return;
        }
}

static int id_valid(const struct bus *b, int id)
{
    return id >= 0 && id < BUS_MAX_REGIONS && b->slot[id].size != 0;
}

int bus_add(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops,
            void *opaque, const char *name, struct err *e)
{
    if (!region_valid(base, size))
        return err_set(e, -EINVAL, "bad MMIO region %s at 0x%llx+0x%llx", name,
                       (unsigned long long)base, (unsigned long long)size);
    const struct bus_region *o = find_overlap(b, base, size, -1);
    if (o)
        return err_set(e, -EEXIST, "MMIO region %s overlaps %s", name, o->name);
    int id = 0;
    while (id < BUS_MAX_REGIONS && b->slot[id].size != 0)
        id++;
    if (id == BUS_MAX_REGIONS)
        return err_set(e, -ENOSPC, "too many MMIO regions (adding %s)", name);
    b->slot[id] = (struct bus_region){ base, size, ops, opaque, name };
    order_insert(b, id);
    return id;
}

int bus_move(struct bus *b, int id, uint64_t new_base, struct err *e)
{
    if (!id_valid(b, id))
        return err_set(e, -EINVAL, "no MMIO region %d", id);
    struct bus_region *r = &b->slot[id];
    if (!region_valid(new_base, r->size))
        return err_set(e, -EINVAL, "bad address 0x%llx for MMIO region %s",
                       (unsigned long long)new_base, r->name);
    const struct bus_region *o = find_overlap(b, new_base, r->size, id);
    if (o)
        return err_set(e, -EEXIST, "MMIO region %s at 0x%llx would overlap %s", r->name,
                       (unsigned long long)new_base, o->name);
    order_delete(b, id);
    r->base = new_base;
    order_insert(b, id);
    return 0;
}

int bus_remove(struct bus *b, int id)
{
    if (!id_valid(b, id))
        return -EINVAL;
    order_delete(b, id);
    b->slot[id] = (struct bus_region){ 0 };
    return 0;
}

const struct bus_region *bus_region_get(const struct bus *b, int id)
{
    return id_valid(b, id) ? &b->slot[id] : NULL;
}

static struct bus_region *bus_find(struct bus *b, uint64_t addr, unsigned size)
{
    /* the last region with base <= addr */
    unsigned lo = 0, hi = b->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (b->slot[b->order[mid]].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    struct bus_region *r = &b->slot[b->order[lo - 1]];
    if (addr - r->base < r->size && size <= r->size - (addr - r->base))
        return r;
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
