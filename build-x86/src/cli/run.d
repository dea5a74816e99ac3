build-x86/src/cli/run.o: src/cli/run.c src/arch/riscv/virt.h \
 src/arch/riscv/clint.h src/core/bus.h src/core/log.h \
 src/arch/riscv/plic.h src/devices/uart_16550.h src/core/console.h \
 src/pci/pci.h src/cli/cli.h src/core/board.h src/core/evloop.h \
 src/core/vm.h src/core/memory.h src/virtio/virtio_pci.h \
 src/virtio/virtio.h src/virtio/virtqueue.h
src/arch/riscv/virt.h:
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/arch/riscv/plic.h:
src/devices/uart_16550.h:
src/core/console.h:
src/pci/pci.h:
src/cli/cli.h:
src/core/board.h:
src/core/evloop.h:
src/core/vm.h:
src/core/memory.h:
src/virtio/virtio_pci.h:
src/virtio/virtio.h:
src/virtio/virtqueue.h:
