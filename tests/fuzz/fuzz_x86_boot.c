/* libFuzzer target: x86 direct kernel boot (bzImage and PVH ELF parsing,
 * boot_params/hvm_start_info, MP table) on arbitrary kernel files.  A
 * corrupt or malicious kernel must give an error or a boot state inside
 * guest RAM, never a crash or an out-of-bounds access. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"

#define RAM_SIZE (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gmem mem;
    static const uint8_t initrd[5000];
    if (!mem.n && gmem_add_ram(&mem, 0, RAM_SIZE, NULL) < 0)
        abort();
    /* A copy of exactly size bytes, so reads past the end are caught. */
    uint8_t *k = malloc(size ? size : 1);
    if (!k)
        abort();
    memcpy(k, data, size);
    struct err e;
    int is_pvh;
    int probed = x86_kernel_probe(k, size, "fuzz-input", &is_pvh, &e);
    struct x86_boot_config cfg = {
        .kernel = k, .kernel_size = size, .kernel_name = "fuzz-input",
        .initrd = initrd, .initrd_size = sizeof(initrd), .cmdline = "console=ttyS0",
        .mem_size = RAM_SIZE, .ncpus = 1 + (size % 8),
    };
    struct x86_entry en;
    int ret = x86_boot_setup(&mem, &cfg, &en, &e);
    if ((ret == 0) != (probed == 0) && ret != -ENOMEM && ret != -ENOSPC && ret != -E2BIG)
        abort();    /* setup may only fail on RAM limits when the probe passed */
    if (ret == 0 && (en.rip >= RAM_SIZE || en.gdt_base >= RAM_SIZE))
        abort();
    free(k);
    return 0;
}
