build-x86/tests/unit/test_pci: tests/unit/test_pci.c src/pci/pci.h \
 src/core/bus.h src/core/log.h tests/unit/unit.h
src/pci/pci.h:
src/core/bus.h:
src/core/log.h:
tests/unit/unit.h:
