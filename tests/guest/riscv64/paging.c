/* paging: Sv39 and Sv48 translation from S- and U-mode, page faults,
 * permission bits, SUM/MXR/MPRV, hardware A/D updates, superpages, sfence.vma. */
#include "rt.h"

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_AD (PTE_A | PTE_D)

#define SATP_SV39 (8UL << 60)
#define SATP_SV48 (9UL << 60)

/* ---- virtual layout (root = Sv39 root table; also Sv48's level-2 table for VA < 512 GiB) */
#define MMIO_GIGA 0x0UL                     /* root[0]: VA 0..1G -> PA 0..1G, RW: UART etc. */
#define U_DELTA 0x40000000UL                /* root[1]: VA 1G..2G -> RAM, U+RWX (user alias) */
                                            /* root[2]: VA 2G..3G identity RAM, S RWX */
#define VA_BASE 0xC0000000UL                /* root[3] -> l1 */
#define VA_PAGE(i) (VA_BASE + 0x1000UL * (i)) /* l1[0] -> l0: 4 KiB pages */
#define VA_MEGA (VA_BASE + 0x200000UL)      /* l1[1]: 2 MiB page -> PA 0x80000000 */
#define VA_MEGA_BAD (VA_BASE + 0x400000UL)  /* l1[2]: misaligned 2 MiB page */
#define VA_MEGA_AD (VA_BASE + 0x600000UL)   /* l1[3]: 2 MiB page, A = D = 0 */
#define VA_GIGA_INVALID 0x100000000UL       /* root[4]: V = 0 */
#define VA_GIGA_BAD 0x140000000UL           /* root[5]: misaligned 1 GiB page */
#define VA_HIGH 0xffffffff80000000UL        /* root[510]: identity RAM, negative half */
#define VA_NONCANON39 0x0000008000000000UL  /* bit 39 set: not canonical in Sv39 */
/* Sv48 only (root48) */
#define VA48_TERA 0x0000008000000000UL      /* root48[1]: 512 GiB page -> PA 0 */
#define VA48_TERA_BAD 0x0000010000000000UL  /* root48[2]: misaligned 512 GiB page */
#define VA48_DEEP 0x0000018000000000UL      /* root48[3] -> l2_48 -> l1_48 -> l0_48 */
#define VA48_INVALID 0x0000020000000000UL   /* root48[4]: V = 0 */
#define VA48_NONCANON 0x0000800000000000UL  /* bit 47 set: not canonical */
#define VA48_NEG 0xffff800000000000UL       /* root48[256]: V = 0 */

/* l0 slots */
enum {
    P_RW = 0,       /* pg0 RW */
    P_RO = 1,       /* pg1 R */
    P_XO = 2,       /* pg2 (code) X only */
    P_RX = 3,       /* pg2 RX */
    P_NX = 4,       /* pg2 RW, no X */
    P_URW = 5,      /* pg3 U RW */
    P_URX = 6,      /* pg2 U RX */
    P_INV = 7,      /* invalid */
    P_A0 = 8,       /* pg4 RW, A = D = 0 */
    P_AD0 = 9,      /* pg5 RW, A = D = 0 */
    P_WO = 10,      /* pg0 W only: reserved encoding */
    P_SF = 11,      /* pg0 -> pg1 (sfence test) */
    P_ALIAS = 12,   /* pg6: also reachable through the 2 MiB page */
    P_NONLEAF = 13, /* V=1 RWX=0 at level 0 */
    P_XA = 14,      /* pg7 RX: cross-page code, first half */
    P_XB = 15,      /* invalid, later pg8 RX: second half */
    P_XA0 = 16,     /* pg2 RX, A = 0 */
    P_D0 = 17,      /* pg9 RW, A = 1, D = 0 */
};

typedef u64 ptable[512] __attribute__((aligned(4096)));
static ptable root, l1, l0, root48, l2_48, l1_48, l0_48;
static u8 pg[10][4096] __attribute__((aligned(4096)));

#define MARK(i) (0x5a5a0000UL + (i))
#define CODE42 0x0000808202a00513UL /* li a0, 42 ; ret */

static u64 pte_leaf(u64 pa, u64 flags) { return ((pa >> 12) << 10) | flags | PTE_V; }
static u64 pte_table(const void *t) { return (((u64)t >> 12) << 10) | PTE_V; }
static u64 pa_of(const void *p) { return (u64)p; }
static u64 mega_va(const void *p) { return VA_MEGA + ((u64)p - RAM_BASE); }

static void build_tables(void)
{
    memset(root, 0, sizeof(root));
    memset(l1, 0, sizeof(l1));
    memset(l0, 0, sizeof(l0));
    memset(root48, 0, sizeof(root48));
    memset(l2_48, 0, sizeof(l2_48));
    memset(l1_48, 0, sizeof(l1_48));
    memset(l0_48, 0, sizeof(l0_48));

    root[0] = pte_leaf(0, PTE_R | PTE_W | PTE_AD);
    root[1] = pte_leaf(RAM_BASE, PTE_R | PTE_W | PTE_X | PTE_U | PTE_AD);
    root[2] = pte_leaf(RAM_BASE, PTE_R | PTE_W | PTE_X | PTE_AD);
    root[3] = pte_table(l1);
    root[5] = pte_leaf(RAM_BASE + 0x1000, PTE_R | PTE_W | PTE_AD); /* PPN[1:0] != 0 */
    root[510] = pte_leaf(RAM_BASE, PTE_R | PTE_W | PTE_X | PTE_AD);

    l1[0] = pte_table(l0);
    l1[1] = pte_leaf(RAM_BASE, PTE_R | PTE_W | PTE_AD);
    l1[2] = pte_leaf(RAM_BASE + 0x3000, PTE_R | PTE_W | PTE_AD); /* PPN[0] != 0 */
    l1[3] = pte_leaf(RAM_BASE, PTE_R | PTE_W);

    l0[P_RW] = pte_leaf(pa_of(pg[0]), PTE_R | PTE_W | PTE_AD);
    l0[P_RO] = pte_leaf(pa_of(pg[1]), PTE_R | PTE_AD);
    l0[P_XO] = pte_leaf(pa_of(pg[2]), PTE_X | PTE_A);
    l0[P_RX] = pte_leaf(pa_of(pg[2]), PTE_R | PTE_X | PTE_A);
    l0[P_NX] = pte_leaf(pa_of(pg[2]), PTE_R | PTE_W | PTE_AD);
    l0[P_URW] = pte_leaf(pa_of(pg[3]), PTE_U | PTE_R | PTE_W | PTE_AD);
    l0[P_URX] = pte_leaf(pa_of(pg[2]), PTE_U | PTE_R | PTE_X | PTE_A);
    l0[P_INV] = pa_of(pg[0]) >> 2 | PTE_R | PTE_W; /* V = 0 (other bits ignored) */
    l0[P_A0] = pte_leaf(pa_of(pg[4]), PTE_R | PTE_W);
    l0[P_AD0] = pte_leaf(pa_of(pg[5]), PTE_R | PTE_W);
    l0[P_WO] = pte_leaf(pa_of(pg[0]), PTE_W | PTE_AD);
    l0[P_SF] = pte_leaf(pa_of(pg[0]), PTE_R | PTE_W | PTE_AD);
    l0[P_ALIAS] = pte_leaf(pa_of(pg[6]), PTE_R | PTE_W | PTE_AD);
    l0[P_NONLEAF] = pte_table(pg[0]);
    l0[P_XA] = pte_leaf(pa_of(pg[7]), PTE_R | PTE_X | PTE_A);
    l0[P_XB] = 0;
    l0[P_XA0] = pte_leaf(pa_of(pg[2]), PTE_R | PTE_X);
    l0[P_D0] = pte_leaf(pa_of(pg[9]), PTE_R | PTE_W | PTE_A);

    /* Sv48 */
    root48[0] = pte_table(root);
    root48[1] = pte_leaf(0, PTE_R | PTE_W | PTE_AD);
    root48[2] = pte_leaf(0x1000, PTE_R | PTE_W | PTE_AD); /* PPN[2:0] != 0 */
    root48[3] = pte_table(l2_48);
    l2_48[0] = pte_table(l1_48);
    l1_48[0] = pte_table(l0_48);
    l0_48[0] = pte_leaf(pa_of(pg[0]), PTE_R | PTE_W | PTE_AD);
    l0_48[1] = pte_leaf(pa_of(pg[4]), PTE_R | PTE_W);
    l0_48[2] = pte_leaf(pa_of(pg[2]), PTE_R | PTE_X | PTE_A);

    /* page contents */
    for (int i = 0; i < 10; i++) {
        memset(pg[i], 0, 4096);
        *(u64 *)pg[i] = MARK(i);
    }
    *(u64 *)pg[2] = CODE42;
    /* cross-page code: c.li a0,1; c.nop; addi a0,a0,7 (split); ret */
    u16 *a = (u16 *)(pg[7] + 4090);
    a[0] = 0x4505;
    a[1] = 0x0001;
    a[2] = 0x0513;
    u16 *b = (u16 *)pg[8];
    b[0] = 0x0075;
    b[1] = 0x8082;
    fence_i();
    sfence_vma();
}

/* ---- expectations (run in S-mode; page faults are delegated to S) ---- */
#define EXPECT_FAULT(expr, cause_, va_)                 \
    do {                                                \
        trap_expect();                                  \
        (void)(expr);                                   \
        CHECK_EQ(trap_rec.taken, 1);                    \
        CHECK_EQ(trap_rec.cause, (cause_));             \
        CHECK_EQ(trap_rec.level, 'S');                  \
        CHECK_EQ(trap_rec.tval, (u64)(va_));            \
    } while (0)
/* AMOs fault as stores (15); QEMU 7.2 reports 13 when the page is not readable */
#define EXPECT_AMO_PF(va)                               \
    do {                                                \
        trap_expect();                                  \
        amoadd_d(va, 1);                                \
        CHECK_EQ(trap_rec.taken, 1);                    \
        CHECK(trap_rec.cause == EXC_STORE_PAGE || QEMU_QUIRK(trap_rec.cause == EXC_LOAD_PAGE)); \
        CHECK_EQ(trap_rec.level, 'S');                  \
        CHECK_EQ(trap_rec.tval, (u64)(va));             \
    } while (0)
#define EXPECT_LOAD_PF(va) EXPECT_FAULT(ld64(va), EXC_LOAD_PAGE, va)
#define EXPECT_STORE_PF(va) EXPECT_FAULT(st64(va, 0xbad), EXC_STORE_PAGE, va)
#define EXPECT_FETCH_PF(va)                             \
    do {                                                \
        trap_expect_ret();                              \
        call_at(va);                                    \
        CHECK_EQ(trap_rec.taken, 1);                    \
        CHECK_EQ(trap_rec.cause, EXC_INSN_PAGE);        \
        CHECK_EQ(trap_rec.level, 'S');                  \
        CHECK_EQ(trap_rec.epc, (u64)(va));              \
        CHECK_EQ(trap_rec.tval, (u64)(va));             \
    } while (0)
#define EXPECT_OK_BEGIN() trap_expect()
#define EXPECT_OK_END()                                 \
    do {                                                \
        CHECK_EQ(trap_rec.taken, 0);                    \
        trap_disarm();                                  \
    } while (0)

static u64 ld_ok(u64 va, int line)
{
    trap_expect();
    u64 v = ld64(va);
    if (trap_rec.taken)
        fail("paging.c:%d: load from %lx faulted: cause %lx tval %lx", line, va, trap_rec.cause,
             trap_rec.tval);
    trap_disarm();
    checks_passed++;
    return v;
}
static void st_ok(u64 va, u64 v, int line)
{
    trap_expect();
    st64(va, v);
    if (trap_rec.taken)
        fail("paging.c:%d: store to %lx faulted: cause %lx tval %lx", line, va, trap_rec.cause,
             trap_rec.tval);
    trap_disarm();
    checks_passed++;
}
static u64 call_ok(u64 va, int line)
{
    trap_expect_ret();
    u64 v = call_at(va);
    if (trap_rec.taken)
        fail("paging.c:%d: fetch from %lx faulted: cause %lx tval %lx", line, va, trap_rec.cause,
             trap_rec.tval);
    trap_disarm();
    checks_passed++;
    return v;
}
#define LD(va) ld_ok((u64)(va), __LINE__)
#define ST(va, v) st_ok((u64)(va), (u64)(v), __LINE__)
#define CALL(va) call_ok((u64)(va), __LINE__)

/* ------------------------------------------------------------------ Sv39, S-mode */
static u64 s_sv39_basic(u64 arg)
{
    (void)arg;
    /* we are executing through the identity gigapage */
    CHECK_EQ(csr_read(satp) >> 60, 8);

    /* 4 KiB pages */
    CHECK_EQ(LD(VA_PAGE(P_RW)), MARK(0));
    ST(VA_PAGE(P_RW) + 0x10, 0x1122334455667788UL);
    CHECK_EQ(*(volatile u64 *)(pg[0] + 0x10), 0x1122334455667788UL); /* via identity map */
    CHECK_EQ(LD(VA_PAGE(P_RO)), MARK(1));
    /* byte/half/word accesses at page offsets */
    CHECK_EQ(ld32u(VA_PAGE(P_RW)), MARK(0) & 0xffffffff);
    CHECK_EQ(ld8u(VA_PAGE(P_RW) + 0x17), 0x11);

    /* 2 MiB page and a 4 KiB page on the same physical memory */
    u64 mv = mega_va(pg[6]);
    CHECK_EQ(LD(mv), MARK(6));
    CHECK_EQ(LD(VA_PAGE(P_ALIAS)), MARK(6));
    ST(VA_PAGE(P_ALIAS) + 0x100, 0xabcdef0123456789UL);
    CHECK_EQ(LD(mv + 0x100), 0xabcdef0123456789UL);
    ST(mv + 0x108, 0x0102030405060708UL);
    CHECK_EQ(LD(VA_PAGE(P_ALIAS) + 0x108), 0x0102030405060708UL);
    CHECK_EQ(*(volatile u64 *)(pg[6] + 0x108), 0x0102030405060708UL);
    /* the megapage covers the whole image: read this function's code through it */
    u64 code = (u64)s_sv39_basic & ~7UL;
    CHECK_EQ(LD(mega_va((void *)code)), *(volatile u64 *)code);

    /* negative-half (sign-extended) virtual addresses */
    CHECK_EQ(LD(VA_HIGH + ((u64)pg[0] - RAM_BASE)), MARK(0));

    /* executing from a mapped page at another VA */
    CHECK_EQ(CALL(VA_PAGE(P_RX)), 42);
    CHECK_EQ(LD(VA_PAGE(P_RX)), CODE42);
    return 0x600d;
}

static u64 s_sv39_faults(u64 arg)
{
    (void)arg;
    /* invalid PTE: load 13, store 15, fetch 12, tval = the faulting VA */
    EXPECT_LOAD_PF(VA_PAGE(P_INV) + 8);
    CHECK_EQ(trap_rec.epc, (u64)ld64);
    CHECK_EQ(trap_rec.status & MSTATUS_SPP, MSTATUS_SPP);
    CHECK_EQ(csr_read(scause), EXC_LOAD_PAGE);
    CHECK_EQ(csr_read(stval), VA_PAGE(P_INV) + 8);
    EXPECT_STORE_PF(VA_PAGE(P_INV) + 0x10);
    CHECK_EQ(trap_rec.epc, (u64)st64);
    EXPECT_FETCH_PF(VA_PAGE(P_INV) + 0x20);
    EXPECT_FAULT(ld8u(VA_PAGE(P_INV) + 0xfff), EXC_LOAD_PAGE, VA_PAGE(P_INV) + 0xfff);
    EXPECT_FAULT(st16(VA_PAGE(P_INV) + 0x22, 1), EXC_STORE_PAGE, VA_PAGE(P_INV) + 0x22);
    EXPECT_AMO_PF(VA_PAGE(P_INV));
    EXPECT_FAULT(lr_d(VA_PAGE(P_INV) + 0x30), EXC_LOAD_PAGE, VA_PAGE(P_INV) + 0x30);
    /* invalid at the top level, and in a hole of the root table */
    EXPECT_LOAD_PF(VA_GIGA_INVALID + 0x1238);
    EXPECT_STORE_PF(VA_GIGA_INVALID);
    EXPECT_LOAD_PF(0x3000000000UL);
    /* not sign-extended (bits 63:39 must equal bit 38) */
    EXPECT_LOAD_PF(VA_NONCANON39);
    EXPECT_STORE_PF(VA_NONCANON39 + 8);
    EXPECT_FETCH_PF(VA_NONCANON39 + 0x40);
    EXPECT_LOAD_PF(0x8000000080000000UL);

    /* read-only page */
    CHECK_EQ(LD(VA_PAGE(P_RO) + 0), MARK(1));
    EXPECT_STORE_PF(VA_PAGE(P_RO) + 0x18);
    EXPECT_FAULT(amoadd_d(VA_PAGE(P_RO), 1), EXC_STORE_PAGE, VA_PAGE(P_RO));
    EXPECT_FAULT(st8(VA_PAGE(P_RO) + 3, 1), EXC_STORE_PAGE, VA_PAGE(P_RO) + 3);
    CHECK_EQ(*(volatile u64 *)pg[1], MARK(1)); /* unchanged */
    EXPECT_FETCH_PF(VA_PAGE(P_RO)); /* no X */

    /* execute-only page: loads fault unless MXR, stores always fault */
    CHECK_EQ(CALL(VA_PAGE(P_XO)), 42);
    EXPECT_LOAD_PF(VA_PAGE(P_XO));
    csr_set(sstatus, MSTATUS_MXR);
    CHECK_EQ(csr_read(sstatus) & MSTATUS_MXR, MSTATUS_MXR);
    CHECK_EQ(LD(VA_PAGE(P_XO)), CODE42);
    EXPECT_STORE_PF(VA_PAGE(P_XO) + 8);
    CHECK_EQ(LD(VA_PAGE(P_RO)), MARK(1)); /* MXR doesn't take away R */
    csr_clear(sstatus, MSTATUS_MXR);
    EXPECT_LOAD_PF(VA_PAGE(P_XO) + 8);

    /* RW page without X: fetch faults, data works */
    EXPECT_FETCH_PF(VA_PAGE(P_NX));
    CHECK_EQ(LD(VA_PAGE(P_NX)), CODE42);

    /* reserved encoding W without R */
    EXPECT_LOAD_PF(VA_PAGE(P_WO));
    EXPECT_STORE_PF(VA_PAGE(P_WO) + 8);
    /* pointer PTE at the last level */
    EXPECT_LOAD_PF(VA_PAGE(P_NONLEAF) + 0x40);

    /* misaligned superpages */
    EXPECT_LOAD_PF(VA_MEGA_BAD + 0x123);
    EXPECT_STORE_PF(VA_MEGA_BAD + 0x1000);
    EXPECT_LOAD_PF(VA_GIGA_BAD + 0x2000);

    /* user page from S: SUM = 0 faults; SUM = 1 allows loads/stores, never fetches */
    EXPECT_LOAD_PF(VA_PAGE(P_URW));
    EXPECT_STORE_PF(VA_PAGE(P_URW) + 8);
    EXPECT_FETCH_PF(VA_PAGE(P_URX));
    csr_set(sstatus, MSTATUS_SUM);
    CHECK_EQ(csr_read(sstatus) & MSTATUS_SUM, MSTATUS_SUM);
    EXPECT_FETCH_PF(VA_PAGE(P_URX));
    CHECK_EQ(LD(VA_PAGE(P_URW)), MARK(3));
    ST(VA_PAGE(P_URW) + 8, 0x5a5UL);
    CHECK_EQ(*(volatile u64 *)(pg[3] + 8), 0x5a5UL);
    CHECK_EQ(LD(VA_PAGE(P_URX)), CODE42);
    /* QEMU 7.2 caches the X permission from the SUM load above and would
     * then let S execute the U page: flush first (not needed by the spec,
     * so STRICT builds don't) */
    if (QEMU_QUIRK(1))
        sfence_vma();
    EXPECT_FETCH_PF(VA_PAGE(P_URX));
    csr_clear(sstatus, MSTATUS_SUM);
    EXPECT_LOAD_PF(VA_PAGE(P_URW) + 16);

    /* a 32-bit instruction crossing into an unmapped page: sepc = start of the
     * instruction, stval = the address of the part that faulted */
    trap_expect_ret();
    call_at(VA_PAGE(P_XA) + 4090);
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_INSN_PAGE);
    CHECK_EQ(trap_rec.epc, VA_PAGE(P_XA) + 4094);
    CHECK_EQ(trap_rec.tval, VA_PAGE(P_XB));
    /* map the second page: the instruction now runs */
    l0[P_XB] = pte_leaf(pa_of(pg[8]), PTE_R | PTE_X | PTE_A);
    __asm__ volatile("sfence.vma %0, zero" : : "r"(VA_PAGE(P_XB)) : "memory");
    CHECK_EQ(CALL(VA_PAGE(P_XA) + 4090), 8);
    return 0x600d;
}

static u64 s_sv39_ad(u64 arg)
{
    (void)arg;
    /* A set by a load, D untouched */
    CHECK_EQ(l0[P_A0] & PTE_AD, 0);
    CHECK_EQ(LD(VA_PAGE(P_A0)), MARK(4));
    CHECK_EQ(l0[P_A0] & PTE_AD, PTE_A);
    /* A and D set by a store */
    CHECK_EQ(l0[P_AD0] & PTE_AD, 0);
    ST(VA_PAGE(P_AD0) + 8, 77);
    CHECK_EQ(l0[P_AD0] & PTE_AD, PTE_AD);
    CHECK_EQ(*(volatile u64 *)(pg[5] + 8), 77);
    /* D set by a store when A was already set */
    CHECK_EQ(l0[P_D0] & PTE_AD, PTE_A);
    CHECK_EQ(LD(VA_PAGE(P_D0)), MARK(9));
    CHECK_EQ(l0[P_D0] & PTE_AD, PTE_A);
    ST(VA_PAGE(P_D0), 1);
    CHECK_EQ(l0[P_D0] & PTE_AD, PTE_AD);
    /* A set by an instruction fetch */
    CHECK_EQ(l0[P_XA0] & PTE_AD, 0);
    CHECK_EQ(CALL(VA_PAGE(P_XA0)), 42);
    CHECK_EQ(l0[P_XA0] & PTE_A, PTE_A);
    CHECK_EQ(l0[P_XA0] & PTE_D, 0);
    /* an AMO sets A and D */
    l0[P_A0] &= ~PTE_AD;
    sfence_vma();
    amoadd_d(VA_PAGE(P_A0) + 16, 5);
    CHECK_EQ(l0[P_A0] & PTE_AD, PTE_AD);
    CHECK_EQ(*(volatile u64 *)(pg[4] + 16), 5);
    /* superpage leaf */
    CHECK_EQ(l1[3] & PTE_AD, 0);
    CHECK_EQ(LD(VA_MEGA_AD + ((u64)pg[6] - RAM_BASE)), MARK(6));
    CHECK_EQ(l1[3] & PTE_AD, PTE_A);
    ST(VA_MEGA_AD + ((u64)pg[6] - RAM_BASE) + 0x200, 9);
    CHECK_EQ(l1[3] & PTE_AD, PTE_AD);
    /* the rest of the PTE is unchanged */
    CHECK_EQ(l1[3], pte_leaf(RAM_BASE, PTE_R | PTE_W | PTE_AD));
    CHECK_EQ(l0[P_AD0], pte_leaf(pa_of(pg[5]), PTE_R | PTE_W | PTE_AD));
    /* a faulting access doesn't set A */
    u64 before = l0[P_XO];
    l0[P_XO] &= ~PTE_A;
    sfence_vma();
    EXPECT_LOAD_PF(VA_PAGE(P_XO));
    CHECK_EQ(l0[P_XO] & PTE_A, 0);
    l0[P_XO] = before;
    sfence_vma();
    return 0x600d;
}

static u64 s_sv39_sfence(u64 arg)
{
    (void)arg;
    u64 va = VA_PAGE(P_SF);
    CHECK_EQ(LD(va), MARK(0));
    /* remap to another page */
    l0[P_SF] = pte_leaf(pa_of(pg[1]), PTE_R | PTE_W | PTE_AD);
    __asm__ volatile("sfence.vma %0, zero" : : "r"(va) : "memory");
    CHECK_EQ(LD(va), MARK(1));
    /* unmap */
    l0[P_SF] = 0;
    sfence_vma();
    EXPECT_LOAD_PF(va + 0x28);
    /* map read-only: loads work, stores fault */
    l0[P_SF] = pte_leaf(pa_of(pg[0]), PTE_R | PTE_A);
    sfence_vma();
    CHECK_EQ(LD(va), MARK(0));
    EXPECT_STORE_PF(va + 8);
    /* back to writable */
    l0[P_SF] = pte_leaf(pa_of(pg[0]), PTE_R | PTE_W | PTE_AD);
    __asm__ volatile("sfence.vma %0, zero" : : "r"(va) : "memory");
    ST(va + 8, 123);
    CHECK_EQ(*(volatile u64 *)(pg[0] + 8), 123);
    /* changing a non-leaf entry */
    l1[0] = 0;
    sfence_vma();
    EXPECT_LOAD_PF(VA_PAGE(P_RW));
    l1[0] = pte_table(l0);
    sfence_vma();
    CHECK_EQ(LD(VA_PAGE(P_RW)), MARK(0));
    return 0x600d;
}

/* ------------------------------------------------------------------ U-mode */
static u64 run_u(void *fn, u64 arg) { return run_lower(PRV_U, fn, arg, U_DELTA); }

static void m_user_tests(void)
{
    /* U page: loads, stores and fetches work */
    trap_expect_ret();
    CHECK_EQ(run_u(ld64, VA_PAGE(P_URW)), MARK(3));
    trap_expect_ret();
    run_lower(PRV_U, st64, VA_PAGE(P_URW) + 0x40, U_DELTA); /* stores a1 = fn = &st64 */
    CHECK_EQ(trap_rec.taken, 0);
    CHECK_EQ(*(volatile u64 *)(pg[3] + 0x40), (u64)st64);
    trap_expect_ret();
    CHECK_EQ(run_u(call_at, VA_PAGE(P_URX)), 42);
    CHECK_EQ(trap_rec.taken, 0);
    /* the user alias of RAM */
    trap_expect_ret();
    CHECK_EQ(run_u(ld64, (u64)pg[2] - U_DELTA), CODE42);
    CHECK_EQ(trap_rec.taken, 0);
    trap_disarm();

    /* supervisor pages from U: faults with stval = VA, taken in S with SPP = U */
    trap_expect_ret();
    run_u(ld64, VA_PAGE(P_RW) + 0x30);
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_LOAD_PAGE);
    CHECK_EQ(trap_rec.level, 'S');
    CHECK_EQ(trap_rec.tval, VA_PAGE(P_RW) + 0x30);
    CHECK_EQ(trap_rec.epc, (u64)ld64 - U_DELTA);
    CHECK_EQ(trap_rec.status & MSTATUS_SPP, 0);
    trap_expect_ret();
    run_u(st64, VA_PAGE(P_RW) + 0x38);
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_STORE_PAGE);
    CHECK_EQ(trap_rec.tval, VA_PAGE(P_RW) + 0x38);
    trap_expect_ret();
    run_u(call_at, VA_PAGE(P_RX));
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_INSN_PAGE);
    CHECK_EQ(trap_rec.tval, VA_PAGE(P_RX));
    CHECK_EQ(trap_rec.epc, VA_PAGE(P_RX));
    /* the identity map of RAM is supervisor-only */
    trap_expect_ret();
    run_u(ld64, (u64)pg[0]);
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_LOAD_PAGE);
    CHECK_EQ(trap_rec.tval, (u64)pg[0]);
    /* SUM doesn't matter for U */
    csr_set(mstatus, MSTATUS_SUM);
    trap_expect_ret();
    run_u(ld64, VA_PAGE(P_RW));
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_LOAD_PAGE);
    csr_clear(mstatus, MSTATUS_SUM);
    /* MXR lets U read its X-only pages too (none here): U read of an S X-only page faults */
    trap_expect_ret();
    run_u(ld64, VA_PAGE(P_XO));
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_LOAD_PAGE);
}

/* ------------------------------------------------------------------ MPRV */
u64 mprv_load(u64 va, u64 mpp);
u64 mprv_store(u64 va, u64 v, u64 mpp);

static void m_mprv_tests(void)
{
    /* M-mode data accesses translated as S (instruction fetches are not) */
    CHECK_EQ(mprv_load(VA_PAGE(P_RW), MSTATUS_MPP_S), MARK(0));
    CHECK_EQ(mprv_load(VA_PAGE(P_ALIAS), MSTATUS_MPP_S), MARK(6));
    mprv_store(VA_PAGE(P_RW) + 0x48, 0x4d505256UL, MSTATUS_MPP_S);
    CHECK_EQ(*(volatile u64 *)(pg[0] + 0x48), 0x4d505256UL);
    /* ... and as U through the user alias */
    CHECK_EQ(mprv_load(VA_PAGE(P_URW), 0), MARK(3));
    /* MPP = M: no translation */
    CHECK_EQ(mprv_load((u64)pg[1], MSTATUS_MPP_M), MARK(1));
    CHECK_EQ(csr_read(mstatus) & MSTATUS_MPRV, 0);
}

/* ------------------------------------------------------------------ Sv48 */
static u64 s_sv48(u64 arg)
{
    (void)arg;
    CHECK_EQ(csr_read(satp) >> 60, 9);
    /* everything below 512 GiB goes through the Sv39 structure */
    CHECK_EQ(LD(VA_PAGE(P_RW)), MARK(0));
    CHECK_EQ(LD(mega_va(pg[6])), MARK(6));
    CHECK_EQ(CALL(VA_PAGE(P_RX)), 42);
    EXPECT_LOAD_PF(VA_PAGE(P_INV));
    EXPECT_STORE_PF(VA_PAGE(P_RO));
    /* bit 39 is a plain address bit in Sv48: 512 GiB page -> PA 0 */
    CHECK_EQ(LD(VA48_TERA + (u64)pg[5]), MARK(5));
    ST(VA48_TERA + (u64)pg[5] + 0x50, 4848);
    CHECK_EQ(*(volatile u64 *)(pg[5] + 0x50), 4848);
    EXPECT_OK_BEGIN();
    CHECK_EQ(ld8u(VA48_TERA + UART_BASE + 5) & 0x20, 0x20); /* MMIO through it: LSR.THRE */
    EXPECT_OK_END();
    /* misaligned 512 GiB page */
    EXPECT_LOAD_PF(VA48_TERA_BAD + 0x80000000UL);
    /* four-level walk to a 4 KiB page */
    CHECK_EQ(LD(VA48_DEEP), MARK(0));
    CHECK_EQ(LD(VA48_DEEP + 0x10), *(volatile u64 *)(pg[0] + 0x10));
    CHECK_EQ(CALL(VA48_DEEP + 0x2000), 42);
    EXPECT_LOAD_PF(VA48_DEEP + 0x3000); /* l0_48[3] invalid */
    EXPECT_FETCH_PF(VA48_DEEP + 0x3000);
    EXPECT_LOAD_PF(VA48_DEEP + 0x200000); /* l1_48[1] invalid */
    EXPECT_LOAD_PF(VA48_INVALID + 8);
    EXPECT_LOAD_PF(VA48_NEG + 0x10);
    EXPECT_STORE_PF(VA48_NONCANON);
    EXPECT_LOAD_PF(VA48_NONCANON + 0x7777);
    /* A/D at level 0 of a four-level walk */
    CHECK_EQ(l0_48[1] & PTE_AD, 0);
    CHECK_EQ(LD(VA48_DEEP + 0x1000), MARK(4));
    CHECK_EQ(l0_48[1] & PTE_AD, PTE_A);
    ST(VA48_DEEP + 0x1008, 1);
    CHECK_EQ(l0_48[1] & PTE_AD, PTE_AD);
    /* sfence.vma */
    l0_48[0] = pte_leaf(pa_of(pg[1]), PTE_R | PTE_AD);
    __asm__ volatile("sfence.vma %0, zero" : : "r"(VA48_DEEP) : "memory");
    CHECK_EQ(LD(VA48_DEEP), MARK(1));
    EXPECT_STORE_PF(VA48_DEEP + 8);
    return 0x600d;
}

/* ------------------------------------------------------------------ main */
int main(void)
{
    csr_write(medeleg, (1UL << EXC_INSN_PAGE) | (1UL << EXC_LOAD_PAGE) | (1UL << EXC_STORE_PAGE));

    kprintf("paging: satp\n");
    build_tables();
    u64 satp39 = SATP_SV39 | ((u64)root >> 12);
    csr_write(satp, satp39);
    CHECK_EQ(csr_read(satp), satp39);
    /* unsupported/reserved modes: the write has no effect */
    csr_write(satp, (5UL << 60) | 0x1234);
    CHECK_EQ(csr_read(satp), satp39);
    u64 satp48 = SATP_SV48 | ((u64)root48 >> 12);
    csr_write(satp, satp48);
    CHECK_EQ(csr_read(satp), satp48);
    csr_write(satp, 0);
    CHECK_EQ(csr_read(satp), 0);
    /* M-mode ignores satp */
    csr_write(satp, satp39);
    sfence_vma();
    CHECK_EQ(*(volatile u64 *)pg[0], MARK(0));

    kprintf("paging: Sv39 basic\n");
    CHECK_EQ(run_lower(PRV_S, s_sv39_basic, 0, 0), 0x600d);
    kprintf("paging: Sv39 faults\n");
    CHECK_EQ(run_lower(PRV_S, s_sv39_faults, 0, 0), 0x600d);
    kprintf("paging: Sv39 A/D\n");
    CHECK_EQ(run_lower(PRV_S, s_sv39_ad, 0, 0), 0x600d);
    kprintf("paging: Sv39 sfence.vma\n");
    CHECK_EQ(run_lower(PRV_S, s_sv39_sfence, 0, 0), 0x600d);
    kprintf("paging: Sv39 U-mode\n");
    m_user_tests();
    kprintf("paging: MPRV\n");
    m_mprv_tests();

    kprintf("paging: Sv48\n");
    build_tables();
    csr_write(satp, satp48);
    CHECK_EQ(csr_read(satp) >> 60, 9);
    sfence_vma();
    CHECK_EQ(run_lower(PRV_S, s_sv48, 0, 0), 0x600d);
    trap_expect_ret();
    CHECK_EQ(run_u(ld64, VA_PAGE(P_URW)), MARK(3));
    CHECK_EQ(trap_rec.taken, 0);
    trap_expect_ret();
    run_u(ld64, VA48_DEEP);
    CHECK_EQ(trap_rec.taken, 1);
    CHECK_EQ(trap_rec.cause, EXC_LOAD_PAGE);
    CHECK_EQ(trap_rec.tval, VA48_DEEP);

    csr_write(satp, 0);
    sfence_vma();
    csr_write(medeleg, 0);
    return 0;
}
