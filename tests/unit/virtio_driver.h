/* A minimal virtio guest driver for unit tests: guest RAM, an ECAM PCI bus
 * with INTx lines, and the steps a driver takes (probe the capabilities,
 * the spec's init sequence, descriptors, avail ring, kicks).  Shared by the
 * virtio device tests; include after unit.h. */
#ifndef PETREL_TEST_VIRTIO_DRIVER_H
#define PETREL_TEST_VIRTIO_DRIVER_H

#include <string.h>

#include "pci/pci.h"
#include "virtio/virtio_pci.h"

#define RAM 0x80000000ull
#define RAM_SIZE (4ull << 20)
#define ECAM 0x30000000ull
#define WIN 0x40000000ull

static struct gmem mem;
static struct bus mmio;
static struct pci_bus pb;
static bool lines[PCI_INTX_LINES];

static inline void set_intx(void *opaque, unsigned line, bool level)
{
    (void)opaque;
    lines[line] = level;
}

static inline void *gp(uint64_t gpa, uint64_t len)
{
    void *p = gmem_ptr(&mem, gpa, len);
    if (!p)
        CHECK(p != NULL, "gpa 0x%llx not in RAM", (unsigned long long)gpa);
    return p;
}

static inline uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, gp(gpa, 2), 2); return v; }
static inline uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, gp(gpa, 4), 4); return v; }
static inline void wr16(uint64_t gpa, uint16_t v) { memcpy(gp(gpa, 2), &v, 2); }

/* --- a minimal guest driver ---------------------------------------------- */

struct drv {
    unsigned slot;
    uint64_t bar, common, isr, notify, device;
    uint32_t mult, device_len;
    unsigned cfg_cap;
    uint16_t qsize[2], avail_idx[2], noff[2];
    uint64_t desc[2], avail[2], used[2], buf;
};

static inline uint32_t cfg_rd(unsigned slot, unsigned reg, unsigned size)
{
    uint64_t v = 0;
    bus_read(&mmio, ECAM + ((uint64_t)slot << 15) + reg, size, &v);
    return (uint32_t)v;
}

static inline void cfg_wr(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
    bus_write(&mmio, ECAM + ((uint64_t)slot << 15) + reg, size, v);
}

static inline uint64_t bar_rd(struct drv *d, uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;
    CHECK(bus_read(&mmio, d->bar + off, size, &v) == 0, "BAR read at 0x%llx",
          (unsigned long long)off);
    return v;
}

static inline void bar_wr(struct drv *d, uint64_t off, unsigned size, uint64_t v)
{
    CHECK(bus_write(&mmio, d->bar + off, size, v) == 0, "BAR write at 0x%llx",
          (unsigned long long)off);
}

#define COMMON(d, reg) ((d)->common + VIRTIO_PCI_COMMON_##reg)

/* Find the device in `slot`, enable it, locate its register blocks. */
static inline void drv_probe(struct drv *d, unsigned slot, uint64_t ring_base)
{
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    EQ(cfg_rd(slot, PCI_VENDOR_ID, 2), VIRTIO_PCI_VENDOR);
    cfg_wr(slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    d->bar = (cfg_rd(slot, PCI_BAR0, 4) & ~0xfull) | (uint64_t)cfg_rd(slot, PCI_BAR0 + 4, 4) << 32;
    unsigned found = 0;
    for (unsigned p = cfg_rd(slot, PCI_CAPABILITY_LIST, 1); p; p = cfg_rd(slot, p + 1, 1)) {
        if (cfg_rd(slot, p, 1) != PCI_CAP_ID_VNDR)
            continue;
        unsigned type = cfg_rd(slot, p + 3, 1);
        uint32_t off = cfg_rd(slot, p + 8, 4), len = cfg_rd(slot, p + 12, 4);
        if (type != VIRTIO_PCI_CAP_PCI_CFG)
            EQ(cfg_rd(slot, p + 4, 1), 0);   /* all in BAR 0 */
        found |= 1u << type;
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG: d->common = off; CHECK(len >= 0x38, "len"); break;
        case VIRTIO_PCI_CAP_ISR_CFG: d->isr = off; break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            d->notify = off;
            d->mult = cfg_rd(slot, p + 16, 4);
            EQ(cfg_rd(slot, p + 2, 1), 20);
            break;
        case VIRTIO_PCI_CAP_DEVICE_CFG: d->device = off; d->device_len = len; break;
        case VIRTIO_PCI_CAP_PCI_CFG: d->cfg_cap = p; break;
        }
    }
    CHECK((found & 0x2e) == 0x2e, "missing virtio capabilities: 0x%x", found);
    for (unsigned q = 0; q < 2; q++) {
        d->desc[q] = ring_base + 0x4000 * q;
        d->avail[q] = d->desc[q] + 0x1000;
        d->used[q] = d->desc[q] + 0x2000;
    }
    d->buf = ring_base + 0x10000;
}

/* The spec's initialisation sequence; returns the final status. */
static inline uint8_t drv_init(struct drv *d, uint64_t features, unsigned nq, uint16_t qsize)
{
    bar_wr(d, COMMON(d, STATUS), 1, 0);
    EQ(bar_rd(d, COMMON(d, STATUS), 1), 0);
    bar_wr(d, COMMON(d, STATUS), 1, VIRTIO_STATUS_ACKNOWLEDGE);
    bar_wr(d, COMMON(d, STATUS), 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    bar_wr(d, COMMON(d, GFSELECT), 4, 0);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)features);
    bar_wr(d, COMMON(d, GFSELECT), 4, 1);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)(features >> 32));
    bar_wr(d, COMMON(d, STATUS), 1, 0x0b);
    uint8_t st = (uint8_t)bar_rd(d, COMMON(d, STATUS), 1);
    if (!(st & VIRTIO_STATUS_FEATURES_OK))
        return st;
    for (unsigned q = 0; q < nq; q++) {
        memset(gp(d->desc[q], 0x4000), 0, 0x4000);
        d->avail_idx[q] = 0;
        bar_wr(d, COMMON(d, Q_SELECT), 2, q);
        d->qsize[q] = qsize;
        bar_wr(d, COMMON(d, Q_SIZE), 2, qsize);
        d->noff[q] = (uint16_t)bar_rd(d, COMMON(d, Q_NOFF), 2);
        /* 64-bit registers as two 32-bit halves, as Linux writes them */
        bar_wr(d, COMMON(d, Q_DESCLO), 4, (uint32_t)d->desc[q]);
        bar_wr(d, COMMON(d, Q_DESCHI), 4, d->desc[q] >> 32);
        bar_wr(d, COMMON(d, Q_AVAILLO), 4, (uint32_t)d->avail[q]);
        bar_wr(d, COMMON(d, Q_AVAILHI), 4, d->avail[q] >> 32);
        bar_wr(d, COMMON(d, Q_USEDLO), 4, (uint32_t)d->used[q]);
        bar_wr(d, COMMON(d, Q_USEDHI), 4, d->used[q] >> 32);
        bar_wr(d, COMMON(d, Q_ENABLE), 2, 1);
    }
    bar_wr(d, COMMON(d, STATUS), 1, 0x0f);
    return (uint8_t)bar_rd(d, COMMON(d, STATUS), 1);
}

#define STD_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

static inline void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    struct virtq_desc de = { addr, len, flags, next };
    memcpy(gp(table + 16ull * i, 16), &de, 16);
}

static inline void drv_avail(struct drv *d, unsigned q, uint16_t head)
{
    wr16(d->avail[q] + 4 + 2ull * (d->avail_idx[q] % d->qsize[q]), head);
    d->avail_idx[q]++;
    wr16(d->avail[q] + 2, d->avail_idx[q]);
}

static inline void drv_kick(struct drv *d, unsigned q)
{
    bar_wr(d, d->notify + (uint64_t)d->noff[q] * d->mult, 2, q);
}

static inline uint16_t used_idx(struct drv *d, unsigned q) { return rd16(d->used[q] + 2); }
static inline uint8_t status(struct drv *d) { return (uint8_t)bar_rd(d, COMMON(d, STATUS), 1); }
static inline bool line(struct drv *d) { return lines[pci_intx_line(d->slot, 1)]; }

/* --- devices with more queues (vsock, balloon) ------------------------- */

/* One queue: its rings and the driver's indexes. */
struct drv_q {
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen, noff;
};

/* The spec's init sequence with `features` (VERSION_1 and INDIRECT_DESC
 * added) and n queues of qsize, queue i's rings at ring_base + 0x4000 * i
 * (descriptors, avail at + 0x1000, used at + 0x2000), zeroed.  Probes the
 * device in slot 1 into *d.  Returns the final status. */
static inline uint8_t drv_up_queues(struct drv *d, uint64_t ring_base, uint64_t features,
                                    struct drv_q *q, unsigned n, uint16_t qsize)
{
    drv_probe(d, 1, ring_base);
    bar_wr(d, COMMON(d, STATUS), 1, 0);
    bar_wr(d, COMMON(d, STATUS), 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t f = STD_FEATURES | features;
    bar_wr(d, COMMON(d, GFSELECT), 4, 0);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)f);
    bar_wr(d, COMMON(d, GFSELECT), 4, 1);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)(f >> 32));
    bar_wr(d, COMMON(d, STATUS), 1, 0x0b);
    for (unsigned i = 0; i < n; i++) {
        memset(&q[i], 0, sizeof(q[i]));
        q[i].desc = ring_base + 0x4000ull * i;
        q[i].avail = q[i].desc + 0x1000;
        q[i].used = q[i].desc + 0x2000;
        memset(gp(q[i].desc, 0x4000), 0, 0x4000);
        bar_wr(d, COMMON(d, Q_SELECT), 2, i);
        bar_wr(d, COMMON(d, Q_SIZE), 2, qsize);
        q[i].noff = (uint16_t)bar_rd(d, COMMON(d, Q_NOFF), 2);
        bar_wr(d, COMMON(d, Q_DESCLO), 4, (uint32_t)q[i].desc);
        bar_wr(d, COMMON(d, Q_DESCHI), 4, q[i].desc >> 32);
        bar_wr(d, COMMON(d, Q_AVAILLO), 4, (uint32_t)q[i].avail);
        bar_wr(d, COMMON(d, Q_AVAILHI), 4, q[i].avail >> 32);
        bar_wr(d, COMMON(d, Q_USEDLO), 4, (uint32_t)q[i].used);
        bar_wr(d, COMMON(d, Q_USEDHI), 4, q[i].used >> 32);
        bar_wr(d, COMMON(d, Q_ENABLE), 2, 1);
    }
    bar_wr(d, COMMON(d, STATUS), 1, 0x0f);
    return status(d);
}

static inline void setup(void)
{
    memset(&mmio, 0, sizeof(mmio));
    memset(lines, 0, sizeof(lines));
    memset(gp(RAM, RAM_SIZE), 0, RAM_SIZE);
    pci_bus_init(&pb, &mmio, WIN, 0x40000000, set_intx, NULL);
    bus_add(&mmio, ECAM, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL);
}

#endif
