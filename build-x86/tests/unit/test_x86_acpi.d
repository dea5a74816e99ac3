build-x86/tests/unit/test_x86_acpi: tests/unit/test_x86_acpi.c \
 src/arch/x86/acpi.h src/core/log.h src/core/memory.h src/arch/x86/boot.h \
 tests/unit/unit.h tests/unit/x86_guest_mem.h
src/arch/x86/acpi.h:
src/core/log.h:
src/core/memory.h:
src/arch/x86/boot.h:
tests/unit/unit.h:
tests/unit/x86_guest_mem.h:
