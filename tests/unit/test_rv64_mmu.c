/* rv64 engine: Sv39/Sv48 translation, permissions, A/D updates, the
 * software TLB (sfence.vma, SUM/MXR changes), MPRV, access faults, MMIO.
 *
 * Page tables are built in RAM with rvt_map().  The code page CODE is
 * identity-mapped (supervisor R+X), so rvt_one() works in S-mode; every
 * exception goes to M (no delegation) and is checked with MTRAP. */
#include "rv64_harness.h"

#define RWAD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define VA_DATA 0x20000000ull /* physically nothing there */
#define VA_HIGH 0xffffffffc0001000ull /* canonical in Sv39 and Sv48 */

static const char *mode_name(int levels) { return levels == 3 ? "Sv39" : "Sv48"; }

/* New page table with the code page mapped; S-mode, satp set. */
static uint64_t paging(int levels)
{
    uint64_t root = rvt_pt_alloc();
    rvt_map(root, levels, CODE, CODE, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_set_satp(rvt_satp(levels == 3 ? SATP_SV39 : SATP_SV48, root));
    rvt_set_priv(PRV_S);
    return root;
}

/* Load/store one doubleword at va in the current mode.  They return the
 * trap cause, or -1 if the instruction completed. */
static int64_t ld(uint64_t va, uint64_t *val)
{
    unsigned priv = H->priv;
    H->x[A1] = va;
    H->x[A0] = 0x5a5a5a5a;
    H->mcause = 0xbad;
    rvt_one(LD(A0, A1, 0));
    if (val)
        *val = H->x[A0];
    if (H->pc == CODE + 4)
        return -1;
    rvt_set_priv(priv); /* back to where we were for the next access */
    return (int64_t)H->mcause;
}
static int64_t sd(uint64_t va, uint64_t val)
{
    unsigned priv = H->priv;
    H->x[A1] = va;
    H->x[A2] = val;
    H->mcause = 0xbad;
    rvt_one(SD(A2, A1, 0));
    if (H->pc == CODE + 4)
        return -1;
    rvt_set_priv(priv);
    return (int64_t)H->mcause;
}
/* Jump to va from CODE and try to execute there.  Returns the cause of
 * the fetch fault, or -1 if the instruction at va ran. */
static int64_t exec_at(uint64_t va)
{
    unsigned priv = H->priv;
    H->x[T0] = va;
    rvt_w32(CODE, JALR(X0, T0, 0));
    H->mcause = 0xbad;
    rvt_run_at(CODE, 2);
    int64_t r = H->priv == PRV_M && priv != PRV_M ? (int64_t)H->mcause : -1;
    rvt_set_priv(priv);
    return r;
}

static void t_basic(int levels)
{
    char name[64];
    snprintf(name, sizeof(name), "basic-%s", mode_name(levels));
    rvt_begin(name);
    uint64_t root = paging(levels), v;
    rvt_map(root, levels, VA_DATA, DATA, 0, RWAD);
    rvt_map(root, levels, VA_HIGH, DATA + 0x1000, 0, RWAD);
    rvt_w64(DATA + 8, 0x1122334455667788ull);
    EQ(ld(VA_DATA + 8, &v), -1);
    EQ(v, 0x1122334455667788ull);
    EQ(sd(VA_DATA + 0x10, 0xabcdef), -1);
    EQ(rvt_r64(DATA + 0x10), 0xabcdef);
    EQ(H->priv, PRV_S);
    EQ(sd(VA_HIGH + 0x20, 42), -1);
    EQ(rvt_r64(DATA + 0x1020), 42);
    EQ(ld(VA_DATA + 0x1000, NULL), EXC_LOAD_PAGE); /* not mapped */
    EQ(H->mtval, VA_DATA + 0x1000);
    EQ(H->mepc, CODE);

    /* non-canonical addresses */
    if (levels == 3) {
        EQ(ld(0x0000008000000000ull, NULL), EXC_LOAD_PAGE); /* bit 39 without sign extension */
        EQ(H->mtval, 0x0000008000000000ull);
        EQ(sd(0x0000004000000000ull, 1), EXC_STORE_PAGE); /* bit 38 set, 63..39 clear */
        EQ(ld(0xffffff8000000000ull, NULL), EXC_LOAD_PAGE);  /* bit 38 clear, upper set */
        /* canonical alias of VA_DATA with upper bits flipped only above 39 */
        EQ(ld(VA_DATA | 1ull << 50, NULL), EXC_LOAD_PAGE);
    } else {
        rvt_map(root, levels, 0x0000008000000000ull, DATA, 0, RWAD);
        EQ(ld(0x0000008000000008ull, &v), -1); /* bit 39 is fine in Sv48 */
        EQ(v, 0x1122334455667788ull);
        EQ(ld(0x0000800000000000ull, NULL), EXC_LOAD_PAGE);
        EQ(H->mtval, 0x0000800000000000ull);
        EQ(sd(0xffff000000000000ull, 1), EXC_STORE_PAGE);
    }
}

static void t_superpages(int levels)
{
    char name[64];
    snprintf(name, sizeof(name), "superpages-%s", mode_name(levels));
    rvt_begin(name);
    uint64_t root = paging(levels), v;
    rvt_w64(RAM_BASE + 0x323458, 0x2222);
    rvt_w64(DATA + 8, 0x1111);
    /* 2 MiB */
    uint64_t mp = rvt_map(root, levels, 0x40000000, RAM_BASE + 0x200000, 1, PTE_V | PTE_R | PTE_W);
    EQ(ld(0x40123458, &v), -1);
    EQ(v, 0x2222);
    EQ(sd(0x401ffff8, 7), -1);
    EQ(rvt_r64(RAM_BASE + 0x3ffff8), 7);
    EQ(rvt_r64(mp) & (PTE_A | PTE_D), PTE_A | PTE_D);
    /* 1 GiB */
    rvt_map(root, levels, 0xc0000000, RAM_BASE, 2, RWAD);
    EQ(ld(0xc0010008, &v), -1);
    EQ(v, 0x1111);
    /* misaligned superpages: page fault */
    rvt_map(root, levels, 0x40200000, RAM_BASE + 0x201000, 1, RWAD);
    EQ(ld(0x40200000, NULL), EXC_LOAD_PAGE);
    EQ(H->mtval, 0x40200000);
    EQ(sd(0x40200010, 1), EXC_STORE_PAGE);
    rvt_map(root, levels, 0x100000000ull, RAM_BASE + 0x200000, 2, RWAD);
    EQ(ld(0x100000000ull, NULL), EXC_LOAD_PAGE);
    if (levels == 4) {
        /* 512 GiB page at the top level */
        rvt_map(root, levels, 0x0000008000000000ull, 0, 3, RWAD);
        EQ(ld(0x0000008000000000ull + DATA + 8, &v), -1);
        EQ(v, 0x1111);
        rvt_map(root, levels, 0x0000010000000000ull, RAM_BASE, 3, RWAD);
        EQ(ld(0x0000010000000000ull + 8, NULL), EXC_LOAD_PAGE);
    }
}

static void t_pte_checks(void)
{
    rvt_begin("pte-checks");
    uint64_t root = paging(3);
    rvt_map(root, 3, VA_DATA, DATA, 0, PTE_R | PTE_W | PTE_A | PTE_D); /* V = 0 */
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    EQ(H->mtval, VA_DATA);
    EQ(sd(VA_DATA, 1), EXC_STORE_PAGE);
    EQ(H->mtval, VA_DATA);
    rvt_map(root, 3, VA_DATA, DATA, 0, PTE_V | PTE_W | PTE_A | PTE_D); /* W without R */
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    EQ(sd(VA_DATA, 1), EXC_STORE_PAGE);
    rvt_map(root, 3, VA_DATA, DATA, 0, PTE_V | PTE_W | PTE_X | PTE_A | PTE_D);
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    rvt_map(root, 3, VA_DATA, DATA, 0, RWAD | 1ull << 54); /* reserved bit */
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    rvt_map(root, 3, VA_DATA, DATA, 0, RWAD | 1ull << 61); /* PBMT without Svpbmt */
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    rvt_map(root, 3, VA_DATA, DATA, 0, PTE_V); /* pointer at the last level */
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    EQ(rvt_r64(DATA), 0);
}

static void t_permissions(void)
{
    rvt_begin("permissions");
    uint64_t root = paging(3), v;
    const uint64_t va_rw = VA_DATA, va_ro = VA_DATA + 0x1000, va_xo = VA_DATA + 0x2000,
                   va_nx = VA_DATA + 0x3000, va_u = VA_DATA + 0x4000,
                   va_ux = VA_DATA + 0x5000, va_ucode = VA_DATA + 0x6000;
    rvt_map(root, 3, va_rw, DATA, 0, RWAD);
    rvt_map(root, 3, va_ro, DATA + 0x1000, 0, PTE_V | PTE_R | PTE_A);
    rvt_map(root, 3, va_xo, DATA + 0x2000, 0, PTE_V | PTE_X | PTE_A);
    rvt_map(root, 3, va_nx, CODE + 0x1000, 0, RWAD);
    rvt_map(root, 3, va_u, DATA + 0x4000, 0, RWAD | PTE_U);
    rvt_map(root, 3, va_ux, CODE + 0x2000, 0, PTE_V | PTE_R | PTE_X | PTE_A | PTE_U);
    rvt_map(root, 3, va_ucode, CODE + 0x3000, 0, PTE_V | PTE_R | PTE_X | PTE_A | PTE_U);
    rvt_w64(DATA + 0x1000, 0x1000);
    rvt_w64(DATA + 0x2000, 0x2000);
    rvt_w64(DATA + 0x4000, 0x4000);
    rvt_w32(CODE + 0x1000, NOP);
    rvt_w32(CODE + 0x2000, NOP);

    /* store to a read-only page */
    EQ(sd(va_ro, 5), EXC_STORE_PAGE);
    EQ(H->mtval, va_ro);
    EQ(rvt_r64(DATA + 0x1000), 0x1000);
    EQ(ld(va_ro, &v), -1);
    EQ(v, 0x1000);
    /* fetch from a non-executable page */
    EQ(exec_at(va_nx), EXC_INSN_PAGE);
    EQ(H->mepc, va_nx);
    EQ(H->mtval, va_nx);

    /* load from an execute-only page; MXR makes it readable */
    EQ(ld(va_xo, NULL), EXC_LOAD_PAGE);
    EQ(H->mtval, va_xo);
    H->x[A3] = MSTATUS_MXR;
    rvt_one(CSRRS(X0, CSR_SSTATUS, A3));
    EQ(H->mstatus & MSTATUS_MXR, MSTATUS_MXR);
    EQ(ld(va_xo, &v), -1);
    EQ(v, 0x2000);
    EQ(sd(va_xo, 1), EXC_STORE_PAGE); /* MXR is about loads only */
    rvt_one(CSRRC(X0, CSR_SSTATUS, A3));
    EQ(ld(va_xo, NULL), EXC_LOAD_PAGE); /* the TLB doesn't keep the MXR view */

    /* U pages from S: only with SUM, never for fetch */
    EQ(ld(va_u, NULL), EXC_LOAD_PAGE);
    EQ(sd(va_u, 1), EXC_STORE_PAGE);
    H->x[A3] = MSTATUS_SUM;
    rvt_one(CSRRS(X0, CSR_SSTATUS, A3));
    EQ(ld(va_u, &v), -1);
    EQ(v, 0x4000);
    EQ(sd(va_u + 8, 9), -1);
    EQ(rvt_r64(DATA + 0x4008), 9);
    EQ(exec_at(va_ux), EXC_INSN_PAGE);
    EQ(H->mtval, va_ux);
    rvt_one(CSRRC(X0, CSR_SSTATUS, A3));
    EQ(ld(va_u, NULL), EXC_LOAD_PAGE); /* SUM cleared: the TLB doesn't leak */
    EQ(sd(va_u, 1), EXC_STORE_PAGE);

    /* S pages from U */
    rvt_w32(CODE + 0x3000, LD(A0, A1, 0));
    H->x[A1] = va_u;
    rvt_set_priv(PRV_U);
    rvt_run_at(va_ucode, 1);
    EQ(H->x[A0], 0x4000);
    EQ(H->pc, va_ucode + 4);
    H->x[A1] = va_rw;
    rvt_run_at(va_ucode, 1);
    MTRAP(EXC_LOAD_PAGE, va_ucode, va_rw);
    rvt_set_priv(PRV_U);
    rvt_w32(CODE + 0x3000, SD(A0, A1, 0));
    rvt_run_at(va_ucode, 1);
    MTRAP(EXC_STORE_PAGE, va_ucode, va_rw);
    rvt_set_priv(PRV_U);
    rvt_run_at(CODE, 1); /* supervisor code page */
    MTRAP(EXC_INSN_PAGE, CODE, CODE);
    /* SUM has no effect on U-mode */
    rvt_set_mstatus(H->mstatus | MSTATUS_SUM);
    rvt_set_priv(PRV_U);
    rvt_w32(CODE + 0x3000, LD(A0, A1, 0));
    rvt_run_at(va_ucode, 1);
    MTRAP(EXC_LOAD_PAGE, va_ucode, va_rw);
}

static void t_ad_bits(void)
{
    rvt_begin("a-d-bits");
    uint64_t root = paging(3);
    uint64_t p1 = rvt_map(root, 3, VA_DATA, DATA, 0, PTE_V | PTE_R | PTE_W);
    uint64_t p2 = rvt_map(root, 3, VA_DATA + 0x1000, DATA + 0x1000, 0, PTE_V | PTE_R | PTE_W);
    uint64_t p3 = rvt_map(root, 3, VA_DATA + 0x2000, CODE + 0x1000, 0, PTE_V | PTE_R | PTE_X);
    rvt_w32(CODE + 0x1000, NOP);
    EQ(ld(VA_DATA, NULL), -1);
    EQ(rvt_r64(p1) & (PTE_A | PTE_D), PTE_A);
    EQ(ld(VA_DATA + 8, NULL), -1);
    EQ(rvt_r64(p1) & (PTE_A | PTE_D), PTE_A);
    /* the page is in the load TLB now; a store must still set D */
    EQ(sd(VA_DATA + 8, 3), -1);
    EQ(rvt_r64(p1) & (PTE_A | PTE_D), PTE_A | PTE_D);
    /* first access a store: both */
    EQ(sd(VA_DATA + 0x1000, 3), -1);
    EQ(rvt_r64(p2) & (PTE_A | PTE_D), PTE_A | PTE_D);
    /* fetch sets A */
    EQ(exec_at(VA_DATA + 0x2000), -1);
    EQ(rvt_r64(p3) & (PTE_A | PTE_D), PTE_A);
    /* software clears D and flushes: the next store sets it again */
    rvt_w64(p1, rvt_r64(p1) & ~PTE_D);
    rvt_one(SFENCE_VMA(X0, X0));
    EQ(ld(VA_DATA, NULL), -1);
    EQ(rvt_r64(p1) & PTE_D, 0);
    EQ(sd(VA_DATA, 4), -1);
    EQ(rvt_r64(p1) & PTE_D, PTE_D);
    /* a faulting access doesn't set A */
    uint64_t p4 = rvt_map(root, 3, VA_DATA + 0x3000, DATA + 0x3000, 0, PTE_V | PTE_R);
    EQ(sd(VA_DATA + 0x3000, 1), EXC_STORE_PAGE);
    EQ(rvt_r64(p4) & (PTE_A | PTE_D), 0);
}

static void t_sfence(void)
{
    rvt_begin("sfence");
    uint64_t root = paging(3), v;
    uint64_t pte = rvt_map(root, 3, VA_DATA, DATA, 0, RWAD);
    rvt_w64(DATA, 1);
    rvt_w64(DATA + 0x1000, 2);
    rvt_w64(DATA + 0x2000, 3);
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 1);
    EQ(sd(VA_DATA + 8, 1), -1); /* store TLB filled too */
    rvt_w64(pte, ((DATA + 0x1000) >> 12) << 10 | RWAD);
    rvt_one(SFENCE_VMA(X0, X0));
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 2);
    EQ(sd(VA_DATA + 8, 5), -1);
    EQ(rvt_r64(DATA + 0x1008), 5);
    /* address-specific form */
    rvt_w64(pte, ((DATA + 0x2000) >> 12) << 10 | RWAD);
    H->x[A4] = VA_DATA;
    rvt_one(SFENCE_VMA(A4, X0));
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 3);
    /* invalidated PTE */
    rvt_w64(pte, 0);
    rvt_one(SFENCE_VMA(X0, X0));
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    EQ(sd(VA_DATA, 1), EXC_STORE_PAGE);
    /* a satp write switches tables (and drops the old translations) */
    rvt_w64(pte, ((DATA + 0x1000) >> 12) << 10 | RWAD);
    rvt_one(SFENCE_VMA(X0, X0));
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 2);
    EQ(sd(VA_DATA + 0x10, 2), -1);
    uint64_t root2 = rvt_pt_alloc();
    rvt_map(root2, 3, CODE, CODE, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(root2, 3, VA_DATA, DATA, 0, RWAD);
    H->x[A4] = rvt_satp(SATP_SV39, root2);
    rvt_one(CSRW(CSR_SATP, A4));
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 1);
    EQ(sd(VA_DATA + 0x10, 7), -1);
    EQ(rvt_r64(DATA + 0x10), 7);
    EQ(rvt_r64(DATA + 0x1010), 2);
}

/* M-mode with MPRV = 1 and the given MPP, written with csrw mstatus (a
 * trap into M rewrites MPP, so do it before every access). */
static void mprv(unsigned mpp, bool sum)
{
    uint64_t s = H->mstatus & ~(MSTATUS_MPP | MSTATUS_SUM);
    s |= MSTATUS_MPRV | (uint64_t)mpp << 11 | (sum ? MSTATUS_SUM : 0);
    rvt_set_priv(PRV_M);
    H->x[T1] = s;
    rvt_one(CSRW(CSR_MSTATUS, T1));
    EQ(H->mstatus & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM),
       MSTATUS_MPRV | (uint64_t)mpp << 11 | (sum ? MSTATUS_SUM : 0));
    rvt_one(SFENCE_VMA(X0, X0)); /* next fetches miss the TLB */
}

static void t_mprv(void)
{
    rvt_begin("mprv");
    /* no mapping for the code: M-mode fetches must stay untranslated */
    uint64_t root = rvt_pt_alloc(), v;
    rvt_set_satp(rvt_satp(SATP_SV39, root));
    rvt_map(root, 3, VA_DATA, DATA, 0, RWAD);
    rvt_map(root, 3, VA_DATA + 0x1000, DATA + 0x1000, 0, RWAD | PTE_U);
    rvt_w64(DATA, 0x5555);
    rvt_w64(DATA + 0x1000, 0x6666);
    rvt_set_priv(PRV_M);
    /* MPRV = 0: M is untranslated */
    EQ(ld(DATA, &v), -1);
    EQ(v, 0x5555);
    EQ(ld(VA_DATA, NULL), EXC_LOAD_ACCESS);
    /* MPRV with MPP = S: loads and stores translate, fetches don't (the
     * code runs from physical CODE) */
    mprv(PRV_S, false);
    EQ(ld(VA_DATA, &v), -1);
    EQ(v, 0x5555);
    EQ(sd(VA_DATA + 8, 0x77), -1);
    EQ(rvt_r64(DATA + 8), 0x77);
    EQ(H->priv, PRV_M);
    EQ(ld(VA_DATA + 0x1000, NULL), EXC_LOAD_PAGE); /* U page, SUM = 0 */
    EQ(H->mtval, VA_DATA + 0x1000);
    mprv(PRV_S, true);
    EQ(ld(VA_DATA + 0x1000, &v), -1);
    EQ(v, 0x6666);
    /* MPP = U: only U pages */
    mprv(PRV_U, false);
    EQ(ld(VA_DATA + 0x1000, &v), -1);
    EQ(v, 0x6666);
    EQ(ld(VA_DATA, NULL), EXC_LOAD_PAGE);
    mprv(PRV_U, false);
    EQ(sd(VA_DATA, 1), EXC_STORE_PAGE);
    /* MPP = M: untranslated again */
    mprv(PRV_M, false);
    EQ(ld(DATA, &v), -1);
    EQ(v, 0x5555);
    /* mret to S clears MPRV */
    mprv(PRV_S, false);
    H->mepc = CODE;
    rvt_one(MRET);
    EQ(H->priv, PRV_S);
    EQ(H->mstatus & MSTATUS_MPRV, 0);
}

static void t_access_faults(void)
{
    rvt_begin("access-faults");
    /* bare M-mode: nothing there */
    EQ(ld(NOWHERE, NULL), EXC_LOAD_ACCESS);
    EQ(H->mtval, NOWHERE);
    EQ(sd(NOWHERE + 8, 1), EXC_STORE_ACCESS);
    EQ(H->mtval, NOWHERE + 8);
    EQ(ld(0, NULL), EXC_LOAD_ACCESS);
    EQ(ld(RAM_BASE + RAM_SIZE - 8, NULL), -1);
    EQ(ld(RAM_BASE + RAM_SIZE - 4, NULL), EXC_LOAD_ACCESS); /* runs off the end of RAM */
    EQ(ld(RAM_BASE + RAM_SIZE, NULL), EXC_LOAD_ACCESS);
    EQ(ld(RAM_BASE - 8, NULL), EXC_LOAD_ACCESS);
    H->x[T0] = NOWHERE;
    rvt_w32(CODE, JALR(X0, T0, 0));
    rvt_run_at(CODE, 2);
    MTRAP(EXC_INSN_ACCESS, NOWHERE, NOWHERE);

    /* the root table outside RAM */
    rvt_begin("access-faults-pte");
    rvt_set_satp(rvt_satp(SATP_SV39, NOWHERE));
    rvt_set_priv(PRV_S);
    rvt_run_at(CODE, 1);
    MTRAP(EXC_INSN_ACCESS, CODE, CODE);
    /* a lower-level table outside RAM */
    uint64_t root = paging(3);
    rvt_w64(root + ((VA_DATA >> 30) & 511) * 8, (NOWHERE >> 12) << 10 | PTE_V);
    EQ(ld(VA_DATA, NULL), EXC_LOAD_ACCESS);
    EQ(H->mtval, VA_DATA);
    EQ(sd(VA_DATA, 1), EXC_STORE_ACCESS);
    EQ(H->mtval, VA_DATA);
    /* a leaf pointing outside RAM */
    rvt_map(root, 3, 0x40000000, NOWHERE, 0, RWAD | PTE_X);
    EQ(ld(0x40000000, NULL), EXC_LOAD_ACCESS);
    EQ(H->mtval, 0x40000000);
    EQ(sd(0x40000000, 1), EXC_STORE_ACCESS);
    EQ(exec_at(0x40000000), EXC_INSN_ACCESS);
    EQ(H->mtval, 0x40000000);
}

static void t_page_crossing(void)
{
    rvt_begin("page-crossing");
    uint64_t root = paging(3), v;
    const uint64_t a = VA_DATA, b = VA_DATA + 0x10000, c = VA_DATA + 0x20000;
    /* a: RW page followed by an invalid one */
    rvt_map(root, 3, a, DATA + 0x3000, 0, RWAD);
    /* b: two RW pages mapped to physical pages in reverse order */
    rvt_map(root, 3, b, DATA + 0x5000, 0, RWAD);
    rvt_map(root, 3, b + 0x1000, DATA + 0x3000, 0, RWAD);
    /* c: RW page followed by a read-only one */
    rvt_map(root, 3, c, DATA + 0x7000, 0, RWAD);
    rvt_map(root, 3, c + 0x1000, DATA + 0x8000, 0, PTE_V | PTE_R | PTE_A);

    memset(rvt_ptr(DATA + 0x3ff8, 8), 0xaa, 8);
    EQ(sd(a + 0xffc, 0x1122334455667788ull), EXC_STORE_PAGE);
    EQ(rvt_r64(DATA + 0x3ff8), 0xaaaaaaaaaaaaaaaaull); /* first page untouched */
    CHECK(H->mtval >= a + 0xffc && H->mtval < a + 0x1004);
    EQ(ld(a + 0xffc, &v), EXC_LOAD_PAGE);
    EQ(v, 0x5a5a5a5a); /* rd not written */

    EQ(sd(b + 0xffd, 0x1122334455667788ull), -1);
    EQ(rvt_r8(DATA + 0x5ffd), 0x88);
    EQ(rvt_r16(DATA + 0x5ffe), 0x6677);
    EQ(rvt_r32(DATA + 0x3000), 0x22334455);
    EQ(rvt_r8(DATA + 0x3004), 0x11);
    EQ(ld(b + 0xffd, &v), -1);
    EQ(v, 0x1122334455667788ull);

    memset(rvt_ptr(DATA + 0x7ff8, 8), 0xaa, 8);
    EQ(sd(c + 0xffe, 0x1122334455667788ull), EXC_STORE_PAGE);
    EQ(rvt_r64(DATA + 0x7ff8), 0xaaaaaaaaaaaaaaaaull);
    EQ(rvt_r64(DATA + 0x8000), 0);

    /* a 32-bit instruction whose second half is on an unmapped page */
    rvt_map(root, 3, VA_DATA + 0x30000, CODE + 0x1000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    uint32_t w = ADDI(A0, A0, 1);
    rvt_w16(CODE + 0x1ffe, (uint16_t)w);
    rvt_run_at(VA_DATA + 0x30ffe, 1);
    MTRAP(EXC_INSN_PAGE, VA_DATA + 0x30ffe, VA_DATA + 0x31000);
    /* ... and a compressed one there runs fine */
    rvt_set_priv(PRV_S);
    rvt_w16(CODE + 0x1ffe, C_LI(A0, 7));
    rvt_run_at(VA_DATA + 0x30ffe, 1);
    EQ(H->x[A0], 7);
    EQ(H->pc, VA_DATA + 0x31000);
}

static void t_mmio(void)
{
    rvt_begin("mmio");
    uint64_t v;
    rvt.dev.mem[0x10] = 0x80;
    rvt.dev.mem[0x11] = 0x01;
    H->x[A1] = MMIO_BASE;
    rvt_one(LB(A0, A1, 0x10));
    EQ(H->x[A0], 0xffffffffffffff80ull);
    EQ(rvt.dev.reads, 1);
    EQ(rvt.dev.last_off, 0x10);
    EQ(rvt.dev.last_size, 1);
    rvt_one(LHU(A0, A1, 0x10));
    EQ(H->x[A0], 0x0180);
    EQ(rvt.dev.last_size, 2);
    H->x[A2] = 0x1122334455667788ull;
    rvt_one(SW(A2, A1, 0x20));
    EQ(rvt.dev.writes, 1);
    EQ(rvt.dev.last_off, 0x20);
    EQ(rvt.dev.last_size, 4);
    EQ(rvt.dev.last_val & 0xffffffff, 0x55667788);
    rvt_one(SD(A2, A1, 0x28));
    EQ(rvt.dev.last_size, 8);
    EQ(rvt.dev.last_val, 0x1122334455667788ull);
    /* device reads are never cached */
    rvt.dev.mem[0x10] = 0x7f;
    rvt_one(LBU(A0, A1, 0x10));
    EQ(H->x[A0], 0x7f);
    EQ(rvt.dev.reads, 3);
    /* misaligned device access: a fault, and the device isn't touched */
    unsigned reads = rvt.dev.reads;
    rvt_one(LW(A0, A1, 0x22));
    CHECK(H->mcause == EXC_LOAD_ACCESS || H->mcause == EXC_LOAD_MISALIGNED);
    EQ(H->mepc, CODE);
    EQ(rvt.dev.reads, reads);
    /* past the end of the device */
    EQ(ld(MMIO_BASE + MMIO_SIZE, NULL), EXC_LOAD_ACCESS);
    EQ(ld(MMIO_BASE + MMIO_SIZE - 4, NULL), EXC_LOAD_ACCESS);
    /* no instruction fetch from a device */
    H->x[T0] = MMIO_BASE;
    rvt_w32(CODE, JALR(X0, T0, 0));
    rvt_run_at(CODE, 2);
    MTRAP(EXC_INSN_ACCESS, MMIO_BASE, MMIO_BASE);

    /* the device through a page table, after a RAM mapping of the same VA */
    rvt_begin("mmio-paged");
    uint64_t root = paging(3);
    uint64_t pte = rvt_map(root, 3, VA_DATA, DATA, 0, RWAD);
    EQ(ld(VA_DATA + 8, &v), -1);
    rvt_w64(pte, (MMIO_BASE >> 12) << 10 | RWAD);
    rvt_one(SFENCE_VMA(X0, X0));
    memcpy(rvt.dev.mem + 8, &(uint64_t){ 0xfeedfacecafebeefull }, 8);
    EQ(ld(VA_DATA + 8, &v), -1);
    EQ(v, 0xfeedfacecafebeefull);
    EQ(rvt.dev.reads, 1);
    EQ(rvt.dev.last_off, 8);
    EQ(sd(VA_DATA + 0x30, 0xabc), -1);
    EQ(rvt.dev.writes, 1);
    EQ(rvt.dev.last_off, 0x30);
    EQ(rvt.dev.last_val, 0xabc);
    EQ(rvt_r64(DATA + 0x30), 0);
    EQ(H->priv, PRV_S);
    /* FP load from a device is NaN-boxed like any other */
    H->mstatus |= 1ull << 13;
    memcpy(rvt.dev.mem + 0x40, &(uint32_t){ 0x3f800000 }, 4);
    H->x[A1] = VA_DATA + 0x40;
    rvt_one(FLW(1, A1, 0));
    EQ(H->f[1], 0xffffffff3f800000ull);
}

/* Instruction fetch must follow translation changes made by the running
 * code itself (sfence.vma, satp, traps, xRET) and page boundaries, also
 * within one rv64_exec() call.  Each case runs several instructions in a
 * single rvt_run(), starting with a NOP so that the code page is already
 * in the TLB (and in any per-page fetch cache) when the change happens. */
static void t_fetch_consistency(void)
{
    rvt_begin("fetch-after-sfence");
    uint64_t root = paging(3);
    const uint64_t x = 0x40000000;
    uint64_t pte = rvt_map(root, 3, x, CODE + 0x4000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(root, 3, 0x50000000, pte & ~0xfffull, 0, RWAD); /* the leaf table, writable */
    rvt_org(CODE + 0x4000);
    rvt_emit(NOP);
    rvt_emit(NOP);
    rvt_emit(SD(T1, T0, 0));          /* remap x to page B */
    rvt_emit(SFENCE_VMA(X0, X0));
    rvt_emit(ADDI(A0, X0, 1));        /* page A: must not run */
    rvt_w32(CODE + 0x5010, ADDI(A0, X0, 2));
    H->x[T0] = 0x50000000 + (pte & 0xfff);
    H->x[T1] = ((CODE + 0x5000) >> 12) << 10 | PTE_V | PTE_R | PTE_X | PTE_A;
    rvt_run_at(x, 5);
    EQ(H->x[A0], 2);
    EQ(H->pc, x + 0x14);

    rvt_begin("fetch-after-satp");
    uint64_t r1 = paging(3), r2 = rvt_pt_alloc();
    rvt_map(r1, 3, x, CODE + 0x4000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(r2, 3, x, CODE + 0x5000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_w32(CODE + 0x4000, NOP);
    rvt_w32(CODE + 0x4004, NOP);
    rvt_w32(CODE + 0x4008, CSRW(CSR_SATP, T0));
    rvt_w32(CODE + 0x400c, ADDI(A0, X0, 1));
    rvt_w32(CODE + 0x500c, ADDI(A0, X0, 2));
    H->x[T0] = rvt_satp(SATP_SV39, r2);
    rvt_run_at(x, 4);
    EQ(H->x[A0], 2);

    /* a trap into M whose vector has the same virtual page number as the
     * trapping S code: M fetches physical memory */
    rvt_begin("fetch-after-trap");
    root = paging(3);
    rvt_map(root, 3, MTVEC_ADDR, CODE + 0x6000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_w32(CODE + 0x6100, NOP);
    rvt_w32(CODE + 0x6104, NOP);
    rvt_w32(CODE + 0x6108, ECALL);
    rvt_w32(CODE + 0x6000, ADDI(A0, X0, 0x66));
    rvt_w32(MTVEC_ADDR, ADDI(A0, X0, 0x77));
    rvt_run_at(MTVEC_ADDR + 0x100, 4);
    EQ(H->mcause, EXC_ECALL_S);
    EQ(H->x[A0], 0x77);
    EQ(H->pc, MTVEC_ADDR + 4);

    /* mret from M code to S code at the same virtual page, mapped elsewhere */
    rvt_begin("fetch-after-mret");
    root = rvt_pt_alloc();
    rvt_map(root, 3, CODE, CODE + 0x7000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_set_satp(rvt_satp(SATP_SV39, root));
    rvt_set_mstatus(H->mstatus | 1ull << 11); /* MPP = S */
    H->mepc = CODE + 0x10;
    rvt_w32(CODE, NOP);
    rvt_w32(CODE + 4, NOP);
    rvt_w32(CODE + 8, MRET);
    rvt_w32(CODE + 0x10, ADDI(A0, X0, 0x11));
    rvt_w32(CODE + 0x7010, ADDI(A0, X0, 0x22));
    rvt_run_at(CODE, 4);
    EQ(H->priv, PRV_S);
    EQ(H->x[A0], 0x22);

    /* sret to U on the supervisor page it was executing from */
    rvt_begin("fetch-after-sret");
    paging(3);
    H->sepc = CODE + 0x10;
    rvt_w32(CODE, NOP);
    rvt_w32(CODE + 4, NOP);
    rvt_w32(CODE + 8, SRET);
    rvt_w32(CODE + 0x10, ADDI(A0, X0, 1));
    H->x[A0] = 0;
    rvt_run_at(CODE, 4);
    MTRAP(EXC_INSN_PAGE, CODE + 0x10, CODE + 0x10);
    EQ(H->x[A0], 0);

    /* sequential execution into virtual pages that are not physically
     * contiguous, including a 32-bit instruction split across two */
    rvt_begin("fetch-across-pages");
    root = paging(3);
    const uint64_t y = 0x60000000;
    rvt_map(root, 3, y, CODE + 0x8000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(root, 3, y + 0x1000, CODE + 0xa000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(root, 3, y + 0x2000, CODE + 0xc000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    uint32_t good = ADDI(A0, A0, 4), decoy = ADDI(A0, A0, 0x400);
    rvt_w32(CODE + 0x8ff8, NOP);
    rvt_w32(CODE + 0x8ffc, ADDI(A0, A0, 1));
    rvt_w32(CODE + 0x9000, ADDI(A0, A0, 0x100)); /* decoy: physically next */
    rvt_w32(CODE + 0xa000, ADDI(A0, A0, 2));
    rvt_w32(CODE + 0xa004, JAL(X0, 0xffa));      /* to y + 0x1ffe */
    rvt_w16(CODE + 0xaffe, (uint16_t)good);
    rvt_w16(CODE + 0xb000, (uint16_t)(decoy >> 16));
    rvt_w16(CODE + 0xc000, (uint16_t)(good >> 16));
    H->x[A0] = 0;
    rvt_run_at(y + 0xff8, 5);
    EQ(H->x[A0], 7);
    EQ(H->pc, y + 0x2002);

    /* self-modifying code in the running page, with fence.i */
    rvt_begin("fetch-smc");
    rvt_org(CODE);
    rvt_emit(NOP);
    rvt_emit(SW(T1, T0, 0));
    rvt_emit(0x0000100fu); /* fence.i */
    rvt_emit(ADDI(A0, X0, 0x33));
    H->x[T0] = CODE + 12;
    H->x[A0] = 0;
    H->x[T1] = ADDI(A0, X0, 0x55);
    rvt_run_at(CODE, 4);
    EQ(H->x[A0], 0x55);
}

int main(void)
{
    rvt_init();
    t_basic(3);
    t_basic(4);
    t_superpages(3);
    t_superpages(4);
    t_pte_checks();
    t_permissions();
    t_ad_bits();
    t_sfence();
    t_mprv();
    t_access_faults();
    t_page_crossing();
    t_mmio();
    t_fetch_consistency();
    return rvt_done("test_rv64_mmu");
}
