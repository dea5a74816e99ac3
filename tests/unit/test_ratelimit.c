/* Unit tests for the token-bucket rate limiter (core/ratelimit.h): refill
 * over time on a fake clock, one_time_burst spent first, both buckets
 * taken together or not at all, oversized operations going into debt, the
 * computed wake-up time, live updates, the option strings (parse, format,
 * round trip, bad values), and the event-loop timer resuming a refused
 * device on a real clock. */
#include <errno.h>
#include <string.h>

#include "core/evloop.h"
#include "core/ratelimit.h"

#include "unit.h"

static uint64_t fake_ns;
static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

#define MS 1000000ull

static struct rl *mk(uint64_t bsize, uint64_t bburst, uint64_t bms, uint64_t osize,
                     uint64_t oburst, uint64_t oms)
{
    struct rl_config c = { { bsize, bburst, bms }, { osize, oburst, oms } };
    struct err e;
    fake_ns = 1000 * MS;
    struct rl *rl = rl_new(NULL, &c, NULL, NULL, &e);
    CHECK(rl != NULL, "rl_new");
    rl_set_clock(rl, fake_now, NULL);
    return rl;
}

static void test_refill(void)
{
    /* 1000 bytes per 100 ms = 10000 B/s */
    struct rl *rl = mk(1000, 0, 100, 0, 0, 0);
    CHECK(rl_consume(rl, 600, 1), "first 600 from the full bucket");
    CHECK(rl_consume(rl, 400, 1), "the rest of the bucket");
    CHECK(!rl_consume(rl, 100, 1), "empty");
    EQ(rl_blocked_until(rl), fake_ns + 10 * MS);     /* 100 bytes = 10 ms */
    fake_ns += 5 * MS;
    CHECK(!rl_consume(rl, 100, 1), "still blocked before the computed time");
    fake_ns += 5 * MS;
    CHECK(rl_consume(rl, 100, 1), "refilled after 10 ms");
    /* long idle: capped at size */
    fake_ns += 10000 * MS;
    CHECK(rl_consume(rl, 1000, 1), "full again");
    CHECK(!rl_consume(rl, 1, 1), "not more than size");
    /* continuous refill: over 1 s, 10000 bytes go in 10-byte pieces */
    uint64_t start = fake_ns, got = 0;
    while (fake_ns < start + 1000 * MS) {
        if (rl_consume(rl, 10, 0))
            got += 10;
        else
            fake_ns = rl_blocked_until(rl);
    }
    CHECK(got >= 9990 && got <= 10010, "rate: %llu bytes in 1 s", (unsigned long long)got);
    EQ(rl_throttled(rl) > 0, 1);
    rl_free(rl);
}

static void test_burst(void)
{
    struct rl *rl = mk(1000, 5000, 1000, 0, 0, 0);
    CHECK(rl_consume(rl, 5000, 1), "burst");
    CHECK(rl_consume(rl, 1000, 1), "then the bucket");
    CHECK(!rl_consume(rl, 1, 1), "then nothing");
    rl_free(rl);
    /* a burst partly spent: the rest comes from the bucket */
    rl = mk(1000, 300, 1000, 0, 0, 0);
    CHECK(rl_consume(rl, 800, 1), "300 burst + 500 budget");
    CHECK(rl_consume(rl, 500, 1), "the rest of the budget");
    CHECK(!rl_consume(rl, 1, 1), "empty");
    rl_free(rl);
}

static void test_two_buckets(void)
{
    /* 10 ops per second, plenty of bytes */
    struct rl *rl = mk(1 << 20, 0, 1000, 10, 0, 1000);
    for (int i = 0; i < 10; i++)
        CHECK(rl_consume(rl, 100, 1), "op %d", i);
    uint64_t b_before = 0;
    (void)b_before;
    CHECK(!rl_consume(rl, 100, 1), "11th op refused");
    EQ(rl_blocked_until(rl), fake_ns + 100 * MS);
    /* bytes were not taken by the refused op: after 100 ms, 1 op and all
     * bytes that were left */
    fake_ns += 100 * MS;
    CHECK(rl_consume(rl, (1 << 20) - 1000 + 100, 1), "bytes untouched by the refusal");
    rl_free(rl);
    /* ops unlimited, bytes limited; zero-byte ops (flush) always pass */
    rl = mk(100, 0, 1000, 0, 0, 0);
    CHECK(rl_consume(rl, 100, 1), "all bytes");
    CHECK(rl_consume(rl, 0, 1), "a flush needs no bytes");
    CHECK(!rl_consume(rl, 1, 1), "but a read does");
    rl_free(rl);
}

static void test_oversized(void)
{
    /* a 3000-byte request on a 1000-byte bucket: through once, then debt */
    struct rl *rl = mk(1000, 0, 1000, 0, 0, 0);
    CHECK(rl_consume(rl, 3000, 1), "oversized goes through a bucket not in debt");
    CHECK(!rl_consume(rl, 3000, 1), "the next waits for the debt");
    EQ(rl_blocked_until(rl), fake_ns + 2000 * MS);   /* -2000 back to 0 */
    fake_ns += 2000 * MS;
    CHECK(rl_consume(rl, 3000, 1), "after 2 s");
    rl_free(rl);
}

static void test_update(void)
{
    struct rl *rl = mk(1000, 0, 1000, 0, 0, 0);
    CHECK(rl_consume(rl, 1000, 1), "drain");
    CHECK(!rl_consume(rl, 1000, 1), "blocked");
    struct rl_config c = { { 1 << 20, 0, 1000 }, { 0, 0, 0 } };
    rl_update(rl, &c);
    CHECK(!rl_blocked(rl), "an update without a loop unblocks");
    CHECK(rl_consume(rl, 1000, 1), "new, full bucket");
    EQ(rl_get_config(rl)->bw.size, 1 << 20);
    struct rl_config off = { { 0, 0, 0 }, { 0, 0, 0 } };
    rl_update(rl, &off);
    for (int i = 0; i < 100; i++)
        CHECK(rl_consume(rl, 1ull << 40, 1), "unlimited");
    rl_free(rl);
}

static void test_options(void)
{
    struct rl_config c = { 0 };
    struct err e;
    EQ(rl_parse_opt(&c, "", "iops", "bps", "4M", &e), 1);
    EQ(c.bw.size, 4 << 20);
    EQ(c.bw.refill_ms, 1000);
    EQ(rl_parse_opt(&c, "", "iops", "iops", "200", &e), 1);
    EQ(c.ops.size, 200);
    EQ(rl_parse_opt(&c, "", "iops", "bps_burst", "1G", &e), 1);
    EQ(c.bw.one_time_burst, 1 << 30);
    EQ(rl_parse_opt(&c, "", "iops", "iops_refill", "50", &e), 1);
    EQ(c.ops.refill_ms, 50);
    EQ(rl_parse_opt(&c, "", "iops", "format", "raw", &e), 0);
    EQ(rl_parse_opt(&c, "", "iops", "pps", "1", &e), 0);
    EQ(rl_parse_opt(&c, "rx_", "pps", "tx_bps", "1", &e), 0);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "abc", &e), -EINVAL);
    CHECK(strstr(e.msg, "bps=abc") != NULL, "%s", e.msg);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "-1", &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "99999999999999999999", &e), -EINVAL);
    CHECK(strstr(e.msg, "at most") != NULL, "%s", e.msg);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "2P", &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "1T", &e), 1);
    EQ(rl_parse_opt(&c, "", "iops", "bps", "2048T", &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "iops", "1K", &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "iops_refill", "0", &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "bps", NULL, &e), -EINVAL);
    EQ(rl_parse_opt(&c, "", "iops", "bpsx", "1", &e), 0);

    /* format and parse back */
    struct rl_config n = { 0 }, back = { 0 };
    EQ(rl_parse_opt(&n, "tx_", "pps", "tx_bps", "1000", &e), 1);
    EQ(rl_parse_opt(&n, "tx_", "pps", "tx_bps_refill", "100", &e), 1);
    EQ(rl_parse_opt(&n, "tx_", "pps", "tx_pps", "7", &e), 1);
    EQ(rl_parse_opt(&n, "tx_", "pps", "tx_pps_burst", "70", &e), 1);
    char buf[256] = "virtio-net";
    EQ(rl_format(&n, "tx_", "pps", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "virtio-net,tx_bps=1000,tx_bps_refill=100,tx_pps=7,tx_pps_burst=70"),
          "%s", buf);
    char tiny[12] = "";
    EQ(rl_format(&n, "tx_", "pps", tiny, sizeof(tiny)), -ENOSPC);
    const char *keys[] = { "tx_bps=1000", "tx_bps_refill=100", "tx_pps=7", "tx_pps_burst=70" };
    for (unsigned i = 0; i < 4; i++) {
        char k[32];
        strcpy(k, keys[i]);
        char *v = strchr(k, '=');
        *v++ = 0;
        EQ(rl_parse_opt(&back, "tx_", "pps", k, v, &e), 1);
    }
    CHECK(!memcmp(&back, &n, sizeof(n)), "round trip");

    struct rl_config big = { { RL_MAX_TOKENS + 1, 0, 1000 }, { 0 } };
    EQ(rl_config_check(&big, "rate_limiter", &e), -EINVAL);
    CHECK(strstr(e.msg, "bandwidth size") != NULL, "%s", e.msg);
    struct rl_config slow = { { 1, 0, 1000 }, { 1, 0, RL_MAX_REFILL_MS + 1 } };
    EQ(rl_config_check(&slow, "x", &e), -EINVAL);
    EQ(rl_config_check(&n, "x", &e), 0);
    CHECK(rl_config_on(&n) && !rl_config_on(&(struct rl_config){ { 5, 0, 0 }, { 0, 9, 9 } }),
          "on");
}

/* On a real loop: a refused operation is resumed by the timer, at the
 * right time, with no busy waiting. */
struct resumed {
    struct evloop *l;
    int count;
    uint64_t at;
};

static void on_resume(void *opaque)
{
    struct resumed *r = opaque;
    r->count++;
    r->at = time_now_ns();
    evloop_stop(r->l);
}

static void test_timer(void)
{
    struct err e;
    struct resumed r = { 0 };
    r.l = evloop_new(&e);
    CHECK(r.l != NULL, "evloop");
    if (!r.l)
        return;
    struct rl_config c = { { 1000, 0, 1000 }, { 0 } };
    struct rl *rl = rl_new(r.l, &c, on_resume, &r, &e);
    CHECK(rl_consume(rl, 1000, 1), "drain");
    uint64_t t0 = time_now_ns();
    CHECK(!rl_consume(rl, 50, 1), "refused");   /* 50 ms */
    evloop_run(r.l);
    EQ(r.count, 1);
    uint64_t waited = r.at - t0;
    CHECK(waited >= 49 * MS && waited < 500 * MS, "resumed after %llu ns",
          (unsigned long long)waited);
    CHECK(rl_consume(rl, 50, 1), "tokens there when resumed");
    /* an update while blocked resumes at once */
    CHECK(!rl_consume(rl, 1000, 1), "refused again");
    struct rl_config fast = { { 1 << 20, 0, 1000 }, { 0 } };
    t0 = time_now_ns();
    rl_update(rl, &fast);
    evloop_run(r.l);
    EQ(r.count, 2);
    CHECK(r.at - t0 < 100 * MS, "update resumed after %llu ns", (unsigned long long)(r.at - t0));
    CHECK(rl_consume(rl, 1000, 1), "new limit");
    rl_free(rl);
    evloop_free(r.l);
}

int main(void)
{
    test_refill();
    test_burst();
    test_two_buckets();
    test_oversized();
    test_update();
    test_options();
    test_timer();
    return unit_done("test_ratelimit");
}
