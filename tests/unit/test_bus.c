/* Unit tests for the MMIO bus (src/core/bus.c): sorted lookup, overlaps,
 * dynamic regions (move/remove), stable ids, a callback that moves its
 * own region. */
#include <errno.h>
#include <string.h>

#include "core/bus.h"

#include "unit.h"

struct dev {
    int tag;
    uint64_t last_off;
    unsigned reads, writes;
    struct bus *bus;
    int self_id;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct dev *d = opaque;
    (void)size;
    d->reads++;
    d->last_off = off;
    return (uint64_t)d->tag << 32 | off;
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct dev *d = opaque;
    (void)size;
    d->writes++;
    d->last_off = off;
    if (d->bus && off == 0) /* a write moves the region to val */
        bus_move(d->bus, d->self_id, val, NULL);
}

static const struct mmio_ops ops = { .read = dev_read, .write = dev_write };

static uint64_t rd(struct bus *b, uint64_t addr, unsigned size, int *ret)
{
    uint64_t v = 0xdead;
    *ret = bus_read(b, addr, size, &v);
    return v;
}

static void test_add_and_lookup(void)
{
    static struct bus b;
    memset(&b, 0, sizeof(b));
    struct dev d[5] = { { .tag = 0 }, { .tag = 1 }, { .tag = 2 }, { .tag = 3 }, { .tag = 4 } };
    /* added out of order */
    uint64_t bases[5] = { 0x5000, 0x1000, 0x9000, 0x3000, 0x7000 };
    for (int i = 0; i < 5; i++) {
        int id = bus_add(&b, bases[i], 0x1000, &ops, &d[i], "dev", NULL);
        EQ(id, i);
    }
    int ret;
    for (int i = 0; i < 5; i++) {
        EQ(rd(&b, bases[i], 4, &ret), (uint64_t)i << 32);
        EQ(ret, 0);
        EQ(rd(&b, bases[i] + 0xffc, 4, &ret), (uint64_t)i << 32 | 0xffc);
        EQ(ret, 0);
        rd(&b, bases[i] + 0x1000, 4, &ret);      /* gaps between regions */
        EQ(ret, -EFAULT);
    }
    rd(&b, 0x1ffe, 4, &ret);                     /* straddles the end */
    EQ(ret, -EFAULT);
    rd(&b, 0, 1, &ret);
    EQ(ret, -EFAULT);
    rd(&b, ~0ull, 1, &ret);
    EQ(ret, -EFAULT);
    EQ(bus_write(&b, 0x9010, 4, 1), 0);
    EQ(d[2].writes, 1);
    EQ(d[2].last_off, 0x10);
    EQ(bus_write(&b, 0xa000, 4, 1), -EFAULT);

    /* overlaps and bad ranges are refused */
    struct err e;
    EQ(bus_add(&b, 0x5800, 0x1000, &ops, &d[0], "x", &e), -EEXIST);
    CHECK(strstr(e.msg, "overlaps") != NULL, "message: %s", e.msg);
    EQ(bus_add(&b, 0x0800, 0x1000, &ops, &d[0], "x", NULL), -EEXIST);
    EQ(bus_add(&b, 0x0, 0, &ops, &d[0], "x", NULL), -EINVAL);
    EQ(bus_add(&b, ~0ull - 10, 0x100, &ops, &d[0], "x", NULL), -EINVAL);
    /* a region that ends at the very top of the address space is fine */
    int top = bus_add(&b, ~0ull - 0xfff, 0x1000, &ops, &d[0], "top", NULL);
    CHECK(top >= 0, "top region: %d", top);
    EQ(rd(&b, ~0ull - 7, 8, &ret), 0xff8);
    EQ(ret, 0);
}

static void test_move_remove(void)
{
    static struct bus b;
    memset(&b, 0, sizeof(b));
    struct dev a = { .tag = 1 }, c = { .tag = 2 };
    int ia = bus_add(&b, 0x10000, 0x4000, &ops, &a, "a", NULL);
    int ic = bus_add(&b, 0x20000, 0x4000, &ops, &c, "c", NULL);
    int ret;
    EQ(bus_move(&b, ia, 0x30000, NULL), 0);
    rd(&b, 0x10000, 4, &ret);
    EQ(ret, -EFAULT);
    EQ(rd(&b, 0x30004, 4, &ret), 1ull << 32 | 4);
    EQ(bus_region_get(&b, ia)->base, 0x30000);
    /* moving onto another region fails and leaves it in place */
    EQ(bus_move(&b, ia, 0x22000, NULL), -EEXIST);
    EQ(bus_region_get(&b, ia)->base, 0x30000);
    /* moving onto itself (overlapping its old place) is fine */
    EQ(bus_move(&b, ia, 0x31000, NULL), 0);
    EQ(rd(&b, 0x34ffc, 4, &ret), 1ull << 32 | 0x3ffc);
    /* moving below the other region reorders the lookup */
    EQ(bus_move(&b, ia, 0x1000, NULL), 0);
    EQ(rd(&b, 0x1000, 4, &ret), 1ull << 32);
    EQ(rd(&b, 0x20000, 4, &ret), 2ull << 32);
    EQ(bus_move(&b, 17, 0x1000, NULL), -EINVAL);
    EQ(bus_move(&b, -1, 0x1000, NULL), -EINVAL);
    EQ(bus_move(&b, ia, ~0ull - 0x100, NULL), -EINVAL);

    EQ(bus_remove(&b, ic), 0);
    rd(&b, 0x20000, 4, &ret);
    EQ(ret, -EFAULT);
    EQ(bus_remove(&b, ic), -EINVAL);
    CHECK(bus_region_get(&b, ic) == NULL, "removed region still there");
    /* ids are reused, the others keep theirs */
    int id2 = bus_add(&b, 0x50000, 0x1000, &ops, &c, "c2", NULL);
    EQ(id2, ic);
    EQ(rd(&b, 0x1000, 4, &ret), 1ull << 32);
    EQ(rd(&b, 0x50000, 4, &ret), 2ull << 32);

    /* fill the bus: the 65th region is refused */
    static struct bus f;
    memset(&f, 0, sizeof(f));
    for (int i = 0; i < BUS_MAX_REGIONS; i++)
        EQ(bus_add(&f, 0x1000ull * (BUS_MAX_REGIONS - i), 0x1000, &ops, &a, "r", NULL), i);
    EQ(bus_add(&f, 0x1000000, 0x1000, &ops, &a, "r", NULL), -ENOSPC);
    for (int i = 0; i < BUS_MAX_REGIONS; i++) {
        EQ(rd(&f, 0x1000ull * (i + 1) + 8, 1, &ret), 1ull << 32 | 8);
        EQ(ret, 0);
    }
}

static void test_callback_moves_itself(void)
{
    static struct bus b;
    memset(&b, 0, sizeof(b));
    struct dev d = { .tag = 7, .bus = &b };
    d.self_id = bus_add(&b, 0x4000, 0x1000, &ops, &d, "self", NULL);
    EQ(bus_write(&b, 0x4000, 8, 0x9000), 0);
    int ret;
    rd(&b, 0x4000, 4, &ret);
    EQ(ret, -EFAULT);
    EQ(rd(&b, 0x9010, 4, &ret), 7ull << 32 | 0x10);
}

int main(void)
{
    test_add_and_lookup();
    test_move_remove();
    test_callback_moves_itself();
    return unit_done("test_bus");
}
