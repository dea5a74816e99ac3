build-x86/src/devices/uart_16550.o: src/devices/uart_16550.c \
 src/devices/uart_16550.h src/core/bus.h src/core/log.h \
 src/core/console.h
src/devices/uart_16550.h:
src/core/bus.h:
src/core/log.h:
src/core/console.h:
