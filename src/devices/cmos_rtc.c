#include "devices/cmos_rtc.h"

#include <string.h>
#include <time.h>

#include "core/snapshot.h"

enum { REG_SEC = 0, REG_MIN = 2, REG_HOUR = 4, REG_WDAY = 6, REG_MDAY = 7, REG_MON = 8,
       REG_YEAR = 9, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d, REG_CENTURY = 0x32 };

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

void cmos_rtc_init(struct cmos_rtc *c)
{
    memset(c, 0, sizeof(*c));
    c->ram[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate; UIP clear */
    c->ram[REG_B] = 0x02; /* 24-hour, BCD */
    c->ram[REG_D] = 0x80; /* valid RAM and time */
}

static uint64_t cmos_read(void *opaque, uint64_t off, unsigned size)
{
    (void)size;
    struct cmos_rtc *c = opaque;
    if (off == 0)
        return 0xff;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    switch (c->index) {
    case REG_SEC: return bcd(tm.tm_sec);
    case REG_MIN: return bcd(tm.tm_min);
    case REG_HOUR: return bcd(tm.tm_hour);
    case REG_WDAY: return bcd(tm.tm_wday + 1);
    case REG_MDAY: return bcd(tm.tm_mday);
    case REG_MON: return bcd(tm.tm_mon + 1);
    case REG_YEAR: return bcd(tm.tm_year % 100);
    case REG_CENTURY: return bcd(19 + tm.tm_year / 100);
    case REG_C: return 0; /* no interrupt flags; reading clears them */
    default: return c->ram[c->index];
    }
}

static void cmos_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct cmos_rtc *c = opaque;
    if (off == 0) {
        c->index = (uint8_t)val & 0x7f; /* bit 7 masks NMI: nothing to mask here */
        return;
    }
    switch (c->index) {
    case REG_C: case REG_D: break;                 /* read-only */
    case REG_A: c->ram[REG_A] = (uint8_t)val & 0x7f; break;
    case REG_B: c->ram[REG_B] = ((uint8_t)val & ~0x04) | 0x02; break; /* keep BCD/24h */
    default:
        if (c->index > REG_D)
            c->ram[c->index] = (uint8_t)val;     /* time writes are ignored */
        break;
    }
}

const struct mmio_ops cmos_rtc_ops = { .read = cmos_read, .write = cmos_write };

/* Snapshot section "cmos", version 1: u8 index, 128 bytes of registers and
 * RAM.  The time registers are not used (reads come from the host's
 * clock), so a restored guest reads the current time. */
void cmos_rtc_save(const struct cmos_rtc *c, struct snap_writer *w)
{
    snapw_section(w, "cmos", 1);
    snapw_u8(w, c->index);
    snapw_bytes(w, c->ram, sizeof(c->ram));
}

int cmos_rtc_load(struct cmos_rtc *c, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "cmos", 1, 1, &r, e);
    if (ret < 0)
        return ret;
    uint8_t index = snapr_u8(&r), ram[sizeof(c->ram)];
    snapr_bytes(&r, ram, sizeof(ram));
    /* what cmos_write lets a guest do */
    snapr_check(&r, index < sizeof(ram), "bad index");
    snapr_check(&r, ram[REG_A] < 0x80 && (ram[REG_B] & 0x06) == 0x02 && ram[REG_C] == 0 &&
                    ram[REG_D] == 0x80, "bad status registers");
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    c->index = index;
    memcpy(c->ram, ram, sizeof(ram));
    return 0;
}
