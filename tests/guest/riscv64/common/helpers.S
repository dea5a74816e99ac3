/* Trap-safe leaf helpers.  Each one is a leaf function whose possibly
 * faulting instruction can be recovered from either by skipping it
 * (TRAP_SKIP) or by returning to ra (TRAP_RET, needed when the trap
 * happens at an address the handler can't read, e.g. fetch faults or code
 * running at a user alias address). */
    .option norelax
    .text

.macro LOADFN name, insn
    .globl \name
    .globl \name\()_insn
    .balign 4
\name:
\name\()_insn:
    \insn a0, 0(a0)
    ret
.endm

.macro STOREFN name, insn
    .globl \name
    .globl \name\()_insn
    .balign 4
\name:
\name\()_insn:
    \insn a1, 0(a0)
    ret
.endm

    LOADFN ld64, ld
    LOADFN ld32, lw
    LOADFN ld32u, lwu
    LOADFN ld16, lh
    LOADFN ld16u, lhu
    LOADFN ld8, lb
    LOADFN ld8u, lbu
    STOREFN st64, sd
    STOREFN st32, sw
    STOREFN st16, sh
    STOREFN st8, sb

    .globl lr_w
lr_w:
    lr.w a0, (a0)
    ret
    .globl lr_d
lr_d:
    lr.d a0, (a0)
    ret
    .globl sc_w
sc_w:
    mv t0, a0
    li a0, 0x5c5c       /* marker: left in a0 if the sc traps */
    sc.w a0, a1, (t0)
    ret
    .globl sc_d
sc_d:
    mv t0, a0
    li a0, 0x5c5c
    sc.d a0, a1, (t0)
    ret
    .globl amoadd_w
amoadd_w:
    amoadd.w a0, a1, (a0)
    ret
    .globl amoadd_d
amoadd_d:
    amoadd.d a0, a1, (a0)
    ret

    .globl call_at
    .globl call_at_insn
call_at:
call_at_insn:
    jr a0
