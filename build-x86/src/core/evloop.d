build-x86/src/core/evloop.o: src/core/evloop.c src/core/evloop.h \
 src/core/log.h
src/core/evloop.h:
src/core/log.h:
