/* smp: AP start code.  tramp_start..tramp_end is copied to TRAMP_BASE
 * (below 1 MiB, 4 KiB aligned); a SIPI with vector TRAMP_BASE >> 12
 * starts the AP there in real mode (CS = TRAMP_BASE >> 4, IP = 0). */
#define SEL_KCODE64 0x08
#define SEL_KDATA   0x10
#define SEL_KCODE32 0x18
#define AP_STACK_SHIFT 13               /* 8 KiB per AP */
#define MAX_APS 31

        .text
        .code16
        .globl tramp_start, tramp_end
tramp_start:
        cli
        cld
        movw %cs, %ax
        movw %ax, %ds
        movl $1, (tramp_reached - tramp_start)  /* the BSP reads this: real mode ran */
        lgdtl (tramp_gdtr - tramp_start)
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $SEL_KCODE32, $ap_start32
        .p2align 2
tramp_gdtr:
        .word 8 * 8 - 1                 /* our GDT (long.S): 8 slots */
        .long gdt
        .globl tramp_reached
tramp_reached:
        .long 0
tramp_end:

        .code32
ap_start32:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %cr4, %eax
        orl $0x20, %eax                 /* PAE */
        movl %eax, %cr4
        movl $pml4, %eax
        movl %eax, %cr3
        movl $0xc0000080, %ecx
        rdmsr
        orl $0x100, %eax                /* LME */
        wrmsr
        movl %cr0, %eax
        orl $0x80000001, %eax
        movl %eax, %cr0
        ljmp $SEL_KCODE64, $ap_start64

        .code64
        .globl ap_start64
ap_start64:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl $1, %eax
        lock xaddl %eax, ap_ticket(%rip)        /* eax = this AP's index */
        cmpl $MAX_APS, %eax
        jae 2f
        movl %eax, %edi
        leaq ap_stacks(%rip), %rsp
        incq %rax
        shlq $AP_STACK_SHIFT, %rax
        addq %rax, %rsp
        cld
        call ap_entry_c
2:      cli
        hlt
        jmp 2b

        .globl ap_ticket
        .section .data
        .p2align 2
ap_ticket:
        .long 0

        .section .stack, "aw", @nobits
        .p2align 12
ap_stacks:
        .skip MAX_APS << AP_STACK_SHIFT

        .section .note.GNU-stack, "", @progbits
