build-x86/src/arch/x86/pc.o: src/arch/x86/pc.c src/arch/x86/pc.h \
 src/core/bus.h src/core/log.h src/devices/cmos_rtc.h src/devices/i8042.h \
 src/devices/uart_16550.h src/core/console.h src/arch/x86/acpi.h \
 src/core/memory.h src/arch/x86/boot.h src/core/board.h src/core/file.h \
 src/core/vm.h src/engine/kvm/kvm.h
src/arch/x86/pc.h:
src/core/bus.h:
src/core/log.h:
src/devices/cmos_rtc.h:
src/devices/i8042.h:
src/devices/uart_16550.h:
src/core/console.h:
src/arch/x86/acpi.h:
src/core/memory.h:
src/arch/x86/boot.h:
src/core/board.h:
src/core/file.h:
src/core/vm.h:
src/engine/kvm/kvm.h:
