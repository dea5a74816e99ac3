/* Unit tests for the PLIC (src/arch/riscv/plic.c) with 63 sources: the
 * registers of sources above 31 (priority, pending and enable words),
 * claim/complete, thresholds, and the hart's MEIP/SEIP lines. */
#include <stdlib.h>
#include <string.h>

#include "arch/riscv/plic.h"
#include "engine/rv64/rv64.h"

#include "unit.h"

static struct plic p;
static struct rv64_hart *harts[2];

static uint32_t rd(uint64_t off) { return (uint32_t)plic_ops.read(&p, off, 4); }
static void wr(uint64_t off, uint32_t v) { plic_ops.write(&p, off, v, 4); }

#define ENABLE(ctx, w) (0x2000 + 0x80 * (ctx) + 4 * (w))
#define THRESHOLD(ctx) (0x200000 + 0x1000 * (ctx))
#define CLAIM(ctx) (0x200004 + 0x1000 * (ctx))

static int seip(unsigned h) { return (harts[h]->mip_hw & MIP_SEIP) != 0; }
static int meip(unsigned h) { return (harts[h]->mip_hw & MIP_MEIP) != 0; }

int main(void)
{
    for (int i = 0; i < 2; i++)
        harts[i] = calloc(1, sizeof(*harts[i]));
    plic_init(&p, harts, 2);
    /* priorities of every source, 0 is hard-wired */
    for (unsigned s = 0; s < PLIC_NSRC; s++)
        wr(4 * s, 5);
    EQ(rd(0), 0);
    EQ(rd(4 * 33), 5);
    EQ(rd(4 * 63), 5);
    wr(4 * 63, 0xff);
    EQ(rd(4 * 63), 7);
    wr(4 * 63, 5);

    /* source 33 (a PCI INTx line): pending in word 1, enable word 1 */
    plic_set_irq(&p, 33, 1);
    EQ(rd(0x1000), 0);
    EQ(rd(0x1004), 1u << 1);
    EQ(seip(0), 0);                      /* not enabled yet */
    wr(ENABLE(1, 1), 1u << 1);           /* hart 0 S-mode context */
    EQ(rd(ENABLE(1, 1)), 1u << 1);
    EQ(rd(ENABLE(1, 0)), 0);
    EQ(seip(0), 1);
    EQ(meip(0), 0);
    EQ(seip(1), 0);
    /* threshold at the source's priority masks it */
    wr(THRESHOLD(1), 5);
    EQ(seip(0), 0);
    wr(THRESHOLD(1), 4);
    EQ(seip(0), 1);
    /* claim: 33, no longer pending, line drops; complete re-pends
     * (level still high) */
    EQ(rd(CLAIM(1)), 33);
    EQ(rd(0x1004), 0);
    EQ(seip(0), 0);
    EQ(rd(CLAIM(1)), 0);                 /* nothing else */
    wr(CLAIM(1), 33);
    EQ(rd(0x1004), 1u << 1);
    EQ(seip(0), 1);
    plic_set_irq(&p, 33, 0);
    EQ(rd(0x1004), 0);
    EQ(seip(0), 0);

    /* priority order across words: 10 (prio 5) vs 35 (prio 6) vs 63 */
    wr(ENABLE(1, 0), 1u << 10);
    wr(ENABLE(1, 1), (1u << 3) | (1u << 31));
    wr(4 * 35, 6);
    plic_set_irq(&p, 10, 1);
    plic_set_irq(&p, 35, 1);
    plic_set_irq(&p, 63, 1);
    EQ(rd(0x1000), 1u << 10);
    EQ(rd(0x1004), (1u << 3) | (1u << 31));
    EQ(rd(CLAIM(1)), 35);                /* highest priority */
    EQ(rd(CLAIM(1)), 10);                /* same priority: lowest id */
    EQ(rd(CLAIM(1)), 63);
    EQ(rd(CLAIM(1)), 0);
    wr(CLAIM(1), 10);
    wr(CLAIM(1), 35);
    wr(CLAIM(1), 63);
    EQ(seip(0), 1);                      /* all still high */
    /* source 0 cannot be enabled; out-of-range sources are ignored */
    wr(ENABLE(0, 0), 0xffffffff);
    EQ(rd(ENABLE(0, 0)), 0xfffffffe);
    EQ(meip(0), 1);                      /* M context sees source 10 now */
    plic_set_irq(&p, 64, 1);
    plic_set_irq(&p, 0, 1);
    wr(CLAIM(1), 64);
    EQ(rd(ENABLE(1, 2)), 0);             /* no third word */
    EQ(rd(ENABLE(4, 0)), 0);             /* no such context */
    wr(ENABLE(4, 0), 0xffffffff);
    EQ(rd(THRESHOLD(4)), 0);

    for (int i = 0; i < 2; i++)
        free(harts[i]);
    return unit_done("test_riscv_plic");
}
