/* Unit tests for the per-interface firewall (net/firewall.h) and the
 * private network's name/CIDR checks (net/switch.h): the rule parser (good
 * and bad rules, messages), the matcher on hand-built frames (ARP and DHCP
 * always pass, established TCP passes, new TCP judged by port and source
 * CIDR, first match wins, allow-list vs deny-only default, UDP answers to
 * remembered flows, ICMP echo vs replies, IPv6 dropped with rules, later
 * fragments pass), and hostile frames (every truncation of a frame, bad
 * IHL and total length) never read past the end or pass as IPv4. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/firewall.h"
#include "net/net.h"
#include "net/switch.h"

#include "unit.h"

#define SEC 1000000000ull

static size_t frame_ip(uint8_t *f, uint8_t proto, const char *src, const char *dst,
                       size_t l4len)
{
    memset(f, 0, 14 + 20 + l4len);
    memcpy(f, "\x52\x54\x00\x00\x00\x01\x52\x54\x00\x00\x00\x02\x08\x00", 14);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + l4len) >> 8);
    ip[3] = (uint8_t)(20 + l4len);
    ip[8] = 64;
    ip[9] = proto;
    inet_pton(AF_INET, src, ip + 12);
    inet_pton(AF_INET, dst, ip + 16);
    return 14 + 20 + l4len;
}

static size_t tcp(uint8_t *f, const char *src, uint16_t sport, uint16_t dport, uint8_t flags)
{
    size_t n = frame_ip(f, 6, src, "10.10.0.15", 20);
    uint8_t *t = f + 34;
    t[0] = (uint8_t)(sport >> 8); t[1] = (uint8_t)sport;
    t[2] = (uint8_t)(dport >> 8); t[3] = (uint8_t)dport;
    t[12] = 0x50;
    t[13] = flags;
    return n;
}

static size_t udp(uint8_t *f, const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
    size_t n = frame_ip(f, 17, src, dst, 8);
    uint8_t *u = f + 34;
    u[0] = (uint8_t)(sport >> 8); u[1] = (uint8_t)sport;
    u[2] = (uint8_t)(dport >> 8); u[3] = (uint8_t)dport;
    u[5] = 8;
    return n;
}

static size_t icmp(uint8_t *f, const char *src, uint8_t type)
{
    size_t n = frame_ip(f, 1, src, "10.10.0.15", 8);
    f[34] = type;
    return n;
}

static int add(struct net_fw *fw, const char *rule, bool allow)
{
    struct net_fw_rule r;
    struct err e = { "" };
    int ret = net_fw_rule_parse(rule, allow, &r, &e);
    if (ret < 0)
        return ret;
    return net_fw_add(fw, &r, &e);
}

static void test_parse(void)
{
    struct net_fw_rule r;
    struct err e = { "" };
    EQ(net_fw_rule_parse("tcp:80", true, &r, &e), 0);
    CHECK(r.allow && r.proto == NET_FW_TCP && r.port_lo == 80 && r.port_hi == 80 && !r.mask,
          "tcp:80");
    EQ(net_fw_rule_parse("tcp:1000-2000:10.10.0.0/24", true, &r, &e), 0);
    CHECK(r.port_lo == 1000 && r.port_hi == 2000 && r.net == 0x0a0a0000 &&
          r.mask == 0xffffff00, "range + cidr");
    EQ(net_fw_rule_parse("udp:53", false, &r, &e), 0);
    CHECK(!r.allow && r.proto == NET_FW_UDP, "deny udp");
    EQ(net_fw_rule_parse("icmp", true, &r, &e), 0);
    CHECK(r.proto == NET_FW_ICMP && !r.mask, "icmp");
    EQ(net_fw_rule_parse("icmp::192.168.0.0/16", true, &r, &e), 0);
    CHECK(r.net == 0xc0a80000 && r.mask == 0xffff0000, "icmp + cidr");
    EQ(net_fw_rule_parse("any", false, &r, &e), 0);
    EQ(net_fw_rule_parse("udp::10.0.0.0/8", true, &r, &e), 0);
    CHECK(r.port_lo == 0 && r.port_hi == 0xffff, "udp any port");
    EQ(net_fw_rule_parse("tcp:1-65535", true, &r, &e), 0);

    static const char *const bad[] = {
        "", "sctp:80", "tcp:0", "tcp:65536", "tcp:80-70", "tcp:-80", "tcp:80-", "tcp:8o",
        "tcp:123456", "icmp:80", "any:1", "tcp:80:10.0.0.1/24", "tcp:80:10.0.0.0",
        "tcp:80:10.0.0.0/33", "tcp:80:300.0.0.0/8", "TCP:80", "tcp:80-90-100",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.msg[0] = 0;
        CHECK(net_fw_rule_parse(bad[i], i & 1, &r, &e) < 0, "accepted '%s'", bad[i]);
        CHECK(strstr(e.msg, bad[i]) && strchr(e.msg, '\n') == NULL, "message for '%s': %s",
              bad[i], e.msg);
    }
    struct net_fw fw = { 0 };
    for (unsigned i = 0; i < NET_FW_MAX_RULES; i++)
        EQ(add(&fw, "tcp:22", true), 0);
    CHECK(add(&fw, "tcp:22", true) < 0, "rule %d accepted", NET_FW_MAX_RULES + 1);
}

static void test_match(void)
{
    uint8_t f[128];
    size_t n;
    struct net_fw none = { 0 };
    n = tcp(f, "10.10.0.16", 40000, 22, 0x02);
    CHECK(net_fw_inbound(&none, f, n, SEC), "no rules: everything passes");

    struct net_fw fw = { 0 };
    EQ(add(&fw, "tcp:8081", false), 0);
    EQ(add(&fw, "tcp:8080-8090", true), 0);
    EQ(add(&fw, "tcp:22:10.10.0.0/24", true), 0);
    EQ(add(&fw, "icmp", true), 0);
    EQ(add(&fw, "udp:5000", true), 0);

    n = tcp(f, "10.10.0.16", 40000, 8080, 0x02);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "allowed port");
    n = tcp(f, "10.10.0.16", 40000, 8081, 0x02);
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "deny before allow: first match wins");
    n = tcp(f, "10.10.0.16", 40000, 9000, 0x02);
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "unlisted port dropped (allow list)");
    n = tcp(f, "10.10.0.16", 40000, 9000, 0x12);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "SYN+ACK (reply to the guest's connect) passes");
    n = tcp(f, "10.10.0.16", 40000, 9000, 0x10);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "established segment passes");
    n = tcp(f, "10.10.0.16", 40000, 22, 0x02);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "ssh from inside the CIDR");
    n = tcp(f, "10.20.0.16", 40000, 22, 0x02);
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "ssh from outside the CIDR");

    n = icmp(f, "1.2.3.4", 8);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "icmp echo allowed");
    n = udp(f, "10.10.0.16", "10.10.0.15", 1234, 5000);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "udp:5000 allowed");
    n = udp(f, "10.10.0.16", "10.10.0.15", 1234, 53);
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "udp:53 not allowed");
    n = udp(f, "10.10.0.2", "255.255.255.255", 67, 68);
    CHECK(net_fw_inbound(&fw, f, n, SEC), "DHCP answers always pass");

    /* a UDP answer to a flow the guest started passes, until it expires */
    n = udp(f, "10.10.0.15", "10.10.0.3", 40001, 53);
    net_fw_outbound(&fw, f, n, SEC);
    n = udp(f, "10.10.0.3", "10.10.0.15", 53, 40001);
    CHECK(net_fw_inbound(&fw, f, n, 2 * SEC), "answer to a remembered flow");
    n = udp(f, "10.10.0.4", "10.10.0.15", 53, 40001);
    CHECK(!net_fw_inbound(&fw, f, n, 2 * SEC), "same ports, another sender");
    n = udp(f, "10.10.0.3", "10.10.0.15", 53, 40001);
    CHECK(!net_fw_inbound(&fw, f, n, (2 + NET_FW_FLOW_TTL_S) * SEC), "expired flow");
    /* the flow table is bounded: many flows replace the stalest */
    for (unsigned i = 0; i < 3 * NET_FW_FLOWS; i++) {
        n = udp(f, "10.10.0.15", "10.10.0.3", (uint16_t)(20000 + i), 53);
        net_fw_outbound(&fw, f, n, (10 + i) * SEC / 100);
    }
    n = udp(f, "10.10.0.3", "10.10.0.15", 53, (uint16_t)(20000 + 3 * NET_FW_FLOWS - 1));
    CHECK(net_fw_inbound(&fw, f, n, 20 * SEC), "the newest flow is remembered");
    n = udp(f, "10.10.0.3", "10.10.0.15", 53, 20000);
    CHECK(!net_fw_inbound(&fw, f, n, 20 * SEC), "the oldest flow was replaced");

    /* ARP passes; IPv6 does not; a later fragment passes */
    memcpy(f + 12, "\x08\x06", 2);
    CHECK(net_fw_inbound(&fw, f, 42, SEC), "ARP");
    memcpy(f + 12, "\x86\xdd", 2);
    CHECK(!net_fw_inbound(&fw, f, 60, SEC), "IPv6 with rules");
    n = tcp(f, "10.10.0.16", 40000, 9000, 0x02);
    f[14 + 6] = 0x00;
    f[14 + 7] = 0x10;                   /* fragment offset 16 */
    CHECK(net_fw_inbound(&fw, f, n, SEC), "later fragment");

    /* deny-only: a block list */
    struct net_fw deny = { 0 };
    EQ(add(&deny, "udp:53", false), 0);
    n = udp(f, "10.10.0.16", "10.10.0.15", 1234, 53);
    CHECK(!net_fw_inbound(&deny, f, n, SEC), "denied");
    n = udp(f, "10.10.0.16", "10.10.0.15", 1234, 54);
    CHECK(net_fw_inbound(&deny, f, n, SEC), "not denied: passes (no allow= rule)");
    n = icmp(f, "1.2.3.4", 8);
    CHECK(net_fw_inbound(&deny, f, n, SEC), "icmp passes a deny-only list");
    struct net_fw noicmp = { 0 };
    EQ(add(&noicmp, "tcp:80", true), 0);
    CHECK(!net_fw_inbound(&noicmp, f, n, SEC), "echo request without allow=icmp");
    n = icmp(f, "1.2.3.4", 0);
    CHECK(net_fw_inbound(&noicmp, f, n, SEC), "echo reply passes");
}

static void test_hostile(void)
{
    struct net_fw fw = { 0 };
    EQ(add(&fw, "tcp:80", true), 0);
    uint8_t f[128];
    /* every truncation of an allowed-looking frame: no over-read (ASan), and a
     * frame cut inside its headers never passes */
    size_t n = tcp(f, "10.10.0.16", 40000, 9000, 0x10);
    for (size_t len = 0; len < n; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, f, len);
        CHECK(!net_fw_inbound(&fw, copy, len, SEC), "truncated to %zu bytes passed", len);
        net_fw_outbound(&fw, copy, len, SEC);
        free(copy);
    }
    n = tcp(f, "10.10.0.16", 40000, 9000, 0x10);
    f[14] = 0x44;                       /* IHL 16 bytes */
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "IHL < 5");
    f[14] = 0x4f;                       /* IHL 60 bytes > total */
    f[16] = 0; f[17] = 40;
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "IHL beyond the total length");
    f[14] = 0x45;
    f[16] = 0x05; f[17] = 0xdc;         /* total 1500 > frame */
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "total length beyond the frame");
    f[16] = 0; f[17] = 40;
    f[14] = 0x65;                       /* version 6 in an IPv4 frame */
    CHECK(!net_fw_inbound(&fw, f, n, SEC), "wrong IP version");
    /* random frames: must not crash */
    srand(1);
    for (unsigned i = 0; i < 20000; i++) {
        size_t len = (size_t)rand() % sizeof(f);
        for (size_t j = 0; j < len; j++)
            f[j] = (uint8_t)rand();
        if (len > 13 && (i & 1)) {
            f[12] = 8;
            f[13] = 0;
        }
        net_fw_inbound(&fw, f, len, i);
        net_fw_outbound(&fw, f, len, i);
    }
    CHECK(fw.dropped > 0, "drops counted");
}

static void test_names_and_cidr(void)
{
    struct err e;
    EQ(net_switch_name_check("lab-1_a.b", &e), 0);
    CHECK(net_switch_name_check("", &e) < 0, "empty name");
    CHECK(net_switch_name_check("a/b", &e) < 0, "slash");
    CHECK(net_switch_name_check("..", &e) < 0, "dot first");
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(net_switch_name_check(longname, &e) < 0, "too long");
    struct in_addr net, mask;
    EQ(net_cidr_parse("10.10.0.0/24", &net, &mask, &e), 0);
    EQ(ntohl(net.s_addr), 0x0a0a0000);
    EQ(ntohl(mask.s_addr), 0xffffff00);
    EQ(net_cidr_parse("0.0.0.0/0", &net, &mask, &e), 0);
    EQ(mask.s_addr, 0);
    EQ(net_cidr_parse("1.2.3.4/32", &net, &mask, &e), 0);
    static const char *const bad[] = { "10.10.0.0", "10.10.0.1/24", "10.10.0.0/", "10.0.0.0/a",
                                       "10.0.0.0/033", "/24", "x/8", "10.0.0.0/-1" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(net_cidr_parse(bad[i], &net, &mask, &e) < 0, "accepted '%s'", bad[i]);
}

int main(void)
{
    test_parse();
    test_match();
    test_hostile();
    test_names_and_cidr();
    return unit_done("test_net_firewall");
}
