/* Unit tests for the x86 PC's small devices: i8042 and the CMOS RTC. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devices/cmos_rtc.h"
#include "devices/i8042.h"

#include "unit.h"

static int resets;
static void on_reset(void *opaque) { (void)opaque; resets++; }

static uint8_t kbc_in(struct i8042 *k, unsigned port) { return (uint8_t)i8042_ops.read(k, port - 0x60, 1); }
static void kbc_out(struct i8042 *k, unsigned port, uint8_t v) { i8042_ops.write(k, port - 0x60, v, 1); }

static void test_i8042(void)
{
    struct i8042 k;
    i8042_init(&k, on_reset, NULL);
    EQ(kbc_in(&k, 0x64) & 0x01, 0);          /* output buffer empty */
    EQ(kbc_in(&k, 0x64) & 0x04, 0x04);       /* system flag */
    kbc_out(&k, 0x64, 0xaa);                  /* self-test */
    EQ(kbc_in(&k, 0x64) & 0x01, 0x01);
    EQ(kbc_in(&k, 0x60), 0x55);
    EQ(kbc_in(&k, 0x64) & 0x01, 0);          /* reading emptied it */
    kbc_out(&k, 0x64, 0x60);                  /* write CTR ... */
    EQ(kbc_in(&k, 0x64) & 0x08, 0x08);       /* ... waiting for its data byte */
    kbc_out(&k, 0x60, 0x21);
    kbc_out(&k, 0x64, 0x20);                  /* read CTR */
    EQ(kbc_in(&k, 0x60), 0x21);
    kbc_out(&k, 0x64, 0xab);                  /* keyboard interface test */
    EQ(kbc_in(&k, 0x60), 0x00);
    EQ(resets, 0);
    kbc_out(&k, 0x64, 0xfe);                  /* pulse reset */
    EQ(resets, 1);
    EQ(kbc_in(&k, 0x61), 0xff);              /* not a register */
}

static uint8_t rtc_get(struct cmos_rtc *c, uint8_t reg)
{
    cmos_rtc_ops.write(c, 0, reg, 1);
    return (uint8_t)cmos_rtc_ops.read(c, 1, 1);
}

static int from_bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }
static int is_bcd(uint8_t v) { return (v >> 4) < 10 && (v & 15) < 10; }

static void test_cmos(void)
{
    struct cmos_rtc c;
    cmos_rtc_init(&c);
    EQ(rtc_get(&c, 0x0a) & 0x80, 0);          /* no update in progress */
    EQ(rtc_get(&c, 0x0b) & 0x06, 0x02);       /* BCD, 24-hour */
    EQ(rtc_get(&c, 0x0d), 0x80);              /* valid */
    time_t before = time(NULL);
    uint8_t sec = rtc_get(&c, 0), min = rtc_get(&c, 2), hour = rtc_get(&c, 4);
    uint8_t day = rtc_get(&c, 7), mon = rtc_get(&c, 8), year = rtc_get(&c, 9), cent = rtc_get(&c, 0x32);
    time_t after = time(NULL);
    uint8_t all[] = { sec, min, hour, day, mon, year, cent };
    for (unsigned i = 0; i < sizeof(all); i++)
        EQ(is_bcd(all[i]), 1);
    struct tm tm = { .tm_sec = from_bcd(sec), .tm_min = from_bcd(min), .tm_hour = from_bcd(hour),
                     .tm_mday = from_bcd(day), .tm_mon = from_bcd(mon) - 1,
                     .tm_year = from_bcd(cent) * 100 + from_bcd(year) - 1900 };
    time_t t = timegm(&tm);
    EQ(t >= before - 1 && t <= after + 1, 1);  /* the host's UTC time */
    /* NVRAM bytes are storage; the time can't be set from the guest */
    cmos_rtc_ops.write(&c, 0, 0x40, 1);
    cmos_rtc_ops.write(&c, 1, 0x5a, 1);
    EQ(rtc_get(&c, 0x40), 0x5a);
    cmos_rtc_ops.write(&c, 0, 0x0d, 1);
    cmos_rtc_ops.write(&c, 1, 0x00, 1);
    EQ(rtc_get(&c, 0x0d), 0x80);              /* read-only */
    cmos_rtc_ops.write(&c, 0, 0x8b, 1);        /* NMI-mask bit + index 0x0b */
    EQ((uint8_t)cmos_rtc_ops.read(&c, 1, 1) & 0x02, 0x02);
    EQ(cmos_rtc_ops.read(&c, 0, 1), 0xff);    /* the index port isn't readable */
}

int main(void)
{
    test_i8042();
    test_cmos();
    return unit_done("test_x86_devices");
}
