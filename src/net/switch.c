/* The private-network switch (design in net/switch.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/net.h"
#include "net/switch.h"

#define SW_BATCH 64                     /* epoll events / frames per wakeup */
#define SW_SLIRP_PORT 0                 /* ports[0]: libslirp (DHCP, NAT) */

struct sw_port {
    int fd;                             /* -1: the slirp port, or free */
    bool used, dead;
    uint64_t rx, tx, drop;
};

struct sw_mac {
    uint8_t mac[6];
    unsigned port;
    uint64_t seen;                      /* sw->tick when last learnt */
};

struct net_switch {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int lfd, epfd;
    struct evloop *loop;
    struct net_backend *slirp;
    struct sw_port ports[NET_SWITCH_PORTS + 1];
    struct sw_mac macs[NET_SWITCH_MACS];
    unsigned nmacs;
    uint64_t tick, drop_size;
    uint8_t buf[NET_MAX_FRAME + 1];
    struct log_limit log;
};

/* epoll tags besides port numbers */
#define TAG_LISTEN 0xfffffff0u
#define TAG_LOOP 0xfffffff1u

/* --- names and paths ------------------------------------------------------------ */

int net_switch_name_check(const char *name, struct err *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > NET_SWITCH_NAME_MAX)
        return err_set(e, -EINVAL, "network name '%.70s': 1 to %d characters", name,
                       NET_SWITCH_NAME_MAX);
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n ||
        name[0] == '.')
        return err_set(e, -EINVAL, "network name '%s': only letters, digits, '-', '_' and '.' "
                       "(not first)", name);
    return 0;
}

int net_switch_sock_path(const char *name, bool create, char *buf, size_t len, struct err *e)
{
    int ret;
    if ((ret = net_switch_name_check(name, e)) < 0)
        return ret;
    char dir[256];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && *xdg ? snprintf(dir, sizeof(dir), "%s/petrel", xdg)
                        : snprintf(dir, sizeof(dir), "/tmp/petrel-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= sizeof(dir))
        return err_set(e, -ENAMETOOLONG, "runtime directory path too long ($XDG_RUNTIME_DIR)");
    if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, -errno, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) < 0) {
        if (errno == ENOENT)
            return err_set(e, -ENOENT, "no switch for network '%s' (%s does not exist; start "
                           "one with 'petrel switch %s')", name, dir, name);
        return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 0077))
        return err_set(e, -EPERM, "%s must be a directory of ours with mode 0700 (it is not: "
                       "refusing to use it)", dir);
    n = snprintf(buf, len, "%s/%s.sock", dir, name);
    if (n < 0 || (size_t)n >= len)
        return err_set(e, -ENAMETOOLONG, "socket path %s/%s.sock too long", dir, name);
    return 0;
}

/* --- forwarding -------------------------------------------------------------------- */

static void port_send(struct net_switch *sw, unsigned p, const uint8_t *frame, size_t len)
{
    struct sw_port *pt = &sw->ports[p];
    if (p == SW_SLIRP_PORT) {
        sw->slirp->ops->send(sw->slirp, frame, len);
        pt->tx++;
        return;
    }
    if (pt->dead)
        return;
    if (send(pt->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        pt->drop++;             /* full (EAGAIN) or gone: its EOF removes it */
        return;
    }
    pt->tx++;
}

static int mac_find(const struct net_switch *sw, const uint8_t *mac)
{
    for (unsigned i = 0; i < sw->nmacs; i++)
        if (!memcmp(sw->macs[i].mac, mac, 6))
            return (int)i;
    return -1;
}

static void mac_learn(struct net_switch *sw, const uint8_t *mac, unsigned port)
{
    int i = mac_find(sw, mac);
    if (i < 0) {
        if (sw->nmacs < NET_SWITCH_MACS) {
            i = (int)sw->nmacs++;
        } else {
            i = 0;              /* the stalest entry goes */
            for (unsigned j = 1; j < sw->nmacs; j++)
                if (sw->macs[j].seen < sw->macs[i].seen)
                    i = (int)j;
        }
        memcpy(sw->macs[i].mac, mac, 6);
    }
    sw->macs[i].port = port;
    sw->macs[i].seen = ++sw->tick;
}

static void mac_forget_port(struct net_switch *sw, unsigned port)
{
    for (unsigned i = 0; i < sw->nmacs;)
        if (sw->macs[i].port == port)
            sw->macs[i] = sw->macs[--sw->nmacs];
        else
            i++;
}

/* One frame from port `from`. */
static void sw_forward(struct net_switch *sw, unsigned from, const uint8_t *frame, size_t len)
{
    if (len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
        sw->drop_size++;
        return;
    }
    sw->ports[from].rx++;
    const uint8_t *dst = frame, *src = frame + 6;
    if (!(src[0] & 1))
        mac_learn(sw, src, from);
    if (!(dst[0] & 1)) {
        int i = mac_find(sw, dst);
        if (i >= 0) {
            if (sw->macs[i].port != from)
                port_send(sw, sw->macs[i].port, frame, len);
            return;
        }
    }
    for (unsigned p = 0; p <= NET_SWITCH_PORTS; p++)
        if (p != from && sw->ports[p].used)
            port_send(sw, p, frame, len);
}

/* libslirp's frames (its receive callback) */
static void slirp_receive(void *opaque, const uint8_t *frame, size_t len)
{
    sw_forward(opaque, SW_SLIRP_PORT, frame, len);
}

static void port_close(struct net_switch *sw, unsigned p)
{
    struct sw_port *pt = &sw->ports[p];
    epoll_ctl(sw->epfd, EPOLL_CTL_DEL, pt->fd, NULL);
    close(pt->fd);
    log_info("switch: port %u left (%llu frame(s) in, %llu out, %llu dropped)", p,
             (unsigned long long)pt->rx, (unsigned long long)pt->tx,
             (unsigned long long)pt->drop);
    mac_forget_port(sw, p);
    *pt = (struct sw_port){ .fd = -1 };
}

static void port_readable(struct net_switch *sw, unsigned p)
{
    struct sw_port *pt = &sw->ports[p];
    for (unsigned i = 0; i < SW_BATCH && !pt->dead; i++) {
        /* one byte more than a frame may have: a longer message shows as
         * MSG_TRUNC and is dropped whole */
        ssize_t n = recv(pt->fd, sw->buf, sizeof(sw->buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            pt->dead = true;
        } else if (n == 0) {
            pt->dead = true;
        } else if ((size_t)n > NET_MAX_FRAME) {
            sw->drop_size++;
        } else {
            sw_forward(sw, p, sw->buf, (size_t)n);
        }
    }
    sw->slirp->ops->flush(sw->slirp);
}

static void sw_accept(struct net_switch *sw)
{
    for (;;) {
        int fd = accept4(sw->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        unsigned p = 1;
        while (p <= NET_SWITCH_PORTS && sw->ports[p].used)
            p++;
        if (p > NET_SWITCH_PORTS) {
            log_guest(&sw->log, "switch: all %d ports in use (a VM was turned away)",
                      NET_SWITCH_PORTS);
            close(fd);
            continue;
        }
        int sz = NET_SWITCH_SNDBUF;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = p };
        if (epoll_ctl(sw->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            log_warn("switch: epoll_ctl: %s (a VM was turned away)", strerror(errno));
            close(fd);
            continue;
        }
        sw->ports[p] = (struct sw_port){ .fd = fd, .used = true };
        log_info("switch: port %u joined", p);
    }
}

int net_switch_run(struct net_switch *sw, volatile int *stop)
{
    struct epoll_event ev[SW_BATCH];
    while (!*stop) {
        int n = epoll_wait(sw->epfd, ev, SW_BATCH, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            uint32_t tag = ev[i].data.u32;
            if (tag == TAG_LISTEN)
                sw_accept(sw);
            else if (tag == TAG_LOOP)
                evloop_dispatch(sw->loop);
            else if (tag >= 1 && tag <= NET_SWITCH_PORTS && sw->ports[tag].used)
                port_readable(sw, tag);
        }
        /* closed after the batch: a later event of this batch may name it */
        for (unsigned p = 1; p <= NET_SWITCH_PORTS; p++)
            if (sw->ports[p].used && sw->ports[p].dead)
                port_close(sw, p);
    }
    return 0;
}

/* --- set-up ---------------------------------------------------------------------- */

const char *net_switch_path(const struct net_switch *sw)
{
    return sw->path;
}

void net_switch_free(struct net_switch *sw)
{
    if (!sw)
        return;
    for (unsigned p = 1; p <= NET_SWITCH_PORTS; p++)
        if (sw->ports[p].used)
            close(sw->ports[p].fd);
    if (sw->lfd >= 0) {
        close(sw->lfd);
        unlink(sw->path);
    }
    net_backend_free(sw->slirp);
    evloop_free(sw->loop);
    if (sw->epfd >= 0)
        close(sw->epfd);
    if (sw->drop_size)
        log_info("switch: %llu frame(s) of a bad size dropped",
                 (unsigned long long)sw->drop_size);
    free(sw);
}

/* Listen on path; a stale socket (nobody accepts) is replaced, a live one
 * means the switch already runs. */
static int sw_listen(struct net_switch *sw, const char *name, struct err *e)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memcpy(a.sun_path, sw->path, strlen(sw->path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return err_set(e, -errno, "socket: %s", strerror(errno));
    int err = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        err = errno;
        if (err == EADDRINUSE) {
            int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            bool live = probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
            if (probe >= 0)
                close(probe);
            if (live) {
                close(fd);
                return err_set(e, -EADDRINUSE, "a switch for network '%s' already runs (%s)",
                               name, sw->path);
            }
            unlink(sw->path);           /* stale: its switch is gone */
            err = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
        }
    }
    if (err) {
        close(fd);
        return err_set(e, -err, "cannot listen on %s: %s", sw->path, strerror(err));
    }
    if (listen(fd, 16) < 0) {
        int err2 = errno;
        close(fd);
        unlink(sw->path);
        return err_set(e, -err2, "listen on %s: %s", sw->path, strerror(err2));
    }
    sw->lfd = fd;
    return 0;
}

int net_switch_new(const struct net_switch_config *cfg, struct net_switch **out,
                   struct err *e)
{
    uint32_t net = ntohl(cfg->network.s_addr), mask = ntohl(cfg->netmask.s_addr);
    if (~mask < 16)
        return err_set(e, -EINVAL, "the network is too small: at least a /28 (the gateway is "
                       ".2, DNS .3, leases from .15)");
    struct net_switch *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return err_set(e, -ENOMEM, "out of memory");
    sw->lfd = sw->epfd = -1;
    for (unsigned p = 0; p <= NET_SWITCH_PORTS; p++)
        sw->ports[p].fd = -1;
    int ret;
    if ((ret = net_switch_sock_path(cfg->name, true, sw->path, sizeof(sw->path), e)) < 0)
        goto fail;
    sw->loop = evloop_new(e);
    if (!sw->loop) {
        ret = -ENOMEM;
        goto fail;
    }
    struct net_user_config uc = { .restrict_ = !cfg->nat };
    uc.network = cfg->network;
    uc.netmask = cfg->netmask;
    uc.host.s_addr = htonl(net | 2);
    uc.dns.s_addr = htonl(net | 3);
    uc.dhcp_start.s_addr = htonl(net | 15);
    struct err se;
    if ((ret = net_slirp_new(sw->loop, &uc, &sw->slirp, &se)) < 0) {
        err_set(e, ret, "%s", se.msg);
        goto fail;
    }
    sw->slirp->receive = slirp_receive;
    sw->slirp->opaque = sw;
    sw->ports[SW_SLIRP_PORT].used = true;
    sw->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sw->epfd < 0) {
        ret = err_set(e, -errno, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_LOOP };
    if (epoll_ctl(sw->epfd, EPOLL_CTL_ADD, evloop_fd(sw->loop), &ev) < 0) {
        ret = err_set(e, -errno, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    if ((ret = sw_listen(sw, cfg->name, e)) < 0)
        goto fail;
    ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = TAG_LISTEN };
    if (epoll_ctl(sw->epfd, EPOLL_CTL_ADD, sw->lfd, &ev) < 0) {
        ret = err_set(e, -errno, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    *out = sw;
    return 0;
fail:
    net_switch_free(sw);
    return ret;
}

/* --- CIDR ------------------------------------------------------------------------- */

int net_cidr_parse(const char *s, struct in_addr *net, struct in_addr *mask, struct err *e)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return err_set(e, -EINVAL, "'%.40s': expected a CIDR A.B.C.D/N", s);
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = 0;
    const char *bits = slash + 1;
    if (!*bits || strlen(bits) > 2 || strspn(bits, "0123456789") != strlen(bits) ||
        atoi(bits) > 32)
        return err_set(e, -EINVAL, "'%.40s': the prefix length must be 0..32", s);
    if (inet_pton(AF_INET, buf, net) != 1)
        return err_set(e, -EINVAL, "'%.40s': bad IPv4 address '%s'", s, buf);
    int n = atoi(bits);
    uint32_t m = n ? ~0u << (32 - n) : 0, a = ntohl(net->s_addr);
    if (a & ~m)
        return err_set(e, -EINVAL, "'%.40s': host bits set (the network is %u.%u.%u.%u/%d)",
                       s, (a & m) >> 24, (a & m) >> 16 & 255, (a & m) >> 8 & 255, a & m & 255, n);
    mask->s_addr = htonl(m);
    return 0;
}
