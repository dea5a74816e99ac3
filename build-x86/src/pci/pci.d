build-x86/src/pci/pci.o: src/pci/pci.c src/pci/pci.h src/core/bus.h \
 src/core/log.h
src/pci/pci.h:
src/core/bus.h:
src/core/log.h:
