/* Loading guest images into RAM: RISC-V ELF64 files (segments at their
 * physical addresses) and flat Linux Images (the "RSC\x05" header, placed
 * at RAM base + text_offset).  Files are untrusted: every header field is
 * checked against the file size and the destination range before copying;
 * an Image whose header is not a RISC-V Image's ("RISCV" magic, version 0.2
 * or later), or that is shorter than its PE/COFF section table (EFI-stub
 * kernels) says, is an error.  An Image without a PE/COFF header carries no
 * file size (its image_size includes the bss), so a cut one still loads. */
#ifndef PETREL_RISCV_LOADER_H
#define PETREL_RISCV_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/file.h"
#include "core/memory.h"

enum image_kind { IMAGE_ELF, IMAGE_LINUX };

struct loaded_image {
    enum image_kind kind;
    uint64_t entry;
    uint64_t start, end;   /* physical range occupied (for Images: incl. bss) */
};

/* Identify a kernel/firmware file; -ENOEXEC with a message if it is neither
 * a RISC-V 64-bit ELF nor a RISC-V Linux Image. */
int image_probe(const struct file_buf *f, const char *path, enum image_kind *kind, struct err *e);
/* Load at its ELF addresses, or (Linux Image) at load_base + text_offset. */
int image_load(const struct gmem *mem, const struct file_buf *f, const char *path,
               uint64_t load_base, struct loaded_image *out, struct err *e);

#endif
