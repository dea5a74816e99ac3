build-x86/tests/unit/test_virtio: tests/unit/test_virtio.c src/pci/pci.h \
 src/core/bus.h src/core/log.h src/virtio/virtio_pci.h src/core/evloop.h \
 src/virtio/virtio.h src/core/memory.h src/virtio/virtqueue.h \
 tests/unit/unit.h
src/pci/pci.h:
src/core/bus.h:
src/core/log.h:
src/virtio/virtio_pci.h:
src/core/evloop.h:
src/virtio/virtio.h:
src/core/memory.h:
src/virtio/virtqueue.h:
tests/unit/unit.h:
