build-x86/src/virtio/virtqueue.o: src/virtio/virtqueue.c \
 src/virtio/virtqueue.h src/core/log.h src/core/memory.h
src/virtio/virtqueue.h:
src/core/log.h:
src/core/memory.h:
