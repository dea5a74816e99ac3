/* Guest physical memory: a few RAM regions, each one host mapping.
 * Every guest address the VMM touches goes through gmem_ptr(), which checks
 * that [gpa, gpa+len) lies inside one region. */
#ifndef PETREL_MEMORY_H
#define PETREL_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define GMEM_MAX_REGIONS 4

struct gmem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
};

struct gmem {
    struct gmem_region r[GMEM_MAX_REGIONS];
    unsigned n;
};

int gmem_add_ram(struct gmem *m, uint64_t gpa, uint64_t size, struct err *e);
void gmem_free(struct gmem *m);
/* Host pointer for [gpa, gpa+len), or NULL if not entirely inside RAM. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Copy into guest memory with bounds checking; -EFAULT outside RAM. */
int gmem_write(const struct gmem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
