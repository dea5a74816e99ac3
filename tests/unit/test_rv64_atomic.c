/* rv64 engine: the A extension (LR/SC and AMOs), and PAUSE's slice end. */
#include "rv64_harness.h"

#define ALL1 0xffffffffffffffffull
#define I64_MIN 0x8000000000000000ull

struct amo_case {
    const char *name;
    unsigned f5;
    bool word;
    uint64_t mem, src;    /* initial memory, rs2 */
    uint64_t want_mem;    /* memory afterwards (low 32 bits for .w) */
    uint64_t want_rd;     /* rd: the old value, sign-extended for .w */
};

static void t_amo_ops(void)
{
    rvt_begin("amo");
    const struct amo_case c[] = {
        { "amoswap.w", AMO_SWAP, true, 0x80000000, 0x112345678ull, 0x12345678, 0xffffffff80000000ull },
        { "amoadd.w", AMO_ADD, true, 0xffffffff, 1, 0, ALL1 },
        { "amoadd.w no carry out", AMO_ADD, true, 0x80000000, 0x80000000, 0, 0xffffffff80000000ull },
        { "amoxor.w", AMO_XOR, true, 0xf0f0f0f0, 0xff, 0xf0f0f00f, 0xfffffffff0f0f0f0ull },
        { "amoand.w", AMO_AND, true, 0x7fffffff, 0x80000001, 1, 0x7fffffff },
        { "amoor.w", AMO_OR, true, 1, 0x80000000, 0x80000001, 1 },
        { "amomin.w -1 vs 1", AMO_MIN, true, 0xffffffff, 1, 0xffffffff, ALL1 },
        { "amomin.w 5 vs INT32_MIN", AMO_MIN, true, 5, 0x80000000, 0x80000000, 5 },
        { "amomin.w ignores upper rs2", AMO_MIN, true, 5, 0xffffffff00000003ull, 3, 5 },
        { "amomax.w -1 vs 1", AMO_MAX, true, 0xffffffff, 1, 1, ALL1 },
        { "amomax.w INT32_MIN vs -1", AMO_MAX, true, 0x80000000, 0xffffffff, 0xffffffff,
          0xffffffff80000000ull },
        { "amominu.w -1 vs 1", AMO_MINU, true, 0xffffffff, 1, 1, ALL1 },
        { "amominu.w ignores upper rs2", AMO_MINU, true, 7, 0xffffffff00000000ull, 0, 7 },
        { "amomaxu.w -1 vs 1", AMO_MAXU, true, 0xffffffff, 1, 0xffffffff, ALL1 },
        { "amomaxu.w ignores upper rs2", AMO_MAXU, true, 1, 0x100000000ull, 1, 1 },
        { "amoswap.d", AMO_SWAP, false, 0x8000000000000001ull, 42, 42, 0x8000000000000001ull },
        { "amoadd.d wraps", AMO_ADD, false, ALL1, 2, 1, ALL1 },
        { "amoxor.d", AMO_XOR, false, 0xff00ff00ff00ff00ull, ALL1, 0x00ff00ff00ff00ffull,
          0xff00ff00ff00ff00ull },
        { "amoand.d", AMO_AND, false, 0xf0f0f0f0f0f0f0f0ull, 0xffffffff00000000ull,
          0xf0f0f0f000000000ull, 0xf0f0f0f0f0f0f0f0ull },
        { "amoor.d", AMO_OR, false, 1, I64_MIN, I64_MIN | 1, 1 },
        { "amomin.d -1 vs 1", AMO_MIN, false, ALL1, 1, ALL1, ALL1 },
        { "amomin.d 0 vs min", AMO_MIN, false, 0, I64_MIN, I64_MIN, 0 },
        { "amomax.d -1 vs 1", AMO_MAX, false, ALL1, 1, 1, ALL1 },
        { "amomax.d min vs -1", AMO_MAX, false, I64_MIN, ALL1, ALL1, I64_MIN },
        { "amominu.d -1 vs 1", AMO_MINU, false, ALL1, 1, 1, ALL1 },
        { "amomaxu.d -1 vs 1", AMO_MAXU, false, ALL1, 1, ALL1, ALL1 },
        { "amomaxu.d min vs max", AMO_MAXU, false, I64_MIN, 0x7fffffffffffffffull, I64_MIN, I64_MIN },
    };
    char buf[128];
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        rvt_w64(DATA, c[i].mem);
        rvt_w64(DATA + 8, 0xa5a5a5a5a5a5a5a5ull);
        if (c[i].word)
            rvt_w32(DATA + 4, 0xa5a5a5a5);
        H->x[A1] = DATA;
        H->x[A2] = c[i].src;
        H->x[A0] = 0x5a5a;
        rvt_one(c[i].word ? AMO_W(c[i].f5, A0, A1, A2) : AMO_D(c[i].f5, A0, A1, A2));
        snprintf(buf, sizeof(buf), "%s: rd", c[i].name);
        EQN(buf, H->x[A0], c[i].want_rd);
        snprintf(buf, sizeof(buf), "%s: memory", c[i].name);
        EQN(buf, c[i].word ? rvt_r32(DATA) : rvt_r64(DATA), c[i].want_mem);
        snprintf(buf, sizeof(buf), "%s: next word untouched", c[i].name);
        EQN(buf, rvt_r32(DATA + (c[i].word ? 4 : 8)), 0xa5a5a5a5);
        snprintf(buf, sizeof(buf), "%s: pc", c[i].name);
        EQN(buf, H->pc, CODE + 4);
    }

    /* aq/rl bits set: same operation */
    rvt_w64(DATA, 10);
    H->x[A2] = 5;
    rvt_one(AMO_D(AMO_ADD, A0, A1, A2) | 3u << 25);
    EQ(H->x[A0], 10);
    EQ(rvt_r64(DATA), 15);
    /* rd = x0: memory still updated, x0 stays 0 */
    rvt_one(AMO_D(AMO_ADD, X0, A1, A2));
    EQ(H->x[0], 0);
    EQ(rvt_r64(DATA), 20);
    /* rd == rs2: the new memory value is the old register */
    H->x[A2] = 0x1111;
    rvt_one(AMO_D(AMO_SWAP, A2, A1, A2));
    EQ(H->x[A2], 20);
    EQ(rvt_r64(DATA), 0x1111);
    /* rd == rs1 */
    rvt_one(AMO_D(AMO_OR, A1, A1, X0));
    EQ(H->x[A1], 0x1111);
}

static void t_lrsc(void)
{
    rvt_begin("lr-sc");
    rvt_w64(DATA, 1);
    rvt_w64(DATA + 8, 2);
    H->x[A1] = DATA;
    H->x[A2] = 0x77;

    /* SC without a preceding LR fails and doesn't store */
    rvt_one(SC_D(A3, A1, A2));
    EQ(H->x[A3], 1);
    EQ(rvt_r64(DATA), 1);

    /* LR then SC: success (rd = 0) and the store happens */
    rvt_org(CODE);
    rvt_emit(LR_D(A0, A1));
    rvt_emit(SC_D(A3, A1, A2));
    rvt_emit(SC_D(A4, A1, A0)); /* the reservation is gone */
    H->x[A3] = H->x[A4] = 0x99;
    rvt_run_at(CODE, 3);
    EQ(H->x[A0], 1);
    EQ(H->x[A3], 0);
    EQ(rvt_r64(DATA), 0x77);
    EQ(H->x[A4], 1);

    /* SC to a different address than the LR fails, and consumes the
     * reservation */
    rvt_org(CODE);
    rvt_emit(LR_D(A0, A1));
    rvt_emit(ADDI(A5, A1, 8));
    rvt_emit(SC_D(A3, A5, A2));
    rvt_emit(SC_D(A4, A1, A2));
    H->x[A2] = 0x88;
    rvt_run_at(CODE, 4);
    EQ(H->x[A3], 1);
    EQ(rvt_r64(DATA + 8), 2);
    EQ(H->x[A4], 1);
    EQ(rvt_r64(DATA), 0x77);

    /* an intervening trap (ecall, then back) kills the reservation */
    rvt_org(CODE);
    rvt_emit(LR_D(A0, A1));
    rvt_emit(ECALL);
    rvt_emit(SC_D(A3, A1, A2));
    rvt_run_at(CODE, 2);
    EQ(H->mcause, EXC_ECALL_M);
    rvt_run_at(CODE + 8, 1);
    EQ(H->x[A3], 1);
    EQ(rvt_r64(DATA), 0x77);
    /* ... and so does an interrupt */
    rvt_run_at(CODE, 1);
    rv64_take_irq(H, IRQ_MTI);
    rvt_run_at(CODE + 8, 1);
    EQ(H->x[A3], 1);
    EQ(rvt_r64(DATA), 0x77);

    /* lr.w sign-extends; sc.w stores 4 bytes only */
    rvt_w64(DATA + 0x10, 0xa5a5a5a580000000ull);
    H->x[A1] = DATA + 0x10;
    H->x[A2] = 0xffffffff12345678ull;
    rvt_org(CODE);
    rvt_emit(LR_W(A0, A1));
    rvt_emit(SC_W(A3, A1, A2));
    rvt_run_at(CODE, 2);
    EQ(H->x[A0], 0xffffffff80000000ull);
    EQ(H->x[A3], 0);
    EQ(rvt_r64(DATA + 0x10), 0xa5a5a5a512345678ull);
}

static void t_misaligned(void)
{
    rvt_begin("misaligned");
    H->x[A0] = 0x5a5a;
    H->x[A1] = DATA + 2;
    rvt_one(LR_W(A0, A1));
    MTRAP(EXC_LOAD_MISALIGNED, CODE, DATA + 2);
    EQ(H->x[A0], 0x5a5a);
    H->x[A1] = DATA + 4;
    rvt_one(LR_D(A0, A1));
    MTRAP(EXC_LOAD_MISALIGNED, CODE, DATA + 4);
    EQ(H->x[A0], 0x5a5a);
    H->x[A1] = DATA + 2;
    rvt_one(SC_W(A0, A1, A2));
    MTRAP(EXC_STORE_MISALIGNED, CODE, DATA + 2);
    H->x[A1] = DATA + 1;
    rvt_w64(DATA, 0);
    rvt_w64(DATA + 8, 0);
    H->x[A2] = ALL1;
    rvt_one(AMO_W(AMO_ADD, A0, A1, A2));
    MTRAP(EXC_STORE_MISALIGNED, CODE, DATA + 1);
    EQ(H->x[A0], 0x5a5a);
    EQ(rvt_r64(DATA), 0);
    H->x[A1] = DATA + 4;
    rvt_one(AMO_D(AMO_SWAP, A0, A1, A2));
    MTRAP(EXC_STORE_MISALIGNED, CODE, DATA + 4);
    EQ(rvt_r64(DATA), 0);
    EQ(rvt_r64(DATA + 8), 0);
}

/* Sv39 in S-mode: code identity-mapped, VA_RO read-only, VA_RW read-write,
 * VA_NONE invalid. */
#define VA_RO 0x200000ull
#define VA_RW 0x201000ull
#define VA_NONE 0x202000ull

static uint64_t pte_rw;

static void enter_sv39(void)
{
    uint64_t root = rvt_pt_alloc();
    rvt_map(root, 3, CODE, CODE, 0, PTE_V | PTE_R | PTE_X | PTE_A);
    rvt_map(root, 3, VA_RO, DATA, 0, PTE_V | PTE_R | PTE_A);
    pte_rw = rvt_map(root, 3, VA_RW, DATA + 0x1000, 0, PTE_V | PTE_R | PTE_W | PTE_A);
    rvt_map(root, 3, VA_NONE, DATA + 0x2000, 0, 0);
    rvt_set_satp(rvt_satp(SATP_SV39, root));
    rvt_set_priv(PRV_S);
}

static void t_paged(void)
{
    rvt_begin("amo-paged");
    rvt_w64(DATA, 100);
    rvt_w64(DATA + 0x1000, 200);
    enter_sv39();
    H->x[A0] = 0x5a5a;
    H->x[A2] = 1;

    /* AMO to a read-only page: store page fault, nothing written */
    H->x[A1] = VA_RO;
    rvt_one(AMO_W(AMO_ADD, A0, A1, A2));
    MTRAP(EXC_STORE_PAGE, CODE, VA_RO);
    EQ(H->x[A0], 0x5a5a);
    EQ(rvt_r64(DATA), 100);

    /* LR works on a read-only page; the SC holding the reservation faults */
    rvt_set_priv(PRV_S);
    rvt_org(CODE);
    rvt_emit(LR_D(A0, A1));
    rvt_emit(SC_D(A3, A1, A2));
    H->x[A3] = 0x99;
    rvt_run_at(CODE, 2);
    EQ(H->x[A0], 100);
    MTRAP(EXC_STORE_PAGE, CODE + 4, VA_RO);
    EQ(H->x[A3], 0x99);
    EQ(rvt_r64(DATA), 100);

    /* AMO through a read-write page works and sets D */
    rvt_set_priv(PRV_S);
    H->x[A1] = VA_RW;
    H->x[A2] = 5;
    CHECK(!(rvt_r64(pte_rw) & PTE_D));
    rvt_one(AMO_D(AMO_ADD, A0, A1, A2));
    EQ(H->x[A0], 200);
    EQ(rvt_r64(DATA + 0x1000), 205);
    EQ(H->priv, PRV_S);
    CHECK(rvt_r64(pte_rw) & PTE_D);

    /* invalid page: AMO -> store page fault, LR -> load page fault */
    H->x[A1] = VA_NONE;
    rvt_one(AMO_W(AMO_OR, A0, A1, A2));
    MTRAP(EXC_STORE_PAGE, CODE, VA_NONE);
    rvt_set_priv(PRV_S);
    rvt_one(LR_W(A0, A1));
    MTRAP(EXC_LOAD_PAGE, CODE, VA_NONE);
}

static void t_device(void)
{
    rvt_begin("amo-device");
    /* no atomics on device memory or where nothing exists: access fault */
    H->x[A1] = MMIO_BASE;
    H->x[A2] = 1;
    rvt_one(AMO_W(AMO_ADD, A0, A1, A2));
    MTRAP(EXC_STORE_ACCESS, CODE, MMIO_BASE);
    EQ(rvt.dev.writes, 0);
    H->x[A1] = NOWHERE;
    rvt_one(AMO_D(AMO_SWAP, A0, A1, A2));
    MTRAP(EXC_STORE_ACCESS, CODE, NOWHERE);
}

/* A spin-wait (many PAUSE hints in one slice) ends the slice with
 * h->yield set, so the hart thread gives its host CPU away; fences don't. */
static void t_pause_yield(void)
{
    rvt_begin("pause-yield");
    for (int i = 0; i < 100; i++)
        rvt_emit(0x0330000f);           /* fence rw, rw */
    for (int i = 0; i < 100; i++)
        rvt_emit(0x0100000f);           /* pause */
    H->pc = CODE;
    uint64_t n = rv64_exec(H, 1000);
    EQ(n, 100 + 64);
    EQ(H->pc, CODE + 4 * (100 + 64));
    EQ(H->yield, 1);
    /* the count starts again with each slice (the hart loop resets it,
     * so that the JIT's single-instruction interpreter calls count too) */
    H->yield = false;
    H->pauses = 0;
    n = rv64_exec(H, 30);
    EQ(n, 30);
    EQ(H->yield, 0);
    if (H->jit) {               /* the JIT leaves PAUSE to the interpreter */
        rv64_jit_flush(H);
        H->pc = CODE;
        H->pauses = 0;
        H->yield = false;
        n = rv64_jit_exec(H, 1000);
        EQ(n, 100 + 64);
        EQ(H->pc, CODE + 4 * (100 + 64));
        EQ(H->yield, 1);
    }
}

int main(void)
{
    rvt_init();
    t_pause_yield();
    t_amo_ops();
    t_lrsc();
    t_misaligned();
    t_paged();
    t_device();
    return rvt_done("test_rv64_atomic");
}
