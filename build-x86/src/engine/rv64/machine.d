build-x86/src/engine/rv64/machine.o: src/engine/rv64/machine.c \
 src/arch/riscv/clint.h src/core/bus.h src/core/log.h src/core/evloop.h \
 src/core/vm.h src/core/console.h src/core/memory.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h
src/arch/riscv/clint.h:
src/core/bus.h:
src/core/log.h:
src/core/evloop.h:
src/core/vm.h:
src/core/console.h:
src/core/memory.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
