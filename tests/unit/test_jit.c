/* The rv64 JIT's own cases (the rv64 instruction tests also run under it,
 * see tests/test_unit.py): invalidation of translated code by guest stores
 * (+ fence.i, and into the running TB without it) and by device DMA (gmem's write hook), chained loops with an
 * exact instruction budget, and a CPU-bound loop under the interpreter and
 * the JIT with equal results (its MIPS printed, not asserted). */
#include <time.h>

#include "rv64_harness.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run exactly n instructions under the JIT without the harness's flush. */
static uint64_t jit_run(uint64_t n)
{
    uint64_t done = 0;
    while (done < n) {
        uint64_t r = rv64_jit_exec(H, n - done);
        if (!r)
            break;
        done += r;
    }
    return done;
}

/* A store rewrites an instruction of the running loop, fence.i, the loop
 * comes back: the new instruction runs. */
static void test_self_modifying(void)
{
    rvt_begin("self-modifying");
    rvt_emit(ADDI(10, 10, 1));              /* CODE+0: rewritten below */
    rvt_emit(SW(29, 30, 0));                /* *(x30 = CODE) = x29 */
    rvt_emit(0x0000100f);                   /* fence.i */
    rvt_emit(JAL(0, -12));
    H->x[29] = ADDI(10, 10, 100);
    H->x[30] = CODE;
    EQ(jit_run(5), 5);                      /* addi(+1) sw fence.i jal addi(+100) */
    EQ(H->x[10], 101);
    EQ(H->pc, CODE + 4);
    EQ(jit_run(4), 4);                      /* sw fence.i jal addi(+100) */
    EQ(H->x[10], 201);
    EQ(H->instret, 9);
}

/* A store rewrites the next instruction of its own TB, without fence.i
 * (found by fuzz_rv64_jit): the JIT ends the TB after the store, so the
 * new instruction runs, as under the interpreter (which always fetches the
 * new bytes). */
static void test_store_into_own_tb(void)
{
    rvt_begin("store-into-own-tb");
    rvt_emit(SW(29, 30, 8));                /* *(x30 + 8 = CODE + 8) = x29 */
    rvt_emit(ADDI(10, 10, 1));
    rvt_emit(ADDI(10, 10, 1));              /* CODE+8: rewritten by the store */
    rvt_emit(JAL(0, -12));
    H->x[29] = ADDI(10, 10, 100);
    H->x[30] = CODE + 0x1000;               /* first round: a data page */
    rv64_jit_flush(H);
    EQ(jit_run(4), 4);                      /* one translated round */
    EQ(H->x[10], 2);
    H->x[30] = CODE;
    EQ(jit_run(4), 4);                      /* sw, addi +1, addi +100 (new), jal */
    EQ(H->x[10], 103);
    EQ(rvt_r32(CODE + 8), ADDI(10, 10, 100));
    EQ(H->pc, CODE);
}

/* A device writes (DMA) over code that ran: the next run sees the new code. */
static void test_dma(void)
{
    rvt_begin("dma");
    rvt_emit(ADDI(10, 10, 1));
    rvt_emit(JAL(0, -4));
    rv64_jit_flush(H);
    EQ(jit_run(4), 4);
    EQ(H->x[10], 2);
    rvt_w32(CODE, ADDI(10, 10, 7));         /* behind the CPU's back ... */
    EQ(jit_run(2), 2);                      /* ... not seen yet (no mark) */
    EQ(H->x[10], 3);
    gmem_mark_dirty(&rvt.vm.mem, CODE, 4);  /* what a device does after DMA */
    EQ(jit_run(2), 2);
    EQ(H->x[10], 10);
}

/* A chained loop stops exactly at the budget, mid-TB too. */
static void test_budget(void)
{
    rvt_begin("budget");
    rvt_emit(ADDI(10, 10, 1));
    rvt_emit(ADDI(11, 11, 2));
    rvt_emit(BNE(10, 12, -8));
    rvt_emit(ADDI(13, 0, 5));
    H->x[12] = 1000;
    rv64_jit_flush(H);
    EQ(jit_run(301), 301);                  /* 100 iterations and one addi */
    EQ(H->x[10], 101);
    EQ(H->x[11], 200);
    EQ(H->pc, CODE + 4);
    EQ(H->instret, 301);
    EQ(jit_run(3000), 3000);                /* to the end: 2700 more in the loop */
    EQ(H->x[10], 1000);
    EQ(H->x[13], 5);
}

/* The loop of the MIPS figure: ALU, a store and a load, a branch. */
static void emit_loop(void)
{
    rvt_emit(ADDI(6, 6, 3));
    rvt_emit(XOR(7, 6, 5));
    rvt_emit(SD(7, 8, 0));
    rvt_emit(LD(28, 8, 0));
    rvt_emit(ADD(6, 6, 28));
    rvt_emit(ADDI(5, 5, -1));
    rvt_emit(BNE(5, 0, -24));
}

static void test_mips(void)
{
    const uint64_t iters = 4000000, n = 7 * iters;
    uint64_t x6[2];
    double t[2];
    for (int jit = 0; jit < 2; jit++) {
        rvt_begin(jit ? "mips-jit" : "mips-interp");
        emit_loop();
        H->x[5] = iters;
        H->x[8] = DATA;
        rv64_jit_flush(H);
        double t0 = now_s();
        uint64_t done = 0;
        while (done < n) {
            uint64_t r = jit ? rv64_jit_exec(H, n - done) : rv64_exec(H, n - done);
            if (!r)
                break;
            done += r;
        }
        t[jit] = now_s() - t0;
        EQ(done, n);
        EQ(H->x[5], 0);
        EQ(H->pc, CODE + 28);
        x6[jit] = H->x[6];
    }
    EQ(x6[1], x6[0]);
    printf("loop of 7 instructions, %llu M instructions: interpreter %.0f MIPS, JIT %.0f MIPS\n",
           (unsigned long long)(n / 1000000), n / t[0] / 1e6, n / t[1] / 1e6);
}

int main(void)
{
    rvt_init();
    struct err e;
    if (!RV64_JIT_AVAILABLE) {
        printf("test_jit: no JIT on this host: nothing to test\n");
        return 0;
    }
    if (rv64_jit_init(rvt.m, &e) < 0) {
        fprintf(stderr, "rv64_jit_init: %s\n", e.msg);
        return 1;
    }
    test_self_modifying();
    test_store_into_own_tb();
    test_dma();
    test_budget();
    test_mips();
    return rvt_done("test_jit");
}
