#include "arch/riscv/loader.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_MAGIC2 0x05435352u /* "RSC\x05" */

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int image_probe(const struct file_buf *f, const char *path, enum image_kind *kind, struct err *e)
{
    if (f->size >= sizeof(Elf64_Ehdr) && !memcmp(f->data, ELFMAG, SELFMAG)) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f->data;
        if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
            eh->e_machine != EM_RISCV)
            return err_set(e, -ENOEXEC, "'%s' is an ELF file but not 64-bit little-endian RISC-V",
                           path);
        *kind = IMAGE_ELF;
        return 0;
    }
    if (f->size >= 64 && rd32(f->data + 56) == IMAGE_MAGIC2) {
        *kind = IMAGE_LINUX;
        return 0;
    }
    return err_set(e, -ENOEXEC,
                   "'%s' is not a RISC-V kernel (neither a riscv64 ELF nor a Linux Image)", path);
}

static int load_elf(const struct gmem *mem, const struct file_buf *f, const char *path,
                    struct loaded_image *out, struct err *e)
{
    Elf64_Ehdr eh;
    memcpy(&eh, f->data, sizeof(eh));
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
        eh.e_phoff > f->size || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > f->size - eh.e_phoff)
        return err_set(e, -ENOEXEC, "'%s': bad ELF program headers", path);
    out->kind = IMAGE_ELF;
    out->entry = eh.e_entry;
    out->start = UINT64_MAX;
    out->end = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, f->data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > f->size || ph.p_filesz > f->size - ph.p_offset)
            return err_set(e, -ENOEXEC, "'%s': ELF segment %u lies outside the file", path, i);
        uint8_t *dst = gmem_ptr(mem, ph.p_paddr, ph.p_memsz);
        if (!dst)
            return err_set(e, -ERANGE,
                           "'%s': ELF segment %u (0x%llx, %llu bytes) is outside guest RAM", path,
                           i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
        memcpy(dst, f->data + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
        if (ph.p_paddr < out->start)
            out->start = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > out->end)
            out->end = ph.p_paddr + ph.p_memsz;
    }
    if (out->end == 0)
        return err_set(e, -ENOEXEC, "'%s': ELF file has no loadable segment", path);
    return 0;
}

/* The RISC-V Linux Image header (Documentation/arch/riscv/boot-image-header.rst):
 * code0/1, text_offset, image_size (the kernel's size in memory, with its
 * bss: larger than the file), flags, version, res1, res2, magic "RISCV",
 * magic2 "RSC\x05", res3 (the PE/COFF header's offset in EFI-stub kernels). */
#define IMAGE_MAGIC 0x5643534952ull /* "RISCV\0\0\0" */
#define PE_MACHINE_RISCV64 0x5064

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* How many bytes the file must have, from the PE/COFF section table of an
 * EFI-stub kernel (the end of the section data that lies furthest in the
 * file): 0 if there is no PE header to tell, -1 if the file ends before the
 * header or its section table. */
static int64_t pe_file_end(const struct file_buf *f, uint32_t pe)
{
    if (pe == 0)
        return 0;
    if ((uint64_t)pe + 24 > f->size)
        return -1;
    if (memcmp(f->data + pe, "PE\0\0", 4) || rd16(f->data + pe + 4) != PE_MACHINE_RISCV64)
        return 0;
    uint64_t nsec = rd16(f->data + pe + 6), optsz = rd16(f->data + pe + 20);
    uint64_t tab = (uint64_t)pe + 24 + optsz, end = tab + nsec * 40;
    if (end > f->size)
        return -1;
    for (uint64_t i = 0; i < nsec; i++) {
        const uint8_t *sh = f->data + tab + i * 40;
        uint64_t raw_size = rd32(sh + 16), raw_off = rd32(sh + 20);
        if (raw_size && raw_off + raw_size > end)
            end = raw_off + raw_size;
    }
    return (int64_t)end;
}

static int load_linux(const struct gmem *mem, const struct file_buf *f, const char *path,
                      uint64_t load_base, struct loaded_image *out, struct err *e)
{
    uint64_t text_offset = rd64(f->data + 8);
    uint64_t image_size = rd64(f->data + 16);
    uint32_t version = rd32(f->data + 32);
    if (rd64(f->data + 48) != IMAGE_MAGIC || version < 2)
        return err_set(e, -ENOEXEC, "'%s': not a RISC-V Linux Image (bad magic or header "
                       "version %u.%u in its header)", path, version >> 16, version & 0xffff);
    if (text_offset & 0xfff || text_offset > (1ull << 30))
        return err_set(e, -ENOEXEC, "'%s': bad text_offset 0x%llx in Image header", path,
                       (unsigned long long)text_offset);
    int64_t need = pe_file_end(f, rd32(f->data + 60));
    if (need < 0 || (uint64_t)need > f->size) {
        if (need < 0)
            return err_set(e, -ENOEXEC, "'%s' is truncated: the file (%zu bytes) ends inside "
                           "the Image's PE/COFF header", path, f->size);
        return err_set(e, -ENOEXEC, "'%s' is truncated: its Image header says %llu bytes, the "
                       "file has %zu", path, (unsigned long long)need, f->size);
    }
    if (image_size < f->size)
        image_size = f->size;
    uint64_t at = load_base + text_offset;
    uint8_t *dst = gmem_ptr(mem, at, image_size);
    if (!dst)
        return err_set(e, -ERANGE, "kernel '%s' (%llu MiB) does not fit in guest RAM", path,
                       (unsigned long long)(image_size >> 20));
    memcpy(dst, f->data, f->size);
    out->kind = IMAGE_LINUX;
    out->entry = at;
    out->start = at;
    out->end = at + image_size;
    return 0;
}

int image_load(const struct gmem *mem, const struct file_buf *f, const char *path,
               uint64_t load_base, struct loaded_image *out, struct err *e)
{
    enum image_kind kind;
    int ret = image_probe(f, path, &kind, e);
    if (ret < 0)
        return ret;
    return kind == IMAGE_ELF ? load_elf(mem, f, path, out, e)
                             : load_linux(mem, f, path, load_base, out, e);
}
