/* virtio-vsock (virtio spec 5.10) with a userspace backend: Firecracker's
 * hybrid model, where the host end of every guest connection is a unix
 * stream socket.
 *
 *   --device virtio-vsock,cid=N,uds=PATH
 *
 * Host side
 * - Petrel listens on the unix socket PATH.  A host client connects and
 *   writes "CONNECT <port>\n"; the device sends the guest a REQUEST from
 *   the host (CID 2) and a local port of its own (from 2^30 up) to <port>.
 *   Once the guest answers with a RESPONSE the client reads
 *   "OK <localport>\n" and the stream is the connection; an RST (nobody
 *   listens on <port>), a bad line ("CONNECT abc", no newline within
 *   VSOCK_LINE_MAX bytes or 5 s), no answer from the guest within 2 s
 *   (as Firecracker) or too many connections close the client.
 *   Bytes the client sent after the line wait for the connection.
 * - A guest connecting to the host's port P (CID 2) gets a connection to
 *   the unix socket "PATH_P" (non-blocking connect; RESPONSE if it
 *   succeeds, RST if nobody listens there).
 * - PATH is created as virtio-console creates its socket (a stale socket
 *   left by a killed petrel is replaced, a live one or another file is an
 *   error) and removed at teardown if it is still ours.
 *
 * Device
 * - Queues rx (0), tx (1), event (2); config space is the guest's CID
 *   (le64).  No feature bits beyond the core's: stream sockets only (no
 *   SEQPACKET).
 * - Credit (spec 5.10.6.3): every packet to the guest carries buf_alloc =
 *   VSOCK_BUF (the size of the connection's buffer towards the host) and
 *   fwd_cnt (bytes of the guest's data written to the host socket), so a
 *   guest that keeps to its credit always fits in that buffer; one that
 *   sends more gets an RST.  Towards the guest the device sends no more
 *   than the guest's buf_alloc - (sent - its fwd_cnt), asks with a
 *   CREDIT_REQUEST when that is 0, and answers the guest's CREDIT_REQUEST
 *   with a CREDIT_UPDATE; it sends one by itself when it freed half the
 *   buffer since it last told the guest.
 * - Shutdown: the guest's SHUTDOWN(SEND) becomes shutdown(SHUT_WR) once
 *   its data is written out; SHUTDOWN with both flags closes the
 *   connection (RST back to the guest, as Firecracker does) once its data
 *   is written.  The host stream's end of input becomes SHUTDOWN(SEND); a
 *   host peer that went away entirely (hang-up) SHUTDOWN(RCV|SEND), after
 *   which the guest's RST frees the connection.  An RST from the guest, an
 *   error on the host socket or a guest breaking the protocol resets it.
 * - Bounds: at most VSOCK_MAX_CONNS connections (host clients waiting for
 *   their CONNECT line included; beyond that, clients are closed and guest
 *   REQUESTs get an RST), each with two VSOCK_BUF buffers (guest -> host:
 *   the credit the guest has; host -> guest: the socket is not read while
 *   it is full, so a flooding client blocks in its own socket buffer), and
 *   VSOCK_MAX_RST RSTs for unknown connections waiting for receive
 *   buffers (more are dropped).  Each is logged, rate-limited.
 * - The guest is hostile: a header shorter than 44 bytes, a length beyond
 *   the chain or VSOCK_MAX_PKT, a wrong CID, type or unknown op is logged
 *   (rate-limited) and answered with an RST (for a connection it names,
 *   that connection is reset); a chain without room for a header in the
 *   receive queue is returned empty.  Nothing of it stops the VMM.
 * - Every chain is returned inside the call that took it: receive chains
 *   are filled from the device's buffers, transmit chains copied into
 *   them.  So no quiesce for snapshots.
 *
 * Event loop: as virtio-console, a private epoll set (the listening socket
 * and every connection's socket), registered once with the VM's evloop as
 * a device handler; interest changes are epoll_ctl calls on the private
 * set.  Epoll data is slot + 1 (0: the listener) with a generation in the
 * high half, so an event for a slot freed earlier in the same round is
 * ignored.
 *
 * Snapshots: Firecracker's rule.  Saved after the core: the guest CID
 * (must equal the configured one on load).  Connections are host state and
 * do not survive: a load closes every host connection, and once the VM
 * runs (a one-shot timer on the event loop) the device sends
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue, after which the
 * guest's driver drops its connections and reads the CID again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/opts.h"
#include "core/snapshot.h"
#include "virtio/virtio_pci.h"

#define VIRTIO_ID_VSOCK 19
#define PCI_CLASS_COMMUNICATION_OTHER 0x078000

#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_NQUEUES 3
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_CFG_SIZE 8

#define VSOCK_HDR 44u
#define VSOCK_HOST_CID 2u
#define VSOCK_TYPE_STREAM 1u
enum {
    OP_INVALID, OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE,
    OP_CREDIT_REQUEST,
};
#define SHUT_F_RCV 1u
#define SHUT_F_SEND 2u
#define VSOCK_EVENT_TRANSPORT_RESET 0u

#define VSOCK_MAX_CONNS 64
#define VSOCK_BUF (256u << 10)      /* per connection and direction */
#define VSOCK_MAX_PKT (64u << 10)   /* payload of one packet (Linux's largest) */
#define VSOCK_MAX_RST 64
#define VSOCK_LINE_MAX 32           /* "CONNECT 4294967295\n" and some */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)
#define VSOCK_LINE_TIMEOUT_NS 5000000000ull     /* for the CONNECT line */
#define VSOCK_REQUEST_TIMEOUT_NS 2000000000ull  /* for the guest's answer (Firecracker's) */
#define VSOCK_SWEEP_NS 250000000ull
#define TAG_LISTEN 0u

struct vring {                      /* a byte ring */
    uint8_t *buf;
    uint32_t cap, head, len;
};

enum conn_state {
    C_FREE,
    C_LINE,         /* host client: waiting for its CONNECT line */
    C_REQUEST,      /* host client: REQUEST to the guest pending or sent */
    C_OPEN,         /* established */
    C_CLOSING,      /* host side gone, SHUTDOWN(RCV|SEND) sent: waiting for RST */
};

/* control packets a connection owes the guest */
#define P_REQUEST 1u
#define P_RESPONSE 2u
#define P_CREDIT_UPDATE 4u
#define P_CREDIT_REQUEST 8u
#define P_SHUTDOWN 16u

struct conn {
    enum conn_state state;
    uint32_t gen;
    uint64_t deadline;              /* C_LINE, C_REQUEST: closed then (ns) */
    int fd;
    bool watched;
    uint32_t events;
    uint32_t local_port, peer_port;  /* host side's port, guest side's port */
    unsigned pending;               /* P_* */
    uint32_t shut_flags;            /* the SHUTDOWN to send */
    struct vring to_host;           /* guest data not yet written to fd */
    struct vring to_guest;          /* host data not yet in guest buffers */
    uint32_t fwd_cnt;               /* guest bytes written to the host */
    uint32_t fwd_told;              /* fwd_cnt the guest last heard */
    uint32_t rx_cnt;                /* host bytes sent to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    bool credit_asked;
    bool host_eof, host_hup;        /* no more input from fd / peer gone */
    bool eof_told;                  /* SHUTDOWN for host_eof queued */
    bool guest_shut_send, guest_shut_rcv;
    bool wr_shut;                   /* shutdown(SHUT_WR) done */
};

struct rst {
    uint32_t local_port, peer_port;
};

struct virtio_vsock {
    struct virtio_pci vp;
    struct virtq_chain chain;
    struct evloop *loop;
    struct evloop_timer *timer;
    uint64_t cid;
    char path[108];
    int lfd, epfd;
    bool lfd_watched, bound;
    dev_t sock_dev;
    ino_t sock_ino;
    struct conn conn[VSOCK_MAX_CONNS];
    unsigned nconn;
    struct rst rst[VSOCK_MAX_RST];
    unsigned rst_head, rst_len;
    uint32_t next_port;
    unsigned rr;                    /* round robin start for delivery */
    bool reset_event;               /* TRANSPORT_RESET to send */
    bool sweeping;                  /* the timer checks handshake deadlines */
    struct log_limit host_log;
    uint8_t pkt[VSOCK_MAX_PKT];
};

static void rx_deliver(struct virtio_vsock *v);
static void conn_update(struct virtio_vsock *v, struct conn *c);

/* Check handshake deadlines every VSOCK_SWEEP_NS while there are any. */
static void sweep_start(struct virtio_vsock *v)
{
    if (!v->sweeping)
        evloop_timer_set(v->timer, VSOCK_SWEEP_NS, VSOCK_SWEEP_NS);
    v->sweeping = true;
}

/* --- little endian -------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};

static void hdr_pack(const struct hdr *h, uint8_t *b)
{
    put_le(b, h->src_cid, 8);
    put_le(b + 8, h->dst_cid, 8);
    put_le(b + 16, h->src_port, 4);
    put_le(b + 20, h->dst_port, 4);
    put_le(b + 24, h->len, 4);
    put_le(b + 28, h->type, 2);
    put_le(b + 30, h->op, 2);
    put_le(b + 32, h->flags, 4);
    put_le(b + 36, h->buf_alloc, 4);
    put_le(b + 40, h->fwd_cnt, 4);
}

static void hdr_unpack(struct hdr *h, const uint8_t *b)
{
    h->src_cid = get_le(b, 8);
    h->dst_cid = get_le(b + 8, 8);
    h->src_port = (uint32_t)get_le(b + 16, 4);
    h->dst_port = (uint32_t)get_le(b + 20, 4);
    h->len = (uint32_t)get_le(b + 24, 4);
    h->type = (uint16_t)get_le(b + 28, 2);
    h->op = (uint16_t)get_le(b + 30, 2);
    h->flags = (uint32_t)get_le(b + 32, 4);
    h->buf_alloc = (uint32_t)get_le(b + 36, 4);
    h->fwd_cnt = (uint32_t)get_le(b + 40, 4);
}

/* --- byte rings ------------------------------------------------------------- */

static uint32_t vr_room(const struct vring *r) { return r->cap - r->len; }

static uint32_t vr_head_run(const struct vring *r)
{
    uint32_t run = r->cap - r->head;
    return run < r->len ? run : r->len;
}

static uint8_t *vr_tail(const struct vring *r, uint32_t *run)
{
    uint32_t tail = (r->head + r->len) % r->cap, n = r->cap - tail;
    *run = n < vr_room(r) ? n : vr_room(r);
    return r->buf + tail;
}

static void vr_consume(struct vring *r, uint32_t n)
{
    r->head = (r->head + n) % r->cap;
    r->len -= n;
    if (!r->len)
        r->head = 0;
}

static void vr_put(struct vring *r, const uint8_t *p, uint32_t n)
{
    while (n && vr_room(r)) {
        uint32_t run;
        uint8_t *t = vr_tail(r, &run);
        if (run > n)
            run = n;
        memcpy(t, p, run);
        r->len += run;
        p += run;
        n -= run;
    }
}

/* --- the private epoll set ------------------------------------------------- */

static uint64_t conn_tag(const struct virtio_vsock *v, const struct conn *c)
{
    return (uint64_t)(c - v->conn + 1) | (uint64_t)c->gen << 32;
}

static void conn_watch(struct virtio_vsock *v, struct conn *c, uint32_t events)
{
    if (c->watched && c->events == events)
        return;
    struct epoll_event ev = { .events = events, .data.u64 = conn_tag(v, c) };
    if (epoll_ctl(v->epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_warn("virtio-vsock %s: epoll_ctl: %s", v->path, strerror(errno));
        return;
    }
    c->watched = true;
    c->events = events;
}

static void conn_unwatch(struct virtio_vsock *v, struct conn *c)
{
    if (c->watched)
        epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->watched = false;
}

static void listen_watch(struct virtio_vsock *v, bool on)
{
    if (on == v->lfd_watched || v->lfd < 0)
        return;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTEN };
    if (epoll_ctl(v->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, v->lfd, on ? &ev : NULL) == 0)
        v->lfd_watched = on;
}

/* --- connections ----------------------------------------------------------- */

static struct conn *conn_alloc(struct virtio_vsock *v, int fd)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conn[i];
        if (c->state != C_FREE)
            continue;
        uint32_t gen = c->gen + 1;
        uint8_t *a = c->to_host.buf, *b = c->to_guest.buf;
        if (!a)
            a = malloc(VSOCK_BUF);
        if (!b)
            b = malloc(VSOCK_BUF);
        if (!a || !b) {
            c->to_host.buf = a;     /* kept for later; freed at teardown */
            c->to_guest.buf = b;
            return NULL;
        }
        memset(c, 0, sizeof(*c));
        c->gen = gen;
        c->fd = fd;
        c->to_host = (struct vring){ .buf = a, .cap = VSOCK_BUF };
        c->to_guest = (struct vring){ .buf = b, .cap = VSOCK_BUF };
        v->nconn++;
        return c;
    }
    return NULL;
}

/* Forget c (its buffers stay allocated for the slot's next use). */
static void conn_free(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_FREE)
        return;
    if (c->fd >= 0) {
        conn_unwatch(v, c);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_FREE;
    c->gen++;
    v->nconn--;
}

static struct conn *conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conn[i];
        if (c->state >= C_REQUEST && c->local_port == local_port && c->peer_port == peer_port)
            return c;
    }
    return NULL;
}

/* Queue an RST to the guest for (local_port, peer_port). */
static void rst_queue(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
    if (v->rst_len == VSOCK_MAX_RST) {
        virtio_log(&v->vp.vdev, "too many RSTs waiting for receive buffers: one dropped");
        return;
    }
    v->rst[(v->rst_head + v->rst_len) % VSOCK_MAX_RST] =
        (struct rst){ .local_port = local_port, .peer_port = peer_port };
    v->rst_len++;
}

/* Close c's host side and tell the guest with an RST (if it knows c). */
static void conn_reset(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_OPEN || c->state == C_CLOSING ||
        (c->state == C_REQUEST && !(c->pending & P_REQUEST)))
        rst_queue(v, c->local_port, c->peer_port);
    conn_free(v, c);
}

/* Whether the device may use queue q now (also outside a kick). */
static bool queue_ready(struct virtio_vsock *v, unsigned q)
{
    const struct virtio_dev *vd = &v->vp.vdev;
    const struct virtq *vq = &vd->vq[q];
    return virtio_live(vd) && vq->enabled && !vq->broken && pci_bus_master(&v->vp.pci);
}

/* Write what c->to_host holds to the host socket, without blocking. */
static void conn_flush(struct virtio_vsock *v, struct conn *c)
{
    while (c->fd >= 0 && c->to_host.len) {
        ssize_t n = send(c->fd, c->to_host.buf + c->to_host.head, vr_head_run(&c->to_host),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            vr_consume(&c->to_host, (uint32_t)n);
            c->fwd_cnt += (uint32_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            log_guest(&v->host_log, "virtio-vsock %s: port %u: host peer stopped reading: %s",
                      v->path, c->local_port, n < 0 ? strerror(errno) : "send returned 0");
            conn_reset(v, c);
            return;
        }
    }
    if (c->state != C_OPEN && c->state != C_CLOSING)
        return;
    if (!c->to_host.len && c->guest_shut_send && c->guest_shut_rcv) {
        conn_reset(v, c);       /* the guest closed and all its data is out */
        return;
    }
    if (!c->to_host.len && c->guest_shut_send && !c->wr_shut && c->fd >= 0) {
        shutdown(c->fd, SHUT_WR);
        c->wr_shut = true;
    }
    /* tell the guest about freed space before it runs short */
    if (c->fwd_cnt - c->fwd_told >= VSOCK_BUF / 4)
        c->pending |= P_CREDIT_UPDATE;
}

/* Read from the host socket while the buffer towards the guest has room. */
static void conn_fill(struct virtio_vsock *v, struct conn *c)
{
    while (c->fd >= 0 && !c->host_eof && vr_room(&c->to_guest)) {
        uint32_t run;
        uint8_t *t = vr_tail(&c->to_guest, &run);
        if (c->state == C_LINE && run > VSOCK_LINE_MAX - c->to_guest.len)
            run = VSOCK_LINE_MAX - c->to_guest.len;     /* only the line for now */
        if (!run)
            return;
        ssize_t n = recv(c->fd, t, run, MSG_DONTWAIT);
        if (n > 0) {
            c->to_guest.len += (uint32_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else if (n < 0) {
            log_guest(&v->host_log, "virtio-vsock %s: port %u: host socket read error: %s",
                      v->path, c->local_port, strerror(errno));
            conn_reset(v, c);
            return;
        } else {
            c->host_eof = true;
        }
    }
}

/* A host client's "CONNECT <port>\n" (at the head of to_guest). */
static void conn_line(struct virtio_vsock *v, struct conn *c)
{
    struct vring *r = &c->to_guest;
    uint8_t *nl = memchr(r->buf, '\n', r->len);     /* head is 0 until the line is gone */
    if (!nl) {
        if (r->len >= VSOCK_LINE_MAX || c->host_eof) {
            log_guest(&v->host_log, "virtio-vsock %s: host client sent no CONNECT line: "
                      "closed", v->path);
            conn_free(v, c);
        }
        return;
    }
    char line[VSOCK_LINE_MAX + 1];
    size_t n = (size_t)(nl - r->buf), linelen = n + 1;
    memcpy(line, r->buf, n);
    line[n] = 0;
    if (n && line[n - 1] == '\r')
        line[--n] = 0;
    char *end = NULL;
    unsigned long port = 0;
    bool ok = !strncmp(line, "CONNECT ", 8) && line[8] >= '0' && line[8] <= '9';
    if (ok) {
        errno = 0;
        port = strtoul(line + 8, &end, 10);
        ok = !errno && *end == 0 && port <= UINT32_MAX;
    }
    if (!ok) {
        log_guest(&v->host_log, "virtio-vsock %s: bad line from a host client: '%.*s' "
                  "(want CONNECT <port>): closed", v->path, (int)n, line);
        conn_free(v, c);
        return;
    }
    vr_consume(r, (uint32_t)linelen);
    /* a local port of our own, not in use */
    uint32_t lp;
    do {
        lp = v->next_port++;
        if (v->next_port < VSOCK_LOCAL_PORT_BASE)
            v->next_port = VSOCK_LOCAL_PORT_BASE;
    } while (conn_find(v, lp, (uint32_t)port));
    c->local_port = lp;
    c->peer_port = (uint32_t)port;
    c->state = C_REQUEST;
    c->deadline = time_now_ns() + VSOCK_REQUEST_TIMEOUT_NS;
    c->pending |= P_REQUEST;
}

static void conn_accept(struct virtio_vsock *v)
{
    for (;;) {
        int fd = accept4(v->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_guest(&v->host_log, "virtio-vsock %s: accept: %s", v->path,
                          strerror(errno));
            return;
        }
        struct conn *c = v->nconn < VSOCK_MAX_CONNS ? conn_alloc(v, fd) : NULL;
        if (!c) {
            log_guest(&v->host_log, "virtio-vsock %s: too many connections (%u): host client "
                      "closed", v->path, v->nconn);
            close(fd);
            continue;
        }
        c->state = C_LINE;
        c->deadline = time_now_ns() + VSOCK_LINE_TIMEOUT_NS;
        sweep_start(v);
        conn_update(v, c);
    }
}

/* Bring c's epoll interest in line with its state. */
static void conn_update(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_FREE || c->fd < 0)
        return;
    if (c->host_hup && !c->to_host.len) {
        /* nothing more to write, and input is read as the guest takes it */
        conn_unwatch(v, c);
        return;
    }
    uint32_t want = 0;
    bool reading = c->state == C_LINE ? c->to_guest.len < VSOCK_LINE_MAX
                   : c->state == C_OPEN && !c->guest_shut_rcv;
    if (reading && !c->host_eof && vr_room(&c->to_guest))
        want |= EPOLLIN;
    if (c->to_host.len)
        want |= EPOLLOUT;
    if (c->host_hup && !want) {
        conn_unwatch(v, c);
        return;
    }
    conn_watch(v, c, want);     /* hang-ups are reported anyway */
}

static void conn_event(struct virtio_vsock *v, struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT)
        conn_flush(v, c);
    if (c->state == C_FREE)
        return;
    if (events & (EPOLLHUP | EPOLLERR))
        c->host_hup = true;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_fill(v, c);
    if (c->state == C_LINE)
        conn_line(v, c);
    else if (c->state == C_REQUEST && c->host_hup)
        conn_reset(v, c);       /* the client gave up before the guest answered */
}

/* --- guest -> device: the transmit queue ------------------------------------ */

static bool hdr_from_guest(struct virtio_vsock *v, struct hdr *h)
{
    uint8_t b[VSOCK_HDR];
    if (virtq_chain_from_guest(&v->chain, 0, b, VSOCK_HDR) != VSOCK_HDR) {
        virtio_log(&v->vp.vdev, "transmit packet of %u bytes (header needs %u): dropped",
                   v->chain.out_bytes, VSOCK_HDR);
        return false;
    }
    hdr_unpack(h, b);
    return true;
}

/* A REQUEST from the guest to the host's port h->dst_port. */
static void guest_request(struct virtio_vsock *v, const struct hdr *h)
{
    struct virtio_dev *vd = &v->vp.vdev;
    if (conn_find(v, h->dst_port, h->src_port)) {
        virtio_log(vd, "REQUEST for port %u from %u, a connection that exists: reset",
                   h->dst_port, h->src_port);
        conn_reset(v, conn_find(v, h->dst_port, h->src_port));
        return;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int len = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->path, h->dst_port);
    int fd = -1, err = ENAMETOOLONG;
    if (len > 0 && (size_t)len < sizeof(a.sun_path)) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        err = errno;
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
            errno != EINPROGRESS) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    struct conn *c = NULL;
    if (fd >= 0 && (v->nconn >= VSOCK_MAX_CONNS || !(c = conn_alloc(v, fd)))) {
        close(fd);
        fd = -1;
        err = EMFILE;
    }
    if (fd < 0) {
        if (err == EMFILE)
            virtio_log(vd, "too many connections (%u): REQUEST for host port %u refused",
                       v->nconn, h->dst_port);
        else
            log_guest(&v->host_log, "virtio-vsock: guest connects to host port %u: %s: %s",
                      h->dst_port, a.sun_path, strerror(err));
        rst_queue(v, h->dst_port, h->src_port);
        return;
    }
    c->state = C_OPEN;
    c->local_port = h->dst_port;
    c->peer_port = h->src_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pending |= P_RESPONSE;
    conn_update(v, c);
}

/* One packet on connection c (header checked, payload at v->pkt). */
static void conn_packet(struct virtio_vsock *v, struct conn *c, const struct hdr *h)
{
    struct virtio_dev *vd = &v->vp.vdev;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case OP_RESPONSE: {
        if (c->state != C_REQUEST || (c->pending & P_REQUEST)) {
            virtio_log(vd, "RESPONSE on port %u that asked for none: reset", c->local_port);
            conn_reset(v, c);
            return;
        }
        char ok[32];
        int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
        if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
            log_guest(&v->host_log, "virtio-vsock %s: host client went away before OK",
                      v->path);
            conn_reset(v, c);
            return;
        }
        c->state = C_OPEN;
        c->deadline = 0;
        break;
    }
    case OP_RST:
        conn_free(v, c);
        return;
    case OP_SHUTDOWN:
        if (c->state != C_OPEN && c->state != C_CLOSING)
            break;
        c->guest_shut_rcv |= (h->flags & SHUT_F_RCV) != 0;
        c->guest_shut_send |= (h->flags & SHUT_F_SEND) != 0;
        if (c->state == C_CLOSING && c->guest_shut_send) {
            conn_reset(v, c);
            return;
        }
        break;
    case OP_RW:
        if (c->state == C_CLOSING)
            break;              /* sent before our SHUTDOWN reached the guest */
        if (c->state != C_OPEN || c->guest_shut_send) {
            virtio_log(vd, "data on port %u that is not open for it: reset", c->local_port);
            conn_reset(v, c);
            return;
        }
        if (h->len > vr_room(&c->to_host)) {
            virtio_log(vd, "port %u: guest sent %u bytes with %u of credit: reset",
                       c->local_port, h->len, vr_room(&c->to_host));
            conn_reset(v, c);
            return;
        }
        vr_put(&c->to_host, v->pkt, h->len);
        break;
    case OP_CREDIT_UPDATE:
        c->credit_asked = false;
        break;
    case OP_CREDIT_REQUEST:
        c->pending |= P_CREDIT_UPDATE;
        break;
    default:        /* REQUEST on an existing connection */
        virtio_log(vd, "op %u on port %u: reset", h->op, c->local_port);
        conn_reset(v, c);
        return;
    }
    if (c->state == C_OPEN || c->state == C_CLOSING) {
        conn_flush(v, c);
        if (c->state == C_FREE)
            return;
        conn_fill(v, c);        /* more credit, or a chance to read what waits */
    }
    if (c->state != C_FREE)
        conn_update(v, c);
}

static void guest_packet(struct virtio_vsock *v)
{
    struct virtio_dev *vd = &v->vp.vdev;
    struct hdr h;
    if (!hdr_from_guest(v, &h))
        return;
    const char *bad = NULL;
    if (h.len > VSOCK_MAX_PKT || h.len > v->chain.out_bytes - VSOCK_HDR)
        bad = "a length beyond the packet";
    else if (h.src_cid != v->cid || h.dst_cid != VSOCK_HOST_CID)
        bad = "wrong CIDs";
    else if (h.type != VSOCK_TYPE_STREAM)
        bad = "a socket type other than stream";
    else if (h.op == OP_INVALID || h.op > OP_CREDIT_REQUEST)
        bad = "an unknown op";
    else if (h.len && h.op != OP_RW)
        bad = "a payload on a control packet";
    struct conn *c = conn_find(v, h.dst_port, h.src_port);
    if (bad) {
        virtio_log(vd, "packet with %s (src %llu:%u dst %llu:%u op %u len %u): %s", bad,
                   (unsigned long long)h.src_cid, h.src_port, (unsigned long long)h.dst_cid,
                   h.dst_port, h.op, h.len, h.op == OP_RST ? "dropped" : "reset");
        if (c)
            conn_reset(v, c);
        else if (h.op != OP_RST)
            rst_queue(v, h.dst_port, h.src_port);
        return;
    }
    if (h.len && virtq_chain_from_guest(&v->chain, VSOCK_HDR, v->pkt, h.len) != h.len)
        return;     /* cannot happen: out_bytes was checked */
    if (c) {
        conn_packet(v, c, &h);
    } else if (h.op == OP_REQUEST) {
        guest_request(v, &h);
    } else if (h.op != OP_RST) {
        rst_queue(v, h.dst_port, h.src_port);   /* no such connection */
    }
}

static void tx_process(struct virtio_vsock *v)
{
    struct virtio_dev *vd = &v->vp.vdev;
    bool pushed = false;
    while (virtio_queue_pop(vd, VSOCK_TXQ, &v->chain) > 0) {
        guest_packet(v);
        virtio_queue_push(vd, VSOCK_TXQ, &v->chain, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, VSOCK_TXQ);
}

/* --- device -> guest: the receive queue ------------------------------------- */

static uint32_t peer_credit(const struct conn *c)
{
    uint32_t used = c->rx_cnt - c->peer_fwd_cnt;
    return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

/* What c can send the guest now: an op (with *len data bytes for RW), or
 * OP_INVALID for nothing. */
static uint16_t conn_next(struct virtio_vsock *v, struct conn *c, uint32_t *len)
{
    *len = 0;
    if (c->state == C_FREE || c->state == C_LINE)
        return OP_INVALID;
    if (c->pending & P_REQUEST)
        return OP_REQUEST;
    if (c->pending & P_RESPONSE)
        return OP_RESPONSE;
    if (c->state == C_OPEN && !c->guest_shut_rcv && c->to_guest.len) {
        uint32_t n = peer_credit(c);
        if (n) {
            if (n > c->to_guest.len)
                n = c->to_guest.len;
            *len = n < VSOCK_MAX_PKT ? n : VSOCK_MAX_PKT;
            return OP_RW;
        }
        if (!c->credit_asked)
            c->pending |= P_CREDIT_REQUEST;
    }
    /* end of host input: SHUTDOWN(SEND); the peer gone entirely: RCV too */
    if (c->state == C_OPEN && c->host_eof && !c->to_guest.len &&
        (!c->eof_told || (c->host_hup && !(c->shut_flags & SHUT_F_RCV)))) {
        c->eof_told = true;
        c->shut_flags = c->host_hup ? SHUT_F_RCV | SHUT_F_SEND : SHUT_F_SEND;
        c->pending |= P_SHUTDOWN;
    }
    if (c->pending & P_SHUTDOWN)
        return OP_SHUTDOWN;
    if (c->pending & P_CREDIT_REQUEST)
        return OP_CREDIT_REQUEST;
    if (c->pending & P_CREDIT_UPDATE)
        return OP_CREDIT_UPDATE;
    (void)v;
    return OP_INVALID;
}

/* Fill the popped receive chain with c's next packet. */
static uint32_t conn_emit(struct virtio_vsock *v, struct conn *c, uint16_t op, uint32_t len)
{
    struct hdr h = {
        .src_cid = VSOCK_HOST_CID, .dst_cid = v->cid, .src_port = c->local_port,
        .dst_port = c->peer_port, .type = VSOCK_TYPE_STREAM, .op = op,
        .buf_alloc = VSOCK_BUF, .fwd_cnt = c->fwd_cnt,
    };
    switch (op) {
    case OP_REQUEST: c->pending &= ~P_REQUEST; break;
    case OP_RESPONSE: c->pending &= ~P_RESPONSE; break;
    case OP_SHUTDOWN:
        c->pending &= ~P_SHUTDOWN;
        h.flags = c->shut_flags;
        if (c->shut_flags & SHUT_F_RCV) {
            /* the host side is gone: wait for the guest's RST */
            c->state = C_CLOSING;
            conn_unwatch(v, c);
            close(c->fd);
            c->fd = -1;
            c->to_host.len = c->to_host.head = 0;
        }
        break;
    case OP_CREDIT_REQUEST: c->pending &= ~P_CREDIT_REQUEST; c->credit_asked = true; break;
    case OP_CREDIT_UPDATE: c->pending &= ~P_CREDIT_UPDATE; break;
    }
    c->pending &= ~P_CREDIT_UPDATE;     /* every packet carries the credit */
    c->fwd_told = c->fwd_cnt;
    uint32_t done = 0;
    while (done < len) {
        size_t n = virtq_chain_to_guest(&v->chain, VSOCK_HDR + done,
                                        c->to_guest.buf + c->to_guest.head,
                                        vr_head_run(&c->to_guest) < len - done
                                            ? vr_head_run(&c->to_guest) : len - done);
        if (!n)
            break;
        vr_consume(&c->to_guest, (uint32_t)n);
        done += (uint32_t)n;
    }
    c->rx_cnt += done;
    h.len = done;
    uint8_t b[VSOCK_HDR];
    hdr_pack(&h, b);
    virtq_chain_to_guest(&v->chain, 0, b, VSOCK_HDR);
    if (done && c->fd >= 0) {
        conn_fill(v, c);    /* room again: read on */
        if (c->state != C_FREE)
            conn_update(v, c);
    }
    return VSOCK_HDR + done;
}

/* Send the guest what is waiting, as long as it gives receive buffers. */
static void rx_deliver(struct virtio_vsock *v)
{
    struct virtio_dev *vd = &v->vp.vdev;
    bool pushed = false;
    while (queue_ready(v, VSOCK_RXQ)) {
        struct conn *c = NULL;
        uint16_t op = OP_INVALID;
        uint32_t len = 0;
        if (!v->rst_len) {
            for (unsigned i = 0; i < VSOCK_MAX_CONNS && op == OP_INVALID; i++) {
                c = &v->conn[(v->rr + i) % VSOCK_MAX_CONNS];
                op = conn_next(v, c, &len);
            }
            if (op == OP_INVALID)
                break;
        }
        if (virtio_queue_pop(vd, VSOCK_RXQ, &v->chain) <= 0)
            break;
        uint32_t written = 0;
        if (v->chain.in_bytes < VSOCK_HDR) {
            virtio_log(vd, "receive buffer of %u bytes (a header needs %u)", v->chain.in_bytes,
                       VSOCK_HDR);
        } else if (v->rst_len) {
            const struct rst *r = &v->rst[v->rst_head];
            struct hdr h = {
                .src_cid = VSOCK_HOST_CID, .dst_cid = v->cid, .src_port = r->local_port,
                .dst_port = r->peer_port, .type = VSOCK_TYPE_STREAM, .op = OP_RST,
            };
            uint8_t b[VSOCK_HDR];
            hdr_pack(&h, b);
            written = (uint32_t)virtq_chain_to_guest(&v->chain, 0, b, VSOCK_HDR);
            v->rst_head = (v->rst_head + 1) % VSOCK_MAX_RST;
            v->rst_len--;
        } else {
            if (len > v->chain.in_bytes - VSOCK_HDR)
                len = v->chain.in_bytes - VSOCK_HDR;
            written = conn_emit(v, c, op, len);
            v->rr = (unsigned)(c - v->conn + 1) % VSOCK_MAX_CONNS;
        }
        virtio_queue_push(vd, VSOCK_RXQ, &v->chain, written);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, VSOCK_RXQ);
}

/* --- the event queue --------------------------------------------------------- */

static void event_deliver(struct virtio_vsock *v)
{
    struct virtio_dev *vd = &v->vp.vdev;
    if (!v->reset_event || !queue_ready(v, VSOCK_EVQ))
        return;
    if (virtio_queue_pop(vd, VSOCK_EVQ, &v->chain) <= 0)
        return;
    uint8_t b[4];
    put_le(b, VSOCK_EVENT_TRANSPORT_RESET, 4);
    uint32_t n = (uint32_t)virtq_chain_to_guest(&v->chain, 0, b, sizeof(b));
    if (n < sizeof(b))
        virtio_log(vd, "event buffer of %u bytes (an event needs 4)", v->chain.in_bytes);
    else
        v->reset_event = false;
    virtio_queue_push(vd, VSOCK_EVQ, &v->chain, n);
    virtio_queue_notify_used(vd, VSOCK_EVQ);
}

/* --- event loop -------------------------------------------------------------- */

static void vsock_event(void *opaque)
{
    struct virtio_vsock *v = opaque;
    struct epoll_event ev[16];
    int n = epoll_wait(v->epfd, ev, 16, 0);
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == TAG_LISTEN) {
            conn_accept(v);
            continue;
        }
        uint32_t slot = (uint32_t)tag - 1;
        if (slot >= VSOCK_MAX_CONNS)
            continue;
        struct conn *c = &v->conn[slot];
        if (c->state == C_FREE || c->gen != (uint32_t)(tag >> 32))
            continue;
        conn_event(v, c, ev[i].events);
        if (c->state != C_FREE && c->gen == (uint32_t)(tag >> 32))
            conn_update(v, c);
    }
    rx_deliver(v);
}

/* Host clients that did not finish the handshake in time: a CONNECT line
 * that does not come, a guest that does not answer the REQUEST (or takes
 * no receive buffers to get it). */
static void sweep(struct virtio_vsock *v)
{
    uint64_t now = time_now_ns();
    bool more = false;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conn[i];
        if (c->state != C_LINE && c->state != C_REQUEST)
            continue;
        if (now < c->deadline) {
            more = true;
            continue;
        }
        log_guest(&v->host_log, "virtio-vsock %s: host client %s: closed", v->path,
                  c->state == C_LINE ? "sent no CONNECT line in time"
                                     : "not answered by the guest in time");
        conn_reset(v, c);
    }
    if (!more && v->sweeping) {
        evloop_timer_set(v->timer, 0, 0);
        v->sweeping = false;
    }
}

static void vsock_timer(void *opaque)
{
    struct virtio_vsock *v = opaque;
    event_deliver(v);
    sweep(v);
    rx_deliver(v);
}

/* --- virtio device ops --------------------------------------------------------- */

static void vsock_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_vsock *v = vd->opaque;
    switch (q) {
    case VSOCK_TXQ: tx_process(v); break;
    case VSOCK_EVQ: event_deliver(v); break;
    default: break;                             /* new receive buffers */
    }
    rx_deliver(v);
}

static void close_all(struct virtio_vsock *v)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        conn_free(v, &v->conn[i]);
    v->rst_head = v->rst_len = 0;
}

/* The driver reset the device: every connection is gone. */
static void vsock_reset(struct virtio_dev *vd)
{
    struct virtio_vsock *v = vd->opaque;
    close_all(v);
    v->reset_event = false;
}

static uint32_t vsock_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_vsock *v = vd->opaque;
    uint8_t cfg[VSOCK_CFG_SIZE];
    put_le(cfg, v->cid, 8);
    uint32_t val = 0;
    for (unsigned i = 0; i < size; i++)     /* the transport bounds off + size */
        val |= (uint32_t)cfg[off + i] << (8 * i);
    return val;
}

static void vsock_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    (void)val;
    virtio_log(vd, "write of %u byte(s) to read-only config offset %u (ignored)", size, off);
}

/* Snapshots: see the design notes at the top. */
static void vsock_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_vsock *v = vd->opaque;
    snapw_u64(w, v->cid);
}

static int vsock_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                      struct err *e)
{
    (void)f;
    struct virtio_vsock *v = vd->opaque;
    uint64_t cid = snapr_u64(r);
    snapr_check(r, r->fail || cid == v->cid, "the guest CID differs from the snapshot's");
    int ret = snapr_end(r, e);
    if (ret < 0)
        return ret;
    close_all(v);
    v->reset_event = true;
    /* once the core's state is in place and the VM runs */
    v->sweeping = false;
    evloop_timer_set(v->timer, 1000000, 0);
    return 0;
}

static const struct virtio_dev_ops vsock_ops = {
    .queue_notify = vsock_queue_notify,
    .cfg_read = vsock_cfg_read,
    .cfg_write = vsock_cfg_write,
    .reset = vsock_reset,
    .save = vsock_save,
    .load = vsock_load,
};

/* --- set-up and teardown ----------------------------------------------------- */

static void vsock_teardown(struct virtio_vsock *v)
{
    close_all(v);
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        free(v->conn[i].to_host.buf);
        free(v->conn[i].to_guest.buf);
    }
    if (v->timer)
        evloop_timer_free(v->timer);
    if (v->epfd >= 0 && v->loop)
        evloop_del(v->loop, v->epfd);
    if (v->lfd >= 0)
        close(v->lfd);
    if (v->epfd >= 0)
        close(v->epfd);
    struct stat st;
    if (v->bound && lstat(v->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == v->sock_dev && st.st_ino == v->sock_ino)
        unlink(v->path);
    free(v);
}

static void vsock_free(struct virtio_pci *vp)
{
    vsock_teardown(vp->vdev.opaque);
}

/* Whether a listener accepts connections on the unix socket at addr. */
static int socket_live(const struct sockaddr_un *addr, bool *live)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : -errno;
    close(fd);
    *live = ret == 0 || ret == -EAGAIN || ret == -EINPROGRESS;
    return *live || ret == -ECONNREFUSED ? 0 : ret;
}

static int socket_open(struct virtio_vsock *v, struct err *e)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    const char *path = v->path;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    v->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->lfd < 0)
        return err_set(e, -errno, "virtio-vsock: socket: %s", strerror(errno));
    for (unsigned attempt = 0;; attempt++) {
        if (bind(v->lfd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
            break;
        int err = errno;
        if (err != EADDRINUSE || attempt)
            return err_set(e, -err, "virtio-vsock: cannot create socket '%s': %s", path,
                           strerror(err));
        struct stat st;
        if (lstat(path, &st) < 0)
            return err_set(e, -errno, "virtio-vsock: cannot create socket '%s': %s", path,
                           strerror(errno));
        if (!S_ISSOCK(st.st_mode))
            return err_set(e, -EEXIST,
                           "virtio-vsock: '%s' exists and is not a socket (not replacing it)",
                           path);
        bool live = false;
        int ret = socket_live(&addr, &live);
        if (ret < 0)
            return err_set(e, ret, "virtio-vsock: cannot probe existing socket '%s': %s",
                           path, strerror(-ret));
        if (live)
            return err_set(e, -EADDRINUSE,
                           "virtio-vsock: socket '%s' is in use by another process", path);
        if (unlink(path) < 0 && errno != ENOENT)
            return err_set(e, -errno, "virtio-vsock: cannot remove stale socket '%s': %s",
                           path, strerror(errno));
        log_info("virtio-vsock: replacing stale socket %s", path);
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        v->bound = true;
        v->sock_dev = st.st_dev;
        v->sock_ino = st.st_ino;
    }
    if (listen(v->lfd, 16) < 0)
        return err_set(e, -errno, "virtio-vsock: listen on '%s': %s", path, strerror(errno));
    v->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (v->epfd < 0)
        return err_set(e, -errno, "virtio-vsock: epoll_create1: %s", strerror(errno));
    listen_watch(v, true);
    if (!v->lfd_watched)
        return err_set(e, -errno, "virtio-vsock: epoll_ctl: %s", strerror(errno));
    v->timer = evloop_timer_new(v->loop, true, vsock_timer, v, e);
    if (!v->timer)
        return -ENOMEM;
    int ret = evloop_add(v->loop, v->epfd, vsock_event, v, e);
    if (ret < 0) {
        close(v->epfd);         /* not registered: keep teardown from evloop_del */
        v->epfd = -1;
        return ret;
    }
    log_info("virtio-vsock: guest CID %llu, listening on %s", (unsigned long long)v->cid, path);
    return 0;
}

#define VSOCK_OPTS_HELP "cid=N (3 or more), uds=PATH"

int virtio_vsock_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    char item[PATH_MAX], uds[PATH_MAX] = "";
    uint64_t cid = 0;
    bool have_cid = false;
    int ret;
    const char *p = opts;
    while ((ret = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "cid")) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = val && *val >= '0' && *val <= '9' ? strtoull(val, &end, 0)
                                                                      : 0;
            if (!end || *end || errno || n < 3 || n > 0xfffffffeull)
                return err_set(e, -EINVAL, "virtio-vsock: cid=%s: expected a number from 3 "
                               "to 4294967294", val ? val : "");
            if (have_cid)
                return err_set(e, -EINVAL, "virtio-vsock: cid= given twice");
            cid = n;
            have_cid = true;
        } else if (!strcmp(item, "uds")) {
            if (!val || !*val)
                return err_set(e, -EINVAL, "virtio-vsock: uds= needs a path (uds=PATH)");
            if (*uds)
                return err_set(e, -EINVAL, "virtio-vsock: uds= given twice");
            memcpy(uds, val, strlen(val) + 1);
        } else {
            return err_set(e, -EINVAL, "virtio-vsock: unknown option '%s' (options: "
                           VSOCK_OPTS_HELP ")", item);
        }
    }
    if (ret < 0)
        return ret;
    if (!have_cid || !*uds)
        return err_set(e, -EINVAL, "virtio-vsock needs " VSOCK_OPTS_HELP);
    /* PATH_<port> must fit too: 11 bytes more */
    if (strlen(uds) + 11 >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return err_set(e, -ENAMETOOLONG, "virtio-vsock: uds path '%s' is too long (at most "
                       "%zu bytes, to leave room for _PORT)", uds,
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 12);
    if (!h->loop)
        return err_set(e, -EINVAL, "virtio-vsock needs the VM's event loop");

    struct virtio_vsock *v = calloc(1, sizeof(*v));
    if (!v)
        return err_set(e, -ENOMEM, "virtio-vsock: out of memory");
    v->lfd = v->epfd = -1;
    v->loop = h->loop;
    v->cid = cid;
    v->next_port = VSOCK_LOCAL_PORT_BASE;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        v->conn[i].fd = -1;
    memcpy(v->path, uds, strlen(uds) + 1);
    ret = socket_open(v, e);
    if (ret < 0)
        goto fail;
    virtio_dev_init(&v->vp.vdev, "virtio-vsock", VIRTIO_ID_VSOCK, 0, VSOCK_NQUEUES,
                    VSOCK_QUEUE_SIZE, VSOCK_CFG_SIZE, h->mem, &vsock_ops, v);
    if ((ret = virtio_pci_init(&v->vp, PCI_CLASS_COMMUNICATION_OTHER, vsock_free, e)) < 0 ||
        (ret = pci_bus_plug(h->pb, &v->vp.pci, e)) < 0)
        goto fail;
    return 0;
fail:
    vsock_teardown(v);
    return ret;
}
