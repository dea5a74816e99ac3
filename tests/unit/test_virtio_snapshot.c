/* Unit tests for virtio snapshots: the PCI transport and the device core
 * (vp_save/vp_load in virtio_pci.c, virtio_dev_save/load/restore in
 * virtio.c, virtq_restore in virtqueue.c), with virtio-rng, virtio-console
 * and virtio-keyboard, driven by the minimal guest driver
 * (tests/unit/virtio_driver.h).  Each device is taken through save -> a new
 * bus and device over the same guest RAM -> load, and then must look the
 * same to the guest (common configuration, queue registers and indices,
 * ISR and INTx, MSI-X table and vectors, device config) and go on: a
 * request made available before the save and kicked after the load
 * completes.  On a board with MSI-X and ioeventfds (a fake one, as
 * test_virtio_msix.c), a kick still sitting in an eventfd is handled by
 * quiesce before the save, the restored vectors reach the new board's
 * routes, and the notify ioeventfds are assigned where the restored BAR 0
 * is.  Damage, each refused with a message and no crash: queue sizes that
 * are not a power of two or too large, rings outside RAM or misaligned,
 * features not offered, other offered features, another queue count,
 * impossible status bits, chains in flight, ring features that disagree,
 * vectors without MSI-X, bad ISR bits, MSI-X on a board without it, a
 * disabled queue with indices, truncation anywhere, another device in the
 * slot; a save with chains in flight fails.  Console: pending control
 * messages and buffered client input come back; keyboard: waiting events,
 * LEDs, config selection and key state come back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "virtio/virtio_input.h"

#include "unit.h"

#include "snap_test_util.h"
#include "virtio_driver.h"

#define RING (RAM + 0x100000)

static struct evloop *loop;

/* A new board over the same guest RAM (setup() would clear it). */
static void rebuild(void)
{
    memset(&mmio, 0, sizeof(mmio));
    memset(lines, 0, sizeof(lines));
    pci_bus_init(&pb, &mmio, WIN, 0x40000000, set_intx, NULL);
    bus_add(&mmio, ECAM, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL);
}

/* Quiesce and save the bus into f, then tear it down. */
static void save_bus(struct snap_file *f)
{
    struct snap_writer w;
    struct err e = { "" };
    snapw_init(&w);
    pci_bus_quiesce(&pb);
    pci_bus_save(&pb, &w);
    int ret = snap_test_finish(&w, f, &e);
    CHECK(ret == 0, "save: %s", e.msg);
    snapw_free(&w);
    pci_bus_destroy(&pb);
}

static struct virtio_pci *vp_at(unsigned slot)
{
    return (struct virtio_pci *)pb.dev[slot];
}

/* The common configuration as the guest reads it, queue by queue. */
struct regs {
    uint32_t df[2], gf[2];
    uint16_t msix, numq, qsel;
    uint8_t status, gen;
    uint16_t qsize[4], qmsix[4], qen[4];
    uint64_t desc[4], avail[4], used[4];
};

static void read_regs(struct drv *d, struct regs *r, unsigned nq)
{
    memset(r, 0, sizeof(*r));
    uint64_t dfsel = bar_rd(d, COMMON(d, DFSELECT), 4), gfsel = bar_rd(d, COMMON(d, GFSELECT), 4);
    r->qsel = (uint16_t)bar_rd(d, COMMON(d, Q_SELECT), 2);
    for (unsigned i = 0; i < 2; i++) {
        bar_wr(d, COMMON(d, DFSELECT), 4, i);
        r->df[i] = (uint32_t)bar_rd(d, COMMON(d, DF), 4);
        bar_wr(d, COMMON(d, GFSELECT), 4, i);
        r->gf[i] = (uint32_t)bar_rd(d, COMMON(d, GF), 4);
    }
    r->msix = (uint16_t)bar_rd(d, COMMON(d, MSIX), 2);
    r->numq = (uint16_t)bar_rd(d, COMMON(d, NUMQ), 2);
    r->status = (uint8_t)bar_rd(d, COMMON(d, STATUS), 1);
    r->gen = (uint8_t)bar_rd(d, COMMON(d, CFGGENERATION), 1);
    for (unsigned q = 0; q < nq; q++) {
        bar_wr(d, COMMON(d, Q_SELECT), 2, q);
        r->qsize[q] = (uint16_t)bar_rd(d, COMMON(d, Q_SIZE), 2);
        r->qmsix[q] = (uint16_t)bar_rd(d, COMMON(d, Q_MSIX), 2);
        r->qen[q] = (uint16_t)bar_rd(d, COMMON(d, Q_ENABLE), 2);
        r->desc[q] = bar_rd(d, COMMON(d, Q_DESCLO), 8);
        r->avail[q] = bar_rd(d, COMMON(d, Q_AVAILLO), 8);
        r->used[q] = bar_rd(d, COMMON(d, Q_USEDLO), 8);
    }
    bar_wr(d, COMMON(d, Q_SELECT), 2, r->qsel);
    bar_wr(d, COMMON(d, DFSELECT), 4, dfsel);
    bar_wr(d, COMMON(d, GFSELECT), 4, gfsel);
}

static void same_queues(const struct virtio_dev *a, const struct virtio_dev *b)
{
    for (unsigned q = 0; q < a->nqueues; q++) {
        struct virtq_state x, y;
        virtq_get_state(&a->vq[q], &x);
        virtq_get_state(&b->vq[q], &y);
        CHECK(x.size == y.size && x.enabled == y.enabled && x.desc_gpa == y.desc_gpa &&
              x.avail_gpa == y.avail_gpa && x.used_gpa == y.used_gpa &&
              x.event_idx == y.event_idx && x.indirect == y.indirect &&
              x.last_avail == y.last_avail && x.used_idx == y.used_idx &&
              x.signalled_used == y.signalled_used && x.broken == y.broken,
              "queue %u state differs", q);
        CHECK(!b->vq[q].enabled || (b->vq[q].desc && b->vq[q].avail && b->vq[q].used),
              "queue %u has no ring pointers", q);
    }
}

/* --- virtio-rng: the transport and the core ----------------------------------- */

static void rng_request(struct drv *d)
{
    uint16_t h = (uint16_t)(d->avail_idx[0] % d->qsize[0]);
    memset(gp(d->buf + 64ull * h, 64), 0, 64);
    put_desc(d->desc[0], h, d->buf + 64ull * h, 64, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(d, 0, h);
}

#define RNG_FEATURES (STD_FEATURES | 1ull << VIRTIO_RING_F_EVENT_IDX)

/* An rng in slot 1 after 3 requests, a 4th made available and not kicked,
 * the ISR and INTx raised, odd selector values. */
static void rng_a(struct drv *d, struct virtio_dev *saved)
{
    setup();
    EQ(virtio_rng_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "", NULL), 0);
    drv_probe(d, 1, RING);
    EQ(drv_init(d, RNG_FEATURES, 1, 16), 0x0f);
    for (unsigned i = 0; i < 3; i++) {
        rng_request(d);
        drv_kick(d, 0);
    }
    EQ(used_idx(d, 0), 3);
    rng_request(d);
    bar_wr(d, COMMON(d, DFSELECT), 4, 7);
    bar_wr(d, COMMON(d, GFSELECT), 4, 1);
    CHECK(line(d), "INTx");
    *saved = vp_at(1)->vdev;
}

static void rng_b(void)
{
    rebuild();
    EQ(virtio_rng_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "", NULL), 0);
}

static void test_rng_round_trip(void)
{
    struct drv d;
    struct virtio_dev saved;
    struct regs ra, rb;
    rng_a(&d, &saved);
    read_regs(&d, &ra, 1);
    struct snap_file f;
    save_bus(&f);

    rng_b();
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    EQ(snap_file_check_used(&f, &e), 0);
    read_regs(&d, &rb, 1);
    CHECK(!memcmp(&ra, &rb, sizeof(ra)), "common configuration differs");
    EQ(bar_rd(&d, COMMON(&d, DFSELECT), 4), 7);
    EQ(rb.status, 0x0f);
    EQ(rb.gf[0], (uint32_t)RNG_FEATURES);
    same_queues(&saved, &vp_at(1)->vdev);
    EQ(vp_at(1)->vdev.vq[0].last_avail, 3);
    CHECK(line(&d), "INTx after the load");
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    CHECK(!line(&d), "INTx after reading the ISR");
    /* the request made available before the save runs now */
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 4);
    const uint8_t *b = gp(d.buf + 64 * 3, 64);
    unsigned nz = 0;
    for (unsigned i = 0; i < 64; i++)
        nz += b[i] != 0;
    CHECK(nz > 0, "no random bytes");
    EQ(rd32(d.used[0] + 4 + 8 * 3 + 4), 64);
    /* and the queue wraps on as usual */
    for (unsigned i = 0; i < 20; i++) {
        rng_request(&d);
        drv_kick(&d, 0);
    }
    EQ(used_idx(&d, 0), 24);
    CHECK(!(status(&d) & VIRTIO_STATUS_NEEDS_RESET), "NEEDS_RESET");
    pci_bus_destroy(&pb);
    snap_file_free(&f);
}

/* field offsets in the rng's slot section */
#define NAME_RNG "virtio-rng"
#define OFF_VP (4 + strlen(NAME_RNG) + 8 + 8 * PCI_NUM_BARS + PCI_CFG_SIZE + 1)
#define OFF_ISR (OFF_VP + 10)
#define OFF_MSIX (OFF_VP + 11)
#define OFF_CORE (OFF_VP + 12)
#define OFF_HOST (OFF_CORE + 0)
#define OFF_DRV (OFF_CORE + 8)
#define OFF_STATUS (OFF_CORE + 16)
#define OFF_NQ (OFF_CORE + 20)
#define OFF_Q0 (OFF_CORE + 24)
#define Q_SIZE_OFF 0
#define Q_ENABLED_OFF 2
#define Q_DESC_OFF 3
#define Q_EVENT_OFF 27
#define Q_LAST_AVAIL_OFF 29
#define Q_VECTOR_OFF 36

static void bad_rng(const struct snap_file *f, size_t off, const void *p, size_t n,
                    const char *want, const char *what)
{
    struct snap_file g;
    if (snap_test_patch(f, "pci-01", off, p, n, &g) < 0)
        return;
    rng_b();
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &g, &e);
    CHECK(ret == -EINVAL && snap_test_msg(&e, want), "%s: ret %d", what, ret);
    pci_bus_destroy(&pb);
    snap_file_free(&g);
}

static void test_rng_damage(void)
{
    struct drv d;
    struct virtio_dev saved;
    rng_a(&d, &saved);
    struct snap_file f;
    save_bus(&f);
    uint16_t v16;
    uint64_t v64;
    uint8_t v8;

    v16 = 3;
    bad_rng(&f, OFF_Q0 + Q_SIZE_OFF, &v16, 2, "queue size 3 (a power of 2", "size 3");
    v16 = 0;
    bad_rng(&f, OFF_Q0 + Q_SIZE_OFF, &v16, 2, "queue size 0", "size 0");
    v16 = 128;
    bad_rng(&f, OFF_Q0 + Q_SIZE_OFF, &v16, 2, "at most 64", "size 128");
    v64 = 0x1000;
    bad_rng(&f, OFF_Q0 + Q_DESC_OFF, &v64, 8, "descriptor table at 0x1000", "ring outside RAM");
    v64 = RAM + RAM_SIZE - 16;
    bad_rng(&f, OFF_Q0 + Q_DESC_OFF, &v64, 8, "not in RAM", "ring past RAM's end");
    v64 = RING + 0x1001;
    bad_rng(&f, OFF_Q0 + Q_DESC_OFF + 8, &v64, 8, "available ring at 0x80101001 (size 16) is "
            "misaligned", "misaligned ring");
    v64 = RNG_FEATURES | 1ull << 40;
    bad_rng(&f, OFF_DRV, &v64, 8, "accepted features that were not offered", "feature");
    v64 = RNG_FEATURES & ~(1ull << VIRTIO_F_VERSION_1);
    bad_rng(&f, OFF_DRV, &v64, 8, "without VIRTIO_F_VERSION_1", "no VERSION_1");
    v64 = saved.host_features | 1ull << 3;
    bad_rng(&f, OFF_HOST, &v64, 8, "offered other features", "host features");
    uint32_t nq = 2;
    bad_rng(&f, OFF_NQ, &nq, 4, "another number of queues", "queue count");
    v8 = 0x2f;
    bad_rng(&f, OFF_STATUS, &v8, 1, "unknown device status bits", "status bits");
    v8 = 0x07;
    bad_rng(&f, OFF_STATUS, &v8, 1, "DRIVER_OK without FEATURES_OK", "DRIVER_OK");
    v16 = 4;
    bad_rng(&f, OFF_Q0 + Q_LAST_AVAIL_OFF, &v16, 2, "queue 0: 1 chains in flight", "in flight");
    v8 = 0;
    bad_rng(&f, OFF_Q0 + Q_EVENT_OFF, &v8, 1, "ring features", "event_idx");
    v16 = 0;
    bad_rng(&f, OFF_Q0 + Q_VECTOR_OFF, &v16, 2, "queue vector beyond", "vector");
    v8 = 4;
    bad_rng(&f, OFF_ISR, &v8, 1, "undefined ISR bits", "ISR");
    v8 = 1;
    bad_rng(&f, OFF_MSIX, &v8, 1, "which this board does not offer", "MSI-X");
    v8 = 0;
    bad_rng(&f, OFF_Q0 + Q_ENABLED_OFF, &v8, 1, "a disabled queue with indices", "disabled");
    /* truncated anywhere in the transport's and the core's part */
    struct snap_file g;
    for (size_t keep = OFF_VP; keep < OFF_Q0 + 38; keep += 3) {
        EQ(snap_test_edit(&f, "pci-01", keep, 0, NULL, 0, &g), 0);
        rng_b();
        struct err e = { "" };
        CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "'pci-01'"),
              "truncated at %zu", keep);
        pci_bus_destroy(&pb);
        snap_file_free(&g);
    }
    /* another device in the slot */
    rebuild();
    EQ(virtio_keyboard_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "", NULL), 0);
    struct err e = { "" };
    CHECK(pci_bus_load(&pb, &f, &e) == -EINVAL &&
          snap_test_msg(&e, "PCI slot 1: the snapshot has virtio-rng (1af4:1044, class ff0000), "
                        "this VM has virtio-keyboard (1af4:1052"), "another device");
    pci_bus_destroy(&pb);
    snap_file_free(&f);

    /* a queue with a chain taken and not returned cannot be saved */
    rng_a(&d, &saved);
    vp_at(1)->vdev.vq[0].last_avail++;
    struct snap_writer w;
    snapw_init(&w);
    w.e = &e;
    pci_bus_save(&pb, &w);
    CHECK(snapw_write_file(&w, &(struct snap_header){ .arch = "x" }, snap_test_path(), &e) ==
          -EBUSY && snap_test_msg(&e, "queue 0 has 1 request(s) in flight"), "in-flight save");
    snapw_free(&w);
    pci_bus_destroy(&pb);

    /* the transport refuses queue sizes that are not a power of two */
    setup();
    EQ(virtio_rng_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "", NULL), 0);
    drv_probe(&d, 1, RING);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 24);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    bar_wr(&d, COMMON(&d, Q_SIZE), 2, 32);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 32);
    pci_bus_destroy(&pb);
}

/* --- MSI-X and ioeventfds (a fake x86-like board) ---------------------------- */

static unsigned routes, fires, fired[8];
static uint64_t route_addr[8];
static uint32_t route_data[8];
static struct { uint64_t addr; int fd; } iofds[8];
static unsigned niofd;

static int b_route_new(void *o, struct err *e)
{
    (void)o;
    return routes == 8 ? err_set(e, -ENOSPC, "full") : (int)routes++;
}

static int b_route_set(void *o, int r, uint64_t addr, uint32_t data)
{
    (void)o;
    route_addr[r] = addr;
    route_data[r] = data;
    return 0;
}

static void b_fire(void *o, int r)
{
    (void)o;
    fires++;
    fired[r]++;
}

static int b_ioeventfd(void *o, uint64_t addr, unsigned len, int fd, bool assign, struct err *e)
{
    (void)o;
    (void)len;
    if (assign) {
        if (niofd == 8)
            return err_set(e, -ENOSPC, "full");
        iofds[niofd].addr = addr;
        iofds[niofd++].fd = fd;
        return 0;
    }
    for (unsigned i = 0; i < niofd; i++)
        if (iofds[i].addr == addr && iofds[i].fd == fd) {
            iofds[i] = iofds[--niofd];
            return 0;
        }
    CHECK(0, "deassign of an unknown ioeventfd at 0x%llx", (unsigned long long)addr);
    return -ENOENT;
}

static struct pci_platform plat = { .msi_route_new = b_route_new, .msi_route_set = b_route_set,
                                    .msi_fire = b_fire, .ioeventfd = b_ioeventfd };

static void board_reset(void)
{
    routes = fires = 0;
    memset(fired, 0, sizeof(fired));
}

static uint64_t bar2(void)
{
    return (cfg_rd(1, PCI_BAR0 + 8, 4) & ~0xfull) | (uint64_t)cfg_rd(1, PCI_BAR0 + 12, 4) << 32;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    EQ(write(fd, &one, sizeof(one)), sizeof(one));
}

static void test_msix_ioeventfd(void)
{
    setup();
    board_reset();
    plat.loop = loop;
    pci_bus_set_platform(&pb, &plat);
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    struct drv d;
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);     /* an interrupt for every request */
    /* the guest moves BAR 0 (decoding off while it does) */
    uint64_t bar0 = WIN + 0x100000;
    cfg_wr(1, PCI_COMMAND, 2, 0);
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)bar0 | PCI_BAR_MEM_TYPE_64);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    d.bar = bar0;
    EQ(niofd, 1);
    EQ(iofds[0].addr, bar0 + VIRTIO_PCI_NOTIFY_OFF);
    /* MSI-X on: queue 0 -> vector 1, config -> vector 0 */
    unsigned cap = vp_at(1)->msix.cap;
    for (unsigned v = 0; v < 2; v++) {
        bus_write(&mmio, bar2() + 16 * v, 4, 0xfee00000u + 0x100 * v);
        bus_write(&mmio, bar2() + 16 * v + 8, 4, 0x30 + v);
        bus_write(&mmio, bar2() + 16 * v + 12, 4, 0);
    }
    cfg_wr(1, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    bar_wr(&d, COMMON(&d, MSIX), 2, 0);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 1);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(fires, 1);
    /* a kick through the eventfd that the loop has not seen yet */
    rng_request(&d);
    signal_fd(iofds[0].fd);
    EQ(used_idx(&d, 0), 1);
    struct snap_file f;
    save_bus(&f);                       /* quiesce handles it first */
    EQ(used_idx(&d, 0), 2);
    EQ(fires, 2);
    EQ(niofd, 0);                       /* the old device let go */

    rebuild();
    board_reset();
    pci_bus_set_platform(&pb, &plat);
    EQ(virtio_rng_create(&h, "", NULL), 0);
    EQ(niofd, 0);
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    /* the notify ioeventfd follows the restored BAR 0 */
    EQ(niofd, 1);
    EQ(iofds[0].addr, bar0 + VIRTIO_PCI_NOTIFY_OFF);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), 0);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), 1);
    EQ(bus_read(&mmio, bar2() + 16 + 8, 4, &(uint64_t){ 0 }), 0);
    uint64_t data = 0;
    bus_read(&mmio, bar2() + 16 + 8, 4, &data);
    EQ(data, 0x31);
    CHECK(pci_msix_enabled(&vp_at(1)->msix), "MSI-X enabled");
    /* a kick through the new eventfd, on the loop: vector 1's message */
    rng_request(&d);
    signal_fd(iofds[0].fd);
    evloop_dispatch(loop);
    EQ(used_idx(&d, 0), 3);
    EQ(fires, 1);
    EQ(routes, 1);
    EQ(route_addr[0], 0xfee00100u);
    EQ(route_data[0], 0x31);
    CHECK(!line(&d), "no INTx with MSI-X");
    pci_bus_destroy(&pb);
    EQ(niofd, 0);
    plat.loop = NULL;
    snap_file_free(&f);
}

/* --- virtio-console ---------------------------------------------------------- */

#define CON_QS 16
#define CTRL_RINGS (RAM + 0x20000)
#define CTRL_BUFS (RAM + 0x300000)
#define CON_RX_BUFS (RAM + 0x200000)

static char sock_path[128];

static void pump(void)
{
    for (unsigned i = 0; i < 50; i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        if (poll(&p, 1, i ? 5 : 20) <= 0)
            return;
        evloop_dispatch(loop);
    }
}

static void con_create(void)
{
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s", sock_path);
    struct err e = { "" };
    int ret = virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                                spec, &e);
    CHECK(ret == 0, "console: %s", e.msg);
}

/* queue q's rings: 0 and 1 from drv_probe, 2 and 3 here */
static uint64_t qring(struct drv *d, unsigned q, unsigned part)
{
    uint64_t base = q < 2 ? d->desc[q] : CTRL_RINGS + 0x4000ull * (q - 2);
    return base + 0x1000ull * part;
}

static uint16_t cavail[4], cseen[4];

static void con_init(struct drv *d)
{
    drv_probe(d, 1, RING);
    bar_wr(d, COMMON(d, STATUS), 1, 0);
    bar_wr(d, COMMON(d, STATUS), 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t feat = RNG_FEATURES | 1ull << 1;       /* MULTIPORT */
    bar_wr(d, COMMON(d, GFSELECT), 4, 0);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)feat);
    bar_wr(d, COMMON(d, GFSELECT), 4, 1);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)(feat >> 32));
    bar_wr(d, COMMON(d, STATUS), 1, 0x0b);
    for (unsigned q = 0; q < 4; q++) {
        memset(gp(qring(d, q, 0), 0x4000), 0, 0x4000);
        cavail[q] = cseen[q] = 0;
        bar_wr(d, COMMON(d, Q_SELECT), 2, q);
        bar_wr(d, COMMON(d, Q_SIZE), 2, CON_QS);
        bar_wr(d, COMMON(d, Q_DESCLO), 8, qring(d, q, 0));
        bar_wr(d, COMMON(d, Q_AVAILLO), 8, qring(d, q, 1));
        bar_wr(d, COMMON(d, Q_USEDLO), 8, qring(d, q, 2));
        bar_wr(d, COMMON(d, Q_ENABLE), 2, 1);
    }
    bar_wr(d, COMMON(d, STATUS), 1, 0x0f);
}

static void con_avail(struct drv *d, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint16_t h = (uint16_t)(cavail[q] % CON_QS);
    put_desc(qring(d, q, 0), h, addr, len, flags, 0);
    wr16(qring(d, q, 1) + 4 + 2ull * h, h);
    cavail[q]++;
    wr16(qring(d, q, 1) + 2, cavail[q]);
    bar_wr(d, d->notify + (uint64_t)q * d->mult, 2, q);
}

static void ctl_send(struct drv *d, uint16_t event, uint16_t value)
{
    uint64_t b = CTRL_BUFS + 0x1000 + 64ull * (cavail[3] % CON_QS);
    uint8_t m[8] = { 0, 0, 0, 0, (uint8_t)event, 0, (uint8_t)value, 0 };
    memcpy(gp(b, 8), m, 8);
    con_avail(d, 3, b, 8, 0);
}

/* The next control message for the driver: its event, or -1. */
static int ctl_recv(struct drv *d)
{
    if (cseen[2] == rd16(qring(d, 2, 2) + 2))
        return -1;
    uint32_t id = rd32(qring(d, 2, 2) + 4 + 8ull * (cseen[2]++ % CON_QS));
    const uint8_t *m = gp(CTRL_BUFS + 64ull * id, 8);
    return m[4] | m[5] << 8;
}

static int client_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", sock_path);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
    return fd;
}

static void test_console(void)
{
    struct drv d;
    setup();
    con_create();
    con_init(&d);
    EQ(status(&d), 0x0f);
    /* DEVICE_READY with no control receive buffers: PORT_ADD waits */
    ctl_send(&d, 0, 1);
    /* client input with no receive buffers and the port not open: it waits */
    int c = client_connect();
    pump();
    EQ(write(c, "hello", 5), 5);
    pump();
    struct snap_file f;
    save_bus(&f);
    close(c);
    pump();

    rebuild();
    con_create();
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    /* the driver goes on: control buffers, PORT_ADD, PORT_READY -> CONSOLE_PORT */
    con_avail(&d, 2, CTRL_BUFS, 64, VIRTQ_DESC_F_WRITE);
    EQ(ctl_recv(&d), 1);                /* PORT_ADD */
    con_avail(&d, 2, CTRL_BUFS + 64, 64, VIRTQ_DESC_F_WRITE);
    ctl_send(&d, 3, 1);                 /* PORT_READY */
    EQ(ctl_recv(&d), 4);                /* CONSOLE_PORT */
    /* receive buffers, then PORT_OPEN: the input from before the save */
    con_avail(&d, 0, CON_RX_BUFS, 64, VIRTQ_DESC_F_WRITE);
    EQ(rd16(qring(&d, 0, 2) + 2), 0);
    ctl_send(&d, 6, 1);
    EQ(rd16(qring(&d, 0, 2) + 2), 1);
    EQ(rd32(qring(&d, 0, 2) + 8), 5);
    CHECK(!memcmp(gp(CON_RX_BUFS, 5), "hello", 5), "input after restore");
    CHECK(!(status(&d) & VIRTIO_STATUS_NEEDS_RESET), "NEEDS_RESET");
    pci_bus_destroy(&pb);
    pump();

    /* damage in the console's own part (after the core: 4 queues) */
    size_t off = 4 + strlen("virtio-console") + 8 + 8 * PCI_NUM_BARS + PCI_CFG_SIZE + 1 + 12 +
                 24 + 4 * 38;
    struct snap_file g;
    uint16_t ev = 5;                    /* a RESIZE the device never sends */
    EQ(snap_test_patch(&f, "pci-01", off + 1 + 4 + 4, &ev, 2, &g), 0);
    rebuild();
    con_create();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL &&
          snap_test_msg(&e, "a control message the device does not send"), "ctrl message");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    uint32_t n = 16385;
    EQ(snap_test_patch(&f, "pci-01", off + 1 + 4 + 8, &n, 4, &g), 0);
    rebuild();
    con_create();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "more buffered input"),
          "input length");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    pump();
    snap_file_free(&f);
}

/* --- virtio-keyboard ---------------------------------------------------------- */

static struct virtio_input *kbd;

static void kbd_create(void)
{
    kbd = NULL;
    EQ(virtio_keyboard_create(&(struct virtio_host){ .pb = &pb, .mem = &mem,
                                                     .keyboard = &kbd }, "", NULL), 0);
}

static void test_keyboard(void)
{
    struct drv d;
    setup();
    kbd_create();
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 2, 64), 0x0f);
    /* Caps Lock LED from the driver; a config selection; keys with no
     * event buffers posted */
    uint8_t led[8] = { 0x11, 0, 1, 0, 1, 0, 0, 0 };
    memcpy(gp(d.buf + 0x1000, 8), led, 8);
    put_desc(d.desc[1], 0, d.buf + 0x1000, 8, 0, 0);
    drv_avail(&d, 1, 0);
    drv_kick(&d, 1);
    bar_wr(&d, d.device + VIRTIO_INPUT_CFG_SELECT, 1, VIRTIO_INPUT_CFG_ID_NAME);
    EQ(virtio_input_key(kbd, 30, true), 0);
    EQ(virtio_input_key(kbd, 30, false), 0);
    EQ(virtio_input_key(kbd, 48, true), 0);      /* B stays down */
    struct snap_file f;
    save_bus(&f);
    CHECK(kbd == NULL, "the board's pointer cleared");

    rebuild();
    kbd_create();
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    EQ(bar_rd(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1), strlen(VIRTIO_INPUT_KEYBOARD_NAME));
    /* post buffers: the six waiting events, in order */
    for (unsigned i = 0; i < 8; i++) {
        put_desc(d.desc[0], i, d.buf + 8 * i, 8, VIRTQ_DESC_F_WRITE, 0);
        drv_avail(&d, 0, (uint16_t)i);
    }
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 6);
    static const uint16_t want[6][3] = { { 1, 30, 1 }, { 0, 0, 0 }, { 1, 30, 0 }, { 0, 0, 0 },
                                         { 1, 48, 1 }, { 0, 0, 0 } };
    for (unsigned i = 0; i < 6; i++) {
        uint32_t id = rd32(d.used[0] + 4 + 8 * i);
        const uint8_t *b = gp(d.buf + 8 * id, 8);
        EQ(b[0] | b[1] << 8, want[i][0]);
        EQ(b[2] | b[3] << 8, want[i][1]);
        EQ(b[4], want[i][2]);
    }
    /* the key the host holds stays known: releasing it reaches the guest */
    EQ(virtio_input_key(kbd, 48, false), 0);
    EQ(used_idx(&d, 0), 8);
    pci_bus_destroy(&pb);

    /* damage: an event the keyboard never makes, unknown LEDs, keys it lacks */
    size_t off = 4 + strlen("virtio-keyboard") + 8 + 8 * PCI_NUM_BARS + PCI_CFG_SIZE + 1 + 12 +
                 24 + 2 * 38;
    struct snap_file g;
    uint16_t code = 200;
    EQ(snap_test_patch(&f, "pci-01", off + 3 + 4 + 2, &code, 2, &g), 0);
    rebuild();
    kbd_create();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "does not make"), "event");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    uint8_t leds = 8;
    EQ(snap_test_patch(&f, "pci-01", off + 2, &leds, 1, &g), 0);
    rebuild();
    kbd_create();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "unknown LEDs"), "LEDs");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    uint8_t keys = 0x01;                /* key 0 (KEY_RESERVED) down */
    EQ(snap_test_patch(&f, "pci-01", off + 3 + 4 + 6 * 8 + 1, &keys, 1, &g), 0);
    rebuild();
    kbd_create();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "keys down"), "keys");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    snap_file_free(&f);
}

/* --- diff snapshots: what devices write into guest RAM is marked dirty --------- */

static bool dirty(uint64_t gpa)
{
    return gmem_page_dirty(&mem.r[0], (gpa - RAM) / GMEM_PAGE);
}

static void test_dirty_marking(void)
{
    struct drv d;
    struct err e = { "" };
    setup();
    EQ(virtio_rng_create(&(struct virtio_host){ .pb = &pb, .mem = &mem }, "", NULL), 0);
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, RNG_FEATURES, 1, 16), 0x0f);
    EQ(gmem_dirty_enable(&mem, &e), 0);
    gmem_dirty_reset(&mem);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 1);
    CHECK(dirty(d.buf), "the request's buffer (getrandom)");
    CHECK(dirty(d.used[0]), "the used ring");
    CHECK(!dirty(d.desc[0]) && !dirty(d.avail[0]), "rings the device only reads");
    pci_bus_destroy(&pb);

    /* virtq_chain_to_guest (the keyboard's events) */
    setup();
    kbd_create();
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 2, 64), 0x0f);
    put_desc(d.desc[0], 0, RAM + 0x3f0000, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, 0, 0);
    drv_kick(&d, 0);
    gmem_dirty_reset(&mem);
    EQ(virtio_input_key(kbd, 30, true), 0);
    CHECK(dirty(RAM + 0x3f0000), "an event buffer");
    CHECK(!dirty(RAM + 0x3e0000), "a page nobody wrote");
    pci_bus_destroy(&pb);
}

int main(void)
{
    struct err e;
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, &e) < 0 || !(loop = evloop_new(&e))) {
        printf("test_virtio_snapshot: %s\n", e.msg);
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "/tmp/petrel-vsnap-%d.sock", (int)getpid());
    test_rng_round_trip();
    test_rng_damage();
    test_msix_ioeventfd();
    test_console();
    test_keyboard();
    test_dirty_marking();
    unlink(sock_path);
    evloop_free(loop);
    gmem_free(&mem);
    snap_test_cleanup();
    return unit_done("test_virtio_snapshot");
}
