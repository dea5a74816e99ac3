/* The VNC server: `petrel run --vnc ADDR[,password-file=PATH]` shows the
 * guest's display (core/display.h: a virtio-gpu's scanout) to VNC clients
 * and feeds their keys and pointer to the virtio keyboard and tablet.
 *
 * ADDR: HOST:PORT (IPv4, a name, or [IPv6]:PORT), or unix:PATH.  Without
 * password-file= there is no authentication: anyone who reaches the
 * socket sees the screen and types into the guest, so use loopback or a
 * unix socket in a private directory.  password-file=PATH: classic VNC
 * authentication with the file's first line (VNC uses at most 8
 * characters; it is a weak DES challenge, not encryption: still keep it
 * local or tunnel it).
 *
 * libvncserver (Debian libvncserver1) is loaded with dlopen when a server
 * is made, so `petrel run` without --vnc pays nothing for it. */
#ifndef PETREL_VNC_H
#define PETREL_VNC_H

#include "core/display.h"
#include "core/evloop.h"
#include "core/log.h"

struct vnc;

/* Parse spec and listen; clients are served on loop (device context). */
struct vnc *vnc_new(const char *spec, struct evloop *loop, struct err *e);
/* The display to hand to the devices (virtio_host.display). */
struct display *vnc_display(struct vnc *v);
/* Where clients connect, e.g. "127.0.0.1:5900" (the port chosen for :0). */
const char *vnc_address(const struct vnc *v);
/* Disconnect everybody and stop listening (while the loop exists); the
 * display stays valid, showing nothing, until vnc_free. */
void vnc_close(struct vnc *v);
void vnc_free(struct vnc *v);

/* Only check a spec's syntax (for argument parsing); 0 or -EINVAL. */
int vnc_check_spec(const char *spec, struct err *e);

#endif
