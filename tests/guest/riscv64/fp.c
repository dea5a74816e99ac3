/* fp: F/D arithmetic, rounding, exception flags, conversions, NaN boxing,
 * canonical NaNs, fcsr/frm, and mstatus.FS (Off traps, Dirty tracking). */
#include "rt.h"

#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

/* doubles */
#define D_ZERO 0x0000000000000000UL
#define D_NZERO 0x8000000000000000UL
#define D_ONE 0x3ff0000000000000UL
#define D_NONE 0xbff0000000000000UL
#define D_TWO 0x4000000000000000UL
#define D_THREE 0x4008000000000000UL
#define D_FOUR 0x4010000000000000UL
#define D_HALF 0x3fe0000000000000UL
#define D_PINF 0x7ff0000000000000UL
#define D_NINF 0xfff0000000000000UL
#define D_CNAN 0x7ff8000000000000UL
#define D_SNAN 0x7ff0000000000001UL
#define D_QNANP 0x7ff8000000000123UL
#define D_MAX 0x7fefffffffffffffUL
#define D_MIN 0x0010000000000000UL
/* singles (NaN-boxed when loaded with fmv.w.x) */
#define S_ZERO 0x00000000U
#define S_ONE 0x3f800000U
#define S_NONE 0xbf800000U
#define S_TWO 0x40000000U
#define S_THREE 0x40400000U
#define S_FOUR 0x40800000U
#define S_CNAN 0x7fc00000U
#define S_SNAN 0x7f800001U
#define BOX(s) (0xffffffff00000000UL | (u32)(s))

/* two double operands in ft0/ft1, result ft2 -> bits */
#define FD2(insn, a, b)                                                              \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\t" insn "\n\t"        \
                         "fmv.x.d %0, ft2"                                           \
                         : "=r"(__r) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); \
        __r;                                                                         \
    })
/* three operands in ft0/ft1/ft2, result ft3 */
#define FD3(insn, a, b, c)                                                           \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\tfmv.d.x ft2, %3\n\t" \
                         insn "\n\tfmv.x.d %0, ft3"                                  \
                         : "=r"(__r) : "r"((u64)(a)), "r"((u64)(b)), "r"((u64)(c))   \
                         : "ft0", "ft1", "ft2", "ft3");                              \
        __r;                                                                         \
    })
/* single operands loaded NaN-boxed with fmv.w.x; full 64-bit result register */
#define FS2(insn, a, b)                                                              \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.w.x ft1, %2\n\t" insn "\n\t"        \
                         "fmv.x.d %0, ft2"                                           \
                         : "=r"(__r) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); \
        __r;                                                                         \
    })
#define FS3(insn, a, b, c)                                                           \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.w.x ft1, %2\n\tfmv.w.x ft2, %3\n\t" \
                         insn "\n\tfmv.x.d %0, ft3"                                  \
                         : "=r"(__r) : "r"((u64)(a)), "r"((u64)(b)), "r"((u64)(c))   \
                         : "ft0", "ft1", "ft2", "ft3");                              \
        __r;                                                                         \
    })
/* raw 64-bit register contents in ft0/ft1, integer result in %0 */
#define FXI(insn, a, b)                                                              \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\t" insn                \
                         : "=r"(__r) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1"); \
        __r;                                                                         \
    })
/* single operand %1 (boxed by fmv.w.x) in ft0, integer result in %0 */
#define FSXI(insn, a)                                                                \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile("fmv.w.x ft0, %1\n\t" insn : "=r"(__r) : "r"((u64)(a)) : "ft0"); \
        __r;                                                                         \
    })
/* integer operand %1, FP result ft2 */
#define FIX(insn, a)                                                                 \
    ({                                                                               \
        u64 __r;                                                                     \
        __asm__ volatile(insn "\n\tfmv.x.d %0, ft2" : "=r"(__r) : "r"((u64)(a)) : "ft2"); \
        __r;                                                                         \
    })

static inline void clr_flags(void) { __asm__ volatile("csrw fflags, zero" ::: "memory"); }

#define T_F(expr, e, ef)                                                                   \
    do {                                                                                   \
        clr_flags();                                                                       \
        u64 __v = (expr);                                                                  \
        u64 __f = csr_read(fflags);                                                        \
        if (__v != (u64)(e) || __f != (u64)(ef))                                           \
            fail("%s:%d: %s = %lx flags %lx, expected %lx flags %lx", __FILE_NAME__,       \
                 __LINE__, #expr, __v, __f, (u64)(e), (u64)(ef));                          \
        checks_passed++;                                                                   \
    } while (0)

/* ------------------------------------------------------------------ arithmetic */
static void test_arith_d(void)
{
    T_F(FD2("fadd.d ft2, ft0, ft1", 0x3ff8000000000000UL, 0x4002000000000000UL),
        0x400e000000000000UL, 0);
    T_F(FD2("fsub.d ft2, ft0, ft1", D_ONE, D_THREE), 0xc000000000000000UL, 0);
    T_F(FD2("fmul.d ft2, ft0, ft1", 0x3ff8000000000000UL, 0xc010000000000000UL),
        0xc018000000000000UL, 0);
    T_F(FD2("fdiv.d ft2, ft0, ft1", D_ONE, D_THREE), 0x3fd5555555555555UL, NX);
    T_F(FD2("fsqrt.d ft2, ft0", D_TWO, 0), 0x3ff6a09e667f3bcdUL, NX);
    T_F(FD2("fsqrt.d ft2, ft0", D_FOUR, 0), D_TWO, 0);
    T_F(FD2("fsqrt.d ft2, ft0", D_NZERO, 0), D_NZERO, 0);
    /* exceptional cases */
    T_F(FD2("fdiv.d ft2, ft0, ft1", D_ONE, D_ZERO), D_PINF, DZ);
    T_F(FD2("fdiv.d ft2, ft0, ft1", D_NONE, D_ZERO), D_NINF, DZ);
    T_F(FD2("fdiv.d ft2, ft0, ft1", D_ZERO, D_ZERO), D_CNAN, NV);
    T_F(FD2("fsqrt.d ft2, ft0", D_NONE, 0), D_CNAN, NV);
    T_F(FD2("fmul.d ft2, ft0, ft1", D_PINF, D_ZERO), D_CNAN, NV);
    T_F(FD2("fadd.d ft2, ft0, ft1", D_PINF, D_NINF), D_CNAN, NV);
    T_F(FD2("fadd.d ft2, ft0, ft1", D_QNANP, D_ONE), D_CNAN, 0); /* no payload propagation */
    T_F(FD2("fadd.d ft2, ft0, ft1", D_SNAN, D_ONE), D_CNAN, NV);
    T_F(FD2("fmul.d ft2, ft0, ft1", D_MAX, D_TWO), D_PINF, OF | NX);
    T_F(FD2("fmul.d ft2, ft0, ft1", D_MIN, 0x3c30000000000000UL), D_ZERO, UF | NX);
    T_F(FD2("fmul.d ft2, ft0, ft1", D_MIN, D_HALF), 0x0008000000000000UL, 0); /* exact subnormal */
    T_F(FD2("fadd.d ft2, ft0, ft1", D_ONE, D_NONE), D_ZERO, 0);
    T_F(FD2("fadd.d ft2, ft0, ft1, rdn", D_ONE, D_NONE), D_NZERO, 0); /* x - x = -0 in RDN */
    /* fused multiply-add: a*b - 1 is exact only when fused */
    u64 a = 0x3ff0000000400000UL, b = 0x3fefffffff800000UL; /* 1 + 2^-30, 1 - 2^-30 */
    T_F(FD3("fmsub.d ft3, ft0, ft1, ft2", a, b, D_ONE), 0xbc30000000000000UL, 0);
    T_F(FD2("fmul.d ft2, ft0, ft1", a, b), D_ONE, NX);
    T_F(FD3("fmadd.d ft3, ft0, ft1, ft2", D_TWO, D_THREE, D_FOUR), 0x4024000000000000UL, 0);
    T_F(FD3("fnmadd.d ft3, ft0, ft1, ft2", D_TWO, D_THREE, D_FOUR), 0xc024000000000000UL, 0);
    T_F(FD3("fnmsub.d ft3, ft0, ft1, ft2", D_TWO, D_THREE, D_FOUR), 0xc000000000000000UL, 0);
    T_F(FD3("fmadd.d ft3, ft0, ft1, ft2", D_PINF, D_ZERO, D_QNANP), D_CNAN, NV);
}

static void test_arith_s(void)
{
    T_F(FS2("fadd.s ft2, ft0, ft1", 0x3fc00000, 0x40100000), BOX(0x40700000), 0);
    T_F(FS2("fdiv.s ft2, ft0, ft1", S_ONE, S_THREE), BOX(0x3eaaaaab), NX);
    T_F(FS2("fsqrt.s ft2, ft0", S_TWO, 0), BOX(0x3fb504f3), NX);
    T_F(FS2("fdiv.s ft2, ft0, ft1", S_ZERO, S_ZERO), BOX(S_CNAN), NV);
    T_F(FS2("fdiv.s ft2, ft0, ft1", S_ONE, S_ZERO), BOX(0x7f800000), DZ);
    T_F(FS2("fmul.s ft2, ft0, ft1", 0x7f7fffff, S_TWO), BOX(0x7f800000), OF | NX);
    T_F(FS2("fadd.s ft2, ft0, ft1", S_SNAN, S_ONE), BOX(S_CNAN), NV);
    T_F(FS2("fsub.s ft2, ft0, ft1", S_ONE, S_FOUR), BOX(0xc0400000), 0);
    T_F(FS3("fmadd.s ft3, ft0, ft1, ft2", S_TWO, S_THREE, S_FOUR), BOX(0x41200000), 0);
    T_F(FS3("fnmsub.s ft3, ft0, ft1, ft2", S_TWO, S_THREE, S_FOUR), BOX(0xc0000000), 0);
    /* fused: (1 + 2^-12)(1 - 2^-12) - 1 = -2^-24 */
    T_F(FS3("fmsub.s ft3, ft0, ft1, ft2", 0x3f800800, 0x3f7ff000, S_ONE), BOX(0xb3800000), 0);
}

/* ------------------------------------------------------------------ conversions */
static void test_convert(void)
{
    u64 m37 = 0xc00d99999999999aUL; /* -3.7 */
    T_F(FXI("fcvt.w.d %0, ft0, rtz", m37, 0), -3UL, NX);
    T_F(FXI("fcvt.w.d %0, ft0, rne", m37, 0), -4UL, NX);
    T_F(FXI("fcvt.w.d %0, ft0, rdn", m37, 0), -4UL, NX);
    T_F(FXI("fcvt.w.d %0, ft0, rup", m37, 0), -3UL, NX);
    T_F(FXI("fcvt.w.d %0, ft0, rne", 0xc004000000000000UL, 0), -2UL, NX); /* -2.5 */
    T_F(FXI("fcvt.w.d %0, ft0, rmm", 0xc004000000000000UL, 0), -3UL, NX);
    T_F(FXI("fcvt.w.d %0, ft0, rne", 0x4004000000000000UL, 0), 2, NX);    /* 2.5 */
    T_F(FXI("fcvt.w.d %0, ft0, rne", 0x400c000000000000UL, 0), 4, NX);    /* 3.5 */
    T_F(FXI("fcvt.w.d %0, ft0, rtz", D_THREE, 0), 3, 0);
    T_F(FXI("fcvt.w.d %0, ft0, rtz", D_CNAN, 0), 0x7fffffff, NV);
    T_F(FXI("fcvt.w.d %0, ft0, rtz", 0x4202a05f20000000UL, 0), 0x7fffffff, NV);  /* 1e10 */
    T_F(FXI("fcvt.w.d %0, ft0, rtz", 0xc202a05f20000000UL, 0), 0xffffffff80000000UL, NV);
    T_F(FXI("fcvt.w.d %0, ft0, rtz", D_NINF, 0), 0xffffffff80000000UL, NV);
    T_F(FXI("fcvt.wu.d %0, ft0, rtz", D_NONE, 0), 0, NV);
    T_F(FXI("fcvt.wu.d %0, ft0, rtz", 0xbfe0000000000000UL, 0), 0, NX); /* -0.5 -> 0 */
    T_F(FXI("fcvt.wu.d %0, ft0, rtz", 0x41efffffffe00000UL, 0), 0xffffffffffffffffUL, 0);
    T_F(FXI("fcvt.wu.d %0, ft0, rtz", D_CNAN, 0), 0xffffffffffffffffUL, NV);
    T_F(FXI("fcvt.l.d %0, ft0, rtz", 0xc3e158e460913d00UL, 0), 0x8000000000000000UL, NV);
    T_F(FXI("fcvt.l.d %0, ft0, rtz", 0x43e0000000000000UL, 0), 0x7fffffffffffffffUL, NV);
    T_F(FXI("fcvt.l.d %0, ft0, rtz", m37, 0), -3UL, NX);
    T_F(FXI("fcvt.l.d %0, ft0, rtz", D_CNAN, 0), 0x7fffffffffffffffUL, NV);
    T_F(FXI("fcvt.lu.d %0, ft0, rtz", 0x43e0000000000000UL, 0), 0x8000000000000000UL, 0);
    T_F(FXI("fcvt.lu.d %0, ft0, rtz", D_NINF, 0), 0, NV);
    T_F(FIX("fcvt.d.l ft2, %1", -1L), D_NONE, 0);
    T_F(FIX("fcvt.d.l ft2, %1", 0x7fffffffffffffffUL), 0x43e0000000000000UL, NX);
    T_F(FIX("fcvt.d.lu ft2, %1", 0xffffffffffffffffUL), 0x43f0000000000000UL, NX);
    T_F(FIX("fcvt.d.w ft2, %1", 0x1234567880000000UL), 0xc1e0000000000000UL, 0);
    T_F(FIX("fcvt.d.wu ft2, %1", 0xffffffffffffffffUL), 0x41efffffffe00000UL, 0);
    T_F(FIX("fcvt.s.w ft2, %1", 16777217), BOX(0x4b800000), NX);
    T_F(FIX("fcvt.s.l ft2, %1", -1L), BOX(S_NONE), 0);
    /* between formats */
    T_F(FD2("fcvt.s.d ft2, ft0", 0x3fd5555555555555UL, 0), BOX(0x3eaaaaab), NX);
    T_F(FD2("fcvt.s.d ft2, ft0", 0x7e37e43c8800759cUL, 0), BOX(0x7f800000), OF | NX); /* 1e300 */
    T_F(FD2("fcvt.s.d ft2, ft0", D_QNANP, 0), BOX(S_CNAN), 0);
    T_F(FS2("fcvt.d.s ft2, ft0", 0x3dcccccd, 0), 0x3fb99999a0000000UL, 0); /* 0.1f exactly */
    T_F(FS2("fcvt.d.s ft2, ft0", S_SNAN, 0), D_CNAN, NV);
    T_F(FSXI("fcvt.w.s %0, ft0, rtz", 0xc0600000U), -3UL, NX); /* -3.5f */
    T_F(FSXI("fcvt.wu.s %0, ft0, rtz", 0x4f800000U), 0xffffffffffffffffUL, NV); /* 2^32 */
    T_F(FSXI("fcvt.lu.s %0, ft0, rtz", 0x4f800000U), 0x100000000UL, 0);
}

/* ------------------------------------------------------------------ fcsr */
u64 fp_illegal_rm(void);
u64 fadd_dyn(void);

static void test_fcsr(void)
{
    csr_write(fcsr, 0xff);
    CHECK_EQ(csr_read(fcsr), 0xff);
    CHECK_EQ(csr_read(fflags), 0x1f);
    CHECK_EQ(csr_read(frm), 7);
    csr_write(fcsr, 0xfff); /* upper bits are reserved (read as zero) */
    CHECK_EQ(csr_read(fcsr), 0xff);
    csr_write(frm, 2);
    CHECK_EQ(csr_read(fcsr), (2 << 5) | 0x1f);
    csr_write(fflags, 0x3);
    CHECK_EQ(csr_read(fcsr), (2 << 5) | 0x3);
    csr_write(fcsr, 0);
    /* flags accumulate */
    clr_flags();
    FD2("fdiv.d ft2, ft0, ft1", D_ONE, D_ZERO);
    FD2("fdiv.d ft2, ft0, ft1", D_ONE, D_THREE);
    CHECK_EQ(csr_read(fflags), DZ | NX);
    /* dynamic rounding mode */
    struct {
        u64 frm, a, expect;
    } rm[] = {
        { 0, D_ONE, 0x3fd5555555555555UL },  { 1, D_ONE, 0x3fd5555555555555UL },
        { 2, D_ONE, 0x3fd5555555555555UL },  { 3, D_ONE, 0x3fd5555555555556UL },
        { 4, D_ONE, 0x3fd5555555555555UL },  { 2, D_NONE, 0xbfd5555555555556UL },
        { 3, D_NONE, 0xbfd5555555555555UL }, { 1, D_NONE, 0xbfd5555555555555UL },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(rm); i++) {
        csr_write(frm, rm[i].frm);
        u64 r = FD2("fdiv.d ft2, ft0, ft1", rm[i].a, D_THREE);
        if (r != rm[i].expect)
            fail("fdiv.d dyn frm=%lu: %lx, expected %lx", rm[i].frm, r, rm[i].expect);
        checks_passed++;
    }
    /* static rm overrides frm */
    csr_write(frm, 3);
    CHECK_EQ(FD2("fdiv.d ft2, ft0, ft1, rne", D_ONE, D_THREE), 0x3fd5555555555555UL);
    /* invalid frm: dynamic-rm instructions are illegal, static ones fine */
    for (u64 bad = 5; bad <= 7; bad++) {
        csr_write(frm, bad);
        trap_expect();
        fadd_dyn();
        CHECK_EQ(trap_rec.taken, 1);
        CHECK_EQ(trap_rec.cause, EXC_ILLEGAL);
        CHECK_EQ(trap_rec.epc, (u64)fadd_dyn);
    }
    trap_expect();
    CHECK_EQ(FD2("fadd.d ft2, ft0, ft1, rne", D_ONE, D_ONE), D_TWO);
    CHECK_EQ(FD2("fsgnjn.d ft2, ft0, ft1", D_ONE, D_ONE), D_NONE);
    CHECK_EQ(trap_rec.taken, 0);
    trap_disarm();
    csr_write(frm, 0);
    /* reserved static rm encodings are illegal */
    trap_expect();
    fp_illegal_rm();
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_ILLEGAL);
    CHECK(trap_rec.tval == 0 || trap_rec.tval == 0x02105153);
    csr_write(fcsr, 0);
}

/* ------------------------------------------------------------------ NaN boxing */
static void test_nanbox(void)
{
    static u32 s_mem[2] __attribute__((aligned(8)));
    static u64 d_mem;
    u64 r;
    s_mem[0] = S_ONE;
    s_mem[1] = 0x12345678;
    /* flw boxes */
    __asm__ volatile("flw ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(s_mem) : "ft0");
    CHECK_EQ(r, BOX(S_ONE));
    /* fmv.w.x boxes */
    __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(0xaaaaaaaa12345678UL)
                     : "ft0");
    CHECK_EQ(r, BOX(0x12345678));
    /* an improperly boxed single is the canonical NaN to arithmetic */
    T_F(FD2("fadd.s ft2, ft0, ft1", 0x000000003f800000UL, BOX(S_ONE)), BOX(S_CNAN), 0);
    T_F(FD2("fadd.s ft2, ft0, ft1", BOX(S_ONE), 0xfffffffe3f800000UL), BOX(S_CNAN), 0);
    T_F(FD2("fmul.s ft2, ft0, ft1", BOX(S_TWO), BOX(S_TWO)), BOX(S_FOUR), 0); /* boxed: fine */
    T_F(FD2("fcvt.d.s ft2, ft0", 0x000000003f800000UL, 0), D_CNAN, 0);
    T_F(FXI("fclass.s %0, ft0", 0x000000003f800000UL, 0), 1 << 9, 0);
    T_F(FXI("feq.s %0, ft0, ft1", 0x000000003f800000UL, 0x000000003f800000UL), 0, 0);
    T_F(FXI("flt.s %0, ft0, ft1", 0x000000003f800000UL, BOX(S_ONE)), 0, NV);
    T_F(FD2("fsgnj.s ft2, ft0, ft1", 0x000000003f800000UL, BOX(S_NONE)), BOX(0xffc00000), 0);
    /* transfers don't check: fmv.x.w and fsw move the low 32 bits */
    T_F(FXI("fmv.x.w %0, ft0", 0x12345678bf800000UL, 0), 0xffffffffbf800000UL, 0);
    T_F(FXI("fmv.x.w %0, ft0", 0xffffffff3f800000UL, 0), 0x3f800000UL, 0);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfsw ft0, 0(%0)" : : "r"(s_mem), "r"(0x12345678bf800000UL)
                     : "ft0", "memory");
    CHECK_EQ(s_mem[0], S_NONE);
    CHECK_EQ(s_mem[1], 0x12345678);
    /* fld/fsd move all 64 bits */
    d_mem = 0x0000000012345678UL;
    __asm__ volatile("fld ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(&d_mem) : "ft0");
    CHECK_EQ(r, 0x0000000012345678UL);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfsd ft0, 0(%0)" : : "r"(&d_mem), "r"(D_SNAN)
                     : "ft0", "memory");
    CHECK_EQ(d_mem, D_SNAN); /* sNaN payload preserved by transfers */
    /* fmv.x.w sign-extends */
    T_F(FSXI("fmv.x.w %0, ft0", 0x80000000U), 0xffffffff80000000UL, 0);
}

/* ------------------------------------------------------------------ compare, min/max, class, sign */
static void test_misc_ops(void)
{
    T_F(FD2("fmin.d ft2, ft0, ft1", D_QNANP, D_ONE), D_ONE, 0);
    T_F(FD2("fmin.d ft2, ft0, ft1", D_SNAN, D_ONE), D_ONE, NV);
    T_F(FD2("fmax.d ft2, ft0, ft1", D_TWO, D_QNANP), D_TWO, 0);
    T_F(FD2("fmin.d ft2, ft0, ft1", D_QNANP, D_CNAN), D_CNAN, 0);
    T_F(FD2("fmin.d ft2, ft0, ft1", D_NZERO, D_ZERO), D_NZERO, 0);
    T_F(FD2("fmin.d ft2, ft0, ft1", D_ZERO, D_NZERO), D_NZERO, 0);
    T_F(FD2("fmax.d ft2, ft0, ft1", D_NZERO, D_ZERO), D_ZERO, 0);
    T_F(FD2("fmax.d ft2, ft0, ft1", D_NINF, D_NONE), D_NONE, 0);
    T_F(FS2("fmin.s ft2, ft0, ft1", S_CNAN, S_TWO), BOX(S_TWO), 0);
    T_F(FS2("fmax.s ft2, ft0, ft1", S_SNAN, S_SNAN), BOX(S_CNAN), NV);

    T_F(FXI("feq.d %0, ft0, ft1", D_CNAN, D_CNAN), 0, 0);
    T_F(FXI("feq.d %0, ft0, ft1", D_SNAN, D_ONE), 0, NV);
    T_F(FXI("feq.d %0, ft0, ft1", D_NZERO, D_ZERO), 1, 0);
    T_F(FXI("flt.d %0, ft0, ft1", D_CNAN, D_ONE), 0, NV);
    T_F(FXI("flt.d %0, ft0, ft1", D_NZERO, D_ZERO), 0, 0);
    T_F(FXI("flt.d %0, ft0, ft1", D_NINF, D_MAX), 1, 0);
    T_F(FXI("fle.d %0, ft0, ft1", D_ONE, D_ONE), 1, 0);
    T_F(FXI("fle.d %0, ft0, ft1", D_TWO, D_ONE), 0, 0);
    T_F(FXI("fle.d %0, ft0, ft1", D_ONE, D_QNANP), 0, NV);

    static const struct {
        u64 v, cls;
    } cl[] = {
        { D_NINF, 1 << 0 },  { D_NONE, 1 << 1 }, { 0x8000000000000001UL, 1 << 2 },
        { D_NZERO, 1 << 3 }, { D_ZERO, 1 << 4 }, { 0x000fffffffffffffUL, 1 << 5 },
        { D_ONE, 1 << 6 },   { D_PINF, 1 << 7 }, { D_SNAN, 1 << 8 },
        { D_CNAN, 1 << 9 },  { D_QNANP, 1 << 9 }, { 0xfff8000000000000UL, 1 << 9 },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(cl); i++) {
        u64 r = FXI("fclass.d %0, ft0", cl[i].v, 0);
        if (r != cl[i].cls)
            fail("fclass.d %lx = %lx, expected %lx", cl[i].v, r, cl[i].cls);
        checks_passed++;
    }
    T_F(FXI("fclass.s %0, ft0", BOX(0x80000001), 0), 1 << 2, 0);
    T_F(FXI("fclass.s %0, ft0", BOX(S_SNAN), 0), 1 << 8, 0);

    T_F(FD2("fsgnj.d ft2, ft0, ft1", D_QNANP, D_NONE), 0xfff8000000000123UL, 0);
    T_F(FD2("fsgnjn.d ft2, ft0, ft1", D_ONE, D_ONE), D_NONE, 0);
    T_F(FD2("fsgnjx.d ft2, ft0, ft1", 0xc000000000000000UL, D_NONE), D_TWO, 0);
    T_F(FD2("fsgnjx.d ft2, ft0, ft1", D_SNAN, D_ONE), D_SNAN, 0); /* no NV, no canonicalization */
    T_F(FS2("fsgnjn.s ft2, ft0, ft1", S_ONE, S_NONE), BOX(S_ONE), 0);
}

/* ------------------------------------------------------------------ compiled FP code */
static double horner(const double *c, int n, double x)
{
    double r = 0;
    for (int i = 0; i < n; i++)
        r = r * x + c[i];
    return r;
}

static void test_compiled(void)
{
    static const double c[] = { 1.0, -2.0, 0.5, 3.0 };
    volatile double x = 2.0;
    double r = horner(c, 4, x);      /* 8 - 8 + 1 + 3 = 4 */
    CHECK(r == 4.0);
    volatile float f = 1.5f;
    float g = f * f + f;              /* 3.75 */
    CHECK(g == 3.75f);
    volatile double big = 1e308;
    CHECK(big * 10.0 > 1e308);        /* inf */
    volatile long n = -7;
    CHECK((double)n / 2.0 == -3.5);
    CHECK((long)(double)n == -7);
}

/* ------------------------------------------------------------------ mstatus.FS */
u64 fp_add_probe(void), fp_fld_probe(u64 a), fp_fmvxd_probe(void), fp_frflags_probe(void);
u64 fp_fsd_probe(u64 a), fp_fmvdx_probe(void), fp_fsflags_probe(void);

#define FS_OF(s) (((s) >> 13) & 3)
static void set_fs(u64 fs)
{
    csr_clear(mstatus, MSTATUS_FS);
    csr_set(mstatus, fs << 13);
}

#define EXPECT_FP_ILLEGAL(call, fn)                     \
    do {                                                \
        trap_expect();                                  \
        (void)(call);                                   \
        CHECK_EQ(trap_rec.taken, 1);                    \
        CHECK_EQ(trap_rec.cause, EXC_ILLEGAL);          \
        CHECK_EQ(trap_rec.epc, (u64)(fn));              \
    } while (0)

static void test_fs(void)
{
    static u64 mem = D_ONE;
    __asm__ volatile("fmv.d.x ft5, %0" : : "r"(0x0123456789abcdefUL) : "ft5");
    set_fs(0);
    u64 st = csr_read(mstatus);
    CHECK_EQ(FS_OF(st), 0);
    CHECK_EQ(st & MSTATUS_SD, 0);
    CHECK_EQ(FS_OF(csr_read(sstatus)), 0);
    EXPECT_FP_ILLEGAL(fp_add_probe(), fp_add_probe);
    CHECK(trap_rec.tval == 0 || trap_rec.tval == 0x021071d3); /* fadd.d ft3, ft0, ft1, dyn */
    EXPECT_FP_ILLEGAL(fp_fld_probe((u64)&mem), fp_fld_probe);
    EXPECT_FP_ILLEGAL(fp_fsd_probe((u64)&mem), fp_fsd_probe);
    EXPECT_FP_ILLEGAL(fp_fmvxd_probe(), fp_fmvxd_probe);
    EXPECT_FP_ILLEGAL(fp_fmvdx_probe(), fp_fmvdx_probe);
    EXPECT_FP_ILLEGAL(fp_frflags_probe(), fp_frflags_probe);
    EXPECT_FP_ILLEGAL(fp_fsflags_probe(), fp_fsflags_probe);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 0); /* a trapping FP instruction doesn't change FS */
    /* also from S and U */
    EXPECT_FP_ILLEGAL(run_lower(PRV_S, fp_add_probe, 0, 0), fp_add_probe);
    CHECK_EQ((trap_rec.status >> 11) & 3, PRV_S);
    EXPECT_FP_ILLEGAL(run_lower(PRV_U, fp_fmvxd_probe, 0, 0), fp_fmvxd_probe);
    CHECK_EQ((trap_rec.status >> 11) & 3, PRV_U);

    /* Initial -> Dirty on an FP register write */
    set_fs(1);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 1);
    CHECK_EQ(csr_read(mstatus) & MSTATUS_SD, 0);
    fp_fmvdx_probe();
    st = csr_read(mstatus);
    CHECK_EQ(FS_OF(st), 3);
    CHECK_EQ(st & MSTATUS_SD, MSTATUS_SD);
    CHECK_EQ(FS_OF(csr_read(sstatus)), 3);
    CHECK_EQ(csr_read(sstatus) & MSTATUS_SD, MSTATUS_SD);
    /* Clean -> Dirty on arithmetic, on a load, and on an fcsr write */
    set_fs(2);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 2);
    fp_add_probe();
    CHECK_EQ(FS_OF(csr_read(mstatus)), 3);
    set_fs(2);
    fp_fld_probe((u64)&mem);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 3);
    set_fs(2);
    fp_fsflags_probe();
    CHECK_EQ(FS_OF(csr_read(mstatus)), 3);
    /* the FP registers survived FS = Off */
    set_fs(3);
    u64 r;
    __asm__ volatile("fmv.x.d %0, ft5" : "=r"(r));
    CHECK_EQ(r, 0x0123456789abcdefUL);
    csr_write(fcsr, 0);
    /* S-mode can switch FS through sstatus */
    csr_clear(sstatus, MSTATUS_FS);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 0);
    csr_set(sstatus, MSTATUS_FS_INITIAL);
    CHECK_EQ(FS_OF(csr_read(mstatus)), 1);
    set_fs(3);
}

int main(void)
{
    csr_write(fcsr, 0);
    kprintf("fp: double arithmetic\n");
    test_arith_d();
    kprintf("fp: single arithmetic\n");
    test_arith_s();
    kprintf("fp: conversions\n");
    test_convert();
    kprintf("fp: fcsr and rounding modes\n");
    test_fcsr();
    kprintf("fp: NaN boxing\n");
    test_nanbox();
    kprintf("fp: compare/min/max/class/sign\n");
    test_misc_ops();
    kprintf("fp: compiled code\n");
    test_compiled();
    kprintf("fp: mstatus.FS\n");
    test_fs();
    return 0;
}
