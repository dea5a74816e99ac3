/* rv64: physical memory protection (16 entries, granularity 4 bytes).
 *
 * The CSRs (pmpcfg0, pmpcfg2, pmpaddr0..15) are decoded into byte ranges
 * whenever one of them is written, so a check is a scan of the active
 * entries.  Checks happen where the software TLB is filled (mmu.c): a page
 * is cached only when one entry covers all of it with the permission (or
 * no entry touches it and the access is M-mode's), so a cached translation
 * never skips a check that could fail.  Every write flushes the TLB.
 *
 * Rules (privileged spec, "Physical Memory Protection"): the lowest-
 * numbered entry matching any byte of the access decides; it must match
 * all bytes, else the access fails.  M-mode is checked only against locked
 * entries; S and U fail when no entry matches (PMP is implemented). */
#include "engine/rv64/rv64.h"

enum { A_OFF = 0, A_TOR = 1, A_NA4 = 2, A_NAPOT = 3 };

#define PMPADDR_MASK ((1ull << 54) - 1)

static uint8_t cfg_of(const struct rv64_hart *h, unsigned i)
{
    return (uint8_t)(h->pmpcfg[i / 8] >> (8 * (i % 8)));
}

void rv64_pmp_update(struct rv64_hart *h)
{
    h->pmp_n = 0;
    h->pmp_m_locked = false;
    for (unsigned i = 0; i < PMP_N; i++) {
        uint8_t cfg = cfg_of(h, i);
        unsigned a = (cfg & PMP_A) >> 3;
        uint64_t lo, hi, addr = h->pmpaddr[i];
        if (a == A_OFF)
            continue;
        if (a == A_TOR) {
            lo = i ? h->pmpaddr[i - 1] << 2 : 0;
            hi = addr << 2;
        } else if (a == A_NA4) {
            lo = addr << 2;
            hi = lo + 4;
        } else {
            unsigned t = (unsigned)__builtin_ctzll(~addr); /* trailing ones, <= 54 */
            lo = (addr & ~((1ull << t) - 1)) << 2;
            hi = lo + (1ull << (t + 3));
        }
        if (lo >= hi)
            continue; /* TOR with pmpaddr[i-1] >= pmpaddr[i]: matches nothing */
        h->pmp[h->pmp_n].lo = lo;
        h->pmp[h->pmp_n].hi = hi;
        h->pmp[h->pmp_n].cfg = cfg;
        h->pmp_n++;
        if (cfg & PMP_L)
            h->pmp_m_locked = true;
    }
    rv64_tlb_flush(h);
}

bool rv64_pmp_check(const struct rv64_hart *h, uint64_t pa, uint64_t len, int acc, unsigned priv)
{
    if (priv == PRV_M && !h->pmp_m_locked)
        return true;
    static const uint8_t need[3] = { PMP_X, PMP_R, PMP_W };
    uint64_t end = pa + len;
    if (end < pa)
        return false;
    for (unsigned i = 0; i < h->pmp_n; i++) {
        uint64_t lo = h->pmp[i].lo, hi = h->pmp[i].hi;
        if (end <= lo || pa >= hi)
            continue;
        if (pa < lo || end > hi)
            return false; /* matches only some of the bytes */
        uint8_t cfg = h->pmp[i].cfg;
        if (priv == PRV_M && !(cfg & PMP_L))
            return true;
        return (cfg & need[acc]) != 0;
    }
    return priv == PRV_M;
}

/* Entry i is locked against writes: its own L, or (for pmpaddr) the next
 * entry's L with TOR, which uses this address as its bottom. */
static bool cfg_locked(const struct rv64_hart *h, unsigned i)
{
    return cfg_of(h, i) & PMP_L;
}

int rv64_pmp_write_cfg(struct rv64_hart *h, unsigned reg, uint64_t v)
{
    uint64_t n = h->pmpcfg[reg];
    for (unsigned b = 0; b < 8; b++) {
        unsigned i = reg * 8 + b;
        if (cfg_locked(h, i))
            continue;
        uint8_t c = (uint8_t)(v >> (8 * b)) & (PMP_L | PMP_A | PMP_X | PMP_W | PMP_R);
        if ((c & (PMP_R | PMP_W)) == PMP_W) /* W without R is reserved: WARL to no W */
            c &= (uint8_t)~PMP_W;
        n = (n & ~(0xffull << (8 * b))) | ((uint64_t)c << (8 * b));
    }
    h->pmpcfg[reg] = n;
    rv64_pmp_update(h);
    return 0;
}

int rv64_pmp_write_addr(struct rv64_hart *h, unsigned i, uint64_t v)
{
    if (cfg_locked(h, i))
        return 0;
    if (i + 1 < PMP_N && cfg_locked(h, i + 1) && ((cfg_of(h, i + 1) & PMP_A) >> 3) == A_TOR)
        return 0;
    h->pmpaddr[i] = v & PMPADDR_MASK;
    rv64_pmp_update(h);
    return 0;
}
