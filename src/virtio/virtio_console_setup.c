/* virtio-console: options, the socket or file backend's set-up, teardown
 * (the design is in virtio_console.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/opts.h"
#include "virtio/virtio_console_priv.h"

/* --- set-up and teardown ----------------------------------------------------- */

static void con_teardown(struct virtio_console *c)
{
    con_flush(c);               /* best effort: what the client can take now */
    if (c->epfd >= 0 && c->loop)
        evloop_del(c->loop, c->epfd);
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    usock_unlink(c->path, &c->sock_id);    /* only if it is still the one we created */
    con_discard_output(c);
    con_log_dropped(c, "in all");
    free(c->rx.buf);
    free(c->out.buf);
    free(c);
}

static void con_free(struct virtio_pci *vp)
{
    con_teardown(vp->vdev.opaque);
}

static int socket_open(struct virtio_console *c, const char *path, struct err *e)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path))
        return err_set(e, -ENAMETOOLONG,
                       "virtio-console: socket path '%s' is too long (at most %zu bytes)", path,
                       sizeof(addr.sun_path) - 1);
    memcpy(c->path, path, strlen(path) + 1);
    c->lfd = usock_listen("virtio-console", path, 1, &c->sock_id, e);
    if (c->lfd < 0)
        return c->lfd;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0)
        return err_set(e, -errno, "virtio-console: epoll_create1: %s", strerror(errno));
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_LISTEN };
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->lfd, &ev) < 0)
        return err_set(e, -errno, "virtio-console: epoll_ctl: %s", strerror(errno));
    c->lfd_watched = true;
    c->rx.cap = CON_RX_BUF;
    c->out.cap = CON_OUT_BUF;
    c->rx.buf = malloc(c->rx.cap);
    c->out.buf = malloc(c->out.cap);
    if (!c->rx.buf || !c->out.buf)
        return err_set(e, -ENOMEM, "virtio-console: out of memory");
    int ret = evloop_add(c->loop, c->epfd, con_event, c, e);
    if (ret < 0) {
        close(c->epfd);         /* not registered: keep teardown from evloop_del */
        c->epfd = -1;
        return ret;
    }
    log_info("virtio-console: listening on %s", path);
    return 0;
}

static int file_open(struct virtio_console *c, const char *path, bool append, struct err *e)
{
    memcpy(c->path, path, strlen(path) + 1);     /* fits: the option buffer is smaller */
    c->file_fd = open(path, O_WRONLY | O_CREAT | O_NOCTTY | O_CLOEXEC |
                      (append ? O_APPEND : O_TRUNC), 0644);
    if (c->file_fd < 0)
        return err_set(e, -errno, "virtio-console: cannot open output file '%s': %s", path,
                       strerror(errno));
    return 0;
}

#define CON_OPTS_HELP "socket=PATH, or file=PATH[,append=on|off]"

int virtio_console_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    char item[PATH_MAX], sock[PATH_MAX] = "", file[PATH_MAX] = "";
    int append = -1, ret;
    const char *p = opts;
    while ((ret = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        char *dst = !strcmp(item, "socket") ? sock : !strcmp(item, "file") ? file : NULL;
        if (dst) {
            if (!val || !*val)
                return err_set(e, -EINVAL, "virtio-console: %s= needs a path (%s=PATH)", item,
                               item);
            if (*dst)
                return err_set(e, -EINVAL, "virtio-console: %s= given twice", item);
            memcpy(dst, val, strlen(val) + 1);   /* val lies inside item, same size */
        } else if (!strcmp(item, "append")) {
            append = opts_bool(val);
            if (append < 0)
                return err_set(e, -EINVAL, "virtio-console: append=%s: expected on or off",
                               val ? val : "");
        } else {
            return err_set(e, -EINVAL, "virtio-console: unknown option '%s' (options: "
                           CON_OPTS_HELP ")", item);
        }
    }
    if (ret < 0)
        return ret;
    if (*sock && *file)
        return err_set(e, -EINVAL, "virtio-console: give either socket= or file=, not both");
    if (!*sock && !*file)
        return err_set(e, -EINVAL, "virtio-console needs a backend: " CON_OPTS_HELP);
    if (append >= 0 && !*file)
        return err_set(e, -EINVAL, "virtio-console: append= only applies to file=");
    if (*sock && !h->loop)
        return err_set(e, -EINVAL, "virtio-console: socket= needs the VM's event loop");

    struct virtio_console *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, -ENOMEM, "virtio-console: out of memory");
    c->epfd = c->lfd = c->cfd = c->file_fd = -1;
    c->loop = h->loop;
    ret = *sock ? socket_open(c, sock, e) : file_open(c, file, append == 1, e);
    if (ret < 0)
        goto fail;
    virtio_dev_init(&c->vp.vdev, "virtio-console", VIRTIO_ID_CONSOLE,
                    1ull << VIRTIO_CONSOLE_F_MULTIPORT | 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE,
                    CON_NQUEUES, CON_QUEUE_SIZE, CON_CFG_SIZE,
                    h->mem, &virtio_console_ops, c);
    if ((ret = virtio_pci_init(&c->vp, PCI_CLASS_COMMUNICATION_OTHER, con_free, e)) < 0 ||
        (ret = pci_bus_plug(h->pb, &c->vp.pci, e)) < 0)
        goto fail;
    return 0;
fail:
    con_teardown(c);
    return ret;
}
