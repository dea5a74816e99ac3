build-x86/src/core/vm.o: src/core/vm.c src/core/vm.h src/core/bus.h \
 src/core/log.h src/core/console.h src/core/memory.h src/core/evloop.h
src/core/vm.h:
src/core/bus.h:
src/core/log.h:
src/core/console.h:
src/core/memory.h:
src/core/evloop.h:
