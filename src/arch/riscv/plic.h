/* SiFive PLIC: 63 level-triggered sources (1..63), two contexts per hart
 * (2h = M-mode external interrupt, 2h+1 = S-mode).  Pending, enable and
 * claimed state are bit arrays of PLIC_WORDS 32-bit words, as the
 * register layout has them. */
#ifndef PETREL_PLIC_H
#define PETREL_PLIC_H

#include <stdint.h>

#include "core/bus.h"

#define PLIC_BASE 0x0c000000ull
#define PLIC_SIZE 0x600000ull
#define PLIC_NSRC 64 /* sources 1..63 (0 means "none") */
#define PLIC_WORDS (PLIC_NSRC / 32)
#define PLIC_MAX_CTX 64

struct rv64_hart;

struct plic {
    unsigned nctx;
    struct rv64_hart **harts;
    uint32_t prio[PLIC_NSRC];
    uint32_t level[PLIC_WORDS], pending[PLIC_WORDS], claimed[PLIC_WORDS];
    uint32_t enable[PLIC_MAX_CTX][PLIC_WORDS];
    uint32_t threshold[PLIC_MAX_CTX];
};

extern const struct mmio_ops plic_ops;

void plic_init(struct plic *p, struct rv64_hart **harts, unsigned nharts);
void plic_set_irq(struct plic *p, unsigned src, int level);

/* Snapshots (core/snapshot.h): section "plic". */
struct snap_writer;
struct snap_file;
struct err;
void plic_save(const struct plic *p, struct snap_writer *w);
int plic_load(struct plic *p, struct snap_file *f, struct err *e);

#endif
