/* compute: a CPL3 integer loop, the way the kvm engine's guests should
 * spend their time.  The program drops to ring 3 (IRETQ to user code and
 * data segments, TSS.RSP0 for the way back), runs LCG_ITERS steps of an
 * LCG timed with RDTSC, and returns to ring 0 through a #GP (HLT at CPL3;
 * see user_exit).  Checks: the code ran at CPL3 and the result equals the
 * jump-ahead value computed at CPL0; the same loop, 20000 steps at CPL0,
 * is also right.  Prints
 *   compute: iterations=N cycles=C us=U result=0x...
 * which the runners divide by host_loop's cycles.  Timing never fails the
 * test.  Also reports (no check) how INT 0x80 from CPL3 arrives. */
#include "lcg.h"
#include "rt.h"

static volatile struct {
    uint64_t t0, t1, x, cs;
} ures;
static uint8_t ustack[16384] __attribute__((aligned(16)));

static void __attribute__((noinline)) user_loop(uint64_t n) {
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    ures.cs = cs;
    uint64_t t0 = rdtsc();
    uint64_t x = lcg_run(LCG_SEED, n);
    uint64_t t1 = rdtsc();
    ures.t0 = t0;
    ures.t1 = t1;
    ures.x = x;
    user_exit(x);
}

static void user_int80(uint64_t v) {
    __asm__ volatile("int $0x80" ::"a"(v));
    user_exit(0);
}
static volatile uint64_t probe_vec;
static void probe_ud(struct trapframe *tf) {
    extern void resume_kernel(uint64_t v) __attribute__((noreturn));
    if ((tf->cs & 3) != 3) fail("#UD at CPL0, rip 0x%lx", tf->rip);
    probe_vec = tf->vector;
    resume_kernel(0xdead);
}

void test_main(void) {
    tsc_calibrate();
    printf("compute: TSC %lu kHz\n", tsc_hz / 1000);
    uint64_t want = lcg_jump(LCG_SEED, LCG_ITERS);
    uint64_t ustack_top = (uint64_t)ustack + sizeof ustack;

    /* ---- the CPL3 loop ---- */
    uint64_t got = enter_user(user_loop, ustack_top, LCG_ITERS);
    uint64_t cycles = ures.t1 - ures.t0;
    printf("compute: iterations=%llu cycles=%lu us=%lu result=0x%016lx\n", LCG_ITERS, cycles,
           tsc_to_us(cycles), ures.x);
    CHECK_EQ(ures.cs & 3, 3);
    CHECK_EQ(got, ures.x);
    CHECK_EQ(ures.x, want + BREAK_ADJ);
    CHECK_GT(ures.t1, ures.t0);
    CHECK_EQ(read_cs(), SEL_KCODE64);

    /* ---- a short stretch of the same loop at CPL0 (emulated on PVM) ---- */
    volatile uint64_t n0 = 20000;
    uint64_t t0 = rdtsc();
    uint64_t x0 = lcg_run(LCG_SEED, n0);
    uint64_t c0 = rdtsc() - t0;
    CHECK_EQ(x0, lcg_jump(LCG_SEED, 20000));
    printf("compute: CPL0: 20000 iterations in %lu cycles (%lu cycles/iteration; CPL3: "
           "%lu.%02lu)\n",
           c0, c0 / 20000, (uint64_t)(cycles / LCG_ITERS), (uint64_t)(cycles * 100 / LCG_ITERS % 100));

    /* ---- how INT 0x80 from CPL3 arrives (information only) ---- */
    set_handler(6, probe_ud);
    probe_vec = 0x80;
    uint64_t r = enter_user(user_int80, ustack_top, 0x1234);
    set_handler(6, 0);
    if (r == 0x1234) printf("compute: int 0x80 from CPL3 reaches its DPL3 gate\n");
    else printf("compute: int 0x80 from CPL3 arrives as vector %lu, not 0x80\n", probe_vec);
    pass();
}
