/* libFuzzer target: differential test of the rv64 JIT against the
 * interpreter.
 *
 * Two machines (RAM only, plus a small fake device) start from the same
 * state: registers seeded from the input, a code region filled with
 * instructions generated from the input (biased to valid encodings: ALU,
 * M, loads/stores into a data window and the device, branches and jumps in
 * the code region, CSR writes, traps, mret/sret, FP and AMO encodings) and
 * an Sv39 table with 4 KiB leaves (identity for RAM, plus four "alias"
 * pages); the trap handlers (M and S) skip the trapping instruction or
 * resume in the code region, or are random code.  Generated sequences also
 * - edit leaf PTEs with plain stores (a value from a menu of PTEs made from
 *   the input: random R/W/X/U/A/D/V bits, the code, data or no RAM page),
 *   always followed by sfence.vma, so no legal TLB staleness can differ;
 * - run code, loads and stores through the alias pages (code reached at
 *   another virtual address, remapped under the jump cache);
 * - change privilege: MPP/SPP, SUM, MXR, MPRV set or cleared, then mret or
 *   sret to the code or alias pages;
 * - store valid instructions into the code (both pages, directly or
 *   through an alias) followed by fence.i, also into TBs already run and
 *   chained.
 * Both run in slices of input-chosen sizes; between slices an interrupt
 * line may rise or fall (as the machine loop takes interrupts between
 * slices) and both TLBs are flushed (a hart may drop translations at any
 * time).  After every slice x, f, pc, priv, instret, every CSR field of the
 * hart, fflags/frm, the reservation, the WFI flag and all of RAM must be
 * equal.  A difference aborts with both states printed. */
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
#define PT (RAM_BASE + 0x20000)     /* Sv39 root; L1 at +0x1000, L0 at +0x2000 */
#define L0 (PT + 0x2000)
#define MENU_OFF 0x400u             /* PTE menu: 64 values inside L0 (unused VAs) */
#define ALIAS (RAM_BASE + 0x40000)  /* 4 alias pages: L0 entries 64..67 */
#define NOT_RAM_PPN 0x90000ull      /* no RAM, no device: access faults */
#define MMIO_BASE 0x10000000ull
#define STEPS 4000
#define NSLICES 6

struct side {
    struct vm vm;
    uint8_t *ram;
    struct rv64_machine *m;
    struct rv64_hart *h;
    uint64_t n;
    bool stopped;           /* an exec ran nothing */
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
 * code pointer for self-modifying stores (page 1), x29 the alias window,
 * x30 the satp value; random results never go there.  x27, x28: scratch
 * of the generated sequences. */
static unsigned pick_rd(unsigned v)
{
    static const unsigned regs[] = { 0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                     20, 21, 22, 23, 24, 25, 26, 27, 28, 31 };
    return regs[v % (sizeof(regs) / sizeof(regs[0]))];
}

/* RISC-V lets a hart fetch stale code until fence.i, so a store should not
 * reach code unfenced.  (The JIT ends a TB after a plain store that made
 * translations stale, so it matches the interpreter there anyway; FP
 * stores and AMOs go through helpers that don't.)  Code addresses only ever live in the pointer
 * registers (x8, x9, x29: stores through them are fenced), the link
 * registers x1 and x31 (jal, jalr and auipc results, CSR reads: never a
 * store base, never copied by an ALU operation) and, inside a generated
 * sequence, x28.  Random encodings are tamed to keep it so, and never write
 * x5-x9, x29, x30. */
static bool reserved(unsigned r)
{
    return (r >= 5 && r <= 9) || r == 29 || r == 30;
}
static bool link_reg(unsigned r)
{
    return r == 1 || r == 31;
}
static uint16_t tame16(uint16_t c)
{
    unsigned q = c & 3, f3 = c >> 13, rd = (c >> 7) & 31, rs2 = (c >> 2) & 31;
    if (q == 0) {
        if (((c >> 2) & 7) < 2)                     /* rd' (or rs2') x8/x9 */
            c = (uint16_t)((c & ~(7u << 2)) | 2u << 2);
        if (((c >> 7) & 7) < 2 && f3 >= 5)          /* store base x8/x9 */
            c = (uint16_t)((c & ~(7u << 7)) | 2u << 7);
        return c;
    }
    if (q == 1 && f3 == 4) {
        if (((c >> 7) & 7) < 2)                     /* c.srli .. c.and on x8/x9 */
            c = (uint16_t)((c & ~(7u << 7)) | 2u << 7);
        return c;
    }
    if (q == 2 && f3 == 4 && link_reg(rs2))         /* c.mv, c.add from a link */
        c = (uint16_t)((c & ~(31u << 2)) | 10u << 2);
    if (reserved(rd) && !(q == 2 && f3 >= 5))       /* not c.fsdsp/c.swsp/c.sdsp */
        c = (uint16_t)((c & ~(31u << 7)) | 10u << 7);
    return c;
}
static uint32_t tame32(uint32_t w)
{
    if ((w & 3) != 3)
        return tame16((uint16_t)w) | (uint32_t)tame16((uint16_t)(w >> 16)) << 16;
    unsigned opc = w & 0x7f, rd = (w >> 7) & 31, rs1 = (w >> 15) & 31, rs2 = (w >> 20) & 31;
    bool store = opc == 0x23 || opc == 0x27 || opc == 0x2f;
    if (store && (rs1 == 8 || rs1 == 9 || rs1 == 29 || link_reg(rs1)))
        w = (w & ~(31u << 15)) | 5u << 15;
    if (opc == 0x13 || opc == 0x1b || opc == 0x33 || opc == 0x3b) {
        if (link_reg(rs1))
            w = (w & ~(31u << 15)) | 10u << 15;
        if ((opc == 0x33 || opc == 0x3b) && link_reg(rs2))
            w = (w & ~(31u << 20)) | 11u << 20;
    }
    if (opc == 0x6f || opc == 0x67 || opc == 0x17 || (opc == 0x73 && (w & 0x7000))) {
        if (rd && !link_reg(rd))                    /* code addresses: links only */
            w = (w & ~(31u << 7)) | (rd & 1 ? 1u : 31u) << 7;
    } else if (opc != 0x23 && opc != 0x27 && opc != 0x63 && reserved(rd)) {
        w = (w & ~(31u << 7)) | 10u << 7;
    }
    return w;
}
/* A store at code offset `at` to page offset `to` (through any mapping)
 * could overwrite its own fence.i: move it away. */
static unsigned away(unsigned at, unsigned to)
{
    int d = (int)(to & 0xfff) - (int)(at & 0xfff);
    return d > -16 && d < 16 ? (to + 32) : to;
}

static unsigned put(uint8_t *code, unsigned off, const uint32_t *seq, unsigned n)
{
    if (off + 4 * n > CODE_SIZE)
        return 0;
    memcpy(code + off, seq, 4 * n);
    return 4 * n;
}

/* lui rd, hi; addiw rd, rd, lo: rd = the 32-bit value v, sign-extended */
static void li32(uint32_t *seq, unsigned rd, uint32_t v)
{
    uint32_t hi = (v + 0x800) & 0xfffff000u;
    seq[0] = hi | rd << 7 | 0x37;
    seq[1] = i_type(0x1b, 0, rd, rd, (int32_t)(v - hi));
}

static unsigned gen(uint8_t *code, unsigned off, const uint8_t *b);

/* A PTE edit, with the table's address derived from satp: reading satp
 * traps in U, and in S with TVM (where sfence.vma would), and then x27
 * stays 0 and the store faults.  L0[idx] = menu[k]; sfence.vma; x28 = 0. */
static unsigned gen_pte_edit(uint8_t *code, unsigned off, uint32_t r)
{
    static const unsigned idx[] = { 0, 1, 0x10, 0x11, 64, 65, 66, 67 };
    unsigned target = idx[(r >> 16) % 8];
    /* menu entries 32..63 never map a page that is fetched from: for the
     * data pages, where plain stores (x5, x6) go without fence.i */
    unsigned k = ((r >> 8) & 31) | (target == 0x10 || target == 0x11 ? 32 : 0);
    uint32_t seq[10] = {
        i_type(0x13, 0, 27, 0, 0),                           /* li x27, 0 */
        i_type(0x73, 2, 27, 0, 0x180),                       /* csrr x27, satp */
        i_type(0x13, 1, 28, 27, 20),                         /* slli x28, x27, 20 */
        i_type(0x13, 5, 28, 28, 8),                          /* srli x28, x28, 8: root */
        (uint32_t)(L0 - PT) | 27 << 7 | 0x37,                /* lui x27, L0 - root */
        r_type(0x33, 0, 0, 28, 28, 27),                      /* add x28, x28, x27 */
        i_type(0x03, 3, 27, 28, (int32_t)(MENU_OFF + 8 * k)),
        s_type(3, 28, 27, (int32_t)(8 * target)),
        0x12000073,                                          /* sfence.vma */
        i_type(0x13, 0, 28, 0, 0),                           /* li x28, 0 */
    };
    return put(code, off, seq, 10);
}

/* Privilege change: clear and set bits of mstatus (or sstatus), point
 * mepc (sepc) into the code or alias pages, mret (sret). */
static unsigned gen_xret(uint8_t *code, unsigned off, uint32_t r)
{
    bool s = r & 0x100;
    uint64_t bits = (s ? 0 : MSTATUS_MPP | MSTATUS_MPRV) | MSTATUS_SPP | MSTATUS_SUM |
                    MSTATUS_MXR | MSTATUS_SPIE | (s ? 0 : MSTATUS_MPIE);
    uint32_t clr = (uint32_t)(bits & (r * 0x9e3779b9u)), set = (uint32_t)(bits & (r >> 9) *
                                                                       0x85ebca6bu);
    if ((r >> 28) & 3)   /* MPRV mostly off: it makes M's own data accesses translated */
        set &= ~(uint32_t)MSTATUS_MPRV;
    uint32_t seq[10];
    li32(seq, 28, clr);
    seq[2] = i_type(0x73, 3, 0, 28, s ? 0x100 : 0x300);     /* csrc xstatus, x28 */
    li32(seq + 3, 28, set);
    seq[5] = i_type(0x73, 2, 0, 28, s ? 0x100 : 0x300);     /* csrs xstatus, x28 */
    seq[6] = i_type(0x13, 0, 28, (r >> 10) & 1 ? 29 : 8, (int32_t)((r >> 12) & 0xffe) - 2048);
    seq[7] = i_type(0x73, 1, 0, 28, s ? 0x141 : 0x341);     /* csrw xepc, x28 */
    seq[8] = i_type(0x13, 0, 28, 0, 0);                     /* li x28, 0 */
    seq[9] = s ? 0x10200073 : 0x30200073;
    return put(code, off, seq, 10);
}

/* Self-modifying code: a valid instruction (made by gen for the target
 * offset) stored into code page 0 (x8), page 1 (x9) or an alias (x29),
 * then fence.i. */
static unsigned gen_smc(uint8_t *code, unsigned off, const uint8_t *b)
{
    uint32_t r = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    unsigned base = (const unsigned[]){ 8, 9, 29 }[b[1] % 3];
    int32_t disp = base == 8 ? (int32_t)((r >> 8) & 0x7fc) : (int32_t)((r >> 8) & 0xffc) - 2048;
    if ((unsigned)disp != away(off + 8, (unsigned)disp))
        disp = base == 8 ? (disp + 32) & 0x7fc : disp < 2000 ? disp + 32 : disp - 32;
    unsigned target = (base == 8 ? 0 : 0x1000) + (unsigned)disp;
    uint8_t tmp[CODE_SIZE + 8];
    uint8_t nb[4] = { (uint8_t)(b[3] % 22 == 15 ? 0 : b[3] % 22), b[2], b[1], b[0] };
    uint32_t insn = 0x00000013;
    target &= CODE_SIZE - 1;
    if (gen(tmp, target, nb) == 4)
        memcpy(&insn, tmp + target, 4);
    uint32_t seq[4];
    li32(seq, 28, insn);
    seq[2] = s_type(2, base, 28, disp);
    seq[3] = 0x0000100f;                                    /* fence.i */
    return put(code, off, seq, 4);
}

/* One instruction (or a pair) at code offset off from 4 input bytes. */
static unsigned gen(uint8_t *code, unsigned off, const uint8_t *b)
{
    uint32_t r = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    unsigned sel = b[0] % 30, rd = pick_rd(b[1]), rs1 = (b[2] >> 3) & 31, rs2 = b[3] & 31;
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
        insn = s_type(2, 9, rs2, (int32_t)away(off, (unsigned)(imm & 0x7fc) % 0x200));
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
    case 24:
        return gen_pte_edit(code, off, r);
    case 25:
        return gen_xret(code, off, r);
    case 26:
        return gen_smc(code, off, b);
    case 27: {                  /* loads/stores through the alias window (x29) */
        int32_t d = imm & ~7;
        if (b[1] & 1) {
            insn = i_type(0x03, b[3] % 7, rd, 29, d);
            break;
        }
        if ((unsigned)d != away(off, (unsigned)d))
            d = d < 2000 ? d + 32 : d - 32;
        uint32_t seq[2] = { s_type(b[3] & 3, 29, rs2, d), 0x0000100f };
        return put(code, off, seq, 2);  /* an alias may map code: fence.i */
    }
    case 28:                    /* jump into the alias window */
        insn = i_type(0x67, 0, rd, 29, imm & ~1);
        break;
    default:
        insn = r;               /* anything */
        break;
    }
    insn = tame32(insn);
    memcpy(code + off, &insn, 4);
    return 4;
}

static void put64(struct side *s, uint64_t pa, uint64_t v)
{
    memcpy(s->ram + (pa - RAM_BASE), &v, 8);
}

/* Input layout: a flags byte, NSLICES (budget, event) byte pairs, 4 bytes
 * per register x1..x31, then 4 bytes per generated instruction. */
static void setup(struct side *s, const uint8_t *data, size_t size, uint8_t *slices)
{
    struct rv64_hart *h = s->h;
    memset(s->ram, 0, RAM_SIZE);
    rv64_hart_reset(h, CODE, 0, 0);
    uint64_t old;
    rv64_csr_rw(h, 0x3b0, 1, ~0ull, true, &old);     /* PMP: everything */
    rv64_csr_rw(h, 0x3a0, 1, 0x1f, true, &old);

    const uint8_t *p = data;
    size_t n = size;
    uint8_t flags = n ? *p++ : 0;
    n -= n ? 1 : 0;
    memset(slices, 0, 2 * NSLICES);
    size_t k = n < 2 * NSLICES ? n : 2 * NSLICES;
    memcpy(slices, p, k);
    p += k, n -= k;

    /* Sv39: the device gigapage; RAM through L1[0] -> L0 (4 KiB leaves:
     * identity, RWX, A, D; the code pages with U when flags bit 2). */
    put64(s, PT + 8 * (MMIO_BASE >> 30), (MMIO_BASE >> 12) << 10 | 0xc7);
    put64(s, PT + 8 * (RAM_BASE >> 30), ((PT + 0x1000) >> 12) << 10 | 1);
    put64(s, PT + 0x1000, (L0 >> 12) << 10 | 1);
    for (unsigned i = 0; i < RAM_SIZE >> 12; i++)
        put64(s, L0 + 8 * i, ((RAM_BASE >> 12) + i) << 10 | (i < 2 && (flags & 4) ? 0xdf : 0xcf));
    /* the PTE menu: a PRNG seeded from the input */
    uint64_t seed = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ull;
    for (unsigned i = 0; i < 64; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        /* Fetches and unfenced stores never share a physical page: code
         * pages and aliases (entries 0..31) map code pages 0, 1 or pages
         * 0x12, 0x13; the data pages (entries 32..63) pages 0x10, 0x11,
         * 0x14, 0x15; both sometimes no RAM at all. */
        static const uint64_t code_ppns[] = { 0, 1, 0x12, 0x13 }, data_ppns[] = { 0x10, 0x11,
                                                                                0x14, 0x15 };
        unsigned pick = (seed >> 8) & 7;
        uint64_t ppn = pick == 7 ? NOT_RAM_PPN
                                 : (RAM_BASE >> 12) + (i < 32 ? code_ppns : data_ppns)[pick & 3];
        uint64_t fl = seed & 0xff;
        if ((seed >> 16) & 3)       /* mostly valid, readable, A and D set */
            fl |= 0xc3;
        put64(s, L0 + MENU_OFF + 8 * i, ppn << 10 | fl);
    }
    /* the alias pages start mapping code page 0, 1, 0, 1 (X, R, A, D; U from
     * flags bit 3) */
    for (unsigned i = 0; i < 4; i++)
        put64(s, L0 + 8 * (64 + i), ((RAM_BASE >> 12) + (i & 1)) << 10 | ((flags & 8) ? 0xdb : 0xcb));

    for (unsigned i = 1; i < 32; i++) {
        uint64_t v = 0;
        k = n < 4 ? n : 4;
        memcpy(&v, p, k);
        p += k, n -= k;
        h->x[i] = v * 0x9e3779b97f4a7c15ull;
        h->f[i] = h->x[i] | ((i & 1) ? 0xffffffff00000000ull : 0);
    }
    h->x[5] = DATA + 0x800;
    h->x[6] = DATA + 0x1800;
    h->x[7] = MMIO_BASE + 0x400;
    h->x[8] = CODE;
    h->x[9] = CODE + 0x1000;
    h->x[29] = ALIAS + 0x1000;
    h->x[30] = (8ull << 60) | (PT >> 12);
    h->mtvec = CODE + 0x40;
    h->stvec = CODE + 0xc0;
    h->mstatus |= (flags & 1) ? MSTATUS_FS : 0;
    h->medeleg = (flags & 2) ? 0xb1ff : 0;
    h->mideleg = (flags & 16) ? MIP_S_MASK : 0;
    h->mie = (flags & 32) ? MIP_ALL : 0;
    h->satp = h->x[30];         /* translation on (for S and U, and MPRV) */
    if (flags & 64)             /* start in S */
        h->priv = PRV_S;
    rv64_update_ctx(h);
    unsigned off = 0;
    while (off + 4 <= CODE_SIZE && n >= 4) {
        unsigned len = gen(s->ram, off, p);
        p += 4, n -= 4;
        off += len ? len : 4;
    }
    /* pages 0x12, 0x13 (fetched through PTEs from the menu) hold a copy */
    memcpy(s->ram + 0x12000, s->ram, CODE_SIZE);
    if (!(flags & 128)) {
        /* Trap handlers (M at +0x40, S at +0xc0; x28 kept in xscratch):
         * an instruction fetch fault (cause 0, 1, 12) or an interrupt
         * resumes in the code region (x8 + epc's low 13 bits, aligned),
         * anything else skips 4 bytes. */
        for (unsigned v = 0; v < 2; v++) {
            int32_t epc = v ? 0x141 : 0x341, cause = v ? 0x142 : 0x342, scr = v ? 0x140 : 0x340;
            uint32_t seq[17] = {
                i_type(0x73, 1, 28, 28, scr),                   /* x28 <-> xscratch */
                i_type(0x73, 2, 28, 0, cause), i_type(0x13, 0, 28, 28, -12),
                b_type(0, 28, 0, 0x18), i_type(0x13, 0, 28, 28, 10), b_type(4, 28, 0, 0x10),
                i_type(0x73, 2, 28, 0, epc), i_type(0x13, 0, 28, 28, 4), j_type(0, 0x18),
                i_type(0x73, 2, 28, 0, epc), i_type(0x13, 1, 28, 28, 51),
                i_type(0x13, 5, 28, 28, 51), i_type(0x13, 7, 28, 28, -4),
                r_type(0x33, 0, 0, 28, 28, 8), i_type(0x73, 1, 0, 28, epc),
                i_type(0x73, 1, 28, 28, scr),                   /* x28 back */
                v ? 0x10200073 : 0x30200073,
            };
            memcpy(s->ram + (v ? 0xc0 : 0x40), seq, sizeof(seq));
        }
    }
    for (unsigned i = 0; i < 0x2000; i++)   /* a data pattern */
        s->ram[DATA - RAM_BASE + i] = (uint8_t)(i * 7);
    s->n = 0;
    s->stopped = false;
}

/* Run s up to `until` instructions (one slice of the machine loop:
 * interrupts taken between exec calls; WFI wakes at once, as a spurious
 * wake-up may). */
static void run(struct side *s, bool jit, uint64_t until)
{
    struct rv64_hart *h = s->h;
    /* host FP sticky flags are per thread: drop the other side's */
    fpu_set_flags(&h->fpu, h->fpu.fflags);
    while (s->n < until && !s->stopped) {
        h->wfi = false;
        int irq = rv64_pending_irq(h);
        if (irq >= 0)
            rv64_take_irq(h, irq);
        h->pauses = 0;
        h->yield = false;
        uint64_t r = jit ? rv64_jit_exec(h, until - s->n) : rv64_exec(h, until - s->n);
        if (!r)
            s->stopped = true;
        s->n += r;
        if (getenv("FUZZ_JIT_TRACE"))
            fprintf(stderr, "%s: +%llu n=%llu pc=%llx priv=%u instret=%llu\n", jit ? "jit" : "int",
                    (unsigned long long)r, (unsigned long long)s->n,
                    (unsigned long long)h->pc, h->priv, (unsigned long long)h->instret);
    }
    fpu_sync(&h->fpu);
}

static void dump(const char *name, const struct side *s)
{
    const struct rv64_hart *h = s->h;
    fprintf(stderr, "%s: n=%llu pc=%llx instret=%llu priv=%u mstatus=%llx mcause=%llx "
            "mepc=%llx mtval=%llx scause=%llx sepc=%llx stval=%llx satp=%llx fflags=%x "
            "mip=%llx/%llx wfi=%d resv=%d/%llx\n", name, (unsigned long long)s->n,
            (unsigned long long)h->pc, (unsigned long long)h->instret, h->priv,
            (unsigned long long)h->mstatus, (unsigned long long)h->mcause,
            (unsigned long long)h->mepc, (unsigned long long)h->mtval,
            (unsigned long long)h->scause, (unsigned long long)h->sepc,
            (unsigned long long)h->stval, (unsigned long long)h->satp, h->fpu.fflags,
            (unsigned long long)h->mip_sw, (unsigned long long)h->mip_hw, h->wfi,
            h->resv_valid, (unsigned long long)h->resv_addr);
    for (unsigned i = 0; i < 32; i++)
        fprintf(stderr, " x%u=%llx%s", i, (unsigned long long)h->x[i], i % 8 == 7 ? "\n" : "");
}

#define SAME(field) (A.h->field == B.h->field)
#define SAME_ARR(field) (!memcmp(A.h->field, B.h->field, sizeof(A.h->field)))

static bool same_state(void)
{
    return A.n == B.n && A.stopped == B.stopped && SAME_ARR(x) && SAME_ARR(f) && SAME(pc) &&
           SAME(priv) && SAME(ctx_fetch) && SAME(ctx_data) && SAME(instret) &&
           SAME(cycle_delta) && SAME(fpu.fflags) && SAME(frm) &&
           SAME(mstatus) && SAME(misa) && SAME(medeleg) && SAME(mideleg) && SAME(mie) &&
           SAME(mtvec) && SAME(mscratch) && SAME(mepc) && SAME(mcause) && SAME(mtval) &&
           SAME(mcounteren) && SAME(menvcfg) && SAME(mcountinhibit) && SAME(mip_sw) &&
           SAME(mip_hw) && SAME(stvec) && SAME(sscratch) && SAME(sepc) && SAME(scause) &&
           SAME(stval) && SAME(satp) && SAME(scounteren) && SAME(senvcfg) && SAME(stimecmp) &&
           SAME_ARR(pmpcfg) && SAME_ARR(pmpaddr) && SAME(resv_valid) &&
           (!A.h->resv_valid || (SAME(resv_addr) && SAME(resv_value))) && SAME(wfi) &&
           !memcmp(A.ram, B.ram, RAM_SIZE);
}

/* Between slices: an interrupt line (event bits 0-2: none, MSIP, MTIP,
 * MEIP, SEIP, STIP) goes to level bit 3; both TLBs are dropped. */
static void event(struct side *s, uint8_t ev)
{
    static const uint64_t lines[] = { 0, MIP_MSIP, MIP_MTIP, MIP_MEIP, MIP_SEIP, MIP_STIP, 0, 0 };
    if (lines[ev & 7])
        rv64_set_irq(s->h, lines[ev & 7], ev & 8);
    rv64_tlb_flush(s->h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        side_init(&A, false);
        side_init(&B, true);
        inited = true;
    }
    uint8_t slices[2 * NSLICES], slices_b[2 * NSLICES];
    setup(&A, data, size, slices);
    setup(&B, data, size, slices_b);
    rv64_jit_flush(B.h);
    const char *dumpf = getenv("FUZZ_JIT_DUMP");   /* the generated code, to disassemble */
    FILE *df = dumpf ? fopen(dumpf, "wb") : NULL;
    if (df) {
        fwrite(A.ram, 1, CODE_SIZE, df);
        fclose(df);
    }
    uint64_t until = 0;
    for (unsigned i = 0; i <= NSLICES; i++) {
        /* slice sizes 1..766 (budget byte b: 3b + 1), the last to STEPS */
        until = i < NSLICES ? until + 3u * slices[2 * i] + 1 : STEPS;
        /* debugging: stop (and compare) at instruction FUZZ_JIT_UNTIL */
        uint64_t stop = getenv("FUZZ_JIT_UNTIL") ? strtoull(getenv("FUZZ_JIT_UNTIL"), NULL, 0)
                                                 : STEPS;
        if (until > stop)
            until = stop;
        if (until > STEPS)
            until = STEPS;
        if (i) {
            event(&A, slices[2 * i - 1]);
            event(&B, slices[2 * i - 1]);
        }
        run(&A, false, until);
        run(&B, true, until);
        if (getenv("FUZZ_JIT_SHOW")) {
            dump("interp", &A);
            dump("jit   ", &B);
        }
        if (!same_state()) {
            fprintf(stderr, "differ after slice %u (to %llu)\n", i, (unsigned long long)until);
            dump("interp", &A);
            dump("jit   ", &B);
            for (unsigned j = 0; j < RAM_SIZE; j++)
                if (A.ram[j] != B.ram[j]) {
                    fprintf(stderr, "RAM differs first at 0x%llx\n",
                            (unsigned long long)(RAM_BASE + j));
                    break;
                }
            abort();
        }
        if (until == stop)
            break;
    }
    if ((dumpf = getenv("FUZZ_JIT_DUMP_END")) && (df = fopen(dumpf, "wb"))) {
        fwrite(A.ram, 1, CODE_SIZE, df);
        fclose(df);
    }
    return 0;
}
