build-x86/src/arch/x86/pvh.o: src/arch/x86/pvh.c src/arch/x86/boot_priv.h \
 src/arch/x86/boot.h src/core/log.h src/core/memory.h src/arch/x86/acpi.h
src/arch/x86/boot_priv.h:
src/arch/x86/boot.h:
src/core/log.h:
src/core/memory.h:
src/arch/x86/acpi.h:
