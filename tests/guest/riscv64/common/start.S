/* Petrel RISC-V guest test runtime: entry point, stacks, trap entry/exit
 * for M and S mode, and run_lower() (call a function in U or S mode).
 *
 * All harts enter _start in M-mode with a0 = hartid.  Hart 0 clears .bss
 * and calls rt_main().  Other harts (up to MAX_HARTS) wait in wfi until
 * their msip is raised, then call rt_secondary(hartid).
 */
#define MAX_HARTS 4
#define STACK_SIZE 16384
#define TSTACK_SIZE 8192
#define FRAME 288 /* struct trap_frame: 32 + 4 u64, 16-byte multiple */
#define CLINT 0x2000000

    .option norelax

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    csrw mie, zero
    csrr s0, mhartid
    /* Open PMP for S/U (NAPOT over everything).  If PMP CSRs don't exist,
     * the access traps to 1f, which is fine. */
    la t0, 1f
    csrw mtvec, t0
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    .balign 4
1:
    la t0, m_trap_entry
    csrw mtvec, t0
    csrw satp, zero
    csrw medeleg, zero
    csrw mideleg, zero
    li t0, (1 << 13)            /* FS = Initial, everything else 0 */
    csrw mstatus, t0
    csrw fcsr, zero

    li t0, MAX_HARTS
    bgeu s0, t0, park
    la sp, stacks_end
    li t0, STACK_SIZE
    mul t1, s0, t0
    sub sp, sp, t1
    la t2, mtrap_stacks_end
    li t0, TSTACK_SIZE
    mul t1, s0, t0
    sub t2, t2, t1
    csrw mscratch, t2
    bnez s0, secondary

    la t0, __bss_start
    la t1, __bss_end
2:  bgeu t0, t1, 3f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 2b
3:
    la t0, strap_stack_end
    la t1, s_trap_stack_top
    sd t0, 0(t1)
    csrw sscratch, t0
    la t0, s_trap_entry
    csrw stvec, t0
    call rt_main
    j park

secondary:
    li t0, 8                    /* mie.MSIE; mstatus.MIE stays 0 */
    csrw mie, t0
4:  wfi
    csrr t0, mip
    andi t0, t0, 8
    beqz t0, 4b
    li t0, CLINT
    slli t1, s0, 2
    add t0, t0, t1
    sw zero, 0(t0)
    csrw mie, zero
    mv a0, s0
    call rt_secondary
park:
    csrw mie, zero
5:  wfi
    j 5b

/* ---------------------------------------------------------------- traps */
.macro SAVE_GPRS
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd x\n, (\n*8)(sp)
    .endr
.endm
.macro LOAD_GPRS
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld x\n, (\n*8)(sp)
    .endr
.endm

    .text
    .balign 4
    .globl m_trap_entry
m_trap_entry:
    csrrw sp, mscratch, sp
    addi sp, sp, -FRAME
    SAVE_GPRS
    csrr t0, mscratch
    sd t0, 16(sp)
    csrr t0, mepc
    sd t0, 256(sp)
    csrr t0, mcause
    sd t0, 264(sp)
    csrr t0, mtval
    sd t0, 272(sp)
    csrr t0, mstatus
    sd t0, 280(sp)
    mv a0, sp
    call m_trap_handler
    ld t0, 256(sp)
    csrw mepc, t0
    ld t0, 280(sp)
    csrw mstatus, t0
    addi t0, sp, FRAME
    csrw mscratch, t0
    LOAD_GPRS
    ld sp, 16(sp)
    mret

    .balign 4
    .globl s_trap_entry
s_trap_entry:
    csrrw sp, sscratch, sp
    addi sp, sp, -FRAME
    SAVE_GPRS
    csrr t0, sscratch
    sd t0, 16(sp)
    csrr t0, sepc
    sd t0, 256(sp)
    csrr t0, scause
    sd t0, 264(sp)
    csrr t0, stval
    sd t0, 272(sp)
    csrr t0, sstatus
    sd t0, 280(sp)
    mv a0, sp
    call s_trap_handler
    ld t0, 256(sp)
    csrw sepc, t0
    ld t0, 280(sp)
    csrw sstatus, t0
    addi t0, sp, FRAME
    csrw sscratch, t0
    LOAD_GPRS
    ld sp, 16(sp)
    sret

/* -------------------------------------------------------------- run_lower
 * u64 run_lower(int mode, void *fn, u64 arg, u64 delta)
 * The callee returns through lower_return, whose ecall (a7 = RUNLOWER_MAGIC)
 * is turned by m_trap_handler into a jump to run_lower_resume in M-mode. */
    .globl run_lower
run_lower:
    la t0, lower_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd s2, 32(t0)
    sd s3, 40(t0)
    sd s4, 48(t0)
    sd s5, 56(t0)
    sd s6, 64(t0)
    sd s7, 72(t0)
    sd s8, 80(t0)
    sd s9, 88(t0)
    sd s10, 96(t0)
    sd s11, 104(t0)
    sd gp, 112(t0)
    sd tp, 120(t0)
    csrr t1, mstatus
    li t2, (3 << 11) | (1 << 7) /* MPP | MPIE */
    not t2, t2
    and t1, t1, t2
    andi a0, a0, 3
    slli a0, a0, 11
    or t1, t1, a0
    csrw mstatus, t1
    sub t1, a1, a3
    csrw mepc, t1
    la ra, lower_return
    sub ra, ra, a3
    addi sp, sp, -256           /* leave some room below our frame */
    sub sp, sp, a3
    mv a0, a2
    mret

    .balign 4
    .globl lower_return
lower_return:
    li a7, 0x52554e4c
    .globl lower_return_ecall
lower_return_ecall:
    ecall
1:  j 1b

    .globl run_lower_resume
run_lower_resume:
    la t0, lower_ctx
    ld ra, 0(t0)
    ld sp, 8(t0)
    ld s0, 16(t0)
    ld s1, 24(t0)
    ld s2, 32(t0)
    ld s3, 40(t0)
    ld s4, 48(t0)
    ld s5, 56(t0)
    ld s6, 64(t0)
    ld s7, 72(t0)
    ld s8, 80(t0)
    ld s9, 88(t0)
    ld s10, 96(t0)
    ld s11, 104(t0)
    ld gp, 112(t0)
    ld tp, 120(t0)
    ret

    .bss
    .balign 16
lower_ctx:
    .skip 128

    .section .stacks, "aw", @nobits
    .balign 16
    .skip STACK_SIZE * MAX_HARTS
    .globl stacks_end
stacks_end:
    .skip TSTACK_SIZE * MAX_HARTS
    .globl mtrap_stacks_end
mtrap_stacks_end:
    .skip TSTACK_SIZE
    .globl strap_stack_end
strap_stack_end:
