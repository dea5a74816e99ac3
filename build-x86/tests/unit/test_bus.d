build-x86/tests/unit/test_bus: tests/unit/test_bus.c src/core/bus.h \
 src/core/log.h tests/unit/unit.h
src/core/bus.h:
src/core/log.h:
tests/unit/unit.h:
