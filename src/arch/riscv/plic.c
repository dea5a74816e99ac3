#include "arch/riscv/plic.h"

#include <string.h>

#include "engine/rv64/rv64.h"

void plic_init(struct plic *p, struct rv64_hart **harts, unsigned nharts)
{
    memset(p, 0, sizeof(*p));
    p->harts = harts;
    p->nctx = 2 * nharts;
}

/* Best claimable source for a context: highest priority, then lowest id. */
static unsigned best_source(const struct plic *p, unsigned ctx, uint32_t min_prio)
{
    uint32_t cand = p->pending & p->enable[ctx] & ~1u;
    unsigned best = 0;
    uint32_t best_prio = min_prio;
    for (unsigned s = 1; s < PLIC_NSRC; s++)
        if ((cand >> s & 1) && p->prio[s] > best_prio) {
            best = s;
            best_prio = p->prio[s];
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
    uint32_t bit = 1u << src;
    if (level) {
        p->level |= bit;
        if (!(p->claimed & bit))
            p->pending |= bit;
    } else {
        p->level &= ~bit;
        p->pending &= ~bit;
    }
    plic_update(p);
}

static uint64_t plic_read(void *opaque, uint64_t off, unsigned size)
{
    (void)size;
    struct plic *p = opaque;
    if (off < 4 * PLIC_NSRC)
        return p->prio[off / 4];
    if (off == 0x1000)
        return p->pending;
    if (off >= 0x2000 && off < 0x200000) {
        unsigned ctx = (unsigned)((off - 0x2000) / 0x80);
        return (ctx < p->nctx && (off & 0x7f) == 0) ? p->enable[ctx] : 0;
    }
    if (off >= 0x200000) {
        unsigned ctx = (unsigned)((off - 0x200000) / 0x1000);
        unsigned reg = (unsigned)(off & 0xfff);
        if (ctx >= p->nctx)
            return 0;
        if (reg == 0)
            return p->threshold[ctx];
        if (reg == 4) { /* claim */
            unsigned s = best_source(p, ctx, 0);
            if (s) {
                p->pending &= ~(1u << s);
                p->claimed |= 1u << s;
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
    } else if (off >= 0x2000 && off < 0x200000) {
        unsigned ctx = (unsigned)((off - 0x2000) / 0x80);
        if (ctx < p->nctx && (off & 0x7f) == 0)
            p->enable[ctx] = (uint32_t)val & ~1u;
    } else if (off >= 0x200000) {
        unsigned ctx = (unsigned)((off - 0x200000) / 0x1000);
        unsigned reg = (unsigned)(off & 0xfff);
        if (ctx >= p->nctx)
            return;
        if (reg == 0) {
            p->threshold[ctx] = (uint32_t)val & 7;
        } else if (reg == 4 && val > 0 && val < PLIC_NSRC) { /* complete */
            uint32_t bit = 1u << val;
            p->claimed &= ~bit;
            if (p->level & bit)
                p->pending |= bit;
        }
    }
    plic_update(p);
}

const struct mmio_ops plic_ops = { .read = plic_read, .write = plic_write };
