/* SiFive PLIC: 31 level-triggered sources, two contexts per hart
 * (2h = M-mode external interrupt, 2h+1 = S-mode). */
#ifndef PETREL_PLIC_H
#define PETREL_PLIC_H

#include <stdint.h>

#include "core/bus.h"

#define PLIC_BASE 0x0c000000ull
#define PLIC_SIZE 0x600000ull
#define PLIC_NSRC 32 /* sources 1..31 */
#define PLIC_MAX_CTX 64

struct rv64_hart;

struct plic {
    unsigned nctx;
    struct rv64_hart **harts;
    uint32_t prio[PLIC_NSRC];
    uint32_t level, pending, claimed;
    uint32_t enable[PLIC_MAX_CTX];
    uint32_t threshold[PLIC_MAX_CTX];
};

extern const struct mmio_ops plic_ops;

void plic_init(struct plic *p, struct rv64_hart **harts, unsigned nharts);
void plic_set_irq(struct plic *p, unsigned src, int level);

#endif
