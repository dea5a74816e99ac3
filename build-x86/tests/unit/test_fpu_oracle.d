build-x86/tests/unit/test_fpu_oracle: tests/unit/test_fpu_oracle.c \
 src/engine/rv64/fpu.h
src/engine/rv64/fpu.h:
