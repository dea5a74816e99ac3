/* Petrel x86-64 guest test runtime: shared declarations.
 *
 * Every program runs in 64-bit mode at CPL0 with identity-mapped 4 GiB
 * (2 MiB pages, user-accessible), our own GDT/TSS/IDT, interrupts off,
 * the 8259s remapped to 0x20/0x28 and masked.  It defines
 *     void test_main(void);
 * and ends with pass() (prints "<name>: N checks passed", "PASS <name>",
 * writes 0 to the debug-exit port 0x501) or fail() ("FAIL <name>: ...",
 * writes 1).
 *
 * Remember: guest CPL0 code is instruction-emulated on PVM hosts (a few
 * million instructions per second), so ring-0 work must stay small.
 */
#ifndef X86_RT_H
#define X86_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef TEST_NAME
#define TEST_NAME "unnamed"
#endif

/* ---- selectors of our own GDT (see long.S) ---- */
#define SEL_KCODE64 0x08
#define SEL_KDATA 0x10
#define SEL_KCODE32 0x18
#define SEL_UCODE64 0x23 /* 0x20 | RPL 3 */
#define SEL_UDATA 0x2b   /* 0x28 | RPL 3 */
#define SEL_TSS 0x30

/* ---- fixed platform addresses ---- */
#define LAPIC_BASE 0xfee00000ul
#define IOAPIC_BASE 0xfec00000ul
#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0x501
#define PIT_HZ 1193182u

/* ---- how we were entered (written by the assembly entry code) ---- */
enum entry_kind {
    ENTRY_PVH = 1,   /* PVH: 32-bit protected mode, EBX = hvm_start_info */
    ENTRY_BZ32 = 2,  /* bzImage 32-bit entry (code32_start), ESI = boot_params */
    ENTRY_BZ64 = 3,  /* bzImage 64-bit entry (+0x200), RSI = boot_params */
};

struct boot_state {           /* offsets are used by entry assembly */
    uint32_t entry;           /* 0: enum entry_kind */
    uint32_t via_setup16;     /* 4: bzImage: came through our 16-bit setup code */
    uint64_t info;            /* 8: EBX (PVH) or ESI/RSI (bzImage) */
    uint64_t cr0, cr3, cr4;   /* 16, 24, 32: at entry */
    uint64_t efer;            /* 40 */
    uint64_t rflags;          /* 48 */
    uint16_t cs, ds, es, ss;  /* 56, 58, 60, 62 */
    uint8_t gdtr[16];         /* 64: sgdt at entry (6 or 10 bytes) */
    uint64_t probe_bp;        /* 80: BZ64: first qword of boot_params read via loader's paging */
    uint64_t probe_cmdline;   /* 88: BZ64: first qword of the command line, same */
    uint16_t fs, gs;          /* 96, 98 */
    uint32_t setup16_e820_err;/* 100: 16-bit setup: 0 or the failing step */
    uint64_t data_sel_ok;     /* 104: BZ64: reloading DS/ES/SS with entry values worked */
};
extern struct boot_state boot_state;

/* ---- linker symbols ---- */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];

/* ---- port and MMIO access ---- */
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

/* A pointer to a fixed physical address (identity-mapped), hidden from
 * gcc's -Warray-bounds reasoning about constant addresses. */
static inline void *phys(uint64_t a) {
    __asm__("" : "+r"(a));
    return (void *)a;
}

static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint8_t mmio_read8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline void mmio_write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline uint64_t mmio_read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write64(uintptr_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

/* ---- CPU ---- */
static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
#define READ_CR(n) ({ uint64_t _v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(_v)); _v; })
static inline uint64_t read_rflags(void) {
    uint64_t f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f));
    return f;
}
static inline uint16_t read_cs(void) { uint16_t s; __asm__ volatile("mov %%cs, %0" : "=r"(s)); return s; }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* sti; hlt as a pair: the interrupt shadow makes it race-free */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

#define MSR_EFER 0xc0000080u
#define MSR_APIC_BASE 0x1bu
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define CR0_PE 1u
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)

/* ---- output ---- */
void putchar_serial(char c);
void puts_serial(const char *s);           /* no newline added */
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void debug_exit(uint16_t v) __attribute__((noreturn));

/* ---- verdict ---- */
extern unsigned long rt_checks;
void pass(void) __attribute__((noreturn));
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(c)                                                                   \
    do {                                                                           \
        rt_checks++;                                                               \
        if (!(c)) fail_at(__FILE_NAME__, __LINE__, "CHECK(%s) failed", #c);             \
    } while (0)
#define CHECK_MSG(c, ...)                                                          \
    do {                                                                           \
        rt_checks++;                                                               \
        if (!(c)) fail_at(__FILE_NAME__, __LINE__, __VA_ARGS__);                        \
    } while (0)
#define CHECK_OP_(a, op, b)                                                        \
    do {                                                                           \
        uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                           \
        rt_checks++;                                                               \
        if (!(_a op _b))                                                           \
            fail_at(__FILE_NAME__, __LINE__, "%s " #op " %s: got 0x%lx (%lu), want " #op \
                    " 0x%lx (%lu)", #a, #b, _a, _a, _b, _b);                       \
    } while (0)
#define CHECK_EQ(a, b) CHECK_OP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP_(a, !=, b)
#define CHECK_GE(a, b) CHECK_OP_(a, >=, b)
#define CHECK_LE(a, b) CHECK_OP_(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP_(a, >, b)
#define CHECK_LT(a, b) CHECK_OP_(a, <, b)
#define CHECK_RANGE(v, lo, hi)                                                     \
    do {                                                                           \
        CHECK_GE(v, lo);                                                           \
        CHECK_LE(v, hi);                                                           \
    } while (0)

/* TEST_BREAK builds (make BREAK=1) flip one expectation in every program,
 * to prove that each can fail. */
#ifdef TEST_BREAK
#define BREAK_ADJ 1
#else
#define BREAK_ADJ 0
#endif

/* ---- libc bits ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t n);
int strcmp(const char *a, const char *b);

/* ---- interrupts and exceptions ---- */
struct trapframe {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};
typedef void (*trap_handler)(struct trapframe *tf);
void set_handler(unsigned vector, trap_handler h);
void set_gate_dpl(unsigned vector, unsigned dpl);   /* e.g. 3 for int 0x80 */
void idt_load_empty(void);                          /* lidt with limit 0 */

/* ---- ring 3 ---- */
/* Run fn(arg) at CPL3 (IRETQ to SEL_UCODE64/SEL_UDATA with IF=1) on the
 * given user stack.  The user code gets back to ring 0 with user_exit(v)
 * (a HLT that raises #GP; or `int $0x80` with rax = v, where INT n works),
 * and enter_user returns v.  fn must not return. */
uint64_t enter_user(void (*fn)(uint64_t), uint64_t user_stack_top, uint64_t arg);
void user_exit(uint64_t value) __attribute__((noreturn)); /* for user code */

/* ---- time ---- */
extern uint64_t tsc_hz;                 /* set by tsc_calibrate() */
uint64_t tsc_calibrate(void);           /* against PIT channel 0; reprograms it */
uint64_t tsc_to_us(uint64_t ticks);
uint64_t us_to_tsc(uint64_t us);
void udelay(uint64_t us);               /* busy-wait on the TSC */
uint16_t pit_read_ch0(void);            /* latched count of channel 0 */
void pit_set_periodic(uint16_t reload); /* channel 0, mode 2, lobyte/hibyte */
void pit_stop(void);                    /* channel 0, mode 0, count 0 */

/* ---- 8259 ---- */
void pic_init_masked(void);             /* ICW to 0x20/0x28, all masked */

/* ---- local APIC (xAPIC MMIO) ---- */
#define LAPIC_ID 0x020
#define LAPIC_VER 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_ICR 0x380
#define LAPIC_TIMER_CCR 0x390
#define LAPIC_TIMER_DCR 0x3e0
static inline uint32_t lapic_read(unsigned reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(unsigned reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline unsigned lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
void lapic_enable(void);                /* SVR enable, spurious vector 0xff, TPR 0 */
bool lapic_isr_bit(unsigned vector);
/* send an IPI: icr_lo = delivery mode | vector | level etc; waits for idle */
bool lapic_send_ipi(unsigned dest_apic_id, uint32_t icr_lo);

/* ---- IOAPIC ---- */
uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t v);
void ioapic_route(unsigned pin, unsigned vector, unsigned dest_apic_id, bool masked);
void ioapic_mask(unsigned pin, bool masked);

/* ---- MP table (MultiProcessor Specification 1.4) ---- */
struct mp_info {
    uint64_t fp_addr;        /* floating pointer structure */
    uint64_t table_addr;     /* configuration table */
    uint32_t lapic_addr;
    unsigned ncpus;          /* enabled processor entries */
    uint8_t apic_ids[64];
    int bsp_index;           /* entry flagged as BSP, -1 if none */
    unsigned nioapics;
    uint32_t ioapic_addr[4];
    uint8_t ioapic_id[4];
    unsigned nentries;       /* all entries */
    bool bad_checksum;
    bool from_acpi;          /* filled from the ACPI MADT by madt_find() */
};
bool mp_find(struct mp_info *mp);       /* false if no floating pointer */
/* The same from the ACPI MADT (RSDP from PVH start_info or the BIOS
 * area): for QEMU's microvm, which has no MP table.  bsp_index is the
 * entry whose APIC ID is `bsp`.  False if there is no MADT. */
bool madt_find(struct mp_info *mp, unsigned bsp);

/* ---- boot info helpers ---- */
struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct hvm_memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};
struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct e820_entry {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));
#define HVM_START_MAGIC 0x336ec578u
#define E820_RAM 1
#define E820_RESERVED 2

/* The command line every test run passes (--append / -append). */
#define TEST_CMDLINE "petrel-test-cmdline answer=42"

/* Returns the physical address of the kernel command line handed over
 * at boot (PVH or boot_params), or 0. */
uint64_t boot_cmdline(void);

/* ---- misc ---- */
void rt_init(void);          /* called by start64 before test_main */
void test_main(void);
void ap_entry_c(unsigned index); /* smp: defined by the smp program only */

#endif
