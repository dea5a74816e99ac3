/* The `net=tap,ifname=NAME` backend: the VM's frames go to and come from a
 * host TAP interface (/dev/net/tun, IFF_TAP | IFF_NO_PI), which the host
 * then routes or bridges like any other link (scripts/mkbridge.sh).
 *
 * - Set-up opens /dev/net/tun and attaches to NAME with TUNSETIFF: an
 *   existing persistent TAP (`ip tuntap add dev NAME mode tap user $USER`,
 *   which lets an unprivileged user use it) or, with CAP_NET_ADMIN, a new
 *   one that lives as long as petrel.  No IFF_VNET_HDR: frames are plain
 *   Ethernet both ways (the device finishes checksums before send).
 * - Guest -> host: one non-blocking write per frame; a full queue drops the
 *   frame (counted).
 * - Host -> guest: the descriptor is on the VM's evloop; its handler reads
 *   up to TAP_BATCH frames per wakeup and hands each to the frontend.
 * - The interface going away (read error: EIO, EBADFD) is logged once; the
 *   descriptor number is then kept by /dev/null (as net=private does), so
 *   the handler stays registered but quiet, and frames are dropped. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net/net.h"

#define TAP_BATCH 64

struct net_tap {
    struct net_backend be;
    struct evloop *loop;
    int fd;
    bool registered, gone;
    char ifname[IFNAMSIZ];
    uint64_t tx, tx_drop, rx, rx_bad;
    uint8_t buf[65536];
};

static void tap_lost(struct net_tap *t, const char *why)
{
    log_warn("net=tap,ifname=%s: lost the interface (%s); the network is down", t->ifname,
             why);
    t->gone = true;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup3(null, t->fd, O_CLOEXEC);
        close(null);
    }
}

static void tap_readable(void *opaque)
{
    struct net_tap *t = opaque;
    for (unsigned i = 0; i < TAP_BATCH && !t->gone; i++) {
        ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            tap_lost(t, strerror(errno));
        } else if (n == 0) {
            return;
        } else if (n < NET_ETH_HLEN || n > NET_MAX_FRAME) {
            t->rx_bad++;        /* e.g. a host MTU above the guest's */
        } else {
            t->rx++;
            if (t->be.receive)
                t->be.receive(t->be.opaque, t->buf, (size_t)n);
        }
    }
}

static void tap_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct net_tap *t = (struct net_tap *)be;
    if (t->gone || len < NET_ETH_HLEN || len > NET_MAX_FRAME ||
        write(t->fd, frame, len) != (ssize_t)len) {
        t->tx_drop++;
        return;
    }
    t->tx++;
}

static void tap_free(struct net_backend *be)
{
    struct net_tap *t = (struct net_tap *)be;
    if (t->registered)
        evloop_del(t->loop, t->fd);
    if (t->fd >= 0)
        close(t->fd);
    if (t->tx || t->rx)
        log_info("net=tap,ifname=%s: %llu frame(s) sent, %llu dropped; %llu received, "
                 "%llu of a bad size", t->ifname, (unsigned long long)t->tx,
                 (unsigned long long)t->tx_drop, (unsigned long long)t->rx,
                 (unsigned long long)t->rx_bad);
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .send = tap_send,
    .free = tap_free,
};

int net_tap_new(struct evloop *loop, const char *ifname, struct net_backend **out,
                struct err *e)
{
    if (!loop)
        return err_set(e, -EINVAL, "net=tap needs the VM's event loop");
    size_t len = strlen(ifname);
    if (len == 0 || len >= IFNAMSIZ || strchr(ifname, '/') || strchr(ifname, ' '))
        return err_set(e, -EINVAL, "net=tap: ifname=%s: 1 to %d characters, no '/' or space",
                       ifname, IFNAMSIZ - 1);
    struct net_tap *t = calloc(1, sizeof(*t));
    if (!t)
        return err_set(e, -ENOMEM, "net=tap: out of memory");
    t->be.ops = &tap_ops;
    t->be.name = "tap";
    t->loop = loop;
    memcpy(t->ifname, ifname, len + 1);
    int ret;
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        ret = err_set(e, -errno, "net=tap: /dev/net/tun: %s", strerror(errno));
        goto fail;
    }
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    memcpy(ifr.ifr_name, ifname, len + 1);
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        if (err == EPERM)
            ret = err_set(e, -err, "net=tap,ifname=%s: not permitted (create it first: "
                          "'ip tuntap add dev %s mode tap user %s', as root)", ifname, ifname,
                          getenv("USER") ? getenv("USER") : "$USER");
        else if (err == EBUSY)
            ret = err_set(e, -err, "net=tap,ifname=%s: in use by another process", ifname);
        else if (err == EINVAL)
            ret = err_set(e, -err, "net=tap,ifname=%s: not a TAP interface", ifname);
        else
            ret = err_set(e, -err, "net=tap,ifname=%s: TUNSETIFF: %s", ifname, strerror(err));
        goto fail;
    }
    if ((ret = evloop_add(loop, t->fd, tap_readable, t, e)) < 0)
        goto fail;
    t->registered = true;
    *out = &t->be;
    return 0;
fail:
    tap_free(&t->be);
    return ret;
}
