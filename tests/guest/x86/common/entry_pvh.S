/* PVH entry (Xen's direct boot ABI, as used by QEMU and Petrel):
 * 32-bit protected mode, paging off, flat CS/DS, EBX = hvm_start_info. */

        .section .note.Xen, "a"
        .p2align 2
        .long 4                 /* namesz */
        .long 8                 /* descsz: 64-bit, like Linux on x86-64 */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .quad pvh_start32

        .section .text.entry32, "ax"
        .code32
        .globl pvh_start32
pvh_start32:
        movl $boot_stack_top, %esp
        pushfl                          /* EFLAGS as handed to us */
        popl boot_state + 48
        cli
        cld
        movl %ebx, boot_state + 8
        movl $1, boot_state             /* ENTRY_PVH */
        jmp save_state32

        .section .note.GNU-stack, "", @progbits
