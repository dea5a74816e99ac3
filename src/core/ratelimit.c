/* Token-bucket rate limiters (see ratelimit.h). */
#include "core/ratelimit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evloop.h"
#include "core/opts.h"

struct rl_bucket {
    struct rl_bucket_cfg cfg;
    bool on;
    uint64_t refill_ns;
    int64_t budget;             /* tokens; negative: debt of an oversized operation */
    uint64_t burst;             /* one_time_burst left */
    uint64_t last_ns;           /* budget is as of this time */
};

struct rl {
    struct rl_config cfg;
    struct rl_bucket b[2];      /* bytes, ops */
    bool blocked;
    uint64_t until_ns;
    uint64_t throttled;
    struct evloop_timer *timer;
    void (*resume)(void *opaque);
    void *opaque;
    uint64_t (*now)(void *ctx);
    void *now_ctx;
};

/* ---- configuration ------------------------------------------------------- */

static int check_bucket(const struct rl_bucket_cfg *b, const char *what, const char *name,
                        struct err *e)
{
    if (b->size > RL_MAX_TOKENS)
        return err_set(e, -EINVAL, "%s: %s size %" PRIu64 " is larger than %llu", what, name,
                       b->size, RL_MAX_TOKENS);
    if (b->one_time_burst > RL_MAX_TOKENS)
        return err_set(e, -EINVAL, "%s: %s one_time_burst %" PRIu64 " is larger than %llu",
                       what, name, b->one_time_burst, RL_MAX_TOKENS);
    if (b->refill_ms > RL_MAX_REFILL_MS)
        return err_set(e, -EINVAL, "%s: %s refill_time %" PRIu64 " ms is longer than %llu",
                       what, name, b->refill_ms, RL_MAX_REFILL_MS);
    return 0;
}

int rl_config_check(const struct rl_config *c, const char *what, struct err *e)
{
    int ret = check_bucket(&c->bw, what, "bandwidth", e);
    return ret < 0 ? ret : check_bucket(&c->ops, what, "ops", e);
}

int rl_parse_opt(struct rl_config *c, const char *prefix, const char *ops_name, const char *key,
                 const char *val, struct err *e)
{
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl))
        return 0;
    const char *k = key + pl;
    struct rl_bucket_cfg *b;
    size_t ol = strlen(ops_name);
    if (!strncmp(k, "bps", 3)) {
        b = &c->bw;
        k += 3;
    } else if (!strncmp(k, ops_name, ol)) {
        b = &c->ops;
        k += ol;
    } else {
        return 0;
    }
    uint64_t *field, max;
    bool bytes = b == &c->bw;
    if (!*k) {
        field = &b->size;
        max = RL_MAX_TOKENS;
        if (!b->refill_ms)
            b->refill_ms = RL_DEFAULT_REFILL_MS;
    } else if (!strcmp(k, "_burst")) {
        field = &b->one_time_burst;
        max = RL_MAX_TOKENS;
    } else if (!strcmp(k, "_refill")) {
        field = &b->refill_ms;
        max = RL_MAX_REFILL_MS;
        bytes = false;
    } else {
        return 0;
    }
    uint64_t v;
    int r = val ? opts_size(val, 0, &v) : -EINVAL;
    if (r == 0 && !bytes && strspn(val, "0123456789") != strlen(val))
        r = -EINVAL;            /* counts and milliseconds take no K/M/G suffix */
    if (r == -ERANGE || (r == 0 && v > max))
        return err_set(e, -EINVAL, "%s=%s: at most %llu", key, val, (unsigned long long)max);
    if (r < 0)
        return err_set(e, -EINVAL, "%s=%s: expected %s", key, val ? val : "",
                       bytes ? "a number of bytes (suffixes K, M, G, T)"
                       : !strcmp(k, "_refill") ? "a time in milliseconds" : "a number");
    if (field == &b->refill_ms && v == 0)
        return err_set(e, -EINVAL, "%s=0: the refill time must be at least 1 ms", key);
    *field = v;
    return 1;
}

static int format_bucket(const struct rl_bucket_cfg *b, const char *prefix, const char *name,
                         char *buf, size_t len)
{
    size_t n = strlen(buf);
    int w = 0;
    if (b->size)
        w = snprintf(buf + n, len - n, ",%s%s=%" PRIu64, prefix, name, b->size);
    if (w >= 0 && (size_t)w < len - n && b->one_time_burst) {
        n += (size_t)w;
        w = snprintf(buf + n, len - n, ",%s%s_burst=%" PRIu64, prefix, name, b->one_time_burst);
    }
    if (w >= 0 && (size_t)w < len - n && b->size && b->refill_ms != RL_DEFAULT_REFILL_MS) {
        n += (size_t)w;
        w = snprintf(buf + n, len - n, ",%s%s_refill=%" PRIu64, prefix, name, b->refill_ms);
    }
    return w < 0 || (size_t)w >= len - n ? -ENOSPC : 0;
}

int rl_format(const struct rl_config *c, const char *prefix, const char *ops_name, char *buf,
              size_t len)
{
    int ret = format_bucket(&c->bw, prefix, "bps", buf, len);
    return ret < 0 ? ret : format_bucket(&c->ops, prefix, ops_name, buf, len);
}

/* ---- buckets ------------------------------------------------------------- */

static void bucket_init(struct rl_bucket *b, const struct rl_bucket_cfg *c, uint64_t now)
{
    *b = (struct rl_bucket){ .cfg = *c, .on = rl_bucket_on(c), .refill_ns = c->refill_ms * 1000000,
                             .budget = (int64_t)c->size, .burst = c->one_time_burst,
                             .last_ns = now };
}

static void bucket_refill(struct rl_bucket *b, uint64_t now)
{
    if (now <= b->last_ns)
        return;
    int64_t size = (int64_t)b->cfg.size;
    if (b->budget >= size) {
        b->last_ns = now;
        return;
    }
    uint64_t need = (uint64_t)(size - b->budget);
    unsigned __int128 add = (unsigned __int128)(now - b->last_ns) * b->cfg.size / b->refill_ns;
    if (add >= need) {
        b->budget = size;
        b->last_ns = now;
    } else if (add) {
        b->budget += (int64_t)add;
        /* the time those whole tokens took; the rest carries over */
        b->last_ns += (uint64_t)(add * b->refill_ns / b->cfg.size);
    }
}

static bool bucket_fits(const struct rl_bucket *b, uint64_t n)
{
    if (!b->on || n <= b->burst)
        return true;
    if (b->budget >= 0 && n - b->burst <= (uint64_t)b->budget)
        return true;
    return n > b->cfg.size && b->budget >= 0;   /* oversized: into debt */
}

static void bucket_take(struct rl_bucket *b, uint64_t n)
{
    if (!b->on)
        return;
    if (n <= b->burst) {
        b->burst -= n;
        return;
    }
    n -= b->burst;
    b->burst = 0;
    b->budget -= (int64_t)n;
}

/* When n tokens will fit (b refilled to now, n does not fit now). */
static uint64_t bucket_ready_at(const struct rl_bucket *b, uint64_t n, uint64_t now)
{
    int64_t target = n > b->cfg.size ? 0 : (int64_t)(n - b->burst);
    uint64_t deficit = (uint64_t)(target - b->budget);
    unsigned __int128 ns = ((unsigned __int128)deficit * b->refill_ns + b->cfg.size - 1) /
                           b->cfg.size;
    uint64_t at = b->last_ns + (uint64_t)ns;
    return at > now ? at : now + 1;
}

/* ---- the limiter --------------------------------------------------------- */

static uint64_t clock_now(const struct rl *rl)
{
    return rl->now ? rl->now(rl->now_ctx) : time_now_ns();
}

static void rl_timer_fired(void *opaque)
{
    struct rl *rl = opaque;
    rl->blocked = false;
    if (rl->resume)
        rl->resume(rl->opaque);
}

struct rl *rl_new(struct evloop *loop, const struct rl_config *c, void (*resume)(void *opaque),
                  void *opaque, struct err *e)
{
    struct rl *rl = calloc(1, sizeof(*rl));
    if (!rl) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    rl->resume = resume;
    rl->opaque = opaque;
    if (loop && !(rl->timer = evloop_timer_new(loop, true, rl_timer_fired, rl, e))) {
        free(rl);
        return NULL;
    }
    rl_update(rl, c);
    return rl;
}

void rl_free(struct rl *rl)
{
    if (!rl)
        return;
    if (rl->timer)
        evloop_timer_free(rl->timer);
    free(rl);
}

void rl_update(struct rl *rl, const struct rl_config *c)
{
    uint64_t now = clock_now(rl);
    rl->cfg = *c;
    bucket_init(&rl->b[0], &c->bw, now);
    bucket_init(&rl->b[1], &c->ops, now);
    if (rl->blocked) {
        /* let the device try again, from the loop */
        rl->until_ns = now;
        if (rl->timer)
            evloop_timer_set(rl->timer, 1, 0);
        else
            rl->blocked = false;
    }
}

void rl_kick(struct rl *rl)
{
    if (rl->timer)
        evloop_timer_set(rl->timer, 1000000, 0);
}

const struct rl_config *rl_get_config(const struct rl *rl)
{
    return &rl->cfg;
}

bool rl_consume(struct rl *rl, uint64_t bytes, uint64_t ops)
{
    uint64_t now = clock_now(rl);
    if (rl->blocked) {
        if (now < rl->until_ns)
            return false;
        rl->blocked = false;    /* a timer still armed only resumes once more */
    }
    struct rl_bucket *bb = &rl->b[0], *ob = &rl->b[1];
    if (bb->on)
        bucket_refill(bb, now);
    if (ob->on)
        bucket_refill(ob, now);
    bool bfit = bucket_fits(bb, bytes), ofit = bucket_fits(ob, ops);
    if (bfit && ofit) {
        bucket_take(bb, bytes);
        bucket_take(ob, ops);
        return true;
    }
    uint64_t at = 0;
    if (!bfit)
        at = bucket_ready_at(bb, bytes, now);
    if (!ofit) {
        uint64_t o = bucket_ready_at(ob, ops, now);
        at = o > at ? o : at;
    }
    rl->blocked = true;
    rl->until_ns = at;
    rl->throttled++;
    if (rl->timer)
        evloop_timer_set(rl->timer, at - now, 0);
    return false;
}

bool rl_blocked(const struct rl *rl)
{
    return rl->blocked;
}

uint64_t rl_blocked_until(const struct rl *rl)
{
    return rl->until_ns;
}

void rl_set_clock(struct rl *rl, uint64_t (*now)(void *ctx), void *ctx)
{
    rl->now = now;
    rl->now_ctx = ctx;
    uint64_t t = clock_now(rl);
    rl->b[0].last_ns = rl->b[1].last_ns = t;
}

uint64_t rl_throttled(const struct rl *rl)
{
    return rl->throttled;
}
