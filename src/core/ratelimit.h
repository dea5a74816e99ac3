/* Token-bucket rate limiters for devices (disks, network cards), with
 * Firecracker's semantics (its `RateLimiter` = `bandwidth` + `ops`, each a
 * `TokenBucket` {size, one_time_burst, refill_time}).
 *
 * Design
 * - Two buckets: bytes and operations.  A bucket holds up to `size` tokens
 *   and refills continuously at size tokens per refill_time (ms); it starts
 *   full.  `one_time_burst` is an extra budget spent first and never
 *   refilled.  A bucket with size 0 or refill_time 0 does not limit.
 * - rl_consume(bytes, ops) takes from both buckets or from neither: when
 *   either has too few tokens the operation must wait (the device leaves it
 *   where it was: in the virtqueue, or in its receive FIFO), the limiter
 *   computes when enough tokens will be there and arms an event-loop timer
 *   (core/evloop.h) that calls the device's resume callback in device
 *   context.  While blocked, rl_consume refuses at once: no busy waiting,
 *   no thread.  An operation larger than the bucket (a 1 MiB request on a
 *   512 KiB bucket) is let through on a bucket that is not in debt and
 *   leaves it in debt, so the long-term rate still holds (Firecracker's
 *   "overconsumption").
 * - Devices hold a `struct rl *`, NULL when unlimited: the only cost for an
 *   unlimited device is that pointer test.
 * - rl_update (a PATCH while running) replaces both buckets by full ones of
 *   the new configuration and, if the device was waiting, resumes it from
 *   the loop.
 * - Time comes from time_now_ns unless a test sets its own clock; without
 *   an event loop (unit tests) a blocked limiter unblocks when the clock
 *   passes the computed time.
 *
 * Configuration strings (--disk, --device virtio-net): rl_parse_opt takes
 * the keys bps=, bps_burst=, bps_refill= and (ops_name)=, (ops_name)_burst=,
 * (ops_name)_refill= (ops_name "iops" for disks, "pps" for network cards),
 * sizes with K/M/G/T suffixes (binary), refill times in ms (default 1000:
 * bps= is then bytes per second); rl_format writes them back.
 *
 * What can fail: rl_new (timer creation: out of descriptors or memory),
 * option values out of range (RL_MAX_*), reported through struct err. */
#ifndef PETREL_RATELIMIT_H
#define PETREL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define RL_MAX_TOKENS (1ull << 50)          /* size, one_time_burst */
#define RL_MAX_REFILL_MS (1ull << 32)       /* refill_time, ~50 days */
#define RL_DEFAULT_REFILL_MS 1000

struct rl_bucket_cfg {
    uint64_t size;              /* tokens; 0: unlimited */
    uint64_t one_time_burst;    /* extra tokens, spent first, never refilled */
    uint64_t refill_ms;         /* time to refill `size` tokens; 0: unlimited */
};

struct rl_config {
    struct rl_bucket_cfg bw;    /* bytes */
    struct rl_bucket_cfg ops;   /* requests (disks) or frames (network) */
};

static inline bool rl_bucket_on(const struct rl_bucket_cfg *b)
{
    return b->size && b->refill_ms;
}

static inline bool rl_config_on(const struct rl_config *c)
{
    return rl_bucket_on(&c->bw) || rl_bucket_on(&c->ops);
}

/* Check a configuration against the limits (what: the option or field
 * named in the message).  0 or -EINVAL. */
int rl_config_check(const struct rl_config *c, const char *what, struct err *e);

/* key=val from an option string: 1 if key was one of the rate keys (c set),
 * 0 if it is not one, -EINVAL (message in e, naming prefix and key) for a
 * bad value.  prefix ("", "rx_", "tx_") is what the key starts with. */
int rl_parse_opt(struct rl_config *c, const char *prefix, const char *ops_name, const char *key,
                 const char *val, struct err *e);
/* Append ",<prefix>bps=N..." for every limited bucket to buf (NUL-
 * terminated, len bytes).  0, or -ENOSPC. */
int rl_format(const struct rl_config *c, const char *prefix, const char *ops_name, char *buf,
              size_t len);

struct evloop;
struct rl;

/* A limiter with configuration c; resume(opaque) runs in device context on
 * loop when a refused operation may go (loop NULL: no timer, for tests). */
struct rl *rl_new(struct evloop *loop, const struct rl_config *c, void (*resume)(void *opaque),
                  void *opaque, struct err *e);
void rl_free(struct rl *rl);
/* New buckets (full) from c; a waiting device is resumed from the loop. */
void rl_update(struct rl *rl, const struct rl_config *c);
const struct rl_config *rl_get_config(const struct rl *rl);
/* Resume the device from the loop soon, whatever the buckets hold: after a
 * snapshot is restored, requests the limiter had refused are still in the
 * ring and the guest will not kick for them again. */
void rl_kick(struct rl *rl);
/* Take bytes and ops tokens (true), or refuse (false): then resume() will
 * run once they may be there. */
bool rl_consume(struct rl *rl, uint64_t bytes, uint64_t ops);
/* Whether the last refusal still holds, and until when (rl's clock, ns). */
bool rl_blocked(const struct rl *rl);
uint64_t rl_blocked_until(const struct rl *rl);
/* Tests: read time from now(ctx) instead of time_now_ns. */
void rl_set_clock(struct rl *rl, uint64_t (*now)(void *ctx), void *ctx);
/* Counters: operations refused (throttled) so far. */
uint64_t rl_throttled(const struct rl *rl);

#endif
