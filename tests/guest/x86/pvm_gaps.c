/* pvm_gaps: the instructions a PVM host cannot emulate in guest kernel mode
 * and Petrel works around (HOST-NOTES.md), executed at CPL0 with their
 * architectural results checked: int3 delivers #BP with RIP after the int3;
 * fwait completes; ldmxcsr loads MXCSR, through several addressing forms
 * (rsp+disp8 as in Linux's kernel_fpu_begin, a base register, base+index
 * with scale and disp32, RIP-relative, an r8-r15 base with REX).  On other
 * hosts (real VT-x/AMD-V, QEMU) they simply run natively. */
#include "rt.h"

static volatile unsigned bp_hits;
static volatile uint64_t bp_rip;

static void on_bp(struct trapframe *tf)
{
    bp_hits++;
    bp_rip = tf->rip;
}

static uint32_t get_mxcsr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static uint32_t rip_rel_mxcsr = 0x1f80 | 0x6000; /* RZ */

void test_main(void)
{
    set_handler(3, on_bp);
    uint64_t after;
    __asm__ volatile("lea 1f(%%rip), %0\n\tint3\n1:" : "=r"(after));
    CHECK_EQ(bp_hits, 1);
    CHECK_EQ(bp_rip, after);

    __asm__ volatile("fwait");
    CHECK(1); /* reached: fwait completed */

    /* ldmxcsr 4(%rsp), as kernel_fpu_begin() does */
    uint32_t want = 0x1f80 | 0x2000; /* round down */
    __asm__ volatile("sub $16, %%rsp\n\tmovl %0, 4(%%rsp)\n\tldmxcsr 4(%%rsp)\n\tadd $16, %%rsp"
                     :: "r"(want) : "memory");
    CHECK_EQ(get_mxcsr(), want);

    /* base register */
    uint32_t v1 = 0x1f80 | 0x4000; /* round up */
    __asm__ volatile("ldmxcsr (%0)" :: "r"(&v1) : "memory");
    CHECK_EQ(get_mxcsr(), v1);

    /* base + index*4 + disp32 */
    uint32_t arr[80] = { 0 };
    arr[70] = 0x1f80 | 0x0040; /* DAZ */
    uint64_t idx = 2;
    __asm__ volatile("ldmxcsr 272(%0,%1,4)" :: "r"(arr), "r"(idx) : "memory");
    CHECK_EQ(get_mxcsr(), arr[70]);

    /* RIP-relative */
    __asm__ volatile("ldmxcsr %c0(%%rip)" :: "i"(&rip_rel_mxcsr) : "memory");
    CHECK_EQ(get_mxcsr(), rip_rel_mxcsr);

    /* REX.B: r9 as the base */
    uint32_t v2 = 0x1f80;
    __asm__ volatile("mov %0, %%r9\n\tldmxcsr 0(%%r9)" :: "r"(&v2) : "r9", "memory");
    CHECK_EQ(get_mxcsr(), v2);
    pass();
}
