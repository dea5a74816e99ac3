#include "api/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/dynlib.h"

/* libmicrohttpd is loaded when the first server starts, not at exec: it
 * brings GnuTLS and p11-kit, whose loading and constructors cost about
 * 15 ms at every start of every petrel command (measured on this project's
 * 2-core machines), which is most of the time from exec to a restored
 * snapshot's first instruction. */
#define MHD_SONAME "libmicrohttpd.so.12"

static struct mhd_api {
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_get_timeout) *get_timeout;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_quiesce_daemon) *quiesce_daemon;
    __typeof__(MHD_run) *run;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
} mhd;

static const struct dynlib_sym mhd_syms[] = {
    { "MHD_add_response_header", offsetof(struct mhd_api, add_response_header) },
    { "MHD_create_response_from_buffer", offsetof(struct mhd_api, create_response_from_buffer) },
    { "MHD_destroy_response", offsetof(struct mhd_api, destroy_response) },
    { "MHD_get_daemon_info", offsetof(struct mhd_api, get_daemon_info) },
    { "MHD_get_timeout", offsetof(struct mhd_api, get_timeout) },
    { "MHD_lookup_connection_value", offsetof(struct mhd_api, lookup_connection_value) },
    { "MHD_queue_response", offsetof(struct mhd_api, queue_response) },
    { "MHD_quiesce_daemon", offsetof(struct mhd_api, quiesce_daemon) },
    { "MHD_run", offsetof(struct mhd_api, run) },
    { "MHD_start_daemon", offsetof(struct mhd_api, start_daemon) },
    { "MHD_stop_daemon", offsetof(struct mhd_api, stop_daemon) },
};

static struct dynlib mhd_lib = { MHD_SONAME, "the API's HTTP server", "libmicrohttpd12",
                                 mhd_syms, sizeof(mhd_syms) / sizeof(mhd_syms[0]), NULL };

static int mhd_load(struct err *e)
{
    return dynlib_load(&mhd_lib, &mhd, e);
}

struct http_server {
    struct MHD_Daemon *mhd;
    struct evloop *loop;
    struct evloop_timer *timer;
    int epfd;                   /* libmicrohttpd's, registered with loop */
    http_handler handler;
    void *opaque;
};

/* One request: made by the URI callback, freed when it completes. */
struct http_req {
    char *query;
    char *body;
    size_t len;
    bool started;               /* the access handler has seen the headers */
    bool too_big;
    size_t total;               /* bytes of body received, kept or not */
};

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    log_debug("api: libmicrohttpd: %s", line);
}

static void *http_uri_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct http_req *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    const char *qm = strchr(uri, '?');
    q->query = strdup(qm ? qm + 1 : "");
    if (!q->query) {
        free(q);
        return NULL;
    }
    return q;
}

static void http_completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct http_req *q = *con_cls;
    if (q) {
        free(q->query);
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

/* Queue r (taking its body), closing the connection after it with close;
 * MHD_NO closes the connection at once. */
static enum MHD_Result http_send(struct MHD_Connection *c, struct http_reply *r, bool close)
{
    struct MHD_Response *resp;
    if (r->body && r->len) {
        resp = mhd.create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(r->body);
    } else {
        free(r->body);
        resp = mhd.create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    r->body = NULL;
    if (!resp)
        return MHD_NO;
    if (r->content_type)
        mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (close)
        mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = mhd.queue_response(c, r->status ? r->status : 500, resp);
    mhd.destroy_response(resp);
    return ret;
}

static enum MHD_Result http_fault(struct MHD_Connection *c, unsigned status, const char *msg,
                                  bool close)
{
    /* msg is ours: no characters that need JSON escaping */
    struct http_reply r = { .status = status, .content_type = "application/json" };
    if (asprintf(&r.body, "{\"fault_message\":\"%s\"}", msg) < 0)
        return MHD_NO;
    r.len = strlen(r.body);
    return http_send(c, &r, close);
}

static enum MHD_Result http_too_big(struct MHD_Connection *c, unsigned long long size)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Request payload with size %llu is larger than the limit of %u "
             "allowed by server.", size, HTTP_MAX_BODY);
    return http_fault(c, 400, msg, true);
}

static enum MHD_Result http_access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct http_req *q = *con_cls;
    if (!q)     /* the URI callback ran out of memory */
        return http_fault(c, 500, "out of memory", true);
    if (!q->started) {
        /* headers only: a declared oversized body is refused at once when
         * the client waits for "100 Continue" (it sends nothing more) or
         * when it is too big to be worth reading; otherwise it is read and
         * discarded, so that the client, still sending, gets the answer
         * instead of a broken pipe */
        q->started = true;
        const char *cl = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (!errno && end != cl && n > HTTP_MAX_BODY) {
                const char *expect = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                                 MHD_HTTP_HEADER_EXPECT);
                if ((expect && !strcasecmp(expect, "100-continue")) || n > HTTP_DISCARD_MAX)
                    return http_too_big(c, n);
                q->too_big = true;
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        q->total += n;
        if (q->too_big)     /* a chunked body past HTTP_DISCARD_MAX: hang up */
            return q->total > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
        if (q->len + n > HTTP_MAX_BODY) {
            q->too_big = true;
            free(q->body);
            q->body = NULL;
            q->len = 0;
            return MHD_YES;
        }
        char *nb = realloc(q->body, q->len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + q->len, upload_data, n);
        q->len += n;
        nb[q->len] = 0;
        q->body = nb;
        return MHD_YES;
    }
    if (q->too_big)
        return http_too_big(c, q->total);
    struct http_reply r = { 0 };
    s->handler(s->opaque, method, url, q->query, q->body ? q->body : "", q->len, &r);
    log_debug("api: %s %s%s%s: %u", method, url, q->query[0] ? "?" : "", q->query, r.status);
    return http_send(c, &r, false);
}

static void http_rearm(struct http_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (mhd.get_timeout(s->mhd, &ms) == MHD_YES) {
        uint64_t ns = ms > UINT64_MAX / 1000000 ? UINT64_MAX : (uint64_t)ms * 1000000;
        evloop_timer_set(s->timer, ns ? ns : 1, 0);   /* 0 would disarm */
    } else {
        evloop_timer_set(s->timer, 0, 0);
    }
}

static void http_run(void *opaque)
{
    struct http_server *s = opaque;
    mhd.run(s->mhd);
    http_rearm(s);
}

struct http_server *http_server_new(int listen_fd, struct evloop *loop, http_handler handler,
                                    void *opaque, struct err *e)
{
    if (mhd_load(e) < 0)
        return NULL;
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->handler = handler;
    s->opaque = opaque;
    s->epfd = -1;
    s->mhd = mhd.start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                              http_access_cb, s,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS,
                              MHD_OPTION_URI_LOG_CALLBACK, http_uri_cb, (void *)s,
                              MHD_OPTION_NOTIFY_COMPLETED, http_completed_cb, (void *)s,
                              MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, (void *)s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        err_set(e, -EINVAL, "cannot start the HTTP server (libmicrohttpd) on the API socket");
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = mhd.get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        err_set(e, -EINVAL, "libmicrohttpd has no epoll descriptor");
        goto fail;
    }
    s->timer = evloop_timer_new(loop, false, http_run, s, e);
    if (!s->timer)
        goto fail;
    if (evloop_add_ctl(loop, info->epoll_fd, http_run, s, e) < 0)
        goto fail;
    s->epfd = info->epoll_fd;
    http_rearm(s);
    return s;
fail:
    if (s->timer)
        evloop_timer_free(s->timer);
    /* MHD_stop_daemon would close listen_fd, which stays the caller's */
    mhd.quiesce_daemon(s->mhd);
    mhd.stop_daemon(s->mhd);
    free(s);
    return NULL;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->epfd >= 0)
        evloop_del(s->loop, s->epfd);
    evloop_timer_free(s->timer);
    mhd.stop_daemon(s->mhd);
    free(s);
}

int http_preload(struct err *e)
{
    return mhd_load(e);
}

int http_listen_unix(const char *path, struct err *e)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (!*path || strlen(path) >= sizeof(a.sun_path))
        return err_set(e, -ENAMETOOLONG, "%s: a socket path is 1 to %zu bytes", path,
                       sizeof(a.sun_path) - 1);
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, -errno, "socket: %s", strerror(errno));
    int ret;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ret = err_set(e, -EEXIST, "%s exists and is not a socket (not replacing it)", path);
            goto fail;
        }
        /* a socket file: stale unless someone accepts on it */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            ret = err_set(e, -errno, "socket: %s", strerror(errno));
            goto fail;
        }
        int c = connect(probe, (struct sockaddr *)&a, sizeof(a));
        int cerr = errno;
        close(probe);
        if (c == 0) {
            ret = err_set(e, -EADDRINUSE, "%s: another process is serving this socket", path);
            goto fail;
        }
        if (cerr != ECONNREFUSED) {
            ret = err_set(e, -cerr, "%s: %s", path, strerror(cerr));
            goto fail;
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            ret = err_set(e, -errno, "%s: cannot remove the stale socket: %s", path,
                          strerror(errno));
            goto fail;
        }
    } else if (errno != ENOENT) {
        ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* Linux creates the socket file with the socket inode's mode (minus
     * the umask): 0600 from the start, no window where others may connect */
    if (fchmod(fd, 0600) < 0) {
        ret = err_set(e, -errno, "fchmod: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        ret = err_set(e, -errno, "%s: bind: %s", path, strerror(errno));
        goto fail;
    }
    /* and by path too, before anyone can connect (nothing is accepted
     * before listen) */
    if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
        ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return ret;
}
