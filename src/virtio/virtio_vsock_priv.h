/* virtio-vsock's private header: what virtio_vsock.c (the device: headers,
 * the transmit, receive and event queues, virtio ops, snapshots, create)
 * and virtio_vsock_host.c (the unix sockets: the private epoll set,
 * connections, the CONNECT line, accept, the handshake timer sweep, the
 * listening socket's set-up and teardown) share.  The design is in
 * virtio_vsock.c. */
#ifndef PETREL_VIRTIO_VSOCK_PRIV_H
#define PETREL_VIRTIO_VSOCK_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "core/usock.h"
#include "core/evloop.h"
#include "virtio/virtio_pci.h"

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
    bool lfd_watched;
    struct usock_id sock_id;    /* path is ours to unlink while it is this socket */
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

/* --- byte rings ------------------------------------------------------------- */

static inline uint32_t vr_room(const struct vring *r) { return r->cap - r->len; }

static inline uint32_t vr_head_run(const struct vring *r)
{
    uint32_t run = r->cap - r->head;
    return run < r->len ? run : r->len;
}

static inline uint8_t *vr_tail(const struct vring *r, uint32_t *run)
{
    uint32_t tail = (r->head + r->len) % r->cap, n = r->cap - tail;
    *run = n < vr_room(r) ? n : vr_room(r);
    return r->buf + tail;
}

static inline void vr_consume(struct vring *r, uint32_t n)
{
    r->head = (r->head + n) % r->cap;
    r->len -= n;
    if (!r->len)
        r->head = 0;
}

static inline void vr_put(struct vring *r, const uint8_t *p, uint32_t n)
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

/* virtio_vsock.c: the device */
void vsock_rx_deliver(struct virtio_vsock *v);
void vsock_event_deliver(struct virtio_vsock *v);

/* virtio_vsock_host.c: the host side */
struct conn *vsock_conn_alloc(struct virtio_vsock *v, int fd);
void vsock_conn_free(struct virtio_vsock *v, struct conn *c);
struct conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port);
void vsock_rst_queue(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port);
void vsock_conn_reset(struct virtio_vsock *v, struct conn *c);
void vsock_conn_unwatch(struct virtio_vsock *v, struct conn *c);
void vsock_conn_flush(struct virtio_vsock *v, struct conn *c);
void vsock_conn_fill(struct virtio_vsock *v, struct conn *c);
void vsock_conn_update(struct virtio_vsock *v, struct conn *c);
void vsock_close_all(struct virtio_vsock *v);
int vsock_socket_open(struct virtio_vsock *v, struct err *e);
void vsock_teardown(struct virtio_vsock *v);

#endif
