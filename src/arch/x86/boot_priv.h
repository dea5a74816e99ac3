/* Internals of x86 direct kernel boot (boot.c, bzimage.c, pvh.c,
 * mptable.c; acpi.c has acpi.h): the fixed guest physical layout of boot.h
 * and the pieces each file provides to x86_boot_setup(). */
#ifndef PETREL_X86_BOOT_PRIV_H
#define PETREL_X86_BOOT_PRIV_H

#include "arch/x86/boot.h"

#define X86_GDT_ADDR 0x500ull
#define X86_GDT_ENTRIES 4
#define X86_PML4_ADDR 0x1000ull
#define X86_PDPT_ADDR 0x2000ull
#define X86_PD_ADDR 0x3000ull          /* four page directories, to 0x6fff */
#define X86_ZERO_PAGE_ADDR 0x7000ull   /* boot_params or hvm_start_info */
#define X86_PVH_MEMMAP_ADDR 0x7040ull  /* right after hvm_start_info */
#define X86_PVH_MODLIST_ADDR 0x8000ull
#define X86_CMDLINE_ADDR 0x20000ull
#define X86_MPTABLE_ADDR 0x9fc00ull    /* also the start of reserved low RAM */
#define X86_HIGH_MEM_START 0x100000ull /* 1 MiB: the bzImage kernel, ELF floor */
#define X86_INITRD_LIMIT 0xc0000000ull

#define E820_RAM 1
#define E820_RESERVED 2
#define X86_E820_MAX 4

struct x86_e820 {
    uint64_t addr, size;
    uint32_t type;
};

/* The memory map both protocols hand over (RAM/reserved as in boot.h). */
unsigned x86_e820_build(uint64_t mem_size, struct x86_e820 map[X86_E820_MAX]);

/* End of low RAM (below the 4 GiB hole) for a guest of mem_size bytes. */
uint64_t x86_low_ram_end(uint64_t mem_size);

/* Copies the initrd to the highest page-aligned address with
 * floor <= addr and addr + size <= top; -ENOSPC with a message if none. */
int x86_initrd_place(const struct gmem *mem, const struct x86_boot_config *cfg,
                     uint64_t floor, uint64_t top, uint64_t *addr, struct err *e);

/* The command line at X86_CMDLINE_ADDR; -E2BIG if longer than max_len
 * (or than X86_CMDLINE_MAX - 1). */
int x86_cmdline_write(const struct gmem *mem, const char *cmdline, size_t max_len,
                      struct err *e);

/* The file's name for messages. */
const char *x86_kname(const struct x86_boot_config *cfg);

/* bzimage.c */
int x86_bzimage_check(const uint8_t *k, size_t size, const char *name, struct err *e);
int x86_bzimage_load(const struct gmem *mem, const struct x86_boot_config *cfg,
                     struct x86_entry *out, struct err *e);

/* pvh.c: 1 if k starts with an ELF header (whatever its validity). */
int x86_is_elf(const uint8_t *k, size_t size);
int x86_pvh_check(const uint8_t *k, size_t size, const char *name, uint32_t *entry,
                  struct err *e);
int x86_pvh_load(const struct gmem *mem, const struct x86_boot_config *cfg,
                 struct x86_entry *out, struct err *e);

/* mptable.c: MP floating pointer + configuration table at X86_MPTABLE_ADDR. */
#define X86_MAX_CPUS 255
int x86_mptable_write(const struct gmem *mem, unsigned ncpus, struct err *e);

#endif
