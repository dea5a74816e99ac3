/* Per-interface firewall rules (policy and syntax in net/firewall.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/firewall.h"
#include "net/net.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_ARP_ 0x0806
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_SYN 0x02
#define TCP_ACK 0x10

#define RULE_SYNTAX "PROTO[:PORTS[:CIDR]] (PROTO tcp|udp|icmp|any, PORTS N or N-M, " \
    "CIDR A.B.C.D/N)"

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* --- parsing ------------------------------------------------------------------ */

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int net_fw_rule_parse(const char *s, bool allow, struct net_fw_rule *r, struct err *e)
{
    const char *key = allow ? "allow" : "deny";
    *r = (struct net_fw_rule){ .allow = allow, .port_lo = 0, .port_hi = 0xffff };
    const char *c1 = strchr(s, ':');
    size_t plen = c1 ? (size_t)(c1 - s) : strlen(s);
    if (plen == 3 && !strncmp(s, "tcp", 3))
        r->proto = NET_FW_TCP;
    else if (plen == 3 && !strncmp(s, "udp", 3))
        r->proto = NET_FW_UDP;
    else if (plen == 4 && !strncmp(s, "icmp", 4))
        r->proto = NET_FW_ICMP;
    else if (plen == 3 && !strncmp(s, "any", 3))
        r->proto = NET_FW_ANY;
    else
        return err_set(e, -EINVAL, "%s=%s: expected " RULE_SYNTAX, key, s);
    if (!c1)
        return 0;
    const char *ports = c1 + 1, *c2 = strchr(ports, ':');
    size_t len = c2 ? (size_t)(c2 - ports) : strlen(ports);
    if (len) {
        if (r->proto == NET_FW_ICMP || r->proto == NET_FW_ANY)
            return err_set(e, -EINVAL, "%s=%s: ports need tcp or udp", key, s);
        const char *dash = memchr(ports, '-', len);
        size_t lo_len = dash ? (size_t)(dash - ports) : len;
        if (parse_port(ports, lo_len, &r->port_lo) < 0 ||
            (dash ? parse_port(dash + 1, len - lo_len - 1, &r->port_hi)
                  : (r->port_hi = r->port_lo, 0)) < 0 ||
            r->port_lo > r->port_hi)
            return err_set(e, -EINVAL, "%s=%s: bad port range (N or N-M, 1..65535, N <= M)",
                           key, s);
    }
    if (c2) {
        struct in_addr net, mask;
        struct err ce;
        if (net_cidr_parse(c2 + 1, &net, &mask, &ce) < 0)
            return err_set(e, -EINVAL, "%s=%s: %s", key, s, ce.msg);
        r->net = ntohl(net.s_addr);
        r->mask = ntohl(mask.s_addr);
    }
    return 0;
}

int net_fw_add(struct net_fw *fw, const struct net_fw_rule *r, struct err *e)
{
    if (fw->nrules == NET_FW_MAX_RULES)
        return err_set(e, -EINVAL, "too many allow=/deny= rules (at most %d)",
                       NET_FW_MAX_RULES);
    fw->rules[fw->nrules++] = *r;
    if (r->allow)
        fw->any_allow = true;
    return 0;
}

/* --- packets ------------------------------------------------------------------ */

/* An IPv4 packet's fields, once checked. */
struct pkt {
    uint8_t proto;
    uint32_t src, dst;
    bool later_fragment;
    const uint8_t *l4;                  /* transport header */
    size_t l4_len;                      /* bytes of it in the frame */
};

/* 1: IPv4 parsed into p; 0: ARP; -1: another ethertype; -2: malformed. */
static int parse(const uint8_t *f, size_t len, struct pkt *p)
{
    if (len < NET_ETH_HLEN)
        return -2;
    uint16_t type = be16(f + 12);
    if (type == ETH_P_ARP_)
        return 0;
    if (type != ETH_P_IPV4)
        return -1;
    const uint8_t *ip = f + NET_ETH_HLEN;
    size_t iplen = len - NET_ETH_HLEN;
    if (iplen < 20 || ip[0] >> 4 != 4)
        return -2;
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    size_t total = be16(ip + 2);
    if (ihl < 20 || total < ihl || total > iplen)
        return -2;
    p->proto = ip[9];
    p->src = be32(ip + 12);
    p->dst = be32(ip + 16);
    p->later_fragment = (be16(ip + 6) & 0x1fff) != 0;
    p->l4 = ip + ihl;
    p->l4_len = total - ihl;
    return 1;
}

static bool rule_match(const struct net_fw_rule *r, uint8_t proto, uint32_t src, int dport)
{
    if (r->proto == NET_FW_TCP && proto != IPPROTO_TCP_)
        return false;
    if (r->proto == NET_FW_UDP && proto != IPPROTO_UDP_)
        return false;
    if (r->proto == NET_FW_ICMP && proto != IPPROTO_ICMP_)
        return false;
    if ((src & r->mask) != r->net)
        return false;
    if (r->proto == NET_FW_TCP || r->proto == NET_FW_UDP)
        return dport >= r->port_lo && dport <= r->port_hi;
    return true;
}

static bool judge(struct net_fw *fw, uint8_t proto, uint32_t src, int dport)
{
    for (unsigned i = 0; i < fw->nrules; i++)
        if (rule_match(&fw->rules[i], proto, src, dport))
            return fw->rules[i].allow;
    return !fw->any_allow;
}

static struct net_fw_flow *flow_find(struct net_fw *fw, uint32_t remote, uint16_t rport,
                                     uint16_t lport, uint64_t now)
{
    for (unsigned i = 0; i < NET_FW_FLOWS; i++) {
        struct net_fw_flow *fl = &fw->flows[i];
        if (fl->last_ns && now - fl->last_ns <= (uint64_t)NET_FW_FLOW_TTL_S * 1000000000 &&
            fl->remote == remote && fl->remote_port == rport && fl->local_port == lport)
            return fl;
    }
    return NULL;
}

static bool verdict(struct net_fw *fw, const uint8_t *frame, size_t len, uint64_t now)
{
    struct pkt p;
    int kind = parse(frame, len, &p);
    if (kind == 0)
        return true;                    /* ARP */
    if (kind < 0)
        return false;
    if (p.later_fragment)
        return true;
    switch (p.proto) {
    case IPPROTO_TCP_:
        if (p.l4_len < 14)
            return false;
        if ((p.l4[13] & (TCP_SYN | TCP_ACK)) != TCP_SYN)
            return true;                /* not a connection request */
        return judge(fw, p.proto, p.src, be16(p.l4 + 2));
    case IPPROTO_UDP_: {
        if (p.l4_len < 8)
            return false;
        uint16_t sport = be16(p.l4), dport = be16(p.l4 + 2);
        if (sport == 67 && dport == 68)
            return true;                /* DHCP answer */
        if (flow_find(fw, p.src, sport, dport, now))
            return true;
        return judge(fw, p.proto, p.src, dport);
    }
    case IPPROTO_ICMP_:
        if (p.l4_len < 1)
            return false;
        if (p.l4[0] == 0 || p.l4[0] == 3 || p.l4[0] == 11)
            return true;                /* echo reply, unreachable, time exceeded */
        return judge(fw, p.proto, p.src, -1);
    default:
        return judge(fw, p.proto, p.src, -1);
    }
}

bool net_fw_inbound(struct net_fw *fw, const uint8_t *frame, size_t len, uint64_t now_ns)
{
    if (!fw->nrules)
        return true;
    if (verdict(fw, frame, len, now_ns))
        return true;
    fw->dropped++;
    return false;
}

void net_fw_outbound(struct net_fw *fw, const uint8_t *frame, size_t len, uint64_t now_ns)
{
    struct pkt p;
    if (!fw->nrules || parse(frame, len, &p) != 1 || p.proto != IPPROTO_UDP_ ||
        p.later_fragment || p.l4_len < 8)
        return;
    uint16_t lport = be16(p.l4), rport = be16(p.l4 + 2);
    struct net_fw_flow *fl = flow_find(fw, p.dst, rport, lport, now_ns);
    if (!fl) {
        fl = &fw->flows[0];             /* a free slot, else the stalest */
        for (unsigned i = 0; i < NET_FW_FLOWS && fl->last_ns; i++)
            if (!fw->flows[i].last_ns || fw->flows[i].last_ns < fl->last_ns)
                fl = &fw->flows[i];
        *fl = (struct net_fw_flow){ .remote = p.dst, .remote_port = rport, .local_port = lport };
    }
    fl->last_ns = now_ns ? now_ns : 1;
}
