/* Petrel RISC-V guest test runtime: console, printf, pass/fail, trap dispatch. */
#include "rt.h"

volatile u64 checks_passed;
volatile struct trap_rec trap_rec;
trap_hook_t volatile m_hook;
trap_hook_t volatile s_hook;
volatile u64 m_trap_count, s_trap_count;
volatile int lower_exit_mode;
u64 s_trap_stack_top; /* set by start.S */
extern void run_lower_resume(void);

/* ------------------------------------------------------------ console */
#define UART_THR 0
#define UART_LSR 5
#define LSR_THRE 0x20

void uart_putc(char c)
{
    if (c == '\n')
        uart_putc('\r');
    while (!(mmio_r8(UART_BASE + UART_LSR) & LSR_THRE))
        ;
    mmio_w8(UART_BASE + UART_THR, (u8)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void put_hex(u64 v)
{
    uart_puts("0x");
    for (int i = 60; i >= 0; i -= 4)
        uart_putc("0123456789abcdef"[(v >> i) & 15]);
}

static void put_num(u64 v, unsigned base, int neg, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        buf[n++] = '-';
    while (width-- > n)
        uart_putc(pad);
    while (n)
        uart_putc(buf[--n]);
}

/* %[0][width][l|ll|z](d|i|u|x|p|s|c|%) */
void kvprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            uart_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            i64 v = lng ? va_arg(ap, i64) : va_arg(ap, int);
            put_num(v < 0 ? -(u64)v : (u64)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_num(lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 16, 0, width, pad);
            break;
        case 'p':
            put_hex((u64)va_arg(ap, void *));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            uart_puts(s ? s : "(null)");
            break;
        }
        case 'c':
            uart_putc((char)va_arg(ap, int));
            break;
        case '%':
            uart_putc('%');
            break;
        case 0:
            return;
        default:
            uart_putc('%');
            uart_putc(*fmt);
        }
    }
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ results */
void poweroff(u32 code)
{
    /* wait for the UART to drain before powering off */
    for (int i = 0; i < 1000000 && !(mmio_r8(UART_BASE + UART_LSR) & 0x40); i++)
        ;
    mmio_w32(TEST_DEV_BASE, code);
    for (;;)
        __asm__ volatile("wfi");
}

void pass(void)
{
    kprintf("%s: %lu checks passed\nPASS %s\n", TEST_NAME, (u64)checks_passed, TEST_NAME);
    poweroff(0x5555);
}

void fail(const char *fmt, ...)
{
    va_list ap;
    kprintf("\nFAIL %s: ", TEST_NAME);
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
    kprintf("\n");
    poweroff((1u << 16) | 0x3333);
}

void check_failed(const char *file, int line, const char *expr)
{
    fail("%s:%d: CHECK(%s) failed (after %lu passed checks)", file, line, expr,
         (u64)checks_passed);
}

void check_failed_eq(const char *file, int line, const char *ea, const char *eb, u64 a, u64 b,
                     const char *op)
{
    kprintf("\nFAIL %s: %s:%d: CHECK(%s %s %s) failed: ", TEST_NAME, file, line, ea, op, eb);
    put_hex(a);
    kprintf(" %s ", op);
    put_hex(b);
    kprintf(" is false (after %lu passed checks)\n", (u64)checks_passed);
    poweroff((1u << 16) | 0x3333);
}

/* ------------------------------------------------------------ libc bits */
void *memset(void *d, int c, size_t n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}

/* ------------------------------------------------------------ traps */
void trap_expect(void)
{
    trap_rec.taken = 0;
    trap_rec.cause = trap_rec.epc = trap_rec.tval = trap_rec.status = ~0UL;
    trap_rec.level = 0;
    barrier();
    trap_rec.armed = TRAP_SKIP;
    barrier();
}

void trap_expect_ret(void)
{
    trap_expect();
    trap_rec.armed = TRAP_RET;
    barrier();
}

void trap_disarm(void)
{
    trap_rec.armed = TRAP_NONE;
    barrier();
}

static int insn_len(u64 epc)
{
    u16 h = *(volatile u16 *)epc;
    return (h & 3) == 3 ? 4 : 2;
}

static int record_expected(struct trap_frame *f, int level)
{
    if (f->cause >> 63)
        return 0;
    int mode = trap_rec.armed;
    if (mode == TRAP_NONE)
        return 0;
    trap_rec.taken++;
    trap_rec.level = level;
    trap_rec.cause = f->cause;
    trap_rec.epc = f->epc;
    trap_rec.tval = f->tval;
    trap_rec.status = f->status;
    trap_rec.armed = TRAP_NONE;
    if (mode == TRAP_SKIP)
        f->epc += insn_len(f->epc);
    else
        f->epc = f->x[1];
    return 1;
}

static const char *cause_name(u64 c)
{
    static const char *const exc[16] = {
        "insn misaligned", "insn access fault", "illegal insn", "breakpoint",
        "load misaligned", "load access fault", "store misaligned", "store access fault",
        "ecall from U", "ecall from S", "?", "ecall from M",
        "insn page fault", "load page fault", "?", "store page fault",
    };
    if (c >> 63)
        return "interrupt";
    return c < 16 ? exc[c] : "?";
}

__attribute__((noreturn)) static void unexpected(struct trap_frame *f, int level)
{
    kprintf("\nFAIL %s: unexpected trap in %c-mode handler: cause=", TEST_NAME, level);
    put_hex(f->cause);
    kprintf(" (%s) epc=", cause_name(f->cause));
    put_hex(f->epc);
    kprintf(" tval=");
    put_hex(f->tval);
    kprintf(" status=");
    put_hex(f->status);
    kprintf(" ra=");
    put_hex(f->x[1]);
    kprintf("\n");
    poweroff((1u << 16) | 0x3333);
}

void m_trap_handler(struct trap_frame *f)
{
    m_trap_count++;
    if ((f->cause == EXC_ECALL_U || f->cause == EXC_ECALL_S) && f->x[17] == RUNLOWER_MAGIC) {
        lower_exit_mode = (int)(f->cause - EXC_ECALL_U);
        f->epc = (u64)run_lower_resume;
        f->status = (f->status & ~(MSTATUS_MPP | MSTATUS_MPIE)) | MSTATUS_MPP_M;
        /* the S handler may have been abandoned mid-trap: reset its stack */
        csr_write(sscratch, s_trap_stack_top);
        return;
    }
    trap_hook_t h = m_hook;
    if (h && h(f))
        return;
    if (record_expected(f, 'M'))
        return;
    unexpected(f, 'M');
}

void s_trap_handler(struct trap_frame *f)
{
    s_trap_count++;
    if (f->cause == EXC_ECALL_U && f->x[17] == RUNLOWER_MAGIC) {
        /* delegated return-from-U: forward to M as an ecall from S */
        register u64 a0 __asm__("a0") = f->x[10];
        register u64 a7 __asm__("a7") = RUNLOWER_MAGIC;
        __asm__ volatile("ecall" : : "r"(a0), "r"(a7) : "memory");
        unexpected(f, 'S');
    }
    trap_hook_t h = s_hook;
    if (h && h(f))
        return;
    if (record_expected(f, 'S'))
        return;
    unexpected(f, 'S');
}

/* ------------------------------------------------------------ entry */
void rt_main(void)
{
    set_mtimecmp(0, ~0UL);
    int r = main();
    if (r == 0)
        pass();
    fail("main returned %d", r);
}

__attribute__((weak)) void secondary_main(u64 hartid)
{
    (void)hartid;
    for (;;)
        __asm__ volatile("wfi");
}

void rt_secondary(u64 hartid)
{
    secondary_main(hartid);
    for (;;)
        __asm__ volatile("wfi");
}
