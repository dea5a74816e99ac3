/* Private VM-to-VM networks without root: `petrel switch NAME` and the
 * `net=private,name=NAME` backend (net/private.c).
 *
 * Design
 * - One network = one switch process, `petrel switch NAME [--cidr CIDR]
 *   [--nat]`, run by the same user as the VMs.  It listens on a unix
 *   SOCK_SEQPACKET socket RUNDIR/NAME.sock, RUNDIR being
 *   $XDG_RUNTIME_DIR/petrel, else /tmp/petrel-$UID: a directory of ours,
 *   mode 0700, checked (owner, mode, not a symlink) before use, so only
 *   this user's VMs can join, and no root, no TAP, no host routing is
 *   involved: nothing leaves the switch but what its NAT port lets out.
 * - Wire format: one SEQPACKET message is one Ethernet frame (destination
 *   MAC first, no FCS, no header of ours), 14..NET_MAX_FRAME bytes.
 *   SEQPACKET keeps frame boundaries and tells the switch when a VM goes
 *   away (EOF), which datagrams would not.  A VM joins by connecting.
 * - Forwarding: a learning switch.  Each port is a connected VM, plus one
 *   internal port: libslirp (net/slirp.c, one more net_backend) for DHCP.
 *   A frame's unicast source MAC is learnt for its port (a bounded table,
 *   NET_SWITCH_MACS entries, the stalest replaced; a VM that leaves is
 *   forgotten); a frame to a learnt MAC goes to that port only, a
 *   broadcast, multicast or unknown destination to every other port.
 *   Frames are never queued: a port whose socket buffer is full loses the
 *   frame (counted), as a congested link, so one slow VM cannot stall the
 *   network.  Frames of the wrong size are dropped and counted.
 * - DHCP and NAT: libslirp answers DHCP for the network's CIDR (the
 *   gateway is .2, a DNS forwarder .3, leases from .15), one lease per
 *   MAC, at most 16 (libslirp's lease table; more VMs need static
 *   addresses).  Without --nat it runs restricted: it serves DHCP and nothing
 *   else, so VMs reach each other but neither the host (its loopback
 *   included) nor the outside.  With --nat it is QEMU's user network for
 *   the whole switch: outbound TCP/UDP through host sockets, .2 reaching
 *   the host's loopback.  Why libslirp rather than a DHCP server of our
 *   own: it is already the NAT engine, its DHCP is what the guests are
 *   tested against, and one engine serves both modes.
 * - Threads: none.  The switch is one epoll loop; libslirp runs on an
 *   evloop whose descriptor is one member of it.
 * - Trust: VMs are hostile.  The switch checks every frame's size, never
 *   trusts a MAC beyond its learning table, and drops rather than blocks.
 *   (It does not stop a VM from spoofing another's MAC: per-interface
 *   firewall rules in the VMs are the policy layer.)
 *
 * What can fail: the name (letters, digits, '-', '_', '.'; 1..64), the
 * runtime directory (not ours, not 0700), the socket (a switch of that name
 * already runs), libslirp's set-up: all with a one-line message. */
#ifndef PETREL_NET_SWITCH_H
#define PETREL_NET_SWITCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/log.h"

#define NET_SWITCH_NAME_MAX 64
#define NET_SWITCH_PORTS 64             /* VMs on one network, at most */
#define NET_SWITCH_MACS 1024            /* learnt addresses, at most */
#define NET_SWITCH_SNDBUF (1 << 20)     /* each socket's send buffer */

struct net_switch_config {
    const char *name;
    struct in_addr network, netmask;    /* network byte order */
    bool nat;
};

/* Check a network name (message in e). */
int net_switch_name_check(const char *name, struct err *e);
/* RUNDIR/NAME.sock into buf; with create, make RUNDIR (0700) if missing.
 * Either way RUNDIR, when it exists, must be ours and 0700. */
int net_switch_sock_path(const char *name, bool create, char *buf, size_t len, struct err *e);

struct net_switch;

/* Listen and set up the DHCP/NAT port. */
int net_switch_new(const struct net_switch_config *cfg, struct net_switch **out,
                   struct err *e);
/* Forward frames until *stop becomes true (a signal handler sets it);
 * returns 0, or a negative errno when the loop itself fails. */
int net_switch_run(struct net_switch *sw, volatile int *stop);
/* Close every port, remove the socket. */
void net_switch_free(struct net_switch *sw);
const char *net_switch_path(const struct net_switch *sw);

#endif
