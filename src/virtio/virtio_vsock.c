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
 * guest's driver drops its connections and reads the CID again.
 *
 * Files: the device side is here (packet headers, the transmit, receive
 * and event queues, the virtio ops, snapshots, options and create); the
 * host side is in virtio_vsock_host.c (the unix sockets: the private epoll
 * set and its handler, the connections, the CONNECT line, accept, the
 * handshake timer sweep, the listening socket's set-up and teardown);
 * virtio_vsock_priv.h has the limits, the structs and what the two share.
 * The OK line goes to the host client when the guest's RESPONSE comes
 * (conn_packet, here). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/le.h"
#include "core/opts.h"
#include "core/snapshot.h"
#include "virtio/virtio_pci.h"
#include "virtio/virtio_vsock_priv.h"

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

/* Whether the device may use queue q now (also outside a kick). */
static bool queue_ready(struct virtio_vsock *v, unsigned q)
{
    const struct virtio_dev *vd = &v->vp.vdev;
    const struct virtq *vq = &vd->vq[q];
    return virtio_live(vd) && vq->enabled && !vq->broken && pci_bus_master(&v->vp.pci);
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
    if (vsock_conn_find(v, h->dst_port, h->src_port)) {
        virtio_log(vd, "REQUEST for port %u from %u, a connection that exists: reset",
                   h->dst_port, h->src_port);
        vsock_conn_reset(v, vsock_conn_find(v, h->dst_port, h->src_port));
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
    if (fd >= 0 && (v->nconn >= VSOCK_MAX_CONNS || !(c = vsock_conn_alloc(v, fd)))) {
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
        vsock_rst_queue(v, h->dst_port, h->src_port);
        return;
    }
    c->state = C_OPEN;
    c->local_port = h->dst_port;
    c->peer_port = h->src_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pending |= P_RESPONSE;
    vsock_conn_update(v, c);
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
            vsock_conn_reset(v, c);
            return;
        }
        char ok[32];
        int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
        if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
            log_guest(&v->host_log, "virtio-vsock %s: host client went away before OK",
                      v->path);
            vsock_conn_reset(v, c);
            return;
        }
        c->state = C_OPEN;
        c->deadline = 0;
        break;
    }
    case OP_RST:
        vsock_conn_free(v, c);
        return;
    case OP_SHUTDOWN:
        if (c->state != C_OPEN && c->state != C_CLOSING)
            break;
        c->guest_shut_rcv |= (h->flags & SHUT_F_RCV) != 0;
        c->guest_shut_send |= (h->flags & SHUT_F_SEND) != 0;
        if (c->state == C_CLOSING && c->guest_shut_send) {
            vsock_conn_reset(v, c);
            return;
        }
        break;
    case OP_RW:
        if (c->state == C_CLOSING)
            break;              /* sent before our SHUTDOWN reached the guest */
        if (c->state != C_OPEN || c->guest_shut_send) {
            virtio_log(vd, "data on port %u that is not open for it: reset", c->local_port);
            vsock_conn_reset(v, c);
            return;
        }
        if (h->len > vr_room(&c->to_host)) {
            virtio_log(vd, "port %u: guest sent %u bytes with %u of credit: reset",
                       c->local_port, h->len, vr_room(&c->to_host));
            vsock_conn_reset(v, c);
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
        vsock_conn_reset(v, c);
        return;
    }
    if (c->state == C_OPEN || c->state == C_CLOSING) {
        vsock_conn_flush(v, c);
        if (c->state == C_FREE)
            return;
        vsock_conn_fill(v, c);        /* more credit, or a chance to read what waits */
    }
    if (c->state != C_FREE)
        vsock_conn_update(v, c);
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
    struct conn *c = vsock_conn_find(v, h.dst_port, h.src_port);
    if (bad) {
        virtio_log(vd, "packet with %s (src %llu:%u dst %llu:%u op %u len %u): %s", bad,
                   (unsigned long long)h.src_cid, h.src_port, (unsigned long long)h.dst_cid,
                   h.dst_port, h.op, h.len, h.op == OP_RST ? "dropped" : "reset");
        if (c)
            vsock_conn_reset(v, c);
        else if (h.op != OP_RST)
            vsock_rst_queue(v, h.dst_port, h.src_port);
        return;
    }
    if (h.len && virtq_chain_from_guest(&v->chain, VSOCK_HDR, v->pkt, h.len) != h.len)
        return;     /* cannot happen: out_bytes was checked */
    if (c) {
        conn_packet(v, c, &h);
    } else if (h.op == OP_REQUEST) {
        guest_request(v, &h);
    } else if (h.op != OP_RST) {
        vsock_rst_queue(v, h.dst_port, h.src_port);   /* no such connection */
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
            vsock_conn_unwatch(v, c);
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
        vsock_conn_fill(v, c);    /* room again: read on */
        if (c->state != C_FREE)
            vsock_conn_update(v, c);
    }
    return VSOCK_HDR + done;
}

/* Send the guest what is waiting, as long as it gives receive buffers. */
void vsock_rx_deliver(struct virtio_vsock *v)
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

void vsock_event_deliver(struct virtio_vsock *v)
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

/* --- virtio device ops --------------------------------------------------------- */

static void vsock_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_vsock *v = vd->opaque;
    switch (q) {
    case VSOCK_TXQ: tx_process(v); break;
    case VSOCK_EVQ: vsock_event_deliver(v); break;
    default: break;                             /* new receive buffers */
    }
    vsock_rx_deliver(v);
}

/* The driver reset the device: every connection is gone. */
static void vsock_reset(struct virtio_dev *vd)
{
    struct virtio_vsock *v = vd->opaque;
    vsock_close_all(v);
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
    vsock_close_all(v);
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

/* --- set-up (teardown: virtio_vsock_host.c) ---------------------------------- */

static void vsock_free(struct virtio_pci *vp)
{
    vsock_teardown(vp->vdev.opaque);
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
    ret = vsock_socket_open(v, e);
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
