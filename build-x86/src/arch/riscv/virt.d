build-x86/src/arch/riscv/virt.o: src/arch/riscv/virt.c \
 src/arch/riscv/virt.h src/arch/riscv/clint.h src/core/bus.h \
 src/core/log.h src/arch/riscv/plic.h src/devices/uart_16550.h \
 src/core/console.h src/pci/pci.h src/arch/riscv/loader.h src/core/file.h \
 src/core/memory.h src/core/board.h src/core/vm.h src/engine/rv64/rv64.h \
 src/engine/rv64/fpu.h src/virtio/virtio_pci.h src/core/evloop.h \
 src/virtio/virtio.h src/virtio/virtqueue.h
src/arch/riscv/virt.h:
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/arch/riscv/plic.h:
src/devices/uart_16550.h:
src/core/console.h:
src/pci/pci.h:
src/arch/riscv/loader.h:
src/core/file.h:
src/core/memory.h:
src/core/board.h:
src/core/vm.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
src/virtio/virtio_pci.h:
src/core/evloop.h:
src/virtio/virtio.h:
src/virtio/virtqueue.h:
