/* kvm: Petrel's x86-64 engine on /dev/kvm.
 *
 * Threads
 * - one host thread per vCPU, looping on KVM_RUN and handling exits;
 * - the caller's thread (kvm_run) runs the event loop: console input and
 *   output, the watchdog, and stopping the vCPUs when the VM ends.
 * Device emulation (port I/O and MMIO exits, console input) runs under one
 * lock, dev_lock, so devices written for a single thread stay correct.
 * Interrupt lines go to KVM's in-kernel irqchip (PIC + IOAPIC + LAPIC, and
 * the PIT) with KVM_IRQ_LINE, which is thread-safe.
 *
 * Stopping: vm_request_exit() may be called by any thread holding dev_lock;
 * the event loop then sets immediate_exit in every kvm_run and signals the
 * vCPU threads (SIGUSR1, no SA_RESTART) so a blocked KVM_RUN returns EINTR.
 *
 * PVM hosts (HOST-NOTES.md: /dev/kvm provided by kvm_pvm, guest kernel code
 * instruction-emulated with known gaps): detected through /sys/module/
 * kvm_pvm.  Emulation failures on `int3` are turned into an injected #BP,
 * `fwait` is skipped; any other emulation failure prints RIP and the
 * instruction bytes and ends the run as a VMM error.  Never a hang.
 */
#ifndef PETREL_KVM_H
#define PETREL_KVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "core/bus.h"
#include "core/log.h"

struct vm;
struct kvm_run;

#define KVM_MAX_VCPUS 64

struct kvm_vcpu {
    struct kvm_machine *k;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
};

struct kvm_machine {
    struct vm *vm;
    int kvm_fd, vm_fd;
    int run_size;
    bool pvm;                   /* /dev/kvm is provided by kvm_pvm */
    unsigned nvcpus;
    struct kvm_vcpu vcpus[KVM_MAX_VCPUS];
    struct bus *mmio, *pio;     /* device buses, used under dev_lock */
    pthread_mutex_t dev_lock;
    unsigned nslots;
    struct log_limit guest_log;
};

/* Open /dev/kvm (probing it, whatever /proc/cpuinfo says), create the VM
 * with an in-kernel irqchip and PIT. */
struct kvm_machine *kvm_new(struct vm *vm, struct bus *mmio, struct bus *pio, struct err *e);
void kvm_free(struct kvm_machine *k);
int kvm_add_ram(struct kvm_machine *k, uint64_t gpa, uint64_t size, void *hva, struct err *e);
/* Create n vCPUs with per-vCPU CPUID (APIC IDs 0..n-1); vCPU 0 starts at
 * the boot entry, the others wait for INIT/SIPI from the guest. */
int kvm_create_vcpus(struct kvm_machine *k, unsigned n, const struct x86_entry *entry,
                     struct err *e);
/* Assert or deassert an ISA interrupt line (0..15) of the irqchip. */
void kvm_irq_line(struct kvm_machine *k, unsigned irq, int level);
/* Run until vm->exit_reason is set; returns after all vCPU threads ended. */
void kvm_run(struct kvm_machine *k);

/* vcpu.c */
void *kvm_vcpu_thread(void *arg);
int kvm_vcpu_setup(struct kvm_vcpu *v, const struct x86_entry *entry, struct err *e);

#endif
