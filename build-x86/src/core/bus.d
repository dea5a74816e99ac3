build-x86/src/core/bus.o: src/core/bus.c src/core/bus.h src/core/log.h
src/core/bus.h:
src/core/log.h:
