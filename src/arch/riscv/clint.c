#include "arch/riscv/clint.h"

#include <string.h>

#include "core/log.h"
#include "core/snapshot.h"
#include "engine/rv64/rv64.h"

void clint_init(struct clint *c, struct rv64_hart **harts, unsigned nharts)
{
    memset(c, 0, sizeof(*c));
    c->harts = harts;
    c->nharts = nharts;
    c->base_ns = time_now_ns();
    for (unsigned i = 0; i < CLINT_MAX_HARTS; i++)
        c->mtimecmp[i] = UINT64_MAX;
}

/* base_ns, frozen_ns and mtimecmp are written under the device lock and
 * read by the hart threads without it (relaxed atomics: each is one
 * aligned word; freeze/thaw happen with the harts parked). */
static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

uint64_t clint_mtime(const struct clint *c)
{
    uint64_t frozen = ld(&c->frozen_ns);
    uint64_t now = frozen ? frozen : time_now_ns();
    return (now - ld(&c->base_ns)) / (1000000000ull / CLINT_FREQ);
}

void clint_freeze(struct clint *c)
{
    if (!c->frozen_ns)
        st(&c->frozen_ns, time_now_ns());
}

void clint_thaw(struct clint *c)
{
    if (c->frozen_ns) {
        st(&c->base_ns, c->base_ns + time_now_ns() - c->frozen_ns);
        st(&c->frozen_ns, 0);
    }
}

/* After a write to hart i's registers: its lines, and a wake-up so a
 * sleeping hart i recomputes its deadline. */
static void update_hart(struct clint *c, unsigned i, uint64_t now)
{
    rv64_set_irq(c->harts[i], MIP_MTIP, now >= c->mtimecmp[i]);
    rv64_set_irq(c->harts[i], MIP_MSIP, c->msip[i] & 1);
    rv64_kick_hart(c->harts[i]);
}

bool clint_mtip_due(const struct clint *c, unsigned i, uint64_t now)
{
    return now >= ld(&c->mtimecmp[i]);
}

void clint_tick_hart(struct clint *c, unsigned i)
{
    rv64_set_irq(c->harts[i], MIP_MTIP, clint_mtime(c) >= c->mtimecmp[i]);
}

void clint_tick(struct clint *c)
{
    for (unsigned i = 0; i < c->nharts; i++)
        clint_tick_hart(c, i);
}

uint64_t clint_ns_to_deadline(const struct clint *c, uint64_t hart_mask)
{
    uint64_t now = clint_mtime(c), best = UINT64_MAX;
    for (unsigned i = 0; i < c->nharts; i++) {
        if (!(hart_mask >> i & 1))
            continue;
        uint64_t cmp = ld(&c->mtimecmp[i]);
        if (cmp <= now)
            return 0;
        uint64_t d = cmp - now;
        if (d < best)
            best = d;
    }
    if (best == UINT64_MAX)
        return best;
    if (best > UINT64_MAX / 100)
        return UINT64_MAX;
    return best * (1000000000ull / CLINT_FREQ);
}

/* Reads/writes of 4 or 8 bytes; 4-byte accesses address either half. */
static uint64_t clint_read(void *opaque, uint64_t off, unsigned size)
{
    struct clint *c = opaque;
    uint64_t v = 0, base = off & ~7ull;
    if (off < 0x4000) {
        unsigned h = (unsigned)(off / 4);
        return h < c->nharts ? c->msip[h] : 0;
    } else if (off >= 0x4000 && off < 0x4000 + 8ull * c->nharts) {
        v = c->mtimecmp[(base - 0x4000) / 8];
    } else if (base == 0xbff8) {
        v = clint_mtime(c);
    }
    if (size == 4)
        v = (off & 4) ? v >> 32 : (uint32_t)v;
    return v;
}

static void clint_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct clint *c = opaque;
    uint64_t base = off & ~7ull;
    if (off < 0x4000) {
        unsigned h = (unsigned)(off / 4);
        if (h < c->nharts) {
            c->msip[h] = val & 1;
            update_hart(c, h, clint_mtime(c));
        }
    } else if (off >= 0x4000 && off < 0x4000 + 8ull * c->nharts) {
        unsigned h = (unsigned)((base - 0x4000) / 8);
        uint64_t v = c->mtimecmp[h];
        if (size == 8)
            v = val;
        else if (off & 4)
            v = (v & 0xffffffffull) | (val << 32);
        else
            v = (v & ~0xffffffffull) | (uint32_t)val;
        st(&c->mtimecmp[h], v);
        update_hart(c, h, clint_mtime(c));
    } else if (base == 0xbff8) {
        /* mtime writes move the epoch */
        uint64_t now = clint_mtime(c), v = now;
        if (size == 8)
            v = val;
        else if (off & 4)
            v = (v & 0xffffffffull) | (val << 32);
        else
            v = (v & ~0xffffffffull) | (uint32_t)val;
        st(&c->base_ns, c->base_ns + (now - v) * (1000000000ull / CLINT_FREQ));
        clint_tick(c);
        for (unsigned i = 0; i < c->nharts; i++)
            rv64_kick_hart(c->harts[i]);     /* their deadlines moved */
    }
}

const struct mmio_ops clint_ops = { .read = clint_read, .write = clint_write };

/* Snapshot section "clint", version 1: mtime, then msip and mtimecmp per
 * hart.  mtime continues from the saved value on load (no jump, forwards or
 * backwards: the guest sees no time pass between snapshot and restore). */
void clint_save(const struct clint *c, struct snap_writer *w)
{
    snapw_section(w, "clint", 1);
    snapw_u64(w, clint_mtime(c));
    snapw_u32(w, c->nharts);
    for (unsigned i = 0; i < c->nharts; i++) {
        snapw_u32(w, c->msip[i]);
        snapw_u64(w, c->mtimecmp[i]);
    }
}

int clint_load(struct clint *c, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "clint", 1, 1, &r, e);
    if (ret < 0)
        return ret;
    uint64_t mtime = snapr_u64(&r);
    uint32_t n = snapr_u32(&r);
    if (!snapr_check(&r, n == c->nharts, "hart count differs"))
        return snapr_end(&r, e);
    uint32_t msip[CLINT_MAX_HARTS];
    uint64_t cmp[CLINT_MAX_HARTS];
    for (unsigned i = 0; i < n; i++) {
        msip[i] = snapr_u32(&r);
        cmp[i] = snapr_u64(&r);
        snapr_check(&r, msip[i] <= 1, "bad msip");
    }
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    uint64_t now = c->frozen_ns ? c->frozen_ns : time_now_ns();
    st(&c->base_ns, now - mtime * (1000000000ull / CLINT_FREQ));   /* modular: any mtime works */
    for (unsigned i = 0; i < n; i++) {
        c->msip[i] = msip[i];
        st(&c->mtimecmp[i], cmp[i]);
        update_hart(c, i, mtime);
    }
    return 0;
}
