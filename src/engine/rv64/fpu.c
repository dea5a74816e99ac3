/* rv64: RISC-V F and D arithmetic (the contract is fpu.h).
 *
 * Design
 * ------
 * Two execution paths compute every arithmetic result:
 *
 *  - The host path: add/sub/mul/div/sqrt/fma, int->float and double->single
 *    in RNE, RTZ, RDN and RUP run on the host FPU (SSE on x86-64, via plain C
 *    with -frounding-math -fsignaling-nans -fno-math-errno).  IEEE 754 fixes
 *    the rounded result of these operations, and an x86 host also matches
 *    RISC-V on the flags: tininess is detected after rounding and underflow
 *    is only flagged when the tiny result is also inexact.  What differs is
 *    NaNs: x86 propagates payloads and its default NaN has the sign bit set,
 *    while RISC-V always returns the canonical NaN.  So each host result is
 *    checked (on its bits, never with a float compare): a NaN result is
 *    replaced by the canonical NaN.  A NaN result can only come from a NaN
 *    operand or an invalid operation, and in both cases the host has already
 *    raised exactly the RISC-V flags (NV for an sNaN operand or an invalid
 *    operation, nothing for quiet NaN operands).  The one exception, fma of
 *    inf*0 plus a quiet NaN (NV on RISC-V, implementation-defined on hosts),
 *    is added by hand.
 *
 *  - The software path: everything in RMM (round to nearest, ties to max
 *    magnitude, which x86 lacks), every float->int conversion (which needs
 *    saturation, NV without NX, and no rounding-mode switch), and all the
 *    bit-level operations (sign injection, min/max, compares, fclass, done
 *    here on the encodings).  The arithmetic ops and float->int conversions
 *    call the exact soft-float core in softfloat.c (contract in softfloat.h):
 *    correctly rounded in all five modes, tininess after rounding, flags
 *    ORed into e->fflags.  This file handles NaN operands and NaN-boxing
 *    around those calls.  Because the core handles every mode, tests can
 *    force it for every mode (priv bit FPU_PRIV_SOFT below) and check it
 *    against the same QEMU vectors as the host path.
 *
 * Lazy flags
 * ----------
 * The host path never reads the host status: the host's sticky exception
 * flags simply accumulate while guest instructions run, and fpu_sync() folds
 * them into e->fflags (mapping FE_* to the RISC-V bits) and clears them.
 * fpu_set_flags() replaces e->fflags and clears the host flags.  The software
 * path does no host FP arithmetic at all and ORs its flags into e->fflags
 * directly, so the two kinds of flags combine at fpu_sync() time.
 * Consequences for the caller (beyond what fpu.h says):
 *  - host FP code that runs on the thread between two fpu_* calls without an
 *    fpu_sync() in between would have its flags attributed to the hart; call
 *    fpu_sync() before leaving the interpreter loop to run such code.
 *  - to take over a thread whose host flags may hold something stale (the
 *    first run of a hart on a thread), call fpu_set_flags(e, e->fflags)
 *    (after fpu_sync() of the hart that ran there before, if any).
 *
 * Rounding mode: e->host_rm caches the mode the host FPU is in (-1 when
 * unknown), so the hot path (same mode as last time, usually RNE) costs one
 * compare; the host mode is switched only when the mode changes (on x86-64
 * by writing MXCSR.RC directly, see host_round()).  fpu_sync() puts the host
 * back to RNE so that the next hart on the thread (whose cache says RNE
 * after its own fpu_sync()) and any other host code see the default mode.
 * Int->float conversions that are exact (|x| <= 2^24 or 2^53, as in
 * floor/ceil sequences with a static rm) never switch the host mode, and
 * float->int conversions never use it.
 *
 * Hosts: the host path is used on x86-64 only (SSE arithmetic, tininess
 * after rounding, like RISC-V).  Elsewhere (e.g. AArch64, which detects
 * tininess before rounding) every operation takes the software path, which
 * is exact but slower.
 *
 * NaN-boxing: single-precision operands whose upper 32 bits are not all
 * ones read as the canonical NaN 0x7fc00000 (quiet, so no flag), and every
 * single result is returned with the upper 32 bits set.
 *
 * e->priv: bit 0 (FPU_PRIV_SOFT) forces the software path for every
 * operation and rounding mode (a test hook; the hot path does not pay for it
 * because the forced mode never caches a host rounding mode).
 */
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "engine/rv64/fpu.h"
#include "engine/rv64/softfloat.h"

#define FPU_PRIV_SOFT 1u

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#if defined(__x86_64__)
#define HOST_FPU 1
#include <xmmintrin.h>
#else
#define HOST_FPU 0
#endif

/* Compiler barrier that makes `v` look modified here, so the FP operation
 * that uses it cannot be scheduled before a preceding rounding-mode switch. */
#if HOST_FPU
#define FP_BARRIER(v) __asm__ volatile("" : "+x"(v) : : "memory")
#else
#define FP_BARRIER(v) __asm__ volatile("" : "+m"(v) : : "memory")
#endif
#define INT_BARRIER(v) __asm__ volatile("" : "+r"(v) : : "memory")
#define NOINLINE __attribute__((noinline))

/* ------------------------------------------------------------------ */
/* Bit helpers                                                         */

static inline double d_of(uint64_t x) { double d; memcpy(&d, &x, 8); return d; }
static inline uint64_t bits_d(double d) { uint64_t x; memcpy(&x, &d, 8); return x; }
static inline float f_of(uint32_t x) { float f; memcpy(&f, &x, 4); return f; }
static inline uint32_t bits_f(float f) { uint32_t x; memcpy(&x, &f, 4); return x; }

/* Single operand from a 64-bit register: non-boxed reads as canonical NaN. */
static inline uint32_t unbox(uint64_t a)
{
    return (a >> 32) == 0xffffffffu ? (uint32_t)a : S_CNAN;
}
static inline uint64_t box(uint32_t x) { return S_BOX | x; }

static inline int isnan_s(uint32_t x) { return (x & ~S_SIGN) > 0x7f800000u; }
static inline int issnan_s(uint32_t x) { return isnan_s(x) && !(x & 0x00400000u); }
static inline int isnan_d(uint64_t x) { return (x & ~D_SIGN) > D_INF; }
static inline int issnan_d(uint64_t x) { return isnan_d(x) && !(x & 0x0008000000000000ull); }

/* Canonicalize a host result: any NaN becomes the RISC-V canonical NaN. */
static inline uint64_t canon_s(float r)
{
    uint32_t x = bits_f(r);
    return box(unlikely(isnan_s(x)) ? S_CNAN : x);
}
static inline uint64_t canon_d(double r)
{
    uint64_t x = bits_d(r);
    return unlikely(isnan_d(x)) ? D_CNAN : x;
}

/* ------------------------------------------------------------------ */
/* Host rounding mode and flags                                        */

static const int host_rm_tab[4] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };

#if HOST_FPU
/* Every host operation used here is SSE, which rounds per MXCSR alone, so
 * switching just MXCSR.RC is enough and several times cheaper than
 * fesetround() (which also reloads the x87 control word).  libm's fma() and
 * fmaf() are single SSE instructions when the CPU has FMA; without it they
 * are software that might consult the x87 mode, so that case keeps
 * fesetround().  0: not checked yet, 1: MXCSR only, 2: fesetround. */
static int host_rm_method;
static const unsigned mxcsr_rc[4] = { 0x0000, 0x6000, 0x2000, 0x4000 };

static void host_round(int rm)
{
    int m = __atomic_load_n(&host_rm_method, __ATOMIC_RELAXED);
    if (unlikely(m == 0)) { /* every thread computes the same answer */
        __builtin_cpu_init();
        m = __builtin_cpu_supports("fma") ? 1 : 2;
        __atomic_store_n(&host_rm_method, m, __ATOMIC_RELAXED);
    }
    if (m == 1)
        _mm_setcsr((_mm_getcsr() & ~0x6000u) | mxcsr_rc[rm]);
    else
        fesetround(host_rm_tab[rm]);
}
#else
static void host_round(int rm) { fesetround(host_rm_tab[rm]); }
#endif

/* Make the host FPU round in `rm`.  Returns 0 when the operation must take
 * the software path instead (RMM, or the forced-software test mode). */
static int host_set_rm(struct rv64_fpu *e, unsigned rm)
{
    if (!HOST_FPU || rm >= FPU_RMM || (e->priv & FPU_PRIV_SOFT))
        return 0;
    host_round((int)rm);
    e->host_rm = (int)rm;
    return 1;
}

/* Each host-path operation is split in two: the hot part (inline in the
 * public function) runs when the host is already in the requested mode; the
 * NOINLINE slow part switches the host mode or takes the software path. */

void fpu_init(struct rv64_fpu *e)
{
    e->fflags = 0;
    e->host_rm = -1; /* unknown: the first host operation sets the mode */
    e->priv = 0;
}

void fpu_sync(struct rv64_fpu *e)
{
    int x = fetestexcept(FE_ALL_EXCEPT);
    if (x) {
        uint32_t f = 0;
        if (x & FE_INEXACT)
            f |= FPU_NX;
        if (x & FE_UNDERFLOW)
            f |= FPU_UF;
        if (x & FE_OVERFLOW)
            f |= FPU_OF;
        if (x & FE_DIVBYZERO)
            f |= FPU_DZ;
        if (x & FE_INVALID)
            f |= FPU_NV;
        e->fflags |= f;
        feclearexcept(FE_ALL_EXCEPT);
    }
    if (HOST_FPU && e->host_rm != FPU_RNE) {
        host_round(FPU_RNE);
        if (!(e->priv & FPU_PRIV_SOFT))
            e->host_rm = FPU_RNE;
    }
}

void fpu_set_flags(struct rv64_fpu *e, uint32_t flags)
{
    e->fflags = flags & 0x1f;
    if (fetestexcept(FE_ALL_EXCEPT))
        feclearexcept(FE_ALL_EXCEPT);
}

/* ------------------------------------------------------------------ */
/* Binary ops                                                          */

/* Sign-magnitude to an unsigned key that orders like the numbers
 * (-0 sorts just below +0).  Only for non-NaN values. */
static inline uint32_t key_s(uint32_t x) { return (x & S_SIGN) ? ~x : x | S_SIGN; }
static inline uint64_t key_d(uint64_t x) { return (x & D_SIGN) ? ~x : x | D_SIGN; }

static uint64_t minmax_s(struct rv64_fpu *e, int max, uint32_t a, uint32_t b)
{
    int an = isnan_s(a), bn = isnan_s(b);
    if (unlikely(an || bn)) {
        if (issnan_s(a) || issnan_s(b))
            e->fflags |= FPU_NV;
        if (an && bn)
            return box(S_CNAN);
        return box(an ? b : a);
    }
    int a_lt = key_s(a) < key_s(b);
    return box((a_lt != max) ? a : b);
}

static uint64_t minmax_d(struct rv64_fpu *e, int max, uint64_t a, uint64_t b)
{
    int an = isnan_d(a), bn = isnan_d(b);
    if (unlikely(an || bn)) {
        if (issnan_d(a) || issnan_d(b))
            e->fflags |= FPU_NV;
        if (an && bn)
            return D_CNAN;
        return an ? b : a;
    }
    int a_lt = key_d(a) < key_d(b);
    return (a_lt != max) ? a : b;
}

/* Host arithmetic; the caller has put the host in the right mode. */
static inline uint64_t host_op2_s(enum fpu_op2 op, uint32_t x, uint32_t y)
{
    float fx = f_of(x), fy = f_of(y), r;
    FP_BARRIER(fx);
    switch (op) {
    case FPU_ADD: r = fx + fy; break;
    case FPU_SUB: r = fx - fy; break;
    case FPU_MUL: r = fx * fy; break;
    default:      r = fx / fy; break;
    }
    return canon_s(r);
}
static inline uint64_t host_op2_d(enum fpu_op2 op, uint64_t x, uint64_t y)
{
    double fx = d_of(x), fy = d_of(y), r;
    FP_BARRIER(fx);
    switch (op) {
    case FPU_ADD: r = fx + fy; break;
    case FPU_SUB: r = fx - fy; break;
    case FPU_MUL: r = fx * fy; break;
    default:      r = fx / fy; break;
    }
    return canon_d(r);
}

/* Not in the cached host mode: switch the host, or go to software. */
static uint64_t NOINLINE op2_s_slow(struct rv64_fpu *e, enum fpu_op2 op, uint32_t x, uint32_t y,
                                    unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_op2_s(op, x, y);
    if (isnan_s(x) || isnan_s(y)) {
        if (issnan_s(x) || issnan_s(y))
            e->fflags |= FPU_NV;
        return box(S_CNAN);
    }
    return box((uint32_t)soft_op2(&F32, op, x, y, rm, &e->fflags));
}
static uint64_t NOINLINE op2_d_slow(struct rv64_fpu *e, enum fpu_op2 op, uint64_t x, uint64_t y,
                                    unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_op2_d(op, x, y);
    if (isnan_d(x) || isnan_d(y)) {
        if (issnan_d(x) || issnan_d(y))
            e->fflags |= FPU_NV;
        return D_CNAN;
    }
    return soft_op2(&F64, op, x, y, rm, &e->fflags);
}

uint64_t fpu_op2_s(struct rv64_fpu *e, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm)
{
    uint32_t x = unbox(a), y = unbox(b);
    switch (op) {
    case FPU_ADD:
    case FPU_SUB:
    case FPU_MUL:
    case FPU_DIV:
        if (likely((int)rm == e->host_rm))
            return host_op2_s(op, x, y);
        return op2_s_slow(e, op, x, y, rm);
    case FPU_MIN:   return minmax_s(e, 0, x, y);
    case FPU_MAX:   return minmax_s(e, 1, x, y);
    case FPU_SGNJ:  return box((x & ~S_SIGN) | (y & S_SIGN));
    case FPU_SGNJN: return box((x & ~S_SIGN) | (~y & S_SIGN));
    case FPU_SGNJX: return box(x ^ (y & S_SIGN));
    }
    return box(S_CNAN);
}

uint64_t fpu_op2_d(struct rv64_fpu *e, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm)
{
    switch (op) {
    case FPU_ADD:
    case FPU_SUB:
    case FPU_MUL:
    case FPU_DIV:
        if (likely((int)rm == e->host_rm))
            return host_op2_d(op, a, b);
        return op2_d_slow(e, op, a, b, rm);
    case FPU_MIN:   return minmax_d(e, 0, a, b);
    case FPU_MAX:   return minmax_d(e, 1, a, b);
    case FPU_SGNJ:  return (a & ~D_SIGN) | (b & D_SIGN);
    case FPU_SGNJN: return (a & ~D_SIGN) | (~b & D_SIGN);
    case FPU_SGNJX: return a ^ (b & D_SIGN);
    }
    return D_CNAN;
}

/* ------------------------------------------------------------------ */
/* Square root and fused multiply-add                                  */

static inline uint64_t host_sqrt_s(uint32_t x)
{
    float fx = f_of(x);
    FP_BARRIER(fx);
    return canon_s(sqrtf(fx));
}
static inline uint64_t host_sqrt_d(uint64_t x)
{
    double fx = d_of(x);
    FP_BARRIER(fx);
    return canon_d(sqrt(fx));
}

static uint64_t NOINLINE sqrt_s_slow(struct rv64_fpu *e, uint32_t x, unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_sqrt_s(x);
    if (isnan_s(x)) {
        if (issnan_s(x))
            e->fflags |= FPU_NV;
        return box(S_CNAN);
    }
    return box((uint32_t)soft_sqrt(&F32, x, rm, &e->fflags));
}
static uint64_t NOINLINE sqrt_d_slow(struct rv64_fpu *e, uint64_t x, unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_sqrt_d(x);
    if (isnan_d(x)) {
        if (issnan_d(x))
            e->fflags |= FPU_NV;
        return D_CNAN;
    }
    return soft_sqrt(&F64, x, rm, &e->fflags);
}

uint64_t fpu_sqrt_s(struct rv64_fpu *e, uint64_t a, unsigned rm)
{
    uint32_t x = unbox(a);
    if (likely((int)rm == e->host_rm))
        return host_sqrt_s(x);
    return sqrt_s_slow(e, x, rm);
}

uint64_t fpu_sqrt_d(struct rv64_fpu *e, uint64_t a, unsigned rm)
{
    if (likely((int)rm == e->host_rm))
        return host_sqrt_d(a);
    return sqrt_d_slow(e, a, rm);
}

/* inf * 0 in either order: invalid even when the addend is a quiet NaN. */
static inline int inf_times_zero_s(uint32_t a, uint32_t b)
{
    uint32_t ma = a & ~S_SIGN, mb = b & ~S_SIGN;
    return (ma == 0x7f800000u && mb == 0) || (ma == 0 && mb == 0x7f800000u);
}
static inline int inf_times_zero_d(uint64_t a, uint64_t b)
{
    uint64_t ma = a & ~D_SIGN, mb = b & ~D_SIGN;
    return (ma == D_INF && mb == 0) || (ma == 0 && mb == D_INF);
}

/* NaN result of fma: flags for NaN operands (the host path has raised NV
 * for sNaNs and for invalid operations already; re-raising is harmless). */
static uint64_t fma_nan_s(struct rv64_fpu *e, uint32_t a, uint32_t b, uint32_t c)
{
    if (issnan_s(a) || issnan_s(b) || issnan_s(c) || inf_times_zero_s(a, b))
        e->fflags |= FPU_NV;
    return box(S_CNAN);
}
static uint64_t fma_nan_d(struct rv64_fpu *e, uint64_t a, uint64_t b, uint64_t c)
{
    if (issnan_d(a) || issnan_d(b) || issnan_d(c) || inf_times_zero_d(a, b))
        e->fflags |= FPU_NV;
    return D_CNAN;
}

static inline uint64_t host_fma_s(struct rv64_fpu *e, uint32_t x, uint32_t y, uint32_t z)
{
    float fx = f_of(x), fy = f_of(y), fz = f_of(z);
    FP_BARRIER(fx);
    uint32_t r = bits_f(fmaf(fx, fy, fz));
    if (unlikely(isnan_s(r)))
        return fma_nan_s(e, x, y, z);
    return box(r);
}
static inline uint64_t host_fma_d(struct rv64_fpu *e, uint64_t x, uint64_t y, uint64_t z)
{
    double fx = d_of(x), fy = d_of(y), fz = d_of(z);
    FP_BARRIER(fx);
    uint64_t r = bits_d(fma(fx, fy, fz));
    if (unlikely(isnan_d(r)))
        return fma_nan_d(e, x, y, z);
    return r;
}

static uint64_t NOINLINE fma_s_slow(struct rv64_fpu *e, uint32_t x, uint32_t y, uint32_t z,
                                    unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_fma_s(e, x, y, z);
    if (isnan_s(x) || isnan_s(y) || isnan_s(z))
        return fma_nan_s(e, x, y, z);
    return box((uint32_t)soft_fma(&F32, x, y, z, rm, &e->fflags));
}
static uint64_t NOINLINE fma_d_slow(struct rv64_fpu *e, uint64_t x, uint64_t y, uint64_t z,
                                    unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_fma_d(e, x, y, z);
    if (isnan_d(x) || isnan_d(y) || isnan_d(z))
        return fma_nan_d(e, x, y, z);
    return soft_fma(&F64, x, y, z, rm, &e->fflags);
}

/* The negations are exact sign flips of an operand (for a NaN operand the
 * result is the canonical NaN anyway): -(a*b) is (-a)*b and -c is c with
 * its sign flipped, as SoftFloat's negate_product / negate_c do. */
uint64_t fpu_fma_s(struct rv64_fpu *e, uint64_t a, uint64_t b, uint64_t c,
                   int neg_prod, int neg_add, unsigned rm)
{
    uint32_t x = unbox(a), y = unbox(b), z = unbox(c);
    if (neg_prod)
        x ^= S_SIGN;
    if (neg_add)
        z ^= S_SIGN;
    if (likely((int)rm == e->host_rm))
        return host_fma_s(e, x, y, z);
    return fma_s_slow(e, x, y, z, rm);
}

uint64_t fpu_fma_d(struct rv64_fpu *e, uint64_t a, uint64_t b, uint64_t c,
                   int neg_prod, int neg_add, unsigned rm)
{
    if (neg_prod)
        a ^= D_SIGN;
    if (neg_add)
        c ^= D_SIGN;
    if (likely((int)rm == e->host_rm))
        return host_fma_d(e, a, b, c);
    return fma_d_slow(e, a, b, c, rm);
}

/* ------------------------------------------------------------------ */
/* Compare and classify (all on bits: no host compare instructions)    */

uint64_t fpu_cmp_s(struct rv64_fpu *e, enum fpu_cmp op, uint64_t a, uint64_t b)
{
    uint32_t x = unbox(a), y = unbox(b);
    if (unlikely(isnan_s(x) || isnan_s(y))) {
        /* feq is quiet (NV for sNaN only); flt/fle signal on any NaN. */
        if (op != FPU_EQ || issnan_s(x) || issnan_s(y))
            e->fflags |= FPU_NV;
        return 0;
    }
    int both_zero = ((x | y) & ~S_SIGN) == 0;
    switch (op) {
    case FPU_EQ: return x == y || both_zero;
    case FPU_LT: return !both_zero && key_s(x) < key_s(y);
    default:     return both_zero || key_s(x) <= key_s(y);
    }
}

uint64_t fpu_cmp_d(struct rv64_fpu *e, enum fpu_cmp op, uint64_t a, uint64_t b)
{
    if (unlikely(isnan_d(a) || isnan_d(b))) {
        if (op != FPU_EQ || issnan_d(a) || issnan_d(b))
            e->fflags |= FPU_NV;
        return 0;
    }
    int both_zero = ((a | b) & ~D_SIGN) == 0;
    switch (op) {
    case FPU_EQ: return a == b || both_zero;
    case FPU_LT: return !both_zero && key_d(a) < key_d(b);
    default:     return both_zero || key_d(a) <= key_d(b);
    }
}

static uint64_t fclass(const struct fmt *f, uint64_t x)
{
    struct unp u = unpack(f, x);
    uint64_t be = (x >> f->mbits) & f_emaxb(f);
    switch (u.cls) {
    case C_INF:  return u.sign ? 1u << 0 : 1u << 7;
    case C_ZERO: return u.sign ? 1u << 3 : 1u << 4;
    case C_FIN:
        if (be == 0)
            return u.sign ? 1u << 2 : 1u << 5;
        return u.sign ? 1u << 1 : 1u << 6;
    default: /* NaN: quiet if the top fraction bit is set */
        return (x >> (f->mbits - 1)) & 1 ? 1u << 9 : 1u << 8;
    }
}

uint64_t fpu_class_s(uint64_t a) { return fclass(&F32, unbox(a)); }
uint64_t fpu_class_d(uint64_t a) { return fclass(&F64, a); }

/* ------------------------------------------------------------------ */
/* Float -> integer                                                    */

uint64_t fpu_to_int_s(struct rv64_fpu *e, enum fpu_int t, uint64_t a, unsigned rm)
{
    uint32_t x = unbox(a);
    /* Hot path: C's truncating conversion for RTZ when in range (|x| <
     * 2^31 or 2^63); the host raises inexact exactly when RISC-V does. */
    if (HOST_FPU && rm == FPU_RTZ && !(e->priv & FPU_PRIV_SOFT)) {
        uint32_t be = (x >> 23) & 0xff;
        float fx = f_of(x);
        if (t == FPU_W && be < 127 + 31)
            return (uint64_t)(int64_t)(int32_t)fx;
        if (t == FPU_L && be < 127 + 63)
            return (uint64_t)(int64_t)fx;
    }
    return soft_to_int(&F32, t, x, rm, &e->fflags);
}

uint64_t fpu_to_int_d(struct rv64_fpu *e, enum fpu_int t, uint64_t a, unsigned rm)
{
    if (HOST_FPU && rm == FPU_RTZ && !(e->priv & FPU_PRIV_SOFT)) {
        uint64_t be = (a >> 52) & 0x7ff;
        double fx = d_of(a);
        if (t == FPU_W && be < 1023 + 31)
            return (uint64_t)(int64_t)(int32_t)fx;
        if (t == FPU_L && be < 1023 + 63)
            return (uint64_t)(int64_t)fx;
    }
    return soft_to_int(&F64, t, a, rm, &e->fflags);
}

/* ------------------------------------------------------------------ */
/* Integer -> float, float <-> double                                  */

static inline uint64_t host_from_int_s(enum fpu_int t, uint64_t x)
{
    float r;
    INT_BARRIER(x);
    switch (t) {
    case FPU_W:  r = (float)(int32_t)(uint32_t)x; break;
    case FPU_WU: r = (float)(uint32_t)x; break;
    case FPU_L:  r = (float)(int64_t)x; break;
    default:     r = (float)x; break;
    }
    return box(bits_f(r));
}
static inline uint64_t host_from_int_d(enum fpu_int t, uint64_t x)
{
    double r;
    INT_BARRIER(x);
    switch (t) {
    case FPU_W:  r = (double)(int32_t)(uint32_t)x; break;
    case FPU_WU: r = (double)(uint32_t)x; break;
    case FPU_L:  r = (double)(int64_t)x; break;
    default:     r = (double)x; break;
    }
    return bits_d(r);
}

/* Is the integer operand exactly representable with p significant bits?
 * (Then no rounding happens and the host mode does not matter.) */
static inline int int_fits(enum fpu_int t, uint64_t x, int p)
{
    int sign;
    uint64_t mag = int_src(t, x, &sign);
    return mag <= (1ull << p);
}

static uint64_t NOINLINE from_int_s_slow(struct rv64_fpu *e, enum fpu_int t, uint64_t x,
                                         unsigned rm)
{
    /* Small integers are exact: no need to switch the host mode (common
     * in floor/ceil sequences that use a static rounding mode). */
    if (int_fits(t, x, 24) && !(e->priv & FPU_PRIV_SOFT))
        return host_from_int_s(t, x);
    if (host_set_rm(e, rm))
        return host_from_int_s(t, x);
    return box((uint32_t)soft_from_int(&F32, t, x, rm, &e->fflags));
}
static uint64_t NOINLINE from_int_d_slow(struct rv64_fpu *e, enum fpu_int t, uint64_t x,
                                         unsigned rm)
{
    if (int_fits(t, x, 53) && !(e->priv & FPU_PRIV_SOFT)) /* W and WU always */
        return host_from_int_d(t, x);
    if (host_set_rm(e, rm))
        return host_from_int_d(t, x);
    return soft_from_int(&F64, t, x, rm, &e->fflags);
}

uint64_t fpu_from_int_s(struct rv64_fpu *e, enum fpu_int t, uint64_t x, unsigned rm)
{
    if (likely((int)rm == e->host_rm))
        return host_from_int_s(t, x);
    return from_int_s_slow(e, t, x, rm);
}

uint64_t fpu_from_int_d(struct rv64_fpu *e, enum fpu_int t, uint64_t x, unsigned rm)
{
    if (likely((int)rm == e->host_rm))
        return host_from_int_d(t, x);
    return from_int_d_slow(e, t, x, rm);
}

static inline uint64_t host_d_to_s(uint64_t x)
{
    double fx = d_of(x);
    FP_BARRIER(fx);
    return box(bits_f((float)fx));
}

static uint64_t NOINLINE d_to_s_slow(struct rv64_fpu *e, uint64_t a, unsigned rm)
{
    if (host_set_rm(e, rm))
        return host_d_to_s(a);
    return box((uint32_t)soft_d_to_s(a, rm, &e->fflags));
}

uint64_t fpu_d_to_s(struct rv64_fpu *e, uint64_t a, unsigned rm)
{
    if (unlikely(isnan_d(a))) {
        if (issnan_d(a))
            e->fflags |= FPU_NV;
        return box(S_CNAN);
    }
    if (likely((int)rm == e->host_rm))
        return host_d_to_s(a);
    return d_to_s_slow(e, a, rm);
}

uint64_t fpu_s_to_d(struct rv64_fpu *e, uint64_t a)
{
    uint32_t x = unbox(a);
    if (unlikely(isnan_s(x))) {
        if (issnan_s(x))
            e->fflags |= FPU_NV;
        return D_CNAN;
    }
    /* Exact for every non-NaN input, so no flag and any rounding mode. */
    return bits_d((double)f_of(x));
}
