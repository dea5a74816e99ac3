/* rv64 engine: integer instructions (RV64I, M, C) and FP loads/stores/moves.
 *
 * Each case runs real instructions through rv64_exec() and checks registers,
 * memory and pc.  Compressed instructions are run next to their 32-bit
 * expansion from the same state and must leave the same registers, f
 * registers and data memory. */
#include "rv64_harness.h"

#define I64_MIN 0x8000000000000000ull
#define I64_MAX 0x7fffffffffffffffull
#define ALL1 0xffffffffffffffffull

/* One instruction reading A1 (a) and A2 (b) and writing A0. */
struct rcase {
    const char *name;
    uint32_t insn;
    uint64_t a, b, want;
};

static void run_cases(const struct rcase *c, size_t n)
{
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        H->x[A0] = 0x5a5a5a5a5a5a5a5aull;
        H->x[A1] = c[i].a;
        H->x[A2] = c[i].b;
        rvt_one(c[i].insn);
        EQN(c[i].name, H->x[A0], c[i].want);
        snprintf(buf, sizeof(buf), "%s: pc", c[i].name);
        EQN(buf, H->pc, CODE + 4);
    }
}
#define RUN_CASES(arr) run_cases(arr, sizeof(arr) / sizeof(arr[0]))

static void t_alu_imm(void)
{
    rvt_begin("alu-imm");
    const struct rcase c[] = {
        { "addi -2048", ADDI(A0, A1, -2048), 0, 0, 0xfffffffffffff800ull },
        { "addi 2047", ADDI(A0, A1, 2047), 1, 0, 0x800 },
        { "addi -1", ADDI(A0, A1, -1), 0, 0, ALL1 },
        { "addi wraps", ADDI(A0, A1, 1), I64_MAX, 0, I64_MIN },
        { "slti -2<-1", SLTI(A0, A1, -1), (uint64_t)-2, 0, 1 },
        { "slti -1<-1", SLTI(A0, A1, -1), ALL1, 0, 0 },
        { "slti 0<-1", SLTI(A0, A1, -1), 0, 0, 0 },
        { "slti min<0", SLTI(A0, A1, 0), I64_MIN, 0, 1 },
        { "sltiu imm -1 is max", SLTIU(A0, A1, -1), ALL1 - 1, 0, 1 },
        { "sltiu max<max", SLTIU(A0, A1, -1), ALL1, 0, 0 },
        { "sltiu seqz", SLTIU(A0, A1, 1), 0, 0, 1 },
        { "xori -1 (not)", XORI(A0, A1, -1), 0x0123456789abcdefull, 0, 0xfedcba9876543210ull },
        { "xori 0x7ff", XORI(A0, A1, 0x7ff), 0xf00, 0, 0x8ff },
        { "ori -2048", ORI(A0, A1, -2048), 1, 0, 0xfffffffffffff801ull },
        { "andi -16", ANDI(A0, A1, -16), ALL1, 0, 0xfffffffffffffff0ull },
        { "andi 0x7ff", ANDI(A0, A1, 0x7ff), ALL1, 0, 0x7ff },
        { "slli 63", SLLI(A0, A1, 63), 1, 0, I64_MIN },
        { "slli 32", SLLI(A0, A1, 32), 0xffffffff, 0, 0xffffffff00000000ull },
        { "slli 0", SLLI(A0, A1, 0), 0x1234, 0, 0x1234 },
        { "srli 63", SRLI(A0, A1, 63), I64_MIN, 0, 1 },
        { "srli 1", SRLI(A0, A1, 1), ALL1, 0, I64_MAX },
        { "srai 63", SRAI(A0, A1, 63), I64_MIN, 0, ALL1 },
        { "srai 4", SRAI(A0, A1, 4), I64_MIN, 0, 0xf800000000000000ull },
        { "srai positive", SRAI(A0, A1, 1), 0x7ffffffffffffffeull, 0, 0x3fffffffffffffffull },
        { "addiw overflow", ADDIW(A0, A1, 1), 0x7fffffff, 0, 0xffffffff80000000ull },
        { "addiw 0 = sext.w", ADDIW(A0, A1, 0), 0x80000000, 0, 0xffffffff80000000ull },
        { "addiw drops upper", ADDIW(A0, A1, 0), 0xffffffff7fffffffull, 0, 0x7fffffff },
        { "addiw -1", ADDIW(A0, A1, -1), 0, 0, ALL1 },
        { "slliw 31", SLLIW(A0, A1, 31), 1, 0, 0xffffffff80000000ull },
        { "slliw drops upper", SLLIW(A0, A1, 4), 0xffffffff00000001ull, 0, 0x10 },
        { "slliw 0 sext", SLLIW(A0, A1, 0), 0x1234567887654321ull, 0, 0xffffffff87654321ull },
        { "srliw 0 sext", SRLIW(A0, A1, 0), 0x80000000, 0, 0xffffffff80000000ull },
        { "srliw 1", SRLIW(A0, A1, 1), 0xffffffff80000000ull, 0, 0x40000000 },
        { "srliw 31", SRLIW(A0, A1, 31), 0x80000000, 0, 1 },
        { "sraiw 4", SRAIW(A0, A1, 4), 0x80000000, 0, 0xfffffffff8000000ull },
        { "sraiw 31 positive", SRAIW(A0, A1, 31), 0x0000000f7fffffffull, 0, 0 },
        { "sraiw 31 negative", SRAIW(A0, A1, 31), 0x80000000, 0, ALL1 },
    };
    RUN_CASES(c);
}

static void t_alu_reg(void)
{
    rvt_begin("alu-reg");
    const struct rcase c[] = {
        { "add wraps", ADD(A0, A1, A2), I64_MAX, 1, I64_MIN },
        { "sub 0-1", SUB(A0, A1, A2), 0, 1, ALL1 },
        { "sub min-1", SUB(A0, A1, A2), I64_MIN, 1, I64_MAX },
        { "sll 63", SLL(A0, A1, A2), 1, 63, I64_MIN },
        { "sll 64 masks to 0", SLL(A0, A1, A2), 3, 64, 3 },
        { "sll 65 masks to 1", SLL(A0, A1, A2), 3, 65, 6 },
        { "sll uses low 6 bits", SLL(A0, A1, A2), 1, 0xffffffffffffffc1ull, 2 },
        { "srl 63", SRL(A0, A1, A2), I64_MIN, 63, 1 },
        { "srl 64", SRL(A0, A1, A2), I64_MIN, 64, I64_MIN },
        { "srl 127", SRL(A0, A1, A2), I64_MIN, 127, 1 },
        { "sra 63", SRA(A0, A1, A2), I64_MIN, 63, ALL1 },
        { "sra 64", SRA(A0, A1, A2), I64_MIN, 64, I64_MIN },
        { "sra 0x41", SRA(A0, A1, A2), I64_MIN, 0x41, 0xc000000000000000ull },
        { "slt min<max", SLT(A0, A1, A2), I64_MIN, I64_MAX, 1 },
        { "slt max<min", SLT(A0, A1, A2), I64_MAX, I64_MIN, 0 },
        { "slt -1<0", SLT(A0, A1, A2), ALL1, 0, 1 },
        { "slt 0<-1", SLT(A0, A1, A2), 0, ALL1, 0 },
        { "slt equal", SLT(A0, A1, A2), 5, 5, 0 },
        { "sltu min<max", SLTU(A0, A1, A2), I64_MIN, I64_MAX, 0 },
        { "sltu max<min", SLTU(A0, A1, A2), I64_MAX, I64_MIN, 1 },
        { "sltu -1<0", SLTU(A0, A1, A2), ALL1, 0, 0 },
        { "sltu 0<-1", SLTU(A0, A1, A2), 0, ALL1, 1 },
        { "snez", SLTU(A0, X0, A2), 0, 7, 1 },
        { "xor", XOR(A0, A1, A2), 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0xf0f0f0f0f0f0f0f0ull },
        { "or", OR(A0, A1, A2), 0xff00000000000000ull, 0x00000000000000ffull, 0xff000000000000ffull },
        { "and", AND(A0, A1, A2), 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0x0f000f000f000f00ull },
        { "addw overflow", ADDW(A0, A1, A2), 0x7fffffff, 1, 0xffffffff80000000ull },
        { "addw drops upper", ADDW(A0, A1, A2), 0xffffffff00000001ull, 0x100000001ull, 2 },
        { "subw", SUBW(A0, A1, A2), 0, 0x80000000, 0xffffffff80000000ull },
        { "subw drops upper", SUBW(A0, A1, A2), 0x100000000ull, 1, ALL1 },
        { "sllw 31", SLLW(A0, A1, A2), 1, 31, 0xffffffff80000000ull },
        { "sllw 32 masks to 0", SLLW(A0, A1, A2), 1, 32, 1 },
        { "sllw 33 masks to 1", SLLW(A0, A1, A2), 1, 33, 2 },
        { "srlw 31", SRLW(A0, A1, A2), 0xffffffff80000000ull, 31, 1 },
        { "srlw 32 = 0 sext", SRLW(A0, A1, A2), 0x80000000, 32, 0xffffffff80000000ull },
        { "sraw 31", SRAW(A0, A1, A2), 0x80000000, 31, ALL1 },
        { "sraw 63 masks to 31", SRAW(A0, A1, A2), 0x80000000, 63, ALL1 },
        { "sraw drops upper", SRAW(A0, A1, A2), 0x140000000ull, 1, 0x20000000 },
    };
    RUN_CASES(c);
}

static void t_muldiv(void)
{
    rvt_begin("muldiv");
    const struct rcase c[] = {
        { "mul -3*7", MUL(A0, A1, A2), (uint64_t)-3, 7, (uint64_t)-21 },
        { "mul min*-1", MUL(A0, A1, A2), I64_MIN, ALL1, I64_MIN },
        { "mul low bits", MUL(A0, A1, A2), 1ull << 32, 1ull << 32, 0 },
        { "mulh -1*-1", MULH(A0, A1, A2), ALL1, ALL1, 0 },
        { "mulh min*min", MULH(A0, A1, A2), I64_MIN, I64_MIN, 0x4000000000000000ull },
        { "mulh -2*3", MULH(A0, A1, A2), (uint64_t)-2, 3, ALL1 },
        { "mulh max*max", MULH(A0, A1, A2), I64_MAX, I64_MAX, 0x3fffffffffffffffull },
        { "mulh min*-1", MULH(A0, A1, A2), I64_MIN, ALL1, 0 },
        { "mulhu max*max", MULHU(A0, A1, A2), ALL1, ALL1, 0xfffffffffffffffeull },
        { "mulhu 2^63*2", MULHU(A0, A1, A2), I64_MIN, 2, 1 },
        { "mulhsu -1*umax", MULHSU(A0, A1, A2), ALL1, ALL1, ALL1 },
        { "mulhsu 2*umax", MULHSU(A0, A1, A2), 2, ALL1, 1 },
        { "mulhsu min*umax", MULHSU(A0, A1, A2), I64_MIN, ALL1, I64_MIN },
        { "mulhsu -1*1", MULHSU(A0, A1, A2), ALL1, 1, ALL1 },
        { "mulhsu 1*umax", MULHSU(A0, A1, A2), 1, ALL1, 0 },
        { "div -7/2", DIV(A0, A1, A2), (uint64_t)-7, 2, (uint64_t)-3 },
        { "div 7/-2", DIV(A0, A1, A2), 7, (uint64_t)-2, (uint64_t)-3 },
        { "div by 0", DIV(A0, A1, A2), 42, 0, ALL1 },
        { "div min/-1", DIV(A0, A1, A2), I64_MIN, ALL1, I64_MIN },
        { "div min/1", DIV(A0, A1, A2), I64_MIN, 1, I64_MIN },
        { "divu max/2", DIVU(A0, A1, A2), ALL1, 2, I64_MAX },
        { "divu by 0", DIVU(A0, A1, A2), 42, 0, ALL1 },
        { "rem -7%2", REM(A0, A1, A2), (uint64_t)-7, 2, ALL1 },
        { "rem 7%-2", REM(A0, A1, A2), 7, (uint64_t)-2, 1 },
        { "rem by 0", REM(A0, A1, A2), (uint64_t)-7, 0, (uint64_t)-7 },
        { "rem min%-1", REM(A0, A1, A2), I64_MIN, ALL1, 0 },
        { "remu by 0", REMU(A0, A1, A2), 7, 0, 7 },
        { "remu max%10", REMU(A0, A1, A2), ALL1, 10, 5 },
        { "mulw sext", MULW(A0, A1, A2), 0x7fffffff, 2, 0xfffffffffffffffeull },
        { "mulw drops upper", MULW(A0, A1, A2), 0xdead00000003ull, 0xbeef00000005ull, 15 },
        { "mulw low 32", MULW(A0, A1, A2), 0x10000, 0x10000, 0 },
        { "divw min/-1", DIVW(A0, A1, A2), 0x80000000, ALL1, 0xffffffff80000000ull },
        { "divw by 0", DIVW(A0, A1, A2), 5, 0x100000000ull, ALL1 },
        { "divw -7/2", DIVW(A0, A1, A2), 0xfffffff9, 2, (uint64_t)-3 },
        { "divw drops upper", DIVW(A0, A1, A2), 0x1234567800000010ull, 0xffffffff00000004ull, 4 },
        { "divuw sext", DIVUW(A0, A1, A2), 0xffffffff, 1, ALL1 },
        { "divuw 2^31 sext", DIVUW(A0, A1, A2), 0x80000000, 1, 0xffffffff80000000ull },
        { "divuw by 0", DIVUW(A0, A1, A2), 5, 0, ALL1 },
        { "divuw", DIVUW(A0, A1, A2), 0xfffffffe, 2, 0x7fffffff },
        { "divuw drops upper", DIVUW(A0, A1, A2), 0x100000008ull, 2, 4 },
        { "remw min%-1", REMW(A0, A1, A2), 0x80000000, ALL1, 0 },
        { "remw by 0 sext", REMW(A0, A1, A2), 0x180000000ull, 0, 0xffffffff80000000ull },
        { "remw -7%2", REMW(A0, A1, A2), 0xfffffff9, 2, ALL1 },
        { "remuw sext", REMUW(A0, A1, A2), 0x80000000, 0xffffffff, 0xffffffff80000000ull },
        { "remuw by 0 sext", REMUW(A0, A1, A2), 0x80000001, 0, 0xffffffff80000001ull },
        { "remuw 7%3", REMUW(A0, A1, A2), 7, 3, 1 },
    };
    RUN_CASES(c);
}

static void t_upper_x0(void)
{
    rvt_begin("lui-auipc-x0");
    rvt_one(LUI(A0, 0x80000));
    EQ(H->x[A0], 0xffffffff80000000ull);
    rvt_one(LUI(A0, 0x7ffff));
    EQ(H->x[A0], 0x7ffff000);
    rvt_one(LUI(A0, 0xfffff));
    EQ(H->x[A0], 0xfffffffffffff000ull);
    rvt_one(AUIPC(A0, 0x80000)); /* CODE - 2 GiB = 0 */
    EQ(H->x[A0], 0);
    rvt_one(AUIPC(A0, 1));
    EQ(H->x[A0], CODE + 0x1000);
    rvt_one(AUIPC(A0, 0xfffff));
    EQ(H->x[A0], CODE - 0x1000);
    rvt_w32(CODE + 0x100, AUIPC(A0, 0));
    rvt_run_at(CODE + 0x100, 1);
    EQ(H->x[A0], CODE + 0x100);

    /* x0 stays zero whatever writes it */
    rvt_w64(DATA, 0x1234);
    H->x[A1] = DATA;
    rvt_one(ADDI(X0, X0, 5));
    EQ(H->x[0], 0);
    rvt_one(LUI(X0, 0x12345));
    EQ(H->x[0], 0);
    rvt_one(LD(X0, A1, 0));
    EQ(H->x[0], 0);
    rvt_one(JAL(X0, 8));
    EQ(H->x[0], 0);
    EQ(H->pc, CODE + 8);
    H->mscratch = 77;
    rvt_one(CSRR(X0, CSR_MSCRATCH));
    EQ(H->x[0], 0);
    rvt_one(ADD(A0, X0, X0));
    EQ(H->x[A0], 0);
}

struct bcase {
    const char *name;
    unsigned f3;
    uint64_t a, b;
    bool taken;
};

static void t_branches(void)
{
    rvt_begin("branches");
    const struct bcase c[] = {
        { "beq eq", 0, 5, 5, true }, { "beq ne", 0, 5, 6, false },
        { "bne ne", 1, 5, 6, true }, { "bne eq", 1, 5, 5, false },
        { "blt -1<0", 4, ALL1, 0, true }, { "blt 0<-1", 4, 0, ALL1, false },
        { "blt min<max", 4, I64_MIN, I64_MAX, true }, { "blt eq", 4, 3, 3, false },
        { "bge eq", 5, 3, 3, true }, { "bge min>=0", 5, I64_MIN, 0, false },
        { "bge 0>=-1", 5, 0, ALL1, true },
        { "bltu 0<-1", 6, 0, ALL1, true }, { "bltu -1<0", 6, ALL1, 0, false },
        { "bgeu -1>=0", 7, ALL1, 0, true }, { "bgeu 0>=1", 7, 0, 1, false },
        { "bgeu eq", 7, 9, 9, true },
    };
    const int offs[] = { 16, -16, 4094, -4096 };
    char buf[128];
    uint64_t at = CODE + 0x2000;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        for (size_t k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
            H->x[A1] = c[i].a;
            H->x[A2] = c[i].b;
            rvt_w32(at, enc_b(c[i].f3, A1, A2, offs[k]));
            rvt_run_at(at, 1);
            snprintf(buf, sizeof(buf), "%s offset %d: pc", c[i].name, offs[k]);
            EQN(buf, H->pc, c[i].taken ? at + (uint64_t)(int64_t)offs[k] : at + 4);
        }

    /* jal: link and both directions */
    rvt_one(JAL(RA, 2048));
    EQ(H->x[RA], CODE + 4);
    EQ(H->pc, CODE + 2048);
    rvt_w32(CODE + 0x100000, JAL(T0, -0x100000));
    rvt_run_at(CODE + 0x100000, 1);
    EQ(H->x[T0], CODE + 0x100004);
    EQ(H->pc, CODE);
    rvt_one(JAL(RA, 0xffffe)); /* max positive */
    EQ(H->pc, CODE + 0xffffe);

    /* jalr: negative offset, bit 0 cleared, link */
    H->x[T0] = CODE + 0x105;
    rvt_one(JALR(RA, T0, -4)); /* 0x101 & ~1 */
    EQ(H->pc, CODE + 0x100);
    EQ(H->x[RA], CODE + 4);
    H->x[T0] = CODE + 0x201;
    rvt_one(JALR(RA, T0, 0));
    EQ(H->pc, CODE + 0x200);
    /* rd == rs1: the target uses the old value */
    H->x[T0] = CODE + 0x300;
    rvt_one(JALR(T0, T0, 8));
    EQ(H->pc, CODE + 0x308);
    EQ(H->x[T0], CODE + 4);
    /* a jal/branch/jalr program that loops back with a negative offset */
    rvt_org(CODE);
    rvt_emit(ADDI(A0, X0, 0));      /* 0: a0 = 0 */
    rvt_emit(ADDI(A1, X0, 5));      /* 4: a1 = 5 */
    rvt_emit(ADDI(A0, A0, 3));      /* 8: loop: a0 += 3 */
    rvt_emit(ADDI(A1, A1, -1));     /* c */
    rvt_emit(BNE(A1, X0, -8));      /* 10: -> 8 */
    rvt_emit(JAL(RA, 12));          /* 14: -> 20 */
    rvt_emit(NOP);
    rvt_emit(NOP);
    rvt_emit(JALR(X0, RA, 0));      /* 20: back to 18 */
    rvt_run_at(CODE, 2 + 5 * 3 + 2);
    EQ(H->x[A0], 15);
    EQ(H->x[A1], 0);
    EQ(H->pc, CODE + 0x18);
}

static void t_loads_stores(void)
{
    rvt_begin("loads-stores");
    rvt_w64(DATA, 0xfedcba9876543210ull);
    rvt_w64(DATA + 8, 0x8000000080008080ull);
    const struct rcase c[] = {
        { "lb sext", LB(A0, A1, 8), DATA, 0, 0xffffffffffffff80ull },
        { "lbu", LBU(A0, A1, 8), DATA, 0, 0x80 },
        { "lh sext", LH(A0, A1, 8), DATA, 0, 0xffffffffffff8080ull },
        { "lhu", LHU(A0, A1, 8), DATA, 0, 0x8080 },
        { "lw sext", LW(A0, A1, 8), DATA, 0, 0xffffffff80008080ull },
        { "lwu", LWU(A0, A1, 8), DATA, 0, 0x80008080 },
        { "ld", LD(A0, A1, 8), DATA, 0, 0x8000000080008080ull },
        { "lb positive", LB(A0, A1, 0), DATA, 0, 0x10 },
        { "lh", LH(A0, A1, 2), DATA, 0, 0x7654 },
        { "lw negative", LW(A0, A1, 4), DATA, 0, 0xfffffffffedcba98ull },
        { "ld offset -2048", LD(A0, A1, -2048), DATA + 0x808, 0, 0x8000000080008080ull },
        { "lw offset -1", LW(A0, A1, -1), DATA + 9, 0, 0xffffffff80008080ull },
        { "ld offset 2047", LD(A0, A1, 2047), DATA + 8 - 2047, 0, 0x8000000080008080ull },
        { "ld misaligned", LD(A0, A1, 1), DATA, 0, 0x80fedcba98765432ull },
        { "lw misaligned", LW(A0, A1, 3), DATA, 0, 0xffffffffdcba9876ull },
        { "lhu misaligned", LHU(A0, A1, 7), DATA, 0, 0x80fe },
    };
    RUN_CASES(c);

    /* stores with negative and extreme S-type offsets; neighbours untouched */
    memset(rvt_ptr(DATA + 0x100, 0x28), 0xaa, 0x28);
    H->x[A2] = 0x1122334455667788ull;
    H->x[A1] = DATA + 0x900;
    rvt_one(SB(A2, A1, -2048));
    EQ(rvt_r8(DATA + 0x100), 0x88);
    EQ(rvt_r8(DATA + 0x101), 0xaa);
    rvt_one(SH(A2, A1, -2046));
    EQ(rvt_r16(DATA + 0x102), 0x7788);
    rvt_one(SW(A2, A1, -2044));
    EQ(rvt_r32(DATA + 0x104), 0x55667788);
    rvt_one(SD(A2, A1, -2040));
    EQ(rvt_r64(DATA + 0x108), 0x1122334455667788ull);
    H->x[A1] = DATA + 0x111;
    rvt_one(SD(A2, A1, -1));
    EQ(rvt_r64(DATA + 0x110), 0x1122334455667788ull);
    H->x[A1] = DATA + 0x118 - 2047;
    rvt_one(SD(A2, A1, 2047));
    EQ(rvt_r64(DATA + 0x118), 0x1122334455667788ull);
    EQ(rvt_r64(DATA + 0x120), 0xaaaaaaaaaaaaaaaaull);
    EQ(rvt_r64(DATA + 0xf8), 0);

    /* misaligned stores inside a page */
    H->x[A1] = DATA + 0x203;
    rvt_one(SD(A2, A1, 0));
    EQ(rvt_r64(DATA + 0x203), 0x1122334455667788ull);
    EQ(rvt_r8(DATA + 0x202), 0);
    EQ(rvt_r8(DATA + 0x20b), 0);
    rvt_one(SW(A2, A1, 0x10));
    EQ(rvt_r32(DATA + 0x213), 0x55667788);

    /* misaligned accesses crossing a 4 KiB page boundary (DATA+0x1000) */
    for (unsigned i = 0; i < 16; i++)
        rvt_w8(DATA + 0xff8 + i, (uint8_t)(0xa0 + i));
    H->x[A1] = DATA + 0xffd;
    rvt_one(LD(A0, A1, 0));
    EQ(H->x[A0], 0xacabaaa9a8a7a6a5ull);
    rvt_one(LH(A0, A1, 2)); /* 0xfff, 0x1000 */
    EQ(H->x[A0], 0xffffffffffffa8a7ull);
    rvt_one(LWU(A0, A1, 1));
    EQ(H->x[A0], 0xa9a8a7a6ull);
    H->x[A1] = DATA + 0x1ffa;
    rvt_one(SD(A2, A1, 0));
    EQ(rvt_r64(DATA + 0x1ffa), 0x1122334455667788ull);
    EQ(rvt_r16(DATA + 0x1ff8), 0);
    EQ(rvt_r16(DATA + 0x2002), 0);
    H->x[A1] = DATA + 0x2ffe;
    rvt_one(SW(A2, A1, 0));
    EQ(rvt_r32(DATA + 0x2ffe), 0x55667788);
    /* again now that both pages are in the TLB */
    rvt_one(LW(A0, A1, 0));
    EQ(H->x[A0], 0x55667788);
}

/* Run a compressed instruction and its 32-bit expansion from the same
 * registers and DATA page; both must give identical x/f registers and
 * memory.  Non-control-flow instructions only (pc must advance by 2/4).
 * Returns the value of x[rd] after the compressed one. */
static uint64_t cpair(const char *name, uint16_t c, uint32_t w, int rd, uint64_t want)
{
    static uint64_t x0[32], f0[32], xc[32], fc[32];
    static uint8_t m0[0x1000], mc[0x1000];
    char buf[128];
    memcpy(x0, H->x, sizeof(x0));
    memcpy(f0, H->f, sizeof(f0));
    memcpy(m0, rvt_ptr(DATA, 0x1000), 0x1000);
    rvt_one16(c);
    snprintf(buf, sizeof(buf), "%s: pc after 16-bit", name);
    EQN(buf, H->pc, CODE + 2);
    memcpy(xc, H->x, sizeof(xc));
    memcpy(fc, H->f, sizeof(fc));
    memcpy(mc, rvt_ptr(DATA, 0x1000), 0x1000);
    memcpy(H->x, x0, sizeof(x0));
    memcpy(H->f, f0, sizeof(f0));
    memcpy(rvt_ptr(DATA, 0x1000), m0, 0x1000);
    rvt_one(w);
    snprintf(buf, sizeof(buf), "%s: pc after 32-bit", name);
    EQN(buf, H->pc, CODE + 4);
    for (int i = 0; i < 32; i++) {
        snprintf(buf, sizeof(buf), "%s: x%d vs 32-bit", name, i);
        if (xc[i] != H->x[i])
            EQN(buf, xc[i], H->x[i]);
        snprintf(buf, sizeof(buf), "%s: f%d vs 32-bit", name, i);
        if (fc[i] != H->f[i])
            EQN(buf, fc[i], H->f[i]);
    }
    snprintf(buf, sizeof(buf), "%s: memory vs 32-bit", name);
    EQN(buf, memcmp(mc, rvt_ptr(DATA, 0x1000), 0x1000), 0);
    if (rd >= 0) {
        snprintf(buf, sizeof(buf), "%s: result", name);
        EQN(buf, xc[rd], want);
    }
    return xc[rd >= 0 ? rd : 0];
}

static void t_compressed(void)
{
    rvt_begin("compressed");
    for (int i = 1; i < 32; i++)
        H->x[i] = 0x0101010101010101ull * (uint64_t)i;
    H->x[SP] = DATA + 0x800;
    H->x[A1] = DATA + 0x100;
    H->x[A3] = DATA;
    rvt_w32(DATA + 0x100 + 124, 0x80000001);
    rvt_w64(DATA + 248, 0x8877665544332211ull);
    rvt_w32(DATA + 0x800 + 252, 0xfffffffe);
    rvt_w64(DATA + 0x800 + 504, 0x0123456789abcdefull);

    cpair("c.addi4spn", C_ADDI4SPN(A0, 1020), ADDI(A0, SP, 1020), A0, DATA + 0x800 + 1020);
    cpair("c.lw", C_LW(A0, A1, 124), LW(A0, A1, 124), A0, 0xffffffff80000001ull);
    cpair("c.ld", C_LD(A2, A3, 248), LD(A2, A3, 248), A2, 0x8877665544332211ull);
    cpair("c.sw", C_SW(A0, A1, 64), SW(A0, A1, 64), -1, 0);
    H->x[A5] = DATA + 0x400;
    cpair("c.sd", C_SD(A4, A5, 248), SD(A4, A5, 248), -1, 0);
    H->x[A0] = 5;
    cpair("c.addi -32", C_ADDI(A0, -32), ADDI(A0, A0, -32), A0, (uint64_t)-27);
    H->x[A0] = 5;
    cpair("c.addi 31", C_ADDI(A0, 31), ADDI(A0, A0, 31), A0, 36);
    H->x[A0] = 0x80000000;
    cpair("c.addiw -1", C_ADDIW(A0, -1), ADDIW(A0, A0, -1), A0, 0x7fffffff);
    H->x[A0] = 0x180000000ull;
    cpair("c.addiw 0 (sext.w)", C_ADDIW(A0, 0), ADDIW(A0, A0, 0), A0, 0xffffffff80000000ull);
    cpair("c.li -32", C_LI(A5, -32), ADDI(A5, X0, -32), A5, (uint64_t)-32);
    cpair("c.li 17", C_LI(T1, 17), ADDI(T1, X0, 17), T1, 17);
    cpair("c.lui 0x1f", C_LUI(A0, 0x1f), LUI(A0, 0x1f), A0, 0x1f000);
    cpair("c.addi16sp -512", C_ADDI16SP(-512), ADDI(SP, SP, -512), SP, DATA + 0x600);
    cpair("c.addi16sp 496", C_ADDI16SP(496), ADDI(SP, SP, 496), SP, DATA + 0x600 + 496);
    H->x[SP] = DATA + 0x800;
    H->x[S0] = I64_MIN;
    cpair("c.srli 63", C_SRLI(S0, 63), SRLI(S0, S0, 63), S0, 1);
    H->x[S0] = (uint64_t)-4;
    cpair("c.srai 1", C_SRAI(S0, 1), SRAI(S0, S0, 1), S0, (uint64_t)-2);
    H->x[A5] = I64_MIN;
    cpair("c.srai 32", C_SRAI(A5, 32), SRAI(A5, A5, 32), A5, 0xffffffff80000000ull);
    H->x[S0] = ALL1;
    cpair("c.andi -2", C_ANDI(S0, -2), ANDI(S0, S0, -2), S0, ALL1 - 1);
    cpair("c.andi 31", C_ANDI(S0, 31), ANDI(S0, S0, 31), S0, 30);
    H->x[S0] = 10;
    H->x[S1] = 3;
    cpair("c.sub", C_SUB(S0, S1), SUB(S0, S0, S1), S0, 7);
    H->x[A0] = 0xff00;
    H->x[A5] = 0x0ff0;
    cpair("c.xor", C_XOR(A0, A5), XOR(A0, A0, A5), A0, 0xf0f0);
    cpair("c.or", C_OR(A0, A5), OR(A0, A0, A5), A0, 0xfff0);
    cpair("c.and", C_AND(A0, A5), AND(A0, A0, A5), A0, 0x0ff0);
    H->x[S0] = 0;
    H->x[A5] = 0x80000000;
    cpair("c.subw", C_SUBW(S0, A5), SUBW(S0, S0, A5), S0, 0xffffffff80000000ull);
    H->x[S1] = 1;
    H->x[A5] = 0x7fffffff;
    cpair("c.addw", C_ADDW(A5, S1), ADDW(A5, A5, S1), A5, 0xffffffff80000000ull);
    H->x[A0] = 1;
    cpair("c.slli 63", C_SLLI(A0, 63), SLLI(A0, A0, 63), A0, I64_MIN);
    H->x[T3] = 0x40;
    cpair("c.slli 1", C_SLLI(T3, 1), SLLI(T3, T3, 1), T3, 0x80);
    cpair("c.lwsp", C_LWSP(A0, 252), LW(A0, SP, 252), A0, ALL1 - 1);
    cpair("c.ldsp", C_LDSP(S2, 504), LD(S2, SP, 504), S2, 0x0123456789abcdefull);
    H->x[A0] = 0xcafef00d12345678ull;
    cpair("c.swsp", C_SWSP(A0, 252), SW(A0, SP, 252), -1, 0);
    cpair("c.sdsp", C_SDSP(A0, 504), SD(A0, SP, 504), -1, 0);
    EQ(rvt_r64(DATA + 0x800 + 504), 0xcafef00d12345678ull);
    H->x[A1] = 0x1234;
    cpair("c.mv", C_MV(A0, A1), ADD(A0, X0, A1), A0, 0x1234);
    H->x[A0] = 0x1000;
    cpair("c.add", C_ADD(A0, A1), ADD(A0, A0, A1), A0, 0x2234);
    uint64_t sp = H->x[SP];
    cpair("c.nop", C_NOP, NOP, SP, sp);

    /* control transfers */
    rvt_w16(CODE + 0x800, C_J(-2048));
    rvt_run_at(CODE + 0x800, 1);
    EQ(H->pc, CODE);
    rvt_w32(CODE + 0x800, JAL(X0, -2048));
    rvt_run_at(CODE + 0x800, 1);
    EQ(H->pc, CODE);
    rvt_one16(C_J(2046));
    EQ(H->pc, CODE + 2046);
    H->x[S0] = 0;
    rvt_w16(CODE + 0x100, C_BEQZ(S0, -256));
    rvt_run_at(CODE + 0x100, 1);
    EQ(H->pc, CODE);
    H->x[S0] = 1;
    rvt_run_at(CODE + 0x100, 1);
    EQ(H->pc, CODE + 0x102);
    H->x[A5] = 0;
    rvt_one16(C_BNEZ(A5, 254));
    EQ(H->pc, CODE + 2);
    H->x[A5] = ALL1;
    rvt_one16(C_BNEZ(A5, 254));
    EQ(H->pc, CODE + 254);
    rvt_w16(CODE + 0x100, C_BNEZ(A5, -0x6a));
    rvt_run_at(CODE + 0x100, 1);
    EQ(H->pc, CODE + 0x100 - 0x6a);
    H->x[RA] = 0x77;
    H->x[A0] = CODE + 0x41;
    rvt_one16(C_JR(A0));
    EQ(H->pc, CODE + 0x40);
    EQ(H->x[RA], 0x77);
    H->x[T0] = CODE + 0x300;
    rvt_one16(C_JALR(T0));
    EQ(H->pc, CODE + 0x300);
    EQ(H->x[RA], CODE + 2);
    H->x[RA] = CODE + 0x500;
    rvt_one16(C_JALR(RA)); /* rs1 == ra: target is the old ra */
    EQ(H->pc, CODE + 0x500);
    EQ(H->x[RA], CODE + 2);
    uint64_t instret = H->instret;
    rvt_one16(C_EBREAK);
    MTRAP_NOTVAL(EXC_BREAKPOINT, CODE);
    EQ(H->instret, instret); /* a trapping instruction doesn't retire */

    /* reserved and illegal encodings: cause 2, mtval = the 16 bits */
    const uint16_t bad[] = {
        0x0000,              /* all zero */
        C_ADDI4SPN(S1, 0),   /* c.addi4spn, nzuimm = 0 */
        C_ADDIW(X0, 1),      /* c.addiw x0 */
        C_LWSP(X0, 4),       /* c.lwsp x0 */
        C_LDSP(X0, 8),       /* c.ldsp x0 */
        C_JR(X0),            /* c.jr x0 */
        C_ADDI16SP(0),       /* c.addi16sp 0 */
        C_LUI(A0, 0),        /* c.lui imm 0 */
        0x8000,              /* quadrant 0, funct3 4 */
        c_ca(1, 2, S0, S0),  /* CA reserved */
        c_ca(1, 3, S0, S0),
    };
    char buf[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        H->mcause = H->mtval = 0xbad;
        rvt_one16(bad[i]);
        snprintf(buf, sizeof(buf), "16-bit 0x%04x: mcause", bad[i]);
        EQN(buf, H->mcause, EXC_ILLEGAL);
        snprintf(buf, sizeof(buf), "16-bit 0x%04x: mtval", bad[i]);
        EQN(buf, H->mtval, bad[i]);
        snprintf(buf, sizeof(buf), "16-bit 0x%04x: mepc", bad[i]);
        EQN(buf, H->mepc, CODE);
    }
    rvt_one(0x0000000bu); /* custom-0: not implemented */
    MTRAP(EXC_ILLEGAL, CODE, 0x0000000b);
}

static void t_fetch_misc(void)
{
    rvt_begin("fetch");
    /* compressed instruction in the last 2 bytes of a page */
    rvt_w16(CODE + 0xffe, C_ADDI(A0, 1));
    rvt_w32(CODE + 0x1000, ADDI(A0, A0, 1));
    H->x[A0] = 0;
    rvt_run_at(CODE + 0xffe, 2);
    EQ(H->x[A0], 2);
    EQ(H->pc, CODE + 0x1004);
    /* 32-bit instruction straddling a page boundary */
    uint32_t w = ADDI(A0, A0, 0x123);
    rvt_w16(CODE + 0x1ffe, (uint16_t)w);
    rvt_w16(CODE + 0x2000, (uint16_t)(w >> 16));
    rvt_run_at(CODE + 0x1ffe, 1);
    EQ(H->x[A0], 0x125);
    EQ(H->pc, CODE + 0x2002);
    /* self-modifying code: the new bits run */
    rvt_one(ADDI(A1, X0, 1));
    EQ(H->x[A1], 1);
    rvt_one(ADDI(A1, X0, 2));
    EQ(H->x[A1], 2);
    /* instret counts retired instructions */
    uint64_t n = H->instret;
    rvt_org(CODE);
    rvt_emit(NOP);
    rvt_emit16(C_NOP);
    rvt_emit(NOP);
    rvt_run_at(CODE, 3);
    EQ(H->instret, n + 3);
}

static void t_fp_mem(void)
{
    rvt_begin("fp-mem");
    H->mstatus |= 1ull << 13; /* FS = Initial */
    rvt_w32(DATA, 0x3f800000);
    rvt_w32(DATA + 4, 0x80000001);
    rvt_w64(DATA + 8, 0x7ff0000000000001ull); /* sNaN: loads don't canonicalise */
    H->x[A1] = DATA;
    rvt_one(FLW(1, A1, 0));
    EQ(H->f[1], 0xffffffff3f800000ull);
    H->x[A1] = DATA + 0x804;
    rvt_one(FLW(2, A1, -2048));
    EQ(H->f[2], 0xffffffff80000001ull);
    H->x[A1] = DATA;
    rvt_one(FLD(3, A1, 8));
    EQ(H->f[3], 0x7ff0000000000001ull);
    H->f[4] = 0x123456789abcdef0ull; /* not NaN-boxed: fsw stores the low bits */
    memset(rvt_ptr(DATA + 0x40, 16), 0xaa, 16);
    rvt_one(FSW(4, A1, 0x44));
    EQ(rvt_r32(DATA + 0x44), 0x9abcdef0);
    EQ(rvt_r32(DATA + 0x40), 0xaaaaaaaa);
    EQ(rvt_r32(DATA + 0x48), 0xaaaaaaaa);
    H->x[A1] = DATA + 0x848;
    rvt_one(FSD(4, A1, -2048));
    EQ(rvt_r64(DATA + 0x48), 0x123456789abcdef0ull);
    /* misaligned across a page */
    rvt_w32(DATA + 0xffe, 0x40490fdb);
    H->x[A1] = DATA + 0xffe;
    rvt_one(FLW(5, A1, 0));
    EQ(H->f[5], 0xffffffff40490fdbull);

    /* moves */
    H->f[6] = 0xffffffff80000000ull;
    rvt_one(FMV_X_W(A0, 6));
    EQ(H->x[A0], 0xffffffff80000000ull);
    H->f[6] = 0xffffffff7f800000ull;
    rvt_one(FMV_X_W(A0, 6));
    EQ(H->x[A0], 0x7f800000);
    H->f[6] = 0x0000000080000001ull; /* bits move as they are, boxed or not */
    rvt_one(FMV_X_W(A0, 6));
    EQ(H->x[A0], 0xffffffff80000001ull);
    H->x[A1] = 0x1234567880000000ull;
    rvt_one(FMV_W_X(7, A1));
    EQ(H->f[7], 0xffffffff80000000ull);
    H->x[A1] = 0xfedcba9876543210ull;
    rvt_one(FMV_D_X(8, A1));
    EQ(H->f[8], 0xfedcba9876543210ull);
    rvt_one(FMV_X_D(A0, 8));
    EQ(H->x[A0], 0xfedcba9876543210ull);

    /* compressed FP loads and stores */
    H->x[SP] = DATA + 0x800;
    H->x[A1] = DATA + 0x100;
    H->x[A2] = DATA + 0x200;
    rvt_w64(DATA + 0x100 + 248, 0x400921fb54442d18ull);
    rvt_w64(DATA + 0x800 + 504, 0xc000000000000000ull);
    H->f[10] = H->f[11] = 0;
    cpair("c.fld", C_FLD(10, A1, 248), FLD(10, A1, 248), -1, 0);
    EQ(H->f[10], 0x400921fb54442d18ull);
    H->f[11] = 0x1122334455667788ull;
    cpair("c.fsd", C_FSD(11, A2, 136), FSD(11, A2, 136), -1, 0);
    EQ(rvt_r64(DATA + 0x200 + 136), 0x1122334455667788ull);
    cpair("c.fldsp", C_FLDSP(8, 504), FLD(8, SP, 504), -1, 0);
    EQ(H->f[8], 0xc000000000000000ull);
    H->f[1] = 0xdeadbeefcafef00dull;
    cpair("c.fsdsp", C_FSDSP(1, 248), FSD(1, SP, 248), -1, 0);
    EQ(rvt_r64(DATA + 0x800 + 248), 0xdeadbeefcafef00dull);
}

/* c.lui with a negative immediate.  Kept last: the decoder computes
 * imm6 << 12 on a negative int64_t, which is undefined behaviour and aborts
 * the sanitizer build (see the report). */
static void t_clui_negative(void)
{
    rvt_begin("c.lui-negative");
    printf("c.lui-negative: (an abort here under UBSan is the decode.c c.lui shift bug)\n");
    cpair("c.lui -1", C_LUI(A0, -1), LUI(A0, 0xfffff), A0, 0xfffffffffffff000ull);
    cpair("c.lui -32", C_LUI(S2, -32), LUI(S2, 0xfffe0), S2, 0xfffffffffffe0000ull);
}

int main(void)
{
    rvt_init();
    t_alu_imm();
    t_alu_reg();
    t_muldiv();
    t_upper_x0();
    t_branches();
    t_loads_stores();
    t_compressed();
    t_fetch_misc();
    t_fp_mem();
    t_clui_negative();
    return rvt_done("test_rv64_int");
}
