build-x86/tests/unit/test_riscv_plic: tests/unit/test_riscv_plic.c \
 src/arch/riscv/plic.h src/core/bus.h src/core/log.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h tests/unit/unit.h
src/arch/riscv/plic.h:
src/core/bus.h:
src/core/log.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
tests/unit/unit.h:
