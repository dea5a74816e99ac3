/* PVH boot of ELF kernels (ELF64 x86-64 or ELF32 i386): PT_LOAD segments at
 * their physical addresses, the 32-bit entry point from the
 * XEN_ELFNOTE_PHYS32_ENTRY note, and hvm_start_info version 1 (Xen's
 * include/public/arch-x86/hvm/start_info.h) with the command line, the
 * initrd as module 0, the memory map and the ACPI RSDP. */
#include "arch/x86/boot_priv.h"

#include "arch/x86/acpi.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u
#define MAX_PHDRS 4096
#define MAX_SHDRS 65535

/* hvm_start_info v1 (little-endian, 8-byte aligned 64-bit fields). */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 0x38, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");
_Static_assert(X86_ZERO_PAGE_ADDR + sizeof(struct hvm_start_info) <= X86_PVH_MEMMAP_ADDR,
               "memmap after start_info");

/* One program or section header, whatever the ELF class. */
struct elf_seg {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
};

/* A checked view of an ELF file's headers. */
struct elf_file {
    const uint8_t *k;
    size_t size;
    int is64;
    uint64_t phoff, shoff;
    unsigned phnum, phentsize, shnum, shentsize;
};

int x86_is_elf(const uint8_t *k, size_t size)
{
    return size >= SELFMAG && !memcmp(k, ELFMAG, SELFMAG);
}

/* [off, off + len) lies inside the file. */
static int in_file(const struct elf_file *f, uint64_t off, uint64_t len)
{
    return off <= f->size && len <= f->size - off;
}

static int elf_open(const uint8_t *k, size_t size, const char *name, struct elf_file *f,
                    struct err *e)
{
    memset(f, 0, sizeof(*f));
    f->k = k;
    f->size = size;
    if (size < EI_NIDENT)
        return err_set(e, -ENOEXEC, "%s: truncated ELF header", name);
    if (k[EI_DATA] != ELFDATA2LSB)
        return err_set(e, -ENOEXEC, "%s: not a little-endian ELF file", name);
    if (k[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr h;
        if (size < sizeof(h))
            return err_set(e, -ENOEXEC, "%s: truncated ELF header", name);
        memcpy(&h, k, sizeof(h));
        if (h.e_machine != EM_X86_64)
            return err_set(e, -ENOEXEC, "%s: ELF64 file for machine %u, not x86-64", name,
                           h.e_machine);
        f->is64 = 1;
        f->phoff = h.e_phoff;
        f->phnum = h.e_phnum;
        f->phentsize = h.e_phentsize;
        f->shoff = h.e_shoff;
        f->shnum = h.e_shnum;
        f->shentsize = h.e_shentsize;
    } else if (k[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr h;
        if (size < sizeof(h))
            return err_set(e, -ENOEXEC, "%s: truncated ELF header", name);
        memcpy(&h, k, sizeof(h));
        if (h.e_machine != EM_386)
            return err_set(e, -ENOEXEC, "%s: ELF32 file for machine %u, not i386", name,
                           h.e_machine);
        f->phoff = h.e_phoff;
        f->phnum = h.e_phnum;
        f->phentsize = h.e_phentsize;
        f->shoff = h.e_shoff;
        f->shnum = h.e_shnum;
        f->shentsize = h.e_shentsize;
    } else {
        return err_set(e, -ENOEXEC, "%s: unknown ELF class %u", name, k[EI_CLASS]);
    }
    size_t phsz = f->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    size_t shsz = f->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    if (f->phnum == 0 || f->phnum > MAX_PHDRS)
        return err_set(e, -ENOEXEC, "%s: ELF file with %u program headers", name, f->phnum);
    if (f->phentsize < phsz || !in_file(f, f->phoff, (uint64_t)f->phnum * f->phentsize))
        return err_set(e, -ENOEXEC, "%s: truncated or bad ELF program headers", name);
    /* Section headers are optional (only used to find notes): ignore bad ones. */
    if (f->shoff == 0 || f->shnum == 0 || f->shnum > MAX_SHDRS || f->shentsize < shsz ||
        !in_file(f, f->shoff, (uint64_t)f->shnum * f->shentsize))
        f->shnum = 0;
    return 0;
}

static struct elf_seg elf_phdr(const struct elf_file *f, unsigned i)
{
    const uint8_t *p = f->k + f->phoff + (uint64_t)i * f->phentsize;
    if (f->is64) {
        Elf64_Phdr h;
        memcpy(&h, p, sizeof(h));
        return (struct elf_seg){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
    }
    Elf32_Phdr h;
    memcpy(&h, p, sizeof(h));
    return (struct elf_seg){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
}

static struct elf_seg elf_shdr(const struct elf_file *f, unsigned i)
{
    const uint8_t *p = f->k + f->shoff + (uint64_t)i * f->shentsize;
    if (f->is64) {
        Elf64_Shdr h;
        memcpy(&h, p, sizeof(h));
        return (struct elf_seg){ h.sh_type, h.sh_offset, h.sh_addr, h.sh_size, h.sh_size };
    }
    Elf32_Shdr h;
    memcpy(&h, p, sizeof(h));
    return (struct elf_seg){ h.sh_type, h.sh_offset, h.sh_addr, h.sh_size, h.sh_size };
}

static uint64_t align4(uint64_t v) { return (v + 3) & ~3ull; }

/* Walks the notes in [off, off + len): 1 and *entry if the PVH entry note
 * is there, 0 if not, -ENOEXEC if the note is malformed. */
static int find_pvh_note(const struct elf_file *f, uint64_t off, uint64_t len,
                         const char *name, uint32_t *entry, struct err *e)
{
    if (!in_file(f, off, len))
        return 0;   /* a note segment outside the file holds nothing usable */
    const uint8_t *p = f->k + off;
    uint64_t pos = 0;
    while (len - pos >= 12) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + pos, 4);
        memcpy(&descsz, p + pos + 4, 4);
        memcpy(&type, p + pos + 8, 4);
        uint64_t name_off = pos + 12;
        uint64_t desc_off = name_off + align4(namesz);
        if (desc_off > len || descsz > len - desc_off)
            return 0;   /* truncated note: stop walking this segment */
        const uint8_t *nm = p + name_off, *desc = p + desc_off;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz >= 3 && namesz <= 4 &&
            !memcmp(nm, "Xen", 3) && (namesz == 3 || nm[3] == 0)) {
            uint64_t v;
            if (descsz == 4) {
                uint32_t v32;
                memcpy(&v32, desc, 4);
                v = v32;
            } else if (descsz == 8) {
                memcpy(&v, desc, 8);
            } else {
                return err_set(e, -ENOEXEC, "%s: PVH entry note of %u bytes", name, descsz);
            }
            if (v > UINT32_MAX)
                return err_set(e, -ENOEXEC, "%s: PVH entry 0x%llx is above 4 GiB", name,
                               (unsigned long long)v);
            *entry = (uint32_t)v;
            return 1;
        }
        pos = desc_off + align4(descsz);
        if (pos > len)
            break;
    }
    return 0;
}

/* The PVH entry from a PT_NOTE segment or, failing that, an SHT_NOTE
 * section. */
static int find_entry(const struct elf_file *f, const char *name, uint32_t *entry,
                      struct err *e)
{
    int ret;
    for (unsigned i = 0; i < f->phnum; i++) {
        struct elf_seg s = elf_phdr(f, i);
        if (s.type != PT_NOTE)
            continue;
        ret = find_pvh_note(f, s.offset, s.filesz, name, entry, e);
        if (ret != 0)
            return ret < 0 ? ret : 0;
    }
    for (unsigned i = 0; i < f->shnum; i++) {
        struct elf_seg s = elf_shdr(f, i);
        if (s.type != SHT_NOTE)
            continue;
        ret = find_pvh_note(f, s.offset, s.filesz, name, entry, e);
        if (ret != 0)
            return ret < 0 ? ret : 0;
    }
    return err_set(e, -ENOEXEC,
                   "%s: no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) in this ELF "
                   "kernel (Linux needs CONFIG_PVH=y)", name);
}

/* What can be checked without guest RAM: loadable segments inside the file
 * and above the boot area, and an entry point in the file-backed part of one
 * of them (code the kernel brought, not bss, a gap or unmapped memory). */
static int check_segments(const struct elf_file *f, const char *name, uint32_t entry,
                          struct err *e)
{
    unsigned loaded = 0;
    int entry_in = 0;
    for (unsigned i = 0; i < f->phnum; i++) {
        struct elf_seg s = elf_phdr(f, i);
        if (s.type != PT_LOAD || s.memsz == 0)
            continue;
        if (s.filesz > s.memsz || !in_file(f, s.offset, s.filesz))
            return err_set(e, -ENOEXEC, "%s: ELF segment %u lies outside the file", name, i);
        if (s.paddr < X86_HIGH_MEM_START)
            return err_set(e, -ENOEXEC,
                           "%s: ELF segment %u at 0x%llx overlaps the boot area below 1 MiB",
                           name, i, (unsigned long long)s.paddr);
        if (entry >= s.paddr && entry - s.paddr < s.filesz)
            entry_in = 1;
        loaded++;
    }
    if (!loaded)
        return err_set(e, -ENOEXEC, "%s: ELF file without loadable segments", name);
    if (entry < X86_HIGH_MEM_START)
        return err_set(e, -ENOEXEC, "%s: PVH entry 0x%x in the boot area below 1 MiB", name,
                       entry);
    if (!entry_in)
        return err_set(e, -ENOEXEC, "%s: PVH entry 0x%x is outside the kernel's loaded "
                       "segments", name, entry);
    return 0;
}

int x86_pvh_check(const uint8_t *k, size_t size, const char *name, uint32_t *entry,
                  struct err *e)
{
    struct elf_file f;
    int ret = elf_open(k, size, name, &f, e);
    if (ret < 0)
        return ret;
    ret = find_entry(&f, name, entry, e);
    if (ret < 0)
        return ret;
    return check_segments(&f, name, *entry, e);
}

/* Loads the PT_LOAD segments (x86_pvh_check() has checked them against the
 * file); *end is the highest address they occupy. */
static int load_segments(const struct gmem *mem, const struct elf_file *f, const char *name,
                         uint64_t low_end, uint64_t *end, struct err *e)
{
    *end = X86_HIGH_MEM_START;
    for (unsigned i = 0; i < f->phnum; i++) {
        struct elf_seg s = elf_phdr(f, i);
        if (s.type != PT_LOAD || s.memsz == 0)
            continue;
        if (s.paddr >= low_end || s.memsz > low_end - s.paddr)
            return err_set(e, -ENOMEM,
                           "%s: ELF segment %u at 0x%llx+0x%llx is outside guest RAM "
                           "below 0x%llx", name, i, (unsigned long long)s.paddr,
                           (unsigned long long)s.memsz, (unsigned long long)low_end);
        uint8_t *dst = gmem_ptr(mem, s.paddr, s.memsz);
        if (!dst)
            return err_set(e, -EFAULT, "%s: ELF segment %u at 0x%llx is outside guest RAM",
                           name, i, (unsigned long long)s.paddr);
        memcpy(dst, f->k + s.offset, s.filesz);
        memset(dst + s.filesz, 0, s.memsz - s.filesz);
        if (s.paddr + s.memsz > *end)
            *end = s.paddr + s.memsz;
    }
    return 0;
}

int x86_pvh_load(const struct gmem *mem, const struct x86_boot_config *cfg,
                 struct x86_entry *out, struct err *e)
{
    const char *name = x86_kname(cfg);
    uint64_t low_end = x86_low_ram_end(cfg->mem_size);
    struct elf_file f;
    uint32_t entry;
    uint64_t end;
    int ret;

    ret = x86_pvh_check(cfg->kernel, cfg->kernel_size, name, &entry, e);
    if (ret < 0)
        return ret;
    ret = elf_open(cfg->kernel, cfg->kernel_size, name, &f, e);
    if (ret < 0)
        return ret;
    ret = load_segments(mem, &f, name, low_end, &end, e);
    if (ret < 0)
        return ret;
    ret = x86_cmdline_write(mem, cfg->cmdline, X86_CMDLINE_MAX - 1, e);
    if (ret < 0)
        return ret;

    struct x86_e820 map[X86_E820_MAX];
    unsigned n = x86_e820_build(cfg->mem_size, map);
    uint8_t *page = gmem_ptr(mem, X86_ZERO_PAGE_ADDR, 4096);
    struct hvm_memmap_table_entry *mm =
        gmem_ptr(mem, X86_PVH_MEMMAP_ADDR, sizeof(*mm) * X86_E820_MAX);
    struct hvm_modlist_entry *mod = gmem_ptr(mem, X86_PVH_MODLIST_ADDR, sizeof(*mod));
    if (!page || !mm || !mod)
        return err_set(e, -EFAULT, "no guest RAM for hvm_start_info");
    memset(page, 0, 4096);
    memset(mod, 0, sizeof(*mod));

    struct hvm_start_info si = {
        .magic = HVM_START_MAGIC,
        .version = 1,
        .cmdline_paddr = X86_CMDLINE_ADDR,
        .rsdp_paddr = X86_ACPI_RSDP_ADDR,
        .memmap_paddr = X86_PVH_MEMMAP_ADDR,
        .memmap_entries = n,
    };
    for (unsigned i = 0; i < n; i++)
        mm[i] = (struct hvm_memmap_table_entry){ map[i].addr, map[i].size, map[i].type, 0 };

    if (cfg->initrd && cfg->initrd_size) {
        uint64_t top = low_end < X86_INITRD_LIMIT ? low_end : X86_INITRD_LIMIT, addr;
        ret = x86_initrd_place(mem, cfg, end, top, &addr, e);
        if (ret < 0)
            return ret;
        *mod = (struct hvm_modlist_entry){ .paddr = addr, .size = cfg->initrd_size };
        si.nr_modules = 1;
        si.modlist_paddr = X86_PVH_MODLIST_ADDR;
    }
    memcpy(page, &si, sizeof(si));

    out->mode = X86_ENTRY_PROT32;
    out->rip = entry;
    out->rsi = 0;
    out->rbx = X86_ZERO_PAGE_ADDR;
    out->cr3 = 0;
    return 0;
}
