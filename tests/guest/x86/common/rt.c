/* Petrel x86-64 guest test runtime: console, verdicts, traps, timers,
 * APIC helpers, MP table.  See rt.h. */
#include "rt.h"

unsigned long rt_checks;
uint64_t tsc_hz;

/* ------------------------------------------------------------------ libc */

void *memset(void *d, int c, size_t n) {
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}
void *memcpy(void *d, const void *s, size_t n) {
    void *r = d;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return r;
}
int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}
size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}
size_t strnlen(const char *s, size_t max) {
    size_t n = 0;
    while (n < max && s[n]) n++;
    return n;
}
int strcmp(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

/* ---------------------------------------------------------------- serial */

void putchar_serial(char c) {
    /* LSR bit 5: THR empty.  Bounded, so a missing UART can't hang us. */
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++) pause();
    outb(COM1, (uint8_t)c);
}
void puts_serial(const char *s) {
    while (*s) putchar_serial(*s++);
}

/* --------------------------------------------------------------- printf */

struct outbuf {
    char *p;
    size_t n, len;
};
static void ob_put(struct outbuf *o, char c) {
    if (o->len + 1 < o->n) o->p[o->len] = c;
    o->len++;
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap) {
    struct outbuf o = {buf, n, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            ob_put(&o, *fmt);
            continue;
        }
        fmt++;
        bool left = false, zero = false;
        for (;; fmt++) {
            if (*fmt == '-') left = true;
            else if (*fmt == '0') zero = true;
            else break;
        }
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        int lng = 0;
        while (*fmt == 'l') lng++, fmt++;
        if (*fmt == 'z') lng = 1, fmt++;
        char tmp[24];
        const char *s = tmp;
        int len = 0;
        bool neg = false;
        switch (*fmt) {
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            len = 1;
            break;
        case 's':
            s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            len = (int)strlen(s);
            break;
        case 'p':
            lng = 1;
            ob_put(&o, '0');
            ob_put(&o, 'x');
            /* fallthrough */
        case 'x':
        case 'X':
        case 'u':
        case 'd':
        case 'i': {
            uint64_t v;
            if (*fmt == 'd' || *fmt == 'i') {
                int64_t sv = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
                neg = sv < 0;
                v = neg ? -(uint64_t)sv : (uint64_t)sv;
            } else {
                v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            }
            unsigned base = (*fmt == 'u' || *fmt == 'd' || *fmt == 'i') ? 10 : 16;
            const char *dig = *fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            char *e = tmp + sizeof tmp;
            char *q = e;
            do {
                *--q = dig[v % base];
                v /= base;
            } while (v);
            if (neg) *--q = '-';
            s = q;
            len = (int)(e - q);
            break;
        }
        case '%':
            tmp[0] = '%';
            len = 1;
            break;
        case 0:
            fmt--;
            continue;
        default:
            tmp[0] = '?';
            len = 1;
            break;
        }
        int pad = width > len ? width - len : 0;
        if (!left) {
            if (zero && neg) {
                ob_put(&o, '-');
                s++, len--;
            }
            while (pad-- > 0) ob_put(&o, zero ? '0' : ' ');
        }
        for (int i = 0; i < len; i++) ob_put(&o, s[i]);
        if (left)
            while (pad-- > 0) ob_put(&o, ' ');
    }
    if (n) o.p[o.len < n ? o.len : n - 1] = 0;
    return (int)o.len;
}

int snprintf(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}

void printf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    puts_serial(buf);
}

/* -------------------------------------------------------------- verdict */

void debug_exit(uint16_t v) {
    outb(DEBUG_EXIT_PORT, (uint8_t)v);
    /* Still here: no debug-exit device, or the VMM is still stopping us.
     * Wait a while (~1 s even when emulated) before saying so. */
    for (volatile unsigned long i = 0; i < 1000000; i++) pause();
    puts_serial("debug-exit port 0x501 did not stop the VM\n");
    for (;;) {
        cli();
        hlt();
    }
}

void pass(void) {
    printf("%s: %lu checks passed\nPASS %s\n", TEST_NAME, rt_checks, TEST_NAME);
    debug_exit(0);
}

static void vfail(const char *file, int line, const char *fmt, va_list ap)
    __attribute__((noreturn));
static void vfail(const char *file, int line, const char *fmt, va_list ap) {
    char buf[400];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (file)
        printf("FAIL %s: %s:%d: %s\n", TEST_NAME, file, line, buf);
    else
        printf("FAIL %s: %s\n", TEST_NAME, buf);
    debug_exit(1);
}
void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(0, 0, fmt, ap);
}
void fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(file, line, fmt, ap);
}

/* ------------------------------------------------------- IDT, GDT, TSS */

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
};
static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler handlers[256];

extern char vector_stubs[];     /* 256 stubs, 16 bytes apart (long.S) */
extern uint64_t gdt[];          /* long.S */
extern char trap_stack_top[];
extern void resume_kernel(uint64_t v) __attribute__((noreturn)); /* long.S */
extern char user_exit_trap[];

struct tss64 {
    uint32_t rsv0;
    uint64_t rsp[3];
    uint64_t rsv1;
    uint64_t ist[7];
    uint64_t rsv2;
    uint16_t rsv3, iomap;
} __attribute__((packed));
static struct tss64 tss __attribute__((aligned(16)));

void set_handler(unsigned v, trap_handler h) { handlers[v & 0xff] = h; }
void set_gate_dpl(unsigned v, unsigned dpl) {
    idt[v & 0xff].type = (uint8_t)(0x8e | (dpl & 3) << 5);
}

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};

static void idt_setup(void) {
    for (unsigned i = 0; i < 256; i++) {
        uint64_t a = (uint64_t)vector_stubs + 16 * i;
        idt[i] = (struct idt_gate){(uint16_t)a, SEL_KCODE64, 0, 0x8e, (uint16_t)(a >> 16),
                                   (uint32_t)(a >> 32), 0};
    }
    struct dtr d = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
}

/* APs load the shared IDT with this */
void idt_load(void) {
    struct dtr d = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
}

void idt_load_empty(void) {
    struct dtr d = {0, 0};
    __asm__ volatile("lidt %0" ::"m"(d));
}

static void tss_setup(void) {
    tss.rsp[0] = (uint64_t)trap_stack_top;
    tss.iomap = sizeof tss; /* no I/O bitmap: CPL3 port access faults */
    uint64_t b = (uint64_t)&tss, lim = sizeof tss - 1;
    gdt[SEL_TSS / 8] = (lim & 0xffff) | (b & 0xffffff) << 16 | 0x89ull << 40 |
                       ((lim >> 16) & 0xf) << 48 | ((b >> 24) & 0xff) << 56;
    gdt[SEL_TSS / 8 + 1] = b >> 32;
    __asm__ volatile("ltr %w0" ::"r"(SEL_TSS));
}

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "rsvd", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void trap_dispatch(struct trapframe *tf) {
    unsigned v = (unsigned)tf->vector & 0xff;
    /* user_exit(): the HLT at CPL3 faults */
    if (v == 13 && (tf->cs & 3) == 3 && tf->rip == (uint64_t)user_exit_trap)
        resume_kernel(tf->rax);
    if (handlers[v]) {
        handlers[v](tf);
        return;
    }
    if (v == 0xff) return; /* LAPIC spurious vector: no EOI */
    const char *name = v < 32 ? (exc_names[v] ? exc_names[v] : "exception") : "interrupt";
    fail("unexpected %s (vector %u) err=0x%lx rip=0x%lx cs=0x%lx rflags=0x%lx rsp=0x%lx "
         "cr2=0x%lx",
         name, v, tf->error, tf->rip, tf->cs, tf->rflags, tf->rsp, READ_CR(2));
}

/* int 0x80 from CPL3 (a DPL3 gate) also returns from enter_user, for
 * programs that want to try that path */
static void int80_handler(struct trapframe *tf) {
    if ((tf->cs & 3) != 3) fail("int 0x80 from CPL%lu (rip 0x%lx)", tf->cs & 3, tf->rip);
    resume_kernel(tf->rax);
}

/* ----------------------------------------------------------------- 8259 */

void pic_init_masked(void) {
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x20);
    outb(0xa1, 0x28);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}
static void pic_spurious(struct trapframe *tf) { (void)tf; }

/* ----------------------------------------------------------- PIT / TSC */

uint16_t pit_read_ch0(void) {
    outb(0x43, 0x00); /* latch channel 0 */
    uint8_t lo = inb(0x40);
    uint8_t hi = inb(0x40);
    return (uint16_t)(lo | hi << 8);
}
void pit_set_periodic(uint16_t reload) {
    outb(0x43, 0x34); /* ch0, lobyte/hibyte, mode 2, binary */
    outb(0x40, (uint8_t)reload);
    outb(0x40, (uint8_t)(reload >> 8));
}
void pit_stop(void) {
    outb(0x43, 0x30); /* ch0, mode 0: one terminal count, then nothing */
    outb(0x40, 0xff);
    outb(0x40, 0xff);
}

/* TSC ticks per PIT interval of `want` PIT ticks; 0 if the PIT doesn't move */
static uint64_t calib_once(uint32_t want) {
    pit_set_periodic(0); /* 65536 */
    uint16_t prev = pit_read_ch0();
    uint64_t t0 = rdtsc();
    uint32_t acc = 0;
    uint64_t spins = 0;
    while (acc < want) {
        uint16_t cur = pit_read_ch0();
        acc += (uint16_t)(prev - cur);
        prev = cur;
        if (++spins > 20000000) return 0;
    }
    uint64_t t1 = rdtsc();
    return (t1 - t0) * PIT_HZ / acc;
}

uint64_t tsc_calibrate(void) {
    uint64_t r[3];
    for (int i = 0; i < 3; i++) r[i] = calib_once(PIT_HZ / 50); /* 20 ms */
    /* median of three */
    uint64_t a = r[0], b = r[1], c = r[2], m;
    if ((a <= b && b <= c) || (c <= b && b <= a)) m = b;
    else if ((b <= a && a <= c) || (c <= a && a <= b)) m = a;
    else m = c;
    tsc_hz = m;
    pit_stop();
    return m;
}
uint64_t tsc_to_us(uint64_t t) { return tsc_hz ? t / (tsc_hz / 1000000) : 0; }
uint64_t us_to_tsc(uint64_t us) { return us * (tsc_hz / 1000000); }
void udelay(uint64_t us) {
    uint64_t end = rdtsc() + us_to_tsc(us);
    while (rdtsc() < end) pause();
}

/* ---------------------------------------------------------------- APIC */

void lapic_enable(void) {
    uint64_t base = rdmsr(MSR_APIC_BASE);
    if (!(base & (1u << 11))) wrmsr(MSR_APIC_BASE, base | (1u << 11));
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | 0xff);
}
bool lapic_isr_bit(unsigned v) {
    return (lapic_read(LAPIC_ISR + 0x10 * (v / 32)) >> (v % 32)) & 1;
}
bool lapic_send_ipi(unsigned dest, uint32_t icr_lo) {
    lapic_write(LAPIC_ICR_HI, dest << 24);
    lapic_write(LAPIC_ICR_LO, icr_lo);
    for (int i = 0; i < 100000; i++)
        if (!(lapic_read(LAPIC_ICR_LO) & (1u << 12))) return true;
    return false;
}

uint32_t ioapic_read(unsigned reg) {
    mmio_write32(IOAPIC_BASE, reg);
    return mmio_read32(IOAPIC_BASE + 0x10);
}
void ioapic_write(unsigned reg, uint32_t v) {
    mmio_write32(IOAPIC_BASE, reg);
    mmio_write32(IOAPIC_BASE + 0x10, v);
}
void ioapic_route(unsigned pin, unsigned vector, unsigned dest, bool masked) {
    ioapic_write(0x10 + 2 * pin, (1u << 16)); /* mask while changing */
    ioapic_write(0x11 + 2 * pin, dest << 24);
    ioapic_write(0x10 + 2 * pin, (vector & 0xff) | (masked ? 1u << 16 : 0));
}
void ioapic_mask(unsigned pin, bool masked) {
    uint32_t lo = ioapic_read(0x10 + 2 * pin);
    ioapic_write(0x10 + 2 * pin, masked ? lo | (1u << 16) : lo & ~(1u << 16));
}

/* ------------------------------------------------------------ MP table */

static uint8_t sum8(const uint8_t *p, size_t n) {
    uint8_t s = 0;
    while (n--) s += *p++;
    return s;
}
static uint64_t mp_scan(uint64_t start, uint64_t len) {
    for (uint64_t a = start; a + 16 <= start + len; a += 16) {
        const uint8_t *p = (const uint8_t *)a;
        if (p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_' && p[8] == 1 &&
            sum8(p, 16) == 0)
            return a;
    }
    return 0;
}
bool mp_find(struct mp_info *mp) {
    memset(mp, 0, sizeof *mp);
    mp->bsp_index = -1;
    uint64_t ebda = (uint64_t) * (volatile uint16_t *)phys(0x40e) << 4;
    uint64_t fp = 0;
    if (ebda >= 0x80000 && ebda < 0xa0000) fp = mp_scan(ebda, 1024);
    if (!fp) fp = mp_scan(0x9fc00, 1024);
    if (!fp) fp = mp_scan(0xf0000, 0x10000);
    if (!fp) return false;
    mp->fp_addr = fp;
    const uint8_t *f = (const uint8_t *)fp;
    uint32_t tab = *(const uint32_t *)(f + 4);
    mp->table_addr = tab;
    if (!tab) return true; /* default configuration: not used by us */
    const uint8_t *t = (const uint8_t *)(uint64_t)tab;
    if (memcmp(t, "PCMP", 4)) {
        mp->bad_checksum = true;
        return true;
    }
    uint16_t len = *(const uint16_t *)(t + 4);
    if (sum8(t, len)) mp->bad_checksum = true;
    mp->lapic_addr = *(const uint32_t *)(t + 0x24);
    uint16_t count = *(const uint16_t *)(t + 0x22);
    const uint8_t *e = t + 0x2c, *end = t + len;
    for (unsigned i = 0; i < count && e < end; i++) {
        mp->nentries++;
        switch (e[0]) {
        case 0: /* processor */
            if ((e[3] & 1) && mp->ncpus < 64) {
                if (e[3] & 2) mp->bsp_index = (int)mp->ncpus;
                mp->apic_ids[mp->ncpus++] = e[1];
            }
            e += 20;
            break;
        case 2: /* I/O APIC */
            if ((e[3] & 1) && mp->nioapics < 4) {
                mp->ioapic_id[mp->nioapics] = e[1];
                mp->ioapic_addr[mp->nioapics++] = *(const uint32_t *)(e + 4);
            }
            e += 8;
            break;
        default:
            e += 8;
            break;
        }
    }
    return true;
}

/* ---------------------------------------------------------- ACPI MADT */

static const uint8_t *acpi_table(uint64_t addr, const char *sig) {
    const uint8_t *t = phys(addr);
    if (!addr || memcmp(t, sig, 4)) return 0;
    uint32_t len = *(const uint32_t *)(t + 4);
    if (len < 36 || len > 65536 || sum8(t, len)) return 0;
    return t;
}

bool madt_find(struct mp_info *mp, unsigned bsp) {
    memset(mp, 0, sizeof *mp);
    mp->bsp_index = -1;
    mp->from_acpi = true;
    uint64_t rsdp = 0;
    if (boot_state.entry == ENTRY_PVH)
        rsdp = ((const struct hvm_start_info *)phys(boot_state.info))->rsdp_paddr;
    for (uint64_t a = 0xe0000; !rsdp && a < 0x100000; a += 16)
        if (!memcmp(phys(a), "RSD PTR ", 8) && !sum8(phys(a), 20)) rsdp = a;
    if (!rsdp) return false;
    mp->fp_addr = rsdp;
    const uint8_t *r = phys(rsdp);
    const uint8_t *sdt;
    unsigned esz;
    if (r[15] >= 2 && *(const uint64_t *)(r + 24)) {
        sdt = acpi_table(*(const uint64_t *)(r + 24), "XSDT");
        esz = 8;
    } else {
        sdt = acpi_table(*(const uint32_t *)(r + 16), "RSDT");
        esz = 4;
    }
    if (!sdt) return false;
    const uint8_t *madt = 0;
    uint32_t n = (*(const uint32_t *)(sdt + 4) - 36) / esz;
    for (uint32_t i = 0; i < n && !madt; i++) {
        uint64_t a = esz == 8 ? *(const uint64_t *)(sdt + 36 + 8 * i)
                              : *(const uint32_t *)(sdt + 36 + 4 * i);
        madt = acpi_table(a, "APIC");
    }
    if (!madt) return false;
    mp->table_addr = (uint64_t)madt;
    mp->lapic_addr = *(const uint32_t *)(madt + 36);
    const uint8_t *e = madt + 44, *end = madt + *(const uint32_t *)(madt + 4);
    while (e + 2 <= end && e[1] >= 2) {
        mp->nentries++;
        if (e[0] == 0 && (e[4] & 1) && mp->ncpus < 64) { /* processor local APIC */
            if (e[3] == bsp) mp->bsp_index = (int)mp->ncpus;
            mp->apic_ids[mp->ncpus++] = e[3];
        } else if (e[0] == 1 && mp->nioapics < 4) { /* I/O APIC */
            mp->ioapic_id[mp->nioapics] = e[2];
            mp->ioapic_addr[mp->nioapics++] = *(const uint32_t *)(e + 4);
        }
        e += e[1];
    }
    return true;
}

/* -------------------------------------------------------------- boot info */

uint64_t boot_cmdline(void) {
    if (boot_state.entry == ENTRY_PVH) {
        const struct hvm_start_info *si = (const void *)boot_state.info;
        return si->cmdline_paddr;
    }
    const uint8_t *bp = (const uint8_t *)boot_state.info;
    return *(const uint32_t *)(bp + 0x228) | (uint64_t) * (const uint32_t *)(bp + 0x0c8) << 32;
}

/* ----------------------------------------------------------------- start */

void rt_init(void) {
    idt_setup();
    tss_setup();
    set_handler(0x80, int80_handler);
    set_gate_dpl(0x80, 3);
    pic_init_masked();
    set_handler(0x27, pic_spurious);
    set_handler(0x2f, pic_spurious);
}

void rt_start(void) __attribute__((noreturn));
void rt_start(void) {
    rt_init();
    test_main();
    fail("test_main returned");
}
