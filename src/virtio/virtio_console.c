/* virtio-console (virtio spec 5.3): a second console for the guest (Linux's
 * /dev/hvc0), connected to a unix socket or a log file on the host.
 *
 *   --device virtio-console,socket=PATH     interactive: a unix stream socket
 *   --device virtio-console,file=PATH[,append=on|off]   output only, to a file
 *
 * Device
 * - One port, port 0, a console port.  Queue 0 is its receiveq (host ->
 *   guest), queue 1 its transmitq (guest -> host).  Offered:
 *   VIRTIO_CONSOLE_F_MULTIPORT with max_nr_ports = 1 (queues 2 and 3 are
 *   then the control receiveq and transmitq) and
 *   VIRTIO_CONSOLE_F_EMERG_WRITE; no F_SIZE (a socket has no window size).
 *   Config space is the spec's 12 bytes {cols, rows, max_nr_ports,
 *   emerg_wr}; cols/rows read 0, max_nr_ports 1; a write to emerg_wr emits
 *   its low byte, at any time, as the spec allows before negotiation (bare
 *   metal early consoles use it).  The other fields are read-only.
 * - Why MULTIPORT for one port: it is the only way the device learns when
 *   the driver's port is ready for input.  Without it Linux fills the
 *   receiveq while setting the port up and throws away whatever arrives
 *   before the port is connected, so input typed during boot would be lost.
 *   With it, the control protocol (spec 5.3.6.2) runs: the driver's
 *   DEVICE_READY is answered with PORT_ADD(0), its PORT_READY(0) with
 *   CONSOLE_PORT(0) (Linux then creates hvc0), and input is delivered only
 *   once the driver has sent PORT_OPEN(0, 1), until a PORT_OPEN(0, 0).
 *   Control messages for the driver wait in a short queue (CON_CTRL_PENDING)
 *   for control receive buffers.  A driver that does not accept MULTIPORT
 *   gets input as soon as it provides buffers (what its own driver then
 *   does with it during set-up is up to it).  Malformed control messages
 *   (short, another port, unknown events) are logged and ignored.
 * - Transmit chains always complete at once, inside the kick (written
 *   length 0): Linux's hvc path spins with a lock held until its buffer
 *   comes back, so holding a chain would freeze the guest behind a slow
 *   host reader.  Device-writable parts of a transmit chain are ignored.
 *
 * Socket backend
 * - Petrel creates PATH and listens on it (backlog 1).  A PATH that is a
 *   socket nobody listens on (left by a killed petrel) is replaced; one
 *   that is live, or is not a socket, is an error.  PATH is removed at
 *   teardown if it is still the socket we bound (same device + inode).
 * - One client at a time: while a client is connected the listening socket
 *   is not watched, so a second client waits in the backlog and is accepted
 *   when the first goes away.
 * - Guest -> client: bytes go into a bounded output ring (CON_OUT_BUF) that
 *   is flushed with non-blocking sends; the client socket is watched for
 *   writability only while the ring holds bytes.  What does not fit (a
 *   client that stops reading), and everything sent while no client is
 *   connected, is dropped and counted, like QEMU's server,wait=off: the
 *   guest never waits for the host.  The count is logged (-v) when a client
 *   disconnects and at teardown.
 * - Client -> guest: nothing is ever dropped.  Bytes are read into a bounded
 *   receive ring (CON_RX_BUF) only while it has room, and moved into the
 *   guest's receive buffers as the driver makes them available (after a
 *   read, and on every receiveq kick).  While the ring is full (no guest
 *   buffers, driver not loaded, device reset) the client socket is not read,
 *   so the client's writes block in the kernel's socket buffer: that is the
 *   backpressure.  Bytes a client sent before disconnecting stay in the ring
 *   and still reach the guest.
 * - Disconnects: end of input (recv returns 0) stops reading; a hang-up,
 *   error or failed send discards pending output.  The client is closed when
 *   both have happened; a client that only shut down its write side keeps
 *   receiving output until it hangs up.
 * - Event loop: the device owns a private epoll set holding the listening
 *   and client sockets, registered once with the VM's evloop (an epoll fd
 *   polls readable while any of its members is ready).  This lets the device
 *   change interest freely (EPOLLOUT while output is pending, no EPOLLIN
 *   while the receive ring is full, nothing at all while a hung-up client's
 *   remaining input is parked) without adding, removing or modifying evloop
 *   handlers from inside a handler.  Everything runs in device context: the
 *   queue kicks and the evloop handler, so no locks.
 *
 * File backend: opened O_WRONLY|O_CREAT, truncated unless append=on (as
 * QEMU's file chardev); written synchronously in the kick (a regular file
 * does not block for long).  Write errors are logged once and counted as
 * dropped bytes.  Nothing is ever received.
 *
 * Snapshots: see the section below.  Options, the backends' set-up and
 * teardown are in virtio_console_setup.c (virtio_console_priv.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/snapshot.h"
#include "virtio/virtio_console_priv.h"

/* --- rings ------------------------------------------------------------------ */

static size_t ring_room(const struct ring *r) { return r->cap - r->len; }

/* The contiguous bytes at the head. */
static size_t ring_head_run(const struct ring *r)
{
    size_t run = r->cap - r->head;
    return run < r->len ? run : r->len;
}

/* The contiguous free space after the tail. */
static uint8_t *ring_tail(const struct ring *r, size_t *run)
{
    size_t tail = (r->head + r->len) % r->cap;
    size_t n = r->cap - tail;
    *run = n < ring_room(r) ? n : ring_room(r);
    return r->buf + tail;
}

static void ring_consume(struct ring *r, size_t n)
{
    r->head = (r->head + n) % r->cap;
    r->len -= n;
    if (!r->len)
        r->head = 0;
}

/* Append up to n bytes; returns how many fitted. */
static size_t ring_put(struct ring *r, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n && ring_room(r)) {
        size_t run;
        uint8_t *t = ring_tail(r, &run);
        if (run > n - done)
            run = n - done;
        memcpy(t, p + done, run);
        r->len += run;
        done += run;
    }
    return done;
}

/* --- the private epoll set -------------------------------------------------- */

/* Register fd with `events` (0: only hang-ups and errors), or change it. */
static void watch(struct virtio_console *c, int fd, uint32_t tag, bool *watched, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.u32 = tag };
    if (epoll_ctl(c->epfd, *watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
        log_warn("virtio-console: epoll_ctl on %s socket: %s",
                 tag == TAG_LISTEN ? "the listening" : "the client", strerror(errno));
    else
        *watched = true;
}

static void unwatch(struct virtio_console *c, int fd, bool *watched)
{
    if (*watched)
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
    *watched = false;
}

/* --- output: guest -> host -------------------------------------------------- */

static void drop(struct virtio_console *c, uint64_t n)
{
    c->dropped += n;
}

void con_log_dropped(struct virtio_console *c, const char *when)
{
    if (c->dropped != c->dropped_logged)
        log_info("virtio-console %s: %llu byte(s) of guest output dropped %s", c->path,
                 (unsigned long long)(c->dropped - c->dropped_logged), when);
    c->dropped_logged = c->dropped;
}

static void file_write(struct virtio_console *c, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(c->file_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!c->file_error_logged)
                log_warn("virtio-console %s: write failed: %s (guest output dropped)", c->path,
                         w < 0 ? strerror(errno) : "nothing written");
            c->file_error_logged = true;
            drop(c, n);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Bytes the guest transmitted. */
static void con_output(struct virtio_console *c, const uint8_t *p, size_t n)
{
    if (c->file_fd >= 0) {
        file_write(c, p, n);
    } else if (c->cfd >= 0 && !c->out_dead) {
        drop(c, n - ring_put(&c->out, p, n));
    } else {
        drop(c, n);
    }
}

void con_discard_output(struct virtio_console *c)
{
    drop(c, c->out.len);
    c->out.len = c->out.head = 0;
}

/* Send what the output ring holds, without blocking. */
void con_flush(struct virtio_console *c)
{
    while (c->cfd >= 0 && !c->out_dead && c->out.len) {
        ssize_t n = send(c->cfd, c->out.buf + c->out.head, ring_head_run(&c->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            ring_consume(&c->out, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            log_info("virtio-console %s: client stopped reading: %s", c->path,
                     n < 0 ? strerror(errno) : "send returned 0");
            c->out_dead = true;
            con_discard_output(c);
        }
    }
}

/* --- input: host -> guest --------------------------------------------------- */

/* Read from the client while the receive ring has room. */
static void con_read(struct virtio_console *c)
{
    while (c->cfd >= 0 && !c->in_eof && ring_room(&c->rx)) {
        size_t run;
        uint8_t *t = ring_tail(&c->rx, &run);
        ssize_t n = recv(c->cfd, t, run, MSG_DONTWAIT);
        if (n > 0) {
            c->rx.len += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            if (n < 0)
                log_info("virtio-console %s: client read error: %s", c->path, strerror(errno));
            c->in_eof = true;
        }
    }
}

/* Whether the device may use queue q now (also outside a kick). */
static bool queue_ready(struct virtio_console *c, unsigned q)
{
    const struct virtio_dev *vd = &c->vp.vdev;
    const struct virtq *vq = &vd->vq[q];
    return virtio_live(vd) && vq->enabled && !vq->broken && pci_bus_master(&c->vp.pci);
}

static bool multiport(const struct virtio_console *c)
{
    return virtio_has_feature(&c->vp.vdev, VIRTIO_CONSOLE_F_MULTIPORT);
}

/* Whether the driver's port takes input now. */
static bool rxq_ready(struct virtio_console *c)
{
    return queue_ready(c, CON_RXQ) && (!multiport(c) || c->port_open);
}

/* Move buffered client bytes into the guest's receive buffers. */
static void rx_deliver(struct virtio_console *c)
{
    struct virtio_dev *vd = &c->vp.vdev;
    bool pushed = false;
    while (c->rx.len && rxq_ready(c) && virtio_queue_pop(vd, CON_RXQ, &c->chain) > 0) {
        size_t done = 0;
        while (c->rx.len && done < c->chain.in_bytes) {
            size_t n = virtq_chain_to_guest(&c->chain, done, c->rx.buf + c->rx.head,
                                            ring_head_run(&c->rx));
            if (!n)
                break;
            ring_consume(&c->rx, n);
            done += n;
        }
        if (!c->chain.nin)
            virtio_log(vd, "receive buffer without a device-writable part");
        virtio_queue_push(vd, CON_RXQ, &c->chain, (uint32_t)done);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, CON_RXQ);
}

/* --- client connection state -------------------------------------------------- */

static void client_close(struct virtio_console *c)
{
    unwatch(c, c->cfd, &c->cfd_watched);
    close(c->cfd);
    c->cfd = -1;
    con_discard_output(c);
    c->in_eof = c->out_dead = false;
    log_info("virtio-console %s: client disconnected", c->path);
    con_log_dropped(c, "so far");
    watch(c, c->lfd, TAG_LISTEN, &c->lfd_watched, EPOLLIN);
}

/* Bring the client's epoll interest in line with the state; close it once
 * it neither sends nor takes anything more. */
static void client_update(struct virtio_console *c)
{
    if (c->cfd < 0)
        return;
    if (c->in_eof && c->out_dead) {
        client_close(c);
        return;
    }
    uint32_t want = 0;
    if (!c->in_eof && ring_room(&c->rx))
        want |= EPOLLIN;
    if (!c->out_dead && c->out.len)
        want |= EPOLLOUT;
    /* An interest of 0 still reports a hang-up, which is what a client
     * that is still taking output needs watching for.  A hung-up client
     * with input left to read while the ring is full is parked instead:
     * its hang-up would be reported on every poll. */
    if (want || !c->out_dead) {
        if (!c->cfd_watched || c->cfd_events != want)
            watch(c, c->cfd, TAG_CLIENT, &c->cfd_watched, want);
        c->cfd_events = want;
    } else {
        unwatch(c, c->cfd, &c->cfd_watched);
    }
}

static void client_accept(struct virtio_console *c)
{
    if (c->cfd >= 0)
        return;
    int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && !c->accept_error_logged)
            log_warn("virtio-console %s: accept: %s", c->path, strerror(errno));
        c->accept_error_logged = errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
        return;
    }
    c->accept_error_logged = false;
    c->cfd = fd;
    c->in_eof = c->out_dead = false;
    c->cfd_watched = false;
    unwatch(c, c->lfd, &c->lfd_watched);
    log_info("virtio-console %s: client connected", c->path);
    client_update(c);
}

/* evloop handler: something in the private epoll set is ready. */
void con_event(void *opaque)
{
    struct virtio_console *c = opaque;
    struct epoll_event ev[2];
    int n = epoll_wait(c->epfd, ev, 2, 0);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == TAG_LISTEN) {
            client_accept(c);
            continue;
        }
        if (c->cfd < 0)
            continue;
        if (ev[i].events & EPOLLIN)
            con_read(c);
        if (ev[i].events & EPOLLOUT)
            con_flush(c);
        if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
            /* input already sent stays readable; output has nowhere to go */
            if (!c->out_dead)
                log_info("virtio-console %s: client hung up", c->path);
            c->out_dead = true;
            con_discard_output(c);
        }
    }
    rx_deliver(c);
    client_update(c);
}

/* --- control queues (MULTIPORT) ---------------------------------------------- */

/* Hand queued control messages to the driver's control receive buffers. */
static void ctrl_deliver(struct virtio_console *c)
{
    struct virtio_dev *vd = &c->vp.vdev;
    bool pushed = false;
    while (c->ctrl_len && queue_ready(c, CON_CTRL_RXQ) &&
           virtio_queue_pop(vd, CON_CTRL_RXQ, &c->chain) > 0) {
        uint32_t written = 0;
        if (c->chain.in_bytes < CTRL_MSG_SIZE) {
            virtio_log(vd, "control receive buffer of %u bytes (needs %u)", c->chain.in_bytes,
                       CTRL_MSG_SIZE);
        } else {
            const struct ctrl_msg *m = &c->ctrl[c->ctrl_head];
            uint8_t b[CTRL_MSG_SIZE];
            for (unsigned i = 0; i < 4; i++)
                b[i] = (uint8_t)(m->id >> (8 * i));
            b[4] = (uint8_t)m->event;
            b[5] = (uint8_t)(m->event >> 8);
            b[6] = (uint8_t)m->value;
            b[7] = (uint8_t)(m->value >> 8);
            written = (uint32_t)virtq_chain_to_guest(&c->chain, 0, b, sizeof(b));
            c->ctrl_head = (c->ctrl_head + 1) % CON_CTRL_PENDING;
            c->ctrl_len--;
        }
        virtio_queue_push(vd, CON_CTRL_RXQ, &c->chain, written);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, CON_CTRL_RXQ);
}

static void ctrl_send(struct virtio_console *c, uint16_t event, uint16_t value)
{
    if (c->ctrl_len == CON_CTRL_PENDING) {
        virtio_log(&c->vp.vdev, "control messages not taken by the driver: event %u dropped",
                   event);
        return;
    }
    c->ctrl[(c->ctrl_head + c->ctrl_len) % CON_CTRL_PENDING] =
        (struct ctrl_msg){ .id = 0, .event = event, .value = value };
    c->ctrl_len++;
    ctrl_deliver(c);
}

/* One control message from the driver. */
static void ctrl_handle(struct virtio_console *c, const uint8_t *b)
{
    struct virtio_dev *vd = &c->vp.vdev;
    uint32_t id = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                  (uint32_t)b[3] << 24;
    uint16_t event = (uint16_t)(b[4] | b[5] << 8), value = (uint16_t)(b[6] | b[7] << 8);
    if (event == CTRL_DEVICE_READY) {
        if (value == 1)
            ctrl_send(c, CTRL_PORT_ADD, 1);
        else
            virtio_log(vd, "driver reports device set-up failure (DEVICE_READY %u)", value);
        return;
    }
    if (id != 0) {
        virtio_log(vd, "control event %u for port %u (the device has port 0 only)", event, id);
        return;
    }
    switch (event) {
    case CTRL_PORT_READY:
        if (value == 1)
            ctrl_send(c, CTRL_CONSOLE_PORT, 1);
        else
            virtio_log(vd, "driver failed to add port 0 (PORT_READY %u)", value);
        break;
    case CTRL_PORT_OPEN:
        c->port_open = value != 0;
        if (c->port_open)
            rx_deliver(c);
        break;
    default:
        virtio_log(vd, "control event %u from the driver (ignored)", event);
        break;
    }
}

static void ctrl_tx(struct virtio_console *c)
{
    struct virtio_dev *vd = &c->vp.vdev;
    bool pushed = false;
    while (virtio_queue_pop(vd, CON_CTRL_TXQ, &c->chain) > 0) {
        uint8_t b[CTRL_MSG_SIZE];
        bool whole = virtq_chain_from_guest(&c->chain, 0, b, sizeof(b)) == sizeof(b);
        if (!whole)
            virtio_log(vd, "control message of %u bytes (needs %u)", c->chain.out_bytes,
                       CTRL_MSG_SIZE);
        /* return it before handling: a reply reuses c->chain */
        virtio_queue_push(vd, CON_CTRL_TXQ, &c->chain, 0);
        pushed = true;
        if (whole)
            ctrl_handle(c, b);
    }
    if (pushed)
        virtio_queue_notify_used(vd, CON_CTRL_TXQ);
}

/* --- virtio device ops ------------------------------------------------------- */

static void con_tx(struct virtio_console *c)
{
    struct virtio_dev *vd = &c->vp.vdev;
    bool pushed = false;
    while (virtio_queue_pop(vd, CON_TXQ, &c->chain) > 0) {
        for (unsigned i = 0; i < c->chain.nout; i++)
            con_output(c, c->chain.seg[i].p, c->chain.seg[i].len);
        if (c->chain.nin)
            virtio_log(vd, "transmit buffer with a device-writable part (ignored)");
        virtio_queue_push(vd, CON_TXQ, &c->chain, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, CON_TXQ);
    con_flush(c);
}

static void con_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_console *c = vd->opaque;
    if (q >= CON_CTRL_RXQ && !multiport(c)) {
        virtio_log(vd, "control queue %u kicked without VIRTIO_CONSOLE_F_MULTIPORT", q);
        return;
    }
    switch (q) {
    case CON_TXQ: con_tx(c); break;
    case CON_RXQ: rx_deliver(c); break;             /* new receive buffers */
    case CON_CTRL_RXQ: ctrl_deliver(c); break;
    case CON_CTRL_TXQ: ctrl_tx(c); break;
    }
    client_update(c);       /* ring room or pending output changed */
}

/* The driver reset the device: the port is gone until set up again.  Input
 * the client sent stays buffered for the next driver. */
static void con_reset(struct virtio_dev *vd)
{
    struct virtio_console *c = vd->opaque;
    c->port_open = false;
    c->ctrl_head = c->ctrl_len = 0;
}

static uint32_t con_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    (void)vd;
    /* cols 0, rows 0 (no F_SIZE), max_nr_ports 1, emerg_wr reads 0 */
    static const uint8_t cfg[CON_CFG_SIZE] = { 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)     /* the transport bounds off + size */
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void con_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_console *c = vd->opaque;
    if (off != CON_CFG_EMERG_WR) {
        virtio_log(vd, "write of %u byte(s) to read-only config offset %u (ignored)", size, off);
        return;
    }
    uint8_t ch = (uint8_t)val;
    con_output(c, &ch, 1);
    con_flush(c);
    client_update(c);
}

/* --- snapshots ----------------------------------------------------------------
 *
 * No quiesce: every chain is returned inside the call that took it (a
 * receive chain is filled and pushed in one step, even with nothing
 * written), so none is ever held.  Saved after the core: bool port open,
 * u32 control messages waiting for the driver and each as u32 id, u16
 * event, u16 value, u32 bytes of client input not yet in guest buffers and
 * the bytes.  Guest output not yet sent to a client is not saved: that
 * client's connection does not survive a restore, and output with no client
 * connected is dropped anyway. */
static void con_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_console *c = vd->opaque;
    snapw_bool(w, c->port_open);
    snapw_u32(w, c->ctrl_len);
    for (unsigned i = 0; i < c->ctrl_len; i++) {
        const struct ctrl_msg *m = &c->ctrl[(c->ctrl_head + i) % CON_CTRL_PENDING];
        snapw_u32(w, m->id);
        snapw_u16(w, m->event);
        snapw_u16(w, m->value);
    }
    snapw_u32(w, (uint32_t)c->rx.len);
    if (c->rx.len) {
        size_t run = ring_head_run(&c->rx);
        snapw_bytes(w, c->rx.buf + c->rx.head, run);
        snapw_bytes(w, c->rx.buf, c->rx.len - run);
    }
}

static int con_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                    struct err *e)
{
    (void)f;
    struct virtio_console *c = vd->opaque;
    struct ctrl_msg ctrl[CON_CTRL_PENDING];
    bool port_open = snapr_bool(r);
    uint32_t nctrl = snapr_u32(r);
    if (snapr_check(r, r->fail || nctrl <= CON_CTRL_PENDING, "too many control messages"))
        for (unsigned i = 0; i < nctrl && !r->fail; i++) {
            ctrl[i].id = snapr_u32(r);
            ctrl[i].event = snapr_u16(r);
            ctrl[i].value = snapr_u16(r);
            /* what the device sends: PORT_ADD(0) and CONSOLE_PORT(0), value 1 */
            snapr_check(r, r->fail || (ctrl[i].id == 0 && ctrl[i].value == 1 &&
                                       (ctrl[i].event == CTRL_PORT_ADD ||
                                        ctrl[i].event == CTRL_CONSOLE_PORT)),
                        "a control message the device does not send");
        }
    uint32_t nrx = snapr_u32(r);
    uint8_t *rx = NULL;
    if (snapr_check(r, r->fail || nrx <= CON_RX_BUF, "more buffered input than the device "
                    "holds") && nrx && !r->fail) {
        rx = malloc(nrx);
        if (snapr_check(r, rx != NULL, "out of memory"))
            snapr_bytes(r, rx, nrx);
    }
    int ret = snapr_end(r, e);
    if (ret < 0) {
        free(rx);
        return ret;
    }
    c->port_open = port_open;
    memcpy(c->ctrl, ctrl, nctrl * sizeof(ctrl[0]));
    c->ctrl_head = 0;
    c->ctrl_len = nctrl;
    c->rx.head = c->rx.len = 0;
    if (nrx && c->rx.cap)
        ring_put(&c->rx, rx, nrx);
    else if (nrx)
        log_info("virtio-console %s: %u byte(s) of input the snapshot held dropped (a file "
                 "backend takes no input)", c->path, nrx);
    free(rx);
    return 0;
}

const struct virtio_dev_ops virtio_console_ops = {
    .queue_notify = con_queue_notify,
    .cfg_read = con_cfg_read,
    .cfg_write = con_cfg_write,
    .reset = con_reset,
    .save = con_save,
    .load = con_load,
};
