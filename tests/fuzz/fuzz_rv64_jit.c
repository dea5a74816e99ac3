/* libFuzzer target: differential test of the rv64 JIT against the
 * interpreter.
 *
 * Two machines (RAM only, plus a small fake device) start from the same
 * state: registers seeded from the input, a code region filled with
 * instructions generated from the input (biased to valid encodings: ALU,
 * M, loads/stores into a data window and the device, branches and jumps in
 * the code region, CSR writes including mstatus and satp (an identity
 * Sv39 page table), traps, mret, FP and AMO encodings, and self-modifying
 * stores into the code region followed by fence.i).  One runs under
 * rv64_exec, the other under rv64_jit_exec, for the same number of
 * instructions (interrupts taken between calls, as the machine loop does);
 * then x, f, pc, instret, priv, the trap CSRs, fflags and all of RAM must
 * be equal.  A difference aborts with both states printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/vm.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (256u << 10)
#define CODE RAM_BASE
#define CODE_SIZE 0x2000u           /* two pages of generated code */
#define DATA (RAM_BASE + 0x10000)
#define PT (RAM_BASE + 0x20000)
#define MMIO_BASE 0x10000000ull
#define STEPS 3000

struct side {
    struct vm vm;
    uint8_t *ram;
    struct rv64_machine *m;
    struct rv64_hart *h;
    uint64_t n;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque;
    return (off * 0x9e3779b97f4a7c15ull) >> (64 - 8 * size);
}
static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)opaque, (void)off, (void)val, (void)size;
}
static const struct mmio_ops dev_ops = { dev_read, dev_write };

static struct side A, B;   /* A: interpreter, B: JIT */

static void side_init(struct side *s, bool jit)
{
    struct err e;
    s->ram = calloc(1, RAM_SIZE);
    pthread_mutex_init(&s->vm.dev_lock, NULL);
    s->vm.cfg.cpu_mode = CPU_MODE_INTERP;
    if (!s->ram || bus_add(&s->vm.bus, MMIO_BASE, 0x1000, &dev_ops, NULL, "dev", &e) < 0)
        abort();
    s->m = rv64_new(&s->vm, &s->vm.bus, s->ram, RAM_BASE, RAM_SIZE, 1, &e);
    if (!s->m || (jit && rv64_jit_init(s->m, &e) < 0)) {
        fprintf(stderr, "set-up: %s\n", e.msg);
        abort();
    }
    s->h = s->m->harts[0];
}

/* ---- instruction generation ---- */
static uint32_t r_type(unsigned opc, unsigned f3, unsigned f7, unsigned rd, unsigned rs1,
                       unsigned rs2)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
static uint32_t i_type(unsigned opc, unsigned f3, unsigned rd, unsigned rs1, int32_t imm)
{
    return (uint32_t)(imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
static uint32_t s_type(unsigned f3, unsigned rs1, unsigned rs2, int32_t imm)
{
    return (uint32_t)((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           (uint32_t)(imm & 0x1f) << 7 | 0x23;
}
static uint32_t b_type(unsigned f3, unsigned rs1, unsigned rs2, int32_t off)
{
    uint32_t o = (uint32_t)off;
    return ((o >> 12) & 1) << 31 | ((o >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           ((o >> 1) & 0xf) << 8 | ((o >> 11) & 1) << 7 | 0x63;
}
static uint32_t j_type(unsigned rd, int32_t off)
{
    uint32_t o = (uint32_t)off;
    return ((o >> 20) & 1) << 31 | ((o >> 1) & 0x3ff) << 21 | ((o >> 11) & 1) << 20 |
           ((o >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}

/* Registers: x5, x6 data pointers, x7 the device, x8 code base, x9 a
 * code pointer for self-modifying stores; random results never go there. */
static unsigned pick_rd(unsigned v)
{
    static const unsigned regs[] = { 0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                     20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
    return regs[v % (sizeof(regs) / sizeof(regs[0]))];
}

/* One instruction (or a pair) at code offset off from 4 input bytes. */
static unsigned gen(uint8_t *code, unsigned off, const uint8_t *b)
{
    uint32_t r = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    unsigned sel = b[0] % 24, rd = pick_rd(b[1]), rs1 = (b[2] >> 3) & 31, rs2 = b[3] & 31;
    int32_t imm = (int32_t)(r >> 20) - 2048;
    uint32_t insn;
    switch (sel) {
    case 0: case 1: case 2: {   /* OP, OP-32 incl. M */
        static const unsigned f7s[] = { 0, 0x20, 1 };
        unsigned f7 = f7s[(r >> 13) % 3], f3 = (r >> 16) & 7;
        if (f7 == 0x20 && f3 != 0 && f3 != 5)
            f7 = 0;
        insn = r_type((r >> 19) & 1 ? 0x3b : 0x33, f3, f7, rd, rs1, rs2);
        break;
    }
    case 3: case 4: {           /* OP-IMM(-32) */
        unsigned f3 = (r >> 16) & 7;
        bool w = (r >> 19) & 1;
        if (w && f3 != 0 && f3 != 1 && f3 != 5)
            f3 = 0;
        if (f3 == 1 || f3 == 5)
            imm = (imm & (w ? 31 : 63)) | ((r >> 20) & 1 && f3 == 5 ? 0x400 : 0);
        insn = i_type(w ? 0x1b : 0x13, f3, rd, rs1, imm);
        break;
    }
    case 5: insn = (r & 0xfffff000) | rd << 7 | ((r >> 11) & 1 ? 0x37 : 0x17); break;
    case 6: case 7: {           /* loads: base x5/x6 (data) or x7 (device) */
        static const unsigned f3s[] = { 0, 1, 2, 3, 4, 5, 6 };
        unsigned base = 5 + (b[2] % 3);
        insn = i_type(0x03, f3s[b[3] % 7], rd, base, base == 7 ? imm & 0x7f8 : imm);
        break;
    }
    case 8: case 9: {           /* stores */
        unsigned base = 5 + (b[2] % 3);
        insn = s_type(b[1] & 3, base, rs2, base == 7 ? imm & 0x7f8 : imm);
        break;
    }
    case 10: case 11: {         /* branches within the code region */
        static const unsigned f3s[] = { 0, 1, 4, 5, 6, 7 };
        int32_t to = (int32_t)((r >> 8) % (CODE_SIZE / 2)) * 2;
        insn = b_type(f3s[b[1] % 6], rs1, rs2, to - (int32_t)off);
        break;
    }
    case 12: {                  /* jal / jalr within the code region */
        int32_t to = (int32_t)((r >> 8) % (CODE_SIZE / 2)) * 2;
        insn = (r & 1) ? j_type(rd, to - (int32_t)off)
                       : i_type(0x67, 0, rd, 8, to & 0x7ff);
        break;
    }
    case 13: {                  /* CSR writes from a register */
        static const unsigned csrs[] = { 0x340, 0x300, 0x180, 0x003, 0x002, 0x001, 0x341,
                                         0x305, 0x105, 0x144, 0x304 };
        unsigned csr = csrs[b[1] % 11], f3 = 1 + (b[3] & 1);
        uint32_t src = rs1;
        if (csr == 0x180)       /* satp: off, or the identity table */
            src = (b[3] & 2) ? 0 : 30;
        if (csr == 0x305 || csr == 0x105)
            src = 8;            /* the vectors stay in the code region */
        insn = i_type(0x73, f3, rd, src, (int32_t)csr);
        break;
    }
    case 14: {                  /* system: ecall ebreak mret sret wfi fence sfence.vma */
        static const uint32_t sys[] = { 0x00000073, 0x00100073, 0x30200073, 0x10200073,
                                        0x0ff0000f, 0x12000073, 0x0000000f, 0x8330000f };
        insn = sys[b[1] & 7];
        break;
    }
    case 15: {                  /* self-modifying: sw x[rs2] -> code; fence.i */
        if (off + 8 > CODE_SIZE)
            return 0;
        insn = s_type(2, 9, rs2, (imm & 0x7fc) % 0x200);
        memcpy(code + off, &insn, 4);
        insn = 0x0000100f;
        memcpy(code + off + 4, &insn, 4);
        return 8;
    }
    case 16: case 17:           /* FP: loads/stores via x5, OP-FP, FMA */
        if (sel == 16 && (r & 0x100))
            insn = (r & 0x4000) ? s_type(2 + (b[1] & 1), 5, rs2, imm) | 0x04
                                : i_type(0x07, 2 + (b[1] & 1), rd, 5, imm);
        else
            insn = (r & 0xfe000000) | rs2 << 20 | rs1 << 15 | (r & 0x7000) | rd << 7 |
                   ((r & 0x80) ? 0x53 : 0x43 | (b[1] & 3) << 2);
        break;
    case 18: {                  /* AMO / LR / SC on the data window (x5 aligned) */
        static const unsigned f5s[] = { 0, 1, 4, 8, 0xc, 0x10, 0x14, 0x18, 0x1c, 2, 3 };
        insn = r_type(0x2f, 2 + (b[1] & 1), f5s[b[3] % 11] << 2 | (b[1] >> 6), rd, 5, rs2);
        break;
    }
    case 19: case 20: {         /* compressed: two random halves */
        uint16_t c1 = (uint16_t)r, c2 = (uint16_t)(r >> 16);
        if ((c1 & 3) == 3) c1 &= ~1;
        if ((c2 & 3) == 3) c2 &= ~1;
        insn = (uint32_t)c1 | (uint32_t)c2 << 16;
        break;
    }
    case 21:                    /* Zba/Zbb-ish: OP/OP-IMM with funct7 variants */
        insn = r_type((r >> 19) & 1 ? 0x3b : 0x33, (r >> 16) & 7, (b[3] & 1) ? 0x05 : 0x10, rd,
                      rs1, rs2);
        break;
    default:
        insn = r;               /* anything */
        break;
    }
    memcpy(code + off, &insn, 4);
    return 4;
}

static void setup(struct side *s, const uint8_t *data, size_t size)
{
    struct rv64_hart *h = s->h;
    memset(s->ram, 0, RAM_SIZE);
    rv64_hart_reset(h, CODE, 0, 0);
    uint64_t old;
    rv64_csr_rw(h, 0x3b0, 1, ~0ull, true, &old);     /* PMP: everything */
    rv64_csr_rw(h, 0x3a0, 1, 0x1f, true, &old);
    /* Sv39 identity: gigapages for the device and RAM (RWX, A, D) */
    uint64_t pte_mmio = (MMIO_BASE >> 12) << 10 | 0xc7, pte_ram = (RAM_BASE >> 12) << 10 | 0xcf;
    memcpy(s->ram + (PT - RAM_BASE) + 8 * (MMIO_BASE >> 30), &pte_mmio, 8);
    memcpy(s->ram + (PT - RAM_BASE) + 8 * (RAM_BASE >> 30), &pte_ram, 8);

    const uint8_t *p = data;
    size_t n = size;
    uint8_t flags = n ? *p++ : 0;
    n -= n ? 1 : 0;
    for (unsigned i = 1; i < 32; i++) {
        uint64_t v = 0;
        size_t k = n < 4 ? n : 4;
        memcpy(&v, p, k);
        p += k, n -= k;
        h->x[i] = v * 0x9e3779b97f4a7c15ull;
        h->f[i] = h->x[i] | ((i & 1) ? 0xffffffff00000000ull : 0);
    }
    h->x[5] = DATA + 0x800;
    h->x[6] = DATA + 0x1800;
    h->x[7] = MMIO_BASE + 0x400;
    h->x[8] = CODE;
    h->x[9] = CODE + 0x100;
    h->x[30] = (8ull << 60) | (PT >> 12);
    h->mtvec = CODE + 0x40;
    h->stvec = CODE + 0x80;
    h->mstatus |= (flags & 1) ? MSTATUS_FS : 0;
    h->medeleg = (flags & 2) ? 0xb1ff : 0;
    rv64_update_ctx(h);
    unsigned off = 0;
    while (off + 4 <= CODE_SIZE && n >= 4) {
        unsigned len = gen(s->ram, off, p);
        p += 4, n -= 4;
        off += len ? len : 4;
    }
    for (unsigned i = 0; i < 0x1000; i++)   /* a data pattern */
        s->ram[DATA - RAM_BASE + i] = (uint8_t)(i * 7);
    s->n = 0;
}

static void run(struct side *s, bool jit)
{
    /* host FP sticky flags are per thread: drop the other side's */
    fpu_set_flags(&s->h->fpu, s->h->fpu.fflags);
    while (s->n < STEPS) {
        int irq = rv64_pending_irq(s->h);
        if (irq >= 0)
            rv64_take_irq(s->h, irq);
        uint64_t r = jit ? rv64_jit_exec(s->h, STEPS - s->n) : rv64_exec(s->h, STEPS - s->n);
        if (!r)
            break;
        s->n += r;
        if (getenv("FUZZ_JIT_TRACE"))
            fprintf(stderr, "%s: +%llu n=%llu pc=%llx instret=%llu\n", jit ? "jit" : "int",
                    (unsigned long long)r, (unsigned long long)s->n,
                    (unsigned long long)s->h->pc, (unsigned long long)s->h->instret);
    }
    fpu_sync(&s->h->fpu);
}

static void dump(const char *name, const struct side *s)
{
    const struct rv64_hart *h = s->h;
    fprintf(stderr, "%s: n=%llu pc=%llx instret=%llu priv=%u mstatus=%llx mcause=%llx "
            "mepc=%llx mtval=%llx fflags=%x\n", name, (unsigned long long)s->n,
            (unsigned long long)h->pc, (unsigned long long)h->instret, h->priv,
            (unsigned long long)h->mstatus, (unsigned long long)h->mcause,
            (unsigned long long)h->mepc, (unsigned long long)h->mtval, h->fpu.fflags);
    for (unsigned i = 0; i < 32; i++)
        fprintf(stderr, " x%u=%llx%s", i, (unsigned long long)h->x[i], i % 8 == 7 ? "\n" : "");
}

#define SAME(field) (A.h->field == B.h->field)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        side_init(&A, false);
        side_init(&B, true);
        inited = true;
    }
    setup(&A, data, size);
    setup(&B, data, size);
    rv64_jit_flush(B.h);
    run(&A, false);
    run(&B, true);
    bool same = A.n == B.n && !memcmp(A.h->x, B.h->x, sizeof(A.h->x)) &&
                !memcmp(A.h->f, B.h->f, sizeof(A.h->f)) && SAME(pc) && SAME(instret) &&
                SAME(priv) && SAME(mstatus) && SAME(mcause) && SAME(mepc) && SAME(mtval) &&
                SAME(scause) && SAME(sepc) && SAME(stval) && SAME(satp) && SAME(mscratch) &&
                SAME(fpu.fflags) && SAME(frm) && SAME(resv_valid) &&
                !memcmp(A.ram, B.ram, RAM_SIZE);
    if (!same) {
        dump("interp", &A);
        dump("jit   ", &B);
        for (unsigned i = 0; i < RAM_SIZE; i++)
            if (A.ram[i] != B.ram[i]) {
                fprintf(stderr, "RAM differs first at 0x%llx\n", (unsigned long long)(RAM_BASE + i));
                break;
            }
        abort();
    }
    return 0;
}
