/* rv64 JIT: instructions the generated code runs through one C helper
 * (F/D through the fpu.c core, so results are bit-exact with the
 * interpreter; A; Zba/Zbb).  Same semantics as exec.c's handlers.  Returns
 * 0, or an exception cause with h->fault_tval set (h->pc is already the
 * instruction's). */
#include <string.h>

#include "engine/rv64/amo.h"
#include "engine/rv64/bitmanip.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/jit.h"

#define BOX32(v) (0xffffffff00000000ull | (uint32_t)(v))

static int illegal(struct rv64_hart *h, const struct rv64_insn *d)
{
    h->fault_tval = d->raw;
    return EXC_ILLEGAL;
}

static int atomic_op(struct rv64_hart *h, const struct rv64_insn *d)
{
    uint64_t *x = h->x, rs1 = x[d->rs1], rs2 = x[d->rs2], v = 0;
    bool w = d->op == OP_LR_W || d->op == OP_SC_W || d->op == OP_AMO_W;
    unsigned size = w ? 4 : 8;
    void *p;
    int c;
    switch (d->op) {
    case OP_LR_W: case OP_LR_D:
        if (rs1 & (size - 1)) {
            h->fault_tval = rs1;
            return EXC_LOAD_MISALIGNED;
        }
        if ((c = rv64_load_slow(h, rs1, size, &v)))
            return c;
        x[d->rd] = w ? (uint64_t)(int32_t)v : v;
        h->resv_addr = rs1;
        h->resv_value = v;
        h->resv_valid = true;
        break;
    case OP_SC_W: case OP_SC_D:
        if (rs1 & (size - 1)) {
            h->fault_tval = rs1;
            return EXC_STORE_MISALIGNED;
        }
        if (!h->resv_valid || h->resv_addr != rs1) {
            h->resv_valid = false;
            x[d->rd] = 1;
            break;
        }
        if ((c = rv64_amo_ptr(h, rs1, size, &p)))
            return c;
        h->resv_valid = false;
        x[d->rd] = !sc_host(p, h->resv_value, rs2, w);
        break;
    default: {
        if ((c = rv64_amo_ptr(h, rs1, size, &p)))
            return c;
        uint64_t old = amo_host((unsigned)d->imm, p, rs2, w);
        x[d->rd] = w ? (uint64_t)(int32_t)old : old;
        break;
    }
    }
    x[0] = 0;
    return 0;
}

int jit_helper(struct rv64_hart *h, const struct rv64_insn *d, uint64_t pc)
{
    uint64_t *x = h->x, *f = h->f, v;
    unsigned rm = d->rm;
    int c;
    (void)pc;
    if (d->op == OP_ZB) {
        x[d->rd] = rv64_zb(d->rm, x[d->rs1], x[d->rs2], (unsigned)d->imm);
        x[0] = 0;
        return 0;
    }
    if (d->op >= OP_LR_W && d->op <= OP_AMO_D)
        return atomic_op(h, d);
    /* F and D */
    if (!(h->mstatus & MSTATUS_FS))
        return illegal(h, d);
    if (rm == 7)
        rm = h->frm;
    bool rm_ok = rm <= 4;
    uint64_t a = f[d->rs1], b = f[d->rs2], rs1 = x[d->rs1];
    switch (d->op) {
    case OP_FLW: case OP_FLD:
        if ((c = rv64_load_slow(h, rs1 + (uint64_t)d->imm, d->op == OP_FLW ? 4 : 8, &v)))
            return c;
        f[d->rd] = d->op == OP_FLW ? BOX32(v) : v;
        break;
    case OP_FSW: case OP_FSD:
        return rv64_store_slow(h, rs1 + (uint64_t)d->imm, d->op == OP_FSW ? 4 : 8, b);
    case OP_FMA_S: case OP_FMA_D:
        if (!rm_ok)
            return illegal(h, d);
        f[d->rd] = (d->op == OP_FMA_S ? fpu_fma_s : fpu_fma_d)(
            &h->fpu, a, b, f[d->rs3], (int)(d->imm & 1), (int)(d->imm >> 1), rm);
        break;
    case OP_FOP2_S: case OP_FOP2_D:
        if (d->imm <= FPU_DIV) {
            if (!rm_ok)
                return illegal(h, d);
        } else {
            rm = 0;
        }
        f[d->rd] = (d->op == OP_FOP2_S ? fpu_op2_s : fpu_op2_d)(&h->fpu, (enum fpu_op2)d->imm,
                                                                  a, b, rm);
        break;
    case OP_FSQRT_S: case OP_FSQRT_D:
        if (!rm_ok)
            return illegal(h, d);
        f[d->rd] = (d->op == OP_FSQRT_S ? fpu_sqrt_s : fpu_sqrt_d)(&h->fpu, a, rm);
        break;
    case OP_FCMP_S: case OP_FCMP_D:
        x[d->rd] = (d->op == OP_FCMP_S ? fpu_cmp_s : fpu_cmp_d)(&h->fpu, (enum fpu_cmp)d->imm,
                                                                  a, b);
        break;
    case OP_FCLASS_S: x[d->rd] = fpu_class_s(a); x[0] = 0; return 0;
    case OP_FCLASS_D: x[d->rd] = fpu_class_d(a); x[0] = 0; return 0;
    case OP_FCVT_I_S: case OP_FCVT_I_D:
        if (!rm_ok)
            return illegal(h, d);
        x[d->rd] = (d->op == OP_FCVT_I_S ? fpu_to_int_s : fpu_to_int_d)(
            &h->fpu, (enum fpu_int)d->imm, a, rm);
        break;
    case OP_FCVT_S_I: case OP_FCVT_D_I:
        if (!rm_ok)
            return illegal(h, d);
        f[d->rd] = (d->op == OP_FCVT_S_I ? fpu_from_int_s : fpu_from_int_d)(
            &h->fpu, (enum fpu_int)d->imm, rs1, rm);
        break;
    case OP_FCVT_S_D:
        if (!rm_ok)
            return illegal(h, d);
        f[d->rd] = fpu_d_to_s(&h->fpu, a, rm);
        break;
    case OP_FCVT_D_S:
        if (!rm_ok)
            return illegal(h, d);
        f[d->rd] = fpu_s_to_d(&h->fpu, a);
        break;
    case OP_FMV_X_W: x[d->rd] = (uint64_t)(int32_t)a; x[0] = 0; return 0;
    case OP_FMV_X_D: x[d->rd] = a; x[0] = 0; return 0;
    case OP_FMV_W_X: f[d->rd] = BOX32(rs1); break;
    case OP_FMV_D_X: f[d->rd] = rs1; break;
    default:
        return illegal(h, d);
    }
    x[0] = 0;
    h->mstatus |= MSTATUS_FS;   /* dirty */
    return 0;
}
