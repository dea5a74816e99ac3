/* User-mode NAT through libslirp: the `net=user` backend (net/net.h).
 *
 * The guest network is QEMU's: 10.0.2.0/24, the host (gateway) 10.0.2.2,
 * a DNS forwarder at 10.0.2.3 (queries go to the host's resolvers), DHCP
 * handing out 10.0.2.15 on.  Guest TCP and UDP to any address become host
 * sockets; 10.0.2.2 reaches the host's loopback.  IPv4 only.  hostfwd
 * rules make libslirp listen on host ports and forward connections (TCP)
 * or datagrams (UDP) to a guest address and port.  restrict=on keeps the
 * guest from reaching anything beyond the virtual network (forwarded ports
 * still work), as QEMU's restrict=on.
 *
 * Driving libslirp from the event loop, never blocking it
 * - libslirp wants a poll loop: before sleeping, slirp_pollfds_fill tells
 *   which sockets to watch for what and how long we may sleep at most (its
 *   TCP timers); after, slirp_pollfds_poll is told what happened and does
 *   the work (reads, writes, accepts, timers).  Its sockets are
 *   non-blocking: neither call waits.
 * - Here the watched sockets live in a private epoll set, which is
 *   registered once with the VM's evloop (an epoll descriptor polls
 *   readable while a member is ready), together with a timerfd for the
 *   sleep limit and libslirp's own timers.  After every fill, the set is
 *   brought in line with what libslirp asked for: EPOLL_CTL_MOD each
 *   socket (ADD when it is new, or is a new socket behind a reused
 *   descriptor number: closing a socket removes it from the set), DEL the
 *   ones it no longer lists.  The set thus changes without touching evloop
 *   handlers from inside a handler.
 * - When the set is ready (a socket, or the timer), the handler collects
 *   the ready events, runs expired libslirp timers, calls
 *   slirp_pollfds_poll and fills again.  After a batch of guest frames
 *   (slirp_input may open sockets), the frontend's flush fills again too.
 *   Frames for the guest come out of slirp_input, slirp_pollfds_poll and
 *   the timers through send_packet, synchronously, in device context.
 * - libslirp limits the sleep to 1 s even when idle (its slow TCP timer);
 *   with connections that have pending TCP work it is 2 ms.  So an idle
 *   NAT costs one wakeup a second; no periodic hook in the engine is
 *   needed: the timerfd wakes the engine's wait like any other descriptor.
 *
 * What can fail: creating the stack, the epoll set or the timerfd, and
 * hostfwd listeners (a port in use, an address not on this host), all at
 * set-up with a message naming the rule.  At run time an epoll_ctl error
 * (out of memory) is logged and the socket goes unwatched until the next
 * fill; guest misbehaviour that libslirp notices is logged rate-limited. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <slirp/libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/snapshot.h"
#include "net/net.h"

#define SLIRP_MAX_TIMER_RUNS 64     /* timer callbacks per wakeup, at most */

struct slirp_timer {
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms;
    bool armed;
    struct slirp_timer *next;
};

/* one entry of libslirp's latest fill */
struct spoll {
    int fd;
    int events;                 /* SLIRP_POLL_* wanted */
    int revents;                /* SLIRP_POLL_* seen */
};

struct net_slirp {
    struct net_backend be;
    Slirp *slirp;
    struct evloop *loop;
    int epfd, tfd;
    bool registered;            /* epfd is on the evloop */
    /* libslirp's latest fill, and the descriptors now in epfd */
    struct spoll *pfd;
    unsigned npfd, pfd_cap;
    int *watched;
    unsigned nwatched, watched_cap;
    struct epoll_event *evs;    /* pfd_cap + 1 entries */
    struct slirp_timer *timers;
    struct log_limit log;
    bool epoll_error_logged;
    /* a snapshot's libslirp state, between load and restore */
    uint8_t *staged;
    uint32_t staged_len, staged_version;
};

/* --- clock and timers ------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct net_slirp *s = opaque;
    struct slirp_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;            /* libslirp copes: the timer never fires */
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    t->next = s->timers;
    s->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct net_slirp *s = opaque;
    for (struct slirp_timer **pp = &s->timers; *pp; pp = &(*pp)->next)
        if (*pp == timer) {
            *pp = (*pp)->next;
            free(timer);
            return;
        }
}

static void arm_timerfd(struct net_slirp *s, uint32_t timeout_ms);

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct slirp_timer *t = timer;
    (void)opaque;
    if (!t)
        return;
    t->expire_ms = expire_ms;
    t->armed = true;
    /* the timerfd is re-armed by the fill that follows every entry into
     * libslirp (refresh) */
}

/* Run the libslirp timers that are due (a callback may modify or free
 * timers, so the scan restarts after each). */
static void run_timers(struct net_slirp *s)
{
    int64_t now_ms = now_ns() / 1000000;
    for (unsigned runs = 0; runs < SLIRP_MAX_TIMER_RUNS; runs++) {
        struct slirp_timer *t = s->timers;
        while (t && !(t->armed && t->expire_ms <= now_ms))
            t = t->next;
        if (!t)
            return;
        t->armed = false;
        t->cb(t->cb_opaque);
    }
}

/* Wake up after timeout_ms (UINT32_MAX: no limit) or at the earliest
 * libslirp timer, whichever comes first. */
static void arm_timerfd(struct net_slirp *s, uint32_t timeout_ms)
{
    int64_t now = now_ns(), deadline = INT64_MAX;
    if (timeout_ms != UINT32_MAX)
        deadline = now + (int64_t)timeout_ms * 1000000;
    for (struct slirp_timer *t = s->timers; t; t = t->next)
        if (t->armed && t->expire_ms * 1000000 < deadline)
            deadline = t->expire_ms * 1000000;
    struct itimerspec its = { 0 };
    if (deadline != INT64_MAX) {
        if (deadline < 1)
            deadline = 1;       /* 0 would disarm: an expiry in the past fires now */
        its.it_value.tv_sec = deadline / 1000000000;
        its.it_value.tv_nsec = deadline % 1000000000;
    }
    if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        log_guest(&s->log, "net-user: timerfd_settime: %s", strerror(errno));
}

/* --- libslirp's poll interface ---------------------------------------------- */

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct net_slirp *s = opaque;
    if (s->npfd == s->pfd_cap) {
        unsigned cap = s->pfd_cap ? 2 * s->pfd_cap : 16;
        struct spoll *p = realloc(s->pfd, cap * sizeof(*p));
        if (!p)
            return -1;          /* libslirp treats it as "not polled" */
        s->pfd = p;
        struct epoll_event *ev = realloc(s->evs, (cap + 1) * sizeof(*ev));
        if (!ev)
            return -1;
        s->evs = ev;
        s->pfd_cap = cap;
    }
    s->pfd[s->npfd] = (struct spoll){ .fd = fd, .events = events };
    return (int)s->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    if (idx < 0 || (unsigned)idx >= s->npfd)
        return 0;
    return s->pfd[idx].revents;
}

static uint32_t to_epoll(int ev)
{
    return (ev & SLIRP_POLL_IN ? EPOLLIN : 0u) | (ev & SLIRP_POLL_OUT ? EPOLLOUT : 0u) |
           (ev & SLIRP_POLL_PRI ? EPOLLPRI : 0u);
}

static int from_epoll(uint32_t ev)
{
    return (ev & EPOLLIN ? SLIRP_POLL_IN : 0) | (ev & EPOLLOUT ? SLIRP_POLL_OUT : 0) |
           (ev & EPOLLPRI ? SLIRP_POLL_PRI : 0) | (ev & EPOLLERR ? SLIRP_POLL_ERR : 0) |
           (ev & EPOLLHUP ? SLIRP_POLL_HUP : 0);
}

static bool in_fill(const struct net_slirp *s, int fd)
{
    for (unsigned i = 0; i < s->npfd; i++)
        if (s->pfd[i].fd == fd)
            return true;
    return false;
}

/* Ask libslirp what to watch and make the epoll set and timer say so. */
static void refresh(struct net_slirp *s)
{
    s->npfd = 0;
    uint32_t timeout = UINT32_MAX;
    slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);

    /* drop what is no longer wanted (closed descriptors are gone already) */
    for (unsigned i = 0; i < s->nwatched; i++)
        if (!in_fill(s, s->watched[i]))
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->watched[i], NULL);
    s->nwatched = 0;
    if (s->watched_cap < s->npfd) {
        int *w = realloc(s->watched, s->pfd_cap * sizeof(*w));
        if (w) {
            s->watched = w;
            s->watched_cap = s->pfd_cap;
        }
    }
    for (unsigned i = 0; i < s->npfd; i++) {
        struct epoll_event ev = { .events = to_epoll(s->pfd[i].events), .data.fd = s->pfd[i].fd };
        int ret = epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->pfd[i].fd, &ev);
        if (ret < 0 && errno == ENOENT)
            ret = epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->pfd[i].fd, &ev);
        if (ret < 0) {
            if (!s->epoll_error_logged)
                log_warn("net-user: cannot watch socket %d: %s", s->pfd[i].fd, strerror(errno));
            s->epoll_error_logged = true;
            continue;
        }
        if (s->nwatched < s->watched_cap)
            s->watched[s->nwatched++] = s->pfd[i].fd;
    }
    arm_timerfd(s, timeout);
}

/* evloop handler: a socket or the timer is ready. */
static void slirp_event(void *opaque)
{
    struct net_slirp *s = opaque;
    int n = epoll_wait(s->epfd, s->evs, (int)s->pfd_cap + 1, 0);
    for (unsigned i = 0; i < s->npfd; i++)
        s->pfd[i].revents = 0;
    for (int i = 0; i < n; i++) {
        int fd = s->evs[i].data.fd;
        if (fd == s->tfd) {
            uint64_t expirations;
            if (read(s->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                log_guest(&s->log, "net-user: timerfd read: %s", strerror(errno));
            continue;
        }
        for (unsigned j = 0; j < s->npfd; j++)
            if (s->pfd[j].fd == fd)
                s->pfd[j].revents = from_epoll(s->evs[i].events);
    }
    run_timers(s);
    slirp_pollfds_poll(s->slirp, n < 0, cb_get_revents, s);
    refresh(s);
}

/* --- the rest of libslirp's callbacks --------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;
    if (s->be.receive)
        s->be.receive(s->be.opaque, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    struct net_slirp *s = opaque;
    log_guest(&s->log, "net-user: %s", msg);
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }  /* guestfwd only: unused */

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

/* --- backend ops ------------------------------------------------------------ */

static void slirp_be_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct net_slirp *s = (struct net_slirp *)be;
    if (len < NET_ETH_HLEN || len > NET_MAX_FRAME)
        return;
    slirp_input(s->slirp, frame, (int)len);
}

static void slirp_be_flush(struct net_backend *be)
{
    refresh((struct net_slirp *)be);
}

static void slirp_be_free(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;
    if (s->registered)
        evloop_del(s->loop, s->epfd);
    if (s->slirp)
        slirp_cleanup(s->slirp);        /* closes its sockets, frees its timers */
    while (s->timers)
        cb_timer_free(s->timers, s);
    if (s->tfd >= 0)
        close(s->tfd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s->pfd);
    free(s->evs);
    free(s->watched);
    free(s->staged);
    free(s);
}

/* --- snapshots ---------------------------------------------------------------
 *
 * libslirp's own save format (slirp_state_save, version slirp_state_version)
 * holds the guestfwd sockets (none here: Petrel sets up no guestfwd) and
 * the stack's "slirp" record: the IP id counter and the DHCP lease table
 * (16 entries of allocated flag + MAC).  It does not hold NAT flows: their
 * host sockets die with the process, so after a restore the guest keeps
 * its address (its lease is in the table, a DHCP renewal gets the same
 * one), new connections work at once, and a TCP connection that was open
 * through the NAT is answered with a reset when the guest next sends on it.
 * Forwarded host ports (hostfwd=) are the restoring VM's own configuration.
 *
 * In the snapshot: u32 libslirp state version, u32 length, the bytes.  On
 * load the version must be one this libslirp reads, the first byte 0 (no
 * guestfwd sockets: libslirp would allocate a socket and buffers for each)
 * and the length what this libslirp writes (the rest is of fixed size, and
 * libslirp would not notice a short one) before libslirp parses it. */

#define SLIRP_STATE_MAX 4096u

struct state_buf {
    uint8_t *p;
    size_t len, cap, off;
    bool oom;
};

static ssize_t state_write(const void *buf, size_t len, void *opaque)
{
    struct state_buf *b = opaque;
    if (b->oom)
        return -1;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = cap <= SLIRP_STATE_MAX ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->oom = true;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return (ssize_t)len;
}

static ssize_t state_read(void *buf, size_t len, void *opaque)
{
    struct state_buf *b = opaque;
    if (len > b->len - b->off)
        return -1;
    memcpy(buf, b->p + b->off, len);
    b->off += len;
    return (ssize_t)len;
}

static void slirp_be_save(struct net_backend *be, struct snap_writer *w)
{
    struct net_slirp *s = (struct net_slirp *)be;
    struct state_buf b = { 0 };
    slirp_state_save(s->slirp, state_write, &b);
    if (b.oom)
        snapw_fail(w, -ENOMEM, "net=user: cannot save libslirp's state (more than %u bytes)",
                   SLIRP_STATE_MAX);
    snapw_u32(w, (uint32_t)slirp_state_version());
    snapw_u32(w, (uint32_t)b.len);
    snapw_bytes(w, b.p, b.len);
    free(b.p);
}

static void slirp_be_load(struct net_backend *be, struct snap_reader *r)
{
    struct net_slirp *s = (struct net_slirp *)be;
    uint32_t version = snapr_u32(r), len = snapr_u32(r);
    free(s->staged);
    s->staged = NULL;
    if (!snapr_check(r, r->fail || len <= SLIRP_STATE_MAX, "net=user: NAT state too large"))
        return;
    uint8_t *p = malloc(len ? len : 1);
    if (!snapr_check(r, p != NULL, "out of memory")) {
        free(p);
        return;
    }
    snapr_bytes(r, p, len);
    snapr_check(r, r->fail || (version >= 1 && (int)version <= slirp_state_version()),
                "net=user: NAT state of a newer libslirp");
    snapr_check(r, r->fail || (len >= 1 && p[0] == 0),
                "net=user: NAT state with guestfwd sockets");
    /* libslirp does not notice a state that ends early (it keeps what it
     * read): the length must be what this libslirp writes */
    struct state_buf own = { 0 };
    slirp_state_save(s->slirp, state_write, &own);
    snapr_check(r, r->fail || own.oom || len == own.len,
                "net=user: NAT state of another length than this libslirp's");
    free(own.p);
    s->staged = p;
    s->staged_len = len;
    s->staged_version = version;
}

static int slirp_be_restore(struct net_backend *be, struct err *e)
{
    struct net_slirp *s = (struct net_slirp *)be;
    if (!s->staged)
        return 0;
    struct state_buf b = { .p = s->staged, .len = s->staged_len };
    int ret = slirp_state_load(s->slirp, (int)s->staged_version, state_read, &b);
    free(s->staged);
    s->staged = NULL;
    if (ret < 0)
        return err_set(e, -EINVAL, "net=user: libslirp refused the snapshot's NAT state "
                       "(error %d)", ret);
    if (b.off != b.len)
        return err_set(e, -EINVAL, "net=user: the snapshot's NAT state has %zu stray bytes",
                       b.len - b.off);
    refresh(s);
    return 0;
}

static const struct net_backend_ops slirp_be_ops = {
    .send = slirp_be_send,
    .flush = slirp_be_flush,
    .free = slirp_be_free,
    .save = slirp_be_save,
    .load = slirp_be_load,
    .restore = slirp_be_restore,
};

/* --- hostfwd ------------------------------------------------------------------ */

static int parse_port(const char *s, uint16_t *port)
{
    if (!*s || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s))
        return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* "ADDR:PORT" with ADDR optional (empty keeps *addr). */
static int parse_addr_port(char *s, struct in_addr *addr, uint16_t *port)
{
    char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    *colon = 0;
    if (*s && inet_pton(AF_INET, s, addr) != 1)
        return -1;
    return parse_port(colon + 1, port);
}

#define HOSTFWD_SYNTAX "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"

int net_hostfwd_parse(const char *spec, struct net_hostfwd *f, struct err *e)
{
    memset(f, 0, sizeof(*f));
    if (strlen(spec) >= sizeof(f->spec))
        return err_set(e, -EINVAL, "hostfwd=%.40s...: too long", spec);
    memcpy(f->spec, spec, strlen(spec) + 1);
    char buf[sizeof(f->spec)];
    memcpy(buf, spec, strlen(spec) + 1);

    char *colon = strchr(buf, ':');
    char *dash = strchr(buf, '-');
    if (!colon || !dash || dash < colon)
        return err_set(e, -EINVAL, "hostfwd=%s: expected " HOSTFWD_SYNTAX, spec);
    *colon = 0;
    if (!strcmp(buf, "udp"))
        f->udp = true;
    else if (*buf && strcmp(buf, "tcp"))
        return err_set(e, -EINVAL, "hostfwd=%s: protocol '%s' (tcp or udp)", spec, buf);
    *dash = 0;
    f->host_addr.s_addr = htonl(INADDR_ANY);
    inet_pton(AF_INET, NET_USER_DHCP_START, &f->guest_addr);
    if (parse_addr_port(colon + 1, &f->host_addr, &f->host_port) < 0)
        return err_set(e, -EINVAL, "hostfwd=%s: bad host address or port (expected "
                       HOSTFWD_SYNTAX ", ports 1-65535)", spec);
    if (parse_addr_port(dash + 1, &f->guest_addr, &f->guest_port) < 0)
        return err_set(e, -EINVAL, "hostfwd=%s: bad guest address or port (expected "
                       HOSTFWD_SYNTAX ", ports 1-65535)", spec);
    struct in_addr net, mask, host, dns;
    inet_pton(AF_INET, NET_USER_NETWORK, &net);
    inet_pton(AF_INET, NET_USER_NETMASK, &mask);
    inet_pton(AF_INET, NET_USER_HOST, &host);
    inet_pton(AF_INET, NET_USER_DNS, &dns);
    uint32_t g = f->guest_addr.s_addr;
    if ((g & mask.s_addr) != net.s_addr || g == net.s_addr || g == (net.s_addr | ~mask.s_addr) ||
        g == host.s_addr || g == dns.s_addr)
        return err_set(e, -EINVAL, "hostfwd=%s: the guest address must be a guest's address "
                       "in " NET_USER_NETWORK "/24 (default " NET_USER_DHCP_START ")", spec);
    return 0;
}

/* Why libslirp could not listen: try the same bind ourselves. */
static int hostfwd_error(const struct net_hostfwd *f, struct err *e)
{
    int fd = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = f->host_addr,
                                 .sin_port = htons(f->host_port) };
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            err = errno;
        close(fd);
    }
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &f->host_addr, addr, sizeof(addr));
    if (err == EADDRINUSE)
        return err_set(e, -EADDRINUSE, "hostfwd=%s: host port %s %s:%u is already in use",
                       f->spec, f->udp ? "udp" : "tcp", addr, f->host_port);
    if (err)
        return err_set(e, -err, "hostfwd=%s: cannot listen on %s:%u: %s", f->spec, addr,
                       f->host_port, strerror(err));
    return err_set(e, -EINVAL, "hostfwd=%s: libslirp could not set up the forwarding", f->spec);
}

/* --- set-up ----------------------------------------------------------------------- */

int net_slirp_new(struct evloop *loop, const struct net_user_config *cfg,
                  struct net_backend **out, struct err *e)
{
    if (!loop)
        return err_set(e, -EINVAL, "net=user needs the VM's event loop");
    struct net_slirp *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, -ENOMEM, "net=user: out of memory");
    s->be.ops = &slirp_be_ops;
    s->be.name = "user";
    s->loop = loop;
    s->epfd = s->tfd = -1;
    int ret;

    SlirpConfig sc = {
        .version = 4,
        .restricted = cfg->restrict_,
        .in_enabled = true,
        .in6_enabled = false,
        .if_mtu = NET_MTU,
        .if_mru = NET_MTU,
        .disable_host_loopback = false,
        .enable_emu = false,
    };
    if (cfg->network.s_addr) {
        sc.vnetwork = cfg->network;
        sc.vnetmask = cfg->netmask;
        sc.vhost = cfg->host;
        sc.vdhcp_start = cfg->dhcp_start;
        sc.vnameserver = cfg->dns;
    } else {
        inet_pton(AF_INET, NET_USER_NETWORK, &sc.vnetwork);
        inet_pton(AF_INET, NET_USER_NETMASK, &sc.vnetmask);
        inet_pton(AF_INET, NET_USER_HOST, &sc.vhost);
        inet_pton(AF_INET, NET_USER_DHCP_START, &sc.vdhcp_start);
        inet_pton(AF_INET, NET_USER_DNS, &sc.vnameserver);
    }
    s->slirp = slirp_new(&sc, &slirp_callbacks, s);
    if (!s->slirp) {
        ret = err_set(e, -ENOMEM, "net=user: libslirp could not create its network stack");
        goto fail;
    }
    for (unsigned i = 0; i < cfg->nfwd; i++) {
        const struct net_hostfwd *f = &cfg->fwd[i];
        if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
                              f->guest_port) < 0) {
            ret = hostfwd_error(f, e);
            goto fail;
        }
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        ret = err_set(e, -errno, "net=user: epoll_create1: %s", strerror(errno));
        goto fail;
    }
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->tfd < 0) {
        ret = err_set(e, -errno, "net=user: timerfd_create: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = s->tfd };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev) < 0) {
        ret = err_set(e, -errno, "net=user: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    /* evs must exist before the first epoll_wait */
    s->evs = calloc(1, sizeof(*s->evs));
    if (!s->evs) {
        ret = err_set(e, -ENOMEM, "net=user: out of memory");
        goto fail;
    }
    if ((ret = evloop_add(loop, s->epfd, slirp_event, s, e)) < 0)
        goto fail;
    s->registered = true;
    refresh(s);
    *out = &s->be;
    return 0;
fail:
    slirp_be_free(&s->be);
    return ret;
}
