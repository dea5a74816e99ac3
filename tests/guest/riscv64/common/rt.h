/* Petrel RISC-V guest test runtime: shared declarations.
 *
 * Every test program is linked with start.S (entry, stacks, trap vectors,
 * run_lower), helpers.S (trap-safe leaf load/store/jump helpers) and rt.c
 * (console, printf, pass/fail, trap dispatch).  A program provides
 * `int main(void)` (returning 0 means PASS) and is built with
 * -DTEST_NAME="\"name\"".
 */
#ifndef RT_H
#define RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;
typedef int32_t i32;
typedef uint16_t u16;
typedef uint8_t u8;

#ifndef TEST_NAME
#define TEST_NAME "unnamed"
#endif

/* ---- board (QEMU virt compatible) ---- */
#define UART_BASE 0x10000000UL
#define UART_IRQ 10
#define TEST_DEV_BASE 0x100000UL
#define CLINT_BASE 0x2000000UL
#define CLINT_MSIP(h) (CLINT_BASE + 4UL * (h))
#define CLINT_MTIMECMP(h) (CLINT_BASE + 0x4000UL + 8UL * (h))
#define CLINT_MTIME (CLINT_BASE + 0xBFF8UL)
#define PLIC_BASE 0xc000000UL
#define PLIC_PRIORITY(irq) (PLIC_BASE + 4UL * (irq))
#define PLIC_PENDING(irq) (PLIC_BASE + 0x1000UL + 4UL * ((irq) / 32))
#define PLIC_ENABLE(ctx, irq) (PLIC_BASE + 0x2000UL + 0x80UL * (ctx) + 4UL * ((irq) / 32))
#define PLIC_THRESHOLD(ctx) (PLIC_BASE + 0x200000UL + 0x1000UL * (ctx))
#define PLIC_CLAIM(ctx) (PLIC_BASE + 0x200004UL + 0x1000UL * (ctx))
#define TIMEBASE_HZ 10000000UL
#define RAM_BASE 0x80000000UL

/* ---- CSR bits ---- */
#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_MPP_S (1UL << 11)
#define MSTATUS_MPP_M (3UL << 11)
#define MSTATUS_FS (3UL << 13)
#define MSTATUS_FS_OFF (0UL << 13)
#define MSTATUS_FS_INITIAL (1UL << 13)
#define MSTATUS_FS_CLEAN (2UL << 13)
#define MSTATUS_FS_DIRTY (3UL << 13)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM (1UL << 18)
#define MSTATUS_MXR (1UL << 19)
#define MSTATUS_TVM (1UL << 20)
#define MSTATUS_TW (1UL << 21)
#define MSTATUS_TSR (1UL << 22)
#define MSTATUS_SD (1UL << 63)

#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1UL << IRQ_SSI)
#define MIP_MSIP (1UL << IRQ_MSI)
#define MIP_STIP (1UL << IRQ_STI)
#define MIP_MTIP (1UL << IRQ_MTI)
#define MIP_SEIP (1UL << IRQ_SEI)
#define MIP_MEIP (1UL << IRQ_MEI)
#define CAUSE_IRQ (1UL << 63)

/* exception causes */
#define EXC_INSN_MISALIGNED 0
#define EXC_INSN_ACCESS 1
#define EXC_ILLEGAL 2
#define EXC_BREAKPOINT 3
#define EXC_LOAD_MISALIGNED 4
#define EXC_LOAD_ACCESS 5
#define EXC_STORE_MISALIGNED 6
#define EXC_STORE_ACCESS 7
#define EXC_ECALL_U 8
#define EXC_ECALL_S 9
#define EXC_ECALL_M 11
#define EXC_INSN_PAGE 12
#define EXC_LOAD_PAGE 13
#define EXC_STORE_PAGE 15

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* ---- CSR access ---- */
#define csr_read(csr)                                                  \
    ({                                                                 \
        u64 __v;                                                       \
        __asm__ volatile("csrr %0, " #csr : "=r"(__v) : : "memory");   \
        __v;                                                           \
    })
#define csr_write(csr, val) \
    __asm__ volatile("csrw " #csr ", %0" : : "r"((u64)(val)) : "memory")
#define csr_set(csr, val) \
    __asm__ volatile("csrs " #csr ", %0" : : "r"((u64)(val)) : "memory")
#define csr_clear(csr, val) \
    __asm__ volatile("csrc " #csr ", %0" : : "r"((u64)(val)) : "memory")
#define csr_swap(csr, val)                                                           \
    ({                                                                               \
        u64 __v;                                                                     \
        __asm__ volatile("csrrw %0, " #csr ", %1" : "=r"(__v) : "r"((u64)(val)) : "memory"); \
        __v;                                                                         \
    })

/* Hide a value from the optimizer (forces it into a register at run time). */
#define OPQ(x)                                  \
    ({                                          \
        __typeof__(x) __o = (x);                \
        __asm__ volatile("" : "+r"(__o));       \
        __o;                                    \
    })

static inline void mmio_w32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline u32 mmio_r32(u64 a) { return *(volatile u32 *)a; }
static inline void mmio_w64(u64 a, u64 v) { *(volatile u64 *)a = v; }
static inline u64 mmio_r64(u64 a) { return *(volatile u64 *)a; }
static inline void mmio_w8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline u8 mmio_r8(u64 a) { return *(volatile u8 *)a; }

static inline u64 mtime(void) { return mmio_r64(CLINT_MTIME); }
static inline void set_mtimecmp(unsigned hart, u64 v) { mmio_w64(CLINT_MTIMECMP(hart), v); }
static inline void fence_i(void) { __asm__ volatile("fence.i" ::: "memory"); }
static inline void sfence_vma(void) { __asm__ volatile("sfence.vma zero, zero" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
/* atomic increment with an LR/SC retry loop (smp, litmus) */
static inline void lrsc_inc(volatile u64 *p)
{
    u64 t, fail;
    __asm__ volatile("1: lr.d %0, (%2)\n\t"
                     "addi %0, %0, 1\n\t"
                     "sc.d %1, %0, (%2)\n\t"
                     "bnez %1, 1b"
                     : "=&r"(t), "=&r"(fail)
                     : "r"(p)
                     : "memory");
}

/* ---- console / results ---- */
void uart_putc(char c);
void uart_puts(const char *s);
void put_hex(u64 v);
void kprintf(const char *fmt, ...);
void kvprintf(const char *fmt, va_list ap);
__attribute__((noreturn)) void pass(void);
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);
__attribute__((noreturn)) void poweroff(u32 code);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

extern volatile u64 checks_passed;
__attribute__((noreturn)) void check_failed(const char *file, int line, const char *expr);
__attribute__((noreturn)) void check_failed_eq(const char *file, int line, const char *ea,
                                               const char *eb, u64 a, u64 b, const char *op);

#define CHECK(cond)                                         \
    do {                                                    \
        if (!(cond))                                        \
            check_failed(__FILE_NAME__, __LINE__, #cond);        \
        checks_passed++;                                    \
    } while (0)

#define CHECK_OP_(a, b, op, sa, sb)                                               \
    do {                                                                          \
        u64 _chk_a_ = (u64)(a), _chk_b_ = (u64)(b);                               \
        if (!(_chk_a_ op _chk_b_))                                                \
            check_failed_eq(__FILE_NAME__, __LINE__, sa, sb, _chk_a_, _chk_b_, #op); \
        checks_passed++;                                                          \
    } while (0)
/* the operands are stringified here, before macro expansion */
#define CHECK_EQ(a, b) CHECK_OP_(a, b, ==, #a, #b)
#define CHECK_NE(a, b) CHECK_OP_(a, b, !=, #a, #b)
/* unsigned comparisons */
#define CHECK_GE(a, b) CHECK_OP_(a, b, >=, #a, #b)
#define CHECK_GT(a, b) CHECK_OP_(a, b, >, #a, #b)
#define CHECK_LE(a, b) CHECK_OP_(a, b, <=, #a, #b)
#define CHECK_LT(a, b) CHECK_OP_(a, b, <, #a, #b)

/* Alternatives accepted only because QEMU 7.2 deviates from the spec there.
 * Build with STRICT=1 (-DSTRICT_SPEC) to reject them, e.g. for Petrel. */
#ifdef STRICT_SPEC
#define QEMU_QUIRK(cond) 0
#else
#define QEMU_QUIRK(cond) (cond)
#endif

/* ---- traps ---- */
struct trap_frame {
    u64 x[32]; /* x[2] = interrupted sp */
    u64 epc, cause, tval, status;
};

enum { TRAP_NONE = 0, TRAP_SKIP = 1, TRAP_RET = 2 };

struct trap_rec {
    int armed;  /* TRAP_SKIP: resume after the faulting instruction (epc must be readable
                   at the same address by the handler); TRAP_RET: resume at ra (the
                   faulting instruction must sit in a leaf function, see helpers.S) */
    int taken;  /* number of synchronous traps recorded since arming */
    int level;  /* 'M' or 'S': the handler that took it */
    u64 cause, epc, tval, status;
};
extern volatile struct trap_rec trap_rec;

/* Expect exactly one synchronous trap (any cause) in the next operation. */
void trap_expect(void);     /* recover by skipping the instruction */
void trap_expect_ret(void); /* recover by returning to ra */
void trap_disarm(void);

/* Hooks run before the default handling; return nonzero if they handled the trap. */
typedef int (*trap_hook_t)(struct trap_frame *f);
extern trap_hook_t volatile m_hook;
extern trap_hook_t volatile s_hook;
extern volatile u64 m_trap_count, s_trap_count;

/* Run fn(arg) in a lower privilege mode (PRV_U or PRV_S) and return its result.
 * delta is subtracted from fn, the stack pointer and the return trampoline
 * (for running at an alias virtual address).  Interrupt enables: mstatus.MPIE
 * is cleared, so M-mode interrupts stay disabled after returning to M. */
u64 run_lower(int mode, void *fn, u64 arg, u64 delta);
extern volatile int lower_exit_mode; /* PRV_U or PRV_S: mode that returned */
#define RUNLOWER_MAGIC 0x52554e4cUL  /* in a7 for the returning ecall */
void lower_return(void);            /* trampoline (asm) */
extern char lower_return_ecall[];   /* its ecall instruction */
extern u64 s_trap_stack_top;

/* trap-safe leaf helpers (helpers.S) */
u64 ld64(u64 a);
u64 ld32(u64 a);  /* lw: sign-extended */
u64 ld32u(u64 a); /* lwu */
u64 ld16(u64 a);
u64 ld16u(u64 a);
u64 ld8(u64 a);
u64 ld8u(u64 a);
void st64(u64 a, u64 v);
void st32(u64 a, u64 v);
void st16(u64 a, u64 v);
void st8(u64 a, u64 v);
u64 lr_w(u64 a);
u64 lr_d(u64 a);
u64 sc_w(u64 a, u64 v);
u64 sc_d(u64 a, u64 v);
u64 amoadd_w(u64 a, u64 v);
u64 amoadd_d(u64 a, u64 v);
u64 call_at(u64 a); /* jr a0: the target must be a function returning via ra */
extern char ld64_insn[], st64_insn[], call_at_insn[];

/* per-program hooks */
int main(void);
void secondary_main(u64 hartid); /* weak default: park */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
