/* libFuzzer target: guest-controlled virtqueues and the virtio PCI
 * transport.  The input supplies guest RAM (descriptor tables, rings,
 * indirect tables: anything), the queue's size, ring addresses and
 * features, then a sequence of driver operations (BAR and config space
 * accesses, kicks, RAM writes).  Whatever the guest does, the VMM must not
 * crash, touch memory outside guest RAM, leak, or loop forever.
 *
 * Input layout:
 *   header (12 bytes): flags, qsize (2), desc, avail, used (2 each: offsets
 *                      in RAM), ram_len (2), pops.  flags bit 3 picks the
 *                      device: virtio-rng, or virtio-blk on a 64 KiB
 *                      in-memory image (its requests complete through
 *                      io_uring when the device is torn down)
 *   ram_len bytes      copied to the start of guest RAM
 *   ops, 8 bytes each: op, size, off (2), val (4) */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"

#include "pci/pci.h"
#include "virtio/virtio_pci.h"

#define RAM 0x80000000ull
#define RAM_SIZE 0x10000ull
#define ECAM 0x30000000ull
#define WIN 0x40000000ull

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

static struct gmem mem;
static struct virtq_chain chain;
static struct log_limit dev_log, bus_log;   /* rate limits across inputs */

/* Phase 1: the queue on its own, straight from the header. */
static void fuzz_queue(const uint8_t *h)
{
    struct virtq q;
    virtq_init(&q, &mem, VIRTQ_MAX_SIZE);
    q.size = get16(h + 1) % 300;
    q.desc_gpa = RAM + get16(h + 3);
    q.avail_gpa = RAM + get16(h + 5);
    q.used_gpa = RAM + get16(h + 7);
    struct err e;
    if (virtq_enable(&q, h[0] & 1, h[0] & 2, &e) < 0)
        return;
    for (unsigned i = 0; i < h[11]; i++) {
        int r = virtq_pop(&q, &chain, &e);
        if (r < 0) {
            if (!q.broken)
                abort();            /* an error must break the queue */
            break;
        }
        if (r == 0)
            break;
        if (chain.head >= q.size || chain.nout + chain.nin == 0 ||
            chain.nout + chain.nin > VIRTQ_MAX_SEGS)
            abort();
        uint64_t bytes = 0;
        for (unsigned s = 0; s < chain.nout + chain.nin; s++) {
            const struct virtq_seg *sg = &chain.seg[s];
            uint8_t *base = gmem_ptr(&mem, RAM, RAM_SIZE);
            if (sg->len == 0 || sg->p < base || sg->p + sg->len > base + RAM_SIZE)
                abort();            /* every buffer inside RAM */
            bytes += sg->len;
        }
        if (bytes != (uint64_t)chain.out_bytes + chain.in_bytes)
            abort();
        uint8_t junk[64] = { 0 };
        virtq_chain_to_guest(&chain, 0, junk, sizeof(junk));
        virtq_push(&q, chain.head, chain.in_bytes);
        virtq_should_notify(&q);
    }
}

static void set_intx(void *opaque, unsigned line, bool level)
{
    (void)opaque;
    (void)line;
    (void)level;
}

/* The virtio-blk device's image: a 64 KiB memfd, reopened by path. */
static int plug_blk(struct pci_bus *pb)
{
    static char path[64];
    if (!path[0]) {
        int fd = memfd_create("fuzz-disk", 0);
        if (fd < 0 || ftruncate(fd, 65536) < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    struct disk_config dc = { .path = path, .format = "raw", .serial = "fuzz" };
    return virtio_blk_create(&(struct virtio_host){ .pb = pb, .mem = &mem }, &dc, NULL);
}

/* Phase 2: a virtio-rng or virtio-blk device on a PCI bus, driven by the
 * ops. */
static void fuzz_device(const uint8_t *h, const uint8_t *ops, size_t nops)
{
    static struct bus mmio;
    static struct pci_bus pb;
    memset(&mmio, 0, sizeof(mmio));
    pci_bus_init(&pb, &mmio, WIN, 0x40000000, set_intx, NULL);
    pb.log = bus_log;
    if (bus_add(&mmio, ECAM, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL) < 0 ||
        (h[0] & 8 ? plug_blk(&pb)
                  : virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem },
                                      "virtio-rng", NULL)) < 0)
        abort();
    struct virtio_pci *vp = (struct virtio_pci *)pb.dev[1];
    vp->vdev.log = dev_log;
    uint64_t v;
    uint64_t cfg = ECAM + (1u << 15), bar = WIN;
    /* a well-behaved start, so the ops reach queue processing */
    bus_write(&mmio, cfg + PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_STATUS, 1, 3);
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    /* ring features, and virtio-blk's FLUSH, DISCARD and WRITE_ZEROES */
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_GF, 4,
              (uint32_t)(h[0] & 3) << 28 | (h[0] & 8 ? 1u << 9 | 1u << 13 | 1u << 14 : 0));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_GF, 4, !(h[0] & 4));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_Q_SIZE, 2, get16(h + 1));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)RAM + get16(h + 3));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)RAM + get16(h + 5));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)RAM + get16(h + 7));
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    bus_write(&mmio, bar + VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
    bus_write(&mmio, bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *o = ops + 8 * i;
        unsigned size = 1u << (o[1] % 3);   /* 1, 2, 4 */
        uint32_t off = get16(o + 2), val = get32(o + 4);
        /* the BAR may have moved: find it again */
        bar = pci_bar_addr(&vp->pci, VIRTIO_PCI_BAR);
        switch (o[0] % 8) {
        case 0: bus_write(&mmio, bar + (off % VIRTIO_PCI_BAR_SIZE & ~(size - 1)), size, val); break;
        case 1: bus_read(&mmio, bar + (off % VIRTIO_PCI_BAR_SIZE & ~(size - 1)), size, &v); break;
        case 2: bus_write(&mmio, cfg + (off % PCI_CFG_SIZE & ~(size - 1)), size, val); break;
        case 3: bus_read(&mmio, cfg + (off % PCI_CFG_SIZE & ~(size - 1)), size, &v); break;
        case 4: bus_write(&mmio, bar + VIRTIO_PCI_NOTIFY_OFF + 4 * (off % 4), 2, val); break;
        case 5: gmem_write(&mem, RAM + (off & ~3u), &val, 4); break;
        case 6: {   /* publish more avail entries (driver-style), then kick */
            uint64_t a = vp->vdev.vq[0].avail_gpa;
            uint16_t *idx = gmem_ptr(&mem, a + 2, 2);
            if (idx && !((a + 2) & 1))
                *idx = (uint16_t)(*idx + (val % 8));
            bus_write(&mmio, bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
            break;
        }
        case 7: /* a BAR move or a decode toggle */
            bus_write(&mmio, cfg + PCI_BAR0 + 4 * (off % 2), 4, val);
            bus_write(&mmio, cfg + PCI_COMMAND, 2, val >> 16);
            break;
        }
    }
    dev_log = vp->vdev.log;
    bus_log = pb.log;
    pci_bus_destroy(&pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mem.n && gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        abort();
    if (size < 12)
        return 0;
    const uint8_t *h = data;
    size_t ram_len = get16(h + 9);
    if (ram_len > size - 12)
        ram_len = size - 12;
    uint8_t *ram = gmem_ptr(&mem, RAM, RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + 12, ram_len);
    fuzz_queue(h);
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + 12, ram_len);
    const uint8_t *ops = data + 12 + ram_len;
    fuzz_device(h, ops, (size - 12 - ram_len) / 8);
    return 0;
}
