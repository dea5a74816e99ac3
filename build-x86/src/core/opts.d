build-x86/src/core/opts.o: src/core/opts.c src/core/opts.h src/core/log.h
src/core/opts.h:
src/core/log.h:
