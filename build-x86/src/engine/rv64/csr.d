build-x86/src/engine/rv64/csr.o: src/engine/rv64/csr.c \
 src/arch/riscv/clint.h src/core/bus.h src/core/log.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
