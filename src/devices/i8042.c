#include "devices/i8042.h"

#include <string.h>

#include "core/snapshot.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08

void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque)
{
    memset(k, 0, sizeof(*k));
    k->ctr = 0x45; /* keyboard interrupt on, system flag, translation */
    k->reset = reset;
    k->opaque = opaque;
}

static void put(struct i8042 *k, uint8_t v)
{
    k->out = v;
    k->out_full = true;
}

static uint64_t i8042_read(void *opaque, uint64_t off, unsigned size)
{
    (void)size;
    struct i8042 *k = opaque;
    if (off == 0) {
        k->out_full = false;
        return k->out;
    }
    if (off == 4)
        return (k->out_full ? STATUS_OBF : 0) | STATUS_SYS | (k->pending_cmd ? STATUS_CMD : 0);
    return 0xff;
}

static void i8042_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct i8042 *k = opaque;
    uint8_t v = (uint8_t)val;
    if (off == 0) {
        if (k->pending_cmd == 0x60)
            k->ctr = v;
        /* data for the (absent) keyboard or mouse is dropped */
        k->pending_cmd = 0;
        return;
    }
    if (off != 4)
        return;
    switch (v) {
    case 0x20: put(k, k->ctr); break;          /* read CTR */
    case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
        k->pending_cmd = v;                      /* command takes a data byte */
        break;
    case 0xaa: put(k, 0x55); break;             /* controller self-test: passed */
    case 0xa9: case 0xab: put(k, 0x00); break;  /* port tests: OK */
    case 0xfe:                                  /* pulse the reset line */
        if (k->reset)
            k->reset(k->opaque);
        break;
    default: break;                             /* enable/disable ports etc. */
    }
}

const struct mmio_ops i8042_ops = { .read = i8042_read, .write = i8042_write };

/* Snapshot section "i8042", version 1: u8 ctr, u8 out, bool out_full, u8
 * pending_cmd (0 or a command waiting for its data byte). */
void i8042_save(const struct i8042 *k, struct snap_writer *w)
{
    snapw_section(w, "i8042", 1);
    snapw_u8(w, k->ctr);
    snapw_u8(w, k->out);
    snapw_bool(w, k->out_full);
    snapw_u8(w, k->pending_cmd);
}

int i8042_load(struct i8042 *k, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "i8042", 1, 1, &r, e);
    if (ret < 0)
        return ret;
    uint8_t ctr = snapr_u8(&r), out = snapr_u8(&r);
    bool full = snapr_bool(&r);
    uint8_t cmd = snapr_u8(&r);
    snapr_check(&r, cmd == 0 || cmd == 0x60 || (cmd >= 0xd1 && cmd <= 0xd4),
                "bad pending command");
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    k->ctr = ctr;
    k->out = out;
    k->out_full = full;
    k->pending_cmd = cmd;
    return 0;
}
