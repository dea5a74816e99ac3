#include "core/usock.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Whether a listener accepts connections on the unix socket at addr. */
static int socket_live(const struct sockaddr_un *addr, bool *live)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : -errno;
    close(fd);
    /* EAGAIN: a listener whose backlog is full is still a listener */
    *live = ret == 0 || ret == -EAGAIN || ret == -EINPROGRESS;
    return *live || ret == -ECONNREFUSED ? 0 : ret;
}

/* Bind fd at addr, replacing a stale socket once. */
static int bind_replacing(int fd, const struct sockaddr_un *addr, const char *who,
                          const char *path, struct err *e)
{
    for (unsigned attempt = 0;; attempt++) {
        if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
            return 0;
        int err = errno;
        if (err != EADDRINUSE || attempt)
            return err_set(e, -err, "%s: cannot create socket '%s': %s", who, path,
                           strerror(err));
        struct stat st;
        if (lstat(path, &st) < 0)
            return err_set(e, -errno, "%s: cannot create socket '%s': %s", who, path,
                           strerror(errno));
        if (!S_ISSOCK(st.st_mode))
            return err_set(e, -EEXIST, "%s: '%s' exists and is not a socket (not replacing it)",
                           who, path);
        bool live = false;
        int ret = socket_live(addr, &live);
        if (ret < 0)
            return err_set(e, ret, "%s: cannot probe existing socket '%s': %s", who, path,
                           strerror(-ret));
        if (live)
            return err_set(e, -EADDRINUSE, "%s: socket '%s' is in use by another process", who,
                           path);
        if (unlink(path) < 0 && errno != ENOENT)
            return err_set(e, -errno, "%s: cannot remove stale socket '%s': %s", who, path,
                           strerror(errno));
        log_info("%s: replacing stale socket %s", who, path);
    }
}

int usock_listen(const char *who, const char *path, int backlog, struct usock_id *id,
                 struct err *e)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, -errno, "%s: socket: %s", who, strerror(errno));
    int ret = bind_replacing(fd, &addr, who, path, e);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        id->bound = true;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
    }
    if (listen(fd, backlog) < 0) {
        ret = err_set(e, -errno, "%s: listen on '%s': %s", who, path, strerror(errno));
        close(fd);
        return ret;
    }
    return fd;
}

void usock_unlink(const char *path, const struct usock_id *id)
{
    struct stat st;
    if (id->bound && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == id->dev &&
        st.st_ino == id->ino)
        unlink(path);
}
