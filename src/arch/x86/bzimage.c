/* bzImage through Linux's 64-bit boot protocol (Documentation/arch/x86/
 * boot.rst): checks the setup header, loads the protected-mode kernel at
 * 1 MiB and fills boot_params (the "zero page") at 0x7000. */
#include "arch/x86/boot_priv.h"

#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

/* Setup header fields: offsets in the file and in boot_params alike. */
#define HDR_START 0x1f1         /* setup_sects, the first field */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_AREA_END 0x290      /* edd_mbr_sig_buffer follows the header */

/* Other boot_params fields. */
#define BP_ACPI_RSDP_ADDR 0x070 /* boot protocol 2.14+; older kernels ignore it */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 4096

#define BOOT_FLAG 0xaa55
#define HDRS_MAGIC 0x53726448u  /* "HdrS" */
#define MIN_VERSION 0x020c      /* 2.12: xloadflags, 64-bit entry */
#define XLF_KERNEL_64 0x1
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define ENTRY64_OFFSET 0x200    /* startup_64 from the load address */

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint64_t setup_bytes(const uint8_t *k)
{
    unsigned sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;
    return (uint64_t)(sects + 1) * 512;
}

int x86_bzimage_check(const uint8_t *k, size_t size, const char *name, struct err *e)
{
    if (size < HDR_AREA_END || rd16(k + HDR_BOOT_FLAG) != BOOT_FLAG ||
        rd32(k + HDR_MAGIC) != HDRS_MAGIC)
        return err_set(e, -ENOEXEC,
                       "%s: not an x86 kernel (neither a bzImage nor an ELF file)", name);
    uint16_t ver = rd16(k + HDR_VERSION);
    if (ver < MIN_VERSION)
        return err_set(e, -ENOEXEC,
                       "%s: kernel too old for the 64-bit boot protocol (boot protocol "
                       "%u.%02u, need 2.12)", name, ver >> 8, ver & 0xff);
    if (!(rd16(k + HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return err_set(e, -ENOEXEC, "%s: not a 64-bit kernel (no 64-bit entry point)", name);
    if (!(k[HDR_LOADFLAGS] & LOADED_HIGH))
        return err_set(e, -ENOEXEC, "%s: a zImage (loaded low), not a bzImage", name);
    if (setup_bytes(k) >= size)
        return err_set(e, -ENOEXEC, "%s: truncated bzImage (%zu bytes, setup alone is %llu)",
                       name, size, (unsigned long long)setup_bytes(k));
    return 0;
}

static void fill_e820(uint8_t *bp, uint64_t mem_size)
{
    struct x86_e820 map[X86_E820_MAX];
    unsigned n = x86_e820_build(mem_size, map);
    for (unsigned i = 0; i < n && i < BP_E820_MAX; i++) {
        uint8_t *ent = bp + BP_E820_TABLE + 20 * i;
        wr64(ent, map[i].addr);
        wr64(ent + 8, map[i].size);
        wr32(ent + 16, map[i].type);
    }
    bp[BP_E820_ENTRIES] = (uint8_t)n;
}

int x86_bzimage_load(const struct gmem *mem, const struct x86_boot_config *cfg,
                     struct x86_entry *out, struct err *e)
{
    const uint8_t *k = cfg->kernel;
    const char *name = x86_kname(cfg);
    uint64_t low_end = x86_low_ram_end(cfg->mem_size);
    int ret;

    /* x86_kernel_probe() checked the header and size > setup. */
    uint64_t setup = setup_bytes(k);
    uint64_t payload = cfg->kernel_size - setup;
    uint64_t init_size = rd32(k + HDR_INIT_SIZE);
    uint64_t pref = rd64(k + HDR_PREF_ADDRESS);
    /* The decompressor runs in place and extracts the kernel at
     * max(load address, pref_address), needing init_size bytes there. */
    uint64_t need = init_size > payload ? init_size : payload;
    uint64_t kstart = pref > X86_HIGH_MEM_START && pref < X86_LOW_RAM_MAX ? pref
                                                                          : X86_HIGH_MEM_START;
    uint64_t kend = kstart + need;
    if (X86_HIGH_MEM_START + payload > low_end || kend > low_end)
        return err_set(e, -ENOMEM,
                       "%s: kernel needs RAM up to 0x%llx (init_size %llu MiB at 0x%llx), "
                       "guest RAM below 4 GiB ends at 0x%llx", name,
                       (unsigned long long)kend, (unsigned long long)(need >> 20),
                       (unsigned long long)kstart, (unsigned long long)low_end);
    if (gmem_write(mem, X86_HIGH_MEM_START, k + setup, payload) < 0)
        return err_set(e, -EFAULT, "%s: no guest RAM at 0x%llx for the kernel", name,
                       (unsigned long long)X86_HIGH_MEM_START);

    uint32_t cmdline_size = rd32(k + HDR_CMDLINE_SIZE);
    ret = x86_cmdline_write(mem, cfg->cmdline, cmdline_size, e);
    if (ret < 0)
        return ret;

    uint8_t *bp = gmem_ptr(mem, X86_ZERO_PAGE_ADDR, BP_SIZE);
    if (!bp)
        return err_set(e, -EFAULT, "no guest RAM for boot_params");
    memset(bp, 0, BP_SIZE);

    /* The header runs from 0x1f1 to the end of the jump at 0x200 (whose
     * displacement byte is at 0x201); never past its area in boot_params. */
    size_t hdr_len = HDR_JUMP + 2 + k[HDR_JUMP + 1] - HDR_START;
    if (hdr_len > HDR_AREA_END - HDR_START)
        hdr_len = HDR_AREA_END - HDR_START;
    memcpy(bp + HDR_START, k + HDR_START, hdr_len);

    bp[HDR_TYPE_OF_LOADER] = 0xff;     /* undefined/unregistered loader */
    bp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
    wr16(bp + HDR_HEAP_END_PTR, 0xfe00);
    wr32(bp + HDR_CMD_LINE_PTR, (uint32_t)X86_CMDLINE_ADDR);
    wr32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(X86_CMDLINE_ADDR >> 32));
    wr64(bp + BP_ACPI_RSDP_ADDR, X86_ACPI_RSDP_ADDR);

    if (cfg->initrd && cfg->initrd_size) {
        uint64_t top = low_end, addr;
        uint64_t max = (uint64_t)rd32(k + HDR_INITRD_ADDR_MAX) + 1;
        if (max < top)
            top = max;
        if (X86_INITRD_LIMIT < top)
            top = X86_INITRD_LIMIT;
        ret = x86_initrd_place(mem, cfg, kend, top, &addr, e);
        if (ret < 0)
            return ret;
        wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
        wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)cfg->initrd_size);
        wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(addr >> 32));
        wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)cfg->initrd_size >> 32));
    } else {
        wr32(bp + HDR_RAMDISK_IMAGE, 0);
        wr32(bp + HDR_RAMDISK_SIZE, 0);
    }
    fill_e820(bp, cfg->mem_size);

    out->mode = X86_ENTRY_LONG64;
    out->rip = X86_HIGH_MEM_START + ENTRY64_OFFSET;
    out->rsi = X86_ZERO_PAGE_ADDR;
    out->rbx = 0;
    out->cr3 = X86_PML4_ADDR;
    return 0;
}
