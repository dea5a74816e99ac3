build-x86/src/devices/i8042.o: src/devices/i8042.c src/devices/i8042.h \
 src/core/bus.h src/core/log.h
src/devices/i8042.h:
src/core/bus.h:
src/core/log.h:
