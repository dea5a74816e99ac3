/* interrupts test: helpers with known addresses and a vectored mtvec table. */
    .option norelax
    .text

/* void irq_enable_window(void): set mstatus.MIE, one instruction, clear it.
 * A pending enabled interrupt must be taken with mepc = irq_after_enable. */
    .globl irq_enable_window
    .globl irq_after_enable
    .balign 4
irq_enable_window:
    csrsi mstatus, 8
irq_after_enable:
    nop
    csrci mstatus, 8
    ret

/* void wfi_wait(volatile int *cnt, int old): wfi until *cnt != old.
 * An interrupt waking the wfi is taken with mepc = wfi_after. */
    .globl wfi_wait
    .globl wfi_after
    .balign 4
wfi_wait:
1:  lw t0, 0(a0)
    bne t0, a1, 2f
    wfi
wfi_after:
    j 1b
2:  ret

/* Vectored mtvec table: entry 0 (exceptions) goes to m_trap_entry, entry k
 * (interrupt cause k) counts vec_hits[k] and then goes to m_trap_entry. */
    .globl vec_table
    .balign 256
vec_table:
    .option push
    .option norvc
    j m_trap_entry
    .irp k,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    j vec_stub_\k
    .endr
    .option pop

    .irp k,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
vec_stub_\k:
    csrrw sp, mscratch, sp
    sd t0, -8(sp)
    sd t1, -16(sp)
    la t0, vec_hits
    ld t1, (\k * 8)(t0)
    addi t1, t1, 1
    sd t1, (\k * 8)(t0)
    ld t0, -8(sp)
    ld t1, -16(sp)
    csrrw sp, mscratch, sp
    j m_trap_entry
    .endr

    .bss
    .balign 8
    .globl vec_hits
vec_hits:
    .skip 16 * 8
