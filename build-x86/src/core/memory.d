build-x86/src/core/memory.o: src/core/memory.c src/core/memory.h \
 src/core/log.h
src/core/memory.h:
src/core/log.h:
