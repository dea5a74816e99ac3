build-x86/src/arch/x86/mptable.o: src/arch/x86/mptable.c \
 src/arch/x86/boot_priv.h src/arch/x86/boot.h src/core/log.h \
 src/core/memory.h
src/arch/x86/boot_priv.h:
src/arch/x86/boot.h:
src/core/log.h:
src/core/memory.h:
