build-x86/src/arch/riscv/clint.o: src/arch/riscv/clint.c \
 src/arch/riscv/clint.h src/core/bus.h src/core/log.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
