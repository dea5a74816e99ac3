/* rv64: decoding of Zba and Zbb (the encodings are disjoint from the base
 * ISA's, so the main decoder tries these first). */
#include "engine/rv64/bitmanip.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/rv64.h"

static bool zb(struct rv64_insn *d, unsigned op, unsigned rd, unsigned rs1, unsigned rs2,
               unsigned sh)
{
    d->op = OP_ZB;
    d->rm = (uint8_t)op;
    d->rd = (uint8_t)rd;
    d->rs1 = (uint8_t)rs1;
    d->rs2 = (uint8_t)rs2;
    d->imm = (int32_t)sh;
    return true;
}

bool rv64_decode_zb(uint32_t raw, struct rv64_insn *d)
{
    unsigned rd = (raw >> 7) & 31, rs1 = (raw >> 15) & 31, rs2 = (raw >> 20) & 31;
    unsigned f3 = (raw >> 12) & 7, f7 = raw >> 25, f6 = raw >> 26, imm12 = raw >> 20;
    switch (raw & 0x7f) {
    case 0x33: /* OP */
        if (f7 == 0x10 && (f3 == 2 || f3 == 4 || f3 == 6))
            return zb(d, f3 == 2 ? ZB_SH1ADD : f3 == 4 ? ZB_SH2ADD : ZB_SH3ADD, rd, rs1, rs2, 0);
        if (f7 == 0x20 && (f3 == 4 || f3 == 6 || f3 == 7))
            return zb(d, f3 == 4 ? ZB_XNOR : f3 == 6 ? ZB_ORN : ZB_ANDN, rd, rs1, rs2, 0);
        if (f7 == 0x05 && f3 >= 4) {
            static const unsigned ops[4] = { ZB_MIN, ZB_MINU, ZB_MAX, ZB_MAXU };
            return zb(d, ops[f3 - 4], rd, rs1, rs2, 0);
        }
        if (f7 == 0x30 && (f3 == 1 || f3 == 5))
            return zb(d, f3 == 1 ? ZB_ROL : ZB_ROR, rd, rs1, rs2, 0);
        return false;
    case 0x3b: /* OP-32 */
        if (f7 == 0x04 && f3 == 0)
            return zb(d, ZB_ADD_UW, rd, rs1, rs2, 0);
        if (f7 == 0x04 && f3 == 4 && rs2 == 0)
            return zb(d, ZB_ZEXT_H, rd, rs1, 0, 0);
        if (f7 == 0x10 && (f3 == 2 || f3 == 4 || f3 == 6))
            return zb(d, f3 == 2 ? ZB_SH1ADD_UW : f3 == 4 ? ZB_SH2ADD_UW : ZB_SH3ADD_UW, rd, rs1,
                      rs2, 0);
        if (f7 == 0x30 && (f3 == 1 || f3 == 5))
            return zb(d, f3 == 1 ? ZB_ROLW : ZB_RORW, rd, rs1, rs2, 0);
        return false;
    case 0x13: /* OP-IMM */
        if (f3 == 1) {
            static const unsigned ops[6] = { ZB_CLZ, ZB_CTZ, ZB_CPOP, 0, ZB_SEXT_B, ZB_SEXT_H };
            if (f7 == 0x30 && rs2 < 6 && rs2 != 3)
                return zb(d, ops[rs2], rd, rs1, 0, 0);
            return false;
        }
        if (f3 == 5) {
            if (f6 == 0x18)
                return zb(d, ZB_RORI, rd, rs1, 0, (raw >> 20) & 63);
            if (imm12 == 0x287)
                return zb(d, ZB_ORC_B, rd, rs1, 0, 0);
            if (imm12 == 0x6b8)
                return zb(d, ZB_REV8, rd, rs1, 0, 0);
        }
        return false;
    case 0x1b: /* OP-IMM-32 */
        if (f3 == 1 && f6 == 0x02)
            return zb(d, ZB_SLLI_UW, rd, rs1, 0, (raw >> 20) & 63);
        if (f3 == 1 && f7 == 0x30 && rs2 <= 2)
            return zb(d, rs2 == 0 ? ZB_CLZW : rs2 == 1 ? ZB_CTZW : ZB_CPOPW, rd, rs1, 0, 0);
        if (f3 == 5 && f7 == 0x30)
            return zb(d, ZB_RORIW, rd, rs1, 0, rs2);
        return false;
    default:
        return false;
    }
}
