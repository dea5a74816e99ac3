/* Network backends: where a virtual NIC's Ethernet frames go on the host.
 *
 * Design
 * - A backend moves whole Ethernet frames (destination MAC first, no FCS,
 *   no virtio header) between one frontend (a virtual NIC such as
 *   virtio-net) and the host: user-mode NAT through libslirp today
 *   (net/slirp.c), a VM-to-VM switch (net/private.c) and a host TAP
 *   interface (net/tap.c), behind the same struct net_backend.
 * - Guest -> host: the frontend calls ops->send once per frame (the backend
 *   copies what it keeps; the frame is only valid during the call), then
 *   ops->flush once per batch so the backend can do per-batch work (slirp
 *   re-reads which host sockets it wants watched).
 * - Host -> guest: the backend calls be->receive(be->opaque, frame, len),
 *   set by the frontend, once per frame.  The frontend never blocks the
 *   backend: it queues a bounded number of frames while the guest has no
 *   receive buffers and drops beyond (a NAT's TCP retransmits, as on a
 *   real congested link).
 * - Threads: none of its own.  A backend's host descriptors are driven by
 *   the VM's device event loop (core/evloop.h), so every call, both ways,
 *   runs in device context, serialised with the device emulation: no locks.
 * - What can fail: creating a backend (its options, host sockets, a
 *   forwarded port in use) through struct err; afterwards a backend never
 *   fails a send (frames it cannot use are dropped and counted). */
#ifndef PETREL_NET_H
#define PETREL_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/evloop.h"
#include "core/log.h"

#define NET_ETH_HLEN 14
#define NET_MTU 1500
/* the largest frame either way: MTU + Ethernet header + one VLAN tag */
#define NET_MAX_FRAME (NET_MTU + NET_ETH_HLEN + 4)

struct net_backend;
struct snap_writer;
struct snap_reader;

struct net_backend_ops {
    /* One frame from the guest, NET_ETH_HLEN..NET_MAX_FRAME bytes. */
    void (*send)(struct net_backend *be, const uint8_t *frame, size_t len);
    /* The end of a batch of sends (optional). */
    void (*flush)(struct net_backend *be);
    void (*free)(struct net_backend *be);
    /* Optional, snapshots (core/snapshot.h), for a backend with state of
     * its own (slirp's DHCP leases): save appends it to the frontend's
     * section; load reads and checks what save wrote (failures recorded in
     * r) and keeps it; restore applies what load kept, once the frontend's
     * whole section has checked out (0, or a negative errno with a
     * message).  A backend without them (TAP, a private network) has no
     * state a snapshot could hold. */
    void (*save)(struct net_backend *be, struct snap_writer *w);
    void (*load)(struct net_backend *be, struct snap_reader *r);
    int (*restore)(struct net_backend *be, struct err *e);
};

struct net_backend {
    const struct net_backend_ops *ops;
    const char *name;                   /* for messages: "user", ... */
    /* set by the frontend: a frame for the guest */
    void (*receive)(void *opaque, const uint8_t *frame, size_t len);
    void *opaque;
};

static inline void net_backend_free(struct net_backend *be)
{
    if (be)
        be->ops->free(be);
}

/* --- user-mode NAT (libslirp), net/slirp.c ------------------------------- */

#define NET_MAX_HOSTFWD 16

/* hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
struct net_hostfwd {
    bool udp;
    struct in_addr host_addr;           /* INADDR_ANY when not given */
    struct in_addr guest_addr;          /* the DHCP address when not given */
    uint16_t host_port, guest_port;
    char spec[96];                      /* as given, for messages */
};

struct net_user_config {
    bool restrict_;                     /* restrict=on: no traffic beyond the guest net */
    /* The guest network; network.s_addr == 0 means NET_USER_* (10.0.2.0/24).
     * Otherwise host, dns and dhcp_start must lie inside it (the switch
     * derives them: .2, .3 and .15 of its CIDR). */
    struct in_addr network, netmask, host, dns, dhcp_start;
    unsigned nfwd;
    struct net_hostfwd fwd[NET_MAX_HOSTFWD];
};

/* The guest network, as QEMU's -netdev user has it. */
#define NET_USER_NETWORK "10.0.2.0"
#define NET_USER_NETMASK "255.255.255.0"
#define NET_USER_HOST "10.0.2.2"
#define NET_USER_DNS "10.0.2.3"
#define NET_USER_DHCP_START "10.0.2.15"

/* Parse one hostfwd= value into f (message in e). */
int net_hostfwd_parse(const char *s, struct net_hostfwd *f, struct err *e);
/* A slirp backend driven by loop; its forwarded ports listen from now on. */
int net_slirp_new(struct evloop *loop, const struct net_user_config *cfg,
                  struct net_backend **out, struct err *e);

/* --- private VM-to-VM networks, net/private.c and net/switch.h ---------- */

/* A backend joined to the switch of the private network `name` (a running
 * `petrel switch NAME`); fails with a message naming the socket when no
 * switch runs. */
int net_private_new(struct evloop *loop, const char *name, struct net_backend **out,
                    struct err *e);

/* --- TAP, net/tap.c -------------------------------------------------------- */

/* A backend on the host TAP interface ifname (an existing persistent TAP
 * the user may open, or a new one with CAP_NET_ADMIN). */
int net_tap_new(struct evloop *loop, const char *ifname, struct net_backend **out,
                struct err *e);

/* "A.B.C.D/N" (N 0..32, no host bits set) -> network and mask, network
 * byte order. */
int net_cidr_parse(const char *s, struct in_addr *net, struct in_addr *mask, struct err *e);

#endif
