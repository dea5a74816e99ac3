/* Petrel x86-64 guest test runtime: 32->64-bit switch, GDT, page tables,
 * exception/interrupt stubs, ring-3 entry and exit.  Shared by the PVH
 * and the bzImage entry code. */

#define SEL_KCODE64 0x08
#define SEL_KDATA   0x10
#define SEL_KCODE32 0x18
#define SEL_UCODE64 0x23
#define SEL_UDATA   0x2b

/* ------------------------------------------------------------- data */
        .section .data.boot, "aw"
        .p2align 6
        .globl boot_state
boot_state:                     /* struct boot_state (rt.h): written before bss is zeroed */
        .fill 128, 1, 0

        .p2align 4
        .globl gdt
gdt:
        .quad 0                         /* 0x00 */
        .quad 0x00af9a000000ffff        /* 0x08 64-bit code, DPL0 */
        .quad 0x00cf92000000ffff        /* 0x10 data, DPL0 */
        .quad 0x00cf9a000000ffff        /* 0x18 32-bit code, DPL0 */
        .quad 0x00affa000000ffff        /* 0x20 64-bit code, DPL3 */
        .quad 0x00cff2000000ffff        /* 0x28 data, DPL3 */
        .quad 0, 0                      /* 0x30 TSS (filled by rt_init) */
gdt_end:
        .p2align 3
        .globl gdt_desc
gdt_desc:
        .word gdt_end - gdt - 1
        .quad gdt

/* Identity map of [0, 4 GiB) with 2 MiB pages, user-accessible (the
 * compute test runs CPL3 code from the image).  Built by the assembler:
 * no ring-0 work at boot.  The top GiB (APIC, IOAPIC, MMIO) is uncached. */
        .section .data.pagetables, "aw"
        .p2align 12
        .globl pml4
pml4:
        .quad pdpt + 0x7
        .fill 511, 8, 0
pdpt:
        .quad pd + 0x0000 + 0x7
        .quad pd + 0x1000 + 0x7
        .quad pd + 0x2000 + 0x7
        .quad pd + 0x3000 + 0x7
        .fill 508, 8, 0
pd:
        .set i, 0
        .rept 2048
        .if i >= 1536
        .quad (i << 21) | 0x9f          /* P RW US PWT PCD PS */
        .else
        .quad (i << 21) | 0x87          /* P RW US PS */
        .endif
        .set i, i + 1
        .endr

/* ----------------------------------------------------------- stacks */
        .section .stack, "aw", @nobits
        .p2align 12
        .skip 16384
        .globl boot_stack_top
boot_stack_top:
        .skip 8192
        .globl trap_stack_top
trap_stack_top:

/* --------------------------------------------- 32-bit -> long mode */
        .text
        .code32
/* Entered from a 32-bit entry with ESP = boot_stack_top, boot_state.entry,
 * .info and .rflags already set.  Saves the rest of the entry state. */
        .globl save_state32
save_state32:
        movl %cr0, %eax
        movl %eax, boot_state + 16
        movl %cr3, %eax
        movl %eax, boot_state + 24
        movl %cr4, %eax
        movl %eax, boot_state + 32
        movl $0xc0000080, %ecx
        rdmsr
        movl %eax, boot_state + 40
        movl %edx, boot_state + 44
        movw %cs, boot_state + 56
        movw %ds, boot_state + 58
        movw %es, boot_state + 60
        movw %ss, boot_state + 62
        movw %fs, boot_state + 96
        movw %gs, boot_state + 98
        sgdt boot_state + 64
        /* fall through */
        .globl to_long32
to_long32:
        lgdt gdt_desc
        ljmp $SEL_KCODE32, $1f
1:      movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %eax, %fs
        movl %eax, %gs
        movl %cr4, %eax
        orl $0x20, %eax                 /* PAE */
        movl %eax, %cr4
        movl $pml4, %eax
        movl %eax, %cr3
        movl $0xc0000080, %ecx
        rdmsr
        orl $0x100, %eax                /* EFER.LME */
        wrmsr
        movl %cr0, %eax
        orl $0x80000001, %eax           /* PG | PE */
        movl %eax, %cr0
        ljmp $SEL_KCODE64, $start64

/* ------------------------------------------------------ 64-bit start */
        .code64
        .globl start64
start64:
        lgdt gdt_desc(%rip)
        leaq pml4(%rip), %rax
        movq %rax, %cr3
        pushq $SEL_KCODE64
        leaq 1f(%rip), %rax
        pushq %rax
        lretq
1:      movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %eax, %fs
        movl %eax, %gs
        leaq boot_stack_top(%rip), %rsp
        xorl %ebp, %ebp
        cld
        leaq __bss_start(%rip), %rdi
        leaq __bss_end(%rip), %rcx
        subq %rdi, %rcx
        xorl %eax, %eax
        rep stosb
        call rt_start
2:      cli
        hlt
        jmp 2b

/* ------------------------------------------------------- trap stubs */
        .p2align 4
        .globl vector_stubs
vector_stubs:
        .set i, 0
        .rept 256
        .p2align 4
        .if (i == 8) || (i == 10) || (i == 11) || (i == 12) || (i == 13) || (i == 14) || (i == 17) || (i == 21) || (i == 29) || (i == 30)
        .else
        pushq $0
        .endif
        pushq $i
        jmp trap_common
        .set i, i + 1
        .endr

trap_common:
        pushq %rax
        pushq %rbx
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %rbp
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, %rdi
        cld
        call trap_dispatch
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %r11
        popq %r10
        popq %r9
        popq %r8
        popq %rbp
        popq %rdi
        popq %rsi
        popq %rdx
        popq %rcx
        popq %rbx
        popq %rax
        addq $16, %rsp
        iretq

/* ------------------------------------------------------------ ring 3 */
/* uint64_t enter_user(void (*fn)(uint64_t), uint64_t ustack, uint64_t arg) */
        .globl enter_user
enter_user:
        pushq %rbx
        pushq %rbp
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, user_saved_rsp(%rip)
        pushq $SEL_UDATA                /* SS */
        pushq %rsi                      /* RSP */
        pushq $0x202                    /* RFLAGS: IF */
        pushq $SEL_UCODE64              /* CS */
        pushq %rdi                      /* RIP */
        movq %rdx, %rdi
        xorl %ebp, %ebp
        iretq

/* called from the int 0x80 handler (any stack): back to enter_user's caller */
        .globl resume_kernel
resume_kernel:
        movq user_saved_rsp(%rip), %rsp
        movq %rdi, %rax
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbp
        popq %rbx
        ret

/* user code: void user_exit(uint64_t value).  HLT at CPL3 raises #GP,
 * which rt.c turns into a return from enter_user.  (Not int $0x80: PVM
 * delivers INT n >= 0x20 from guest user mode as #UD; not SYSCALL: PVM
 * mis-emulates it.) */
        .globl user_exit, user_exit_trap
user_exit:
        movq %rdi, %rax
user_exit_trap:
        hlt
        ud2

        .section .bss
        .p2align 3
user_saved_rsp:
        .quad 0

        .section .note.GNU-stack, "", @progbits
