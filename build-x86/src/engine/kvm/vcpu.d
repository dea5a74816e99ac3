build-x86/src/engine/kvm/vcpu.o: src/engine/kvm/vcpu.c src/core/vm.h \
 src/core/bus.h src/core/log.h src/core/console.h src/core/memory.h \
 src/engine/kvm/kvm.h src/arch/x86/boot.h
src/core/vm.h:
src/core/bus.h:
src/core/log.h:
src/core/console.h:
src/core/memory.h:
src/engine/kvm/kvm.h:
src/arch/x86/boot.h:
