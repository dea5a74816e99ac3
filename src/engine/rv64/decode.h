/* rv64: operations of the pre-decoded instruction form.  Compressed
 * instructions decode to the same operations as their 32-bit expansions. */
#ifndef PETREL_RV64_DECODE_H
#define PETREL_RV64_DECODE_H

enum rv64_op {
    OP_ILLEGAL = 0,
    OP_LUI, OP_AUIPC, OP_JAL, OP_JALR,
    OP_BEQ, OP_BNE, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU,
    OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU,
    OP_SB, OP_SH, OP_SW, OP_SD,
    OP_ADDI, OP_SLTI, OP_SLTIU, OP_XORI, OP_ORI, OP_ANDI, OP_SLLI, OP_SRLI, OP_SRAI,
    OP_ADD, OP_SUB, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_SRA, OP_OR, OP_AND,
    OP_ADDIW, OP_SLLIW, OP_SRLIW, OP_SRAIW,
    OP_ADDW, OP_SUBW, OP_SLLW, OP_SRLW, OP_SRAW,
    OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU, OP_DIV, OP_DIVU, OP_REM, OP_REMU,
    OP_MULW, OP_DIVW, OP_DIVUW, OP_REMW, OP_REMUW,
    OP_FENCE, OP_FENCE_I, OP_ECALL, OP_EBREAK, OP_MRET, OP_SRET, OP_WFI, OP_SFENCE_VMA,
    OP_CSRRW, OP_CSRRS, OP_CSRRC, OP_CSRRWI, OP_CSRRSI, OP_CSRRCI,
    /* A: imm holds the AMO function (funct5) */
    OP_LR_W, OP_SC_W, OP_AMO_W, OP_LR_D, OP_SC_D, OP_AMO_D,
    /* F/D: rm is the rounding mode field, imm a sub-operation */
    OP_FLW, OP_FLD, OP_FSW, OP_FSD,
    OP_FMA_S, OP_FMA_D,           /* imm: bit0 negate product, bit1 negate addend */
    OP_FOP2_S, OP_FOP2_D,         /* imm: enum fpu_op2 */
    OP_FSQRT_S, OP_FSQRT_D,
    OP_FCMP_S, OP_FCMP_D,         /* imm: enum fpu_cmp */
    OP_FCLASS_S, OP_FCLASS_D,
    OP_FCVT_I_S, OP_FCVT_I_D,     /* float -> int, imm: enum fpu_int */
    OP_FCVT_S_I, OP_FCVT_D_I,     /* int -> float, imm: enum fpu_int */
    OP_FCVT_S_D, OP_FCVT_D_S,
    OP_FMV_X_W, OP_FMV_W_X, OP_FMV_X_D, OP_FMV_D_X,
    OP_ZB,                        /* Zba/Zbb: rm is enum rv64_zb, imm a shift amount */
    OP_COUNT
};

/* OP_FENCE's imm: fm (bits 11:8), pred PI PO PR PW (7:4), succ SI SO SR SW
 * (3:0) */
#define FENCE_PW 0x10
#define FENCE_SR 0x02
#define FENCE_FM_TSO 8
#define FENCE_PAUSE 0x010    /* Zihintpause: fence w,0 */

/* AMO funct5 values */
enum { AMO_ADD = 0x00, AMO_SWAP = 0x01, AMO_XOR = 0x04, AMO_OR = 0x08, AMO_AND = 0x0c,
       AMO_MIN = 0x10, AMO_MAX = 0x14, AMO_MINU = 0x18, AMO_MAXU = 0x1c };

#endif
