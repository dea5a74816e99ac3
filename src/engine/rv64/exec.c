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

#include "engine/rv64/decode.h"
#include "engine/rv64/rv64.h"

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

static uint64_t amo_calc(unsigned f5, uint64_t old, uint64_t src, bool word)
{
    int64_t so = word ? (int32_t)old : (int64_t)old, ss = word ? (int32_t)src : (int64_t)src;
    uint64_t uo = word ? (uint32_t)old : old, us = word ? (uint32_t)src : src;
    switch (f5) {
    case AMO_SWAP: return src;
    case AMO_ADD: return old + src;
    case AMO_XOR: return old ^ src;
    case AMO_AND: return old & src;
    case AMO_OR: return old | src;
    case AMO_MIN: return so < ss ? old : src;
    case AMO_MAX: return so > ss ? old : src;
    case AMO_MINU: return uo < us ? old : src;
    case AMO_MAXU: return uo > us ? old : src;
    default: return old;
    }
}

#define BOX32(v) (0xffffffff00000000ull | (uint32_t)(v))

uint64_t rv64_exec(struct rv64_hart *h, uint64_t budget)
{
    struct rv64_insn *dc = h->m->dcache->e;
    uint64_t *x = h->x;
    uint64_t n = 0;
    /* The page being executed: its virtual base and host addend.  Reset
     * whenever translation may change (traps, xRET, CSR writes, sfence). */
    uint64_t fpage = 1;
    uintptr_t faddend = 0;
    h->slice_end = false;

    while (likely(n < budget) && likely(!h->slice_end)) {
        uint64_t pc = h->pc;
        uint32_t raw;
        uint8_t *fp;
        if (likely((pc & ~0xfffull) == fpage && (pc & 0xfff) <= 0xffc)) {
            memcpy(&raw, (uint8_t *)(uintptr_t)(pc + faddend), 4);
        } else if ((fp = tlb_hit(h, h->ctx_fetch, ACC_FETCH, pc, 4))) {
            memcpy(&raw, fp, 4);
            fpage = pc & ~0xfffull;
            faddend = (uintptr_t)fp - (uintptr_t)pc;
        } else {
            int c = rv64_fetch_slow(h, pc, &raw);
            if (c) {
                rv64_trap(h, (uint64_t)c, h->fault_tval);
                n++;
                continue;
            }
        }
        if ((raw & 3) != 3)
            raw &= 0xffff;
        struct rv64_insn *d = &dc[dcache_index(pc)];
        if (unlikely(d->raw != raw || d->len == 0))
            rv64_decode(raw, d);
        n++;
#ifdef RV64_TRACE
        if (h->m->trace_left) {
            h->m->trace_left--;
            fprintf(stderr, "T %llx %08x op=%u sp=%llx a0=%llx s0=%llx\n", (unsigned long long)pc, raw, d->op,
                    (unsigned long long)x[2], (unsigned long long)x[10], (unsigned long long)x[8]);
        }
#endif

        uint64_t next = pc + d->len;
        uint64_t rs1 = x[d->rs1], rs2 = x[d->rs2];
        uint64_t v;
        int c, rm;

        switch ((enum rv64_op)d->op) {
        case OP_LUI: x[d->rd] = (uint64_t)d->imm; break;
        case OP_AUIPC: x[d->rd] = pc + (uint64_t)d->imm; break;
        case OP_JAL: x[d->rd] = next; next = pc + (uint64_t)d->imm; break;
        case OP_JALR: next = (rs1 + (uint64_t)d->imm) & ~1ull; x[d->rd] = pc + d->len; break;
        case OP_BEQ: if (rs1 == rs2) next = pc + (uint64_t)d->imm; break;
        case OP_BNE: if (rs1 != rs2) next = pc + (uint64_t)d->imm; break;
        case OP_BLT: if ((int64_t)rs1 < (int64_t)rs2) next = pc + (uint64_t)d->imm; break;
        case OP_BGE: if ((int64_t)rs1 >= (int64_t)rs2) next = pc + (uint64_t)d->imm; break;
        case OP_BLTU: if (rs1 < rs2) next = pc + (uint64_t)d->imm; break;
        case OP_BGEU: if (rs1 >= rs2) next = pc + (uint64_t)d->imm; break;

#define LOADOP(OPC, SIZE, CAST)                                         \
        case OPC:                                                       \
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, SIZE, &v))) \
                goto fault;                                             \
            x[d->rd] = (uint64_t)(CAST)v;                               \
            break;
        LOADOP(OP_LB, 1, int8_t)
        LOADOP(OP_LH, 2, int16_t)
        LOADOP(OP_LW, 4, int32_t)
        LOADOP(OP_LD, 8, uint64_t)
        LOADOP(OP_LBU, 1, uint8_t)
        LOADOP(OP_LHU, 2, uint16_t)
        LOADOP(OP_LWU, 4, uint32_t)
#undef LOADOP
#define STOREOP(OPC, SIZE)                                                    \
        case OPC:                                                             \
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, SIZE, rs2)))     \
                goto fault;                                                   \
            break;
        STOREOP(OP_SB, 1)
        STOREOP(OP_SH, 2)
        STOREOP(OP_SW, 4)
        STOREOP(OP_SD, 8)
#undef STOREOP

        case OP_ADDI: x[d->rd] = rs1 + (uint64_t)d->imm; break;
        case OP_SLTI: x[d->rd] = (int64_t)rs1 < d->imm; break;
        case OP_SLTIU: x[d->rd] = rs1 < (uint64_t)d->imm; break;
        case OP_XORI: x[d->rd] = rs1 ^ (uint64_t)d->imm; break;
        case OP_ORI: x[d->rd] = rs1 | (uint64_t)d->imm; break;
        case OP_ANDI: x[d->rd] = rs1 & (uint64_t)d->imm; break;
        case OP_SLLI: x[d->rd] = rs1 << d->imm; break;
        case OP_SRLI: x[d->rd] = rs1 >> d->imm; break;
        case OP_SRAI: x[d->rd] = (uint64_t)((int64_t)rs1 >> d->imm); break;
        case OP_ADD: x[d->rd] = rs1 + rs2; break;
        case OP_SUB: x[d->rd] = rs1 - rs2; break;
        case OP_SLL: x[d->rd] = rs1 << (rs2 & 63); break;
        case OP_SLT: x[d->rd] = (int64_t)rs1 < (int64_t)rs2; break;
        case OP_SLTU: x[d->rd] = rs1 < rs2; break;
        case OP_XOR: x[d->rd] = rs1 ^ rs2; break;
        case OP_SRL: x[d->rd] = rs1 >> (rs2 & 63); break;
        case OP_SRA: x[d->rd] = (uint64_t)((int64_t)rs1 >> (rs2 & 63)); break;
        case OP_OR: x[d->rd] = rs1 | rs2; break;
        case OP_AND: x[d->rd] = rs1 & rs2; break;
        case OP_ADDIW: x[d->rd] = (uint64_t)(int32_t)(rs1 + (uint64_t)d->imm); break;
        case OP_SLLIW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 << d->imm); break;
        case OP_SRLIW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 >> d->imm); break;
        case OP_SRAIW: x[d->rd] = (uint64_t)((int32_t)rs1 >> d->imm); break;
        case OP_ADDW: x[d->rd] = (uint64_t)(int32_t)(rs1 + rs2); break;
        case OP_SUBW: x[d->rd] = (uint64_t)(int32_t)(rs1 - rs2); break;
        case OP_SLLW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 << (rs2 & 31)); break;
        case OP_SRLW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 >> (rs2 & 31)); break;
        case OP_SRAW: x[d->rd] = (uint64_t)((int32_t)rs1 >> (rs2 & 31)); break;

        case OP_MUL: x[d->rd] = rs1 * rs2; break;
        case OP_MULH: x[d->rd] = (uint64_t)mulh((int64_t)rs1, (int64_t)rs2); break;
        case OP_MULHSU: x[d->rd] = (uint64_t)mulhsu((int64_t)rs1, rs2); break;
        case OP_MULHU: x[d->rd] = mulhu(rs1, rs2); break;
        case OP_DIV:
            if (rs2 == 0) x[d->rd] = ~0ull;
            else if ((int64_t)rs1 == INT64_MIN && (int64_t)rs2 == -1) x[d->rd] = rs1;
            else x[d->rd] = (uint64_t)((int64_t)rs1 / (int64_t)rs2);
            break;
        case OP_DIVU: x[d->rd] = rs2 ? rs1 / rs2 : ~0ull; break;
        case OP_REM:
            if (rs2 == 0) x[d->rd] = rs1;
            else if ((int64_t)rs1 == INT64_MIN && (int64_t)rs2 == -1) x[d->rd] = 0;
            else x[d->rd] = (uint64_t)((int64_t)rs1 % (int64_t)rs2);
            break;
        case OP_REMU: x[d->rd] = rs2 ? rs1 % rs2 : rs1; break;
        case OP_MULW: x[d->rd] = (uint64_t)(int32_t)((uint32_t)rs1 * (uint32_t)rs2); break;
        case OP_DIVW: {
            int32_t a = (int32_t)rs1, b = (int32_t)rs2;
            if (b == 0) x[d->rd] = ~0ull;
            else if (a == INT32_MIN && b == -1) x[d->rd] = (uint64_t)(int64_t)a;
            else x[d->rd] = (uint64_t)(int64_t)(a / b);
            break;
        }
        case OP_DIVUW: {
            uint32_t a = (uint32_t)rs1, b = (uint32_t)rs2;
            x[d->rd] = b ? (uint64_t)(int32_t)(a / b) : ~0ull;
            break;
        }
        case OP_REMW: {
            int32_t a = (int32_t)rs1, b = (int32_t)rs2;
            if (b == 0) x[d->rd] = (uint64_t)(int64_t)a;
            else if (a == INT32_MIN && b == -1) x[d->rd] = 0;
            else x[d->rd] = (uint64_t)(int64_t)(a % b);
            break;
        }
        case OP_REMUW: {
            uint32_t a = (uint32_t)rs1, b = (uint32_t)rs2;
            x[d->rd] = (uint64_t)(int32_t)(b ? a % b : a);
            break;
        }

        case OP_FENCE: break;
        case OP_FENCE_I: break; /* decode cache is keyed by instruction bits */
        case OP_ECALL:
            rv64_trap(h, h->priv == PRV_U ? EXC_ECALL_U : h->priv == PRV_S ? EXC_ECALL_S
                                                                             : EXC_ECALL_M, 0);
            goto trapped;
        case OP_EBREAK:
            rv64_trap(h, EXC_BREAKPOINT, pc);
            goto trapped;
        case OP_MRET:
            fpage = 1;
            if (rv64_mret(h) < 0)
                goto illegal;
            x[0] = 0;
            h->instret++;
            continue;
        case OP_SRET:
            fpage = 1;
            if (rv64_sret(h) < 0)
                goto illegal;
            x[0] = 0;
            h->instret++;
            continue;
        case OP_WFI:
            if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TW)))
                goto illegal;
            h->pc = next;
            h->instret++;
            if (!((h->mip_sw | h->mip_hw) & h->mie))
                h->wfi = true;
            h->slice_end = true;
            continue;
        case OP_SFENCE_VMA:
            if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM)))
                goto illegal;
            rv64_tlb_flush(h);
            fpage = 1;
            break;

        case OP_CSRRW: case OP_CSRRS: case OP_CSRRC:
        case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI: {
            unsigned kind = d->op - (d->op >= OP_CSRRWI ? OP_CSRRWI : OP_CSRRW) + 1;
            uint64_t src = d->op >= OP_CSRRWI ? d->rs1 : rs1;
            bool do_write = kind == 1 || d->rs1 != 0;
            uint64_t old;
            fpage = 1;
            if (rv64_csr_rw(h, (unsigned)d->imm, kind, src, do_write, &old) < 0)
                goto illegal;
            x[d->rd] = old;
            break;
        }

        case OP_LR_W: case OP_LR_D: {
            unsigned size = d->op == OP_LR_W ? 4 : 8;
            if (rs1 & (size - 1)) {
                rv64_trap(h, EXC_LOAD_MISALIGNED, rs1);
                goto trapped;
            }
            if (unlikely(c = load(h, rs1, size, &v)))
                goto fault;
            x[d->rd] = size == 4 ? (uint64_t)(int32_t)v : v;
            h->resv_addr = rs1;
            h->resv_valid = true;
            break;
        }
        case OP_SC_W: case OP_SC_D: {
            unsigned size = d->op == OP_SC_W ? 4 : 8;
            void *p;
            if (rs1 & (size - 1)) {
                rv64_trap(h, EXC_STORE_MISALIGNED, rs1);
                goto trapped;
            }
            if (!h->resv_valid || h->resv_addr != rs1) {
                h->resv_valid = false;
                x[d->rd] = 1;
                break;
            }
            if ((c = rv64_amo_ptr(h, rs1, size, &p)))
                goto fault;
            memcpy(p, &rs2, size);
            h->resv_valid = false;
            x[d->rd] = 0;
            break;
        }
        case OP_AMO_W: case OP_AMO_D: {
            bool w = d->op == OP_AMO_W;
            unsigned size = w ? 4 : 8;
            void *p;
            if ((c = rv64_amo_ptr(h, rs1, size, &p)))
                goto fault;
            uint64_t old = 0;
            memcpy(&old, p, size);
            uint64_t nv = amo_calc((unsigned)d->imm, old, rs2, w);
            memcpy(p, &nv, size);
            x[d->rd] = w ? (uint64_t)(int32_t)old : old;
            break;
        }

        /* ---- F and D ---- */
#define FP_CHECK() do { if (unlikely(!(h->mstatus & MSTATUS_FS))) goto illegal; } while (0)
#define FP_DIRTY() (h->mstatus |= MSTATUS_FS)
#define FP_RM() do { if (unlikely((rm = rmode(h, d->rm)) < 0)) goto illegal; } while (0)
        case OP_FLW:
            FP_CHECK();
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, 4, &v)))
                goto fault;
            h->f[d->rd] = BOX32(v);
            FP_DIRTY();
            break;
        case OP_FLD:
            FP_CHECK();
            if (unlikely(c = load(h, rs1 + (uint64_t)d->imm, 8, &v)))
                goto fault;
            h->f[d->rd] = v;
            FP_DIRTY();
            break;
        case OP_FSW:
            FP_CHECK();
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, 4, h->f[d->rs2])))
                goto fault;
            break;
        case OP_FSD:
            FP_CHECK();
            if (unlikely(c = store(h, rs1 + (uint64_t)d->imm, 8, h->f[d->rs2])))
                goto fault;
            break;
        case OP_FMA_S: case OP_FMA_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FMA_S ? fpu_fma_s : fpu_fma_d)(
                &h->fpu, h->f[d->rs1], h->f[d->rs2], h->f[d->rs3], (int)(d->imm & 1),
                (int)(d->imm >> 1), (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FOP2_S: case OP_FOP2_D:
            FP_CHECK();
            if (d->imm <= FPU_DIV)
                FP_RM();
            else
                rm = 0;
            h->f[d->rd] = (d->op == OP_FOP2_S ? fpu_op2_s : fpu_op2_d)(
                &h->fpu, (enum fpu_op2)d->imm, h->f[d->rs1], h->f[d->rs2], (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FSQRT_S: case OP_FSQRT_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FSQRT_S ? fpu_sqrt_s : fpu_sqrt_d)(&h->fpu, h->f[d->rs1],
                                                                          (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FCMP_S: case OP_FCMP_D:
            FP_CHECK();
            x[d->rd] = (d->op == OP_FCMP_S ? fpu_cmp_s : fpu_cmp_d)(
                &h->fpu, (enum fpu_cmp)d->imm, h->f[d->rs1], h->f[d->rs2]);
            FP_DIRTY();
            break;
        case OP_FCLASS_S:
            FP_CHECK();
            x[d->rd] = fpu_class_s(h->f[d->rs1]);
            break;
        case OP_FCLASS_D:
            FP_CHECK();
            x[d->rd] = fpu_class_d(h->f[d->rs1]);
            break;
        case OP_FCVT_I_S: case OP_FCVT_I_D:
            FP_CHECK();
            FP_RM();
            x[d->rd] = (d->op == OP_FCVT_I_S ? fpu_to_int_s : fpu_to_int_d)(
                &h->fpu, (enum fpu_int)d->imm, h->f[d->rs1], (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FCVT_S_I: case OP_FCVT_D_I:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = (d->op == OP_FCVT_S_I ? fpu_from_int_s : fpu_from_int_d)(
                &h->fpu, (enum fpu_int)d->imm, rs1, (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FCVT_S_D:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = fpu_d_to_s(&h->fpu, h->f[d->rs1], (unsigned)rm);
            FP_DIRTY();
            break;
        case OP_FCVT_D_S:
            FP_CHECK();
            FP_RM();
            h->f[d->rd] = fpu_s_to_d(&h->fpu, h->f[d->rs1]);
            FP_DIRTY();
            break;
        case OP_FMV_X_W:
            FP_CHECK();
            x[d->rd] = (uint64_t)(int32_t)h->f[d->rs1];
            break;
        case OP_FMV_X_D:
            FP_CHECK();
            x[d->rd] = h->f[d->rs1];
            break;
        case OP_FMV_W_X:
            FP_CHECK();
            h->f[d->rd] = BOX32(rs1);
            FP_DIRTY();
            break;
        case OP_FMV_D_X:
            FP_CHECK();
            h->f[d->rd] = rs1;
            FP_DIRTY();
            break;

        case OP_ILLEGAL:
        default:
            goto illegal;
        }
        x[0] = 0;
        h->pc = next;
        h->instret++;
        continue;

    illegal:
        rv64_trap(h, EXC_ILLEGAL, d->raw);
        goto trapped;
    fault:
        rv64_trap(h, (uint64_t)c, h->fault_tval);
    trapped:
        fpage = 1;
        x[0] = 0;
    }
    return n;
}
