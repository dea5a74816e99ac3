build-x86/src/devices/cmos_rtc.o: src/devices/cmos_rtc.c \
 src/devices/cmos_rtc.h src/core/bus.h src/core/log.h
src/devices/cmos_rtc.h:
src/core/bus.h:
src/core/log.h:
