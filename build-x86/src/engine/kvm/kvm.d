build-x86/src/engine/kvm/kvm.o: src/engine/kvm/kvm.c src/engine/kvm/kvm.h \
 src/arch/x86/boot.h src/core/log.h src/core/memory.h src/core/bus.h \
 src/core/evloop.h src/core/vm.h src/core/console.h
src/engine/kvm/kvm.h:
src/arch/x86/boot.h:
src/core/log.h:
src/core/memory.h:
src/core/bus.h:
src/core/evloop.h:
src/core/vm.h:
src/core/console.h:
