build-x86/src/arch/x86/acpi.o: src/arch/x86/acpi.c src/arch/x86/acpi.h \
 src/core/log.h src/core/memory.h src/arch/x86/boot_priv.h \
 src/arch/x86/boot.h
src/arch/x86/acpi.h:
src/core/log.h:
src/core/memory.h:
src/arch/x86/boot_priv.h:
src/arch/x86/boot.h:
