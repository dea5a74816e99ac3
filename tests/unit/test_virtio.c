/* Unit tests for virtio devices end to end: the device core (features,
 * status, reset, NEEDS_RESET), the modern PCI transport (capabilities,
 * common config, notify, ISR + INTx, the PCI config access capability) and
 * virtio-rng, driven through ECAM and the BAR the way a guest driver does.
 * Malformed queues must mark only the offending device NEEDS_RESET; its
 * other queues and the other devices go on. */
#include <errno.h>
#include <string.h>

#include "pci/pci.h"
#include "virtio/virtio_pci.h"

#include "unit.h"

#include "virtio_driver.h"

/* --- a two-queue test device: fills writable buffers with q + 1 -------- */

struct tdev {
    struct virtio_pci vp;
    struct virtq_chain chain;
    int freed;
};

static void tdev_notify(struct virtio_dev *vd, unsigned q)
{
    struct tdev *t = vd->opaque;
    while (virtio_queue_pop(vd, q, &t->chain) > 0) {
        uint8_t b = (uint8_t)(q + 1);
        for (uint32_t i = 0; i < t->chain.in_bytes; i++)
            virtq_chain_to_guest(&t->chain, i, &b, 1);
        virtio_queue_push(vd, q, &t->chain, t->chain.in_bytes);
    }
    virtio_queue_notify_used(vd, q);    /* even with nothing pushed: must not notify */
}

static uint32_t tdev_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    (void)vd;
    return (uint32_t)(0x11223344u >> (8 * (off % 4))) & (size == 4 ? ~0u : (1u << 8 * size) - 1);
}

static const struct virtio_dev_ops tdev_ops = { .queue_notify = tdev_notify,
                                                .cfg_read = tdev_cfg_read };

static void tdev_free(struct virtio_pci *vp)
{
    struct tdev *t = vp->vdev.opaque;
    t->freed = 1;
}

static struct tdev tdev;

static void tdev_plug(void)
{
    memset(&tdev, 0, sizeof(tdev));
    virtio_dev_init(&tdev.vp.vdev, "test-dev", 0x3f, 0, 2, 16, 8, &mem, &tdev_ops, &tdev);
    EQ(virtio_pci_init(&tdev.vp, 0xff0000, tdev_free, NULL), 0);
    EQ(pci_bus_plug(&pb, &tdev.vp.pci, NULL), 0);
}

/* --- tests ----------------------------------------------------------------- */

static void test_rng_end_to_end(void)
{
    setup();
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "virtio-rng", NULL), 0);
    struct err e;
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "virtio-nope", &e), -ENOENT);
    CHECK(strstr(e.msg, "virtio-rng") != NULL, "message: %s", e.msg);
    CHECK(virtio_device_known("virtio-rng") && !virtio_device_known("rng"), "known names");
    /* identity: modern-only virtio-rng */
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x1044);
    EQ(cfg_rd(1, PCI_REVISION_ID, 1), 1);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4) >> 8, 0xff0000);
    EQ(cfg_rd(1, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_RNG);
    EQ(cfg_rd(1, PCI_INTERRUPT_PIN, 1), 1);
    struct drv d;
    drv_probe(&d, 1, RAM);
    EQ(d.bar, WIN);
    EQ(d.common, VIRTIO_PCI_COMMON_OFF);
    EQ(d.isr, VIRTIO_PCI_ISR_OFF);
    EQ(d.notify, VIRTIO_PCI_NOTIFY_OFF);
    EQ(d.mult, VIRTIO_PCI_NOTIFY_MULT);
    EQ(d.device, 0);                                /* rng has no config */
    /* BAR sizing: 16 KiB */
    cfg_wr(1, PCI_BAR0, 4, 0xffffffff);
    EQ(cfg_rd(1, PCI_BAR0, 4), 0xffffc004);
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)WIN);
    /* offered features */
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 1);
    EQ(bar_rd(&d, COMMON(&d, DF), 4), 1);           /* VERSION_1 */
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, DF), 4), (1u << 28) | (1u << 29));
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 7);
    EQ(bar_rd(&d, COMMON(&d, DF), 4), 0);
    EQ(bar_rd(&d, COMMON(&d, NUMQ), 2), 1);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), VIRTIO_NO_VECTOR);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);
    EQ(bar_rd(&d, COMMON(&d, Q_ENABLE), 2), 1);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), VIRTIO_NO_VECTOR);
    EQ(bar_rd(&d, COMMON(&d, Q_DESCLO), 4), (uint32_t)d.desc[0]);
    EQ(bar_rd(&d, COMMON(&d, Q_DESCLO), 8), d.desc[0]);
    /* two requests: 64 bytes direct, 3 x 100 bytes through an indirect table */
    put_desc(d.desc[0], 0, d.buf, 64, VIRTQ_DESC_F_WRITE, 0);
    uint64_t table = d.buf + 0x1000;
    for (unsigned i = 0; i < 3; i++)
        put_desc(table, i, d.buf + 0x100 * (i + 1), 100,
                 VIRTQ_DESC_F_WRITE | (i < 2 ? VIRTQ_DESC_F_NEXT : 0), (uint16_t)(i + 1));
    put_desc(d.desc[0], 1, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
    drv_avail(&d, 0, 0);
    drv_avail(&d, 0, 1);
    CHECK(!line(&d), "interrupt before the kick");
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 2);
    EQ(rd32(d.used[0] + 4), 0);
    EQ(rd32(d.used[0] + 8), 64);
    EQ(rd32(d.used[0] + 12), 1);
    EQ(rd32(d.used[0] + 16), 300);
    const uint8_t *p = gp(d.buf, 64);
    unsigned zeros = 0;
    for (unsigned i = 0; i < 64; i++)
        zeros += p[i] == 0;
    CHECK(zeros < 16, "64 random bytes with %u zeros", zeros);
    /* interrupt: ISR bit 0 and INTA of slot 1 (line 1), cleared by reading */
    CHECK(line(&d), "no INTx after completion");
    EQ(cfg_rd(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    CHECK(!line(&d), "INTx still asserted after reading the ISR");
    EQ(bar_rd(&d, d.isr, 1), 0);
    /* the guest moves the BAR: the device follows */
    cfg_wr(1, PCI_BAR0, 4, 0x50000000);
    d.bar = 0x50000000;
    uint64_t v;
    EQ(bus_read(&mmio, WIN, 4, &v), -EFAULT);
    put_desc(d.desc[0], 2, d.buf + 0x800, 32, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, 0, 2);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 3);
    /* bus mastering off: kicks are ignored until it is back */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    put_desc(d.desc[0], 3, d.buf + 0x900, 32, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, 0, 3);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 3);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 4);
    /* kicking a queue that does not exist, odd registers: ignored */
    bar_wr(&d, d.notify + 4 * 5, 2, 5);
    bar_wr(&d, d.isr, 1, 0xff);
    EQ(bar_rd(&d, VIRTIO_PCI_DEVICE_OFF, 4), 0);
    EQ(bar_rd(&d, VIRTIO_PCI_NOTIFY_OFF, 4), 0);
    EQ(bar_rd(&d, COMMON(&d, Q_NOFF) + 0x40, 4), 0);
    EQ(status(&d), 0x0f);
    pci_bus_destroy(&pb);
}

static void test_negotiation_and_reset(void)
{
    setup();
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "virtio-rng", NULL), 0);
    struct drv d;
    drv_probe(&d, 1, RAM);
    /* a legacy driver (no VERSION_1): FEATURES_OK does not stick */
    EQ(drv_init(&d, 1ull << VIRTIO_RING_F_EVENT_IDX, 1, 16) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* a feature that was never offered */
    EQ(drv_init(&d, STD_FEATURES | (1ull << 40), 1, 16) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* DRIVER_OK without FEATURES_OK is refused */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0x07);
    EQ(status(&d) & VIRTIO_STATUS_DRIVER_OK, 0);
    /* a queue enabled before FEATURES_OK stays off */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    bar_wr(&d, COMMON(&d, Q_ENABLE), 2, 1);
    EQ(bar_rd(&d, COMMON(&d, Q_ENABLE), 2), 0);
    /* a good driver */
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);
    bar_wr(&d, COMMON(&d, GFSELECT), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, GF), 4), 1u << 28);
    bar_wr(&d, COMMON(&d, GF), 4, 0);               /* after FEATURES_OK: ignored */
    EQ(bar_rd(&d, COMMON(&d, GF), 4), 1u << 28);
    /* clearing status bits needs a reset */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0x01);
    EQ(status(&d), 0x0f);
    /* queue registers are locked while the queue runs */
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 8);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 16);
    bar_wr(&d, COMMON(&d, Q_DESCLO), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_DESCLO), 4), (uint32_t)d.desc[0]);
    bar_wr(&d, COMMON(&d, Q_ENABLE), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_ENABLE), 2), 1);
    /* out-of-range queue select: size 0 */
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 3);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 0);
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 8);
    bar_wr(&d, COMMON(&d, Q_ENABLE), 2, 1);
    /* reset: everything back to power-on */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0);
    EQ(status(&d), 0);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_ENABLE), 2), 0);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    EQ(bar_rd(&d, COMMON(&d, Q_DESCLO), 4), 0);
    bar_wr(&d, COMMON(&d, GFSELECT), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, GF), 4), 0);
    /* queue sizes outside 1..max are refused */
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 65);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    /* and it works again after the reset, with EVENT_IDX this time */
    EQ(drv_init(&d, STD_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX), 1, 16), 0x0f);
    uint64_t used_event = d.avail[0] + 4 + 2 * 16;
    for (unsigned i = 0; i < 3; i++)
        put_desc(d.desc[0], i, d.buf + 64 * i, 64, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, 0, 0);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 1);
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);    /* the first one notifies */
    wr16(used_event, 5);                             /* then: not before 5 */
    drv_avail(&d, 0, 1);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 2);
    EQ(bar_rd(&d, d.isr, 1), 0);
    CHECK(!line(&d), "interrupt despite used_event");
    EQ(rd16(d.used[0] + 4 + 8 * 16), 2);              /* avail_event for the driver */
    pci_bus_destroy(&pb);
}

static void test_pci_cfg_capability(void)
{
    setup();
    tdev_plug();
    struct drv d;
    drv_probe(&d, 1, RAM);
    EQ(d.device, VIRTIO_PCI_DEVICE_OFF);
    EQ(d.device_len, 8);
    EQ(bar_rd(&d, d.device, 4), 0x11223344);
    EQ(bar_rd(&d, d.device + 1, 1), 0x33);
    EQ(bar_rd(&d, d.device + 8, 4), 0);               /* past the config */
    CHECK(d.cfg_cap != 0, "no PCI config access capability");
    unsigned c = d.cfg_cap;
    /* num_queues through config space */
    cfg_wr(1, c + 4, 1, 0);
    cfg_wr(1, c + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
    cfg_wr(1, c + 12, 4, 2);
    EQ(cfg_rd(1, c + 16, 2), 2);
    EQ(cfg_rd(1, c + 16, 4) & 0xffff, 2);
    /* status write through config space */
    cfg_wr(1, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
    cfg_wr(1, c + 12, 4, 1);
    cfg_wr(1, c + 16, 1, VIRTIO_STATUS_ACKNOWLEDGE);
    EQ(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    /* device config through config space */
    cfg_wr(1, c + 8, 4, VIRTIO_PCI_DEVICE_OFF);
    cfg_wr(1, c + 12, 4, 4);
    EQ(cfg_rd(1, c + 16, 4), 0x11223344);
    /* bad windows read as nothing and write nowhere */
    cfg_wr(1, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
    cfg_wr(1, c + 12, 4, 3);                          /* length 3 */
    cfg_wr(1, c + 16, 4, 0);
    EQ(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    cfg_wr(1, c + 4, 1, 2);                           /* BAR 2 */
    cfg_wr(1, c + 12, 4, 1);
    cfg_wr(1, c + 16, 1, 0);
    EQ(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    cfg_wr(1, c + 4, 1, 0);
    cfg_wr(1, c + 8, 4, 0xfffffffc);                  /* beyond the BAR */
    cfg_wr(1, c + 12, 4, 4);
    cfg_wr(1, c + 16, 4, 0);
    EQ(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    pci_bus_destroy(&pb);
    EQ(tdev.freed, 1);
}

/* A loop in one queue: that device is NEEDS_RESET with a config interrupt;
 * its other queue and the other device still work. */
static void test_malformed_isolated(void)
{
    setup();
    tdev_plug();                                     /* slot 1: two queues */
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "virtio-rng", NULL), 0);   /* slot 2 */
    struct drv t, r;
    drv_probe(&t, 1, RAM);
    drv_probe(&r, 2, RAM + 0x100000);
    EQ(drv_init(&t, STD_FEATURES, 2, 16), 0x0f);
    EQ(drv_init(&r, STD_FEATURES, 1, 16), 0x0f);

    put_desc(t.desc[0], 0, t.buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    put_desc(t.desc[0], 1, t.buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    drv_avail(&t, 0, 0);
    drv_kick(&t, 0);
    EQ(used_idx(&t, 0), 0);
    EQ(status(&t), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
    CHECK(line(&t), "no config interrupt");
    EQ(bar_rd(&t, t.isr, 1), VIRTIO_PCI_ISR_CONFIG);
    EQ(bar_rd(&t, COMMON(&t, CFGGENERATION), 1), 0);   /* config itself unchanged */
    /* the broken queue takes nothing more, even valid chains */
    put_desc(t.desc[0], 2, t.buf, 16, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&t, 0, 2);
    drv_kick(&t, 0);
    EQ(used_idx(&t, 0), 0);
    /* the driver writing status back keeps NEEDS_RESET */
    bar_wr(&t, COMMON(&t, STATUS), 1, 0x0f);
    EQ(status(&t), 0x4f);
    /* queue 1 of the same device goes on */
    put_desc(t.desc[1], 0, t.buf + 0x100, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&t, 1, 0);
    drv_kick(&t, 1);
    EQ(used_idx(&t, 1), 1);
    EQ(*(uint8_t *)gp(t.buf + 0x100, 1), 2);
    /* the other device goes on */
    put_desc(r.desc[0], 0, r.buf, 32, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&r, 0, 0);
    drv_kick(&r, 0);
    EQ(used_idx(&r, 0), 1);
    EQ(status(&r), 0x0f);
    /* reset and re-initialise: the device works again */
    EQ(drv_init(&t, STD_FEATURES, 2, 16), 0x0f);
    EQ(bar_rd(&t, t.isr, 1), 0);
    put_desc(t.desc[0], 0, t.buf, 16, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&t, 0, 0);
    drv_kick(&t, 0);
    EQ(used_idx(&t, 0), 1);
    EQ(*(uint8_t *)gp(t.buf, 1), 1);

    /* rings outside RAM at enable: NEEDS_RESET, nothing enabled */
    bar_wr(&r, COMMON(&r, STATUS), 1, 0);
    bar_wr(&r, COMMON(&r, STATUS), 1, 0x03);
    bar_wr(&r, COMMON(&r, GFSELECT), 4, 1);
    bar_wr(&r, COMMON(&r, GF), 4, 1);
    bar_wr(&r, COMMON(&r, STATUS), 1, 0x0b);
    bar_wr(&r, COMMON(&r, Q_SELECT), 2, 0);
    bar_wr(&r, COMMON(&r, Q_DESCLO), 4, 0x1000);
    bar_wr(&r, COMMON(&r, Q_DESCHI), 4, 0);
    bar_wr(&r, COMMON(&r, Q_ENABLE), 2, 1);
    EQ(bar_rd(&r, COMMON(&r, Q_ENABLE), 2), 0);
    EQ(status(&r) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
    bar_wr(&r, COMMON(&r, STATUS), 1, 0x0f);
    drv_kick(&r, 0);                                 /* nothing to do, no crash */
    pci_bus_destroy(&pb);
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    test_rng_end_to_end();
    test_negotiation_and_reset();
    test_pci_cfg_capability();
    test_malformed_isolated();
    gmem_free(&mem);
    return unit_done("test_virtio");
}
