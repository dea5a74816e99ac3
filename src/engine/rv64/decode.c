/* rv64: instruction decoder.  Pure function of the instruction bits. */
#include <string.h>

#include "engine/rv64/bitmanip.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/fpu.h"
#include "engine/rv64/rv64.h"

static inline uint32_t bits(uint32_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & ((1u << (hi - lo + 1)) - 1);
}

static inline int64_t sext(uint64_t v, unsigned width)
{
    return (int64_t)(v << (64 - width)) >> (64 - width);
}

static void set(struct rv64_insn *d, unsigned op, unsigned rd, unsigned rs1, unsigned rs2,
                int64_t imm)
{
    d->op = (uint16_t)op;
    d->rd = (uint8_t)rd;
    d->rs1 = (uint8_t)rs1;
    d->rs2 = (uint8_t)rs2;
    d->imm = (int32_t)imm; /* every RV64 immediate fits in 32 bits */
}

/* A rounding mode field: 5 and 6 are reserved (illegal at decode);
 * 7 (dynamic) is checked against frm at execution. */
static bool rm_ok(unsigned rm) { return rm != 5 && rm != 6; }

static void decode_fp(uint32_t raw, struct rv64_insn *d)
{
    unsigned rd = bits(raw, 11, 7), rs1 = bits(raw, 19, 15), rs2 = bits(raw, 24, 20);
    unsigned f3 = bits(raw, 14, 12), f7 = bits(raw, 31, 25);
    bool dbl = f7 & 1;
    d->rm = (uint8_t)f3;
    switch (f7 >> 2) {
    case 0x00: case 0x01: case 0x02: case 0x03: { /* add sub mul div */
        static const int ops[] = { FPU_ADD, FPU_SUB, FPU_MUL, FPU_DIV };
        if ((f7 & 2) || !rm_ok(f3))
            return;
        set(d, dbl ? OP_FOP2_D : OP_FOP2_S, rd, rs1, rs2, ops[f7 >> 2]);
        return;
    }
    case 0x0b: /* sqrt */
        if ((f7 & 2) || rs2 != 0 || !rm_ok(f3))
            return;
        set(d, dbl ? OP_FSQRT_D : OP_FSQRT_S, rd, rs1, 0, 0);
        return;
    case 0x04: /* sgnj */
        if ((f7 & 2) || f3 > 2)
            return;
        set(d, dbl ? OP_FOP2_D : OP_FOP2_S, rd, rs1, rs2, FPU_SGNJ + f3);
        return;
    case 0x05: /* min max */
        if ((f7 & 2) || f3 > 1)
            return;
        set(d, dbl ? OP_FOP2_D : OP_FOP2_S, rd, rs1, rs2, f3 ? FPU_MAX : FPU_MIN);
        return;
    case 0x08: /* fcvt.s.d (f7 0x20, rs2 1) / fcvt.d.s (f7 0x21, rs2 0) */
        if (!rm_ok(f3))
            return;
        if (f7 == 0x20 && rs2 == 1)
            set(d, OP_FCVT_S_D, rd, rs1, 0, 0);
        else if (f7 == 0x21 && rs2 == 0)
            set(d, OP_FCVT_D_S, rd, rs1, 0, 0);
        return;
    case 0x14: /* compare: f3 0 le, 1 lt, 2 eq */
        if ((f7 & 2) || f3 > 2)
            return;
        set(d, dbl ? OP_FCMP_D : OP_FCMP_S, rd, rs1, rs2,
            f3 == 0 ? FPU_LE : f3 == 1 ? FPU_LT : FPU_EQ);
        return;
    case 0x18: /* fcvt.int.fp */
        if ((f7 & 2) || rs2 > 3 || !rm_ok(f3))
            return;
        set(d, dbl ? OP_FCVT_I_D : OP_FCVT_I_S, rd, rs1, 0, rs2);
        return;
    case 0x1a: /* fcvt.fp.int */
        if ((f7 & 2) || rs2 > 3 || !rm_ok(f3))
            return;
        set(d, dbl ? OP_FCVT_D_I : OP_FCVT_S_I, rd, rs1, 0, rs2);
        return;
    case 0x1c: /* fmv.x / fclass */
        if ((f7 & 2) || rs2 != 0)
            return;
        if (f3 == 0)
            set(d, dbl ? OP_FMV_X_D : OP_FMV_X_W, rd, rs1, 0, 0);
        else if (f3 == 1)
            set(d, dbl ? OP_FCLASS_D : OP_FCLASS_S, rd, rs1, 0, 0);
        return;
    case 0x1e: /* fmv.w.x / fmv.d.x */
        if ((f7 & 2) || rs2 != 0 || f3 != 0)
            return;
        set(d, dbl ? OP_FMV_D_X : OP_FMV_W_X, rd, rs1, 0, 0);
        return;
    default:
        return;
    }
}

static void decode32(uint32_t raw, struct rv64_insn *d)
{
    unsigned rd = bits(raw, 11, 7), rs1 = bits(raw, 19, 15), rs2 = bits(raw, 24, 20);
    unsigned f3 = bits(raw, 14, 12), f7 = bits(raw, 31, 25);
    int64_t imm_i = (int32_t)raw >> 20;
    int64_t imm_s = (int64_t)((int32_t)raw >> 25) * 32 + bits(raw, 11, 7);
    int64_t imm_b = sext((bits(raw, 31, 31) << 12) | (bits(raw, 7, 7) << 11) |
                         (bits(raw, 30, 25) << 5) | (bits(raw, 11, 8) << 1), 13);
    int64_t imm_u = (int32_t)(raw & 0xfffff000u);
    int64_t imm_j = sext((bits(raw, 31, 31) << 20) | (bits(raw, 19, 12) << 12) |
                         (bits(raw, 20, 20) << 11) | (bits(raw, 30, 21) << 1), 21);

    if (rv64_decode_zb(raw, d))
        return;

    switch (raw & 0x7f) {
    case 0x37: set(d, OP_LUI, rd, 0, 0, imm_u); return;
    case 0x17: set(d, OP_AUIPC, rd, 0, 0, imm_u); return;
    case 0x6f: set(d, OP_JAL, rd, 0, 0, imm_j); return;
    case 0x67:
        if (f3 == 0)
            set(d, OP_JALR, rd, rs1, 0, imm_i);
        return;
    case 0x63: {
        static const int ops[8] = { OP_BEQ, OP_BNE, 0, 0, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU };
        if (ops[f3])
            set(d, ops[f3], 0, rs1, rs2, imm_b);
        return;
    }
    case 0x03: {
        static const int ops[8] = { OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU, 0 };
        if (ops[f3])
            set(d, ops[f3], rd, rs1, 0, imm_i);
        return;
    }
    case 0x23: {
        static const int ops[8] = { OP_SB, OP_SH, OP_SW, OP_SD, 0, 0, 0, 0 };
        if (ops[f3])
            set(d, ops[f3], 0, rs1, rs2, imm_s);
        return;
    }
    case 0x13:
        switch (f3) {
        case 0: set(d, OP_ADDI, rd, rs1, 0, imm_i); return;
        case 2: set(d, OP_SLTI, rd, rs1, 0, imm_i); return;
        case 3: set(d, OP_SLTIU, rd, rs1, 0, imm_i); return;
        case 4: set(d, OP_XORI, rd, rs1, 0, imm_i); return;
        case 6: set(d, OP_ORI, rd, rs1, 0, imm_i); return;
        case 7: set(d, OP_ANDI, rd, rs1, 0, imm_i); return;
        case 1:
            if (bits(raw, 31, 26) == 0)
                set(d, OP_SLLI, rd, rs1, 0, bits(raw, 25, 20));
            return;
        case 5:
            if (bits(raw, 31, 26) == 0)
                set(d, OP_SRLI, rd, rs1, 0, bits(raw, 25, 20));
            else if (bits(raw, 31, 26) == 0x10)
                set(d, OP_SRAI, rd, rs1, 0, bits(raw, 25, 20));
            return;
        }
        return;
    case 0x1b:
        if (f3 == 0)
            set(d, OP_ADDIW, rd, rs1, 0, imm_i);
        else if (f3 == 1 && f7 == 0)
            set(d, OP_SLLIW, rd, rs1, 0, rs2);
        else if (f3 == 5 && f7 == 0)
            set(d, OP_SRLIW, rd, rs1, 0, rs2);
        else if (f3 == 5 && f7 == 0x20)
            set(d, OP_SRAIW, rd, rs1, 0, rs2);
        return;
    case 0x33: {
        static const int base[8] = { OP_ADD, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_OR, OP_AND };
        static const int mul[8] = { OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU,
                                    OP_DIV, OP_DIVU, OP_REM, OP_REMU };
        if (f7 == 0)
            set(d, base[f3], rd, rs1, rs2, 0);
        else if (f7 == 1)
            set(d, mul[f3], rd, rs1, rs2, 0);
        else if (f7 == 0x20 && f3 == 0)
            set(d, OP_SUB, rd, rs1, rs2, 0);
        else if (f7 == 0x20 && f3 == 5)
            set(d, OP_SRA, rd, rs1, rs2, 0);
        return;
    }
    case 0x3b:
        if (f7 == 0 && f3 == 0) set(d, OP_ADDW, rd, rs1, rs2, 0);
        else if (f7 == 0x20 && f3 == 0) set(d, OP_SUBW, rd, rs1, rs2, 0);
        else if (f7 == 0 && f3 == 1) set(d, OP_SLLW, rd, rs1, rs2, 0);
        else if (f7 == 0 && f3 == 5) set(d, OP_SRLW, rd, rs1, rs2, 0);
        else if (f7 == 0x20 && f3 == 5) set(d, OP_SRAW, rd, rs1, rs2, 0);
        else if (f7 == 1 && f3 == 0) set(d, OP_MULW, rd, rs1, rs2, 0);
        else if (f7 == 1 && f3 == 4) set(d, OP_DIVW, rd, rs1, rs2, 0);
        else if (f7 == 1 && f3 == 5) set(d, OP_DIVUW, rd, rs1, rs2, 0);
        else if (f7 == 1 && f3 == 6) set(d, OP_REMW, rd, rs1, rs2, 0);
        else if (f7 == 1 && f3 == 7) set(d, OP_REMUW, rd, rs1, rs2, 0);
        return;
    case 0x0f:
        if (f3 == 0)
            /* includes PAUSE (Zihintpause); imm: fm, pred, succ */
            set(d, OP_FENCE, 0, 0, 0, bits(raw, 31, 20));
        else if (f3 == 1)
            set(d, OP_FENCE_I, 0, 0, 0, 0);
        return;
    case 0x73:
        if (f3 == 0) {
            if (raw == 0x00000073) set(d, OP_ECALL, 0, 0, 0, 0);
            else if (raw == 0x00100073) set(d, OP_EBREAK, 0, 0, 0, 0);
            else if (raw == 0x30200073) set(d, OP_MRET, 0, 0, 0, 0);
            else if (raw == 0x10200073) set(d, OP_SRET, 0, 0, 0, 0);
            else if (raw == 0x10500073) set(d, OP_WFI, 0, 0, 0, 0);
            else if (f7 == 0x09 && rd == 0) set(d, OP_SFENCE_VMA, 0, rs1, rs2, 0);
            return;
        }
        if (f3 == 4)
            return;
        {
            static const int ops[8] = { 0, OP_CSRRW, OP_CSRRS, OP_CSRRC,
                                        0, OP_CSRRWI, OP_CSRRSI, OP_CSRRCI };
            set(d, ops[f3], rd, rs1, 0, bits(raw, 31, 20));
        }
        return;
    case 0x2f: {
        unsigned f5 = bits(raw, 31, 27);
        bool dw = f3 == 3;
        if (f3 != 2 && f3 != 3)
            return;
        d->rm = (uint8_t)bits(raw, 26, 25); /* aq/rl: AMOs are full host barriers */
        if (f5 == 0x02) {
            if (rs2 == 0)
                set(d, dw ? OP_LR_D : OP_LR_W, rd, rs1, 0, 0);
        } else if (f5 == 0x03) {
            set(d, dw ? OP_SC_D : OP_SC_W, rd, rs1, rs2, 0);
        } else if (f5 == AMO_ADD || f5 == AMO_SWAP || f5 == AMO_XOR || f5 == AMO_OR ||
                   f5 == AMO_AND || f5 == AMO_MIN || f5 == AMO_MAX || f5 == AMO_MINU ||
                   f5 == AMO_MAXU) {
            set(d, dw ? OP_AMO_D : OP_AMO_W, rd, rs1, rs2, f5);
        }
        return;
    }
    case 0x07:
        if (f3 == 2) set(d, OP_FLW, rd, rs1, 0, imm_i);
        else if (f3 == 3) set(d, OP_FLD, rd, rs1, 0, imm_i);
        return;
    case 0x27:
        if (f3 == 2) set(d, OP_FSW, 0, rs1, rs2, imm_s);
        else if (f3 == 3) set(d, OP_FSD, 0, rs1, rs2, imm_s);
        return;
    case 0x43: case 0x47: case 0x4b: case 0x4f: {
        unsigned fmt = bits(raw, 26, 25);
        unsigned variant = bits(raw, 3, 2); /* 0 madd 1 msub 2 nmsub 3 nmadd */
        static const int neg[4] = { 0, 2, 1, 3 };
        if (fmt > 1 || !rm_ok(f3))
            return;
        set(d, fmt ? OP_FMA_D : OP_FMA_S, rd, rs1, rs2, neg[variant]);
        d->rs3 = (uint8_t)bits(raw, 31, 27);
        d->rm = (uint8_t)f3;
        return;
    }
    case 0x53:
        decode_fp(raw, d);
        return;
    default:
        return;
    }
}

/* Compressed registers rd'/rs1'/rs2' are x8..x15. */
#define CR(v) (8 + (v))

static void decode16(uint32_t c, struct rv64_insn *d)
{
    unsigned f3 = bits(c, 15, 13);
    unsigned r = bits(c, 11, 7), r2 = bits(c, 6, 2);
    unsigned rp = CR(bits(c, 9, 7)), r2p = CR(bits(c, 4, 2));
    int64_t imm6 = sext((bits(c, 12, 12) << 5) | bits(c, 6, 2), 6);
    unsigned shamt = (bits(c, 12, 12) << 5) | bits(c, 6, 2);
    unsigned uimm_d = (bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6);          /* c.ld/fld/sd/fsd */
    unsigned uimm_w = (bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6);

    switch (c & 3) {
    case 0:
        switch (f3) {
        case 0: {
            unsigned imm = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) |
                           (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 3);
            if (imm)
                set(d, OP_ADDI, r2p, 2, 0, imm);
            return;
        }
        case 1: set(d, OP_FLD, r2p, rp, 0, uimm_d); return;
        case 2: set(d, OP_LW, r2p, rp, 0, uimm_w); return;
        case 3: set(d, OP_LD, r2p, rp, 0, uimm_d); return;
        case 5: set(d, OP_FSD, 0, rp, r2p, uimm_d); return;
        case 6: set(d, OP_SW, 0, rp, r2p, uimm_w); return;
        case 7: set(d, OP_SD, 0, rp, r2p, uimm_d); return;
        default: return;
        }
    case 1:
        switch (f3) {
        case 0: set(d, OP_ADDI, r, r, 0, imm6); return;
        case 1:
            if (r)
                set(d, OP_ADDIW, r, r, 0, imm6);
            return;
        case 2: set(d, OP_ADDI, r, 0, 0, imm6); return;
        case 3:
            if (r == 2) {
                int64_t imm = sext((bits(c, 12, 12) << 9) | (bits(c, 6, 6) << 4) |
                                   (bits(c, 5, 5) << 6) | (bits(c, 4, 3) << 7) |
                                   (bits(c, 2, 2) << 5), 10);
                if (imm)
                    set(d, OP_ADDI, 2, 2, 0, imm);
            } else if (imm6) {
                set(d, OP_LUI, r, 0, 0, imm6 * 4096);
            }
            return;
        case 4: {
            unsigned f2 = bits(c, 11, 10);
            if (f2 == 0)
                set(d, OP_SRLI, rp, rp, 0, shamt);
            else if (f2 == 1)
                set(d, OP_SRAI, rp, rp, 0, shamt);
            else if (f2 == 2)
                set(d, OP_ANDI, rp, rp, 0, imm6);
            else {
                static const int ops[8] = { OP_SUB, OP_XOR, OP_OR, OP_AND, OP_SUBW, OP_ADDW, 0, 0 };
                int op = ops[(bits(c, 12, 12) << 2) | bits(c, 6, 5)];
                if (op)
                    set(d, op, rp, rp, r2p, 0);
            }
            return;
        }
        case 5: {
            int64_t imm = sext((bits(c, 12, 12) << 11) | (bits(c, 11, 11) << 4) |
                               (bits(c, 10, 9) << 8) | (bits(c, 8, 8) << 10) |
                               (bits(c, 7, 7) << 6) | (bits(c, 6, 6) << 7) |
                               (bits(c, 5, 3) << 1) | (bits(c, 2, 2) << 5), 12);
            set(d, OP_JAL, 0, 0, 0, imm);
            return;
        }
        case 6: case 7: {
            int64_t imm = sext((bits(c, 12, 12) << 8) | (bits(c, 11, 10) << 3) |
                               (bits(c, 6, 5) << 6) | (bits(c, 4, 3) << 1) |
                               (bits(c, 2, 2) << 5), 9);
            set(d, f3 == 6 ? OP_BEQ : OP_BNE, 0, rp, 0, imm);
            return;
        }
        }
        return;
    case 2:
        switch (f3) {
        case 0: set(d, OP_SLLI, r, r, 0, shamt); return;
        case 1:
            set(d, OP_FLD, r, 2, 0,
                (bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6));
            return;
        case 2:
            if (r)
                set(d, OP_LW, r, 2, 0,
                    (bits(c, 12, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6));
            return;
        case 3:
            if (r)
                set(d, OP_LD, r, 2, 0,
                    (bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6));
            return;
        case 4:
            if (!bits(c, 12, 12)) {
                if (r2 == 0) {
                    if (r)
                        set(d, OP_JALR, 0, r, 0, 0);
                } else {
                    set(d, OP_ADD, r, 0, r2, 0);
                }
            } else {
                if (r2 == 0 && r == 0)
                    set(d, OP_EBREAK, 0, 0, 0, 0);
                else if (r2 == 0)
                    set(d, OP_JALR, 1, r, 0, 0);
                else
                    set(d, OP_ADD, r, r, r2, 0);
            }
            return;
        case 5:
            set(d, OP_FSD, 0, 2, r2, (bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6));
            return;
        case 6:
            set(d, OP_SW, 0, 2, r2, (bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6));
            return;
        case 7:
            set(d, OP_SD, 0, 2, r2, (bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6));
            return;
        }
        return;
    default:
        return;
    }
}

void rv64_decode(uint32_t raw, struct rv64_insn *d)
{
    memset(d, 0, sizeof(*d));
    d->raw = raw;
    if ((raw & 3) == 3) {
        d->len = 4;
        decode32(raw, d);
    } else {
        d->len = 2;
        decode16(raw & 0xffff, d);
    }
}
