build-x86/src/core/file.o: src/core/file.c src/core/file.h src/core/log.h
src/core/file.h:
src/core/log.h:
