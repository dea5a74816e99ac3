/* libFuzzer target: the kernel/firmware image loader on arbitrary files.
 * A corrupt or malicious image must give an error (or load within RAM),
 * never a crash or an out-of-bounds access. */
#include <stdlib.h>
#include <string.h>

#include "arch/riscv/loader.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (8ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gmem mem;
    if (!mem.n && gmem_add_ram(&mem, RAM_BASE, RAM_SIZE, NULL) < 0)
        abort();
    struct file_buf f = { .data = malloc(size ? size : 1), .size = size };
    if (!f.data)
        abort();
    memcpy(f.data, data, size);
    struct loaded_image img;
    struct err e;
    if (image_load(&mem, &f, "fuzz-input", RAM_BASE, &img, &e) == 0) {
        if (img.start < RAM_BASE || img.end > RAM_BASE + RAM_SIZE || img.start >= img.end)
            abort(); /* a successful load must lie inside RAM */
    }
    free(f.data);
    return 0;
}
