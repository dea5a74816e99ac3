/* The x86-64 PC board on the kvm engine: RAM below 3 GiB (and above 4 GiB),
 * KVM's in-kernel irqchip and PIT, COM1 (0x3f8, IRQ 4), i8042 (reset), CMOS
 * RTC, a debug-exit port for test guests, direct kernel boot (boot.h).
 *
 * PCI: one root bus behind configuration mechanism #1 (ports 0xcf8-0xcff,
 * pci/pci.h), a host bridge function at 00:00.0 (x86 kernels check for one
 * before trusting mechanism #1), the memory window of boot.h for BARs, and
 * INTx lines 0-3 on GSIs 16-19 (level) of the in-kernel IOAPIC.  Devices
 * come from --disk (virtio-blk, first, in order) and --device (then, in
 * order), from slot 1 up; each device's Interrupt Line register holds its
 * GSI, as firmware would leave it.  The board offers PCI devices MSI
 * delivery through KVM (MSI-X vectors, whose messages must address the
 * LAPIC window 0xfee00000-0xfeefffff; anything else is dropped) and KVM
 * ioeventfds; the ACPI DSDT and the MP table describe the same bridge,
 * window and routing (acpi.c, mptable.c). */
#ifndef PETREL_X86_PC_H
#define PETREL_X86_PC_H

#include "core/bus.h"
#include "pci/pci.h"
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

struct virtio_input;

struct x86_pc {
    struct vm *vm;
    struct kvm_machine *kvm;
    struct bus pio;
    struct uart16550 uart;
    struct i8042 kbc;
    struct cmos_rtc rtc;
    struct pci_bus pci;
    struct pci_device host_bridge;
    struct pci_platform pci_plat;
    bool pci_ready;
    struct virtio_input *keyboard;  /* the first virtio keyboard: the power button */
};

#endif
