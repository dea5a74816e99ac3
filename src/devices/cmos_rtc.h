/* CMOS RTC (MC146818) on ports 0x70 (index) / 0x71 (data): the time comes
 * from the host's clock (UTC), in BCD, 24-hour mode; other registers are
 * plain storage. */
#ifndef PETREL_CMOS_RTC_H
#define PETREL_CMOS_RTC_H

#include <stdint.h>

#include "core/bus.h"

#define CMOS_PORT 0x70

struct cmos_rtc {
    uint8_t index;
    uint8_t ram[128];
};

extern const struct mmio_ops cmos_rtc_ops;
void cmos_rtc_init(struct cmos_rtc *c);

/* Snapshots (core/snapshot.h): section "cmos". */
struct snap_writer;
struct snap_file;
struct err;
void cmos_rtc_save(const struct cmos_rtc *c, struct snap_writer *w);
int cmos_rtc_load(struct cmos_rtc *c, struct snap_file *f, struct err *e);

#endif
