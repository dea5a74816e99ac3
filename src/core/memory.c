#include "core/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

int gmem_add_ram_file(struct gmem *m, uint64_t gpa, uint64_t size, int fd, uint64_t off,
                      struct err *e)
{
    if (m->n >= GMEM_MAX_REGIONS)
        return err_set(e, -ENOSPC, "too many RAM regions");
    if (size == 0 || gpa + size < gpa || off % GMEM_PAGE)
        return err_set(e, -EINVAL, "bad RAM region 0x%llx+0x%llx",
                       (unsigned long long)gpa, (unsigned long long)size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
                   (off_t)off);
    if (p == MAP_FAILED)
        return err_set(e, -errno, "cannot map %llu MiB of guest RAM from its file: %s",
                       (unsigned long long)(size >> 20), strerror(errno));
    m->r[m->n++] = (struct gmem_region){ .gpa = gpa, .size = size, .hva = p,
                                         .file_backed = true };
    return 0;
}

uint64_t gmem_discard_hva(const struct gmem *m, void *hva, uint64_t len)
{
    static uintptr_t host_page;
    if (!host_page) {
        long ps = sysconf(_SC_PAGESIZE);
        host_page = ps > 0 ? (uintptr_t)ps : 4096;
    }
    uintptr_t a = (uintptr_t)hva, end = a + len;
    const struct gmem_region *r = NULL;
    for (unsigned i = 0; i < m->n && !r; i++)
        if (a >= (uintptr_t)m->r[i].hva && end >= a &&
            end <= (uintptr_t)m->r[i].hva + m->r[i].size)
            r = &m->r[i];
    if (!r)
        return 0;
    a = (a + host_page - 1) & ~(host_page - 1);
    end &= ~(host_page - 1);
    if (end <= a || madvise((void *)a, end - a, MADV_DONTNEED) < 0)
        return 0;
    return end - a;
}

void gmem_free(struct gmem *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        munmap(m->r[i].hva, m->r[i].size);
        free(m->r[i].dirty);
    }
    m->n = 0;
}

int gmem_dirty_enable(struct gmem *m, struct err *e)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct gmem_region *r = &m->r[i];
        if (r->dirty)
            continue;
        uint64_t pages = (r->size + GMEM_PAGE - 1) / GMEM_PAGE;
        r->dirty = calloc((pages + 63) / 64, 8);
        if (!r->dirty)
            return err_set(e, -ENOMEM, "out of memory for the dirty page bitmap");
    }
    return 0;
}

static void mark(const struct gmem_region *r, uint64_t off, uint64_t len)
{
    if (!r->dirty || !len)
        return;
    uint64_t first = off / GMEM_PAGE, last = (off + len - 1) / GMEM_PAGE;
    for (uint64_t p = first; p <= last; p++)
        if (!(__atomic_load_n(&r->dirty[p / 64], __ATOMIC_RELAXED) >> (p % 64) & 1))
            __atomic_fetch_or(&r->dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

void gmem_set_write_hook(struct gmem *m, void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
                         void *opaque)
{
    m->write_hook_opaque = opaque;
    m->write_hook = fn;
}

void gmem_mark_dirty(const struct gmem *m, uint64_t gpa, uint64_t len)
{
    if (m->write_hook)
        m->write_hook(m->write_hook_opaque, gpa, len);
    for (unsigned i = 0; i < m->n; i++) {
        const struct gmem_region *r = &m->r[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            uint64_t off = gpa - r->gpa;
            mark(r, off, len < r->size - off ? len : r->size - off);
            return;
        }
    }
}

void gmem_mark_dirty_hva(const struct gmem *m, const void *hva, uint64_t len)
{
    uintptr_t a = (uintptr_t)hva;
    for (unsigned i = 0; i < m->n; i++) {
        const struct gmem_region *r = &m->r[i];
        uintptr_t b = (uintptr_t)r->hva;
        if (a >= b && a - b < r->size) {
            uint64_t off = a - b;
            if (m->write_hook)
                m->write_hook(m->write_hook_opaque, r->gpa + off, len);
            mark(r, off, len < r->size - off ? len : r->size - off);
            return;
        }
    }
}

void gmem_dirty_reset(struct gmem *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct gmem_region *r = &m->r[i];
        if (r->dirty)
            memset(r->dirty, 0, ((r->size + GMEM_PAGE - 1) / GMEM_PAGE + 63) / 64 * 8);
    }
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
