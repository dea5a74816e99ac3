/* rv64 JIT: guest code translated to x86-64 (docs/jit.md).
 *
 * Public part (engine): set-up and tear-down per machine, the execution
 * entry with rv64_exec's contract, and the hooks the MMU and CSR code call.
 * Internal part (jit.c dispatcher and code cache, jit_gen.c translator):
 * the translation block and the per-hart state. */
#ifndef PETREL_RV64_JIT_H
#define PETREL_RV64_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/rv64/rv64.h"

/* Is the JIT built for this host? */
/* what --cpu-mode's default (auto) means: the JIT where it is built */
#if defined(__x86_64__)
#define RV64_JIT_AVAILABLE 1
#define RV64_JIT_DEFAULT 1
#define JIT_DEFAULT_NAME "jit"
#else
#define RV64_JIT_AVAILABLE 0
#define RV64_JIT_DEFAULT 0
#define JIT_DEFAULT_NAME "interp"
#endif

/* Set up the JIT for every hart of m (the code buffers are mapped here, so
 * before the thread's seccomp filter).  0, or -1 with *e set. */
int rv64_jit_init(struct rv64_machine *m, struct err *e);
void rv64_jit_free(struct rv64_machine *m);
/* rv64_exec's contract, with translated code. */
uint64_t rv64_jit_exec(struct rv64_hart *h, uint64_t budget);
/* Drop every translation of h (snapshot load, reset). */
void rv64_jit_flush(struct rv64_hart *h);
/* The TLB generation wrapped: virtual-pc lookups must be forgotten. */
void rv64_jit_tlb_wrapped(struct rv64_hart *h);
/* A store to physical RAM address pa is about to be done (mmu.c), and
 * its store TLB entry was just filled (tag: NULL if none): if the page
 * holds translations, they become stale.  If the page became code again
 * meanwhile (another hart translated it), the entry is dropped.  Returns
 * true if translations went stale: the storing hart ends its slice after
 * this instruction, so the rest of a TB it wrote into is not run stale
 * (as the interpreter, which always fetches the new bytes). */
bool rv64_jit_store(struct rv64_machine *m, uint64_t pa, uint64_t *tag);
/* Statistics for the exit log. */
void rv64_jit_log_stats(struct rv64_machine *m);

/* ---------------- internal ---------------- */

#define JIT_TB_MAX_INSNS 64
#define JIT_JC_BITS 14
#define JIT_HASH_BITS 17
#define JIT_CODE_SIZE (16u << 20)
#define JIT_MAX_TBS (1u << 17)

/* exit kinds (low byte of the exit word; the rest: cause or slot) */
enum { JX_LOOKUP = 0, JX_STOP = 1, JX_FAULT = 2 };

struct jit_tb {
    uint64_t vpc, ppc;
    uint32_t key;           /* ctx_data at translation */
    uint32_t version;       /* the page's code version at translation */
    uint32_t ninsn;
    uint32_t code;          /* offset of the entry in the code buffer */
    uint32_t slot_at[2];    /* rel32 of the chainable exit jumps (0: none) */
    uint64_t slot_pc[2];    /* their guest targets */
    struct jit_tb *next;    /* hash chain */
};

struct jit_jc {
    uint64_t vpc, gen;
    uint32_t ctx;           /* ctx_fetch | ctx_data << 4 */
    struct jit_tb *tb;
};

/* Shared by the machine: per physical RAM page, the code version and the
 * "holds translations" bit. */
struct jit_shared {
    uint32_t *version;
    uint8_t *code_bits;
    uint64_t npages;
    /* statistics (summed over harts) */
    uint64_t tbs, flushes, fencei, invalidations, trans_ns, code_bytes;
};

struct jit_hart {
    uint8_t *rw, *rx;           /* the two views of the code buffer */
    size_t size;
    size_t fixed_end;           /* the trampolines end here */
    size_t pos;
    uint32_t enter_off, exit_off, jc_off;
    struct jit_tb *tbs;
    unsigned ntbs;
    uint64_t flush_gen;         /* bumped by every flush */
    struct jit_tb *hash[1u << JIT_HASH_BITS];
    struct jit_jc jc[1u << JIT_JC_BITS];
};

/* jit_gen.c: translate one TB at h->pc (its first instruction at host
 * address `host`, guest physical ppc).  Returns NULL if the first
 * instruction is not translated (or the buffer is full: *full set). */
struct jit_tb *jit_translate(struct rv64_hart *h, struct jit_hart *j, const uint8_t *host,
                             uint64_t ppc, bool *full);
/* jit_gen.c: the fixed entry/exit trampolines and the shared jump-cache
 * lookup at the start of the buffer. */
void jit_emit_trampolines(struct jit_hart *j, struct rv64_machine *m);
/* jit_help.c: instructions run through a C helper (FP, AMO): 0, or a cause. */
int jit_helper(struct rv64_hart *h, const struct rv64_insn *d, uint64_t pc);

#endif
