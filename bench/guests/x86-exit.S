/* The smallest x86 PVH guest: its first instruction leaves through the
 * debug-exit port (0x501, QEMU's isa-debug-exit), value 0.  Used by
 * bench/x86-start.sh to time VMM start-up up to the first guest exit. */
    .section .note.Xen, "a"
    .p2align 2
    .long 4                 /* namesz */
    .long 4                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start

    .code32
    .text
    .globl _start
_start:
    movw $0x501, %dx
    xorl %eax, %eax
    outb %al, %dx
1:  hlt
    jmp 1b
