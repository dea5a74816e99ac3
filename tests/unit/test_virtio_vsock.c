/* Unit tests for virtio-vsock (src/virtio/virtio_vsock.c), driven the way
 * the guest's driver does (tests/unit/virtio_driver.h, three queues), with
 * real unix sockets and the real event loop: identity and config space;
 * host-initiated connections (CONNECT/OK, data both ways, the guest's
 * SHUTDOWN and RST); guest-initiated ones to PATH_PORT (data both ways, the
 * host closing); refused connections; bad client lines; credit both ways
 * (the device keeps to the guest's buf_alloc and asks for credit, a guest
 * overrunning the device's gets an RST); hostile packets (short headers,
 * lengths, CIDs, types, ops, small receive buffers); the connection bound;
 * device reset; snapshots (the CID is checked, connections are gone and
 * the guest gets a TRANSPORT_RESET event); bad options. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/snapshot.h"

#include "unit.h"

#include "virtio_driver.h"
#include "snap_test_util.h"

#define QSIZE 64
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define RINGS RAM                       /* 3 x 0x4000 */
#define RX_BUFS (RAM + 0x100000)        /* QSIZE x 4 KiB */
#define RX_SLOT 0x1000u
#define TX_BUF (RAM + 0x200000)         /* one packet, reused: 64 KiB + header */
#define EV_BUFS (RAM + 0x240000)        /* QSIZE x 16 bytes */
#define CID 7u
#define HOST 2u
#define HDR 44u
enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE,
       OP_CREDIT_REQUEST };
#define DEV_BUF (256u << 10)

static struct evloop *loop;
static char dir[64], uds[128];

static struct drv_q vq[3];
static struct drv drv;

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};

static void pack(const struct hdr *h, uint8_t *b)
{
    memcpy(b, &h->src_cid, 8);
    memcpy(b + 8, &h->dst_cid, 8);
    memcpy(b + 16, &h->src_port, 4);
    memcpy(b + 20, &h->dst_port, 4);
    memcpy(b + 24, &h->len, 4);
    memcpy(b + 28, &h->type, 2);
    memcpy(b + 30, &h->op, 2);
    memcpy(b + 32, &h->flags, 4);
    memcpy(b + 36, &h->buf_alloc, 4);
    memcpy(b + 40, &h->fwd_cnt, 4);
}

static void unpack(struct hdr *h, const uint8_t *b)
{
    memcpy(&h->src_cid, b, 8);
    memcpy(&h->dst_cid, b + 8, 8);
    memcpy(&h->src_port, b + 16, 4);
    memcpy(&h->dst_port, b + 20, 4);
    memcpy(&h->len, b + 24, 4);
    memcpy(&h->type, b + 28, 2);
    memcpy(&h->op, b + 30, 2);
    memcpy(&h->flags, b + 32, 4);
    memcpy(&h->buf_alloc, b + 36, 4);
    memcpy(&h->fwd_cnt, b + 40, 4);
}

/* Run the event loop until nothing is ready (at most ~50 rounds). */
static void pump(void)
{
    for (unsigned i = 0; i < 50; i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        if (poll(&p, 1, i ? 5 : 20) <= 0)
            return;
        evloop_dispatch(loop);
    }
}

static int create(const char *spec, struct err *e)
{
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    return virtio_pci_create(&h, spec, e);
}

/* --- the guest's driver: three queues ---------------------------------------- */

static uint8_t drv_up3(void)
{
    return drv_up_queues(&drv, RINGS, 1ull << VIRTIO_RING_F_EVENT_IDX, vq, 3, QSIZE);
}

static void q_avail(unsigned qi, uint16_t head, bool kick)
{
    struct drv_q *q = &vq[qi];
    wr16(q->avail + 4 + 2ull * (q->avail_idx % QSIZE), head);
    q->avail_idx++;
    wr16(q->avail + 2, q->avail_idx);
    if (kick)
        bar_wr(&drv, drv.notify + (uint64_t)q->noff * drv.mult, 2, qi);
}

static uint16_t q_used(unsigned qi) { return rd16(vq[qi].used + 2); }

/* Receive buffers of len bytes, as many as are free. */
static void rx_give(unsigned n, uint32_t len)
{
    struct drv_q *q = &vq[RXQ];
    for (unsigned i = 0; i < n && (uint16_t)(q->avail_idx - q->used_seen) < QSIZE; i++) {
        uint16_t head = (uint16_t)(q->avail_idx % QSIZE);
        put_desc(q->desc, head, RX_BUFS + (uint64_t)head * RX_SLOT, len, VIRTQ_DESC_F_WRITE, 0);
        q_avail(RXQ, head, false);
    }
    bar_wr(&drv, drv.notify + (uint64_t)q->noff * drv.mult, 2, RXQ);
}

/* The next packet the device sent: 1, or 0 if none.  data gets its payload. */
static int rx_take(struct hdr *h, uint8_t *data, uint32_t *used_len)
{
    struct drv_q *q = &vq[RXQ];
    if (q->used_seen == q_used(RXQ))
        return 0;
    uint64_t e = q->used + 4 + 8ull * (q->used_seen % QSIZE);
    uint32_t id = rd32(e), len = rd32(e + 4);
    q->used_seen++;
    if (used_len)
        *used_len = len;
    CHECK(id < QSIZE && len <= RX_SLOT, "used id %u len %u", id, len);
    memset(h, 0, sizeof(*h));
    if (len < HDR)
        return 1;
    const uint8_t *b = gp(RX_BUFS + (uint64_t)id * RX_SLOT, len);
    unpack(h, b);
    EQ(h->len, len - HDR);
    if (data)
        memcpy(data, b + HDR, len - HDR);
    return 1;
}

/* The next packet must be op (on local port lp, guest port gp; 0: any). */
static struct hdr expect(uint16_t op, uint32_t lp, uint32_t gp, uint8_t *data)
{
    struct hdr h;
    memset(&h, 0, sizeof(h));
    if (!rx_take(&h, data, NULL)) {
        CHECK(0, "no packet (want op %u)", op);
        return h;
    }
    CHECK(h.op == op, "op %u, want %u (ports %u -> %u, len %u)", h.op, op, h.src_port,
          h.dst_port, h.len);
    EQ(h.src_cid, HOST);
    EQ(h.dst_cid, CID);
    EQ(h.type, 1);
    if (lp)
        EQ(h.src_port, lp);
    if (gp)
        EQ(h.dst_port, gp);
    if (op != OP_RST)
        EQ(h.buf_alloc, DEV_BUF);
    return h;
}

static void no_packet(void)
{
    struct hdr h;
    if (rx_take(&h, NULL, NULL))
        CHECK(0, "unexpected packet op %u %u -> %u len %u flags %u", h.op, h.src_port,
              h.dst_port, h.len, h.flags);
}

/* Send a packet; split: header and payload in two descriptors.  It must
 * be returned at once. */
static void tx_raw(const uint8_t *b, uint32_t total, bool split)
{
    struct drv_q *q = &vq[TXQ];
    memcpy(gp(TX_BUF, total), b, total);
    uint16_t head = (uint16_t)(q->avail_idx % QSIZE), nxt = (uint16_t)((head + 1) % QSIZE);
    if (split && total > HDR) {
        put_desc(q->desc, head, TX_BUF, HDR, VIRTQ_DESC_F_NEXT, nxt);
        put_desc(q->desc, nxt, TX_BUF + HDR, total - HDR, 0, 0);
    } else {
        put_desc(q->desc, head, TX_BUF, total, 0, 0);
    }
    uint16_t before = q_used(TXQ);
    q_avail(TXQ, head, true);
    EQ((uint16_t)(q_used(TXQ) - before), 1);
}

static uint8_t txb[HDR + (64u << 10) + 16];

static void tx(uint16_t op, uint32_t src_port, uint32_t dst_port, const void *data, uint32_t len,
               uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
    struct hdr h = { .src_cid = CID, .dst_cid = HOST, .src_port = src_port, .dst_port = dst_port,
                     .len = len, .type = 1, .op = op, .flags = flags, .buf_alloc = buf_alloc,
                     .fwd_cnt = fwd_cnt };
    pack(&h, txb);
    if (len)
        memcpy(txb + HDR, data, len);
    tx_raw(txb, HDR + len, len > 100);
}

#define GBUF 65536u     /* the guest's buf_alloc in most tests */

static void ev_give(unsigned n)
{
    struct drv_q *q = &vq[EVQ];
    for (unsigned i = 0; i < n; i++) {
        uint16_t head = (uint16_t)(q->avail_idx % QSIZE);
        put_desc(q->desc, head, EV_BUFS + 16ull * head, 4, VIRTQ_DESC_F_WRITE, 0);
        q_avail(EVQ, head, true);
    }
}

/* --- the host's side ------------------------------------------------------- */

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", path);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect %s: %s", path,
          strerror(errno));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int unix_listen(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", path);
    unlink(path);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0, "listen %s",
          path);
    return fd;
}

/* What fd has to read now (after pumping), as a string; "<EOF>" at its end. */
static const char *host_read(int fd)
{
    static char buf[8192];
    size_t got = 0;
    pump();
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        /* closed (with unread data: a reset) */
        if ((n == 0 || (n < 0 && errno == ECONNRESET)) && got + 6 < sizeof(buf)) {
            memcpy(buf + got, "<EOF>", 5);
            got += 5;
        }
        break;
    }
    buf[got] = 0;
    return buf;
}

#define STR_EQ(got, want)                                                       \
    do {                                                                        \
        const char *g_ = (got), *w_ = (want);                                   \
        CHECK(!strcmp(g_, w_), "got '%s', want '%s'", g_, w_);                  \
    } while (0)

static void setup_dev(void)
{
    setup();
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=%u,uds=%s", CID, uds);
    struct err e = { "" };
    int ret = create(spec, &e);
    CHECK(ret == 0, "create: %s", e.msg);
    EQ(drv_up3(), 0x0f);
}

static void teardown(void)
{
    pci_bus_destroy(&pb);
    pump();
}

/* A host client through CONNECT/OK to guest port gport; returns its fd and
 * the local port in *lp. */
static int host_connect(uint32_t gport, uint32_t *lp)
{
    int c = unix_connect(uds);
    char line[32];
    snprintf(line, sizeof(line), "CONNECT %u\n", gport);
    EQ(send(c, line, strlen(line), 0), (ssize_t)strlen(line));
    pump();
    struct hdr h = expect(OP_REQUEST, 0, gport, NULL);
    CHECK(h.src_port >= 1u << 30, "local port %u", h.src_port);
    *lp = h.src_port;
    tx(OP_RESPONSE, gport, h.src_port, NULL, 0, 0, GBUF, 0);
    char ok[32];
    snprintf(ok, sizeof(ok), "OK %u\n", h.src_port);
    STR_EQ(host_read(c), ok);
    return c;
}

/* --- tests ------------------------------------------------------------------ */

static void test_identity(void)
{
    setup_dev();
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x1040 + 19);
    EQ(bar_rd(&drv, drv.device, 4), CID);
    EQ(bar_rd(&drv, drv.device + 4, 4), 0);
    EQ(drv.device_len, 8);
    bar_wr(&drv, COMMON(&drv, DFSELECT), 4, 0);
    EQ(bar_rd(&drv, COMMON(&drv, DF), 4) & 0xff, 0);     /* no SEQPACKET */
    bar_wr(&drv, drv.device, 4, 99);                      /* read-only */
    EQ(bar_rd(&drv, drv.device, 4), CID);
    struct stat st;
    CHECK(stat(uds, &st) == 0 && S_ISSOCK(st.st_mode), "listening socket %s", uds);
    /* a second device on the same live path is refused */
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=9,uds=%s", uds);
    struct err e = { "" };
    EQ(create(spec, &e), -EADDRINUSE);
    teardown();
    CHECK(stat(uds, &st) < 0, "socket removed at teardown");
}

static void test_host_initiated(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    /* data right after the line waits for the connection */
    int c = unix_connect(uds);
    EQ(send(c, "CONNECT 1234\nearly", 18, 0), 18);
    pump();
    struct hdr h = expect(OP_REQUEST, 0, 1234, NULL);
    uint32_t lp = h.src_port;
    no_packet();
    STR_EQ(host_read(c), "");
    tx(OP_RESPONSE, 1234, lp, NULL, 0, 0, GBUF, 0);
    char ok[32];
    snprintf(ok, sizeof(ok), "OK %u\n", lp);
    STR_EQ(host_read(c), ok);
    uint8_t data[RX_SLOT];
    h = expect(OP_RW, lp, 1234, data);
    EQ(h.len, 5);
    CHECK(!memcmp(data, "early", 5), "early data");
    /* both ways */
    EQ(send(c, "from host", 9, 0), 9);
    pump();
    h = expect(OP_RW, lp, 1234, data);
    CHECK(h.len == 9 && !memcmp(data, "from host", 9), "host -> guest");
    tx(OP_RW, 1234, lp, "from guest", 10, 0, GBUF, 14);
    STR_EQ(host_read(c), "from guest");
    pump();
    no_packet();        /* no credit update for 10 bytes */
    /* the guest asks for credit: fwd_cnt counts what reached the host */
    tx(OP_CREDIT_REQUEST, 1234, lp, NULL, 0, 0, GBUF, 14);
    pump();
    h = expect(OP_CREDIT_UPDATE, lp, 1234, NULL);
    EQ(h.fwd_cnt, 10);
    /* the guest shuts its sending side: the host reads EOF, can still send */
    tx(OP_SHUTDOWN, 1234, lp, NULL, 0, 2, GBUF, 14);
    STR_EQ(host_read(c), "<EOF>");
    EQ(send(c, "more", 4, MSG_NOSIGNAL), 4);
    pump();
    h = expect(OP_RW, lp, 1234, data);
    EQ(h.len, 4);
    /* the guest closes: RST back, the client's stream ends */
    tx(OP_SHUTDOWN, 1234, lp, NULL, 0, 3, GBUF, 18);
    pump();
    expect(OP_RST, lp, 1234, NULL);
    char b[8];
    EQ(recv(c, b, sizeof(b), MSG_DONTWAIT), 0);
    close(c);
    /* an RST from the guest ends it too (and the client sees the end) */
    c = host_connect(80, &lp);
    tx(OP_RST, 80, lp, NULL, 0, 0, 0, 0);
    STR_EQ(host_read(c), "<EOF>");
    pump();
    no_packet();
    close(c);
    /* the client gives up before the guest answers: no packet */
    c = unix_connect(uds);
    EQ(send(c, "CONNECT 81\n", 11, 0), 11);
    pump();
    h = expect(OP_REQUEST, 0, 81, NULL);
    close(c);
    pump();
    expect(OP_RST, h.src_port, 81, NULL);
    tx(OP_RESPONSE, 81, h.src_port, NULL, 0, 0, GBUF, 0);     /* too late: RST */
    pump();
    expect(OP_RST, h.src_port, 81, NULL);
    teardown();
}

static void test_refused_and_bad_lines(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    /* nobody listens in the guest: RST, the client is closed */
    int c = unix_connect(uds);
    EQ(send(c, "CONNECT 9\n", 10, 0), 10);
    pump();
    struct hdr h = expect(OP_REQUEST, 0, 9, NULL);
    tx(OP_RST, 9, h.src_port, NULL, 0, 0, 0, 0);
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    static const char *const bad[] = {
        "CONNECT abc\n", "CONNECT\n", "CONNECT -1\n", "connect 5\n", "CONNECT 99999999999\n",
        "CONNECT 5 6\n", "HELLO\n", "CONNECT 123456789012345678901234567890",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = unix_connect(uds);
        send(c, bad[i], strlen(bad[i]), MSG_NOSIGNAL);
        const char *got = host_read(c);
        CHECK(!strcmp(got, "<EOF>"), "line '%s': got '%s'", bad[i], got);
        close(c);
    }
    /* a client that closes without a line */
    c = unix_connect(uds);
    send(c, "CONN", 4, 0);
    close(c);
    pump();
    no_packet();
    /* a guest that does not answer: after 2 s the client is closed and the
     * guest gets an RST */
    c = unix_connect(uds);
    EQ(send(c, "CONNECT 11\n", 11, 0), 11);
    pump();
    h = expect(OP_REQUEST, 0, 11, NULL);
    for (unsigned i = 0; i < 30 && !rx_take(&h, NULL, NULL); i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        poll(&p, 1, 100);
        evloop_dispatch(loop);
    }
    EQ(h.op, OP_RST);
    EQ(h.dst_port, 11);
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    /* CRLF is fine */
    c = unix_connect(uds);
    EQ(send(c, "CONNECT 10\r\n", 12, 0), 12);
    pump();
    expect(OP_REQUEST, 0, 10, NULL);
    close(c);
    teardown();
}

static void test_guest_initiated(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    char path[160];
    snprintf(path, sizeof(path), "%s_5000", uds);
    int l = unix_listen(path);
    tx(OP_REQUEST, 40000, 5000, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RESPONSE, 5000, 40000, NULL);
    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    CHECK(c >= 0, "accept: %s", strerror(errno));
    tx(OP_RW, 40000, 5000, "ping", 4, 0, GBUF, 0);
    STR_EQ(host_read(c), "ping");
    EQ(send(c, "pong", 4, 0), 4);
    pump();
    uint8_t data[RX_SLOT];
    struct hdr h = expect(OP_RW, 5000, 40000, data);
    CHECK(h.len == 4 && !memcmp(data, "pong", 4), "pong");
    /* a second REQUEST for the same pair resets it */
    tx(OP_REQUEST, 40000, 5000, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RST, 5000, 40000, NULL);
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    /* the host half-closes, then closes */
    tx(OP_REQUEST, 40001, 5000, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RESPONSE, 5000, 40001, NULL);
    c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    EQ(send(c, "bye", 3, 0), 3);
    shutdown(c, SHUT_WR);
    pump();
    expect(OP_RW, 5000, 40001, NULL);
    h = expect(OP_SHUTDOWN, 5000, 40001, NULL);
    EQ(h.flags, 2);
    tx(OP_RW, 40001, 5000, "still", 5, 0, GBUF, 3);
    STR_EQ(host_read(c), "still");
    close(c);
    pump();
    h = expect(OP_SHUTDOWN, 5000, 40001, NULL);
    EQ(h.flags, 3);
    tx(OP_RW, 40001, 5000, "late", 4, 0, GBUF, 3);     /* in flight: ignored */
    tx(OP_RST, 40001, 5000, NULL, 0, 0, GBUF, 3);
    pump();
    no_packet();
    /* nobody listens on the port: RST */
    tx(OP_REQUEST, 40002, 5001, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RST, 5001, 40002, NULL);
    /* packets for connections that do not exist: RST (but not for an RST) */
    tx(OP_RW, 40003, 5000, "x", 1, 0, GBUF, 0);
    tx(OP_RST, 40004, 5000, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RST, 5000, 40003, NULL);
    no_packet();
    close(l);
    unlink(path);
    teardown();
}

static void test_credit(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    uint32_t lp;
    int c = unix_connect(uds);
    EQ(send(c, "CONNECT 77\n", 11, 0), 11);
    pump();
    struct hdr h = expect(OP_REQUEST, 0, 77, NULL);
    lp = h.src_port;
    tx(OP_RESPONSE, 77, lp, NULL, 0, 0, 100, 0);    /* the guest has 100 bytes of room */
    char ok[32];
    snprintf(ok, sizeof(ok), "OK %u\n", lp);
    STR_EQ(host_read(c), ok);
    char big[1000];
    memset(big, 'a', sizeof(big));
    EQ(send(c, big, sizeof(big), 0), 1000);
    pump();
    h = expect(OP_RW, lp, 77, NULL);
    EQ(h.len, 100);
    expect(OP_CREDIT_REQUEST, lp, 77, NULL);
    no_packet();
    tx(OP_CREDIT_UPDATE, 77, lp, NULL, 0, 0, 100, 60);
    pump();
    h = expect(OP_RW, lp, 77, NULL);
    EQ(h.len, 60);
    expect(OP_CREDIT_REQUEST, lp, 77, NULL);
    tx(OP_CREDIT_UPDATE, 77, lp, NULL, 0, 0, 2000, 160);
    pump();
    h = expect(OP_RW, lp, 77, NULL);
    EQ(h.len, 840);
    no_packet();
    /* guest -> host: the device's credit is DEV_BUF; a guest that sends more
     * than that while the host does not read gets an RST */
    int sz = 4096;
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    static uint8_t chunk[60000];
    memset(chunk, 'g', sizeof(chunk));
    uint32_t sent = 0;
    bool reset = false;
    for (unsigned i = 0; i < 40 && !reset; i++) {
        tx(OP_RW, 77, lp, chunk, sizeof(chunk), 0, 2000, 1000);
        sent += sizeof(chunk);
        pump();
        while (rx_take(&h, NULL, NULL))
            reset |= h.op == OP_RST;
    }
    CHECK(reset, "no RST after %u bytes beyond the credit", sent);
    CHECK(sent > DEV_BUF, "RST after only %u bytes", sent);
    close(c);
    teardown();
}

static void test_hostile(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    uint8_t b[HDR + 64];
    memset(b, 0, sizeof(b));
    tx_raw(b, 10, false);               /* a short header: dropped */
    pump();
    no_packet();
    struct hdr h = { .src_cid = CID, .dst_cid = HOST, .src_port = 1, .dst_port = 2, .type = 1,
                     .op = OP_RW, .len = 1000 };
    pack(&h, b);
    tx_raw(b, HDR + 10, false);         /* a length beyond the chain */
    pump();
    expect(OP_RST, 2, 1, NULL);
    h.len = 0;
    h.src_cid = 3;                      /* another guest's CID */
    pack(&h, b);
    tx_raw(b, HDR, false);
    h.src_cid = CID;
    h.dst_cid = 9;                      /* not the host */
    pack(&h, b);
    tx_raw(b, HDR, false);
    h.dst_cid = HOST;
    h.type = 2;                         /* SEQPACKET */
    pack(&h, b);
    tx_raw(b, HDR, false);
    h.type = 1;
    h.op = 99;
    pack(&h, b);
    tx_raw(b, HDR, false);
    h.op = 0;
    pack(&h, b);
    tx_raw(b, HDR, false);
    h.op = OP_REQUEST;
    h.len = 5;                          /* a payload on a control packet */
    pack(&h, b);
    tx_raw(b, HDR + 5, false);
    pump();
    for (unsigned i = 0; i < 6; i++)
        expect(OP_RST, 2, 1, NULL);
    no_packet();
    /* an open connection named by a bad packet is reset */
    uint32_t lp;
    int c = host_connect(55, &lp);
    tx(99, 55, lp, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RST, lp, 55, NULL);
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    /* data before the RESPONSE, RESPONSE twice */
    c = unix_connect(uds);
    EQ(send(c, "CONNECT 56\n", 11, 0), 11);
    pump();
    h = expect(OP_REQUEST, 0, 56, NULL);
    tx(OP_RW, 56, h.src_port, "x", 1, 0, GBUF, 0);
    pump();
    expect(OP_RST, h.src_port, 56, NULL);
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    c = host_connect(57, &lp);
    tx(OP_RESPONSE, 57, lp, NULL, 0, 0, GBUF, 0);
    pump();
    expect(OP_RST, lp, 57, NULL);
    close(c);
    teardown();
    /* a receive buffer too small for a header comes back empty */
    setup_dev();
    rx_give(1, 20);
    c = unix_connect(uds);
    EQ(send(c, "CONNECT 59\n", 11, 0), 11);
    pump();
    uint32_t len = 99;
    CHECK(rx_take(&h, NULL, &len) == 1 && len == 0, "small buffer: used len %u", len);
    rx_give(1, RX_SLOT);
    pump();
    expect(OP_REQUEST, 0, 59, NULL);    /* the REQUEST waited for a real buffer */
    close(c);
    /* the device is still fine */
    EQ(status(&drv), 0x0f);
    teardown();
}

static void test_bounds(void)
{
    setup_dev();
    /* no receive buffers: RSTs pile up to a bound, nothing breaks */
    for (unsigned i = 0; i < 200; i++)
        tx(OP_REQUEST, 1000 + i, 7000, NULL, 0, 0, GBUF, 0);
    rx_give(QSIZE, RX_SLOT);
    pump();
    unsigned n = 0;
    struct hdr h;
    while (rx_take(&h, NULL, NULL)) {
        n++;
        EQ(h.op, OP_RST);
    }
    rx_give(QSIZE, RX_SLOT);
    pump();
    while (rx_take(&h, NULL, NULL))
        n++;
    CHECK(n >= 32 && n <= 64, "%u RSTs kept", n);
    /* host clients beyond the bound are closed */
    int fds[70];
    for (unsigned i = 0; i < 70; i++) {
        fds[i] = unix_connect(uds);
        pump();
    }
    unsigned closed = 0;
    for (unsigned i = 0; i < 70; i++)
        closed += !strcmp(host_read(fds[i]), "<EOF>");
    EQ(closed, 6);
    for (unsigned i = 0; i < 70; i++)
        close(fds[i]);
    pump();
    /* and slots come back */
    int c = unix_connect(uds);
    EQ(send(c, "CONNECT 3\n", 10, 0), 10);
    pump();
    expect(OP_REQUEST, 0, 3, NULL);
    close(c);
    teardown();
}

static void test_reset(void)
{
    setup_dev();
    rx_give(QSIZE, RX_SLOT);
    uint32_t lp;
    int c = host_connect(60, &lp);
    bar_wr(&drv, COMMON(&drv, STATUS), 1, 0);       /* the driver resets the device */
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    EQ(drv_up3(), 0x0f);
    rx_give(QSIZE, RX_SLOT);
    c = host_connect(61, &lp);
    close(c);
    teardown();
}

static int save(struct snap_file *f, struct err *e)
{
    struct snap_writer w;
    snapw_init(&w);
    w.e = e;
    pci_bus_quiesce(&pb);
    pci_bus_save(&pb, &w);
    int ret = snap_test_finish(&w, f, e);
    snapw_free(&w);
    return ret;
}

static void test_snapshot(void)
{
    setup_dev();
    rx_give(8, RX_SLOT);
    ev_give(2);
    uint32_t lp;
    int c = host_connect(62, &lp);
    struct snap_file f;
    struct err e = { "" };
    EQ(save(&f, &e), 0);
    uint8_t *ram = malloc(RAM_SIZE);
    memcpy(ram, gp(RAM, RAM_SIZE), RAM_SIZE);
    teardown();
    STR_EQ(host_read(c), "<EOF>");
    close(c);
    /* another CID: refused */
    setup();
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=8,uds=%s", uds);
    EQ(create(spec, &e), 0);
    EQ(pci_bus_load(&pb, &f, &e), -EINVAL);
    CHECK(strstr(e.msg, "CID") != NULL, "message: %s", e.msg);
    teardown();
    /* the same: the guest's queues go on, and it hears of the reset */
    setup();
    memcpy(gp(RAM, RAM_SIZE), ram, RAM_SIZE);     /* guest RAM as at the save */
    free(ram);
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=%u,uds=%s", CID, uds);
    EQ(create(spec, &e), 0);
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    EQ(q_used(EVQ), 0);
    pump();
    EQ(q_used(EVQ), 1);
    uint64_t ent = vq[EVQ].used + 4;
    EQ(rd32(ent + 4), 4);
    EQ(rd32(EV_BUFS + 16ull * rd32(ent)), 0);       /* TRANSPORT_RESET */
    /* new connections work on the restored queues */
    c = host_connect(63, &lp);
    close(c);
    snap_file_free(&f);
    teardown();
}

static void test_bad_options(void)
{
    setup();
    struct err e = { "" };
    static const char *const bad[] = {
        "virtio-vsock", "virtio-vsock,cid=3", "virtio-vsock,uds=/tmp/x",
        "virtio-vsock,cid=2,uds=/tmp/x", "virtio-vsock,cid=abc,uds=/tmp/x",
        "virtio-vsock,cid=4294967295,uds=/tmp/x", "virtio-vsock,cid=3,uds=",
        "virtio-vsock,cid=3,cid=4,uds=/tmp/x", "virtio-vsock,cid=3,uds=/tmp/x,port=1",
        "virtio-vsock,cid=3,uds=/tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "virtio-vsock,cid=3,uds=/nonexistent-dir/v.sock",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.msg[0] = 0;
        CHECK(create(bad[i], &e) < 0 && strstr(e.msg, "virtio-vsock"), "%s: '%s'", bad[i],
              e.msg);
    }
    /* a file in the way is not replaced; a stale socket is */
    char path[160];
    snprintf(path, sizeof(path), "%s.file", uds);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=3,uds=%s", path);
    EQ(create(spec, &e), -EEXIST);
    unlink(path);
    int l = unix_listen(uds);
    close(l);
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=3,uds=%s", uds);
    EQ(create(spec, &e), 0);
    teardown();
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    loop = evloop_new(NULL);
    snprintf(dir, sizeof(dir), "/tmp/petrel-vsock-XXXXXX");
    if (!loop || !mkdtemp(dir))
        return 1;
    snprintf(uds, sizeof(uds), "%s/v.sock", dir);
    test_identity();
    test_host_initiated();
    test_refused_and_bad_lines();
    test_guest_initiated();
    test_credit();
    test_hostile();
    test_bounds();
    test_reset();
    test_snapshot();
    test_bad_options();
    unlink(uds);
    rmdir(dir);
    snap_test_cleanup();
    evloop_free(loop);
    gmem_free(&mem);
    return unit_done("test_virtio_vsock");
}
