/* libFuzzer target: virtio-vsock's packet handling, driven by a hostile
 * guest and hostile host clients at once.  The device runs for real: its
 * unix socket, the guest-initiated connections to PATH_PORT (two of them
 * have listeners here), the event loop.  The input is a sequence of
 * operations:
 *
 *   0 the guest sends a packet: header fields from the input (ops, ports
 *     from a small table that includes the ports the device has used, so
 *     packets hit live connections), a payload, one or two descriptors
 *   1 the guest gives receive buffers (any length, also shorter than a header)
 *   2 the guest gives event buffers
 *   3 a host client connects and sends a CONNECT line (or garbage)
 *   4 a host client writes bytes; 5 one closes or half-closes
 *   6 the listeners accept what the device connected
 *   7 the event loop runs
 *   8 the guest sends a raw descriptor chain (addresses and lengths anywhere)
 *   9 a device reset followed by a new driver set-up, or a config read
 *
 * Whatever happens, the VMM must not crash, read or write outside guest RAM,
 * leak memory, or leak a socket or event descriptor (checked after every
 * input). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"

#include "unit.h"

#include "virtio_driver.h"

#define QSIZE 16u
#define NQ 3u
#define TXQ 1u
#define HDR 44u
#define CID 7u
#define RX_BUFS (RAM + 0x100000)
#define RX_SLOT 0x1000u
#define TX_BUF (RAM + 0x200000)
#define EV_BUFS (RAM + 0x300000)
#define NCLIENTS 8

static struct evloop *loop;
static char dir[64], uds[128];
static int listeners[2] = { -1, -1 };
static int clients[NCLIENTS];
static struct drv_q q[NQ];
static struct drv d;
static uint32_t ports[8] = { 1024, 1025, 55, 56, 1u << 30, (1u << 30) + 1, 0, 0xffffffffu };
static unsigned nfds_base;

struct in {
    const uint8_t *p;
    size_t n;
};

static uint32_t take(struct in *in, unsigned bytes)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint32_t)(in->n ? *in->p : 0) << (8 * i);
        if (in->n) {
            in->p++;
            in->n--;
        }
    }
    return v;
}

/* Sockets, eventfds, timerfds and epoll descriptors open now (libFuzzer
 * opens pipes and files of its own as it goes). */
static unsigned count_fds(void)
{
    DIR *dp = opendir("/proc/self/fd");
    struct dirent *de;
    unsigned n = 0;
    if (!dp)
        abort();
    while ((de = readdir(dp))) {
        char path[300], target[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = 0;
        if (!strncmp(target, "socket:", 7) || !strncmp(target, "anon_inode:", 11))
            n++;
    }
    closedir(dp);
    return n;
}

static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
        abort();
    return fd;
}

static void wr(uint64_t off, unsigned size, uint64_t v) { bus_write(&mmio, d.bar + off, size, v); }

static void kick(unsigned qi) { wr(d.notify + (uint64_t)q[qi].noff * d.mult, 2, qi); }

/* The driver's set-up of the three queues (the spec's init sequence). */
static void driver_up(void)
{
    drv_up_queues(&d, RAM, 1ull << VIRTIO_RING_F_EVENT_IDX, q, NQ, QSIZE);
}

static void avail(unsigned qi, uint16_t head)
{
    struct drv_q *x = &q[qi];
    wr16(x->avail + 4 + 2ull * (x->avail_idx % QSIZE), head);
    x->avail_idx++;
    wr16(x->avail + 2, x->avail_idx);
}

/* Read what the device sent; remember its local ports for later packets. */
static void rx_drain(void)
{
    struct drv_q *x = &q[0];
    while (x->used_seen != rd16(x->used + 2)) {
        uint64_t e = x->used + 4 + 8ull * (x->used_seen % QSIZE);
        uint32_t id = rd32(e), len = rd32(e + 4);
        x->used_seen++;
        if (id >= QSIZE || len > RX_SLOT)
            abort();                    /* the device wrote a bad used entry */
        if (len >= HDR) {
            uint32_t src_port;
            memcpy(&src_port, gp(RX_BUFS + (uint64_t)id * RX_SLOT + 16, 4), 4);
            ports[4 + (src_port & 1)] = src_port;
        }
    }
}

static void pump(void)
{
    for (unsigned i = 0; i < 3; i++)
        evloop_dispatch(loop);
    rx_drain();
}

static void op_tx(struct in *in)
{
    static uint8_t b[HDR + 2048];
    uint8_t sel = (uint8_t)take(in, 1);
    uint64_t src_cid = sel & 0x80 ? (uint64_t)take(in, 1) : CID;
    uint64_t dst_cid = sel & 0x40 ? (uint64_t)take(in, 1) : 2;
    uint32_t sport = ports[take(in, 1) % 8], dport = ports[take(in, 1) % 8];
    uint32_t len = take(in, 2) % (sizeof(b) - HDR + 64);
    uint16_t type = sel & 0x20 ? (uint16_t)take(in, 1) : 1;
    uint16_t op = (uint16_t)(take(in, 1) % 9);
    uint32_t flags = take(in, 1) & 3;
    uint32_t buf_alloc = take(in, 1) << (take(in, 1) % 24);
    uint32_t fwd_cnt = take(in, 2);
    memcpy(b, &src_cid, 8);
    memcpy(b + 8, &dst_cid, 8);
    memcpy(b + 16, &sport, 4);
    memcpy(b + 20, &dport, 4);
    memcpy(b + 24, &len, 4);
    memcpy(b + 28, &type, 2);
    memcpy(b + 30, &op, 2);
    memcpy(b + 32, &flags, 4);
    memcpy(b + 36, &buf_alloc, 4);
    memcpy(b + 40, &fwd_cnt, 4);
    /* the payload actually supplied may be shorter or longer than len */
    uint32_t have = take(in, 2) % (sizeof(b) - HDR);
    for (uint32_t i = 0; i < have; i++)
        b[HDR + i] = (uint8_t)(i * 7 + 1);
    uint32_t total = HDR + have;
    if (sel & 0x10)
        total = take(in, 1) % HDR;      /* a short header */
    memcpy(gp(TX_BUF, sizeof(b)), b, sizeof(b));
    struct drv_q *x = &q[TXQ];
    uint16_t head = (uint16_t)(x->avail_idx % QSIZE), nxt = (uint16_t)((head + 1) % QSIZE);
    if ((sel & 1) && total > HDR) {
        put_desc(x->desc, head, TX_BUF, HDR, VIRTQ_DESC_F_NEXT, nxt);
        put_desc(x->desc, nxt, TX_BUF + HDR, total - HDR, 0, 0);
    } else {
        put_desc(x->desc, head, TX_BUF, total, 0, 0);
    }
    avail(TXQ, head);
    kick(TXQ);
}

static void op_raw_chain(struct in *in)
{
    struct drv_q *x = &q[TXQ];
    uint16_t head = (uint16_t)(take(in, 1) % QSIZE);
    unsigned n = take(in, 1) % 4 + 1;
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = RAM + (uint64_t)take(in, 3) * 2 - 0x10000;   /* may leave RAM */
        uint32_t len = take(in, 2) * (1u << (take(in, 1) % 8));
        uint16_t flags = (uint16_t)(take(in, 1) & 7);
        uint16_t next = (uint16_t)take(in, 1);
        put_desc(x->desc, (head + i) % QSIZE, addr, len, flags, next);
    }
    avail(TXQ, head);
    kick(TXQ);
}

static void op_give(unsigned qi, struct in *in)
{
    struct drv_q *x = &q[qi];
    unsigned n = take(in, 1) % QSIZE + 1;
    uint32_t len = take(in, 2) % (RX_SLOT + 1);
    uint64_t base = qi == 0 ? RX_BUFS : EV_BUFS;
    for (unsigned i = 0; i < n; i++) {
        uint16_t head = (uint16_t)(x->avail_idx % QSIZE);
        put_desc(x->desc, head, base + (uint64_t)head * RX_SLOT, len, VIRTQ_DESC_F_WRITE, 0);
        avail(qi, head);
    }
    kick(qi);
}

static int free_client(void)
{
    for (unsigned i = 0; i < NCLIENTS; i++)
        if (clients[i] < 0)
            return (int)i;
    return -1;
}

static void op_connect(struct in *in)
{
    int i = free_client();
    if (i < 0)
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
    if (fd < 0)
        abort();
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return;
    }
    clients[i] = fd;
    char line[48];
    uint8_t how = (uint8_t)take(in, 1);
    int n;
    if (how % 4 == 0) {                 /* garbage */
        n = (int)(take(in, 1) % 40);
        for (int k = 0; k < n; k++)
            line[k] = (char)take(in, 1);
    } else {
        n = snprintf(line, sizeof(line), "CONNECT %u\n", ports[take(in, 1) % 8]);
    }
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
        ;                               /* the device may have refused it */
}

static void op_write(struct in *in)
{
    static uint8_t buf[4096];
    int fd = clients[take(in, 1) % NCLIENTS];
    size_t n = take(in, 2) % sizeof(buf);
    if (fd < 0)
        return;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)i;
    (void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    char rd[4096];
    (void)!recv(fd, rd, sizeof(rd), MSG_DONTWAIT);
}

static void op_close(struct in *in)
{
    uint8_t b = (uint8_t)take(in, 1);
    int *fd = &clients[b % NCLIENTS];
    if (*fd < 0)
        return;
    if (b & 0x80) {
        shutdown(*fd, (b & 0x40) ? SHUT_WR : SHUT_RD);
    } else {
        close(*fd);
        *fd = -1;
    }
}

static void op_accept(void)
{
    for (unsigned l = 0; l < 2; l++) {
        int i;
        while ((i = free_client()) >= 0) {
            int fd = accept4(listeners[l], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            clients[i] = fd;
        }
    }
}

static void op_misc(struct in *in)
{
    uint8_t b = (uint8_t)take(in, 1);
    if (b & 1) {
        driver_up();                    /* a reset and a new set-up */
    } else {
        uint64_t v;
        bus_read(&mmio, d.bar + d.device + b % 16, 1u << (b / 2 % 4), &v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
            abort();
        loop = evloop_new(NULL);
        snprintf(dir, sizeof(dir), "/tmp/petrel-fuzz-vsock-XXXXXX");
        if (!loop || !mkdtemp(dir))
            abort();
        snprintf(uds, sizeof(uds), "%s/v.sock", dir);
        char path[160];
        snprintf(path, sizeof(path), "%s_1024", uds);
        listeners[0] = listen_at(path);
        snprintf(path, sizeof(path), "%s_1025", uds);
        listeners[1] = listen_at(path);
        for (unsigned i = 0; i < NCLIENTS; i++)
            clients[i] = -1;
        nfds_base = count_fds();
        init = true;
    }
    setup();
    char spec[200];
    snprintf(spec, sizeof(spec), "virtio-vsock,cid=%u,uds=%s", CID, uds);
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    struct err e;
    if (virtio_pci_create(&h, spec, &e) < 0)
        abort();
    driver_up();
    struct in in = { data, size };
    for (unsigned steps = 0; in.n && steps < 256; steps++) {
        switch (take(&in, 1) % 10) {
        case 0: op_tx(&in); break;
        case 1: op_give(0, &in); break;
        case 2: op_give(2, &in); break;
        case 3: op_connect(&in); break;
        case 4: op_write(&in); break;
        case 5: op_close(&in); break;
        case 6: op_accept(); break;
        case 7: pump(); break;
        case 8: op_raw_chain(&in); break;
        case 9: op_misc(&in); break;
        }
        rx_drain();
    }
    pump();
    pci_bus_destroy(&pb);
    evloop_dispatch(loop);              /* deferred deletions */
    op_accept();
    for (unsigned i = 0; i < NCLIENTS; i++)
        if (clients[i] >= 0) {
            close(clients[i]);
            clients[i] = -1;
        }
    unsigned now = count_fds();
    if (now != nfds_base) {
        fprintf(stderr, "fuzz_vsock: %u descriptors open after the input, %u before\n", now,
                nfds_base);
        abort();
    }
    return 0;
}
