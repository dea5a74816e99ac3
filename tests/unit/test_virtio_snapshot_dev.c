/* Unit tests for the snapshots of virtio-blk and virtio-net (and the
 * block layer's internal snapshots, the NAT's saved state), driven by the
 * minimal guest driver (tests/unit/virtio_driver.h) with real images,
 * worker threads and the event loop.
 * - virtio-blk on qcow2: a write in flight when the snapshot is taken
 *   completes first (quiesce drains it); the save takes the image's
 *   internal snapshot named after the VM snapshot; after the VM wrote on,
 *   a load checks the image has that snapshot and reverts to it only at
 *   commit, and a read made available before the save and kicked after
 *   the load returns the snapshot's data; disks_as_is keeps the image as
 *   it is.  Errors: no such internal snapshot (naming disk and tag), a disk
 *   of another size, read-only vs writable, a writable raw disk refusing a
 *   tagged snapshot; a read-only raw disk and an untagged snapshot need no
 *   image snapshot.
 * - virtio-net: frames waiting for receive buffers come back in order and
 *   are delivered once the driver posts buffers; transmit goes on; a
 *   snapshot of another backend kind is refused; a net=user device goes
 *   through save and load with its NAT state.  The NAT state itself: the
 *   DHCP lease table survives (a second client gets the next address after
 *   a restore, the first one its own again), and damaged NAT states are
 *   refused before libslirp sees them. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "core/evloop.h"
#include "net/net.h"

#include "unit.h"

#include "snap_test_util.h"
#include "virtio_driver.h"

static struct evloop *loop;
static char dir[64];

static void pump(unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        if (poll(&p, 1, 2) > 0)
            evloop_dispatch(loop);
    }
}

static void rebuild(void)
{
    memset(&mmio, 0, sizeof(mmio));
    memset(lines, 0, sizeof(lines));
    pci_bus_init(&pb, &mmio, WIN, 0x40000000, set_intx, NULL);
    bus_add(&mmio, ECAM, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL);
}

static int save_bus(struct snap_file *f, const char *tag, struct err *e)
{
    struct snap_writer w;
    snapw_init(&w);
    w.tag = tag;
    w.e = e;
    pci_bus_quiesce(&pb);
    pci_bus_save(&pb, &w);
    int ret = snap_test_finish(&w, f, e);
    snapw_free(&w);
    pci_bus_destroy(&pb);
    pump(5);
    return ret;
}

/* --- virtio-blk ----------------------------------------------------------------- */

#define DISK_SIZE (1u << 20)
#define HDRS (RAM + 0x100000)           /* request headers, 16 bytes per head */
#define DATA (RAM + 0x200000)           /* 4 KiB per head */
#define STAT (RAM + 0x300000)           /* status bytes, one per head */

static const char *img_path(const char *name)
{
    static char p[2][128];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static void make_qcow2(const char *name, uint64_t size)
{
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "qcow2", .size = size };
    EQ(qimg_create(img_path(name), &o, &e), 0);
}

static void make_raw(const char *name, uint64_t size)
{
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "raw", .size = size };
    EQ(qimg_create(img_path(name), &o, &e), 0);
}

static int disk_create(const char *name, const char *opts, struct err *e)
{
    char spec[256];
    snprintf(spec, sizeof(spec), "%s%s", img_path(name), opts);
    struct disk_config dc;
    EQ(disk_config_parse(&dc, spec, NULL), 0);
    return virtio_blk_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop }, &dc,
                             e);
}

/* A one-sector request in head slot h (three descriptors: 3h..3h+2),
 * made available; kicked if kick. */
static void blk_req(struct drv *d, unsigned h, uint32_t type, uint64_t sector, bool kick)
{
    uint8_t hdr[16] = { 0 };
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    memcpy(gp(HDRS + 16 * h, 16), hdr, 16);
    *(uint8_t *)gp(STAT + h, 1) = 0xaa;
    uint16_t head = (uint16_t)(3 * h);
    put_desc(d->desc[0], head, HDRS + 16 * h, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(head + 1));
    put_desc(d->desc[0], head + 1u, DATA + 4096ull * h, 512,
             VIRTQ_DESC_F_NEXT | (type == 0 ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(head + 2));
    put_desc(d->desc[0], head + 2u, STAT + h, 1, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(d, 0, head);
    if (kick)
        drv_kick(d, 0);
}

static bool wait_used(struct drv *d, uint16_t want)
{
    for (int i = 0; i < 2000 && used_idx(d, 0) != want; i++)
        pump(1);
    return used_idx(d, 0) == want;
}

static void fill(unsigned h, uint8_t v)
{
    memset(gp(DATA + 4096ull * h, 512), v, 512);
}

static bool data_is(unsigned h, uint8_t v)
{
    const uint8_t *p = gp(DATA + 4096ull * h, 512);
    for (unsigned i = 0; i < 512; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* Save a qcow2 disk's VM tagged "s1" with sector 0 = 0x11, sector 8 =
 * 0x22 (written by a request still in flight at the save), and a read of
 * sector 0 made available, not kicked.  Then the disk is written on
 * (sector 0 = 0x99) as the VM would go on. */
static void blk_saved_state(struct drv *d, struct snap_file *f)
{
    setup();
    make_qcow2("a.qcow2", DISK_SIZE);
    struct err e = { "" };
    EQ(disk_create("a.qcow2", "", &e), 0);
    drv_probe(d, 1, RAM);
    EQ(drv_init(d, STD_FEATURES, 1, 64), 0x0f);
    fill(0, 0x11);
    blk_req(d, 0, 1, 0, true);
    CHECK(wait_used(d, 1), "first write");
    fill(1, 0x22);
    blk_req(d, 1, 1, 8, true);          /* in flight */
    blk_req(d, 2, 0, 0, false);         /* available, not kicked */
    int ret = save_bus(f, "s1", &e);
    CHECK(ret == 0, "save: %s", e.msg);
    EQ(used_idx(d, 0), 2);              /* quiesce drained the write */
    EQ(*(uint8_t *)gp(STAT + 1, 1), 0);
    /* the VM went on: sector 0 rewritten */
    struct qimg *q = NULL;
    EQ(qimg_open(&q, img_path("a.qcow2"), "qcow2", false, &e), 0);
    struct qimg_snapshot *s = NULL;
    EQ(qimg_snapshots_read(q, &s, &e), 0);
    CHECK(q->nb_snapshots == 1 && !strcmp(s[0].name, "s1"), "internal snapshot s1");
    qimg_snapshots_free(s, q->nb_snapshots);
    uint8_t b[512];
    memset(b, 0x99, sizeof(b));
    EQ(qimg_pwrite(q, b, 512, 0), 0);
    qimg_close(q);
}

static void test_blk_qcow2(void)
{
    struct drv d;
    struct snap_file f;
    struct err e = { "" };
    blk_saved_state(&d, &f);

    /* restore: checked at load, reverted at commit */
    rebuild();
    EQ(disk_create("a.qcow2", "", &e), 0);
    f.tag = NULL;                       /* the state names the internal snapshot */
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    EQ(f.ndefer, 1);
    EQ(snap_file_commit(&f, &e), 0);
    drv_kick(&d, 0);                    /* the read from before the save */
    CHECK(wait_used(&d, 3), "read after restore");
    EQ(*(uint8_t *)gp(STAT + 2, 1), 0);
    CHECK(data_is(2, 0x11), "sector 0 as at the snapshot");
    blk_req(&d, 3, 0, 8, true);
    CHECK(wait_used(&d, 4), "second read");
    CHECK(data_is(3, 0x22), "sector 8 as written by the drained request");
    /* and writes go on */
    fill(4, 0x33);
    blk_req(&d, 4, 1, 16, true);
    CHECK(wait_used(&d, 5), "write after restore");
    EQ(*(uint8_t *)gp(STAT + 4, 1), 0);
    pci_bus_destroy(&pb);
    pump(5);

    /* disks_as_is: the image stays as the VM left it */
    struct snap_file g;
    blk_saved_state(&d, &g);
    rebuild();
    EQ(disk_create("a.qcow2", "", &e), 0);
    g.tag = "s1";
    g.disks_as_is = true;
    EQ(pci_bus_load(&pb, &g, &e), 0);
    EQ(g.ndefer, 0);
    drv_kick(&d, 0);
    CHECK(wait_used(&d, 3), "read, disks as is");
    CHECK(data_is(2, 0x99), "sector 0 as the VM left it");
    pci_bus_destroy(&pb);
    pump(5);
    snap_file_free(&g);

    /* the image lost its internal snapshot (the tag comes from the state,
     * whatever f->tag says) */
    struct qimg *q = NULL;
    EQ(qimg_open(&q, img_path("a.qcow2"), "qcow2", false, &e), 0);
    EQ(qimg_snapshot_delete(q, "s1", &e), 0);
    qimg_close(q);
    rebuild();
    EQ(disk_create("a.qcow2", "", &e), 0);
    f.tag = "other";
    f.ndefer = 0;
    CHECK(pci_bus_load(&pb, &f, &e) == -ENOENT && snap_test_msg(&e, "has no snapshot 's1'") &&
          snap_test_msg(&e, "a.qcow2"), "missing internal snapshot");
    EQ(f.ndefer, 0);
    pci_bus_destroy(&pb);
    pump(5);
    /* another size, read-only instead of writable */
    make_qcow2("b.qcow2", DISK_SIZE * 2);
    rebuild();
    EQ(disk_create("b.qcow2", "", &e), 0);
    f.tag = "s1";
    CHECK(pci_bus_load(&pb, &f, &e) == -EINVAL && snap_test_msg(&e, "has 2097152 bytes, the "
          "snapshot's disk"), "size");
    pci_bus_destroy(&pb);
    pump(5);
    rebuild();
    EQ(disk_create("a.qcow2", ",readonly=on", &e), 0);
    CHECK(pci_bus_load(&pb, &f, &e) == -EINVAL, "read-only");
    pci_bus_destroy(&pb);
    pump(5);
    snap_file_free(&f);
}

static void test_blk_raw(void)
{
    struct drv d;
    struct snap_file f;
    struct err e = { "" };
    /* a writable raw disk cannot take a tagged snapshot */
    setup();
    make_raw("r.img", DISK_SIZE);
    EQ(disk_create("r.img", ",format=raw", &e), 0);
    drv_probe(&d, 1, RAM);
    EQ(drv_init(&d, STD_FEATURES, 1, 64), 0x0f);
    CHECK(save_bus(&f, "s1", &e) == -ENOTSUP &&
          snap_test_msg(&e, "r.img is raw: snapshots need qcow2 disks"), "raw, tagged");
    /* untagged it can (the disk is then the caller's business) */
    setup();
    EQ(disk_create("r.img", ",format=raw", &e), 0);
    drv_probe(&d, 1, RAM);
    EQ(drv_init(&d, STD_FEATURES, 1, 64), 0x0f);
    EQ(save_bus(&f, NULL, &e), 0);
    rebuild();
    EQ(disk_create("r.img", ",format=raw", &e), 0);
    f.tag = "s1";
    EQ(pci_bus_load(&pb, &f, &e), 0);
    EQ(f.ndefer, 0);
    pci_bus_destroy(&pb);
    snap_file_free(&f);
    /* read-only: nothing to snapshot, nothing to revert */
    setup();
    EQ(disk_create("r.img", ",format=raw,readonly=on", &e), 0);
    drv_probe(&d, 1, RAM);
    EQ(drv_init(&d, STD_FEATURES | 1ull << 5, 1, 64), 0x0f);
    EQ(save_bus(&f, "s1", &e), 0);
    rebuild();
    EQ(disk_create("r.img", ",format=raw,readonly=on", &e), 0);
    f.tag = "s1";
    EQ(pci_bus_load(&pb, &f, &e), 0);
    EQ(f.ndefer, 0);
    /* (with dirty tracking on, for diff snapshots: a read's buffer and the
     * status byte are marked written) */
    EQ(gmem_dirty_enable(&mem, &e), 0);
    gmem_dirty_reset(&mem);
    blk_req(&d, 0, 0, 0, true);
    CHECK(wait_used(&d, 1), "read from the restored read-only disk");
    CHECK(gmem_page_dirty(&mem.r[0], (DATA - RAM) / GMEM_PAGE), "read buffer dirty");
    CHECK(gmem_page_dirty(&mem.r[0], (STAT - RAM) / GMEM_PAGE), "status dirty");
    CHECK(!gmem_page_dirty(&mem.r[0], (HDRS - RAM) / GMEM_PAGE), "header not dirty");
    pci_bus_destroy(&pb);
    snap_file_free(&f);
    pump(5);
}

/* --- virtio-net ------------------------------------------------------------------- */

#define NQ 16
#define RX_BUFS (RAM + 0x200000)
#define TX_BUF (RAM + 0x180000)
#define NET_HDR 12

struct test_be {
    struct net_backend be;
    unsigned sent;
};

static struct test_be tbe;

static void tbe_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    (void)frame;
    (void)len;
    ((struct test_be *)be)->sent++;
}

static void tbe_free(struct net_backend *be) { (void)be; }

static const struct net_backend_ops tbe_ops = { .send = tbe_send, .free = tbe_free };

static void net_create_test(void)
{
    memset(&tbe, 0, sizeof(tbe));
    tbe.be.ops = &tbe_ops;
    tbe.be.name = "test";
    struct err e = { "" };
    EQ(virtio_net_create_backend(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                                 &tbe.be, NULL, &e), 0);
}

static void frame(uint8_t *f, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 3);
}

static void test_net(void)
{
    struct drv d;
    setup();
    net_create_test();
    drv_probe(&d, 1, RAM);
    EQ(drv_init(&d, STD_FEATURES | 1ull << 15, 2, NQ), 0x0f);   /* MRG_RXBUF */
    /* three frames for a guest without receive buffers */
    uint8_t fr[3][200];
    for (unsigned i = 0; i < 3; i++) {
        frame(fr[i], 60 + 40 * i, (uint8_t)(i * 50));
        tbe.be.receive(tbe.be.opaque, fr[i], 60 + 40 * i);
    }
    EQ(used_idx(&d, 0), 0);
    struct snap_file f;
    struct err e = { "" };
    EQ(save_bus(&f, NULL, &e), 0);

    rebuild();
    net_create_test();
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    for (unsigned i = 0; i < 4; i++) {
        put_desc(d.desc[0], i, RX_BUFS + 0x1000 * i, 2048, VIRTQ_DESC_F_WRITE, 0);
        drv_avail(&d, 0, (uint16_t)i);
    }
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 3);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t id = rd32(d.used[0] + 4 + 8 * i), len = rd32(d.used[0] + 8 + 8 * i);
        EQ(len, NET_HDR + 60 + 40 * i);
        CHECK(id < 4 && !memcmp(gp(RX_BUFS + 0x1000 * id + NET_HDR, 60 + 40 * i), fr[i],
                                60 + 40 * i), "frame %u", i);
    }
    /* transmit goes on */
    uint8_t tx[NET_HDR + 60] = { 0 };
    frame(tx + NET_HDR, 60, 7);
    memcpy(gp(TX_BUF, sizeof(tx)), tx, sizeof(tx));
    put_desc(d.desc[1], 0, TX_BUF, sizeof(tx), 0, 0);
    drv_avail(&d, 1, 0);
    drv_kick(&d, 1);
    EQ(tbe.sent, 1);
    EQ(used_idx(&d, 1), 1);
    pci_bus_destroy(&pb);

    /* a snapshot of another backend kind */
    rebuild();
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                         "virtio-net,net=user", &e), 0);
    CHECK(pci_bus_load(&pb, &f, &e) == -EINVAL &&
          snap_test_msg(&e, "the snapshot's network backend is net=test, this VM's net=user"),
          "backend kind");
    pci_bus_destroy(&pb);
    /* a waiting frame of a bad length */
    size_t off = 4 + strlen("virtio-net") + 8 + 8 * PCI_NUM_BARS + PCI_CFG_SIZE + 1 + 12 + 24 +
                 2 * 38 + 6 + 4;
    uint32_t len = 9000;
    struct snap_file g;
    EQ(snap_test_patch(&f, "pci-01", off, &len, 4, &g), 0);
    rebuild();
    net_create_test();
    CHECK(pci_bus_load(&pb, &g, &e) == -EINVAL && snap_test_msg(&e, "bad length"), "frame len");
    pci_bus_destroy(&pb);
    snap_file_free(&g);
    snap_file_free(&f);

    /* net=user through save and load, with its NAT state */
    setup();
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                         "virtio-net,net=user", &e), 0);
    drv_probe(&d, 1, RAM);
    EQ(drv_init(&d, STD_FEATURES, 2, NQ), 0x0f);
    EQ(save_bus(&f, NULL, &e), 0);
    rebuild();
    EQ(virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                         "virtio-net,net=user", &e), 0);
    ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "net=user load: %s", e.msg);
    pci_bus_destroy(&pb);
    snap_file_free(&f);
    pump(5);
}

/* --- the NAT's own state ---------------------------------------------------------- */

static uint8_t reply[2048];
static size_t reply_len;

static void capture(void *opaque, const uint8_t *f, size_t len)
{
    (void)opaque;
    if (len <= sizeof(reply) && len > 42 && f[23] == 17) {      /* UDP */
        memcpy(reply, f, len);
        reply_len = len;
    }
}

static uint16_t ip_sum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* DHCPDISCOVER from mac[5] = last; the address offered (host order), 0 if
 * none. */
static uint32_t dhcp_offer(struct net_backend *be, uint8_t last)
{
    uint8_t f[14 + 20 + 8 + 548] = { 0 };
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, last };
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14, *udp = ip + 20, *bp = udp + 8;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((sizeof(f) - 14) >> 8);
    ip[3] = (uint8_t)(sizeof(f) - 14);
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    uint16_t s = ip_sum(ip, 20);
    ip[10] = (uint8_t)(s >> 8);
    ip[11] = (uint8_t)s;
    udp[1] = 68;
    udp[3] = 67;
    udp[4] = (uint8_t)((8 + 548) >> 8);
    udp[5] = (uint8_t)(8 + 548);
    bp[0] = 1;
    bp[1] = 1;
    bp[2] = 6;
    memcpy(bp + 4, "\x12\x34\x56\x78", 4);
    memcpy(bp + 28, mac, 6);
    memcpy(bp + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8);
    reply_len = 0;
    be->ops->send(be, f, sizeof(f));
    pump(5);
    if (!reply_len)
        return 0;
    uint32_t a;
    memcpy(&a, reply + 14 + 20 + 8 + 16, 4);
    return ntohl(a);
}

static struct net_backend *slirp(void)
{
    struct net_user_config cfg = { 0 };
    struct net_backend *be = NULL;
    struct err e = { "" };
    int ret = net_slirp_new(loop, &cfg, &be, &e);
    CHECK(ret == 0, "slirp: %s", e.msg);
    be->receive = capture;
    return be;
}

/* Save be's state into a parsed state file. */
static void nat_save(struct net_backend *be, struct snap_file *f)
{
    struct snap_writer w;
    struct err e = { "" };
    snapw_init(&w);
    snapw_section(&w, "nat", 1);
    be->ops->save(be, &w);
    EQ(snap_test_finish(&w, f, &e), 0);
    snapw_free(&w);
}

static int nat_load(struct net_backend *be, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    EQ(snap_section(f, "nat", 1, 1, &r, e), 0);
    be->ops->load(be, &r);
    int ret = snapr_end(&r, e);
    return ret < 0 ? ret : be->ops->restore(be, e);
}

static void test_nat_state(void)
{
    const uint32_t first = 0x0a00020f;      /* 10.0.2.15 */
    struct net_backend *a = slirp();
    EQ(dhcp_offer(a, 1), first);
    struct snap_file f, g;
    nat_save(a, &f);
    net_backend_free(a);
    struct snap_reader r;
    struct err e = { "" };
    EQ(snap_section(&f, "nat", 1, 1, &r, &e), 0);
    EQ(r.len, 4 + 4 + 131);                 /* version, length, libslirp's 131 bytes */
    EQ(r.p[8], 0);                          /* no guestfwd sockets */

    /* a restored NAT remembers the lease: a second client gets the next
     * address, the first its own */
    struct net_backend *b = slirp();
    EQ(nat_load(b, &f, &e), 0);
    EQ(dhcp_offer(b, 2), first + 1);
    EQ(dhcp_offer(b, 1), first);
    net_backend_free(b);
    /* a fresh one would give the second client the first address */
    struct net_backend *c = slirp();
    EQ(dhcp_offer(c, 2), first);
    /* damage: guestfwd sockets, a newer libslirp, a huge length, short */
    uint8_t v = 42;
    EQ(snap_test_patch(&f, "nat", 8, &v, 1, &g), 0);
    CHECK(nat_load(c, &g, &e) == -EINVAL && snap_test_msg(&e, "guestfwd"), "guestfwd");
    snap_file_free(&g);
    uint32_t ver = 99;
    EQ(snap_test_patch(&f, "nat", 0, &ver, 4, &g), 0);
    CHECK(nat_load(c, &g, &e) == -EINVAL && snap_test_msg(&e, "newer libslirp"), "version");
    snap_file_free(&g);
    uint32_t len = 1u << 20;
    EQ(snap_test_patch(&f, "nat", 4, &len, 4, &g), 0);
    CHECK(nat_load(c, &g, &e) == -EINVAL && snap_test_msg(&e, "too large"), "length");
    snap_file_free(&g);
    EQ(snap_test_edit(&f, "nat", 4 + 4 + 100, 0, NULL, 0, &g), 0);
    CHECK(nat_load(c, &g, &e) == -EINVAL && snap_test_msg(&e, "shorter"), "short");
    snap_file_free(&g);
    /* a whole state shorter than libslirp's (which libslirp itself would
     * take, keeping what it read) */
    len = 100;
    EQ(snap_test_patch(&f, "nat", 4, &len, 4, &g), 0);
    struct snap_file h;
    EQ(snap_test_edit(&g, "nat", 4 + 4 + 100, 0, NULL, 0, &h), 0);
    CHECK(nat_load(c, &h, &e) == -EINVAL && snap_test_msg(&e, "another length"), "length");
    snap_file_free(&h);
    snap_file_free(&g);
    net_backend_free(c);
    snap_file_free(&f);
}

int main(void)
{
    struct err e;
    strcpy(dir, "/tmp/petrel-vsnapdev-XXXXXX");
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, &e) < 0 || !(loop = evloop_new(&e)) || !mkdtemp(dir)) {
        printf("test_virtio_snapshot_dev: set-up failed\n");
        return 1;
    }
    test_blk_qcow2();
    test_blk_raw();
    test_net();
    test_nat_state();
    unlink(img_path("a.qcow2"));
    unlink(img_path("b.qcow2"));
    unlink(img_path("r.img"));
    rmdir(dir);
    evloop_free(loop);
    gmem_free(&mem);
    snap_test_cleanup();
    return unit_done("test_virtio_snapshot_dev");
}
