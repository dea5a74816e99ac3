/* rv64 JIT: the translator (one guest TB -> x86-64).
 *
 * Conventions of generated code: rbp points to the hart, guest registers
 * live in memory at [rbp + 8*i], r12 holds the remaining instruction
 * budget of the current rv64_jit_exec call.  Scratch: rax, rcx, rdx, rsi,
 * rdi (and everything a C call clobbers).  [rsp] is an 8-byte scratch slot
 * (the stack is 16-byte aligned there, so calls need no adjustment).
 *
 * A TB: entry (budget and slice_end check) / body / exits / out-of-line
 * stubs (load/store slow paths, faults, the budget exit) / instruction
 * copies used by helper calls.  The entry subtracts the TB's length from
 * r12; a stub that leaves early gives back the instructions that did not
 * retire, so the dispatcher's count (and instret) is exact. */
#include <stddef.h>
#include <string.h>

#include "engine/rv64/amo.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/jit_emit.h"

#define XOFF(i) ((int32_t)(offsetof(struct rv64_hart, x) + 8 * (unsigned)(i)))
#define PCOFF ((int32_t)offsetof(struct rv64_hart, pc))
#define GENOFF ((int32_t)offsetof(struct rv64_hart, tlb_gen))
#define SEOFF ((int32_t)offsetof(struct rv64_hart, slice_end))
#define TLBOFF(ctx, acc) \
    ((int32_t)(offsetof(struct rv64_hart, tlb) + ((ctx) * 3u + (acc)) * TLB_SIZE * 16u))

_Static_assert(sizeof(struct rv64_tlb_entry) == 16, "TLB entry is 16 bytes");
_Static_assert(TLB_SIZE == 256, "the inline TLB index uses movzx of a byte");

/* An out-of-line path to emit after the body. */
struct stub {
    int kind;               /* STUB_LOAD, STUB_STORE, STUB_FAULT */
    size_t from;            /* rel32 of the jcc that leads here */
    size_t resume;          /* where a successful slow path continues */
    unsigned k;             /* instruction index in the TB */
    int rc_host;            /* load: host register the body also wrote rd to (-1: none) */
    uint64_t pc;
    struct rv64_insn d;
};
enum { STUB_LOAD, STUB_STORE, STUB_FAULT };

struct gen {
    struct jit_emit e;
    struct jit_hart *j;
    struct rv64_hart *h;
    struct jit_tb *tb;
    unsigned tb_index;
    unsigned n;             /* instructions in the TB (known before emitting) */
    struct stub stubs[JIT_TB_MAX_INSNS * 2];
    unsigned nstubs;
    struct rv64_insn helper_insn[JIT_TB_MAX_INSNS];
    size_t helper_at[JIT_TB_MAX_INSNS];     /* rel: imm64 fields to fix */
    unsigned nhelper;
    /* register cache (write-through, per TB): rc_guest[i] is the guest
     * register that host register RC_HOST[i] holds (0: none), rc_use[i]
     * when it was last used (the least recently used slot is replaced). */
    uint8_t rc_guest[4];
    unsigned rc_use[4], rc_clock;
};

/* Host registers of the register cache: callee-saved (they survive the C
 * calls of the slow paths and helpers; the trampoline saves them). */
static const int RC_HOST[4] = { RBX, R13, R14, R15 };

static void rc_reset(struct gen *g)
{
    memset(g->rc_guest, 0, sizeof(g->rc_guest));
    g->rc_clock = 0;
}

static int rc_find(struct gen *g, unsigned i)
{
    for (int s = 0; s < 4; s++)
        if (g->rc_guest[s] == i) {
            g->rc_use[s] = ++g->rc_clock;
            return s;
        }
    return -1;
}

/* A slot for guest register i (i != 0), the least recently used one. */
static int rc_alloc(struct gen *g, unsigned i)
{
    int best = 0;
    for (int s = 0; s < 4; s++) {
        if (!g->rc_guest[s]) {
            best = s;
            break;
        }
        if (g->rc_use[s] < g->rc_use[best])
            best = s;
    }
    g->rc_guest[best] = (uint8_t)i;
    g->rc_use[best] = ++g->rc_clock;
    return best;
}

/* The host register holding guest register i (i != 0), loaded into the
 * cache if it is not there. */
static int xreg(struct gen *g, unsigned i)
{
    int s = rc_find(g, i);
    if (s < 0) {
        s = rc_alloc(g, i);
        mov_rm64(&g->e, RC_HOST[s], M(RBP, XOFF(i)));
    }
    return RC_HOST[s];
}
/* r = x[i] from memory (out-of-line code: does not touch the cache) */
static void ldm(struct jit_emit *e, int r, unsigned i)
{
    if (i == 0)
        alu_rr(e, 0, ALU_XOR, r, r);
    else
        mov_rm64(e, r, M(RBP, XOFF(i)));
}
/* r = x[i] */
static void ldx(struct gen *g, int r, unsigned i)
{
    if (i == 0)
        alu_rr(&g->e, 0, ALU_XOR, r, r);
    else
        mov_rr64(&g->e, r, xreg(g, i));
}
/* x[i] = r, in memory and in the cache; the host register written, or -1 */
static int stx(struct gen *g, unsigned i, int r)
{
    if (i == 0)
        return -1;
    mov_mr64(&g->e, M(RBP, XOFF(i)), r);
    int s = rc_find(g, i);
    if (s < 0)
        s = rc_alloc(g, i);
    mov_rr64(&g->e, RC_HOST[s], r);
    return RC_HOST[s];
}
/* alu r, x[i] */
static void alu_x(struct gen *g, int w, int alu, int r, unsigned i)
{
    if (i == 0)
        alu_rm(&g->e, w, alu, r, M(RBP, XOFF(0)));
    else
        alu_rr(&g->e, w, alu, r, xreg(g, i));
}
static void call_abs(struct jit_emit *e, const void *fn)
{
    mov_ri(e, RAX, (uint64_t)(uintptr_t)fn);
    call_r(e, RAX);
}
static void set_pc(struct jit_emit *e, uint64_t pc)
{
    mov_ri(e, RAX, pc);
    mov_mr64(e, M(RBP, PCOFF), RAX);
}

static struct stub *add_stub(struct gen *g, int kind, size_t from, unsigned k, uint64_t pc,
                             const struct rv64_insn *d)
{
    struct stub *s = &g->stubs[g->nstubs++];
    s->kind = kind;
    s->from = from;
    s->resume = 0;
    s->k = k;
    s->pc = pc;
    s->d = *d;
    return s;
}

/* Leave to the dispatcher with pc and the count of retired instructions
 * exact: `retired` of this TB's n did. */
static void emit_stop(struct gen *g, unsigned retired, uint64_t pc)
{
    struct jit_emit *e = &g->e;
    if (g->n - retired)
        alu_ri(e, 1, ALU_ADD, R12, (int32_t)(g->n - retired));
    set_pc(e, pc);
    mov_ri(e, RAX, JX_STOP);
    jmp_to(e, g->j->exit_off);
}

/* eax holds a cause; instruction k faulted (h->pc already set). */
static void emit_fault_exit(struct gen *g, unsigned k)
{
    struct jit_emit *e = &g->e;
    alu_ri(e, 1, ALU_ADD, R12, (int32_t)(g->n - k));
    shift_ri(e, 0, SH_SHL, RAX, 8);
    alu_ri(e, 0, ALU_OR, RAX, JX_FAULT);
    jmp_to(e, g->j->exit_off);
}

/* A chainable exit: a patchable jmp to a stub that leaves to the
 * dispatcher asking for `target`. */
static void emit_slot(struct gen *g, int slot, uint64_t target)
{
    struct jit_emit *e = &g->e;
    if ((target ^ g->tb->vpc) >> 12) {
        /* another page: never chained; the shared jump-cache lookup */
        set_pc(e, target);
        jmp_to(e, g->j->jc_off);
        return;
    }
    size_t at = jmp_fwd(e);
    patch_here(e, at);
    g->tb->slot_at[slot] = (uint32_t)at;
    g->tb->slot_pc[slot] = target;
    set_pc(e, target);
    mov_ri(e, RAX, JX_LOOKUP | ((uint64_t)slot << 8) | ((uint64_t)g->tb_index << 16));
    jmp_to(e, g->j->exit_off);
}

/* ---- loads and stores: inline TLB fast path ---- */

/* rsi = va = x[rs1] + imm; on a TLB hit rsi becomes the host address; on a
 * miss, jump to the stub (va still in rsi). */
static size_t emit_tlb(struct gen *g, const struct rv64_insn *d, int acc, unsigned size)
{
    struct jit_emit *e = &g->e;
    unsigned ctx = g->h->ctx_data;
    ldx(g, RSI, d->rs1);
    if (d->imm)
        lea(e, RSI, M(RSI, d->imm));
    mov_rr32(e, RAX, RSI);
    shift_ri(e, 0, SH_SHR, RAX, 12);
    movzx8_rr(e, RAX, RAX);
    shift_ri(e, 0, SH_SHL, RAX, 4);
    /* tag of the access's last byte: a page-crossing access misses */
    lea(e, RCX, M(RSI, (int32_t)size - 1));
    alu_ri(e, 1, ALU_AND, RCX, -4096);
    alu_rm(e, 1, ALU_OR, RCX, M(RBP, GENOFF));
    alu_rm(e, 1, ALU_CMP, RCX, MX(RBP, RAX, TLBOFF(ctx, acc)));
    size_t miss = jcc_fwd(e, CC_NE);
    alu_rm(e, 1, ALU_ADD, RSI, MX(RBP, RAX, TLBOFF(ctx, acc) + 8));
    return miss;
}

/* rax = value loaded from [rsi] (or from [rsp] after the slow path: base
 * RSP), extended as the instruction says */
static void emit_load_ext(struct jit_emit *e, unsigned op, int base)
{
    struct xm m = M(base, 0);
    switch (op) {
    case OP_LB: movsx8_rm(e, RAX, m); break;
    case OP_LH: movsx16_rm(e, RAX, m); break;
    case OP_LW: movsxd_rm(e, RAX, m); break;
    case OP_LBU: movzx8_rm(e, RAX, m); break;
    case OP_LHU: movzx16_rm(e, RAX, m); break;
    case OP_LWU: mov_rm32(e, RAX, m); break;
    default: mov_rm64(e, RAX, m); break;
    }
}

static unsigned mem_size(unsigned op)
{
    switch (op) {
    case OP_LB: case OP_LBU: case OP_SB: return 1;
    case OP_LH: case OP_LHU: case OP_SH: return 2;
    case OP_LW: case OP_LWU: case OP_SW: return 4;
    default: return 8;
    }
}

static void gen_load(struct gen *g, const struct rv64_insn *d, unsigned k, uint64_t pc)
{
    struct jit_emit *e = &g->e;
    size_t miss = emit_tlb(g, d, ACC_LOAD, mem_size(d->op));
    emit_load_ext(e, d->op, RSI);
    int host = stx(g, d->rd, RAX);
    struct stub *s = add_stub(g, STUB_LOAD, miss, k, pc, d);
    s->rc_host = host;
    s->resume = e->pos;
}

static void gen_store(struct gen *g, const struct rv64_insn *d, unsigned k, uint64_t pc)
{
    struct jit_emit *e = &g->e;
    unsigned size = mem_size(d->op);
    /* the value first: a register cache load must be on both paths */
    int v = RDX;
    if (d->rs2)
        v = xreg(g, d->rs2);
    else
        alu_rr(e, 0, ALU_XOR, RDX, RDX);
    size_t miss = emit_tlb(g, d, ACC_STORE, size);
    struct xm m = M(RSI, 0);
    switch (size) {
    case 1: mov_mr8(e, m, v); break;
    case 2: mov_mr16(e, m, v); break;
    case 4: mov_mr32(e, m, v); break;
    default: mov_mr64(e, m, v); break;
    }
    struct stub *s = add_stub(g, STUB_STORE, miss, k, pc, d);
    s->resume = e->pos;
}

/* The slow path of a load or store: the call into mmu.c, then back to the
 * body, or out through the fault exit; after a device access
 * (slice_end set) the TB ends after this instruction, as in rv64_exec. */
static void emit_mem_stub(struct gen *g, const struct stub *s)
{
    struct jit_emit *e = &g->e;
    unsigned size = mem_size(s->d.op);
    patch_here(e, s->from);
    set_pc(e, s->pc);
    mov_rr64(e, RDI, RBP);
    mov_ri(e, RDX, size);
    if (s->kind == STUB_LOAD) {
        mov_rr64(e, RCX, RSP);
        call_abs(e, (const void *)rv64_load_slow);
    } else {
        ldm(e, RCX, s->d.rs2);
        call_abs(e, (const void *)rv64_store_slow);
    }
    test_rr(e, 0, RAX, RAX);
    size_t ok = jcc_fwd(e, CC_E);
    emit_fault_exit(g, s->k);
    patch_here(e, ok);
    if (s->kind == STUB_LOAD) {
        emit_load_ext(e, s->d.op, RSP);
        if (s->d.rd) {
            mov_mr64(e, M(RBP, XOFF(s->d.rd)), RAX);
            if (s->rc_host >= 0)
                mov_rr64(e, s->rc_host, RAX);
        }
    }
    cmp_mi8(e, M(RBP, SEOFF), 0);
    jcc_to(e, CC_E, s->resume);
    emit_stop(g, s->k + 1, s->pc + s->d.len);
}

/* ---- integer operations ---- */

static bool gen_alu(struct gen *g, const struct rv64_insn *d, uint64_t pc)
{
    struct jit_emit *e = &g->e;
    unsigned rd = d->rd, rs1 = d->rs1, rs2 = d->rs2;
    int32_t imm = d->imm;
    if (!(d->op >= OP_ADDI && d->op <= OP_REMUW) && d->op != OP_LUI && d->op != OP_AUIPC)
        return false;
    if (rd == 0)
        return true;    /* no side effects: nothing to do */
    switch (d->op) {
    case OP_LUI: mov_ri(e, RAX, (uint64_t)(int64_t)imm); break;
    case OP_AUIPC: mov_ri(e, RAX, pc + (uint64_t)(int64_t)imm); break;
    case OP_ADDI: case OP_XORI: case OP_ORI: case OP_ANDI: case OP_ADDIW: {
        static const int alu[] = { [OP_ADDI] = ALU_ADD, [OP_XORI] = ALU_XOR, [OP_ORI] = ALU_OR,
                                   [OP_ANDI] = ALU_AND, [OP_ADDIW] = ALU_ADD };
        ldx(g, RAX, rs1);
        if (imm || d->op == OP_ANDI)
            alu_ri(e, 1, alu[d->op], RAX, imm);
        if (d->op == OP_ADDIW)
            movsxd_rr(e, RAX, RAX);
        break;
    }
    case OP_SLLI: case OP_SRLI: case OP_SRAI:
        ldx(g, RAX, rs1);
        shift_ri(e, 1, d->op == OP_SLLI ? SH_SHL : d->op == OP_SRLI ? SH_SHR : SH_SAR, RAX,
                 (uint8_t)imm);
        break;
    case OP_SLLIW: case OP_SRLIW: case OP_SRAIW:
        ldx(g, RAX, rs1);
        shift_ri(e, 0, d->op == OP_SLLIW ? SH_SHL : d->op == OP_SRLIW ? SH_SHR : SH_SAR, RAX,
                 (uint8_t)imm);
        movsxd_rr(e, RAX, RAX);
        break;
    case OP_SLTI: case OP_SLTIU:
        ldx(g, RCX, rs1);
        alu_rr(e, 0, ALU_XOR, RAX, RAX);
        alu_ri(e, 1, ALU_CMP, RCX, imm);
        setcc(e, d->op == OP_SLTI ? CC_L : CC_B, RAX);
        break;
    case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND: case OP_ADDW: case OP_SUBW: {
        static const int alu[] = { [OP_ADD] = ALU_ADD, [OP_SUB] = ALU_SUB, [OP_XOR] = ALU_XOR,
                                   [OP_OR] = ALU_OR, [OP_AND] = ALU_AND, [OP_ADDW] = ALU_ADD,
                                   [OP_SUBW] = ALU_SUB };
        ldx(g, RAX, rs1);
        alu_x(g, 1, alu[d->op], RAX, rs2);
        if (d->op == OP_ADDW || d->op == OP_SUBW)
            movsxd_rr(e, RAX, RAX);
        break;
    }
    case OP_SLL: case OP_SRL: case OP_SRA: case OP_SLLW: case OP_SRLW: case OP_SRAW: {
        bool w = d->op >= OP_SLLW;
        int sh = d->op == OP_SLL || d->op == OP_SLLW ? SH_SHL
                 : d->op == OP_SRL || d->op == OP_SRLW ? SH_SHR : SH_SAR;
        ldx(g, RAX, rs1);
        ldx(g, RCX, rs2);
        shift_rcl(e, !w, sh, RAX);
        if (w)
            movsxd_rr(e, RAX, RAX);
        break;
    }
    case OP_SLT: case OP_SLTU:
        ldx(g, RCX, rs1);
        alu_rr(e, 0, ALU_XOR, RAX, RAX);
        alu_x(g, 1, ALU_CMP, RCX, rs2);
        setcc(e, d->op == OP_SLT ? CC_L : CC_B, RAX);
        break;
    case OP_MUL: case OP_MULW:
        ldx(g, RAX, rs1);
        if (rs2)
            imul_rr(e, d->op == OP_MUL, RAX, xreg(g, rs2));
        else
            alu_rr(e, 0, ALU_XOR, RAX, RAX);
        if (d->op == OP_MULW)
            movsxd_rr(e, RAX, RAX);
        break;
    case OP_MULH: case OP_MULHU:
        ldx(g, RAX, rs1);
        ldx(g, RCX, rs2);
        grp3_r(e, 1, d->op == OP_MULH ? G3_IMUL : G3_MUL, RCX);
        mov_rr64(e, RAX, RDX);
        break;
    case OP_MULHSU:    /* hi(signed a * unsigned b) = hiu(a*b) - (a < 0 ? b : 0) */
        ldx(g, RAX, rs1);
        ldx(g, RCX, rs2);
        grp3_r(e, 1, G3_MUL, RCX);
        ldx(g, RCX, rs1);
        shift_ri(e, 1, SH_SAR, RCX, 63);
        alu_x(g, 1, ALU_AND, RCX, rs2);
        alu_rr(e, 1, ALU_SUB, RDX, RCX);
        mov_rr64(e, RAX, RDX);
        break;
    case OP_DIV: case OP_REM: case OP_DIVW: case OP_REMW:
    case OP_DIVU: case OP_REMU: case OP_DIVUW: case OP_REMUW: {
        bool w = d->op == OP_DIVW || d->op == OP_REMW || d->op == OP_DIVUW || d->op == OP_REMUW;
        bool rem = d->op == OP_REM || d->op == OP_REMW || d->op == OP_REMU || d->op == OP_REMUW;
        bool sgn = d->op == OP_DIV || d->op == OP_REM || d->op == OP_DIVW || d->op == OP_REMW;
        int wq = !w;
        ldx(g, RAX, rs1);
        ldx(g, RCX, rs2);
        test_rr(e, wq, RCX, RCX);
        size_t zero = jcc_fwd(e, CC_E);
        size_t m1 = 0;
        if (sgn) {
            alu_ri(e, wq, ALU_CMP, RCX, -1);
            m1 = jcc_fwd(e, CC_E);
            if (w) cdq(e); else cqo(e);
            grp3_r(e, wq, G3_IDIV, RCX);
        } else {
            alu_rr(e, 0, ALU_XOR, RDX, RDX);
            grp3_r(e, wq, G3_DIV, RCX);
        }
        if (rem)
            mov_rr64(e, RAX, RDX);
        size_t done = jmp_fwd(e);
        if (sgn) {      /* by -1: the quotient is -a (wraps for the minimum), the rest 0 */
            patch_here(e, m1);
            if (rem)
                alu_rr(e, 0, ALU_XOR, RAX, RAX);
            else
                grp3_r(e, wq, G3_NEG, RAX);
            size_t done2 = jmp_fwd(e);
            patch_here(e, zero);
            if (!rem)
                mov_ri(e, RAX, ~0ull);
            patch_here(e, done2);
        } else {
            patch_here(e, zero);
            if (!rem)
                mov_ri(e, RAX, ~0ull);
        }
        patch_here(e, done);
        if (w)
            movsxd_rr(e, RAX, RAX);
        break;
    }
    default:
        return false;
    }
    stx(g, rd, RAX);
    return true;
}

/* cmp x[rs1], x[rs2]; the condition code for "taken" */
static int gen_cmp(struct gen *g, const struct rv64_insn *d)
{
    struct jit_emit *e = &g->e;
    ldx(g, RAX, d->rs1);
    if (d->rs2 == 0)
        test_rr(e, 1, RAX, RAX);
    else
        alu_x(g, 1, ALU_CMP, RAX, d->rs2);
    switch (d->op) {
    case OP_BEQ: return CC_E;
    case OP_BNE: return CC_NE;
    case OP_BLT: return CC_L;
    case OP_BGE: return CC_GE;
    case OP_BLTU: return CC_B;
    default: return CC_AE;
    }
}

/* ---- helper calls (FP, AMO, Zb) ---- */
static void gen_helper(struct gen *g, const struct rv64_insn *d, unsigned k, uint64_t pc)
{
    struct jit_emit *e = &g->e;
    set_pc(e, pc);
    mov_rr64(e, RDI, RBP);
    /* rsi = the instruction copy stored after the code (fixed up below) */
    e8(e, 0x48);
    e8(e, 0xbe);                    /* mov rsi, imm64 */
    g->helper_at[g->nhelper] = e->pos;
    g->helper_insn[g->nhelper++] = *d;
    e64(e, 0);
    mov_ri(e, RDX, pc);
    call_abs(e, (const void *)jit_helper);
    test_rr(e, 0, RAX, RAX);
    struct stub *s = add_stub(g, STUB_FAULT, jcc_fwd(e, CC_NE), k, pc, d);
    (void)s;
    rc_reset(g);        /* the helper may have written any register */
}

/* Which operations the translator handles (others end the TB before them
 * and run in the interpreter).  A PAUSE hint goes to the interpreter too:
 * it counts them per slice and yields the host CPU in a spin-wait. */
static int classify(const struct rv64_insn *d)
{
    if (d->op == OP_FENCE && d->imm == FENCE_PAUSE)
        return 0;
    switch (d->op) {
    case OP_ILLEGAL: case OP_FENCE_I: case OP_ECALL: case OP_EBREAK: case OP_MRET:
    case OP_SRET: case OP_WFI: case OP_SFENCE_VMA:
    case OP_CSRRW: case OP_CSRRS: case OP_CSRRC: case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI:
        return 0;                       /* not translated */
    case OP_JAL: case OP_JALR: case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE:
    case OP_BLTU: case OP_BGEU:
        return 2;                       /* translated, ends the TB */
    default:
        return 1;
    }
}

static bool fetch_insn(const uint8_t *page, unsigned off, struct rv64_insn *d)
{
    if (off > 0xffe)
        return false;
    uint16_t lo;
    memcpy(&lo, page + off, 2);
    uint32_t raw = lo;
    if ((lo & 3) == 3) {
        if (off > 0xffc)
            return false;       /* crosses into the next page: interpreter */
        memcpy(&raw, page + off, 4);
    }
    rv64_decode(raw, d);
    return true;
}

struct jit_tb *jit_translate(struct rv64_hart *h, struct jit_hart *j, const uint8_t *host,
                             uint64_t ppc, bool *full)
{
    static __thread struct gen g;   /* large: not on the stack */
    struct rv64_insn insns[JIT_TB_MAX_INSNS];
    const uint8_t *page = host - (ppc & 0xfff);
    unsigned off = (unsigned)(ppc & 0xfff), n = 0;
    bool ends = false;
    *full = false;

    /* scan: how many instructions */
    while (n < JIT_TB_MAX_INSNS) {
        struct rv64_insn *d = &insns[n];
        if (!fetch_insn(page, off, d))
            break;
        int c = classify(d);
        if (c == 0)
            break;
        n++;
        off += d->len;
        if (c == 2) {
            ends = true;
            break;
        }
    }
    if (j->ntbs >= JIT_MAX_TBS) {
        *full = true;
        return NULL;
    }
    struct jit_tb *tb = &j->tbs[j->ntbs];
    memset(tb, 0, sizeof(*tb));
    tb->vpc = h->pc;
    tb->ppc = ppc;
    tb->key = h->ctx_data;
    tb->ninsn = n;
    if (n == 0) {           /* the interpreter runs this one */
        j->ntbs++;
        return tb;
    }

    memset(&g.e, 0, sizeof(g.e));
    g.e.buf = j->rw;
    g.e.pos = j->pos;
    g.e.cap = j->size;
    g.j = j;
    g.h = h;
    g.tb = tb;
    g.tb_index = j->ntbs;
    g.n = n;
    g.nstubs = 0;
    g.nhelper = 0;
    rc_reset(&g);
    struct jit_emit *e = &g.e;
    tb->code = (uint32_t)e->pos;

    /* entry: budget, then a pending stop request */
    alu_ri(e, 1, ALU_SUB, R12, (int32_t)n);
    size_t out1 = jcc_fwd(e, CC_L);
    cmp_mi8(e, M(RBP, SEOFF), 0);
    size_t out2 = jcc_fwd(e, CC_NE);

    uint64_t pc = h->pc;
    for (unsigned k = 0; k < n; k++) {
        const struct rv64_insn *d = &insns[k];
        uint64_t next = pc + d->len;
        switch (d->op) {
        case OP_JAL:
            if (d->rd) {
                mov_ri(e, RAX, next);
                stx(&g, d->rd, RAX);
            }
            emit_slot(&g, 0, pc + (uint64_t)(int64_t)d->imm);
            break;
        case OP_JALR:
            ldx(&g, RAX, d->rs1);
            if (d->imm)
                alu_ri(e, 1, ALU_ADD, RAX, d->imm);
            alu_ri(e, 1, ALU_AND, RAX, -2);
            mov_mr64(e, M(RBP, PCOFF), RAX);
            if (d->rd) {
                mov_ri(e, RCX, next);
                stx(&g, d->rd, RCX);
            }
            jmp_to(e, j->jc_off);       /* rax: the target */
            break;
        case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU: {
            int cc = gen_cmp(&g, d);
            size_t taken = jcc_fwd(e, cc);
            emit_slot(&g, 1, next);
            patch_here(e, taken);
            emit_slot(&g, 0, pc + (uint64_t)(int64_t)d->imm);
            break;
        }
        case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU:
            gen_load(&g, d, k, pc);
            break;
        case OP_SB: case OP_SH: case OP_SW: case OP_SD:
            gen_store(&g, d, k, pc);
            break;
        case OP_FENCE:
            if (fence_orders_store_load(d->imm)) {
                e8(e, 0x0f); e8(e, 0xae); e8(e, 0xf0);   /* mfence */
            }
            break;
        default:
            if (!gen_alu(&g, d, pc))
                gen_helper(&g, d, k, pc);
            break;
        }
        pc = next;
    }
    if (!ends)
        emit_slot(&g, 0, pc);

    /* out-of-line parts */
    patch_here(e, out1);
    patch_here(e, out2);
    emit_stop(&g, 0, h->pc);
    for (unsigned i = 0; i < g.nstubs; i++) {
        struct stub *s = &g.stubs[i];
        if (s->kind == STUB_FAULT) {
            patch_here(e, s->from);
            emit_fault_exit(&g, s->k);
        } else {
            emit_mem_stub(&g, s);
        }
    }
    /* instruction copies for the helpers, 16-byte aligned */
    while (e->pos & 15)
        e8(e, 0xcc);
    for (unsigned i = 0; i < g.nhelper; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)(j->rx + e->pos);
        if (!e->overflow)
            memcpy(e->buf + g.helper_at[i], &addr, 8);
        for (unsigned b = 0; b < sizeof(struct rv64_insn); b++)
            e8(e, ((const uint8_t *)&g.helper_insn[i])[b]);
    }
    if (e->overflow) {
        *full = true;
        return NULL;
    }
    j->pos = e->pos;
    j->ntbs++;
    return tb;
}

/* An indirect jump to the vpc in rax (already in h->pc): the dispatcher's
 * jump-cache lookup, shared by every jalr.  The entry must be for this vpc,
 * TLB generation and context, and its TB translated (not one the
 * interpreter runs) and still valid (its page's version); then jmp to the
 * TB, whose entry checks the budget and slice_end.  Otherwise leave to the
 * dispatcher. */
static void emit_jc_lookup(struct jit_emit *e, struct jit_hart *j, struct rv64_machine *m)
{
    size_t miss[6];
    unsigned nmiss = 0;
    _Static_assert(sizeof(struct jit_jc) == 32, "jump-cache entry is 32 bytes");
    mov_rr32(e, RCX, RAX);
    shift_ri(e, 0, SH_SHR, RCX, 1);
    alu_ri(e, 0, ALU_AND, RCX, (1 << JIT_JC_BITS) - 1);
    shift_ri(e, 0, SH_SHL, RCX, 5);
    mov_ri(e, RDX, (uint64_t)(uintptr_t)j->jc);
    alu_rr(e, 1, ALU_ADD, RDX, RCX);
    alu_rm(e, 1, ALU_CMP, RAX, M(RDX, (int32_t)offsetof(struct jit_jc, vpc)));
    miss[nmiss++] = jcc_fwd(e, CC_NE);
    mov_rm64(e, RCX, M(RBP, GENOFF));
    alu_rm(e, 1, ALU_CMP, RCX, M(RDX, (int32_t)offsetof(struct jit_jc, gen)));
    miss[nmiss++] = jcc_fwd(e, CC_NE);
    mov_rm32(e, RCX, M(RBP, (int32_t)offsetof(struct rv64_hart, ctx_data)));
    shift_ri(e, 0, SH_SHL, RCX, 4);
    alu_rm(e, 0, ALU_OR, RCX, M(RBP, (int32_t)offsetof(struct rv64_hart, ctx_fetch)));
    alu_rm(e, 0, ALU_CMP, RCX, M(RDX, (int32_t)offsetof(struct jit_jc, ctx)));
    miss[nmiss++] = jcc_fwd(e, CC_NE);
    mov_rm64(e, RDX, M(RDX, (int32_t)offsetof(struct jit_jc, tb)));
    test_rr(e, 1, RDX, RDX);
    miss[nmiss++] = jcc_fwd(e, CC_E);
    alu_mi(e, 0, ALU_CMP, M(RDX, (int32_t)offsetof(struct jit_tb, ninsn)), 0);
    miss[nmiss++] = jcc_fwd(e, CC_E);
    /* version[(tb->ppc - ram_base) >> 12] == tb->version */
    mov_rm64(e, RCX, M(RDX, (int32_t)offsetof(struct jit_tb, ppc)));
    mov_ri(e, RSI, m->ram_base);
    alu_rr(e, 1, ALU_SUB, RCX, RSI);
    shift_ri(e, 1, SH_SHR, RCX, 12);
    shift_ri(e, 1, SH_SHL, RCX, 2);
    mov_ri(e, RSI, (uint64_t)(uintptr_t)m->jit->version);
    mov_rm32(e, RSI, MX(RSI, RCX, 0));
    alu_rm(e, 0, ALU_CMP, RSI, M(RDX, (int32_t)offsetof(struct jit_tb, version)));
    miss[nmiss++] = jcc_fwd(e, CC_NE);
    mov_rm32(e, RCX, M(RDX, (int32_t)offsetof(struct jit_tb, code)));
    mov_ri(e, RSI, (uint64_t)(uintptr_t)j->rx);
    alu_rr(e, 1, ALU_ADD, RCX, RSI);
    jmp_r(e, RCX);
    for (unsigned i = 0; i < nmiss; i++)
        patch_here(e, miss[i]);
    mov_ri(e, RAX, JX_LOOKUP | (2u << 8));
    jmp_to(e, j->exit_off);
}

/* enter(h, code, budget) -> {exit word, remaining budget} in rax:rdx; the
 * common exit restores the callee-saved registers; then the shared
 * jump-cache lookup of indirect jumps. */
void jit_emit_trampolines(struct jit_hart *j, struct rv64_machine *m)
{
    struct jit_emit e = { .buf = j->rw, .pos = 0, .cap = j->size };
    static const int saved[] = { RBP, RBX, R12, R13, R14, R15 };
    j->enter_off = 0;
    for (unsigned i = 0; i < 6; i++)
        push_r(&e, saved[i]);
    alu_ri(&e, 1, ALU_SUB, RSP, 8);
    mov_rr64(&e, RBP, RDI);
    mov_rr64(&e, R12, RDX);
    jmp_r(&e, RSI);
    while (e.pos & 15)
        e8(&e, 0xcc);
    j->exit_off = (uint32_t)e.pos;
    mov_rr64(&e, RDX, R12);
    alu_ri(&e, 1, ALU_ADD, RSP, 8);
    for (int i = 5; i >= 0; i--)
        pop_r(&e, saved[i]);
    ret(&e);
    while (e.pos & 15)
        e8(&e, 0xcc);
    j->jc_off = (uint32_t)e.pos;
    emit_jc_lookup(&e, j, m);
    while (e.pos & 15)
        e8(&e, 0xcc);
    j->fixed_end = e.pos;
    j->pos = e.pos;
}
