/* rvtest: hand-written instruction sequences (compressed forms, auipc, jalr,
 * LR/SC sequences, instructions at odd alignments and across pages). */
    .option norelax
    .text

/* void c_ops(u64 *out): results of explicit c.* instructions, see rvtest.c */
    .globl c_ops
    .balign 4
c_ops:
    c.addi16sp sp, -64
    c.sdsp ra, 56(sp)
    c.sdsp s0, 48(sp)
    c.sdsp s1, 40(sp)
    c.mv s0, a0
    lla s1, c_scratch
    /* 0: c.li negative */
    c.li a1, -5
    c.sd a1, 0(s0)
    /* 1: c.li + c.addi */
    c.li a2, 31
    c.addi a2, -32
    c.sd a2, 8(s0)
    /* 2: c.lui negative (sign-extended) */
    c.lui a3, 0xfffe0
    c.sd a3, 16(s0)
    /* 3: c.lui positive */
    c.lui a4, 31
    c.sd a4, 24(s0)
    /* 4: c.addiw overflow */
    li a5, 0x7fffffff
    c.addiw a5, 1
    c.sd a5, 32(s0)
    /* 5: c.addiw 0 == sext.w */
    li a5, 0x180000000
    c.addiw a5, 0
    c.sd a5, 40(s0)
    /* 6: c.srli */
    c.li a1, -16
    c.srli a1, 60
    c.sd a1, 48(s0)
    /* 7: c.srai */
    c.li a1, -16
    c.srai a1, 2
    c.sd a1, 56(s0)
    /* 8: c.slli */
    c.li a1, 1
    c.slli a1, 63
    c.sd a1, 64(s0)
    /* 9: c.andi negative immediate */
    li a1, 0xff
    c.andi a1, -16
    c.sd a1, 72(s0)
    /* 10: c.mv, c.add */
    c.li a1, 21
    c.mv a2, a1
    c.add a2, a1
    c.sd a2, 80(s0)
    /* 11: c.sub */
    c.li a1, 5
    c.li a2, 7
    c.sub a1, a2
    c.sd a1, 88(s0)
    /* 12: c.xor */
    li a1, 0xf0
    li a2, 0xff
    c.xor a1, a2
    c.sd a1, 96(s0)
    /* 13: c.or */
    li a1, 0xf0
    c.li a2, 0x0f
    c.or a1, a2
    c.sd a1, 104(s0)
    /* 14: c.and */
    li a1, 0xf0
    li a2, 0x3c
    c.and a1, a2
    c.sd a1, 112(s0)
    /* 15: c.addw overflow */
    li a1, 0x7fffffff
    c.li a2, 1
    c.addw a1, a2
    c.sd a1, 120(s0)
    /* 16: c.subw */
    li a1, 0x80000000
    c.li a2, 1
    c.subw a1, a2
    c.sd a1, 128(s0)
    /* 17: c.sw / c.lw (sign-extending) */
    li a1, 0x80000001
    c.sw a1, 0(s1)
    c.lw a2, 0(s1)
    c.sd a2, 136(s0)
    /* 18: c.sd / c.ld */
    li a1, 0x123456789abcdef0
    c.sd a1, 8(s1)
    c.ld a2, 8(s1)
    c.sd a2, 144(s0)
    /* 19: c.swsp / c.lwsp */
    li a1, 0xfffffffe
    c.swsp a1, 0(sp)
    c.lwsp a2, 0(sp)
    c.sd a2, 152(s0)
    /* 20: c.sdsp / c.ldsp */
    li a1, 0x0fedcba987654321
    c.sdsp a1, 8(sp)
    c.ldsp a2, 8(sp)
    c.sd a2, 160(s0)
    /* 21: c.addi4spn */
    c.addi4spn a1, sp, 16
    c.mv a2, sp
    c.sub a1, a2
    c.sd a1, 168(s0)
    /* 22: c.addi16sp */
    c.mv a2, sp
    c.addi16sp sp, -32
    c.mv a3, sp
    c.addi16sp sp, 32
    c.sub a2, a3
    c.sd a2, 176(s0)
    /* 23: c.beqz taken, c.bnez taken (a2 stays 0), c.bnez not taken (a3 = 5),
     * c.beqz not taken (a2 += a3): 5 */
    c.li a1, 0
    c.li a2, 0
    c.beqz a1, 1f
    c.li a2, 1
1:  c.li a1, 3
    c.bnez a1, 2f
    c.li a2, 2
2:  c.li a1, 0
    c.li a3, 0
    c.bnez a1, 3f
    c.li a3, 5
3:  c.beqz a3, 4f
    c.add a2, a3
4:  c.sd a2, 184(s0)
    /* 24: c.j */
    c.li a2, 7
    c.j 5f
    c.li a2, 1
5:  c.sd a2, 192(s0)
    /* 25: c.jalr links pc + 2; c.jr returns */
    lla t0, c_leaf
6:  c.jalr t0
7:  lla a4, 7b
    c.sub a3, a4
    c.sd a3, 200(s0)
    /* 26: c.fsd / c.fld */
    li a1, 0x400921fb54442d18
    fmv.d.x fa1, a1
    c.fsd fa1, 16(s1)
    c.fld fa2, 16(s1)
    fmv.x.d a2, fa2
    c.sd a2, 208(s0)
    /* 27: c.fsdsp / c.fldsp */
    c.fsdsp fa1, 24(sp)
    c.fldsp fa3, 24(sp)
    fmv.x.d a2, fa3
    c.sd a2, 216(s0)
    /* 28: c.nop and a c.addi hint (rd = x0) change nothing */
    c.li a1, 9
    c.nop
    .half 0x0015            /* c.addi x0, 5: HINT */
    c.sd a1, 224(s0)
    /* 29: c.add wraps */
    li a1, 0x7fffffffffffffff
    c.li a2, 1
    c.add a1, a2
    c.sd a1, 232(s0)

    c.ldsp ra, 56(sp)
    c.ldsp s0, 48(sp)
    c.ldsp s1, 40(sp)
    c.addi16sp sp, 64
    c.jr ra

c_leaf:
    c.mv a3, ra
    c.jr ra

/* void auipc_probe(u64 out[4]): out[0] = auipc 0x80000 at L1, out[1] =
 * auipc 0x7ffff at L2, out[2] = L1, out[3] = L2 */
    .globl auipc_probe
    .balign 4
auipc_probe:
1:  auipc t0, 0x80000
2:  auipc t1, 0x7ffff
    sd t0, 0(a0)
    sd t1, 8(a0)
    lla t2, 1b
    lla t3, 2b
    sd t2, 16(a0)
    sd t3, 24(a0)
    ret

/* u64 lui_probe(u64 out[3]) */
    .globl lui_probe
lui_probe:
    lui t0, 0x80000
    lui t1, 0x7ffff
    lui t2, 0xfffff
    sd t0, 0(a0)
    sd t1, 8(a0)
    sd t2, 16(a0)
    ret

/* void jalr_probe(u64 out[6]): jalr ignores bit 0 of the target */
    .globl jalr_probe
    .balign 4
jalr_probe:
    lla t0, 1f
    addi t0, t0, 1          /* odd target */
    jalr t1, 0(t0)
2:  li t2, 0xdead           /* not reached */
    sd t2, 8(a0)
    ret
1:  sd t1, 0(a0)            /* link */
    lla t2, 2b
    sd t2, 8(a0)            /* expected link */
    /* odd target through the immediate, rd == rs1 */
    lla t0, 3f
    addi t0, t0, -2
    jalr t0, 3(t0)
4:  li t2, 0xdead
    sd t2, 24(a0)
    ret
3:  sd t0, 16(a0)
    lla t2, 4b
    sd t2, 24(a0)
    /* jal links pc + 4 */
    jal t1, 5f
6:  ret
5:  sd t1, 32(a0)
    lla t2, 6b
    sd t2, 40(a0)
    ret

/* LR/SC sequences (no other memory accesses in between) */
    .globl lrsc_d           /* u64 lrsc_d(addr, v): sc result; old value in *(addr+8) is untouched */
lrsc_d:
    lr.d t0, (a0)
    sc.d a0, a1, (a0)
    ret
    .globl lrsc_w
lrsc_w:
    lr.w t0, (a0)
    sc.w a0, a1, (a0)
    ret
    .globl lr_sc_sc_d       /* u64 lr_sc_sc_d(addr, v1, v2): first sc | second sc << 8 */
lr_sc_sc_d:
    lr.d t0, (a0)
    sc.d t1, a1, (a0)
    sc.d t2, a2, (a0)
    slli t2, t2, 8
    or a0, t1, t2
    ret
    .globl lr_sd_sc_d       /* u64 lr_sd_sc_d(addr, vstore, vsc): sc result */
lr_sd_sc_d:
    lr.d t0, (a0)
    sd a1, 0(a0)
    sc.d a0, a2, (a0)
    ret
    .globl lr_sc_other_d    /* u64 lr_sc_other_d(addr, other, v): sc to another address */
lr_sc_other_d:
    lr.d t0, (a0)
    sc.d a0, a2, (a1)
    ret

/* u64 odd_align32(u64 x): 32-bit instructions at 2 mod 4 addresses */
    .globl odd_align32
    .balign 4
odd_align32:
    c.nop
    .option push
    .option norvc
    addi a0, a0, 1
    addi a0, a0, 2
    slli a0, a0, 4
    .option pop
    c.jr ra

/* u64 cross_page32(void): a 32-bit instruction straddling a 4 KiB boundary;
 * returns 8 */
    .section .text.cross, "ax", @progbits
    .balign 4096
    .skip 4090
    .globl cross_page32
cross_page32:
    c.li a0, 1
    c.nop
    .option push
    .option norvc
    addi a0, a0, 7          /* bytes 4094..4097 */
    .option pop
    c.jr ra

    .bss
    .balign 16
c_scratch:
    .skip 64
