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

static int load_linux(const struct gmem *mem, const struct file_buf *f, const char *path,
                      uint64_t load_base, struct loaded_image *out, struct err *e)
{
    uint64_t text_offset = rd64(f->data + 8);
    uint64_t image_size = rd64(f->data + 16);
    if (text_offset & 0xfff || text_offset > (1ull << 30))
        return err_set(e, -ENOEXEC, "'%s': bad text_offset 0x%llx in Image header", path,
                       (unsigned long long)text_offset);
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
