/* rv64: the interpreter loop.
 *
 * Each step: fetch through the fetch TLB (fast path: one compare, one load),
 * look the instruction word up in the decode cache, dispatch on the
 * pre-decoded operation.  Memory operations take the TLB fast path and fall
 * back to mmu.c.  An instruction that traps calls rv64_trap() and does not
 * retire.  The loop leaves early when h->slice_end is set (CSR writes that
 * may enable interrupts, device accesses, WFI, xRET). */
#include <stdio.h>
#include <string.h>

#include "engine/rv64/amo.h"
#include "engine/rv64/bitmanip.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/rv64.h"

#define PAUSE_YIELD 64    /* PAUSE hints in a slice that yield the host CPU */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline uint8_t *tlb_hit(struct rv64_hart *h, unsigned ctx, int acc, uint64_t va,
                               unsigned size)
{
    struct rv64_tlb_entry *e = &h->tlb[ctx][acc][(va >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag == ((va & ~0xfffull) | h->tlb_gen) && (va & 0xfff) + size <= 0x1000))
        return (uint8_t *)(uintptr_t)(va + e->addend);
    return NULL;
}

static inline int load(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *v)
{
    uint8_t *p = tlb_hit(h, h->ctx_data, ACC_LOAD, va, size);
    if (likely(p)) {
        uint64_t x = 0;
        memcpy(&x, p, size);
        *v = x;
        return 0;
    }
    return rv64_load_slow(h, va, size, v);
}

static inline int store(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t v)
{
    uint8_t *p = tlb_hit(h, h->ctx_data, ACC_STORE, va, size);
    if (likely(p)) {
        memcpy(p, &v, size);
        return 0;
    }
    return rv64_store_slow(h, va, size, v);
}

static inline uint32_t dcache_index(uint64_t pc)
{
    return (uint32_t)(pc >> 1) & ((1u << DCACHE_BITS) - 1);
}

/* Resolve an instruction's rounding mode; -1 if illegal (dynamic with a
 * reserved frm). */
static inline int rmode(const struct rv64_hart *h, unsigned rm)
{
    if (rm == 7)
        rm = h->frm;
    return rm <= 4 ? (int)rm : -1;
}

static inline int64_t mulh(int64_t a, int64_t b)
{
    return (int64_t)(((__int128)a * b) >> 64);
}
static inline uint64_t mulhu(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
static inline int64_t mulhsu(int64_t a, uint64_t b)
{
    return (int64_t)(((__int128)a * (unsigned __int128)b) >> 64);
}

/* Fetch slow path: TLB lookup (remembering the page), else the full walk. */
static inline int fetch_refill(struct rv64_hart *h, uint64_t pc, uint32_t *raw, uint64_t *fpage,
                               uintptr_t *faddend)
{
    uint8_t *fp = tlb_hit(h, h->ctx_fetch, ACC_FETCH, pc, 4);
    if (fp) {
        memcpy(raw, fp, 4);
        *fpage = pc & ~0xfffull;
        *faddend = (uintptr_t)fp - (uintptr_t)pc;
        return 0;
    }
    return rv64_fetch_slow(h, pc, raw);
}

#define BOX32(v) (0xffffffff00000000ull | (uint32_t)(v))

uint64_t rv64_exec(struct rv64_hart *h, uint64_t budget)
{
    /* Threaded dispatch: every handler ends in NEXT(), which retires the
     * instruction and fetches, decodes and jumps to the next one, so each
     * handler has its own (better predicted) indirect branch. */
    static const void *const jt[OP_COUNT] = {
        [OP_ILLEGAL] = &&illegal,
        [OP_LUI] = &&L_OP_LUI,
        [OP_AUIPC] = &&L_OP_AUIPC,
        [OP_JAL] = &&L_OP_JAL,
        [OP_JALR] = &&L_OP_JALR,
        [OP_BEQ] = &&L_OP_BEQ,
        [OP_BNE] = &&L_OP_BNE,
        [OP_BLT] = &&L_OP_BLT,
        [OP_BGE] = &&L_OP_BGE,
        [OP_BLTU] = &&L_OP_BLTU,
        [OP_BGEU] = &&L_OP_BGEU,
        [OP_LB] = &&L_OP_LB,
        [OP_LH] = &&L_OP_LH,
        [OP_LW] = &&L_OP_LW,
        [OP_LD] = &&L_OP_LD,
        [OP_LBU] = &&L_OP_LBU,
        [OP_LHU] = &&L_OP_LHU,
        [OP_LWU] = &&L_OP_LWU,
        [OP_SB] = &&L_OP_SB,
        [OP_SH] = &&L_OP_SH,
        [OP_SW] = &&L_OP_SW,
        [OP_SD] = &&L_OP_SD,
        [OP_ADDI] = &&L_OP_ADDI,
        [OP_SLTI] = &&L_OP_SLTI,
        [OP_SLTIU] = &&L_OP_SLTIU,
        [OP_XORI] = &&L_OP_XORI,
        [OP_ORI] = &&L_OP_ORI,
        [OP_ANDI] = &&L_OP_ANDI,
        [OP_SLLI] = &&L_OP_SLLI,
        [OP_SRLI] = &&L_OP_SRLI,
        [OP_SRAI] = &&L_OP_SRAI,
        [OP_ADD] = &&L_OP_ADD,
        [OP_SUB] = &&L_OP_SUB,
        [OP_SLL] = &&L_OP_SLL,
        [OP_SLT] = &&L_OP_SLT,
        [OP_SLTU] = &&L_OP_SLTU,
        [OP_XOR] = &&L_OP_XOR,
        [OP_SRL] = &&L_OP_SRL,
        [OP_SRA] = &&L_OP_SRA,
        [OP_OR] = &&L_OP_OR,
        [OP_AND] = &&L_OP_AND,
        [OP_ADDIW] = &&L_OP_ADDIW,
        [OP_SLLIW] = &&L_OP_SLLIW,
        [OP_SRLIW] = &&L_OP_SRLIW,
        [OP_SRAIW] = &&L_OP_SRAIW,
        [OP_ADDW] = &&L_OP_ADDW,
        [OP_SUBW] = &&L_OP_SUBW,
        [OP_SLLW] = &&L_OP_SLLW,
        [OP_SRLW] = &&L_OP_SRLW,
        [OP_SRAW] = &&L_OP_SRAW,
        [OP_MUL] = &&L_OP_MUL,
        [OP_MULH] = &&L_OP_MULH,
        [OP_MULHSU] = &&L_OP_MULHSU,
        [OP_MULHU] = &&L_OP_MULHU,
        [OP_DIV] = &&L_OP_DIV,
        [OP_DIVU] = &&L_OP_DIVU,
        [OP_REM] = &&L_OP_REM,
        [OP_REMU] = &&L_OP_REMU,
        [OP_MULW] = &&L_OP_MULW,
        [OP_DIVW] = &&L_OP_DIVW,
        [OP_DIVUW] = &&L_OP_DIVUW,
        [OP_REMW] = &&L_OP_REMW,
        [OP_REMUW] = &&L_OP_REMUW,
        [OP_FENCE] = &&L_OP_FENCE,
        [OP_FENCE_I] = &&L_OP_FENCE_I,
        [OP_ECALL] = &&L_OP_ECALL,
        [OP_EBREAK] = &&L_OP_EBREAK,
        [OP_MRET] = &&L_OP_MRET,
        [OP_SRET] = &&L_OP_SRET,
        [OP_WFI] = &&L_OP_WFI,
        [OP_SFENCE_VMA] = &&L_OP_SFENCE_VMA,
        [OP_CSRRW] = &&L_OP_CSRRW,
        [OP_CSRRS] = &&L_OP_CSRRS,
        [OP_CSRRC] = &&L_OP_CSRRC,
        [OP_CSRRWI] = &&L_OP_CSRRWI,
        [OP_CSRRSI] = &&L_OP_CSRRSI,
        [OP_CSRRCI] = &&L_OP_CSRRCI,
        [OP_LR_W] = &&L_OP_LR_W,
        [OP_SC_W] = &&L_OP_SC_W,
        [OP_AMO_W] = &&L_OP_AMO_W,
        [OP_LR_D] = &&L_OP_LR_D,
        [OP_SC_D] = &&L_OP_SC_D,
        [OP_AMO_D] = &&L_OP_AMO_D,
        [OP_FLW] = &&L_OP_FLW,
        [OP_FLD] = &&L_OP_FLD,
        [OP_FSW] = &&L_OP_FSW,
        [OP_FSD] = &&L_OP_FSD,
        [OP_FMA_S] = &&L_OP_FMA_S,
        [OP_FMA_D] = &&L_OP_FMA_D,
        [OP_FOP2_S] = &&L_OP_FOP2_S,
        [OP_FOP2_D] = &&L_OP_FOP2_D,
        [OP_FSQRT_S] = &&L_OP_FSQRT_S,
        [OP_FSQRT_D] = &&L_OP_FSQRT_D,
        [OP_FCMP_S] = &&L_OP_FCMP_S,
        [OP_FCMP_D] = &&L_OP_FCMP_D,
        [OP_FCLASS_S] = &&L_OP_FCLASS_S,
        [OP_FCLASS_D] = &&L_OP_FCLASS_D,
        [OP_FCVT_I_S] = &&L_OP_FCVT_I_S,
        [OP_FCVT_I_D] = &&L_OP_FCVT_I_D,
        [OP_FCVT_S_I] = &&L_OP_FCVT_S_I,
        [OP_FCVT_D_I] = &&L_OP_FCVT_D_I,
        [OP_FCVT_S_D] = &&L_OP_FCVT_S_D,
        [OP_FCVT_D_S] = &&L_OP_FCVT_D_S,
        [OP_FMV_X_W] = &&L_OP_FMV_X_W,
        [OP_FMV_W_X] = &&L_OP_FMV_W_X,
        [OP_FMV_X_D] = &&L_OP_FMV_X_D,
        [OP_FMV_D_X] = &&L_OP_FMV_D_X,
        [OP_ZB] = &&L_OP_ZB,
    };
    struct rv64_insn *dc = h->dcache->e;
    uint64_t *x = h->x;
    uint64_t n = 0;
    uint64_t pc = h->pc, next, rs1, rs2, v;
    uint32_t raw;
    struct rv64_insn *d;
    int c, rm;
    /* The page being executed: its virtual base and host addend.  Reset
     * whenever translation may change (traps, xRET, CSR writes, sfence). */
    uint64_t fpage = 1;
    uintptr_t faddend = 0;
    h->slice_end = false;

#ifdef RV64_TRACE
#define TRACE()                                                                           \
    do {                                                                                  \
        if (h->m->trace_left) {                                                           \
            h->m->trace_left--;                                                           \
            fprintf(stderr, "T %llx %08x op=%u sp=%llx a0=%llx\n", (unsigned long long)pc, \
                    raw, d->op, (unsigned long long)x[2], (unsigned long long)x[10]);      \
        }                                                                                 \
    } while (0)
#else
#define TRACE() do { } while (0)
#endif
/* Fetch, decode and dispatch the instruction at pc.  h->pc is written back
 * only where a trap or the exit needs it. */
#define DISPATCH()                                                                  \
    do {                                                                            \
        if (unlikely(n >= budget || h->slice_end))                                  \
            goto out;                                                               \
        if (likely((pc & ~0xfffull) == fpage && (pc & 0xfff) <= 0xffc))             \
            memcpy(&raw, (uint8_t *)(uintptr_t)(pc + faddend), 4);                  \
        else if (unlikely((c = fetch_refill(h, pc, &raw, &fpage, &faddend))))       \
            goto fetch_fault;                                                       \
        if ((raw & 3) != 3)                                                         \
            raw &= 0xffff;                                                          \
        d = &dc[dcache_index(pc)];                                                  \
        if (unlikely(d->raw != raw || d->len == 0))                                 \
            rv64_decode(raw, d);                                                    \
        n++;                                                                        \
        TRACE();                                                                    \
        next = pc + d->len;                                                         \
        rs1 = x[d->rs1];                                                            \
        rs2 = x[d->rs2];                                                            \
        goto *jt[d->op];                                                            \
    } while (0)
#define NEXT()                                                                      \
    do {                                                                            \
        x[0] = 0;                                                                   \
        pc = next;                                                                  \
        h->instret++;                                                               \
        DISPATCH();                                                                 \
    } while (0)

    DISPATCH();

        L_OP_LUI: x[d->rd] = (uint64_t)d->imm; NEXT();
        L_OP_AUIPC: x[d->rd] = pc + (uint64_t)d->imm; NEXT();
        L_OP_JAL: x[d->rd] = next; next = pc + (uint64_t)d->imm; NEXT();
        L_OP_JALR: next = (rs1 + (uint64_t)d->imm) & ~1ull; x[d->rd] = pc + d->len; NEXT();
        L_OP_BEQ: if (rs1 == rs2) next = pc + (uint64_t)d->imm; NEXT();
        L_OP_BNE: if (rs1 != rs2) next = pc + (uint64_t)d->imm; NEXT();
        L_OP_BLT: if ((int64_t)rs1 < (int64_t)rs2) next = pc + (uint64_t)d->imm; NEXT();
        L_OP_BGE: if ((int64_t)rs1 >= (int64_t)rs2) next = pc + (uint64_t)d->imm; NEXT();
        L_OP_BLTU: if (rs1 < rs2) next = pc + (uint64_t)d->imm; NEXT();
        L_OP_BGEU: if (rs1 >= rs2) next = pc + (uint64_t)d->imm; NEXT();

#define LOADOP(OPC, SIZE, CAST)                                         \
        L_##OPC:                                                       \
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, SIZE, &v))) \
                goto fault;                                             \
            x[d->rd] = (uint64_t)(CAST)v;                               \
            NEXT();
        LOADOP(OP_LB, 1, int8_t)
        LOADOP(OP_LH, 2, int16_t)
        LOADOP(OP_LW, 4, int32_t)
        LOADOP(OP_LD, 8, uint64_t)
        LOADOP(OP_LBU, 1, uint8_t)
        LOADOP(OP_LHU, 2, uint16_t)
        LOADOP(OP_LWU, 4, uint32_t)
#undef LOADOP
#define STOREOP(OPC, SIZE)                                                    \
        L_##OPC:                                                             \
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, SIZE, rs2)))     \
                goto fault;                                                   \
            NEXT();
        STOREOP(OP_SB, 1)
        STOREOP(OP_SH, 2)
        STOREOP(OP_SW, 4)
        STOREOP(OP_SD, 8)
#undef STOREOP

        L_OP_ADDI: x[d->rd] = rs1 + (uint64_t)d->imm; NEXT();
        L_OP_SLTI: x[d->rd] = (int64_t)rs1 < d->imm; NEXT();
        L_OP_SLTIU: x[d->rd] = rs1 < (uint64_t)d->imm; NEXT();
        L_OP_XORI: x[d->rd] = rs1 ^ (uint64_t)d->imm; NEXT();
        L_OP_ORI: x[d->rd] = rs1 | (uint64_t)d->imm; NEXT();
        L_OP_ANDI: x[d->rd] = rs1 & (uint64_t)d->imm; NEXT();
        L_OP_SLLI: x[d->rd] = rs1 << d->imm; NEXT();
        L_OP_SRLI: x[d->rd] = rs1 >> d->imm; NEXT();
        L_OP_SRAI: x[d->rd] = (uint64_t)((int64_t)rs1 >> d->imm); NEXT();
        L_OP_ADD: x[d->rd] = rs1 + rs2; NEXT();
        L_OP_SUB: x[d->rd] = rs1 - rs2; NEXT();
        L_OP_SLL: x[d->rd] = rs1 << (rs2 & 63); NEXT();
        L_OP_SLT: x[d->rd] = (int64_t)rs1 < (int64_t)rs2; NEXT();
        L_OP_SLTU: x[d->rd] = rs1 < rs2; NEXT();
        L_OP_XOR: x[d->rd] = rs1 ^ rs2; NEXT();
        L_OP_SRL: x[d->rd] = rs1 >> (rs2 & 63); NEXT();
        L_OP_SRA: x[d->rd] = (uint64_t)((int64_t)rs1 >> (rs2 & 63)); NEXT();
        L_OP_OR: x[d->rd] = rs1 | rs2; NEXT();
        L_OP_AND: x[d->rd] = rs1 & rs2; NEXT();
        L_OP_ADDIW: x[d->rd] = (uint64_t)(int32_t)(rs1 + (uint64_t)d->imm); NEXT();
        L_OP_SLLIW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 << d->imm); NEXT();
        L_OP_SRLIW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 >> d->imm); NEXT();
        L_OP_SRAIW: x[d->rd] = (uint64_t)((int32_t)rs1 >> d->imm); NEXT();
        L_OP_ADDW: x[d->rd] = (uint64_t)(int32_t)(rs1 + rs2); NEXT();
        L_OP_SUBW: x[d->rd] = (uint64_t)(int32_t)(rs1 - rs2); NEXT();
        L_OP_SLLW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 << (rs2 & 31)); NEXT();
        L_OP_SRLW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 >> (rs2 & 31)); NEXT();
        L_OP_SRAW: x[d->rd] = (uint64_t)((int32_t)rs1 >> (rs2 & 31)); NEXT();

        L_OP_MUL: x[d->rd] = rs1 * rs2; NEXT();
        L_OP_MULH: x[d->rd] = (uint64_t)mulh((int64_t)rs1, (int64_t)rs2); NEXT();
        L_OP_MULHSU: x[d->rd] = (uint64_t)mulhsu((int64_t)rs1, rs2); NEXT();
        L_OP_MULHU: x[d->rd] = mulhu(rs1, rs2); NEXT();
        L_OP_DIV:
            if (rs2 == 0) x[d->rd] = ~0ull;
            else if ((int64_t)rs1 == INT64_MIN && (int64_t)rs2 == -1) x[d->rd] = rs1;
            else x[d->rd] = (uint64_t)((int64_t)rs1 / (int64_t)rs2);
            NEXT();
        L_OP_DIVU: x[d->rd] = rs2 ? rs1 / rs2 : ~0ull; NEXT();
        L_OP_REM:
            if (rs2 == 0) x[d->rd] = rs1;
            else if ((int64_t)rs1 == INT64_MIN && (int64_t)rs2 == -1) x[d->rd] = 0;
            else x[d->rd] = (uint64_t)((int64_t)rs1 % (int64_t)rs2);
            NEXT();
        L_OP_REMU: x[d->rd] = rs2 ? rs1 % rs2 : rs1; NEXT();
        L_OP_MULW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 * (uint32_t)rs2); NEXT();
        L_OP_DIVW: {
            int32_t a = (int32_t)rs1, b = (int32_t)rs2;
            if (b == 0) x[d->rd] = ~0ull;
            else if (a == INT32_MIN && b == -1) x[d->rd] = (uint64_t)(int64_t)a;
            else x[d->rd] = (uint64_t)(int64_t)(a / b);
            NEXT();
        }
        L_OP_DIVUW: {
            uint32_t a = (uint32_t)rs1, b = (uint32_t)rs2;
            x[d->rd] = b ? (uint64_t)(int32_t)(a / b) : ~0ull;
            NEXT();
        }
        L_OP_REMW: {
            int32_t a = (int32_t)rs1, b = (int32_t)rs2;
            if (b == 0) x[d->rd] = (uint64_t)(int64_t)a;
            else if (a == INT32_MIN && b == -1) x[d->rd] = 0;
            else x[d->rd] = (uint64_t)(int64_t)(a % b);
            NEXT();
        }
        L_OP_REMUW: {
            uint32_t a = (uint32_t)rs1, b = (uint32_t)rs2;
            x[d->rd] = (uint64_t)(int32_t)(b ? a % b : a);
            NEXT();
        }

        L_OP_ZB: x[d->rd] = rv64_zb(d->rm, rs1, rs2, (unsigned)d->imm); NEXT();

        L_OP_FENCE:
            /* x86-TSO reorders only a store before a later load: a fence
             * ordering W before R (fm normal, not fence.tso) is a full
             * host fence; every other fence is free */
            if (fence_orders_store_load(d->imm))
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
            /* many PAUSE hints in one slice: a spin-wait, likely for a hart
             * whose thread the host has descheduled; end the slice and
             * yield the host CPU (the pause-loop exit of hardware VMs) */
            if (unlikely(d->imm == FENCE_PAUSE) && ++h->pauses >= PAUSE_YIELD) {
                h->yield = true;
                h->slice_end = true;
            }
            NEXT();
        L_OP_FENCE_I: NEXT(); /* decode cache is keyed by instruction bits */
        L_OP_ECALL:
            h->pc = pc;
            h->ecalls_s += h->priv == PRV_S;
            rv64_trap(h, h->priv == PRV_U ? EXC_ECALL_U : h->priv == PRV_S ? EXC_ECALL_S
                                                                             : EXC_ECALL_M, 0);
            goto trapped;
        L_OP_EBREAK:
            h->pc = pc;
            rv64_trap(h, EXC_BREAKPOINT, pc);
            goto trapped;
        L_OP_MRET:
            if (rv64_mret(h) < 0)
                goto illegal;
            h->instret++;
            goto redirected;
        L_OP_SRET:
            if (rv64_sret(h) < 0)
                goto illegal;
            h->instret++;
            goto redirected;
        L_OP_WFI:
            if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TW)))
                goto illegal;
            if (!((h->mip_sw | h->mip_hw) & h->mie))
                h->wfi = true;
            h->slice_end = true;
            NEXT();
        L_OP_SFENCE_VMA:
            if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM)))
                goto illegal;
            rv64_tlb_flush(h);
            fpage = 1;
            NEXT();

        L_OP_CSRRW: L_OP_CSRRS: L_OP_CSRRC:
        L_OP_CSRRWI: L_OP_CSRRSI: L_OP_CSRRCI: {
            unsigned kind = d->op - (d->op >= OP_CSRRWI ? OP_CSRRWI : OP_CSRRW) + 1;
            uint64_t src = d->op >= OP_CSRRWI ? d->rs1 : rs1;
            bool do_write = kind == 1 || d->rs1 != 0;
            uint64_t old;
            fpage = 1;
            if (rv64_csr_rw(h, (unsigned)d->imm, kind, src, do_write, &old) < 0)
                goto illegal;
            x[d->rd] = old;
            NEXT();
        }

        L_OP_LR_W: L_OP_LR_D: {
            unsigned size = d->op == OP_LR_W ? 4 : 8;
            if (rs1 & (size - 1)) {
                h->pc = pc;
                rv64_trap(h, EXC_LOAD_MISALIGNED, rs1);
                goto trapped;
            }
            if (unlikely(c = load(h, rs1, size, &v)))
                goto fault;
            x[d->rd] = size == 4 ? (uint64_t)(int32_t)v : v;
            h->resv_addr = rs1;
            h->resv_value = v;
            h->resv_valid = true;
            NEXT();
        }
        L_OP_SC_W: L_OP_SC_D: {
            unsigned size = d->op == OP_SC_W ? 4 : 8;
            void *p;
            if (rs1 & (size - 1)) {
                h->pc = pc;
                rv64_trap(h, EXC_STORE_MISALIGNED, rs1);
                goto trapped;
            }
            if (!h->resv_valid || h->resv_addr != rs1) {
                h->resv_valid = false;
                x[d->rd] = 1;
                NEXT();
            }
            if ((c = rv64_amo_ptr(h, rs1, size, &p)))
                goto fault;
            h->resv_valid = false;
            x[d->rd] = !sc_host(p, h->resv_value, rs2, size == 4);
            NEXT();
        }
        L_OP_AMO_W: L_OP_AMO_D: {
            bool w = d->op == OP_AMO_W;
            unsigned size = w ? 4 : 8;
            void *p;
            if ((c = rv64_amo_ptr(h, rs1, size, &p)))
                goto fault;
            uint64_t old = amo_host((unsigned)d->imm, p, rs2, w);
            x[d->rd] = w ? (uint64_t)(int32_t)old : old;
            NEXT();
        }

        /* ---- F and D ---- */
#define FP_CHECK() do { if (unlikely(!(h->mstatus & MSTATUS_FS))) goto illegal; } while (0)
#define FP_DIRTY() (h->mstatus |= MSTATUS_FS)
#define FP_RM() do { if (unlikely((rm = rmode(h, d->rm)) < 0)) goto illegal; } while (0)
        L_OP_FLW:
            FP_CHECK();
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, 4, &v)))
                goto fault;
            h->f[d->rd] = BOX32(v);
            FP_DIRTY();
            NEXT();
        L_OP_FLD:
            FP_CHECK();
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, 8, &v)))
                goto fault;
            h->f[d->rd] = v;
            FP_DIRTY();
            NEXT();
        L_OP_FSW:
            FP_CHECK();
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, 4, h->f[d->rs2])))
                goto fault;
            NEXT();
        L_OP_FSD:
            FP_CHECK();
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, 8, h->f[d->rs2])))
                goto fault;
            NEXT();
        L_OP_FMA_S: L_OP_FMA_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FMA_S ? fpu_fma_s : fpu_fma_d)(
                &h->fpu, h->f[d->rs1], h->f[d->rs2], h->f[d->rs3], (int)(d->imm & 1),
                (int)(d->imm >> 1), (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FOP2_S: L_OP_FOP2_D:
            FP_CHECK();
            if (d->imm <= FPU_DIV)
                FP_RM();
            else
                rm = 0;
            h->f[d->rd] = (d->op == OP_FOP2_S ? fpu_op2_s : fpu_op2_d)(
                &h->fpu, (enum fpu_op2)d->imm, h->f[d->rs1], h->f[d->rs2], (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FSQRT_S: L_OP_FSQRT_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FSQRT_S ? fpu_sqrt_s : fpu_sqrt_d)(&h->fpu, h->f[d->rs1],
                                                                          (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FCMP_S: L_OP_FCMP_D:
            FP_CHECK();
            x[d->rd] = (d->op == OP_FCMP_S ? fpu_cmp_s : fpu_cmp_d)(
                &h->fpu, (enum fpu_cmp)d->imm, h->f[d->rs1], h->f[d->rs2]);
            FP_DIRTY();
            NEXT();
        L_OP_FCLASS_S:
            FP_CHECK();
            x[d->rd] = fpu_class_s(h->f[d->rs1]);
            NEXT();
        L_OP_FCLASS_D:
            FP_CHECK();
            x[d->rd] = fpu_class_d(h->f[d->rs1]);
            NEXT();
        L_OP_FCVT_I_S: L_OP_FCVT_I_D:
            FP_CHECK();
            FP_RM();
            x[d->rd] = (d->op == OP_FCVT_I_S ? fpu_to_int_s : fpu_to_int_d)(
                &h->fpu, (enum fpu_int)d->imm, h->f[d->rs1], (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FCVT_S_I: L_OP_FCVT_D_I:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FCVT_S_I ? fpu_from_int_s : fpu_from_int_d)(
                &h->fpu, (enum fpu_int)d->imm, rs1, (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FCVT_S_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = fpu_d_to_s(&h->fpu, h->f[d->rs1], (unsigned)rm);
            FP_DIRTY();
            NEXT();
        L_OP_FCVT_D_S:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = fpu_s_to_d(&h->fpu, h->f[d->rs1]);
            FP_DIRTY();
            NEXT();
        L_OP_FMV_X_W:
            FP_CHECK();
            x[d->rd] = (uint64_t)(int32_t)h->f[d->rs1];
            NEXT();
        L_OP_FMV_X_D:
            FP_CHECK();
            x[d->rd] = h->f[d->rs1];
            NEXT();
        L_OP_FMV_W_X:
            FP_CHECK();
            h->f[d->rd] = BOX32(rs1);
            FP_DIRTY();
            NEXT();
        L_OP_FMV_D_X:
            FP_CHECK();
            h->f[d->rd] = rs1;
            FP_DIRTY();
            NEXT();


illegal:
    h->pc = pc;
    rv64_trap(h, EXC_ILLEGAL, d->raw);
    goto trapped;
fault:
    h->pc = pc;
    rv64_trap(h, (uint64_t)c, h->fault_tval);
    goto trapped;
fetch_fault:
    n++;
    h->pc = pc;
    rv64_trap(h, (uint64_t)c, h->fault_tval);
trapped:
    x[0] = 0;
redirected:
    pc = h->pc;
    fpage = 1;
    DISPATCH();
out:
    h->pc = pc;
    return n;
#undef DISPATCH
#undef NEXT
#undef TRACE
}
