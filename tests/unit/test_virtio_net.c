/* Unit tests for virtio-net, driven the way the guest's driver does
 * (tests/unit/virtio_driver.h): identity, features and config space; a
 * transmitted frame (split over descriptors) reaching a test backend; the
 * transmit checksum offload (NEEDS_CSUM) and its bad offsets; malformed
 * transmit chains (short header, no frame, oversized, GSO, writable parts)
 * each dropped alone; receive with mergeable buffers spanning several
 * chains (num_buffers, DATA_VALID); a frame waiting for more buffers (the
 * chains taken for it are put back) and then delivered; no receive buffers
 * at all (a bounded FIFO, the excess dropped, order kept); frames before
 * the driver runs and across a reset; receive without MRG_RXBUF; hostile
 * receive buffers; and the real slirp backend answering an ARP request for
 * the gateway through the event loop, plus bad options. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/net.h"

#include "unit.h"

#include "virtio_driver.h"

#define QSIZE 16
#define RXQ 0
#define TXQ 1
#define TX_BUFS (RAM + 0x100000)      /* QSIZE x 4 KiB */
#define RX_BUFS (RAM + 0x200000)      /* QSIZE x 4 KiB */
#define SLOT 0x1000u
#define HDR 12

#define F_CSUM 0
#define F_GUEST_CSUM 1
#define F_MTU 3
#define F_MAC 5
#define F_MRG_RXBUF 15
#define F_STATUS 16

static struct evloop *loop;
static uint16_t used_seen[2];

/* --- a test backend ----------------------------------------------------------- */

struct test_be {
    struct net_backend be;
    uint8_t last[2048];
    size_t last_len;
    unsigned sent, flushes;
    bool freed;
};

static struct test_be tbe;

static void tbe_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct test_be *t = (struct test_be *)be;
    t->sent++;
    t->last_len = len < sizeof(t->last) ? len : sizeof(t->last);
    memcpy(t->last, frame, t->last_len);
}

static void tbe_flush(struct net_backend *be) { ((struct test_be *)be)->flushes++; }
static void tbe_free(struct net_backend *be) { ((struct test_be *)be)->freed = true; }

static const struct net_backend_ops tbe_ops = { .send = tbe_send, .flush = tbe_flush,
                                                .free = tbe_free };

/* A frame from the backend towards the guest. */
static void host_frame(const uint8_t *frame, size_t len)
{
    tbe.be.receive(tbe.be.opaque, frame, len);
}

static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

/* --- the guest's side ------------------------------------------------------------ */

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

static void dev_create(void)
{
    setup();
    memset(&tbe, 0, sizeof(tbe));
    tbe.be.ops = &tbe_ops;
    tbe.be.name = "test";
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    struct err e = { "" };
    EQ(virtio_net_create_backend(&h, &tbe.be, test_mac, &e), 0);
    CHECK(!e.msg[0], "error: %s", e.msg);
}

static void drv_up(struct drv *d, uint64_t features)
{
    drv_probe(d, 1, RAM);
    EQ(drv_init(d, STD_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX) | features, 2, QSIZE), 0x0f);
    used_seen[0] = used_seen[1] = 0;
}

static void teardown(void)
{
    pci_bus_destroy(&pb);
}

/* Transmit one chain: the header then the frame, split into descriptors
 * at the offsets in cuts[] (ascending, 0-terminated). */
static void guest_tx_desc(struct drv *d, const uint8_t *data, uint32_t len, const uint32_t *cuts,
                          uint16_t extra_flags)
{
    uint16_t head = (uint16_t)(d->avail_idx[TXQ] % QSIZE);
    uint64_t b = TX_BUFS + (uint64_t)head * SLOT;
    CHECK(len <= SLOT * 2, "tx of %u bytes", len);
    uint8_t *p = gp(b, len);
    memcpy(p, data, len);
    /* descriptors from a private table region of 8 entries per head */
    uint64_t table = RAM + 0x80000 + (uint64_t)head * 16 * 8;
    uint32_t start = 0;
    unsigned i = 0;
    for (; cuts && cuts[i] && cuts[i] < len && i < 6; i++) {
        put_desc(table, i, b + start, cuts[i] - start, VIRTQ_DESC_F_NEXT | extra_flags,
                 (uint16_t)(i + 1));
        start = cuts[i];
    }
    put_desc(table, i, b + start, len - start, extra_flags, 0);
    put_desc(d->desc[TXQ], head, table, 16 * (i + 1), VIRTQ_DESC_F_INDIRECT, 0);
    drv_avail(d, TXQ, head);
    drv_kick(d, TXQ);
}

static void guest_tx(struct drv *d, const uint8_t *data, uint32_t len)
{
    guest_tx_desc(d, data, len, NULL, 0);
}

/* Give n receive buffers of len bytes, one descriptor each. */
static void guest_rx_give(struct drv *d, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t head = (uint16_t)(d->avail_idx[RXQ] % QSIZE);
        put_desc(d->desc[RXQ], head, RX_BUFS + (uint64_t)head * SLOT, len, VIRTQ_DESC_F_WRITE,
                 0);
        drv_avail(d, RXQ, head);
    }
    drv_kick(d, RXQ);
}

struct used { uint32_t id, len; };

/* The used entries of a queue since the last call. */
static unsigned take_used(struct drv *d, unsigned q, struct used *u, unsigned max)
{
    unsigned n = 0;
    while (used_seen[q] != used_idx(d, q)) {
        uint64_t e = d->used[q] + 4 + 8ull * (used_seen[q] % QSIZE);
        if (n < max)
            u[n++] = (struct used){ rd32(e), rd32(e + 4) };
        used_seen[q]++;
    }
    return n;
}

/* Receive one frame (num_buffers from the first buffer's header); returns
 * its length (without header), 0 if nothing was received. */
static size_t guest_rx_frame(struct drv *d, uint8_t *out, size_t max, uint8_t *hdr_out)
{
    struct used u[QSIZE];
    unsigned n = take_used(d, RXQ, u, QSIZE);
    if (!n)
        return 0;
    CHECK(u[0].id < QSIZE && u[0].len >= HDR, "first used %u len %u", u[0].id, u[0].len);
    if (u[0].id >= QSIZE || u[0].len < HDR)
        return 0;
    const uint8_t *h = gp(RX_BUFS + (uint64_t)u[0].id * SLOT, HDR);
    if (hdr_out)
        memcpy(hdr_out, h, HDR);
    unsigned nbuf = (unsigned)(h[10] | h[11] << 8);
    EQ(nbuf, n);
    size_t got = 0;
    for (unsigned i = 0; i < n && i < QSIZE; i++) {
        uint32_t off = i ? 0 : HDR, len = u[i].len - off;
        CHECK(u[i].id < QSIZE && u[i].len <= SLOT, "used %u len %u", u[i].id, u[i].len);
        if (got + len <= max && u[i].id < QSIZE)
            memcpy(out + got, gp(RX_BUFS + (uint64_t)u[i].id * SLOT + off, len), len);
        got += len;
    }
    return got;
}

static uint32_t dev_cfg(struct drv *d, unsigned off, unsigned size)
{
    return (uint32_t)bar_rd(d, d->device + off, size);
}

/* --- tests ------------------------------------------------------------------------- */

static void test_identity_and_config(void)
{
    struct drv d;
    dev_create();
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x1041);
    EQ(cfg_rd(1, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_NET);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4) >> 8, 0x020000);
    drv_up(&d, 1ull << F_MAC | 1ull << F_STATUS | 1ull << F_MRG_RXBUF | 1ull << F_CSUM |
                   1ull << F_GUEST_CSUM | 1ull << F_MTU);
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    uint32_t f = (uint32_t)bar_rd(&d, COMMON(&d, DF), 4);
    EQ(f & (1u << F_MAC | 1u << F_STATUS | 1u << F_MRG_RXBUF | 1u << F_CSUM |
            1u << F_GUEST_CSUM | 1u << F_MTU),
       1u << F_MAC | 1u << F_STATUS | 1u << F_MRG_RXBUF | 1u << F_CSUM | 1u << F_GUEST_CSUM |
       1u << F_MTU);
    /* no segmentation offload: GUEST_TSO4/6 (7, 8), HOST_TSO4/6 (11, 12), UFO */
    EQ(f & (1u << 7 | 1u << 8 | 1u << 10 | 1u << 11 | 1u << 12 | 1u << 14), 0);
    for (unsigned i = 0; i < 6; i++)
        EQ(dev_cfg(&d, i, 1), test_mac[i]);
    EQ(dev_cfg(&d, 6, 2), 1);               /* link up */
    EQ(dev_cfg(&d, 8, 2), 1);               /* one queue pair */
    EQ(dev_cfg(&d, 10, 2), 1500);           /* mtu */
    bar_wr(&d, d.device, 1, 0x02);          /* read-only: ignored */
    EQ(dev_cfg(&d, 0, 1), 0x52);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    teardown();
    CHECK(tbe.freed, "the backend was not freed with the device");

    /* the default MAC: 52:54:00:12:34:(0x56 + slot) */
    setup();
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    struct err e = { "" };
    memset(&tbe, 0, sizeof(tbe));
    tbe.be.ops = &tbe_ops;
    EQ(virtio_net_create_backend(&h, &tbe.be, NULL, &e), 0);
    drv_up(&d, 1ull << F_MAC);
    EQ(dev_cfg(&d, 0, 4), 0x12005452);
    EQ(dev_cfg(&d, 4, 2), 0x5734);     /* 34:57: slot 1 */
    teardown();
}

static void test_tx(void)
{
    struct drv d;
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF);
    uint8_t buf[HDR + 1514] = { 0 };
    make_frame(buf + HDR, 1514, 3);
    static const uint32_t cuts[] = { 5, HDR, 100, 0 };    /* header split too */
    guest_tx_desc(&d, buf, sizeof(buf), cuts, 0);
    EQ(tbe.sent, 1);
    EQ(tbe.last_len, 1514);
    CHECK(!memcmp(tbe.last, buf + HDR, 1514), "frame differs");
    CHECK(tbe.flushes >= 1, "no flush after a tx batch");
    struct used u[QSIZE];
    EQ(take_used(&d, TXQ, u, QSIZE), 1);
    EQ(u[0].len, 0);
    teardown();
}

/* Ones' complement sum, not inverted. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

static void test_tx_checksum(void)
{
    struct drv d;
    dev_create();
    drv_up(&d, 1ull << F_CSUM);
    /* Ethernet + IPv4 + UDP with 21 bytes of payload (odd length) */
    uint8_t buf[HDR + 14 + 20 + 8 + 21] = { 0 };
    uint8_t *f = buf + HDR, *ip = f + 14, *udp = ip + 20;
    size_t flen = sizeof(buf) - HDR, ulen = 8 + 21;
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[9] = 17;
    memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15 }, 4);
    memcpy(ip + 16, (uint8_t[]){ 10, 0, 2, 2 }, 4);
    udp[0] = 0x30; udp[1] = 0x39; udp[2] = 0x00; udp[3] = 0x35;
    udp[4] = 0; udp[5] = (uint8_t)ulen;
    make_frame(udp + 8, 21, 9);
    /* the driver leaves the pseudo-header sum in the checksum field */
    uint8_t pseudo[12] = { 10, 0, 2, 15, 10, 0, 2, 2, 0, 17, 0, (uint8_t)ulen };
    uint32_t ps = sum16(pseudo, sizeof(pseudo), 0);
    udp[6] = (uint8_t)(ps >> 8);
    udp[7] = (uint8_t)ps;
    buf[0] = 1;                                 /* NEEDS_CSUM */
    buf[6] = 34; buf[8] = 6;                    /* csum_start, csum_offset */
    guest_tx(&d, buf, sizeof(buf));
    EQ(tbe.sent, 1);
    EQ(tbe.last_len, flen);
    /* the receiver's check: pseudo header + segment sums to 0xffff */
    const uint8_t *sent_udp = tbe.last + 34;
    EQ(sum16(sent_udp, ulen, sum16(pseudo, sizeof(pseudo), 0)), 0xffff);
    CHECK(sent_udp[6] || sent_udp[7], "checksum not filled in");

    /* checksum field beyond the frame: dropped alone */
    buf[8] = 6;
    buf[6] = (uint8_t)(flen - 7);               /* start + 6 + 2 = flen + 1 */
    guest_tx(&d, buf, sizeof(buf));
    EQ(tbe.sent, 1);
    buf[6] = 34; buf[8] = 0xff; buf[9] = 0xff;  /* huge offset */
    guest_tx(&d, buf, sizeof(buf));
    EQ(tbe.sent, 1);
    buf[8] = 6; buf[9] = 0;
    guest_tx(&d, buf, sizeof(buf));             /* fixed: goes through */
    EQ(tbe.sent, 2);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    teardown();

    /* NEEDS_CSUM without VIRTIO_NET_F_CSUM negotiated: dropped */
    dev_create();
    drv_up(&d, 0);
    guest_tx(&d, buf, sizeof(buf));
    EQ(tbe.sent, 0);
    teardown();
}

static void test_tx_malformed(void)
{
    struct drv d;
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF);
    static uint8_t buf[HDR + 4000];
    memset(buf, 0, sizeof(buf));
    make_frame(buf + HDR, 60, 1);
    guest_tx(&d, buf, 11);                      /* header too short */
    guest_tx(&d, buf, HDR);                     /* no frame */
    guest_tx(&d, buf, HDR + 13);                /* shorter than an Ethernet header */
    guest_tx(&d, buf, HDR + NET_MAX_FRAME + 1); /* too large */
    guest_tx(&d, buf, HDR + 3000);              /* much too large */
    buf[1] = 1;                                 /* gso_type TCPV4: not offered */
    guest_tx(&d, buf, HDR + 60);
    buf[1] = 0;
    guest_tx_desc(&d, buf, HDR + 60, NULL, VIRTQ_DESC_F_WRITE);   /* writable */
    EQ(tbe.sent, 0);
    struct used u[QSIZE];
    EQ(take_used(&d, TXQ, u, QSIZE), 7);        /* every chain returned */
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    guest_tx(&d, buf, HDR + NET_MAX_FRAME);     /* the largest frame is fine */
    guest_tx(&d, buf, HDR + 60);
    EQ(tbe.sent, 2);
    EQ(tbe.last_len, 60);
    teardown();
}

static void test_rx_mergeable(void)
{
    struct drv d;
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF | 1ull << F_GUEST_CSUM);
    uint8_t frame[1400], got[2048], hdr[HDR];
    make_frame(frame, sizeof(frame), 5);
    guest_rx_give(&d, 4, 512);
    host_frame(frame, sizeof(frame));           /* 12 + 1400: 512 + 512 + 388 */
    memset(hdr, 0xaa, sizeof(hdr));
    EQ(guest_rx_frame(&d, got, sizeof(got), hdr), sizeof(frame));
    CHECK(!memcmp(got, frame, sizeof(frame)), "frame content differs");
    EQ(hdr[0], 2);                              /* DATA_VALID */
    EQ(hdr[1], 0);                              /* no GSO */
    EQ(hdr[10], 3);                             /* num_buffers */
    CHECK(line(&d), "no interrupt for a received frame");

    /* only one buffer left (512): a 1400-byte frame waits, nothing used */
    host_frame(frame, sizeof(frame));
    EQ(guest_rx_frame(&d, got, sizeof(got), NULL), 0);
    guest_rx_give(&d, 1, 512);                  /* still 1024 < 1412 */
    EQ(guest_rx_frame(&d, got, sizeof(got), NULL), 0);
    guest_rx_give(&d, 2, 512);
    EQ(guest_rx_frame(&d, got, sizeof(got), hdr), sizeof(frame));
    CHECK(!memcmp(got, frame, sizeof(frame)), "frame content differs after waiting");
    EQ(hdr[10], 3);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    teardown();
}

static void test_rx_no_buffers(void)
{
    struct drv d;
    uint8_t frame[100], got[2048];

    /* before DRIVER_OK: dropped, not queued */
    dev_create();
    make_frame(frame, sizeof(frame), 0);
    host_frame(frame, sizeof(frame));
    drv_up(&d, 1ull << F_MRG_RXBUF);
    guest_rx_give(&d, QSIZE, 2048);
    EQ(guest_rx_frame(&d, got, sizeof(got), NULL), 0);
    teardown();

    /* no buffers: 300 frames, at most NET_RX_PENDING (256) wait, in order */
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF);
    for (unsigned i = 0; i < 300; i++) {
        frame[0] = (uint8_t)i;
        frame[1] = (uint8_t)(i >> 8);
        host_frame(frame, sizeof(frame));
    }
    unsigned received = 0;
    bool in_order = true;
    for (unsigned round = 0; round < 40 && received < 300; round++) {
        guest_rx_give(&d, QSIZE, 2048);
        struct used u[QSIZE];
        unsigned n = take_used(&d, RXQ, u, QSIZE);
        if (!n)
            break;
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *p = gp(RX_BUFS + (uint64_t)u[i].id * SLOT, HDR + 2);
            if (u[i].len != HDR + sizeof(frame) ||
                (unsigned)(p[HDR] | p[HDR + 1] << 8) != received)
                in_order = false;
            received++;
        }
    }
    CHECK(in_order, "frames out of order or damaged");
    EQ(received, 256);
    teardown();
}

/* Frames one per buffer, checked in order. */
static void test_rx_order_and_reset(void)
{
    struct drv d;
    uint8_t frame[200];
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF);
    for (unsigned i = 0; i < 5; i++) {
        make_frame(frame, sizeof(frame), (uint8_t)i);
        host_frame(frame, sizeof(frame));
    }
    guest_rx_give(&d, 3, 1024);
    struct used u[QSIZE];
    EQ(take_used(&d, RXQ, u, QSIZE), 3);
    for (unsigned i = 0; i < 3; i++) {
        EQ(u[i].len, HDR + sizeof(frame));
        EQ(*(uint8_t *)gp(RX_BUFS + (uint64_t)u[i].id * SLOT + HDR, 1), i);
    }
    /* a reset drops the two still waiting */
    drv_up(&d, 1ull << F_MRG_RXBUF);
    guest_rx_give(&d, 3, 1024);
    EQ(take_used(&d, RXQ, u, QSIZE), 0);
    make_frame(frame, sizeof(frame), 9);
    host_frame(frame, sizeof(frame));
    EQ(take_used(&d, RXQ, u, QSIZE), 1);
    EQ(*(uint8_t *)gp(RX_BUFS + (uint64_t)u[0].id * SLOT + HDR, 1), 9);
    teardown();
}

static void test_rx_without_mrg_and_hostile(void)
{
    struct drv d;
    uint8_t frame[1000], got[2048], hdr[HDR];
    struct used u[QSIZE];
    dev_create();
    drv_up(&d, 0);
    /* one 512-byte buffer: a 1000-byte frame is dropped, the buffer kept */
    guest_rx_give(&d, 1, 512);
    make_frame(frame, sizeof(frame), 1);
    host_frame(frame, sizeof(frame));
    EQ(take_used(&d, RXQ, u, QSIZE), 0);
    host_frame(frame, 300);                     /* fits */
    EQ(guest_rx_frame(&d, got, sizeof(got), hdr), 300);
    CHECK(!memcmp(got, frame, 300), "frame content differs");
    EQ(hdr[10], 1);                             /* num_buffers 1 */
    EQ(hdr[0], 0);                              /* no DATA_VALID without GUEST_CSUM */
    teardown();

    /* hostile receive buffers: tiny, read-only */
    dev_create();
    drv_up(&d, 1ull << F_MRG_RXBUF);
    guest_rx_give(&d, 2, 4);                    /* smaller than the header */
    uint16_t head = (uint16_t)(d.avail_idx[RXQ] % QSIZE);
    put_desc(d.desc[RXQ], head, RX_BUFS + (uint64_t)head * SLOT, 512, 0, 0);  /* read-only */
    drv_avail(&d, RXQ, head);
    drv_kick(&d, RXQ);
    host_frame(frame, 100);
    EQ(take_used(&d, RXQ, u, QSIZE), 3);        /* all returned unused */
    for (unsigned i = 0; i < 3; i++)
        EQ(u[i].len, 0);
    guest_rx_give(&d, 1, 2048);
    EQ(guest_rx_frame(&d, got, sizeof(got), NULL), 100);
    /* frames of impossible sizes from a backend are refused */
    host_frame(frame, 5);
    EQ(take_used(&d, RXQ, u, QSIZE), 0);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    teardown();
}

/* --- the slirp backend ------------------------------------------------------------- */

static void pump(unsigned ms)
{
    for (unsigned i = 0; i < ms / 5; i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        if (poll(&p, 1, 5) > 0)
            evloop_dispatch(loop);
    }
}

static int create(const char *spec, struct err *e)
{
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    return virtio_pci_create(&h, spec, e);
}

static void test_slirp_arp(void)
{
    struct drv d;
    setup();
    struct err e = { "" };
    EQ(create("virtio-net,net=user,mac=52:54:00:ab:cd:ef", &e), 0);
    CHECK(!e.msg[0], "error: %s", e.msg);
    drv_up(&d, 1ull << F_MRG_RXBUF | 1ull << F_MAC);
    guest_rx_give(&d, 4, 2048);
    /* ARP who-has 10.0.2.2 tell 10.0.2.15 */
    uint8_t buf[HDR + 42] = { 0 };
    uint8_t *f = buf + HDR;
    memset(f, 0xff, 6);
    memcpy(f + 6, test_mac, 6);
    f[12] = 0x08; f[13] = 0x06;
    uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1 };
    memcpy(arp + 8, test_mac, 6);
    memcpy(arp + 14, (uint8_t[]){ 10, 0, 2, 15 }, 4);
    memcpy(arp + 24, (uint8_t[]){ 10, 0, 2, 2 }, 4);
    memcpy(f + 14, arp, sizeof(arp));
    guest_tx(&d, buf, sizeof(buf));
    pump(50);
    uint8_t got[2048];
    size_t n = guest_rx_frame(&d, got, sizeof(got), NULL);
    CHECK(n >= 42, "no ARP reply from slirp (%zu bytes)", n);
    if (n >= 42) {
        CHECK(!memcmp(got, test_mac, 6), "reply not addressed to the guest");
        EQ(got[12], 0x08);
        EQ(got[13], 0x06);
        EQ(got[21], 2);                         /* ARP reply */
        CHECK(!memcmp(got + 28, (uint8_t[]){ 10, 0, 2, 2 }, 4), "not from 10.0.2.2");
    }
    teardown();
    pump(10);
}

static void bad(const char *spec, const char *want)
{
    setup();
    struct err e = { "" };
    CHECK(create(spec, &e) < 0, "%s accepted", spec);
    CHECK(strstr(e.msg, want) != NULL, "%s: '%s' lacks '%s'", spec, e.msg, want);
    teardown();
}

static void test_bad_options(void)
{
    bad("virtio-net,bogus=1", "unknown option 'bogus'");
    bad("virtio-net,net=bogus", "unknown backend");
    bad("virtio-net,net=tap", "needs ifname");
    bad("virtio-net,ifname=tap0", "net=tap option");
    bad("virtio-net,mac=52:54:00:12:34", "six hex bytes");
    bad("virtio-net,mac=52:54:00:12:34:5g", "six hex bytes");
    bad("virtio-net,mac=52-54-00-12-34-56", "six hex bytes");
    bad("virtio-net,mac=03:00:00:00:00:01", "multicast");
    bad("virtio-net,mac=00:00:00:00:00:00", "zero address");
    bad("virtio-net,hostfwd=tcp:127.0.0.1:2222", "expected");
    bad("virtio-net,hostfwd=", "expected");
    bad("virtio-net,hostfwd=icmp::1-:2", "protocol 'icmp'");
    bad("virtio-net,hostfwd=tcp::0-:22", "bad host");
    bad("virtio-net,hostfwd=tcp::65536-:22", "bad host");
    bad("virtio-net,hostfwd=tcp::22x-:22", "bad host");
    bad("virtio-net,hostfwd=tcp:300.1.1.1:2222-:22", "bad host");
    bad("virtio-net,hostfwd=tcp::2222-:", "bad guest");
    bad("virtio-net,hostfwd=tcp::2222-10.0.2.2:22", "guest address must be");
    bad("virtio-net,hostfwd=tcp::2222-10.0.3.15:22", "guest address must be");
    bad("virtio-net,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:2222-:23",
        "given twice");
    bad("virtio-net,restrict=perhaps", "expected on or off");

    /* a host port in use */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 1) == 0 &&
          getsockname(s, (struct sockaddr *)&a, &alen) == 0, "test socket: %s", strerror(errno));
    char spec[128];
    snprintf(spec, sizeof(spec), "virtio-net,hostfwd=tcp:127.0.0.1:%u-:22", ntohs(a.sin_port));
    bad(spec, "already in use");
    close(s);
    /* and free again: accepted */
    setup();
    struct err e = { "" };
    EQ(create(spec, &e), 0);
    CHECK(!e.msg[0], "error: %s", e.msg);
    teardown();
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    loop = evloop_new(NULL);
    if (!loop)
        return 1;
    test_identity_and_config();
    test_tx();
    test_tx_checksum();
    test_tx_malformed();
    test_rx_mergeable();
    test_rx_no_buffers();
    test_rx_order_and_reset();
    test_rx_without_mrg_and_hostile();
    test_slirp_arp();
    test_bad_options();
    evloop_free(loop);
    gmem_free(&mem);
    return unit_done("test_virtio_net");
}
