/* virtio_blk: a virtio-blk disk (1af4:1042, modern PCI transport) driven
 * over PCI mechanism #1 with MSI-X interrupts, the way a kernel does:
 * - features: VERSION_1 and FLUSH accepted (FLUSH must be offered); the
 *   config space's capacity read (at least DISK_MIN_SECTORS);
 * - GET_ID returns the disk's serial, "petrel-x86-blk" (the runners pass it);
 * - a pattern is written to sectors PATTERN_FIRST..+PATTERN_SECTORS as four
 *   requests in flight at once (one kick), word i of sector s being
 *   0x50000000 | s << 16 | i, then FLUSHed; the host checks the image file
 *   afterwards (tests/integration/test_x86_guests.py);
 * - everything is read back into a cleared buffer, with one sector on
 *   either side that must still be zero (the image starts as zeroes);
 * - requests that are wrong complete with an error and harm nothing: a read
 *   at the capacity (IOERR) and an unknown request type (UNSUPP).
 * Each completion is awaited through the queue's MSI-X vector. */
#include "pcivirtio.h"

#define VEC_Q 0x51
#define VEC_CFG 0x52
#define BAR_BASE 0xe0000000ul
#define SECTOR 512
#define PATTERN_FIRST 1
#define PATTERN_SECTORS 16
#define NREQ 4                  /* write requests in flight together */
#define DISK_MIN_SECTORS (PATTERN_FIRST + PATTERN_SECTORS + 1)
#define SERIAL "petrel-x86-blk"
#define IRQ_WAIT_US 2000000

#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

struct blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

static struct vdev dev;
static struct vq vq;
static uint8_t ring_mem[3 * 4096] __attribute__((aligned(4096)));
static struct blk_hdr hdrs[NREQ + 1] __attribute__((aligned(16)));
static volatile uint8_t stat[NREQ + 1];
static uint32_t wbuf[PATTERN_SECTORS * SECTOR / 4] __attribute__((aligned(4096)));
static uint32_t rbuf[(PATTERN_SECTORS + 2) * SECTOR / 4] __attribute__((aligned(4096)));
static char id[20];
static volatile unsigned irqs, cfg_irqs;

static void q_irq(struct trapframe *tf)
{
    (void)tf;
    irqs++;
    lapic_eoi();
}

static void cfg_irq(struct trapframe *tf)
{
    (void)tf;
    cfg_irqs++;
    lapic_eoi();
}

static uint32_t pattern(unsigned sector, unsigned word)
{
    return 0x50000000u | sector << 16 | word;
}

/* Queue a request: header, optional data buffer, status byte. */
static void add(unsigned slot, uint32_t type, uint64_t sector, void *data, uint32_t len,
                bool device_writes)
{
    hdrs[slot] = (struct blk_hdr){ type, 0, sector };
    stat[slot] = 0xff;
    struct vbuf b[3];
    unsigned n = 0;
    b[n++] = (struct vbuf){ (uint64_t)&hdrs[slot], sizeof(hdrs[slot]), false };
    if (len)
        b[n++] = (struct vbuf){ (uint64_t)data, len, device_writes };
    b[n++] = (struct vbuf){ (uint64_t)&stat[slot], 1, true };
    vq_add(&vq, b, n);
}

/* Kick and wait until n more requests are used (interrupts as wake-ups). */
static void run(const char *what, unsigned n)
{
    uint16_t want = (uint16_t)(vq.last_used + n);
    uint64_t t0 = rdtsc();
    vq_kick(&vq);
    while (vq_used_idx(&vq) != want) {
        unsigned c0 = irqs;
        CHECK_MSG(wait_irq(&irqs, c0, IRQ_WAIT_US) || vq_used_idx(&vq) == want,
                  "%s: no interrupt within 2 s (used %u of %u)", what,
                  (uint16_t)(vq_used_idx(&vq) - vq.last_used), n);
    }
    printf("  %s: %u request(s) done in %lu us\n", what, n, tsc_to_us(rdtsc() - t0));
    vq.last_used = want;
}

void test_main(void)
{
    tsc_calibrate();
    lapic_enable();
    unsigned apic = lapic_id();
    int slot = pci_find(0x1af4, 0x1042);
    CHECK_MSG(slot > 0, "no virtio-blk (1af4:1042) on bus 0");
    pci_setup_bars(&dev, slot, BAR_BASE);
    virtio_walk_caps(&dev);
    CHECK_MSG((dev.caps_seen & 0x3e) == 0x3e, "virtio capabilities: types 0x%x", dev.caps_seen);
    CHECK_MSG(dev.msix_cap && dev.msix_n >= 2, "no MSI-X with 2 vectors");

    uint64_t offered;
    uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BLK_F_FLUSH;
    CHECK_MSG(virtio_start(&dev, want, &offered), "FEATURES_OK refused (offered 0x%lx)",
              offered);
    CHECK_MSG(offered & (1ull << VIRTIO_BLK_F_FLUSH), "FLUSH not offered (0x%lx)", offered);
    uint64_t capacity = mmio_read32(dev.device) | (uint64_t)mmio_read32(dev.device + 4) << 32;
    printf("virtio_blk: slot %d, capacity %lu sectors, features 0x%lx\n", slot, capacity,
           offered);
    CHECK_GE(capacity, DISK_MIN_SECTORS);

    set_handler(VEC_Q, q_irq);
    set_handler(VEC_CFG, cfg_irq);
    msix_set_entry(&dev, 0, apic, VEC_Q, false);
    msix_set_entry(&dev, 1, apic, VEC_CFG, false);
    msix_set_control(&dev, MSIX_ENABLE);
    vc_w16(&dev, VC_MSIX, 1);
    CHECK_EQ(vc_r16(&dev, VC_MSIX), 1);
    CHECK_EQ(vq_setup(&dev, &vq, 0, ring_mem, 0), 0);
    CHECK_GE(vq.size, 2 * NREQ);
    vc_w8(&dev, VC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
    CHECK_EQ(vc_r8(&dev, VC_STATUS), VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);

    /* GET_ID */
    add(0, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id), true);
    run("GET_ID", 1);
    CHECK_EQ(stat[0], VIRTIO_BLK_S_OK);
    char serial[sizeof(id) + 1] = { 0 };
    memcpy(serial, id, sizeof(id));
    printf("  serial \"%s\"\n", serial);
    CHECK_MSG(!memcmp(id, SERIAL, sizeof(SERIAL)), "serial \"%s\", want \"%s\"", serial, SERIAL);

    /* the pattern, four requests at once, then FLUSH */
    for (unsigned s = 0; s < PATTERN_SECTORS; s++)
        for (unsigned w = 0; w < SECTOR / 4; w++)
            wbuf[s * SECTOR / 4 + w] = pattern(PATTERN_FIRST + s, w);
    const unsigned per = PATTERN_SECTORS / NREQ;
    for (unsigned r = 0; r < NREQ; r++)
        add(r, VIRTIO_BLK_T_OUT, PATTERN_FIRST + r * per, &wbuf[r * per * SECTOR / 4],
            per * SECTOR, false);
    run("write", NREQ);
    for (unsigned r = 0; r < NREQ; r++)
        CHECK_EQ(stat[r], VIRTIO_BLK_S_OK);
    add(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
    run("flush", 1);
    CHECK_EQ(stat[0], VIRTIO_BLK_S_OK);

    /* read back, with a sector of zeroes on either side */
    memset(rbuf, 0xcc, sizeof(rbuf));
    add(0, VIRTIO_BLK_T_IN, PATTERN_FIRST - 1, rbuf, sizeof(rbuf), true);
    run("read", 1);
    CHECK_EQ(stat[0], VIRTIO_BLK_S_OK);
    unsigned bad = 0, first_bad = ~0u;
    for (unsigned s = 0; s < PATTERN_SECTORS + 2; s++)
        for (unsigned w = 0; w < SECTOR / 4; w++) {
            unsigned sector = PATTERN_FIRST - 1 + s;
            bool inside = s >= 1 && s <= PATTERN_SECTORS;
            uint32_t exp = inside ? pattern(sector, w) + BREAK_ADJ : 0;
            if (rbuf[s * SECTOR / 4 + w] != exp) {
                if (!bad++)
                    first_bad = s * SECTOR / 4 + w;
            }
        }
    CHECK_MSG(!bad, "%u words read back wrong, the first at byte %u: 0x%x", bad,
              first_bad * 4, first_bad != ~0u ? rbuf[first_bad] : 0);

    /* wrong requests: errors, nothing else */
    add(0, VIRTIO_BLK_T_IN, capacity, rbuf, SECTOR, true);
    run("read at the capacity", 1);
    CHECK_EQ(stat[0], VIRTIO_BLK_S_IOERR);
    add(0, 0x7777, 0, 0, 0, false);
    run("unknown type", 1);
    CHECK_EQ(stat[0], VIRTIO_BLK_S_UNSUPP);
    CHECK_EQ(cfg_irqs, 0);
    CHECK_EQ(vc_r8(&dev, VC_STATUS) & 0x40, 0); /* no NEEDS_RESET */
    printf("virtio_blk: %u sectors written at %u, flushed, read back\n", PATTERN_SECTORS,
           PATTERN_FIRST);
    vc_w8(&dev, VC_STATUS, 0);
    pass();
}
