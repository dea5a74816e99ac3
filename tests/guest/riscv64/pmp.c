/* pmp: physical memory protection.  S-mode (bare translation) accesses to
 * regions set up with NAPOT, TOR and NA4 entries: R/W/X checks with the
 * right cause and mtval, priority by lowest index, accesses matching only
 * part of an entry, no match from S, regions smaller than a page next to
 * allowed bytes of the same page (no stale cached translation), a PMP change
 * after an allowed access, and locked entries that bind M-mode too and
 * can't be rewritten.  The image (0x80000000, 2 MiB) stays RWX for S
 * through the last entry (or a 2 MiB NAPOT one). */
#include "rt.h"

#define R 0x80400000UL        /* test memory, outside the image */
#define A_TOR (1u << 3)
#define A_NA4 (2u << 3)
#define A_NAPOT (3u << 3)
#define P_R 1u
#define P_W 2u
#define P_X 4u
#define P_L 0x80u

static u64 napot(u64 base, u64 size) { return (base >> 2) | ((size >> 3) - 1); }

static void set_addr(unsigned i, u64 v)
{
    switch (i) {
    case 0: csr_write(pmpaddr0, v); break;
    case 1: csr_write(pmpaddr1, v); break;
    case 2: csr_write(pmpaddr2, v); break;
    case 3: csr_write(pmpaddr3, v); break;
    case 11: csr_write(pmpaddr11, v); break;
    case 12: csr_write(pmpaddr12, v); break;
    case 14: csr_write(pmpaddr14, v); break;
    case 15: csr_write(pmpaddr15, v); break;
    default: fail("set_addr %u", i);
    }
}

static u64 cfg[2]; /* shadow of pmpcfg0/2 for entries this test owns */

static void set_cfg(unsigned i, u8 c)
{
    cfg[i / 8] = (cfg[i / 8] & ~(0xffUL << (8 * (i % 8)))) | ((u64)c << (8 * (i % 8)));
    csr_write(pmpcfg0, cfg[0]);
    csr_write(pmpcfg2, cfg[1]);
}

/* entries 0..3 off, entry 15 = everything RWX */
static void reset_pmp(void)
{
    for (unsigned i = 0; i < 4; i++)
        set_cfg(i, 0);
    set_addr(15, ~0UL);
    set_cfg(15, A_NAPOT | P_R | P_W | P_X);
}

static u64 s_load(u64 a) { return ld64(a); }
static u64 s_load32(u64 a) { return ld32u(a); }
static u64 s_store(u64 a) { st64(a, 0x5a5a5a5a5a5a5a5aUL); return 0; }
static u64 s_exec(u64 a) { return call_at(a); }

enum { LD, LD32, ST, EX };

/* Access a in mode; returns the trap cause, or ~0 if none (tval checked). */
static u64 access(int mode, int kind, u64 a)
{
    static void *const fns[] = { s_load, s_load32, s_store, s_exec };
    trap_expect_ret();
    if (mode == PRV_M) {
        if (kind == LD) ld64(a);
        else if (kind == LD32) ld32u(a);
        else if (kind == ST) st64(a, 0x5a5a5a5a5a5a5a5aUL);
        else call_at(a);
    } else {
        run_lower(mode, fns[kind], a, 0);
    }
    u64 c = trap_rec.taken ? trap_rec.cause : ~0UL;
    if (trap_rec.taken) {
        CHECK_EQ(trap_rec.level, 'M');
        CHECK_EQ(trap_rec.tval, a);
        if (kind == EX)
            CHECK_EQ(trap_rec.epc, a);
    }
    trap_disarm();
    return c;
}

#define OK(mode, kind, a) CHECK_EQ(access(mode, kind, a), ~0UL)
#define LFAULT(mode, a) CHECK_EQ(access(mode, LD, a), EXC_LOAD_ACCESS)
#define SFAULT(mode, a) CHECK_EQ(access(mode, ST, a), EXC_STORE_ACCESS)
#define XFAULT(mode, a) CHECK_EQ(access(mode, EX, a), EXC_INSN_ACCESS)

/* a `ret` at each page of the test memory, for fetches */
static void put_rets(void)
{
    for (u64 a = R; a < R + 0x30000; a += 0x800)
        *(volatile u32 *)a = 0x00008067; /* jalr x0, 0(ra) */
    fence_i();
}

static void test_csrs(void)
{
    csr_write(pmpaddr1, 0x123456789UL);
    CHECK_EQ(csr_read(pmpaddr1), 0x123456789UL);
    csr_write(pmpaddr1, ~0UL);
    u64 v = csr_read(pmpaddr1); /* 54 address bits (QEMU 7.2 keeps all 64) */
    CHECK(v == (1UL << 54) - 1 || QEMU_QUIRK(v == ~0UL));
    set_cfg(1, A_TOR | P_R | P_X);
    CHECK_EQ((csr_read(pmpcfg0) >> 8) & 0xff, A_TOR | P_R | P_X);
    /* W without R is reserved */
    csr_write(pmpcfg0, (u64)(A_NAPOT | P_W) << 8);
    u64 c = (csr_read(pmpcfg0) >> 8) & 0xff;
    CHECK(c == A_NAPOT || QEMU_QUIRK(c == (A_NAPOT | P_W)));
    csr_write(pmpcfg0, cfg[0]);
}

static void test_napot(void)
{
    reset_pmp();
    /* 4 KiB at R: read-only */
    set_addr(0, napot(R, 0x1000));
    set_cfg(0, A_NAPOT | P_R);
    OK(PRV_S, LD, R);
    OK(PRV_S, LD, R + 0xff8);
    SFAULT(PRV_S, R + 8);
    XFAULT(PRV_S, R);
    OK(PRV_U, LD, R + 0x10);
    SFAULT(PRV_U, R + 0x10);
    /* the next page is the fallback's */
    OK(PRV_S, EX, R + 0x1000);
    OK(PRV_S, ST, R + 0x1008);
    /* M ignores unlocked entries */
    OK(PRV_M, ST, R + 8);
    /* execute-only */
    set_cfg(0, A_NAPOT | P_X);
    LFAULT(PRV_S, R + 0x800);
    SFAULT(PRV_S, R + 0x800);
    OK(PRV_S, EX, R + 0x800);
    /* write-and-read, then a change of mind after the page was used
     * (the translation must not stay cached) */
    set_cfg(0, A_NAPOT | P_R | P_W);
    OK(PRV_S, ST, R + 0x100);
    OK(PRV_S, LD, R + 0x100);
    set_cfg(0, A_NAPOT);
    LFAULT(PRV_S, R + 0x100);
    SFAULT(PRV_S, R + 0x100);
    /* a bigger NAPOT (64 KiB) */
    set_addr(0, napot(R, 0x10000));
    set_cfg(0, A_NAPOT | P_R);
    OK(PRV_S, LD, R + 0xfff8);
    SFAULT(PRV_S, R + 0xfff8);
    OK(PRV_S, ST, R + 0x10000);
}

static void test_tor_sub_page(void)
{
    reset_pmp();
    /* [R + 0x1000, R + 0x1800): no access; the rest of the page allowed */
    set_addr(0, (R + 0x1000) >> 2);
    set_cfg(0, 0);          /* OFF: only the bottom of entry 1 */
    set_addr(1, (R + 0x1800) >> 2);
    set_cfg(1, A_TOR);
    OK(PRV_S, LD, R + 0x1800);     /* same page, allowed part first */
    OK(PRV_S, ST, R + 0x1ff8);
    LFAULT(PRV_S, R + 0x1000);
    LFAULT(PRV_S, R + 0x17f8);
    SFAULT(PRV_S, R + 0x1400);
    XFAULT(PRV_S, R + 0x1000);
    OK(PRV_S, LD, R + 0x1800);
    OK(PRV_S, LD, R + 0xff8);
    /* TOR through entry 0 starts at address 0: [0, RAM) denied */
    set_cfg(1, 0);
    OK(PRV_S, LD, CLINT_MTIME);
    set_addr(0, 0x80000000UL >> 2);
    set_cfg(0, A_TOR);
    LFAULT(PRV_S, CLINT_MTIME);
    LFAULT(PRV_S, 0x10000000UL);
    OK(PRV_S, LD, 0x80000000UL);
    /* an empty TOR (top <= bottom) matches nothing */
    set_cfg(0, 0);
    set_addr(0, (R + 0x2000) >> 2);
    set_addr(1, (R + 0x1000) >> 2);
    set_cfg(1, A_TOR);
    OK(PRV_S, ST, R + 0x1800);
    set_cfg(1, 0);
}

static void test_na4_partial(void)
{
    reset_pmp();
    set_addr(0, (R + 0x2004) >> 2);
    set_cfg(0, A_NA4);
    CHECK_EQ(access(PRV_S, LD32, R + 0x2000), ~0UL);
    CHECK_EQ(access(PRV_S, LD32, R + 0x2004), EXC_LOAD_ACCESS);
    CHECK_EQ(access(PRV_S, LD32, R + 0x2008), ~0UL);
    /* an 8-byte access matching the entry in half of its bytes fails */
    LFAULT(PRV_S, R + 0x2000);
    SFAULT(PRV_S, R + 0x2000);
    OK(PRV_S, LD, R + 0x2008);
}

static void test_priority(void)
{
    reset_pmp();
    /* entry 2: first 4 KiB RW; entry 3: 8 KiB nothing */
    set_addr(2, napot(R, 0x1000));
    set_cfg(2, A_NAPOT | P_R | P_W);
    set_addr(3, napot(R, 0x2000));
    set_cfg(3, A_NAPOT);
    OK(PRV_S, ST, R + 0x100);
    SFAULT(PRV_S, R + 0x1100);
    LFAULT(PRV_S, R + 0x1100);
    /* swapped: the deny-all entry now comes first */
    set_cfg(2, 0);
    set_cfg(3, 0);
    set_addr(2, napot(R, 0x2000));
    set_cfg(2, A_NAPOT);
    set_addr(3, napot(R, 0x1000));
    set_cfg(3, A_NAPOT | P_R | P_W);
    LFAULT(PRV_S, R + 0x100);
    set_cfg(2, 0);
    set_cfg(3, 0);

    /* no entry matches: S fails (only the image is covered now) */
    set_addr(15, napot(0x80000000UL, 0x200000));
    LFAULT(PRV_S, R);
    SFAULT(PRV_S, R);
    XFAULT(PRV_S, R);
    LFAULT(PRV_S, 0x10000000UL); /* the UART too */
    OK(PRV_S, LD, 0x80000000UL);
    OK(PRV_M, LD, R);            /* M needs no match */
    reset_pmp();
}

static void test_locked(void)
{
    reset_pmp();
    /* entry 14: L, read-only, 4 KiB at R + 0x10000: binds M too */
    set_addr(14, napot(R + 0x10000, 0x1000));
    set_cfg(14, P_L | A_NAPOT | P_R);
    OK(PRV_M, LD, R + 0x10008);
    SFAULT(PRV_M, R + 0x10008);
    XFAULT(PRV_M, R + 0x10000);
    SFAULT(PRV_S, R + 0x10008);
    OK(PRV_M, ST, R + 0x11000);  /* outside it */
    /* can't be changed, nor unlocked; other entries in pmpcfg2 can */
    set_addr(14, napot(R + 0x20000, 0x1000));
    CHECK_EQ(csr_read(pmpaddr14), napot(R + 0x10000, 0x1000));
    csr_write(pmpcfg2, 0);
    CHECK_EQ((csr_read(pmpcfg2) >> 48) & 0xff, P_L | A_NAPOT | P_R);
    CHECK_EQ(csr_read(pmpcfg2) >> 56, 0);  /* entry 15 was cleared */
    set_cfg(15, A_NAPOT | P_R | P_W | P_X);
    CHECK_EQ(csr_read(pmpcfg2) >> 56, A_NAPOT | P_R | P_W | P_X);
    SFAULT(PRV_M, R + 0x10008);

    /* entry 12: L with TOR also locks pmpaddr11, its bottom */
    set_addr(11, (R + 0x20000) >> 2);
    set_addr(12, (R + 0x21000) >> 2);
    set_cfg(12, P_L | A_TOR);
    LFAULT(PRV_M, R + 0x20000);
    SFAULT(PRV_M, R + 0x20ff8);
    OK(PRV_M, LD, R + 0x21000);
    set_addr(11, (R + 0x30000) >> 2);
    CHECK_EQ(csr_read(pmpaddr11), (R + 0x20000) >> 2);
    set_addr(12, (R + 0x31000) >> 2);
    CHECK_EQ(csr_read(pmpaddr12), (R + 0x21000) >> 2);
    LFAULT(PRV_S, R + 0x20000);
}

int main(void)
{
    cfg[0] = csr_read(pmpcfg0);
    cfg[1] = csr_read(pmpcfg2);
    put_rets();
    test_csrs();
    test_napot();
    test_tor_sub_page();
    test_na4_partial();
    test_priority();
    test_locked();
    return 0;
}
