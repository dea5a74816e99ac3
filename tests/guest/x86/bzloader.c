/* bzloader: a PVH program (linked at 16 MiB) that boots the bzImage given
 * as its first module (QEMU: -initrd) through the 64-bit boot protocol,
 * laid out exactly like Petrel does it (src/arch/x86/boot.h):
 *   0x0500 GDT (null, 0x08 64-bit code, 0x10 data, 0x18 32-bit code)
 *   0x1000 PML4, 0x2000 PDPT, 0x3000-0x6fff page directories: identity map
 *          of 4 GiB with 2 MiB pages
 *   0x7000 boot_params, 0x20000 command line, kernel at 0x100000
 * and enters it at 0x100200 with RSI = boot_params.  The command line is
 * passed on unchanged.  This lets QEMU test the 64-bit entry, which its
 * own loaders never use.  It prints FAIL bzloader on a bad image but
 * never PASS: the kernel it starts does that. */
#include "rt.h"

#define GDT_ADDR 0x500
#define PML4_ADDR 0x1000
#define BP_ADDR 0x7000
#define CMDLINE_ADDR 0x20000
#define KERNEL_ADDR 0x100000

void test_main(void) {
    const struct hvm_start_info *si = phys(boot_state.info);
    CHECK_EQ(si->magic, HVM_START_MAGIC);
    CHECK_MSG(si->nr_modules >= 1, "no module: pass the bzImage with -initrd");
    const struct hvm_modlist_entry *mod = phys(si->modlist_paddr);
    const uint8_t *k = phys(mod->paddr);
    uint64_t ksize = mod->size;
    printf("bzloader: bzImage at 0x%lx, %lu bytes\n", mod->paddr, ksize);
    CHECK_GE(ksize, 0x1000);
    CHECK_MSG(*(const uint32_t *)(k + 0x202) == 0x53726448, "no HdrS: not a bzImage");
    uint16_t version = *(const uint16_t *)(k + 0x206);
    CHECK_MSG(version >= 0x020c, "boot protocol %x < 2.12", version);
    CHECK_MSG(*(const uint16_t *)(k + 0x236) & 1, "no XLF_KERNEL_64");
    unsigned setup_sects = k[0x1f1] ? k[0x1f1] : 4;
    uint64_t pm_off = (setup_sects + 1) * 512ull;
    CHECK_LT(pm_off, ksize);
    uint64_t pm_size = ksize - pm_off;
    uint64_t init_size = *(const uint32_t *)(k + 0x260);
    uint64_t span = init_size > pm_size ? init_size : pm_size;
    CHECK_MSG(KERNEL_ADDR + span <= (uint64_t)__image_start, "kernel too big");
    CHECK_MSG(mod->paddr >= KERNEL_ADDR + span || mod->paddr + ksize <= KERNEL_ADDR,
              "module overlaps the kernel's load range");

    /* kernel */
    memcpy(phys(KERNEL_ADDR), k + pm_off, pm_size);

    /* boot_params: zero page + the setup header from the file */
    uint8_t *bp = phys(BP_ADDR);
    memset(bp, 0, 4096);
    unsigned hdr_end = 0x202 + k[0x201];
    CHECK_LE(hdr_end, 0x290);
    memcpy(bp + 0x1f1, k + 0x1f1, hdr_end - 0x1f1);
    bp[0x210] = 0xff; /* type_of_loader: undefined */
    const char *cl = si->cmdline_paddr ? phys(si->cmdline_paddr) : "";
    size_t cl_len = strlen(cl);
    CHECK_LT(cl_len, 4096);
    memcpy(phys(CMDLINE_ADDR), cl, cl_len + 1);
    *(uint32_t *)(bp + 0x228) = CMDLINE_ADDR;

    /* e820 from the PVH memory map, sorted, empty entries dropped */
    const struct hvm_memmap_entry *mm = phys(si->memmap_paddr);
    struct e820_entry *e = (void *)(bp + 0x2d0);
    unsigned n = 0;
    for (unsigned i = 0; i < si->memmap_entries && n < 128; i++) {
        if (!mm[i].size) continue;
        struct e820_entry x = {mm[i].addr, mm[i].size, mm[i].type};
        unsigned j = n++;
        while (j && e[j - 1].addr > x.addr) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = x;
    }
    bp[0x1e8] = (uint8_t)n;

    /* page tables and GDT */
    uint64_t *pml4 = phys(PML4_ADDR), *pdpt = phys(PML4_ADDR + 0x1000),
             *pd = phys(PML4_ADDR + 0x2000);
    memset(pml4, 0, 2 * 4096);
    pml4[0] = (PML4_ADDR + 0x1000) | 3;
    for (unsigned i = 0; i < 4; i++) pdpt[i] = (PML4_ADDR + 0x2000 + 0x1000 * i) | 3;
    for (uint64_t i = 0; i < 2048; i++) pd[i] = (i << 21) | 0x83;
    uint64_t *g = phys(GDT_ADDR);
    g[0] = 0;
    g[1] = 0x00af9b000000ffffull;
    g[2] = 0x00cf93000000ffffull;
    g[3] = 0x00cf9b000000ffffull;

    printf("bzloader: setup_sects=%u, %lu bytes at 0x%x, boot_params at 0x%x, %u e820 "
           "entries; entering at 0x%x\n",
           setup_sects, pm_size, KERNEL_ADDR, BP_ADDR, n, KERNEL_ADDR + 0x200);
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gdtr = {31, GDT_ADDR};
    cli();
    __asm__ volatile("lgdt %0\n\t"
                     "movq %1, %%cr3\n\t"
                     "movl $0x10, %%eax\n\t"
                     "movl %%eax, %%ds\n\t"
                     "movl %%eax, %%es\n\t"
                     "movl %%eax, %%ss\n\t"
                     "xorl %%eax, %%eax\n\t"
                     "movl %%eax, %%fs\n\t"
                     "movl %%eax, %%gs\n\t"
                     "pushq $0x08\n\t"
                     "pushq %2\n\t"
                     "lretq"
                     :
                     : "m"(gdtr), "r"((uint64_t)PML4_ADDR), "r"((uint64_t)KERNEL_ADDR + 0x200),
                       "S"((uint64_t)BP_ADDR)
                     : "rax", "memory");
    fail("not reached");
}
