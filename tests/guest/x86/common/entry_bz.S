/* bzImage-format entry code (Linux boot protocol 2.15, Documentation/arch/
 * x86/boot.rst).  The file is: 9 sectors of real-mode "setup" (the zero
 * page layout with the setup header at 0x1f1, then our 16-bit code at
 * 0x1000), then the protected-mode part, loaded at 0x100000, which starts
 * with
 *   +0x000  32-bit entry (code32_start): protected mode, paging off,
 *           flat __BOOT_CS 0x10 / __BOOT_DS 0x18, ESI = boot_params
 *   +0x200  64-bit entry (XLF_KERNEL_64): long mode, identity paging,
 *           RSI = boot_params (Petrel's way in)
 * A BIOS loader (QEMU -M pc -kernel) runs the real-mode setup instead: it
 * jumps to setup+0x200 in real mode with DS = ES = SS = the setup segment.
 * Like Linux's setup code, ours then collects the BIOS E820 map into the
 * zero page, switches to protected mode and jumps to code32_start. */

#define SETUP_SECTS 8

/* ===================================================== real-mode setup */
        .section .setup, "ax"
        .code16
        .globl setup_base
setup_base:
        .org 0x1f1
hdr:
        .byte SETUP_SECTS               /* 0x1f1 setup_sects */
        .word 0                         /* 0x1f2 root_flags */
        .long _syssize                  /* 0x1f4 syssize (16-byte units) */
        .word 0                         /* 0x1f8 ram_size */
        .word 0xffff                    /* 0x1fa vid_mode: NORMAL_VGA */
        .word 0                         /* 0x1fc root_dev */
        .word 0xaa55                    /* 0x1fe boot_flag */
hdr_jump:                               /* 0x200: real-mode entry */
        .byte 0xeb, setup16_jump - hdr_magic
hdr_magic:
        .ascii "HdrS"                   /* 0x202 header */
        .word 0x020f                    /* 0x206 version 2.15 */
        .long 0                         /* 0x208 realmode_swtch */
        .word 0x1000                    /* 0x20c start_sys_seg (obsolete) */
        .word kernel_version_str - hdr_jump /* 0x20e kernel_version */
        .byte 0                         /* 0x210 type_of_loader */
        .byte 0x01                      /* 0x211 loadflags: LOADED_HIGH */
        .word 0                         /* 0x212 setup_move_size */
        .long 0x100000                  /* 0x214 code32_start */
        .long 0                         /* 0x218 ramdisk_image */
        .long 0                         /* 0x21c ramdisk_size */
        .long 0                         /* 0x220 bootsect_kludge */
        .word 0                         /* 0x224 heap_end_ptr */
        .byte 0                         /* 0x226 ext_loader_ver */
        .byte 0                         /* 0x227 ext_loader_type */
        .long 0                         /* 0x228 cmd_line_ptr */
        .long 0x7fffffff                /* 0x22c initrd_addr_max */
        .long 0x200000                  /* 0x230 kernel_alignment */
        .byte 0                         /* 0x234 relocatable_kernel: no */
        .byte 21                        /* 0x235 min_alignment */
        .word 0x0001                    /* 0x236 xloadflags: XLF_KERNEL_64 */
        .long 2047                      /* 0x238 cmdline_size */
        .long 0                         /* 0x23c hardware_subarch */
        .quad 0                         /* 0x240 hardware_subarch_data */
        .long 0                         /* 0x248 payload_offset */
        .long 0                         /* 0x24c payload_length */
        .quad 0                         /* 0x250 setup_data */
        .quad 0x100000                  /* 0x258 pref_address */
        .long _init_size                /* 0x260 init_size */
        .long 0                         /* 0x264 handover_offset */
        .long kernel_info - 0x100000    /* 0x268 kernel_info_offset */
setup16_jump:                           /* 0x26c: end of the 2.15 header */
        jmp setup16_main

        .org 0x1000                     /* everything below is the zero page */
setup16_main:
        cli
        cld
        movw %ds, %ax
        movw %ax, %es
        pushw %ax                       /* CS = DS: offsets = setup offsets */
        pushw $1f
        lretw
1:
        /* BIOS E820 map into the zero page, like Linux's detect_memory() */
        xorl %ebx, %ebx
        xorw %bp, %bp
        movw $0x2d0, %di
2:      movl $0xe820, %eax
        movl $0x534d4150, %edx          /* "SMAP" */
        movl $20, %ecx
        int $0x15
        jc 3f
        cmpl $0x534d4150, %eax
        jne 3f
        incw %bp
        addw $20, %di
        testl %ebx, %ebx
        jz 3f
        cmpw $128, %bp
        jb 2b
3:      movw %bp, %ax
        movb %al, 0x1e8                 /* e820_entries */

        /* protected mode, as the 32-bit boot protocol wants it */
        xorl %esi, %esi
        movw %ds, %si
        shll $4, %esi                   /* ESI = boot_params (this segment) */
        leal gdt16(%esi), %eax
        movl %eax, gdt16_desc + 2
        lgdtl gdt16_desc
        movl 0x214, %eax                /* code32_start */
        movl %eax, farptr
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        movw $0x18, %ax                 /* __BOOT_DS */
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movw %ax, %fs
        movw %ax, %gs
        addr32 movl $1, boot_state + 4  /* via_setup16 */
        xorl %ebp, %ebp
        xorl %edi, %edi
        xorl %ebx, %ebx
        ljmpl *%cs:farptr               /* to code32_start with CS = __BOOT_CS */

        .p2align 3
gdt16:
        .quad 0, 0
        .quad 0x00cf9a000000ffff        /* 0x10 __BOOT_CS */
        .quad 0x00cf92000000ffff        /* 0x18 __BOOT_DS */
gdt16_end:
gdt16_desc:
        .word gdt16_end - gdt16 - 1
        .long 0
farptr:
        .long 0
        .word 0x10
kernel_version_str:
        .asciz "petrel boot_bzimage test (not Linux)"

/* ================================================ protected-mode part */
        .section .head, "ax"
        .code32
        .globl bz_start32
bz_start32:                             /* +0x000: 32-bit entry */
        movl $boot_stack_top, %esp
        pushfl
        popl boot_state + 48
        cli
        cld
        movl %esi, boot_state + 8
        movl $2, boot_state             /* ENTRY_BZ32 */
        jmp save_state32

        .org 0x200
        .code64
        .globl bz_start64
bz_start64:                             /* +0x200: 64-bit entry */
        leaq boot_stack_top(%rip), %rsp
        pushfq
        popq boot_state + 48(%rip)
        cli
        cld
        movq %rsi, boot_state + 8(%rip)
        movl $3, boot_state(%rip)       /* ENTRY_BZ64 */
        movq %cr0, %rax
        movq %rax, boot_state + 16(%rip)
        movq %cr3, %rax
        movq %rax, boot_state + 24(%rip)
        movq %cr4, %rax
        movq %rax, boot_state + 32(%rip)
        movl $0xc0000080, %ecx
        rdmsr
        movl %eax, boot_state + 40(%rip)
        movl %edx, boot_state + 44(%rip)
        movw %cs, boot_state + 56(%rip)
        movw %ds, boot_state + 58(%rip)
        movw %es, boot_state + 60(%rip)
        movw %ss, boot_state + 62(%rip)
        movw %fs, boot_state + 96(%rip)
        movw %gs, boot_state + 98(%rip)
        sgdt boot_state + 64(%rip)
        /* read boot_params and the command line through the loader's page tables */
        movq (%rsi), %rax
        movq %rax, boot_state + 80(%rip)
        movl 0x228(%rsi), %eax          /* cmd_line_ptr */
        movl 0x0c8(%rsi), %edx          /* ext_cmd_line_ptr */
        shlq $32, %rdx
        orq %rdx, %rax
        jz 1f
        movq (%rax), %rax
        movq %rax, boot_state + 88(%rip)
1:      /* reload the data segments from the loader's GDT */
        movw %ds, %ax
        movw %ax, %ds
        movw %es, %ax
        movw %ax, %es
        movw %ss, %ax
        movw %ax, %ss
        movq $1, boot_state + 104(%rip)
        jmp start64                     /* our own GDT and page tables */

        .section .rodata
        .p2align 3
        .globl kernel_info
kernel_info:                            /* protocol 2.15 kernel_info */
        .ascii "LToP"
        .long kernel_info_end - kernel_info     /* size */
        .long kernel_info_end - kernel_info     /* size_total */
        .long 0                                 /* setup_type_max */
kernel_info_end:

        .section .note.GNU-stack, "", @progbits
