build-x86/tests/unit/test_x86_devices: tests/unit/test_x86_devices.c \
 src/devices/cmos_rtc.h src/core/bus.h src/core/log.h src/devices/i8042.h \
 tests/unit/unit.h
src/devices/cmos_rtc.h:
src/core/bus.h:
src/core/log.h:
src/devices/i8042.h:
tests/unit/unit.h:
