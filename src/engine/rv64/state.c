/* rv64: hart state in snapshots (sections "cpu0".."cpuN-1", version 2).
 *
 * Layout: x[1..31], f[0..31], pc, priv, fflags, frm, then the CSRs in the
 * order of the struct, the counters, the LR reservation, the WFI flag and
 * (version 2) stimecmp.  Version 1 (before Sstc) still loads: stimecmp
 * then takes its reset value (all ones), and menvcfg was always 0 there.
 * Every value is checked against what the CSR write paths could have
 * produced (WARL fields, masks, satp modes) before the hart is touched. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/snapshot.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"

#define CPU_STATE_VERSION 2

static void hart_save(struct rv64_hart *h, struct snap_writer *w)
{
    char name[16];
    snprintf(name, sizeof(name), "cpu%u", (unsigned)h->hartid);
    snapw_section(w, name, CPU_STATE_VERSION);
    for (unsigned i = 1; i < 32; i++)
        snapw_u64(w, h->x[i]);
    for (unsigned i = 0; i < 32; i++)
        snapw_u64(w, h->f[i]);
    snapw_u64(w, h->pc);
    snapw_u8(w, (uint8_t)h->priv);
    /* fflags is current: the hart thread synced it before parking (a
     * sync here would fold in this thread's host FP flags) */
    snapw_u8(w, (uint8_t)h->fpu.fflags);
    snapw_u8(w, h->frm);
    const uint64_t csr[] = {
        h->mstatus, h->misa, h->medeleg, h->mideleg, h->mie, h->mtvec, h->mscratch, h->mepc,
        h->mcause, h->mtval, h->mcounteren, h->menvcfg, h->mcountinhibit, h->mip_sw, h->mip_hw,
        h->stvec, h->sscratch, h->sepc, h->scause, h->stval, h->satp, h->scounteren, h->senvcfg,
        h->pmpcfg[0], h->pmpcfg[1],
    };
    for (unsigned i = 0; i < sizeof(csr) / sizeof(csr[0]); i++)
        snapw_u64(w, csr[i]);
    for (unsigned i = 0; i < 16; i++)
        snapw_u64(w, h->pmpaddr[i]);
    snapw_u64(w, h->instret);
    snapw_u64(w, h->cycle_delta);
    snapw_u64(w, h->resv_addr);
    snapw_bool(w, h->resv_valid);
    snapw_bool(w, h->wfi);
    snapw_u64(w, h->stimecmp);
}

void rv64_save(struct rv64_machine *m, struct snap_writer *w)
{
    for (unsigned i = 0; i < m->nharts; i++)
        hart_save(m->harts[i], w);
}

static int hart_load(struct rv64_hart *h, struct snap_file *f, struct err *e)
{
    char name[16];
    snprintf(name, sizeof(name), "cpu%u", (unsigned)h->hartid);
    struct snap_reader r;
    int ret = snap_section(f, name, 1, CPU_STATE_VERSION, &r, e);
    if (ret < 0)
        return ret;
    struct rv64_hart n;
    memset(&n, 0, sizeof(n));
    for (unsigned i = 1; i < 32; i++)
        n.x[i] = snapr_u64(&r);
    for (unsigned i = 0; i < 32; i++)
        n.f[i] = snapr_u64(&r);
    n.pc = snapr_u64(&r);
    n.priv = snapr_u8(&r);
    uint8_t fflags = snapr_u8(&r);
    n.frm = snapr_u8(&r);
    uint64_t *csr[] = {
        &n.mstatus, &n.misa, &n.medeleg, &n.mideleg, &n.mie, &n.mtvec, &n.mscratch, &n.mepc,
        &n.mcause, &n.mtval, &n.mcounteren, &n.menvcfg, &n.mcountinhibit, &n.mip_sw, &n.mip_hw,
        &n.stvec, &n.sscratch, &n.sepc, &n.scause, &n.stval, &n.satp, &n.scounteren, &n.senvcfg,
        &n.pmpcfg[0], &n.pmpcfg[1],
    };
    for (unsigned i = 0; i < sizeof(csr) / sizeof(csr[0]); i++)
        *csr[i] = snapr_u64(&r);
    for (unsigned i = 0; i < 16; i++)
        n.pmpaddr[i] = snapr_u64(&r);
    n.instret = snapr_u64(&r);
    n.cycle_delta = snapr_u64(&r);
    n.resv_addr = snapr_u64(&r);
    n.resv_valid = snapr_bool(&r);
    n.wfi = snapr_bool(&r);
    n.stimecmp = r.version >= 2 ? snapr_u64(&r) : UINT64_MAX;

    /* what the CSR write paths allow */
    uint64_t mode = n.satp >> 60;
    snapr_check(&r, (n.pc & 1) == 0, "pc is not 2-byte aligned");
    snapr_check(&r, n.priv == PRV_U || n.priv == PRV_S || n.priv == PRV_M,
                "bad privilege level");
    snapr_check(&r, fflags <= 0x1f, "bad fflags");
    snapr_check(&r, n.frm <= 7, "bad frm");
    snapr_check(&r, n.misa == h->misa, "misa differs from this engine's ISA");
    snapr_check(&r, (n.mstatus & ~(MSTATUS_WMASK | MSTATUS_UXL | MSTATUS_SXL | MSTATUS_SD)) == 0 &&
                    ((n.mstatus & MSTATUS_MPP) >> 11) != 2 &&
                    ((n.mstatus & MSTATUS_UXL) >> 32) == 2 && ((n.mstatus & MSTATUS_SXL) >> 34) == 2,
                "bad mstatus");
    snapr_check(&r, (n.medeleg & ~MEDELEG_MASK) == 0, "bad medeleg");
    snapr_check(&r, (n.mideleg & ~MIP_S_MASK) == 0, "bad mideleg");
    snapr_check(&r, (n.mie & ~MIP_ALL) == 0, "bad mie");
    snapr_check(&r, (n.mip_sw & ~MIP_S_MASK) == 0, "bad mip");
    snapr_check(&r, (n.mip_hw & ~(MIP_MSIP | MIP_MTIP | MIP_MEIP | MIP_SEIP | MIP_STIP)) == 0,
                "bad mip");
    snapr_check(&r, (n.menvcfg & ~MENVCFG_STCE) == 0, "bad menvcfg");
    for (unsigned i = 0; i < 16; i++) {
        uint8_t c = (uint8_t)(n.pmpcfg[i / 8] >> (8 * (i % 8)));
        snapr_check(&r, (c & 0x60) == 0 && (c & (PMP_R | PMP_W)) != PMP_W, "bad pmpcfg");
        snapr_check(&r, n.pmpaddr[i] < (1ull << 54), "bad pmpaddr");
    }
    snapr_check(&r, (n.mtvec & 2) == 0 && (n.stvec & 2) == 0,
                "bad trap vector mode");
    snapr_check(&r, (n.mepc & 1) == 0 && (n.sepc & 1) == 0, "bad xepc alignment");
    snapr_check(&r, (mode == 0 || mode == 8 || mode == 9) && (n.satp & (0xffffull << 44)) == 0,
                "bad satp");
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;

    memcpy(h->x, n.x, sizeof(n.x));
    h->x[0] = 0;
    memcpy(h->f, n.f, sizeof(n.f));
    h->pc = n.pc;
    h->priv = n.priv;
    h->fpu.fflags = fflags;     /* the hart thread clears host flags as it starts */
    h->frm = n.frm;
    h->mstatus = n.mstatus;
    h->medeleg = n.medeleg;
    h->mideleg = n.mideleg;
    h->mie = n.mie;
    h->mtvec = n.mtvec;
    h->mscratch = n.mscratch;
    h->mepc = n.mepc;
    h->mcause = n.mcause;
    h->mtval = n.mtval;
    h->mcounteren = n.mcounteren;
    h->menvcfg = n.menvcfg;
    h->mcountinhibit = n.mcountinhibit;
    h->mip_sw = n.mip_sw;
    __atomic_store_n(&h->mip_hw, n.mip_hw, __ATOMIC_SEQ_CST);
    h->stvec = n.stvec;
    h->sscratch = n.sscratch;
    h->sepc = n.sepc;
    h->scause = n.scause;
    h->stval = n.stval;
    h->satp = n.satp;
    h->scounteren = n.scounteren;
    h->senvcfg = n.senvcfg;
    h->pmpcfg[0] = n.pmpcfg[0];
    h->pmpcfg[1] = n.pmpcfg[1];
    memcpy(h->pmpaddr, n.pmpaddr, sizeof(n.pmpaddr));
    h->instret = n.instret;
    h->cycle_delta = n.cycle_delta;
    /* LR/SC is value-based and the value LR read is not saved: the
     * reservation is dropped (an SC may always fail; the guest retries) */
    h->resv_addr = n.resv_addr;
    h->resv_valid = false;
    h->wfi = n.wfi;
    h->stimecmp = n.stimecmp;
    h->slice_end = true;
    rv64_update_ctx(h);
    rv64_pmp_update(h);     /* flushes the TLB */
    return 0;
}

int rv64_load(struct rv64_machine *m, struct snap_file *f, struct err *e)
{
    for (unsigned i = 0; i < m->nharts; i++) {
        int ret = hart_load(m->harts[i], f, e);
        if (ret < 0)
            return ret;
        rv64_jit_flush(m->harts[i]);    /* translations are not saved */
    }
    return 0;
}

void rv64_dirty_reset(struct rv64_machine *m)
{
    for (unsigned i = 0; i < m->nharts; i++)
        rv64_tlb_flush(m->harts[i]);
}
