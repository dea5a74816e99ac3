/* Unit tests for the x86 PC board's own device sections (snapshots): the
 * i8042 ("i8042") and the CMOS RTC ("cmos") saved after guest accesses and
 * loaded into fresh devices, which then answer the guest alike; a missing,
 * short or long section and every field check (a pending command that is
 * not one, the CMOS index, status registers a guest cannot write). */
#include <errno.h>
#include <string.h>

#include "core/snapshot.h"
#include "devices/cmos_rtc.h"
#include "devices/i8042.h"

#include "unit.h"

#include "snap_test_util.h"

static void out8(const struct mmio_ops *ops, void *dev, uint64_t off, uint8_t v)
{
    ops->write(dev, off, v, 1);
}

static uint8_t in8(const struct mmio_ops *ops, void *dev, uint64_t off)
{
    return (uint8_t)ops->read(dev, off, 1);
}

static void save_both(struct i8042 *k, struct cmos_rtc *c, struct snap_file *f)
{
    struct snap_writer w;
    struct err e = { "" };
    snapw_init(&w);
    i8042_save(k, &w);
    cmos_rtc_save(c, &w);
    EQ(snap_test_finish(&w, f, &e), 0);
    snapw_free(&w);
}

static void test_round_trip(void)
{
    struct i8042 k, k2;
    struct cmos_rtc c, c2;
    i8042_init(&k, NULL, NULL);
    cmos_rtc_init(&c);
    out8(&i8042_ops, &k, 4, 0x60);      /* write CTR: waits for its data byte */
    out8(&cmos_rtc_ops, &c, 0, 0x40);   /* CMOS RAM byte 0x40 */
    out8(&cmos_rtc_ops, &c, 1, 0x5a);
    out8(&cmos_rtc_ops, &c, 0, 0x0b);   /* status B: interrupts enabled */
    out8(&cmos_rtc_ops, &c, 1, 0x42);
    out8(&cmos_rtc_ops, &c, 0, 0x41);   /* index left at 0x41 */
    struct snap_file f;
    save_both(&k, &c, &f);
    EQ(f.nsec, 2);
    EQ(f.sec[0].len, 4);
    EQ(f.sec[1].len, 129);
    i8042_init(&k2, NULL, NULL);
    cmos_rtc_init(&c2);
    struct err e = { "" };
    EQ(i8042_load(&k2, &f, &e), 0);
    EQ(cmos_rtc_load(&c2, &f, &e), 0);
    EQ(snap_file_check_used(&f, &e), 0);
    /* the pending CTR write completes on the restored controller */
    out8(&i8042_ops, &k2, 0, 0x47);
    out8(&i8042_ops, &k2, 4, 0x20);
    EQ(in8(&i8042_ops, &k2, 4) & 1, 1);
    EQ(in8(&i8042_ops, &k2, 0), 0x47);
    EQ(c2.index, 0x41);
    out8(&cmos_rtc_ops, &c2, 0, 0x40);
    EQ(in8(&cmos_rtc_ops, &c2, 1), 0x5a);
    out8(&cmos_rtc_ops, &c2, 0, 0x0b);
    EQ(in8(&cmos_rtc_ops, &c2, 1), 0x42);
    snap_file_free(&f);
}

static void test_checks(void)
{
    struct i8042 k;
    struct cmos_rtc c;
    i8042_init(&k, NULL, NULL);
    cmos_rtc_init(&c);
    struct snap_file f, g;
    struct err e = { "" };
    save_both(&k, &c, &f);
    struct { const char *sec; size_t off; uint8_t v; const char *want; } bad[] = {
        { "i8042", 3, 0x61, "bad pending command" },
        { "i8042", 2, 2, "i8042" },                 /* out_full not a boolean */
        { "cmos", 0, 0x80, "bad index" },
        { "cmos", 1 + 0x0a, 0x80, "bad status registers" },  /* A: UIP */
        { "cmos", 1 + 0x0b, 0x06, "bad status registers" },  /* B: binary mode */
        { "cmos", 1 + 0x0c, 0x10, "bad status registers" },  /* C */
        { "cmos", 1 + 0x0d, 0x00, "bad status registers" },  /* D */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (snap_test_patch(&f, bad[i].sec, bad[i].off, &bad[i].v, 1, &g) < 0)
            continue;
        struct i8042 k2;
        struct cmos_rtc c2;
        i8042_init(&k2, NULL, NULL);
        cmos_rtc_init(&c2);
        int ret = !strcmp(bad[i].sec, "i8042") ? i8042_load(&k2, &g, &e)
                                                : cmos_rtc_load(&c2, &g, &e);
        CHECK(ret == -EINVAL && snap_test_msg(&e, bad[i].want), "case %u: %d", i, ret);
        /* nothing applied */
        EQ(k2.pending_cmd, 0);
        EQ(c2.index, 0);
        snap_file_free(&g);
    }
    if (snap_test_edit(&f, "cmos", 100, 0, NULL, 0, &g) == 0) {
        CHECK(cmos_rtc_load(&c, &g, &e) == -EINVAL && snap_test_msg(&e, "'cmos'"), "short");
        snap_file_free(&g);
    }
    {
        struct snap_writer w;
        snapw_init(&w);
        i8042_save(&k, &w);
        snapw_u8(&w, 0);
        EQ(snap_test_finish(&w, &g, &e), 0);
        snapw_free(&w);
        CHECK(i8042_load(&k, &g, &e) == -EINVAL && snap_test_msg(&e, "unexpected bytes"),
              "long");
        CHECK(cmos_rtc_load(&c, &g, &e) == -EINVAL && snap_test_msg(&e, "no state for 'cmos'"),
              "missing");
        snap_file_free(&g);
    }
    snap_file_free(&f);
}

int main(void)
{
    test_round_trip();
    test_checks();
    snap_test_cleanup();
    return unit_done("test_x86_devices_state");
}
