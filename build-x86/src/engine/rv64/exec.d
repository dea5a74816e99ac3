build-x86/src/engine/rv64/exec.o: src/engine/rv64/exec.c \
 src/engine/rv64/decode.h src/engine/rv64/rv64.h src/core/log.h \
 src/engine/rv64/fpu.h
src/engine/rv64/decode.h:
src/engine/rv64/rv64.h:
src/core/log.h:
src/engine/rv64/fpu.h:
