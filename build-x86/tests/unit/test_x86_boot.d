build-x86/tests/unit/test_x86_boot: tests/unit/test_x86_boot.c \
 src/arch/x86/boot.h src/core/log.h src/core/memory.h tests/unit/unit.h \
 tests/unit/x86_guest_mem.h
src/arch/x86/boot.h:
src/core/log.h:
src/core/memory.h:
tests/unit/unit.h:
tests/unit/x86_guest_mem.h:
