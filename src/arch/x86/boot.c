/* x86-64 direct kernel boot: RAM layout, memory map, the parts both entry
 * protocols share (GDT, identity page tables, command line, initrd
 * placement, MP and ACPI tables) and the dispatch to bzimage.c / pvh.c.
 * See boot.h. */
#include "arch/x86/boot_priv.h"

#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull
#define X86_MIN_RAM (2ull << 20)

static const uint64_t gdt_entries[X86_GDT_ENTRIES] = {
    0,                      /* null */
    0x00af9a000000ffffull,  /* 0x08: code, 64-bit (L=1), DPL0, execute/read */
    0x00cf92000000ffffull,  /* 0x10: data, flat 4 GiB, read/write */
    0x00cf9a000000ffffull,  /* 0x18: code, 32-bit flat 4 GiB, execute/read */
};

unsigned x86_ram_layout(uint64_t mem_size, uint64_t base[2], uint64_t size[2])
{
    if (mem_size == 0)
        return 0;
    base[0] = 0;
    if (mem_size <= X86_LOW_RAM_MAX) {
        size[0] = mem_size;
        return 1;
    }
    size[0] = X86_LOW_RAM_MAX;
    base[1] = X86_HIGH_RAM_BASE;
    size[1] = mem_size - X86_LOW_RAM_MAX;
    return 2;
}

uint64_t x86_low_ram_end(uint64_t mem_size)
{
    return mem_size < X86_LOW_RAM_MAX ? mem_size : X86_LOW_RAM_MAX;
}

unsigned x86_e820_build(uint64_t mem_size, struct x86_e820 map[X86_E820_MAX])
{
    uint64_t base[2], size[2];
    unsigned nr = x86_ram_layout(mem_size, base, size), n = 0;
    uint64_t low_end = nr ? size[0] : 0;

    if (low_end <= X86_HIGH_MEM_START)
        return 0;   /* x86_boot_setup() refuses such guests */
    map[n++] = (struct x86_e820){ 0, X86_MPTABLE_ADDR, E820_RAM };
    map[n++] = (struct x86_e820){ X86_MPTABLE_ADDR, X86_HIGH_MEM_START - X86_MPTABLE_ADDR,
                                  E820_RESERVED };
    map[n++] = (struct x86_e820){ X86_HIGH_MEM_START, low_end - X86_HIGH_MEM_START,
                                  E820_RAM };
    if (nr == 2)
        map[n++] = (struct x86_e820){ base[1], size[1], E820_RAM };
    return n;
}

const char *x86_kname(const struct x86_boot_config *cfg)
{
    return cfg->kernel_name ? cfg->kernel_name : "kernel";
}

int x86_initrd_place(const struct gmem *mem, const struct x86_boot_config *cfg,
                     uint64_t floor, uint64_t top, uint64_t *addr, struct err *e)
{
    uint64_t size = cfg->initrd_size;
    if (size > top || ((top - size) & ~0xfffull) < floor)
        return err_set(e, -ENOSPC,
                       "initrd (%zu bytes) does not fit below 0x%llx above the kernel "
                       "(which ends at 0x%llx): use more memory or a smaller initrd",
                       cfg->initrd_size, (unsigned long long)top,
                       (unsigned long long)floor);
    uint64_t a = (top - size) & ~0xfffull;
    if (gmem_write(mem, a, cfg->initrd, size) < 0)
        return err_set(e, -EFAULT, "initrd at 0x%llx+0x%llx is outside guest RAM",
                       (unsigned long long)a, (unsigned long long)size);
    *addr = a;
    return 0;
}

int x86_cmdline_write(const struct gmem *mem, const char *cmdline, size_t max_len,
                      struct err *e)
{
    const char *s = cmdline ? cmdline : "";
    size_t len = strnlen(s, X86_CMDLINE_MAX);
    if (len > max_len || len >= X86_CMDLINE_MAX)
        return err_set(e, -E2BIG, "kernel command line too long (%s%zu bytes, at most %zu)",
                       len >= X86_CMDLINE_MAX ? "at least " : "", len,
                       max_len < X86_CMDLINE_MAX - 1 ? max_len : (size_t)X86_CMDLINE_MAX - 1);
    if (gmem_write(mem, X86_CMDLINE_ADDR, s, len + 1) < 0)
        return err_set(e, -EFAULT, "no guest RAM for the command line");
    return 0;
}

/* GDT at 0x500 and page tables at 0x1000..0x6fff: PML4 -> one PDPT -> four
 * page directories of 2 MiB pages mapping [0, 4 GiB) to itself. */
static int write_gdt_and_page_tables(const struct gmem *mem, struct x86_entry *out,
                                     struct err *e)
{
    uint64_t *gdt = gmem_ptr(mem, X86_GDT_ADDR, sizeof(gdt_entries));
    uint64_t *pml4 = gmem_ptr(mem, X86_PML4_ADDR, 4096);
    uint64_t *pdpt = gmem_ptr(mem, X86_PDPT_ADDR, 4096);
    uint64_t *pd = gmem_ptr(mem, X86_PD_ADDR, 4 * 4096);
    if (!gdt || !pml4 || !pdpt || !pd)
        return err_set(e, -EFAULT, "no guest RAM for the GDT and page tables");

    memcpy(gdt, gdt_entries, sizeof(gdt_entries));
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = X86_PDPT_ADDR | PTE_P | PTE_RW;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (X86_PD_ADDR + i * 4096) | PTE_P | PTE_RW;
    for (uint64_t j = 0; j < 4 * 512; j++)
        pd[j] = (j << 21) | PTE_P | PTE_RW | PTE_PS;

    out->gdt_base = X86_GDT_ADDR;
    out->gdt_limit = sizeof(gdt_entries) - 1;
    return 0;
}

int x86_kernel_probe(const uint8_t *k, size_t size, const char *name, int *is_pvh,
                     struct err *e)
{
    if (!name)
        name = "kernel";
    if (!k || size == 0)
        return err_set(e, -ENOEXEC, "%s: empty kernel file", name);
    if (x86_is_elf(k, size)) {
        uint32_t entry;
        int ret = x86_pvh_check(k, size, name, &entry, e);
        if (ret < 0)
            return ret;
        *is_pvh = 1;
        return 0;
    }
    int ret = x86_bzimage_check(k, size, name, e);
    if (ret < 0)
        return ret;
    *is_pvh = 0;
    return 0;
}

int x86_boot_setup(const struct gmem *mem, const struct x86_boot_config *cfg,
                   struct x86_entry *out, struct err *e)
{
    const char *name = x86_kname(cfg);
    uint64_t base[2], size[2];
    int is_pvh, ret;

    memset(out, 0, sizeof(*out));
    if (cfg->ncpus < 1 || cfg->ncpus > X86_MAX_CPUS)
        return err_set(e, -EINVAL, "%u CPUs: the MP table describes 1 to %u", cfg->ncpus,
                       X86_MAX_CPUS);
    if (cfg->mem_size < X86_MIN_RAM)
        return err_set(e, -EINVAL, "guest RAM too small (%llu bytes, at least %llu MiB)",
                       (unsigned long long)cfg->mem_size,
                       (unsigned long long)(X86_MIN_RAM >> 20));
    unsigned nr = x86_ram_layout(cfg->mem_size, base, size);
    for (unsigned i = 0; i < nr; i++)
        if (!gmem_ptr(mem, base[i], size[i]))
            return err_set(e, -EINVAL,
                           "guest memory does not match the x86 RAM layout "
                           "(0x%llx+0x%llx missing)",
                           (unsigned long long)base[i], (unsigned long long)size[i]);
    if (cfg->initrd_size && !cfg->initrd)
        return err_set(e, -EINVAL, "initrd size without initrd data");

    ret = x86_kernel_probe(cfg->kernel, cfg->kernel_size, name, &is_pvh, e);
    if (ret < 0)
        return ret;
    ret = write_gdt_and_page_tables(mem, out, e);
    if (ret < 0)
        return ret;
    ret = x86_mptable_write(mem, cfg->ncpus, e);
    if (ret < 0)
        return ret;
    ret = x86_acpi_write(mem, cfg->ncpus, e);
    if (ret < 0)
        return ret;
    return is_pvh ? x86_pvh_load(mem, cfg, out, e) : x86_bzimage_load(mem, cfg, out, e);
}

int x86_kernel_is_linux(const uint8_t *k, size_t size)
{
    static const char marker[] = "Linux version ";
    if (x86_is_elf(k, size))
        return memmem(k, size, marker, sizeof(marker) - 1) != NULL;
    if (size < 0x210 || memcmp(k + 0x202, "HdrS", 4) != 0)
        return 0;
    uint16_t ver_off;
    memcpy(&ver_off, k + 0x20e, 2); /* kernel_version: offset from 0x200 */
    size_t at = 0x200 + (size_t)ver_off;
    return ver_off != 0 && at < size && k[at] >= '0' && k[at] <= '9';
}
