/* The console on a unix socket and a bounded log file (console.h).
 *
 * Output goes into a backlog ring of BACKLOG bytes addressed by absolute
 * offsets.  Each client has its own offset: it is sent what lies between
 * its offset and the end, non-blocking; a client whose offset falls out of
 * the ring (it stopped reading) is dropped.  A client that attaches while no
 * other is attached starts where the last one left (so output produced
 * while nobody was attached is not lost, up to the ring's size); a client
 * joining others starts live.  Clients behind are retried on a short timer.
 * The log file is appended to; past LOG_MAX bytes it is renamed to PATH.1
 * and a new one begins. */
#include "core/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"

#define BACKLOG (256u << 10)
#define LOG_MAX (1u << 20)
#define MAX_CLIENTS 32
#define RETRY_NS 20000000ull

struct console_server;

struct client {
    struct console_server *s;
    int fd;
    uint64_t off;               /* next output byte to send */
};

struct console_server {
    struct console *c;
    int listen_fd;
    char *sock_path, *log_path;
    int log_fd;
    uint64_t log_size;
    uint8_t ring[BACKLOG];
    uint64_t end;               /* total output bytes so far */
    uint64_t seen;              /* output the last attached client got */
    struct client *cl[MAX_CLIENTS];
    unsigned ncl;
    bool input_on;
    struct evloop_timer *retry;
};

static void drop_client(struct console_server *s, unsigned i)
{
    struct client *k = s->cl[i];
    evloop_del(s->c->loop, k->fd);
    close(k->fd);
    if (s->ncl == 1)
        s->seen = k->off;
    s->cl[i] = s->cl[--s->ncl];
    free(k);
}

/* Send what client i has not had yet; false if it was dropped. */
static bool send_client(struct console_server *s, unsigned i)
{
    struct client *k = s->cl[i];
    if (s->end - k->off > BACKLOG) {
        log_warn("console: a client stopped reading; dropping it");
        drop_client(s, i);
        return false;
    }
    while (k->off < s->end) {
        size_t pos = k->off % BACKLOG;
        size_t n = s->end - k->off;
        if (n > BACKLOG - pos)
            n = BACKLOG - pos;
        ssize_t r = send(k->fd, s->ring + pos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            evloop_timer_set(s->retry, RETRY_NS, 0);
            return true;
        }
        if (r <= 0) {
            drop_client(s, i);
            return false;
        }
        k->off += (uint64_t)r;
    }
    return true;
}

static void send_all(struct console_server *s)
{
    for (unsigned i = 0; i < s->ncl;)
        if (send_client(s, i))
            i++;
}

static void retry_fire(void *opaque)
{
    send_all(opaque);
}

static void log_append(struct console_server *s, const uint8_t *buf, size_t n)
{
    if (s->log_fd < 0)
        return;
    if (s->log_size + n > LOG_MAX) {
        size_t len = strlen(s->log_path) + 3;
        char *old = malloc(len);
        if (old) {
            snprintf(old, len, "%s.1", s->log_path);
            rename(s->log_path, old);
            free(old);
        }
        close(s->log_fd);
        s->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        s->log_size = 0;
        if (s->log_fd < 0)
            return;
    }
    ssize_t r = write(s->log_fd, buf, n);
    if (r > 0)
        s->log_size += (uint64_t)r;
}

void console_server_output(struct console_server *s, const uint8_t *buf, size_t n)
{
    log_append(s, buf, n);
    for (size_t done = 0; done < n;) {
        size_t pos = s->end % BACKLOG, len = n - done;
        if (len > BACKLOG - pos)
            len = BACKLOG - pos;
        memcpy(s->ring + pos, buf + done, len);
        s->end += len;
        done += len;
    }
    send_all(s);
}

void console_server_resume_input(struct console_server *s, bool on)
{
    s->input_on = on;
    for (unsigned i = 0; i < s->ncl; i++)
        evloop_watch(s->c->loop, s->cl[i]->fd, on);
}

static void client_ready(void *opaque)
{
    struct client *k = opaque;
    struct console_server *s = k->s;
    unsigned i;
    for (i = 0; i < s->ncl && s->cl[i] != k; i++)
        ;
    if (i == s->ncl)
        return;
    uint8_t buf[4096];
    size_t room = console_input_room(s->c);
    if (room == 0)
        return;
    ssize_t r = recv(k->fd, buf, room < sizeof(buf) ? room : sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        drop_client(s, i);
        return;
    }
    console_input(s->c, buf, (size_t)r);
}

static void accept_ready(void *opaque)
{
    struct console_server *s = opaque;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (s->ncl == MAX_CLIENTS) {
        static const char msg[] = "petrel: too many console clients\r\n";
        ssize_t r = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)r;
        close(fd);
        return;
    }
    struct err e;
    struct client *k = calloc(1, sizeof(*k));
    if (!k || evloop_add(s->c->loop, fd, client_ready, k, &e) < 0) {
        free(k);
        close(fd);
        return;
    }
    uint64_t start = s->ncl == 0 ? s->seen : s->end;
    if (s->end - start > BACKLOG)
        start = s->end - BACKLOG;
    *k = (struct client){ .s = s, .fd = fd, .off = start };
    s->cl[s->ncl++] = k;
    if (!s->input_on)
        evloop_watch(s->c->loop, fd, false);
    send_client(s, s->ncl - 1);
}

int console_server_start(struct console *c, const char *sock_path, const char *log_path,
                         struct err *e)
{
    struct console_server *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    s->c = c;
    s->listen_fd = -1;
    s->log_fd = -1;
    s->input_on = true;
    int ret;
    if (!c->loop) {
        ret = err_set(e, -EINVAL, "console server: console not attached to a loop");
        goto fail;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof(a.sun_path)) {
        ret = err_set(e, -ENAMETOOLONG, "--console-sock %s: path too long (at most %zu bytes)",
                      sock_path, sizeof(a.sun_path) - 1);
        goto fail;
    }
    strcpy(a.sun_path, sock_path);
    struct stat st;
    if (lstat(sock_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ret = err_set(e, -EEXIST, "--console-sock %s: exists and is not a socket", sock_path);
            goto fail;
        }
        unlink(sock_path);
    }
    s->sock_path = strdup(sock_path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (!s->sock_path || s->listen_fd < 0) {
        ret = err_set(e, -errno, "console socket: %s", strerror(errno));
        goto fail;
    }
    mode_t old = umask(0077);
    ret = bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a));
    umask(old);
    if (ret < 0 || listen(s->listen_fd, 8) < 0) {
        ret = err_set(e, -errno, "--console-sock %s: %s", sock_path, strerror(errno));
        goto fail;
    }
    if (log_path) {
        s->log_path = strdup(log_path);
        s->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (!s->log_path || s->log_fd < 0) {
            ret = err_set(e, -errno, "--console-log %s: %s", log_path, strerror(errno));
            goto fail;
        }
        if (fstat(s->log_fd, &st) == 0)
            s->log_size = (uint64_t)st.st_size;
    }
    s->retry = evloop_timer_new(c->loop, true, retry_fire, s, e);
    if (!s->retry) {
        ret = -ENOMEM;
        goto fail;
    }
    if ((ret = evloop_add(c->loop, s->listen_fd, accept_ready, s, e)) < 0)
        goto fail;
    c->srv = s;
    return 0;
fail:
    evloop_timer_free(s->retry);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        if (s->sock_path && ret != -EEXIST)
            unlink(s->sock_path);
    }
    if (s->log_fd >= 0)
        close(s->log_fd);
    free(s->sock_path);
    free(s->log_path);
    free(s);
    return ret;
}

void console_server_stop(struct console *c)
{
    struct console_server *s = c->srv;
    if (!s)
        return;
    console_flush(c);
    while (s->ncl)
        drop_client(s, 0);
    evloop_del(c->loop, s->listen_fd);
    close(s->listen_fd);
    unlink(s->sock_path);
    evloop_timer_free(s->retry);
    if (s->log_fd >= 0)
        close(s->log_fd);
    free(s->sock_path);
    free(s->log_path);
    free(s);
    c->srv = NULL;
}
