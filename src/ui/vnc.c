/* The VNC server (vnc.h) on libvncserver, driven from the VM's event loop.
 *
 * Design
 * - Petrel listens and accepts itself (TCP or a unix socket) and hands
 *   each connection to libvncserver (rfbNewClient); libvncserver opens no
 *   socket and runs no thread of its own.  Each client's socket is a
 *   device handler on the loop: when it is readable, one message is
 *   processed (rfbProcessClientMessage), then whatever update the client
 *   asked for is sent (rfbUpdateClient).  So every libvncserver call, the
 *   key and pointer callbacks into the input devices, and the display
 *   callbacks from the gpu all run in device context: no locks.
 * - The framebuffer is the server's own copy, 32 bits a pixel with the
 *   bytes B, G, R, X (what Linux's virtio-gpu driver uses, copied as is;
 *   other guest formats are converted); libvncserver translates to each
 *   client's pixel format.  A guest flush copies the flushed rectangle,
 *   marks it modified and sends it to the clients waiting for an update:
 *   dirty rectangles, not frames.  The size follows the guest's scanout
 *   (rfbNewFramebuffer, clients told by DesktopSize where they support
 *   it); before the guest sets one, the screen is 640x480 and black.
 * - Keys: X keysyms to evdev codes (ui/keymap.c, US layout).  A character
 *   that needs Shift arriving without Shift held (pasted text typed as
 *   keystrokes, noVNC's clipboard) gets a Shift press around it, and one
 *   that needs none while Shift is held gets Shift released around it.
 *   Pointer events go to the tablet, scaled to its 0..32767 axes.
 * - Limits: at most VNC_MAX_CLIENTS at once (more are closed at once); a
 *   client that stops reading stalls a write for at most maxClientWait
 *   (VNC_CLIENT_WAIT_MS) before it is dropped, as libvncserver writes
 *   synchronously. */
#include "ui/vnc.h"

#include <fcntl.h>
#include <errno.h>
#include <netdb.h>
#include <rfb/rfb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/dynlib.h"
#include "core/usock.h"
#include "ui/keymap.h"

#define VNC_SONAME "libvncserver.so.1"
#define VNC_MAX_CLIENTS 8
#define VNC_CLIENT_WAIT_MS 2000
#define VNC_DEFAULT_W 640
#define VNC_DEFAULT_H 480
#define VNC_STR2(x) #x
#define VNC_STR(x) VNC_STR2(x)

static struct vnc_api {
    __typeof__(rfbGetScreen) *get_screen;
    __typeof__(rfbInitServer) *init_server;
    __typeof__(rfbNewClient) *new_client;
    __typeof__(rfbProcessClientMessage) *process_client_message;
    __typeof__(rfbClientConnectionGone) *client_gone;
    __typeof__(rfbCloseClient) *close_client;
    __typeof__(rfbUpdateClient) *update_client;
    __typeof__(rfbMarkRectAsModified) *mark_modified;
    __typeof__(rfbNewFramebuffer) *new_framebuffer;
    __typeof__(rfbScreenCleanup) *screen_cleanup;
    __typeof__(rfbCheckPasswordByList) *check_password_by_list;
    rfbLogProc *log, *err;
} rfb;

static const struct dynlib_sym rfb_syms[] = {
    { "rfbGetScreen", offsetof(struct vnc_api, get_screen) },
    { VNC_STR(rfbInitServer), offsetof(struct vnc_api, init_server) },
    { "rfbNewClient", offsetof(struct vnc_api, new_client) },
    { "rfbProcessClientMessage", offsetof(struct vnc_api, process_client_message) },
    { "rfbClientConnectionGone", offsetof(struct vnc_api, client_gone) },
    { "rfbCloseClient", offsetof(struct vnc_api, close_client) },
    { "rfbUpdateClient", offsetof(struct vnc_api, update_client) },
    { "rfbMarkRectAsModified", offsetof(struct vnc_api, mark_modified) },
    { "rfbNewFramebuffer", offsetof(struct vnc_api, new_framebuffer) },
    { "rfbScreenCleanup", offsetof(struct vnc_api, screen_cleanup) },
    { "rfbCheckPasswordByList", offsetof(struct vnc_api, check_password_by_list) },
    { "rfbLog", offsetof(struct vnc_api, log) },
    { "rfbErr", offsetof(struct vnc_api, err) },
};

static void rfb_quiet(const char *fmt, ...)
{
    if (log_verbose() < 2)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    buf[strcspn(buf, "\n")] = 0;
    log_debug("vnc: %s", buf);
}

static struct dynlib rfb_lib = { VNC_SONAME, "the VNC server", "libvncserver1", rfb_syms,
                                 sizeof(rfb_syms) / sizeof(rfb_syms[0]), NULL };

static int rfb_load(struct err *e)
{
    bool first = !rfb_lib.handle;
    if (dynlib_load(&rfb_lib, &rfb, e) < 0)
        return -ELIBACC;
    if (first) {
        *rfb.log = rfb_quiet;   /* its chatter only with -vv */
        *rfb.err = rfb_quiet;
    }
    return 0;
}

struct vnc_client {
    struct vnc *v;
    rfbClientPtr cl;
    int fd;                     /* ours; libvncserver has a dup */
    uint16_t shifted[256];      /* per evdev code: Shift we added (1) or took away (2) */
};

struct vnc {
    struct display display;     /* first: the devices' view */
    struct evloop *loop;
    rfbScreenInfoPtr screen;
    uint8_t *fb;
    unsigned w, h;
    int listen_fd;
    char *unix_path;
    struct usock_id usock;
    char addr[160];
    char password[64];
    char *passwords[2];
    struct vnc_client *clients[VNC_MAX_CLIENTS];
    unsigned nclients;
    unsigned shift_held;        /* Shift keys the client holds (bit 0 left, 1 right) */
    bool closed;
};

/* --- spec --------------------------------------------------------------------- */

struct vnc_spec {
    char addr[128];
    char password_file[256];
};

static int parse_spec(const char *spec, struct vnc_spec *s, struct err *e)
{
    memset(s, 0, sizeof(*s));
    size_t n = strcspn(spec, ",");
    if (!n || n >= sizeof(s->addr))
        return err_set(e, -EINVAL, "--vnc '%s': give HOST:PORT or unix:PATH", spec);
    memcpy(s->addr, spec, n);
    for (const char *p = spec + n; *p;) {
        p++;
        size_t m = strcspn(p, ",");
        if (!strncmp(p, "password-file=", 14) && m > 14 && m - 14 < sizeof(s->password_file))
            memcpy(s->password_file, p + 14, m - 14);
        else
            return err_set(e, -EINVAL, "--vnc: unknown option '%.*s' (password-file=PATH)",
                           (int)m, p);
        p += m;
    }
    if (!strncmp(s->addr, "unix:", 5)) {
        if (!s->addr[5] || strlen(s->addr + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return err_set(e, -EINVAL, "--vnc %s: the socket path is empty or too long", s->addr);
        return 0;
    }
    const char *colon = strrchr(s->addr, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == s->addr || !colon[1] || *end || port > 65535)
        return err_set(e, -EINVAL, "--vnc '%s': give HOST:PORT (e.g. 127.0.0.1:5900) or "
                       "unix:PATH", s->addr);
    return 0;
}

int vnc_check_spec(const char *spec, struct err *e)
{
    struct vnc_spec s;
    return parse_spec(spec, &s, e);
}

static int listen_tcp(struct vnc *v, const char *addr, struct err *e)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    size_t hn = (size_t)(colon - addr);
    memcpy(host, addr, hn);
    host[hn] = 0;
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = 0;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res;
    int r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r)
        return err_set(e, -EINVAL, "--vnc %s: %s", addr, gai_strerror(r));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 8) < 0) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return err_set(e, r, "--vnc %s: %s", addr, strerror(-r));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(v->addr, sizeof(v->addr), strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
    else
        snprintf(v->addr, sizeof(v->addr), "%s", addr);
    v->listen_fd = fd;
    return 0;
}

static int read_password(struct vnc *v, const char *path, struct err *e)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return err_set(e, -errno, "--vnc password-file=%s: %s", path, strerror(errno));
    if (!fgets(v->password, sizeof(v->password), f))
        v->password[0] = 0;
    fclose(f);
    v->password[strcspn(v->password, "\r\n")] = 0;
    if (!v->password[0])
        return err_set(e, -EINVAL, "--vnc password-file=%s: the first line is empty", path);
    v->passwords[0] = v->password;
    v->passwords[1] = NULL;
    return 0;
}

/* --- the display (called by the gpu) ------------------------------------------- */

static void send_updates(struct vnc *v);

static void set_size(struct vnc *v, unsigned w, unsigned h)
{
    uint8_t *fb = calloc((size_t)w * h, 4);
    if (!fb) {
        log_warn("vnc: no memory for a %ux%u screen", w, h);
        return;
    }
    rfbPixelFormat *pf = &v->screen->serverFormat;
    rfb.new_framebuffer(v->screen, (char *)fb, (int)w, (int)h, 8, 3, 4);
    pf->redShift = 16;          /* bytes B, G, R, X */
    pf->greenShift = 8;
    pf->blueShift = 0;
    free(v->fb);
    v->fb = fb;
    v->w = w;
    v->h = h;
}

static void display_resize(struct display *d, unsigned w, unsigned h)
{
    struct vnc *v = (struct vnc *)d;
    if (v->closed)
        return;
    if (!w || !h) {             /* the guest shows nothing: black */
        memset(v->fb, 0, (size_t)v->w * v->h * 4);
    } else if (w != v->w || h != v->h) {
        set_size(v, w, h);
    }
    rfb.mark_modified(v->screen, 0, 0, (int)v->w, (int)v->h);
    send_updates(v);
}

static void display_update(struct display *d, const uint8_t *src, size_t stride,
                           enum display_format f, unsigned x, unsigned y, unsigned w, unsigned h)
{
    struct vnc *v = (struct vnc *)d;
    if (v->closed || x >= v->w || y >= v->h)
        return;
    if (w > v->w - x)
        w = v->w - x;
    if (h > v->h - y)
        h = v->h - y;
    /* byte positions of B, G, R in the source pixel */
    static const uint8_t pos[][3] = {
        [DISPLAY_BGRX] = { 0, 1, 2 }, [DISPLAY_XRGB] = { 3, 2, 1 },
        [DISPLAY_RGBX] = { 2, 1, 0 }, [DISPLAY_XBGR] = { 1, 2, 3 },
    };
    for (unsigned r = 0; r < h; r++) {
        const uint8_t *s = src + r * stride;
        uint8_t *o = v->fb + ((size_t)(y + r) * v->w + x) * 4;
        if (f == DISPLAY_BGRX) {
            memcpy(o, s, (size_t)w * 4);
            continue;
        }
        for (unsigned c = 0; c < w; c++, s += 4, o += 4) {
            o[0] = s[pos[f][0]];
            o[1] = s[pos[f][1]];
            o[2] = s[pos[f][2]];
            o[3] = 0;
        }
    }
    rfb.mark_modified(v->screen, (int)x, (int)y, (int)(x + w), (int)(y + h));
    send_updates(v);
}

/* --- clients ------------------------------------------------------------------- */

static void client_drop(struct vnc_client *c)
{
    struct vnc *v = c->v;
    evloop_del(v->loop, c->fd);
    close(c->fd);
    if (c->cl) {
        if (c->cl->sock != RFB_INVALID_SOCKET)
            rfb.close_client(c->cl);
        rfb.client_gone(c->cl);
    }
    for (unsigned i = 0; i < v->nclients; i++)
        if (v->clients[i] == c) {
            v->clients[i] = v->clients[--v->nclients];
            break;
        }
    log_debug("vnc: a client left (%u left)", v->nclients);
    free(c);
}

/* Send what each client asked for; drop those whose connection ended. */
static void send_updates(struct vnc *v)
{
    for (unsigned i = v->nclients; i-- > 0;) {
        struct vnc_client *c = v->clients[i];
        if (c->cl->sock != RFB_INVALID_SOCKET)
            rfb.update_client(c->cl);
        if (c->cl->sock == RFB_INVALID_SOCKET)
            client_drop(c);
    }
}

static void client_readable(void *opaque)
{
    struct vnc_client *c = opaque;
    rfb.process_client_message(c->cl);
    if (c->cl->sock != RFB_INVALID_SOCKET)
        rfb.update_client(c->cl);
    if (c->cl->sock == RFB_INVALID_SOCKET)
        client_drop(c);
}

static void key_event(rfbBool down, rfbKeySym ks, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    struct vnc *v = c->v;
    struct display *d = &v->display;
    bool need_shift;
    unsigned code = keymap_code(ks, &need_shift);
    if (!code) {
        log_debug("vnc: keysym 0x%x has no key", (unsigned)ks);
        return;
    }
    if (code == KEYMAP_KEY_LEFTSHIFT || code == 54) {
        unsigned bit = code == KEYMAP_KEY_LEFTSHIFT ? 1 : 2;
        v->shift_held = down ? v->shift_held | bit : v->shift_held & ~bit;
    }
    if (!d->key)
        return;
    bool is_char = ks >= 0x20 && ks <= 0x7e;
    bool held = v->shift_held != 0;
    if (down) {
        c->shifted[code] = 0;
        if (is_char && need_shift && !held) {
            d->key(d->keyboard, KEYMAP_KEY_LEFTSHIFT, true);
            c->shifted[code] = 1;
        } else if (is_char && !need_shift && held) {
            if (v->shift_held & 1)
                d->key(d->keyboard, KEYMAP_KEY_LEFTSHIFT, false);
            if (v->shift_held & 2)
                d->key(d->keyboard, 54, false);
            c->shifted[code] = 2;
        }
        d->key(d->keyboard, code, true);
        return;
    }
    d->key(d->keyboard, code, false);
    if (c->shifted[code] == 1) {
        d->key(d->keyboard, KEYMAP_KEY_LEFTSHIFT, false);
    } else if (c->shifted[code] == 2) {
        if (v->shift_held & 1)
            d->key(d->keyboard, KEYMAP_KEY_LEFTSHIFT, true);
        if (v->shift_held & 2)
            d->key(d->keyboard, 54, true);
    }
    c->shifted[code] = 0;
}

static void ptr_event(int mask, int x, int y, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    struct vnc *v = c->v;
    struct display *d = &v->display;
    if (!d->pointer_abs || !v->w || !v->h)
        return;
    x = x < 0 ? 0 : x >= (int)v->w ? (int)v->w - 1 : x;
    y = y < 0 ? 0 : y >= (int)v->h ? (int)v->h - 1 : y;
    unsigned ax = v->w > 1 ? (unsigned)((uint64_t)x * DISPLAY_ABS_MAX / (v->w - 1)) : 0;
    unsigned ay = v->h > 1 ? (unsigned)((uint64_t)y * DISPLAY_ABS_MAX / (v->h - 1)) : 0;
    d->pointer_abs(d->pointer, ax, ay, (unsigned)mask & 0x1f);
}

static void accept_client(void *opaque)
{
    struct vnc *v = opaque;
    int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (v->nclients >= VNC_MAX_CLIENTS) {
        log_warn("vnc: refusing a client: %u are connected already", v->nclients);
        close(fd);
        return;
    }
    struct vnc_client *c = calloc(1, sizeof(*c));
    int dup_fd = c ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    struct err e = { "" };
    if (!c || dup_fd < 0 || evloop_add(v->loop, fd, client_readable, c, &e) < 0) {
        log_warn("vnc: cannot take a client: %s", e.msg[0] ? e.msg : strerror(errno));
        if (dup_fd >= 0)
            close(dup_fd);
        close(fd);
        free(c);
        return;
    }
    c->v = v;
    c->fd = fd;
    c->cl = rfb.new_client(v->screen, dup_fd);     /* sends the protocol version */
    if (!c->cl) {
        evloop_del(v->loop, fd);
        close(fd);
        free(c);
        return;
    }
    c->cl->clientData = c;
    v->clients[v->nclients++] = c;
    log_debug("vnc: a client connected (%u now)", v->nclients);
}

/* --- set-up and teardown ----------------------------------------------------- */

struct vnc *vnc_new(const char *spec, struct evloop *loop, struct err *e)
{
    struct vnc_spec s;
    if (parse_spec(spec, &s, e) < 0 || rfb_load(e) < 0)
        return NULL;
    struct vnc *v = calloc(1, sizeof(*v));
    if (!v) {
        err_set(e, -ENOMEM, "vnc: out of memory");
        return NULL;
    }
    v->loop = loop;
    v->listen_fd = -1;
    v->display.resize = display_resize;
    v->display.update = display_update;
    if (s.password_file[0] && read_password(v, s.password_file, e) < 0)
        goto fail;
    int argc = 0;
    v->screen = rfb.get_screen(&argc, NULL, VNC_DEFAULT_W, VNC_DEFAULT_H, 8, 3, 4);
    if (!v->screen) {
        err_set(e, -ENOMEM, "vnc: libvncserver could not make a screen");
        goto fail;
    }
    rfbScreenInfoPtr sc = v->screen;
    sc->desktopName = "petrel";
    sc->alwaysShared = TRUE;
    sc->deferUpdateTime = 0;
    sc->maxClientWait = VNC_CLIENT_WAIT_MS;
    sc->socketState = RFB_SOCKET_READY;     /* our sockets, not libvncserver's */
    sc->port = sc->ipv6port = -1;
    sc->httpPort = sc->http6Port = -1;
    sc->kbdAddEvent = key_event;
    sc->ptrAddEvent = ptr_event;
    sc->screenData = v;
    if (v->password[0]) {
        sc->authPasswdData = v->passwords;
        sc->passwordCheck = rfb.check_password_by_list;
    }
    set_size(v, VNC_DEFAULT_W, VNC_DEFAULT_H);
    if (!v->fb) {
        err_set(e, -ENOMEM, "vnc: out of memory");
        goto fail;
    }
    rfb.init_server(sc);
    int ret;
    if (!strncmp(s.addr, "unix:", 5)) {
        v->unix_path = strdup(s.addr + 5);
        ret = v->unix_path ? usock_listen("--vnc", v->unix_path, 8, &v->usock, e)
                           : err_set(e, -ENOMEM, "vnc: out of memory");
        if (ret >= 0) {
            v->listen_fd = ret;
            snprintf(v->addr, sizeof(v->addr), "%s", s.addr);
        }
    } else {
        ret = listen_tcp(v, s.addr, e);
    }
    if (ret < 0 || evloop_add(loop, v->listen_fd, accept_client, v, e) < 0)
        goto fail;
    return v;
fail:
    vnc_close(v);
    vnc_free(v);
    return NULL;
}

struct display *vnc_display(struct vnc *v)
{
    return &v->display;
}

const char *vnc_address(const struct vnc *v)
{
    return v->addr;
}

void vnc_close(struct vnc *v)
{
    if (!v || v->closed)
        return;
    while (v->nclients)
        client_drop(v->clients[0]);
    if (v->listen_fd >= 0) {
        evloop_del(v->loop, v->listen_fd);
        close(v->listen_fd);
        v->listen_fd = -1;
    }
    if (v->unix_path)
        usock_unlink(v->unix_path, &v->usock);
    v->closed = true;
}

void vnc_free(struct vnc *v)
{
    if (!v)
        return;
    vnc_close(v);
    if (v->screen) {
        v->screen->frameBuffer = NULL;  /* ours: freed below */
        rfb.screen_cleanup(v->screen);
    }
    free(v->fb);
    free(v->unix_path);
    free(v);
}
