/* Unit tests for virtio-console, driven the way the guest's driver does
 * (tests/unit/virtio_driver.h), with a real unix socket client and the real
 * event loop: identity, features and config space (emergency write), guest
 * output to a connected client, client input into guest receive buffers,
 * input that waits for buffers (never lost, the socket is not read meanwhile
 * and the event loop does not spin), a client that stops reading (the guest
 * never waits, the overflow is dropped), disconnects and reconnects, a second
 * client queued behind the first, device reset and bus mastering with
 * buffered input, hostile chains, the MULTIPORT control protocol (input
 * waits for the driver's PORT_OPEN; malformed control messages), the file
 * backend, and every bad option. */
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

#include "unit.h"

#include "virtio_driver.h"

#define QSIZE 16
#define RXQ 0
#define TXQ 1
#define CRXQ 2
#define CTXQ 3
#define F_MULTIPORT 1
#define F_EMERG_WRITE 2
#define CTRL_RINGS (RAM + 0x8000)     /* control queues: 2 x 0x4000 of rings */
#define CTRL_BUFS (RAM + 0x300000)    /* QSIZE x 64 bytes per control queue */
enum { DEVICE_READY = 0, PORT_ADD = 1, PORT_READY = 3, CONSOLE_PORT = 4, PORT_OPEN = 6 };
#define TX_BUFS (RAM + 0x100000)      /* QSIZE x 4 KiB */
#define RX_BUFS (RAM + 0x200000)      /* QSIZE x 4 KiB */
#define SLOT 0x1000u

static struct evloop *loop;
static char dir[64], sock_path[128];
static uint16_t used_seen[2];

static struct virtio_host host(void)
{
    return (struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop };
}

static int create(const char *spec, struct err *e)
{
    struct virtio_host h = host();
    return virtio_pci_create(&h, spec, e);
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

/* Whether the event loop has something ready right now (a spinning loop). */
static bool loop_ready(void)
{
    struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

static int client_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", path);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect %s: %s", path,
          strerror(errno));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Everything the client can read within ~100 ms of quiet, up to max. */
static size_t client_read(int fd, uint8_t *buf, size_t max)
{
    size_t got = 0;
    while (got < max) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            break;
        ssize_t n = recv(fd, buf + got, max - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static bool client_read_is(int fd, const char *want)
{
    char buf[256] = "";
    size_t n = client_read(fd, (uint8_t *)buf, sizeof(buf) - 1);
    buf[n] = 0;
    if (strcmp(buf, want))
        printf("client read '%s', want '%s'\n", buf, want);
    return !strcmp(buf, want);
}

/* --- the guest's side -------------------------------------------------------- */

static void drv_up(struct drv *d, unsigned slot)
{
    drv_probe(d, slot, RAM);
    EQ(drv_init(d, STD_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX), 2, QSIZE), 0x0f);
    used_seen[0] = used_seen[1] = 0;
}

/* Transmit one chain of `len` bytes (one descriptor, or two if split > 0). */
static void guest_tx(struct drv *d, const void *data, uint32_t len, uint32_t split)
{
    uint16_t head = (uint16_t)(d->avail_idx[TXQ] % QSIZE);
    uint64_t b = TX_BUFS + (uint64_t)head * SLOT;
    CHECK(len <= SLOT, "tx of %u bytes", len);
    memcpy(gp(b, len), data, len);
    if (split && split < len) {
        /* the second part from the spare half of the next slot */
        uint16_t nxt = (uint16_t)((head + 8) % QSIZE);
        memcpy(gp(TX_BUFS + (uint64_t)nxt * SLOT, len - split), (const uint8_t *)data + split,
               len - split);
        put_desc(d->desc[TXQ], head, b, split, VIRTQ_DESC_F_NEXT, nxt);
        put_desc(d->desc[TXQ], nxt, TX_BUFS + (uint64_t)nxt * SLOT, len - split, 0, 0);
    } else {
        put_desc(d->desc[TXQ], head, b, len, 0, 0);
    }
    drv_avail(d, TXQ, head);
    drv_kick(d, TXQ);
}

/* Offer up to n receive buffers of len bytes each (as many as are free:
 * given and not yet taken back by guest_rx_take). */
static void guest_rx_give(struct drv *d, unsigned n, uint32_t len)
{
    unsigned busy = (uint16_t)(d->avail_idx[RXQ] - used_seen[RXQ]);
    if (n > QSIZE - busy)
        n = QSIZE - busy;
    for (unsigned i = 0; i < n; i++) {
        uint16_t head = (uint16_t)(d->avail_idx[RXQ] % QSIZE);
        put_desc(d->desc[RXQ], head, RX_BUFS + (uint64_t)head * SLOT, len, VIRTQ_DESC_F_WRITE,
                 0);
        drv_avail(d, RXQ, head);
    }
    drv_kick(d, RXQ);
}

/* Collect what the device put into receive buffers since the last call. */
static size_t guest_rx_take(struct drv *d, uint8_t *out, size_t max)
{
    size_t got = 0;
    while (used_seen[RXQ] != used_idx(d, RXQ)) {
        uint64_t e = d->used[RXQ] + 4 + 8ull * (used_seen[RXQ] % QSIZE);
        uint32_t id = rd32(e), len = rd32(e + 4);
        CHECK(id < QSIZE && len <= SLOT, "used entry id %u len %u", id, len);
        if (id < QSIZE && len <= SLOT && got + len <= max) {
            memcpy(out + got, gp(RX_BUFS + (uint64_t)id * SLOT, len), len);
            got += len;
        }
        used_seen[RXQ]++;
    }
    return got;
}

static bool guest_rx_is(struct drv *d, const char *want)
{
    char buf[256] = "";
    size_t n = guest_rx_take(d, (uint8_t *)buf, sizeof(buf) - 1);
    buf[n] = 0;
    if (strcmp(buf, want))
        printf("guest received '%s', want '%s'\n", buf, want);
    return !strcmp(buf, want);
}

static void setup_socket_device(struct drv *d)
{
    setup();
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s", sock_path);
    struct err e = { "" };
    EQ(create(spec, &e), 0);
    CHECK(!e.msg[0], "error: %s", e.msg);
    drv_up(d, 1);
}

static void teardown(void)
{
    pci_bus_destroy(&pb);
    pump();
}

/* --- tests ------------------------------------------------------------------ */

static void test_identity_and_config(void)
{
    struct drv d;
    setup_socket_device(&d);
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x1043);
    EQ(cfg_rd(1, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_CONSOLE);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4) >> 8, 0x078000);
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, DF), 4),
       (1u << 28) | (1u << 29) | (1u << F_MULTIPORT) | (1u << F_EMERG_WRITE));
    EQ(bar_rd(&d, COMMON(&d, NUMQ), 2), 4);
    EQ(d.device_len, 12);
    EQ(bar_rd(&d, d.device + 0, 4), 0);                /* cols, rows */
    EQ(bar_rd(&d, d.device + 4, 4), 1);                /* max_nr_ports */
    EQ(bar_rd(&d, d.device + 4, 1), 1);
    EQ(bar_rd(&d, d.device + 8, 4), 0);                /* emerg_wr */
    EQ(bar_rd(&d, d.device + 12, 4), 0);               /* past the end */
    bar_wr(&d, d.device + 0, 2, 0xffff);               /* read-only: ignored */
    EQ(bar_rd(&d, d.device + 0, 4), 0);
    /* the driver may take EMERG_WRITE */
    EQ(drv_init(&d, STD_FEATURES | (1ull << F_EMERG_WRITE), 2, QSIZE), 0x0f);
    /* F_SIZE is not offered */
    EQ(drv_init(&d, STD_FEATURES | 1, 2, QSIZE) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* emergency write: a byte per write, before or after negotiation */
    int c = client_connect(sock_path);
    pump();
    bar_wr(&d, d.device + 8, 4, 'E');
    bar_wr(&d, d.device + 8, 1, 'W');
    CHECK(client_read_is(c, "EW"), "emergency write");
    close(c);
    teardown();
}

static void test_tx_and_rx(void)
{
    struct drv d;
    setup_socket_device(&d);
    struct stat st;
    CHECK(lstat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode), "no socket at %s", sock_path);
    int c = client_connect(sock_path);
    pump();
    /* guest -> client, one and two descriptors */
    guest_tx(&d, "hello-from-guest\n", 17, 0);
    EQ(used_idx(&d, TXQ), 1);
    EQ(rd32(d.used[TXQ] + 8), 0);                      /* nothing written */
    CHECK(line(&d), "no interrupt for the transmit completion");
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    guest_tx(&d, "hello world", 11, 6);
    EQ(used_idx(&d, TXQ), 2);
    CHECK(client_read_is(c, "hello-from-guest\nhello world"), "tx data");
    /* client -> guest: a buffer is there first */
    guest_rx_give(&d, 1, 64);
    EQ(send(c, "line one\n", 9, 0), 9);
    pump();
    EQ(used_idx(&d, RXQ), 1);
    CHECK(line(&d), "no interrupt for received data");
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    CHECK(guest_rx_is(&d, "line one\n"), "rx data");
    /* input larger than the buffers: split over several, in order */
    EQ(send(c, "abcdefghij", 10, 0), 10);
    pump();
    EQ(used_idx(&d, RXQ), 1);                          /* no buffers: nothing yet */
    guest_rx_give(&d, 2, 4);
    CHECK(guest_rx_is(&d, "abcdefgh"), "rx split");
    guest_rx_give(&d, 1, 4);
    CHECK(guest_rx_is(&d, "ij"), "rx rest");
    CHECK(!loop_ready(), "event loop busy while idle");
    close(c);
    teardown();
    CHECK(access(sock_path, F_OK) < 0 && errno == ENOENT, "socket left behind at teardown");
}

/* With no receive buffers the device stops reading the socket: the client
 * feels backpressure, the loop does not spin, and every byte arrives later. */
static void test_rx_backpressure_no_loss(void)
{
    struct drv d;
    setup_socket_device(&d);
    int c = client_connect(sock_path);
    pump();
    enum { TOTAL = 1u << 20 };
    uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
    for (unsigned i = 0; i < TOTAL; i++)
        src[i] = (uint8_t)(i * 131 + i / 4099);
    size_t sent = 0, got = 0;
    /* phase 1: no buffers at all */
    for (unsigned round = 0; round < 20; round++) {
        ssize_t n = send(c, src + sent, TOTAL - sent, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        pump();
    }
    CHECK(sent < TOTAL, "the client could send all %u bytes with no guest buffers", TOTAL);
    EQ(used_idx(&d, RXQ), 0);
    CHECK(!loop_ready(), "event loop spins while the guest has no buffers");
    /* phase 2: the guest consumes, the client keeps sending */
    for (unsigned round = 0; round < 100000 && got < TOTAL; round++) {
        if (sent < TOTAL) {
            ssize_t n = send(c, src + sent, TOTAL - sent, MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
        }
        guest_rx_give(&d, QSIZE / 2, SLOT);
        got += guest_rx_take(&d, dst + got, TOTAL - got);
        pump();
        got += guest_rx_take(&d, dst + got, TOTAL - got);
    }
    EQ(sent, TOTAL);
    EQ(got, TOTAL);
    CHECK(!memcmp(src, dst, TOTAL), "received bytes differ from sent ones");
    CHECK(status(&d) == 0x0f, "status 0x%x", status(&d));
    free(src);
    free(dst);
    close(c);
    teardown();
}

/* A client that does not read: the guest's transmits still complete at
 * once, the overflow is dropped, and what arrives is an in-order prefix. */
static void test_slow_client(void)
{
    struct drv d;
    setup_socket_device(&d);
    int c = client_connect(sock_path);
    pump();
    enum { CHAINS = 1024, TOTAL = CHAINS * 4096 };
    uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL + 4096);
    for (unsigned i = 0; i < TOTAL; i++)
        src[i] = (uint8_t)(i * 7 + i / 4093);
    for (unsigned i = 0; i < CHAINS; i++) {
        guest_tx(&d, src + i * 4096, 4096, 0);
        EQ(used_idx(&d, TXQ), (uint16_t)(i + 1));
    }
    size_t got = 0;
    for (;;) {
        size_t n = client_read(c, dst + got, TOTAL - got);
        got += n;
        pump();
        if (!n)
            break;
    }
    CHECK(got > 65536 && got < TOTAL, "client got %zu of %u bytes", got, TOTAL);
    CHECK(!memcmp(src, dst, got), "client data is not a prefix of the guest's output");
    /* later output goes through again */
    guest_tx(&d, "tail", 4, 0);
    pump();
    size_t n = client_read(c, dst, 4096);
    CHECK(n == 4 && !memcmp(dst, "tail", 4), "after the overflow: %zu bytes", n);
    CHECK(!loop_ready(), "event loop busy after draining");
    free(src);
    free(dst);
    close(c);
    teardown();
}

static void test_disconnect_reconnect(void)
{
    struct drv d;
    setup_socket_device(&d);
    /* no client: output is dropped, the guest goes on */
    guest_tx(&d, "lost", 4, 0);
    EQ(used_idx(&d, TXQ), 1);
    /* a client sends and leaves before the guest has buffers */
    int a = client_connect(sock_path);
    pump();
    EQ(send(a, "bye\n", 4, 0), 4);
    close(a);
    pump();
    CHECK(!loop_ready(), "event loop busy after the client left");
    guest_tx(&d, "nobody", 6, 0);
    EQ(used_idx(&d, TXQ), 2);
    guest_rx_give(&d, 1, 64);
    CHECK(guest_rx_is(&d, "bye\n"), "input of a departed client");
    /* a new client gets new output only */
    int b = client_connect(sock_path);
    pump();
    guest_tx(&d, "again", 5, 0);
    CHECK(client_read_is(b, "again"), "reconnected client");
    guest_rx_give(&d, 1, 64);
    EQ(send(b, "hi", 2, 0), 2);
    pump();
    CHECK(guest_rx_is(&d, "hi"), "input of the reconnected client");
    /* a second client waits until the first goes */
    int w = client_connect(sock_path);
    pump();
    guest_tx(&d, "to-b", 4, 0);
    CHECK(client_read_is(b, "to-b"), "first client");
    CHECK(client_read_is(w, ""), "waiting client got output");
    EQ(send(w, "queued", 6, 0), 6);
    /* half close: b stops sending but still reads */
    shutdown(b, SHUT_WR);
    pump();
    guest_tx(&d, "still", 5, 0);
    CHECK(client_read_is(b, "still"), "half-closed client");
    close(b);
    pump();
    guest_tx(&d, "to-w", 4, 0);
    CHECK(client_read_is(w, "to-w"), "second client after the first left");
    guest_rx_give(&d, 1, 64);
    CHECK(guest_rx_is(&d, "queued"), "input the waiting client sent early");
    close(w);
    teardown();
}

/* Buffered input survives a device reset and waits while bus mastering is
 * off; hostile chains are answered without harm. */
static void test_reset_and_hostile(void)
{
    struct drv d;
    setup_socket_device(&d);
    int c = client_connect(sock_path);
    pump();
    EQ(send(c, "keep", 4, 0), 4);
    pump();
    drv_up(&d, 1);                                     /* reset + re-init */
    guest_rx_give(&d, 1, 64);
    CHECK(guest_rx_is(&d, "keep"), "input across a reset");
    /* bus mastering off: no DMA even when input arrives */
    guest_rx_give(&d, 1, 64);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(send(c, "later", 5, 0), 5);
    pump();
    CHECK(guest_rx_is(&d, ""), "DMA with bus mastering off");
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    drv_kick(&d, RXQ);
    CHECK(guest_rx_is(&d, "later"), "input after bus mastering is back");
    /* a receive chain with no writable buffer: returned empty */
    uint16_t head = (uint16_t)(d.avail_idx[RXQ] % QSIZE);
    put_desc(d.desc[RXQ], head, RX_BUFS, 64, 0, 0);
    drv_avail(&d, RXQ, head);
    drv_kick(&d, RXQ);
    EQ(send(c, "x", 1, 0), 1);
    pump();
    EQ(used_idx(&d, RXQ), used_seen[RXQ] + 1);
    EQ(rd32(d.used[RXQ] + 4 + 8 * (used_seen[RXQ] % QSIZE) + 4), 0);
    used_seen[RXQ]++;
    guest_rx_give(&d, 1, 64);
    CHECK(guest_rx_is(&d, "x"), "input after the bad buffer");
    /* a transmit chain with a writable part: the readable bytes go out */
    head = (uint16_t)(d.avail_idx[TXQ] % QSIZE);
    memcpy(gp(TX_BUFS, 2), "ok", 2);
    put_desc(d.desc[TXQ], head, TX_BUFS, 2, VIRTQ_DESC_F_NEXT, (uint16_t)((head + 1) % QSIZE));
    put_desc(d.desc[TXQ], (head + 1) % QSIZE, TX_BUFS + SLOT, 16, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, TXQ, head);
    drv_kick(&d, TXQ);
    CHECK(client_read_is(c, "ok"), "tx with a writable part");
    EQ(rd32(d.used[TXQ] + 8), 0);
    /* a malformed chain (a loop): NEEDS_RESET, the VMM goes on */
    head = (uint16_t)(d.avail_idx[TXQ] % QSIZE);
    put_desc(d.desc[TXQ], head, TX_BUFS, 4, VIRTQ_DESC_F_NEXT, head);
    drv_avail(&d, TXQ, head);
    drv_kick(&d, TXQ);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
    EQ(send(c, "y", 1, 0), 1);
    pump();
    drv_up(&d, 1);
    guest_rx_give(&d, 1, 64);
    CHECK(guest_rx_is(&d, "y"), "input after NEEDS_RESET and a reset");
    close(c);
    teardown();
}

/* --- MULTIPORT: the control queues, driven by hand (the shared driver
 * helpers know two queues) --------------------------------------------------- */

struct ctlq {
    uint64_t desc, avail, used, bufs;
    uint16_t avail_idx, used_seen, noff;
};

static struct ctlq cq[2];   /* [0] control receiveq (2), [1] control transmitq (3) */

/* The spec's init sequence with MULTIPORT and all four queues. */
static uint8_t drv_init_mp(struct drv *d)
{
    bar_wr(d, COMMON(d, STATUS), 1, 0);
    bar_wr(d, COMMON(d, STATUS), 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t f = STD_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << F_MULTIPORT);
    bar_wr(d, COMMON(d, GFSELECT), 4, 0);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)f);
    bar_wr(d, COMMON(d, GFSELECT), 4, 1);
    bar_wr(d, COMMON(d, GF), 4, (uint32_t)(f >> 32));
    bar_wr(d, COMMON(d, STATUS), 1, 0x0b);
    EQ(bar_rd(d, d->device + 4, 4), 1);                /* max_nr_ports */
    for (unsigned q = 0; q < 4; q++) {
        uint64_t desc, avail, used;
        uint16_t *noff;
        if (q < 2) {
            memset(gp(d->desc[q], 0x4000), 0, 0x4000);
            d->avail_idx[q] = 0;
            d->qsize[q] = QSIZE;
            desc = d->desc[q], avail = d->avail[q], used = d->used[q];
            noff = &d->noff[q];
        } else {
            struct ctlq *c = &cq[q - 2];
            memset(c, 0, sizeof(*c));
            c->desc = CTRL_RINGS + 0x4000ull * (q - 2);
            c->avail = c->desc + 0x1000;
            c->used = c->desc + 0x2000;
            c->bufs = CTRL_BUFS + 0x1000ull * (q - 2);
            memset(gp(c->desc, 0x4000), 0, 0x4000);
            desc = c->desc, avail = c->avail, used = c->used;
            noff = &c->noff;
        }
        bar_wr(d, COMMON(d, Q_SELECT), 2, q);
        bar_wr(d, COMMON(d, Q_SIZE), 2, QSIZE);
        *noff = (uint16_t)bar_rd(d, COMMON(d, Q_NOFF), 2);
        bar_wr(d, COMMON(d, Q_DESCLO), 4, (uint32_t)desc);
        bar_wr(d, COMMON(d, Q_DESCHI), 4, desc >> 32);
        bar_wr(d, COMMON(d, Q_AVAILLO), 4, (uint32_t)avail);
        bar_wr(d, COMMON(d, Q_AVAILHI), 4, avail >> 32);
        bar_wr(d, COMMON(d, Q_USEDLO), 4, (uint32_t)used);
        bar_wr(d, COMMON(d, Q_USEDHI), 4, used >> 32);
        bar_wr(d, COMMON(d, Q_ENABLE), 2, 1);
    }
    bar_wr(d, COMMON(d, STATUS), 1, 0x0f);
    used_seen[0] = used_seen[1] = 0;
    return status(d);
}

static void ctl_kick(struct drv *d, unsigned q)
{
    bar_wr(d, d->notify + (uint64_t)cq[q - 2].noff * d->mult, 2, q);
}

static void ctl_avail(struct drv *d, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
    struct ctlq *c = &cq[q - 2];
    uint16_t head = (uint16_t)(c->avail_idx % QSIZE);
    put_desc(c->desc, head, addr, len, flags, 0);
    wr16(c->avail + 4 + 2ull * head, head);
    c->avail_idx++;
    wr16(c->avail + 2, c->avail_idx);
    ctl_kick(d, q);
}

/* Control receive buffers of len bytes. */
static void ctl_give(struct drv *d, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t slot = (uint16_t)(cq[0].avail_idx % QSIZE);
        ctl_avail(d, CRXQ, cq[0].bufs + 64ull * slot, len, VIRTQ_DESC_F_WRITE);
    }
}

/* A control message from the driver, len bytes of it; it must complete. */
static void ctl_send(struct drv *d, uint32_t id, uint16_t event, uint16_t value, uint32_t len)
{
    uint16_t slot = (uint16_t)(cq[1].avail_idx % QSIZE);
    uint64_t b = cq[1].bufs + 64ull * slot;
    uint8_t m[8];
    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    memcpy(gp(b, 8), m, 8);
    ctl_avail(d, CTXQ, b, len, 0);
    EQ(rd16(cq[1].used + 2), cq[1].avail_idx);
    EQ(rd32(cq[1].used + 4 + 8ull * slot), slot);     /* the chain that was sent */
}

/* The next control message the device sent: 1 if there was one. */
static int ctl_recv(uint32_t *id, uint16_t *event, uint16_t *value)
{
    struct ctlq *c = &cq[0];
    if (c->used_seen == rd16(c->used + 2))
        return 0;
    uint64_t e = c->used + 4 + 8ull * (c->used_seen % QSIZE);
    uint32_t slot = rd32(e), len = rd32(e + 4);
    c->used_seen++;
    EQ(len, 8);
    if (slot >= QSIZE || len != 8)
        return -1;
    const uint8_t *m = gp(c->bufs + 64ull * slot, 8);
    memcpy(id, m, 4);
    memcpy(event, m + 4, 2);
    memcpy(value, m + 6, 2);
    return 1;
}

static void expect_ctl(uint16_t want_event, uint16_t want_value)
{
    uint32_t id = ~0u;
    uint16_t event = 0xffff, value = 0xffff;
    EQ(ctl_recv(&id, &event, &value), 1);
    EQ(id, 0);
    EQ(event, want_event);
    EQ(value, want_value);
}

/* Linux's sequence: DEVICE_READY -> PORT_ADD, PORT_READY -> CONSOLE_PORT,
 * then PORT_OPEN; input the client sent earlier waits for PORT_OPEN. */
static void test_multiport(void)
{
    struct drv d;
    setup_socket_device(&d);
    int c = client_connect(sock_path);
    pump();
    EQ(send(c, "typed-during-boot\n", 18, 0), 18);
    pump();
    EQ(drv_init_mp(&d), 0x0f);
    ctl_give(&d, 2, 64);                               /* exactly the two replies */
    uint32_t id;
    uint16_t ev, val;
    EQ(ctl_recv(&id, &ev, &val), 0);                   /* nothing before DEVICE_READY */
    ctl_send(&d, 0xffffffffu, DEVICE_READY, 1, 8);
    expect_ctl(PORT_ADD, 1);
    CHECK(line(&d), "no interrupt for the control message");
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    /* the driver adds port 0 and fills its receiveq: no input yet */
    guest_rx_give(&d, 4, 64);
    pump();
    EQ(used_idx(&d, RXQ), 0);
    ctl_send(&d, 0, PORT_READY, 1, 8);
    expect_ctl(CONSOLE_PORT, 1);
    EQ(used_idx(&d, RXQ), 0);
    ctl_send(&d, 0, PORT_OPEN, 1, 8);
    CHECK(guest_rx_is(&d, "typed-during-boot\n"), "input held until PORT_OPEN");
    /* transmit works as ever */
    guest_tx(&d, "out", 3, 0);
    CHECK(client_read_is(c, "out"), "tx with MULTIPORT");
    /* the driver closes the port: input waits again */
    ctl_send(&d, 0, PORT_OPEN, 0, 8);
    EQ(send(c, "held", 4, 0), 4);
    pump();
    CHECK(guest_rx_is(&d, ""), "input while the port is closed");
    ctl_send(&d, 0, PORT_OPEN, 1, 8);
    CHECK(guest_rx_is(&d, "held"), "input after re-open");

    /* hostile control traffic: ignored, nothing breaks */
    ctl_send(&d, 0, PORT_OPEN, 0, 4);                  /* short: ignored */
    ctl_send(&d, 7, PORT_OPEN, 0, 8);                  /* no such port */
    ctl_send(&d, 0, 99, 0, 8);                         /* unknown event */
    ctl_send(&d, 0, PORT_READY, 0, 8);                 /* add failed: no reply */
    ctl_send(&d, 0xffffffffu, DEVICE_READY, 0, 8);     /* set-up failed: no reply */
    EQ(ctl_recv(&id, &ev, &val), 0);
    EQ(send(c, "still-open", 10, 0), 10);
    pump();
    CHECK(guest_rx_is(&d, "still-open"), "port closed by a malformed message");
    /* a control receive buffer too small for a message: returned empty */
    ctl_give(&d, 1, 4);
    ctl_send(&d, 0xffffffffu, DEVICE_READY, 1, 8);
    EQ(rd16(cq[0].used + 2), cq[0].used_seen + 1);
    EQ(rd32(cq[0].used + 4 + 8ull * (cq[0].used_seen % QSIZE) + 4), 0);
    cq[0].used_seen++;
    ctl_give(&d, 1, 64);
    expect_ctl(PORT_ADD, 1);
    /* more replies than the device keeps (8) while the driver gives no
     * buffers: the rest are dropped, the kept ones arrive later */
    for (unsigned i = 0; i < 12; i++)
        ctl_send(&d, 0xffffffffu, DEVICE_READY, 1, 8);
    EQ(ctl_recv(&id, &ev, &val), 0);
    ctl_give(&d, 12, 64);
    unsigned got = 0;
    while (ctl_recv(&id, &ev, &val) == 1)
        got++;
    EQ(got, 8);
    EQ(status(&d), 0x0f);

    /* a reset closes the port: input waits for the next driver's PORT_OPEN */
    EQ(drv_init_mp(&d), 0x0f);
    EQ(send(c, "after-reset", 11, 0), 11);
    pump();
    guest_rx_give(&d, 2, 64);
    pump();
    CHECK(guest_rx_is(&d, ""), "input before the new driver opened the port");
    ctl_give(&d, 2, 64);
    ctl_send(&d, 0, PORT_OPEN, 1, 8);
    CHECK(guest_rx_is(&d, "after-reset"), "input after the new driver opened the port");

    /* control queues without MULTIPORT: ignored */
    drv_up(&d, 1);
    ctl_kick(&d, CTXQ);
    EQ(status(&d), 0x0f);
    close(c);
    teardown();
}

static char *slurp(const char *path)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    buf[n < 0 ? 0 : n] = 0;
    if (fd >= 0)
        close(fd);
    return buf;
}

static void test_file_backend(void)
{
    char path[160], spec[220];
    snprintf(path, sizeof(path), "%s/out.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EQ(write(fd, "old\n", 4), 4);
    close(fd);
    struct drv d;
    for (unsigned pass = 0; pass < 2; pass++) {
        setup();
        snprintf(spec, sizeof(spec), "virtio-console,file=%s%s", path,
                 pass ? ",append=on" : "");
        EQ(create(spec, NULL), 0);
        drv_up(&d, 1);
        guest_tx(&d, "log line\n", 9, 4);
        bar_wr(&d, d.device + 8, 1, '!');
        guest_rx_give(&d, 1, 64);                      /* never filled */
        EQ(used_idx(&d, RXQ), 0);
        teardown();
    }
    CHECK(!strcmp(slurp(path), "log line\n!log line\n!"), "file holds '%s'", slurp(path));
    /* the file backend works without an event loop */
    setup();
    snprintf(spec, sizeof(spec), "virtio-console,file=%s,append=off", path);
    struct virtio_host h = { .pb = &pb, .mem = &mem };
    EQ(virtio_pci_create(&h, spec, NULL), 0);
    teardown();
    CHECK(!strcmp(slurp(path), ""), "append=off truncates: '%s'", slurp(path));
    unlink(path);
}

static void bad(const char *spec, int want_ret, const char *want_msg)
{
    struct err e = { "" };
    int ret = create(spec, &e);
    CHECK(ret == want_ret && strstr(e.msg, want_msg), "'%s': %d '%s' (want %d '%s')", spec, ret,
          e.msg, want_ret, want_msg);
    EQ(pb.dev[1], NULL);                               /* nothing plugged */
}

static void test_bad_options(void)
{
    setup();
    char spec[400], path[160];
    bad("virtio-console", -EINVAL, "needs a backend: socket=PATH");
    bad("virtio-console,socket", -EINVAL, "socket= needs a path");
    bad("virtio-console,socket=", -EINVAL, "socket= needs a path");
    bad("virtio-console,file", -EINVAL, "file= needs a path");
    bad("virtio-console,bogus=1", -EINVAL, "unknown option 'bogus'");
    bad("virtio-console,socket=/tmp/a,file=/tmp/b", -EINVAL, "not both");
    bad("virtio-console,socket=/tmp/a,socket=/tmp/b", -EINVAL, "socket= given twice");
    bad("virtio-console,socket=/tmp/a,append=on", -EINVAL, "append= only applies to file=");
    bad("virtio-console,file=/tmp/a,append=maybe", -EINVAL, "append=maybe: expected on or off");
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s/%0150d", dir, 0);
    bad(spec, -ENAMETOOLONG, "too long");
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s/no-such-dir/s", dir);
    bad(spec, -ENOENT, "cannot create socket");
    bad("virtio-console,file=/proc/no-such/file", -ENOENT, "cannot open output file");
    /* no event loop for a socket */
    struct virtio_host h = { .pb = &pb, .mem = &mem };
    struct err e;
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s", sock_path);
    EQ(virtio_pci_create(&h, spec, &e), -EINVAL);
    /* a regular file in the way is not replaced */
    snprintf(path, sizeof(path), "%s/regular", dir);
    close(open(path, O_WRONLY | O_CREAT, 0644));
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s", path);
    bad(spec, -EEXIST, "exists and is not a socket");
    CHECK(access(path, F_OK) == 0, "the regular file was removed");
    unlink(path);
    /* a live socket is not taken over */
    snprintf(spec, sizeof(spec), "virtio-console,socket=%s", sock_path);
    EQ(create(spec, NULL), 0);
    struct err e2 = { "" };
    struct virtio_host h2 = host();
    EQ(virtio_pci_create(&h2, spec, &e2), -EADDRINUSE);
    CHECK(strstr(e2.msg, "in use by another process"), "message: %s", e2.msg);
    EQ(pb.dev[2], NULL);
    pci_bus_destroy(&pb);
    pump();
    /* a stale socket (its listener died without removing it) is replaced */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", sock_path);
    EQ(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    close(s);
    setup();
    EQ(create(spec, NULL), 0);
    int c = client_connect(sock_path);
    pump();
    struct drv d;
    drv_up(&d, 1);
    guest_tx(&d, "fresh", 5, 0);
    CHECK(client_read_is(c, "fresh"), "replaced stale socket");
    close(c);
    teardown();
    /* the device list names it */
    CHECK(virtio_device_known("virtio-console,socket=/x"), "virtio-console not known");
    EQ(create("virtio-nope", &e), -ENOENT);
    CHECK(strstr(e.msg, "virtio-console") != NULL, "known devices: %s", e.msg);
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    loop = evloop_new(NULL);
    snprintf(dir, sizeof(dir), "/tmp/petrel-con-XXXXXX");
    if (!loop || !mkdtemp(dir))
        return 1;
    snprintf(sock_path, sizeof(sock_path), "%s/console.sock", dir);
    test_identity_and_config();
    test_tx_and_rx();
    test_rx_backpressure_no_loss();
    test_slow_client();
    test_disconnect_reconnect();
    test_reset_and_hostile();
    test_multiport();
    test_file_backend();
    test_bad_options();
    unlink(sock_path);
    rmdir(dir);
    evloop_free(loop);
    gmem_free(&mem);
    return unit_done("test_virtio_console");
}
