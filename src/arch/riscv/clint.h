/* SiFive CLINT: per-hart msip and mtimecmp, and mtime at 10 MHz derived from
 * the host's monotonic clock (so guest time is wall time, also while the
 * VMM sleeps in WFI).  Registers are accessed in device context (the VM's
 * device lock held); mtime and the mtimecmp deadlines are also read
 * without it by each hart's thread (clint_mtime, clint_mtip_due,
 * clint_ns_to_deadline). */
#ifndef PETREL_CLINT_H
#define PETREL_CLINT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"

#define CLINT_BASE 0x02000000ull
#define CLINT_SIZE 0x10000ull
#define CLINT_FREQ 10000000ull
#define CLINT_MAX_HARTS 32

struct rv64_hart;

struct clint {
    unsigned nharts;
    struct rv64_hart **harts;
    uint64_t base_ns;          /* host time at mtime == 0 */
    uint64_t frozen_ns;        /* host time when frozen (VM paused), 0: running */
    uint32_t msip[CLINT_MAX_HARTS];
    uint64_t mtimecmp[CLINT_MAX_HARTS];
};

extern const struct mmio_ops clint_ops;

void clint_init(struct clint *c, struct rv64_hart **harts, unsigned nharts);
uint64_t clint_mtime(const struct clint *c);
/* Stop mtime (the VM is paused) and restart it where it stopped. */
void clint_freeze(struct clint *c);
void clint_thaw(struct clint *c);
/* Update MTIP of every hart (of hart i) from the current time.  Device
 * context (the device lock held). */
void clint_tick(struct clint *c);
void clint_tick_hart(struct clint *c, unsigned i);
/* Is hart i's mtimecmp due at mtime `now`?  Any thread, no lock: a hart
 * thread checks this between slices and takes the lock only to change
 * its MTIP (clint_tick_hart). */
bool clint_mtip_due(const struct clint *c, unsigned i, uint64_t now);
/* Nanoseconds until the earliest mtimecmp among the harts in hart_mask
 * (0 if already due, UINT64_MAX if none armed).  Any thread, no lock. */
uint64_t clint_ns_to_deadline(const struct clint *c, uint64_t hart_mask);

/* Snapshots (core/snapshot.h): section "clint". */
struct snap_writer;
struct snap_file;
struct err;
void clint_save(const struct clint *c, struct snap_writer *w);
int clint_load(struct clint *c, struct snap_file *f, struct err *e);

#endif
