build-x86/src/virtio/virtio_pci.o: src/virtio/virtio_pci.c \
 src/virtio/virtio_pci.h src/core/evloop.h src/core/log.h src/pci/pci.h \
 src/core/bus.h src/virtio/virtio.h src/core/memory.h \
 src/virtio/virtqueue.h
src/virtio/virtio_pci.h:
src/core/evloop.h:
src/core/log.h:
src/pci/pci.h:
src/core/bus.h:
src/virtio/virtio.h:
src/core/memory.h:
src/virtio/virtqueue.h:
