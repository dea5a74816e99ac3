/* The serial console over a WebSocket (RFC 6455), bridged to the VM's
 * console socket (docs/control-plane.md: any number of clients; each
 * WebSocket gets its own connection, so several viewers share the screen).
 *
 * Protocol (docs/serve.md): binary frames both ways carry the console's
 * raw bytes.  Text frames from the client are JSON control messages:
 * {"type":"resize","cols":N,"rows":N} is accepted and does nothing (a
 * serial line has no size; `stty` in the guest sets it),
 * {"type":"input","data":"..."} is typed like a binary frame; other
 * text is closed with 1003 (unknown type) or 1007 (not JSON).  Frames
 * that break the protocol (unmasked, reserved bits, a bad opcode, a long
 * or fragmented control frame) are closed with 1002; a message over
 * WS_MAX_MSG bytes with 1009.  Closing the WebSocket leaves the VM running.
 *
 * The VNC bridge (GET /api/v1/vms/NAME/vnc, for noVNC) is the same with
 * the VM's vnc.sock (a VM with a display) and binary frames only: RFB
 * passes through untouched both ways; a text frame is closed with 1003.
 *
 * Threads: one per WebSocket (detached), started by the upgrade. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/vm_ops.h"
#include "serve/serve_priv.h"

#define WS_MAX_MSG (64 * 1024)
#define WS_MAX_CLIENTS 64
#define WS_WRITE_TIMEOUT_MS 10000
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws {
    bool vnc;                   /* a VNC bridge: binary frames only */
    int con;                    /* the console (or VNC) socket */
    int sock;                   /* the client's (from libmicrohttpd) */
    struct MHD_UpgradeResponseHandle *urh;
    unsigned char in[WS_MAX_MSG + 16];
    size_t in_len;
};

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nclients;

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* Write all of buf, waiting at most WS_WRITE_TIMEOUT_MS for a slow client. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct pollfd pf = { fd, POLLOUT, 0 };
        if (poll(&pf, 1, WS_WRITE_TIMEOUT_MS) <= 0)
            return -1;
    }
    return 0;
}

static int send_frame(struct ws *w, unsigned opcode, const void *data, size_t len)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    return write_all(w->sock, h, hl) < 0 || write_all(w->sock, data, len) < 0 ? -1 : 0;
}

static void send_close(struct ws *w, unsigned code, const char *why)
{
    unsigned char b[128];
    size_t n = strlen(why) < sizeof(b) - 2 ? strlen(why) : sizeof(b) - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    memcpy(b + 2, why, n);
    send_frame(w, 0x8, b, n + 2);
}

/* A text frame: a JSON control message.  0, or a close code. */
static unsigned text_message(struct ws *w, const unsigned char *p, size_t n)
{
    json_t *j = json_loadb((const char *)p, n, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    unsigned rc = 0;
    if (!json_is_object(j))
        rc = 1007;
    else if (type && !strcmp(type, "resize"))
        rc = 0;                 /* a serial line has no size: nothing to do */
    else if (type && !strcmp(type, "input") && json_is_string(json_object_get(j, "data"))) {
        json_t *d = json_object_get(j, "data");
        if (write_all(w->con, json_string_value(d), json_string_length(d)) < 0)
            rc = 1011;
    } else
        rc = 1003;
    json_decref(j);
    return rc;
}

/* Handle the complete frames in w->in: 0 to go on, else a close code
 * (1000: the client closed). */
static unsigned client_frames(struct ws *w)
{
    for (;;) {
        unsigned char *b = w->in;
        if (w->in_len < 2)
            return 0;
        unsigned fin = b[0] >> 7, rsv = b[0] >> 4 & 7, op = b[0] & 15;
        unsigned masked = b[1] >> 7;
        uint64_t len = b[1] & 127;
        size_t hl = 2;
        if (rsv || !masked)
            return 1002;
        if (len == 126) {
            if (w->in_len < 4)
                return 0;
            len = (uint64_t)b[2] << 8 | b[3];
            hl = 4;
        } else if (len == 127) {
            if (w->in_len < 10)
                return 0;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | b[2 + i];
            hl = 10;
        }
        bool control = op >= 8;
        if ((op > 2 && op < 8) || op > 10 || (control && (len > 125 || !fin)))
            return 1002;
        if (len > WS_MAX_MSG)
            return 1009;
        if (w->in_len < hl + 4 + len)
            return 0;
        unsigned char *mask = b + hl, *p = b + hl + 4;
        for (uint64_t i = 0; i < len; i++)
            p[i] ^= mask[i & 3];
        unsigned rc = 0;
        if (op == 0x8) {
            send_close(w, 1000, "");
            return 1000;
        } else if (op == 0x9) {
            if (send_frame(w, 0xA, p, len) < 0)
                return 1011;
        } else if (op == 0x1) {
            if (w->vnc)
                return 1003;    /* RFB is binary */
            if (!fin)
                return 1003;    /* control messages come in one frame */
            rc = text_message(w, p, len);
        } else if (op == 0x2 || op == 0x0) {
            /* binary (or its continuation): console input as it comes */
            if (write_all(w->con, p, len) < 0)
                rc = 1011;
        }
        if (rc)
            return rc;
        size_t used = hl + 4 + len;
        memmove(w->in, w->in + used, w->in_len - used);
        w->in_len -= used;
    }
}

static void *bridge(void *arg)
{
    struct ws *w = arg;
    static const char *const reasons[] = { [1] = "protocol error", [3] = "unsupported data",
                                           [7] = "invalid payload", [9] = "message too big",
                                           [11] = "console error" };
    unsigned code = 0;
    char buf[16384];
    while (!code) {
        struct pollfd p[2] = { { w->sock, POLLIN, 0 }, { w->con, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            ssize_t n = read(w->con, buf, sizeof(buf));
            if (n <= 0) {
                send_close(w, 1001, w->vnc ? "the VM's display closed (the VM stopped)"
                                           : "the VM's console closed (the VM stopped)");
                break;
            }
            if (send_frame(w, 0x2, buf, (size_t)n) < 0)
                break;
        }
        if (p[0].revents) {
            ssize_t n = recv(w->sock, w->in + w->in_len, sizeof(w->in) - w->in_len, 0);
            if (n < 0 && errno == ENOTSOCK)
                n = read(w->sock, w->in + w->in_len, sizeof(w->in) - w->in_len);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0)
                break;          /* the client went away */
            w->in_len += (size_t)n;
            code = client_frames(w);
        }
    }
    if (code && code != 1000)
        send_close(w, code, code - 1000 < 12 && reasons[code - 1000] ? reasons[code - 1000]
                                                                    : "error");
    close(w->con);
    srv_mhd.upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(w);
    pthread_mutex_lock(&count_lock);
    nclients--;
    pthread_mutex_unlock(&count_lock);
    return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls,
                       const char *extra, size_t extra_len, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    (void)c;
    (void)con_cls;
    struct ws *w = cls;
    w->sock = sock;
    w->urh = urh;
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    if (extra_len && extra_len <= sizeof(w->in)) {
        memcpy(w->in, extra, extra_len);
        w->in_len = extra_len;
    }
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 128 * 1024);
    if (pthread_create(&t, &a, bridge, w)) {
        close(w->con);
        srv_mhd.upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        free(w);
        pthread_mutex_lock(&count_lock);
        nclients--;
        pthread_mutex_unlock(&count_lock);
    }
    pthread_attr_destroy(&a);
}

static int connect_console(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

static enum MHD_Result ws_open(struct srv_req *r, const char *name, bool vnc)
{
    const char *up = srv_header(r, "Upgrade"), *key = srv_header(r, "Sec-WebSocket-Key");
    const char *ver = srv_header(r, "Sec-WebSocket-Version");
    if (!up || strcasecmp(up, "websocket") || !key || strlen(key) != 24)
        return srv_error(r, 400, "a WebSocket upgrade (Upgrade: websocket, "
                         "Sec-WebSocket-Key) is expected here");
    if (!ver || strcmp(ver, "13")) {
        const char *const h[] = { "Sec-WebSocket-Version", "13", NULL };
        return srv_send(r, 426, "application/json",
                        "{\"error\":\"WebSocket version 13 only\"}", 36, h);
    }
    if (!auth_origin_ok(r))
        return srv_error(r, 403, "the WebSocket's Origin is not this server");
    char api[4096], con[4096];
    struct err e = { "" };
    if (vnc ? vm_ops_vnc_socket(name, con, sizeof(con), &e)
            : vm_ops_sockets(name, api, con, sizeof(api), &e))
        return srv_error(r, strstr(e.msg, "no VM named") ? 404 : 409, "%s", e.msg);
    pthread_mutex_lock(&count_lock);
    bool full = nclients >= WS_MAX_CLIENTS;
    if (!full)
        nclients++;
    pthread_mutex_unlock(&count_lock);
    if (full)
        return srv_error(r, 503, "too many console clients (%d)", WS_MAX_CLIENTS);
    struct ws *w = calloc(1, sizeof(*w));
    int fd = w ? connect_console(con) : -ENOMEM;
    if (fd < 0) {
        free(w);
        pthread_mutex_lock(&count_lock);
        nclients--;
        pthread_mutex_unlock(&count_lock);
        if (vnc && (fd == -ENOENT || fd == -ECONNREFUSED))
            return srv_error(r, 409, "%s has no display (petrel vm set %s --display on, "
                             "then restart it)", name, name);
        return srv_error(r, 502, "%s: cannot connect to the %s: %s", name,
                         vnc ? "display" : "console", strerror(-fd));
    }
    w->con = fd;
    w->vnc = vnc;
    char acc[128], b[64];
    unsigned char sha[20];
    snprintf(acc, sizeof(acc), "%s" WS_GUID, key);
    srv_sha1(acc, strlen(acc), sha);
    b64(sha, 20, b);
    struct MHD_Response *resp = srv_mhd.create_response_for_upgrade(on_upgrade, w);
    enum MHD_Result ret = MHD_NO;
    if (resp) {
        srv_mhd.add_response_header(resp, "Upgrade", "websocket");
        srv_mhd.add_response_header(resp, "Sec-WebSocket-Accept", b);
        ret = srv_mhd.queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
        srv_mhd.destroy_response(resp);
    }
    if (ret != MHD_YES) {
        close(fd);
        free(w);
        pthread_mutex_lock(&count_lock);
        nclients--;
        pthread_mutex_unlock(&count_lock);
    }
    return ret;
}

enum MHD_Result ws_console(struct srv_req *r, const char *name)
{
    return ws_open(r, name, false);
}

enum MHD_Result ws_vnc(struct srv_req *r, const char *name)
{
    return ws_open(r, name, true);
}
