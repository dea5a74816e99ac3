build-x86/tests/unit/test_fpu: tests/unit/test_fpu.c \
 src/engine/rv64/fpu.h
src/engine/rv64/fpu.h:
