/* kvm: Petrel's x86-64 engine on /dev/kvm.
 *
 * Threads
 * - one host thread per vCPU, looping on KVM_RUN and handling exits;
 * - the VM's event-loop thread (core/vm.c) does the rest: console, device
 *   I/O, timers, and stopping or pausing the vCPUs (kvm_stop, kvm_pause).
 * Device emulation (port I/O and MMIO exits, console input, the device
 * event loop vm->loop) runs under one lock, dev_lock, so devices written for
 * a single thread stay correct: vCPU threads take it for their exits, the
 * caller's thread for everything its loop dispatches.
 * Interrupt lines go to KVM's in-kernel irqchip (PIC + IOAPIC + LAPIC, and
 * the PIT) with KVM_IRQ_LINE, which is thread-safe.
 *
 * MSIs: each MSI source (an MSI-X vector) gets a route: a GSI from
 * KVM_MSI_GSI_BASE up with a KVM_IRQ_ROUTING_MSI entry holding its
 * message, and an irqfd (an eventfd bound to the GSI with KVM_IRQFD), so
 * sending the message is one eventfd write.  KVM_SET_GSI_ROUTING replaces
 * the whole table, so every update rebuilds it from the PC's fixed entries
 * plus the current MSI routes.  Without irqfd/routing support, when
 * KVM_IRQFD fails, or with PETREL_KVM_MSI=signal in the environment (to
 * compare the two paths), a message goes out with KVM_SIGNAL_MSI instead.
 *
 * ioeventfds: kvm_ioeventfd binds an eventfd to a guest MMIO address; a
 * matching guest write then signals it without an exit to Petrel.
 *
 * Stopping and pausing: the event loop sets stop_req or pause_req, then
 * immediate_exit in every kvm_run, and signals the vCPU threads (SIGUSR1,
 * no SA_RESTART) so a blocked KVM_RUN returns EINTR; a paused thread waits
 * on park_cv.
 *
 * Snapshots (core/board.h): state.c saves and loads each vCPU (section
 * "cpuN"), vmstate.c the in-kernel irqchip, PIT and kvmclock, both through
 * state_format.c (the sections' layouts, checks on load); the VM is
 * paused (every vCPU parked, outside KVM_RUN, its last port or MMIO exit
 * completed) while they run.  Diff snapshots use KVM's dirty log: once a
 * snapshot was taken or restored, every memory slot has
 * KVM_MEM_LOG_DIRTY_PAGES, and kvm_dirty_log_sync merges KVM_GET_DIRTY_LOG
 * into the VM's own dirty bitmap (core/memory.h) when a snapshot is saved.
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

#include <linux/kvm.h>

#include "arch/x86/boot.h"
#include "core/bus.h"
#include "core/log.h"

struct vm;
struct gmem;
struct snap_writer;
struct snap_file;

#define KVM_MAX_VCPUS 64
#define KVM_MAX_SLOTS 4             /* RAM regions (core/memory.h) */
#define KVM_MSI_GSI_BASE 24         /* after the IOAPIC's 24 pins */
#define KVM_MAX_MSI_ROUTES 512

struct kvm_msi_route {
    uint32_t gsi;
    int efd;                    /* irqfd, -1 when signalling with KVM_SIGNAL_MSI */
    bool set;                   /* addr/data hold a message */
    uint64_t addr;
    uint32_t data;
};

struct kvm_vcpu {
    struct kvm_machine *k;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
    bool ended;                 /* the thread returned (under park_mu) */
    bool io_pending;            /* the last exit was port I/O or MMIO: the next
                                 * KVM_RUN completes the instruction */
    uint64_t exits;             /* exits to the VMM (metrics) */
};

struct kvm_machine {
    struct vm *vm;
    int kvm_fd, vm_fd;
    int run_size;
    bool pvm;                   /* /dev/kvm is provided by kvm_pvm */
    unsigned nvcpus;
    struct kvm_vcpu vcpus[KVM_MAX_VCPUS];
    struct bus *mmio, *pio;     /* device buses, used under dev_lock */
    pthread_mutex_t *dev_lock;  /* the VM's device lock */
    int stop_req, pause_req;    /* atomic requests to the vCPU threads */
    pthread_mutex_t park_mu;
    pthread_cond_t park_cv;
    unsigned nparked;           /* under park_mu */
    bool clock_saved;
    struct kvm_clock_data clock;    /* kvmclock at pause (or from a snapshot) */
    bool clock_restored;        /* clock came from a snapshot: kvm_start sets it */
    unsigned nslots;
    struct kvm_slot {
        uint64_t gpa, size;
        void *hva;
        uint64_t *dirty;        /* KVM_GET_DIRTY_LOG's bitmap, while logging */
    } slots[KVM_MAX_SLOTS];
    bool dirty_log;             /* every slot has KVM_MEM_LOG_DIRTY_PAGES */
    struct kvm_msr_list *msr_index; /* KVM_GET_MSR_INDEX_LIST, read once (state.c) */
    struct log_limit guest_log;
    bool has_ioeventfd;
    enum { KVM_MSI_NONE, KVM_MSI_IRQFD, KVM_MSI_SIGNAL } msi_mode;
    struct kvm_msi_route msi[KVM_MAX_MSI_ROUTES];   /* used under dev_lock */
    unsigned nmsi;
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
/* Assert or deassert GSI gsi (0..23: ISA IRQs 0..15 through the PC
 * routing, IOAPIC pins 16..23). */
void kvm_irq_line(struct kvm_machine *k, unsigned gsi, int level);
/* MSI routes, used in device context (under dev_lock).  A new route (its
 * id), or a negative errno with a message. */
int kvm_msi_route_new(struct kvm_machine *k, struct err *e);
/* Point route id at message addr/data (the caller has checked that addr is
 * an interrupt address).  0 or a negative errno. */
int kvm_msi_route_set(struct kvm_machine *k, int id, uint64_t addr, uint32_t data);
/* Send route id's message. */
void kvm_msi_fire(struct kvm_machine *k, int id);
/* Bind (assign) or unbind fd to guest writes of len bytes at addr. */
int kvm_ioeventfd(struct kvm_machine *k, uint64_t addr, unsigned len, int fd, bool assign,
                  struct err *e);
/* Start the vCPU threads (paused: they park before their first KVM_RUN and
 * this returns once all are parked, guest time frozen, as after
 * kvm_pause); park them (returns once all are parked, guest time frozen)
 * and let them go on; stop and join them.  Event-loop thread, without the
 * device lock. */
int kvm_start(struct kvm_machine *k, bool paused, struct err *e);
void kvm_pause(struct kvm_machine *k);
void kvm_resume(struct kvm_machine *k);
void kvm_stop(struct kvm_machine *k);
/* Host CPU time of a vCPU's thread, in ns. */
uint64_t kvm_vcpu_cpu_ns(const struct kvm_vcpu *v);

/* Dirty page logging for diff snapshots.  start: KVM_MEM_LOG_DIRTY_PAGES
 * on every slot (and on slots added later); sync: KVM_GET_DIRTY_LOG on
 * every slot (which clears KVM's log), the pages marked in m with
 * gmem_mark_dirty, or dropped when m is NULL.  The vCPUs must be parked. */
int kvm_dirty_log_start(struct kvm_machine *k, struct err *e);
int kvm_dirty_log_sync(struct kvm_machine *k, struct gmem *m, struct err *e);

/* Snapshots (the VM paused, the device lock held).  kvm_save writes the
 * vCPUs ("cpu0".."cpuN-1"), "irqchip", "pit" and "kvmclock"; a failure is
 * recorded in w (snapw_fail).  kvm_load reads and checks each section,
 * then applies it: vCPUs (in the order KVM needs), irqchip, PIT, kvmclock
 * (kept for kvm_start / kvm_resume). */
void kvm_save(struct kvm_machine *k, struct snap_writer *w);
int kvm_load(struct kvm_machine *k, struct snap_file *f, struct err *e);

/* state.c: one vCPU's section "cpu<index>" */
void kvm_vcpu_save(struct kvm_vcpu *v, struct snap_writer *w);
int kvm_vcpu_load(struct kvm_vcpu *v, struct snap_file *f, struct err *e);

/* vcpu.c */
void *kvm_vcpu_thread(void *arg);
/* kvm.c, for the vCPU threads: wait while a pause is requested; mark the
 * thread as returned. */
void kvm_vcpu_park(struct kvm_vcpu *v);
void kvm_vcpu_ended(struct kvm_vcpu *v);
int kvm_vcpu_setup(struct kvm_vcpu *v, const struct x86_entry *entry, struct err *e);

#endif
