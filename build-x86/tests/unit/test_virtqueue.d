build-x86/tests/unit/test_virtqueue: tests/unit/test_virtqueue.c \
 src/virtio/virtqueue.h src/core/log.h src/core/memory.h \
 tests/unit/unit.h
src/virtio/virtqueue.h:
src/core/log.h:
src/core/memory.h:
tests/unit/unit.h:
