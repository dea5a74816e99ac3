build-x86/src/engine/rv64/mmu.o: src/engine/rv64/mmu.c src/core/bus.h \
 src/core/log.h src/engine/rv64/rv64.h src/engine/rv64/fpu.h
src/core/bus.h:
src/core/log.h:
src/engine/rv64/rv64.h:
src/engine/rv64/fpu.h:
