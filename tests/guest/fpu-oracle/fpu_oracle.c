/* FP oracle: runs every RISC-V F/D instruction on a deterministic set of
 * inputs, in each static rounding mode, and prints operands, result and
 * fflags.  Built as a static riscv64 Linux program and run under
 * qemu-riscv64-static (whose FPU is SoftFloat), it produces the reference
 * vectors that tests/unit/test_fpu_oracle.c checks Petrel's fpu.c against.
 *
 *   fpu_oracle [SEED [SCALE]]      (defaults 1 1; SCALE multiplies counts)
 *
 * Output format (all numbers hex, no 0x):
 *   # comment
 *   @ <mnemonic> <rm>              rm: rne rtz rdn rup rmm, or - (no rm field)
 *   <operand>... <result> <fflags>
 * A single-precision operand/result is printed as its low 32 bits when it is
 * properly NaN-boxed, else as 'u' followed by the whole 64-bit register.
 * Double and integer values are the 64-bit register.
 *
 * Operand registers are loaded with fmv.d.x / mv, so single operands can be
 * deliberately non-boxed.  fflags is cleared right before the instruction
 * and read right after it, inside one asm statement.
 *
 * Inputs, per op (the same inputs in all five rounding modes): special
 * values (zeros, infinities, quiet/signaling NaNs with payloads, subnormal
 * and normal extremes, integer-conversion boundaries such as 2^31-0.5 or
 * 2^64), random bit patterns, "nice" short-significand values, values near
 * the underflow and overflow thresholds, related operand pairs (exact and
 * near cancellation, scaling), operands built so the exact result is a
 * rounding tie (where RNE and RMM differ; for div and mul also at the
 * subnormal quantum), products just below 2^emin (tininess after
 * rounding), and finally every combination of a few special operands.
 * Only the inputs are computed here; every result and flag is QEMU's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*fn_t)(const uint64_t *in, uint64_t *out, unsigned long *fl);

/* ---- instruction stubs ------------------------------------------------ */

#define PRE "csrw fflags, zero\n\t"
#define POST "\n\tcsrr %1, fflags"

/* fp <- op(fp, fp [, rm]) */
#define STUB_FFF(id, insn)                                                                  \
    static void id(const uint64_t *i, uint64_t *o, unsigned long *f)                        \
    {                                                                                       \
        uint64_t r;                                                                         \
        unsigned long fl;                                                                   \
        __asm__ volatile("fmv.d.x ft0, %2\n\tfmv.d.x ft1, %3\n\t" PRE insn POST             \
                         "\n\tfmv.x.d %0, ft2"                                              \
                         : "=&r"(r), "=&r"(fl)                                              \
                         : "r"(i[0]), "r"(i[1])                                             \
                         : "ft0", "ft1", "ft2", "memory");                                  \
        *o = r;                                                                             \
        *f = fl;                                                                            \
    }
/* fp <- op(fp, fp, fp, rm) */
#define STUB_FFFF(id, insn)                                                                 \
    static void id(const uint64_t *i, uint64_t *o, unsigned long *f)                        \
    {                                                                                       \
        uint64_t r;                                                                         \
        unsigned long fl;                                                                   \
        __asm__ volatile("fmv.d.x ft0, %2\n\tfmv.d.x ft1, %3\n\tfmv.d.x ft2, %4\n\t" PRE    \
                         insn POST "\n\tfmv.x.d %0, ft3"                                    \
                         : "=&r"(r), "=&r"(fl)                                              \
                         : "r"(i[0]), "r"(i[1]), "r"(i[2])                                  \
                         : "ft0", "ft1", "ft2", "ft3", "memory");                           \
        *o = r;                                                                             \
        *f = fl;                                                                            \
    }
/* fp <- op(fp [, rm]) */
#define STUB_FF(id, insn)                                                                   \
    static void id(const uint64_t *i, uint64_t *o, unsigned long *f)                        \
    {                                                                                       \
        uint64_t r;                                                                         \
        unsigned long fl;                                                                   \
        __asm__ volatile("fmv.d.x ft0, %2\n\t" PRE insn POST "\n\tfmv.x.d %0, ft2"          \
                         : "=&r"(r), "=&r"(fl)                                              \
                         : "r"(i[0])                                                        \
                         : "ft0", "ft2", "memory");                                         \
        *o = r;                                                                             \
        *f = fl;                                                                            \
    }
/* int <- op(fp [, fp] [, rm]); the int result is in t0 */
#define STUB_XFF(id, insn)                                                                  \
    static void id(const uint64_t *i, uint64_t *o, unsigned long *f)                        \
    {                                                                                       \
        uint64_t r;                                                                         \
        unsigned long fl;                                                                   \
        __asm__ volatile("fmv.d.x ft0, %2\n\tfmv.d.x ft1, %3\n\t" PRE insn POST             \
                         "\n\tmv %0, t0"                                                    \
                         : "=&r"(r), "=&r"(fl)                                              \
                         : "r"(i[0]), "r"(i[1])                                             \
                         : "ft0", "ft1", "t0", "memory");                                   \
        *o = r;                                                                             \
        *f = fl;                                                                            \
    }
/* fp <- op(int, rm); the int operand is in t0 */
#define STUB_FX(id, insn)                                                                   \
    static void id(const uint64_t *i, uint64_t *o, unsigned long *f)                        \
    {                                                                                       \
        uint64_t r;                                                                         \
        unsigned long fl;                                                                   \
        __asm__ volatile("mv t0, %2\n\t" PRE insn POST "\n\tfmv.x.d %0, ft2"                \
                         : "=&r"(r), "=&r"(fl)                                              \
                         : "r"(i[0])                                                        \
                         : "t0", "ft2", "memory");                                          \
        *o = r;                                                                             \
        *f = fl;                                                                            \
    }

/* One stub per rounding mode. */
#define RM5(STUB, id, mn, ops)                                                              \
    STUB(id##_rne, mn " " ops ", rne")                                                      \
    STUB(id##_rtz, mn " " ops ", rtz")                                                      \
    STUB(id##_rdn, mn " " ops ", rdn")                                                      \
    STUB(id##_rup, mn " " ops ", rup")                                                      \
    STUB(id##_rmm, mn " " ops ", rmm")
#define FNS5(id) { id##_rne, id##_rtz, id##_rdn, id##_rup, id##_rmm }

#define PREC2(X, sfx)                                                                       \
    RM5(STUB_FFF, fadd_##sfx, "fadd." #sfx, "ft2, ft0, ft1")                                \
    RM5(STUB_FFF, fsub_##sfx, "fsub." #sfx, "ft2, ft0, ft1")                                \
    RM5(STUB_FFF, fmul_##sfx, "fmul." #sfx, "ft2, ft0, ft1")                                \
    RM5(STUB_FFF, fdiv_##sfx, "fdiv." #sfx, "ft2, ft0, ft1")                                \
    RM5(STUB_FF, fsqrt_##sfx, "fsqrt." #sfx, "ft2, ft0")                                    \
    RM5(STUB_FFFF, fmadd_##sfx, "fmadd." #sfx, "ft3, ft0, ft1, ft2")                        \
    RM5(STUB_FFFF, fmsub_##sfx, "fmsub." #sfx, "ft3, ft0, ft1, ft2")                        \
    RM5(STUB_FFFF, fnmsub_##sfx, "fnmsub." #sfx, "ft3, ft0, ft1, ft2")                      \
    RM5(STUB_FFFF, fnmadd_##sfx, "fnmadd." #sfx, "ft3, ft0, ft1, ft2")                      \
    RM5(STUB_XFF, fcvt_w_##sfx, "fcvt.w." #sfx, "t0, ft0")                                  \
    RM5(STUB_XFF, fcvt_wu_##sfx, "fcvt.wu." #sfx, "t0, ft0")                                \
    RM5(STUB_XFF, fcvt_l_##sfx, "fcvt.l." #sfx, "t0, ft0")                                  \
    RM5(STUB_XFF, fcvt_lu_##sfx, "fcvt.lu." #sfx, "t0, ft0")                                \
    RM5(STUB_FX, fcvt_##sfx##_l, "fcvt." #sfx ".l", "ft2, t0")                              \
    RM5(STUB_FX, fcvt_##sfx##_lu, "fcvt." #sfx ".lu", "ft2, t0")                            \
    STUB_FFF(fmin_##sfx, "fmin." #sfx " ft2, ft0, ft1")                                     \
    STUB_FFF(fmax_##sfx, "fmax." #sfx " ft2, ft0, ft1")                                     \
    STUB_FFF(fsgnj_##sfx, "fsgnj." #sfx " ft2, ft0, ft1")                                   \
    STUB_FFF(fsgnjn_##sfx, "fsgnjn." #sfx " ft2, ft0, ft1")                                 \
    STUB_FFF(fsgnjx_##sfx, "fsgnjx." #sfx " ft2, ft0, ft1")                                 \
    STUB_XFF(feq_##sfx, "feq." #sfx " t0, ft0, ft1")                                        \
    STUB_XFF(flt_##sfx, "flt." #sfx " t0, ft0, ft1")                                        \
    STUB_XFF(fle_##sfx, "fle." #sfx " t0, ft0, ft1")                                        \
    STUB_XFF(fclass_##sfx, "fclass." #sfx " t0, ft0")

PREC2(X, s)
PREC2(X, d)
RM5(STUB_FF, fcvt_s_d, "fcvt.s.d", "ft2, ft0")
STUB_FF(fcvt_d_s, "fcvt.d.s ft2, ft0")
/* int32 -> float rounds; int32 -> double is exact and has no rm operand */
RM5(STUB_FX, fcvt_s_w, "fcvt.s.w", "ft2, t0")
RM5(STUB_FX, fcvt_s_wu, "fcvt.s.wu", "ft2, t0")
STUB_FX(fcvt_d_w, "fcvt.d.w ft2, t0")
STUB_FX(fcvt_d_wu, "fcvt.d.wu ft2, t0")

/* ---- op table ---------------------------------------------------------- */

/* Operand/result kinds: 's' single, 'd' double, 'x' integer. */
enum gen { G_ARITH, G_SQRT, G_FMA, G_TOINT, G_FROMINT, G_BITS, G_CMP, G_CVT };
struct op {
    const char *name;
    const char *in;  /* operand kinds */
    char out;        /* result kind */
    enum gen gen;
    int count;       /* vectors per rounding mode (times SCALE) */
    fn_t fn[5];      /* [0] only when the op has no rm field */
    int has_rm;
};

#define FROMW_s                                                                             \
    { "fcvt.s.w", "x", 's', G_FROMINT, 60, FNS5(fcvt_s_w), 1 },                             \
    { "fcvt.s.wu", "x", 's', G_FROMINT, 60, FNS5(fcvt_s_wu), 1 }
#define FROMW_d                                                                             \
    { "fcvt.d.w", "x", 'd', G_FROMINT, 150, { fcvt_d_w }, 0 },                              \
    { "fcvt.d.wu", "x", 'd', G_FROMINT, 150, { fcvt_d_wu }, 0 }

#define OPS_RM(sfx, S, C)                                                                      \
    { "fadd." #sfx, S S, C, G_ARITH, 240, FNS5(fadd_##sfx), 1 },                           \
    { "fsub." #sfx, S S, C, G_ARITH, 200, FNS5(fsub_##sfx), 1 },                           \
    { "fmul." #sfx, S S, C, G_ARITH, 240, FNS5(fmul_##sfx), 1 },                           \
    { "fdiv." #sfx, S S, C, G_ARITH, 220, FNS5(fdiv_##sfx), 1 },                           \
    { "fsqrt." #sfx, S, C, G_SQRT, 150, FNS5(fsqrt_##sfx), 1 },                            \
    { "fmadd." #sfx, S S S, C, G_FMA, 200, FNS5(fmadd_##sfx), 1 },                         \
    { "fmsub." #sfx, S S S, C, G_FMA, 140, FNS5(fmsub_##sfx), 1 },                         \
    { "fnmsub." #sfx, S S S, C, G_FMA, 140, FNS5(fnmsub_##sfx), 1 },                       \
    { "fnmadd." #sfx, S S S, C, G_FMA, 140, FNS5(fnmadd_##sfx), 1 },                       \
    { "fcvt.w." #sfx, S, 'x', G_TOINT, 160, FNS5(fcvt_w_##sfx), 1 },                        \
    { "fcvt.wu." #sfx, S, 'x', G_TOINT, 160, FNS5(fcvt_wu_##sfx), 1 },                      \
    { "fcvt.l." #sfx, S, 'x', G_TOINT, 160, FNS5(fcvt_l_##sfx), 1 },                        \
    { "fcvt.lu." #sfx, S, 'x', G_TOINT, 160, FNS5(fcvt_lu_##sfx), 1 },                      \
    FROMW_##sfx,                                                                            \
    { "fcvt." #sfx ".l", "x", C, G_FROMINT, 120, FNS5(fcvt_##sfx##_l), 1 },                \
    { "fcvt." #sfx ".lu", "x", C, G_FROMINT, 120, FNS5(fcvt_##sfx##_lu), 1 },              \
    { "fmin." #sfx, S S, C, G_BITS, 350, { fmin_##sfx }, 0 },                              \
    { "fmax." #sfx, S S, C, G_BITS, 350, { fmax_##sfx }, 0 },                              \
    { "fsgnj." #sfx, S S, C, G_BITS, 120, { fsgnj_##sfx }, 0 },                            \
    { "fsgnjn." #sfx, S S, C, G_BITS, 120, { fsgnjn_##sfx }, 0 },                          \
    { "fsgnjx." #sfx, S S, C, G_BITS, 120, { fsgnjx_##sfx }, 0 },                          \
    { "feq." #sfx, S S, 'x', G_CMP, 300, { feq_##sfx }, 0 },                                \
    { "flt." #sfx, S S, 'x', G_CMP, 300, { flt_##sfx }, 0 },                                \
    { "fle." #sfx, S S, 'x', G_CMP, 300, { fle_##sfx }, 0 },                                \
    { "fclass." #sfx, S, 'x', G_BITS, 200, { fclass_##sfx }, 0 }

static const struct op ops[] = {
    OPS_RM(s, "s", 's'),
    OPS_RM(d, "d", 'd'),
    { "fcvt.s.d", "d", 's', G_CVT, 200, FNS5(fcvt_s_d), 1 },
    { "fcvt.d.s", "s", 'd', G_CVT, 300, { fcvt_d_s }, 0 },
};

static const char *const rm_names[5] = { "rne", "rtz", "rdn", "rup", "rmm" };

/* ---- deterministic inputs ---------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned rn(unsigned n) { return (unsigned)(rnd() % n); }

struct prec {
    int p, bias, width, emaxb;
};
static const struct prec PS = { 24, 127, 32, 255 }, PD = { 53, 1023, 64, 2047 };

static uint64_t make(const struct prec *P, int sign, int be, uint64_t frac)
{
    return ((uint64_t)sign << (P->width - 1)) | ((uint64_t)be << (P->p - 1)) |
           (frac & ((1ull << (P->p - 1)) - 1));
}

static const uint64_t spec_d[] = {
    0x0000000000000000, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0xfff8000000000000, 0x7ff8000000000123, 0x7ff0000000000001,
    0x7ff4000000000000, 0xfff0000000000001, 0x0000000000000001, 0x8000000000000001,
    0x000fffffffffffff, 0x800fffffffffffff, 0x0010000000000000, 0x8010000000000000,
    0x0008000000000000, 0x0000000000000003, 0x7fefffffffffffff, 0xffefffffffffffff,
    0x7fe0000000000000, 0x3ff0000000000000, 0xbff0000000000000, 0x4000000000000000,
    0x3fe0000000000000, 0xbfe0000000000000, 0x3ff8000000000000, 0xbff8000000000000,
    0x4004000000000000, 0xc004000000000000, 0x3fd3333333333333, 0xbfd3333333333333,
    0x3feccccccccccccd, 0xbfeccccccccccccd, 0x3ff0000000000001, 0x3fefffffffffffff,
    0x41e0000000000000, /* 2^31 */       0x41dfffffffc00000, /* 2^31-1 */
    0x41dfffffffe00000, /* 2^31-0.5 */   0x41dffffffff00000, /* 2^31-0.25 */
    0x41e0000000100000, /* 2^31+0.5 */   0xc1e0000000000000, /* -2^31 */
    0xc1e0000000100000, /* -2^31-0.5 */  0xc1e0000000200000, /* -2^31-1 */
    0xc1dfffffffe00000, /* -2^31+0.5 */  0x41f0000000000000, /* 2^32 */
    0x41efffffffe00000, /* 2^32-1 */     0x41effffffff00000, /* 2^32-0.5 */
    0x41effffffff80000, /* 2^32-0.25 */  0x41f0000000080000, /* 2^32+0.5 */
    0x43e0000000000000, /* 2^63 */       0x43dfffffffffffff, /* 2^63-512 */
    0xc3e0000000000000, /* -2^63 */      0xc3e0000000000001, /* -2^63-2048 */
    0x43f0000000000000, /* 2^64 */       0x43efffffffffffff, /* 2^64-2048 */
    0x4340000000000000, /* 2^53 */       0x433fffffffffffff, 0x4330000000000001,
    0x3fe0000000000001, 0xbfe0000000000001, 0x3fdfffffffffffff, 0xbfdfffffffffffff,
    0x47efffffe0000000, /* FLT_MAX */    0x47effffff0000000, /* FLT_MAX + half ulp */
    0x47f0000000000000, 0x3810000000000000, /* FLT_MIN */
    0x36a0000000000000, /* FLT_TRUE_MIN */ 0x3690000000000000, 0x3698000000000000,
    0x380fffffe0000000, 0x380ffffff0000000,
};
static const uint64_t spec_s[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc00123,
    0x7f800001, 0x7fa00000, 0xff800001, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff,
    0x00800000, 0x80800000, 0x00400000, 0x00000003, 0x7f7fffff, 0xff7fffff, 0x7f000000,
    0x3f800000, 0xbf800000, 0x40000000, 0x3f000000, 0xbf000000, 0x3fc00000, 0xbfc00000,
    0x40200000, 0xc0200000, 0x3e99999a, 0xbe99999a, 0x3f666666, 0xbf666666, 0x3f800001,
    0x3f7fffff, 0x4f000000, /* 2^31 */ 0x4effffff, 0xcf000000, 0xcf000001, 0x4f800000,
    0x4f7fffff, 0x5f000000, /* 2^63 */ 0x5effffff, 0xdf000000, 0xdf000001, 0x5f800000,
    0x5f7fffff, 0x4b800000, 0x4b7fffff, 0x4b000001, 0x4affffff, /* 2^23-0.5 */
    0x3f000001, 0xbf000001, 0x3effffff, 0xbeffffff, 0xcb000001,
};
/* Non-boxed single registers (read as the canonical NaN). */
static const uint64_t unboxed[] = {
    0x000000003f800000, 0x123456787f800001, 0xfffffffe3f800000, 0x7fffffff7fc00000,
    0x00000000ffffffff, 0x8000000000000000,
};

/* Some floating-point value of precision P (a register pattern for 's'). */
static uint64_t gen_fp(const struct prec *P)
{
    int sign = (int)(rnd() & 1);
    int fb = P->p - 1;
    uint64_t v;
    unsigned c = rn(100);
    if (c < 20) {
        if (P->width == 64)
            v = spec_d[rn(sizeof spec_d / 8)];
        else
            v = spec_s[rn(sizeof spec_s / 8)];
        if (rn(4) == 0)
            v ^= 1ull << (P->width - 1);
    } else if (c < 32) {
        v = rnd();
    } else if (c < 46) { /* small integer times a small power of two */
        uint64_t m = (rnd() & 0xfff) | 1;
        int k = (int)rn(17) - 8;
        int sh = fb - (63 - __builtin_clzll(m));
        v = make(P, sign, P->bias + k + (63 - __builtin_clzll(m)), m << sh);
    } else if (c < 60) { /* moderate exponent, random fraction */
        v = make(P, sign, P->bias + (int)rn(2 * P->p + 16) - P->p - 8, rnd());
    } else if (c < 70) { /* subnormal or smallest normals */
        v = make(P, sign, (int)rn(P->p + 3), rnd() >> rn(64));
    } else if (c < 76) { /* largest binades */
        v = make(P, sign, P->emaxb - 1 - (int)rn(P->p + 3), rnd());
    } else if (c < 92) { /* short fraction: products and sums tie often */
        int bits = 1 + (int)rn(P->p / 2 + 1);
        uint64_t fr = (rnd() >> (64 - bits)) << (fb - bits);
        v = make(P, sign, P->bias + (int)rn(81) - 40, fr);
    } else { /* anything finite */
        v = make(P, sign, 1 + (int)rn(P->emaxb - 1), rnd());
    }
    if (P->width == 32) {
        v &= 0xffffffffull;
        if (rn(100) < 3)
            return unboxed[rn(sizeof unboxed / 8)];
        v |= 0xffffffff00000000ull;
    }
    return v;
}

static int fp_exp(const struct prec *P, uint64_t v)
{
    return (int)((v >> (P->p - 1)) & (uint64_t)P->emaxb);
}

/* A second operand related to the first: cancellation, ties, scaling. */
static uint64_t related(const struct prec *P, uint64_t a, int is_mul)
{
    uint64_t sbit = 1ull << (P->width - 1);
    uint64_t hi = P->width == 32 ? 0xffffffff00000000ull : 0;
    uint64_t lo = a & (P->width == 32 ? 0xffffffffull : ~0ull);
    int be = fp_exp(P, lo);
    int fb = P->p - 1;
    switch (rn(is_mul ? 2 : 5)) {
    case 0: { /* exact power of two (scaling; subnormal ties for odd ones) */
        int k = (int)rn(9) - 4;
        return hi | make(P, (int)(rnd() & 1), P->bias + k, 0);
    }
    case 1: { /* 1.5 * 2^k or 3 * 2^k: halving/ties in the subnormal range */
        int k = (int)rn(5) - 3;
        return hi | make(P, (int)(rnd() & 1), P->bias + k, 1ull << (fb - 1));
    }
    case 2: /* exact negation */
        return hi | (lo ^ sbit);
    case 3: /* near cancellation */
        return hi | ((lo ^ sbit) ^ (rnd() & ((1ull << rn(fb)) - 1)));
    default: { /* an addend around half an ulp of a: ties for add */
        int e = be - P->p + (int)rn(3) - 1;
        if (e < 1)
            e = 1;
        uint64_t fr = rn(2) ? 0 : (rn(2) ? 1ull << (fb - 1) : rnd());
        return hi | make(P, (int)(rnd() & 1), e, fr);
    }
    }
}

static uint64_t gen_int(const struct prec *P, int is32)
{
    static const uint64_t spec[] = {
        0, 1, ~0ull, 2, 3, 0x7fffffff, 0x80000000, 0xffffffff80000000, 0xffffffff,
        0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001, 0xfffffffffffffffe,
        0x1000001, 0x1000003, 0x1000002, 0xffffffffff000001, 0x20000000000001,
        0x20000000000003, 0xffdfffffffffffff, 0x123456789abcdef0, 0xfedcba9876543210,
        0x7fffff80, 0x7fffffc0, 0xffffff80, 0xffffffc0, 0x7ffffffffffffc00,
        0xfffffffffffff800, 0xfffffffffffffc00,
    };
    unsigned c = rn(100);
    uint64_t v;
    if (c < 20)
        return spec[rn(sizeof spec / 8)];
    if (c < 40)
        v = rnd();
    else if (c < 55)
        v = rnd() >> rn(64);
    else if (c < 70)
        v = (uint64_t)((int64_t)rnd() >> rn(64));
    else { /* p+1..p+3 significant bits at some position: ties */
        int bits = P->p + 1 + (int)rn(3);
        uint64_t m = (rnd() >> (64 - bits)) | 1 | (1ull << (bits - 1));
        int room = (is32 ? 32 : 64) - bits;
        v = m << (room > 0 ? rn((unsigned)room + 1) : 0);
        if (rn(2))
            v = -v;
    }
    if (is32 && rn(4) != 0) /* upper half usually a sign extension */
        v = (uint64_t)(int64_t)(int32_t)v;
    return v;
}

/* Values around integer boundaries for fcvt to integer. */
static uint64_t gen_toint(const struct prec *P)
{
    if (rn(100) < 55)
        return gen_fp(P);
    /* an integer-ish magnitude up to 2^66 plus a fraction of 1/4 steps */
    int mag = (int)rn(67);
    int sign = (int)(rnd() & 1);
    uint64_t frac = rnd();
    int be = P->bias + mag;
    if (rn(3) == 0) { /* exact quarters: k + {0, .25, .5, .75} */
        int fb = P->p - 1;
        int keep = mag + 2 < fb ? mag + 2 : fb;
        frac &= ~((1ull << (fb - keep)) - 1);
    }
    uint64_t v = make(P, sign, be, frac);
    if (P->width == 32)
        v |= 0xffffffff00000000ull;
    return v;
}

/* ---- rounding ties ----------------------------------------------------- *
 * Ties (exact result halfway between two representable neighbours) are
 * where RNE and RMM differ, and random inputs almost never hit them, so
 * these build operands whose exact result is a tie, checked with exact
 * integer arithmetic. */

typedef unsigned __int128 u128;

static int bitlen(u128 x)
{
    int n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

/* Odd random integer with exactly `len` bits (len >= 1). */
static uint64_t odd_len(int len)
{
    uint64_t m = len >= 64 ? rnd() : rnd() & ((1ull << len) - 1);
    return m | 1 | (1ull << (len - 1));
}

/* Encode (-1)^sign * m * 2^e exactly, or return 0 with *ok = 0. */
static uint64_t make_val(const struct prec *P, int sign, u128 m, int e, int *ok)
{
    int L = bitlen(m), emin = 1 - P->bias, fb = P->p - 1;
    int me = e + L - 1;
    uint64_t hi = P->width == 32 ? 0xffffffff00000000ull : 0;
    if (m == 0 || L > P->p || me > P->bias) {
        *ok = 0;
        return 0;
    }
    if (me >= emin)
        return hi | make(P, sign, me + P->bias, (uint64_t)(m << (P->p - L)));
    if (e < emin - fb) { /* below the subnormal quantum */
        *ok = 0;
        return 0;
    }
    return hi | make(P, sign, 0, (uint64_t)(m << (e - (emin - fb))));
}

static int rsign(void) { return (int)(rnd() & 1); }

/* Fill v[] with operands whose exact result is a tie for op `name` (with
 * subn: a tie at the subnormal quantum, or for fma a result near the
 * underflow threshold); returns 0 if this attempt failed (the caller
 * retries). */
static int gen_tie(const struct prec *P, const char *name, enum gen g, int subn, uint64_t *v)
{
    int ok = 1, p = P->p, emin = 1 - P->bias;
    switch (g) {
    case G_ARITH:
        if (!strncmp(name, "fmul", 4)) {
            uint64_t m1, m2;
            int e1, e2;
            if (subn && rn(3) == 0) {
                /* product just below 2^emin: 2^emin - 2^(emin-p-1) or
                 * 2^emin - 2^(emin-p) (all-ones significands), where
                 * tininess after rounding matters */
                static const uint64_t f[2][2][2] = {
                    { { 31, 1082401 }, { 4095, 4097 } },
                    { { 262143, 68719738881ull }, { 6361, 1416003655831ull } },
                };
                int w = P->width == 64, ones = (int)rn(2); /* p+1 or p ones */
                m1 = f[w][ones][0];
                m2 = f[w][ones][1];
                e1 = -(int)rn(60) - 1;
                e2 = emin - p - 1 + ones - e1;
                if (rn(2)) { /* or the neighbouring values */
                    m2 += rn(2) ? 2 : -2ull;
                }
            } else if (subn) { /* odd product of <= p bits in units of half
                                  the smallest subnormal */
                int l1 = 1 + (int)rn((unsigned)p - 1);
                int l2 = 1 + (int)rn((unsigned)(p - l1));
                m1 = odd_len(l1);
                m2 = odd_len(l2);
                e1 = -(int)rn(60) - 1;
                e2 = emin - p - e1;
            } else { /* odd product of exactly p+1 bits */
                int l1 = 1 + (int)rn((unsigned)p);
                int l2 = p + 1 - l1 + (int)rn(2);
                if (l2 < 1 || l2 > p)
                    return 0;
                m1 = odd_len(l1);
                m2 = odd_len(l2);
                if (bitlen((u128)m1 * m2) != p + 1)
                    return 0;
                e1 = (int)rn(81) - 40;
                e2 = (int)rn(81) - 40;
            }
            v[0] = make_val(P, rsign(), m1, e1, &ok);
            v[1] = make_val(P, rsign(), m2, e2, &ok);
            return ok;
        }
        if (!strncmp(name, "fdiv", 4)) { /* only subnormal quotients tie */
            int lt = 1 + (int)rn((unsigned)p - 1);
            int lb = 1 + (int)rn((unsigned)(p - lt));
            uint64_t t = odd_len(lt), mb = odd_len(lb);
            int eb = (int)rn(41) - 20;
            v[0] = make_val(P, rsign(), (u128)t * mb, eb + emin - p, &ok);
            v[1] = make_val(P, rsign(), mb, eb, &ok);
            return ok;
        }
        { /* add/sub: a = ma * 2^(e+1), b = mb * 2^e with mb odd, so the
             exact sum 2*ma +- mb is odd; a tie when it has p+1 bits */
            uint64_t ma = odd_len(p);
            int lb = 1 + (int)rn((unsigned)p);
            uint64_t mb = odd_len(lb);
            int sa = rsign(), sb = rsign();
            int eff_sub = (sa != sb) ^ (name[1] == 's'); /* fsub negates b */
            u128 S = eff_sub ? ((u128)2 * ma > mb ? (u128)2 * ma - mb : mb - (u128)2 * ma)
                             : (u128)2 * ma + mb;
            if (bitlen(S) != p + 1)
                return 0;
            int e = (int)rn(121) - 60;
            v[0] = make_val(P, sa, ma, e + 1, &ok);
            v[1] = make_val(P, sb, mb, e, &ok);
            return ok;
        }
    case G_FMA: {
        if (subn) { /* results around the underflow threshold */
            int l1 = p - (int)rn(3), l2 = p - (int)rn(3);
            int eb = emin + (int)rn(10);             /* leading-bit exponents */
            int ea = emin + (int)rn(3) - 2 - eb;     /* product near 2^emin */
            v[0] = make_val(P, rsign(), odd_len(l1), ea - (l1 - 1), &ok);
            v[1] = make_val(P, rsign(), odd_len(l2), eb - (l2 - 1), &ok);
            v[2] = make_val(P, rsign(), odd_len(1 + (int)rn((unsigned)p)),
                            emin - p + 1 + (int)rn((unsigned)p), &ok);
            if (rn(3) == 0)
                v[2] = P->width == 64 ? 0 : 0xffffffff00000000ull;
            return ok;
        }
        /* odd product plus an even multiple of its unit: the exact sum is
         * odd, a tie when it has p+1 bits (for the sign combination the
         * instruction uses: fmsub/fnmadd flip one of the two) */
        int l1 = 1 + (int)rn((unsigned)p), l2 = p + 1 - l1 - (int)rn(3);
        if (l2 < 1 || l2 > p)
            return 0;
        uint64_t m1 = odd_len(l1), m2 = odd_len(l2);
        u128 P12 = (u128)m1 * m2;
        int lc = 1 + (int)rn((unsigned)p), d = 1 + (int)rn((unsigned)p + 2);
        uint64_t mc = odd_len(lc);
        u128 C = (u128)mc << d;
        int s1 = rsign(), s2 = rsign(), sc = rsign();
        int eff_sub = (s1 ^ s2) != sc;
        if (!strncmp(name, "fmsub", 5) || !strncmp(name, "fnmsub", 6))
            eff_sub ^= 1; /* ab - c, -ab + c: the parts' relative sign flips */
        u128 S = eff_sub ? (P12 > C ? P12 - C : C - P12) : P12 + C;
        if (bitlen(S) != p + 1)
            return 0;
        int e1 = (int)rn(41) - 20, e2 = (int)rn(41) - 20;
        v[0] = make_val(P, s1, m1, e1, &ok);
        v[1] = make_val(P, s2, m2, e2, &ok);
        v[2] = make_val(P, sc, mc, e1 + e2 + d, &ok);
        return ok;
    }
    case G_TOINT: { /* k + 1/2 */
        static const int mags[] = { 1, 2, 3, 5, 8, 16, 23, 30, 31, 32, 52, 62, 63 };
        int l = mags[rn(sizeof mags / sizeof mags[0])];
        if (l + 1 > p)
            l = p - 1;
        uint64_t k = rnd() >> (64 - l);
        if (rn(3) == 0)
            k = (1ull << l) - 1 - rn(2); /* just below a power of two */
        v[0] = make_val(P, rsign(), ((u128)k << 1) | 1, -1, &ok);
        return ok;
    }
    case G_CVT: { /* double -> single: 25 significant bits, or subnormal */
        const struct prec *S = &PS;
        int sign = rsign();
        if (subn) {
            int l = 1 + (int)rn((unsigned)S->p - 1);
            v[0] = make_val(&PD, sign, odd_len(l), (1 - S->bias) - S->p, &ok);
        } else {
            v[0] = make_val(&PD, sign, odd_len(S->p + 1), (int)rn(240) - 120 - S->p, &ok);
        }
        return ok;
    }
    default:
        return 0;
    }
}

/* Operands drawn only from a handful of special values, so that all their
 * combinations (inf*0+qNaN, 0/0, x/0, inf-inf...) come up. */
static uint64_t gen_small_special(const struct prec *P)
{
    static const uint64_t sd[] = { 0, 0x8000000000000000, 0x7ff0000000000000,
                                   0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
                                   0x3ff0000000000000, 0xbff0000000000000, 1 };
    static const uint64_t ss[] = { 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000,
                                   0x7f800001, 0x3f800000, 0xbf800000, 1 };
    unsigned i = rn(sizeof sd / sizeof sd[0]);
    return P->width == 64 ? sd[i] : 0xffffffff00000000ull | ss[i];
}

static void print_val(char kind, uint64_t v)
{
    if (kind == 's') {
        if ((v >> 32) == 0xffffffffu)
            printf("%llx", (unsigned long long)(v & 0xffffffffu));
        else
            printf("u%llx", (unsigned long long)v);
    } else {
        printf("%llx", (unsigned long long)v);
    }
}

int main(int argc, char **argv)
{
    unsigned long seed = argc > 1 ? strtoul(argv[1], 0, 0) : 1;
    unsigned long scale = argc > 2 ? strtoul(argv[2], 0, 0) : 1;
    printf("# RISC-V F/D reference vectors from tests/guest/fpu-oracle/fpu_oracle.c"
           " (seed %lu, scale %lu)\n", seed, scale);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const struct op *o = &ops[k];
        const struct prec *P = o->in[0] == 'd' ? &PD : &PS;
        const struct prec *PO = o->out == 'd' ? &PD : &PS;
        size_t n = (size_t)o->count * scale;
        size_t nin = strlen(o->in);
        uint64_t *in = malloc(n * 3 * sizeof *in);
        rng_state = seed * 0x100000001b3ull + k;
        for (size_t i = 0; i < n; i++) {
            uint64_t *v = &in[i * 3];
            v[1] = v[2] = 0;
            unsigned c = rn(100);
            if (c < 30 && o->has_rm && o->gen != G_FROMINT && o->gen != G_SQRT) {
                int tries = 0, subn = rn(4) == 0; /* near the underflow threshold */
                while (!gen_tie(P, o->name, o->gen, subn, v) && ++tries < 1000)
                    ;
                if (tries < 1000)
                    continue;
            }
            if (c >= 90 && o->gen != G_FROMINT) {
                for (size_t j = 0; j < nin; j++)
                    v[j] = gen_small_special(P);
                continue;
            }
            switch (o->gen) {
            case G_TOINT:
                v[0] = gen_toint(P);
                break;
            case G_FROMINT:
                v[0] = gen_int(PO, o->name[7] == 'w');
                break;
            case G_FMA:
                v[0] = gen_fp(P);
                v[1] = rn(3) == 0 ? related(P, v[0], 1) : gen_fp(P);
                v[2] = rn(3) == 0 ? related(P, v[rn(2)], 0) : gen_fp(P);
                break;
            case G_ARITH:
            case G_CMP:
            case G_BITS:
                v[0] = gen_fp(P);
                if (nin > 1)
                    v[1] = rn(3) == 0 ? related(P, v[0], !strncmp(o->name, "fmul", 4) ||
                                                           !strncmp(o->name, "fdiv", 4))
                                      : gen_fp(P);
                if (rn(2) && nin > 1) { /* swap operand order */
                    uint64_t t = v[0]; v[0] = v[1]; v[1] = t;
                }
                break;
            default:
                v[0] = gen_fp(P);
                break;
            }
        }
        for (int m = 0; m < (o->has_rm ? 5 : 1); m++) {
            printf("@ %s %s\n", o->name, o->has_rm ? rm_names[m] : "-");
            for (size_t i = 0; i < n; i++) {
                uint64_t *v = &in[i * 3], r;
                unsigned long fl;
                o->fn[m](v, &r, &fl);
                for (size_t j = 0; j < nin; j++) {
                    print_val(o->in[j], v[j]);
                    putchar(' ');
                }
                print_val(o->out, r);
                printf(" %lx\n", fl);
            }
        }
        free(in);
    }
    /* Every combination of a few special operands (RDN too, for the signs
     * of exact zeros). */
    static const uint64_t cross_d[] = { 0, 0x8000000000000000, 0x7ff0000000000000,
                                        0xfff0000000000000, 0x7ff8000000000000,
                                        0x7ff0000000000001, 0x3ff0000000000000 };
    static const uint64_t cross_s[] = { 0, 0x80000000, 0x7f800000, 0xff800000,
                                        0x7fc00000, 0x7f800001, 0x3f800000 };
    enum { NC = sizeof cross_d / sizeof cross_d[0] };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const struct op *o = &ops[k];
        size_t nin = strlen(o->in), total = 1;
        if (o->gen == G_FROMINT)
            continue;
        for (size_t j = 0; j < nin; j++)
            total *= NC;
        for (int m = 0; m < (o->has_rm ? 5 : 1); m += 2) {
            if (m == 4)
                break;
            printf("@ %s %s\n", o->name, o->has_rm ? rm_names[m] : "-");
            for (size_t i = 0; i < total; i++) {
                uint64_t v[3] = { 0, 0, 0 }, r;
                unsigned long fl;
                size_t idx = i;
                for (size_t j = 0; j < nin; j++, idx /= NC)
                    v[j] = o->in[j] == 'd' ? cross_d[idx % NC]
                                           : 0xffffffff00000000ull | cross_s[idx % NC];
                o->fn[m](v, &r, &fl);
                for (size_t j = 0; j < nin; j++) {
                    print_val(o->in[j], v[j]);
                    putchar(' ');
                }
                print_val(o->out, r);
                printf(" %lx\n", fl);
            }
        }
    }
    return 0;
}
