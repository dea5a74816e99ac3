#include "arch/riscv/plic.h"

#include <string.h>

#include "core/snapshot.h"
#include "engine/rv64/rv64.h"

#define PLIC_PENDING 0x1000
#define PLIC_ENABLE 0x2000
#define PLIC_ENABLE_STRIDE 0x80
#define PLIC_CONTEXT 0x200000
#define PLIC_CONTEXT_STRIDE 0x1000

void plic_init(struct plic *p, struct rv64_hart **harts, unsigned nharts)
{
    memset(p, 0, sizeof(*p));
    p->harts = harts;
    p->nctx = 2 * nharts;
}

/* Best claimable source for a context: highest priority, then lowest id. */
static unsigned best_source(const struct plic *p, unsigned ctx, uint32_t min_prio)
{
    unsigned best = 0;
    uint32_t best_prio = min_prio;
    for (unsigned w = 0; w < PLIC_WORDS; w++) {
        uint32_t cand = p->pending[w] & p->enable[ctx][w];
        while (cand) {
            unsigned s = 32 * w + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (s != 0 && p->prio[s] > best_prio) {
                best = s;
                best_prio = p->prio[s];
            }
        }
    }
    return best;
}

static void plic_update(struct plic *p)
{
    for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
        int level = best_source(p, ctx, p->threshold[ctx]) != 0;
        rv64_set_irq(p->harts[ctx / 2], (ctx & 1) ? MIP_SEIP : MIP_MEIP, level);
    }
}

void plic_set_irq(struct plic *p, unsigned src, int level)
{
    if (src == 0 || src >= PLIC_NSRC)
        return;
    unsigned w = src / 32;
    uint32_t bit = 1u << (src % 32);
    if (level) {
        p->level[w] |= bit;
        if (!(p->claimed[w] & bit))
            p->pending[w] |= bit;
    } else {
        p->level[w] &= ~bit;
        p->pending[w] &= ~bit;
    }
    plic_update(p);
}

static uint64_t plic_read(void *opaque, uint64_t off, unsigned size)
{
    (void)size;
    struct plic *p = opaque;
    if (off < 4 * PLIC_NSRC)
        return p->prio[off / 4];
    if (off >= PLIC_PENDING && off < PLIC_PENDING + 4 * PLIC_WORDS)
        return p->pending[(off - PLIC_PENDING) / 4];
    if (off >= PLIC_ENABLE && off < PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((off - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
        unsigned w = (unsigned)((off - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) / 4;
        return (ctx < p->nctx && w < PLIC_WORDS) ? p->enable[ctx][w] : 0;
    }
    if (off >= PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((off - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
        unsigned reg = (unsigned)(off % PLIC_CONTEXT_STRIDE);
        if (ctx >= p->nctx)
            return 0;
        if (reg == 0)
            return p->threshold[ctx];
        if (reg == 4) { /* claim */
            unsigned s = best_source(p, ctx, 0);
            if (s) {
                p->pending[s / 32] &= ~(1u << (s % 32));
                p->claimed[s / 32] |= 1u << (s % 32);
                plic_update(p);
            }
            return s;
        }
    }
    return 0;
}

static void plic_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct plic *p = opaque;
    if (off < 4 * PLIC_NSRC) {
        if (off >= 4)
            p->prio[off / 4] = (uint32_t)val & 7;
    } else if (off >= PLIC_ENABLE && off < PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((off - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
        unsigned w = (unsigned)((off - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) / 4;
        if (ctx < p->nctx && w < PLIC_WORDS)
            p->enable[ctx][w] = (uint32_t)val & (w == 0 ? ~1u : ~0u); /* source 0 */
    } else if (off >= PLIC_CONTEXT) {
        unsigned ctx = (unsigned)((off - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
        unsigned reg = (unsigned)(off % PLIC_CONTEXT_STRIDE);
        if (ctx >= p->nctx)
            return;
        if (reg == 0) {
            p->threshold[ctx] = (uint32_t)val & 7;
        } else if (reg == 4 && val > 0 && val < PLIC_NSRC) { /* complete */
            unsigned w = (unsigned)val / 32;
            uint32_t bit = 1u << (val % 32);
            p->claimed[w] &= ~bit;
            if (p->level[w] & bit)
                p->pending[w] |= bit;
        }
    }
    plic_update(p);
}

const struct mmio_ops plic_ops = { .read = plic_read, .write = plic_write };

/* Snapshot section "plic", version 1: priorities, source levels, pending
 * and claimed bits, then enables and threshold per context. */
void plic_save(const struct plic *p, struct snap_writer *w)
{
    snapw_section(w, "plic", 1);
    snapw_u32(w, p->nctx);
    for (unsigned i = 0; i < PLIC_NSRC; i++)
        snapw_u32(w, p->prio[i]);
    for (unsigned i = 0; i < PLIC_WORDS; i++) {
        snapw_u32(w, p->level[i]);
        snapw_u32(w, p->pending[i]);
        snapw_u32(w, p->claimed[i]);
    }
    for (unsigned c = 0; c < p->nctx; c++) {
        for (unsigned i = 0; i < PLIC_WORDS; i++)
            snapw_u32(w, p->enable[c][i]);
        snapw_u32(w, p->threshold[c]);
    }
}

int plic_load(struct plic *p, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "plic", 1, 1, &r, e);
    if (ret < 0)
        return ret;
    struct plic n;
    memset(&n, 0, sizeof(n));
    uint32_t nctx = snapr_u32(&r);
    if (!snapr_check(&r, nctx == p->nctx, "context count differs"))
        return snapr_end(&r, e);
    for (unsigned i = 0; i < PLIC_NSRC; i++) {
        n.prio[i] = snapr_u32(&r);
        snapr_check(&r, n.prio[i] <= 7, "bad priority");
    }
    for (unsigned i = 0; i < PLIC_WORDS; i++) {
        n.level[i] = snapr_u32(&r);
        n.pending[i] = snapr_u32(&r);
        n.claimed[i] = snapr_u32(&r);
    }
    snapr_check(&r, !(n.level[0] & 1) && !(n.pending[0] & 1) && !(n.claimed[0] & 1),
                "source 0 is set");
    for (unsigned c = 0; c < nctx; c++) {
        for (unsigned i = 0; i < PLIC_WORDS; i++)
            n.enable[c][i] = snapr_u32(&r);
        n.threshold[c] = snapr_u32(&r);
        snapr_check(&r, !(n.enable[c][0] & 1) && n.threshold[c] <= 7, "bad context state");
    }
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    memcpy(p->prio, n.prio, sizeof(n.prio));
    memcpy(p->level, n.level, sizeof(n.level));
    memcpy(p->pending, n.pending, sizeof(n.pending));
    memcpy(p->claimed, n.claimed, sizeof(n.claimed));
    memcpy(p->enable, n.enable, sizeof(n.enable));
    memcpy(p->threshold, n.threshold, sizeof(n.threshold));
    plic_update(p);
    return 0;
}
