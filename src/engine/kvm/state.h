/* kvm: the engine's snapshot sections in memory, and their serialization
 * (state_format.c, which documents the layouts; it does not touch KVM, so
 * unit tests check it on any host).  state.c gets and sets a vCPU's state,
 * vmstate.c the VM's.  Private to engine/kvm and its tests. */
#ifndef PETREL_KVM_STATE_H
#define PETREL_KVM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

struct snap_writer;
struct snap_reader;

#define KVM_SNAP_CPU_VERSION 1
#define KVM_SNAP_IRQCHIP_VERSION 1
#define KVM_SNAP_PIT_VERSION 1
#define KVM_SNAP_CLOCK_VERSION 1
#define KVM_SNAP_MAX_CPUID 256
#define KVM_SNAP_MAX_MSRS 64
#define KVM_SNAP_XSAVE_MIN ((uint32_t)sizeof(struct kvm_xsave))
#define KVM_SNAP_XSAVE_MAX (64u << 10)

/* The MSRs a snapshot carries, in the order they are written back. */
struct kvm_snap_msr {
    uint32_t index;
    const char *name;
};
extern const struct kvm_snap_msr kvm_snap_msrs[];
extern const unsigned kvm_snap_nmsrs;
int kvm_snap_msr_pos(uint32_t index);           /* -1: not one of them */
const char *kvm_snap_msr_name(uint32_t index);  /* "?" for others */

/* One vCPU ("cpu<index>"). */
struct kvm_cpu_state {
    uint32_t index, tsc_khz;
    struct kvm_mp_state mp;
    uint32_t ncpuid;
    struct kvm_cpuid_entry2 cpuid[KVM_SNAP_MAX_CPUID];
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    bool has_xsave;             /* xsave, else fpu */
    uint32_t xsave_size;
    struct kvm_xsave *xsave;    /* malloc'd, xsave_size bytes */
    struct kvm_fpu fpu;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs dbg;
    struct kvm_lapic_state lapic;
    uint32_t nmsrs;
    struct kvm_msr_entry msrs[KVM_SNAP_MAX_MSRS];
    struct kvm_vcpu_events ev;
};
void kvm_cpu_state_free(struct kvm_cpu_state *s);   /* s was calloc'd */
/* Open section "cpu<s->index>" and write s. */
void kvm_cpu_write(struct snap_writer *w, const struct kvm_cpu_state *s);
/* Read section r into s (zeroed), checking every field for vCPU `index`
 * and that the section ends there: 0, or -EINVAL naming the section. */
int kvm_cpu_read(struct snap_reader *r, struct kvm_cpu_state *s, unsigned index, struct err *e);
/* CPUID leaf 0 among n entries, or NULL. */
const struct kvm_cpuid_entry2 *kvm_cpuid_leaf0(const struct kvm_cpuid_entry2 *c, uint32_t n);

/* "irqchip": c[0] master PIC, c[1] slave PIC, c[2] IOAPIC (chip_id set by
 * read).  "pit", "kvmclock".  Reads check and end the section as above. */
void kvm_irqchip_write(struct snap_writer *w, const struct kvm_irqchip c[3]);
int kvm_irqchip_read(struct snap_reader *r, struct kvm_irqchip c[3], struct err *e);
void kvm_pit_write(struct snap_writer *w, const struct kvm_pit_state2 *ps);
int kvm_pit_read(struct snap_reader *r, struct kvm_pit_state2 *ps, struct err *e);
void kvm_clock_write(struct snap_writer *w, const struct kvm_clock_data *c);
int kvm_clock_read(struct snap_reader *r, struct kvm_clock_data *c, struct err *e);

#endif
