/* The x86-64 PC board on the kvm engine: RAM below 3 GiB (and above 4 GiB),
 * KVM's in-kernel irqchip and PIT, COM1 (0x3f8, IRQ 4), i8042 (reset), CMOS
 * RTC, a debug-exit port for test guests, direct kernel boot (boot.h). */
#ifndef PETREL_X86_PC_H
#define PETREL_X86_PC_H

#include "core/bus.h"
#include "devices/cmos_rtc.h"
#include "devices/i8042.h"
#include "devices/uart_16550.h"

#define PC_COM1_PORT 0x3f8
#define PC_COM1_IRQ 4
/* Debug exit (QEMU's isa-debug-exit port): writing V ends the run, V = 0
 * as a poweroff, anything else as a guest-reported failure with code V. */
#define PC_DEBUG_EXIT_PORT 0x501
#define PC_POST_PORT 0x80
/* Kernel command-line flags that keep Linux clear of the instructions a
 * PVM host cannot emulate in guest kernel mode (HOST-NOTES.md). */
#define PC_PVM_CMDLINE                                                                \
    "noxsave clearcpuid=cx16,smap,popcnt,ssse3,sse4_1,sse4_2,pclmulqdq,aes,sha_ni "   \
    "cryptomgr.notests nowatchdog"

struct kvm_machine;
struct vm;

struct x86_pc {
    struct vm *vm;
    struct kvm_machine *kvm;
    struct bus pio;
    struct uart16550 uart;
    struct i8042 kbc;
    struct cmos_rtc rtc;
};

#endif
