/* Hand-written edge cases for src/engine/rv64/fpu.c (RISC-V F/D semantics).
 *
 * Every case states the exact expected register value and fflags.  The
 * value/flag cases run twice: on the normal implementation ("host": host
 * FPU for RNE/RTZ/RDN/RUP) and with the software core forced for every
 * rounding mode ("soft", the priv test hook of fpu.c).  A few state tests
 * (lazy flags, fpu_set_flags, several harts on one thread, rounding-mode
 * caching) run once.  The bulk comparison against QEMU is test_fpu_oracle.
 */
#include <stdio.h>
#include <string.h>

#include "engine/rv64/fpu.h"

#define PRIV_SOFT 1u /* FPU_PRIV_SOFT in fpu.c */

static struct rv64_fpu E;
static int n_pass, n_fail;
static const char *mode = "";

static uint64_t D(double x)
{
    uint64_t v;
    memcpy(&v, &x, 8);
    return v;
}
/* A single value, NaN-boxed. */
static uint64_t S(float x)
{
    uint32_t v;
    memcpy(&v, &x, 4);
    return 0xffffffff00000000ull | v;
}
static uint64_t B(uint32_t bits) { return 0xffffffff00000000ull | bits; }

static void check(int line, const char *what, uint64_t got, uint64_t want, unsigned gotf,
                  unsigned wantf)
{
    if (got == want && gotf == wantf) {
        n_pass++;
        return;
    }
    n_fail++;
    printf("FAIL [%s] line %d: %s = %016llx flags %02x, want %016llx flags %02x\n", mode, line,
           what, (unsigned long long)got, gotf, (unsigned long long)want, wantf);
}

/* Evaluate expr with cleared flags; compare value and flags. */
#define T(expr, want, wantf)                                                               \
    do {                                                                                   \
        fpu_set_flags(&E, 0);                                                              \
        uint64_t r_ = (expr);                                                              \
        fpu_sync(&E);                                                                      \
        check(__LINE__, #expr, r_, (want), E.fflags, (wantf));                             \
    } while (0)

enum { NX = FPU_NX, UF = FPU_UF, OF = FPU_OF, DZ = FPU_DZ, NV = FPU_NV };
enum { RNE = FPU_RNE, RTZ = FPU_RTZ, RDN = FPU_RDN, RUP = FPU_RUP, RMM = FPU_RMM };

/* Frequently used encodings. */
#define D_QNAN 0x7ff8000000000000ull
#define D_SNAN 0x7ff0000000000001ull
#define D_INF 0x7ff0000000000000ull
#define D_NINF 0xfff0000000000000ull
#define D_MAX 0x7fefffffffffffffull
#define D_MINN 0x0010000000000000ull /* smallest normal */
#define D_MINS 0x0000000000000001ull /* smallest subnormal */
#define D_NZERO 0x8000000000000000ull
#define S_QNAN B(0x7fc00000)
#define S_SNAN B(0x7f800001)
#define S_INF B(0x7f800000)
#define S_NINF B(0xff800000)
#define S_MAX B(0x7f7fffff)
#define S_NZERO B(0x80000000)
#define W_MIN 0xffffffff80000000ull
#define W_MAX 0x7fffffffull
#define L_MIN 0x8000000000000000ull
#define L_MAX 0x7fffffffffffffffull
#define ALL1 0xffffffffffffffffull

static void nan_boxing(void)
{
    uint64_t unboxed1 = 0x000000003f800000ull; /* 1.0f without the box */
    T(fpu_op2_s(&E, FPU_ADD, S(1), S(1), RNE), S(2), 0);
    T(fpu_op2_s(&E, FPU_ADD, unboxed1, S(1), RNE), S_QNAN, 0);
    T(fpu_op2_s(&E, FPU_MUL, S(2), 0xfffffffe40000000ull, RNE), S_QNAN, 0);
    T(fpu_op2_s(&E, FPU_SGNJ, unboxed1, S(1), RNE), S_QNAN, 0);
    T(fpu_op2_s(&E, FPU_SGNJ, unboxed1, S(-1), RNE), B(0xffc00000), 0);
    T(fpu_op2_s(&E, FPU_SGNJ, unboxed1, unboxed1, RNE), S_QNAN, 0); /* fmv.s */
    T(fpu_op2_s(&E, FPU_SGNJN, S(1), S(1), RNE), S(-1), 0);          /* fneg.s */
    T(fpu_op2_s(&E, FPU_SGNJX, S(-3), unboxed1, RNE), S(-3), 0);     /* sign of cNaN is + */
    T(fpu_op2_s(&E, FPU_SGNJX, S(-3), S(-1), RNE), S(3), 0);         /* fabs-like */
    T(fpu_op2_s(&E, FPU_MIN, unboxed1, S(5), RNE), S(5), 0);
    T(fpu_op2_s(&E, FPU_MAX, S(-5), unboxed1, RNE), S(-5), 0);
    T(fpu_class_s(unboxed1), 1u << 9, 0);
    T(fpu_class_s(0x7fffffff7f800000ull), 1u << 9, 0); /* inf pattern, bad box */
    T(fpu_s_to_d(&E, unboxed1), D_QNAN, 0);
    T(fpu_cmp_s(&E, FPU_EQ, unboxed1, unboxed1), 0, 0);
    T(fpu_cmp_s(&E, FPU_LE, unboxed1, S(1)), 0, NV);
    T(fpu_to_int_s(&E, FPU_W, unboxed1, RTZ), W_MAX, NV);
    T(fpu_sqrt_s(&E, unboxed1, RNE), S_QNAN, 0);
    T(fpu_fma_s(&E, S(1), S(1), unboxed1, 0, 0, RNE), S_QNAN, 0);
    T(fpu_from_int_s(&E, FPU_W, 7, RNE), S(7), 0);
    T(fpu_d_to_s(&E, D(0.5), RNE), S(0.5f), 0);
}

static void canonical_nan(void)
{
    T(fpu_op2_d(&E, FPU_ADD, 0x7ff8000000000123ull, D(1), RNE), D_QNAN, 0);
    T(fpu_op2_d(&E, FPU_ADD, 0xfff8000000000000ull, D(1), RNE), D_QNAN, 0);
    T(fpu_op2_d(&E, FPU_MUL, D_SNAN, D(1), RNE), D_QNAN, NV);
    T(fpu_op2_d(&E, FPU_DIV, D(1), 0xfff4000000000000ull, RNE), D_QNAN, NV);
    T(fpu_op2_d(&E, FPU_ADD, D_INF, D_NINF, RNE), D_QNAN, NV);
    T(fpu_op2_d(&E, FPU_SUB, D_INF, D_INF, RMM), D_QNAN, NV);
    T(fpu_op2_s(&E, FPU_SUB, S_INF, S_INF, RNE), S_QNAN, NV);
    T(fpu_op2_s(&E, FPU_ADD, B(0x7fc01234), S(1), RNE), S_QNAN, 0);
    T(fpu_op2_s(&E, FPU_ADD, B(0x7f801234), S(1), RUP), S_QNAN, NV);
    T(fpu_op2_d(&E, FPU_MUL, 0, D_NINF, RNE), D_QNAN, NV);
    T(fpu_op2_d(&E, FPU_DIV, 0, D_NZERO, RNE), D_QNAN, NV);
    T(fpu_op2_d(&E, FPU_DIV, D_INF, D_NINF, RDN), D_QNAN, NV);
    T(fpu_sqrt_d(&E, D(-1), RNE), D_QNAN, NV);
    T(fpu_sqrt_d(&E, D_NINF, RNE), D_QNAN, NV);
    T(fpu_sqrt_d(&E, D_NZERO, RNE), D_NZERO, 0);
    T(fpu_sqrt_d(&E, D_INF, RNE), D_INF, 0);
    T(fpu_sqrt_d(&E, 0x7ff8000000000001ull, RNE), D_QNAN, 0);
    T(fpu_sqrt_d(&E, D_SNAN, RMM), D_QNAN, NV);
    T(fpu_sqrt_s(&E, S(-4), RNE), S_QNAN, NV);
    T(fpu_sqrt_s(&E, S(4), RMM), S(2), 0);
    /* fma: inf*0 is invalid even with a quiet NaN addend */
    T(fpu_fma_d(&E, D_INF, 0, D_QNAN, 0, 0, RNE), D_QNAN, NV);
    T(fpu_fma_d(&E, D_NZERO, D_NINF, 0x7ff8000000000abcull, 1, 1, RMM), D_QNAN, NV);
    T(fpu_fma_s(&E, S_INF, S(0), S_QNAN, 0, 0, RNE), S_QNAN, NV);
    T(fpu_fma_s(&E, S_INF, 0, S_QNAN, 0, 0, RNE), S_QNAN, 0); /* unboxed 0 is a NaN */
    T(fpu_fma_d(&E, D(1), D(1), D_SNAN, 0, 0, RNE), D_QNAN, NV);
    T(fpu_fma_d(&E, D_QNAN, D(1), D(1), 0, 0, RNE), D_QNAN, 0);
    T(fpu_fma_d(&E, D_INF, D(1), D_NINF, 0, 0, RNE), D_QNAN, NV);
    T(fpu_fma_d(&E, D_INF, D(1), D_NINF, 0, 1, RNE), D_INF, 0);  /* fmsub: inf - -inf */
    T(fpu_fma_d(&E, D_INF, D(1), D_INF, 1, 0, RNE), D_QNAN, NV); /* fnmsub: -inf + inf */
    T(fpu_d_to_s(&E, D_SNAN, RNE), S_QNAN, NV);
    T(fpu_d_to_s(&E, 0xfff8000000000123ull, RNE), S_QNAN, 0);
    T(fpu_s_to_d(&E, S_SNAN), D_QNAN, NV);
    T(fpu_s_to_d(&E, B(0xffc00001)), D_QNAN, 0);
    /* sign injection is a pure bit operation: NaN payloads survive */
    T(fpu_op2_d(&E, FPU_SGNJ, D_SNAN, D(-1), RNE), 0xfff0000000000001ull, 0);
    T(fpu_op2_d(&E, FPU_SGNJX, 0xfff8000000000123ull, D(-1), RNE), 0x7ff8000000000123ull, 0);
    T(fpu_op2_s(&E, FPU_SGNJN, S_SNAN, S_SNAN, RNE), B(0xff800001), 0);
}

static void min_max(void)
{
    T(fpu_op2_d(&E, FPU_MIN, D_NZERO, 0, RNE), D_NZERO, 0);
    T(fpu_op2_d(&E, FPU_MIN, 0, D_NZERO, RNE), D_NZERO, 0);
    T(fpu_op2_d(&E, FPU_MAX, D_NZERO, 0, RNE), 0, 0);
    T(fpu_op2_d(&E, FPU_MAX, 0, D_NZERO, RNE), 0, 0);
    T(fpu_op2_s(&E, FPU_MIN, S(0), S_NZERO, RNE), S_NZERO, 0);
    T(fpu_op2_s(&E, FPU_MAX, S_NZERO, S(0), RNE), S(0), 0);
    T(fpu_op2_d(&E, FPU_MIN, D_QNAN, D(1), RNE), D(1), 0);
    T(fpu_op2_d(&E, FPU_MIN, D(1), 0x7ff8000000000042ull, RNE), D(1), 0);
    T(fpu_op2_d(&E, FPU_MAX, D_SNAN, D(-1), RNE), D(-1), NV);
    T(fpu_op2_d(&E, FPU_MIN, D(-1), D_SNAN, RNE), D(-1), NV);
    T(fpu_op2_d(&E, FPU_MAX, D_QNAN, 0xfff8000000000001ull, RNE), D_QNAN, 0);
    T(fpu_op2_d(&E, FPU_MIN, D_SNAN, D_QNAN, RNE), D_QNAN, NV);
    T(fpu_op2_s(&E, FPU_MAX, S_SNAN, S_SNAN, RNE), S_QNAN, NV);
    T(fpu_op2_s(&E, FPU_MIN, S_SNAN, S(2), RNE), S(2), NV);
    T(fpu_op2_d(&E, FPU_MIN, D_NINF, D(5), RNE), D_NINF, 0);
    T(fpu_op2_d(&E, FPU_MAX, D(-1), D(-2), RNE), D(-1), 0);
    T(fpu_op2_d(&E, FPU_MIN, D(-1), D(-2), RNE), D(-2), 0);
    T(fpu_op2_d(&E, FPU_MAX, D_MINS, 0, RNE), D_MINS, 0);
    T(fpu_op2_d(&E, FPU_MIN, 0x8000000000000001ull, D_NZERO, RNE), 0x8000000000000001ull, 0);
    T(fpu_op2_s(&E, FPU_MAX, S_INF, S_MAX, RNE), S_INF, 0);
}

static void compare(void)
{
    T(fpu_cmp_d(&E, FPU_EQ, 0, D_NZERO), 1, 0);
    T(fpu_cmp_d(&E, FPU_LT, D_NZERO, 0), 0, 0);
    T(fpu_cmp_d(&E, FPU_LE, 0, D_NZERO), 1, 0);
    T(fpu_cmp_d(&E, FPU_EQ, D_QNAN, D_QNAN), 0, 0);
    T(fpu_cmp_d(&E, FPU_EQ, D(1), D_SNAN), 0, NV);
    T(fpu_cmp_d(&E, FPU_LT, D_QNAN, D(1)), 0, NV);
    T(fpu_cmp_d(&E, FPU_LE, D(1), D_QNAN), 0, NV);
    T(fpu_cmp_d(&E, FPU_LT, D(-1), D(1)), 1, 0);
    T(fpu_cmp_d(&E, FPU_LT, D(1), D(-1)), 0, 0);
    T(fpu_cmp_d(&E, FPU_LT, D(-2), D(-1)), 1, 0);
    T(fpu_cmp_d(&E, FPU_LE, D(-1), D(-2)), 0, 0);
    T(fpu_cmp_d(&E, FPU_LE, D(2), D(2)), 1, 0);
    T(fpu_cmp_d(&E, FPU_LT, D(2), D(2)), 0, 0);
    T(fpu_cmp_d(&E, FPU_LT, D_NINF, D_INF), 1, 0);
    T(fpu_cmp_d(&E, FPU_LT, D_MINS, 0), 0, 0);
    T(fpu_cmp_d(&E, FPU_LT, 0x8000000000000001ull, D_NZERO), 1, 0);
    T(fpu_cmp_d(&E, FPU_EQ, D_INF, D_INF), 1, 0);
    T(fpu_cmp_s(&E, FPU_EQ, S(0), S_NZERO), 1, 0);
    T(fpu_cmp_s(&E, FPU_LT, S(-3), S(-2)), 1, 0);
    T(fpu_cmp_s(&E, FPU_LE, S_SNAN, S(1)), 0, NV);
    T(fpu_cmp_s(&E, FPU_EQ, S_SNAN, S(1)), 0, NV);
    T(fpu_cmp_s(&E, FPU_EQ, S_QNAN, S(1)), 0, 0);
}

static void div_zero_overflow_underflow(void)
{
    T(fpu_op2_d(&E, FPU_DIV, D(1), 0, RNE), D_INF, DZ);
    T(fpu_op2_d(&E, FPU_DIV, D(-1), 0, RNE), D_NINF, DZ);
    T(fpu_op2_d(&E, FPU_DIV, D(1), D_NZERO, RMM), D_NINF, DZ);
    T(fpu_op2_d(&E, FPU_DIV, D_INF, 0, RNE), D_INF, 0);
    T(fpu_op2_d(&E, FPU_DIV, D(1), D_INF, RNE), 0, 0);
    T(fpu_op2_s(&E, FPU_DIV, S(-2), S(0), RTZ), S_NINF, DZ);

    /* overflow: the result depends on the mode and sign */
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(2), RNE), D_INF, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(2), RTZ), D_MAX, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(2), RDN), D_MAX, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(2), RUP), D_INF, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(2), RMM), D_INF, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(-2), RNE), D_NINF, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(-2), RTZ), D_MAX | D_NZERO, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(-2), RDN), D_NINF, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(-2), RUP), D_MAX | D_NZERO, OF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MAX, D(-2), RMM), D_NINF, OF | NX);
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D_MAX, RNE), D_INF, OF | NX);
    T(fpu_op2_s(&E, FPU_ADD, S_MAX, S_MAX, RMM), S_INF, OF | NX);
    T(fpu_op2_s(&E, FPU_MUL, S_MAX, S(-1.5f), RTZ), B(0xff7fffff), OF | NX);
    /* max + half an ulp rounds up (to overflow) in RNE/RMM only */
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D(0x1p970), RNE), D_INF, OF | NX);
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D(0x1p970), RMM), D_INF, OF | NX);
    /* overflow means the rounded result with an unbounded exponent is too
     * large: not so when RTZ rounds max + half an ulp back down */
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D(0x1p970), RTZ), D_MAX, NX);
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D(0x1p969), RMM), D_MAX, NX);
    T(fpu_op2_d(&E, FPU_ADD, D_MAX, D(0x1p969), RUP), D_INF, OF | NX);

    /* exact tiny results raise nothing */
    T(fpu_op2_d(&E, FPU_MUL, D_MINN, D(0.5), RNE), 0x0008000000000000ull, 0);
    T(fpu_op2_d(&E, FPU_SUB, 0x0010000000000001ull, D_MINN, RNE), D_MINS, 0);
    /* half the smallest subnormal: a tie between 0 and it */
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(0.5), RNE), 0, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(0.5), RTZ), 0, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(0.5), RDN), 0, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(0.5), RUP), D_MINS, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(0.5), RMM), D_MINS, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(-0.5), RDN), 0x8000000000000001ull, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, D_MINS, D(-0.5), RNE), D_NZERO, UF | NX);
    /* 1.5 and 2.5 times the smallest subnormal */
    T(fpu_op2_d(&E, FPU_DIV, 3, D(2), RNE), 2, UF | NX);
    T(fpu_op2_d(&E, FPU_DIV, 3, D(2), RMM), 2, UF | NX);
    T(fpu_op2_d(&E, FPU_DIV, 3, D(2), RTZ), 1, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, 5, D(0.5), RNE), 2, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, 5, D(0.5), RMM), 3, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, 5, D(0.5), RUP), 3, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, 5, D(0.5), RDN), 2, UF | NX);
    T(fpu_op2_s(&E, FPU_MUL, B(5), S(0.5f), RMM), B(3), UF | NX);
    T(fpu_op2_s(&E, FPU_MUL, B(5), S(0.5f), RNE), B(2), UF | NX);

    /* Tininess is detected after rounding: (2^54-1) * 2^-1076 = 2^-1022 -
     * 2^-1076 rounds (to 53 bits, unbounded exponent) up to 2^-1022 in
     * RNE/RMM/RUP, so it is not tiny there: NX only.  In RTZ/RDN it stays
     * below 2^-1022: tiny and inexact, UF. */
    /* (2^18-1) * (2^36+2^18+1) = 2^54-1 */
    uint64_t a = D(262143.0 * 0x1p-60), b = D(68719738881.0 * 0x1p-1016);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RNE), D_MINN, NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RMM), D_MINN, NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RUP), D_MINN, NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RTZ), 0x000fffffffffffffull, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RDN), 0x000fffffffffffffull, UF | NX);
    /* (2^53-1) * 2^-1075 = 2^-1022 - 2^-1075 is exact at 53 bits, so it is
     * tiny in every mode even though RNE rounds it up to 2^-1022 */
    a = D(6361.0 * 0x1p-40);            /* 6361 * 1416003655831 = 2^53-1 */
    b = D(1416003655831.0 * 0x1p-1035);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RNE), D_MINN, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RMM), D_MINN, UF | NX);
    T(fpu_op2_d(&E, FPU_MUL, a, b, RTZ), 0x000fffffffffffffull, UF | NX);
    /* the same for single: 31 * 1082401 = 2^25 - 1 */
    a = S(31.0f * 0x1p-20f);
    b = S(1082401.0f * 0x1p-131f);
    T(fpu_op2_s(&E, FPU_MUL, a, b, RNE), B(0x00800000), NX);
    T(fpu_op2_s(&E, FPU_MUL, a, b, RTZ), B(0x007fffff), UF | NX);
    T(fpu_op2_s(&E, FPU_MUL, a, b, RMM), B(0x00800000), NX);
    /* and for fcvt.s.d: 2^-126 - 2^-151 and 2^-126 - 2^-150 */
    T(fpu_d_to_s(&E, 0x380ffffff0000000ull, RNE), B(0x00800000), NX);
    T(fpu_d_to_s(&E, 0x380ffffff0000000ull, RTZ), B(0x007fffff), UF | NX);
    T(fpu_d_to_s(&E, 0x380fffffe0000000ull, RNE), B(0x00800000), UF | NX);
    T(fpu_d_to_s(&E, 0x380fffffe0000000ull, RMM), B(0x00800000), UF | NX);
    T(fpu_d_to_s(&E, 0x380fffffe0000000ull, RDN), B(0x007fffff), UF | NX);
}

struct cvt_case {
    int line;
    double in;
    enum fpu_int t;
    uint64_t want[5]; /* per rounding mode RNE RTZ RDN RUP RMM */
    unsigned flags[5];
};

#define C5(v) { v, v, v, v, v }

static const struct cvt_case cvt_cases[] = {
    /* fcvt.w.d */
    { __LINE__, 2147483647.0, FPU_W, C5(W_MAX), C5(0) },
    { __LINE__, 2147483647.5, FPU_W, C5(W_MAX), { NV, NX, NX, NV, NV } },
    { __LINE__, 2147483647.25, FPU_W, C5(W_MAX), { NX, NX, NX, NV, NX } },
    { __LINE__, 2147483648.0, FPU_W, C5(W_MAX), C5(NV) },
    { __LINE__, -2147483648.0, FPU_W, C5(W_MIN), C5(0) },
    { __LINE__, -2147483648.5, FPU_W, C5(W_MIN), { NX, NX, NV, NX, NV } },
    { __LINE__, -2147483648.75, FPU_W, C5(W_MIN), { NV, NX, NV, NX, NV } },
    { __LINE__, -2147483649.0, FPU_W, C5(W_MIN), C5(NV) },
    { __LINE__, -0.0, FPU_W, C5(0), C5(0) },
    { __LINE__, 0.5, FPU_W, { 0, 0, 0, 1, 1 }, C5(NX) },
    { __LINE__, -0.5, FPU_W, { 0, 0, ALL1, 0, ALL1 }, C5(NX) },
    { __LINE__, -1.5, FPU_W, { -2ull, -1ull, -2ull, -1ull, -2ull }, C5(NX) },
    { __LINE__, 2.5, FPU_W, { 2, 2, 2, 3, 3 }, C5(NX) },
    { __LINE__, 1e-300, FPU_W, { 0, 0, 0, 1, 0 }, C5(NX) },
    { __LINE__, 1e300, FPU_W, C5(W_MAX), C5(NV) },
    /* fcvt.wu.d: negative results saturate to 0 unless they round to 0 */
    { __LINE__, -0.3, FPU_WU, C5(0), { NX, NX, NV, NX, NX } },
    { __LINE__, -0.5, FPU_WU, C5(0), { NX, NX, NV, NX, NV } },
    { __LINE__, -0.75, FPU_WU, C5(0), { NV, NX, NV, NX, NV } },
    { __LINE__, -1.0, FPU_WU, C5(0), C5(NV) },
    { __LINE__, 3e9, FPU_WU, C5(0xffffffffb2d05e00ull), C5(0) },
    { __LINE__, 4294967295.0, FPU_WU, C5(ALL1), C5(0) },
    { __LINE__, 4294967295.5, FPU_WU, C5(ALL1), { NV, NX, NX, NV, NV } },
    { __LINE__, 4294967296.0, FPU_WU, C5(ALL1), C5(NV) },
    { __LINE__, 2147483648.0, FPU_WU, C5(W_MIN), C5(0) },
    { __LINE__, 1.5, FPU_WU, { 2, 1, 1, 2, 2 }, C5(NX) },
    /* fcvt.l.d */
    { __LINE__, 0x1p63, FPU_L, C5(L_MAX), C5(NV) },
    { __LINE__, 0x1.fffffffffffffp62, FPU_L, C5(0x7ffffffffffffc00ull), C5(0) },
    { __LINE__, -0x1p63, FPU_L, C5(L_MIN), C5(0) },
    { __LINE__, -0x1.0000000000001p63, FPU_L, C5(L_MIN), C5(NV) },
    { __LINE__, 2147483648.5, FPU_L, { 2147483648, 2147483648, 2147483648, 2147483649, 2147483649 },
      C5(NX) },
    { __LINE__, -4503599627370495.5, FPU_L,
      { -4503599627370496ull, -4503599627370495ull, -4503599627370496ull, -4503599627370495ull,
        -4503599627370496ull },
      C5(NX) },
    /* fcvt.lu.d */
    { __LINE__, 0x1p64, FPU_LU, C5(ALL1), C5(NV) },
    { __LINE__, 0x1.fffffffffffffp63, FPU_LU, C5(0xfffffffffffff800ull), C5(0) },
    { __LINE__, 0x1p63, FPU_LU, C5(L_MIN), C5(0) },
    { __LINE__, -0.5, FPU_LU, C5(0), { NX, NX, NV, NX, NV } },
    { __LINE__, -1.0, FPU_LU, C5(0), C5(NV) },
    { __LINE__, -0x1p70, FPU_LU, C5(0), C5(NV) },
    { __LINE__, 0.5, FPU_LU, { 0, 0, 0, 1, 1 }, C5(NX) },
};

static void conversions(void)
{
    static const char *const tn[] = { "W", "WU", "L", "LU" };
    for (size_t i = 0; i < sizeof cvt_cases / sizeof cvt_cases[0]; i++) {
        const struct cvt_case *c = &cvt_cases[i];
        for (unsigned rm = 0; rm < 5; rm++) {
            char what[96];
            snprintf(what, sizeof what, "fcvt.%s.d(%a) rm %u", tn[c->t], c->in, rm);
            fpu_set_flags(&E, 0);
            uint64_t r = fpu_to_int_d(&E, c->t, D(c->in), rm);
            fpu_sync(&E);
            check(c->line, what, r, c->want[rm], E.fflags, c->flags[rm]);
            /* the same value as a single, when it is one exactly */
            float f = (float)c->in;
            if ((double)f == c->in && f - f == 0) {
                snprintf(what, sizeof what, "fcvt.%s.s(%a) rm %u", tn[c->t], c->in, rm);
                fpu_set_flags(&E, 0);
                r = fpu_to_int_s(&E, c->t, S(f), rm);
                fpu_sync(&E);
                check(c->line, what, r, c->want[rm], E.fflags, c->flags[rm]);
            }
        }
    }
    /* specials, every type and mode */
    for (unsigned rm = 0; rm < 5; rm++) {
        T(fpu_to_int_d(&E, FPU_W, D_QNAN, rm), W_MAX, NV);
        T(fpu_to_int_d(&E, FPU_W, 0xfff8000000000000ull, rm), W_MAX, NV); /* -NaN too */
        T(fpu_to_int_d(&E, FPU_WU, D_SNAN, rm), ALL1, NV);
        T(fpu_to_int_d(&E, FPU_L, D_QNAN, rm), L_MAX, NV);
        T(fpu_to_int_d(&E, FPU_LU, D_QNAN, rm), ALL1, NV);
        T(fpu_to_int_d(&E, FPU_W, D_INF, rm), W_MAX, NV);
        T(fpu_to_int_d(&E, FPU_W, D_NINF, rm), W_MIN, NV);
        T(fpu_to_int_d(&E, FPU_WU, D_INF, rm), ALL1, NV);
        T(fpu_to_int_d(&E, FPU_WU, D_NINF, rm), 0, NV);
        T(fpu_to_int_d(&E, FPU_L, D_NINF, rm), L_MIN, NV);
        T(fpu_to_int_d(&E, FPU_LU, D_NINF, rm), 0, NV);
        T(fpu_to_int_s(&E, FPU_W, S_QNAN, rm), W_MAX, NV);
        T(fpu_to_int_s(&E, FPU_WU, S_NINF, rm), 0, NV);
        T(fpu_to_int_s(&E, FPU_L, S_NINF, rm), L_MIN, NV);
        T(fpu_to_int_s(&E, FPU_LU, S_INF, rm), ALL1, NV);
        T(fpu_to_int_s(&E, FPU_W, B(0x4f000000), rm), W_MAX, NV);          /* 2^31 */
        T(fpu_to_int_s(&E, FPU_W, B(0x4effffff), rm), 0x7fffff80ull, 0);   /* 2^31-128 */
        T(fpu_to_int_s(&E, FPU_W, B(0xcf000000), rm), W_MIN, 0);           /* -2^31 */
        T(fpu_to_int_s(&E, FPU_L, B(0x5f000000), rm), L_MAX, NV);          /* 2^63 */
        T(fpu_to_int_s(&E, FPU_L, B(0xdf000000), rm), L_MIN, 0);           /* -2^63 */
        T(fpu_to_int_s(&E, FPU_LU, B(0x5f800000), rm), ALL1, NV);          /* 2^64 */
        T(fpu_to_int_s(&E, FPU_LU, B(0x5f7fffff), rm), 0xffffff0000000000ull, 0);
        T(fpu_to_int_d(&E, FPU_LU, D_MINS, rm), rm == RUP, NX);
    }

    /* integer -> float */
    T(fpu_from_int_s(&E, FPU_W, 16777217, RNE), B(0x4b800000), NX);
    T(fpu_from_int_s(&E, FPU_W, 16777217, RMM), B(0x4b800001), NX);
    T(fpu_from_int_s(&E, FPU_W, 16777217, RUP), B(0x4b800001), NX);
    T(fpu_from_int_s(&E, FPU_W, 16777217, RTZ), B(0x4b800000), NX);
    T(fpu_from_int_s(&E, FPU_W, -16777217ull, RMM), B(0xcb800001), NX);
    T(fpu_from_int_s(&E, FPU_W, -16777217ull, RDN), B(0xcb800001), NX);
    T(fpu_from_int_s(&E, FPU_W, -16777217ull, RUP), B(0xcb800000), NX);
    T(fpu_from_int_s(&E, FPU_W, 16777219, RNE), B(0x4b800002), NX); /* tie, even is up */
    T(fpu_from_int_s(&E, FPU_W, 0x123456789abcdef0ull, RNE), S(-1698898192.0f), NX);
    T(fpu_from_int_s(&E, FPU_WU, 0x12345678ffffffffull, RNE), S(4294967296.0f), NX);
    T(fpu_from_int_s(&E, FPU_WU, 0x12345678ffffffffull, RTZ), B(0x4f7fffff), NX);
    T(fpu_from_int_s(&E, FPU_L, L_MIN, RNE), B(0xdf000000), 0);
    T(fpu_from_int_s(&E, FPU_LU, ALL1, RNE), B(0x5f800000), NX);
    T(fpu_from_int_s(&E, FPU_LU, ALL1, RTZ), B(0x5f7fffff), NX);
    T(fpu_from_int_s(&E, FPU_LU, ALL1, RMM), B(0x5f800000), NX);
    T(fpu_from_int_s(&E, FPU_LU, 0, RDN), S(0), 0);
    T(fpu_from_int_d(&E, FPU_L, 0x20000000000001ull, RNE), 0x4340000000000000ull, NX);
    T(fpu_from_int_d(&E, FPU_L, 0x20000000000001ull, RMM), 0x4340000000000001ull, NX);
    T(fpu_from_int_d(&E, FPU_L, -0x20000000000001ull, RMM), 0xc340000000000001ull, NX);
    T(fpu_from_int_d(&E, FPU_L, -0x20000000000001ull, RUP), 0xc340000000000000ull, NX);
    T(fpu_from_int_d(&E, FPU_LU, ALL1, RNE), D(0x1p64), NX);
    T(fpu_from_int_d(&E, FPU_LU, ALL1, RTZ), 0x43efffffffffffffull, NX);
    T(fpu_from_int_d(&E, FPU_LU, ALL1, RDN), 0x43efffffffffffffull, NX);
    T(fpu_from_int_d(&E, FPU_L, ALL1, RNE), D(-1), 0);
    T(fpu_from_int_d(&E, FPU_W, 0x00000000ffffffffull, RMM), D(-1), 0);
    T(fpu_from_int_d(&E, FPU_WU, 0xffffffff80000000ull, RDN), D(2147483648.0), 0);
    T(fpu_from_int_d(&E, FPU_W, 0x80000000ull, RNE), D(-2147483648.0), 0);

    /* double <-> single */
    T(fpu_d_to_s(&E, D(1 + 0x1p-24), RNE), S(1), NX);
    T(fpu_d_to_s(&E, D(1 + 0x1p-24), RMM), B(0x3f800001), NX);
    T(fpu_d_to_s(&E, D(-1 - 0x1p-24), RMM), B(0xbf800001), NX);
    T(fpu_d_to_s(&E, D(1 + 0x1p-23 + 0x1p-24), RNE), B(0x3f800002), NX);
    T(fpu_d_to_s(&E, D_MAX, RNE), S_INF, OF | NX);
    T(fpu_d_to_s(&E, D_MAX, RTZ), S_MAX, OF | NX);
    T(fpu_d_to_s(&E, D_MAX | D_NZERO, RUP), B(0xff7fffff), OF | NX);
    T(fpu_d_to_s(&E, D(0x1p-150), RNE), S(0), UF | NX);
    T(fpu_d_to_s(&E, D(0x1p-150), RMM), B(1), UF | NX);
    T(fpu_d_to_s(&E, D(0x1p-150), RUP), B(1), UF | NX);
    T(fpu_d_to_s(&E, D(0x1.8p-149), RNE), B(2), UF | NX);
    T(fpu_d_to_s(&E, D_MINS, RUP), B(1), UF | NX);
    T(fpu_d_to_s(&E, 0x8000000000000001ull, RNE), S_NZERO, UF | NX);
    T(fpu_d_to_s(&E, D_NINF, RMM), S_NINF, 0);
    T(fpu_d_to_s(&E, D_NZERO, RMM), S_NZERO, 0);
    T(fpu_s_to_d(&E, B(1)), D(0x1p-149), 0);
    T(fpu_s_to_d(&E, S_NINF), D_NINF, 0);
    T(fpu_s_to_d(&E, S(-0.1f)), D((double)-0.1f), 0);
}

static void rmm_ties(void)
{
    T(fpu_op2_d(&E, FPU_ADD, D(1), D(0x1p-53), RNE), D(1), NX);
    T(fpu_op2_d(&E, FPU_ADD, D(1), D(0x1p-53), RMM), 0x3ff0000000000001ull, NX);
    T(fpu_op2_d(&E, FPU_ADD, D(0x1p-53), D(1), RMM), 0x3ff0000000000001ull, NX);
    T(fpu_op2_d(&E, FPU_ADD, D(-1), D(-0x1p-53), RMM), 0xbff0000000000001ull, NX);
    T(fpu_op2_d(&E, FPU_SUB, D(1), D(-0x1p-53), RMM), 0x3ff0000000000001ull, NX);
    /* a tie where the even neighbour is the larger one: RNE == RMM */
    T(fpu_op2_d(&E, FPU_ADD, 0x3ff0000000000001ull, D(0x1p-53), RMM), 0x3ff0000000000002ull, NX);
    T(fpu_op2_d(&E, FPU_ADD, 0x3ff0000000000001ull, D(0x1p-53), RNE), 0x3ff0000000000002ull, NX);
    /* just above / below a tie */
    T(fpu_op2_d(&E, FPU_ADD, D(1), D(0x1.0000000000001p-53), RNE), 0x3ff0000000000001ull, NX);
    T(fpu_op2_d(&E, FPU_ADD, D(1), D(0x1.fffffffffffffp-54), RMM), D(1), NX);
    /* subtraction tie: 2 - 2^-53 is halfway between 2-2^-52 and 2 */
    T(fpu_op2_d(&E, FPU_SUB, D(2), D(0x1p-53), RMM), D(2), NX);
    T(fpu_op2_d(&E, FPU_SUB, D(2), D(0x1p-53), RTZ), 0x3fffffffffffffffull, NX);
    T(fpu_op2_s(&E, FPU_ADD, S(1), S(0x1p-24f), RMM), B(0x3f800001), NX);
    T(fpu_op2_s(&E, FPU_ADD, S(1), S(0x1p-24f), RNE), S(1), NX);
    /* 4097^2 = 2^24 + 2^13 + 1 needs 25 bits */
    T(fpu_op2_s(&E, FPU_MUL, S(4097), S(4097), RNE), B(0x4b801000), NX);
    T(fpu_op2_s(&E, FPU_MUL, S(4097), S(4097), RMM), B(0x4b801001), NX);
    T(fpu_op2_s(&E, FPU_MUL, S(-4097), S(4097), RMM), B(0xcb801001), NX);
    T(fpu_fma_s(&E, S(4097), S(4097), S(0), 0, 0, RMM), B(0x4b801001), NX);
    T(fpu_fma_s(&E, S(4097), S(4097), S(-16777216.0f), 0, 0, RMM), S(8193), 0);
    T(fpu_fma_d(&E, D(1), D(1), D(0x1p-53), 0, 0, RMM), 0x3ff0000000000001ull, NX);
    T(fpu_fma_d(&E, D(1), D(1), D(0x1p-53), 0, 0, RNE), D(1), NX);
    T(fpu_fma_d(&E, D(1), D(1), D(0x1p-53), 1, 1, RMM), 0xbff0000000000001ull, NX); /* fnmadd */
    /* (1+2^-52)^2 = 1 + 2^-51 + 2^-104: not a tie, just above one */
    T(fpu_fma_d(&E, 0x3ff0000000000001ull, 0x3ff0000000000001ull, D(0x1p-53), 0, 0, RNE),
      0x3ff0000000000003ull, NX);
    T(fpu_sqrt_d(&E, D(2), RMM), 0x3ff6a09e667f3bcdull, NX);
    T(fpu_sqrt_d(&E, D(2), RUP), 0x3ff6a09e667f3bcdull, NX);
    T(fpu_sqrt_d(&E, D(2), RTZ), 0x3ff6a09e667f3bccull, NX);
    T(fpu_op2_d(&E, FPU_DIV, D(1), D(3), RMM), 0x3fd5555555555555ull, NX);
    T(fpu_op2_d(&E, FPU_DIV, D(2), D(3), RMM), 0x3fe5555555555555ull, NX);
    T(fpu_op2_d(&E, FPU_DIV, D(2), D(3), RTZ), 0x3fe5555555555555ull, NX);
    T(fpu_op2_d(&E, FPU_DIV, D(1), D(3), RUP), 0x3fd5555555555556ull, NX);
}

static void zero_signs(void)
{
    for (unsigned rm = 0; rm < 5; rm++) {
        uint64_t z = rm == RDN ? D_NZERO : 0;
        T(fpu_op2_d(&E, FPU_ADD, D(1), D(-1), rm), z, 0);
        T(fpu_op2_d(&E, FPU_SUB, D(3), D(3), rm), z, 0);
        T(fpu_op2_d(&E, FPU_ADD, 0, D_NZERO, rm), z, 0);
        T(fpu_op2_d(&E, FPU_ADD, D_NZERO, D_NZERO, rm), D_NZERO, 0);
        T(fpu_op2_s(&E, FPU_SUB, S(0), S(0), rm), rm == RDN ? S_NZERO : S(0), 0);
        T(fpu_fma_d(&E, D(1), 0, D_NZERO, 0, 0, rm), z, 0);       /* +0 + -0 */
        T(fpu_fma_d(&E, D(-1), 0, D_NZERO, 0, 0, rm), D_NZERO, 0); /* -0 + -0 */
        T(fpu_fma_d(&E, D(1), 0, 0, 1, 1, rm), D_NZERO, 0);        /* fnmadd: -0 - 0 */
        T(fpu_fma_d(&E, D(1), 0, 0, 1, 0, rm), z, 0);              /* fnmsub: -0 + 0 */
        T(fpu_fma_d(&E, D(2), D(3), D(-6), 0, 0, rm), z, 0);
        T(fpu_fma_s(&E, S(2), S(3), S(6), 0, 1, rm), rm == RDN ? S_NZERO : S(0), 0);
        T(fpu_op2_d(&E, FPU_MUL, D_NZERO, D(5), rm), D_NZERO, 0);
        T(fpu_op2_d(&E, FPU_DIV, 0, D(-5), rm), D_NZERO, 0);
        T(fpu_fma_d(&E, D(1), D(1), D(-1), 0, 0, rm), z, 0);
    }
}

static void fclass(void)
{
    static const struct {
        uint64_t d;
        uint32_t s;
        unsigned bit;
    } c[] = {
        { D_NINF, 0xff800000, 0 },
        { 0xbff0000000000000ull, 0xbf800000, 1 },
        { 0x8000000000000001ull, 0x80000001, 2 },
        { 0x800fffffffffffffull, 0x807fffff, 2 },
        { D_NZERO, 0x80000000, 3 },
        { 0, 0, 4 },
        { D_MINS, 0x00000001, 5 },
        { D_MINN, 0x00800000, 6 },
        { D_MAX, 0x7f7fffff, 6 },
        { D_INF, 0x7f800000, 7 },
        { D_SNAN, 0x7f800001, 8 },
        { 0xfff7ffffffffffffull, 0xffbfffff, 8 },
        { D_QNAN, 0x7fc00000, 9 },
        { 0xffffffffffffffffull, 0xffffffff, 9 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        T(fpu_class_d(c[i].d), 1u << c[i].bit, 0);
        T(fpu_class_s(B(c[i].s)), 1u << c[i].bit, 0);
    }
}

static void value_cases(const char *m, unsigned priv)
{
    mode = m;
    fpu_init(&E);
    E.priv = priv;
    nan_boxing();
    canonical_nan();
    min_max();
    compare();
    div_zero_overflow_underflow();
    conversions();
    rmm_ties();
    zero_signs();
    fclass();
    fpu_sync(&E);
}

/* Flag bookkeeping and rounding-mode caching. */
static void state_cases(void)
{
    struct rv64_fpu a, b;
    mode = "state";
    fpu_init(&a);
    fpu_init(&b);

    fpu_set_flags(&a, 0xff);
    fpu_sync(&a);
    check(__LINE__, "fpu_set_flags masks to 5 bits", a.fflags, 0x1f, 0, 0);

    /* host flags pending from an op are dropped by fpu_set_flags */
    fpu_set_flags(&a, 0);
    (void)fpu_op2_d(&a, FPU_DIV, D(1), D(3), RNE);
    fpu_set_flags(&a, FPU_DZ);
    fpu_sync(&a);
    check(__LINE__, "set_flags discards pending host flags", a.fflags, FPU_DZ, 0, 0);

    /* lazy accumulation across host and software ops */
    fpu_set_flags(&a, 0);
    (void)fpu_op2_d(&a, FPU_DIV, D(1), D(3), RNE);         /* NX (host) */
    (void)fpu_op2_d(&a, FPU_DIV, D(1), 0, RUP);            /* DZ (host) */
    (void)fpu_op2_d(&a, FPU_MUL, D_MINS, D(0.5), RMM);     /* UF|NX (soft) */
    (void)fpu_to_int_d(&a, FPU_W, D(1e10), RTZ);           /* NV (soft) */
    fpu_sync(&a);
    check(__LINE__, "lazy accumulation", a.fflags, FPU_NX | FPU_DZ | FPU_UF | FPU_NV, 0, 0);
    fpu_sync(&a);
    check(__LINE__, "second sync changes nothing", a.fflags,
          FPU_NX | FPU_DZ | FPU_UF | FPU_NV, 0, 0);

    /* two harts on one thread: fpu_sync before switching keeps flags apart */
    fpu_set_flags(&a, 0);
    fpu_set_flags(&b, 0);
    (void)fpu_op2_d(&a, FPU_ADD, D(1), D(0x1p-60), RNE); /* NX for a */
    fpu_sync(&a);
    (void)fpu_op2_d(&b, FPU_ADD, D(1), D(1), RNE);       /* exact for b */
    fpu_sync(&b);
    check(__LINE__, "hart a flags", a.fflags, FPU_NX, 0, 0);
    check(__LINE__, "hart b flags", b.fflags, 0, 0, 0);

    /* rounding-mode cache: a leaves the host in RUP, b must still get RNE */
    uint64_t r = fpu_op2_d(&a, FPU_DIV, D(1), D(3), RUP);
    check(__LINE__, "a 1/3 RUP", r, 0x3fd5555555555556ull, 0, 0);
    fpu_sync(&a);
    r = fpu_op2_d(&b, FPU_DIV, D(1), D(3), RNE);
    check(__LINE__, "b 1/3 RNE after a used RUP", r, 0x3fd5555555555555ull, 0, 0);
    fpu_sync(&b);

    /* switching modes back and forth on one hart */
    static const uint64_t third[5] = { 0x3fd5555555555555ull, 0x3fd5555555555555ull,
                                       0x3fd5555555555555ull, 0x3fd5555555555556ull,
                                       0x3fd5555555555555ull };
    static const uint64_t mthird[5] = { 0xbfd5555555555555ull, 0xbfd5555555555555ull,
                                        0xbfd5555555555556ull, 0xbfd5555555555555ull,
                                        0xbfd5555555555555ull };
    static const unsigned seq[] = { 3, 0, 2, 2, 4, 1, 3, 4, 0, 1, 2, 3 };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        unsigned rm = seq[i];
        r = fpu_op2_d(&a, FPU_DIV, D(1), D(3), rm);
        check(__LINE__, "1/3 mode sequence", r, third[rm], 0, 0);
        r = fpu_op2_d(&a, FPU_DIV, D(-1), D(3), rm);
        check(__LINE__, "-1/3 mode sequence", r, mthird[rm], 0, 0);
        r = fpu_op2_s(&a, FPU_DIV, S(1), S(3), rm);
        /* 1/3 = 1.0101...b * 2^-2: the float rounds up in RNE, RUP, RMM */
        int up = rm == RNE || rm == RUP || rm == RMM;
        check(__LINE__, "1/3f mode sequence", r, B(0x3eaaaaaa + up), 0, 0);
    }
    fpu_sync(&a);
    fpu_sync(&b);
}

int main(void)
{
    value_cases("host", 0);
    value_cases("soft", PRIV_SOFT);
    state_cases();
    printf("test_fpu: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
