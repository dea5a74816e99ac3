build-x86/src/arch/riscv/plic.o: src/arch/riscv/plic.c \
 src/arch/riscv/plic.h src/core/bus.h src/core/log.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h
src/arch/riscv/plic.h:
src/core/bus.h:
src/core/log.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
