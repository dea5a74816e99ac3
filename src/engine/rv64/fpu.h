/* RISC-V F and D arithmetic for the rv64 engine.
 *
 * Pure functions over register bit patterns: the caller (the interpreter)
 * reads the f registers as uint64_t, calls one of these, and writes the
 * result back.  Single-precision operands are NaN-boxed in 64 bits: an
 * operand whose upper 32 bits are not all ones reads as the canonical NaN,
 * and every single-precision result is returned NaN-boxed.
 *
 * Rounding: `rm` is a static rounding mode 0..4 (RNE, RTZ, RDN, RUP, RMM).
 * The caller resolves the dynamic mode (7) from frm and raises an illegal
 * instruction for 5, 6 and an invalid frm before calling.
 *
 * Exception flags accumulate in env->fflags (RISC-V bit layout, FPU_NX...).
 * The implementation may use the host FPU lazily (host sticky flags folded
 * into fflags by fpu_sync); callers read flags only after fpu_sync() and
 * write them only through fpu_set_flags().  One struct rv64_fpu per hart;
 * a host thread that switches between harts calls fpu_sync() on the hart it
 * leaves before running another.
 *
 * Results follow the RISC-V unprivileged spec exactly (canonical NaN
 * 0x7fc00000 / 0x7ff8000000000000, fmin/fmax with -0 < +0 and sNaN rules,
 * saturating float->int conversions with NV and no NX when out of range).
 */
#ifndef PETREL_RV64_FPU_H
#define PETREL_RV64_FPU_H

#include <stdint.h>

enum { FPU_NX = 1, FPU_UF = 2, FPU_OF = 4, FPU_DZ = 8, FPU_NV = 16 };
enum { FPU_RNE = 0, FPU_RTZ = 1, FPU_RDN = 2, FPU_RUP = 3, FPU_RMM = 4 };

struct rv64_fpu {
    uint32_t fflags;   /* accumulated flags, valid after fpu_sync() */
    int host_rm;       /* implementation-private (host rounding mode cache) */
    uint32_t priv;     /* implementation-private */
};

void fpu_init(struct rv64_fpu *e);
/* Fold any pending host state into e->fflags.  Call before reading fflags
 * and before another hart's fpu is used on this host thread. */
void fpu_sync(struct rv64_fpu *e);
/* Replace the accumulated flags (CSR write of fflags/fcsr). */
void fpu_set_flags(struct rv64_fpu *e, uint32_t flags);

/* Binary ops: op is one of the FPU_OP_* below. */
enum fpu_op2 { FPU_ADD, FPU_SUB, FPU_MUL, FPU_DIV, FPU_MIN, FPU_MAX,
               FPU_SGNJ, FPU_SGNJN, FPU_SGNJX };
uint64_t fpu_op2_s(struct rv64_fpu *e, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm);
uint64_t fpu_op2_d(struct rv64_fpu *e, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm);

uint64_t fpu_sqrt_s(struct rv64_fpu *e, uint64_t a, unsigned rm);
uint64_t fpu_sqrt_d(struct rv64_fpu *e, uint64_t a, unsigned rm);

/* Fused multiply-add: neg_prod negates a*b, neg_add negates c.
 * FMADD: (0,0)  FMSUB: (0,1)  FNMSUB: (1,0)  FNMADD: (1,1) */
uint64_t fpu_fma_s(struct rv64_fpu *e, uint64_t a, uint64_t b, uint64_t c,
                   int neg_prod, int neg_add, unsigned rm);
uint64_t fpu_fma_d(struct rv64_fpu *e, uint64_t a, uint64_t b, uint64_t c,
                   int neg_prod, int neg_add, unsigned rm);

/* Comparisons return 0/1 for the integer register. */
enum fpu_cmp { FPU_EQ, FPU_LT, FPU_LE };
uint64_t fpu_cmp_s(struct rv64_fpu *e, enum fpu_cmp op, uint64_t a, uint64_t b);
uint64_t fpu_cmp_d(struct rv64_fpu *e, enum fpu_cmp op, uint64_t a, uint64_t b);

uint64_t fpu_class_s(uint64_t a);
uint64_t fpu_class_d(uint64_t a);

/* Float -> integer (FCVT.W/WU/L/LU.S/D).  Returns the integer register
 * value (32-bit results sign-extended to 64 as the spec says). */
enum fpu_int { FPU_W, FPU_WU, FPU_L, FPU_LU };
uint64_t fpu_to_int_s(struct rv64_fpu *e, enum fpu_int t, uint64_t a, unsigned rm);
uint64_t fpu_to_int_d(struct rv64_fpu *e, enum fpu_int t, uint64_t a, unsigned rm);
/* Integer -> float (FCVT.S/D.W/WU/L/LU); x is the integer register value. */
uint64_t fpu_from_int_s(struct rv64_fpu *e, enum fpu_int t, uint64_t x, unsigned rm);
uint64_t fpu_from_int_d(struct rv64_fpu *e, enum fpu_int t, uint64_t x, unsigned rm);

/* FCVT.S.D and FCVT.D.S */
uint64_t fpu_d_to_s(struct rv64_fpu *e, uint64_t a, unsigned rm);
uint64_t fpu_s_to_d(struct rv64_fpu *e, uint64_t a);

#endif
