/* rv64 engine: Zicsr instructions, CSR semantics and privilege checks, the
 * F state (mstatus.FS, fcsr), satp, traps, xRET, delegation, interrupts. */
#include "rv64_harness.h"

#define IRQ(n) ((1ull << 63) | (n))
#define FS_SHIFT 13
#define FS_OFF (0ull << FS_SHIFT)
#define FS_INITIAL (1ull << FS_SHIFT)
#define FS_CLEAN (2ull << FS_SHIFT)
#define FS_DIRTY (3ull << FS_SHIFT)
#define MPP_S (1ull << 11)
#define MPP_M (3ull << 11)

/* Run insn at CODE in privilege `priv`; it must complete (pc + 4). */
#define OK_IN(priv, insn)             \
    do {                              \
        rvt_set_priv(priv);           \
        H->mcause = 0xbad;            \
        rvt_one(insn);                \
        EQ(H->pc, CODE + 4);          \
        EQ(H->mcause, 0xbad);         \
    } while (0)
/* Run insn at CODE in privilege `priv`; it must raise an illegal
 * instruction exception into M with mtval = the instruction bits. */
#define ILL_IN(priv, insn)                    \
    do {                                      \
        uint32_t i_ = (insn);                 \
        rvt_set_priv(priv);                   \
        rvt_one(i_);                          \
        MTRAP(EXC_ILLEGAL, CODE, i_);         \
    } while (0)
#define OK(insn) OK_IN(PRV_M, insn)
#define ILL(insn) ILL_IN(PRV_M, insn)

static void t_csr_ops(void)
{
    rvt_begin("csr-ops");
    H->mscratch = 0xf0;
    H->x[A1] = 0x0f;
    OK(CSRRW(A0, CSR_MSCRATCH, A1));
    EQ(H->x[A0], 0xf0);
    EQ(H->mscratch, 0x0f);
    H->x[A1] = 0x30;
    OK(CSRRS(A0, CSR_MSCRATCH, A1));
    EQ(H->x[A0], 0x0f);
    EQ(H->mscratch, 0x3f);
    H->x[A1] = 0x0c;
    OK(CSRRC(A0, CSR_MSCRATCH, A1));
    EQ(H->x[A0], 0x3f);
    EQ(H->mscratch, 0x33);
    OK(CSRRWI(A0, CSR_MSCRATCH, 31)); /* uimm is zero-extended */
    EQ(H->x[A0], 0x33);
    EQ(H->mscratch, 31);
    OK(CSRRCI(A0, CSR_MSCRATCH, 1));
    EQ(H->mscratch, 30);
    OK(CSRRSI(A0, CSR_MSCRATCH, 16 | 1));
    EQ(H->x[A0], 30);
    EQ(H->mscratch, 31);
    H->x[A1] = 0x1234;
    OK(CSRRW(X0, CSR_MSCRATCH, A1)); /* rd = x0 still writes */
    EQ(H->mscratch, 0x1234);
    EQ(H->x[0], 0);
    OK(CSRRS(A0, CSR_MSCRATCH, X0)); /* rs1 = x0: read only */
    EQ(H->x[A0], 0x1234);
    EQ(H->mscratch, 0x1234);

    /* read-only CSRs: reading forms are legal, any write is illegal */
    H->x[A0] = 0x55;
    OK(CSRRS(A0, CSR_MVENDORID, X0));
    EQ(H->x[A0], 0);
    OK(CSRRC(A0, CSR_MVENDORID, X0));
    OK(CSRRSI(A0, CSR_MHARTID, 0));
    EQ(H->x[A0], 0);
    OK(CSRRS(A0, CSR_CYCLE, X0));
    H->x[A1] = 0;
    ILL(CSRRW(X0, CSR_MVENDORID, A1));
    ILL(CSRRW(A0, CSR_CYCLE, A1));
    ILL(CSRRS(A0, CSR_CYCLE, A1)); /* rs1 != x0 is a write even if the value is 0 */
    ILL(CSRRSI(A0, CSR_MHARTID, 1));
    ILL(CSRRCI(A0, CSR_INSTRET, 1));
    ILL(CSRR(A0, 0x7c0)); /* doesn't exist */

    /* misa: RV64 with I M A F D C S U; writes ignored */
    uint64_t ext = 1u << ('I' - 'A') | 1u << ('M' - 'A') | 1u << ('A' - 'A') |
                   1u << ('F' - 'A') | 1u << ('D' - 'A') | 1u << ('C' - 'A') |
                   1u << ('S' - 'A') | 1u << ('U' - 'A');
    OK(CSRR(A0, CSR_MISA));
    EQ(H->x[A0] >> 62, 2);
    EQ(H->x[A0] & ext, ext);
    EQ(H->x[A0] & (1u << ('H' - 'A')), 0);
    OK(CSRW(CSR_MISA, X0));
    OK(CSRR(A1, CSR_MISA));
    EQ(H->x[A1], H->x[A0]);

    /* mstatus: UXL = SXL = 2 (64-bit), MPP is WARL (2 is not a mode) */
    OK(CSRR(A0, CSR_MSTATUS));
    EQ(H->x[A0] >> 32 & 0xf, 0xa);
    H->x[A1] = MPP_S;
    OK(CSRW(CSR_MSTATUS, A1));
    H->x[A1] = 2ull << 11;
    OK(CSRW(CSR_MSTATUS, A1));
    EQ(H->mstatus & MSTATUS_MPP, MPP_S);
    /* medeleg[11] (ecall from M) and mideleg's M bits are read-only 0 */
    H->x[A1] = ~0ull;
    OK(CSRW(CSR_MEDELEG, A1));
    EQ(H->medeleg >> EXC_ECALL_M & 1, 0);
    EQ(H->medeleg >> EXC_ILLEGAL & 1, 1);
    OK(CSRW(CSR_MIDELEG, A1));
    EQ(H->mideleg, MIP_SSIP | MIP_STIP | MIP_SEIP);
    H->x[A1] = 0x80001001;
    OK(CSRW(CSR_MEPC, A1)); /* bit 0 of mepc is always 0 */
    OK(CSRR(A0, CSR_MEPC));
    EQ(H->x[A0], 0x80001000);
}

static void t_privilege(void)
{
    rvt_begin("csr-privilege");
    ILL_IN(PRV_S, CSRR(A0, CSR_MSTATUS));
    ILL_IN(PRV_S, CSRR(A0, CSR_MSCRATCH));
    ILL_IN(PRV_S, CSRW(CSR_MSCRATCH, A1));
    ILL_IN(PRV_S, CSRR(A0, 0x600)); /* hstatus: no H extension */
    OK_IN(PRV_S, CSRR(A0, CSR_SSTATUS));
    OK_IN(PRV_S, CSRW(CSR_SSCRATCH, A1));
    ILL_IN(PRV_U, CSRR(A0, CSR_SSTATUS));
    ILL_IN(PRV_U, CSRR(A0, CSR_SSCRATCH));
    ILL_IN(PRV_U, CSRR(A0, CSR_MHARTID));
    H->mstatus |= FS_INITIAL;
    OK_IN(PRV_U, CSRR(A0, CSR_FCSR));
}

static void t_counters(void)
{
    rvt_begin("counters");
    H->mcounteren = H->scounteren = 0;
    ILL_IN(PRV_U, CSRR(A0, CSR_CYCLE));
    ILL_IN(PRV_U, CSRR(A0, CSR_INSTRET));
    ILL_IN(PRV_S, CSRR(A0, CSR_CYCLE));
    ILL_IN(PRV_S, CSRR(A0, CSR_TIME));
    OK_IN(PRV_M, CSRR(A0, CSR_CYCLE));
    H->mcounteren = 1; /* CY only */
    OK_IN(PRV_S, CSRR(A0, CSR_CYCLE));
    ILL_IN(PRV_U, CSRR(A0, CSR_CYCLE));
    ILL_IN(PRV_S, CSRR(A0, CSR_INSTRET));
    H->scounteren = 1;
    OK_IN(PRV_U, CSRR(A0, CSR_CYCLE));
    ILL_IN(PRV_U, CSRR(A0, CSR_INSTRET));
    H->mcounteren = H->scounteren = 7;
    H->instret = 1000;
    OK_IN(PRV_U, CSRR(A0, CSR_INSTRET)); /* the value before this instruction */
    EQ(H->x[A0], 1000);
    EQ(H->instret, 1001);
    OK_IN(PRV_U, CSRR(A0, CSR_TIME)); /* no CLINT: 0 */
    EQ(H->x[A0], 0);
    ILL_IN(PRV_S, CSRR(A0, 0xc03)); /* hpmcounter3 not enabled */
    H->mcounteren |= 8;
    OK_IN(PRV_S, CSRR(A0, 0xc03));

    /* a CSR write to minstret replaces that instruction's own increment */
    rvt_org(CODE);
    rvt_emit(CSRW(CSR_MINSTRET, A1));
    rvt_emit(CSRR(A0, CSR_MINSTRET));
    H->x[A1] = 100;
    rvt_set_priv(PRV_M);
    rvt_run_at(CODE, 2);
    EQ(H->x[A0], 100);

    /* mcountinhibit: a CY/IR bit may be hardwired to 0, but if it reads
     * back as 1 the counter must stop */
    rvt_begin("mcountinhibit");
    H->x[A1] = 5; /* CY | IR */
    rvt_org(CODE);
    rvt_emit(CSRW(0x320, A1));
    rvt_emit(CSRR(A2, 0x320));
    rvt_emit(CSRR(A3, CSR_MINSTRET));
    rvt_emit(CSRR(A4, CSR_MCYCLE));
    rvt_emit(NOP);
    rvt_emit(NOP);
    rvt_emit(CSRR(A5, CSR_MINSTRET));
    rvt_emit(CSRR(A6, CSR_MCYCLE));
    rvt_run_at(CODE, 8);
    if (H->x[A2] & 4)
        EQ(H->x[A5], H->x[A3]);
    else /* retired in between: the A3 read itself, the mcycle read, 2 nops */
        EQ(H->x[A5], H->x[A3] + 4);
    if (H->x[A2] & 1)
        EQ(H->x[A6], H->x[A4]);
    else
        CHECK(H->x[A6] > H->x[A4]);
}

static void t_status_views(void)
{
    rvt_begin("sstatus-sie-sip");
    rvt_set_priv(PRV_S);
    rvt_one(CSRRSI(X0, CSR_SSTATUS, 2)); /* SIE through sstatus */
    EQ(H->mstatus & MSTATUS_SIE, MSTATUS_SIE);
    H->x[A1] = ~0ull;
    rvt_one(CSRW(CSR_SSTATUS, A1));
    EQ(H->mstatus & (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM |
                     MSTATUS_TW | MSTATUS_TSR), 0);
    EQ(H->mstatus & (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SUM | MSTATUS_MXR),
       MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SUM | MSTATUS_MXR);
    rvt_set_mstatus(H->mstatus | MSTATUS_MIE | MSTATUS_MPIE | MPP_M | MSTATUS_TW);
    rvt_set_priv(PRV_S);
    rvt_one(CSRR(A0, CSR_SSTATUS));
    EQ(H->x[A0] & (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_TW), 0);
    EQ(H->x[A0] >> 32 & 3, 2); /* UXL */
    EQ(H->x[A0] & MSTATUS_SIE, MSTATUS_SIE);
    rvt_set_mstatus(H->mstatus & ~MSTATUS_SIE);
    rvt_one(CSRR(A0, CSR_SSTATUS));
    EQ(H->x[A0] & MSTATUS_SIE, 0);

    /* sie is mie masked by mideleg */
    rvt_begin("sie");
    H->mideleg = MIP_SSIP | MIP_STIP;
    H->mie = MIP_MTIP | MIP_STIP | MIP_SSIP | MIP_SEIP;
    rvt_set_priv(PRV_S);
    rvt_one(CSRR(A0, CSR_SIE));
    EQ(H->x[A0], MIP_STIP | MIP_SSIP);
    H->x[A1] = 0;
    rvt_one(CSRW(CSR_SIE, A1));
    EQ(H->mie, MIP_MTIP | MIP_SEIP);
    H->x[A1] = ~0ull;
    rvt_one(CSRW(CSR_SIE, A1));
    EQ(H->mie, MIP_MTIP | MIP_SEIP | MIP_STIP | MIP_SSIP);

    /* sip: only SSIP is writable, and only if delegated */
    rvt_begin("sip");
    H->mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
    rvt_set_priv(PRV_S);
    rvt_one(CSRRSI(X0, CSR_SIP, 2));
    EQ(H->mip_sw, MIP_SSIP);
    H->x[A1] = MIP_STIP | MIP_SEIP;
    rvt_one(CSRRS(X0, CSR_SIP, A1));
    EQ(H->mip_sw, MIP_SSIP);
    rv64_set_irq(H, MIP_SEIP, true);
    rv64_set_irq(H, MIP_MTIP, true);
    rvt_one(CSRR(A0, CSR_SIP));
    EQ(H->x[A0], MIP_SSIP | MIP_SEIP);
    H->mideleg = 0;
    rvt_one(CSRR(A0, CSR_SIP));
    EQ(H->x[A0], 0);
    rvt_one(CSRRCI(X0, CSR_SIP, 2));
    EQ(H->mip_sw, MIP_SSIP);

    /* mip from M: MSIP/MTIP/MEIP are read-only (driven by devices) */
    rvt_begin("mip");
    H->x[A1] = ~0ull;
    rvt_one(CSRW(CSR_MIP, A1));
    rvt_one(CSRR(A0, CSR_MIP));
    EQ(H->x[A0], MIP_SSIP | MIP_STIP | MIP_SEIP);
    H->slice_end = false;
    rv64_set_irq(H, MIP_MTIP, true);
    CHECK(H->slice_end); /* the hart re-checks interrupts */
    rvt_one(CSRR(A0, CSR_MIP));
    EQ(H->x[A0], MIP_SSIP | MIP_STIP | MIP_SEIP | MIP_MTIP);
    rv64_set_irq(H, MIP_MTIP, false);
    rvt_one(CSRR(A0, CSR_MIP));
    EQ(H->x[A0], MIP_SSIP | MIP_STIP | MIP_SEIP);

    /* Only the software-writable SEIP bit takes part in a csrrs/csrrc of
     * mip: the interrupt controller's SEIP must not get latched into it. */
    rvt_begin("mip-seip-rmw");
    rv64_set_irq(H, MIP_SEIP, true);
    rvt_one(CSRRSI(X0, CSR_MIP, 2)); /* set SSIP */
    rv64_set_irq(H, MIP_SEIP, false);
    rvt_one(CSRR(A0, CSR_MIP));
    EQ(H->x[A0], MIP_SSIP);
    H->mip_sw = 0;
    rv64_set_irq(H, MIP_SEIP, true);
    H->x[A1] = MIP_STIP;
    rvt_one(CSRRC(X0, CSR_MIP, A1));
    rv64_set_irq(H, MIP_SEIP, false);
    rvt_one(CSRR(A0, CSR_MIP));
    EQ(H->x[A0], 0);
}

static void t_fp_state(void)
{
    rvt_begin("fs");
    H->x[A1] = DATA;
    /* FS = Off: every FP instruction and FP CSR is illegal */
    ILL(FLW(1, A1, 0));
    ILL(FSD(1, A1, 0));
    ILL(FADD_S(1, 2, 3));
    ILL(FMV_X_W(A0, 1));
    ILL(FMV_W_X(1, A0));
    ILL(CSRR(A0, CSR_FCSR));
    ILL(CSRR(A0, CSR_FRM));
    ILL(CSRRWI(X0, CSR_FFLAGS, 1));
    rvt_one16(C_FLD(10, A1, 0));
    MTRAP(EXC_ILLEGAL, CODE, C_FLD(10, A1, 0));

    /* FS = Initial: an FP register write makes it Dirty, SD reads as 1 */
    H->mstatus |= FS_INITIAL;
    OK(CSRR(A0, CSR_MSTATUS));
    EQ(H->x[A0] >> 63, 0);
    OK(FLW(1, A1, 0));
    EQ(H->mstatus & MSTATUS_FS, FS_DIRTY);
    OK(CSRR(A0, CSR_MSTATUS));
    EQ(H->x[A0] >> 63, 1);
    OK_IN(PRV_S, CSRR(A0, CSR_SSTATUS));
    EQ(H->x[A0] >> 63, 1);
    EQ(H->x[A0] & MSTATUS_FS, FS_DIRTY);
    H->mstatus = (H->mstatus & ~MSTATUS_FS) | FS_CLEAN;
    OK(FMV_W_X(2, A1));
    EQ(H->mstatus & MSTATUS_FS, FS_DIRTY);
    H->mstatus = (H->mstatus & ~MSTATUS_FS) | FS_INITIAL;
    OK(CSRRWI(X0, CSR_FFLAGS, 1));
    EQ(H->mstatus & MSTATUS_FS, FS_DIRTY);
    /* FS written through sstatus */
    H->x[A1] = 0;
    OK_IN(PRV_S, CSRW(CSR_SSTATUS, A1));
    EQ(H->mstatus & MSTATUS_FS, FS_OFF);
    ILL_IN(PRV_S, FLD(1, A1, 0));

    /* fcsr = frm << 5 | fflags */
    rvt_begin("fcsr");
    H->mstatus |= FS_DIRTY;
    H->x[A1] = 0xff;
    OK(CSRW(CSR_FCSR, A1));
    OK(CSRR(A0, CSR_FRM));
    EQ(H->x[A0], 7);
    OK(CSRR(A0, CSR_FFLAGS));
    EQ(H->x[A0], 0x1f);
    OK(CSRRWI(X0, CSR_FRM, 2));
    OK(CSRR(A0, CSR_FCSR));
    EQ(H->x[A0], 0x5f);
    OK(CSRRWI(X0, CSR_FFLAGS, 0));
    OK(CSRR(A0, CSR_FCSR));
    EQ(H->x[A0], 0x40);
    OK(CSRRSI(A0, CSR_FFLAGS, 4));
    EQ(H->x[A0], 0);
    OK(CSRR(A0, CSR_FFLAGS));
    EQ(H->x[A0], 4);
    H->x[A1] = 0x1ff;
    OK(CSRW(CSR_FCSR, A1)); /* bits above 7 are reserved: read 0 */
    OK(CSRR(A0, CSR_FCSR));
    EQ(H->x[A0], 0xff);
    /* dynamic rounding with a reserved frm is illegal, valid frm is fine */
    H->x[A1] = 5;
    OK(CSRW(CSR_FRM, A1));
    ILL(enc_r(0x53, 7, 0x00, 1, 2, 3)); /* fadd.s f1, f2, f3, dyn */
    OK(CSRW(CSR_FRM, X0));
    OK(enc_r(0x53, 7, 0x00, 1, 2, 3));
}

static void t_satp(void)
{
    rvt_begin("satp");
    H->x[A1] = 10ull << 60 | 0x80123; /* Sv57: not supported, no effect */
    OK(CSRW(CSR_SATP, A1));
    EQ(H->satp, 0);
    H->x[A1] = 8ull << 60 | 0x80123;
    OK(CSRW(CSR_SATP, A1));
    EQ(H->satp >> 60, 8);
    EQ(H->satp & ((1ull << 44) - 1), 0x80123);
    H->x[A1] = 9ull << 60 | 0x80456;
    OK(CSRW(CSR_SATP, A1));
    EQ(H->satp >> 60, 9);
    EQ(H->satp & ((1ull << 44) - 1), 0x80456);
    H->x[A1] = 10ull << 60 | 0x80789;
    OK(CSRW(CSR_SATP, A1));
    EQ(H->satp >> 60, 9);
    EQ(H->satp & ((1ull << 44) - 1), 0x80456);
    OK(CSRW(CSR_SATP, X0));
    EQ(H->satp, 0);
    /* TVM traps satp and sfence.vma in S-mode */
    OK_IN(PRV_S, CSRR(A0, CSR_SATP));
    OK_IN(PRV_S, SFENCE_VMA(X0, X0));
    H->mstatus |= MSTATUS_TVM;
    ILL_IN(PRV_S, CSRR(A0, CSR_SATP));
    ILL_IN(PRV_S, CSRW(CSR_SATP, X0));
    ILL_IN(PRV_S, SFENCE_VMA(X0, X0));
    OK_IN(PRV_M, CSRR(A0, CSR_SATP));
    ILL_IN(PRV_U, SFENCE_VMA(X0, X0));
}

static void t_traps(void)
{
    rvt_begin("ecall");
    static const unsigned privs[3] = { PRV_U, PRV_S, PRV_M };
    static const uint64_t causes[3] = { EXC_ECALL_U, EXC_ECALL_S, EXC_ECALL_M };
    for (int i = 0; i < 3; i++) {
        rvt_set_mstatus(H->mstatus | MSTATUS_MIE);
        rvt_set_priv(privs[i]);
        rvt_one(ECALL);
        MTRAP(causes[i], CODE, 0);
        EQ((H->mstatus & MSTATUS_MPP) >> 11, privs[i]);
        EQ(H->mstatus & (MSTATUS_MIE | MSTATUS_MPIE), MSTATUS_MPIE);
    }
    /* vectored mtvec: exceptions still go to the base */
    H->mtvec = MTVEC_ADDR | 1;
    rvt_one(ECALL);
    EQ(H->pc, MTVEC_ADDR);

    rvt_begin("mret");
    rvt_set_mstatus((H->mstatus & ~MSTATUS_MPP) | MPP_S | MSTATUS_MPIE);
    H->mepc = CODE + 0x100;
    OK_IN(PRV_M, NOP); /* sanity */
    rvt_one(MRET);
    EQ(H->priv, PRV_S);
    EQ(H->pc, CODE + 0x100);
    EQ(H->mstatus & (MSTATUS_MIE | MSTATUS_MPIE), MSTATUS_MIE | MSTATUS_MPIE);
    EQ(H->mstatus & MSTATUS_MPP, 0); /* U, the least privileged mode */
    /* to U, MPRV cleared, MPIE = 0 gives MIE = 0 */
    rvt_set_priv(PRV_M);
    rvt_set_mstatus((H->mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE)) | MSTATUS_MPRV | MSTATUS_MIE);
    rvt_one(MRET);
    EQ(H->priv, PRV_U);
    EQ(H->mstatus & (MSTATUS_MPRV | MSTATUS_MIE), 0);
    /* to M keeps MPRV */
    rvt_set_priv(PRV_M);
    rvt_set_mstatus(H->mstatus | MPP_M | MSTATUS_MPRV);
    rvt_one(MRET);
    EQ(H->priv, PRV_M);
    EQ(H->mstatus & MSTATUS_MPRV, MSTATUS_MPRV);
    ILL_IN(PRV_S, MRET);
    ILL_IN(PRV_U, MRET);

    rvt_begin("sret");
    rvt_set_mstatus((H->mstatus & ~(MSTATUS_SPP | MSTATUS_SIE)) | MSTATUS_SPIE);
    H->sepc = CODE + 0x200;
    rvt_set_priv(PRV_S);
    rvt_one(SRET);
    EQ(H->priv, PRV_U);
    EQ(H->pc, CODE + 0x200);
    EQ(H->mstatus & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP), MSTATUS_SIE | MSTATUS_SPIE);
    rvt_set_mstatus((H->mstatus & ~MSTATUS_SPIE) | MSTATUS_SPP);
    rvt_set_priv(PRV_S);
    rvt_one(SRET);
    EQ(H->priv, PRV_S);
    EQ(H->mstatus & (MSTATUS_SIE | MSTATUS_SPP), 0);
    rvt_set_mstatus(H->mstatus | MSTATUS_SPP); /* allowed in M */
    rvt_set_priv(PRV_M);
    rvt_one(SRET);
    EQ(H->priv, PRV_S);
    ILL_IN(PRV_U, SRET);
    rvt_set_mstatus(H->mstatus | MSTATUS_TSR);
    ILL_IN(PRV_S, SRET);

    rvt_begin("wfi");
    ILL_IN(PRV_U, WFI);
    rvt_set_mstatus(H->mstatus | MSTATUS_TW);
    ILL_IN(PRV_S, WFI);
    OK_IN(PRV_M, WFI); /* TW doesn't apply to M */
    rvt_set_mstatus(H->mstatus & ~MSTATUS_TW);
    OK_IN(PRV_S, WFI);
    CHECK(H->wfi);
    H->wfi = false;
    H->mie = MIP_SSIP;
    H->mip_sw = MIP_SSIP; /* an enabled interrupt pending: don't sleep */
    OK_IN(PRV_M, WFI);
    CHECK(!H->wfi);

    rvt_begin("medeleg");
    H->medeleg = 1u << EXC_ILLEGAL | 1u << EXC_ECALL_S;
    rvt_set_mstatus(H->mstatus | MSTATUS_SIE);
    H->mcause = H->mepc = H->mtval = 0xbad;
    rvt_set_priv(PRV_U);
    rvt_one(CSRR(A0, CSR_MSTATUS));
    EQ(H->scause, EXC_ILLEGAL);
    EQ(H->sepc, CODE);
    EQ(H->stval, CSRR(A0, CSR_MSTATUS));
    EQ(H->priv, PRV_S);
    EQ(H->pc, STVEC_ADDR);
    EQ(H->mstatus & (MSTATUS_SPP | MSTATUS_SIE | MSTATUS_SPIE), MSTATUS_SPIE);
    EQ(H->mcause, 0xbad);
    EQ(H->mepc, 0xbad);
    EQ(H->mtval, 0xbad);
    H->stvec = STVEC_ADDR | 1; /* vectored: exceptions still go to the base */
    rvt_one(ECALL); /* from S, delegated */
    EQ(H->scause, EXC_ECALL_S);
    EQ(H->sepc, CODE);
    EQ(H->priv, PRV_S);
    EQ(H->pc, STVEC_ADDR);
    EQ(H->mstatus & MSTATUS_SPP, MSTATUS_SPP);
    EQ(H->mcause, 0xbad);
    ILL_IN(PRV_M, CSRR(A0, 0x7c0)); /* traps taken in M are never delegated */
}

static void t_interrupts(void)
{
    rvt_begin("irq-m");
    H->mie = MIP_MTIP;
    rv64_set_irq(H, MIP_MTIP, true);
    EQ(rv64_pending_irq(H), -1); /* M-mode, MIE = 0 */
    rvt_set_mstatus(H->mstatus | MSTATUS_MIE);
    EQ(rv64_pending_irq(H), IRQ_MTI);
    H->pc = CODE + 0x40;
    rv64_take_irq(H, IRQ_MTI);
    MTRAP(IRQ(IRQ_MTI), CODE + 0x40, 0);
    EQ(H->mstatus & (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP), MSTATUS_MPIE | MPP_M);
    rvt_set_mstatus(H->mstatus & ~MSTATUS_MIE);
    rvt_set_priv(PRV_S);
    EQ(rv64_pending_irq(H), IRQ_MTI); /* lower privilege: MIE doesn't matter */
    rvt_set_priv(PRV_U);
    EQ(rv64_pending_irq(H), IRQ_MTI);
    H->mie = 0;
    EQ(rv64_pending_irq(H), -1);
    /* vectored: interrupts go to base + 4 * cause */
    H->mie = MIP_MTIP;
    H->mtvec = MTVEC_ADDR | 1;
    rv64_take_irq(H, IRQ_MTI);
    EQ(H->pc, MTVEC_ADDR + 4 * IRQ_MTI);
    EQ(H->mcause, IRQ(IRQ_MTI));

    rvt_begin("irq-s");
    H->mideleg = MIP_STIP;
    H->mie = MIP_STIP;
    H->x[A1] = MIP_STIP;
    rvt_one(CSRW(CSR_MIP, A1)); /* M software raises STIP */
    rvt_set_mstatus(H->mstatus | MSTATUS_MIE | MSTATUS_SIE);
    EQ(rv64_pending_irq(H), -1); /* delegated: never taken in M */
    rvt_set_mstatus(H->mstatus & ~MSTATUS_SIE);
    rvt_set_priv(PRV_S);
    EQ(rv64_pending_irq(H), -1); /* S with SIE = 0 */
    rvt_set_mstatus(H->mstatus | MSTATUS_SIE);
    EQ(rv64_pending_irq(H), IRQ_STI);
    H->pc = CODE + 0x80;
    H->mcause = 0xbad;
    rv64_take_irq(H, IRQ_STI);
    EQ(H->scause, IRQ(IRQ_STI));
    EQ(H->sepc, CODE + 0x80);
    EQ(H->priv, PRV_S);
    EQ(H->pc, STVEC_ADDR);
    EQ(H->mstatus & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP), MSTATUS_SPIE | MSTATUS_SPP);
    EQ(H->mcause, 0xbad);
    rvt_set_priv(PRV_U); /* SIE = 0 now, but U always takes S interrupts */
    EQ(rv64_pending_irq(H), IRQ_STI);
    H->stvec = STVEC_ADDR | 1;
    rv64_take_irq(H, IRQ_STI);
    EQ(H->pc, STVEC_ADDR + 4 * IRQ_STI);
    EQ(H->mstatus & MSTATUS_SPP, 0);
    /* an M interrupt wins over a delegated one */
    rvt_set_mstatus(H->mstatus | MSTATUS_SIE);
    H->mie |= MIP_MTIP;
    rv64_set_irq(H, MIP_MTIP, true);
    EQ(rv64_pending_irq(H), IRQ_MTI);

    rvt_begin("irq-priority");
    rvt_set_priv(PRV_U);
    H->mie = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;
    H->mip_sw = MIP_SSIP | MIP_STIP | MIP_SEIP;
    rv64_set_irq(H, MIP_MSIP, true);
    rv64_set_irq(H, MIP_MTIP, true);
    rv64_set_irq(H, MIP_MEIP, true);
    static const int order[] = { IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI };
    char buf[64];
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof(buf), "priority step %d", i);
        EQN(buf, rv64_pending_irq(H), order[i]);
        rv64_set_irq(H, 1ull << order[i], false);
        H->mip_sw &= ~(1ull << order[i]);
    }
    EQ(rv64_pending_irq(H), -1);
    /* the same order when all are delegated and taken in U */
    H->mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
    H->mip_sw = MIP_SSIP | MIP_STIP | MIP_SEIP;
    EQ(rv64_pending_irq(H), IRQ_SEI);
    H->mip_sw = MIP_SSIP | MIP_STIP;
    EQ(rv64_pending_irq(H), IRQ_SSI);
}

int main(void)
{
    rvt_init();
    t_csr_ops();
    t_privilege();
    t_counters();
    t_status_views();
    t_fp_state();
    t_satp();
    t_traps();
    t_interrupts();
    return rvt_done("test_rv64_csr");
}
