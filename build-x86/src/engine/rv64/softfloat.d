build-x86/src/engine/rv64/softfloat.o: src/engine/rv64/softfloat.c \
 src/engine/rv64/softfloat.h src/engine/rv64/fpu.h
src/engine/rv64/softfloat.h:
src/engine/rv64/fpu.h:
