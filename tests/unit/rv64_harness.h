/* Shared harness for the rv64 engine unit tests (tests/unit/test_rv64_*.c).
 *
 * One machine with one hart, 4 MiB of RAM at 0x80000000 and a fake MMIO
 * device on the bus.  A test writes instructions into RAM with the encoders
 * below, sets registers/CSR fields of the hart directly, runs an exact
 * number of instructions with rvt_run() and checks the result with EQ().
 * Everything is static inline: each test program is a single translation
 * unit linked against the engine objects.
 *
 * Memory map used by the tests (physical):
 *   CODE   0x80000000  programs (rvt_reset points pc here)
 *   DATA   0x80010000  data
 *   PT     0x80380000  page tables (rvt_pt_alloc)
 *   MTVEC  0x803f0000  M trap vector, STVEC 0x803f8000 S trap vector
 *   MMIO   0x10000000  fake device, 4 KiB (struct rvt_dev)
 * Nothing below 0x80000000 other than the fake device exists: accesses
 * there are access faults.
 */
#ifndef PETREL_TESTS_RV64_HARNESS_H
#define PETREL_TESTS_RV64_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/log.h"
#include "core/vm.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)
#define CODE RAM_BASE
#define DATA (RAM_BASE + 0x10000)
#define PT_BASE (RAM_BASE + 0x380000)
#define PT_END (RAM_BASE + 0x3f0000)
#define MTVEC_ADDR (RAM_BASE + 0x3f0000)
#define STVEC_ADDR (RAM_BASE + 0x3f8000)
#define MMIO_BASE 0x10000000ull
#define MMIO_SIZE 0x1000ull
#define NOWHERE 0x40000000ull /* no RAM, no device */

/* ------------------------------------------------------------------ */
/* Fake MMIO device: 4 KiB of byte registers, logs the last access.    */

struct rvt_dev {
    uint8_t mem[MMIO_SIZE];
    unsigned reads, writes;
    uint64_t last_off, last_val;
    unsigned last_size;
};

/* ------------------------------------------------------------------ */
/* State                                                                */

static struct {
    struct vm vm;            /* zeroed; rv64_exec doesn't use it */
    uint8_t *ram;
    struct rv64_machine *m;
    struct rv64_hart *h;
    uint64_t emit;           /* where rvt_emit() writes next */
    uint64_t pt_next;        /* page-table allocator */
    struct rvt_dev dev;
    const char *test;        /* current test name, for failure messages */
    int pass, fail;
} rvt;

#define H (rvt.h)

/* ------------------------------------------------------------------ */
/* Assertions                                                           */

static inline void rvt_eq(const char *file, int line, const char *expr, uint64_t got,
                          uint64_t want)
{
    if (got == want) {
        rvt.pass++;
        return;
    }
    rvt.fail++;
    printf("FAIL %s:%d [%s]: %s\n    got  0x%016llx\n    want 0x%016llx\n", file, line,
           rvt.test ? rvt.test : "-", expr, (unsigned long long)got, (unsigned long long)want);
}

/* EQ(actual, expected): 64-bit comparison, printed in hex on failure. */
#define EQ(a, b) rvt_eq(__FILE__, __LINE__, #a " == " #b, (uint64_t)(a), (uint64_t)(b))
#define CHECK(c) rvt_eq(__FILE__, __LINE__, #c, (uint64_t)!!(c), 1)
/* EQN(name, actual, expected): same, with a descriptive name (table-driven tests). */
#define EQN(name, a, b) rvt_eq(__FILE__, __LINE__, (name), (uint64_t)(a), (uint64_t)(b))

/* The hart took an exception/interrupt into M-mode at epc. */
#define MTRAP(cause, epc, tval)                          \
    do {                                                 \
        EQ(H->mcause, (cause));                          \
        EQ(H->mepc, (epc));                              \
        EQ(H->mtval, (tval));                            \
        EQ(H->priv, PRV_M);                              \
        EQ(H->pc, H->mtvec & ~3ull);                     \
    } while (0)
/* Same, without checking tval. */
#define MTRAP_NOTVAL(cause, epc)                         \
    do {                                                 \
        EQ(H->mcause, (cause));                          \
        EQ(H->mepc, (epc));                              \
        EQ(H->priv, PRV_M);                              \
        EQ(H->pc, H->mtvec & ~3ull);                     \
    } while (0)

static inline int rvt_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, rvt.pass, rvt.fail);
    rv64_free(rvt.m);
    free(rvt.ram);
    return rvt.fail ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Physical memory helpers (RAM only)                                   */

static inline uint8_t *rvt_ptr(uint64_t pa, uint64_t len)
{
    if (pa < RAM_BASE || pa - RAM_BASE + len > RAM_SIZE) {
        fprintf(stderr, "harness: bad RAM address 0x%llx\n", (unsigned long long)pa);
        abort();
    }
    return rvt.ram + (pa - RAM_BASE);
}
static inline void rvt_w8(uint64_t pa, uint8_t v) { *rvt_ptr(pa, 1) = v; }
static inline void rvt_w16(uint64_t pa, uint16_t v) { memcpy(rvt_ptr(pa, 2), &v, 2); }
static inline void rvt_w32(uint64_t pa, uint32_t v) { memcpy(rvt_ptr(pa, 4), &v, 4); }
static inline void rvt_w64(uint64_t pa, uint64_t v) { memcpy(rvt_ptr(pa, 8), &v, 8); }
static inline uint8_t rvt_r8(uint64_t pa) { return *rvt_ptr(pa, 1); }
static inline uint16_t rvt_r16(uint64_t pa) { uint16_t v; memcpy(&v, rvt_ptr(pa, 2), 2); return v; }
static inline uint32_t rvt_r32(uint64_t pa) { uint32_t v; memcpy(&v, rvt_ptr(pa, 4), 4); return v; }
static inline uint64_t rvt_r64(uint64_t pa) { uint64_t v; memcpy(&v, rvt_ptr(pa, 8), 8); return v; }

/* ------------------------------------------------------------------ */
/* Fake device ops                                                      */

static inline uint64_t rvt_dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct rvt_dev *d = opaque;
    uint64_t v = 0;
    memcpy(&v, d->mem + off, size);
    d->reads++;
    d->last_off = off;
    d->last_size = size;
    d->last_val = v;
    return v;
}
static inline void rvt_dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct rvt_dev *d = opaque;
    memcpy(d->mem + off, &val, size);
    d->writes++;
    d->last_off = off;
    d->last_size = size;
    d->last_val = val;
}
static const struct mmio_ops rvt_dev_ops = { rvt_dev_read, rvt_dev_write };

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static inline void rvt_init(void)
{
    struct err e;
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep failure lines if a sanitizer aborts */
    rvt.ram = calloc(1, RAM_SIZE);
    if (!rvt.ram)
        abort();
    if (bus_add(&rvt.vm.bus, MMIO_BASE, MMIO_SIZE, &rvt_dev_ops, &rvt.dev, "rvt-dev", &e) < 0) {
        fprintf(stderr, "bus_add: %s\n", e.msg);
        abort();
    }
    rvt.vm.cfg.cpu_mode = CPU_MODE_INTERP;     /* the JIT only on request, below */
    rvt.m = rv64_new(&rvt.vm, &rvt.vm.bus, rvt.ram, RAM_BASE, RAM_SIZE, 1, &e);
    if (!rvt.m) {
        fprintf(stderr, "rv64_new: %s\n", e.msg);
        abort();
    }
    rvt.m->clint = NULL; /* time reads 0 */
    rvt.h = rvt.m->harts[0];
    /* RVT_CPU_MODE=jit: run the same tests under the JIT (tests/test_unit.py) */
    const char *mode = getenv("RVT_CPU_MODE");
    if (mode && !strcmp(mode, "jit") && rv64_jit_init(rvt.m, &e) < 0) {
        fprintf(stderr, "rv64_jit_init: %s\n", e.msg);
        abort();
    }
}

/* Start a new test: clear RAM and the device, reset the hart (M-mode,
 * pc = CODE, bare translation), set the trap vectors. */
static inline void rvt_begin(const char *name)
{
    rvt.test = name;
    memset(rvt.ram, 0, RAM_SIZE);
    memset(&rvt.dev, 0, sizeof(rvt.dev));
    rv64_hart_reset(rvt.h, CODE, 0, 0);
    /* PMP open for S and U (as firmware leaves it): NAPOT over everything */
    uint64_t old;
    rv64_csr_rw(rvt.h, 0x3b0, 1, ~0ull, true, &old);
    rv64_csr_rw(rvt.h, 0x3a0, 1, 0x1f, true, &old);
    H->x[10] = 0;
    H->mtvec = MTVEC_ADDR;
    H->stvec = STVEC_ADDR;
    rvt.emit = CODE;
    rvt.pt_next = PT_BASE;
    /* Access faults are expected here: keep the rate-limited guest log quiet. */
    rvt.m->guest_log.window_start_ns = time_now_ns();
    rvt.m->guest_log.count = 1000;
}

/* Run exactly n instructions (traps count as one); returns how many ran. */
static inline uint64_t rvt_run(uint64_t n)
{
    uint64_t done = 0;
    rvt.m->guest_log.window_start_ns = time_now_ns();
    rvt.m->guest_log.count = 1000;
    /* tests write code straight into RAM: nothing translated before stays */
    rv64_jit_flush(H);
    while (done < n) {
        uint64_t r = H->jit ? rv64_jit_exec(H, n - done) : rv64_exec(H, n - done);
        if (r == 0)
            break;
        done += r;
    }
    return done;
}

/* Set pc and run n instructions. */
static inline uint64_t rvt_run_at(uint64_t pc, uint64_t n)
{
    H->pc = pc;
    return rvt_run(n);
}

/* Change privilege level directly (no trap), updating the contexts. */
static inline void rvt_set_priv(unsigned priv)
{
    H->priv = priv;
    rv64_update_ctx(H);
}
/* Set mstatus directly (contexts and TLB kept consistent). */
static inline void rvt_set_mstatus(uint64_t v)
{
    H->mstatus = v;
    rv64_tlb_flush(H);
    rv64_update_ctx(H);
}
static inline void rvt_set_satp(uint64_t v)
{
    H->satp = v;
    rv64_tlb_flush(H);
}

/* ------------------------------------------------------------------ */
/* Emitting code                                                        */

static inline void rvt_org(uint64_t pa) { rvt.emit = pa; }
static inline uint64_t rvt_emit(uint32_t insn)
{
    uint64_t a = rvt.emit;
    rvt_w32(a, insn);
    rvt.emit += 4;
    return a;
}
static inline uint64_t rvt_emit16(uint16_t insn)
{
    uint64_t a = rvt.emit;
    rvt_w16(a, insn);
    rvt.emit += 2;
    return a;
}
/* Put one 32-bit instruction at CODE and run it. */
static inline void rvt_one(uint32_t insn)
{
    rvt_w32(CODE, insn);
    rvt_run_at(CODE, 1);
}
/* Put one 16-bit instruction at CODE and run it. */
static inline void rvt_one16(uint16_t insn)
{
    rvt_w16(CODE, insn);
    rvt_run_at(CODE, 1);
}

/* ------------------------------------------------------------------ */
/* 32-bit instruction encoders                                          */

enum { X0, RA, SP, GP, TP, T0, T1, T2, S0, S1, A0, A1, A2, A3, A4, A5, A6, A7,
       S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, T3, T4, T5, T6 };

static inline uint32_t enc_r(unsigned opc, unsigned f3, unsigned f7, unsigned rd, unsigned rs1,
                             unsigned rs2)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
static inline uint32_t enc_i(unsigned opc, unsigned f3, unsigned rd, unsigned rs1, int32_t imm)
{
    return (uint32_t)imm << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
static inline uint32_t enc_s(unsigned opc, unsigned f3, unsigned rs1, unsigned rs2, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (u >> 5 & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | opc;
}
static inline uint32_t enc_b(unsigned f3, unsigned rs1, unsigned rs2, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (u >> 12 & 1) << 31 | (u >> 5 & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           (u >> 1 & 0xf) << 8 | (u >> 11 & 1) << 7 | 0x63;
}
static inline uint32_t enc_u(unsigned opc, unsigned rd, uint32_t imm20)
{
    return (imm20 & 0xfffff) << 12 | rd << 7 | opc;
}
static inline uint32_t enc_j(unsigned rd, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (u >> 20 & 1) << 31 | (u >> 1 & 0x3ff) << 21 | (u >> 11 & 1) << 20 |
           (u >> 12 & 0xff) << 12 | rd << 7 | 0x6f;
}

#define LUI(rd, imm20) enc_u(0x37, rd, imm20)
#define AUIPC(rd, imm20) enc_u(0x17, rd, imm20)
#define JAL(rd, off) enc_j(rd, off)
#define JALR(rd, rs1, imm) enc_i(0x67, 0, rd, rs1, imm)
#define BEQ(a, b, off) enc_b(0, a, b, off)
#define BNE(a, b, off) enc_b(1, a, b, off)
#define BLT(a, b, off) enc_b(4, a, b, off)
#define BGE(a, b, off) enc_b(5, a, b, off)
#define BLTU(a, b, off) enc_b(6, a, b, off)
#define BGEU(a, b, off) enc_b(7, a, b, off)
/* loads: L*(rd, rs1, imm) = l* rd, imm(rs1); stores: S*(rs2, rs1, imm) = s* rs2, imm(rs1) */
#define LB(rd, rs1, imm) enc_i(0x03, 0, rd, rs1, imm)
#define LH(rd, rs1, imm) enc_i(0x03, 1, rd, rs1, imm)
#define LW(rd, rs1, imm) enc_i(0x03, 2, rd, rs1, imm)
#define LD(rd, rs1, imm) enc_i(0x03, 3, rd, rs1, imm)
#define LBU(rd, rs1, imm) enc_i(0x03, 4, rd, rs1, imm)
#define LHU(rd, rs1, imm) enc_i(0x03, 5, rd, rs1, imm)
#define LWU(rd, rs1, imm) enc_i(0x03, 6, rd, rs1, imm)
#define SB(rs2, rs1, imm) enc_s(0x23, 0, rs1, rs2, imm)
#define SH(rs2, rs1, imm) enc_s(0x23, 1, rs1, rs2, imm)
#define SW(rs2, rs1, imm) enc_s(0x23, 2, rs1, rs2, imm)
#define SD(rs2, rs1, imm) enc_s(0x23, 3, rs1, rs2, imm)
#define ADDI(rd, rs1, imm) enc_i(0x13, 0, rd, rs1, imm)
#define SLTI(rd, rs1, imm) enc_i(0x13, 2, rd, rs1, imm)
#define SLTIU(rd, rs1, imm) enc_i(0x13, 3, rd, rs1, imm)
#define XORI(rd, rs1, imm) enc_i(0x13, 4, rd, rs1, imm)
#define ORI(rd, rs1, imm) enc_i(0x13, 6, rd, rs1, imm)
#define ANDI(rd, rs1, imm) enc_i(0x13, 7, rd, rs1, imm)
#define SLLI(rd, rs1, sh) enc_i(0x13, 1, rd, rs1, sh)
#define SRLI(rd, rs1, sh) enc_i(0x13, 5, rd, rs1, sh)
#define SRAI(rd, rs1, sh) enc_i(0x13, 5, rd, rs1, 0x400 | (sh))
#define ADD(rd, a, b) enc_r(0x33, 0, 0, rd, a, b)
#define SUB(rd, a, b) enc_r(0x33, 0, 0x20, rd, a, b)
#define SLL(rd, a, b) enc_r(0x33, 1, 0, rd, a, b)
#define SLT(rd, a, b) enc_r(0x33, 2, 0, rd, a, b)
#define SLTU(rd, a, b) enc_r(0x33, 3, 0, rd, a, b)
#define XOR(rd, a, b) enc_r(0x33, 4, 0, rd, a, b)
#define SRL(rd, a, b) enc_r(0x33, 5, 0, rd, a, b)
#define SRA(rd, a, b) enc_r(0x33, 5, 0x20, rd, a, b)
#define OR(rd, a, b) enc_r(0x33, 6, 0, rd, a, b)
#define AND(rd, a, b) enc_r(0x33, 7, 0, rd, a, b)
#define ADDIW(rd, rs1, imm) enc_i(0x1b, 0, rd, rs1, imm)
#define SLLIW(rd, rs1, sh) enc_i(0x1b, 1, rd, rs1, sh)
#define SRLIW(rd, rs1, sh) enc_i(0x1b, 5, rd, rs1, sh)
#define SRAIW(rd, rs1, sh) enc_i(0x1b, 5, rd, rs1, 0x400 | (sh))
#define ADDW(rd, a, b) enc_r(0x3b, 0, 0, rd, a, b)
#define SUBW(rd, a, b) enc_r(0x3b, 0, 0x20, rd, a, b)
#define SLLW(rd, a, b) enc_r(0x3b, 1, 0, rd, a, b)
#define SRLW(rd, a, b) enc_r(0x3b, 5, 0, rd, a, b)
#define SRAW(rd, a, b) enc_r(0x3b, 5, 0x20, rd, a, b)
#define MUL(rd, a, b) enc_r(0x33, 0, 1, rd, a, b)
#define MULH(rd, a, b) enc_r(0x33, 1, 1, rd, a, b)
#define MULHSU(rd, a, b) enc_r(0x33, 2, 1, rd, a, b)
#define MULHU(rd, a, b) enc_r(0x33, 3, 1, rd, a, b)
#define DIV(rd, a, b) enc_r(0x33, 4, 1, rd, a, b)
#define DIVU(rd, a, b) enc_r(0x33, 5, 1, rd, a, b)
#define REM(rd, a, b) enc_r(0x33, 6, 1, rd, a, b)
#define REMU(rd, a, b) enc_r(0x33, 7, 1, rd, a, b)
#define MULW(rd, a, b) enc_r(0x3b, 0, 1, rd, a, b)
#define DIVW(rd, a, b) enc_r(0x3b, 4, 1, rd, a, b)
#define DIVUW(rd, a, b) enc_r(0x3b, 5, 1, rd, a, b)
#define REMW(rd, a, b) enc_r(0x3b, 6, 1, rd, a, b)
#define REMUW(rd, a, b) enc_r(0x3b, 7, 1, rd, a, b)
#define ECALL 0x00000073u
#define EBREAK 0x00100073u
#define MRET 0x30200073u
#define SRET 0x10200073u
#define WFI 0x10500073u
#define NOP 0x00000013u
#define SFENCE_VMA(rs1, rs2) enc_r(0x73, 0, 0x09, 0, rs1, rs2)
#define CSRRW(rd, csr, rs1) enc_i(0x73, 1, rd, rs1, csr)
#define CSRRS(rd, csr, rs1) enc_i(0x73, 2, rd, rs1, csr)
#define CSRRC(rd, csr, rs1) enc_i(0x73, 3, rd, rs1, csr)
#define CSRRWI(rd, csr, u) enc_i(0x73, 5, rd, u, csr)
#define CSRRSI(rd, csr, u) enc_i(0x73, 6, rd, u, csr)
#define CSRRCI(rd, csr, u) enc_i(0x73, 7, rd, u, csr)
#define CSRR(rd, csr) CSRRS(rd, csr, X0)
#define CSRW(csr, rs1) CSRRW(X0, csr, rs1)
/* A extension (aq = rl = 0) */
#define AMO_W(f5, rd, rs1, rs2) enc_r(0x2f, 2, (f5) << 2, rd, rs1, rs2)
#define AMO_D(f5, rd, rs1, rs2) enc_r(0x2f, 3, (f5) << 2, rd, rs1, rs2)
#define LR_W(rd, rs1) AMO_W(0x02, rd, rs1, 0)
#define LR_D(rd, rs1) AMO_D(0x02, rd, rs1, 0)
#define SC_W(rd, rs1, rs2) AMO_W(0x03, rd, rs1, rs2)
#define SC_D(rd, rs1, rs2) AMO_D(0x03, rd, rs1, rs2)
/* F/D moves and memory (register numbers are f registers where it applies) */
#define FLW(fd, rs1, imm) enc_i(0x07, 2, fd, rs1, imm)
#define FLD(fd, rs1, imm) enc_i(0x07, 3, fd, rs1, imm)
#define FSW(fs2, rs1, imm) enc_s(0x27, 2, rs1, fs2, imm)
#define FSD(fs2, rs1, imm) enc_s(0x27, 3, rs1, fs2, imm)
#define FMV_X_W(rd, fs1) enc_r(0x53, 0, 0x70, rd, fs1, 0)
#define FMV_X_D(rd, fs1) enc_r(0x53, 0, 0x71, rd, fs1, 0)
#define FMV_W_X(fd, rs1) enc_r(0x53, 0, 0x78, fd, rs1, 0)
#define FMV_D_X(fd, rs1) enc_r(0x53, 0, 0x79, fd, rs1, 0)
#define FADD_S(fd, a, b) enc_r(0x53, 0, 0x00, fd, a, b)

/* CSR numbers */
enum {
    CSR_FFLAGS = 0x001, CSR_FRM = 0x002, CSR_FCSR = 0x003,
    CSR_CYCLE = 0xc00, CSR_TIME = 0xc01, CSR_INSTRET = 0xc02,
    CSR_SSTATUS = 0x100, CSR_SIE = 0x104, CSR_STVEC = 0x105, CSR_SCOUNTEREN = 0x106,
    CSR_SSCRATCH = 0x140, CSR_SEPC = 0x141, CSR_SCAUSE = 0x142, CSR_STVAL = 0x143,
    CSR_SIP = 0x144, CSR_SATP = 0x180,
    CSR_MVENDORID = 0xf11, CSR_MHARTID = 0xf14,
    CSR_MSTATUS = 0x300, CSR_MISA = 0x301, CSR_MEDELEG = 0x302, CSR_MIDELEG = 0x303,
    CSR_MIE = 0x304, CSR_MTVEC = 0x305, CSR_MCOUNTEREN = 0x306,
    CSR_MSCRATCH = 0x340, CSR_MEPC = 0x341, CSR_MCAUSE = 0x342, CSR_MTVAL = 0x343,
    CSR_MIP = 0x344, CSR_MCYCLE = 0xb00, CSR_MINSTRET = 0xb02,
};

/* ------------------------------------------------------------------ */
/* 16-bit (C extension) encoders.  Registers written rdp/rs1p/rs2p must */
/* be x8..x15.                                                          */

static inline uint16_t c_ci(unsigned f3, unsigned op, unsigned rd, int imm)
{
    return (uint16_t)(f3 << 13 | ((unsigned)imm >> 5 & 1) << 12 | rd << 7 |
                      ((unsigned)imm & 0x1f) << 2 | op);
}
static inline uint16_t c_cl(unsigned f3, unsigned rdp, unsigned rs1p, unsigned off, bool dbl)
{
    unsigned lo = dbl ? (off >> 6 & 3) << 5 : (off >> 2 & 1) << 6 | (off >> 6 & 1) << 5;
    return (uint16_t)(f3 << 13 | (off >> 3 & 7) << 10 | (rs1p - 8) << 7 | lo | (rdp - 8) << 2);
}
static inline uint16_t c_cb(unsigned f2, unsigned rdp, int imm)
{
    return (uint16_t)(4u << 13 | ((unsigned)imm >> 5 & 1) << 12 | f2 << 10 | (rdp - 8) << 7 |
                      ((unsigned)imm & 0x1f) << 2 | 1);
}
static inline uint16_t c_ca(unsigned b12, unsigned f2, unsigned rdp, unsigned rs2p)
{
    return (uint16_t)(4u << 13 | b12 << 12 | 3u << 10 | (rdp - 8) << 7 | f2 << 5 |
                      (rs2p - 8) << 2 | 1);
}
static inline uint16_t c_branch(unsigned f3, unsigned rs1p, int off)
{
    unsigned u = (unsigned)off;
    return (uint16_t)(f3 << 13 | (u >> 8 & 1) << 12 | (u >> 3 & 3) << 10 | (rs1p - 8) << 7 |
                      (u >> 6 & 3) << 5 | (u >> 1 & 3) << 3 | (u >> 5 & 1) << 2 | 1);
}
static inline uint16_t C_J(int off)
{
    unsigned u = (unsigned)off;
    return (uint16_t)(5u << 13 | (u >> 11 & 1) << 12 | (u >> 4 & 1) << 11 | (u >> 8 & 3) << 9 |
                      (u >> 10 & 1) << 8 | (u >> 6 & 1) << 7 | (u >> 7 & 1) << 6 |
                      (u >> 1 & 7) << 3 | (u >> 5 & 1) << 2 | 1);
}
static inline uint16_t C_ADDI16SP(int imm)
{
    unsigned u = (unsigned)imm;
    return (uint16_t)(3u << 13 | (u >> 9 & 1) << 12 | 2u << 7 | (u >> 4 & 1) << 6 |
                      (u >> 6 & 1) << 5 | (u >> 7 & 3) << 3 | (u >> 5 & 1) << 2 | 1);
}
static inline uint16_t C_ADDI4SPN(unsigned rdp, unsigned imm)
{
    return (uint16_t)((imm >> 4 & 3) << 11 | (imm >> 6 & 0xf) << 7 | (imm >> 2 & 1) << 6 |
                      (imm >> 3 & 1) << 5 | (rdp - 8) << 2);
}
static inline uint16_t c_ldsp(unsigned f3, unsigned rd, unsigned off)
{
    return (uint16_t)(f3 << 13 | (off >> 5 & 1) << 12 | rd << 7 | (off >> 3 & 3) << 5 |
                      (off >> 6 & 7) << 2 | 2);
}
static inline uint16_t C_LWSP(unsigned rd, unsigned off)
{
    return (uint16_t)(2u << 13 | (off >> 5 & 1) << 12 | rd << 7 | (off >> 2 & 7) << 4 |
                      (off >> 6 & 3) << 2 | 2);
}
static inline uint16_t C_SWSP(unsigned rs2, unsigned off)
{
    return (uint16_t)(6u << 13 | (off >> 2 & 0xf) << 9 | (off >> 6 & 3) << 7 | rs2 << 2 | 2);
}
static inline uint16_t c_sdsp(unsigned f3, unsigned rs2, unsigned off)
{
    return (uint16_t)(f3 << 13 | (off >> 3 & 7) << 10 | (off >> 6 & 7) << 7 | rs2 << 2 | 2);
}

#define C_NOP 0x0001u
#define C_EBREAK 0x9002u
#define C_ADDI(rd, imm) c_ci(0, 1, rd, imm)
#define C_ADDIW(rd, imm) c_ci(1, 1, rd, imm)
#define C_LI(rd, imm) c_ci(2, 1, rd, imm)
#define C_LUI(rd, imm6) c_ci(3, 1, rd, imm6) /* rd = sext(imm6 << 12) */
#define C_SLLI(rd, sh) c_ci(0, 2, rd, sh)
#define C_FLD(rdp, rs1p, off) c_cl(1, rdp, rs1p, off, true)
#define C_LW(rdp, rs1p, off) c_cl(2, rdp, rs1p, off, false)
#define C_LD(rdp, rs1p, off) c_cl(3, rdp, rs1p, off, true)
#define C_FSD(rs2p, rs1p, off) c_cl(5, rs2p, rs1p, off, true)
#define C_SW(rs2p, rs1p, off) c_cl(6, rs2p, rs1p, off, false)
#define C_SD(rs2p, rs1p, off) c_cl(7, rs2p, rs1p, off, true)
#define C_SRLI(rdp, sh) c_cb(0, rdp, sh)
#define C_SRAI(rdp, sh) c_cb(1, rdp, sh)
#define C_ANDI(rdp, imm) c_cb(2, rdp, imm)
#define C_SUB(rdp, rs2p) c_ca(0, 0, rdp, rs2p)
#define C_XOR(rdp, rs2p) c_ca(0, 1, rdp, rs2p)
#define C_OR(rdp, rs2p) c_ca(0, 2, rdp, rs2p)
#define C_AND(rdp, rs2p) c_ca(0, 3, rdp, rs2p)
#define C_SUBW(rdp, rs2p) c_ca(1, 0, rdp, rs2p)
#define C_ADDW(rdp, rs2p) c_ca(1, 1, rdp, rs2p)
#define C_BEQZ(rs1p, off) c_branch(6, rs1p, off)
#define C_BNEZ(rs1p, off) c_branch(7, rs1p, off)
#define C_FLDSP(fd, off) c_ldsp(1, fd, off)
#define C_LDSP(rd, off) c_ldsp(3, rd, off)
#define C_FSDSP(fs2, off) c_sdsp(5, fs2, off)
#define C_SDSP(rs2, off) c_sdsp(7, rs2, off)
#define C_JR(rs1) ((uint16_t)(0x8002u | (rs1) << 7))
#define C_MV(rd, rs2) ((uint16_t)(0x8002u | (rd) << 7 | (rs2) << 2))
#define C_JALR(rs1) ((uint16_t)(0x9002u | (rs1) << 7))
#define C_ADD(rd, rs2) ((uint16_t)(0x9002u | (rd) << 7 | (rs2) << 2))

/* ------------------------------------------------------------------ */
/* Page tables                                                          */

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define SATP_SV39 8ull
#define SATP_SV48 9ull

static inline uint64_t rvt_pt_alloc(void)
{
    uint64_t a = rvt.pt_next;
    if (a >= PT_END) {
        fprintf(stderr, "harness: out of page-table memory\n");
        abort();
    }
    rvt.pt_next += 0x1000;
    memset(rvt_ptr(a, 0x1000), 0, 0x1000);
    return a;
}

static inline uint64_t rvt_satp(uint64_t mode, uint64_t root)
{
    return mode << 60 | root >> 12;
}

/* Map va -> pa with a leaf PTE at `level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB,
 * 3: 512 GiB) in a `levels`-level table (3 Sv39, 4 Sv48) rooted at root.
 * Intermediate tables are allocated as needed.  `flags` are the leaf's
 * low bits (PTE_V etc.); pa is used as is (may be misaligned on purpose).
 * Returns the physical address of the leaf PTE. */
static inline uint64_t rvt_map(uint64_t root, int levels, uint64_t va, uint64_t pa, int level,
                               uint64_t flags)
{
    uint64_t table = root;
    for (int i = levels - 1; i > level; i--) {
        uint64_t pte_pa = table + ((va >> (12 + 9 * i)) & 511) * 8;
        uint64_t pte = rvt_r64(pte_pa);
        if (!(pte & PTE_V)) {
            uint64_t t = rvt_pt_alloc();
            pte = (t >> 12) << 10 | PTE_V;
            rvt_w64(pte_pa, pte);
        }
        table = ((pte >> 10) & ((1ull << 44) - 1)) << 12;
    }
    uint64_t pte_pa = table + ((va >> (12 + 9 * level)) & 511) * 8;
    rvt_w64(pte_pa, (pa >> 12) << 10 | flags);
    return pte_pa;
}

#endif
