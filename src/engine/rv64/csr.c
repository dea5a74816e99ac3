/* rv64: control and status registers, traps, interrupts, xRET. */
#include <string.h>

#include "arch/riscv/clint.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"

#define SSTATUS_MASK (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | \
                      MSTATUS_MXR | MSTATUS_UXL | MSTATUS_SD)
#define SSTATUS_WMASK (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | \
                       MSTATUS_MXR)
#define SATP_MODE_SHIFT 60

void rv64_tlb_flush(struct rv64_hart *h)
{
    h->tlb_gen++;
    if ((h->tlb_gen & 0xfff) == 0) {
        memset(h->tlb, 0, sizeof(h->tlb));
        h->tlb_gen = 1;
        rv64_jit_tlb_wrapped(h);   /* its jump cache is tagged with the generation */
    }
}

void rv64_update_ctx(struct rv64_hart *h)
{
    static const unsigned by_priv[4] = { CTX_U, CTX_S, CTX_S, CTX_M };
    h->ctx_fetch = by_priv[h->priv];
    unsigned eff = h->priv;
    if (eff == PRV_M && (h->mstatus & MSTATUS_MPRV))
        eff = (unsigned)((h->mstatus & MSTATUS_MPP) >> 11);
    h->ctx_data = by_priv[eff];
    if (h->ctx_data == CTX_S && (h->mstatus & MSTATUS_SUM))
        h->ctx_data = CTX_S_SUM;
}

static uint64_t read_mstatus(const struct rv64_hart *h)
{
    uint64_t s = h->mstatus;
    if ((s & MSTATUS_FS) == MSTATUS_FS)
        s |= MSTATUS_SD;
    return s;
}

static void write_mstatus(struct rv64_hart *h, uint64_t v, uint64_t mask)
{
    uint64_t old = h->mstatus;
    uint64_t n = (old & ~mask) | (v & mask);
    if (((n & MSTATUS_MPP) >> 11) == 2) /* MPP is WARL: H-mode doesn't exist */
        n = (n & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
    n = (n & ~(MSTATUS_UXL | MSTATUS_SXL | MSTATUS_SD)) | (2ull << 32) | (2ull << 34);
    h->mstatus = n;
    if ((old ^ n) & MSTATUS_MXR)
        rv64_tlb_flush(h);
    rv64_update_ctx(h);
    h->slice_end = true; /* interrupts may have become enabled */
}

void rv64_trap(struct rv64_hart *h, uint64_t cause, uint64_t tval)
{
    bool irq = cause >> 63;
    uint64_t code = cause & 63;
    uint64_t deleg = irq ? h->mideleg : h->medeleg;
    h->resv_valid = false;
    h->wfi = false;
    if (h->priv <= PRV_S && (deleg >> code & 1)) {
        h->scause = cause;
        h->sepc = h->pc;
        h->stval = tval;
        uint64_t s = h->mstatus & ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP);
        if (h->mstatus & MSTATUS_SIE)
            s |= MSTATUS_SPIE;
        if (h->priv == PRV_S)
            s |= MSTATUS_SPP;
        h->mstatus = s;
        h->priv = PRV_S;
        uint64_t base = h->stvec & ~3ull;
        h->pc = ((h->stvec & 1) && irq) ? base + 4 * code : base;
    } else {
        h->mcause = cause;
        h->mepc = h->pc;
        h->mtval = tval;
        uint64_t s = h->mstatus & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP);
        if (h->mstatus & MSTATUS_MIE)
            s |= MSTATUS_MPIE;
        s |= (uint64_t)h->priv << 11;
        h->mstatus = s;
        h->priv = PRV_M;
        uint64_t base = h->mtvec & ~3ull;
        h->pc = ((h->mtvec & 1) && irq) ? base + 4 * code : base;
    }
    rv64_update_ctx(h);
}

int rv64_mret(struct rv64_hart *h)
{
    if (h->priv != PRV_M)
        return -1;
    unsigned mpp = (unsigned)((h->mstatus & MSTATUS_MPP) >> 11);
    uint64_t s = h->mstatus & ~(MSTATUS_MIE | MSTATUS_MPP);
    if (s & MSTATUS_MPIE)
        s |= MSTATUS_MIE;
    s |= MSTATUS_MPIE;
    if (mpp != PRV_M)
        s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    h->priv = mpp;
    h->pc = h->mepc;
    h->slice_end = true;
    rv64_update_ctx(h);
    return 0;
}

int rv64_sret(struct rv64_hart *h)
{
    if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TSR)))
        return -1;
    unsigned spp = (h->mstatus & MSTATUS_SPP) ? PRV_S : PRV_U;
    uint64_t s = h->mstatus & ~(MSTATUS_SIE | MSTATUS_SPP);
    if (s & MSTATUS_SPIE)
        s |= MSTATUS_SIE;
    s |= MSTATUS_SPIE;
    s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    h->priv = spp;
    h->pc = h->sepc;
    h->slice_end = true;
    rv64_update_ctx(h);
    return 0;
}

int rv64_pending_irq(const struct rv64_hart *h)
{
    uint64_t pend = (h->mip_sw | h->mip_hw) & h->mie;
    if (!pend)
        return -1;
    uint64_t m = pend & ~h->mideleg;
    if (!(h->priv < PRV_M || (h->mstatus & MSTATUS_MIE)))
        m = 0;
    uint64_t s = pend & h->mideleg;
    if (!(h->priv < PRV_S || (h->priv == PRV_S && (h->mstatus & MSTATUS_SIE))))
        s = 0;
    static const int order[] = { IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI };
    uint64_t take = m ? m : s;
    if (!take)
        return -1;
    for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (take >> order[i] & 1)
            return order[i];
    return -1;
}

void rv64_take_irq(struct rv64_hart *h, int irq)
{
    rv64_trap(h, (1ull << 63) | (uint64_t)irq, 0);
}

/* Called in device context, on any hart's thread or the event loop's: the
 * update is atomic, h's running slice ends soon and, if h's thread sleeps,
 * it is woken (h's only). */
void rv64_set_irq(struct rv64_hart *h, uint64_t bit, bool level)
{
    uint64_t old = level ? __atomic_fetch_or(&h->mip_hw, bit, __ATOMIC_SEQ_CST)
                         : __atomic_fetch_and(&h->mip_hw, ~bit, __ATOMIC_SEQ_CST);
    if (((old & bit) != 0) != level) {
        __atomic_store_n(&h->slice_end, true, __ATOMIC_RELAXED);
        if (level)
            rv64_kick_hart(h);
    }
}

uint64_t rv64_time(const struct rv64_hart *h)
{
    return h->m->clint ? clint_mtime(h->m->clint) : 0;
}

void rv64_sstc_tick(struct rv64_hart *h, uint64_t now)
{
    if (h->menvcfg & MENVCFG_STCE)
        rv64_set_irq(h, MIP_STIP, now >= h->stimecmp);
}

/* Sstc: stimecmp below M-mode needs menvcfg.STCE and mcounteren.TM. */
static bool stimecmp_allowed(const struct rv64_hart *h)
{
    return h->priv == PRV_M || ((h->menvcfg & MENVCFG_STCE) && (h->mcounteren & 2));
}

static void write_menvcfg(struct rv64_hart *h, uint64_t v)
{
    uint64_t old = h->menvcfg;
    h->menvcfg = v & MENVCFG_STCE; /* no other optional feature */
    if ((old ^ h->menvcfg) & MENVCFG_STCE) {
        /* STIP changes hands: the comparator's or software's */
        h->mip_sw &= ~MIP_STIP;
        rv64_set_irq(h, MIP_STIP, false);
        rv64_sstc_tick(h, rv64_time(h));
        h->slice_end = true;
    }
}

static bool counter_allowed(const struct rv64_hart *h, unsigned idx)
{
    if (h->priv == PRV_M)
        return true;
    if (!(h->mcounteren >> idx & 1))
        return false;
    if (h->priv == PRV_U && !(h->scounteren >> idx & 1))
        return false;
    return true;
}

static uint64_t fcsr_flags(struct rv64_hart *h)
{
    fpu_sync(&h->fpu);
    return h->fpu.fflags & 0x1f;
}

/* Read a CSR.  Returns -1 if it doesn't exist or isn't accessible. */
static int csr_read(struct rv64_hart *h, unsigned csr, uint64_t *v)
{
    switch (csr) {
    case 0x001: case 0x002: case 0x003: /* fflags, frm, fcsr */
        if (!(h->mstatus & MSTATUS_FS))
            return -1;
        *v = csr == 0x001 ? fcsr_flags(h) : csr == 0x002 ? h->frm
                                                          : (fcsr_flags(h) | (uint64_t)h->frm << 5);
        return 0;
    case 0xc00: case 0xc01: case 0xc02: /* cycle, time, instret */
        if (!counter_allowed(h, csr - 0xc00))
            return -1;
        *v = csr == 0xc00 ? h->instret + h->cycle_delta : csr == 0xc02 ? h->instret
             : rv64_time(h);
        return 0;
    case 0x100: *v = read_mstatus(h) & SSTATUS_MASK; return 0;
    case 0x104: *v = h->mie & h->mideleg; return 0;
    case 0x105: *v = h->stvec; return 0;
    case 0x106: *v = h->scounteren; return 0;
    case 0x10a: *v = h->senvcfg; return 0;
    case 0x140: *v = h->sscratch; return 0;
    case 0x141: *v = h->sepc; return 0;
    case 0x142: *v = h->scause; return 0;
    case 0x143: *v = h->stval; return 0;
    case 0x144: *v = (h->mip_sw | h->mip_hw) & h->mideleg; return 0;
    case 0x14d:
        if (!stimecmp_allowed(h))
            return -1;
        *v = h->stimecmp;
        return 0;
    case 0x180:
        if (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        *v = h->satp;
        return 0;
    case 0xf11: case 0xf12: case 0xf13: case 0xf15: *v = 0; return 0;
    case 0xf14: *v = h->hartid; return 0;
    case 0x300: *v = read_mstatus(h); return 0;
    case 0x301: *v = h->misa; return 0;
    case 0x302: *v = h->medeleg; return 0;
    case 0x303: *v = h->mideleg; return 0;
    case 0x304: *v = h->mie; return 0;
    case 0x305: *v = h->mtvec; return 0;
    case 0x306: *v = h->mcounteren; return 0;
    case 0x30a: *v = h->menvcfg; return 0;
    case 0x320: *v = h->mcountinhibit; return 0;
    case 0x340: *v = h->mscratch; return 0;
    case 0x341: *v = h->mepc; return 0;
    case 0x342: *v = h->mcause; return 0;
    case 0x343: *v = h->mtval; return 0;
    case 0x344: *v = h->mip_sw | h->mip_hw; return 0;
    case 0x3a0: *v = h->pmpcfg[0]; return 0;
    case 0x3a2: *v = h->pmpcfg[1]; return 0;
    case 0xb00: *v = h->instret + h->cycle_delta; return 0;
    case 0xb02: *v = h->instret; return 0;
    default:
        break;
    }
    if (csr >= 0x3a4 && csr <= 0x3af && !(csr & 1)) { *v = 0; return 0; }
    if (csr >= 0x3b0 && csr <= 0x3bf) { *v = h->pmpaddr[csr - 0x3b0]; return 0; }
    if (csr >= 0x3c0 && csr <= 0x3ef) { *v = 0; return 0; }
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) { *v = 0; return 0; }
    if (csr >= 0xc03 && csr <= 0xc1f) {
        if (!counter_allowed(h, csr - 0xc00))
            return -1;
        *v = 0;
        return 0;
    }
    return -1;
}

static int csr_write(struct rv64_hart *h, unsigned csr, uint64_t v)
{
    switch (csr) {
    case 0x001:
        fpu_set_flags(&h->fpu, v & 0x1f);
        h->mstatus |= MSTATUS_FS;
        return 0;
    case 0x002:
        h->frm = v & 7;
        h->mstatus |= MSTATUS_FS;
        return 0;
    case 0x003:
        fpu_set_flags(&h->fpu, v & 0x1f);
        h->frm = (v >> 5) & 7;
        h->mstatus |= MSTATUS_FS;
        return 0;
    case 0x100: write_mstatus(h, v, SSTATUS_WMASK); return 0;
    case 0x104:
        h->mie = (h->mie & ~h->mideleg) | (v & h->mideleg);
        h->slice_end = true;
        return 0;
    case 0x105: h->stvec = v & ~2ull; return 0;
    case 0x106: h->scounteren = v & 0xffffffff; return 0;
    case 0x10a: h->senvcfg = 0; return 0;  /* no optional features */
    case 0x140: h->sscratch = v; return 0;
    case 0x141: h->sepc = v & ~1ull; return 0;
    case 0x142: h->scause = v & (0x8000000000000000ull | 63); return 0;
    case 0x143: h->stval = v; return 0;
    case 0x144: {
        uint64_t m = MIP_SSIP & h->mideleg;
        h->mip_sw = (h->mip_sw & ~m) | (v & m);
        h->slice_end = true;
        return 0;
    }
    case 0x14d:
        if (!stimecmp_allowed(h))
            return -1;
        h->stimecmp = v;
        rv64_sstc_tick(h, rv64_time(h));
        h->slice_end = true;
        return 0;
    case 0x180: {
        if (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        uint64_t mode = v >> SATP_MODE_SHIFT;
        if (mode != 0 && mode != 8 && mode != 9)
            return 0; /* unsupported mode: the write has no effect */
        h->satp = v & ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1));
        h->satp &= ~(0xffffull << 44); /* ASIDLEN = 0 */
        rv64_tlb_flush(h);
        return 0;
    }
    case 0x300: write_mstatus(h, v, MSTATUS_WMASK); return 0;
    case 0x301: return 0; /* misa is fixed */
    case 0x302: h->medeleg = v & MEDELEG_MASK; return 0;
    case 0x303:
        h->mideleg = v & MIP_S_MASK;
        h->slice_end = true;
        return 0;
    case 0x304:
        h->mie = v & MIP_ALL;
        h->slice_end = true;
        return 0;
    case 0x305: h->mtvec = v & ~2ull; return 0;
    case 0x306: h->mcounteren = v & 0xffffffff; return 0;
    case 0x30a: write_menvcfg(h, v); return 0;
    case 0x320: h->mcountinhibit = 0; return 0; /* WARL: counters can't be inhibited */
    case 0x340: h->mscratch = v; return 0;
    case 0x341: h->mepc = v & ~1ull; return 0;
    case 0x342: h->mcause = v & (0x8000000000000000ull | 63); return 0;
    case 0x343: h->mtval = v; return 0;
    case 0x344: {
        /* with Sstc on, STIP is stimecmp's (read-only) */
        uint64_t m = MIP_S_MASK & ~((h->menvcfg & MENVCFG_STCE) ? MIP_STIP : 0);
        h->mip_sw = (h->mip_sw & ~m) | (v & m);
        h->slice_end = true;
        return 0;
    }
    case 0x3a0: return rv64_pmp_write_cfg(h, 0, v);
    case 0x3a2: return rv64_pmp_write_cfg(h, 1, v);
    /* A counter written by an instruction reads back the written value
     * after that instruction retires (which increments instret). */
    case 0xb00: h->cycle_delta = v - 1 - h->instret; return 0;
    case 0xb02: h->cycle_delta += h->instret - (v - 1); h->instret = v - 1; return 0;
    default:
        break;
    }
    if (csr >= 0x3a4 && csr <= 0x3af && !(csr & 1))
        return 0;
    if (csr >= 0x3b0 && csr <= 0x3bf)
        return rv64_pmp_write_addr(h, csr - 0x3b0, v);
    if (csr >= 0x3c0 && csr <= 0x3ef)
        return 0;
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f))
        return 0;
    return -1;
}

/* op: 1 = CSRRW, 2 = CSRRS, 3 = CSRRC.  do_write is false for CSRRS/C with
 * rs1 = x0 (no write side effects, read-only CSRs allowed). */
int rv64_csr_rw(struct rv64_hart *h, unsigned csr, unsigned op, uint64_t src, bool do_write,
                uint64_t *old)
{
    unsigned min_priv = (csr >> 8) & 3;
    if (h->priv < min_priv)
        return -1;
    if (do_write && (csr >> 10) == 3)
        return -1; /* read-only CSR */
    uint64_t v = 0;
    if (csr_read(h, csr, &v) < 0)
        return -1;
    if (do_write) {
        /* Only the software-writable SEIP bit takes part in a CSRRS/CSRRC
         * of mip; otherwise the PLIC's line would get latched into it. */
        uint64_t base = csr == 0x344 ? (h->mip_sw | (h->mip_hw & ~MIP_SEIP)) : v;
        uint64_t n = op == 1 ? src : op == 2 ? (base | src) : (base & ~src);
        if (csr_write(h, csr, n) < 0)
            return -1;
    }
    *old = v;
    return 0;
}
