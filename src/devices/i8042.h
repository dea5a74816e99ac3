/* i8042 keyboard controller, just enough for a VM without a keyboard:
 * Linux probes it, and writing 0xFE (pulse reset) to the command port
 * resets the machine, which ends the run as a guest reboot. */
#ifndef PETREL_I8042_H
#define PETREL_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

struct i8042 {
    uint8_t ctr;            /* controller configuration byte */
    uint8_t out;            /* output buffer */
    bool out_full;
    uint8_t pending_cmd;    /* command waiting for its data byte */
    void (*reset)(void *opaque);
    void *opaque;
};

/* One region covering ports 0x60..0x64 (offsets 0 and 4 are used). */
extern const struct mmio_ops i8042_ops;
void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque);

/* Snapshots (core/snapshot.h): section "i8042". */
struct snap_writer;
struct snap_file;
struct err;
void i8042_save(const struct i8042 *k, struct snap_writer *w);
int i8042_load(struct i8042 *k, struct snap_file *f, struct err *e);

#endif
