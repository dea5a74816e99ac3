/* virtio-vsock's host side: the unix sockets (the private epoll set and
 * its handler, connections, the CONNECT line, accept, the handshake timer
 * sweep, the listening socket's set-up and teardown).  The design is in
 * virtio_vsock.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "virtio/virtio_vsock_priv.h"

/* Check handshake deadlines every VSOCK_SWEEP_NS while there are any. */
static void sweep_start(struct virtio_vsock *v)
{
    if (!v->sweeping)
        evloop_timer_set(v->timer, VSOCK_SWEEP_NS, VSOCK_SWEEP_NS);
    v->sweeping = true;
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

void vsock_conn_unwatch(struct virtio_vsock *v, struct conn *c)
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

struct conn *vsock_conn_alloc(struct virtio_vsock *v, int fd)
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
void vsock_conn_free(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_FREE)
        return;
    if (c->fd >= 0) {
        vsock_conn_unwatch(v, c);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_FREE;
    c->gen++;
    v->nconn--;
}

struct conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conn[i];
        if (c->state >= C_REQUEST && c->local_port == local_port && c->peer_port == peer_port)
            return c;
    }
    return NULL;
}

/* Queue an RST to the guest for (local_port, peer_port). */
void vsock_rst_queue(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
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
void vsock_conn_reset(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_OPEN || c->state == C_CLOSING ||
        (c->state == C_REQUEST && !(c->pending & P_REQUEST)))
        vsock_rst_queue(v, c->local_port, c->peer_port);
    vsock_conn_free(v, c);
}

void vsock_close_all(struct virtio_vsock *v)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        vsock_conn_free(v, &v->conn[i]);
    v->rst_head = v->rst_len = 0;
}

/* Write what c->to_host holds to the host socket, without blocking. */
void vsock_conn_flush(struct virtio_vsock *v, struct conn *c)
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
            vsock_conn_reset(v, c);
            return;
        }
    }
    if (c->state != C_OPEN && c->state != C_CLOSING)
        return;
    if (!c->to_host.len && c->guest_shut_send && c->guest_shut_rcv) {
        vsock_conn_reset(v, c);       /* the guest closed and all its data is out */
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
void vsock_conn_fill(struct virtio_vsock *v, struct conn *c)
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
            vsock_conn_reset(v, c);
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
            vsock_conn_free(v, c);
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
        vsock_conn_free(v, c);
        return;
    }
    vr_consume(r, (uint32_t)linelen);
    /* a local port of our own, not in use */
    uint32_t lp;
    do {
        lp = v->next_port++;
        if (v->next_port < VSOCK_LOCAL_PORT_BASE)
            v->next_port = VSOCK_LOCAL_PORT_BASE;
    } while (vsock_conn_find(v, lp, (uint32_t)port));
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
        struct conn *c = v->nconn < VSOCK_MAX_CONNS ? vsock_conn_alloc(v, fd) : NULL;
        if (!c) {
            log_guest(&v->host_log, "virtio-vsock %s: too many connections (%u): host client "
                      "closed", v->path, v->nconn);
            close(fd);
            continue;
        }
        c->state = C_LINE;
        c->deadline = time_now_ns() + VSOCK_LINE_TIMEOUT_NS;
        sweep_start(v);
        vsock_conn_update(v, c);
    }
}

/* Bring c's epoll interest in line with its state. */
void vsock_conn_update(struct virtio_vsock *v, struct conn *c)
{
    if (c->state == C_FREE || c->fd < 0)
        return;
    if (c->host_hup && !c->to_host.len) {
        /* nothing more to write, and input is read as the guest takes it */
        vsock_conn_unwatch(v, c);
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
        vsock_conn_unwatch(v, c);
        return;
    }
    conn_watch(v, c, want);     /* hang-ups are reported anyway */
}

static void conn_event(struct virtio_vsock *v, struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT)
        vsock_conn_flush(v, c);
    if (c->state == C_FREE)
        return;
    if (events & (EPOLLHUP | EPOLLERR))
        c->host_hup = true;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        vsock_conn_fill(v, c);
    if (c->state == C_LINE)
        conn_line(v, c);
    else if (c->state == C_REQUEST && c->host_hup)
        vsock_conn_reset(v, c);       /* the client gave up before the guest answered */
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
            vsock_conn_update(v, c);
    }
    vsock_rx_deliver(v);
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
        vsock_conn_reset(v, c);
    }
    if (!more && v->sweeping) {
        evloop_timer_set(v->timer, 0, 0);
        v->sweeping = false;
    }
}

static void vsock_timer(void *opaque)
{
    struct virtio_vsock *v = opaque;
    vsock_event_deliver(v);
    sweep(v);
    vsock_rx_deliver(v);
}

/* --- set-up and teardown ----------------------------------------------------- */

void vsock_teardown(struct virtio_vsock *v)
{
    vsock_close_all(v);
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
    usock_unlink(v->path, &v->sock_id);
    free(v);
}

int vsock_socket_open(struct virtio_vsock *v, struct err *e)
{
    v->lfd = usock_listen("virtio-vsock", v->path, 16, &v->sock_id, e);
    if (v->lfd < 0)
        return v->lfd;
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
    log_info("virtio-vsock: guest CID %llu, listening on %s", (unsigned long long)v->cid, v->path);
    return 0;
}
