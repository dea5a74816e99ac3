build-x86/src/virtio/virtio.o: src/virtio/virtio.c src/virtio/virtio.h \
 src/core/log.h src/core/memory.h src/virtio/virtqueue.h
src/virtio/virtio.h:
src/core/log.h:
src/core/memory.h:
src/virtio/virtqueue.h:
