build-x86/src/arch/riscv/loader.o: src/arch/riscv/loader.c \
 src/arch/riscv/loader.h src/core/log.h src/core/file.h src/core/memory.h
src/arch/riscv/loader.h:
src/core/log.h:
src/core/file.h:
src/core/memory.h:
