build-x86/tests/unit/test_rv64_csr: tests/unit/test_rv64_csr.c \
 tests/unit/rv64_harness.h src/core/bus.h src/core/log.h src/core/vm.h \
 src/core/console.h src/core/memory.h src/engine/rv64/decode.h \
 src/engine/rv64/rv64.h src/engine/rv64/fpu.h
tests/unit/rv64_harness.h:
src/core/bus.h:
src/core/log.h:
src/core/vm.h:
src/core/console.h:
src/core/memory.h:
src/engine/rv64/decode.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
