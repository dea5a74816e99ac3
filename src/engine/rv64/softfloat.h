/* rv64: exact software floating point for the F/D implementation (internal
 * to fpu.c and softfloat.c; the public contract is fpu.h).
 *
 * Contract of the soft core (the soft_* functions below)
 * ------------------------------------------------------
 * Formats: IEEE 754 binary32 and binary64, described by a struct fmt (F32,
 * F64).  Operands and results are raw encodings of that format in the low
 * bits of a uint64_t: a binary32 value is the plain 32-bit pattern, never
 * NaN-boxed (boxing and unboxing is the caller's business).
 *
 * Exactness: every result is the exact result rounded once to the format,
 * in any of the five RISC-V rounding modes 0..4 (RNE, RTZ, RDN, RUP, RMM;
 * the caller resolves the dynamic mode).  Overflow returns infinity or the
 * largest finite number as the mode says; underflow is gradual.
 *
 * NaNs: the arithmetic ops (soft_op2, soft_sqrt, soft_fma, soft_d_to_s) take
 * non-NaN operands only, with any negation already applied; the caller turns
 * NaN operands into the canonical NaN and raises NV for signalling ones.  An
 * invalid operation (inf - inf, 0 * inf, 0/0, inf/inf, sqrt of a negative)
 * returns the canonical NaN (S_CNAN / D_CNAN) with NV.  soft_to_int takes any
 * encoding, NaNs included.
 *
 * Flags: exceptions are ORed into *fl in the RISC-V fflags layout (FPU_NX,
 * FPU_UF, FPU_OF, FPU_DZ, FPU_NV); nothing is ever cleared, and exact results
 * add no flag.  Tininess is detected after rounding, as RISC-V does: a result
 * is tiny when rounding it to the format's precision with an unbounded
 * exponent still leaves it below the smallest normal, and UF is raised only
 * when the result is both tiny and inexact.  Overflow raises OF and NX.
 *
 * Host independence: the core is integer arithmetic only (64- and 128-bit),
 * so it neither depends on nor changes the host FPU's rounding mode or
 * sticky exception flags.
 */
#ifndef PETREL_RV64_SOFTFLOAT_H
#define PETREL_RV64_SOFTFLOAT_H

#include <stdint.h>

#include "engine/rv64/fpu.h"

/* Encodings: sign bits, canonical NaNs, the NaN-box of a single in a 64-bit
 * register, and the double infinity. */
#define S_SIGN 0x80000000u
#define S_CNAN 0x7fc00000u
#define S_BOX 0xffffffff00000000ull
#define D_SIGN 0x8000000000000000ull
#define D_CNAN 0x7ff8000000000000ull
#define D_INF 0x7ff0000000000000ull

/* A binary interchange format: fraction bits and exponent bias. */
struct fmt {
    int mbits;
    int bias;
    int width;
};
static const struct fmt F32 = { 23, 127, 32 };
static const struct fmt F64 = { 52, 1023, 64 };

enum { C_ZERO, C_FIN, C_INF, C_NAN };

/* Unpacked operand.  For C_FIN: value = (-1)^sign * sig * 2^exp, sig != 0
 * (not necessarily normalized). */
struct unp {
    int cls;
    int sign;
    int exp;
    uint64_t sig;
};

static inline uint64_t f_emaxb(const struct fmt *f) /* all-ones exponent field */
{
    return (1ull << (f->width - 1 - f->mbits)) - 1;
}

static inline struct unp unpack(const struct fmt *f, uint64_t x)
{
    struct unp u;
    uint64_t mmask = (1ull << f->mbits) - 1;
    uint64_t be = (x >> f->mbits) & f_emaxb(f);
    uint64_t m = x & mmask;
    u.sign = (int)((x >> (f->width - 1)) & 1);
    u.exp = 0;
    u.sig = 0;
    if (be == f_emaxb(f)) {
        u.cls = m ? C_NAN : C_INF;
    } else if (be == 0) {
        u.cls = m ? C_FIN : C_ZERO;
        u.exp = 1 - f->bias - f->mbits;
        u.sig = m;
    } else {
        u.cls = C_FIN;
        u.exp = (int)be - f->bias - f->mbits;
        u.sig = m | (1ull << f->mbits);
    }
    return u;
}

/* Sign and magnitude of the integer source operand. */
static inline uint64_t int_src(enum fpu_int t, uint64_t x, int *sign)
{
    switch (t) {
    case FPU_W: {
        int32_t v = (int32_t)(uint32_t)x;
        *sign = v < 0;
        return v < 0 ? -(uint64_t)(int64_t)v : (uint64_t)v;
    }
    case FPU_WU:
        *sign = 0;
        return (uint32_t)x;
    case FPU_L:
        *sign = (int64_t)x < 0;
        return (int64_t)x < 0 ? -x : x;
    default:
        *sign = 0;
        return x;
    }
}

/* a op b for op FPU_ADD, FPU_SUB, FPU_MUL or FPU_DIV. */
uint64_t soft_op2(const struct fmt *f, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm,
                  uint32_t *fl);
uint64_t soft_sqrt(const struct fmt *f, uint64_t a, unsigned rm, uint32_t *fl);
/* a * b + c with a single rounding. */
uint64_t soft_fma(const struct fmt *f, uint64_t a, uint64_t b, uint64_t c, unsigned rm,
                  uint32_t *fl);

/* Float -> integer register value (FCVT.W/WU/L/LU), any encoding of f.  Out
 * of range (after rounding), infinities and NaNs raise NV only and saturate
 * (NaN as +max); an in-range inexact result raises NX.  32-bit results are
 * sign-extended to 64 bits. */
uint64_t soft_to_int(const struct fmt *f, enum fpu_int t, uint64_t x, unsigned rm, uint32_t *fl);
/* Integer register value x -> format f (FCVT.S/D.W/WU/L/LU). */
uint64_t soft_from_int(const struct fmt *f, enum fpu_int t, uint64_t x, unsigned rm,
                       uint32_t *fl);
/* Non-NaN binary64 encoding -> binary32 encoding (FCVT.S.D). */
uint64_t soft_d_to_s(uint64_t a, unsigned rm, uint32_t *fl);

#endif
