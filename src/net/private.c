/* The `net=private,name=NAME` backend: a VM's port on the switch of a
 * private network (design and wire format in net/switch.h).
 *
 * - Set-up connects a SOCK_SEQPACKET socket to RUNDIR/NAME.sock; no switch
 *   there is a one-line error naming the network.
 * - Guest -> switch: one non-blocking send per frame; a full socket buffer
 *   drops the frame (counted): the guest's TCP retransmits, the VM never
 *   stalls on the network.
 * - Switch -> guest: the socket is on the VM's evloop; its handler takes up
 *   to PRIV_BATCH frames per wakeup, checks each one's size (the switch is
 *   another process: its frames are checked as any input) and hands it to
 *   the frontend.
 * - The switch going away (EOF or an error) is logged once; the socket's
 *   descriptor number is then kept by /dev/null (dup2), which closes the
 *   socket and so takes it out of the epoll set without removing the evloop
 *   handler from inside a handler; frames are dropped from then on. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net.h"
#include "net/switch.h"

#define PRIV_BATCH 64

struct net_private {
    struct net_backend be;
    struct evloop *loop;
    int fd;
    bool registered, gone;
    char name[NET_SWITCH_NAME_MAX + 1];
    uint64_t tx, tx_drop, rx, rx_bad;
    uint8_t buf[NET_MAX_FRAME + 1];
};

static void priv_lost(struct net_private *p, const char *why)
{
    log_warn("net=private,name=%s: lost the switch (%s); the network is down", p->name, why);
    p->gone = true;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup3(null, p->fd, O_CLOEXEC);
        close(null);
    } else {
        shutdown(p->fd, SHUT_RDWR);
    }
}

static void priv_readable(void *opaque)
{
    struct net_private *p = opaque;
    for (unsigned i = 0; i < PRIV_BATCH && !p->gone; i++) {
        ssize_t n = recv(p->fd, p->buf, sizeof(p->buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            priv_lost(p, strerror(errno));
        } else if (n == 0) {
            priv_lost(p, "it closed the connection");
        } else if (n < NET_ETH_HLEN || n > NET_MAX_FRAME) {
            p->rx_bad++;
        } else {
            p->rx++;
            if (p->be.receive)
                p->be.receive(p->be.opaque, p->buf, (size_t)n);
        }
    }
}

static void priv_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct net_private *p = (struct net_private *)be;
    if (p->gone || len < NET_ETH_HLEN || len > NET_MAX_FRAME ||
        send(p->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        p->tx_drop++;
        return;
    }
    p->tx++;
}

static void priv_free(struct net_backend *be)
{
    struct net_private *p = (struct net_private *)be;
    if (p->registered)
        evloop_del(p->loop, p->fd);
    if (p->fd >= 0)
        close(p->fd);
    if (p->tx || p->rx)
        log_info("net=private,name=%s: %llu frame(s) sent, %llu dropped; %llu received, "
                 "%llu of a bad size", p->name, (unsigned long long)p->tx,
                 (unsigned long long)p->tx_drop, (unsigned long long)p->rx,
                 (unsigned long long)p->rx_bad);
    free(p);
}

static const struct net_backend_ops priv_ops = {
    .send = priv_send,
    .free = priv_free,
};

int net_private_new(struct evloop *loop, const char *name, struct net_backend **out,
                    struct err *e)
{
    if (!loop)
        return err_set(e, -EINVAL, "net=private needs the VM's event loop");
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    struct err pe;
    int ret = net_switch_sock_path(name, false, a.sun_path, sizeof(a.sun_path), &pe);
    if (ret < 0)
        return err_set(e, ret, "net=private,name=%s: %s", name, pe.msg);
    struct net_private *p = calloc(1, sizeof(*p));
    if (!p)
        return err_set(e, -ENOMEM, "net=private: out of memory");
    p->be.ops = &priv_ops;
    p->be.name = "private";
    p->loop = loop;
    memcpy(p->name, name, strlen(name) + 1);
    p->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0) {
        ret = err_set(e, -errno, "net=private: socket: %s", strerror(errno));
        goto fail;
    }
    if (connect(p->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        if (err == ENOENT || err == ECONNREFUSED)
            ret = err_set(e, -err, "net=private,name=%s: no switch runs for this network "
                          "(%s: %s; start one with 'petrel switch %s')", name, a.sun_path,
                          strerror(err), name);
        else
            ret = err_set(e, -err, "net=private,name=%s: cannot connect to %s: %s", name,
                          a.sun_path, strerror(err));
        goto fail;
    }
    int sz = NET_SWITCH_SNDBUF;
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if ((ret = evloop_add(loop, p->fd, priv_readable, p, e)) < 0)
        goto fail;
    p->registered = true;
    *out = &p->be;
    return 0;
fail:
    priv_free(&p->be);
    return ret;
}
