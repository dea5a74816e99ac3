build-x86/src/core/console.o: src/core/console.c src/core/console.h \
 src/core/log.h
src/core/console.h:
src/core/log.h:
