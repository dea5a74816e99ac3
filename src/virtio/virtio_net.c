/* virtio-net (virtio spec 5.1): a network card whose frames go to a host
 * backend (net/net.h): user-mode NAT through libslirp today.
 *
 *   --device virtio-net[,net=user][,mac=52:54:00:12:34:56][,restrict=on]
 *                      [,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *   --device virtio-net,net=private,name=NETWORK[,mac=...]   (net/switch.h)
 *   --device virtio-net,net=tap,ifname=TAP[,mac=...]          (net/tap.c)
 *   either with [,allow=|deny=PROTO[:PORTS[:CIDR]]]...   (net/firewall.h)
 *   and [,rx_bps=N][,tx_bps=N][,rx_pps=N][,tx_pps=N] (+ _burst=, _refill=)
 *
 * Device
 * - One receiveq (0) and one transmitq (1), no control queue.  Offered:
 *   VIRTIO_NET_F_MAC (config mac: mac=, or 52:54:00:12:34:XX with XX =
 *   0x56 + the PCI slot, stable from run to run), VIRTIO_NET_F_STATUS (link
 *   always up), VIRTIO_NET_F_MTU (1500, what the NAT is set up for),
 *   VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_CSUM and VIRTIO_NET_F_GUEST_CSUM.
 *   Config space: mac[6], status, max_virtqueue_pairs (1), mtu: 12 bytes,
 *   read-only (writes are logged and ignored).
 * - Offloads, what was chosen.  libslirp takes whole frames with correct
 *   checksums and hands out frames with correct checksums, up to the MTU.
 *   So: CSUM (the driver may leave a TCP/UDP checksum for the device) is
 *   offered and done here, in software, before the frame reaches the
 *   backend: the ones' complement sum from csum_start to the end of the
 *   frame is stored at csum_start + csum_offset, both checked against the
 *   frame.  GUEST_CSUM is offered and every received frame carries
 *   DATA_VALID: slirp builds its frames' checksums itself, so the guest
 *   need not verify them again (on the interpreted riscv64 CPU this is
 *   real time saved).  No segmentation offload (HOST_TSO/UFO, GUEST_TSO):
 *   frames are at most NET_MAX_FRAME bytes both ways, a GSO request from
 *   the driver is refused (the frame is dropped).
 * - Header: with VERSION_1 it is always the 12-byte virtio_net_hdr_v1
 *   (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
 *   num_buffers), also without MRG_RXBUF.
 * - Transmit: a kick takes every chain, checks it (12-byte header plus an
 *   Ethernet frame of 14..NET_MAX_FRAME bytes; no GSO; a sane NEEDS_CSUM),
 *   copies the frame into one buffer, completes the checksum if asked and
 *   gives it to the backend; the chain completes at once (written 0).  A
 *   bad chain is dropped alone (counted, one rate-limited log line); the
 *   queue goes on.  Then the backend's flush, once per kick.
 * - Receive: frames from the backend go straight into guest buffers when
 *   there are any.  With MRG_RXBUF a frame may span several chains (the
 *   header's num_buffers says how many); without it one chain must hold
 *   header + frame.  When the buffers run out in the middle of a frame, the
 *   chains taken for it are put back (the avail index is rewound, as
 *   QEMU's virtqueue_unpop; they are taken and written again later) and
 *   the frame waits.  Waiting frames form a bounded FIFO (NET_RX_PENDING
 *   frames); beyond it frames are dropped and counted.  The next receiveq
 *   kick (the driver added buffers) delivers the FIFO in order.  A frame
 *   that cannot fit even into a full ring, or (without MRG_RXBUF) a chain
 *   too small for the frame, is dropped and counted: it would otherwise
 *   block the FIFO forever.  Frames that arrive while the driver is not
 *   running (before DRIVER_OK, after a reset, bus mastering off) are
 *   dropped; a reset drops the FIFO.
 * - Firewall: with allow=/deny= rules, every frame from the backend is
 *   judged (net_fw_inbound) before it is queued for the guest, and every
 *   frame the guest sends is shown to net_fw_outbound (which remembers UDP
 *   flows so answers pass) before it reaches the backend.  Both sides of
 *   the device thus enforce the interface's policy whatever the backend.
 * - Rate limits (core/ratelimit.h): a transmit limiter charges each frame
 *   its length and one packet before it is popped for good: a refused
 *   chain goes back to the ring (avail index rewound) and transmission
 *   stops until the limiter's timer resumes it.  A receive limiter is
 *   asked before each waiting frame is written into guest buffers: a
 *   refused frame stays at the head of the FIFO, exactly as when the guest
 *   has no buffers (frames beyond the FIFO are dropped, and a NAT's TCP
 *   retransmits).  Unlimited directions have no limiter (a NULL test).
 * - Counters (tx/rx frames, drops by reason) are logged with -v at
 *   teardown.
 *
 * Threads: none.  Kicks run on the device's thread; the backend delivers
 * frames from the VM's event loop, which runs in the same device context
 * (core/evloop.h).  No locks.
 *
 * What can fail: option parsing and backend set-up (create returns an
 * error with a one-line message); nothing at run time but the guest's own
 * frames, dropped alone, or its rings (the core's NEEDS_RESET). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/opts.h"
#include "core/ratelimit.h"
#include "core/snapshot.h"
#include "core/vm.h"
#include "net/firewall.h"
#include "net/net.h"
#include "net/switch.h"
#include "virtio/virtio_pci.h"

#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_NQUEUES 2
#define NET_RX_PENDING 256          /* frames waiting for receive buffers */
#define NET_HDR_LEN 12              /* struct virtio_net_hdr_v1 */
#define NET_CFG_SIZE 12
#define PCI_CLASS_NETWORK_ETHERNET 0x020000

/* feature bits */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* header */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_S_LINK_UP 1

struct rx_frame {
    uint8_t *data;
    size_t len;
};

struct virtio_net {
    struct virtio_pci vp;
    struct net_backend *be;
    uint8_t mac[6];
    bool mac_given;
    struct net_fw *fw;          /* allow=/deny= rules, or NULL */
    /* frames waiting for receive buffers (a FIFO ring) */
    struct rx_frame pending[NET_RX_PENDING];
    unsigned pend_head, pend_len;
    /* receive: the chains taken for the frame being written */
    uint16_t rx_heads[NET_QUEUE_SIZE];
    uint32_t rx_lens[NET_QUEUE_SIZE];
    /* counters */
    uint64_t tx_frames, tx_bad, rx_frames, rx_drop_full, rx_drop_nodriver, rx_drop_nofit;
    uint64_t rx_drop_fw;
    uint64_t tx_bytes, rx_bytes;
    struct rl *rl[2];           /* VM_LIMIT_RX, VM_LIMIT_TX; NULL: unlimited */
    struct evloop *loop;
    uint8_t tx_buf[NET_MAX_FRAME];
    /* Scratch chains.  Separate for tx and rx: a frame sent to the backend
     * can make it deliver frames to the guest before the tx chain is
     * returned. */
    struct virtq_chain chain;   /* transmit */
    struct virtq_chain first;   /* the first chain of a frame being received */
    struct virtq_chain rx_chain;/* its further chains (MRG_RXBUF) */
};

/* --- helpers ---------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static bool queue_ready(struct virtio_net *n, unsigned q)
{
    const struct virtio_dev *vd = &n->vp.vdev;
    const struct virtq *vq = &vd->vq[q];
    return virtio_live(vd) && vq->enabled && !vq->broken && pci_bus_master(&n->vp.pci);
}

/* Ones' complement sum over p[0..len) (RFC 1071), as a 16-bit checksum. */
static uint16_t inet_csum(const uint8_t *p, size_t len)
{
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* --- transmit --------------------------------------------------------------- */

/* Check one transmit chain and hand its frame to the backend; false (with
 * the reason logged) drops it. */
static bool tx_one(struct virtio_net *n, const struct virtq_chain *c)
{
    struct virtio_dev *vd = &n->vp.vdev;
    uint8_t hdr[NET_HDR_LEN];
    if (c->nin) {
        virtio_log(vd, "transmit chain with a device-writable part (frame dropped)");
        return false;
    }
    if (c->out_bytes < NET_HDR_LEN + NET_ETH_HLEN || c->out_bytes > NET_HDR_LEN + NET_MAX_FRAME) {
        virtio_log(vd, "transmit chain of %u bytes (needs %u..%u: header + frame; dropped)",
                   c->out_bytes, NET_HDR_LEN + NET_ETH_HLEN, NET_HDR_LEN + NET_MAX_FRAME);
        return false;
    }
    virtq_chain_from_guest(c, 0, hdr, sizeof(hdr));
    size_t len = c->out_bytes - NET_HDR_LEN;
    if (virtq_chain_from_guest(c, NET_HDR_LEN, n->tx_buf, len) != len)
        return false;           /* cannot happen: out_bytes was counted */
    if (hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
        virtio_log(vd, "transmit with gso_type %u (no segmentation offload offered; dropped)",
                   hdr[1]);
        return false;
    }
    if (hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        uint16_t start = get16(hdr + 6), off = get16(hdr + 8);
        if (!virtio_has_feature(vd, VIRTIO_NET_F_CSUM)) {
            virtio_log(vd, "transmit with NEEDS_CSUM, VIRTIO_NET_F_CSUM not negotiated "
                       "(dropped)");
            return false;
        }
        if ((size_t)start + off + 2 > len) {
            virtio_log(vd, "transmit checksum at %u + %u outside the %zu-byte frame (dropped)",
                       start, off, len);
            return false;
        }
        /* the driver left the pseudo-header sum in the field: sum over it */
        uint16_t sum = inet_csum(n->tx_buf + start, len - start);
        n->tx_buf[start + off] = (uint8_t)(sum >> 8);
        n->tx_buf[start + off + 1] = (uint8_t)sum;
    }
    if (n->fw)
        net_fw_outbound(n->fw, n->tx_buf, len, time_now_ns());
    n->be->ops->send(n->be, n->tx_buf, len);
    return true;
}

static void net_tx(struct virtio_net *n)
{
    struct virtio_dev *vd = &n->vp.vdev;
    bool pushed = false;
    while (virtio_queue_pop(vd, NET_TXQ, &n->chain) > 0) {
        if (n->rl[VM_LIMIT_TX] &&
            !rl_consume(n->rl[VM_LIMIT_TX], n->chain.out_bytes > NET_HDR_LEN
                        ? n->chain.out_bytes - NET_HDR_LEN : 0, 1)) {
            vd->vq[NET_TXQ].last_avail--;       /* sent when the limiter resumes */
            break;
        }
        if (tx_one(n, &n->chain)) {
            n->tx_frames++;
            n->tx_bytes += n->chain.out_bytes - NET_HDR_LEN;
        } else {
            n->tx_bad++;
        }
        virtio_queue_push(vd, NET_TXQ, &n->chain, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, NET_TXQ);
    if (n->be->ops->flush)
        n->be->ops->flush(n->be);
}

/* --- receive ---------------------------------------------------------------- */

/* Put the last `count` chains taken from the receiveq back (as QEMU's
 * virtqueue_unpop): they are taken again, and rewritten, for a later
 * frame.  With EVENT_IDX the failed pop before this has already asked for
 * a kick at the driver's current index, which stays right. */
static void rx_unpop(struct virtio_net *n, unsigned count)
{
    n->vp.vdev.vq[NET_RXQ].last_avail -= (uint16_t)count;
}

enum rx_result { RX_DONE, RX_WAIT, RX_DROP };

/* Write one frame into receive buffers. */
static enum rx_result rx_write(struct virtio_net *n, const uint8_t *frame, size_t len)
{
    struct virtio_dev *vd = &n->vp.vdev;
    struct virtq *vq = &vd->vq[NET_RXQ];
    bool mrg = virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
    size_t total = NET_HDR_LEN + len, done = 0;
    unsigned nbuf = 0;

    /* the first chain must hold the header */
    for (;;) {
        int r = virtio_queue_pop(vd, NET_RXQ, &n->first);
        if (r <= 0)
            return r < 0 ? RX_DROP : RX_WAIT;
        if (n->first.in_bytes >= NET_HDR_LEN)
            break;
        virtio_log(vd, "receive buffer of %u writable bytes (needs at least %u; returned "
                   "unused)", n->first.in_bytes, NET_HDR_LEN);
        virtio_queue_push(vd, NET_RXQ, &n->first, 0);
    }
    if (!mrg && n->first.in_bytes < total) {
        virtio_log(vd, "receive buffer of %u bytes too small for a %zu-byte frame "
                   "(without VIRTIO_NET_F_MRG_RXBUF; frame dropped)", n->first.in_bytes, len);
        rx_unpop(n, 1);
        return RX_DROP;
    }
    /* frame data after the header in the first chain */
    size_t room = n->first.in_bytes - NET_HDR_LEN;
    size_t part = room < len ? room : len;
    virtq_chain_to_guest(&n->first, NET_HDR_LEN, frame, part);
    done = part;
    n->rx_heads[0] = n->first.head;
    n->rx_lens[0] = (uint32_t)(NET_HDR_LEN + part);
    nbuf = 1;
    while (done < len) {
        if (nbuf == vq->size) {
            /* the whole ring cannot hold it */
            virtio_log(vd, "receive buffers (%u of them) too small for a %zu-byte frame "
                       "(dropped)", nbuf, len);
            rx_unpop(n, nbuf);
            return RX_DROP;
        }
        int r = virtio_queue_pop(vd, NET_RXQ, &n->rx_chain);
        if (r < 0)
            return RX_DROP;             /* queue broken: the driver must reset */
        if (r == 0) {
            rx_unpop(n, nbuf);
            return RX_WAIT;
        }
        part = n->rx_chain.in_bytes < len - done ? n->rx_chain.in_bytes : len - done;
        virtq_chain_to_guest(&n->rx_chain, 0, frame + done, part);
        done += part;
        n->rx_heads[nbuf] = n->rx_chain.head;
        n->rx_lens[nbuf] = (uint32_t)part;
        nbuf++;
    }
    uint8_t hdr[NET_HDR_LEN] = { 0 };
    if (virtio_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM))
        hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
    put16(hdr + 10, (uint16_t)nbuf);
    virtq_chain_to_guest(&n->first, 0, hdr, sizeof(hdr));
    for (unsigned i = 0; i < nbuf; i++)
        virtq_push(vq, n->rx_heads[i], n->rx_lens[i]);
    return RX_DONE;
}

static void pending_drop_head(struct virtio_net *n)
{
    free(n->pending[n->pend_head].data);
    n->pending[n->pend_head].data = NULL;
    n->pend_head = (n->pend_head + 1) % NET_RX_PENDING;
    n->pend_len--;
}

static void pending_clear(struct virtio_net *n)
{
    while (n->pend_len)
        pending_drop_head(n);
    n->pend_head = 0;
}

/* Deliver waiting frames, in order, while there are buffers. */
static void rx_flush(struct virtio_net *n)
{
    while (n->pend_len && queue_ready(n, NET_RXQ)) {
        struct rx_frame *f = &n->pending[n->pend_head];
        if (n->rl[VM_LIMIT_RX] && !rl_consume(n->rl[VM_LIMIT_RX], f->len, 1))
            break;              /* the limiter's timer calls rx_flush again */
        enum rx_result r = rx_write(n, f->data, f->len);
        if (r == RX_WAIT)
            break;
        if (r == RX_DONE) {
            n->rx_frames++;
            n->rx_bytes += f->len;
        } else
            n->rx_drop_nofit++;
        pending_drop_head(n);
    }
    /* also for buffers returned unused; a no-op when nothing was pushed */
    if (queue_ready(n, NET_RXQ))
        virtio_queue_notify_used(&n->vp.vdev, NET_RXQ);
}

/* The backend has a frame for the guest. */
static void net_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    if (!queue_ready(n, NET_RXQ)) {
        n->rx_drop_nodriver++;
        return;
    }
    if (len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
        n->rx_drop_nofit++;
        return;
    }
    if (n->fw && !net_fw_inbound(n->fw, frame, len, time_now_ns())) {
        n->rx_drop_fw++;
        return;
    }
    if (n->pend_len == NET_RX_PENDING) {
        n->rx_drop_full++;
        return;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        n->rx_drop_full++;
        return;
    }
    memcpy(copy, frame, len);
    n->pending[(n->pend_head + n->pend_len) % NET_RX_PENDING] =
        (struct rx_frame){ .data = copy, .len = len };
    n->pend_len++;
    rx_flush(n);
}

/* --- rate limits ------------------------------------------------------------- */

static void net_tx(struct virtio_net *n);

static void net_resume_rx(void *opaque)
{
    rx_flush(opaque);
}

static void net_resume_tx(void *opaque)
{
    struct virtio_net *n = opaque;
    if (queue_ready(n, NET_TXQ))
        net_tx(n);
}

static void (*const net_resume[2])(void *) = { net_resume_rx, net_resume_tx };

/* Set direction which's limit (set-up, or vm_set_limit in device context). */
static int net_set_limit(void *opaque, unsigned which, const struct rl_config *c, struct err *e)
{
    struct virtio_net *n = opaque;
    if (which > VM_LIMIT_TX)
        return err_set(e, -EINVAL, "no such direction");
    if (!rl_config_on(c)) {
        bool was = n->rl[which] != NULL;
        rl_free(n->rl[which]);
        n->rl[which] = NULL;
        if (was)
            net_resume[which](n);
        return 0;
    }
    if (n->rl[which]) {
        rl_update(n->rl[which], c);
        return 0;
    }
    n->rl[which] = rl_new(n->loop, c, net_resume[which], n, e);
    return n->rl[which] ? 0 : -ENOMEM;
}

/* --- virtio device ops --------------------------------------------------------- */

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_net *n = vd->opaque;
    if (q == NET_TXQ)
        net_tx(n);
    else if (q == NET_RXQ)
        rx_flush(n);            /* new receive buffers */
}

static void net_reset(struct virtio_dev *vd)
{
    pending_clear(vd->opaque);
}

static uint32_t net_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_net *n = vd->opaque;
    uint8_t cfg[NET_CFG_SIZE];
    memcpy(cfg, n->mac, 6);
    put16(cfg + 6, VIRTIO_NET_S_LINK_UP);
    put16(cfg + 8, 1);                  /* max_virtqueue_pairs */
    put16(cfg + 10, NET_MTU);
    uint32_t v = 0;
    for (unsigned i = 0; i < size && off + i < NET_CFG_SIZE; i++)
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void net_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    (void)val;
    virtio_log(vd, "write of %u byte(s) to read-only config offset %u (ignored)", size, off);
}

/* --- snapshots ------------------------------------------------------------------ */

/* Nothing to settle: a receive or transmit chain is never held between two
 * calls into the device (a frame waiting for buffers has put its chains
 * back), so no quiesce.  Saved after the core: the MAC (6 bytes), u32
 * frames waiting for receive buffers and each as u32 length + bytes, str
 * the backend's kind, bool whether the backend's state follows, then that
 * (net_backend_ops.save).  Counters are metrics, not guest state. */
static void net_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_net *n = vd->opaque;
    snapw_bytes(w, n->mac, 6);
    snapw_u32(w, n->pend_len);
    for (unsigned i = 0; i < n->pend_len; i++) {
        const struct rx_frame *f = &n->pending[(n->pend_head + i) % NET_RX_PENDING];
        snapw_u32(w, (uint32_t)f->len);
        snapw_bytes(w, f->data, f->len);
    }
    snapw_str(w, n->be->name);
    snapw_bool(w, n->be->ops->save != NULL);
    if (n->be->ops->save)
        n->be->ops->save(n->be, w);
}

/* A restored VM may have another MAC (a clone's): the device then offers
 * its own, the guest's driver keeps the one it read until it probes again. */
static int net_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                    struct err *e)
{
    (void)f;
    struct virtio_net *n = vd->opaque;
    uint8_t mac[6];
    struct rx_frame frames[NET_RX_PENDING];
    unsigned nframes = 0;
    char *kind = NULL;
    snapr_bytes(r, mac, 6);
    uint32_t pend = snapr_u32(r);
    if (snapr_check(r, r->fail || pend <= NET_RX_PENDING, "too many waiting frames"))
        for (; nframes < pend && !r->fail && !r->bad[0]; nframes++) {
            uint32_t len = snapr_u32(r);
            frames[nframes] = (struct rx_frame){ NULL, 0 };
            if (!snapr_check(r, r->fail || (len >= NET_ETH_HLEN && len <= NET_MAX_FRAME),
                             "a waiting frame of a bad length") || r->fail)
                break;
            uint8_t *p = malloc(len);
            if (!snapr_check(r, p != NULL, "out of memory"))
                break;
            snapr_bytes(r, p, len);
            frames[nframes] = (struct rx_frame){ p, len };
        }
    snapr_str(r, 32, &kind);
    bool has_state = snapr_bool(r);
    if (!r->fail && !r->bad[0] && (!kind || strcmp(kind, n->be->name))) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the snapshot's network backend is net=%.20s, this VM's "
                 "net=%.20s", kind ? kind : "?", n->be->name);
        snapr_check(r, false, msg);
    }
    if (!r->fail && !r->bad[0] &&
        snapr_check(r, has_state == (n->be->ops->load != NULL), "backend state mismatch") &&
        has_state)
        n->be->ops->load(n->be, r);
    free(kind);
    int ret = snapr_end(r, e);
    struct err be_err;
    if (ret == 0 && has_state && (ret = n->be->ops->restore(n->be, &be_err)) < 0)
        ret = err_set(e, ret, "%s: %s", vd->name, be_err.msg);
    if (ret < 0) {
        for (unsigned i = 0; i < nframes; i++)
            free(frames[i].data);
        return ret;
    }
    if (memcmp(mac, n->mac, 6))
        log_info("%s: the snapshot's MAC was %02x:%02x:%02x:%02x:%02x:%02x, this device has "
                 "%02x:%02x:%02x:%02x:%02x:%02x", vd->name, mac[0], mac[1], mac[2], mac[3],
                 mac[4], mac[5], n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
                 n->mac[5]);
    pending_clear(n);
    for (unsigned i = 0; i < nframes; i++)
        n->pending[i] = frames[i];
    n->pend_len = nframes;
    for (unsigned i = 0; i < 2; i++)
        if (n->rl[i])
            rl_kick(n->rl[i]);  /* what they had refused is still waiting */
    return 0;
}

static const struct virtio_dev_ops net_ops = {
    .queue_notify = net_queue_notify,
    .cfg_read = net_cfg_read,
    .cfg_write = net_cfg_write,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
};

/* --- set-up and teardown --------------------------------------------------------- */

static void net_teardown(struct virtio_net *n)
{
    if (n->tx_frames || n->rx_frames || n->tx_bad || n->rx_drop_full || n->rx_drop_nofit)
        log_info("virtio-net: %llu frame(s) sent, %llu dropped as malformed; %llu received, "
                 "%llu dropped for want of receive buffers, %llu too large for them, %llu "
                 "while the driver was not running",
                 (unsigned long long)n->tx_frames, (unsigned long long)n->tx_bad,
                 (unsigned long long)n->rx_frames, (unsigned long long)n->rx_drop_full,
                 (unsigned long long)n->rx_drop_nofit, (unsigned long long)n->rx_drop_nodriver);
    if (n->rx_drop_fw)
        log_info("virtio-net: %llu frame(s) for the guest dropped by allow=/deny= rules",
                 (unsigned long long)n->rx_drop_fw);
    net_backend_free(n->be);
    pending_clear(n);
    rl_free(n->rl[0]);
    rl_free(n->rl[1]);
    free(n->fw);
    free(n);
}

static void net_free(struct virtio_pci *vp)
{
    net_teardown(vp->vdev.opaque);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;
    if (strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &end) != 6)
        return -1;
    for (unsigned i = 0; i < 6; i++) {
        if (s[3 * i + 2] != ':' && i < 5)
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

/* The device on backend be (taken over, freed on failure too), with the
 * firewall fw (copied; NULL or no rules: none). */
static void net_stats_get(void *opaque, struct vm_dev_stats *o)
{
    const struct virtio_net *n = opaque;
    o->rx_bytes = n->rx_bytes;
    o->tx_bytes = n->tx_bytes;
    o->rx_packets = n->rx_frames;
    o->tx_packets = n->tx_frames;
    o->rx_drops = n->rx_drop_full + n->rx_drop_nodriver + n->rx_drop_nofit + n->rx_drop_fw;
    o->tx_drops = n->tx_bad;
}

static int net_create(const struct virtio_host *h, struct net_backend *be, const uint8_t *mac,
                      const struct net_fw *fw, const struct rl_config *lim, struct err *e)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n) {
        net_backend_free(be);
        return err_set(e, -ENOMEM, "virtio-net: out of memory");
    }
    if (fw && fw->nrules) {
        n->fw = malloc(sizeof(*n->fw));
        if (!n->fw) {
            free(n);
            net_backend_free(be);
            return err_set(e, -ENOMEM, "virtio-net: out of memory");
        }
        *n->fw = *fw;
    }
    n->be = be;
    n->loop = h->loop;
    for (unsigned i = 0; lim && i < 2; i++)
        if (rl_config_on(&lim[i]) && net_set_limit(n, i, &lim[i], e) < 0) {
            rl_free(n->rl[0]);
            free(n->fw);
            free(n);
            net_backend_free(be);
            return -ENOMEM;
        }
    be->receive = net_receive;
    be->opaque = n;
    if (mac) {
        memcpy(n->mac, mac, 6);
        n->mac_given = true;
    }
    virtio_dev_init(&n->vp.vdev, "virtio-net", VIRTIO_ID_NET,
                    1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM |
                    1ull << VIRTIO_NET_F_MTU | 1ull << VIRTIO_NET_F_MAC |
                    1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS,
                    NET_NQUEUES, NET_QUEUE_SIZE, NET_CFG_SIZE, h->mem, &net_ops, n);
    int ret;
    if ((ret = virtio_pci_init(&n->vp, PCI_CLASS_NETWORK_ETHERNET, net_free, e)) < 0) {
        net_teardown(n);
        return ret;
    }
    if ((ret = pci_bus_plug(h->pb, &n->vp.pci, e)) < 0) {
        net_teardown(n);
        return ret;
    }
    if (!n->mac_given) {
        /* QEMU's first NIC is 52:54:00:12:34:56: the same family, per slot */
        static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
        memcpy(n->mac, base, 6);
        n->mac[5] = (uint8_t)(0x56 + n->vp.pci.slot);
    }
    if (h->vm) {
        vm_add_stat_source(h->vm, VM_DEV_NET, net_stats_get, n);
        vm_set_limit_fn(h->vm, n, net_set_limit);
    }
    return 0;
}

int virtio_net_create_backend(const struct virtio_host *h, struct net_backend *be,
                              const uint8_t *mac, struct err *e)
{
    return net_create(h, be, mac, NULL, NULL, e);
}

#define NET_OPTS_HELP "net=user|private|tap, name=NETWORK, ifname=TAP, mac=XX:XX:XX:XX:XX:XX, " \
    "restrict=on|off, hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, " \
    "allow=|deny=PROTO[:PORTS[:CIDR]], rx_bps=|tx_bps=BYTES, rx_pps=|tx_pps=N (and " \
    "_burst=, _refill=MS)"

int virtio_net_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    struct net_user_config cfg = { 0 };
    struct net_fw fw = { 0 };
    struct rl_config lim[2] = { 0 };
    uint8_t mac[6];
    bool have_mac = false, private_ = false, tap = false;
    char name[NET_SWITCH_NAME_MAX + 1] = "", ifname[64] = "";
    char item[256];
    const char *p = opts;
    int ret;
    while ((ret = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "net")) {
            private_ = val && !strcmp(val, "private");
            tap = val && !strcmp(val, "tap");
            if (!val || (strcmp(val, "user") && !private_ && !tap))
                return err_set(e, -EINVAL, "virtio-net: net=%s: unknown backend (net=user, "
                               "net=private or net=tap)", val ? val : "");
        } else if (!strcmp(item, "ifname")) {
            if (!val || !*val || strlen(val) >= sizeof(ifname))
                return err_set(e, -EINVAL, "virtio-net: ifname=%s: an interface name",
                               val ? val : "");
            snprintf(ifname, sizeof(ifname), "%s", val);
        } else if (!strcmp(item, "name")) {
            struct err ne;
            if ((ret = net_switch_name_check(val ? val : "", &ne)) < 0)
                return err_set(e, ret, "virtio-net: name=: %s", ne.msg);
            snprintf(name, sizeof(name), "%s", val);
        } else if (!strcmp(item, "mac")) {
            if (!val || parse_mac(val, mac) < 0)
                return err_set(e, -EINVAL, "virtio-net: mac=%s: expected six hex bytes "
                               "XX:XX:XX:XX:XX:XX", val ? val : "");
            if (mac[0] & 1)
                return err_set(e, -EINVAL, "virtio-net: mac=%s is a multicast address "
                               "(the first byte must be even)", val);
            if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
                return err_set(e, -EINVAL, "virtio-net: mac=%s: the zero address", val);
            have_mac = true;
        } else if (!strcmp(item, "restrict")) {
            int b = opts_bool(val);
            if (b < 0)
                return err_set(e, -EINVAL, "virtio-net: restrict=%s: expected on or off",
                               val ? val : "");
            cfg.restrict_ = b;
        } else if (!strcmp(item, "allow") || !strcmp(item, "deny")) {
            struct net_fw_rule r;
            struct err fe;
            if ((ret = net_fw_rule_parse(val ? val : "", item[0] == 'a', &r, &fe)) < 0 ||
                (ret = net_fw_add(&fw, &r, &fe)) < 0)
                return err_set(e, ret, "virtio-net: %s", fe.msg);
        } else if (!strcmp(item, "hostfwd")) {
            if (cfg.nfwd == NET_MAX_HOSTFWD)
                return err_set(e, -EINVAL, "virtio-net: too many hostfwd= rules (at most %d)",
                               NET_MAX_HOSTFWD);
            struct err fe;
            if ((ret = net_hostfwd_parse(val ? val : "", &cfg.fwd[cfg.nfwd], &fe)) < 0)
                return err_set(e, ret, "virtio-net: %s", fe.msg);
            for (unsigned i = 0; i < cfg.nfwd; i++)
                if (cfg.fwd[i].udp == cfg.fwd[cfg.nfwd].udp &&
                    cfg.fwd[i].host_port == cfg.fwd[cfg.nfwd].host_port &&
                    cfg.fwd[i].host_addr.s_addr == cfg.fwd[cfg.nfwd].host_addr.s_addr)
                    return err_set(e, -EINVAL, "virtio-net: hostfwd=%s: host port given twice",
                                   val);
            cfg.nfwd++;
        } else {
            struct err re;
            int rr = rl_parse_opt(&lim[VM_LIMIT_RX], "rx_", "pps", item, val, &re);
            if (rr == 0)
                rr = rl_parse_opt(&lim[VM_LIMIT_TX], "tx_", "pps", item, val, &re);
            if (rr < 0)
                return err_set(e, rr, "virtio-net: %s", re.msg);
            if (rr == 0)
                return err_set(e, -EINVAL, "virtio-net: unknown option '%s' (options: "
                               NET_OPTS_HELP ")", item);
        }
    }
    if (ret < 0)
        return ret;
    struct net_backend *be;
    struct err be_err;
    if (ifname[0] && !tap)
        return err_set(e, -EINVAL, "virtio-net: ifname= is a net=tap option");
    if (tap) {
        if (!ifname[0])
            return err_set(e, -EINVAL, "virtio-net: net=tap needs ifname=NAME (a TAP "
                           "interface)");
        if (cfg.restrict_ || cfg.nfwd || name[0])
            return err_set(e, -EINVAL, "virtio-net: restrict=, hostfwd= and name= are not "
                           "net=tap options");
        if ((ret = net_tap_new(h->loop, ifname, &be, &be_err)) < 0)
            return err_set(e, ret, "virtio-net: %s", be_err.msg);
    } else if (private_) {
        if (!name[0])
            return err_set(e, -EINVAL, "virtio-net: net=private needs name=NETWORK (the name "
                           "given to 'petrel switch')");
        if (cfg.restrict_ || cfg.nfwd)
            return err_set(e, -EINVAL, "virtio-net: restrict= and hostfwd= are net=user "
                           "options (a private network's NAT is 'petrel switch --nat')");
        if ((ret = net_private_new(h->loop, name, &be, &be_err)) < 0)
            return err_set(e, ret, "virtio-net: %s", be_err.msg);
    } else {
        if (name[0])
            return err_set(e, -EINVAL, "virtio-net: name= is a net=private option");
        if ((ret = net_slirp_new(h->loop, &cfg, &be, &be_err)) < 0)
            return err_set(e, ret, "virtio-net: %s", be_err.msg);
    }
    return net_create(h, be, have_mac ? mac : NULL, &fw, lim, e);
}
