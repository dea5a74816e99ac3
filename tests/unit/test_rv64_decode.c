/* rv64 engine: rv64_decode() against a table of encodings produced by
 * riscv64-linux-gnu-as (-march=rv64imafdc, .option norvc for the 32-bit
 * part) and checked with objdump, plus reserved encodings that must decode
 * to OP_ILLEGAL and raise an illegal-instruction exception when run.
 *
 * rm is checked where it carries meaning (rounding mode, AMO aq/rl);
 * -1 means "not checked". */
#include "rv64_harness.h"

struct dcase {
    const char *text;
    uint32_t raw;
    unsigned op, rd, rs1, rs2, rs3;
    int rm;
    int64_t imm;
};

static const struct dcase d32[] = {
    { "lui a0, 0x80000", 0x80000537, OP_LUI, 10, 0, 0, 0, -1, -0x80000000LL },
    { "lui t6, 0x7ffff", 0x7fffffb7, OP_LUI, 31, 0, 0, 0, -1, 0x7ffff000 },
    { "auipc s1, 0xfffff", 0xfffff497, OP_AUIPC, 9, 0, 0, 0, -1, -0x1000 },
    { "jal ra, .+0xffffe", 0x7ffff0ef, OP_JAL, 1, 0, 0, 0, -1, 0xffffe },
    { "jal zero, .-0x100000", 0x8000006f, OP_JAL, 0, 0, 0, 0, -1, -0x100000 },
    { "jal t0, .-2", 0xfffff2ef, OP_JAL, 5, 0, 0, 0, -1, -2 },
    { "jalr ra, -2048(t1)", 0x800300e7, OP_JALR, 1, 6, 0, 0, -1, -2048 },
    { "jalr zero, 2047(a5)", 0x7ff78067, OP_JALR, 0, 15, 0, 0, -1, 2047 },
    { "beq a0, a1, .-4096", 0x80b50063, OP_BEQ, 0, 10, 11, 0, -1, -4096 },
    { "bne s2, s3, .+4094", 0x7f391fe3, OP_BNE, 0, 18, 19, 0, -1, 4094 },
    { "blt t0, zero, .-2", 0xfe02cfe3, OP_BLT, 0, 5, 0, 0, -1, -2 },
    { "bge zero, t6, .+2048", 0x01f050e3, OP_BGE, 0, 0, 31, 0, -1, 2048 },
    { "bltu a2, a3, .+16", 0x00d66863, OP_BLTU, 0, 12, 13, 0, -1, 16 },
    { "bgeu a4, a5, .-2048", 0x80f770e3, OP_BGEU, 0, 14, 15, 0, -1, -2048 },
    { "lb a0, -1(a1)", 0xfff58503, OP_LB, 10, 11, 0, 0, -1, -1 },
    { "lh a0, 2047(a1)", 0x7ff59503, OP_LH, 10, 11, 0, 0, -1, 2047 },
    { "lw t6, -2048(sp)", 0x80012f83, OP_LW, 31, 2, 0, 0, -1, -2048 },
    { "ld s0, 8(s1)", 0x0084b403, OP_LD, 8, 9, 0, 0, -1, 8 },
    { "lbu a0, 0(a1)", 0x0005c503, OP_LBU, 10, 11, 0, 0, -1, 0 },
    { "lhu a0, -2(a1)", 0xffe5d503, OP_LHU, 10, 11, 0, 0, -1, -2 },
    { "lwu a0, 4(a1)", 0x0045e503, OP_LWU, 10, 11, 0, 0, -1, 4 },
    { "sb a0, -1(a1)", 0xfea58fa3, OP_SB, 0, 11, 10, 0, -1, -1 },
    { "sh t6, -2048(sp)", 0x81f11023, OP_SH, 0, 2, 31, 0, -1, -2048 },
    { "sw a2, 2047(a3)", 0x7ec6afa3, OP_SW, 0, 13, 12, 0, -1, 2047 },
    { "sd s11, -32(t0)", 0xffb2b023, OP_SD, 0, 5, 27, 0, -1, -32 },
    { "sd ra, 31(t0)", 0x0012bfa3, OP_SD, 0, 5, 1, 0, -1, 31 },
    { "addi a0, a1, -2048", 0x80058513, OP_ADDI, 10, 11, 0, 0, -1, -2048 },
    { "slti a0, a1, -1", 0xfff5a513, OP_SLTI, 10, 11, 0, 0, -1, -1 },
    { "sltiu a0, a1, 2047", 0x7ff5b513, OP_SLTIU, 10, 11, 0, 0, -1, 2047 },
    { "xori a0, a1, -1", 0xfff5c513, OP_XORI, 10, 11, 0, 0, -1, -1 },
    { "ori a0, a1, 0x555", 0x5555e513, OP_ORI, 10, 11, 0, 0, -1, 0x555 },
    { "andi a0, a1, -16", 0xff05f513, OP_ANDI, 10, 11, 0, 0, -1, -16 },
    { "slli a0, a1, 63", 0x03f59513, OP_SLLI, 10, 11, 0, 0, -1, 63 },
    { "srli a0, a1, 32", 0x0205d513, OP_SRLI, 10, 11, 0, 0, -1, 32 },
    { "srai a0, a1, 63", 0x43f5d513, OP_SRAI, 10, 11, 0, 0, -1, 63 },
    { "srai a0, a1, 1", 0x4015d513, OP_SRAI, 10, 11, 0, 0, -1, 1 },
    { "add a0, a1, a2", 0x00c58533, OP_ADD, 10, 11, 12, 0, -1, 0 },
    { "sub t3, t4, t5", 0x41ee8e33, OP_SUB, 28, 29, 30, 0, -1, 0 },
    { "sll a0, a1, a2", 0x00c59533, OP_SLL, 10, 11, 12, 0, -1, 0 },
    { "slt a0, a1, a2", 0x00c5a533, OP_SLT, 10, 11, 12, 0, -1, 0 },
    { "sltu a0, a1, a2", 0x00c5b533, OP_SLTU, 10, 11, 12, 0, -1, 0 },
    { "xor a0, a1, a2", 0x00c5c533, OP_XOR, 10, 11, 12, 0, -1, 0 },
    { "srl a0, a1, a2", 0x00c5d533, OP_SRL, 10, 11, 12, 0, -1, 0 },
    { "sra a0, a1, a2", 0x40c5d533, OP_SRA, 10, 11, 12, 0, -1, 0 },
    { "or a0, a1, a2", 0x00c5e533, OP_OR, 10, 11, 12, 0, -1, 0 },
    { "and a0, a1, a2", 0x00c5f533, OP_AND, 10, 11, 12, 0, -1, 0 },
    { "addiw a0, a1, -1", 0xfff5851b, OP_ADDIW, 10, 11, 0, 0, -1, -1 },
    { "slliw a0, a1, 31", 0x01f5951b, OP_SLLIW, 10, 11, 0, 0, -1, 31 },
    { "srliw a0, a1, 1", 0x0015d51b, OP_SRLIW, 10, 11, 0, 0, -1, 1 },
    { "sraiw a0, a1, 31", 0x41f5d51b, OP_SRAIW, 10, 11, 0, 0, -1, 31 },
    { "addw a0, a1, a2", 0x00c5853b, OP_ADDW, 10, 11, 12, 0, -1, 0 },
    { "subw a0, a1, a2", 0x40c5853b, OP_SUBW, 10, 11, 12, 0, -1, 0 },
    { "sllw a0, a1, a2", 0x00c5953b, OP_SLLW, 10, 11, 12, 0, -1, 0 },
    { "srlw a0, a1, a2", 0x00c5d53b, OP_SRLW, 10, 11, 12, 0, -1, 0 },
    { "sraw a0, a1, a2", 0x40c5d53b, OP_SRAW, 10, 11, 12, 0, -1, 0 },
    { "mul a0, a1, a2", 0x02c58533, OP_MUL, 10, 11, 12, 0, -1, 0 },
    { "mulh a0, a1, a2", 0x02c59533, OP_MULH, 10, 11, 12, 0, -1, 0 },
    { "mulhsu a0, a1, a2", 0x02c5a533, OP_MULHSU, 10, 11, 12, 0, -1, 0 },
    { "mulhu a0, a1, a2", 0x02c5b533, OP_MULHU, 10, 11, 12, 0, -1, 0 },
    { "div a0, a1, a2", 0x02c5c533, OP_DIV, 10, 11, 12, 0, -1, 0 },
    { "divu a0, a1, a2", 0x02c5d533, OP_DIVU, 10, 11, 12, 0, -1, 0 },
    { "rem a0, a1, a2", 0x02c5e533, OP_REM, 10, 11, 12, 0, -1, 0 },
    { "remu a0, a1, a2", 0x02c5f533, OP_REMU, 10, 11, 12, 0, -1, 0 },
    { "mulw t0, t1, t2", 0x027302bb, OP_MULW, 5, 6, 7, 0, -1, 0 },
    { "divw t0, t1, t2", 0x027342bb, OP_DIVW, 5, 6, 7, 0, -1, 0 },
    { "divuw t0, t1, t2", 0x027352bb, OP_DIVUW, 5, 6, 7, 0, -1, 0 },
    { "remw t0, t1, t2", 0x027362bb, OP_REMW, 5, 6, 7, 0, -1, 0 },
    { "remuw t0, t1, t2", 0x027372bb, OP_REMUW, 5, 6, 7, 0, -1, 0 },
    { "fence rw, rw", 0x0330000f, OP_FENCE, 0, 0, 0, 0, -1, 0x033 }, /* imm: fm pred succ */
    { "fence.tso", 0x8330000f, OP_FENCE, 0, 0, 0, 0, -1, 0x833 },
    { "pause", 0x0100000f, OP_FENCE, 0, 0, 0, 0, -1, 0x010 },
    { "fence.i", 0x0000100f, OP_FENCE_I, 0, 0, 0, 0, -1, 0 },
    { "ecall", 0x00000073, OP_ECALL, 0, 0, 0, 0, -1, 0 },
    { "ebreak", 0x00100073, OP_EBREAK, 0, 0, 0, 0, -1, 0 },
    { "mret", 0x30200073, OP_MRET, 0, 0, 0, 0, -1, 0 },
    { "sret", 0x10200073, OP_SRET, 0, 0, 0, 0, -1, 0 },
    { "wfi", 0x10500073, OP_WFI, 0, 0, 0, 0, -1, 0 },
    { "sfence.vma a0, a1", 0x12b50073, OP_SFENCE_VMA, 0, 10, 11, 0, -1, 0 },
    { "sfence.vma", 0x12000073, OP_SFENCE_VMA, 0, 0, 0, 0, -1, 0 },
    { "csrrw a0, mscratch, a1", 0x34059573, OP_CSRRW, 10, 11, 0, 0, -1, 0x340 },
    { "csrrs a0, cycle, zero", 0xc0002573, OP_CSRRS, 10, 0, 0, 0, -1, 0xc00 },
    { "csrrc zero, 0xfff, t6", 0xffffb073, OP_CSRRC, 0, 31, 0, 0, -1, 0xfff },
    { "csrrwi a0, satp, 31", 0x180fd573, OP_CSRRWI, 10, 31, 0, 0, -1, 0x180 },
    { "csrrsi a0, sstatus, 2", 0x10016573, OP_CSRRSI, 10, 2, 0, 0, -1, 0x100 },
    { "csrrci a0, fflags, 0", 0x00107573, OP_CSRRCI, 10, 0, 0, 0, -1, 0x001 },
    { "lr.w a0, (a1)", 0x1005a52f, OP_LR_W, 10, 11, 0, 0, 0, 0 },
    { "lr.d.aqrl a0, (a1)", 0x1605b52f, OP_LR_D, 10, 11, 0, 0, 3, 0 },
    { "sc.w a0, a2, (a1)", 0x18c5a52f, OP_SC_W, 10, 11, 12, 0, 0, 0 },
    { "sc.d.rl a0, a2, (a1)", 0x1ac5b52f, OP_SC_D, 10, 11, 12, 0, 1, 0 },
    { "amoswap.w a0, a2, (a1)", 0x08c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_SWAP },
    { "amoadd.w.aq a0, a2, (a1)", 0x04c5a52f, OP_AMO_W, 10, 11, 12, 0, 2, AMO_ADD },
    { "amoxor.w a0, a2, (a1)", 0x20c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_XOR },
    { "amoand.w a0, a2, (a1)", 0x60c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_AND },
    { "amoor.w a0, a2, (a1)", 0x40c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_OR },
    { "amomin.w a0, a2, (a1)", 0x80c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_MIN },
    { "amomax.w a0, a2, (a1)", 0xa0c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_MAX },
    { "amominu.w a0, a2, (a1)", 0xc0c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_MINU },
    { "amomaxu.w a0, a2, (a1)", 0xe0c5a52f, OP_AMO_W, 10, 11, 12, 0, 0, AMO_MAXU },
    { "amoswap.d t0, t1, (t2)", 0x0863b2af, OP_AMO_D, 5, 7, 6, 0, 0, AMO_SWAP },
    { "amoadd.d t0, t1, (t2)", 0x0063b2af, OP_AMO_D, 5, 7, 6, 0, 0, AMO_ADD },
    { "amomaxu.d.aqrl zero, t1, (t2)", 0xe663b02f, OP_AMO_D, 0, 7, 6, 0, 3, AMO_MAXU },
    { "flw fa0, -4(a1)", 0xffc5a507, OP_FLW, 10, 11, 0, 0, -1, -4 },
    { "fld ft11, 2047(sp)", 0x7ff13f87, OP_FLD, 31, 2, 0, 0, -1, 2047 },
    { "fsw fa1, -2048(a0)", 0x80b52027, OP_FSW, 0, 10, 11, 0, -1, -2048 },
    { "fsd fs11, 8(sp)", 0x01b13427, OP_FSD, 0, 2, 27, 0, -1, 8 },
    { "fmadd.s f1, f2, f3, f4, rne", 0x203100c3, OP_FMA_S, 1, 2, 3, 4, 0, 0 },
    { "fmsub.d f1, f2, f3, f31, rtz", 0xfa3110c7, OP_FMA_D, 1, 2, 3, 31, 1, 2 },
    { "fnmsub.s f1, f2, f3, f4, rdn", 0x203120cb, OP_FMA_S, 1, 2, 3, 4, 2, 1 },
    { "fnmadd.d f1, f2, f3, f4, dyn", 0x223170cf, OP_FMA_D, 1, 2, 3, 4, 7, 3 },
    { "fadd.s f1, f2, f3, rmm", 0x003140d3, OP_FOP2_S, 1, 2, 3, 0, 4, FPU_ADD },
    { "fsub.d f1, f2, f3, rup", 0x0a3130d3, OP_FOP2_D, 1, 2, 3, 0, 3, FPU_SUB },
    { "fmul.s f1, f2, f3, dyn", 0x103170d3, OP_FOP2_S, 1, 2, 3, 0, 7, FPU_MUL },
    { "fdiv.d f1, f2, f3, rne", 0x1a3100d3, OP_FOP2_D, 1, 2, 3, 0, 0, FPU_DIV },
    { "fsgnj.s f1, f2, f3", 0x203100d3, OP_FOP2_S, 1, 2, 3, 0, -1, FPU_SGNJ },
    { "fsgnjn.d f1, f2, f3", 0x223110d3, OP_FOP2_D, 1, 2, 3, 0, -1, FPU_SGNJN },
    { "fsgnjx.s f1, f2, f3", 0x203120d3, OP_FOP2_S, 1, 2, 3, 0, -1, FPU_SGNJX },
    { "fmin.d f1, f2, f3", 0x2a3100d3, OP_FOP2_D, 1, 2, 3, 0, -1, FPU_MIN },
    { "fmax.s f1, f2, f3", 0x283110d3, OP_FOP2_S, 1, 2, 3, 0, -1, FPU_MAX },
    { "fsqrt.s f1, f2, rtz", 0x580110d3, OP_FSQRT_S, 1, 2, 0, 0, 1, 0 },
    { "fsqrt.d f1, f2, dyn", 0x5a0170d3, OP_FSQRT_D, 1, 2, 0, 0, 7, 0 },
    { "feq.s a0, f2, f3", 0xa0312553, OP_FCMP_S, 10, 2, 3, 0, -1, FPU_EQ },
    { "flt.d a0, f2, f3", 0xa2311553, OP_FCMP_D, 10, 2, 3, 0, -1, FPU_LT },
    { "fle.s a0, f2, f3", 0xa0310553, OP_FCMP_S, 10, 2, 3, 0, -1, FPU_LE },
    { "fclass.s a0, f2", 0xe0011553, OP_FCLASS_S, 10, 2, 0, 0, -1, 0 },
    { "fclass.d a0, f2", 0xe2011553, OP_FCLASS_D, 10, 2, 0, 0, -1, 0 },
    { "fcvt.w.s a0, f2, rtz", 0xc0011553, OP_FCVT_I_S, 10, 2, 0, 0, 1, FPU_W },
    { "fcvt.wu.d a0, f2, rne", 0xc2110553, OP_FCVT_I_D, 10, 2, 0, 0, 0, FPU_WU },
    { "fcvt.l.s a0, f2, dyn", 0xc0217553, OP_FCVT_I_S, 10, 2, 0, 0, 7, FPU_L },
    { "fcvt.lu.d a0, f2, rmm", 0xc2314553, OP_FCVT_I_D, 10, 2, 0, 0, 4, FPU_LU },
    { "fcvt.s.w f1, a0, rne", 0xd00500d3, OP_FCVT_S_I, 1, 10, 0, 0, 0, FPU_W },
    { "fcvt.d.wu f1, a0", 0xd21500d3, OP_FCVT_D_I, 1, 10, 0, 0, 0, FPU_WU },
    { "fcvt.s.l f1, a0, rup", 0xd02530d3, OP_FCVT_S_I, 1, 10, 0, 0, 3, FPU_L },
    { "fcvt.d.lu f1, a0, rdn", 0xd23520d3, OP_FCVT_D_I, 1, 10, 0, 0, 2, FPU_LU },
    { "fcvt.s.d f1, f2, rne", 0x401100d3, OP_FCVT_S_D, 1, 2, 0, 0, 0, 0 },
    { "fcvt.d.s f1, f2", 0x420100d3, OP_FCVT_D_S, 1, 2, 0, 0, 0, 0 },
    { "fmv.x.w a0, f2", 0xe0010553, OP_FMV_X_W, 10, 2, 0, 0, -1, 0 },
    { "fmv.w.x f1, a0", 0xf00500d3, OP_FMV_W_X, 1, 10, 0, 0, -1, 0 },
    { "fmv.x.d a0, f2", 0xe2010553, OP_FMV_X_D, 10, 2, 0, 0, -1, 0 },
    { "fmv.d.x f1, a0", 0xf20500d3, OP_FMV_D_X, 1, 10, 0, 0, -1, 0 },
};

static const struct dcase d16[] = {
    { "c.addi4spn a0, sp, 1020", 0x1fe8, OP_ADDI, 10, 2, 0, 0, -1, 1020 },
    { "c.fld fa0, 248(a1)", 0x3de8, OP_FLD, 10, 11, 0, 0, -1, 248 },
    { "c.lw s0, 124(a5)", 0x5fe0, OP_LW, 8, 15, 0, 0, -1, 124 },
    { "c.ld a2, 248(a3)", 0x7ef0, OP_LD, 12, 13, 0, 0, -1, 248 },
    { "c.fsd fa1, 8(a2)", 0xa60c, OP_FSD, 0, 12, 11, 0, -1, 8 },
    { "c.sw a0, 64(a1)", 0xc1a8, OP_SW, 0, 11, 10, 0, -1, 64 },
    { "c.sd a4, 248(a5)", 0xfff8, OP_SD, 0, 15, 14, 0, -1, 248 },
    { "c.nop", 0x0001, OP_ADDI, 0, 0, 0, 0, -1, 0 },
    { "c.addi a0, -32", 0x1501, OP_ADDI, 10, 10, 0, 0, -1, -32 },
    { "c.addiw a0, -1", 0x357d, OP_ADDIW, 10, 10, 0, 0, -1, -1 },
    { "c.li t1, -32", 0x5301, OP_ADDI, 6, 0, 0, 0, -1, -32 },
    { "c.addi16sp sp, -512", 0x7101, OP_ADDI, 2, 2, 0, 0, -1, -512 },
    { "c.lui a0, 0x1f", 0x657d, OP_LUI, 10, 0, 0, 0, -1, 0x1f000 },
    { "c.srli s0, 63", 0x907d, OP_SRLI, 8, 8, 0, 0, -1, 63 },
    { "c.srai a5, 32", 0x9781, OP_SRAI, 15, 15, 0, 0, -1, 32 },
    { "c.andi s1, -2", 0x98f9, OP_ANDI, 9, 9, 0, 0, -1, -2 },
    { "c.sub s0, s1", 0x8c05, OP_SUB, 8, 8, 9, 0, -1, 0 },
    { "c.xor a0, a5", 0x8d3d, OP_XOR, 10, 10, 15, 0, -1, 0 },
    { "c.or a1, a2", 0x8dd1, OP_OR, 11, 11, 12, 0, -1, 0 },
    { "c.and a3, a4", 0x8ef9, OP_AND, 13, 13, 14, 0, -1, 0 },
    { "c.subw s0, a5", 0x9c1d, OP_SUBW, 8, 8, 15, 0, -1, 0 },
    { "c.addw a5, s1", 0x9fa5, OP_ADDW, 15, 15, 9, 0, -1, 0 },
    { "c.j .-2048", 0xb001, OP_JAL, 0, 0, 0, 0, -1, -2048 },
    { "c.beqz s0, .-256", 0xd001, OP_BEQ, 0, 8, 0, 0, -1, -256 },
    { "c.bnez a5, .+254", 0xeffd, OP_BNE, 0, 15, 0, 0, -1, 254 },
    { "c.slli t3, 63", 0x1e7e, OP_SLLI, 28, 28, 0, 0, -1, 63 },
    { "c.fldsp fs0, 504(sp)", 0x347e, OP_FLD, 8, 2, 0, 0, -1, 504 },
    { "c.lwsp s2, 252(sp)", 0x597e, OP_LW, 18, 2, 0, 0, -1, 252 },
    { "c.ldsp t0, 504(sp)", 0x72fe, OP_LD, 5, 2, 0, 0, -1, 504 },
    { "c.jr a0", 0x8502, OP_JALR, 0, 10, 0, 0, -1, 0 },
    { "c.mv a0, t6", 0x857e, OP_ADD, 10, 0, 31, 0, -1, 0 },
    { "c.ebreak", 0x9002, OP_EBREAK, 0, 0, 0, 0, -1, 0 },
    { "c.jalr t0", 0x9282, OP_JALR, 1, 5, 0, 0, -1, 0 },
    { "c.add a0, t6", 0x957e, OP_ADD, 10, 10, 31, 0, -1, 0 },
    { "c.fsdsp ft1, 248(sp)", 0xbd86, OP_FSD, 0, 2, 1, 0, -1, 248 },
    { "c.swsp t6, 64(sp)", 0xc0fe, OP_SW, 0, 2, 31, 0, -1, 64 },
    { "c.sdsp s11, 504(sp)", 0xffee, OP_SD, 0, 2, 27, 0, -1, 504 },
};

static const struct {
    uint32_t raw;
    const char *what;
} illegal32[] = {
    { 0x003150d3, "fadd.s rm=5" },
    { 0x023160d3, "fadd.d rm=6" },
    { 0x183150d3, "fdiv.s rm=5" },
    { 0x203150c3, "fmadd.s rm=5" },
    { 0x223160cf, "fnmadd.d rm=6" },
    { 0x5a0160d3, "fsqrt.d rm=6" },
    { 0xc0015553, "fcvt.w.s rm=5" },
    { 0xd22560d3, "fcvt.d.l rm=6" },
    { 0x401150d3, "fcvt.s.d rm=5" },
    { 0x581100d3, "fsqrt.s rs2=1" },
    { 0x043100d3, "fadd.h (no Zfh)" },
    { 0x063100d3, "fadd.q (no Q)" },
    { 0x243100c3, "fmadd.h" },
    { 0x263100c7, "fmsub.q" },
    { 0x203130d3, "fsgnj funct3=3" },
    { 0x283120d3, "fmin/fmax funct3=2" },
    { 0xa0313553, "fcmp funct3=3" },
    { 0xc0410553, "fcvt.int.s rs2=4" },
    { 0xd05500d3, "fcvt.s.int rs2=5" },
    { 0xe0012553, "fmv.x.w funct3=2" },
    { 0xe0110553, "fmv.x.w rs2=1" },
    { 0xf00510d3, "fmv.w.x funct3=1" },
    { 0x400100d3, "fcvt.s.d with rs2=0" },
    { 0x421100d3, "fcvt.d.s with rs2=1" },
    { 0xf80100d3, "funct7 0x7c" },
    { 0x00011087, "flh (no Zfh)" },
    { 0x00014087, "flq" },
    { 0x00111027, "fsh" },
    { 0x0000000b, "custom-0" },
    { 0x0000002b, "custom-1" },
    { 0x0000005b, "custom-2" },
    { 0x0000007b, "custom-3" },
    { 0x00000057, "OP-V (no V)" },
    { 0x00000077, "OP-P / reserved" },
    { 0x0000006b, "reserved opcode 0x6b" },
    { 0xffffffff, "all ones" },
    { 0x0005f503, "load funct3=7" },
    { 0x00a5c023, "store funct3=4" },
    { 0x00b52063, "branch funct3=2" },
    { 0x00b53063, "branch funct3=3" },
    { 0x000510e7, "jalr funct3=1" },
    { 0x04059513, "slli imm[11:6]=1" },
    { 0x4405d513, "srai imm[11:6]=0x11" },
    { 0x2005d513, "srli imm[11:6]=8" },
    { 0x04c58533, "OP funct7=2" },
    { 0x40c59533, "sll with funct7=0x20" },
    { 0x80c5f533, "OP funct7=0x40" },
    { 0x0205951b, "slliw shamt[5]=1" },
    { 0x4205d51b, "sraiw shamt[5]=1" },
    { 0x0005a51b, "OP-IMM-32 funct3=2" },
    { 0x02c5953b, "OP-32 mul funct3=1" },
    { 0x40c5953b, "OP-32 funct7=0x20 funct3=1" },
    { 0x00c5a53b, "OP-32 funct3=2" },
    { 0x0000200f, "MISC-MEM funct3=2" },
    { 0x34004573, "SYSTEM funct3=4" },
    { 0x000000f3, "ecall with rd=1" },
    { 0x00008073, "ecall with rs1=1" },
    { 0x00200073, "uret" },
    { 0x7b200073, "dret" },
    { 0x30208073, "mret with rs1=1" },
    { 0x12b500f3, "sfence.vma with rd=1" },
    { 0x22b50073, "hfence.vvma (no H)" },
    { 0x00c5852f, "AMO funct3=0" },
    { 0x00c5c52f, "AMO funct3=4" },
    { 0x1015a52f, "lr.w with rs2=1" },
    { 0x28c5b52f, "AMO funct5=5" },
    { 0xf8c5a52f, "AMO funct5=0x1f" },
};

static const struct {
    uint16_t raw;
    const char *what;
} illegal16[] = {
    { 0x0000, "all zero" },
    { 0x0010, "c.addi4spn nzuimm=0" },
    { 0x2005, "c.addiw x0" },
    { 0x6101, "c.addi16sp 0" },
    { 0x6501, "c.lui a0, 0" },
    { 0x8000, "quadrant 0 funct3=4" },
    { 0x9c41, "CA reserved (1,2)" },
    { 0x9c61, "CA reserved (1,3)" },
    { 0x4002, "c.lwsp x0" },
    { 0x6002, "c.ldsp x0" },
    { 0x8002, "c.jr x0" },
};

static void check_case(const struct dcase *c, unsigned len)
{
    struct rv64_insn d;
    char buf[160];
    memset(&d, 0xa5, sizeof(d));
    rv64_decode(c->raw, &d);
#define F(field, want)                                                      \
    do {                                                                    \
        snprintf(buf, sizeof(buf), "%s (0x%08x): " #field, c->text, c->raw); \
        EQN(buf, d.field, want);                                            \
    } while (0)
    F(op, c->op);
    F(rd, c->rd);
    F(rs1, c->rs1);
    F(rs2, c->rs2);
    F(rs3, c->rs3);
    F(imm, (uint64_t)c->imm);
    F(len, len);
    F(raw, c->raw);
    if (c->rm >= 0)
        F(rm, (unsigned)c->rm);
#undef F
}

static void t_table(void)
{
    rvt_begin("decode-32");
    for (size_t i = 0; i < sizeof(d32) / sizeof(d32[0]); i++)
        check_case(&d32[i], 4);
    rvt_begin("decode-16");
    for (size_t i = 0; i < sizeof(d16) / sizeof(d16[0]); i++)
        check_case(&d16[i], 2);
}

static void t_illegal(void)
{
    char buf[128];
    struct rv64_insn d;
    rvt_begin("illegal-32");
    for (size_t i = 0; i < sizeof(illegal32) / sizeof(illegal32[0]); i++) {
        rv64_decode(illegal32[i].raw, &d);
        snprintf(buf, sizeof(buf), "%s (0x%08x): op", illegal32[i].what, illegal32[i].raw);
        EQN(buf, d.op, OP_ILLEGAL);
    }
    /* and when executed (FS on, so only the decode decides) */
    rvt_begin("illegal-32-exec");
    for (size_t i = 0; i < sizeof(illegal32) / sizeof(illegal32[0]); i++) {
        H->mstatus |= 1ull << 13;
        H->mcause = H->mtval = 0xbad;
        rvt_one(illegal32[i].raw);
        snprintf(buf, sizeof(buf), "%s (0x%08x): mcause", illegal32[i].what, illegal32[i].raw);
        EQN(buf, H->mcause, EXC_ILLEGAL);
        snprintf(buf, sizeof(buf), "%s (0x%08x): mtval", illegal32[i].what, illegal32[i].raw);
        EQN(buf, H->mtval, illegal32[i].raw);
    }
    rvt_begin("illegal-16");
    for (size_t i = 0; i < sizeof(illegal16) / sizeof(illegal16[0]); i++) {
        rv64_decode(illegal16[i].raw, &d);
        snprintf(buf, sizeof(buf), "%s (0x%04x): op", illegal16[i].what, illegal16[i].raw);
        EQN(buf, d.op, OP_ILLEGAL);
        snprintf(buf, sizeof(buf), "%s (0x%04x): len", illegal16[i].what, illegal16[i].raw);
        EQN(buf, d.len, 2);
    }
}

/* Decoding is a pure function of the bits: decoding into a dirty struct
 * or twice gives the same result. */
static void t_pure(void)
{
    rvt_begin("decode-pure");
    struct rv64_insn a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0xff, sizeof(b));
    for (size_t i = 0; i < sizeof(d32) / sizeof(d32[0]); i++) {
        rv64_decode(d32[i].raw, &a);
        rv64_decode(d32[i].raw, &b);
        EQN(d32[i].text, memcmp(&a, &b, sizeof(a)), 0);
    }
}

int main(void)
{
    rvt_init();
    t_table();
    t_illegal();
    t_pure();
    return rvt_done("test_rv64_decode");
}
