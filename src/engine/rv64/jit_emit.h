/* rv64 JIT: a small x86-64 instruction encoder (our own; only the forms
 * the translator needs).
 *
 * Operands: registers are host register numbers 0..15 (RAX..R15).  A memory
 * operand is base + disp32 (base any register; RSP/R12 get a SIB byte, RBP/
 * R13 always a displacement) or base + index + disp32 (scale 1).  Every
 * emitter writes into a bounded buffer; running past its end sets
 * `overflow`, and the caller throws the partial translation away. */
#ifndef PETREL_RV64_JIT_EMIT_H
#define PETREL_RV64_JIT_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
/* condition codes (the low nibble of Jcc/SETcc) */
enum { CC_O = 0, CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7, CC_S = 8,
       CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf };

struct jit_emit {
    uint8_t *buf;       /* writable view */
    size_t pos, cap;
    bool overflow;
};

/* A memory operand. */
struct xm {
    int base, index;    /* index -1: none */
    int32_t disp;
};
static inline struct xm M(int base, int32_t disp) { return (struct xm){ base, -1, disp }; }
static inline struct xm MX(int base, int index, int32_t disp) { return (struct xm){ base, index, disp }; }

static inline void e8(struct jit_emit *e, uint8_t b)
{
    if (e->pos < e->cap)
        e->buf[e->pos++] = b;
    else
        e->overflow = true;
}
static inline void e32(struct jit_emit *e, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        e8(e, (uint8_t)(v >> (8 * i)));
}
static inline void e64(struct jit_emit *e, uint64_t v)
{
    e32(e, (uint32_t)v);
    e32(e, (uint32_t)(v >> 32));
}

/* REX prefix: w = 64-bit operand; r/x/b extend ModRM.reg, SIB.index and
 * ModRM.rm/SIB.base.  force: emit even if 0x40 (byte registers SPL..DIL). */
static inline void rex(struct jit_emit *e, int w, int r, int x, int b, bool force)
{
    uint8_t v = (uint8_t)(0x40 | (w ? 8 : 0) | ((r & 8) ? 4 : 0) | ((x & 8) ? 2 : 0) |
                          ((b & 8) ? 1 : 0));
    if (v != 0x40 || force)
        e8(e, v);
}

static inline void modrm_mem(struct jit_emit *e, int reg, struct xm m)
{
    int mod = m.disp == 0 && (m.base & 7) != RBP ? 0 : (m.disp >= -128 && m.disp < 128 ? 1 : 2);
    if (m.index < 0 && (m.base & 7) != RSP) {
        e8(e, (uint8_t)((mod << 6) | ((reg & 7) << 3) | (m.base & 7)));
    } else {
        e8(e, (uint8_t)((mod << 6) | ((reg & 7) << 3) | 4));
        int idx = m.index < 0 ? RSP : m.index; /* 100: no index */
        e8(e, (uint8_t)(((idx & 7) << 3) | (m.base & 7)));
    }
    if (mod == 1)
        e8(e, (uint8_t)m.disp);
    else if (mod == 2)
        e32(e, (uint32_t)m.disp);
}

/* op reg, [mem] (or [mem], reg: the opcode decides).  op: 1-3 bytes, big
 * endian in the int (e.g. 0x0faf).  w: REX.W.  bytereg: reg is a byte
 * register (SPL..DIL need a REX). */
static inline void op_rm(struct jit_emit *e, int w, unsigned op, int reg, struct xm m,
                         bool bytereg)
{
    rex(e, w, reg, m.index < 0 ? 0 : m.index, m.base, bytereg && reg >= RSP);
    if (op > 0xffff)
        e8(e, (uint8_t)(op >> 16));
    if (op > 0xff)
        e8(e, (uint8_t)(op >> 8));
    e8(e, (uint8_t)op);
    modrm_mem(e, reg, m);
}

/* op reg, rm (register direct) */
static inline void op_rr(struct jit_emit *e, int w, unsigned op, int reg, int rm, bool bytereg)
{
    rex(e, w, reg, 0, rm, bytereg && (rm >= RSP || reg >= RSP));
    if (op > 0xffff)
        e8(e, (uint8_t)(op >> 16));
    if (op > 0xff)
        e8(e, (uint8_t)(op >> 8));
    e8(e, (uint8_t)op);
    e8(e, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

/* ---- moves ---- */
static inline void mov_rm64(struct jit_emit *e, int r, struct xm m) { op_rm(e, 1, 0x8b, r, m, false); }
static inline void mov_mr64(struct jit_emit *e, struct xm m, int r) { op_rm(e, 1, 0x89, r, m, false); }
static inline void mov_rm32(struct jit_emit *e, int r, struct xm m) { op_rm(e, 0, 0x8b, r, m, false); }
static inline void mov_mr32(struct jit_emit *e, struct xm m, int r) { op_rm(e, 0, 0x89, r, m, false); }
static inline void mov_mr16(struct jit_emit *e, struct xm m, int r)
{
    e8(e, 0x66);
    op_rm(e, 0, 0x89, r, m, false);
}
static inline void mov_mr8(struct jit_emit *e, struct xm m, int r) { op_rm(e, 0, 0x88, r, m, true); }
static inline void movzx8_rm(struct jit_emit *e, int r, struct xm m) { op_rm(e, 0, 0x0fb6, r, m, false); }
static inline void movzx16_rm(struct jit_emit *e, int r, struct xm m) { op_rm(e, 0, 0x0fb7, r, m, false); }
static inline void movsx8_rm(struct jit_emit *e, int r, struct xm m) { op_rm(e, 1, 0x0fbe, r, m, false); }
static inline void movsx16_rm(struct jit_emit *e, int r, struct xm m) { op_rm(e, 1, 0x0fbf, r, m, false); }
static inline void movsxd_rm(struct jit_emit *e, int r, struct xm m) { op_rm(e, 1, 0x63, r, m, false); }
static inline void movsxd_rr(struct jit_emit *e, int r, int s) { op_rr(e, 1, 0x63, r, s, false); }
static inline void mov_rr64(struct jit_emit *e, int d, int s) { op_rr(e, 1, 0x89, s, d, false); }
static inline void mov_rr32(struct jit_emit *e, int d, int s) { op_rr(e, 0, 0x89, s, d, false); }
static inline void movzx8_rr(struct jit_emit *e, int d, int s) { op_rr(e, 0, 0x0fb6, d, s, true); }
static inline void lea(struct jit_emit *e, int r, struct xm m) { op_rm(e, 1, 0x8d, r, m, false); }

/* r = imm (the shortest encoding) */
static inline void mov_ri(struct jit_emit *e, int r, uint64_t imm)
{
    if (imm <= 0xffffffffull) {             /* mov r32, imm32 (zero-extends) */
        rex(e, 0, 0, 0, r, false);
        e8(e, (uint8_t)(0xb8 | (r & 7)));
        e32(e, (uint32_t)imm);
    } else if ((int64_t)imm == (int32_t)imm) { /* mov r64, simm32 */
        rex(e, 1, 0, 0, r, false);
        e8(e, 0xc7);
        e8(e, (uint8_t)(0xc0 | (r & 7)));
        e32(e, (uint32_t)imm);
    } else {
        rex(e, 1, 0, 0, r, false);
        e8(e, (uint8_t)(0xb8 | (r & 7)));
        e64(e, imm);
    }
}
/* qword [m] = sign-extended imm32 */
static inline void mov_mi64(struct jit_emit *e, struct xm m, int32_t imm)
{
    op_rm(e, 1, 0xc7, 0, m, false);
    e32(e, (uint32_t)imm);
}

/* ---- ALU: group 1 (ADD 0, OR 1, AND 4, SUB 5, XOR 6, CMP 7) ---- */
enum { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };
static inline void alu_rm(struct jit_emit *e, int w, int alu, int r, struct xm m)
{
    op_rm(e, w, (unsigned)(alu * 8 + 3), r, m, false);
}
static inline void alu_rr(struct jit_emit *e, int w, int alu, int d, int s)
{
    op_rr(e, w, (unsigned)(alu * 8 + 1), s, d, false);
}
static inline void alu_ri(struct jit_emit *e, int w, int alu, int r, int32_t imm)
{
    if (imm >= -128 && imm < 128) {
        op_rr(e, w, 0x83, alu, r, false);
        e8(e, (uint8_t)imm);
    } else {
        op_rr(e, w, 0x81, alu, r, false);
        e32(e, (uint32_t)imm);
    }
}
static inline void alu_mi(struct jit_emit *e, int w, int alu, struct xm m, int32_t imm)
{
    if (imm >= -128 && imm < 128) {
        op_rm(e, w, 0x83, alu, m, false);
        e8(e, (uint8_t)imm);
    } else {
        op_rm(e, w, 0x81, alu, m, false);
        e32(e, (uint32_t)imm);
    }
}
static inline void cmp_mi8(struct jit_emit *e, struct xm m, int8_t imm)
{
    op_rm(e, 0, 0x80, 7, m, false);
    e8(e, (uint8_t)imm);
}
static inline void test_rr(struct jit_emit *e, int w, int a, int b) { op_rr(e, w, 0x85, b, a, false); }

/* ---- shifts (SHL 4, SHR 5, SAR 7) ---- */
enum { SH_SHL = 4, SH_SHR = 5, SH_SAR = 7 };
static inline void shift_ri(struct jit_emit *e, int w, int sh, int r, uint8_t n)
{
    op_rr(e, w, 0xc1, sh, r, false);
    e8(e, n);
}
static inline void shift_rcl(struct jit_emit *e, int w, int sh, int r) { op_rr(e, w, 0xd3, sh, r, false); }

/* ---- multiply/divide group 3 (NOT 2, NEG 3, MUL 4, IMUL 5, DIV 6, IDIV 7) ---- */
enum { G3_NOT = 2, G3_NEG = 3, G3_MUL = 4, G3_IMUL = 5, G3_DIV = 6, G3_IDIV = 7 };
static inline void grp3_r(struct jit_emit *e, int w, int g, int r) { op_rr(e, w, 0xf7, g, r, false); }
static inline void grp3_m(struct jit_emit *e, int w, int g, struct xm m) { op_rm(e, w, 0xf7, g, m, false); }
static inline void imul_rm(struct jit_emit *e, int w, int r, struct xm m) { op_rm(e, w, 0x0faf, r, m, false); }
static inline void imul_rr(struct jit_emit *e, int w, int r, int s) { op_rr(e, w, 0x0faf, r, s, false); }
static inline void cqo(struct jit_emit *e) { e8(e, 0x48); e8(e, 0x99); }
static inline void cdq(struct jit_emit *e) { e8(e, 0x99); }

static inline void setcc(struct jit_emit *e, int cc, int r) { op_rr(e, 0, 0x0f90u | (unsigned)cc, 0, r, true); }

/* ---- control flow ---- */
/* Jcc/JMP rel32 to a later place: returns the offset of the rel32 field,
 * to be fixed with patch_here() or patch_to(). */
static inline size_t jcc_fwd(struct jit_emit *e, int cc)
{
    e8(e, 0x0f);
    e8(e, (uint8_t)(0x80 | cc));
    e32(e, 0);
    return e->pos - 4;
}
static inline size_t jmp_fwd(struct jit_emit *e)
{
    e8(e, 0xe9);
    e32(e, 0);
    return e->pos - 4;
}
static inline void patch_to(struct jit_emit *e, size_t at, size_t target)
{
    if (at + 4 > e->cap || e->overflow)
        return;
    int32_t rel = (int32_t)((int64_t)target - (int64_t)(at + 4));
    memcpy(e->buf + at, &rel, 4);
}
static inline void patch_here(struct jit_emit *e, size_t at) { patch_to(e, at, e->pos); }
static inline void jcc_to(struct jit_emit *e, int cc, size_t target) { patch_to(e, jcc_fwd(e, cc), target); }
static inline void jmp_to(struct jit_emit *e, size_t target) { patch_to(e, jmp_fwd(e), target); }
static inline void call_r(struct jit_emit *e, int r) { op_rr(e, 0, 0xff, 2, r, false); }
static inline void jmp_r(struct jit_emit *e, int r) { op_rr(e, 0, 0xff, 4, r, false); }
static inline void push_r(struct jit_emit *e, int r) { rex(e, 0, 0, 0, r, false); e8(e, (uint8_t)(0x50 | (r & 7))); }
static inline void pop_r(struct jit_emit *e, int r) { rex(e, 0, 0, 0, r, false); e8(e, (uint8_t)(0x58 | (r & 7))); }
static inline void ret(struct jit_emit *e) { e8(e, 0xc3); }

#endif
