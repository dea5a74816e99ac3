#include "core/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int gmem_add_ram(struct gmem *m, uint64_t gpa, uint64_t size, struct err *e)
{
    if (m->n >= GMEM_MAX_REGIONS)
        return err_set(e, -ENOSPC, "too many RAM regions");
    if (size == 0 || gpa + size < gpa)
        return err_set(e, -EINVAL, "bad RAM region 0x%llx+0x%llx",
                       (unsigned long long)gpa, (unsigned long long)size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return err_set(e, -errno, "cannot allocate %llu MiB of guest RAM: %s",
                       (unsigned long long)(size >> 20), strerror(errno));
    madvise(p, size, MADV_HUGEPAGE);
    m->r[m->n++] = (struct gmem_region){ .gpa = gpa, .size = size, .hva = p };
    return 0;
}

void gmem_free(struct gmem *m)
{
    for (unsigned i = 0; i < m->n; i++)
        munmap(m->r[i].hva, m->r[i].size);
    m->n = 0;
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->n; i++) {
        const struct gmem_region *r = &m->r[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r->hva + (gpa - r->gpa);
    }
    return NULL;
}

int gmem_write(const struct gmem *m, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = gmem_ptr(m, gpa, len);
    if (!p)
        return -EFAULT;
    memcpy(p, src, len);
    return 0;
}
