/* rv64: the exact software floating-point core (the contract is
 * softfloat.h).
 *
 * Method: operands are unpacked to sign/exponent/integer significand, the
 * exact result is formed in 64- or 128-bit integers with a "sticky" bit
 * jammed into the least significant bit, and round_pack() rounds it once in
 * any of the five modes, detecting tininess after rounding as RISC-V does.
 * fpu.c calls this core for everything in RMM (which x86 lacks), for every
 * float->int conversion, on hosts without the host path, and for every mode
 * when a test forces the software path, so the same QEMU vectors that check
 * the host path check this core in all five modes.
 */
#include "engine/rv64/softfloat.h"

typedef unsigned __int128 u128;

static inline int msb64(uint64_t x) { return 63 - __builtin_clzll(x); }
static inline int msb128(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? 64 + msb64(hi) : msb64((uint64_t)x);
}

static inline uint64_t f_sign(const struct fmt *f) { return 1ull << (f->width - 1); }
static inline uint64_t f_cnan(const struct fmt *f) { return f->width == 32 ? S_CNAN : D_CNAN; }
static inline uint64_t f_inf(const struct fmt *f, int s)
{
    return (s ? f_sign(f) : 0) | (f_emaxb(f) << f->mbits);
}
static inline uint64_t f_zero(const struct fmt *f, int s) { return s ? f_sign(f) : 0; }
static inline uint64_t f_maxfin(const struct fmt *f, int s)
{
    return f_inf(f, s) - 1;
}

/* ------------------------------------------------------------------ */
/* Rounding                                                            */

/* Does rounding away the bits below the kept part add one to it? */
static inline int round_inc(unsigned rm, int sign, uint64_t lsb, int rnd, int sticky)
{
    switch (rm) {
    case FPU_RNE: return rnd && (sticky || lsb);
    case FPU_RTZ: return 0;
    case FPU_RDN: return sign && (rnd || sticky);
    case FPU_RUP: return !sign && (rnd || sticky);
    default:      return rnd; /* RMM: ties away from zero */
    }
}

/* sig >> s (s >= 1) rounded to an integer in mode rm; *inexact set when
 * bits were discarded. */
static uint64_t round_shift(uint64_t sig, int s, int sign, unsigned rm, int *inexact)
{
    uint64_t q;
    int rnd, sticky;
    if (s > 64) {
        q = 0;
        rnd = 0;
        sticky = sig != 0;
    } else if (s == 64) {
        q = 0;
        rnd = (int)(sig >> 63);
        sticky = (sig << 1) != 0;
    } else {
        q = sig >> s;
        rnd = (int)((sig >> (s - 1)) & 1);
        sticky = (sig & ((1ull << (s - 1)) - 1)) != 0;
    }
    *inexact = rnd || sticky;
    return q + (uint64_t)round_inc(rm, sign, q & 1, rnd, sticky);
}

static inline uint64_t shift_right_jam64(uint64_t x, int d)
{
    if (d <= 0)
        return x;
    if (d >= 64)
        return x != 0;
    return (x >> d) | ((x & ((1ull << d) - 1)) != 0);
}

static inline u128 shift_right_jam128(u128 x, int d)
{
    if (d <= 0)
        return x;
    if (d >= 128)
        return x != 0;
    return (x >> d) | (u128)((x & (((u128)1 << d) - 1)) != 0);
}

/* Reduce a 128-bit significand to 64 bits (msb at most bit 62) with the
 * discarded bits jammed into bit 0; *exp is the exponent of the lsb. */
static uint64_t collapse128(u128 x, int *exp)
{
    int n = msb128(x);
    if (n > 62) {
        x = shift_right_jam128(x, n - 62);
        *exp += n - 62;
    }
    return (uint64_t)x;
}

/* Round (-1)^sign * sig * 2^exp (sig != 0) to format f in mode rm, set the
 * flags, and return the encoding.  Bits below the kept precision may include
 * a jammed sticky bit, as long as it lies at least two places below the
 * rounding position (all callers give >= 55 significant bits or an exact
 * value). */
static uint64_t round_pack(const struct fmt *f, int sign, int exp, uint64_t sig, unsigned rm,
                           uint32_t *fl)
{
    const int p = f->mbits + 1;
    const int emin = 1 - f->bias;
    int me = exp + msb64(sig);              /* exponent of the leading bit */
    int lsb = me - (p - 1);                 /* exponent of the last kept bit */
    int tiny = 0, inexact = 0;
    uint64_t r;

    if (me < emin) {
        /* Tininess after rounding: tiny unless rounding to p bits with an
         * unbounded exponent carries up to 2^emin. */
        tiny = 1;
        if (me == emin - 1 && lsb - exp > 0) {
            int ix;
            uint64_t ru = round_shift(sig, lsb - exp, sign, rm, &ix);
            if (ru >> p)
                tiny = 0;
        }
        lsb = emin - (p - 1); /* subnormal: fixed quantum */
    }
    if (lsb - exp <= 0) {
        r = sig << (exp - lsb);
    } else {
        r = round_shift(sig, lsb - exp, sign, rm, &inexact);
        if (r >> p) { /* carried to 2^p: renormalize (the dropped bit is 0) */
            r >>= 1;
            lsb++;
        }
    }
    if (inexact) {
        *fl |= FPU_NX;
        if (tiny)
            *fl |= FPU_UF;
    }
    if (r >> (p - 1)) {
        int be = lsb + (p - 1) + f->bias;
        if (be >= (int)f_emaxb(f)) {
            *fl |= FPU_OF | FPU_NX;
            switch (rm) {
            case FPU_RTZ: return f_maxfin(f, sign);
            case FPU_RDN: return sign ? f_inf(f, 1) : f_maxfin(f, 0);
            case FPU_RUP: return sign ? f_maxfin(f, 1) : f_inf(f, 0);
            default:      return f_inf(f, sign);
            }
        }
        return f_zero(f, sign) | ((uint64_t)be << f->mbits) | (r & ((1ull << f->mbits) - 1));
    }
    /* subnormal or zero (a carry into bit p-1 encodes exponent field 1) */
    return f_zero(f, sign) | r;
}

static inline uint64_t soft_nv(const struct fmt *f, uint32_t *fl)
{
    *fl |= FPU_NV;
    return f_cnan(f);
}

/* ------------------------------------------------------------------ */
/* Arithmetic                                                          */

/* The soft ops below take non-NaN operands (callers handle NaNs) as raw
 * encodings of format f, with any negation already applied. */

static uint64_t soft_add(const struct fmt *f, uint64_t a, uint64_t b, unsigned rm, uint32_t *fl)
{
    struct unp A = unpack(f, a), B = unpack(f, b);
    if (A.cls == C_INF || B.cls == C_INF) {
        if (A.cls == C_INF && B.cls == C_INF && A.sign != B.sign)
            return soft_nv(f, fl);
        return A.cls == C_INF ? a : b;
    }
    if (A.cls == C_ZERO && B.cls == C_ZERO)
        return f_zero(f, A.sign == B.sign ? A.sign : rm == FPU_RDN);
    if (A.cls == C_ZERO)
        return b;
    if (B.cls == C_ZERO)
        return a;
    /* Normalize both to the leading bit at 61 (the low 8+ bits are 0). */
    int sh = 61 - msb64(A.sig);
    uint64_t sa = A.sig << sh;
    int ea = A.exp - sh;
    sh = 61 - msb64(B.sig);
    uint64_t sb = B.sig << sh;
    int eb = B.exp - sh;
    int sign = A.sign;
    if (eb > ea || (eb == ea && sb > sa)) {
        uint64_t t = sa; sa = sb; sb = t;
        int te = ea; ea = eb; eb = te;
        sign = B.sign;
    }
    sb = shift_right_jam64(sb, ea - eb);
    uint64_t s = (A.sign == B.sign) ? sa + sb : sa - sb;
    if (s == 0)
        return f_zero(f, rm == FPU_RDN);
    return round_pack(f, sign, ea, s, rm, fl);
}

static uint64_t soft_mul(const struct fmt *f, uint64_t a, uint64_t b, unsigned rm, uint32_t *fl)
{
    struct unp A = unpack(f, a), B = unpack(f, b);
    int sign = A.sign ^ B.sign;
    if ((A.cls == C_INF && B.cls == C_ZERO) || (A.cls == C_ZERO && B.cls == C_INF))
        return soft_nv(f, fl);
    if (A.cls == C_INF || B.cls == C_INF)
        return f_inf(f, sign);
    if (A.cls == C_ZERO || B.cls == C_ZERO)
        return f_zero(f, sign);
    int exp = A.exp + B.exp;
    uint64_t s = collapse128((u128)A.sig * B.sig, &exp);
    return round_pack(f, sign, exp, s, rm, fl);
}

static uint64_t soft_div(const struct fmt *f, uint64_t a, uint64_t b, unsigned rm, uint32_t *fl)
{
    struct unp A = unpack(f, a), B = unpack(f, b);
    int sign = A.sign ^ B.sign;
    if (A.cls == C_INF)
        return B.cls == C_INF ? soft_nv(f, fl) : f_inf(f, sign);
    if (B.cls == C_INF)
        return f_zero(f, sign);
    if (A.cls == C_ZERO)
        return B.cls == C_ZERO ? soft_nv(f, fl) : f_zero(f, sign);
    if (B.cls == C_ZERO) {
        *fl |= FPU_DZ;
        return f_inf(f, sign);
    }
    int sh = 63 - msb64(A.sig);
    uint64_t sa = A.sig << sh;
    int ea = A.exp - sh;
    sh = 63 - msb64(B.sig);
    uint64_t sb = B.sig << sh;
    int eb = B.exp - sh;
    /* sa/sb is in (1/2, 2), so q has its leading bit at 61 or 62. */
    u128 num = (u128)sa << 62;
    uint64_t q = (uint64_t)(num / sb);
    if ((uint64_t)(num % sb))
        q |= 1;
    return round_pack(f, sign, ea - eb - 62, q, rm, fl);
}

uint64_t soft_sqrt(const struct fmt *f, uint64_t a, unsigned rm, uint32_t *fl)
{
    struct unp A = unpack(f, a);
    if (A.cls == C_ZERO)
        return a;
    if (A.sign)
        return soft_nv(f, fl);
    if (A.cls == C_INF)
        return a;
    /* n = sig << sh with the leading bit at 124 or 125 and exp - sh even;
     * then sqrt(value) = sqrt(n) * 2^((exp - sh) / 2). */
    int sh = 124 - msb64(A.sig);
    if ((A.exp - sh) & 1)
        sh++;
    u128 n = (u128)A.sig << sh;
    u128 res = 0, one = (u128)1 << 126;
    while (one > n)
        one >>= 2;
    while (one) {
        if (n >= res + one) {
            n -= res + one;
            res = (res >> 1) + one;
        } else {
            res >>= 1;
        }
        one >>= 2;
    }
    uint64_t r = (uint64_t)res | (n != 0); /* res < 2^63 */
    return round_pack(f, 0, (A.exp - sh) / 2, r, rm, fl);
}

uint64_t soft_fma(const struct fmt *f, uint64_t a, uint64_t b, uint64_t c, unsigned rm,
                  uint32_t *fl)
{
    struct unp A = unpack(f, a), B = unpack(f, b), C = unpack(f, c);
    int psign = A.sign ^ B.sign;
    if ((A.cls == C_INF && B.cls == C_ZERO) || (A.cls == C_ZERO && B.cls == C_INF))
        return soft_nv(f, fl);
    if (A.cls == C_INF || B.cls == C_INF) {
        if (C.cls == C_INF && C.sign != psign)
            return soft_nv(f, fl);
        return f_inf(f, psign);
    }
    if (C.cls == C_INF)
        return c;
    if (A.cls == C_ZERO || B.cls == C_ZERO) {
        if (C.cls == C_ZERO)
            return f_zero(f, psign == C.sign ? psign : rm == FPU_RDN);
        return c;
    }
    u128 P = (u128)A.sig * B.sig;
    int ep = A.exp + B.exp;
    if (C.cls == C_ZERO) {
        uint64_t s = collapse128(P, &ep);
        return round_pack(f, psign, ep, s, rm, fl);
    }
    /* Align in a 128-bit frame: the operand with the larger leading-bit
     * exponent gets its leading bit at 125, the other is placed relative to
     * it (shifted right with sticky jamming if it would fall off bit 0). */
    u128 X = P, Y = C.sig;
    int ex = ep, ey = C.exp, sx = psign, sy = C.sign;
    if (C.exp + msb64(C.sig) > ep + msb128(P)) {
        X = C.sig; ex = C.exp; sx = C.sign;
        Y = P; ey = ep; sy = psign;
    }
    int sh = 125 - msb128(X);
    X <<= sh;
    int E = ex - sh;
    int d = ey - E;
    if (d >= 0)
        Y <<= d;
    else
        Y = shift_right_jam128(Y, -d);
    u128 R;
    int sign;
    if (sx == sy) {
        R = X + Y;
        sign = sx;
    } else if (X >= Y) {
        R = X - Y;
        sign = sx;
    } else {
        R = Y - X;
        sign = sy;
    }
    if (R == 0)
        return f_zero(f, rm == FPU_RDN);
    uint64_t s = collapse128(R, &E);
    return round_pack(f, sign, E, s, rm, fl);
}

uint64_t soft_op2(const struct fmt *f, enum fpu_op2 op, uint64_t a, uint64_t b, unsigned rm,
                  uint32_t *fl)
{
    switch (op) {
    case FPU_ADD: return soft_add(f, a, b, rm, fl);
    case FPU_SUB: return soft_add(f, a, b ^ f_sign(f), rm, fl);
    case FPU_MUL: return soft_mul(f, a, b, rm, fl);
    default:      return soft_div(f, a, b, rm, fl);
    }
}

/* ------------------------------------------------------------------ */
/* Conversions                                                         */

/* Integer register value of the saturated result. */
static uint64_t int_max(enum fpu_int t)
{
    switch (t) {
    case FPU_W:  return 0x7fffffffull;
    case FPU_L:  return 0x7fffffffffffffffull;
    default:     return ~0ull; /* WU (0xffffffff sign-extended) and LU */
    }
}
static uint64_t int_min(enum fpu_int t)
{
    switch (t) {
    case FPU_W:  return 0xffffffff80000000ull;
    case FPU_L:  return 0x8000000000000000ull;
    default:     return 0;
    }
}

uint64_t soft_to_int(const struct fmt *f, enum fpu_int t, uint64_t x, unsigned rm, uint32_t *fl)
{
    struct unp u = unpack(f, x);
    uint64_t mag = 0;
    int big = 0, inexact = 0;
    switch (u.cls) {
    case C_NAN:
        *fl |= FPU_NV;
        return int_max(t);
    case C_INF:
        *fl |= FPU_NV;
        return u.sign ? int_min(t) : int_max(t);
    case C_ZERO:
        return 0;
    default:
        break;
    }
    if (u.exp >= 0) {
        if (msb64(u.sig) + u.exp >= 64)
            big = 1;
        else
            mag = u.sig << u.exp;
    } else {
        mag = round_shift(u.sig, -u.exp, u.sign, rm, &inexact);
    }
    uint64_t lim;
    switch (t) {
    case FPU_W:  lim = u.sign ? 0x80000000ull : 0x7fffffffull; break;
    case FPU_WU: lim = u.sign ? 0 : 0xffffffffull; break;
    case FPU_L:  lim = u.sign ? 0x8000000000000000ull : 0x7fffffffffffffffull; break;
    default:     lim = u.sign ? 0 : ~0ull; break;
    }
    if (big || mag > lim) {
        *fl |= FPU_NV;
        return u.sign ? int_min(t) : int_max(t);
    }
    if (inexact)
        *fl |= FPU_NX;
    uint64_t v = u.sign ? -mag : mag;
    if (t == FPU_W || t == FPU_WU)
        v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
    return v;
}

uint64_t soft_from_int(const struct fmt *f, enum fpu_int t, uint64_t x, unsigned rm,
                       uint32_t *fl)
{
    int sign;
    uint64_t mag = int_src(t, x, &sign);
    if (mag == 0)
        return 0;
    return round_pack(f, sign, 0, mag, rm, fl);
}

uint64_t soft_d_to_s(uint64_t a, unsigned rm, uint32_t *fl)
{
    struct unp u = unpack(&F64, a);
    if (u.cls == C_INF)
        return f_inf(&F32, u.sign);
    if (u.cls == C_ZERO)
        return f_zero(&F32, u.sign);
    return round_pack(&F32, u.sign, u.exp, u.sig, rm, fl);
}
