/* rv64: Petrel's RISC-V CPU engine (RV64IMAFDC, Zicsr, Zifencei, Zicntr,
 * Zihintpause, Zba, Zbb, Sstc; M/S/U; Sv39/Sv48; 16 PMP entries).
 *
 * Design
 * - Interpreter with a decode cache keyed by the instruction word itself
 *   (struct rv64_dcache): decoding depends only on the bits, so the cache
 *   needs no invalidation and self-modifying code is always right.
 * - Software TLB per hart: for each translation context (M/bare, S,
 *   S with SUM, U) and access type (fetch, load, store), a direct-mapped
 *   table from virtual page to a host pointer offset.  Only RAM pages are
 *   cached; MMIO always takes the slow path through the bus.  Store entries
 *   are filled only once the PTE's D bit is set, so a cached store never
 *   skips an A/D update.  Flushing bumps a generation number (cheap).
 * - Privilege changes only switch the context index; SUM toggling (done by
 *   Linux around every user copy) costs nothing.
 * - One host thread per hart (machine.c).  Each runs its hart in slices of
 *   a bounded number of instructions; between slices it checks its timers,
 *   interrupts and the pause/stop requests.  A hart in WFI sleeps on its
 *   own eventfd until its next timer deadline (mtimecmp, stimecmp) or until
 *   rv64_set_irq raises one of its lines.
 * - Harts run at once: AMOs are host atomics on guest RAM, LR/SC is
 *   value-based (SC = compare-and-swap against the value LR read), a fence
 *   ordering stores before loads is a host full fence (x86-TSO gives the
 *   rest), hardware A/D updates are compare-and-swaps on the PTE.
 * - The guest is hostile: every physical access is either RAM (bounds
 *   checked at TLB fill) or a bus lookup; anything else is an access fault.
 */
#ifndef PETREL_RV64_H
#define PETREL_RV64_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "engine/rv64/fpu.h"

struct vm;
struct bus;

/* privilege levels */
enum { PRV_U = 0, PRV_S = 1, PRV_M = 3 };

/* mstatus bits */
#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)
#define MSTATUS_UXL (3ull << 32)
#define MSTATUS_SXL (3ull << 34)
#define MSTATUS_SD (1ull << 63)
#define MSTATUS_WMASK (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | \
                       MSTATUS_MPP | MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR |  \
                       MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR)

/* interrupt bits (mip/mie) */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1ull << IRQ_SSI)
#define MIP_MSIP (1ull << IRQ_MSI)
#define MIP_STIP (1ull << IRQ_STI)
#define MIP_MTIP (1ull << IRQ_MTI)
#define MIP_SEIP (1ull << IRQ_SEI)
#define MIP_MEIP (1ull << IRQ_MEI)
#define MIP_S_MASK (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define MIP_ALL (MIP_S_MASK | MIP_MSIP | MIP_MTIP | MIP_MEIP)
/* Exceptions that may be delegated: everything we raise except ecall-M. */
#define MEDELEG_MASK 0xb3ffull
/* menvcfg.STCE (Sstc): stimecmp drives mip.STIP */
#define MENVCFG_STCE (1ull << 63)
/* PMP: 16 entries (pmpcfg0/2, pmpaddr0..15), 4-byte granularity */
#define PMP_N 16
#define PMP_R 0x01
#define PMP_W 0x02
#define PMP_X 0x04
#define PMP_A 0x18
#define PMP_L 0x80

/* exception causes */
enum {
    EXC_INSN_MISALIGNED = 0, EXC_INSN_ACCESS = 1, EXC_ILLEGAL = 2, EXC_BREAKPOINT = 3,
    EXC_LOAD_MISALIGNED = 4, EXC_LOAD_ACCESS = 5, EXC_STORE_MISALIGNED = 6,
    EXC_STORE_ACCESS = 7, EXC_ECALL_U = 8, EXC_ECALL_S = 9, EXC_ECALL_M = 11,
    EXC_INSN_PAGE = 12, EXC_LOAD_PAGE = 13, EXC_STORE_PAGE = 15,
};

/* access types, also TLB indices */
enum { ACC_FETCH = 0, ACC_LOAD = 1, ACC_STORE = 2 };
/* translation contexts */
enum { CTX_M = 0, CTX_S = 1, CTX_S_SUM = 2, CTX_U = 3, CTX_N = 4 };

#define TLB_BITS 8
#define TLB_SIZE (1u << TLB_BITS)

struct rv64_tlb_entry {
    uint64_t tag;       /* page-aligned virtual address | generation */
    uintptr_t addend;   /* host address = va + addend */
};

struct rv64_machine;
struct jit_hart;
struct jit_shared;

struct rv64_hart {
    uint64_t x[32];
    uint64_t f[32];
    uint64_t pc;
    unsigned priv;
    unsigned ctx_fetch, ctx_data;   /* current translation contexts */
    uint64_t tlb_gen;
    struct rv64_tlb_entry tlb[CTX_N][3][TLB_SIZE];

    struct rv64_fpu fpu;
    uint8_t frm;

    uint64_t mstatus, misa, medeleg, mideleg, mie, mtvec, mscratch, mepc, mcause, mtval;
    uint64_t mcounteren, menvcfg, mcountinhibit;
    uint64_t mip_sw;    /* SSIP, STIP, SEIP written by software */
    uint64_t mip_hw;    /* MSIP, MTIP, MEIP, SEIP driven by CLINT/PLIC; STIP by
                           stimecmp when menvcfg.STCE is set */
    uint64_t stvec, sscratch, sepc, scause, stval, satp, scounteren, senvcfg;
    uint64_t stimecmp;        /* Sstc */
    uint64_t pmpcfg[2];       /* pmpcfg0, pmpcfg2: 16 entries */
    uint64_t pmpaddr[PMP_N];
    /* PMP decoded from the CSRs by rv64_pmp_update: the active entries'
     * byte ranges [lo, hi) and permissions (cfg byte), in priority order */
    unsigned pmp_n;
    bool pmp_m_locked;        /* some active entry has L: M-mode is checked too */
    struct { uint64_t lo, hi; uint8_t cfg; } pmp[PMP_N];
    uint64_t instret;
    uint64_t cycle_delta;     /* mcycle = instret + cycle_delta */
    uint64_t hartid;
    uint64_t ecalls_s;        /* ecalls from S-mode (SBI calls): a statistic */

    uint64_t resv_addr;
    uint64_t resv_value;    /* what LR read: SC succeeds if memory still holds it */
    bool resv_valid;
    uint64_t fault_tval;    /* tval of the last fault from the memory helpers */
    bool wfi;               /* sleeping until an enabled interrupt is pending */
    bool slice_end;         /* stop the current slice at the next instruction (also
                               set, relaxed-atomically, by rv64_set_irq) */
    unsigned pauses;        /* PAUSE hints in this slice (a spin-wait loop) */
    bool yield;             /* the slice ended spinning: give the host CPU away */

    /* host side, kept by rv64_hart_reset: the hart's thread, its WFI sleep
     * and its decode cache */
    struct rv64_dcache *dcache;
    pthread_t thread;
    bool thread_started;
    int wake_fd;            /* eventfd: wakes the thread from its WFI sleep */
    int sleeping;           /* atomic: the thread sleeps (or is about to) */

    struct rv64_machine *m;
    struct jit_hart *jit;     /* JIT state (jit.c); NULL: interpreter only */
};

/* A pre-decoded instruction (16 bytes).  The decode cache is indexed by
 * the instruction's address, for locality, but an entry is only used when
 * its `raw` equals the bits just fetched: decoding is a pure function of
 * the bits, so the cache never needs invalidating. */
struct rv64_insn {
    uint32_t raw;      /* instruction bits (16-bit ones zero-extended) */
    uint16_t op;       /* enum rv64_op */
    uint8_t rd, rs1, rs2, rs3;
    uint8_t len;       /* 2 or 4; 0 marks an empty entry */
    uint8_t rm;        /* FP rounding mode / AMO aq-rl / misc */
    int32_t imm;
};

#define DCACHE_BITS 16
struct rv64_dcache {
    struct rv64_insn e[1u << DCACHE_BITS];
};

struct clint;

struct rv64_machine {
    struct vm *vm;
    struct bus *bus;
    uint8_t *ram;
    uint64_t ram_base, ram_size;
    unsigned nharts;
    struct rv64_hart **harts;
    struct clint *clint;
    pthread_mutex_t *dev_lock;  /* the VM's device lock: held for bus accesses */
    /* the hart threads (one per hart) */
    bool threads_started;
    int stop_req, pause_req;    /* atomic requests from the event-loop thread */
    unsigned nparked;           /* under park_mu: threads waiting in pause */
    pthread_mutex_t park_mu;
    pthread_cond_t park_cv;
    uint64_t trace_left;    /* debug builds with RV64_TRACE: instructions to trace */
    struct log_limit guest_log;
    struct jit_shared *jit;   /* JIT state shared by the harts; NULL: interpreter */
};

/* engine life cycle */
struct rv64_machine *rv64_new(struct vm *vm, struct bus *bus, uint8_t *ram, uint64_t ram_base,
                              uint64_t ram_size, unsigned nharts, struct err *e);
void rv64_free(struct rv64_machine *m);
/* The hart threads, one per hart: start them; pause (returns once every
 * one is parked between slices) and resume them; stop and join them.
 * Event-loop thread, without the device lock.  pin: hart i's thread runs
 * on the pin list's entry i (modulo its length; NULL or empty: not
 * pinned). */
struct cpu_pin;
int rv64_start(struct rv64_machine *m, const struct cpu_pin *pin, struct err *e);
void rv64_pause(struct rv64_machine *m);
void rv64_resume(struct rv64_machine *m);
void rv64_stop(struct rv64_machine *m);
/* Wake h's thread if it sleeps (one of its interrupt lines rose, or its
 * timer deadline moved).  Any thread. */
void rv64_kick_hart(struct rv64_hart *h);
/* Host CPU time of hart i's thread, and the sum over all hart threads, in
 * ns (0 when not started). */
uint64_t rv64_hart_cpu_ns(const struct rv64_machine *m, unsigned i);
uint64_t rv64_thread_cpu_ns(const struct rv64_machine *m);
/* Snapshots (core/snapshot.h): sections "cpu0".."cpuN-1", one per hart,
 * with every architectural register and CSR, the LR reservation and the
 * WFI state (the TLB is not saved: a loaded hart starts with it flushed).
 * The machine must be paused or not started. */
struct snap_writer;
struct snap_file;
void rv64_save(struct rv64_machine *m, struct snap_writer *w);
int rv64_load(struct rv64_machine *m, struct snap_file *f, struct err *e);
/* Guest RAM pages the harts write are marked in vm->mem's dirty bitmap
 * (when enabled) as their store translations are cached; after
 * gmem_dirty_reset every hart must forget those (paused). */
void rv64_dirty_reset(struct rv64_machine *m);

/* reset state: M-mode at pc, a0 = hartid, a1 = a1v, a2 = a2v */
void rv64_hart_reset(struct rv64_hart *h, uint64_t pc, uint64_t a1v, uint64_t a2v);
/* Drive an interrupt line of a hart (device side: MSIP/MTIP/MEIP/SEIP). */
void rv64_set_irq(struct rv64_hart *h, uint64_t mip_bit, bool level);

/* --- internal interfaces between the engine's files --- */
void rv64_decode(uint32_t raw, struct rv64_insn *d);
/* Execute up to `budget` instructions on h; returns how many ran. */
uint64_t rv64_exec(struct rv64_hart *h, uint64_t budget);

/* traps and CSRs (csr.c) */
void rv64_trap(struct rv64_hart *h, uint64_t cause, uint64_t tval);
void rv64_update_ctx(struct rv64_hart *h);
/* Highest-priority interrupt to take now, or -1. */
int rv64_pending_irq(const struct rv64_hart *h);
void rv64_take_irq(struct rv64_hart *h, int irq);
/* CSR access from instruction: returns 0 or -1 (illegal instruction). */
int rv64_csr_rw(struct rv64_hart *h, unsigned csr, unsigned op, uint64_t src, bool do_write,
                uint64_t *old);
int rv64_mret(struct rv64_hart *h);
int rv64_sret(struct rv64_hart *h);
void rv64_tlb_flush(struct rv64_hart *h);
/* Sstc: update mip.STIP from time `now` (mtime ticks) and stimecmp. */
void rv64_sstc_tick(struct rv64_hart *h, uint64_t now);
uint64_t rv64_time(const struct rv64_hart *h);

/* PMP (pmp.c).  rv64_pmp_update re-decodes the entries after a CSR write
 * or a snapshot load (and flushes the TLB).  rv64_pmp_check: may `priv`
 * do `acc` on [pa, pa + len)?  1 yes, 0 no. */
void rv64_pmp_update(struct rv64_hart *h);
int rv64_pmp_write_cfg(struct rv64_hart *h, unsigned reg, uint64_t v);
int rv64_pmp_write_addr(struct rv64_hart *h, unsigned i, uint64_t v);
bool rv64_pmp_check(const struct rv64_hart *h, uint64_t pa, uint64_t len, int acc, unsigned priv);

/* memory (mmu.c).  Return 0, or an exception cause with *tval set. */
int rv64_translate(struct rv64_hart *h, uint64_t va, int acc, uint64_t *pa);
int rv64_load_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *val);
int rv64_store_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t val);
int rv64_fetch_slow(struct rv64_hart *h, uint64_t va, uint32_t *insn);
/* Host pointer for an aligned access of `size` at va (RAM only), for AMOs.
 * Returns 0 or an exception cause. */
int rv64_amo_ptr(struct rv64_hart *h, uint64_t va, unsigned size, void **p);

#endif
