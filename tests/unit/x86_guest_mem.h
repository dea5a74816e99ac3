/* Guest memory for the x86 boot unit tests: RAM laid out as the PC board
 * does (x86_ram_layout), and G(), a bounds-checked guest pointer that
 * stops the test (exit 2) on a range outside RAM, which is a test bug. */
#ifndef PETREL_TESTS_X86_GUEST_MEM_H
#define PETREL_TESTS_X86_GUEST_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/memory.h"

static inline int mem_new(struct gmem *m, uint64_t mem_size)
{
    struct err e = { "" };
    uint64_t base[2], size[2];
    memset(m, 0, sizeof(*m));
    unsigned n = x86_ram_layout(mem_size, base, size);
    for (unsigned i = 0; i < n; i++)
        if (gmem_add_ram(m, base[i], size[i], &e) < 0) {
            printf("cannot allocate guest RAM: %s\n", e.msg);
            gmem_free(m);
            return -1;
        }
    return 0;
}

static inline uint8_t *G(const struct gmem *m, uint64_t gpa, uint64_t len)
{
    uint8_t *p = gmem_ptr(m, gpa, len);
    if (!p) {
        printf("test bug: guest range 0x%llx+0x%llx outside RAM\n", (unsigned long long)gpa,
               (unsigned long long)len);
        exit(2);
    }
    return p;
}

#endif
