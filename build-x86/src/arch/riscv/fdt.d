build-x86/src/arch/riscv/fdt.o: src/arch/riscv/fdt.c \
 src/arch/riscv/virt.h src/arch/riscv/clint.h src/core/bus.h \
 src/core/log.h src/arch/riscv/plic.h src/devices/uart_16550.h \
 src/core/console.h src/pci/pci.h
src/arch/riscv/virt.h:
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/arch/riscv/plic.h:
src/devices/uart_16550.h:
src/core/console.h:
src/pci/pci.h:
