/* traps test: leaf helpers with known instruction addresses/encodings.
 * CSR helpers use rd = a0, rs1 = a1 so traps.c can compute the encoding. */
    .option norelax
    .text

.macro FN name
    .globl \name
    .balign 4
\name:
.endm

FN do_ecall
    li a7, 0
    .globl ecall_insn
ecall_insn:
    ecall
    ret

FN do_ebreak
    .globl ebreak_insn
ebreak_insn:
    .option push
    .option norvc
    ebreak
    .option pop
    ret

FN do_cebreak
    .globl cebreak_insn
cebreak_insn:
    c.ebreak
    ret

/* 32-bit encoding in the OP major opcode with funct7 = 0x7f: reserved */
FN do_ill32
    .word 0xfe000033
    ret

/* 0x0000: the defined-illegal 16-bit instruction (c.unimp) */
FN do_ill16
    .half 0x0000
    ret

FN do_mret
    mret
    ret

FN do_sret
    sret
    ret

FN do_wfi
    wfi
    ret

FN do_sfence
    sfence.vma
    ret

.macro DEF_RD name, csr
FN \name
    csrr a0, \csr
    ret
.endm
.macro DEF_WR name, csr
FN \name
    csrw \csr, a1
    ret
.endm

    DEF_RD rd_mstatus, mstatus
    DEF_RD rd_mscratch, mscratch
    DEF_RD rd_medeleg, medeleg
    DEF_RD rd_mtvec, mtvec
    DEF_RD rd_sstatus, sstatus
    DEF_RD rd_sscratch, sscratch
    DEF_RD rd_satp, satp
    DEF_RD rd_cycle, cycle
    DEF_RD rd_time, time
    DEF_RD rd_instret, instret
    DEF_RD rd_mhartid, mhartid
    DEF_RD rd_csr0ff, 0x0ff
    DEF_WR wr_cycle, cycle
    DEF_WR wr_mvendorid, mvendorid
    DEF_WR wr_satp, satp
    DEF_WR wr_sscratch, sscratch

/* csrrs a0, mhartid, a1 (rs1 != x0: a write attempt) */
FN set_mhartid
    csrrs a0, mhartid, a1
    ret
/* csrrw x0, mvendorid, x0: CSRRW always writes */
FN wr_mvendorid_x0
    csrrw x0, mvendorid, x0
    ret
/* csrrsi/csrrci with uimm = 0: no write, allowed on read-only CSRs */
FN rsi0_mhartid
    csrrsi a0, mhartid, 0
    ret
FN rci0_cycle
    csrrci a0, cycle, 0
    ret

/* u64 mret_probe(u64 set): M-mode only.  Clears MIE/MPIE/MPP, sets the bits
 * in a0 (MPP must be M), mret to the next instruction and returns mstatus
 * as seen after the mret.  Clears MIE again before returning. */
FN mret_probe
    li t0, (1 << 3) | (1 << 7) | (3 << 11)
    csrc mstatus, t0
    csrs mstatus, a0
    la t1, 1f
    csrw mepc, t1
    mret
1:  csrr a0, mstatus
    csrci mstatus, 8
    ret

/* u64 sret_probe(u64 set): S-mode.  Same for sstatus (SIE/SPIE/SPP): if SPP
 * is set the sret returns to S and this returns sstatus after the sret; if
 * SPP is clear it lands in U-mode and returns 0x5555 from there. */
FN sret_probe
    li t0, (1 << 1) | (1 << 5) | (1 << 8)
    csrc sstatus, t0
    csrs sstatus, a0
    la t1, 1f
    csrw sepc, t1
    andi t2, a0, (1 << 8)
    sret
1:  beqz t2, 2f
    csrr a0, sstatus
    csrci sstatus, 2
    ret
2:  li a0, 0x5555
    ret
