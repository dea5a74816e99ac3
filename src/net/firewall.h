/* Per-interface firewall rules, the way cloud security groups work:
 *
 *   --device virtio-net,...,allow=tcp:22,allow=tcp:8000-8080:10.10.0.0/24,
 *                          deny=udp:53,allow=icmp
 *
 * Rule syntax: allow=|deny= PROTO[:PORTS[:CIDR]]
 *   PROTO  tcp | udp | icmp | any
 *   PORTS  N or N-M (1..65535), the guest's (destination) port; empty or
 *          absent: every port.  Not allowed with icmp/any.
 *   CIDR   A.B.C.D/N, the sender's address; absent: everyone.
 *
 * Policy (ingress filtering, outbound free, replies allowed)
 * - Rules filter what reaches the guest.  What the guest sends is never
 *   filtered, but its UDP datagrams are remembered (NET_FW_FLOWS flows,
 *   NET_FW_FLOW_TTL_S seconds) so that the answers come back.
 * - Always pass: ARP; DHCP answers (UDP 67 -> 68); TCP segments that are
 *   not a connection request (anything but SYN without ACK: segments of
 *   established connections and replies to the guest's own connects --
 *   a stateless test, as the "established" flag of router ACLs: a forged
 *   ACK segment passes, but cannot open a connection); ICMP echo replies,
 *   destination unreachable and time exceeded; UDP answers to a
 *   remembered flow; IPv4 fragments but the first (they are useless
 *   without it, which the rules judge).
 * - Everything else that is IPv4 (new TCP connections, UDP, ICMP echo
 *   requests and other types) is judged by the rules in order: the first
 *   that matches decides.  No rule matches: dropped when at least one
 *   allow= rule was given (a security group), passed when there are only
 *   deny= rules (a block list).
 * - With any rule, frames that are neither ARP nor IPv4 (IPv6, VLAN tags)
 *   are dropped: the rules speak IPv4 only and must not be bypassed.
 * - Malformed IPv4 (short headers, a bad IHL or total length) is dropped.
 *
 * The frames are the guest's or the network's: every header field is
 * checked against the frame's length before it is read.  No allocation at
 * run time; no threads (called in device context). */
#ifndef PETREL_NET_FIREWALL_H
#define PETREL_NET_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define NET_FW_MAX_RULES 32
#define NET_FW_FLOWS 64
#define NET_FW_FLOW_TTL_S 120

enum net_fw_proto { NET_FW_ANY, NET_FW_TCP, NET_FW_UDP, NET_FW_ICMP };

struct net_fw_rule {
    bool allow;
    enum net_fw_proto proto;
    uint16_t port_lo, port_hi;          /* 0, 0xffff: every port */
    uint32_t net, mask;                 /* host byte order; mask 0: everyone */
};

struct net_fw_flow {
    uint32_t remote;                    /* host byte order */
    uint16_t remote_port, local_port;
    uint64_t last_ns;                   /* 0: free */
};

struct net_fw {
    unsigned nrules;
    bool any_allow;
    struct net_fw_rule rules[NET_FW_MAX_RULES];
    struct net_fw_flow flows[NET_FW_FLOWS];
    uint64_t dropped;
};

/* Parse the value of allow= (allow true) or deny= into r (message in e). */
int net_fw_rule_parse(const char *s, bool allow, struct net_fw_rule *r, struct err *e);
/* Append a parsed rule (message in e when full). */
int net_fw_add(struct net_fw *fw, const struct net_fw_rule *r, struct err *e);
/* A frame for the guest: true to deliver it. */
bool net_fw_inbound(struct net_fw *fw, const uint8_t *frame, size_t len, uint64_t now_ns);
/* A frame from the guest (never refused): remembers UDP flows. */
void net_fw_outbound(struct net_fw *fw, const uint8_t *frame, size_t len, uint64_t now_ns);

#endif
